//! Limits against abusive requests, on the real binary over loopback: DNs
//! deep or long enough to exhaust the stack or cost quadratic time, large
//! or partial messages from unauthenticated peers, searches that read the
//! whole tree, and PDUs whose integers or tags no client may send.

mod common;

use common::raw::{add_request, bulk_add, search, RawConn};
use common::*;
use ldap3_proto::proto::{
    LdapBindResponse, LdapExtendedRequest, LdapExtendedResponse, LdapIntermediateResponse, LdapMsg,
    LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchResultEntry,
    LdapSearchResultReference, LdapSearchScope,
};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const OID_NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";
const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
/// Generous: a deadline for an answer, not a benchmark.
const ANSWER: Duration = Duration::from_secs(120);

fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// `ou=x<n-1>,...,ou=x0,dc=example,dc=com`: n RDNs below the suffix.
fn deep_dn(n: usize) -> String {
    let mut dn: Vec<String> = (0..n).rev().map(|i| format!("ou=x{i}")).collect();
    dn.push(SUFFIX.to_string());
    dn.join(",")
}

fn ou_attrs() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("objectClass", vec![b"organizationalUnit".to_vec()]),
        ("ou", vec![b"x0".to_vec()]),
    ]
}

fn whoami(msgid: i32) -> LdapMsg {
    LdapMsg::new(
        msgid,
        LdapOp::ExtendedRequest(LdapExtendedRequest {
            name: OID_WHOAMI.into(),
            value: None,
        }),
    )
}

/// The connection still answers: a Who am I? gets success.
fn assert_alive(c: &mut RawConn, msgid: i32) {
    c.send(whoami(msgid));
    match c.recv(ANSWER) {
        Some(LdapMsg {
            msgid: id,
            op: LdapOp::ExtendedResponse(r),
            ..
        }) if id == msgid => assert_eq!(r.res.code, LdapResultCode::Success),
        other => panic!("expected a Who am I? response, got {other:?}"),
    }
}

