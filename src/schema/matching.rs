//! Matching rules (RFC 4517 §4.2, RFC 4530, and the Active Directory bit
//! rules): code-defined normalisation and ordering. String preparation
//! follows RFC 4518 in simplified form: characters that are whitespace map to
//! SPACE, controls and zero-width characters are dropped, case is folded with
//! Unicode lowercase (no NFKC), and insignificant spaces are removed (leading
//! and trailing spaces dropped, inner runs collapsed to one).

use super::syntax::{self, Syntax};
use super::{parser, Schema};
use crate::model::Dn;
use std::cmp::Ordering;

/// What a rule is used for in an attribute type or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleKind {
    Equality,
    Ordering,
    Substrings,
    /// Only usable in extensible match filters.
    Extensible,
}

/// How values are prepared before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prep {
    CaseIgnore,
    CaseExact,
    Ia5Ignore,
    Ia5Exact,
    Numeric,
    Telephone,
    Integer,
    Dn,
    Octet,
    Time,
    Oid,
    Uuid,
    Boolean,
    BitString,
    CaseIgnoreList,
    UniqueMember,
    IntegerFirst,
    OidFirst,
    DirStringFirst,
    BitAnd,
    BitOr,
}

pub(crate) struct RuleInfo {
    pub oid: &'static str,
    pub name: &'static str,
    /// Assertion syntax OID.
    pub syntax: &'static str,
    pub kind: RuleKind,
    pub prep: Prep,
}

const fn r(
    oid: &'static str,
    name: &'static str,
    syntax: &'static str,
    kind: RuleKind,
    prep: Prep,
) -> RuleInfo {
    RuleInfo {
        oid,
        name,
        syntax,
        kind,
        prep,
    }
}

const DSTRING: &str = "1.3.6.1.4.1.1466.115.121.1.15";
const IA5: &str = "1.3.6.1.4.1.1466.115.121.1.26";
const INTEGER: &str = "1.3.6.1.4.1.1466.115.121.1.27";
const NUMERIC: &str = "1.3.6.1.4.1.1466.115.121.1.36";
const SUBSTRING: &str = "1.3.6.1.4.1.1466.115.121.1.58";
const OCTET: &str = "1.3.6.1.4.1.1466.115.121.1.40";
const GTIME: &str = "1.3.6.1.4.1.1466.115.121.1.24";
const OID: &str = "1.3.6.1.4.1.1466.115.121.1.38";
const UUID: &str = "1.3.6.1.1.16.1";

use Prep as P;
use RuleKind::{Equality as EQ, Extensible as EXT, Ordering as ORD, Substrings as SUB};

