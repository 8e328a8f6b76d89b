//! Replica update vector: per replica ID, the smallest and largest CSN this
//! server holds for a suffix, plus the replica generation set when the suffix
//! was initialised. Pure data and arithmetic.

use crate::model::Csn;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuvElement {
    pub min: Csn,
    pub max: Csn,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruv {
    pub generation: String,
    pub replicas: BTreeMap<u16, RuvElement>,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt RUV: {0}")]
pub struct RuvError(&'static str);

impl Ruv {
    pub fn new(generation: impl Into<String>) -> Ruv {
        Ruv {
            generation: generation.into(),
            replicas: BTreeMap::new(),
        }
    }

    /// Records that a change with `csn` is now held.
    pub fn update(&mut self, csn: Csn) {
        self.replicas
            .entry(csn.rid)
            .and_modify(|e| {
                if csn > e.max {
                    e.max = csn;
                }
                if csn < e.min {
                    e.min = csn;
                }
            })
            .or_insert(RuvElement { min: csn, max: csn });
    }

    pub fn max_for(&self, rid: u16) -> Option<Csn> {
        self.replicas.get(&rid).map(|e| e.max)
    }

    /// Whether a change is already held (its CSN is not above the replica's maximum).
    pub fn covers(&self, csn: Csn) -> bool {
        self.max_for(csn.rid).is_some_and(|m| csn <= m)
    }

    /// Largest CSN over all replicas.
    pub fn max_csn(&self) -> Csn {
        self.replicas
            .values()
            .map(|e| e.max)
            .max()
            .unwrap_or(Csn::ZERO)
    }

    /// Where a changelog scan for what `consumer` lacks begins: the
    /// oldest of the consumer's maxima over this (the supplier's) replica
    /// IDs, zero when it lacks one of them entirely.
    pub fn scan_start_for(&self, consumer: &Ruv) -> Csn {
        self.replicas
            .keys()
            .map(|rid| consumer.max_for(*rid).unwrap_or(Csn::ZERO))
            .min()
            .unwrap_or(Csn::ZERO)
    }

    /// Changes `supplier` holds that this RUV lacks, counted per replica as
    /// "behind or not": true when some replica's maximum is higher there.
    pub fn is_behind(&self, supplier: &Ruv) -> bool {
        supplier
            .replicas
            .iter()
            .any(|(rid, e)| self.max_for(*rid).is_none_or(|m| m < e.max))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(1u8);
        let g = self.generation.as_bytes();
        out.extend_from_slice(&(g.len() as u16).to_be_bytes());
        out.extend_from_slice(g);
        out.extend_from_slice(&(self.replicas.len() as u16).to_be_bytes());
        for (rid, e) in &self.replicas {
            out.extend_from_slice(&rid.to_be_bytes());
            out.extend_from_slice(&e.min.to_bytes());
            out.extend_from_slice(&e.max.to_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Ruv, RuvError> {
        let get = |r: std::ops::Range<usize>| b.get(r).ok_or(RuvError("truncated"));
        let u16_at = |pos: usize| -> Result<u16, RuvError> {
            let two = get(pos..pos + 2)?;
            <[u8; 2]>::try_from(two)
                .map(u16::from_be_bytes)
                .map_err(|_| RuvError("truncated"))
        };
        if get(0..1)? != [1] {
            return Err(RuvError("unknown version"));
        }
        let glen = u16_at(1)? as usize;
        let generation = String::from_utf8(get(3..3 + glen)?.to_vec())
            .map_err(|_| RuvError("generation not UTF-8"))?;
        let mut pos = 3 + glen;
        let n = u16_at(pos)? as usize;
        pos += 2;
        let mut replicas = BTreeMap::new();
        for _ in 0..n {
            let rid = u16_at(pos)?;
            let min = Csn::from_bytes(get(pos + 2..pos + 12)?).ok_or(RuvError("bad CSN"))?;
            let max = Csn::from_bytes(get(pos + 12..pos + 22)?).ok_or(RuvError("bad CSN"))?;
            replicas.insert(rid, RuvElement { min, max });
            pos += 22;
        }
        Ok(Ruv {
            generation,
            replicas,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_covers_and_round_trip() {
        let mut r = Ruv::new("gen-1");
        r.update(Csn::new(10, 0, 1, 0));
        r.update(Csn::new(5, 0, 1, 0));
        r.update(Csn::new(7, 0, 2, 0));
        assert_eq!(r.max_for(1), Some(Csn::new(10, 0, 1, 0)));
        assert_eq!(r.replicas[&1].min, Csn::new(5, 0, 1, 0));
        assert!(r.covers(Csn::new(9, 0, 1, 0)));
        assert!(!r.covers(Csn::new(11, 0, 1, 0)));
        assert!(!r.covers(Csn::new(1, 0, 3, 0)));
        assert_eq!(Ruv::decode(&r.encode()).unwrap(), r);
        let mut consumer = Ruv::new("gen-1");
        consumer.update(Csn::new(10, 0, 1, 0));
        assert!(consumer.is_behind(&r));
        consumer.update(Csn::new(7, 0, 2, 0));
        assert!(!consumer.is_behind(&r));
        assert!(Ruv::decode(&[1, 0]).is_err());
    }
}
