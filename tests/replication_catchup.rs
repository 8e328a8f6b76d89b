//! Tombstones, changelog trimming and catch-up from entry state, with real
//! server processes configured through ldif/replication (issue 4, item 5):
//! trimming never removes what an enabled agreement still needs; a consumer
//! whose agreement was disabled while the changelog was trimmed past it is
//! brought up to date from entry state, without a total init.

mod repl_common;
use repl_common::*;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(60);
const REPLICA_DN: &str = "cn=replica,cn=dc\\3Dexample\\2Cdc\\3Dcom,cn=mapping tree,cn=config";

fn modify_ok(url: &str, ldif: &str) {
    let o = ldapmodify_root(url, ldif);
    assert_eq!(
        code(&o),
        0,
        "ldapmodify failed: {}{}\n{ldif}",
        out(&o),
        err(&o)
    );
}

fn set_purge_delay(url: &str, secs: u32) {
    modify_ok(
        url,
        &format!(
            "dn: {REPLICA_DN}\nchangetype: modify\nreplace: nsds5ReplicaPurgeDelay\nnsds5ReplicaPurgeDelay: {secs}\n"
        ),
    );
}

fn set_enabled(url: &str, on: bool) {
    let value = if on { "on" } else { "off" };
    modify_ok(
        url,
        &format!(
            "dn: {}\nchangetype: modify\nreplace: nsds5ReplicaEnabled\nnsds5ReplicaEnabled: {value}\n",
            agreement_dn("to-consumer")
        ),
    );
}

