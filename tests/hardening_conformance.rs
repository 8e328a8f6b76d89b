//! Hardening issue, part B: each test reproduces one reported weakness
//! against the real binary on loopback and asserts the fixed behaviour with
//! the exact RFC 4511 result code.

mod repl_common;

use repl_common::*;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(120);

/// The result code of an `ldappasswd` run: it exits 1 for any failure and
/// prints `Result: <text> (<code>)`, so the code is read from that line.
fn extended_result(o: &std::process::Output) -> i32 {
    if o.status.success() {
        return 0;
    }
    let text = out(o);
    text.lines()
        .find_map(|l| l.strip_prefix("Result: "))
        .and_then(|l| l.rsplit_once('(')?.1.strip_suffix(')')?.parse().ok())
        .unwrap_or_else(|| panic!("no result code in ldappasswd output: {text}{}", err(o)))
}

/// Item 12: a Password Modify extended operation sent to a read-only
/// consumer is referred to the supplier, for the user herself and for the
/// root DN, and changes nothing anywhere.
#[test]
fn password_modify_on_read_only_consumer_is_referred() {
    let supplier = Server::fast();
    let consumer = Server::fast();
    assert_code(
        &ldapadd_root(&supplier.url(), SAMPLE),
        0,
        "loading SAMPLE on the supplier",
    );
    configure_supplier_consumer(&supplier, &consumer, CONVERGE);
    let deadline = Instant::now() + CONVERGE;
    while bind_code(&consumer.url(), ALICE, ALICE_PW) != 0 {
        assert!(
            Instant::now() < deadline,
            "alice never reached the consumer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let by_user = client(
        "ldappasswd",
        &consumer.url(),
        Who::User(ALICE, ALICE_PW),
        &["-s", "changed-by-alice"],
        None,
    );
    assert_eq!(
        extended_result(&by_user),
        10,
        "ldappasswd by the user on the consumer"
    );
    let text = format!("{}{}", out(&by_user), err(&by_user));
    assert!(
        text.contains(&supplier.url()),
        "the referral should name {}: {text}",
        supplier.url()
    );

    let by_root = client(
        "ldappasswd",
        &consumer.url(),
        Who::Root,
        &["-s", "changed-by-root", ALICE],
        None,
    );
    assert_eq!(
        extended_result(&by_root),
        10,
        "ldappasswd by the root DN on the consumer"
    );

    for server in [&consumer, &supplier] {
        assert_eq!(bind_code(&server.url(), ALICE, ALICE_PW), 0);
        assert_eq!(bind_code(&server.url(), ALICE, "changed-by-alice"), 49);
        assert_eq!(bind_code(&server.url(), ALICE, "changed-by-root"), 49);
    }
}

/// Item 10: a one-level search of the root DSE returns the naming contexts'
/// entries (as OpenLDAP does), never the children of a suffix.
#[test]
fn one_level_search_of_root_dse_returns_naming_contexts() {
    let s = Server::with_sample();
    let url = s.url();
    let o = search_as(&url, Who::Root, "", &["-s", "one", "1.1"]);
    assert_code(&o, 0, "one-level search of the empty base");
    assert_eq!(dn_set(&o), sorted_lower(&[SUFFIX]), "{}", out(&o));
    // With a filter the suffix entry does not match, nothing comes back.
    let o = search_as(&url, Who::Root, "", &["-s", "one", "(ou=people)", "1.1"]);
    assert_code(&o, 0, "filtered one-level search of the empty base");
    assert_eq!(dn_set(&o), Vec::<String>::new(), "{}", out(&o));
    // An indexed filter takes another path through the search planner.
    let o = search_as(
        &url,
        Who::Root,
        "",
        &["-s", "one", "(objectClass=*)", "1.1"],
    );
    assert_eq!(dn_set(&o), sorted_lower(&[SUFFIX]), "{}", out(&o));
    let o = search_as(&url, Who::Root, "", &["-s", "one", "(uid=alice)", "1.1"]);
    assert_eq!(dn_set(&o), Vec::<String>::new(), "{}", out(&o));
}

/// Item 9: the RDN's values are part of the added entry (RFC 4511 §4.7)
/// even when the attribute list leaves them out, as in OpenLDAP and 389-ds;
/// a value already listed in another spelling is not doubled.
#[test]
fn add_takes_missing_rdn_values_from_the_dn() {
    let s = Server::with_sample();
    let url = s.url();
    let o = ldapadd_root(
        &url,
        "dn: uid=rdnonly,ou=people,dc=example,dc=com\n\
         objectClass: inetOrgPerson\ncn: Rdn Only\nsn: Only\n",
    );
    assert_code(&o, 0, "add without the RDN's uid value");
    let e =
        read_entry(&url, "uid=rdnonly,ou=people,dc=example,dc=com", &["uid"]).expect("added entry");
    assert_eq!(e.get("uid"), vec!["rdnonly".to_string()]);

    // Multi-valued RDN, one value missing, the other present in another
    // case (caseIgnoreMatch: the same value, kept once as the client wrote it).
    let o = ldapadd_root(
        &url,
        "dn: cn=Two Parts+uid=twoparts,ou=people,dc=example,dc=com\n\
         objectClass: inetOrgPerson\nCN: two parts\nsn: Parts\n",
    );
    assert_code(&o, 0, "add of a multi-valued RDN");
    let e = read_entry(
        &url,
        "cn=Two Parts+uid=twoparts,ou=people,dc=example,dc=com",
        &["uid", "cn"],
    )
    .expect("added entry");
    assert_eq!(e.get("uid"), vec!["twoparts".to_string()]);
    assert_eq!(e.get("cn"), vec!["two parts".to_string()]);

    // The RDN attribute named by its OID (0.9.2342.19200300.100.1.1 = uid).
    let o = ldapadd_root(
        &url,
        "dn: 0.9.2342.19200300.100.1.1=byoid,ou=people,dc=example,dc=com\n\
         objectClass: inetOrgPerson\ncn: By Oid\nsn: Oid\n",
    );
    assert_code(&o, 0, "add with an OID-named RDN");
    let e =
        read_entry(&url, "uid=byoid,ou=people,dc=example,dc=com", &["uid"]).expect("added entry");
    assert_eq!(e.get("uid"), vec!["byoid".to_string()]);
}

/// Sends `n` simple binds with a wrong password to made-up DNs over one
/// connection, a window of requests in flight at a time, and checks each
/// answer is invalidCredentials (49).
fn bind_made_up_dns(port: u16, tag: usize, n: usize) {
    use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapMsg, LdapOp, LdapResultCode};
    let mut conn = raw::RawConn::connect(port);
    const WINDOW: usize = 500;
    let mut sent = 0;
    while sent < n {
        let batch: Vec<LdapMsg> = (sent..n.min(sent + WINDOW))
            .map(|i| {
                LdapMsg::new(
                    i as i32 + 1,
                    LdapOp::BindRequest(LdapBindRequest {
                        version: 3,
                        dn: format!("uid=nobody-{tag}-{i},ou=people,dc=example,dc=com"),
                        cred: LdapBindCred::Simple("wrong".into()),
                    }),
                )
            })
            .collect();
        let count = batch.len();
        conn.send_all(batch);
        for _ in 0..count {
            match conn.recv(Duration::from_secs(60)) {
                Some(LdapMsg {
                    op: LdapOp::BindResponse(r),
                    ..
                }) => assert_eq!(r.res.code, LdapResultCode::InvalidCredentials),
                other => panic!("expected a bind response, got {other:?}"),
            }
        }
        sent += count;
    }
}

