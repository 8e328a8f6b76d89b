//! Request controls: which are understood, and the criticality rule
//! (RFC 4511 §4.1.11): an unsupported critical control fails the operation
//! with unavailableCriticalExtension, a non-critical one is ignored; so is
//! a control attached to an operation it means nothing for.
//!
//! The values of the controls ldap3_proto leaves undecoded (VLV, assertion,
//! pre-read, post-read; sort arrives raw from the server layer so its
//! criticality survives) are read here with ldap3_lber, and the response
//! controls are encoded here.

use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::StructureTag;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapFilter, LdapOp, LdapResultCode};

use crate::directory::{EntryControls, SearchEntry};
use crate::model::oid;
pub use crate::model::oid::MANAGE_DSA_IT as OID_MANAGE_DSA_IT;
pub use crate::model::oid::PAGED_RESULTS as OID_PAGED_RESULTS;

/// Every request control the server acts on, as the root DSE lists them.
pub const SUPPORTED: [&str; 10] = [
    oid::PAGED_RESULTS,
    oid::PASSWORD_POLICY_REQUEST,
    oid::MANAGE_DSA_IT,
    oid::SORT_REQUEST,
    oid::VLV_REQUEST,
    oid::ASSERTION,
    oid::PRE_READ,
    oid::POST_READ,
    oid::DONT_USE_COPY,
    oid::SYNC_REQUEST,
];

/// One key of a sort request (RFC 2891 §1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub attr: String,
    pub rule: Option<String>,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortRequest {
    pub keys: Vec<SortKey>,
    pub critical: bool,
}

/// Where a virtual list view's target is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlvTarget {
    ByOffset { offset: i64, content_count: i64 },
    GreaterOrEqual(Vec<u8>),
}

/// A virtual list view request (draft-ietf-ldapext-ldapv3-vlv-09 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlvRequest {
    pub before: usize,
    pub after: usize,
    pub target: VlvTarget,
    pub context_id: Option<Vec<u8>>,
}

/// The Sync Request control (RFC 4533 §2.2).
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub persist: bool,
    pub cookie: Option<Vec<u8>>,
    pub reload_hint: bool,
}

#[derive(Debug, Default, Clone)]
pub struct RequestControls {
    pub paged: Option<(i64, Vec<u8>)>,
    pub manage_dsa_it: bool,
    pub sort: Option<SortRequest>,
    pub vlv: Option<VlvRequest>,
    pub assertion: Option<LdapFilter>,
    pub pre_read: Option<Vec<String>>,
    pub post_read: Option<Vec<String>>,
    /// RFC 6171: the client wants no copy answering: a read-only replica
    /// refers the read to its supplier (ops::copy_refusal); elsewhere the
    /// data is the original and this changes nothing.
    pub dont_use_copy: bool,
    /// RFC 4533 content synchronisation (ops::sync).
    pub sync: Option<SyncRequest>,
    /// Critical controls that mean nothing for some operations, with the
    /// operations they apply to, checked per operation by [`Self::check_applicable`].
    critical: Vec<(&'static str, &'static [Applies])>,
}

/// Operations a control may be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    Search,
    Compare,
    Add,
    Modify,
    Delete,
    ModDn,
}

const READS: &[Applies] = &[Applies::Search, Applies::Compare];
const SEARCH: &[Applies] = &[Applies::Search];
const ASSERTABLE: &[Applies] = &[
    Applies::Search,
    Applies::Compare,
    Applies::Add,
    Applies::Modify,
    Applies::Delete,
    Applies::ModDn,
];
const PRE_READABLE: &[Applies] = &[Applies::Modify, Applies::Delete, Applies::ModDn];
const POST_READABLE: &[Applies] = &[Applies::Add, Applies::Modify, Applies::ModDn];

/// Why the controls of a request cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// A critical control the server does not support (or not for this operation).
    Unsupported(String),
    /// A control whose value cannot be decoded.
    Malformed { oid: String, problem: String },
}

