//! Attribute index configuration and key derivation. Keys are
//! `attr NUL kind payload`: kind `=` equality (normalised value), `*`
//! presence, `^`/`$` substring initial/final (first/last up to three
//! characters, final stored reversed so shorter finals are a prefix scan),
//! `~` substring trigrams.

use crate::model::Entry;
use crate::schema::{AttributeType, Schema};
use crate::store::IndexKey;
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

impl IndexConfig {
    /// The indexes of the `[indexes]` configuration section (attribute ->
    /// "eq,pres,sub"); absent, the default set.
    pub fn from_specs<'a>(
        specs: Option<impl IntoIterator<Item = (&'a String, &'a String)>>,
    ) -> Result<IndexConfig, String> {
        let Some(specs) = specs else {
            return Ok(IndexConfig::default());
        };
        let mut attrs = HashMap::new();
        for (attr, spec) in specs {
            let kinds = IndexKinds::parse(spec).map_err(|e| format!("index for {attr}: {e}"))?;
            attrs.insert(attr.to_ascii_lowercase(), kinds);
        }
        Ok(IndexConfig { attrs })
    }
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
            // Referential integrity looks these up at every delete and rename.
            "manager",
            "seealso",
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

pub fn eq_key(at: &AttributeType, normalized: &[u8]) -> IndexKey {
    let mut k = prefix(at, b'=');
    k.extend_from_slice(normalized);
    IndexKey::from_bytes(k)
}

pub fn pres_key(at: &AttributeType) -> IndexKey {
    IndexKey::from_bytes(prefix(at, b'*'))
}

/// Character boundaries of a (possibly non-UTF-8) normalised value.
fn chars(v: &[u8]) -> Vec<&[u8]> {
    match std::str::from_utf8(v) {
        Ok(s) => s
            .char_indices()
            .filter_map(|(i, c)| v.get(i..i + c.len_utf8()))
            .collect(),
        Err(_) => v.chunks(1).collect(),
    }
}

pub fn initial_key(at: &AttributeType, norm: &[u8]) -> IndexKey {
    let mut k = prefix(at, b'^');
    for c in chars(norm).into_iter().take(3) {
        k.extend_from_slice(c);
    }
    IndexKey::from_bytes(k)
}

pub fn final_key(at: &AttributeType, norm: &[u8]) -> IndexKey {
    let mut k = prefix(at, b'$');
    for c in chars(norm).into_iter().rev().take(3) {
        k.extend_from_slice(c);
    }
    IndexKey::from_bytes(k)
}

/// Trigram keys of a normalised string (empty when shorter than three characters).
pub fn trigram_keys(at: &AttributeType, norm: &[u8]) -> Vec<IndexKey> {
    let cs = chars(norm);
    cs.windows(3)
        .map(|w| {
            let mut k = prefix(at, b'~');
            for c in w {
                k.extend_from_slice(c);
            }
            IndexKey::from_bytes(k)
        })
        .collect()
}

/// Every index key an entry contributes under `cfg`.
///
/// Same keys as the single-key functions above, built from one lowercased
/// name and one character split per value: this runs for every added entry,
/// so bulk loads spend much of their time here.
pub fn entry_keys(schema: &Schema, cfg: &IndexConfig, entry: &Entry) -> BTreeSet<IndexKey> {
    // Collecting a sorted, deduplicated Vec builds the set in bulk.
    entry_keys_sorted(schema, cfg, entry).into_iter().collect()
}

