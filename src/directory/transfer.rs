//! LDIF in and out of a whole data directory: the offline import (adds in
//! large transactions through `bulk_add`) and the export (one read
//! snapshot, so a running server's data is exported consistently).

use super::{DirError, DirResult, Directory};
use crate::ldif::{self, LdifRecord};
use crate::model::{Dn, WriteOp};
use crate::store::StoreRead;
use std::io::{BufRead, Write};

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
    pub fn import_ldif<R: BufRead>(
        &self,
        reader: R,
        source: &str,
        batch: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, ImportError> {
        let mut current_line = 0usize;
        let ops = ldif::LdifReader::new(reader).map(|r| {
            let (line, rec) = r.map_err(|e| DirError::Protocol(format!("{source}: {e}")))?;
            current_line = line;
            add_of(source, line, rec)
        });
        let result = self.bulk_add(ops, batch.max(1), progress);
        let synced = self.store().sync().map_err(DirError::from);
        match result.and_then(|n| synced.map(|_| n)) {
            Ok(n) => Ok(n),
            Err(source) => Err(ImportError {
                line: current_line,
                source,
            }),
        }
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
