//! LMDB storage through heed. Nothing above this module sees heed types.
//!
//! Databases in one environment (the data directory):
//! - `entries`: id (u64 BE) -> encoded entry (see `encode`)
//! - `dn`: DN key (normalised RDNs, root first, each followed by NUL, so a
//!   subtree is a key-prefix range) -> id
//! - `parent`: parent id -> child ids (DUP_SORT), for one-level scans and
//!   subordinate counts without walking a subtree
//! - `uuid`: entryUUID (16 bytes) -> id
//! - `index`: `attr NUL kind value` -> ids (DUP_SORT|DUP_FIXED). One database
//!   for all attribute indexes so the index set is configuration, not schema
//!   of the environment.
//! - `changelog`: changelog key -> change record (written by replication)
//! - `meta`: format version, generator state, RUVs ...
//! - `replstate`: entryUUID -> the entry's replication state (encoded by
//!   repl::core, opaque here), for entries of replicated suffixes
//! - `replnames`: name-index key -> entryUUIDs (DUP_SORT|DUP_FIXED): which
//!   entries sit under a parent, and which claim one RDN there
//!   (see `replstate`)

pub mod backup;
pub mod bulk;
pub mod changelog;
pub(crate) mod encode;
mod keys;
pub mod replstate;
pub mod scan;

pub use crate::model::codec::{encode_entry, DecodeError};
pub use bulk::IndexBuffer;
pub use encode::decode_entry;
use encode::encode_stored_entry;
pub use keys::{DnKey, IndexKey};

use crate::model::Entry;
use heed::types::{Bytes, Str, U64};
use heed::{
    byteorder::BE, CommitOrAbort, Database, DatabaseFlags, Env, EnvOpenOptions, RoTxn, RwTxn,
    WithoutTls,
};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Version of the on-disk layout; bumped on incompatible changes.
/// 2: entries in the compact encoding (encode.rs, version 2).
/// 3: replication state per entry (`replstate`, `replnames`); a version-2
///    directory gains the two databases on open and the directory builds
///    the states from the entries on first use.
pub const FORMAT_VERSION: u32 = 3;
/// Older layouts this version reads; opening one upgrades its version
/// record, since what is written from then on is in the current layout.
pub(crate) const READABLE_FORMATS: &[u32] = &[1, 2];
const META_FORMAT: &str = "format_version";
const LOCK_FILE: &str = "ferrodir.lock";
/// Present while an offline bulk load has index keys not yet written.
const META_BULK_LOAD: &str = "bulk_load_unfinished";

type Id = U64<BE>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("LMDB: {0}")]
    Lmdb(#[from] heed::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "the data directory {0} is in use by another ferrodir process (stop the server first)"
    )]
    Locked(PathBuf),
    #[error("the data directory has on-disk format version {found}; this ferrodir reads version {FORMAT_VERSION}")]
    FormatVersion { found: u32 },
    #[error("an import into the data directory {0} was interrupted before its indexes were written: remove the directory and import again")]
    UnfinishedBulkLoad(PathBuf),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An entry in its stored form, encoded ahead of its write (an import
/// encodes on the thread that prepares its entries, not the writing one).
#[derive(Debug, Clone)]
pub struct EncodedEntry(Vec<u8>);

impl EncodedEntry {
    pub fn of(entry: &Entry) -> EncodedEntry {
        EncodedEntry(encode_stored_entry(entry))
    }
}

/// How the environment is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum size of the map (virtual; disk grows as needed).
    pub map_size: usize,
    /// Take the exclusive lock file (servers and offline import do; export does not).
    pub exclusive: bool,
    /// Skip fsync on commit: only for offline bulk loads that sync once at the end.
    pub no_sync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            map_size: 64 << 30,
            exclusive: true,
            no_sync: false,
        }
    }
}

/// The database handles (opaque outside the store).
#[derive(Clone, Copy)]
pub struct Dbs {
    entries: Database<'static, Id, Bytes>,
    dn: Database<'static, Bytes, Id>,
    parent: Database<'static, Id, Id>,
    uuid: Database<'static, Bytes, Id>,
    index: Database<'static, Bytes, Id>,
    changelog: Database<'static, Bytes, Bytes>,
    meta: Database<'static, Str, Bytes>,
    replstate: Database<'static, Bytes, Bytes>,
    replnames: Database<'static, Bytes, Bytes>,
}

