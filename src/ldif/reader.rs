//! Streaming RFC 2849 reader.
//!
//! Each call to `next` gathers one record: physical lines are read straight
//! into one reusable buffer, folded continuations are joined in place and
//! comments dropped, so the buffer holds the record's logical lines back to
//! back. The record is then parsed from slices of that buffer; the only
//! allocations per record are the returned strings and values.

use std::io::BufRead;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::{LdifAttr, LdifChange, LdifError, LdifMod, LdifRecord, ModOp};

/// Writers disagree on padding; accepting both costs nothing.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A logical (unfolded) line: a byte range of the record buffer and the
/// physical line number it starts on.
#[derive(Clone, Copy)]
struct LineRef {
    start: usize,
    end: usize,
    line: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing yet in this record (or just after a blank line).
    Nothing,
    Comment,
    Line,
}

/// Streaming reader over any `BufRead`; yields records with the line number they start on.
///
/// After a malformed record the error is yielded and reading resumes with the
/// next record. An I/O error is yielded once and ends the iteration.
pub struct LdifReader<R> {
    inner: R,
    buf: Vec<u8>,
    lines: Vec<LineRef>,
    /// Physical lines consumed so far.
    line_no: usize,
    /// The version line is only allowed before the first record.
    at_start: bool,
    done: bool,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(inner: R) -> Self {
        LdifReader {
            inner,
            buf: Vec::with_capacity(4096),
            lines: Vec::with_capacity(32),
            line_no: 0,
            at_start: true,
            done: false,
        }
    }

    /// Reads the next record's logical lines into `buf`/`lines`. Returns
    /// `Ok(false)` at end of input with nothing gathered. A structural error
    /// (a continuation line with nothing to continue) is returned only after
    /// the whole record has been consumed, so the next call starts cleanly.
    fn gather(&mut self) -> Result<bool, LdifError> {
        self.buf.clear();
        self.lines.clear();
        let mut last = Last::Nothing;
        let mut deferred: Option<LdifError> = None;
        loop {
            let start = self.buf.len();
            let n = match self.inner.read_until(b'\n', &mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Err(LdifError {
                        line: self.line_no + 1,
                        message: format!("read error: {e}"),
                    });
                }
            };
            if n == 0 {
                break;
            }
            self.line_no += 1;
            if self.buf.last() == Some(&b'\n') {
                self.buf.pop();
                if self.buf.len() > start && self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
            }
            match self.buf.get(start).copied() {
                None => {
                    if self.lines.is_empty() && deferred.is_none() {
                        // Blank lines before a record (or after comments) are separators only.
                        last = Last::Nothing;
                        continue;
                    }
                    break;
                }
                Some(b' ') => match last {
                    Last::Line => {
                        // Drop exactly the one folding space; the rest is content.
                        self.buf.remove(start);
                        let end = self.buf.len();
                        if let Some(l) = self.lines.last_mut() {
                            l.end = end;
                        }
                    }
                    Last::Comment => self.buf.truncate(start),
                    Last::Nothing => {
                        self.buf.truncate(start);
                        if deferred.is_none() {
                            deferred = Some(LdifError {
                                line: self.line_no,
                                message: "continuation line (starting with a space) has no line to continue".into(),
                            });
                        }
                        // Its own continuations belong to it; swallow them too.
                        last = Last::Comment;
                    }
                },
                Some(b'#') => {
                    self.buf.truncate(start);
                    last = Last::Comment;
                }
                Some(_) => {
                    self.lines.push(LineRef {
                        start,
                        end: self.buf.len(),
                        line: self.line_no,
                    });
                    last = Last::Line;
                }
            }
        }
        match deferred {
            Some(e) => Err(e),
            None => Ok(!self.lines.is_empty()),
        }
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<(usize, LdifRecord), LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            match self.gather() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.at_start = false;
                    return Some(Err(e));
                }
            }
            let mut lines: &[LineRef] = &self.lines;
            if std::mem::take(&mut self.at_start) {
                if let Some((first, rest)) = lines.split_first() {
                    let text = slice(&self.buf, first);
                    if starts_with_ci(text, b"version:") {
                        if let Err(e) = check_version(text, first.line) {
                            return Some(Err(e));
                        }
                        lines = rest;
                    }
                }
            }
            let Some(first) = lines.first() else {
                // Only a version line so far; the first record follows.
                continue;
            };
            let start = first.line;
            return Some(parse_record(&self.buf, lines).map(|rec| (start, rec)));
        }
    }
}

