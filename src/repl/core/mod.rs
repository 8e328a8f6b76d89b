//! The pure replication core: everything here takes time and input as
//! arguments, returns values and does no I/O, so it can be tested (and
//! simulated) without a store or a network. tests/layers.rs keeps it from
//! importing anything but the model.

pub mod catchup;
pub mod csn;
pub mod fractional;
pub mod ruv;
pub mod schedule;
pub mod wire;
