//! Replication, in two layers (docs/architecture.md):
//! - `core`: pure: the CSN generator, RUV arithmetic, the wire encoding of
//!   the replication protocol and the catch-up merge. No I/O, no clock, no
//!   store; the directory's write path uses it.
//! - `session`: the network code above the directory: agreements (the
//!   supplier side), the client that connects to consumers, housekeeping.

pub mod core;
pub mod session;
