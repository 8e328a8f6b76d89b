//! Search: scope, index planning, filter evaluation, limits, paging and
//! attribute selection (RFC 4511 §4.5).

use super::filter::{self, EvalContext, Tri};
use super::{Core, DirResult, Identity};
use crate::acl::{Checker, EntryAccess, Resolver, Rights};
use crate::model::{Dn, Entry};
use crate::schema::AttributeType;
use crate::store::StoreRead;
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchEntry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
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
    Abandoned,
    /// A page ended; `next` is the id to continue after (None: last page).
    Page {
        entries: usize,
        next: Option<u64>,
    },
}

/// Computed operational attributes (not stored).
const COMPUTED: &[&str] = &[
    "entrydn",
    "hassubordinates",
    "numsubordinates",
    "subschemasubentry",
];

fn computed_value(name: &str, entry: &Entry, id: u64, txn: &dyn StoreRead) -> Option<Vec<Vec<u8>>> {
    match name {
        "entrydn" => Some(vec![entry.dn.to_string().into_bytes()]),
        "hassubordinates" => {
            let has = txn.has_children(id).ok()?;
            Some(vec![if has {
                b"TRUE".to_vec()
            } else {
                b"FALSE".to_vec()
            }])
        }
        "numsubordinates" => Some(vec![txn.child_count(id).ok()?.to_string().into_bytes()]),
        "subschemasubentry" => Some(vec![b"cn=schema".to_vec()]),
        _ => None,
    }
}

