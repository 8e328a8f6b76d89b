//! Replication state of one entry: everything needed to merge a late change
//! correctly, kept as pure data with a canonical byte encoding (two
//! replicas holding the same state encode it to the same bytes).
//!
//! The state has two parts. The *merged* part only ever grows by
//! order-independent merges (minimum, maximum, last-writer-wins registers),
//! so it is the same on every replica that has received the same changes,
//! in whatever order. The *derived* part ([`Derived`]) is a function of the
//! merged state of this entry and of its neighbours (children, siblings
//! claiming the same name); the resolver keeps it up to date.

use super::normalise::Normaliser;
use crate::model::{Attribute, Ava, Csn, Dn, Entry, Rdn, Value};
use std::collections::BTreeMap;

/// entryUUID of an entry.
pub type Uuid = [u8; 16];

/// The state of one value. Values are keyed by their normalised form (the
/// attribute's equality rule), `bytes` is the spelling of the latest add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueState {
    pub bytes: Vec<u8>,
    /// The latest add (or replace) asserting this value: the CSN that
    /// decides last-writer-wins. `Csn::ZERO` when only deletes were seen,
    /// or when every add was older than the attribute's latest
    /// whole-attribute delete (see [`AttrState::canonicalise`]).
    pub updated: Csn,
    /// The latest delete naming this value, kept until purged so an older
    /// add arriving late cannot resurrect it.
    pub deleted: Option<Csn>,
    /// Whether the value is in the entry's current RDN.
    pub distinguished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttrState {
    /// The latest whole-attribute delete or replace.
    pub deleted: Option<Csn>,
    /// By normalised value.
    pub values: BTreeMap<Vec<u8>, ValueState>,
}

/// What an entry is, derived from its state and its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryStatus {
    /// Added and not deleted, holding its plain DN.
    Live,
    /// Added and not deleted, but another entry holds its DN: it is named
    /// `nsuniqueid=<uuid>+<rdn>` and carries nsds5ReplConflict.
    Conflict,
    /// Deleted (or never received) but still holding entries below it.
    Glue,
    /// Deleted, out of the tree.
    Tombstone,
    /// Referenced by a change (as its target or a parent) whose add has not
    /// been received; not an entry yet.
    Phantom,
}

impl EntryStatus {
    fn code(self) -> u8 {
        match self {
            EntryStatus::Live => 0,
            EntryStatus::Conflict => 1,
            EntryStatus::Glue => 2,
            EntryStatus::Tombstone => 3,
            EntryStatus::Phantom => 4,
        }
    }

    fn from_code(c: u8) -> Option<EntryStatus> {
        Some(match c {
            0 => EntryStatus::Live,
            1 => EntryStatus::Conflict,
            2 => EntryStatus::Glue,
            3 => EntryStatus::Tombstone,
            4 => EntryStatus::Phantom,
            _ => return None,
        })
    }
}

/// State derived from the merged state of the entry and its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub status: EntryStatus,
    /// Live: the add; Conflict: when it took the contested name; Glue and
    /// Tombstone: the delete; Phantom: zero.
    pub status_csn: Csn,
    /// The parent in the tree: the parent register, except for the entry
    /// that breaks a cycle of concurrent moves, which sits under the suffix.
    pub parent: Option<Uuid>,
    /// Live, conflict or glue: the entry has a DN.
    pub in_tree: bool,
    /// Named `nsuniqueid=<uuid>+<rdn>` because another entry holds its name.
    pub conflict: bool,
    /// This entry's move closed a cycle; it was put under the suffix.
    pub cycle_breaker: bool,
}

