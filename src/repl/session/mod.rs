//! Replication sessions: the supplier side of agreements (connect, start a
//! session, send changes, total init and catch-up), the LDAP client they
//! use, and the periodic housekeeping. Sits above the directory.

pub mod agreement;
mod catchup;
pub mod chain;
pub mod client;
pub mod housekeeping;
mod incremental;
mod schema;
pub mod syncrepl;
mod total;
