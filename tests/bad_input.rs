//! Hostile and broken clients over raw TCP: the server drops the offending
//! connection, keeps serving everyone else, and does not crash or balloon.
//! Also multi-MiB values round-trip byte-exact.

mod common;

use common::raw::{search, RawConn};
use common::*;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode, LdapSearchScope};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The server still answers a fresh client, its process is alive, and it
/// has not logged a panic.
fn assert_healthy(s: &mut Server) {
    assert!(s.alive(), "server process died:\n{}", s.log_text());
    let o = client("ldapwhoami", &s.url(), Who::Anon, &[], None);
    assert_code(&o, 0, "whoami after abuse");
    let o = search_as(&s.url(), Who::Anon, SUFFIX, &["-s", "base", "1.1"]);
    assert_code(&o, 0, "search after abuse");
    assert!(
        !s.log_text().contains("panicked"),
        "the server logged a panic:\n{}",
        s.log_text()
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn raw_bytes_then_closed(s: &Server, bytes: &[u8], within: Duration) -> (bool, Vec<LdapMsg>) {
    let mut c = RawConn::connect(s.port);
    let _ = c.stream.write_all(bytes);
    c.closed_within(within)
}

/// A notice of disconnection (RFC 4511 4.4.1), if the server sent one, must be well formed.
fn check_notices(msgs: &[LdapMsg]) {
    for m in msgs {
        match &m.op {
            LdapOp::ExtendedResponse(r) => {
                assert_eq!(m.msgid, 0, "unsolicited notification must use message ID 0");
                assert_eq!(
                    r.name.as_deref(),
                    Some("1.3.6.1.4.1.1466.20036"),
                    "notice of disconnection OID: {r:?}"
                );
                assert_ne!(r.res.code, LdapResultCode::Success);
            }
            other => panic!("unexpected response to garbage: {other:?}"),
        }
    }
}

#[test]
fn garbage_closes_the_connection() {
    let mut s = Server::with_sample();
    let mut junk = vec![0u8; 4096];
    let mut x: u32 = 0x1234_5678;
    for b in junk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    junk[..4].copy_from_slice(&[0x30, 0x82, 0x0f, 0xf0]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Non-BER text: an HTTP request sent to the LDAP port. The first byte
        // is not a SEQUENCE tag, so nothing can make this valid LDAP.
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "TLS ClientHello on the plain port",
            vec![
                0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
            ],
        ),
        (
            "a SEQUENCE with a bogus protocolOp",
            vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x7f, 0x01, 0x00],
        ),
        ("random bytes after a SEQUENCE header", junk),
    ];
    let mut failures = Vec::new();
    for (what, bytes) in &cases {
        let (closed, msgs) = raw_bytes_then_closed(&s, bytes, Duration::from_secs(5));
        if !closed {
            failures.push(format!("{what}: connection still open after 5 s"));
        }
        check_notices(&msgs);
    }
    assert!(
        failures.is_empty(),
        "garbage not rejected:\n{}",
        failures.join("\n")
    );
    // Garbage after a valid request on the same connection: the valid one is answered.
    let mut c = RawConn::connect(s.port);
    let mut bytes = c.encode(vec![search(
        1,
        SUFFIX,
        LdapSearchScope::Base,
        "(objectClass=*)",
        &["1.1"],
    )]);
    bytes.extend_from_slice(b"\xff\xff\xff\xff garbage");
    c.stream.write_all(&bytes).unwrap();
    let (closed, msgs) = c.closed_within(Duration::from_secs(10));
    assert!(
        closed,
        "garbage after a valid request: connection left open"
    );
    assert!(
        msgs.iter()
            .any(|m| m.msgid == 1 && matches!(m.op, LdapOp::SearchResultDone(_))),
        "the valid request before the garbage was not answered: {msgs:?}"
    );
    // LDAP version 2 bind: protocolError (RFC 4511 4.2.2), connection usable or closed, no crash.
    let mut c = RawConn::connect(s.port);
    c.send(LdapMsg::new(
        1,
        LdapOp::BindRequest(ldap3_proto::proto::LdapBindRequest {
            version: 2,
            dn: String::new(),
            cred: ldap3_proto::proto::LdapBindCred::Simple(String::new()),
        }),
    ));
    match c.recv(Duration::from_secs(10)) {
        Some(LdapMsg {
            op: LdapOp::BindResponse(r),
            ..
        }) => assert_eq!(r.res.code, LdapResultCode::ProtocolError, "LDAPv2 bind"),
        other => panic!("LDAPv2 bind: expected a protocolError bind response, got {other:?}"),
    }
    assert_healthy(&mut s);
}

