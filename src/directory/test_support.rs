//! What the directory's unit tests share: a directory on a temporary store.

use super::{DirResult, Directory, DirectoryConfig, IndexConfig, WriteOp};
use crate::model::Dn;
use crate::schema::Schema;
use crate::store::{Store, StoreOptions};
use std::sync::Arc;

/// A directory holding `suffix` on a fresh temporary store, without fsync,
/// no size limit and a fast password scheme (tests are not about hashing).
pub(crate) fn temp_directory(suffix: &str, indexes: IndexConfig) -> (tempfile::TempDir, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        no_sync: true,
        ..StoreOptions::default()
    };
    let store = Store::open(tmp.path(), &opts).unwrap();
    let cfg = DirectoryConfig {
        suffixes: vec![Dn::parse(suffix).unwrap()],
        indexes,
        size_limit: 0,
        password_scheme: crate::auth::password::Scheme::Ssha512,
        ..DirectoryConfig::default()
    };
    let dir = Directory::open(store, Arc::new(Schema::builtin().unwrap()), cfg).unwrap();
    (tmp, dir)
}

/// Adds an entry as the root DN, one value per attribute.
pub(crate) fn add_as_root(dir: &Directory, dn: &str, attrs: &[(&str, &str)]) -> DirResult<()> {
    let attrs = attrs
        .iter()
        .map(|(n, v)| (n.to_string(), vec![v.as_bytes().to_vec()]))
        .collect();
    dir.write_blocking(
        &dir.root_identity(),
        WriteOp::Add {
            dn: Dn::parse(dn).unwrap(),
            attrs,
        },
    )
}
