//! Password storage schemes: hashing new passwords and verifying stored ones.
//!
//! CONTRACT: used by bind, add/modify of userPassword and `ferrodir hash-password`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ssha,
    Ssha256,
    Ssha512,
    Sha,
    Pbkdf2Sha256,
    Pbkdf2Sha512,
    Argon2,
}

impl Scheme {
    /// Parses a scheme name as written between braces, case-insensitively (e.g. "SSHA", "PBKDF2-SHA512").
    pub fn from_name(name: &str) -> Option<Scheme> {
        let _ = name;
        todo!()
    }
}

/// The scheme used for new passwords by default.
pub const DEFAULT_SCHEME: Scheme = Scheme::Pbkdf2Sha512;

/// Hashes `password` with a fresh random salt, returning `{SCHEME}...` text.
pub fn hash(scheme: Scheme, password: &[u8]) -> String {
    let _ = (scheme, password);
    todo!()
}

/// Whether a stored userPassword value is already hashed (starts with a known `{SCHEME}`).
pub fn is_hashed(stored: &[u8]) -> bool {
    let _ = stored;
    todo!()
}

/// Verifies `password` against a stored value. Hashed values verify by their
/// scheme; a value with no scheme prefix compares as clear text (constant time).
/// Unknown schemes and malformed hashes never verify.
pub fn verify(stored: &[u8], password: &[u8]) -> bool {
    let _ = (stored, password);
    todo!()
}

/// A random password for RFC 3062 generation (printable, unambiguous, 16+ chars).
pub fn generate() -> String {
    todo!()
}