#[test]
fn huge_ber_length_is_refused() {
    let mut s = Server::with_sample();
    let pid = s.pid();
    let before = rss_kib(pid);
    let mut failures = Vec::new();
    for header in [
        vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01],
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01],
        vec![0x30, 0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        // Length inside a valid-looking search request.
        vec![
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x63, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x04, 0x00, 0x0a,
        ],
    ] {
        let start = Instant::now();
        let mut c = RawConn::connect(s.port);
        c.stream.write_all(&header).unwrap();
        // Trickle a little more data; a server that waits for 2 GiB keeps the socket open.
        let _ = c.stream.write_all(&[0u8; 1024]);
        let (closed, msgs) = c.closed_within(Duration::from_secs(5));
        if !closed || start.elapsed() >= Duration::from_secs(5) {
            failures.push(format!(
                "BER header {header:02x?}: connection not closed after 5 s"
            ));
        }
        check_notices(&msgs);
    }
    // Guards a promised limit, not a speed: a length field never reserves
    // memory (docs/limits.md, "Messages").
    let after = rss_kib(pid);
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB on a bogus length"
    );
    assert!(
        failures.is_empty(),
        "huge BER lengths not refused:\n{}",
        failures.join("\n")
    );
    assert_healthy(&mut s);
}

#[test]
fn message_over_the_limit_is_refused() {
    let mut s = Server::with_sample();
    let pid = s.pid();
    let mut c = RawConn::connect(s.port);
    assert_eq!(
        c.bind(1, ROOT_DN, &root_password()),
        LdapResultCode::Success
    );
    let big = vec![b'a'; 20 << 20];
    let msg = common::raw::add_request(
        2,
        "uid=huge,ou=people,dc=example,dc=com",
        &[
            ("objectClass", vec![b"inetOrgPerson".to_vec()]),
            ("uid", vec![b"huge".to_vec()]),
            ("cn", vec![b"h".to_vec()]),
            ("sn", vec![b"h".to_vec()]),
            ("description", vec![big]),
        ],
    );
    let bytes = c.encode(vec![msg]);
    assert!(bytes.len() > 20 << 20);
    let start = Instant::now();
    let _ = c.stream.write_all(&bytes); // may fail once the server hangs up
    let (closed, msgs) = c.closed_within(Duration::from_secs(20));
    let refused = closed
        || msgs
            .iter()
            .any(|m| matches!(&m.op, LdapOp::AddResponse(r) if r.code != LdapResultCode::Success));
    assert!(refused, "a 20 MiB message was not refused: {msgs:?}");
    assert!(
        !msgs
            .iter()
            .any(|m| matches!(&m.op, LdapOp::AddResponse(r) if r.code == LdapResultCode::Success)),
        "a 20 MiB message was accepted"
    );
    // The limits this guards: max_message_size and partial-message memory
    // (docs/limits.md, "Messages"); 20 s only separates refusing from
    // reading the whole message.
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(read_entry(&s.url(), "uid=huge,ou=people,dc=example,dc=com", &["1.1"]).is_none());
    assert!(
        rss_kib(pid) < 512 * 1024,
        "RSS {} KiB after a refused 20 MiB message",
        rss_kib(pid)
    );
    // A message well under the limit (2 MiB) is fine.
    let mut c = RawConn::connect(s.port);
    assert_eq!(
        c.bind(1, ROOT_DN, &root_password()),
        LdapResultCode::Success
    );
    c.send(common::raw::add_request(
        2,
        "uid=big,ou=people,dc=example,dc=com",
        &[
            ("objectClass", vec![b"inetOrgPerson".to_vec()]),
            ("uid", vec![b"big".to_vec()]),
            ("cn", vec![b"b".to_vec()]),
            ("sn", vec![b"b".to_vec()]),
            ("description", vec![vec![b'b'; 2 << 20]]),
        ],
    ));
    match c.recv(Duration::from_secs(30)) {
        Some(LdapMsg {
            op: LdapOp::AddResponse(r),
            ..
        }) => assert_eq!(r.code, LdapResultCode::Success, "2 MiB add: {}", r.message),
        other => panic!("2 MiB add: {other:?}"),
    }
    assert_healthy(&mut s);
}