/// `entry_keys` as a sorted, deduplicated Vec: adding an entry only walks
/// its keys once, so building a set for it would be wasted work.
pub fn entry_keys_sorted(schema: &Schema, cfg: &IndexConfig, entry: &Entry) -> Vec<IndexKey> {
    let mut keys: Vec<IndexKey> = Vec::with_capacity(64);
    for attr in &entry.attrs {
        let Some(at) = schema.attribute(&attr.name) else {
            continue;
        };
        // One lowercased name serves both the config lookup and the key prefix.
        let mut name = at.name().to_ascii_lowercase();
        let kinds = cfg.attrs.get(&name).copied().unwrap_or_default();
        if !(kinds.eq || kinds.pres || kinds.sub) || attr.values.is_empty() {
            continue;
        }
        name.push('\0');
        let name = name.into_bytes();
        let key = |kind: u8, parts: &[&[u8]]| {
            let len = parts.iter().map(|p| p.len()).sum::<usize>();
            let mut k = Vec::with_capacity(name.len() + 1 + len);
            k.extend_from_slice(&name);
            k.push(kind);
            for p in parts {
                k.extend_from_slice(p);
            }
            IndexKey::from_bytes(k)
        };
        if kinds.pres {
            keys.push(key(b'*', &[]));
        }
        for v in &attr.values {
            if kinds.eq {
                if let Ok(n) = schema.eq_normalize(&at, &v.bytes) {
                    keys.push(key(b'=', &[&n]));
                }
            }
            if kinds.sub {
                let Some(n) = schema.substr_normalize(&at, &v.bytes) else {
                    continue;
                };
                if n.is_empty() {
                    continue;
                }
                let cs = chars(&n);
                let head = cs.iter().take(3).copied();
                keys.push(key(b'^', &head.collect::<Vec<_>>()));
                let tail = cs.iter().rev().take(3).copied();
                keys.push(key(b'$', &tail.collect::<Vec<_>>()));
                keys.extend(cs.windows(3).map(|w| key(b'~', w)));
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ik(b: &[u8]) -> crate::store::IndexKey {
        crate::store::IndexKey::from_bytes(b.to_vec())
    }
    use crate::model::{Csn, Dn};

    /// The per-entry keys are exactly the union of the single-key functions'.
    #[test]
    fn entry_keys_match_the_single_key_functions() {
        let schema = Schema::builtin().unwrap();
        let cfg = IndexConfig::default();
        let mut e = Entry::new(Dn::parse("uid=x,dc=x").unwrap());
        e.set(
            "objectClass",
            vec![b"top".to_vec(), b"person".to_vec()],
            Csn::ZERO,
        );
        e.set("uid", vec!["jér".as_bytes().to_vec()], Csn::ZERO);
        e.set(
            "cn",
            vec![b"Ab".to_vec(), b"Jean  Dupont".to_vec()],
            Csn::ZERO,
        );
        e.set("sn", vec![b"Dupont".to_vec()], Csn::ZERO);
        e.set("description", vec![b"not indexed".to_vec()], Csn::ZERO);
        let mut want = BTreeSet::new();
        for attr in &e.attrs {
            let Some(at) = schema.attribute(&attr.name) else {
                continue;
            };
            let kinds = cfg.kinds(&at);
            for v in &attr.values {
                if kinds.eq {
                    want.insert(eq_key(&at, &schema.eq_normalize(&at, &v.bytes).unwrap()));
                }
                if kinds.sub {
                    let n = schema.substr_normalize(&at, &v.bytes).unwrap();
                    want.insert(initial_key(&at, &n));
                    want.insert(final_key(&at, &n));
                    want.extend(trigram_keys(&at, &n));
                }
            }
        }
        let got = entry_keys(&schema, &cfg, &e);
        assert!(got.contains(&ik(b"uid\0^j\xc3\xa9r")));
        assert!(got.contains(&ik(b"cn\0$tno")));
        assert_eq!(got, want);
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn configured_indexes_are_parsed_and_bad_kinds_refused() {
        let sample: crate::config::Config =
            toml::from_str(include_str!("../../config/ferrodir.toml")).unwrap();
        let cfg = IndexConfig::from_specs(sample.indexes.as_ref()).unwrap();
        assert!(cfg.attrs.contains_key("uid"));
        let bad: crate::config::Config = toml::from_str("[indexes]\nuid = \"eq,fast\"").unwrap();
        let err = IndexConfig::from_specs(bad.indexes.as_ref()).unwrap_err();
        assert!(
            err.contains("index for uid") && err.contains("fast"),
            "{err}"
        );
        let none: Option<&std::collections::BTreeMap<String, String>> = None;
        assert_eq!(
            IndexConfig::from_specs(none).unwrap().attrs,
            IndexConfig::default().attrs
        );
    }
}
