//! `ferrodir repl status|test`: ask a running supplier over LDAP.

use super::args::{ReplCommand, ReplConn};
use anyhow::{anyhow, Context, Result};
use ferrodir::model::oid;
use ferrodir::repl::session::client::{Client, Entry};
use serde::Serialize;

pub fn run(cmd: ReplCommand) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ok = rt.block_on(async {
        match cmd {
            ReplCommand::Status { conn, json } => status(&conn, json).await.map(|_| true),
            ReplCommand::Test { conn, agreement } => test(&conn, agreement.as_deref()).await,
        }
    })?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn connect(conn: &ReplConn) -> Result<Client> {
    let password = match &conn.password_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        None => std::env::var("FERRODIR_ROOT_PASSWORD").map_err(|_| {
            anyhow!("no password: give --password-file or set FERRODIR_ROOT_PASSWORD")
        })?,
    };
    let mut client = Client::connect_url(&conn.url, std::time::Duration::from_secs(10)).await?;
    client.simple_bind(&conn.bind_dn, &password).await?;
    Ok(client)
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
    last_update: String,
    last_update_status: String,
    last_init: String,
    last_init_status: String,
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
            last_update: show_time(e.first("nsds5replicaLastUpdateEnd")),
            last_update_status: text("nsds5replicaLastUpdateStatus"),
            last_init: show_time(e.first("nsds5replicaLastInitEnd")),
            last_init_status: text("nsds5replicaLastInitStatus"),
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

async fn status(conn: &ReplConn, json: bool) -> Result<()> {
    let mut client = connect(conn).await?;
    let entries = agreements(&mut client).await?;
    client.unbind().await;
    let rows: Vec<AgreementStatus> = entries
        .iter()
        .map(|e| AgreementStatus::of(e, &conn.url))
        .collect();
    let mut out = String::new();
    if json {
        out = serde_json::to_string(&rows)?;
        out.push('\n');
    } else if rows.is_empty() {
        out.push_str("no replication agreements on this server\n");
    } else {
        for row in &rows {
            row.render(&mut out);
        }
    }
    print!("{out}");
    Ok(())
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
