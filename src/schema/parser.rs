//! RFC 4512 §4.1 description parsing, rendering, and the LDIF reader for
//! schema files.

use super::{AttributeType, ObjectClass, ObjectClassKind, Usage};
use base64::Engine as _;

/// Which subschema attribute a definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefKind {
    AttributeType,
    ObjectClass,
    Syntax,
    MatchingRule,
    MatchingRuleUse,
}

/// One definition value read from an LDIF file, not yet parsed.
#[derive(Debug, Clone)]
pub(crate) struct RawDef {
    pub kind: DefKind,
    /// 1-based line on which the attribute began.
    pub line: usize,
    pub text: String,
}

/// A parsed LDAP syntax description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxDesc {
    pub oid: String,
    pub desc: Option<String>,
    pub definition: String,
}

/// A parsed matching rule description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleDesc {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub obsolete: bool,
    pub syntax: String,
    pub definition: String,
}

/// A parsed matching rule use description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleUseDesc {
    pub oid: String,
    pub names: Vec<String>,
    pub applies: Vec<String>,
}

// ---------------------------------------------------------------- LDIF

/// Splits an LDIF text into the schema definition values it carries.
/// Other attributes (dn, objectClass, cn, ...) are skipped. Errors carry the
/// 1-based line number.
pub(crate) fn read_ldif(text: &str) -> Result<Vec<RawDef>, (usize, String)> {
    let mut out = Vec::new();
    // (start line, logical line, is comment)
    let mut current: Option<(usize, String, bool)> = None;
    for (idx, raw_line) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if let Some(rest) = line.strip_prefix(' ') {
            match current.as_mut() {
                Some((_, buf, is_comment)) => {
                    if !*is_comment {
                        buf.push_str(rest);
                    }
                }
                None => {
                    return Err((
                        lineno,
                        "continuation line (starting with a space) without a preceding line".into(),
                    ))
                }
            }
            continue;
        }
        if let Some(done) = current.take() {
            flush(done, &mut out)?;
        }
        if line.is_empty() {
            continue;
        }
        current = Some((lineno, line.to_string(), line.starts_with('#')));
    }
    if let Some(done) = current.take() {
        flush(done, &mut out)?;
    }
    Ok(out)
}

fn flush(
    (line, text, is_comment): (usize, String, bool),
    out: &mut Vec<RawDef>,
) -> Result<(), (usize, String)> {
    if is_comment {
        return Ok(());
    }
    let Some((name, rest)) = text.split_once(':') else {
        return Err((line, format!("expected 'attribute: value', found {text:?}")));
    };
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    // OpenLDAP cn=config exports spell these olcAttributeTypes etc.
    let key = lower.strip_prefix("olc").unwrap_or(&lower);
    let kind = match key {
        "attributetypes" => DefKind::AttributeType,
        "objectclasses" => DefKind::ObjectClass,
        "ldapsyntaxes" => DefKind::Syntax,
        "matchingrules" => DefKind::MatchingRule,
        "matchingruleuse" => DefKind::MatchingRuleUse,
        _ => {
            if name.is_empty() {
                return Err((line, "empty attribute name".into()));
            }
            return Ok(());
        }
    };
    let value = if let Some(b64) = rest.strip_prefix(':') {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| (line, format!("{name}: invalid base64 value: {e}")))?;
        String::from_utf8(bytes).map_err(|_| (line, format!("{name}: value is not UTF-8")))?
    } else if rest.starts_with('<') {
        return Err((line, format!("{name}: URL values are not supported")));
    } else {
        rest.to_string()
    };
    let mut value = value.trim();
    // cn=config ordering prefix "{12}( ... )"
    if let Some(after) = value.strip_prefix('{') {
        if let Some((digits, tail)) = after.split_once('}') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                value = tail.trim_start();
            }
        }
    }
    out.push(RawDef {
        kind,
        line,
        text: value.to_string(),
    });
    Ok(())
}