impl Default for Derived {
    fn default() -> Self {
        Derived {
            status: EntryStatus::Phantom,
            status_csn: Csn::ZERO,
            parent: None,
            in_tree: false,
            conflict: false,
            cycle_breaker: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    pub uuid: Uuid,
    /// The add's CSN; `None` until the add is received.
    pub added: Option<Csn>,
    /// The (earliest) delete's CSN. Delete wins: nothing revives the entry.
    pub deleted: Option<Csn>,
    /// Parent register: the parent's entryUUID (`None` for the suffix
    /// entry) and the CSN of the add or move that set it.
    pub parent: Option<Uuid>,
    pub parent_csn: Csn,
    /// RDN register: the RDN and the CSN of the add or rename that set it.
    pub rdn: Rdn,
    pub rdn_csn: Csn,
    /// By canonical attribute name.
    pub attrs: BTreeMap<String, AttrState>,
    pub derived: Derived,
}

impl EntryState {
    /// The state of an entry known only by reference.
    pub fn phantom(uuid: Uuid) -> EntryState {
        EntryState {
            uuid,
            added: None,
            deleted: None,
            parent: None,
            parent_csn: Csn::ZERO,
            rdn: Rdn { avas: Vec::new() },
            rdn_csn: Csn::ZERO,
            attrs: BTreeMap::new(),
            derived: Derived::default(),
        }
    }

    /// Added and not deleted.
    pub fn exists(&self) -> bool {
        self.added.is_some() && self.deleted.is_none()
    }

    /// The CSN of the last rename or move, if any came after the add.
    pub fn last_rename(&self) -> Option<Csn> {
        let latest = self.rdn_csn.max(self.parent_csn);
        match self.added {
            Some(a) if latest > a => Some(latest),
            _ => None,
        }
    }

    /// When the entry took its current name: decides who keeps a
    /// contested DN (the earliest).
    pub fn name_csn(&self) -> Csn {
        self.rdn_csn.max(self.parent_csn)
    }

    /// The RDN the entry is shown under: its own, or the conflict form.
    pub fn visible_rdn(&self) -> Rdn {
        if self.derived.conflict {
            conflict_rdn(&self.uuid, &self.rdn)
        } else {
            self.rdn.clone()
        }
    }

    /// [`AttrState::purge_deleted`] over every attribute.
    pub fn purge_deleted(&mut self, cutoff: Csn) -> bool {
        let mut any = false;
        for a in self.attrs.values_mut() {
            any |= a.purge_deleted(cutoff);
        }
        any
    }

    /// The visible values per attribute (canonical name, values in key order).
    pub fn visible_attrs<N: Normaliser + ?Sized>(
        &self,
        norm: &N,
    ) -> Vec<(String, Vec<&ValueState>)> {
        self.attrs
            .iter()
            .map(|(name, a)| (name.clone(), a.visible(norm.single_valued(name))))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// The entry as the directory shows it under `parent_dn`, with the
    /// conflict and glue markers 389-ds puts on such entries; `None` when
    /// the entry is not in the tree.
    pub fn to_entry<N: Normaliser + ?Sized>(&self, parent_dn: &Dn, norm: &N) -> Option<Entry> {
        if !self.derived.in_tree {
            return None;
        }
        let plain_dn = parent_dn.child(self.rdn.clone());
        let mut entry = Entry::new(parent_dn.child(self.visible_rdn()));
        for (name, values) in self.visible_attrs(norm) {
            entry.attrs.push(Attribute {
                name,
                values: values
                    .into_iter()
                    .map(|v| Value {
                        bytes: v.bytes.clone(),
                        csn: v.updated,
                    })
                    .collect(),
            });
        }
        let marker = |e: &mut Entry, class: &[&str], reason: String, csn: Csn| {
            let oc = norm.attr_key("objectClass");
            for c in class {
                add_virtual(e, &oc, c.as_bytes(), csn);
            }
            add_virtual(e, &norm.attr_key(CONFLICT_ATTR), reason.as_bytes(), csn);
        };
        let csn = self.derived.status_csn;
        if self.derived.status == EntryStatus::Glue {
            let why = if self.added.is_some() {
                "deletedEntryHasChildren"
            } else {
                "missingEntry"
            };
            marker(
                &mut entry,
                &["glue", "extensibleObject"],
                format!("{why} {plain_dn}"),
                csn,
            );
        } else if self.derived.conflict {
            marker(
                &mut entry,
                &["ldapSubEntry"],
                format!("namingConflict {plain_dn}"),
                csn,
            );
            // The RDN's first value must be in the entry, or the entry
            // could not be modified or renamed.
            add_virtual(
                &mut entry,
                &norm.attr_key("nsUniqueId"),
                nsuniqueid(&self.uuid).as_bytes(),
                csn,
            );
        }
        Some(entry)
    }

    /// The canonical bytes of the state. Values take one flag byte and
    /// their bytes in the common case: the normalised key is left out when
    /// it equals the value or its ASCII lower case, the value's CSN when it
    /// is the entry's own add (an imported or freshly added entry is little
    /// more than its values). Version 2 gave each value a first-add CSN
    /// beside its update CSN; values have no first add any more, so the
    /// update CSN is written in that slot and flagged as equal to it, which
    /// earlier versions still read.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![STATE_VERSION];
        out.extend_from_slice(&self.uuid);
        put_opt_csn(&mut out, self.added);
        put_opt_csn(&mut out, self.deleted);
        put_opt_uuid(&mut out, self.parent);
        out.extend_from_slice(&self.parent_csn.to_bytes());
        put_rdn(&mut out, &self.rdn);
        out.extend_from_slice(&self.rdn_csn.to_bytes());
        let base = self.added.unwrap_or(Csn::ZERO);
        put_len(&mut out, self.attrs.len());
        for (name, a) in &self.attrs {
            put_bytes(&mut out, name.as_bytes());
            put_opt_csn(&mut out, a.deleted);
            put_len(&mut out, a.values.len());
            for (key, v) in &a.values {
                let key_form = if *key == v.bytes {
                    VALUE_KEY_IS_BYTES
                } else if key.len() == v.bytes.len()
                    && key
                        .iter()
                        .zip(&v.bytes)
                        .all(|(k, b)| *k == b.to_ascii_lowercase())
                {
                    VALUE_KEY_IS_LOWERCASE_BYTES
                } else {
                    0
                };
                let flag = |set: bool, bit: u8| if set { bit } else { 0 };
                let flags = key_form
                    | flag(v.updated == base, VALUE_ADDED_WITH_ENTRY)
                    | VALUE_UPDATED_AT_ADD
                    | flag(v.deleted.is_some(), VALUE_DELETED)
                    | flag(v.distinguished, VALUE_DISTINGUISHED);
                out.push(flags);
                if key_form == 0 {
                    put_bytes(&mut out, key);
                }
                put_bytes(&mut out, &v.bytes);
                if flags & VALUE_ADDED_WITH_ENTRY == 0 {
                    out.extend_from_slice(&v.updated.to_bytes());
                }
                if let Some(d) = v.deleted {
                    out.extend_from_slice(&d.to_bytes());
                }
            }
        }
        let d = &self.derived;
        out.push(d.status.code());
        out.extend_from_slice(&d.status_csn.to_bytes());
        put_opt_uuid(&mut out, d.parent);
        out.push(u8::from(d.in_tree) | u8::from(d.conflict) << 1 | u8::from(d.cycle_breaker) << 2);
        out
    }

    /// Reads a state in the current encoding or the first one (fixed
    /// four-byte lengths, every value with its key and three CSNs), which
    /// data directories and suppliers of earlier versions hold.
    pub fn decode(b: &[u8]) -> Result<EntryState, StateError> {
        let version = b.first().copied().ok_or(StateError("truncated"))?;
        let compact = match version {
            STATE_VERSION => true,
            STATE_VERSION_FIXED_LENGTHS => false,
            _ => return Err(StateError("unknown state version")),
        };
        let mut c = Reader { b, pos: 1, compact };
        let uuid = c.uuid()?;
        let added = c.opt_csn()?;
        let deleted = c.opt_csn()?;
        let parent = c.opt_uuid()?;
        let parent_csn = c.csn()?;
        let rdn = c.rdn()?;
        let rdn_csn = c.csn()?;
        let base = added.unwrap_or(Csn::ZERO);
        // Written in key order: collected maps are built in bulk, cheaper
        // than one insert at a time (this runs for every replicated change).
        let n = c.len()?;
        let mut attrs = Vec::with_capacity(n.min(256));
        for _ in 0..n {
            let name = c.text()?;
            let deleted = c.opt_csn()?;
            let n = c.len()?;
            let mut values = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                values.push(if compact {
                    c.compact_value(base)?
                } else {
                    c.fixed_value()?
                });
            }
            let values: BTreeMap<_, _> = values.into_iter().collect();
            attrs.push((name, AttrState { deleted, values }));
        }
        let attrs: BTreeMap<_, _> = attrs.into_iter().collect();
        let status = EntryStatus::from_code(c.byte()?).ok_or(StateError("bad status"))?;
        let status_csn = c.csn()?;
        let dparent = c.opt_uuid()?;
        let flags = c.byte()?;
        if c.pos != b.len() {
            return Err(StateError("trailing bytes"));
        }
        Ok(EntryState {
            uuid,
            added,
            deleted,
            parent,
            parent_csn,
            rdn,
            rdn_csn,
            attrs,
            derived: Derived {
                status,
                status_csn,
                parent: dparent,
                in_tree: flags & 1 != 0,
                conflict: flags & 2 != 0,
                cycle_breaker: flags & 4 != 0,
            },
        })
    }
}

impl AttrState {
    /// Forgets the values that are absent because of a delete older than
    /// `cutoff` (the purge delay has passed: no change that old can still
    /// arrive). Values of the RDN stay. What the entry shows is unchanged.
    /// Returns whether anything was forgotten.
    pub fn purge_deleted(&mut self, cutoff: Csn) -> bool {
        let attr_del = self.deleted.unwrap_or(Csn::ZERO);
        let before = self.values.len();
        self.values.retain(|_, v| {
            let removed_at = v.deleted.unwrap_or(Csn::ZERO).max(attr_del);
            let absent = v.updated <= v.deleted.unwrap_or(Csn::ZERO) || v.updated < attr_del;
            v.distinguished || !absent || removed_at >= cutoff
        });
        self.values.len() != before
    }

