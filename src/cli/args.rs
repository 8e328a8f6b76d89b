//! The command line: every command, subcommand and flag, in one place.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ferrodir",
    version,
    about = "An LDAPv3 directory server on LMDB with multi-master replication"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Every entry with its per-value CSNs, tombstones and the RUV, for
        /// comparing replicas (format: src/directory/state_export.rs).
        #[arg(long)]
        replication_state: bool,
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
        /// Scheme: PBKDF2-SHA512 (default), PBKDF2-SHA256, ARGON2, SSHA512, SSHA256, SSHA, SHA,
        /// CRYPT (SHA-512-crypt, `{CRYPT}$6$rounds=5000$...`).
        #[arg(long, short = 'h', default_value = "PBKDF2-SHA512")]
        scheme: String,
        /// Print help.
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
        /// The password; read from standard input when absent.
        password: Option<String>,
    },
    /// Replication: agreement status, connection test, conflict entries,
    /// comparing replicas.
    #[command(subcommand)]
    Repl(ReplCommand),
}

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// TOML configuration file (see config/ferrodir.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (default ./ferrodir-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// LDAP listener address, repeatable (default 127.0.0.1:389). Listeners
    /// given here replace the configured ones (LDAP and LDAPS).
    #[arg(long)]
    pub ldap: Vec<String>,
    /// LDAPS listener address, repeatable (default 127.0.0.1:636 when it can
    /// be bound). Listeners given here replace the configured ones.
    #[arg(long)]
    pub ldaps: Vec<String>,
    /// Naming context, repeatable (default dc=example,dc=com for a new data directory).
    #[arg(long)]
    pub suffix: Vec<String>,
    /// Serve Prometheus/OpenMetrics metrics at http://ADDR/metrics (off
    /// by default; counts and times only, no secrets). Example
    /// 127.0.0.1:9389.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// ldapi:// listener: a Unix socket where `-Y EXTERNAL` binds as the
    /// local user (root as the root DN). Default `<data dir>/ldapi`;
    /// `none` turns it off.
    #[arg(long, value_name = "PATH|none")]
    pub ldapi: Option<String>,
    /// Where the access log goes (one line per operation): `stderr`
    /// (default), `stdout`, a file appended to, or `none` (no lines are
    /// formatted at all, as slapd's `loglevel 0`; the operation counters
    /// of cn=monitor and /metrics still count).
    #[arg(long, value_name = "stderr|stdout|FILE|none")]
    pub access_log: Option<String>,
    /// Where everything else is logged (start-up, replication, warnings,
    /// errors): `stderr` (default), `stdout`, or a file appended to.
    #[arg(long, value_name = "stderr|stdout|FILE")]
    pub error_log: Option<String>,
}

#[derive(Subcommand)]
pub enum ReplCommand {
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
    /// Conflict entries (an entry that lost a contested DN, named
    /// nsuniqueid=<id>+<rdn>) and glue entries (deleted entries kept for
    /// their children) left by concurrent changes on different suppliers.
    /// Like 389-ds's dsconf repl-conflict.
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    /// Compare the replicas of a suffix: read every entry (conflict and glue
    /// entries included) from each server once their RUVs hold the same
    /// changes, print a digest per first-level subtree and name every entry
    /// that differs. Exit code 0 when identical, 1 when they differ, 2 on
    /// error.
    Check(CheckArgs),
    /// Retire the replica ID of a decommissioned server (389-ds's
    /// cleanallruv): it leaves every replica's RUV and changelog. The
    /// retirement travels with replication to every replica; each one
    /// finishes once it and its consumers hold every change of that ID.
    /// Running it again is harmless; it resumes after restarts. Prints the
    /// state on this server; exit code 0 once retired here, 1 while waiting.
    RetireId(RetireArgs),
    /// Enable the master role (docs/master-slave.md): create a
    /// Synchronization Key and print it with this server's Device ID. A
    /// slave joins with `ferrodir repl join --key`. Run it again for
    /// another key (one per site, so each can be revoked alone).
    Master(MasterArgs),
    /// Synchronization keys on a master: list them, revoke one.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Slaves that joined a master: list them, remove one.
    #[command(subcommand)]
    Slaves(SlavesCommand),
    /// Make this (fresh) server a slave of a master: check the master's
    /// certificate against the key's pin, obtain a replication identity,
    /// copy every entry, then follow each change (RFC 4533 refreshAndPersist
    /// over TLS). Writes on a slave are referred to the master.
    Join(JoinArgs),
    /// Stop following the master (the data stays; the suffixes become
    /// writable again). Remove the slave on the master with `repl slaves remove`.
    Leave {
        #[command(flatten)]
        conn: ReplConn,
    },
}

