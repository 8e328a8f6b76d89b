//! memberOf, computed when it is read (docs/groups.md).
//!
//! An entry's memberOf values are the DNs of the groups (entries of a
//! configured group class) whose member attribute names it, found through
//! that attribute's equality index. Nothing is stored: the value is right
//! after any rename or delete of a group or a member by construction, and
//! every replica derives the same value from the same replicated groups,
//! so memberOf never enters the changelog, the replication state or the
//! conflict core. A filter `(memberOf=G)` is planned as "the members of G"
//! (G's member values looked up by DN), so it is as selective as an index.

use super::tombstone::is_tombstone;
use super::{index, Core, DirResult};
use crate::model::{Dn, Entry};
use crate::schema::{AttributeType, Schema};
use crate::store::StoreRead;
use ldap3_proto::proto::LdapFilter;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The `[memberof]` settings as the directory uses them.
#[derive(Debug, Clone)]
pub struct MemberOfSettings {
    pub enabled: bool,
    /// The computed attribute (a DN-syntax type of the schema).
    pub attribute: String,
    /// (group object class, member attribute) pairs.
    pub groups: Vec<(String, String)>,
    /// Groups of groups count: an entry is also in the groups that hold
    /// a group it is in.
    pub nested: bool,
}

impl MemberOfSettings {
    pub fn from_config(c: &crate::config::MemberOfConfig) -> MemberOfSettings {
        MemberOfSettings {
            enabled: c.enabled,
            attribute: c.attribute.clone(),
            groups: c
                .groups
                .iter()
                .map(|(class, attr)| (class.clone(), attr.clone()))
                .collect(),
            nested: c.nested,
        }
    }
}

impl Default for MemberOfSettings {
    fn default() -> Self {
        MemberOfSettings::from_config(&crate::config::MemberOfConfig::default())
    }
}

/// The DN a member value names: uniqueMember's optional `#'…'B` UID is
/// not part of it (RFC 4517 §3.3.21).
pub(crate) fn member_dn(value: &[u8]) -> Option<Dn> {
    let text = std::str::from_utf8(value).ok()?;
    let text = match text.rsplit_once("#'") {
        Some((dn, uid))
            if uid
                .strip_suffix("'B")
                .is_some_and(|bits| bits.bytes().all(|b| b == b'0' || b == b'1')) =>
        {
            dn
        }
        _ => text,
    };
    Dn::parse(text).ok()
}

/// One read's view of the groups (a search, a compare): which entries are
/// groups is remembered, since the entries of one search share their groups.
pub(crate) struct MemberOf<'a> {
    core: &'a Core,
    txn: &'a dyn StoreRead,
    schema: Arc<Schema>,
    attribute: Arc<AttributeType>,
    /// (group class, member attribute) pairs the schema knows.
    pairs: Vec<(String, Arc<AttributeType>)>,
    nested: bool,
    /// (entry id, pair) -> the group's DN, None when it is not such a group.
    groups: RefCell<HashMap<(u64, usize), Option<Dn>>>,
}

fn has_class(e: &Entry, class: &str) -> bool {
    e.values("objectClass")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(class.as_bytes()))
}

impl Core {
    /// The view of the groups for one read, None when memberOf is off.
    pub(crate) fn memberof_view<'a>(&'a self, txn: &'a dyn StoreRead) -> Option<MemberOf<'a>> {
        let settings = &self.cfg.memberof;
        if !settings.enabled {
            return None;
        }
        let schema = self.schema();
        let attribute = schema.attribute(&settings.attribute)?;
        let pairs = settings
            .groups
            .iter()
            .filter_map(|(class, attr)| Some((class.clone(), schema.attribute(attr)?)))
            .collect();
        Some(MemberOf {
            core: self,
            txn,
            schema,
            attribute,
            pairs,
            nested: settings.nested,
            groups: RefCell::new(HashMap::new()),
        })
    }

    /// Whether `at` is the computed memberOf attribute (never stored).
    pub(crate) fn is_memberof_attr(&self, at: &AttributeType) -> bool {
        let settings = &self.cfg.memberof;
        settings.enabled
            && self
                .schema()
                .attribute(&settings.attribute)
                .is_some_and(|m| m.oid == at.oid)
    }
}

