//! One module per LDAP operation: decode the request, call the directory,
//! answer with the RFC 4511 result. The server layer owns connections; this
//! layer owns protocol semantics.

pub mod add;
pub mod bind;
pub mod compare;
pub mod controls;
pub mod delete;
pub mod extended;
pub mod filter_text;
pub mod moddn;
pub mod modify;
pub mod monitor;
mod paging;
pub mod replication;
pub mod result;
pub mod rootdse;
pub mod search;
mod search_ber;
pub mod stats;

use crate::directory::repl::AgreementConfig;
use crate::directory::{Directory, Identity};
use crate::model::Dn;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResult, LdapResultCode};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::mpsc;

pub const VENDOR_NAME: &str = "ferrodir";
pub const VENDOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything operations share across connections.
pub struct Shared {
    pub dir: Arc<Directory>,
    /// Largest nesting of a search filter accepted.
    pub max_filter_depth: usize,
    /// Runs the "test agreement" extended operation; the replication
    /// session layer (above this one) provides it.
    pub agreement_tester: Option<Arc<dyn AgreementTester>>,
    pub search: SearchLimits,
    /// Counters of connections and operations (cn=monitor, metrics).
    pub stats: Arc<stats::Stats>,
}

/// Connects and binds to an agreement's consumer with its credentials and
/// says "Pass" or "Fail: <reason>".
pub trait AgreementTester: Send + Sync {
    fn test<'a>(
        &'a self,
        dir: &'a Directory,
        agreement: &'a AgreementConfig,
    ) -> futures::future::BoxFuture<'a, String>;
}

/// Bounds on the work of one search by anyone but the root DN.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchLimits {
    /// Terms a filter may have (0 = unlimited).
    pub max_filter_terms: usize,
    /// Entries a search may look at (0 = unlimited).
    pub lookthrough_limit: usize,
}

impl SearchLimits {
    pub fn from_config(limits: &crate::config::Limits) -> SearchLimits {
        SearchLimits {
            max_filter_terms: limits.max_filter_terms,
            lookthrough_limit: limits.lookthrough_limit,
        }
    }
}

/// A response on its way to the connection's writer.
#[derive(Debug)]
pub enum Response {
    Msg(LdapMsg),
    /// Complete messages already BER-encoded (search entries are encoded
    /// where they are read, in batches).
    Encoded(Vec<u8>),
}

impl From<LdapMsg> for Response {
    fn from(m: LdapMsg) -> Response {
        Response::Msg(m)
    }
}

/// Responses for one connection are written in order by its writer task.
pub type Sink = mpsc::Sender<Response>;

/// What the access log records of a finished operation.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub code: i32,
    pub entries: usize,
}

impl Outcome {
    pub fn of(r: &LdapResult) -> Outcome {
        Outcome {
            code: r.code.clone() as i32,
            entries: 0,
        }
    }
}

pub fn msg(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    }
}

/// Parses a DN from a request, mapping failure to invalidDNSyntax.
pub fn parse_dn(text: &str) -> Result<Dn, LdapResult> {
    Dn::parse(text).map_err(|e| result::result(LdapResultCode::InvalidDNSyntax, e.to_string()))
}

