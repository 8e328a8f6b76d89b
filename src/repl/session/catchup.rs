//! Catch-up from entry state, for a consumer whose RUV is below what the
//! changelog still holds: tombstones, the live entryUUID list, every entry
//! with state the consumer lacks, the present list again, then the RUV.

use super::agreement::*;
use super::client::Client;
use super::incremental::*;
use crate::directory::repl::AgreementConfig;
use crate::directory::Directory;
use crate::model::Entry;
use crate::repl::core::catchup;
use crate::repl::core::ruv::Ruv;
use crate::repl::core::wire::{self};
use std::sync::Arc;

/// Brings a consumer that lacks changes the changelog no longer holds up to
/// date from entry state (DESIGN.md §5), without a total init.
pub(super) async fn catch_up(
    dir: &Arc<Directory>,
    cfg: &AgreementConfig,
    client: &mut Client,
    consumer: &Ruv,
) -> Result<Ruv, SessionError> {
    let name = name_of(cfg);
    let started = now();
    dir.update_agreement_status(&cfg.dn, |s| {
        s.update_in_progress = true;
        s.last_update_start = Some(started);
        s.last_update_status =
            "Error (0) Replica acquired successfully: catching up from entry state (the changelog was trimmed past the consumer)".into();
    });
    tracing::info!("agreement {name}: the consumer lacks changes the changelog no longer holds; catching up from entry state");
    let (d, s, c) = (dir.clone(), cfg.suffix.clone(), consumer.clone());
    let snapshot = tokio::task::spawn_blocking(move || d.catch_up_snapshot(&s, &c))
        .await
        .map_err(|e| SessionError::Config(format!("entry reader failed: {e}")))??;
    let suffix = cfg.suffix.to_string();
    let supplier_ruv = snapshot.supplier_ruv.clone();
    let (sent_entries, sent_tombstones) = (snapshot.entries.len(), snapshot.tombstones.len());
    // Deletions first, so a DN freed on the supplier is free here before an
    // entry that took it arrives; the present list again at the end for
    // parents whose children were moved away by the entries phase.
    let ranges = catchup::present_ranges(&snapshot.present, PRESENT_CHUNK);
    let strip = |entries: Vec<Entry>| -> Vec<Entry> {
        entries
            .into_iter()
            .map(|e| cfg.fractional.strip_entry(e))
            .collect()
    };
    send_catch_up_entries(client, &suffix, &supplier_ruv, strip(snapshot.tombstones)).await?;
    send_present(client, &suffix, &supplier_ruv, &ranges).await?;
    send_catch_up_entries(client, &suffix, &supplier_ruv, strip(snapshot.entries)).await?;
    send_present(client, &suffix, &supplier_ruv, &ranges).await?;
    let end = catchup::EndRequest {
        suffix,
        supplier_ruv,
    };
    let answer = client
        .extended("catch-up end", catchup::OID_CATCHUP_END, end.encode())
        .await?;
    let consumer =
        wire::decode_ruv_response(&answer).map_err(|e| SessionError::Answer(e.to_string()))?;
    let t1 = now();
    let summary = format!(
        "caught up from entry state ({sent_entries} entries, {sent_tombstones} deletions sent)"
    );
    tracing::info!("agreement {name}: {summary}");
    dir.update_agreement_status(&cfg.dn, |s| {
        s.last_update_end = Some(t1);
        s.last_update_status = format!(
            "Error (0) Replica acquired successfully: Incremental update succeeded: {summary}"
        );
    });
    Ok(consumer)
}

pub(super) async fn send_catch_up_entries(
    client: &mut Client,
    suffix: &str,
    supplier_ruv: &Ruv,
    entries: Vec<Entry>,
) -> Result<(), SessionError> {
    let mut rest = entries.into_iter().peekable();
    while rest.peek().is_some() {
        let mut pending = vec![rest.by_ref().take(INIT_PAGE).collect::<Vec<_>>()];
        while let Some(mut entries) = pending.pop() {
            let req = catchup::EntriesRequest {
                suffix: suffix.to_string(),
                supplier_ruv: supplier_ruv.clone(),
                entries,
            };
            let payload = req.encode();
            entries = req.entries;
            if payload.len() > MAX_REQUEST_BYTES && entries.len() > 1 {
                let second = entries.split_off(entries.len() / 2);
                pending.push(second);
                pending.push(entries);
                continue;
            }
            client
                .extended("catch-up entries", catchup::OID_CATCHUP_ENTRIES, payload)
                .await?;
        }
    }
    Ok(())
}

pub(super) async fn send_present(
    client: &mut Client,
    suffix: &str,
    supplier_ruv: &Ruv,
    ranges: &[catchup::PresentRange],
) -> Result<(), SessionError> {
    for (low, high, uuids) in ranges {
        let req = catchup::PresentRequest {
            suffix: suffix.to_string(),
            supplier_ruv: supplier_ruv.clone(),
            low: *low,
            high: *high,
            uuids: uuids.clone(),
        };
        client
            .extended(
                "catch-up present list",
                catchup::OID_CATCHUP_PRESENT,
                req.encode(),
            )
            .await?;
    }
    Ok(())
}
