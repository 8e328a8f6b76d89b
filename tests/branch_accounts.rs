//! Account back-ends on a branch-office slave: a master and a read-only
//! slave that follows it ([`branch::Branch`]), with
//! - NSS/PAM through a real nslcd that knows only the slave: users, groups,
//!   `id` and PAM authentication keep working while the master is down, and
//!   a password changed on the master reaches the slave;
//! - Samba's own tools (`smbpasswd`, `pdbedit`, `net`) with `passdb backend
//!   = ldapsam`: an account added on the PDC (master) is listed with its SID
//!   on the BDC (slave), and a password change made through the BDC, which
//!   the slave refers to the master, lands on the master and comes back.
//!
//! Everything runs as root in private mount namespaces (tests/common/nslcd.rs),
//! never touching the machine's /etc; Samba's state lives in a temporary
//! directory. A missing program fails with the `apt-get install` to run.

#[path = "repl_common/branch.rs"]
mod branch;
#[path = "common/nslcd.rs"]
mod nslcd;
mod repl_common;

use branch::Branch;
use repl_common::*;
use std::path::Path;

const DORA: &str = "uid=dora,ou=people,dc=example,dc=com";
const ERIN: &str = "uid=erin,ou=people,dc=example,dc=com";
const FRANK: &str = "uid=frank,ou=people,dc=example,dc=com";
/// Test-only passwords.
const DORA_PW: &str = "dora-unix-1";
const DORA_PW_NEW: &str = "dora-unix-2";
const ERIN_PW: &str = "erin-unix-1";

const SAMBA_PROGRAMS: &[(&str, &str)] = &[
    ("/usr/bin/pdbedit", "samba"),
    ("/usr/bin/smbpasswd", "samba-common-bin"),
    ("/usr/bin/net", "samba-common-bin"),
];
const SAMBA_INSTALL: &str = "nslcd libnss-ldapd libpam-ldapd pamtester samba samba-common-bin";

fn add_on_master(b: &Branch, ldif: &str, what: &str) {
    assert_code(&ldapadd_root(&b.master.url(), ldif), 0, what);
}

fn ous() -> String {
    ["people", "groups", "computers"]
        .iter()
        .map(|ou| format!("dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n"))
        .collect()
}

/// `{SSHA}` hash of `pw`, made by `ferrodir hash-password` as an admin would.
fn ssha(pw: &str) -> String {
    let o = ferrodir(&["hash-password", "--scheme", "SSHA", pw], None);
    assert!(o.status.success(), "hash-password: {}", err(&o));
    let hash = out(&o).trim().to_string();
    assert!(hash.starts_with("{SSHA}"), "{hash}");
    hash
}

/// Days since 1970 (shadowLastChange).
fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

/// What NSS and PAM must answer from the slave: passwd, groups (RFC 2307
/// and rfc2307bis), `id`, PAM with the right and a wrong password for a
/// `{SSHA}` user and one hashed by the server's scheme.
fn accounts_commands() -> Vec<(&'static str, String)> {
    vec![
        ("passwd-dora", "getent passwd dora".into()),
        ("passwd-erin", "getent passwd erin".into()),
        ("group-staff", "getent group branchstaff".into()),
        ("group-bis", "getent group branchbis".into()),
        ("id-dora", "id dora".into()),
        ("pam-dora-right", nslcd::pam_command("dora", DORA_PW)),
        (
            "pam-dora-wrong",
            nslcd::pam_command("dora", "not-the-password"),
        ),
        ("pam-erin-right", nslcd::pam_command("erin", ERIN_PW)),
        ("pam-erin-wrong", nslcd::pam_command("erin", DORA_PW)),
    ]
}

