//! What a supplier reads: the changelog records a consumer's RUV does not
//! cover.

use super::*;
use crate::store::changelog::ChangelogCursor;

impl Core {
    /// Changelog records the consumer lacks, in CSN order, at most `limit`.
    /// None when the changelog no longer reaches back far enough.
    pub(crate) fn changes_for(
        &self,
        suffix_key: &DnKey,
        consumer: &Ruv,
        limit: usize,
    ) -> DirResult<Option<Vec<ChangeRecord>>> {
        let txn = self.store.read()?;
        if !self.changelog_reaches(&txn, suffix_key, consumer)? {
            return Ok(None);
        }
        let supplier = self.load_ruv(&txn, suffix_key)?;
        // Changes of a retired replica ID do not travel any more.
        let retired = self.load_retired(&txn, suffix_key)?;
        let start = supplier.scan_start_for(consumer);
        let mut out = Vec::new();
        let mut cursor = ChangelogCursor::at(start);
        loop {
            let page = cursor.next_page(&txn)?;
            if page.is_empty() {
                break;
            }
            for stored in page {
                let rec = stored.record.map_err(crate::store::StoreError::from)?;
                if consumer.covers(rec.csn)
                    || retired.admit(rec.csn) != crate::repl::core::retire::Admission::Apply
                {
                    continue;
                }
                if !self.dn_key(&rec.dn).starts_with(suffix_key) {
                    continue;
                }
                out.push(rec);
                if out.len() >= limit {
                    return Ok(Some(out));
                }
            }
        }
        Ok(Some(out))
    }

    /// How many changelog records of the suffix `consumer` lacks (counted
    /// up to `cap`) and the oldest of them: what an agreement's status
    /// shows, from the RUVs of both sides, whether or not a session runs.
    /// None when the changelog no longer reaches back far enough.
    pub(crate) fn pending_changes(
        &self,
        txn: &dyn StoreRead,
        suffix_key: &DnKey,
        consumer: &Ruv,
        cap: u64,
    ) -> DirResult<Option<(u64, Option<Csn>)>> {
        if !self.changelog_reaches(txn, suffix_key, consumer)? {
            return Ok(None);
        }
        let supplier = self.load_ruv(txn, suffix_key)?;
        if !consumer.is_behind(&supplier) {
            return Ok(Some((0, None)));
        }
        let retired = self.load_retired(txn, suffix_key)?;
        let start = supplier.scan_start_for(consumer);
        let mut count = 0u64;
        let mut oldest = None;
        let mut cursor = ChangelogCursor::at(start);
        loop {
            let page = cursor.next_page(txn)?;
            if page.is_empty() {
                return Ok(Some((count, oldest)));
            }
            for stored in page {
                let Some(csn) = stored.csn else { continue };
                if consumer.covers(csn)
                    || retired.admit(csn) != crate::repl::core::retire::Admission::Apply
                {
                    continue;
                }
                if !self.in_suffix(&stored, suffix_key, false) {
                    continue;
                }
                oldest = Some(oldest.map_or(csn, |o: Csn| o.min(csn)));
                count += 1;
                if count >= cap {
                    return Ok(Some((count, oldest)));
                }
            }
        }
    }

    /// Whether a changelog record belongs to the suffix (`unreadable`:
    /// what to say of a record that does not decode).
    pub(crate) fn in_suffix(
        &self,
        stored: &crate::store::changelog::ChangelogRecord,
        suffix_key: &DnKey,
        unreadable: bool,
    ) -> bool {
        match &stored.record {
            Ok(rec) => self.dn_key(&rec.dn).starts_with(suffix_key),
            Err(_) => unreadable,
        }
    }

    /// Removes the suffix's changelog records whose CSN (None: a key that
    /// does not parse) `doomed` names, at most `limit`; returns how many
    /// went. A record whose body does not decode counts as in the suffix.
    pub(crate) fn remove_changelog_where(
        &self,
        txn: &mut WriteTxn<'_>,
        suffix_key: &DnKey,
        doomed: impl Fn(Option<Csn>) -> bool,
        limit: usize,
    ) -> DirResult<usize> {
        let mut removed = 0;
        let mut cursor = ChangelogCursor::at(Csn::ZERO);
        loop {
            let page = cursor.next_page(&*txn)?;
            if page.is_empty() {
                return Ok(removed);
            }
            for stored in page {
                if !doomed(stored.csn) || !self.in_suffix(&stored, suffix_key, true) {
                    continue;
                }
                txn.delete_changelog(&stored.key)?;
                removed += 1;
                if removed >= limit {
                    return Ok(removed);
                }
            }
        }
    }
}
