//! The DIT as transactions: bind, compare, search and writes over the store,
//! with schema checks, index maintenance and CSN stamping. Writes go through
//! one writer thread that commits concurrent operations together (group
//! commit) and acknowledges each only after the commit is durable.

#[cfg(test)]
mod access_tests;
mod catchup;
mod controls;
pub mod error;
mod index_sync;
pub mod init_snapshot;
pub mod join;
pub mod memberof;
mod monitor;
pub mod password_scan;
pub mod policy;
pub mod refint;
pub mod repl;
mod search;
pub mod secrets;
mod select;
pub mod setup;
pub mod state_export;
pub mod subschema;
pub mod sync;
#[cfg(test)]
pub(crate) mod test_support;
mod time;
mod tombstone;
mod transfer;
mod trim;
mod write;
mod writer;

pub use crate::model::{Identity, ModOp, Modification, WriteOp};
pub use crate::query::{filter, index};
pub use crate::query::{IndexConfig, IndexKinds};
pub use catchup::CatchUpSnapshot;
pub use controls::{EntryControls, EntryReads};
pub use error::{DirError, DirResult};
pub use search::{Scope, SearchEnd, SearchEntry, SearchRequest, SelectedEntry, SelectedValues};
pub use subschema::{is_subschema_dn, SubschemaState};
pub use time::generalized_time;
pub use transfer::ImportError;
pub use trim::Housekeeping;
pub use writer::Origin;

use crate::auth::password::{self, Scheme};
use crate::model::{Csn, Dn};
use crate::repl::core::HlcClock;
use crate::schema::{AttributeType, Schema};
use crate::store::{DnKey, Store, StoreRead};
use std::sync::{Arc, Mutex};

const META_ROOT_PASSWORD: &str = "root_password";
const META_LAST_CSN: &str = "last_csn";

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub suffixes: Vec<Dn>,
    pub root_dn: Dn,
    pub indexes: IndexConfig,
    pub replica_id: u16,
    /// Entries a non-root search may return (0 = unlimited).
    pub size_limit: usize,
    /// Seconds a non-root search may run (0 = unlimited).
    pub time_limit: u64,
    pub password_scheme: Scheme,
    pub password_policy: policy::PasswordPolicy,
    pub memberof: memberof::MemberOfSettings,
    pub refint: refint::RefintSettings,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            suffixes: Vec::new(),
            root_dn: Dn::from_pairs(&[("cn", "Directory Manager")]),
            indexes: IndexConfig::default(),
            replica_id: 1,
            size_limit: 500,
            time_limit: 3600,
            password_scheme: password::DEFAULT_SCHEME,
            password_policy: policy::PasswordPolicy::default(),
            memberof: memberof::MemberOfSettings::default(),
            refint: refint::RefintSettings::default(),
        }
    }
}

