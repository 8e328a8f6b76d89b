//! The direction of dependencies between the server's layers
//! (docs/architecture.md): a module may use only the layers listed for it
//! here, so a lower layer never imports a higher one and the layers cannot
//! form a cycle. The check reads the sources: every `crate::<layer>` path in
//! a file names a dependency of that file's layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each layer with the layers it may use, lowest first. A layer may only
/// name layers that appear above it in this list, which is what makes the
/// graph acyclic; `layers_are_listed_lowest_first` checks that.
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("ldif", &["model"]),
    ("config", &["model"]),
    ("schema", &["model"]),
    ("store", &["model"]),
    ("auth", &["model"]),
    ("repl::core", &["model"]),
    ("query", &["model", "schema", "store", "config"]),
    ("acl", &["model", "schema", "store", "auth", "query"]),
    (
        "directory",
        &[
            "model",
            "config",
            "schema",
            "store",
            "auth",
            "repl::core",
            "query",
            "acl",
            "ldif",
        ],
    ),
    (
        "ops",
        &[
            "model",
            "config",
            "schema",
            "auth",
            "repl::core",
            "query",
            "acl",
            "directory",
        ],
    ),
    (
        "repl::session",
        &[
            "model",
            "config",
            "schema",
            "auth",
            "repl::core",
            "directory",
            "ops",
        ],
    ),
    (
        "server",
        &["model", "config", "auth", "repl::core", "directory", "ops"],
    ),
];

/// Modules that exist only to group layers (`repl` holds core and session).
const GROUPS: &[&str] = &["repl"];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layer a source file belongs to, from its path below src/.
fn layer_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let first = parts.first()?;
    if GROUPS.contains(&first.as_str()) {
        let second = parts.get(1)?;
        if second == "mod" {
            return Some(first.clone());
        }
        return Some(format!("{first}::{second}"));
    }
    Some(first.clone())
}

/// Every layer named by a `crate::` path in `text`, including the ones
/// inside grouped imports such as `use crate::{model::Dn, store::Store}`.
fn layers_named(text: &str) -> BTreeSet<String> {
    let known: BTreeSet<String> = LAYERS
        .iter()
        .map(|(l, _)| l.to_string())
        .chain(GROUPS.iter().map(|g| g.to_string()))
        .collect();
    let mut found = BTreeSet::new();
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(pos) = rest.find("crate::") {
        rest = &rest[pos + "crate::".len()..];
        let names = if let Some(group) = rest.strip_prefix('{') {
            top_level_items(group)
        } else {
            vec![rest.chars().take(200).collect::<String>()]
        };
        for name in names {
            let mut segs = name
                .split("::")
                .map(|s| {
                    s.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .filter(|s| !s.is_empty());
            let Some(first) = segs.next() else { continue };
            if GROUPS.contains(&first.as_str()) {
                match segs.next() {
                    Some(second) => found.insert(format!("{first}::{second}")),
                    None => found.insert(first),
                };
            } else if known.contains(&first) {
                found.insert(first);
            }
        }
    }
    found
}

/// The comma-separated items of a `{...}` group up to its closing brace,
/// splitting only at the outermost level.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items.into_iter().map(|s| s.trim().to_string()).collect()
}

#[test]
fn layers_are_listed_lowest_first() {
    let mut seen = BTreeSet::new();
    for (layer, deps) in LAYERS {
        for dep in *deps {
            assert!(
                seen.contains(dep),
                "layer {layer} may use {dep}, which is not listed below it"
            );
        }
        seen.insert(*layer);
    }
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for path in &files {
        let rel = path.strip_prefix(&src).expect("below src");
        let Some(layer) = layer_of(rel) else { continue };
        // The binary and the CLI assemble every layer; group modules only
        // declare their parts.
        if layer == "main" || layer == "cli" || layer == "lib" || GROUPS.contains(&layer.as_str()) {
            continue;
        }
        let Some(deps) = allowed.get(layer.as_str()) else {
            violations.push(format!(
                "{}: module {layer} is not in the layer table of tests/layers.rs",
                rel.display()
            ));
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(path).expect("read source");
        for used in layers_named(&text) {
            let same = used == layer
                || (GROUPS.contains(&used.as_str()) && layer.starts_with(&format!("{used}::")));
            if !same && !deps.contains(&used.as_str()) {
                violations.push(format!("{}: {layer} uses {used}", rel.display()));
            }
        }
    }
    assert!(checked > 20, "only {checked} files checked: is src/ there?");
    assert!(
        violations.is_empty(),
        "imports against the direction of the layers (docs/architecture.md):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let named = layers_named(
        "use crate::{model::{Dn, Rdn}, store::Store};\nuse crate::repl::core::csn;\n// crate::ops in a comment\nlet x = crate::directory::Identity::anonymous();",
    );
    let expected: BTreeSet<String> = ["model", "store", "repl::core", "directory"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(named, expected);
}
