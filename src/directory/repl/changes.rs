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
        let start = supplier
            .replicas
            .keys()
            .map(|rid| consumer.max_for(*rid).unwrap_or(Csn::ZERO))
            .min()
            .unwrap_or(Csn::ZERO);
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
}
