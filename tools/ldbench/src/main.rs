//! ldbench: a load generator for any LDAPv3 server, and a deterministic
//! LDIF generator for its data. See docs/BENCHMARKS.md.

mod gen;
mod ldap;
mod propagate;
mod report;
mod run;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use gen::{GenOptions, GroupStyle, PasswordScheme};
use run::{RunOptions, Workload};

#[derive(Parser, Debug)]
#[command(
    name = "ldbench",
    version,
    about = "LDAPv3 load generator and data generator"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write a deterministic LDIF data set.
    Gen(GenArgs),
    /// Run a workload against a server and report throughput and latency.
    Run(Box<RunArgs>),
    /// Time a password change on a master until each replica shows it.
    Propagate(PropagateArgs),
}

#[derive(Args, Debug)]
struct PropagateArgs {
    /// The master (writes), ldap://HOST:PORT.
    #[arg(long)]
    master: String,
    /// A replica to watch, ldap://HOST:PORT; repeat for each.
    #[arg(long = "slave", required = true)]
    slaves: Vec<String>,
    /// DN to bind as on the master and the replicas.
    #[arg(long, default_value = "cn=Directory Manager")]
    bind_dn: String,
    #[arg(long, env = "LDBENCH_BIND_PASSWORD", hide_env_values = true)]
    bind_password: String,
    /// Password changes, one after the other.
    #[arg(long, default_value_t = 50)]
    changes: u64,
    /// Users uid=user1..userN under --people.
    #[arg(long, default_value_t = 300)]
    users: u64,
    #[arg(long, default_value = "ou=people,dc=example,dc=com")]
    people: String,
    /// Pause between two reads of one replica, in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_interval_ms: u64,
    /// Seconds to wait for a replica to show a change.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Read this process's CPU time and RSS over the window (the master).
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct GenArgs {
    /// Number of users uid=user1..userN,ou=people.
    #[arg(long, default_value_t = 10_000)]
    entries: u64,
    /// Number of groups (default: entries/100, at least 1).
    #[arg(long)]
    groups: Option<u64>,
    /// Members per group.
    #[arg(long, default_value_t = 20)]
    members: u64,
    #[arg(long, default_value = "dc=example,dc=com")]
    suffix: String,
    #[arg(long, value_enum, default_value_t = PasswordScheme::Ssha)]
    password_scheme: PasswordScheme,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Object classes of the groups.
    #[arg(long, value_enum, default_value_t = GroupStyle::Extensible)]
    group_style: GroupStyle,
    /// Output file ("-" for standard output).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Server to load, ldap://HOST:PORT.
    #[arg(long)]
    url: String,
    /// repl-lag: the replica to watch, or several, comma-separated (a lag
    /// histogram each, merged in the summary).
    #[arg(long)]
    url2: Option<String>,
    #[arg(long, value_enum)]
    workload: Workload,
    /// Concurrent connections (each with one outstanding operation).
    #[arg(long, short = 'c', default_value_t = 4)]
    connections: usize,
    /// Measured time in seconds (after --warmup).
    #[arg(long, conflicts_with = "ops")]
    duration: Option<f64>,
    /// Number of operations to measure (instead of --duration).
    #[arg(long)]
    ops: Option<u64>,
    /// Seconds of unmeasured load before the measured window.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// DN to bind as before operations (all but `bind`); writes need one.
    #[arg(long)]
    bind_dn: Option<String>,
    #[arg(long, env = "LDBENCH_BIND_PASSWORD", hide_env_values = true)]
    bind_password: Option<String>,
    /// Users in the data set (uid=user1..userN), as given to `gen`.
    #[arg(long, default_value_t = 10_000)]
    entries: u64,
    #[arg(long, default_value = "dc=example,dc=com")]
    base: String,
    /// Run id for names of added entries (add/delete/repl-lag); default: time-based.
    #[arg(long)]
    run_id: Option<String>,
    /// mixed: the fraction of operations that are modifies.
    #[arg(long, default_value_t = 0.1)]
    write_ratio: f64,
    /// search-page: page size.
    #[arg(long, default_value_t = 100)]
    page_size: i64,
    /// search-page: pages read per operation.
    #[arg(long, default_value_t = 5)]
    pages: u32,
    /// repl-lag: writes per second (open loop).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// repl-lag: how often --url2 is polled, in milliseconds.
    #[arg(long, default_value_t = 2)]
    poll_interval_ms: u64,
    /// delete without --run-id: entries to pre-create (default: --ops or 1000).
    #[arg(long)]
    precreate: Option<u64>,
    /// Per-operation timeout in seconds (then: error, reconnect).
    #[arg(long, default_value_t = 10.0)]
    op_timeout: f64,
    /// Generator threads (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Output format on standard output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// No progress or first-error messages on standard error.
    #[arg(long, short)]
    quiet: bool,
}

fn do_gen(a: GenArgs) -> Result<()> {
    let opts = GenOptions {
        entries: a.entries,
        groups: a.groups.unwrap_or((a.entries / 100).max(1)),
        members_per_group: a.members,
        suffix: a.suffix,
        password_scheme: a.password_scheme,
        seed: a.seed,
        group_style: a.group_style,
    };
    if a.output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        gen::generate(&opts, &mut w)?;
        w.flush()?;
    } else {
        let f =
            File::create(&a.output).with_context(|| format!("create {}", a.output.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        gen::generate(&opts, &mut w)?;
        w.flush()?;
    }
    Ok(())
}

/// Exit status when a run completed no operation at all.
const EXIT_NO_OPS: u8 = 2;

fn do_run(a: RunArgs) -> Result<ExitCode> {
    let o = RunOptions {
        url: a.url,
        url2: a.url2,
        workload: a.workload,
        connections: a.connections.max(1),
        duration: a.duration,
        ops: a.ops,
        warmup: a.warmup,
        seed: a.seed,
        bind_dn: a.bind_dn,
        bind_password: a.bind_password,
        entries: a.entries,
        base: a.base,
        run_id: a.run_id,
        write_ratio: a.write_ratio,
        page_size: a.page_size,
        pages: a.pages,
        rate: a.rate,
        poll_interval_ms: a.poll_interval_ms,
        precreate: a.precreate,
        op_timeout: a.op_timeout,
        threads: a.threads.max(1),
        quiet: a.quiet,
    };
    let rt = if o.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(o.threads)
            .enable_all()
            .build()?
    };
    let rep = rt.block_on(run::run(o))?;
    let json = serde_json::to_string_pretty(&rep)?;
    if let Some(p) = &a.json {
        std::fs::write(p, format!("{json}\n")).with_context(|| format!("write {}", p.display()))?;
    }
    match a.format {
        Format::Table => print!("{}", rep.table()),
        Format::Json => println!("{json}"),
    }
    Ok(if rep.ops == 0 {
        ExitCode::from(EXIT_NO_OPS)
    } else {
        ExitCode::SUCCESS
    })
}

fn do_propagate(a: PropagateArgs) -> Result<ExitCode> {
    let o = propagate::PropagateOptions {
        master: a.master,
        slaves: a.slaves,
        bind_dn: a.bind_dn,
        bind_password: a.bind_password,
        changes: a.changes,
        users: a.users,
        people: a.people,
        poll_ms: a.poll_interval_ms,
        timeout: std::time::Duration::from_secs_f64(a.timeout.max(0.0)),
        run_id: format!("{:x}", std::process::id()),
        watch_pid: a.watch_pid,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rep = rt.block_on(propagate::run(o))?;
    let json = serde_json::to_string_pretty(&rep)?;
    if let Some(p) = &a.json {
        std::fs::write(p, format!("{json}\n")).with_context(|| format!("write {}", p.display()))?;
    }
    println!("{json}");
    // Every (change, replica) pair must have been seen for figures to mean anything.
    Ok(
        if rep.pairs_missed == 0 && rep.slaves_bind_new_password == rep.slaves {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_NO_OPS)
        },
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Gen(a) => do_gen(a).map(|()| ExitCode::SUCCESS),
        Cmd::Run(a) => do_run(*a),
        Cmd::Propagate(a) => do_propagate(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ldbench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ldbench").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_run() {
        let c = parse(&[
            "run",
            "--url",
            "ldap://127.0.0.1:1389",
            "--workload",
            "search-eq",
            "--connections",
            "8",
            "--duration",
            "2.5",
            "--bind-dn",
            "cn=admin,dc=example,dc=com",
            "--bind-password",
            "x",
            "--json",
            "/tmp/x.json",
        ])
        .expect("parses");
        let Cmd::Run(r) = c.cmd else {
            panic!("not run")
        };
        assert_eq!(r.workload, Workload::SearchEq);
        assert_eq!(r.connections, 8);
        assert_eq!(r.duration, Some(2.5));
        assert_eq!(r.ops, None);
        assert_eq!(r.write_ratio, 0.1);
        assert_eq!(r.page_size, 100);
        assert_eq!(r.pages, 5);
        assert_eq!(r.threads, 1);
    }

    #[test]
    fn parse_workloads() {
        for w in [
            "bind",
            "search-eq",
            "search-sub",
            "search-page",
            "add",
            "modify",
            "delete",
            "mixed",
            "repl-lag",
        ] {
            let c = parse(&["run", "--url", "ldap://h:1", "--workload", w, "--ops", "5"]);
            assert!(c.is_ok(), "{w}");
        }
        assert!(parse(&[
            "run",
            "--url",
            "ldap://h:1",
            "--workload",
            "nope",
            "--ops",
            "1"
        ])
        .is_err());
        // --duration and --ops are exclusive
        assert!(parse(&[
            "run",
            "--url",
            "ldap://h:1",
            "--workload",
            "bind",
            "--ops",
            "1",
            "--duration",
            "1"
        ])
        .is_err());
    }

    #[test]
    fn parse_propagate() {
        let c = parse(&[
            "propagate",
            "--master",
            "ldap://127.0.0.1:1",
            "--slave",
            "ldap://127.0.0.1:2",
            "--slave",
            "ldap://127.0.0.1:3",
            "--bind-password",
            "x",
        ])
        .expect("parses");
        let Cmd::Propagate(p) = c.cmd else {
            panic!("not propagate")
        };
        assert_eq!(p.slaves.len(), 2);
        assert_eq!(p.changes, 50);
        assert_eq!(p.poll_interval_ms, 5);
        // At least one replica to watch.
        assert!(parse(&[
            "propagate",
            "--master",
            "ldap://h:1",
            "--bind-password",
            "x"
        ])
        .is_err());
    }

    #[test]
    fn parse_gen() {
        let c = parse(&["gen", "--entries", "100", "--seed", "7", "-o", "x.ldif"]).expect("parses");
        let Cmd::Gen(g) = c.cmd else {
            panic!("not gen")
        };
        assert_eq!(g.entries, 100);
        assert_eq!(g.seed, 7);
        assert_eq!(g.suffix, "dc=example,dc=com");
        assert_eq!(g.password_scheme, PasswordScheme::Ssha);
        assert!(parse(&["gen", "--entries", "x", "-o", "f"]).is_err());
    }
}
