//! Unit tests for the schema module.

use super::*;

#[test]
fn builtin_loads() {
    let s = Schema::builtin().unwrap_or_else(|e| panic!("{e}"));
    assert!(s.attribute("cn").is_some());
}