pub(crate) const RULES: &[RuleInfo] = &[
    r("2.5.13.0", "objectIdentifierMatch", OID, EQ, P::Oid),
    r(
        "2.5.13.1",
        "distinguishedNameMatch",
        "1.3.6.1.4.1.1466.115.121.1.12",
        EQ,
        P::Dn,
    ),
    r("2.5.13.2", "caseIgnoreMatch", DSTRING, EQ, P::CaseIgnore),
    r(
        "2.5.13.3",
        "caseIgnoreOrderingMatch",
        DSTRING,
        ORD,
        P::CaseIgnore,
    ),
    r(
        "2.5.13.4",
        "caseIgnoreSubstringsMatch",
        SUBSTRING,
        SUB,
        P::CaseIgnore,
    ),
    r("2.5.13.5", "caseExactMatch", DSTRING, EQ, P::CaseExact),
    r(
        "2.5.13.6",
        "caseExactOrderingMatch",
        DSTRING,
        ORD,
        P::CaseExact,
    ),
    r(
        "2.5.13.7",
        "caseExactSubstringsMatch",
        SUBSTRING,
        SUB,
        P::CaseExact,
    ),
    r("2.5.13.8", "numericStringMatch", NUMERIC, EQ, P::Numeric),
    r(
        "2.5.13.9",
        "numericStringOrderingMatch",
        NUMERIC,
        ORD,
        P::Numeric,
    ),
    r(
        "2.5.13.10",
        "numericStringSubstringsMatch",
        SUBSTRING,
        SUB,
        P::Numeric,
    ),
    r(
        "2.5.13.11",
        "caseIgnoreListMatch",
        "1.3.6.1.4.1.1466.115.121.1.41",
        EQ,
        P::CaseIgnoreList,
    ),
    r(
        "2.5.13.12",
        "caseIgnoreListSubstringsMatch",
        SUBSTRING,
        SUB,
        P::CaseIgnoreList,
    ),
    r(
        "2.5.13.13",
        "booleanMatch",
        "1.3.6.1.4.1.1466.115.121.1.7",
        EQ,
        P::Boolean,
    ),
    r("2.5.13.14", "integerMatch", INTEGER, EQ, P::Integer),
    r(
        "2.5.13.15",
        "integerOrderingMatch",
        INTEGER,
        ORD,
        P::Integer,
    ),
    r(
        "2.5.13.16",
        "bitStringMatch",
        "1.3.6.1.4.1.1466.115.121.1.6",
        EQ,
        P::BitString,
    ),
    r("2.5.13.17", "octetStringMatch", OCTET, EQ, P::Octet),
    r(
        "2.5.13.18",
        "octetStringOrderingMatch",
        OCTET,
        ORD,
        P::Octet,
    ),
    r(
        "2.5.13.19",
        "octetStringSubstringsMatch",
        OCTET,
        SUB,
        P::Octet,
    ),
    r(
        "2.5.13.20",
        "telephoneNumberMatch",
        "1.3.6.1.4.1.1466.115.121.1.50",
        EQ,
        P::Telephone,
    ),
    r(
        "2.5.13.21",
        "telephoneNumberSubstringsMatch",
        SUBSTRING,
        SUB,
        P::Telephone,
    ),
    r(
        "2.5.13.23",
        "uniqueMemberMatch",
        "1.3.6.1.4.1.1466.115.121.1.34",
        EQ,
        P::UniqueMember,
    ),
    r("2.5.13.27", "generalizedTimeMatch", GTIME, EQ, P::Time),
    r(
        "2.5.13.28",
        "generalizedTimeOrderingMatch",
        GTIME,
        ORD,
        P::Time,
    ),
    r(
        "2.5.13.29",
        "integerFirstComponentMatch",
        INTEGER,
        EQ,
        P::IntegerFirst,
    ),
    r(
        "2.5.13.30",
        "objectIdentifierFirstComponentMatch",
        OID,
        EQ,
        P::OidFirst,
    ),
    r(
        "2.5.13.31",
        "directoryStringFirstComponentMatch",
        DSTRING,
        EQ,
        P::DirStringFirst,
    ),
    r(
        "1.3.6.1.4.1.1466.109.114.1",
        "caseExactIA5Match",
        IA5,
        EQ,
        P::Ia5Exact,
    ),
    r(
        "1.3.6.1.4.1.1466.109.114.2",
        "caseIgnoreIA5Match",
        IA5,
        EQ,
        P::Ia5Ignore,
    ),
    r(
        "1.3.6.1.4.1.1466.109.114.3",
        "caseIgnoreIA5SubstringsMatch",
        SUBSTRING,
        SUB,
        P::Ia5Ignore,
    ),
    // Not in RFC 4517; OpenLDAP's OID, which is what existing schemas reference.
    r(
        "1.3.6.1.4.1.4203.1.2.1",
        "caseExactIA5SubstringsMatch",
        SUBSTRING,
        SUB,
        P::Ia5Exact,
    ),
    r("1.3.6.1.1.16.2", "uuidMatch", UUID, EQ, P::Uuid),
    r("1.3.6.1.1.16.3", "uuidOrderingMatch", UUID, ORD, P::Uuid),
    r(
        "1.2.840.113556.1.4.803",
        "integerBitAndMatch",
        INTEGER,
        EXT,
        P::BitAnd,
    ),
    r(
        "1.2.840.113556.1.4.804",
        "integerBitOrMatch",
        INTEGER,
        EXT,
        P::BitOr,
    ),
];

// ---------------------------------------------------------------- string preparation

fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{1806}'
            | '\u{180B}'..='\u{180D}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

/// Insignificant-space handling plus optional case folding. A string with
/// nothing significant prepares to a single space, so it still differs from
/// no value at all in index keys.
pub(crate) fn prep_string(s: &str, fold: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut pending_space = false;
    if s.is_ascii() {
        for &b in s.as_bytes() {
            match b {
                b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r' => pending_space = true,
                0..=0x1F | 0x7F => {}
                _ => {
                    if pending_space && !out.is_empty() {
                        out.push(b' ');
                    }
                    pending_space = false;
                    out.push(if fold { b.to_ascii_lowercase() } else { b });
                }
            }
        }
    } else {
        let mut buf = [0u8; 4];
        for c in s.chars() {
            if c.is_whitespace() {
                pending_space = true;
                continue;
            }
            if c.is_control() || is_ignorable(c) {
                continue;
            }
            if pending_space && !out.is_empty() {
                out.push(b' ');
            }
            pending_space = false;
            if fold {
                for l in c.to_lowercase() {
                    out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
                }
            } else {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    if out.is_empty() {
        out.push(b' ');
    }
    out
}

fn is_telephone_insignificant(c: char) -> bool {
    c == '-'
        || c.is_whitespace()
        || matches!(
            c,
            '\u{058A}' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE63}' | '\u{FF0D}'
        )
}

fn prep_telephone(s: &str) -> Vec<u8> {
    let kept: String = s
        .chars()
        .filter(|&c| !is_telephone_insignificant(c))
        .collect();
    prep_string(&kept, true)
}

fn prep_postal(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(b'$');
        }
        for &b in &prep_string(line, true) {
            match b {
                b'$' => out.extend_from_slice(b"\\24"),
                b'\\' => out.extend_from_slice(b"\\5c"),
                _ => out.push(b),
            }
        }
    }
    out
}

