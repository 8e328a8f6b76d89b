//! Search filters (RFC 4511 §4.5.1.7): three-valued evaluation against an
//! entry, and index planning (which candidate ids an indexed filter allows).

use super::index::{self, IndexConfig};
use crate::model::Entry;
use crate::schema::{AttributeType, Schema};
use crate::store::{IndexKey, Result as StoreResult, StoreRead};
use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Undefined,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// Values of computed attributes by lowercased name.
pub type ComputedValues<'a> = dyn Fn(&str, &Entry) -> Option<Vec<Vec<u8>>> + 'a;

/// What evaluation needs besides the filter and the entry.
pub struct EvalContext<'a> {
    pub schema: &'a Schema,
    /// Attributes the requester may not search: terms on them are Undefined.
    pub hidden: &'a dyn Fn(&AttributeType) -> bool,
    /// Values of computed attributes (entryDN, hasSubordinates, ...), by lowercased name.
    pub computed: &'a ComputedValues<'a>,
}

/// Strips attribute options (`userCertificate;binary` -> `userCertificate`).
pub fn base_attr_name(desc: &str) -> &str {
    desc.split(';').next().unwrap_or(desc)
}

impl EvalContext<'_> {
    fn resolve(&self, desc: &str) -> Option<Arc<AttributeType>> {
        let at = self.schema.attribute(base_attr_name(desc))?;
        if (self.hidden)(&at) {
            None
        } else {
            Some(at)
        }
    }

    fn values<'e>(&self, at: &AttributeType, entry: &'e Entry) -> Vec<std::borrow::Cow<'e, [u8]>> {
        if let Some(a) = entry.get(at.name()) {
            let mut vals: Vec<std::borrow::Cow<'e, [u8]>> = a
                .values
                .iter()
                .map(|v| std::borrow::Cow::Borrowed(v.bytes.as_slice()))
                .collect();
            self.add_subtype_values(at, entry, &mut vals);
            return vals;
        }
        // A filter on a supertype (e.g. `name`) also matches its subtypes (cn, sn ...).
        let mut vals = Vec::new();
        self.add_subtype_values(at, entry, &mut vals);
        if !vals.is_empty() {
            return vals;
        }
        // Entries may hold a value under an alias spelling; fall back to the computed ones.
        for name in &at.names {
            if let Some(a) = entry.get(name) {
                return a
                    .values
                    .iter()
                    .map(|v| std::borrow::Cow::Borrowed(v.bytes.as_slice()))
                    .collect();
            }
        }
        (self.computed)(&at.name().to_ascii_lowercase(), entry)
            .unwrap_or_default()
            .into_iter()
            .map(std::borrow::Cow::Owned)
            .collect()
    }

    fn add_subtype_values<'e>(
        &self,
        at: &AttributeType,
        entry: &'e Entry,
        out: &mut Vec<std::borrow::Cow<'e, [u8]>>,
    ) {
        if !self.schema.has_subtypes(at) {
            return;
        }
        for a in &entry.attrs {
            if a.name.eq_ignore_ascii_case(at.name()) {
                continue;
            }
            let Some(sub) = self.schema.attribute(&a.name) else {
                continue;
            };
            if sub.sup.is_some() && !(self.hidden)(&sub) && self.schema.is_subtype(&sub, at) {
                out.extend(
                    a.values
                        .iter()
                        .map(|v| std::borrow::Cow::Borrowed(v.bytes.as_slice())),
                );
            }
        }
    }

    pub fn eval(&self, f: &LdapFilter, entry: &Entry) -> Tri {
        match f {
            LdapFilter::And(list) => {
                let mut result = Tri::True;
                for sub in list {
                    match self.eval(sub, entry) {
                        Tri::False => return Tri::False,
                        Tri::Undefined => result = Tri::Undefined,
                        Tri::True => {}
                    }
                }
                result
            }
            LdapFilter::Or(list) => {
                let mut result = Tri::False;
                for sub in list {
                    match self.eval(sub, entry) {
                        Tri::True => return Tri::True,
                        Tri::Undefined => result = Tri::Undefined,
                        Tri::False => {}
                    }
                }
                result
            }
            LdapFilter::Not(inner) => match self.eval(inner, entry) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Undefined => Tri::Undefined,
            },
            LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
                self.equality(attr, value.as_bytes(), entry)
            }
            LdapFilter::Present(attr) => {
                let Some(at) = self.resolve(attr) else {
                    return Tri::Undefined;
                };
                Tri::from_bool(!self.values(&at, entry).is_empty())
            }
            LdapFilter::Substring(attr, sub) => self.substring(attr, sub, entry),
            LdapFilter::GreaterOrEqual(attr, value) => {
                self.ordering(attr, value.as_bytes(), entry, true)
            }
            LdapFilter::LessOrEqual(attr, value) => {
                self.ordering(attr, value.as_bytes(), entry, false)
            }
            LdapFilter::Extensible(mra) => self.extensible(mra, entry),
        }
    }

    fn equality(&self, attr: &str, value: &[u8], entry: &Entry) -> Tri {
        let Some(at) = self.resolve(attr) else {
            return Tri::Undefined;
        };
        let Ok(assertion) = self.schema.eq_normalize(&at, value) else {
            return Tri::Undefined;
        };
        let mut result = Tri::False;
        for v in self.values(&at, entry) {
            match self.schema.eq_normalize(&at, &v) {
                Ok(n) if n == assertion => return Tri::True,
                Ok(_) => {}
                Err(_) => result = Tri::Undefined,
            }
        }
        result
    }

    fn ordering(&self, attr: &str, value: &[u8], entry: &Entry, ge: bool) -> Tri {
        let Some(at) = self.resolve(attr) else {
            return Tri::Undefined;
        };
        if at.ordering.is_none() {
            return Tri::Undefined;
        }
        let mut result = Tri::False;
        for v in self.values(&at, entry) {
            match self.schema.compare(&at, &v, value) {
                Some(o) if (ge && o.is_ge()) || (!ge && o.is_le()) => return Tri::True,
                Some(_) => {}
                None => result = Tri::Undefined,
            }
        }
        result
    }

    fn substring(&self, attr: &str, sub: &LdapSubstringFilter, entry: &Entry) -> Tri {
        let Some(at) = self.resolve(attr) else {
            return Tri::Undefined;
        };
        let Some(parts) = substring_parts(self.schema, &at, sub) else {
            return Tri::Undefined;
        };
        for v in self.values(&at, entry) {
            if let Some(n) = self.schema.substr_normalize(&at, &v) {
                if parts.matches(&n) {
                    return Tri::True;
                }
            }
        }
        Tri::False
    }

    fn extensible(&self, mra: &LdapMatchingRuleAssertion, entry: &Entry) -> Tri {
        let rule = mra.matching_rule.as_deref();
        let assertion = mra.match_value.as_bytes();
        if let Some(r) = rule {
            if !self.schema.has_matching_rule(r) {
                return Tri::Undefined;
            }
        }
        let mut result = Tri::False;
        let mut check = |at: &AttributeType, v: &[u8]| -> bool {
            match self.schema.extensible_match(rule, at, assertion, v) {
                Some(true) => true,
                Some(false) => false,
                None => {
                    result = Tri::Undefined;
                    false
                }
            }
        };
        match &mra.type_ {
            Some(t) => {
                let Some(at) = self.resolve(t) else {
                    return Tri::Undefined;
                };
                for v in self.values(&at, entry) {
                    if check(&at, &v) {
                        return Tri::True;
                    }
                }
                if mra.dn_attributes {
                    for rdn in &entry.dn.rdns {
                        for ava in &rdn.avas {
                            let same = self
                                .schema
                                .attribute(&ava.attr)
                                .is_some_and(|a| a.oid == at.oid);
                            if same && check(&at, &ava.value) {
                                return Tri::True;
                            }
                        }
                    }
                }
            }
            None => {
                if rule.is_none() {
                    return Tri::Undefined;
                }
                for a in &entry.attrs {
                    let Some(at) = self.resolve(&a.name) else {
                        continue;
                    };
                    for v in &a.values {
                        if self.schema.extensible_match(rule, &at, assertion, &v.bytes)
                            == Some(true)
                        {
                            return Tri::True;
                        }
                    }
                }
                if mra.dn_attributes {
                    for rdn in &entry.dn.rdns {
                        for ava in &rdn.avas {
                            if let Some(at) = self.resolve(&ava.attr) {
                                if self
                                    .schema
                                    .extensible_match(rule, &at, assertion, &ava.value)
                                    == Some(true)
                                {
                                    return Tri::True;
                                }
                            }
                        }
                    }
                }
            }
        }
        result
    }
}

