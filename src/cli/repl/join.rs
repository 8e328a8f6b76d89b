//! `ferrodir repl join|leave`: the slave side of the master/slave role
//! (docs/master-slave.md).
//!
//! Join: the key names the master's certificate (its SHA-256), so the
//! first connection to the master is already authenticated without any
//! certificate copied by hand; the master checks the key's secret and
//! answers with a replication identity for this slave. The slave then gets
//! one RFC 4533 consumer entry per suffix (cn=master-N,cn=syncrepl,
//! cn=config) that follows the master in refreshAndPersist mode over TLS
//! with the same pin.

use super::{connect, naming_contexts, read_entry, same_dn, values_text};
use crate::cli::args::{JoinArgs, ReplConn};
use anyhow::{anyhow, bail, Context, Result};
use ferrodir::model::oid;
use ferrodir::repl::core::join_key::{self, JoinKey};
use ferrodir::repl::session::client::{Client, LdapFilter, LdapSearchScope};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

const CONSUMERS_DN: &str = "cn=syncrepl,cn=config";
/// What a slave copies: every user attribute, the portable operational
/// ones (`+`), and the operational state a faithful copy needs: access
/// rules, the password policy's state (so an account locked or expired on
/// the master is on the slave too) and conflict markers.
const SLAVE_ATTRS: &str = "*,+,aci,pwdChangedTime,pwdAccountLockedTime,pwdFailureTime,\
                           pwdHistory,pwdGraceUseTime,pwdReset,pwdPolicySubentry,nsds5ReplConflict";

/// Consumer entries `repl join` writes are named `master-N`.
const NAME_PREFIX: &str = "master-";

#[derive(Serialize)]
struct JoinRequest<'a> {
    key_id: &'a str,
    secret: &'a str,
    device_id: &'a str,
    host: &'a str,
}

#[derive(Deserialize)]
struct JoinResponse {
    bind_dn: String,
    password: String,
    suffixes: Vec<String>,
    master: String,
}

fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The olcSyncrepl value of the consumer that follows `suffix` on the master.
fn consumer_value(
    rid: usize,
    master: &str,
    grant: &JoinResponse,
    suffix: &str,
    pin: &[u8; 32],
) -> String {
    let starttls = if master.starts_with("ldap://") {
        " starttls=critical"
    } else {
        ""
    };
    format!(
        "rid={rid:03} provider={master} bindmethod=simple binddn={} credentials={} \
         searchbase={} type=refreshAndPersist retry=\"5 12 30 +\" timeout=30{starttls} \
         attrs=\"{SLAVE_ATTRS}\" tls_pin_sha256={}",
        quote(&grant.bind_dn),
        quote(&grant.password),
        quote(suffix),
        join_key::hex(pin)
    )
}

async fn local_device_id(client: &mut Client) -> Result<String> {
    let config = read_entry(client, "cn=config", &["entryUUID"])
        .await?
        .ok_or_else(|| anyhow!("this server has no cn=config entry"))?;
    values_text(&config, "entryUUID")
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("cn=config has no entryUUID"))
}

async fn joined_consumers(
    client: &mut Client,
) -> Result<Vec<ferrodir::repl::session::client::Entry>> {
    let found = client
        .search_with(
            CONSUMERS_DN,
            LdapSearchScope::OneLevel,
            LdapFilter::Substring(
                "cn".into(),
                ldap3_proto::proto::LdapSubstringFilter {
                    initial: Some(NAME_PREFIX.into()),
                    any: Vec::new(),
                    final_: None,
                },
            ),
            &["cn", "ferrodirSyncState", "ferrodirSyncEntriesReceived"],
        )
        .await;
    match found {
        Ok(f) => Ok(f),
        Err(e) if e.code() == Some(32) => Ok(Vec::new()),
        Err(e) => Err(anyhow!("reading {CONSUMERS_DN}: {e}")),
    }
}

