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
//! | `{MD5}` `{SMD5}` `{SHA384}` `{SSHA384}` | as `{SHA}`/`{SSHA}` with MD5 or SHA-384 (older OpenLDAP and 389-ds data) |
//! | `{CRYPT}`                  | crypt(3): `$1$`, `$apr1$`, `$5$`, `$6$`, `$2a$`/`$2b$`/`$2y$`, `$y$` (see `crypt.rs`) |
//!
//! A value is scheme-prefixed when it starts with `{NAME}`, NAME being 1 to
//! 32 letters, digits, `-`, `_` or `.`; anything else is clear text.
//! `check_stored` tells whether a scheme-prefixed value can ever verify: the
//! write path refuses those that cannot (unknown schemes, crypt(3) algorithms
//! not implemented, malformed values, cost beyond the bounds below) so that
//! nothing is stored that silently never verifies.

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
    /// `{CRYPT}$6$...` (SHA-512-crypt), for values that must also work in
    /// crypt(3) readers such as /etc/shadow or pam_unix.
    Crypt,
}

impl Scheme {
    /// Parses a scheme name as written between braces, case-insensitively (e.g. "SSHA", "PBKDF2-SHA512").
    pub fn from_name(name: &str) -> Option<Scheme> {
        let name = name.trim();
        let name = name
            .strip_prefix('{')
            .and_then(|n| n.strip_suffix('}'))
            .unwrap_or(name);
        const NAMES: [(&str, Scheme); 8] = [
            ("SSHA", Scheme::Ssha),
            ("SSHA256", Scheme::Ssha256),
            ("SSHA512", Scheme::Ssha512),
            ("SHA", Scheme::Sha),
            ("PBKDF2-SHA256", Scheme::Pbkdf2Sha256),
            ("PBKDF2-SHA512", Scheme::Pbkdf2Sha512),
            ("ARGON2", Scheme::Argon2),
            ("CRYPT", Scheme::Crypt),
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
            Scheme::Crypt => "CRYPT",
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
        // Fails only for a salt the crate cannot encode, which 12 random
        // bytes never are; the fallback keeps the password out of clear text.
        Scheme::Crypt => super::crypt::hash_sha512(password, &random_bytes())
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

/// Longest scheme name accepted between the braces.
const MAX_SCHEME_NAME: usize = 32;

/// Why a stored value can never verify; the write path refuses such values
/// and the start-up scan reports them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme}: {reason}")]
pub struct Unverifiable {
    /// The scheme as a label: `{FOO}`, `{CRYPT} $7$`, `{PBKDF2-SHA512}`.
    pub scheme: String,
    /// What is wrong, for the message.
    pub reason: String,
}

/// Why `parse` gives up on a value.
enum Reject {
    Unknown,
    Unsupported(String),
    Malformed(&'static str),
    TooCostly(String),
}

/// A digest for the `{SHA*}`, `{SSHA*}`, `{MD5}` and `{SMD5}` forms; an enum
/// rather than a generic keeps the digest crates' trait bounds in one place.
#[derive(Clone, Copy, Debug)]
enum Dig {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Dig {
    fn output_size(self) -> usize {
        match self {
            Dig::Md5 => 16,
            Dig::Sha1 => 20,
            Dig::Sha256 => 32,
            Dig::Sha384 => 48,
            Dig::Sha512 => 64,
        }
    }

    fn digest(self, password: &[u8], salt: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(password: &[u8], salt: &[u8]) -> Vec<u8> {
            D::new()
                .chain_update(password)
                .chain_update(salt)
                .finalize()
                .to_vec()
        }
        match self {
            Dig::Md5 => run::<md5::Md5>(password, salt),
            Dig::Sha1 => run::<Sha1>(password, salt),
            Dig::Sha256 => run::<Sha256>(password, salt),
            Dig::Sha384 => run::<sha2::Sha384>(password, salt),
            Dig::Sha512 => run::<Sha512>(password, salt),
        }
    }
}

/// A stored value parsed and checked against the bounds, ready to verify.
enum Parsed<'a> {
    Clear(&'a [u8]),
    Digest {
        dig: Dig,
        expected: Vec<u8>,
        salt: Vec<u8>,
    },
    Pbkdf2 {
        prf: Prf,
        rounds: u32,
        salt: Vec<u8>,
        expected: Vec<u8>,
    },
    Argon2(&'a str),
    Crypt(super::crypt::Crypt<'a>),
}

/// Whether a userPassword value is scheme-prefixed (`{NAME}...`), so it is
/// stored as given rather than hashed, whether or not the scheme is known.
pub fn is_hashed(stored: &[u8]) -> bool {
    split_scheme(stored).is_some()
}

/// Whether checking a password against `stored` is quick: clear text and
/// the plain or salted digests take a microsecond or so, where PBKDF2,
/// crypt and Argon2 are slow on purpose (and unknown schemes are left to
/// `verify`, which reports them). Decides where a bind may run.
pub fn verifies_quickly(stored: &[u8]) -> bool {
    let Some((name, _)) = split_scheme(stored) else {
        return true;
    };
    const QUICK: [&str; 10] = [
        "MD5", "SMD5", "SHA", "SHA256", "SHA384", "SHA512", "SSHA", "SSHA256", "SSHA384", "SSHA512",
    ];
    QUICK.iter().any(|q| q.eq_ignore_ascii_case(name))
}

/// Splits `{NAME}rest` when NAME has the shape of a scheme name; `None`
/// for clear text (including clear text that merely starts with a brace).
fn split_scheme(stored: &[u8]) -> Option<(&str, &[u8])> {
    let rest = stored.strip_prefix(b"{")?;
    let close = rest
        .iter()
        .take(MAX_SCHEME_NAME + 1)
        .position(|&b| b == b'}')?;
    let name = rest.get(..close)?;
    if name.is_empty()
        || !name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return None;
    }
    Some((std::str::from_utf8(name).ok()?, rest.get(close + 1..)?))
}

fn parse(stored: &[u8]) -> Result<Parsed<'_>, Reject> {
    let Some((name, rest)) = split_scheme(stored) else {
        return Ok(Parsed::Clear(stored));
    };
    let upper = name.to_ascii_uppercase();
    match upper.as_str() {
        "MD5" => parse_digest(Dig::Md5, rest, false),
        "SMD5" => parse_digest(Dig::Md5, rest, true),
        "SHA" => parse_digest(Dig::Sha1, rest, false),
        "SHA256" => parse_digest(Dig::Sha256, rest, false),
        "SHA384" => parse_digest(Dig::Sha384, rest, false),
        "SHA512" => parse_digest(Dig::Sha512, rest, false),
        "SSHA" => parse_digest(Dig::Sha1, rest, true),
        "SSHA256" => parse_digest(Dig::Sha256, rest, true),
        "SSHA384" => parse_digest(Dig::Sha384, rest, true),
        "SSHA512" => parse_digest(Dig::Sha512, rest, true),
        "PBKDF2" | "PBKDF2-SHA1" => parse_pbkdf2_text(Prf::Sha1, rest),
        "PBKDF2-SHA256" => parse_pbkdf2_text(Prf::Sha256, rest),
        "PBKDF2-SHA512" => parse_pbkdf2_text(Prf::Sha512, rest),
        "PBKDF2_SHA256" => parse_pbkdf2_389_binary(rest),
        "ARGON2" => parse_argon2(rest),
        "CRYPT" => super::crypt::parse(rest)
            .map(Parsed::Crypt)
            .map_err(|r| match r {
                super::crypt::Refusal::Unsupported(l) => Reject::Unsupported(l),
                super::crypt::Refusal::Malformed(m) => Reject::Malformed(m),
                super::crypt::Refusal::TooCostly(t) => Reject::TooCostly(t),
            }),
        _ => Err(Reject::Unknown),
    }
}

fn matches(parsed: &Parsed<'_>, password: &[u8]) -> bool {
    match parsed {
        // Comparing digests rather than the values keeps the length of the
        // stored password from leaking through timing.
        Parsed::Clear(stored) => ct_eq(&Sha256::digest(stored), &Sha256::digest(password)),
        Parsed::Digest {
            dig,
            expected,
            salt,
        } => ct_eq(&dig.digest(password, salt), expected),
        Parsed::Pbkdf2 {
            prf,
            rounds,
            salt,
            expected,
        } => {
            let mut key = vec![0u8; expected.len()];
            pbkdf2_derive(*prf, password, salt, *rounds, &mut key);
            ct_eq(&key, expected)
        }
        Parsed::Argon2(text) => argon2_matches(text, password),
        Parsed::Crypt(c) => super::crypt::matches(c, password),
    }
}

/// Whether a stored userPassword value can ever verify: clear text and
/// values of a scheme this server implements, well formed and within the
/// cost bounds. The write path refuses the others.
pub fn check_stored(stored: &[u8]) -> Result<(), Unverifiable> {
    let Err(reject) = parse(stored) else {
        return Ok(());
    };
    let name = split_scheme(stored).map_or("?", |(n, _)| n);
    let brace = format!("{{{name}}}");
    let (scheme, reason) = match reject {
        Reject::Unknown => (brace, "a storage scheme ferrodir does not know".to_string()),
        Reject::Unsupported(label) => (
            format!("{brace} {label}"),
            format!("the crypt(3) algorithm {label} is not implemented by ferrodir"),
        ),
        Reject::Malformed(what) => (brace, format!("malformed value ({what})")),
        Reject::TooCostly(what) => (
            brace,
            format!("asks for more work than ferrodir allows: {what}"),
        ),
    };
    Err(Unverifiable { scheme, reason })
}

/// Schemes already reported by `verify`, so a client retrying a bind does
/// not fill the log.
static REPORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Verifies `password` against a stored value. Hashed values verify by their
/// scheme; a value with no scheme prefix compares as clear text (constant
/// time). Values `check_stored` refuses never verify, and the first one of
/// each scheme is logged.
pub fn verify(stored: &[u8], password: &[u8]) -> bool {
    match parse(stored) {
        Ok(parsed) => matches(&parsed, password),
        Err(_) => {
            if let Err(e) = check_stored(stored) {
                let first = REPORTED.lock().is_ok_and(|mut seen| {
                    let new = !seen.contains(&e.scheme) && seen.len() < 64;
                    if new {
                        seen.push(e.scheme.clone());
                    }
                    new
                });
                if first {
                    tracing::warn!(
                        scheme = %e.scheme,
                        "a stored password value cannot be verified ({}); binds against it fail \
                         (logged once per scheme)",
                        e.reason
                    );
                }
            }
            false
        }
    }
}

/// Length-checked, branch-free comparison of equal-length slices, so the time
/// taken does not reveal how many leading bytes of a digest matched.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn decode_b64(text: &[u8]) -> Option<Vec<u8>> {
    B64_LAX.decode(text.trim_ascii()).ok()
}

/// `{SHA*}`/`{MD5}` (unsalted) and `{SSHA*}`/`{SMD5}`: the salt is whatever
/// follows the digest.
fn parse_digest(dig: Dig, rest: &[u8], salted: bool) -> Result<Parsed<'static>, Reject> {
    let raw = decode_b64(rest).ok_or(Reject::Malformed("not base64"))?;
    let n = dig.output_size();
    if raw.len() < n || (!salted && raw.len() != n) {
        return Err(Reject::Malformed("digest of the wrong length"));
    }
    let (expected, salt) = raw.split_at(n);
    Ok(Parsed::Digest {
        dig,
        expected: expected.to_vec(),
        salt: salt.to_vec(),
    })
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

/// Whether deriving `key_len` bytes with `rounds` stays within `MAX_PBKDF2_WORK`.
fn pbkdf2_within_bounds(prf: Prf, rounds: u32, key_len: usize) -> bool {
    let blocks = key_len.div_ceil(prf.block_len()).max(1) as u64;
    u64::from(rounds).saturating_mul(blocks) <= MAX_PBKDF2_WORK
}

fn pbkdf2_parsed(
    prf: Prf,
    rounds: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
) -> Result<Parsed<'static>, Reject> {
    if expected.is_empty() || expected.len() > MAX_PBKDF2_KEY {
        return Err(Reject::Malformed("derived key of the wrong length"));
    }
    if !pbkdf2_within_bounds(prf, rounds, expected.len()) {
        return Err(Reject::TooCostly(format!(
            "PBKDF2 with {} and {rounds} rounds for a {}-byte key (at most {MAX_PBKDF2_WORK} \
             rounds times derived blocks)",
            prf.name(),
            expected.len()
        )));
    }
    Ok(Parsed::Pbkdf2 {
        prf,
        rounds,
        salt,
        expected,
    })
}

/// `iter$salt$hash`, the text form shared by passlib, OpenLDAP and 389-ds.
fn parse_pbkdf2_text(prf: Prf, rest: &[u8]) -> Result<Parsed<'static>, Reject> {
    let mut parts = rest.split(|&b| b == b'$');
    let (Some(rounds), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::Malformed("PBKDF2 wants rounds$salt$hash"));
    };
    let (Some(rounds), Some(salt), Some(expected)) = (
        parse_rounds(rounds),
        ab64_decode(salt),
        ab64_decode(expected),
    ) else {
        return Err(Reject::Malformed(
            "PBKDF2 rounds, salt or hash do not parse",
        ));
    };
    pbkdf2_parsed(prf, rounds, salt, expected)
}

/// 389-ds's older `{PBKDF2_SHA256}`: one base64 blob of
/// u32 BE rounds, 64-byte salt and 256-byte derived key.
fn parse_pbkdf2_389_binary(rest: &[u8]) -> Result<Parsed<'static>, Reject> {
    const SALT: usize = 64;
    const KEY: usize = 256;
    let raw = decode_b64(rest).ok_or(Reject::Malformed("not base64"))?;
    if raw.len() != 4 + SALT + KEY {
        return Err(Reject::Malformed("wrong length for 389-ds's binary form"));
    }
    let (head, tail) = raw.split_at(4);
    let (salt, expected) = tail.split_at(SALT);
    let head = <[u8; 4]>::try_from(head).map_err(|_| Reject::Malformed("short"))?;
    let rounds = u32::from_be_bytes(head);
    if rounds == 0 {
        return Err(Reject::Malformed("zero rounds"));
    }
    pbkdf2_parsed(Prf::Sha256, rounds, salt.to_vec(), expected.to_vec())
}

