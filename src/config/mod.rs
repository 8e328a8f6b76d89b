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
    /// LDAPS listeners (TLS from the first byte). Absent: the embedded
    /// default 127.0.0.1:636, which is skipped with a warning when it cannot
    /// be bound; an explicit list must bind.
    pub ldaps: Option<Vec<String>>,
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
    pub tls: TlsConfig,
    pub security: Security,
    pub replication: ReplicationConfig,
    /// Attribute indexes: attribute name -> "eq", "pres", "sub" combinations.
    /// When given, replaces the default set.
    pub indexes: Option<BTreeMap<String, String>>,
    /// The computed memberOf attribute (docs/groups.md).
    pub memberof: MemberOfConfig,
    /// Referential integrity: references to deleted and renamed entries
    /// follow them (docs/groups.md).
    pub refint: RefintConfig,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "ferrodir=debug".
    pub log: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest LDAP message accepted on a bound connection, in bytes.
    pub max_message_size: usize,
    /// Largest LDAP message accepted before a successful bind, in bytes
    /// (at most max_message_size).
    pub anonymous_max_message_size: usize,
    /// Bytes of partially received messages all connections together may
    /// hold; a connection whose partial message would exceed it is closed.
    pub max_pending_message_bytes: usize,
    /// RDNs a DN in a request may have (0 = unlimited).
    pub max_dn_depth: usize,
    /// Bytes a DN in a request may have (0 = unlimited).
    pub max_dn_length: usize,
    /// Entries a non-root search may look at (0 = unlimited).
    pub lookthrough_limit: usize,
    /// Terms (AND/OR/NOT and assertions) a non-root search filter may have (0 = unlimited).
    pub max_filter_terms: usize,
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
    /// Open connections from one source address at most (0 = unlimited).
    pub max_connections_per_ip: usize,
    /// Seconds a TLS handshake (LDAPS or after StartTLS) may take.
    pub tls_handshake_timeout: u64,
    /// Seconds a response may wait for the client to read it before the
    /// connection is closed (a client that never reads cannot pin memory).
    pub write_timeout: u64,
}

/// Who must present a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No certificate is asked for; SASL EXTERNAL is not offered.
    None,
    /// A certificate is asked for and verified when sent; clients without one still connect.
    Optional,
    /// Handshakes without a valid client certificate fail.
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// false: no LDAPS, no StartTLS, no certificates generated.
    pub enabled: bool,
    /// Server certificate chain (PEM, leaf first). Absent: a certificate
    /// issued by an instance CA generated in <data_dir>/tls/.
    pub cert_file: Option<PathBuf>,
    /// The server certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to.
    /// Absent: the generated instance CA, when there is one.
    pub ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// SASL EXTERNAL: when no entry has the certificate's subject DN, look
    /// for exactly one entry with (<attribute>=<certificate CN>) under the
    /// suffixes. Absent: exact DN match only.
    pub cert_map_attribute: Option<String>,
    /// Seconds between checks of the certificate files for changes
    /// (0: reload on SIGHUP only).
    pub reload_interval: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enabled: true,
            cert_file: None,
            key_file: None,
            ca_file: None,
            client_auth: ClientAuth::Optional,
            cert_map_attribute: None,
            reload_interval: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Refuse simple binds with a password over unencrypted connections
    /// from non-loopback addresses (confidentialityRequired, 13).
    pub require_secure_binds: bool,
    /// Shortest password a user may set (the root DN is exempt; 0 = none).
    pub min_password_length: usize,
    /// Failed binds within `lockout_window` seconds that lock an account (0 = never).
    pub lockout_threshold: u32,
    /// Seconds an account stays locked.
    pub lockout_duration: u64,
    pub lockout_window: u64,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            require_secure_binds: true,
            min_password_length: 8,
            lockout_threshold: 5,
            lockout_duration: 600,
            lockout_window: 600,
        }
    }
}

/// Trust and identity of this server when it connects to consumers over
/// LDAPS or StartTLS (supplier side of replication agreements).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// CA certificates (PEM) consumers' certificates must chain to. Absent:
    /// [tls] ca_file, else the instance CA (<data_dir>/tls/ca.pem).
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM chain) for SSLCLIENTAUTH agreements. Absent:
    /// the server's own certificate ([tls] cert_file, else the generated
    /// <data_dir>/tls/server.pem).
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM); goes with client_cert_file.
    pub client_key_file: Option<PathBuf>,
}

/// `[memberof]`: which groups give their members a computed memberOf.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemberOfConfig {
    pub enabled: bool,
    /// The attribute that shows an entry's groups (DN syntax).
    pub attribute: String,
    /// Group object class -> the attribute naming its members. Each member
    /// attribute needs an equality index.
    pub groups: BTreeMap<String, String>,
    /// Also list the groups that contain a group the entry is in.
    pub nested: bool,
}

