//! ferrodir: an LDAPv3 directory server on LMDB with multi-master replication.
//! Layers, lowest first: model ← schema/store ← directory ← ops ← server.

pub mod acl;
pub mod auth;
pub mod config;
pub mod directory;
pub mod ldif;
pub mod model;
pub mod ops;
pub mod repl;
pub mod schema;
pub mod server;
pub mod store;
