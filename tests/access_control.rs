//! Access control against the real binary with OpenLDAP's clients.
//!
//! Every server here first gets the default ACIs on its base entry
//! (`ferrodir::acl::default_acis`, written with `replace` so this keeps
//! working once the server adds them itself at creation), then SAMPLE.

mod common;

use common::*;
use ferrodir::auth::password::{self, Scheme};
use ferrodir::model::Dn;

const CAROL: &str = "uid=carol,ou=people,dc=example,dc=com";
const CAROL_PW: &str = "carolpw";
const HELPDESK: &str = "cn=helpdesk,ou=groups,dc=example,dc=com";

/// The default ACIs on the base entry, SAMPLE, carol with an imported
/// `{SSHA}` hash, and a helpdesk group whose only member is alice.
fn server() -> Server {
    let s = Server::fast();
    let url = s.url();
    let suffix = Dn::parse(SUFFIX).expect("suffix");
    let mut ldif = format!("dn: {SUFFIX}\nchangetype: modify\nreplace: aci\n");
    for aci in ferrodir::acl::default_acis(&suffix) {
        ldif.push_str(&format!("aci: {aci}\n"));
    }
    assert_code(
        &ldapmodify_root(&url, &ldif),
        0,
        "installing the default ACIs",
    );
    assert_code(&ldapadd_root(&url, SAMPLE), 0, "loading SAMPLE");
    let ssha = password::hash(Scheme::Ssha, CAROL_PW.as_bytes());
    assert!(ssha.starts_with("{SSHA}"), "{ssha}");
    let more = format!(
        "dn: {CAROL}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nobjectClass: shadowAccount\n\
         uid: carol\ncn: Carol Carter\nsn: Carter\nmail: carol@example.com\nuidNumber: 10003\n\
         gidNumber: 10000\nhomeDirectory: /home/carol\nshadowLastChange: 19000\nuserPassword: {ssha}\n\n\
         dn: {HELPDESK}\nobjectClass: groupOfNames\ncn: helpdesk\nmember: {ALICE}\n"
    );
    assert_code(&ldapadd_root(&url, &more), 0, "adding carol and helpdesk");
    s
}

fn has_attr(o: &std::process::Output, attr: &str) -> bool {
    entries(o).iter().any(|e| e.has(attr))
}

/// No password leaks to `who`: not by attribute list, not by filter, not by compare.
fn assert_no_password_leak(url: &str, who: Who, label: &str) {
    for target in [ALICE, BOB, CAROL] {
        let o = search_as(
            url,
            who,
            target,
            &[
                "-s",
                "base",
                "userPassword",
                "shadowLastChange",
                "cn",
                "*",
                "+",
            ],
        );
        assert_code(&o, 0, &format!("{label}: reading {target}"));
        assert!(
            has_attr(&o, "cn"),
            "{label}: public cn of {target} not readable:\n{}",
            out(&o)
        );
        for secret in ["userPassword", "shadowLastChange", "aci"] {
            assert!(
                !has_attr(&o, secret),
                "{label}: {secret} of {target} leaked:\n{}",
                out(&o)
            );
        }
    }
    for probe in [
        "(userPassword=*)",
        "(userPassword={SSHA}*)",
        "(userPassword=*SSHA*)",
        "(userPassword=alicepw)",
        "(!(userPassword=nothing))",
        "(|(uid=nobody)(userPassword=*))",
        "(shadowLastChange=*)",
    ] {
        let o = search_as(url, who, SUFFIX, &[probe, "1.1"]);
        assert_code(&o, 0, &format!("{label}: search {probe}"));
        assert!(
            dn_set(&o).is_empty(),
            "{label}: filter {probe} matched:\n{}",
            out(&o)
        );
    }
    for (target, pw) in [(ALICE, ALICE_PW), (CAROL, CAROL_PW)] {
        let o = client(
            "ldapcompare",
            url,
            who,
            &[target, &format!("userPassword:{pw}")],
            None,
        );
        assert_code(
            &o,
            50,
            &format!("{label}: compare userPassword of {target}"),
        );
    }
}

