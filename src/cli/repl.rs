//! `ferrodir repl status|test|conflicts|check`: ask running servers over
//! LDAP. The conflict commands are in `repl/conflicts.rs`, the comparison
//! of replicas in `repl/check.rs`; what they share (connecting, the
//! searches that include conflict entries) is here.

mod check;
mod conflicts;
mod join;
mod master;
mod retire;
mod syncrepl;

use super::args::{ReplCommand, ReplConn};
use anyhow::{anyhow, Context, Result};
use ferrodir::model::oid;
use ferrodir::repl::session::client::{Client, Entry, LdapFilter, LdapSearchScope};
use serde::Serialize;
use std::path::Path;

pub fn run(cmd: ReplCommand) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cmd {
        ReplCommand::Status { conn, json } => rt.block_on(status(&conn, json)),
        ReplCommand::Test { conn, agreement } => {
            if !rt.block_on(test(&conn, agreement.as_deref()))? {
                std::process::exit(1);
            }
            Ok(())
        }
        ReplCommand::Conflicts(c) => rt.block_on(conflicts::run(c)),
        ReplCommand::RetireId(args) => {
            if !rt.block_on(retire::run(&args))? {
                std::process::exit(1);
            }
            Ok(())
        }
        ReplCommand::Master(args) => rt.block_on(master::master(&args)),
        ReplCommand::Keys(cmd) => rt.block_on(master::keys(&cmd)),
        ReplCommand::Slaves(cmd) => rt.block_on(master::slaves(&cmd)),
        ReplCommand::Join(args) => rt.block_on(join::join(&args)),
        ReplCommand::Leave { conn } => rt.block_on(join::leave(&conn)),
        ReplCommand::Check(args) => {
            // Exit codes as diff(1): 0 identical, 1 different, 2 trouble.
            let code = match rt.block_on(check::run(&args)) {
                Ok(true) => 0,
                Ok(false) => 1,
                Err(e) => {
                    eprintln!("ferrodir: {e:#}");
                    2
                }
            };
            std::process::exit(code);
        }
    }
}

/// The first line of `file`, or $FERRODIR_ROOT_PASSWORD.
fn read_password(file: Option<&Path>) -> Result<String> {
    match file {
        Some(p) => Ok(std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string()),
        None => std::env::var("FERRODIR_ROOT_PASSWORD").map_err(|_| {
            anyhow!("no password: give --password-file or set FERRODIR_ROOT_PASSWORD")
        }),
    }
}

async fn connect_as(url: &str, bind_dn: &str, password: &str) -> Result<Client> {
    let mut client = Client::connect_url(url, std::time::Duration::from_secs(10)).await?;
    client.simple_bind(bind_dn, password).await?;
    Ok(client)
}

async fn connect(conn: &ReplConn) -> Result<Client> {
    let password = read_password(conn.password_file.as_deref())?;
    connect_as(&conn.url, &conn.bind_dn, &password).await
}

fn equality(attr: &str, value: &str) -> LdapFilter {
    LdapFilter::Equality(attr.to_string(), value.to_string())
}

/// `filter` widened so that the server also returns ldapSubEntry entries
/// (conflict entries): ordinary subtree searches skip them unless the
/// filter names that class.
fn with_subentries(filter: LdapFilter) -> LdapFilter {
    LdapFilter::And(vec![
        filter,
        LdapFilter::Or(vec![
            equality("objectClass", "ldapSubEntry"),
            LdapFilter::Present("objectClass".into()),
        ]),
    ])
}

/// Conflict and glue entries: those carrying nsds5ReplConflict (glue
/// without the marker too, should there be any).
fn conflict_filter() -> LdapFilter {
    with_subentries(LdapFilter::Or(vec![
        LdapFilter::Present("nsds5ReplConflict".into()),
        equality("objectClass", "glue"),
    ]))
}