pub(super) fn run(
    core: &Core,
    who: &Identity,
    req: &SearchRequest<'_>,
    cancelled: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(SearchEntry),
) -> DirResult<SearchEnd> {
    let started = Instant::now();
    let txn = core.store.read()?;
    let schema = &core.schema;
    let dn_key = |d: &Dn| core.dn_key(d);
    let acl = Checker::new(
        Resolver {
            schema,
            dn_key: &dn_key,
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
    // Paged searches are bounded per page, so the server-wide size limit does not cut them short.
    if !who.root
        && req.page.is_none()
        && core.cfg.size_limit > 0
        && (size_limit == 0 || size_limit > core.cfg.size_limit)
    {
        size_limit = core.cfg.size_limit;
    }
    if !who.root && core.cfg.time_limit > 0 && (time_limit == 0 || time_limit > core.cfg.time_limit)
    {
        time_limit = core.cfg.time_limit;
    }

    // The empty base with a non-base scope searches every naming context.
    let bases: Vec<(Dn, Vec<u8>, u64)> = if req.base.is_root() {
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

    let current_id = Cell::new(0u64);
    let computed = |name: &str, e: &Entry| computed_value(name, e, current_id.get(), &txn);
    let ctx = EvalContext {
        schema,
        hidden: &hidden,
        computed: &computed,
    };

    let planned = filter::plan(schema, &core.cfg.indexes, &secret, &txn, req.filter)?;
    let mut candidates: Vec<u64> = Vec::new();
    let scoped_by_index = planned.is_some();
    match planned {
        Some(ids) => candidates = ids,
        None => {
            for (_, key, id) in &bases {
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
        }
    }

    let mut entries = 0usize;
    let (page_size, after) = match req.page {
        Some((size, after)) => (Some(size), after),
        None => (None, 0),
    };
    for (n, &id) in candidates.iter().enumerate() {
        if id <= after {
            continue;
        }
        if n % 64 == 0 {
            if cancelled() {
                return Ok(SearchEnd::Abandoned);
            }
            if time_limit > 0 && started.elapsed().as_secs() >= time_limit {
                return Ok(SearchEnd::TimeLimit { entries });
            }
        }
        let Some(mut entry) = txn.entry(id)? else {
            continue;
        };
        if scoped_by_index && !in_scope(core, &entry, id, req.scope, &bases) {
            continue;
        }
        let rights = acl.access(&entry)?;
        if !rights.may_see(&entry) {
            continue;
        }
        *access.borrow_mut() = rights;
        current_id.set(id);
        if ctx.eval(req.filter, &entry) != Tri::True {
            continue;
        }
        if size_limit > 0 && entries >= size_limit {
            return Ok(SearchEnd::SizeLimit { entries });
        }
        if let Some(ps) = page_size {
            if entries >= ps {
                return Ok(SearchEnd::Page {
                    entries,
                    next: Some(after_last(&candidates, n)),
                });
            }
        }
        if entry
            .values("objectClass")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"nsDS5ReplicationAgreement"))
        {
            add_agreement_status(core, &mut entry);
        }
        emit(select(core, &txn, &entry, id, req, &readable));
        entries += 1;
    }
    Ok(match page_size {
        Some(_) => SearchEnd::Page {
            entries,
            next: None,
        },
        None => SearchEnd::Done { entries },
    })
}

/// The id to continue after when a page stops before candidate `n`.
fn after_last(candidates: &[u64], n: usize) -> u64 {
    if n == 0 {
        0
    } else {
        candidates[n - 1]
    }
}

fn in_scope(
    core: &Core,
    entry: &Entry,
    id: u64,
    scope: Scope,
    bases: &[(Dn, Vec<u8>, u64)],
) -> bool {
    let key = core.dn_key(&entry.dn);
    bases
        .iter()
        .any(|(base_dn, base_key, base_id)| match scope {
            Scope::Base => id == *base_id,
            Scope::Sub => key.starts_with(base_key),
            Scope::One => {
                key.starts_with(base_key) && entry.dn.rdns.len() == base_dn.rdns.len() + 1
            }
        })
}

fn add_agreement_status(core: &Core, entry: &mut Entry) {
    let norm = core.norm_dn(&entry.dn);
    let status = core
        .status
        .lock()
        .ok()
        .and_then(|m| m.get(&norm).cloned())
        .unwrap_or_default();
    for (name, values) in super::repl::status_attributes(&status) {
        entry.set(&name, values, crate::model::Csn::ZERO);
    }
}

/// Builds the returned attributes: `*` (or nothing) = user attributes, `+` =
/// operational ones, explicit names, `1.1` = none.
fn select(
    core: &Core,
    txn: &dyn StoreRead,
    entry: &Entry,
    id: u64,
    req: &SearchRequest<'_>,
    readable: &dyn Fn(&str) -> bool,
) -> SearchEntry {
    let schema = &core.schema;
    let mut all_user = req.attrs.is_empty();
    let mut all_oper = false;
    let mut explicit: Vec<String> = Vec::new();
    let mut explicit_types = Vec::new();
    for a in req.attrs {
        match a.as_str() {
            "*" => all_user = true,
            "+" => all_oper = true,
            "1.1" => {}
            name => {
                if let Some(at) = schema.attribute(filter::base_attr_name(name)) {
                    explicit.push(at.name().to_ascii_lowercase());
                    explicit_types.push(at);
                }
            }
        }
    }
    if req.attrs.len() == 1 && req.attrs[0] == "1.1" {
        all_user = false;
    }
    let mut out: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for attr in &entry.attrs {
        let at = schema.attribute(&attr.name);
        let (lname, operational) = match &at {
            Some(at) => (at.name().to_ascii_lowercase(), at.is_operational()),
            None => (attr.name.to_ascii_lowercase(), false),
        };
        // Agreement credentials are write-only over LDAP, even for the root DN.
        if !readable(&lname) || lname == "nsds5replicacredentials" {
            continue;
        }
        // Asking for a supertype (e.g. `name`) returns its subtypes (RFC 4511 §4.5.1.8).
        let wanted = if operational { all_oper } else { all_user }
            || explicit.contains(&lname)
            || (!explicit_types.is_empty()
                && at.as_ref().is_some_and(|at| {
                    at.sup.is_some()
                        && explicit_types
                            .iter()
                            .any(|sup| schema.has_subtypes(sup) && schema.is_subtype(at, sup))
                }));
        if !wanted {
            continue;
        }
        let vals = if req.types_only {
            Vec::new()
        } else {
            attr.values.iter().map(|v| v.bytes.clone()).collect()
        };
        out.push((attr.name.clone(), vals));
    }
    for &c in COMPUTED {
        if (all_oper || explicit.iter().any(|e| e == c)) && readable(c) {
            if let Some(vals) = computed_value(c, entry, id, txn) {
                let name = schema
                    .attribute(c)
                    .map(|at| at.name().to_string())
                    .unwrap_or_else(|| c.to_string());
                out.push((name, if req.types_only { Vec::new() } else { vals }));
            }
        }
    }
    SearchEntry {
        dn: entry.dn.to_string(),
        attrs: out,
    }
}
