//! Supplier side of replication: one task per enabled agreement pushes the
//! changes its consumer lacks, and a supervisor keeps the set of tasks in
//! step with the agreement entries in cn=config.
//!
//! A session: connect, bind as the agreement's identity, START (suffix,
//! replica ID, generation) which answers with the consumer's RUV, then
//! stream batches of changelog records (up to 500 per request) the consumer
//! lacks; each answer is the consumer's new RUV, so a lost connection
//! resumes exactly where the consumer stands. A consumer with another
//! generation needs a total init (nsds5BeginReplicaRefresh: start), which
//! sends every entry of the suffix in pages and then the RUV, all read from
//! one snapshot (directory/init_snapshot.rs).

use crate::config::{ReplicationConfig, TlsConfig};
use crate::directory::repl::{AgreementConfig, BindMethod, Transport};
use crate::directory::{DirError, Directory};
use crate::model::{ChangeRecord, Dn, Entry};
use crate::repl::core::catchup;
use crate::repl::core::ruv::Ruv;
use crate::repl::core::wire::{self, ChangesRequest, StartRequest, TotalEndRequest};
use crate::repl::session::client::{Client, ClientError, TlsSettings};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Extended operation run by `ferrodir repl test`: the server tests an
/// agreement's connection with the credentials only it can decrypt.
pub use crate::model::oid::REPL_TEST_AGREEMENT as OID_TEST_AGREEMENT;

/// Changes per CHANGES request.
const BATCH: usize = 500;
/// Entries per page of a total init (a page larger than
/// MAX_REQUEST_BYTES goes as several requests).
const INIT_PAGE: usize = 1000;
/// Pages the init reader prepares ahead of the one in flight.
const INIT_PAGES_AHEAD: usize = 4;
/// A CHANGES or TOTAL_ENTRIES request larger than this is split (the
/// consumer's default message limit is 16 MiB).
const MAX_REQUEST_BYTES: usize = 8 << 20;
/// entryUUIDs per catch-up present-list request (16 bytes each).
const PRESENT_CHUNK: usize = 50_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a supplier waits before retrying a consumer that needs an init.
const NEEDS_INIT_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum SessionError {
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
}

impl SessionError {
    /// 389-ds style status line: "Error (code) message".
    fn status(&self) -> String {
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

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn describe_transport(t: Transport) -> &'static str {
    match t {
        Transport::Ldap => "LDAP (no TLS)",
        Transport::Ldaps => "LDAPS (TLS from the first byte)",
        Transport::StartTls => "LDAP with StartTLS",
    }
}

/// Trust and client identity for TLS agreements, set once at start.
static TLS_SETTINGS: RwLock<Option<TlsSettings>> = RwLock::new(None);

/// Which files agreements use for TLS: the CA bundle is `[replication]
/// ca_file`, else `[tls] ca_file`, else the instance CA
/// `<data_dir>/tls/ca.pem`; the client certificate (SSLCLIENTAUTH) is
/// `[replication] client_cert_file`/`client_key_file`, else `[tls]
/// cert_file`/`key_file`, else the generated `<data_dir>/tls/server.pem`
/// and `server.key`.
pub fn resolve_tls_settings(
    repl: &ReplicationConfig,
    tls: &TlsConfig,
    data_dir: &Path,
) -> Result<TlsSettings, String> {
    // The instance PKI's file names (server/tls.rs; not imported: server
    // sits above repl).
    let tls_dir = data_dir.join("tls");
    let ca_file = repl
        .ca_file
        .clone()
        .or_else(|| tls.ca_file.clone())
        .unwrap_or_else(|| tls_dir.join("ca.pem"));
    let client_cert = match (&repl.client_cert_file, &repl.client_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => match (&tls.cert_file, &tls.key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => (tls_dir.join("server.pem"), tls_dir.join("server.key")),
        },
        _ => return Err(
            "[replication] client_cert_file and client_key_file go together: give both or neither"
                .into(),
        ),
    };
    Ok(TlsSettings {
        ca_file: Some(ca_file),
        client_cert: Some(client_cert),
    })
}

/// Sets the TLS settings every agreement (and `ferrodir repl test`) uses.
pub fn set_tls_settings(settings: TlsSettings) {
    if let Ok(mut g) = TLS_SETTINGS.write() {
        *g = Some(settings);
    }
}

fn tls_settings() -> TlsSettings {
    TLS_SETTINGS
        .read()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_default()
}

fn bind_method_name(m: BindMethod) -> &'static str {
    match m {
        BindMethod::Simple => "SIMPLE",
        BindMethod::SslClientAuth => "SSLCLIENTAUTH (SASL EXTERNAL)",
    }
}

