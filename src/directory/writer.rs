//! The single writer thread. LMDB has one writer at a time and each commit
//! costs an fsync, so operations that arrive while a commit is in flight are
//! applied together in the next transaction, each in its own nested
//! transaction (a failing one is rolled back alone), and acknowledged only
//! once the shared commit is durable.

use super::{time, Core, DirError, DirResult, Identity};
use crate::model::WriteOp;
use crate::model::{ChangeRecord, Entry};
use crate::repl::core::ruv::Ruv;
use crate::repl::core::HlcClock;
use crate::store::{DnKey, IndexBuffer, StoreError, WriteTxn};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Largest number of jobs committed together.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An LDAP client: access checks, no operational attributes accepted.
    Client,
    /// Offline import: operational attributes from the LDIF are kept.
    Import,
    /// A replication peer: values arrive with their state.
    Replication,
    /// An RFC 4533 provider (syncrepl consumer): entryUUID and the
    /// creator/modifier attributes are the provider's, values as sent.
    Syncrepl,
}

/// What the writer thread does for one job.
pub(crate) enum Work {
    /// A client (or import) operation.
    Op {
        who: Identity,
        op: WriteOp,
        origin: Origin,
    },
    /// A client operation with the assertion, pre-read or post-read
    /// controls (directory/controls.rs); what they read goes to `out`.
    Controlled {
        who: Identity,
        op: WriteOp,
        controls: super::controls::EntryControls,
        out: Arc<Mutex<super::controls::EntryReads>>,
    },
    /// Changes from a supplier, applied together (all or none).
    Replicated {
        suffix_key: DnKey,
        records: Vec<ChangeRecord>,
    },
    /// Total init: empty the suffix and adopt the supplier's generation.
    TotalBegin {
        suffix_key: DnKey,
        generation: String,
        /// Entries will come with their replication state.
        with_states: bool,
    },
    TotalEntries {
        entries: Vec<crate::repl::core::wire::InitEntry>,
    },
    TotalEnd {
        suffix_key: DnKey,
        ruv: Ruv,
        /// The supplier's retirements (protocol version 2).
        retired: Option<crate::repl::core::retire::Retired>,
    },
    /// Catch-up from entry state: entries and tombstones to merge.
    CatchUpEntries {
        entries: Vec<Entry>,
        supplier_ruv: Ruv,
    },
    /// Catch-up: the supplier's live entryUUIDs within a range.
    CatchUpPresent {
        suffix_key: DnKey,
        range: ([u8; 16], [u8; 16]),
        uuids: Vec<[u8; 16]>,
        supplier_ruv: Ruv,
    },
    CatchUpEnd {
        suffix_key: DnKey,
        supplier_ruv: Ruv,
    },
    /// One step of tombstone purge and changelog trimming; also saves the
    /// consumers' acknowledged RUVs that bound the trimming.
    Housekeep {
        suffix_key: DnKey,
        cutoff: crate::model::Csn,
        needed: Vec<Ruv>,
        consumer_ruvs: Vec<(String, Ruv)>,
        report: Arc<Mutex<super::trim::Housekeeping>>,
    },
    /// Replica ID retirement (directory/repl/retire.rs).
    Retire(super::repl::retire::RetireWork),
    /// Metadata records written as given (agreement histories).
    PutMeta { items: Vec<(String, Vec<u8>)> },
    /// What an RFC 4533 provider sent (directory/repl/syncrepl.rs), with
    /// the cookie that covers it (empty: forgotten) and the consumer
    /// entry's status attributes.
    Syncrepl {
        changes: Vec<super::repl::syncrepl::SyncChange>,
        /// Operational attributes named in the consumer's `attrs=`.
        managed: Vec<String>,
        cookie: Option<(String, Option<Vec<u8>>)>,
        status: (crate::model::Dn, Vec<(String, Vec<u8>)>),
        out: Arc<Mutex<super::repl::syncrepl::SyncOutcome>>,
    },
}

struct Job {
    work: Work,
    reply: oneshot::Sender<DirResult<()>>,
}

pub(super) struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

fn stopped() -> DirError {
    DirError::Busy("the writer has stopped (server shutting down)".into())
}

impl WriterHandle {
    fn send(&self, work: Work) -> DirResult<oneshot::Receiver<DirResult<()>>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { work, reply }).map_err(|_| stopped())?;
        Ok(rx)
    }

    pub(super) async fn submit_work(&self, work: Work) -> DirResult<()> {
        self.send(work)?.await.map_err(|_| stopped())?
    }

    pub(super) fn submit_blocking(&self, work: Work) -> DirResult<()> {
        self.send(work)?.blocking_recv().map_err(|_| stopped())?
    }
}

