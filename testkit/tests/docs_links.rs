//! Every link of the documentation leads somewhere: README.md,
//! ARCHITECTURE.md, deploy/README.md and every Markdown file under docs/
//! (the book's sources, docs/src/, built with mdbook in CI).
//!
//! For each Markdown link or image `[text](target)` and reference
//! definition `[label]: target` outside code (fenced blocks and inline
//! code spans), a relative target must be an existing file or folder,
//! relative to the file that links, and a `#fragment` must be a heading of
//! the target (the id GitHub and mdbook give it: lower case, spaces to
//! `-`, punctuation but `-` and `_` dropped, `-1`, `-2`... for repeats),
//! an explicit `{#id}` of a heading, or an `id`/`name` of an HTML tag.
//! Links with a scheme (`https:`, `mailto:`) are not followed: the test
//! uses no network.
//!
//! The book adds three rules. mdbook renders a page's `.md` links as
//! `.html`, so a book page may link to Markdown only inside docs/src, and
//! only to a page SUMMARY.md lists (any other file is not rendered). Its
//! `{{#include file}}` directives (with `:anchor` or `:from:to` lines) must
//! name an existing file (and anchor), and the links of what they include
//! must resolve from the including page, where mdbook puts them.
//!
//! Run it alone with `cargo test -p clerk-sync-testkit --test docs_links`.

