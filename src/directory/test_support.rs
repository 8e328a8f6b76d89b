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

/// Adds the entry of the suffix dc=example,dc=com (a domain).
pub(crate) fn add_example_suffix(dir: &Directory) {
    add_as_root(
        dir,
        "dc=example,dc=com",
        &[("objectClass", "domain"), ("dc", "example")],
    )
    .unwrap_or_else(|e| panic!("adding dc=example,dc=com: {e}"));
}

/// The replica entry of dc=example,dc=com (replica ID 1, read-write).
pub(crate) const EXAMPLE_REPLICA: &str =
    "cn=replica,cn=dc\\3Dexample\\2Cdc\\3Dcom,cn=mapping tree,cn=config";

/// Configures dc=example,dc=com as a replica with one agreement,
/// cn=to-consumer, to consumer.example.com:389; returns the agreement's DN.
pub(crate) fn add_replica_and_agreement(dir: &Directory) -> String {
    add_as_root(
        dir,
        EXAMPLE_REPLICA,
        &[
            ("objectClass", "nsDS5Replica"),
            ("cn", "replica"),
            ("nsDS5ReplicaRoot", "dc=example,dc=com"),
            ("nsDS5ReplicaType", "3"),
            ("nsDS5ReplicaId", "1"),
        ],
    )
    .unwrap();
    let agreement = format!("cn=to-consumer,{EXAMPLE_REPLICA}");
    add_as_root(
        dir,
        &agreement,
        &[
            ("objectClass", "nsDS5ReplicationAgreement"),
            ("cn", "to-consumer"),
            ("nsDS5ReplicaRoot", "dc=example,dc=com"),
            ("nsDS5ReplicaHost", "consumer.example.com"),
            ("nsDS5ReplicaPort", "389"),
            ("nsDS5ReplicaBindDN", "cn=replication manager,cn=config"),
            ("nsDS5ReplicaCredentials", "secret"),
        ],
    )
    .unwrap();
    agreement
}

/// Replaces one attribute of `dn` as the root DN.
pub(crate) fn replace_as_root(dir: &Directory, dn: &str, attr: &str, value: &str) {
    dir.write_blocking(
        &dir.root_identity(),
        WriteOp::Modify {
            dn: Dn::parse(dn).unwrap(),
            mods: vec![crate::model::Modification {
                op: crate::model::ModOp::Replace,
                attr: attr.into(),
                values: vec![value.as_bytes().to_vec()],
            }],
        },
    )
    .unwrap_or_else(|e| panic!("replacing {attr} of {dn}: {e}"));
}
