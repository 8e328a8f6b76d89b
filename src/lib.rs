//! ferrodir: an LDAPv3 directory server on LMDB with multi-master replication.
//! Layers, lowest first (docs/architecture.md, checked by tests/layers.rs):
//! model ← config/ldif/schema/store/auth/repl::core ← query ← acl ←
//! directory ← ops ← repl::session ← server ← the CLI (src/cli, main.rs).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod acl;
pub mod auth;
pub mod config;
pub mod directory;
pub mod ldif;
pub mod model;
pub mod ops;
pub mod query;
pub mod repl;
pub mod schema;
pub mod server;
pub mod store;
