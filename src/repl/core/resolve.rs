//! The resolver: from the replica's current state and one replicated
//! change, the new states of every entry the change affects and the
//! effects the directory applies in one transaction. Pure: it reads the
//! replica through [`ReplicaView`] and writes nothing itself.
//!
//! Three derived facts are kept up to date here, each a function of the
//! merged state alone (so replicas that merged the same changes agree):
//!
//! 1. **Where an entry sits** ([`Derived::parent`]): its parent register,
//!    unless concurrent moves made a cycle (A moved under B on one replica,
//!    B under A on another). Then the member of the cycle whose move has
//!    the latest CSN sits under the suffix, conflict-named.
//! 2. **Whether it is in the tree** ([`Derived::in_tree`]): added and not
//!    deleted, or deleted but with an entry of the tree below it (glue).
//! 3. **Who holds a contested name**: among the entries of the tree under
//!    one parent whose RDNs are equal by matching rule, live entries before
//!    glue, then the earliest to take the name (add or rename CSN), then
//!    the smallest entryUUID, keeps the plain DN; the others are named
//!    `nsuniqueid=<uuid>+<rdn>` (conflict entries).

use super::change::{merge, ReplChange};
use super::normalise::{rdn_key, Normaliser};
use super::state::{AttrState, Derived, EntryState, EntryStatus, Uuid};
use crate::model::{Csn, Rdn};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// What the resolver needs to read from a replica. Answers reflect the
/// stored state, derived part included.
pub trait ReplicaView {
    /// The state of an entry (any status) by entryUUID; borrowed when the
    /// replica holds it decoded, owned when it had to decode it.
    fn state(&self, uuid: &Uuid) -> Option<Cow<'_, EntryState>>;
    /// Entries in the tree (live, conflict, glue) whose derived parent is
    /// `parent`.
    fn tree_children(&self, parent: &Uuid) -> Vec<Uuid>;
    /// Entries in the tree under `parent` whose own RDN has the key
    /// `rdn_key` ([`rdn_key`]), whether they hold the plain name or the
    /// conflict name: the candidates for one DN.
    fn claimants(&self, parent: &Uuid, rdn_key: &[u8]) -> Vec<Uuid>;
    /// The suffix entry, where the loser of a move cycle is put.
    fn suffix(&self) -> Uuid;
}

/// Where an entry is shown: its parent and its visible RDN (the conflict
/// form `nsuniqueid=...+rdn` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub parent: Option<Uuid>,
    pub rdn: Rdn,
}

