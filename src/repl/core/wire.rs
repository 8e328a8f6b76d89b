//! Payloads of ferrodir's replication extended operations. OIDs live under
//! the project's 2.25 arc (ITU-T X.667, no registration needed). Every
//! payload starts with the protocol version so peers of different releases
//! can tell what they are talking to.
//!
//! Versions: 1 is what the first releases spoke (change records and
//! entries in the storage encoding of the time). 2 has its own encoding of
//! changes and entries ([`super::payload`]), independent of how a release
//! stores them, and adds the retired replica IDs to session starts and
//! answers and each entry's replication state to a total init. A supplier
//! starts with 2 and falls back to 1 when the consumer refuses it; a
//! consumer answers in the version it was asked in.

use super::payload;
use super::retire::Retired;
use super::ruv::Ruv;
use crate::model::codec::{
    decode_change, decode_entry, encode_change, encode_entry, put_bytes, put_varint, Cursor,
    DecodeError,
};
use crate::model::{Change, ChangeRecord, Csn, Entry};

/// The first protocol version (still spoken to older peers).
pub const PROTOCOL_V1: u8 = 1;
/// The newest protocol version this release speaks.
pub const PROTOCOL_VERSION: u8 = 2;
pub use crate::model::oid::REPL_CHANGES as OID_CHANGES;
pub use crate::model::oid::REPL_START as OID_START;
pub use crate::model::oid::REPL_TOTAL_END as OID_TOTAL_END;
pub use crate::model::oid::REPL_TOTAL_ENTRIES as OID_TOTAL_ENTRIES;

/// All replication OIDs (for supportedExtension).
pub const ALL_OIDS: [&str; 4] = [OID_START, OID_CHANGES, OID_TOTAL_ENTRIES, OID_TOTAL_END];

/// Message of a consumer refusing a payload's version (peers match on it).
pub const UNSUPPORTED_VERSION: &str = "unsupported replication protocol version";

fn read_version(c: &mut Cursor<'_>) -> Result<u8, DecodeError> {
    match c.byte()? {
        v @ (PROTOCOL_V1 | PROTOCOL_VERSION) => Ok(v),
        _ => Err(DecodeError(UNSUPPORTED_VERSION)),
    }
}

fn put_u16(out: &mut Vec<u8>, n: u16) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn read_u16(c: &mut Cursor<'_>) -> Result<u16, DecodeError> {
    <[u8; 2]>::try_from(c.take(2)?)
        .map(u16::from_be_bytes)
        .map_err(|_| DecodeError("truncated"))
}

fn put_retirements(out: &mut Vec<u8>, list: &[(u16, Csn)]) {
    put_varint(out, list.len() as u64);
    for (rid, upto) in list {
        put_u16(out, *rid);
        out.extend_from_slice(&upto.to_bytes());
    }
}

fn read_retirements(c: &mut Cursor<'_>) -> Result<Vec<(u16, Csn)>, DecodeError> {
    let n = c.varint()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let rid = read_u16(c)?;
        out.push((rid, c.csn()?));
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub version: u8,
    pub suffix: String,
    pub supplier_rid: u16,
    pub generation: String,
    /// Begin a total init (the consumer empties the suffix first).
    pub total: bool,
    /// Where writes to a read-only consumer should be referred to.
    pub supplier_url: String,
    /// Version 2: the supplier's retired replica IDs.
    pub retired: Vec<(u16, Csn)>,
    /// Version 2, total init: every entry comes with its replication state.
    pub with_states: bool,
}

impl StartRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.version];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_u16(&mut out, self.supplier_rid);
        put_bytes(&mut out, self.generation.as_bytes());
        out.push(u8::from(self.total));
        put_bytes(&mut out, self.supplier_url.as_bytes());
        if self.version >= 2 {
            put_retirements(&mut out, &self.retired);
            out.push(u8::from(self.with_states));
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        let version = read_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let supplier_rid = read_u16(&mut c)?;
        let generation = c.text()?.to_string();
        let total = c.byte()? != 0;
        let supplier_url = c.text()?.to_string();
        let (retired, with_states) = if version >= 2 {
            (read_retirements(&mut c)?, c.byte()? != 0)
        } else {
            (Vec::new(), false)
        };
        Ok(StartRequest {
            version,
            suffix,
            supplier_rid,
            generation,
            total,
            supplier_url,
            retired,
            with_states,
        })
    }
}

