//! Reading the DIT by attribute: index key derivation and configuration,
//! and the search filter evaluator and planner. Below both access control
//! (ACI target filters) and the directory (searches), above schema and
//! store.

pub mod filter;
pub mod index;

pub use index::{IndexConfig, IndexKinds};
