//! Total init: every entry of the suffix in pages and then the RUV, all
//! read from one snapshot (directory/init_snapshot.rs).

use super::agreement::*;
use super::client::Client;
use super::incremental::*;
use crate::directory::repl::AgreementConfig;
use crate::directory::Directory;
use crate::repl::core::wire::{self, StartRequest, TotalEndRequest};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn total_init(
    dir: &Arc<Directory>,
    cfg: &AgreementConfig,
    client: &mut Client,
    rid: u16,
    local_url: &str,
) -> Result<(), SessionError> {
    let name = name_of(cfg);
    let started = now();
    dir.update_agreement_status(&cfg.dn, |s| {
        s.last_init_start = Some(started);
        s.last_init_end = None;
        s.last_init_status = "Total update in progress".into();
        s.update_in_progress = true;
    });
    match total_init_inner(dir, cfg, client, rid, local_url).await {
        Ok(sent) => {
            dir.clear_refresh_request(&cfg.dn).await?;
            let end = now();
            dir.update_agreement_status(&cfg.dn, |s| {
                s.last_init_end = Some(end);
                s.last_init_status = format!("Error (0) Total update succeeded ({sent} entries)");
                s.init_progress = None;
                s.update_in_progress = false;
            });
            tracing::info!(
                "agreement {name}: total init finished: {sent} entries in {} s",
                end.saturating_sub(started)
            );
            Ok(())
        }
        Err(e) => {
            let status = e.status();
            dir.update_agreement_status(&cfg.dn, |s| {
                s.last_init_end = Some(now());
                s.last_init_status = format!("Total update aborted: {status}");
                s.init_progress = None;
                s.update_in_progress = false;
            });
            Err(e)
        }
    }
}

/// Where a total init's time went, for its log line.
#[derive(Debug, Default)]
pub(super) struct InitTimes {
    /// Waiting for the reader thread (pages not ready yet).
    starved: Duration,
    /// From writing a request until its answer: network, the consumer's
    /// decoding and applying.
    in_flight: Duration,
    requests: u64,
}

