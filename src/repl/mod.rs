//! Replication: CSN generation now; changelog, RUV and agreements later.

pub mod csn;
