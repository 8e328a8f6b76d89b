//! Total init while the supplier keeps changing: the consumer must end with
//! exactly the supplier's data (entryUUID and entryCSN included), whatever
//! moved, changed, appeared or disappeared during the init. Real `ferrodir`
//! processes on loopback, configured with the example LDIFs.

mod repl_common;

use repl_common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PEOPLE: usize = 4000;
const MOVERS: usize = 500;

fn person(uid: &str, parent: &str) -> String {
    format!(
        "dn: uid={uid},{parent}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\n"
    )
}

/// ou=aaa and ou=zzz sort before and after everything else in DN key order;
/// ou=mover (with MOVERS people) starts below ou=zzz and is moved back and
/// forth during the init, so it jumps over the part of the walk still to
/// come or already done.
fn initial_ldif() -> String {
    let mut s = String::new();
    for ou in ["aaa", "people", "zzz"] {
        s.push_str(&format!(
            "dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
        ));
    }
    let mover = format!("ou=mover,ou=zzz,{SUFFIX}");
    s.push_str(&format!(
        "dn: {mover}\nobjectClass: organizationalUnit\nou: mover\n\n"
    ));
    for i in 0..MOVERS {
        s.push_str(&person(&format!("m{i}"), &mover));
    }
    for i in 0..PEOPLE {
        s.push_str(&person(&format!("p{i}"), &format!("ou=people,{SUFFIX}")));
    }
    s
}

/// Round `k` of changes: the mover subtree changes sides, a person is
/// renamed, one deleted, two added (one at each end of the walk), and a
/// few modified.
fn round_ldif(k: usize) -> String {
    let (from, to) = if k.is_multiple_of(2) {
        ("zzz", "aaa")
    } else {
        ("aaa", "zzz")
    };
    let people = format!("ou=people,{SUFFIX}");
    let mut s = format!(
        "dn: ou=mover,ou={from},{SUFFIX}\nchangetype: moddn\nnewrdn: ou=mover\ndeleteoldrdn: 1\nnewsuperior: ou={to},{SUFFIX}\n\n"
    );
    s.push_str(&format!(
        "dn: uid=p{k},{people}\nchangetype: moddn\nnewrdn: uid=renamed{k}\ndeleteoldrdn: 0\n\n"
    ));
    s.push_str(&format!(
        "dn: uid=p{},{people}\nchangetype: delete\n\n",
        PEOPLE - 1 - k
    ));
    for ou in ["aaa", "zzz"] {
        s.push_str(&format!(
            "dn: uid=new{k}-{ou},ou={ou},{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: new{k}-{ou}\ncn: new\nsn: new\n\n"
        ));
    }
    for i in 0..10 {
        let target = (k * 389 + i * 97) % (PEOPLE / 2) + PEOPLE / 4;
        s.push_str(&format!(
            "dn: uid=p{target},{people}\nchangetype: modify\nreplace: description\ndescription: round {k} change {i}\n-\nadd: telephoneNumber\ntelephoneNumber: +1 555 {k:04}{i}\n\n"
        ));
    }
    s
}

/// Successful writes the supplier logged while its total init was under
/// way (between the "total init of N entries started" line, logged once the
/// init's snapshot is taken, and the "total init finished" line) and after
/// it. Log lines start with an RFC 3339 UTC timestamp of fixed width, so
/// they compare as text.
fn writes_around_init(log: &str) -> (usize, usize) {
    let stamp = |l: &str| l.split_whitespace().next().unwrap_or("").to_string();
    let find = |what: &str| {
        log.lines()
            .find(|l| l.contains(what))
            .map(stamp)
            .unwrap_or_else(|| panic!("no {what:?} line in the supplier's log"))
    };
    let (start, end) = (find("total init of"), find("total init finished"));
    let writes: Vec<String> = log
        .lines()
        .filter(|l| {
            l.contains("result=0")
                && [" ADD ", " MOD ", " DEL ", " MODRDN "]
                    .iter()
                    .any(|op| l.contains(op))
        })
        .map(stamp)
        .collect();
    let inside = writes.iter().filter(|t| **t > start && **t < end).count();
    let after = writes.iter().filter(|t| **t > end).count();
    (inside, after)
}

