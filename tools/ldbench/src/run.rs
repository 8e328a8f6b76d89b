//! The workloads: closed-loop workers (one outstanding operation per
//! connection) for all but `repl-lag`, which is open-loop at a fixed rate.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapFilter, LdapSearchScope, LdapSubstringFilter};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::gen::{user_dn, user_password};
use crate::ldap::{code_name, parse_url, Conn};
use crate::report::{cpu_times, record, summarize, Report, Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Simple bind as a random uid=userN with passN (rebind on one connection).
    Bind,
    /// (uid=userN) subtree search from --base, attributes cn, mail, uidNumber.
    SearchEq,
    /// (cn=User K*) subtree search: about 11 entries (K, K0..K9).
    SearchSub,
    /// One-level search under ou=people with paged results, --pages pages.
    SearchPage,
    /// Adds uid=bench-RUNID-N,ou=people entries.
    Add,
    /// Replaces description of a random existing user.
    Modify,
    /// Deletes uid=bench-RUNID-N entries made by `add` (same --run-id) or
    /// pre-created outside the timed window.
    Delete,
    /// search-eq with a fraction --write-ratio of modify.
    Mixed,
    /// Writes on --url at --rate/s, watches --url2; histogram of the lag.
    ReplLag,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Bind => "bind",
            Workload::SearchEq => "search-eq",
            Workload::SearchSub => "search-sub",
            Workload::SearchPage => "search-page",
            Workload::Add => "add",
            Workload::Modify => "modify",
            Workload::Delete => "delete",
            Workload::Mixed => "mixed",
            Workload::ReplLag => "repl-lag",
        }
    }
    fn writes(self) -> bool {
        matches!(
            self,
            Workload::Add
                | Workload::Modify
                | Workload::Delete
                | Workload::Mixed
                | Workload::ReplLag
        )
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub url: String,
    pub url2: Option<String>,
    pub workload: Workload,
    pub connections: usize,
    pub duration: Option<f64>,
    pub ops: Option<u64>,
    pub warmup: f64,
    pub seed: u64,
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    pub entries: u64,
    pub base: String,
    pub run_id: Option<String>,
    pub write_ratio: f64,
    pub page_size: i64,
    pub pages: u32,
    pub rate: f64,
    pub poll_interval_ms: u64,
    pub precreate: Option<u64>,
    pub op_timeout: f64,
    pub threads: usize,
    pub quiet: bool,
}

struct Shared {
    o: RunOptions,
    workload: Workload,
    addr: String,
    run_id: String,
    measure_start: Instant,
    deadline: Option<Instant>,
    /// Operations left to start in the measured window (ops mode).
    budget: Option<AtomicI64>,
    /// Next add/delete sequence number.
    seq: AtomicU64,
    /// For delete: the number of entries available.
    seq_limit: u64,
    /// Modify counter (values differ each time).
    mods: AtomicU64,
    first_error: Mutex<bool>,
}

enum OpOutcome {
    Done {
        code: i64,
        entries: u64,
    },
    /// Nothing left to do (delete ran out of entries).
    Exhausted,
}

fn people(base: &str) -> String {
    format!("ou=people,{base}")
}

fn bench_dn(run_id: &str, n: u64, base: &str) -> String {
    format!("uid=bench-{run_id}-{n},ou=people,{base}")
}

/// A pseudo-unique run id: hex seconds+nanos.
pub fn default_run_id() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}{:05x}", d.as_secs() & 0xffff_ffff, d.subsec_micros())
}

/// Prefix K of the search-sub filter (cn=User K*): K in [N/100, N/10] so
/// that K, K0..K9 exist (about 11 entries) and K00.. mostly do not.
pub fn sub_prefix(rng: &mut StdRng, entries: u64) -> u64 {
    let hi = (entries / 10).max(1);
    let lo = (entries / 100).clamp(1, hi);
    rng.gen_range(lo..=hi)
}

