//! The store's encoding of entries.
//!
//! Version 1 (model/codec.rs) is read from stores written before version 2.
//!
//! Version 2 (the `entries` database): as version 1, but most entries carry
//! one CSN on all their values and a handful of well-known attribute names,
//! so a value's length varint holds `len << 1 | same`, where `same` means
//! "the CSN of the previous value" (the 10 bytes are left out), and a name
//! is a varint `index << 1 | 1` into `WELL_KNOWN` or `len << 1` followed by
//! the text. That is about a third smaller than version 1 on typical
//! entries, and fewer bytes are fewer pages to write and to keep in memory.

use crate::model::codec::{self, put_bytes, put_varint, Cursor, DecodeError, ENTRY_FORMAT};
use crate::model::{Attribute, Csn, Dn, Entry, Value};
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

/// Reads either version.
pub fn decode_entry(buf: &[u8]) -> Result<Entry, DecodeError> {
    decode_entry_with(buf, &|_| true)
}

/// [`decode_entry`] with only the attributes `keep` accepts; the others'
/// values are stepped over, not copied (a bind reads its password and
/// policy state, not the whole entry).
pub fn decode_entry_with(buf: &[u8], keep: &dyn Fn(&str) -> bool) -> Result<Entry, DecodeError> {
    let mut r = Cursor::new(buf);
    match r.byte()? {
        ENTRY_FORMAT => {
            let mut e = codec::decode_entry(buf)?;
            e.attrs.retain(|a| keep(&a.name));
            Ok(e)
        }
        STORED_ENTRY_FORMAT => decode_compact(&mut r, keep),
        _ => Err(DecodeError("unknown entry format version")),
    }
}

/// An attribute name of version 2: an index into `WELL_KNOWN` or the text.
fn compact_name<'a>(r: &mut Cursor<'a>) -> Result<&'a str, DecodeError> {
    let tag = r.varint()?;
    let n = usize::try_from(tag >> 1).map_err(|_| DecodeError("bad length"))?;
    if tag & 1 == 1 {
        return WELL_KNOWN
            .get(n)
            .copied()
            .ok_or(DecodeError("bad name index"));
    }
    std::str::from_utf8(r.take(n)?).map_err(|_| DecodeError("text not UTF-8"))
}

fn decode_compact(r: &mut Cursor<'_>, keep: &dyn Fn(&str) -> bool) -> Result<Entry, DecodeError> {
    let dn = Dn::parse(r.text()?).map_err(|_| DecodeError("stored DN does not parse"))?;
    let count = r.varint()? as usize;
    let mut attrs = Vec::with_capacity(count.min(256));
    let mut prev: Option<Csn> = None;
    for _ in 0..count {
        let name = compact_name(r)?;
        let kept = keep(name);
        let nvals = r.varint()? as usize;
        let mut values = Vec::with_capacity(if kept { nvals.min(1024) } else { 0 });
        for _ in 0..nvals {
            let tag = r.varint()?;
            let len = usize::try_from(tag >> 1).map_err(|_| DecodeError("bad length"))?;
            let bytes = r.take(len)?;
            // A value's CSN may be "the previous one": read every CSN,
            // kept or not.
            let csn = if tag & 1 == 1 {
                prev.ok_or(DecodeError("no previous CSN"))?
            } else {
                r.csn()?
            };
            prev = Some(csn);
            if kept {
                values.push(Value {
                    bytes: bytes.to_vec(),
                    csn,
                });
            }
        }
        if kept {
            attrs.push(Attribute {
                name: name.to_string(),
                values,
            });
        }
    }
    Ok(Entry { dn, attrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::codec::encode_entry;

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

    #[test]
    fn a_selective_decode_keeps_the_chosen_attributes_with_their_csns() {
        let mut e = Entry::new(Dn::parse("uid=a,dc=x").unwrap());
        let (older, newer) = (Csn::new(5, 1, 2, 0), Csn::new(6, 0, 2, 0));
        e.set("uid", vec![b"a".to_vec()], older);
        // Same CSN as the value before: stored as "the previous one".
        e.set("jpegPhoto", vec![vec![1; 300]], older);
        e.set("pwdFailureTime", vec![b"20261206000000Z".to_vec()], older);
        e.set("mail", vec![b"a@x".to_vec()], newer);
        e.set("userPassword", vec![b"{SSHA}xyz".to_vec()], newer);
        let keep = |n: &str| n == "pwdFailureTime" || n == "userPassword";
        for enc in [encode_entry(&e), encode_stored_entry(&e)] {
            let part = decode_entry_with(&enc, &keep).unwrap();
            let mut want = e.clone();
            want.attrs.retain(|a| keep(&a.name));
            assert_eq!(part, want);
            assert_eq!(part.attrs.len(), 2);
            assert_eq!(decode_entry_with(&enc, &|_| true).unwrap(), e);
            for cut in 0..enc.len() {
                assert!(decode_entry_with(&enc[..cut], &keep).is_err());
            }
        }
    }
}
