//! Replication test harness (a copy of tests/common plus replication
//! helpers). Test harness: starts the real `ferrodir` binary on an ephemeral loopback
//! port in a temporary data directory, and runs OpenLDAP's command-line
//! clients against it. A missing client is a failure that says what to install.

#![allow(dead_code)]

// The process harness (Server, OpenLDAP client helpers) is the shared one.
#[path = "../common/mod.rs"]
mod common;
pub use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// ---- replication helpers ----------------------------------------------------

/// Per-run random password of the replication manager (replaces the
/// CHANGE-ME placeholder of the example LDIFs).
pub fn repl_password() -> String {
    use std::sync::OnceLock;
    static PW: OnceLock<String> = OnceLock::new();
    PW.get_or_init(|| format!("repl-{}", uuid_like())).clone()
}

pub const PLACEHOLDER_PASSWORD: &str = "CHANGE-ME-replication-password";

/// The replica entry of dc=example,dc=com (389-ds's quoted-free form).
pub const REPLICA_DN: &str = "cn=replica,cn=dc\\3Dexample\\2Cdc\\3Dcom,cn=mapping tree,cn=config";

/// A writable replica of dc=example,dc=com with replica ID `rid`, taking
/// changes from the replication manager.
pub fn replica_ldif(rid: usize) -> String {
    format!(
        "dn: {REPLICA_DN}\nobjectClass: top\nobjectClass: nsDS5Replica\ncn: replica\n\
         nsDS5ReplicaRoot: dc=example,dc=com\nnsDS5ReplicaType: 3\nnsDS5ReplicaId: {rid}\n\
         nsDS5ReplicaBindDN: cn=replication manager,cn=config\n"
    )
}

/// An agreement `name` to 127.0.0.1:`port` binding as the replication
/// manager, with a total init when `init`.
pub fn agreement_to_ldif(name: &str, port: u16, init: bool) -> String {
    let mut text = format!(
        "dn: cn={name},{REPLICA_DN}\nobjectClass: top\nobjectClass: nsDS5ReplicationAgreement\n\
         cn: {name}\nnsDS5ReplicaRoot: dc=example,dc=com\nnsDS5ReplicaHost: 127.0.0.1\n\
         nsDS5ReplicaPort: {port}\nnsDS5ReplicaTransportInfo: LDAP\n\
         nsDS5ReplicaBindMethod: SIMPLE\nnsDS5ReplicaBindDN: cn=replication manager,cn=config\n\
         nsDS5ReplicaCredentials: {pw}\nnsds5ReplicaEnabled: on\n",
        pw = repl_password()
    );
    if init {
        text.push_str("nsds5BeginReplicaRefresh: start\n");
    }
    text
}

pub fn agreement_dn(cn: &str) -> String {
    format!("cn={cn},cn=replica,cn=dc\\3Dexample\\2Cdc\\3Dcom,cn=mapping tree,cn=config")
}

