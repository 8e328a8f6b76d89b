//! Consumer side of ferrodir's replication protocol: the extended
//! operations a supplier sends (start session / total init, changes,
//! total-init entries, total-init end). Only the identity named by the
//! replica entry's nsDS5ReplicaBindDN may use them.

use super::{result, Shared};
use crate::directory::{DirError, Identity};
use crate::model::Dn;
use crate::repl::proto::{
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

pub fn handles(oid: &str) -> bool {
    proto::ALL_OIDS.contains(&oid)
}

pub async fn run(
    shared: &Shared,
    who: &Identity,
    req: LdapExtendedRequest,
) -> LdapExtendedResponse {
    let value = req.value.unwrap_or_default();
    let dir = &shared.dir;
    match req.name.as_str() {
        proto::OID_START => {
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
            dir.note_supplier_url(&dn, &start.supplier_url);
            if start.total {
                if let Err(e) = dir
                    .repl_total_begin(who, &dn, start.generation.clone())
                    .await
                {
                    return reply_err(&e);
                }
                tracing::info!(suffix = %dn, supplier = %start.supplier_url, "total init started");
            }
            reply_ok(proto::encode_ruv_response(&ruv))
        }
        proto::OID_CHANGES => {
            let Ok(changes) = ChangesRequest::decode(&value) else {
                return malformed("replicate changes");
            };
            let dn = match suffix(&changes.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            match dir.repl_apply(who, &dn, changes.records).await {
                Ok(ruv) => reply_ok(proto::encode_ruv_response(&ruv)),
                Err(e) => reply_err(&e),
            }
        }
        proto::OID_TOTAL_ENTRIES => {
            let Ok(batch) = TotalEntriesRequest::decode(&value) else {
                return malformed("total update entries");
            };
            let dn = match suffix(&batch.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            match dir.repl_total_entries(who, &dn, batch.entries).await {
                Ok(()) => reply_ok(Vec::new()),
                Err(e) => reply_err(&e),
            }
        }
        proto::OID_TOTAL_END => {
            let Ok(end) = TotalEndRequest::decode(&value) else {
                return malformed("total update end");
            };
            let dn = match suffix(&end.suffix) {
                Ok(d) => d,
                Err(r) => return *r,
            };
            match dir.repl_total_end(who, &dn, end.ruv).await {
                Ok(ruv) => {
                    tracing::info!(suffix = %dn, "total init finished");
                    reply_ok(proto::encode_ruv_response(&ruv))
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
