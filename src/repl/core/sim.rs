//! Deterministic simulation: replicas over the pure core, random
//! workloads, random delivery, duplicates, partitions and restarts; at
//! quiescence every replica must hold byte-identical state and every
//! change must be present or superseded as the rules say.
//!
//! ```text
//! cargo test --lib repl::core::sim -- --nocapture                      # 10,000 schedules
//! FERRODIR_SIM_SEED=123 cargo test --lib repl::core::sim -- --nocapture  # one schedule, verbose
//! FERRODIR_SIM_SCHEDULES=1000000 cargo test --release --lib repl::core::sim -- --nocapture
//! ```
//!
//! Delivery follows the replication protocol: a session from supplier S
//! to consumer R sends, in CSN order, the changes S holds that R's RUV
//! does not cover, and may stop after any of them (a dropped connection).
//! Which sessions run, when, and over which links (partitions) is random,
//! so changes from different replicas interleave in every order the
//! protocol allows. Duplicates are applied straight to the core (as a
//! consumer whose acknowledgement was lost would see them) and must be
//! absorbed without any write.

use super::*;
use crate::model::{Csn, Rdn};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

pub(super) const SUFFIX: Uuid = [0; 16];

/// splitmix64: small, fast, and the same on every platform.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len())).cloned()
        }
    }
}

/// A replica's entry states in memory: the [`ReplicaView`] the simulation
/// and the scenario tests use.
#[derive(Clone)]
pub(super) struct Mem {
    pub(super) norm: CaseFold,
    pub(super) states: BTreeMap<Uuid, EntryState>,
    /// RDN key per entry: the index a directory keeps for `claimants`.
    keys: BTreeMap<Uuid, Vec<u8>>,
}

impl ReplicaView for Mem {
    fn state(&self, uuid: &Uuid) -> Option<Cow<'_, EntryState>> {
        self.states.get(uuid).map(Cow::Borrowed)
    }

    fn tree_children(&self, parent: &Uuid) -> Vec<Uuid> {
        self.states
            .values()
            .filter(|s| s.derived.in_tree && s.derived.parent == Some(*parent))
            .map(|s| s.uuid)
            .collect()
    }

    fn claimants(&self, parent: &Uuid, key: &[u8]) -> Vec<Uuid> {
        self.states
            .values()
            .filter(|s| s.derived.in_tree && s.derived.parent == Some(*parent))
            .filter(|s| self.keys.get(&s.uuid).is_some_and(|k| k == key))
            .map(|s| s.uuid)
            .collect()
    }

    fn suffix(&self) -> Uuid {
        SUFFIX
    }
}

impl Mem {
    /// A replica holding only the suffix entry `dc=x`, added at CSN 1.
    pub(super) fn new(norm: CaseFold) -> Mem {
        let mut m = Mem {
            norm,
            states: BTreeMap::new(),
            keys: BTreeMap::new(),
        };
        m.apply(&ReplChange {
            csn: Csn::new(1, 0, 0, 0),
            uuid: SUFFIX,
            op: Op::Add {
                parent: None,
                rdn: Rdn::single("dc", "x"),
                attrs: vec![("objectClass".into(), vec![b"domain".to_vec()])],
            },
        });
        m
    }

    /// Applies a change keeping nothing of the outcome but its resolution,
    /// its effects and how many states it wrote (no copies of the writes).
    fn apply_owned(&mut self, change: &ReplChange) -> (Resolution, Vec<Effect>, usize) {
        let out = apply(self, &self.norm, change);
        let written = out.writes.len();
        for w in out.writes {
            self.keys.insert(w.uuid, rdn_key(&self.norm, &w.rdn));
            self.states.insert(w.uuid, w);
        }
        (out.resolution, out.effects, written)
    }

    pub(super) fn apply(&mut self, change: &ReplChange) -> Outcome {
        let out = apply(self, &self.norm, change);
        for w in &out.writes {
            self.keys.insert(w.uuid, rdn_key(&self.norm, &w.rdn));
            self.states.insert(w.uuid, w.clone());
        }
        out
    }

    pub(super) fn get(&self, u: &Uuid) -> Option<&EntryState> {
        self.states.get(u)
    }

