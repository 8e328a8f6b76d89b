//! A guard in front of the LDAP codec: it rejects, from the first bytes,
//! input that can never become a valid LDAP message (not a BER SEQUENCE,
//! indefinite or absurd lengths, a declared length above the limit), so such
//! a peer is disconnected at once instead of holding buffers until a timeout.
//! A partial message is only buffered within a budget shared by all
//! connections, and a complete one is checked in its raw form
//! ([`super::inspect`]) before ldap3_proto decodes it.

use super::inspect;
use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp};
use ldap3_proto::LdapCodec;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_util::codec::{Decoder, Encoder};

/// Why the guard refused the input; carried inside the io::Error so the
/// connection can answer with the right notice of disconnection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The bytes break the protocol: protocolError.
    #[error("{0}")]
    Protocol(String),
    /// The server-wide budget for partially received messages is spent.
    #[error(
        "{needed} more bytes for a partial message would exceed the {budget} bytes \
         all connections may hold (max_pending_message_bytes)"
    )]
    Budget { needed: usize, budget: usize },
}

impl FrameError {
    /// The FrameError inside an io::Error produced by the codec, if any.
    pub fn of(e: &io::Error) -> Option<&FrameError> {
        e.get_ref().and_then(|i| i.downcast_ref::<FrameError>())
    }
}

/// Bytes of partial messages held across all connections.
#[derive(Debug)]
pub struct PendingBudget {
    used: AtomicUsize,
    max: usize,
}

impl PendingBudget {
    pub fn new(max: usize) -> Arc<PendingBudget> {
        Arc::new(PendingBudget {
            used: AtomicUsize::new(0),
            max,
        })
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }
}

/// A buffer that grew for a large message is given back once that message
/// is decoded, so an idle connection does not keep it.
const KEEP_CAPACITY: usize = 64 * 1024;

pub struct GuardedCodec {
    inner: LdapCodec,
    max_message: usize,
    /// The configuration key of the limit in force, for the error message.
    limit_name: &'static str,
    budget: Arc<PendingBudget>,
    /// Bytes of `budget` taken for the partial message in the buffer.
    reserved: usize,
}

impl GuardedCodec {
    /// A codec without a shared budget (tools, fuzzing): partial messages
    /// are bounded by `max_message` alone.
    pub fn new(max_message: usize) -> Self {
        GuardedCodec::with_budget(max_message, PendingBudget::new(usize::MAX))
    }

    pub fn with_budget(max_message: usize, budget: Arc<PendingBudget>) -> Self {
        GuardedCodec {
            // The header check enforces the limit in force; the decoder's own
            // limit only has to admit the largest one.
            inner: LdapCodec::new(Some(max_message), None),
            max_message,
            limit_name: "max_message_size",
            budget,
            reserved: 0,
        }
    }

    /// Changes the largest message accepted from now on (a bind changes
    /// it), up to the limit the codec was built with.
    pub fn set_max_message(&mut self, max_message: usize, limit_name: &'static str) {
        self.max_message = max_message;
        self.limit_name = limit_name;
    }

    pub fn max_message(&self) -> usize {
        self.max_message
    }

    fn release(&mut self) {
        if self.reserved > 0 {
            self.budget.give_back(self.reserved);
            self.reserved = 0;
        }
    }

    /// Takes budget for a partial message that will be `total` bytes long.
    fn reserve(&mut self, total: usize) -> io::Result<()> {
        if total <= self.reserved {
            return Ok(());
        }
        let needed = total - self.reserved;
        if !self.budget.try_take(needed) {
            return Err(io::Error::other(FrameError::Budget {
                needed,
                budget: self.budget.max,
            }));
        }
        self.reserved = total;
        Ok(())
    }
}

impl Drop for GuardedCodec {
    fn drop(&mut self) {
        self.release();
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, FrameError::Protocol(msg))
}

/// Checks the tag and length header of the next message, when enough bytes are there.
pub fn check_header(buf: &[u8], max_message: usize) -> io::Result<()> {
    check_header_named(buf, max_message, "max_message_size")
}

