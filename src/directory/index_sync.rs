//! The index set in force, recorded in the store: when the configuration
//! adds or drops an index, the next start writes or removes that index's
//! keys for every entry, so an index never answers from keys written only
//! after it was configured (refint and memberOf rely on the equality
//! indexes finding old entries too).

use super::tombstone::is_tombstone;
use super::{index, DirResult, Directory, IndexConfig, IndexKinds};
use crate::store::StoreRead;
use std::collections::{BTreeMap, HashMap};

const META_INDEXES: &str = "index_config";

/// The default index set of releases before manager and seeAlso were
/// indexed: what a data directory without a record was built with when
/// its configuration had no `[indexes]`.
const LEGACY_DEFAULT_EXTRA: &[&str] = &["manager", "seealso"];

fn encode(cfg: &IndexConfig) -> String {
    let sorted: BTreeMap<&String, &IndexKinds> = cfg.attrs.iter().collect();
    sorted
        .into_iter()
        .map(|(a, k)| {
            format!(
                "{a}={}{}{}\n",
                u8::from(k.eq),
                u8::from(k.pres),
                u8::from(k.sub)
            )
        })
        .collect()
}

fn decode(text: &str) -> IndexConfig {
    let mut attrs = HashMap::new();
    for line in text.lines() {
        let Some((attr, bits)) = line.split_once('=') else {
            continue;
        };
        let b: Vec<bool> = bits.bytes().map(|c| c == b'1').collect();
        attrs.insert(
            attr.to_string(),
            IndexKinds {
                eq: b.first().copied().unwrap_or(false),
                pres: b.get(1).copied().unwrap_or(false),
                sub: b.get(2).copied().unwrap_or(false),
            },
        );
    }
    IndexConfig { attrs }
}

/// The kinds `a` has and `b` lacks, per attribute (empty kinds left out).
fn minus(a: &IndexConfig, b: &IndexConfig) -> IndexConfig {
    let mut attrs = HashMap::new();
    for (name, ka) in &a.attrs {
        let kb = b.attrs.get(name).copied().unwrap_or_default();
        let k = IndexKinds {
            eq: ka.eq && !kb.eq,
            pres: ka.pres && !kb.pres,
            sub: ka.sub && !kb.sub,
        };
        if k.eq || k.pres || k.sub {
            attrs.insert(name.clone(), k);
        }
    }
    IndexConfig { attrs }
}

impl Directory {
    /// Brings the index keys in step with the configured index set (see
    /// the module documentation). `fresh`: the store held no entry before
    /// this start; `default_set`: the configuration has no `[indexes]`.
    /// Call before any write is submitted.
    pub fn sync_indexes(&self, fresh: bool, default_set: bool) -> DirResult<()> {
        let core = &self.core;
        let current = &core.cfg.indexes;
        let recorded = core
            .store
            .read()?
            .meta(META_INDEXES)?
            .map(|b| decode(&String::from_utf8_lossy(&b)));
        let before = match recorded {
            Some(r) => r,
            None if fresh || !default_set => current.clone(),
            None => {
                let mut legacy = current.clone();
                for a in LEGACY_DEFAULT_EXTRA {
                    legacy.attrs.remove(*a);
                }
                legacy
            }
        };
        let added = minus(current, &before);
        let dropped = minus(&before, current);
        let mut txn = core.store.write()?;
        if !added.attrs.is_empty() || !dropped.attrs.is_empty() {
            let started = std::time::Instant::now();
            let schema = core.schema();
            let mut ids = Vec::new();
            for key in &core.suffix_keys {
                ids.extend(txn.subtree_ids(key)?);
            }
            for &id in &ids {
                let Some(entry) = txn.entry(id)?.filter(|e| !is_tombstone(e)) else {
                    continue;
                };
                for k in index::entry_keys_sorted(&schema, &dropped, &entry) {
                    txn.index_del(&k, id)?;
                }
                for k in index::entry_keys_sorted(&schema, &added, &entry) {
                    txn.index_add(&k, id)?;
                }
            }
            let names = |c: &IndexConfig| {
                let mut v: Vec<&str> = c.attrs.keys().map(String::as_str).collect();
                v.sort_unstable();
                v.join(", ")
            };
            tracing::info!(
                entries = ids.len(),
                added = %names(&added),
                dropped = %names(&dropped),
                ms = started.elapsed().as_millis() as u64,
                "index set changed: index keys written and removed"
            );
        }
        txn.put_meta(META_INDEXES, encode(current).as_bytes())?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_differences_are_per_kind() {
        let a = IndexConfig::from_specs(Some(
            [
                ("uid".to_string(), "eq,sub".to_string()),
                ("manager".to_string(), "eq".to_string()),
            ]
            .iter()
            .map(|(k, v)| (k, v)),
        ))
        .unwrap();
        let b = IndexConfig::from_specs(Some(
            [("uid".to_string(), "eq".to_string())]
                .iter()
                .map(|(k, v)| (k, v)),
        ))
        .unwrap();
        assert_eq!(decode(&encode(&a)).attrs, a.attrs);
        let added = minus(&a, &b);
        assert_eq!(added.attrs.len(), 2);
        assert!(added.attrs["uid"].sub && !added.attrs["uid"].eq);
        assert!(added.attrs["manager"].eq);
        assert!(minus(&b, &a).attrs.is_empty());
    }
}
