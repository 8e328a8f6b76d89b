//! Offline data commands: import, export, backup, restore, hash-password.

use super::serve::{init_logging, parse_suffixes};
use anyhow::{anyhow, bail, Context, Result};
use ferrodir::auth::password::{self, Scheme};
use ferrodir::config::Config;
use ferrodir::directory::setup::{self, open_data_dir, OpenMode};
use ferrodir::directory::state_export;
use ferrodir::ldif::{LdifReader, LdifRecord};
use ferrodir::model::Dn;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

fn open_ldif(file: &Path) -> Result<BufReader<std::fs::File>> {
    Ok(BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    ))
}

/// The DN of the file's first entry: the suffix when none is given or recorded.
fn first_entry_dn(file: &Path) -> Option<Dn> {
    match LdifReader::new(open_ldif(file).ok()?).next()? {
        Ok((_, LdifRecord::Entry { dn, .. })) => Dn::parse(&dn).ok(),
        _ => None,
    }
}

pub fn import(data_dir: &Path, suffix_args: &[String], batch: usize, file: &Path) -> Result<()> {
    init_logging("warn");
    let wanted = parse_suffixes(suffix_args)?;
    let opened = open_data_dir(
        data_dir,
        OpenMode::Import,
        &Config::default(),
        &wanted,
        || first_entry_dn(file),
    )
    .with_context(|| format!("opening {}", data_dir.display()))?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} entries  {per_sec}  {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = std::time::Instant::now();
    let mut progress = |n: u64| bar.set_position(n);
    let source = file.display().to_string();
    let result = opened
        .dir
        .import_ldif(open_ldif(file)?, &source, batch, &mut progress);
    bar.finish_and_clear();
    let n = result?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {n} entries in {secs:.2} s ({:.0} entries/s)",
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

pub fn export(data_dir: &Path, output: Option<&Path>, replication_state: bool) -> Result<()> {
    init_logging("warn");
    let opened = open_data_dir(data_dir, OpenMode::Reader, &Config::default(), &[], || None)
        .with_context(|| format!("opening {}", data_dir.display()))?;
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if replication_state {
        state_export::write_replication_state(&opened.dir, &mut out)?;
        return Ok(out.flush()?);
    }
    opened.dir.export_ldif(&mut out)?;
    Ok(())
}

pub fn backup(data_dir: &Path, out: &Path) -> Result<()> {
    let info = setup::backup(data_dir, out)?;
    eprintln!(
        "backed up {} entries ({} bytes) of {} to {}",
        info.entries,
        info.data_bytes,
        data_dir.display(),
        out.display()
    );
    Ok(())
}

pub fn restore(backup: &Path, data_dir: &Path, force: bool) -> Result<()> {
    let info = setup::restore(backup, data_dir, force)?;
    eprintln!(
        "restored {} entries from {} into {}",
        info.entries,
        backup.display(),
        data_dir.display()
    );
    Ok(())
}

pub fn hash_password(scheme: &str, given: Option<String>) -> Result<()> {
    let scheme = Scheme::from_name(scheme.trim_matches(|c| c == '{' || c == '}'))
        .ok_or_else(|| anyhow!("unknown scheme {scheme:?}"))?;
    let pw = match given {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if pw.is_empty() {
        bail!("empty password");
    }
    println!("{}", password::hash(scheme, pw.as_bytes()));
    Ok(())
}
