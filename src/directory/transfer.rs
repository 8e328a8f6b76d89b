//! LDIF in and out of a whole data directory: the offline import (adds in
//! large transactions through `bulk_add`) and the export (one read
//! snapshot, so a running server's data is exported consistently).

use super::repl::import_states::{self, ImportStates};
use super::write::{PreparedAdd, Stamp};
use super::writer::Origin;
use super::{time, DirError, DirResult, Directory, Identity, META_LAST_CSN};
use crate::ldif::{self, LdifRecord};
use crate::model::{Change, Csn, Dn, WriteOp};
use crate::repl::core::EntryState;
use crate::store::{IndexBuffer, StoreRead, WriteTxn};
use std::io::{BufRead, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

/// Entries whose replication states one transaction writes when they are
/// built after an offline import: bounds the transaction's dirty pages.
const IMPORT_STATE_CHUNK: usize = 20_000;

/// How many records the preparing thread may be ahead of the writing one.
const PREPARED_AHEAD: usize = 512;

/// Why an import stopped, with the line of the record it stopped at.
#[derive(Debug, thiserror::Error)]
#[error("import stopped at the record starting on line {line}: {source}\n(entries before it were imported in committed batches)")]
pub struct ImportError {
    pub line: usize,
    pub source: DirError,
}

/// An LDIF content record as the add it stands for; attribute values of
/// one name (in any case) are gathered into one attribute.
fn add_of(source: &str, line: usize, rec: LdifRecord) -> DirResult<WriteOp> {
    match rec {
        LdifRecord::Entry { dn, attrs } => {
            let dn =
                Dn::parse(&dn).map_err(|e| DirError::InvalidDn(format!("{source}:{line}: {e}")))?;
            let mut grouped: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
            for (name, value) in attrs {
                match grouped
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                {
                    Some((_, vals)) => vals.push(value),
                    None => grouped.push((name, vec![value])),
                }
            }
            Ok(WriteOp::Add { dn, attrs: grouped })
        }
        LdifRecord::Change { .. } => Err(DirError::Protocol(format!(
            "{source}:{line}: change records cannot be imported; apply them with ldapmodify"
        ))),
    }
}

impl Directory {
    /// Imports the entries of an LDIF stream (offline: the directory must
    /// have been opened for import). `source` names the stream in messages.
    pub fn import_ldif<R: BufRead + Send>(
        &self,
        reader: R,
        source: &str,
        batch: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, ImportError> {
        // A record the reader cannot make out is reported at the line of
        // the last one it could (its message names its own line).
        let mut last_line = 0usize;
        let records = ldif::LdifReader::new(reader).map(move |r| match r {
            Ok((line, rec)) => {
                last_line = line;
                (line, add_of(source, line, rec))
            }
            Err(e) => (last_line, Err(DirError::Protocol(format!("{source}: {e}")))),
        });
        let result = self.bulk_add(records, batch.max(1), progress);
        let synced = self.store().sync().map_err(|e| ImportError {
            line: 0,
            source: e.into(),
        });
        result.and_then(|n| synced.map(|_| n))
    }

    /// Bulk load: applies adds in large transactions without the writer
    /// thread (offline import). Returns the number of entries added.
    ///
    /// One thread parses and prepares the records (schema checks, index
    /// keys, replication states: everything that needs no store) while
    /// this one writes them, so an import uses two cores.
    ///
    /// Index keys are gathered in memory and written in key order at the
    /// end (store::bulk); until then the store is marked as holding an
    /// unfinished bulk load, so a process killed in between leaves a data
    /// directory that refuses to open rather than one with missing index keys.
    fn bulk_add<I>(
        &self,
        records: I,
        batch: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, ImportError>
    where
        I: Iterator<Item = (usize, DirResult<WriteOp>)> + Send,
    {
        let at_start = |source: DirError| ImportError { line: 0, source };
        let root = Identity {
            dn: Some(self.core.cfg.root_dn.clone()),
            norm: self.core.root_norm.clone(),
            root: true,
        };
        let mut txn = self.core.store.write().map_err(|e| at_start(e.into()))?;
        txn.begin_bulk_load().map_err(|e| at_start(e.into()))?;
        txn.commit().map_err(|e| at_start(e.into()))?;
        let txn = self.core.store.write().map_err(|e| at_start(e.into()))?;
        let states = self.core.import_states(&txn).map_err(at_start)?;
        let (prepared_tx, prepared_rx) = sync_channel::<Prepared>(PREPARED_AHEAD);
        let (spent_tx, spent_rx) = channel::<Vec<Spent>>();
        let core = &self.core;
        let csn = &self.csn;
        let preparer_root = root.clone();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let Ok(mut gen) = csn.lock() else {
                    let failed = Err(DirError::Busy("CSN generator poisoned".into()));
                    let _ = prepared_tx.send(Prepared::failed(0, failed));
                    return;
                };
                for (line, op) in records {
                    // What the writer is done with is freed here, where it
                    // was allocated: freeing another thread's blocks costs
                    // the allocator more on both threads.
                    while let Ok(spent) = spent_rx.try_recv() {
                        drop(spent);
                    }
                    let item = match op {
                        Ok(op) => {
                            core.prepare_import(&preparer_root, op, gen.now(time::now_secs()), line)
                        }
                        Err(e) => Prepared::failed(line, Err(e)),
                    };
                    let failed = item.op.is_err();
                    // The writer hung up: it stopped at an error of its own.
                    if prepared_tx.send(item).is_err() || failed {
                        return;
                    }
                }
            });
            self.write_prepared(txn, &root, prepared_rx, spent_tx, states, batch, progress)
        })
    }

    /// The writing half of [`Directory::bulk_add`]: returns when the
    /// records run out or one fails (dropping `prepared`, which stops the
    /// preparing thread).
    #[allow(clippy::too_many_arguments)]
    fn write_prepared(
        &self,
        mut txn: WriteTxn<'static>,
        root: &Identity,
        prepared: Receiver<Prepared>,
        spent_tx: Sender<Vec<Spent>>,
        mut states: ImportStates,
        batch: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, ImportError> {
        let core = &self.core;
        let at = |line: usize| move |source: DirError| ImportError { line, source };
        // Ids up to here are committed: postings above it belong to an aborted batch.
        let mut committed = txn
            .next_id()
            .map_err(|e| at(0)(e.into()))?
            .saturating_sub(1);
        txn.defer_index(IndexBuffer::new());
        let mut n = 0u64;
        let mut line = 0usize;
        let mut last_csn = None;
        let mut failure = None;
        let mut spent: Vec<Spent> = Vec::with_capacity(SPENT_BATCH);
        for item in prepared {
            line = item.line;
            let Prepared {
                csn,
                stamp,
                op,
                mut state,
                ..
            } = item;
            let applied = op.and_then(|(op, mut add)| {
                let stamp = stamp.unwrap_or_else(|| core.stamp(root, csn, Origin::Import));
                let written = core
                    .apply_stamped(&mut txn, root, &op, add.as_mut(), stamp)
                    .and_then(|change| {
                        if let Some(change) = &change {
                            states.added(core, &mut txn, change, state.as_mut())?;
                        }
                        Ok(change)
                    });
                let (written, change) = match written {
                    Ok(change) => (Ok(()), change),
                    Err(e) => (Err(e), None),
                };
                spent.push((op, add, change, state.take()));
                written
            });
            if spent.len() >= SPENT_BATCH {
                // A preparing thread that has finished frees nothing more.
                let _ = spent_tx.send(std::mem::take(&mut spent));
            }
            if let Err(e) = applied {
                failure = Some(at(line)(e));
                break;
            }
            n += 1;
            last_csn = Some(csn);
            if n.is_multiple_of(batch as u64) {
                (txn, committed) = self.commit_batch(txn, csn).map_err(at(line))?;
                progress(n);
            }
        }
        let kept = match failure {
            // The failed batch is dropped; the batches before it stay, indexed.
            Some(_) => n - n % batch as u64,
            None => n,
        };
        self.finish_bulk(txn, failure.is_some(), committed, kept, last_csn, states)
            .map_err(at(line))?;
        progress(kept);
        match failure {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Commits a batch of an import; the next batch's transaction and the
    /// last id committed.
    fn commit_batch(
        &self,
        mut txn: WriteTxn<'static>,
        csn: Csn,
    ) -> DirResult<(WriteTxn<'static>, u64)> {
        let mut buf = txn.take_deferred().unwrap_or_default();
        if buf.is_full() {
            txn.write_index_buffer(&buf)?;
            buf.clear();
        }
        txn.put_meta(META_LAST_CSN, &csn.to_bytes())?;
        txn.commit()?;
        let mut txn = self.core.store.write()?;
        let committed = txn.next_id()?.saturating_sub(1);
        txn.defer_index(buf);
        Ok((txn, committed))
    }

    /// The end of an import that `kept` entries: its index keys written,
    /// the bulk-load mark taken off, the replication states finished.
    fn finish_bulk(
        &self,
        mut txn: WriteTxn<'static>,
        failed: bool,
        committed: u64,
        kept: u64,
        last_csn: Option<Csn>,
        states: ImportStates,
    ) -> DirResult<()> {
        let core = &self.core;
        let mut buf = txn.take_deferred().unwrap_or_default();
        if failed {
            txn.abort();
            buf.discard_after(committed);
            txn = core.store.write()?;
        } else if let Some(csn) = last_csn {
            txn.put_meta(META_LAST_CSN, &csn.to_bytes())?;
        }
        if let (true, Some(csn)) = (kept > 0, last_csn) {
            core.note_offline_changes(&mut txn, csn)?;
        }
        txn.write_index_buffer(&buf)?;
        txn.end_bulk_load()?;
        txn.commit()?;
        // The entries' replication states are written with them or built
        // here, offline, rather than by the server's first write after the
        // import (which would hold every write, and the start, for as long
        // as it takes).
        if kept > 0 {
            states.finish(core, IMPORT_STATE_CHUNK)?;
        }
        Ok(())
    }

    /// Writes every entry of every suffix as LDIF, parents before children,
    /// from one read snapshot.
    pub fn export_ldif(&self, out: &mut dyn Write) -> DirResult<()> {
        let txn = self.store().read()?;
        let mut text = String::with_capacity(4096);
        let mut first = true;
        for s in &self.config().suffixes {
            for (_, id) in txn.subtree_keys(&self.core.dn_key(s))? {
                let Some(entry) = txn.entry(id)? else {
                    continue;
                };
                text.clear();
                if !first {
                    text.push('\n');
                }
                first = false;
                let attrs: Vec<(String, Vec<u8>)> = entry
                    .attrs
                    .iter()
                    .flat_map(|a| a.values.iter().map(|v| (a.name.clone(), v.bytes.clone())))
                    .collect();
                ldif::write_entry(&mut text, &entry.dn.to_string(), &attrs);
                out.write_all(text.as_bytes())
                    .map_err(|e| DirError::Store(crate::store::StoreError::Io(e)))?;
            }
        }
        out.flush()
            .map_err(|e| DirError::Store(crate::store::StoreError::Io(e)))?;
        Ok(())
    }
}

/// What the writer hands back to the preparing thread to free, in batches
/// of [`SPENT_BATCH`]: a record's operation, the rest of its prepared add,
/// its change and its state.
type Spent = (
    WriteOp,
    Option<PreparedAdd>,
    Option<Change>,
    Option<EntryState>,
);

const SPENT_BATCH: usize = 64;

/// One import record as the preparing thread hands it to the writer.
struct Prepared {
    /// The line the record starts on.
    line: usize,
    csn: Csn,
    /// What the entry was prepared with (the writer makes it otherwise).
    stamp: Option<Stamp>,
    /// The operation, with its add prepared when it could be (when not,
    /// the writer's own add finds and reports what is wrong, in the order
    /// a client's add would); or why the record cannot be imported.
    op: DirResult<(WriteOp, Option<PreparedAdd>)>,
    /// The entry's replication state, parent left out, for a replicated suffix.
    state: Option<EntryState>,
}

impl Prepared {
    fn failed(line: usize, op: DirResult<(WriteOp, Option<PreparedAdd>)>) -> Prepared {
        Prepared {
            line,
            csn: Csn::ZERO,
            stamp: None,
            op,
            state: None,
        }
    }
}

impl super::Core {
    /// What of an import's record can be done without the store.
    fn prepare_import(&self, root: &Identity, op: WriteOp, csn: Csn, line: usize) -> Prepared {
        let mut prepared = Prepared {
            line,
            csn,
            stamp: None,
            op: Ok((op, None)),
            state: None,
        };
        let Ok((WriteOp::Add { dn, attrs }, add)) = &mut prepared.op else {
            return prepared;
        };
        let key = self.dn_key(dn);
        // cn=schema and cn=config have writes of their own (apply's).
        if super::subschema::is_subschema_dn(dn) || self.replicated_suffix_of(&key).is_none() {
            return prepared;
        }
        let stamp = self.stamp(root, csn, Origin::Import);
        if let Ok(mut p) = self.prepare_add(dn, key, attrs, &stamp) {
            let mut known = p.take_value_keys();
            prepared.state =
                import_states::state_of_added(&self.schema(), p.entry(), Some(&mut known));
            *add = Some(p);
            prepared.stamp = Some(stamp);
        }
        prepared
    }
}

#[cfg(test)]
mod tests {
    use super::ImportError;
    use crate::directory::test_support::temp_directory;
    use crate::directory::{DirError, Directory};
    use crate::model::Dn;
    use crate::store::StoreRead;

    const SUFFIX: &str = "dc=example,dc=com";

    /// Lines 1, 5 and 9 start the suffix, ou=people and a user; `bad`
    /// starts on line 14, one more user after it.
    fn ldif_with(bad: &str) -> String {
        format!(
            "dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n\n\
             dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: uid=a,ou=people,dc=example,dc=com\nobjectClass: account\nuid: a\n\n\
             # the record the import stops at\n\
             {bad}\n\
             dn: uid=z,ou=people,dc=example,dc=com\nobjectClass: account\nuid: z\n"
        )
    }

    fn exists(dir: &Directory, dn: &str) -> bool {
        let txn = dir.core.store.read().unwrap();
        txn.id_by_dn(&dir.core.dn_key(&Dn::parse(dn).unwrap()))
            .unwrap()
            .is_some()
    }

    #[test]
    fn an_import_stops_at_the_line_of_the_record_whose_parent_is_missing() {
        let (_tmp, dir) = temp_directory(SUFFIX, Default::default());
        let text =
            ldif_with("dn: uid=b,ou=nowhere,dc=example,dc=com\nobjectClass: account\nuid: b\n");
        let e = dir
            .import_ldif(text.as_bytes(), "t.ldif", 2, &mut |_| {})
            .expect_err("a missing parent stops the import");
        assert_eq!(e.line, 14, "{e}");
        assert!(matches!(e.source, DirError::NoSuchObject { .. }), "{e}");
        // Batches of 2: the first (suffix, ou) stays, the failed one goes.
        assert!(exists(&dir, "ou=people,dc=example,dc=com"));
        assert!(!exists(&dir, "uid=a,ou=people,dc=example,dc=com"));
        assert!(!exists(&dir, "uid=z,ou=people,dc=example,dc=com"));
    }

    /// Imports `ldif_with(bad)` in batches of 10, which must stop at `bad`.
    fn stopped_at(bad: &str) -> (tempfile::TempDir, Directory, ImportError) {
        let (tmp, dir) = temp_directory(SUFFIX, Default::default());
        let e = dir
            .import_ldif(ldif_with(bad).as_bytes(), "t.ldif", 10, &mut |_| {})
            .expect_err("the import stops at the bad record");
        assert_eq!(e.line, 14, "{e}");
        (tmp, dir, e)
    }

    #[test]
    fn an_import_stops_at_the_line_of_the_record_the_schema_refuses() {
        let (_tmp, dir, e) = stopped_at(
            "dn: uid=b,ou=people,dc=example,dc=com\nobjectClass: account\nuid: b\nnoSuchType: x\n",
        );
        assert!(e.to_string().contains("noSuchType"), "{e}");
        assert!(!exists(&dir, "uid=a,ou=people,dc=example,dc=com"));
    }

    #[test]
    fn an_existing_entry_is_reported_as_existing_whatever_it_carries() {
        // uid=a again, with a type the schema does not know: the name is
        // checked first, as for a client's add.
        let (_tmp, _dir, e) = stopped_at(
            "dn: uid=a,ou=people,dc=example,dc=com\nobjectClass: account\nuid: a\nnoSuchType: x\n",
        );
        assert!(matches!(e.source, DirError::AlreadyExists(_)), "{e}");
    }
}
