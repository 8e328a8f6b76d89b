//! `ferrodir repl master|keys|slaves`: the master side of the
//! master/slave role (docs/master-slave.md), over LDAP to the running
//! master as the root DN.

use super::{connect, read_entry, values_text};
use crate::cli::args::{KeysCommand, MasterArgs, ReplConn, SlavesCommand};
use anyhow::{anyhow, Context, Result};
use ferrodir::directory::join::{KEYS_DN, SLAVES_DN};
use ferrodir::model::oid;
use ferrodir::repl::core::join_key;
use ferrodir::repl::session::client::{LdapFilter, LdapSearchScope};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct KeyResponse {
    device_id: String,
    key: String,
}

/// Enables the role by creating a synchronization key; prints the
/// master's Device ID and the key.
pub async fn master(args: &MasterArgs) -> Result<()> {
    let mut client = connect(&args.conn).await?;
    let value = client
        .extended(
            "create a synchronization key",
            oid::MASTER_CREATE_KEY,
            args.description.clone().unwrap_or_default().into_bytes(),
        )
        .await?;
    let answer: KeyResponse =
        serde_json::from_slice(&value).context("the server's answer is not a key")?;
    let parsed = join_key::JoinKey::parse(&answer.key)?;
    println!("Master role enabled on {}", args.conn.url);
    println!("Device ID:           {}", answer.device_id);
    println!("Synchronization Key: {}", answer.key);
    println!("Key ID:              {}", parsed.id);
    println!("Certificate pinned:  sha256 {}", join_key::hex(&parsed.pin));
    println!();
    println!("On each slave (a fresh ferrodir serving the same suffixes):");
    println!(
        "  ferrodir repl join --master ldaps://<this host>:636 --key {}",
        answer.key
    );
    println!("The key is shown once; list keys with `ferrodir repl keys list`, revoke one with");
    println!("`ferrodir repl keys revoke {}`.", parsed.id);
    Ok(())
}

#[derive(Serialize)]
struct KeyRow {
    id: String,
    created: String,
    description: String,
    slaves: Vec<String>,
}

#[derive(Serialize)]
struct SlaveRow {
    device_id: String,
    host: String,
    joined_with: String,
    joined: String,
}

async fn slave_rows(conn: &ReplConn) -> Result<Vec<SlaveRow>> {
    let mut client = connect(conn).await?;
    let found = client
        .search_with(
            SLAVES_DN,
            LdapSearchScope::OneLevel,
            LdapFilter::Equality("objectClass".into(), "ferrodirSlave".into()),
            &[
                "cn",
                "ferrodirSlaveHost",
                "ferrodirJoinedWith",
                "modifyTimestamp",
            ],
        )
        .await;
    let found = match found {
        Ok(f) => f,
        Err(e) if e.code() == Some(32) => Vec::new(),
        Err(e) => return Err(anyhow!("listing slaves: {e}")),
    };
    let first = |e: &ferrodir::repl::session::client::Entry, a: &str| {
        values_text(e, a).into_iter().next().unwrap_or_default()
    };
    Ok(found
        .iter()
        .map(|e| SlaveRow {
            device_id: first(e, "cn"),
            host: first(e, "ferrodirSlaveHost"),
            joined_with: first(e, "ferrodirJoinedWith"),
            joined: super::show_time(Some(first(e, "modifyTimestamp"))),
        })
        .collect())
}

