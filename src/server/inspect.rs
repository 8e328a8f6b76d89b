//! A look at the raw BER of a complete LDAP message before ldap3_proto
//! decodes it. ldap3_proto reads INTEGERs without sign extension and
//! truncates them to i32 (messageID -5 becomes 251, 2^40 becomes 0, a
//! sizeLimit of -1 becomes 255), and it decodes response PDUs sent by a
//! client as if they were requests. What only the raw bytes show is checked
//! here; everything else is left to the decoder.

/// RFC 4511 §4.1.1: `maxInt INTEGER ::= 2147483647`.
pub const MAX_INT: i64 = i32::MAX as i64;

/// What the raw message says about integers the decoder would mangle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawFacts {
    /// A SearchRequest whose sizeLimit or timeLimit is outside 0..maxInt.
    pub search_limit_out_of_range: bool,
    /// An AbandonRequest whose target messageID is outside 0..maxInt.
    pub abandon_target_out_of_range: bool,
    /// The server-side sort control (RFC 2891) as sent: ldap3_proto
    /// decodes it without its criticality, which decides between refusing
    /// and answering unsorted.
    pub sort_control: Option<RawControl>,
    /// Where, in the message, an ExtendedRequest carries its requestName
    /// as a universal OCTET STRING (0x04) instead of `[0]` (0x80). libldap
    /// sends that when it chases a referral of an extended operation (its
    /// re-encoding writes every request's first field as a plain string):
    /// Samba's `ldap passwd sync` on a BDC whose slave refers the Password
    /// Modify request to the master does exactly this. slapd accepts it;
    /// the framing retags it so the operation is served, not the session
    /// closed.
    pub extended_name_untagged_at: Option<usize>,
}

/// A control's criticality and value bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawControl {
    pub critical: bool,
    pub value: Option<Vec<u8>>,
}

const SORT_REQUEST_OID: &[u8] = b"1.2.840.113556.1.4.473";

/// The sort control among a message's controls (`[0] SEQUENCE OF Control`).
fn sort_control(mut controls: &[u8]) -> Option<RawControl> {
    while let Some((control, rest)) = next_tlv(controls) {
        controls = rest;
        let Some((oid, mut fields)) = next_tlv(control.content) else {
            continue;
        };
        if oid.tag != 0x04 || oid.content != SORT_REQUEST_OID {
            continue;
        }
        let mut raw = RawControl::default();
        while let Some((field, rest)) = next_tlv(fields) {
            fields = rest;
            match field.tag {
                0x01 => raw.critical = field.content.iter().any(|b| *b != 0),
                0x04 => raw.value = Some(field.content.to_vec()),
                _ => {}
            }
        }
        return Some(raw);
    }
    None
}

/// One BER element: its identifier octet and its contents.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Splits the first element off `buf`. None when the encoding is not a
/// definite-length, single-octet-tag element that fits in `buf`.
fn next_tlv(buf: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    if tag & 0x1f == 0x1f {
        // High tag numbers: LDAP uses none.
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 & 0x80 == 0 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 8 {
            return None;
        }
        let octets = rest.get(..n)?;
        let len = octets.iter().try_fold(0usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?;
        (len, rest.get(n..)?)
    };
    let content = rest.get(..len)?;
    Some((Tlv { tag, content }, rest.get(len..)?))
}

/// The value of a BER INTEGER's contents, or None when it does not fit in
/// an i64 (then it is out of every range LDAP allows).
pub fn integer_value(content: &[u8]) -> Option<i64> {
    let (&first, _) = content.split_first()?;
    let negative = first & 0x80 != 0;
    // Leading octets that only repeat the sign carry no value.
    let pad = if negative { 0xff } else { 0x00 };
    let mut digits = content;
    while let [p, next, ..] = digits {
        if *p == pad && (next & 0x80 != 0) == negative {
            digits = digits.get(1..)?;
        } else {
            break;
        }
    }
    if digits.len() > 8 {
        return None;
    }
    let init: i64 = if negative { -1 } else { 0 };
    Some(
        digits
            .iter()
            .fold(init, |acc, b| (acc << 8) | i64::from(*b)),
    )
}

fn in_range(content: &[u8], low: i64) -> bool {
    integer_value(content).is_some_and(|v| (low..=MAX_INT).contains(&v))
}

/// Request tags (application class, RFC 4511 §4.2-§4.12) and their names.
fn request_name(number: u8) -> Option<&'static str> {
    Some(match number {
        0 => "BindRequest",
        2 => "UnbindRequest",
        3 => "SearchRequest",
        6 => "ModifyRequest",
        8 => "AddRequest",
        10 => "DelRequest",
        12 => "ModifyDNRequest",
        14 => "CompareRequest",
        16 => "AbandonRequest",
        23 => "ExtendedRequest",
        _ => return None,
    })
}

