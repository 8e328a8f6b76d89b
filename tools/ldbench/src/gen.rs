//! Deterministic LDIF generator.
//!
//! Everything random (password salts, group membership, descriptions) comes
//! from one `StdRng` seeded with `--seed`, consumed in a fixed order, so the
//! same arguments always produce byte-identical output.

use std::io::Write;

use anyhow::{bail, Result};
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha1::{Digest, Sha1};

/// Options of `ldbench gen`.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub entries: u64,
    pub groups: u64,
    pub members_per_group: u64,
    pub suffix: String,
    pub password_scheme: PasswordScheme,
    pub seed: u64,
    pub group_style: GroupStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupStyle {
    /// groupOfNames + extensibleObject carrying gidNumber and memberUid: valid
    /// with the RFC 2307 nis.schema, where posixGroup is STRUCTURAL and cannot
    /// be combined with groupOfNames (slapd: "invalid structural object class chain").
    Extensible,
    /// groupOfNames + posixGroup: valid only with rfc2307bis (posixGroup AUXILIARY).
    Posix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PasswordScheme {
    /// {SSHA}: base64(sha1(password + salt) + salt), 4-byte salt (as slappasswd).
    Ssha,
    /// Clear text (no scheme prefix): measures bind without hashing cost.
    Cleartext,
}

const GIVEN: &[&str] = &[
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
    "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Yolanda",
];
const SURNAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
];
const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

/// First uidNumber / gidNumber used by the generated data.
pub const UID_BASE: u64 = 10000;
pub const GID_BASE: u64 = 20000;