impl MemberOf<'_> {
    /// The lowercased primary name of the computed attribute.
    pub(crate) fn lname(&self) -> String {
        self.attribute.name().to_ascii_lowercase()
    }

    pub(crate) fn attribute(&self) -> &AttributeType {
        &self.attribute
    }

    fn is_attr(&self, desc: &str) -> bool {
        self.schema
            .attribute(crate::query::filter::base_attr_name(desc))
            .is_some_and(|at| at.oid == self.attribute.oid)
    }

    /// The DN of entry `id` when it is a live group of pair `pair`.
    fn group(&self, id: u64, pair: usize) -> DirResult<Option<Dn>> {
        if let Some(known) = self.groups.borrow().get(&(id, pair)) {
            return Ok(known.clone());
        }
        let class = self.pairs.get(pair).map(|(c, _)| c.as_str()).unwrap_or("");
        let dn = self
            .txn
            .entry(id)?
            .filter(|e| !is_tombstone(e) && has_class(e, class))
            .map(|e| e.dn);
        self.groups.borrow_mut().insert((id, pair), dn.clone());
        Ok(dn)
    }

    /// The memberOf values of the entry named `dn`: its groups' DNs (and,
    /// when nested, their groups' DNs, each once, never the entry itself).
    pub(crate) fn values(&self, dn: &Dn) -> DirResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        seen.insert(self.core.norm_dn(dn));
        let mut frontier = vec![dn.clone()];
        while let Some(d) = frontier.pop() {
            let text = d.to_string();
            for (i, (_, at)) in self.pairs.iter().enumerate() {
                let Ok(norm) = self.schema.eq_normalize(at, text.as_bytes()) else {
                    continue;
                };
                for id in self.txn.index_ids(&index::eq_key(at, &norm))? {
                    let Some(group) = self.group(id, i)? else {
                        continue;
                    };
                    if seen.insert(self.core.norm_dn(&group)) {
                        out.push(group.to_string().into_bytes());
                        if self.nested {
                            frontier.push(group);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The values of attribute `lname` (lowercased) of `entry` when it is
    /// the computed one: the hook filter evaluation takes.
    pub(crate) fn computed(&self, lname: &str, entry: &Entry) -> Option<Vec<Vec<u8>>> {
        if self.attribute.name().eq_ignore_ascii_case(lname) {
            self.values_or_none(&entry.dn)
        } else {
            None
        }
    }

    /// The values for a filter or a returned entry; a store error leaves
    /// the attribute out (and is logged) rather than failing the read.
    pub(crate) fn values_or_none(&self, dn: &Dn) -> Option<Vec<Vec<u8>>> {
        match self.values(dn) {
            Ok(v) if v.is_empty() => None,
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(%dn, "memberOf not computed: {e}");
                None
            }
        }
    }

    /// Ids of the entries whose memberOf holds `group` (its members, and
    /// with nesting the members of its member groups): the candidates of
    /// `(memberOf=group)`.
    pub(crate) fn members(&self, group: &[u8]) -> DirResult<Vec<u64>> {
        let Some(dn) = std::str::from_utf8(group)
            .ok()
            .and_then(|t| Dn::parse(t).ok())
        else {
            return Ok(Vec::new());
        };
        let mut ids: BTreeSet<u64> = BTreeSet::new();
        let mut visited: BTreeSet<u64> = BTreeSet::new();
        let mut stack: Vec<u64> = self
            .txn
            .id_by_dn(&self.core.dn_key(&dn))?
            .into_iter()
            .collect();
        while let Some(gid) = stack.pop() {
            if !visited.insert(gid) {
                continue;
            }
            let Some(entry) = self.txn.entry(gid)?.filter(|e| !is_tombstone(e)) else {
                continue;
            };
            for (class, at) in &self.pairs {
                if !has_class(&entry, class) {
                    continue;
                }
                for v in entry.values(at.name()) {
                    let Some(m) = member_dn(v) else { continue };
                    if let Some(mid) = self.txn.id_by_dn(&self.core.dn_key(&m))? {
                        ids.insert(mid);
                        if self.nested {
                            stack.push(mid);
                        }
                    }
                }
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Whether `f` has an equality term on memberOf that [`Self::plan`]
    /// can answer.
    pub(crate) fn names_attribute(&self, f: &LdapFilter) -> bool {
        match f {
            LdapFilter::And(list) | LdapFilter::Or(list) => {
                list.iter().any(|s| self.names_attribute(s))
            }
            LdapFilter::Equality(attr, _) => self.is_attr(attr),
            _ => false,
        }
    }

    /// Candidate ids for `f` (a superset of the matches, sorted) with
    /// memberOf equality terms answered by [`Self::members`] and every
    /// other term by `other` (the index planner); None: scan the scope.
    pub(crate) fn plan(
        &self,
        f: &LdapFilter,
        other: &dyn Fn(&LdapFilter) -> DirResult<Option<Vec<u64>>>,
    ) -> DirResult<Option<Vec<u64>>> {
        Ok(match f {
            LdapFilter::And(list) => {
                let mut acc: Option<BTreeSet<u64>> = None;
                for sub in list {
                    if let Some(ids) = self.plan(sub, other)? {
                        let ids: BTreeSet<u64> = ids.into_iter().collect();
                        acc = Some(match acc {
                            None => ids,
                            Some(prev) => prev.intersection(&ids).copied().collect(),
                        });
                        if acc.as_ref().is_some_and(BTreeSet::is_empty) {
                            break;
                        }
                    }
                }
                acc.map(|s| s.into_iter().collect())
            }
            LdapFilter::Or(list) => {
                let mut all: BTreeSet<u64> = BTreeSet::new();
                for sub in list {
                    match self.plan(sub, other)? {
                        Some(ids) => all.extend(ids),
                        None => return Ok(None),
                    }
                }
                Some(all.into_iter().collect())
            }
            LdapFilter::Equality(attr, value) if self.is_attr(attr) => {
                Some(self.members(value.as_bytes())?)
            }
            f => other(f)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_values_name_their_dn_with_or_without_uid() {
        let plain = member_dn(b"cn=a,dc=example,dc=com").unwrap();
        assert_eq!(plain.to_string(), "cn=a,dc=example,dc=com");
        let uid = member_dn(b"cn=a,dc=example,dc=com#'0101'B").unwrap();
        assert_eq!(uid.to_string(), "cn=a,dc=example,dc=com");
        assert!(member_dn(b"not a dn").is_none());
        assert!(member_dn(&[0xff, 0xfe]).is_none());
    }
}