// ---------------------------------------------------------------- tokens

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Dollar,
    Quoted(String),
    Word(String),
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "end of definition".into(),
        Some(Tok::Open) => "'('".into(),
        Some(Tok::Close) => "')'".into(),
        Some(Tok::Dollar) => "'$'".into(),
        Some(Tok::Quoted(s)) => format!("'{s}'"),
        Some(Tok::Word(w)) => format!("{w:?}"),
    }
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'$' => {
                out.push(Tok::Dollar);
                i += 1;
            }
            b'\'' => {
                let start = i + 1;
                let len = b
                    .get(start..)
                    .and_then(|rest| rest.iter().position(|&x| x == b'\''))
                    .ok_or_else(|| "unterminated quoted string".to_string())?;
                let inner = b.get(start..start + len).unwrap_or_default();
                out.push(Tok::Quoted(unescape_qdstring(inner)?));
                i = start + len + 1;
            }
            _ => {
                let start = i;
                while let Some(&x) = b.get(i) {
                    if matches!(x, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'$' | b'\'') {
                        break;
                    }
                    i += 1;
                }
                let w = s.get(start..i).unwrap_or_default();
                out.push(Tok::Word(w.to_string()));
            }
        }
    }
    Ok(out)
}

/// Undoes the `\XX` escapes of a qdstring (RFC 4512: `\27` for `'`, `\5C` for `\`).
pub(crate) fn unescape_qdstring(inner: &[u8]) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(inner.len());
    let mut i = 0;
    while let Some(&c) = inner.get(i) {
        if c == b'\\' {
            let hex = inner
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    "invalid escape in quoted string (expected \\27 or \\5C)".to_string()
                })?;
            bytes.push(hex);
            i += 3;
        } else {
            bytes.push(c);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| "quoted string is not valid UTF-8".to_string())
}

