//! Data survives restarts and SIGKILL; the offline tools (import, export,
//! hash-password) work on real data directories.

mod common;

use common::*;
use ldap3::{LdapConn, Scope, SearchEntry};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn uids_under(url: &str, base: &str, filter: &str) -> HashSet<String> {
    let mut c = LdapConn::new(url).expect("connect");
    c.simple_bind(ROOT_DN, &root_password())
        .expect("bind")
        .success()
        .expect("root");
    let (es, _) = c
        .search(base, Scope::Subtree, filter, vec!["uid"])
        .expect("search")
        .success()
        .expect("search ok");
    es.into_iter()
        .filter_map(|e| {
            SearchEntry::construct(e)
                .attrs
                .get("uid")
                .and_then(|v| v.first().cloned())
        })
        .collect()
}

#[test]
fn restart_keeps_data() {
    let mut s = Server::with_sample();
    let url = s.url();
    assert_code(
        &ldapmodify_root(
            &url,
            &format!("dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: kept@example.com\n"),
        ),
        0,
        "modify",
    );
    assert_code(
        &client("ldapdelete", &url, Who::Root, &[BOB], None),
        0,
        "delete bob",
    );
    let before = search_root(&url, SUFFIX, &["*", "entryUUID", "createTimestamp"]);
    assert_code(&before, 0, "search before restart");
    s.stop();
    // Without FERRODIR_ROOT_PASSWORD: the root password must come from the store.
    s.root_password_env = false;
    s.launch();
    let after = search_root(&url, SUFFIX, &["*", "entryUUID", "createTimestamp"]);
    assert_code(&after, 0, "search after restart");
    assert_eq!(
        out(&before),
        out(&after),
        "the tree changed across a restart"
    );
    assert_eq!(
        bind_code(&url, ALICE, ALICE_PW),
        0,
        "user password after restart"
    );
    assert_eq!(
        bind_code(&url, ROOT_DN, &root_password()),
        0,
        "root password after restart"
    );
    // Writable after the restart, and the base entry was not recreated.
    assert_code(
        &ldapadd_root(
            &url,
            &format!("dn: uid=bob,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: bob\ncn: b\nsn: b\n"),
        ),
        0,
        "add after restart",
    );
    let base = search_root(&url, SUFFIX, &["-s", "base", "objectClass"]);
    assert_eq!(entries(&base).len(), 1);
}

/// One writer per thread adds entries as fast as it can and counts the adds
/// the server acknowledged; the server is SIGKILLed mid-stream. After a
/// restart every acknowledged entry must be there.
#[test]
fn kill9_loses_no_acknowledged_write() {
    let mut s = Server::with_sample();
    let url = s.url();
    for round in 0..2 {
        const WRITERS: usize = 3;
        let stop = Arc::new(AtomicBool::new(false));
        let counters: Vec<Arc<AtomicUsize>> = (0..WRITERS)
            .map(|_| Arc::new(AtomicUsize::new(0)))
            .collect();
        let mut handles = Vec::new();
        for (w, acked) in counters.iter().enumerate() {
            let acked = acked.clone();
            let stop = stop.clone();
            let url = url.clone();
            handles.push(std::thread::spawn(move || {
                let mut c = LdapConn::new(&url).expect("connect");
                c.with_timeout(Duration::from_secs(10));
                c.simple_bind(ROOT_DN, &root_password())
                    .expect("bind")
                    .success()
                    .expect("root");
                let mut i = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let uid = format!("k{round}w{w}n{i:05}");
                    let dn = format!("uid={uid},{PEOPLE}");
                    let attrs = vec![
                        ("objectClass", HashSet::from(["inetOrgPerson"])),
                        ("uid", HashSet::from([uid.as_str()])),
                        ("cn", HashSet::from(["k"])),
                        ("sn", HashSet::from(["k"])),
                    ];
                    match c.add(&dn, attrs) {
                        Ok(r) if r.rc == 0 => {
                            i += 1;
                            acked.store(i, Ordering::SeqCst);
                        }
                        Ok(r) => panic!("add {dn} refused before the kill: {r:?}"),
                        Err(_) => break, // the server died
                    }
                }
            }));
        }
        // Let the writers get going, then kill.
        let deadline = Instant::now() + Duration::from_secs(20);
        while counters
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum::<usize>()
            < 150
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        s.kill9();
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            h.join().expect("writer thread");
        }
        let acked: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert!(
            acked.iter().sum::<usize>() > 0,
            "no add was acknowledged in 20 s"
        );
        s.launch();
        let present = uids_under(&url, PEOPLE, &format!("(uid=k{round}w*)"));
        for (w, n) in acked.iter().enumerate() {
            for i in 0..*n {
                let uid = format!("k{round}w{w}n{i:05}");
                assert!(present.contains(&uid), "round {round}: acknowledged add {uid} lost after SIGKILL (acked {acked:?}, present {})", present.len());
            }
            // At most the one in-flight add per writer may be there beyond the acknowledged ones.
            let extra = present
                .iter()
                .filter(|u| {
                    u.starts_with(&format!("k{round}w{w}n"))
                        && u[format!("k{round}w{w}n").len()..]
                            .parse::<usize>()
                            .unwrap_or(0)
                            >= *n
                })
                .count();
            assert!(
                extra <= 1,
                "writer {w}: {extra} unacknowledged entries appeared"
            );
        }
        // The database is consistent: the DN index and the entries agree.
        let sub = search_root(&url, PEOPLE, &["-s", "one", "1.1"]);
        assert_code(&sub, 0, "one-level search after restart");
        assert_eq!(
            entries(&sub).len(),
            uids_under(&url, PEOPLE, "(objectClass=*)").len()
        );
        assert_code(&ldapadd_root(&url, &format!("dn: uid=after{round},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: after{round}\ncn: a\nsn: a\n")), 0, "write after restart");
    }
}

