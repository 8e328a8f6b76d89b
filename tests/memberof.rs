//! memberOf on a real server over loopback, driven by OpenLDAP's clients
//! (ldapmodify, ldapsearch, ldapcompare) and the ldap3 crate: shown on
//! members, `(memberOf=...)` searches, right after renames and deletes of
//! groups and members, nested groups, refused client writes, and the start
//! refused for configuration keys naming unknown attributes.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BASE: &str = "dc=example,dc=com";

const DATA: &str = "\
dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B

dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C

dn: cn=staff,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,dc=example,dc=com
member: UID=Bob, OU=People, DC=Example, DC=Com

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfUniqueNames
cn: admins
uniqueMember: uid=alice,ou=people,dc=example,dc=com

dn: cn=all,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: all
member: cn=staff,ou=groups,dc=example,dc=com
member: uid=carol,ou=people,dc=example,dc=com
";

fn lower(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().map(|s| s.to_ascii_lowercase()).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_ascii_lowercase()).collect()
}

/// memberOf of one entry as ldapsearch returns it (asked for by name).
fn member_of(url: &str, dn: &str) -> BTreeSet<String> {
    let o = search_root(url, dn, &["-s", "base", "(objectClass=*)", "memberOf"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let e = entries(&o);
    assert_eq!(e.len(), 1, "{}", out(&o));
    lower(e[0].get("memberOf"))
}

/// DNs matching `filter` in the whole suffix.
fn matching(url: &str, filter: &str) -> BTreeSet<String> {
    let o = search_root(url, BASE, &[filter, "1.1"]);
    assert_eq!(code(&o), 0, "{filter}: {}", err(&o));
    lower(dns(&out(&o)))
}

fn modify(url: &str, ldif: &str) {
    let o = ldapmodify_root(url, ldif);
    assert_eq!(code(&o), 0, "{ldif}: {}{}", out(&o), err(&o));
}

const ALICE: &str = "uid=alice,ou=people,dc=example,dc=com";
const BOB: &str = "uid=bob,ou=people,dc=example,dc=com";
const CAROL: &str = "uid=carol,ou=people,dc=example,dc=com";
const STAFF: &str = "cn=staff,ou=groups,dc=example,dc=com";
const ADMINS: &str = "cn=admins,ou=groups,dc=example,dc=com";
const ALL: &str = "cn=all,ou=groups,dc=example,dc=com";

#[test]
fn member_of_follows_groups_and_members_through_renames_and_deletes() {
    let s = Server::fast();
    let url = s.url();
    let o = ldapadd_root(&url, DATA);
    assert_eq!(code(&o), 0, "{}", err(&o));

    // Shown on members, from groupOfNames and groupOfUniqueNames; a member
    // value spelled differently still names the entry. Not nested by default.
    assert_eq!(member_of(&url, ALICE), set(&[STAFF, ADMINS]));
    assert_eq!(member_of(&url, BOB), set(&[STAFF]));
    assert_eq!(member_of(&url, CAROL), set(&[ALL]));
    assert_eq!(member_of(&url, STAFF), set(&[ALL]));
    assert!(member_of(&url, ADMINS).is_empty());

    // Operational: not among the user attributes, returned with "+".
    let o = search_root(&url, ALICE, &["-s", "base", "(objectClass=*)"]);
    assert!(!entries(&o)[0].has("memberOf"), "{}", out(&o));
    let o = search_root(&url, ALICE, &["-s", "base", "(objectClass=*)", "+"]);
    assert_eq!(lower(entries(&o)[0].get("memberOf")), set(&[STAFF, ADMINS]));

    // Searchable, with the DN matched by distinguishedNameMatch.
    assert_eq!(
        matching(&url, &format!("(memberOf={STAFF})")),
        set(&[ALICE, BOB])
    );
    assert_eq!(
        matching(&url, "(memberOf=CN=Staff, OU=Groups,DC=Example,DC=com)"),
        set(&[ALICE, BOB])
    );
    assert_eq!(
        matching(&url, &format!("(&(uid=a*)(memberOf={STAFF}))")),
        set(&[ALICE])
    );
    assert_eq!(
        matching(&url, &format!("(|(memberOf={ADMINS})(memberOf={ALL}))")),
        set(&[ALICE, CAROL, STAFF])
    );
    let not_staff = matching(&url, &format!("(!(memberOf={STAFF}))"));
    assert!(
        !not_staff.contains(ALICE) && not_staff.contains(CAROL),
        "{not_staff:?}"
    );
    assert!(matching(&url, "(memberOf=cn=nosuchgroup,dc=example,dc=com)").is_empty());
    assert_eq!(
        matching(&url, "(memberOf=*)"),
        set(&[ALICE, BOB, CAROL, STAFF])
    );

    // Compare.
    let mut args = as_root(&url);
    args.extend([ALICE.to_string(), format!("memberOf:{STAFF}")]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        code(&run_tool("ldapcompare", &refs, None)),
        6,
        "compareTrue"
    );
    let mut args = as_root(&url);
    args.extend([BOB.to_string(), format!("memberOf:{ADMINS}")]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        code(&run_tool("ldapcompare", &refs, None)),
        5,
        "compareFalse"
    );

    // Clients cannot write it: it is computed.
    let o = ldapmodify_root(
        &url,
        &format!("dn: {CAROL}\nchangetype: modify\nadd: memberOf\nmemberOf: {STAFF}\n"),
    );
    assert_eq!(code(&o), 19, "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("memberOf"), "{}", err(&o));
    assert_eq!(member_of(&url, CAROL), set(&[ALL]));

    // Adding and removing a member shows at once.
    modify(
        &url,
        &format!("dn: {ADMINS}\nchangetype: modify\nadd: uniqueMember\nuniqueMember: {CAROL}\n"),
    );
    assert_eq!(member_of(&url, CAROL), set(&[ALL, ADMINS]));
    modify(
        &url,
        &format!("dn: {ADMINS}\nchangetype: modify\ndelete: uniqueMember\nuniqueMember: {CAROL}\n"),
    );
    assert_eq!(member_of(&url, CAROL), set(&[ALL]));

    // A group renamed: its members name the new DN, the old one finds nothing.
    let team = "cn=team,ou=groups,dc=example,dc=com";
    modify(
        &url,
        &format!("dn: {STAFF}\nchangetype: modrdn\nnewrdn: cn=team\ndeleteoldrdn: 1\n"),
    );
    assert_eq!(member_of(&url, ALICE), set(&[team, ADMINS]));
    assert_eq!(
        matching(&url, &format!("(memberOf={team})")),
        set(&[ALICE, BOB])
    );
    assert!(matching(&url, &format!("(memberOf={STAFF})")).is_empty());
    // refint kept the nested group's reference: cn=all still holds cn=team.
    assert_eq!(member_of(&url, team), set(&[ALL]));

    // A member renamed: refint rewrites the member values, so memberOf
    // follows the entry to its new DN.
    let alice2 = "uid=alice2,ou=people,dc=example,dc=com";
    modify(
        &url,
        &format!("dn: {ALICE}\nchangetype: modrdn\nnewrdn: uid=alice2\ndeleteoldrdn: 1\n"),
    );
    assert_eq!(member_of(&url, alice2), set(&[team, ADMINS]));
    assert_eq!(
        matching(&url, &format!("(memberOf={team})")),
        set(&[alice2, BOB])
    );

    // A member deleted: gone from the group's members and its searches.
    let o = run_tool(
        "ldapdelete",
        &as_root(&url)
            .iter()
            .map(String::as_str)
            .chain([BOB])
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(
        matching(&url, &format!("(memberOf={team})")),
        set(&[alice2])
    );

    // A group deleted: no longer anyone's group.
    let o = run_tool(
        "ldapdelete",
        &as_root(&url)
            .iter()
            .map(String::as_str)
            .chain([ADMINS])
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(member_of(&url, alice2), set(&[team]));
    assert!(matching(&url, &format!("(memberOf={ADMINS})")).is_empty());
}

#[test]
fn nested_groups_when_configured_and_the_ldap3_crate_sees_them() {
    let s = Server::start_with_config(
        "password_scheme = \"SSHA512\"\n[memberof]\nnested = true\n",
        &[],
    );
    let url = s.url();
    let o = ldapadd_root(&url, DATA);
    assert_eq!(code(&o), 0, "{}", err(&o));
    // alice is in staff, staff is in all: alice is in all too.
    assert_eq!(member_of(&url, ALICE), set(&[STAFF, ADMINS, ALL]));
    assert_eq!(member_of(&url, BOB), set(&[STAFF, ALL]));
    assert_eq!(
        matching(&url, &format!("(memberOf={ALL})")),
        set(&[STAFF, ALICE, BOB, CAROL])
    );
    // A cycle ends: all in staff and staff in all; no entry lists itself.
    modify(
        &url,
        &format!("dn: {STAFF}\nchangetype: modify\nadd: member\nmember: {ALL}\n"),
    );
    assert_eq!(member_of(&url, STAFF), set(&[ALL]));
    assert_eq!(member_of(&url, ALL), set(&[STAFF]));
    assert_eq!(member_of(&url, ALICE), set(&[STAFF, ADMINS, ALL]));

    // The ldap3 crate, as applications use it.
    let mut c = ldap3::LdapConn::new(&url).expect("connect");
    c.with_timeout(Duration::from_secs(30));
    c.simple_bind(ROOT_DN, &root_password())
        .expect("bind")
        .success()
        .expect("root bind");
    let (rs, _) = c
        .search(
            BASE,
            ldap3::Scope::Subtree,
            &format!("(&(objectClass=inetOrgPerson)(memberOf={ADMINS}))"),
            vec!["memberOf"],
        )
        .expect("search")
        .success()
        .expect("search result");
    let found: Vec<ldap3::SearchEntry> =
        rs.into_iter().map(ldap3::SearchEntry::construct).collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].dn.to_ascii_lowercase(), ALICE);
    let groups: BTreeSet<String> = found[0]
        .attrs
        .get("memberOf")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.to_ascii_lowercase())
        .collect();
    assert_eq!(groups, set(&[STAFF, ADMINS, ALL]));
    c.unbind().ok();
}

/// `ferrodir serve` with `toml` as its configuration: the exit status and
/// what it printed, or None if it started (it is then stopped).
fn start_refused(toml: &str) -> (bool, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("ferrodir.toml");
    std::fs::write(&cfg, toml).expect("config");
    let mut child = Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--ldap")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let o = child.wait_with_output().expect("output");
            return (
                !status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            );
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            return (false, "still running".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn configuration_naming_unknown_attributes_is_refused_at_start() {
    for (toml, key, name) in [
        (
            "[indexes]\nuid = \"eq\"\nmember = \"eq\"\nuniqueMember = \"eq\"\nemployeNumber = \"eq\"\n",
            "[indexes] employeNumber",
            "employeNumber",
        ),
        (
            "[refint]\nattributes = [\"member\", \"managr\"]\n",
            "[refint] attributes",
            "managr",
        ),
        (
            "[memberof.groups]\ngroupOfNames = \"membr\"\n",
            "[memberof.groups] groupOfNames",
            "membr",
        ),
        (
            "[tls]\ncert_map_attribute = \"uidd\"\n",
            "[tls] cert_map_attribute",
            "uidd",
        ),
    ] {
        let (refused, text) = start_refused(toml);
        assert!(refused, "{toml}: should not start: {text}");
        assert!(
            text.contains(key) && text.contains(&format!("'{name}'")),
            "{toml}: the message should name {key} and '{name}': {text}"
        );
    }
    // A member attribute without an equality index cannot be looked up.
    let (refused, text) = start_refused("[indexes]\nobjectClass = \"eq\"\nuniqueMember = \"eq\"\n");
    assert!(refused && text.contains("member = \"eq\""), "{text}");
}

#[test]
fn imported_member_of_values_are_replaced_by_the_computed_ones() {
    // A 389-ds export stores memberOf; here the stored value is stale.
    let ldif = format!("dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n\n{DATA}\n")
        .replace(
            "uid: carol\n",
            "uid: carol\nmemberOf: cn=stale,ou=groups,dc=example,dc=com\n",
        );
    let mut s = Server::unstarted(&[]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("data.ldif");
    std::fs::write(&file, ldif).expect("ldif");
    let data = s.data.display().to_string();
    let o = ferrodir(
        &["import", "--data-dir", &data, &file.display().to_string()],
        None,
    );
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    s.launch();
    assert_eq!(member_of(&s.url(), CAROL), set(&[ALL]));
    assert!(matching(&s.url(), "(memberOf=cn=stale,ou=groups,dc=example,dc=com)").is_empty());
}

#[test]
fn access_control_sees_member_of_in_targetfilters_and_guards_reading_it() {
    let s = Server::fast();
    let url = s.url();
    let o = ldapadd_root(&url, DATA);
    assert_eq!(code(&o), 0, "{}", err(&o));
    modify(
        &url,
        &format!(
            "dn: {ALICE}\nchangetype: modify\nadd: roomNumber\nroomNumber: 101\n\n\
             dn: {CAROL}\nchangetype: modify\nadd: roomNumber\nroomNumber: 303\n"
        ),
    );
    // Not public by default: anonymous clients see no memberOf.
    let o = search_as(
        &url,
        Who::Anon,
        ALICE,
        &["-s", "base", "(objectClass=*)", "memberOf"],
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        entries(&o).iter().all(|e| !e.has("memberOf")),
        "{}",
        out(&o)
    );
    modify(
        &url,
        &format!(
            "dn: {BASE}\nchangetype: modify\nadd: aci\n\
             aci: (targetattr=\"memberOf\")(version 3.0; acl \"memberOf readable\"; allow (read,search,compare) userdn=\"ldap:///anyone\";)\n\
             aci: (targetattr=\"roomNumber\")(targetfilter=\"(memberOf={STAFF})\")(version 3.0; acl \"staff rooms\"; allow (read,search) userdn=\"ldap:///anyone\";)\n"
        ),
    );
    let o = search_as(
        &url,
        Who::Anon,
        ALICE,
        &["-s", "base", "(objectClass=*)", "memberOf", "roomNumber"],
    );
    let e = entries(&o);
    assert_eq!(e.len(), 1, "{}", out(&o));
    assert_eq!(lower(e[0].get("memberOf")), set(&[STAFF, ADMINS]));
    // The targetfilter matched through the computed memberOf.
    assert_eq!(e[0].get("roomNumber"), vec!["101".to_string()]);
    let o = search_as(
        &url,
        Who::Anon,
        CAROL,
        &["-s", "base", "(objectClass=*)", "roomNumber"],
    );
    assert!(
        entries(&o).iter().all(|e| !e.has("roomNumber")),
        "{}",
        out(&o)
    );
    let o = search_as(
        &url,
        Who::Anon,
        BASE,
        &[&format!("(memberOf={STAFF})"), "1.1"],
    );
    assert_eq!(lower(dns(&out(&o))), set(&[ALICE, BOB]));
}
