//! What the core needs from the schema, behind a trait so the core does not
//! depend on the schema module: the canonical name of an attribute type,
//! the equality-normalised form of a value, and whether a type is
//! single-valued.

use crate::model::Rdn;
use std::collections::BTreeSet;

pub trait Normaliser {
    /// The canonical name of an attribute type (the schema's primary name,
    /// aliases resolved); attributes are keyed by it, so it must map every
    /// spelling of one type to one string.
    fn attr_key(&self, attr: &str) -> String;

    /// The value as the attribute's equality matching rule sees it: two
    /// values are one value exactly when their keys are equal.
    fn value_key(&self, attr_key: &str, value: &[u8]) -> Vec<u8>;

    /// Whether the type allows at most one value (`SINGLE-VALUE`).
    fn single_valued(&self, attr_key: &str) -> bool;
}

/// The key under which an RDN takes part in naming: canonical types and
/// normalised values, AVAs sorted, so `CN=Foo` and `cn=foo` collide.
/// Length-prefixed, so no value can imitate another's boundaries.
pub fn rdn_key<N: Normaliser + ?Sized>(norm: &N, rdn: &Rdn) -> Vec<u8> {
    let mut avas: Vec<(Vec<u8>, Vec<u8>)> = rdn
        .avas
        .iter()
        .map(|a| {
            let k = norm.attr_key(&a.attr);
            let v = norm.value_key(&k, &a.value);
            (k.to_ascii_lowercase().into_bytes(), v)
        })
        .collect();
    avas.sort();
    let mut out = Vec::new();
    for (k, v) in avas {
        for part in [k, v] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(&part);
        }
    }
    out
}

/// ASCII case folding with insignificant spaces collapsed, for every type:
/// the behaviour of caseIgnoreMatch on ASCII text. Good enough for tests
/// and the simulation; the directory passes its schema instead.
#[derive(Debug, Clone, Default)]
pub struct CaseFold {
    single: BTreeSet<String>,
}

impl CaseFold {
    /// `single` lists the single-valued types (any case).
    pub fn new(single: &[&str]) -> CaseFold {
        CaseFold {
            single: single.iter().map(|s| s.to_ascii_lowercase()).collect(),
        }
    }
}

impl Normaliser for CaseFold {
    fn attr_key(&self, attr: &str) -> String {
        attr.to_ascii_lowercase()
    }

    fn value_key(&self, _attr_key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len());
        let mut pending_space = false;
        for b in value {
            if *b == b' ' {
                pending_space = !out.is_empty();
            } else {
                if pending_space {
                    out.push(b' ');
                    pending_space = false;
                }
                out.push(b.to_ascii_lowercase());
            }
        }
        out
    }

    fn single_valued(&self, attr_key: &str) -> bool {
        self.single.contains(&attr_key.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_fold_equates_case_and_spaces() {
        let n = CaseFold::new(&["employeeNumber"]);
        assert_eq!(n.value_key("cn", b"  Foo   Bar "), b"foo bar".to_vec());
        assert!(n.single_valued(&n.attr_key("EMPLOYEENUMBER")));
        assert!(!n.single_valued("cn"));
        let a = Rdn::single("CN", "Foo");
        let b = Rdn::single("cn", "foo");
        assert_eq!(rdn_key(&n, &a), rdn_key(&n, &b));
    }
}
