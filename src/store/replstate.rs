//! Replication state of entries of replicated suffixes, kept beside the
//! entries: one opaque record per entryUUID (repl::core encodes it) and a
//! name index the conflict resolver reads. The index has two kinds of key,
//! each mapping to entryUUIDs:
//! - `c` + parent entryUUID: the entries in the tree under that parent;
//! - `n` + parent entryUUID + hash of an RDN key: the entries under that
//!   parent whose RDN has that key (the claimants of one DN). The RDN key
//!   is hashed so any RDN fits LMDB's key size; callers recheck the RDN of
//!   what they read, so a collision cannot mislead them.

use super::{Result, StoreRead, WriteTxn};
use sha2::{Digest, Sha256};

pub type Uuid = [u8; 16];

/// The name-index key of the entries under `parent`.
pub fn children_key(parent: &Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(b'c');
    k.extend_from_slice(parent);
    k
}

/// The name-index key of the entries under `parent` whose RDN has `rdn_key`.
pub fn claim_key(parent: &Uuid, rdn_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(49);
    k.push(b'n');
    k.extend_from_slice(parent);
    k.extend_from_slice(&Sha256::digest(rdn_key));
    k
}

/// Whether a name-index key is a claim key ([`claim_key`]).
pub fn is_claim_key(key: &[u8]) -> bool {
    key.first() == Some(&b'n')
}

/// Reads of the replication state, for read and write transactions.
pub trait ReplStateRead: StoreRead {
    fn repl_state(&self, uuid: &Uuid) -> Result<Option<Vec<u8>>> {
        let (t, d) = self.parts();
        Ok(d.replstate.get(t, uuid.as_slice())?.map(<[u8]>::to_vec))
    }

    /// Up to `limit` states after the entryUUID `after` (from the first
    /// when None), in entryUUID order: a scan in slices.
    fn repl_states_after(
        &self,
        after: Option<&Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Vec<u8>)>> {
        let (t, d) = self.parts();
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.as_slice()),
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in d.replstate.range(t, &(start, std::ops::Bound::Unbounded))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            if let Ok(u) = Uuid::try_from(k) {
                out.push((u, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// The entryUUIDs listed under a name-index key.
    fn repl_names(&self, key: &[u8]) -> Result<Vec<Uuid>> {
        let (t, d) = self.parts();
        let mut out = Vec::new();
        if let Some(iter) = d.replnames.get_duplicates(t, key)? {
            for item in iter {
                if let Ok(u) = Uuid::try_from(item?.1) {
                    out.push(u);
                }
            }
        }
        Ok(out)
    }
}

impl<T: StoreRead + ?Sized> ReplStateRead for T {}

impl WriteTxn<'_> {
    pub fn put_repl_state(&mut self, uuid: &Uuid, state: &[u8]) -> Result<()> {
        self.dbs
            .replstate
            .put(&mut self.txn, uuid.as_slice(), state)?;
        Ok(())
    }

    /// [`WriteTxn::put_repl_state`] for a caller writing states in
    /// increasing entryUUID order: a state beyond the last one is appended
    /// (pages filled, not split in half), any other one inserted.
    pub fn put_repl_state_in_order(&mut self, uuid: &Uuid, state: &[u8]) -> Result<()> {
        let beyond = self
            .dbs
            .replstate
            .last(&self.txn)?
            .is_none_or(|(last, _)| uuid.as_slice() > last);
        if beyond {
            self.dbs.replstate.put_with_flags(
                &mut self.txn,
                heed::PutFlags::APPEND,
                uuid.as_slice(),
                state,
            )?;
            Ok(())
        } else {
            self.put_repl_state(uuid, state)
        }
    }

    pub fn delete_repl_state(&mut self, uuid: &Uuid) -> Result<()> {
        self.dbs.replstate.delete(&mut self.txn, uuid.as_slice())?;
        Ok(())
    }

    /// Forgets every state and the name index (before a rebuild).
    pub fn clear_repl_state(&mut self) -> Result<()> {
        self.dbs.replstate.clear(&mut self.txn)?;
        self.dbs.replnames.clear(&mut self.txn)?;
        Ok(())
    }

    pub fn add_repl_name(&mut self, key: &[u8], uuid: &Uuid) -> Result<()> {
        self.dbs
            .replnames
            .put(&mut self.txn, key, uuid.as_slice())?;
        Ok(())
    }

    pub fn delete_repl_name(&mut self, key: &[u8], uuid: &Uuid) -> Result<()> {
        self.dbs
            .replnames
            .delete_one_duplicate(&mut self.txn, key, uuid.as_slice())?;
        Ok(())
    }
}