pub struct Store {
    env: &'static Env<WithoutTls>,
    dbs: Dbs,
    path: PathBuf,
    // Held for the lifetime of the store: the OS releases it if the process dies.
    _lock: Option<File>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the environment in `dir`.
    ///
    /// The Env is leaked on purpose: heed's databases borrow it, and a process
    /// opens one data directory for its whole life (LMDB forbids opening the
    /// same path twice in one process anyway).
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir)?;
        let lock = if opts.exclusive {
            let f = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(LOCK_FILE))?;
            match f.try_lock() {
                Ok(()) => Some(f),
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked(dir.to_path_buf()))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        } else {
            None
        };
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options
            .map_size(opts.map_size)
            .max_dbs(16)
            .max_readers(4096);
        if opts.no_sync {
            // SAFETY: NO_SYNC only changes durability; callers sync explicitly.
            unsafe {
                options.flags(heed::EnvFlags::NO_SYNC);
            }
        }
        // SAFETY: one Env per path per process: the lock file guarantees it for
        // exclusive opens; non-exclusive opens are short-lived CLI readers.
        let env = unsafe { options.open(dir)? };
        let env: &'static Env<WithoutTls> = Box::leak(Box::new(env));
        let dup = DatabaseFlags::DUP_SORT | DatabaseFlags::DUP_FIXED;
        let created = env.create_databases_and_commit(
            env.write_txn()?,
            |o, wtxn| -> std::result::Result<_, heed::Error> {
                let dbs = (
                    o.create_database::<Id, Bytes>(wtxn, Some("entries"))?,
                    o.create_database::<Bytes, Id>(wtxn, Some("dn"))?,
                    o.database_options()
                        .types::<Id, Id>()
                        .name("parent")
                        .flags(dup)
                        .create(wtxn)?,
                    o.create_database::<Bytes, Id>(wtxn, Some("uuid"))?,
                    o.database_options()
                        .types::<Bytes, Id>()
                        .name("index")
                        .flags(dup)
                        .create(wtxn)?,
                    o.create_database::<Bytes, Bytes>(wtxn, Some("changelog"))?,
                    o.create_database::<Str, Bytes>(wtxn, Some("meta"))?,
                    o.create_database::<Bytes, Bytes>(wtxn, Some("replstate"))?,
                    o.database_options()
                        .types::<Bytes, Bytes>()
                        .name("replnames")
                        .flags(dup)
                        .create(wtxn)?,
                );
                Ok(CommitOrAbort::<_, ()>::Commit(dbs))
            },
        )?;
        let Some((entries, dn, parent, uuid, index, changelog, meta, replstate, replnames)) =
            created.commit()
        else {
            return Err(DecodeError("database creation aborted").into());
        };
        let dbs = Dbs {
            entries,
            dn,
            parent,
            uuid,
            index,
            changelog,
            meta,
            replstate,
            replnames,
        };
        let mut wtxn = env.write_txn()?;
        match dbs.meta.get(&wtxn, META_FORMAT)? {
            None => {
                dbs.meta
                    .put(&mut wtxn, META_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = v
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| DecodeError("bad format version record"))?;
                if READABLE_FORMATS.contains(&found) {
                    dbs.meta
                        .put(&mut wtxn, META_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
                } else if found != FORMAT_VERSION {
                    return Err(StoreError::FormatVersion { found });
                }
            }
        }
        let unfinished = dbs.meta.get(&wtxn, META_BULK_LOAD)?.is_some();
        wtxn.commit()?;
        // Readers that do not lock (export) may still look at what is there.
        if unfinished && opts.exclusive {
            return Err(StoreError::UnfinishedBulkLoad(dir.to_path_buf()));
        }
        Ok(Store {
            env,
            dbs,
            path: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self) -> Result<ReadTxn> {
        Ok(ReadTxn {
            txn: self.env.read_txn()?,
            dbs: self.dbs,
        })
    }

    pub fn write(&self) -> Result<WriteTxn<'static>> {
        Ok(WriteTxn {
            txn: self.env.write_txn()?,
            dbs: self.dbs,
            env: self.env,
            deferred: None,
        })
    }

    /// Flushes to disk (after bulk loads opened with `no_sync`).
    pub fn sync(&self) -> Result<()> {
        self.env.force_sync()?;
        Ok(())
    }

    /// A consistent copy of the environment into `dest` (a file path), made
    /// from a read snapshot so it can run while the server serves.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        self.env
            .copy_to_path(dest, heed::CompactionOption::Enabled)?;
        Ok(())
    }

    pub fn disk_size(&self) -> Result<u64> {
        Ok(self.env.real_disk_size()?)
    }
}

