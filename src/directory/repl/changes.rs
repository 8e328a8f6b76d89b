//! What a supplier reads: the changelog records a consumer's RUV does not
//! cover.

use super::*;

impl Core {
    /// Changelog records the consumer lacks, in CSN order, at most `limit`.
    /// None when the changelog no longer reaches back far enough.
    pub(crate) fn changes_for(
        &self,
        suffix_key: &[u8],
        consumer: &Ruv,
        limit: usize,
    ) -> DirResult<Option<Vec<ChangeRecord>>> {
        let txn = self.store.read()?;
        if !self.changelog_reaches(&txn, suffix_key, consumer)? {
            return Ok(None);
        }
        let supplier = self.load_ruv(&txn, suffix_key)?;
        let start = supplier
            .replicas
            .keys()
            .map(|rid| consumer.max_for(*rid).unwrap_or(Csn::ZERO))
            .min()
            .unwrap_or(Csn::ZERO);
        let mut out = Vec::new();
        let mut from = start.to_bytes().to_vec();
        loop {
            let batch = txn.changelog_from(&from, 512)?;
            if batch.is_empty() {
                break;
            }
            let last_key = batch.last().map(|(k, _)| k.clone()).unwrap_or_default();
            for (_, v) in &batch {
                let rec = decode_change(v).map_err(crate::store::StoreError::from)?;
                if consumer.covers(rec.csn) {
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
            let mut next = last_key;
            next.push(0);
            from = next;
        }
        Ok(Some(out))
    }
}
