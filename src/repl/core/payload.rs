//! How entries and change records travel in replication protocol version 2
//! (wire.rs), written out field by field here so that the storage encoding
//! (model::codec, store) can change without changing what peers exchange.
//!
//! Entry: DN, number of attributes, then per attribute its name, number of
//! values and per value its bytes and CSN (10 bytes).
//! Change: CSN, target entryUUID, DN, modifier, then a kind byte: 1 add
//! (parent entryUUID or none, entry), 2 modify (modifications: type 0 add,
//! 1 delete, 2 replace, 3 increment; attribute; values), 3 delete, 4 rename
//! (new RDN, delete-old-RDN flag, new superior's entryUUID or none).
//! Lengths and counts are varints; an optional entryUUID is a flag byte
//! followed by 16 bytes when the flag is 1.

use crate::model::codec::{put_bytes, put_varint, Cursor, DecodeError};
use crate::model::{Attribute, Change, ChangeRecord, Dn, Entry, ModOp, Modification, Rdn, Value};

const ADD: u8 = 1;
const MODIFY: u8 = 2;
const DELETE: u8 = 3;
const RENAME: u8 = 4;

fn put_opt_uuid(out: &mut Vec<u8>, u: Option<&[u8; 16]>) {
    match u {
        Some(u) => {
            out.push(1);
            out.extend_from_slice(u);
        }
        None => out.push(0),
    }
}

fn opt_uuid(c: &mut Cursor<'_>) -> Result<Option<[u8; 16]>, DecodeError> {
    match c.byte()? {
        0 => Ok(None),
        1 => Ok(Some(c.uuid()?)),
        _ => Err(DecodeError("bad entryUUID flag")),
    }
}

pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
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

pub fn decode_entry(b: &[u8]) -> Result<Entry, DecodeError> {
    let mut c = Cursor::new(b);
    let entry = entry_body(&mut c)?;
    if c.byte().is_ok() {
        return Err(DecodeError("trailing bytes after an entry"));
    }
    Ok(entry)
}

fn entry_body(c: &mut Cursor<'_>) -> Result<Entry, DecodeError> {
    let dn = Dn::parse(c.text()?).map_err(|_| DecodeError("bad DN in entry"))?;
    let n = c.varint()? as usize;
    let mut attrs = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        let name = c.text()?.to_string();
        let nv = c.varint()? as usize;
        let mut values = Vec::with_capacity(nv.min(1024));
        for _ in 0..nv {
            let bytes = c.bytes()?.to_vec();
            values.push(Value {
                bytes,
                csn: c.csn()?,
            });
        }
        attrs.push(Attribute { name, values });
    }
    Ok(Entry { dn, attrs })
}

fn op_code(op: ModOp) -> u8 {
    match op {
        ModOp::Add => 0,
        ModOp::Delete => 1,
        ModOp::Replace => 2,
        ModOp::Increment => 3,
    }
}

pub fn encode_change(rec: &ChangeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&rec.csn.to_bytes());
    out.extend_from_slice(&rec.uuid);
    put_bytes(&mut out, rec.dn.to_string().as_bytes());
    put_bytes(&mut out, rec.modifier.as_bytes());
    match &rec.change {
        Change::Add { entry, parent } => {
            out.push(ADD);
            put_opt_uuid(&mut out, parent.as_ref());
            put_bytes(&mut out, &encode_entry(entry));
        }
        Change::Modify { mods } => {
            out.push(MODIFY);
            put_varint(&mut out, mods.len() as u64);
            for m in mods {
                out.push(op_code(m.op));
                put_bytes(&mut out, m.attr.as_bytes());
                put_varint(&mut out, m.values.len() as u64);
                for v in &m.values {
                    put_bytes(&mut out, v);
                }
            }
        }
        Change::Delete => out.push(DELETE),
        Change::ModDn {
            new_rdn,
            delete_old_rdn,
            new_superior,
        } => {
            out.push(RENAME);
            put_bytes(&mut out, new_rdn.to_string().as_bytes());
            out.push(u8::from(*delete_old_rdn));
            put_opt_uuid(&mut out, new_superior.as_ref());
        }
    }
    out
}

pub fn decode_change(b: &[u8]) -> Result<ChangeRecord, DecodeError> {
    let mut c = Cursor::new(b);
    let csn = c.csn()?;
    let uuid = c.uuid()?;
    let dn = Dn::parse(c.text()?).map_err(|_| DecodeError("bad DN in change"))?;
    let modifier = c.text()?.to_string();
    let change = match c.byte()? {
        ADD => {
            let parent = opt_uuid(&mut c)?;
            Change::Add {
                entry: decode_entry(c.bytes()?)?,
                parent,
            }
        }
        MODIFY => {
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
        DELETE => Change::Delete,
        RENAME => {
            let new_rdn = Rdn::parse(c.text()?).map_err(|_| DecodeError("bad new RDN"))?;
            let delete_old_rdn = c.byte()? != 0;
            Change::ModDn {
                new_rdn,
                delete_old_rdn,
                new_superior: opt_uuid(&mut c)?,
            }
        }
        _ => return Err(DecodeError("unknown change kind")),
    };
    if c.byte().is_ok() {
        return Err(DecodeError("trailing bytes after a change"));
    }
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
    use crate::model::Csn;

    #[test]
    fn every_change_kind_round_trips_and_truncation_is_refused() {
        let dn = Dn::parse("uid=a,ou=p,dc=x").unwrap();
        let mut entry = Entry::new(dn.clone());
        entry.set("uid", vec![b"a".to_vec()], Csn::new(1, 0, 1, 0));
        entry.set(
            "jpegPhoto",
            vec![vec![0, 255], vec![]],
            Csn::new(2, 3, 1, 4),
        );
        let kinds = vec![
            Change::Add {
                entry: entry.clone(),
                parent: Some([9; 16]),
            },
            Change::Add {
                entry,
                parent: None,
            },
            Change::Modify {
                mods: vec![
                    Modification {
                        op: ModOp::Replace,
                        attr: "mail".into(),
                        values: vec![b"a@x".to_vec()],
                    },
                    Modification {
                        op: ModOp::Increment,
                        attr: "uidNumber".into(),
                        values: vec![b"1".to_vec()],
                    },
                ],
            },
            Change::Delete,
            Change::ModDn {
                new_rdn: Rdn::parse("uid=b").unwrap(),
                delete_old_rdn: false,
                new_superior: Some([7; 16]),
            },
        ];
        for change in kinds {
            let rec = ChangeRecord {
                csn: Csn::new(9, 1, 2, 3),
                uuid: [3; 16],
                dn: dn.clone(),
                modifier: "cn=Directory Manager".into(),
                change,
            };
            let enc = encode_change(&rec);
            assert_eq!(decode_change(&enc).unwrap(), rec);
            for cut in 0..enc.len() {
                assert!(decode_change(&enc[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = enc.clone();
            longer.push(0);
            assert!(decode_change(&longer).is_err());
        }
    }
}
