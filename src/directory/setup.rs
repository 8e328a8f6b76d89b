//! Opening a data directory and preparing it to serve: which suffixes it
//! holds (recorded in the store so later commands find them), the directory
//! configuration derived from the TOML file, the base entry of a new suffix
//! and the default access rules. The CLI calls these; it never opens the
//! store itself.

use super::{policy, DirError, DirResult, Directory, DirectoryConfig};
use crate::auth::password::Scheme;
use crate::config::Config;
use crate::model::{Dn, ModOp, Modification, WriteOp};
use crate::query::IndexConfig;
use crate::schema::Schema;
use crate::store::{Store, StoreOptions, StoreRead};
use std::path::Path;
use std::sync::Arc;

const META_SUFFIXES: &str = "suffixes";

/// How a command uses the data directory.
#[derive(Debug, Clone, Copy)]
pub enum OpenMode {
    /// The server: exclusive, durable commits, the configured map size.
    Serve { map_size: usize },
    /// Offline import: exclusive, one sync at the end.
    Import,
    /// Export while a server may be running: a reader, no lock.
    Reader,
}

/// A data directory opened for a command.
pub struct Opened {
    pub dir: Directory,
    /// The store held no entry before this start.
    pub fresh: bool,
    pub suffixes: Vec<Dn>,
}

impl DirectoryConfig {
    /// The directory settings of a configuration file, for `suffixes`.
    pub fn from_config(cfg: &Config, suffixes: Vec<Dn>) -> DirResult<DirectoryConfig> {
        let password_scheme = Scheme::from_name(&cfg.password_scheme).ok_or_else(|| {
            DirError::UnwillingToPerform(format!(
                "unknown password_scheme {:?}",
                cfg.password_scheme
            ))
        })?;
        Ok(DirectoryConfig {
            suffixes,
            root_dn: Dn::parse(&cfg.root_dn)
                .map_err(|e| DirError::InvalidDn(format!("root_dn: {e}")))?,
            indexes: IndexConfig::from_specs(cfg.indexes.as_ref()).map_err(DirError::Protocol)?,
            replica_id: cfg.replica_id,
            size_limit: cfg.limits.size_limit,
            time_limit: cfg.limits.time_limit,
            password_scheme,
            password_policy: policy::PasswordPolicy::from_security(&cfg.security),
        })
    }
}

fn recorded_suffixes(store: &Store) -> DirResult<Vec<Dn>> {
    let Some(text) = store.read()?.meta(META_SUFFIXES)? else {
        return Ok(Vec::new());
    };
    String::from_utf8_lossy(&text)
        .lines()
        .map(|s| Dn::parse(s).map_err(|e| DirError::InvalidDn(format!("recorded suffix: {e}"))))
        .collect()
}

fn record_suffixes(store: &Store, suffixes: &[Dn]) -> DirResult<()> {
    let text: Vec<String> = suffixes.iter().map(Dn::to_string).collect();
    let mut w = store.write()?;
    w.put_meta(META_SUFFIXES, text.join("\n").as_bytes())?;
    w.commit()?;
    Ok(())
}

