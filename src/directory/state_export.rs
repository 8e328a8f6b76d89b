//! `ferrodir export --replication-state`: every entry of every suffix with
//! its full replication state, in LDIF that two replicas' exports can be
//! compared with (the counterpart of 389-ds's `db2ldif -r`).
//!
//! Per suffix, in this order:
//!
//! - a comment line `# suffix: <dn>`;
//! - the RUV as 389-ds writes it, an entry
//!   `nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff,<suffix>` with
//!   `nsds50ruv: {replicageneration} <generation>` and one
//!   `nsds50ruv: {replica <rid>} <min CSN> <max CSN>` per replica ID
//!   (omitted when the suffix is not replicated);
//! - every entry, live ones and tombstones, ordered by entryUUID, each with
//!   `ferrodirEntryState: live|tombstone|conflict` followed by its
//!   attributes as `<name>;vucsn-<CSN>: <value>` (the CSN of the change that
//!   gave the value), attributes ordered by name and values by bytes, and
//!   `ferrodirReplStateDigest: <sha-256>` of the entry's full replication
//!   state (deleted values and their CSNs included) once states are built.
//!
//! What agrees between converged replicas: every entry (live or tombstone)
//! with the same values and value CSNs, the replica generation, and for
//! each replica ID the max CSN. The min CSNs are local: they depend on the
//! changelog trimming and on what a replica held when it was initialised,
//! so comparisons ignore them. A tombstone's purge is local too (it happens
//! after the purge delay on each replica's own clock).

use std::io::Write;

use super::tombstone::is_tombstone;
use super::{DirResult, Directory};
use crate::model::{Dn, Entry};
use crate::store::replstate::ReplStateRead;
use crate::store::{DnKey, StoreRead};

/// Name of the pseudo-attribute carrying an entry's replication state.
pub const STATE_ATTR: &str = "ferrodirEntryState";
/// Name of the pseudo-attribute carrying the digest of an entry's full
/// replication state (present once the states are built).
pub const STATE_DIGEST_ATTR: &str = "ferrodirReplStateDigest";
/// entryUUID-like name of the RUV entry (389-ds's).
pub const RUV_UNIQUE_ID: &str = "ffffffff-ffffffff-ffffffff-ffffffff";

/// Writes the replication state of every suffix of `dir` to `out`.
pub fn write_replication_state(dir: &Directory, out: &mut dyn Write) -> std::io::Result<()> {
    let text = replication_state(dir).map_err(std::io::Error::other)?;
    out.write_all(text.as_bytes())
}

/// The replication state of every suffix of `dir` as text (one read snapshot).
pub fn replication_state(dir: &Directory) -> DirResult<String> {
    let txn = dir.core.store.read()?;
    let mut text = String::new();
    for suffix in &dir.config().suffixes {
        let key = dir.core.dn_key(suffix);
        text.push_str(&format!("# suffix: {suffix}\n\n"));
        if dir.core.replicated_suffix_of(&key).as_ref() == Some(&key) {
            write_ruv(dir, &txn, suffix, &key, &mut text)?;
        }
        let mut entries: Vec<(String, Entry)> = Vec::new();
        for (_, id) in txn.subtree_keys(&key)? {
            if let Some(e) = txn.entry(id)? {
                entries.push((uuid_key(&e), e));
            }
        }
        for t in dir.core.tombstones(&txn, &key)? {
            entries.push((uuid_key(&t), t));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let built = dir.core.repl_states_built(&txn)?;
        for (_, e) in &entries {
            let digest = if built { state_digest(&txn, e)? } else { None };
            write_entry_state(e, digest, &mut text);
        }
    }
    Ok(text)
}

fn write_ruv(
    dir: &Directory,
    txn: &dyn StoreRead,
    suffix: &Dn,
    key: &DnKey,
    text: &mut String,
) -> DirResult<()> {
    let ruv = dir.core.load_ruv(txn, key)?;
    let mut attrs = vec![
        ("objectClass".to_string(), b"top".to_vec()),
        ("objectClass".to_string(), b"nsTombstone".to_vec()),
        ("objectClass".to_string(), b"extensibleObject".to_vec()),
        (
            "nsds50ruv".to_string(),
            format!("{{replicageneration}} {}", ruv.generation).into_bytes(),
        ),
    ];
    for (rid, e) in &ruv.replicas {
        attrs.push((
            "nsds50ruv".to_string(),
            format!("{{replica {rid}}} {} {}", e.min, e.max).into_bytes(),
        ));
    }
    crate::ldif::write_entry(
        text,
        &format!("nsuniqueid={RUV_UNIQUE_ID},{suffix}"),
        &attrs,
    );
    text.push('\n');
    Ok(())
}

/// Sort key: the entryUUID, or the DN for an entry without one (which
/// replication could not identify: it shows up as a difference).
fn uuid_key(e: &Entry) -> String {
    match e.first_str("entryUUID") {
        Some(u) => u.to_ascii_lowercase(),
        None => format!("~no-entryuuid:{}", e.dn),
    }
}

fn state_of(e: &Entry) -> &'static str {
    if is_tombstone(e) {
        "tombstone"
    } else if e.has("nsds5ReplConflict") {
        "conflict"
    } else {
        "live"
    }
}

/// SHA-256 of the entry's replication state in the conflict core's
/// canonical encoding (deleted values and their CSNs included).
fn state_digest(txn: &dyn StoreRead, e: &Entry) -> DirResult<Option<String>> {
    use sha2::{Digest, Sha256};
    let Ok(uuid) = crate::directory::write::entry_uuid(e) else {
        return Ok(None);
    };
    Ok(txn.repl_state(&uuid)?.map(|bytes| {
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }))
}

fn write_entry_state(e: &Entry, digest: Option<String>, text: &mut String) {
    let mut values: Vec<(String, &[u8], String)> = e
        .attrs
        .iter()
        .flat_map(|a| {
            a.values.iter().map(|v| {
                (
                    a.name.to_ascii_lowercase(),
                    v.bytes.as_slice(),
                    format!("{};vucsn-{}", a.name, v.csn),
                )
            })
        })
        .collect();
    values.sort();
    let mut attrs = vec![(STATE_ATTR.to_string(), state_of(e).as_bytes().to_vec())];
    if let Some(d) = digest {
        attrs.push((STATE_DIGEST_ATTR.to_string(), d.into_bytes()));
    }
    attrs.extend(values.into_iter().map(|(_, v, name)| (name, v.to_vec())));
    crate::ldif::write_entry(text, &e.dn.to_string(), &attrs);
    text.push('\n');
}