/// Short name of an agreement for logs: its cn, else its DN.
fn name_of(a: &AgreementConfig) -> String {
    a.dn.rdn()
        .and_then(|r| r.avas.first())
        .map(|ava| String::from_utf8_lossy(&ava.value).to_string())
        .unwrap_or_else(|| a.dn.to_string())
}

/// Settings that need a new session when they change (a refresh request does not).
fn settings(a: &AgreementConfig) -> AgreementConfig {
    AgreementConfig {
        refresh_requested: false,
        ..a.clone()
    }
}

/// Starts the supervisor: one task per enabled agreement, started, stopped
/// and restarted as agreement entries are added, disabled, removed or changed.
pub fn spawn_runner(dir: Arc<Directory>, local_url: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut rx = dir.subscribe();
        let mut running: HashMap<String, (AgreementConfig, JoinHandle<()>)> = HashMap::new();
        loop {
            rx.borrow_and_update();
            let wanted: HashMap<String, AgreementConfig> = dir
                .agreements()
                .into_iter()
                .map(|a| (dir.normalize_dn(&a.dn), a))
                .collect();
            running.retain(|key, (cfg, handle)| {
                let keep = wanted
                    .get(key)
                    .is_some_and(|w| w.enabled && settings(w) == settings(cfg))
                    && !handle.is_finished();
                if !keep {
                    tracing::info!("agreement {}: stopping its session", name_of(cfg));
                    handle.abort();
                    dir.update_agreement_status(&cfg.dn, |s| s.update_in_progress = false);
                }
                keep
            });
            for (key, cfg) in wanted {
                if running.contains_key(&key) {
                    continue;
                }
                if !cfg.enabled {
                    dir.update_agreement_status(&cfg.dn, |s| {
                        s.last_update_status =
                            "Error (0) agreement disabled (nsds5ReplicaEnabled: off)".into();
                        s.update_in_progress = false;
                    });
                    continue;
                }
                let handle =
                    tokio::spawn(run_agreement(dir.clone(), cfg.clone(), local_url.clone()));
                running.insert(key, (cfg, handle));
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        for (_, (_, h)) in running {
            h.abort();
        }
    })
}

/// The agreement's current settings (None when it was removed).
fn current(dir: &Directory, dn: &Dn) -> Option<AgreementConfig> {
    let norm = dir.normalize_dn(dn);
    dir.agreements()
        .into_iter()
        .find(|a| dir.normalize_dn(&a.dn) == norm)
}

fn refresh_requested(dir: &Directory, dn: &Dn) -> bool {
    current(dir, dn).is_some_and(|a| a.refresh_requested)
}

