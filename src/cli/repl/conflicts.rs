//! `ferrodir repl conflicts list|show|resolve`: the conflict and glue
//! entries concurrent changes leave behind (src/repl/core/mod.rs, rules 6
//! and 7), found and settled over LDAP like 389-ds's `dsconf repl-conflict`.
//!
//! Resolving only ever deletes one entry: the replication core decides
//! who holds a contested DN again whenever a claimant is deleted, on every
//! replica, so deleting the plain-DN holder makes the conflict entry take
//! the plain DN everywhere, and no rename is needed.

use super::{
    children, conflict_filter, connect, naming_contexts, read_entry, same_dn, values_text,
};
use crate::cli::args::{ConflictsCommand, ReplConn, ResolveAction};
use anyhow::{anyhow, bail, Context, Result};
use ferrodir::repl::session::client::{Client, Entry, LdapFilter, LdapSearchScope};
use serde::Serialize;
use std::time::{Duration, Instant};

const CONFLICT_ATTR: &str = "nsds5ReplConflict";

pub async fn run(cmd: ConflictsCommand) -> Result<()> {
    match cmd {
        ConflictsCommand::List { conn, suffix, json } => list(&conn, &suffix, json).await,
        ConflictsCommand::Show { conn, dn } => show(&conn, &dn).await,
        ConflictsCommand::Resolve { conn, dn, action } => resolve(&conn, &dn, action).await,
    }
}

/// What an entry with nsds5ReplConflict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    /// Lost a contested DN: named nsuniqueid=<id>+<rdn>,<parent>.
    NamingConflict,
    /// A deleted entry kept because entries remain below it.
    Glue,
    /// A marker this version does not know (another server's, say).
    Other,
}

impl Kind {
    fn text(self) -> &'static str {
        match self {
            Kind::NamingConflict => "naming conflict",
            Kind::Glue => "glue",
            Kind::Other => "other",
        }
    }
}

/// The kind of a conflict or glue entry and the DN its marker names (the
/// plain DN for a naming conflict; for glue, the deleted entry's own DN).
fn classify(e: &Entry) -> (Kind, String) {
    let marker = e.first(CONFLICT_ATTR).unwrap_or_default();
    let (word, dn) = marker
        .split_once(' ')
        .map(|(w, d)| (w, d.trim().to_string()))
        .unwrap_or((marker.as_str(), String::new()));
    let glue_class = values_text(e, "objectClass")
        .iter()
        .any(|c| c.eq_ignore_ascii_case("glue"));
    let kind = if word.eq_ignore_ascii_case("namingConflict") {
        Kind::NamingConflict
    } else if word.eq_ignore_ascii_case("deletedEntryHasChildren") || glue_class {
        Kind::Glue
    } else {
        Kind::Other
    };
    let dn = if dn.is_empty() && kind == Kind::Glue {
        e.dn.clone()
    } else {
        dn
    };
    (kind, dn)
}

/// One line of `repl conflicts list` (and its JSON object).
#[derive(Serialize)]
struct Listed {
    suffix: String,
    dn: String,
    kind: Kind,
    /// For a naming conflict the plain DN it contests; for glue the DN of
    /// the deleted entry it stands for.
    conflicts_with: String,
    entry_csn: String,
    /// The raw nsds5ReplConflict value.
    marker: String,
}

