//! cn=schema changed over LDAP with OpenLDAP's ldapmodify, against the real
//! binary: definitions in force at once and after a restart, each refusal
//! with its result code and nothing changed, access rules on cn=schema.

mod common;

use common::*;

const BADGE: &str = "( 2.25.4242.1.1 NAME 'exampleBadgeNumber' \
    DESC 'badge number printed on the staff card' \
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch \
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )";
const STAFF: &str = "( 2.25.4242.2.1 NAME 'exampleStaff' DESC 'staff member data' \
    SUP top AUXILIARY MAY exampleBadgeNumber )";
const CAROL: &str = "cn=Carol,ou=people,dc=example,dc=com";

/// An LDIF modify of cn=schema: one `op: attr` block per (op, attr, value).
fn schema_ldif(changes: &[(&str, &str, &str)]) -> String {
    let mut ldif = String::from("dn: cn=schema\nchangetype: modify\n");
    for (i, (op, attr, value)) in changes.iter().enumerate() {
        if i > 0 {
            ldif.push_str("-\n");
        }
        ldif.push_str(&format!("{op}: {attr}\n{attr}: {value}\n"));
    }
    ldif
}

/// What cn=schema lists and its schema CSN, as root reads it.
#[derive(Debug)]
struct Listing {
    types: Vec<String>,
    classes: Vec<String>,
    csn: Vec<String>,
    modified: Vec<String>,
}

fn listing(url: &str) -> Listing {
    let o = search_root(
        url,
        "cn=schema",
        &[
            "-s",
            "base",
            "(objectClass=*)",
            "attributeTypes",
            "objectClasses",
            "nsSchemaCSN",
            "modifyTimestamp",
        ],
    );
    assert_code(&o, 0, "reading cn=schema");
    let e = entries(&o)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no cn=schema entry:\n{}", out(&o)));
    Listing {
        types: e.get("attributeTypes"),
        classes: e.get("objectClasses"),
        csn: e.get("nsSchemaCSN"),
        modified: e.get("modifyTimestamp"),
    }
}

/// Panics naming only what differs between two listings.
fn assert_same(now: &Listing, then: &Listing, what: &str) {
    let diff = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|v| !b.contains(v))
            .map(|v| format!("+ {v}"))
            .chain(
                b.iter()
                    .filter(|v| !a.contains(v))
                    .map(|v| format!("- {v}")),
            )
            .collect()
    };
    let mut d = diff(&now.types, &then.types);
    d.extend(diff(&now.classes, &then.classes));
    assert!(
        d.is_empty(),
        "{what}: the definitions differ:\n{}",
        d.join("\n")
    );
    assert_eq!(now.csn, then.csn, "{what}: nsSchemaCSN");
    assert_eq!(now.modified, then.modified, "{what}: modifyTimestamp");
}

fn lists(values: &[String], oid: &str) -> Option<String> {
    values
        .iter()
        .find(|v| v.starts_with(&format!("( {oid} ")))
        .cloned()
}

fn add_badge_and_staff(url: &str) {
    let o = ldapmodify_root(
        url,
        &schema_ldif(&[
            ("add", "attributeTypes", BADGE),
            ("add", "objectClasses", STAFF),
        ]),
    );
    assert_code(&o, 0, "adding exampleBadgeNumber and exampleStaff");
}

fn add_carol(url: &str) -> std::process::Output {
    ldapadd_root(
        url,
        &format!(
            "dn: {CAROL}\nobjectClass: person\nobjectClass: exampleStaff\ncn: Carol\nsn: Carter\n\
             exampleBadgeNumber: B-1234\n"
        ),
    )
}