// ---------------------------------------------------------------------------
// Offline tools

fn generated_ldif(n: usize) -> String {
    let mut t = String::from(
        "dn: dc=example,dc=com\nobjectClass: top\nobjectClass: domain\ndc: example\n\ndn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n",
    );
    for i in 0..n {
        t.push_str(&format!(
            "dn: uid=user{i:05},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: user{i:05}\ncn: User {i}\nsn: Number{i}\nmail: user{i}@example.com\nuidNumber: {}\ngidNumber: 100\nhomeDirectory: /home/user{i:05}\n",
            20000 + i
        ));
        if i < 2 {
            // Test-only clear-text passwords for two users.
            t.push_str(&format!("userPassword: import-pw-{i}\n"));
        }
        t.push('\n');
    }
    t
}

#[test]
fn import_then_serve() {
    const N: usize = 3000;
    let mut s = Server::unstarted(&[]);
    let file = s.data_dir().parent().unwrap().join("gen.ldif");
    std::fs::write(&file, generated_ldif(N)).unwrap();
    let data = s.data_dir().display().to_string();
    let o = ferrodir(
        &["import", "--data-dir", &data, file.to_str().unwrap()],
        None,
    );
    assert_code(&o, 0, "ferrodir import");
    assert!(
        err(&o).contains(&format!("imported {} entries", N + 2)),
        "import summary: {}",
        err(&o)
    );
    s.launch();
    let url = s.url();
    let all = uids_under(&url, PEOPLE, "(objectClass=inetOrgPerson)");
    assert_eq!(all.len(), N);
    // Indexed equality, substring and range filters work on imported data.
    assert_eq!(
        uids_under(&url, SUFFIX, "(uid=user02999)"),
        HashSet::from(["user02999".to_string()])
    );
    assert_eq!(uids_under(&url, SUFFIX, "(mail=user123*)").len(), 11);
    assert_eq!(uids_under(&url, SUFFIX, "(uidNumber>=22990)").len(), 10);
    // Only one base entry; operational attributes were generated.
    let base = search_root(
        &url,
        SUFFIX,
        &["-s", "base", "entryUUID", "createTimestamp"],
    );
    let b = entries(&base);
    assert_eq!(b.len(), 1);
    assert!(
        b[0].has("entryUUID") && b[0].has("createTimestamp"),
        "{}",
        out(&base)
    );
    let e = read_entry(
        &url,
        "uid=user00001,ou=people,dc=example,dc=com",
        &["entryUUID", "numSubordinates"],
    )
    .expect("imported user");
    assert!(e.has("entryUUID"));
    let p = read_entry(&url, PEOPLE, &["numSubordinates"]).expect("people");
    assert_eq!(p.get("numSubordinates"), vec![N.to_string()]);
    // Non-root searches are capped by limits.size_limit (500 by default),
    // paged or not: the limit bounds the whole paged result set (RFC 2696 §3).
    let o = search_as(&url, Who::Anon, PEOPLE, &["-s", "one", "1.1"]);
    assert_code(&o, 4, "anonymous search over 3000 entries");
    assert_eq!(entries(&o).len(), 500);
    let o = search_as(
        &url,
        Who::Anon,
        PEOPLE,
        &["-s", "one", "-E", "pr=1000/noprompt", "1.1"],
    );
    assert_code(&o, 4, "anonymous paged search");
    assert_eq!(entries(&o).len(), 500);
    let o = search_as(
        &url,
        Who::Root,
        PEOPLE,
        &["-s", "one", "-E", "pr=1000/noprompt", "1.1"],
    );
    assert_code(&o, 0, "root paged search");
    assert_eq!(entries(&o).len(), N);
    // Imported clear-text passwords work.
    assert_eq!(
        bind_code(
            &url,
            "uid=user00000,ou=people,dc=example,dc=com",
            "import-pw-0"
        ),
        0
    );
    assert_eq!(
        bind_code(
            &url,
            "uid=user00001,ou=people,dc=example,dc=com",
            "import-pw-0"
        ),
        49
    );
    // The root password from the environment was set at the first start.
    assert_eq!(bind_code(&url, ROOT_DN, &root_password()), 0);
}

