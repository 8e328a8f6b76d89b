//! The start-up report of stored userPassword values that can never verify
//! (schemes ferrodir does not implement, malformed values, cost beyond the
//! bounds). The write path refuses such values, but data written before it
//! did, or received by replication, may hold them; without this report they
//! would only show up as failed binds.
//!
//! No index covers userPassword, so the scan reads every entry. It runs on
//! its own thread, off the request path, in pages of `PAGE` entries with a
//! fresh read snapshot each (a snapshot held for minutes would keep LMDB
//! from reusing pages under a busy writer), and stops at a deadline.

use super::{DirResult, Directory};
use crate::auth::password;
use crate::store::StoreRead;
use std::collections::BTreeMap;
use std::time::Instant;

/// Entries read per snapshot.
const PAGE: usize = 1_000;

/// What one scheme's values look like in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeFinding {
    /// Values (not entries) with this scheme.
    pub count: u64,
    /// The first entry found holding one, for the administrator to look at.
    pub example_dn: String,
    /// Why such values cannot verify.
    pub reason: String,
}

/// The outcome of `Directory::scan_unverifiable_passwords`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordScan {
    /// Scheme label (`{CRYPT} $7$`, `{FOO}`) to what was found.
    pub by_scheme: BTreeMap<String, SchemeFinding>,
    /// Entries read.
    pub entries: u64,
    /// False when the deadline stopped the scan before the end.
    pub complete: bool,
}

impl Directory {
    /// Reads every entry of every suffix and collects the userPassword
    /// values `password::check_stored` refuses; stops at `deadline`.
    pub fn scan_unverifiable_passwords(&self, deadline: Instant) -> DirResult<PasswordScan> {
        let mut scan = PasswordScan {
            complete: true,
            ..PasswordScan::default()
        };
        for suffix in &self.config().suffixes {
            let prefix = self.core.dn_key(suffix);
            let mut after = None;
            loop {
                if Instant::now() >= deadline {
                    scan.complete = false;
                    return Ok(scan);
                }
                let txn = self.store().read()?;
                let page = txn.subtree_keys_after(&prefix, after.as_ref(), PAGE)?;
                for (_, id) in &page {
                    let Some(entry) = txn.entry(*id)? else {
                        continue;
                    };
                    scan.entries += 1;
                    let Some(attr) = entry.get("userPassword") else {
                        continue;
                    };
                    for v in &attr.values {
                        if let Err(e) = password::check_stored(&v.bytes) {
                            let f =
                                scan.by_scheme
                                    .entry(e.scheme)
                                    .or_insert_with(|| SchemeFinding {
                                        count: 0,
                                        example_dn: entry.dn.to_string(),
                                        reason: e.reason,
                                    });
                            f.count += 1;
                        }
                    }
                }
                let full = page.len() == PAGE;
                match page.into_iter().last() {
                    Some((key, _)) if full => after = Some(key),
                    _ => break,
                }
            }
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::DirError;
    use crate::model::Dn;
    use std::time::Duration;

    const SUFFIX: &str = "dc=example,dc=com";

    use crate::directory::test_support::add_as_root as add;

    fn person(dir: &Directory, uid: &str, pw: &str) -> DirResult<()> {
        add(
            dir,
            &format!("uid={uid},{SUFFIX}"),
            &[
                ("objectClass", "inetOrgPerson"),
                ("uid", uid),
                ("cn", uid),
                ("sn", uid),
                ("userPassword", pw),
            ],
        )
    }

    /// Overwrites a stored value behind the write path's back, as data
    /// written before it refused such values (or received by replication).
    fn plant(dir: &Directory, uid: &str, value: &str) {
        let key = dir
            .core
            .dn_key(&Dn::parse(&format!("uid={uid},{SUFFIX}")).unwrap());
        let mut txn = dir.store().write().unwrap();
        let id = txn.id_by_dn(&key).unwrap().unwrap();
        let mut entry = txn.entry(id).unwrap().unwrap();
        entry.get_mut("userPassword").unwrap().values[0].bytes = value.as_bytes().to_vec();
        txn.put_entry(id, &entry).unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn refused_on_write_and_reported_when_stored() {
        let (_tmp, dir) =
            crate::directory::test_support::temp_directory(SUFFIX, Default::default());
        add(
            &dir,
            SUFFIX,
            &[("objectClass", "domain"), ("dc", "example")],
        )
        .unwrap();
        // The root DN may load hashes the server verifies ...
        person(&dir, "md5", "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//").unwrap();
        // ... and not ones it cannot: the message names the scheme.
        for (v, scheme) in [
            ("{FOO}xyz", "{FOO}"),
            ("{CRYPT}$7$CU..../....abc$def", "{CRYPT} $7$"),
        ] {
            match person(&dir, "bad", v) {
                Err(DirError::UnwillingToPerform(m)) => assert!(m.contains(scheme), "{m}"),
                other => panic!("{v}: {other:?}"),
            }
        }
        for uid in ["des1", "des2", "foo", "fine"] {
            person(&dir, uid, "clear-text password").unwrap();
        }
        plant(&dir, "des1", "{CRYPT}abNANd1rDfiNc");
        plant(&dir, "des2", "{CRYPT}abNANd1rDfiNc");
        plant(&dir, "foo", "{FOO}xyz");

        let scan = dir
            .scan_unverifiable_passwords(Instant::now() + Duration::from_secs(60))
            .unwrap();
        assert!(scan.complete);
        assert_eq!(scan.entries, 6);
        let schemes: Vec<&String> = scan.by_scheme.keys().collect();
        assert_eq!(schemes, ["{CRYPT} traditional DES", "{FOO}"]);
        let des = &scan.by_scheme["{CRYPT} traditional DES"];
        assert_eq!(des.count, 2);
        assert_eq!(des.example_dn, format!("uid=des1,{SUFFIX}"));
        assert_eq!(scan.by_scheme["{FOO}"].count, 1);

        // A deadline already passed stops before reading anything.
        let cut = dir.scan_unverifiable_passwords(Instant::now()).unwrap();
        assert!(!cut.complete);
        assert_eq!(cut.entries, 0);
    }
}
