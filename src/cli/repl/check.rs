//! `ferrodir repl check`: are the replicas of a suffix identical?
//!
//! Each server's RUV (the root-only entry
//! `nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff,<suffix>`) says up to
//! which CSN it holds the changes of each replica ID. Changes still
//! travelling would show up as differences, so the entries are compared
//! only once every server's RUV holds the same maximum CSN per replica ID,
//! and only if no RUV moved while the entries were read: then every server
//! was read as of the same set of changes. Entries are matched by
//! entryUUID; conflict and glue entries are included.
//!
//! Compared: the DN and every stored attribute, operational ones
//! (entryCSN, entryUUID, creatorsName, timestamps...) included, values as
//! sets of bytes. Left out: the attributes the server computes when it
//! answers (entryDN, hasSubordinates, numSubordinates, subschemaSubentry,
//! and contextCSN, the RUV in OpenLDAP's form),
//! which follow from the DN and the tree and would only repeat a difference
//! already reported on the entry that causes it. Everything else ferrodir
//! stores is replicated (lockout state lives in memory, not in entries), so
//! between converged replicas it is identical; testing two converged
//! suppliers found no other attribute that differs.

use super::{connect_as, read_entry, read_password, values_text, with_subentries};
use crate::cli::args::CheckArgs;
use anyhow::{anyhow, bail, Context, Result};
use ferrodir::model::Dn;
use ferrodir::repl::session::client::{Client, Entry, LdapFilter, LdapSearchScope};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The 389-ds name of the RUV entry below a suffix.
const RUV_RDN: &str = "nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff";

/// Attributes computed per search, not stored: never compared.
const COMPUTED: &[&str] = &[
    "entrydn",
    "hassubordinates",
    "numsubordinates",
    "subschemasubentry",
    // The suffix entry's newest CSN per replica ID: this server's RUV,
    // which the check compares on its own (replicas converge on entries
    // before their RUVs say so).
    "contextcsn",
];

/// How often the RUVs are read again while they differ.
const POLL: Duration = Duration::from_millis(250);

/// What a RUV says for the comparison: the generation and, per replica ID,
/// the largest CSN held. (The smallest CSNs are local: changelog trimming.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
struct RuvMax {
    generation: String,
    max_csn: BTreeMap<u16, String>,
}

fn parse_ruv(e: &Entry) -> RuvMax {
    let mut ruv = RuvMax::default();
    for v in values_text(e, "nsds50ruv") {
        if let Some(g) = v.strip_prefix("{replicageneration}") {
            ruv.generation = g.trim().to_string();
        } else if let Some(rest) = v.strip_prefix("{replica ") {
            // "{replica 1} min max" (389-ds: "{replica 1 ldap://h:p} min max").
            let rid = rest
                .split(|c: char| c == '}' || c.is_whitespace())
                .next()
                .and_then(|r| r.parse::<u16>().ok());
            let max = rest.split_whitespace().last().filter(|m| !m.ends_with('}'));
            if let (Some(rid), Some(max)) = (rid, max) {
                ruv.max_csn.insert(rid, max.to_ascii_lowercase());
            }
        }
    }
    ruv
}

/// One entry as compared: DN and attributes (lowercase name -> values).
#[derive(Debug, Clone)]
struct Compared {
    dn: String,
    attrs: BTreeMap<String, BTreeSet<Vec<u8>>>,
    /// Lowercase name -> the name as the server spelled it, for reports.
    names: BTreeMap<String, String>,
}

impl PartialEq for Compared {
    fn eq(&self, other: &Self) -> bool {
        self.dn == other.dn && self.attrs == other.attrs
    }
}

/// What was read from one server: its entries by key (entryUUID,
/// lowercase) and its RUV after reading them.
#[derive(Default)]
struct Side {
    url: String,
    entries: BTreeMap<String, Compared>,
    ruv: RuvMax,
}

struct Replica {
    client: Client,
    side: Side,
}

fn key_of(e: &Entry) -> String {
    match e.first("entryUUID") {
        Some(u) => u.to_ascii_lowercase(),
        None => format!("(no entryUUID) {}", e.dn.to_ascii_lowercase()),
    }
}

