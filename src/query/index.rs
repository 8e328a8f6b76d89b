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
    keys_of(schema, cfg, entry, None)
}

/// The index keys to remove and to add when `old` becomes `new` (either
/// absent: the entry is added or removed), sorted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyDelta {
    pub removed: Vec<IndexKey>,
    pub added: Vec<IndexKey>,
}

/// What a rewrite of an entry does to the index. The keys of an attribute
/// type depend only on that type's values, so only the indexed types whose
/// values differ are derived again: a modify of one unindexed attribute
/// (a replicated `replace: description` with its modifyTimestamp and
/// entryCSN) derives no key at all.
pub fn key_delta(
    schema: &Schema,
    cfg: &IndexConfig,
    old: Option<&Entry>,
    new: Option<&Entry>,
) -> KeyDelta {
    let (old_keys, new_keys) = match (old, new) {
        (None, None) => return KeyDelta::default(),
        (Some(o), None) => (keys_of(schema, cfg, o, None), Vec::new()),
        (None, Some(n)) => (Vec::new(), keys_of(schema, cfg, n, None)),
        (Some(o), Some(n)) => {
            let types = changed_indexed_types(schema, cfg, o, n);
            if types.is_empty() {
                return KeyDelta::default();
            }
            (
                keys_of(schema, cfg, o, Some(&types)),
                keys_of(schema, cfg, n, Some(&types)),
            )
        }
    };
    sorted_difference(old_keys, new_keys)
}

/// Both sides of two sorted, deduplicated key lists' symmetric difference.
fn sorted_difference(old: Vec<IndexKey>, new: Vec<IndexKey>) -> KeyDelta {
    let mut delta = KeyDelta::default();
    let mut o = old.into_iter().peekable();
    let mut n = new.into_iter().peekable();
    loop {
        match (o.peek(), n.peek()) {
            (Some(a), Some(b)) => match a.cmp(b) {
                std::cmp::Ordering::Less => delta.removed.extend(o.next()),
                std::cmp::Ordering::Greater => delta.added.extend(n.next()),
                std::cmp::Ordering::Equal => {
                    o.next();
                    n.next();
                }
            },
            (Some(_), None) => delta.removed.extend(o.by_ref()),
            (None, Some(_)) => delta.added.extend(n.by_ref()),
            (None, None) => return delta,
        }
    }
}