/// State shared by request handlers and the writer thread.
pub(crate) struct Core {
    pub(crate) store: Store,
    /// The schema in force: shipped definitions plus those added over LDAP
    /// (replaced as a whole by the writer thread when cn=schema changes).
    schema: std::sync::RwLock<Arc<Schema>>,
    pub(crate) cfg: DirectoryConfig,
    /// Suffixes and cn=config, as DN keys.
    suffix_keys: Vec<DnKey>,
    /// cn=config's DN key (every search and write asks whether it is
    /// under cn=config).
    config_key: DnKey,
    root_norm: String,
    /// Access-control settings kept outside the data (replication identities).
    pub(crate) acl: crate::acl::AccessControl,
    pub(crate) secrets: secrets::Secrets,
    pub(crate) repl: std::sync::RwLock<repl::ReplState>,
    pub(crate) status: Mutex<repl::StatusMap>,
    /// Set by the writer when a commit carries changelog records / config changes.
    pub(crate) changes_pending: std::sync::atomic::AtomicBool,
    pub(crate) config_pending: std::sync::atomic::AtomicBool,
    /// Bumped after each commit that replication peers may care about.
    pub(crate) notify: tokio::sync::watch::Sender<u64>,
    /// Supplier URLs seen in replication sessions, by normalised suffix.
    pub(crate) learned_referrals: Mutex<std::collections::HashMap<String, String>>,
    /// The largest clock skew seen in a peer's CSN, in seconds (0: none
    /// beyond the warning threshold).
    pub(crate) clock_skew: std::sync::atomic::AtomicU32,
    /// Schema definitions from peers that were not applied here (schema
    /// replication), by peer and definition: shown on every agreement entry.
    pub(crate) schema_conflicts: Mutex<std::collections::BTreeMap<String, String>>,
    /// A replica ID retirement may have work to do (set at start, when a
    /// retirement is recorded, and while one waits).
    pub(crate) retire_pending: std::sync::atomic::AtomicBool,
    /// Retired replica IDs whose late changes were already warned about.
    pub(crate) retire_warned: Mutex<std::collections::HashSet<u16>>,
    /// Why each unfinished retirement waits, by suffix (last step).
    pub(crate) retire_waiting: Mutex<std::collections::HashMap<DnKey, Vec<(u16, String)>>>,
    /// Agreement histories as last saved (repl/status.rs).
    pub(crate) saved_history: Mutex<std::collections::HashMap<String, repl::status::History>>,
    /// What each replicated suffix received from its supplier, by
    /// normalised suffix, and as last saved.
    pub(crate) consumer_side: Mutex<std::collections::HashMap<String, repl::status::ConsumerSide>>,
    pub(crate) saved_consumer_side:
        Mutex<std::collections::HashMap<String, repl::status::ConsumerSide>>,
    /// The password policy binds inherit from ancestors, by parent DN, for
    /// one store snapshot (policy.rs).
    pub(crate) inherited_policies: Mutex<policy::InheritedPolicies>,
}

pub struct Directory {
    core: Arc<Core>,
    writer: writer::WriterHandle,
    csn: Arc<Mutex<HlcClock>>,
}

