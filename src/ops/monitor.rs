//! What the server reports about itself: the Prometheus / OpenMetrics text
//! of the metrics endpoint and the cn=monitor entries, both from the same
//! counters (stats.rs) and the directory's replication report. No secrets:
//! counts, times, names of agreements and suffixes.

use super::stats::{Stats, BUCKETS, KINDS};
use super::Shared;
use crate::directory::repl::AgreementReport;
use crate::model::Dn;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Conflict counts are a search per suffix: computed at most this often.
const CONFLICTS_TTL: Duration = Duration::from_secs(60);

/// Conflict entries per suffix, and when they were counted.
type ConflictCache = Option<(Instant, Vec<(String, u64)>)>;

static CONFLICTS: Mutex<ConflictCache> = Mutex::new(None);

/// Conflict and glue entries per replicated suffix (cached).
pub fn conflict_counts(shared: &Shared) -> Vec<(String, u64)> {
    if let Ok(g) = CONFLICTS.lock() {
        if let Some((at, v)) = g.as_ref() {
            if at.elapsed() < CONFLICTS_TTL {
                return v.clone();
            }
        }
    }
    let dir = &shared.dir;
    let suffixes: Vec<Dn> = dir.replicas().into_iter().map(|r| r.suffix).collect();
    let v: Vec<(String, u64)> = suffixes
        .iter()
        .map(|s| (s.to_string(), dir.conflict_count(s).unwrap_or(0)))
        .collect();
    if let Ok(mut g) = CONFLICTS.lock() {
        *g = Some((Instant::now(), v.clone()));
    }
    v
}

/// The HELP and TYPE lines of a metric family.
fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics in the Prometheus text format (version 0.0.4), which
/// OpenMetrics scrapers read too.
pub fn prometheus_text(shared: &Shared, stats: &Stats) -> String {
    let mut o = String::new();
    let uptime = stats.started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    head(
        &mut o,
        "ferrodir_up_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(o, "ferrodir_up_seconds {uptime}");
    head(
        &mut o,
        "ferrodir_connections",
        "gauge",
        "Open client connections.",
    );
    let _ = writeln!(
        o,
        "ferrodir_connections {}",
        stats.connections_open.load(Ordering::Relaxed)
    );
    head(
        &mut o,
        "ferrodir_connections_total",
        "counter",
        "Connections accepted since start.",
    );
    let _ = writeln!(
        o,
        "ferrodir_connections_total {}",
        stats.connections_total.load(Ordering::Relaxed)
    );
    head(
        &mut o,
        "ferrodir_entries_sent_total",
        "counter",
        "Search result entries sent.",
    );
    let _ = writeln!(
        o,
        "ferrodir_entries_sent_total {}",
        stats.entries_sent.load(Ordering::Relaxed)
    );
    head(
        &mut o,
        "ferrodir_operations_total",
        "counter",
        "Operations finished, by type.",
    );
    for (kind, op) in KINDS.iter().zip(&stats.ops) {
        let _ = writeln!(
            o,
            "ferrodir_operations_total{{type=\"{kind}\"}} {}",
            op.count.load(Ordering::Relaxed)
        );
    }
    head(
        &mut o,
        "ferrodir_operation_errors_total",
        "counter",
        "Operations finished with a result other than success, by type.",
    );
    for (kind, op) in KINDS.iter().zip(&stats.ops) {
        let _ = writeln!(
            o,
            "ferrodir_operation_errors_total{{type=\"{kind}\"}} {}",
            op.errors.load(Ordering::Relaxed)
        );
    }
    head(
        &mut o,
        "ferrodir_operation_duration_seconds",
        "histogram",
        "Time from request to result, by type.",
    );
    for (kind, op) in KINDS.iter().zip(&stats.ops) {
        let mut cumulative = 0u64;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += op.buckets.get(i).map_or(0, |b| b.load(Ordering::Relaxed));
            let _ = writeln!(o, "ferrodir_operation_duration_seconds_bucket{{type=\"{kind}\",le=\"{bound}\"}} {cumulative}");
        }
        let count = op.count.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "ferrodir_operation_duration_seconds_bucket{{type=\"{kind}\",le=\"+Inf\"}} {count}"
        );
        let sum = op.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            o,
            "ferrodir_operation_duration_seconds_sum{{type=\"{kind}\"}} {sum}"
        );
        let _ = writeln!(
            o,
            "ferrodir_operation_duration_seconds_count{{type=\"{kind}\"}} {count}"
        );
    }
    if let Ok(n) = shared.dir.entry_count() {
        head(
            &mut o,
            "ferrodir_entries",
            "gauge",
            "Entries in the store, tombstones included.",
        );
        let _ = writeln!(o, "ferrodir_entries {n}");
    }
    let report: Vec<AgreementReport> = shared.dir.replication_report().unwrap_or_default();
    if !report.is_empty() {
        head(
            &mut o,
            "ferrodir_replication_lag_seconds",
            "gauge",
            "Seconds since the oldest change the agreement's consumer lacks was made (0: in sync).",
        );
        for a in &report {
            if let Some(lag) = a.lag_seconds {
                let _ = writeln!(o, "ferrodir_replication_lag_seconds{{agreement=\"{}\",consumer=\"{}\",suffix=\"{}\"}} {lag}", label(&a.name), label(&a.consumer), label(&a.suffix.to_string()));
            }
        }
        head(
            &mut o,
            "ferrodir_replication_pending_changes",
            "gauge",
            "Changes the agreement's consumer lacks (counted up to 100000).",
        );
        for a in &report {
            let _ = writeln!(o, "ferrodir_replication_pending_changes{{agreement=\"{}\",consumer=\"{}\",suffix=\"{}\"}} {}", label(&a.name), label(&a.consumer), label(&a.suffix.to_string()), a.pending);
        }
        head(
            &mut o,
            "ferrodir_replication_changes_sent_total",
            "counter",
            "Changes sent by the agreement since start.",
        );
        for a in &report {
            let _ = writeln!(
                o,
                "ferrodir_replication_changes_sent_total{{agreement=\"{}\"}} {}",
                label(&a.name),
                a.changes_sent
            );
        }
        head(
            &mut o,
            "ferrodir_replication_agreement_up",
            "gauge",
            "1 when the agreement is enabled and its last session succeeded.",
        );
        for a in &report {
            let up = a.enabled && !a.state.starts_with("error");
            let _ = writeln!(
                o,
                "ferrodir_replication_agreement_up{{agreement=\"{}\"}} {}",
                label(&a.name),
                u8::from(up)
            );
        }
    }
    let conflicts = conflict_counts(shared);
    if !conflicts.is_empty() {
        head(
            &mut o,
            "ferrodir_replication_conflict_entries",
            "gauge",
            "Conflict and glue entries in the suffix (refreshed at most every 60 s).",
        );
        for (suffix, n) in conflicts {
            let _ = writeln!(
                o,
                "ferrodir_replication_conflict_entries{{suffix=\"{}\"}} {n}",
                label(&suffix)
            );
        }
    }
    o
}