impl Default for MemberOfConfig {
    fn default() -> Self {
        MemberOfConfig {
            enabled: true,
            attribute: "memberOf".into(),
            groups: BTreeMap::from([
                ("groupOfNames".to_string(), "member".to_string()),
                ("groupOfUniqueNames".to_string(), "uniqueMember".to_string()),
            ]),
            nested: false,
        }
    }
}

/// `[refint]`: DN-valued attributes that follow deletes and renames.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefintConfig {
    pub enabled: bool,
    /// Attributes whose values name entries (DN syntax).
    pub attributes: Vec<String>,
    /// false: a client's add or modify whose value of one of `attributes`
    /// names a missing entry of a served suffix is refused.
    pub allow_dangling: bool,
}

impl Default for RefintConfig {
    fn default() -> Self {
        RefintConfig {
            enabled: true,
            attributes: ["member", "uniqueMember", "manager", "seeAlso"]
                .map(String::from)
                .to_vec(),
            allow_dangling: true,
        }
    }
}

/// The embedded default LDAPS listener.
pub const DEFAULT_LDAPS: &str = "127.0.0.1:636";

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 16 << 20,
            // OpenLDAP's sockbuf_max_incoming: 256 KiB before a bind.
            anonymous_max_message_size: 256 << 10,
            max_pending_message_bytes: 256 << 20,
            max_dn_depth: 256,
            max_dn_length: 16 << 10,
            // 389-ds's nsslapd-lookthroughlimit default.
            lookthrough_limit: 5000,
            max_filter_terms: 1000,
            max_connections: 10_000,
            idle_timeout: 3600,
            anonymous_idle_timeout: 300,
            max_outstanding: 256,
            size_limit: 500,
            time_limit: 3600,
            max_filter_depth: 64,
            max_connections_per_ip: 0,
            tls_handshake_timeout: 10,
            write_timeout: 60,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("ferrodir-data"),
            ldap: vec!["127.0.0.1:389".into()],
            ldaps: None,
            suffixes: Vec::new(),
            root_dn: "cn=Directory Manager".into(),
            root_password_file: None,
            replica_id: 1,
            password_scheme: "PBKDF2-SHA512".into(),
            map_size_mib: 64 * 1024,
            limits: Limits::default(),
            tls: TlsConfig::default(),
            security: Security::default(),
            replication: ReplicationConfig::default(),
            indexes: None,
            memberof: MemberOfConfig::default(),
            refint: RefintConfig::default(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_sample_and_rejects_unknown_keys() {
        let sample = include_str!("../../config/ferrodir.toml");
        let cfg: Config = toml::from_str(sample).unwrap();
        assert_eq!(cfg.root_dn, "cn=Directory Manager");
        assert!(cfg.indexes.as_ref().unwrap().contains_key("uid"));
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
        assert_eq!(cfg.ldaps, None);
        let l: Config = toml::from_str("ldaps = [\"127.0.0.1:6636\"]").unwrap();
        assert_eq!(l.ldaps, Some(vec!["127.0.0.1:6636".to_string()]));
        assert_eq!(cfg.tls.client_auth, ClientAuth::Optional);
        assert!(cfg.security.require_secure_binds);
        let off: Config = toml::from_str("[security]\nrequire_secure_binds = false").unwrap();
        assert!(!off.security.require_secure_binds);
        assert!(Config::default().security.require_secure_binds);
        let tls: Config =
            toml::from_str("[tls]\nclient_auth = \"required\"\ncert_map_attribute = \"uid\"")
                .unwrap();
        assert_eq!(tls.tls.client_auth, ClientAuth::Required);
        assert!(toml::from_str::<Config>("[tls]\nclient_auth = \"maybe\"").is_err());
        assert_eq!(cfg.replication.ca_file, None);
        let r: Config = toml::from_str("[replication]\nca_file = \"/x/ca.pem\"").unwrap();
        assert_eq!(r.replication.ca_file, Some(PathBuf::from("/x/ca.pem")));
        assert!(toml::from_str::<Config>("[replication]\nbogus = 1").is_err());
        // The sample's [memberof] and [refint] are the defaults.
        let d = Config::default();
        assert_eq!(cfg.memberof.groups, d.memberof.groups);
        assert_eq!(cfg.memberof.attribute, d.memberof.attribute);
        assert_eq!(cfg.memberof.enabled, d.memberof.enabled);
        assert_eq!(cfg.memberof.nested, d.memberof.nested);
        assert_eq!(cfg.refint.attributes, d.refint.attributes);
        assert_eq!(cfg.refint.allow_dangling, d.refint.allow_dangling);
        assert!(toml::from_str::<Config>("[memberof]\nbogus = 1").is_err());
        assert!(toml::from_str::<Config>("[refint]\nattribute = [\"member\"]").is_err());
    }
}
