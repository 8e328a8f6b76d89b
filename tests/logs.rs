//! The logs an admin expects: the access log (one line per operation with
//! connection, operation and message numbers, result code and elapsed
//! time) and the error log separable; warnings name their connection; a
//! generated root password never lands on a log stream.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A bind as the root DN with a wrong password: result 49.
fn failed_root_bind(s: &Server) {
    let bad = run_tool(
        "ldapwhoami",
        &["-x", "-H", &s.url(), "-D", ROOT_DN, "-w", "wrong"],
        None,
    );
    assert_eq!(code(&bad), 49);
}

#[test]
fn access_and_error_logs_go_their_own_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let access = dir.path().join("access.log");
    let s = Server::start_with(&["--access-log", access.to_str().expect("path")]);
    let o = search_root(&s.url(), SUFFIX, &["-s", "base", "(objectClass=*)", "dc"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    failed_root_bind(&s);
    // Malformed bytes: the warning names the connection.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    raw.write_all(&[0x30, 0x03, 0x02, 0x01, 0xff, 0x00, 0x00])
        .expect("write");
    let mut sink = Vec::new();
    raw.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = raw.read_to_end(&mut sink);
    s.wait_log(
        "the warning about the malformed message",
        Duration::from_secs(10),
        |l| {
            l.lines()
                .any(|l| l.contains("WARN") && l.contains("conn{id=") && l.contains("malformed"))
        },
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let access_text = loop {
        let t = std::fs::read_to_string(&access).unwrap_or_default();
        if t.contains("BIND") && t.contains("result=49") || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let search = access_text
        .lines()
        .find(|l| l.contains("SRCH"))
        .unwrap_or_else(|| panic!("no search in the access log:\n{access_text}"));
    for field in ["conn=", " op=", " msgid=", "result=0", "etime="] {
        assert!(search.contains(field), "{field} missing in: {search}");
    }
    assert!(
        access_text
            .lines()
            .any(|l| l.contains("BIND") && l.contains("result=49")),
        "{access_text}"
    );
    assert!(!access_text.contains("listening"), "{access_text}");
    // The error log (the server's standard error here) has no operations.
    let error_text = s.log_text();
    assert!(error_text.contains(" ready"), "{error_text}");
    assert!(!error_text.contains("SRCH"), "{error_text}");
    assert!(!error_text.contains("etime="), "{error_text}");
}

/// Runs `ferrodir serve` on a fresh data directory without a root password,
/// until it is ready or exits; returns (exit status if it exited, stdout,
/// stderr).
fn first_start(extra: &[&str]) -> (Option<std::process::ExitStatus>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let port = free_port();
    let mut child = Command::new(bin())
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--ldap", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env_remove("FERRODIR_ROOT_PASSWORD")
        .stdout(Stdio::from(std::fs::File::create(&out_path).expect("out")))
        .stderr(Stdio::from(std::fs::File::create(&err_path).expect("err")))
        .spawn()
        .expect("spawn ferrodir");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        let both = std::fs::read_to_string(&err_path).unwrap_or_default()
            + &std::fs::read_to_string(&out_path).unwrap_or_default();
        if both.contains(" ready") {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        assert!(Instant::now() < deadline, "no start within 30 s:\n{both}");
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

#[test]
fn a_generated_root_password_never_lands_in_a_log() {
    // Default: logs on standard error, the password alone on standard output.
    let (status, stdout, stderr) = first_start(&[]);
    assert!(status.is_none(), "the server did not start:\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Generated password for"))
        .unwrap_or_else(|| panic!("no generated password on stdout:\n{stdout}"));
    let password = line.rsplit(' ').next().expect("password").trim();
    assert!(password.len() >= 12, "{line}");
    assert!(!stderr.contains(password), "the password is in the log");
    assert!(stderr.contains(" ready"), "{stderr}");
    // A log on standard output: the server refuses to print it there.
    let (status, stdout, stderr) = first_start(&["--error-log", "stdout"]);
    assert!(
        status.is_some_and(|s| !s.success()),
        "the server must refuse to start:\n{stdout}{stderr}"
    );
    assert!(!stdout.contains("Generated password"), "{stdout}");
    assert!(stderr.contains("FERRODIR_ROOT_PASSWORD"), "{stderr}");
}

#[test]
fn access_log_none_writes_no_operation_lines_and_still_counts_them() {
    let s = Server::start_with(&["--access-log", "none"]);
    for _ in 0..3 {
        let o = search_root(&s.url(), SUFFIX, &["-s", "base", "(objectClass=*)", "dc"]);
        assert_eq!(code(&o), 0, "{}", err(&o));
    }
    failed_root_bind(&s);
    // cn=monitor still counts what the log leaves out.
    let o = search_root(&s.url(), "cn=monitor", &["-s", "base", "opsCompleted"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let completed: u64 = out(&o)
        .lines()
        .find_map(|l| l.strip_prefix("opsCompleted: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no opsCompleted in:\n{}", out(&o)));
    assert!(completed >= 4, "opsCompleted {completed}");
    let log = s.log_text();
    assert!(log.contains(" ready"), "{log}");
    for field in ["SRCH", "BIND", "etime=", "result=49"] {
        assert!(
            !log.contains(field),
            "{field} logged with --access-log none:\n{log}"
        );
    }
    // `none` is not a file name: the server runs in this test's directory.
    assert!(
        !std::path::Path::new("none").exists(),
        "--access-log none wrote a file named none"
    );
}
