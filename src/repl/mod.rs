//! Replication. The core (CSN generator, RUV) is pure and used by the
//! directory's write path; sessions and agreements sit above the directory.

pub mod agreement;
pub mod catchup;
pub mod client;
pub mod core;
pub mod csn;
pub mod housekeeping;
pub mod proto;
pub mod ruv;
