//! Core data types; depends on nothing else in the crate.

mod change;
pub mod civil;
pub mod codec;
mod csn;
mod dn;
mod entry;
mod identity;
pub mod oid;
mod write;

pub use change::{Change, ChangeRecord, ModOp, Modification};
pub use csn::{Csn, CsnError};
pub use dn::{escape_value_into, normalized_rdn, Ava, AvaNormalizer, Dn, DnError, Rdn};
pub use entry::{Attribute, Entry, Value};
pub use identity::Identity;
pub use write::WriteOp;
