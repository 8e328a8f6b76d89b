//! Multi-process replication tests on loopback: real `ferrodir` servers,
//! configured only through the example LDIFs in ldif/replication with
//! OpenLDAP's ldapadd, compared with `ferrodir export` (entryUUID and
//! entryCSN included). Every wait polls with a bound.

mod repl_common;

use repl_common::*;
use std::process::Command;
use std::time::{Duration, Instant};

// A deadline, not a speed: a loaded CI machine may need much longer than
// the few seconds these take here.
const CONVERGE: Duration = Duration::from_secs(120);

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

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

fn modify_ok(url: &str, ldif: &str) {
    let o = ldapmodify_root(url, ldif);
    assert_eq!(code(&o), 0, "{}{}\n{ldif:.300}", out(&o), err(&o));
}

/// (b) Every operation type replicates, and a changed password works on the consumer.
#[test]
fn every_operation_type_replicates() {
    let (supplier, consumer) = supplier_consumer();
    let url = supplier.url();
    let photo: Vec<u8> = (0..=255u8).chain([0xff, 0x00, 0xd8, 0xff]).collect();
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
    let o = ldapadd_root(&url, SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    modify_ok(
        &url,
        &format!(
            "dn: ou=team,dc=example,dc=com\nchangetype: add\nobjectClass: organizationalUnit\nou: team\n\n\
             dn: uid=carol,ou=team,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\njpegPhoto:: {}\n\n\
             dn: uid=dave,ou=team,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: dave\ncn: Dave\nsn: D\njpegPhoto:: {}\n\n\
             dn: uid=tmp,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: tmp\ncn: T\nsn: T\n",
            b64(&photo),
            b64(&big)
        ),
    );
    modify_ok(
        &url,
        "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\n\
         add: mail\nmail: alice2@example.com\n-\n\
         delete: givenName\n-\n\
         replace: sn\nsn: Hargreaves\n-\n\
         increment: uidNumber\nuidNumber: 5\n-\n\n\
         dn: cn=staff,ou=groups,dc=example,dc=com\nchangetype: modify\n\
         delete: memberUid\nmemberUid: bob\n-\n\n\
         dn: uid=tmp,ou=people,dc=example,dc=com\nchangetype: delete\n\n\
         dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=robert\ndeleteoldrdn: 1\n\n\
         dn: ou=team,dc=example,dc=com\nchangetype: modrdn\nnewrdn: ou=squad\ndeleteoldrdn: 1\n\n\
         dn: uid=carol,ou=squad,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=carol\ndeleteoldrdn: 0\nnewsuperior: ou=people,dc=example,dc=com\n\n\
         dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: userPassword\nuserPassword: new-alice-secret\n-\n",
    );
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    for needle in [
        "dn: uid=robert,ou=people,dc=example,dc=com",
        "dn: uid=dave,ou=squad,dc=example,dc=com",
        "dn: uid=carol,ou=people,dc=example,dc=com",
        "mail: alice2@example.com",
        "sn: Hargreaves",
        "uidNumber: 10006",
    ] {
        assert!(exported.contains(needle), "missing {needle:?}");
    }
    for gone in [
        "uid=tmp,",
        "ou=team,",
        "givenName: Alice",
        "memberUid: bob",
        "uid: bob\n",
    ] {
        assert!(!exported.contains(gone), "{gone:?} should be gone");
    }
    // Binary values arrive byte-exact.
    let o = search_root(
        &consumer.url(),
        "uid=dave,ou=squad,dc=example,dc=com",
        &["-s", "base", "-t", "(objectClass=*)", "jpegPhoto"],
    );
    let line = out(&o);
    let file = line
        .lines()
        .find_map(|l| l.strip_prefix("jpegPhoto:< file://"))
        .unwrap_or_else(|| panic!("no jpegPhoto: {line}"));
    assert_eq!(std::fs::read(file).expect("jpegPhoto file"), big);
    let _ = std::fs::remove_file(file);
    // The new password works on the consumer, the old one does not.
    let bind = |pw: &str| {
        run_tool(
            "ldapwhoami",
            &[
                "-x",
                "-H",
                &consumer.url(),
                "-D",
                "uid=alice,ou=people,dc=example,dc=com",
                "-w",
                pw,
            ],
            None,
        )
    };
    assert_eq!(code(&bind("new-alice-secret")), 0);
    assert_eq!(code(&bind("alicepw")), 49);
}

/// Adds `ou=<ou>` and `n` people on a background thread (one ldapadd).
fn add_in_background(
    url: String,
    ou: &str,
    n: usize,
) -> std::thread::JoinHandle<std::process::Output> {
    let ldif = people_ldif(ou, n);
    std::thread::spawn(move || ldapadd_root(&url, &ldif))
}

/// Polls until at least `n` entries are below `base` on `url`.
fn wait_count_at_least(url: &str, base: &str, n: usize) {
    let deadline = Instant::now() + CONVERGE;
    while count_children(url, base) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} entries below {base}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (c) A consumer killed with SIGKILL while changes stream in catches up
/// after a restart: nothing lost, nothing twice.
#[test]
fn consumer_killed_mid_stream_catches_up() {
    let (supplier, mut consumer) = supplier_consumer();
    let adder = add_in_background(supplier.url(), "load", 1500);
    wait_count_at_least(&consumer.url(), "ou=load,dc=example,dc=com", 100);
    consumer.kill9();
    consumer.launch();
    let o = adder.join().expect("adder thread");
    assert_eq!(code(&o), 0, "{}", err(&o));
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert_eq!(exported.matches("dn: uid=load-").count(), 1500);
    assert_eq!(
        count_children(&consumer.url(), "ou=load,dc=example,dc=com"),
        1500
    );
}

/// (d) A supplier killed with SIGKILL and restarted resumes where the consumer stands.
#[test]
fn supplier_killed_and_restarted_resumes() {
    let (mut supplier, consumer) = supplier_consumer();
    let adder = add_in_background(supplier.url(), "load", 1500);
    wait_count_at_least(&consumer.url(), "ou=load,dc=example,dc=com", 100);
    supplier.kill9();
    // The adder fails once its server is gone; what was committed counts.
    let _ = adder.join();
    supplier.launch();
    let o = ldapadd_root(&supplier.url(), &people_ldif("after", 50));
    assert_eq!(code(&o), 0, "{}", err(&o));
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert_eq!(exported.matches("dn: uid=after-").count(), 50);
    assert!(exported.matches("dn: uid=load-").count() >= 100);
}

/// (e) Total init of 10,000 entries imported on the supplier; the status
/// attributes show the init finished.
#[test]
fn total_init_of_ten_thousand_entries() {
    // The supplier's first start creates the base entry: import only what lies below it.
    let mut supplier = Server::fast();
    import_offline(&mut supplier, &people_ldif("people", 10_000));
    let consumer = Server::fast();
    configure_supplier_consumer(&supplier, &consumer, Duration::from_secs(120));
    let status =
        agreement_attr(&supplier, "to-consumer", "nsds5replicaLastInitStatus").unwrap_or_default();
    assert!(status.contains("10002 entries"), "{status}");
    assert!(
        agreement_attr(&supplier, "to-consumer", "nsds5replicaLastInitStart")
            .is_some_and(|s| !s.starts_with("1970"))
    );
    // The refresh request is removed once done.
    assert_eq!(
        agreement_attr(&supplier, "to-consumer", "nsds5BeginReplicaRefresh"),
        None
    );
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert_eq!(exported.matches("dn: uid=people-").count(), 10_000);
    // Incremental replication follows the init.
    modify_ok(&supplier.url(), "dn: uid=people-7,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: after-init\n");
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert!(exported.contains("sn: after-init"));
}

/// (g) Two suppliers with agreements both ways converge while both take writes.
#[test]
fn two_suppliers_converge() {
    let s1 = Server::fast();
    let s2 = Server::fast();
    add_example(&s1.url(), "replication-manager.ldif", None);
    add_example(&s2.url(), "replication-manager.ldif", None);
    add_example(&s1.url(), "two-suppliers/1-replica-server1.ldif", None);
    add_example(&s2.url(), "two-suppliers/2-replica-server2.ldif", None);
    let o = ldapadd_root(&s1.url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    add_example(
        &s1.url(),
        "two-suppliers/3-agreement-server1-to-server2.ldif",
        Some(s2.port),
    );
    add_example(
        &s2.url(),
        "two-suppliers/4-agreement-server2-to-server1.ldif",
        Some(s1.port),
    );
    wait_init_done(&s1, "to-server2", Duration::from_secs(60));
    let a = add_in_background(s1.url(), "one", 200);
    let b = add_in_background(s2.url(), "two", 200);
    // Different entries modified on each side meanwhile.
    modify_ok(&s2.url(), "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: alice@two.example.com\n");
    modify_ok(&s1.url(), "dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: bob@one.example.com\n");
    for h in [a, b] {
        let o = h.join().expect("adder");
        assert_eq!(code(&o), 0, "{}", err(&o));
    }
    let exported = wait_converged(&[&s1, &s2], CONVERGE);
    assert_eq!(exported.matches("dn: uid=one-").count(), 200);
    assert_eq!(exported.matches("dn: uid=two-").count(), 200);
    assert!(exported.contains("mail: alice@two.example.com"));
    assert!(exported.contains("mail: bob@one.example.com"));
    // Replica IDs: server 2's own changes carry its ID (2) in their CSNs.
    let o = search_root(
        &s1.url(),
        "uid=two-5,ou=two,dc=example,dc=com",
        &["-s", "base", "(objectClass=*)", "entryCSN"],
    );
    let csn = out(&o)
        .lines()
        .find_map(|l| l.strip_prefix("entryCSN: ").map(str::to_string))
        .unwrap_or_default();
    assert_eq!(csn.get(12..16), Some("0002"), "entryCSN {csn}");
}