#![cfg(test)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Markdown files checked, relative to the repository's root.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("README.md"),
        PathBuf::from("ARCHITECTURE.md"),
        PathBuf::from("deploy/README.md"),
    ];
    let mut folders = vec![PathBuf::from("docs")];
    while let Some(folder) = folders.pop() {
        let mut entries: Vec<_> = fs::read_dir(root.join(&folder))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        entries.sort();
        for name in entries {
            let path = folder.join(&name);
            if root.join(&path).is_dir() {
                // mdbook's output (docs/book/), when built in place.
                if path != Path::new("docs/book") {
                    folders.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files
}

/// Lexically normalised `base/relative` (`..` and `.` resolved), so that
/// a path can be compared with another and found under a folder.
fn join(base: &Path, relative: &str) -> PathBuf {
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
fn without_code_spans(line: &str) -> String {
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
fn prose_lines(text: &str) -> Vec<(usize, String, &str)> {
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
fn heading_text(raw: &str) -> String {
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
fn slug(heading: &str) -> String {
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
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Headings and HTML ids are read from the raw lines outside fences (a
    // heading's code spans are part of its id).
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        if let Some(c) = marker {
            let len = trimmed.chars().take_while(|&x| x == c).count();
            if len >= 3 {
                match fence {
                    None => fence = Some((c, len)),
                    Some((open, open_len)) if open == c && len >= open_len => fence = None,
                    Some(_) => {}
                }
                continue;
            }
        }
        if fence.is_some() {
            continue;
        }
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
struct Link {
    line: usize,
    text: String,
    target: String,
}

fn has_scheme(target: &str) -> bool {
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
fn links(text: &str) -> Vec<Link> {
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
fn includes(text: &str) -> Vec<(usize, String, Option<String>)> {
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
fn included(text: &str, selector: Option<&str>) -> Result<String, String> {
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

/// The pages SUMMARY.md lists, relative to the repository's root.
fn book_pages(root: &Path) -> BTreeSet<PathBuf> {
    let summary = Path::new("docs/src/SUMMARY.md");
    let text = fs::read_to_string(root.join(summary)).unwrap();
    let mut pages: BTreeSet<PathBuf> = links(&text)
        .into_iter()
        .filter(|l| !l.target.is_empty() && !has_scheme(&l.target))
        .map(|l| {
            join(
                Path::new("docs/src"),
                l.target.split('#').next().unwrap_or(""),
            )
        })
        .collect();
    pages.insert(summary.to_path_buf());
    pages
}

struct Checker {
    root: PathBuf,
    book_pages: BTreeSet<PathBuf>,
    anchors: HashMap<PathBuf, BTreeSet<String>>,
    broken: Vec<String>,
}

impl Checker {
    fn anchors_of(&mut self, file: &Path) -> &BTreeSet<String> {
        let root = self.root.clone();
        self.anchors.entry(file.to_path_buf()).or_insert_with(|| {
            let text = fs::read_to_string(root.join(file)).unwrap_or_default();
            anchors(&expand_includes(&root, file, &text))
        })
    }

    /// Checks the links of `text`, shown in the book or on GitHub as the
    /// file `page` (a repository-relative path); `origin` names where the
    /// text comes from when it is included from another file.
    fn check(&mut self, page: &Path, text: &str, origin: &str) {
        let in_book = page.starts_with("docs/src");
        let folder = page.parent().unwrap_or(Path::new("")).to_path_buf();
        for link in links(text) {
            let where_ = format!("{origin}:{}: [{}]({})", link.line, link.text, link.target);
            let target = link.target.as_str();
            if target.is_empty() {
                self.broken.push(format!("{where_}: empty target"));
                continue;
            }
            if has_scheme(target) {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target, None),
            };
            let path = path.replace("%20", " ");
            if path.starts_with('/') {
                self.broken.push(format!(
                    "{where_}: an absolute path; link relative to the file"
                ));
                continue;
            }
            let resolved = if path.is_empty() {
                page.to_path_buf()
            } else {
                join(&folder, &path)
            };
            if resolved.starts_with("..") || !self.root.join(&resolved).exists() {
                self.broken
                    .push(format!("{where_}: {} does not exist", resolved.display()));
                continue;
            }
            let is_markdown = resolved.extension().is_some_and(|e| e == "md");
            if in_book && is_markdown && !self.book_pages.contains(&resolved) {
                self.broken.push(format!(
                    "{where_}: {} is not a page of the book (docs/src/SUMMARY.md): \
                     mdbook renders it as a .html that does not exist",
                    resolved.display()
                ));
                continue;
            }
            if let Some(fragment) = fragment {
                if !is_markdown {
                    continue;
                }
                if !self.anchors_of(&resolved).contains(fragment) {
                    self.broken.push(format!(
                        "{where_}: no heading or anchor #{fragment} in {}",
                        resolved.display()
                    ));
                }
            }
        }
    }
}

/// The text with its Markdown include directives replaced by what they
/// include (one level, as the book's pages use them), so that headings
/// and links of included files count for the page.
fn expand_includes(root: &Path, file: &Path, text: &str) -> String {
    if includes(text).is_empty() {
        return text.to_string();
    }
    let folder = file.parent().unwrap_or(Path::new(""));
    let mut out = String::new();
    for line in text.lines() {
        match includes(line).first() {
            Some((_, path, selector)) if line.trim().starts_with("{{#include") => {
                let target = join(folder, path);
                let body = fs::read_to_string(root.join(&target)).unwrap_or_default();
                out.push_str(&included(&body, selector.as_deref()).unwrap_or_default());
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[test]
fn every_documentation_link_resolves() {
    let root = repo_root();
    let mut checker = Checker {
        book_pages: book_pages(&root),
        root: root.clone(),
        anchors: HashMap::new(),
        broken: Vec::new(),
    };
    let files = documents(&root);
    for file in &files {
        let text = fs::read_to_string(root.join(file)).unwrap();
        checker.check(file, &text, &file.display().to_string());
        let folder = file.parent().unwrap_or(Path::new("")).to_path_buf();
        for (line, path, selector) in includes(&text) {
            let target = join(&folder, &path);
            let argument = match &selector {
                Some(selector) => format!("{path}:{selector}"),
                None => path.clone(),
            };
            let where_ = format!("{}:{line}: {{{{#include {argument}}}}}", file.display());
            let Ok(body) = fs::read_to_string(root.join(&target)) else {
                checker
                    .broken
                    .push(format!("{where_}: {} does not exist", target.display()));
                continue;
            };
            match included(&body, selector.as_deref()) {
                Err(why) => checker
                    .broken
                    .push(format!("{where_}: {}: {why}", target.display())),
                // The included text's links, from the page that shows them.
                Ok(part) if target.extension().is_some_and(|e| e == "md") => {
                    let origin = format!("{} (included by {})", target.display(), file.display());
                    checker.check(file, &part, &origin);
                }
                Ok(_) => {}
            }
        }
    }
    // Every page the book lists exists (the links of SUMMARY.md above) and
    // every Markdown file under docs/src is in the book: one left out is
    // neither built nor checked by anyone reading the book.
    for file in &files {
        if file.starts_with("docs/src") && !checker.book_pages.contains(file) {
            let included_somewhere = files.iter().any(|other| {
                let text = fs::read_to_string(root.join(other)).unwrap_or_default();
                let folder = other.parent().unwrap_or(Path::new("")).to_path_buf();
                includes(&text)
                    .iter()
                    .any(|(_, path, _)| join(&folder, path) == *file)
            });
            if !included_somewhere {
                checker.broken.push(format!(
                    "{}: not listed in docs/src/SUMMARY.md (nor included by a page)",
                    file.display()
                ));
            }
        }
    }
    assert!(
        checker.broken.is_empty(),
        "{} broken documentation link(s) in {} files:\n  {}\n",
        checker.broken.len(),
        files.len(),
        checker.broken.join("\n  ")
    );
}

#[test]
fn the_checker_reads_markdown_as_github_and_mdbook_do() {
    assert_eq!(
        slug(&heading_text(
            "Personal data: erasure on delete, and `clerk-sync-worker forget`"
        )),
        "personal-data-erasure-on-delete-and-clerk-sync-worker-forget"
    );
    assert_eq!(slug("Operators' commands"), "operators-commands");
    assert_eq!(
        slug("[The worker](worker.md) again"),
        "the-workerworkermd-again"
    );
    assert_eq!(
        slug(&heading_text("[The worker](worker.md) again")),
        "the-worker-again"
    );
    let text = "# A\n## A\n```\n# not a heading [x](nowhere.md)\n```\nsee `[y](nowhere.md)` and [z](here.md#a-1)\n[ref]: other.md\n";
    assert_eq!(
        anchors(text),
        ["a", "a-1"].into_iter().map(String::from).collect()
    );
    let found: Vec<_> = links(text).into_iter().map(|l| l.target).collect();
    assert_eq!(found, ["here.md#a-1", "other.md"]);
    assert_eq!(
        included(
            "a\n<!-- ANCHOR: x -->\nb\n<!-- ANCHOR_END: x -->\nc",
            Some("x")
        )
        .unwrap(),
        "b"
    );
    assert_eq!(included("a\nb\nc", Some("2:")).unwrap(), "b\nc");
    assert_eq!(
        join(Path::new("docs/src/app"), "../../../README.md"),
        Path::new("README.md")
    );
}
