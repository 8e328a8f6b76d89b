//! Authentication: password schemes and bind checks.

pub mod password;