/// The entry at `dn` (a base search, which shows conflict entries too);
/// None when there is none.
async fn read_entry(client: &mut Client, dn: &str, attrs: &[&str]) -> Result<Option<Entry>> {
    match client
        .search_with(
            dn,
            LdapSearchScope::Base,
            LdapFilter::Present("objectClass".into()),
            attrs,
        )
        .await
    {
        Ok(mut found) => Ok(found.pop()),
        Err(e) if e.code() == Some(32) => Ok(None),
        Err(e) => Err(anyhow!("reading {dn}: {e}")),
    }
}

/// The entries directly below `dn`, conflict entries included.
async fn children(client: &mut Client, dn: &str) -> Result<Vec<String>> {
    let found = client
        .search_with(
            dn,
            LdapSearchScope::OneLevel,
            with_subentries(LdapFilter::Present("objectClass".into())),
            &["1.1"],
        )
        .await
        .with_context(|| format!("listing the children of {dn}"))?;
    Ok(found.into_iter().map(|e| e.dn).collect())
}

/// The server's naming contexts (root DSE).
async fn naming_contexts(client: &mut Client) -> Result<Vec<String>> {
    let root = read_entry(client, "", &["namingContexts"]).await?;
    Ok(root
        .map(|e| values_text(&e, "namingContexts"))
        .unwrap_or_default())
}

/// Every value of an attribute (case-insensitive name), as text.
fn values_text(e: &Entry, name: &str) -> Vec<String> {
    e.attrs
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, vs)| vs.iter().map(|v| String::from_utf8_lossy(v).to_string()))
        .collect()
}

/// Number of conflict and glue entries of a suffix.
async fn count_conflicts(client: &mut Client, suffix: &str) -> Result<u64> {
    let found = client
        .search_with(
            suffix,
            LdapSearchScope::Subtree,
            conflict_filter(),
            &["1.1"],
        )
        .await
        .with_context(|| format!("counting the conflict entries of {suffix}"))?;
    Ok(found.len() as u64)
}

const AGREEMENT_CLASS: &str = "nsDS5ReplicationAgreement";

async fn agreements(client: &mut Client) -> Result<Vec<Entry>> {
    Ok(client
        .search(
            ferrodir::directory::repl::MAPPING_TREE_DN,
            ("objectClass", Some(AGREEMENT_CLASS)),
            &["*"],
        )
        .await?)
}

/// "20260101120000Z" -> "2026-01-01 12:00:00Z"; the epoch means never.
fn show_time(t: Option<String>) -> String {
    let Some(t) = t else {
        return "never".into();
    };
    if t.starts_with("1970") {
        return "never".into();
    }
    match (
        t.get(0..4),
        t.get(4..6),
        t.get(6..8),
        t.get(8..10),
        t.get(10..12),
        t.get(12..14),
    ) {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) => {
            format!("{y}-{mo}-{d} {h}:{mi}:{s}Z")
        }
        _ => t,
    }
}

/// One agreement as `repl status` shows it (and as its JSON object).
#[derive(Serialize)]
struct AgreementStatus {
    agreement: String,
    supplier: String,
    consumer: String,
    transport: String,
    suffix: String,
    state: String,
    lag_seconds: Option<u64>,
    clock_skew_seconds: Option<u64>,
    /// Schema definitions from or for a peer not applied because they
    /// differ in meaning (ferrodirSchemaConflict).
    schema_conflicts: Vec<String>,
    changes_sent: Option<u64>,
    /// Changes the consumer lacks, from both sides' RUVs (counted up to
    /// 100,000).
    changes_pending: Option<u64>,
    last_update: String,
    last_update_status: String,
    last_init: String,
    last_init_status: String,
    /// Conflict and glue entries of the agreement's suffix on this server.
    conflict_entries: Option<u64>,
}

