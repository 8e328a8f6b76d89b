//! 389-ds runbooks, verbatim: the replication LDIF of 389-ds's
//! administration guide (replication manager, replica entries under the
//! quoted mapping-tree DN, an agreement with its usual settings) fed to two
//! ferrodir servers with OpenLDAP's ldapmodify; 389-ds settings ferrodir
//! does not implement are refused with unwillingToPerform naming them; and
//! fractional replication (nsDS5ReplicatedAttributeList) keeps excluded
//! attributes on the supplier.

mod repl_common;

use repl_common::*;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(60);
const QUOTED_REPLICA: &str = "cn=replica,cn=\"dc=example,dc=com\",cn=mapping tree,cn=config";

/// The replication manager as 389-ds's dsconf creates it.
fn manager_ldif() -> String {
    format!(
        "dn: cn=replication manager,cn=config
changetype: add
objectClass: top
objectClass: netscapeServer
objectClass: nsAccount
cn: replication manager
description: suppliers bind as this entry
userPassword: {}
",
        repl_password()
    )
}

/// A replica entry as the 389-ds admin guide writes it (ldapmodify,
/// changetype add, the suffix quoted in the DN, extensibleObject).
fn replica_ldif(kind: u8, rid: u32, extra: &str) -> String {
    let flags = u8::from(kind == 3);
    format!(
        "dn: {QUOTED_REPLICA}
changetype: add
objectclass: top
objectclass: nsds5replica
objectclass: extensibleObject
cn: replica
nsds5replicaroot: dc=example,dc=com
nsds5replicaid: {rid}
nsds5replicatype: {kind}
nsds5flags: {flags}
nsds5ReplicaPurgeDelay: 604800
{extra}"
    )
}

fn agreement_dn_quoted(cn: &str) -> String {
    format!("cn={cn},{QUOTED_REPLICA}")
}

/// An agreement as the 389-ds admin guide writes it, with its usual
/// timing settings; `extra` adds lines.
fn agreement_ldif(cn: &str, consumer: &Server, extra: &str) -> String {
    format!(
        "dn: {}
changetype: add
objectclass: top
objectclass: nsds5replicationagreement
cn: {cn}
nsds5replicahost: 127.0.0.1
nsds5replicaport: {}
nsds5ReplicaBindDN: cn=replication manager,cn=config
nsds5replicabindmethod: SIMPLE
nsds5replicaroot: dc=example,dc=com
description: agreement between supplier1 and consumer1
nsds5replicatimeout: 120
nsds5replicabusywaittime: 5
nsds5replicasessionpausetime: 1
nsds5replicacredentials: {}
{extra}nsds5BeginReplicaRefresh: start
",
        agreement_dn_quoted(cn),
        consumer.port,
        repl_password()
    )
}

fn modify_ok(url: &str, ldif: &str, what: &str) {
    let o = ldapmodify_root(url, ldif);
    assert_eq!(code(&o), 0, "{what}: {}{}", out(&o), err(&o));
}

