//! Change sequence numbers: (seconds, sequence, replica id, sub-sequence),
//! ordered field by field, printed as 20 hex digits as 389-ds does.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Csn {
    pub time: u32,
    pub seq: u16,
    pub rid: u16,
    pub subseq: u16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid CSN {0:?}")]
pub struct CsnError(pub String);

impl Csn {
    pub const ZERO: Csn = Csn {
        time: 0,
        seq: 0,
        rid: 0,
        subseq: 0,
    };

    pub fn new(time: u32, seq: u16, rid: u16, subseq: u16) -> Csn {
        Csn {
            time,
            seq,
            rid,
            subseq,
        }
    }

    /// Big-endian bytes, so byte order equals CSN order (LMDB keys).
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[0..4].copy_from_slice(&self.time.to_be_bytes());
        b[4..6].copy_from_slice(&self.seq.to_be_bytes());
        b[6..8].copy_from_slice(&self.rid.to_be_bytes());
        b[8..10].copy_from_slice(&self.subseq.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Csn> {
        let [t0, t1, t2, t3, s0, s1, r0, r1, u0, u1] = *<&[u8; 10]>::try_from(b).ok()?;
        Some(Csn {
            time: u32::from_be_bytes([t0, t1, t2, t3]),
            seq: u16::from_be_bytes([s0, s1]),
            rid: u16::from_be_bytes([r0, r1]),
            subseq: u16::from_be_bytes([u0, u1]),
        })
    }

    pub fn parse(s: &str) -> Result<Csn, CsnError> {
        let bad = || CsnError(s.to_string());
        if s.len() != 20 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| u32::from_str_radix(&s[r], 16).map_err(|_| bad());
        Ok(Csn {
            time: num(0..8)?,
            seq: num(8..12)? as u16,
            rid: num(12..16)? as u16,
            subseq: num(16..20)? as u16,
        })
    }
}

impl fmt::Display for Csn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:08x}{:04x}{:04x}{:04x}",
            self.time, self.seq, self.rid, self.subseq
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_bytes_round_trip_and_order() {
        let a = Csn::new(0x691226b2, 4, 0x30, 0);
        assert_eq!(a.to_string(), "691226b2000400300000");
        assert_eq!(Csn::parse("691226b2000400300000").unwrap(), a);
        assert_eq!(Csn::from_bytes(&a.to_bytes()).unwrap(), a);
        let b = Csn::new(0x691226b2, 5, 1, 0);
        assert!(a < b && a.to_bytes() < b.to_bytes());
        assert!(Csn::parse("xyz").is_err());
    }
}
