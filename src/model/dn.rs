//! Distinguished names: RFC 4514 string form, parsed into RDNs of
//! attribute-value assertions. Values are kept as raw bytes; the user's
//! spelling of attribute types is kept for display, and a normalised form
//! (needing matching rules from the schema) is produced by [`Dn::normalized_with`].

use std::fmt;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("invalid DN {input:?}: {reason}")]
pub struct DnError {
    pub input: String,
    pub reason: String,
}

/// One attribute-value assertion of an RDN, e.g. `cn=Babs Jensen`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ava {
    pub attr: String,
    pub value: Vec<u8>,
}

/// A relative distinguished name: one or more AVAs joined by `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rdn {
    pub avas: Vec<Ava>,
}

/// A DN; `rdns[0]` is the leftmost (most specific) RDN. The empty DN names the root DSE.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Dn {
    pub rdns: Vec<Rdn>,
}

impl Ava {
    pub fn new(attr: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Ava {
            attr: attr.into(),
            value: value.into(),
        }
    }
}

impl Rdn {
    pub fn single(attr: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Rdn {
            avas: vec![Ava::new(attr, value)],
        }
    }

    pub fn parse(input: &str) -> Result<Rdn, DnError> {
        let dn = Dn::parse(input)?;
        match dn.rdns.len() {
            1 => Ok(dn.rdns.into_iter().next().unwrap_or(Rdn { avas: vec![] })),
            _ => Err(DnError {
                input: input.to_string(),
                reason: "expected exactly one RDN".into(),
            }),
        }
    }
}

impl Dn {
    pub fn root() -> Dn {
        Dn { rdns: Vec::new() }
    }

    pub fn is_root(&self) -> bool {
        self.rdns.is_empty()
    }

    /// Parses an RFC 4514 string. Spaces around `,`, `+` and `=` are tolerated
    /// (as RFC 2253 clients send `dc=example, dc=com`), `;` is accepted as a
    /// separator and a value may be quoted (`cn="dc=example,dc=com"`) as in
    /// RFC 1779, which 389-ds documentation uses for mapping-tree DNs. The
    /// quoted spelling parses to the same value as the escaped one, and
    /// printing always gives RFC 4514.
    pub fn parse(input: &str) -> Result<Dn, DnError> {
        let err = |reason: &str| DnError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let bytes = input.as_bytes();
        let mut rdns = Vec::new();
        if input.trim().is_empty() {
            return Ok(Dn::root());
        }
        let mut pos = 0usize;
        let mut avas = Vec::new();
        loop {
            // attribute type
            while bytes.get(pos) == Some(&b' ') {
                pos += 1;
            }
            let start = pos;
            while let Some(&c) = bytes.get(pos).filter(|c| **c != b'=') {
                if matches!(c, b',' | b'+' | b';' | b'\\' | b'"') {
                    return Err(err("attribute type contains a special character"));
                }
                pos += 1;
            }
            if pos >= bytes.len() {
                return Err(err("missing '=' after attribute type"));
            }
            let attr = input[start..pos].trim_end();
            if !valid_attr_type(attr) {
                return Err(err(&format!("invalid attribute type {attr:?}")));
            }
            pos += 1; // '='
            while bytes.get(pos) == Some(&b' ') {
                pos += 1;
            }
            let mut value = Vec::new();
            if bytes.get(pos) == Some(&b'#') {
                pos += 1;
                let hstart = pos;
                while bytes.get(pos).is_some_and(u8::is_ascii_hexdigit) {
                    pos += 1;
                }
                let hex = &input[hstart..pos];
                if hex.is_empty() || !hex.len().is_multiple_of(2) {
                    return Err(err("invalid hex string value"));
                }
                let raw = decode_hex(hex).ok_or_else(|| err("invalid hex string value"))?;
                value = unwrap_ber_string(raw);
                while bytes.get(pos) == Some(&b' ') {
                    pos += 1;
                }
                if bytes
                    .get(pos)
                    .is_some_and(|c| !matches!(c, b',' | b'+' | b';'))
                {
                    return Err(err("unexpected character after hex string value"));
                }
            } else if bytes.get(pos) == Some(&b'"') {
                let (quoted, end) = parse_quoted(bytes, pos + 1).map_err(&err)?;
                value = quoted;
                pos = end;
            } else {
                // `trailing` counts unescaped spaces at the end, which are insignificant.
                let mut trailing = 0usize;
                while let Some(&c) = bytes.get(pos) {
                    match c {
                        b',' | b'+' | b';' => break,
                        b'\\' => {
                            let (b, used) = unescape(bytes, pos + 1).map_err(&err)?;
                            value.push(b);
                            pos += 1 + used;
                            trailing = 0;
                        }
                        b'"' => return Err(err("unescaped '\"' in value")),
                        b'<' | b'>' => return Err(err("unescaped '<' or '>' in value")),
                        b'\0' => return Err(err("NUL in value")),
                        _ => {
                            if c == b' ' {
                                trailing += 1;
                            } else {
                                trailing = 0;
                            }
                            value.push(c);
                            pos += 1;
                        }
                    }
                }
                value.truncate(value.len() - trailing);
            }
            avas.push(Ava {
                attr: attr.to_string(),
                value,
            });
            if pos >= bytes.len() {
                rdns.push(Rdn {
                    avas: std::mem::take(&mut avas),
                });
                break;
            }
            match bytes.get(pos) {
                Some(b'+') => {}
                _ => rdns.push(Rdn {
                    avas: std::mem::take(&mut avas),
                }),
            }
            pos += 1;
            if pos >= bytes.len() {
                return Err(err("DN ends with a separator"));
            }
        }
        Ok(Dn { rdns })
    }

