//! RFC 4533 consumer sessions: one task per `cn=<name>,cn=syncrepl,cn=config`
//! entry follows an OpenLDAP (syncprov) provider. A session connects
//! (LDAP, LDAPS or StartTLS), binds, sends a search with the Sync Request
//! control and the saved cookie, and hands what comes back to the
//! directory (`directory/repl/syncrepl.rs`) in batches, each with the
//! cookie that covers it. refreshOnly polls every `interval`;
//! refreshAndPersist keeps the search open and reconnects per `retry`.

use super::client::{Client, ClientError, TlsSettings};
use crate::directory::repl::syncrepl::{SyncChange, SyncConsumer};
use crate::directory::repl::Transport;
use crate::directory::Directory;
use crate::model::Dn;
use crate::repl::core::syncrepl_config::{StartTls, SyncMode, SyncScope};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapDerefAliases, LdapIntermediateResponse, LdapOp, LdapResultCode, LdapSearchRequest,
    LdapSearchScope, SyncRequestMode, SyncStateValue,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Changes sent to the writer together during a refresh.
const BATCH: usize = 200;
/// e-syncRefreshRequired (RFC 4533 §2.6).
const REFRESH_REQUIRED: i32 = 4096;

/// Starts the supervisor: one task per consumer entry, restarted when the
/// entry changes and stopped when it goes.
pub fn spawn_consumers(dir: Arc<Directory>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut rx = dir.subscribe();
        let mut running: HashMap<String, (SyncConsumer, JoinHandle<()>)> = HashMap::new();
        loop {
            rx.borrow_and_update();
            let wanted: HashMap<String, SyncConsumer> = dir
                .sync_consumers()
                .into_iter()
                .map(|c| (dir.normalize_dn(&c.dn), c))
                .collect();
            running.retain(|key, (cfg, handle)| {
                let keep = wanted.get(key) == Some(cfg);
                if !keep {
                    tracing::info!("syncrepl {}: stopping its session", cfg.name);
                    handle.abort();
                }
                keep
            });
            for (key, cfg) in wanted {
                if running.contains_key(&key) {
                    continue;
                }
                let handle = tokio::spawn(run_consumer(dir.clone(), cfg.clone()));
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

/// What a session remembers across reconnections (shown as status).
#[derive(Debug, Default)]
struct Progress {
    received: u64,
    last_update: Option<u64>,
    cookie: Vec<u8>,
    /// A refresh completed in this connection: the retry count restarts.
    synced: bool,
}

enum Ended {
    /// refreshOnly: the refresh is complete.
    Done,
    /// The provider asked for a full refresh (e-syncRefreshRequired).
    RefreshRequired,
}

async fn run_consumer(dir: Arc<Directory>, c: SyncConsumer) {
    let mut progress = Progress {
        cookie: dir.sync_cookie(&c).ok().flatten().unwrap_or_default(),
        ..Progress::default()
    };
    tracing::info!(
        "syncrepl {}: {} from {} for '{}'{}",
        c.name,
        c.config.mode.name(),
        c.config.provider,
        c.suffix,
        if progress.cookie.is_empty() {
            ", no cookie yet (full refresh)".to_string()
        } else {
            format!(", resuming with cookie {}", cookie_text(&progress.cookie))
        }
    );
    let mut attempt: u32 = 0;
    loop {
        progress.synced = false;
        let outcome = session(&dir, &c, &mut progress).await;
        if progress.synced {
            attempt = 0;
        }
        match outcome {
            Ok(Ended::Done) => {
                attempt = 0;
                set_state(&dir, &c, &progress, "polling".into()).await;
                tokio::time::sleep(Duration::from_secs(c.config.interval)).await;
            }
            Ok(Ended::RefreshRequired) => {
                tracing::warn!(
                    "syncrepl {}: the provider requires a full refresh (e-syncRefreshRequired): cookie dropped",
                    c.name
                );
                progress.cookie.clear();
                if let Err(e) = dir.sync_apply(&c, Vec::new(), Some(None), Vec::new()).await {
                    tracing::warn!("syncrepl {}: cannot forget the cookie: {e}", c.name);
                }
            }
            Err(e) => {
                let Some(wait) = c.config.retry_wait(attempt) else {
                    tracing::error!(
                        "syncrepl {}: {e}; the retry schedule is used up: stopped until the entry changes",
                        c.name
                    );
                    set_state(&dir, &c, &progress, format!("stopped: {e}")).await;
                    return;
                };
                attempt = attempt.saturating_add(1);
                tracing::warn!("syncrepl {}: {e}; retrying in {} s", c.name, wait);
                set_state(&dir, &c, &progress, format!("retrying: {e}")).await;
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
        }
    }
}

fn cookie_text(c: &[u8]) -> String {
    String::from_utf8_lossy(c).to_string()
}

fn status_attrs(p: &Progress, state: String) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("ferrodirSyncState".to_string(), state.into_bytes()),
        (
            "ferrodirSyncEntriesReceived".to_string(),
            p.received.to_string().into_bytes(),
        ),
    ];
    if !p.cookie.is_empty() {
        out.push(("ferrodirSyncCookie".into(), p.cookie.clone()));
    }
    if let Some(t) = p.last_update {
        out.push((
            "ferrodirSyncLastUpdate".into(),
            crate::directory::repl::syncrepl::generalized_time(t).into_bytes(),
        ));
    }
    out
}

async fn set_state(dir: &Directory, c: &SyncConsumer, p: &Progress, state: String) {
    if let Err(e) = dir
        .sync_apply(c, Vec::new(), None, status_attrs(p, state))
        .await
    {
        tracing::warn!("syncrepl {}: cannot record its status: {e}", c.name);
    }
}

fn session_error(step: &str, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol {
        step: step.into(),
        reason: reason.to_string(),
    }
}

async fn connect(c: &SyncConsumer) -> Result<Client, ClientError> {
    let mut client = open(c).await?;
    if !c.config.binddn.is_empty() {
        client
            .simple_bind(&c.config.binddn, &c.config.credentials)
            .await?;
    }
    Ok(client)
}

/// A connection to the consumer's provider, TLS as configured, not bound.
pub(crate) async fn open(c: &SyncConsumer) -> Result<Client, ClientError> {
    let cfg = &c.config;
    let timeout = Duration::from_secs(cfg.network_timeout.unwrap_or(10).max(1));
    let tls = TlsSettings {
        ca_file: cfg
            .tls_cacert
            .as_ref()
            .map(std::path::PathBuf::from)
            .or_else(|| super::agreement::tls_settings().ca_file),
        client_cert: None,
        pin_sha256: cfg.tls_pin_sha256,
    };
    let transport = if cfg.ldaps {
        Transport::Ldaps
    } else if cfg.starttls != StartTls::No {
        Transport::StartTls
    } else {
        Transport::Ldap
    };
    let mut client = match Client::connect(&cfg.host, cfg.port, transport, &tls, timeout).await {
        Err(ClientError::Result { .. }) if cfg.starttls == StartTls::Yes => {
            // starttls=yes (not critical): clear text when the provider refuses.
            tracing::warn!(
                "syncrepl {}: the provider refused StartTLS; continuing without TLS (starttls=yes)",
                c.name
            );
            Client::connect(&cfg.host, cfg.port, Transport::Ldap, &tls, timeout).await?
        }
        other => other?,
    };
    if let Some(t) = cfg.timeout {
        client.set_op_timeout(Duration::from_secs(t.max(1)));
    }
    Ok(client)
}

/// The session's working state between two batches.
struct Sync<'a> {
    dir: &'a Directory,
    c: &'a SyncConsumer,
    batch: Vec<SyncChange>,
    /// Changes that failed for a missing parent, tried again after each batch.
    waiting: Vec<SyncChange>,
    present: HashSet<[u8; 16]>,
    exclude: HashSet<String>,
}

impl Sync<'_> {
    /// Sends the batch (and the changes waiting for a parent) with the
    /// cookie that covers it.
    async fn flush(
        &mut self,
        progress: &mut Progress,
        cookie: Option<Vec<u8>>,
        state: &str,
    ) -> Result<(), ClientError> {
        if let Some(c) = &cookie {
            progress.cookie = c.clone();
        }
        let mut changes = std::mem::take(&mut self.waiting);
        changes.append(&mut self.batch);
        let mut first = true;
        loop {
            let n = changes.len();
            let status = status_attrs(progress, state.to_string());
            let saved = if first {
                cookie.clone().map(Some)
            } else {
                None
            };
            let outcome = self
                .dir
                .sync_apply(self.c, changes.clone(), saved, status)
                .await
                .map_err(|e| session_error("applying the provider's changes", e))?;
            first = false;
            let mut retry = Vec::new();
            for (i, msg, waits) in outcome.failed {
                let Some(ch) = changes.get(i) else { continue };
                if waits {
                    retry.push(ch.clone());
                } else {
                    tracing::warn!("syncrepl {}: change not applied: {msg}", self.c.name);
                }
            }
            if retry.is_empty() || retry.len() == n {
                self.waiting = retry;
                return Ok(());
            }
            changes = retry;
        }
    }

    fn entry_attrs(
        &self,
        attrs: Vec<ldap3_proto::proto::LdapPartialAttribute>,
    ) -> Vec<(String, Vec<Vec<u8>>)> {
        attrs
            .into_iter()
            .filter(|a| !self.exclude.contains(&a.atype.to_ascii_lowercase()))
            .map(|a| (a.atype, a.vals))
            .collect()
    }
}