/// Sends the suffix from one read snapshot, then that snapshot's RUV: the
/// incremental session that follows sends exactly the changes made after
/// it. The reader prepares the next pages while one is in flight; only one
/// request is in flight because the consumer runs the operations of a
/// connection concurrently, and a page must be applied before the next (it
/// holds the parents of the next page's entries).
pub(super) async fn total_init_inner(
    dir: &Arc<Directory>,
    cfg: &AgreementConfig,
    client: &mut Client,
    rid: u16,
    local_url: &str,
) -> Result<u64, SessionError> {
    let name = name_of(cfg);
    let suffix = cfg.suffix.to_string();
    let started = std::time::Instant::now();
    let page_suffix = suffix.clone();
    // Fractional: what the agreement keeps from the consumer never leaves.
    // Its states would name the stripped attributes, so a fractional
    // consumer rebuilds its states from the entries it gets.
    let fractional = cfg.fractional_total.clone();
    let with_states = fractional.is_empty();
    // The version is known once the consumer answered the start, which
    // comes after the snapshot: the pages are encoded for both and the
    // spoken one is sent.
    let version = Arc::new(std::sync::atomic::AtomicU8::new(wire::PROTOCOL_VERSION));
    let page_version = version.clone();
    let mut snapshot = dir
        .init_snapshot(
            &cfg.suffix,
            INIT_PAGE,
            INIT_PAGES_AHEAD,
            with_states,
            move |entries| {
                let entries: Vec<_> = entries
                    .into_iter()
                    .map(|mut e| {
                        e.entry = fractional.strip_entry(e.entry);
                        e
                    })
                    .collect();
                let v = page_version.load(std::sync::atomic::Ordering::Acquire);
                wire::TotalEntriesRequest::encode_split(
                    v,
                    &page_suffix,
                    &entries,
                    MAX_REQUEST_BYTES,
                )
            },
        )
        .await?;
    let total = snapshot.head.total;
    dir.update_agreement_status(&cfg.dn, |s| s.init_progress = Some((0, total)));
    tracing::info!("agreement {name}: total init of {total} entries started");
    let (_, spoken) = start(
        client,
        &StartRequest {
            version: wire::PROTOCOL_VERSION,
            suffix: suffix.clone(),
            supplier_rid: rid,
            generation: snapshot.head.ruv.generation.clone(),
            total: true,
            supplier_url: local_url.to_string(),
            retired: snapshot.head.retired.shared(),
            with_states: snapshot.head.states,
        },
    )
    .await?;
    version.store(spoken, std::sync::atomic::Ordering::Release);
    let mut times = InitTimes::default();
    let mut sent = 0u64;
    loop {
        let t_wait = std::time::Instant::now();
        let Some(page) = snapshot.pages.recv().await else {
            break;
        };
        times.starved += t_wait.elapsed();
        let page = page?;
        let t_send = std::time::Instant::now();
        // Pages read before the consumer answered were encoded in the
        // newest version; an older consumer gets them again in its own.
        let prepared = match page.prepared.first().and_then(|p| p.first()) {
            Some(&v) if v != spoken => {
                reencode(&page.prepared, spoken).map_err(|e| SessionError::Answer(e.to_string()))?
            }
            _ => page.prepared,
        };
        for payload in prepared {
            client
                .extended("total update entries", wire::OID_TOTAL_ENTRIES, payload)
                .await?;
            times.requests += 1;
        }
        times.in_flight += t_send.elapsed();
        sent += page.entries;
        let shown_total = total.max(sent);
        dir.update_agreement_status(&cfg.dn, |s| {
            s.init_progress = Some((sent, shown_total));
            s.last_init_status = format!(
                "Total update in progress: {sent} of {shown_total} entries ({}%)",
                percent(sent, shown_total)
            );
        });
    }
    let ruv = snapshot.head.ruv.clone();
    let retired = snapshot.head.retired.clone();
    let reader = snapshot.finish().await;
    let end = TotalEndRequest {
        version: spoken,
        suffix,
        ruv,
        retired,
    };
    let t_end = std::time::Instant::now();
    let answer = client
        .extended("total update end", wire::OID_TOTAL_END, end.encode())
        .await?;
    wire::decode_ruv_response(&answer).map_err(|e| SessionError::Answer(e.to_string()))?;
    tracing::info!(
        "agreement {name}: total init sent {sent} entries in {:.2} s ({:.0}/s): reader read {:.2} s and encoded {:.2} s (overlapped), sender waited for the reader {:.2} s, {} requests in flight {:.2} s (network, consumer decode and apply), end {:.2} s",
        started.elapsed().as_secs_f64(),
        sent as f64 / started.elapsed().as_secs_f64().max(1e-9),
        reader.read.as_secs_f64(),
        reader.prepare.as_secs_f64(),
        times.starved.as_secs_f64(),
        times.requests,
        times.in_flight.as_secs_f64(),
        t_end.elapsed().as_secs_f64(),
    );
    Ok(sent)
}

/// Payloads of one page in another protocol version.
fn reencode(
    payloads: &[Vec<u8>],
    version: u8,
) -> Result<Vec<Vec<u8>>, crate::model::codec::DecodeError> {
    let mut out = Vec::with_capacity(payloads.len());
    for p in payloads {
        let mut req = wire::TotalEntriesRequest::decode(p)?;
        req.version = version;
        if version < 2 {
            for e in &mut req.entries {
                e.state = None;
            }
        }
        out.push(req.encode());
    }
    Ok(out)
}

pub fn percent(done: u64, total: u64) -> u64 {
    done.saturating_mul(100)
        .checked_div(total)
        .map_or(100, |p| p.min(100))
}
