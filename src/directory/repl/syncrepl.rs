//! The directory's side of an RFC 4533 (syncrepl) consumer: the
//! `cn=<name>,cn=syncrepl,cn=config` entries (OpenLDAP's olcSyncrepl
//! value, credentials sealed at rest), the read-only state of the suffix
//! they feed, and applying what a provider sends (upserts by entryUUID,
//! deletes, the present phase's removals) through the writer thread as
//! `Origin::Syncrepl`, with the cookie saved in the same transaction.
//! The network side is `repl/session/syncrepl.rs`.

use super::*;
use crate::directory::writer::{Origin, Work};
use crate::model::{Modification, Rdn, WriteOp};
use crate::repl::core::syncrepl_config::{self, SyncScope, SyncreplConfig};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub const SYNCREPL_DN: &str = "cn=syncrepl,cn=config";
pub const SYNCREPL_CLASS: &str = "ferrodirSyncreplConsumer";
pub const SYNCREPL_ATTR: &str = "olcSyncrepl";

/// Operational attributes a consumer keeps as the provider sends them,
/// whatever its `attrs=`. Others named in `attrs=` (a ferrodir slave asks
/// for aci and the password policy state) are kept and followed too.
const KEPT_OPERATIONAL: [&str; 4] = [
    "creatorsName",
    "createTimestamp",
    "modifiersName",
    "modifyTimestamp",
];

/// Whether the operational attribute `at` is the provider's to set here.
fn kept_operational(at: &crate::schema::AttributeType, managed: &[String]) -> bool {
    let named = |k: &str| k == at.oid || at.names.iter().any(|n| n.eq_ignore_ascii_case(k));
    KEPT_OPERATIONAL.iter().any(|k| named(k)) || managed.iter().any(|k| named(k))
}

/// The attributes named in a consumer's `attrs=` (not `*` or `+`): the
/// operational ones among them are kept from the provider.
pub fn managed_attributes(cfg: &crate::repl::core::syncrepl_config::SyncreplConfig) -> Vec<String> {
    cfg.attrs
        .iter()
        .filter(|a| *a != "*" && *a != "+")
        .map(|a| a.to_ascii_lowercase())
        .collect()
}

/// `cn=syncrepl,cn=config` as a DN.
pub fn syncrepl_dn() -> Dn {
    Dn::from_pairs(&[("cn", "syncrepl"), ("cn", "config")])
}

/// One consumer entry: its settings (credentials in clear, in memory only)
/// and the local suffix it feeds.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConsumer {
    pub dn: Dn,
    pub name: String,
    pub config: SyncreplConfig,
    pub suffix: Dn,
}

impl SyncConsumer {
    /// Meta key of the saved cookie: a new provider, base or rid starts
    /// from scratch.
    pub fn cookie_key(&self) -> String {
        format!(
            "syncrepl-cookie:{}:{}:{}",
            self.config.rid,
            self.config.provider.to_ascii_lowercase(),
            self.suffix.to_string().to_ascii_lowercase()
        )
    }
}

