//! RFC 4533 cookies and CSNs in OpenLDAP's text forms.
//!
//! An OpenLDAP consumer stores the provider's cookie and sends it back; it
//! also reads the CSNs in it (and in entryCSN values) to find out which
//! server a change came from, so both must be in OpenLDAP's fixed-width
//! form `YYYYmmddHHMMSS.uuuuuuZ#cccccc#sid#mmmmmm` and the cookie
//! `rid=NNN[,sid=SSS],csn=CSN[;CSN...]` (one CSN per server ID).
//!
//! A ferrodir CSN (seconds, sequence, replica ID, sub-sequence) maps onto
//! that form without losing its order: the microseconds stay zero, the
//! sequence is the change count, the replica ID the server ID and the
//! sub-sequence the modification number. The server ID field is three hex
//! digits, so replica IDs above 4095 have no OpenLDAP form.

use super::ruv::{Ruv, RuvElement};
use crate::model::civil::{civil_from_days, days_from_civil};
use crate::model::Csn;

/// The largest server ID OpenLDAP's CSN form can carry.
pub const MAX_SID: u16 = 0xfff;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("CSN {0:?} is not in OpenLDAP's form YYYYmmddHHMMSS.uuuuuuZ#cccccc#sid#mmmmmm")]
    Csn(String),
    #[error("replica ID {0} is above 4095 and has no OpenLDAP CSN form")]
    ReplicaId(u16),
    #[error("sync cookie is not text")]
    NotText,
    #[error("sync cookie part {0:?} is not rid=, sid=, csn= or delcsn=")]
    Part(String),
    #[error("sync cookie {0} {1:?} is out of range")]
    Range(&'static str, String),
}

/// A CSN in OpenLDAP's form, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenLdapCsn {
    /// Seconds since 1970.
    pub secs: i64,
    pub usec: u32,
    pub count: u32,
    pub sid: u16,
    pub modn: u32,
}

impl OpenLdapCsn {
    /// The ferrodir CSN with the same meaning, when there is one (a CSN
    /// ferrodir issued always has one).
    pub fn to_csn(self) -> Option<Csn> {
        if self.usec != 0 {
            return None;
        }
        Some(Csn::new(
            u32::try_from(self.secs).ok()?,
            u16::try_from(self.count).ok()?,
            self.sid,
            u16::try_from(self.modn).ok()?,
        ))
    }
}

/// A ferrodir CSN in OpenLDAP's form.
pub fn format_csn(csn: Csn) -> Result<String, CookieError> {
    if csn.rid > MAX_SID {
        return Err(CookieError::ReplicaId(csn.rid));
    }
    let secs = i64::from(csn.time);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    Ok(format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}.000000Z#{:06x}#{:03x}#{:06x}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        csn.seq,
        csn.rid,
        csn.subseq
    ))
}