/// The consumer's answer to start, changes and total-end: its RUV and,
/// from version 2, its retired replica IDs and those it has finished with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerAnswer {
    pub ruv: Ruv,
    pub retired: Vec<(u16, Csn)>,
    /// None from a version-1 consumer (it does not know retirements).
    pub finished: Option<Vec<u16>>,
}

pub fn encode_answer(version: u8, ruv: &Ruv, retired: &Retired) -> Vec<u8> {
    let mut out = vec![version];
    put_bytes(&mut out, &ruv.encode());
    if version >= 2 {
        put_retirements(&mut out, &retired.shared());
        let finished = retired.finished();
        put_varint(&mut out, finished.len() as u64);
        for rid in finished {
            put_u16(&mut out, rid);
        }
    }
    out
}

pub fn decode_answer(b: &[u8]) -> Result<ConsumerAnswer, DecodeError> {
    let mut c = Cursor::new(b);
    let version = read_version(&mut c)?;
    let ruv = Ruv::decode(c.bytes()?).map_err(|_| DecodeError("bad RUV"))?;
    if version < 2 {
        return Ok(ConsumerAnswer {
            ruv,
            retired: Vec::new(),
            finished: None,
        });
    }
    let retired = read_retirements(&mut c)?;
    let n = c.varint()? as usize;
    let mut finished = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        finished.push(read_u16(&mut c)?);
    }
    Ok(ConsumerAnswer {
        ruv,
        retired,
        finished: Some(finished),
    })
}

/// The RUV of a consumer's answer, whatever its version.
pub fn decode_ruv_response(b: &[u8]) -> Result<Ruv, DecodeError> {
    decode_answer(b).map(|a| a.ruv)
}

/// A version-1 answer: the RUV alone.
pub fn encode_ruv_response(ruv: &Ruv) -> Vec<u8> {
    encode_answer(PROTOCOL_V1, ruv, &Retired::default())
}

/// A change as a version-1 peer reads it: adds without their parent.
fn encode_change_v1(rec: &ChangeRecord) -> Vec<u8> {
    match &rec.change {
        Change::Add {
            entry,
            parent: Some(_),
        } => encode_change(&ChangeRecord {
            change: Change::Add {
                entry: entry.clone(),
                parent: None,
            },
            ..rec.clone()
        }),
        _ => encode_change(rec),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesRequest {
    pub version: u8,
    pub suffix: String,
    pub records: Vec<ChangeRecord>,
}

impl ChangesRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.version];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_varint(&mut out, self.records.len() as u64);
        for r in &self.records {
            if self.version >= 2 {
                put_bytes(&mut out, &payload::encode_change(r));
            } else {
                put_bytes(&mut out, &encode_change_v1(r));
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        let version = read_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let n = c.varint()? as usize;
        let mut records = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let bytes = c.bytes()?;
            records.push(if version >= 2 {
                payload::decode_change(bytes)?
            } else {
                decode_change(bytes)?
            });
        }
        Ok(ChangesRequest {
            version,
            suffix,
            records,
        })
    }
}

/// One entry of a total init and, from version 2, its replication state
/// (the core's encoding) when the supplier sends states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitEntry {
    pub entry: Entry,
    pub state: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalEntriesRequest {
    pub version: u8,
    pub suffix: String,
    pub entries: Vec<InitEntry>,
}

fn encode_init_entry(version: u8, e: &InitEntry) -> Vec<u8> {
    if version < 2 {
        return encode_entry(&e.entry);
    }
    let body = payload::encode_entry(&e.entry);
    let mut out = Vec::with_capacity(body.len() + 16);
    put_bytes(&mut out, &body);
    match &e.state {
        Some(s) => {
            out.push(1);
            put_bytes(&mut out, s);
        }
        None => out.push(0),
    }
    out
}