fn parse_argon2(rest: &[u8]) -> Result<Parsed<'_>, Reject> {
    use argon2::password_hash::PasswordHash;
    use argon2::Params;
    let text = std::str::from_utf8(rest)
        .map_err(|_| Reject::Malformed("not UTF-8"))?
        .trim();
    let phc = PasswordHash::new(text).map_err(|_| Reject::Malformed("not a PHC string"))?;
    if argon2::Algorithm::try_from(phc.algorithm).is_err() || phc.hash.is_none() {
        return Err(Reject::Malformed("not an Argon2 PHC string with a hash"));
    }
    let params = Params::try_from(&phc).map_err(|_| Reject::Malformed("Argon2 parameters"))?;
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > MAX_ARGON2_M_KIB
        || t > MAX_ARGON2_T
        || p > MAX_ARGON2_P
        || u64::from(m) * u64::from(t) > MAX_ARGON2_M_T
    {
        return Err(Reject::TooCostly(format!(
            "Argon2 with m={m} KiB, t={t}, p={p} (at most {MAX_ARGON2_M_KIB} KiB, \
             {MAX_ARGON2_T} passes, {MAX_ARGON2_P} lanes)"
        )));
    }
    Ok(Parsed::Argon2(text))
}

fn argon2_matches(text: &str, password: &[u8]) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use argon2::Argon2;
    let Ok(phc) = PasswordHash::new(text) else {
        return false;
    };
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

    #[test]
    fn only_digests_and_clear_text_verify_quickly() {
        for quick in SLAPPASSWD.iter().filter(|v| !v.starts_with("{ARGON2}")) {
            assert!(verifies_quickly(quick.as_bytes()), "{quick}");
        }
        assert!(verifies_quickly(b"clear text"));
        assert!(
            verifies_quickly(b"{smd5}abc"),
            "scheme names are case-insensitive"
        );
        for slow in [
            Scheme::Pbkdf2Sha256,
            Scheme::Pbkdf2Sha512,
            Scheme::Argon2,
            Scheme::Crypt,
        ] {
            let v = hash(slow, b"secret");
            assert!(!verifies_quickly(v.as_bytes()), "{v}");
        }
        assert!(
            !verifies_quickly(b"{UNKNOWN}abc"),
            "unknown schemes go the slow way"
        );
    }

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
        // python3: base64(hashlib.md5(b"secret").digest()), and with the salt
        // bytes 1..8 appended for {SMD5}; likewise SHA-384
        "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
        "{SMD5}yeWhvSFtvhMX4jDO9I847gECAwQFBgcI",
        "{SHA384}WKd1ukESvjAFrkQHznV9iP2nHUBJe7gCbsrFTU4//HIyzo3jq1rLMK45dg/ufFPt",
        "{SSHA384}H9r23Uh6bS245RzeTpSaM5qygtY55tmguB+tMJSp+hl+9bmccuj6N64Rpv50W9DfAQIDBAUGBwg=",
        "{PBKDF2_SHA256}AAB1MAAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3Ey9LZ4Ofu9fwDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrm3GB8P19kbfiFSwDUnOkM+eVzs4HyIWjrc8CB+E1gDtD3whiN+X6w13s4PaUG9shf6xGRRYGgIqtJk6gYP3zuInoKapiV4u3sidD0UV/Clx0v68cU3LdEnM1zxSlyfh+ZTm/yB8+3VE5VwdzRsYY9+kbTeSOezHtfr0vp3kUCa0DPNIOyq5jSC3PdSXigGLyFmY+a6A5n9IVI1qdHaHIkLWqFKcJnYUbn5rgBvqkS54r5JWyPwMMx/w8qwIyl+94/FAHdaUcLNoaQINC+1xBS9rR2BdqOrJtKHME/TMcRqkjCW+1QFx9SPJw4L2RyxvLbx9oHn5tmxLzcHs6C9KrrP",
    ];

    // {CRYPT} vectors for "secret", made on the build machine (OpenSSL 3.0,
    // libxcrypt through python3.11's crypt module):
    //   openssl passwd -1 -salt saltsalt secret     (also -apr1, -5, -6)
    //   python3 -c 'import crypt; print(crypt.crypt("secret", "$2b$05$abcdefghijklmnopqrstuu"))'
    //   (and "$2a$..", "$2y$..", "$y$j9T$abcdefghijklmnop", "$y$jAT$..",
    //   "$5$rounds=10000$saltsalt", "$6$rounds=5000$saltsalt")
    const CRYPT: &[&str] = &[
        "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
        "{CRYPT}$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0",
        "{CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
        "{CRYPT}$5$rounds=10000$saltsalt$RUsnTSO2Cw.gkRW/RZSmG6BCeuh1a6eDbZfnX4oz1c5",
        "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
        "{CRYPT}$6$rounds=5000$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
        "{CRYPT}$6$1jsZ/kDV6eWiJKh/$ljCYOWoGUKLP9nJjIfCqOUUcDg48WBBw7zPqFyd.Cs8m5NUHKVVaM7jOdlZlIJzE2G3cI9b367Rd736pRCx.M/",
        "{CRYPT}$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a",
        "{CRYPT}$2a$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a",
        "{CRYPT}$2y$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a",
        "{CRYPT}$y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.",
        "{CRYPT}$y$jAT$abcdefghijklmnop$3pVryf5.nuInEcjppPFRGH/CJoPfiVFzIwsSVZvxDI6",
        "{crypt}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
    ];

    #[test]
    fn crypt_vectors_verify() {
        for v in CRYPT {
            assert_eq!(check_stored(v.as_bytes()), Ok(()), "{v}");
            assert!(verify(v.as_bytes(), b"secret"), "{v}");
            assert!(!verify(v.as_bytes(), b"Secret"), "{v}");
            assert!(!verify(v.as_bytes(), b"secret "), "{v}");
            assert!(!verify(v.as_bytes(), b""), "{v}");
        }
        // UTF-8, empty and long passwords (MD5-crypt feeds the password
        // 16 bytes at a time and walks the bits of its length):
        //   openssl passwd -1 -salt abc 'pässwörd'; openssl passwd -6 -salt xyz 'pässwörd'
        //   openssl passwd -1 -salt ab ''
        //   openssl passwd -1 -salt 12345678 'a rather long password of 40+ characters!'
        //   python3 crypt: "$y$j9T$ABCDEFGHIJKLMNOP", "$2b$04$ABCDEFGHIJKLMNOPQRSTUu" for 'pässwörd'
        let others: &[(&str, &[u8])] = &[
            ("{CRYPT}$1$abc$va.mDh.xD0xaCpxxh9akd0", "pässwörd".as_bytes()),
            (
                "{CRYPT}$6$xyz$oODo5ST8V2mRRV5H7S6GNZF5.is7jq1T/euzjW4rE4HNS7DeFkLlVJpXV7hX9L.AOK5LNc/dN1.4jGe0X8BZi0",
                "pässwörd".as_bytes(),
            ),
            ("{CRYPT}$1$ab$rn6aQS/o7141mj179E/zA.", b""),
            (
                "{CRYPT}$1$12345678$NwzDn6YdmFjk/1LKmoHaZ/",
                b"a rather long password of 40+ characters!",
            ),
            (
                "{CRYPT}$y$j9T$ABCDEFGHIJKLMNOP$0Z/aYq7VOY5gfdcDH4xcmHxe1csuX4Vk6KWOOgoPW97",
                "pässwörd".as_bytes(),
            ),
            (
                "{CRYPT}$2b$04$ABCDEFGHIJKLMNOPQRSTUuek4CbSQQu35c9YYgSnjvfYm3e9bPOL.",
                "pässwörd".as_bytes(),
            ),
        ];
        for (v, pw) in others {
            assert!(verify(v.as_bytes(), pw), "{v}");
            assert!(!verify(v.as_bytes(), b"passwort"), "{v}");
        }
        // bcrypt reads 72 bytes, as every crypt(3) does: python3 crypt of
        // 'x' * 100 and 'x' * 72 with "$2b$04$ABCDEFGHIJKLMNOPQRSTUu" agree.
        let long = b"{CRYPT}$2b$04$ABCDEFGHIJKLMNOPQRSTUuuPMGVdMuE6yqNwaDAANxW.7cK/ZbrX6";
        assert!(verify(long, &[b'x'; 72]));
        assert!(verify(long, &[b'x'; 100]));
        assert!(!verify(long, &[b'x'; 71]));
        // beyond libxcrypt's 512-byte limit nothing verifies
        assert!(!verify(
            b"{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
            &[b'x'; 513]
        ));
    }

    #[test]
    fn unverifiable_values_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"{FOO}xyz", "{FOO}"),
            (b"{CRYPT}abNANd1rDfiNc", "{CRYPT} traditional DES"),
            (b"{CRYPT}_J9..abcdXXXXXXXXXXX", "{CRYPT} BSDi extended DES (_...)"),
            (b"{CRYPT}$7$CU..../....abc$def", "{CRYPT} $7$"),
            (b"{CRYPT}$2x$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a", "{CRYPT} $2x$"),
            (b"{CRYPT}$gy$j9T$abc$def", "{CRYPT} $gy$"),
            (b"{CRYPT}$6$saltsalt$hash", "{CRYPT}"),
            (b"{CRYPT}$1$saltsalt$short", "{CRYPT}"),
            // salts glibc would take but the SHA-crypt crate cannot read
            (b"{CRYPT}$6$$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", "{CRYPT}"),
            (b"{CRYPT}$5$a rather long sa$Dl/T3X531fhOuTAq8KYQi0h.2v7ep5yOaebbTKt4.j8", "{CRYPT}"),
            (b"{CRYPT}$y$j9T$abc!$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.", "{CRYPT}"),
            (b"{CRYPT}", "{CRYPT}"),
            (b"{SSHA}!!!!", "{SSHA}"),
            (b"{ARGON2}$argon2x$v=19$m=4096,t=3,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo", "{ARGON2}"),
        ];
        for (v, scheme) in cases {
            let e = check_stored(v).expect_err(&String::from_utf8_lossy(v));
            assert_eq!(e.scheme, *scheme, "{}", String::from_utf8_lossy(v));
            assert!(!verify(v, b"secret"));
        }
        let e = check_stored(b"{CRYPT}$7$CU..../....abc$def").unwrap_err();
        assert!(e.reason.contains("not implemented"), "{e}");
        assert!(check_stored(b"{FOO}xyz")
            .unwrap_err()
            .reason
            .contains("does not know"));
        // clear text and anything that is not scheme-shaped is fine
        for v in [&b"secret"[..], b"{two words}x", b"{}x", b""] {
            assert_eq!(check_stored(v), Ok(()));
        }
    }

    /// Cost parameters beyond the bounds are refused before any work.
    #[test]
    fn crypt_cost_bounds() {
        let costly: &[&[u8]] = &[
            b"{CRYPT}$6$rounds=999999999$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
            b"{CRYPT}$5$rounds=600001$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            b"{CRYPT}$2b$14$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a",
            b"{CRYPT}$2b$31$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a",
            // 128 MiB (libxcrypt cost 8) and a parameter string with p/t
            b"{CRYPT}$y$jCT$abcdefghijklmnop$3pVryf5.nuInEcjppPFRGH/CJoPfiVFzIwsSVZvxDI6",
            b"{CRYPT}$y$j9T5.$abcdefghijklmnop$3pVryf5.nuInEcjppPFRGH/CJoPfiVFzIwsSVZvxDI6",
            b"{PBKDF2-SHA512}1000000$AAECAwQFBgcICQoLDA0ODw$Rx0iu/CjlEvNB6YtDPKqjCPx3Rhb6zD/eWm3K0LxRQlSdtA38ZW0m.jr4DriL4CuBnAZcDz1e8pTGRlzxdr1Tg",
            b"{ARGON2}$argon2id$v=19$m=4194304,t=3,p=1$hdCRSBW/aCnNWFFoY2CF/Q$oY5DWWambbbwZw9MzKc29UiT7O2w9ReE03TJdOa8SRo",
        ];
        for v in costly {
            let e = check_stored(v).expect_err(&String::from_utf8_lossy(v));
            assert!(e.reason.contains("more work"), "{e}");
            assert!(!verify(v, b"secret"));
        }
        // the bounds admit the defaults of the tools that write these
        assert!(check_stored(
            b"{CRYPT}$2b$13$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a"
        )
        .is_ok());
        assert!(check_stored(b"{CRYPT}$6$rounds=600000$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1").is_ok());
        assert!(check_stored(
            b"{CRYPT}$y$jBT$abcdefghijklmnop$3pVryf5.nuInEcjppPFRGH/CJoPfiVFzIwsSVZvxDI6"
        )
        .is_ok());
    }

    #[test]
    fn crypt_generation() {
        let h = hash(Scheme::Crypt, b"correct horse");
        assert!(h.starts_with("{CRYPT}$6$rounds=5000$"), "{h}");
        // $6$rounds=5000$ + 16 salt characters + $ + 86 hash characters
        assert_eq!(h.len(), "{CRYPT}$6$rounds=5000$".len() + 16 + 1 + 86, "{h}");
        assert_eq!(check_stored(h.as_bytes()), Ok(()));
    }

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
        assert_eq!(Scheme::from_name("crypt"), Some(Scheme::Crypt));
        assert_eq!(Scheme::from_name("FOO"), None);
        assert!(is_hashed(b"{ssha512}xx"));
        assert!(is_hashed(b"{CRYPT}$6$abc$def"));
        // scheme-shaped but unknown: stored as given (and refused by the
        // write path through check_stored), never hashed as clear text
        assert!(is_hashed(b"{FOO}bar"));
        assert!(!is_hashed(b"secret"));
        assert!(!is_hashed(b"{SSHA"));
        assert!(!is_hashed(b"{}secret"));
        assert!(!is_hashed(b"{two words}secret"));
        assert!(!is_hashed(b"{\xff}secret"));
    }

    const ALL: [Scheme; 8] = [
        Scheme::Ssha,
        Scheme::Ssha256,
        Scheme::Ssha512,
        Scheme::Sha,
        Scheme::Pbkdf2Sha256,
        Scheme::Pbkdf2Sha512,
        Scheme::Argon2,
        Scheme::Crypt,
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
            b"{MD5}Xr4ilOzQ4PCOq3aQ0qbu",
            b"{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==AAAA",
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