    /// The visible DN of an entry in the tree.
    pub(super) fn dn(&self, u: &Uuid) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = Some(*u);
        while let Some(c) = cur {
            let s = self.states.get(&c)?;
            if !s.derived.in_tree || parts.len() > self.states.len() {
                return None;
            }
            parts.push(s.visible_rdn().to_string());
            cur = s.derived.parent;
        }
        Some(parts.join(","))
    }

    pub(super) fn in_tree(&self) -> Vec<Uuid> {
        self.states
            .values()
            .filter(|s| s.derived.in_tree)
            .map(|s| s.uuid)
            .collect()
    }

    pub(super) fn visible(&self, u: &Uuid, attr: &str) -> Vec<String> {
        let Some(s) = self.states.get(u) else {
            return Vec::new();
        };
        let key = self.norm.attr_key(attr);
        s.attrs
            .get(&key)
            .map(|a| {
                a.visible(self.norm.single_valued(&key))
                    .iter()
                    .map(|v| String::from_utf8_lossy(&v.bytes).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for s in self.states.values() {
            let dn = self
                .dn(&s.uuid)
                .unwrap_or_else(|| format!("(out: {})", s.rdn));
            out.push_str(&format!(
                "  {} {:?} {} parent={:?} add={:?} del={:?} rdn@{} par@{}\n",
                hex(&s.uuid),
                s.derived.status,
                dn,
                s.parent.map(|p| hex(&p)),
                s.added.map(|c| c.to_string()),
                s.deleted.map(|c| c.to_string()),
                s.rdn_csn,
                s.parent_csn
            ));
            for (name, vs) in s.visible_attrs(&self.norm) {
                let v: Vec<String> = vs
                    .iter()
                    .map(|v| String::from_utf8_lossy(&v.bytes).into_owned())
                    .collect();
                out.push_str(&format!("      {name}: {v:?}\n"));
            }
        }
        out
    }
}

fn hex(u: &Uuid) -> String {
    u.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

pub(super) fn norm() -> CaseFold {
    CaseFold::new(&["employeeNumber"])
}

struct Node {
    rid: u16,
    clock: HlcClock,
    skew: i64,
    db: Mem,
    /// Every change held, own and received: what this node forwards.
    log: BTreeMap<Csn, ReplChange>,
    ruv: BTreeMap<u16, Csn>,
}

impl Node {
    fn covers(&self, csn: Csn) -> bool {
        self.ruv.get(&csn.rid).is_some_and(|m| csn <= *m)
    }

    fn hold(&mut self, change: &ReplChange) {
        self.log.insert(change.csn, change.clone());
        let max = self.ruv.entry(change.csn.rid).or_insert(change.csn);
        if change.csn > *max {
            *max = change.csn;
        }
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    changes: usize,
    deliveries: usize,
    replicas: usize,
    chaos: bool,
    duplicates: usize,
    restarts: usize,
    /// Final states with these statuses (or breaking a move cycle).
    conflicts: usize,
    glue: usize,
    tombstones: usize,
    cycle_breakers: usize,
}

struct Sim {
    rng: Rng,
    nodes: Vec<Node>,
    link_down: BTreeSet<(usize, usize)>,
    time: u32,
    stats: Stats,
    verbose: bool,
}

const NAMES: [&str; 5] = ["a", "b", "c", "A", "B"];
const DESCRIPTIONS: [&str; 4] = ["d1", "D1", "d2", "d3"];
const NUMBERS: [&str; 3] = ["e1", "e2", "E1"];

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let replicas = match rng.below(10) {
            0 => 5,
            1 | 2 => 4,
            _ => 3,
        };
        // A quarter of the schedules ignore the protocol's delivery order.
        let chaos = rng.chance(25);
        let nodes = (0..replicas)
            .map(|i| {
                let rid = (i + 1) as u16;
                let skew = if rng.chance(10) {
                    rng.below(200_000) as i64
                } else {
                    rng.below(60) as i64 - 30
                };
                Node {
                    rid,
                    clock: HlcClock::new(rid, Csn::new(1, 0, 0, 0)),
                    skew,
                    db: Mem::new(norm()),
                    log: BTreeMap::new(),
                    ruv: BTreeMap::new(),
                }
            })
            .collect();
        Sim {
            rng,
            nodes,
            link_down: BTreeSet::new(),
            time: 1000,
            stats: Stats {
                replicas,
                chaos,
                ..Stats::default()
            },
            verbose: false,
        }
    }

    fn wall(&self, n: usize) -> u32 {
        let skew = self.nodes.get(n).map_or(0, |x| x.skew);
        (i64::from(self.time) + skew).clamp(0, i64::from(u32::MAX)) as u32
    }

    fn run(&mut self) -> Result<(), String> {
        let mut ops_left = 10 + self.rng.below(21);
        let mut steps = 0;
        while ops_left > 0 {
            steps += 1;
            if steps > 10_000 {
                return Err("workload did not finish".into());
            }
            self.time += self.rng.below(3) as u32;
            match self.rng.below(100) {
                0..=44 => {
                    let n = self.rng.below(self.nodes.len());
                    if self.local_op(n)? {
                        ops_left -= 1;
                    }
                }
                45..=84 => {
                    let (s, r) = self.pair();
                    if !self.link_down.contains(&(s.min(r), s.max(r))) {
                        self.session(s, r, false)?;
                    }
                }
                85..=92 => {
                    let (s, r) = self.pair();
                    let link = (s.min(r), s.max(r));
                    if !self.link_down.remove(&link) {
                        self.link_down.insert(link);
                    }
                }
                93..=96 => {
                    let n = self.rng.below(self.nodes.len());
                    self.restart(n)?;
                }
                _ => self.time += self.rng.below(100) as u32,
            }
        }
        self.link_down.clear();
        self.quiesce()?;
        self.check()
    }

    fn pair(&mut self) -> (usize, usize) {
        let n = self.nodes.len();
        let s = self.rng.below(n);
        let r = (s + 1 + self.rng.below(n - 1)) % n;
        (s, r)
    }

    fn quiesce(&mut self) -> Result<(), String> {
        for _ in 0..10 {
            let mut moved = false;
            for s in 0..self.nodes.len() {
                for r in 0..self.nodes.len() {
                    if s != r {
                        moved |= self.session(s, r, true)?;
                    }
                }
            }
            if !moved {
                return Ok(());
            }
        }
        Err("no quiescence after 10 full rounds".into())
    }

    /// One session: returns whether anything was sent.
    fn session(&mut self, s: usize, r: usize, complete: bool) -> Result<bool, String> {
        let wall = self.wall(r);
        if !complete && self.rng.chance(15) {
            self.duplicate(r)?;
        }
        let Some(consumer) = self.nodes.get(r) else {
            return Ok(false);
        };
        let mut pending: Vec<ReplChange> = self.nodes[s]
            .log
            .values()
            .filter(|c| {
                if self.stats.chaos {
                    !consumer.log.contains_key(&c.csn)
                } else {
                    !consumer.covers(c.csn)
                }
            })
            .cloned()
            .collect();
        if self.stats.chaos {
            for i in (1..pending.len()).rev() {
                let j = self.rng.below(i + 1);
                pending.swap(i, j);
            }
        }
        let n = if complete || pending.is_empty() {
            pending.len()
        } else {
            1 + self.rng.below(pending.len())
        };
        for change in pending.iter().take(n) {
            let node = &mut self.nodes[r];
            node.clock.observe(change.csn, wall);
            let (resolution, effects, _) = node.db.apply_owned(change);
            node.hold(change);
            self.stats.deliveries += 1;
            if self.verbose {
                println!(
                    "  r{} <- r{} {:?}\n      => {:?} {:?}",
                    r + 1,
                    s + 1,
                    change,
                    resolution,
                    effects
                );
            }
        }
        Ok(n > 0)
    }

    /// A change the replica already holds, applied again.
    fn duplicate(&mut self, r: usize) -> Result<(), String> {
        let held = self.nodes[r].log.len();
        let i = self.rng.below(held);
        if let Some(change) = self.nodes[r].log.values().nth(i).cloned() {
            self.stats.duplicates += 1;
            let out = self.nodes[r].db.apply_owned(&change);
            if out.0 != Resolution::Absorbed(Absorbed::Duplicate) || out.2 != 0 || !out.1.is_empty()
            {
                return Err(format!(
                    "duplicate {change:?} not absorbed on r{}: {out:?}",
                    r + 1
                ));
            }
        }
        Ok(())
    }

    /// Encodes every state and reads it back, as a restart would.
    fn restart(&mut self, n: usize) -> Result<(), String> {
        self.stats.restarts += 1;
        let node = &mut self.nodes[n];
        let mut back = BTreeMap::new();
        for s in node.db.states.values() {
            let decoded = EntryState::decode(&s.encode()).map_err(|e| format!("decode: {e}"))?;
            if &decoded != s {
                return Err(format!(
                    "state of {} changed through encoding",
                    hex(&s.uuid)
                ));
            }
            back.insert(decoded.uuid, decoded);
        }
        node.db.keys = back
            .iter()
            .map(|(u, s)| (*u, rdn_key(&node.db.norm, &s.rdn)))
            .collect();
        node.db.states = back;
        let last = node.log.keys().next_back().copied().unwrap_or(Csn::ZERO);
        node.clock = HlcClock::new(node.rid, last.max(node.clock.last()));
        Ok(())
    }

    fn local_op(&mut self, n: usize) -> Result<bool, String> {
        let wall = self.wall(n);
        let Some(op) = self.gen_op(n) else {
            return Ok(false);
        };
        let node = &mut self.nodes[n];
        let csn = node.clock.now(wall);
        let change = ReplChange {
            csn,
            uuid: op.0,
            op: op.1,
        };
        let (resolution, effects, _) = node.db.apply_owned(&change);
        if self.verbose {
            println!(
                "r{} local {:?}\n      => {:?} {:?}",
                n + 1,
                change,
                resolution,
                effects
            );
        }
        node.hold(&change);
        self.stats.changes += 1;
        Ok(true)
    }

    fn gen_op(&mut self, n: usize) -> Option<(Uuid, Op)> {
        let db = &self.nodes[n].db;
        let tree = db.in_tree();
        let live: Vec<Uuid> = tree
            .iter()
            .copied()
            .filter(|u| db.get(u).is_some_and(|s| s.exists()) && *u != SUFFIX)
            .collect();
        match self.rng.below(100) {
            0..=34 => self.gen_add(n, &tree),
            35..=64 => {
                let target = self.rng.pick(&live)?;
                let mods = (0..1 + self.rng.below(3))
                    .flat_map(|_| self.gen_mods())
                    .collect();
                Some((target, Op::Modify { mods }))
            }
            65..=79 => {
                let db = &self.nodes[n].db;
                let leaves: Vec<Uuid> = live
                    .iter()
                    .copied()
                    .filter(|u| db.tree_children(u).is_empty())
                    .collect();
                Some((self.rng.pick(&leaves)?, Op::Delete))
            }
            _ => self.gen_moddn(n, &tree, &live),
        }
    }

    fn name_free(&self, n: usize, parent: &Uuid, rdn: &Rdn, except: Option<Uuid>) -> bool {
        let db = &self.nodes[n].db;
        let key = rdn_key(&db.norm, rdn);
        db.tree_children(parent)
            .iter()
            .filter(|c| Some(**c) != except)
            .filter_map(|c| db.get(c))
            .all(|s| rdn_key(&db.norm, &s.visible_rdn()) != key)
    }

    fn gen_add(&mut self, n: usize, tree: &[Uuid]) -> Option<(Uuid, Op)> {
        let parent = self.rng.pick(tree)?;
        let name = self.rng.pick(&NAMES)?;
        let rdn = Rdn::single("cn", name);
        if !self.name_free(n, &parent, &rdn, None) {
            return None;
        }
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&self.rng.next().to_be_bytes());
        uuid[8..].copy_from_slice(&self.rng.next().to_be_bytes());
        let mut attrs = vec![
            (
                "objectClass".to_string(),
                vec![b"top".to_vec(), b"person".to_vec()],
            ),
            ("cn".to_string(), vec![name.as_bytes().to_vec()]),
        ];
        if self.rng.chance(50) {
            let d = self.rng.pick(&DESCRIPTIONS)?;
            attrs.push(("description".into(), vec![d.as_bytes().to_vec()]));
        }
        if self.rng.chance(50) {
            let e = self.rng.pick(&NUMBERS)?;
            attrs.push(("employeeNumber".into(), vec![e.as_bytes().to_vec()]));
        }
        Some((
            uuid,
            Op::Add {
                parent: Some(parent),
                rdn,
                attrs,
            },
        ))
    }

    /// One modification "shape", possibly two steps (ADD+DELETE...).
    fn gen_mods(&mut self) -> Vec<ValueOp> {
        let (attr, pool): (&str, &[&str]) = match self.rng.below(3) {
            0 => ("description", &DESCRIPTIONS),
            1 => ("employeeNumber", &NUMBERS),
            _ => ("cn", &NAMES),
        };
        let mut v = || -> Vec<u8> { pool[self.rng.below(pool.len())].as_bytes().to_vec() };
        let (a, b) = (v(), v());
        let attr = attr.to_string();
        match self.rng.below(7) {
            0 => vec![ValueOp::Add(attr, vec![a])],
            1 => vec![ValueOp::Delete(attr, vec![a])],
            2 => vec![ValueOp::Delete(attr, vec![])],
            3 => vec![ValueOp::Replace(attr, vec![a])],
            4 => vec![ValueOp::Replace(attr, vec![])],
            5 => vec![
                ValueOp::Add(attr.clone(), vec![a]),
                ValueOp::Delete(attr, vec![b]),
            ],
            _ => vec![
                ValueOp::Delete(attr.clone(), vec![b]),
                ValueOp::Add(attr, vec![a]),
            ],
        }
    }

    fn gen_moddn(&mut self, n: usize, tree: &[Uuid], live: &[Uuid]) -> Option<(Uuid, Op)> {
        let target = self.rng.pick(live)?;
        let db = &self.nodes[n].db;
        let state = db.get(&target)?.clone();
        let new_superior = if self.rng.chance(50) {
            let candidates: Vec<Uuid> = tree
                .iter()
                .copied()
                .filter(|c| !self.is_under(n, c, &target))
                .collect();
            Some(self.rng.pick(&candidates)?)
        } else {
            None
        };
        let name = self.rng.pick(&NAMES)?;
        let new_rdn = Rdn::single("cn", name);
        let parent = new_superior.or(state.derived.parent)?;
        if !self.name_free(n, &parent, &new_rdn, Some(target)) {
            return None;
        }
        Some((
            target,
            Op::ModDn {
                new_rdn,
                old_rdn: state.rdn.clone(),
                delete_old_rdn: self.rng.chance(70),
                new_superior,
            },
        ))
    }

    /// Whether `c` is `ancestor` or below it.
    fn is_under(&self, n: usize, c: &Uuid, ancestor: &Uuid) -> bool {
        let db = &self.nodes[n].db;
        let mut cur = Some(*c);
        let mut hops = 0;
        while let Some(u) = cur {
            if u == *ancestor {
                return true;
            }
            hops += 1;
            if hops > db.states.len() {
                return true;
            }
            cur = db.get(&u).and_then(|s| s.derived.parent);
        }
        false
    }

    fn check(&mut self) -> Result<(), String> {
        if let Some(first) = self.nodes.first() {
            for s in first.db.states.values() {
                let st = &mut self.stats;
                match s.derived.status {
                    EntryStatus::Conflict => st.conflicts += 1,
                    EntryStatus::Glue => st.glue += 1,
                    EntryStatus::Tombstone => st.tombstones += 1,
                    _ => {}
                }
                st.cycle_breakers += usize::from(s.derived.cycle_breaker);
            }
        }
        let first = self.nodes.first().ok_or("no replicas")?;
        for node in &self.nodes {
            if node.log.keys().ne(first.log.keys()) {
                return Err(format!("r{} does not hold every change", node.rid));
            }
        }
        let encode =
            |m: &Mem| -> Vec<Vec<u8>> { m.states.values().map(EntryState::encode).collect() };
        let reference = encode(&first.db);
        for node in &self.nodes {
            if encode(&node.db) != reference {
                let differs: Vec<String> = first
                    .db
                    .states
                    .values()
                    .zip(node.db.states.values())
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| format!("r1: {a:?}\nr{}: {b:?}", node.rid))
                    .collect();
                return Err(format!(
                    "r{} diverges from r1\n{}\nr1:\n{}r{}:\n{}",
                    node.rid,
                    differs.join("\n"),
                    first.db.dump(),
                    node.rid,
                    node.db.dump()
                ));
            }
        }
        let mut scratch = first.db.states.clone();
        derive_all(&mut scratch, SUFFIX, &first.db.norm);
        if scratch != first.db.states {
            let mut from_scratch = first.db.clone();
            from_scratch.states = scratch;
            return Err(format!(
                "incremental derivation differs from derive_all\nincremental:\n{}from scratch:\n{}",
                first.db.dump(),
                from_scratch.dump()
            ));
        }
        check_tree(&first.db)?;
        for change in first.log.values() {
            check_change(&first.db, change)
                .map_err(|e| format!("{e}\nfinal state:\n{}", first.db.dump()))?;
        }
        Ok(())
    }
}