/// Item 4: 100,000 failed binds to made-up DNs (as many as the lockout
/// table held) do not switch lockout off: a real account is still locked
/// after `lockout_threshold` (5) wrong passwords, so even its right
/// password is refused with invalidCredentials (49).
#[test]
fn failed_binds_to_made_up_dns_do_not_disable_lockout() {
    let s = Server::with_sample();
    let port = s.port;
    let workers: Vec<_> = (0..4)
        .map(|t| std::thread::spawn(move || bind_made_up_dns(port, t, 25_000)))
        .collect();
    for w in workers {
        w.join().expect("bind worker");
    }
    for _ in 0..5 {
        assert_eq!(bind_code(&s.url(), ALICE, "not-alices-password"), 49);
    }
    assert_eq!(
        bind_code(&s.url(), ALICE, ALICE_PW),
        49,
        "alice should be locked out after 5 failed binds"
    );
    // The lock is per account: bob is unaffected.
    assert_eq!(bind_code(&s.url(), BOB, BOB_PW), 0);
}

/// Item 6: RFC 2696 §3, the size limit bounds the whole paged result set.
/// An anonymous paged search returns at most the server's size_limit (500)
/// entries in all pages together, then sizeLimitExceeded (4), whatever the
/// page size; the root DN has no server limit.
#[test]
fn paged_search_obeys_the_size_limit_in_total() {
    let s = Server::fast();
    let url = s.url();
    assert_code(
        &ldapadd_root(&url, &people_ldif("many", 800)),
        0,
        "loading 800 entries",
    );
    let base = "ou=many,dc=example,dc=com";
    let filter = "(objectClass=inetOrgPerson)";
    // Page size 2^31-1: one page, cut at the limit.
    let o = search_as(
        &url,
        Who::Anon,
        base,
        &["-s", "one", "-E", "pr=2147483647/noprompt", filter, "1.1"],
    );
    assert_code(&o, 4, "anonymous paged search, page size 2^31-1");
    assert_eq!(entries(&o).len(), 500);
    // Pages of 150: 150+150+150+50, then the limit.
    let o = search_as(
        &url,
        Who::Anon,
        base,
        &["-s", "one", "-E", "pr=150/noprompt", filter, "1.1"],
    );
    assert_code(&o, 4, "anonymous paged search, pages of 150");
    assert_eq!(entries(&o).len(), 500);
    // The client's own sizeLimit bounds the total too.
    let o = search_as(
        &url,
        Who::Anon,
        base,
        &[
            "-s",
            "one",
            "-z",
            "70",
            "-E",
            "pr=30/noprompt",
            filter,
            "1.1",
        ],
    );
    assert_code(&o, 4, "paged search with -z 70");
    assert_eq!(entries(&o).len(), 70);
    // Fewer matches than the limit: success.
    let o = search_as(
        &url,
        Who::Anon,
        base,
        &["-s", "one", "-E", "pr=100/noprompt", "(uid=many-1*)", "1.1"],
    );
    assert_code(&o, 0, "paged search below the limit");
    assert_eq!(entries(&o).len(), 111);
    // The root DN is not bound by the server's limit.
    let o = search_as(
        &url,
        Who::Root,
        base,
        &["-s", "one", "-E", "pr=2147483647/noprompt", filter, "1.1"],
    );
    assert_code(&o, 0, "root paged search");
    assert_eq!(entries(&o).len(), 800);
}