#[test]
fn anonymous_cannot_read_or_probe_passwords() {
    let s = server();
    let url = s.url();
    assert_no_password_leak(&url, Who::Anon, "anonymous");
    // Public attributes stay searchable: the whole people list.
    let o = search_as(&url, Who::Anon, SUFFIX, &["(uid=*)", "uid", "mail"]);
    assert_code(&o, 0, "anonymous people search");
    assert_eq!(dn_set(&o).len(), 3, "{}", out(&o));
    // The probes do match for the root DN, so the data is really there.
    let root = search_root(&url, SUFFIX, &["(userPassword=*)", "1.1"]);
    assert_eq!(dn_set(&root).len(), 3, "{}", out(&root));
    // Even the exact stored hash is no use to anyone else.
    let stored = read_entry(&url, CAROL, &["userPassword"])
        .expect("carol")
        .get("userPassword");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("{SSHA}"), "{stored:?}");
    let exact = format!("(userPassword={})", stored[0]);
    let root = search_root(&url, SUFFIX, &[&exact, "1.1"]);
    assert_eq!(dn_set(&root), vec![CAROL.to_string()], "{}", out(&root));
    for who in [Who::Anon, Who::User(BOB, BOB_PW)] {
        let o = search_as(&url, who, SUFFIX, &[&exact, "1.1"]);
        assert_code(&o, 0, "exact hash probe");
        assert!(dn_set(&o).is_empty(), "{}", out(&o));
    }
}

#[test]
fn ordinary_users_cannot_read_or_probe_passwords() {
    let s = server();
    let url = s.url();
    assert_no_password_leak(&url, Who::User(BOB, BOB_PW), "bob");
    assert_no_password_leak(&url, Who::User(ALICE, ALICE_PW), "alice");
}

#[test]
fn users_change_their_own_password_and_nobody_elses() {
    let s = server();
    let url = s.url();
    // ldappasswd without a user: the bound identity's own password.
    let o = client(
        "ldappasswd",
        &url,
        Who::User(ALICE, ALICE_PW),
        &["-s", "alice-new-1"],
        None,
    );
    assert_code(&o, 0, "alice changes her password with ldappasswd");
    assert_eq!(bind_code(&url, ALICE, "alice-new-1"), 0);
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 49);
    // ldappasswd naming herself, with the old password.
    let o = client(
        "ldappasswd",
        &url,
        Who::User(ALICE, "alice-new-1"),
        &["-a", "alice-new-1", "-s", "alice-new-2", ALICE],
        None,
    );
    assert_code(&o, 0, "alice changes her password naming herself");
    assert_eq!(bind_code(&url, ALICE, "alice-new-2"), 0);
    // ldapmodify on her own entry.
    let o = client(
        "ldapmodify",
        &url,
        Who::User(ALICE, "alice-new-2"),
        &[],
        Some(&format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: userPassword\nuserPassword: alice-new-3\n"
        )),
    );
    assert_code(&o, 0, "alice replaces her userPassword with ldapmodify");
    assert_eq!(bind_code(&url, ALICE, "alice-new-3"), 0);
    let alice = Who::User(ALICE, "alice-new-3");
    // Nobody else's: not with ldappasswd, not with ldapmodify.
    // ldappasswd exits 1 on any failure and prints the result code.
    let o = client("ldappasswd", &url, alice, &["-s", "owned", BOB], None);
    assert!(
        out(&o).contains("(50)") && code(&o) != 0,
        "alice sets bob's password with ldappasswd: {}{}",
        out(&o),
        err(&o)
    );
    for change in ["replace", "add", "delete"] {
        let o = client(
            "ldapmodify",
            &url,
            alice,
            &[],
            Some(&format!(
                "dn: {BOB}\nchangetype: modify\n{change}: userPassword\nuserPassword: owned\n"
            )),
        );
        assert_code(&o, 50, &format!("alice {change}s bob's userPassword"));
    }
    assert_eq!(bind_code(&url, BOB, BOB_PW), 0, "bob's password unchanged");
    assert_eq!(bind_code(&url, BOB, "owned"), 49);
    // Changing her own password does not let her write other attributes.
    let o = client(
        "ldapmodify",
        &url,
        alice,
        &[],
        Some(&format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: uidNumber\nuidNumber: 0\n"
        )),
    );
    assert_code(&o, 50, "alice changes her uidNumber");
    // Anonymous clients change nothing.
    let o = client(
        "ldapmodify",
        &url,
        Who::Anon,
        &[],
        Some(&format!(
            "dn: {BOB}\nchangetype: modify\nreplace: userPassword\nuserPassword: anon\n"
        )),
    );
    assert_code(&o, 50, "anonymous sets bob's password");
}