#[test]
fn definitions_added_over_ldap_are_used_at_once_and_survive_a_restart() {
    let mut s = Server::with_sample();
    let url = s.url();
    let before = listing(&url);
    assert!(lists(&before.types, "2.25.4242.1.1").is_none());
    // Not known yet: the entry is refused.
    assert_code(&add_carol(&url), 17, "an entry with an unknown type");
    add_badge_and_staff(&url);
    let after = listing(&url);
    let badge = lists(&after.types, "2.25.4242.1.1").unwrap_or_else(|| panic!("{after:?}"));
    assert!(badge.ends_with("X-ORIGIN 'user defined' )"), "{badge}");
    let staff = lists(&after.classes, "2.25.4242.2.1").unwrap_or_else(|| panic!("{after:?}"));
    assert!(
        staff.contains("exampleStaff") && staff.contains("X-ORIGIN 'user defined'"),
        "{staff}"
    );
    // Shipped definitions are listed without an origin.
    let cn = lists(&after.types, "2.5.4.3").unwrap_or_else(|| panic!("no cn"));
    assert!(!cn.contains("X-ORIGIN"), "{cn}");
    assert_eq!(after.csn.len(), 1, "{after:?}");
    assert_eq!(after.csn.first().map(String::len), Some(20), "{after:?}");
    assert_eq!(after.modified.len(), 1, "{after:?}");
    assert_ne!(before.csn, after.csn);

    assert_code(&add_carol(&url), 0, "an entry using the new class and type");
    let found = search_root(
        &url,
        SUFFIX,
        &["(exampleBadgeNumber=b-12*)", "exampleBadgeNumber"],
    );
    assert_code(&found, 0, "searching by the new type");
    assert_eq!(dn_set(&found), sorted_lower(&[CAROL]));
    // SINGLE-VALUE is enforced.
    let two = ldapmodify_root(
        &url,
        &format!(
            "dn: {CAROL}\nchangetype: modify\nadd: exampleBadgeNumber\nexampleBadgeNumber: B-2\n"
        ),
    );
    assert_code(&two, 19, "a second value of a SINGLE-VALUE user type");

    s.stop();
    s.launch();
    let restarted = listing(&url);
    assert_same(&restarted, &after, "cn=schema after the restart");
    let carol = read_entry(&url, CAROL, &["exampleBadgeNumber", "objectClass"])
        .unwrap_or_else(|| panic!("{CAROL} is gone"));
    assert_eq!(carol.get("exampleBadgeNumber"), vec!["B-1234"]);
    let dave = ldapadd_root(
        &url,
        "dn: cn=Dave,ou=people,dc=example,dc=com\nobjectClass: person\nobjectClass: exampleStaff\n\
         cn: Dave\nsn: Doe\nexampleBadgeNumber: B-77\n",
    );
    assert_code(&dave, 0, "an entry using the definitions after the restart");
}

