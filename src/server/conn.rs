//! One client connection: framing, idle timeouts, bind state, pipelined
//! operations with abandon, and the access log.

use super::{tls, ServerState};
use crate::directory::Identity;
use crate::ops::bind::BindContext;
use crate::ops::extended::OID_STARTTLS;
use crate::ops::{self, filter_text, result, Outcome, Response};
use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::{LdapExtendedResponse, LdapMsg, LdapOp, LdapResultCode};
use ldap3_proto::LdapCodec;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{Encoder, FramedRead, FramedWrite};

use crate::model::oid::NOTICE_OF_DISCONNECTION as OID_NOTICE_OF_DISCONNECTION;

type Outstanding = Arc<Mutex<HashMap<i32, Arc<AtomicBool>>>>;

/// Writes responses: messages through the LDAP codec, pre-encoded batches as they are.
struct ResponseCodec(LdapCodec);

impl Encoder<Response> for ResponseCodec {
    type Error = std::io::Error;

    fn encode(&mut self, r: Response, buf: &mut bytes::BytesMut) -> std::io::Result<()> {
        match r {
            Response::Msg(m) if ops::encode_result(buf, &m) => Ok(()),
            Response::Msg(m) => self.0.encode(*m, buf),
            Response::Encoded(bytes) => {
                buf.extend_from_slice(&bytes);
                Ok(())
            }
        }
    }
}

fn notice(code: LdapResultCode, message: &str) -> LdapMsg {
    ops::msg(
        0,
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result::result(code, message),
            name: Some(OID_NOTICE_OF_DISCONNECTION.into()),
            value: None,
        }),
    )
}