    /// A DN from `(attribute, value)` pairs, most specific first: the
    /// server's own fixed DNs, built without a parse that could fail.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Dn {
        Dn {
            rdns: pairs
                .iter()
                .map(|(attr, value)| Rdn {
                    avas: vec![Ava {
                        attr: attr.to_string(),
                        value: value.as_bytes().to_vec(),
                    }],
                })
                .collect(),
        }
    }

    /// The DN of the parent entry; `None` for the root DSE.
    pub fn parent(&self) -> Option<Dn> {
        if self.rdns.is_empty() {
            None
        } else {
            Some(Dn {
                rdns: self.rdns.iter().skip(1).cloned().collect(),
            })
        }
    }

    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    pub fn child(&self, rdn: Rdn) -> Dn {
        let mut rdns = Vec::with_capacity(self.rdns.len() + 1);
        rdns.push(rdn);
        rdns.extend(self.rdns.iter().cloned());
        Dn { rdns }
    }

    /// Replaces the suffix `old_base` (which must be an ancestor-or-self, compared by
    /// RDN count) with `new_base`; used for subtree renames.
    pub fn rebase(&self, old_base_len: usize, new_base: &Dn) -> Dn {
        let keep = self.rdns.len().saturating_sub(old_base_len);
        let mut rdns: Vec<Rdn> = self.rdns.iter().take(keep).cloned().collect();
        rdns.extend(new_base.rdns.iter().cloned());
        Dn { rdns }
    }

    /// A normalised string form: `norm` maps each (attribute type, value) to a
    /// canonical type name and a normalised value. RDN components are sorted so
    /// `a=1+b=2` and `b=2+a=1` compare equal.
    pub fn normalized_with(&self, norm: &AvaNormalizer<'_>) -> String {
        let mut out = String::new();
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&normalized_rdn(rdn, norm));
        }
        out
    }
}

/// Maps an AVA (type, value) to its canonical type name and normalised value.
pub type AvaNormalizer<'a> = dyn Fn(&str, &[u8]) -> (String, Vec<u8>) + 'a;

pub fn normalized_rdn(rdn: &Rdn, norm: &AvaNormalizer<'_>) -> String {
    let one = |a: &Ava| {
        let (t, v) = norm(&a.attr, &a.value);
        let mut s = t;
        s.push('=');
        escape_value_into(&v, &mut s);
        s
    };
    // Nearly every RDN has one AVA: no list to sort and join.
    if let [only] = rdn.avas.as_slice() {
        return one(only);
    }
    let mut parts: Vec<String> = rdn.avas.iter().map(one).collect();
    parts.sort();
    parts.join("+")
}

/// A quoted value (RFC 1779, RFC 2253 section 4), `start` just after the
/// opening quote: everything up to the closing quote is the value, with `\`
/// escapes as outside quotes. Returns the value and the position of the
/// separator (or the end) after the closing quote and any spaces.
fn parse_quoted(bytes: &[u8], start: usize) -> Result<(Vec<u8>, usize), &'static str> {
    let mut value = Vec::new();
    let mut pos = start;
    loop {
        match bytes.get(pos) {
            None => return Err("unterminated quoted value"),
            Some(b'"') => break,
            Some(b'\\') => {
                let (b, used) = unescape(bytes, pos + 1)?;
                value.push(b);
                pos += 1 + used;
            }
            Some(&c) => {
                value.push(c);
                pos += 1;
            }
        }
    }
    pos += 1;
    while bytes.get(pos) == Some(&b' ') {
        pos += 1;
    }
    match bytes.get(pos) {
        None | Some(b',' | b'+' | b';') => Ok((value, pos)),
        Some(_) => Err("unexpected character after quoted value"),
    }
}

