//! Replication test harness (a copy of tests/common plus replication
//! helpers). Test harness: starts the real `ferrodir` binary on an ephemeral loopback
//! port in a temporary data directory, and runs OpenLDAP's command-line
//! clients against it. A missing client is a failure that says what to install.

#![allow(dead_code)]

// The process harness (Server, OpenLDAP client helpers) is the shared one.
#[path = "../common/mod.rs"]
mod common;
pub use common::*;

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

/// Polls until every server's export is identical; returns it.
pub fn wait_converged(servers: &[&Server], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let exports: Vec<String> = servers.iter().map(|s| export(s)).collect();
        if exports.windows(2).all(|w| w[0] == w[1]) {
            return exports.into_iter().next().unwrap_or_default();
        }
        if Instant::now() > deadline {
            let counts: Vec<usize> = exports
                .iter()
                .map(|e| e.lines().filter(|l| l.starts_with("dn: ")).count())
                .collect();
            let first_diff = exports[0]
                .lines()
                .zip(exports[1].lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{a:?} vs {b:?}"));
            let logs: Vec<String> = servers
                .iter()
                .map(|s| {
                    let t = s.log_text();
                    let tail: Vec<&str> = t.lines().rev().take(40).collect();
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                })
                .collect();
            panic!(
                "replicas did not converge within {timeout:?}: entries {counts:?}, first difference {first_diff:?}\nlogs:\n{}",
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
