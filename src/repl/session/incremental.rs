//! An incremental session: connect, bind as the agreement's identity, START
//! (suffix, replica ID, generation) which answers with the consumer's RUV,
//! then stream batches of changelog records (up to 5,000 per request) the
//! consumer lacks; each answer is the consumer's new RUV, so a lost
//! connection resumes exactly where the consumer stands. A consumer with
//! another generation needs a total init (nsds5BeginReplicaRefresh: start).

use super::agreement::*;
use super::catchup::*;
use super::client::{Client, ClientError};
use super::schema::push_schema;
use super::total::*;
use crate::directory::repl::{AgreementConfig, BindMethod, Transport};
use crate::directory::{DirError, Directory};
use crate::model::{ChangeRecord, Dn};
use crate::repl::core::fractional::Fractional;
use crate::repl::core::ruv::Ruv;
use crate::repl::core::wire::{self, ChangesRequest, ConsumerAnswer, StartRequest};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Dir(#[from] DirError),
    #[error("consumer needs total init: {0}")]
    NeedsInit(String),
    #[error("{0}")]
    Config(String),
    #[error("malformed answer from the consumer: {0}")]
    Answer(String),
    /// The agreement was disabled, removed or changed: this session's
    /// settings are no longer the agreement's.
    #[error("the agreement was disabled or changed")]
    Stopped,
}

impl SessionError {
    /// 389-ds style status line: "Error (code) message".
    pub(super) fn status(&self) -> String {
        match self {
            SessionError::Client(c) => match c.code() {
                Some(code) => format!("Error ({code}) {c}"),
                None => format!("Error (-1) {c}"),
            },
            SessionError::NeedsInit(m) => {
                format!("Error (53) consumer needs total init (set nsds5BeginReplicaRefresh: start): {m}")
            }
            other => format!("Error (-1) {other}"),
        }
    }
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn describe_transport(t: Transport) -> &'static str {
    match t {
        Transport::Ldap => "LDAP (no TLS)",
        Transport::Ldaps => "LDAPS (TLS from the first byte)",
        Transport::StartTls => "LDAP with StartTLS",
    }
}

/// This server's replica ID for a suffix.
pub(super) fn local_rid(dir: &Directory, suffix: &Dn) -> Result<u16, SessionError> {
    let norm = dir.normalize_dn(suffix);
    dir.replicas()
        .into_iter()
        .find(|r| dir.normalize_dn(&r.suffix) == norm)
        .map(|r| r.rid)
        .ok_or_else(|| {
            SessionError::Config(format!(
                "no replica entry for '{suffix}' on this server (add cn=replica,{})",
                crate::directory::repl::mapping_node(suffix)
            ))
        })
}

/// Connects (TLS as configured, the consumer's certificate verified) and
/// binds: SIMPLE with the agreement's credentials, or SSLCLIENTAUTH with
/// this server's client certificate and SASL EXTERNAL.
pub(super) async fn connect(cfg: &AgreementConfig) -> Result<Client, SessionError> {
    let mut tls = tls_settings();
    match cfg.bind_method {
        BindMethod::Simple => tls.client_cert = None,
        BindMethod::SslClientAuth => {
            if cfg.transport == Transport::Ldap {
                return Err(SessionError::Config(
                    "nsDS5ReplicaBindMethod SSLCLIENTAUTH needs nsDS5ReplicaTransportInfo LDAPS or StartTLS (a client certificate is only sent over TLS)".into(),
                ));
            }
            if tls.client_cert.is_none() {
                return Err(SessionError::Config(
                    "SSLCLIENTAUTH: no client certificate configured ([replication] client_cert_file)".into(),
                ));
            }
        }
    }
    let mut client =
        Client::connect(&cfg.host, cfg.port, cfg.transport, &tls, CONNECT_TIMEOUT).await?;
    if let Some(secs) = cfg.timeout {
        client.set_op_timeout(Duration::from_secs(secs));
    }
    match cfg.bind_method {
        BindMethod::Simple => {
            let password = std::str::from_utf8(&cfg.credentials).map_err(|_| {
                SessionError::Config("nsDS5ReplicaCredentials is not UTF-8 text".into())
            })?;
            client.simple_bind(&cfg.bind_dn, password).await?;
        }
        BindMethod::SslClientAuth => client.external_bind().await?,
    }
    Ok(client)
}