#[test]
fn import_refused_while_serving() {
    let s = Server::with_sample();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("more.ldif");
    std::fs::write(&file, "dn: uid=sneaky,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: sneaky\ncn: s\nsn: s\n").unwrap();
    let data = s.data_dir().display().to_string();
    let o = ferrodir(
        &["import", "--data-dir", &data, file.to_str().unwrap()],
        None,
    );
    assert_ne!(
        code(&o),
        0,
        "import must refuse a data directory in use:\n{}",
        err(&o)
    );
    let msg = err(&o).to_ascii_lowercase();
    assert!(
        ["in use", "running", "locked", "lock"]
            .iter()
            .any(|w| msg.contains(w)),
        "the message should say the data directory is in use by a running server: {}",
        err(&o)
    );
    assert!(read_entry(&s.url(), "uid=sneaky,ou=people,dc=example,dc=com", &["1.1"]).is_none());
    assert_eq!(bind_code(&s.url(), ALICE, ALICE_PW), 0, "server still fine");
}

#[test]
fn export_while_serving() {
    let s = Server::with_sample();
    let data = s.data_dir().display().to_string();
    let o = ferrodir(&["export", "--data-dir", &data], None);
    assert_code(&o, 0, "export while running");
    let es = parse_ldif(&out(&o));
    let mut dns: Vec<String> = es.iter().map(|e| e.dn.to_ascii_lowercase()).collect();
    dns.sort();
    assert_eq!(
        dns,
        sorted_lower(&[
            SUFFIX,
            PEOPLE,
            GROUPS,
            ALICE,
            BOB,
            "cn=staff,ou=groups,dc=example,dc=com"
        ])
    );
    // Parents before children.
    let pos = |dn: &str| {
        es.iter()
            .position(|e| e.dn.eq_ignore_ascii_case(dn))
            .unwrap()
    };
    assert!(pos(SUFFIX) < pos(PEOPLE) && pos(PEOPLE) < pos(ALICE));
    let alice = &es[pos(ALICE)];
    assert!(
        alice.has("entryUUID"),
        "export keeps entryUUID for a faithful reload"
    );
    assert!(
        alice.get("userPassword").iter().all(|p| p.starts_with('{')),
        "export carries the hash, never clear text"
    );
    // -o FILE while still running, then the server still answers.
    let f = s.data_dir().parent().unwrap().join("dump.ldif");
    let o = ferrodir(
        &["export", "--data-dir", &data, "-o", f.to_str().unwrap()],
        None,
    );
    assert_code(&o, 0, "export -o");
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        out(&ferrodir(&["export", "--data-dir", &data], None))
    );
    assert_eq!(bind_code(&s.url(), ALICE, ALICE_PW), 0);
}

