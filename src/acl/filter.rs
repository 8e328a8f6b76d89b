//! RFC 4515 string filters, as written in `targetfilter`, parsed into the
//! protocol's filter type so the directory's evaluator can run them.

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

/// Deepest nesting accepted in a target filter.
const MAX_DEPTH: usize = 32;

/// Parses an RFC 4515 filter. The error says what is wrong and where (a
/// character offset into `text`).
pub fn parse_filter(text: &str) -> Result<LdapFilter, String> {
    let mut p = FilterParser {
        s: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let f = p.filter(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(format!(
            "unexpected text after the filter at offset {}",
            p.pos
        ));
    }
    Ok(f)
}

struct FilterParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl FilterParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c == b' ') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.pos))
        }
    }

    fn filter(&mut self, depth: usize) -> Result<LdapFilter, String> {
        if depth > MAX_DEPTH {
            return Err("filter is nested too deeply".into());
        }
        self.expect(b'(')?;
        let f = match self.peek() {
            Some(b'&') => {
                self.pos += 1;
                LdapFilter::And(self.list(depth)?)
            }
            Some(b'|') => {
                self.pos += 1;
                LdapFilter::Or(self.list(depth)?)
            }
            Some(b'!') => {
                self.pos += 1;
                self.skip_ws();
                LdapFilter::Not(Box::new(self.filter(depth + 1)?))
            }
            Some(_) => self.item()?,
            None => return Err("filter ends after '('".into()),
        };
        self.skip_ws();
        self.expect(b')')?;
        Ok(f)
    }

    fn list(&mut self, depth: usize) -> Result<Vec<LdapFilter>, String> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() != Some(b'(') {
                break;
            }
            out.push(self.filter(depth + 1)?);
        }
        if out.is_empty() {
            return Err(format!(
                "'&' or '|' needs at least one filter (offset {})",
                self.pos
            ));
        }
        Ok(out)
    }

    /// `attr op value` inside the parentheses.
    fn item(&mut self) -> Result<LdapFilter, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b'=' | b'~' | b'<' | b'>' | b'(' | b')') {
                break;
            }
            self.pos += 1;
        }
        let attr = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
            .map_err(|_| "attribute description is not UTF-8".to_string())?
            .trim()
            .to_string();
        let op_at = self.pos;
        let op: &[u8] = match self.peek() {
            Some(b'=') => b"=",
            Some(b'~') => b"~=",
            Some(b'<') => b"<=",
            Some(b'>') => b">=",
            _ => return Err(format!("expected a filter operator at offset {op_at}")),
        };
        if self.s.get(self.pos..self.pos + op.len()) != Some(op) {
            return Err(format!("malformed filter operator at offset {op_at}"));
        }
        self.pos += op.len();
        let raw_start = self.pos;
        while let Some(c) = self.peek() {
            if c == b')' || c == b'(' {
                break;
            }
            self.pos += 1;
        }
        let raw = self.s.get(raw_start..self.pos).unwrap_or_default();
        if attr.is_empty() {
            return Err(format!("missing attribute before offset {op_at}"));
        }
        if attr.ends_with(':') || attr.contains(':') {
            if op != b"=" {
                return Err(format!("extensible match needs ':=' at offset {op_at}"));
            }
            return self.extensible(&attr, raw, raw_start);
        }
        if !valid_attr(&attr) {
            return Err(format!("invalid attribute description '{attr}'"));
        }
        match op {
            b"~=" => Ok(LdapFilter::Approx(attr, unescape(raw, raw_start)?)),
            b"<=" => Ok(LdapFilter::LessOrEqual(attr, unescape(raw, raw_start)?)),
            b">=" => Ok(LdapFilter::GreaterOrEqual(attr, unescape(raw, raw_start)?)),
            _ => {
                if raw == b"*" {
                    return Ok(LdapFilter::Present(attr));
                }
                if raw.contains(&b'*') {
                    return Ok(LdapFilter::Substring(attr, substrings(raw, raw_start)?));
                }
                Ok(LdapFilter::Equality(attr, unescape(raw, raw_start)?))
            }
        }
    }

    /// `attr[:dn][:rule]:=value` or `[:dn]:rule:=value`; `attr` ends with ':'.
    fn extensible(&self, left: &str, raw: &[u8], at: usize) -> Result<LdapFilter, String> {
        let Some(left) = left.strip_suffix(':') else {
            return Err(format!("extensible match needs ':=' near offset {at}"));
        };
        let mut parts = left.split(':');
        let first = parts.next().unwrap_or_default();
        let type_ = if first.is_empty() {
            None
        } else if valid_attr(first) {
            Some(first.to_string())
        } else {
            return Err(format!("invalid attribute description '{first}'"));
        };
        let mut dn_attributes = false;
        let mut matching_rule = None;
        for part in parts {
            if part.eq_ignore_ascii_case("dn") && !dn_attributes && matching_rule.is_none() {
                dn_attributes = true;
            } else if matching_rule.is_none() && valid_attr(part) {
                matching_rule = Some(part.to_string());
            } else {
                return Err(format!("malformed extensible match near offset {at}"));
            }
        }
        if type_.is_none() && matching_rule.is_none() {
            return Err(format!(
                "extensible match needs an attribute or a matching rule near offset {at}"
            ));
        }
        Ok(LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule,
            type_,
            match_value: unescape(raw, at)?,
            dn_attributes,
        }))
    }
}

