//! The supplier's side of a total init: every entry of a suffix and the RUV
//! read from ONE LMDB read transaction, so the consumer receives a state
//! that existed at one instant. Pages read from separate snapshots could
//! miss an entry moved between two of them, send one twice, or hold changes
//! the RUV sent at the end does not cover (they would be applied again by
//! the incremental session that follows).
//!
//! The transaction lives on a dedicated thread for the whole walk (LMDB
//! ties a read transaction to the thread that uses it, and a walk of a big
//! suffix must not block an async worker); pages go to the async sender
//! through a bounded channel, so the next pages are read and encoded while
//! the current one is on the wire, and a slow consumer holds back the reader
//! instead of filling memory.

use super::{DirError, DirResult};
use crate::model::Entry;
use crate::repl::core::retire::Retired;
use crate::repl::core::ruv::Ruv;
use crate::repl::core::wire::InitEntry;
use crate::store::replstate::ReplStateRead;
use crate::store::DnKey;
use crate::store::StoreRead;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the snapshot holds, known before the first page is sent.
#[derive(Debug)]
pub struct SnapshotHead {
    /// The RUV of the snapshot: exactly the changes the entries reflect.
    pub ruv: Ruv,
    /// Live entries of the suffix in the snapshot.
    pub total: u64,
    /// Entries come with their replication state (asked for, and the
    /// states are in step with the entries in the snapshot).
    pub states: bool,
    /// The retirements as of the snapshot.
    pub retired: Retired,
}

/// One page, already turned into what the sender needs by the caller's
/// `prepare` (run on the reader thread).
#[derive(Debug)]
pub struct SnapshotPage<T> {
    pub entries: u64,
    pub prepared: T,
}

/// Where the reader thread spent its time (for the init's log line).
#[derive(Debug, Default, Clone, Copy)]
pub struct ReaderTimes {
    pub read: Duration,
    pub prepare: Duration,
}

/// A running snapshot walk: its head, then pages until the channel closes.
/// Dropping it stops the reader (its next send fails) and ends the read
/// transaction.
pub struct InitSnapshot<T> {
    pub head: SnapshotHead,
    pub pages: mpsc::Receiver<DirResult<SnapshotPage<T>>>,
    times: std::thread::JoinHandle<ReaderTimes>,
}

impl<T> InitSnapshot<T> {
    /// The reader's timings, once every page was received.
    pub async fn finish(self) -> ReaderTimes {
        let InitSnapshot { pages, times, .. } = self;
        drop(pages);
        tokio::task::spawn_blocking(move || times.join().unwrap_or_default())
            .await
            .unwrap_or_default()
    }
}

impl super::Directory {
    /// Starts a snapshot walk of `suffix`: parents before children (DN key
    /// order puts an entry's key before every key below it), `page` entries
    /// per page, at most `depth` pages waiting. `prepare` turns a page into
    /// what is sent (the encoding, done off the async path). With
    /// `with_states`, each entry carries its replication state.
    pub async fn init_snapshot<T, F>(
        &self,
        suffix: &crate::model::Dn,
        page: usize,
        depth: usize,
        with_states: bool,
        prepare: F,
    ) -> DirResult<InitSnapshot<T>>
    where
        T: Send + 'static,
        F: FnMut(Vec<InitEntry>) -> T + Send + 'static,
    {
        let key = self.suffix_key_checked(suffix)?;
        let core = self.core.clone();
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = mpsc::channel(depth.max(1));
        let thread = std::thread::Builder::new()
            .name("ferrodir-init-reader".into())
            .spawn(move || {
                let mut times = ReaderTimes::default();
                let txn = match core.store.read() {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = head_tx.send(Err(DirError::from(e)));
                        return times;
                    }
                };
                let head = core.load_ruv(&txn, &key).and_then(|ruv| {
                    let total = txn.subtree_ids(&key)?.len() as u64;
                    let states = with_states && core.repl_states_built(&txn)?;
                    let retired = core.load_retired(&txn, &key)?;
                    Ok(SnapshotHead {
                        ruv,
                        total,
                        states,
                        retired,
                    })
                });
                let states = head.as_ref().is_ok_and(|h| h.states);
                let failed = head.is_err();
                if head_tx.send(head).is_err() || failed {
                    return times;
                }
                let mut outer = prepare;
                let mut prepare = |entries: Vec<Entry>| outer(with_state(&txn, entries, states));
                if walk_live(&txn, &key, page.max(1), &tx, &mut prepare, &mut times) {
                    walk_tombstones(&core, &txn, &key, page.max(1), &tx, &mut prepare);
                }
                times
            })
            .map_err(|e| DirError::Busy(format!("cannot start the init reader thread: {e}")))?;
        let head = head_rx.await.map_err(|_| {
            DirError::Busy("the init reader thread ended before reading the RUV".into())
        })??;
        Ok(InitSnapshot {
            head,
            pages: rx,
            times: thread,
        })
    }
}

