//! Consumer side of ferrodir's replication protocol: the extended
//! operations a supplier sends (start session / total init, changes,
//! total-init entries, total-init end). Only the identity named by the
//! replica entry's nsDS5ReplicaBindDN may use them. Also the supplier-side
//! "test agreement" operation behind `ferrodir repl test`.

use super::{result, Shared};
use crate::directory::{DirError, Identity};
use crate::model::Dn;
use crate::repl::core::catchup;
use crate::repl::core::wire::{
    self, ChangesRequest, StartRequest, TotalEndRequest, TotalEntriesRequest,
};
use ldap3_proto::proto::{LdapExtendedRequest, LdapExtendedResponse, LdapResultCode};

fn reply_ok(value: Vec<u8>) -> LdapExtendedResponse {
    LdapExtendedResponse {
        res: result::success(),
        name: None,
        value: Some(value),
    }
}

fn reply_err(e: &DirError) -> LdapExtendedResponse {
    LdapExtendedResponse {
        res: result::from_error(e),
        name: None,
        value: None,
    }
}

fn malformed(what: &str) -> LdapExtendedResponse {
    LdapExtendedResponse {
        res: result::result(
            LdapResultCode::ProtocolError,
            format!("malformed {what} request"),
        ),
        name: None,
        value: None,
    }
}

fn suffix(text: &str) -> Result<Dn, Box<LdapExtendedResponse>> {
    Dn::parse(text).map_err(|e| {
        Box::new(LdapExtendedResponse {
            res: result::result(LdapResultCode::InvalidDNSyntax, e.to_string()),
            name: None,
            value: None,
        })
    })
}

/// The consumer's answer in the version it was asked in: its RUV and,
/// from version 2, its retirements.
fn answer(
    dir: &crate::directory::Directory,
    version: u8,
    suffix: &Dn,
    ruv: Result<crate::repl::core::ruv::Ruv, DirError>,
) -> LdapExtendedResponse {
    let ruv = match ruv {
        Ok(r) => r,
        Err(e) => return reply_err(&e),
    };
    match dir.retired(suffix) {
        Ok(retired) => reply_ok(wire::encode_answer(version, &ruv, &retired)),
        Err(e) => reply_err(&e),
    }
}

pub fn handles(oid: &str) -> bool {
    wire::ALL_OIDS.contains(&oid)
        || catchup::ALL_OIDS.contains(&oid)
        || oid == crate::model::oid::REPL_TEST_AGREEMENT
}

/// Payload of the test-agreement request: protocol version, then the
/// agreement's DN as UTF-8.
pub fn encode_test_request(agreement_dn: &str) -> Vec<u8> {
    let mut v = vec![wire::PROTOCOL_V1];
    v.extend_from_slice(agreement_dn.as_bytes());
    v
}

/// Runs an agreement's connection test from this server (only it can
/// decrypt the credentials). Root DN only. The answer's value is "Pass" or
/// "Fail: <reason>"; the operation itself succeeds either way.
async fn test_agreement(shared: &Shared, who: &Identity, value: &[u8]) -> LdapExtendedResponse {
    if !who.root {
        return LdapExtendedResponse {
            res: result::result(
                LdapResultCode::InsufficentAccessRights,
                "only the root DN may test replication agreements",
            ),
            name: None,
            value: None,
        };
    }
    let text = match value.split_first() {
        Some((&wire::PROTOCOL_V1, rest)) => String::from_utf8_lossy(rest).to_string(),
        _ => return malformed("test agreement"),
    };
    let dn = match suffix(&text) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let dir = &shared.dir;
    let norm = dir.normalize_dn(&dn);
    let Some(cfg) = dir
        .agreements()
        .into_iter()
        .find(|a| dir.normalize_dn(&a.dn) == norm)
    else {
        return LdapExtendedResponse {
            res: result::result(
                LdapResultCode::NoSuchObject,
                format!("'{dn}' is not a valid replication agreement on this server"),
            ),
            name: None,
            value: None,
        };
    };
    let verdict = match &shared.agreement_tester {
        Some(tester) => tester.test(dir, &cfg).await,
        None => "Fail: this server does not run replication agreements".to_string(),
    };
    tracing::info!(agreement = %dn, "agreement test: {verdict}");
    reply_ok(verdict.into_bytes())
}

