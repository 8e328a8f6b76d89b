//! The directory's side of replication: the changelog and RUV written in the
//! same transaction as each change (here), the cn=config replica and
//! agreement entries (config.rs), applying changes received from a supplier
//! (apply.rs), total init (total.rs), what a supplier reads (changes.rs) and
//! the agreements' status (status.rs).

mod apply;
mod changes;
mod config;
pub(crate) mod import_states;
pub(crate) mod retire;
mod settings;
pub(crate) mod status;
pub mod syncrepl;
mod total;
mod urp;

pub use retire::RetireStep;
pub use status::{state_text, AgreementReport, AgreementStatus};
pub(crate) use status::{status_attributes, StatusMap};

use super::tombstone::is_tombstone;
use super::{index, time, Core, DirError, DirResult, Directory, Identity};
use crate::model::{Attribute, Change, ChangeRecord, Csn, Dn, Entry, ModOp};
use crate::repl::core::fractional::Fractional;
use crate::repl::core::ruv::Ruv;
use crate::repl::core::schedule::Schedule;
use crate::store::changelog::encode_change;
use crate::store::{DnKey, StoreRead, WriteTxn};
use std::collections::HashMap;

pub const CONFIG_DN: &str = "cn=config";
pub const MAPPING_TREE_DN: &str = "cn=mapping tree,cn=config";

/// `cn=config` as a DN.
pub fn config_dn() -> Dn {
    Dn::from_pairs(&[("cn", "config")])
}

/// `cn=mapping tree,cn=config` as a DN.
pub fn mapping_tree_dn() -> Dn {
    Dn::from_pairs(&[("cn", "mapping tree"), ("cn", "config")])
}
/// Replica ID of read-only replicas (they never originate changes).
pub const READ_ONLY_RID: u16 = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ldap,
    Ldaps,
    StartTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMethod {
    Simple,
    SslClientAuth,
}

/// `cn=replica,cn=<suffix>,cn=mapping tree,cn=config`.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub suffix: Dn,
    pub rid: u16,
    pub read_only: bool,
    /// Normalised DNs allowed to send changes (nsDS5ReplicaBindDN).
    pub bind_dns: Vec<String>,
    /// nsDS5ReplicaReferral values (LDAP URLs).
    pub referrals: Vec<String>,
    /// nsds5ReplicaPurgeDelay: seconds tombstones and changelog records are
    /// kept (the changelog longer while an enabled agreement still needs it;
    /// u64::MAX when the entry says 0, keep forever).
    pub purge_delay: u64,
    /// nsds5ReplicaTombstonePurgeInterval: seconds between purge runs
    /// (None: a quarter of the purge delay, at most a minute).
    pub purge_interval: Option<u64>,
    /// nsds5ReplicaBackoffMin / nsds5ReplicaBackoffMax: seconds between
    /// retries of a failed session (None: ferrodir's 1 and 60).
    pub backoff_min: Option<u64>,
    pub backoff_max: Option<u64>,
    /// nsDS5ReplicaBindDNGroup: members (member, uniqueMember) may send
    /// changes too; read at every session start.
    pub bind_dn_group: Option<Dn>,
}

/// 389-ds's default nsds5ReplicaPurgeDelay: one week.
pub const DEFAULT_PURGE_DELAY: u64 = 7 * 24 * 3600;

/// One agreement entry under a replica entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementConfig {
    pub dn: Dn,
    pub suffix: Dn,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub bind_dn: String,
    pub bind_method: BindMethod,
    pub credentials: Vec<u8>,
    pub enabled: bool,
    /// nsds5BeginReplicaRefresh: start
    pub refresh_requested: bool,
    /// nsDS5ReplicatedAttributeList (and nsds5ReplicaStripAttrs): what
    /// incremental updates and catch-up keep from the consumer.
    pub fractional: Fractional,
    /// nsDS5ReplicatedAttributeListTotal, else nsDS5ReplicatedAttributeList:
    /// what a total init keeps from the consumer.
    pub fractional_total: Fractional,
    /// nsDS5ReplicaUpdateSchedule: when incremental updates are sent.
    pub schedule: Schedule,
    /// nsds5ReplicaTimeout: seconds to wait for an answer.
    pub timeout: Option<u64>,
    /// nsds5ReplicaBusyWaitTime: seconds to wait after a busy answer.
    pub busy_wait: Option<u64>,
    /// nsds5ReplicaSessionPauseTime: seconds between two update sessions.
    pub session_pause: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ReplState {
    pub replicas: Vec<ReplicaConfig>,
    pub agreements: Vec<AgreementConfig>,
    /// RFC 4533 consumers (cn=<name>,cn=syncrepl,cn=config).
    pub syncrepl: Vec<syncrepl::SyncConsumer>,
    /// Moves on at every reload, so watchers can tell a configuration
    /// change from the commits that only add changes.
    pub version: u64,
}

