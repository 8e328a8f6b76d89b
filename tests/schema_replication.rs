//! Schema replication between real processes, every LDAP step with
//! OpenLDAP's clients: two suppliers given their own attribute types and
//! object classes (and entries using them) while their agreements are
//! paused end with the union of both; a server joined later by total init
//! gets it all; the same OID defined two ways on two suppliers is applied
//! nowhere, each keeps its own, and `ferrodir repl status` shows the
//! conflict on both.

mod repl_common;
use repl_common::*;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(120);
const DIRECTORY_STRING: &str = "1.3.6.1.4.1.1466.115.121.1.15";
const INTEGER: &str = "1.3.6.1.4.1.1466.115.121.1.27";

fn agreement_name(to: usize) -> String {
    format!("to-server{to}")
}

fn agreement_ldif(to: usize, port: u16, init: bool) -> String {
    agreement_to_ldif(&agreement_name(to), port, init)
}

fn ok(url: &str, ldif: &str) {
    let o = ldapmodify_root(url, ldif);
    assert_eq!(code(&o), 0, "{ldif}: {}", err(&o));
}

/// A server with the replication manager and a replica entry (ID `rid`).
fn replica(rid: usize) -> Server {
    let s = Server::fast();
    add_example(&s.url(), "replication-manager.ldif", None);
    let o = ldapadd_root(&s.url(), &replica_ldif(rid));
    assert_eq!(code(&o), 0, "replica {rid}: {}", err(&o));
    s
}

/// Two suppliers (IDs 1 and 2) in sync, server 1 holding the sample data,
/// then both agreements paused.
fn paused_pair() -> (Server, Server) {
    let (s1, s2) = (replica(1), replica(2));
    let o = ldapadd_root(&s1.url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = ldapadd_root(&s1.url(), &agreement_ldif(2, s2.port, true));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_init_done(&s1, &agreement_name(2), CONVERGE);
    let o = ldapadd_root(&s2.url(), &agreement_ldif(1, s1.port, false));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&[&s1, &s2], CONVERGE);
    set_enabled(&s1, 2, false);
    set_enabled(&s2, 1, false);
    (s1, s2)
}

fn set_enabled(s: &Server, to: usize, on: bool) {
    let value = if on { "on" } else { "off" };
    ok(
        &s.url(),
        &format!(
            "dn: cn={},{REPLICA_DN}\nchangetype: modify\nreplace: nsds5ReplicaEnabled\nnsds5ReplicaEnabled: {value}\n",
            agreement_name(to)
        ),
    );
}

fn add_definitions(url: &str, attribute_type: &str, object_class: &str) {
    ok(
        url,
        &format!(
            "dn: cn=schema\nchangetype: modify\nadd: attributeTypes\nattributeTypes: {attribute_type}\n-\nadd: objectClasses\nobjectClasses: {object_class}\n"
        ),
    );
}

/// `who`'s own attribute type `<who>Badge` and auxiliary class
/// `<who>Staff`, and an entry uid=<who> using both.
fn own_schema_and_entry(url: &str, who: &str, arc: u32) {
    add_definitions(
        url,
        &format!(
            "( 2.25.4242.{arc}.1 NAME '{who}Badge' EQUALITY caseIgnoreMatch SYNTAX {DIRECTORY_STRING} SINGLE-VALUE )"
        ),
        &format!("( 2.25.4242.{arc}.2 NAME '{who}Staff' SUP top AUXILIARY MAY {who}Badge )"),
    );
    ok(
        url,
        &format!(
            "dn: uid={who},ou=people,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: {who}Staff\nuid: {who}\ncn: {who}\nsn: {who}\n{who}Badge: badge of {who}\n"
        ),
    );
}