fn slice<'a>(buf: &'a [u8], l: &LineRef) -> &'a [u8] {
    buf.get(l.start..l.end).unwrap_or_default()
}

fn starts_with_ci(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn err(line: usize, message: impl Into<String>) -> LdifError {
    LdifError {
        line,
        message: message.into(),
    }
}

/// A line quoted in an error message: lossy UTF-8, cut to a readable length.
fn quote(text: &[u8]) -> String {
    const MAX: usize = 60;
    let s = String::from_utf8_lossy(text);
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", s.get(..i).unwrap_or_default()),
        None => s.into_owned(),
    }
}

fn check_version(text: &[u8], line: usize) -> Result<(), LdifError> {
    let value = text
        .get(b"version:".len()..)
        .unwrap_or_default()
        .trim_ascii();
    if value == b"1" {
        Ok(())
    } else {
        Err(err(
            line,
            format!(
                "unsupported LDIF version '{}' (only 1 is known)",
                quote(value)
            ),
        ))
    }
}

/// How a value was written after the attribute description.
enum Raw<'a> {
    Plain(&'a [u8]),
    Base64(&'a [u8]),
    Url(&'a [u8]),
}

/// One `name: value` line, not yet decoded.
struct Parsed<'a> {
    name: &'a str,
    raw: Raw<'a>,
    line: usize,
}

fn is_fill(b: &u8) -> bool {
    *b == b' '
}

fn strip_fill(v: &[u8]) -> &[u8] {
    let n = v.iter().take_while(|b| is_fill(b)).count();
    v.get(n..).unwrap_or_default()
}

fn valid_attr_desc(name: &[u8]) -> bool {
    name.first().is_some_and(u8::is_ascii_alphanumeric)
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b';' | b'.' | b'_'))
}

fn split_line<'a>(text: &'a [u8], line: usize) -> Result<Parsed<'a>, LdifError> {
    let Some(colon) = text.iter().position(|&b| b == b':') else {
        return Err(err(
            line,
            format!("expected 'attribute: value', found '{}'", quote(text)),
        ));
    };
    let (name, rest) = text.split_at(colon);
    let rest = rest.get(1..).unwrap_or_default();
    let name = match std::str::from_utf8(name) {
        Ok(n) if valid_attr_desc(name) => n,
        _ => {
            return Err(err(
                line,
                format!("invalid attribute description '{}'", quote(name)),
            ))
        }
    };
    let raw = match rest.first() {
        Some(b':') => Raw::Base64(strip_fill(rest.get(1..).unwrap_or_default())),
        Some(b'<') => Raw::Url(strip_fill(rest.get(1..).unwrap_or_default())),
        _ => Raw::Plain(strip_fill(rest)),
    };
    Ok(Parsed { name, raw, line })
}

impl Parsed<'_> {
    fn value(&self) -> Result<Vec<u8>, LdifError> {
        match self.raw {
            Raw::Plain(v) => Ok(v.to_vec()),
            Raw::Base64(v) => B64.decode(v.trim_ascii_end()).map_err(|_| {
                err(
                    self.line,
                    format!("invalid base64 in value of '{}'", self.name),
                )
            }),
            Raw::Url(v) => read_url(v.trim_ascii_end(), self.name, self.line),
        }
    }

    /// Values that must be text (DNs, RDNs): no URLs, UTF-8 required.
    fn text_value(&self) -> Result<String, LdifError> {
        if let Raw::Url(_) = self.raw {
            return Err(err(
                self.line,
                format!("a URL is not allowed for '{}'", self.name),
            ));
        }
        String::from_utf8(self.value()?)
            .map_err(|_| err(self.line, format!("'{}' is not valid UTF-8", self.name)))
    }

    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// `attr:< file:///path`: only local files; other schemes would let an LDIF