/// DNs are unique, every entry of the tree hangs from the tree, glue holds
/// something.
fn check_tree(db: &Mem) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for u in db.in_tree() {
        let s = db.get(&u).ok_or("vanished")?;
        let dn = db
            .dn(&u)
            .ok_or_else(|| format!("{} in the tree has no DN", hex(&u)))?;
        if let Some(p) = s.derived.parent {
            let key = (p, rdn_key(&db.norm, &s.visible_rdn()));
            if !seen.insert(key) {
                return Err(format!("two entries named {dn}"));
            }
        }
        if s.derived.status == EntryStatus::Glue && db.tree_children(&u).is_empty() {
            return Err(format!("glue {dn} holds nothing"));
        }
    }
    Ok(())
}

/// Every change is present in the final state or superseded by a later one.
fn check_change(db: &Mem, change: &ReplChange) -> Result<(), String> {
    let s = db
        .get(&change.uuid)
        .ok_or_else(|| format!("{change:?}: target unknown"))?;
    let csn = change.csn;
    let fail = |why: &str| Err(format!("{change:?}: {why}"));
    match &change.op {
        Op::Add { .. } => {
            if s.added.is_none_or(|a| a > csn) {
                return fail("add not recorded");
            }
            if s.exists() != s.derived.in_tree && s.exists() {
                return fail("entry exists but is not in the tree");
            }
        }
        Op::Delete => {
            if s.deleted.is_none_or(|d| d > csn) || s.exists() {
                return fail("delete not recorded");
            }
            if !matches!(s.derived.status, EntryStatus::Tombstone | EntryStatus::Glue) {
                return fail("deleted entry neither tombstone nor glue");
            }
        }
        Op::Modify { mods } => {
            for (i, m) in mods.iter().enumerate() {
                check_value_op(db, s, m, step_csn(csn, i)).or_else(|e| fail(&e))?;
            }
        }
        Op::ModDn {
            new_rdn,
            new_superior,
            ..
        } => {
            if s.rdn_csn < csn || (s.rdn_csn == csn && &s.rdn != new_rdn) {
                return fail("rename lost");
            }
            if new_superior.is_some() && s.parent_csn < csn {
                return fail("move lost");
            }
            for ava in &new_rdn.avas {
                let add = ValueOp::Add(ava.attr.clone(), vec![ava.value.clone()]);
                check_value_op(db, s, &add, step_csn(csn, 1)).or_else(|e| fail(&e))?;
            }
        }
    }
    Ok(())
}