#[test]
fn export_import_export_is_identical() {
    let mut s = Server::with_sample();
    let url = s.url();
    // Awkward values: leading space (base64 in LDIF: a plain value loses its leading spaces, RFC 2849), non-ASCII, binary, long (folded) lines, a multi-valued RDN.
    let long = "L".repeat(300);
    let ldif = format!(
        "dn: {ALICE}\nchangetype: modify\nadd: description\ndescription:: IGxlYWRpbmcgc3BhY2U=\ndescription: Ünïcødé ✓\ndescription: {long}\n-\nadd: jpegPhoto\njpegPhoto:: AAECA//+/f8=\n\ndn: cn=Multi+uid=multi,{PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\ncn: Multi\nuid: multi\nsn: M\n"
    );
    assert_code(&ldapmodify_root(&url, &ldif), 0, "awkward values");
    s.stop();
    let dir = tempfile::tempdir().unwrap();
    let d1 = s.data_dir().display().to_string();
    let f1 = dir.path().join("one.ldif");
    let f2 = dir.path().join("two.ldif");
    let d2 = dir.path().join("data2");
    assert_code(
        &ferrodir(
            &["export", "--data-dir", &d1, "-o", f1.to_str().unwrap()],
            None,
        ),
        0,
        "export 1",
    );
    let o = ferrodir(
        &[
            "import",
            "--data-dir",
            d2.to_str().unwrap(),
            f1.to_str().unwrap(),
        ],
        None,
    );
    assert_code(&o, 0, "import of the export");
    assert_code(
        &ferrodir(
            &[
                "export",
                "--data-dir",
                d2.to_str().unwrap(),
                "-o",
                f2.to_str().unwrap(),
            ],
            None,
        ),
        0,
        "export 2",
    );
    let a = std::fs::read(&f1).unwrap();
    let b = std::fs::read(&f2).unwrap();
    if a != b {
        let (ta, tb) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
        let first = ta.lines().zip(tb.lines()).position(|(x, y)| x != y);
        panic!(
            "export -> import -> export differs ({} vs {} bytes); first differing line {:?}:\n< {:?}\n> {:?}",
            a.len(),
            b.len(),
            first,
            first.and_then(|i| ta.lines().nth(i)),
            first.and_then(|i| tb.lines().nth(i))
        );
    }
    // The values themselves are intact in the export.
    let es = parse_ldif(&String::from_utf8_lossy(&a));
    let alice = es
        .iter()
        .find(|e| e.dn.eq_ignore_ascii_case(ALICE))
        .unwrap();
    let mut d = alice.get("description");
    d.sort();
    assert_eq!(
        d,
        vec![
            " leading space".to_string(),
            long.clone(),
            "Ünïcødé ✓".to_string()
        ]
    );
    assert_eq!(
        alice.get_bytes("jpegPhoto"),
        vec![vec![0u8, 1, 2, 3, 0xff, 0xfe, 0xfd, 0xff]]
    );
    // The reimported directory serves the same data and passwords.
    let mut s2 = Server::unstarted(&[]);
    s2.data = d2.clone();
    s2.launch();
    assert_eq!(
        bind_code(&s2.url(), ALICE, ALICE_PW),
        0,
        "password after export/import"
    );
    let e = read_entry(
        &s2.url(),
        &format!("cn=Multi+uid=multi,{PEOPLE}"),
        &["cn", "uid"],
    )
    .expect("multi-valued RDN entry");
    assert_eq!(e.get("uid"), vec!["multi"]);
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l == needle)
        .map(|i| i + 1)
        .expect("needle")
}

fn assert_names_line(o: &std::process::Output, line: usize, what: &str) {
    assert_ne!(code(o), 0, "{what}: import must fail");
    let e = err(o);
    let named = e.contains(&format!("line {line}"))
        || e.contains(&format!(":{line}:"))
        || e.contains(&format!(":{line} "));
    assert!(named, "{what}: the message should name line {line}:\n{e}");
}

