//! A real nslcd (nss-pam-ldapd) against ferrodir: `getent passwd`, `getent
//! group` (RFC 2307 posixGroup on its own and the rfc2307bis form), `id`,
//! and PAM authentication through pam_ldap with the right and a wrong
//! password (pamtester).
//!
//! Everything runs as root inside a private mount namespace (`unshare -m`):
//! /etc/nsswitch.conf, /etc/nslcd.conf and /etc/pam.d are bind mounts of
//! files in a temporary directory and /run is a fresh tmpfs (nslcd's socket
//! directory), so the machine's own configuration is never touched. A
//! missing program is a failure naming the Debian packages to install.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const GROUP_2307: &str = "fdgrp2307";
const GROUP_BIS: &str = "fdgrpbis";

fn require_programs() {
    let needed = [
        ("/usr/sbin/nslcd", "nslcd"),
        ("/usr/bin/pamtester", "pamtester"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/getent", "libc-bin"),
    ];
    let missing: Vec<String> = needed
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, pkg)| format!("{path} (package {pkg})"))
        .collect();
    let libs = [
        ("/lib/x86_64-linux-gnu/libnss_ldap.so.2", "libnss-ldapd"),
        ("/lib/x86_64-linux-gnu/security/pam_ldap.so", "libpam-ldapd"),
    ];
    let missing_libs: Vec<String> = libs
        .iter()
        .filter(|(path, _)| {
            let p = Path::new(path);
            let usr = Path::new("/usr").join(p.strip_prefix("/").unwrap_or(p));
            !p.exists() && !usr.exists()
        })
        .map(|(path, pkg)| format!("{path} (package {pkg})"))
        .collect();
    let all: Vec<String> = missing.into_iter().chain(missing_libs).collect();
    assert!(
        all.is_empty(),
        "the nslcd interoperability test needs: {}; install them with \
         `apt-get install nslcd libnss-ldapd libpam-ldapd pamtester` \
         (.ci/run does)",
        all.join(", ")
    );
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the nslcd interoperability test runs nslcd and bind mounts as root"
    );
}

/// The shell script run inside the mount namespace: bind mounts, nslcd in
/// the foreground (debug) as a child, then the client commands, each
/// section introduced by `=== <name> rc=<exit code>`.
fn script(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"set -u
mount --bind {d}/nsswitch.conf /etc/nsswitch.conf
mount --bind {d}/nslcd.conf /etc/nslcd.conf
mount --bind {d}/pam.d /etc/pam.d
mount -t tmpfs tmpfs /run
mkdir -p /run/nslcd
/usr/sbin/nslcd -d > {d}/nslcd.log 2>&1 &
NSLCD=$!
trap 'kill $NSLCD 2>/dev/null; wait $NSLCD 2>/dev/null' EXIT
tries=0
while [ ! -S /run/nslcd/socket ]; do
  tries=$((tries + 1))
  if [ $tries -gt 300 ]; then echo "=== nslcd-start rc=1"; cat {d}/nslcd.log; exit 1; fi
  sleep 0.1
done
section() {{ name=$1; shift; out=$("$@" 2>&1); rc=$?; echo "=== $name rc=$rc"; echo "$out"; }}
section passwd-alice getent passwd alice
section passwd-all getent passwd
section group-2307 getent group {GROUP_2307}
section group-bis getent group {GROUP_BIS}
section group-primary getent group 10000
section id-alice id alice
section pam-right sh -c 'echo alicepw | pamtester ferrodir-nslcd-test alice authenticate'
section pam-wrong sh -c 'echo not-the-password | pamtester ferrodir-nslcd-test alice authenticate'
"#
    )
}

fn write_config(dir: &Path, port: u16) {
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("writing {name}: {e}"))
    };
    write(
        "nsswitch.conf",
        "passwd: files ldap\ngroup: files ldap\nshadow: files\nhosts: files\n",
    );
    write(
        "nslcd.conf",
        &format!(
            "uri ldap://127.0.0.1:{port}/\nbase dc=example,dc=com\n\
             bind_timelimit 5\ntimelimit 10\nreconnect_retrytime 1\n"
        ),
    );
    let pam = dir.join("pam.d");
    std::fs::create_dir_all(&pam).expect("pam.d");
    std::fs::write(
        pam.join("ferrodir-nslcd-test"),
        "auth required pam_ldap.so minimum_uid=1000\naccount required pam_permit.so\n",
    )
    .expect("pam service");
    std::fs::write(pam.join("other"), "auth required pam_deny.so\n").expect("pam other");
}

