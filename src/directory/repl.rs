//! The directory's side of replication: the changelog and RUV written in the
//! same transaction as each change, the cn=config replica and agreement
//! entries (389-ds names), applying changes received from a supplier with
//! their original CSNs and entryUUIDs, total init, and what a supplier reads.

use super::tombstone::is_tombstone;
use super::{index, time, Core, DirError, DirResult, Identity};
use crate::model::{Attribute, Change, ChangeRecord, Csn, Dn, Entry, ModOp, Value};
use crate::repl::core::ruv::Ruv;
use crate::store::changelog::{decode_change, encode_change};
use crate::store::{StoreRead, WriteTxn};
use std::collections::HashMap;

pub const CONFIG_DN: &str = "cn=config";
pub const MAPPING_TREE_DN: &str = "cn=mapping tree,cn=config";
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
}

/// Live status of an agreement, served as attributes of its entry.
#[derive(Debug, Clone, Default)]
pub struct AgreementStatus {
    pub last_update_start: Option<u64>,
    pub last_update_end: Option<u64>,
    pub last_update_status: String,
    pub update_in_progress: bool,
    pub changes_sent: u64,
    pub last_init_start: Option<u64>,
    pub last_init_end: Option<u64>,
    pub last_init_status: String,
    /// Entries sent / total during a running init.
    pub init_progress: Option<(u64, u64)>,
    /// Seconds between the newest change held and the consumer's newest.
    pub lag_seconds: Option<u64>,
    /// Changes the consumer still lacks (last known).
    pub behind: u64,
    /// The consumer's RUV as last acknowledged: the changelog keeps what it lacks.
    pub consumer_ruv: Option<Ruv>,
}

#[derive(Debug, Clone, Default)]
pub struct ReplState {
    pub replicas: Vec<ReplicaConfig>,
    pub agreements: Vec<AgreementConfig>,
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
    pub(crate) fn config_key(&self) -> Vec<u8> {
        self.dn_key(&Dn::parse(CONFIG_DN).unwrap_or_default())
    }

    /// The replicated suffix (its DN key) holding `key`; None for cn=config
    /// and DNs outside every suffix.
    pub(crate) fn replicated_suffix_of(&self, key: &[u8]) -> Option<Vec<u8>> {
        let s = self.suffix_of(key)?;
        if s == self.config_key().as_slice() {
            None
        } else {
            Some(s.to_vec())
        }
    }

    fn ruv_meta_key(suffix_key: &[u8]) -> String {
        let text: String = suffix_key
            .iter()
            .map(|&b| if b == 0 { ',' } else { b as char })
            .collect();
        format!("ruv:{text}")
    }

    pub(crate) fn load_ruv(&self, txn: &dyn StoreRead, suffix_key: &[u8]) -> DirResult<Ruv> {
        match txn.meta(&Self::ruv_meta_key(suffix_key))? {
            Some(b) => Ruv::decode(&b).map_err(|e| DirError::Busy(e.to_string())),
            None => Ok(Ruv::new(String::new())),
        }
    }

    pub(crate) fn store_ruv(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &[u8],
        ruv: &Ruv,
    ) -> DirResult<()> {
        txn.put_meta(&Self::ruv_meta_key(suffix_key), &ruv.encode())?;
        Ok(())
    }

