//! Password policy against the real server: users cannot set short
//! passwords, repeated failed binds lock an account for a while (with the
//! same answer as a wrong password), and the root DN is never locked out.

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