/// `slappasswd -s short -h '{SSHA}'`: a 5-character password, below the
/// policy's minimum of 8.
const SHORT_SSHA: &str = "{SSHA}Tn7KklID/E993LCQkIwzY+WV2hnQuOe7";
/// PBKDF2-SHA512 of "secret" with a million rounds (python3 hashlib).
const MILLION_ROUNDS: &str = "{PBKDF2-SHA512}1000000$AAECAwQFBgcICQoLDA0ODw$Rx0iu/CjlEvNB6YtDPKqjCPx3Rhb6zD/eWm3K0LxRQlSdtA38ZW0m.jr4DriL4CuBnAZcDz1e8pTGRlzxdr1Tg";

/// Item 5: a user cannot set her own password to a pre-hashed value (which
/// skipped the minimum length and could plant costly hashes) by modify or
/// Password Modify: constraintViolation (19) naming the problem, as 389-ds
/// answers with nsslapd-allow-hashed-passwords off. The root DN may.
#[test]
fn users_cannot_set_pre_hashed_passwords() {
    let s = Server::with_sample();
    let url = s.url();
    let ldif = format!(
        "dn: {ALICE}\nchangetype: modify\nreplace: userPassword\nuserPassword: {SHORT_SSHA}\n"
    );
    let o = client(
        "ldapmodify",
        &url,
        Who::User(ALICE, ALICE_PW),
        &[],
        Some(&ldif),
    );
    assert_code(&o, 19, "alice sets her password to an {SSHA} value");
    assert!(
        err(&o).contains("storage scheme"),
        "the message should name the problem: {}",
        err(&o)
    );
    let ldif = format!(
        "dn: {ALICE}\nchangetype: modify\nadd: userPassword\nuserPassword: {MILLION_ROUNDS}\n"
    );
    let o = client(
        "ldapmodify",
        &url,
        Who::User(ALICE, ALICE_PW),
        &[],
        Some(&ldif),
    );
    assert_code(&o, 19, "alice adds a PBKDF2 value with a million rounds");
    let o = client(
        "ldappasswd",
        &url,
        Who::User(ALICE, ALICE_PW),
        &["-s", SHORT_SSHA],
        None,
    );
    assert_eq!(extended_result(&o), 19, "ldappasswd with an {{SSHA}} value");
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 0, "nothing changed");
    assert_eq!(bind_code(&url, ALICE, "short"), 49);

    // The root DN may load a hash (migrations), and it verifies.
    let ldif = format!(
        "dn: {BOB}\nchangetype: modify\nreplace: userPassword\nuserPassword: {SHORT_SSHA}\n"
    );
    assert_code(
        &ldapmodify_root(&url, &ldif),
        0,
        "root sets an {SSHA} value",
    );
    assert_eq!(bind_code(&url, BOB, "short"), 0);
}

