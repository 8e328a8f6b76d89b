//! The master side of the master/slave role: synchronization keys and the
//! slaves that joined with them, kept as entries under cn=config.
//!
//! - `cn=<key id>,cn=join keys,cn=config` (ferrodirJoinKey): the key's
//!   secret in userPassword (hashed like any password); revoking a key
//!   deletes its entry.
//! - `cn=<device id>,cn=slaves,cn=config` (ferrodirSlave): a slave's
//!   replication identity; its generated credential in userPassword. These
//!   identities read the whole directory, secrets included, as
//!   nsDS5ReplicaBindDN identities do, and nothing else.
//!
//! A server's Device ID is the entryUUID of its cn=config entry: created
//! once with the data directory, never changed.

use super::{DirError, DirResult, Directory, Identity};
use crate::auth::password;
use crate::model::{Dn, ModOp, Modification, WriteOp};
use crate::repl::core::join_key::{self, JoinKey};
use crate::store::StoreRead;
use rand::RngCore;

pub const KEYS_DN: &str = "cn=join keys,cn=config";
pub const SLAVES_DN: &str = "cn=slaves,cn=config";

/// What a slave gets when it joins.
#[derive(Debug, Clone)]
pub struct JoinGrant {
    /// The slave's replication identity on the master and its credential.
    pub bind_dn: Dn,
    pub password: String,
    /// The master's suffixes, each to be followed.
    pub suffixes: Vec<Dn>,
    /// The master's Device ID.
    pub master: String,
}

fn parse(text: &str) -> DirResult<Dn> {
    Dn::parse(text).map_err(|e| DirError::UnwillingToPerform(format!("'{text}': {e}")))
}

fn is_device_id(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|u| u.hyphenated().to_string() == text)
}

impl Directory {
    /// This server's Device ID: the entryUUID of cn=config.
    pub fn device_id(&self) -> DirResult<String> {
        let txn = self.core.store.read()?;
        let config = parse("cn=config")?;
        let entry = match txn.id_by_dn(&self.core.dn_key(&config))? {
            Some(id) => txn.entry(id)?,
            None => None,
        };
        entry
            .and_then(|e| e.first_str("entryUUID").map(str::to_string))
            .ok_or_else(|| DirError::Busy("cn=config has no entryUUID yet".into()))
    }

    fn entry_exists(&self, dn: &Dn) -> DirResult<bool> {
        let txn = self.core.store.read()?;
        Ok(txn.id_by_dn(&self.core.dn_key(dn))?.is_some())
    }

