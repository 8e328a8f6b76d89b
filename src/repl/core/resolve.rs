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
use super::state::{EntryState, EntryStatus, Uuid};
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
    let before = tx.get(&change.uuid);
    let mut target = before
        .clone()
        .unwrap_or_else(|| EntryState::phantom(change.uuid));
    merge(&mut target, change, norm);
    if before.as_ref() == Some(&target) {
        return Outcome {
            resolution: Resolution::Absorbed(Absorbed::Duplicate),
            writes: Vec::new(),
            effects: Vec::new(),
        };
    }
    let register_moved = before
        .as_ref()
        .is_none_or(|b| (b.parent, b.parent_csn) != (target.parent, target.parent_csn));
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
    let uuids: Vec<Uuid> = states.keys().copied().collect();
    for u in &uuids {
        let cycle = cycle_in(states, u, suffix);
        let (parent, breaker) = effective_parent(states, u, &cycle, suffix);
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
    let mut memo: BTreeMap<Uuid, bool> = BTreeMap::new();
    for u in &uuids {
        in_tree_rec(states, &children, u, &mut memo);
    }
    let mut groups: BTreeMap<(Uuid, Vec<u8>), Vec<Uuid>> = BTreeMap::new();
    for s in states.values_mut() {
        s.derived.in_tree = memo.get(&s.uuid).copied().unwrap_or(false);
        s.derived.conflict = s.derived.in_tree && s.derived.cycle_breaker;
        if let (true, false, Some(p)) =
            (s.derived.in_tree, s.derived.cycle_breaker, s.derived.parent)
        {
            groups
                .entry((p, rdn_key(norm, &s.rdn)))
                .or_default()
                .push(s.uuid);
        }
    }
    for members in groups.values() {
        let winner = members
            .iter()
            .filter_map(|u| states.get(u))
            .min_by_key(|s| rank(s))
            .map(|s| s.uuid);
        for u in members {
            if let Some(s) = states.get_mut(u) {
                s.derived.conflict = Some(*u) != winner;
            }
        }
    }
    for s in states.values_mut() {
        refresh_status(s);
    }
}

fn in_tree_rec(
    states: &BTreeMap<Uuid, EntryState>,
    children: &BTreeMap<Uuid, Vec<Uuid>>,
    u: &Uuid,
    memo: &mut BTreeMap<Uuid, bool>,
) -> bool {
    if let Some(v) = memo.get(u) {
        return *v;
    }
    let Some(s) = states.get(u) else {
        return false;
    };
    let mut held = false;
    for c in children.get(u).map(Vec::as_slice).unwrap_or(&[]) {
        held |= in_tree_rec(states, children, c, memo);
    }
    let v = s.added.is_some() && (s.exists() || held);
    memo.insert(*u, v);
    v
}

/// The members of the cycle of parent registers through `start`, if any.
fn cycle_in(states: &BTreeMap<Uuid, EntryState>, start: &Uuid, suffix: Uuid) -> Vec<Uuid> {
    walk_cycle(start, suffix, |u| states.get(u).and_then(|s| s.parent))
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
    states: &BTreeMap<Uuid, EntryState>,
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
fn rank(s: &EntryState) -> (bool, Csn, Uuid) {
    (!s.exists(), s.name_csn(), s.uuid)
}

fn refresh_status(s: &mut EntryState) {
    // Only entries in a name group (in the tree, under a parent, not
    // breaking a cycle) get their conflict flag from the group.
    let d = &mut s.derived;
    if !d.in_tree || d.cycle_breaker || d.parent.is_none() {
        d.conflict = d.in_tree && d.cycle_breaker;
    }
    let (status, csn) = match (s.added, s.deleted) {
        (None, _) => (EntryStatus::Phantom, Csn::ZERO),
        (Some(_), None) if s.derived.conflict => (EntryStatus::Conflict, s.name_csn()),
        (Some(a), None) => (EntryStatus::Live, a),
        (Some(_), Some(d)) if s.derived.in_tree => (EntryStatus::Glue, d),
        (Some(_), Some(d)) => (EntryStatus::Tombstone, d),
    };
    s.derived.status = status;
    s.derived.status_csn = csn;
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

    fn get(&mut self, u: &Uuid) -> Option<EntryState> {
        self.load(u);
        self.peek(u).cloned()
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
            let winner = members.iter().min_by_key(|s| rank(s)).map(|s| s.uuid);
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
            } else if is_target
                && before.is_some_and(|b| {
                    b.attrs != after.attrs && visible(b, norm) != visible(after, norm)
                })
            {
                out.push((5, Effect::Modified { uuid }));
            }
        }
        (None, None) => {}
    }
    out
}

fn visible<'s, N: Normaliser + ?Sized>(
    s: &'s EntryState,
    norm: &N,
) -> Vec<(&'s str, Vec<&'s [u8]>)> {
    s.attrs
        .iter()
        .map(|(name, a)| {
            let values = a.visible(norm.single_valued(name));
            (
                name.as_str(),
                values
                    .into_iter()
                    .map(|v| v.bytes.as_slice())
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}
