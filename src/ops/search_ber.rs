//! BER encoding of the messages sent most, without ldap3_proto's tree of
//! tags: SearchResultEntry straight from the selected attributes (RFC 4511
//! §4.5.2), so a search streams entries without building owned protocol
//! structures for each one, and the responses that are an LDAPResult and
//! nothing else (a bind's, a write's, a search's end).

use crate::directory::{SelectedEntry, SelectedValues};
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResult};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
/// [APPLICATION 4] constructed: SearchResultEntry.
const SEARCH_RESULT_ENTRY: u8 = 0x64;

/// Where encoded bytes go: a batch of entries (Vec) or the connection's
/// write buffer (BytesMut), written in place either way.
pub trait BerOut {
    fn reserve(&mut self, additional: usize);
    fn extend_from_slice(&mut self, bytes: &[u8]);
}

impl BerOut for Vec<u8> {
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional)
    }
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes)
    }
}

impl BerOut for bytes::BytesMut {
    fn reserve(&mut self, additional: usize) {
        bytes::BytesMut::reserve(self, additional)
    }
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        bytes::BytesMut::extend_from_slice(self, bytes)
    }
}

/// Bytes of a definite length field for `len` content bytes.
fn len_size(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// Bytes of a whole tag-length-value with `len` content bytes.
fn tlv_size(len: usize) -> usize {
    1 + len_size(len) + len
}

fn put_header(out: &mut impl BerOut, tag: u8, len: usize) {
    if len < 0x80 {
        out.extend_from_slice(&[tag, len as u8]);
        return;
    }
    let n = len_size(len) - 1;
    let be = (len as u64).to_be_bytes();
    out.extend_from_slice(&[tag, 0x80 | n as u8]);
    out.extend_from_slice(be.get(8 - n..).unwrap_or_default());
}

fn put_octets(out: &mut impl BerOut, bytes: &[u8]) {
    put_header(out, OCTET_STRING, bytes.len());
    out.extend_from_slice(bytes);
}

/// Minimal two's-complement content bytes of a message id.
fn int_content(n: i32) -> ([u8; 4], usize) {
    let bytes = n.to_be_bytes();
    let redundant = bytes
        .windows(2)
        .take_while(|w| {
            matches!(w, [b, next] if (*b == 0x00 && next & 0x80 == 0) || (*b == 0xff && next & 0x80 != 0))
        })
        .count();
    (bytes, redundant)
}

fn values_size(values: &SelectedValues<'_>) -> usize {
    values.iter().map(|v| tlv_size(v.len())).sum()
}

/// Starts an LDAPMessage: its SEQUENCE, the message ID and the header of
/// a protocol operation of `op_len` content bytes (room reserved for all).
fn put_envelope(out: &mut impl BerOut, msgid: i32, op_tag: u8, op_len: usize) {
    let (id_bytes, id_start) = int_content(msgid);
    let id = id_bytes.get(id_start..).unwrap_or_default();
    let msg_len = tlv_size(id.len()) + tlv_size(op_len);
    out.reserve(tlv_size(msg_len));
    put_header(out, SEQUENCE, msg_len);
    put_header(out, INTEGER, id.len());
    out.extend_from_slice(id);
    put_header(out, op_tag, op_len);
}

/// Appends one complete LDAPMessage carrying a SearchResultEntry.
pub fn encode_entry(out: &mut Vec<u8>, msgid: i32, entry: &SelectedEntry<'_>) {
    let mut attrs_len = 0;
    for (name, values) in &entry.attrs {
        let one = tlv_size(name.len()) + tlv_size(values_size(values));
        attrs_len += tlv_size(one);
    }
    let op_len = tlv_size(entry.dn.len()) + tlv_size(attrs_len);
    put_envelope(out, msgid, SEARCH_RESULT_ENTRY, op_len);
    put_octets(out, entry.dn.as_bytes());
    put_header(out, SEQUENCE, attrs_len);
    for (name, values) in &entry.attrs {
        let vals_len = values_size(values);
        put_header(out, SEQUENCE, tlv_size(name.len()) + tlv_size(vals_len));
        put_octets(out, name.as_bytes());
        put_header(out, SET, vals_len);
        for v in values.iter() {
            put_octets(out, v);
        }
    }
}

/// The [APPLICATION n] tag and result of a response that is an LDAPResult
/// and nothing else.
fn result_only(op: &LdapOp) -> Option<(u8, &LdapResult)> {
    match op {
        LdapOp::BindResponse(b) if b.saslcreds.is_none() => Some((0x61, &b.res)),
        LdapOp::SearchResultDone(r) => Some((0x65, r)),
        LdapOp::ModifyResponse(r) => Some((0x67, r)),
        LdapOp::AddResponse(r) => Some((0x69, r)),
        LdapOp::DelResponse(r) => Some((0x6b, r)),
        LdapOp::ModifyDNResponse(r) => Some((0x6d, r)),
        LdapOp::CompareResult(r) => Some((0x6f, r)),
        _ => None,
    }
}

/// Appends `msg` when it is a response of only an LDAPResult, without
/// referrals or controls, and says whether it did; anything else is left
/// to the codec.
pub fn encode_result(out: &mut impl BerOut, msg: &LdapMsg) -> bool {
    let Some((tag, res)) = result_only(&msg.op) else {
        return false;
    };
    if !msg.ctrl.is_empty() || !res.referral.is_empty() {
        return false;
    }
    let (code_bytes, code_start) = int_content(res.code.clone() as i32);
    let code = code_bytes.get(code_start..).unwrap_or_default();
    let op_len = tlv_size(code.len()) + tlv_size(res.matcheddn.len()) + tlv_size(res.message.len());
    put_envelope(out, msg.msgid, tag, op_len);
    put_header(out, ENUMERATED, code.len());
    out.extend_from_slice(code);
    put_octets(out, res.matcheddn.as_bytes());
    put_octets(out, res.message.as_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Csn, Value};
    use bytes::BytesMut;
    use ldap3_proto::proto::{LdapMsg, LdapOp, LdapPartialAttribute};
    use ldap3_proto::LdapCodec;
    use std::borrow::Cow;
    use tokio_util::codec::Decoder;

    fn decode_all(mut buf: BytesMut) -> Vec<LdapMsg> {
        let mut codec = LdapCodec::new(Some(usize::MAX / 4), None);
        let mut out = Vec::new();
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            out.push(m);
        }
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        out
    }

    #[test]
    fn entries_decode_as_the_codec_reads_them() {
        let stored: Vec<Value> = [b"a".to_vec(), vec![0xff; 200], vec![7; 70_000], Vec::new()]
            .into_iter()
            .map(|bytes| Value {
                bytes,
                csn: Csn::ZERO,
            })
            .collect();
        let long_dn = format!("cn={},dc=example,dc=com", "x".repeat(300));
        let cases: Vec<(i32, String)> = vec![
            (0, "dc=example,dc=com".into()),
            (1, "".into()),
            (127, long_dn.clone()),
            (128, "cn=a".into()),
            (255, "cn=b".into()),
            (256, "cn=c".into()),
            (65_535, "cn=d".into()),
            (8_388_608, "cn=e".into()),
            (i32::MAX, "cn=f".into()),
        ];
        let mut buf = Vec::new();
        let mut expected = Vec::new();
        for (msgid, dn) in cases {
            let entry = SelectedEntry {
                dn: dn.clone(),
                attrs: vec![
                    (Cow::Borrowed("cn"), SelectedValues::Stored(&stored[..1])),
                    (Cow::Borrowed("jpegPhoto"), SelectedValues::Stored(&stored)),
                    (Cow::Borrowed("objectClass"), SelectedValues::Stored(&[])),
                    (
                        Cow::Owned("entryDN".to_string()),
                        SelectedValues::Computed(vec![dn.clone().into_bytes()]),
                    ),
                ],
            };
            encode_entry(&mut buf, msgid, &entry);
            expected.push(LdapMsg {
                msgid,
                op: LdapOp::SearchResultEntry(ldap3_proto::proto::LdapSearchResultEntry {
                    dn: dn.clone(),
                    attributes: vec![
                        LdapPartialAttribute {
                            atype: "cn".into(),
                            vals: vec![b"a".to_vec()],
                        },
                        LdapPartialAttribute {
                            atype: "jpegPhoto".into(),
                            vals: stored.iter().map(|v| v.bytes.clone()).collect(),
                        },
                        LdapPartialAttribute {
                            atype: "objectClass".into(),
                            vals: Vec::new(),
                        },
                        LdapPartialAttribute {
                            atype: "entryDN".into(),
                            vals: vec![dn.into_bytes()],
                        },
                    ],
                }),
                ctrl: Vec::new(),
            });
        }
        assert_eq!(decode_all(BytesMut::from(&buf[..])), expected);
    }

    #[test]
    fn lengths_use_the_shortest_definite_form() {
        for len in [
            0usize,
            1,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            16_777_216,
            usize::MAX,
        ] {
            let mut out = Vec::new();
            put_header(&mut out, OCTET_STRING, len);
            assert_eq!(out.len(), 1 + len_size(len));
            let mut parsed = 0usize;
            if out[1] & 0x80 == 0 {
                parsed = out[1] as usize;
            } else {
                for b in &out[2..] {
                    parsed = parsed << 8 | *b as usize;
                }
                assert_ne!(out[2], 0, "no leading zero octet for {len}");
            }
            assert_eq!(parsed, len);
        }
    }

    #[test]
    fn result_responses_are_the_bytes_the_codec_writes() {
        use ldap3_proto::proto::{LdapBindResponse, LdapResultCode};
        use tokio_util::codec::Encoder;
        let result = |code: LdapResultCode, matched: &str, message: &str| LdapResult {
            code,
            matcheddn: matched.into(),
            message: message.into(),
            referral: Vec::new(),
        };
        let long = "m".repeat(70_000);
        let mut cases = Vec::new();
        for msgid in [0, 1, 127, 128, 255, 256, 65_535, 8_388_608, i32::MAX] {
            for (code, matched, message) in [
                (LdapResultCode::Success, "", ""),
                (
                    LdapResultCode::InvalidCredentials,
                    "",
                    "invalid credentials",
                ),
                (
                    LdapResultCode::NoSuchObject,
                    "dc=example,dc=com",
                    "no such entry",
                ),
                (LdapResultCode::Other, "", long.as_str()),
            ] {
                let res = result(code, matched, message);
                for op in [
                    LdapOp::BindResponse(LdapBindResponse {
                        res: res.clone(),
                        saslcreds: None,
                    }),
                    LdapOp::SearchResultDone(res.clone()),
                    LdapOp::ModifyResponse(res.clone()),
                    LdapOp::AddResponse(res.clone()),
                    LdapOp::DelResponse(res.clone()),
                    LdapOp::ModifyDNResponse(res.clone()),
                    LdapOp::CompareResult(res.clone()),
                ] {
                    cases.push(LdapMsg {
                        msgid,
                        op,
                        ctrl: Vec::new(),
                    });
                }
            }
        }
        for m in cases {
            let mut ours = Vec::new();
            assert!(encode_result(&mut ours, &m), "{m:?}");
            let mut theirs = BytesMut::new();
            LdapCodec::new(None, None)
                .encode(m.clone(), &mut theirs)
                .unwrap();
            assert_eq!(ours, theirs.to_vec(), "{m:?}");
        }
        // Left to the codec: SASL credentials, referrals, controls.
        let with_creds = LdapMsg {
            msgid: 1,
            op: LdapOp::BindResponse(LdapBindResponse {
                res: result(LdapResultCode::SaslBindInProgress, "", ""),
                saslcreds: Some(b"challenge".to_vec()),
            }),
            ctrl: Vec::new(),
        };
        let mut referred = result(LdapResultCode::Referral, "", "");
        referred.referral = vec!["ldap://master.example.com/".into()];
        let with_referral = LdapMsg {
            msgid: 2,
            op: LdapOp::AddResponse(referred),
            ctrl: Vec::new(),
        };
        for m in [with_creds, with_referral] {
            let mut out = Vec::new();
            assert!(!encode_result(&mut out, &m));
            assert!(out.is_empty());
        }
    }
}
