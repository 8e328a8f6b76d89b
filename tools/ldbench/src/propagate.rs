//! `ldbench propagate`: how long a password change on a master takes to be
//! readable on each of its replicas.
//!
//! For each change, one modify on the master replaces a user's
//! `userPassword` (clear text: the master hashes it with its own scheme)
//! and `description` (a token unique to the change) in one request. From
//! the master's acknowledgement, one task per replica reads that entry's
//! `description` every `poll_ms` until it carries the token; the time from
//! the acknowledgement to the first read that shows it is the lag of that
//! (change, replica) pair. The next change starts when every replica has the
//! previous one (or the timeout passed), so changes never overlap.
//! The description stands for the password: both are in the same modify,
//! and the server applies a modify atomically; after the last change each
//! replica is also checked to accept a bind with the new password.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ldap3_proto::proto::{LdapFilter, LdapSearchScope};
use serde::Serialize;

use crate::ldap::{code_name, parse_url, Conn};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct PropagateOptions {
    pub master: String,
    pub slaves: Vec<String>,
    pub bind_dn: String,
    pub bind_password: String,
    pub changes: u64,
    pub users: u64,
    pub people: String,
    pub poll_ms: u64,
    pub timeout: Duration,
    pub run_id: String,
    /// A process (the master) whose CPU and RSS are read over the window.
    pub watch_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct PropagateReport {
    pub changes: u64,
    pub slaves: usize,
    /// (change, slave) pairs that saw the change within the timeout.
    pub pairs_seen: usize,
    pub pairs_missed: usize,
    pub poll_interval_ms: u64,
    pub lag_min_us: u64,
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    /// Median lag of each slave, in the order given.
    pub lag_p50_per_slave_us: Vec<u64>,
    pub modify_p50_us: u64,
    pub modify_max_us: u64,
    pub window_s: f64,
    pub master_cpu_s: Option<f64>,
    /// Master CPU over the window, as a percentage of one core.
    pub master_cpu_pct: Option<f64>,
    pub master_rss_max_kb: Option<u64>,
    pub master_rss_end_kb: Option<u64>,
    /// Slaves that accepted a bind with the last new password.
    pub slaves_bind_new_password: usize,
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(0)
}

/// utime + stime of `pid` in seconds (/proc/PID/stat fields 14 and 15).
pub fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are fixed.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (tck > 0).then(|| (utime + stime) / tck as f64)
}

/// VmRSS of `pid` in kB.
pub fn proc_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

async fn bound(url: &str, dn: &str, pw: &str) -> Result<Conn> {
    let mut c = Conn::connect(&parse_url(url)?, CONNECT_TIMEOUT).await?;
    let code = c.simple_bind(dn, pw).await?;
    if code != 0 {
        bail!("bind as {dn} on {url}: {}", code_name(code));
    }
    Ok(c)
}

