//! The attributes a search returns: the request's attribute list resolved
//! once per search, computed operational attributes, and entries handed out
//! borrowing the stored values.

use super::filter;
use super::search::{SearchEntry, SearchRequest};
use super::Core;
use crate::model::{Entry, Value};
use crate::schema::{AttributeType, Schema};
use crate::store::StoreRead;
use std::borrow::Cow;
use std::sync::Arc;

/// The values of one returned attribute: borrowed from the stored entry
/// (no copy per value), or computed for this search.
#[derive(Debug)]
pub enum SelectedValues<'a> {
    Stored(&'a [Value]),
    Computed(Vec<Vec<u8>>),
}

impl SelectedValues<'_> {
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let (stored, computed): (&[Value], &[Vec<u8>]) = match self {
            SelectedValues::Stored(v) => (v, &[]),
            SelectedValues::Computed(c) => (&[], c),
        };
        stored
            .iter()
            .map(|v| v.bytes.as_slice())
            .chain(computed.iter().map(Vec::as_slice))
    }
}

/// A returned entry borrowing from the entry read for it, so the response
/// can be encoded without cloning every value first.
#[derive(Debug)]
pub struct SelectedEntry<'a> {
    pub dn: String,
    pub attrs: Vec<(Cow<'a, str>, SelectedValues<'a>)>,
}

impl SelectedEntry<'_> {
    pub fn to_owned_entry(&self) -> SearchEntry {
        SearchEntry {
            dn: self.dn.clone(),
            attrs: self
                .attrs
                .iter()
                .map(|(name, values)| {
                    (
                        name.to_string(),
                        values.iter().map(<[u8]>::to_vec).collect(),
                    )
                })
                .collect(),
        }
    }
}

/// Computed operational attributes (not stored).
const COMPUTED: &[&str] = &[
    "entrydn",
    "hassubordinates",
    "numsubordinates",
    "subschemasubentry",
];

pub(super) fn computed_value(
    name: &str,
    entry: &Entry,
    id: u64,
    txn: &dyn StoreRead,
) -> Option<Vec<Vec<u8>>> {
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

/// The requested attributes (`*` or nothing = user attributes, `+` =
/// operational ones, explicit names, `1.1` = none), resolved once per
/// search.
pub(super) struct Selection {
    all_user: bool,
    all_oper: bool,
    explicit: Vec<String>,
    explicit_types: Vec<Arc<AttributeType>>,
}

impl Selection {
    pub(super) fn new(schema: &Schema, attrs: &[String]) -> Selection {
        let mut all_user = attrs.is_empty();
        let mut all_oper = false;
        let mut explicit: Vec<String> = Vec::new();
        let mut explicit_types = Vec::new();
        for a in attrs {
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
        if matches!(attrs, [only] if only == "1.1") {
            all_user = false;
        }
        Selection {
            all_user,
            all_oper,
            explicit,
            explicit_types,
        }
    }

    /// Whether a stored attribute of type `at` (`lname`: its lowercased
    /// primary name) was asked for, before access control.
    fn wants(&self, schema: &Schema, at: &AttributeType, lname: &str) -> bool {
        (if at.is_operational() {
            self.all_oper
        } else {
            self.all_user
        }) || self.explicit.iter().any(|e| e == lname)
            // Asking for a supertype (e.g. `name`) returns its subtypes
            // (RFC 4511 §4.5.1.8).
            || (at.sup.is_some()
                && self
                    .explicit_types
                    .iter()
                    .any(|sup| schema.has_subtypes(sup) && schema.is_subtype(at, sup)))
    }

    /// Whether the stored attribute `name` is returned, given what the
    /// requester may read. Looked up for every attribute of every entry:
    /// the schema's map gives the type and its lowercased name without an
    /// allocation.
    fn returns(&self, schema: &Schema, name: &str, readable: &dyn Fn(&str) -> bool) -> bool {
        let (lname, wanted) = match schema.attribute_lname(name) {
            Some((at, lname)) => (Cow::Borrowed(lname), self.wants(schema, at, lname)),
            None => {
                let lname = name.to_ascii_lowercase();
                let wanted = self.all_user || self.explicit.contains(&lname);
                (Cow::Owned(lname), wanted)
            }
        };
        // Agreement credentials are write-only over LDAP, even for the root DN.
        wanted && lname != "nsds5replicacredentials" && readable(&lname)
    }
}

/// contextCSN of a suffix entry: the newest CSN of each replica ID in
/// the suffix's RUV, in OpenLDAP's form (IDs above 4095 have none).
fn context_csn(core: &Core, txn: &dyn StoreRead, entry: &Entry) -> Option<Vec<Vec<u8>>> {
    let key = core.dn_key(&entry.dn);
    if !core.suffix_keys.contains(&key) || core.replicated_suffix_of(&key).is_none() {
        return None;
    }
    let ruv = core.load_ruv(txn, &key).ok()?;
    let vals: Vec<Vec<u8>> = ruv
        .replicas
        .values()
        .filter_map(|e| crate::repl::core::sync_cookie::format_csn(e.max).ok())
        .map(String::into_bytes)
        .collect();
    (!vals.is_empty()).then_some(vals)
}

/// Builds the returned attributes of one entry.
#[allow(clippy::too_many_arguments)]
pub(super) fn select<'e>(
    core: &Core,
    txn: &dyn StoreRead,
    entry: &'e Entry,
    id: u64,
    req: &SearchRequest<'_>,
    selection: &Selection,
    readable: &dyn Fn(&str) -> bool,
    memberof: Option<&super::memberof::MemberOf<'_>>,
) -> SelectedEntry<'e> {
    let schema = &core.schema();
    let mut out: Vec<(Cow<'e, str>, SelectedValues<'e>)> = Vec::with_capacity(entry.attrs.len());
    for attr in &entry.attrs {
        if !selection.returns(schema, &attr.name, readable) {
            continue;
        }
        let vals = if req.types_only {
            SelectedValues::Stored(&[])
        } else {
            SelectedValues::Stored(&attr.values)
        };
        out.push((Cow::Borrowed(attr.name.as_str()), vals));
    }
    for &c in COMPUTED {
        if (selection.all_oper || selection.explicit.iter().any(|e| e == c)) && readable(c) {
            if let Some(vals) = computed_value(c, entry, id, txn) {
                let name = schema
                    .attribute(c)
                    .map(|at| at.name().to_string())
                    .unwrap_or_else(|| c.to_string());
                let vals = if req.types_only { Vec::new() } else { vals };
                out.push((Cow::Owned(name), SelectedValues::Computed(vals)));
            }
        }
    }
    if (selection.all_oper || selection.explicit.iter().any(|e| e == "contextcsn"))
        && readable("contextcsn")
    {
        if let Some(vals) = context_csn(core, txn, entry) {
            let vals = if req.types_only { Vec::new() } else { vals };
            out.push((Cow::Borrowed("contextCSN"), SelectedValues::Computed(vals)));
        }
    }
    if let Some(m) = memberof {
        let lname = m.lname();
        let wanted = selection.explicit.contains(&lname)
            || (selection.all_oper && m.attribute().is_operational())
            || (selection.all_user && !m.attribute().is_operational());
        if wanted && readable(&lname) {
            if let Some(vals) = m.values_or_none(&entry.dn) {
                let vals = if req.types_only { Vec::new() } else { vals };
                out.push((
                    Cow::Owned(m.attribute().name().to_string()),
                    SelectedValues::Computed(vals),
                ));
            }
        }
    }
    SelectedEntry {
        dn: entry.dn.to_string(),
        attrs: out,
    }
}
