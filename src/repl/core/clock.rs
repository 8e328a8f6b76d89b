//! A hybrid logical clock issuing CSNs. The wall time is an argument, so
//! the clock is pure and testable.
//!
//! A CSN is (seconds, sequence, replica id, sub-sequence). The clock
//! issues the wall time when it is ahead of everything seen, and otherwise
//! the largest CSN seen with the sequence number bumped: CSNs never go
//! backwards, a change made after seeing another sorts after it (so the
//! rules' "later" agrees with causality), and a replica whose clock is
//! slow or fast keeps working. Skew is reported, never refused: a hard
//! skew limit (389-ds) stops writes and prevents no corruption.

use crate::model::Csn;

/// Remote CSNs this far ahead of the local wall clock are reported.
pub const SKEW_WARNING_SECS: u32 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlcClock {
    rid: u16,
    last: Csn,
}

/// A remote CSN ahead of the local wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skew {
    pub remote: Csn,
    pub ahead_secs: u32,
}

impl HlcClock {
    /// `last` is the largest CSN issued or seen (persisted across restarts).
    pub fn new(rid: u16, last: Csn) -> HlcClock {
        HlcClock { rid, last }
    }

    /// The replica ID can change when a replica entry is configured over LDAP.
    pub fn set_rid(&mut self, rid: u16) {
        self.rid = rid;
    }

    pub fn rid(&self) -> u16 {
        self.rid
    }

    pub fn last(&self) -> Csn {
        self.last
    }

    /// The next CSN at wall time `wall` (seconds). When the clock stands
    /// still or runs behind what was seen, the sequence carries the order;
    /// when the sequence is exhausted the seconds move one ahead of the
    /// wall. At the very end of the CSN space (year 2106) the last CSN is
    /// repeated rather than wrapping around.
    pub fn now(&mut self, wall: u32) -> Csn {
        let next = if wall > self.last.time {
            Some(Csn::new(wall, 0, self.rid, 0))
        } else if self.last.seq < u16::MAX {
            Some(Csn::new(self.last.time, self.last.seq + 1, self.rid, 0))
        } else {
            self.last
                .time
                .checked_add(1)
                .map(|t| Csn::new(t, 0, self.rid, 0))
        };
        let mut csn = next.unwrap_or(self.last);
        // Same (time, seq) seen from a larger replica id: still sort after it.
        if csn <= self.last {
            csn = self.last;
        }
        self.last = csn;
        csn
    }

    /// Records a CSN received from another replica: later local CSNs sort
    /// after it whatever the local wall clock says. Returns the skew when
    /// the remote CSN is more than [`SKEW_WARNING_SECS`] ahead of `wall`.
    pub fn observe(&mut self, remote: Csn, wall: u32) -> Option<Skew> {
        if remote > self.last {
            self.last = remote;
        }
        let ahead = remote.time.saturating_sub(wall);
        (ahead > SKEW_WARNING_SECS).then_some(Skew {
            remote,
            ahead_secs: ahead,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards_and_passes_what_it_saw() {
        let mut c = HlcClock::new(2, Csn::ZERO);
        let a = c.now(100);
        let b = c.now(100);
        let d = c.now(50); // wall clock stepped back
        assert!(a < b && b < d, "{a} {b} {d}");
        assert_eq!(d.time, 100);
        // A replica a day ahead: reported, followed, never refused.
        let far = Csn::new(100 + 86_400, 3, 9, 0);
        assert_eq!(
            c.observe(far, 100),
            Some(Skew {
                remote: far,
                ahead_secs: 86_400
            })
        );
        let e = c.now(101);
        assert!(e > far && e.rid == 2, "{e}");
        assert_eq!(c.observe(Csn::new(90, 0, 9, 0), 100), None);
    }

    #[test]
    fn sequence_overflow_moves_the_seconds_and_the_end_is_sticky() {
        let mut c = HlcClock::new(1, Csn::new(5, u16::MAX, 1, 0));
        assert_eq!(c.now(5), Csn::new(6, 0, 1, 0));
        let end = Csn::new(u32::MAX, u16::MAX, 1, 0);
        let mut c = HlcClock::new(1, end);
        assert_eq!(c.now(7), end);
        // Seen from a larger replica id at the same (time, seq).
        let mut c = HlcClock::new(1, Csn::ZERO);
        c.observe(Csn::new(10, 4, 7, 0), 10);
        assert!(c.now(10) > Csn::new(10, 4, 7, 0));
    }
}
