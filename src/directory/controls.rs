//! The directory's side of the controls that look at an operation's target
//! entry: the assertion control (RFC 4528) and the pre-read and post-read
//! controls (RFC 4527). With a write they run inside the write's own
//! transaction on the writer thread, so the entry tested or read is exactly
//! the one the write changes, and a failed assertion changes nothing.

use super::search::{Scope, SearchEntry, SearchRequest};
use super::select::{computed_value, select, Selection};
use super::writer::{Origin, Work};
use super::{Core, DirError, DirResult, Directory, Identity};
use crate::acl::{Checker, EntryAccess, Resolver, Rights};
use crate::model::{Csn, Dn, Entry, WriteOp};
use crate::query::filter::{EvalContext, Tri};
use crate::schema::AttributeType;
use crate::store::{StoreRead, WriteTxn};
use ldap3_proto::proto::LdapFilter;
use std::sync::{Arc, Mutex};

/// What a write asks of its target entry besides the change itself.
#[derive(Debug, Default, Clone)]
pub struct EntryControls {
    /// The write runs only if its target matches (RFC 4528): the entry as
    /// it is for modify, delete and modify DN, the new entry for add.
    pub assertion: Option<LdapFilter>,
    /// Attributes to return as they were before the write (RFC 4527).
    pub pre_read: Option<Vec<String>>,
    /// Attributes to return as they are after the write (RFC 4527).
    pub post_read: Option<Vec<String>>,
}

impl EntryControls {
    pub fn is_empty(&self) -> bool {
        self.assertion.is_none() && self.pre_read.is_none() && self.post_read.is_none()
    }
}

/// The entries a write read for its pre-read and post-read controls, with
/// only the attributes the requester may read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EntryReads {
    pub pre: Option<SearchEntry>,
    pub post: Option<SearchEntry>,
}

impl Directory {
    /// A write with the assertion, pre-read and post-read controls, all
    /// applied in the write's transaction.
    pub async fn write_with_controls(
        &self,
        who: &Identity,
        op: WriteOp,
        controls: EntryControls,
    ) -> DirResult<EntryReads> {
        // A 389-ds cleanallruv task entry is not stored: Directory::write
        // runs the task, and there is no entry to test or read.
        let task = match &op {
            WriteOp::Add { dn, attrs } => {
                super::repl::retire::cleanallruv_task(dn, attrs, |d| self.core.norm_dn(d)).is_some()
            }
            _ => false,
        };
        if controls.is_empty() || task {
            return self.write(who, op).await.map(|()| EntryReads::default());
        }
        let out = Arc::new(Mutex::new(EntryReads::default()));
        self.writer
            .submit_work(Work::Controlled {
                who: who.clone(),
                op,
                controls,
                out: out.clone(),
            })
            .await?;
        let reads = out
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        Ok(reads)
    }

    /// The assertion control on a read (search base, compare target),
    /// tested on a read snapshot: Err(AssertionFailed) unless `dn` matches.
    pub fn check_assertion(&self, who: &Identity, dn: &Dn, filter: &LdapFilter) -> DirResult<()> {
        let core = &self.core;
        let txn = core.store.read()?;
        let (id, entry) = core.entry_at(&txn, dn)?;
        let access = core.access_for(&txn, who, &entry)?;
        if !access.may_see(&entry) {
            return Err(core.no_such_object(&txn, dn));
        }
        core.assert_matches(&txn, &access, &entry, id, filter)
    }
}

impl Core {
    /// The stored entry at `dn` and its id.
    fn entry_at(&self, txn: &dyn StoreRead, dn: &Dn) -> DirResult<(u64, Entry)> {
        let found = match txn.id_by_dn(&self.dn_key(dn))? {
            Some(id) => txn.entry(id)?.map(|e| (id, e)),
            None => None,
        };
        found.ok_or_else(|| self.no_such_object(txn, dn))
    }

    /// Evaluates the assertion as a search filter would be on this entry:
    /// terms on attributes the requester may not search are Undefined.
    fn assert_matches(
        &self,
        txn: &dyn StoreRead,
        access: &EntryAccess,
        entry: &Entry,
        id: u64,
        filter: &LdapFilter,
    ) -> DirResult<()> {
        let schema = self.schema();
        let hidden = |at: &AttributeType| !access.allows(Rights::SEARCH, at.name());
        let computed = |name: &str, e: &Entry| computed_value(name, e, id, txn);
        let ctx = EvalContext {
            schema: &schema,
            hidden: &hidden,
            computed: &computed,
        };
        if ctx.eval(filter, entry) == Tri::True {
            Ok(())
        } else {
            Err(DirError::AssertionFailed(format!(
                "'{}' does not match the assertion control's filter",
                entry.dn
            )))
        }
    }

