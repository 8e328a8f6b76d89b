//! Password storage schemes: hashing new passwords and verifying stored ones.
//!
//! CONTRACT: used by bind, add/modify of userPassword and `ferrodir hash-password`.
//!
//! On-disk formats are the ones OpenLDAP, 389-ds and python passlib write, so
//! hashes imported from those servers verify unchanged:
//!
//! | prefix                     | value after the prefix                                        |
//! |----------------------------|---------------------------------------------------------------|
//! | `{SHA}` `{SHA256}` `{SHA512}` | base64(digest(pw))                                         |
//! | `{SSHA}` `{SSHA256}` `{SSHA512}` | base64(digest(pw + salt) + salt), salt of any length    |
//! | `{PBKDF2-SHA1}` `{PBKDF2}` `{PBKDF2-SHA256}` `{PBKDF2-SHA512}` | `iter$salt$hash`, salt/hash in adapted base64 (passlib, OpenLDAP pw-pbkdf2) or standard base64 (389-ds) |
//! | `{PBKDF2_SHA256}`          | base64(u32 BE iterations + 64-byte salt + 256-byte hash) (389-ds 1.3/1.4) |
//! | `{ARGON2}`                 | PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash` (OpenLDAP argon2 module) |
//!
//! `{CRYPT}`, `{MD5}` and `{SMD5}` are recognised as hashed (so they are not
//! hashed a second time on import) but never verify.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

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
        let name = name.trim();
        let name = name
            .strip_prefix('{')
            .and_then(|n| n.strip_suffix('}'))
            .unwrap_or(name);
        const NAMES: [(&str, Scheme); 7] = [
            ("SSHA", Scheme::Ssha),
            ("SSHA256", Scheme::Ssha256),
            ("SSHA512", Scheme::Ssha512),
            ("SHA", Scheme::Sha),
            ("PBKDF2-SHA256", Scheme::Pbkdf2Sha256),
            ("PBKDF2-SHA512", Scheme::Pbkdf2Sha512),
            ("ARGON2", Scheme::Argon2),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, s)| *s)
    }

    /// The name as written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ssha => "SSHA",
            Scheme::Ssha256 => "SSHA256",
            Scheme::Ssha512 => "SSHA512",
            Scheme::Sha => "SHA",
            Scheme::Pbkdf2Sha256 => "PBKDF2-SHA256",
            Scheme::Pbkdf2Sha512 => "PBKDF2-SHA512",
            Scheme::Argon2 => "ARGON2",
        }
    }
}

/// The scheme used for new passwords by default.
pub const DEFAULT_SCHEME: Scheme = Scheme::Pbkdf2Sha512;

/// PBKDF2 rounds for new hashes. 10000 is what OpenLDAP's pw-pbkdf2 and
/// passlib's ldap_pbkdf2_* write by default, so hashes we produce are cheap
/// enough for those tools' users to expect; it is well below today's OWASP
/// advice (210000 for SHA-512), trading brute-force resistance for bind
/// latency. Argon2 is the choice for new deployments that want more.
const PBKDF2_ROUNDS: u32 = 10_000;
/// Most PBKDF2 work a stored hash may ask for, in PRF iterations (rounds
/// times the derived key's blocks): beyond it a value fails verification at
/// once (and is logged) instead of turning every bind into seconds of CPU.
/// It admits OWASP 2023's advice (600 000 rounds of SHA-256, 210 000 of
/// SHA-512), passlib's and OpenLDAP's defaults and 389-ds's binary
/// `{PBKDF2_SHA256}` (30 000 rounds, 8 blocks); a million rounds is refused.
const MAX_PBKDF2_WORK: u64 = 600_000;
/// Longest derived key we compute (389-ds's binary form uses 256 bytes).
const MAX_PBKDF2_KEY: usize = 512;
/// Argon2 limits for stored hashes, for the same reason as `MAX_PBKDF2_WORK`
/// (memory in KiB): RFC 9106's second recommendation (64 MiB, 3 passes,
/// 4 lanes) and OpenLDAP's defaults fit; memory times passes is bounded too.
const MAX_ARGON2_M_KIB: u32 = 64 * 1024;
const MAX_ARGON2_T: u32 = 8;
const MAX_ARGON2_P: u32 = 8;
const MAX_ARGON2_M_T: u64 = 4 * 64 * 1024;
/// OWASP's second Argon2id recommendation (19 MiB, 2 passes, 1 lane).
const ARGON2_M_KIB: u32 = 19_456;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

