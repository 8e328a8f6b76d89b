//! `{CRYPT}` passwords from migrated data (/etc/shadow, OpenLDAP, 389-ds)
//! against the real server: loaded over LDAP by the root DN or by
//! `ferrodir import`, they verify with the right password and fail with
//! invalidCredentials (49) otherwise; a value with a scheme ferrodir cannot
//! verify is refused on write with a message naming the scheme, and changes
//! nothing.

mod common;

use common::*;
use std::time::Duration;

/// Hashes of "secret", made on the build machine and hard-coded (no hashing
/// tool is needed at test time):
///   openssl passwd -1 -salt saltsalt secret        ($1$)
///   openssl passwd -5 -salt saltsalt secret        ($5$)
///   openssl passwd -6 -salt saltsalt secret        ($6$)
///   python3 -c 'import crypt; print(crypt.crypt("secret", "$2b$05$abcdefghijklmnopqrstuu"))'
///   python3 -c 'import crypt; print(crypt.crypt("secret", "$y$j9T$abcdefghijklmnop"))'
/// (python3.11's crypt is libxcrypt's crypt(3), as in /etc/shadow.)
const HASHES: &[(&str, &str)] = &[
    ("md5crypt", "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//"),
    (
        "sha256crypt",
        "{CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
    ),
    (
        "sha512crypt",
        "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
    ),
    (
        "bcrypt",
        "{CRYPT}$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a",
    ),
    (
        "yescrypt",
        "{CRYPT}$y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.",
    ),
];

fn user_ldif(uid: &str, password: &str) -> String {
    format!(
        "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
         userPassword: {password}\n"
    )
}

fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

fn assert_binds(url: &str) {
    for (uid, _) in HASHES {
        let dn = user_dn(uid);
        assert_eq!(
            bind_code(url, &dn, "secret"),
            0,
            "{uid} with the right password"
        );
        assert_eq!(
            bind_code(url, &dn, "Secret"),
            49,
            "{uid} with a wrong password"
        );
        assert_eq!(
            bind_code(url, &dn, "secret1"),
            49,
            "{uid} with a wrong password"
        );
    }
}

#[test]
fn crypt_hashes_added_by_the_root_dn_verify() {
    let s = Server::with_sample();
    let url = s.url();
    let ldif: Vec<String> = HASHES.iter().map(|(u, h)| user_ldif(u, h)).collect();
    assert_code(
        &ldapadd_root(&url, &ldif.join("\n")),
        0,
        "adding {CRYPT} users",
    );
    // Stored as given, not hashed a second time.
    let e = read_entry(&url, &user_dn("sha512crypt"), &["userPassword"]).expect("entry");
    assert_eq!(e.get("userPassword"), vec![HASHES[2].1.to_string()]);
    assert_binds(&url);
    // The start-up scan ran (nothing unverifiable is stored here).
    s.wait_log("the stored password scan", Duration::from_secs(30), |t| {
        t.contains("stored password scan finished")
    });
    assert!(!s.log_text().contains("cannot verify"), "{}", s.log_text());
}

#[test]
fn crypt_hashes_imported_offline_verify() {
    let mut s = Server::unstarted(&[]);
    let dir = s.data_dir().parent().expect("parent").to_path_buf();
    let data = s.data_dir().display().to_string();
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: domain\ndc: example\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n"
    );
    for (uid, h) in HASHES {
        ldif.push('\n');
        ldif.push_str(&user_ldif(uid, h));
    }
    let good = dir.join("crypt.ldif");
    std::fs::write(&good, &ldif).expect("writing LDIF");

    // An import holding a value ferrodir cannot verify stops with the scheme named.
    let bad = dir.join("bad.ldif");
    std::fs::write(
        &bad,
        format!("{ldif}\n{}", user_ldif("des", "{CRYPT}abNANd1rDfiNc")),
    )
    .expect("writing LDIF");
    let o = ferrodir(
        &["import", "--data-dir", &data, bad.to_str().expect("path")],
        None,
    );
    assert_ne!(code(&o), 0, "importing a DES crypt value: {}", err(&o));
    assert!(
        err(&o).contains("{CRYPT} traditional DES"),
        "the message should name the scheme: {}",
        err(&o)
    );

    let o = ferrodir(
        &["import", "--data-dir", &data, good.to_str().expect("path")],
        None,
    );
    assert_code(&o, 0, "importing {CRYPT} users");
    s.launch();
    assert_binds(&s.url());
    assert_eq!(
        bind_code(&s.url(), &user_dn("des"), "secret"),
        49,
        "the refused import left nothing usable behind"
    );
}

#[test]
fn unverifiable_schemes_are_refused_and_change_nothing() {
    let s = Server::with_sample();
    let url = s.url();

    let o = ldapadd_root(&url, &user_ldif("foo", "{FOO}xyz"));
    assert_code(&o, 53, "adding a {FOO} password");
    assert!(
        err(&o).contains("{FOO}") && err(&o).contains("cannot be verified"),
        "the message should name the scheme: {}",
        err(&o)
    );
    assert!(
        read_entry(&url, &user_dn("foo"), &["cn"]).is_none(),
        "nothing added"
    );

    // A crypt(3) algorithm ferrodir does not implement (scrypt's $7$), by modify.
    let o = ldapmodify_root(
        &url,
        &format!(
            "dn: {BOB}\nchangetype: modify\nreplace: userPassword\n\
             userPassword: {{CRYPT}}$7$CU..../....abcdefgh$0123456789abcdefghijklmnopqrstuvwxyzABCDEFG\n"
        ),
    );
    assert_code(&o, 53, "replacing bob's password with {CRYPT}$7$");
    assert!(err(&o).contains("{CRYPT} $7$"), "{}", err(&o));
    assert_eq!(
        bind_code(&url, BOB, BOB_PW),
        0,
        "bob's password is unchanged"
    );

    // A user sending a scheme-prefixed value is refused as before (19).
    let o = client(
        "ldapmodify",
        &url,
        Who::User(ALICE, ALICE_PW),
        &[],
        Some(&format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: userPassword\nuserPassword: {{FOO}}xyz\n"
        )),
    );
    assert_code(&o, 19, "alice sets a {FOO} password");
    assert_eq!(
        bind_code(&url, ALICE, ALICE_PW),
        0,
        "alice's password is unchanged"
    );
}

#[test]
fn hash_password_writes_sha512_crypt() {
    let o = ferrodir(&["hash-password", "-h", "{CRYPT}", "secret"], None);
    assert_code(&o, 0, "ferrodir hash-password -h {CRYPT}");
    let h = out(&o).trim().to_string();
    assert!(h.starts_with("{CRYPT}$6$rounds=5000$"), "{h}");
    // The generated value is accepted by the server and verifies.
    let s = Server::with_sample();
    let url = s.url();
    assert_code(&ldapadd_root(&url, &user_ldif("gen", &h)), 0, "adding it");
    assert_eq!(bind_code(&url, &user_dn("gen"), "secret"), 0);
    assert_eq!(bind_code(&url, &user_dn("gen"), "secret2"), 49);
}