/// What the provider said about one entry, or a present phase's end.
#[derive(Debug, Clone)]
pub enum SyncChange {
    /// Add or modify: the entry as the provider has it now.
    Upsert {
        uuid: [u8; 16],
        dn: Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    /// The entry (and whatever is below it here) is gone.
    Delete { uuid: [u8; 16] },
    /// End of a present phase: every entry in scope not in `keep` is gone.
    DeleteUnlisted {
        base: Dn,
        scope: SyncScope,
        keep: Arc<HashSet<[u8; 16]>>,
    },
}

/// Outcome of one batch: changes applied, and those that failed (with
/// whether waiting for a parent may help).
#[derive(Debug, Default)]
pub struct SyncOutcome {
    pub applied: u64,
    pub deleted: u64,
    pub failed: Vec<(usize, String, bool)>,
}

/// Attributes dropped because the local schema does not know them,
/// logged once each.
static UNKNOWN_LOGGED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn log_unknown_once(name: &str, dn: &Dn) {
    let Ok(mut g) = UNKNOWN_LOGGED.lock() else {
        return;
    };
    let set = g.get_or_insert_with(HashSet::new);
    if set.insert(name.to_ascii_lowercase()) {
        tracing::warn!(
            "syncrepl: attribute '{name}' (first seen on '{dn}') is not in this server's schema: dropped from every entry (add it to the schema to replicate it)"
        );
    }
}

fn syntax(msg: String) -> DirError {
    DirError::InvalidSyntax(msg)
}

impl Core {
    /// Parses a consumer entry; credentials are revealed.
    pub(crate) fn parse_sync_consumer(&self, e: &Entry) -> DirResult<SyncConsumer> {
        if e.dn.parent().map(|p| self.norm_dn(&p)) != Some(self.norm_dn(&syncrepl_dn())) {
            return Err(invalid(format!(
                "a {SYNCREPL_CLASS} entry must be placed under '{SYNCREPL_DN}'"
            )));
        }
        let values = e.values(SYNCREPL_ATTR);
        let [value] = values.as_slice() else {
            return Err(syntax(format!(
                "a {SYNCREPL_CLASS} entry needs exactly one {SYNCREPL_ATTR} value"
            )));
        };
        let text = std::str::from_utf8(value)
            .map_err(|_| syntax(format!("{SYNCREPL_ATTR} is not UTF-8")))?;
        let mut config = syncrepl_config::parse(text).map_err(|e| syntax(e.to_string()))?;
        let clear = self.secrets.reveal(config.credentials.as_bytes())?;
        config.credentials = String::from_utf8(clear)
            .map_err(|_| syntax(format!("{SYNCREPL_ATTR}: credentials are not UTF-8")))?;
        ldap3_proto::parse_ldap_filter_str(&config.filter).map_err(|e| {
            syntax(format!(
                "olcSyncrepl: filter: '{}' is not an LDAP filter ({e})",
                config.filter
            ))
        })?;
        let suffix = Dn::parse(&config.searchbase)
            .map_err(|err| syntax(format!("{SYNCREPL_ATTR}: searchbase: {err}")))?;
        let norm = self.norm_dn(&suffix);
        if !self.cfg.suffixes.iter().any(|s| self.norm_dn(s) == norm) {
            return Err(invalid(format!(
                "{SYNCREPL_ATTR}: searchbase '{}' is not a suffix of this server (the suffixes are: {})",
                config.searchbase,
                self.cfg
                    .suffixes
                    .iter()
                    .map(|s| format!("'{s}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let name =
            e.dn.rdn()
                .and_then(|r| r.avas.first())
                .map(|ava| String::from_utf8_lossy(&ava.value).to_string())
                .unwrap_or_else(|| e.dn.to_string());
        Ok(SyncConsumer {
            dn: e.dn.clone(),
            name,
            config,
            suffix,
        })
    }

    /// Every consumer entry under cn=syncrepl,cn=config (bad ones logged).
    pub(crate) fn load_sync_consumers(&self, txn: &dyn StoreRead) -> DirResult<Vec<SyncConsumer>> {
        let mut out: Vec<SyncConsumer> = Vec::new();
        for (_, id) in txn.subtree_keys(&self.dn_key(&syncrepl_dn()))? {
            let Some(e) = txn.entry(id)? else { continue };
            if !has_class(&e, SYNCREPL_CLASS) {
                continue;
            }
            match self.parse_sync_consumer(&e) {
                Ok(c) => out.push(c),
                Err(err) => tracing::warn!(dn = %e.dn, "ignoring syncrepl consumer entry: {err}"),
            }
        }
        Ok(out)
    }

    /// Checks a consumer entry after a write (one consumer per suffix).
    pub(crate) fn validate_sync_consumer(&self, txn: &WriteTxn<'_>, e: &Entry) -> DirResult<()> {
        let c = self.parse_sync_consumer(e)?;
        let norm = self.norm_dn(&c.suffix);
        for other in self.load_sync_consumers(txn)? {
            if self.norm_dn(&other.dn) != self.norm_dn(&c.dn) && self.norm_dn(&other.suffix) == norm
            {
                return Err(invalid(format!(
                    "'{}' is already fed by the syncrepl consumer '{}': one consumer per suffix",
                    c.suffix, other.dn
                )));
            }
        }
        if !c.config.ignored.is_empty() {
            tracing::warn!(
                dn = %e.dn,
                "{SYNCREPL_ATTR}: keys accepted but not used by ferrodir: {}",
                c.config.ignored.join(", ")
            );
        }
        Ok(())
    }

    /// The olcSyncrepl values with `credentials=` sealed; None when
    /// nothing needed sealing.
    pub(crate) fn seal_syncrepl(&self, e: &Entry) -> DirResult<Option<Vec<Vec<u8>>>> {
        let mut changed = false;
        let mut out = Vec::new();
        for v in e.values(SYNCREPL_ATTR) {
            let Ok(text) = std::str::from_utf8(v) else {
                out.push(v.to_vec());
                continue;
            };
            let sealed = syncrepl_config::map_credentials(text, |clear| {
                if crate::directory::secrets::Secrets::is_sealed(clear.as_bytes()) {
                    return Ok(clear.to_string());
                }
                self.secrets
                    .seal(clear.as_bytes())
                    .map(|b| String::from_utf8_lossy(&b).to_string())
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| syntax(e.to_string()))?;
            changed |= sealed.as_bytes() != v;
            out.push(sealed.into_bytes());
        }
        Ok(changed.then_some(out))
    }

    /// Applies one batch from a provider: each change in its own nested
    /// transaction (a failure is reported, not fatal), then the metadata
    /// (the cookie) and the consumer entry's status attributes.
    pub(crate) fn sync_apply(
        &self,
        txn: &mut WriteTxn<'_>,
        changes: &[SyncChange],
        managed: &[String],
        next_csn: &mut dyn FnMut() -> DirResult<Csn>,
        out: &mut SyncOutcome,
    ) -> DirResult<()> {
        let who = Identity {
            dn: Some(self.cfg.root_dn.clone()),
            norm: self.root_norm.clone(),
            root: true,
        };
        for (i, change) in changes.iter().enumerate() {
            let mut child = txn.nested()?;
            let res = self.sync_one(&mut child, &who, change, managed, next_csn);
            match res {
                Ok(n) => {
                    child.commit()?;
                    match change {
                        SyncChange::Upsert { .. } => out.applied += 1,
                        _ => out.deleted += n,
                    }
                }
                Err(e) => {
                    child.abort();
                    let retry = matches!(e, DirError::NoSuchObject { .. });
                    out.failed.push((i, e.to_string(), retry));
                }
            }
        }
        Ok(())
    }

    fn live_entry_by_uuid(&self, txn: &WriteTxn<'_>, uuid: &[u8; 16]) -> DirResult<Option<Entry>> {
        let Some(id) = txn.id_by_uuid(uuid)? else {
            return Ok(None);
        };
        Ok(txn.entry(id)?.filter(|e| !is_tombstone(e)))
    }

    fn sync_one(
        &self,
        txn: &mut WriteTxn<'_>,
        who: &Identity,
        change: &SyncChange,
        managed: &[String],
        next_csn: &mut dyn FnMut() -> DirResult<Csn>,
    ) -> DirResult<u64> {
        let mut run = |txn: &mut WriteTxn<'_>, op: WriteOp| -> DirResult<()> {
            let csn = next_csn()?;
            self.apply(txn, who, &op, csn, Origin::Syncrepl)
        };
        match change {
            SyncChange::Upsert { uuid, dn, attrs } => {
                let attrs = self.sync_keepable(dn, attrs, managed);
                match self.live_entry_by_uuid(txn, uuid)? {
                    Some(old) => {
                        let mut current = old.dn.clone();
                        if self.norm_dn(&current) != self.norm_dn(dn) {
                            self.clear_dn(txn, dn, uuid, &mut run)?;
                            let new_rdn = dn
                                .rdn()
                                .cloned()
                                .ok_or_else(|| invalid(format!("cannot rename to '{dn}'")))?;
                            let new_parent = dn.parent().unwrap_or_default();
                            let old_parent = current.parent().unwrap_or_default();
                            let new_superior = (self.norm_dn(&new_parent)
                                != self.norm_dn(&old_parent))
                            .then_some(new_parent);
                            run(
                                txn,
                                WriteOp::ModDn {
                                    dn: current.clone(),
                                    new_rdn,
                                    delete_old_rdn: true,
                                    new_superior,
                                },
                            )?;
                            current = dn.clone();
                        }
                        let id = txn
                            .id_by_uuid(uuid)?
                            .ok_or_else(|| invalid(format!("'{dn}' vanished during a rename")))?;
                        let now = txn
                            .entry(id)?
                            .ok_or_else(|| invalid(format!("'{dn}' vanished during a rename")))?;
                        let mods = self.sync_diff(&now, &attrs, managed);
                        if !mods.is_empty() {
                            run(txn, WriteOp::Modify { dn: current, mods })?;
                        }
                    }
                    None => {
                        self.clear_dn(txn, dn, uuid, &mut run)?;
                        let mut attrs = attrs;
                        attrs.push((
                            "entryUUID".into(),
                            vec![uuid::Uuid::from_bytes(*uuid).to_string().into_bytes()],
                        ));
                        run(
                            txn,
                            WriteOp::Add {
                                dn: dn.clone(),
                                attrs,
                            },
                        )?;
                    }
                }
                Ok(1)
            }
            SyncChange::Delete { uuid } => match self.live_entry_by_uuid(txn, uuid)? {
                Some(e) => self.delete_subtree(txn, &e.dn, &mut run),
                None => Ok(0),
            },
            SyncChange::DeleteUnlisted { base, scope, keep } => {
                let base_key = self.dn_key(base);
                let depth = base.rdns.len();
                let mut gone: Vec<Dn> = Vec::new();
                for (_, id) in txn.subtree_keys(&base_key)? {
                    let Some(e) = txn.entry(id)? else { continue };
                    if is_tombstone(&e) {
                        continue;
                    }
                    let in_scope = match scope {
                        SyncScope::Sub => true,
                        SyncScope::One => e.dn.rdns.len() == depth + 1,
                        SyncScope::Base => e.dn.rdns.len() == depth,
                    };
                    let Ok(uuid) = crate::directory::write::entry_uuid(&e) else {
                        continue;
                    };
                    if in_scope && !keep.contains(&uuid) {
                        gone.push(e.dn.clone());
                    }
                }
                // Leaves first.
                gone.sort_by_key(|d| std::cmp::Reverse(d.rdns.len()));
                let mut n = 0;
                for dn in gone {
                    if txn.id_by_dn(&self.dn_key(&dn))?.is_some() {
                        run(txn, WriteOp::Delete { dn })?;
                        n += 1;
                    }
                }
                Ok(n)
            }
        }
    }

    /// Another entry holds `dn` here (ferrodir's own base entry before the
    /// first refresh, or one the provider replaced): it goes, subtree and all.
    fn clear_dn(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        uuid: &[u8; 16],
        run: &mut dyn FnMut(&mut WriteTxn<'_>, WriteOp) -> DirResult<()>,
    ) -> DirResult<()> {
        let Some(id) = txn.id_by_dn(&self.dn_key(dn))? else {
            return Ok(());
        };
        let Some(e) = txn.entry(id)? else {
            return Ok(());
        };
        if crate::directory::write::entry_uuid(&e).ok().as_ref() == Some(uuid) {
            return Ok(());
        }
        self.delete_subtree(txn, &e.dn, run).map(|_| ())
    }

    fn delete_subtree(
        &self,
        txn: &mut WriteTxn<'_>,
        top: &Dn,
        run: &mut dyn FnMut(&mut WriteTxn<'_>, WriteOp) -> DirResult<()>,
    ) -> DirResult<u64> {
        let mut dns: Vec<Dn> = Vec::new();
        for (_, id) in txn.subtree_keys(&self.dn_key(top))? {
            if let Some(e) = txn.entry(id)? {
                if !is_tombstone(&e) {
                    dns.push(e.dn);
                }
            }
        }
        dns.sort_by_key(|d| std::cmp::Reverse(d.rdns.len()));
        let mut n = 0;
        for dn in dns {
            run(txn, WriteOp::Delete { dn })?;
            n += 1;
        }
        Ok(n)
    }

    /// The provider's attributes this server can hold: user attributes its
    /// schema knows and the four kept operational ones; entryUUID comes
    /// from the Sync State control, the rest of the operational state is
    /// this server's.
    fn sync_keepable(
        &self,
        dn: &Dn,
        attrs: &[(String, Vec<Vec<u8>>)],
        managed: &[String],
    ) -> Vec<(String, Vec<Vec<u8>>)> {
        let schema = self.schema();
        let mut out: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        for (name, values) in attrs {
            if values.is_empty() {
                continue;
            }
            let Some(at) = schema.attribute(name) else {
                log_unknown_once(name, dn);
                continue;
            };
            let canonical = at.name().to_string();
            if at.is_operational() && !kept_operational(&at, managed) {
                continue;
            }
            if self.is_memberof_attr(&at) {
                continue;
            }
            match out
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&canonical))
            {
                Some((_, v)) => v.extend(values.iter().cloned()),
                None => out.push((canonical, values.clone())),
            }
        }
        out
    }

    /// Replace modifications that make `old` hold `new`'s attributes
    /// (user attributes and the kept operational ones).
    fn sync_diff(
        &self,
        old: &Entry,
        new: &[(String, Vec<Vec<u8>>)],
        managed: &[String],
    ) -> Vec<Modification> {
        let schema = self.schema();
        let sorted = |mut v: Vec<Vec<u8>>| {
            v.sort();
            v
        };
        let mut mods = Vec::new();
        for (name, values) in new {
            let have: Vec<Vec<u8>> = old.values(name).into_iter().map(<[u8]>::to_vec).collect();
            if sorted(have) != sorted(values.clone()) {
                mods.push(Modification {
                    op: ModOp::Replace,
                    attr: name.clone(),
                    values: values.clone(),
                });
            }
        }
        for a in &old.attrs {
            let Some(at) = schema.attribute(&a.name) else {
                continue;
            };
            if at.is_operational() && !kept_operational(&at, managed) {
                continue;
            }
            if at.name().eq_ignore_ascii_case("objectClass") {
                continue;
            }
            if !new.iter().any(|(n, _)| n.eq_ignore_ascii_case(at.name())) {
                mods.push(Modification {
                    op: ModOp::Replace,
                    attr: at.name().to_string(),
                    values: Vec::new(),
                });
            }
        }
        mods
    }

    /// Writes the consumer entry's status attributes in place (no config
    /// reload: they are not settings).
    pub(crate) fn put_sync_status(
        &self,
        txn: &mut WriteTxn<'_>,
        dn: &Dn,
        attrs: &[(String, Vec<u8>)],
    ) -> DirResult<()> {
        let Some(id) = txn.id_by_dn(&self.dn_key(dn))? else {
            return Ok(());
        };
        let Some(mut e) = txn.entry(id)? else {
            return Ok(());
        };
        for (name, value) in attrs {
            e.set(name, vec![value.clone()], Csn::ZERO);
        }
        txn.put_entry(id, &e)?;
        Ok(())
    }
}

impl Directory {
    /// Consumer entries configured on this server (credentials in clear).
    pub fn sync_consumers(&self) -> Vec<SyncConsumer> {
        self.core
            .repl
            .read()
            .map(|r| r.syncrepl.clone())
            .unwrap_or_default()
    }

    /// The provider URL writes under `dn` are referred to, when a
    /// consumer feeds the suffix holding it.
    pub(crate) fn sync_referral(&self, dn: &Dn) -> Option<String> {
        self.sync_consumer_for(dn).map(|c| c.config.provider)
    }

    /// Whether this server follows an RFC 4533 provider for any suffix.
    pub fn follows_a_provider(&self) -> bool {
        self.core
            .repl
            .read()
            .is_ok_and(|state| !state.syncrepl.is_empty())
    }

    /// The consumer that feeds the suffix holding `dn`, if one does.
    pub fn sync_consumer_for(&self, dn: &Dn) -> Option<SyncConsumer> {
        // Asked on every write and (on a slave) every bind: a server that
        // follows no provider answers before computing any key.
        let state = self.core.repl.read().ok()?;
        if state.syncrepl.is_empty() {
            return None;
        }
        let key = self.core.dn_key(dn);
        let suffix = self.core.replicated_suffix_of(&key)?;
        state
            .syncrepl
            .iter()
            .find(|c| self.core.dn_key(&c.suffix) == suffix)
            .cloned()
    }

    /// The cookie saved for `consumer`, if any.
    pub fn sync_cookie(&self, consumer: &SyncConsumer) -> DirResult<Option<Vec<u8>>> {
        Ok(self.core.store.read()?.meta(&consumer.cookie_key())?)
    }

    /// Applies a batch through the writer thread; `cookie` (Some(None):
    /// forget it) and `status` are written in the same transaction.
    pub async fn sync_apply(
        &self,
        consumer: &SyncConsumer,
        changes: Vec<SyncChange>,
        cookie: Option<Option<Vec<u8>>>,
        status: Vec<(String, Vec<u8>)>,
    ) -> DirResult<SyncOutcome> {
        let out = Arc::new(Mutex::new(SyncOutcome::default()));
        self.writer
            .submit_work(Work::Syncrepl {
                changes,
                managed: managed_attributes(&consumer.config),
                cookie: cookie.map(|c| (consumer.cookie_key(), c)),
                status: (consumer.dn.clone(), status),
                out: out.clone(),
            })
            .await?;
        let mut g = out
            .lock()
            .map_err(|_| DirError::Busy("syncrepl outcome unavailable".into()))?;
        Ok(std::mem::take(&mut *g))
    }
}

/// Rdn of a consumer entry (tests, docs).
pub fn consumer_dn(name: &str) -> Dn {
    syncrepl_dn().child(Rdn::single("cn", name))
}

/// Seconds since the epoch, and that time as a GeneralizedTime (for the
/// status the session layer records).
pub fn now_secs() -> u64 {
    u64::from(time::now_secs())
}

pub fn generalized_time(secs: u64) -> String {
    time::generalized_time(secs)
}
