//! What an RFC 4533 provider (ops::sync) reads: the suffix and RUV a
//! synchronisation works on, and the current form of one entry, found by
//! its entryUUID, as the consumer's search sees it.

use super::search::{Scope, SearchEntry, SearchRequest};
use super::{DirError, DirResult, Identity};
use crate::model::Dn;
use crate::repl::core::ruv::Ruv;
use crate::repl::core::sync_cookie::MAX_SID;
use crate::store::StoreRead;

/// Where a synchronisation starts: the suffix holding the search base
/// and its RUV, read before anything is sent (a change committed after
/// this point is sent again later, never lost).
#[derive(Debug, Clone)]
pub struct SyncStart {
    pub suffix: Dn,
    pub ruv: Ruv,
    /// This server's replica ID when OpenLDAP's server ID can carry it.
    pub sid: Option<u16>,
    /// Lowercased names of attributes computed at read (memberOf): the
    /// consumer computes its own.
    pub computed: Vec<String>,
}

/// An entry's state for a consumer, found by entryUUID.
#[derive(Debug)]
pub enum SyncLookup {
    /// In the search's scope, matching its filter, visible to the consumer.
    Visible(SearchEntry),
    /// Deleted, moved out of scope, no longer matching, or hidden: the
    /// consumer must drop it. The DN is the entry's current one when it
    /// still exists.
    Gone(Option<Dn>),
}

impl super::Directory {
    /// The suffix holding `base` (a data suffix, not cn=config) and its RUV.
    pub fn sync_start(&self, base: &Dn) -> DirResult<SyncStart> {
        let key = self.core.dn_key(base);
        let suffix_key = self.core.replicated_suffix_of(&key).ok_or_else(|| {
            DirError::UnwillingToPerform(format!(
                "'{base}' is not within a data suffix of this server; content synchronisation \
                 (RFC 4533) serves data suffixes"
            ))
        })?;
        let suffix = self
            .core
            .cfg
            .suffixes
            .iter()
            .find(|s| self.core.dn_key(s) == suffix_key)
            .cloned()
            .ok_or_else(|| DirError::UnwillingToPerform(format!("no suffix holds '{base}'")))?;
        let txn = self.core.store.read()?;
        let ruv = self.core.load_ruv(&txn, &suffix_key)?;
        if let Some(rid) = ruv.replicas.keys().find(|r| **r > MAX_SID) {
            return Err(DirError::UnwillingToPerform(format!(
                "changes of replica ID {rid} are in '{suffix}': replica IDs above {MAX_SID} \
                 have no OpenLDAP CSN form, so RFC 4533 cannot describe them"
            )));
        }
        let rid = self.core.local_rid();
        let memberof = &self.core.cfg.memberof;
        Ok(SyncStart {
            suffix,
            ruv,
            sid: (rid <= MAX_SID).then_some(rid),
            computed: if memberof.enabled {
                vec![memberof.attribute.to_ascii_lowercase()]
            } else {
                Vec::new()
            },
        })
    }

    /// How many changes of `suffix` a consumer holding `since` lacks,
    /// counted up to `cap` without reading them; None when the changelog
    /// no longer reaches back to `since`.
    pub fn sync_pending(&self, suffix: &Dn, since: &Ruv, cap: u64) -> DirResult<Option<u64>> {
        let key = self.core.dn_key(suffix);
        let txn = self.core.store.read()?;
        Ok(self
            .core
            .pending_changes(&txn, &key, since, cap)?
            .map(|(n, _)| n))
    }

    /// The entry with `uuid` as the search `req` (its base, scope and
    /// filter) run by `who` returns it now.
    pub fn sync_lookup(
        &self,
        who: &Identity,
        uuid: &[u8; 16],
        req: &SearchRequest<'_>,
    ) -> DirResult<SyncLookup> {
        let dn = {
            let txn = self.core.store.read()?;
            let entry = match txn.id_by_uuid(uuid)? {
                Some(id) => txn.entry(id)?,
                None => None,
            };
            match entry {
                Some(e) if !super::tombstone::is_tombstone(&e) => e.dn,
                _ => return Ok(SyncLookup::Gone(None)),
            }
        };
        if !self.in_scope(&dn, &req.base, req.scope) {
            return Ok(SyncLookup::Gone(Some(dn)));
        }
        let one = SearchRequest {
            base: dn.clone(),
            scope: Scope::Base,
            filter: req.filter,
            attrs: req.attrs,
            types_only: false,
            size_limit: 0,
            time_limit: 0,
            page: None,
            lookthrough_limit: 0,
        };
        let mut found = None;
        let searched = self.search(who, &one, &|| false, &mut |e| found = Some(e));
        match (searched, found) {
            (Ok(_), Some(e)) => Ok(SyncLookup::Visible(e)),
            // Not there for this consumer (filter, access): gone for it.
            (Ok(_), None) | (Err(DirError::NoSuchObject { .. }), _) => {
                Ok(SyncLookup::Gone(Some(dn)))
            }
            (Err(e), _) => Err(e),
        }
    }

    fn in_scope(&self, dn: &Dn, base: &Dn, scope: Scope) -> bool {
        let key = self.core.dn_key(dn);
        let base_key = self.core.dn_key(base);
        match scope {
            Scope::Base => key == base_key,
            Scope::One => dn
                .parent()
                .is_some_and(|p| self.core.dn_key(&p) == base_key),
            Scope::Sub => key.starts_with(&base_key),
        }
    }
}
