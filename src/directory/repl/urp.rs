//! The conflict core (repl::core) applied to the store: every change of a
//! replicated suffix, local or received, is merged into the replication
//! state of the entries it touches by `repl::core::apply`, and the entries
//! clients see are rewritten from that state. So two replicas that hold the
//! same changes hold the same entries, conflict entries and glue included,
//! whatever order the changes came in.
//!
//! States live in the store (`store::replstate`) with a name index the
//! resolver reads through [`TxnView`]. They are built from the entries the
//! first time a replicated suffix needs them (an upgraded format-2 data
//! directory, a suffix that just became replicated, after an offline import
//! or a total init) and kept in step by every change after that. What a
//! build from entries cannot know is what was deleted before it (deleted
//! values, whole-attribute deletes); docs/replication.md says what that
//! means.

use super::*;
use crate::directory::write::ValueKeys;
use crate::model::Rdn;
use crate::repl::core::{
    self as rc, rdn_key, EntryState, EntryStatus, Normaliser, Op, Outcome, ReplChange, ReplicaView,
    ValueOp, CONFLICT_ATTR,
};
use crate::schema::{AttributeType, Schema};
use crate::store::replstate::{children_key, claim_key, ReplStateRead};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Meta record present while the stored states match the entries of every
/// suffix (all but cn=config record their changes); anything that writes
/// entries without the core removes it.
pub(super) const META_STATES_BUILT: &str = "replstate_built";

type Uuid = [u8; 16];

/// The schema as the core needs it: canonical names, equality keys,
/// single-valuedness.
pub(crate) struct SchemaNorm<'a>(pub(crate) &'a Schema);

impl Normaliser for SchemaNorm<'_> {
    fn attr_key(&self, attr: &str) -> String {
        match self.0.attribute(attr) {
            Some(at) => at.name().to_string(),
            None => attr.to_ascii_lowercase(),
        }
    }

    fn value_key(&self, attr_key: &str, value: &[u8]) -> Vec<u8> {
        self.key_of(self.0.attribute(attr_key).as_deref(), value)
    }

    fn single_valued(&self, attr_key: &str) -> bool {
        self.0.attribute(attr_key).is_some_and(|at| at.single_value)
    }
}

impl SchemaNorm<'_> {
    /// [`Normaliser::value_key`] with the type looked up already: the
    /// equality key, or the bytes where there is no rule or it fails.
    fn key_of(&self, at: Option<&AttributeType>, value: &[u8]) -> Vec<u8> {
        at.and_then(|at| self.0.eq_normalize(at, value).ok())
            .unwrap_or_else(|| value.to_vec())
    }
}

/// Where a stored state puts its entry in the name index: its parent and
/// RDN when it is in the tree (see [`name_keys`]).
type NamePlace = Option<(Uuid, Rdn)>;

fn name_place(s: &EntryState) -> NamePlace {
    match (s.derived.in_tree, s.derived.parent) {
        (true, Some(p)) => Some((p, s.rdn.clone())),
        _ => None,
    }
}

/// The replica's stored states, read inside the write transaction. The
/// core's view cannot fail, so the first store error is kept and the
/// change is refused after the core returns.
struct TxnView<'a, 't> {
    txn: &'a WriteTxn<'t>,
    norm: &'a SchemaNorm<'a>,
    suffix: Uuid,
    error: RefCell<Option<DirError>>,
    /// The name-index place of every state read, as stored: writing the
    /// new states then moves their name keys without decoding the old
    /// states a second time.
    places: RefCell<HashMap<Uuid, NamePlace>>,
}

impl TxnView<'_, '_> {
    fn keep<T>(&self, r: DirResult<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        }
    }

    fn load(&self, uuid: &Uuid) -> Option<EntryState> {
        let bytes = self.keep(self.txn.repl_state(uuid).map_err(DirError::from))?;
        let state = match bytes {
            Some(b) => {
                self.keep(EntryState::decode(&b).map_err(|e| DirError::Busy(e.to_string())))?
            }
            None => {
                self.places.borrow_mut().entry(*uuid).or_insert(None);
                return None;
            }
        };
        self.places
            .borrow_mut()
            .entry(*uuid)
            .or_insert_with(|| name_place(&state));
        Some(state)
    }
}

impl ReplicaView for TxnView<'_, '_> {
    fn state(&self, uuid: &Uuid) -> Option<Cow<'_, EntryState>> {
        self.load(uuid).map(Cow::Owned)
    }

    fn tree_children(&self, parent: &Uuid) -> Vec<Uuid> {
        self.keep(
            self.txn
                .repl_names(&children_key(parent))
                .map_err(DirError::from),
        )
        .unwrap_or_default()
    }

    fn claimants(&self, parent: &Uuid, key: &[u8]) -> Vec<Uuid> {
        let listed = self
            .keep(
                self.txn
                    .repl_names(&claim_key(parent, key))
                    .map_err(DirError::from),
            )
            .unwrap_or_default();
        // The index key is a hash: keep only true claimants.
        listed
            .into_iter()
            .filter(|u| {
                self.load(u)
                    .is_some_and(|s| rdn_key(self.norm, &s.rdn) == key)
            })
            .collect()
    }

    fn suffix(&self) -> Uuid {
        self.suffix
    }
}

/// What one batch of changes to a suffix carries from one change to the
/// next ([`Core::resolve_change_in`]).
#[derive(Debug, Default)]
pub(crate) struct BatchMemo {
    /// The suffix entry's entryUUID, forgotten when a change rewrites it.
    suffix_uuid: Option<Uuid>,
    /// Parents' DNs by entryUUID (None: not in the tree), forgotten when a
    /// change renames, moves, deletes or places an entry: a batch of
    /// modifies under one parent then reads and decodes it once.
    parent_dns: HashMap<Uuid, Option<Dn>>,
}