impl ControlError {
    pub fn code(&self) -> LdapResultCode {
        match self {
            ControlError::Unsupported(_) => LdapResultCode::UnavailableCriticalExtension,
            ControlError::Malformed { .. } => LdapResultCode::ProtocolError,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ControlError::Unsupported(oid) => format!("critical control {oid} is not supported"),
            ControlError::Malformed { oid, problem } => {
                format!("the value of control {oid} is not valid: {problem}")
            }
        }
    }
}

fn malformed(oid: &str, problem: impl Into<String>) -> ControlError {
    ControlError::Malformed {
        oid: oid.to_string(),
        problem: problem.into(),
    }
}

/// Parses the controls; Err names the first unusable control.
pub fn parse(ctrls: &[LdapControl]) -> Result<RequestControls, ControlError> {
    let mut out = RequestControls::default();
    for c in ctrls {
        match c {
            LdapControl::SimplePagedResults { size, cookie } => {
                out.paged = Some((*size, cookie.clone()));
            }
            LdapControl::ManageDsaIT { .. } => out.manage_dsa_it = true,
            // The server layer hands sort controls over raw; this one was
            // decoded without its criticality, so it is taken as critical:
            // refusing is safer than answering unsorted.
            LdapControl::ServerSort { sort_requests } => {
                out.sort = Some(SortRequest {
                    keys: sort_requests
                        .iter()
                        .map(|k| SortKey {
                            attr: k.attribute_name.clone(),
                            rule: k.ordering_rule.clone(),
                            reverse: k.reverse_order,
                        })
                        .collect(),
                    critical: true,
                });
                out.critical.push((oid::SORT_REQUEST, SEARCH));
            }
            LdapControl::Unknown {
                oid: name,
                criticality,
                value,
            } => {
                let value = value.as_deref();
                let critical = *criticality;
                let applies: &'static [Applies] = match name.as_str() {
                    oid::SORT_REQUEST => {
                        out.sort = Some(SortRequest {
                            keys: parse_sort(value)?,
                            critical,
                        });
                        SEARCH
                    }
                    oid::VLV_REQUEST => {
                        out.vlv = Some(parse_vlv(value)?);
                        SEARCH
                    }
                    oid::ASSERTION => {
                        out.assertion = Some(parse_assertion(value)?);
                        ASSERTABLE
                    }
                    oid::PRE_READ => {
                        out.pre_read = Some(parse_attribute_list(oid::PRE_READ, value)?);
                        PRE_READABLE
                    }
                    oid::POST_READ => {
                        out.post_read = Some(parse_attribute_list(oid::POST_READ, value)?);
                        POST_READABLE
                    }
                    oid::DONT_USE_COPY => {
                        if value.is_some() {
                            return Err(malformed(oid::DONT_USE_COPY, "it takes no value"));
                        }
                        out.dont_use_copy = true;
                        READS
                    }
                    _ if critical => return Err(ControlError::Unsupported(name.clone())),
                    _ => continue,
                };
                if critical {
                    let known = SUPPORTED.iter().find(|o| **o == name.as_str());
                    if let Some(known) = known {
                        out.critical.push((known, applies));
                    }
                }
            }
            LdapControl::SyncRequest {
                criticality,
                mode,
                cookie,
                reload_hint,
            } => {
                if out.sync.is_some() {
                    return Err(malformed(oid::SYNC_REQUEST, "the control is given twice"));
                }
                out.sync = Some(SyncRequest {
                    persist: *mode == ldap3_proto::proto::SyncRequestMode::RefreshAndPersist,
                    cookie: cookie.clone(),
                    reload_hint: *reload_hint,
                });
                if *criticality {
                    out.critical.push((oid::SYNC_REQUEST, SEARCH));
                }
            }
            // Understood on every operation: it only asks for the
            // response control where a policy decision is made (bind,
            // password changes); elsewhere there is nothing to report.
            LdapControl::PasswordPolicyRequest { .. } => {}
            LdapControl::SearchOptions {
                criticality: true, ..
            } => return Err(ControlError::Unsupported(oid::AD_SEARCH_OPTIONS.into())),
            LdapControl::ShowDeleted { criticality: true } => {
                return Err(ControlError::Unsupported(oid::AD_SHOW_DELETED.into()))
            }
            LdapControl::SdFlags {
                criticality: true, ..
            } => return Err(ControlError::Unsupported(oid::AD_SD_FLAGS.into())),
            LdapControl::ExtendedDn {
                criticality: true, ..
            } => return Err(ControlError::Unsupported(oid::AD_EXTENDED_DN.into())),
            _ => {}
        }
    }
    Ok(out)
}

