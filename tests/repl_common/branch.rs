//! A branch office: one master and one read-only slave that follows it.
//!
//! [`Branch::start`] is the only place that decides *how* the slave follows
//! the master: `ferrodir repl master` prints a Synchronization Key and
//! `ferrodir repl join` makes the slave follow the master over TLS
//! (docs/master-slave.md).
//! Used from a test crate that has `mod repl_common;` at its root.

#![allow(dead_code)]

use crate::repl_common::*;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a change may take to reach the slave.
pub const REPLICATION: Duration = Duration::from_secs(60);

pub struct Branch {
    /// The writable master (replica ID 1).
    pub master: Server,
    /// The read-only slave: it answers reads and refers writes to the master.
    pub slave: Server,
}

impl Branch {
    /// Starts a master and a slave (both [`Server::fast`]) and makes the
    /// slave follow the master; returns once the slave is initialised.
    pub fn start() -> Branch {
        let (master, mut slaves) = master_slave::master_and_slaves(1);
        let slave = slaves.pop().expect("one slave");
        Branch {
            master: master.server,
            slave,
        }
    }

    /// Stops the master process (SIGTERM) and checks its port is closed:
    /// the link to the master is down.
    pub fn stop_master(&mut self) {
        self.master.stop();
        assert!(
            TcpStream::connect(("127.0.0.1", self.master.port)).is_err(),
            "the master still accepts connections after stopping"
        );
    }

    /// Starts the master again on the same data directory and port; the
    /// slave catches up with what it missed.
    pub fn start_master(&mut self) {
        self.master.launch();
    }

    /// Waits until `done` holds on the slave (polled, with a deadline);
    /// panics with both logs' tails after [`REPLICATION`].
    pub fn wait_on_slave(&self, what: &str, done: impl Fn(&Server) -> bool) {
        let deadline = Instant::now() + REPLICATION;
        while !done(&self.slave) {
            if Instant::now() > deadline {
                let tail = |s: &Server| {
                    let t = s.log_text();
                    let lines: Vec<&str> = t.lines().rev().take(30).collect();
                    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
                };
                panic!(
                    "the slave did not get {what} within {REPLICATION:?}\n--- master log:\n{}\n--- slave log:\n{}",
                    tail(&self.master),
                    tail(&self.slave)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
