//! The core must stay pure: no store, directory, async runtime, LMDB or
//! network anywhere under src/repl/core, and no file system, clock or
//! environment outside the test-only files. Needles are assembled so this
//! file does not match itself.

use std::path::Path;

/// `crate` + `::`, spelled so this file does not contain it.
const CRATE: &str = concat!("crate", ":", ":");

const TEST_ONLY: [&str; 3] = ["purity.rs", "sim.rs", "scenarios.rs"];

#[test]
fn core_imports_nothing_impure() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/repl/core");
    let everywhere = [
        format!("{CRATE}store"),
        format!("{CRATE}directory"),
        format!("{CRATE}server"),
        ["tok", "io"].concat(),
        ["he", "ed"].concat(),
        ["std::", "net"].concat(),
    ];
    let outside_tests = [
        ["std::", "fs"].concat(),
        ["std::", "time"].concat(),
        ["std::", "env"].concat(),
        ["std::", "io"].concat(),
        ["std::", "thread"].concat(),
    ];
    let allowed_crate_paths = [format!("{CRATE}model"), format!("{CRATE}repl::core")];
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("core directory readable") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("source readable");
        let mut needles: Vec<&String> = everywhere.iter().collect();
        if !TEST_ONLY.contains(&name.as_str()) {
            needles.extend(outside_tests.iter());
        }
        for f in needles {
            assert!(!text.contains(f.as_str()), "{name} mentions {f}");
        }
        for (i, _) in text.match_indices(CRATE) {
            let rest = &text[i..];
            assert!(
                allowed_crate_paths
                    .iter()
                    .any(|a| rest.starts_with(a.as_str())),
                "{name} uses {}",
                rest.lines().next().unwrap_or_default()
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} files checked");
}
