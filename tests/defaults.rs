//! The embedded default: `ferrodir serve` with nothing but a data directory
//! and a listener; first-start root password; port errors; clean shutdown.

mod common;

use common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A server process spawned by hand (the harness always sets the root
/// password); killed on drop.
struct Proc {
    child: Child,
    out: PathBuf,
}

impl Proc {
    fn spawn(args: &[&str], root_pw: Option<&str>, out: &Path) -> Proc {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_remove("FERRODIR_ROOT_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f));
        if let Some(pw) = root_pw {
            cmd.env("FERRODIR_ROOT_PASSWORD", pw);
        }
        Proc {
            child: cmd.spawn().expect("spawn ferrodir"),
            out: out.to_path_buf(),
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("ferrodir exited early ({st}):\n{}", self.text());
            }
            // The listener is bound before start-up finishes: also wait for the "ready" log line.
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && self.text().contains(" ready") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ferrodir did not listen:\n{}", self.text());
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn embedded_default_serves_the_example_suffix() {
    // Exactly the documented minimal command line (the harness adds nothing else).
    let s = Server::start();
    let url = s.url();
    let o = run_tool(
        "ldapsearch",
        &["-x", "-H", &url, "-b", "dc=example,dc=com"],
        None,
    );
    assert_code(&o, 0, "anonymous ldapsearch -x -b dc=example,dc=com");
    assert!(out(&o).contains("dn: dc=example,dc=com"), "{}", out(&o));
    let e = read_entry(&url, SUFFIX, &["objectClass", "dc"]).expect("base entry");
    let oc: Vec<String> = e
        .get("objectClass")
        .iter()
        .map(|v| v.to_ascii_lowercase())
        .collect();
    assert!(oc.contains(&"domain".to_string()), "{oc:?}");
    assert_eq!(e.get("dc"), vec!["example"]);
    let o = search_as(&url, Who::Anon, "", &["-s", "base", "namingContexts"]);
    assert_eq!(entries(&o)[0].get("namingContexts"), vec![SUFFIX]);
    // The whole tree is just the base entry.
    let o = search_root(&url, SUFFIX, &["1.1"]);
    assert_eq!(entries(&o).len(), 1);
}

#[test]
fn no_subcommand_means_serve_and_suffix_flag() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let addr = format!("127.0.0.1:{port}");
    let pw = root_password();
    let mut p = Proc::spawn(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--ldap",
            &addr,
            "--suffix",
            "o=Corp",
        ],
        Some(&pw),
        &dir.path().join("out.log"),
    );
    p.wait_listening(port);
    let url = format!("ldap://{addr}");
    let o = search_as(
        &url,
        Who::Anon,
        "o=Corp",
        &["-s", "base", "objectClass", "o"],
    );
    assert_code(&o, 0, "base entry of --suffix o=Corp");
    let e = &entries(&o)[0];
    assert!(
        e.get("objectClass")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("organization")),
        "{e:?}"
    );
    assert_eq!(e.get("o"), vec!["Corp"]);
    let o = search_as(&url, Who::Anon, SUFFIX, &["-s", "base"]);
    assert_code(
        &o,
        32,
        "dc=example,dc=com is not served with --suffix o=Corp",
    );
}

#[test]
fn generated_root_password_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let addr = format!("127.0.0.1:{port}");
    let args = [
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--ldap",
        &addr,
    ];
    let url = format!("ldap://{addr}");

    let first_out = dir.path().join("first.log");
    let mut p = Proc::spawn(&args, None, &first_out);
    p.wait_listening(port);
    let text = p.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Generated password"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one generated-password line expected:\n{text}"
    );
    let pw = lines[0].rsplit(": ").next().unwrap().trim().to_string();
    assert!(lines[0].contains("cn=Directory Manager"), "{}", lines[0]);
    assert!(pw.len() >= 16, "generated password too short: {pw:?}");
    assert_eq!(
        bind_code(&url, ROOT_DN, &pw),
        0,
        "the printed password binds"
    );
    assert_eq!(bind_code(&url, ROOT_DN, "wrong"), 49);
    p.signal("TERM");
    let st = p
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert!(st.success(), "exit status {st}");

    // Second start: not printed again, still the same password; the
    // environment variable no longer changes it (first start only).
    let second_out = dir.path().join("second.log");
    let mut p = Proc::spawn(&args, Some("ignored-on-second-start"), &second_out);
    p.wait_listening(port);
    assert_eq!(
        bind_code(&url, ROOT_DN, &pw),
        0,
        "generated password after restart"
    );
    assert_eq!(bind_code(&url, ROOT_DN, "ignored-on-second-start"), 49);
    // Read after two binds were served: everything the start printed is out.
    let text = p.text();
    assert!(
        !text.contains("Generated password"),
        "password printed again:\n{text}"
    );
    assert!(
        !text.contains(&pw),
        "the password appears in the second start's output:\n{text}"
    );
    // The password is not stored in clear in the data directory.
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(
            !bytes.windows(pw.len()).any(|w| w == pw.as_bytes()),
            "root password stored in clear text"
        );
    }
}

#[test]
fn port_in_use_fails_fast_with_advice() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let o = Command::new(bin())
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--ldap",
            &addr,
        ])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // Fails at once rather than waiting for the port: liveness, not speed.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert!(!o.status.success(), "must fail when the port is in use");
    let e = err(&o);
    assert!(e.contains(&addr), "the message should name {addr}:\n{e}");
    assert!(
        e.contains("--ldap 127.0.0.1:3389"),
        "the message should suggest --ldap 127.0.0.1:3389:\n{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    assert!(
        !data.exists(),
        "nothing should be created on disk when the port cannot be bound"
    );
    // An unparsable address is a clear error too.
    let o = Command::new(bin())
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--ldap",
            "not-an-address",
        ])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(err(&o).contains("not-an-address"), "{}", err(&o));
    drop(taken);
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for sig in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let data = dir.path().join("data");
        let addr = format!("127.0.0.1:{port}");
        let mut p = Proc::spawn(
            &[
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--ldap",
                &addr,
            ],
            Some(&root_password()),
            &dir.path().join("out.log"),
        );
        p.wait_listening(port);
        let url = format!("ldap://{addr}");
        assert_code(&ldapadd_root(&url, SAMPLE), 0, "load");
        // An open idle client connection must not hold up the shutdown.
        let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
        p.signal(sig);
        let st = p
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no exit within 10 s of SIG{sig}"));
        assert_eq!(
            st.code(),
            Some(0),
            "SIG{sig}: exit status {st}\n{}",
            p.text()
        );
        assert!(!p.text().contains("panicked"), "{}", p.text());
        // The data is intact for the next start.
        let mut q = Proc::spawn(
            &[
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--ldap",
                &addr,
            ],
            Some(&root_password()),
            &dir.path().join("out2.log"),
        );
        q.wait_listening(port);
        let o = search_root(&url, SUFFIX, &["1.1"]);
        assert_eq!(entries(&o).len(), 6, "after SIG{sig} restart");
    }
}