fn check_accounts(run: &nslcd::Run, when: &str) {
    let ctx = |what: &str| format!("{what} ({when}):\n{}", run.text);
    assert_eq!(
        run.ok("passwd-dora").trim(),
        "dora:*:30001:30000:Dora Branch:/home/dora:/bin/bash",
        "{}",
        ctx("getent passwd dora")
    );
    assert_eq!(
        run.ok("passwd-erin").trim(),
        "erin:*:30002:30000:Erin Branch:/home/erin:/bin/sh",
        "{}",
        ctx("getent passwd erin")
    );
    let staff = run.ok("group-staff").trim().to_string();
    let (head, members) = staff.rsplit_once(':').unwrap_or_default();
    let mut members: Vec<&str> = members.split(',').collect();
    members.sort_unstable();
    assert_eq!(
        (head, members),
        ("branchstaff:*:30000", vec!["dora", "erin"]),
        "{}",
        ctx("getent group branchstaff")
    );
    assert_eq!(
        run.ok("group-bis").trim(),
        "branchbis:*:30010:dora",
        "{}",
        ctx("getent group branchbis")
    );
    let id = run.ok("id-dora");
    for want in [
        "uid=30001(dora)",
        "gid=30000(branchstaff)",
        "30010(branchbis)",
    ] {
        assert!(
            id.contains(want),
            "{}",
            ctx(&format!("id dora shows {want}"))
        );
    }
    run.ok("pam-dora-right");
    run.ok("pam-erin-right");
    for wrong in ["pam-dora-wrong", "pam-erin-wrong"] {
        let (rc, text) = run.get(wrong);
        assert_ne!(rc, 0, "{}", ctx(&format!("{wrong} must fail")));
        assert!(
            text.contains("Authentication failure"),
            "{}",
            ctx(&format!("{wrong} reports an authentication failure"))
        );
    }
}

#[test]
fn nss_and_pam_on_a_slave_keep_working_while_the_master_is_down() {
    nslcd::require_programs(&[], nslcd::NSLCD_PACKAGES);
    let mut b = Branch::start();
    let day = today();
    let accounts = format!(
        "{ous}dn: {DORA}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         objectClass: shadowAccount\nuid: dora\ncn: Dora Branch\nsn: Branch\n\
         uidNumber: 30001\ngidNumber: 30000\nhomeDirectory: /home/dora\n\
         loginShell: /bin/bash\nuserPassword: {dora_hash}\nshadowLastChange: {day}\n\
         shadowMax: 99999\nshadowWarning: 7\n\n\
         dn: {ERIN}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         objectClass: shadowAccount\nuid: erin\ncn: Erin Branch\nsn: Branch\n\
         uidNumber: 30002\ngidNumber: 30000\nhomeDirectory: /home/erin\n\
         loginShell: /bin/sh\nuserPassword: {ERIN_PW}\nshadowLastChange: {day}\n\n\
         dn: cn=branchstaff,ou=groups,{SUFFIX}\nobjectClass: posixGroup\n\
         cn: branchstaff\ngidNumber: 30000\nmemberUid: dora\nmemberUid: erin\n\n\
         dn: cn=branchbis,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\n\
         objectClass: posixGroup\ncn: branchbis\ngidNumber: 30010\nmember: {DORA}\n\
         memberUid: dora\n",
        ous = ous(),
        dora_hash = ssha(DORA_PW),
    );
    add_on_master(&b, &accounts, "adding the accounts on the master");
    let stored = read_entry(&b.master.url(), ERIN, &["userPassword"])
        .map(|e| e.get("userPassword"))
        .unwrap_or_default();
    assert!(
        stored.iter().all(|v| v.starts_with("{SSHA512}")),
        "the master hashes a clear-text userPassword with its scheme: {stored:?}"
    );
    b.wait_on_slave("the accounts", |s| {
        read_entry(
            &s.url(),
            "cn=branchbis,ou=groups,dc=example,dc=com",
            &["cn"],
        )
        .is_some()
    });

    // nslcd knows only the slave.
    let tmp = tempfile::tempdir().expect("tempdir");
    let uris = vec![b.slave.url()];
    let fresh = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).expect("run dir");
        d
    };
    let run = nslcd::run(&fresh("up"), &uris, SUFFIX, &accounts_commands());
    check_accounts(&run, "master up");

    // The link to the master is down: the branch keeps working.
    b.stop_master();
    let run = nslcd::run(&fresh("down"), &uris, SUFFIX, &accounts_commands());
    check_accounts(&run, "master down");

    // Back up: a password changed on the master reaches the slave, and PAM
    // on the branch then takes only the new one.
    b.start_master();
    let o = client(
        "ldappasswd",
        &b.master.url(),
        Who::Root,
        &["-s", DORA_PW_NEW, DORA],
        None,
    );
    assert_code(&o, 0, "changing dora's password on the master");
    b.wait_on_slave("dora's new password", |s| {
        bind_code(&s.url(), DORA, DORA_PW_NEW) == 0
    });
    let run = nslcd::run(
        &fresh("changed"),
        &uris,
        SUFFIX,
        &[
            ("pam-new", nslcd::pam_command("dora", DORA_PW_NEW)),
            ("pam-old", nslcd::pam_command("dora", DORA_PW)),
        ],
    );
    run.ok("pam-new");
    let (rc, text) = run.get("pam-old");
    assert_ne!(rc, 0, "the old password must fail now:\n{}", run.text);
    assert!(text.contains("Authentication failure"), "{}", run.text);
}