impl RequestControls {
    /// RFC 4511 §4.1.11: a critical control that is "inappropriate for the
    /// operation" fails it with unavailableCriticalExtension; a
    /// non-critical one is ignored (the operation's module never looks at it).
    pub fn check_applicable(&self, op: &LdapOp) -> Result<(), ControlError> {
        let kind = match op {
            LdapOp::SearchRequest(_) => Some(Applies::Search),
            LdapOp::CompareRequest(_) => Some(Applies::Compare),
            LdapOp::AddRequest(_) => Some(Applies::Add),
            LdapOp::ModifyRequest(_) => Some(Applies::Modify),
            LdapOp::DelRequest(_) => Some(Applies::Delete),
            LdapOp::ModifyDNRequest(_) => Some(Applies::ModDn),
            _ => None,
        };
        for (name, applies) in &self.critical {
            if !kind.is_some_and(|k| applies.contains(&k)) {
                return Err(ControlError::Unsupported(format!(
                    "{name} (it does not apply to this operation)"
                )));
            }
        }
        Ok(())
    }

    /// The target-entry controls of a write of kind `op`, without those
    /// that do not apply to it.
    pub fn entry_controls(&self, op: &LdapOp) -> EntryControls {
        let (pre, post) = match op {
            LdapOp::AddRequest(_) => (false, true),
            LdapOp::ModifyRequest(_) | LdapOp::ModifyDNRequest(_) => (true, true),
            LdapOp::DelRequest(_) => (true, false),
            _ => (false, false),
        };
        EntryControls {
            assertion: self.assertion.clone(),
            pre_read: self.pre_read.clone().filter(|_| pre),
            post_read: self.post_read.clone().filter(|_| post),
        }
    }
}

fn parse_value(oid: &str, value: Option<&[u8]>) -> Result<StructureTag, ControlError> {
    let bytes = value.ok_or_else(|| malformed(oid, "the control has no value"))?;
    let (rest, tag) = Parser::default()
        .parse(bytes)
        .map_err(|_| malformed(oid, "it is not valid BER"))?;
    if !rest.is_empty() {
        return Err(malformed(oid, "bytes follow the value"));
    }
    Ok(tag)
}

fn sequence(oid: &str, tag: StructureTag) -> Result<Vec<StructureTag>, ControlError> {
    if tag.class != TagClass::Universal || tag.id != 16 {
        return Err(malformed(oid, "a SEQUENCE was expected"));
    }
    tag.expect_constructed()
        .ok_or_else(|| malformed(oid, "a constructed SEQUENCE was expected"))
}

fn octets(oid: &str, tag: StructureTag, what: &str) -> Result<Vec<u8>, ControlError> {
    tag.expect_primitive()
        .ok_or_else(|| malformed(oid, format!("{what} is not an OCTET STRING")))
}

fn text(oid: &str, tag: StructureTag, what: &str) -> Result<String, ControlError> {
    String::from_utf8(octets(oid, tag, what)?)
        .map_err(|_| malformed(oid, format!("{what} is not UTF-8")))
}

/// The value of a BER INTEGER's contents; None past 64 bits.
fn integer_value(content: &[u8]) -> Option<i64> {
    let (&first, _) = content.split_first()?;
    if content.len() > 8 {
        return None;
    }
    let init: i64 = if first & 0x80 != 0 { -1 } else { 0 };
    Some(
        content
            .iter()
            .fold(init, |acc, b| (acc << 8) | i64::from(*b)),
    )
}

/// A BER INTEGER's value within 0..=maxInt.
fn small_int(oid: &str, tag: StructureTag, what: &str) -> Result<i64, ControlError> {
    let bytes = tag
        .expect_primitive()
        .ok_or_else(|| malformed(oid, format!("{what} is not an INTEGER")))?;
    integer_value(&bytes)
        .filter(|v| (0..=i64::from(i32::MAX)).contains(v))
        .ok_or_else(|| malformed(oid, format!("{what} is outside 0..maxInt")))
}