/// Parses OpenLDAP's CSN form (fixed width, as slapd writes it).
pub fn parse_csn(text: &str) -> Result<OpenLdapCsn, CookieError> {
    let bad = || CookieError::Csn(text.to_string());
    let b = text.as_bytes();
    if b.len() != 40
        || b.get(14) != Some(&b'.')
        || b.get(21) != Some(&b'Z')
        || b.get(22) != Some(&b'#')
        || b.get(29) != Some(&b'#')
        || b.get(33) != Some(&b'#')
    {
        return Err(bad());
    }
    let dec = |from: usize, to: usize| -> Result<i64, CookieError> {
        let s = text.get(from..to).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let hex = |from: usize, to: usize| -> Result<u32, CookieError> {
        let s = text.get(from..to).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u32::from_str_radix(s, 16).map_err(|_| bad())
    };
    let (year, month, day) = (dec(0, 4)?, dec(4, 6)?, dec(6, 8)?);
    let (hour, minute, second) = (dec(8, 10)?, dec(10, 12)?, dec(12, 14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    Ok(OpenLdapCsn {
        secs: ((days * 24 + hour) * 60 + minute) * 60 + second,
        usec: u32::try_from(dec(15, 21)?).map_err(|_| bad())?,
        count: hex(23, 29)?,
        sid: u16::try_from(hex(30, 33)?).map_err(|_| bad())?,
        modn: hex(34, 40)?,
    })
}

/// An RFC 4533 cookie as OpenLDAP writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncCookie {
    /// The consumer's replication ID (`rid=`, three decimal digits).
    pub rid: Option<u16>,
    /// The sending server's ID (`sid=`, hex).
    pub sid: Option<u16>,
    /// One CSN per server ID, as text.
    pub csns: Vec<String>,
}

impl SyncCookie {
    pub fn parse(bytes: &[u8]) -> Result<SyncCookie, CookieError> {
        let text = std::str::from_utf8(bytes).map_err(|_| CookieError::NotText)?;
        let mut cookie = SyncCookie::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| CookieError::Part(part.to_string()))?;
            match key.to_ascii_lowercase().as_str() {
                "rid" => {
                    let rid = value
                        .parse::<u16>()
                        .ok()
                        .filter(|r| *r <= 999)
                        .ok_or_else(|| CookieError::Range("rid", value.to_string()))?;
                    cookie.rid = Some(rid);
                }
                "sid" => {
                    let sid = u16::from_str_radix(value, 16)
                        .ok()
                        .filter(|s| *s <= MAX_SID)
                        .ok_or_else(|| CookieError::Range("sid", value.to_string()))?;
                    cookie.sid = Some(sid);
                }
                "csn" => {
                    for csn in value.split(';').filter(|c| !c.is_empty()) {
                        parse_csn(csn)?;
                        cookie.csns.push(csn.to_string());
                    }
                }
                // OpenLDAP 2.6 may add the CSN of the last delete; it says
                // nothing a changelog-based provider needs.
                "delcsn" => {}
                _ => return Err(CookieError::Part(part.to_string())),
            }
        }
        Ok(cookie)
    }

    /// The cookie describing what `ruv` holds, for the consumer `rid`.
    pub fn from_ruv(rid: Option<u16>, sid: Option<u16>, ruv: &Ruv) -> Result<Self, CookieError> {
        let csns = ruv
            .replicas
            .values()
            .map(|e| format_csn(e.max))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SyncCookie { rid, sid, csns })
    }

    /// The RUV the cookie stands for, when every CSN in it is one ferrodir
    /// can read as its own (None: a cookie from another kind of server,
    /// which only a full refresh can answer).
    pub fn to_ruv(&self) -> Option<Ruv> {
        let mut ruv = Ruv::new(String::new());
        for text in &self.csns {
            let csn = parse_csn(text).ok()?.to_csn()?;
            let keep = ruv.max_for(csn.rid).is_none_or(|m| m < csn);
            if keep {
                ruv.replicas
                    .insert(csn.rid, RuvElement { min: csn, max: csn });
            }
        }
        Some(ruv)
    }

    /// The cookie's text: `rid=NNN,sid=SSS,csn=A;B`, parts present only
    /// when known.
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        if let Some(rid) = self.rid {
            parts.push(format!("rid={rid:03}"));
        }
        if let Some(sid) = self.sid {
            parts.push(format!("sid={sid:03x}"));
        }
        if !self.csns.is_empty() {
            parts.push(format!("csn={}", self.csns.join(";")));
        }
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csns_map_onto_openldap_form_keeping_order() {
        let a = Csn::new(1_700_000_000, 1, 1, 0);
        let b = Csn::new(1_700_000_000, 2, 1, 0);
        let c = Csn::new(1_700_000_001, 0, 2, 3);
        let (fa, fb, fc) = (
            format_csn(a).unwrap(),
            format_csn(b).unwrap(),
            format_csn(c).unwrap(),
        );
        assert_eq!(fa, "20231114221320.000000Z#000001#001#000000");
        assert!(fa < fb && fb < fc, "text order is CSN order");
        for (csn, text) in [(a, &fa), (b, &fb), (c, &fc)] {
            assert_eq!(parse_csn(text).unwrap().to_csn(), Some(csn));
        }
    }

    #[test]
    fn slapd_csns_parse_and_only_exact_ones_map() {
        let ol = parse_csn("20240131235959.123456Z#000000#00a#000000").unwrap();
        assert_eq!((ol.usec, ol.sid), (123_456, 10));
        assert_eq!(ol.to_csn(), None, "microseconds have no ferrodir form");
        for bad in [
            "20240131235959.123456Z#000000#00a#00000",
            "20241331235959.123456Z#000000#00a#000000",
            "2024013123595X.123456Z#000000#00a#000000",
            "20240131235959.123456Z#00000g#00a#000000",
            "20240131235959.123456Z#000000#00a#000000\u{e9}",
        ] {
            assert!(parse_csn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replica_ids_above_4095_have_no_openldap_form() {
        assert_eq!(
            format_csn(Csn::new(1, 0, 4096, 0)),
            Err(CookieError::ReplicaId(4096))
        );
        assert!(format_csn(Csn::new(1, 0, 4095, 0)).is_ok());
    }

    #[test]
    fn cookies_round_trip_through_a_ruv() {
        let mut ruv = Ruv::new("g");
        ruv.update(Csn::new(1_700_000_000, 5, 1, 0));
        ruv.update(Csn::new(1_700_000_100, 0, 2, 0));
        let cookie = SyncCookie::from_ruv(Some(7), Some(1), &ruv).unwrap();
        let text = cookie.render();
        assert_eq!(
            text,
            "rid=007,sid=001,csn=20231114221320.000000Z#000005#001#000000;\
             20231114221500.000000Z#000000#002#000000"
        );
        let back = SyncCookie::parse(text.as_bytes()).unwrap();
        assert_eq!(back, cookie);
        let again = back.to_ruv().unwrap();
        assert_eq!(again.max_for(1), ruv.max_for(1));
        assert_eq!(again.max_for(2), ruv.max_for(2));
    }

    #[test]
    fn consumer_cookies_without_csns_and_bad_ones() {
        let c = SyncCookie::parse(b"rid=001").unwrap();
        assert_eq!((c.rid, c.csns.len()), (Some(1), 0));
        assert_eq!(c.to_ruv().map(|r| r.replicas.len()), Some(0));
        assert!(SyncCookie::parse(b"rid=1000").is_err());
        assert!(SyncCookie::parse(b"rid=001,csn=nonsense").is_err());
        assert!(SyncCookie::parse(b"rid=001,what=1").is_err());
        assert!(SyncCookie::parse(&[0xff, 0xfe]).is_err());
        let foreign =
            SyncCookie::parse(b"rid=001,sid=002,csn=20240131235959.123456Z#000000#002#000000")
                .unwrap();
        assert!(
            foreign.to_ruv().is_none(),
            "slapd's own CSNs need a refresh"
        );
    }
}
