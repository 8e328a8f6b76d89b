//! The single writer thread. LMDB has one writer at a time and each commit
//! costs an fsync, so operations that arrive while a commit is in flight are
//! applied together in the next transaction, each in its own nested
//! transaction (a failing one is rolled back alone), and acknowledged only
//! once the shared commit is durable.

use super::write::WriteOp;
use super::{time, Core, DirError, DirResult, Identity};
use crate::repl::csn::CsnGenerator;
use crate::store::StoreError;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Largest number of operations committed together.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An LDAP client: access checks, no operational attributes accepted.
    Client,
    /// Offline import: operational attributes from the LDIF are kept.
    Import,
    /// A replication peer: values arrive with their state.
    Replication,
}

struct Job {
    who: Identity,
    op: WriteOp,
    origin: Origin,
    reply: oneshot::Sender<DirResult<()>>,
}

pub(super) struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

fn stopped() -> DirError {
    DirError::Busy("the writer has stopped (server shutting down)".into())
}

impl WriterHandle {
    fn send(
        &self,
        who: Identity,
        op: WriteOp,
        origin: Origin,
    ) -> DirResult<oneshot::Receiver<DirResult<()>>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                who,
                op,
                origin,
                reply,
            })
            .map_err(|_| stopped())?;
        Ok(rx)
    }

    pub(super) async fn submit(&self, who: Identity, op: WriteOp, origin: Origin) -> DirResult<()> {
        self.send(who, op, origin)?.await.map_err(|_| stopped())?
    }

    pub(super) fn submit_blocking(
        &self,
        who: Identity,
        op: WriteOp,
        origin: Origin,
    ) -> DirResult<()> {
        self.send(who, op, origin)?
            .blocking_recv()
            .map_err(|_| stopped())?
    }
}

pub(super) fn start(core: Arc<Core>, csn: Arc<Mutex<CsnGenerator>>) -> WriterHandle {
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

fn run(core: &Core, csn: &Mutex<CsnGenerator>, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = commit_batch(core, csn, &batch);
        for (job, result) in batch.into_iter().zip(results) {
            // The client may have gone away; its result is then simply dropped.
            let _ = job.reply.send(result);
        }
    }
}

fn commit_batch(core: &Core, csn: &Mutex<CsnGenerator>, batch: &[Job]) -> Vec<DirResult<()>> {
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
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let stamp = match csn.lock() {
            Ok(mut g) => g.next(time::now_secs()),
            Err(_) => {
                results.push(Err(DirError::Busy("CSN generator unavailable".into())));
                continue;
            }
        };
        let result = match txn.nested() {
            Ok(mut child) => match core.apply(&mut child, &job.who, &job.op, stamp, job.origin) {
                Ok(()) => child.commit().map_err(DirError::from),
                Err(e) => {
                    child.abort();
                    Err(e)
                }
            },
            Err(e) => Err(e.into()),
        };
        results.push(result);
    }
    match txn.commit() {
        Ok(()) => results,
        Err(e) => failed_all(format!("commit failed: {e}")),
    }
}