/// Escapes a string for use inside `'...'`.
pub(crate) fn escape_qdstring(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\27"),
            '\\' => out.push_str("\\5C"),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------- lexical checks

/// `numericoid = number 1*( DOT number )`, numbers without leading zeros.
pub(crate) fn is_numericoid(s: &str) -> bool {
    let mut parts = 0;
    for p in s.split('.') {
        let ok = !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && !(p.len() > 1 && p.starts_with('0'));
        if !ok {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

/// `descr = keystring = leadkeychar *keychar`.
pub(crate) fn is_descr(s: &str) -> bool {
    let mut it = s.bytes();
    match it.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    it.all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

pub(crate) fn is_oid(s: &str) -> bool {
    is_numericoid(s) || is_descr(s)
}

// ---------------------------------------------------------------- parser

struct Cursor {
    toks: Vec<Tok>,
    pos: usize,
}

impl Cursor {
    fn new(text: &str) -> Result<Cursor, String> {
        Ok(Cursor {
            toks: tokenize(text)?,
            pos: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            other => Err(format!(
                "expected {}, found {}",
                describe(Some(&want)),
                describe(other.as_ref())
            )),
        }
    }

    fn numericoid(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) if is_numericoid(&w) => Ok(w),
            other => Err(format!(
                "expected a numeric OID, found {}",
                describe(other.as_ref())
            )),
        }
    }

    fn oid(&mut self, after: &str) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) if is_oid(&w) => Ok(w),
            other => Err(format!(
                "{after}: expected an OID or name, found {}",
                describe(other.as_ref())
            )),
        }
    }

    /// `oids = oid / ( LPAREN WSP oidlist WSP RPAREN )`, list separated by `$`.
    fn oids(&mut self, after: &str) -> Result<Vec<String>, String> {
        if self.peek() != Some(&Tok::Open) {
            return Ok(vec![self.oid(after)?]);
        }
        self.next();
        let mut out = vec![self.oid(after)?];
        loop {
            match self.next() {
                Some(Tok::Close) => return Ok(out),
                Some(Tok::Dollar) => out.push(self.oid(after)?),
                other => {
                    return Err(format!(
                        "{after}: expected '$' or ')' in OID list, found {}",
                        describe(other.as_ref())
                    ))
                }
            }
        }
    }

    fn qdstring(&mut self, after: &str) -> Result<String, String> {
        match self.next() {
            Some(Tok::Quoted(s)) => Ok(s),
            other => Err(format!(
                "{after}: expected a quoted string, found {}",
                describe(other.as_ref())
            )),
        }
    }

    /// `qdescrs = qdescr / ( LPAREN WSP qdescrlist WSP RPAREN )`.
    fn qdescrs(&mut self, after: &str) -> Result<Vec<String>, String> {
        let check = |s: String| {
            if is_descr(&s) {
                Ok(s)
            } else {
                Err(format!("{after}: {s:?} is not a valid name"))
            }
        };
        if self.peek() != Some(&Tok::Open) {
            return check(self.qdstring(after)?).map(|s| vec![s]);
        }
        self.next();
        let mut out = Vec::new();
        loop {
            match self.next() {
                Some(Tok::Close) if !out.is_empty() => return Ok(out),
                Some(Tok::Quoted(s)) => out.push(check(s)?),
                other => {
                    return Err(format!(
                        "{after}: expected a quoted name or ')', found {}",
                        describe(other.as_ref())
                    ))
                }
            }
        }
    }

    /// Extension values: one qdstring or a parenthesised list of them.
    fn qdstrings(&mut self, after: &str) -> Result<Vec<String>, String> {
        if self.peek() != Some(&Tok::Open) {
            return Ok(vec![self.qdstring(after)?]);
        }
        self.next();
        let mut out = Vec::new();
        loop {
            match self.next() {
                Some(Tok::Close) => return Ok(out),
                Some(Tok::Quoted(s)) => out.push(s),
                other => {
                    return Err(format!(
                        "{after}: expected a quoted string or ')', found {}",
                        describe(other.as_ref())
                    ))
                }
            }
        }
    }

    /// `noidlen = numericoid [ LCURLY len RCURLY ]`; returns the OID without
    /// the length bound (the bound is advisory and not enforced). Some
    /// schemas quote the OID; that is accepted too.
    fn noidlen(&mut self) -> Result<String, String> {
        let w = match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => w,
            other => {
                return Err(format!(
                    "SYNTAX: expected a syntax OID, found {}",
                    describe(other.as_ref())
                ))
            }
        };
        let oid = match w.split_once('{') {
            Some((oid, len)) => {
                let digits = len.strip_suffix('}').unwrap_or("");
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("SYNTAX: invalid length bound in {w:?}"));
                }
                oid
            }
            None => &w,
        };
        if !is_numericoid(oid) {
            return Err(format!("SYNTAX: {oid:?} is not a numeric OID"));
        }
        Ok(oid.to_string())
    }
}

/// The numeric OID that starts a description (`( 1.2.3 ...`), read without
/// parsing the rest: RFC 4512 compares attributeTypes and objectClasses
/// values by this first component (objectIdentifierFirstComponentMatch).
pub(crate) fn first_oid(text: &str) -> Result<String, String> {
    let mut c = Cursor::new(text)?;
    c.expect(Tok::Open)?;
    c.numericoid()
}

/// Whether the description carries the extension `name` (e.g. `X-ORIGIN`).
pub(crate) fn has_extension(text: &str, name: &str) -> bool {
    tokenize(text).is_ok_and(|toks| {
        toks.iter()
            .any(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(name)))
    })
}

/// The description with `X-ORIGIN 'origin'` added before its closing
/// parenthesis, unless it already names an origin.
pub(crate) fn with_origin(text: &str, origin: &str) -> String {
    let text = text.trim();
    if has_extension(text, "X-ORIGIN") {
        return text.to_string();
    }
    match text.strip_suffix(')') {
        Some(body) => format!(
            "{} X-ORIGIN '{}' )",
            body.trim_end(),
            escape_qdstring(origin)
        ),
        None => text.to_string(),
    }
}

