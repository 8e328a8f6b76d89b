//! The server driven by the ldap3 crate (an encoder independent of the
//! server's own codec), plus hand-made pipelined traffic over raw TCP.

mod common;

use common::raw::{search, RawConn};
use common::*;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::exop::{PasswordModify, PasswordModifyResp, WhoAmI, WhoAmIResp};
use ldap3::{LdapConn, LdapConnAsync, Mod, Scope, SearchEntry};
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode, LdapSearchScope};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

fn connect(s: &Server) -> LdapConn {
    let mut c = LdapConn::new(&s.url()).expect("ldap3 connect");
    c.with_timeout(Duration::from_secs(30));
    c
}

fn root(s: &Server) -> LdapConn {
    let mut c = connect(s);
    c.simple_bind(ROOT_DN, &root_password())
        .expect("bind")
        .success()
        .expect("root bind");
    c
}

fn st(x: &str) -> String {
    x.to_string()
}

fn set(vals: &[&str]) -> HashSet<String> {
    vals.iter().map(|s| s.to_string()).collect()
}

fn entry(c: &mut LdapConn, dn: &str, attrs: &[&str]) -> Option<SearchEntry> {
    let r = c
        .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
        .expect("search");
    if r.1.rc == 32 {
        return None;
    }
    let (es, _) = r.success().expect("base search");
    es.into_iter().next().map(SearchEntry::construct)
}

fn add_people(s: &Server, n: usize) {
    let mut ldif = String::new();
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: uid=p{i:03},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: p{i:03}\ncn: Person {i}\nsn: P\nemployeeNumber: {i}\n\n"
        ));
    }
    assert_code(&ldapadd_root(&s.url(), &ldif), 0, "adding people");
}

#[test]
fn bind_and_whoami() {
    let s = Server::with_sample();
    let mut c = connect(&s);
    let (exop, res) = c
        .extended(WhoAmI)
        .expect("whoami")
        .success()
        .expect("anonymous whoami");
    assert_eq!(res.rc, 0);
    // RFC 4532: the anonymous authzId is the empty string.
    let who: WhoAmIResp = exop.parse();
    assert_eq!(who.authzid, "", "anonymous authzId");

    let r = c.simple_bind(ALICE, "wrong").expect("bind");
    assert_eq!(r.rc, 49, "wrong password: {r:?}");
    let r = c
        .simple_bind("uid=ghost,ou=people,dc=example,dc=com", "wrong")
        .expect("bind");
    assert_eq!(r.rc, 49, "unknown DN: {r:?}");
    // After a failed bind the connection is anonymous and usable.
    let (exop, _) = c
        .extended(WhoAmI)
        .expect("whoami")
        .success()
        .expect("whoami after failure");
    assert_eq!(exop.parse::<WhoAmIResp>().authzid, "");

    c.simple_bind(ALICE, ALICE_PW)
        .expect("bind")
        .success()
        .expect("alice bind");
    let (exop, _) = c
        .extended(WhoAmI)
        .expect("whoami")
        .success()
        .expect("whoami");
    assert_eq!(exop.parse::<WhoAmIResp>().authzid, format!("dn:{ALICE}"));
    // Rebinding on the same connection changes the identity.
    c.simple_bind(ROOT_DN, &root_password())
        .expect("bind")
        .success()
        .expect("root bind");
    let (exop, _) = c
        .extended(WhoAmI)
        .expect("whoami")
        .success()
        .expect("whoami");
    assert_eq!(
        exop.parse::<WhoAmIResp>().authzid.to_ascii_lowercase(),
        "dn:cn=directory manager"
    );
    // Empty password with a DN: unauthenticated bind refused (RFC 4513 5.1.2).
    let r = c.simple_bind(ALICE, "").expect("bind");
    assert_eq!(r.rc, 53, "unauthenticated bind: {r:?}");
    // Anonymous bind again.
    c.simple_bind("", "")
        .expect("bind")
        .success()
        .expect("anonymous bind");
    c.unbind().expect("unbind");
}

