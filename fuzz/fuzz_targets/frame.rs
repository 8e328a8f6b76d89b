//! The server's framing (`server::framing::GuardedCodec`): arbitrary bytes
//! fed in chunks, as reads deliver them, through the header guard, the
//! shared budget for partial messages and the raw check of integers and
//! protocolOp tags. It never panics, and whatever it lets through is a
//! request ldap3_proto's integer coercion cannot have corrupted: a
//! messageID in 1..maxInt, a request tag, search limits either in range
//! or flagged (-1). Its share of the budget goes back when it is dropped.
//!
//! Byte 0 picks the message limit (anonymous or bound) and the budget,
//! byte 1 the read size; the rest is the stream.
#![no_main]

use bytes::BytesMut;
use ferrodir::server::framing::{GuardedCodec, PendingBudget};
use ferrodir::server::inspect;
use ldap3_proto::proto::LdapOp;
use ldap3_proto::LdapCodec;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

fn is_request(op: &LdapOp) -> bool {
    matches!(
        op,
        LdapOp::BindRequest(_)
            | LdapOp::UnbindRequest
            | LdapOp::SearchRequest(_)
            | LdapOp::ModifyRequest(_)
            | LdapOp::AddRequest(_)
            | LdapOp::DelRequest(_)
            | LdapOp::ModifyDNRequest(_)
            | LdapOp::CompareRequest(_)
            | LdapOp::AbandonRequest(_)
            | LdapOp::ExtendedRequest(_)
    )
}

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, stream @ ..] = data else {
        return;
    };
    let max_message = if mode & 1 == 0 { 256 << 10 } else { 1 << 20 };
    let budget = PendingBudget::new(usize::from(mode >> 1) * 64 + 16);
    let mut codec = GuardedCodec::with_budget(max_message, budget.clone());
    let mut enc = LdapCodec::new(Some(usize::MAX / 4), None);
    let chunk = usize::from(*chunk).max(1);
    let mut buf = BytesMut::new();
    'read: for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => {
                    assert!(
                        (1..=inspect::MAX_INT).contains(&i64::from(msg.msgid)),
                        "messageID {} let through",
                        msg.msgid
                    );
                    assert!(is_request(&msg.op), "a non-request let through: {:?}", msg.op);
                    if let LdapOp::SearchRequest(s) = &msg.op {
                        let flagged = s.sizelimit == -1 && s.timelimit == -1;
                        assert!(
                            flagged || (s.sizelimit >= 0 && s.timelimit >= 0),
                            "search limits {} {} let through",
                            s.sizelimit,
                            s.timelimit
                        );
                    }
                    if let LdapOp::AbandonRequest(id) = msg.op {
                        assert!(id >= 0, "abandon target {id} let through");
                    }
                    let mut out = BytesMut::new();
                    let _ = enc.encode(msg, &mut out);
                }
                Ok(None) => break,
                // The connection would be closed here.
                Err(_) => break 'read,
            }
        }
    }
    drop(codec);
    assert_eq!(budget.used(), 0, "a dropped connection kept budget");
});