/// The byte an escape stands for, `pos` just after the backslash, and how
/// many bytes the escape used.
fn unescape(bytes: &[u8], pos: usize) -> Result<(u8, usize), &'static str> {
    match bytes.get(pos) {
        None => Err("trailing backslash"),
        Some(n) if n.is_ascii_hexdigit() => {
            let h = bytes.get(pos..pos + 2).ok_or("bad escape")?;
            let s = std::str::from_utf8(h).map_err(|_| "bad escape")?;
            let b = u8::from_str_radix(s, 16).map_err(|_| "bad escape")?;
            Ok((b, 2))
        }
        Some(&n)
            if matches!(
                n,
                b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\'
            ) =>
        {
            Ok((n, 1))
        }
        Some(_) => Err("invalid escape sequence"),
    }
}

fn valid_attr_type(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if first.is_ascii_digit() {
        // numericoid
        s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    } else if first.is_ascii_alphabetic() {
        s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    } else {
        false
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// `#`-values are BER encodings; for the string types take the content octets.
fn unwrap_ber_string(raw: Vec<u8>) -> Vec<u8> {
    if let [0x04 | 0x0c | 0x13 | 0x16 | 0x1e, len, content @ ..] = raw.as_slice() {
        if *len < 0x80 && content.len() == usize::from(*len) {
            return content.to_vec();
        }
    }
    raw
}

/// Escapes a value per RFC 4514 §2.4.
pub fn escape_value_into(v: &[u8], out: &mut String) {
    let text = std::str::from_utf8(v).ok();
    let len = v.len();
    match text {
        Some(t) => {
            for (i, c) in t.char_indices() {
                let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
                    || (i == 0 && (c == '#' || c == ' '))
                    || (i + c.len_utf8() == len && c == ' ');
                if c == '\0' {
                    out.push_str("\\00");
                } else if special {
                    out.push('\\');
                    out.push(c);
                } else {
                    out.push(c);
                }
            }
        }
        None => {
            for b in v {
                out.push_str(&format!("\\{b:02x}"));
            }
        }
    }
}

impl fmt::Display for Ava {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(self.attr.len() + self.value.len() + 1);
        s.push_str(&self.attr);
        s.push('=');
        escape_value_into(&self.value, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Display for Rdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.avas.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_simple_and_spaced() {
        let dn = Dn::parse("uid=jdoe, ou=People ,dc=example,dc=com").unwrap();
        assert_eq!(dn.rdns.len(), 4);
        assert_eq!(dn.rdns[1].avas[0].value, b"People");
        assert_eq!(dn.to_string(), "uid=jdoe,ou=People,dc=example,dc=com");
    }

    #[test]
    fn parses_escapes_and_multivalued() {
        let dn = Dn::parse(r"cn=Smith\, John+uid=js,o=Acme\2c Inc.,dc=x").unwrap();
        assert_eq!(dn.rdns[0].avas.len(), 2);
        assert_eq!(dn.rdns[0].avas[0].value, b"Smith, John");
        assert_eq!(dn.rdns[1].avas[0].value, b"Acme, Inc.");
        assert_eq!(dn.to_string(), r"cn=Smith\, John+uid=js,o=Acme\, Inc.,dc=x");
        let dn = Dn::parse(r"cn=\#lead\ and trail\ ,dc=x").unwrap();
        assert_eq!(dn.rdns[0].avas[0].value, b"#lead and trail ");
        assert_eq!(dn.to_string(), r"cn=\#lead and trail\ ,dc=x");
        let dn = Dn::parse(r"cn=caf\C3\A9,dc=x").unwrap();
        assert_eq!(dn.rdns[0].avas[0].value, "café".as_bytes());
        let dn = Dn::parse("cn=#04024869,dc=x").unwrap();
        assert_eq!(dn.rdns[0].avas[0].value, b"Hi");
        let dn = Dn::parse("2.5.4.3=x").unwrap();
        assert_eq!(dn.rdns[0].avas[0].attr, "2.5.4.3");
    }

    #[test]
    fn rejects_bad() {
        for bad in [
            "cn", "cn=a,", "=a", "cn=a\\", "c n=a", "cn=a\"b", "cn=\\zz", ",dc=x", "cn=#0g",
            "1cn=x",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad} should fail");
        }
        assert!(Dn::parse("").unwrap().is_root());
    }

    #[test]
    fn accepts_quoted_values_as_389_ds_does() {
        // RFC 1779 / RFC 2253 section 4: a quoted value holds ',', '=', '+'
        // and ';' literally; it is the same value as its escaped spelling.
        let quoted = Dn::parse(r#"cn="dc=example,dc=com",cn=mapping tree,cn=config"#).unwrap();
        let escaped = Dn::parse(r"cn=dc\3Dexample\2Cdc\3Dcom,cn=mapping tree,cn=config").unwrap();
        assert_eq!(quoted, escaped);
        assert_eq!(quoted.rdns[0].avas[0].value, b"dc=example,dc=com");
        assert_eq!(
            quoted.to_string(),
            r"cn=dc=example\,dc=com,cn=mapping tree,cn=config"
        );
        assert_eq!(Dn::parse(&quoted.to_string()).unwrap(), quoted);
        // Spaces inside the quotes are kept, outside they are not.
        let dn = Dn::parse(r#"cn = " a+b;c " , o=x"#).unwrap();
        assert_eq!(dn.rdns[0].avas[0].value, b" a+b;c ");
        assert_eq!(dn.to_string(), r"cn=\ a\+b\;c\ ,o=x");
        // Escapes inside quotes, a quoted value in a multi-valued RDN.
        let dn = Dn::parse(r#"cn="say \"hi\" \\ now"+uid="a,b",o=x"#).unwrap();
        assert_eq!(dn.rdns[0].avas[0].value, br#"say "hi" \ now"#);
        assert_eq!(dn.rdns[0].avas[1].value, b"a,b");
        assert_eq!(Dn::parse(r#"cn="""#).unwrap().rdns[0].avas[0].value, b"");
        for bad in [
            r#"cn="open,o=x"#,
            r#"cn="a"b,o=x"#,
            r#"cn=a"b",o=x"#,
            r#"cn="a\"#,
            r#"cn="a\zz",o=x"#,
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn rejects_garbage_after_hex_value() {
        // Found by fuzzing: the byte after a hex value was taken as a
        // separator, and a multi-byte character there made parse panic.
        assert!(Dn::parse("cn=#0402\u{323}=i,dc=y").is_err());
        assert!(Dn::parse("cn=#0402x,dc=y").is_err());
        assert_eq!(Dn::parse("cn=#0402 ,dc=y").unwrap().rdns.len(), 2);
        assert_eq!(Dn::parse("cn=#0402+uid=a").unwrap().rdns[0].avas.len(), 2);
    }

    #[test]
    fn parent_child_rebase() {
        let dn = Dn::parse("uid=a,ou=p,dc=x").unwrap();
        assert_eq!(dn.parent().unwrap().to_string(), "ou=p,dc=x");
        let moved = dn.rebase(2, &Dn::parse("ou=q,dc=y").unwrap());
        assert_eq!(moved.to_string(), "uid=a,ou=q,dc=y");
        assert_eq!(
            Dn::parse("dc=x")
                .unwrap()
                .child(Rdn::single("ou", "p"))
                .to_string(),
            "ou=p,dc=x"
        );
    }

    #[test]
    fn normalization_sorts_multivalued_rdns() {
        let lower = |t: &str, v: &[u8]| (t.to_ascii_lowercase(), v.to_ascii_lowercase());
        let a = Dn::parse("CN=A+UID=b,DC=X")
            .unwrap()
            .normalized_with(&lower);
        let b = Dn::parse("uid=B+cn=a,dc=x")
            .unwrap()
            .normalized_with(&lower);
        assert_eq!(a, b);
        assert_eq!(a, "cn=a+uid=b,dc=x");
    }

    fn arb_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[ -~]{1,12}".prop_map(|s| s.into_bytes()),
            "[a-zé#,+ \\\\]{1,8}".prop_map(|s| s.into_bytes()),
            proptest::collection::vec(any::<u8>(), 1..8),
        ]
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(vals in proptest::collection::vec(("[a-z][a-z0-9-]{0,6}", arb_value()), 1..5)) {
            let dn = Dn { rdns: vals.into_iter().map(|(a, v)| Rdn::single(a, v)).collect() };
            let printed = dn.to_string();
            let parsed = Dn::parse(&printed).unwrap();
            prop_assert_eq!(parsed, dn);
        }

        #[test]
        fn quoted_value_is_the_value(v in "[ -~]{0,12}", junk in ".{0,12}") {
            let quoted = format!("cn=\"{}\",o=x", v.replace('\\', "\\\\").replace('"', "\\\""));
            let dn = Dn::parse(&quoted).unwrap();
            prop_assert_eq!(&dn.rdns[0].avas[0].value, v.as_bytes());
            prop_assert_eq!(Dn::parse(&dn.to_string()).unwrap(), dn);
            // Never a panic, whatever follows a quote.
            let _ = Dn::parse(&format!("cn=\"{junk}"));
        }
    }
}