#[test]
fn search_and_attributes() {
    let s = Server::with_sample();
    let mut c = connect(&s);
    let (es, res) = c
        .search(
            SUFFIX,
            Scope::Subtree,
            "(&(objectClass=posixAccount)(uid=a*))",
            vec!["cn", "uidNumber", "entryUUID"],
        )
        .expect("search")
        .success()
        .expect("search ok");
    assert_eq!(res.rc, 0);
    assert_eq!(es.len(), 1);
    let e = SearchEntry::construct(es.into_iter().next().unwrap());
    assert_eq!(e.dn, ALICE);
    assert_eq!(e.attrs.get("cn"), Some(&vec!["Alice Liddell".to_string()]));
    assert_eq!(e.attrs.get("uidNumber"), Some(&vec!["10001".to_string()]));
    assert_eq!(e.attrs.get("entryUUID").map(Vec::len), Some(1));
    assert_eq!(
        e.attrs.len(),
        3,
        "only the requested attributes: {:?}",
        e.attrs
    );

    // ldap3 filter encoder: escapes, extensible, NOT.
    let (es, _) = c
        .search(
            SUFFIX,
            Scope::Subtree,
            "(&(cn:caseExactMatch:=Bob Builder)(!(uid=alice)))",
            vec!["1.1"],
        )
        .expect("search")
        .success()
        .expect("ext search");
    assert_eq!(es.len(), 1);
    // Size limit: rc 4 with one entry.
    c.with_search_options(ldap3::SearchOptions::new().sizelimit(1));
    let r = c
        .search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .expect("search");
    assert_eq!(r.1.rc, 4, "sizeLimitExceeded: {:?}", r.1);
    assert_eq!(r.0.len(), 1);
    // typesOnly.
    c.with_search_options(ldap3::SearchOptions::new().typesonly(true));
    let (es, _) = c
        .search(ALICE, Scope::Base, "(objectClass=*)", vec!["cn", "mail"])
        .expect("search")
        .success()
        .expect("typesonly");
    let e = SearchEntry::construct(es.into_iter().next().unwrap());
    assert_eq!(
        e.attrs.get("cn"),
        Some(&vec![]),
        "typesOnly returns no values: {:?}",
        e.attrs
    );
    // Missing base: 32 with matchedDN.
    let r = c
        .search(
            "uid=x,ou=people,dc=example,dc=com",
            Scope::Base,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .expect("search");
    assert_eq!(r.1.rc, 32);
    assert_eq!(r.1.matched.to_ascii_lowercase(), PEOPLE);
}

#[test]
fn paged_results() {
    let s = Server::with_sample();
    add_people(&s, 40);
    let mut c = root(&s);
    // The adapter drives the cookie loop.
    let adapters: Vec<Box<dyn Adapter<_, _>>> =
        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(7))];
    let mut stream = c
        .streaming_search_with(adapters, PEOPLE, Scope::OneLevel, "(uid=p*)", vec!["uid"])
        .expect("paged stream");
    let mut seen = Vec::new();
    while let Some(re) = stream.next().expect("next") {
        seen.push(SearchEntry::construct(re).dn.to_ascii_lowercase());
    }
    let res = stream.result();
    assert_eq!(res.rc, 0, "{res:?}");
    assert_eq!(seen.len(), 40, "every entry once");
    let uniq: HashSet<_> = seen.iter().collect();
    assert_eq!(uniq.len(), 40, "no duplicates");

    // The raw control, page by page: each page has at most 5 entries, and the
    // last page returns an empty cookie.
    let mut cookie: Vec<u8> = Vec::new();
    let mut total = 0;
    let mut pages = 0;
    loop {
        let ctrl = ldap3::controls::PagedResults {
            size: 5,
            cookie: cookie.clone(),
        };
        c.with_controls(ctrl);
        let (es, res) = c
            .search(PEOPLE, Scope::OneLevel, "(uid=p*)", vec!["1.1"])
            .expect("page")
            .success()
            .expect("page ok");
        pages += 1;
        assert!(es.len() <= 5, "page of {}", es.len());
        total += es.len();
        let resp = res
            .ctrls
            .iter()
            .find(|c| c.1.ctype == "1.2.840.113556.1.4.319")
            .unwrap_or_else(|| panic!("no paged-results response control: {res:?}"));
        let pr: ldap3::controls::PagedResults = resp.1.parse();
        if pr.cookie.is_empty() {
            break;
        }
        cookie = pr.cookie;
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(total, 40);
    assert_eq!(pages, 8);

    // Abandoning a paged search: size 0 with the cookie (RFC 2696 section 3).
    c.with_controls(ldap3::controls::PagedResults {
        size: 5,
        cookie: vec![],
    });
    let (_, res) = c
        .search(PEOPLE, Scope::OneLevel, "(uid=p*)", vec!["1.1"])
        .expect("page")
        .success()
        .expect("first page");
    let pr: ldap3::controls::PagedResults = res
        .ctrls
        .iter()
        .find(|c| c.1.ctype == "1.2.840.113556.1.4.319")
        .expect("ctrl")
        .1
        .parse();
    c.with_controls(ldap3::controls::PagedResults {
        size: 0,
        cookie: pr.cookie,
    });
    let (es, res) = c
        .search(PEOPLE, Scope::OneLevel, "(uid=p*)", vec!["1.1"])
        .expect("page")
        .success()
        .expect("abandon paging");
    assert!(es.is_empty(), "size 0 returns no entries");
    assert_eq!(res.rc, 0);
}

