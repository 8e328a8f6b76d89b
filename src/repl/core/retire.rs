//! Retiring a replica ID (389-ds's cleanallruv): once a server is
//! decommissioned its replica ID stays in every RUV, and a consumer lacking
//! it makes every supplier scan the changelog from that ID's last change at
//! each session. Retirement removes it, on every replica, without a
//! coordinator that can hang:
//!
//! - A retirement is `(replica ID, upto)`: `upto` is the newest change of
//!   that ID the retiring server held. The set of retirements is a
//!   grow-only set merged at every session start in both directions (union,
//!   larger `upto`), so it is replicated, idempotent and order-free.
//! - Each replica then finishes on its own, when nothing can be lost: it
//!   holds every change of the ID up to `upto`, and every enabled
//!   agreement's consumer does too (or has finished). Until then it keeps
//!   the ID and says what it waits for; a consumer that is unreachable
//!   holds the retirement back exactly as it holds the changelog back, and
//!   it resumes by itself when the consumer comes back or its agreement is
//!   disabled. Finishing drops the ID from the RUV and its records from the
//!   changelog, in steps (resumable after a restart).
//! - Changes of a retired ID newer than `upto` (the server was not gone
//!   after all) are refused everywhere, and changes of a finished one are
//!   not needed any more: both are dropped, so they cannot loop.

use super::ruv::Ruv;
use crate::model::Csn;
use std::collections::BTreeMap;

/// One retired replica ID as this replica knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    pub rid: u16,
    /// The newest change of `rid` held by the server where it was retired.
    pub upto: Csn,
    /// This replica has finished: `rid` is out of its RUV, and its
    /// changelog records are being removed.
    pub done: bool,
    /// Every changelog record of `rid` is gone from this replica.
    pub changelog_clean: bool,
}

/// Every retirement of a suffix, by replica ID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retired {
    pub by_rid: BTreeMap<u16, Retirement>,
}

/// What to do with a change, given the retirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Apply,
    /// Its replica ID is retired and this replica has finished with it.
    AlreadyRetired,
    /// Made by a retired replica ID after its retirement.
    AfterRetirement {
        upto: Csn,
    },
}

/// Whether a replica may finish a retirement, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Finished,
    Ready,
    /// This replica still lacks changes of the retired ID.
    LocalBehind {
        have: Option<Csn>,
        upto: Csn,
    },
    /// A consumer (by its position in the list given) still lacks them.
    ConsumerBehind {
        consumer: usize,
        have: Option<Csn>,
    },
}

