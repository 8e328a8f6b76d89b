//! Replicated changes as the core sees them, and how each one merges into
//! the state of its target entry. Every merge here is order-independent
//! (minimum, maximum, or last-writer-wins by CSN), so applying the same
//! set of changes in any order, any number of times, gives one state.

use super::normalise::Normaliser;
use super::state::{AttrState, EntryState, Uuid, ValueState};
use crate::model::{Csn, Rdn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplChange {
    pub csn: Csn,
    /// entryUUID of the target.
    pub uuid: Uuid,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new entry under `parent` (`None` only for the suffix entry), with
    /// its user and operational values; they all take the add's CSN.
    Add {
        parent: Option<Uuid>,
        rdn: Rdn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    /// Modifications in the order the client sent them. Increments must be
    /// sent as the `Replace` of the value they produced: an increment
    /// applied twice is not idempotent.
    Modify {
        mods: Vec<ValueOp>,
    },
    Delete,
    /// A rename; `old_rdn` is the RDN on the originating replica (the
    /// values `delete_old_rdn` removes), `new_superior` the new parent.
    ModDn {
        new_rdn: Rdn,
        old_rdn: Rdn,
        delete_old_rdn: bool,
        new_superior: Option<Uuid>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueOp {
    Add(String, Vec<Vec<u8>>),
    /// No values: delete the whole attribute.
    Delete(String, Vec<Vec<u8>>),
    /// No values: delete the whole attribute.
    Replace(String, Vec<Vec<u8>>),
}

/// The CSN of the `i`-th step of a change: modifications of one operation
/// apply in order, so `delete x` then `add x` leaves `x` and `add x` then
/// `delete x` does not, on every replica. Sub-sequence numbers sit
/// between the change's CSN and the next change's.
pub fn step_csn(csn: Csn, i: usize) -> Csn {
    let step = u16::try_from(i).unwrap_or(u16::MAX);
    Csn {
        subseq: csn.subseq.saturating_add(step),
        ..csn
    }
}

/// Merges `change` into the state of its target. The derived part of the
/// state is left for the resolver.
pub fn merge<N: Normaliser + ?Sized>(state: &mut EntryState, change: &ReplChange, norm: &N) {
    let csn = change.csn;
    match &change.op {
        Op::Add { parent, rdn, attrs } => {
            state.added = Some(state.added.map_or(csn, |a| a.min(csn)));
            set_parent(state, *parent, csn);
            set_rdn(state, rdn, csn);
            for (name, values) in attrs {
                let attr = attr_mut(state, name, norm);
                for v in values {
                    add_value(attr.1, &attr.0, v, csn, norm);
                }
            }
            // An entry holds its RDN's values (RFC 4511 4.7); an add that
            // left them out must not leave a name no value stands for.
            for ava in &rdn.avas {
                let (key, attr) = attr_mut(state, &ava.attr, norm);
                add_value(attr, &key, &ava.value, csn, norm);
            }
        }
        Op::Modify { mods } => {
            for (i, m) in mods.iter().enumerate() {
                apply_value_op(state, m, step_csn(csn, i), norm);
            }
        }
        Op::Delete => {
            state.deleted = Some(state.deleted.map_or(csn, |d| d.min(csn)));
        }
        Op::ModDn {
            new_rdn,
            old_rdn,
            delete_old_rdn,
            new_superior,
        } => {
            if *delete_old_rdn {
                for ava in &old_rdn.avas {
                    let kept = new_rdn
                        .avas
                        .iter()
                        .any(|n| same_ava(norm, n, &ava.attr, &ava.value));
                    if !kept {
                        let op = ValueOp::Delete(ava.attr.clone(), vec![ava.value.clone()]);
                        apply_value_op(state, &op, step_csn(csn, 0), norm);
                    }
                }
            }
            for ava in &new_rdn.avas {
                let op = ValueOp::Add(ava.attr.clone(), vec![ava.value.clone()]);
                apply_value_op(state, &op, step_csn(csn, 1), norm);
            }
            set_rdn(state, new_rdn, csn);
            if let Some(p) = new_superior {
                set_parent(state, Some(*p), csn);
            }
        }
    }
    mark_distinguished(state, norm);
    canonicalise(state, norm);
}

/// [`AttrState::canonicalise`] over every attribute, the RDN's values
/// keeping the RDN's spelling.
fn canonicalise<N: Normaliser + ?Sized>(state: &mut EntryState, norm: &N) {
    let rdn: Vec<(String, Vec<u8>, &[u8])> = state
        .rdn
        .avas
        .iter()
        .map(|ava| {
            let key = norm.attr_key(&ava.attr);
            let vkey = norm.value_key(&key, &ava.value);
            (key, vkey, ava.value.as_slice())
        })
        .collect();
    for (name, attr) in state.attrs.iter_mut() {
        attr.canonicalise(|vkey| {
            rdn.iter()
                .find(|(k, v, _)| k == name && v.as_slice() == vkey)
                .map(|(_, _, spelling)| spelling.to_vec())
        });
    }
}

fn same_ava<N: Normaliser + ?Sized>(
    norm: &N,
    a: &crate::model::Ava,
    attr: &str,
    value: &[u8],
) -> bool {
    let k = norm.attr_key(attr);
    norm.attr_key(&a.attr) == k && norm.value_key(&k, &a.value) == norm.value_key(&k, value)
}

fn apply_value_op<N: Normaliser + ?Sized>(
    state: &mut EntryState,
    op: &ValueOp,
    csn: Csn,
    norm: &N,
) {
    match op {
        ValueOp::Add(name, values) => {
            let (key, attr) = attr_mut(state, name, norm);
            for v in values {
                add_value(attr, &key, v, csn, norm);
            }
        }
        ValueOp::Delete(name, values) => {
            let (key, attr) = attr_mut(state, name, norm);
            if values.is_empty() {
                attr.deleted = Some(attr.deleted.map_or(csn, |d| d.max(csn)));
            }
            for v in values {
                let vs = attr
                    .values
                    .entry(norm.value_key(&key, v))
                    .or_insert_with(|| ValueState {
                        bytes: v.clone(),
                        updated: Csn::ZERO,
                        deleted: None,
                        distinguished: false,
                    });
                // Never added here: the spelling follows the latest delete.
                let later = vs
                    .deleted
                    .is_none_or(|d| csn > d || (csn == d && v > &vs.bytes));
                if vs.updated == Csn::ZERO && later {
                    vs.bytes = v.clone();
                }
                vs.deleted = Some(vs.deleted.map_or(csn, |d| d.max(csn)));
            }
        }
        ValueOp::Replace(name, values) => {
            let (key, attr) = attr_mut(state, name, norm);
            attr.deleted = Some(attr.deleted.map_or(csn, |d| d.max(csn)));
            for v in values {
                add_value(attr, &key, v, csn, norm);
            }
        }
    }
}

fn attr_mut<'s, N: Normaliser + ?Sized>(
    state: &'s mut EntryState,
    name: &str,
    norm: &N,
) -> (String, &'s mut AttrState) {
    let key = norm.attr_key(name);
    (key.clone(), state.attrs.entry(key).or_default())
}

fn add_value<N: Normaliser + ?Sized>(
    attr: &mut AttrState,
    key: &str,
    v: &[u8],
    csn: Csn,
    norm: &N,
) {
    let vs = attr
        .values
        .entry(norm.value_key(key, v))
        .or_insert_with(|| ValueState {
            bytes: v.to_vec(),
            updated: Csn::ZERO,
            deleted: None,
            distinguished: false,
        });
    // The spelling follows the latest add; equal CSNs (a duplicate) pick the
    // larger spelling so the choice does not depend on arrival order.
    if csn > vs.updated || (csn == vs.updated && v > vs.bytes.as_slice()) {
        vs.updated = csn;
        vs.bytes = v.to_vec();
    }
}

fn set_parent(state: &mut EntryState, parent: Option<Uuid>, csn: Csn) {
    if csn > state.parent_csn || (csn == state.parent_csn && parent > state.parent) {
        state.parent = parent;
        state.parent_csn = csn;
    }
}

fn set_rdn(state: &mut EntryState, rdn: &Rdn, csn: Csn) {
    let newer =
        csn > state.rdn_csn || (csn == state.rdn_csn && rdn_bytes(rdn) > rdn_bytes(&state.rdn));
    if newer {
        state.rdn = rdn.clone();
        state.rdn_csn = csn;
    }
}

fn rdn_bytes(rdn: &Rdn) -> Vec<u8> {
    let mut out = Vec::new();
    super::state::put_rdn(&mut out, rdn);
    out
}

/// Marks the values of the current RDN as distinguished (and no others).
pub fn mark_distinguished<N: Normaliser + ?Sized>(state: &mut EntryState, norm: &N) {
    for a in state.attrs.values_mut() {
        for v in a.values.values_mut() {
            v.distinguished = false;
        }
    }
    for ava in &state.rdn.avas {
        let key = norm.attr_key(&ava.attr);
        let vkey = norm.value_key(&key, &ava.value);
        if let Some(v) = state
            .attrs
            .get_mut(&key)
            .and_then(|a| a.values.get_mut(&vkey))
        {
            v.distinguished = true;
        }
    }
}
