//! `{CRYPT}` values: the crypt(3) strings that /etc/shadow, OpenLDAP
//! (`password-hash {CRYPT}`) and 389-ds store after the prefix.
//!
//! | after `{CRYPT}`            | algorithm     | implementation                          |
//! |----------------------------|---------------|-----------------------------------------|
//! | `$1$salt$hash`, `$apr1$…`  | MD5-crypt     | here, on the md-5 crate (no maintained crate does it) |
//! | `$5$[rounds=N$]salt$hash`  | SHA-256-crypt | RustCrypto `sha-crypt`                  |
//! | `$6$[rounds=N$]salt$hash`  | SHA-512-crypt | RustCrypto `sha-crypt`                  |
//! | `$2a$`, `$2b$`, `$2y$`     | bcrypt        | `bcrypt`                                |
//! | `$y$params$salt$hash`      | yescrypt      | RustCrypto `yescrypt`                   |
//!
//! Anything else (traditional DES, `_` BSDi, `$2x$`, `$7$` scrypt, `$gy$`,
//! `$sha1$`, `$md5`) is refused on write and never verifies.
//!
//! Cost parameters are bounded like PBKDF2 and Argon2 in `password.rs`: a
//! stored value beyond them never verifies instead of costing seconds of CPU
//! (or hundreds of MiB) on every bind. Passwords longer than libxcrypt's
//! `CRYPT_MAX_PASSPHRASE_SIZE` (512 bytes) never verify: no crypt(3) could
//! have hashed them, and SHA-crypt's work grows with the password's length
//! squared.

use md5::{Digest, Md5};

/// libxcrypt's `CRYPT_MAX_PASSPHRASE_SIZE`.
const MAX_PASSWORD: usize = 512;
/// SHA-crypt rounds: the same figure as `MAX_PBKDF2_WORK`; glibc's default
/// is 5 000, distributions that raise it use at most a few hundred thousand.
pub(super) const MAX_SHA_CRYPT_ROUNDS: u32 = 600_000;
/// bcrypt cost (log2 of the rounds): 13 is about half a second per bind on
/// one core; htpasswd and libxcrypt default to 5, PHP to 10.
pub(super) const MAX_BCRYPT_COST: u32 = 13;
/// yescrypt memory (128 * r * N bytes): libxcrypt's default cost 5 (`j9T`)
/// takes 16 MiB; up to cost 7 (64 MiB) is admitted, as for Argon2.
pub(super) const MAX_YESCRYPT_MEMORY: u64 = 64 << 20;
/// Rounds written by `hash`: glibc's and libxcrypt's default, so the value
/// also works in /etc/shadow and for any crypt(3) reader.
const SHA_CRYPT_ROUNDS: u32 = 5_000;

/// crypt(3)'s base64 alphabet (also bcrypt's, in another order, handled by the crate).
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a `{CRYPT}` value cannot be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// A crypt(3) algorithm this server does not implement; the label names it.
    Unsupported(String),
    /// The value does not parse as its algorithm's string.
    Malformed(&'static str),
    /// Parameters beyond the server's bounds (the text says which).
    TooCostly(String),
}

/// A parsed `{CRYPT}` value, checked against the bounds, ready to verify.
#[derive(Debug)]
pub(super) enum Crypt<'a> {
    Md5 {
        magic: &'a [u8],
        salt: &'a [u8],
        hash: &'a [u8],
    },
    Sha(&'a str),
    Bcrypt(&'a str),
    Yescrypt(&'a str),
}

/// The label of the crypt(3) algorithm a value names, for messages and the
/// start-up report (`$6$`, `$2b$`, `DES`, ...).
pub(super) fn label(text: &[u8]) -> String {
    let Some(rest) = text.strip_prefix(b"$") else {
        return match text.first() {
            Some(b'_') => "BSDi extended DES (_...)".to_string(),
            _ => "traditional DES".to_string(),
        };
    };
    let id: Vec<u8> = rest
        .iter()
        .take_while(|&&b| b != b'$')
        .take(16)
        .copied()
        .collect();
    format!("${}$", String::from_utf8_lossy(&id))
}

pub(super) fn parse(text: &[u8]) -> Result<Crypt<'_>, Refusal> {
    let s = std::str::from_utf8(text).map_err(|_| Refusal::Malformed("not ASCII"))?;
    let s = s.trim_end();
    if s.is_empty() {
        return Err(Refusal::Malformed("empty"));
    }
    if let Some(rest) = s.strip_prefix("$1$") {
        return parse_md5(b"$1$", rest);
    }
    if let Some(rest) = s.strip_prefix("$apr1$") {
        return parse_md5(b"$apr1$", rest);
    }
    if s.starts_with("$5$") || s.starts_with("$6$") {
        return parse_sha(s);
    }
    if s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$") {
        return parse_bcrypt(s);
    }
    if s.starts_with("$y$") {
        return parse_yescrypt(s);
    }
    Err(Refusal::Unsupported(label(text)))
}

