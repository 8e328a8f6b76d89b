//! Password policy against the real server: users cannot set short
//! passwords, repeated failed binds lock an account for a while (with the
//! same answer as a wrong password), and the root DN is never locked out;
//! draft-behera pwdPolicy entries (per subtree and per entry) with the
//! ppolicy response control as OpenLDAP's clients print it, state that
//! survives a restart, administrator resets, history and expiry.

mod common;

use common::*;

fn ldappasswd_code(url: &str, dn: &str, old: &str, new: &str) -> i32 {
    let o = run_tool(
        "ldappasswd",
        &["-x", "-H", url, "-D", dn, "-w", old, "-a", old, "-s", new],
        None,
    );
    // ldappasswd exits 1 on any failure; the LDAP code is in its "Result:" line.
    let text = format!("{}{}", out(&o), err(&o));
    if o.status.success() {
        return 0;
    }
    text.lines()
        .find_map(|l| {
            let l = l.trim();
            let i = l.rfind('(')?;
            l[i + 1..].trim_end_matches(')').parse().ok()
        })
        .unwrap_or(-1)
}

#[test]
fn users_cannot_set_short_passwords_but_root_can() {
    let s = Server::with_sample();
    let url = s.url();
    assert_eq!(
        ldappasswd_code(&url, ALICE, ALICE_PW, "short"),
        19,
        "7 chars or less is refused"
    );
    assert_eq!(
        bind_code(&url, ALICE, ALICE_PW),
        0,
        "a refused change changes nothing"
    );
    let o = ldapmodify_root(
        &url,
        &format!("dn: {ALICE}\nchangetype: modify\nreplace: userPassword\nuserPassword: tiny\n"),
    );
    assert_eq!(code(&o), 0, "the root DN may set any password: {}", err(&o));
    assert_eq!(bind_code(&url, ALICE, "tiny"), 0);
    assert_eq!(ldappasswd_code(&url, ALICE, "tiny", "long-enough-pw"), 0);
    assert_eq!(bind_code(&url, ALICE, "long-enough-pw"), 0);
}

#[test]
fn failed_binds_lock_the_account_but_not_the_root_dn() {
    let s = Server::with_sample();
    let url = s.url();
    for _ in 0..5 {
        assert_eq!(bind_code(&url, ALICE, "wrong-password"), 49);
    }
    // Locked: even the right password is refused, with the same code.
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 49);
    assert!(
        s.log_text().contains("account locked"),
        "the lockout is logged:\n{}",
        s.log_text()
    );
    assert!(
        !s.log_text().contains("wrong-password"),
        "passwords never reach the log"
    );
    // Other accounts are unaffected: bob still binds, and is refused only
    // for a wrong password of his own.
    assert_eq!(
        bind_code(&url, BOB, BOB_PW),
        0,
        "bob is not locked by alice's failures"
    );
    assert_eq!(bind_code(&url, BOB, "wrong-password"), 49);
    assert_eq!(
        bind_code(&url, BOB, BOB_PW),
        0,
        "one failure does not lock bob"
    );
    // The root DN is never locked.
    for _ in 0..6 {
        assert_eq!(bind_code(&url, ROOT_DN, "wrong-password"), 49);
    }
    assert_eq!(bind_code(&url, ROOT_DN, &root_password()), 0);
}

// ---------------------------------------------------------------------------
// draft-behera password policy entries, seen through OpenLDAP's clients
// (`-e ppolicy` asks for the response control and prints what it says).

const POLICIES: &str = "ou=policies,dc=example,dc=com";
const STRICT: &str = "cn=strict,ou=policies,dc=example,dc=com";
const EXPIRING: &str = "cn=expiring,ou=policies,dc=example,dc=com";

fn add_policies(url: &str) {
    let ldif = format!(
        "dn: {POLICIES}\nobjectClass: organizationalUnit\nou: policies\n\n\
         dn: {STRICT}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: strict\n\
         pwdAttribute: userPassword\npwdMaxFailure: 3\npwdLockout: TRUE\n\
         pwdLockoutDuration: 0\npwdFailureCountInterval: 0\npwdMustChange: TRUE\n\
         pwdInHistory: 2\npwdMinLength: 10\n\n\
         dn: {EXPIRING}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: expiring\n\
         pwdAttribute: userPassword\npwdMaxAge: 86400\npwdExpireWarning: 172800\n\
         pwdGraceAuthNLimit: 2\npwdMinAge: 3600\n"
    );
    assert_code(&ldapadd_root(url, &ldif), 0, "adding the policies");
}

