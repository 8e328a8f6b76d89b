//! LDAP syntaxes (RFC 4517 §3.3, RFC 4530): code-defined validators.

use super::parser;
use crate::model::Dn;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Syntax {
    AttributeTypeDescription,
    Audio,
    Binary,
    BitString,
    Boolean,
    Certificate,
    CertificateList,
    CertificatePair,
    CountryString,
    Dn,
    DirectoryString,
    EnhancedGuide,
    Facsimile,
    GeneralizedTime,
    Guide,
    Ia5String,
    Integer,
    Jpeg,
    MatchingRuleDescription,
    MatchingRuleUseDescription,
    NameAndOptionalUid,
    NumericString,
    ObjectClassDescription,
    Oid,
    OtherMailbox,
    OctetString,
    PostalAddress,
    PrintableString,
    LdapSyntaxDescription,
    SubstringAssertion,
    TelephoneNumber,
    Uuid,
}

pub(crate) struct SyntaxInfo {
    pub syntax: Syntax,
    pub oid: &'static str,
    pub desc: &'static str,
    /// Served with `X-NOT-HUMAN-READABLE 'TRUE'` so clients treat values as binary.
    pub binary: bool,
}

const fn s(syntax: Syntax, oid: &'static str, desc: &'static str, binary: bool) -> SyntaxInfo {
    SyntaxInfo {
        syntax,
        oid,
        desc,
        binary,
    }
}

pub(crate) const SYNTAXES: &[SyntaxInfo] = &[
    s(
        Syntax::AttributeTypeDescription,
        "1.3.6.1.4.1.1466.115.121.1.3",
        "Attribute Type Description",
        false,
    ),
    s(Syntax::Audio, "1.3.6.1.4.1.1466.115.121.1.4", "Audio", true),
    s(
        Syntax::Binary,
        "1.3.6.1.4.1.1466.115.121.1.5",
        "Binary",
        true,
    ),
    s(
        Syntax::BitString,
        "1.3.6.1.4.1.1466.115.121.1.6",
        "Bit String",
        false,
    ),
    s(
        Syntax::Boolean,
        "1.3.6.1.4.1.1466.115.121.1.7",
        "Boolean",
        false,
    ),
    s(
        Syntax::Certificate,
        "1.3.6.1.4.1.1466.115.121.1.8",
        "Certificate",
        true,
    ),
    s(
        Syntax::CertificateList,
        "1.3.6.1.4.1.1466.115.121.1.9",
        "Certificate List",
        true,
    ),
    s(
        Syntax::CertificatePair,
        "1.3.6.1.4.1.1466.115.121.1.10",
        "Certificate Pair",
        true,
    ),
    s(
        Syntax::CountryString,
        "1.3.6.1.4.1.1466.115.121.1.11",
        "Country String",
        false,
    ),
    s(Syntax::Dn, "1.3.6.1.4.1.1466.115.121.1.12", "DN", false),
    s(
        Syntax::DirectoryString,
        "1.3.6.1.4.1.1466.115.121.1.15",
        "Directory String",
        false,
    ),
    s(
        Syntax::EnhancedGuide,
        "1.3.6.1.4.1.1466.115.121.1.21",
        "Enhanced Guide",
        false,
    ),
    s(
        Syntax::Facsimile,
        "1.3.6.1.4.1.1466.115.121.1.22",
        "Facsimile Telephone Number",
        false,
    ),
    s(
        Syntax::GeneralizedTime,
        "1.3.6.1.4.1.1466.115.121.1.24",
        "Generalized Time",
        false,
    ),
    s(
        Syntax::Guide,
        "1.3.6.1.4.1.1466.115.121.1.25",
        "Guide",
        false,
    ),
    s(
        Syntax::Ia5String,
        "1.3.6.1.4.1.1466.115.121.1.26",
        "IA5 String",
        false,
    ),
    s(
        Syntax::Integer,
        "1.3.6.1.4.1.1466.115.121.1.27",
        "Integer",
        false,
    ),
    s(Syntax::Jpeg, "1.3.6.1.4.1.1466.115.121.1.28", "JPEG", true),
    s(
        Syntax::MatchingRuleDescription,
        "1.3.6.1.4.1.1466.115.121.1.30",
        "Matching Rule Description",
        false,
    ),
    s(
        Syntax::MatchingRuleUseDescription,
        "1.3.6.1.4.1.1466.115.121.1.31",
        "Matching Rule Use Description",
        false,
    ),
    s(
        Syntax::NameAndOptionalUid,
        "1.3.6.1.4.1.1466.115.121.1.34",
        "Name And Optional UID",
        false,
    ),
    s(
        Syntax::NumericString,
        "1.3.6.1.4.1.1466.115.121.1.36",
        "Numeric String",
        false,
    ),
    s(
        Syntax::ObjectClassDescription,
        "1.3.6.1.4.1.1466.115.121.1.37",
        "Object Class Description",
        false,
    ),
    s(Syntax::Oid, "1.3.6.1.4.1.1466.115.121.1.38", "OID", false),
    s(
        Syntax::OtherMailbox,
        "1.3.6.1.4.1.1466.115.121.1.39",
        "Other Mailbox",
        false,
    ),
    s(
        Syntax::OctetString,
        "1.3.6.1.4.1.1466.115.121.1.40",
        "Octet String",
        true,
    ),
    s(
        Syntax::PostalAddress,
        "1.3.6.1.4.1.1466.115.121.1.41",
        "Postal Address",
        false,
    ),
    s(
        Syntax::PrintableString,
        "1.3.6.1.4.1.1466.115.121.1.44",
        "Printable String",
        false,
    ),
    s(
        Syntax::TelephoneNumber,
        "1.3.6.1.4.1.1466.115.121.1.50",
        "Telephone Number",
        false,
    ),
    s(
        Syntax::LdapSyntaxDescription,
        "1.3.6.1.4.1.1466.115.121.1.54",
        "LDAP Syntax Description",
        false,
    ),
    s(
        Syntax::SubstringAssertion,
        "1.3.6.1.4.1.1466.115.121.1.58",
        "Substring Assertion",
        false,
    ),
    s(Syntax::Uuid, "1.3.6.1.1.16.1", "UUID", false),
];