/// A visible consequence of a change. The directory applies them in the
/// order given: renames to conflict names (which free DNs) first, then
/// burials, then glue top-down, then other renames, adds and
/// modifications, so a parent is in the tree before its child arrives.
/// A directory that checks DN uniqueness eagerly should still remove
/// every affected DN before inserting the new ones (a swap of names
/// between two entries is possible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The entry enters the tree (as live or conflict entry).
    Added { uuid: Uuid, at: Placement },
    /// The entry is (now) glue: a deleted entry kept because entries of the
    /// tree sit below it; `at` is where it is shown.
    Glued { uuid: Uuid, at: Placement },
    /// The entry's DN changes (rename, move, conflict naming or its end).
    Renamed {
        uuid: Uuid,
        from: Placement,
        to: Placement,
    },
    /// The entry's visible values change.
    Modified { uuid: Uuid },
    /// The entry leaves the tree and becomes a tombstone.
    Buried { uuid: Uuid },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The change had a visible effect.
    Applied,
    /// The change is recorded (or already was) but shows nothing.
    Absorbed(Absorbed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absorbed {
    /// Already held: the state did not change.
    Duplicate,
    /// Newer state wins over it (an older replace, a rename superseded by
    /// a later one...).
    Superseded,
    /// Its target is a tombstone or not received yet: delete wins.
    OutOfTree,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub resolution: Resolution,
    /// New states to store, every affected entry's.
    pub writes: Vec<EntryState>,
    pub effects: Vec<Effect>,
}

/// Resolves one replicated change. Never fails: every change, however it
/// conflicts, yields an outcome.
pub fn apply<V, N>(view: &V, norm: &N, change: &ReplChange) -> Outcome
where
    V: ReplicaView + ?Sized,
    N: Normaliser + ?Sized,
{
    let mut tx = Tx::new(view, norm);
    tx.load(&change.uuid);
    // The stored state stays in `tx` until `put`: compared there, not copied.
    let mut target = tx
        .peek(&change.uuid)
        .cloned()
        .unwrap_or_else(|| EntryState::phantom(change.uuid));
    merge(&mut target, change, norm);
    let before = tx.peek(&change.uuid);
    if before == Some(&target) {
        return Outcome {
            resolution: Resolution::Absorbed(Absorbed::Duplicate),
            writes: Vec::new(),
            effects: Vec::new(),
        };
    }
    let register_moved =
        before.is_none_or(|b| (b.parent, b.parent_csn) != (target.parent, target.parent_csn));
    let old_cycle = if register_moved {
        tx.cycle_of(&change.uuid)
    } else {
        Vec::new()
    };
    tx.put(target);
    let mut dirty = vec![change.uuid];
    if register_moved {
        let new_cycle = tx.cycle_of(&change.uuid);
        let mut members: BTreeSet<Uuid> = old_cycle.into_iter().collect();
        members.extend(new_cycle.iter().copied());
        members.insert(change.uuid);
        for m in members {
            if let Some(old) = tx.place(&m, &new_cycle) {
                dirty.extend(old);
            }
        }
    }
    tx.propagate(dirty);
    tx.rename_groups();
    tx.finish(change.uuid)
}

/// Recomputes every derived field from the merged states alone: the
/// reference the incremental resolver must agree with (after a total
/// init, or to check a replica).
pub fn derive_all<N: Normaliser + ?Sized>(
    states: &mut BTreeMap<Uuid, EntryState>,
    suffix: Uuid,
    norm: &N,
) {
    let mut skeletons: BTreeMap<Uuid, Skeleton> = states
        .values()
        .map(|s| (s.uuid, Skeleton::of(s, norm)))
        .collect();
    derive_skeletons(&mut skeletons, suffix);
    for (u, k) in skeletons {
        if let Some(s) = states.get_mut(&u) {
            s.derived = k.derived;
        }
    }
}

/// The part of an entry's state its derived fields depend on: its
/// registers, its add and delete, its RDN as a key. A whole suffix of
/// them fits in memory where the full states (every value) may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    pub uuid: Uuid,
    pub added: Option<Csn>,
    pub deleted: Option<Csn>,
    pub parent: Option<Uuid>,
    pub parent_csn: Csn,
    pub rdn_key: Vec<u8>,
    pub rdn_csn: Csn,
    pub derived: Derived,
}

impl Skeleton {
    pub fn of<N: Normaliser + ?Sized>(s: &EntryState, norm: &N) -> Skeleton {
        Skeleton {
            uuid: s.uuid,
            added: s.added,
            deleted: s.deleted,
            parent: s.parent,
            parent_csn: s.parent_csn,
            rdn_key: rdn_key(norm, &s.rdn),
            rdn_csn: s.rdn_csn,
            derived: s.derived.clone(),
        }
    }
}

/// What derivation reads and writes of an entry, full state or skeleton.
trait Placed {
    fn uuid(&self) -> Uuid;
    fn added(&self) -> Option<Csn>;
    fn deleted(&self) -> Option<Csn>;
    fn name_csn(&self) -> Csn;
    fn derived_mut(&mut self) -> &mut Derived;
    fn exists(&self) -> bool {
        self.added().is_some() && self.deleted().is_none()
    }
}

impl Placed for EntryState {
    fn uuid(&self) -> Uuid {
        self.uuid
    }
    fn added(&self) -> Option<Csn> {
        self.added
    }
    fn deleted(&self) -> Option<Csn> {
        self.deleted
    }
    fn name_csn(&self) -> Csn {
        EntryState::name_csn(self)
    }
    fn derived_mut(&mut self) -> &mut Derived {
        &mut self.derived
    }
}

impl Placed for Skeleton {
    fn uuid(&self) -> Uuid {
        self.uuid
    }
    fn added(&self) -> Option<Csn> {
        self.added
    }
    fn deleted(&self) -> Option<Csn> {
        self.deleted
    }
    fn name_csn(&self) -> Csn {
        self.rdn_csn.max(self.parent_csn)
    }
    fn derived_mut(&mut self) -> &mut Derived {
        &mut self.derived
    }
}

