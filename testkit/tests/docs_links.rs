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

#[path = "docs_links/markdown.rs"]
mod markdown;

use markdown::*;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

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