/// SortKeyList ::= SEQUENCE OF SEQUENCE { attributeType AttributeDescription,
///   orderingRule [0] MatchingRuleId OPTIONAL, reverseOrder [1] BOOLEAN DEFAULT FALSE }
fn parse_sort(value: Option<&[u8]>) -> Result<Vec<SortKey>, ControlError> {
    let o = oid::SORT_REQUEST;
    let mut keys = Vec::new();
    for key in sequence(o, parse_value(o, value)?)? {
        let mut parts = sequence(o, key)?.into_iter();
        let attr = match parts.next() {
            Some(t) if t.class == TagClass::Universal && t.id == 4 => text(o, t, "attributeType")?,
            _ => return Err(malformed(o, "a sort key has no attributeType")),
        };
        let mut k = SortKey {
            attr,
            rule: None,
            reverse: false,
        };
        for t in parts {
            match (t.class, t.id) {
                (TagClass::Context, 0) if k.rule.is_none() => {
                    k.rule = Some(text(o, t, "orderingRule")?)
                }
                (TagClass::Context, 1) => {
                    let b = t
                        .expect_primitive()
                        .ok_or_else(|| malformed(o, "reverseOrder is not a BOOLEAN"))?;
                    k.reverse = b.first().is_some_and(|x| *x != 0);
                }
                _ => return Err(malformed(o, "unexpected element in a sort key")),
            }
        }
        keys.push(k);
    }
    if keys.is_empty() {
        return Err(malformed(o, "no sort key"));
    }
    Ok(keys)
}

fn parse_vlv(value: Option<&[u8]>) -> Result<VlvRequest, ControlError> {
    let o = oid::VLV_REQUEST;
    let mut parts = sequence(o, parse_value(o, value)?)?.into_iter();
    let mut next = |what: &str| {
        parts
            .next()
            .ok_or_else(|| malformed(o, format!("{what} is missing")))
    };
    let before = small_int(o, next("beforeCount")?, "beforeCount")?;
    let after = small_int(o, next("afterCount")?, "afterCount")?;
    let target = next("target")?;
    let target = match (target.class, target.id) {
        (TagClass::Context, 0) => {
            let inner = target
                .expect_constructed()
                .ok_or_else(|| malformed(o, "byOffset is not a SEQUENCE"))?;
            let mut inner = inner.into_iter();
            let offset = inner
                .next()
                .ok_or_else(|| malformed(o, "byOffset has no offset"))?;
            let count = inner
                .next()
                .ok_or_else(|| malformed(o, "byOffset has no contentCount"))?;
            VlvTarget::ByOffset {
                offset: small_int(o, offset, "offset")?,
                content_count: small_int(o, count, "contentCount")?,
            }
        }
        (TagClass::Context, 1) => {
            VlvTarget::GreaterOrEqual(octets(o, target, "greaterThanOrEqual")?)
        }
        _ => {
            return Err(malformed(
                o,
                "the target is neither byOffset nor greaterThanOrEqual",
            ))
        }
    };
    let context_id = match parts.next() {
        Some(t) => Some(octets(o, t, "contextID")?),
        None => None,
    };
    Ok(VlvRequest {
        before: usize::try_from(before).unwrap_or(0),
        after: usize::try_from(after).unwrap_or(0),
        target,
        context_id,
    })
}

fn parse_assertion(value: Option<&[u8]>) -> Result<LdapFilter, ControlError> {
    let o = oid::ASSERTION;
    let tag = parse_value(o, value)?;
    LdapFilter::try_from(tag).map_err(|e| malformed(o, format!("not an LDAP filter ({e:?})")))
}

/// AttributeSelection ::= SEQUENCE OF selector LDAPString (RFC 4527 §3.1).
fn parse_attribute_list(o: &str, value: Option<&[u8]>) -> Result<Vec<String>, ControlError> {
    sequence(o, parse_value(o, value)?)?
        .into_iter()
        .map(|t| text(o, t, "an attribute selector"))
        .collect()
}

// ------------------------------------------------------------ response controls

fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let be = (len as u64).to_be_bytes();
    let skip = be.iter().take_while(|b| **b == 0).count();
    let digits = be.get(skip..).unwrap_or_default();
    out.push(0x80 | digits.len() as u8);
    out.extend_from_slice(digits);
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    put_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// An INTEGER or ENUMERATED (by `tag`) in minimal two's complement.
fn int(tag: u8, n: i64) -> Vec<u8> {
    let be = n.to_be_bytes();
    let redundant = be
        .windows(2)
        .take_while(|w| {
            matches!(w, [b, next] if (*b == 0x00 && next & 0x80 == 0) || (*b == 0xff && next & 0x80 != 0))
        })
        .count();
    tlv(tag, be.get(redundant..).unwrap_or_default())
}

fn response(oid: &str, value: Vec<u8>) -> LdapControl {
    LdapControl::Unknown {
        oid: oid.to_string(),
        criticality: false,
        value: Some(value),
    }
}

/// SortResult ::= SEQUENCE { sortResult ENUMERATED,
///   attributeType [0] AttributeDescription OPTIONAL } (RFC 2891 §1.2).
pub fn sort_response(code: i64, attr: Option<&str>) -> LdapControl {
    let mut content = int(0x0a, code);
    if let Some(a) = attr {
        content.extend(tlv(0x80, a.as_bytes()));
    }
    response(oid::SORT_RESPONSE, tlv(0x30, &content))
}

/// VirtualListViewResponse ::= SEQUENCE { targetPosition INTEGER,
///   contentCount INTEGER, virtualListViewResult ENUMERATED, contextID OCTET STRING OPTIONAL }
pub fn vlv_response(
    position: usize,
    count: usize,
    code: i64,
    context_id: Option<&[u8]>,
) -> LdapControl {
    let clamp = |n: usize| {
        i64::try_from(n)
            .unwrap_or(i64::MAX)
            .min(i64::from(i32::MAX))
    };
    let mut content = int(0x02, clamp(position));
    content.extend(int(0x02, clamp(count)));
    content.extend(int(0x0a, code));
    if let Some(id) = context_id {
        content.extend(tlv(0x04, id));
    }
    response(oid::VLV_RESPONSE, tlv(0x30, &content))
}