/// Polls `dn` on `conn` until its description is `token`: the time since
/// `t0`, or None after `deadline`.
async fn wait_for(
    mut conn: Conn,
    dn: String,
    token: String,
    t0: Instant,
    poll: Duration,
    deadline: Instant,
) -> Result<(Conn, Option<Duration>)> {
    loop {
        let (code, entries) = conn
            .search_entries(
                &dn,
                LdapSearchScope::Base,
                LdapFilter::Present("objectClass".into()),
                &["description"],
            )
            .await?;
        let seen = Instant::now();
        if code != 0 && code != 32 {
            bail!("search {dn}: {}", code_name(code));
        }
        let has = entries.iter().any(|e| {
            e.attributes.iter().any(|a| {
                a.atype.eq_ignore_ascii_case("description")
                    && a.vals.iter().any(|v| v == token.as_bytes())
            })
        });
        if has {
            return Ok((conn, Some(seen.duration_since(t0))));
        }
        if seen >= deadline {
            return Ok((conn, None));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Samples the RSS of `pid` every 100 ms until `stop` fires: the maximum.
async fn rss_sampler(pid: u32, mut stop: tokio::sync::oneshot::Receiver<()>) -> u64 {
    let mut max = 0;
    loop {
        max = max.max(proc_rss_kb(pid).unwrap_or(0));
        tokio::select! {
            _ = &mut stop => return max,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

pub async fn run(o: PropagateOptions) -> Result<PropagateReport> {
    if o.slaves.is_empty() {
        bail!("no --slave given");
    }
    if o.users == 0 {
        bail!("--users must be at least 1");
    }
    let mut master = bound(&o.master, &o.bind_dn, &o.bind_password)
        .await
        .context("master")?;
    let mut conns = Vec::with_capacity(o.slaves.len());
    for url in &o.slaves {
        conns.push(Some(bound(url, &o.bind_dn, &o.bind_password).await?));
    }
    let poll = Duration::from_millis(o.poll_ms.max(1));
    let mut per_slave: Vec<Vec<u64>> = vec![Vec::new(); o.slaves.len()];
    let mut modifies = Vec::new();
    let mut missed = 0usize;
    let mut last: Option<(String, String)> = None;

    let cpu0 = o.watch_pid.and_then(proc_cpu_s);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let sampler = o
        .watch_pid
        .map(|pid| tokio::spawn(rss_sampler(pid, stop_rx)));
    let start = Instant::now();
    for i in 0..o.changes {
        // Spread over the users so consecutive changes touch different entries.
        let user = (i * 97) % o.users + 1;
        let dn = format!("uid=user{user},{}", o.people);
        let token = format!("pw change {} #{i}", o.run_id);
        let password = format!("new-{}-{i}", o.run_id);
        let sent = Instant::now();
        let code = master
            .modify_replace_all(
                dn.clone(),
                vec![
                    ("userPassword", password.clone()),
                    ("description", token.clone()),
                ],
            )
            .await?;
        let t0 = Instant::now();
        if code != 0 {
            bail!("modify {dn} on the master: {}", code_name(code));
        }
        modifies.push(t0.duration_since(sent).as_micros() as u64);
        let deadline = t0 + o.timeout;
        let mut tasks = Vec::with_capacity(conns.len());
        for slot in conns.iter_mut() {
            let conn = slot
                .take()
                .ok_or_else(|| anyhow!("a slave connection was lost"))?;
            tasks.push(tokio::spawn(wait_for(
                conn,
                dn.clone(),
                token.clone(),
                t0,
                poll,
                deadline,
            )));
        }
        for (k, t) in tasks.into_iter().enumerate() {
            let (conn, lag) = t
                .await
                .map_err(|e| anyhow!("poll task: {e}"))?
                .with_context(|| format!("slave {}", o.slaves.get(k).map_or("?", |s| s)))?;
            if let Some(slot) = conns.get_mut(k) {
                *slot = Some(conn);
            }
            match lag {
                Some(d) => {
                    if let Some(v) = per_slave.get_mut(k) {
                        v.push(d.as_micros() as u64);
                    }
                }
                None => missed += 1,
            }
        }
        last = Some((dn, password));
    }
    let window = start.elapsed();
    let cpu1 = o.watch_pid.and_then(proc_cpu_s);
    let _ = stop_tx.send(());
    let rss_max = match sampler {
        Some(h) => Some(h.await.map_err(|e| anyhow!("rss sampler: {e}"))?),
        None => None,
    };
    let rss_end = o.watch_pid.and_then(proc_rss_kb);

    let mut binds = 0;
    if let Some((dn, pw)) = &last {
        for url in &o.slaves {
            if bound(url, dn, pw).await.is_ok() {
                binds += 1;
            }
        }
    }

    let mut all: Vec<u64> = per_slave.iter().flatten().copied().collect();
    all.sort_unstable();
    modifies.sort_unstable();
    let per_slave_p50 = per_slave
        .iter_mut()
        .map(|v| {
            v.sort_unstable();
            percentile(v, 0.5)
        })
        .collect();
    let cpu_s = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(PropagateReport {
        changes: o.changes,
        slaves: o.slaves.len(),
        pairs_seen: all.len(),
        pairs_missed: missed,
        poll_interval_ms: poll.as_millis() as u64,
        lag_min_us: all.first().copied().unwrap_or(0),
        lag_p50_us: percentile(&all, 0.5),
        lag_p99_us: percentile(&all, 0.99),
        lag_max_us: all.last().copied().unwrap_or(0),
        lag_p50_per_slave_us: per_slave_p50,
        modify_p50_us: percentile(&modifies, 0.5),
        modify_max_us: modifies.last().copied().unwrap_or(0),
        window_s: window.as_secs_f64(),
        master_cpu_s: cpu_s,
        master_cpu_pct: cpu_s.map(|c| 100.0 * c / window.as_secs_f64().max(1e-9)),
        master_rss_max_kb: rss_max,
        master_rss_end_kb: rss_end,
        slaves_bind_new_password: binds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn own_process_figures() {
        let me = std::process::id();
        assert!(proc_cpu_s(me).is_some());
        assert!(proc_rss_kb(me).is_some_and(|kb| kb > 0));
        assert!(proc_rss_kb(u32::MAX).is_none());
    }
}
