//! `ferrodir repl status` tells the truth: with the consumer down the
//! supplier shows the changes pending and a lag that grows, computed from
//! both sides' RUVs; the last init and update survive a supplier restart;
//! a read-only consumer shows its supplier and the last change received; a
//! consumer's clean shutdown is not logged as a protocol error and the
//! reconnection is logged at info.

mod repl_common;
use repl_common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const SUFFIX: &str = "dc=example,dc=com";

fn status_json(url: &str) -> serde_json::Value {
    let o = Command::new(bin())
        .args(["repl", "status", "--json", "--url", url])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir repl status");
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    serde_json::from_str(&out(&o)).expect("repl status --json is JSON")
}

fn status_text(url: &str) -> String {
    let o = Command::new(bin())
        .args(["repl", "status", "--url", url])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir repl status");
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    out(&o)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn field(v: &serde_json::Value, name: &str) -> serde_json::Value {
    v.get(0)
        .and_then(|a| a.get(name))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn status_shows_pending_changes_and_lag_from_the_ruvs_and_keeps_its_history() {
    let (mut supplier, mut consumer) = supplier_consumer();
    let o = ldapadd_root(&supplier.url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[&supplier, &consumer], Duration::from_secs(60));
    // The consumer side: its supplier and the last change received.
    let text = status_text(&consumer.url());
    assert!(text.contains("read-only consumer of ldap://"), "{text}");
    assert!(text.contains("last change received"), "{text}");
    assert!(!text.contains("last change received   never"), "{text}");

    consumer.stop();
    let mut ldif = String::new();
    for i in 0..200 {
        ldif.push_str(&format!(
            "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nreplace: description\ndescription: change {i}\n\n"
        ));
    }
    let o = ldapmodify_root(&supplier.url(), &ldif);
    assert_eq!(code(&o), 0, "{}", err(&o));
    // Pending from the RUVs, and a lag that grows while nothing arrives.
    wait_for(
        "the supplier to show 200 pending changes and a lag",
        Duration::from_secs(30),
        || {
            let s = status_json(&supplier.url());
            field(&s, "changes_pending") == 200
                && field(&s, "lag_seconds").as_u64().is_some_and(|l| l >= 1)
        },
    );
    let s = status_json(&supplier.url());
    assert_ne!(field(&s, "last_init"), "never", "{s}");
    // The consumer's clean shutdown is no protocol error.
    let log = supplier.log_text();
    assert!(!log.contains("protocol error"), "{log}");

    // A restart keeps the history and the pending count.
    supplier.stop();
    supplier.launch();
    let s = status_json(&supplier.url());
    assert_ne!(field(&s, "last_init"), "never", "{s}");
    assert_ne!(field(&s, "last_update"), "never", "{s}");
    assert_eq!(field(&s, "changes_pending"), 200, "{s}");

    consumer.launch();
    wait_converged(&[&supplier, &consumer], Duration::from_secs(60));
    wait_for(
        "the supplier to show the consumer in sync",
        Duration::from_secs(30),
        || {
            let s = status_json(&supplier.url());
            field(&s, "changes_pending") == 0 && field(&s, "lag_seconds") == 0
        },
    );
    supplier.wait_log(
        "the reconnection at info level",
        Duration::from_secs(30),
        |log| {
            log.lines()
                .any(|l| l.contains("INFO") && l.contains("reconnected to"))
        },
    );
}