/// [`derive_all`] on skeletons: every derived field of a suffix from its
/// entries' registers alone.
pub fn derive_skeletons(states: &mut BTreeMap<Uuid, Skeleton>, suffix: Uuid) {
    let cycles = all_cycles(states, suffix);
    let uuids: Vec<Uuid> = states.keys().copied().collect();
    for u in &uuids {
        let cycle = cycles.through(u);
        let (parent, breaker) = effective_parent(states, u, cycle, suffix);
        if let Some(s) = states.get_mut(u) {
            s.derived.parent = parent;
            s.derived.cycle_breaker = breaker;
        }
    }
    let mut children: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for s in states.values() {
        if let Some(p) = s.derived.parent {
            children.entry(p).or_default().push(s.uuid);
        }
    }
    let memo = in_tree_all(states, &children);
    drop(children);
    let mut groups: BTreeMap<(Uuid, &[u8]), Vec<Uuid>> = BTreeMap::new();
    let mut flags: Vec<(Uuid, bool, bool)> = Vec::with_capacity(states.len());
    for s in states.values() {
        let in_tree = memo.get(&s.uuid).copied().unwrap_or(false);
        flags.push((s.uuid, in_tree, in_tree && s.derived.cycle_breaker));
        if let (true, false, Some(p)) = (in_tree, s.derived.cycle_breaker, s.derived.parent) {
            groups
                .entry((p, s.rdn_key.as_slice()))
                .or_default()
                .push(s.uuid);
        }
    }
    let mut conflict: BTreeMap<Uuid, bool> = BTreeMap::new();
    for members in groups.values() {
        if members.len() < 2 {
            continue;
        }
        let winner = members
            .iter()
            .filter_map(|u| states.get(u))
            .min_by_key(|s| rank(*s))
            .map(|s| s.uuid);
        for u in members {
            conflict.insert(*u, Some(*u) != winner);
        }
    }
    drop(groups);
    for (u, in_tree, breaker_conflict) in flags {
        if let Some(s) = states.get_mut(&u) {
            s.derived.in_tree = in_tree;
            s.derived.conflict = conflict.get(&u).copied().unwrap_or(breaker_conflict);
            refresh_status(s);
        }
    }
}

/// The derived part of an entry added where nothing happened concurrently
/// (an offline import into an empty suffix: parents before children, every
/// name taken once): in the tree under its parent register, live. It is
/// what [`derive_skeletons`] finds for such an entry, without the suffix.
pub fn place_added(s: &mut EntryState) {
    s.derived.parent = s.parent;
    s.derived.in_tree = s.exists();
    s.derived.cycle_breaker = false;
    s.derived.conflict = false;
    refresh_status(s);
}

/// Whether each entry is in the tree: added, and either not deleted or
/// holding an entry of the tree below it. Children before parents, with
/// an explicit stack so a deep tree cannot exhaust the thread's stack.
fn in_tree_all(
    states: &BTreeMap<Uuid, Skeleton>,
    children: &BTreeMap<Uuid, Vec<Uuid>>,
) -> BTreeMap<Uuid, bool> {
    let mut memo: BTreeMap<Uuid, bool> = BTreeMap::new();
    // Entered and not finished: a child found here would be a cycle,
    // which derivation has already broken, but a loop must stay impossible.
    let mut entered: BTreeSet<Uuid> = BTreeSet::new();
    for root in states.keys() {
        if memo.contains_key(root) {
            continue;
        }
        // (entry, its children pushed yet)
        let mut stack: Vec<(Uuid, bool)> = vec![(*root, false)];
        while let Some((u, expanded)) = stack.pop() {
            if memo.contains_key(&u) {
                continue;
            }
            let kids = children.get(&u).map(Vec::as_slice).unwrap_or(&[]);
            if !expanded {
                entered.insert(u);
                stack.push((u, true));
                for c in kids {
                    if !memo.contains_key(c) && !entered.contains(c) {
                        stack.push((*c, false));
                    }
                }
                continue;
            }
            let held = kids.iter().any(|c| memo.get(c).copied().unwrap_or(false));
            let v = states
                .get(&u)
                .is_some_and(|s| s.added.is_some() && (s.exists() || held));
            entered.remove(&u);
            memo.insert(u, v);
        }
    }
    memo
}

/// Every cycle of parent registers, found in one pass over the entries
/// (each entry is walked through once, so a deep tree costs linear time):
/// for each member of a cycle, the index of its cycle in `cycles`.
struct Cycles {
    of: BTreeMap<Uuid, usize>,
    cycles: Vec<Vec<Uuid>>,
}