/// What a rename stamps on the entry (modifiersName, modifyTimestamp,
/// entryCSN), as a modification right after the rename's own steps. The
/// rename record does not carry them, but every replica derives the same
/// values from it, so they are part of the replicated state like the
/// stamps a modify sends.
fn rename_stamps(rec: &ChangeRecord) -> Option<ReplChange> {
    if !matches!(rec.change, Change::ModDn { .. }) {
        return None;
    }
    let time = crate::directory::time::generalized_time(u64::from(rec.csn.time));
    Some(ReplChange {
        csn: rc::step_csn(rec.csn, 2),
        uuid: rec.uuid,
        op: Op::Modify {
            mods: vec![
                ValueOp::Replace(
                    "modifiersName".into(),
                    vec![rec.modifier.clone().into_bytes()],
                ),
                ValueOp::Replace("modifyTimestamp".into(), vec![time.into_bytes()]),
                ValueOp::Replace("entryCSN".into(), vec![rec.csn.to_string().into_bytes()]),
            ],
        },
    })
}

/// The name-index keys an entry's state puts it under.
pub(super) fn name_keys(norm: &SchemaNorm<'_>, s: &EntryState) -> Vec<Vec<u8>> {
    place_keys(norm, &name_place(s))
}

fn place_keys(norm: &SchemaNorm<'_>, place: &NamePlace) -> Vec<Vec<u8>> {
    match place {
        Some((p, rdn)) => vec![children_key(p), claim_key(p, &rdn_key(norm, rdn))],
        None => Vec::new(),
    }
}

fn uuid_text(u: &Uuid) -> String {
    uuid::Uuid::from_bytes(*u).hyphenated().to_string()
}

impl Core {
    /// Forgets the stored states: the next change of a replicated suffix
    /// rebuilds them from the entries.
    pub(crate) fn invalidate_repl_states(&self, txn: &mut WriteTxn<'_>) -> DirResult<()> {
        if txn.meta(META_STATES_BUILT)?.is_some() {
            txn.delete_meta(META_STATES_BUILT)?;
        }
        Ok(())
    }

    /// Whether the stored states are in step with the entries.
    pub(crate) fn repl_states_built(&self, txn: &dyn StoreRead) -> DirResult<bool> {
        Ok(txn.meta(META_STATES_BUILT)?.is_some())
    }

    /// Drops an entry's state and its name-index keys (total init).
    pub(crate) fn forget_repl_state(&self, txn: &mut WriteTxn<'_>, entry: &Entry) -> DirResult<()> {
        let Ok(uuid) = crate::directory::write::entry_uuid(entry) else {
            return Ok(());
        };
        let Some(bytes) = txn.repl_state(&uuid)? else {
            return Ok(());
        };
        if let Ok(old) = EntryState::decode(&bytes) {
            let schema = self.schema();
            for k in name_keys(&SchemaNorm(&schema), &old) {
                txn.delete_repl_name(&k, &uuid)?;
            }
        }
        txn.delete_repl_state(&uuid)?;
        Ok(())
    }

