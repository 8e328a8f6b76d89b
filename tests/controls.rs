//! Request controls people send, through the real clients: server-side
//! sort (RFC 2891) and virtual list views (draft-ietf-ldapext-ldapv3-vlv-09)
//! with OpenLDAP's ldapsearch and the ldap3 crate; pre-read and post-read
//! (RFC 4527), assertion (RFC 4528) and Don't Use Copy (RFC 6171) with
//! ldapmodify, ldapsearch, ldapcompare and ldap3; the root DSE's list.

mod common;

use common::*;
use ldap3::controls::{Assertion, PostRead, PostReadResp, PreRead, RawControl};
use ldap3::{LdapConn, Mod, Scope};
use std::collections::HashSet;
use std::time::Duration;

const SORT: &str = "1.2.840.113556.1.4.473";
const SORT_RESP: &str = "1.2.840.113556.1.4.474";
const VLV: &str = "2.16.840.1.113730.3.4.9";
const VLV_RESP: &str = "2.16.840.1.113730.3.4.10";

/// Ten people whose cn, sn and uidNumber sort differently from their DNs
/// and from each other (uidNumber 9 < 10 < 100 numerically, not as text).
fn people_ldif() -> String {
    let rows = [
        ("p0", "Echo", "Zulu", 100),
        ("p1", "alpha", "Yankee", 9),
        ("p2", "Golf", "Xray", 31),
        ("p3", "charlie", "Whiskey", 10),
        ("p4", "India", "Victor", 7),
        ("p5", "bravo", "Uniform", 1000),
        ("p6", "Foxtrot", "Tango", 8),
        ("p7", "delta", "Sierra", 55),
        ("p8", "Juliet", "Romeo", 2),
        ("p9", "hotel", "Quebec", 11),
    ];
    let mut out = String::new();
    for (uid, cn, sn, num) in rows {
        out.push_str(&format!(
            "dn: uid={uid},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n\
             objectClass: posixAccount\nuid: {uid}\ncn: {cn}\nsn: {sn}\n\
             uidNumber: {num}\ngidNumber: 100\nhomeDirectory: /home/{uid}\n\
             telephoneNumber: +1 555 0100\n\n"
        ));
    }
    out
}

/// A server with SAMPLE and the ten people.
fn server() -> Server {
    let s = Server::with_sample();
    assert_code(&ldapadd_root(&s.url(), &people_ldif()), 0, "adding people");
    s
}

