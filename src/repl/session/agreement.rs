//! Supplier side of replication: one task per enabled agreement pushes the
//! changes its consumer lacks, and a supervisor (this file) keeps the set of
//! tasks in step with the agreement entries in cn=config. The session
//! itself is in incremental.rs, total init in total.rs, catch-up from entry
//! state in catchup.rs.

use super::client::TlsSettings;
use crate::config::{ReplicationConfig, TlsConfig};
use crate::directory::repl::{AgreementConfig, BindMethod, Transport};
use crate::directory::Directory;
use crate::model::Dn;
use crate::repl::core::wire::StartRequest;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Extended operation run by `ferrodir repl test`: the server tests an
/// agreement's connection with the credentials only it can decrypt.
pub use crate::model::oid::REPL_TEST_AGREEMENT as OID_TEST_AGREEMENT;

/// Changes per CHANGES request, one write transaction on the consumer.
/// Large batches share the commit's page writes: a 20,000-change catch-up
/// ran at 8,600 changes/s with 500, 10,800 with 2,000, 14,400 with 5,000
/// and no faster with 10,000. A batch holds the consumer's writer (its
/// local writes wait) for about 50 µs a change, 0.25 s at most.
pub(super) const BATCH: usize = 5000;
/// Entries per page of a total init (a page larger than
/// MAX_REQUEST_BYTES goes as several requests).
pub(super) const INIT_PAGE: usize = 1000;
/// Pages the init reader prepares ahead of the one in flight.
pub(super) const INIT_PAGES_AHEAD: usize = 4;
/// A CHANGES or TOTAL_ENTRIES request larger than this is split (the
/// consumer's default message limit is 16 MiB).
pub(super) const MAX_REQUEST_BYTES: usize = 8 << 20;
/// entryUUIDs per catch-up present-list request (16 bytes each).
pub(super) const PRESENT_CHUNK: usize = 50_000;
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// LDAP result busy (51): the consumer asks to be tried again later.
pub(super) const BUSY: i32 = 51;
/// How long a supplier waits before retrying a consumer that needs an init.
pub(super) const NEEDS_INIT_RETRY: Duration = Duration::from_secs(30);
use super::incremental::*;

/// Trust and client identity for TLS agreements, set once at start.
pub(super) static TLS_SETTINGS: RwLock<Option<TlsSettings>> = RwLock::new(None);

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
        pin_sha256: None,
    })
}

/// Sets the TLS settings every agreement (and `ferrodir repl test`) uses.
pub fn set_tls_settings(settings: TlsSettings) {
    if let Ok(mut g) = TLS_SETTINGS.write() {
        *g = Some(settings);
    }
}

pub(super) fn tls_settings() -> TlsSettings {
    TLS_SETTINGS
        .read()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_default()
}

pub(super) fn bind_method_name(m: BindMethod) -> &'static str {
    match m {
        BindMethod::Simple => "SIMPLE",
        BindMethod::SslClientAuth => "SSLCLIENTAUTH (SASL EXTERNAL)",
    }
}

/// Short name of an agreement for logs: its cn, else its DN.
pub(super) fn name_of(a: &AgreementConfig) -> String {
    a.dn.rdn()
        .and_then(|r| r.avas.first())
        .map(|ava| String::from_utf8_lossy(&ava.value).to_string())
        .unwrap_or_else(|| a.dn.to_string())
}

/// Settings that need a new session when they change (a refresh request does not).
pub(super) fn settings(a: &AgreementConfig) -> AgreementConfig {
    AgreementConfig {
        refresh_requested: false,
        ..a.clone()
    }
}

/// Whether a session started with `cfg` may go on under the agreement as
/// it is `now`: enabled, and no setting that needs a new session changed.
fn session_still_fits(now: &AgreementConfig, cfg: &AgreementConfig) -> bool {
    now.enabled && settings(now) == settings(cfg)
}

