//! Entry checks against the schema (RFC 4512 §2.4, §2.5, §3.3 and §2.3.1 for naming).

use super::{
    show_value, syntax, violation, AttributeType, ObjectClass, ObjectClassKind, Schema,
    SchemaViolation, ViolationKind, EXTENSIBLE_OBJECT_OID, OBJECT_CLASS_OID,
};
use crate::model::Entry;
// Fx hashing: these sets are built for every added entry and keyed by short
// OIDs and values, where SipHash showed up in import profiles.
type HashSet<K> = rustc_hash::FxHashSet<K>;
type HashMap<K, V> = rustc_hash::FxHashMap<K, V>;
use std::sync::Arc;

/// An entry's attribute, resolved: values of all spellings of one type together.
struct Group<'e> {
    at: Arc<AttributeType>,
    values: Vec<&'e [u8]>,
}

/// Resolves an attribute description: the `binary` option is dropped, any
/// other option is not supported.
fn resolve_desc(schema: &Schema, desc: &str) -> Result<Arc<AttributeType>, SchemaViolation> {
    let mut parts = desc.split(';');
    let base = parts.next().unwrap_or(desc);
    for opt in parts {
        if !opt.eq_ignore_ascii_case("binary") {
            return Err(violation(
                ViolationKind::UndefinedAttributeType,
                format!("attribute description '{desc}' has unsupported option '{opt}'"),
            ));
        }
    }
    schema.attribute(base).ok_or_else(|| {
        violation(
            ViolationKind::UndefinedAttributeType,
            format!("attribute type '{base}' is not defined"),
        )
    })
}

fn groups<'e>(schema: &Schema, entry: &'e Entry) -> Result<Vec<Group<'e>>, SchemaViolation> {
    let mut out: Vec<Group<'e>> = Vec::with_capacity(entry.attrs.len());
    let mut by_oid: HashMap<String, usize> =
        HashMap::with_capacity_and_hasher(entry.attrs.len(), Default::default());
    for a in &entry.attrs {
        if a.values.is_empty() {
            continue;
        }
        let at = resolve_desc(schema, &a.name)?;
        match by_oid.get(&at.oid).and_then(|&i| out.get_mut(i)) {
            Some(g) => g.values.extend(a.byte_values()),
            None => {
                by_oid.insert(at.oid.clone(), out.len());
                out.push(Group {
                    at,
                    values: a.byte_values().collect(),
                });
            }
        }
    }
    Ok(out)
}

/// The entry's classes as listed, and the most specific structural class.
struct Classes {
    listed: Vec<Arc<ObjectClass>>,
    structural: Arc<ObjectClass>,
}

