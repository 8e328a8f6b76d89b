//! Applying a change received from a supplier, with its original CSN and
//! entryUUID: the conflict core decides what it does (urp.rs), whatever it
//! conflicts with, so one change never stops the stream behind it.

use super::*;

impl Core {
    /// Applies one change received from a supplier. Already-held changes are
    /// skipped, so a resent batch after a crash duplicates nothing.
    pub(crate) fn apply_replicated(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        rec: &ChangeRecord,
        retired: &crate::repl::core::retire::Retired,
    ) -> DirResult<bool> {
        let ruv = self.load_ruv(txn, suffix_key)?;
        if ruv.covers(rec.csn) || !self.admit_replicated(retired, rec) {
            return Ok(false);
        }
        let outcome = self.resolve_change(txn, suffix_key, rec)?;
        tracing::debug!(dn = %rec.dn, csn = %rec.csn, resolution = ?outcome.resolution, effects = outcome.effects.len(), "replicated change applied");
        txn.put_changelog(&rec.csn.to_bytes(), &encode_change(rec))?;
        let mut ruv = ruv;
        ruv.update(rec.csn);
        self.store_ruv(txn, suffix_key, &ruv)?;
        self.changes_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }
}