fn check_header_named(buf: &[u8], max_message: usize, limit_name: &str) -> io::Result<()> {
    let Some(&tag) = buf.first() else {
        return Ok(());
    };
    if tag != 0x30 {
        return Err(invalid(format!(
            "not an LDAP message: first byte 0x{tag:02x}, expected a BER SEQUENCE (0x30)"
        )));
    }
    let Some(&len0) = buf.get(1) else {
        return Ok(());
    };
    if len0 & 0x80 == 0 {
        return Ok(());
    }
    let n = usize::from(len0 & 0x7f);
    if n == 0 {
        return Err(invalid(
            "indefinite BER length is not allowed in LDAP (RFC 4511 §5.1)".into(),
        ));
    }
    if n > 8 {
        return Err(invalid(format!("BER length of {n} octets is not valid")));
    }
    let Some(octets) = buf.get(2..2 + n) else {
        return Ok(());
    };
    let declared = octets
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    if declared > max_message as u128 {
        return Err(invalid(format!(
            "message of {declared} bytes exceeds the limit of {max_message} bytes ({limit_name})"
        )));
    }
    Ok(())
}

/// The whole length (header included) of the message starting `buf`, once
/// its header is complete. Only call after [`check_header`] accepted it.
fn message_len(buf: &[u8]) -> Option<usize> {
    let len0 = *buf.get(1)?;
    if len0 & 0x80 == 0 {
        return Some(2 + usize::from(len0));
    }
    let n = usize::from(len0 & 0x7f);
    let octets = buf.get(2..2 + n)?;
    let content = octets.iter().try_fold(0usize, |acc, b| {
        acc.checked_mul(256)?.checked_add(usize::from(*b))
    })?;
    content.checked_add(2 + n)
}

/// Puts into the decoded message what ldap3_proto lost of the raw integers:
/// an out-of-range search limit becomes -1 (refused by the search with
/// protocolError), an out-of-range abandon target becomes 0 (no request
/// has that ID, so nothing is abandoned instead of an unrelated one).
///
/// The sort control is handed on raw (as an unknown control) so the
/// operation sees its criticality; ops::controls decodes its value.
fn apply_facts(msg: &mut LdapMsg, facts: inspect::RawFacts) {
    if let Some(raw) = facts.sort_control {
        for c in &mut msg.ctrl {
            if matches!(c, LdapControl::ServerSort { .. }) {
                *c = LdapControl::Unknown {
                    oid: crate::model::oid::SORT_REQUEST.to_string(),
                    criticality: raw.critical,
                    value: raw.value.clone(),
                };
            }
        }
    }
    match &mut msg.op {
        LdapOp::SearchRequest(s) if facts.search_limit_out_of_range => {
            s.sizelimit = -1;
            s.timelimit = -1;
        }
        LdapOp::AbandonRequest(target) if facts.abandon_target_out_of_range => *target = 0,
        _ => {}
    }
}