impl Core {
    /// The schema in force. An operation that needs a consistent view takes
    /// it once; a cn=schema change only adds definitions or retires ones no
    /// entry uses, so a reader holding the previous one stays correct.
    pub(crate) fn schema(&self) -> Arc<Schema> {
        match self.schema.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a new schema in force (the writer thread, after a cn=schema
    /// change or when rolling one back).
    pub(crate) fn set_schema(&self, schema: Arc<Schema>) {
        match self.schema.write() {
            Ok(mut g) => *g = schema,
            Err(poisoned) => *poisoned.into_inner() = schema,
        }
    }

    pub(crate) fn norm_dn(&self, dn: &Dn) -> String {
        self.schema().normalize_dn(dn)
    }

    /// DN index key: normalised RDNs from the root down, each followed by NUL,
    /// so every subtree is a key-prefix range.
    pub(crate) fn dn_key(&self, dn: &Dn) -> DnKey {
        let schema = self.schema();
        let mut key = DnKey::root();
        for rdn in dn.rdns.iter().rev() {
            key.push_rdn(schema.normalize_rdn(rdn).as_bytes());
        }
        key
    }

    /// [`Core::norm_dn`] of `dn` and of its parent, and [`Core::dn_key`],
    /// each RDN normalised once (a bind needs all three).
    pub(crate) fn norm_dn_and_key(&self, dn: &Dn) -> (String, Option<String>, DnKey) {
        let schema = self.schema();
        let rdns: Vec<String> = dn.rdns.iter().map(|r| schema.normalize_rdn(r)).collect();
        let mut key = DnKey::root();
        for rdn in rdns.iter().rev() {
            key.push_rdn(rdn.as_bytes());
        }
        let parent = rdns.get(1..).map(|p| p.join(","));
        (rdns.join(","), parent, key)
    }

    /// One RDN's part of a DN key: its normalised form and a NUL.
    fn push_rdn_key(&self, key: &mut DnKey, rdn: &crate::model::Rdn) {
        key.push_rdn(self.schema().normalize_rdn(rdn).as_bytes());
    }

    /// The key of `dn`'s parent, given `key` = `dn_key(dn)`. Keys list the
    /// RDNs from the suffix down, so the parent's key is `key` without the
    /// leaf's part: normalising one RDN instead of the whole parent DN
    /// matters when every added entry looks up its parent.
    pub(crate) fn parent_key(&self, dn: &Dn, key: &DnKey) -> DnKey {
        if let Some(leaf) = dn.rdns.first() {
            let mut leaf_key = DnKey::root();
            self.push_rdn_key(&mut leaf_key, leaf);
            if let Some(parent) = key.strip_suffix(leaf_key.as_bytes()) {
                return DnKey::from_bytes(parent.to_vec());
            }
        }
        // Not the key of `dn` after all: derive the parent's key in full.
        self.dn_key(&dn.parent().unwrap_or_default())
    }

    /// The suffix key holding `key`, if any.
    pub(crate) fn suffix_of(&self, key: &DnKey) -> Option<&DnKey> {
        self.suffix_keys
            .iter()
            .filter(|s| key.is_within(s))
            .max_by_key(|s| s.len())
    }

    /// Records a peer CSN ahead of the local clock: logged when it is the
    /// largest seen so far, kept for `repl status`. Writes go on either way.
    pub(crate) fn note_clock_skew(&self, skew: crate::repl::core::Skew) {
        let before = self
            .clock_skew
            .fetch_max(skew.ahead_secs, std::sync::atomic::Ordering::Relaxed);
        if skew.ahead_secs > before {
            tracing::warn!(
                csn = %skew.remote,
                "clock skew: a replicated change is {} s ahead of this server's clock; \
                 changes made here are ordered after it anyway (check NTP on both servers)",
                skew.ahead_secs
            );
        }
    }

    /// Records what a schema merge with `peer` found (a consumer's address
    /// for a supplier's comparison, "a supplier" for definitions received):
    /// a conflict is logged when new and kept for `repl status`; a
    /// definition that now merged cleanly clears its old conflict with
    /// that peer.
    pub(crate) fn note_schema_conflicts(
        &self,
        peer: &str,
        merged: &[crate::schema::UserDefinition],
        conflicts: &[crate::schema::SchemaConflict],
    ) {
        let Ok(mut known) = self.schema_conflicts.lock() else {
            return;
        };
        let key = |kind: crate::schema::DefinitionKind, oid: &str| {
            format!("{peer}\u{0}{} {oid}", kind.attribute())
        };
        for d in merged {
            known.remove(&key(d.kind, &d.oid));
        }
        for c in conflicts {
            let text = format!("with {peer}: {c}");
            let key = key(c.kind, &c.oid);
            if known.get(&key) != Some(&text) {
                tracing::warn!("schema replication: {text}");
            }
            known.insert(key, text);
        }
    }

    /// The schema conflicts seen in replication sessions, by peer and definition.
    pub(crate) fn schema_conflicts(&self) -> Vec<String> {
        self.schema_conflicts
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Secret attributes: readable and searchable only by the root DN and
    /// the replication identities, whatever the ACIs say.
    pub(crate) fn is_secret(&self, at: &AttributeType) -> bool {
        crate::acl::is_secret(at.name())
    }

    /// Replication identities (ACI keyword `ldap:///replication`; they read
    /// secrets): every replica's nsDS5ReplicaBindDN, plus the DNs set through
    /// `Directory::access_control()`.
    pub(crate) fn is_replication_identity(&self, who: &Identity) -> bool {
        if who.root || who.is_anonymous() {
            return false;
        }
        let configured = self.repl.read().is_ok_and(|r| {
            r.replicas
                .iter()
                .any(|replica| replica.bind_dns.contains(&who.norm))
        });
        configured
            || self.is_slave_identity(who)
            || self
                .acl
                .replication_identities()
                .iter()
                .any(|d| self.norm_dn(d) == who.norm)
    }

    /// The nearest existing ancestor of `dn`, for matchedDN in noSuchObject.
    ///
    /// Linear in the DN's size: the parent's key is built once, RDN by RDN
    /// from the root down, and each ancestor's key is a prefix of it (a
    /// full key per ancestor would cost quadratic time in the depth).
    pub(crate) fn matched(&self, txn: &dyn StoreRead, dn: &Dn) -> DirResult<Option<Dn>> {
        let ancestors = dn.rdns.get(1..).unwrap_or_default();
        let mut key = DnKey::root();
        // ends[i]: length of the key of the ancestor with i + 1 RDNs.
        let mut ends = Vec::with_capacity(ancestors.len());
        for rdn in ancestors.iter().rev() {
            self.push_rdn_key(&mut key, rdn);
            ends.push(key.len());
        }
        // From the deepest ancestor up, each key is the previous one cut short.
        for (i, end) in ends.iter().enumerate().rev() {
            key.truncate(*end);
            if txn.id_by_dn(&key)?.is_some() {
                let first = ancestors.len() - (i + 1);
                return Ok(Some(Dn {
                    rdns: ancestors.get(first..).unwrap_or_default().to_vec(),
                }));
            }
        }
        Ok(None)
    }

    pub(crate) fn no_such_object(&self, txn: &dyn StoreRead, dn: &Dn) -> DirError {
        match self.matched(txn, dn) {
            Ok(matched) => DirError::NoSuchObject {
                dn: dn.to_string(),
                matched,
            },
            Err(e) => e,
        }
    }
}

impl Directory {
    /// Opens the directory over an opened store and starts the writer thread.
    pub fn open(store: Store, schema: Arc<Schema>, cfg: DirectoryConfig) -> DirResult<Directory> {
        let secrets = secrets::Secrets::open(store.path()).map_err(crate::store::StoreError::Io)?;
        let mut core = Core {
            store,
            schema: std::sync::RwLock::new(schema),
            cfg,
            suffix_keys: Vec::new(),
            config_key: DnKey::root(),
            root_norm: String::new(),
            acl: crate::acl::AccessControl::default(),
            secrets,
            repl: std::sync::RwLock::new(repl::ReplState::default()),
            status: Mutex::new(repl::StatusMap::new()),
            changes_pending: std::sync::atomic::AtomicBool::new(false),
            config_pending: std::sync::atomic::AtomicBool::new(false),
            notify: tokio::sync::watch::channel(0u64).0,
            learned_referrals: Mutex::new(std::collections::HashMap::new()),
            clock_skew: std::sync::atomic::AtomicU32::new(0),
            schema_conflicts: Mutex::new(std::collections::BTreeMap::new()),
            retire_pending: std::sync::atomic::AtomicBool::new(true),
            retire_warned: Mutex::new(std::collections::HashSet::new()),
            retire_waiting: Mutex::new(std::collections::HashMap::new()),
            saved_history: Mutex::new(std::collections::HashMap::new()),
            consumer_side: Mutex::new(std::collections::HashMap::new()),
            saved_consumer_side: Mutex::new(std::collections::HashMap::new()),
            inherited_policies: Mutex::new(policy::InheritedPolicies::default()),
        };
        core.load_user_schema()?;
        core.suffix_keys = core.cfg.suffixes.iter().map(|s| core.dn_key(s)).collect();
        core.config_key = core.dn_key(&repl::config_dn());
        core.suffix_keys.push(core.config_key.clone());
        core.root_norm = core.norm_dn(&core.cfg.root_dn);
        core.bootstrap_config()?;
        let state = core.load_repl_state(&core.store.read()?)?;
        if let Ok(mut r) = core.repl.write() {
            *r = state;
        }
        let last = core
            .store
            .read()?
            .meta(META_LAST_CSN)?
            .and_then(|b| Csn::from_bytes(&b))
            .unwrap_or(Csn::ZERO);
        let csn = Arc::new(Mutex::new(HlcClock::new(core.cfg.replica_id, last)));
        let core = Arc::new(core);
        let writer = writer::start(core.clone(), csn.clone());
        Ok(Directory { core, writer, csn })
    }

    /// The schema in force (a snapshot: cn=schema may change later).
    /// Records what a schema merge done by a replication session found
    /// (shown as ferrodirSchemaConflict on agreement entries).
    pub fn note_schema_conflicts(
        &self,
        peer: &str,
        merged: &[crate::schema::UserDefinition],
        conflicts: &[crate::schema::SchemaConflict],
    ) {
        self.core.note_schema_conflicts(peer, merged, conflicts);
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.core.schema()
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.core.cfg
    }

    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// Access-control settings kept outside the data (replication identities).
    pub fn access_control(&self) -> &crate::acl::AccessControl {
        &self.core.acl
    }

    pub fn normalize_dn(&self, dn: &Dn) -> String {
        self.core.norm_dn(dn)
    }

    pub fn last_csn(&self) -> Csn {
        self.csn.lock().map(|g| g.last()).unwrap_or(Csn::ZERO)
    }

    /// The root DN's identity, for the server's own writes (base entries, defaults).
    pub fn root_identity(&self) -> Identity {
        Identity {
            dn: Some(self.core.cfg.root_dn.clone()),
            norm: self.core.root_norm.clone(),
            root: true,
        }
    }

    pub fn is_root_dn(&self, dn: &Dn) -> bool {
        self.core.norm_dn(dn) == self.core.root_norm
    }

    pub fn root_password_is_set(&self) -> DirResult<bool> {
        Ok(self.core.store.read()?.meta(META_ROOT_PASSWORD)?.is_some())
    }

    /// Stores the root DN's password, hashed.
    pub fn set_root_password(&self, clear: &[u8]) -> DirResult<()> {
        let hashed = password::hash(self.core.cfg.password_scheme, clear);
        let mut w = self.core.store.write()?;
        w.put_meta(META_ROOT_PASSWORD, hashed.as_bytes())?;
        w.commit()?;
        Ok(())
    }

    /// Simple bind. Unknown DNs, entries without a password and wrong
    /// passwords all give the same answer so nothing leaks.
    pub fn bind(&self, dn: &Dn, password: &[u8]) -> DirResult<Identity> {
        self.bind_with_policy(dn, password).result
    }

    /// Simple bind with the password policy's verdict (policy.rs): locked
    /// and expired accounts answer invalidCredentials, with the reason in
    /// the policy response for clients that ask for it. Blocks while the
    /// state a bind changes (failure times, grace binds) is written.
    pub fn bind_with_policy(&self, dn: &Dn, password: &[u8]) -> policy::BindOutcome {
        match self.bind_read(dn, password, false) {
            BindRead::Answer(outcome) => outcome,
            BindRead::Verdict(v) => {
                // A read-only replica takes no writes of its own (they would put
                // its replica ID into the changelog): it enforces the state its
                // suppliers send and does not count failures itself.
                if !v.mods.is_empty() && self.write_referral(&v.entry.dn).is_none() {
                    let op = WriteOp::Modify {
                        dn: v.entry.dn.clone(),
                        mods: v.mods.clone(),
                    };
                    let work = writer::Work::Op {
                        who: self.root_identity(),
                        op,
                        origin: Origin::Client,
                    };
                    if let Err(e) = self.writer.submit_blocking(work) {
                        tracing::error!(dn = %dn, "cannot record the password policy state of a bind: {e}");
                    }
                }
                v.outcome(dn)
            }
            // Not produced when slow verification is allowed.
            BindRead::Slow => policy::BindOutcome::plain(Err(DirError::InvalidCredentials)),
        }
    }

    /// The same bind when it is cheap enough for the caller's thread (an
    /// async task): `None` when it would stretch a key (PBKDF2, crypt,
    /// Argon2, also the root DN's own hash) or write policy state, which
    /// `bind_with_policy` does on a blocking thread. Most binds against
    /// `{SSHA}`-style values are answered here: that saves the two thread
    /// hand-offs of a blocking task, which cost more than the bind itself.
    pub fn try_quick_bind(&self, dn: &Dn, password: &[u8]) -> Option<policy::BindOutcome> {
        match self.bind_read(dn, password, true) {
            BindRead::Answer(outcome) => Some(outcome),
            BindRead::Verdict(v) if v.mods.is_empty() => Some(v.outcome(dn)),
            BindRead::Verdict(_) | BindRead::Slow => None,
        }
    }

    /// A bind's reads and verdict, without its writes. With `quick_only`,
    /// an expensive verification is not done (`BindRead::Slow`).
    fn bind_read(&self, dn: &Dn, password: &[u8], quick_only: bool) -> BindRead {
        let answer = |r| BindRead::Answer(policy::BindOutcome::plain(r));
        let txn = match self.core.store.read() {
            Ok(t) => t,
            Err(e) => return answer(Err(e.into())),
        };
        let (norm, parent_norm, key) = self.core.norm_dn_and_key(dn);
        if norm == self.core.root_norm {
            let stored = match txn.meta(META_ROOT_PASSWORD) {
                Ok(s) => s,
                Err(e) => return answer(Err(e.into())),
            };
            if quick_only && !stored.as_deref().is_some_and(password::verifies_quickly) {
                return BindRead::Slow;
            }
            return answer(match stored {
                Some(h) if password::verify(&h, password) => Ok(Identity {
                    dn: Some(dn.clone()),
                    norm,
                    root: true,
                }),
                _ => Err(DirError::InvalidCredentials),
            });
        }
        let found = match txn.id_by_dn(&key) {
            Ok(Some(id)) => txn.entry_with(id, &policy::read_by_bind),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let entry = match found {
            Ok(Some(e)) => e,
            Ok(None) => return answer(Err(DirError::InvalidCredentials)),
            Err(e) => return answer(Err(e.into())),
        };
        if quick_only
            && !entry
                .values("userPassword")
                .iter()
                .all(|v| password::verifies_quickly(v))
        {
            return BindRead::Slow;
        }
        let rules = self.core.policy_rules_at(&txn, &entry, parent_norm);
        let (decision, mods) = self.core.bind_entry(&rules, &entry, password);
        BindRead::Verdict(BindVerdict {
            entry,
            norm,
            decision,
            mods,
        })
    }

    /// Compare (RFC 4511 §4.10): Ok(true)/Ok(false) for compareTrue/False.
    pub fn compare(&self, who: &Identity, dn: &Dn, attr: &str, value: &[u8]) -> DirResult<bool> {
        let core = &self.core;
        let txn = core.store.read()?;
        let schema = core.schema();
        let at = schema
            .attribute(filter::base_attr_name(attr))
            .ok_or_else(|| {
                DirError::UndefinedAttributeType(format!("unknown attribute type '{attr}'"))
            })?;
        let Some(id) = txn.id_by_dn(&core.dn_key(dn))? else {
            return Err(core.no_such_object(&txn, dn));
        };
        let Some(entry) = txn.entry(id)? else {
            return Err(core.no_such_object(&txn, dn));
        };
        let dn_key = |d: &Dn| core.dn_key(d).into_bytes();
        let memberof = core.memberof_view(&txn);
        let acl_computed = |name: &str, e: &crate::model::Entry| {
            memberof.as_ref().and_then(|m| m.computed(name, e))
        };
        let res = crate::acl::Resolver {
            schema: &schema,
            dn_key: &dn_key,
            computed: Some(&acl_computed),
        };
        let checker = crate::acl::Checker::new(res, &txn, who, core.is_replication_identity(who));
        if !checker
            .access(&entry)?
            .allows(crate::acl::Rights::COMPARE, at.name())
        {
            return Err(DirError::InsufficientAccess(format!(
                "no compare access to attribute '{}' of '{dn}'",
                at.name()
            )));
        }
        let computed = if core.is_memberof_attr(&at) {
            memberof
                .as_ref()
                .map(|m| m.values(&entry.dn))
                .transpose()?
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut values = entry.values(at.name());
        values.extend(computed.iter().map(Vec::as_slice));
        if values.is_empty() {
            return Err(DirError::NoSuchAttribute(format!(
                "entry has no attribute '{}'",
                at.name()
            )));
        }
        if at.name().eq_ignore_ascii_case("userPassword") {
            return Ok(values.iter().any(|v| password::verify(v, value)));
        }
        let assertion = schema.eq_normalize(&at, value).map_err(|v| match v.kind {
            crate::schema::ViolationKind::InappropriateMatching => {
                DirError::InappropriateMatching(v.message)
            }
            _ => DirError::InvalidSyntax(v.message),
        })?;
        Ok(values
            .iter()
            .any(|v| schema.eq_normalize(&at, v).is_ok_and(|n| n == assertion)))
    }

    /// Submits a write and waits (asynchronously) for its durable commit.
    pub async fn write(&self, who: &Identity, op: WriteOp) -> DirResult<()> {
        if let WriteOp::Add { dn, attrs } = &op {
            // 389-ds runbooks retire a replica ID by adding a task entry.
            if let Some(task) = repl::retire::cleanallruv_task(dn, attrs, |d| self.core.norm_dn(d))
            {
                let (suffix, rid) = task?;
                let r = self.retire_replica_id(who, &suffix, rid).await?;
                tracing::info!(task = %dn, "cleanallruv task: replica ID {} retired in '{suffix}' up to {}", r.rid, r.upto);
                return Ok(());
            }
        }
        self.writer
            .submit_work(writer::Work::Op {
                who: who.clone(),
                op,
                origin: Origin::Client,
            })
            .await
    }

    /// Blocking variant for non-async callers (tools, tests).
    pub fn write_blocking(&self, who: &Identity, op: WriteOp) -> DirResult<()> {
        self.writer.submit_blocking(writer::Work::Op {
            who: who.clone(),
            op,
            origin: Origin::Client,
        })
    }

    pub fn search(
        &self,
        who: &Identity,
        req: &SearchRequest<'_>,
        cancelled: &dyn Fn() -> bool,
        emit: &mut dyn FnMut(SearchEntry),
    ) -> DirResult<SearchEnd> {
        search::run(&self.core, who, req, cancelled, emit)
    }
}

impl Core {
    /// After each group commit: reload replication config and wake supplier sessions.
    pub(crate) fn after_commit(&self) {
        use std::sync::atomic::Ordering;
        let config = self.config_pending.swap(false, Ordering::Relaxed);
        let changes = self.changes_pending.swap(false, Ordering::Relaxed);
        if config {
            match self
                .store
                .read()
                .map_err(DirError::from)
                .and_then(|t| self.load_repl_state(&t))
            {
                Ok(mut state) => {
                    if let Ok(mut r) = self.repl.write() {
                        state.version = r.version.wrapping_add(1);
                        *r = state;
                    }
                }
                Err(e) => tracing::error!("reloading replication configuration: {e}"),
            }
        }
        if config || changes {
            self.notify.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// What the reading part of a simple bind found.
enum BindRead {
    /// Decided without an entry's password policy (root DN, no such entry,
    /// store error).
    Answer(policy::BindOutcome),
    /// The entry's verdict and the policy state it changes.
    Verdict(BindVerdict),
    /// Verifying would stretch a key: left to a blocking thread.
    Slow,
}

struct BindVerdict {
    entry: crate::model::Entry,
    norm: String,
    decision: policy::Decision,
    mods: Vec<crate::model::Modification>,
}

impl BindVerdict {
    fn outcome(self, dn: &Dn) -> policy::BindOutcome {
        match self.decision {
            policy::Decision::Refused { policy, .. } => {
                if policy.error == Some(policy::PolicyError::AccountLocked) {
                    // Same answer as a wrong password, so the lock tells an attacker nothing.
                    tracing::warn!(dn = %dn, "bind refused: account locked after failed binds");
                } else if policy.error == Some(policy::PolicyError::PasswordExpired) {
                    tracing::info!(dn = %dn, "bind refused: password expired");
                }
                policy::BindOutcome {
                    result: Err(DirError::InvalidCredentials),
                    policy,
                    must_change: false,
                }
            }
            policy::Decision::Accepted {
                policy,
                must_change,
                ..
            } => policy::BindOutcome {
                result: Ok(Identity {
                    dn: Some(self.entry.dn),
                    norm: self.norm,
                    root: false,
                }),
                policy,
                must_change,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::temp_directory;
    use crate::model::Dn;

    #[test]
    fn a_bind_dn_normalises_in_one_pass_as_its_parts_do() {
        let (_tmp, dir) = temp_directory("dc=example,dc=com", Default::default());
        let core = &dir.core;
        for text in [
            "uid=a,ou=People,dc=example,dc=com",
            "UID=B+cn=x,OU=people,DC=Example,DC=COM",
            "cn=with\\,comma,ou=a\\+b,dc=x",
            "dc=com",
            "",
        ] {
            let dn = Dn::parse(text).unwrap();
            let (norm, parent, key) = core.norm_dn_and_key(&dn);
            assert_eq!(norm, core.norm_dn(&dn), "{text}");
            assert_eq!(key, core.dn_key(&dn), "{text}");
            let expected_parent = dn.rdns.split_first().map(|(_, rest)| {
                core.norm_dn(&Dn {
                    rdns: rest.to_vec(),
                })
            });
            assert_eq!(parent, expected_parent, "{text}");
        }
    }
}