/// A substring assertion with every component normalised.
pub struct SubstringParts {
    pub initial: Option<Vec<u8>>,
    pub any: Vec<Vec<u8>>,
    pub final_: Option<Vec<u8>>,
}

pub fn substring_parts(
    schema: &Schema,
    at: &AttributeType,
    sub: &LdapSubstringFilter,
) -> Option<SubstringParts> {
    let norm = |s: &str| schema.substr_normalize(at, s.as_bytes());
    Some(SubstringParts {
        initial: match &sub.initial {
            Some(s) => Some(norm(s)?),
            None => None,
        },
        any: sub
            .any
            .iter()
            .map(|s| norm(s))
            .collect::<Option<Vec<_>>>()?,
        final_: match &sub.final_ {
            Some(s) => Some(norm(s)?),
            None => None,
        },
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl SubstringParts {
    pub fn matches(&self, value: &[u8]) -> bool {
        let mut rest = value;
        if let Some(i) = &self.initial {
            match rest.strip_prefix(i.as_slice()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        for a in &self.any {
            match find(rest, a) {
                Some(p) => rest = rest.get(p + a.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        match &self.final_ {
            Some(f) => rest.ends_with(f),
            None => true,
        }
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    while let (Some(&x), Some(&y)) = (a.peek(), b.peek()) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => {
                a.next();
            }
            std::cmp::Ordering::Greater => {
                b.next();
            }
            std::cmp::Ordering::Equal => {
                out.push(*x);
                a.next();
                b.next();
            }
        }
    }
    out
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v.dedup();
    v
}

/// The one index key whose posting list is the plan of `f`, when it is a
/// single equality or presence term on an indexed attribute: its ids are
/// the candidates, in id order, and can be read lazily.
pub fn single_key(
    schema: &Schema,
    cfg: &IndexConfig,
    hidden: &dyn Fn(&AttributeType) -> bool,
    f: &LdapFilter,
) -> Option<IndexKey> {
    let resolve = |desc: &str| {
        schema
            .attribute(base_attr_name(desc))
            .filter(|at| !hidden(at))
    };
    match f {
        LdapFilter::And(list) if list.len() == 1 => single_key(schema, cfg, hidden, list.first()?),
        LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
            let at = resolve(attr)?;
            if !cfg.kinds(&at).eq {
                return None;
            }
            let n = schema.eq_normalize(&at, value.as_bytes()).ok()?;
            Some(index::eq_key(&at, &n))
        }
        LdapFilter::Present(attr) => {
            let at = resolve(attr)?;
            cfg.kinds(&at).pres.then(|| index::pres_key(&at))
        }
        _ => None,
    }
}

/// The equality-key prefix that answers `f` when it is a single initial
/// substring term (`(cn=abc*)`, `(cn=abc*xyz)`) on an attribute whose
/// equality keys hold its initials (see [`initial_by_equality`]).
pub fn single_initial_key(
    schema: &Schema,
    cfg: &IndexConfig,
    hidden: &dyn Fn(&AttributeType) -> bool,
    f: &LdapFilter,
) -> Option<IndexKey> {
    match f {
        LdapFilter::And(list) if list.len() == 1 => {
            single_initial_key(schema, cfg, hidden, list.first()?)
        }
        LdapFilter::Substring(attr, sub) => {
            let at = schema
                .attribute(base_attr_name(attr))
                .filter(|at| !hidden(at))?;
            if !cfg.kinds(&at).eq || !equality_keys_hold_initials(&at) {
                return None;
            }
            let parts = substring_parts(schema, &at, sub)?;
            let initial = parts.initial.filter(|i| !i.is_empty())?;
            Some(index::eq_key(&at, &initial))
        }
        _ => None,
    }
}

/// Candidate ids for `f` from the indexes: `Some(sorted ids)` is a superset
/// of the matching entries, `None` means the filter cannot be answered from
/// indexes (the caller scans the search scope).
pub fn plan(
    schema: &Schema,
    cfg: &IndexConfig,
    hidden: &dyn Fn(&AttributeType) -> bool,
    txn: &dyn StoreRead,
    f: &LdapFilter,
) -> StoreResult<Option<Vec<u64>>> {
    let resolve = |desc: &str| {
        schema
            .attribute(base_attr_name(desc))
            .filter(|at| !hidden(at))
    };
    Ok(match f {
        LdapFilter::And(list) => {
            let mut acc: Option<Vec<u64>> = None;
            for sub in list {
                if let Some(ids) = plan(schema, cfg, hidden, txn, sub)? {
                    acc = Some(match acc {
                        None => ids,
                        Some(prev) => intersect(&prev, &ids),
                    });
                    if acc.as_ref().is_some_and(Vec::is_empty) {
                        break;
                    }
                }
            }
            acc
        }
        LdapFilter::Or(list) => {
            let mut all = Vec::new();
            for sub in list {
                match plan(schema, cfg, hidden, txn, sub)? {
                    Some(ids) => all.extend(ids),
                    None => return Ok(None),
                }
            }
            Some(sorted(all))
        }
        LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
            let Some(at) = resolve(attr) else {
                // Undefined everywhere: nothing can match.
                return Ok(Some(Vec::new()));
            };
            if !cfg.kinds(&at).eq {
                return Ok(None);
            }
            match schema.eq_normalize(&at, value.as_bytes()) {
                Ok(n) => Some(txn.index_ids(&index::eq_key(&at, &n))?),
                Err(_) => Some(Vec::new()),
            }
        }
        LdapFilter::Present(attr) => {
            let Some(at) = resolve(attr) else {
                return Ok(Some(Vec::new()));
            };
            if cfg.kinds(&at).pres {
                Some(txn.index_ids(&index::pres_key(&at))?)
            } else {
                None
            }
        }
        LdapFilter::Substring(attr, sub) => {
            let Some(at) = resolve(attr) else {
                return Ok(Some(Vec::new()));
            };
            let kinds = cfg.kinds(&at);
            if !kinds.sub && !kinds.eq {
                return Ok(None);
            }
            let Some(parts) = substring_parts(schema, &at, sub) else {
                // Undefined for every entry: nothing can match.
                return Ok(Some(Vec::new()));
            };
            if kinds.eq {
                if let Some(ids) = initial_by_equality(&at, &parts, txn)? {
                    return Ok(Some(ids));
                }
            }
            if !kinds.sub {
                return Ok(None);
            }
            substring_candidates(&at, &parts, txn)?
        }
        _ => None,
    })
}

/// Equality/substring rule pairs (by name or OID) whose equality
/// normalisation of a value is exactly its substring preparation: for these
/// a value's equality key starts with an initial substring iff the value
/// matches it, so the equality keys answer the initial without trigrams.
const SAME_PREPARATION: &[(&[&str], &[&str])] = &[
    (
        &["caseIgnoreMatch", "2.5.13.2"],
        &["caseIgnoreSubstringsMatch", "2.5.13.4"],
    ),
    (
        &["caseExactMatch", "2.5.13.5"],
        &["caseExactSubstringsMatch", "2.5.13.7"],
    ),
    (
        &["caseIgnoreIA5Match", "1.3.6.1.4.1.1466.109.114.2"],
        &["caseIgnoreIA5SubstringsMatch", "1.3.6.1.4.1.1466.109.114.3"],
    ),
    (
        &["telephoneNumberMatch", "2.5.13.20"],
        &["telephoneNumberSubstringsMatch", "2.5.13.21"],
    ),
];

fn equality_keys_hold_initials(at: &AttributeType) -> bool {
    let (Some(eq), Some(sub)) = (at.equality.as_deref(), at.substr.as_deref()) else {
        return false;
    };
    let named = |names: &[&str], rule: &str| names.iter().any(|n| n.eq_ignore_ascii_case(rule));
    SAME_PREPARATION
        .iter()
        .any(|(eqs, subs)| named(eqs, eq) && named(subs, sub))
}

/// The entries with a value starting with the assertion's initial, read as
/// one prefix range of the equality keys (`attr NUL = initial...`). None
/// when the assertion has no initial or the equality keys are normalised
/// differently from substrings.
fn initial_by_equality(
    at: &AttributeType,
    parts: &SubstringParts,
    txn: &dyn StoreRead,
) -> StoreResult<Option<Vec<u64>>> {
    let Some(initial) = parts.initial.as_ref().filter(|i| !i.is_empty()) else {
        return Ok(None);
    };
    if !equality_keys_hold_initials(at) {
        return Ok(None);
    }
    Ok(Some(sorted(
        txn.index_prefix_ids(&index::eq_key(at, initial))?,
    )))
}

/// Posting lists longer than this are left out of a substring intersection:
/// a trigram shared by most entries ("use" in "User N") narrows nothing and
/// reading it costs more than checking the candidates the others leave.
const SELECTIVE_CAP: usize = 5_000;

/// Candidate count below which reading further posting lists costs more
/// than checking the candidates against the filter.
const ENOUGH_NARROW: usize = 64;

fn substring_candidates(
    at: &AttributeType,
    parts: &SubstringParts,
    txn: &dyn StoreRead,
) -> StoreResult<Option<Vec<u64>>> {
    let char_count = |v: &[u8]| {
        std::str::from_utf8(v)
            .map(|s| s.chars().count())
            .unwrap_or(v.len())
    };
    // (key, exact?) pairs; prefix keys are read with a prefix scan.
    let mut keys: Vec<(IndexKey, bool)> = Vec::new();
    if let Some(i) = parts.initial.as_ref().filter(|i| !i.is_empty()) {
        keys.push((index::initial_key(at, i), char_count(i) >= 3));
        keys.extend(index::trigram_keys(at, i).into_iter().map(|k| (k, true)));
    }
    if let Some(f) = parts.final_.as_ref().filter(|f| !f.is_empty()) {
        keys.push((index::final_key(at, f), char_count(f) >= 3));
        keys.extend(index::trigram_keys(at, f).into_iter().map(|k| (k, true)));
    }
    for a in &parts.any {
        keys.extend(index::trigram_keys(at, a).into_iter().map(|k| (k, true)));
    }
    if keys.is_empty() {
        return Ok(None);
    }
    // Later characters of an assertion ("1234" in "User 1234") are usually
    // rarer than its start, so read those first and stop once few candidates remain.
    keys.reverse();
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    let mut lists: Vec<Vec<u64>> = Vec::new();
    let mut skipped: Vec<(IndexKey, bool)> = Vec::new();
    let mut narrowest = usize::MAX;
    for (key, exact) in keys {
        if narrowest <= ENOUGH_NARROW {
            break;
        }
        let list = if exact {
            txn.index_ids_capped(&key, SELECTIVE_CAP)?
        } else {
            let ids = sorted(txn.index_prefix_ids(&key)?);
            (ids.len() <= SELECTIVE_CAP).then_some(ids)
        };
        match list {
            Some(ids) if ids.is_empty() => return Ok(Some(Vec::new())),
            Some(ids) => {
                let merged = match lists.first() {
                    Some(prev) => intersect(prev, &ids),
                    None => ids,
                };
                narrowest = merged.len();
                lists = vec![merged];
            }
            None => skipped.push((key, exact)),
        }
    }
    if lists.is_empty() {
        // Nothing selective: the full lists still beat scanning the scope.
        for (key, exact) in skipped {
            lists.push(if exact {
                txn.index_ids(&key)?
            } else {
                sorted(txn.index_prefix_ids(&key)?)
            });
        }
    }
    lists.sort_by_key(Vec::len);
    let mut acc = lists.swap_remove(0);
    for l in &lists {
        if acc.is_empty() {
            break;
        }
        acc = intersect(&acc, l);
    }
    Ok(Some(acc))
}

/// Whether the filter names `(objectClass=<class>)` anywhere: 389-ds
/// returns ldapSubEntry entries (conflict entries among them) to a subtree
/// search only when it asks for them that way. Filter depth is bounded
/// when the request is decoded, so the recursion is too.
pub fn names_class(filter: &LdapFilter, class: &str) -> bool {
    match filter {
        LdapFilter::And(list) | LdapFilter::Or(list) => list.iter().any(|f| names_class(f, class)),
        LdapFilter::Not(inner) => names_class(inner, class),
        LdapFilter::Equality(attr, value) => {
            base_attr_name(attr).eq_ignore_ascii_case("objectClass")
                && value.eq_ignore_ascii_case(class)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_parts_match_in_order() {
        let p = SubstringParts {
            initial: Some(b"jo".to_vec()),
            any: vec![b"n".to_vec(), b"s".to_vec()],
            final_: Some(b"th".to_vec()),
        };
        assert!(p.matches(b"john smith"));
        assert!(!p.matches(b"jo smith"));
        assert!(!p.matches(b"john smit"));
        let p = SubstringParts {
            initial: Some(b"ab".to_vec()),
            any: vec![],
            final_: Some(b"ba".to_vec()),
        };
        // initial and final may not overlap
        assert!(!p.matches(b"aba"));
        assert!(p.matches(b"abba"));
    }

    #[test]
    fn intersect_sorted() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5, 8]), vec![3, 5]);
        assert_eq!(sorted(vec![3, 1, 3, 2]), vec![1, 2, 3]);
    }
}