/// Starts the supervisor: one task per enabled agreement, started, stopped
/// and restarted as agreement entries are added, disabled, removed or changed.
pub fn spawn_runner(dir: Arc<Directory>, local_url: String) -> JoinHandle<()> {
    // Before the listeners open: a status read at once after a restart
    // shows the saved history, not "never".
    if let Err(e) = dir.load_agreement_history() {
        tracing::warn!("the agreements' saved history could not be read: {e}");
    }
    tokio::spawn(async move {
        let mut rx = dir.subscribe();
        let mut running: HashMap<String, (AgreementConfig, JoinHandle<()>)> = HashMap::new();
        // Every commit wakes this loop; the agreements are read again only
        // when the replication configuration changed.
        let mut wanted: HashMap<String, AgreementConfig> = HashMap::new();
        let mut read_version = None;
        loop {
            rx.borrow_and_update();
            let version = dir.repl_config_version();
            if read_version != Some(version) {
                wanted = dir
                    .agreements()
                    .into_iter()
                    .map(|a| (dir.normalize_dn(&a.dn), a))
                    .collect();
                read_version = Some(version);
            }
            running.retain(|key, (cfg, handle)| {
                let keep = wanted.get(key).is_some_and(|w| session_still_fits(w, cfg))
                    && !handle.is_finished();
                if !keep {
                    tracing::info!("agreement {}: stopping its session", name_of(cfg));
                    handle.abort();
                    dir.update_agreement_status(&cfg.dn, |s| s.update_in_progress = false);
                }
                keep
            });
            for (key, cfg) in &wanted {
                if running.contains_key(key) {
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
                running.insert(key.clone(), (cfg.clone(), handle));
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

/// Whether the agreement is still enabled with the settings `cfg` has.
/// `seen` is the replication configuration's version last found so: the
/// agreement is looked at again only when the configuration reloaded.
pub(super) fn still_wanted(dir: &Directory, cfg: &AgreementConfig, seen: &mut Option<u64>) -> bool {
    let version = dir.repl_config_version();
    if *seen == Some(version) {
        return true;
    }
    let wanted = dir
        .with_agreement(&cfg.dn, |now| session_still_fits(now, cfg))
        .unwrap_or(false);
    if wanted {
        *seen = Some(version);
    }
    wanted
}

pub(super) fn refresh_requested(dir: &Directory, dn: &Dn) -> bool {
    dir.with_agreement(dn, |a| a.refresh_requested)
        .unwrap_or(false)
}

pub(super) async fn run_agreement(dir: Arc<Directory>, cfg: AgreementConfig, local_url: String) {
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
    // nsds5ReplicaBackoffMin / Max of the replica entry.
    let replica = dir
        .replicas()
        .into_iter()
        .find(|r| dir.normalize_dn(&r.suffix) == dir.normalize_dn(&cfg.suffix));
    let first_backoff = replica
        .as_ref()
        .and_then(|r| r.backoff_min)
        .map_or(Duration::from_secs(1), Duration::from_secs);
    let max_backoff = replica
        .as_ref()
        .and_then(|r| r.backoff_max)
        .map_or(MAX_BACKOFF, Duration::from_secs)
        .max(first_backoff);
    let mut backoff = first_backoff;
    let mut logged_security = String::new();
    // Failed attempts since the last session that got going: a session
    // that starts after some says so at info level.
    let mut failures = 0u32;
    loop {
        let mut progressed = false;
        let err = session(
            &dir,
            &cfg,
            &local_url,
            &mut progressed,
            &mut logged_security,
            &mut failures,
        )
        .await;
        if matches!(err, SessionError::Stopped) {
            // The runner stops this task and says why in the status; should
            // the agreement come back as it was, this task goes on.
            let mut rx = dir.subscribe();
            while !still_wanted(&dir, &cfg, &mut None) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            continue;
        }
        if progressed {
            backoff = first_backoff;
        }
        failures = failures.saturating_add(1);
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
            SessionError::Client(ref c) if c.code() == Some(BUSY) && cfg.busy_wait.is_some() => {
                let wait = cfg.busy_wait.unwrap_or_default();
                tracing::warn!("agreement {name}: {err}; consumer busy, retrying in {wait} s (nsds5ReplicaBusyWaitTime)");
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            SessionError::Client(ref c) if c.is_peer_shutdown() => {
                // A consumer that restarts or shuts down ends the session
                // on purpose; that is not a protocol error.
                tracing::info!(
                    "agreement {name}: the consumer ended the session ({err}); reconnecting in {} s",
                    backoff.as_secs()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
            }
            _ => {
                tracing::warn!(
                    "agreement {name}: {err}; retrying in {} s",
                    backoff.as_secs()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// Waits until an init is requested, this replica's generation changes (it
/// was initialised itself), or the slow retry period passes.
pub(super) async fn wait_for_init(dir: &Directory, cfg: &AgreementConfig) {
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
        version: crate::repl::core::wire::PROTOCOL_VERSION,
        suffix: cfg.suffix.to_string(),
        supplier_rid: rid,
        generation,
        total: false,
        supplier_url: String::new(),
        retired: Vec::new(),
        with_states: false,
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
    use crate::directory::test_support::{
        add_replica_and_agreement, replace_as_root, temp_directory,
    };

    #[test]
    fn a_session_sees_its_agreement_disabled_or_changed_at_once() {
        let (_tmp, dir) = temp_directory("dc=example,dc=com", Default::default());
        let agreement = add_replica_and_agreement(&dir);
        let cfg = dir.agreements()[0].clone();
        let mut seen = None;
        assert!(still_wanted(&dir, &cfg, &mut seen));
        assert_eq!(seen, Some(dir.repl_config_version()));

        replace_as_root(&dir, &agreement, "nsds5ReplicaEnabled", "off");
        assert!(
            !still_wanted(&dir, &cfg, &mut seen),
            "disabled: nothing more is sent under it"
        );
        replace_as_root(&dir, &agreement, "nsds5ReplicaEnabled", "on");
        assert!(
            still_wanted(&dir, &cfg, &mut seen),
            "enabled again as it was"
        );

        replace_as_root(&dir, &agreement, "nsds5BeginReplicaRefresh", "start");
        assert!(
            still_wanted(&dir, &cfg, &mut seen),
            "a refresh request is not a new setting"
        );
        replace_as_root(&dir, &agreement, "nsDS5ReplicaPort", "1389");
        assert!(
            !still_wanted(&dir, &cfg, &mut seen),
            "another consumer port needs a new session"
        );
    }
}