impl Cycles {
    /// The members of the cycle through `u`; empty if there is none.
    fn through(&self, u: &Uuid) -> &[Uuid] {
        self.of
            .get(u)
            .and_then(|i| self.cycles.get(*i))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

fn all_cycles(states: &BTreeMap<Uuid, Skeleton>, suffix: Uuid) -> Cycles {
    // Walked: 0 on the current path, 1 finished.
    let mut walked: BTreeMap<Uuid, u8> = BTreeMap::new();
    let mut found = Cycles {
        of: BTreeMap::new(),
        cycles: Vec::new(),
    };
    for start in states.keys() {
        if walked.contains_key(start) {
            continue;
        }
        let mut path: Vec<Uuid> = Vec::new();
        let mut cur = Some(*start);
        while let Some(u) = cur {
            match walked.get(&u) {
                Some(0) => {
                    // Back on this walk's own path: the path from `u` on is a cycle.
                    if let Some(pos) = path.iter().position(|p| *p == u) {
                        let members: Vec<Uuid> = path.get(pos..).unwrap_or(&[]).to_vec();
                        let index = found.cycles.len();
                        for m in &members {
                            found.of.insert(*m, index);
                        }
                        found.cycles.push(members);
                    }
                    break;
                }
                Some(_) => break,
                None => {}
            }
            walked.insert(u, 0);
            path.push(u);
            // The suffix never moves: no cycle runs through it.
            cur = if u == suffix {
                None
            } else {
                states.get(&u).and_then(|s| s.parent)
            };
        }
        for p in path {
            walked.insert(p, 1);
        }
    }
    found
}

/// The suffix counts as having no parent: it never moves, so no cycle
/// runs through it.
fn walk_cycle(
    start: &Uuid,
    suffix: Uuid,
    mut parent_of: impl FnMut(&Uuid) -> Option<Uuid>,
) -> Vec<Uuid> {
    if *start == suffix {
        return Vec::new();
    }
    let mut path = vec![*start];
    let mut seen: BTreeSet<Uuid> = BTreeSet::from([*start]);
    let mut cur = parent_of(start);
    let mut parent_of = |u: &Uuid| if *u == suffix { None } else { parent_of(u) };
    while let Some(c) = cur {
        if c == *start {
            return path;
        }
        if !seen.insert(c) {
            return Vec::new();
        }
        path.push(c);
        cur = parent_of(&c);
    }
    Vec::new()
}

/// The parent an entry sits under, and whether it breaks a cycle.
fn effective_parent(
    states: &BTreeMap<Uuid, Skeleton>,
    u: &Uuid,
    cycle: &[Uuid],
    suffix: Uuid,
) -> (Option<Uuid>, bool) {
    if *u == suffix {
        return (None, false);
    }
    let register = states.get(u).and_then(|s| s.parent);
    let breaker = cycle
        .iter()
        .filter_map(|m| states.get(m))
        .max_by_key(|s| (s.parent_csn, s.uuid))
        .map(|s| s.uuid);
    if breaker == Some(*u) {
        (Some(suffix), true)
    } else {
        (register, false)
    }
}

/// Order of precedence for a contested name: live before glue, then the
/// earliest to take the name, then the smallest entryUUID.
fn rank<P: Placed>(s: &P) -> (bool, Csn, Uuid) {
    (!s.exists(), s.name_csn(), s.uuid())
}

fn refresh_status<P: Placed>(s: &mut P) {
    let (added, deleted, name_csn) = (s.added(), s.deleted(), s.name_csn());
    // Only entries in a name group (in the tree, under a parent, not
    // breaking a cycle) get their conflict flag from the group.
    let d = s.derived_mut();
    if !d.in_tree || d.cycle_breaker || d.parent.is_none() {
        d.conflict = d.in_tree && d.cycle_breaker;
    }
    let (status, csn) = match (added, deleted) {
        (None, _) => (EntryStatus::Phantom, Csn::ZERO),
        (Some(_), None) if d.conflict => (EntryStatus::Conflict, name_csn),
        (Some(a), None) => (EntryStatus::Live, a),
        (Some(_), Some(del)) if d.in_tree => (EntryStatus::Glue, del),
        (Some(_), Some(del)) => (EntryStatus::Tombstone, del),
    };
    d.status = status;
    d.status_csn = csn;
}

/// The replica's state with this change's writes laid over it.
struct Tx<'a, V: ?Sized, N: ?Sized> {
    view: &'a V,
    norm: &'a N,
    before: BTreeMap<Uuid, Option<Cow<'a, EntryState>>>,
    now: BTreeMap<Uuid, EntryState>,
    /// Order in which entries were first written, for effect order.
    order: Vec<Uuid>,
}

impl<'a, V: ReplicaView + ?Sized, N: Normaliser + ?Sized> Tx<'a, V, N> {
    fn new(view: &'a V, norm: &'a N) -> Self {
        Tx {
            view,
            norm,
            before: BTreeMap::new(),
            now: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Reads an entry once from the view, remembering its stored state.
    fn load(&mut self, u: &Uuid) {
        if !self.now.contains_key(u) && !self.before.contains_key(u) {
            self.before.insert(*u, self.view.state(u));
        }
    }

    /// The entry as this change has left it so far (after [`Tx::load`]).
    fn peek(&self, u: &Uuid) -> Option<&EntryState> {
        self.now
            .get(u)
            .or_else(|| self.before.get(u).and_then(|s| s.as_deref()))
    }

    /// Changes an entry in place, copying it from the view on first write.
    fn edit(&mut self, u: &Uuid, f: impl FnOnce(&mut EntryState)) {
        self.load(u);
        if let Some(s) = self.now.get_mut(u) {
            f(s);
        } else if let Some(mut s) = self.peek(u).cloned() {
            f(&mut s);
            self.put(s);
        }
    }

    fn put(&mut self, s: EntryState) {
        self.load(&s.uuid);
        if !self.now.contains_key(&s.uuid) {
            self.order.push(s.uuid);
        }
        self.now.insert(s.uuid, s);
    }

    fn cycle_of(&mut self, start: &Uuid) -> Vec<Uuid> {
        let suffix = self.view.suffix();
        walk_cycle(start, suffix, |u| {
            self.load(u);
            self.peek(u).and_then(|s| s.parent)
        })
    }

    /// Sets an entry's derived parent given the cycle it is in (empty:
    /// none); returns the entries whose tree status may change (old and
    /// new parent, the entry) when the parent changed.
    fn place(&mut self, u: &Uuid, cycle: &[Uuid]) -> Option<Vec<Uuid>> {
        self.load(u);
        let s = self.peek(u)?;
        let (parent, breaker) = if *u == self.view.suffix() {
            (None, false)
        } else if cycle.contains(u) {
            let top = cycle
                .iter()
                .filter_map(|m| self.peek(m))
                .map(|ms| (ms.parent_csn, ms.uuid))
                .max()
                .map(|m| m.1);
            if top == Some(*u) {
                (Some(self.view.suffix()), true)
            } else {
                (s.parent, false)
            }
        } else {
            (s.parent, false)
        };
        let old = s.derived.parent;
        if (old, s.derived.cycle_breaker) == (parent, breaker) {
            return None;
        }
        self.edit(u, |s| {
            s.derived.parent = parent;
            s.derived.cycle_breaker = breaker;
        });
        Some(old.into_iter().chain(parent).chain([*u]).collect())
    }

    fn tree_children(&self, p: &Uuid) -> BTreeSet<Uuid> {
        let mut out: BTreeSet<Uuid> = self
            .view
            .tree_children(p)
            .into_iter()
            .filter(|u| !self.now.contains_key(u))
            .collect();
        for (u, s) in &self.now {
            if s.derived.in_tree && s.derived.parent == Some(*p) {
                out.insert(*u);
            }
        }
        out
    }

    fn claimants(&self, p: &Uuid, key: &[u8]) -> BTreeSet<Uuid> {
        let mut out: BTreeSet<Uuid> = self
            .view
            .claimants(p, key)
            .into_iter()
            .filter(|u| !self.now.contains_key(u))
            .collect();
        for (u, s) in &self.now {
            if s.derived.in_tree
                && s.derived.parent == Some(*p)
                && rdn_key(self.norm, &s.rdn) == key
            {
                out.insert(*u);
            }
        }
        out
    }

    /// Recomputes tree membership from the given entries up to the
    /// suffix, as far as anything changes.
    fn propagate(&mut self, start: Vec<Uuid>) {
        let mut work = start;
        while let Some(u) = work.pop() {
            self.load(&u);
            let Some(s) = self.peek(&u) else {
                continue;
            };
            let in_tree = s.added.is_some() && (s.exists() || !self.tree_children(&u).is_empty());
            if in_tree != s.derived.in_tree {
                work.extend(s.derived.parent);
                self.edit(&u, |s| s.derived.in_tree = in_tree);
            }
        }
    }

    /// Renames whoever must: every name group an entry left or joined.
    fn rename_groups(&mut self) {
        let mut groups: BTreeSet<(Uuid, Vec<u8>)> = BTreeSet::new();
        let touched: Vec<Uuid> = self.now.keys().copied().collect();
        for u in &touched {
            let before = self.before.get(u).and_then(|s| s.as_deref());
            let after = self.now.get(u);
            if !naming_may_differ(before, after) {
                continue;
            }
            // Recomputing a group that did not change is harmless, so both
            // groups are taken whenever anything naming-related moved.
            let group = |s: &EntryState| match (
                s.derived.in_tree,
                s.derived.cycle_breaker,
                s.derived.parent,
            ) {
                (true, false, Some(p)) => Some(p),
                _ => None,
            };
            let kb = before.and_then(|b| group(b).map(|p| (p, rdn_key(self.norm, &b.rdn))));
            let ka = after.and_then(|a| {
                group(a).map(|p| match (&kb, before) {
                    (Some((_, k)), Some(b)) if b.rdn == a.rdn => (p, k.clone()),
                    _ => (p, rdn_key(self.norm, &a.rdn)),
                })
            });
            groups.extend(kb);
            groups.extend(ka);
        }
        for (p, key) in groups {
            let claimants = self.claimants(&p, &key);
            for u in &claimants {
                self.load(u);
            }
            let members: Vec<&EntryState> = claimants
                .iter()
                .filter_map(|u| self.peek(u))
                .filter(|s| !s.derived.cycle_breaker)
                .collect();
            let winner = members.iter().min_by_key(|s| rank(**s)).map(|s| s.uuid);
            let flips: Vec<Uuid> = members
                .into_iter()
                .filter(|s| s.derived.conflict != (Some(s.uuid) != winner))
                .map(|s| s.uuid)
                .collect();
            for u in flips {
                self.edit(&u, |s| s.derived.conflict = !s.derived.conflict);
            }
        }
    }

    fn finish(mut self, target: Uuid) -> Outcome {
        let touched: Vec<Uuid> = self.order.clone();
        for u in &touched {
            if let Some(s) = self.now.get_mut(u) {
                refresh_status(s);
            }
        }
        let mut effects: Vec<(u8, isize, Effect)> = Vec::new();
        let mut writes = Vec::new();
        for (i, u) in touched.iter().enumerate() {
            let Some(after) = self.now.remove(u) else {
                continue;
            };
            let before = self.before.get(u).and_then(|s| s.as_deref());
            if before == Some(&after) {
                continue;
            }
            let seq = i as isize;
            for (cat, e) in diff(before, &after, *u == target, self.norm) {
                let order = if cat == 2 { -seq } else { seq };
                effects.push((cat, order, e));
            }
            writes.push(after);
        }
        effects.sort_by_key(|(c, o, _)| (*c, *o));
        let effects: Vec<Effect> = effects.into_iter().map(|(_, _, e)| e).collect();
        let resolution = if !effects.is_empty() {
            Resolution::Applied
        } else if writes.iter().any(|s| s.uuid == target && s.derived.in_tree) {
            Resolution::Absorbed(Absorbed::Superseded)
        } else {
            Resolution::Absorbed(Absorbed::OutOfTree)
        };
        Outcome {
            resolution,
            writes,
            effects,
        }
    }
}

/// A cheap test before computing RDN keys: whether anything that decides
/// an entry's name group or rank changed.
fn naming_may_differ(before: Option<&EntryState>, after: Option<&EntryState>) -> bool {
    match (before, after) {
        (Some(b), Some(a)) => {
            let (db, da) = (&b.derived, &a.derived);
            (db.parent, db.in_tree, db.cycle_breaker) != (da.parent, da.in_tree, da.cycle_breaker)
                || b.exists() != a.exists()
                || b.name_csn() != a.name_csn()
                || b.rdn != a.rdn
        }
        (None, None) => false,
        _ => true,
    }
}

fn placement(s: &EntryState) -> Option<Placement> {
    s.derived.in_tree.then(|| Placement {
        parent: s.derived.parent,
        rdn: s.visible_rdn(),
    })
}

/// The effects between two states of one entry, with their category
/// (the position in the application order).
fn diff<N: Normaliser + ?Sized>(
    before: Option<&EntryState>,
    after: &EntryState,
    is_target: bool,
    norm: &N,
) -> Vec<(u8, Effect)> {
    let uuid = after.uuid;
    let mut out = Vec::new();
    let same_place = before.is_some_and(|b| {
        let (db, da) = (&b.derived, &after.derived);
        (db.in_tree, db.parent, db.conflict) == (da.in_tree, da.parent, da.conflict)
            && b.rdn == after.rdn
    });
    let glue_now = after.derived.status == EntryStatus::Glue;
    let glue_before = before.is_some_and(|b| b.derived.status == EntryStatus::Glue);
    let attrs_same = || before.is_some_and(|b| b.attrs == after.attrs);
    if same_place && glue_now == glue_before && (!is_target || attrs_same()) {
        return Vec::new();
    }
    let was = before.and_then(placement);
    let glue = after.derived.status == EntryStatus::Glue;
    let was_glue = before.is_some_and(|b| b.derived.status == EntryStatus::Glue);
    match (was, placement(after)) {
        (None, Some(at)) if glue => out.push((2, Effect::Glued { uuid, at })),
        (None, Some(at)) => out.push((4, Effect::Added { uuid, at })),
        (Some(_), None) => out.push((1, Effect::Buried { uuid })),
        (Some(from), Some(to)) => {
            if from != to {
                let cat = if after.derived.conflict { 0 } else { 3 };
                out.push((
                    cat,
                    Effect::Renamed {
                        uuid,
                        from,
                        to: to.clone(),
                    },
                ));
            }
            if glue && !was_glue {
                out.push((2, Effect::Glued { uuid, at: to }));
            } else if is_target && before.is_some_and(|b| !same_visible(b, after, norm)) {
                out.push((5, Effect::Modified { uuid }));
            }
        }
        (None, None) => {}
    }
    out
}

/// Whether two states of an entry show the same attributes and values.
/// Attributes whose states are equal show the same; only the others are
/// worked out (a modify changes a few attributes of many).
fn same_visible<N: Normaliser + ?Sized>(a: &EntryState, b: &EntryState, norm: &N) -> bool {
    fn shown<'s, N: Normaliser + ?Sized>(norm: &N, name: &str, s: &'s AttrState) -> Vec<&'s [u8]> {
        s.visible(norm.single_valued(name))
            .into_iter()
            .map(|v| v.bytes.as_slice())
            .collect()
    }
    let mut ia = a.attrs.iter().peekable();
    let mut ib = b.attrs.iter().peekable();
    loop {
        let (na, nb) = (ia.peek().map(|(n, _)| *n), ib.peek().map(|(n, _)| *n));
        let same = match (na, nb) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {
                let (Some((name, sa)), Some((_, sb))) = (ia.next(), ib.next()) else {
                    return false;
                };
                sa == sb || shown(norm, name, sa) == shown(norm, name, sb)
            }
            // An attribute only one state has must show nothing.
            (Some(x), Some(y)) if x < y => {
                ia.next().is_some_and(|(n, s)| shown(norm, n, s).is_empty())
            }
            (Some(_), None) => ia.next().is_some_and(|(n, s)| shown(norm, n, s).is_empty()),
            _ => ib.next().is_some_and(|(n, s)| shown(norm, n, s).is_empty()),
        };
        if !same {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes and values a state shows, as a list: what
    /// `same_visible` must agree with.
    fn shown_list<'s>(
        s: &'s EntryState,
        norm: &super::super::normalise::CaseFold,
    ) -> Vec<(&'s str, Vec<&'s [u8]>)> {
        s.attrs
            .iter()
            .map(|(name, a)| {
                let values = a.visible(norm.single_valued(name));
                (
                    name.as_str(),
                    values.into_iter().map(|v| v.bytes.as_slice()).collect(),
                )
            })
            .filter(|(_, v): &(&str, Vec<&[u8]>)| !v.is_empty())
            .collect()
    }