impl AgreementStatus {
    fn of(e: &Entry, supplier: &str) -> AgreementStatus {
        let text = |name: &str| e.first(name).unwrap_or_default();
        let number = |name: &str| e.first(name).and_then(|v| v.parse().ok());
        let disabled = e
            .first("nsds5ReplicaEnabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("off"));
        AgreementStatus {
            agreement: e.dn.clone(),
            supplier: supplier.to_string(),
            consumer: format!(
                "{}:{}",
                text("nsDS5ReplicaHost"),
                e.first("nsDS5ReplicaPort").unwrap_or_else(|| "389".into())
            ),
            transport: e
                .first("nsDS5ReplicaTransportInfo")
                .unwrap_or_else(|| "LDAP".into()),
            suffix: text("nsDS5ReplicaRoot"),
            state: if disabled {
                "disabled".into()
            } else {
                e.first("ferrodirReplicationState")
                    .unwrap_or_else(|| "unknown".into())
            },
            lag_seconds: number("ferrodirReplicationLag"),
            clock_skew_seconds: number("ferrodirClockSkew"),
            schema_conflicts: e
                .attrs
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("ferrodirSchemaConflict"))
                .flat_map(|(_, v)| v.iter())
                .map(|v| String::from_utf8_lossy(v).to_string())
                .collect(),
            changes_sent: number("nsds5replicaChangesSentSinceStartup"),
            changes_pending: number("ferrodirReplicationBehind"),
            last_update: show_time(e.first("nsds5replicaLastUpdateEnd")),
            last_update_status: text("nsds5replicaLastUpdateStatus"),
            last_init: show_time(e.first("nsds5replicaLastInitEnd")),
            last_init_status: text("nsds5replicaLastInitStatus"),
            conflict_entries: None,
        }
    }

    /// The human form: the agreement's DN, then one indented line per
    /// non-empty field.
    fn render(&self, out: &mut String) {
        let optional = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let conflicts = self
            .schema_conflicts
            .iter()
            .map(|c| ("schema conflict", c.clone()));
        let lines = [
            ("supplier", format!("{} (this server)", self.supplier)),
            ("consumer", self.consumer.clone()),
            ("transport", self.transport.clone()),
            ("suffix", self.suffix.clone()),
            ("state", self.state.clone()),
            (
                "lag seconds",
                self.lag_seconds
                    .map_or_else(|| "unknown".into(), |n| n.to_string()),
            ),
            ("changes pending", optional(self.changes_pending)),
            ("changes sent", optional(self.changes_sent)),
            ("clock skew seconds", optional(self.clock_skew_seconds)),
            ("last update", self.last_update.clone()),
            ("last update status", self.last_update_status.clone()),
            ("last init", self.last_init.clone()),
            ("last init status", self.last_init_status.clone()),
        ];
        out.push_str(&self.agreement);
        out.push('\n');
        for (k, v) in lines.into_iter().chain(conflicts) {
            if !v.is_empty() {
                out.push_str(&format!("  {k:<19} {v}\n"));
            }
        }
    }
}

const REPLICA_CLASS: &str = "nsDS5Replica";

