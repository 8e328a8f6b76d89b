//! Entries: a DN and attributes whose values are bytes, each value carrying
//! the CSN of the change that added it (replication state, DESIGN.md §4).

use super::{Csn, Dn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub bytes: Vec<u8>,
    pub csn: Csn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The schema's primary name for the type (e.g. `objectClass`), used for
    /// display; lookups compare case-insensitively.
    pub name: String,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub dn: Dn,
    pub attrs: Vec<Attribute>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, values: Vec<Vec<u8>>, csn: Csn) -> Attribute {
        Attribute {
            name: name.into(),
            values: values
                .into_iter()
                .map(|bytes| Value { bytes, csn })
                .collect(),
        }
    }

    pub fn byte_values(&self) -> impl Iterator<Item = &[u8]> {
        self.values.iter().map(|v| v.bytes.as_slice())
    }
}

impl Entry {
    pub fn new(dn: Dn) -> Entry {
        Entry {
            dn,
            attrs: Vec::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Attribute> {
        self.attrs
            .iter_mut()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some_and(|a| !a.values.is_empty())
    }

    /// First value as UTF-8 text, for single-valued operational attributes.
    pub fn first_str(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|a| a.values.first())
            .and_then(|v| std::str::from_utf8(&v.bytes).ok())
    }

    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.get(name)
            .map(|a| a.byte_values().collect())
            .unwrap_or_default()
    }

    /// Replaces all values of `name` (removing the attribute when `values` is empty).
    pub fn set(&mut self, name: &str, values: Vec<Vec<u8>>, csn: Csn) {
        self.attrs.retain(|a| !a.name.eq_ignore_ascii_case(name));
        if !values.is_empty() {
            self.attrs.push(Attribute::new(name, values, csn));
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.attrs.retain(|a| !a.name.eq_ignore_ascii_case(name));
    }

    /// The latest CSN recorded anywhere in the entry.
    pub fn max_csn(&self) -> Csn {
        self.attrs
            .iter()
            .flat_map(|a| a.values.iter().map(|v| v.csn))
            .max()
            .unwrap_or(Csn::ZERO)
    }
}