/// The indexed attribute types (lowercased primary names, sorted) whose
/// values differ between two versions of an entry. An attribute counts as
/// unchanged when the other version has one of the same name with the same
/// values; a type with any attribute left unpaired is
/// changed, so names given as aliases or split over several attributes are
/// derived again whole.
pub fn changed_indexed_types(
    schema: &Schema,
    cfg: &IndexConfig,
    old: &Entry,
    new: &Entry,
) -> Vec<String> {
    let same = |a: &crate::model::Attribute, b: &crate::model::Attribute| {
        a.name.eq_ignore_ascii_case(&b.name) && same_values(&a.values, &b.values)
    };
    let mut paired = vec![false; new.attrs.len()];
    let mut unpaired: Vec<&str> = Vec::new();
    for (i, a) in old.attrs.iter().enumerate() {
        // Versions written by the same code keep their order: try the same
        // position first.
        let n = new.attrs.len();
        let found = (0..n).map(|k| (i + k) % n.max(1)).find(|&j| {
            paired.get(j) == Some(&false) && new.attrs.get(j).is_some_and(|b| same(a, b))
        });
        match found.and_then(|j| paired.get_mut(j)) {
            Some(p) => *p = true,
            None => unpaired.push(&a.name),
        }
    }
    for (b, p) in new.attrs.iter().zip(&paired) {
        if !p {
            unpaired.push(&b.name);
        }
    }
    let mut types: Vec<String> = unpaired
        .into_iter()
        .filter_map(|name| schema.attribute(name))
        .map(|at| at.name().to_ascii_lowercase())
        .filter(|name| cfg.attrs.get(name).is_some_and(|k| k.eq || k.pres || k.sub))
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// Whether two value lists hold the same bytes, in any order: a state
/// rewrites an entry with its values in the state's order, which need not
/// be the order they were first stored in.
fn same_values(a: &[crate::model::Value], b: &[crate::model::Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.iter().zip(b).all(|(x, y)| x.bytes == y.bytes) {
        return true;
    }
    let mut a: Vec<&[u8]> = a.iter().map(|v| v.bytes.as_slice()).collect();
    let mut b: Vec<&[u8]> = b.iter().map(|v| v.bytes.as_slice()).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// The keys of `entry`, of every indexed type or only of `only` (sorted
/// lowercased primary names), sorted and deduplicated.
fn keys_of(
    schema: &Schema,
    cfg: &IndexConfig,
    entry: &Entry,
    only: Option<&[String]>,
) -> Vec<IndexKey> {
    let mut keys: Vec<IndexKey> = Vec::with_capacity(64);
    for attr in &entry.attrs {
        let Some(at) = schema.attribute(&attr.name) else {
            continue;
        };
        // One lowercased name serves both the config lookup and the key prefix.
        let mut name = at.name().to_ascii_lowercase();
        if only.is_some_and(|o| o.binary_search(&name).is_err()) {
            continue;
        }
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
mod delta_tests {
    use super::*;
    use crate::model::{Attribute, Csn, Dn};

    fn person() -> Entry {
        let mut e = Entry::new(Dn::parse("uid=jd,dc=x").unwrap());
        e.set(
            "objectClass",
            vec![b"top".to_vec(), b"inetOrgPerson".to_vec()],
            Csn::ZERO,
        );
        e.set("uid", vec![b"jd".to_vec()], Csn::ZERO);
        e.set("cn", vec![b"Jean Dupont".to_vec()], Csn::ZERO);
        e.set("sn", vec![b"Dupont".to_vec()], Csn::ZERO);
        e.set("description", vec![b"first".to_vec()], Csn::ZERO);
        e.set(
            "modifyTimestamp",
            vec![b"20240101000000Z".to_vec()],
            Csn::ZERO,
        );
        e
    }

    /// What rewriting every key would do: all old keys out, all new in.
    fn full_delta(schema: &Schema, cfg: &IndexConfig, old: &Entry, new: &Entry) -> KeyDelta {
        let o = entry_keys(schema, cfg, old);
        let n = entry_keys(schema, cfg, new);
        KeyDelta {
            removed: o.difference(&n).cloned().collect(),
            added: n.difference(&o).cloned().collect(),
        }
    }

    #[test]
    fn a_changed_attribute_gets_its_keys_updated() {
        let schema = Schema::builtin().unwrap();
        let cfg = IndexConfig::default();
        let old = person();
        let mut new = old.clone();
        new.set("cn", vec![b"Jeanne Durand".to_vec()], Csn::ZERO);
        new.set("description", vec![b"second".to_vec()], Csn::ZERO);
        let delta = key_delta(&schema, &cfg, Some(&old), Some(&new));
        assert!(delta
            .removed
            .contains(&IndexKey::from_bytes(b"cn\0=jean dupont".to_vec())));
        assert!(delta
            .added
            .contains(&IndexKey::from_bytes(b"cn\0=jeanne durand".to_vec())));
        assert!(delta
            .added
            .contains(&IndexKey::from_bytes(b"cn\0~dur".to_vec())));
        assert_eq!(delta, full_delta(&schema, &cfg, &old, &new));
    }

    /// Every kind of rewrite gives exactly the keys a full rewrite would.
    #[test]
    fn the_delta_equals_a_full_rewrite() {
        let schema = Schema::builtin().unwrap();
        let mut cfg = IndexConfig::default();
        cfg.attrs.insert(
            "description".into(),
            IndexKinds {
                eq: true,
                pres: true,
                sub: true,
            },
        );
        let base = person();
        let mut cases: Vec<Entry> = Vec::new();
        // A value added, one removed, the attribute removed, one added.
        let mut e = base.clone();
        e.get_mut("cn").unwrap().values.push(crate::model::Value {
            bytes: b"JD".to_vec(),
            csn: Csn::ZERO,
        });
        cases.push(e);
        let mut e = base.clone();
        e.set("objectClass", vec![b"top".to_vec()], Csn::ZERO);
        cases.push(e);
        let mut e = base.clone();
        e.remove("description");
        cases.push(e);
        let mut e = base.clone();
        e.set("mail", vec![b"jd@x".to_vec()], Csn::ZERO);
        cases.push(e);
        // Only the order of the attributes, or of values, differs.
        let mut e = base.clone();
        e.attrs.reverse();
        cases.push(e);
        let mut e = base.clone();
        e.get_mut("objectClass").unwrap().values.reverse();
        cases.push(e);
        // The same type under an alias, and split over two attributes.
        let mut e = base.clone();
        e.remove("cn");
        e.attrs.push(Attribute::new(
            "commonName",
            vec![b"Jean Dupont".to_vec()],
            Csn::ZERO,
        ));
        cases.push(e);
        let mut e = base.clone();
        e.attrs.push(Attribute::new(
            "CN",
            vec![b"Jean Dupont".to_vec()],
            Csn::ZERO,
        ));
        cases.push(e);
        let mut e = base.clone();
        e.attrs
            .push(Attribute::new("cn", vec![b"Other".to_vec()], Csn::ZERO));
        cases.push(e);
        // Values equal under the matching rule but not as bytes.
        let mut e = base.clone();
        e.set("sn", vec![b"DUPONT".to_vec()], Csn::ZERO);
        cases.push(e);
        cases.push(Entry::new(base.dn.clone()));
        for new in &cases {
            for (a, b) in [(&base, new), (new, &base)] {
                assert_eq!(
                    key_delta(&schema, &cfg, Some(a), Some(b)),
                    full_delta(&schema, &cfg, a, b),
                    "{a:?} -> {b:?}"
                );
            }
        }
        let added = key_delta(&schema, &cfg, None, Some(&base));
        assert_eq!(added.added, entry_keys_sorted(&schema, &cfg, &base));
        assert!(added.removed.is_empty());
        let removed = key_delta(&schema, &cfg, Some(&base), None);
        assert_eq!(removed.removed, entry_keys_sorted(&schema, &cfg, &base));
    }

    /// Only the indexed types whose values differ are derived again.
    #[test]
    fn untouched_and_unindexed_attributes_are_not_derived_again() {
        let schema = Schema::builtin().unwrap();
        let cfg = IndexConfig::default();
        let old = person();
        let mut new = old.clone();
        new.set(
            "description",
            vec![b"second".to_vec()],
            Csn::new(2, 0, 1, 0),
        );
        new.set(
            "modifyTimestamp",
            vec![b"20250101000000Z".to_vec()],
            Csn::new(2, 0, 1, 0),
        );
        // New CSNs on unchanged values, or another order, change no key.
        new.set("sn", vec![b"Dupont".to_vec()], Csn::new(2, 0, 1, 0));
        new.get_mut("objectClass").unwrap().values.reverse();
        assert!(changed_indexed_types(&schema, &cfg, &old, &new).is_empty());
        assert_eq!(
            key_delta(&schema, &cfg, Some(&old), Some(&new)),
            KeyDelta::default()
        );
        new.set("sn", vec![b"Durand".to_vec()], Csn::ZERO);
        new.attrs
            .push(Attribute::new("commonName", vec![b"J".to_vec()], Csn::ZERO));
        assert_eq!(
            changed_indexed_types(&schema, &cfg, &old, &new),
            vec!["cn".to_string(), "sn".to_string()]
        );
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