#[test]
fn controls_criticality() {
    let s = Server::with_sample();
    let mut c = root(&s);
    c.with_controls(RawControl {
        ctype: "1.2.3.4.5".into(),
        crit: true,
        val: None,
    });
    let r = c
        .search(SUFFIX, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .expect("search");
    assert_eq!(r.1.rc, 12, "unknown critical control: {:?}", r.1);
    assert!(r.0.is_empty());
    c.with_controls(RawControl {
        ctype: "1.2.3.4.5".into(),
        crit: false,
        val: Some(b"junk".to_vec()),
    });
    let r = c
        .search(SUFFIX, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .expect("search");
    assert_eq!(r.1.rc, 0, "unknown non-critical control: {:?}", r.1);
    c.with_controls(RawControl {
        ctype: "1.2.3.4.5".into(),
        crit: true,
        val: None,
    });
    let r = c.delete(BOB).expect("delete");
    assert_eq!(r.rc, 12, "critical control on delete: {r:?}");
    assert!(
        entry(&mut c, BOB, &["1.1"]).is_some(),
        "bob was deleted despite rc 12"
    );
}

#[test]
fn add_modify_rename_delete() {
    let s = Server::with_sample();
    let mut c = root(&s);
    let dn = "uid=erin,ou=people,dc=example,dc=com";
    let r = c
        .add(
            dn,
            vec![
                (st("objectClass"), set(&["inetOrgPerson", "posixAccount"])),
                (st("uid"), set(&["erin"])),
                (st("cn"), set(&["Erin Example"])),
                (st("sn"), set(&["Example"])),
                (st("uidNumber"), set(&["20000"])),
                (st("gidNumber"), set(&["20000"])),
                (st("homeDirectory"), set(&["/home/erin"])),
                (st("mail"), set(&["erin@example.com", "e@example.com"])),
            ],
        )
        .expect("add");
    assert_eq!(r.rc, 0, "{r:?}");
    let again = c
        .add(
            dn,
            vec![
                (st("objectClass"), set(&["inetOrgPerson"])),
                (st("uid"), set(&["erin"])),
                (st("cn"), set(&["x"])),
                (st("sn"), set(&["y"])),
            ],
        )
        .expect("add");
    assert_eq!(again.rc, 68);
    let orphan = c
        .add(
            "uid=x,ou=none,dc=example,dc=com",
            vec![
                (st("objectClass"), set(&["inetOrgPerson"])),
                (st("uid"), set(&["x"])),
                (st("cn"), set(&["x"])),
                (st("sn"), set(&["x"])),
            ],
        )
        .expect("add");
    assert_eq!(orphan.rc, 32);
    assert_eq!(orphan.matched.to_ascii_lowercase(), SUFFIX);
    let viol = c
        .add(
            "uid=y,ou=people,dc=example,dc=com",
            vec![
                (st("objectClass"), set(&["inetOrgPerson"])),
                (st("uid"), set(&["y"])),
                (st("cn"), set(&["y"])),
            ],
        )
        .expect("add");
    assert_eq!(viol.rc, 65, "missing sn: {viol:?}");
    assert!(!viol.text.is_empty(), "diagnostic message expected");

    let r = c
        .modify(
            dn,
            vec![
                Mod::Add(st("description"), set(&["one", "two"])),
                Mod::Delete(st("mail"), set(&["e@example.com"])),
                Mod::Replace(st("cn"), set(&["Erin E", "Erin Example"])),
                Mod::Increment(st("uidNumber"), st("-5")),
            ],
        )
        .expect("modify");
    assert_eq!(r.rc, 0, "{r:?}");
    let e = entry(&mut c, dn, &["description", "mail", "cn", "uidNumber"]).expect("erin");
    let got = |a: &str| -> HashSet<String> {
        e.attrs
            .get(a)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    assert_eq!(got("description"), set(&["one", "two"]));
    assert_eq!(got("mail"), set(&["erin@example.com"]));
    assert_eq!(got("cn"), set(&["Erin E", "Erin Example"]));
    assert_eq!(got("uidNumber"), set(&["19995"]));
    let bad = c
        .modify(
            dn,
            vec![
                Mod::Delete(st("description"), set(&["one"])),
                Mod::Add(st("uidNumber"), set(&["1"])),
            ],
        )
        .expect("modify");
    assert_eq!(bad.rc, 19, "second value of SINGLE-VALUE: {bad:?}");
    let e = entry(&mut c, dn, &["description"]).expect("erin");
    assert_eq!(
        e.attrs.get("description").map(Vec::len),
        Some(2),
        "failed modify partly applied"
    );

    let r = c
        .modifydn(dn, "uid=erin2", true, Some(GROUPS))
        .expect("modrdn");
    assert_eq!(r.rc, 0, "{r:?}");
    let moved = "uid=erin2,ou=groups,dc=example,dc=com";
    assert!(entry(&mut c, dn, &["1.1"]).is_none());
    let e = entry(&mut c, moved, &["uid"]).expect("moved");
    assert_eq!(e.attrs.get("uid"), Some(&vec!["erin2".to_string()]));
    let r = c
        .modifydn(
            moved,
            "uid=staff",
            false,
            Some("ou=missing,dc=example,dc=com"),
        )
        .expect("modrdn");
    assert_eq!(r.rc, 32);

    let r = c.delete(moved).expect("delete");
    assert_eq!(r.rc, 0);
    let r = c.delete(moved).expect("delete");
    assert_eq!(r.rc, 32);
    let r = c.delete(PEOPLE).expect("delete");
    assert_eq!(r.rc, 66);
}

#[test]
fn compare_ops() {
    let s = Server::with_sample();
    let mut c = connect(&s);
    assert!(c
        .compare(ALICE, "mail", "ALICE@example.com")
        .expect("compare")
        .equal()
        .expect("ok"));
    assert!(!c
        .compare(ALICE, "mail", "bob@example.com")
        .expect("compare")
        .equal()
        .expect("ok"));
    assert_eq!(
        c.compare(ALICE, "description", "x").expect("compare").0.rc,
        16
    );
    assert_eq!(
        c.compare(ALICE, "noSuchAttr", "x").expect("compare").0.rc,
        17
    );
    assert_eq!(
        c.compare("uid=none,ou=people,dc=example,dc=com", "cn", "x")
            .expect("compare")
            .0
            .rc,
        32
    );
    let mut r = root(&s);
    assert!(r
        .compare(ALICE, "userPassword", ALICE_PW)
        .expect("compare")
        .equal()
        .expect("ok"));
    assert!(r
        .compare(ALICE, "objectClass", "posixAccount")
        .expect("compare")
        .equal()
        .expect("ok"));
}

#[test]
fn password_modify() {
    let s = Server::with_sample();
    let mut c = connect(&s);
    c.simple_bind(ALICE, ALICE_PW)
        .expect("bind")
        .success()
        .expect("alice");
    let r = c
        .extended(PasswordModify {
            user_id: None,
            old_pass: Some(ALICE_PW),
            new_pass: Some("alice-two"),
        })
        .expect("passmod");
    assert_eq!(r.1.rc, 0, "{:?}", r.1);
    assert_eq!(bind_code(&s.url(), ALICE, "alice-two"), 0);
    // Generated password comes back in the response.
    let (exop, res) = c
        .extended(PasswordModify {
            user_id: Some(ALICE),
            old_pass: Some("alice-two"),
            new_pass: None,
        })
        .expect("passmod")
        .success()
        .expect("generated");
    assert_eq!(res.rc, 0);
    let gen: PasswordModifyResp = exop.parse();
    assert!(gen.gen_pass.len() >= 8, "generated {:?}", gen.gen_pass);
    assert_eq!(bind_code(&s.url(), ALICE, &gen.gen_pass), 0);
    // Someone else's password.
    let r = c
        .extended(PasswordModify {
            user_id: Some(BOB),
            old_pass: None,
            new_pass: Some("x"),
        })
        .expect("passmod");
    assert_eq!(r.1.rc, 50, "{:?}", r.1);
    // Anonymous with no user.
    let mut a = connect(&s);
    let r = a
        .extended(PasswordModify {
            user_id: None,
            old_pass: None,
            new_pass: Some("x"),
        })
        .expect("passmod");
    assert!([50, 53].contains(&r.1.rc), "anonymous: {:?}", r.1);
    // Root resets bob.
    let mut rt = root(&s);
    let r = rt
        .extended(PasswordModify {
            user_id: Some(BOB),
            old_pass: None,
            new_pass: Some("bob-2"),
        })
        .expect("passmod");
    assert_eq!(r.1.rc, 0, "{:?}", r.1);
    assert_eq!(bind_code(&s.url(), BOB, "bob-2"), 0);
}

/// Many operations in flight on one connection through ldap3's async API.
#[test]
fn pipelining_async() {
    let s = Server::with_sample();
    add_people(&s, 30);
    let url = s.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (conn, mut ldap) = LdapConnAsync::new(&url).await.expect("connect");
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, &root_password())
            .await
            .expect("bind")
            .success()
            .expect("root");
        let mut tasks = Vec::new();
        for i in 0..30 {
            let mut l = ldap.clone();
            tasks.push(tokio::spawn(async move {
                let filter = format!("(employeeNumber={i})");
                let (es, res) = l
                    .search(
                        PEOPLE,
                        Scope::OneLevel,
                        &filter,
                        vec!["uid", "employeeNumber"],
                    )
                    .await
                    .expect("search")
                    .success()
                    .expect("ok");
                assert_eq!(res.rc, 0);
                assert_eq!(es.len(), 1, "{filter}");
                let e = SearchEntry::construct(es.into_iter().next().unwrap());
                (i, e.attrs.get("uid").cloned().unwrap_or_default())
            }));
        }
        // Interleave writes and compares with the searches.
        let mut writes = Vec::new();
        for i in 0..10 {
            let mut l = ldap.clone();
            writes.push(tokio::spawn(async move {
                let dn = format!("uid=p{i:03},ou=people,dc=example,dc=com");
                let r = l
                    .modify(
                        &dn,
                        vec![Mod::Replace(st("description"), set(&[&format!("d{i}")]))],
                    )
                    .await
                    .expect("modify");
                assert_eq!(r.rc, 0);
                l.compare(&dn, "description", format!("d{i}"))
                    .await
                    .expect("compare")
                    .equal()
                    .expect("cmp")
            }));
        }
        for t in tasks {
            let (i, uid) = t.await.expect("task");
            assert_eq!(
                uid,
                vec![format!("p{i:03}")],
                "response for search {i} carries another search's entry"
            );
        }
        for w in writes {
            assert!(
                w.await.expect("task"),
                "compare after modify on the same connection"
            );
        }
        ldap.unbind().await.expect("unbind");
    });
}

