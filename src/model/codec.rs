//! Versioned binary encodings shared by the store and the replication
//! protocol: the byte primitives (LEB128 varints, length-prefixed strings,
//! a cursor that never panics on short input), the version-1 entry format
//! and the change-record format.
//!
//! Each user keeps its own version byte: the store writes entries in its
//! own compact format 2 (store/encode.rs) and reads version 1 from older
//! data directories; the replication protocol (repl/core/wire.rs) sends
//! version 1 and negotiates its protocol version per session, so either can
//! move on without changing the other.
//!
//! Entry version 1: `u8 version`, DN text, attribute count, then per
//! attribute its name and values, each value followed by its 10-byte CSN.
//! Lengths and counts are LEB128 varints.

use super::{Attribute, Change, ChangeRecord, Csn, Dn, Entry, ModOp, Modification, Rdn, Value};

/// Version byte of the entry encoding below.
pub const ENTRY_FORMAT: u8 = 1;

#[derive(Debug, thiserror::Error)]
#[error("corrupt entry record: {0}")]
pub struct DecodeError(pub &'static str);

pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads what `put_varint`/`put_bytes` wrote, never panicking on short input.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let [b] = *<&[u8; 1]>::try_from(self.take(1)?).map_err(|_| DecodeError("truncated"))?;
        Ok(b)
    }
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift > 63 {
                return Err(DecodeError("varint too long"));
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
            shift += 7;
        }
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()? as usize;
        self.take(n)
    }
    pub fn text(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError("text not UTF-8"))
    }
    pub fn csn(&mut self) -> Result<Csn, DecodeError> {
        Csn::from_bytes(self.take(10)?).ok_or(DecodeError("bad CSN"))
    }
    pub fn uuid(&mut self) -> Result<[u8; 16], DecodeError> {
        self.take(16)?
            .try_into()
            .map_err(|_| DecodeError("bad UUID"))
    }
}

/// Version 1: see the module comment.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(ENTRY_FORMAT);
    put_bytes(&mut out, entry.dn.to_string().as_bytes());
    put_varint(&mut out, entry.attrs.len() as u64);
    for a in &entry.attrs {
        put_bytes(&mut out, a.name.as_bytes());
        put_varint(&mut out, a.values.len() as u64);
        for v in &a.values {
            put_bytes(&mut out, &v.bytes);
            out.extend_from_slice(&v.csn.to_bytes());
        }
    }
    out
}

/// Reads version 1 (see the module comment).
pub fn decode_entry(buf: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Cursor::new(buf);
    if r.byte()? != ENTRY_FORMAT {
        return Err(DecodeError("unknown entry format version"));
    }
    decode_entry_body(&mut r)
}

/// The DN, then the attributes of a version-1 entry.
fn decode_entry_body(r: &mut Cursor<'_>) -> Result<Entry, DecodeError> {
    let dn = Dn::parse(r.text()?).map_err(|_| DecodeError("stored DN does not parse"))?;
    let count = r.varint()? as usize;
    let mut attrs = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        let name = r.text()?.to_string();
        let nvals = r.varint()? as usize;
        let mut values = Vec::with_capacity(nvals.min(1024));
        for _ in 0..nvals {
            let bytes = r.bytes()?.to_vec();
            let csn = r.csn()?;
            values.push(Value { bytes, csn });
        }
        attrs.push(Attribute { name, values });
    }
    Ok(Entry { dn, attrs })
}

/// Version byte of the change-record encoding below.
pub const CHANGE_FORMAT: u8 = 1;

pub fn encode_change(rec: &ChangeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(CHANGE_FORMAT);
    out.extend_from_slice(&rec.csn.to_bytes());
    out.extend_from_slice(&rec.uuid);
    put_bytes(&mut out, rec.dn.to_string().as_bytes());
    put_bytes(&mut out, rec.modifier.as_bytes());
    match &rec.change {
        Change::Add { entry, parent } => match parent {
            // 'a' (no parent) is what format-1 writers produced; 'A' adds
            // the parent's entryUUID.
            None => {
                out.push(b'a');
                put_bytes(&mut out, &encode_entry(entry));
            }
            Some(p) => {
                out.push(b'A');
                out.extend_from_slice(p);
                put_bytes(&mut out, &encode_entry(entry));
            }
        },
        Change::Modify { mods } => {
            out.push(b'm');
            put_varint(&mut out, mods.len() as u64);
            for m in mods {
                out.push(match m.op {
                    ModOp::Add => 0,
                    ModOp::Delete => 1,
                    ModOp::Replace => 2,
                    ModOp::Increment => 3,
                });
                put_bytes(&mut out, m.attr.as_bytes());
                put_varint(&mut out, m.values.len() as u64);
                for v in &m.values {
                    put_bytes(&mut out, v);
                }
            }
        }
        Change::Delete => out.push(b'd'),
        Change::ModDn {
            new_rdn,
            delete_old_rdn,
            new_superior,
        } => {
            out.push(b'r');
            put_bytes(&mut out, new_rdn.to_string().as_bytes());
            out.push(u8::from(*delete_old_rdn));
            match new_superior {
                Some(u) => {
                    out.push(1);
                    out.extend_from_slice(u);
                }
                None => out.push(0),
            }
        }
    }
    out
}

