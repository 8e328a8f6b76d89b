//! The CSN generator: pure (time is an argument), monotonic, moves past
//! CSNs seen from other replicas, refuses CSNs too far in the future.

use crate::model::Csn;

/// Largest accepted distance of a remote CSN ahead of the local clock.
pub const MAX_CLOCK_SKEW_SECS: u32 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct CsnGenerator {
    rid: u16,
    last: Csn,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("CSN {csn} is {ahead} s ahead of the local clock (limit {MAX_CLOCK_SKEW_SECS} s)")]
pub struct SkewError {
    pub csn: Csn,
    pub ahead: u32,
}

impl CsnGenerator {
    /// `last` is the highest CSN this replica has issued or seen (persisted).
    pub fn new(rid: u16, last: Csn) -> Self {
        CsnGenerator { rid, last }
    }

    /// The replica ID can change when a replica entry is configured over LDAP.
    pub fn set_rid(&mut self, rid: u16) {
        self.rid = rid;
    }

    pub fn last(&self) -> Csn {
        self.last
    }

    /// Next CSN at wall-clock second `now`. When the clock stands still or
    /// goes back, the sequence number carries the order forward.
    pub fn next(&mut self, now: u32) -> Csn {
        let csn = if now > self.last.time {
            Csn::new(now, 0, self.rid, 0)
        } else if self.last.seq == u16::MAX {
            Csn::new(self.last.time + 1, 0, self.rid, 0)
        } else {
            Csn::new(self.last.time, self.last.seq + 1, self.rid, 0)
        };
        self.last = csn;
        csn
    }

    /// Records a CSN received from another replica so later local CSNs sort after it.
    pub fn observe(&mut self, remote: Csn, now: u32) -> Result<(), SkewError> {
        if remote.time > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(SkewError {
                csn: remote,
                ahead: remote.time - now,
            });
        }
        if remote > self.last {
            self.last = Csn::new(remote.time, remote.seq, self.rid, 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_across_clock_steps_and_remote_csns() {
        let mut g = CsnGenerator::new(3, Csn::ZERO);
        let a = g.next(100);
        let b = g.next(100);
        let c = g.next(99); // clock went back
        assert!(a < b && b < c);
        assert_eq!(c.time, 100);
        g.observe(Csn::new(200, 7, 9, 0), 150).unwrap();
        let d = g.next(150);
        assert!(d > Csn::new(200, 7, 9, 0) && d.rid == 3);
        assert!(g
            .observe(Csn::new(150 + MAX_CLOCK_SKEW_SECS + 1, 0, 9, 0), 150)
            .is_err());
        let mut g = CsnGenerator::new(1, Csn::new(5, u16::MAX, 1, 0));
        assert_eq!(g.next(5), Csn::new(6, 0, 1, 0));
    }
}
