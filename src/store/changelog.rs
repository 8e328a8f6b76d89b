//! The changelog: records keyed by CSN, stored in the change-record
//! encoding of model/codec.rs (version byte first), and the one way to read
//! them in order.

use super::{Result, StoreRead};
use crate::model::codec::DecodeError;
pub use crate::model::codec::{decode_change, encode_change};
use crate::model::{ChangeRecord, Csn};

/// Records read per page: a page is read in one go, so the caller may
/// delete what it read (the writer's transaction) before asking for more.
const PAGE: usize = 512;

/// One stored changelog record.
pub struct ChangelogRecord {
    pub key: Vec<u8>,
    /// The key as a CSN (keys are CSNs; `None` only for a damaged key).
    pub csn: Option<Csn>,
    pub record: std::result::Result<ChangeRecord, DecodeError>,
}

/// A position in the changelog, in CSN order; each page read moves it on.
pub struct ChangelogCursor {
    from: Vec<u8>,
}

impl ChangelogCursor {
    /// Reads records with CSNs from `csn` on (inclusive).
    pub fn at(csn: Csn) -> ChangelogCursor {
        ChangelogCursor {
            from: csn.to_bytes().to_vec(),
        }
    }

    /// The next records in key order, empty at the end of the changelog.
    pub fn next_page(&mut self, txn: &(impl StoreRead + ?Sized)) -> Result<Vec<ChangelogRecord>> {
        let raw = txn.changelog_from(&self.from, PAGE)?;
        if let Some((last, _)) = raw.last() {
            self.from.clone_from(last);
            self.from.push(0);
        }
        Ok(raw
            .into_iter()
            .map(|(key, value)| ChangelogRecord {
                csn: Csn::from_bytes(&key),
                record: decode_change(&value),
                key,
            })
            .collect())
    }
}
