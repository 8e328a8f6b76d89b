//! Evaluation: which rights an identity has on an entry and its attributes.
//!
//! A [`Checker`] lives for one operation (one search, one write). It reads
//! the `aci` values of the target's ancestors through the operation's own
//! transaction, parses each ancestor's ACIs once, and memoises group
//! membership, so a search over many entries below the same containers pays
//! for the ACIs and the groups once.

use super::is_secret;
use super::parse::{parse_aci, Aci, BindRule, Resolver, Rights, TargetAttr, UserRef};
use crate::model::Identity;
use crate::model::{Dn, Entry, Rdn};
use crate::query::filter::{EvalContext, Tri};
use crate::store::{DnKey, Result as StoreResult, StoreRead};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// The ACIs that apply below an entry: one slice per ancestor holding any.
type Chain = Rc<Vec<Rc<[Aci]>>>;

pub struct Checker<'a> {
    res: Resolver<'a>,
    txn: &'a dyn StoreRead,
    who_key: Option<Vec<u8>>,
    who_depth: usize,
    root: bool,
    replication: bool,
    chains: RefCell<HashMap<Vec<Rdn>, Chain>>,
    groups: RefCell<HashMap<Vec<u8>, bool>>,
}

/// One permission that applies to the entry and the requester.
#[derive(Debug, Clone)]
struct Grant {
    allow: bool,
    rights: Rights,
    attrs: Option<Arc<TargetAttr>>,
}

/// The requester's rights on one entry.
#[derive(Debug, Clone, Default)]
pub struct EntryAccess {
    root: bool,
    replication: bool,
    /// The requester is the entry itself (set by the write path).
    pub(crate) own: bool,
    grants: Vec<Grant>,
}

const READ_LIKE: Rights = Rights(Rights::READ.0 | Rights::SEARCH.0 | Rights::COMPARE.0);

impl EntryAccess {
    /// Nothing allowed (the state before any entry was looked at).
    pub fn none() -> EntryAccess {
        EntryAccess::default()
    }

    /// Whether `right` (read, search, compare, write) is granted on the
    /// attribute `attr` (its primary name, any case).
    pub fn allows(&self, right: Rights, attr: &str) -> bool {
        if self.root {
            return true;
        }
        if right.contains_any(READ_LIKE) {
            if is_secret(attr) {
                return self.replication;
            }
            if self.replication {
                return true;
            }
            if attr.eq_ignore_ascii_case("aci") {
                return self.decide(Rights::WRITE, attr) == Some(true);
            }
        }
        match self.decide(right, attr) {
            Some(decision) => decision,
            None => right == Rights::WRITE && self.own && attr.eq_ignore_ascii_case("userPassword"),
        }
    }

    /// Whether `selfwrite` (adding or removing one's own DN) is granted on `attr`.
    pub fn allows_selfwrite(&self, attr: &str) -> bool {
        self.root || self.decide(Rights::WRITE | Rights::SELFWRITE, attr) == Some(true)
    }

    /// Whether an entry-level right (add, delete) is granted. Only ACIs that
    /// speak about whole entries count: no targetattr, `*`, or a negation.
    pub fn allows_entry(&self, right: Rights) -> bool {
        if self.root {
            return true;
        }
        let mut allowed = false;
        for g in &self.grants {
            if !g.rights.contains_any(right) {
                continue;
            }
            if g.attrs.as_ref().is_some_and(|a| !a.covers_entry()) {
                continue;
            }
            if !g.allow {
                return false;
            }
            allowed = true;
        }
        allowed
    }

    /// Whether the entry is visible at all: some attribute it holds is readable.
    pub fn may_see(&self, entry: &Entry) -> bool {
        self.root
            || entry
                .attrs
                .iter()
                .any(|a| !a.values.is_empty() && self.allows(Rights::READ, &a.name))
    }

    /// Deny wins over allow; None when no permission speaks about it.
    fn decide(&self, mask: Rights, attr: &str) -> Option<bool> {
        let mut decision = None;
        for g in &self.grants {
            if !g.rights.contains_any(mask) {
                continue;
            }
            let Some(attrs) = &g.attrs else {
                continue;
            };
            if !attrs.covers(attr) {
                continue;
            }
            if !g.allow {
                return Some(false);
            }
            decision = Some(true);
        }
        decision
    }
}

/// The entry being checked, with its DN key computed only when needed.
struct Target<'e, 'r> {
    entry: &'e Entry,
    key: OnceCell<Vec<u8>>,
    res: &'r Resolver<'r>,
}

impl Target<'_, '_> {
    fn key(&self) -> &[u8] {
        self.key.get_or_init(|| (self.res.dn_key)(&self.entry.dn))
    }
}