/// ldapwhoami -e ppolicy as `dn`: (exit code, stdout + stderr).
fn whoami_ppolicy(url: &str, dn: &str, pw: &str) -> (i32, String) {
    let o = client(
        "ldapwhoami",
        url,
        Who::User(dn, pw),
        &["-e", "ppolicy"],
        None,
    );
    (code(&o), format!("{}{}", out(&o), err(&o)))
}

fn state(url: &str, dn: &str) -> LdifEntry {
    read_entry(url, dn, &["+"]).unwrap_or_else(|| panic!("{dn} is missing"))
}

#[test]
fn policy_entry_locks_reports_and_survives_restart_and_admin_reset_unlocks() {
    let mut s = Server::with_sample();
    let url = s.url();
    add_policies(&url);
    // One value on ou=people puts its whole subtree under the policy.
    let o = ldapmodify_root(
        &url,
        &format!("dn: {PEOPLE}\nchangetype: modify\nadd: pwdPolicySubentry\npwdPolicySubentry: {STRICT}\n"),
    );
    assert_code(&o, 0, "pwdPolicySubentry on ou=people");

    for i in 0..3 {
        let (c, text) = whoami_ppolicy(&url, ALICE, "wrong-password");
        assert_eq!(c, 49, "failure {i}: {text}");
        assert!(
            !text.contains("Account locked"),
            "not locked before the third failure is counted: {text}"
        );
    }
    let st = state(&url, ALICE);
    assert_eq!(
        st.get("pwdFailureTime").len(),
        3,
        "failure times visible to the root DN: {:?}",
        st.names()
    );
    assert_eq!(
        st.get("pwdAccountLockedTime").len(),
        1,
        "locked after pwdMaxFailure: {:?}",
        st.names()
    );

    let (c, text) = whoami_ppolicy(&url, ALICE, ALICE_PW);
    assert_eq!(c, 49, "the right password is refused while locked: {text}");
    assert!(
        text.contains("Account locked"),
        "the ppolicy control says why: {text}"
    );
    let (c, text) = whoami_ppolicy(&url, BOB, BOB_PW);
    assert_eq!(c, 0, "bob is not locked by alice's failures: {text}");

    // Users cannot touch policy state, not even their own, and not even
    // where an ACI would let them.
    let o = ldapmodify_root(
        &url,
        &format!(
            "dn: {PEOPLE}\nchangetype: modify\nadd: aci\naci: (targetattr=\"pwdPolicySubentry || pwdAccountLockedTime\")\
             (version 3.0; acl \"too generous\"; allow (write) userdn=\"ldap:///self\";)\n"
        ),
    );
    assert_code(&o, 0, "a self-write ACI on policy state");
    let o = client(
        "ldapmodify",
        &url,
        Who::User(BOB, BOB_PW),
        &[],
        Some(&format!("dn: {BOB}\nchangetype: modify\nreplace: pwdPolicySubentry\npwdPolicySubentry: {EXPIRING}\n")),
    );
    assert_eq!(
        code(&o),
        19,
        "a user choosing his own policy is refused: {}",
        err(&o)
    );
    assert!(err(&o).contains("password policy state"), "{}", err(&o));
    assert!(
        state(&url, BOB).get("pwdPolicySubentry").is_empty(),
        "and nothing changed"
    );

    // The lock is in the entry: a restart keeps it.
    s.stop();
    s.launch();
    let (c, text) = whoami_ppolicy(&url, ALICE, ALICE_PW);
    assert_eq!(c, 49, "still locked after a restart: {text}");
    assert!(text.contains("Account locked"), "{text}");

    // An administrator's reset unlocks and, with pwdMustChange, sets pwdReset.
    let o = client(
        "ldappasswd",
        &url,
        Who::Root,
        &["-s", "reset-by-admin", ALICE],
        None,
    );
    assert_code(&o, 0, "root resets alice's password");
    let st = state(&url, ALICE);
    assert!(
        st.get("pwdAccountLockedTime").is_empty(),
        "the reset unlocks: {:?}",
        st.names()
    );
    assert!(
        st.get("pwdFailureTime").is_empty(),
        "and forgets failures: {:?}",
        st.names()
    );
    assert_eq!(st.get("pwdReset"), vec!["TRUE".to_string()]);
    assert_eq!(st.get("pwdChangedTime").len(), 1);
    assert_eq!(
        st.get("pwdHistory").len(),
        1,
        "the old password went into the history"
    );

    let (c, text) = whoami_ppolicy(&url, ALICE, "reset-by-admin");
    assert_eq!(c, 0, "the new password binds: {text}");
    assert!(
        text.contains("Password must be changed"),
        "the control asks for a change: {text}"
    );
    // Until she changes it, only the password change is allowed.
    let o = search_as(
        &url,
        Who::User(ALICE, "reset-by-admin"),
        ALICE,
        &["-s", "base"],
    );
    assert_eq!(code(&o), 50, "search before the change: {}", err(&o));

    // Her own change: the policy's length and history apply.
    let change = |old: &str, new: &str| {
        let o = client(
            "ldappasswd",
            &url,
            Who::User(ALICE, old),
            &["-e", "ppolicy", "-a", old, "-s", new],
            None,
        );
        (o.status.success(), format!("{}{}", out(&o), err(&o)))
    };
    let (ok, text) = change("reset-by-admin", "short-9ch");
    assert!(!ok && text.contains("too short"), "pwdMinLength 10: {text}");
    assert!(
        text.contains("Password is too short for policy"),
        "the ppolicy error, as the client prints it: {text}"
    );
    let (ok, text) = change("reset-by-admin", "reset-by-admin");
    assert!(
        !ok && text.contains("history"),
        "the current password is reused: {text}"
    );
    assert!(
        text.contains("ppolicy: error=8 (New password is in list of old passwords)"),
        "{text}"
    );
    let (ok, text) = change("reset-by-admin", "alice-chosen-pw");
    assert!(ok, "{text}");
    let st = state(&url, ALICE);
    assert!(
        st.get("pwdReset").is_empty(),
        "her own change clears pwdReset"
    );
    let (c, text) = whoami_ppolicy(&url, ALICE, "alice-chosen-pw");
    assert_eq!(c, 0, "{text}");
    assert!(!text.contains("must be changed"), "{text}");
    let (ok, text) = change("alice-chosen-pw", "reset-by-admin");
    assert!(
        !ok && text.contains("history"),
        "pwdInHistory 2 remembers the reset password: {text}"
    );

    // An entry added by an administrator under pwdMustChange starts reset.
    let dave = format!("uid=dave,{PEOPLE}");
    let o = ldapadd_root(
        &url,
        &format!(
            "dn: {dave}\nobjectClass: inetOrgPerson\nuid: dave\ncn: Dave\nsn: D\nuserPassword: initial-password\n"
        ),
    );
    assert_code(&o, 0, "adding dave");
    let (c, text) = whoami_ppolicy(&url, &dave, "initial-password");
    assert_eq!(c, 0, "{text}");
    assert!(text.contains("Password must be changed"), "{text}");

    // An administrator may also unlock by deleting pwdAccountLockedTime.
    for _ in 0..3 {
        whoami_ppolicy(&url, ALICE, "wrong-password");
    }
    assert_eq!(
        whoami_ppolicy(&url, ALICE, "alice-chosen-pw").0,
        49,
        "locked again"
    );
    let o = ldapmodify_root(
        &url,
        &format!("dn: {ALICE}\nchangetype: modify\ndelete: pwdAccountLockedTime\n-\ndelete: pwdFailureTime\n"),
    );
    assert_code(&o, 0, "root deletes the lock");
    assert_eq!(
        whoami_ppolicy(&url, ALICE, "alice-chosen-pw").0,
        0,
        "unlocked"
    );
}