    /// Reduces the value records to what can still decide the attribute.
    /// A whole-attribute delete or replace at `A` overrides every add older
    /// than `A` and every value delete older than `A`: a value whose latest
    /// add is older stays absent until an add newer than `A` arrives, and
    /// that add sets everything its record holds. So such a record keeps
    /// only a delete newer than `A` (its spelling becomes its key), and
    /// goes when it has none, unless the value is in the RDN (it keeps the
    /// RDN's spelling, `rdn_spelling` of its key). Applied after every
    /// merge, this keeps a state the same whatever order its changes came
    /// in, and bounded: without it a value replaced at each modify
    /// (modifyTimestamp, entryCSN, a last-login time) left a record per
    /// modify until the purge delay (a week), and every later change to
    /// the entry decoded them all.
    pub fn canonicalise(&mut self, rdn_spelling: impl Fn(&[u8]) -> Option<Vec<u8>>) {
        let Some(attr_del) = self.deleted else {
            return;
        };
        self.values.retain(|key, v| {
            if v.deleted.is_some_and(|d| d < attr_del) {
                v.deleted = None;
            }
            if v.updated >= attr_del {
                return true;
            }
            v.updated = Csn::ZERO;
            if v.distinguished {
                if let Some(spelling) = rdn_spelling(key) {
                    v.bytes = spelling;
                }
                true
            } else if v.deleted.is_some() {
                if v.bytes != *key {
                    v.bytes = key.clone();
                }
                true
            } else {
                false
            }
        });
    }