#[test]
fn silent_and_slow_clients_do_not_block_others() {
    let mut s = Server::with_sample();
    // Connections that say nothing, one that sends half a message, one that
    // sends a byte at a time.
    let mut idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).unwrap())
        .collect();
    let mut half = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    half.write_all(&[0x30, 0x84, 0x00, 0x00, 0x10, 0x00, 0x02, 0x01])
        .unwrap();
    idle.push(half);
    let mut slow = RawConn::connect(s.port);
    let req = slow.encode(vec![search(
        7,
        SUFFIX,
        LdapSearchScope::Base,
        "(objectClass=*)",
        &["1.1"],
    )]);
    slow.stream.write_all(&req[..3]).unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        let o = search_as(&s.url(), Who::Anon, SUFFIX, &["(uid=alice)", "cn"]);
        assert_code(&o, 0, "search while silent clients are connected");
        assert_eq!(dn_set(&o), vec![ALICE.to_string()]);
    }
    // Liveness, not speed: a silent client must not hold a worker the
    // searches need (no request holds a thread for long).
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "searches took {:?}",
        start.elapsed()
    );
    // The slow client finishes its request byte by byte and gets its answer.
    for b in &req[3..] {
        slow.stream.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let m = slow
        .recv(Duration::from_secs(10))
        .expect("slow client answer");
    assert_eq!(m.msgid, 7);
    drop(idle);
    assert_healthy(&mut s);
}

