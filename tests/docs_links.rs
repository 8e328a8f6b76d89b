//! The documentation points inside the repository, and what it points at
//! exists: every relative markdown link `](path)` in README.md and docs/*.md
//! resolves from the file that holds it, and every repository path written
//! in backticks (`src/...`, `tests/...`, `ldif/...`, ...) exists. A file
//! moved or renamed without its documentation fails here.

use std::path::{Path, PathBuf};

/// Folders that builds and tools create, named in the docs as places to look.
const GENERATED: &[&str] = &["fuzz/target", "fuzz/artifacts", "fuzz/corpus"];

/// Top-level folders whose paths the documentation names in backticks.
const ROOTS: &[&str] = &[
    "src/", "tests/", "ldif/", "docs/", "tools/", "config/", "dist/", "schema/", "fuzz/", ".ci/",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let docs = std::fs::read_dir(repo().join("docs")).expect("docs/");
    for e in docs {
        let p = e.expect("docs entry").path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    files.sort();
    files
}

/// Targets of `[text](target)` links, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            out.push((n + 1, rest[..end].trim().to_string()));
            rest = &rest[end..];
        }
    }
    out
}

/// Backticked words that are repository paths.
fn code_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (i, part) in line.split('`').enumerate() {
            // Odd parts are inside backticks.
            if i % 2 == 1
                && ROOTS.iter().any(|r| part.starts_with(r))
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            {
                out.push((n + 1, part.to_string()));
            }
        }
    }
    out
}

fn is_external(target: &str) -> bool {
    target.starts_with('#') || target.contains("://") || target.starts_with("mailto:")
}

#[test]
fn markdown_links_resolve_inside_the_repository() {
    let root = repo().canonicalize().expect("repository");
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("reading markdown");
        let base = doc.parent().expect("parent");
        for (line, target) in links(&text) {
            if is_external(&target) {
                continue;
            }
            let path = target.split('#').next().unwrap_or("");
            checked += 1;
            let full = base.join(path);
            match full.canonicalize() {
                Ok(p) if p.starts_with(&root) => {}
                Ok(p) => broken.push(format!(
                    "{}:{line}: {target} leaves the repository ({})",
                    doc.display(),
                    p.display()
                )),
                Err(_) => broken.push(format!("{}:{line}: {target} does not exist", doc.display())),
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} links found: is the parser broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn repository_paths_named_in_the_docs_exist() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("reading markdown");
        for (line, path) in code_paths(&text) {
            if GENERATED.iter().any(|g| path.starts_with(g)) {
                continue;
            }
            checked += 1;
            // docs/architecture.md names modules relative to src/ (`schema/mod.rs`).
            if !repo().join(&path).exists() && !repo().join("src").join(&path).exists() {
                missing.push(format!("{}:{line}: `{path}`", doc.display()));
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} paths found: is the parser broken?"
    );
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
}

/// docs/replication.md's walkthroughs name LDIF files relative to
/// ldif/replication/ (`-f supplier-consumer/1-supplier-replica.ldif`).
#[test]
fn replication_walkthrough_files_exist() {
    let text = std::fs::read_to_string(repo().join("docs/replication.md")).expect("replication.md");
    let dir = repo().join("ldif/replication");
    let mut checked = 0;
    let mut missing = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for word in line.split(|c: char| c.is_whitespace() || c == '`') {
            if word.ends_with(".ldif") && word != "change.ldif" {
                checked += 1;
                let name = Path::new(word);
                let found = dir.join(name).exists()
                    || ["supplier-consumer", "two-suppliers"]
                        .iter()
                        .any(|sub| dir.join(sub).join(name).exists());
                if !found {
                    missing.push(format!("docs/replication.md:{}: {word}", n + 1));
                }
            }
        }
    }
    assert!(checked >= 8, "only {checked} LDIF files named");
    assert!(
        missing.is_empty(),
        "LDIF files that do not exist:\n{}",
        missing.join("\n")
    );
}