pub fn decode_change(buf: &[u8]) -> Result<ChangeRecord, DecodeError> {
    let mut c = Cursor::new(buf);
    if c.byte()? != CHANGE_FORMAT {
        return Err(DecodeError("unknown change record format version"));
    }
    let csn = c.csn()?;
    let uuid = c.uuid()?;
    let dn = Dn::parse(c.text()?).map_err(|_| DecodeError("bad DN in change record"))?;
    let modifier = c.text()?.to_string();
    let change = match c.byte()? {
        b'a' => Change::Add {
            entry: decode_entry(c.bytes()?)?,
            parent: None,
        },
        b'A' => {
            let parent = Some(c.uuid()?);
            Change::Add {
                entry: decode_entry(c.bytes()?)?,
                parent,
            }
        }
        b'm' => {
            let n = c.varint()? as usize;
            let mut mods = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let op = match c.byte()? {
                    0 => ModOp::Add,
                    1 => ModOp::Delete,
                    2 => ModOp::Replace,
                    3 => ModOp::Increment,
                    _ => return Err(DecodeError("bad modification type")),
                };
                let attr = c.text()?.to_string();
                let nv = c.varint()? as usize;
                let mut values = Vec::with_capacity(nv.min(1024));
                for _ in 0..nv {
                    values.push(c.bytes()?.to_vec());
                }
                mods.push(Modification { op, attr, values });
            }
            Change::Modify { mods }
        }
        b'd' => Change::Delete,
        b'r' => {
            let new_rdn = Rdn::parse(c.text()?).map_err(|_| DecodeError("bad new RDN"))?;
            let delete_old_rdn = c.byte()? != 0;
            let new_superior = match c.byte()? {
                0 => None,
                _ => Some(c.uuid()?),
            };
            Change::ModDn {
                new_rdn,
                delete_old_rdn,
                new_superior,
            }
        }
        _ => return Err(DecodeError("unknown change type")),
    };
    Ok(ChangeRecord {
        csn,
        uuid,
        dn,
        modifier,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips_and_rejects_corruption() {
        let mut e = Entry::new(Dn::parse("cn=a\\,b,dc=x").unwrap());
        let csn = Csn::new(5, 1, 2, 0);
        e.set("cn", vec![b"a,b".to_vec()], csn);
        e.set("jpegPhoto", vec![vec![0, 255, 1, 2], vec![]], csn);
        let enc = encode_entry(&e);
        assert_eq!(decode_entry(&enc).unwrap(), e);
        for cut in 0..enc.len() {
            assert!(decode_entry(&enc[..cut]).is_err());
        }
        let mut bad = enc.clone();
        bad[0] = 9;
        assert!(decode_entry(&bad).is_err());
    }

    #[test]
    fn every_change_kind_round_trips() {
        let dn = Dn::parse("uid=a,dc=x").unwrap();
        let mut entry = Entry::new(dn.clone());
        entry.set("uid", vec![b"a".to_vec()], Csn::new(1, 0, 1, 0));
        let kinds = vec![
            Change::Add {
                entry: entry.clone(),
                parent: None,
            },
            Change::Add {
                entry,
                parent: Some([7; 16]),
            },
            Change::Modify {
                mods: vec![Modification {
                    op: ModOp::Replace,
                    attr: "mail".into(),
                    values: vec![b"a@x".to_vec(), vec![0, 255]],
                }],
            },
            Change::Delete,
            Change::ModDn {
                new_rdn: Rdn::parse("uid=b").unwrap(),
                delete_old_rdn: true,
                new_superior: Some([7; 16]),
            },
        ];
        for change in kinds {
            let rec = ChangeRecord {
                csn: Csn::new(9, 1, 2, 0),
                uuid: [3; 16],
                dn: dn.clone(),
                modifier: "cn=Directory Manager".into(),
                change,
            };
            let enc = encode_change(&rec);
            assert_eq!(decode_change(&enc).unwrap(), rec);
            for cut in 0..enc.len() {
                assert!(decode_change(&enc[..cut]).is_err());
            }
        }
    }
}