#[test]
fn client_disconnecting_mid_search() {
    let mut s = Server::with_sample();
    let big = vec![b'z'; 16 * 1024];
    let adds = (0..300)
        .map(|i| {
            let uid = format!("m{i:03}");
            (
                format!("uid={uid},ou=people,dc=example,dc=com"),
                vec![
                    ("objectClass", vec![b"inetOrgPerson".to_vec()]),
                    ("uid", vec![uid.into_bytes()]),
                    ("cn", vec![b"m".to_vec()]),
                    ("sn", vec![b"m".to_vec()]),
                    ("description", vec![big.clone()]),
                ],
            )
        })
        .collect();
    common::raw::bulk_add(s.port, adds);
    for round in 0..10 {
        let mut c = RawConn::connect(s.port);
        c.send(search(
            1,
            SUFFIX,
            LdapSearchScope::Subtree,
            "(cn=m)",
            &["*"],
        ));
        if round % 2 == 0 {
            let _ = c.recv(Duration::from_secs(10)); // read one entry, then vanish
        }
        // Odd rounds: shut the socket down in both directions first.
        if round % 2 == 1 {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        drop(c);
    }
    // Several pipelined searches and an immediate close.
    let closed_before = s.log_text().matches("connection closed").count();
    let mut c = RawConn::connect(s.port);
    c.send_all(
        (1..=20)
            .map(|i| search(i, SUFFIX, LdapSearchScope::Subtree, "(cn=m)", &["*"]))
            .collect(),
    );
    drop(c);
    // The server has seen the close (and cleaned up after the searches).
    s.wait_log(
        "the pipelined connection closed",
        Duration::from_secs(30),
        |t| t.matches("connection closed").count() > closed_before,
    );
    assert_healthy(&mut s);
    let o = search_root(&s.url(), PEOPLE, &["(cn=m)", "1.1"]);
    assert_eq!(entries(&o).len(), 300);
}

#[test]
fn deep_filter_does_not_crash() {
    let mut s = Server::with_sample();
    let nested =
        |op: &str, depth: usize| format!("{}(uid=alice){}", op.repeat(depth), ")".repeat(depth));
    // Up to the documented limit (limits.max_filter_depth, 64) a filter is
    // evaluated; one level deeper is unwillingToPerform with a reason.
    let o = search_as(&s.url(), Who::Anon, SUFFIX, &[&nested("(&", 63), "1.1"]);
    assert_code(&o, 0, "a 64-deep AND");
    assert_eq!(dn_set(&o), vec![ALICE.to_string()], "a 64-deep AND");
    for (op, depth) in [("(&", 64), ("(!", 65), ("(&", 100)] {
        let o = search_as(&s.url(), Who::Anon, SUFFIX, &[&nested(op, depth), "1.1"]);
        assert_code(&o, 53, &format!("a {}-deep filter", depth + 1));
        assert!(
            err(&o).contains("filter nesting is deeper than 64"),
            "{}",
            err(&o)
        );
    }
    // Far deeper, the message codec itself refuses to decode the request:
    // the server cannot answer a message it cannot read, so it ends that
    // connection with a protocolError notice (RFC 4511 4.1.1, 4.4.1).
    let o = search_as(&s.url(), Who::Anon, SUFFIX, &[&nested("(!", 2000), "1.1"]);
    assert_code(&o, 2, "a 2000-deep filter");
    assert!(s.log_text().contains("malformed LDAP message"));
    assert_healthy(&mut s);
}

#[test]
fn multi_mib_values_round_trip() {
    let mut s = Server::with_sample();
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.jpg");
    let mut data = Vec::with_capacity(4 << 20);
    data.extend_from_slice(&[0xff, 0xd8, 0xff, 0xe0]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 4 << 20 {
        x ^= x << 7;
        x ^= x >> 9;
        data.push((x >> 24) as u8);
    }
    std::fs::write(&photo, &data).unwrap();
    let o = ldapmodify_root(
        &s.url(),
        &format!(
            "dn: {ALICE}\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:< file://{}\n",
            photo.display()
        ),
    );
    assert_code(&o, 0, "add a 4 MiB jpegPhoto");
    // ldapsearch -t -T dir writes the value to a file.
    let tdir = dir.path().join("out");
    std::fs::create_dir(&tdir).unwrap();
    let o = search_root(
        &s.url(),
        ALICE,
        &[
            "-s",
            "base",
            "-t",
            "-T",
            tdir.to_str().unwrap(),
            "jpegPhoto",
        ],
    );
    assert_code(&o, 0, "ldapsearch -t");
    let files: Vec<_> = std::fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one value file: {}", out(&o));
    let got = std::fs::read(&files[0]).unwrap();
    assert_eq!(got.len(), data.len(), "length after the round trip");
    assert!(got == data, "jpegPhoto bytes differ after the round trip");
    // And through ldap3.
    let mut c = ldap3::LdapConn::new(&s.url()).unwrap();
    c.simple_bind(ROOT_DN, &root_password())
        .unwrap()
        .success()
        .unwrap();
    let (es, _) = c
        .search(
            ALICE,
            ldap3::Scope::Base,
            "(objectClass=*)",
            vec!["jpegPhoto"],
        )
        .unwrap()
        .success()
        .unwrap();
    let e = ldap3::SearchEntry::construct(es.into_iter().next().unwrap());
    assert_eq!(
        e.bin_attrs.get("jpegPhoto").map(|v| v[0] == data),
        Some(true),
        "ldap3 read of jpegPhoto"
    );
    // Replace with a second large value and delete it by value.
    let o = ldapmodify_root(
        &s.url(),
        &format!(
            "dn: {ALICE}\nchangetype: modify\ndelete: jpegPhoto\njpegPhoto:< file://{}\n",
            photo.display()
        ),
    );
    assert_code(&o, 0, "delete the 4 MiB value by value");
    assert!(!read_entry(&s.url(), ALICE, &["jpegPhoto"])
        .unwrap()
        .has("jpegPhoto"));
    assert_healthy(&mut s);
}