impl<'a> Checker<'a> {
    /// `replication`: whether `who` is one of the replication identities.
    pub fn new(
        res: Resolver<'a>,
        txn: &'a dyn StoreRead,
        who: &Identity,
        replication: bool,
    ) -> Checker<'a> {
        Checker {
            res,
            txn,
            who_depth: who.dn.as_ref().map_or(0, |d| d.rdns.len()),
            who_key: who.dn.as_ref().map(|d| (res.dn_key)(d)),
            root: who.root,
            replication: replication && !who.root && who.dn.is_some(),
            chains: RefCell::new(HashMap::new()),
            groups: RefCell::new(HashMap::new()),
        }
    }

    /// Root or the replication identity: every attribute is readable and
    /// searchable, secrets included.
    pub fn reads_everything(&self) -> bool {
        self.root || self.replication
    }

    pub fn is_root(&self) -> bool {
        self.root
    }

    pub fn who_key(&self) -> Option<&[u8]> {
        self.who_key.as_deref()
    }

    pub fn resolver(&self) -> &Resolver<'a> {
        &self.res
    }

    /// The requester's rights on a stored entry (its own ACIs included).
    pub fn access(&self, entry: &Entry) -> StoreResult<EntryAccess> {
        self.access_at(entry, true)
    }

    /// Rights on `entry` at its DN. `own_acis = false` ignores the `aci`
    /// values the entry itself carries (an entry being added or moved must
    /// not authorise itself).
    pub fn access_at(&self, entry: &Entry, own_acis: bool) -> StoreResult<EntryAccess> {
        if self.root {
            return Ok(EntryAccess {
                root: true,
                ..EntryAccess::default()
            });
        }
        let parents = self.chain(entry.dn.rdns.get(1..).unwrap_or_default())?;
        let own: Option<Rc<[Aci]>> = if own_acis && entry.has("aci") {
            Some(self.entry_acis(entry))
        } else {
            None
        };
        let target = Target {
            entry,
            key: OnceCell::new(),
            res: &self.res,
        };
        let mut grants = Vec::new();
        let levels = parents.iter().chain(own.iter());
        for aci in levels.flat_map(|level| level.iter()) {
            if !self.targets(aci, &target) {
                continue;
            }
            for p in &aci.permissions {
                if p.rights == Rights::PROXY {
                    continue;
                }
                if self.subject(&p.subject, &target)? {
                    grants.push(Grant {
                        allow: p.allow,
                        rights: p.rights,
                        attrs: aci.targetattr.clone(),
                    });
                }
            }
        }
        Ok(EntryAccess {
            root: false,
            replication: self.replication,
            own: false,
            grants,
        })
    }

    /// Whether the requester is `entry` itself.
    pub fn is_self(&self, entry: &Entry) -> bool {
        match &self.who_key {
            Some(k) => entry.dn.rdns.len() == self.who_depth && (self.res.dn_key)(&entry.dn) == *k,
            None => false,
        }
    }

    /// Reads an entry by DN through the operation's transaction.
    pub fn load(&self, dn: &Dn) -> StoreResult<Option<Entry>> {
        match self
            .txn
            .id_by_dn(&DnKey::from_bytes((self.res.dn_key)(dn)))?
        {
            Some(id) => self.txn.entry(id),
            None => Ok(None),
        }
    }

    /// ACIs held by the entry named by `rdns` and its ancestors.
    ///
    /// Iterative, from the top of the tree down: a request's DN can be far
    /// deeper than any stored entry, and recursion over its depth would
    /// overflow the thread's stack. Each ancestor's DN key extends the one
    /// above it by one RDN (the resolver's keys list RDN parts from the
    /// root down, as the store's do), so the walk costs one normalisation
    /// per RDN. Only ancestors that exist are cached: a missing one holds
    /// no ACIs, and caching every level of a deep DN would cost memory
    /// quadratic in its depth.
    fn chain(&self, rdns: &[Rdn]) -> StoreResult<Chain> {
        if rdns.is_empty() {
            return Ok(Rc::new(Vec::new()));
        }
        if let Some(c) = self.chains.borrow().get(rdns) {
            return Ok(c.clone());
        }
        let mut chain: Chain = Rc::new(Vec::new());
        let mut key = DnKey::root();
        for (depth, rdn) in rdns.iter().enumerate().rev() {
            let one = Dn {
                rdns: vec![rdn.clone()],
            };
            key.push_key_part(&(self.res.dn_key)(&one));
            let Some(id) = self.txn.id_by_dn(&key)? else {
                continue;
            };
            let level = rdns.get(depth..).unwrap_or_default();
            if let Some(c) = self.chains.borrow().get(level) {
                chain = c.clone();
                continue;
            }
            let acis = match self.txn.entry(id)? {
                Some(e) if e.has("aci") => Some(self.entry_acis(&e)),
                _ => None,
            };
            if let Some(acis) = acis.filter(|a| !a.is_empty()) {
                let mut levels = (*chain).clone();
                levels.push(acis);
                chain = Rc::new(levels);
            }
            self.chains
                .borrow_mut()
                .insert(level.to_vec(), chain.clone());
        }
        self.chains
            .borrow_mut()
            .insert(rdns.to_vec(), chain.clone());
        Ok(chain)
    }

    /// Parses the entry's `aci` values. A stored value that does not parse
    /// (it can only arrive by replication from a peer with other rules) is
    /// skipped and logged.
    fn entry_acis(&self, entry: &Entry) -> Rc<[Aci]> {
        let mut out = Vec::new();
        for v in entry.values("aci") {
            let parsed = std::str::from_utf8(v)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|t| parse_aci(t, &self.res).map_err(|e| e.to_string()));
            match parsed {
                Ok(aci) => out.push(aci),
                Err(e) => {
                    tracing::warn!(dn = %entry.dn, error = %e, "ignoring an invalid aci value")
                }
            }
        }
        out.into()
    }

    fn targets(&self, aci: &Aci, target: &Target<'_, '_>) -> bool {
        if let Some(t) = &aci.target {
            let inside = target.key().starts_with(&t.key);
            if inside == t.negate {
                return false;
            }
        }
        if let Some(f) = &aci.targetfilter {
            let no_hidden = |_: &crate::schema::AttributeType| false;
            let no_computed = |_: &str, _: &Entry| None;
            let ctx = EvalContext {
                schema: self.res.schema,
                hidden: &no_hidden,
                computed: self.res.computed.unwrap_or(&no_computed),
            };
            let matches = ctx.eval(&f.filter, target.entry) == Tri::True;
            if matches == f.negate {
                return false;
            }
        }
        true
    }

    fn subject(&self, rule: &BindRule, target: &Target<'_, '_>) -> StoreResult<bool> {
        Ok(match rule {
            BindRule::And(a, b) => self.subject(a, target)? && self.subject(b, target)?,
            BindRule::Or(a, b) => self.subject(a, target)? || self.subject(b, target)?,
            BindRule::Not(a) => !self.subject(a, target)?,
            BindRule::User { negate, refs } => {
                refs.iter().any(|r| self.user_matches(r, target)) != *negate
            }
            BindRule::Group { negate, groups } => {
                let mut member = false;
                for g in groups {
                    if self.member_of(g)? {
                        member = true;
                        break;
                    }
                }
                member != *negate
            }
        })
    }

    fn user_matches(&self, r: &UserRef, target: &Target<'_, '_>) -> bool {
        match r {
            UserRef::Anyone => true,
            UserRef::All => self.who_key.is_some(),
            UserRef::Replication => self.replication,
            UserRef::Dn(k) => self.who_key.as_ref() == Some(k),
            UserRef::SelfDn => match &self.who_key {
                Some(k) => {
                    target.entry.dn.rdns.len() == self.who_depth && target.key() == k.as_slice()
                }
                None => false,
            },
        }
    }

    /// Whether the requester is listed in the group's member or uniqueMember.
    fn member_of(&self, group_key: &[u8]) -> StoreResult<bool> {
        let Some(who) = &self.who_key else {
            return Ok(false);
        };
        if let Some(&known) = self.groups.borrow().get(group_key) {
            return Ok(known);
        }
        let group = match self.txn.id_by_dn(&DnKey::from_bytes(group_key.to_vec()))? {
            Some(id) => self.txn.entry(id)?,
            None => None,
        };
        let found = group.is_some_and(|g| {
            ["member", "uniqueMember"].iter().any(|attr| {
                g.values(attr)
                    .into_iter()
                    .any(|v| member_dn(v).is_some_and(|dn| (self.res.dn_key)(&dn) == *who))
            })
        });
        self.groups.borrow_mut().insert(group_key.to_vec(), found);
        Ok(found)
    }
}

/// A member value as a DN; a uniqueMember's optional `#'0101'B` UID is dropped.
fn member_dn(v: &[u8]) -> Option<Dn> {
    let s = std::str::from_utf8(v).ok()?;
    let s = match s.rfind("#'") {
        Some(i) if s.ends_with("'B") => s.get(..i)?,
        _ => s,
    };
    Dn::parse(s).ok()
}