/// This server's replica ID for a suffix.
fn local_rid(dir: &Directory, suffix: &Dn) -> Result<u16, SessionError> {
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

async fn run_agreement(dir: Arc<Directory>, cfg: AgreementConfig, local_url: String) {
    let name = name_of(&cfg);
    let trust = match (cfg.transport, tls_settings().ca_file) {
        (Transport::Ldap, _) => String::new(),
        (_, Some(ca)) => format!(", consumer certificate verified against {}", ca.display()),
        (_, None) => ", no CA bundle configured".into(),
    };
    tracing::info!(
        "agreement {name}: {} to {}:{} for '{}', bind {}{trust}",
        describe_transport(cfg.transport),
        cfg.host,
        cfg.port,
        cfg.suffix,
        bind_method_name(cfg.bind_method)
    );
    let mut backoff = Duration::from_secs(1);
    let mut logged_security = String::new();
    loop {
        let mut progressed = false;
        let err = session(
            &dir,
            &cfg,
            &local_url,
            &mut progressed,
            &mut logged_security,
        )
        .await;
        if progressed {
            backoff = Duration::from_secs(1);
        }
        let status = err.status();
        dir.update_agreement_status(&cfg.dn, |s| {
            s.update_in_progress = false;
            s.last_update_end = Some(now());
            s.last_update_status = status.clone();
        });
        match err {
            SessionError::NeedsInit(_) => {
                tracing::warn!("agreement {name}: {err}");
                wait_for_init(&dir, &cfg).await;
            }
            _ => {
                tracing::warn!(
                    "agreement {name}: {err}; retrying in {} s",
                    backoff.as_secs()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Waits until an init is requested, this replica's generation changes (it
/// was initialised itself), or the slow retry period passes.
async fn wait_for_init(dir: &Directory, cfg: &AgreementConfig) {
    let generation = dir.ruv(&cfg.suffix).map(|r| r.generation).ok();
    let mut rx = dir.subscribe();
    let deadline = tokio::time::Instant::now() + NEEDS_INIT_RETRY;
    loop {
        if refresh_requested(dir, &cfg.dn)
            || dir.ruv(&cfg.suffix).map(|r| r.generation).ok() != generation
        {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => return,
        }
    }
}

/// Connects (TLS as configured, the consumer's certificate verified) and
/// binds: SIMPLE with the agreement's credentials, or SSLCLIENTAUTH with
/// this server's client certificate and SASL EXTERNAL.
async fn connect(cfg: &AgreementConfig) -> Result<Client, SessionError> {
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

async fn start(client: &mut Client, req: &StartRequest) -> Result<Ruv, SessionError> {
    match client
        .extended("replication start", wire::OID_START, req.encode())
        .await
    {
        Ok(v) => wire::decode_ruv_response(&v).map_err(|e| SessionError::Answer(e.to_string())),
        Err(e)
            if e.message()
                .is_some_and(|m| m.contains("generation mismatch")) =>
        {
            Err(SessionError::NeedsInit(
                e.message().unwrap_or_default().to_string(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// One connection's life: returns only with the error that ended it.
async fn session(
    dir: &Arc<Directory>,
    cfg: &AgreementConfig,
    local_url: &str,
    progressed: &mut bool,
    logged_security: &mut String,
) -> SessionError {
    match session_inner(dir, cfg, local_url, progressed, logged_security).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn session_inner(
    dir: &Arc<Directory>,
    cfg: &AgreementConfig,
    local_url: &str,
    progressed: &mut bool,
    logged_security: &mut String,
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
    let mut rx = dir.subscribe();
    loop {
        if refresh_requested(dir, &cfg.dn) {
            total_init(dir, cfg, &mut client, rid, local_url).await?;
            *progressed = true;
            continue;
        }
        let generation = dir.ruv(&cfg.suffix)?.generation;
        let mut consumer = start(
            &mut client,
            &StartRequest {
                suffix: suffix.clone(),
                supplier_rid: rid,
                generation: generation.clone(),
                total: false,
                supplier_url: local_url.to_string(),
            },
        )
        .await?;
        *progressed = true;
        let started = now();
        dir.update_agreement_status(&cfg.dn, |s| {
            s.consumer_ruv = Some(consumer.clone());
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
            let n = batch.len() as u64;
            let t0 = now();
            dir.update_agreement_status(&cfg.dn, |s| {
                s.update_in_progress = true;
                s.behind = n;
                s.last_update_start = Some(t0);
            });
            consumer = send_changes(&mut client, &suffix, batch).await?;
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

/// Brings a consumer that lacks changes the changelog no longer holds up to
/// date from entry state (DESIGN.md §5), without a total init.
async fn catch_up(
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
    send_catch_up_entries(client, &suffix, &supplier_ruv, snapshot.tombstones).await?;
    send_present(client, &suffix, &supplier_ruv, &ranges).await?;
    send_catch_up_entries(client, &suffix, &supplier_ruv, snapshot.entries).await?;
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

async fn send_catch_up_entries(
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

async fn send_present(
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

/// Sends a batch, split when its encoding is too large for one request.
async fn send_changes(
    client: &mut Client,
    suffix: &str,
    records: Vec<ChangeRecord>,
) -> Result<Ruv, SessionError> {
    let mut pending = vec![records];
    let mut last = None;
    while let Some(mut records) = pending.pop() {
        let req = ChangesRequest {
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
        last = Some(
            wire::decode_ruv_response(&answer).map_err(|e| SessionError::Answer(e.to_string()))?,
        );
    }
    last.ok_or_else(|| SessionError::Answer("no changes were sent".into()))
}

/// Seconds between the newest change held here and the consumer's newest
/// (0 when the consumer holds everything).
fn lag_seconds(supplier: &Ruv, consumer: &Ruv) -> u64 {
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

async fn total_init(
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
struct InitTimes {
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
async fn total_init_inner(
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
    let mut snapshot = dir
        .init_snapshot(&cfg.suffix, INIT_PAGE, INIT_PAGES_AHEAD, move |entries| {
            wire::TotalEntriesRequest::encode_split(&page_suffix, &entries, MAX_REQUEST_BYTES)
        })
        .await?;
    let total = snapshot.head.total;
    dir.update_agreement_status(&cfg.dn, |s| s.init_progress = Some((0, total)));
    tracing::info!("agreement {name}: total init of {total} entries started");
    start(
        client,
        &StartRequest {
            suffix: suffix.clone(),
            supplier_rid: rid,
            generation: snapshot.head.ruv.generation.clone(),
            total: true,
            supplier_url: local_url.to_string(),
        },
    )
    .await?;
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
        for payload in page.prepared {
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
    let reader = snapshot.finish().await;
    let end = TotalEndRequest { suffix, ruv };
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

pub fn percent(done: u64, total: u64) -> u64 {
    done.saturating_mul(100)
        .checked_div(total)
        .map_or(100, |p| p.min(100))
}

/// Tries an agreement's consumer as the Test button of other products does:
/// TCP connect, TLS, bind with the agreement's credentials, and a
/// replication START (which checks the consumer's replica entry and
/// nsDS5ReplicaBindDN). "Pass" or "Fail: <reason>".
/// The "test agreement" extended operation's implementation (ops::Shared).
pub struct AgreementTest;

impl crate::ops::AgreementTester for AgreementTest {
    fn test<'a>(
        &'a self,
        dir: &'a Directory,
        agreement: &'a AgreementConfig,
    ) -> futures::future::BoxFuture<'a, String> {
        Box::pin(test_agreement(dir, agreement))
    }
}

pub async fn test_agreement(dir: &Directory, cfg: &AgreementConfig) -> String {
    let rid = match local_rid(dir, &cfg.suffix) {
        Ok(r) => r,
        Err(e) => return format!("Fail: {e}"),
    };
    let mut client = match connect(cfg).await {
        Ok(c) => c,
        Err(e) => return format!("Fail: {e}"),
    };
    client.set_op_timeout(Duration::from_secs(20));
    let generation = dir
        .ruv(&cfg.suffix)
        .map(|r| r.generation)
        .unwrap_or_default();
    let req = StartRequest {
        suffix: cfg.suffix.to_string(),
        supplier_rid: rid,
        generation,
        total: false,
        supplier_url: String::new(),
    };
    let verdict = match start(&mut client, &req).await {
        Ok(_) => "Pass".to_string(),
        Err(SessionError::NeedsInit(_)) => {
            "Pass (the consumer needs a total init: set nsds5BeginReplicaRefresh: start)".into()
        }
        Err(e) => format!("Fail: {e}"),
    };
    client.unbind().await;
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Csn;

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
