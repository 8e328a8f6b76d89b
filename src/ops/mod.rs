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
mod master;
pub mod moddn;
pub mod modify;
pub mod monitor;
mod paging;
pub mod replication;
pub mod result;
pub mod rootdse;
pub mod search;
mod search_ber;
pub(crate) use search_ber::encode_result;
mod sort;
pub mod stats;
pub mod sync;

use crate::directory::repl::AgreementConfig;
use crate::directory::{Directory, Identity};
use crate::model::Dn;
use ldap3_proto::control::LdapControl;
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
    /// SHA-256 of the TLS certificate clients are served now (None
    /// without TLS): what a synchronization key pins.
    pub certificate_pin: Option<CertificatePin>,
    /// Sends a user's own password change on to the master of a suffix
    /// this server follows (RFC 4533 consumer); the session layer provides it.
    pub write_chain: Option<Arc<dyn WriteChain>>,
}

/// Why a chained write got no answer from the master.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChainError {
    #[error("the master {provider} cannot be reached ({reason})")]
    Unreachable { provider: String, reason: String },
    #[error("the master {provider} refused the bind: {message}")]
    BindRefused { provider: String, message: String },
}

/// Chains a request to the provider of the suffix holding `target`, bound
/// as `bind_dn` with `password` (the user's own credentials); returns the
/// provider's response. None when no consumer feeds that suffix.
pub trait WriteChain: Send + Sync {
    fn chain<'a>(
        &'a self,
        dir: &'a Directory,
        target: &'a Dn,
        bind_dn: &'a Dn,
        password: &'a [u8],
        request: LdapOp,
    ) -> futures::future::BoxFuture<'a, Option<Result<LdapOp, ChainError>>>;
}

/// Whether a connection bound as `who` keeps its bind password: only on a
/// server that chains writes, for an identity in a suffix it follows as an
/// RFC 4533 consumer (a slave), so that the user's own password change can
/// be made on the master with the user's own credentials.
pub fn keeps_bind_secret(shared: &Shared, who: &Identity) -> bool {
    may_keep_bind_secret(shared)
        && !who.root
        && who
            .dn
            .as_ref()
            .is_some_and(|dn| shared.dir.sync_referral(dn).is_some())
}

/// Whether any bind could keep its password (a server that chains writes
/// and follows a provider): checked before the password is copied.
pub fn may_keep_bind_secret(shared: &Shared) -> bool {
    shared.write_chain.is_some() && shared.dir.follows_a_provider()
}

/// A modify that changes only the bound user's own userPassword, with the
/// password the connection bound with: (the user's DN, that password).
fn own_password_change<'a>(
    who: &Identity,
    req: &ldap3_proto::proto::LdapModifyRequest,
    secret: Option<&'a Vec<u8>>,
) -> Option<(Dn, &'a [u8])> {
    let me = who.dn.as_ref()?;
    let target = Dn::parse(&req.dn).ok()?;
    let only_password = !req.changes.is_empty()
        && req
            .changes
            .iter()
            .all(|c| c.modification.atype.eq_ignore_ascii_case("userPassword"));
    (only_password && target == *me).then_some((target, secret?.as_slice()))
}

/// A modify of a read-only copy: a user's own password change is made on
/// the master; anything else gets `refusal` (the referral).
async fn modify_on_a_copy(
    shared: &Shared,
    who: &Identity,
    req: ldap3_proto::proto::LdapModifyRequest,
    refusal: LdapResult,
    bound_secret: Option<&Vec<u8>>,
) -> LdapResult {
    let Some((dn, pw)) = own_password_change(who, &req, bound_secret) else {
        return refusal;
    };
    match chain(shared, &dn, &dn, pw, LdapOp::ModifyRequest(req)).await {
        Some(Ok(LdapOp::ModifyResponse(answer))) => answer,
        Some(Ok(_)) => result::result(
            LdapResultCode::Other,
            "the master answered the chained modify with another operation",
        ),
        Some(Err(e)) => chain_failure(&e),
        None => refusal,
    }
}

/// Chains `request` for `target` to the master, bound as `bind_dn`.
pub(crate) async fn chain(
    shared: &Shared,
    target: &Dn,
    bind_dn: &Dn,
    password: &[u8],
    request: LdapOp,
) -> Option<Result<LdapOp, ChainError>> {
    let chain = shared.write_chain.as_ref()?;
    chain
        .chain(&shared.dir, target, bind_dn, password, request)
        .await
}