/// 20 searches written in one burst before any reply is read; each reply
/// must carry its own message ID and only its own entry.
#[test]
fn pipelining_raw() {
    let s = Server::with_sample();
    add_people(&s, 20);
    let mut c = RawConn::connect(s.port);
    // employeeNumber is not among the anonymously readable attributes: bind as root first.
    c.send(LdapMsg::new(
        1,
        LdapOp::BindRequest(ldap3_proto::proto::LdapBindRequest {
            version: 3,
            dn: ROOT_DN.to_string(),
            cred: ldap3_proto::proto::LdapBindCred::Simple(root_password()),
        }),
    ));
    let bound = c.recv(Duration::from_secs(10)).expect("bind response");
    assert!(
        matches!(&bound.op, LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success),
        "{bound:?}"
    );
    let mut msgs = Vec::new();
    for i in 0..20 {
        msgs.push(search(
            100 + i,
            PEOPLE,
            LdapSearchScope::OneLevel,
            &format!("(employeeNumber={i})"),
            &["employeeNumber"],
        ));
    }
    // Plus a base search and an abandon of an unknown ID (no response allowed).
    msgs.push(LdapMsg::new(200, LdapOp::AbandonRequest(9999)));
    msgs.push(search(
        201,
        SUFFIX,
        LdapSearchScope::Base,
        "(objectClass=*)",
        &["1.1"],
    ));
    c.send_all(msgs);
    let mut entries: HashMap<i32, Vec<String>> = HashMap::new();
    let mut done: HashMap<i32, LdapResultCode> = HashMap::new();
    while done.len() < 21 {
        let m = c
            .recv(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("missing responses; done so far: {done:?}"));
        match m.op {
            LdapOp::SearchResultEntry(e) => {
                let v = e
                    .attributes
                    .iter()
                    .find(|a| a.atype.eq_ignore_ascii_case("employeeNumber"))
                    .map(|a| String::from_utf8_lossy(&a.vals[0]).to_string());
                entries
                    .entry(m.msgid)
                    .or_default()
                    .push(v.unwrap_or_else(|| e.dn.clone()));
            }
            LdapOp::SearchResultDone(r) => {
                assert!(
                    done.insert(m.msgid, r.code).is_none(),
                    "two results for id {}",
                    m.msgid
                );
            }
            other => panic!("unexpected response id {}: {other:?}", m.msgid),
        }
    }
    for i in 0..20 {
        assert_eq!(
            done.get(&(100 + i)),
            Some(&LdapResultCode::Success),
            "result of search {}",
            100 + i
        );
        assert_eq!(
            entries.get(&(100 + i)),
            Some(&vec![i.to_string()]),
            "entries of search {}",
            100 + i
        );
    }
    assert_eq!(done.get(&201), Some(&LdapResultCode::Success));
    assert!(!done.contains_key(&200), "abandon must not be answered");
    // Nothing else arrives.
    assert!(
        c.recv(Duration::from_millis(300)).is_none(),
        "extra response"
    );
}

