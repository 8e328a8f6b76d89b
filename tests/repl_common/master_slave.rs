//! Master and slaves the ClearOS way: `ferrodir repl master` prints a
//! Synchronization Key, `ferrodir repl join --key` on a fresh server makes
//! it a slave that follows the master over TLS. Used from a test crate
//! that has `mod repl_common;` at its root.

#![allow(dead_code)]

use super::*;
use std::path::PathBuf;
use std::process::Output;

/// A server with an LDAPS listener on its own free port (the master).
pub struct Master {
    pub server: Server,
    pub ldaps_port: u16,
}

impl Master {
    pub fn start() -> Master {
        let ldaps_port = free_port();
        let server = Server::start_with_config(
            "password_scheme = \"SSHA512\"\n",
            &["--ldaps", &format!("127.0.0.1:{ldaps_port}")],
        );
        Master { server, ldaps_port }
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }
}

/// A file holding the root password, for the CLI's --password-file.
pub fn password_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pw");
    std::fs::write(&path, format!("{}\n", root_password())).expect("password file");
    (dir, path)
}

/// Runs a `ferrodir repl ...` command against `url` as the root DN.
pub fn repl_cli(url: &str, args: &[&str]) -> Output {
    let (_dir, pw) = password_file();
    let pw = pw.display().to_string();
    let mut all: Vec<&str> = vec!["repl"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", url, "--password-file", &pw]);
    ferrodir(&all, None)
}

/// `ferrodir repl master` on the master: the key it printed.
pub fn new_key(master: &Master) -> String {
    let o = repl_cli(&master.server.url(), &["master"]);
    assert!(
        o.status.success(),
        "repl master failed: {}{}",
        out(&o),
        err(&o)
    );
    out(&o)
        .lines()
        .find_map(|l| l.strip_prefix("Synchronization Key: "))
        .map(|k| k.trim().to_string())
        .unwrap_or_else(|| panic!("no key in: {}", out(&o)))
}

/// `ferrodir repl join` on `slave` (waits for the first full copy).
pub fn join(master: &Master, slave: &Server, key: &str) -> Output {
    repl_cli(
        &slave.url(),
        &[
            "join",
            "--master",
            &master.ldaps_url(),
            "--key",
            key,
            "--wait",
            "60",
        ],
    )
}

/// Starts a master and `n` slaves joined to it with one key.
pub fn master_and_slaves(n: usize) -> (Master, Vec<Server>) {
    let master = Master::start();
    let key = new_key(&master);
    let slaves: Vec<Server> = (0..n)
        .map(|_| {
            let slave = Server::fast();
            let o = join(&master, &slave, &key);
            assert!(
                o.status.success(),
                "repl join failed: {}{}",
                out(&o),
                err(&o)
            );
            slave
        })
        .collect();
    (master, slaves)
}
