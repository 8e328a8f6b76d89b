//! `ferrodir serve`: read the configuration, open the data directory, bind
//! the listeners, start replication and serve until SIGTERM/SIGINT.

use super::args::ServeArgs;
use anyhow::{anyhow, bail, Context, Result};
use ferrodir::auth::password;
use ferrodir::config::Config;
use ferrodir::directory::setup::{open_data_dir, OpenMode};
use ferrodir::directory::Directory;
use ferrodir::model::Dn;
use ferrodir::ops::Shared;
use ferrodir::repl::session::{agreement, housekeeping, syncrepl};
use ferrodir::server;
use std::io::Write;
use std::sync::Arc;

pub fn init_logging(filter: &str) {
    let _ = init_logs(filter, "stderr", "stderr");
}

/// Set when a log goes to standard output: a generated root password is
/// then not printed there (it would land in the log).
static LOG_ON_STDOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Target of the access log events (server/conn.rs).
const ACCESS_TARGET: &str = "ferrodir::access";

/// Where a log goes: standard error, standard output or a file.
fn log_writer(to: &str) -> Result<tracing_subscriber::fmt::writer::BoxMakeWriter> {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    Ok(match to {
        "stderr" => BoxMakeWriter::new(std::io::stderr),
        "stdout" => BoxMakeWriter::new(std::io::stdout),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {path}"))?;
            BoxMakeWriter::new(std::sync::Mutex::new(file))
        }
    })
}

/// The access log's lines: time, then the operation as the connection
/// code wrote it (`conn=N op=N msgid=N KIND ... result=N etime=S`), with no
/// level or span decoration, so they read like OpenLDAP's and 389-ds's.
struct AccessFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for AccessFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::time::FormatTime;
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut writer)?;
        write!(writer, " ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Two logs: the access log (one line per operation) and the error log
/// (everything else), each to its own destination; `filter` (or
/// FERRODIR_LOG) sets the levels, `warn` silences the access log, and so
/// does `access = "none"`, without formatting its lines.
pub fn init_logs(filter: &str, access: &str, error: &str) -> Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let env = tracing_subscriber::EnvFilter::try_from_env("FERRODIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    LOG_ON_STDOUT.store(
        access == "stdout" || error == "stdout",
        std::sync::atomic::Ordering::Relaxed,
    );
    let terminal = |to: &str| match to {
        "stderr" => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        "stdout" => std::io::IsTerminal::is_terminal(&std::io::stdout()),
        _ => false,
    };
    // `none`: no access layer, so no callsite of the access target is
    // enabled and its lines are never formatted.
    ferrodir::server::set_access_log(access != "none");
    let access_layer = match access {
        "none" => None,
        to => Some(
            tracing_subscriber::fmt::layer()
                .event_format(AccessFormat)
                .with_writer(log_writer(to)?)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    m.target() == ACCESS_TARGET
                })),
        ),
    };
    let error_layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        // Colour codes only on a terminal, never in log files.
        .with_ansi(terminal(error))
        .with_writer(log_writer(error)?)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target() != ACCESS_TARGET
        }));
    let _ = tracing_subscriber::registry()
        .with(env)
        .with(access_layer)
        .with(error_layer)
        .try_init();
    Ok(())
}