pub(super) fn start(core: Arc<Core>, csn: Arc<Mutex<HlcClock>>) -> WriterHandle {
    let (tx, rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("ferrodir-writer".into())
        .spawn(move || run(&core, &csn, &rx));
    if let Err(e) = spawned {
        // Without a writer every write fails with Busy; reads still work.
        tracing::error!("cannot start the writer thread: {e}");
    }
    WriterHandle { tx }
}

fn run(core: &Core, csn: &Mutex<HlcClock>, rx: &mpsc::Receiver<Job>) {
    // Index postings of a total init in progress, kept from TotalBegin to
    // TotalEnd (see store::bulk).
    let mut bulk: Option<IndexBuffer> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = commit_batch(core, csn, &batch, &mut bulk);
        core.after_commit();
        for (job, result) in batch.into_iter().zip(results) {
            // The client may have gone away; its result is then simply dropped.
            let _ = job.reply.send(result);
        }
    }
}

fn commit_batch(
    core: &Core,
    csn: &Mutex<HlcClock>,
    batch: &[Job],
    bulk: &mut Option<IndexBuffer>,
) -> Vec<DirResult<()>> {
    let failed_all = |msg: String| -> Vec<DirResult<()>> {
        batch
            .iter()
            .map(|_| {
                Err(DirError::Store(StoreError::Io(std::io::Error::other(
                    msg.clone(),
                ))))
            })
            .collect()
    };
    let mut txn = match core.store.write() {
        Ok(t) => t,
        Err(e) => return failed_all(format!("cannot start a write transaction: {e}")),
    };
    let before = txn.next_id().map(|n| n.saturating_sub(1));
    // A cn=schema change puts its schema in force at once, for the jobs
    // after it; a failed commit puts this one back.
    let schema_before = core.schema();
    // A buffer written in this transaction, kept until the commit succeeds.
    let mut written = None;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        results.push(run_job(core, csn, &mut txn, &job.work, bulk, &mut written));
    }
    match txn.commit() {
        Ok(()) => results,
        Err(e) => {
            core.set_schema(schema_before);
            if written.is_some() {
                *bulk = written;
            }
            match (bulk.as_mut(), before) {
                (Some(b), Ok(id)) => b.discard_after(id),
                (Some(_), Err(_)) => *bulk = None,
                _ => {}
            }
            failed_all(format!("commit failed: {e}"))
        }
    }
}

/// One job in its own nested transaction (a failing one is rolled back
/// alone). Total-init entries leave their index keys in `bulk`; any other
/// job first writes what `bulk` holds, so it runs against a complete index.
fn run_job(
    core: &Core,
    csn: &Mutex<HlcClock>,
    txn: &mut WriteTxn<'_>,
    work: &Work,
    bulk: &mut Option<IndexBuffer>,
    written: &mut Option<IndexBuffer>,
) -> DirResult<()> {
    let mut child = txn.nested()?;
    let watermark = child.next_id()?.saturating_sub(1);
    let schema_before = core.schema();
    let deferring = matches!(work, Work::TotalEntries { .. }) && bulk.is_some();
    let flushing = match bulk {
        Some(b) if !deferring || b.is_full() => bulk.take(),
        _ => None,
    };
    if deferring {
        child.defer_index(bulk.take().unwrap_or_default());
    }
    let mut outcome = (|| -> DirResult<()> {
        if let Some(buf) = &flushing {
            child.write_index_buffer(buf)?;
        }
        run_work(core, csn, &mut child, work)
    })();
    let deferred = child.take_deferred();
    if outcome.is_ok() {
        outcome = child.commit().map_err(DirError::from);
    } else {
        child.abort();
    }
    match outcome {
        Ok(()) => {
            *bulk = match work {
                Work::TotalBegin { .. } => Some(IndexBuffer::new()),
                _ => deferred,
            };
            if written.is_none() {
                *written = flushing;
            }
            Ok(())
        }
        Err(e) => {
            core.set_schema(schema_before);
            *bulk = match (flushing, deferred) {
                (Some(buf), _) => Some(buf),
                (None, Some(mut buf)) => {
                    buf.discard_after(watermark);
                    Some(buf)
                }
                (None, None) => None,
            };
            Err(e)
        }
    }
}

