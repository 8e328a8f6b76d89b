//! Replacing replication credentials on a live pair (the Amlen note): the
//! replication manager's password on the consumer, then the agreement's
//! credentials on the supplier, while a client keeps writing. Every write
//! the supplier acknowledged reaches the consumer; at most the changes in
//! flight are retried.

mod repl_common;
use repl_common::*;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(120);
const ROT: &str = "ou=rot,dc=example,dc=com";
const MANAGER: &str = "cn=replication manager,cn=config";

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replication_credentials_rotate_while_writes_flow() {
    let (supplier, consumer) = supplier_consumer();
    let o = ldapadd_root(
        &supplier.url(),
        &format!("dn: {ROT}\nobjectClass: organizationalUnit\nou: rot\n"),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));

    // A client writing to the supplier the whole time; it counts what the
    // supplier acknowledged.
    let writer = BackgroundWriter::start(supplier.url(), ROT);
    wait_for("writes to replicate before the rotation", CONVERGE, || {
        count_children(&consumer.url(), ROT) >= 5
    });

    // 1. The consumer's replication manager gets a new password. The
    //    supplier's open session stays bound; its next bind would fail.
    let new_password = format!("{}-rotated", repl_password());
    let o = ldapmodify_root(
        &consumer.url(),
        &format!("dn: {MANAGER}\nchangetype: modify\nreplace: userPassword\nuserPassword: {new_password}\n"),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    let old_bind = ldapsearch_bind(&consumer.url(), MANAGER, &repl_password());
    assert_eq!(old_bind, 49, "the old replication password no longer binds");
    let before_agreement = writer.acknowledged();
    let manager_binds = |s: &Server| {
        s.log_text()
            .matches(r#"BIND dn="cn=replication manager,cn=config" method=simple result=0"#)
            .count()
    };
    let binds_before = manager_binds(&consumer);

    // 2. The supplier's agreement gets the new credentials: the session
    //    restarts and binds with them.
    let o = ldapmodify_root(
        &supplier.url(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: nsDS5ReplicaCredentials\nnsDS5ReplicaCredentials: {new_password}\n",
            agreement_dn("to-consumer")
        ),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    // The session restarted and bound with the new password.
    wait_for(
        "the supplier to bind with the new credentials",
        CONVERGE,
        || manager_binds(&consumer) > binds_before,
    );
    // Writes went on throughout, and keep replicating after the change.
    wait_for("writes acknowledged after the rotation", CONVERGE, || {
        writer.acknowledged() >= before_agreement + 10
    });
    wait_for(
        "writes made after the rotation to replicate",
        CONVERGE,
        || count_children(&consumer.url(), ROT) >= before_agreement + 10,
    );
    let acknowledged = writer.finish();

    // Nothing acknowledged is lost, nothing is duplicated.
    wait_converged(&[&supplier, &consumer], CONVERGE);
    assert!(acknowledged.len() >= 15, "{} writes", acknowledged.len());
    let on_consumer = search_root(
        &consumer.url(),
        ROT,
        &["-s", "one", "(objectClass=*)", "uid"],
    );
    let text = out(&on_consumer);
    for uid in &acknowledged {
        assert!(
            text.contains(&format!("uid: {uid}\n")),
            "{uid} missing on the consumer"
        );
    }
    assert_eq!(count_children(&consumer.url(), ROT), acknowledged.len());
    assert!(
        agreement_attr(&supplier, "to-consumer", "nsds5replicaLastUpdateStatus")
            .unwrap_or_default()
            .starts_with("Error (0)"),
        "the agreement reports success after the rotation"
    );
}

/// Exit code of a base search of the root DSE bound as `dn`.
fn ldapsearch_bind(url: &str, dn: &str, password: &str) -> i32 {
    let o = run_tool(
        "ldapsearch",
        &[
            "-x", "-H", url, "-D", dn, "-w", password, "-b", "", "-s", "base", "1.1",
        ],
        None,
    );
    code(&o)
}