/// The result a client gets when its write could not be chained.
pub(crate) fn chain_failure(e: &ChainError) -> LdapResult {
    match e {
        ChainError::Unreachable { .. } => result::result(
            LdapResultCode::Unavailable,
            format!(
                "{e}; this server is a read-only copy and password changes are made on the \
                 master: try again when the link to it is back"
            ),
        ),
        ChainError::BindRefused { .. } => {
            result::result(LdapResultCode::InvalidCredentials, e.to_string())
        }
    }
}
/// Reads the pin of the certificate in use (it may be reloaded).
pub type CertificatePin = Arc<dyn Fn() -> Option<[u8; 32]> + Send + Sync>;

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
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// Terms a filter may have (0 = unlimited).
    pub max_filter_terms: usize,
    /// Entries a search may look at (0 = unlimited).
    pub lookthrough_limit: usize,
    /// Entries a sorted search (RFC 2891, VLV) may sort, for everyone:
    /// they are held in memory while sorted.
    pub max_sort_entries: usize,
}

impl Default for SearchLimits {
    fn default() -> SearchLimits {
        SearchLimits {
            max_filter_terms: 0,
            lookthrough_limit: 0,
            max_sort_entries: sort::DEFAULT_MAX_SORT_ENTRIES,
        }
    }
}

impl SearchLimits {
    pub fn from_config(limits: &crate::config::Limits) -> SearchLimits {
        SearchLimits {
            max_filter_terms: limits.max_filter_terms,
            lookthrough_limit: limits.lookthrough_limit,
            max_sort_entries: sort::DEFAULT_MAX_SORT_ENTRIES,
        }
    }
}

/// A response on its way to the connection's writer.
#[derive(Debug)]
pub enum Response {
    /// Boxed: a connection's response channel allocates its slots in
    /// blocks of 32 up front, and an unboxed LdapMsg (~200 bytes) made
    /// that about 6 KiB per connection, idle or not.
    Msg(Box<LdapMsg>),
    /// Complete messages already BER-encoded (search entries are encoded
    /// where they are read, in batches).
    Encoded(Vec<u8>),
}