fn compared(e: Entry) -> Compared {
    let mut attrs: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (name, values) in e.attrs {
        let lower = name.to_ascii_lowercase();
        if COMPUTED.contains(&lower.as_str()) {
            continue;
        }
        attrs.entry(lower.clone()).or_default().extend(values);
        names.entry(lower).or_insert(name);
    }
    Compared {
        dn: e.dn,
        attrs,
        names,
    }
}

async fn read_ruv(client: &mut Client, url: &str, suffix: &str) -> Result<RuvMax> {
    let dn = format!("{RUV_RDN},{suffix}");
    match read_entry(client, &dn, &["nsds50ruv"]).await? {
        Some(e) => Ok(parse_ruv(&e)),
        None => bail!(
            "{url}: no RUV for {suffix} (it is not a replicated suffix there, or the identity is not the root DN)"
        ),
    }
}

async fn read_entries(client: &mut Client, suffix: &str) -> Result<BTreeMap<String, Compared>> {
    let found = client
        .search_with(
            suffix,
            LdapSearchScope::Subtree,
            with_subentries(LdapFilter::Present("objectClass".into())),
            &["*", "+"],
        )
        .await
        .with_context(|| format!("reading {suffix}"))?;
    Ok(found
        .into_iter()
        .map(|e| (key_of(&e), compared(e)))
        .collect())
}

/// One subtree's summary on one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Digest256 {
    entries: usize,
    sha256: String,
}

#[derive(Serialize)]
struct SubtreeRow {
    /// The first-level RDN below the suffix; "" for the suffix entry.
    subtree: String,
    per_server: Vec<Digest256>,
    same: bool,
}

#[derive(Serialize)]
struct AttrDiff {
    name: String,
    /// Per server (in --url order): the values, None where the entry is missing.
    values: Vec<Option<Vec<String>>>,
}

#[derive(Serialize)]
struct EntryDiff {
    key: String,
    /// Per server: the entry's DN, None where it is missing.
    dns: Vec<Option<String>>,
    missing_on: Vec<String>,
    dn_differs: bool,
    attributes: Vec<AttrDiff>,
}

#[derive(Serialize)]
struct Report {
    suffix: String,
    servers: Vec<String>,
    /// Whether every RUV held the same changes while the entries were read.
    ruvs_agree: bool,
    ruvs: Vec<RuvMax>,
    subtrees: Vec<SubtreeRow>,
    differences: Vec<EntryDiff>,
    identical: bool,
}

pub async fn run(args: &CheckArgs) -> Result<bool> {
    if args.urls.len() < 2 {
        bail!("give at least two servers (--url A --url B)");
    }
    let suffix_dn =
        Dn::parse(&args.suffix).map_err(|e| anyhow!("--suffix '{}': {e}", args.suffix))?;
    let suffix = args.suffix.as_str();
    let password = read_password(args.password_file.as_deref())?;
    let mut replicas = Vec::new();
    for url in &args.urls {
        let client = connect_as(url, &args.bind_dn, &password)
            .await
            .with_context(|| url.clone())?;
        replicas.push(Replica {
            client,
            side: Side {
                url: url.clone(),
                ..Side::default()
            },
        });
    }
    let ruvs_agree = read_consistent(&mut replicas, suffix, Duration::from_secs(args.wait)).await?;
    let sides: Vec<&Side> = replicas.iter().map(|r| &r.side).collect();
    let report = compare(suffix, &suffix_dn, &sides, ruvs_agree);
    for r in replicas {
        r.client.unbind().await;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render(&report, args.wait));
    }
    Ok(report.identical)
}