fn schema_text(url: &str) -> String {
    let o = search_root(
        url,
        "cn=schema",
        &[
            "-s",
            "base",
            "-o",
            "ldif-wrap=no",
            "(objectClass=*)",
            "attributeTypes",
            "objectClasses",
        ],
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    out(&o)
}

fn has_definitions(url: &str, names: &[&str]) -> bool {
    let text = schema_text(url);
    names.iter().all(|n| text.contains(&format!("NAME '{n}'")))
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn badge(url: &str, who: &str) -> Option<String> {
    read_entry(
        url,
        &format!("uid={who},ou=people,{SUFFIX}"),
        &[&format!("{who}Badge")],
    )
    .and_then(|e| e.get(&format!("{who}Badge")).first().cloned())
}

const NAMES: [&str; 4] = ["oneBadge", "oneStaff", "twoBadge", "twoStaff"];

#[test]
fn definitions_made_apart_merge_and_a_late_server_gets_them_by_total_init() {
    let (s1, s2) = paused_pair();
    own_schema_and_entry(&s1.url(), "one", 1);
    own_schema_and_entry(&s2.url(), "two", 2);
    assert!(!has_definitions(&s2.url(), &["oneBadge"]));
    set_enabled(&s1, 2, true);
    set_enabled(&s2, 1, true);
    wait_converged(&[&s1, &s2], CONVERGE);
    for s in [&s1, &s2] {
        let url = s.url();
        assert!(
            has_definitions(&url, &NAMES),
            "{url}: {}",
            schema_text(&url)
        );
        assert_eq!(badge(&url, "one").as_deref(), Some("badge of one"), "{url}");
        assert_eq!(badge(&url, "two").as_deref(), Some("badge of two"), "{url}");
    }
    // Each definition keeps the CSN it was made with on its origin.
    let csns = |url: &str| {
        let o = search_root(
            url,
            "cn=schema",
            &[
                "-s",
                "base",
                "-o",
                "ldif-wrap=no",
                "(objectClass=*)",
                "ferrodirSchemaDefinition",
            ],
        );
        let mut v: Vec<String> = out(&o)
            .lines()
            .filter_map(|l| l.strip_prefix("ferrodirSchemaDefinition: "))
            .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect();
        v.sort();
        v
    };
    assert_eq!(csns(&s1.url()).len(), 4);
    assert_eq!(csns(&s1.url()), csns(&s2.url()));
    // An entry using a replicated definition, written on the other side.
    ok(
        &s2.url(),
        &format!("dn: uid=two,ou=people,{SUFFIX}\nchangetype: modify\nadd: objectClass\nobjectClass: oneStaff\n-\nadd: oneBadge\noneBadge: two wears one's badge\n"),
    );
    wait_converged(&[&s1, &s2], CONVERGE);

    // A third server joins: total init from server 1 brings schema and entries.
    let s3 = replica(3);
    assert!(!has_definitions(&s3.url(), &["oneBadge"]));
    let o = ldapadd_root(&s1.url(), &agreement_ldif(3, s3.port, true));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_init_done(&s1, &agreement_name(3), CONVERGE);
    assert!(
        has_definitions(&s3.url(), &NAMES),
        "{}",
        schema_text(&s3.url())
    );
    assert_eq!(csns(&s3.url()), csns(&s1.url()));
    assert_eq!(badge(&s3.url(), "one").as_deref(), Some("badge of one"));
    assert_eq!(badge(&s3.url(), "two").as_deref(), Some("badge of two"));
    wait_converged(&[&s1, &s3], CONVERGE);
    // Only replication identities add definitions with their CSNs.
    let forged = format!(
        "dn: cn=schema\nchangetype: modify\nadd: ferrodirSchemaDefinition\nferrodirSchemaDefinition: attributeTypes 00000001000000010000 ( 2.25.4242.7.1 NAME 'forged' SYNTAX {DIRECTORY_STRING} )\n"
    );
    let o = ldapmodify_root(&s3.url(), &forged);
    assert_eq!(code(&o), 50, "{}", err(&o));
    assert!(err(&o).contains("replication"), "{}", err(&o));
    assert!(!has_definitions(&s3.url(), &["forged"]));
    // The definitions outlive a restart of the server that received them.
    let mut s3 = s3;
    s3.stop();
    s3.launch();
    assert!(has_definitions(&s3.url(), &NAMES));
}

fn repl_status(s: &Server, json: bool) -> String {
    let url = s.url();
    let mut args = vec!["repl", "status", "--url", &url];
    if json {
        args.push("--json");
    }
    let o = std::process::Command::new(bin())
        .args(&args)
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("running ferrodir repl status");
    assert_eq!(code(&o), 0, "{}", err(&o));
    out(&o)
}

#[test]
fn the_same_oid_defined_two_ways_is_a_conflict_shown_on_both_sides() {
    let (s1, s2) = paused_pair();
    let clash_one = format!(
        "( 2.25.4242.9.1 NAME 'clashBadge' EQUALITY caseIgnoreMatch SYNTAX {DIRECTORY_STRING} )"
    );
    let clash_two =
        format!("( 2.25.4242.9.1 NAME 'clashBadge' EQUALITY integerMatch SYNTAX {INTEGER} )");
    let class = "( 2.25.4242.9.2 NAME 'clashStaff' SUP top AUXILIARY MAY clashBadge )";
    add_definitions(&s1.url(), &clash_one, class);
    add_definitions(&s2.url(), &clash_two, class);
    // A definition that does not clash still travels.
    add_definitions(
        &s1.url(),
        &format!("( 2.25.4242.9.3 NAME 'calmBadge' SYNTAX {DIRECTORY_STRING} )"),
        "( 2.25.4242.9.4 NAME 'calmStaff' SUP top AUXILIARY MAY calmBadge )",
    );
    set_enabled(&s1, 2, true);
    set_enabled(&s2, 1, true);
    for s in [&s1, &s2] {
        wait_for(
            &format!("repl status of {} shows the schema conflict", s.url()),
            CONVERGE,
            || repl_status(s, false).contains("schema conflict"),
        );
    }
    wait_for("calmBadge reaches server 2", CONVERGE, || {
        has_definitions(&s2.url(), &["calmBadge", "calmStaff"])
    });
    for (s, mine, theirs) in [
        (&s1, DIRECTORY_STRING, INTEGER),
        (&s2, INTEGER, DIRECTORY_STRING),
    ] {
        let text = schema_text(&s.url());
        let line = text
            .lines()
            .find(|l| l.contains("2.25.4242.9.1 "))
            .unwrap_or_else(|| panic!("{}: no 2.25.4242.9.1 in {text}", s.url()));
        assert!(
            line.contains(mine) && !line.contains(theirs),
            "{}: {line}",
            s.url()
        );
        let status = repl_status(s, false);
        let conflict = status
            .lines()
            .find(|l| l.contains("schema conflict"))
            .unwrap_or_default();
        assert!(conflict.contains("2.25.4242.9.1"), "{status}");
        let json = repl_status(s, true);
        assert!(json.contains("\"schema_conflicts\":[\""), "{json}");
        assert!(json.contains("2.25.4242.9.1"), "{json}");
    }
    // Entries still replicate both ways, each side's own clashBadge aside.
    ok(
        &s2.url(),
        &format!("dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: objectClass\nobjectClass: calmStaff\n-\nadd: calmBadge\ncalmBadge: calm\n"),
    );
    wait_converged(&[&s1, &s2], CONVERGE);
    assert!(
        s1.log_text().contains("schema replication"),
        "the conflict is logged"
    );
}

/// A consumer that accepts the members of a replication managers group
/// (nsDS5ReplicaBindDNGroup, no nsDS5ReplicaBindDN) takes schema from them
/// too.
#[test]
fn a_bind_dn_group_member_sends_schema() {
    let supplier = replica(1);
    let consumer = Server::fast();
    add_example(&consumer.url(), "replication-manager.ldif", None);
    ok(
        &consumer.url(),
        "dn: cn=replication managers,cn=config\nchangetype: add\nobjectClass: groupOfNames\ncn: replication managers\nmember: cn=replication manager,cn=config\n",
    );
    ok(
        &consumer.url(),
        &format!(
            "dn: {REPLICA_DN}\nchangetype: add\nobjectClass: top\nobjectClass: nsDS5Replica\ncn: replica\n\
             nsDS5ReplicaRoot: {SUFFIX}\nnsDS5ReplicaType: 2\nnsDS5ReplicaId: 65535\nnsDS5Flags: 0\n\
             nsDS5ReplicaBindDNGroup: cn=replication managers,cn=config\n"
        ),
    );
    let o = ldapadd_root(&supplier.url(), SAMPLE);
    assert_eq!(code(&o), 0, "{}", err(&o));
    own_schema_and_entry(&supplier.url(), "grp", 3);
    let o = ldapadd_root(&supplier.url(), &agreement_ldif(2, consumer.port, true));
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_init_done(&supplier, &agreement_name(2), CONVERGE);
    assert!(
        has_definitions(&consumer.url(), &["grpBadge", "grpStaff"]),
        "{}",
        schema_text(&consumer.url())
    );
    assert_eq!(
        badge(&consumer.url(), "grp").as_deref(),
        Some("badge of grp")
    );
}