fn decode_init_entry(version: u8, b: &[u8]) -> Result<InitEntry, DecodeError> {
    if version < 2 {
        return Ok(InitEntry {
            entry: decode_entry(b)?,
            state: None,
        });
    }
    let mut c = Cursor::new(b);
    let entry = payload::decode_entry(c.bytes()?)?;
    let state = match c.byte()? {
        0 => None,
        _ => Some(c.bytes()?.to_vec()),
    };
    Ok(InitEntry { entry, state })
}

impl TotalEntriesRequest {
    pub fn encode(&self) -> Vec<u8> {
        let encoded: Vec<Vec<u8>> = self
            .entries
            .iter()
            .map(|e| encode_init_entry(self.version, e))
            .collect();
        encode_total_entries(self.version, &self.suffix, &encoded)
    }

    /// The payloads carrying `entries` in order, each at most `max_bytes`
    /// unless one entry alone is larger. Every entry is encoded once, however
    /// the page is split.
    pub fn encode_split(
        version: u8,
        suffix: &str,
        entries: &[InitEntry],
        max_bytes: usize,
    ) -> Vec<Vec<u8>> {
        let encoded: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| encode_init_entry(version, e))
            .collect();
        // Version, suffix and a count: an upper bound of the fixed part.
        let fixed = 1 + 10 + suffix.len() + 10;
        let mut out = Vec::new();
        let mut page: Vec<Vec<u8>> = Vec::new();
        let mut size = fixed;
        for e in encoded {
            let add = e.len() + 10;
            if !page.is_empty() && size + add > max_bytes {
                out.push(encode_total_entries(version, suffix, &page));
                page.clear();
                size = fixed;
            }
            size += add;
            page.push(e);
        }
        if !page.is_empty() {
            out.push(encode_total_entries(version, suffix, &page));
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        let version = read_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let n = c.varint()? as usize;
        let mut entries = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            entries.push(decode_init_entry(version, c.bytes()?)?);
        }
        Ok(TotalEntriesRequest {
            version,
            suffix,
            entries,
        })
    }
}

