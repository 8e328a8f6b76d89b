//! # The pure replication core
//!
//! Everything here takes time and input as arguments, returns values and
//! does no I/O, so it can be tested (and simulated) without a store or a
//! network; tests/layers.rs keeps it from importing anything but the model.
//! It holds the CSN clocks (`csn`, and the hybrid logical clock `clock`),
//! RUV arithmetic (`ruv`), the replication protocol's encoding (`wire`),
//! the catch-up merge (`catchup`), fractional attribute lists and update
//! schedules, and the conflict rules below.
//!
//! ## Multi-master conflict resolution
//!
//! Every writable replica accepts writes; changes travel between replicas
//! in whatever order the network and the agreements produce. This module
//! decides what a replica's data becomes when a replicated change arrives,
//! so that **replicas that received the same set of changes hold the same
//! state, byte for byte, whatever the order, duplicates included**. It is
//! pure: no I/O, no clock, no store, no network; only `std` and the model
//! types. The directory reads the replica's state through [`ReplicaView`],
//! calls [`apply`], and writes the returned states and [`Effect`]s in one
//! transaction. A deterministic simulation (`sim.rs`) checks the claim on
//! tens of thousands of random schedules per test run.
//!
//! ## Why state, not just values
//!
//! Today a value carries only the CSN that added it. That cannot converge:
//! if a `replace` at CSN 20 removed `mail: a` and an `add mail: a` at CSN
//! 10 arrives late, nothing says the add is older than the removal, and
//! `a` comes back. So the state keeps what was removed, with when:
//!
//! - per value ([`ValueState`]): the CSN of its first add, of its latest
//!   add (`updated`, the one that decides), of its latest delete (kept
//!   until purged), and whether it is in the RDN (distinguished);
//! - per attribute ([`AttrState`]): the CSN of its latest whole-attribute
//!   delete or replace;
//! - per entry ([`EntryState`]): the add's CSN, the delete's CSN, the
//!   parent register (parent entryUUID + CSN of the add or move that set
//!   it), the RDN register (RDN + CSN of the add or rename), and the
//!   derived part: status (live, conflict, glue, tombstone, or phantom for
//!   an entry only referenced so far) with its CSN, the parent it sits
//!   under, whether it is in the tree and whether it is conflict-named.
//!
//! The merged part only grows by order-free merges (min, max,
//! last-writer-wins registers). The derived part is recomputed from the
//! merged part of the entry and its neighbours; [`derive_all`] computes it
//! from scratch and the simulation checks the incremental result against it.
//! Values are keyed by the attribute's equality rule through a
//! [`Normaliser`] (`cn: Foo` and `cn: foo` are one value); the normaliser
//! also says which types are single-valued. [`CaseFold`] serves tests.
//!
//! ## The rules
//!
//! "Later" means a larger CSN; the [`HlcClock`] makes a change made after
//! seeing another always later than it, whatever the wall clocks say.
//!
//! 1. **Values: last writer wins, per value.** A value is present when its
//!    latest add is newer than its latest delete and not older than the
//!    latest whole-attribute delete/replace. The modifications of one
//!    operation take sub-CSNs in order ([`step_csn`]), so `delete x, add x`
//!    keeps `x` everywhere and `add x, delete x` removes it everywhere.
//!    Example: replica 1 replaces `description` with `a` at CSN 10,
//!    replica 2 adds `description: b` at CSN 12: both replicas end with
//!    `a` and `b`; had the replace been at CSN 14, only `a`.
//! 2. **Single-valued attributes keep the latest value**, whatever the
//!    shape of the changes (REPLACE, ADD+DELETE, DELETE+ADD): of the
//!    values present by rule 1, the one with the latest add.
//! 3. **RDN values.** A multi-valued attribute always keeps the values of
//!    the current RDN, even when a later modification deleted them; a
//!    single-valued one keeps its latest value even if the RDN names
//!    another (and the RDN's value only when no other survives). These are
//!    the outcomes of 389-ds's `test_conflict_attribute_multi_valued`
//!    (entry renamed `uid=foo1` on one replica, `uid=foo2` later on the
//!    other, `uid` replaced by `foo1` later still: the entry is
//!    `uid=foo2` with `uid: foo1` and `uid: foo2`) and
//!    `test_conflict_attribute_single_valued` (the same with
//!    `employeeNumber`: `employeeNumber=foo2` with `employeeNumber: foo1`).
//! 4. **Delete wins.** A deleted entry stays deleted: a concurrent modify
//!    or rename is merged into the tombstone's state and shows nothing.
//! 5. **Renames: last writer wins**, separately for the RDN and for the
//!    parent: concurrent renames end with the later RDN; a rename and a
//!    concurrent move end with both.
//! 6. **Contested names (add/add, rename/add, rename/rename).** Among the
//!    entries of the tree under one parent whose RDNs are equal by
//!    matching rule, one keeps the plain DN: a live entry before glue,
//!    then the one that took the name first (add or rename CSN), then the
//!    smallest entryUUID. The others become conflict entries named
//!    `nsuniqueid=<id>+<rdn>,<parent>` with `nsds5ReplConflict:
//!    namingConflict <dn>` and `objectClass: ldapSubEntry` (so ordinary
//!    searches skip them), as 389-ds names them. Example: `cn=x` added at
//!    CSN 10 on replica 1 and at CSN 12 on replica 2: everywhere the CSN
//!    12 entry is `nsuniqueid=...+cn=x`; on replica 2, where it arrived
//!    first, the arrival of the CSN 10 add renames it. The decision is
//!    re-evaluated whenever a claimant is renamed, moved, deleted or
//!    revived, so it depends on the set of changes only.
//! 7. **Glue.** A deleted entry with entries of the tree below it stays in
//!    the tree as glue (`objectClass: glue`, `extensibleObject`,
//!    `nsds5ReplConflict: deletedEntryHasChildren <dn>`): an add under a
//!    parent deleted concurrently revives the parent as glue and keeps the
//!    child; a delete of an entry that got children concurrently keeps
//!    them. Glue turns back into a tombstone when its last child goes.
//! 8. **Move cycles.** Concurrent moves can make a cycle (A under B on one
//!    replica, B under A on another); the member whose move is latest is
//!    put under the suffix as a conflict entry.
//! 9. **Nothing blocks.** Every change yields an [`Outcome`]; a duplicate
//!    or superseded change is absorbed ([`Absorbed`]).
//!
//! ## Limits
//!
//! Deleted values and tombstones must be kept until every replica has seen
//! every change that could refer to them (the purge delay); after it
//! [`AttrState::purge_deleted`] forgets deleted values (the directory runs
//! it a slice of states per housekeeping run). A change older than the
//! purge delay arriving after that may bring a forgotten value back, as in
//! 389-ds. A change whose parent was never received (only possible if
//! the supplier sends out of causal order, or after a purge) leaves a
//! [`EntryStatus::Phantom`] parent and an entry the directory cannot place.

pub mod catchup;
pub mod fractional;
pub mod join_key;
mod payload;
pub mod retire;
pub mod ruv;
pub mod schedule;
pub mod sync_cookie;
pub mod syncrepl_config;
pub mod wire;

mod change;
mod clock;
mod normalise;
#[cfg(test)]
mod purity;
mod resolve;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod sim;
mod state;

pub use change::{mark_distinguished, merge, step_csn, Op, ReplChange, ValueOp};
pub use clock::{HlcClock, Skew, SKEW_WARNING_SECS};
pub use normalise::{rdn_key, CaseFold, Normaliser};
pub use resolve::{
    apply, derive_all, derive_skeletons, place_added, Absorbed, Effect, Outcome, Placement,
    ReplicaView, Resolution, Skeleton,
};
pub use state::{
    conflict_rdn, nsuniqueid, AttrState, Derived, EntryState, EntryStatus, StateError, Uuid,
    ValueState, CONFLICT_ATTR,
};