    #[test]
    fn same_visible_agrees_with_comparing_what_is_shown() {
        use super::super::normalise::CaseFold;
        use super::super::state::ValueState;
        let norm = CaseFold::new(&["single"]);
        let value = |b: &str, updated: u32, deleted: Option<u32>| ValueState {
            bytes: b.as_bytes().to_vec(),
            updated: Csn::new(updated, 0, 1, 0),
            deleted: deleted.map(|d| Csn::new(d, 0, 1, 0)),
            distinguished: false,
        };
        let attr = |values: Vec<ValueState>, deleted: Option<u32>| AttrState {
            deleted: deleted.map(|d| Csn::new(d, 0, 1, 0)),
            values: values
                .into_iter()
                .map(|v| (v.bytes.to_ascii_lowercase(), v))
                .collect(),
        };
        let variants: Vec<Vec<(&str, AttrState)>> = vec![
            vec![],
            vec![("multi", attr(vec![value("a", 2, None)], None))],
            vec![(
                "multi",
                attr(vec![value("a", 2, None), value("b", 3, None)], None),
            )],
            // A value deleted after its add, and a whole-attribute delete.
            vec![(
                "multi",
                attr(vec![value("a", 2, None), value("b", 3, Some(4))], None),
            )],
            vec![("multi", attr(vec![value("a", 2, None)], Some(5)))],
            // Another CSN on the same value: the state differs, not what shows.
            vec![("multi", attr(vec![value("a", 3, None)], None))],
            vec![(
                "single",
                attr(vec![value("x", 2, None), value("y", 3, None)], None),
            )],
            vec![("single", attr(vec![value("y", 3, None)], None))],
            vec![
                ("aaa", attr(vec![value("n", 2, Some(3))], None)),
                ("multi", attr(vec![value("a", 2, None)], None)),
            ],
            vec![
                ("multi", attr(vec![value("a", 2, None)], None)),
                ("zzz", attr(vec![value("n", 2, None)], None)),
            ],
        ];
        let states: Vec<EntryState> = variants
            .into_iter()
            .map(|attrs| {
                let mut s = EntryState::phantom([1; 16]);
                s.attrs = attrs.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
                s
            })
            .collect();
        let mut differ = 0;
        for a in &states {
            for b in &states {
                let want = shown_list(a, &norm) == shown_list(b, &norm);
                assert_eq!(same_visible(a, b, &norm), want, "{a:?} / {b:?}");
                differ += usize::from(!want);
            }
        }
        assert!(differ > 0);
    }