pub async fn keys(cmd: &KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::List { conn, json } => {
            let slaves = slave_rows(conn).await?;
            let mut client = connect(conn).await?;
            let found = match client
                .search_with(
                    KEYS_DN,
                    LdapSearchScope::OneLevel,
                    LdapFilter::Equality("objectClass".into(), "ferrodirJoinKey".into()),
                    &["cn", "description", "createTimestamp"],
                )
                .await
            {
                Ok(f) => f,
                Err(e) if e.code() == Some(32) => Vec::new(),
                Err(e) => return Err(anyhow!("listing keys: {e}")),
            };
            let rows: Vec<KeyRow> = found
                .iter()
                .map(|e| {
                    let id = values_text(e, "cn").into_iter().next().unwrap_or_default();
                    KeyRow {
                        slaves: slaves
                            .iter()
                            .filter(|s| s.joined_with == id)
                            .map(|s| s.device_id.clone())
                            .collect(),
                        created: super::show_time(
                            values_text(e, "createTimestamp").into_iter().next(),
                        ),
                        description: values_text(e, "description").join("; "),
                        id,
                    }
                })
                .collect();
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if rows.is_empty() {
                println!("no synchronization keys (create one with `ferrodir repl master`)");
            }
            for r in rows {
                println!(
                    "{}  created {}  slaves joined: {}{}",
                    r.id,
                    r.created,
                    r.slaves.len(),
                    if r.description.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", r.description)
                    }
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { conn, id } => {
            if !join_key::is_key_id(id) {
                return Err(anyhow!(
                    "'{id}' is not a key ID (16 lowercase hexadecimal digits, as `repl keys list` shows)"
                ));
            }
            let mut client = connect(conn).await?;
            let dn = format!("cn={id},{KEYS_DN}");
            match client.delete(&dn).await {
                Ok(()) => {
                    println!("key {id} revoked: it can no longer join a slave");
                    Ok(())
                }
                Err(e) if e.code() == Some(32) => Err(anyhow!("there is no key {id}")),
                Err(e) => Err(anyhow!("revoking key {id}: {e}")),
            }
        }
    }
}

pub async fn slaves(cmd: &SlavesCommand) -> Result<()> {
    match cmd {
        SlavesCommand::List { conn, json } => {
            let rows = slave_rows(conn).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if rows.is_empty() {
                println!("no slaves have joined");
            }
            for r in rows {
                println!(
                    "{}  host {}  key {}  joined {}",
                    r.device_id,
                    if r.host.is_empty() { "-" } else { &r.host },
                    r.joined_with,
                    r.joined
                );
            }
            Ok(())
        }
        SlavesCommand::Remove { conn, device } => {
            let mut client = connect(conn).await?;
            let dn = format!("cn={device},{SLAVES_DN}");
            if read_entry(&mut client, &dn, &["1.1"]).await?.is_none() {
                return Err(anyhow!("no slave with Device ID {device} has joined"));
            }
            client
                .delete(&dn)
                .await
                .map_err(|e| anyhow!("removing slave {device}: {e}"))?;
            println!(
                "slave {device} removed: its credential no longer binds, so it stops following"
            );
            Ok(())
        }
    }
}

/// The master/slave lines of `repl status`: on a master its keys, each
/// slave with whether it is connected and in sync, and the other RFC 4533
/// consumers it serves; on a slave the master it follows. Empty when the
/// server has neither role.
pub async fn role_status(client: &mut ferrodir::repl::session::client::Client) -> Result<String> {
    let list = |found: Result<
        Vec<ferrodir::repl::session::client::Entry>,
        ferrodir::repl::session::client::ClientError,
    >| match found {
        Ok(f) => Ok(f),
        Err(e) if e.code() == Some(32) => Ok(Vec::new()),
        Err(e) => Err(anyhow!("reading the master/slave role: {e}")),
    };
    let everything = || LdapFilter::Present("objectClass".into());
    let keys = list(
        client
            .search_with(KEYS_DN, LdapSearchScope::OneLevel, everything(), &["cn"])
            .await,
    )?;
    let slaves = list(
        client
            .search_with(
                SLAVES_DN,
                LdapSearchScope::OneLevel,
                everything(),
                &["cn", "ferrodirSlaveHost"],
            )
            .await,
    )?;
    let followers = list(
        client
            .search_with(
                "cn=replication,cn=monitor",
                LdapSearchScope::OneLevel,
                everything(),
                &["*"],
            )
            .await,
    )?;
    // RFC 4533 consumers are the entries with a mode (agreements have none).
    let followers: Vec<_> = followers
        .into_iter()
        .filter(|f| !values_text(f, "mode").is_empty())
        .collect();
    let masters = list(
        client
            .search_with(
                "cn=syncrepl,cn=config",
                LdapSearchScope::OneLevel,
                LdapFilter::Substring(
                    "cn".into(),
                    ldap3_proto::proto::LdapSubstringFilter {
                        initial: Some("master-".into()),
                        any: Vec::new(),
                        final_: None,
                    },
                ),
                &["olcSyncrepl", "ferrodirSyncState"],
            )
            .await,
    )?;
    let first = |e: &ferrodir::repl::session::client::Entry, a: &str| {
        values_text(e, a).into_iter().next().unwrap_or_default()
    };
    let mut out = String::new();
    for m in &masters {
        let value = first(m, "olcSyncrepl");
        let provider = value
            .split_whitespace()
            .find_map(|p| p.strip_prefix("provider="))
            .unwrap_or("?");
        out.push_str(&format!(
            "slave role: follows the master {provider} ({})\n",
            first(m, "ferrodirSyncState")
        ));
    }
    if !keys.is_empty() || !slaves.is_empty() {
        out.push_str(&format!(
            "master role: {} synchronization key(s), {} slave(s)\n",
            keys.len(),
            slaves.len()
        ));
    }
    let follower_of = |dn: &str| {
        followers
            .iter()
            .find(|f| super::same_dn(&first(f, "consumer"), dn))
    };
    for s in &slaves {
        let host = first(s, "ferrodirSlaveHost");
        let name = format!(
            "{}{}",
            first(s, "cn"),
            if host.is_empty() {
                String::new()
            } else {
                format!(" ({host})")
            }
        );
        match follower_of(&s.dn) {
            Some(f) => out.push_str(&format!(
                "  slave {name}: {}, {}, connected since {}, {} entries sent\n",
                first(f, "state"),
                if first(f, "inSync") == "TRUE" {
                    "in sync".to_string()
                } else {
                    format!("behind, lag {} s", first(f, "lagSeconds"))
                },
                super::show_time(Some(first(f, "since"))),
                first(f, "entriesSent")
            )),
            None => out.push_str(&format!("  slave {name}: not connected\n")),
        }
    }
    for f in &followers {
        let who = first(f, "consumer");
        if slaves.iter().any(|s| super::same_dn(&s.dn, &who)) {
            continue;
        }
        out.push_str(&format!(
            "RFC 4533 consumer {who} of {} ({}): {}, {}, {} entries sent\n",
            first(f, "nsDS5ReplicaRoot"),
            first(f, "mode"),
            first(f, "state"),
            if first(f, "inSync") == "TRUE" {
                "in sync".to_string()
            } else {
                format!("behind, lag {} s", first(f, "lagSeconds"))
            },
            first(f, "entriesSent")
        ));
    }
    Ok(out)
}