fn first_text(e: &Entry, name: &str) -> Option<String> {
    e.first_str(name).map(|s| s.trim().to_string())
}

fn has_class(e: &Entry, class: &str) -> bool {
    e.values("objectClass")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(class.as_bytes()))
}

fn invalid(msg: String) -> DirError {
    DirError::UnwillingToPerform(msg)
}
impl Core {
    pub(crate) fn config_key(&self) -> DnKey {
        self.config_key.clone()
    }

    /// The replicated suffix (its DN key) holding `key`; None for cn=config
    /// and DNs outside every suffix.
    pub(crate) fn replicated_suffix_of(&self, key: &DnKey) -> Option<DnKey> {
        let s = self.suffix_of(key)?;
        if *s == self.config_key() {
            None
        } else {
            Some(s.clone())
        }
    }

    fn ruv_meta_key(suffix_key: &DnKey) -> String {
        let text: String = suffix_key
            .iter()
            .map(|&b| if b == 0 { ',' } else { b as char })
            .collect();
        format!("ruv:{text}")
    }

    pub(crate) fn load_ruv(&self, txn: &dyn StoreRead, suffix_key: &DnKey) -> DirResult<Ruv> {
        match txn.meta(&Self::ruv_meta_key(suffix_key))? {
            Some(b) => Ruv::decode(&b).map_err(|e| DirError::Busy(e.to_string())),
            None => Ok(Ruv::new(String::new())),
        }
    }

    pub(crate) fn store_ruv(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        ruv: &Ruv,
    ) -> DirResult<()> {
        txn.put_meta(&Self::ruv_meta_key(suffix_key), &ruv.encode())?;
        Ok(())
    }