// ---------------------------------------------------------------------------
// Samba

/// An smb.conf for a domain controller of EXAMPLE whose passdb is the
/// directory at `port`, with all of Samba's state under `dir`.
fn smb_conf(dir: &Path, netbios: &str, port: u16, domain_master: bool) -> String {
    for sub in ["private", "lock", "state", "cache"] {
        std::fs::create_dir_all(dir.join(sub)).expect("samba dir");
    }
    let d = dir.display();
    let master = if domain_master { "yes" } else { "no" };
    let text = format!(
        "[global]\n\
         workgroup = EXAMPLE\n\
         netbios name = {netbios}\n\
         security = user\n\
         domain logons = yes\n\
         domain master = {master}\n\
         passdb backend = ldapsam:ldap://127.0.0.1:{port}\n\
         ldap suffix = {SUFFIX}\n\
         ldap admin dn = {ROOT_DN}\n\
         ldap user suffix = ou=people\n\
         ldap group suffix = ou=groups\n\
         ldap machine suffix = ou=computers\n\
         # Loopback only: a real deployment uses `ldap ssl = start tls`.\n\
         ldap ssl = off\n\
         ldap passwd sync = yes\n\
         private dir = {d}/private\n\
         lock directory = {d}/lock\n\
         state directory = {d}/state\n\
         cache directory = {d}/cache\n\
         pid directory = {d}/lock\n\
         ncalrpc dir = {d}/lock/ncalrpc\n\
         log file = {d}/log.%m\n"
    );
    let path = dir.join("smb.conf");
    std::fs::write(&path, text).expect("smb.conf");
    path.display().to_string()
}

/// The value after `prefix` on the first line that has it.
fn line_value<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(str::trim)
}

