//! A guard in front of the LDAP codec: it rejects, from the first bytes,
//! input that can never become a valid LDAP message (not a BER SEQUENCE,
//! indefinite or absurd lengths, a declared length above the limit), so such
//! a peer is disconnected at once instead of holding buffers until a timeout.

use bytes::BytesMut;
use ldap3_proto::proto::LdapMsg;
use ldap3_proto::LdapCodec;
use std::io;
use tokio_util::codec::{Decoder, Encoder};

pub struct GuardedCodec {
    inner: LdapCodec,
    max_message: usize,
}

impl GuardedCodec {
    pub fn new(max_message: usize) -> Self {
        GuardedCodec {
            inner: LdapCodec::new(Some(max_message), None),
            max_message,
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Checks the tag and length header of the next message, when enough bytes are there.
pub fn check_header(buf: &[u8], max_message: usize) -> io::Result<()> {
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
            "message of {declared} bytes exceeds the limit of {max_message} bytes (max_message_size)"
        )));
    }
    Ok(())
}

impl Decoder for GuardedCodec {
    type Item = LdapMsg;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<LdapMsg>> {
        check_header(buf, self.max_message)?;
        self.inner.decode(buf)
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
    use super::check_header;

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
}