fn check_value_op(db: &Mem, s: &EntryState, op: &ValueOp, c: Csn) -> Result<(), String> {
    let norm = &db.norm;
    let (ValueOp::Add(name, values)
    | ValueOp::Delete(name, values)
    | ValueOp::Replace(name, values)) = op;
    let key = norm.attr_key(name);
    let single = norm.single_valued(&key);
    let attr = s.attrs.get(&key).ok_or("attribute state missing")?;
    let shown = attr.visible(single);
    let visible: BTreeMap<Vec<u8>, &ValueState> = attr
        .values
        .iter()
        .filter(|(_, v)| shown.iter().any(|x| std::ptr::eq(*x, *v)))
        .map(|(k, v)| (k.clone(), v))
        .collect();
    let attr_del = attr.deleted.unwrap_or(Csn::ZERO);
    let asserted_present = |v: &Vec<u8>| -> Result<(), String> {
        let vk = norm.value_key(&key, v);
        let vs = attr.values.get(&vk);
        if vs.is_none() && attr_del <= c {
            return Err(format!("{op:?}@{c}: value state missing"));
        }
        let shown = visible.contains_key(&vk);
        let deleted_later = vs.is_some_and(|vs| vs.deleted.is_some_and(|d| d > c)) || attr_del > c;
        let newer_single = single && visible.values().any(|w| w.updated > c);
        if shown || deleted_later || newer_single {
            Ok(())
        } else {
            Err(format!(
                "{op:?}@{c}: value {:?} lost",
                String::from_utf8_lossy(v)
            ))
        }
    };
    let gone = |keys: &BTreeSet<Vec<u8>>| -> Result<(), String> {
        for (k, w) in &visible {
            if keys.contains(k) && w.updated <= c && !w.distinguished {
                return Err(format!(
                    "{op:?}@{c}: value {:?} survived",
                    String::from_utf8_lossy(&w.bytes)
                ));
            }
        }
        Ok(())
    };
    let named: BTreeSet<Vec<u8>> = values.iter().map(|v| norm.value_key(&key, v)).collect();
    match op {
        ValueOp::Add(..) => values.iter().try_for_each(asserted_present),
        ValueOp::Delete(..) if values.is_empty() => gone(&visible.keys().cloned().collect()),
        ValueOp::Delete(..) => gone(&named),
        ValueOp::Replace(..) => {
            values.iter().try_for_each(asserted_present)?;
            gone(
                &visible
                    .keys()
                    .filter(|k| !named.contains(*k))
                    .cloned()
                    .collect(),
            )
        }
    }
}