#[test]
fn group_write_on_people_works_for_members_only() {
    let s = server();
    let url = s.url();
    let aci = format!(
        "(targetattr=\"mail || telephoneNumber\")(version 3.0; acl \"helpdesk edits contact data\"; allow (write) groupdn=\"ldap:///{HELPDESK}\";)"
    );
    let o = ldapmodify_root(
        &url,
        &format!("dn: {PEOPLE}\nchangetype: modify\nadd: aci\naci: {aci}\n"),
    );
    assert_code(&o, 0, "adding the helpdesk ACI");
    // alice is a member: she edits bob's and carol's contact data.
    for target in [BOB, CAROL] {
        let o = client(
            "ldapmodify",
            &url,
            Who::User(ALICE, ALICE_PW),
            &[],
            Some(&format!(
                "dn: {target}\nchangetype: modify\nreplace: mail\nmail: changed@example.com\n-\nadd: telephoneNumber\ntelephoneNumber: +1 555 0100\n"
            )),
        );
        assert_code(&o, 0, &format!("helpdesk member edits {target}"));
        let e = read_entry(&url, target, &["mail", "telephoneNumber"]).expect("entry");
        assert_eq!(e.get("mail"), vec!["changed@example.com"]);
        assert_eq!(e.get("telephoneNumber"), vec!["+1 555 0100"]);
    }
    // But only the attributes the ACI names.
    let o = client(
        "ldapmodify",
        &url,
        Who::User(ALICE, ALICE_PW),
        &[],
        Some(&format!(
            "dn: {BOB}\nchangetype: modify\nreplace: loginShell\nloginShell: /bin/false\n"
        )),
    );
    assert_code(&o, 50, "helpdesk member edits loginShell");
    // bob is not a member.
    let o = client(
        "ldapmodify",
        &url,
        Who::User(BOB, BOB_PW),
        &[],
        Some(&format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: bob-was-here@example.com\n"
        )),
    );
    assert_code(&o, 50, "non-member edits alice");
    let e = read_entry(&url, ALICE, &["mail"]).expect("alice");
    assert_eq!(e.get("mail"), vec!["alice@example.com"]);
    // Membership is read live: once bob joins, he may.
    let o = ldapmodify_root(
        &url,
        &format!("dn: {HELPDESK}\nchangetype: modify\nadd: member\nmember: {BOB}\n"),
    );
    assert_code(&o, 0, "bob joins helpdesk");
    let o = client(
        "ldapmodify",
        &url,
        Who::User(BOB, BOB_PW),
        &[],
        Some(&format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: by-bob@example.com\n"
        )),
    );
    assert_code(&o, 0, "new member edits alice");
    // Neither may read the ACI unless they may write it.
    let o = search_as(&url, Who::User(BOB, BOB_PW), PEOPLE, &["-s", "base", "aci"]);
    assert_code(&o, 0, "bob reads ou=people asking for aci");
    assert_eq!(entries(&o).len(), 1, "bob sees the entry: {}", out(&o));
    assert!(!has_attr(&o, "aci"), "{}", out(&o));
    let o = search_root(&url, PEOPLE, &["-s", "base", "aci"]);
    assert!(has_attr(&o, "aci"), "{}", out(&o));
}

#[test]
fn invalid_aci_is_refused_with_invalid_attribute_syntax() {
    let s = server();
    let url = s.url();
    let bad =
        "(targetattr=\"cn\")(version 3.0; acl \"typo\"; allow (raed) userdn=\"ldap:///anyone\";)";
    let o = ldapmodify_root(
        &url,
        &format!("dn: {PEOPLE}\nchangetype: modify\nadd: aci\naci: {bad}\n"),
    );
    assert_code(&o, 21, "modify adding an invalid aci");
    assert!(
        err(&o).contains("unknown right 'raed'"),
        "no reason given: {}",
        err(&o)
    );
    let o = ldapadd_root(
        &url,
        &format!(
            "dn: ou=bad,{SUFFIX}\nobjectClass: organizationalUnit\nou: bad\naci: (targetattr=\"nosuch\")(version 3.0; acl \"x\"; allow (read) userdn=\"ldap:///anyone\";)\n"
        ),
    );
    assert_code(&o, 21, "add with an invalid aci");
    assert!(
        err(&o).contains("unknown attribute type 'nosuch'"),
        "{}",
        err(&o)
    );
    assert!(read_entry(&url, &format!("ou=bad,{SUFFIX}"), &["1.1"]).is_none());
    // Nothing changed on people.
    let o = search_root(&url, PEOPLE, &["-s", "base", "aci"]);
    assert!(!has_attr(&o, "aci"), "{}", out(&o));
}