/// Output of each `=== name rc=N` section.
fn sections(text: &str) -> Vec<(String, i32, String)> {
    let mut out: Vec<(String, i32, String)> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("=== ") {
            let (name, rc) = head.split_once(" rc=").unwrap_or((head, "-1"));
            out.push((name.to_string(), rc.parse().unwrap_or(-1), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    out
}

fn section<'a>(all: &'a [(String, i32, String)], name: &str, log: &str) -> (i32, &'a str) {
    all.iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, rc, text)| (*rc, text.as_str()))
        .unwrap_or_else(|| panic!("no output for {name}; full output:\n{log}"))
}

#[test]
fn nslcd_sees_users_and_groups_and_authenticates() {
    require_programs();
    let s = Server::with_sample();
    let groups = format!(
        "dn: cn={GROUP_2307},{GROUPS}\nobjectClass: top\nobjectClass: posixGroup\n\
         cn: {GROUP_2307}\ngidNumber: 10010\nmemberUid: alice\n\n\
         dn: cn={GROUP_BIS},{GROUPS}\nobjectClass: groupOfNames\nobjectClass: posixGroup\n\
         cn: {GROUP_BIS}\ngidNumber: 10011\nmember: {ALICE}\nmemberUid: alice\n"
    );
    assert_code(&ldapadd_root(&s.url(), &groups), 0, "adding the groups");

    let tmp = tempfile::tempdir().expect("tempdir");
    write_config(tmp.path(), s.port);
    let o = Command::new("/usr/bin/unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(script(tmp.path()))
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}\n--- nslcd log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(tmp.path().join("nslcd.log")).unwrap_or_default()
    );
    let all = sections(&text);

    let (rc, passwd) = section(&all, "passwd-alice", &text);
    assert_eq!(rc, 0, "getent passwd alice:\n{text}");
    assert_eq!(
        passwd.trim(),
        "alice:*:10001:10000:Alice Liddell:/home/alice:/bin/bash",
        "{text}"
    );
    let (rc, everyone) = section(&all, "passwd-all", &text);
    assert_eq!(rc, 0, "{text}");
    assert!(
        everyone.lines().any(|l| l.starts_with("alice:"))
            && everyone.lines().any(|l| l.starts_with("bob:")),
        "enumeration lists alice and bob:\n{text}"
    );
    let (rc, g) = section(&all, "group-2307", &text);
    assert_eq!(rc, 0, "RFC 2307 group:\n{text}");
    assert_eq!(g.trim(), format!("{GROUP_2307}:*:10010:alice"), "{text}");
    let (rc, g) = section(&all, "group-bis", &text);
    assert_eq!(rc, 0, "rfc2307bis group:\n{text}");
    assert_eq!(g.trim(), format!("{GROUP_BIS}:*:10011:alice"), "{text}");
    let (rc, g) = section(&all, "group-primary", &text);
    assert_eq!(rc, 0, "{text}");
    let (head, members) = g.trim().rsplit_once(':').unwrap_or_default();
    let mut members: Vec<&str> = members.split(',').collect();
    members.sort_unstable();
    assert_eq!(
        (head, members),
        ("staff:*:10000", vec!["alice", "bob"]),
        "{text}"
    );
    let (rc, id) = section(&all, "id-alice", &text);
    assert_eq!(rc, 0, "{text}");
    for want in [
        "uid=10001(alice)",
        "gid=10000(staff)",
        &format!("10010({GROUP_2307})"),
        &format!("10011({GROUP_BIS})"),
    ] {
        assert!(id.contains(want), "id alice should show {want}:\n{text}");
    }
    let (rc, _) = section(&all, "pam-right", &text);
    assert_eq!(rc, 0, "PAM with the right password:\n{text}");
    let (rc, wrong) = section(&all, "pam-wrong", &text);
    assert_ne!(rc, 0, "PAM with a wrong password must fail:\n{text}");
    assert!(
        wrong.contains("Authentication failure"),
        "pamtester should report an authentication failure:\n{text}"
    );
}