async fn connect(sh: &Shared, bind: bool) -> Result<Conn> {
    let to = Duration::from_secs_f64(sh.o.op_timeout);
    let mut c = Conn::connect(&sh.addr, to).await?;
    if bind {
        if let (Some(dn), Some(pw)) = (&sh.o.bind_dn, &sh.o.bind_password) {
            let code = tokio::time::timeout(to, c.simple_bind(dn, pw))
                .await
                .map_err(|_| anyhow::anyhow!("bind timed out"))??;
            if code != 0 {
                bail!("bind as {dn} failed: {}", code_name(code));
            }
        }
    }
    Ok(c)
}

async fn search_eq(c: &mut Conn, sh: &Shared, rng: &mut StdRng) -> Result<OpOutcome> {
    let i = rng.gen_range(1..=sh.o.entries.max(1));
    let r = c
        .search(
            &sh.o.base,
            LdapSearchScope::Subtree,
            LdapFilter::Equality("uid".into(), format!("user{i}")),
            &["cn", "mail", "uidNumber"],
            vec![],
        )
        .await?;
    Ok(OpOutcome::Done {
        code: r.code,
        entries: r.entries,
    })
}

async fn modify(c: &mut Conn, sh: &Shared, rng: &mut StdRng) -> Result<OpOutcome> {
    let i = rng.gen_range(1..=sh.o.entries.max(1));
    let m = sh.mods.fetch_add(1, Ordering::Relaxed);
    let code = c
        .modify_replace(
            user_dn(i, &sh.o.base),
            "description",
            format!("modified by ldbench run {} #{m}", sh.run_id),
        )
        .await?;
    Ok(OpOutcome::Done { code, entries: 0 })
}

async fn do_op(c: &mut Conn, sh: &Shared, rng: &mut StdRng) -> Result<OpOutcome> {
    match sh.workload {
        Workload::Bind => {
            let i = rng.gen_range(1..=sh.o.entries.max(1));
            let code = c
                .simple_bind(&user_dn(i, &sh.o.base), &user_password(i))
                .await?;
            Ok(OpOutcome::Done { code, entries: 0 })
        }
        Workload::SearchEq => search_eq(c, sh, rng).await,
        Workload::SearchSub => {
            let k = sub_prefix(rng, sh.o.entries);
            let r = c
                .search(
                    &sh.o.base,
                    LdapSearchScope::Subtree,
                    LdapFilter::Substring(
                        "cn".into(),
                        LdapSubstringFilter {
                            initial: Some(format!("User {k}")),
                            any: vec![],
                            final_: None,
                        },
                    ),
                    &["cn", "mail"],
                    vec![],
                )
                .await?;
            Ok(OpOutcome::Done {
                code: r.code,
                entries: r.entries,
            })
        }
        Workload::SearchPage => {
            let base = people(&sh.o.base);
            let mut cookie = Vec::new();
            let mut entries = 0;
            for _ in 0..sh.o.pages.max(1) {
                let r = c
                    .search(
                        &base,
                        LdapSearchScope::OneLevel,
                        LdapFilter::Equality("objectClass".into(), "inetOrgPerson".into()),
                        &[],
                        vec![LdapControl::SimplePagedResults {
                            size: sh.o.page_size,
                            cookie: std::mem::take(&mut cookie),
                        }],
                    )
                    .await?;
                entries += r.entries;
                if r.code != 0 {
                    return Ok(OpOutcome::Done {
                        code: r.code,
                        entries,
                    });
                }
                let next = r.ctrls.into_iter().find_map(|c| match c {
                    LdapControl::SimplePagedResults { cookie, .. } => Some(cookie),
                    _ => None,
                });
                match next {
                    Some(ck) if !ck.is_empty() => cookie = ck,
                    Some(_) => break,
                    None => bail!("server returned no paged results control"),
                }
            }
            // An unfinished paged search is left to the server: the next op
            // starts a new one (no cookie) on the same connection.
            Ok(OpOutcome::Done { code: 0, entries })
        }
        Workload::Add => {
            let n = sh.seq.fetch_add(1, Ordering::Relaxed);
            let uid = format!("bench-{}-{n}", sh.run_id);
            let code = c
                .add(
                    bench_dn(&sh.run_id, n, &sh.o.base),
                    vec![
                        (
                            "objectClass",
                            vec![
                                "top".into(),
                                "person".into(),
                                "organizationalPerson".into(),
                                "inetOrgPerson".into(),
                            ],
                        ),
                        ("uid", vec![uid.clone()]),
                        ("cn", vec![format!("Bench {} {n}", sh.run_id)]),
                        ("sn", vec!["Bench".into()]),
                        ("mail", vec![format!("{uid}@example.com")]),
                        (
                            "description",
                            vec![format!("added by ldbench {}", sh.run_id)],
                        ),
                    ],
                )
                .await?;
            Ok(OpOutcome::Done { code, entries: 0 })
        }
        Workload::Modify => modify(c, sh, rng).await,
        Workload::Delete => {
            let n = sh.seq.fetch_add(1, Ordering::Relaxed);
            if n >= sh.seq_limit {
                return Ok(OpOutcome::Exhausted);
            }
            let code = c.delete(bench_dn(&sh.run_id, n, &sh.o.base)).await?;
            Ok(OpOutcome::Done { code, entries: 0 })
        }
        Workload::Mixed => {
            if rng.gen_bool(sh.o.write_ratio.clamp(0.0, 1.0)) {
                modify(c, sh, rng).await
            } else {
                search_eq(c, sh, rng).await
            }
        }
        Workload::ReplLag => bail!("repl-lag is not a closed-loop workload"),
    }
}

