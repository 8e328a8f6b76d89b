//! Versioned binary encoding of entries as stored in the `entries` database.
//!
//! Layout (version 1): `u8 version`, DN text, attribute count, then per
//! attribute its name and values, each value followed by its 10-byte CSN.
//! Lengths and counts are LEB128 varints.

use crate::model::{Attribute, Csn, Dn, Entry, Value};

pub const ENTRY_FORMAT: u8 = 1;

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

pub fn decode_entry(buf: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Cursor::new(buf);
    let version = r.byte()?;
    if version != ENTRY_FORMAT {
        return Err(DecodeError("unknown entry format version"));
    }
    let dn_text = r.text()?;
    let dn = Dn::parse(dn_text).map_err(|_| DecodeError("stored DN does not parse"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
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
}