/// Whether `password` matches; the comparison of outputs is constant-time
/// (here for MD5-crypt, inside the crates for the others).
pub(super) fn matches(c: &Crypt<'_>, password: &[u8]) -> bool {
    if password.len() > MAX_PASSWORD {
        return false;
    }
    match c {
        Crypt::Md5 { magic, salt, hash } => {
            super::password::ct_eq(&md5_crypt(password, magic, salt), hash)
        }
        Crypt::Sha(text) => {
            use sha_crypt::PasswordVerifier as _;
            sha_crypt::ShaCrypt::default()
                .verify_password(password, *text)
                .is_ok()
        }
        Crypt::Bcrypt(text) => bcrypt::verify(password, text).unwrap_or(false),
        Crypt::Yescrypt(text) => {
            use yescrypt::PasswordVerifier as _;
            yescrypt::Yescrypt::default()
                .verify_password(password, *text)
                .is_ok()
        }
    }
}

/// `{CRYPT}$6$rounds=5000$salt$hash` with a fresh 16-character salt.
pub(super) fn hash_sha512(password: &[u8], salt: &[u8; 12]) -> Option<String> {
    use sha_crypt::{Algorithm, Params, PasswordHasher as _, ShaCrypt};
    let params = Params::new(SHA_CRYPT_ROUNDS).ok()?;
    let h = ShaCrypt::new(Algorithm::Sha512Crypt, params)
        .hash_password_with_salt(password, salt)
        .ok()?;
    Some(format!("{{CRYPT}}{h}"))
}

fn parse_md5<'a>(magic: &'static [u8], rest: &'a str) -> Result<Crypt<'a>, Refusal> {
    let (salt, hash) = rest
        .split_once('$')
        .ok_or(Refusal::Malformed("no '$' between salt and hash"))?;
    // crypt(3) reads at most 8 salt characters; a longer one was never written by it.
    if salt.len() > 8 || hash.len() != 22 || !hash.bytes().all(|b| ITOA64.contains(&b)) {
        return Err(Refusal::Malformed(
            "MD5-crypt wants up to 8 salt characters and a 22-character hash",
        ));
    }
    Ok(Crypt::Md5 {
        magic,
        salt: salt.as_bytes(),
        hash: hash.as_bytes(),
    })
}

fn parse_sha(s: &str) -> Result<Crypt<'_>, Refusal> {
    let mut fields = s.split('$').skip(2);
    let first = fields.next().unwrap_or("");
    let rounds = match first.strip_prefix("rounds=") {
        Some(n) => n
            .parse::<u32>()
            .map_err(|_| Refusal::Malformed("rounds= is not a number"))?,
        None => SHA_CRYPT_ROUNDS,
    };
    if rounds > MAX_SHA_CRYPT_ROUNDS {
        return Err(Refusal::TooCostly(format!(
            "SHA-crypt with {rounds} rounds (at most {MAX_SHA_CRYPT_ROUNDS})"
        )));
    }
    // glibc never writes fewer than 1 000 rounds; the crate refuses them too.
    if rounds < 1_000 {
        return Err(Refusal::Malformed("SHA-crypt rounds below 1000"));
    }
    let hash_len = if s.starts_with("$5$") { 43 } else { 86 };
    let parts: Vec<&str> = s.split('$').collect();
    match parts.last() {
        Some(h) if h.len() == hash_len && h.bytes().all(|b| ITOA64.contains(&b)) => {}
        _ => {
            return Err(Refusal::Malformed(
                "SHA-crypt hash of the wrong length or alphabet",
            ))
        }
    }
    if parts.len() != 4 + usize::from(first.starts_with("rounds=")) {
        return Err(Refusal::Malformed(
            "SHA-crypt wants $id$[rounds=N$]salt$hash",
        ));
    }
    // The crate reads Modular Crypt Format fields: a salt with characters
    // outside it (glibc would take any but '$') could be stored and then
    // never verify, so it is refused here.
    if sha_crypt::PasswordHashRef::new(s).is_err() {
        return Err(Refusal::Malformed(
            "SHA-crypt salt empty or with characters outside [A-Za-z0-9./+=,-]",
        ));
    }
    Ok(Crypt::Sha(s))
}