/// Standard alphabet, padding optional: stored values from different tools
/// disagree on padding and nothing is gained by rejecting either.
const B64_LAX: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const B64_NOPAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(false),
);

/// Every prefix `is_hashed` recognises, including ones we cannot verify.
const KNOWN_PREFIXES: [&str; 17] = [
    "SHA",
    "SSHA",
    "SHA256",
    "SSHA256",
    "SHA384",
    "SSHA384",
    "SHA512",
    "SSHA512",
    "PBKDF2",
    "PBKDF2-SHA1",
    "PBKDF2-SHA256",
    "PBKDF2-SHA512",
    "PBKDF2_SHA256",
    "ARGON2",
    "CRYPT",
    "MD5",
    "SMD5",
];

/// Hashes `password` with a fresh random salt, returning `{SCHEME}...` text.
pub fn hash(scheme: Scheme, password: &[u8]) -> String {
    match scheme {
        Scheme::Sha => format!("{{SHA}}{}", STANDARD.encode(Sha1::digest(password))),
        Scheme::Ssha => salted::<Sha1>("SSHA", password),
        Scheme::Ssha256 => salted::<Sha256>("SSHA256", password),
        Scheme::Ssha512 => salted::<Sha512>("SSHA512", password),
        Scheme::Pbkdf2Sha256 => pbkdf2_text(Prf::Sha256, "PBKDF2-SHA256", 32, password),
        Scheme::Pbkdf2Sha512 => pbkdf2_text(Prf::Sha512, "PBKDF2-SHA512", 64, password),
        Scheme::Argon2 => argon2_text(password)
            // Only reachable for passwords longer than 4 GiB; fall back
            // rather than panic or store the password in clear.
            .unwrap_or_else(|| hash(Scheme::Pbkdf2Sha512, password)),
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut salt = [0u8; N];
    OsRng.fill_bytes(&mut salt);
    salt
}

fn salted<D: Digest>(name: &str, password: &[u8]) -> String {
    let salt: [u8; 8] = random_bytes();
    let mut raw = D::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize()
        .to_vec();
    raw.extend_from_slice(&salt);
    format!("{{{name}}}{}", STANDARD.encode(raw))
}

fn pbkdf2_text(prf: Prf, name: &str, key_len: usize, password: &[u8]) -> String {
    let salt: [u8; 16] = random_bytes();
    let mut key = vec![0u8; key_len];
    pbkdf2_derive(prf, password, &salt, PBKDF2_ROUNDS, &mut key);
    // Adapted base64 is the form every reader accepts (passlib and OpenLDAP
    // only know this one; 389-ds reads both).
    format!(
        "{{{name}}}{PBKDF2_ROUNDS}${}${}",
        ab64_encode(&salt),
        ab64_encode(&key)
    )
}

fn argon2_text(password: &[u8]) -> Option<String> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(32)).ok()?;
    let salt: [u8; 16] = random_bytes();
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, &salt, &mut out)
        .ok()?;
    Some(format!(
        "{{ARGON2}}$argon2id$v=19$m={ARGON2_M_KIB},t={ARGON2_T},p={ARGON2_P}${}${}",
        B64_NOPAD.encode(salt),
        B64_NOPAD.encode(out)
    ))
}

