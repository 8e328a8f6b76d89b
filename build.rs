//! Embeds schema/*.ldif (sorted by name) into the binary for `Schema::builtin()`.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=schema");
    let manifest = env::var("CARGO_MANIFEST_DIR")?;
    let dir = Path::new(&manifest).join("schema");
    let mut files: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".ldif") {
                files.push((name, e.path().to_string_lossy().into_owned()));
            }
        }
    }
    files.sort();
    let mut out = String::from("pub(super) static FILES: &[(&str, &str)] = &[\n");
    for (name, path) in &files {
        println!("cargo:rerun-if-changed=schema/{name}");
        writeln!(out, "    ({name:?}, include_str!({path:?})),")?;
    }
    out.push_str("];\n");
    fs::write(
        Path::new(&env::var("OUT_DIR")?).join("schema_files.rs"),
        out,
    )?;
    Ok(())
}