/// Each refusal: its result code, a message naming the problem, and
/// cn=schema (definitions and CSN) unchanged.
#[test]
fn bad_changes_are_refused_with_their_code_and_change_nothing() {
    let s = Server::with_sample();
    let url = s.url();
    add_badge_and_staff(&url);
    assert_code(&add_carol(&url), 0, "an entry using the user definitions");
    let floor = "( 2.25.4242.1.2 NAME 'exampleFloor' EQUALITY integerMatch \
        SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )";
    let cases: Vec<(&str, String, i32, &str)> = vec![
        (
            "unparsable",
            schema_ldif(&[("add", "attributeTypes", "( 2.25.4242.1.9 NAME 'x' SYNTAX")]),
            21,
            "attributeTypes",
        ),
        (
            "unknown SUP",
            schema_ldif(&[("add", "attributeTypes", "( 2.25.4242.1.9 NAME 'exX' SUP noSuchType )")]),
            19,
            "noSuchType",
        ),
        (
            "unknown syntax",
            schema_ldif(&[("add", "attributeTypes", "( 2.25.4242.1.9 NAME 'exX' SYNTAX 1.2.3.4.5 )")]),
            19,
            "SYNTAX 1.2.3.4.5",
        ),
        (
            "unknown matching rule",
            schema_ldif(&[(
                "add",
                "attributeTypes",
                "( 2.25.4242.1.9 NAME 'exX' EQUALITY fuzzyMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
            )]),
            19,
            "fuzzyMatch",
        ),
        (
            "unknown MAY type",
            schema_ldif(&[("add", "objectClasses", "( 2.25.4242.2.9 NAME 'exC' SUP top AUXILIARY MAY noSuchAttr )")]),
            19,
            "noSuchAttr",
        ),
        (
            "OID of a shipped object class",
            schema_ldif(&[("add", "attributeTypes", "( 2.5.6.6 NAME 'exX' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )")]),
            19,
            "'person'",
        ),
        (
            "OID of a user definition, defined differently",
            schema_ldif(&[("add", "attributeTypes", &floor.replace("2.25.4242.1.2", "2.25.4242.1.1"))]),
            19,
            "OID 2.25.4242.1.1 is already used",
        ),
        (
            "name of a shipped type",
            schema_ldif(&[("add", "attributeTypes", "( 2.25.4242.1.9 NAME 'mail' SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )")]),
            19,
            "name 'mail'",
        ),
        (
            "replacing a shipped definition",
            schema_ldif(&[("add", "attributeTypes", "( 2.5.4.3 NAME 'cn' SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )")]),
            53,
            "cannot be replaced",
        ),
        (
            "deleting a shipped definition",
            schema_ldif(&[("delete", "objectClasses", "( 2.5.6.6 )")]),
            53,
            "cannot be deleted",
        ),
        (
            "an identical definition again",
            schema_ldif(&[("add", "attributeTypes", BADGE)]),
            20,
            "already defined",
        ),
        (
            "a shipped definition again",
            {
                let l = listing(&url);
                schema_ldif(&[("add", "attributeTypes", &lists(&l.types, "2.5.4.3").unwrap_or_default())])
            },
            20,
            "already defined",
        ),
        (
            "replace",
            schema_ldif(&[("replace", "attributeTypes", floor)]),
            53,
            "replace",
        ),
        (
            "deleting what an entry uses",
            schema_ldif(&[
                ("delete", "objectClasses", "( 2.25.4242.2.1 )"),
                ("delete", "attributeTypes", "( 2.25.4242.1.1 )"),
            ]),
            19,
            CAROL,
        ),
        (
            "deleting what another definition uses",
            schema_ldif(&[("delete", "attributeTypes", "( 2.25.4242.1.1 )")]),
            19,
            "exampleStaff",
        ),
        (
            "deleting what is not there",
            schema_ldif(&[("delete", "attributeTypes", "( 2.25.4242.1.77 )")]),
            16,
            "2.25.4242.1.77",
        ),
        (
            "a good value before a bad one",
            schema_ldif(&[
                ("add", "attributeTypes", floor),
                ("add", "objectClasses", "( 2.25.4242.2.9 NAME 'exC' SUP nothingAtAll AUXILIARY )"),
            ]),
            19,
            "nothingAtAll",
        ),
    ];
    for (what, ldif, want, needle) in cases {
        let before = listing(&url);
        let o = ldapmodify_root(&url, &ldif);
        assert_code(&o, want, what);
        assert!(
            err(&o).contains(needle),
            "{what}: the message does not name {needle:?}:\n{}",
            err(&o)
        );
        assert_same(&listing(&url), &before, what);
    }
    assert!(lists(&listing(&url).types, "2.25.4242.1.2").is_none());
}

#[test]
fn unused_user_definitions_can_be_deleted() {
    let s = Server::with_sample();
    let url = s.url();
    add_badge_and_staff(&url);
    let before = listing(&url);
    // By OID alone, the class first (it allows the type), in one modify.
    let o = ldapmodify_root(
        &url,
        &schema_ldif(&[
            ("delete", "objectClasses", "( 2.25.4242.2.1 )"),
            ("delete", "attributeTypes", BADGE),
        ]),
    );
    assert_code(&o, 0, "deleting unused user definitions");
    let after = listing(&url);
    assert!(lists(&after.types, "2.25.4242.1.1").is_none());
    assert!(lists(&after.classes, "2.25.4242.2.1").is_none());
    assert_ne!(after.csn, before.csn);
    assert_code(&add_carol(&url), 17, "an entry with the deleted type");
    // The same OID can be defined again.
    add_badge_and_staff(&url);
}