/// A TOTAL_ENTRIES payload from entries already encoded.
fn encode_total_entries(version: u8, suffix: &str, encoded: &[Vec<u8>]) -> Vec<u8> {
    let body: usize = encoded.iter().map(|e| e.len() + 5).sum();
    let mut out = Vec::with_capacity(1 + suffix.len() + 10 + body);
    out.push(version);
    put_bytes(&mut out, suffix.as_bytes());
    put_varint(&mut out, encoded.len() as u64);
    for e in encoded {
        put_bytes(&mut out, e);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalEndRequest {
    pub version: u8,
    pub suffix: String,
    pub ruv: Ruv,
    /// Version 2: the supplier's retirements as of the snapshot, finished
    /// flags included: the consumer now holds what the supplier held.
    pub retired: Retired,
}

impl TotalEndRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.version];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_bytes(&mut out, &self.ruv.encode());
        if self.version >= 2 {
            put_bytes(&mut out, &self.retired.encode());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        let version = read_version(&mut c)?;
        let suffix = c.text()?.to_string();
        let ruv = Ruv::decode(c.bytes()?).map_err(|_| DecodeError("bad RUV"))?;
        let retired = if version >= 2 {
            Retired::decode(c.bytes()?).map_err(|_| DecodeError("bad retired replica list"))?
        } else {
            Retired::default()
        };
        Ok(TotalEndRequest {
            version,
            suffix,
            ruv,
            retired,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, Csn, Dn};

    fn start(version: u8) -> StartRequest {
        StartRequest {
            version,
            suffix: "dc=example,dc=com".into(),
            supplier_rid: 7,
            generation: "g1".into(),
            total: true,
            supplier_url: "ldap://127.0.0.1:3389".into(),
            retired: if version >= 2 {
                vec![(3, Csn::new(4, 0, 3, 0))]
            } else {
                Vec::new()
            },
            with_states: version >= 2,
        }
    }

    fn add_record() -> ChangeRecord {
        let mut e = Entry::new(Dn::parse("cn=a,dc=x").unwrap());
        e.set("cn", vec![b"a".to_vec()], Csn::new(5, 0, 7, 0));
        ChangeRecord {
            csn: Csn::new(5, 0, 7, 0),
            uuid: [1; 16],
            dn: Dn::parse("cn=a,dc=x").unwrap(),
            modifier: String::new(),
            change: Change::Add {
                entry: e,
                parent: Some([2; 16]),
            },
        }
    }

    #[test]
    fn payloads_round_trip_in_both_versions_and_reject_others() {
        for version in [PROTOCOL_V1, PROTOCOL_VERSION] {
            let s = start(version);
            assert_eq!(StartRequest::decode(&s.encode()).unwrap(), s);
            let mut ruv = Ruv::new("g1");
            ruv.update(Csn::new(5, 0, 7, 0));
            let mut retired = Retired::default();
            retired.retire(3, Csn::new(4, 0, 3, 0));
            let answer = decode_answer(&encode_answer(version, &ruv, &retired)).unwrap();
            assert_eq!(answer.ruv, ruv);
            assert_eq!(answer.finished.is_some(), version >= 2);
            let end = TotalEndRequest {
                version,
                suffix: "dc=x".into(),
                ruv,
                retired: if version >= 2 {
                    retired
                } else {
                    Retired::default()
                },
            };
            assert_eq!(TotalEndRequest::decode(&end.encode()).unwrap(), end);
            let entries = TotalEntriesRequest {
                version,
                suffix: "dc=x".into(),
                entries: vec![InitEntry {
                    entry: Entry::new(Dn::parse("dc=x").unwrap()),
                    state: (version >= 2).then(|| vec![1, 2, 3]),
                }],
            };
            assert_eq!(
                TotalEntriesRequest::decode(&entries.encode()).unwrap(),
                entries
            );
        }
        let mut bad = start(2).encode();
        bad[0] = 99;
        assert_eq!(
            StartRequest::decode(&bad).unwrap_err().to_string(),
            DecodeError(UNSUPPORTED_VERSION).to_string()
        );
    }

    #[test]
    fn version_1_changes_are_what_a_first_release_reads() {
        let rec = add_record();
        let v2 = ChangesRequest {
            version: PROTOCOL_VERSION,
            suffix: "dc=x".into(),
            records: vec![rec.clone()],
        };
        assert_eq!(ChangesRequest::decode(&v2.encode()).unwrap(), v2);
        let v1 = ChangesRequest {
            version: PROTOCOL_V1,
            ..v2
        };
        let back = ChangesRequest::decode(&v1.encode()).unwrap();
        // A first release knew adds without a parent only ('a').
        let Change::Add { parent, .. } = &back.records[0].change else {
            panic!("not an add")
        };
        assert_eq!(*parent, None);
        let payload = v1.encode();
        let mut c = Cursor::new(&payload);
        c.byte().unwrap();
        c.text().unwrap();
        c.varint().unwrap();
        let record = c.bytes().unwrap();
        assert_eq!(record[0], 1, "storage change format 1");
        assert_eq!(record.get(1 + 10 + 16 + 1 + 9 + 1), Some(&b'a'));
    }

    #[test]
    fn split_pages_keep_every_entry_in_order_within_the_size() {
        let entries: Vec<InitEntry> = (0..50)
            .map(|i| {
                let mut e = Entry::new(Dn::parse(&format!("cn=e{i},dc=x")).unwrap());
                e.set(
                    "description",
                    vec![vec![b'v'; 100 + i]],
                    Csn::new(1, 0, 1, 0),
                );
                InitEntry {
                    entry: e,
                    state: Some(vec![i as u8; 10]),
                }
            })
            .collect();
        let v = PROTOCOL_VERSION;
        let whole = TotalEntriesRequest::encode_split(v, "dc=x", &entries, 1 << 20);
        assert_eq!(whole.len(), 1);
        let parts = TotalEntriesRequest::encode_split(v, "dc=x", &entries, 1000);
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
        let big = TotalEntriesRequest::encode_split(v, "dc=x", &entries[..3], 10);
        assert_eq!(big.len(), 3);
        assert!(TotalEntriesRequest::encode_split(v, "dc=x", &[], 10).is_empty());
    }
}