    fn skeleton(n: u8, parent: Option<u8>, deleted: bool) -> Skeleton {
        let csn = Csn::new(100 + u32::from(n), 0, 1, 0);
        Skeleton {
            uuid: [n; 16],
            added: Some(csn),
            deleted: deleted.then(|| Csn::new(500, 0, 1, 0)),
            parent: parent.map(|p| [p; 16]),
            parent_csn: csn,
            rdn_key: vec![n],
            rdn_csn: csn,
            derived: Derived::default(),
        }
    }

    #[test]
    fn a_deleted_entry_with_a_live_entry_below_is_glue_and_one_without_is_a_tombstone() {
        let mut states: BTreeMap<Uuid, Skeleton> = [
            skeleton(1, None, false),
            skeleton(2, Some(1), true),
            skeleton(3, Some(2), false),
            skeleton(4, Some(1), true),
        ]
        .into_iter()
        .map(|s| (s.uuid, s))
        .collect();
        derive_skeletons(&mut states, [1; 16]);
        let status = |n: u8| states.get(&[n; 16]).map(|s| s.derived.status);
        assert_eq!(status(1), Some(EntryStatus::Live));
        assert_eq!(status(2), Some(EntryStatus::Glue));
        assert_eq!(status(3), Some(EntryStatus::Live));
        assert_eq!(status(4), Some(EntryStatus::Tombstone));
    }

