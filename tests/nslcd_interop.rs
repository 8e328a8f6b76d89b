//! A real nslcd (nss-pam-ldapd) against ferrodir: `getent passwd`, `getent
//! group` (RFC 2307 posixGroup on its own and the rfc2307bis form), `id`,
//! and PAM authentication through pam_ldap with the right and a wrong
//! password (pamtester).
//!
//! Everything runs as root inside a private mount namespace
//! (tests/common/nslcd.rs): /etc/nsswitch.conf, /etc/nslcd.conf and
//! /etc/pam.d are bind mounts of files in a temporary directory and /run is
//! a fresh tmpfs (nslcd's socket directory), so the machine's own
//! configuration is never touched. A missing program is a failure naming
//! the Debian packages to install.

mod common;
#[path = "common/nslcd.rs"]
mod nslcd;

use common::*;

const GROUP_2307: &str = "fdgrp2307";
const GROUP_BIS: &str = "fdgrpbis";

#[test]
fn nslcd_sees_users_and_groups_and_authenticates() {
    nslcd::require_programs(&[], nslcd::NSLCD_PACKAGES);
    let s = Server::with_sample();
    let groups = format!(
        "dn: cn={GROUP_2307},{GROUPS}\nobjectClass: top\nobjectClass: posixGroup\n\
         cn: {GROUP_2307}\ngidNumber: 10010\nmemberUid: alice\n\n\
         dn: cn={GROUP_BIS},{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\n\
         cn: {GROUP_BIS}\ngidNumber: 10011\nmember: {ALICE}\nmemberUid: alice\n"
    );
    assert_code(&ldapadd_root(&s.url(), &groups), 0, "adding the groups");

    let tmp = tempfile::tempdir().expect("tempdir");
    let run = nslcd::run(
        tmp.path(),
        &[s.url()],
        SUFFIX,
        &[
            ("passwd-alice", "getent passwd alice".to_string()),
            ("passwd-all", "getent passwd".to_string()),
            ("group-2307", format!("getent group {GROUP_2307}")),
            ("group-bis", format!("getent group {GROUP_BIS}")),
            ("group-primary", "getent group 10000".to_string()),
            ("id-alice", "id alice".to_string()),
            ("pam-right", nslcd::pam_command("alice", ALICE_PW)),
            ("pam-wrong", nslcd::pam_command("alice", "not-the-password")),
        ],
    );
    let text = &run.text;
    let section = |name: &str| run.get(name);

    let (rc, passwd) = section("passwd-alice");
    assert_eq!(rc, 0, "getent passwd alice:\n{text}");
    assert_eq!(
        passwd.trim(),
        "alice:*:10001:10000:Alice Liddell:/home/alice:/bin/bash",
        "{text}"
    );
    let (rc, everyone) = section("passwd-all");
    assert_eq!(rc, 0, "{text}");
    assert!(
        everyone.lines().any(|l| l.starts_with("alice:"))
            && everyone.lines().any(|l| l.starts_with("bob:")),
        "enumeration lists alice and bob:\n{text}"
    );
    let (rc, g) = section("group-2307");
    assert_eq!(rc, 0, "RFC 2307 group:\n{text}");
    assert_eq!(g.trim(), format!("{GROUP_2307}:*:10010:alice"), "{text}");
    let (rc, g) = section("group-bis");
    assert_eq!(rc, 0, "rfc2307bis group:\n{text}");
    assert_eq!(g.trim(), format!("{GROUP_BIS}:*:10011:alice"), "{text}");
    let (rc, g) = section("group-primary");
    assert_eq!(rc, 0, "{text}");
    let (head, members) = g.trim().rsplit_once(':').unwrap_or_default();
    let mut members: Vec<&str> = members.split(',').collect();
    members.sort_unstable();
    assert_eq!(
        (head, members),
        ("staff:*:10000", vec!["alice", "bob"]),
        "{text}"
    );
    let (rc, id) = section("id-alice");
    assert_eq!(rc, 0, "{text}");
    for want in [
        "uid=10001(alice)",
        "gid=10000(staff)",
        &format!("10010({GROUP_2307})"),
        &format!("10011({GROUP_BIS})"),
    ] {
        assert!(id.contains(want), "id alice should show {want}:\n{text}");
    }
    let (rc, _) = section("pam-right");
    assert_eq!(rc, 0, "PAM with the right password:\n{text}");
    let (rc, wrong) = section("pam-wrong");
    assert_ne!(rc, 0, "PAM with a wrong password must fail:\n{text}");
    assert!(
        wrong.contains("Authentication failure"),
        "pamtester should report an authentication failure:\n{text}"
    );
}