#[test]
fn only_the_root_dn_and_those_the_access_rules_name_change_the_schema() {
    let s = Server::with_sample();
    let url = s.url();
    let ldif = schema_ldif(&[("add", "attributeTypes", BADGE)]);
    let anon = client("ldapmodify", &url, Who::Anon, &[], Some(&ldif));
    assert_code(&anon, 50, "anonymous");
    assert!(err(&anon).contains("cn=schema"), "{}", err(&anon));
    let alice = client(
        "ldapmodify",
        &url,
        Who::User(ALICE, ALICE_PW),
        &[],
        Some(&ldif),
    );
    assert_code(&alice, 50, "an ordinary user");
    assert!(lists(&listing(&url).types, "2.25.4242.1.1").is_none());

    let aci = format!(
        "(targetattr=\"attributeTypes || objectClasses\")(version 3.0; acl \"schema admins\"; \
         allow (write) userdn=\"ldap:///{ALICE}\";)"
    );
    let grant = format!("dn: cn=schema\nchangetype: modify\nadd: aci\naci: {aci}\n");
    assert_code(&ldapmodify_root(&url, &grant), 0, "an aci on cn=schema");
    let alice = client(
        "ldapmodify",
        &url,
        Who::User(ALICE, ALICE_PW),
        &[],
        Some(&ldif),
    );
    assert_code(&alice, 0, "a user the access rules name");
    assert!(lists(&listing(&url).types, "2.25.4242.1.1").is_some());
    let bob = client(
        "ldapmodify",
        &url,
        Who::User(BOB, BOB_PW),
        &[],
        Some(&schema_ldif(&[("add", "objectClasses", STAFF)])),
    );
    assert_code(&bob, 50, "a user the access rules do not name");
    // The rule itself shows to root only here (alice may not write it).
    let as_root = search_root(&url, "cn=schema", &["-s", "base", "(objectClass=*)", "aci"]);
    assert_eq!(
        entries(&as_root).first().map(|e| e.get("aci")),
        Some(vec![aci])
    );
    let as_alice = search_as(
        &url,
        Who::User(ALICE, ALICE_PW),
        "cn=schema",
        &["-s", "base", "(objectClass=*)", "aci"],
    );
    assert_eq!(
        entries(&as_alice).first().map(|e| e.has("aci")),
        Some(false)
    );
}

/// The LDIF blocks of docs/schema.md's "Changing the schema over LDAP", in order.
fn documented_examples() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let section = text
        .split("## Changing the schema over LDAP")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("{path} has no section 'Changing the schema over LDAP'"));
    section
        .split("```ldif\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_documented_examples_run() {
    let s = Server::fast();
    let url = s.url();
    let blocks = documented_examples();
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    let (add, delete, aci) = (&blocks[0], &blocks[1], &blocks[2]);
    assert_code(&ldapmodify_root(&url, add), 0, "the documented addition");
    let carol = read_entry(&url, "cn=Carol,dc=example,dc=com", &["exampleBadgeNumber"])
        .unwrap_or_else(|| panic!("the documented entry is missing"));
    assert_eq!(carol.get("exampleBadgeNumber"), vec!["B-1234"]);
    let in_use = ldapmodify_root(&url, delete);
    assert_code(&in_use, 19, "the documented delete while the entry exists");
    let args = as_root(&url);
    let mut refs: Vec<&str> = args.iter().map(String::as_str).collect();
    refs.push("cn=Carol,dc=example,dc=com");
    assert_code(
        &run_tool("ldapdelete", &refs, None),
        0,
        "deleting the example entry",
    );
    assert_code(&ldapmodify_root(&url, delete), 0, "the documented delete");
    assert!(lists(&listing(&url).types, "2.25.4242.1.1").is_none());
    assert_code(&ldapmodify_root(&url, aci), 0, "the documented aci");
}