/// Item 5: a hash beyond the server's cost bound (here a million
/// PBKDF2-SHA512 rounds) would never verify, so even the root DN cannot
/// store it: unwillingToPerform (53) naming the cost, nothing changed.
#[test]
fn stored_hash_beyond_cost_bound_is_refused() {
    let s = Server::with_sample();
    let url = s.url();
    let ldif = format!(
        "dn: {BOB}\nchangetype: modify\nreplace: userPassword\nuserPassword: {MILLION_ROUNDS}\n"
    );
    let o = ldapmodify_root(&url, &ldif);
    assert_code(&o, 53, "root loads a hash beyond the cost bound");
    assert!(
        err(&o).contains("{PBKDF2-SHA512}") && err(&o).contains("more work than ferrodir allows"),
        "the message should name the scheme and the cost: {}",
        err(&o)
    );
    assert_eq!(bind_code(&url, BOB, BOB_PW), 0, "nothing changed");
    assert_eq!(bind_code(&url, BOB, "secret"), 49);
}

/// Item 11: RFC 2307's `objectClass: posixGroup` on its own (nslcd's,
/// ClearOS's and smbldap-tools' LDIF) is accepted, and so is the
/// rfc2307bis form with groupOfNames (the SAMPLE's staff group).
#[test]
fn posix_group_on_its_own_is_accepted() {
    let s = Server::with_sample();
    let url = s.url();
    let o = ldapadd_root(
        &url,
        &format!(
            "dn: cn=rfc2307,{GROUPS}\nobjectClass: top\nobjectClass: posixGroup\n\
             cn: rfc2307\ngidNumber: 10010\nmemberUid: alice\n"
        ),
    );
    assert_code(&o, 0, "adding an RFC 2307 posixGroup");
    let o = search_as(
        &url,
        Who::Anon,
        GROUPS,
        &["(objectClass=posixGroup)", "1.1"],
    );
    assert_eq!(
        dn_set(&o),
        sorted_lower(&[
            &format!("cn=rfc2307,{GROUPS}"),
            &format!("cn=staff,{GROUPS}")
        ]),
        "{}",
        out(&o)
    );
    let e = read_entry(
        &url,
        &format!("cn=rfc2307,{GROUPS}"),
        &["structuralObjectClass"],
    )
    .expect("the group");
    assert_eq!(
        e.get("structuralObjectClass"),
        vec!["posixGroup".to_string()]
    );
}
