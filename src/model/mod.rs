//! Core data types; depends on nothing else in the crate.

mod csn;
mod dn;
mod entry;

pub use csn::{Csn, CsnError};
pub use dn::{escape_value_into, normalized_rdn, Ava, AvaNormalizer, Dn, DnError, Rdn};
pub use entry::{Attribute, Entry, Value};