    /// Appends to the changelog and moves the RUV, in the change's transaction.
    pub(crate) fn record_change(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        rec: &ChangeRecord,
    ) -> DirResult<()> {
        self.resolve_change(txn, suffix_key, rec)?;
        txn.put_changelog(&rec.csn.to_bytes(), &encode_change(rec))?;
        let mut ruv = self.load_ruv(txn, suffix_key)?;
        if ruv.generation.is_empty() {
            ruv.generation = uuid::Uuid::new_v4().to_string();
        }
        ruv.update(rec.csn);
        self.store_ruv(txn, suffix_key, &ruv)?;
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The replica ID that stamps local changes: the writable replica's
    /// nsDS5ReplicaId when one is configured, else the configured default.
    pub(crate) fn local_rid(&self) -> u16 {
        self.repl
            .read()
            .ok()
            .and_then(|r| r.replicas.iter().find(|x| !x.read_only).map(|x| x.rid))
            .unwrap_or(self.cfg.replica_id)
    }

    pub(crate) fn replica_for(&self, suffix: &Dn) -> Option<ReplicaConfig> {
        let norm = self.norm_dn(suffix);
        self.repl
            .read()
            .ok()?
            .replicas
            .iter()
            .find(|r| self.norm_dn(&r.suffix) == norm)
            .cloned()
    }
}

/// `cn=<suffix>,cn=mapping tree,cn=config`.
pub fn mapping_node(suffix: &Dn) -> Dn {
    Dn::parse(MAPPING_TREE_DN)
        .unwrap_or_default()
        .child(crate::model::Rdn::single("cn", suffix.to_string()))
}

/// Identity check for incoming replication sessions.
pub(crate) fn may_replicate(replica: &ReplicaConfig, who: &Identity) -> bool {
    !who.is_anonymous() && replica.bind_dns.contains(&who.norm)
}

type ConfigAttrs = Vec<(&'static str, Vec<Vec<u8>>)>;

fn forbidden(suffix: &Dn) -> DirError {
    DirError::InsufficientAccess(format!(
        "this identity may not replicate '{suffix}': it is not the replica's nsDS5ReplicaBindDN nor a member of its nsDS5ReplicaBindDNGroup"
    ))
}

impl Directory {
    pub(crate) fn suffix_key_checked(&self, suffix: &Dn) -> DirResult<DnKey> {
        let key = self.core.dn_key(suffix);
        match self.core.replicated_suffix_of(&key) {
            Some(s) if s == key => Ok(key),
            _ => Err(DirError::UnwillingToPerform(format!(
                "'{suffix}' is not a suffix of this server"
            ))),
        }
    }

    pub(crate) fn replica_checked(
        &self,
        who: &Identity,
        suffix: &Dn,
    ) -> DirResult<(ReplicaConfig, DnKey)> {
        let key = self.suffix_key_checked(suffix)?;
        let replica = self.core.replica_for(suffix).ok_or_else(|| {
            DirError::UnwillingToPerform(format!(
                "'{suffix}' is not configured as a replica here (add cn=replica,{})",
                mapping_node(suffix)
            ))
        })?;
        if !may_replicate(&replica, who) && !self.core.in_bind_dn_group(&replica, who)? {
            return Err(forbidden(suffix));
        }
        Ok((replica, key))
    }

    /// Consumer side of a session start: checks who may replicate, replica
    /// IDs and generations, and returns this replica's RUV.
    pub fn repl_start(
        &self,
        who: &Identity,
        suffix: &Dn,
        supplier_rid: u16,
        generation: &str,
        total: bool,
    ) -> DirResult<Ruv> {
        let (replica, key) = self.replica_checked(who, suffix)?;
        if !replica.read_only && replica.rid == supplier_rid {
            return Err(DirError::UnwillingToPerform(format!(
                "replica ID {supplier_rid} is used by both the supplier and this consumer; give each writable replica its own nsDS5ReplicaId"
            )));
        }
        let ruv = self.core.load_ruv(&self.core.store.read()?, &key)?;
        if !total && !ruv.generation.is_empty() && ruv.generation != generation {
            return Err(DirError::UnwillingToPerform(format!(
                "replica generation mismatch (consumer {}, supplier {generation}): the consumer needs a total init",
                ruv.generation
            )));
        }
        Ok(ruv)
    }

    /// Applies a batch of changes from a supplier in one transaction; returns the new RUV.
    pub async fn repl_apply(
        &self,
        who: &Identity,
        suffix: &Dn,
        records: Vec<ChangeRecord>,
    ) -> DirResult<Ruv> {
        let (_, key) = self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(crate::directory::writer::Work::Replicated {
                suffix_key: key.clone(),
                records,
            })
            .await?;
        self.core.load_ruv(&self.core.store.read()?, &key)
    }

    pub async fn repl_total_begin(
        &self,
        who: &Identity,
        suffix: &Dn,
        generation: String,
        with_states: bool,
    ) -> DirResult<()> {
        let (_, key) = self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(crate::directory::writer::Work::TotalBegin {
                suffix_key: key,
                generation,
                with_states,
            })
            .await
    }

    pub async fn repl_total_entries(
        &self,
        who: &Identity,
        suffix: &Dn,
        entries: Vec<crate::repl::core::wire::InitEntry>,
    ) -> DirResult<()> {
        self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(crate::directory::writer::Work::TotalEntries { entries })
            .await
    }

    pub async fn repl_total_end(
        &self,
        who: &Identity,
        suffix: &Dn,
        ruv: Ruv,
        retired: Option<crate::repl::core::retire::Retired>,
    ) -> DirResult<Ruv> {
        let (_, key) = self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(crate::directory::writer::Work::TotalEnd {
                suffix_key: key.clone(),
                ruv,
                retired,
            })
            .await?;
        self.core.load_ruv(&self.core.store.read()?, &key)
    }

    /// For a write on a read-only replica: the referral URLs to send instead
    /// (possibly empty when none is known). None when the DN is writable here.
    pub fn write_referral(&self, dn: &Dn) -> Option<Vec<String>> {
        if let Some(provider) = self.sync_referral(dn) {
            return Some(vec![provider]);
        }
        let key = self.core.dn_key(dn);
        let suffix_key = self.core.replicated_suffix_of(&key)?;
        let state = self.core.repl.read().ok()?;
        let replica = state
            .replicas
            .iter()
            .find(|r| self.core.dn_key(&r.suffix) == suffix_key)?;
        if !replica.read_only {
            return None;
        }
        if !replica.referrals.is_empty() {
            return Some(replica.referrals.clone());
        }
        let learned = self
            .core
            .learned_referrals
            .lock()
            .ok()
            .and_then(|m| m.get(&self.core.norm_dn(&replica.suffix)).cloned());
        Some(learned.into_iter().collect())
    }

    /// Remembers the supplier's URL from a session, for update referrals
    /// when nsDS5ReplicaReferral is not set.
    pub fn note_supplier_url(&self, suffix: &Dn, url: &str) {
        if url.is_empty() {
            return;
        }
        let norm = self.core.norm_dn(suffix);
        if let Ok(mut m) = self.core.learned_referrals.lock() {
            m.insert(norm, url.to_string());
        }
    }

    /// Agreements configured on this server (credentials decrypted).
    pub fn agreements(&self) -> Vec<AgreementConfig> {
        self.core
            .repl
            .read()
            .map(|r| r.agreements.clone())
            .unwrap_or_default()
    }

    /// `f` of the agreement `dn` names, None when there is none. A
    /// session asks with its own copy of the DN, equal as it is; another
    /// spelling is compared normalised. (Every session asks at every
    /// batch: cloning and normalising all agreements there made a supplier
    /// with 20 agreements spend a fifth of its CPU here.)
    pub fn with_agreement<T>(&self, dn: &Dn, f: impl FnOnce(&AgreementConfig) -> T) -> Option<T> {
        {
            let r = self.core.repl.read().ok()?;
            if let Some(a) = r.agreements.iter().find(|a| a.dn == *dn) {
                return Some(f(a));
            }
        }
        // Normalising takes the schema's lock: not under this one.
        let norm = self.normalize_dn(dn);
        self.agreements()
            .iter()
            .find(|a| self.normalize_dn(&a.dn) == norm)
            .map(f)
    }

    /// [`ReplState::version`]: changes when the replication configuration
    /// was reloaded.
    pub fn repl_config_version(&self) -> u64 {
        self.core.repl.read().map(|r| r.version).unwrap_or_default()
    }

    pub fn replicas(&self) -> Vec<ReplicaConfig> {
        self.core
            .repl
            .read()
            .map(|r| r.replicas.clone())
            .unwrap_or_default()
    }

    /// Changes whenever a commit touched the changelog or the replication config.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.core.notify.subscribe()
    }

    pub fn ruv(&self, suffix: &Dn) -> DirResult<Ruv> {
        let key = self.suffix_key_checked(suffix)?;
        self.core.load_ruv(&self.core.store.read()?, &key)
    }

    /// Changes the consumer (described by its RUV) lacks, oldest first.
    pub fn changes_for(
        &self,
        suffix: &Dn,
        consumer: &Ruv,
        limit: usize,
    ) -> DirResult<Option<Vec<ChangeRecord>>> {
        let key = self.suffix_key_checked(suffix)?;
        self.core.changes_for(&key, consumer, limit)
    }

    /// Removes `nsds5BeginReplicaRefresh` once a requested init has run.
    pub async fn clear_refresh_request(&self, agreement: &Dn) -> DirResult<()> {
        let root = Identity {
            dn: Some(self.core.cfg.root_dn.clone()),
            norm: self.core.root_norm.clone(),
            root: true,
        };
        let op = super::WriteOp::Modify {
            dn: agreement.clone(),
            mods: vec![crate::model::Modification {
                op: ModOp::Replace,
                attr: "nsds5BeginReplicaRefresh".into(),
                values: Vec::new(),
            }],
        };
        self.write(&root, op).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agreement_is_found_by_its_dn_as_spelt_or_normalised_and_reloads_are_counted() {
        use crate::directory::test_support::{
            add_as_root, add_replica_and_agreement, temp_directory, EXAMPLE_REPLICA,
        };
        let (_tmp, dir) = temp_directory("dc=example,dc=com", Default::default());
        let before = dir.repl_config_version();
        let agreement = add_replica_and_agreement(&dir);
        let replica = EXAMPLE_REPLICA;
        let reloaded = dir.repl_config_version();
        assert_ne!(
            reloaded, before,
            "an agreement added reloads the configuration"
        );
        add_as_root(
            &dir,
            "dc=example,dc=com",
            &[("objectClass", "domain"), ("dc", "example")],
        )
        .unwrap();
        assert_eq!(
            dir.repl_config_version(),
            reloaded,
            "a write outside cn=config does not"
        );

        let own = dir.agreements()[0].dn.clone();
        assert_eq!(
            dir.with_agreement(&own, |a| a.host.clone()).as_deref(),
            Some("consumer.example.com")
        );
        let respelt = Dn::parse(&agreement.to_uppercase().replace(',', ", ")).unwrap();
        assert_ne!(respelt, own);
        assert_eq!(dir.with_agreement(&respelt, |a| a.port), Some(389));
        let other = Dn::parse(&format!("cn=elsewhere,{replica}")).unwrap();
        assert_eq!(dir.with_agreement(&other, |a| a.port), None);
    }

    #[test]
    fn fixed_dns_are_the_documented_ones() {
        assert_eq!(config_dn(), Dn::parse(CONFIG_DN).unwrap());
        assert_eq!(mapping_tree_dn(), Dn::parse(MAPPING_TREE_DN).unwrap());
        assert_eq!(
            crate::directory::DirectoryConfig::default().root_dn,
            Dn::parse("cn=Directory Manager").unwrap()
        );
    }
}
