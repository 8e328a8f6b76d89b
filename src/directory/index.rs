//! Attribute index configuration and key derivation. Keys are
//! `attr NUL kind payload`: kind `=` equality (normalised value), `*`
//! presence, `^`/`$` substring initial/final (first/last up to three
//! characters, final stored reversed so shorter finals are a prefix scan),
//! `~` substring trigrams.

use crate::model::Entry;
use crate::schema::{AttributeType, Schema};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexKinds {
    pub eq: bool,
    pub pres: bool,
    pub sub: bool,
}

impl IndexKinds {
    /// Parses "eq", "pres", "sub" (comma or space separated).
    pub fn parse(spec: &str) -> Result<IndexKinds, String> {
        let mut k = IndexKinds::default();
        for part in spec.split([',', ' ']).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "eq" | "equality" => k.eq = true,
                "pres" | "presence" => k.pres = true,
                "sub" | "substr" | "substring" => k.sub = true,
                other => return Err(format!("unknown index kind {other:?} (eq, pres, sub)")),
            }
        }
        Ok(k)
    }
}

/// Indexed attributes by lowercased primary name.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    pub attrs: HashMap<String, IndexKinds>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        let eq = IndexKinds {
            eq: true,
            ..Default::default()
        };
        let eq_sub = IndexKinds {
            eq: true,
            sub: true,
            ..Default::default()
        };
        let mut attrs = HashMap::new();
        attrs.insert("objectclass".to_string(), eq);
        for a in ["uid", "cn", "sn", "mail"] {
            attrs.insert(a.to_string(), eq_sub);
        }
        for a in [
            "uidnumber",
            "gidnumber",
            "memberuid",
            "member",
            "uniquemember",
            "entryuuid",
            "sambasid",
        ] {
            attrs.insert(a.to_string(), eq);
        }
        IndexConfig { attrs }
    }
}

impl IndexConfig {
    pub fn kinds(&self, at: &AttributeType) -> IndexKinds {
        self.attrs
            .get(&at.name().to_ascii_lowercase())
            .copied()
            .unwrap_or_default()
    }
}

fn prefix(at: &AttributeType, kind: u8) -> Vec<u8> {
    let mut k = at.name().to_ascii_lowercase().into_bytes();
    k.push(0);
    k.push(kind);
    k
}

pub fn eq_key(at: &AttributeType, normalized: &[u8]) -> Vec<u8> {
    let mut k = prefix(at, b'=');
    k.extend_from_slice(normalized);
    k
}

pub fn pres_key(at: &AttributeType) -> Vec<u8> {
    prefix(at, b'*')
}

/// Character boundaries of a (possibly non-UTF-8) normalised value.
fn chars(v: &[u8]) -> Vec<&[u8]> {
    match std::str::from_utf8(v) {
        Ok(s) => s
            .char_indices()
            .map(|(i, c)| &v[i..i + c.len_utf8()])
            .collect(),
        Err(_) => v.chunks(1).collect(),
    }
}

pub fn initial_key(at: &AttributeType, norm: &[u8]) -> Vec<u8> {
    let mut k = prefix(at, b'^');
    for c in chars(norm).into_iter().take(3) {
        k.extend_from_slice(c);
    }
    k
}

pub fn final_key(at: &AttributeType, norm: &[u8]) -> Vec<u8> {
    let mut k = prefix(at, b'$');
    for c in chars(norm).into_iter().rev().take(3) {
        k.extend_from_slice(c);
    }
    k
}

/// Trigram keys of a normalised string (empty when shorter than three characters).
pub fn trigram_keys(at: &AttributeType, norm: &[u8]) -> Vec<Vec<u8>> {
    let cs = chars(norm);
    cs.windows(3)
        .map(|w| {
            let mut k = prefix(at, b'~');
            for c in w {
                k.extend_from_slice(c);
            }
            k
        })
        .collect()
}

/// Every index key an entry contributes under `cfg`.
pub fn entry_keys(schema: &Schema, cfg: &IndexConfig, entry: &Entry) -> BTreeSet<Vec<u8>> {
    let mut keys = BTreeSet::new();
    for attr in &entry.attrs {
        let Some(at) = schema.attribute(&attr.name) else {
            continue;
        };
        let kinds = cfg.kinds(&at);
        if !(kinds.eq || kinds.pres || kinds.sub) || attr.values.is_empty() {
            continue;
        }
        if kinds.pres {
            keys.insert(pres_key(&at));
        }
        for v in &attr.values {
            if kinds.eq {
                if let Ok(n) = schema.eq_normalize(&at, &v.bytes) {
                    keys.insert(eq_key(&at, &n));
                }
            }
            if kinds.sub {
                if let Some(n) = schema.substr_normalize(&at, &v.bytes) {
                    if !n.is_empty() {
                        keys.insert(initial_key(&at, &n));
                        keys.insert(final_key(&at, &n));
                        keys.extend(trigram_keys(&at, &n));
                    }
                }
            }
        }
    }
    keys
}
