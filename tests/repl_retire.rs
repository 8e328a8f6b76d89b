//! `ferrodir repl retire-id` (389-ds's cleanallruv) against three real
//! suppliers: server 3 writes, is decommissioned, and its replica ID 3 is
//! retired from server 1. The retirement travels to server 2, which
//! finishes by itself; server 1 waits while an enabled agreement's
//! consumer (the dead server 3) might lack changes, keeps waiting across a
//! kill -9, and finishes once that agreement is disabled. Replication
//! carries on; retiring again is harmless; an own or unknown ID is refused.

mod repl_common;
use repl_common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SUFFIX: &str = "dc=example,dc=com";
const RUV_DN: &str = "nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff,dc=example,dc=com";

fn retire(url: &str, rid: &str, wait: &str) -> Output {
    Command::new(bin())
        .args(["repl", "retire-id", rid, "--suffix", SUFFIX, "--url", url])
        .args(["--wait", wait])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir repl retire-id")
}

/// The replica IDs in a server's RUV (served to the root DN as 389-ds does).
fn ruv_ids(url: &str) -> Vec<u16> {
    let o = search_root(url, RUV_DN, &["-s", "base", "(objectClass=*)", "nsds50ruv"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    out(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("nsds50ruv: {replica "))
        .filter_map(|rest| rest.split('}').next()?.trim().parse().ok())
        .collect()
}

/// The retirement line of replica ID 3 on a server's replica entry.
fn retirement_of_3(url: &str) -> String {
    let o = search_root(
        url,
        REPLICA_DN,
        &[
            "-s",
            "base",
            "-o",
            "ldif-wrap=no",
            "(objectClass=*)",
            "ferrodirRetiredReplicaId",
        ],
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    out(&o)
        .lines()
        .find_map(|l| l.strip_prefix("ferrodirRetiredReplicaId: 3 "))
        .unwrap_or_default()
        .to_string()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn person(uid: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: r\n"
    )
}

fn set_enabled(s: &Server, to: usize, on: bool) {
    let dn = format!("cn={},{REPLICA_DN}", agreement_name(to));
    let o = ldapmodify_root(
        &s.url(),
        &format!(
            "dn: {dn}\nchangetype: modify\nreplace: nsds5ReplicaEnabled\nnsds5ReplicaEnabled: {}\n",
            if on { "on" } else { "off" }
        ),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
}

#[test]
fn a_retired_replica_id_leaves_every_ruv_without_blocking_anything() {
    let mut servers = mesh();
    // Retries come quickly once a stopped consumer is back.
    let o = ldapmodify_root(
        &servers[0].url(),
        &format!("dn: {REPLICA_DN}\nchangetype: modify\nreplace: nsds5ReplicaBackoffMax\nnsds5ReplicaBackoffMax: 2\n"),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    // Server 3 writes a change that reaches server 1 only, then is
    // decommissioned; server 2 is down for a while and lacks it.
    set_enabled(&servers[2], 2, false);
    set_enabled(&servers[0], 2, false);
    let o = ldapadd_root(&servers[2].url(), &person("from-three"));
    assert_eq!(code(&o), 0, "{}", err(&o));
    let three = format!("uid=from-three,ou=people,{SUFFIX}");
    wait_for("server 1 to get server 3's change", MESH_CONVERGE, || {
        code(&search_root(
            &servers[0].url(),
            &three,
            &["-s", "base", "(objectClass=*)", "uid"],
        )) == 0
    });
    servers[2].stop();
    servers[1].stop();
    // Decommissioning: the agreement to the gone server is disabled.
    set_enabled(&servers[0], 3, false);
    set_enabled(&servers[0], 2, true);
    assert!(ruv_ids(&servers[0].url()).contains(&3));

    // Refusals first: nothing is recorded for them.
    let own = retire(&servers[0].url(), "1", "0");
    assert_ne!(own.status.code(), Some(0));
    assert!(err(&own).contains("this server's own"), "{}", err(&own));
    let unknown = retire(&servers[0].url(), "9", "0");
    assert_ne!(unknown.status.code(), Some(0));
    assert!(
        err(&unknown).contains("not in the RUV"),
        "{}",
        err(&unknown)
    );
    assert!(err(&unknown).contains("1, 3"), "{}", err(&unknown));

    // Server 1 waits for its consumer 2, which lacks a change of 3, and
    // says so; nothing else waits.
    let waiting = retire(&servers[0].url(), "3", "2");
    assert_eq!(
        waiting.status.code(),
        Some(1),
        "{}{}",
        out(&waiting),
        err(&waiting)
    );
    assert!(out(&waiting).contains("retiring"), "{}", out(&waiting));
    wait_for(
        &format!(
            "server 1 to say what it waits for (shows: {})",
            retirement_of_3(&servers[0].url())
        ),
        Duration::from_secs(30),
        || retirement_of_3(&servers[0].url()).contains(&agreement_name(2)),
    );
    assert_eq!(code(&ldapadd_root(&servers[0].url(), &person("during"))), 0);

    // The wait survives a crash.
    servers[0].kill9();
    servers[0].launch();
    let line = retirement_of_3(&servers[0].url());
    assert!(line.contains("retiring"), "{line}");
    assert!(ruv_ids(&servers[0].url()).contains(&3));

    // Server 2 comes back (its agreement to the gone server disabled, as
    // decommissioning goes): it gets the change of 3 and the retirement,
    // and both finish by themselves.
    servers[1].launch();
    set_enabled(&servers[1], 3, false);
    let done = retire(&servers[0].url(), "3", "90");
    assert_eq!(done.status.code(), Some(0), "{}{}", out(&done), err(&done));
    assert!(out(&done).contains("retired"), "{}", out(&done));
    wait_for("server 2 to finish", Duration::from_secs(60), || {
        retirement_of_3(&servers[1].url()).ends_with(" retired")
    });
    // Retiring again is harmless.
    let again = retire(&servers[1].url(), "3", "0");
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}{}",
        out(&again),
        err(&again)
    );

    // Replication carries on both ways, and the data written by 3 stays.
    assert_eq!(
        code(&ldapadd_root(&servers[0].url(), &person("after-1"))),
        0
    );
    assert_eq!(
        code(&ldapadd_root(&servers[1].url(), &person("after-2"))),
        0
    );
    let exported = wait_converged(&[&servers[0], &servers[1]], MESH_CONVERGE);
    for uid in ["from-three", "during", "after-1", "after-2"] {
        assert!(exported.contains(&format!("uid={uid},")), "{uid} missing");
    }
    for s in &servers[..2] {
        assert_eq!(ruv_ids(&s.url()), vec![1, 2]);
    }
    // `repl status` lists the retirement.
    let status = Command::new(bin())
        .args(["repl", "status", "--url", &servers[1].url()])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir repl status");
    assert!(
        out(&status).contains("retired replica ID: 3 upto"),
        "{}",
        out(&status)
    );
}