async fn session(
    dir: &Directory,
    c: &SyncConsumer,
    progress: &mut Progress,
) -> Result<Ended, ClientError> {
    let mut client = connect(c).await?;
    let cfg = &c.config;
    let filter = ldap3_proto::parse_ldap_filter_str(&cfg.filter)
        .map_err(|e| session_error("filter", format!("'{}': {e}", cfg.filter)))?;
    let scope = match cfg.scope {
        SyncScope::Base => LdapSearchScope::Base,
        SyncScope::One => LdapSearchScope::OneLevel,
        SyncScope::Sub => LdapSearchScope::Subtree,
    };
    let mode = match cfg.mode {
        SyncMode::RefreshOnly => SyncRequestMode::RefreshOnly,
        SyncMode::RefreshAndPersist => SyncRequestMode::RefreshAndPersist,
    };
    let req = LdapSearchRequest {
        base: cfg.searchbase.clone(),
        scope,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter,
        attrs: cfg.attrs.clone(),
    };
    let ctrl = LdapControl::SyncRequest {
        criticality: true,
        mode,
        cookie: (!progress.cookie.is_empty()).then(|| progress.cookie.clone()),
        reload_hint: false,
    };
    let msgid = client.send_search(req, vec![ctrl]).await?;
    let mut s = Sync {
        dir,
        c,
        batch: Vec::new(),
        waiting: Vec::new(),
        present: HashSet::new(),
        exclude: cfg.exattrs.iter().map(|a| a.to_ascii_lowercase()).collect(),
    };
    let mut refreshing = true;
    let state = |refreshing: bool| {
        if refreshing {
            "refreshing"
        } else {
            "persisting"
        }
    };
    s.flush(progress, None, state(true)).await?;
    loop {
        let msg = client.next_message("sync search", msgid, None).await?;
        match msg.op {
            LdapOp::SearchResultEntry(e) => {
                let Some((st, uuid, cookie)) = msg.ctrl.iter().find_map(|ct| match ct {
                    LdapControl::SyncState {
                        state,
                        entry_uuid,
                        cookie,
                    } => Some((state.clone(), *entry_uuid.as_bytes(), cookie.clone())),
                    _ => None,
                }) else {
                    return Err(session_error(
                        "sync search",
                        format!("entry '{}' came without a Sync State control", e.dn),
                    ));
                };
                progress.received += 1;
                progress.last_update = Some(crate::directory::repl::syncrepl::now_secs());
                match st {
                    SyncStateValue::Add | SyncStateValue::Modify => {
                        let dn = Dn::parse(&e.dn).map_err(|err| {
                            session_error("sync search", format!("bad DN '{}': {err}", e.dn))
                        })?;
                        s.present.insert(uuid);
                        let attrs = s.entry_attrs(e.attributes);
                        s.batch.push(SyncChange::Upsert { uuid, dn, attrs });
                    }
                    SyncStateValue::Present => {
                        s.present.insert(uuid);
                    }
                    SyncStateValue::Delete => s.batch.push(SyncChange::Delete { uuid }),
                }
                if cookie.is_some() || !refreshing || s.batch.len() >= BATCH {
                    s.flush(progress, cookie, state(refreshing)).await?;
                }
            }
            LdapOp::SearchResultReference(_) => {}
            LdapOp::IntermediateResponse(info) => match info {
                LdapIntermediateResponse::SyncInfoNewCookie { cookie } => {
                    s.flush(progress, Some(cookie), state(refreshing)).await?;
                }
                LdapIntermediateResponse::SyncInfoRefreshDelete { cookie, done } => {
                    if done {
                        refreshing = false;
                        s.present.clear();
                        progress.synced = true;
                        tracing::info!("syncrepl {}: refresh done, persisting", c.name);
                    }
                    s.flush(progress, cookie, state(refreshing)).await?;
                }
                LdapIntermediateResponse::SyncInfoRefreshPresent { cookie, done } => {
                    if done {
                        end_present_phase(&mut s);
                        refreshing = false;
                        progress.synced = true;
                        tracing::info!("syncrepl {}: refresh done, persisting", c.name);
                    }
                    s.flush(progress, cookie, state(refreshing)).await?;
                }
                LdapIntermediateResponse::SyncInfoIdSet {
                    cookie,
                    refresh_deletes,
                    syncuuids,
                } => {
                    for u in syncuuids {
                        if refresh_deletes {
                            s.batch.push(SyncChange::Delete {
                                uuid: *u.as_bytes(),
                            });
                        } else {
                            s.present.insert(*u.as_bytes());
                        }
                    }
                    if cookie.is_some() || refresh_deletes {
                        s.flush(progress, cookie, state(refreshing)).await?;
                    }
                }
                LdapIntermediateResponse::Raw { name, .. } => {
                    tracing::debug!(
                        "syncrepl {}: ignoring intermediate response {:?}",
                        c.name,
                        name
                    );
                }
            },
            LdapOp::SearchResultDone(r) => {
                if r.code.clone() as i32 == REFRESH_REQUIRED {
                    client.unbind().await;
                    return Ok(Ended::RefreshRequired);
                }
                if r.code != LdapResultCode::Success {
                    return Err(ClientError::Result {
                        step: "sync search".into(),
                        code: r.code.clone() as i32,
                        name: format!("{:?}", r.code),
                        message: r.message,
                    });
                }
                let (cookie, refresh_deletes) = msg
                    .ctrl
                    .iter()
                    .find_map(|ct| match ct {
                        LdapControl::SyncDone {
                            cookie,
                            refresh_deletes,
                        } => Some((cookie.clone(), *refresh_deletes)),
                        _ => None,
                    })
                    .unwrap_or((None, true));
                if !refresh_deletes {
                    end_present_phase(&mut s);
                }
                progress.synced = true;
                s.flush(progress, cookie, "refreshed").await?;
                client.unbind().await;
                if !s.waiting.is_empty() {
                    tracing::warn!(
                        "syncrepl {}: {} entries still wait for their parent",
                        c.name,
                        s.waiting.len()
                    );
                }
                return Ok(Ended::Done);
            }
            _ => {
                return Err(session_error(
                    "sync search",
                    "unexpected message from the provider",
                ))
            }
        }
    }
}

/// Everything in scope the provider neither sent nor listed is gone.
fn end_present_phase(s: &mut Sync<'_>) {
    let keep = Arc::new(std::mem::take(&mut s.present));
    s.batch.push(SyncChange::DeleteUnlisted {
        base: s.c.suffix.clone(),
        scope: s.c.config.scope,
        keep,
    });
}
