//! The TOML bootstrap configuration: what is needed before the store opens
//! (listeners, data directory, suffixes, limits, indexes, logging). Every key
//! is documented in config/ferrodir.toml.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the LMDB environment lives.
    pub data_dir: PathBuf,
    /// Plain LDAP listeners, e.g. "127.0.0.1:389" or "[::1]:389".
    pub ldap: Vec<String>,
    /// Naming contexts served. Empty: those recorded in the data directory,
    /// or dc=example,dc=com for a new one.
    pub suffixes: Vec<String>,
    /// The root DN: bypasses access control, not an entry in the tree.
    pub root_dn: String,
    /// File whose first line is the root password, read at the first start
    /// only (FERRODIR_ROOT_PASSWORD takes precedence).
    pub root_password_file: Option<PathBuf>,
    /// This server's replica ID (1..65534 writable, 65535 read-only).
    pub replica_id: u16,
    /// Password storage scheme for new passwords (e.g. "PBKDF2-SHA512", "ARGON2", "SSHA").
    pub password_scheme: String,
    /// Maximum LMDB map size in MiB (virtual; the file grows as needed).
    pub map_size_mib: usize,
    pub limits: Limits,
    /// Attribute indexes: attribute name -> "eq", "pres", "sub" combinations.
    /// When given, replaces the default set.
    pub indexes: Option<BTreeMap<String, String>>,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "ferrodir=debug".
    pub log: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest LDAP message accepted, in bytes.
    pub max_message_size: usize,
    /// Open connections at most (further ones are closed at once).
    pub max_connections: usize,
    /// Seconds a bound connection may stay silent.
    pub idle_timeout: u64,
    /// Seconds an anonymous connection may stay silent.
    pub anonymous_idle_timeout: u64,
    /// Operations in flight per connection; more get busy (51).
    pub max_outstanding: usize,
    /// Entries a non-root search returns at most (0 = unlimited).
    pub size_limit: usize,
    /// Seconds a non-root search may run (0 = unlimited).
    pub time_limit: u64,
    /// Deepest filter nesting accepted.
    pub max_filter_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 16 << 20,
            max_connections: 10_000,
            idle_timeout: 3600,
            anonymous_idle_timeout: 300,
            max_outstanding: 256,
            size_limit: 500,
            time_limit: 3600,
            max_filter_depth: 64,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("ferrodir-data"),
            ldap: vec!["127.0.0.1:389".into()],
            suffixes: Vec::new(),
            root_dn: "cn=Directory Manager".into(),
            root_password_file: None,
            replica_id: 1,
            password_scheme: "PBKDF2-SHA512".into(),
            map_size_mib: 64 * 1024,
            limits: Limits::default(),
            indexes: None,
            log: "info".into(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn index_config(&self) -> Result<crate::directory::IndexConfig, ConfigError> {
        let Some(map) = &self.indexes else {
            return Ok(crate::directory::IndexConfig::default());
        };
        let mut attrs = std::collections::HashMap::new();
        for (attr, spec) in map {
            let kinds = crate::directory::IndexKinds::parse(spec)
                .map_err(|e| ConfigError::Invalid(format!("index for {attr}: {e}")))?;
            attrs.insert(attr.to_ascii_lowercase(), kinds);
        }
        Ok(crate::directory::IndexConfig { attrs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_sample_and_rejects_unknown_keys() {
        let sample = include_str!("../../config/ferrodir.toml");
        let cfg: Config = toml::from_str(sample).unwrap();
        assert_eq!(cfg.root_dn, "cn=Directory Manager");
        assert!(cfg.index_config().unwrap().attrs.contains_key("uid"));
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
        let bad: Config = toml::from_str("[indexes]\nuid = \"eq,fast\"").unwrap();
        assert!(bad.index_config().is_err());
    }
}