/// An example LDIF from ldif/replication, as an admin would edit it: the
/// consumer host and port set to 127.0.0.1:`port`, the placeholder password
/// replaced. Nothing else is changed.
pub fn example_ldif(rel: &str, port: Option<u16>) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ldif/replication")
        .join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        text.contains(PLACEHOLDER_PASSWORD)
            || !rel.contains("agreement") && !rel.contains("manager"),
        "{rel} should carry the password placeholder"
    );
    let mut out = String::new();
    for line in text.lines() {
        let line = match (port, line.split_once(": ")) {
            (Some(_), Some((k, _))) if k.eq_ignore_ascii_case("nsDS5ReplicaHost") => {
                "nsDS5ReplicaHost: 127.0.0.1".to_string()
            }
            (Some(p), Some((k, _))) if k.eq_ignore_ascii_case("nsDS5ReplicaPort") => {
                format!("nsDS5ReplicaPort: {p}")
            }
            _ => line.replace(PLACEHOLDER_PASSWORD, &repl_password()),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// ldapadd of an example LDIF as root; panics with the tool's output on failure.
pub fn add_example(url: &str, rel: &str, port: Option<u16>) {
    let o = ldapadd_root(url, &example_ldif(rel, port));
    assert_eq!(code(&o), 0, "ldapadd {rel}: {}{}", out(&o), err(&o));
}

/// `ferrodir export` of a (running or stopped) server's data directory.
pub fn export(s: &Server) -> String {
    let o = Command::new(bin())
        .arg("export")
        .arg("--data-dir")
        .arg(&s.data)
        .output()
        .expect("run ferrodir export");
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `ferrodir export --replication-state` of a server's data directory:
/// entries with per-value CSNs, tombstones and the RUV (format in
/// src/directory/state_export.rs).
pub fn export_state(s: &Server) -> String {
    export_state_of(&s.data)
}

/// [`export_state`] of a data directory.
pub fn export_state_of(data: &Path) -> String {
    let o = Command::new(bin())
        .args(["export", "--replication-state", "--data-dir"])
        .arg(data)
        .output()
        .expect("run ferrodir export --replication-state");
    assert!(
        o.status.success(),
        "export --replication-state failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// What must agree between converged replicas, parsed from a state export:
/// per entry (keyed by entryUUID) its DN, state and values with their CSNs;
/// per suffix the replica generation and each replica ID's max CSN. The
/// RUV's min CSNs are local (changelog trimming, init time) and left out;
/// a tombstone may be missing where it was already purged (each replica
/// purges after its own purge delay), but where present it must agree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReplicaState {
    /// "ruv <suffix>" -> generation and "rid max" lines.
    pub ruvs: BTreeMap<String, BTreeSet<String>>,
    /// entryUUID -> (DN, "attr;vucsn-CSN: value" lines).
    pub entries: BTreeMap<String, (String, BTreeSet<String>)>,
}

const TOMBSTONE_LINE: &str = "ferrodirEntryState: tombstone";
const RUV_DN_PREFIX: &str = "nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff,";

const STATE_DIGEST: &str = "ferrodirReplStateDigest";

/// The entryUUID of an exported entry (its attribute may carry ;vucsn-...).
fn entry_uuid_of(e: &LdifEntry) -> Option<String> {
    e.attrs
        .iter()
        .find(|(n, _)| {
            n.split(';')
                .next()
                .is_some_and(|b| b.eq_ignore_ascii_case("entryUUID"))
        })
        .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
}

/// entryUUID -> digest of the entry's full replication state (deleted
/// values included), from a state export.
pub fn state_digests(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in parse_ldif(text) {
        if let (Some(uuid), Some(digest)) = (entry_uuid_of(&e), e.get(STATE_DIGEST).first()) {
            out.insert(uuid, digest.clone());
        }
    }
    out
}

pub fn parse_state(text: &str) -> ReplicaState {
    let mut st = ReplicaState::default();
    for e in parse_ldif(text) {
        // The digest of the full state is compared where a test asks for
        // it (state_digests): a catch-up from entry state rebuilds states.
        let lines: BTreeSet<String> = e
            .attrs
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(STATE_DIGEST))
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect();
        if let Some(suffix) = e.dn.strip_prefix(RUV_DN_PREFIX) {
            let ruv = e
                .get("nsds50ruv")
                .iter()
                .map(|v| match v.strip_prefix("{replica ") {
                    // "{replica N} min max": keep N and max.
                    Some(rest) => {
                        let f: Vec<&str> = rest.split_whitespace().collect();
                        format!("{{replica {} max {}", f[0], f.last().unwrap_or(&""))
                    }
                    None => v.clone(),
                })
                .collect();
            st.ruvs.insert(suffix.to_ascii_lowercase(), ruv);
            continue;
        }
        let uuid = entry_uuid_of(&e).unwrap_or_else(|| format!("(no entryUUID) {}", e.dn));
        st.entries.insert(uuid, (e.dn.clone(), lines));
    }
    st
}

/// Every difference between the replicas' states: one line per RUV or
/// entry that differs, naming the servers (by index) and the attributes.
pub fn state_differences(states: &[ReplicaState]) -> Vec<String> {
    let mut diffs = Vec::new();
    let ruv_keys: BTreeSet<&String> = states.iter().flat_map(|s| s.ruvs.keys()).collect();
    for k in ruv_keys {
        let per: Vec<Option<&BTreeSet<String>>> = states.iter().map(|s| s.ruvs.get(k)).collect();
        if per.windows(2).any(|w| w[0] != w[1]) {
            let shown: Vec<String> = per
                .iter()
                .enumerate()
                .map(|(i, r)| format!("server {i}: {r:?}"))
                .collect();
            diffs.push(format!("RUV of {k} differs: {}", shown.join("; ")));
        }
    }
    let keys: BTreeSet<&String> = states.iter().flat_map(|s| s.entries.keys()).collect();
    for k in keys {
        let per: Vec<Option<&(String, BTreeSet<String>)>> =
            states.iter().map(|s| s.entries.get(k)).collect();
        if per.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        // Each replica purges its tombstones after its own purge delay: a
        // tombstone some replicas no longer hold is no divergence, as long
        // as those that hold it agree on it.
        let present: Vec<&(String, BTreeSet<String>)> = per.iter().flatten().copied().collect();
        if present.iter().all(|(_, ls)| ls.contains(TOMBSTONE_LINE))
            && present.windows(2).all(|w| w[0] == w[1])
        {
            continue;
        }
        let dns: BTreeSet<&str> = per.iter().flatten().map(|(dn, _)| dn.as_str()).collect();
        let missing: Vec<usize> = (0..per.len()).filter(|&i| per[i].is_none()).collect();
        let mut line = format!(
            "entry {k} ({}):",
            dns.into_iter().collect::<Vec<_>>().join(" | ")
        );
        if !missing.is_empty() {
            line.push_str(&format!(" missing on servers {missing:?};"));
        }
        // Attributes whose lines differ among the servers that have the entry.
        let attr_of = |l: &str| {
            l.split([';', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let attrs: BTreeSet<String> = per
            .iter()
            .flatten()
            .flat_map(|(_, ls)| ls.iter().map(|l| attr_of(l)))
            .collect();
        for a in attrs {
            let vals: Vec<(usize, Vec<&String>)> = per
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    p.map(|(_, ls)| (i, ls.iter().filter(|l| attr_of(l) == a).collect()))
                })
                .collect();
            if vals.windows(2).any(|w| w[0].1 != w[1].1) {
                let shown: Vec<String> = vals
                    .iter()
                    .map(|(i, v)| format!("server {i}: {v:?}"))
                    .collect();
                line.push_str(&format!(" {a} differs ({});", shown.join(", ")));
            }
        }
        let distinct_dns: BTreeSet<&str> =
            per.iter().flatten().map(|(dn, _)| dn.as_str()).collect();
        if distinct_dns.len() > 1 {
            line.push_str(" DN differs;");
        }
        diffs.push(line);
    }
    diffs
}

/// Every difference between the replication states of these data
/// directories (see [`state_differences`]).
pub fn differences_of(data_dirs: &[&Path]) -> Vec<String> {
    let states: Vec<ReplicaState> = data_dirs
        .iter()
        .map(|d| parse_state(&export_state_of(d)))
        .collect();
    state_differences(&states)
}

/// Polls until every server holds the same replication state (entries with
/// their value CSNs, tombstones, RUV max CSNs: see [`ReplicaState`]); returns
/// the first server's ordinary export. On timeout it reports every
/// differing entry and which servers and attributes differ.
pub fn wait_converged(servers: &[&Server], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let states: Vec<ReplicaState> = servers
            .iter()
            .map(|s| parse_state(&export_state(s)))
            .collect();
        let diffs = state_differences(&states);
        if diffs.is_empty() {
            return servers.first().map(|s| export(s)).unwrap_or_default();
        }
        if Instant::now() > deadline {
            let counts: Vec<usize> = states.iter().map(|s| s.entries.len()).collect();
            let logs: Vec<String> = servers
                .iter()
                .map(|s| {
                    let t = s.log_text();
                    let tail: Vec<&str> = t.lines().rev().take(40).collect();
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                })
                .collect();
            panic!(
                "replicas did not converge within {timeout:?}: entries incl. tombstones per server {counts:?}, {} differences:\n{}\nlogs:\n{}",
                diffs.len(),
                diffs.join("\n"),
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One attribute of an agreement entry (status attributes included).
pub fn agreement_attr(s: &Server, cn: &str, attr: &str) -> Option<String> {
    let o = search_root(
        &s.url(),
        &agreement_dn(cn),
        &["-s", "base", "(objectClass=*)", "*"],
    );
    let text = out(&o);
    let prefix = format!("{attr}: ");
    text.lines()
        .find(|l| l.len() > prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(&prefix))
        .map(|l| l[prefix.len()..].to_string())
}

/// Waits until the agreement's total init has finished successfully.
pub fn wait_init_done(s: &Server, cn: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let end = agreement_attr(s, cn, "nsds5replicaLastInitEnd");
        let status = agreement_attr(s, cn, "nsds5replicaLastInitStatus").unwrap_or_default();
        if end.as_deref().is_some_and(|e| !e.starts_with("1970"))
            && status.starts_with("Error (0) Total update succeeded")
        {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "init over agreement {cn} did not finish within {timeout:?}: end {end:?} status {status:?}\nupdate status {:?}\nlog:\n{}",
                agreement_attr(s, cn, "nsds5replicaLastUpdateStatus"),
                s.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Number of entries directly below `base` (root search, one level).
pub fn count_children(url: &str, base: &str) -> usize {
    let o = search_root(url, base, &["-s", "one", "(objectClass=*)", "1.1"]);
    dns(&out(&o)).len()
}

/// LDIF adding `ou=<ou>` and `n` people below it.
pub fn people_ldif(ou: &str, n: usize) -> String {
    let mut s =
        format!("dn: ou={ou},dc=example,dc=com\nobjectClass: organizationalUnit\nou: {ou}\n\n");
    for i in 0..n {
        s.push_str(&format!(
            "dn: uid={ou}-{i},ou={ou},dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {ou}-{i}\ncn: User {i}\nsn: {ou}{i}\nmail: {ou}-{i}@example.com\n\n"
        ));
    }
    s
}

/// A supplier and a read-only consumer configured with the example LDIFs
/// (supplier-consumer/), the consumer initialised.
pub fn supplier_consumer() -> (Server, Server) {
    let supplier = Server::fast();
    let consumer = Server::fast();
    configure_supplier_consumer(&supplier, &consumer, Duration::from_secs(60));
    (supplier, consumer)
}

/// Configures `supplier` -> read-only `consumer` with the supplier-consumer/
/// example LDIFs and waits until the consumer's total init has finished.
pub fn configure_supplier_consumer(supplier: &Server, consumer: &Server, timeout: Duration) {
    add_example(&consumer.url(), "replication-manager.ldif", None);
    add_example(
        &supplier.url(),
        "supplier-consumer/1-supplier-replica.ldif",
        None,
    );
    add_example(
        &consumer.url(),
        "supplier-consumer/2-consumer-replica.ldif",
        None,
    );
    add_example(
        &supplier.url(),
        "supplier-consumer/3-supplier-agreement.ldif",
        Some(consumer.port),
    );
    wait_init_done(supplier, "to-consumer", timeout);
}

/// Stops `server`, imports `ldif` into its data directory with `ferrodir
/// import` (offline, as an admin would) and starts it again.
pub fn import_offline(server: &mut Server, ldif: &str) {
    server.stop();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("data.ldif");
    std::fs::write(&file, ldif).expect("write ldif");
    let o = Command::new(bin())
        .args(["import", "--data-dir"])
        .arg(&server.data)
        .arg(&file)
        .output()
        .expect("run ferrodir import");
    assert!(
        o.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    server.launch();
}

/// A client adding `uid=rot-<n>,<parent>` entries to one server, one after
/// the other, until stopped; it keeps the uids the server acknowledged.
pub struct BackgroundWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acknowledged: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    handle: std::thread::JoinHandle<()>,
}

impl BackgroundWriter {
    pub fn start(url: String, parent: &str) -> BackgroundWriter {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
        let (flag, acked, parent) = (stop.clone(), acknowledged.clone(), parent.to_string());
        let handle = std::thread::spawn(move || {
            let mut i = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let uid = format!("rot-{i}");
                let o = ldapadd_root(
                    &url,
                    &format!("dn: uid={uid},{parent}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: rot\n"),
                );
                if code(&o) == 0 {
                    if let Ok(mut a) = acked.lock() {
                        a.push(uid);
                    }
                }
                i += 1;
            }
        });
        BackgroundWriter {
            stop,
            acknowledged,
            handle,
        }
    }

    /// How many adds the server has acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.acknowledged.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Stops the client; the uids the server acknowledged.
    pub fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("writer thread");
        self.acknowledged
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }
}

/// How long a three-supplier mesh may take to settle.
pub const MESH_CONVERGE: Duration = Duration::from_secs(120);

pub fn agreement_name(to: usize) -> String {
    format!("to-server{to}")
}

pub fn agreement_ldif(to: usize, port: u16, init: bool) -> String {
    agreement_to_ldif(&agreement_name(to), port, init)
}

/// Three suppliers (replica IDs 1, 2, 3), each with an agreement to the two
/// others; server 1 holds the sample data and initialises the others.
pub fn mesh() -> Vec<Server> {
    let servers: Vec<Server> = (0..3).map(|_| Server::fast()).collect();
    for (i, s) in servers.iter().enumerate() {
        add_example(&s.url(), "replication-manager.ldif", None);
        let o = ldapadd_root(&s.url(), &replica_ldif(i + 1));
        assert_eq!(code(&o), 0, "replica {}: {}", i + 1, err(&o));
    }
    let o = ldapadd_root(&servers[0].url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    // Server 1 initialises 2 and 3; only then do 2 and 3 get their agreements.
    for to in [2, 3] {
        let o = ldapadd_root(
            &servers[0].url(),
            &agreement_ldif(to, servers[to - 1].port, true),
        );
        assert_eq!(code(&o), 0, "{}", err(&o));
        wait_init_done(&servers[0], &agreement_name(to), MESH_CONVERGE);
    }
    for from in [2, 3] {
        for to in [1, 2, 3].into_iter().filter(|t| *t != from) {
            let o = ldapadd_root(
                &servers[from - 1].url(),
                &agreement_ldif(to, servers[to - 1].port, false),
            );
            assert_eq!(code(&o), 0, "{}", err(&o));
        }
    }
    wait_converged(&servers.iter().collect::<Vec<_>>(), MESH_CONVERGE);
    servers
}

pub fn set_agreements(s: &Server, enabled: bool) {
    let value = if enabled { "on" } else { "off" };
    for to in 1..=3 {
        let dn = format!("cn={},{REPLICA_DN}", agreement_name(to));
        if search_root(&s.url(), &dn, &["-s", "base", "(objectClass=*)", "cn"])
            .status
            .code()
            != Some(0)
        {
            continue;
        }
        let o = ldapmodify_root(
            &s.url(),
            &format!("dn: {dn}\nchangetype: modify\nreplace: nsds5ReplicaEnabled\nnsds5ReplicaEnabled: {value}\n"),
        );
        assert_eq!(code(&o), 0, "{}", err(&o));
    }
}
pub mod master_slave;