/// Runs every operation except bind, unbind and abandon (which change or
/// end the connection and are handled by the server layer).
pub async fn dispatch(
    shared: Arc<Shared>,
    who: Identity,
    request: LdapMsg,
    sink: Sink,
    cancelled: Arc<AtomicBool>,
) -> Outcome {
    let msgid = request.msgid;
    let wants_policy = bind::asks_for_policy(&request.ctrl);
    let ctrls = match controls::parse(&request.ctrl) {
        Ok(c) => c,
        Err(oid) => {
            let r = result::result(
                LdapResultCode::UnavailableCriticalExtension,
                format!("critical control {oid} is not supported"),
            );
            let outcome = Outcome::of(&r);
            if let Some(op) = response_for(&request.op, r) {
                let _ = sink.send(msg(msgid, op).into()).await;
            }
            return outcome;
        }
    };
    match request.op {
        LdapOp::SearchRequest(req) => {
            search::run(shared, who, msgid, req, ctrls, sink, cancelled).await
        }
        LdapOp::AddRequest(req) => {
            let r = match read_only_refusal(&shared, &req.dn, ctrls.manage_dsa_it) {
                Some(r) => r,
                None => add::run(&shared, &who, req).await,
            };
            send_result(&sink, msgid, LdapOp::AddResponse(r)).await
        }
        LdapOp::ModifyRequest(req) => {
            let r = match read_only_refusal(&shared, &req.dn, ctrls.manage_dsa_it) {
                Some(r) => r,
                None => modify::run(&shared, &who, req).await,
            };
            send_result(&sink, msgid, LdapOp::ModifyResponse(r)).await
        }
        LdapOp::DelRequest(dn) => {
            let r = match read_only_refusal(&shared, &dn, ctrls.manage_dsa_it) {
                Some(r) => r,
                None => delete::run(&shared, &who, &dn).await,
            };
            send_result(&sink, msgid, LdapOp::DelResponse(r)).await
        }
        LdapOp::ModifyDNRequest(req) => {
            let r = match read_only_refusal(&shared, &req.dn, ctrls.manage_dsa_it) {
                Some(r) => r,
                None => moddn::run(&shared, &who, req).await,
            };
            send_result(&sink, msgid, LdapOp::ModifyDNResponse(r)).await
        }
        LdapOp::CompareRequest(req) => {
            let r = compare::run(&shared, &who, req).await;
            send_result(&sink, msgid, LdapOp::CompareResult(r)).await
        }
        LdapOp::ExtendedRequest(req) => {
            let (resp, ctrl) =
                extended::run_with_controls(&shared, &who, req, ctrls.manage_dsa_it, wants_policy)
                    .await;
            let outcome = Outcome::of(&resp.res);
            let mut response = msg(msgid, LdapOp::ExtendedResponse(resp));
            response.ctrl = ctrl;
            let _ = sink.send(response.into()).await;
            outcome
        }
        other => {
            let r = result::result(
                LdapResultCode::ProtocolError,
                format!("unexpected protocol operation {}", op_name(&other)),
            );
            let outcome = Outcome::of(&r);
            let _ = sink
                .send(
                    msg(
                        msgid,
                        LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                            res: r,
                            name: None,
                            value: None,
                        }),
                    )
                    .into(),
                )
                .await;
            outcome
        }
    }
}

/// Writes to a read-only replica are referred to the supplier (RFC 4511
/// §4.1.10); with ManageDsaIT the client asked not to be referred, so the
/// write is refused instead.
pub(crate) fn read_only_refusal(
    shared: &Shared,
    dn: &str,
    manage_dsa_it: bool,
) -> Option<LdapResult> {
    let dn = Dn::parse(dn).ok()?;
    let urls = shared.dir.write_referral(&dn)?;
    if urls.is_empty() || manage_dsa_it {
        return Some(result::result(
            LdapResultCode::UnwillingToPerform,
            format!("'{dn}' is held by a read-only replica; write to its supplier"),
        ));
    }
    let mut r = result::result(
        LdapResultCode::Referral,
        "this is a read-only replica; write to the supplier",
    );
    r.referral = urls;
    Some(r)
}

async fn send_result(sink: &Sink, msgid: i32, op: LdapOp) -> Outcome {
    let outcome = match &op {
        LdapOp::AddResponse(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r)
        | LdapOp::CompareResult(r)
        | LdapOp::SearchResultDone(r) => Outcome::of(r),
        _ => Outcome {
            code: 0,
            entries: 0,
        },
    };
    let _ = sink.send(msg(msgid, op).into()).await;
    outcome
}

pub fn bind_response(r: LdapResult) -> LdapOp {
    LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse {
        res: r,
        saslcreds: None,
    })
}

/// The response operation matching a request, carrying `r`.
pub fn response_for(op: &LdapOp, r: LdapResult) -> Option<LdapOp> {
    Some(match op {
        LdapOp::BindRequest(_) => bind_response(r),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(r),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(r),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(r),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(r),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(r),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(r),
        LdapOp::ExtendedRequest(_) => {
            LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                res: r,
                name: None,
                value: None,
            })
        }
        _ => return None,
    })
}

pub fn op_name(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindRequest(_) => "BIND",
        LdapOp::UnbindRequest => "UNBIND",
        LdapOp::SearchRequest(_) => "SRCH",
        LdapOp::ModifyRequest(_) => "MOD",
        LdapOp::AddRequest(_) => "ADD",
        LdapOp::DelRequest(_) => "DEL",
        LdapOp::ModifyDNRequest(_) => "MODRDN",
        LdapOp::CompareRequest(_) => "CMP",
        LdapOp::AbandonRequest(_) => "ABANDON",
        LdapOp::ExtendedRequest(_) => "EXT",
        _ => "RESPONSE",
    }
}