/// What a replica knows of one consumer: its acknowledged RUV and the
/// replica IDs it reported finished (None: not reported, an older peer or
/// not reached since a restart).
#[derive(Debug, Clone, Default)]
pub struct ConsumerView {
    pub ruv: Option<Ruv>,
    pub finished: Option<Vec<u16>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt retired replica list: {0}")]
pub struct RetiredError(&'static str);

const FORMAT: u8 = 1;

impl Retired {
    pub fn is_empty(&self) -> bool {
        self.by_rid.is_empty()
    }

    pub fn get(&self, rid: u16) -> Option<&Retirement> {
        self.by_rid.get(&rid)
    }

    /// Starts (or widens) a retirement. Returns whether anything changed.
    pub fn retire(&mut self, rid: u16, upto: Csn) -> bool {
        match self.by_rid.get_mut(&rid) {
            Some(r) if r.upto >= upto => false,
            Some(r) => {
                // A finished replica dropped the ID; it cannot wait for
                // more of its changes, so a wider retirement stays finished.
                r.upto = upto;
                true
            }
            None => {
                self.by_rid.insert(
                    rid,
                    Retirement {
                        rid,
                        upto,
                        done: false,
                        changelog_clean: false,
                    },
                );
                true
            }
        }
    }

    /// Merges a peer's retirements (its `done` flags are its own business).
    /// `own_rid`: this server's writable replica ID, never retired here.
    /// Returns the replica IDs newly retired and the refused own ID, if any.
    pub fn merge(&mut self, peer: &[(u16, Csn)], own_rid: Option<u16>) -> (Vec<u16>, Option<u16>) {
        let mut added = Vec::new();
        let mut refused = None;
        for &(rid, upto) in peer {
            if Some(rid) == own_rid {
                refused = Some(rid);
                continue;
            }
            let new = !self.by_rid.contains_key(&rid);
            if self.retire(rid, upto) && new {
                added.push(rid);
            }
        }
        (added, refused)
    }

    /// The shared part, as sent to peers.
    pub fn shared(&self) -> Vec<(u16, Csn)> {
        self.by_rid.values().map(|r| (r.rid, r.upto)).collect()
    }

    /// Finished replica IDs whose changelog records are still to remove.
    pub fn to_clean(&self) -> Vec<u16> {
        self.by_rid
            .values()
            .filter(|r| r.done && !r.changelog_clean)
            .map(|r| r.rid)
            .collect()
    }

    /// Replica IDs this replica has finished with.
    pub fn finished(&self) -> Vec<u16> {
        self.by_rid
            .values()
            .filter(|r| r.done)
            .map(|r| r.rid)
            .collect()
    }

    pub fn admit(&self, csn: Csn) -> Admission {
        match self.by_rid.get(&csn.rid) {
            None => Admission::Apply,
            Some(r) if r.done => Admission::AlreadyRetired,
            Some(r) if csn > r.upto => Admission::AfterRetirement { upto: r.upto },
            Some(_) => Admission::Apply,
        }
    }

    /// Whether `rid`'s retirement can finish here: `local` is this
    /// replica's RUV, `consumers` its enabled agreements' consumers.
    pub fn readiness(&self, rid: u16, local: &Ruv, consumers: &[ConsumerView]) -> Readiness {
        let Some(r) = self.by_rid.get(&rid) else {
            return Readiness::Finished;
        };
        if r.done {
            return Readiness::Finished;
        }
        let holds =
            |ruv: &Ruv| r.upto == Csn::ZERO || ruv.max_for(rid).is_some_and(|m| m >= r.upto);
        if !holds(local) {
            return Readiness::LocalBehind {
                have: local.max_for(rid),
                upto: r.upto,
            };
        }
        for (i, c) in consumers.iter().enumerate() {
            let finished = c.finished.as_ref().is_some_and(|f| f.contains(&rid));
            let covered = r.upto == Csn::ZERO || c.ruv.as_ref().is_some_and(holds);
            if !finished && !covered {
                return Readiness::ConsumerBehind {
                    consumer: i,
                    have: c.ruv.as_ref().and_then(|v| v.max_for(rid)),
                };
            }
        }
        Readiness::Ready
    }

    /// Marks `rid` finished and takes it out of `ruv`.
    pub fn finish(&mut self, rid: u16, ruv: &mut Ruv) {
        if let Some(r) = self.by_rid.get_mut(&rid) {
            r.done = true;
        }
        ruv.replicas.remove(&rid);
    }

    /// `ruv` without the finished replica IDs.
    pub fn strip(&self, ruv: &Ruv) -> Ruv {
        let mut out = ruv.clone();
        for r in self.by_rid.values().filter(|r| r.done) {
            out.replicas.remove(&r.rid);
        }
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        out.extend_from_slice(&(self.by_rid.len() as u16).to_be_bytes());
        for r in self.by_rid.values() {
            out.extend_from_slice(&r.rid.to_be_bytes());
            out.extend_from_slice(&r.upto.to_bytes());
            out.push(u8::from(r.done) | (u8::from(r.changelog_clean) << 1));
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Retired, RetiredError> {
        let (&version, rest) = b.split_first().ok_or(RetiredError("empty"))?;
        if version != FORMAT {
            return Err(RetiredError("unknown version"));
        }
        let (n, mut rest) = split_u16(rest)?;
        let mut by_rid = BTreeMap::new();
        for _ in 0..n {
            let (rid, after) = split_u16(rest)?;
            let csn_bytes = after.get(..10).ok_or(RetiredError("truncated"))?;
            let upto = Csn::from_bytes(csn_bytes).ok_or(RetiredError("bad CSN"))?;
            let flags = *after.get(10).ok_or(RetiredError("truncated"))?;
            rest = after.get(11..).ok_or(RetiredError("truncated"))?;
            let retirement = Retirement {
                rid,
                upto,
                done: flags & 1 != 0,
                changelog_clean: flags & 2 != 0,
            };
            by_rid.insert(rid, retirement);
        }
        if !rest.is_empty() {
            return Err(RetiredError("trailing bytes"));
        }
        Ok(Retired { by_rid })
    }
}

fn split_u16(b: &[u8]) -> Result<(u16, &[u8]), RetiredError> {
    let two = b.get(..2).ok_or(RetiredError("truncated"))?;
    let n = <[u8; 2]>::try_from(two)
        .map(u16::from_be_bytes)
        .map_err(|_| RetiredError("truncated"))?;
    Ok((n, b.get(2..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(t: u32, rid: u16) -> Csn {
        Csn::new(t, 0, rid, 0)
    }

    fn ruv(csns: &[Csn]) -> Ruv {
        let mut r = Ruv::new("g");
        for &x in csns {
            r.update(x);
        }
        r
    }

    #[test]
    fn merge_is_a_union_keeping_the_larger_upto_and_never_the_own_id() {
        let mut a = Retired::default();
        assert!(a.retire(3, c(10, 3)));
        assert!(!a.retire(3, c(9, 3)), "idempotent, never narrower");
        let (added, refused) = a.merge(&[(3, c(12, 3)), (4, c(5, 4)), (1, c(1, 1))], Some(1));
        assert_eq!(added, vec![4]);
        assert_eq!(refused, Some(1));
        assert_eq!(a.get(3).map(|r| r.upto), Some(c(12, 3)));
        let mut b = Retired::default();
        b.merge(&[(4, c(5, 4))], None);
        b.merge(&[(3, c(12, 3))], None);
        assert_eq!(a.shared(), b.shared(), "order does not matter");
        assert_eq!(Retired::decode(&a.encode()).unwrap(), a);
        for cut in 0..a.encode().len() {
            assert!(Retired::decode(&a.encode()[..cut]).is_err());
        }
    }

    #[test]
    fn changes_after_the_retirement_or_after_finishing_are_refused() {
        let mut r = Retired::default();
        r.retire(3, c(10, 3));
        assert_eq!(r.admit(c(10, 3)), Admission::Apply);
        assert_eq!(r.admit(c(99, 2)), Admission::Apply);
        assert_eq!(
            r.admit(c(11, 3)),
            Admission::AfterRetirement { upto: c(10, 3) }
        );
        let mut local = ruv(&[c(10, 3), c(20, 1)]);
        r.finish(3, &mut local);
        assert_eq!(r.admit(c(9, 3)), Admission::AlreadyRetired);
        assert!(local.max_for(3).is_none());
        assert_eq!(r.finished(), vec![3]);
    }

    #[test]
    fn finishing_waits_for_this_replica_and_every_consumer() {
        let mut r = Retired::default();
        r.retire(3, c(10, 3));
        let behind = ruv(&[c(8, 3)]);
        assert_eq!(
            r.readiness(3, &behind, &[]),
            Readiness::LocalBehind {
                have: Some(c(8, 3)),
                upto: c(10, 3)
            }
        );
        let local = ruv(&[c(10, 3)]);
        let lagging = ConsumerView {
            ruv: Some(behind.clone()),
            finished: None,
        };
        let unknown = ConsumerView::default();
        let caught_up = ConsumerView {
            ruv: Some(local.clone()),
            finished: None,
        };
        let finished_there = ConsumerView {
            ruv: Some(ruv(&[c(50, 1)])),
            finished: Some(vec![3]),
        };
        assert_eq!(
            r.readiness(3, &local, &[caught_up.clone(), lagging]),
            Readiness::ConsumerBehind {
                consumer: 1,
                have: Some(c(8, 3))
            }
        );
        assert!(matches!(
            r.readiness(3, &local, &[unknown]),
            Readiness::ConsumerBehind { consumer: 0, .. }
        ));
        assert_eq!(
            r.readiness(3, &local, &[caught_up, finished_there]),
            Readiness::Ready
        );
        // Retired before it wrote anything: nothing to wait for.
        let mut never = Retired::default();
        never.retire(7, Csn::ZERO);
        assert_eq!(
            never.readiness(7, &Ruv::new("g"), &[ConsumerView::default()]),
            Readiness::Ready
        );
        assert_eq!(r.readiness(9, &local, &[]), Readiness::Finished);
    }
}