pub async fn run(
    shared: &Shared,
    who: &Identity,
    req: LdapExtendedRequest,
) -> LdapExtendedResponse {
    let value = req.value.unwrap_or_default();
    let dir = &shared.dir;
    match req.name.as_str() {
        crate::model::oid::REPL_TEST_AGREEMENT => test_agreement(shared, who, &value).await,
        wire::OID_START => {
            let Ok(start) = StartRequest::decode(&value) else {
                return malformed("replication start");
            };
            let dn = match suffix(&start.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            let ruv = match dir.repl_start(
                who,
                &dn,
                start.supplier_rid,
                &start.generation,
                start.total,
            ) {
                Ok(r) => r,
                Err(e) => return reply_err(&e),
            };
            dir.note_session(&dn, &start.supplier_url);
            if let Err(e) = dir.merge_retired(&dn, &start.retired).await {
                return reply_err(&e);
            }
            if start.total {
                if let Err(e) = dir
                    .repl_total_begin(who, &dn, start.generation.clone(), start.with_states)
                    .await
                {
                    return reply_err(&e);
                }
                tracing::info!(suffix = %dn, supplier = %start.supplier_url, "total init started");
            }
            answer(dir, start.version, &dn, Ok(ruv))
        }
        wire::OID_CHANGES => {
            let Ok(changes) = ChangesRequest::decode(&value) else {
                return malformed("replicate changes");
            };
            let dn = match suffix(&changes.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            let count = changes.records.len();
            let newest = changes.records.iter().map(|r| r.csn).max();
            let applied = dir.repl_apply(who, &dn, changes.records).await;
            if applied.is_ok() {
                dir.note_changes_received(&dn, count, newest);
            }
            answer(dir, changes.version, &dn, applied)
        }
        wire::OID_TOTAL_ENTRIES => {
            let t_decode = std::time::Instant::now();
            let Ok(batch) = TotalEntriesRequest::decode(&value) else {
                return malformed("total update entries");
            };
            let dn = match suffix(&batch.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            let n = batch.entries.len();
            let decoded = t_decode.elapsed();
            let t_apply = std::time::Instant::now();
            let applied = dir.repl_total_entries(who, &dn, batch.entries).await;
            // What a page costs here, to tell the consumer's share of an
            // init from the supplier's and the network's.
            tracing::debug!(
                suffix = %dn,
                "total init page: {n} entries, {} bytes, decoded in {:.1} ms, applied in {:.1} ms",
                value.len(),
                decoded.as_secs_f64() * 1e3,
                t_apply.elapsed().as_secs_f64() * 1e3
            );
            match applied {
                Ok(()) => reply_ok(Vec::new()),
                Err(e) => reply_err(&e),
            }
        }
        wire::OID_TOTAL_END => {
            let Ok(end) = TotalEndRequest::decode(&value) else {
                return malformed("total update end");
            };
            let dn = match suffix(&end.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            let retired = (end.version >= 2).then_some(end.retired);
            let ended = dir.repl_total_end(who, &dn, end.ruv, retired).await;
            if ended.is_ok() {
                tracing::info!(suffix = %dn, "total init finished");
            }
            answer(dir, end.version, &dn, ended)
        }
        catchup::OID_CATCHUP_ENTRIES => {
            let Ok(req) = catchup::EntriesRequest::decode(&value) else {
                return malformed("catch-up entries");
            };
            let dn = match suffix(&req.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            match dir
                .repl_catch_up_entries(who, &dn, req.entries, req.supplier_ruv)
                .await
            {
                Ok(()) => reply_ok(Vec::new()),
                Err(e) => reply_err(&e),
            }
        }
        catchup::OID_CATCHUP_PRESENT => {
            let Ok(req) = catchup::PresentRequest::decode(&value) else {
                return malformed("catch-up present list");
            };
            let dn = match suffix(&req.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            match dir
                .repl_catch_up_present(who, &dn, (req.low, req.high), req.uuids, req.supplier_ruv)
                .await
            {
                Ok(()) => reply_ok(Vec::new()),
                Err(e) => reply_err(&e),
            }
        }
        catchup::OID_CATCHUP_END => {
            let Ok(req) = catchup::EndRequest::decode(&value) else {
                return malformed("catch-up end");
            };
            let dn = match suffix(&req.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            match dir.repl_catch_up_end(who, &dn, req.supplier_ruv).await {
                Ok(ruv) => {
                    tracing::info!(suffix = %dn, "caught up from the supplier's entry state");
                    reply_ok(wire::encode_ruv_response(&ruv))
                }
                Err(e) => reply_err(&e),
            }
        }
        other => LdapExtendedResponse {
            res: result::result(
                LdapResultCode::ProtocolError,
                format!("unsupported extended operation {other}"),
            ),
            name: None,
            value: None,
        },
    }
}