#[test]
fn expiry_warns_then_grants_grace_binds_then_refuses() {
    let s = Server::with_sample();
    let url = s.url();
    add_policies(&url);
    // Per entry: bob's own pwdPolicySubentry.
    let o = ldapmodify_root(
        &url,
        &format!("dn: {BOB}\nchangetype: modify\nadd: pwdPolicySubentry\npwdPolicySubentry: {EXPIRING}\n"),
    );
    assert_code(&o, 0, "pwdPolicySubentry on bob");
    // pwdChangedTime was set when bob was added: his password's age counts.
    let (c, text) = whoami_ppolicy(&url, BOB, BOB_PW);
    assert_eq!(c, 0, "{text}");
    assert!(text.contains("Password expires in"), "{text}");

    // A fresh change: within pwdExpireWarning of pwdMaxAge.
    let o = client(
        "ldappasswd",
        &url,
        Who::Root,
        &["-s", "bob-new-password", BOB],
        None,
    );
    assert_code(&o, 0, "root sets bob's password");
    let (c, text) = whoami_ppolicy(&url, BOB, "bob-new-password");
    assert_eq!(c, 0, "{text}");
    assert!(
        text.contains("Password expires in"),
        "timeBeforeExpiration: {text}"
    );
    let o = client(
        "ldappasswd",
        &url,
        Who::User(BOB, "bob-new-password"),
        &["-a", "bob-new-password", "-s", "bob-other-password"],
        None,
    );
    let text = format!("{}{}", out(&o), err(&o));
    assert!(
        !o.status.success() && text.contains("too young"),
        "pwdMinAge: {text}"
    );

    // A new entry's age starts when it is added.
    let o = ldapadd_root(
        &url,
        &format!(
            "dn: uid=carol,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\n\
             userPassword: carol-password\npwdPolicySubentry: {EXPIRING}\n"
        ),
    );
    assert_code(&o, 0, "adding carol");
    let carol = format!("uid=carol,{PEOPLE}");
    let (c, text) = whoami_ppolicy(&url, &carol, "carol-password");
    assert_eq!(c, 0, "{text}");
    assert!(
        text.contains("Password expires in"),
        "pwdChangedTime set on add: {text}"
    );

    // Changed long ago: expired; two grace binds, then refused.
    let o = ldapmodify_root(
        &url,
        &format!("dn: {BOB}\nchangetype: modify\nreplace: pwdChangedTime\npwdChangedTime: 20000101000000Z\n"),
    );
    assert_code(&o, 0, "root backdates pwdChangedTime");
    let (c, text) = whoami_ppolicy(&url, BOB, "bob-new-password");
    assert_eq!(c, 0, "first grace bind: {text}");
    assert!(text.contains("1 grace logins remain"), "{text}");
    let (c, text) = whoami_ppolicy(&url, BOB, "bob-new-password");
    assert_eq!(c, 0, "second grace bind: {text}");
    assert!(text.contains("0 grace logins remain"), "{text}");
    assert_eq!(state(&url, BOB).get("pwdGraceUseTime").len(), 2);
    let (c, text) = whoami_ppolicy(&url, BOB, "bob-new-password");
    assert_eq!(c, 49, "grace binds used up: {text}");
    assert!(text.contains("Password expired"), "{text}");
    // Alice (default policy from [security]) is unaffected.
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 0);
}