pub(crate) fn info(syntax: Syntax) -> Option<&'static SyntaxInfo> {
    SYNTAXES.iter().find(|i| i.syntax == syntax)
}

/// Whether `v` is a valid value of `syntax`.
pub(crate) fn validate(syntax: Syntax, v: &[u8]) -> bool {
    match syntax {
        Syntax::Audio
        | Syntax::Binary
        | Syntax::Certificate
        | Syntax::CertificateList
        | Syntax::CertificatePair
        | Syntax::Jpeg
        | Syntax::OctetString => true,
        Syntax::DirectoryString => !v.is_empty() && std::str::from_utf8(v).is_ok(),
        Syntax::Ia5String => v.is_ascii(),
        Syntax::PrintableString => !v.is_empty() && v.iter().all(|&b| is_printable(b)),
        Syntax::CountryString => v.len() == 2 && v.iter().all(|&b| is_printable(b)),
        Syntax::TelephoneNumber => !v.is_empty() && v.iter().all(|&b| is_printable(b)),
        Syntax::NumericString => {
            !v.is_empty() && v.iter().all(|&b| b.is_ascii_digit() || b == b' ')
        }
        Syntax::Integer => is_integer(v),
        Syntax::Boolean => v == b"TRUE" || v == b"FALSE",
        Syntax::BitString => is_bit_string(v),
        Syntax::Dn => utf8(v).is_some_and(|s| Dn::parse(s).is_ok()),
        Syntax::NameAndOptionalUid => utf8(v).is_some_and(|s| split_name_uid(s).is_some()),
        Syntax::GeneralizedTime => parse_generalized_time(v).is_some(),
        Syntax::Oid => utf8(v).is_some_and(parser::is_oid),
        Syntax::Uuid => is_uuid(v),
        Syntax::PostalAddress => postal_lines(v).is_some(),
        Syntax::OtherMailbox => is_other_mailbox(v),
        Syntax::Facsimile => is_facsimile(v),
        Syntax::SubstringAssertion => parse_substring_assertion(v).is_some(),
        Syntax::Guide => utf8(v).is_some_and(is_guide),
        Syntax::EnhancedGuide => utf8(v).is_some_and(is_enhanced_guide),
        Syntax::AttributeTypeDescription => {
            utf8(v).is_some_and(|s| parser::parse_attribute_type(s).is_ok())
        }
        Syntax::ObjectClassDescription => {
            utf8(v).is_some_and(|s| parser::parse_object_class(s).is_ok())
        }
        Syntax::LdapSyntaxDescription => utf8(v).is_some_and(|s| parser::parse_syntax(s).is_ok()),
        Syntax::MatchingRuleDescription => {
            utf8(v).is_some_and(|s| parser::parse_matching_rule(s).is_ok())
        }
        Syntax::MatchingRuleUseDescription => {
            utf8(v).is_some_and(|s| parser::parse_matching_rule_use(s).is_ok())
        }
    }
}

fn utf8(v: &[u8]) -> Option<&str> {
    std::str::from_utf8(v).ok()
}