pub async fn join(args: &JoinArgs) -> Result<()> {
    let key = JoinKey::parse(&args.key).context("the --key value")?;
    if !(args.master.starts_with("ldaps://") || args.master.starts_with("ldap://")) {
        bail!("--master is ldaps://HOST[:PORT] (or ldap://HOST[:PORT], upgraded with StartTLS)");
    }
    let mut local = connect(&args.conn)
        .await
        .context("connecting to this server")?;
    if !joined_consumers(&mut local).await?.is_empty() {
        bail!("this server already follows a master; run `ferrodir repl leave` first");
    }
    let device = local_device_id(&mut local).await?;
    let served = naming_contexts(&mut local).await?;
    let host = match &args.host {
        Some(h) => h.clone(),
        None => std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };

    let mut master = Client::connect_pinned(&args.master, key.pin, Duration::from_secs(15))
        .await
        .with_context(|| format!("connecting to the master {}", args.master))?;
    let request = serde_json::to_vec(&JoinRequest {
        key_id: &key.id,
        secret: &key.secret,
        device_id: &device,
        host: &host,
    })?;
    let answer = master
        .extended("join", oid::MASTER_JOIN, request)
        .await
        .map_err(|e| anyhow!("the master refused the join: {e}"))?;
    master.unbind().await;
    let grant: JoinResponse =
        serde_json::from_slice(&answer).context("the master's answer to the join")?;
    let missing: Vec<&String> = grant
        .suffixes
        .iter()
        .filter(|s| !served.iter().any(|l| same_dn(l, s)))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the master serves {missing:?}, which this server does not: start it with --suffix for each \
             (the join is registered on the master; run join again once it serves them)"
        );
    }
    for (i, suffix) in grant.suffixes.iter().enumerate() {
        let name = format!("{NAME_PREFIX}{}", i + 1);
        let value = consumer_value(i + 1, &args.master, &grant, suffix, &key.pin);
        local
            .add(
                &format!("cn={name},{CONSUMERS_DN}"),
                vec![
                    (
                        "objectClass".into(),
                        vec![b"top".to_vec(), b"ferrodirSyncreplConsumer".to_vec()],
                    ),
                    ("cn".into(), vec![name.into_bytes()]),
                    ("olcSyncrepl".into(), vec![value.into_bytes()]),
                ],
            )
            .await
            .map_err(|e| anyhow!("configuring the consumer of {suffix}: {e}"))?;
    }
    println!("joined master {} (Device ID {})", args.master, grant.master);
    println!("this slave's Device ID: {device}");
    println!("following: {}", grant.suffixes.join("; "));
    if args.wait == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let started = Instant::now();
    loop {
        let consumers = joined_consumers(&mut local).await?;
        let states: Vec<String> = consumers
            .iter()
            .map(|c| values_text(c, "ferrodirSyncState").join(" "))
            .collect();
        if !states.is_empty() && states.iter().all(|s| s.starts_with("persisting")) {
            let entries: u64 = consumers
                .iter()
                .filter_map(|c| {
                    values_text(c, "ferrodirSyncEntriesReceived")
                        .first()?
                        .parse::<u64>()
                        .ok()
                })
                .sum();
            println!(
                "in sync after {:.1} s ({entries} entries copied); following changes",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "not in sync after {} s (state: {}); `ferrodir repl status` shows why",
                args.wait,
                states.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn leave(conn: &ReplConn) -> Result<()> {
    let mut local = connect(conn).await?;
    let consumers = joined_consumers(&mut local).await?;
    if consumers.is_empty() {
        bail!("this server does not follow a master");
    }
    for c in consumers {
        local
            .delete(&c.dn)
            .await
            .map_err(|e| anyhow!("removing {}: {e}", c.dn))?;
    }
    println!(
        "left the master: this server no longer follows it and its suffixes are writable here; \
         remove this slave on the master with `ferrodir repl slaves remove <Device ID>`"
    );
    Ok(())
}