#[derive(Args)]
pub struct MasterArgs {
    #[command(flatten)]
    pub conn: ReplConn,
    /// A note kept with the key (which site it is for).
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Every key: ID, creation time, how many slaves joined with it.
    List {
        #[command(flatten)]
        conn: ReplConn,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it can no longer join a slave (slaves that joined with
    /// it stay; remove them with `repl slaves remove`).
    Revoke {
        #[command(flatten)]
        conn: ReplConn,
        /// The key ID (`repl keys list`).
        id: String,
    },
}

#[derive(Subcommand)]
pub enum SlavesCommand {
    /// Every slave: Device ID, host, key it joined with, when.
    List {
        #[command(flatten)]
        conn: ReplConn,
        #[arg(long)]
        json: bool,
    },
    /// Remove a slave: its replication identity stops binding.
    Remove {
        #[command(flatten)]
        conn: ReplConn,
        /// The slave's Device ID.
        device: String,
    },
}

#[derive(Args)]
pub struct JoinArgs {
    /// This server (the slave), as its root DN.
    #[command(flatten)]
    pub conn: ReplConn,
    /// The master, ldaps://HOST[:636] (or ldap://HOST with StartTLS).
    #[arg(long)]
    pub master: String,
    /// The Synchronization Key printed by `ferrodir repl master`.
    #[arg(long)]
    pub key: String,
    /// The name this slave gives the master (default: this host's name).
    #[arg(long)]
    pub host: Option<String>,
    /// Seconds to wait for the first full copy (0: do not wait).
    #[arg(long, default_value_t = 600)]
    pub wait: u64,
}

#[derive(Args)]
pub struct RetireArgs {
    #[command(flatten)]
    pub conn: ReplConn,
    /// The replica ID to retire (nsDS5ReplicaId of the server that is gone).
    pub rid: u16,
    /// The replicated suffix.
    #[arg(long)]
    pub suffix: String,
    /// Seconds to wait for this server to finish (0: report and return).
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
}

#[derive(Subcommand)]
pub enum ConflictsCommand {
    /// Every conflict and glue entry: DN, kind, the DN it conflicts with,
    /// entryCSN.
    List {
        #[command(flatten)]
        conn: ReplConn,
        /// Suffix to look in, repeatable (default: every naming context).
        #[arg(long)]
        suffix: Vec<String>,
        /// Machine-readable output (a JSON array, one object per entry).
        #[arg(long)]
        json: bool,
    },
    /// A conflict entry and the entry holding its plain DN side by side, all
    /// attributes (operational ones included); for a glue entry, the entry
    /// and its children.
    Show {
        #[command(flatten)]
        conn: ReplConn,
        /// DN of the conflict or glue entry.
        dn: String,
    },
    /// Settle a naming conflict by deleting one of the two entries. A glue
    /// entry cannot be resolved this way: it goes away by itself when its
    /// last child is deleted or moved elsewhere.
    Resolve {
        #[command(flatten)]
        conn: ReplConn,
        /// DN of the conflict entry (nsuniqueid=...+<rdn>,<parent>).
        dn: String,
        #[command(flatten)]
        action: ResolveAction,
    },
}

/// What `repl conflicts resolve` keeps.
#[derive(Args, Debug, Clone, Copy)]
#[group(required = true, multiple = false)]
pub struct ResolveAction {
    /// Keep the conflict entry: delete the entry holding the plain DN, so
    /// that the conflict entry takes the plain DN (on every replica), then
    /// check that it did and print its new DN.
    #[arg(long)]
    pub keep_this: bool,
    /// Keep the entry holding the plain DN: delete the conflict entry (after
    /// checking that the other entry exists).
    #[arg(long)]
    pub keep_other: bool,
    /// Delete the conflict entry, whether or not another entry holds the
    /// plain DN.
    #[arg(long)]
    pub delete: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// A server holding a replica of the suffix; give two or more.
    #[arg(long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Identity used on every server (it must be able to read everything:
    /// the root DN).
    #[arg(long, default_value = "cn=Directory Manager")]
    pub bind_dn: String,
    /// File whose first line is the password, the same on every server
    /// (default: $FERRODIR_ROOT_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// The replicated suffix to compare.
    #[arg(long)]
    pub suffix: String,
    /// Seconds to wait for the servers' RUVs to hold the same changes (and
    /// stay still while the entries are read) before comparing anyway.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ReplConn {
    /// Server to ask (the supplier).
    #[arg(long, default_value = "ldap://127.0.0.1:389")]
    pub url: String,
    #[arg(long, default_value = "cn=Directory Manager")]
    pub bind_dn: String,
    /// File whose first line is the password (default: $FERRODIR_ROOT_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}
