//! Counters of the server's work, shared by the connections (which count)
//! and by what reports them: cn=monitor and the metrics endpoint. Plain
//! atomics: counting costs a few relaxed increments per operation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Operation kinds as the access log names them.
pub const KINDS: [&str; 10] = [
    "BIND", "UNBIND", "SRCH", "MOD", "ADD", "DEL", "MODRDN", "CMP", "ABANDON", "EXT",
];

/// Upper bounds (seconds) of the latency histogram's buckets; the last
/// bucket is everything slower.
pub const BUCKETS: [f64; 10] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0,
];

#[derive(Debug, Default)]
pub struct OpStats {
    pub count: AtomicU64,
    pub errors: AtomicU64,
    /// Microseconds spent, summed.
    pub micros: AtomicU64,
    /// Cumulative counts are computed when read; each slot counts the
    /// operations that fell in it (BUCKETS.len() + 1 slots).
    pub buckets: [AtomicU64; 11],
}

#[derive(Debug)]
pub struct Stats {
    pub started: std::time::SystemTime,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub entries_sent: AtomicU64,
    pub ops: [OpStats; 10],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: std::time::SystemTime::now(),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            entries_sent: AtomicU64::new(0),
            ops: Default::default(),
        }
    }
}

impl Stats {
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        let _ = self
            .connections_open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// One finished operation of `kind` (an access log kind).
    pub fn operation(&self, kind: &str, code: i32, entries: usize, took: Duration) {
        let Some(i) = KINDS.iter().position(|k| *k == kind) else {
            return;
        };
        let Some(op) = self.ops.get(i) else {
            return;
        };
        op.count.fetch_add(1, Ordering::Relaxed);
        if code != 0 {
            op.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        op.micros.fetch_add(micros, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        if let Some(b) = op.buckets.get(slot) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.entries_sent
            .fetch_add(entries as u64, Ordering::Relaxed);
    }

    /// Operations of every kind.
    pub fn total_operations(&self) -> u64 {
        self.ops
            .iter()
            .map(|o| o.count.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_land_in_their_kind_and_bucket() {
        let s = Stats::default();
        s.operation("SRCH", 0, 3, Duration::from_micros(300));
        s.operation("SRCH", 32, 0, Duration::from_secs(9));
        s.operation("BOGUS", 0, 1, Duration::from_micros(1));
        let srch = &s.ops[2];
        assert_eq!(srch.count.load(Ordering::Relaxed), 2);
        assert_eq!(srch.errors.load(Ordering::Relaxed), 1);
        assert_eq!(
            srch.buckets[1].load(Ordering::Relaxed),
            1,
            "0.3 ms <= 0.5 ms"
        );
        assert_eq!(srch.buckets[10].load(Ordering::Relaxed), 1, "9 s > 5 s");
        assert_eq!(s.entries_sent.load(Ordering::Relaxed), 3);
        assert_eq!(s.total_operations(), 2);
        s.connection_opened();
        s.connection_closed();
        s.connection_closed();
        assert_eq!(s.connections_open.load(Ordering::Relaxed), 0);
        assert_eq!(s.connections_total.load(Ordering::Relaxed), 1);
    }
}