fn run_seed(seed: u64, verbose: bool) -> Result<Stats, String> {
    let result = std::panic::catch_unwind(|| {
        let mut sim = Sim::new(seed);
        sim.verbose = verbose;
        sim.run().map(|_| sim.stats)
    });
    match result {
        Ok(r) => r,
        Err(p) => Err(format!(
            "panicked: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn replicas_converge_on_random_schedules() {
    if let Some(seed) = env_u64("FERRODIR_SIM_SEED") {
        match run_seed(seed, true) {
            Ok(stats) => println!("seed {seed} converged: {stats:?}"),
            Err(e) => panic!("seed {seed}: {e}"),
        }
        return;
    }
    let schedules = env_u64("FERRODIR_SIM_SCHEDULES").unwrap_or(10_000);
    let first = env_u64("FERRODIR_SIM_FIRST_SEED").unwrap_or(0);
    let started = Instant::now();
    let mut largest = Stats::default();
    let mut deliveries = 0usize;
    let mut total = Stats::default();
    let mut with = [0usize; 4];
    let mut chaos_schedules = 0usize;
    for seed in first..first + schedules {
        match run_seed(seed, false) {
            Ok(stats) => {
                deliveries += stats.deliveries;
                total.changes += stats.changes;
                total.duplicates += stats.duplicates;
                total.restarts += stats.restarts;
                chaos_schedules += usize::from(stats.chaos);
                for (i, n) in [stats.conflicts, stats.glue, stats.tombstones, stats.cycle_breakers]
                    .into_iter()
                    .enumerate()
                {
                    with[i] += usize::from(n > 0);
                }
                if (stats.changes, stats.deliveries) > (largest.changes, largest.deliveries) {
                    largest = stats;
                }
            }
            Err(e) => panic!(
                "schedule {seed} does not converge: {e}\nreproduce: FERRODIR_SIM_SEED={seed} cargo test --lib repl::core::sim -- --nocapture"
            ),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "simulation: {schedules} schedules in {secs:.1} s ({:.0}/s), {} changes, {deliveries} deliveries, {} duplicates, {} restarts; {} schedules out of protocol order; largest: {} replicas, {} changes, {} deliveries",
        schedules as f64 / secs.max(1e-9),
        total.changes,
        total.duplicates,
        total.restarts,
        chaos_schedules,
        largest.replicas,
        largest.changes,
        largest.deliveries
    );
    println!(
        "schedules ending with: conflict entries {}, glue {}, tombstones {}, a broken move cycle {}",
        with[0], with[1], with[2], with[3]
    );
}
