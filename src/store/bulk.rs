//! Bulk loading of attribute indexes.
//!
//! Inserting index keys one entry at a time costs one B-tree search per
//! (key, id) pair, and keys shared by most entries (objectClass values,
//! common trigrams) are searched for again by every entry. A bulk load
//! (offline import, total init of a consumer) instead gathers the postings
//! of the new entries in memory and writes them in key order at the end:
//! new keys go in with LMDB's append mode (no search, pages filled
//! completely) and each key's ids follow one another while its pages are hot.
//!
//! The ids of new entries only grow, so every posting list in the buffer is
//! ascending and every id is larger than any the store already holds under
//! the same key: appending duplicates is always in order.

use super::{Id, IndexKey, Result, WriteTxn};
use heed::PutFlags;
use rustc_hash::FxHashMap;

/// Postings above which `IndexBuffer::is_full` asks the caller to flush
/// (about 8 bytes each plus the keys: a few hundred MiB at most).
const MAX_PAIRS: usize = 40_000_000;

/// (index key, id) pairs of new entries not yet written to the store.
#[derive(Default)]
pub struct IndexBuffer {
    postings: FxHashMap<Box<[u8]>, Vec<u64>>,
    pairs: usize,
}

impl std::fmt::Debug for IndexBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuffer")
            .field("keys", &self.postings.len())
            .field("pairs", &self.pairs)
            .finish()
    }
}

impl IndexBuffer {
    pub fn new() -> IndexBuffer {
        IndexBuffer::default()
    }

    /// Records `id` under `key`; ids must be added in ascending order.
    pub fn add(&mut self, key: &IndexKey, id: u64) {
        match self.postings.get_mut(key.as_bytes()) {
            Some(ids) => {
                if ids.last() != Some(&id) {
                    ids.push(id);
                    self.pairs += 1;
                }
            }
            None => {
                self.postings.insert(key.as_bytes().into(), vec![id]);
                self.pairs += 1;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// Number of (key, id) pairs held.
    pub fn len(&self) -> usize {
        self.pairs
    }

    /// True when the buffer has grown to its memory budget and should be written.
    pub fn is_full(&self) -> bool {
        self.pairs >= MAX_PAIRS
    }

    /// Forgets the postings of ids above `id`: entries whose transaction was
    /// aborted (their ids will be given to other entries).
    pub fn discard_after(&mut self, id: u64) {
        let mut removed = 0;
        self.postings.retain(|_, ids| {
            let keep = ids.partition_point(|&x| x <= id);
            removed += ids.len() - keep;
            ids.truncate(keep);
            !ids.is_empty()
        });
        self.pairs -= removed;
    }

    pub fn clear(&mut self) {
        self.postings.clear();
        self.pairs = 0;
    }

    /// The postings in key order.
    fn sorted(&self) -> Vec<(&[u8], &[u64])> {
        let mut all: Vec<_> = self
            .postings
            .iter()
            .map(|(k, ids)| (k.as_ref(), ids.as_slice()))
            .collect();
        // LMDB's default key order is the bytes' lexicographic order, as here.
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }
}

impl WriteTxn<'_> {
    /// Writes `buf` (the caller clears it once the transaction commits).
    /// Keys beyond the last key of the index are appended; keys that already
    /// exist (other suffixes, earlier flushes) get their ids appended as
    /// duplicates.
    ///
    /// One cursor does all the writes: after a put it rests on that key, so
    /// the next duplicate of the key finds its place without a search from
    /// the root.
    pub fn write_index_buffer(&mut self, buf: &IndexBuffer) -> Result<()> {
        let last: Option<Vec<u8>> = self.dbs.index.last(&self.txn)?.map(|(k, _)| k.to_vec());
        // Keys are sorted: once one lies beyond the index's last key, all the rest do.
        let mut appending = false;
        let mut cursor = self.dbs.index.iter_mut(&mut self.txn)?;
        let mut put = |flags: PutFlags, key: &[u8], id: u64| -> Result<bool> {
            // SAFETY: key and id are our own buffers, not borrowed from the
            // database, which is all `put_current_with_options` requires.
            match unsafe { cursor.put_current_with_options::<Id>(flags, key, &id) } {
                Ok(()) => Ok(true),
                Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => Ok(false),
                Err(e) => Err(e.into()),
            }
        };
        for (key, ids) in buf.sorted() {
            let Some((&first, rest)) = ids.split_first() else {
                continue;
            };
            appending = appending || last.as_deref().is_none_or(|l| key > l);
            if appending {
                put(PutFlags::APPEND, key, first)?;
            } else if !put(PutFlags::APPEND_DUP, key, first)? {
                // Below an id already under this key: an ordinary sorted insert.
                put(PutFlags::empty(), key, first)?;
            }
            for &id in rest {
                if !put(PutFlags::APPEND_DUP, key, id)? {
                    put(PutFlags::empty(), key, id)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ik(b: &[u8]) -> crate::store::IndexKey {
        crate::store::IndexKey::from_bytes(b.to_vec())
    }
    use crate::store::{Store, StoreOptions, StoreRead};

    #[test]
    fn buffered_postings_read_back_like_direct_inserts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let mut w = store.write().unwrap();
        // Keys already present: one below and one inside the buffered range.
        w.index_add(&ik(b"a\0=x"), 1).unwrap();
        w.index_add(&ik(b"m\0=x"), 2).unwrap();
        w.commit().unwrap();

        let mut buf = IndexBuffer::new();
        for id in 3..=7 {
            buf.add(&ik(b"m\0=x"), id);
            buf.add(&ik(b"z\0=y"), id);
            buf.add(&ik(format!("k\0={id}").as_bytes()), id);
        }
        buf.add(&ik(b"a\0=x"), 8);
        buf.add(&ik(b"a\0=x"), 8);
        buf.add(&ik(b"q\0=gone"), 9);
        assert_eq!(buf.len(), 17);
        buf.discard_after(8);
        assert_eq!(buf.len(), 16);

        let mut w = store.write().unwrap();
        w.write_index_buffer(&buf).unwrap();
        w.commit().unwrap();
        buf.clear();
        assert!(buf.is_empty());
        // A second flush into keys that now exist appends after them.
        buf.add(&ik(b"z\0=y"), 10);
        buf.add(&ik(b"b\0=new"), 10);
        let mut w = store.write().unwrap();
        w.write_index_buffer(&buf).unwrap();
        w.commit().unwrap();

        let r = store.read().unwrap();
        assert_eq!(r.index_ids(&ik(b"a\0=x")).unwrap(), vec![1, 8]);
        assert_eq!(r.index_ids(&ik(b"m\0=x")).unwrap(), vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(r.index_ids(&ik(b"z\0=y")).unwrap(), vec![3, 4, 5, 6, 7, 10]);
        assert_eq!(r.index_ids(&ik(b"k\0=5")).unwrap(), vec![5]);
        assert_eq!(r.index_ids(&ik(b"b\0=new")).unwrap(), vec![10]);
        assert!(r.index_ids(&ik(b"q\0=gone")).unwrap().is_empty());
        assert_eq!(
            r.index_prefix_ids(&ik(b"k\0=")).unwrap(),
            vec![3, 4, 5, 6, 7]
        );
    }
}