/// Waits until the entry at `dn` on `server` satisfies `cond`.
fn wait_entry(
    server: &Server,
    dn: &str,
    what: &str,
    cond: impl Fn(&LdifEntry) -> bool,
) -> LdifEntry {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(e) = read_entry(&server.url(), dn, &["*"]) {
            if cond(&e) {
                return e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {dn} never got there; now {:?}\nlog:\n{}",
            read_entry(&server.url(), dn, &["*"]).map(|e| e.names()),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_in_sync(supplier: &Server, cn: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let state = agreement_attr(supplier, cn, "ferrodirReplicationState");
        if state.as_deref() == Some("in sync") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "agreement {cn} never in sync: {state:?}, status {:?}",
            agreement_attr(supplier, cn, "nsds5replicaLastUpdateStatus")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn changes_sent(supplier: &Server, cn: &str) -> u64 {
    agreement_attr(supplier, cn, "nsds5replicaChangesSentSinceStartup")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits until the agreement has sent `count` changes and is in sync.
fn wait_sent(supplier: &Server, cn: &str, count: u64) {
    let deadline = Instant::now() + CONVERGE;
    while changes_sent(supplier, cn) < count {
        assert!(
            Instant::now() < deadline,
            "agreement {cn} sent {} changes, not {count}",
            changes_sent(supplier, cn)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_in_sync(supplier, cn);
}

fn wait_init(supplier: &Server, cn: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = agreement_attr(supplier, cn, "nsds5replicaLastInitStatus").unwrap_or_default();
        if status.starts_with("Error (0) Total update succeeded") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "init over {cn} never finished: {status:?}\n{}",
            supplier.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn admin_guide_replication_ldif_gives_a_working_pair() {
    let supplier = Server::fast();
    let consumer = Server::fast();
    // Consumer: the replication manager and a read-only replica.
    modify_ok(&consumer.url(), &manager_ldif(), "replication manager");
    modify_ok(
        &consumer.url(),
        &replica_ldif(
            2,
            65535,
            "nsds5ReplicaBindDN: cn=replication manager,cn=config\n",
        ),
        "consumer replica",
    );
    // Supplier: an updatable replica and the agreement.
    modify_ok(
        &supplier.url(),
        &replica_ldif(
            3,
            7,
            "nsds5ReplicaBindDN: cn=replication manager,cn=config\nnsds5ReplicaTombstonePurgeInterval: 86400\nnsds5ReplicaBackoffMin: 1\nnsds5ReplicaBackoffMax: 10\n",
        ),
        "supplier replica",
    );
    modify_ok(
        &supplier.url(),
        &agreement_ldif("ExampleAgreement", &consumer, ""),
        "agreement",
    );
    wait_init(&supplier, "ExampleAgreement");

    // The quoted DN and the RFC 4514 spelling name the same entry, and the
    // server prints RFC 4514.
    let o = search_root(
        &supplier.url(),
        r"cn=replica,cn=dc\3Dexample\2Cdc\3Dcom,cn=mapping tree,cn=config",
        &["-s", "base", "1.1"],
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(
        dns(&out(&o)),
        [r"cn=replica,cn=dc=example\,dc=com,cn=mapping tree,cn=config"]
    );
    let o = ldapmodify_root(
        &supplier.url(),
        &replica_ldif(3, 8, "").replace(
            QUOTED_REPLICA,
            r"cn=replica,cn=dc\3Dexample\2Cdc\3Dcom,cn=mapping tree,cn=config",
        ),
    );
    assert_eq!(code(&o), 68, "{}{}", out(&o), err(&o));

    // A change on the supplier reaches the consumer.
    let o = ldapadd_root(&supplier.url(), &people_ldif("runbook", 3));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_entry(
        &consumer,
        "uid=runbook-2,ou=runbook,dc=example,dc=com",
        "an add on the supplier",
        |_| true,
    );
    modify_ok(
        &supplier.url(),
        "dn: uid=runbook-1,ou=runbook,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: changed\n",
        "modify",
    );
    wait_entry(
        &consumer,
        "uid=runbook-1,ou=runbook,dc=example,dc=com",
        "a modify on the supplier",
        |e| e.get("sn") == ["changed"],
    );

    // nsDS5ReplicaUpdateSchedule is honoured: once the session waits for
    // its window (a day that is neither today nor tomorrow, UTC) a change
    // is not sent, and it goes once the window opens.
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400 + 4)
        % 7;
    let closed_day = (today + 3) % 7;
    let agreement = agreement_dn_quoted("ExampleAgreement");
    modify_ok(
        &supplier.url(),
        &format!("dn: {agreement}\nchangetype: modify\nreplace: nsds5replicaupdateschedule\nnsds5replicaupdateschedule: 0000-2359 {closed_day}\n"),
        "closed schedule",
    );
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = agreement_attr(
            &supplier,
            "ExampleAgreement",
            "nsds5replicaLastUpdateStatus",
        )
        .unwrap_or_default();
        if status.contains("outside the update window") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never waited for the window: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    modify_ok(
        &supplier.url(),
        "dn: uid=runbook-0,ou=runbook,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: scheduled\n",
        "modify outside the window",
    );
    let held = read_entry(
        &consumer.url(),
        "uid=runbook-0,ou=runbook,dc=example,dc=com",
        &["sn"],
    )
    .expect("runbook-0");
    assert_ne!(held.get("sn"), ["scheduled"], "sent outside the window");
    modify_ok(
        &supplier.url(),
        &format!("dn: {agreement}\nchangetype: modify\nreplace: nsds5replicaupdateschedule\nnsds5replicaupdateschedule: *\n"),
        "open schedule",
    );
    wait_entry(
        &consumer,
        "uid=runbook-0,ou=runbook,dc=example,dc=com",
        "a modify once the window opened",
        |e| e.get("sn") == ["scheduled"],
    );
}

#[test]
fn unsupported_389_ds_settings_are_refused_by_name() {
    let s = Server::fast();
    modify_ok(&s.url(), &manager_ldif(), "replication manager");
    // A replica setting ferrodir does not do: 53 naming it, nothing added.
    let o = ldapmodify_root(
        &s.url(),
        &replica_ldif(
            3,
            1,
            "nsds5ReplicaBindDN: cn=replication manager,cn=config\nnsds5ReplicaProtocolTimeout: 120\n",
        ),
    );
    assert_eq!(code(&o), 53, "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("nsds5ReplicaProtocolTimeout is not supported: "),
        "{}",
        err(&o)
    );
    assert!(read_entry(&s.url(), QUOTED_REPLICA, &["1.1"]).is_none());
    modify_ok(
        &s.url(),
        &replica_ldif(
            3,
            1,
            "nsds5ReplicaBindDN: cn=replication manager,cn=config\n",
        ),
        "replica",
    );
    // An agreement setting: refused on add ...
    let peer = Server::unstarted(&[]);
    let o = ldapmodify_root(
        &s.url(),
        &agreement_ldif("to-peer", &peer, "nsds5ReplicaFlowControlWindow: 1000\n"),
    );
    assert_eq!(code(&o), 53, "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("nsds5ReplicaFlowControlWindow is not supported: "),
        "{}",
        err(&o)
    );
    assert!(read_entry(&s.url(), &agreement_dn_quoted("to-peer"), &["1.1"]).is_none());
    // ... and on modify, which changes nothing.
    let disabled = agreement_ldif("to-peer", &peer, "nsds5ReplicaEnabled: off\n")
        .replace("nsds5BeginReplicaRefresh: start\n", "");
    modify_ok(&s.url(), &disabled, "disabled agreement");
    let o = ldapmodify_root(
        &s.url(),
        &format!(
            "dn: {}\nchangetype: modify\nadd: nsDS5ReplicaBootstrapBindDN\nnsDS5ReplicaBootstrapBindDN: cn=other,cn=config\n",
            agreement_dn_quoted("to-peer")
        ),
    );
    assert_eq!(code(&o), 53, "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("nsDS5ReplicaBootstrapBindDN is not supported: "),
        "{}",
        err(&o)
    );
    let e = read_entry(&s.url(), &agreement_dn_quoted("to-peer"), &["*"]).expect("agreement");
    assert!(!e.has("nsDS5ReplicaBootstrapBindDN"));
    // Implemented settings with bad values are refused naming the setting.
    for (line, says) in [
        (
            "nsds5replicaupdateschedule: 0500-0000 1",
            "nsDS5ReplicaUpdateSchedule '0500-0000 1': the window ends before it starts",
        ),
        (
            "nsDS5ReplicatedAttributeList: (objectclass=*) $ EXCLUDE noSuchAttribute",
            "'noSuchAttribute' is not an attribute type of this server's schema",
        ),
        (
            "nsDS5ReplicatedAttributeList: (objectclass=*) $ EXCLUDE 2.5.4.0",
            "objectClass cannot be excluded",
        ),
        (
            "nsDS5ReplicatedAttributeListTotal: (uid=*) $ EXCLUDE description",
            "only the filter (objectclass=*) is supported",
        ),
        (
            "nsds5ReplicaTimeout: 0",
            "nsds5ReplicaTimeout '0' must be a number of seconds",
        ),
    ] {
        let attr = line.split(": ").next().unwrap_or_default();
        let o = ldapmodify_root(
            &s.url(),
            &format!(
                "dn: {}\nchangetype: modify\nreplace: {attr}\n{line}\n",
                agreement_dn_quoted("to-peer")
            ),
        );
        assert_eq!(code(&o), 53, "{line}: {}{}", out(&o), err(&o));
        assert!(err(&o).contains(says), "{line}: {}", err(&o));
    }
}

#[test]
fn fractional_replication_keeps_excluded_attributes_on_the_supplier() {
    let supplier = Server::fast();
    let consumer = Server::fast();
    let ann = "uid=ann,ou=people,dc=example,dc=com";
    let bob = "uid=bob,ou=people,dc=example,dc=com";
    let o = ldapadd_root(
        &supplier.url(),
        &format!(
            "dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: {ann}
objectClass: inetOrgPerson
uid: ann
cn: Ann
sn: A
mail: ann@example.com
telephoneNumber: 111
mobile: 222
description: supplier-only note
"
        ),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    // The consumer accepts members of a replication managers group.
    modify_ok(&consumer.url(), &manager_ldif(), "replication manager");
    modify_ok(
        &consumer.url(),
        "dn: cn=replication managers,cn=config\nchangetype: add\nobjectClass: groupOfNames\ncn: replication managers\nmember: cn=replication manager,cn=config\n",
        "group",
    );
    modify_ok(
        &consumer.url(),
        &replica_ldif(
            2,
            65535,
            "nsDS5ReplicaBindDNGroup: cn=replication managers,cn=config\nnsDS5ReplicaBindDnGroupCheckInterval: 60\n",
        ),
        "consumer replica",
    );
    modify_ok(&supplier.url(), &replica_ldif(3, 1, ""), "supplier replica");
    // Total init leaves out mobile too; incremental updates send it.
    modify_ok(
        &supplier.url(),
        &agreement_ldif(
            "fractional",
            &consumer,
            "nsDS5ReplicatedAttributeList: (objectclass=*) $ EXCLUDE telephoneNumber description\nnsDS5ReplicatedAttributeListTotal: (objectclass=*) $ EXCLUDE telephoneNumber description mobile\nnsds5ReplicaStripAttrs: modifiersName modifyTimestamp\n",
        ),
        "agreement",
    );
    wait_init(&supplier, "fractional");
    let e = read_entry(&consumer.url(), ann, &["*"]).expect("ann after init");
    assert_eq!(e.get("mail"), ["ann@example.com"]);
    for excluded in ["telephoneNumber", "description", "mobile"] {
        assert!(
            !e.has(excluded),
            "{excluded} reached the consumer by init: {:?}",
            e.names()
        );
    }

    // A modify of excluded attributes only: it goes as an empty change,
    // which changes nothing on the consumer but moves its RUV, so it is
    // sent once and later changes flow.
    wait_in_sync(&supplier, "fractional");
    let sent_before = changes_sent(&supplier, "fractional");
    let before = read_entry(&consumer.url(), ann, &["*", "+"]).expect("ann");
    modify_ok(
        &supplier.url(),
        &format!("dn: {ann}\nchangetype: modify\nreplace: description\ndescription: still local\n-\nreplace: telephoneNumber\ntelephoneNumber: 333\n"),
        "excluded-only modify",
    );
    wait_sent(&supplier, "fractional", sent_before + 1);
    let after = read_entry(&consumer.url(), ann, &["*", "+"]).expect("ann");
    assert!(!after.has("description") && !after.has("telephoneNumber"));
    for unchanged in ["modifyTimestamp", "modifiersName", "entryCSN"] {
        assert_eq!(after.get(unchanged), before.get(unchanged), "{unchanged}");
    }

    // Mixed changes: the excluded part stays, the rest arrives.
    modify_ok(
        &supplier.url(),
        &format!("dn: {ann}\nchangetype: modify\nreplace: mobile\nmobile: 444\n-\nreplace: description\ndescription: again local\n"),
        "mixed modify",
    );
    let o = ldapadd_root(
        &supplier.url(),
        &format!("dn: {bob}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\nsn: B\ntelephoneNumber: 555\ndescription: bob's note\nmobile: 666\n"),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    modify_ok(
        &supplier.url(),
        &format!("dn: {ann}\nchangetype: modify\nreplace: sn\nsn: Later\n"),
        "later modify",
    );
    let e = wait_entry(
        &consumer,
        ann,
        "the change after the excluded-only one",
        |e| e.get("sn") == ["Later"],
    );
    assert_eq!(e.get("mobile"), ["444"]);
    assert!(
        !e.has("description") && !e.has("telephoneNumber"),
        "{:?}",
        e.names()
    );
    let b = wait_entry(&consumer, bob, "an add", |_| true);
    assert_eq!(b.get("mobile"), ["666"]);
    assert!(
        !b.has("description") && !b.has("telephoneNumber"),
        "{:?}",
        b.names()
    );
    wait_in_sync(&supplier, "fractional");
    // Each change went once: the emptied one was not offered again.
    assert_eq!(changes_sent(&supplier, "fractional"), sent_before + 4);
    // The supplier keeps everything.
    let s = read_entry(&supplier.url(), ann, &["*"]).expect("ann on the supplier");
    assert_eq!(s.get("description"), ["again local"]);
    assert_eq!(s.get("telephoneNumber"), ["333"]);
}