    /// Takes a total init entry's state as the supplier sent it. Without
    /// one (an older supplier, or one whose states were being rebuilt) the
    /// states are rebuilt from the entries at the next change.
    pub(crate) fn adopt_repl_state(
        &self,
        txn: &mut WriteTxn<'_>,
        entry: &Entry,
        state: Option<&[u8]>,
    ) -> DirResult<()> {
        if !self.repl_states_built(txn)? {
            return Ok(());
        }
        let uuid = crate::directory::write::entry_uuid(entry)?;
        let decoded = state.map(EntryState::decode);
        match decoded {
            Some(Ok(s)) if s.uuid == uuid => {
                let schema = self.schema();
                self.store_state(txn, &SchemaNorm(&schema), &s, None)
            }
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(dn = %entry.dn, "total init: the supplier's replication state does not decode ({e}); states will be rebuilt from the entries");
                }
                self.invalidate_repl_states(txn)
            }
        }
    }

    fn suffix_dn(&self, suffix_key: &DnKey) -> Dn {
        // The keys computed at open are the suffixes' in order (then
        // cn=config's): no DN key to derive per change.
        self.cfg
            .suffixes
            .iter()
            .zip(&self.suffix_keys)
            .find(|(_, k)| *k == suffix_key)
            .map(|(s, _)| s)
            .or_else(|| {
                self.cfg
                    .suffixes
                    .iter()
                    .find(|s| self.dn_key(s) == *suffix_key)
            })
            .cloned()
            .unwrap_or_default()
    }

    fn suffix_uuid(&self, txn: &dyn StoreRead, suffix_key: &DnKey) -> DirResult<Option<Uuid>> {
        match txn.id_by_dn(suffix_key)? {
            Some(id) => Ok(txn
                .entry(id)?
                .and_then(|e| crate::directory::write::entry_uuid(&e).ok())),
            None => Ok(None),
        }
    }

    /// Merges one change of a replicated suffix into the replication state
    /// and rewrites the entries it affects. For a local change the entry
    /// was already written by the operation; this makes it what the state
    /// says, as on every other replica.
    pub(crate) fn resolve_change(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        rec: &ChangeRecord,
    ) -> DirResult<Outcome> {
        self.resolve_change_in(txn, suffix_key, rec, &mut BatchMemo::default())
    }

    /// [`Core::resolve_change`] for one of a batch of changes of one
    /// suffix, `memo` carrying what one change read to the next.
    pub(crate) fn resolve_change_in(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        rec: &ChangeRecord,
        memo: &mut BatchMemo,
    ) -> DirResult<Outcome> {
        self.ensure_repl_states(txn)?;
        let change = self.core_change(txn, suffix_key, rec)?;
        let schema = self.schema();
        let norm = SchemaNorm(&schema);
        if memo.suffix_uuid.is_none() {
            memo.suffix_uuid = self.suffix_uuid(txn, suffix_key)?;
        }
        let suffix = memo.suffix_uuid.unwrap_or(rec.uuid);
        let outcome = self.resolve_one(txn, suffix_key, &norm, suffix, &change, memo)?;
        let mut rewrote_suffix = outcome.writes.iter().any(|s| s.uuid == suffix);
        if let Some(stamps) = rename_stamps(rec) {
            let stamped = self.resolve_one(txn, suffix_key, &norm, suffix, &stamps, memo)?;
            rewrote_suffix |= stamped.writes.iter().any(|s| s.uuid == suffix);
        }
        if rewrote_suffix {
            memo.suffix_uuid = None;
        }
        Ok(outcome)
    }

    fn resolve_one(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        norm: &SchemaNorm<'_>,
        suffix: Uuid,
        change: &ReplChange,
        memo: &mut BatchMemo,
    ) -> DirResult<Outcome> {
        let (outcome, places) = {
            let view = TxnView {
                txn,
                norm,
                suffix,
                error: RefCell::new(None),
                places: RefCell::new(HashMap::new()),
            };
            let outcome = rc::apply(&view, norm, change);
            if let Some(e) = view.error.into_inner() {
                return Err(e);
            }
            (outcome, view.places.into_inner())
        };
        for s in &outcome.writes {
            self.store_state(txn, norm, s, places.get(&s.uuid))?;
        }
        self.materialize(txn, suffix_key, norm, &outcome.writes, memo)?;
        Ok(outcome)
    }

    /// Writes a state and moves its name keys. `stored` is where the state
    /// being replaced sits in the name index when the caller read it in
    /// this transaction; otherwise it is read here.
    fn store_state(
        &self,
        txn: &mut WriteTxn<'_>,
        norm: &SchemaNorm<'_>,
        s: &EntryState,
        stored: Option<&NamePlace>,
    ) -> DirResult<()> {
        let read;
        let old_place = match stored {
            Some(p) => p,
            None => {
                read = match txn.repl_state(&s.uuid)? {
                    Some(b) => name_place(
                        &EntryState::decode(&b).map_err(|e| DirError::Busy(e.to_string()))?,
                    ),
                    None => None,
                };
                &read
            }
        };
        let new_place = name_place(s);
        if *old_place == new_place {
            txn.put_repl_state(&s.uuid, &s.encode())?;
            return Ok(());
        }
        let old_keys = place_keys(norm, old_place);
        let new_keys = place_keys(norm, &new_place);
        for k in &old_keys {
            if !new_keys.contains(k) {
                txn.delete_repl_name(k, &s.uuid)?;
            }
        }
        for k in &new_keys {
            if !old_keys.contains(k) {
                txn.add_repl_name(k, &s.uuid)?;
            }
        }
        txn.put_repl_state(&s.uuid, &s.encode())?;
        Ok(())
    }

    /// The change as the core sees it: entryUUIDs for parents, the old RDN
    /// of renames, increments already turned into the values they made.
    fn core_change(
        &self,
        txn: &WriteTxn<'_>,
        suffix_key: &DnKey,
        rec: &ChangeRecord,
    ) -> DirResult<ReplChange> {
        let op = match &rec.change {
            Change::Add { entry, parent } => {
                let key = self.dn_key(&entry.dn);
                let parent = match parent {
                    Some(p) => Some(*p),
                    None if key == *suffix_key => None,
                    // A record from before parents were recorded: the
                    // parent is whatever holds the parent DN here.
                    None => match txn.id_by_dn(&self.parent_key(&entry.dn, &key))? {
                        Some(pid) => txn
                            .entry(pid)?
                            .and_then(|p| crate::directory::write::entry_uuid(&p).ok()),
                        None => None,
                    },
                };
                Op::Add {
                    parent,
                    rdn: entry.dn.rdn().cloned().unwrap_or(Rdn { avas: Vec::new() }),
                    attrs: entry
                        .attrs
                        .iter()
                        .map(|a| {
                            (
                                a.name.clone(),
                                a.values.iter().map(|v| v.bytes.clone()).collect(),
                            )
                        })
                        .collect(),
                }
            }
            Change::Modify { mods } => Op::Modify {
                mods: mods
                    .iter()
                    .filter_map(|m| match m.op {
                        ModOp::Add => Some(ValueOp::Add(m.attr.clone(), m.values.clone())),
                        ModOp::Delete => Some(ValueOp::Delete(m.attr.clone(), m.values.clone())),
                        ModOp::Replace => Some(ValueOp::Replace(m.attr.clone(), m.values.clone())),
                        // Only records of older servers carry increments;
                        // the entryCSN/modifyTimestamp replace of the same
                        // change still applies.
                        ModOp::Increment => {
                            tracing::warn!(csn = %rec.csn, attr = %m.attr, "replicated increment from an older server ignored: increments replicate as the value they produced");
                            None
                        }
                    })
                    .collect(),
            },
            Change::Delete => Op::Delete,
            Change::ModDn {
                new_rdn,
                delete_old_rdn,
                new_superior,
            } => Op::ModDn {
                new_rdn: new_rdn.clone(),
                old_rdn: rec.dn.rdn().cloned().unwrap_or(Rdn { avas: Vec::new() }),
                delete_old_rdn: *delete_old_rdn,
                new_superior: *new_superior,
            },
        };
        Ok(ReplChange {
            csn: rec.csn,
            uuid: rec.uuid,
            op,
        })
    }

    /// Rewrites the entries whose state changed so the tree shows what the
    /// states say: DNs that change are all removed before any is put back
    /// (two entries may swap names), parents before children, and the
    /// descendants of a renamed entry follow it.
    fn materialize(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        norm: &SchemaNorm<'_>,
        writes: &[EntryState],
        memo: &mut BatchMemo,
    ) -> DirResult<()> {
        let by_uuid: BTreeMap<Uuid, &EntryState> = writes.iter().map(|s| (s.uuid, s)).collect();
        let suffix_dn = self.suffix_dn(suffix_key);
        // New DNs of the affected entries in the tree, parents first.
        let mut new_dn: BTreeMap<Uuid, Dn> = BTreeMap::new();
        let mut pending: Vec<Uuid> = writes
            .iter()
            .filter(|s| s.derived.in_tree)
            .map(|s| s.uuid)
            .collect();
        let mut rounds = 0;
        while !pending.is_empty() && rounds <= writes.len() {
            rounds += 1;
            let mut left = Vec::new();
            for u in pending {
                let Some(s) = by_uuid.get(&u) else { continue };
                let parent_dn = match s.derived.parent {
                    None => Some(suffix_dn.parent().unwrap_or_default()),
                    Some(p) if by_uuid.contains_key(&p) => new_dn.get(&p).cloned(),
                    Some(p) => match memo.parent_dns.get(&p) {
                        Some(dn) => dn.clone(),
                        None => {
                            let dn = match txn.id_by_uuid(&p)? {
                                Some(pid) => {
                                    txn.entry(pid)?.filter(|e| !is_tombstone(e)).map(|e| e.dn)
                                }
                                None => None,
                            };
                            memo.parent_dns.insert(p, dn.clone());
                            dn
                        }
                    },
                };
                match parent_dn {
                    Some(pdn) => {
                        new_dn.insert(u, pdn.child(s.visible_rdn()));
                    }
                    None if s
                        .derived
                        .parent
                        .is_some_and(|p| by_uuid.get(&p).is_some_and(|ps| ps.derived.in_tree)) =>
                    {
                        left.push(u)
                    }
                    None => {
                        tracing::error!(uuid = %uuid_text(&u), "replication: the parent of an entry is not in the tree; entry left out");
                    }
                }
            }
            pending = left;
        }

        struct Current {
            id: u64,
            entry: Entry,
            key: DnKey,
            live: bool,
            /// Whether the state names it as it is stored (in any spelling).
            same_name: bool,
            /// The parent's ID, read only for an entry whose DN changes
            /// (0 for the suffix entry and unplaced entries).
            parent_id: u64,
        }
        let mut current: BTreeMap<Uuid, Current> = BTreeMap::new();
        let mut desired: BTreeMap<Uuid, Entry> = BTreeMap::new();
        // Whether every write leaves every DN as it was (the memo of
        // parents' DNs stays true).
        let mut names_kept = true;
        for s in writes {
            let wanted = new_dn.get(&s.uuid).and_then(|dn| {
                let pdn = dn.parent().unwrap_or_default();
                s.to_entry(&pdn, norm)
            });
            let found = match txn.id_by_uuid(&s.uuid)? {
                Some(id) => txn.entry(id)?.map(|e| (id, e)),
                None => None,
            };
            if let Some((id, entry)) = found {
                let key = self.dn_key(&entry.dn);
                let live = !is_tombstone(&entry) && txn.id_by_dn(&key)? == Some(id);
                let spelled_alike = wanted.as_ref().is_some_and(|d| d.dn == entry.dn);
                let same_name =
                    spelled_alike || wanted.as_ref().is_some_and(|d| key == self.dn_key(&d.dn));
                let parent_id = if live && !same_name && key != *suffix_key {
                    txn.id_by_dn(&self.parent_key(&entry.dn, &key))?
                        .unwrap_or(0)
                } else {
                    0
                };
                names_kept &= live && spelled_alike;
                current.insert(
                    s.uuid,
                    Current {
                        id,
                        entry,
                        key,
                        live,
                        same_name,
                        parent_id,
                    },
                );
            } else {
                names_kept = false;
            }
            if let Some(d) = wanted {
                desired.insert(s.uuid, d);
            }
        }
        if !names_kept {
            memo.parent_dns.clear();
        }

        // Content-only changes in place; everything else is taken out first.
        let affected_ids: HashSet<u64> = current.values().map(|c| c.id).collect();
        let mut moved: Vec<(u64, Dn)> = Vec::new(); // (id, new DN) of entries whose DN changed
        let mut to_place: Vec<(Uuid, Entry)> = Vec::new();
        for s in writes {
            let desired = desired.remove(&s.uuid);
            let cur = current.get(&s.uuid);
            match (cur.filter(|c| c.live), desired) {
                (Some(c), Some(d)) if c.same_name => {
                    if c.entry != d {
                        txn.put_entry(c.id, &d)?;
                        self.index_update(txn, c.id, Some(&c.entry), Some(&d))?;
                    }
                }
                (Some(c), desired) => {
                    txn.delete_dn(&c.key)?;
                    if c.parent_id != 0 {
                        txn.unlink_child(c.parent_id, c.id)?;
                    }
                    self.index_update(txn, c.id, Some(&c.entry), None)?;
                    match desired {
                        Some(d) => {
                            moved.push((c.id, d.dn.clone()));
                            to_place.push((s.uuid, d));
                        }
                        None => self.store_tombstone(txn, suffix_key, norm, s, c.id, &c.entry)?,
                    }
                }
                (None, Some(d)) => to_place.push((s.uuid, d)),
                (None, None) if s.derived.status == EntryStatus::Tombstone => match cur {
                    // A change absorbed by the tombstone still shows in its
                    // record, so tombstones are alike on every replica.
                    Some(c) => self.store_tombstone(txn, suffix_key, norm, s, c.id, &c.entry)?,
                    None => {
                        let id = txn.next_id()?;
                        txn.put_uuid(&s.uuid, id)?;
                        let shown = Entry::new(suffix_dn.clone());
                        self.store_tombstone(txn, suffix_key, norm, s, id, &shown)?;
                    }
                },
                (None, None) => {}
            }
        }
        to_place.sort_by_key(|(_, d)| d.dn.rdns.len());
        for (uuid, d) in to_place {
            let key = self.dn_key(&d.dn);
            let id = match current.get(&uuid) {
                Some(c) => c.id,
                None => {
                    let id = txn.next_id()?;
                    txn.put_uuid(&uuid, id)?;
                    id
                }
            };
            if let Some(other) = txn.id_by_dn(&key)?.filter(|o| *o != id) {
                tracing::error!(dn = %d.dn, id = other, "replication: two entries resolved to one DN; the second is left out of the tree");
                continue;
            }
            txn.put_entry(id, &d)?;
            txn.put_dn(&key, id)?;
            if key != *suffix_key {
                if let Some(pid) = txn.id_by_dn(&self.parent_key(&d.dn, &key))? {
                    txn.link_child(pid, id)?;
                }
            }
            self.index_update(txn, id, None, Some(&d))?;
        }

        // Descendants of moved entries that the change did not touch follow
        // their parent: old keys all go before new ones are written.
        let mut rekey: Vec<(u64, DnKey, Entry)> = Vec::new();
        let mut stack: Vec<(u64, Dn)> = moved;
        let mut seen: BTreeSet<u64> = BTreeSet::new();
        while let Some((pid, pdn)) = stack.pop() {
            for cid in txn.children(pid)? {
                if affected_ids.contains(&cid) || !seen.insert(cid) {
                    continue;
                }
                let Some(mut child) = txn.entry(cid)? else {
                    continue;
                };
                let old_key = self.dn_key(&child.dn);
                let Some(rdn) = child.dn.rdn().cloned() else {
                    continue;
                };
                child.dn = pdn.child(rdn);
                stack.push((cid, child.dn.clone()));
                rekey.push((cid, old_key, child));
            }
        }
        for (cid, old_key, _) in &rekey {
            if txn.id_by_dn(old_key)? == Some(*cid) {
                txn.delete_dn(old_key)?;
            }
        }
        for (cid, _, child) in rekey {
            txn.put_dn(&self.dn_key(&child.dn), cid)?;
            txn.put_entry(cid, &child)?;
        }
        Ok(())
    }

    /// Writes the tombstone record of an entry the state says is deleted:
    /// its last visible values, the deletion CSN and its parent's entryUUID.
    fn store_tombstone(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        norm: &SchemaNorm<'_>,
        s: &EntryState,
        id: u64,
        shown: &Entry,
    ) -> DirResult<()> {
        let csn = s.deleted.unwrap_or(s.derived.status_csn);
        let mut visible = s.clone();
        visible.derived.in_tree = true;
        visible.derived.conflict = false;
        visible.derived.status = EntryStatus::Live;
        // Named after the parent register and the RDN, as on every replica.
        let parent_dn = match s.parent {
            Some(p) => match txn.id_by_uuid(&p)? {
                Some(pid) => txn.entry(pid)?.filter(|e| !is_tombstone(e)).map(|e| e.dn),
                None => None,
            },
            None => None,
        };
        let pdn = parent_dn.unwrap_or_else(|| shown.dn.parent().unwrap_or_default());
        let mut tomb = visible
            .to_entry(&pdn, norm)
            .unwrap_or_else(|| shown.clone());
        tomb.dn = pdn.child(s.rdn.clone());
        if let Some(p) = s.parent {
            tomb.set(
                super::super::tombstone::PARENT_UUID,
                vec![uuid_text(&p).into_bytes()],
                csn,
            );
        }
        tomb.set(
            super::super::tombstone::TOMBSTONE_CSN,
            vec![csn.to_string().into_bytes()],
            csn,
        );
        txn.put_entry(id, &tomb)?;
        self.list_tombstone(txn, suffix_key, csn, id)
    }

    /// Builds the states of every replicated suffix from its entries when
    /// they are not known to be in step (see [`META_STATES_BUILT`]), in
    /// the caller's transaction.
    pub(crate) fn ensure_repl_states(&self, txn: &mut WriteTxn<'_>) -> DirResult<()> {
        if txn.meta(META_STATES_BUILT)?.is_some() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        txn.clear_repl_state()?;
        let schema = self.schema();
        let norm = SchemaNorm(&schema);
        let mut built = 0usize;
        for suffix_key in self.replicated_suffix_keys() {
            if let Some(plan) = self.derive_suffix_states(txn, &suffix_key, &norm)? {
                built += self.write_suffix_states(txn, &plan, 0..plan.ids.len(), &norm)?;
                built += self.write_tombstone_states(txn, &plan, &norm)?;
            }
        }
        txn.put_meta(META_STATES_BUILT, &[])?;
        tracing::info!(
            entries = built,
            ms = started.elapsed().as_millis() as u64,
            "replication state built from the entries"
        );
        Ok(())
    }

    /// [`Core::ensure_repl_states`] for a directory no one else writes
    /// (after an offline import): the states are written in transactions of
    /// `chunk` entries, so neither the derivation nor the write holds every
    /// entry's state at once. The built marker goes in last; a crash before
    /// it leaves the states to be built again.
    pub(crate) fn build_repl_states_offline(&self, chunk: usize) -> DirResult<()> {
        let mut txn = self.store.write()?;
        if txn.meta(META_STATES_BUILT)?.is_some() {
            txn.abort();
            return Ok(());
        }
        let started = std::time::Instant::now();
        txn.clear_repl_state()?;
        let schema = self.schema();
        let norm = SchemaNorm(&schema);
        let mut built = 0usize;
        for suffix_key in self.replicated_suffix_keys() {
            let Some(plan) = self.derive_suffix_states(&txn, &suffix_key, &norm)? else {
                continue;
            };
            let mut from = 0;
            while from < plan.ids.len() {
                let to = (from + chunk.max(1)).min(plan.ids.len());
                built += self.write_suffix_states(&mut txn, &plan, from..to, &norm)?;
                txn.commit()?;
                txn = self.store.write()?;
                from = to;
            }
            built += self.write_tombstone_states(&mut txn, &plan, &norm)?;
        }
        txn.put_meta(META_STATES_BUILT, &[])?;
        txn.commit()?;
        tracing::info!(
            entries = built,
            ms = started.elapsed().as_millis() as u64,
            "replication state built from the entries"
        );
        Ok(())
    }

    /// Every suffix but cn=config records its changes (replicated_suffix_of).
    pub(super) fn replicated_suffix_keys(&self) -> Vec<DnKey> {
        let config = self.config_key();
        self.suffix_keys
            .iter()
            .filter(|k| **k != config)
            .cloned()
            .collect()
    }

    /// The derived part of every state of a suffix, from skeletons: each
    /// entry is read, its state built, reduced to its skeleton and dropped.
    fn derive_suffix_states(
        &self,
        txn: &WriteTxn<'_>,
        suffix_key: &DnKey,
        norm: &SchemaNorm<'_>,
    ) -> DirResult<Option<SuffixStates>> {
        let Some(suffix_uuid) = self.suffix_uuid(txn, suffix_key)? else {
            return Ok(None);
        };
        let entries = txn.subtree_keys(suffix_key)?;
        let mut uuid_by_key: BTreeMap<&DnKey, Uuid> = BTreeMap::new();
        for (key, id) in &entries {
            if let Some(e) = txn.entry(*id)? {
                if let Ok(u) = crate::directory::write::entry_uuid(&e) {
                    uuid_by_key.insert(key, u);
                }
            }
        }
        let mut skeletons: BTreeMap<Uuid, rc::Skeleton> = BTreeMap::new();
        let mut ids: Vec<(Uuid, u64)> = Vec::with_capacity(entries.len());
        for (key, id) in &entries {
            let Some(e) = txn.entry(*id)? else {
                continue;
            };
            let parent = if key == suffix_key {
                None
            } else {
                uuid_by_key.get(&self.parent_key(&e.dn, key)).copied()
            };
            if let Some(s) = state_of_entry(&e, parent, None, norm, Values::Left) {
                ids.push((s.uuid, *id));
                skeletons.insert(s.uuid, rc::Skeleton::of(&s, norm));
            }
        }
        drop(uuid_by_key);
        drop(entries);
        // Written in entryUUID order, the states fill their pages (in the
        // entries' order they land at random and leave pages a third empty).
        ids.sort_unstable();
        // A tombstone counts only where no entry has its entryUUID.
        let mut tombstones = BTreeSet::new();
        for t in self.tombstones(txn, suffix_key)? {
            if let Some(s) = tombstone_state(&t, norm) {
                if let std::collections::btree_map::Entry::Vacant(v) = skeletons.entry(s.uuid) {
                    tombstones.insert(s.uuid);
                    v.insert(rc::Skeleton::of(&s, norm));
                }
            }
        }
        rc::derive_skeletons(&mut skeletons, suffix_uuid);
        Ok(Some(SuffixStates {
            suffix_key: suffix_key.clone(),
            ids,
            skeletons,
            tombstones,
        }))
    }

    /// Writes the states of `plan.ids[range]`: each entry's state built
    /// again, with the derived part the plan computed.
    fn write_suffix_states(
        &self,
        txn: &mut WriteTxn<'_>,
        plan: &SuffixStates,
        range: std::ops::Range<usize>,
        norm: &SchemaNorm<'_>,
    ) -> DirResult<usize> {
        let mut written = 0;
        for (uuid, id) in plan.ids.get(range).unwrap_or(&[]) {
            let Some(e) = txn.entry(*id)? else {
                continue;
            };
            let Some(skeleton) = plan.skeletons.get(uuid) else {
                continue;
            };
            if let Some(s) = state_from_entry(&e, skeleton.parent, None, norm) {
                self.put_built_state(txn, norm, s, skeleton)?;
                written += 1;
            }
        }
        Ok(written)
    }

    fn write_tombstone_states(
        &self,
        txn: &mut WriteTxn<'_>,
        plan: &SuffixStates,
        norm: &SchemaNorm<'_>,
    ) -> DirResult<usize> {
        let mut written = 0;
        let mut done = BTreeSet::new();
        for t in self.tombstones(txn, &plan.suffix_key)? {
            let Some(s) = tombstone_state(&t, norm) else {
                continue;
            };
            // The first tombstone of an entryUUID counts, as in the plan.
            if !plan.tombstones.contains(&s.uuid) || !done.insert(s.uuid) {
                continue;
            }
            if let Some(skeleton) = plan.skeletons.get(&s.uuid) {
                self.put_built_state(txn, norm, s, skeleton)?;
                written += 1;
            }
        }
        Ok(written)
    }

    /// Writes a state built from its entry with the derived part its
    /// skeleton was given, and its name-index keys.
    fn put_built_state(
        &self,
        txn: &mut WriteTxn<'_>,
        norm: &SchemaNorm<'_>,
        mut s: EntryState,
        skeleton: &rc::Skeleton,
    ) -> DirResult<()> {
        s.derived = skeleton.derived.clone();
        let s = &s;
        for k in name_keys(norm, s) {
            txn.add_repl_name(&k, &s.uuid)?;
        }
        txn.put_repl_state_in_order(&s.uuid, &s.encode())?;
        Ok(())
    }
}