/// PrintableCharacter (RFC 4517 §3.2).
pub(crate) fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'=' | b'/' | b':' | b'?' | b' '
        )
}

/// `Integer = ( HYPHEN LDIGIT *DIGIT ) / number`: no leading zeros, no "-0".
pub(crate) fn is_integer(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    match digits {
        [] => false,
        [b'0'] => digits.len() == v.len(),
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    }
}

/// `BitString = SQUOTE *binary-digit SQUOTE "B"`.
pub(crate) fn is_bit_string(v: &[u8]) -> bool {
    v.len() >= 3
        && v.first() == Some(&b'\'')
        && v.ends_with(b"'B")
        && v.get(1..v.len() - 2)
            .is_some_and(|bits| bits.iter().all(|&b| b == b'0' || b == b'1'))
}

pub(crate) fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, &b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// Splits `distinguishedName [ SHARP BitString ]`. The DN part may itself
/// contain `#` (escaped or in a hex value), so the UID is only split off when
/// what follows the last `#` is a BitString.
pub(crate) fn split_name_uid(s: &str) -> Option<(Dn, Option<&str>)> {
    if let Some((dn, uid)) = s.rsplit_once('#') {
        if is_bit_string(uid.as_bytes()) {
            if let Ok(dn) = Dn::parse(dn) {
                return Some((dn, Some(uid)));
            }
        }
    }
    Dn::parse(s).ok().map(|dn| (dn, None))
}

/// Lines of a Postal Address (`line *( DOLLAR line )`, escapes `\24` and `\5C`).
pub(crate) fn postal_lines(v: &[u8]) -> Option<Vec<String>> {
    let s = utf8(v)?;
    let mut out = Vec::new();
    for raw in s.split('$') {
        if raw.is_empty() {
            return None;
        }
        let mut line = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(p) = rest.find('\\') {
            line.push_str(rest.get(..p)?);
            let esc = rest.get(p + 1..p + 3)?;
            if esc.eq_ignore_ascii_case("24") {
                line.push('$');
            } else if esc.eq_ignore_ascii_case("5c") {
                line.push('\\');
            } else {
                return None;
            }
            rest = rest.get(p + 3..)?;
        }
        line.push_str(rest);
        out.push(line);
    }
    Some(out)
}

fn is_other_mailbox(v: &[u8]) -> bool {
    let Some(p) = v.iter().position(|&b| b == b'$') else {
        return false;
    };
    let (kind, mailbox) = (
        v.get(..p).unwrap_or_default(),
        v.get(p + 1..).unwrap_or_default(),
    );
    validate(Syntax::PrintableString, kind) && !mailbox.is_empty() && mailbox.is_ascii()
}

fn is_facsimile(v: &[u8]) -> bool {
    let mut parts = v.split(|&b| b == b'$');
    let Some(number) = parts.next() else {
        return false;
    };
    validate(Syntax::PrintableString, number)
        && parts.all(|p| {
            matches!(
                p,
                b"twoDimensional"
                    | b"fineResolution"
                    | b"unlimitedLength"
                    | b"b4Length"
                    | b"a3Width"
                    | b"b4Width"
                    | b"uncompressed"
            )
        })
}

/// Components of a Substring Assertion (`[initial] * *(any *) [final]`),
/// with `\2A` and `\5C` unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SubstringAssertion {
    pub initial: Option<Vec<u8>>,
    pub any: Vec<Vec<u8>>,
    pub final_: Option<Vec<u8>>,
}

