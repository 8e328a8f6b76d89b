//! Payloads of ferrodir's replication extended operations. OIDs live under
//! the project's 2.25 arc (ITU-T X.667, no registration needed). Every
//! payload starts with the protocol version so peers of different releases
//! can tell what they are talking to.

use super::ruv::Ruv;
use crate::model::codec::{
    decode_change, decode_entry, encode_change, encode_entry, put_bytes, put_varint, Cursor,
    DecodeError,
};
use crate::model::{ChangeRecord, Entry};

pub const PROTOCOL_VERSION: u8 = 1;
pub use crate::model::oid::REPL_CHANGES as OID_CHANGES;
pub use crate::model::oid::REPL_START as OID_START;
pub use crate::model::oid::REPL_TOTAL_END as OID_TOTAL_END;
pub use crate::model::oid::REPL_TOTAL_ENTRIES as OID_TOTAL_ENTRIES;

/// All replication OIDs (for supportedExtension).
pub const ALL_OIDS: [&str; 4] = [OID_START, OID_CHANGES, OID_TOTAL_ENTRIES, OID_TOTAL_END];

fn check_version(c: &mut Cursor<'_>) -> Result<(), DecodeError> {
    match c.byte()? {
        PROTOCOL_VERSION => Ok(()),
        _ => Err(DecodeError("unsupported replication protocol version")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub suffix: String,
    pub supplier_rid: u16,
    pub generation: String,
    /// Begin a total init (the consumer empties the suffix first).
    pub total: bool,
    /// Where writes to a read-only consumer should be referred to.
    pub supplier_url: String,
}

impl StartRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        put_bytes(&mut out, self.suffix.as_bytes());
        out.extend_from_slice(&self.supplier_rid.to_be_bytes());
        put_bytes(&mut out, self.generation.as_bytes());
        out.push(u8::from(self.total));
        put_bytes(&mut out, self.supplier_url.as_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        check_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let supplier_rid = <[u8; 2]>::try_from(c.take(2)?)
            .map(u16::from_be_bytes)
            .map_err(|_| DecodeError("truncated"))?;
        let generation = c.text()?.to_string();
        let total = c.byte()? != 0;
        let supplier_url = c.text()?.to_string();
        Ok(StartRequest {
            suffix,
            supplier_rid,
            generation,
            total,
            supplier_url,
        })
    }
}

/// Response of start, changes and total-end: the consumer's RUV.
pub fn encode_ruv_response(ruv: &Ruv) -> Vec<u8> {
    let mut out = vec![PROTOCOL_VERSION];
    put_bytes(&mut out, &ruv.encode());
    out
}

pub fn decode_ruv_response(b: &[u8]) -> Result<Ruv, DecodeError> {
    let mut c = Cursor::new(b);
    check_version(&mut c)?;
    Ruv::decode(c.bytes()?).map_err(|_| DecodeError("bad RUV"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesRequest {
    pub suffix: String,
    pub records: Vec<ChangeRecord>,
}

impl ChangesRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_varint(&mut out, self.records.len() as u64);
        for r in &self.records {
            put_bytes(&mut out, &encode_change(r));
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        check_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let n = c.varint()? as usize;
        let mut records = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            records.push(decode_change(c.bytes()?)?);
        }
        Ok(ChangesRequest { suffix, records })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalEntriesRequest {
    pub suffix: String,
    pub entries: Vec<Entry>,
}

impl TotalEntriesRequest {
    pub fn encode(&self) -> Vec<u8> {
        let encoded: Vec<Vec<u8>> = self.entries.iter().map(encode_entry).collect();
        encode_total_entries(&self.suffix, &encoded)
    }

    /// The payloads carrying `entries` in order, each at most `max_bytes`
    /// unless one entry alone is larger. Every entry is encoded once, however
    /// the page is split.
    pub fn encode_split(suffix: &str, entries: &[Entry], max_bytes: usize) -> Vec<Vec<u8>> {
        let encoded: Vec<Vec<u8>> = entries.iter().map(encode_entry).collect();
        // Version, suffix and a count: an upper bound of the fixed part.
        let fixed = 1 + 10 + suffix.len() + 10;
        let mut out = Vec::new();
        let mut page: Vec<Vec<u8>> = Vec::new();
        let mut size = fixed;
        for e in encoded {
            let add = e.len() + 10;
            if !page.is_empty() && size + add > max_bytes {
                out.push(encode_total_entries(suffix, &page));
                page.clear();
                size = fixed;
            }
            size += add;
            page.push(e);
        }
        if !page.is_empty() {
            out.push(encode_total_entries(suffix, &page));
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        check_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let n = c.varint()? as usize;
        let mut entries = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            entries.push(decode_entry(c.bytes()?)?);
        }
        Ok(TotalEntriesRequest { suffix, entries })
    }
}

/// A TOTAL_ENTRIES payload from entries already in the store's encoding.
fn encode_total_entries(suffix: &str, encoded: &[Vec<u8>]) -> Vec<u8> {
    let body: usize = encoded.iter().map(|e| e.len() + 5).sum();
    let mut out = Vec::with_capacity(1 + suffix.len() + 10 + body);
    out.push(PROTOCOL_VERSION);
    put_bytes(&mut out, suffix.as_bytes());
    put_varint(&mut out, encoded.len() as u64);
    for e in encoded {
        put_bytes(&mut out, e);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalEndRequest {
    pub suffix: String,
    pub ruv: Ruv,
}

impl TotalEndRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_bytes(&mut out, &self.ruv.encode());
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        check_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let ruv = Ruv::decode(c.bytes()?).map_err(|_| DecodeError("bad RUV"))?;
        Ok(TotalEndRequest { suffix, ruv })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, Csn, Dn};

    #[test]
    fn payloads_round_trip_and_reject_other_versions() {
        let start = StartRequest {
            suffix: "dc=example,dc=com".into(),
            supplier_rid: 7,
            generation: "g1".into(),
            total: true,
            supplier_url: "ldap://127.0.0.1:3389".into(),
        };
        assert_eq!(StartRequest::decode(&start.encode()).unwrap(), start);
        let mut bad = start.encode();
        bad[0] = 99;
        assert!(StartRequest::decode(&bad).is_err());
        let mut ruv = Ruv::new("g1");
        ruv.update(Csn::new(5, 0, 7, 0));
        assert_eq!(
            decode_ruv_response(&encode_ruv_response(&ruv)).unwrap(),
            ruv
        );
        let req = ChangesRequest {
            suffix: "dc=x".into(),
            records: vec![ChangeRecord {
                csn: Csn::new(5, 0, 7, 0),
                uuid: [1; 16],
                dn: Dn::parse("cn=a,dc=x").unwrap(),
                modifier: String::new(),
                change: Change::Delete,
            }],
        };
        assert_eq!(ChangesRequest::decode(&req.encode()).unwrap(), req);
        let end = TotalEndRequest {
            suffix: "dc=x".into(),
            ruv,
        };
        assert_eq!(TotalEndRequest::decode(&end.encode()).unwrap(), end);
        let entries = TotalEntriesRequest {
            suffix: "dc=x".into(),
            entries: vec![Entry::new(Dn::parse("dc=x").unwrap())],
        };
        assert_eq!(
            TotalEntriesRequest::decode(&entries.encode()).unwrap(),
            entries
        );
    }

    #[test]
    fn split_pages_keep_every_entry_in_order_within_the_size() {
        let entries: Vec<Entry> = (0..50)
            .map(|i| {
                let mut e = Entry::new(Dn::parse(&format!("cn=e{i},dc=x")).unwrap());
                e.set(
                    "description",
                    vec![vec![b'v'; 100 + i]],
                    Csn::new(1, 0, 1, 0),
                );
                e
            })
            .collect();
        let whole = TotalEntriesRequest::encode_split("dc=x", &entries, 1 << 20);
        assert_eq!(whole.len(), 1);
        let parts = TotalEntriesRequest::encode_split("dc=x", &entries, 1000);
        assert!(parts.len() > 5, "{}", parts.len());
        let mut back = Vec::new();
        for p in &parts {
            assert!(p.len() <= 1000, "{}", p.len());
            let req = TotalEntriesRequest::decode(p).unwrap();
            assert_eq!(req.suffix, "dc=x");
            back.extend(req.entries);
        }
        assert_eq!(back, entries);
        // One entry larger than the limit still goes, alone.
        let big = TotalEntriesRequest::encode_split("dc=x", &entries[..3], 10);
        assert_eq!(big.len(), 3);
        assert!(TotalEntriesRequest::encode_split("dc=x", &[], 10).is_empty());
    }
}