    #[test]
    fn two_entries_claiming_one_name_leave_the_later_one_in_conflict() {
        let mut late = skeleton(3, Some(1), false);
        late.rdn_key = vec![2];
        let mut states: BTreeMap<Uuid, Skeleton> =
            [skeleton(1, None, false), skeleton(2, Some(1), false), late]
                .into_iter()
                .map(|s| (s.uuid, s))
                .collect();
        derive_skeletons(&mut states, [1; 16]);
        let status = |n: u8| states.get(&[n; 16]).map(|s| s.derived.status);
        assert_eq!(status(2), Some(EntryStatus::Live));
        assert_eq!(status(3), Some(EntryStatus::Conflict));
    }

    #[test]
    fn a_chain_deeper_than_any_stack_is_derived_without_recursion() {
        // 200,000 levels: each deleted but the last, so every one is glue.
        let depth: u32 = 200_000;
        let id = |i: u32| -> Uuid {
            let mut u = [0u8; 16];
            u[..4].copy_from_slice(&i.to_be_bytes());
            u
        };
        let csn = Csn::new(100, 0, 1, 0);
        let mut states = BTreeMap::new();
        for i in 0..depth {
            let s = Skeleton {
                uuid: id(i),
                added: Some(csn),
                deleted: (i > 0 && i + 1 < depth).then_some(Csn::new(200, 0, 1, 0)),
                parent: (i > 0).then(|| id(i - 1)),
                parent_csn: csn,
                rdn_key: vec![1],
                rdn_csn: csn,
                derived: Derived::default(),
            };
            states.insert(s.uuid, s);
        }
        derive_skeletons(&mut states, id(0));
        let glue = states
            .values()
            .filter(|s| s.derived.status == EntryStatus::Glue)
            .count();
        assert_eq!(glue, depth as usize - 2);
    }
}