#[test]
fn import_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = generated_ldif(3);
    // 1. An LDIF syntax error: a line without a colon inside the 3rd user.
    let bad_syntax = good.replace("cn: User 2\n", "cn: User 2\nthis line is not ldif\n");
    let f = dir.path().join("syntax.ldif");
    std::fs::write(&f, &bad_syntax).unwrap();
    let d = dir.path().join("d1");
    let o = ferrodir(
        &[
            "import",
            "--data-dir",
            d.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        None,
    );
    assert_names_line(
        &o,
        line_of(&bad_syntax, "this line is not ldif"),
        "syntax error",
    );
    // 2. A schema violation: the record starting on a known line lacks sn.
    let bad_schema = good.replace("sn: Number1\n", "");
    let f = dir.path().join("schema.ldif");
    std::fs::write(&f, &bad_schema).unwrap();
    let d = dir.path().join("d2");
    let o = ferrodir(
        &[
            "import",
            "--data-dir",
            d.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        None,
    );
    assert_names_line(
        &o,
        line_of(&bad_schema, "dn: uid=user00001,ou=people,dc=example,dc=com"),
        "schema violation",
    );
    assert!(
        err(&o).to_ascii_lowercase().contains("sn"),
        "the message should name the missing attribute: {}",
        err(&o)
    );
    // 3. An entry whose parent is missing.
    let orphan = format!("{good}dn: uid=x,ou=nowhere,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: x\ncn: x\nsn: x\n");
    let f = dir.path().join("orphan.ldif");
    std::fs::write(&f, &orphan).unwrap();
    let d = dir.path().join("d3");
    let o = ferrodir(
        &[
            "import",
            "--data-dir",
            d.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        None,
    );
    assert_names_line(
        &o,
        line_of(&orphan, "dn: uid=x,ou=nowhere,dc=example,dc=com"),
        "missing parent",
    );
    // 4. A missing input file.
    let o = ferrodir(
        &[
            "import",
            "--data-dir",
            d.to_str().unwrap(),
            "/nonexistent/x.ldif",
        ],
        None,
    );
    assert_ne!(code(&o), 0);
    assert!(err(&o).contains("/nonexistent/x.ldif"), "{}", err(&o));
}

fn verify_ssha(hash: &str, pw: &str) -> bool {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let Some(b64) = hash.strip_prefix("{SSHA}") else {
        return false;
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    if raw.len() <= 20 {
        return false;
    }
    let (digest, salt) = raw.split_at(20);
    let mut h = Sha1::new();
    h.update(pw.as_bytes());
    h.update(salt);
    h.finalize().as_slice() == digest
}

#[test]
fn hash_password_output_works() {
    let s = Server::with_sample();
    let url = s.url();
    let o = ferrodir(&["hash-password", "-h", "SSHA", "hp-secret"], None);
    assert_code(&o, 0, "hash-password -h SSHA");
    let hash = out(&o).trim().to_string();
    assert!(
        verify_ssha(&hash, "hp-secret"),
        "not a valid {{SSHA}} of the password: {hash}"
    );
    assert!(!verify_ssha(&hash, "other"));
    // Two runs use different salts.
    let again = out(&ferrodir(
        &["hash-password", "-h", "SSHA", "hp-secret"],
        None,
    ))
    .trim()
    .to_string();
    assert_ne!(hash, again, "salt must be random");
    // Stored as root, the user binds with the password.
    assert_code(
        &ldapmodify_root(
            &url,
            &format!(
                "dn: {ALICE}\nchangetype: modify\nreplace: userPassword\nuserPassword: {hash}\n"
            ),
        ),
        0,
        "store the hash",
    );
    assert_eq!(bind_code(&url, ALICE, "hp-secret"), 0);
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 49);
    // Default scheme, password from standard input, {braces} accepted.
    let o = ferrodir(&["hash-password"], Some("stdin-secret\n"));
    assert_code(&o, 0, "hash-password from stdin");
    let h = out(&o).trim().to_string();
    assert!(h.starts_with("{PBKDF2-SHA512}"), "{h}");
    assert_code(
        &ldapmodify_root(
            &url,
            &format!("dn: {BOB}\nchangetype: modify\nreplace: userPassword\nuserPassword: {h}\n"),
        ),
        0,
        "store the PBKDF2 hash",
    );
    assert_eq!(bind_code(&url, BOB, "stdin-secret"), 0);
    let o = ferrodir(&["hash-password", "-h", "{SSHA512}", "x"], None);
    assert_code(&o, 0, "-h {SSHA512}");
    assert!(out(&o).starts_with("{SSHA512}"));
    // An unknown scheme fails with a message.
    let o = ferrodir(&["hash-password", "-h", "ROT13", "x"], None);
    assert_ne!(code(&o), 0);
    assert!(err(&o).contains("ROT13"), "{}", err(&o));
}