pub fn parse_suffixes(list: &[String]) -> Result<Vec<Dn>> {
    list.iter()
        .map(|s| Dn::parse(s).map_err(|e| anyhow!("--suffix: {e}")))
        .collect()
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if !args.ldap.is_empty() || !args.ldaps.is_empty() {
        cfg.ldap = args.ldap;
        cfg.ldaps = Some(args.ldaps);
    }
    if !args.suffix.is_empty() {
        cfg.suffixes = args.suffix;
    }
    init_logs(
        &cfg.log,
        args.access_log.as_deref().unwrap_or("stderr"),
        args.error_log.as_deref().unwrap_or("stderr"),
    )?;
    let metrics = args.metrics.clone();
    let ldapi = match args.ldapi.as_deref() {
        Some("none") => None,
        Some(p) => Some(std::path::PathBuf::from(p)),
        None => Some(cfg.data_dir.join("ldapi")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferrodir-worker")
        .build()?;
    runtime.block_on(run_server(cfg, ldapi, metrics))
}

/// Sets the root password on the first start: environment, then file, then
/// a generated one printed once. Never a built-in password.
fn ensure_root_password(dir: &Directory, cfg: &Config) -> Result<()> {
    if dir.root_password_is_set()? {
        return Ok(());
    }
    if let Ok(pw) = std::env::var("FERRODIR_ROOT_PASSWORD") {
        if pw.is_empty() {
            bail!("FERRODIR_ROOT_PASSWORD is set but empty");
        }
        dir.set_root_password(pw.as_bytes())?;
        tracing::info!("root DN password set from FERRODIR_ROOT_PASSWORD");
        return Ok(());
    }
    if let Some(path) = &cfg.root_password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading root_password_file {}", path.display()))?;
        let pw = text.lines().next().unwrap_or("").to_string();
        if pw.is_empty() {
            bail!("root_password_file {} is empty", path.display());
        }
        dir.set_root_password(pw.as_bytes())?;
        tracing::info!("root DN password set from {}", path.display());
        return Ok(());
    }
    if LOG_ON_STDOUT.load(std::sync::atomic::Ordering::Relaxed) {
        bail!(
            "no root password is set and one would be generated, but standard output carries a log: set FERRODIR_ROOT_PASSWORD (or root_password_file) for the first start, or log to stderr or a file"
        );
    }
    let pw = password::generate();
    dir.set_root_password(pw.as_bytes())?;
    println!(
        "Generated password for {}: {pw}\n(shown once; change it with ldappasswd, or set FERRODIR_ROOT_PASSWORD before the first start)",
        cfg.root_dn
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

/// How long the start-up scan of stored passwords may read entries.
const PASSWORD_SCAN_BUDGET: std::time::Duration = std::time::Duration::from_secs(120);

/// Logs, once at start and per scheme, the stored userPassword values that
/// can never verify (directory/password_scan.rs). A thread of its own
/// keeps the full scan off the runtime and the request path.
fn report_unverifiable_passwords(dir: Arc<Directory>) {
    let spawned = std::thread::Builder::new()
        .name("ferrodir-password-scan".into())
        .spawn(move || {
            let deadline = std::time::Instant::now() + PASSWORD_SCAN_BUDGET;
            let scan = match dir.scan_unverifiable_passwords(deadline) {
                Ok(scan) => scan,
                Err(e) => {
                    tracing::warn!("scanning stored passwords: {e}");
                    return;
                }
            };
            for (scheme, f) in &scan.by_scheme {
                tracing::warn!(
                    scheme = %scheme,
                    count = f.count,
                    example = %f.example_dn,
                    "{} stored userPassword value(s) use {scheme}, which ferrodir cannot verify ({}); \
                     binds with them fail until the password is set again",
                    f.count,
                    f.reason
                );
            }
            if scan.complete {
                tracing::info!(
                    entries = scan.entries,
                    unverifiable_schemes = scan.by_scheme.len(),
                    "stored password scan finished"
                );
            } else {
                tracing::warn!(
                    entries = scan.entries,
                    "stored password scan stopped after {}s; the rest of the tree was not checked",
                    PASSWORD_SCAN_BUDGET.as_secs()
                );
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("could not start the stored password scan: {e}");
    }
}

async fn run_server(
    cfg: Config,
    ldapi: Option<std::path::PathBuf>,
    metrics: Option<String>,
) -> Result<()> {
    server::tls::install_provider();
    if let Some(n) = server::raise_nofile_limit() {
        tracing::debug!("open file limit: {n}");
    }
    // Bind first: a port problem is reported before anything is created on disk.
    let listeners = server::bind_all(&cfg.ldap).await?;
    let metrics_listener = match &metrics {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics listener {addr}"))?,
        ),
        None => None,
    };
    let ldaps_listeners = bind_ldaps(&cfg).await?;
    if listeners.is_empty() && ldaps_listeners.is_empty() {
        bail!("no listener: give --ldap or --ldaps (or ldap/ldaps in the configuration)");
    }
    let wanted = parse_suffixes(&cfg.suffixes)?;
    let opened = open_data_dir(
        &cfg.data_dir,
        OpenMode::Serve {
            map_size: cfg.map_size_mib << 20,
        },
        &cfg,
        &wanted,
        || Dn::parse("dc=example,dc=com").ok(),
    )
    .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    let dir = Arc::new(opened.dir);
    // The socket lives in the data directory by default, so it is bound
    // once the directory exists (and before "ready").
    let ldapi_listener = match &ldapi {
        Some(path) => Some(
            server::bind_ldapi(path)
                .with_context(|| format!("ldapi listener {}", path.display()))?,
        ),
        None => None,
    };
    ensure_root_password(&dir, &cfg)?;
    dir.prepare_suffixes(opened.fresh)
        .await
        .context("preparing the suffixes")?;
    let suffix_text: Vec<String> = opened.suffixes.iter().map(Dn::to_string).collect();
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        suffixes = %suffix_text.join("; "),
        "ferrodir {} ready",
        env!("CARGO_PKG_VERSION")
    );
    report_unverifiable_passwords(dir.clone());
    let tls = if cfg.tls.enabled {
        let ctx = server::TlsContext::setup(&cfg.tls, &cfg.data_dir)?;
        if let Some(ca) = &ctx.files().generated_ca {
            tracing::info!(
                "instance CA: {} (clients: LDAPTLS_CACERT={} or TLS_CACERT in ldap.conf)",
                ca.display(),
                ca.display()
            );
        }
        Some(ctx)
    } else {
        None
    };
    let certificate_pin = tls.clone().map(|t| {
        let pin: ferrodir::ops::CertificatePin = Arc::new(move || t.certificate_sha256());
        pin
    });
    let shared = Arc::new(Shared {
        dir: dir.clone(),
        max_filter_depth: cfg.limits.max_filter_depth,
        agreement_tester: Some(Arc::new(agreement::AgreementTest)),
        search: ferrodir::ops::SearchLimits::from_config(&cfg.limits),
        stats: Arc::new(ferrodir::ops::stats::Stats::default()),
        certificate_pin,
        write_chain: Some(Arc::new(ferrodir::repl::session::chain::ProviderChain)),
    });
    let _replication = start_replication(&dir, &cfg)?;
    let state = server::ServerState::new(
        shared,
        server::ServerOptions {
            limits: cfg.limits.clone(),
            security: cfg.security.clone(),
            tls: tls.clone(),
            cert_map_attribute: cfg.tls.cert_map_attribute.clone(),
            ldapi: ldapi_listener.is_some(),
        },
    );
    let mut tasks = Vec::new();
    if let Some(t) = tls {
        tasks.push(tokio::spawn(t.watch()));
    }
    for (kind, list) in [
        (server::ListenerKind::Ldap, listeners),
        (server::ListenerKind::Ldaps, ldaps_listeners),
    ] {
        for l in list {
            tasks.push(tokio::spawn(server::serve_listener(l, state.clone(), kind)));
        }
    }
    if let Some(l) = metrics_listener {
        tasks.push(tokio::spawn(server::metrics::serve_metrics(
            l,
            state.shared.clone(),
        )));
    }
    if let Some(l) = ldapi_listener {
        tasks.push(tokio::spawn(server::serve_ldapi(l, state.clone())));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    if let Some(path) = &ldapi {
        let _ = std::fs::remove_file(path);
    }
    for t in &tasks {
        t.abort();
    }
    // Writes already acknowledged are committed; give in-flight ones a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(())
}

/// Binds the LDAPS listeners. The embedded default (no `ldaps` configured)
/// is best effort: a port it cannot bind is a warning, not a failed start.
async fn bind_ldaps(cfg: &Config) -> Result<Vec<tokio::net::TcpListener>> {
    let (addrs, best_effort) = match &cfg.ldaps {
        Some(list) => (list.clone(), false),
        None => (vec![ferrodir::config::DEFAULT_LDAPS.to_string()], true),
    };
    if !cfg.tls.enabled {
        if !best_effort && !addrs.is_empty() {
            bail!("LDAPS listeners are configured but [tls] enabled = false");
        }
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for a in &addrs {
        match server::bind_one(a).await {
            Ok(l) => out.push(l),
            Err(e) if best_effort => {
                tracing::warn!("default LDAPS listener not started: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {},
                _ = i.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Starts the supplier side of replication; the first LDAP listener becomes
/// the URL consumers refer writes to. TLS agreements use the `[replication]`
/// trust settings.
fn start_replication(dir: &Arc<Directory>, cfg: &Config) -> Result<tokio::task::JoinHandle<()>> {
    let settings = agreement::resolve_tls_settings(&cfg.replication, &cfg.tls, &cfg.data_dir)
        .map_err(|e| anyhow!(e))?;
    agreement::set_tls_settings(settings);
    let addr = cfg
        .ldap
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:389".into());
    let url = match addr.parse::<std::net::SocketAddr>() {
        Ok(sa) if sa.ip().is_unspecified() => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            format!("ldap://{host}:{}", sa.port())
        }
        _ => format!("ldap://{addr}"),
    };
    let runner = agreement::spawn_runner(dir.clone(), url);
    let housekeeping = housekeeping::spawn(dir.clone());
    let consumers = syncrepl::spawn_consumers(dir.clone());
    Ok(tokio::spawn(async move {
        let _ = runner.await;
        housekeeping.abort();
        consumers.abort();
    }))
}