/// file make the server fetch arbitrary URLs.
fn read_url(url: &[u8], attr: &str, line: usize) -> Result<Vec<u8>, LdifError> {
    let unsupported = || {
        err(
            line,
            format!(
                "only file:// URLs are supported in value of '{attr}', found '{}'",
                quote(url)
            ),
        )
    };
    if !starts_with_ci(url, b"file:") {
        return Err(unsupported());
    }
    let rest = url.get(5..).unwrap_or_default();
    let path = if let Some(after) = rest.strip_prefix(b"//") {
        // file://host/path: only an empty host or localhost means this machine.
        let slash = after
            .iter()
            .position(|&b| b == b'/')
            .ok_or_else(unsupported)?;
        let (host, path) = after.split_at(slash);
        if !host.is_empty() && !host.eq_ignore_ascii_case(b"localhost") {
            return Err(unsupported());
        }
        path
    } else if rest.starts_with(b"/") {
        rest
    } else {
        return Err(unsupported());
    };
    let path = percent_decode(path).ok_or_else(|| {
        err(
            line,
            format!("invalid %-escape in URL for '{attr}': '{}'", quote(url)),
        )
    })?;
    let path = path_from_bytes(path);
    let mut value = Vec::new();
    // Bounded: a URL may name /dev/zero or a huge file.
    std::fs::File::open(&path)
        .and_then(|f| {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_URL_VALUE + 1), &mut value)
        })
        .map_err(|e| {
            err(
                line,
                format!("cannot read '{}' for '{attr}': {e}", path.display()),
            )
        })?;
    if value.len() as u64 > MAX_URL_VALUE {
        return Err(err(
            line,
            format!(
                "'{}' for '{attr}' is larger than {MAX_URL_VALUE} bytes",
                path.display()
            ),
        ));
    }
    Ok(value)
}

