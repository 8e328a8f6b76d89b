//! Binary encoding of change records: the changelog's storage format and,
//! unchanged, the payload replication sends. Version byte first, so a newer
//! server can keep reading an older peer's records during a rolling upgrade.

pub(crate) use super::encode::Cursor;
use super::encode::{decode_entry, encode_entry, put_bytes, put_varint, DecodeError};
use crate::model::{Change, ChangeRecord, Dn, ModOp, Modification, Rdn};

pub const CHANGE_FORMAT: u8 = 1;

pub fn encode_change(rec: &ChangeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(CHANGE_FORMAT);
    out.extend_from_slice(&rec.csn.to_bytes());
    out.extend_from_slice(&rec.uuid);
    put_bytes(&mut out, rec.dn.to_string().as_bytes());
    put_bytes(&mut out, rec.modifier.as_bytes());
    match &rec.change {
        Change::Add { entry } => {
            out.push(b'a');
            put_bytes(&mut out, &encode_entry(entry));
        }
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
        },
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
    use crate::model::{Csn, Entry};

    #[test]
    fn every_change_kind_round_trips() {
        let dn = Dn::parse("uid=a,dc=x").unwrap();
        let mut entry = Entry::new(dn.clone());
        entry.set("uid", vec![b"a".to_vec()], Csn::new(1, 0, 1, 0));
        let kinds = vec![
            Change::Add { entry },
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
