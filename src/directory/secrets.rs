//! Secrets kept in the directory (agreement credentials) are encrypted at
//! rest with an instance key stored beside the data (mode 0600), so a copy
//! of the database alone does not reveal them.

use super::{DirError, DirResult};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use std::path::Path;

const PREFIX: &str = "{FDCHACHA}";
const KEY_FILE: &str = "instance.key";

pub struct Secrets {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Loads `<dir>/instance.key`, creating it (0600) on first use.
    pub fn open(dir: &Path) -> std::io::Result<Secrets> {
        let path = dir.join(KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a 32-byte key",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                write_private(&path, &k)?;
                k
            }
            Err(e) => return Err(e),
        };
        Ok(Secrets {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn is_sealed(value: &[u8]) -> bool {
        value.starts_with(PREFIX.as_bytes())
    }

    /// `{FDCHACHA}` + base64(nonce || ciphertext).
    pub fn seal(&self, clear: &[u8]) -> DirResult<Vec<u8>> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), clear)
            .map_err(|_| DirError::Busy("cannot encrypt secret".into()))?;
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&ct);
        let mut out = PREFIX.as_bytes().to_vec();
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(raw)
                .as_bytes(),
        );
        Ok(out)
    }

    /// The clear value of a sealed secret (unsealed values are returned as they are).
    pub fn reveal(&self, stored: &[u8]) -> DirResult<Vec<u8>> {
        let Some(b64) = stored.strip_prefix(PREFIX.as_bytes()) else {
            return Ok(stored.to_vec());
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| {
                DirError::ConstraintViolation("stored secret is not valid base64".into())
            })?;
        if raw.len() < 12 {
            return Err(DirError::ConstraintViolation(
                "stored secret is truncated".into(),
            ));
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| {
                DirError::ConstraintViolation(
                    "stored secret does not decrypt with this instance's key (instance.key changed?)".into(),
                )
            })
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_reveal_and_key_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::open(dir.path()).unwrap();
        let sealed = s.seal(b"hunter2").unwrap();
        assert!(Secrets::is_sealed(&sealed));
        assert!(!String::from_utf8_lossy(&sealed).contains("hunter2"));
        assert_eq!(s.reveal(&sealed).unwrap(), b"hunter2");
        let again = Secrets::open(dir.path()).unwrap();
        assert_eq!(again.reveal(&sealed).unwrap(), b"hunter2");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = Secrets::open(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.reveal(&sealed).is_err());
    }
}