/// Abandon a search whose results the client is not reading: the server
/// must stop sending that search's entries and send no SearchResultDone for
/// it (RFC 4511 4.11), and keep serving the connection.
#[test]
fn abandon_running_search() {
    let s = Server::with_sample();
    // 1000 entries of 16 KiB: 16 MiB of results, more than the socket
    // buffers and any reasonable per-connection output queue hold.
    const N: usize = 1000;
    let big = vec![b'x'; 16 * 1024];
    let adds = (0..N)
        .map(|i| {
            let uid = format!("big{i:04}");
            (
                format!("uid={uid},ou=people,dc=example,dc=com"),
                vec![
                    ("objectClass", vec![b"inetOrgPerson".to_vec()]),
                    ("uid", vec![uid.into_bytes()]),
                    ("cn", vec![b"big".to_vec()]),
                    ("sn", vec![b"big".to_vec()]),
                    ("description", vec![big.clone()]),
                ],
            )
        })
        .collect();
    common::raw::bulk_add(s.port, adds);
    let mut raw = RawConn::connect(s.port);
    assert_eq!(
        raw.bind(1, ROOT_DN, &root_password()),
        LdapResultCode::Success
    );
    raw.send(search(
        2,
        PEOPLE,
        LdapSearchScope::OneLevel,
        "(cn=big)",
        &["description"],
    ));
    // The first entry proves the search is under way; then abandon it and
    // ask something else.
    let first = raw
        .recv(Duration::from_secs(60))
        .expect("the search starts answering");
    assert!(
        matches!((first.msgid, &first.op), (2, LdapOp::SearchResultEntry(_))),
        "{first:?}"
    );
    raw.send_all(vec![
        LdapMsg::new(3, LdapOp::AbandonRequest(2)),
        search(
            4,
            SUFFIX,
            LdapSearchScope::Base,
            "(objectClass=*)",
            &["1.1"],
        ),
    ]);
    let mut got_entries = 1;
    let mut done2 = false;
    let mut done4 = false;
    while !done4 {
        let m = raw
            .recv(Duration::from_secs(60))
            .expect("the search after the abandon must be answered");
        match (m.msgid, m.op) {
            (2, LdapOp::SearchResultEntry(_)) => got_entries += 1,
            (2, LdapOp::SearchResultDone(_)) => done2 = true,
            (4, LdapOp::SearchResultEntry(_)) => {}
            (4, LdapOp::SearchResultDone(r)) => {
                assert_eq!(r.code, LdapResultCode::Success);
                done4 = true;
            }
            (id, op) => panic!("unexpected message {id}: {op:?}"),
        }
    }
    // Drain what was already in flight, up to the answer to a later
    // request (an event, not a guess at how long the server needs).
    raw.send(search(
        5,
        SUFFIX,
        LdapSearchScope::Base,
        "(objectClass=*)",
        &["1.1"],
    ));
    loop {
        let m = raw
            .recv(Duration::from_secs(60))
            .expect("the marker search must be answered");
        match (m.msgid, m.op) {
            (2, LdapOp::SearchResultEntry(_)) => got_entries += 1,
            (2, LdapOp::SearchResultDone(_)) => done2 = true,
            (5, LdapOp::SearchResultEntry(_)) => {}
            (5, LdapOp::SearchResultDone(_)) => break,
            (id, op) => panic!("unexpected message {id}: {op:?}"),
        }
    }
    assert!(
        got_entries < N,
        "all {N} entries were sent after the abandon"
    );
    assert!(
        !done2,
        "an abandoned search must not get a SearchResultDone (got {got_entries} entries)"
    );
}

/// Binary values round-trip byte-exact (ldap3 bin_attrs).
#[test]
fn binary_values() {
    let s = Server::with_sample();
    let mut c = root(&s);
    let blob: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = c
        .modify(
            ALICE,
            vec![Mod::Add(
                b"jpegPhoto".to_vec(),
                HashSet::from([blob.clone()]),
            )],
        )
        .expect("modify");
    assert_eq!(r.rc, 0, "{r:?}");
    let e = entry(&mut c, ALICE, &["jpegPhoto"]).expect("alice");
    let got = e.bin_attrs.get("jpegPhoto").cloned().or_else(|| {
        e.attrs
            .get("jpegPhoto")
            .map(|v| v.iter().map(|s| s.as_bytes().to_vec()).collect())
    });
    assert_eq!(
        got,
        Some(vec![blob]),
        "jpegPhoto differs after the round trip"
    );
}
