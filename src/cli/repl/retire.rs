//! `ferrodir repl retire-id N --suffix S`: adds the 389-ds CLEANALLRUV task
//! entry a runbook would add (cn=clean N,cn=cleanallruv,cn=tasks,cn=config)
//! and reports the retirement's state from the replica entry.

use super::{connect, same_dn, values_text, REPLICA_CLASS};
use crate::cli::args::RetireArgs;
use anyhow::{Context, Result};
use ferrodir::repl::session::client::Client;
use std::time::{Duration, Instant};

/// The retirement line of `rid` on the replica entry of `suffix`.
async fn state(client: &mut Client, suffix: &str, rid: u16) -> Result<Option<String>> {
    let replicas = client
        .search(
            ferrodir::directory::repl::MAPPING_TREE_DN,
            ("objectClass", Some(REPLICA_CLASS)),
            &["nsDS5ReplicaRoot", "ferrodirRetiredReplicaId"],
        )
        .await?;
    let prefix = format!("{rid} ");
    Ok(replicas
        .iter()
        .filter(|r| {
            r.first("nsDS5ReplicaRoot")
                .is_some_and(|root| same_dn(&root, suffix))
        })
        .flat_map(|r| values_text(r, "ferrodirRetiredReplicaId"))
        .find(|line| line.starts_with(&prefix)))
}

/// True once the ID is retired on this server.
pub async fn run(args: &RetireArgs) -> Result<bool> {
    let mut client = connect(&args.conn).await?;
    let task = format!("cn=clean {},cn=cleanallruv,cn=tasks,cn=config", args.rid);
    let attrs = vec![
        (
            "objectClass".to_string(),
            vec![b"top".to_vec(), b"extensibleObject".to_vec()],
        ),
        (
            "cn".to_string(),
            vec![format!("clean {}", args.rid).into_bytes()],
        ),
        (
            "replica-base-dn".to_string(),
            vec![args.suffix.clone().into_bytes()],
        ),
        (
            "replica-id".to_string(),
            vec![args.rid.to_string().into_bytes()],
        ),
    ];
    client
        .add(&task, attrs)
        .await
        .with_context(|| format!("retiring replica ID {} in {}", args.rid, args.suffix))?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        let line = state(&mut client, &args.suffix, args.rid).await?;
        let retired = line.as_deref().is_some_and(|l| l.ends_with(" retired"));
        if retired || Instant::now() >= deadline {
            client.unbind().await;
            match line {
                Some(l) => println!("replica ID {l}"),
                None => println!("replica ID {}: retirement recorded", args.rid),
            }
            return Ok(retired);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