/// The result of the next response, which must answer `msgid`.
fn result_of(c: &mut RawConn, msgid: i32) -> LdapResult {
    loop {
        let m = c
            .recv(ANSWER)
            .unwrap_or_else(|| panic!("no answer to message {msgid}: connection closed or silent"));
        assert_eq!(m.msgid, msgid, "{m:?}");
        match m.op {
            LdapOp::AddResponse(r)
            | LdapOp::DelResponse(r)
            | LdapOp::ModifyResponse(r)
            | LdapOp::ModifyDNResponse(r)
            | LdapOp::CompareResult(r)
            | LdapOp::SearchResultDone(r) => return r,
            LdapOp::BindResponse(b) => return b.res,
            LdapOp::ExtendedResponse(e) => return e.res,
            LdapOp::SearchResultEntry(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The server closes the connection after a notice of disconnection; its code.
fn notice_then_close(c: &mut RawConn) -> LdapResultCode {
    let (closed, msgs) = c.closed_within(ANSWER);
    assert!(closed, "the connection stayed open; received {msgs:?}");
    let notices: Vec<&LdapExtendedResponse> = msgs
        .iter()
        .filter_map(|m| match &m.op {
            LdapOp::ExtendedResponse(r) if m.msgid == 0 => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "one notice of disconnection: {msgs:?}");
    assert_eq!(
        notices[0].name.as_deref(),
        Some(OID_NOTICE_OF_DISCONNECTION)
    );
    assert_eq!(msgs.len(), 1, "nothing but the notice: {msgs:?}");
    notices[0].res.code.clone()
}

fn root_conn(s: &Server) -> RawConn {
    let mut c = RawConn::connect(s.port);
    assert_eq!(
        c.bind(1, ROOT_DN, &root_password()),
        LdapResultCode::Success
    );
    c
}

// ------------------------------------------------------------------ BER

/// One BER element with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// An LDAPMessage with raw messageID contents and a raw protocolOp.
fn message(id: &[u8], op: &[u8]) -> Vec<u8> {
    let mut inner = tlv(0x02, id);
    inner.extend_from_slice(op);
    tlv(0x30, &inner)
}

/// The raw ExtendedRequest for Who am I?
fn whoami_op() -> Vec<u8> {
    tlv(0x77, &tlv(0x80, OID_WHOAMI.as_bytes()))
}

/// A base search of the root DSE with raw sizeLimit and timeLimit contents.
fn root_dse_search_op(size: &[u8], time: &[u8]) -> Vec<u8> {
    let mut c = tlv(0x04, b"");
    c.extend(tlv(0x0a, &[0]));
    c.extend(tlv(0x0a, &[0]));
    c.extend(tlv(0x02, size));
    c.extend(tlv(0x02, time));
    c.extend(tlv(0x01, &[0])); // typesOnly
    c.extend(tlv(0x87, b"objectClass"));
    c.extend(tlv(0x30, b""));
    tlv(0x63, &c)
}

// ------------------------------------------------------------------ DNs

/// A DN of 6,000 RDNs used to overflow the writer thread's stack in the
/// recursive access check and abort the whole server.
#[test]
fn an_anonymous_add_of_a_6000_rdn_dn_is_refused_and_the_server_lives() {
    let s = Server::fast();
    let mut c = RawConn::connect(s.port);
    c.send(add_request(1, &deep_dn(6000), &ou_attrs()));
    let r = result_of(&mut c, 1);
    assert_eq!(r.code, LdapResultCode::AdminLimitExceeded, "{}", r.message);
    assert!(
        r.message.contains("6002 RDNs") && r.message.contains("max_dn_depth"),
        "{}",
        r.message
    );
    assert_alive(&mut c, 2);
    let mut other = RawConn::connect(s.port);
    assert_alive(&mut other, 1);
}

/// With the DN limits turned off, a 100,000-RDN DN is still answered:
/// the access check walks it without recursion, and matchedDN is found
/// in linear time (it took over ten minutes).
#[test]
fn dns_of_100000_rdns_are_answered_when_the_limits_are_off() {
    let s = Server::start_with_config(
        "password_scheme = \"SSHA512\"\n[limits]\nmax_dn_depth = 0\nmax_dn_length = 0\n\
         anonymous_max_message_size = 16777216\n",
        &[],
    );
    let dn = deep_dn(100_000);
    let mut anon = RawConn::connect(s.port);
    anon.send(add_request(1, &dn, &ou_attrs()));
    let r = result_of(&mut anon, 1);
    assert_eq!(
        r.code,
        LdapResultCode::InsufficentAccessRights,
        "{}",
        r.message
    );

    let mut root = root_conn(&s);
    root.send(search(
        2,
        &dn,
        LdapSearchScope::Base,
        "(objectClass=*)",
        &[],
    ));
    let r = result_of(&mut root, 2);
    assert_eq!(r.code, LdapResultCode::NoSuchObject, "{}", r.message);
    assert_eq!(r.matcheddn, SUFFIX);
    root.send(add_request(3, &dn, &ou_attrs()));
    let r = result_of(&mut root, 3);
    assert_eq!(r.code, LdapResultCode::NoSuchObject, "{}", r.message);
    assert_eq!(r.matcheddn, SUFFIX);
    assert_alive(&mut anon, 4);
}

#[test]
fn dns_longer_than_max_dn_length_are_refused() {
    let s = Server::fast();
    let mut c = root_conn(&s);
    let long = format!("cn={},{SUFFIX}", "x".repeat(20_000));
    c.send(search(
        2,
        &long,
        LdapSearchScope::Base,
        "(objectClass=*)",
        &[],
    ));
    let r = result_of(&mut c, 2);
    assert_eq!(r.code, LdapResultCode::AdminLimitExceeded, "{}", r.message);
    assert!(r.message.contains("max_dn_length"), "{}", r.message);
    // Every DN a request names counts, the bind name too; as after any
    // failed bind, the connection is anonymous afterwards.
    assert_eq!(c.bind(3, &long, "pw"), LdapResultCode::AdminLimitExceeded);
    c.send(whoami(4));
    match c.recv(ANSWER).map(|m| m.op) {
        Some(LdapOp::ExtendedResponse(r)) => {
            assert_eq!(r.res.code, LdapResultCode::Success);
            assert_eq!(r.value.unwrap_or_default(), b"");
        }
        other => panic!("expected a Who am I? response, got {other:?}"),
    }
}

// ------------------------------------------------------------- messages

fn big_add(msgid: i32, cn: &str, bytes: usize) -> LdapMsg {
    add_request(
        msgid,
        &format!("cn={cn},{SUFFIX}"),
        &[
            ("objectClass", vec![b"applicationProcess".to_vec()]),
            ("cn", vec![cn.as_bytes().to_vec()]),
            ("description", vec![vec![b'd'; bytes]]),
        ],
    )
}

#[test]
fn before_a_bind_only_small_messages_are_accepted() {
    let s = Server::fast();
    let mut anon = RawConn::connect(s.port);
    anon.send(big_add(1, "big", 300 << 10));
    assert_eq!(notice_then_close(&mut anon), LdapResultCode::ProtocolError);
    wait_until(
        || s.log_text().contains("(anonymous_max_message_size)"),
        "the log to name the limit",
    );
    // A bound connection keeps the larger limit.
    let mut root = root_conn(&s);
    root.send(big_add(2, "big", 300 << 10));
    let r = result_of(&mut root, 2);
    assert_eq!(r.code, LdapResultCode::Success, "{}", r.message);
}

/// Forty such connections took the server from 54 to 729 MB: each
/// partial 15 MiB message was buffered until the idle timeout.
#[test]
fn an_anonymous_header_announcing_15_mib_ends_the_connection_at_once() {
    let s = Server::fast();
    let mut c = RawConn::connect(s.port);
    // SEQUENCE of 15 MiB, a messageID, then nothing more.
    let header = [0x30, 0x84, 0x00, 0xf0, 0x00, 0x00, 0x02, 0x01, 0x01];
    c.stream.write_all(&header).expect("write");
    assert_eq!(notice_then_close(&mut c), LdapResultCode::ProtocolError);
}

/// Partial messages of all connections share one budget: of two bound
/// connections each holding most of it, one is refused with busy and the
/// other completes; once it has, the budget is free again.
#[test]
fn partial_messages_share_a_server_wide_budget() {
    let s = Server::start_with_config(
        "password_scheme = \"SSHA512\"\n[limits]\nmax_pending_message_bytes = 1048576\n",
        &[],
    );
    let mut conns = [root_conn(&s), root_conn(&s)];
    let msgs: Vec<Vec<u8>> = ["a", "b"]
        .iter()
        .zip(conns.iter_mut())
        .map(|(cn, c)| c.encode(vec![big_add(2, cn, 700 << 10)]))
        .collect();
    // All but the last byte: both messages stay partial whatever order the
    // server reads them in, so the second one it sees cannot fit.
    for (c, m) in conns.iter_mut().zip(&msgs) {
        let _ = c.stream.write_all(&m[..m.len() - 1]);
    }
    let deadline = Instant::now() + ANSWER;
    let refused = 'poll: loop {
        assert!(Instant::now() < deadline, "neither connection was refused");
        for (i, c) in conns.iter_mut().enumerate() {
            if let Some(m) = c.recv(Duration::from_millis(200)) {
                match m.op {
                    LdapOp::ExtendedResponse(r) if m.msgid == 0 => {
                        assert_eq!(r.name.as_deref(), Some(OID_NOTICE_OF_DISCONNECTION));
                        assert_eq!(r.res.code, LdapResultCode::Busy, "{}", r.res.message);
                        break 'poll i;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    };
    let kept = 1 - refused;
    let last = msgs[kept].len() - 1;
    conns[kept]
        .stream
        .write_all(&msgs[kept][last..])
        .expect("write");
    assert_eq!(result_of(&mut conns[kept], 2).code, LdapResultCode::Success);
    assert!(s.log_text().contains("max_pending_message_bytes"));
    // The budget is whole again.
    let mut c = root_conn(&s);
    c.send(big_add(2, "c", 700 << 10));
    assert_eq!(result_of(&mut c, 2).code, LdapResultCode::Success);
}

// ------------------------------------------------------------- searches

#[test]
fn searches_that_look_through_too_many_entries_end_with_admin_limit_exceeded() {
    let s = Server::start_with_config(
        "password_scheme = \"SSHA512\"\n[limits]\nlookthrough_limit = 50\n",
        &[],
    );
    let adds = (0..120)
        .map(|i| {
            (
                format!("cn=p{i},{SUFFIX}"),
                vec![
                    ("objectClass", vec![b"applicationProcess".to_vec()]),
                    ("cn", vec![format!("p{i}").into_bytes()]),
                ],
            )
        })
        .collect();
    bulk_add(s.port, adds);
    // description is not indexed: every entry in scope is a candidate.
    let filter = "(description=nothing)";
    let mut anon = RawConn::connect(s.port);
    anon.send(search(1, SUFFIX, LdapSearchScope::Subtree, filter, &[]));
    let r = result_of(&mut anon, 1);
    assert_eq!(r.code, LdapResultCode::AdminLimitExceeded, "{}", r.message);
    assert!(r.message.contains("lookthrough_limit"), "{}", r.message);
    let mut root = root_conn(&s);
    root.send(search(2, SUFFIX, LdapSearchScope::Subtree, filter, &[]));
    assert_eq!(result_of(&mut root, 2).code, LdapResultCode::Success);
}

fn or_of(terms: usize) -> String {
    let inner: String = (0..terms).map(|i| format!("(description=v{i})")).collect();
    format!("(|{inner})")
}

#[test]
fn filters_with_more_terms_than_max_filter_terms_are_refused() {
    let s = Server::fast();
    let mut anon = RawConn::connect(s.port);
    // The OR itself is a term: 999 + 1 is the default limit of 1000.
    anon.send(search(
        1,
        SUFFIX,
        LdapSearchScope::Subtree,
        &or_of(999),
        &[],
    ));
    assert_eq!(result_of(&mut anon, 1).code, LdapResultCode::Success);
    anon.send(search(
        2,
        SUFFIX,
        LdapSearchScope::Subtree,
        &or_of(1000),
        &[],
    ));
    let r = result_of(&mut anon, 2);
    assert_eq!(r.code, LdapResultCode::AdminLimitExceeded, "{}", r.message);
    assert!(r.message.contains("max_filter_terms"), "{}", r.message);
    let mut root = root_conn(&s);
    root.send(search(
        2,
        SUFFIX,
        LdapSearchScope::Subtree,
        &or_of(1000),
        &[],
    ));
    assert_eq!(result_of(&mut root, 2).code, LdapResultCode::Success);
}

// ----------------------------------------------------------------- PDUs

fn empty_result() -> LdapResult {
    LdapResult {
        code: LdapResultCode::Success,
        matcheddn: String::new(),
        message: String::new(),
        referral: Vec::new(),
    }
}

/// RFC 4511 §4.1.1: a protocolOp that is not a request ends the session
/// with a notice of disconnection (protocolError).
#[test]
fn response_pdus_sent_as_requests_end_the_connection() {
    let s = Server::fast();
    let responses = vec![
        LdapOp::BindResponse(LdapBindResponse {
            res: empty_result(),
            saslcreds: None,
        }),
        LdapOp::SearchResultEntry(LdapSearchResultEntry {
            dn: SUFFIX.into(),
            attributes: vec![LdapPartialAttribute {
                atype: "dc".into(),
                vals: vec![b"example".to_vec()],
            }],
        }),
        LdapOp::SearchResultDone(empty_result()),
        LdapOp::ModifyResponse(empty_result()),
        LdapOp::AddResponse(empty_result()),
        LdapOp::DelResponse(empty_result()),
        LdapOp::ModifyDNResponse(empty_result()),
        LdapOp::CompareResult(empty_result()),
        LdapOp::SearchResultReference(LdapSearchResultReference {
            uris: vec!["ldap://127.0.0.1/".into()],
        }),
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: empty_result(),
            name: None,
            value: None,
        }),
        LdapOp::IntermediateResponse(LdapIntermediateResponse::SyncInfoRefreshDelete {
            cookie: None,
            done: true,
        }),
    ];
    for op in responses {
        let what = format!("{op:?}");
        let mut c = RawConn::connect(s.port);
        c.send(LdapMsg::new(5, op));
        assert_eq!(
            notice_then_close(&mut c),
            LdapResultCode::ProtocolError,
            "{what}"
        );
    }
    assert!(s.log_text().contains("was sent as a request"));
    let mut c = RawConn::connect(s.port);
    assert_alive(&mut c, 1);
}

/// MessageID ::= INTEGER (0 .. maxInt), and 0 is reserved for the server's
/// unsolicited notifications: anything else cannot be answered.
#[test]
fn message_ids_outside_one_to_max_int_end_the_connection() {
    let s = Server::fast();
    for id in [
        &[0xfb][..],                     // -5 (was answered as 251)
        &[0x01, 0, 0, 0, 0, 0],          // 2^40 (was answered as 0)
        &[0x00],                         // 0
        &[0x00, 0x80, 0x00, 0x00, 0x00], // 2^31
        &[0xff, 0xff, 0xff, 0xff, 0xff], // -1, padded
    ] {
        let mut c = RawConn::connect(s.port);
        c.stream
            .write_all(&message(id, &whoami_op()))
            .expect("write");
        assert_eq!(
            notice_then_close(&mut c),
            LdapResultCode::ProtocolError,
            "messageID {id:02x?}"
        );
    }
    assert!(s.log_text().contains("messageID"));
    // The largest valid one is answered.
    let mut c = RawConn::connect(s.port);
    c.stream
        .write_all(&message(&[0x7f, 0xff, 0xff, 0xff], &whoami_op()))
        .expect("write");
    let m = c.recv(ANSWER).expect("an answer");
    assert_eq!(m.msgid, i32::MAX);
}

/// sizeLimit and timeLimit are INTEGER (0 .. maxInt): a search outside
/// that gets protocolError (a negative sizeLimit used to mean 255 entries).
#[test]
fn search_limits_outside_zero_to_max_int_are_protocol_errors() {
    let s = Server::fast();
    let mut c = RawConn::connect(s.port);
    let cases: [(&[u8], &[u8]); 4] = [
        (&[0xff], &[0x00]),
        (&[0x01, 0, 0, 0, 0, 0], &[0x00]),
        (&[0x00], &[0xff]),
        (&[0x00], &[0x80, 0, 0, 0]),
    ];
    for (i, (size, time)) in cases.iter().enumerate() {
        let msgid = i as u8 + 1;
        c.stream
            .write_all(&message(&[msgid], &root_dse_search_op(size, time)))
            .expect("write");
        let r = result_of(&mut c, i32::from(msgid));
        assert_eq!(
            r.code,
            LdapResultCode::ProtocolError,
            "sizeLimit {size:02x?} timeLimit {time:02x?}: {}",
            r.message
        );
        assert!(r.message.contains("sizeLimit"), "{}", r.message);
    }
    // Valid limits on the same connection still work.
    c.stream
        .write_all(&message(&[9], &root_dse_search_op(&[0x01], &[0x05])))
        .expect("write");
    assert_eq!(result_of(&mut c, 9).code, LdapResultCode::Success);
}

// ---------------------------------------------------------- connections

fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// Behind a load balancer or NAT every client has the same address: by
/// default one address is not capped (it was at 1,000 connections).
#[test]
fn one_address_may_hold_more_than_a_thousand_connections_by_default() {
    const N: usize = 1100;
    let limit = raise_nofile();
    assert!(
        limit as usize > N + 100,
        "the test needs more than {N} open files; the hard limit is {limit}"
    );
    let s = Server::fast();
    let opened = || s.log_text().matches("connection opened").count();
    let before = opened();
    let held: Vec<TcpStream> = (0..N)
        .map(|i| {
            TcpStream::connect(("127.0.0.1", s.port))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    wait_until(|| opened() >= before + N, "every connection to be accepted");
    let mut c = RawConn::connect(s.port);
    assert_alive(&mut c, 1);
    assert!(!s.log_text().contains("max_connections_per_ip"));
    drop(held);
}