/// The PRF inside PBKDF2; an enum rather than a generic keeps the digest
/// crates' long trait bounds out of this file.
#[derive(Clone, Copy)]
enum Prf {
    Sha1,
    Sha256,
    Sha512,
}

fn pbkdf2_derive(prf: Prf, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
    match prf {
        Prf::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, rounds, out),
        Prf::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, out),
        Prf::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, out),
    }
}

/// Whether a stored userPassword value is already hashed (starts with a known `{SCHEME}`).
pub fn is_hashed(stored: &[u8]) -> bool {
    match split_scheme(stored) {
        Some((name, _)) => KNOWN_PREFIXES
            .iter()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(name)),
        None => false,
    }
}

/// Splits `{NAME}rest`; `None` when the value has no brace prefix.
fn split_scheme(stored: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = stored.strip_prefix(b"{")?;
    let close = rest.iter().position(|&b| b == b'}')?;
    Some((rest.get(..close)?, rest.get(close + 1..)?))
}

/// Verifies `password` against a stored value. Hashed values verify by their
/// scheme; a value with no scheme prefix compares as clear text (constant time).
/// Unknown schemes and malformed hashes never verify.
pub fn verify(stored: &[u8], password: &[u8]) -> bool {
    let Some((name, rest)) = split_scheme(stored) else {
        // Comparing digests rather than the values keeps the length of the
        // stored password from leaking through timing.
        return ct_eq(&Sha256::digest(stored), &Sha256::digest(password));
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return false;
    };
    let upper = name.to_ascii_uppercase();
    match upper.as_str() {
        "SHA" => verify_digest::<Sha1>(rest, password, false),
        "SHA256" => verify_digest::<Sha256>(rest, password, false),
        "SHA512" => verify_digest::<Sha512>(rest, password, false),
        "SSHA" => verify_digest::<Sha1>(rest, password, true),
        "SSHA256" => verify_digest::<Sha256>(rest, password, true),
        "SSHA512" => verify_digest::<Sha512>(rest, password, true),
        "PBKDF2" | "PBKDF2-SHA1" => verify_pbkdf2_text(Prf::Sha1, rest, password),
        "PBKDF2-SHA256" => verify_pbkdf2_text(Prf::Sha256, rest, password),
        "PBKDF2-SHA512" => verify_pbkdf2_text(Prf::Sha512, rest, password),
        "PBKDF2_SHA256" => verify_pbkdf2_389_binary(rest, password),
        "ARGON2" => verify_argon2(rest, password),
        _ => false,
    }
}

/// Length-checked, branch-free comparison of equal-length slices, so the time
/// taken does not reveal how many leading bytes of a digest matched.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn decode_b64(text: &[u8]) -> Option<Vec<u8>> {
    B64_LAX.decode(text.trim_ascii()).ok()
}

/// `{SHA*}` (unsalted) and `{SSHA*}`: the salt is whatever follows the digest.
fn verify_digest<D: Digest>(rest: &[u8], password: &[u8], salted: bool) -> bool {
    let Some(raw) = decode_b64(rest) else {
        return false;
    };
    let n = <D as Digest>::output_size();
    if raw.len() < n || (!salted && raw.len() != n) {
        return false;
    }
    let (expected, salt) = raw.split_at(n);
    let computed = D::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize();
    ct_eq(&computed, expected)
}

fn ab64_encode(data: &[u8]) -> String {
    B64_NOPAD.encode(data).replace('+', ".")
}

/// Decodes passlib's adapted base64 ('.' for '+', no padding) as well as
/// plain standard base64 (389-ds); the two alphabets differ in one symbol only.
fn ab64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mapped: Vec<u8> = text
        .trim_ascii()
        .iter()
        .map(|&b| if b == b'.' { b'+' } else { b })
        .collect();
    B64_LAX.decode(mapped).ok()
}