/// Reads every replica's entries as of RUVs that agree (and did not move
/// during the read). Returns whether that was achieved within `wait`; if
/// not, the entries of the last attempt are kept for the report.
async fn read_consistent(replicas: &mut [Replica], suffix: &str, wait: Duration) -> Result<bool> {
    let deadline = Instant::now() + wait;
    loop {
        let mut before = Vec::new();
        for r in replicas.iter_mut() {
            before.push(read_ruv(&mut r.client, &r.side.url, suffix).await?);
        }
        let agree = before.windows(2).all(|w| w.first() == w.last());
        let late = Instant::now() >= deadline;
        if agree || late {
            for r in replicas.iter_mut() {
                r.side.entries = read_entries(&mut r.client, suffix)
                    .await
                    .with_context(|| r.side.url.clone())?;
            }
            let mut still = true;
            for (r, b) in replicas.iter_mut().zip(&before) {
                r.side.ruv = read_ruv(&mut r.client, &r.side.url, suffix).await?;
                still &= r.side.ruv == *b;
            }
            if agree && still {
                return Ok(true);
            }
            if late {
                return Ok(false);
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The first-level RDN of `dn` below the suffix ("" for the suffix entry).
fn subtree_of(dn: &str, suffix_len: usize) -> String {
    match Dn::parse(dn) {
        Ok(d) if d.rdns.len() > suffix_len => d
            .rdns
            .get(d.rdns.len() - suffix_len - 1)
            .map(|r| r.to_string().to_ascii_lowercase())
            .unwrap_or_default(),
        Ok(_) => String::new(),
        Err(_) => format!("(unparsable DN) {dn}"),
    }
}

/// Feeds one entry into a digest, every field length-prefixed so that no
/// two different entries hash alike.
fn hash_entry(h: &mut Sha256, key: &str, e: &Compared) {
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(key.as_bytes());
    field(e.dn.as_bytes());
    for (name, values) in &e.attrs {
        field(name.as_bytes());
        field(&(values.len() as u64).to_be_bytes());
        for v in values {
            field(v);
        }
    }
}

fn compare(suffix: &str, suffix_dn: &Dn, replicas: &[&Side], ruvs_agree: bool) -> Report {
    let suffix_len = suffix_dn.rdns.len();
    // Per server: subtree -> (count, digest), entries in key order.
    let mut sums: Vec<BTreeMap<String, (usize, Sha256)>> = Vec::new();
    for r in replicas {
        let mut per: BTreeMap<String, (usize, Sha256)> = BTreeMap::new();
        for (key, e) in &r.entries {
            let slot = per
                .entry(subtree_of(&e.dn, suffix_len))
                .or_insert_with(|| (0, Sha256::new()));
            slot.0 += 1;
            hash_entry(&mut slot.1, key, e);
        }
        sums.push(per);
    }
    let subtree_names: BTreeSet<String> = sums.iter().flat_map(|s| s.keys().cloned()).collect();
    let subtrees: Vec<SubtreeRow> = subtree_names
        .into_iter()
        .map(|name| {
            let per_server: Vec<Digest256> = sums
                .iter()
                .map(|s| match s.get(&name) {
                    Some((n, h)) => Digest256 {
                        entries: *n,
                        sha256: hex(&h.clone().finalize()),
                    },
                    None => Digest256 {
                        entries: 0,
                        sha256: String::new(),
                    },
                })
                .collect();
            let same = per_server.windows(2).all(|w| w.first() == w.last());
            SubtreeRow {
                subtree: name,
                per_server,
                same,
            }
        })
        .collect();

    let keys: BTreeSet<&String> = replicas.iter().flat_map(|r| r.entries.keys()).collect();
    let mut differences = Vec::new();
    for key in keys {
        let per: Vec<Option<&Compared>> = replicas.iter().map(|r| r.entries.get(key)).collect();
        if per.windows(2).all(|w| w.first() == w.last()) {
            continue;
        }
        let missing_on: Vec<String> = replicas
            .iter()
            .zip(&per)
            .filter(|(_, e)| e.is_none())
            .map(|(r, _)| r.url.clone())
            .collect();
        let present: Vec<&Compared> = per.iter().flatten().copied().collect();
        let dn_differs = present
            .windows(2)
            .any(|w| matches!((w.first(), w.last()), (Some(a), Some(b)) if a.dn != b.dn));
        let names: BTreeSet<&String> = present.iter().flat_map(|e| e.attrs.keys()).collect();
        let mut attributes = Vec::new();
        for name in names {
            let vals: Vec<Option<&BTreeSet<Vec<u8>>>> =
                present.iter().map(|e| e.attrs.get(name)).collect();
            if vals.windows(2).all(|w| w.first() == w.last()) {
                continue;
            }
            let shown = present
                .iter()
                .find_map(|e| e.names.get(name))
                .unwrap_or(name);
            attributes.push(AttrDiff {
                name: shown.clone(),
                values: per
                    .iter()
                    .map(|e| {
                        e.map(|e| {
                            e.attrs
                                .get(name)
                                .map(|vs| vs.iter().map(|v| show_value(v)).collect())
                                .unwrap_or_default()
                        })
                    })
                    .collect(),
            });
        }
        differences.push(EntryDiff {
            key: key.clone(),
            dns: per.iter().map(|e| e.map(|e| e.dn.clone())).collect(),
            missing_on,
            dn_differs,
            attributes,
        });
    }
    let identical = ruvs_agree && differences.is_empty() && subtrees.iter().all(|s| s.same);
    Report {
        suffix: suffix.to_string(),
        servers: replicas.iter().map(|r| r.url.clone()).collect(),
        ruvs_agree,
        ruvs: replicas.iter().map(|r| r.ruv.clone()).collect(),
        subtrees,
        differences,
        identical,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A value as text; one that is not printable UTF-8 as base64.
fn show_value(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(t) if !t.chars().any(char::is_control) => t.to_string(),
        _ => {
            use base64::Engine;
            format!(
                "(base64) {}",
                base64::engine::general_purpose::STANDARD.encode(v)
            )
        }
    }
}

/// Server labels for the text report: A, B, C...
fn label(i: usize) -> String {
    char::from_u32(u32::from(b'A') + i as u32)
        .map(String::from)
        .unwrap_or_else(|| format!("#{i}"))
}

fn render(r: &Report, wait: u64) -> String {
    let mut out = format!("suffix {}\n", r.suffix);
    for (i, url) in r.servers.iter().enumerate() {
        out.push_str(&format!("  {} {url}\n", label(i)));
    }
    // The RUVs: max CSN per replica ID, one column per server.
    let rids: BTreeSet<u16> = r
        .ruvs
        .iter()
        .flat_map(|v| v.max_csn.keys().copied())
        .collect();
    if r.ruvs_agree {
        out.push_str("compared as of (max CSN per replica ID, the same on every server):\n");
        if let Some(first) = r.ruvs.first() {
            for (rid, csn) in &first.max_csn {
                out.push_str(&format!("  replica {rid:<5} {csn}\n"));
            }
        }
    } else {
        out.push_str(&format!(
            "the RUVs did not hold the same changes within {wait} s (changes still arriving, or replication stuck); compared anyway:\n"
        ));
        let gens: BTreeSet<&String> = r.ruvs.iter().map(|v| &v.generation).collect();
        if gens.len() > 1 {
            for (i, v) in r.ruvs.iter().enumerate() {
                out.push_str(&format!(
                    "  {} replica generation {}\n",
                    label(i),
                    v.generation
                ));
            }
        }
        for rid in rids {
            let cells: Vec<String> = r
                .ruvs
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    format!(
                        "{} {}",
                        label(i),
                        v.max_csn.get(&rid).map(String::as_str).unwrap_or("-")
                    )
                })
                .collect();
            out.push_str(&format!("  replica {rid:<5} {}\n", cells.join("  ")));
        }
    }
    out.push_str("subtrees (entries, SHA-256 prefix per server):\n");
    let name_width = r
        .subtrees
        .iter()
        .map(|s| display_subtree(&s.subtree).chars().count())
        .max()
        .unwrap_or(0);
    for s in &r.subtrees {
        let cells: Vec<String> = s
            .per_server
            .iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "{} {:>6} {:<16}",
                    label(i),
                    d.entries,
                    d.sha256.get(..16).unwrap_or("-")
                )
            })
            .collect();
        let line = format!(
            "  {:<name_width$}  {}  {}",
            display_subtree(&s.subtree),
            cells.join("  "),
            if s.same { "same" } else { "DIFFERS" }
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("entries that differ: {}\n", r.differences.len()));
    for d in &r.differences {
        let dns: BTreeSet<&String> = d.dns.iter().flatten().collect();
        out.push_str(&format!(
            "  {} ({})\n",
            dns.into_iter().cloned().collect::<Vec<_>>().join(" | "),
            d.key
        ));
        if !d.missing_on.is_empty() {
            let on: Vec<String> = d
                .dns
                .iter()
                .enumerate()
                .filter(|(_, dn)| dn.is_none())
                .map(|(i, _)| label(i))
                .collect();
            out.push_str(&format!("    missing on {}\n", on.join(", ")));
        }
        if d.dn_differs {
            for (i, dn) in d.dns.iter().enumerate() {
                if let Some(dn) = dn {
                    out.push_str(&format!("    DN on {}: {dn}\n", label(i)));
                }
            }
        }
        for a in &d.attributes {
            let shown: Vec<String> = a
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_ref().map(|v| format!("{} {v:?}", label(i))))
                .collect();
            out.push_str(&format!("    {}: {}\n", a.name, shown.join("; ")));
        }
    }
    out.push_str(if r.identical {
        "identical\n"
    } else {
        "DIFFERENT\n"
    });
    out
}