fn note_error(sh: &Shared, what: &str) {
    if sh.o.quiet {
        return;
    }
    if let Ok(mut first) = sh.first_error.lock() {
        if !*first {
            *first = true;
            eprintln!("ldbench: first error: {what} (further errors are only counted)");
        }
    }
}

async fn worker(sh: Arc<Shared>, idx: usize) -> Stats {
    let mut st = Stats::default();
    let mut rng = StdRng::seed_from_u64(
        sh.o.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(idx as u64 + 1),
    );
    let mut conn: Option<Conn> = None;
    let op_timeout = Duration::from_secs_f64(sh.o.op_timeout);
    let bind = sh.workload != Workload::Bind;
    loop {
        let now = Instant::now();
        if matches!(sh.deadline, Some(d) if now >= d) {
            break;
        }
        let measuring = now >= sh.measure_start;
        if measuring {
            if let Some(b) = &sh.budget {
                if b.fetch_sub(1, Ordering::Relaxed) <= 0 {
                    break;
                }
            }
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&sh, bind).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    if measuring {
                        st.error("connect");
                    }
                    note_error(&sh, &format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let t0 = Instant::now();
        let r = tokio::time::timeout(op_timeout, do_op(c, &sh, &mut rng)).await;
        let us = t0.elapsed().as_micros() as u64;
        let counted = t0 >= sh.measure_start;
        match r {
            Ok(Ok(OpOutcome::Done { code: 0, entries })) => {
                if counted {
                    if entries == 0 && sh.workload == Workload::SearchEq {
                        st.error("no-entry");
                    } else {
                        record(&mut st.hist, us);
                        st.ops += 1;
                        st.entries += entries;
                    }
                }
            }
            Ok(Ok(OpOutcome::Done { code, .. })) => {
                if counted {
                    st.error(code_name(code));
                }
                note_error(&sh, &format!("result {}", code_name(code)));
            }
            Ok(Ok(OpOutcome::Exhausted)) => break,
            Ok(Err(e)) => {
                if counted {
                    st.error("io");
                }
                note_error(&sh, &format!("{e:#}"));
                conn = None;
            }
            Err(_) => {
                if counted {
                    st.error("timeout");
                }
                note_error(&sh, "operation timed out");
                conn = None;
            }
        }
    }
    if let Some(c) = conn {
        let _ = tokio::time::timeout(Duration::from_millis(200), c.unbind()).await;
    }
    st
}

async fn closed_loop(
    o: &RunOptions,
    workload: Workload,
    run_id: &str,
    seq_limit: u64,
    ops: Option<u64>,
    duration: Option<f64>,
    warmup: f64,
) -> Result<(Stats, f64, (f64, f64))> {
    let addr = parse_url(&o.url)?;
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(warmup.max(0.0));
    let sh = Arc::new(Shared {
        o: o.clone(),
        workload,
        addr,
        run_id: run_id.to_string(),
        measure_start,
        deadline: duration.map(|d| measure_start + Duration::from_secs_f64(d.max(0.0))),
        budget: ops.map(|n| AtomicI64::new(n.min(i64::MAX as u64) as i64)),
        seq: AtomicU64::new(0),
        seq_limit,
        mods: AtomicU64::new(0),
        first_error: Mutex::new(false),
    });
    let handles: Vec<_> = (0..o.connections.max(1))
        .map(|i| tokio::spawn(worker(sh.clone(), i)))
        .collect();
    tokio::time::sleep_until(measure_start.into()).await;
    let cpu0 = cpu_times();
    let t0 = Instant::now();
    let mut total = Stats::default();
    for h in handles {
        match h.await {
            Ok(st) => total.merge(&st),
            Err(e) => total.error(format!("worker-failed: {e}")),
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_times();
    Ok((total, elapsed, (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1)))
}

fn make_report(o: &RunOptions, run_id: &str, st: &Stats, elapsed: f64, cpu: (f64, f64)) -> Report {
    let ops = st.ops;
    let search = matches!(
        o.workload,
        Workload::SearchEq | Workload::SearchSub | Workload::SearchPage
    );
    Report {
        workload: o.workload.name().to_string(),
        url: o.url.clone(),
        connections: o.connections,
        threads: o.threads,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        ops,
        ops_per_s: if elapsed > 0.0 {
            ((ops as f64 / elapsed) * 10.0).round() / 10.0
        } else {
            0.0
        },
        error_total: st.errors.values().sum(),
        errors: st.errors.clone(),
        entries_per_op: (search && ops > 0).then(|| st.entries as f64 / ops as f64),
        latency: summarize(&st.hist),
        repl_lag: None,
        repl_lag_per_replica: None,
        rate: None,
        client_cpu_user_s: (cpu.0 * 1000.0).round() / 1000.0,
        client_cpu_sys_s: (cpu.1 * 1000.0).round() / 1000.0,
        client_cpu_us_per_op: if ops > 0 {
            (((cpu.0 + cpu.1) * 1e6 / ops as f64) * 10.0).round() / 10.0
        } else {
            0.0
        },
        run_id: run_id.to_string(),
        seed: o.seed,
    }
}

pub async fn run(o: RunOptions) -> Result<Report> {
    if o.duration.is_none() && o.ops.is_none() {
        bail!("give --duration SECS or --ops N");
    }
    if o.workload.writes() && o.bind_dn.is_none() && !o.quiet {
        eprintln!(
            "ldbench: warning: write workload without --bind-dn: the server will likely refuse"
        );
    }
    if o.workload == Workload::ReplLag {
        return repl_lag(o).await;
    }
    let given_run_id = o.run_id.clone();
    let run_id = given_run_id.clone().unwrap_or_else(default_run_id);
    let mut seq_limit = u64::MAX;
    if o.workload == Workload::Delete {
        if given_run_id.is_some() {
            // entries made by an earlier `add` run with the same --run-id
            seq_limit = o.ops.unwrap_or(u64::MAX);
        } else {
            let n = o.precreate.or(o.ops).unwrap_or(1000);
            if !o.quiet {
                eprintln!("ldbench: pre-creating {n} entries to delete (run id {run_id}, untimed)");
            }
            let (st, _, _) =
                closed_loop(&o, Workload::Add, &run_id, u64::MAX, Some(n), None, 0.0).await?;
            if st.ops < n && !o.quiet {
                eprintln!(
                    "ldbench: only {} of {n} pre-created entries were added: {:?}",
                    st.ops, st.errors
                );
            }
            seq_limit = n;
        }
    }
    let (st, elapsed, cpu) = closed_loop(
        &o, o.workload, &run_id, seq_limit, o.ops, o.duration, o.warmup,
    )
    .await?;
    Ok(make_report(&o, &run_id, &st, elapsed, cpu))
}

/// Pending writes of one marker: (sequence, scheduled time, ack time).
type Pending = VecDeque<(u64, Instant, Option<Instant>)>;

fn marker_uid(run_id: &str, k: usize) -> String {
    format!("ldbench-lag-{run_id}-{k}")
}

fn marker_filter(run_id: &str, k: usize) -> LdapFilter {
    LdapFilter::Or(
        (0..k)
            .map(|i| LdapFilter::Equality("uid".into(), marker_uid(run_id, i)))
            .collect(),
    )
}

/// Reads the markers on `c`: Vec of (marker index, sequence seen).
async fn read_markers(
    c: &mut Conn,
    o: &RunOptions,
    run_id: &str,
    k: usize,
) -> Result<Vec<(usize, u64)>> {
    let (code, entries) = c
        .search_entries(
            &people(&o.base),
            LdapSearchScope::OneLevel,
            marker_filter(run_id, k),
            &["uid", "description"],
        )
        .await?;
    if code != 0 {
        bail!("marker search failed: {}", code_name(code));
    }
    let mut out = Vec::new();
    for e in entries {
        let mut idx = None;
        let mut seq = 0;
        for a in &e.attributes {
            let Some(v) = a.vals.first() else { continue };
            let v = String::from_utf8_lossy(v);
            if a.atype.eq_ignore_ascii_case("uid") {
                idx = v.rsplit('-').next().and_then(|s| s.parse::<usize>().ok());
            } else if a.atype.eq_ignore_ascii_case("description") {
                seq = v
                    .strip_prefix("ldbench-lag ")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        if let Some(i) = idx {
            if i < k {
                out.push((i, seq));
            }
        }
    }
    Ok(out)
}

async fn repl_lag(o: RunOptions) -> Result<Report> {
    let Some(url2) = o.url2.clone() else {
        bail!("repl-lag needs --url2 (the replica to watch)");
    };
    // Several replicas (comma-separated): one watcher each, every write
    // tracked per replica, so each replica gets its own lag histogram.
    let replicas: Vec<String> = url2
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if replicas.is_empty() {
        bail!("--url2 names no replica");
    }
    let Some(duration) = o.duration else {
        bail!("repl-lag needs --duration");
    };
    if o.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let run_id = o.run_id.clone().unwrap_or_else(default_run_id);
    let k = o.connections.max(1);
    let to = Duration::from_secs_f64(o.op_timeout);
    let sh1 = Shared {
        o: o.clone(),
        workload: Workload::ReplLag,
        addr: parse_url(&o.url)?,
        run_id: run_id.clone(),
        measure_start: Instant::now(),
        deadline: None,
        budget: None,
        seq: AtomicU64::new(0),
        seq_limit: 0,
        mods: AtomicU64::new(0),
        first_error: Mutex::new(false),
    };
    let mut sh2s = Vec::new();
    for r in &replicas {
        sh2s.push(Shared {
            addr: parse_url(r)?,
            o: o.clone(),
            workload: Workload::ReplLag,
            run_id: run_id.clone(),
            measure_start: Instant::now(),
            deadline: None,
            budget: None,
            seq: AtomicU64::new(0),
            seq_limit: 0,
            mods: AtomicU64::new(0),
            first_error: Mutex::new(false),
        });
    }

    // Create the markers on --url and wait for them on --url2.
    let mut c1 = connect(&sh1, true).await?;
    for i in 0..k {
        let uid = marker_uid(&run_id, i);
        let code = c1
            .add(
                format!("uid={uid},{}", people(&o.base)),
                vec![
                    (
                        "objectClass",
                        vec![
                            "top".into(),
                            "person".into(),
                            "organizationalPerson".into(),
                            "inetOrgPerson".into(),
                        ],
                    ),
                    ("uid", vec![uid.clone()]),
                    ("cn", vec![uid.clone()]),
                    ("sn", vec!["ldbench".into()]),
                    ("description", vec!["ldbench-lag 0".into()]),
                ],
            )
            .await?;
        if code != 0 && code != 68 {
            bail!("creating marker {uid} on --url failed: {}", code_name(code));
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), c1.unbind()).await;
    let mut c2s = Vec::new();
    for (sh2, r) in sh2s.iter().zip(&replicas) {
        let mut c2 = connect(sh2, true).await?;
        let wait_until = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = read_markers(&mut c2, &o, &run_id, k).await?;
            if seen.len() == k {
                break;
            }
            if Instant::now() > wait_until {
                bail!(
                    "markers did not appear on {r} within 30 s ({} of {k}): is it replicating from --url?",
                    seen.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c2s.push(c2);
    }

    // Per replica, per marker: the writes that replica has not shown yet.
    let pendings: Vec<Arc<Vec<Mutex<Pending>>>> = replicas
        .iter()
        .map(|_| Arc::new((0..k).map(|_| Mutex::new(VecDeque::new())).collect()))
        .collect();
    let sh1 = Arc::new(sh1);

    // One writer per marker/connection: serial writes keep each marker's
    // sequence in order.
    let mut senders = Vec::new();
    let mut writers = Vec::new();
    for i in 0..k {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Instant)>(4096);
        senders.push(tx);
        let sh = sh1.clone();
        let pends = pendings.clone();
        let dn = format!("uid={},{}", marker_uid(&run_id, i), people(&o.base));
        writers.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut conn: Option<Conn> = None;
            while let Some((seq, sched)) = rx.recv().await {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match connect(&sh, true).await {
                        Ok(c) => conn.insert(c),
                        Err(e) => {
                            st.error("connect");
                            note_error(&sh, &format!("{e:#}"));
                            continue;
                        }
                    },
                };
                for pend in &pends {
                    if let Ok(mut p) = pend[i].lock() {
                        p.push_back((seq, sched, None));
                    }
                }
                let r = tokio::time::timeout(
                    to,
                    c.modify_replace(dn.clone(), "description", format!("ldbench-lag {seq}")),
                )
                .await;
                let now = Instant::now();
                match r {
                    Ok(Ok(0)) => {
                        // latency from the scheduled time (open loop)
                        record(&mut st.hist, now.duration_since(sched).as_micros() as u64);
                        st.ops += 1;
                        for pend in &pends {
                            if let Ok(mut p) = pend[i].lock() {
                                if let Some(e) = p.iter_mut().find(|e| e.0 == seq) {
                                    e.2 = Some(now);
                                }
                            }
                        }
                    }
                    other => {
                        match other {
                            Ok(Ok(code)) => st.error(code_name(code)),
                            Ok(Err(e)) => {
                                st.error("io");
                                note_error(&sh, &format!("{e:#}"));
                                conn = None;
                            }
                            Err(_) => {
                                st.error("timeout");
                                conn = None;
                            }
                        }
                        for pend in &pends {
                            if let Ok(mut p) = pend[i].lock() {
                                p.retain(|e| e.0 != seq);
                            }
                        }
                    }
                }
            }
            if let Some(c) = conn {
                let _ = tokio::time::timeout(Duration::from_millis(200), c.unbind()).await;
            }
            st
        }));
    }

    // One watcher per replica.
    let stop = Arc::new(AtomicBool::new(false));
    let poll = Duration::from_millis(o.poll_interval_ms.max(1));
    let mut watchers = Vec::new();
    for ((sh2, c2), pend) in sh2s.into_iter().zip(c2s).zip(pendings.iter().cloned()) {
        let stop = stop.clone();
        let o2 = o.clone();
        let run_id = run_id.clone();
        watchers.push(tokio::spawn(async move {
            let mut lag = crate::report::new_hist();
            let mut errors = Stats::default();
            let mut conn = Some(c2);
            while !stop.load(Ordering::Relaxed) {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match connect(&sh2, true).await {
                        Ok(c) => conn.insert(c),
                        Err(_) => {
                            errors.error("watch-connect");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                match tokio::time::timeout(to, read_markers(c, &o2, &run_id, k)).await {
                    Ok(Ok(seen)) => {
                        let now = Instant::now();
                        for (i, s) in seen {
                            if let Ok(mut p) = pend[i].lock() {
                                while p.front().is_some_and(|e| e.0 <= s) {
                                    if let Some((_, _, ack)) = p.pop_front() {
                                        let us = ack
                                            .map(|a| now.saturating_duration_since(a).as_micros())
                                            .unwrap_or(0);
                                        record(&mut lag, us as u64);
                                    }
                                }
                            }
                        }
                    }
                    _ => {
                        errors.error("watch-io");
                        conn = None;
                    }
                }
                tokio::time::sleep(poll).await;
            }
            (lag, errors)
        }));
    }

    // Open-loop scheduler.
    let mut st = Stats::default();
    let cpu0 = cpu_times();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(duration);
    let interval = 1.0 / o.rate;
    let mut n: u64 = 0;
    loop {
        let sched = t0 + Duration::from_secs_f64(n as f64 * interval);
        if sched >= end {
            break;
        }
        tokio::time::sleep_until(sched.into()).await;
        let i = (n % k as u64) as usize;
        let seq = n / k as u64 + 1;
        if senders[i].try_send((seq, sched)).is_err() {
            st.error("behind-schedule");
        }
        n += 1;
    }
    drop(senders);
    for w in writers {
        match w.await {
            Ok(s) => st.merge(&s),
            Err(e) => st.error(format!("worker-failed: {e}")),
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // Give the replica up to 10 s to catch up with the last writes.
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace {
        let left: usize = pendings
            .iter()
            .flat_map(|pending| pending.iter())
            .map(|p| p.lock().map(|p| p.len()).unwrap_or(0))
            .sum();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut lag = crate::report::new_hist();
    let mut per_replica = Vec::new();
    for (w, r) in watchers.into_iter().zip(&replicas) {
        let (l, werr) = match w.await {
            Ok(x) => x,
            Err(_) => (crate::report::new_hist(), Stats::default()),
        };
        st.merge(&werr);
        let _ = lag.add(&l);
        per_replica.push((r.clone(), summarize(&l)));
    }
    let left: usize = pendings
        .iter()
        .flat_map(|pending| pending.iter())
        .map(|p| p.lock().map(|p| p.len()).unwrap_or(0))
        .sum();
    if left > 0 {
        *st.errors.entry("not-replicated".into()).or_insert(0) += left as u64;
    }
    let cpu1 = cpu_times();
    let mut rep = make_report(
        &o,
        &run_id,
        &st,
        elapsed,
        (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1),
    );
    rep.repl_lag = Some(summarize(&lag));
    if per_replica.len() > 1 {
        rep.repl_lag_per_replica = Some(per_replica);
    }
    rep.rate = Some(o.rate);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_prefix_range() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let k = sub_prefix(&mut rng, 100_000);
            assert!((1000..=10_000).contains(&k));
            let k = sub_prefix(&mut rng, 1000);
            assert!((10..=100).contains(&k));
            let k = sub_prefix(&mut rng, 5);
            assert_eq!(k, 1);
        }
    }

    #[test]
    fn names() {
        assert_eq!(bench_dn("r1", 7, "dc=x"), "uid=bench-r1-7,ou=people,dc=x");
        assert_eq!(marker_uid("r1", 3), "ldbench-lag-r1-3");
        assert_eq!(Workload::SearchPage.name(), "search-page");
    }
}
