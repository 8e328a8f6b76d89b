//! Figures for monitoring (cn=monitor, the metrics endpoint) that only the
//! directory can give: entries held, conflict entries per suffix.

use super::{DirResult, Directory, Identity, Scope, SearchRequest};
use crate::model::Dn;
use crate::store::StoreRead;
use ldap3_proto::proto::LdapFilter;

impl Directory {
    /// Entries in the store (every suffix, tombstones included): LMDB's
    /// own count, no scan.
    pub fn entry_count(&self) -> DirResult<u64> {
        Ok(self.core.store.read()?.entry_count()?)
    }

    /// Conflict and glue entries of a suffix (a search of the suffix: the
    /// callers cache it).
    pub fn conflict_count(&self, suffix: &Dn) -> DirResult<u64> {
        let root = Identity {
            root: true,
            ..Identity::anonymous()
        };
        let eq = |a: &str, v: &str| LdapFilter::Equality(a.into(), v.into());
        let filter = LdapFilter::And(vec![
            LdapFilter::Or(vec![
                LdapFilter::Present("nsds5ReplConflict".into()),
                eq("objectClass", "glue"),
            ]),
            // Naming ldapSubEntry makes the search return conflict entries.
            LdapFilter::Or(vec![
                eq("objectClass", "ldapSubEntry"),
                LdapFilter::Present("objectClass".into()),
            ]),
        ]);
        let attrs = ["1.1".to_string()];
        let req = SearchRequest {
            base: suffix.clone(),
            scope: Scope::Sub,
            filter: &filter,
            attrs: &attrs,
            types_only: true,
            size_limit: 0,
            time_limit: 30,
            page: None,
            lookthrough_limit: 0,
        };
        let mut n = 0u64;
        self.search(&root, &req, &|| false, &mut |_| n += 1)?;
        Ok(n)
    }
}