/// A suffix whose states are being built: its entries' entryUUIDs and
/// ids in entryUUID order, and the derived part of every state.
struct SuffixStates {
    suffix_key: DnKey,
    ids: Vec<(Uuid, u64)>,
    skeletons: BTreeMap<Uuid, rc::Skeleton>,
    /// The tombstones that count (no entry holds their entryUUID).
    tombstones: BTreeSet<Uuid>,
}

fn tombstone_state(t: &Entry, norm: &SchemaNorm<'_>) -> Option<EntryState> {
    let parent = t
        .first_str(super::super::tombstone::PARENT_UUID)
        .and_then(|p| uuid::Uuid::parse_str(p.trim()).ok())
        .map(|u| *u.as_bytes());
    let deleted = super::super::tombstone::tombstone_csn(t);
    state_from_entry(t, parent, deleted, norm)
}

/// The state an entry implies when nothing else is known of it: every
/// value added at its own CSN, the entry added at its oldest, nothing
/// deleted. Conflict and glue markers written by an earlier resolution are
/// taken off again (the resolver puts them back where they still apply).
pub(super) fn state_from_entry(
    e: &Entry,
    parent: Option<Uuid>,
    deleted: Option<Csn>,
    norm: &SchemaNorm<'_>,
) -> Option<EntryState> {
    state_of_entry(e, parent, deleted, norm, Values::Normalised(None))
}