/// Response tags: a client must never send these.
fn response_name(number: u8) -> Option<&'static str> {
    Some(match number {
        1 => "BindResponse",
        4 => "SearchResultEntry",
        5 => "SearchResultDone",
        7 => "ModifyResponse",
        9 => "AddResponse",
        11 => "DelResponse",
        13 => "ModifyDNResponse",
        15 => "CompareResponse",
        19 => "SearchResultReference",
        24 => "ExtendedResponse",
        25 => "IntermediateResponse",
        _ => return None,
    })
}

/// Checks one complete message (`msg` holds exactly its bytes). An Err is
/// a protocol error that ends the session (RFC 4511 §4.1.1): the messageID
/// cannot be used, or the protocolOp is not a request.
pub fn inspect(msg: &[u8]) -> Result<RawFacts, String> {
    let Some((outer, _)) = next_tlv(msg) else {
        // Not parseable here: the decoder reports what is wrong.
        return Ok(RawFacts::default());
    };
    let Some((id, after_id)) = next_tlv(outer.content) else {
        return Err("the LDAPMessage has no messageID".into());
    };
    if id.tag != 0x02 {
        return Err(format!(
            "the messageID is not an INTEGER (tag 0x{:02x})",
            id.tag
        ));
    }
    match integer_value(id.content) {
        Some(0) => {
            return Err(
                "messageID 0 is reserved for unsolicited notifications (RFC 4511 §4.1.1.1)".into(),
            )
        }
        Some(v) if (1..=MAX_INT).contains(&v) => {}
        Some(v) => {
            return Err(format!(
                "messageID {v} is outside 1..{MAX_INT} (RFC 4511 §4.1.1)"
            ))
        }
        None => {
            return Err(format!(
                "messageID is outside 1..{MAX_INT} (RFC 4511 §4.1.1)"
            ))
        }
    }
    let Some((op, after_op)) = next_tlv(after_id) else {
        return Ok(RawFacts::default());
    };
    let sort = match next_tlv(after_op) {
        Some((controls, _)) if controls.tag == 0xa0 => sort_control(controls.content),
        _ => None,
    };
    let class = op.tag >> 6;
    let number = op.tag & 0x1f;
    if class == 1 {
        if let Some(name) = response_name(number) {
            return Err(format!(
                "a {name} (a response, tag [APPLICATION {number}]) was sent as a request"
            ));
        }
    }
    if class != 1 || request_name(number).is_none() {
        return Err(format!(
            "protocolOp tag 0x{:02x} is not an LDAP request",
            op.tag
        ));
    }
    let facts = match number {
        3 => RawFacts {
            search_limit_out_of_range: search_limits_out_of_range(op.content),
            ..RawFacts::default()
        },
        16 => RawFacts {
            abandon_target_out_of_range: !in_range(op.content, 0),
            ..RawFacts::default()
        },
        23 => RawFacts {
            extended_name_untagged_at: match next_tlv(op.content) {
                // The protocolOp's contents end where the controls begin.
                Some((name, _)) if name.tag == 0x04 => msg
                    .len()
                    .checked_sub(after_op.len())
                    .and_then(|end| end.checked_sub(op.content.len())),
                _ => None,
            },
            ..RawFacts::default()
        },
        _ => RawFacts::default(),
    };
    Ok(RawFacts {
        sort_control: sort,
        ..facts
    })
}

