//! Search: scope, index planning, filter evaluation, limits, paging and
//! attribute selection (RFC 4511 §4.5).

use super::select::{computed_value, select, Selection};
pub use super::select::{SelectedEntry, SelectedValues};
use super::{Core, DirResult, Identity};
use crate::acl::{Checker, EntryAccess, Resolver, Rights};
use crate::model::{Dn, Entry};
use crate::query::filter::{self, EvalContext, Tri};
use crate::schema::AttributeType;
use crate::store::{DnKey, IndexKey, StoreRead};
use ldap3_proto::proto::LdapFilter;
use std::cell::{Cell, RefCell};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    One,
    Sub,
}

pub struct SearchRequest<'a> {
    pub base: Dn,
    pub scope: Scope,
    pub filter: &'a LdapFilter,
    pub attrs: &'a [String],
    pub types_only: bool,
    /// Client's size limit (0 = none); the server's limit applies on top for non-root.
    pub size_limit: usize,
    /// Client's time limit in seconds (0 = none).
    pub time_limit: u64,
    /// Paged results: page size and the id after which to continue.
    pub page: Option<(usize, u64)>,
    /// Entries a non-root search may look at (0 = unlimited), as 389-ds's
    /// nsslapd-lookthroughlimit: bounds the work of unindexed and
    /// candidate-heavy searches, whatever they return.
    pub lookthrough_limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchEntry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl super::Directory {
    /// Like [`super::Directory::search`], handing each entry over borrowed.
    pub fn search_selected(
        &self,
        who: &Identity,
        req: &SearchRequest<'_>,
        cancelled: &dyn Fn() -> bool,
        emit: &mut dyn FnMut(&SelectedEntry<'_>),
    ) -> DirResult<SearchEnd> {
        run_selected(&self.core, who, req, cancelled, emit, None).map(unbounded)
    }

    /// Like [`Self::search_selected`] for a search that looks at no more
    /// than `max_candidates` entries (the base entry, a selective index
    /// key), which is known before any entry is read. Returns None, having
    /// emitted nothing, for any other search.
    pub fn search_selected_small(
        &self,
        who: &Identity,
        req: &SearchRequest<'_>,
        cancelled: &dyn Fn() -> bool,
        emit: &mut dyn FnMut(&SelectedEntry<'_>),
        max_candidates: usize,
    ) -> DirResult<Option<SearchEnd>> {
        run_selected(&self.core, who, req, cancelled, emit, Some(max_candidates))
    }
}

/// The end of a search run without a candidate bound (which always has one).
fn unbounded(end: Option<SearchEnd>) -> SearchEnd {
    end.unwrap_or(SearchEnd::Done { entries: 0 })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchEnd {
    Done {
        entries: usize,
    },
    SizeLimit {
        entries: usize,
    },
    TimeLimit {
        entries: usize,
    },
    /// More candidates than the look-through limit would be read.
    LookThroughLimit {
        entries: usize,
        limit: usize,
    },
    Abandoned,
    /// A page ended; `next` is the id to continue after (None: last page).
    Page {
        entries: usize,
        next: Option<u64>,
    },
}

pub(super) fn run(
    core: &Core,
    who: &Identity,
    req: &SearchRequest<'_>,
    cancelled: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(SearchEntry),
) -> DirResult<SearchEnd> {
    run_selected(
        core,
        who,
        req,
        cancelled,
        &mut |e| emit(e.to_owned_entry()),
        None,
    )
    .map(unbounded)
}

/// Runs a search. With `bound`, gives up (None) before reading any entry
/// when more than that many candidates, or an unknown number, would be read.
fn run_selected(
    core: &Core,
    who: &Identity,
    req: &SearchRequest<'_>,
    cancelled: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(&SelectedEntry<'_>),
    bound: Option<usize>,
) -> DirResult<Option<SearchEnd>> {
    let started = Instant::now();
    let txn = core.store.read()?;
    let schema = &core.schema();
    let dn_key = |d: &Dn| core.dn_key(d).into_bytes();
    let memberof = core.memberof_view(&txn);
    // ACI targetfilters may name memberOf (as in 389-ds).
    let acl_computed = |name: &str, e: &Entry| memberof.as_ref().and_then(|m| m.computed(name, e));
    let acl = Checker::new(
        Resolver {
            schema,
            dn_key: &dn_key,
            computed: Some(&acl_computed),
        },
        &txn,
        who,
        core.is_replication_identity(who),
    );
    // Index planning runs before any entry is seen: it can only hide what is
    // hidden everywhere (secrets). Per entry, a filter term on an attribute
    // the requester may not search is Undefined, and only readable entries
    // and attributes are returned.
    let reads_everything = acl.reads_everything();
    let secret = |at: &AttributeType| !reads_everything && core.is_secret(at);
    let access = RefCell::new(EntryAccess::none());
    let hidden = |at: &AttributeType| !access.borrow().allows(Rights::SEARCH, at.name());
    let readable = |name: &str| access.borrow().allows(Rights::READ, name);

    let mut size_limit = req.size_limit;
    let mut time_limit = req.time_limit;
    // The server's limits are for clients: the root DN and replication
    // identities (a slave's full refresh, a consumer's catch-up) read
    // everything, as 389-ds's replication manager does.
    let unlimited = who.root || core.is_replication_identity(who);
    // A paged search's total is bounded across pages by the ops layer
    // (ops::paging), which also cuts each page to what is left of it.
    if !unlimited
        && req.page.is_none()
        && core.cfg.size_limit > 0
        && (size_limit == 0 || size_limit > core.cfg.size_limit)
    {
        size_limit = core.cfg.size_limit;
    }
    if !unlimited
        && core.cfg.time_limit > 0
        && (time_limit == 0 || time_limit > core.cfg.time_limit)
    {
        time_limit = core.cfg.time_limit;
    }
    let lookthrough = if unlimited { 0 } else { req.lookthrough_limit };

    // The empty base with a non-base scope searches every naming context.
    let bases: Vec<(Dn, DnKey, u64)> = if req.base.is_root() {
        let mut v = Vec::new();
        for s in &core.cfg.suffixes {
            let key = core.dn_key(s);
            if let Some(id) = txn.id_by_dn(&key)? {
                v.push((s.clone(), key, id));
            }
        }
        v
    } else {
        let key = core.dn_key(&req.base);
        match txn.id_by_dn(&key)? {
            Some(id) => vec![(req.base.clone(), key, id)],
            None => return Err(core.no_such_object(&txn, &req.base)),
        }
    };

    let config_key = core.config_key();
    if !who.root && bases.iter().any(|(_, key, _)| key.starts_with(&config_key)) {
        return Err(super::DirError::InsufficientAccess(
            "only the root DN may read cn=config".into(),
        ));
    }

    // Conflict entries (and other ldapSubEntry entries) stay out of
    // ordinary searches, as in 389-ds.
    let show_subentries =
        req.scope == Scope::Base || filter::names_class(req.filter, "ldapSubEntry");
    let current_id = Cell::new(0u64);
    let memberof_name = memberof.as_ref().map(|m| m.lname());
    let computed = |name: &str, e: &Entry| match &memberof {
        Some(m) if memberof_name.as_deref() == Some(name) => m.values_or_none(&e.dn),
        _ => computed_value(name, e, current_id.get(), &txn),
    };
    let ctx = EvalContext {
        schema,
        hidden: &hidden,
        computed: &computed,
    };

    // A base search looks at one entry: no index can narrow that. The
    // naming contexts are the root DSE's children, so a one-level search of
    // the empty base looks at the suffix entries themselves (as OpenLDAP).
    let base_entries_only =
        req.scope == Scope::Base || (req.base.is_root() && req.scope == Scope::One);
    let (candidates, scoped_by_index) = if base_entries_only {
        (
            Candidates::Listed(bases.iter().map(|(_, _, id)| *id).collect()),
            false,
        )
    } else if let Some(m) = memberof
        .as_ref()
        .filter(|m| bound.is_none() && m.names_attribute(req.filter))
    {
        // `(memberOf=G)` is answered by G's members (memberof.rs).
        let other = |f: &LdapFilter| Ok(filter::plan(schema, &core.cfg.indexes, &secret, &txn, f)?);
        match m.plan(req.filter, &other)? {
            Some(ids) => (Candidates::Listed(ids), true),
            None => (Candidates::Listed(scope_ids(&txn, req, &bases)?), false),
        }
    } else if let Some(key) = filter::single_key(schema, &core.cfg.indexes, &secret, req.filter) {
        match bound {
            None => (Candidates::Posting(key), true),
            Some(max) => match txn.index_ids_capped(&key, max)? {
                Some(ids) => (Candidates::Listed(ids), true),
                None => return Ok(None),
            },
        }
    } else if let Some(max) = bound {
        let indexes = &core.cfg.indexes;
        let Some(prefix) = filter::single_initial_key(schema, indexes, &secret, req.filter) else {
            return Ok(None);
        };
        match txn.index_prefix_ids_capped(&prefix, max)? {
            Some(ids) => (Candidates::Listed(sorted(ids)), true),
            None => return Ok(None),
        }
    } else {
        match filter::plan(schema, &core.cfg.indexes, &secret, &txn, req.filter)? {
            Some(ids) => (Candidates::Listed(ids), true),
            None => (Candidates::Listed(scope_ids(&txn, req, &bases)?), false),
        }
    };

    let selection = Selection::new(schema, req.attrs);
    let entries = Cell::new(0usize);
    let (page_size, after) = match req.page {
        Some((size, after)) => (Some(size), after),
        None => (None, 0),
    };
    // The last candidate looked at: a page that fills up continues after it.
    let mut last = after;
    let mut looked = 0usize;
    let mut step = |id: u64| -> DirResult<Option<SearchEnd>> {
        if id <= after {
            return Ok(None);
        }
        if looked.is_multiple_of(64) {
            if cancelled() {
                return Ok(Some(SearchEnd::Abandoned));
            }
            if time_limit > 0 && started.elapsed().as_secs() >= time_limit {
                return Ok(Some(SearchEnd::TimeLimit {
                    entries: entries.get(),
                }));
            }
        }
        if lookthrough > 0 && looked >= lookthrough {
            return Ok(Some(SearchEnd::LookThroughLimit {
                entries: entries.get(),
                limit: lookthrough,
            }));
        }
        looked += 1;
        let previous = std::mem::replace(&mut last, id);
        let Some(mut entry) = txn.entry(id)? else {
            return Ok(None);
        };
        if scoped_by_index && !in_scope(core, &entry, id, req.scope, &bases) {
            return Ok(None);
        }
        if !show_subentries
            && entry.get("objectClass").is_some_and(|a| {
                a.byte_values()
                    .any(|v| v.eq_ignore_ascii_case(b"ldapSubEntry"))
            })
        {
            return Ok(None);
        }
        let rights = acl.access(&entry)?;
        if !rights.may_see(&entry) {
            return Ok(None);
        }
        *access.borrow_mut() = rights;
        current_id.set(id);
        if ctx.eval(req.filter, &entry) != Tri::True {
            return Ok(None);
        }
        let n = entries.get();
        if size_limit > 0 && n >= size_limit {
            return Ok(Some(SearchEnd::SizeLimit { entries: n }));
        }
        if page_size.is_some_and(|ps| n >= ps) {
            return Ok(Some(SearchEnd::Page {
                entries: n,
                next: Some(previous),
            }));
        }
        if entry.get("objectClass").is_some_and(|a| {
            a.byte_values()
                .any(|v| v.eq_ignore_ascii_case(b"nsDS5ReplicationAgreement"))
        }) {
            add_agreement_status(core, &txn, &mut entry);
        } else if entry.get("objectClass").is_some_and(|a| {
            a.byte_values()
                .any(|v| v.eq_ignore_ascii_case(b"nsDS5Replica"))
        }) {
            add_retirements(core, &txn, &mut entry);
        }
        emit(&select(
            core,
            &txn,
            &entry,
            id,
            req,
            &selection,
            &readable,
            memberof.as_ref(),
        ));
        entries.set(n + 1);
        Ok(None)
    };
    let end = match candidates {
        Candidates::Listed(ids) => {
            let mut end = None;
            for id in ids {
                end = step(id)?;
                if end.is_some() {
                    break;
                }
            }
            end
        }
        Candidates::Posting(key) => {
            let mut end = Ok(None);
            txn.index_ids_while(&key, &mut |id| {
                end = step(id);
                matches!(end, Ok(None))
            })?;
            end?
        }
    };
    Ok(Some(end.unwrap_or(match page_size {
        Some(_) => SearchEnd::Page {
            entries: entries.get(),
            next: None,
        },
        None => SearchEnd::Done {
            entries: entries.get(),
        },
    })))
}

fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Where the candidates of a search come from.
enum Candidates {
    /// Sorted ids.
    Listed(Vec<u64>),
    /// The ids under one index key, read as the search goes.
    Posting(IndexKey),
}

/// Every id in the search scope (sorted): the candidates when no index applies.
fn scope_ids(
    txn: &dyn StoreRead,
    req: &SearchRequest<'_>,
    bases: &[(Dn, DnKey, u64)],
) -> DirResult<Vec<u64>> {
    let mut candidates = Vec::new();
    for (_, key, id) in bases {
        match req.scope {
            Scope::Base => candidates.push(*id),
            Scope::One => candidates.extend(txn.children(*id)?),
            Scope::Sub => candidates.extend(txn.subtree_ids(key)?),
        }
    }
    if req.scope != Scope::Base && candidates.len() > 1 {
        tracing::info!(
            base = %req.base,
            filter = ?req.filter,
            scanned = candidates.len(),
            "unindexed search"
        );
    }
    candidates.sort_unstable();
    candidates.dedup();
    Ok(candidates)
}

fn in_scope(core: &Core, entry: &Entry, id: u64, scope: Scope, bases: &[(Dn, DnKey, u64)]) -> bool {
    // RDNs spelled exactly as the base's normalise to the base's key, so
    // the normalised key is only built when the spelling differs.
    let below = |base_dn: &Dn, base_key: &[u8]| {
        entry.dn.rdns.ends_with(&base_dn.rdns) || core.dn_key(&entry.dn).starts_with(base_key)
    };
    bases
        .iter()
        .any(|(base_dn, base_key, base_id)| match scope {
            Scope::Base => id == *base_id,
            Scope::Sub => below(base_dn, base_key),
            Scope::One => entry.dn.rdns.len() == base_dn.rdns.len() + 1 && below(base_dn, base_key),
        })
}

/// A replica entry shows its suffix's retired replica IDs and what it
/// received from its supplier.
fn add_retirements(core: &Core, txn: &dyn StoreRead, entry: &mut Entry) {
    let Some(root) = entry
        .first_str("nsDS5ReplicaRoot")
        .and_then(|r| Dn::parse(r.trim()).ok())
    else {
        return;
    };
    let lines = core.retired_lines(txn, &root);
    if !lines.is_empty() {
        entry.set(
            "ferrodirRetiredReplicaId",
            lines.into_iter().map(String::into_bytes).collect(),
            crate::model::Csn::ZERO,
        );
    }
    // What this server received as a consumer of the suffix.
    let side = core
        .consumer_side
        .lock()
        .ok()
        .and_then(|m| m.get(&core.norm_dn(&root)).cloned());
    if let Some(c) = side {
        let zero = crate::model::Csn::ZERO;
        if !c.supplier.is_empty() {
            entry.set(
                "ferrodirReplicationSupplier",
                vec![c.supplier.into_bytes()],
                zero,
            );
        }
        if let Some(t) = c.last_session {
            entry.set(
                "nsds5replicaLastUpdateStart",
                vec![super::time::generalized_time(t).into_bytes()],
                zero,
            );
        }
        if let (Some(received), Some(made)) = (c.last_change_received, c.last_change_made) {
            entry.set(
                "ferrodirLastChangeReceived",
                vec![super::time::generalized_time(received).into_bytes()],
                zero,
            );
            entry.set(
                "ferrodirReplicationLag",
                vec![received.saturating_sub(made).to_string().into_bytes()],
                zero,
            );
        }
        entry.set(
            "ferrodirChangesReceived",
            vec![c.changes_received.to_string().into_bytes()],
            zero,
        );
    }
}

fn add_agreement_status(core: &Core, txn: &dyn StoreRead, entry: &mut Entry) {
    let suffix = entry
        .first_str("nsDS5ReplicaRoot")
        .and_then(|r| Dn::parse(r.trim()).ok())
        .unwrap_or_default();
    let status = core.agreement_status_now(txn, &entry.dn, &suffix);
    for (name, values) in super::repl::status_attributes(&status) {
        entry.set(&name, values, crate::model::Csn::ZERO);
    }
    let conflicts = core.schema_conflicts();
    if !conflicts.is_empty() {
        entry.set(
            "ferrodirSchemaConflict",
            conflicts.into_iter().map(String::into_bytes).collect(),
            crate::model::Csn::ZERO,
        );
    }
    let skew = core.clock_skew.load(std::sync::atomic::Ordering::Relaxed);
    entry.set(
        "ferrodirClockSkew",
        vec![skew.to_string().into_bytes()],
        crate::model::Csn::ZERO,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Directory, IndexConfig, WriteOp};

    const SUFFIX: &str = "dc=example,dc=com";

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap()
    }

    fn root() -> Identity {
        let d = dn("cn=Directory Manager");
        Identity {
            norm: "cn=directory manager".into(),
            dn: Some(d),
            root: true,
        }
    }

    fn open(indexes: IndexConfig) -> (tempfile::TempDir, Directory) {
        crate::directory::test_support::temp_directory(SUFFIX, indexes)
    }

    fn add(dir: &Directory, d: &str, attrs: &[(&str, &[&str])]) {
        let attrs = attrs
            .iter()
            .map(|(n, vs)| {
                (
                    n.to_string(),
                    vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
                )
            })
            .collect();
        dir.write_blocking(&root(), WriteOp::Add { dn: dn(d), attrs })
            .unwrap_or_else(|e| panic!("adding {d}: {e}"));
    }

    fn populate(dir: &Directory) {
        add(
            dir,
            SUFFIX,
            &[("objectClass", &["domain"]), ("dc", &["example"])],
        );
        add(
            dir,
            "ou=people,dc=example,dc=com",
            &[
                ("objectClass", &["organizationalUnit"]),
                ("ou", &["people"]),
            ],
        );
        let people: &[(&str, &[&str], &str, &str)] = &[
            ("u1", &["User 1"], "+1 555-0100", "User1@Example.com"),
            ("u12", &["User 12"], "+1 555 0112", "user12@example.com"),
            (
                "u123",
                &["user 123", "Alpha Beta"],
                "+15550123",
                "u123@example.org",
            ),
            ("u2", &["User  2 0"], "555-0200", "x@example.com"),
            ("u3", &["Ünïcode Ñame"], "555", "u3@example.com"),
            ("u4", &["ab"], "1", "ab@example.com"),
            ("u5", &["abc", "User 19"], "2", "abc@example.com"),
            ("u6", &["USER 1x"], "3", "USER6@EXAMPLE.COM"),
        ];
        for (uid, cns, phone, mail) in people {
            add(
                dir,
                &format!("uid={uid},ou=people,dc=example,dc=com"),
                &[
                    ("objectClass", &["inetOrgPerson"]),
                    ("uid", &[uid]),
                    ("cn", cns),
                    ("sn", &[uid]),
                    ("telephoneNumber", &[phone]),
                    ("mail", &[mail]),
                ],
            );
        }
    }

    /// A root search without limits.
    fn request<'a>(
        base: &str,
        scope: Scope,
        filter: &'a LdapFilter,
        attrs: &'a [String],
        page: Option<(usize, u64)>,
    ) -> SearchRequest<'a> {
        SearchRequest {
            base: dn(base),
            scope,
            filter,
            attrs,
            types_only: false,
            size_limit: 0,
            time_limit: 0,
            page,
            lookthrough_limit: 0,
        }
    }

    fn search(dir: &Directory, base: &str, scope: Scope, filter: &str) -> Vec<SearchEntry> {
        let f = crate::acl::parse_filter(filter).unwrap();
        // Not `+`: entryUUID and the timestamps differ between two directories.
        let attrs = vec![
            "*".to_string(),
            "entryDN".to_string(),
            "hasSubordinates".to_string(),
        ];
        let req = request(base, scope, &f, &attrs, None);
        let mut out = Vec::new();
        dir.search(&root(), &req, &|| false, &mut |e| out.push(e))
            .unwrap();
        out.sort_by(|a, b| a.dn.cmp(&b.dn));
        out
    }

    /// Indexed answers (initial substrings by equality-key ranges included)
    /// equal the answers of a directory without any index.
    #[test]
    fn indexed_substring_searches_equal_unindexed_evaluation() {
        let (_a, indexed) = open(IndexConfig::default());
        let (_b, plain) = open(IndexConfig {
            attrs: Default::default(),
        });
        populate(&indexed);
        populate(&plain);
        let filters = [
            "(cn=User 1*)",
            "(cn=user 1*)",
            "(cn=USER  1*)",
            "(cn=User 1*9)",
            "(cn=User*1*)",
            "(cn=U*)",
            "(cn=*1)",
            "(cn=ü*)",
            "(cn=ÜNÏ*)",
            "(cn=a*)",
            "(cn=abc*)",
            "(cn=User 2*)",
            "(cn=User 2 *)",
            "(cn=zz*)",
            "(telephoneNumber=+1 555*)",
            "(telephoneNumber=+1555-01*)",
            "(telephoneNumber=555*)",
            "(mail=user1*)",
            "(mail=USER*@example.com)",
            "(uid=u1*)",
            "(sn=u*2*)",
            "(&(objectClass=inetOrgPerson)(cn=User 1*))",
            "(|(cn=ab*)(sn=u5*))",
            "(!(cn=User*))",
            "(&(cn=User*)(!(cn=User 1*)))",
        ];
        for f in filters {
            for (base, scope) in [
                (SUFFIX, Scope::Sub),
                ("ou=people,dc=example,dc=com", Scope::One),
                ("OU=People,DC=Example,DC=Com", Scope::Sub),
                ("uid=u1,ou=people,dc=example,dc=com", Scope::Base),
            ] {
                let want = search(&plain, base, scope, f);
                let got = search(&indexed, base, scope, f);
                assert_eq!(got, want, "{f} under {base} ({scope:?})");
            }
        }
        // The sample really has matches, so the equality above is not vacuous.
        assert_eq!(search(&plain, SUFFIX, Scope::Sub, "(cn=User 1*)").len(), 5);
        assert_eq!(search(&plain, SUFFIX, Scope::Sub, "(cn=ü*)").len(), 1);
    }

    fn pages(dir: &Directory, filter: &str, size: usize) -> Vec<SearchEntry> {
        let f = crate::acl::parse_filter(filter).unwrap();
        let attrs = vec!["*".to_string()];
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let req = request(
                "ou=people,dc=example,dc=com",
                Scope::One,
                &f,
                &attrs,
                Some((size, after)),
            );
            let mut page = Vec::new();
            let end = dir
                .search(&root(), &req, &|| false, &mut |e| page.push(e))
                .unwrap();
            assert!(page.len() <= size);
            out.extend(page);
            match end {
                SearchEnd::Page {
                    next: Some(next), ..
                } => after = next,
                SearchEnd::Page { next: None, .. } => return out,
                other => panic!("not a page end: {other:?}"),
            }
        }
    }

    /// Pages read lazily from one posting list hold what an unindexed scan
    /// returns, in the same order, whatever the page size.
    #[test]
    fn paged_posting_list_equals_unindexed_pages() {
        let (_a, indexed) = open(IndexConfig::default());
        let (_b, plain) = open(IndexConfig {
            attrs: Default::default(),
        });
        populate(&indexed);
        populate(&plain);
        for filter in ["(objectClass=inetOrgPerson)", "(cn=User 1*)", "(uid=u12)"] {
            let all = pages(&plain, filter, 1000);
            assert!(!all.is_empty(), "{filter}");
            for size in [1, 2, 3, 7, 1000] {
                assert_eq!(
                    pages(&indexed, filter, size),
                    all,
                    "{filter}, pages of {size}"
                );
                assert_eq!(
                    pages(&plain, filter, size),
                    all,
                    "{filter}, pages of {size}"
                );
            }
        }
    }

    /// A bounded search answers exactly like an unbounded one, or declines
    /// without emitting anything.
    #[test]
    fn small_searches_equal_full_searches_or_decline() {
        let (_a, dir) = open(IndexConfig::default());
        populate(&dir);
        let attrs = vec!["cn".to_string(), "mail".to_string()];
        let cases = [
            ("(uid=u12)", Scope::Sub, SUFFIX, true),
            ("(cn=User 12*)", Scope::Sub, SUFFIX, true),
            // Five entries: more than the bound.
            ("(cn=User 1*)", Scope::Sub, SUFFIX, false),
            ("(cn=u*)", Scope::Sub, SUFFIX, false),
            ("(objectClass=inetOrgPerson)", Scope::Sub, SUFFIX, false),
            (
                "(objectClass=*)",
                Scope::Base,
                "uid=u5,ou=people,dc=example,dc=com",
                true,
            ),
            ("(sn=u1*)", Scope::One, "ou=people,dc=example,dc=com", true),
            ("(description=x)", Scope::Sub, SUFFIX, false),
        ];
        for (filter, scope, base, small) in cases {
            let f = crate::acl::parse_filter(filter).unwrap();
            let req = request(base, scope, &f, &attrs, None);
            let mut full = Vec::new();
            let full_end = dir
                .search_selected(&root(), &req, &|| false, &mut |e| {
                    full.push(e.to_owned_entry())
                })
                .unwrap();
            let mut bounded = Vec::new();
            let bounded_end = dir
                .search_selected_small(
                    &root(),
                    &req,
                    &|| false,
                    &mut |e| bounded.push(e.to_owned_entry()),
                    4,
                )
                .unwrap();
            match bounded_end {
                Some(end) => {
                    assert!(small, "{filter} should have been declined");
                    assert_eq!(end, full_end, "{filter}");
                    assert_eq!(bounded, full, "{filter}");
                }
                None => {
                    assert!(!small, "{filter} should have run");
                    assert!(bounded.is_empty(), "{filter}");
                }
            }
        }
    }

    /// An initial substring on an attribute with equality keys is answered
    /// from those keys alone: the candidates are exactly the matching entries.
    #[test]
    fn initial_substring_candidates_are_exact() {
        let (_a, dir) = open(IndexConfig::default());
        populate(&dir);
        let txn = dir.core.store.read().unwrap();
        let none = |_: &AttributeType| false;
        let cfg = &dir.core.cfg.indexes;
        for (f, matches) in [("(cn=User 1*)", 5), ("(cn=user 12*)", 2), ("(mail=ab*)", 2)] {
            let f = crate::acl::parse_filter(f).unwrap();
            let ids = filter::plan(&dir.core.schema(), cfg, &none, &txn, &f)
                .unwrap()
                .expect("answered from the index");
            assert_eq!(ids.len(), matches, "{f:?}");
        }
    }

    /// Past the look-through limit a non-root search ends, whatever it
    /// found; the root DN is not limited.
    #[test]
    fn lookthrough_limit_bounds_non_root_searches() {
        let (_a, dir) = open(IndexConfig {
            attrs: Default::default(),
        });
        populate(&dir);
        let f = crate::acl::parse_filter("(description=nothing)").unwrap();
        let attrs = vec!["*".to_string()];
        let mut req = request(SUFFIX, Scope::Sub, &f, &attrs, None);
        req.lookthrough_limit = 3;
        let run = |who: &Identity, req: &SearchRequest<'_>| {
            dir.search(who, req, &|| false, &mut |_| {})
                .expect("search runs")
        };
        assert_eq!(
            run(&Identity::anonymous(), &req),
            SearchEnd::LookThroughLimit {
                entries: 0,
                limit: 3
            }
        );
        assert_eq!(run(&root(), &req), SearchEnd::Done { entries: 0 });
        req.lookthrough_limit = 100;
        assert_eq!(
            run(&Identity::anonymous(), &req),
            SearchEnd::Done { entries: 0 }
        );
    }
}