/// [`state_from_entry`] of an entry just added, with the equality keys its
/// add found (`known`, taken out): its values are not normalised again.
pub(super) fn state_of_new_entry(
    e: &Entry,
    norm: &SchemaNorm<'_>,
    known: &mut ValueKeys,
) -> Option<EntryState> {
    state_of_entry(e, None, None, norm, Values::Normalised(Some(known)))
}

/// Which values a state is built with.
enum Values<'k> {
    /// None: the registers only (all a skeleton needs).
    Left,
    /// Every value, keyed by its equality key: these when known.
    Normalised(Option<&'k mut ValueKeys>),
}

/// With [`Values::Left`], the state without its values (their
/// normalisation is most of the cost): all a skeleton needs.
fn state_of_entry(
    e: &Entry,
    parent: Option<Uuid>,
    deleted: Option<Csn>,
    norm: &SchemaNorm<'_>,
    mut values_wanted: Values<'_>,
) -> Option<EntryState> {
    let uuid = crate::directory::write::entry_uuid(e).ok()?;
    let floor = Csn::new(1, 0, 0, 0);
    let marker = e.get(CONFLICT_ATTR).and_then(|a| a.values.first());
    let marker_csn = marker.map(|v| v.csn);
    let glue = marker.is_some_and(|v| !v.bytes.starts_with(b"namingConflict"));
    let mut rdn = e.dn.rdn().cloned().unwrap_or(Rdn { avas: Vec::new() });
    if marker.is_some()
        && rdn
            .avas
            .first()
            .is_some_and(|a| a.attr.eq_ignore_ascii_case("nsuniqueid"))
        && rdn.avas.len() > 1
    {
        rdn.avas.remove(0);
    }
    let mut s = EntryState::phantom(uuid);
    let mut added = Csn::new(u32::MAX, u16::MAX, u16::MAX, u16::MAX);
    for a in &e.attrs {
        let name = a.name.as_str();
        if name.eq_ignore_ascii_case(CONFLICT_ATTR)
            || name.eq_ignore_ascii_case(super::super::tombstone::TOMBSTONE_CSN)
            || name.eq_ignore_ascii_case(super::super::tombstone::PARENT_UUID)
        {
            continue;
        }
        // The type is looked up once for all its values (what attr_key and
        // value_key would each do per value).
        let at = norm.0.attribute(name);
        let key = match &at {
            Some(at) => at.name().to_string(),
            None => norm.attr_key(name),
        };
        if marker.is_some() && !glue && key.eq_ignore_ascii_case("nsUniqueId") {
            continue;
        }
        let is_class = key.eq_ignore_ascii_case("objectClass");
        let mut values = AttrStateSlot::new(matches!(values_wanted, Values::Normalised(_)));
        let mut known = match &mut values_wanted {
            Values::Normalised(Some(k)) => k.take(name).into_iter(),
            _ => Vec::new().into_iter(),
        };
        for v in &a.values {
            let known_key = known.next();
            let virtual_marker = is_class
                && Some(v.csn) == marker_csn
                && (v.bytes.eq_ignore_ascii_case(b"ldapSubEntry")
                    || (glue
                        && (v.bytes.eq_ignore_ascii_case(b"glue")
                            || v.bytes.eq_ignore_ascii_case(b"extensibleObject"))));
            if virtual_marker {
                continue;
            }
            let csn = v.csn.max(floor);
            added = added.min(csn);
            if let Some(attr) = values.0.as_mut() {
                let value_key = match known_key {
                    Some(k) => k.unwrap_or_else(|| v.bytes.clone()),
                    None => norm.key_of(at.as_deref(), &v.bytes),
                };
                attr.values.insert(
                    value_key,
                    rc::ValueState {
                        bytes: v.bytes.clone(),
                        updated: csn,
                        deleted: None,
                        distinguished: false,
                    },
                );
            }
        }
        if let Some(attr) = values.0 {
            // Two spellings of one attribute (a name and an alias) merge.
            match s.attrs.entry(key) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(attr);
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    slot.get_mut().values.extend(attr.values);
                }
            }
        }
    }
    if added.time == u32::MAX {
        added = floor;
    }
    s.added = Some(added);
    s.deleted = match (deleted, glue) {
        (Some(d), _) => Some(d),
        (None, true) => marker_csn,
        (None, false) => None,
    };
    s.parent = parent;
    s.parent_csn = added;
    s.rdn = rdn;
    s.rdn_csn = added;
    if let Values::Normalised(_) = values_wanted {
        rc::mark_distinguished(&mut s, norm);
    }
    Some(s)
}