/// First component of a SEQUENCE-like value such as `( 2.5.4.3 NAME ... )`:
/// a quoted string (unescaped) or a bare word.
fn first_component(s: &str) -> Option<String> {
    let rest = s.trim_start().strip_prefix('(')?.trim_start();
    if let Some(q) = rest.strip_prefix('\'') {
        let end = q.find('\'')?;
        return parser::unescape_qdstring(q.get(..end)?.as_bytes()).ok();
    }
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ')')
        .unwrap_or(rest.len());
    Some(rest.get(..end)?.to_string())
}

fn starts_with_paren(v: &[u8]) -> bool {
    v.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'(')
}

// ---------------------------------------------------------------- normalisation

/// The equality form of `v` under `prep`; None when `v` is not a valid
/// value/assertion for the rule.
pub(crate) fn normalize(schema: &Schema, prep: Prep, v: &[u8]) -> Option<Vec<u8>> {
    let text = || std::str::from_utf8(v).ok();
    match prep {
        P::CaseIgnore => Some(prep_string(text()?, true)),
        P::CaseExact => Some(prep_string(text()?, false)),
        P::Ia5Ignore if v.is_ascii() => Some(prep_string(text()?, true)),
        P::Ia5Exact if v.is_ascii() => Some(prep_string(text()?, false)),
        P::Ia5Ignore | P::Ia5Exact => None,
        P::Numeric => {
            if !v.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
                return None;
            }
            Some(v.iter().copied().filter(|&b| b != b' ').collect())
        }
        P::Telephone => Some(prep_telephone(text()?)),
        P::Integer | P::BitAnd | P::BitOr => syntax::is_integer(v).then(|| v.to_vec()),
        P::Dn => Dn::parse(text()?)
            .ok()
            .map(|dn| schema.normalize_dn(&dn).into_bytes()),
        P::Octet => Some(v.to_vec()),
        P::Time => syntax::parse_generalized_time(v)
            .map(|n| syntax::format_generalized_time(n).into_bytes()),
        P::Oid => {
            let s = text()?.trim_matches(' ');
            parser::is_oid(s).then(|| schema.resolve_oid(s).into_bytes())
        }
        P::Uuid => syntax::is_uuid(v).then(|| v.to_ascii_lowercase()),
        P::Boolean => (v == b"TRUE" || v == b"FALSE").then(|| v.to_vec()),
        P::BitString => syntax::is_bit_string(v).then(|| v.to_vec()),
        P::CaseIgnoreList => syntax::postal_lines(v).map(|lines| prep_postal(&lines)),
        P::UniqueMember => {
            let (dn, uid) = syntax::split_name_uid(text()?)?;
            let mut out = schema.normalize_dn(&dn).into_bytes();
            if let Some(uid) = uid {
                out.push(b'#');
                out.extend_from_slice(uid.as_bytes());
            }
            Some(out)
        }
        // First-component rules compare a whole value such as "( 1 ... )"
        // against a bare assertion; values of the component's own syntax
        // never start with '(', so one function serves both sides.
        P::IntegerFirst => {
            if starts_with_paren(v) {
                let c = first_component(text()?)?;
                syntax::is_integer(c.as_bytes()).then(|| c.into_bytes())
            } else {
                syntax::is_integer(v).then(|| v.to_vec())
            }
        }
        P::OidFirst => {
            let s = if starts_with_paren(v) {
                first_component(text()?)?
            } else {
                text()?.trim_matches(' ').to_string()
            };
            parser::is_oid(&s).then(|| schema.resolve_oid(&s).into_bytes())
        }
        P::DirStringFirst => {
            if starts_with_paren(v) {
                Some(prep_string(&first_component(text()?)?, true))
            } else {
                Some(prep_string(text()?, true))
            }
        }
    }
}