    /// Last-writer-wins per value: a value is present when its latest add
    /// is newer than its latest delete and not older than the latest
    /// whole-attribute delete/replace (a replace asserts its own values at
    /// its own CSN, hence "not older"). A multi-valued attribute also keeps
    /// the values of the current RDN (389-ds keeps distinguished values);
    /// a single-valued one keeps only its latest value, falling back to the
    /// RDN's value when no value survives.
    pub fn visible(&self, single_valued: bool) -> Vec<&ValueState> {
        let attr_del = self.deleted.unwrap_or(Csn::ZERO);
        let lww = |v: &&ValueState| {
            v.updated > v.deleted.unwrap_or(Csn::ZERO)
                && v.updated >= attr_del
                && v.updated > Csn::ZERO
        };
        if single_valued {
            let present = latest(self.values.values().filter(lww));
            let kept = present.or_else(|| latest(self.values.values().filter(|v| v.distinguished)));
            kept.into_iter().collect()
        } else {
            self.values
                .values()
                .filter(|v| lww(v) || v.distinguished)
                .collect()
        }
    }
}

fn latest<'a>(it: impl Iterator<Item = &'a ValueState>) -> Option<&'a ValueState> {
    it.max_by(|a, b| {
        a.updated
            .cmp(&b.updated)
            .then_with(|| a.bytes.cmp(&b.bytes))
    })
}