/// Largest value read from a `file://` URL (the server's default maximum message).
const MAX_URL_VALUE: u64 = 16 << 20;

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(bytes).into()
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> std::path::PathBuf {
    String::from_utf8_lossy(&bytes).into_owned().into()
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        if b == b'%' {
            let hi = char::from(*it.next()?).to_digit(16)?;
            let lo = char::from(*it.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

fn parse_record(buf: &[u8], lines: &[LineRef]) -> Result<LdifRecord, LdifError> {
    let mut it = lines.iter().map(|l| (slice(buf, l), l.line)).peekable();
    let Some((first, first_line)) = it.next() else {
        return Err(err(0, "empty record"));
    };
    let dn_line = split_line(first, first_line)
        .ok()
        .filter(|p| p.is("dn"))
        .ok_or_else(|| {
            err(
                first_line,
                format!(
                    "expected 'dn:' at the start of a record, found '{}'",
                    quote(first)
                ),
            )
        })?;
    let dn = dn_line.text_value()?;

    // RFC 2849: controls come between the DN and the changetype.
    let mut control_line = None;
    let mut changetype = None;
    while let Some(&(text, line)) = it.peek() {
        let p = split_line(text, line)?;
        if p.is("control") {
            check_control(&p)?;
            control_line.get_or_insert(line);
            it.next();
        } else {
            if p.is("changetype") {
                changetype = Some(p);
                it.next();
            }
            break;
        }
    }

    let Some(ct) = changetype else {
        if let Some(line) = control_line {
            return Err(err(
                line,
                "'control:' is only allowed in change records (missing 'changetype:')",
            ));
        }
        let attrs = attr_lines(it)?;
        if attrs.is_empty() {
            return Err(err(first_line, "entry has no attributes"));
        }
        return Ok(LdifRecord::Entry { dn, attrs });
    };

    let kind = ct.text_value()?;
    let kind = kind.trim_ascii();
    let change = if kind.eq_ignore_ascii_case("add") {
        LdifChange::Add(attr_lines(it)?)
    } else if kind.eq_ignore_ascii_case("delete") {
        if let Some((text, line)) = it.next() {
            return Err(err(
                line,
                format!(
                    "unexpected line after 'changetype: delete': '{}'",
                    quote(text)
                ),
            ));
        }
        LdifChange::Delete
    } else if kind.eq_ignore_ascii_case("modify") {
        LdifChange::Modify(modify_blocks(it)?)
    } else if kind.eq_ignore_ascii_case("modrdn") || kind.eq_ignore_ascii_case("moddn") {
        moddn(it, ct.line)?
    } else {
        return Err(err(
            ct.line,
            format!(
                "unknown changetype '{}' (expected add, delete, modify, modrdn or moddn)",
                quote(kind.as_bytes())
            ),
        ));
    };
    Ok(LdifRecord::Change { dn, change })
}

/// `control: <oid> [true|false] [value]`: checked for shape, then ignored.
fn check_control(p: &Parsed<'_>) -> Result<(), LdifError> {
    let ok = match p.raw {
        Raw::Plain(v) => v.split(|&b| b == b' ').next().is_some_and(|oid| {
            !oid.is_empty() && oid.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        }),
        Raw::Base64(_) | Raw::Url(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(err(p.line, "'control:' must start with a numeric OID"))
    }
}

fn attr_lines<'a>(
    lines: impl Iterator<Item = (&'a [u8], usize)>,
) -> Result<Vec<LdifAttr>, LdifError> {
    let mut attrs = Vec::new();
    for (text, line) in lines {
        let p = split_line(text, line)?;
        attrs.push((p.name.to_owned(), p.value()?));
    }
    Ok(attrs)
}

fn modify_blocks<'a>(
    mut lines: impl Iterator<Item = (&'a [u8], usize)>,
) -> Result<Vec<LdifMod>, LdifError> {
    let mut mods = Vec::new();
    while let Some((text, line)) = lines.next() {
        let p = split_line(text, line).ok();
        let op = p.as_ref().and_then(|p| {
            [
                ("add", ModOp::Add),
                ("delete", ModOp::Delete),
                ("replace", ModOp::Replace),
                ("increment", ModOp::Increment),
            ]
            .into_iter()
            .find(|(n, _)| p.is(n))
            .map(|(_, op)| op)
        });
        let (Some(p), Some(op)) = (p, op) else {
            return Err(err(
                line,
                format!(
                    "expected 'add:', 'delete:', 'replace:' or 'increment:' in a modify record, found '{}'",
                    quote(text)
                ),
            ));
        };
        let attr = match p.raw {
            Raw::Plain(v) => std::str::from_utf8(v.trim_ascii()).ok(),
            Raw::Base64(_) | Raw::Url(_) => None,
        }
        .filter(|a| valid_attr_desc(a.as_bytes()))
        .ok_or_else(|| {
            err(
                line,
                format!("'{}:' must name an attribute", p.name.to_ascii_lowercase()),
            )
        })?;
        let mut values = Vec::new();
        // The final '-' is often left out; the end of the record closes the block too.
        for (text, line) in lines.by_ref() {
            if text.trim_ascii_end() == b"-" {
                break;
            }
            let v = split_line(text, line)?;
            if !v.name.eq_ignore_ascii_case(attr) {
                return Err(err(
                    line,
                    format!(
                        "attribute '{}' does not match '{attr}' of the modify block (missing '-'?)",
                        v.name
                    ),
                ));
            }
            values.push(v.value()?);
        }
        mods.push(LdifMod {
            op,
            attr: attr.to_owned(),
            values,
        });
    }
    Ok(mods)
}

fn moddn<'a>(
    lines: impl Iterator<Item = (&'a [u8], usize)>,
    ct_line: usize,
) -> Result<LdifChange, LdifError> {
    let mut new_rdn = None;
    let mut delete_old_rdn = None;
    let mut new_superior = None;
    for (text, line) in lines {
        let p = split_line(text, line)?;
        let slot_taken = if p.is("newrdn") {
            new_rdn.replace(p.text_value()?).is_some()
        } else if p.is("deleteoldrdn") {
            let v = p.text_value()?;
            let flag = match v.trim_ascii() {
                "0" => false,
                "1" => true,
                _ => return Err(err(line, "'deleteoldrdn' must be 0 or 1")),
            };
            delete_old_rdn.replace(flag).is_some()
        } else if p.is("newsuperior") {
            new_superior.replace(p.text_value()?).is_some()
        } else {
            return Err(err(
                line,
                format!(
                    "unexpected '{}' in a modrdn record (expected newrdn, deleteoldrdn or newsuperior)",
                    p.name
                ),
            ));
        };
        if slot_taken {
            return Err(err(line, format!("'{}' given twice", p.name)));
        }
    }
    let new_rdn = new_rdn.ok_or_else(|| err(ct_line, "modrdn record without 'newrdn:'"))?;
    let delete_old_rdn =
        delete_old_rdn.ok_or_else(|| err(ct_line, "modrdn record without 'deleteoldrdn:'"))?;
    Ok(LdifChange::ModDn {
        new_rdn,
        delete_old_rdn,
        new_superior,
    })
}
