//! Core data types; depends on nothing else in the crate.

mod change;
mod csn;
mod dn;
mod entry;

pub use change::{Change, ChangeRecord, ModOp, Modification};
pub use csn::{Csn, CsnError};
pub use dn::{escape_value_into, normalized_rdn, Ava, AvaNormalizer, Dn, DnError, Rdn};
pub use entry::{Attribute, Entry, Value};
