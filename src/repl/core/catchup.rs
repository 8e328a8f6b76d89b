//! Catch-up from entry state (DESIGN.md §5): when a consumer lacks changes
//! the changelog no longer holds, the supplier sends, from one snapshot,
//! every entry and tombstone with state the consumer's RUV does not cover,
//! then the list of live entryUUIDs in ranges (so the consumer can drop
//! entries deleted so long ago that even their tombstones are gone), then
//! the snapshot's RUV. This module holds the payloads and the pure merge of
//! two states of one entry.

use super::ruv::Ruv;
use super::wire::PROTOCOL_V1 as PROTOCOL_VERSION;
use crate::model::codec::{decode_entry, encode_entry, put_bytes, put_varint, Cursor, DecodeError};
use crate::model::{Attribute, Entry};

pub use crate::model::oid::REPL_CATCHUP_END as OID_CATCHUP_END;
pub use crate::model::oid::REPL_CATCHUP_ENTRIES as OID_CATCHUP_ENTRIES;
pub use crate::model::oid::REPL_CATCHUP_PRESENT as OID_CATCHUP_PRESENT;
pub const ALL_OIDS: [&str; 3] = [OID_CATCHUP_ENTRIES, OID_CATCHUP_PRESENT, OID_CATCHUP_END];

fn start(c: &mut Cursor<'_>) -> Result<String, DecodeError> {
    if c.byte()? != PROTOCOL_VERSION {
        return Err(DecodeError("unsupported replication protocol version"));
    }
    Ok(c.text()?.to_string())
}

fn ruv_of(c: &mut Cursor<'_>) -> Result<Ruv, DecodeError> {
    Ruv::decode(c.bytes()?).map_err(|_| DecodeError("bad RUV"))
}

/// Entries (live ones and tombstones, with full state), parents first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntriesRequest {
    pub suffix: String,
    /// The supplier's RUV at the snapshot: a value the consumer holds, the
    /// supplier lacks, and this RUV covers was deleted there.
    pub supplier_ruv: Ruv,
    pub entries: Vec<Entry>,
}

impl EntriesRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_bytes(&mut out, &self.supplier_ruv.encode());
        put_varint(&mut out, self.entries.len() as u64);
        for e in &self.entries {
            put_bytes(&mut out, &encode_entry(e));
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        let suffix = start(&mut c)?;
        let supplier_ruv = ruv_of(&mut c)?;
        let n = c.varint()? as usize;
        let mut entries = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            entries.push(decode_entry(c.bytes()?)?);
        }
        Ok(EntriesRequest {
            suffix,
            supplier_ruv,
            entries,
        })
    }
}

/// The supplier's live entryUUIDs within `[low, high]`, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentRequest {
    pub suffix: String,
    pub supplier_ruv: Ruv,
    pub low: [u8; 16],
    pub high: [u8; 16],
    pub uuids: Vec<[u8; 16]>,
}

impl PresentRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_bytes(&mut out, &self.supplier_ruv.encode());
        out.extend_from_slice(&self.low);
        out.extend_from_slice(&self.high);
        put_varint(&mut out, self.uuids.len() as u64);
        for u in &self.uuids {
            out.extend_from_slice(u);
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        let suffix = start(&mut c)?;
        let supplier_ruv = ruv_of(&mut c)?;
        let uuid = |c: &mut Cursor<'_>| -> Result<[u8; 16], DecodeError> {
            <[u8; 16]>::try_from(c.take(16)?).map_err(|_| DecodeError("bad entryUUID"))
        };
        let low = uuid(&mut c)?;
        let high = uuid(&mut c)?;
        let n = c.varint()? as usize;
        let mut uuids = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            uuids.push(uuid(&mut c)?);
        }
        if !uuids.windows(2).all(|w| matches!(w, [a, b] if a < b)) {
            return Err(DecodeError("present list is not sorted"));
        }
        Ok(PresentRequest {
            suffix,
            supplier_ruv,
            low,
            high,
            uuids,
        })
    }
}

/// End of a catch-up: the consumer now holds what this RUV says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRequest {
    pub suffix: String,
    pub supplier_ruv: Ruv,
}