/// An attribute's values being gathered, or nothing when only the
/// registers are wanted.
struct AttrStateSlot(Option<rc::AttrState>);

impl AttrStateSlot {
    fn new(with_values: bool) -> Self {
        AttrStateSlot(with_values.then(rc::AttrState::default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::test_support::{replace_as_root, temp_directory};
    use crate::directory::WriteOp;

    const SUFFIX: &str = "dc=example,dc=com";

    fn add(dir: &Directory, dn: &str, attrs: &[(&str, &str)]) {
        crate::directory::test_support::add_as_root(dir, dn, attrs)
            .unwrap_or_else(|e| panic!("adding {dn}: {e}"));
    }

    /// Every stored state of the suffix (entries and tombstones), by entryUUID.
    fn stored_states(core: &Core) -> BTreeMap<Uuid, Vec<u8>> {
        let txn = core.store.write().unwrap();
        let key = core.dn_key(&Dn::parse(SUFFIX).unwrap());
        let mut entries: Vec<Entry> = txn
            .subtree_keys(&key)
            .unwrap()
            .into_iter()
            .filter_map(|(_, id)| txn.entry(id).unwrap())
            .collect();
        entries.extend(core.tombstones(&txn, &key).unwrap());
        let out = entries
            .iter()
            .filter_map(|e| crate::directory::write::entry_uuid(e).ok())
            .map(|u| (u, txn.repl_state(&u).unwrap().expect("a state per entry")))
            .collect();
        txn.abort();
        out
    }

    #[test]
    fn the_offline_build_in_small_chunks_writes_what_the_one_transaction_build_writes() {
        let (_tmp, dir) = temp_directory(SUFFIX, Default::default());
        add(
            &dir,
            SUFFIX,
            &[("objectClass", "domain"), ("dc", "example")],
        );
        add(
            &dir,
            "ou=people,dc=example,dc=com",
            &[("objectClass", "organizationalUnit"), ("ou", "people")],
        );
        for i in 0..25 {
            add(
                &dir,
                &format!("cn=User {i},ou=people,dc=example,dc=com"),
                &[
                    ("objectClass", "person"),
                    ("cn", &format!("User {i}")),
                    ("sn", "S"),
                ],
            );
        }
        dir.write_blocking(
            &dir.root_identity(),
            WriteOp::Delete {
                dn: Dn::parse("cn=User 3,ou=people,dc=example,dc=com").unwrap(),
            },
        )
        .unwrap();
        let core = &dir.core;

        let mut txn = core.store.write().unwrap();
        core.invalidate_repl_states(&mut txn).unwrap();
        core.ensure_repl_states(&mut txn).unwrap();
        txn.commit().unwrap();
        let in_one = stored_states(core);
        // The suffix, ou=people, 24 users and the tombstone of the 25th.
        assert_eq!(in_one.len(), 27);

        let mut txn = core.store.write().unwrap();
        core.invalidate_repl_states(&mut txn).unwrap();
        txn.commit().unwrap();
        core.build_repl_states_offline(4).unwrap();
        assert!(core.repl_states_built(&core.store.read().unwrap()).unwrap());
        assert_eq!(stored_states(core), in_one);
        let tombstone = in_one
            .values()
            .filter_map(|b| EntryState::decode(b).ok())
            .filter(|s| s.derived.status == EntryStatus::Tombstone)
            .count();
        assert_eq!(tombstone, 1);
    }

    fn write(dir: &Directory, op: WriteOp) {
        dir.write_blocking(&dir.root_identity(), op)
            .unwrap_or_else(|e| panic!("write: {e}"));
    }

    #[test]
    fn a_batch_renaming_a_parent_between_two_modifies_of_its_children_places_both() {
        // A supplier: modify a child (its parent's DN is then remembered),
        // rename the parent, modify another child, all in one batch.
        let (_a_tmp, a) = temp_directory(SUFFIX, Default::default());
        for (dn, attrs) in [
            (SUFFIX, vec![("objectClass", "domain"), ("dc", "example")]),
            (
                "ou=people,dc=example,dc=com",
                vec![("objectClass", "organizationalUnit"), ("ou", "people")],
            ),
            (
                "cn=x,ou=people,dc=example,dc=com",
                vec![("objectClass", "person"), ("cn", "x"), ("sn", "X")],
            ),
            (
                "cn=y,ou=people,dc=example,dc=com",
                vec![("objectClass", "person"), ("cn", "y"), ("sn", "Y")],
            ),
        ] {
            add(&a, dn, &attrs);
        }
        replace_as_root(
            &a,
            "cn=y,ou=people,dc=example,dc=com",
            "description",
            "before",
        );
        write(
            &a,
            WriteOp::ModDn {
                dn: Dn::parse("ou=people,dc=example,dc=com").unwrap(),
                new_rdn: Rdn::single("ou", "folk"),
                delete_old_rdn: true,
                new_superior: None,
            },
        );
        replace_as_root(&a, "cn=x,ou=folk,dc=example,dc=com", "description", "after");
        let suffix = Dn::parse(SUFFIX).unwrap();
        let records = a
            .changes_for(&suffix, &Ruv::default(), 100)
            .unwrap()
            .expect("the changelog reaches back");
        assert_eq!(records.len(), 7);

        // A consumer applies them in one batch.
        let (_b_tmp, b) = temp_directory(SUFFIX, Default::default());
        let key = b.core.dn_key(&suffix);
        let mut txn = b.core.store.write().unwrap();
        let applied = b
            .core
            .apply_replicated_batch(&mut txn, &key, &records, |_| Ok(()))
            .unwrap();
        assert_eq!(applied, 7);
        txn.commit().unwrap();
        let txn = b.core.store.read().unwrap();
        let entry = |dn: &str| {
            let id = txn
                .id_by_dn(&b.core.dn_key(&Dn::parse(dn).unwrap()))
                .unwrap();
            id.and_then(|id| txn.entry(id).unwrap())
        };
        let x = entry("cn=x,ou=folk,dc=example,dc=com").expect("x under its renamed parent");
        assert_eq!(x.values("description"), vec![b"after".to_vec()]);
        assert_eq!(x.dn.to_string(), "cn=x,ou=folk,dc=example,dc=com");
        assert!(entry("cn=y,ou=folk,dc=example,dc=com").is_some());
        assert!(entry("cn=x,ou=people,dc=example,dc=com").is_none());
    }
}
