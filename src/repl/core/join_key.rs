//! The Synchronization Key a master hands out and a slave joins with: one
//! copy-and-paste token that carries what the slave needs to trust the
//! master (the SHA-256 of the master's TLS certificate) and what
//! authorises the join (a key ID and its secret). The master stores only
//! a hash of the secret.
//!
//! Form: `fdk1.<key id: 16 hex>.<secret: 32 base64url>.<pin: 64 hex>`.

use std::fmt;

const VERSION: &str = "fdk1";

#[derive(Clone, PartialEq, Eq)]
pub struct JoinKey {
    /// Names the key on the master (`cn=<id>,cn=join keys,cn=config`).
    pub id: String,
    pub secret: String,
    /// SHA-256 of the master's TLS certificate (DER).
    pub pin: [u8; 32],
}

impl fmt::Debug for JoinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinKey")
            .field("id", &self.id)
            .field("pin", &hex(&self.pin))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinKeyError {
    #[error("a synchronization key has four parts separated by dots and starts with fdk1.")]
    Form,
    #[error("the key ID of a synchronization key is 16 hexadecimal digits")]
    Id,
    #[error("the secret of a synchronization key is 32 base64url characters")]
    Secret,
    #[error("the certificate pin of a synchronization key is 64 hexadecimal digits")]
    Pin,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex of exactly `N` bytes.
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether `id` is a key ID (so it can be put in a DN as it is).
pub fn is_key_id(id: &str) -> bool {
    parse_hex::<8>(id).is_some() && id.bytes().all(|c| !c.is_ascii_uppercase())
}

fn is_secret(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

impl JoinKey {
    /// A key from its parts; `id_bytes` and `secret_bytes` come from the
    /// caller's random source (this module does no I/O).
    pub fn new(id_bytes: [u8; 8], secret_bytes: [u8; 24], pin: [u8; 32]) -> JoinKey {
        JoinKey {
            id: hex(&id_bytes),
            secret: base64url(&secret_bytes),
            pin,
        }
    }

    pub fn render(&self) -> String {
        format!("{VERSION}.{}.{}.{}", self.id, self.secret, hex(&self.pin))
    }

    pub fn parse(text: &str) -> Result<JoinKey, JoinKeyError> {
        let mut parts = text.trim().split('.');
        let (Some(VERSION), Some(id), Some(secret), Some(pin), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JoinKeyError::Form);
        };
        if !is_key_id(id) {
            return Err(JoinKeyError::Id);
        }
        if !is_secret(secret) {
            return Err(JoinKeyError::Secret);
        }
        let pin = parse_hex::<32>(&pin.to_ascii_lowercase()).ok_or(JoinKeyError::Pin)?;
        Ok(JoinKey {
            id: id.to_string(),
            secret: secret.to_string(),
            pin,
        })
    }
}

/// Base64url without padding (RFC 4648 §5): 24 bytes make 32 characters.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 63;
            let c = ALPHABET.get(idx as usize).copied().unwrap_or(b'A');
            out.push(char::from(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_hide_their_secret() {
        let key = JoinKey::new([0xab; 8], [0x5a; 24], [0x01; 32]);
        let text = key.render();
        assert!(text.starts_with("fdk1.abababababababab."), "{text}");
        assert_eq!(text.split('.').nth(2).map(str::len), Some(32));
        assert_eq!(JoinKey::parse(&format!("  {text}\n")), Ok(key.clone()));
        assert!(!format!("{key:?}").contains(&key.secret));
    }

    #[test]
    fn damaged_keys_say_which_part_is_wrong() {
        let good = JoinKey::new([1; 8], [2; 24], [3; 32]).render();
        let parts: Vec<&str> = good.split('.').collect();
        let with = |i: usize, v: &str| {
            let mut p = parts.clone();
            p[i] = v;
            p.join(".")
        };
        assert_eq!(JoinKey::parse("fdk1.a.b"), Err(JoinKeyError::Form));
        assert_eq!(JoinKey::parse(&with(0, "fdk2")), Err(JoinKeyError::Form));
        assert_eq!(JoinKey::parse(&with(1, "xyz")), Err(JoinKeyError::Id));
        assert_eq!(
            JoinKey::parse(&with(1, "ABABABABABABABAB")),
            Err(JoinKeyError::Id)
        );
        assert_eq!(JoinKey::parse(&with(2, "short")), Err(JoinKeyError::Secret));
        assert_eq!(JoinKey::parse(&with(3, "00")), Err(JoinKeyError::Pin));
        assert_eq!(
            JoinKey::parse(&format!("{good}.extra")),
            Err(JoinKeyError::Form)
        );
    }

    #[test]
    fn base64url_matches_rfc_4648() {
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