use super::rootdse::SyntheticAttr;
use crate::directory::{Identity, Scope};

fn user(name: &'static str, values: Vec<String>) -> SyntheticAttr {
    SyntheticAttr {
        name,
        values: values.into_iter().map(String::into_bytes).collect(),
        operational: false,
    }
}

fn one(name: &'static str, value: impl ToString) -> SyntheticAttr {
    user(name, vec![value.to_string()])
}

fn generalized(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::directory::generalized_time(secs)
}

fn container(cn: &str, classes: &[&str]) -> Vec<SyntheticAttr> {
    let mut oc = vec!["top".to_string()];
    oc.extend(classes.iter().map(|c| c.to_string()));
    vec![user("objectClass", oc), one("cn", cn)]
}

/// Every cn=monitor entry, parents first.
fn tree(shared: &Shared) -> Vec<(String, Vec<SyntheticAttr>)> {
    let stats = &shared.stats;
    let now = std::time::SystemTime::now();
    let mut monitor = container("monitor", &["extensibleObject"]);
    monitor.extend([
        one("version", format!("ferrodir {}", env!("CARGO_PKG_VERSION"))),
        one("startTime", generalized(stats.started)),
        one("currentTime", generalized(now)),
        one(
            "threads",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        one(
            "currentConnections",
            stats.connections_open.load(Ordering::Relaxed),
        ),
        one(
            "totalConnections",
            stats.connections_total.load(Ordering::Relaxed),
        ),
        one("opsCompleted", stats.total_operations()),
        one("entriesSent", stats.entries_sent.load(Ordering::Relaxed)),
        one("nBackends", shared.dir.config().suffixes.len()),
    ]);
    let mut out = vec![("cn=monitor".to_string(), monitor)];

    let mut ops = container("operations", &["extensibleObject"]);
    let line = |kind: &str, op: &super::stats::OpStats| -> String {
        let count = op.count.load(Ordering::Relaxed);
        let micros = op.micros.load(Ordering::Relaxed);
        let avg = micros.checked_div(count).unwrap_or(0);
        format!(
            "{kind} completed={count} errors={} avgMicros={avg}",
            op.errors.load(Ordering::Relaxed)
        )
    };
    ops.push(user(
        "operation",
        KINDS
            .iter()
            .zip(&stats.ops)
            .map(|(k, op)| line(k, op))
            .collect(),
    ));
    out.push(("cn=operations,cn=monitor".to_string(), ops));

    let mut backends = container("backends", &["extensibleObject"]);
    backends.push(user(
        "namingContexts",
        shared
            .dir
            .config()
            .suffixes
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ));
    if let Ok(n) = shared.dir.entry_count() {
        backends.push(one("entries", n));
    }
    out.push(("cn=backends,cn=monitor".to_string(), backends));

    let mut repl = container("replication", &["extensibleObject"]);
    repl.push(user(
        "conflictEntries",
        conflict_counts(shared)
            .into_iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect(),
    ));
    out.push(("cn=replication,cn=monitor".to_string(), repl));
    for a in shared.dir.replication_report().unwrap_or_default() {
        let mut e = container(&a.name, &["extensibleObject"]);
        e.extend([
            one("nsDS5ReplicaRoot", &a.suffix),
            one("consumer", &a.consumer),
            one("state", &a.state),
            one("changesPending", a.pending),
            one("changesSent", a.changes_sent),
            one("agreement", &a.dn),
        ]);
        if let Some(lag) = a.lag_seconds {
            e.push(one("lagSeconds", lag));
        }
        let rdn = crate::model::Rdn::single("cn", a.name.clone());
        out.push((format!("{rdn},cn=replication,cn=monitor"), e));
    }
    // RFC 4533 consumers (slaves, OpenLDAP consumers) served now.
    for f in super::sync::followers(shared) {
        let name = format!("sync-{}", f.id);
        let mut e = container(&name, &["extensibleObject"]);
        e.extend([
            one("nsDS5ReplicaRoot", &f.suffix),
            one(
                "consumer",
                if f.who.is_empty() {
                    "anonymous"
                } else {
                    &f.who
                },
            ),
            one("mode", f.mode),
            one("state", f.state),
            one("since", generalized(f.since)),
            one("lagSeconds", f.lag_seconds),
            one("inSync", if f.behind { "FALSE" } else { "TRUE" }),
            one("entriesSent", f.entries),
        ]);
        if let Some(csn) = &f.last_sent {
            e.push(one("contextCSN", csn));
        }
        out.push((format!("cn={name},cn=replication,cn=monitor"), e));
    }
    out
}

/// The cn=monitor entries a search selects: Some when `base` is in that
/// tree and the requester is the root DN (others find no such entry).
pub fn search(
    shared: &Shared,
    who: &Identity,
    base: &Dn,
    scope: Scope,
) -> Option<Vec<(String, Vec<SyntheticAttr>)>> {
    // Most searches are elsewhere: their base's top RDN says so at the
    // cost of one RDN's normalisation.
    if shared.dir.schema().normalize_rdn(base.rdns.last()?) != "cn=monitor" {
        return None;
    }
    let monitor = Dn::parse("cn=monitor").ok()?;
    let norm = |d: &Dn| shared.dir.normalize_dn(d);
    let (base_norm, monitor_norm) = (norm(base), norm(&monitor));
    if base_norm != monitor_norm && !base_norm.ends_with(&format!(",{monitor_norm}")) {
        return None;
    }
    if !who.root {
        return None;
    }
    let depth = base.rdns.len();
    let found: Vec<(String, Vec<SyntheticAttr>)> = tree(shared)
        .into_iter()
        .filter(|(dn, _)| {
            let Ok(d) = Dn::parse(dn) else {
                return false;
            };
            let n = norm(&d);
            let below = n == base_norm || n.ends_with(&format!(",{base_norm}"));
            match scope {
                Scope::Base => n == base_norm,
                Scope::One => below && d.rdns.len() == depth + 1,
                Scope::Sub => below,
            }
        })
        .collect();
    if found.is_empty() && scope == Scope::Base {
        return None;
    }
    Some(found)
}