/// Drives the common shape `( numericoid *( keyword ... ) )`: `on_kw` gets
/// each upper-cased keyword and returns Ok(false) when it does not know it.
/// Each keyword may appear once; `X-` extensions are skipped.
fn parse_desc(
    text: &str,
    mut on_kw: impl FnMut(&str, &mut Cursor) -> Result<bool, String>,
) -> Result<String, String> {
    let mut c = Cursor::new(text)?;
    c.expect(Tok::Open)?;
    let oid = c.numericoid()?;
    let ctx = |e: String| format!("in definition {oid}: {e}");
    let mut seen: Vec<String> = Vec::new();
    loop {
        match c.next() {
            Some(Tok::Close) => break,
            Some(Tok::Word(w)) => {
                let kw = w.to_ascii_uppercase();
                if kw.starts_with("X-") {
                    // Extensions a definition knows are its own; others are skipped.
                    if !on_kw(&kw, &mut c).map_err(ctx)? {
                        c.qdstrings(&w).map_err(ctx)?;
                    }
                    continue;
                }
                if seen.contains(&kw) {
                    return Err(ctx(format!("keyword {kw} appears twice")));
                }
                if !on_kw(&kw, &mut c).map_err(ctx)? {
                    return Err(ctx(format!("unknown keyword {w:?}")));
                }
                seen.push(kw);
            }
            other => {
                return Err(ctx(format!(
                    "expected a keyword or ')', found {}",
                    describe(other.as_ref())
                )))
            }
        }
    }
    if let Some(t) = c.peek() {
        return Err(ctx(format!(
            "unexpected {} after the closing ')'",
            describe(Some(t))
        )));
    }
    Ok(oid)
}