fn parse_bcrypt(s: &str) -> Result<Crypt<'_>, Refusal> {
    // $2b$NN$ + 22 salt + 31 hash characters.
    let cost = s
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or(Refusal::Malformed("bcrypt cost is not two digits"))?;
    if s.len() != 60 || s.as_bytes().get(6) != Some(&b'$') {
        return Err(Refusal::Malformed(
            "bcrypt values are 60 characters: $2b$NN$ salt and hash",
        ));
    }
    if !(4..=31).contains(&cost) {
        return Err(Refusal::Malformed("bcrypt cost outside 4..31"));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(Refusal::TooCostly(format!(
            "bcrypt with cost {cost} (at most {MAX_BCRYPT_COST})"
        )));
    }
    Ok(Crypt::Bcrypt(s))
}

fn parse_yescrypt(s: &str) -> Result<Crypt<'_>, Refusal> {
    let mut fields = s.split('$').skip(2);
    let (Some(params), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Refusal::Malformed("yescrypt wants $y$params$salt$hash"));
    };
    if [salt, hash]
        .iter()
        .any(|f| f.is_empty() || !f.bytes().all(|b| ITOA64.contains(&b)))
        || yescrypt::PasswordHashRef::new(s).is_err()
    {
        return Err(Refusal::Malformed(
            "yescrypt salt or hash empty or outside crypt(3)'s base64",
        ));
    }
    // Three characters (flavour, log2 N, r) is what crypt_gensalt writes;
    // longer ones carry p, t or a ROM, whose cost this server does not bound.
    if params.len() > 3 {
        return Err(Refusal::TooCostly(format!(
            "yescrypt parameters '{params}' with p, t or ROM (only flavour, N and r are admitted)"
        )));
    }
    let p: yescrypt::Params = params
        .parse()
        .map_err(|_| Refusal::Malformed("yescrypt parameters do not parse"))?;
    let memory = 128u64
        .saturating_mul(u64::from(p.r()))
        .saturating_mul(p.n());
    if memory > MAX_YESCRYPT_MEMORY || p.p() != 1 {
        return Err(Refusal::TooCostly(format!(
            "yescrypt needing {} MiB (at most {} MiB)",
            memory >> 20,
            MAX_YESCRYPT_MEMORY >> 20
        )));
    }
    Ok(Crypt::Yescrypt(s))
}

/// MD5-crypt (Poul-Henning Kamp's FreeBSD algorithm, also Apache's `$apr1$`
/// with its own magic): returns the 22-character encoded hash.
fn md5_crypt(password: &[u8], magic: &[u8], salt: &[u8]) -> Vec<u8> {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(magic)
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(alternate.get(..n).unwrap_or_default());
        left -= n;
    }
    // The bits of the length pick a zero byte or the password's first byte
    // (the original C code read a cleared buffer here).
    let first = password.get(..1).unwrap_or_default();
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(first);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();
    for i in 0..1000 {
        let mut round = Md5::new();
        if i & 1 == 1 {
            round.update(password);
        } else {
            round.update(digest);
        }
        if i % 3 != 0 {
            round.update(salt);
        }
        if i % 7 != 0 {
            round.update(password);
        }
        if i & 1 == 1 {
            round.update(digest);
        } else {
            round.update(password);
        }
        digest = round.finalize();
    }
    let d: [u8; 16] = digest.into();
    let mut out = Vec::with_capacity(22);
    for [a, b, c] in [
        [d[0], d[6], d[12]],
        [d[1], d[7], d[13]],
        [d[2], d[8], d[14]],
        [d[3], d[9], d[15]],
        [d[4], d[10], d[5]],
    ] {
        to64(
            &mut out,
            (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c),
            4,
        );
    }
    to64(&mut out, u32::from(d[11]), 2);
    out
}

/// crypt(3)'s base64: `n` characters, low six bits first.
fn to64(out: &mut Vec<u8>, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(ITOA64.get((v & 0x3f) as usize).copied().unwrap_or(b'.'));
        v >>= 6;
    }
}