pub(crate) fn parse_substring_assertion(v: &[u8]) -> Option<SubstringAssertion> {
    let mut pieces: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        match b {
            b'*' => pieces.push(Vec::new()),
            b'\\' => {
                let esc = v.get(i + 1..i + 3)?;
                let byte = if esc.eq_ignore_ascii_case(b"2a") {
                    b'*'
                } else if esc.eq_ignore_ascii_case(b"5c") {
                    b'\\'
                } else {
                    return None;
                };
                pieces.last_mut()?.push(byte);
                i += 2;
            }
            _ => pieces.last_mut()?.push(b),
        }
        i += 1;
    }
    if pieces.len() < 2 || utf8(v).is_none() {
        return None;
    }
    let last = pieces.len() - 1;
    let mut out = SubstringAssertion::default();
    for (idx, p) in pieces.into_iter().enumerate() {
        if idx == 0 {
            out.initial = (!p.is_empty()).then_some(p);
        } else if idx == last {
            out.final_ = (!p.is_empty()).then_some(p);
        } else if p.is_empty() {
            // "**" would be an empty `any`, which the ABNF does not allow.
            return None;
        } else {
            out.any.push(p);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- Guide

/// Recursive descent over the Guide criteria grammar (RFC 4517 §3.3.14);
/// depth is capped so hostile values cannot exhaust the stack.
struct GuideParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl GuideParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> &[u8] {
        self.ws();
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'?')
        {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }
    fn criteria(&mut self) -> bool {
        if self.depth > 64 {
            return false;
        }
        self.depth += 1;
        let ok = self.and_term() && {
            let mut ok = true;
            while ok && self.eat(b'|') {
                ok = self.and_term();
            }
            ok
        };
        self.depth -= 1;
        ok
    }
    fn and_term(&mut self) -> bool {
        if !self.term() {
            return false;
        }
        while self.eat(b'&') {
            if !self.term() {
                return false;
            }
        }
        true
    }
    fn term(&mut self) -> bool {
        if self.depth > 64 {
            return false;
        }
        if self.eat(b'!') {
            self.depth += 1;
            let ok = self.term();
            self.depth -= 1;
            return ok;
        }
        if self.eat(b'(') {
            return self.criteria() && self.eat(b')');
        }
        let w = self.word().to_vec();
        if w == b"?true" || w == b"?false" {
            return true;
        }
        if !std::str::from_utf8(&w).is_ok_and(parser::is_oid) || !self.eat(b'$') {
            return false;
        }
        matches!(self.word(), b"EQ" | b"SUBSTR" | b"GE" | b"LE" | b"APPROX")
    }
    fn at_end(&mut self) -> bool {
        self.ws();
        self.pos == self.s.len()
    }
}

fn is_guide(s: &str) -> bool {
    let body = match s.split_once('#') {
        Some((oc, body)) if parser::is_oid(oc.trim()) => body,
        Some(_) => return false,
        None => s,
    };
    let mut p = GuideParser {
        s: body.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.criteria() && p.at_end()
}

fn is_enhanced_guide(s: &str) -> bool {
    let mut parts = s.splitn(2, '#');
    let (Some(oc), Some(rest)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some((criteria, subset)) = rest.rsplit_once('#') else {
        return false;
    };
    if !parser::is_oid(oc.trim()) {
        return false;
    }
    if !matches!(subset.trim(), "baseobject" | "oneLevel" | "wholeSubtree") {
        return false;
    }
    let mut p = GuideParser {
        s: criteria.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.criteria() && p.at_end()
}

// ---------------------------------------------------------------- Generalized Time

/// Parses `YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|(+|-)hh[mm])` into nanoseconds
/// since 1970-01-01T00:00:00Z. The fraction applies to the last unit given.
pub(crate) fn parse_generalized_time(v: &[u8]) -> Option<i128> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = v.get(r)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    let year = num(0..4)?;
    let month = num(4..6)?;
    let day = num(6..8)?;
    let hour = num(8..10)?;
    let mut pos = 10;
    let digit_at = |p: usize| v.get(p).is_some_and(u8::is_ascii_digit);
    let mut minute = 0;
    let mut second = 0;
    // Nanoseconds in the last unit present, for scaling the fraction.
    let mut unit: i128 = 3_600_000_000_000;
    if digit_at(pos) {
        minute = num(pos..pos + 2)?;
        pos += 2;
        unit = 60_000_000_000;
        if digit_at(pos) {
            second = num(pos..pos + 2)?;
            pos += 2;
            unit = 1_000_000_000;
        }
    }
    let mut frac_nanos: i128 = 0;
    if matches!(v.get(pos), Some(b'.') | Some(b',')) {
        pos += 1;
        let start = pos;
        while digit_at(pos) {
            pos += 1;
        }
        let digits = v.get(start..pos)?;
        if digits.is_empty() {
            return None;
        }
        // 18 digits are far beyond nanosecond precision and keep the product in range.
        let used = digits.get(..digits.len().min(18))?;
        let mut n: i128 = 0;
        for d in used {
            n = n * 10 + i128::from(d - b'0');
        }
        frac_nanos = n * unit / 10i128.pow(used.len() as u32);
    }
    let offset_secs: i64 = match v.get(pos) {
        Some(b'Z') => {
            pos += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(pos + 1..pos + 3)?;
            pos += 3;
            let mut om = 0;
            if digit_at(pos) {
                om = num(pos..pos + 2)?;
                pos += 2;
            }
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    if pos != v.len() {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(i128::from(local - offset_secs) * 1_000_000_000 + frac_nanos)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub(crate) use crate::model::civil::{civil_from_days, days_from_civil};

/// Canonical UTC form `YYYYMMDDHHMMSS[.f]Z` with trailing fraction zeros dropped.
pub(crate) fn format_generalized_time(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    let mut out = format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}