/// Sums the numbers the housekeeping log lines report so far.
fn housekeeping_totals(s: &Server) -> (usize, usize) {
    let (mut tombstones, mut changes) = (0, 0);
    // "... purged N tombstones, trimmed M changelog records, ...": the
    // numbers right after "purged " and "trimmed ".
    let after = |line: &str, word: &str| -> usize {
        line.split(word)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    for line in s
        .log_text()
        .lines()
        .filter(|l| l.contains("housekeeping: purged"))
    {
        tombstones += after(line, "purged ");
        changes += after(line, "trimmed ");
    }
    (tombstones, changes)
}

fn wait_housekeeping(s: &Server, tombstones: usize, changes: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (t, c) = housekeeping_totals(s);
        if t >= tombstones && c >= changes {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "housekeeping did not purge {tombstones} tombstones and trim {changes} changes within 30 s (saw {t} and {c}):\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Changes of every kind made while the consumer cannot be reached.
fn changes_while_away(url: &str) {
    let o = ldapadd_root(url, &people_ldif("late", 5));
    assert_eq!(code(&o), 0, "{}", err(&o));
    modify_ok(
        url,
        "dn: uid=a-0,ou=a,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: changed@example.com\n-\nadd: description\ndescription: added while away\n",
    );
    modify_ok(
        url,
        "dn: uid=a-1,ou=a,dc=example,dc=com\nchangetype: delete\n",
    );
    modify_ok(
        url,
        "dn: uid=a-4,ou=a,dc=example,dc=com\nchangetype: delete\n",
    );
    modify_ok(
        url,
        "dn: uid=a-2,ou=a,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=a-2-renamed\ndeleteoldrdn: 1\n",
    );
    modify_ok(
        url,
        "dn: uid=a-3,ou=a,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=a-3\ndeleteoldrdn: 1\nnewsuperior: ou=late,dc=example,dc=com\n",
    );
    // The DN of a deleted entry is free again at once (its tombstone has no DN).
    let o = ldapadd_root(
        url,
        "dn: uid=a-1,ou=a,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: a-1\ncn: Reborn\nsn: reborn\n",
    );
    assert_eq!(code(&o), 0, "re-adding a deleted DN: {}", err(&o));
}

#[test]
fn consumer_behind_the_trimmed_changelog_is_caught_up_from_entry_state() {
    let (supplier, consumer) = supplier_consumer();
    let o = ldapadd_root(&supplier.url(), &people_ldif("a", 20));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[&supplier, &consumer], CONVERGE);

    // A disabled agreement does not hold the changelog back.
    set_enabled(&supplier.url(), false);
    set_purge_delay(&supplier.url(), 1);
    changes_while_away(&supplier.url());
    // 5 + 1 adds, 1 modify, 2 deletes, 2 renames made while away; two tombstones.
    wait_housekeeping(&supplier, 2, 11);
    assert!(
        consumer.log_text().matches("total init started").count() == 1,
        "only the first init so far"
    );

    set_enabled(&supplier.url(), true);
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert!(exported.contains("dn: uid=a-2-renamed,ou=a,dc=example,dc=com"));
    assert!(exported.contains("dn: uid=a-3,ou=late,dc=example,dc=com"));
    assert!(exported.contains("cn: Reborn"));
    assert!(!exported.contains("dn: uid=a-4,"));
    assert!(exported.contains("description: added while away"));
    assert!(
        supplier.log_text().contains("caught up from entry state"),
        "the supplier should have used the entry-state catch-up:\n{}",
        supplier.log_text()
    );
    assert_eq!(
        consumer.log_text().matches("total init started").count(),
        1,
        "no second total init"
    );
    // Incremental replication goes on afterwards.
    modify_ok(
        &supplier.url(),
        "dn: uid=a-5,ou=a,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: after-catch-up\n",
    );
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert!(exported.contains("sn: after-catch-up"));
}

#[test]
fn trimming_keeps_what_an_enabled_agreement_still_needs() {
    let (supplier, mut consumer) = supplier_consumer();
    let o = ldapadd_root(&supplier.url(), &people_ldif("a", 20));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[&supplier, &consumer], CONVERGE);

    set_purge_delay(&supplier.url(), 1);
    consumer.stop();
    changes_while_away(&supplier.url());
    // Tombstones go after the purge delay whatever the consumers need...
    wait_housekeeping(&supplier, 2, 0);
    // ...and one more tombstone, deleted after those changes, is purged by
    // a later housekeeping pass: by then the changes are older than the
    // purge delay too, and would have been trimmed had the stopped
    // consumer's needs been ignored.
    modify_ok(
        &supplier.url(),
        "dn: uid=a-6,ou=a,dc=example,dc=com\nchangetype: delete\n",
    );
    wait_housekeeping(&supplier, 3, 0);
    // ...but the changes the stopped consumer lacks stay in the changelog.
    consumer.launch();
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert!(exported.contains("dn: uid=a-2-renamed,ou=a,dc=example,dc=com"));
    assert!(!exported.contains("dn: uid=a-4,"));
    assert!(!exported.contains("dn: uid=a-6,"));
    assert!(
        !supplier.log_text().contains("catching up from entry state"),
        "the changelog should still have held what the consumer lacked:\n{}",
        supplier.log_text()
    );
}

#[test]
fn a_purge_delay_that_is_not_a_number_of_seconds_is_refused() {
    let (supplier, _consumer) = supplier_consumer();
    // Not an INTEGER: the schema refuses it; negative: the replica check does.
    for (value, want) in [("one week", 21), ("-5", 53)] {
        let o = ldapmodify_root(
            &supplier.url(),
            &format!(
                "dn: {REPLICA_DN}\nchangetype: modify\nreplace: nsds5ReplicaPurgeDelay\nnsds5ReplicaPurgeDelay: {value}\n"
            ),
        );
        assert_eq!(code(&o), want, "{value}: {}{}", out(&o), err(&o));
        assert!(err(&o).contains("nsds5ReplicaPurgeDelay"), "{}", err(&o));
    }
    let o = search_root(
        &supplier.url(),
        REPLICA_DN,
        &["-s", "base", "(objectClass=*)", "nsds5ReplicaPurgeDelay"],
    );
    assert!(
        !out(&o).contains("nsds5ReplicaPurgeDelay:"),
        "nothing changed: {}",
        out(&o)
    );
}

/// An offline import on a supplier writes no changelog; consumers that
/// already hold the suffix get the imported entries from entry state.
#[test]
fn entries_imported_offline_on_the_supplier_reach_the_consumer() {
    let (mut supplier, consumer) = supplier_consumer();
    let o = ldapadd_root(&supplier.url(), &people_ldif("a", 5));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[&supplier, &consumer], CONVERGE);
    import_offline(&mut supplier, &people_ldif("imported", 30));
    let exported = wait_converged(&[&supplier, &consumer], CONVERGE);
    assert_eq!(exported.matches("dn: uid=imported-").count(), 30);
    assert!(supplier.log_text().contains("caught up from entry state"));
}