fn parse_rounds(text: &[u8]) -> Option<u32> {
    let rounds: u32 = std::str::from_utf8(text).ok()?.trim().parse().ok()?;
    (rounds >= 1).then_some(rounds)
}

impl Prf {
    fn name(self) -> &'static str {
        match self {
            Prf::Sha1 => "SHA-1",
            Prf::Sha256 => "SHA-256",
            Prf::Sha512 => "SHA-512",
        }
    }

    fn block_len(self) -> usize {
        match self {
            Prf::Sha1 => 20,
            Prf::Sha256 => 32,
            Prf::Sha512 => 64,
        }
    }
}

/// Whether deriving `key_len` bytes with `rounds` stays within
/// `MAX_PBKDF2_WORK`; logs the hash that does not (its parameters only).
fn pbkdf2_within_bounds(prf: Prf, rounds: u32, key_len: usize) -> bool {
    let blocks = key_len.div_ceil(prf.block_len()).max(1) as u64;
    let work = u64::from(rounds).saturating_mul(blocks);
    if work > MAX_PBKDF2_WORK {
        tracing::warn!(
            prf = prf.name(),
            rounds,
            key_len,
            max_work = MAX_PBKDF2_WORK,
            "a stored PBKDF2 password hash asks for more work than the server allows; it never verifies"
        );
        return false;
    }
    true
}

fn pbkdf2_matches(prf: Prf, password: &[u8], salt: &[u8], rounds: u32, expected: &[u8]) -> bool {
    if expected.is_empty() || expected.len() > MAX_PBKDF2_KEY {
        return false;
    }
    if !pbkdf2_within_bounds(prf, rounds, expected.len()) {
        return false;
    }
    let mut key = vec![0u8; expected.len()];
    pbkdf2_derive(prf, password, salt, rounds, &mut key);
    ct_eq(&key, expected)
}

/// `iter$salt$hash`, the text form shared by passlib, OpenLDAP and 389-ds.
fn verify_pbkdf2_text(prf: Prf, rest: &[u8], password: &[u8]) -> bool {
    let mut parts = rest.split(|&b| b == b'$');
    let (Some(rounds), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(rounds), Some(salt), Some(expected)) = (
        parse_rounds(rounds),
        ab64_decode(salt),
        ab64_decode(expected),
    ) else {
        return false;
    };
    pbkdf2_matches(prf, password, &salt, rounds, &expected)
}

/// 389-ds's older `{PBKDF2_SHA256}`: one base64 blob of
/// u32 BE rounds, 64-byte salt and 256-byte derived key.
fn verify_pbkdf2_389_binary(rest: &[u8], password: &[u8]) -> bool {
    const SALT: usize = 64;
    const KEY: usize = 256;
    let Some(raw) = decode_b64(rest) else {
        return false;
    };
    if raw.len() != 4 + SALT + KEY {
        return false;
    }
    let (head, tail) = raw.split_at(4);
    let (salt, expected) = tail.split_at(SALT);
    let Ok(head) = <[u8; 4]>::try_from(head) else {
        return false;
    };
    let rounds = u32::from_be_bytes(head);
    if rounds == 0 {
        return false;
    }
    pbkdf2_matches(Prf::Sha256, password, salt, rounds, expected)
}

fn verify_argon2(rest: &[u8], password: &[u8]) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use argon2::{Argon2, Params};
    let Ok(text) = std::str::from_utf8(rest) else {
        return false;
    };
    let Ok(phc) = PasswordHash::new(text.trim()) else {
        return false;
    };
    let Ok(params) = Params::try_from(&phc) else {
        return false;
    };
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > MAX_ARGON2_M_KIB
        || t > MAX_ARGON2_T
        || p > MAX_ARGON2_P
        || u64::from(m) * u64::from(t) > MAX_ARGON2_M_T
    {
        tracing::warn!(
            m_kib = m,
            t,
            p,
            "a stored Argon2 password hash asks for more memory or passes than the server allows; it never verifies"
        );
        return false;
    }
    // The verifier takes algorithm (i/d/id), version and parameters from the
    // PHC string and compares outputs in constant time.
    Argon2::default().verify_password(password, &phc).is_ok()
}

