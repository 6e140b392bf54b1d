//! Markdown as GitHub and mdbook read it, as far as links go: prose apart
//! from code, headings' anchors, links, reference definitions and mdbook's
//! includes. Pure.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

/// Lexically normalised `base/relative` (`..` and `.` resolved), so that
/// a path can be compared with another and found under a folder.
pub fn join(base: &Path, relative: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(relative).components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The line with its inline code spans blanked out (the same bytes long,
/// so that an offset in one is an offset in the other), so that no link
/// is read inside them.
pub fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // The closing run: the same number of backticks, not more.
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let len = chars[j..].iter().take_while(|&&c| c == '`').count();
                if len == run {
                    close = Some(j);
                    break;
                }
                j += len;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &chars[i..j + run] {
                    out.extend(std::iter::repeat_n('C', c.len_utf8()));
                }
                i = j + run;
            }
            None => {
                out.extend(std::iter::repeat_n('`', run));
                i += run;
            }
        }
    }
    out
}

/// The lines outside fenced code blocks, numbered from 1: each as it is
/// and with its code spans blanked out.
pub fn prose_lines(text: &str) -> Vec<(usize, String, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        if let Some(c) = marker {
            let len = trimmed.chars().take_while(|&x| x == c).count();
            if len >= 3 {
                match fence {
                    None => fence = Some((c, len)),
                    Some((open, open_len))
                        if open == c && len >= open_len && trimmed[len..].trim().is_empty() =>
                    {
                        fence = None
                    }
                    Some(_) => {}
                }
                continue;
            }
        }
        if fence.is_none() {
            out.push((n + 1, without_code_spans(line), line));
        }
    }
    out
}

/// A heading's text as rendered: links reduced to their text, emphasis
/// and code marks dropped.
pub fn heading_text(raw: &str) -> String {
    let mut text = String::new();
    let mut rest = raw;
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](") {
            Some(mid) => match after[mid + 2..].find(')') {
                Some(close) => {
                    text.push_str(&after[..mid]);
                    rest = &after[mid + 2 + close + 1..];
                }
                None => {
                    text.push('[');
                    rest = after;
                }
            },
            None => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    text
}

/// The id GitHub and mdbook give a heading.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every fragment a link may name in this Markdown text.
pub fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Headings and HTML ids are read from the raw lines outside fences (a
    // heading's code spans are part of its id).
    for (_, _, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let mut raw = line[hashes..].trim().trim_end_matches('#').trim_end();
            // An explicit id: `## Title {#id}`.
            if let Some(start) = raw.rfind("{#")
                && raw.ends_with('}')
            {
                found.insert(raw[start + 2..raw.len() - 1].to_string());
                raw = raw[..start].trim_end();
            }
            let base = slug(&heading_text(raw));
            let count = seen.entry(base.clone()).or_insert(0);
            let id = if *count == 0 {
                base.clone()
            } else {
                format!("{base}-{count}")
            };
            *count += 1;
            found.insert(id);
        }
        for attribute in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attribute) {
                let value = &rest[at + attribute.len()..];
                if let Some(end) = value.find('"') {
                    found.insert(value[..end].to_string());
                }
                rest = &rest[at + attribute.len()..];
            }
        }
    }
    found
}

#[derive(Debug)]
pub struct Link {
    pub line: usize,
    pub text: String,
    pub target: String,
}

pub fn has_scheme(target: &str) -> bool {
    match target.find(':') {
        Some(colon) => {
            let scheme = &target[..colon];
            !scheme.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        }
        None => false,
    }
}