/// The pre-read or post-read response: the entry as a SearchResultEntry PDU.
pub fn read_entry_response(oid: &str, entry: &SearchEntry) -> LdapControl {
    let mut attrs = Vec::new();
    for (name, values) in &entry.attrs {
        let mut vals = Vec::new();
        for v in values {
            vals.extend(tlv(0x04, v));
        }
        let mut attr = tlv(0x04, name.as_bytes());
        attr.extend(tlv(0x31, &vals));
        attrs.extend(tlv(0x30, &attr));
    }
    let mut content = tlv(0x04, entry.dn.as_bytes());
    content.extend(tlv(0x30, &attrs));
    response(oid, tlv(0x64, &content))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(oid: &str, critical: bool, value: Option<Vec<u8>>) -> LdapControl {
        LdapControl::Unknown {
            oid: oid.into(),
            criticality: critical,
            value,
        }
    }

    #[test]
    fn sort_keys_are_read_with_rule_and_order() {
        // { { "cn" }, { "sn", [0] "caseExactOrderingMatch", [1] TRUE } }
        let k1 = tlv(0x30, &tlv(0x04, b"cn"));
        let mut k2 = tlv(0x04, b"sn");
        k2.extend(tlv(0x80, b"caseExactOrderingMatch"));
        k2.extend(tlv(0x81, &[0xff]));
        let mut list = k1;
        list.extend(tlv(0x30, &k2));
        let c = parse(&[unknown(oid::SORT_REQUEST, true, Some(tlv(0x30, &list)))]).unwrap();
        let sort = c.sort.unwrap();
        assert!(sort.critical);
        assert_eq!(
            sort.keys,
            vec![
                SortKey {
                    attr: "cn".into(),
                    rule: None,
                    reverse: false
                },
                SortKey {
                    attr: "sn".into(),
                    rule: Some("caseExactOrderingMatch".into()),
                    reverse: true
                }
            ]
        );
        let empty = parse(&[unknown(oid::SORT_REQUEST, false, Some(tlv(0x30, &[])))]);
        assert!(matches!(empty, Err(ControlError::Malformed { .. })));
    }

    #[test]
    fn vlv_requests_by_offset_and_by_value() {
        let mut by_offset = int(0x02, 1);
        by_offset.extend(int(0x02, 2));
        let mut target = int(0x02, 3);
        target.extend(int(0x02, 0));
        by_offset.extend(tlv(0xa0, &target));
        let c = parse(&[unknown(oid::VLV_REQUEST, true, Some(tlv(0x30, &by_offset)))]).unwrap();
        assert_eq!(
            c.vlv.unwrap(),
            VlvRequest {
                before: 1,
                after: 2,
                target: VlvTarget::ByOffset {
                    offset: 3,
                    content_count: 0
                },
                context_id: None
            }
        );
        let mut by_value = int(0x02, 0);
        by_value.extend(int(0x02, 5));
        by_value.extend(tlv(0x81, b"m"));
        by_value.extend(tlv(0x04, b"ctx"));
        let v = parse(&[unknown(oid::VLV_REQUEST, true, Some(tlv(0x30, &by_value)))])
            .unwrap()
            .vlv
            .unwrap();
        assert_eq!(v.target, VlvTarget::GreaterOrEqual(b"m".to_vec()));
        assert_eq!(v.context_id.as_deref(), Some(&b"ctx"[..]));
        // A negative beforeCount is refused.
        let mut bad = int(0x02, -1);
        bad.extend(int(0x02, 0));
        bad.extend(tlv(0x81, b"m"));
        assert!(parse(&[unknown(oid::VLV_REQUEST, true, Some(tlv(0x30, &bad)))]).is_err());
    }

    #[test]
    fn read_controls_and_applicability() {
        let list = {
            let mut l = tlv(0x04, b"cn");
            l.extend(tlv(0x04, b"entryCSN"));
            tlv(0x30, &l)
        };
        let c = parse(&[unknown(oid::PRE_READ, true, Some(list))]).unwrap();
        assert_eq!(
            c.pre_read,
            Some(vec!["cn".to_string(), "entryCSN".to_string()])
        );
        let delete = LdapOp::DelRequest("cn=x".into());
        assert!(c.check_applicable(&delete).is_ok());
        let add = LdapOp::AddRequest(ldap3_proto::proto::LdapAddRequest {
            dn: "cn=x".into(),
            attributes: Vec::new(),
        });
        assert!(matches!(
            c.check_applicable(&add),
            Err(ControlError::Unsupported(_))
        ));
        assert_eq!(c.entry_controls(&add).pre_read, None);
        // An unknown critical control is refused, a non-critical one ignored.
        assert!(parse(&[unknown("1.2.3.4", true, None)]).is_err());
        assert!(parse(&[unknown("1.2.3.4", false, None)]).is_ok());
    }

    #[test]
    fn assertion_filters_decode() {
        // (cn=x): [3] { "cn", "x" }
        let mut ava = tlv(0x04, b"cn");
        ava.extend(tlv(0x04, b"x"));
        let c = parse(&[unknown(oid::ASSERTION, true, Some(tlv(0xa3, &ava)))]).unwrap();
        assert_eq!(
            c.assertion,
            Some(LdapFilter::Equality("cn".into(), "x".into()))
        );
        assert!(parse(&[unknown(oid::ASSERTION, true, Some(vec![0x30]))]).is_err());
    }

    #[test]
    fn response_controls_encode() {
        let LdapControl::Unknown { value, .. } = sort_response(18, Some("cn")) else {
            panic!("raw control expected")
        };
        assert_eq!(
            value.unwrap(),
            vec![0x30, 0x07, 0x0a, 0x01, 18, 0x80, 0x02, b'c', b'n']
        );
        let LdapControl::Unknown { value, .. } = vlv_response(3, 200, 0, None) else {
            panic!("raw control expected")
        };
        assert_eq!(
            value.unwrap(),
            vec![0x30, 0x0a, 0x02, 0x01, 3, 0x02, 0x02, 0x00, 0xc8, 0x0a, 0x01, 0]
        );
    }
}