impl Decoder for GuardedCodec {
    type Item = LdapMsg;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<LdapMsg>> {
        check_header_named(buf, self.max_message, self.limit_name)?;
        let Some(total) = message_len(buf) else {
            return Ok(None);
        };
        if buf.len() < total {
            // Parse nothing before the message is complete: re-parsing a
            // growing prefix on every read would cost quadratic time.
            self.reserve(total)?;
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        self.release();
        let facts = inspect::inspect(buf.get(..total).unwrap_or_default()).map_err(invalid)?;
        if let Some(tag) = facts
            .extended_name_untagged_at
            .and_then(|at| buf.get_mut(at))
        {
            // requestName [0] LDAPOID: see RawFacts::extended_name_untagged_at.
            *tag = 0x80;
        }
        let decoded = self.inner.decode(buf)?;
        if buf.is_empty() && buf.capacity() > KEEP_CAPACITY {
            *buf = BytesMut::with_capacity(1024);
        }
        Ok(decoded.map(|mut msg| {
            apply_facts(&mut msg, facts);
            msg
        }))
    }
}

impl Encoder<LdapMsg> for GuardedCodec {
    type Error = io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut BytesMut) -> io::Result<()> {
        self.inner.encode(msg, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::{check_header, FrameError, GuardedCodec, PendingBudget};
    use bytes::BytesMut;
    use ldap3_proto::control::LdapControl;
    use ldap3_proto::proto::LdapOp;
    use tokio_util::codec::Decoder;

    /// A search of the root DSE with the given raw sizeLimit contents, messageID 1.
    fn search_with_size_limit(size: &[u8]) -> Vec<u8> {
        let mut c = vec![0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00];
        c.extend_from_slice(&[0x02, size.len() as u8]);
        c.extend_from_slice(size);
        // timeLimit 0, typesOnly FALSE, (oc=*), no attributes
        c.extend_from_slice(&[
            0x02, 0x01, 0x00, 0x01, 0x01, 0x00, 0x87, 0x02, b'o', b'c', 0x30, 0x00,
        ]);
        let mut inner = vec![0x02, 0x01, 0x01, 0x63, c.len() as u8];
        inner.extend_from_slice(&c);
        let mut m = vec![0x30, inner.len() as u8];
        m.extend_from_slice(&inner);
        m
    }

    #[test]
    fn rejects_non_ldap_and_oversized_headers_early() {
        let max = 16 << 20;
        assert!(check_header(b"GET / HTTP/1.1", max).is_err());
        assert!(check_header(&[0x16, 0x03, 0x01], max).is_err()); // TLS ClientHello
        assert!(check_header(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff], max).is_err());
        assert!(check_header(&[0x30, 0x88, 0, 0, 0, 0, 0, 0, 0, 1], max).is_ok());
        assert!(check_header(&[0x30, 0x89], max).is_err());
        assert!(check_header(&[0x30, 0x80], max).is_err());
        assert!(check_header(&[0x30, 0x84, 0x00, 0x00], max).is_ok()); // not enough bytes yet
        assert!(check_header(&[0x30, 0x0c, 0x02, 0x01, 0x01], max).is_ok());
        assert!(check_header(&[], max).is_ok());
        assert!(check_header(&[0x30, 0x83, 0x00, 0x10, 0x00], 4096).is_ok());
        assert!(check_header(&[0x30, 0x83, 0x00, 0x10, 0x01], 4096).is_err());
    }

    #[test]
    fn partial_messages_are_held_within_the_shared_budget() {
        let budget = PendingBudget::new(1000);
        let mut a = GuardedCodec::with_budget(4096, budget.clone());
        let mut b = GuardedCodec::with_budget(4096, budget.clone());
        // Each declares 800 bytes of contents and sends only the header.
        let mut buf_a = BytesMut::from(&[0x30, 0x82, 0x03, 0x20, 0x02][..]);
        let mut buf_b = buf_a.clone();
        assert!(a.decode(&mut buf_a).unwrap().is_none());
        assert_eq!(budget.used(), 804);
        let e = b.decode(&mut buf_b).expect_err("over budget");
        assert!(
            matches!(FrameError::of(&e), Some(FrameError::Budget { .. })),
            "{e}"
        );
        // A closed connection gives its share back.
        drop(a);
        assert_eq!(budget.used(), 0);
        let mut c = GuardedCodec::with_budget(4096, budget.clone());
        assert!(c.decode(&mut buf_b).unwrap().is_none());
        assert_eq!(budget.used(), 804);
    }

    #[test]
    fn the_limit_in_force_is_named_and_can_change() {
        let mut codec = GuardedCodec::new(1 << 20);
        codec.set_max_message(1000, "anonymous_max_message_size");
        let mut buf = BytesMut::from(&[0x30, 0x82, 0x10, 0x00][..]);
        let e = codec.decode(&mut buf).expect_err("too large");
        assert!(e.to_string().contains("anonymous_max_message_size"), "{e}");
        codec.set_max_message(1 << 20, "max_message_size");
        let mut buf = BytesMut::from(&[0x30, 0x82, 0x10, 0x00][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn out_of_range_search_limits_reach_the_search_as_negative() {
        let mut codec = GuardedCodec::new(1 << 20);
        for (raw, want) in [
            (&[0x05][..], 5),
            (&[0xff][..], -1),
            (&[0x01, 0, 0, 0, 0, 0][..], -1),
        ] {
            let mut buf = BytesMut::from(&search_with_size_limit(raw)[..]);
            let msg = codec.decode(&mut buf).unwrap().expect("a message");
            let LdapOp::SearchRequest(s) = msg.op else {
                panic!("not a search: {:?}", msg.op)
            };
            assert_eq!(s.sizelimit, want, "{raw:?}");
        }
    }

    /// ldap3_proto decodes the sort control without its criticality; the
    /// search must see it, and the raw value.
    #[test]
    fn the_sort_control_reaches_the_search_with_its_criticality() {
        let search = search_with_size_limit(&[0x00]);
        // The protocolOp after the 0x30 header and messageID 1.
        let op = &search[5..];
        // SortKeyList { { "cn" } }
        let value = [0x30, 0x06, 0x30, 0x04, 0x04, 0x02, b'c', b'n'];
        let oid = b"1.2.840.113556.1.4.473";
        for critical in [true, false] {
            let mut control = vec![0x04, oid.len() as u8];
            control.extend_from_slice(oid);
            if critical {
                control.extend_from_slice(&[0x01, 0x01, 0xff]);
            }
            control.extend_from_slice(&[0x04, value.len() as u8]);
            control.extend_from_slice(&value);
            let mut controls = vec![0x30, control.len() as u8];
            controls.extend_from_slice(&control);
            let mut inner = vec![0x02, 0x01, 0x01];
            inner.extend_from_slice(op);
            inner.extend_from_slice(&[0xa0, controls.len() as u8]);
            inner.extend_from_slice(&controls);
            let mut m = vec![0x30, inner.len() as u8];
            m.extend_from_slice(&inner);
            let mut codec = GuardedCodec::new(1 << 20);
            let mut buf = BytesMut::from(&m[..]);
            let msg = codec.decode(&mut buf).unwrap().expect("a message");
            assert_eq!(
                msg.ctrl,
                vec![LdapControl::Unknown {
                    oid: "1.2.840.113556.1.4.473".into(),
                    criticality: critical,
                    value: Some(value.to_vec()),
                }]
            );
        }
    }

    /// libldap re-encodes a chased extended request with its requestName
    /// as a universal OCTET STRING; it is decoded as the request it is.
    #[test]
    fn an_extended_request_chased_by_libldap_is_decoded() {
        let oid = b"1.3.6.1.4.1.4203.1.11.1";
        let value = [0x30, 0x03, 0x80, 0x01, b'x'];
        let mut op = vec![0x04, oid.len() as u8];
        op.extend_from_slice(oid);
        op.extend_from_slice(&[0x81, value.len() as u8]);
        op.extend_from_slice(&value);
        let mut inner = vec![0x02, 0x01, 0x09, 0x77, op.len() as u8];
        inner.extend_from_slice(&op);
        let mut m = vec![0x30, inner.len() as u8];
        m.extend_from_slice(&inner);
        let mut codec = GuardedCodec::new(1 << 20);
        let mut buf = BytesMut::from(&m[..]);
        let msg = codec.decode(&mut buf).unwrap().expect("a message");
        let LdapOp::ExtendedRequest(x) = msg.op else {
            panic!("not an extended request: {:?}", msg.op)
        };
        assert_eq!(x.name, "1.3.6.1.4.1.4203.1.11.1");
        assert_eq!(x.value, Some(value.to_vec()));
    }

    #[test]
    fn an_out_of_range_abandon_target_abandons_nothing() {
        let mut codec = GuardedCodec::new(1 << 20);
        // AbandonRequest of -5 (ldap3_proto alone reads it as 251).
        let mut buf = BytesMut::from(&[0x30, 0x06, 0x02, 0x01, 0x02, 0x50, 0x01, 0xfb][..]);
        let msg = codec.decode(&mut buf).unwrap().expect("a message");
        assert_eq!(msg.op, LdapOp::AbandonRequest(0));
    }

    #[test]
    fn a_response_sent_as_a_request_is_a_protocol_error() {
        let mut codec = GuardedCodec::new(1 << 20);
        // BindResponse: messageID 1, [APPLICATION 1] { success, "", "" }
        let raw = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        let mut buf = BytesMut::from(&raw[..]);
        let e = codec.decode(&mut buf).expect_err("refused");
        assert!(
            matches!(FrameError::of(&e), Some(FrameError::Protocol(_))),
            "{e}"
        );
        assert!(e.to_string().contains("BindResponse"), "{e}");
    }
}