/// What the access log says about a request.
fn describe(m: &LdapMsg) -> String {
    // Only the access log reads it.
    if !super::access_log_on() {
        return String::new();
    }
    match &m.op {
        LdapOp::BindRequest(b) => format!(
            "dn=\"{}\" method={}",
            b.dn,
            match b.cred {
                ldap3_proto::proto::LdapBindCred::Simple(_) => "simple",
                ldap3_proto::proto::LdapBindCred::SASL(ref s) =>
                    if s.mechanism.eq_ignore_ascii_case("EXTERNAL") {
                        "sasl/EXTERNAL"
                    } else {
                        "sasl"
                    },
                _ => "other",
            }
        ),
        LdapOp::SearchRequest(s) => format!(
            "base=\"{}\" scope={} filter=\"{}\" attrs=\"{}\"",
            s.base,
            s.scope.clone() as i64,
            filter_text::to_string(&s.filter),
            s.attrs.join(" ")
        ),
        LdapOp::AddRequest(a) => format!("dn=\"{}\"", a.dn),
        LdapOp::ModifyRequest(r) => format!("dn=\"{}\"", r.dn),
        LdapOp::DelRequest(dn) => format!("dn=\"{dn}\""),
        LdapOp::ModifyDNRequest(r) => format!(
            "dn=\"{}\" newrdn=\"{}\" newsuperior=\"{}\"",
            r.dn,
            r.newrdn,
            r.new_superior.as_deref().unwrap_or("")
        ),
        LdapOp::CompareRequest(c) => format!("dn=\"{}\" attr={}", c.dn, c.atype),
        LdapOp::ExtendedRequest(e) => format!("oid={}", e.name),
        LdapOp::AbandonRequest(id) => format!("msgid={id}"),
        _ => String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn log_access(
    stats: &crate::ops::stats::Stats,
    conn: u64,
    op: u64,
    msgid: i32,
    kind: &str,
    what: &str,
    outcome: Outcome,
    started: Instant,
) {
    stats.operation(kind, outcome.code, outcome.entries, started.elapsed());
    if !super::access_log_on() {
        return;
    }
    tracing::info!(
        target: "ferrodir::access",
        "conn={} op={} msgid={} {} {} result={} entries={} etime={:.6}",
        conn,
        op,
        msgid,
        kind,
        what,
        outcome.code,
        outcome.entries,
        started.elapsed().as_secs_f64()
    );
}

/// One connection: who it is and what it shares.
pub(super) struct ConnCtx {
    pub id: u64,
    /// Operations received on the connection (StartTLS included), for the
    /// access log's op= (it goes on counting after a StartTLS).
    pub ops: std::sync::atomic::AtomicU64,
    pub peer: SocketAddr,
    pub state: Arc<ServerState>,
    /// An ldapi:// connection: the peer's user and group IDs.
    pub local: Option<(u32, u32)>,
}

/// What TLS told about the connection.
#[derive(Debug, Clone, Default)]
struct TlsInfo {
    client: crate::auth::PeerCert,
}

/// How a session ended.
enum SessionEnd<S> {
    Closed,
    /// StartTLS succeeded: the stream, clean, ready for the handshake.
    StartTls(S, Identity),
}

/// Tells a client over the connection limit why it is closed, without
/// waiting for it (it may not read at all).
pub(super) fn refuse(stream: TcpStream) {
    let mut buf = bytes::BytesMut::new();
    let mut codec = LdapCodec::new(None, None);
    if codec
        .encode(
            notice(
                LdapResultCode::Busy,
                "too many connections; try again later",
            ),
            &mut buf,
        )
        .is_ok()
    {
        let _ = stream.try_write(&buf);
    }
}

/// A connection on the ldapi:// (Unix socket) listener.
pub(super) async fn handle_local(stream: tokio::net::UnixStream, ctx: &ConnCtx) {
    // StartTLS is refused on these sessions, so the session only closes.
    let _ = session(stream, ctx, Identity::anonymous(), None).await;
}

/// A connection on a plain listener: LDAP in clear until StartTLS.
pub(super) async fn handle_plain(stream: TcpStream, ctx: &ConnCtx) {
    match session(stream, ctx, Identity::anonymous(), None).await {
        SessionEnd::Closed => {}
        SessionEnd::StartTls(stream, identity) => handle_tls(stream, ctx, identity).await,
    }
}

/// TLS handshake on `stream` (LDAPS, or after StartTLS), then the session.
pub(super) async fn handle_tls(stream: TcpStream, ctx: &ConnCtx, identity: Identity) {
    let Some(acceptor) = ctx.state.tls.as_ref().and_then(|t| t.acceptor()) else {
        tracing::warn!("TLS requested but not configured");
        return;
    };
    let limit = Duration::from_secs(ctx.state.limits.tls_handshake_timeout.max(1));
    let tls_stream = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Err(_) => {
            tracing::warn!(
                "TLS handshake failed from {}: no handshake within {} s (tls_handshake_timeout)",
                ctx.peer,
                limit.as_secs()
            );
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(
                "TLS handshake failed from {}: {}",
                ctx.peer,
                tls::describe_handshake_error(&e)
            );
            return;
        }
        Ok(Ok(s)) => s,
    };
    let (_, server) = tls_stream.get_ref();
    let client = server
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| tls::peer_cert(c.as_ref()))
        .unwrap_or_default();
    tracing::info!(
        version = server
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher = server
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        client_cert = client.subject.as_deref().unwrap_or("none"),
        "TLS established"
    );
    let info = TlsInfo { client };
    // No second upgrade: a StartTLS on this session is refused.
    let _ = session(tls_stream, ctx, identity, Some(info)).await;
}

/// `fut` under a time limit, the timer armed only when `fut` does not
/// finish at its first poll: a response that fits in the socket's buffer
/// (nearly all) then costs no timer registration and cancellation.
async fn within<F: std::future::Future>(
    limit: Duration,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut fut = std::pin::pin!(fut);
    if let std::task::Poll::Ready(out) = futures::poll!(fut.as_mut()) {
        return Ok(out);
    }
    tokio::time::timeout(limit, fut).await
}

/// A connection whose operations are still running or whose responses are
/// still being written is not idle (a stalled writer ends by write_timeout).
fn busy_writing(outstanding: &Outstanding, tx: &mpsc::Sender<Response>) -> bool {
    let running = outstanding.lock().map(|m| !m.is_empty()).unwrap_or(false);
    running || tx.capacity() < tx.max_capacity()
}