    /// What `who` may do with `entry`, as a search sees it (ACI
    /// targetfilters see the computed memberOf).
    fn access_for(
        &self,
        txn: &dyn StoreRead,
        who: &Identity,
        entry: &Entry,
    ) -> DirResult<EntryAccess> {
        let schema = self.schema();
        let dn_key = |d: &Dn| self.dn_key(d).into_bytes();
        let memberof = self.memberof_view(txn);
        let computed = |name: &str, e: &Entry| memberof.as_ref().and_then(|m| m.computed(name, e));
        let acl = Checker::new(
            Resolver {
                schema: &schema,
                dn_key: &dn_key,
                computed: Some(&computed),
            },
            txn,
            who,
            self.is_replication_identity(who),
        );
        Ok(acl.access(entry)?)
    }

    /// The requested attributes of `entry` that the requester may read.
    fn read_for_control(
        &self,
        txn: &dyn StoreRead,
        access: &EntryAccess,
        entry: &Entry,
        id: u64,
        attrs: &[String],
    ) -> SearchEntry {
        let schema = self.schema();
        let everything = LdapFilter::Present("objectClass".into());
        let req = SearchRequest {
            base: entry.dn.clone(),
            scope: Scope::Base,
            filter: &everything,
            attrs,
            types_only: false,
            size_limit: 0,
            time_limit: 0,
            page: None,
            lookthrough_limit: 0,
        };
        let selection = Selection::new(&schema, attrs);
        if !access.may_see(entry) {
            return SearchEntry {
                dn: entry.dn.to_string(),
                attrs: Vec::new(),
            };
        }
        let readable = |name: &str| access.allows(Rights::READ, name);
        // memberOf is computed from the groups, as in a search.
        let memberof = self.memberof_view(txn);
        select(
            self,
            txn,
            entry,
            id,
            &req,
            &selection,
            &readable,
            memberof.as_ref(),
        )
        .to_owned_entry()
    }

    /// A client write with its entry controls, on the writer thread.
    pub(crate) fn apply_controlled(
        &self,
        txn: &mut WriteTxn<'_>,
        who: &Identity,
        op: &WriteOp,
        csn: Csn,
        controls: &EntryControls,
        out: &Mutex<EntryReads>,
    ) -> DirResult<()> {
        let is_add = matches!(op, WriteOp::Add { .. });
        let mut reads = EntryReads::default();
        let needs_before = !is_add && (controls.assertion.is_some() || controls.pre_read.is_some());
        if needs_before && !super::subschema::is_subschema_dn(op.dn()) {
            let (id, entry) = self.entry_at(&*txn, op.dn())?;
            let access = self.access_for(&*txn, who, &entry)?;
            if let Some(f) = &controls.assertion {
                if !access.may_see(&entry) {
                    return Err(self.no_such_object(&*txn, op.dn()));
                }
                self.assert_matches(&*txn, &access, &entry, id, f)?;
            }
            if let Some(attrs) = &controls.pre_read {
                reads.pre = Some(self.read_for_control(&*txn, &access, &entry, id, attrs));
            }
        }
        self.apply(txn, who, op, csn, Origin::Client)?;
        let needs_after = controls.post_read.is_some() || (is_add && controls.assertion.is_some());
        let after = match op {
            WriteOp::Delete { .. } => None,
            WriteOp::ModDn {
                dn,
                new_rdn,
                new_superior,
                ..
            } => Some(
                new_superior
                    .clone()
                    .unwrap_or_else(|| dn.parent().unwrap_or_default())
                    .child(new_rdn.clone()),
            ),
            other => Some(other.dn().clone()),
        };
        if let Some(after) = after.filter(|d| needs_after && !super::subschema::is_subschema_dn(d))
        {
            let (id, entry) = self.entry_at(&*txn, &after)?;
            let access = self.access_for(&*txn, who, &entry)?;
            if is_add {
                if let Some(f) = &controls.assertion {
                    // Rolled back by the writer: the entry is never added.
                    self.assert_matches(&*txn, &access, &entry, id, f)?;
                }
            }
            if let Some(attrs) = &controls.post_read {
                reads.post = Some(self.read_for_control(&*txn, &access, &entry, id, attrs));
            }
        }
        if let Ok(mut o) = out.lock() {
            *o = reads;
        }
        Ok(())
    }
}