#[test]
fn init_during_moves_and_changes_ends_identical_to_the_supplier() {
    let mut supplier = Server::fast();
    import_offline(&mut supplier, &initial_ldif());
    let consumer = Server::fast();
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

    // Changes run from before the init starts until after it ended.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, rounds, url) = (stop.clone(), rounds.clone(), supplier.url());
        std::thread::spawn(move || {
            for k in 0..PEOPLE / 4 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let o = ldapmodify_root(&url, &round_ldif(k));
                assert_eq!(code(&o), 0, "round {k}: {}{}", out(&o), err(&o));
                rounds.store(k + 1, Ordering::SeqCst);
            }
        })
    };
    add_example(
        &supplier.url(),
        "supplier-consumer/3-supplier-agreement.ldif",
        Some(consumer.port),
    );
    wait_init_done(&supplier, "to-consumer", Duration::from_secs(300));
    let during = rounds.load(Ordering::SeqCst);
    // A few more rounds after the init, so incremental replication carries
    // on from the snapshot's RUV.
    while rounds.load(Ordering::SeqCst) < during + 3 && !writer.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("change thread");
    let total = rounds.load(Ordering::SeqCst);
    eprintln!("{during} rounds of changes had finished when the init ended, {total} in all");
    // The premise of the test: writes landed while the init was under way
    // (after its snapshot, before its end) and after it.
    let (inside, after) = writes_around_init(&supplier.log_text());
    eprintln!("{inside} writes completed while the init was under way, {after} after it");
    assert!(
        inside > 0 && after > 0,
        "{inside} writes completed during the total init and {after} after it: the changes did not overlap the init"
    );

    let exported = wait_converged(&[&supplier, &consumer], Duration::from_secs(120));
    // The mover subtree is there once, complete, on the side it last went to.
    let side = if total % 2 == 1 { "aaa" } else { "zzz" };
    let movers = format!(",ou=mover,ou={side},{SUFFIX}\n");
    assert_eq!(exported.matches(&movers).count(), MOVERS, "{side}");
    assert_eq!(exported.matches(",ou=mover,").count(), MOVERS);
    assert_eq!(
        exported.to_lowercase().matches("\nentryuuid: ").count(),
        dns(&exported).len()
    );
    for k in 0..total {
        assert!(exported.contains(&format!("dn: uid=renamed{k},ou=people,{SUFFIX}\n")));
        assert!(exported.contains(&format!("dn: uid=new{k}-zzz,ou=zzz,{SUFFIX}\n")));
    }
}

/// A total init hands over each entry's full replication state, deleted
/// values included, not only its visible values: a change older than a
/// delete that arrives later must be judged the same on the consumer as
/// on the supplier.
#[test]
fn total_init_carries_the_full_replication_state() {
    let supplier = Server::fast();
    let consumer = Server::fast();
    let o = ldapadd_root(&supplier.url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    // Deleted values and a replaced attribute: state the entries no longer show.
    let o = ldapmodify_root(
        &supplier.url(),
        &format!(
            "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: mail\nmail: old@example.com\n\n\
             dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\ndelete: mail\nmail: old@example.com\n-\nreplace: description\ndescription: now\n"
        ),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    configure_supplier_consumer(&supplier, &consumer, Duration::from_secs(60));
    let exported = wait_converged(&[&supplier, &consumer], Duration::from_secs(60));
    assert!(exported.contains("description: now"), "{exported}");
    let of_supplier = state_digests(&export_state(&supplier));
    let of_consumer = state_digests(&export_state(&consumer));
    assert!(
        of_supplier.len() >= 5,
        "the supplier's states are exported: {of_supplier:?}"
    );
    let differing: Vec<&String> = of_supplier
        .iter()
        .filter(|(uuid, d)| of_consumer.get(*uuid) != Some(*d))
        .map(|(uuid, _)| uuid)
        .collect();
    assert!(
        differing.is_empty(),
        "entries whose replication state differs after the init: {differing:?}"
    );
}