/// `{SSHA}` value for `password` with the given salt:
/// `"{SSHA}" + base64(sha1(password || salt) || salt)`.
pub fn ssha(password: &[u8], salt: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(password);
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(salt);
    format!(
        "{{SSHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Checks a `{SSHA}` value against a clear-text password (used by tests).
#[cfg(test)]
pub fn ssha_verify(stored: &str, password: &[u8]) -> bool {
    let Some(b64) = stored.strip_prefix("{SSHA}") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    if raw.len() <= 20 {
        return false;
    }
    let (digest, salt) = raw.split_at(20);
    let mut h = Sha1::new();
    h.update(password);
    h.update(salt);
    h.finalize().as_slice() == digest
}

/// The DN of user `i` (users are numbered 1..=entries).
pub fn user_dn(i: u64, suffix: &str) -> String {
    format!("uid=user{i},ou=people,{suffix}")
}

/// The clear-text password of user `i`.
pub fn user_password(i: u64) -> String {
    format!("pass{i}")
}

/// First RDN value of the suffix, e.g. "example" for dc=example,dc=com.
fn suffix_parts(suffix: &str) -> Result<(String, String, String)> {
    let first = suffix.split(',').next().unwrap_or_default();
    let Some((attr, val)) = first.split_once('=') else {
        bail!("suffix {suffix:?} is not a DN");
    };
    let attr = attr.trim().to_string();
    let val = val.trim().to_string();
    // mail domain: the dc components joined by dots, else "example.com"
    let dcs: Vec<&str> = suffix
        .split(',')
        .filter_map(|rdn| {
            let (a, v) = rdn.split_once('=')?;
            a.trim().eq_ignore_ascii_case("dc").then_some(v.trim())
        })
        .collect();
    let domain = if dcs.is_empty() {
        "example.com".to_string()
    } else {
        dcs.join(".")
    };
    Ok((attr, val, domain))
}

/// Writes the LDIF to `out`.
pub fn generate<W: Write>(opts: &GenOptions, out: &mut W) -> Result<()> {
    let suffix = opts.suffix.as_str();
    let (rdn_attr, rdn_val, domain) = suffix_parts(suffix)?;
    let mut rng = StdRng::seed_from_u64(opts.seed);

    // suffix entry
    writeln!(out, "dn: {suffix}")?;
    if rdn_attr.eq_ignore_ascii_case("dc") {
        writeln!(out, "objectClass: top")?;
        writeln!(out, "objectClass: dcObject")?;
        writeln!(out, "objectClass: organization")?;
        writeln!(out, "dc: {rdn_val}")?;
        writeln!(out, "o: {rdn_val}")?;
    } else if rdn_attr.eq_ignore_ascii_case("o") {
        writeln!(out, "objectClass: top")?;
        writeln!(out, "objectClass: organization")?;
        writeln!(out, "o: {rdn_val}")?;
    } else {
        bail!("suffix must start with dc= or o=");
    }
    writeln!(out)?;
    for ou in ["people", "groups"] {
        writeln!(out, "dn: ou={ou},{suffix}")?;
        writeln!(out, "objectClass: top")?;
        writeln!(out, "objectClass: organizationalUnit")?;
        writeln!(out, "ou: {ou}")?;
        writeln!(out)?;
    }

    let groups = opts.groups.max(1);
    let mut salt = [0u8; 4];
    for i in 1..=opts.entries {
        let given = GIVEN[(i as usize) % GIVEN.len()];
        let sn = SURNAMES[((i as usize) / GIVEN.len()) % SURNAMES.len()];
        let gid = GID_BASE + (i % groups);
        rng.fill(&mut salt);
        let w1 = WORDS[rng.gen_range(0..WORDS.len())];
        let w2 = WORDS[rng.gen_range(0..WORDS.len())];
        let pw = user_password(i);
        let hashed = match opts.password_scheme {
            PasswordScheme::Ssha => ssha(pw.as_bytes(), &salt),
            PasswordScheme::Cleartext => pw,
        };
        write!(
            out,
            "dn: uid=user{i},ou=people,{suffix}\n\
             objectClass: top\n\
             objectClass: person\n\
             objectClass: organizationalPerson\n\
             objectClass: inetOrgPerson\n\
             objectClass: posixAccount\n\
             objectClass: shadowAccount\n\
             uid: user{i}\n\
             cn: User {i}\n\
             sn: {sn}\n\
             givenName: {given}\n\
             mail: user{i}@{domain}\n\
             uidNumber: {uidn}\n\
             gidNumber: {gid}\n\
             homeDirectory: /home/user{i}\n\
             loginShell: /bin/bash\n\
             userPassword: {hashed}\n\
             telephoneNumber: +1 555 {tel:07}\n\
             description: Benchmark user {i} {w1} {w2}\n\n",
            uidn = UID_BASE + i,
            tel = i % 10_000_000,
        )?;
    }

    if opts.groups > 0 {
        let mut members: Vec<u64> = Vec::with_capacity(opts.members_per_group as usize);
        for g in 0..opts.groups {
            members.clear();
            if opts.entries > 0 {
                let want = opts.members_per_group.min(opts.entries);
                while (members.len() as u64) < want {
                    let m = rng.gen_range(1..=opts.entries);
                    if !members.contains(&m) {
                        members.push(m);
                    }
                }
                members.sort_unstable();
            }
            writeln!(out, "dn: cn=group{g},ou=groups,{suffix}")?;
            writeln!(out, "objectClass: top")?;
            writeln!(out, "objectClass: groupOfNames")?;
            match opts.group_style {
                GroupStyle::Extensible => writeln!(out, "objectClass: extensibleObject")?,
                GroupStyle::Posix => writeln!(out, "objectClass: posixGroup")?,
            }
            writeln!(out, "cn: group{g}")?;
            writeln!(out, "gidNumber: {}", GID_BASE + g)?;
            writeln!(out, "description: Benchmark group {g}")?;
            if members.is_empty() {
                // groupOfNames requires a member: the suffix is a harmless one.
                writeln!(out, "member: {suffix}")?;
            }
            for m in &members {
                writeln!(out, "member: uid=user{m},ou=people,{suffix}")?;
            }
            for m in &members {
                writeln!(out, "memberUid: user{m}")?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64) -> GenOptions {
        GenOptions {
            entries: 200,
            groups: 5,
            members_per_group: 20,
            suffix: "dc=example,dc=com".into(),
            password_scheme: PasswordScheme::Ssha,
            seed,
            group_style: GroupStyle::Extensible,
        }
    }

    fn gen_bytes(o: &GenOptions) -> Vec<u8> {
        let mut v = Vec::new();
        generate(o, &mut v).expect("generate");
        v
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = gen_bytes(&opts(42));
        let b = gen_bytes(&opts(42));
        assert_eq!(a, b);
        let c = gen_bytes(&opts(43));
        assert_ne!(a, c, "a different seed changes salts");
    }

    #[test]
    fn counts_and_shape() {
        let text = String::from_utf8(gen_bytes(&opts(1))).expect("utf8");
        let dns: Vec<&str> = text.lines().filter(|l| l.starts_with("dn: ")).collect();
        assert_eq!(dns.len(), 3 + 200 + 5);
        assert_eq!(dns[0], "dn: dc=example,dc=com");
        assert!(text.contains("dn: uid=user1,ou=people,dc=example,dc=com\n"));
        assert!(text.contains("dn: uid=user200,ou=people,dc=example,dc=com\n"));
        assert!(!text.contains("uid=user0,"));
        assert!(text.contains("mail: user7@example.com\n"));
        let members = text.lines().filter(|l| l.starts_with("member: ")).count();
        assert_eq!(members, 5 * 20);
        // every user's password verifies
        let mut n = 0;
        let mut current = 0u64;
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("uid: user") {
                current = rest.parse().expect("uid number");
            }
            if let Some(pw) = l.strip_prefix("userPassword: ") {
                assert!(ssha_verify(pw, user_password(current).as_bytes()), "{l}");
                n += 1;
            }
        }
        assert_eq!(n, 200);
    }

    #[test]
    fn ssha_format() {
        // base64(sha1("secret" + "salt") + "salt"): digest first, salt after.
        let v = ssha(b"secret", b"salt");
        assert!(v.starts_with("{SSHA}"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&v[6..])
            .expect("b64");
        assert_eq!(raw.len(), 24);
        assert_eq!(&raw[20..], b"salt");
        let mut h = Sha1::new();
        h.update(b"secretsalt");
        assert_eq!(&raw[..20], h.finalize().as_slice());
        assert!(ssha_verify(&v, b"secret"));
        assert!(!ssha_verify(&v, b"Secret"));
        assert!(!ssha_verify("{SSHA}!!", b"secret"));
    }

    #[test]
    fn ssha_matches_slappasswd_output() {
        // Produced by `slappasswd -s secret -h {SSHA}` (4-byte salt).
        // Verifying it proves the same layout: digest first, salt after.
        let from_slappasswd = "{SSHA}gYUeJdcXJYxgr89fJoqwBWY0NiiV2wDt";
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&from_slappasswd[6..])
            .expect("b64");
        let salt = &raw[20..];
        assert_eq!(ssha(b"secret", salt), from_slappasswd);
        assert!(ssha_verify(from_slappasswd, b"secret"));
    }
}