/// SearchRequest ::= SEQUENCE { baseObject, scope, derefAliases,
/// sizeLimit INTEGER (0..maxInt), timeLimit INTEGER (0..maxInt), ... }
fn search_limits_out_of_range(content: &[u8]) -> bool {
    let limits = next_tlv(content)
        .and_then(|(_base, r)| next_tlv(r))
        .and_then(|(_scope, r)| next_tlv(r))
        .and_then(|(_deref, r)| next_tlv(r))
        .and_then(|(size, r)| Some((size, next_tlv(r)?.0)));
    match limits {
        Some((size, time)) if size.tag == 0x02 && time.tag == 0x02 => {
            !in_range(size.content, 0) || !in_range(time.content, 0)
        }
        // Malformed: the decoder refuses it.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An LDAPMessage with `id` as the messageID's contents and `op` as the protocolOp.
    fn message(id: &[u8], op: &[u8]) -> Vec<u8> {
        let mut inner = vec![0x02, id.len() as u8];
        inner.extend_from_slice(id);
        inner.extend_from_slice(op);
        let mut m = vec![0x30, inner.len() as u8];
        m.extend_from_slice(&inner);
        m
    }

    const UNBIND: &[u8] = &[0x42, 0x00];

    #[test]
    fn integers_are_sign_extended_and_bounded() {
        assert_eq!(integer_value(&[0x05]), Some(5));
        assert_eq!(integer_value(&[0xfb]), Some(-5));
        assert_eq!(integer_value(&[0x00, 0xff]), Some(255));
        assert_eq!(integer_value(&[0x7f, 0xff, 0xff, 0xff]), Some(MAX_INT));
        assert_eq!(
            integer_value(&[0x00, 0x80, 0x00, 0x00, 0x00]),
            Some(1 << 31)
        );
        assert_eq!(integer_value(&[0x01, 0, 0, 0, 0, 0]), Some(1 << 40));
        assert_eq!(integer_value(&[0xff, 0xff, 0xff, 0xfb]), Some(-5));
        // Redundant sign octets (not DER, still BER) keep the value.
        assert_eq!(integer_value(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 7]), Some(7));
        assert_eq!(integer_value(&[1, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(integer_value(&[]), None);
    }

    #[test]
    fn message_ids_outside_one_to_max_int_are_protocol_errors() {
        assert_eq!(inspect(&message(&[0x01], UNBIND)), Ok(RawFacts::default()));
        assert_eq!(
            inspect(&message(&[0x7f, 0xff, 0xff, 0xff], UNBIND)),
            Ok(RawFacts::default())
        );
        for bad in [
            &[0x00][..],
            &[0xfb],
            &[0x00, 0x80, 0x00, 0x00, 0x00],
            &[0x01, 0, 0, 0, 0, 0],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            let e = inspect(&message(bad, UNBIND)).expect_err("refused");
            assert!(e.contains("messageID"), "{e}");
        }
    }

    #[test]
    fn response_tags_are_refused_as_requests() {
        for number in [1u8, 4, 5, 7, 9, 11, 13, 15, 19, 24, 25] {
            let op = [0x60 | number, 0x00];
            let e = inspect(&message(&[1], &op)).expect_err("a response");
            assert!(e.contains("was sent as a request"), "{e}");
        }
        // Unknown application tags and other classes are not requests either.
        assert!(inspect(&message(&[1], &[0x7e, 0x00])).is_err());
        assert!(inspect(&message(&[1], &[0x04, 0x00])).is_err());
        for number in [0u8, 3, 6, 8, 12, 14, 23] {
            assert!(inspect(&message(&[1], &[0x60 | number, 0x00])).is_ok());
        }
    }

    fn search_op(size: &[u8], time: &[u8]) -> Vec<u8> {
        let mut c = vec![0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00];
        c.extend_from_slice(&[0x02, size.len() as u8]);
        c.extend_from_slice(size);
        c.extend_from_slice(&[0x02, time.len() as u8]);
        c.extend_from_slice(time);
        // typesOnly, filter (present oc), attributes
        c.extend_from_slice(&[0x01, 0x01, 0x00, 0x87, 0x02, b'o', b'c', 0x30, 0x00]);
        let mut op = vec![0x63, c.len() as u8];
        op.extend_from_slice(&c);
        op
    }

    #[test]
    fn search_limits_outside_zero_to_max_int_are_flagged() {
        let flagged = |size: &[u8], time: &[u8]| {
            inspect(&message(&[1], &search_op(size, time)))
                .expect("a valid search")
                .search_limit_out_of_range
        };
        assert!(!flagged(&[0x00], &[0x00]));
        assert!(!flagged(&[0x7f, 0xff, 0xff, 0xff], &[0x0a]));
        assert!(flagged(&[0xff], &[0x00]));
        assert!(flagged(&[0x00], &[0xff]));
        assert!(flagged(&[0x01, 0, 0, 0, 0, 0], &[0x00]));
    }

    #[test]
    fn an_extended_request_name_sent_as_a_plain_string_is_located() {
        // ExtendedRequest { "1.2" } with the name as [0], then as libldap's
        // referral chase re-encodes it (universal OCTET STRING), with a control.
        let tagged = message(&[3], &[0x77, 0x05, 0x80, 0x03, b'1', b'.', b'2']);
        assert_eq!(
            inspect(&tagged).map(|f| f.extended_name_untagged_at),
            Ok(None)
        );
        let mut plain = message(&[3], &[0x77, 0x05, 0x04, 0x03, b'1', b'.', b'2']);
        // [0] Controls { { "1.3" } }
        plain.extend_from_slice(&[0xa0, 0x07, 0x30, 0x05, 0x04, 0x03, b'1', b'.', b'3']);
        plain[1] += 9;
        let at = inspect(&plain)
            .expect("an extended request")
            .extended_name_untagged_at;
        assert_eq!(at, Some(7));
        assert_eq!(plain.get(7), Some(&0x04));
    }

    #[test]
    fn abandon_targets_outside_the_range_are_flagged() {
        let facts = |target: &[u8]| {
            let mut op = vec![0x50, target.len() as u8];
            op.extend_from_slice(target);
            inspect(&message(&[2], &op)).expect("an abandon")
        };
        assert!(!facts(&[0x01]).abandon_target_out_of_range);
        assert!(facts(&[0xfb]).abandon_target_out_of_range);
        assert!(facts(&[0x01, 0, 0, 0, 0, 0]).abandon_target_out_of_range);
    }
}
