//! The `ferrodir` command: serve, import, export, hash-password.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ferrodir::auth::password::{self, Scheme};
use ferrodir::config::Config;
use ferrodir::directory::{Directory, DirectoryConfig, WriteOp};
use ferrodir::ldif::{self, LdifRecord};
use ferrodir::model::Dn;
use ferrodir::ops::Shared;
use ferrodir::schema::Schema;
use ferrodir::server;
use ferrodir::store::{Store, StoreOptions, StoreRead};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// mimalloc: the request path allocates many small short-lived buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const META_SUFFIXES: &str = "suffixes";

#[derive(Parser)]
#[command(
    name = "ferrodir",
    version,
    about = "An LDAPv3 directory server on LMDB with multi-master replication"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Load an LDIF file into a data directory (offline: the server must be stopped).
    Import {
        #[arg(long, default_value = "ferrodir-data")]
        data_dir: PathBuf,
        /// Naming context(s) of the data; default: those recorded, else the first entry's DN.
        #[arg(long)]
        suffix: Vec<String>,
        /// Entries per transaction.
        #[arg(long, default_value_t = 20_000)]
        batch: usize,
        file: PathBuf,
    },
    /// Write every entry as LDIF (a consistent snapshot; works while the server runs).
    Export {
        #[arg(long, default_value = "ferrodir-data")]
        data_dir: PathBuf,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Copy a data directory while the server runs (consistent LMDB snapshot).
    Backup {
        #[arg(long, default_value = "ferrodir-data")]
        data_dir: PathBuf,
        /// Backup directory to create (must not exist or be empty).
        out: PathBuf,
    },
    /// Put a backup in place (the server must be stopped).
    Restore {
        #[arg(long, default_value = "ferrodir-data")]
        data_dir: PathBuf,
        /// Replace a non-empty data directory.
        #[arg(long)]
        force: bool,
        backup: PathBuf,
    },
    /// Print a password hash for userPassword, like slappasswd (-h SCHEME as there).
    #[command(disable_help_flag = true)]
    HashPassword {
        /// Scheme: PBKDF2-SHA512 (default), PBKDF2-SHA256, ARGON2, SSHA512, SSHA256, SSHA, SHA.
        #[arg(long, short = 'h', default_value = "PBKDF2-SHA512")]
        scheme: String,
        /// Print help.
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
        /// The password; read from standard input when absent.
        password: Option<String>,
    },
    /// Replication: agreement status, connection test.
    #[command(subcommand)]
    Repl(ReplCommand),
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// TOML configuration file (see config/ferrodir.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (default ./ferrodir-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// LDAP listener address, repeatable (default 127.0.0.1:389). Listeners
    /// given here replace the configured ones (LDAP and LDAPS).
    #[arg(long)]
    ldap: Vec<String>,
    /// LDAPS listener address, repeatable (default 127.0.0.1:636 when it can
    /// be bound). Listeners given here replace the configured ones.
    #[arg(long)]
    ldaps: Vec<String>,
    /// Naming context, repeatable (default dc=example,dc=com for a new data directory).
    #[arg(long)]
    suffix: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(mut args)) => {
            args.config = args.config.or(cli.serve.config);
            serve(args)
        }
        Some(Command::Import {
            data_dir,
            suffix,
            batch,
            file,
        }) => import(&data_dir, &suffix, batch, &file),
        Some(Command::Export { data_dir, output }) => export(&data_dir, output.as_deref()),
        Some(Command::HashPassword {
            scheme, password, ..
        }) => hash_password(&scheme, password),
        Some(Command::Backup { data_dir, out }) => ferrodir::store::backup::backup(&data_dir, &out)
            .map(|info| {
                eprintln!(
                    "backed up {} entries ({} bytes) of {} to {}",
                    info.entries,
                    info.data_bytes,
                    data_dir.display(),
                    out.display()
                )
            })
            .map_err(anyhow::Error::from),
        Some(Command::Restore {
            data_dir,
            force,
            backup,
        }) => ferrodir::store::backup::restore(&backup, &data_dir, force)
            .map(|info| {
                eprintln!(
                    "restored {} entries from {} into {}",
                    info.entries,
                    backup.display(),
                    data_dir.display()
                )
            })
            .map_err(anyhow::Error::from),
        Some(Command::Repl(cmd)) => repl_command(cmd),
    };
    if let Err(e) = result {
        eprintln!("ferrodir: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging(filter: &str) {
    let env = tracing_subscriber::EnvFilter::try_from_env("FERRODIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_target(false)
        // Colour codes only on a terminal, never in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn parse_suffixes(list: &[String]) -> Result<Vec<Dn>> {
    list.iter()
        .map(|s| Dn::parse(s).map_err(|e| anyhow!("--suffix: {e}")))
        .collect()
}

fn recorded_suffixes(store: &Store) -> Result<Vec<String>> {
    Ok(store
        .read()?
        .meta(META_SUFFIXES)?
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

fn record_suffixes(store: &Store, suffixes: &[Dn]) -> Result<()> {
    let text: Vec<String> = suffixes.iter().map(Dn::to_string).collect();
    let mut w = store.write()?;
    w.put_meta(META_SUFFIXES, text.join("\n").as_bytes())?;
    w.commit()?;
    Ok(())
}

fn open_directory(cfg: &Config, store: Store, suffixes: Vec<Dn>) -> Result<Directory> {
    let schema = Arc::new(Schema::builtin().context("loading the built-in schema")?);
    let scheme = Scheme::from_name(&cfg.password_scheme)
        .ok_or_else(|| anyhow!("unknown password_scheme {:?}", cfg.password_scheme))?;
    let dcfg = DirectoryConfig {
        suffixes,
        root_dn: Dn::parse(&cfg.root_dn).map_err(|e| anyhow!("root_dn: {e}"))?,
        indexes: cfg.index_config()?,
        replica_id: cfg.replica_id,
        size_limit: cfg.limits.size_limit,
        time_limit: cfg.limits.time_limit,
        password_scheme: scheme,
        password_policy: cfg.security.password_policy(),
    };
    Ok(Directory::open(store, schema, dcfg)?)
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
    let pw = password::generate();
    dir.set_root_password(pw.as_bytes())?;
    println!(
        "Generated password for {}: {pw}\n(shown once; change it with ldappasswd, or set FERRODIR_ROOT_PASSWORD before the first start)",
        cfg.root_dn
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The base entry created for a new suffix, chosen by its RDN type.
fn base_entry(suffix: &Dn) -> Option<WriteOp> {
    let ava = suffix.rdn()?.avas.first()?;
    let value = ava.value.clone();
    let attrs: Vec<(String, Vec<Vec<u8>>)> = match ava.attr.to_ascii_lowercase().as_str() {
        "dc" => vec![
            (
                "objectClass".into(),
                vec![b"top".to_vec(), b"domain".to_vec()],
            ),
            ("dc".into(), vec![value]),
        ],
        "o" => vec![
            (
                "objectClass".into(),
                vec![b"top".to_vec(), b"organization".to_vec()],
            ),
            ("o".into(), vec![value]),
        ],
        "ou" => vec![
            (
                "objectClass".into(),
                vec![b"top".to_vec(), b"organizationalUnit".to_vec()],
            ),
            ("ou".into(), vec![value]),
        ],
        "c" => vec![
            (
                "objectClass".into(),
                vec![b"top".to_vec(), b"country".to_vec()],
            ),
            ("c".into(), vec![value]),
        ],
        _ => return None,
    };
    Some(WriteOp::Add {
        dn: suffix.clone(),
        attrs,
    })
}

fn serve(args: ServeArgs) -> Result<()> {
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
    init_logging(&cfg.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferrodir-worker")
        .build()?;
    runtime.block_on(run_server(cfg))
}

async fn run_server(cfg: Config) -> Result<()> {
    server::tls::install_provider();
    if let Some(n) = server::raise_nofile_limit() {
        tracing::debug!("open file limit: {n}");
    }
    // Bind first: a port problem is reported before anything is created on disk.
    let listeners = server::bind_all(&cfg.ldap).await?;
    let ldaps_listeners = bind_ldaps(&cfg).await?;
    if listeners.is_empty() && ldaps_listeners.is_empty() {
        bail!("no listener: give --ldap or --ldaps (or ldap/ldaps in the configuration)");
    }
    let opts = StoreOptions {
        map_size: cfg.map_size_mib << 20,
        ..StoreOptions::default()
    };
    let store = Store::open(&cfg.data_dir, &opts)
        .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    let fresh = store.read()?.entry_count()? == 0;
    let mut suffix_text = cfg.suffixes.clone();
    if suffix_text.is_empty() {
        suffix_text = recorded_suffixes(&store)?;
    }
    if suffix_text.is_empty() {
        suffix_text = vec!["dc=example,dc=com".into()];
    }
    let suffixes = parse_suffixes(&suffix_text)?;
    record_suffixes(&store, &suffixes)?;
    let dir = Arc::new(open_directory(&cfg, store, suffixes.clone())?);
    ensure_root_password(&dir, &cfg)?;
    if fresh {
        let root = dir.root_identity();
        for s in &suffixes {
            if let Some(op) = base_entry(s) {
                dir.write(&root, op)
                    .await
                    .with_context(|| format!("creating base entry {s}"))?;
                tracing::info!("created base entry {s}");
            }
        }
    }
    ensure_default_acis(&dir, &suffixes).await?;
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        suffixes = %suffix_text.join("; "),
        "ferrodir {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let shared = Arc::new(Shared {
        dir: dir.clone(),
        max_filter_depth: cfg.limits.max_filter_depth,
        search: ferrodir::ops::SearchLimits::from_config(&cfg.limits),
    });
    let _replication = start_replication(&dir, &cfg)?;
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
    let state = server::ServerState::new(
        shared,
        server::ServerOptions {
            limits: cfg.limits.clone(),
            security: cfg.security.clone(),
            tls: tls.clone(),
            cert_map_attribute: cfg.tls.cert_map_attribute.clone(),
        },
    );
    let mut tasks = Vec::new();
    if let Some(t) = tls {
        tasks.push(tokio::spawn(t.watch()));
    }
    for l in listeners {
        tasks.push(tokio::spawn(server::serve_listener(
            l,
            state.clone(),
            server::ListenerKind::Ldap,
        )));
    }
    for l in ldaps_listeners {
        tasks.push(tokio::spawn(server::serve_listener(
            l,
            state.clone(),
            server::ListenerKind::Ldaps,
        )));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
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

fn import(data_dir: &Path, suffix_args: &[String], batch: usize, file: &Path) -> Result<()> {
    init_logging("warn");
    let cfg = Config::default();
    let opts = StoreOptions {
        no_sync: true,
        ..StoreOptions::default()
    };
    let store =
        Store::open(data_dir, &opts).with_context(|| format!("opening {}", data_dir.display()))?;
    let reader = BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut records = ldif::LdifReader::new(reader).peekable();
    let mut suffix_text: Vec<String> = suffix_args.to_vec();
    if suffix_text.is_empty() {
        suffix_text = recorded_suffixes(&store)?;
    }
    if suffix_text.is_empty() {
        if let Some(Ok((_, LdifRecord::Entry { dn, .. }))) = records.peek() {
            suffix_text.push(dn.clone());
        }
    }
    if suffix_text.is_empty() {
        bail!("no suffix: give --suffix or start the file with the base entry");
    }
    let suffixes = parse_suffixes(&suffix_text)?;
    record_suffixes(&store, &suffixes)?;
    let dir = open_directory(&cfg, store, suffixes)?;

    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} entries  {per_sec}  {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = std::time::Instant::now();
    let mut current_line = 0usize;
    let ops = records.map(|r| {
        let (line, rec) = r.map_err(|e| {
            ferrodir::directory::DirError::Protocol(format!("{}: {e}", file.display()))
        })?;
        current_line = line;
        match rec {
            LdifRecord::Entry { dn, attrs } => {
                let dn = Dn::parse(&dn).map_err(|e| {
                    ferrodir::directory::DirError::InvalidDn(format!(
                        "{}:{line}: {e}",
                        file.display()
                    ))
                })?;
                let mut grouped: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
                for (name, value) in attrs {
                    match grouped
                        .iter_mut()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    {
                        Some((_, vals)) => vals.push(value),
                        None => grouped.push((name, vec![value])),
                    }
                }
                Ok(WriteOp::Add { dn, attrs: grouped })
            }
            LdifRecord::Change { .. } => Err(ferrodir::directory::DirError::Protocol(format!(
                "{}:{line}: change records cannot be imported; apply them with ldapmodify",
                file.display()
            ))),
        }
    });
    let mut progress = |n: u64| bar.set_position(n);
    let result = dir.bulk_add(ops, batch.max(1), &mut progress);
    bar.finish_and_clear();
    dir.store().sync()?;
    match result {
        Ok(n) => {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "imported {n} entries in {secs:.2} s ({:.0} entries/s)",
                n as f64 / secs.max(1e-9)
            );
            Ok(())
        }
        Err(e) => Err(anyhow!(
            "import stopped at the record starting on line {current_line}: {e}\n(entries before it were imported in committed batches)"
        )),
    }
}

fn export(data_dir: &Path, output: Option<&Path>) -> Result<()> {
    init_logging("warn");
    let opts = StoreOptions {
        exclusive: false,
        ..StoreOptions::default()
    };
    let store =
        Store::open(data_dir, &opts).with_context(|| format!("opening {}", data_dir.display()))?;
    let suffixes = parse_suffixes(&recorded_suffixes(&store)?)?;
    let dir = open_directory(&Config::default(), store, suffixes.clone())?;
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // One read transaction: the export is a consistent snapshot.
    let txn = dir.store().read()?;
    let mut text = String::with_capacity(4096);
    let mut first = true;
    for s in &suffixes {
        let key = dir_key(&dir, s);
        for (_, id) in txn.subtree_keys(&key)? {
            let Some(entry) = txn.entry(id)? else {
                continue;
            };
            text.clear();
            if !first {
                text.push('\n');
            }
            first = false;
            let attrs: Vec<(String, Vec<u8>)> = entry
                .attrs
                .iter()
                .flat_map(|a| a.values.iter().map(|v| (a.name.clone(), v.bytes.clone())))
                .collect();
            ldif::write_entry(&mut text, &entry.dn.to_string(), &attrs);
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

fn dir_key(dir: &Directory, dn: &Dn) -> Vec<u8> {
    let mut key = Vec::new();
    for rdn in dn.rdns.iter().rev() {
        key.extend_from_slice(
            dir.normalize_dn(&Dn {
                rdns: vec![rdn.clone()],
            })
            .as_bytes(),
        );
        key.push(0);
    }
    key
}

fn hash_password(scheme: &str, given: Option<String>) -> Result<()> {
    let scheme = Scheme::from_name(scheme.trim_matches(|c| c == '{' || c == '}'))
        .ok_or_else(|| anyhow!("unknown scheme {scheme:?}"))?;
    let pw = match given {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if pw.is_empty() {
        bail!("empty password");
    }
    println!("{}", password::hash(scheme, pw.as_bytes()));
    Ok(())
}

/// Gives each suffix the default access rules once: a base entry without
/// any `aci` gets them (new, imported or from an older release); an admin
/// who removes them later is not overridden, as the meta record says it was done.
async fn ensure_default_acis(dir: &Directory, suffixes: &[Dn]) -> Result<()> {
    let root = dir.root_identity();
    for s in suffixes {
        let marker = format!("default_acis:{}", dir.normalize_dn(s));
        if dir.store().read()?.meta(&marker)?.is_some() {
            continue;
        }
        let has_aci = {
            let txn = dir.store().read()?;
            match txn.id_by_dn(&dir_key(dir, s))? {
                Some(id) => txn.entry(id)?.map(|e| e.has("aci")),
                None => None,
            }
        };
        match has_aci {
            None => continue, // no base entry yet: decide when it exists
            Some(false) => {
                let op = WriteOp::Modify {
                    dn: s.clone(),
                    mods: vec![ferrodir::model::Modification {
                        op: ferrodir::model::ModOp::Add,
                        attr: "aci".into(),
                        values: ferrodir::acl::default_acis(s)
                            .into_iter()
                            .map(String::into_bytes)
                            .collect(),
                    }],
                };
                dir.write(&root, op)
                    .await
                    .with_context(|| format!("adding default access rules to {s}"))?;
                tracing::info!(
                    "added the default access rules to {s} (see docs/access-control.md)"
                );
            }
            Some(true) => {}
        }
        let mut w = dir.store().write()?;
        w.put_meta(&marker, b"1")?;
        w.commit()?;
    }
    Ok(())
}

// ---- replication: the agreement runner and `ferrodir repl` ----------------

/// Starts the supplier side of replication; the first LDAP listener becomes
/// the URL consumers refer writes to. TLS agreements use the `[replication]`
/// trust settings.
fn start_replication(dir: &Arc<Directory>, cfg: &Config) -> Result<tokio::task::JoinHandle<()>> {
    let settings =
        ferrodir::repl::agreement::resolve_tls_settings(&cfg.replication, &cfg.tls, &cfg.data_dir)
            .map_err(|e| anyhow!(e))?;
    ferrodir::repl::agreement::set_tls_settings(settings);
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
    let runner = ferrodir::repl::agreement::spawn_runner(dir.clone(), url);
    let housekeeping = ferrodir::repl::housekeeping::spawn(dir.clone());
    Ok(tokio::spawn(async move {
        let _ = runner.await;
        housekeeping.abort();
    }))
}

#[derive(Subcommand)]
enum ReplCommand {
    /// Show each agreement: consumer, state (in sync / behind N changes /
    /// initialising P% / error), lag, last update and last init.
    Status {
        #[command(flatten)]
        conn: ReplConn,
        /// Machine-readable output (a JSON array, one object per agreement).
        #[arg(long)]
        json: bool,
    },
    /// Test agreements like a "Test" button: the server connects and binds to
    /// each consumer with the agreement's credentials. Prints Pass or Fail: <reason>;
    /// exit code 0 when all pass, 1 otherwise.
    Test {
        #[command(flatten)]
        conn: ReplConn,
        /// DN of the agreement to test (default: all agreements).
        #[arg(long)]
        agreement: Option<String>,
    },
}

#[derive(Args)]
struct ReplConn {
    /// Server to ask (the supplier).
    #[arg(long, default_value = "ldap://127.0.0.1:389")]
    url: String,
    #[arg(long, default_value = "cn=Directory Manager")]
    bind_dn: String,
    /// File whose first line is the password (default: $FERRODIR_ROOT_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

fn repl_command(cmd: ReplCommand) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ok = rt.block_on(async {
        match cmd {
            ReplCommand::Status { conn, json } => repl_status(&conn, json).await.map(|_| true),
            ReplCommand::Test { conn, agreement } => repl_test(&conn, agreement.as_deref()).await,
        }
    })?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn repl_connect(conn: &ReplConn) -> Result<ferrodir::repl::client::Client> {
    let password = match &conn.password_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        None => std::env::var("FERRODIR_ROOT_PASSWORD").map_err(|_| {
            anyhow!("no password: give --password-file or set FERRODIR_ROOT_PASSWORD")
        })?,
    };
    let mut client =
        ferrodir::repl::client::Client::connect_url(&conn.url, std::time::Duration::from_secs(10))
            .await?;
    client.simple_bind(&conn.bind_dn, &password).await?;
    Ok(client)
}

const AGREEMENT_CLASS: &str = "nsDS5ReplicationAgreement";

async fn repl_agreements(
    client: &mut ferrodir::repl::client::Client,
) -> Result<Vec<ferrodir::repl::client::Entry>> {
    Ok(client
        .search(
            ferrodir::directory::repl::MAPPING_TREE_DN,
            ("objectClass", Some(AGREEMENT_CLASS)),
            &["*"],
        )
        .await?)
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// "20260101120000Z" -> "2026-01-01 12:00:00Z"; the epoch means never.
fn show_time(t: Option<String>) -> String {
    match t {
        None => "never".into(),
        Some(t) if t.starts_with("1970") => "never".into(),
        Some(t) if t.len() >= 15 && t.is_ascii() => format!(
            "{}-{}-{} {}:{}:{}Z",
            &t[0..4],
            &t[4..6],
            &t[6..8],
            &t[8..10],
            &t[10..12],
            &t[12..14]
        ),
        Some(t) => t,
    }
}

async fn repl_status(conn: &ReplConn, json: bool) -> Result<()> {
    let mut client = repl_connect(conn).await?;
    let entries = repl_agreements(&mut client).await?;
    client.unbind().await;
    let mut rows = Vec::new();
    for e in &entries {
        let consumer = format!(
            "{}:{}",
            e.first("nsDS5ReplicaHost").unwrap_or_default(),
            e.first("nsDS5ReplicaPort").unwrap_or_else(|| "389".into())
        );
        let mut state = e
            .first("ferrodirReplicationState")
            .unwrap_or_else(|| "unknown".into());
        if e.first("nsds5ReplicaEnabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("off"))
        {
            state = "disabled".into();
        }
        rows.push(vec![
            ("agreement", e.dn.clone()),
            ("supplier", conn.url.clone()),
            ("consumer", consumer),
            (
                "transport",
                e.first("nsDS5ReplicaTransportInfo")
                    .unwrap_or_else(|| "LDAP".into()),
            ),
            ("suffix", e.first("nsDS5ReplicaRoot").unwrap_or_default()),
            ("state", state),
            (
                "lag_seconds",
                e.first("ferrodirReplicationLag").unwrap_or_default(),
            ),
            (
                "changes_sent",
                e.first("nsds5replicaChangesSentSinceStartup")
                    .unwrap_or_default(),
            ),
            (
                "last_update",
                show_time(e.first("nsds5replicaLastUpdateEnd")),
            ),
            (
                "last_update_status",
                e.first("nsds5replicaLastUpdateStatus").unwrap_or_default(),
            ),
            ("last_init", show_time(e.first("nsds5replicaLastInitEnd"))),
            (
                "last_init_status",
                e.first("nsds5replicaLastInitStatus").unwrap_or_default(),
            ),
        ]);
    }
    let mut out = String::new();
    if json {
        out.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            for (j, (k, v)) in row.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let numeric = matches!(*k, "lag_seconds" | "changes_sent");
                let value = if numeric && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    v.clone()
                } else if numeric {
                    "null".into()
                } else {
                    json_str(v)
                };
                out.push_str(&format!("{}:{value}", json_str(k)));
            }
            out.push('}');
        }
        out.push_str("]\n");
    } else if rows.is_empty() {
        out.push_str("no replication agreements on this server\n");
    } else {
        for row in &rows {
            for (k, v) in row {
                let shown = match *k {
                    "supplier" => format!("{v} (this server)"),
                    "lag_seconds" if v.is_empty() => "unknown".into(),
                    _ => v.clone(),
                };
                if *k == "agreement" {
                    out.push_str(&format!("{shown}\n"));
                } else if !shown.is_empty() {
                    out.push_str(&format!("  {:<19} {shown}\n", k.replace('_', " ")));
                }
            }
        }
    }
    print!("{out}");
    Ok(())
}

async fn repl_test(conn: &ReplConn, agreement: Option<&str>) -> Result<bool> {
    let mut client = repl_connect(conn).await?;
    let targets: Vec<String> = match agreement {
        Some(dn) => vec![dn.to_string()],
        None => repl_agreements(&mut client)
            .await?
            .into_iter()
            .map(|e| e.dn)
            .collect(),
    };
    if targets.is_empty() {
        println!("Fail: no replication agreements on this server");
        return Ok(false);
    }
    let mut all_pass = true;
    for dn in &targets {
        let verdict = match client
            .extended(
                "test agreement",
                ferrodir::repl::agreement::OID_TEST_AGREEMENT,
                ferrodir::ops::replication::encode_test_request(dn),
            )
            .await
        {
            Ok(v) => String::from_utf8_lossy(&v).to_string(),
            Err(e) => format!("Fail: {e}"),
        };
        all_pass &= verdict.starts_with("Pass");
        if targets.len() == 1 {
            println!("{verdict}");
        } else {
            println!("{dn}: {verdict}");
        }
    }
    client.unbind().await;
    Ok(all_pass)
}