async fn list(conn: &ReplConn, suffixes: &[String], json: bool) -> Result<()> {
    let mut client = connect(conn).await?;
    let suffixes = if suffixes.is_empty() {
        naming_contexts(&mut client).await?
    } else {
        suffixes.to_vec()
    };
    let mut rows: Vec<Listed> = Vec::new();
    let mut per_suffix: Vec<(String, usize)> = Vec::new();
    for suffix in &suffixes {
        let mut found = client
            .search_with(
                suffix,
                LdapSearchScope::Subtree,
                conflict_filter(),
                &[CONFLICT_ATTR, "objectClass", "entryCSN"],
            )
            .await
            .with_context(|| format!("searching {suffix}"))?;
        found.sort_by(|a, b| a.dn.cmp(&b.dn));
        per_suffix.push((suffix.clone(), found.len()));
        for e in found {
            let (kind, conflicts_with) = classify(&e);
            rows.push(Listed {
                suffix: suffix.clone(),
                kind,
                conflicts_with,
                entry_csn: e.first("entryCSN").unwrap_or_default(),
                marker: e.first(CONFLICT_ATTR).unwrap_or_default(),
                dn: e.dn,
            });
        }
    }
    client.unbind().await;
    if json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    let mut out = String::new();
    for (suffix, n) in per_suffix {
        let mine: Vec<&Listed> = rows.iter().filter(|r| r.suffix == suffix).collect();
        let glue = mine.iter().filter(|r| r.kind == Kind::Glue).count();
        match n {
            0 => out.push_str(&format!("{suffix}: no conflict entries\n")),
            _ => out.push_str(&format!(
                "{suffix}: {n} conflict entr{} ({} naming conflict{}, {glue} glue)\n",
                if n == 1 { "y" } else { "ies" },
                n - glue,
                if n - glue == 1 { "" } else { "s" },
            )),
        }
        for r in mine {
            let with = match r.kind {
                Kind::Glue => "stands for",
                _ => "conflicts with",
            };
            out.push_str(&format!(
                "{}\n  kind            {}\n  {with:<15} {}\n  entryCSN        {}\n",
                r.dn,
                r.kind.text(),
                r.conflicts_with,
                r.entry_csn
            ));
            if r.kind == Kind::Other {
                out.push_str(&format!("  marker          {}\n", r.marker));
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// The entry at `dn`, which must be a conflict or glue entry.
async fn conflict_entry(client: &mut Client, dn: &str) -> Result<Entry> {
    let Some(e) = read_entry(client, dn, &["*", "+"]).await? else {
        bail!("no entry {dn} (ferrodir repl conflicts list shows the conflict entries)");
    };
    if e.first(CONFLICT_ATTR).is_none()
        && !values_text(&e, "objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case("glue"))
    {
        bail!("{dn} is not a conflict entry: it has no {CONFLICT_ATTR}");
    }
    Ok(e)
}

async fn show(conn: &ReplConn, dn: &str) -> Result<()> {
    let mut client = connect(conn).await?;
    let entry = conflict_entry(&mut client, dn).await?;
    let (kind, plain) = classify(&entry);
    let mut out = String::new();
    match kind {
        Kind::Glue => {
            let below = children(&mut client, &entry.dn).await?;
            out.push_str(&format!(
                "{} is a glue entry: {}; it goes away by itself when they are deleted or moved elsewhere\n\n",
                entry.dn,
                glue_story(&entry.dn, &plain)
            ));
            out.push_str(&ldif(&entry));
            out.push_str(&format!("\nchildren ({}):\n", below.len()));
            for c in below {
                out.push_str(&format!("  {c}\n"));
            }
        }
        Kind::NamingConflict | Kind::Other => {
            let other = read_entry(&mut client, &plain, &["*", "+"]).await?;
            out.push_str(&format!("< {}   (conflict entry)\n", entry.dn));
            match &other {
                Some(o) => out.push_str(&format!("> {}   (holds the plain DN)\n\n", o.dn)),
                None => out.push_str(&format!("> no entry holds {plain}\n\n")),
            }
            out.push_str(&side_by_side(&entry, other.as_ref()));
        }
    }
    client.unbind().await;
    print!("{out}");
    Ok(())
}

/// Why a glue entry is there, in words.
fn glue_story(dn: &str, deleted: &str) -> String {
    if same_dn(dn, deleted) {
        "it was deleted while entries below it remained or were added on another supplier".into()
    } else {
        format!("it stands for the deleted entry {deleted}, kept for the entries below it")
    }
}

/// `name: value`, or `name:: base64` for a value LDIF cannot show as is.
fn ldif_line(name: &str, v: &[u8]) -> String {
    let plain = std::str::from_utf8(v).is_ok_and(|t| {
        !t.starts_with([' ', ':', '<']) && !t.ends_with(' ') && !t.chars().any(char::is_control)
    });
    if plain {
        format!("{name}: {}", String::from_utf8_lossy(v))
    } else {
        use base64::Engine;
        format!(
            "{name}:: {}",
            base64::engine::general_purpose::STANDARD.encode(v)
        )
    }
}

fn ldif(e: &Entry) -> String {
    let mut out = format!("dn: {}\n", e.dn);
    for (name, values) in &e.attrs {
        for v in values {
            out.push_str(&ldif_line(name, v));
            out.push('\n');
        }
    }
    out
}

/// The two entries as two columns, attribute by attribute, like
/// `diff -y`: a value both have on one row, values only one has facing
/// each other with `|`, or alone with `<` / `>`.
fn side_by_side(left: &Entry, right: Option<&Entry>) -> String {
    let mut names: Vec<String> = Vec::new();
    for (n, _) in left.attrs.iter().chain(right.iter().flat_map(|r| &r.attrs)) {
        if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    let values_of = |e: Option<&Entry>, name: &str| -> Vec<Vec<u8>> {
        let mut vs: Vec<Vec<u8>> = e
            .map(|e| {
                e.attrs
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .flat_map(|(_, vs)| vs.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        vs.sort();
        vs
    };
    let mut rows: Vec<(String, char, String)> = Vec::new();
    for name in &names {
        let l = values_of(Some(left), name);
        let r = values_of(right, name);
        let only_l: Vec<&Vec<u8>> = l.iter().filter(|v| !r.contains(v)).collect();
        let only_r: Vec<&Vec<u8>> = r.iter().filter(|v| !l.contains(v)).collect();
        for v in l.iter().filter(|v| r.contains(v)) {
            let line = ldif_line(name, v);
            rows.push((line.clone(), ' ', line));
        }
        let paired = only_l.len().max(only_r.len());
        for i in 0..paired {
            let lt = only_l.get(i).map(|v| ldif_line(name, v));
            let rt = only_r.get(i).map(|v| ldif_line(name, v));
            let mark = match (&lt, &rt) {
                (Some(_), Some(_)) => '|',
                (Some(_), None) => '<',
                _ => '>',
            };
            rows.push((lt.unwrap_or_default(), mark, rt.unwrap_or_default()));
        }
    }
    const MAX_WIDTH: usize = 60;
    let width = rows
        .iter()
        .map(|(l, _, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_WIDTH);
    let mut out = String::new();
    for (l, mark, r) in rows {
        // Long values wrap inside their column.
        let lparts = wrap(&l, width);
        let rparts = wrap(&r, MAX_WIDTH);
        for i in 0..lparts.len().max(rparts.len()) {
            let lp = lparts.get(i).map(String::as_str).unwrap_or("");
            let rp = rparts.get(i).map(String::as_str).unwrap_or("");
            let m = if i == 0 { mark } else { ' ' };
            let line = format!("{lp:<width$}  {m}  {rp}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() || width == 0 {
        return vec![text.to_string()];
    }
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}

async fn resolve(conn: &ReplConn, dn: &str, action: ResolveAction) -> Result<()> {
    let mut client = connect(conn).await?;
    let entry = conflict_entry(&mut client, dn).await?;
    let (kind, plain) = classify(&entry);
    if kind == Kind::Glue {
        let below = children(&mut client, &entry.dn).await?;
        let mut msg = format!(
            "{} is a glue entry ({}): deleting it is not the way to resolve it; it goes away \
             by itself when its last child is deleted or moved elsewhere. Its children ({}):",
            entry.dn,
            glue_story(&entry.dn, &plain),
            below.len()
        );
        for c in &below {
            msg.push_str(&format!("\n  {c}"));
        }
        bail!(msg);
    }
    if kind != Kind::NamingConflict {
        bail!(
            "{} has an unknown conflict marker ({CONFLICT_ATTR}: {}); resolve it by hand",
            entry.dn,
            entry.first(CONFLICT_ATTR).unwrap_or_default()
        );
    }
    let other = read_entry(&mut client, &plain, &["entryUUID", "hasSubordinates"]).await?;
    if action.keep_this {
        let Some(other) = other else {
            bail!(
                "no entry holds {plain}, so there is nothing to delete for {} to take its name",
                entry.dn
            );
        };
        refuse_non_leaf(&mut client, &other.dn, "the entry holding the plain DN").await?;
        let uuid = entry
            .first("entryUUID")
            .ok_or_else(|| anyhow!("{} has no entryUUID: cannot follow it", entry.dn))?;
        client
            .delete(&other.dn)
            .await
            .with_context(|| format!("deleting {}", other.dn))?;
        println!("deleted {}", other.dn);
        let now = wait_for_name(&mut client, &uuid, &plain).await?;
        println!("{} is now {now}", entry.dn);
    } else {
        if action.keep_other && other.is_none() {
            bail!(
                "no entry holds {plain}: deleting {} would leave nothing at that DN (use --keep-this \
                 to keep it, or --delete to delete it anyway)",
                entry.dn
            );
        }
        refuse_non_leaf(&mut client, &entry.dn, "the conflict entry").await?;
        client
            .delete(&entry.dn)
            .await
            .with_context(|| format!("deleting {}", entry.dn))?;
        println!("deleted {}", entry.dn);
        if let Some(o) = other {
            println!("kept {}", o.dn);
        }
    }
    client.unbind().await;
    Ok(())
}

/// Refuses, naming the children, when `dn` has entries below it: LDAP
/// deletes only leaves.
async fn refuse_non_leaf(client: &mut Client, dn: &str, what: &str) -> Result<()> {
    let below = children(client, dn).await?;
    if below.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{what} {dn} has {} entr{} below it; move or delete {} first:",
        below.len(),
        if below.len() == 1 { "y" } else { "ies" },
        if below.len() == 1 { "it" } else { "them" }
    );
    for c in &below {
        msg.push_str(&format!("\n  {c}"));
    }
    bail!(msg)
}

/// Follows the entry with entryUUID `uuid` until it holds `plain`; its DN
/// then. The core renames it in the delete's own transaction, so this
/// normally succeeds at the first look.
async fn wait_for_name(client: &mut Client, uuid: &str, plain: &str) -> Result<String> {
    let suffix_search = LdapFilter::And(vec![
        LdapFilter::Equality("entryUUID".into(), uuid.to_string()),
        LdapFilter::Or(vec![
            LdapFilter::Equality("objectClass".into(), "ldapSubEntry".into()),
            LdapFilter::Present("objectClass".into()),
        ]),
    ]);
    let base = ferrodir::model::Dn::parse(plain)
        .ok()
        .and_then(|d| d.parent())
        .map(|d| d.to_string())
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = client
            .search_with(
                &base,
                LdapSearchScope::OneLevel,
                suffix_search.clone(),
                &["1.1"],
            )
            .await
            .with_context(|| format!("looking for entryUUID {uuid} below {base}"))?;
        let now = found.first().map(|e| e.dn.clone());
        if let Some(dn) = &now {
            if same_dn(dn, plain) {
                return Ok(dn.clone());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the entry holding {plain} was deleted, but the conflict entry (entryUUID {uuid}) \
                 did not take its name within 10 s; it is now {}",
                now.unwrap_or_else(|| "not found".into())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