/// Starts a session in the newest protocol version the consumer speaks:
/// version 2 first, version 1 when the consumer refuses it (an older
/// release). Returns the consumer's answer and the version spoken.
pub(super) async fn start(
    client: &mut Client,
    req: &StartRequest,
) -> Result<(ConsumerAnswer, u8), SessionError> {
    let mut req = req.clone();
    loop {
        match client
            .extended("replication start", wire::OID_START, req.encode())
            .await
        {
            Ok(v) => {
                let answer =
                    wire::decode_answer(&v).map_err(|e| SessionError::Answer(e.to_string()))?;
                return Ok((answer, req.version));
            }
            Err(e)
                if e.message()
                    .is_some_and(|m| m.contains("generation mismatch")) =>
            {
                return Err(SessionError::NeedsInit(
                    e.message().unwrap_or_default().to_string(),
                ))
            }
            Err(e)
                if req.version > wire::PROTOCOL_V1
                    && e.code() == Some(2)
                    && e.message()
                        .is_some_and(|m| m.contains("malformed replication start")) =>
            {
                // An older consumer: speak its version.
                req.version = wire::PROTOCOL_V1;
                req.retired.clear();
                req.with_states = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Records what a consumer's answer says: its RUV, the retired replica IDs
/// it has finished with, and retirements this server did not know yet.
pub(super) async fn note_answer(
    dir: &Directory,
    cfg: &AgreementConfig,
    answer: &ConsumerAnswer,
) -> Result<(), SessionError> {
    let (ruv, finished) = (answer.ruv.clone(), answer.finished.clone());
    dir.update_agreement_status(&cfg.dn, |s| {
        s.consumer_ruv = Some(ruv);
        if finished.is_some() {
            s.consumer_finished = finished;
        }
    });
    dir.merge_retired(&cfg.suffix, &answer.retired).await?;
    Ok(())
}

/// One connection's life: returns only with the error that ended it.
pub(super) async fn session(
    dir: &Arc<Directory>,
    cfg: &AgreementConfig,
    local_url: &str,
    progressed: &mut bool,
    logged_security: &mut String,
    failures: &mut u32,
) -> SessionError {
    match session_inner(dir, cfg, local_url, progressed, logged_security, failures).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

pub(super) async fn session_inner(
    dir: &Arc<Directory>,
    cfg: &AgreementConfig,
    local_url: &str,
    progressed: &mut bool,
    logged_security: &mut String,
    failures: &mut u32,
) -> Result<std::convert::Infallible, SessionError> {
    let rid = local_rid(dir, &cfg.suffix)?;
    let mut client = connect(cfg).await?;
    let security = client.security(cfg.transport);
    if *logged_security != security {
        tracing::info!(
            "agreement {}: connected to {} over {security}, bound with {}",
            name_of(cfg),
            client.addr(),
            bind_method_name(cfg.bind_method)
        );
        *logged_security = security;
    }
    let suffix = cfg.suffix.to_string();
    let mut settings_seen = None;
    let mut rx = dir.subscribe();
    let mut pause = SessionPause::default();
    // Schema first: the entries that follow may use it.
    let mut schema_mark = push_schema(dir, cfg, &mut client).await?;
    loop {
        if super::schema::schema_mark(dir) != schema_mark {
            schema_mark = push_schema(dir, cfg, &mut client).await?;
        }
        if refresh_requested(dir, &cfg.dn) {
            total_init(dir, cfg, &mut client, rid, local_url).await?;
            *progressed = true;
            continue;
        }
        let generation = dir.ruv(&cfg.suffix)?.generation;
        let sent_retired = dir.retired(&cfg.suffix)?.shared();
        let (answer, version) = start(
            &mut client,
            &StartRequest {
                version: wire::PROTOCOL_VERSION,
                suffix: suffix.clone(),
                supplier_rid: rid,
                generation: generation.clone(),
                total: false,
                supplier_url: local_url.to_string(),
                retired: sent_retired.clone(),
                with_states: false,
            },
        )
        .await?;
        note_answer(dir, cfg, &answer).await?;
        let mut consumer = answer.ruv;
        *progressed = true;
        if *failures > 0 {
            tracing::info!(
                "agreement {}: reconnected to {} after {} attempt(s)",
                name_of(cfg),
                client.addr(),
                *failures
            );
            *failures = 0;
        }
        let started = now();
        dir.update_agreement_status(&cfg.dn, |s| {
            s.last_update_start = Some(started);
            s.last_update_status =
                "Error (0) Replica acquired successfully: Incremental update started".into();
        });
        loop {
            rx.borrow_and_update();
            if refresh_requested(dir, &cfg.dn) {
                break;
            }
            let supplier = dir.ruv(&cfg.suffix)?;
            if supplier.generation != generation {
                // This replica was re-initialised meanwhile: start over.
                break;
            }
            if version >= 2 && dir.retired(&cfg.suffix)?.shared() != sent_retired {
                // A replica ID was retired meanwhile: a new start carries it.
                break;
            }
            if !cfg.schedule.allows(now()) {
                wait_for_window(dir, cfg).await;
                continue;
            }
            if super::schema::schema_mark(dir) != schema_mark {
                schema_mark = push_schema(dir, cfg, &mut client).await?;
            }
            let (d, s, c) = (dir.clone(), cfg.suffix.clone(), consumer.clone());
            let batch = tokio::task::spawn_blocking(move || d.changes_for(&s, &c, BATCH))
                .await
                .map_err(|e| SessionError::Config(format!("changelog reader failed: {e}")))??;
            let Some(batch) = batch else {
                consumer = catch_up(dir, cfg, &mut client, &consumer).await?;
                dir.update_agreement_status(&cfg.dn, |s| s.consumer_ruv = Some(consumer.clone()));
                continue;
            };
            if batch.is_empty() {
                pause.idle();
                let lag = lag_seconds(&supplier, &consumer);
                dir.update_agreement_status(&cfg.dn, |s| {
                    s.update_in_progress = false;
                    s.behind = 0;
                    s.lag_seconds = Some(lag);
                    s.last_update_status =
                        "Error (0) Replica acquired successfully: Incremental update succeeded"
                            .into();
                });
                tokio::select! {
                    r = rx.changed() => { if r.is_err() { return Err(SessionError::Config("the directory is shutting down".into())); } }
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            pause.before_sending(cfg.session_pause).await;
            // The batch may hold changes made after the agreement was
            // disabled or changed (the runner stops this task only when it
            // gets to run): they are not sent under the old settings.
            if !still_wanted(dir, cfg, &mut settings_seen) {
                return Err(SessionError::Stopped);
            }
            let n = batch.len() as u64;
            let t0 = now();
            dir.update_agreement_status(&cfg.dn, |s| {
                s.update_in_progress = true;
                s.behind = n;
                s.last_update_start = Some(t0);
            });
            let answer =
                send_changes(&mut client, version, &suffix, &cfg.fractional, batch).await?;
            note_answer(dir, cfg, &answer).await?;
            consumer = answer.ruv;
            let lag = lag_seconds(&dir.ruv(&cfg.suffix)?, &consumer);
            let t1 = now();
            dir.update_agreement_status(&cfg.dn, |s| {
                s.consumer_ruv = Some(consumer.clone());
                s.changes_sent += n;
                s.last_update_end = Some(t1);
                s.lag_seconds = Some(lag);
                s.last_update_status = format!(
                    "Error (0) Replica acquired successfully: Incremental update succeeded ({n} changes sent)"
                );
            });
        }
    }
}

/// Sends a batch, split when its encoding is too large for one request.
/// Attributes the agreement keeps from its consumer are stripped first; a
/// change that touched only those still goes, empty, so the consumer's RUV
/// covers it.
pub(super) async fn send_changes(
    client: &mut Client,
    version: u8,
    suffix: &str,
    fractional: &Fractional,
    records: Vec<ChangeRecord>,
) -> Result<ConsumerAnswer, SessionError> {
    let records = records
        .into_iter()
        .map(|r| fractional.strip_change(r))
        .collect();
    let mut pending = vec![records];
    let mut last = None;
    while let Some(mut records) = pending.pop() {
        let req = ChangesRequest {
            version,
            suffix: suffix.to_string(),
            records,
        };
        let payload = req.encode();
        records = req.records;
        if payload.len() > MAX_REQUEST_BYTES && records.len() > 1 {
            let second = records.split_off(records.len() / 2);
            pending.push(second);
            pending.push(records);
            continue;
        }
        let answer = client
            .extended("replicate changes", wire::OID_CHANGES, payload)
            .await?;
        last = Some(wire::decode_answer(&answer).map_err(|e| SessionError::Answer(e.to_string()))?);
    }
    last.ok_or_else(|| SessionError::Answer("no changes were sent".into()))
}

/// nsds5ReplicaSessionPauseTime: an update session is a run of batches
/// until the consumer is caught up; the next one starts no sooner than the
/// pause after it.
#[derive(Debug, Default)]
pub(super) struct SessionPause {
    sending: bool,
    ended: Option<tokio::time::Instant>,
}

impl SessionPause {
    pub(super) fn idle(&mut self) {
        if self.sending {
            self.sending = false;
            self.ended = Some(tokio::time::Instant::now());
        }
    }

    pub(super) async fn before_sending(&mut self, pause: Option<u64>) {
        if !self.sending {
            if let (Some(secs), Some(ended)) = (pause, self.ended) {
                tokio::time::sleep_until(ended + Duration::from_secs(secs)).await;
            }
        }
        self.sending = true;
    }
}

/// Outside every nsDS5ReplicaUpdateSchedule window: says so in the status
/// and waits a little (the caller looks again, so a refresh request or a
/// new schedule is seen within seconds).
pub(super) async fn wait_for_window(dir: &Directory, cfg: &AgreementConfig) {
    let t = now();
    let next = match cfg.schedule.wait_secs(t) {
        Some(secs) => format!("the next window opens in {secs} s"),
        None => "no window in the coming week".to_string(),
    };
    dir.update_agreement_status(&cfg.dn, |s| {
        s.update_in_progress = false;
        s.last_update_status = format!(
            "Error (0) Replication session not started: outside the update window (nsDS5ReplicaUpdateSchedule, UTC); {next}"
        );
    });
    let wait = cfg.schedule.wait_secs(t).unwrap_or(5).clamp(1, 5);
    tokio::time::sleep(Duration::from_secs(wait)).await;
}

/// Seconds between the newest change held here and the consumer's newest
/// (0 when the consumer holds everything).
pub(super) fn lag_seconds(supplier: &Ruv, consumer: &Ruv) -> u64 {
    if !consumer.is_behind(supplier) {
        return 0;
    }
    u64::from(
        supplier
            .max_csn()
            .time
            .saturating_sub(consumer.max_csn().time),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Csn;
    use crate::repl::core::ruv::Ruv;
    use crate::repl::session::client::ClientError;
    use crate::repl::session::total::percent;

    #[test]
    fn lag_and_percent() {
        let mut sup = Ruv::new("g");
        sup.update(Csn::new(100, 0, 1, 0));
        let mut con = Ruv::new("g");
        con.update(Csn::new(90, 0, 1, 0));
        assert_eq!(lag_seconds(&sup, &con), 10);
        con.update(Csn::new(100, 0, 1, 0));
        assert_eq!(lag_seconds(&sup, &con), 0);
        assert_eq!(percent(5, 10), 50);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(20, 10), 100);
    }

    /// A consumer of the first release: it refuses any start payload that
    /// is not version 1, as `StartRequest::decode` did then.
    async fn first_release_consumer(listener: tokio::net::TcpListener) -> Vec<u8> {
        use futures::{SinkExt, StreamExt};
        use ldap3_proto::proto::{
            LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode,
        };
        let (sock, _) = listener.accept().await.unwrap();
        let mut framed = tokio_util::codec::Framed::new(sock, ldap3_proto::LdapCodec::default());
        let mut versions = Vec::new();
        while let Some(Ok(msg)) = framed.next().await {
            let LdapOp::ExtendedRequest(req) = msg.op else {
                continue;
            };
            let version = req
                .value
                .as_ref()
                .and_then(|v| v.first().copied())
                .unwrap_or(0);
            versions.push(version);
            let (code, message, value) = if version == 1 {
                let mut ruv = Ruv::new("g");
                ruv.update(Csn::new(9, 0, 2, 0));
                (
                    LdapResultCode::Success,
                    String::new(),
                    Some(wire::encode_ruv_response(&ruv)),
                )
            } else {
                (
                    LdapResultCode::ProtocolError,
                    "malformed replication start request".to_string(),
                    None,
                )
            };
            let res = LdapResult {
                code,
                matcheddn: String::new(),
                message,
                referral: vec![],
            };
            let reply = LdapMsg {
                msgid: msg.msgid,
                op: LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res,
                    name: None,
                    value,
                }),
                ctrl: vec![],
            };
            framed.send(reply).await.unwrap();
            if version == 1 {
                break;
            }
        }
        versions
    }

    #[tokio::test]
    async fn a_first_release_consumer_is_spoken_to_in_version_1() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let consumer = tokio::spawn(first_release_consumer(listener));
        let mut client =
            Client::connect_url(&format!("ldap://127.0.0.1:{port}"), Duration::from_secs(5))
                .await
                .unwrap();
        let req = StartRequest {
            version: wire::PROTOCOL_VERSION,
            suffix: "dc=x".into(),
            supplier_rid: 1,
            generation: "g".into(),
            total: false,
            supplier_url: String::new(),
            retired: vec![(3, Csn::new(1, 0, 3, 0))],
            with_states: false,
        };
        let (answer, version) = start(&mut client, &req).await.unwrap();
        assert_eq!(version, wire::PROTOCOL_V1);
        assert_eq!(answer.ruv.max_for(2), Some(Csn::new(9, 0, 2, 0)));
        assert_eq!(answer.finished, None);
        assert_eq!(consumer.await.unwrap(), vec![2, 1]);
    }

    #[test]
    fn error_status_lines_look_like_389() {
        let e = SessionError::Client(ClientError::Connect {
            addr: "h:1".into(),
            reason: "refused".into(),
        });
        assert_eq!(e.status(), "Error (-1) connect to h:1: refused");
        let e = SessionError::NeedsInit("x".into());
        assert!(e
            .status()
            .starts_with("Error (53) consumer needs total init"));
    }
}
