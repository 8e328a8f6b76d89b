//! Latency histograms, error counts and the report (table and JSON).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, 1 µs .. 120 s, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("static histogram bounds are valid")
}

/// Records `us` microseconds, clamping into the histogram's range.
pub fn record(h: &mut Histogram<u64>, us: u64) {
    let v = us.clamp(1, h.high());
    let _ = h.record(v);
}

/// Per-worker statistics, merged at the end.
pub struct Stats {
    pub hist: Histogram<u64>,
    pub ops: u64,
    pub entries: u64,
    pub errors: BTreeMap<String, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hist: new_hist(),
            ops: 0,
            entries: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl Stats {
    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_insert(0) += 1;
    }

    pub fn merge(&mut self, o: &Stats) {
        let _ = self.hist.add(&o.hist);
        self.ops += o.ops;
        self.entries += o.entries;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

pub fn summarize(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency {
            count: 0,
            min_us: 0,
            mean_us: 0.0,
            p50_us: 0,
            p90_us: 0,
            p99_us: 0,
            p999_us: 0,
            max_us: 0,
        };
    }
    Latency {
        count: h.len(),
        min_us: h.min(),
        mean_us: (h.mean() * 10.0).round() / 10.0,
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: String,
    pub url: String,
    pub connections: usize,
    pub threads: usize,
    /// Measured window in seconds (after warm-up).
    pub elapsed_s: f64,
    /// Successful operations in the window.
    pub ops: u64,
    pub ops_per_s: f64,
    pub errors: BTreeMap<String, u64>,
    pub error_total: u64,
    /// Entries returned per search operation (search workloads).
    pub entries_per_op: Option<f64>,
    /// Latency of successful operations (for repl-lag: the writes).
    pub latency: Latency,
    /// repl-lag only: time from the write's acknowledgement by --url to its
    /// visibility on --url2.
    pub repl_lag: Option<Latency>,
    /// repl-lag with several --url2 replicas: each replica's lag (repl_lag
    /// then merges them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repl_lag_per_replica: Option<Vec<(String, Latency)>>,
    /// repl-lag only: the target write rate.
    pub rate: Option<f64>,
    pub client_cpu_user_s: f64,
    pub client_cpu_sys_s: f64,
    /// Generator CPU per operation in microseconds.
    pub client_cpu_us_per_op: f64,
    pub run_id: String,
    pub seed: u64,
}

fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{us}µs")
    }
}

impl Report {
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "{:<12} {:>5} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9}  {}\n",
            "workload", "conns", "ops", "ops/s", "p50", "p99", "p99.9", "max", "errors"
        ));
        let errs = if self.errors.is_empty() {
            "0".to_string()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        s.push_str(&format!(
            "{:<12} {:>5} {:>10} {:>11.1} {:>9} {:>9} {:>9} {:>9}  {}\n",
            self.workload,
            self.connections,
            self.ops,
            self.ops_per_s,
            fmt_us(self.latency.p50_us),
            fmt_us(self.latency.p99_us),
            fmt_us(self.latency.p999_us),
            fmt_us(self.latency.max_us),
            errs
        ));
        if let Some(l) = &self.repl_lag {
            s.push_str(&format!(
                "replication lag ({} samples, target {:.0} writes/s): p50 {} p90 {} p99 {} p99.9 {} max {}\n",
                l.count,
                self.rate.unwrap_or(0.0),
                fmt_us(l.p50_us),
                fmt_us(l.p90_us),
                fmt_us(l.p99_us),
                fmt_us(l.p999_us),
                fmt_us(l.max_us)
            ));
        }
        for (url, l) in self.repl_lag_per_replica.iter().flatten() {
            s.push_str(&format!(
                "  {url}: p50 {} p99 {} max {} ({} samples)\n",
                fmt_us(l.p50_us),
                fmt_us(l.p99_us),
                fmt_us(l.max_us),
                l.count
            ));
        }
        if let Some(e) = self.entries_per_op {
            s.push_str(&format!("entries per op: {e:.2}\n"));
        }
        s.push_str(&format!(
            "window {:.2}s; generator CPU user {:.2}s sys {:.2}s = {:.1}µs/op\n",
            self.elapsed_s,
            self.client_cpu_user_s,
            self.client_cpu_sys_s,
            self.client_cpu_us_per_op
        ));
        s
    }
}

/// (user, sys) CPU seconds of this process so far.
pub fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (0.0, 0.0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut h = new_hist();
        for v in 1..=1000u64 {
            record(&mut h, v);
        }
        let l = summarize(&h);
        assert_eq!(l.count, 1000);
        assert_eq!(l.min_us, 1);
        assert_eq!(l.max_us, 1000);
        assert_eq!(l.p50_us, 500);
        assert_eq!(l.p90_us, 900);
        assert_eq!(l.p99_us, 990);
        assert_eq!(l.p999_us, 999);
        assert!((l.mean_us - 500.5).abs() < 1.0);
    }

    #[test]
    fn clamping_and_empty() {
        let mut h = new_hist();
        assert_eq!(summarize(&h).count, 0);
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        let l = summarize(&h);
        assert_eq!(l.count, 2);
        assert_eq!(l.min_us, 1);
        assert!(l.max_us >= 120_000_000);
    }

    #[test]
    fn merge_stats() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        record(&mut a.hist, 10);
        a.ops = 1;
        a.error("49:invalidCredentials");
        record(&mut b.hist, 20);
        b.ops = 1;
        b.error("49:invalidCredentials");
        b.error("io");
        a.merge(&b);
        assert_eq!(a.ops, 2);
        assert_eq!(a.hist.len(), 2);
        assert_eq!(a.errors["49:invalidCredentials"], 2);
        assert_eq!(a.errors["io"], 1);
    }

    #[test]
    fn cpu_is_positive() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let (u, s) = cpu_times();
        assert!(u + s > 0.0);
    }
}