pub const CONFLICT_ATTR: &str = "nsds5ReplConflict";

/// `nsuniqueid=<id>+<rdn>`, with the id in 389-ds's nsUniqueId form.
pub fn conflict_rdn(uuid: &Uuid, rdn: &Rdn) -> Rdn {
    let mut avas = vec![Ava::new("nsuniqueid", nsuniqueid(uuid))];
    avas.extend(rdn.avas.iter().cloned());
    Rdn { avas }
}

/// 389-ds writes unique ids as four groups of eight hex digits.
pub fn nsuniqueid(uuid: &Uuid) -> String {
    let hex: Vec<String> = uuid
        .chunks(4)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    hex.join("-")
}

fn add_virtual(e: &mut Entry, attr: &str, value: &[u8], csn: Csn) {
    match e.get_mut(attr) {
        Some(a) => {
            if !a.values.iter().any(|v| v.bytes.eq_ignore_ascii_case(value)) {
                a.values.push(Value {
                    bytes: value.to_vec(),
                    csn,
                });
            }
        }
        None => e
            .attrs
            .push(Attribute::new(attr, vec![value.to_vec()], csn)),
    }
}

/// Varint lengths, per-value flags (see [`EntryState::encode`]).
const STATE_VERSION: u8 = 2;
/// Four-byte lengths, every value with its key and CSNs: still read.
const STATE_VERSION_FIXED_LENGTHS: u8 = 1;

