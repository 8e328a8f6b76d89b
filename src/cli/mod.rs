//! The `ferrodir` command line: one module per command family. Commands
//! call the library's layers (directory setup, replication sessions, the
//! server); none opens the store itself.

pub mod args;
mod data;
mod repl;
mod serve;

use anyhow::Result;
use args::{Cli, Command};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => serve::serve(cli.serve),
        Some(Command::Serve(mut args)) => {
            args.config = args.config.or(cli.serve.config);
            serve::serve(args)
        }
        Some(Command::Import {
            data_dir,
            suffix,
            batch,
            file,
        }) => data::import(&data_dir, &suffix, batch, &file),
        Some(Command::Export {
            data_dir,
            output,
            replication_state,
        }) => data::export(&data_dir, output.as_deref(), replication_state),
        Some(Command::HashPassword {
            scheme, password, ..
        }) => data::hash_password(&scheme, password),
        Some(Command::Backup { data_dir, out }) => data::backup(&data_dir, &out),
        Some(Command::Restore {
            data_dir,
            force,
            backup,
        }) => data::restore(&backup, &data_dir, force),
        Some(Command::Repl(cmd)) => repl::run(cmd),
    }
}
