//! Applying a change received from a supplier, with its original CSN and
//! entryUUID: the conflict core decides what it does (urp.rs), whatever it
//! conflicts with, so one change never stops the stream behind it.

use super::*;

impl Core {
    /// Applies a batch of changes received from a supplier, in the
    /// caller's transaction. Already-held changes are skipped, so a resent
    /// batch after a crash duplicates nothing. The RUV is read once and
    /// written once: it moves in the same transaction as the changes it
    /// covers, so a crash keeps both or neither.
    pub(crate) fn apply_replicated_batch(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        records: &[ChangeRecord],
        mut observe: impl FnMut(&ChangeRecord) -> DirResult<()>,
    ) -> DirResult<usize> {
        // Retirements do not change within a batch: read once.
        let retired = self.load_retired(txn, suffix_key)?;
        let mut ruv = self.load_ruv(txn, suffix_key)?;
        let mut memo = super::urp::BatchMemo::default();
        let mut applied = 0;
        for rec in records {
            observe(rec)?;
            if self.apply_replicated(txn, suffix_key, rec, &retired, &mut ruv, &mut memo)? {
                applied += 1;
            }
        }
        if applied > 0 {
            self.store_ruv(txn, suffix_key, &ruv)?;
            self.changes_pending
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(applied)
    }

    /// Applies one change received from a supplier unless `ruv` covers it,
    /// and moves `ruv` past it (the caller stores it).
    fn apply_replicated(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        rec: &ChangeRecord,
        retired: &crate::repl::core::retire::Retired,
        ruv: &mut Ruv,
        memo: &mut super::urp::BatchMemo,
    ) -> DirResult<bool> {
        if ruv.covers(rec.csn) || !self.admit_replicated(retired, rec) {
            return Ok(false);
        }
        let outcome = self.resolve_change_in(txn, suffix_key, rec, memo)?;
        tracing::debug!(dn = %rec.dn, csn = %rec.csn, resolution = ?outcome.resolution, effects = outcome.effects.len(), "replicated change applied");
        txn.put_changelog(&rec.csn.to_bytes(), &encode_change(rec))?;
        ruv.update(rec.csn);
        Ok(true)
    }
}