/// Whether the peer address counts as local (loopback, also IPv4-mapped).
fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The LDAP session over one stream. Returns the stream after a successful
/// StartTLS so the caller can run the handshake on the same socket.
async fn session<S>(
    stream: S,
    ctx: &ConnCtx,
    mut identity: Identity,
    tls_info: Option<TlsInfo>,
) -> SessionEnd<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let conn_id = ctx.id;
    let state = &ctx.state;
    let limits = state.limits.clone();
    let (rd, wr) = tokio::io::split(stream);
    // Small initial buffers (they grow on demand): idle connections stay cheap.
    let mut codec =
        super::framing::GuardedCodec::with_budget(limits.max_message_size, state.pending.clone());
    set_message_limit(&mut codec, &limits, &identity);
    let mut reader = FramedRead::with_capacity(rd, codec, 1024);
    // The write buffer starts empty rather than at tokio-util's 8 KiB: most
    // connections hold nothing between responses, and thousands of idle
    // ones would each keep a buffer. The flush boundary stays at 8 KiB.
    let mut writer = FramedWrite::with_capacity(
        wr,
        ResponseCodec(LdapCodec::new(Some(usize::MAX / 4), None)),
        0,
    );
    writer.set_backpressure_boundary(8 << 10);
    let (tx, mut rx) = mpsc::channel::<Response>(256);
    let write_limit = Duration::from_secs(limits.write_timeout.max(1));
    let write_task = tokio::spawn(tracing::Instrument::in_current_span(async move {
        let mut healthy = true;
        while let Some(m) = rx.recv().await {
            // Flush only when no more responses are queued: fewer syscalls under pipelining.
            let r = if rx.is_empty() {
                within(write_limit, writer.send(m)).await
            } else {
                within(write_limit, writer.feed(m)).await
            };
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!("write failed: {e}");
                    healthy = false;
                    break;
                }
                Err(_) => {
                    tracing::warn!(
                        "closing connection: the client has not read its responses for {} s (write_timeout)",
                        write_limit.as_secs()
                    );
                    healthy = false;
                    break;
                }
            }
        }
        drop(rx);
        if healthy {
            healthy = matches!(
                tokio::time::timeout(write_limit, writer.flush()).await,
                Ok(Ok(()))
            );
        }
        (writer, healthy)
    }));

    let tls_active = tls_info.is_some();
    let starttls_available = state.tls.is_some();
    let bind_ctx = BindContext {
        encrypted: tls_active,
        peer_is_loopback: is_loopback(&ctx.peer),
        require_secure_binds: state.security.require_secure_binds,
        client_cert: tls_info.as_ref().map(|t| t.client.clone()),
        cert_map_attribute: state.cert_map_attribute.clone(),
        peer_cred: ctx.local,
    };
    let outstanding: Outstanding = Arc::new(Mutex::new(HashMap::new()));
    let mut upgrade = false;
    // Password policy: after a bind with a reset password, only the
    // password change is allowed until it succeeds (ops::bind).
    let must_change = Arc::new(AtomicBool::new(false));
    // On a slave, the password of the last simple bind, kept in memory
    // for this connection only: a user's own password change is chained to
    // the master bound as that user (ops::keeps_bind_secret).
    let mut bound_secret: Option<Arc<Vec<u8>>> = None;
    // One idle timer for the connection's life, re-armed only when it
    // fires early (a timer per request cost its registration and
    // cancellation on every operation).
    let mut last_request = tokio::time::Instant::now();
    let idle_timer = tokio::time::sleep(Duration::from_secs(limits.anonymous_idle_timeout.max(1)));
    tokio::pin!(idle_timer);
    loop {
        let idle = if identity.is_anonymous() {
            limits.anonymous_idle_timeout
        } else {
            limits.idle_timeout
        };
        let deadline = last_request + Duration::from_secs(idle.max(1));
        if idle_timer.is_elapsed() || idle_timer.deadline() > deadline {
            idle_timer.as_mut().reset(deadline);
        }
        let next = tokio::select! {
            n = reader.next() => Some(n),
            _ = &mut idle_timer => None,
            _ = tx.closed() => break,
        };
        let request = match next {
            // Armed for an earlier request: wait the rest.
            None if tokio::time::Instant::now() < deadline => continue,
            None if busy_writing(&outstanding, &tx) => {
                last_request = tokio::time::Instant::now();
                continue;
            }
            None => {
                tracing::info!("closing idle connection after {idle} s");
                let _ = tx
                    .send(notice(LdapResultCode::Unavailable, "idle timeout").into())
                    .await;
                break;
            }
            Some(None) => break,
            Some(Some(Err(e))) => {
                let mut code = LdapResultCode::ProtocolError;
                let why = match classify_read_error(&e) {
                    ReadError::Budget => {
                        code = LdapResultCode::Busy;
                        format!("partial message refused: {e}")
                    }
                    ReadError::Oversized => format!(
                        "LDAP message larger than {} bytes (max_message_size)",
                        limits.max_message_size
                    ),
                    ReadError::Malformed => format!("malformed LDAP message: {e}"),
                    ReadError::Transport => {
                        // Reset, TLS alert, EOF without close_notify: nobody to answer.
                        tracing::info!("connection lost: {}", tls::describe_handshake_error(&e));
                        break;
                    }
                };
                tracing::warn!("{why}, closing connection");
                // Requests received before the bad bytes still get their answers.
                drain_outstanding(&outstanding, Duration::from_secs(5)).await;
                let _ = tx.send(notice(code, &why).into()).await;
                break;
            }
            Some(Some(Ok(m))) => {
                last_request = tokio::time::Instant::now();
                m
            }
        };
        let started = Instant::now();
        let op_no = ctx.ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Err(why) = super::limits::check_request_dns(&request.op, &limits) {
            let r = super::limits::dn_limit_result(why);
            let outcome = Outcome::of(&r);
            if let Some(op) = ops::response_for(&request.op, r) {
                let _ = tx.send(ops::msg(request.msgid, op).into()).await;
            }
            if matches!(request.op, LdapOp::BindRequest(_)) {
                // As after any failed bind, the connection is anonymous now.
                identity = Identity::anonymous();
                set_message_limit(reader.decoder_mut(), &limits, &identity);
            }
            let kind = ops::op_name(&request.op);
            let what = "(a DN over max_dn_depth or max_dn_length)";
            log_access(
                &state.shared.stats,
                conn_id,
                op_no,
                request.msgid,
                kind,
                what,
                outcome,
                started,
            );
            continue;
        }
        match request.op {
            LdapOp::UnbindRequest => {
                log_access(
                    &state.shared.stats,
                    conn_id,
                    op_no,
                    request.msgid,
                    "UNBIND",
                    "",
                    Outcome {
                        code: 0,
                        entries: 0,
                    },
                    started,
                );
                break;
            }
            LdapOp::AbandonRequest(target) => {
                if let Ok(map) = outstanding.lock() {
                    if let Some(flag) = map.get(&target) {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                log_access(
                    &state.shared.stats,
                    conn_id,
                    op_no,
                    request.msgid,
                    "ABANDON",
                    &describe(&request),
                    Outcome {
                        code: -1,
                        entries: 0,
                    },
                    started,
                );
            }
            LdapOp::BindRequest(_) => {
                let what = describe(&request);
                let msgid = request.msgid;
                let LdapOp::BindRequest(req) = request.op else {
                    continue;
                };
                let simple = match &req.cred {
                    ldap3_proto::proto::LdapBindCred::Simple(pw)
                        if !pw.is_empty() && ops::may_keep_bind_secret(&state.shared) =>
                    {
                        Some(pw.clone())
                    }
                    _ => None,
                };
                let reply =
                    ops::bind::run_with_controls(&state.shared, req, &bind_ctx, &request.ctrl)
                        .await;
                identity = reply.identity.unwrap_or_default();
                bound_secret = simple
                    .filter(|_| ops::keeps_bind_secret(&state.shared, &identity))
                    .map(|pw| Arc::new(pw.into_bytes()));
                must_change.store(reply.must_change, Ordering::Relaxed);
                set_message_limit(reader.decoder_mut(), &limits, &identity);
                let outcome = Outcome::of(&reply.result);
                let resp = ops::bind_response(reply.result);
                let mut response = ops::msg(msgid, resp);
                response.ctrl = reply.controls;
                let _ = tx.send(response.into()).await;
                log_access(
                    &state.shared.stats,
                    conn_id,
                    op_no,
                    msgid,
                    "BIND",
                    &what,
                    outcome,
                    started,
                );
            }
            LdapOp::ExtendedRequest(ref ext) if ext.name == OID_STARTTLS => {
                let msgid = request.msgid;
                let pending = outstanding.lock().map(|m| m.len()).unwrap_or(usize::MAX);
                let res = if ctx.local.is_some() {
                    result::result(
                        LdapResultCode::OperationsError,
                        "StartTLS is not available on ldapi:// (the connection does not leave this machine)",
                    )
                } else if tls_active {
                    result::result(
                        LdapResultCode::OperationsError,
                        "TLS is already established on this connection",
                    )
                } else if !starttls_available {
                    result::result(
                        LdapResultCode::ProtocolError,
                        "StartTLS is not available: TLS is disabled on this server",
                    )
                } else if pending > 0 {
                    result::result(
                        LdapResultCode::OperationsError,
                        format!("StartTLS refused: {pending} operations are still outstanding"),
                    )
                } else {
                    upgrade = true;
                    result::success()
                };
                let outcome = Outcome::of(&res);
                let response = ops::msg(
                    msgid,
                    LdapOp::ExtendedResponse(LdapExtendedResponse {
                        res,
                        name: Some(OID_STARTTLS.into()),
                        value: None,
                    }),
                );
                let _ = tx.send(response.into()).await;
                log_access(
                    &state.shared.stats,
                    conn_id,
                    op_no,
                    msgid,
                    "EXT",
                    &describe(&request),
                    outcome,
                    started,
                );
                if upgrade {
                    break;
                }
            }
            _ => {
                let msgid = request.msgid;
                let changes_password = ops::bind::changes_password(&request.op);
                if must_change.load(Ordering::Relaxed)
                    && !ops::bind::allowed_while_reset(&request.op)
                {
                    let r = ops::bind::must_change_refusal();
                    let outcome = Outcome::of(&r);
                    if let Some(op) = ops::response_for(&request.op, r) {
                        let _ = tx.send(ops::msg(msgid, op).into()).await;
                    }
                    let kind = ops::op_name(&request.op);
                    log_access(
                        &state.shared.stats,
                        conn_id,
                        op_no,
                        msgid,
                        kind,
                        &describe(&request),
                        outcome,
                        started,
                    );
                    continue;
                }
                let flag = Arc::new(AtomicBool::new(false));
                let busy = match outstanding.lock() {
                    Ok(mut map) => {
                        if map.len() >= limits.max_outstanding {
                            true
                        } else {
                            map.insert(msgid, flag.clone());
                            false
                        }
                    }
                    Err(_) => true,
                };
                if busy {
                    let r = result::result(
                        LdapResultCode::Busy,
                        format!(
                            "more than {} operations in flight on this connection",
                            limits.max_outstanding
                        ),
                    );
                    let outcome = Outcome::of(&r);
                    if let Some(op) = ops::response_for(&request.op, r) {
                        let _ = tx.send(ops::msg(msgid, op).into()).await;
                    }
                    log_access(
                        &state.shared.stats,
                        conn_id,
                        op_no,
                        msgid,
                        ops::op_name(&request.op),
                        &describe(&request),
                        outcome,
                        started,
                    );
                    continue;
                }
                let what = describe(&request);
                let kind = ops::op_name(&request.op);
                let shared = state.shared.clone();
                let who = identity.clone();
                let sink = tx.clone();
                let map = outstanding.clone();
                let reset_pending = must_change.clone();
                let secret = bound_secret.clone();
                let stats = shared.stats.clone();
                let failure_sink = tx.clone();
                tokio::spawn(tracing::Instrument::in_current_span(async move {
                    // A bug that panics in one operation answers that
                    // operation with "other" instead of leaving the client
                    // waiting for an answer that never comes.
                    let dispatched =
                        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
                            ops::dispatch(shared, who, request, sink, flag, secret),
                        ))
                        .await;
                    let outcome = match dispatched {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            tracing::error!(
                                msgid,
                                "operation {kind} failed with an internal error"
                            );
                            let r = result::result(
                                LdapResultCode::Other,
                                "internal error while performing the operation",
                            );
                            let outcome = Outcome::of(&r);
                            if let Some(op) = ops::response_for_name(kind, r) {
                                let _ = failure_sink.send(ops::msg(msgid, op).into()).await;
                            }
                            outcome
                        }
                    };
                    if changes_password && outcome.code == 0 {
                        reset_pending.store(false, Ordering::Relaxed);
                    }
                    if let Ok(mut m) = map.lock() {
                        m.remove(&msgid);
                    }
                    log_access(&stats, conn_id, op_no, msgid, kind, &what, outcome, started);
                }));
            }
        }
    }
    // Stop whatever is still running for this client.
    if let Ok(map) = outstanding.lock() {
        for flag in map.values() {
            flag.store(true, Ordering::Relaxed);
        }
    }
    // The writer ends once every sender is gone: ours here, the operations'
    // when they finish (abandoned above, or blocked until write_timeout).
    drop(tx);
    let Ok((writer, healthy)) = write_task.await else {
        return SessionEnd::Closed;
    };
    if upgrade && healthy {
        // The StartTLS response went out in clear and is flushed. Bytes the
        // client sent after its request, before reading the response, would
        // be lost in the upgrade: refuse such a client.
        let parts = reader.into_parts();
        if !parts.read_buf.is_empty() {
            tracing::warn!(
                "closing connection: data received after StartTLS before the TLS handshake"
            );
            return SessionEnd::Closed;
        }
        let stream = parts.io.unsplit(writer.into_inner());
        // A connection restricted to changing a reset password does not
        // carry its identity over TLS without the restriction: it binds again.
        let identity = if must_change.load(Ordering::Relaxed) {
            Identity::anonymous()
        } else {
            identity
        };
        return SessionEnd::StartTls(stream, identity);
    }
    // TLS: close_notify; TCP: FIN. Never wait long for a client that does not read.
    let mut wr = writer.into_inner();
    let _ = tokio::time::timeout(Duration::from_secs(2), wr.shutdown()).await;
    SessionEnd::Closed
}