/// The inline links, images and reference definitions of the text's prose.
pub fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (line_number, line, original) in prose_lines(text) {
        // Reference definitions: `[label]: target`.
        let trimmed = line.trim_start();
        // The label's first `]` is followed by the colon.
        if trimmed.starts_with('[')
            && !trimmed.starts_with("[^")
            && let Some(end) = trimmed.find(']')
            && trimmed[end + 1..].starts_with(':')
        {
            let target = trimmed[end + 2..].split_whitespace().next().unwrap_or("");
            let indent = line.len() - trimmed.len();
            out.push(Link {
                line: line_number,
                text: original[indent..indent + end + 1].to_string(),
                target: target.trim_matches(['<', '>']).to_string(),
            });
            continue;
        }
        let mut offset = 0;
        let mut rest = line.as_str();
        while let Some(mid) = rest.find("](") {
            let text_start = rest[..mid].rfind('[').map_or(0, |s| s + 1);
            let link_text = original[offset + text_start..offset + mid].to_string();
            let after = &rest[mid + 2..];
            // Up to the matching parenthesis (a target may hold a pair).
            let mut depth = 0usize;
            let mut end = after.len();
            for (i, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = i;
                        break;
                    }
                    ')' => depth -= 1,
                    _ => {}
                }
            }
            let inside = after[..end].trim();
            let target = if let Some(stripped) = inside.strip_prefix('<') {
                stripped.split('>').next().unwrap_or("")
            } else {
                inside.split_whitespace().next().unwrap_or("")
            };
            out.push(Link {
                line: line_number,
                text: link_text,
                target: target.to_string(),
            });
            let consumed = mid + 2 + end;
            offset += consumed;
            rest = &rest[consumed..];
        }
    }
    out
}

/// `{{#include path}}` and its kin, wherever they are in the text (mdbook
/// expands them inside code blocks too): (line, path, selector).
pub fn includes(text: &str) -> Vec<(usize, String, Option<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{#") {
            let Some(end) = rest[start..].find("}}") else {
                break;
            };
            let directive = &rest[start + 3..start + end];
            rest = &rest[start + end + 2..];
            let mut words = directive.split_whitespace();
            let kind = words.next().unwrap_or("");
            if !matches!(kind, "include" | "rustdoc_include" | "playground") {
                continue;
            }
            let argument = words.next().unwrap_or("");
            let (path, selector) = match argument.split_once(':') {
                Some((path, selector)) => (path, Some(selector.to_string())),
                None => (argument, None),
            };
            out.push((n + 1, path.to_string(), selector));
        }
    }
    out
}

/// What an include directive puts in the page, or why it cannot.
pub fn included(text: &str, selector: Option<&str>) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(selector) = selector else {
        return Ok(text.to_string());
    };
    let numbers: Vec<&str> = selector.split(':').collect();
    let all_numeric = numbers
        .iter()
        .all(|n| n.is_empty() || n.chars().all(|c| c.is_ascii_digit()));
    if all_numeric {
        let from = numbers[0].parse::<usize>().unwrap_or(1).max(1);
        let to = match numbers.get(1) {
            Some(n) if !n.is_empty() => n.parse::<usize>().unwrap_or(lines.len()),
            Some(_) => lines.len(),
            None if numbers[0].is_empty() => lines.len(),
            None => from,
        };
        return Ok(lines
            .get(from - 1..to.min(lines.len()))
            .unwrap_or(&[])
            .join("\n"));
    }
    // mdbook's markers: `ANCHOR: name` and `ANCHOR_END: name`, anywhere
    // in a line (in a comment of the file's language).
    let marks = |line: &str, marker: &str| {
        line.split(marker).skip(1).any(|after| {
            let name: String = after
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            name == selector
        })
    };
    let start = lines
        .iter()
        .position(|l| marks(l, "ANCHOR:"))
        .ok_or(format!("no `ANCHOR: {selector}` in it"))?;
    let end = lines[start..]
        .iter()
        .position(|l| marks(l, "ANCHOR_END:"))
        .ok_or(format!("no `ANCHOR_END: {selector}` in it"))?;
    Ok(lines[start + 1..start + end]
        .iter()
        .filter(|l| !l.contains("ANCHOR:") && !l.contains("ANCHOR_END:"))
        .copied()
        .collect::<Vec<_>>()
        .join("\n"))
}
