//! Master and slaves with one key (docs/master-slave.md): `repl master`
//! prints a Synchronization Key; `repl join` on a fresh server pins the
//! master's certificate from it, obtains a replication identity, copies
//! everything and follows each change over TLS (RFC 4533 persist). Writes on
//! a slave are referred to the master, except a user's own password change,
//! which is made on the master with the user's own credentials (and refused
//! with a clear message while the master is down). Keys are listed and
//! revoked; a revoked or wrong key cannot join; a slave can leave.

mod repl_common;

use repl_common::master_slave::*;
use repl_common::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything both servers hold under the suffix, as the root DN sees it.
fn content(url: &str) -> String {
    let o = search_root(
        url,
        SUFFIX,
        &["-o", "ldif-wrap=no", "(objectClass=*)", "*", "entryUUID"],
    );
    let mut blocks: Vec<String> = out(&o)
        .split("\n\n")
        .map(|b| {
            let mut lines: Vec<&str> = b.lines().filter(|l| !l.is_empty()).collect();
            lines.sort_unstable();
            lines.join("\n")
        })
        .filter(|b| !b.is_empty())
        .collect();
    blocks.sort();
    blocks.join("\n\n")
}

fn can_bind(url: &str, dn: &str, pw: &str) -> bool {
    bind_code(url, dn, pw) == 0
}

fn ldappasswd(url: &str, dn: &str, old: &str, new: &str) -> std::process::Output {
    std::process::Command::new("ldappasswd")
        .args(["-x", "-H", url, "-D", dn, "-w", old, "-a", old, "-s", new])
        .output()
        .expect("ldappasswd (package ldap-utils)")
}

#[test]
fn a_slave_joins_with_one_key_copies_everything_and_follows() {
    let master = Master::start();
    assert_code(&ldapadd_root(&master.server.url(), SAMPLE), 0, "sample");
    // More entries than the server's size limit for clients (500): a
    // slave's refresh is not a client search.
    let many = people_ldif("branch", 600);
    assert_code(&ldapadd_root(&master.server.url(), &many), 0, "600 entries");
    let key = new_key(&master);
    let slave = Server::fast();
    let o = join(&master, &slave, &key);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains("in sync after"), "{}", out(&o));

    // Everything, entryUUIDs and password hashes included: users
    // authenticate on the slave.
    assert_eq!(content(&slave.url()), content(&master.server.url()));
    assert!(can_bind(&slave.url(), ALICE, ALICE_PW));

    // Changes follow: add, modify, rename, delete.
    let o = ldapmodify_root(
        &master.server.url(),
        "dn: uid=carol,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: account\nuid: carol\n\n\
         dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: alice@branch.example.com\n\n\
         dn: uid=carol,ou=people,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n\n\
         dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: delete\n",
    );
    assert_code(&o, 0, "changes on the master");
    wait_for("the changes on the slave", || {
        content(&slave.url()) == content(&master.server.url())
    });

    // A write on the slave is referred to the master.
    let o = ldapmodify_root(
        &slave.url(),
        "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: X\n",
    );
    assert_eq!(code(&o), 10, "{}{}", out(&o), err(&o));
    assert!(err(&o).contains(&master.ldaps_url()), "{}", err(&o));

    // Status on both sides.
    let o = repl_cli(&master.server.url(), &["status"]);
    let text = out(&o);
    assert!(
        text.contains("master role: 1 synchronization key(s), 1 slave(s)"),
        "{text}"
    );
    assert!(text.contains(": persisting, in sync"), "{text}");
    let o = repl_cli(&slave.url(), &["status"]);
    assert!(
        out(&o).contains(&format!(
            "slave role: follows the master {}",
            master.ldaps_url()
        )),
        "{}",
        out(&o)
    );
}