/// The entries with their states when `states`, read in the snapshot.
fn with_state(txn: &dyn StoreRead, entries: Vec<Entry>, states: bool) -> Vec<InitEntry> {
    entries
        .into_iter()
        .map(|entry| {
            let state = if states {
                crate::directory::write::entry_uuid(&entry)
                    .ok()
                    .and_then(|u| txn.repl_state(&u).ok().flatten())
            } else {
                None
            };
            InitEntry { entry, state }
        })
        .collect()
}

/// The tombstones of the suffix, after the live entries and from the same
/// transaction, so the consumer absorbs late changes to them as the
/// supplier does. They do not count in the progress total.
fn walk_tombstones<T, F>(
    core: &super::Core,
    txn: &dyn StoreRead,
    suffix_key: &DnKey,
    page: usize,
    tx: &mpsc::Sender<DirResult<SnapshotPage<T>>>,
    prepare: &mut F,
) where
    F: FnMut(Vec<Entry>) -> T,
{
    let tombstones = match core.tombstones(txn, suffix_key) {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let mut rest = tombstones.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<Entry> = rest.by_ref().take(page).collect();
        let page = SnapshotPage {
            entries: 0,
            prepared: prepare(chunk),
        };
        if tx.blocking_send(Ok(page)).is_err() {
            return;
        }
    }
}

/// The live entries below (and including) `suffix_key`, in DN key order.
/// False when the sender gave up or reading failed.
fn walk_live<T, F>(
    txn: &dyn StoreRead,
    suffix_key: &DnKey,
    page: usize,
    tx: &mpsc::Sender<DirResult<SnapshotPage<T>>>,
    prepare: &mut F,
    times: &mut ReaderTimes,
) -> bool
where
    F: FnMut(Vec<Entry>) -> T,
{
    let mut after: Option<DnKey> = None;
    loop {
        let t_read = Instant::now();
        let read = read_page(txn, suffix_key, after.as_ref(), page);
        times.read += t_read.elapsed();
        let (entries, last) = match read {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return false;
            }
        };
        if !entries.is_empty() {
            let n = entries.len() as u64;
            let t_prep = Instant::now();
            let prepared = prepare(entries);
            times.prepare += t_prep.elapsed();
            let sent = tx.blocking_send(Ok(SnapshotPage {
                entries: n,
                prepared,
            }));
            if sent.is_err() {
                // The sender gave up (init aborted): stop reading.
                return false;
            }
        }
        match last {
            Some(k) => after = Some(k),
            None => return true,
        }
    }
}

/// Up to `limit` entries after the key `after`, and the key to continue
/// after (None when the subtree is exhausted).
fn read_page(
    txn: &dyn StoreRead,
    prefix: &DnKey,
    after: Option<&DnKey>,
    limit: usize,
) -> DirResult<(Vec<Entry>, Option<DnKey>)> {
    let keys = txn.subtree_keys_after(prefix, after, limit)?;
    let full = keys.len() >= limit;
    let mut out = Vec::with_capacity(keys.len());
    let mut last = None;
    for (k, id) in keys {
        if let Some(e) = txn.entry(id)? {
            out.push(e);
        }
        last = Some(k);
    }
    Ok((out, if full { last } else { None }))
}
