//! The changelog's records are stored in the change-record encoding of
//! model/codec.rs (version byte first).

pub use crate::model::codec::{decode_change, encode_change};