#[test]
fn samba_pdc_on_the_master_and_bdc_on_the_slave_share_the_accounts() {
    nslcd::require_programs(SAMBA_PROGRAMS, SAMBA_INSTALL);
    let mut b = Branch::start();
    let accounts = format!(
        "{ous}dn: {FRANK}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         objectClass: shadowAccount\nuid: frank\ncn: Frank Branch\nsn: Branch\n\
         uidNumber: 30003\ngidNumber: 30000\nhomeDirectory: /home/frank\n\
         loginShell: /bin/bash\nuserPassword: frank-unix-1\n\n\
         dn: cn=branchstaff,ou=groups,{SUFFIX}\nobjectClass: posixGroup\n\
         cn: branchstaff\ngidNumber: 30000\nmemberUid: frank\n",
        ous = ous()
    );
    add_on_master(&b, &accounts, "adding the Unix account on the master");
    let tmp = tempfile::tempdir().expect("tempdir");
    let pdc = smb_conf(&tmp.path().join("pdc"), "PDC", b.master.port, true);
    let bdc = smb_conf(&tmp.path().join("bdc"), "BDC", b.slave.port, false);
    let pw = root_password();

    // PDC: pdbedit finds the Unix account through nslcd (against the
    // master) and adds the Samba attributes; the first use creates the
    // sambaDomain entry.
    let ns = tmp.path().join("ns-pdc");
    std::fs::create_dir_all(&ns).expect("ns dir");
    let run = nslcd::run(
        &ns,
        &[b.master.url()],
        SUFFIX,
        &[
            ("secret", format!("smbpasswd -c {pdc} -w '{pw}'")),
            ("getpwnam", "getent passwd frank".into()),
            (
                "add",
                format!("printf 'frank-smb-1\\nfrank-smb-1\\n' | pdbedit -s {pdc} -a -u frank -t"),
            ),
            ("domain-sid", format!("net -s {pdc} getlocalsid EXAMPLE")),
            ("list", format!("pdbedit -s {pdc} -L")),
        ],
    );
    assert!(
        run.ok("secret").contains("Setting stored password"),
        "{}",
        run.text
    );
    assert!(run.ok("getpwnam").starts_with("frank:"), "{}", run.text);
    let added = run.ok("add");
    let sid = line_value(run.ok("domain-sid"), "SID for domain EXAMPLE is:")
        .unwrap_or_else(|| panic!("no domain SID:\n{}", run.text))
        .to_string();
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");
    let user_sid = line_value(added, "User SID:")
        .unwrap_or_else(|| panic!("pdbedit -a printed no SID:\n{}", run.text))
        .to_string();
    assert!(
        user_sid.starts_with(&format!("{sid}-")),
        "{user_sid} is in {sid}"
    );
    assert!(run.ok("list").contains("frank:30003:"), "{}", run.text);
    let domain_dn = format!("sambaDomainName=EXAMPLE,{SUFFIX}");
    let domain = read_entry(&b.master.url(), &domain_dn, &["*"])
        .unwrap_or_else(|| panic!("Samba created no {domain_dn}:\n{}", run.text));
    assert_eq!(domain.get("sambaSID"), vec![sid.clone()]);
    let frank = read_entry(&b.master.url(), FRANK, &["*"]).expect("frank");
    assert_eq!(frank.get("sambaSID"), vec![user_sid.clone()]);
    assert_eq!(frank.get("sambaNTPassword").len(), 1, "{frank:?}");
    assert!(frank
        .get("objectClass")
        .iter()
        .any(|c| c == "sambaSamAccount"));

    b.wait_on_slave("frank's Samba account and the domain", |s| {
        read_entry(&s.url(), &domain_dn, &["sambaSID"]).is_some()
            && read_entry(&s.url(), FRANK, &["sambaSID"])
                .is_some_and(|e| e.get("sambaSID") == vec![user_sid.clone()])
    });

    // BDC on the slave: the domain SID shared with `net setlocalsid`, the
    // account listed from the slave, then a password change through it.
    // Only what the BDC causes counts below (the PDC's pdbedit wrote too).
    let (master_seen, slave_seen) = (b.master.log_text().len(), b.slave.log_text().len());
    let ca = b
        .master
        .data_dir()
        .join("tls")
        .join("ca.pem")
        .display()
        .to_string();
    let ns = tmp.path().join("ns-bdc");
    std::fs::create_dir_all(&ns).expect("ns dir");
    let run = nslcd::run(
        &ns,
        &[b.slave.url()],
        SUFFIX,
        &[
            ("secret", format!("smbpasswd -c {bdc} -w '{pw}'")),
            ("set-sid", format!("net -s {bdc} setlocalsid {sid}")),
            ("local-sid", format!("net -s {bdc} getlocalsid")),
            ("list", format!("pdbedit -s {bdc} -L -v")),
            (
                "change",
                // The slave refers writes to the master's ldaps:// URL:
                // Samba's libldap must trust the master's CA to follow it.
                format!(
                    "printf 'frank-smb-2\\nfrank-smb-2\\n' | LDAPTLS_CACERT={ca} smbpasswd -c {bdc} -s frank"
                ),
            ),
        ],
    );
    run.ok("secret");
    run.ok("set-sid");
    assert_eq!(
        line_value(run.ok("local-sid"), "SID for domain BDC is:"),
        Some(sid.as_str()),
        "{}",
        run.text
    );
    let list = run.ok("list");
    for (field, want) in [
        ("Unix username:", "frank"),
        ("User SID:", user_sid.as_str()),
        ("Account Flags:", "[U          ]"),
        ("Domain:", "EXAMPLE"),
        ("Full Name:", "Frank Branch"),
    ] {
        assert_eq!(
            line_value(list, field),
            Some(want),
            "pdbedit -L -v on the BDC: {field}\n{}",
            run.text
        );
    }
    let change = run.ok("change");
    assert!(
        !change.contains("could not") && !change.contains("Failed"),
        "smbpasswd through the BDC:\n{}",
        run.text
    );

    // The slave referred both writes (the NT hash modify and, with `ldap
    // passwd sync`, the Password Modify request); Samba's libldap chased
    // the referrals to the master, where they were applied.
    // An operation's access line is written just after its answer: wait
    // for it rather than read the log the moment Samba is done.
    for (server, seen, what, want) in [
        (&b.slave, slave_seen, "slave", "result=10"),
        (&b.master, master_seen, "master", "result=0"),
    ] {
        let modify = format!("MOD dn=\"{FRANK}\"");
        server.wait_log(
            &format!(
                "the {what} logging the Samba modify of frank and the Password Modify with {want}"
            ),
            std::time::Duration::from_secs(30),
            |log| {
                let log = log.get(seen..).unwrap_or_default();
                log.lines().any(|l| l.contains(&modify) && l.contains(want))
                    && log
                        .lines()
                        .any(|l| l.contains("EXT oid=1.3.6.1.4.1.4203.1.11.1") && l.contains(want))
            },
        );
    }
    assert_eq!(
        bind_code(&b.master.url(), FRANK, "frank-smb-2"),
        0,
        "ldap passwd sync set userPassword on the master"
    );
    let nt = read_entry(&b.master.url(), FRANK, &["sambaNTPassword"])
        .map(|e| e.get("sambaNTPassword"))
        .unwrap_or_default();
    assert_ne!(nt, frank.get("sambaNTPassword"), "the NT hash changed");
    b.wait_on_slave("frank's new passwords", |s| {
        bind_code(&s.url(), FRANK, "frank-smb-2") == 0
            && read_entry(&s.url(), FRANK, &["sambaNTPassword"])
                .is_some_and(|e| e.get("sambaNTPassword") == nt)
    });

    // The link is down: the BDC still reads the account from the slave, and
    // a password change fails (the referral cannot be followed) instead of
    // claiming success.
    b.stop_master();
    let ns = tmp.path().join("ns-bdc-down");
    std::fs::create_dir_all(&ns).expect("ns dir");
    let run = nslcd::run(
        &ns,
        &[b.slave.url()],
        SUFFIX,
        &[
            ("list", format!("pdbedit -s {bdc} -L -v -u frank")),
            (
                "change",
                format!(
                    "printf 'frank-smb-3\\nfrank-smb-3\\n' | LDAPTLS_CACERT={ca} smbpasswd -c {bdc} -s frank"
                ),
            ),
        ],
    );
    assert_eq!(
        line_value(run.ok("list"), "User SID:"),
        Some(user_sid.as_str()),
        "{}",
        run.text
    );
    let (rc, text) = run.get("change");
    assert_ne!(
        rc, 0,
        "a password change with the master down:\n{}",
        run.text
    );
    assert!(
        text.contains("could not be changed") && text.contains("Referral"),
        "Samba reports the referral it could not follow:\n{}",
        run.text
    );
    assert_eq!(bind_code(&b.slave.url(), FRANK, "frank-smb-2"), 0);
}
