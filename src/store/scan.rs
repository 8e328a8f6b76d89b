//! Range walks used by replication housekeeping (tombstone purge, catch-up):
//! metadata records under a prefix, and the entryUUID index in key order.

use super::{Result, StoreRead, WriteTxn};

/// Up to `limit` metadata records whose key starts with `prefix`, in key order.
pub fn meta_with_prefix(
    txn: &dyn StoreRead,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>> {
    let (t, d) = txn.parts();
    let mut out = Vec::new();
    for item in d.meta.prefix_iter(t, prefix)? {
        let (k, v) = item?;
        out.push((k.to_string(), v.to_vec()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Up to `limit` (entryUUID, id) pairs with a UUID at or above `from`, in UUID order.
pub fn uuids_from(
    txn: &dyn StoreRead,
    from: &[u8; 16],
    limit: usize,
) -> Result<Vec<([u8; 16], u64)>> {
    let (t, d) = txn.parts();
    let mut out = Vec::new();
    let range = (
        std::ops::Bound::Included(from.as_slice()),
        std::ops::Bound::Unbounded,
    );
    for item in d.uuid.range(t, &range)? {
        let (k, id) = item?;
        let Ok(uuid) = <[u8; 16]>::try_from(k) else {
            continue;
        };
        out.push((uuid, id));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

impl WriteTxn<'_> {
    pub fn delete_meta(&mut self, key: &str) -> Result<()> {
        self.dbs.meta.delete(&mut self.txn, key)?;
        Ok(())
    }
}