async fn status(conn: &ReplConn, json: bool) -> Result<()> {
    let mut client = connect(conn).await?;
    let entries = agreements(&mut client).await?;
    // Conflict entries per replicated suffix: the replica entries name the
    // suffixes, agreements or not.
    let replicas = client
        .search(
            ferrodir::directory::repl::MAPPING_TREE_DN,
            ("objectClass", Some(REPLICA_CLASS)),
            &[
                "nsDS5ReplicaRoot",
                "nsDS5ReplicaType",
                "ferrodirRetiredReplicaId",
                "ferrodirReplicationSupplier",
                "nsds5replicaLastUpdateStart",
                "ferrodirLastChangeReceived",
                "ferrodirReplicationLag",
                "ferrodirChangesReceived",
            ],
        )
        .await?;
    let mut suffixes: Vec<String> = Vec::new();
    let all_roots = replicas
        .iter()
        .chain(&entries)
        .filter_map(|e| e.first("nsDS5ReplicaRoot"));
    for root in all_roots {
        if !suffixes.iter().any(|s| same_dn(s, &root)) {
            suffixes.push(root);
        }
    }
    let mut counts: Vec<(String, u64)> = Vec::new();
    for suffix in suffixes {
        let n = count_conflicts(&mut client, &suffix).await?;
        counts.push((suffix, n));
    }
    let consumers = syncrepl::consumers(&mut client).await?;
    let role = master::role_status(&mut client).await?;
    client.unbind().await;
    let rows: Vec<AgreementStatus> = entries
        .iter()
        .map(|e| {
            let mut row = AgreementStatus::of(e, &conn.url);
            row.conflict_entries = counts
                .iter()
                .find(|(s, _)| same_dn(s, &row.suffix))
                .map(|(_, n)| *n);
            row
        })
        .collect();
    let mut out = String::new();
    if json {
        out = serde_json::to_string(&rows)?;
        out.push('\n');
    } else {
        out.push_str(&role);
        if rows.is_empty() {
            out.push_str("no replication agreements on this server\n");
        }
        for row in &rows {
            row.render(&mut out);
        }
        for c in &consumers {
            syncrepl::render(c, &mut out);
        }
        for (suffix, n) in &counts {
            out.push_str(&format!("suffix {suffix}\n  conflict entries: {n}\n"));
            let retired = replicas
                .iter()
                .filter(|r| {
                    r.first("nsDS5ReplicaRoot")
                        .is_some_and(|root| same_dn(&root, suffix))
                })
                .flat_map(|r| values_text(r, "ferrodirRetiredReplicaId"));
            for line in retired {
                out.push_str(&format!("  retired replica ID: {line}\n"));
            }
            for r in replicas.iter().filter(|r| {
                r.first("nsDS5ReplicaRoot")
                    .is_some_and(|root| same_dn(&root, suffix))
            }) {
                render_consumer_side(r, &mut out);
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// What a server received as a consumer of a suffix (from its replica
/// entry): its supplier, the last session and change, the lag of that
/// change.
fn render_consumer_side(replica: &Entry, out: &mut String) {
    let Some(supplier) = replica.first("ferrodirReplicationSupplier") else {
        return;
    };
    let read_only = replica
        .first("nsDS5ReplicaType")
        .is_some_and(|t| t.trim() == "2");
    let role = if read_only {
        "read-only consumer of"
    } else {
        "receives from"
    };
    out.push_str(&format!("  {role} {supplier}\n"));
    let lines = [
        (
            "last session",
            show_time(replica.first("nsds5replicaLastUpdateStart")),
        ),
        (
            "last change received",
            show_time(replica.first("ferrodirLastChangeReceived")),
        ),
        (
            "lag of that change",
            replica
                .first("ferrodirReplicationLag")
                .map(|l| format!("{l} s"))
                .unwrap_or_default(),
        ),
        (
            "changes received",
            replica
                .first("ferrodirChangesReceived")
                .map(|n| format!("{n} since this server started"))
                .unwrap_or_default(),
        ),
    ];
    for (k, v) in lines {
        if !v.is_empty() {
            out.push_str(&format!("  {k:<21} {v}\n"));
        }
    }
}

/// Whether two DNs name the same entry (compared as parsed, ignoring case:
/// enough for suffixes and the DNs the server itself hands out).
fn same_dn(a: &str, b: &str) -> bool {
    match (ferrodir::model::Dn::parse(a), ferrodir::model::Dn::parse(b)) {
        (Ok(a), Ok(b)) => a.to_string().eq_ignore_ascii_case(&b.to_string()),
        _ => a.eq_ignore_ascii_case(b),
    }
}

async fn test(conn: &ReplConn, agreement: Option<&str>) -> Result<bool> {
    let mut client = connect(conn).await?;
    let targets: Vec<String> = match agreement {
        Some(dn) => vec![dn.to_string()],
        None => agreements(&mut client)
            .await?
            .into_iter()
            .map(|e| e.dn)
            .collect(),
    };
    if targets.is_empty() {
        println!("Fail: no replication agreements on this server");
        return Ok(false);
    }
    let mut all_pass = true;
    for dn in &targets {
        let verdict = match client
            .extended(
                "test agreement",
                oid::REPL_TEST_AGREEMENT,
                ferrodir::ops::replication::encode_test_request(dn),
            )
            .await
        {
            Ok(v) => String::from_utf8_lossy(&v).to_string(),
            Err(e) => format!("Fail: {e}"),
        };
        all_pass &= verdict.starts_with("Pass");
        if targets.len() == 1 {
            println!("{verdict}");
        } else {
            println!("{dn}: {verdict}");
        }
    }
    client.unbind().await;
    Ok(all_pass)
}