    /// Appends to the changelog and moves the RUV, in the change's transaction.
    pub(crate) fn record_change(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &[u8],
        rec: &ChangeRecord,
    ) -> DirResult<()> {
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

    /// Creates cn=config, the mapping tree and one node per suffix when missing.
    pub(crate) fn bootstrap_config(&self) -> DirResult<()> {
        let mut txn = self.store.write()?;
        let csn = Csn::new(time::now_secs(), 0, self.cfg.replica_id, 0);
        let stamp = time::generalized_time(u64::from(csn.time));
        let mut nodes: Vec<(Dn, ConfigAttrs)> = vec![
            (
                Dn::parse(CONFIG_DN).unwrap_or_default(),
                vec![
                    (
                        "objectClass",
                        vec![b"top".to_vec(), b"ferrodirConfig".to_vec()],
                    ),
                    ("cn", vec![b"config".to_vec()]),
                ],
            ),
            (
                Dn::parse(MAPPING_TREE_DN).unwrap_or_default(),
                vec![
                    (
                        "objectClass",
                        vec![b"top".to_vec(), b"nsMappingTree".to_vec()],
                    ),
                    ("cn", vec![b"mapping tree".to_vec()]),
                ],
            ),
        ];
        for s in &self.cfg.suffixes {
            let text = s.to_string();
            nodes.push((
                mapping_node(s),
                vec![
                    (
                        "objectClass",
                        vec![b"top".to_vec(), b"nsMappingTree".to_vec()],
                    ),
                    ("cn", vec![text.into_bytes()]),
                    ("nsslapd-state", vec![b"backend".to_vec()]),
                    ("nsslapd-backend", vec![b"userRoot".to_vec()]),
                ],
            ));
        }
        for (dn, attrs) in nodes {
            let key = self.dn_key(&dn);
            if txn.id_by_dn(&key)?.is_some() {
                continue;
            }
            let mut entry = Entry::new(dn.clone());
            for (name, values) in attrs {
                entry.attrs.push(Attribute::new(name, values, csn));
            }
            for (name, value) in [
                ("entryUUID", uuid::Uuid::new_v4().to_string()),
                ("creatorsName", String::new()),
                ("createTimestamp", stamp.clone()),
                ("modifiersName", String::new()),
                ("modifyTimestamp", stamp.clone()),
                ("entryCSN", csn.to_string()),
                (
                    "structuralObjectClass",
                    self.schema.structural_class(&entry).unwrap_or_default(),
                ),
            ] {
                if !value.is_empty() {
                    entry
                        .attrs
                        .push(Attribute::new(name, vec![value.into_bytes()], csn));
                }
            }
            let parent = match dn.parent() {
                Some(p) if !p.is_root() => txn.id_by_dn(&self.dn_key(&p))?.unwrap_or(0),
                _ => 0,
            };
            let uuid = super::write::entry_uuid(&entry)?;
            let id = txn.next_id()?;
            txn.put_entry(id, &entry)?;
            txn.put_dn(&key, id)?;
            if parent != 0 {
                txn.link_child(parent, id)?;
            }
            txn.put_uuid(&uuid, id)?;
            let keys = index::entry_keys(&self.schema, &self.cfg.indexes, &entry);
            for k in keys {
                txn.index_add(&k, id)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads replica and agreement entries from cn=config.
    pub(crate) fn load_repl_state(&self, txn: &dyn StoreRead) -> DirResult<ReplState> {
        let mut state = ReplState::default();
        let mut agreements = Vec::new();
        for (_, id) in
            txn.subtree_keys(&self.dn_key(&Dn::parse(MAPPING_TREE_DN).unwrap_or_default()))?
        {
            let Some(e) = txn.entry(id)? else { continue };
            if has_class(&e, "nsDS5Replica") {
                match self.parse_replica(&e) {
                    Ok(r) => state.replicas.push(r),
                    Err(err) => tracing::warn!(dn = %e.dn, "ignoring replica entry: {err}"),
                }
            } else if has_class(&e, "nsDS5ReplicationAgreement") {
                agreements.push(e);
            }
        }
        for e in agreements {
            match self.parse_agreement(&e, &state.replicas) {
                Ok(a) => state.agreements.push(a),
                Err(err) => tracing::warn!(dn = %e.dn, "ignoring agreement entry: {err}"),
            }
        }
        Ok(state)
    }

    pub(crate) fn parse_replica(&self, e: &Entry) -> DirResult<ReplicaConfig> {
        let root = first_text(e, "nsDS5ReplicaRoot")
            .ok_or_else(|| invalid("replica entry needs nsDS5ReplicaRoot".into()))?;
        let suffix = Dn::parse(&root).map_err(|err| invalid(format!("nsDS5ReplicaRoot: {err}")))?;
        let norm = self.norm_dn(&suffix);
        if !self.cfg.suffixes.iter().any(|s| self.norm_dn(s) == norm) {
            return Err(invalid(format!(
                "nsDS5ReplicaRoot '{root}' is not a suffix of this server"
            )));
        }
        let expected_parent = self.norm_dn(&mapping_node(&suffix));
        if e.dn.parent().map(|p| self.norm_dn(&p)) != Some(expected_parent) {
            return Err(invalid(format!(
                "the replica entry for '{root}' must be placed under '{}'",
                mapping_node(&suffix)
            )));
        }
        let kind: u8 = match first_text(e, "nsDS5ReplicaType").as_deref() {
            None | Some("3") => 3,
            Some("2") => 2,
            Some(other) => {
                return Err(invalid(format!(
                    "nsDS5ReplicaType must be 3 (updatable) or 2 (read-only), not {other}"
                )))
            }
        };
        let rid_text = first_text(e, "nsDS5ReplicaId").unwrap_or_default();
        let rid: u32 = rid_text
            .parse()
            .map_err(|_| invalid(format!("nsDS5ReplicaId '{rid_text}' is not a number")))?;
        if kind == 3 && !(1..=65534).contains(&rid) {
            return Err(invalid(format!(
                "nsDS5ReplicaId {rid} is out of range: updatable replicas use 1..65534"
            )));
        }
        if kind == 2 && rid != u32::from(READ_ONLY_RID) {
            return Err(invalid(format!(
                "nsDS5ReplicaId {rid} is wrong for a read-only replica: use 65535"
            )));
        }
        let mut bind_dns = Vec::new();
        for v in e.values("nsDS5ReplicaBindDN") {
            let text = String::from_utf8_lossy(v);
            let dn =
                Dn::parse(&text).map_err(|err| invalid(format!("nsDS5ReplicaBindDN: {err}")))?;
            bind_dns.push(self.norm_dn(&dn));
        }
        let purge_delay = match first_text(e, "nsds5ReplicaPurgeDelay") {
            None => DEFAULT_PURGE_DELAY,
            // 0 keeps state forever, as in 389-ds.
            Some(text) => match text.parse::<u64>() {
                Ok(0) => u64::MAX,
                Ok(secs) => secs,
                Err(_) => {
                    return Err(invalid(format!(
                        "nsds5ReplicaPurgeDelay '{text}' must be a number of seconds (0 = keep forever)"
                    )))
                }
            },
        };
        Ok(ReplicaConfig {
            suffix,
            purge_delay,
            rid: rid as u16,
            read_only: kind == 2,
            bind_dns,
            referrals: e
                .values("nsDS5ReplicaReferral")
                .iter()
                .map(|v| String::from_utf8_lossy(v).to_string())
                .collect(),
        })
    }

    pub(crate) fn parse_agreement(
        &self,
        e: &Entry,
        replicas: &[ReplicaConfig],
    ) -> DirResult<AgreementConfig> {
        let parent = e.dn.parent().unwrap_or_default();
        let parent_norm = self.norm_dn(&parent);
        let replica = replicas
            .iter()
            .find(|r| {
                self.norm_dn(&mapping_node(&r.suffix).child(crate::model::Rdn::single("cn", "replica")))
                    == parent_norm
            })
            .ok_or_else(|| {
                invalid(format!(
                    "an agreement must be placed under a replica entry (cn=replica,cn=<suffix>,{MAPPING_TREE_DN}); '{parent}' is not one"
                ))
            })?;
        if let Some(root) = first_text(e, "nsDS5ReplicaRoot") {
            let dn = Dn::parse(&root).map_err(|err| invalid(format!("nsDS5ReplicaRoot: {err}")))?;
            if self.norm_dn(&dn) != self.norm_dn(&replica.suffix) {
                return Err(invalid(format!(
                    "nsDS5ReplicaRoot '{root}' is not the replicated suffix '{}' of this replica",
                    replica.suffix
                )));
            }
        }
        let host = first_text(e, "nsDS5ReplicaHost")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("agreement needs nsDS5ReplicaHost".into()))?;
        let transport = match first_text(e, "nsDS5ReplicaTransportInfo")
            .unwrap_or_else(|| "LDAP".into())
            .to_ascii_uppercase()
            .as_str()
        {
            "LDAP" => Transport::Ldap,
            "LDAPS" | "SSL" => Transport::Ldaps,
            "STARTTLS" | "TLS" => Transport::StartTls,
            other => {
                return Err(invalid(format!(
                    "unknown nsDS5ReplicaTransportInfo '{other}': use LDAP, LDAPS or StartTLS"
                )))
            }
        };
        let port_text = first_text(e, "nsDS5ReplicaPort").unwrap_or_else(|| {
            if transport == Transport::Ldaps {
                "636"
            } else {
                "389"
            }
            .to_string()
        });
        let port: u16 = port_text.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(format!(
                "nsDS5ReplicaPort '{port_text}' is not a port number"
            ))
        })?;
        let bind_method = match first_text(e, "nsDS5ReplicaBindMethod")
            .unwrap_or_else(|| "SIMPLE".into())
            .to_ascii_uppercase()
            .as_str()
        {
            "SIMPLE" => BindMethod::Simple,
            "SSLCLIENTAUTH" => BindMethod::SslClientAuth,
            other => {
                return Err(invalid(format!(
                    "unknown nsDS5ReplicaBindMethod '{other}': use SIMPLE or SSLCLIENTAUTH"
                )))
            }
        };
        let bind_dn = first_text(e, "nsDS5ReplicaBindDN").unwrap_or_default();
        if bind_method == BindMethod::Simple && bind_dn.is_empty() {
            return Err(invalid(
                "a SIMPLE agreement needs nsDS5ReplicaBindDN".into(),
            ));
        }
        let credentials = match e.values("nsDS5ReplicaCredentials").first() {
            Some(v) => self.secrets.reveal(v)?,
            None => Vec::new(),
        };
        let enabled =
            !first_text(e, "nsds5ReplicaEnabled").is_some_and(|v| v.eq_ignore_ascii_case("off"));
        Ok(AgreementConfig {
            dn: e.dn.clone(),
            suffix: replica.suffix.clone(),
            host,
            port,
            transport,
            bind_dn,
            bind_method,
            credentials,
            enabled,
            refresh_requested: first_text(e, "nsds5BeginReplicaRefresh")
                .is_some_and(|v| v.eq_ignore_ascii_case("start")),
        })
    }

    /// Checks a cn=config entry after a write; an error rolls the write back.
    pub(crate) fn validate_config_entry(&self, txn: &WriteTxn<'_>, dn: &Dn) -> DirResult<()> {
        let Some(id) = txn.id_by_dn(&self.dn_key(dn))? else {
            return Ok(());
        };
        let Some(e) = txn.entry(id)? else {
            return Ok(());
        };
        if has_class(&e, "nsDS5Replica") {
            self.parse_replica(&e)?;
        } else if has_class(&e, "nsDS5ReplicationAgreement") {
            let state = self.load_repl_state(txn)?;
            self.parse_agreement(&e, &state.replicas)?;
        }
        self.config_pending
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

    /// Applies one change received from a supplier. Already-held changes are
    /// skipped, so a resent batch after a crash duplicates nothing.
    pub(crate) fn apply_replicated(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &[u8],
        rec: &ChangeRecord,
    ) -> DirResult<bool> {
        let ruv = self.load_ruv(txn, suffix_key)?;
        if ruv.covers(rec.csn) {
            return Ok(false);
        }
        let stamp_time = time::generalized_time(u64::from(rec.csn.time));
        match &rec.change {
            Change::Add { entry } => {
                if txn.id_by_uuid(&rec.uuid)?.is_none() {
                    self.insert_raw(txn, entry)?;
                }
            }
            Change::Delete => {
                if let Some(id) = txn.id_by_uuid(&rec.uuid)? {
                    if txn.has_children(id)? {
                        tracing::warn!(dn = %rec.dn, csn = %rec.csn, "replicated delete of an entry with children skipped");
                    } else if let Some(entry) = txn.entry(id)?.filter(|e| !is_tombstone(e)) {
                        self.bury(txn, id, &entry, rec.csn)?;
                    }
                }
            }
            Change::Modify { mods } => {
                if let Some(id) = txn.id_by_uuid(&rec.uuid)? {
                    // A tombstone absorbs changes to the entry it was (delete wins).
                    if let Some(old) = txn.entry(id)?.filter(|e| !is_tombstone(e)) {
                        let mut new = old.clone();
                        for m in mods {
                            apply_mod_with_state(&mut new, m, rec.csn);
                        }
                        txn.put_entry(id, &new)?;
                        self.index_update(txn, id, Some(&old), Some(&new))?;
                    }
                }
            }
            Change::ModDn {
                new_rdn,
                delete_old_rdn,
                new_superior,
            } => {
                if let Some(id) = txn.id_by_uuid(&rec.uuid)? {
                    if let Some(entry) = txn.entry(id)?.filter(|e| !is_tombstone(e)) {
                        let superior = match new_superior {
                            Some(u) => match txn.id_by_uuid(u)? {
                                Some(pid) => txn.entry(pid)?.map(|p| p.dn),
                                None => None,
                            },
                            None => None,
                        };
                        let stamp = super::write::Stamp {
                            csn: rec.csn,
                            time: stamp_time,
                            modifier: rec.modifier.clone(),
                            origin: super::Origin::Replication,
                        };
                        self.moddn(
                            txn,
                            &entry.dn,
                            new_rdn,
                            *delete_old_rdn,
                            superior.as_ref(),
                            &stamp,
                        )?;
                    }
                }
            }
        }
        txn.put_changelog(&rec.csn.to_bytes(), &encode_change(rec))?;
        let mut ruv = ruv;
        ruv.update(rec.csn);
        self.store_ruv(txn, suffix_key, &ruv)?;
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    /// Stores an entry exactly as given (state included): replication and total init.
    pub(crate) fn insert_raw(&self, txn: &mut WriteTxn<'_>, entry: &Entry) -> DirResult<()> {
        let key = self.dn_key(&entry.dn);
        let uuid = super::write::entry_uuid(entry)?;
        if let Some(existing) = txn.id_by_dn(&key)? {
            // Same DN, different entry: a naming conflict. Until URP lands the
            // incoming entry replaces nothing and is reported.
            if txn.id_by_uuid(&uuid)? != Some(existing) {
                tracing::warn!(dn = %entry.dn, "replicated add collides with an existing entry; skipped");
            }
            return Ok(());
        }
        let suffix = self.suffix_of(&key).map(<[u8]>::to_vec);
        let parent = if suffix.as_deref() == Some(key.as_slice()) {
            0
        } else {
            match txn.id_by_dn(&self.parent_key(&entry.dn, &key))? {
                Some(pid) => pid,
                None => {
                    let p = entry.dn.parent().unwrap_or_default();
                    return Err(self.no_such_object(txn, &p));
                }
            }
        };
        // The id is the largest in the store: appends, and index keys that a
        // total init's bulk buffer may collect (store::bulk).
        let id = txn.next_id()?;
        txn.put_new_entry(id, entry)?;
        txn.put_dn(&key, id)?;
        if parent != 0 {
            txn.link_child(parent, id)?;
        }
        txn.put_uuid(&uuid, id)?;
        for k in index::entry_keys_sorted(&self.schema, &self.cfg.indexes, entry) {
            txn.index_add_new(&k, id)?;
        }
        Ok(())
    }

    pub(crate) fn remove_raw(
        &self,
        txn: &mut WriteTxn<'_>,
        id: u64,
        entry: &Entry,
    ) -> DirResult<()> {
        let key = self.dn_key(&entry.dn);
        txn.delete_entry(id)?;
        txn.delete_dn(&key)?;
        if let Some(p) = entry.dn.parent() {
            if let Some(pid) = txn.id_by_dn(&self.dn_key(&p))? {
                txn.unlink_child(pid, id)?;
            }
        }
        if let Ok(uuid) = super::write::entry_uuid(entry) {
            txn.delete_uuid(&uuid)?;
        }
        self.index_update(txn, id, Some(entry), None)
    }

    /// Total init, first step: empties the suffix and adopts the supplier's generation.
    pub(crate) fn total_begin(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &[u8],
        generation: &str,
    ) -> DirResult<()> {
        let mut all = txn.subtree_keys(suffix_key)?;
        // Children first so every removal is of a leaf.
        all.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(b.0.cmp(&a.0)));
        for (_, id) in all {
            if let Some(entry) = txn.entry(id)? {
                self.remove_raw(txn, id, &entry)?;
            }
        }
        // Changes recorded before the init belong to the old data set: a
        // later session must not send them anywhere.
        let mut from: Vec<u8> = Csn::ZERO.to_bytes().to_vec();
        loop {
            let batch = txn.changelog_from(&from, 512)?;
            let Some((last, _)) = batch.last() else { break };
            from = last.clone();
            from.push(0);
            for (k, v) in &batch {
                let in_suffix = decode_change(v)
                    .map(|rec| self.dn_key(&rec.dn).starts_with(suffix_key))
                    .unwrap_or(true);
                if in_suffix {
                    txn.delete_changelog(k)?;
                }
            }
        }
        let everything = Csn::new(u32::MAX, u16::MAX, u16::MAX, u16::MAX);
        while self.purge_tombstones(txn, suffix_key, everything)? > 0 {}
        // Index keys of the entries that follow may wait for TotalEnd
        // (store::bulk), which also records the supplier's generation. Until
        // then the generation matches no supplier's: a consumer stopped in
        // the middle is told it needs a total init, rather than accepting
        // incremental changes on top of a partial, partly unindexed copy.
        self.store_ruv(
            txn,
            suffix_key,
            &Ruv::new(format!("{generation} (total init unfinished)")),
        )?;
        Ok(())
    }

    /// Total init, last step: the consumer now holds what the supplier's RUV says.
    pub(crate) fn total_end(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &[u8],
        supplier: &Ruv,
    ) -> DirResult<()> {
        self.store_ruv(txn, suffix_key, supplier)?;
        // This replica's changelog starts at the init: peers lacking earlier
        // changes are caught up from entry state.
        self.store_trimmed_ruv(txn, suffix_key, supplier)?;
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Changelog records the consumer lacks, in CSN order, at most `limit`.
    /// None when the changelog no longer reaches back far enough.
    pub(crate) fn changes_for(
        &self,
        suffix_key: &[u8],
        consumer: &Ruv,
        limit: usize,
    ) -> DirResult<Option<Vec<ChangeRecord>>> {
        let txn = self.store.read()?;
        if !self.changelog_reaches(&txn, suffix_key, consumer)? {
            return Ok(None);
        }
        let supplier = self.load_ruv(&txn, suffix_key)?;
        let start = supplier
            .replicas
            .keys()
            .map(|rid| consumer.max_for(*rid).unwrap_or(Csn::ZERO))
            .min()
            .unwrap_or(Csn::ZERO);
        let mut out = Vec::new();
        let mut from = start.to_bytes().to_vec();
        loop {
            let batch = txn.changelog_from(&from, 512)?;
            if batch.is_empty() {
                break;
            }
            let last_key = batch.last().map(|(k, _)| k.clone()).unwrap_or_default();
            for (_, v) in &batch {
                let rec = decode_change(v).map_err(crate::store::StoreError::from)?;
                if consumer.covers(rec.csn) {
                    continue;
                }
                if !self.dn_key(&rec.dn).starts_with(suffix_key) {
                    continue;
                }
                out.push(rec);
                if out.len() >= limit {
                    return Ok(Some(out));
                }
            }
            let mut next = last_key;
            next.push(0);
            from = next;
        }
        Ok(Some(out))
    }
}

/// Applies one replicated modification with last-writer-wins per value:
/// nothing older than what the entry already holds overrides it.
fn apply_mod_with_state(entry: &mut Entry, m: &crate::model::Modification, csn: Csn) {
    let name = m.attr.as_str();
    match m.op {
        ModOp::Add => {
            for v in &m.values {
                match entry.get_mut(name) {
                    Some(a) => {
                        if !a.values.iter().any(|x| x.bytes == *v) {
                            a.values.push(Value {
                                bytes: v.clone(),
                                csn,
                            });
                        }
                    }
                    None => entry.attrs.push(Attribute::new(name, vec![v.clone()], csn)),
                }
            }
        }
        ModOp::Delete => {
            if m.values.is_empty() {
                let newer = entry
                    .get(name)
                    .is_some_and(|a| a.values.iter().any(|x| x.csn > csn));
                if !newer {
                    entry.remove(name);
                }
            } else if let Some(a) = entry.get_mut(name) {
                a.values
                    .retain(|x| !(m.values.contains(&x.bytes) && x.csn <= csn));
                if a.values.is_empty() {
                    entry.remove(name);
                }
            }
        }
        ModOp::Replace => {
            let newer = entry
                .get(name)
                .is_some_and(|a| a.values.iter().any(|x| x.csn > csn));
            if !newer {
                entry.set(name, m.values.clone(), csn);
            }
        }
        ModOp::Increment => {
            let delta: i128 =
                std::str::from_utf8(m.values.first().map(Vec::as_slice).unwrap_or(b"0"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
            if let Some(a) = entry.get_mut(name) {
                for v in &mut a.values {
                    if let Some(n) = std::str::from_utf8(&v.bytes)
                        .ok()
                        .and_then(|s| s.parse::<i128>().ok())
                    {
                        v.bytes = (n.saturating_add(delta)).to_string().into_bytes();
                        v.csn = csn;
                    }
                }
            }
        }
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

pub(crate) type StatusMap = HashMap<String, AgreementStatus>;

fn forbidden(suffix: &Dn) -> DirError {
    DirError::InsufficientAccess(format!(
        "this identity may not replicate '{suffix}': it is not the replica's nsDS5ReplicaBindDN"
    ))
}

impl super::Directory {
    pub(crate) fn suffix_key_checked(&self, suffix: &Dn) -> DirResult<Vec<u8>> {
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
    ) -> DirResult<(ReplicaConfig, Vec<u8>)> {
        let key = self.suffix_key_checked(suffix)?;
        let replica = self.core.replica_for(suffix).ok_or_else(|| {
            DirError::UnwillingToPerform(format!(
                "'{suffix}' is not configured as a replica here (add cn=replica,{})",
                mapping_node(suffix)
            ))
        })?;
        if !may_replicate(&replica, who) {
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
            .submit_work(super::writer::Work::Replicated {
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
    ) -> DirResult<()> {
        let (_, key) = self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(super::writer::Work::TotalBegin {
                suffix_key: key,
                generation,
            })
            .await
    }

    pub async fn repl_total_entries(
        &self,
        who: &Identity,
        suffix: &Dn,
        entries: Vec<Entry>,
    ) -> DirResult<()> {
        self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(super::writer::Work::TotalEntries { entries })
            .await
    }

    pub async fn repl_total_end(&self, who: &Identity, suffix: &Dn, ruv: Ruv) -> DirResult<Ruv> {
        let (_, key) = self.replica_checked(who, suffix)?;
        self.writer
            .submit_work(super::writer::Work::TotalEnd {
                suffix_key: key.clone(),
                ruv,
            })
            .await?;
        self.core.load_ruv(&self.core.store.read()?, &key)
    }

    /// For a write on a read-only replica: the referral URLs to send instead
    /// (possibly empty when none is known). None when the DN is writable here.
    pub fn write_referral(&self, dn: &Dn) -> Option<Vec<String>> {
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

    pub fn agreement_status(&self, agreement: &Dn) -> AgreementStatus {
        let norm = self.core.norm_dn(agreement);
        self.core
            .status
            .lock()
            .ok()
            .and_then(|m| m.get(&norm).cloned())
            .unwrap_or_default()
    }

    pub fn update_agreement_status(&self, agreement: &Dn, f: impl FnOnce(&mut AgreementStatus)) {
        let norm = self.core.norm_dn(agreement);
        if let Ok(mut m) = self.core.status.lock() {
            f(m.entry(norm).or_default());
        }
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

/// Status attributes of an agreement entry, as 389-ds names them.
pub(crate) fn status_attributes(s: &AgreementStatus) -> Vec<(String, Vec<Vec<u8>>)> {
    let t = |v: Option<u64>| {
        v.map(time::generalized_time)
            .unwrap_or_else(|| "19700101000000Z".into())
    };
    let mut out = vec![
        (
            "nsds5replicaLastUpdateStart".to_string(),
            vec![t(s.last_update_start).into_bytes()],
        ),
        (
            "nsds5replicaLastUpdateEnd".to_string(),
            vec![t(s.last_update_end).into_bytes()],
        ),
        (
            "nsds5replicaUpdateInProgress".to_string(),
            vec![if s.update_in_progress {
                b"TRUE".to_vec()
            } else {
                b"FALSE".to_vec()
            }],
        ),
        (
            "nsds5replicaChangesSentSinceStartup".to_string(),
            vec![s.changes_sent.to_string().into_bytes()],
        ),
        (
            "nsds5replicaLastInitStart".to_string(),
            vec![t(s.last_init_start).into_bytes()],
        ),
        (
            "nsds5replicaLastInitEnd".to_string(),
            vec![t(s.last_init_end).into_bytes()],
        ),
    ];
    if !s.last_update_status.is_empty() {
        out.push((
            "nsds5replicaLastUpdateStatus".into(),
            vec![s.last_update_status.clone().into_bytes()],
        ));
    }
    if !s.last_init_status.is_empty() {
        out.push((
            "nsds5replicaLastInitStatus".into(),
            vec![s.last_init_status.clone().into_bytes()],
        ));
    }
    if let Some(lag) = s.lag_seconds {
        out.push((
            "ferrodirReplicationLag".into(),
            vec![lag.to_string().into_bytes()],
        ));
    }
    out.push((
        "ferrodirReplicationState".into(),
        vec![state_text(s).into_bytes()],
    ));
    out.push((
        "ferrodirReplicationBehind".into(),
        vec![s.behind.to_string().into_bytes()],
    ));
    if let Some((done, total)) = s.init_progress {
        out.push((
            "ferrodirInitProgress".into(),
            vec![format!("{done}/{total}").into_bytes()],
        ));
    }
    out
}

/// One-line state of an agreement: "in sync", "behind N changes",
/// "initialising P%", "error: <reason>", "starting".
pub fn state_text(s: &AgreementStatus) -> String {
    if let Some((done, total)) = s.init_progress {
        let pct = done
            .saturating_mul(100)
            .checked_div(total)
            .map_or(100, |p| p.min(100));
        return format!("initialising {pct}%");
    }
    let st = s.last_update_status.as_str();
    if st.is_empty() {
        return "starting".into();
    }
    if let Some(rest) = st.strip_prefix("Error (0) ") {
        if rest.starts_with("agreement disabled") {
            return "disabled".into();
        }
        if s.behind == 0 && !s.update_in_progress {
            return "in sync".into();
        }
        return format!("behind {} changes", s.behind.max(1));
    }
    let reason = st
        .strip_prefix("Error (")
        .and_then(|r| r.split_once(") "))
        .map(|(_, m)| m)
        .unwrap_or(st);
    format!("error: {reason}")
}