/// A random password for RFC 3062 generation (printable, unambiguous, 16+ chars).
pub fn generate() -> String {
    // No 0/O, 1/l/I: generated passwords get read aloud and typed by hand.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..16)
        .map(|_| {
            let i = OsRng.gen_range(0..ALPHABET.len());
            ALPHABET.get(i).map_or('x', |&b| char::from(b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Vectors for "secret". Produced on the build machine with:
    //  - OpenLDAP 2.5 `slappasswd -s secret -h {SSHA}` (and with
    //    `-o module-path=/usr/lib/ldap -o module-load=pw-sha2.so` for {SSHA256}/{SHA512},
    //    `-o module-load=argon2.so -h {ARGON2}` for the argon2i vector);
    //  - python3 hashlib/base64, e.g.
    //    `base64.b64encode(hashlib.sha1(b"secret"+bytes([1,2,3,4,5,6,7,8])).digest()+salt)` and
    //    `hashlib.pbkdf2_hmac("sha512", b"secret", bytes(range(16)), 10000, 64)` written
    //    as `rounds$ab64(salt)$ab64(key)` (ab64 = base64, '.' for '+', no padding).
    const SLAPPASSWD: &[&str] = &[
        "{SSHA}9ePHUdhN6EgQc9h0Rd1pVqssDCMRyZ12",
        "{SSHA}YLLkaLyNiMJ1Gs97A6YXBlTLs22XC3x0",
        "{SSHA}eWAq8v7Ly88wEUlcAP5TiJJERkQ5iGKt",
        "{SSHA}/F2nwY3+54VFY8KxHKC9k/+sTa0IzfBn",
        "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
        "{SSHA256}jLINJJ4TE8vE3nhO5AiqSqcBXaKDR3SZOaOLM7VLgHBdNPiwGrqUvw==",
        "{SSHA512}d40uuB6JgbkChvKtN/FE1xa3pC+zw2E0KROoGJZIKi7bZt/1OqSwb/xBrrxMXTmio8Bz3FWP8Q5iN6VTKHfz/uMuKDCz8h/q",
        "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
        "{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
    ];

    const PYTHON: &[&str] = &[
        "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
        "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
        "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
        "{SSHA}lHFzXul4wnzRItssVcTnvXWRjNgBAgMEBQYHCA==",
        // 4-byte salt "abcd", as older OpenLDAP releases wrote
        "{SSHA}+RFhsab2AfzZ0VfEdyknXtUT06RhYmNk",
        "{SSHA256}A7N1lAy5bBb4T6qH9e85zAvHBmzNPhRFbZ105DjjWDIBAgMEBQYHCA==",
        "{SSHA512}KO8EsMPQTwZrxxbOkDAOOXEeVCc2grMQg1pnZwZhC1bBQLby8zCmFn7qTZRvoTd+yQdROQQNYHWpTUST4zjTdQECAwQFBgcI",
        "{PBKDF2-SHA512}10000$AAECAwQFBgcICQoLDA0ODw$s1qOkFay1DbcR0sablkjBgtOqf1IcoQVkkK1uzR9LdXA0A7SkKhkz0j9Li48.pDMKueSh3UUQNkgDDksLeAu.Q",
        "{PBKDF2-SHA512}10000$AAECAwQFBgcICQoLDA0ODw==$s1qOkFay1DbcR0sablkjBgtOqf1IcoQVkkK1uzR9LdXA0A7SkKhkz0j9Li48+pDMKueSh3UUQNkgDDksLeAu+Q==",
        // salt whose adapted base64 is made of '.' characters
        "{PBKDF2-SHA512}1000$.....................w$5DkkKi9aUkqAhIEkV06BAjHXBAcVu16s0CJ0DjKl5f4V7kaSpqEriEInCtPqLA6DGNpmeNwjUUE7Q311VPcxuA",
        "{PBKDF2-SHA256}10000$AAECAwQFBgcICQoLDA0ODw$OImOyGKQvA8WMIN8WwuclUZFDykpCY/RxWOLBTOe8fg",
        "{PBKDF2-SHA256}10000$AAECAwQFBgcICQoLDA0ODw==$OImOyGKQvA8WMIN8WwuclUZFDykpCY/RxWOLBTOe8fg=",
        "{PBKDF2-SHA1}10000$AAECAwQFBgcICQoLDA0ODw$w7tX5nEMoIv2c5pL4bh51Yovf50",
        "{PBKDF2}10000$AAECAwQFBgcICQoLDA0ODw$w7tX5nEMoIv2c5pL4bh51Yovf50",
        // base64(struct.pack(">I", 30000) + salt64 + pbkdf2_hmac("sha256", pw, salt64, 30000, 256))
        // with salt64 = bytes((i * 7) % 256 for i in range(64))
        "{PBKDF2_SHA256}AAB1MAAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3Ey9LZ4Ofu9fwDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrm3GB8P19kbfiFSwDUnOkM+eVzs4HyIWjrc8CB+E1gDtD3whiN+X6w13s4PaUG9shf6xGRRYGgIqtJk6gYP3zuInoKapiV4u3sidD0UV/Clx0v68cU3LdEnM1zxSlyfh+ZTm/yB8+3VE5VwdzRsYY9+kbTeSOezHtfr0vp3kUCa0DPNIOyq5jSC3PdSXigGLyFmY+a6A5n9IVI1qdHaHIkLWqFKcJnYUbn5rgBvqkS54r5JWyPwMMx/w8qwIyl+94/FAHdaUcLNoaQINC+1xBS9rR2BdqOrJtKHME/TMcRqkjCW+1QFx9SPJw4L2RyxvLbx9oHn5tmxLzcHs6C9KrrP",
    ];

    #[test]
    fn known_answers_verify() {
        for v in SLAPPASSWD.iter().chain(PYTHON) {
            assert!(verify(v.as_bytes(), b"secret"), "{v}");
            assert!(!verify(v.as_bytes(), b"Secret"), "{v}");
            assert!(!verify(v.as_bytes(), b""), "{v}");
            assert!(is_hashed(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn slappasswd_utf8_password() {
        // slappasswd -s 'pässwörd with spaces' -h {SSHA}  (UTF-8 terminal)
        let v = b"{SSHA}SdrjQJS4V5rZ2mxDrSLLWBnzJjVsw/rh";
        assert!(verify(v, "pässwörd with spaces".as_bytes()));
        assert!(!verify(v, b"passwort with spaces"));
    }

    #[test]
    fn scheme_names_case_insensitive() {
        assert!(verify(b"{ssha}9ePHUdhN6EgQc9h0Rd1pVqssDCMRyZ12", b"secret"));
        assert!(verify(b"{Sha}5en6G6MezRroT3XKqkdPOmY/BfQ=", b"secret"));
        assert!(verify(
            b"{pbkdf2-sha256}10000$AAECAwQFBgcICQoLDA0ODw$OImOyGKQvA8WMIN8WwuclUZFDykpCY/RxWOLBTOe8fg",
            b"secret"
        ));
        assert_eq!(Scheme::from_name("ssha512"), Some(Scheme::Ssha512));
        assert_eq!(
            Scheme::from_name("Pbkdf2-Sha512"),
            Some(Scheme::Pbkdf2Sha512)
        );
        assert_eq!(Scheme::from_name("{ARGON2}"), Some(Scheme::Argon2));
        assert_eq!(Scheme::from_name("CRYPT"), None);
        assert!(is_hashed(b"{ssha512}xx"));
        assert!(is_hashed(b"{CRYPT}$6$abc$def"));
        assert!(!is_hashed(b"secret"));
        assert!(!is_hashed(b"{FOO}bar"));
        assert!(!is_hashed(b"{SSHA"));
    }

    const ALL: [Scheme; 7] = [
        Scheme::Ssha,
        Scheme::Ssha256,
        Scheme::Ssha512,
        Scheme::Sha,
        Scheme::Pbkdf2Sha256,
        Scheme::Pbkdf2Sha512,
        Scheme::Argon2,
    ];

    #[test]
    fn round_trip_every_scheme() {
        for s in ALL {
            let h = hash(s, b"correct horse");
            let prefix = format!("{{{}}}", s.name());
            assert!(h.starts_with(&prefix), "{h}");
            assert_eq!(Scheme::from_name(s.name()), Some(s));
            assert!(is_hashed(h.as_bytes()));
            assert!(verify(h.as_bytes(), b"correct horse"), "{h}");
            assert!(!verify(h.as_bytes(), b"correct horsf"), "{h}");
            // fresh salt every time (except the unsalted {SHA})
            if s != Scheme::Sha {
                assert_ne!(h, hash(s, b"correct horse"));
            }
        }
        assert_eq!(DEFAULT_SCHEME, Scheme::Pbkdf2Sha512);
    }

    #[test]
    fn new_hash_formats() {
        let h = hash(Scheme::Pbkdf2Sha512, b"pw");
        let parts: Vec<&str> = h.trim_start_matches("{PBKDF2-SHA512}").split('$').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "10000");
        assert_eq!(ab64_decode(parts[1].as_bytes()).unwrap().len(), 16);
        assert_eq!(ab64_decode(parts[2].as_bytes()).unwrap().len(), 64);
        assert!(!h.contains('+') && !h.contains('='));

        let a = hash(Scheme::Argon2, b"pw");
        assert!(
            a.starts_with("{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$"),
            "{a}"
        );

        let s = hash(Scheme::Ssha, b"pw");
        assert_eq!(decode_b64(&s.as_bytes()[6..]).unwrap().len(), 28);
    }

    #[test]
    fn clear_text_values() {
        assert!(verify(b"secret", b"secret"));
        assert!(!verify(b"secret", b"secret2"));
        assert!(!verify(b"secret", b""));
        assert!(verify(b"", b""));
    }

    #[test]
    fn malformed_never_verifies() {
        let bad: &[&[u8]] = &[
            b"{SSHA}",
            b"{SSHA}!!!!",
            b"{SSHA}AAAA",
            b"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQAAAA=",
            b"{SHA}\xff\xfe",
            b"{SSHA512}KO8EsMPQTwZrxxbO",
            b"{PBKDF2-SHA512}",
            b"{PBKDF2-SHA512}10000",
            b"{PBKDF2-SHA512}10000$AAAA",
            b"{PBKDF2-SHA512}10000$AAAA$",
            b"{PBKDF2-SHA512}0$AAECAwQFBgcICQoLDA0ODw$s1qOkFay1DbcR0sablkjBgtOqf1IcoQVkkK1uzR9LdXA0A7SkKhkz0j9Li48.pDMKueSh3UUQNkgDDksLeAu.Q",
            b"{PBKDF2-SHA512}-5$AAAA$AAAA",
            b"{PBKDF2-SHA512}99999999999999999999$AAAA$AAAA",
            // above the work bound: rejected without computing anything
            b"{PBKDF2-SHA512}4000000000$AAECAwQFBgcICQoLDA0ODw$s1qOkFay1DbcR0sablkjBgtOqf1IcoQVkkK1uzR9LdXA0A7SkKhkz0j9Li48.pDMKueSh3UUQNkgDDksLeAu.Q",
            // a million rounds (the right hash for "secret", python3 hashlib)
            b"{PBKDF2-SHA512}1000000$AAECAwQFBgcICQoLDA0ODw$Rx0iu/CjlEvNB6YtDPKqjCPx3Rhb6zD/eWm3K0LxRQlSdtA38ZW0m.jr4DriL4CuBnAZcDz1e8pTGRlzxdr1Tg",
            b"{PBKDF2-SHA512}10000$AAECAwQFBgcICQoLDA0ODw$s1qO$extra",
            b"{PBKDF2-SHA512}10000$@@@@$s1qO",
            b"{PBKDF2_SHA256}AAB1MAAHDhUc",
            b"{PBKDF2_SHA256}",
            b"{ARGON2}",
            b"{ARGON2}$argon2id$v=19$m=4096,t=3,p=1$",
            b"{ARGON2}$argon2id$v=19$m=4096,t=3,p=1$hdCRSBW/aCnNWFFoY2CF/Q$",
            b"{ARGON2}$argon2x$v=19$m=4096,t=3,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
            // absurd cost parameters are refused before any work is done
            b"{ARGON2}$argon2id$v=19$m=4194304,t=3,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
            b"{ARGON2}$argon2id$v=19$m=4096,t=100000,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
            b"{ARGON2}$argon2id$v=19$m=4096,t=3,p=255$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
            b"{ARGON2}$argon2id$v=19$m=262144,t=3,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
            b"{ARGON2}$argon2id$v=19$m=65536,t=8,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
            b"{ARGON2}\xff$argon2id",
            b"{CRYPT}$6$saltsalt$hash",
            b"{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
            b"{UNKNOWN}secret",
            b"{}secret",
            b"{\xff}secret",
        ];
        for v in bad {
            assert!(!verify(v, b"secret"), "{}", String::from_utf8_lossy(v));
        }
        // no closing brace: not a scheme, compared as clear text
        assert!(verify(b"{SSHA", b"{SSHA"));
        assert!(!verify(b"{SSHA", b"secret"));
    }

    /// The work bound counts rounds times derived blocks, and admits what
    /// real tools write.
    #[test]
    fn pbkdf2_work_bound() {
        assert!(pbkdf2_within_bounds(Prf::Sha256, 600_000, 32));
        assert!(pbkdf2_within_bounds(Prf::Sha512, 210_000, 64));
        assert!(pbkdf2_within_bounds(Prf::Sha256, 30_000, 256));
        assert!(pbkdf2_within_bounds(Prf::Sha1, 131_000, 20));
        assert!(!pbkdf2_within_bounds(Prf::Sha512, 1_000_000, 64));
        assert!(!pbkdf2_within_bounds(Prf::Sha512, 300_000, 512));
        assert!(!pbkdf2_within_bounds(Prf::Sha256, 100_000, 256));
    }

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn generated_passwords() {
        let a = generate();
        let b = generate();
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)));
    }

    proptest! {
        #[test]
        fn cheap_schemes_round_trip(pw in proptest::collection::vec(any::<u8>(), 0..200)) {
            for s in [Scheme::Sha, Scheme::Ssha, Scheme::Ssha256, Scheme::Ssha512] {
                let h = hash(s, &pw);
                prop_assert!(verify(h.as_bytes(), &pw));
                let mut other = pw.clone();
                other.push(0);
                prop_assert!(!verify(h.as_bytes(), &other));
            }
        }

        #[test]
        fn verify_never_panics(stored in proptest::collection::vec(any::<u8>(), 0..120), pw in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = verify(&stored, &pw);
            let mut prefixed = b"{PBKDF2-SHA256}1$".to_vec();
            prefixed.extend_from_slice(&stored);
            let _ = verify(&prefixed, &pw);
            let mut prefixed = b"{SSHA}".to_vec();
            prefixed.extend_from_slice(&stored);
            let _ = verify(&prefixed, &pw);
        }
    }
}