    /// Adds a cn=config container when it is not there yet.
    async fn ensure_container(&self, dn: &str) -> DirResult<()> {
        let dn = parse(dn)?;
        if self.entry_exists(&dn)? {
            return Ok(());
        }
        let cn = dn
            .rdns
            .first()
            .and_then(|r| r.avas.first())
            .map(|a| a.value.clone())
            .unwrap_or_default();
        let op = WriteOp::Add {
            dn,
            attrs: vec![
                (
                    "objectClass".into(),
                    vec![b"top".to_vec(), b"ferrodirContainer".to_vec()],
                ),
                ("cn".into(), vec![cn]),
            ],
        };
        match self.write(&self.root_identity(), op).await {
            Ok(()) | Err(DirError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a synchronization key; `pin` is the SHA-256 of the TLS
    /// certificate slaves will see (the caller knows the listener's).
    pub async fn create_join_key(
        &self,
        pin: [u8; 32],
        description: Option<&str>,
    ) -> DirResult<JoinKey> {
        self.ensure_container(KEYS_DN).await?;
        let mut id = [0u8; 8];
        let mut secret = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut id);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let key = JoinKey::new(id, secret, pin);
        let mut attrs = vec![
            (
                "objectClass".into(),
                vec![b"top".to_vec(), b"ferrodirJoinKey".to_vec()],
            ),
            ("cn".into(), vec![key.id.clone().into_bytes()]),
            ("userPassword".into(), vec![key.secret.clone().into_bytes()]),
        ];
        if let Some(d) = description.filter(|d| !d.is_empty()) {
            attrs.push(("description".into(), vec![d.as_bytes().to_vec()]));
        }
        let op = WriteOp::Add {
            dn: parse(&format!("cn={},{KEYS_DN}", key.id))?,
            attrs,
        };
        self.write(&self.root_identity(), op).await?;
        Ok(key)
    }

    /// Checks a key's secret (blocking: a wrong secret is a failed bind of
    /// the key entry, whose bookkeeping is written before this returns, so
    /// the password policy's lockout applies to guessing). A revoked key's
    /// entry is gone.
    pub fn check_join_key(&self, key_id: &str, secret: &str) -> DirResult<()> {
        if !join_key::is_key_id(key_id) {
            return Err(DirError::InvalidCredentials);
        }
        let key_dn = parse(&format!("cn={key_id},{KEYS_DN}"))?;
        if !self.entry_exists(&key_dn)? {
            return Err(DirError::InvalidCredentials);
        }
        self.bind(&key_dn, secret.as_bytes()).map(|_| ())
    }

    /// Registers (or re-registers) the slave `device` with a new
    /// credential; the key was checked by [`Self::check_join_key`].
    pub async fn join_slave(&self, key_id: &str, device: &str, host: &str) -> DirResult<JoinGrant> {
        if !join_key::is_key_id(key_id) || !is_device_id(device) {
            return Err(DirError::InvalidCredentials);
        }
        self.ensure_container(SLAVES_DN).await?;
        let slave_dn = parse(&format!("cn={device},{SLAVES_DN}"))?;
        let credential = password::generate() + &password::generate();
        let root = self.root_identity();
        let host = host
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect::<String>();
        if self.entry_exists(&slave_dn)? {
            let replace = |attr: &str, value: &str| Modification {
                op: ModOp::Replace,
                attr: attr.into(),
                values: vec![value.as_bytes().to_vec()],
            };
            let op = WriteOp::Modify {
                dn: slave_dn.clone(),
                mods: vec![
                    replace("userPassword", &credential),
                    replace("ferrodirJoinedWith", key_id),
                    replace("ferrodirSlaveHost", &host),
                ],
            };
            self.write(&root, op).await?;
        } else {
            let mut attrs = vec![
                (
                    "objectClass".into(),
                    vec![b"top".to_vec(), b"ferrodirSlave".to_vec()],
                ),
                ("cn".into(), vec![device.as_bytes().to_vec()]),
                ("userPassword".into(), vec![credential.clone().into_bytes()]),
                (
                    "ferrodirJoinedWith".into(),
                    vec![key_id.as_bytes().to_vec()],
                ),
            ];
            if !host.is_empty() {
                attrs.push(("ferrodirSlaveHost".into(), vec![host.into_bytes()]));
            }
            self.write(
                &root,
                WriteOp::Add {
                    dn: slave_dn.clone(),
                    attrs,
                },
            )
            .await?;
        }
        Ok(JoinGrant {
            bind_dn: slave_dn,
            password: credential,
            suffixes: self.core.cfg.suffixes.clone(),
            master: self.device_id()?,
        })
    }
}

impl super::Core {
    /// Whether `who` is a slave that joined this master.
    pub(crate) fn is_slave_identity(&self, who: &Identity) -> bool {
        // Asked for every search by a bound user (search limits): the
        // container's normalised DN is computed once.
        static SLAVES_NORM: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let norm = SLAVES_NORM.get_or_init(|| Dn::parse(SLAVES_DN).ok().map(|d| self.norm_dn(&d)));
        let Some(norm) = norm else {
            return false;
        };
        who.norm
            .strip_suffix(norm.as_str())
            .and_then(|rest| rest.strip_suffix(','))
            .is_some_and(|rdn| !rdn.is_empty() && !rdn.contains(','))
    }
}