impl EndRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        put_bytes(&mut out, self.suffix.as_bytes());
        put_bytes(&mut out, &self.supplier_ruv.encode());
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(b);
        let suffix = start(&mut c)?;
        let supplier_ruv = ruv_of(&mut c)?;
        Ok(EndRequest {
            suffix,
            supplier_ruv,
        })
    }
}

/// `[low, high]` and the live entryUUIDs within.
pub type PresentRange = ([u8; 16], [u8; 16], Vec<[u8; 16]>);

/// Splits a sorted UUID list into requests of at most `chunk` UUIDs whose
/// ranges `[low, high]` together cover every possible UUID, so whatever a
/// consumer holds falls in exactly one range.
pub fn present_ranges(uuids: &[[u8; 16]], chunk: usize) -> Vec<PresentRange> {
    let mut out = Vec::new();
    let mut low = 0u128;
    let mut parts = uuids.chunks(chunk.max(1)).peekable();
    while let Some(part) = parts.next() {
        let high = match (parts.peek(), part.last()) {
            (Some(_), Some(last)) => u128::from_be_bytes(*last),
            _ => u128::MAX,
        };
        out.push((low.to_be_bytes(), high.to_be_bytes(), part.to_vec()));
        match high.checked_add(1) {
            Some(next) => low = next,
            None => return out,
        }
    }
    if out.is_empty() {
        out.push(([0; 16], [0xff; 16], Vec::new()));
    }
    out
}

/// Whether an entry has state the RUV does not cover (the consumer lacks it).
pub fn has_state_beyond(entry: &Entry, ruv: &Ruv) -> bool {
    entry
        .attrs
        .iter()
        .flat_map(|a| a.values.iter())
        .any(|v| !ruv.covers(v.csn))
}