/// The lockout count is kept by the writer: failed binds arriving together
/// are all recorded, none lost to a stale read.
#[test]
fn concurrent_failed_binds_are_all_counted() {
    let s = Server::with_sample();
    let url = s.url();
    let add = format!(
        "dn: {POLICIES}\nchangetype: add\nobjectClass: organizationalUnit\nou: policies\n\n\
         dn: {STRICT}\nchangetype: add\nobjectClass: device\nobjectClass: pwdPolicy\ncn: strict\n\
         pwdAttribute: userPassword\npwdMaxFailure: 12\npwdLockout: TRUE\n\n\
         dn: {ALICE}\nchangetype: modify\nadd: pwdPolicySubentry\npwdPolicySubentry: {STRICT}\n"
    );
    assert_code(&ldapmodify_root(&url, &add), 0, "policy for alice");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || bind_code(&url, ALICE, "wrong-password"))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("bind thread"), 49);
    }
    let st = state(&url, ALICE);
    assert_eq!(st.get("pwdFailureTime").len(), 8, "every failure counted");
    assert!(
        st.get("pwdAccountLockedTime").is_empty(),
        "8 < pwdMaxFailure 12"
    );
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 0, "a good bind");
    let st = state(&url, ALICE);
    assert!(
        st.get("pwdFailureTime").is_empty(),
        "a successful bind forgets the failures"
    );
}

/// Binds remember the policy inherited from an entry's ancestors for one
/// store snapshot: a pwdPolicySubentry put on ou=people after binds were
/// answered (and remembered "no inherited policy") governs the very next
/// bind, and so does its removal. The expiry warning is a verdict that
/// writes nothing, so no bind's own write can hide a stale memory.
#[test]
fn a_policy_put_on_the_parent_after_binds_applies_to_the_next_bind() {
    let s = Server::with_sample();
    let url = s.url();
    add_policies(&url);
    for _ in 0..3 {
        let (c, text) = whoami_ppolicy(&url, ALICE, ALICE_PW);
        assert_eq!(c, 0, "{text}");
        assert!(
            !text.contains("Password expires in"),
            "the default policy has no maximum age: {text}"
        );
    }
    let o = ldapmodify_root(
        &url,
        &format!("dn: {PEOPLE}\nchangetype: modify\nadd: pwdPolicySubentry\npwdPolicySubentry: {EXPIRING}\n"),
    );
    assert_code(&o, 0, "pwdPolicySubentry on ou=people");
    let (c, text) = whoami_ppolicy(&url, ALICE, ALICE_PW);
    assert_eq!(c, 0, "{text}");
    assert!(
        text.contains("Password expires in"),
        "the policy inherited from ou=people warns (max age 1 day, warning 2 days): {text}"
    );

    let o = ldapmodify_root(
        &url,
        &format!("dn: {PEOPLE}\nchangetype: modify\ndelete: pwdPolicySubentry\n"),
    );
    assert_code(&o, 0, "removing pwdPolicySubentry from ou=people");
    let (c, text) = whoami_ppolicy(&url, ALICE, ALICE_PW);
    assert_eq!(c, 0, "{text}");
    assert!(
        !text.contains("Password expires in"),
        "back under the default policy: {text}"
    );
}
