//! Versioned binary encoding of entries.
//!
//! Version 1 (the replication wire format, and stores written before
//! version 2): `u8 version`, DN text, attribute count, then per attribute
//! its name and values, each value followed by its 10-byte CSN. Lengths and
//! counts are LEB128 varints.
//!
//! Version 2 (the `entries` database): as version 1, but most entries carry
//! one CSN on all their values and a handful of well-known attribute names,
//! so a value's length varint holds `len << 1 | same`, where `same` means
//! "the CSN of the previous value" (the 10 bytes are left out), and a name
//! is a varint `index << 1 | 1` into `WELL_KNOWN` or `len << 1` followed by
//! the text. That is about a third smaller than version 1 on typical
//! entries, and fewer bytes are fewer pages to write and to keep in memory.

use crate::model::{Attribute, Csn, Dn, Entry, Value};

/// Written on the wire (peers running older versions read it).
pub const ENTRY_FORMAT: u8 = 1;
/// Written to the `entries` database.
pub const STORED_ENTRY_FORMAT: u8 = 2;

/// Attribute names coded by position in version 2. Append only: the
/// position is stored on disk.
const WELL_KNOWN: &[&str] = &[
    "objectClass",
    "cn",
    "sn",
    "givenName",
    "uid",
    "mail",
    "uidNumber",
    "gidNumber",
    "homeDirectory",
    "loginShell",
    "gecos",
    "userPassword",
    "description",
    "telephoneNumber",
    "displayName",
    "member",
    "uniqueMember",
    "memberUid",
    "ou",
    "o",
    "dc",
    "title",
    "mobile",
    "street",
    "l",
    "st",
    "postalCode",
    "employeeNumber",
    "manager",
    "entryUUID",
    "entryCSN",
    "creatorsName",
    "createTimestamp",
    "modifiersName",
    "modifyTimestamp",
    "structuralObjectClass",
    "sambaSID",
    "shadowLastChange",
    "initials",
    "departmentNumber",
];

#[derive(Debug, thiserror::Error)]
#[error("corrupt entry record: {0}")]
pub struct DecodeError(pub &'static str);

pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Version 1, for peers: see the module comment.
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

/// Version 2, for the `entries` database: see the module comment.
pub(crate) fn encode_stored_entry(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(STORED_ENTRY_FORMAT);
    put_bytes(&mut out, entry.dn.to_string().as_bytes());
    put_varint(&mut out, entry.attrs.len() as u64);
    let mut prev: Option<Csn> = None;
    for a in &entry.attrs {
        match WELL_KNOWN.iter().position(|n| *n == a.name) {
            Some(i) => put_varint(&mut out, (i as u64) << 1 | 1),
            None => {
                put_varint(&mut out, (a.name.len() as u64) << 1);
                out.extend_from_slice(a.name.as_bytes());
            }
        }
        put_varint(&mut out, a.values.len() as u64);
        for v in &a.values {
            let same = prev == Some(v.csn);
            put_varint(&mut out, (v.bytes.len() as u64) << 1 | u64::from(same));
            out.extend_from_slice(&v.bytes);
            if !same {
                out.extend_from_slice(&v.csn.to_bytes());
                prev = Some(v.csn);
            }
        }
    }
    out
}

/// Reads what `put_varint`/`put_bytes` wrote, never panicking on short input.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
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
    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
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
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()? as usize;
        self.take(n)
    }
    pub(crate) fn text(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError("text not UTF-8"))
    }
    pub(crate) fn csn(&mut self) -> Result<Csn, DecodeError> {
        Csn::from_bytes(self.take(10)?).ok_or(DecodeError("bad CSN"))
    }
    pub(crate) fn uuid(&mut self) -> Result<[u8; 16], DecodeError> {
        self.take(16)?
            .try_into()
            .map_err(|_| DecodeError("bad UUID"))
    }
}

/// Reads either version.
pub fn decode_entry(buf: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Cursor::new(buf);
    let version = r.byte()?;
    if version != ENTRY_FORMAT && version != STORED_ENTRY_FORMAT {
        return Err(DecodeError("unknown entry format version"));
    }
    let compact = version == STORED_ENTRY_FORMAT;
    let dn_text = r.text()?;
    let dn = Dn::parse(dn_text).map_err(|_| DecodeError("stored DN does not parse"))?;
    let count = r.varint()? as usize;
    let mut attrs = Vec::with_capacity(count.min(256));
    let mut prev: Option<Csn> = None;
    for _ in 0..count {
        let name = if compact {
            let tag = r.varint()?;
            if tag & 1 == 1 {
                let i = usize::try_from(tag >> 1).map_err(|_| DecodeError("bad name index"))?;
                WELL_KNOWN
                    .get(i)
                    .ok_or(DecodeError("bad name index"))?
                    .to_string()
            } else {
                let len = usize::try_from(tag >> 1).map_err(|_| DecodeError("bad length"))?;
                std::str::from_utf8(r.take(len)?)
                    .map_err(|_| DecodeError("text not UTF-8"))?
                    .to_string()
            }
        } else {
            r.text()?.to_string()
        };
        let nvals = r.varint()? as usize;
        let mut values = Vec::with_capacity(nvals.min(1024));
        for _ in 0..nvals {
            let (bytes, csn) = if compact {
                let tag = r.varint()?;
                let len = usize::try_from(tag >> 1).map_err(|_| DecodeError("bad length"))?;
                let bytes = r.take(len)?.to_vec();
                let csn = if tag & 1 == 1 {
                    prev.ok_or(DecodeError("no previous CSN"))?
                } else {
                    r.csn()?
                };
                (bytes, csn)
            } else {
                (r.bytes()?.to_vec(), r.csn()?)
            };
            prev = Some(csn);
            values.push(Value { bytes, csn });
        }
        attrs.push(Attribute { name, values });
    }
    Ok(Entry { dn, attrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let mut e = Entry::new(Dn::parse("cn=a\\,b,dc=x").unwrap());
        let csn = Csn::new(5, 1, 2, 0);
        e.set("cn", vec![b"a,b".to_vec()], csn);
        e.set("jpegPhoto", vec![vec![0, 255, 1, 2], vec![]], csn);
        e.set("x-Private", vec![b"p".to_vec()], Csn::new(6, 0, 2, 0));
        e.set("objectClass", vec![b"top".to_vec()], csn);
        for enc in [encode_entry(&e), encode_stored_entry(&e)] {
            assert_eq!(decode_entry(&enc).unwrap(), e);
            for cut in 0..enc.len() {
                assert!(decode_entry(&enc[..cut]).is_err());
            }
            let mut bad = enc.clone();
            bad[0] = 9;
            assert!(decode_entry(&bad).is_err());
        }
        assert!(encode_stored_entry(&e).len() + 30 < encode_entry(&e).len());
    }
}