/// Merges the supplier's state of an entry into the local one. A value the
/// supplier has is kept with the newer CSN of the two; a value only the
/// local entry has is kept when the supplier has not seen its CSN yet (a
/// concurrent local change) and dropped otherwise (the supplier saw it and
/// removed it). Single-valued attributes keep their newest value. The DN
/// is the supplier's.
pub fn merge_entry_state(
    local: &Entry,
    incoming: &Entry,
    supplier_ruv: &Ruv,
    single_valued: impl Fn(&str) -> bool,
) -> Entry {
    let mut merged = Entry::new(incoming.dn.clone());
    for attr in &incoming.attrs {
        let mut values = attr.values.clone();
        if let Some(mine) = local.get(&attr.name) {
            for v in &mut values {
                if let Some(held) = mine.values.iter().find(|x| x.bytes == v.bytes) {
                    v.csn = v.csn.max(held.csn);
                }
            }
            for held in &mine.values {
                let shared = values.iter().any(|x| x.bytes == held.bytes);
                if !shared && !supplier_ruv.covers(held.csn) {
                    values.push(held.clone());
                }
            }
        }
        merged.attrs.push(Attribute {
            name: attr.name.clone(),
            values,
        });
    }
    for attr in &local.attrs {
        if incoming.get(&attr.name).is_some() {
            continue;
        }
        let values: Vec<_> = attr
            .values
            .iter()
            .filter(|v| !supplier_ruv.covers(v.csn))
            .cloned()
            .collect();
        if !values.is_empty() {
            merged.attrs.push(Attribute {
                name: attr.name.clone(),
                values,
            });
        }
    }
    for attr in &mut merged.attrs {
        if attr.values.len() > 1 && single_valued(&attr.name) {
            if let Some(newest) = attr.values.iter().max_by_key(|v| v.csn).cloned() {
                attr.values = vec![newest];
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Csn, Dn, Value};

    fn csn(t: u32, rid: u16) -> Csn {
        Csn::new(t, 0, rid, 0)
    }

    fn entry(dn: &str, attrs: &[(&str, &[(&str, Csn)])]) -> Entry {
        let mut e = Entry::new(Dn::parse(dn).unwrap_or_default());
        for (name, values) in attrs {
            e.attrs.push(Attribute {
                name: (*name).to_string(),
                values: values
                    .iter()
                    .map(|(v, c)| Value {
                        bytes: v.as_bytes().to_vec(),
                        csn: *c,
                    })
                    .collect(),
            });
        }
        e
    }

    fn ruv(max: &[Csn]) -> Ruv {
        let mut r = Ruv::new("g");
        for c in max {
            r.update(*c);
        }
        r
    }

    #[test]
    fn supplier_state_wins_for_what_it_has_seen() {
        let local = entry(
            "uid=a,dc=x",
            &[
                ("mail", &[("old@x", csn(10, 1))]),
                ("description", &[("gone", csn(11, 1))]),
            ],
        );
        let incoming = entry("uid=a,dc=x", &[("mail", &[("new@x", csn(20, 1))])]);
        let merged = merge_entry_state(&local, &incoming, &ruv(&[csn(20, 1)]), |_| false);
        assert_eq!(merged.values("mail"), vec![b"new@x".as_slice()]);
        assert!(!merged.has("description"), "deleted on the supplier");
    }

    #[test]
    fn unseen_local_values_survive_and_single_valued_keeps_newest() {
        let local = entry(
            "uid=a,dc=x",
            &[
                ("mail", &[("mine@x", csn(30, 2))]),
                ("displayName", &[("Local", csn(31, 2))]),
                ("telephoneNumber", &[("1", csn(32, 2))]),
            ],
        );
        let incoming = entry(
            "uid=b,dc=x",
            &[
                ("mail", &[("theirs@x", csn(20, 1))]),
                ("displayName", &[("Remote", csn(25, 1))]),
            ],
        );
        let merged = merge_entry_state(&local, &incoming, &ruv(&[csn(25, 1)]), |n| {
            n.eq_ignore_ascii_case("displayName")
        });
        assert_eq!(merged.dn.to_string(), "uid=b,dc=x");
        assert_eq!(merged.values("mail").len(), 2);
        assert_eq!(merged.values("displayName"), vec![b"Local".as_slice()]);
        assert_eq!(merged.values("telephoneNumber"), vec![b"1".as_slice()]);
    }

    #[test]
    fn present_ranges_cover_every_uuid_once() {
        let uuids: Vec<[u8; 16]> = (1u128..=5).map(|i| (i << 100).to_be_bytes()).collect();
        let ranges = present_ranges(&uuids, 2);
        assert_eq!(ranges.len(), 3);
        assert_eq!(ranges[0].0, [0; 16]);
        assert_eq!(ranges[2].1, [0xff; 16]);
        for w in ranges.windows(2) {
            let next = u128::from_be_bytes(w[0].1) + 1;
            assert_eq!(w[1].0, next.to_be_bytes());
        }
        let listed: Vec<_> = ranges.iter().flat_map(|r| r.2.clone()).collect();
        assert_eq!(listed, uuids);
        for (low, high, part) in &ranges {
            assert!(part.iter().all(|u| low <= u && u <= high));
        }
        let empty = present_ranges(&[], 2);
        assert_eq!(empty, vec![([0; 16], [0xff; 16], Vec::new())]);
    }

    #[test]
    fn payloads_round_trip() {
        let r = ruv(&[csn(5, 1)]);
        let e = EntriesRequest {
            suffix: "dc=x".into(),
            supplier_ruv: r.clone(),
            entries: vec![entry("uid=a,dc=x", &[("cn", &[("a", csn(1, 1))])])],
        };
        assert_eq!(EntriesRequest::decode(&e.encode()).ok(), Some(e));
        let p = PresentRequest {
            suffix: "dc=x".into(),
            supplier_ruv: r.clone(),
            low: [0; 16],
            high: [0xff; 16],
            uuids: vec![[1; 16], [2; 16]],
        };
        assert_eq!(PresentRequest::decode(&p.encode()).ok(), Some(p.clone()));
        let mut unsorted = p;
        unsorted.uuids.reverse();
        assert!(PresentRequest::decode(&unsorted.encode()).is_err());
        let end = EndRequest {
            suffix: "dc=x".into(),
            supplier_ruv: r,
        };
        assert_eq!(EndRequest::decode(&end.encode()).ok(), Some(end));
        assert!(EndRequest::decode(&[9, 0]).is_err());
    }
}