#[test]
fn password_changes_on_a_slave_are_made_on_the_master() {
    let (mut master, slaves) = master_and_slaves(1);
    let slave = &slaves[0];
    assert_code(&ldapadd_root(&master.server.url(), SAMPLE), 0, "sample");
    wait_for("alice on the slave", || {
        can_bind(&slave.url(), ALICE, ALICE_PW)
    });

    // Password Modify with the old password, sent to the slave.
    let o = ldappasswd(&slave.url(), ALICE, ALICE_PW, "second-password");
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(can_bind(&master.server.url(), ALICE, "second-password"));
    wait_for("the new password on the slave", || {
        can_bind(&slave.url(), ALICE, "second-password")
    });
    assert!(!can_bind(&slave.url(), ALICE, ALICE_PW));

    // A modify of her own userPassword (as pam_ldap's passwd does).
    let o = client(
        "ldapmodify",
        &slave.url(),
        Who::User(ALICE, "second-password"),
        &[],
        Some("dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: userPassword\nuserPassword: third-password\n"),
    );
    assert_code(&o, 0, "own userPassword modify on the slave");
    assert!(can_bind(&master.server.url(), ALICE, "third-password"));

    // The master's policy decides (too short).
    let o = ldappasswd(&slave.url(), ALICE, "third-password", "short");
    assert!(
        out(&o).contains("Constraint violation (19)"),
        "{}{}",
        out(&o),
        err(&o)
    );

    // Someone else's password is not chained: referred.
    let o = ldapmodify_root(
        &slave.url(),
        "dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: userPassword\nuserPassword: whatever-it-is\n",
    );
    assert_eq!(code(&o), 10, "{}{}", out(&o), err(&o));

    // Master down: reads and binds keep working, a password change says why it cannot.
    wait_for("the third password on the slave", || {
        can_bind(&slave.url(), ALICE, "third-password")
    });
    master.server.stop();
    assert!(can_bind(&slave.url(), ALICE, "third-password"));
    let o = ldappasswd(&slave.url(), ALICE, "third-password", "fourth-password");
    assert!(
        out(&o).contains("Server is unavailable (52)"),
        "{}{}",
        out(&o),
        err(&o)
    );
    assert!(
        out(&o).contains("cannot be reached") && out(&o).contains("master"),
        "{}{}",
        out(&o),
        err(&o)
    );
    assert!(
        can_bind(&slave.url(), ALICE, "third-password"),
        "nothing changed"
    );
    master.server.launch();
}

#[test]
fn keys_are_checked_listed_and_revoked_and_a_slave_can_leave() {
    let master = Master::start();
    let key = new_key(&master);
    let id = key.split('.').nth(1).expect("key id").to_string();

    // A wrong secret: refused, nothing configured on the slave.
    let slave = Server::fast();
    let mut parts: Vec<String> = key.split('.').map(str::to_string).collect();
    parts[2] = "A".repeat(32);
    let o = join(&master, &slave, &parts.join("."));
    assert!(!o.status.success());
    assert!(err(&o).contains("refused the join"), "{}", err(&o));
    // A key pinning another certificate: the TLS handshake fails.
    let mut parts: Vec<String> = key.split('.').map(str::to_string).collect();
    parts[3] = "0".repeat(64);
    let o = join(&master, &slave, &parts.join("."));
    assert!(!o.status.success());
    assert!(
        err(&o).to_lowercase().contains("tls") || err(&o).contains("certificate"),
        "{}",
        err(&o)
    );
    let o = repl_cli(&slave.url(), &["status"]);
    assert!(!out(&o).contains("slave role"), "{}", out(&o));

    // Listed with the slave that joined with it.
    let o = join(&master, &slave, &key);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let o = repl_cli(&master.server.url(), &["keys", "list"]);
    assert!(out(&o).contains(&format!("{id}  created")), "{}", out(&o));
    assert!(out(&o).contains("slaves joined: 1"), "{}", out(&o));
    let o = repl_cli(&master.server.url(), &["slaves", "list"]);
    assert!(out(&o).contains(&format!("key {id}")), "{}", out(&o));

    // Revoked: another slave cannot join with it.
    let o = repl_cli(&master.server.url(), &["keys", "revoke", &id]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let other = Server::fast();
    let o = join(&master, &other, &key);
    assert!(!o.status.success());
    assert!(err(&o).contains("refused the join"), "{}", err(&o));

    // The slave leaves: its suffix is writable again.
    let o = repl_cli(&slave.url(), &["leave"]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let o = ldapmodify_root(
        &slave.url(),
        "dn: dc=example,dc=com\nchangetype: modify\nreplace: description\ndescription: on its own\n",
    );
    assert_code(&o, 0, "a write after leaving");
}
