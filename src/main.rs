//! The `ferrodir` binary: parse the command line and run it (src/cli).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod cli;

use clap::Parser;

/// mimalloc: the request path allocates many small short-lived buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(e) = cli::run(cli::args::Cli::parse()) {
        eprintln!("ferrodir: {e:#}");
        std::process::exit(1);
    }
}