/// Form used for substring matching: the value and each assertion component
/// are prepared the same way; None when the rule has no substring semantics
/// or the text cannot be prepared.
pub(crate) fn substr_prepare(prep: Prep, v: &[u8]) -> Option<Vec<u8>> {
    let text = || std::str::from_utf8(v).ok();
    match prep {
        P::CaseIgnore | P::DirStringFirst => Some(prep_string(text()?, true)),
        P::CaseExact => Some(prep_string(text()?, false)),
        P::Ia5Ignore if v.is_ascii() => Some(prep_string(text()?, true)),
        P::Ia5Exact if v.is_ascii() => Some(prep_string(text()?, false)),
        P::Numeric => Some(v.iter().copied().filter(|&b| b != b' ').collect()),
        P::Telephone => Some(prep_telephone(text()?)),
        P::Octet => Some(v.to_vec()),
        P::CaseIgnoreList => {
            // RFC 4517 §4.2.12 matches substrings against the concatenated lines.
            let lines = syntax::postal_lines(v)
                .unwrap_or_else(|| vec![String::from_utf8_lossy(v).into_owned()]);
            let mut out = Vec::new();
            for l in &lines {
                out.extend_from_slice(&prep_string(l, true));
            }
            Some(out)
        }
        _ => None,
    }
}

/// Orders two canonical Integer values as numbers of any length.
pub(crate) fn cmp_integers(a: &[u8], b: &[u8]) -> Ordering {
    let (neg_a, da) = match a.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, a),
    };
    let (neg_b, db) = match b.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, b),
    };
    let mag = |x: &[u8], y: &[u8]| x.len().cmp(&y.len()).then_with(|| x.cmp(y));
    match (neg_a, neg_b) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => mag(da, db),
        (true, true) => mag(db, da),
    }
}

/// Ordering under `prep`; None when either side is invalid.
pub(crate) fn order(schema: &Schema, prep: Prep, a: &[u8], b: &[u8]) -> Option<Ordering> {
    match prep {
        P::Integer => (syntax::is_integer(a) && syntax::is_integer(b)).then(|| cmp_integers(a, b)),
        P::Time => {
            Some(syntax::parse_generalized_time(a)?.cmp(&syntax::parse_generalized_time(b)?))
        }
        _ => Some(normalize(schema, prep, a)?.cmp(&normalize(schema, prep, b)?)),
    }
}

/// `initial`, `any` and `final` matched in order without overlap, on
/// already-prepared bytes.
pub(crate) fn substrings_match(
    value: &[u8],
    initial: Option<&[u8]>,
    any: &[&[u8]],
    final_: Option<&[u8]>,
) -> bool {
    let mut rest = value;
    if let Some(i) = initial {
        match rest.strip_prefix(i) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for a in any {
        if a.is_empty() {
            continue;
        }
        match rest.windows(a.len()).position(|w| w == *a) {
            Some(p) => rest = rest.get(p + a.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    match final_ {
        Some(f) => rest.ends_with(f),
        None => true,
    }
}

/// bitAnd / bitOr on Integer values that fit in 128 bits (two's complement).
pub(crate) fn bit_match(prep: Prep, value: &[u8], assertion: &[u8]) -> Option<bool> {
    let parse = |v: &[u8]| -> Option<i128> {
        if !syntax::is_integer(v) {
            return None;
        }
        std::str::from_utf8(v).ok()?.parse().ok()
    };
    let a = parse(assertion)?;
    let v = parse(value)?;
    match prep {
        P::BitAnd => Some(v & a == a),
        P::BitOr => Some(v & a != 0),
        _ => None,
    }
}

/// Whether a rule can be applied to values of the given syntax (for
/// extensible match and matchingRuleUse). An attribute's own rules always
/// apply; this covers the others.
pub(crate) fn applies_to_syntax(prep: Prep, syntax: Option<Syntax>) -> bool {
    use Syntax as S;
    let Some(s) = syntax else {
        return false;
    };
    match prep {
        P::CaseIgnore | P::CaseExact => matches!(
            s,
            S::DirectoryString
                | S::Ia5String
                | S::PrintableString
                | S::CountryString
                | S::TelephoneNumber
                | S::NumericString
        ),
        P::Ia5Ignore | P::Ia5Exact => matches!(
            s,
            S::Ia5String | S::PrintableString | S::CountryString | S::NumericString
        ),
        P::Numeric => s == S::NumericString,
        P::Telephone => s == S::TelephoneNumber,
        P::Integer | P::BitAnd | P::BitOr => s == S::Integer,
        P::Dn => s == S::Dn,
        P::Octet => matches!(
            s,
            S::OctetString
                | S::Audio
                | S::Binary
                | S::Jpeg
                | S::Certificate
                | S::CertificateList
                | S::CertificatePair
        ),
        P::Time => s == S::GeneralizedTime,
        P::Oid => s == S::Oid,
        P::Uuid => s == S::Uuid,
        P::Boolean => s == S::Boolean,
        P::BitString => s == S::BitString,
        P::CaseIgnoreList => s == S::PostalAddress,
        P::UniqueMember => s == S::NameAndOptionalUid,
        P::IntegerFirst | P::OidFirst | P::DirStringFirst => false,
    }
}