fn display_subtree(s: &str) -> String {
    if s.is_empty() {
        "(suffix entry)".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
        Entry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(n, vs)| {
                    (
                        n.to_string(),
                        vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn ruv_lines_of_ferrodir_and_389ds_parse_to_max_csns() {
        let e = entry(
            "x",
            &[(
                "nsds50ruv",
                &[
                    "{replicageneration} 70521e77",
                    "{replica 1} 6b14333d000000010000 6b143345000100010000",
                    "{replica 2 ldap://h:389} 6b14 6B143350000000020000",
                    "{replica 3 ldap://h:389}",
                ],
            )],
        );
        let ruv = parse_ruv(&e);
        assert_eq!(ruv.generation, "70521e77");
        assert_eq!(
            ruv.max_csn.into_iter().collect::<Vec<_>>(),
            vec![
                (1, "6b143345000100010000".to_string()),
                (2, "6b143350000000020000".to_string())
            ]
        );
    }

    #[test]
    fn computed_attributes_are_not_compared_and_value_order_does_not_matter() {
        let a = compared(entry(
            "uid=a,dc=x",
            &[("mail", &["1", "2"]), ("numSubordinates", &["0"])],
        ));
        let b = compared(entry(
            "uid=a,dc=x",
            &[("Mail", &["2", "1"]), ("numSubordinates", &["3"])],
        ));
        assert_eq!(a, b);
    }

    fn side(url: &str, entries: Vec<Entry>) -> Side {
        Side {
            url: url.into(),
            entries: entries
                .into_iter()
                .map(|e| (key_of(&e), compared(e)))
                .collect(),
            ruv: RuvMax::default(),
        }
    }

    #[test]
    fn compare_names_missing_and_different_entries_and_their_subtrees() {
        let suffix = "dc=x";
        let top = || entry(suffix, &[("entryUUID", &["u0"]), ("dc", &["x"])]);
        let alice = |sn: &str| {
            entry(
                "uid=alice,ou=people,dc=x",
                &[("entryUUID", &["u1"]), ("sn", &[sn])],
            )
        };
        let group = || entry("ou=groups,dc=x", &[("entryUUID", &["u2"])]);
        let dn = Dn::parse(suffix).unwrap();

        let a = side("A", vec![top(), alice("L"), group()]);
        let b = side("B", vec![top(), alice("L"), group()]);
        let same = compare(suffix, &dn, &[&a, &b], true);
        assert!(same.identical);
        assert!(same.differences.is_empty());
        assert_eq!(same.subtrees.len(), 3);
        assert!(same.subtrees.iter().all(|s| s.same));
        // As of RUVs that never agreed, even equal data is no proof.
        assert!(!compare(suffix, &dn, &[&a, &b], false).identical);

        let c = side("C", vec![top(), alice("M")]);
        let r = compare(suffix, &dn, &[&a, &c], true);
        assert!(!r.identical);
        let keys: Vec<&str> = r.differences.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, vec!["u1", "u2"]);
        let alice_diff = &r.differences[0];
        assert_eq!(alice_diff.attributes.len(), 1);
        assert_eq!(alice_diff.attributes[0].name, "sn");
        assert_eq!(r.differences[1].missing_on, vec!["C".to_string()]);
        let differing: Vec<&str> = r
            .subtrees
            .iter()
            .filter(|s| !s.same)
            .map(|s| s.subtree.as_str())
            .collect();
        assert_eq!(differing, vec!["ou=groups", "ou=people"]);
        let text = render(&r, 30);
        assert!(text.contains("uid=alice,ou=people,dc=x (u1)"), "{text}");
        assert!(text.contains("sn: A [\"L\"]; B [\"M\"]"), "{text}");
        assert!(text.contains("missing on B"), "{text}");
        assert!(text.ends_with("DIFFERENT\n"), "{text}");
    }

    #[test]
    fn subtrees_are_the_first_rdn_below_the_suffix() {
        assert_eq!(subtree_of("dc=example,dc=com", 2), "");
        assert_eq!(subtree_of("ou=People,dc=example,dc=com", 2), "ou=people");
        assert_eq!(
            subtree_of("uid=a,ou=People,dc=example,dc=com", 2),
            "ou=people"
        );
    }
}
