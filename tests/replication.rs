//! Multi-process replication tests on loopback: real `ferrodir` servers,
//! configured only through the example LDIFs in ldif/replication with
//! OpenLDAP's ldapadd, compared with `ferrodir export` (entryUUID and
//! entryCSN included). Every wait polls with a bound.

mod repl_common;

use repl_common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(30);

fn ferrodir(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir")
}

/// (a) 1,000 adds on the supplier all arrive on a read-only consumer;
/// (f) a write on the consumer is referred to the supplier; plus
/// `ferrodir repl status` and `ferrodir repl test`.
#[test]
fn thousand_adds_reach_read_only_consumer_and_writes_there_are_referred() {
    let (supplier, consumer) = supplier_consumer();
    let o = ldapadd_root(&supplier.url(), &people_ldif("bulk", 1000));
    assert_eq!(code(&o), 0, "{}", err(&o));
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert_eq!(
        exported.matches("\ndn: uid=bulk-").count()
            + usize::from(exported.starts_with("dn: uid=bulk-")),
        1000
    );
    assert_eq!(
        count_children(&consumer.url(), "ou=bulk,dc=example,dc=com"),
        1000
    );

    // (f) The consumer refers writes to the supplier (exit code 10 = referral).
    let o = ldapmodify_root(
        &consumer.url(),
        "dn: uid=bulk-1,ou=bulk,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: changed\n",
    );
    assert_eq!(code(&o), 10, "{}{}", out(&o), err(&o));
    let text = format!("{}{}", out(&o), err(&o));
    assert!(
        text.contains(&supplier.url()),
        "the referral should name {}: {text}",
        supplier.url()
    );

    // Status: in sync, init done, changes counted.
    let url = supplier.url();
    let deadline = Instant::now() + CONVERGE;
    loop {
        let o = ferrodir(&["repl", "status", "--url", &url, "--json"]);
        assert!(o.status.success(), "{}", err(&o));
        let json = out(&o);
        if json.contains("\"state\":\"in sync\"") {
            assert!(
                json.contains(&format!("\"consumer\":\"127.0.0.1:{}\"", consumer.port)),
                "{json}"
            );
            assert!(json.contains("Total update succeeded"), "{json}");
            assert!(json.contains("\"lag_seconds\":0"), "{json}");
            break;
        }
        assert!(Instant::now() < deadline, "never in sync: {json}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = ferrodir(&["repl", "status", "--url", &url]);
    let text = out(&o);
    assert!(text.contains("state               in sync"), "{text}");
    assert!(text.contains("(this server)"), "{text}");

    // Test button: passes for the real agreement ...
    let o = ferrodir(&["repl", "test", "--url", &url]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert_eq!(out(&o).trim(), "Pass");
    // ... and fails, saying why, for one pointing at a closed port.
    let dead = free_port();
    let bad = example_ldif("supplier-consumer/3-supplier-agreement.ldif", Some(dead))
        .replace("cn=to-consumer,", "cn=to-nowhere,")
        .replace("cn: to-consumer", "cn: to-nowhere")
        .replace("nsds5BeginReplicaRefresh: start\n", "");
    let o = ldapadd_root(&url, &bad);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = ferrodir(&[
        "repl",
        "test",
        "--url",
        &url,
        "--agreement",
        &agreement_dn("to-nowhere"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).starts_with(&format!("Fail: connect to 127.0.0.1:{dead}")),
        "{}",
        out(&o)
    );
    // The credentials are never returned, not even to the root DN.
    let o = search_root(
        &url,
        &agreement_dn("to-consumer"),
        &[
            "-s",
            "base",
            "(objectClass=*)",
            "*",
            "nsDS5ReplicaCredentials",
        ],
    );
    assert!(
        !out(&o).to_lowercase().contains("nsds5replicacredentials"),
        "{}",
        out(&o)
    );
    assert!(!out(&o).contains(&repl_password()));
}