fn run_work(
    core: &Core,
    csn: &Mutex<HlcClock>,
    txn: &mut WriteTxn<'_>,
    work: &Work,
) -> DirResult<()> {
    let now = time::now_secs();
    let generator = || {
        csn.lock()
            .map_err(|_| DirError::Busy("CSN generator unavailable".into()))
    };
    match work {
        Work::Op { who, op, origin } => {
            for remote in super::subschema::replicated_csns(op) {
                if let Some(skew) = generator()?.observe(remote, now) {
                    core.note_clock_skew(skew);
                }
            }
            let stamp = {
                let mut g = generator()?;
                g.set_rid(core.local_rid());
                g.now(now)
            };
            core.apply(txn, who, op, stamp, *origin)
        }
        Work::Controlled {
            who,
            op,
            controls,
            out,
        } => {
            for remote in super::subschema::replicated_csns(op) {
                if let Some(skew) = generator()?.observe(remote, now) {
                    core.note_clock_skew(skew);
                }
            }
            let stamp = {
                let mut g = generator()?;
                g.set_rid(core.local_rid());
                g.now(now)
            };
            core.apply_controlled(txn, who, op, stamp, controls, out)
        }
        Work::Replicated {
            suffix_key,
            records,
        } => {
            core.apply_replicated_batch(txn, suffix_key, records, |rec| {
                // Skew is reported, never refused: the clock moves past
                // the remote CSN so local changes still sort after it.
                if let Some(skew) = generator()?.observe(rec.csn, now) {
                    core.note_clock_skew(skew);
                }
                Ok(())
            })?;
            Ok(())
        }
        Work::TotalBegin {
            suffix_key,
            generation,
            with_states,
        } => core.total_begin(txn, suffix_key, generation, *with_states),
        Work::TotalEntries { entries } => {
            for e in entries {
                if super::tombstone::is_tombstone(&e.entry) {
                    core.insert_tombstone(txn, &e.entry)?;
                } else {
                    core.insert_raw(txn, &e.entry)?;
                }
                core.adopt_repl_state(txn, &e.entry, e.state.as_deref())?;
            }
            Ok(())
        }
        Work::TotalEnd {
            suffix_key,
            ruv,
            retired,
        } => {
            if let Some(skew) = generator()?.observe(ruv.max_csn(), now) {
                core.note_clock_skew(skew);
            }
            core.total_end(txn, suffix_key, ruv, retired.as_ref())
        }
        Work::CatchUpEntries {
            entries,
            supplier_ruv,
        } => core.catch_up_entries(txn, entries, supplier_ruv),
        Work::CatchUpPresent {
            suffix_key,
            range,
            uuids,
            supplier_ruv,
        } => core
            .catch_up_present(txn, suffix_key, range.0, range.1, uuids, supplier_ruv)
            .map(|removed| {
                if removed > 0 {
                    tracing::info!("catch-up: removed {removed} entries deleted on the supplier");
                }
            }),
        Work::CatchUpEnd {
            suffix_key,
            supplier_ruv,
        } => {
            if let Some(skew) = generator()?.observe(supplier_ruv.max_csn(), now) {
                core.note_clock_skew(skew);
            }
            core.catch_up_end(txn, suffix_key, supplier_ruv)
        }
        Work::Housekeep {
            suffix_key,
            cutoff,
            needed,
            consumer_ruvs,
            report,
        } => {
            for (agreement, ruv) in consumer_ruvs {
                txn.put_meta(&super::trim::consumer_ruv_key(agreement), &ruv.encode())?;
            }
            let done = core.housekeep(txn, suffix_key, *cutoff, needed)?;
            if let Ok(mut r) = report.lock() {
                *r = done;
            }
            Ok(())
        }
        Work::Retire(w) => core.run_retire_work(txn, w),
        Work::PutMeta { items } => {
            for (k, v) in items {
                txn.put_meta(k, v)?;
            }
            Ok(())
        }
        Work::Syncrepl {
            changes,
            managed,
            cookie,
            status,
            out,
        } => {
            let mut next = || -> DirResult<crate::model::Csn> {
                let mut g = generator()?;
                g.set_rid(core.local_rid());
                Ok(g.now(time::now_secs()))
            };
            let mut outcome = super::repl::syncrepl::SyncOutcome::default();
            core.sync_apply(txn, changes, managed, &mut next, &mut outcome)?;
            match cookie {
                Some((key, Some(c))) => txn.put_meta(key, c)?,
                Some((key, None)) => txn.delete_meta(key)?,
                None => {}
            }
            core.put_sync_status(txn, &status.0, &status.1)?;
            if let Ok(mut o) = out.lock() {
                *o = outcome;
            }
            Ok(())
        }
    }
}