/// Read operations shared by read and write transactions.
pub trait StoreRead {
    #[doc(hidden)]
    fn parts(&self) -> (&RoTxn<'_>, &Dbs);

    fn entry(&self, id: u64) -> Result<Option<Entry>> {
        let (t, d) = self.parts();
        match d.entries.get(t, &id)? {
            Some(b) => Ok(Some(decode_entry(b)?)),
            None => Ok(None),
        }
    }

    /// The entry with only the attributes `keep` accepts.
    fn entry_with(&self, id: u64, keep: &dyn Fn(&str) -> bool) -> Result<Option<Entry>> {
        let (t, d) = self.parts();
        match d.entries.get(t, &id)? {
            Some(b) => Ok(Some(encode::decode_entry_with(b, keep)?)),
            None => Ok(None),
        }
    }

    fn id_by_dn(&self, dn_key: &DnKey) -> Result<Option<u64>> {
        let (t, d) = self.parts();
        Ok(d.dn.get(t, dn_key.as_bytes())?)
    }

    fn id_by_uuid(&self, uuid: &[u8; 16]) -> Result<Option<u64>> {
        let (t, d) = self.parts();
        Ok(d.uuid.get(t, uuid.as_slice())?)
    }

    /// Ids of the entries whose DN key starts with `prefix` (the subtree
    /// rooted at the entry whose key is `prefix`, that entry included).
    fn subtree_ids(&self, prefix: &DnKey) -> Result<Vec<u64>> {
        let (t, d) = self.parts();
        let mut ids = Vec::new();
        for item in d.dn.prefix_iter(t, prefix.as_bytes())? {
            ids.push(item?.1);
        }
        Ok(ids)
    }

    /// (DN key, id) pairs of a subtree in key order, for range walks (export).
    fn subtree_keys(&self, prefix: &DnKey) -> Result<Vec<(DnKey, u64)>> {
        let (t, d) = self.parts();
        let mut out = Vec::new();
        for item in d.dn.prefix_iter(t, prefix.as_bytes())? {
            let (k, id) = item?;
            out.push((DnKey::from_bytes(k.to_vec()), id));
        }
        Ok(out)
    }

    /// Up to `limit` (DN key, id) pairs of the subtree at `prefix` whose key
    /// sorts after `after` (None: from the start): pages of a subtree walk.
    fn subtree_keys_after(
        &self,
        prefix: &DnKey,
        after: Option<&DnKey>,
        limit: usize,
    ) -> Result<Vec<(DnKey, u64)>> {
        let (t, d) = self.parts();
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.as_bytes()),
            None => std::ops::Bound::Included(prefix.as_bytes()),
        };
        let mut out = Vec::new();
        for item in d.dn.range(t, &(start, std::ops::Bound::Unbounded))? {
            let (k, id) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((DnKey::from_bytes(k.to_vec()), id));
        }
        Ok(out)
    }

    fn children(&self, id: u64) -> Result<Vec<u64>> {
        let (t, d) = self.parts();
        let mut ids = Vec::new();
        if let Some(iter) = d.parent.get_duplicates(t, &id)? {
            for item in iter {
                ids.push(item?.1);
            }
        }
        Ok(ids)
    }

    fn child_count(&self, id: u64) -> Result<u64> {
        let (t, d) = self.parts();
        let mut n = 0;
        if let Some(iter) = d.parent.get_duplicates(t, &id)? {
            for item in iter {
                item?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn has_children(&self, id: u64) -> Result<bool> {
        let (t, d) = self.parts();
        Ok(d.parent.get(t, &id)?.is_some())
    }

    /// Ids under one index key, ascending.
    fn index_ids(&self, key: &IndexKey) -> Result<Vec<u64>> {
        let (t, d) = self.parts();
        let mut ids = Vec::new();
        if let Some(iter) = d.index.get_duplicates(t, key)? {
            for item in iter {
                ids.push(item?.1);
            }
        }
        Ok(ids)
    }

    /// Visits the ids under one index key in ascending order while `visit`
    /// returns true: a search can stop reading a long posting list once it
    /// has what it needs (a page, a size limit).
    fn index_ids_while(&self, key: &IndexKey, visit: &mut dyn FnMut(u64) -> bool) -> Result<()> {
        let (t, d) = self.parts();
        if let Some(iter) = d.index.get_duplicates(t, key)? {
            for item in iter {
                if !visit(item?.1) {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Ids under one index key, ascending, or None when there are more than
    /// `cap` (the key does not narrow a search enough to be worth reading).
    fn index_ids_capped(&self, key: &IndexKey, cap: usize) -> Result<Option<Vec<u64>>> {
        let (t, d) = self.parts();
        let mut ids = Vec::new();
        if let Some(iter) = d.index.get_duplicates(t, key)? {
            for item in iter {
                if ids.len() >= cap {
                    return Ok(None);
                }
                ids.push(item?.1);
            }
        }
        Ok(Some(ids))
    }

    /// Ids under every index key starting with `prefix` (unsorted, may repeat).
    fn index_prefix_ids(&self, prefix: &IndexKey) -> Result<Vec<u64>> {
        let (t, d) = self.parts();
        let mut ids = Vec::new();
        for item in d.index.prefix_iter(t, prefix)? {
            ids.push(item?.1);
        }
        Ok(ids)
    }

    /// Ids under every index key starting with `prefix` (unsorted, may
    /// repeat), or None when there are more than `cap`.
    fn index_prefix_ids_capped(&self, prefix: &IndexKey, cap: usize) -> Result<Option<Vec<u64>>> {
        let (t, d) = self.parts();
        let mut ids = Vec::new();
        for item in d.index.prefix_iter(t, prefix)? {
            if ids.len() >= cap {
                return Ok(None);
            }
            ids.push(item?.1);
        }
        Ok(Some(ids))
    }

    /// Ids under index keys in `[from, to)` (ordering filters on indexed values).
    fn index_range_ids(&self, from: &IndexKey, to: &IndexKey) -> Result<Vec<u64>> {
        let (t, d) = self.parts();
        let mut ids = Vec::new();
        let range = (
            std::ops::Bound::Included(from.as_bytes()),
            std::ops::Bound::Excluded(to.as_bytes()),
        );
        for item in d.index.range(t, &range)? {
            ids.push(item?.1);
        }
        Ok(ids)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (t, d) = self.parts();
        Ok(d.meta.get(t, key)?.map(<[u8]>::to_vec))
    }

    fn entry_count(&self) -> Result<u64> {
        let (t, d) = self.parts();
        Ok(d.entries.len(t)?)
    }

    /// Changelog records with keys in `[from, ..)` starting with `prefix`, at most `limit`.
    fn changelog_from(&self, from: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (t, d) = self.parts();
        let mut out = Vec::new();
        let range = (std::ops::Bound::Included(from), std::ops::Bound::Unbounded);
        for item in d.changelog.range(t, &range)? {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

pub struct ReadTxn {
    txn: RoTxn<'static, WithoutTls>,
    dbs: Dbs,
}

impl StoreRead for ReadTxn {
    fn parts(&self) -> (&RoTxn<'_>, &Dbs) {
        (&self.txn, &self.dbs)
    }
}

impl ReadTxn {
    /// The snapshot this transaction reads: LMDB's id of the last write
    /// committed before it began. Two read transactions with the same id
    /// see the same data, so it can key what is derived from the data.
    pub fn snapshot(&self) -> usize {
        self.txn.id()
    }
}

pub struct WriteTxn<'t> {
    txn: RwTxn<'t>,
    dbs: Dbs,
    env: &'static Env<WithoutTls>,
    /// Bulk loads: index keys of new entries collect here instead of the
    /// index database (see `bulk`).
    deferred: Option<IndexBuffer>,
}

impl StoreRead for WriteTxn<'_> {
    fn parts(&self) -> (&RoTxn<'_>, &Dbs) {
        (&self.txn, &self.dbs)
    }
}

impl WriteTxn<'_> {
    /// A child transaction: committing it folds its changes into this one,
    /// aborting it discards them (one failed operation in a group commit).
    pub fn nested(&mut self) -> Result<WriteTxn<'_>> {
        Ok(WriteTxn {
            txn: self.env.nested_write_txn(&mut self.txn)?,
            dbs: self.dbs,
            env: self.env,
            deferred: None,
        })
    }

    pub fn next_id(&self) -> Result<u64> {
        Ok(self
            .dbs
            .entries
            .last(&self.txn)?
            .map(|(id, _)| id + 1)
            .unwrap_or(1))
    }

    pub fn put_entry(&mut self, id: u64, entry: &Entry) -> Result<()> {
        self.dbs
            .entries
            .put(&mut self.txn, &id, &encode_stored_entry(entry))?;
        Ok(())
    }

    pub fn delete_entry(&mut self, id: u64) -> Result<()> {
        self.dbs.entries.delete(&mut self.txn, &id)?;
        Ok(())
    }

    pub fn put_dn(&mut self, dn_key: &DnKey, id: u64) -> Result<()> {
        self.dbs.dn.put(&mut self.txn, dn_key.as_bytes(), &id)?;
        Ok(())
    }

    pub fn delete_dn(&mut self, dn_key: &DnKey) -> Result<()> {
        self.dbs.dn.delete(&mut self.txn, dn_key.as_bytes())?;
        Ok(())
    }

    pub fn link_child(&mut self, parent: u64, child: u64) -> Result<()> {
        self.dbs.parent.put(&mut self.txn, &parent, &child)?;
        Ok(())
    }

    pub fn unlink_child(&mut self, parent: u64, child: u64) -> Result<()> {
        self.dbs
            .parent
            .delete_one_duplicate(&mut self.txn, &parent, &child)?;
        Ok(())
    }

    pub fn put_uuid(&mut self, uuid: &[u8; 16], id: u64) -> Result<()> {
        self.dbs.uuid.put(&mut self.txn, uuid.as_slice(), &id)?;
        Ok(())
    }

    pub fn delete_uuid(&mut self, uuid: &[u8; 16]) -> Result<()> {
        self.dbs.uuid.delete(&mut self.txn, uuid.as_slice())?;
        Ok(())
    }

    pub fn index_add(&mut self, key: &IndexKey, id: u64) -> Result<()> {
        self.dbs.index.put(&mut self.txn, key, &id)?;
        Ok(())
    }

    /// Marks the store as holding a bulk load whose deferred index keys are
    /// not written yet; commit it before loading.
    pub fn begin_bulk_load(&mut self) -> Result<()> {
        self.put_meta(META_BULK_LOAD, &[])
    }

    /// Clears `begin_bulk_load`, in the transaction that writes the last keys.
    pub fn end_bulk_load(&mut self) -> Result<()> {
        self.dbs.meta.delete(&mut self.txn, META_BULK_LOAD)?;
        Ok(())
    }

    /// From now on, index keys of new entries (`index_add_new`) go to `buf`
    /// and reach the store only through `write_index_buffer`.
    pub fn defer_index(&mut self, buf: IndexBuffer) {
        self.deferred = Some(buf);
    }

    /// Ends `defer_index`, handing back the postings not yet written.
    pub fn take_deferred(&mut self) -> Option<IndexBuffer> {
        self.deferred.take()
    }

    /// Index insertion for a newly created entry: its id is the largest in
    /// the store, so it goes at the end of the key's duplicates (APPENDDUP
    /// skips the search inside large posting lists).
    pub fn index_add_new(&mut self, key: &IndexKey, id: u64) -> Result<()> {
        if let Some(buf) = self.deferred.as_mut() {
            buf.add(key, id);
            return Ok(());
        }
        match self
            .dbs
            .index
            .put_with_flags(&mut self.txn, heed::PutFlags::APPEND_DUP, key, &id)
        {
            Ok(()) => Ok(()),
            Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => self.index_add(key, id),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a newly created entry, whose id is the largest (LMDB append).
    pub fn put_new_entry(&mut self, id: u64, entry: &Entry) -> Result<()> {
        self.put_new_encoded(id, &EncodedEntry::of(entry))
    }

    /// [`WriteTxn::put_new_entry`] of an entry encoded beforehand.
    pub fn put_new_encoded(&mut self, id: u64, encoded: &EncodedEntry) -> Result<()> {
        let bytes = encoded.0.as_slice();
        match self
            .dbs
            .entries
            .put_with_flags(&mut self.txn, heed::PutFlags::APPEND, &id, bytes)
        {
            Ok(()) => Ok(()),
            Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => {
                self.dbs.entries.put(&mut self.txn, &id, bytes)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn index_del(&mut self, key: &IndexKey, id: u64) -> Result<()> {
        self.dbs
            .index
            .delete_one_duplicate(&mut self.txn, key, &id)?;
        Ok(())
    }

    pub fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.dbs.meta.put(&mut self.txn, key, value)?;
        Ok(())
    }

    pub fn put_changelog(&mut self, key: &[u8], record: &[u8]) -> Result<()> {
        self.dbs.changelog.put(&mut self.txn, key, record)?;
        Ok(())
    }

    pub fn delete_changelog(&mut self, key: &[u8]) -> Result<()> {
        self.dbs.changelog.delete(&mut self.txn, key)?;
        Ok(())
    }

    /// Removes every index key (used before a full index rebuild).
    pub fn clear_indexes(&mut self) -> Result<()> {
        self.dbs.index.clear(&mut self.txn)?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.txn.commit()?;
        Ok(())
    }

    pub fn abort(self) {
        self.txn.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ik(b: &[u8]) -> crate::store::IndexKey {
        crate::store::IndexKey::from_bytes(b.to_vec())
    }
    use crate::model::{Csn, Dn};

    #[test]
    fn entries_dn_children_indexes_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert!(matches!(
            Store::open(dir.path(), &StoreOptions::default()),
            Err(StoreError::Locked(_))
        ));
        let mut w = store.write().unwrap();
        let id = w.next_id().unwrap();
        assert_eq!(id, 1);
        let mut e = Entry::new(Dn::parse("dc=x").unwrap());
        e.set("dc", vec![b"x".to_vec()], Csn::ZERO);
        w.put_entry(id, &e).unwrap();
        w.put_dn(&DnKey::from_bytes(b"dc=x\0".to_vec()), id)
            .unwrap();
        w.put_dn(&DnKey::from_bytes(b"dc=x\0ou=a\0".to_vec()), 2)
            .unwrap();
        w.put_dn(&DnKey::from_bytes(b"dc=xy\0".to_vec()), 3)
            .unwrap();
        w.link_child(id, 2).unwrap();
        w.index_add(&ik(b"uid\0=bob"), 7).unwrap();
        w.index_add(&ik(b"uid\0=bob"), 5).unwrap();
        w.commit().unwrap();
        let r = store.read().unwrap();
        assert_eq!(r.entry(1).unwrap().unwrap(), e);
        assert_eq!(
            r.subtree_ids(&DnKey::from_bytes(b"dc=x\0".to_vec()))
                .unwrap(),
            vec![1, 2]
        );
        assert_eq!(r.children(1).unwrap(), vec![2]);
        assert!(r.has_children(1).unwrap() && !r.has_children(2).unwrap());
        assert_eq!(r.index_ids(&ik(b"uid\0=bob")).unwrap(), vec![5, 7]);
        assert_eq!(r.index_prefix_ids(&ik(b"uid\0=b")).unwrap(), vec![5, 7]);
        drop(r);
        let mut w = store.write().unwrap();
        w.index_del(&ik(b"uid\0=bob"), 5).unwrap();
        w.unlink_child(1, 2).unwrap();
        w.abort();
        let mut w = store.write().unwrap();
        let mut child = w.nested().unwrap();
        child.index_add(&ik(b"uid\0=eve"), 9).unwrap();
        child.commit().unwrap();
        let mut child = w.nested().unwrap();
        child.index_add(&ik(b"uid\0=mallory"), 10).unwrap();
        child.abort();
        w.commit().unwrap();
        let r = store.read().unwrap();
        assert_eq!(r.index_ids(&ik(b"uid\0=eve")).unwrap(), vec![9]);
        assert!(r.index_ids(&ik(b"uid\0=mallory")).unwrap().is_empty());
        assert_eq!(r.index_ids(&ik(b"uid\0=bob")).unwrap(), vec![5, 7]);
        assert_eq!(r.children(1).unwrap(), vec![2]);
    }
}