/// Opens the data directory at `path`. The suffixes are `wanted` when
/// given, else those recorded by an earlier start, else `fallback()`; the
/// choice is recorded (except by readers).
pub fn open_data_dir(
    path: &Path,
    mode: OpenMode,
    cfg: &Config,
    wanted: &[Dn],
    fallback: impl FnOnce() -> Option<Dn>,
) -> DirResult<Opened> {
    let opts = match mode {
        OpenMode::Serve { map_size } => StoreOptions {
            map_size,
            ..StoreOptions::default()
        },
        OpenMode::Import => StoreOptions {
            no_sync: true,
            ..StoreOptions::default()
        },
        OpenMode::Reader => StoreOptions {
            exclusive: false,
            ..StoreOptions::default()
        },
    };
    let store = Store::open(path, &opts)?;
    let fresh = store.read()?.entry_count()? == 0;
    let mut suffixes = wanted.to_vec();
    if suffixes.is_empty() {
        suffixes = recorded_suffixes(&store)?;
    }
    if suffixes.is_empty() {
        suffixes.extend(fallback());
    }
    if suffixes.is_empty() {
        return Err(DirError::UnwillingToPerform(
            "no suffix: give --suffix or start the file with the base entry".into(),
        ));
    }
    if !matches!(mode, OpenMode::Reader) {
        record_suffixes(&store, &suffixes)?;
    }
    let schema =
        Arc::new(Schema::builtin().map_err(|e| {
            DirError::UnwillingToPerform(format!("loading the built-in schema: {e}"))
        })?);
    let dcfg = DirectoryConfig::from_config(cfg, suffixes.clone())?;
    Ok(Opened {
        dir: Directory::open(store, schema, dcfg)?,
        fresh,
        suffixes,
    })
}

/// The base entry created for a new suffix, chosen by its RDN type.
fn base_entry(suffix: &Dn) -> Option<WriteOp> {
    let ava = suffix.rdn()?.avas.first()?;
    let class: &[u8] = match ava.attr.to_ascii_lowercase().as_str() {
        "dc" => b"domain",
        "o" => b"organization",
        "ou" => b"organizationalUnit",
        "c" => b"country",
        _ => return None,
    };
    Some(WriteOp::Add {
        dn: suffix.clone(),
        attrs: vec![
            ("objectClass".into(), vec![b"top".to_vec(), class.to_vec()]),
            (ava.attr.clone(), vec![ava.value.clone()]),
        ],
    })
}

impl Directory {
    /// Makes every suffix ready to serve: on a fresh data directory its base
    /// entry, and once per suffix the default access rules.
    pub async fn prepare_suffixes(&self, fresh: bool) -> DirResult<()> {
        let suffixes = self.config().suffixes.clone();
        if fresh {
            let root = self.root_identity();
            for s in &suffixes {
                if let Some(op) = base_entry(s) {
                    self.write(&root, op).await?;
                    tracing::info!("created base entry {s}");
                }
            }
        }
        for s in &suffixes {
            self.ensure_default_acis(s).await?;
        }
        Ok(())
    }

    /// Gives a suffix the default access rules once: a base entry without
    /// any `aci` gets them (new, imported or from an older release); an
    /// admin who removes them later is not overridden, as the meta record
    /// says it was done.
    async fn ensure_default_acis(&self, suffix: &Dn) -> DirResult<()> {
        let marker = format!("default_acis:{}", self.normalize_dn(suffix));
        if self.store().read()?.meta(&marker)?.is_some() {
            return Ok(());
        }
        let has_aci = {
            let txn = self.store().read()?;
            match txn.id_by_dn(&self.core.dn_key(suffix))? {
                Some(id) => txn.entry(id)?.map(|e| e.has("aci")),
                None => None,
            }
        };
        match has_aci {
            None => return Ok(()), // no base entry yet: decide when it exists
            Some(false) => {
                let op = WriteOp::Modify {
                    dn: suffix.clone(),
                    mods: vec![Modification {
                        op: ModOp::Add,
                        attr: "aci".into(),
                        values: crate::acl::default_acis(suffix)
                            .into_iter()
                            .map(String::into_bytes)
                            .collect(),
                    }],
                };
                self.write(&self.root_identity(), op).await?;
                tracing::info!(
                    "added the default access rules to {suffix} (see docs/access-control.md)"
                );
            }
            Some(true) => {}
        }
        let mut w = self.store().write()?;
        w.put_meta(&marker, b"1")?;
        w.commit()?;
        Ok(())
    }
}

/// Copies a data directory while it is served (one LMDB snapshot).
pub use crate::store::backup::backup;
/// Puts a backup in place of a (stopped) data directory.
pub use crate::store::backup::restore;
