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
            memberof: super::memberof::MemberOfSettings::from_config(&cfg.memberof),
            refint: super::refint::RefintSettings::from_config(&cfg.refint),
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
    let dir = Directory::open(store, schema, dcfg)?;
    // After the open: the schema now holds the definitions added over LDAP.
    check_attribute_names(cfg, &dir.schema())?;
    // Readers may run beside a server whose index set is the one to keep.
    if !matches!(mode, OpenMode::Reader) {
        dir.sync_indexes(fresh, cfg.indexes.is_none())?;
    }
    Ok(Opened {
        dir,
        fresh,
        suffixes,
    })
}

const DN_SYNTAX: &str = "1.3.6.1.4.1.1466.115.121.1.12";
const NAME_AND_OPTIONAL_UID_SYNTAX: &str = "1.3.6.1.4.1.1466.115.121.1.34";

/// Every configuration key that names an attribute type or object class
/// must name one the schema knows, and what it names must be usable there:
/// a typo is refused at start with the key and the name, never ignored.
pub fn check_attribute_names(cfg: &Config, schema: &Schema) -> DirResult<()> {
    let refuse = |key: &str, msg: String| {
        Err(DirError::UnwillingToPerform(format!(
            "configuration {key}: {msg}"
        )))
    };
    let known = |key: &str, name: &str| match schema.attribute(name) {
        Some(at) => Ok(at),
        None => Err(DirError::UnwillingToPerform(format!(
            "configuration {key}: the schema has no attribute type '{name}'"
        ))),
    };
    let dn_valued = |at: &crate::schema::AttributeType| {
        matches!(
            at.syntax.as_deref(),
            Some(DN_SYNTAX) | Some(NAME_AND_OPTIONAL_UID_SYNTAX)
        )
    };
    let indexes = IndexConfig::from_specs(cfg.indexes.as_ref()).map_err(DirError::Protocol)?;
    let memberof = &cfg.memberof;
    let memberof_at = known("[memberof] attribute", &memberof.attribute)?;
    if let Some(specs) = &cfg.indexes {
        for name in specs.keys() {
            let at = known(&format!("[indexes] {name}"), name)?;
            if !at.name().eq_ignore_ascii_case(name) {
                return refuse(
                    &format!("[indexes] {name}"),
                    format!(
                        "'{name}' is another name of '{}': index it under that name",
                        at.name()
                    ),
                );
            }
            if memberof.enabled && at.oid == memberof_at.oid {
                return refuse(
                    &format!("[indexes] {name}"),
                    format!("'{name}' is computed from the groups, not stored, so it cannot be indexed; (memberOf=<group>) filters are answered from the group's members"),
                );
            }
        }
    }
    if memberof.enabled && memberof_at.syntax.as_deref() != Some(DN_SYNTAX) {
        return refuse(
            "[memberof] attribute",
            format!("'{}' does not have the DN syntax", memberof.attribute),
        );
    }
    for (class, attr) in &memberof.groups {
        let key = format!("[memberof.groups] {class}");
        if schema.object_class(class).is_none() {
            return refuse(&key, format!("the schema has no object class '{class}'"));
        }
        let at = known(&key, attr)?;
        if !memberof.enabled {
            continue;
        }
        if !dn_valued(&at) {
            return refuse(&key, format!("'{attr}' does not hold DNs"));
        }
        if at.oid == memberof_at.oid {
            return refuse(
                &key,
                format!("'{attr}' is the computed memberOf attribute itself"),
            );
        }
        if !indexes.kinds(&at).eq {
            return refuse(
                &key,
                format!("memberOf looks groups up by '{attr}', which needs an equality index: add {attr} = \"eq\" to [indexes]"),
            );
        }
    }
    for attr in &cfg.refint.attributes {
        let key = "[refint] attributes";
        let at = known(key, attr)?;
        if !cfg.refint.enabled {
            continue;
        }
        if memberof.enabled && at.oid == memberof_at.oid {
            return refuse(
                key,
                format!("'{attr}' is computed from the groups, never stored, so it always follows deletes and renames; remove it from the list"),
            );
        }
        if !dn_valued(&at) {
            return refuse(key, format!("'{attr}' does not hold DNs"));
        }
    }
    if let Some(attr) = &cfg.tls.cert_map_attribute {
        known("[tls] cert_map_attribute", attr)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml: &str) -> Result<(), String> {
        let cfg: Config = toml::from_str(toml).unwrap();
        check_attribute_names(&cfg, &Schema::builtin().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_pass_and_unknown_names_are_refused_by_key() {
        check("").unwrap();
        check(include_str!("../../config/ferrodir.toml")).unwrap();
        let e = check("[indexes]\nuid = \"eq\"\nnoSuchAttr = \"eq\"\n").unwrap_err();
        assert!(
            e.contains("[indexes] noSuchAttr") && e.contains("'noSuchAttr'"),
            "{e}"
        );
        let e = check("[refint]\nattributes = [\"member\", \"managr\"]\n").unwrap_err();
        assert!(
            e.contains("[refint] attributes") && e.contains("'managr'"),
            "{e}"
        );
        let e = check("[memberof.groups]\ngroupOfNames = \"membr\"\n").unwrap_err();
        assert!(
            e.contains("[memberof.groups] groupOfNames") && e.contains("'membr'"),
            "{e}"
        );
        let e = check("[memberof.groups]\ngroupOfNamez = \"member\"\n").unwrap_err();
        assert!(e.contains("object class 'groupOfNamez'"), "{e}");
        let e = check("[memberof]\nattribute = \"memberOff\"\n").unwrap_err();
        assert!(e.contains("[memberof] attribute"), "{e}");
        let e = check("[tls]\ncert_map_attribute = \"uidd\"\n").unwrap_err();
        assert!(
            e.contains("[tls] cert_map_attribute") && e.contains("'uidd'"),
            "{e}"
        );
        // Unknown names are refused even where the feature is off.
        let e = check("[refint]\nenabled = false\nattributes = [\"nope\"]\n").unwrap_err();
        assert!(e.contains("'nope'"), "{e}");
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        // A member attribute without an equality index.
        let e = check("[indexes]\nobjectClass = \"eq\"\nuniqueMember = \"eq\"\n").unwrap_err();
        assert!(e.contains("member = \"eq\""), "{e}");
        // memberOf is computed: not indexed, not a refint attribute.
        let e = check("[indexes]\nmember = \"eq\"\nuniqueMember = \"eq\"\nmemberOf = \"eq\"\n")
            .unwrap_err();
        assert!(e.contains("[indexes] memberOf"), "{e}");
        let e = check("[refint]\nattributes = [\"member\", \"memberOf\"]\n").unwrap_err();
        assert!(e.contains("computed"), "{e}");
        // Not DN-valued.
        let e = check("[refint]\nattributes = [\"description\"]\n").unwrap_err();
        assert!(e.contains("does not hold DNs"), "{e}");
        // Index keys use primary names: an alias would never match.
        let e = check("[indexes]\nmember = \"eq\"\nuniqueMember = \"eq\"\ncommonName = \"eq\"\n")
            .unwrap_err();
        assert!(e.contains("'cn'"), "{e}");
        // Turned off, the same index set is fine.
        check("[memberof]\nenabled = false\n[indexes]\nobjectClass = \"eq\"\n").unwrap();
    }
}