fn valid_attr(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b';')
}

fn substrings(raw: &[u8], at: usize) -> Result<LdapSubstringFilter, String> {
    let pieces: Vec<&[u8]> = raw.split(|&c| c == b'*').collect();
    let n = pieces.len();
    let mut sub = LdapSubstringFilter {
        initial: None,
        any: Vec::new(),
        final_: None,
    };
    for (i, piece) in pieces.into_iter().enumerate() {
        if piece.is_empty() {
            if i != 0 && i != n - 1 {
                return Err(format!("'**' in a substring filter near offset {at}"));
            }
            continue;
        }
        let v = unescape(piece, at)?;
        if i == 0 {
            sub.initial = Some(v);
        } else if i == n - 1 {
            sub.final_ = Some(v);
        } else {
            sub.any.push(v);
        }
    }
    Ok(sub)
}

/// Resolves `\XX` escapes; the result must be UTF-8 (the protocol type holds strings).
fn unescape(raw: &[u8], at: usize) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        if c == b'\\' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!(
                        "a '\\' must be followed by two hex digits (offset {})",
                        at + i
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("filter value near offset {at} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_filters() {
        assert_eq!(
            parse_filter("(objectClass=person)"),
            Ok(LdapFilter::Equality("objectClass".into(), "person".into()))
        );
        assert_eq!(
            parse_filter("(uid=*)"),
            Ok(LdapFilter::Present("uid".into()))
        );
        let f = parse_filter("(&(objectClass=posixAccount)(!(uid=adm*))(|(cn=a\\2ab)(sn~=x)))");
        let Ok(LdapFilter::And(list)) = f else {
            panic!("not an AND: {f:?}");
        };
        assert_eq!(list.len(), 3);
        assert_eq!(
            list[2],
            LdapFilter::Or(vec![
                LdapFilter::Equality("cn".into(), "a*b".into()),
                LdapFilter::Approx("sn".into(), "x".into()),
            ])
        );
        assert_eq!(
            parse_filter("(cn=*a*b*)"),
            Ok(LdapFilter::Substring(
                "cn".into(),
                LdapSubstringFilter {
                    initial: None,
                    any: vec!["a".into(), "b".into()],
                    final_: None
                }
            ))
        );
        assert_eq!(
            parse_filter("(uidNumber>=1000)"),
            Ok(LdapFilter::GreaterOrEqual(
                "uidNumber".into(),
                "1000".into()
            ))
        );
        assert!(matches!(
            parse_filter("(cn:caseExactMatch:=Bob)"),
            Ok(LdapFilter::Extensible(_))
        ));
    }

    #[test]
    fn rejects_bad_filters() {
        for bad in [
            "",
            "objectClass=person",
            "(objectClass=person",
            "(=x)",
            "(&)",
            "(cn=a\\zz)",
            "(cn=x))",
            "(cn>x)",
            "(c n=x)",
        ] {
            assert!(parse_filter(bad).is_err(), "accepted {bad:?}");
        }
    }
}