impl From<LdapMsg> for Response {
    fn from(m: LdapMsg) -> Response {
        Response::Msg(Box::new(m))
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
    bound_secret: Option<Arc<Vec<u8>>>,
) -> Outcome {
    let msgid = request.msgid;
    let wants_policy = bind::asks_for_policy(&request.ctrl);
    let parsed =
        controls::parse(&request.ctrl).and_then(|c| c.check_applicable(&request.op).map(|()| c));
    let ctrls = match parsed {
        Ok(c) => c,
        Err(e) => {
            let r = result::result(e.code(), e.message());
            let outcome = Outcome::of(&r);
            if let Some(op) = response_for(&request.op, r) {
                let _ = sink.send(msg(msgid, op).into()).await;
            }
            return outcome;
        }
    };
    let entry_ctrls = ctrls.entry_controls(&request.op);
    match request.op {
        LdapOp::SearchRequest(req) => match copy_refusal(&shared, &req.base, &ctrls) {
            Some(r) => send_result(&sink, msgid, LdapOp::SearchResultDone(r), Vec::new()).await,
            None => search::run(shared, who, msgid, req, ctrls, sink, cancelled).await,
        },
        LdapOp::AddRequest(req) => {
            let (r, ctrl) = match read_only_refusal(&shared, &req.dn, ctrls.manage_dsa_it) {
                Some(r) => (r, Vec::new()),
                None => add::run(&shared, &who, req, entry_ctrls).await,
            };
            send_result(&sink, msgid, LdapOp::AddResponse(r), ctrl).await
        }
        LdapOp::ModifyRequest(req) => {
            let (r, ctrl) = match read_only_refusal(&shared, &req.dn, ctrls.manage_dsa_it) {
                Some(r) if ctrls.manage_dsa_it => (r, Vec::new()),
                Some(r) => (
                    modify_on_a_copy(&shared, &who, req, r, bound_secret.as_deref()).await,
                    Vec::new(),
                ),
                None => modify::run(&shared, &who, req, entry_ctrls).await,
            };
            send_result(&sink, msgid, LdapOp::ModifyResponse(r), ctrl).await
        }
        LdapOp::DelRequest(dn) => {
            let (r, ctrl) = match read_only_refusal(&shared, &dn, ctrls.manage_dsa_it) {
                Some(r) => (r, Vec::new()),
                None => delete::run(&shared, &who, &dn, entry_ctrls).await,
            };
            send_result(&sink, msgid, LdapOp::DelResponse(r), ctrl).await
        }
        LdapOp::ModifyDNRequest(req) => {
            let (r, ctrl) = match read_only_refusal(&shared, &req.dn, ctrls.manage_dsa_it) {
                Some(r) => (r, Vec::new()),
                None => moddn::run(&shared, &who, req, entry_ctrls).await,
            };
            send_result(&sink, msgid, LdapOp::ModifyDNResponse(r), ctrl).await
        }
        LdapOp::CompareRequest(req) => {
            let r = match copy_refusal(&shared, &req.dn, &ctrls) {
                Some(r) => r,
                None => compare::run(&shared, &who, req, ctrls.assertion.as_ref()).await,
            };
            send_result(&sink, msgid, LdapOp::CompareResult(r), Vec::new()).await
        }
        LdapOp::ExtendedRequest(req) => {
            let (resp, ctrl) = extended::run_with_controls(
                &shared,
                &who,
                req,
                ctrls.manage_dsa_it,
                wants_policy,
                bound_secret.as_deref(),
            )
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

/// Don't Use Copy (RFC 6171 §3): a read-only replica holds a copy of its
/// suffix, so a read that must not use one is referred to the supplier
/// (unwillingToPerform when no supplier is known). Suppliers and
/// unreplicated suffixes hold the original: the control changes nothing.
pub(crate) fn copy_refusal(
    shared: &Shared,
    dn: &str,
    ctrls: &controls::RequestControls,
) -> Option<LdapResult> {
    if !ctrls.dont_use_copy {
        return None;
    }
    let dn = Dn::parse(dn).ok()?;
    let urls = shared.dir.write_referral(&dn)?;
    if urls.is_empty() {
        return Some(result::result(
            LdapResultCode::UnwillingToPerform,
            format!("'{dn}' is held here only as a read-only replica (a copy, RFC 6171) and no supplier is known"),
        ));
    }
    let mut r = result::result(
        LdapResultCode::Referral,
        "this is a read-only replica (a copy); Don't Use Copy: ask the supplier",
    );
    r.referral = urls;
    Some(r)
}

async fn send_result(sink: &Sink, msgid: i32, op: LdapOp, ctrl: Vec<LdapControl>) -> Outcome {
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
    let mut m = msg(msgid, op);
    m.ctrl = ctrl;
    let _ = sink.send(m.into()).await;
    outcome
}

/// The result of a write with the pre-read and post-read response
/// controls (RFC 4527) for what it read.
pub(crate) fn write_result(
    written: crate::directory::DirResult<crate::directory::EntryReads>,
) -> (LdapResult, Vec<LdapControl>) {
    match written {
        Ok(reads) => {
            let mut ctrl = Vec::new();
            if let Some(e) = &reads.pre {
                ctrl.push(controls::read_entry_response(
                    crate::model::oid::PRE_READ,
                    e,
                ));
            }
            if let Some(e) = &reads.post {
                ctrl.push(controls::read_entry_response(
                    crate::model::oid::POST_READ,
                    e,
                ));
            }
            (result::success(), ctrl)
        }
        Err(e) => (result::from_error(&e), Vec::new()),
    }
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

/// [`response_for`] by the request's [`op_name`] (for when the request
/// itself is gone).
pub fn response_for_name(name: &str, r: LdapResult) -> Option<LdapOp> {
    Some(match name {
        "SRCH" => LdapOp::SearchResultDone(r),
        "MOD" => LdapOp::ModifyResponse(r),
        "ADD" => LdapOp::AddResponse(r),
        "DEL" => LdapOp::DelResponse(r),
        "MODRDN" => LdapOp::ModifyDNResponse(r),
        "CMP" => LdapOp::CompareResult(r),
        "EXT" => LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
            res: r,
            name: None,
            value: None,
        }),
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
