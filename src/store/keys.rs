//! The keys of the `dn` and `index` databases as types of their own, so a
//! DN key cannot be passed where an index key belongs (or a raw value where
//! either does). The directory builds them (it knows the schema's
//! normalisation); the store only orders and compares their bytes.

use std::ops::Deref;

/// A DN index key: the normalised RDNs from the root down, each followed by
/// NUL, so every subtree is a key-prefix range. A suffix's key is a DN key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnKey(Vec<u8>);

impl DnKey {
    /// The key of the root DSE (no RDN).
    pub fn root() -> DnKey {
        DnKey(Vec::new())
    }

    /// A key from its bytes (read back from the `dn` database, or cut from
    /// a longer key).
    pub fn from_bytes(bytes: Vec<u8>) -> DnKey {
        DnKey(bytes)
    }

    /// Appends one RDN, in its normalised form, below the key.
    pub fn push_rdn(&mut self, normalized_rdn: &[u8]) {
        self.0.extend_from_slice(normalized_rdn);
        self.0.push(0);
    }

    /// Appends the key of a one-RDN DN (its normalised RDN and the NUL).
    pub fn push_key_part(&mut self, part: &[u8]) {
        self.0.extend_from_slice(part);
    }

    /// Cuts the key back to its first `len` bytes: with `len` at an RDN
    /// boundary, the key of an ancestor.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// Whether the entry of this key is `ancestor` or below it.
    pub fn is_within(&self, ancestor: &DnKey) -> bool {
        self.0.starts_with(&ancestor.0)
    }

    /// This key moved from below `old_base` to below `new_base` (a subtree
    /// rename); the part below the base is kept.
    pub fn rebased(&self, old_base: &DnKey, new_base: &DnKey) -> DnKey {
        let mut out = new_base.0.clone();
        out.extend_from_slice(self.0.get(old_base.len()..).unwrap_or_default());
        DnKey(out)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl Deref for DnKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// An attribute index key: `attr NUL kind payload` (see query/index.rs).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexKey(Vec<u8>);

impl IndexKey {
    pub fn from_bytes(bytes: Vec<u8>) -> IndexKey {
        IndexKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl Deref for IndexKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}