pub(crate) fn parse_attribute_type(text: &str) -> Result<AttributeType, String> {
    let mut at = AttributeType {
        oid: String::new(),
        names: Vec::new(),
        desc: None,
        obsolete: false,
        sup: None,
        equality: None,
        ordering: None,
        substr: None,
        syntax: None,
        single_value: false,
        collective: false,
        no_user_modification: false,
        usage: Usage::UserApplications,
        definition: text.trim().to_string(),
    };
    at.oid = parse_desc(text, |kw, c| {
        match kw {
            "NAME" => at.names = c.qdescrs(kw)?,
            "DESC" => at.desc = Some(c.qdstring(kw)?),
            "OBSOLETE" => at.obsolete = true,
            "SUP" => at.sup = Some(c.oid(kw)?),
            "EQUALITY" => at.equality = Some(c.oid(kw)?),
            "ORDERING" => at.ordering = Some(c.oid(kw)?),
            "SUBSTR" => at.substr = Some(c.oid(kw)?),
            "SYNTAX" => at.syntax = Some(c.noidlen()?),
            "SINGLE-VALUE" => at.single_value = true,
            "COLLECTIVE" => at.collective = true,
            "NO-USER-MODIFICATION" => at.no_user_modification = true,
            "USAGE" => {
                let w = match c.next() {
                    Some(Tok::Word(w)) => w,
                    other => {
                        return Err(format!(
                            "USAGE: expected a usage, found {}",
                            describe(other.as_ref())
                        ))
                    }
                };
                at.usage = match w.to_ascii_lowercase().as_str() {
                    "userapplications" => Usage::UserApplications,
                    "directoryoperation" => Usage::DirectoryOperation,
                    "distributedoperation" => Usage::DistributedOperation,
                    "dsaoperation" => Usage::DsaOperation,
                    _ => return Err(format!("USAGE: unknown usage {w:?}")),
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if at.sup.is_none() && at.syntax.is_none() {
        return Err(format!(
            "in definition {}: an attribute type needs SUP or SYNTAX",
            at.oid
        ));
    }
    if at.collective && at.usage != Usage::UserApplications {
        return Err(format!(
            "in definition {}: a COLLECTIVE attribute type must have USAGE userApplications",
            at.oid
        ));
    }
    if at.no_user_modification && at.usage == Usage::UserApplications {
        return Err(format!(
            "in definition {}: NO-USER-MODIFICATION requires an operational USAGE",
            at.oid
        ));
    }
    Ok(at)
}

pub(crate) fn parse_object_class(text: &str) -> Result<ObjectClass, String> {
    let mut oc = ObjectClass {
        oid: String::new(),
        names: Vec::new(),
        desc: None,
        obsolete: false,
        sup: Vec::new(),
        kind: ObjectClassKind::Structural,
        must: Vec::new(),
        may: Vec::new(),
        also_auxiliary: false,
        definition: text.trim().to_string(),
    };
    let mut kind_seen = false;
    oc.oid = parse_desc(text, |kw, c| {
        match kw {
            "NAME" => oc.names = c.qdescrs(kw)?,
            "DESC" => oc.desc = Some(c.qdstring(kw)?),
            "OBSOLETE" => oc.obsolete = true,
            "SUP" => oc.sup = c.oids(kw)?,
            "X-ALSO-AUXILIARY" => {
                oc.also_auxiliary = c.qdstrings(kw)? == ["TRUE"];
            }
            "ABSTRACT" | "STRUCTURAL" | "AUXILIARY" => {
                if kind_seen {
                    return Err("more than one of ABSTRACT, STRUCTURAL, AUXILIARY".into());
                }
                kind_seen = true;
                oc.kind = match kw {
                    "ABSTRACT" => ObjectClassKind::Abstract,
                    "AUXILIARY" => ObjectClassKind::Auxiliary,
                    _ => ObjectClassKind::Structural,
                };
            }
            "MUST" => oc.must = c.oids(kw)?,
            "MAY" => oc.may = c.oids(kw)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(oc)
}

pub(crate) fn parse_syntax(text: &str) -> Result<SyntaxDesc, String> {
    let mut desc = None;
    let oid = parse_desc(text, |kw, c| {
        match kw {
            "DESC" => desc = Some(c.qdstring(kw)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(SyntaxDesc {
        oid,
        desc,
        definition: text.trim().to_string(),
    })
}

pub(crate) fn parse_matching_rule(text: &str) -> Result<RuleDesc, String> {
    let mut r = RuleDesc {
        oid: String::new(),
        names: Vec::new(),
        desc: None,
        obsolete: false,
        syntax: String::new(),
        definition: text.trim().to_string(),
    };
    r.oid = parse_desc(text, |kw, c| {
        match kw {
            "NAME" => r.names = c.qdescrs(kw)?,
            "DESC" => r.desc = Some(c.qdstring(kw)?),
            "OBSOLETE" => r.obsolete = true,
            "SYNTAX" => r.syntax = c.noidlen()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if r.syntax.is_empty() {
        return Err(format!(
            "in definition {}: a matching rule needs SYNTAX",
            r.oid
        ));
    }
    Ok(r)
}

pub(crate) fn parse_matching_rule_use(text: &str) -> Result<RuleUseDesc, String> {
    let mut r = RuleUseDesc {
        oid: String::new(),
        names: Vec::new(),
        applies: Vec::new(),
    };
    r.oid = parse_desc(text, |kw, c| {
        match kw {
            "NAME" => r.names = c.qdescrs(kw)?,
            "DESC" => {
                c.qdstring(kw)?;
            }
            "OBSOLETE" => {}
            "APPLIES" => r.applies = c.oids(kw)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if r.applies.is_empty() {
        return Err(format!(
            "in definition {}: a matching rule use needs APPLIES",
            r.oid
        ));
    }
    Ok(r)
}

// ---------------------------------------------------------------- rendering

fn push_qdescrs(out: &mut String, names: &[String]) {
    match names {
        [] => {}
        [one] => {
            out.push_str(" NAME '");
            out.push_str(one);
            out.push('\'');
        }
        many => {
            out.push_str(" NAME (");
            for n in many {
                out.push_str(" '");
                out.push_str(n);
                out.push('\'');
            }
            out.push_str(" )");
        }
    }
}

fn push_oids(out: &mut String, kw: &str, oids: &[String]) {
    match oids {
        [] => {}
        [one] => {
            out.push(' ');
            out.push_str(kw);
            out.push(' ');
            out.push_str(one);
        }
        many => {
            out.push(' ');
            out.push_str(kw);
            out.push_str(" ( ");
            out.push_str(&many.join(" $ "));
            out.push_str(" )");
        }
    }
}

fn push_desc(out: &mut String, desc: Option<&str>) {
    if let Some(d) = desc {
        out.push_str(" DESC '");
        out.push_str(&escape_qdstring(d));
        out.push('\'');
    }
}

fn push_kw(out: &mut String, kw: &str, value: Option<&str>) {
    if let Some(v) = value {
        out.push(' ');
        out.push_str(kw);
        out.push(' ');
        out.push_str(v);
    }
}

/// RFC 4512 text for an attribute type, from its fields (inherited rules and
/// syntax included as they are in the struct).
pub(crate) fn render_attribute_type(at: &AttributeType) -> String {
    let mut s = format!("( {}", at.oid);
    push_qdescrs(&mut s, &at.names);
    push_desc(&mut s, at.desc.as_deref());
    if at.obsolete {
        s.push_str(" OBSOLETE");
    }
    push_kw(&mut s, "SUP", at.sup.as_deref());
    push_kw(&mut s, "EQUALITY", at.equality.as_deref());
    push_kw(&mut s, "ORDERING", at.ordering.as_deref());
    push_kw(&mut s, "SUBSTR", at.substr.as_deref());
    push_kw(&mut s, "SYNTAX", at.syntax.as_deref());
    if at.single_value {
        s.push_str(" SINGLE-VALUE");
    }
    if at.collective {
        s.push_str(" COLLECTIVE");
    }
    if at.no_user_modification {
        s.push_str(" NO-USER-MODIFICATION");
    }
    let usage = match at.usage {
        Usage::UserApplications => None,
        Usage::DirectoryOperation => Some("directoryOperation"),
        Usage::DistributedOperation => Some("distributedOperation"),
        Usage::DsaOperation => Some("dSAOperation"),
    };
    push_kw(&mut s, "USAGE", usage);
    s.push_str(" )");
    s
}

pub(crate) fn render_object_class(oc: &ObjectClass) -> String {
    let mut s = format!("( {}", oc.oid);
    push_qdescrs(&mut s, &oc.names);
    push_desc(&mut s, oc.desc.as_deref());
    if oc.obsolete {
        s.push_str(" OBSOLETE");
    }
    push_oids(&mut s, "SUP", &oc.sup);
    s.push_str(match oc.kind {
        ObjectClassKind::Abstract => " ABSTRACT",
        ObjectClassKind::Structural => " STRUCTURAL",
        ObjectClassKind::Auxiliary => " AUXILIARY",
    });
    push_oids(&mut s, "MUST", &oc.must);
    push_oids(&mut s, "MAY", &oc.may);
    if oc.also_auxiliary {
        s.push_str(" X-ALSO-AUXILIARY 'TRUE'");
    }
    s.push_str(" )");
    s
}

pub(crate) fn render_syntax(oid: &str, desc: &str, not_human_readable: bool) -> String {
    let mut s = format!("( {oid}");
    push_desc(&mut s, Some(desc));
    if not_human_readable {
        s.push_str(" X-NOT-HUMAN-READABLE 'TRUE'");
    }
    s.push_str(" )");
    s
}

pub(crate) fn render_matching_rule(oid: &str, name: &str, syntax: &str) -> String {
    format!("( {oid} NAME '{name}' SYNTAX {syntax} )")
}

pub(crate) fn render_matching_rule_use(oid: &str, names: &[String], applies: &[String]) -> String {
    let mut s = format!("( {oid}");
    push_qdescrs(&mut s, names);
    push_oids(&mut s, "APPLIES", applies);
    s.push_str(" )");
    s
}
