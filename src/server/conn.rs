//! One client connection: framing, idle timeouts, bind state, pipelined
//! operations with abandon, and the access log.

use super::ServerState;
use crate::directory::Identity;
use crate::ops::{self, filter_text, result, Outcome};
use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::{LdapExtendedResponse, LdapMsg, LdapOp, LdapResultCode};
use ldap3_proto::LdapCodec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

const OID_NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

type Outstanding = Arc<Mutex<HashMap<i32, Arc<AtomicBool>>>>;

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
    match &m.op {
        LdapOp::BindRequest(b) => format!(
            "dn=\"{}\" method={}",
            b.dn,
            match b.cred {
                ldap3_proto::proto::LdapBindCred::Simple(_) => "simple",
                ldap3_proto::proto::LdapBindCred::SASL(_) => "sasl",
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

fn log_access(conn: u64, msgid: i32, kind: &str, what: &str, outcome: Outcome, started: Instant) {
    tracing::info!(
        target: "ferrodir::access",
        "conn={} msgid={} {} {} result={} entries={} etime={:.6}",
        conn,
        msgid,
        kind,
        what,
        outcome.code,
        outcome.entries,
        started.elapsed().as_secs_f64()
    );
}

pub(super) async fn handle(stream: TcpStream, conn_id: u64, state: Arc<ServerState>) {
    let limits = state.limits.clone();
    let (rd, wr) = stream.into_split();
    let mut reader = FramedRead::new(
        rd,
        super::framing::GuardedCodec::new(limits.max_message_size),
    );
    let mut writer = FramedWrite::new(wr, LdapCodec::new(Some(usize::MAX / 4), None));
    let (tx, mut rx) = mpsc::channel::<LdapMsg>(256);
    let write_task = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            // Flush only when no more responses are queued: fewer syscalls under pipelining.
            let r = if rx.is_empty() {
                writer.send(m).await
            } else {
                writer.feed(m).await
            };
            if let Err(e) = r {
                tracing::debug!(conn = conn_id, "write failed: {e}");
                break;
            }
        }
        let _ = writer.flush().await;
    });

    let outstanding: Outstanding = Arc::new(Mutex::new(HashMap::new()));
    let mut identity = Identity::anonymous();
    loop {
        let idle = if identity.is_anonymous() {
            limits.anonymous_idle_timeout
        } else {
            limits.idle_timeout
        };
        let next = tokio::time::timeout(Duration::from_secs(idle.max(1)), reader.next()).await;
        let request = match next {
            Err(_) => {
                tracing::info!(conn = conn_id, "closing idle connection after {idle} s");
                let _ = tx
                    .send(notice(LdapResultCode::Unavailable, "idle timeout"))
                    .await;
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::warn!(
                    conn = conn_id,
                    "malformed LDAP message, closing connection: {e}"
                );
                // Requests received before the bad bytes still get their answers.
                drain_outstanding(&outstanding, Duration::from_secs(5)).await;
                let _ = tx
                    .send(notice(
                        LdapResultCode::ProtocolError,
                        "malformed LDAP message",
                    ))
                    .await;
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        let started = Instant::now();
        match request.op {
            LdapOp::UnbindRequest => {
                log_access(
                    conn_id,
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
                    conn_id,
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
                let (new_identity, res) = ops::bind::run(&state.shared, req).await;
                identity = new_identity.unwrap_or_default();
                let outcome = Outcome::of(&res);
                let resp = ops::bind_response(res);
                let _ = tx.send(ops::msg(msgid, resp)).await;
                log_access(conn_id, msgid, "BIND", &what, outcome, started);
            }
            _ => {
                let msgid = request.msgid;
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
                        let _ = tx.send(ops::msg(msgid, op)).await;
                    }
                    log_access(
                        conn_id,
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
                tokio::spawn(async move {
                    let outcome = ops::dispatch(shared, who, request, sink, flag).await;
                    if let Ok(mut m) = map.lock() {
                        m.remove(&msgid);
                    }
                    log_access(conn_id, msgid, kind, &what, outcome, started);
                });
            }
        }
    }
    // Stop whatever is still running for this client.
    if let Ok(map) = outstanding.lock() {
        for flag in map.values() {
            flag.store(true, Ordering::Relaxed);
        }
    }
    drop(tx);
    let _ = write_task.await;
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