fn classes(schema: &Schema, values: &[&[u8]]) -> Result<Classes, SchemaViolation> {
    let ocv = |m: String| violation(ViolationKind::ObjectClassViolation, m);
    if values.is_empty() {
        return Err(ocv("entry has no objectClass attribute".into()));
    }
    let mut listed: Vec<Arc<ObjectClass>> = Vec::with_capacity(values.len());
    for v in values {
        let name = std::str::from_utf8(v).unwrap_or("").trim();
        let oc = schema
            .object_class(name)
            .ok_or_else(|| ocv(format!("object class '{}' is not defined", show_value(v))))?;
        if !listed.iter().any(|l| l.oid == oc.oid) {
            listed.push(oc);
        }
    }
    let closure_of = |oc: &ObjectClass| -> &[Arc<ObjectClass>] {
        schema
            .class_closure
            .get(&oc.oid)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    // Structural classes named or implied (as superclasses of named ones).
    let mut structural: Vec<Arc<ObjectClass>> = Vec::new();
    for l in &listed {
        for c in closure_of(l) {
            if c.kind == ObjectClassKind::Structural && !structural.iter().any(|s| s.oid == c.oid) {
                structural.push(c.clone());
            }
        }
    }
    if structural.is_empty() {
        return Err(ocv("entry has no structural object class".into()));
    }
    // A class that may also be auxiliary steps aside for a structural class
    // outside its chain (groupOfNames + posixGroup); alone it is structural.
    if structural.len() > 1 && structural.iter().any(|s| s.also_auxiliary) {
        let others: Vec<Arc<ObjectClass>> = structural
            .iter()
            .filter(|s| !s.also_auxiliary)
            .cloned()
            .collect();
        if !others.is_empty() {
            structural = others;
        }
    }
    let is_ancestor_or_self =
        |anc: &ObjectClass, of: &ObjectClass| closure_of(of).iter().any(|c| c.oid == anc.oid);
    let most_specific = structural
        .iter()
        .find(|s| structural.iter().all(|o| is_ancestor_or_self(o, s)))
        .cloned();
    match most_specific {
        Some(s) => Ok(Classes {
            listed,
            structural: s,
        }),
        None => {
            let pair = structural.iter().enumerate().find_map(|(i, a)| {
                structural.iter().skip(i + 1).find_map(|b| {
                    (!is_ancestor_or_self(a, b) && !is_ancestor_or_self(b, a)).then_some((a, b))
                })
            });
            Err(ocv(match pair {
                Some((a, b)) => format!(
                    "structural object classes '{}' and '{}' are not on one superclass chain",
                    a.name(),
                    b.name()
                ),
                None => {
                    "the entry's structural object classes are not on one superclass chain".into()
                }
            }))
        }
    }
}

fn object_class_values<'g>(groups: &'g [Group<'_>]) -> &'g [&'g [u8]] {
    groups
        .iter()
        .find(|g| g.at.oid == OBJECT_CLASS_OID)
        .map(|g| g.values.as_slice())
        .unwrap_or_default()
}

pub(super) fn structural_class(schema: &Schema, entry: &Entry) -> Result<String, SchemaViolation> {
    let mut values: Vec<&[u8]> = Vec::new();
    for a in &entry.attrs {
        if schema
            .attribute(a.name.split(';').next().unwrap_or(&a.name))
            .is_some_and(|at| at.oid == OBJECT_CLASS_OID)
        {
            values.extend(a.byte_values());
        }
    }
    Ok(classes(schema, &values)?.structural.name().to_string())
}

/// The value under the equality rule, or the bytes when the type has none
/// or the value does not normalise (then only identical bytes are equal).
fn eq_key(schema: &Schema, at: &AttributeType, v: &[u8]) -> Vec<u8> {
    schema.eq_normalize(at, v).unwrap_or_else(|_| v.to_vec())
}

fn check_single_valued(g: &Group<'_>) -> Result<(), SchemaViolation> {
    if g.at.single_value && g.values.len() > 1 {
        return Err(violation(
            ViolationKind::ConstraintViolation,
            format!(
                "attribute '{}' is single-valued (found {} values)",
                g.at.name(),
                g.values.len()
            ),
        ));
    }
    Ok(())
}

fn check_values(schema: &Schema, g: &Group<'_>) -> Result<(), SchemaViolation> {
    let name = g.at.name();
    check_single_valued(g)?;
    if let Some(syn) = schema.syntax_of(&g.at) {
        for (i, v) in g.values.iter().enumerate() {
            if !syntax::validate(syn, v) {
                let desc = syntax::info(syn).map(|i| i.desc).unwrap_or("value");
                return Err(violation(
                    ViolationKind::InvalidAttributeSyntax,
                    format!("value #{} of '{name}' is not a valid {desc}", i + 1),
                ));
            }
        }
    }
    if g.values.len() > 1 {
        let mut seen: HashSet<Vec<u8>> =
            HashSet::with_capacity_and_hasher(g.values.len(), Default::default());
        for v in &g.values {
            if !seen.insert(eq_key(schema, &g.at, v)) {
                return Err(violation(
                    ViolationKind::ConstraintViolation,
                    format!("duplicate value '{}' in attribute '{name}'", show_value(v)),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn check_entry(schema: &Schema, entry: &Entry) -> Result<(), SchemaViolation> {
    check_entry_structural(schema, entry, false).map(|_| ())
}

/// `check_entry`, also giving the structural class it found (what
/// `structural_class` would answer for a valid entry), so adding an entry
/// resolves its object classes once. With `values_checked` (the caller
/// checked each value's syntax and uniqueness as it read them) only
/// SINGLE-VALUE is checked of the values.
pub(super) fn check_entry_structural(
    schema: &Schema,
    entry: &Entry,
    values_checked: bool,
) -> Result<String, SchemaViolation> {
    let groups = groups(schema, entry)?;
    for g in &groups {
        match values_checked {
            true => check_single_valued(g)?,
            false => check_values(schema, g)?,
        }
    }
    let cls = classes(schema, object_class_values(&groups))?;
    let present: HashSet<&str> = groups.iter().map(|g| g.at.oid.as_str()).collect();

    // MUST, naming the listed class the requirement comes through.
    for l in &cls.listed {
        for oid in schema
            .class_must
            .get(&l.oid)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if !present.contains(oid.as_str()) {
                let attr = schema
                    .attribute(oid)
                    .map(|a| a.name().to_string())
                    .unwrap_or_else(|| oid.clone());
                return Err(violation(
                    ViolationKind::ObjectClassViolation,
                    format!("object class '{}' requires attribute '{attr}'", l.name()),
                ));
            }
        }
    }

    let extensible = cls.listed.iter().any(|l| {
        schema
            .class_closure
            .get(&l.oid)
            .is_some_and(|c| c.iter().any(|x| x.oid == EXTENSIBLE_OBJECT_OID))
    });
    if !extensible {
        let allowed = |oid: &str| {
            oid == OBJECT_CLASS_OID
                || cls.listed.iter().any(|l| {
                    schema
                        .class_allowed
                        .get(&l.oid)
                        .is_some_and(|a| a.contains(oid))
                })
        };
        for g in &groups {
            if !g.at.is_operational() && !allowed(g.at.oid.as_str()) {
                return Err(violation(
                    ViolationKind::ObjectClassViolation,
                    format!(
                        "attribute '{}' is not allowed by the entry's object classes",
                        g.at.name()
                    ),
                ));
            }
        }
    }

    if let Some(rdn) = entry.dn.rdn() {
        for ava in &rdn.avas {
            let at = schema.attribute(&ava.attr).ok_or_else(|| {
                violation(
                    ViolationKind::UndefinedAttributeType,
                    format!("RDN attribute type '{}' is not defined", ava.attr),
                )
            })?;
            let want = eq_key(schema, &at, &ava.value);
            let found = groups
                .iter()
                .find(|g| g.at.oid == at.oid)
                .is_some_and(|g| g.values.iter().any(|v| eq_key(schema, &at, v) == want));
            if !found {
                return Err(violation(
                    ViolationKind::NamingViolation,
                    format!(
                        "value '{}' of RDN attribute '{}' is not present in the entry",
                        show_value(&ava.value),
                        at.name()
                    ),
                ));
            }
        }
    }
    Ok(cls.structural.name().to_string())
}