/// Before a successful bind a connection may only send small messages
/// (OpenLDAP's sockbuf_max_incoming): an unauthenticated peer cannot make
/// the server buffer megabytes.
fn set_message_limit(
    codec: &mut super::framing::GuardedCodec,
    limits: &crate::config::Limits,
    identity: &Identity,
) {
    if identity.is_anonymous() {
        codec.set_max_message(
            limits
                .anonymous_max_message_size
                .min(limits.max_message_size),
            "anonymous_max_message_size",
        );
    } else {
        codec.set_max_message(limits.max_message_size, "max_message_size");
    }
}

/// Waits (bounded) until every operation in flight on the connection has answered.
async fn drain_outstanding(outstanding: &Outstanding, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let empty = outstanding.lock().map(|m| m.is_empty()).unwrap_or(true);
        if empty {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

enum ReadError {
    /// Larger than max_message_size (the codec's buffer limit).
    Oversized,
    /// The server-wide budget for partial messages is spent: busy.
    Budget,
    /// Bytes that are not LDAP: the client gets a notice of disconnection.
    Malformed,
    /// The transport failed (TCP or TLS): nobody to answer.
    Transport,
}

fn classify_read_error(e: &std::io::Error) -> ReadError {
    use std::io::ErrorKind as K;
    if e.get_ref()
        .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
    {
        return ReadError::Transport;
    }
    match super::framing::FrameError::of(e) {
        Some(super::framing::FrameError::Budget { .. }) => return ReadError::Budget,
        Some(super::framing::FrameError::Protocol(_)) => return ReadError::Malformed,
        None => {}
    }
    match e.kind() {
        K::OutOfMemory => ReadError::Oversized,
        K::UnexpectedEof
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::TimedOut
        | K::NotConnected => ReadError::Transport,
        _ => ReadError::Malformed,
    }
}
