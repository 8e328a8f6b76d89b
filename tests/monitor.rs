//! cn=monitor and the metrics endpoint: the counters move with real
//! operations, replication lag and pending changes per agreement come out
//! right while the consumer is down, only the root DN reads cn=monitor,
//! and no secret is ever shown.

mod repl_common;
use repl_common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    text
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_and_cn_monitor_report_operations_and_replication() {
    let addr = format!("127.0.0.1:{}", free_port());
    let supplier =
        Server::start_with_config("password_scheme = \"SSHA512\"\n", &["--metrics", &addr]);
    let mut consumer = Server::fast();
    configure_supplier_consumer(&supplier, &consumer, Duration::from_secs(60));
    let o = ldapadd_root(&supplier.url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[&supplier, &consumer], Duration::from_secs(60));

    let before = scrape(&addr);
    let searches = sample(&before, "ferrodir_operations_total{type=\"SRCH\"}").unwrap_or(0.0);
    for _ in 0..3 {
        let o = search_root(
            &supplier.url(),
            SUFFIX,
            &["-s", "base", "(objectClass=*)", "dc"],
        );
        assert_eq!(code(&o), 0, "{}", err(&o));
    }
    // An operation is counted just after its answer went out: the client
    // may have its answer a moment before the counter moves.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (after, now) = loop {
        let after = scrape(&addr);
        let now =
            sample(&after, "ferrodir_operations_total{type=\"SRCH\"}").expect("search counter");
        if now >= searches + 3.0 || std::time::Instant::now() > deadline {
            break (after, now);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(now >= searches + 3.0, "{searches} -> {now}");
    assert!(after.contains("# TYPE ferrodir_operation_duration_seconds histogram"));
    assert!(sample(
        &after,
        "ferrodir_operation_duration_seconds_bucket{type=\"SRCH\",le=\"+Inf\"}"
    )
    .is_some_and(|n| n >= searches + 3.0));
    assert!(
        sample(&after, "ferrodir_entries ").is_some_and(|n| n >= 5.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "ferrodir_replication_pending_changes{agreement=\"to-consumer\""
        ),
        Some(0.0),
        "{after}"
    );
    assert!(!after.contains(&repl_password()), "a secret in the metrics");
    assert!(!after.contains(&root_password()), "a secret in the metrics");

    // The consumer goes down: pending changes and lag show it.
    consumer.stop();
    let mut ldif = String::new();
    for i in 0..5 {
        ldif.push_str(&format!(
            "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nreplace: description\ndescription: m{i}\n\n"
        ));
    }
    assert_eq!(code(&ldapmodify_root(&supplier.url(), &ldif)), 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(&addr);
        let pending = sample(
            &text,
            "ferrodir_replication_pending_changes{agreement=\"to-consumer\"",
        );
        let lag = sample(
            &text,
            "ferrodir_replication_lag_seconds{agreement=\"to-consumer\"",
        );
        if pending == Some(5.0) && lag.is_some_and(|l| l >= 1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pending {pending:?}, lag {lag:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // cn=monitor for the root DN, nothing for anyone else.
    let o = search_root(
        &supplier.url(),
        "cn=monitor",
        &["-s", "sub", "(objectClass=*)", "*"],
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    let text = out(&o);
    for dn in [
        "dn: cn=monitor",
        "dn: cn=operations,cn=monitor",
        "dn: cn=backends,cn=monitor",
        "dn: cn=replication,cn=monitor",
        "dn: cn=to-consumer,cn=replication,cn=monitor",
    ] {
        assert!(text.lines().any(|l| l == dn), "{dn} missing:\n{text}");
    }
    assert!(text.contains("changesPending: 5"), "{text}");
    assert!(text.contains("totalConnections: "), "{text}");
    let anon = run_tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &supplier.url(),
            "-b",
            "cn=monitor",
            "-s",
            "base",
        ],
        None,
    );
    assert_eq!(code(&anon), 32, "{}{}", out(&anon), err(&anon));
}