const VALUE_KEY_IS_BYTES: u8 = 1;
const VALUE_ADDED_WITH_ENTRY: u8 = 2;
const VALUE_UPDATED_AT_ADD: u8 = 4;
const VALUE_DELETED: u8 = 8;
const VALUE_DISTINGUISHED: u8 = 16;
/// The key is the value in ASCII lower case (case-ignore matching rules).
const VALUE_KEY_IS_LOWERCASE_BYTES: u8 = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt replication state: {0}")]
pub struct StateError(&'static str);

/// LEB128: seven bits a byte, low bits first.
fn put_len(out: &mut Vec<u8>, n: usize) {
    let mut n = n as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn put_opt_csn(out: &mut Vec<u8>, c: Option<Csn>) {
    match c {
        Some(c) => {
            out.push(1);
            out.extend_from_slice(&c.to_bytes());
        }
        None => out.push(0),
    }
}

fn put_opt_uuid(out: &mut Vec<u8>, u: Option<Uuid>) {
    match u {
        Some(u) => {
            out.push(1);
            out.extend_from_slice(&u);
        }
        None => out.push(0),
    }
}

pub(crate) fn put_rdn(out: &mut Vec<u8>, rdn: &Rdn) {
    put_len(out, rdn.avas.len());
    for a in &rdn.avas {
        put_bytes(out, a.attr.as_bytes());
        put_bytes(out, &a.value);
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// The current encoding (varint lengths), not the first one.
    compact: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self.pos.checked_add(n).ok_or(StateError("truncated"))?;
        let s = self.b.get(self.pos..end).ok_or(StateError("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, StateError> {
        self.take(1)?
            .first()
            .copied()
            .ok_or(StateError("truncated"))
    }

    fn flag(&mut self) -> Result<bool, StateError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(StateError("bad flag")),
        }
    }

    fn len(&mut self) -> Result<usize, StateError> {
        if !self.compact {
            let s = <[u8; 4]>::try_from(self.take(4)?).map_err(|_| StateError("truncated"))?;
            return Ok(u32::from_be_bytes(s) as usize);
        }
        let mut n: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| StateError("length too large"));
            }
        }
        Err(StateError("length too large"))
    }

    fn compact_value(&mut self, base: Csn) -> Result<(Vec<u8>, ValueState), StateError> {
        let flags = self.byte()?;
        let key_form = flags & (VALUE_KEY_IS_BYTES | VALUE_KEY_IS_LOWERCASE_BYTES);
        if flags >= VALUE_KEY_IS_LOWERCASE_BYTES << 1
            || key_form == VALUE_KEY_IS_BYTES | VALUE_KEY_IS_LOWERCASE_BYTES
        {
            return Err(StateError("bad value flags"));
        }
        let key = if key_form == 0 {
            Some(self.bytes()?.to_vec())
        } else {
            None
        };
        let bytes = self.bytes()?.to_vec();
        // Version 2 as first written: a first-add CSN, then the update
        // CSN unless equal to it. Only the update CSN is kept.
        let first_add = if flags & VALUE_ADDED_WITH_ENTRY == 0 {
            self.csn()?
        } else {
            base
        };
        let updated = if flags & VALUE_UPDATED_AT_ADD == 0 {
            self.csn()?
        } else {
            first_add
        };
        let deleted = if flags & VALUE_DELETED != 0 {
            Some(self.csn()?)
        } else {
            None
        };
        let value = ValueState {
            bytes,
            updated,
            deleted,
            distinguished: flags & VALUE_DISTINGUISHED != 0,
        };
        let key = match key {
            Some(k) => k,
            None if key_form == VALUE_KEY_IS_LOWERCASE_BYTES => value.bytes.to_ascii_lowercase(),
            None => value.bytes.clone(),
        };
        Ok((key, value))
    }

    fn fixed_value(&mut self) -> Result<(Vec<u8>, ValueState), StateError> {
        let key = self.bytes()?.to_vec();
        let bytes = self.bytes()?.to_vec();
        let _first_add = self.csn()?;
        let updated = self.csn()?;
        let deleted = self.opt_csn()?;
        let distinguished = self.flag()?;
        Ok((
            key,
            ValueState {
                bytes,
                updated,
                deleted,
                distinguished,
            },
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StateError> {
        let n = self.len()?;
        self.take(n)
    }

    fn text(&mut self) -> Result<String, StateError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| StateError("name not UTF-8"))
    }

    fn csn(&mut self) -> Result<Csn, StateError> {
        Csn::from_bytes(self.take(10)?).ok_or(StateError("bad CSN"))
    }

    fn uuid(&mut self) -> Result<Uuid, StateError> {
        <Uuid>::try_from(self.take(16)?).map_err(|_| StateError("bad uuid"))
    }

    fn opt_csn(&mut self) -> Result<Option<Csn>, StateError> {
        Ok(if self.flag()? {
            Some(self.csn()?)
        } else {
            None
        })
    }

    fn opt_uuid(&mut self) -> Result<Option<Uuid>, StateError> {
        Ok(if self.flag()? {
            Some(self.uuid()?)
        } else {
            None
        })
    }

    fn rdn(&mut self) -> Result<Rdn, StateError> {
        let mut avas = Vec::new();
        for _ in 0..self.len()? {
            let attr = self.text()?;
            let value = self.bytes()?.to_vec();
            avas.push(Ava { attr, value });
        }
        Ok(Rdn { avas })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csn(t: u32) -> Csn {
        Csn::new(t, 0, 1, 0)
    }

    fn value(bytes: &str, updated: u32, deleted: Option<u32>, dist: bool) -> ValueState {
        ValueState {
            bytes: bytes.as_bytes().to_vec(),
            updated: csn(updated),
            deleted: deleted.map(csn),
            distinguished: dist,
        }
    }

    /// The first encoding, as earlier versions wrote it.
    fn encode_fixed_lengths(s: &EntryState) -> Vec<u8> {
        fn len(out: &mut Vec<u8>, n: usize) {
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        fn bytes(out: &mut Vec<u8>, b: &[u8]) {
            len(out, b.len());
            out.extend_from_slice(b);
        }
        fn opt(out: &mut Vec<u8>, c: Option<Csn>) {
            match c {
                Some(c) => {
                    out.push(1);
                    out.extend_from_slice(&c.to_bytes());
                }
                None => out.push(0),
            }
        }
        let mut out = vec![STATE_VERSION_FIXED_LENGTHS];
        out.extend_from_slice(&s.uuid);
        opt(&mut out, s.added);
        opt(&mut out, s.deleted);
        put_opt_uuid(&mut out, s.parent);
        out.extend_from_slice(&s.parent_csn.to_bytes());
        len(&mut out, s.rdn.avas.len());
        for a in &s.rdn.avas {
            bytes(&mut out, a.attr.as_bytes());
            bytes(&mut out, &a.value);
        }
        out.extend_from_slice(&s.rdn_csn.to_bytes());
        len(&mut out, s.attrs.len());
        for (name, a) in &s.attrs {
            bytes(&mut out, name.as_bytes());
            opt(&mut out, a.deleted);
            len(&mut out, a.values.len());
            for (key, v) in &a.values {
                bytes(&mut out, key);
                bytes(&mut out, &v.bytes);
                out.extend_from_slice(&v.updated.to_bytes());
                out.extend_from_slice(&v.updated.to_bytes());
                opt(&mut out, v.deleted);
                out.push(u8::from(v.distinguished));
            }
        }
        out.push(s.derived.status.code());
        out.extend_from_slice(&s.derived.status_csn.to_bytes());
        put_opt_uuid(&mut out, s.derived.parent);
        out.push(u8::from(s.derived.in_tree));
        out
    }

    fn imported_user() -> EntryState {
        let mut s = EntryState::phantom([3; 16]);
        s.added = Some(csn(10));
        s.parent = Some([1; 16]);
        s.parent_csn = csn(10);
        s.rdn = Rdn::single("uid", "user1");
        s.rdn_csn = csn(10);
        for (attr, vals) in [
            (
                "objectClass",
                &["top", "person", "organizationalPerson", "inetOrgPerson"][..],
            ),
            ("uid", &["user1"][..]),
            ("cn", &["User One"][..]),
            ("sn", &["One"][..]),
            ("mail", &["user1@example.com"][..]),
            (
                "userPassword",
                &["{SSHA}0123456789abcdefghijklmnopqrstuvwxyzABCD"][..],
            ),
        ] {
            let mut a = AttrState::default();
            for v in vals {
                let vs = value(v, 10, None, attr == "uid");
                a.values.insert(v.to_ascii_lowercase().into_bytes(), vs);
            }
            s.attrs.insert(attr.into(), a);
        }
        s.derived.in_tree = true;
        s.derived.parent = Some([1; 16]);
        s
    }

    #[test]
    fn states_written_by_earlier_versions_still_decode() {
        let mut s = imported_user();
        // A value with every CSN of its own and a deleted one.
        let a = s.attrs.entry("description".into()).or_default();
        a.deleted = Some(csn(11));
        a.values
            .insert(b"gone".to_vec(), value("Gone", 12, Some(13), false));
        let old = encode_fixed_lengths(&s);
        assert_eq!(EntryState::decode(&old), Ok(s.clone()));
        assert_eq!(EntryState::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn an_imported_entry_costs_little_more_than_its_values() {
        let s = imported_user();
        // Names, values, and the normalised keys that differ from them.
        let payload: usize = s
            .attrs
            .iter()
            .map(|(n, a)| {
                n.len()
                    + a.values
                        .iter()
                        .map(|(k, v)| v.bytes.len() + if *k == v.bytes { 0 } else { k.len() })
                        .sum::<usize>()
            })
            .sum();
        let values: usize = s.attrs.values().map(|a| a.values.len()).sum();
        let compact = s.encode().len();
        let first = encode_fixed_lengths(&s).len();
        // Header (uuid, CSNs, parent, RDN, derived: about 110 bytes), then
        // a flag and lengths: at most 3 bytes a value, 3 an attribute.
        assert!(
            compact <= payload + 110 + 3 * values + 3 * s.attrs.len(),
            "{compact} bytes for {payload} bytes of names and values"
        );
        // The first encoding spent 30 bytes a value on lengths and CSNs.
        assert!(
            first - compact >= 25 * values,
            "{compact} vs {first} in the first encoding"
        );
    }

    #[test]
    fn value_flags_outside_the_defined_ones_are_refused() {
        let s = imported_user();
        let b = s.encode();
        // The first value's flag byte follows the first attribute's name
        // ("cn"), its attribute delete flag and its value count.
        let at = b
            .windows(3)
            .position(|w| w == [2, b'c', b'n'])
            .map(|p| p + 3 + 1 + 1)
            .expect("attribute cn encoded");
        let mut bad = b.clone();
        bad[at] |= 0x80;
        assert_eq!(EntryState::decode(&bad), Err(StateError("bad value flags")));
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut s = EntryState::phantom([7; 16]);
        s.added = Some(csn(1));
        s.parent = Some([1; 16]);
        s.rdn = Rdn::single("cn", "A");
        let mut a = AttrState {
            deleted: Some(csn(2)),
            ..Default::default()
        };
        a.values.insert(b"a".to_vec(), value("A", 1, Some(3), true));
        s.attrs.insert("cn".into(), a);
        s.derived.in_tree = true;
        s.derived.conflict = true;
        let b = s.encode();
        assert_eq!(EntryState::decode(&b), Ok(s));
        assert!(EntryState::decode(&b[..b.len() - 1]).is_err());
        let mut longer = b.clone();
        longer.push(0);
        assert!(EntryState::decode(&longer).is_err());
        assert!(EntryState::decode(&[9]).is_err());
    }

    #[test]
    fn visibility_rules() {
        let mut a = AttrState::default();
        a.values
            .insert(b"x".to_vec(), value("x", 5, Some(4), false));
        a.values
            .insert(b"y".to_vec(), value("y", 3, Some(4), false));
        a.values.insert(b"z".to_vec(), value("z", 2, None, true));
        let names = |v: Vec<&ValueState>| v.iter().map(|v| v.bytes.clone()).collect::<Vec<_>>();
        assert_eq!(names(a.visible(false)), vec![b"x".to_vec(), b"z".to_vec()]);
        assert_eq!(names(a.visible(true)), vec![b"x".to_vec()]);
        a.deleted = Some(csn(6));
        assert_eq!(names(a.visible(false)), vec![b"z".to_vec()]);
        assert_eq!(names(a.visible(true)), vec![b"z".to_vec()]);
        a.deleted = Some(csn(5));
        assert_eq!(
            names(a.visible(true)),
            vec![b"x".to_vec()],
            "a replace keeps its own values"
        );
    }

    #[test]
    fn purge_forgets_only_old_absent_values_and_never_changes_what_shows() {
        let mut a = AttrState {
            deleted: Some(csn(5)),
            values: BTreeMap::new(),
        };
        for (k, v) in [
            ("old-del", value("old-del", 3, Some(4), false)),
            ("new-del", value("new-del", 3, Some(40), false)),
            ("replaced", value("replaced", 2, None, false)),
            ("rdn", value("rdn", 1, Some(2), true)),
            ("live", value("live", 9, Some(4), false)),
        ] {
            a.values.insert(k.as_bytes().to_vec(), v);
        }
        let shown = |a: &AttrState| -> Vec<Vec<u8>> {
            a.visible(false).iter().map(|v| v.bytes.clone()).collect()
        };
        let before = shown(&a);
        assert!(a.purge_deleted(csn(10)));
        assert_eq!(shown(&a), before);
        let left: Vec<&[u8]> = a.values.keys().map(Vec::as_slice).collect();
        assert_eq!(left, vec![&b"live"[..], b"new-del", b"rdn"]);
        assert!(!a.purge_deleted(csn(10)), "nothing more to forget");
    }

    #[test]
    fn nsuniqueid_has_389ds_form() {
        let u = [0xab; 16];
        assert_eq!(nsuniqueid(&u), "abababab-abababab-abababab-abababab");
        let r = conflict_rdn(&u, &Rdn::single("cn", "x"));
        assert_eq!(
            r.to_string(),
            "nsuniqueid=abababab-abababab-abababab-abababab+cn=x"
        );
    }
}