/// The uids of ldapsearch output, in order.
fn uids(o: &std::process::Output) -> Vec<String> {
    dns(&out(o))
        .iter()
        .map(|d| {
            d.trim_start_matches("uid=")
                .split(',')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn people_search(s: &Server, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["-s", "one"];
    args.extend_from_slice(extra);
    search_root(&s.url(), PEOPLE, &args)
}

/// ldapsearch with a VLV control asks for the next window on standard
/// input; `windows` are the lines it reads, then a line it cannot parse
/// ends it (with exit code 1).
fn vlv_search(s: &Server, extra: &[&str], windows: &[&str]) -> std::process::Output {
    let mut args = as_root(&s.url());
    for a in ["-LLL", "-o", "ldif-wrap=no", "-b", PEOPLE, "-s", "one"] {
        args.push(a.into());
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut input: String = windows.iter().map(|w| format!("{w}\n")).collect();
    input.push_str("stop\n");
    run_tool("ldapsearch", &refs, Some(&input))
}

#[test]
fn root_dse_lists_exactly_the_supported_controls() {
    let s = Server::fast();
    let o = search_root(&s.url(), "", &["-s", "base", "supportedControl"]);
    assert_code(&o, 0, "root DSE");
    let got: HashSet<String> = entries(&o)
        .first()
        .expect("root DSE")
        .get("supportedControl")
        .into_iter()
        .collect();
    let want: HashSet<String> = [
        "1.2.840.113556.1.4.319",    // paged results
        "2.16.840.1.113730.3.4.2",   // ManageDsaIT
        "1.3.6.1.4.1.42.2.27.8.5.1", // password policy
        SORT,
        VLV,
        "1.3.6.1.1.12",             // assertion
        "1.3.6.1.1.13.1",           // pre-read
        "1.3.6.1.1.13.2",           // post-read
        "1.3.6.1.1.22",             // Don't Use Copy
        "1.3.6.1.4.1.4203.1.9.1.1", // content synchronisation (RFC 4533)
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
}

#[test]
fn ldapsearch_sorts_by_ordering_rules() {
    let s = server();
    let filter = "(uid=p*)";
    let o = people_search(&s, &["-E", "!sss=cn", filter, "1.1"]);
    assert_code(&o, 0, "sort by cn");
    assert_eq!(
        uids(&o),
        ["p1", "p5", "p3", "p7", "p0", "p6", "p2", "p9", "p4", "p8"],
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("sortResult: (0) Success"), "{}", out(&o));
    // Descending by number: integerOrderingMatch, not text order.
    let o = people_search(&s, &["-E", "!sss=-uidNumber", filter, "uidNumber"]);
    assert_code(&o, 0, "sort by uidNumber descending");
    let numbers: Vec<String> = entries(&o)
        .iter()
        .flat_map(|e| e.get("uidNumber"))
        .collect();
    assert_eq!(
        numbers,
        ["1000", "100", "55", "31", "11", "10", "9", "8", "7", "2"]
    );
    // Two keys: objectClass ties, then sn.
    let o = people_search(&s, &["-E", "!sss=gidNumber/sn", filter, "sn"]);
    assert_code(&o, 0, "two keys");
    assert_eq!(
        uids(&o),
        ["p9", "p8", "p7", "p6", "p5", "p4", "p3", "p2", "p1", "p0"]
    );
    // The sort attribute is not returned when not asked for.
    let e = entries(&o);
    assert!(e.iter().all(|e| !e.has("gidNumber")), "{}", out(&o));
    // A rule named in the key is used: caseExactOrderingMatch puts capitals first.
    let o = people_search(
        &s,
        &[
            "-E",
            "!sss=cn:2.5.13.6",
            "(|(uid=p0)(uid=p1)(uid=p2))",
            "1.1",
        ],
    );
    assert_code(&o, 0, "caseExactOrderingMatch");
    assert_eq!(uids(&o), ["p0", "p2", "p1"]);
}

#[test]
fn a_critical_sort_that_cannot_be_done_fails_and_a_non_critical_one_says_why() {
    let s = server();
    // telephoneNumber has no ordering rule: RFC 2891's inappropriateMatching.
    let o = people_search(&s, &["-E", "!sss=telephoneNumber", "(uid=p*)", "1.1"]);
    assert_code(&o, 18, "critical sort on telephoneNumber");
    assert!(uids(&o).is_empty(), "no unsorted entries: {}", out(&o));
    assert!(
        out(&o).contains("sortResult: (18)"),
        "sort response control: {}",
        out(&o)
    );
    let o = people_search(&s, &["-E", "sss=telephoneNumber", "(uid=p*)", "1.1"]);
    assert_code(&o, 0, "non-critical sort on telephoneNumber");
    assert_eq!(uids(&o).len(), 10, "unsorted results: {}", out(&o));
    assert!(out(&o).contains("sortResult: (18)"), "{}", out(&o));
    // An unknown attribute type.
    let o = people_search(&s, &["-E", "!sss=noSuchType", "(uid=p*)", "1.1"]);
    assert_code(&o, 16, "critical sort on an unknown type");
    // A named rule that does not apply.
    let o = people_search(&s, &["-E", "!sss=cn:2.5.13.15", "(uid=p*)", "1.1"]);
    assert_code(&o, 18, "integerOrderingMatch on cn");
}

#[test]
fn sorted_results_page_in_order() {
    let s = server();
    let all = people_search(&s, &["-E", "!sss=sn", "(uid=p*)", "1.1"]);
    assert_code(&all, 0, "sorted");
    let paged = people_search(
        &s,
        &["-E", "!sss=sn", "-E", "!pr=3/noprompt", "(uid=p*)", "1.1"],
    );
    assert_code(&paged, 0, "sorted pages");
    assert_eq!(uids(&paged), uids(&all));
    assert_eq!(
        uids(&all),
        ["p9", "p8", "p7", "p6", "p5", "p4", "p3", "p2", "p1", "p0"]
    );
}

#[test]
fn sorting_is_bounded_for_users() {
    let s = Server::start_with_config(
        "password_scheme = \"SSHA512\"\n[limits]\nlookthrough_limit = 5\n",
        &[],
    );
    assert_code(&ldapadd_root(&s.url(), SAMPLE), 0, "sample");
    assert_code(&ldapadd_root(&s.url(), &people_ldif()), 0, "people");
    let o = search_as(
        &s.url(),
        Who::User(ALICE, ALICE_PW),
        PEOPLE,
        &["-E", "!sss=cn", "(uid=p*)", "1.1"],
    );
    assert_code(&o, 11, "sorted search past the look-through limit");
    assert!(uids(&o).is_empty(), "{}", out(&o));
    assert!(err(&o).contains("lookthrough_limit"), "{}", err(&o));
    // The root DN is not limited.
    let o = people_search(&s, &["-E", "!sss=cn", "(uid=p*)", "1.1"]);
    assert_code(&o, 0, "root");
    assert_eq!(uids(&o).len(), 10);
}

#[test]
fn ldapsearch_virtual_list_views() {
    let s = server();
    let sorted = ["p1", "p5", "p3", "p7", "p0", "p6", "p2", "p9", "p4", "p8"];
    // By offset: one before and one after the third entry.
    let o = vlv_search(
        &s,
        &["-E", "!sss=cn", "-E", "!vlv=1/1/3/0", "(uid=p*)", "1.1"],
        &[],
    );
    assert_eq!(uids(&o), ["p5", "p3", "p7"], "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("pos=3 count=10") && out(&o).contains("(0) Success"),
        "{}",
        out(&o)
    );
    // By value: the first entry at or after "f" and the two after it.
    let o = vlv_search(
        &s,
        &["-E", "!sss=cn", "-E", "!vlv=0/2:f", "(uid=p*)", "1.1"],
        &[],
    );
    assert_eq!(uids(&o), ["p6", "p2", "p9"], "{}", out(&o));
    assert!(out(&o).contains("pos=6 count=10"), "{}", out(&o));
    // Moving the window page by page covers the list once, in order.
    let o = vlv_search(
        &s,
        &["-E", "!sss=cn", "-E", "!vlv=0/2/1/0", "(uid=p*)", "1.1"],
        &["0/2/4/0", "0/2/7/0", "0/2/10/0"],
    );
    assert_eq!(uids(&o), sorted, "{}", out(&o));
    // The client's idea of the list size scales the offset (half-way).
    let o = vlv_search(
        &s,
        &["-E", "!sss=cn", "-E", "!vlv=0/0/50/100", "(uid=p*)", "1.1"],
        &[],
    );
    assert_eq!(uids(&o), ["p0"], "{}", out(&o));
    // Descending sort, window at the end.
    let o = vlv_search(
        &s,
        &["-E", "!sss=-cn", "-E", "!vlv=2/0/10/0", "(uid=p*)", "1.1"],
        &[],
    );
    assert_eq!(uids(&o), ["p3", "p5", "p1"], "{}", out(&o));
}

// ------------------------------------------------------------------ ldap3

fn root(s: &Server) -> LdapConn {
    let mut c = LdapConn::new(&s.url()).expect("ldap3 connect");
    c.with_timeout(Duration::from_secs(30));
    c.simple_bind(ROOT_DN, &root_password())
        .expect("bind")
        .success()
        .expect("root bind");
    c
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() < 128);
    let mut v = vec![tag, content.len() as u8];
    v.extend_from_slice(content);
    v
}

fn int(tag: u8, n: u8) -> Vec<u8> {
    tlv(tag, &[n])
}

fn sort_control(attr: &str, critical: bool) -> RawControl {
    RawControl {
        ctype: SORT.into(),
        crit: critical,
        val: Some(tlv(0x30, &tlv(0x30, &tlv(0x04, attr.as_bytes())))),
    }
}

fn vlv_by_offset(before: u8, after: u8, offset: u8, count: u8) -> RawControl {
    let mut v = int(0x02, before);
    v.extend(int(0x02, after));
    let mut target = int(0x02, offset);
    target.extend(int(0x02, count));
    v.extend(tlv(0xa0, &target));
    RawControl {
        ctype: VLV.into(),
        crit: true,
        val: Some(tlv(0x30, &v)),
    }
}

/// The INTEGER/ENUMERATED values of a response control's SEQUENCE.
fn numbers(value: &[u8]) -> Vec<i64> {
    assert_eq!(value.first(), Some(&0x30), "{value:?}");
    let mut rest = value.get(2..).expect("content");
    let mut out = Vec::new();
    while let [tag, len, tail @ ..] = rest {
        let (content, next) = tail.split_at(*len as usize);
        if *tag == 0x02 || *tag == 0x0a {
            out.push(content.iter().fold(0i64, |a, b| (a << 8) | i64::from(*b)));
        }
        rest = next;
    }
    out
}

fn response_value(res: &ldap3::LdapResult, oid: &str) -> Vec<u8> {
    res.ctrls
        .iter()
        .find(|c| c.1.ctype == oid)
        .and_then(|c| c.1.val.clone())
        .unwrap_or_else(|| panic!("no {oid} response control: {res:?}"))
}

#[test]
fn ldap3_sort_and_vlv_with_raw_controls() {
    let s = server();
    let mut c = root(&s);
    let run = |c: &mut LdapConn, ctrls: Vec<RawControl>| {
        c.with_controls(ctrls);
        let r = c
            .search(PEOPLE, Scope::OneLevel, "(uid=p*)", vec!["uid"])
            .expect("search");
        let uids: Vec<String> =
            r.0.iter()
                .map(|e| {
                    ldap3::SearchEntry::construct(e.clone())
                        .attrs
                        .get("uid")
                        .and_then(|v| v.first().cloned())
                        .unwrap_or_default()
                })
                .collect();
        (uids, r.1)
    };
    let (got, res) = run(&mut c, vec![sort_control("sn", true)]);
    assert_eq!(res.rc, 0);
    assert_eq!(
        got,
        ["p9", "p8", "p7", "p6", "p5", "p4", "p3", "p2", "p1", "p0"]
    );
    assert_eq!(numbers(&response_value(&res, SORT_RESP)), [0]);

    let (got, res) = run(
        &mut c,
        vec![sort_control("sn", true), vlv_by_offset(0, 1, 5, 0)],
    );
    assert_eq!(res.rc, 0, "{res:?}");
    assert_eq!(got, ["p5", "p4"]);
    assert_eq!(numbers(&response_value(&res, VLV_RESP)), [5, 10, 0]);

    // VLV needs a sort control: virtualListViewError, sortControlMissing.
    let (got, res) = run(&mut c, vec![vlv_by_offset(0, 1, 5, 0)]);
    assert_eq!(res.rc, 76, "{res:?}");
    assert!(got.is_empty());
    assert_eq!(numbers(&response_value(&res, VLV_RESP)), [0, 0, 60]);

    // Offset 0 is out of range (offsetRangeError).
    let (got, res) = run(
        &mut c,
        vec![sort_control("sn", true), vlv_by_offset(0, 1, 0, 0)],
    );
    assert_eq!(res.rc, 76, "{res:?}");
    assert!(got.is_empty());
    assert_eq!(numbers(&response_value(&res, VLV_RESP)), [0, 10, 61]);

    // A critical sort on an attribute without ordering: no entries at all.
    let (got, res) = run(&mut c, vec![sort_control("member", true)]);
    assert_eq!(res.rc, 18, "{res:?}");
    assert!(got.is_empty());
    assert_eq!(numbers(&response_value(&res, SORT_RESP)), [18]);
    // Not critical: the entries, unsorted, and the reason.
    let (got, res) = run(&mut c, vec![sort_control("member", false)]);
    assert_eq!(res.rc, 0, "{res:?}");
    assert_eq!(got.len(), 10);
    assert_eq!(numbers(&response_value(&res, SORT_RESP)), [18]);

    // VLV together with paged results is refused.
    let (_, res) = run(
        &mut c,
        vec![
            sort_control("sn", true),
            vlv_by_offset(0, 1, 1, 0),
            ldap3::controls::PagedResults {
                size: 2,
                cookie: Vec::new(),
            }
            .into(),
        ],
    );
    assert_eq!(res.rc, 53, "{res:?}");
    // A critical sort control on a modify means nothing there.
    c.with_controls(sort_control("sn", true));
    let r = c
        .modify(
            ALICE,
            vec![Mod::Replace("description", HashSet::from(["x"]))],
        )
        .expect("modify");
    assert_eq!(r.rc, 12, "{r:?}");
}

// ---------------------------------------------------- pre-read, post-read, assertion

fn modify_with(url: &str, who: Who, controls: &[&str], ldif: &str) -> std::process::Output {
    let mut extra = Vec::new();
    for c in controls {
        extra.push("-e");
        extra.push(c);
    }
    client("ldapmodify", url, who, &extra, Some(ldif))
}

/// The LDIF ldapmodify prints between `# ==> name` and `# <== name`.
fn read_section(o: &std::process::Output, name: &str) -> Vec<LdifEntry> {
    let text = out(o);
    let start = format!("# ==> {name}");
    let end = format!("# <== {name}");
    let Some(from) = text.find(&start) else {
        return Vec::new();
    };
    let body = &text[from + start.len()..];
    let body = &body[..body.find(&end).unwrap_or(body.len())];
    parse_ldif(body)
}

#[test]
fn ldapmodify_pre_and_post_read() {
    let s = Server::with_sample();
    let url = s.url();
    let o = modify_with(
        &url,
        Who::Root,
        &["preread=sn,description", "postread=sn,description,entryDN"],
        &format!("dn: {ALICE}\nchangetype: modify\nreplace: sn\nsn: Hargreaves\n-\nadd: description\ndescription: married\n"),
    );
    assert_code(&o, 0, "modify with pre/post-read");
    let pre = read_section(&o, "preread");
    let post = read_section(&o, "postread");
    assert_eq!(pre.len(), 1, "{}", out(&o));
    assert_eq!(pre[0].get("sn"), ["Liddell"]);
    assert!(!pre[0].has("description"));
    assert_eq!(post[0].get("sn"), ["Hargreaves"]);
    assert_eq!(post[0].get("description"), ["married"]);
    assert_eq!(post[0].get("entryDN"), [ALICE]);

    // Add: post-read of the new entry; delete: pre-read of the old one.
    let o = modify_with(
        &url,
        Who::Root,
        &["postread=cn,uid"],
        "dn: uid=carol,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\n",
    );
    assert_code(&o, 0, "add with post-read");
    assert_eq!(read_section(&o, "postread")[0].get("cn"), ["Carol"]);
    let o = modify_with(
        &url,
        Who::Root,
        &["postread=uid,cn"],
        "dn: uid=carol,ou=people,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n",
    );
    assert_code(&o, 0, "modrdn with post-read");
    let post = read_section(&o, "postread");
    assert_eq!(post[0].dn, "uid=caroline,ou=people,dc=example,dc=com");
    assert_eq!(post[0].get("uid"), ["caroline"]);
    let o = modify_with(
        &url,
        Who::Root,
        &["preread=cn"],
        "dn: uid=caroline,ou=people,dc=example,dc=com\nchangetype: delete\n",
    );
    assert_code(&o, 0, "delete with pre-read");
    assert_eq!(read_section(&o, "preread")[0].get("cn"), ["Carol"]);
    // A critical pre-read on an add cannot mean anything.
    let o = modify_with(
        &url,
        Who::Root,
        &["!preread=cn"],
        "dn: uid=dan,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: dan\ncn: Dan\nsn: D\n",
    );
    assert_code(&o, 12, "critical pre-read on add");
    assert!(read_entry(&url, "uid=dan,ou=people,dc=example,dc=com", &["cn"]).is_none());
}

#[test]
fn read_controls_leave_out_what_the_requester_may_not_read() {
    let s = Server::with_sample();
    let url = s.url();
    let o = modify_with(
        &url,
        Who::Root,
        &[],
        &format!("dn: {ALICE}\nchangetype: modify\nadd: carLicense\ncarLicense: SECRET-1\n"),
    );
    assert_code(&o, 0, "carLicense");
    // Alice may write her own password (default ACI) but read neither it
    // nor carLicense, which is not among the public attributes.
    let o = modify_with(
        &url,
        Who::User(ALICE, ALICE_PW),
        &[
            "preread=cn,userPassword,carLicense",
            "postread=cn,userPassword,carLicense",
        ],
        &format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: userPassword\nuserPassword: newalicepw\n"
        ),
    );
    assert_code(&o, 0, "alice changes her password");
    for section in ["preread", "postread"] {
        let e = read_section(&o, section);
        assert_eq!(e.len(), 1, "{section}: {}", out(&o));
        assert_eq!(e[0].get("cn"), ["Alice Liddell"], "{section}");
        assert!(!e[0].has("userPassword"), "{section}: {}", out(&o));
        assert!(!e[0].has("carLicense"), "{section}: {}", out(&o));
    }
}

#[test]
fn assertion_control_gates_every_operation() {
    let s = Server::with_sample();
    let url = s.url();
    let modify =
        format!("dn: {ALICE}\nchangetype: modify\nreplace: description\ndescription: checked\n");
    let o = modify_with(&url, Who::Root, &["assert=(sn=Nobody)"], &modify);
    assert_code(&o, 122, "modify with a false assertion");
    let alice = read_entry(&url, ALICE, &["description"]).expect("alice");
    assert!(!alice.has("description"), "nothing changed");
    let o = modify_with(&url, Who::Root, &["!assert=(sn=Liddell)"], &modify);
    assert_code(&o, 0, "modify with a true assertion");
    let alice = read_entry(&url, ALICE, &["description"]).expect("alice");
    assert_eq!(alice.get("description"), ["checked"]);

    // Delete and modrdn: refused and nothing changes.
    let o = modify_with(
        &url,
        Who::Root,
        &["assert=(uid=alice)"],
        &format!("dn: {BOB}\nchangetype: delete\n"),
    );
    assert_code(&o, 122, "delete with a false assertion");
    assert!(read_entry(&url, BOB, &["cn"]).is_some());
    let o = modify_with(
        &url,
        Who::Root,
        &["assert=(mail=nobody@example.com)"],
        &format!("dn: {BOB}\nchangetype: modrdn\nnewrdn: uid=robert\ndeleteoldrdn: 1\n"),
    );
    assert_code(&o, 122, "modrdn with a false assertion");
    assert!(read_entry(&url, BOB, &["cn"]).is_some());
    // Add: the assertion is tested on the entry being added.
    let add = "dn: uid=eve,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: eve\ncn: Eve\nsn: E\n";
    let o = modify_with(&url, Who::Root, &["assert=(sn=F)"], add);
    assert_code(&o, 122, "add with a false assertion");
    assert!(read_entry(&url, "uid=eve,ou=people,dc=example,dc=com", &["cn"]).is_none());
    let o = modify_with(&url, Who::Root, &["assert=(sn=E)"], add);
    assert_code(&o, 0, "add with a true assertion");

    // Search: the base entry must match.
    let o = search_root(
        &url,
        ALICE,
        &["-s", "base", "-e", "!assert=(sn=Nobody)", "cn"],
    );
    assert_code(&o, 122, "search with a false assertion");
    assert!(dns(&out(&o)).is_empty());
    let o = search_root(
        &url,
        PEOPLE,
        &["-s", "one", "-e", "!assert=(ou=people)", "(uid=*)", "1.1"],
    );
    assert_code(&o, 0, "search with a true assertion");
    assert!(dns(&out(&o)).len() >= 2);
    // Compare.
    let mut args = as_root(&url);
    args.extend([
        "-e".into(),
        "!assert=(sn=Nobody)".into(),
        ALICE.into(),
        "cn:Alice Liddell".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_tool("ldapcompare", &refs, None);
    assert_code(&o, 122, "compare with a false assertion");
    let mut args = as_root(&url);
    args.extend([
        "-e".into(),
        "!assert=(sn=Liddell)".into(),
        ALICE.into(),
        "cn:Alice Liddell".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_tool("ldapcompare", &refs, None);
    assert_code(&o, 6, "compare with a true assertion (compareTrue)");
    // A term on an attribute the requester may not search is not true:
    // Bob may not search Alice's userPassword.
    let o = search_as(
        &url,
        Who::User(BOB, BOB_PW),
        ALICE,
        &["-s", "base", "-e", "!assert=(userPassword=*)", "cn"],
    );
    assert_code(&o, 122, "assertion on a hidden attribute");
}

#[test]
fn ldap3_read_entry_and_assertion_controls() {
    let s = Server::with_sample();
    let mut c = root(&s);
    let mut post = PostRead::new(vec!["sn", "mail"]);
    post.crit = true;
    c.with_controls(vec![post, PreRead::new(vec!["sn"])]);
    let r = c
        .modify(BOB, vec![Mod::Replace("sn", HashSet::from(["Mason"]))])
        .expect("modify");
    assert_eq!(r.rc, 0, "{r:?}");
    let post = r
        .ctrls
        .iter()
        .find(|c| c.1.ctype == "1.3.6.1.1.13.2")
        .expect("post-read response");
    let post: PostReadResp = post.1.parse();
    assert_eq!(post.attrs.get("sn"), Some(&vec!["Mason".to_string()]));
    assert_eq!(
        post.attrs.get("mail"),
        Some(&vec!["bob@example.com".to_string()])
    );
    let pre = r
        .ctrls
        .iter()
        .find(|c| c.1.ctype == "1.3.6.1.1.13.1")
        .expect("pre-read response");
    let pre: PostReadResp = pre.1.parse();
    assert_eq!(pre.attrs.get("sn"), Some(&vec!["Builder".to_string()]));

    c.with_controls(Assertion::new("(sn=Builder)"));
    let r = c
        .modify(BOB, vec![Mod::Replace("sn", HashSet::from(["Again"]))])
        .expect("modify");
    assert_eq!(r.rc, 122, "{r:?}");
    c.with_controls(Assertion::new("(sn=Mason)"));
    let r = c.delete(BOB).expect("delete");
    assert_eq!(r.rc, 0, "{r:?}");
}

#[test]
fn dont_use_copy_is_understood_on_reads_only() {
    let s = Server::with_sample();
    let url = s.url();
    let o = search_root(&url, ALICE, &["-s", "base", "-E", "!dontUseCopy", "cn"]);
    assert_code(&o, 0, "search with Don't Use Copy");
    assert_eq!(dns(&out(&o)), [ALICE]);
    // OpenLDAP's ldapcompare and ldapmodify do not send it: ldap3 does.
    let dont_use_copy = || RawControl {
        ctype: "1.3.6.1.1.22".into(),
        crit: true,
        val: None,
    };
    let mut c = root(&s);
    c.with_controls(dont_use_copy());
    let r = c.compare(ALICE, "sn", "Liddell").expect("compare");
    assert_eq!(r.0.rc, 6, "compareTrue: {:?}", r.0);
    c.with_controls(dont_use_copy());
    let r = c
        .modify(
            ALICE,
            vec![Mod::Replace("description", HashSet::from(["x"]))],
        )
        .expect("modify");
    assert_eq!(r.rc, 12, "Don't Use Copy on a modify: {r:?}");
    assert!(!read_entry(&url, ALICE, &["description"])
        .expect("alice")
        .has("description"));
}

#[test]
fn dont_use_copy_refers_reads_on_a_read_only_replica() {
    let s = Server::with_sample();
    let url = s.url();
    let replica = "dn: cn=replica,cn=\"dc=example,dc=com\",cn=mapping tree,cn=config\n\
                   changetype: add\nobjectClass: top\nobjectClass: nsds5replica\n\
                   objectClass: extensibleObject\ncn: replica\nnsds5replicaroot: dc=example,dc=com\n\
                   nsds5replicaid: 65535\nnsds5replicatype: 2\nnsds5flags: 0\n\
                   nsds5ReplicaReferral: ldap://supplier.example.com:389\n";
    assert_code(&ldapmodify_root(&url, replica), 0, "read-only replica");
    // Without the control the copy answers.
    let o = search_root(&url, ALICE, &["-s", "base", "cn"]);
    assert_code(&o, 0, "search of the replica");
    assert_eq!(dns(&out(&o)), [ALICE]);
    // With it the client is referred to the supplier, which holds the original.
    let o = search_root(&url, ALICE, &["-s", "base", "-E", "!dontUseCopy", "cn"]);
    assert_code(&o, 10, "Don't Use Copy on a read-only replica");
    assert!(dns(&out(&o)).is_empty(), "{}", out(&o));
    assert!(
        out(&o).contains("ldap://supplier.example.com:389")
            || err(&o).contains("ldap://supplier.example.com:389"),
        "referral: {}{}",
        out(&o),
        err(&o)
    );
    let mut c = root(&s);
    c.with_controls(RawControl {
        ctype: "1.3.6.1.1.22".into(),
        crit: true,
        val: None,
    });
    let r = c.compare(ALICE, "sn", "Liddell").expect("compare");
    assert_eq!(r.0.rc, 10, "{:?}", r.0);
    assert_eq!(r.0.refs, ["ldap://supplier.example.com:389"]);
}
