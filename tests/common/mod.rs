//! Test harness: starts the real `ferrodir` binary on an ephemeral loopback
//! port in a temporary data directory, and runs OpenLDAP's command-line
//! clients against it. A missing client is a failure that says what to install.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ROOT_DN: &str = "cn=Directory Manager";
pub const SUFFIX: &str = "dc=example,dc=com";

/// A per-run random root password: never a fixed credential.
pub fn root_password() -> String {
    use std::sync::OnceLock;
    static PW: OnceLock<String> = OnceLock::new();
    PW.get_or_init(|| format!("test-{}", uuid_like())).clone()
}

pub fn uuid_like() -> String {
    let mut buf = [0u8; 12];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrodir"))
}

/// Picks a free loopback port (bind to 0, read it back, release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub log: PathBuf,
    pub extra_args: Vec<String>,
    /// Whether [`Server::launch`] passes FERRODIR_ROOT_PASSWORD. The server
    /// only uses it when no root password is stored yet; a test that checks
    /// a stored password survived turns it off so the variable cannot mask a
    /// lost one.
    pub root_password_env: bool,
}

impl Server {
    /// Starts a fresh server with the embedded default suffix.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a fresh server with a TOML configuration file (written to the
    /// temporary directory and passed as `--config`) plus extra arguments.
    pub fn start_with_config(toml: &str, extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("ferrodir.toml");
        std::fs::write(&cfg, toml).expect("writing config");
        let mut args: Vec<String> = vec!["--config".into(), cfg.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_in(tmp, &refs)
    }

    /// A fresh server whose new passwords (the root DN's included) are
    /// hashed with `{SSHA512}`: PBKDF2-SHA512 with 10 000 rounds costs about
    /// 0.4 s per bind in a debug build, which would dominate a suite making
    /// hundreds of root binds. Tests of the default scheme use [`Server::start`].
    pub fn fast() -> Server {
        Server::start_with_config("password_scheme = \"SSHA512\"\n", &[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        Server::start_in(tmp, extra)
    }

    /// A server set up (temporary data directory, port) but not launched:
    /// for offline tools on the data directory before the first start.
    pub fn unstarted(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let log = tmp.path().join("server.log");
        Server {
            child: None,
            port: free_port(),
            data,
            _tmp: Some(tmp),
            log,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            root_password_env: true,
        }
    }

    fn start_in(tmp: tempfile::TempDir, extra: &[&str]) -> Server {
        let data = tmp.path().join("data");
        let log = tmp.path().join("server.log");
        let mut s = Server {
            child: None,
            port: free_port(),
            data,
            _tmp: Some(tmp),
            log,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            root_password_env: true,
        };
        // A port picked free can be taken before the server binds it (by
        // another test's server or a client's ephemeral port): try another.
        for _ in 0..4 {
            if s.try_launch() {
                return s;
            }
            s.port = free_port();
        }
        s.launch();
        s
    }

    /// Starts (or restarts) the process on the same data directory and port.
    pub fn launch(&mut self) {
        if !self.try_launch() {
            panic!(
                "ferrodir could not bind 127.0.0.1:{}:\n{}",
                self.port,
                self.log_text()
            );
        }
    }

    /// [`Server::launch`]; false when the port was taken meanwhile.
    fn try_launch(&mut self) -> bool {
        let log_before = self.log_text().len();
        let ready_before = (self.ready_lines(), self.listening_lines());
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--ldap")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .env_remove("FERRODIR_ROOT_PASSWORD");
        if self.root_password_env {
            cmd.env("FERRODIR_ROOT_PASSWORD", root_password());
        }
        let child = cmd
            .stdout(Stdio::from(logf.try_clone().expect("log")))
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("spawn ferrodir");
        self.child = Some(child);
        self.wait_ready(ready_before, log_before)
    }

    /// "ready" lines in the log: the server logs one when start-up is complete
    /// (base entry created, default access rules in place).
    fn ready_lines(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(" ready"))
            .count()
    }

    /// Lines saying this server listens on its port: only then is what
    /// answers on the port this server and not another process.
    fn listening_lines(&self) -> usize {
        let listener = format!("listener=127.0.0.1:{}", self.port);
        self.log_text()
            .lines()
            .filter(|l| l.contains("listening for LDAP starttls") && l.contains(&listener))
            .count()
    }

    fn wait_ready(&mut self, (ready, listening): (usize, usize), log_before: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let text = self.log_text();
                    if text
                        .get(log_before..)
                        .is_some_and(|t| t.contains("Address already in use"))
                    {
                        self.child = None;
                        return false;
                    }
                    panic!("ferrodir exited early ({status}):\n{text}");
                }
            }
            if self.ready_lines() > ready
                && self.listening_lines() > listening
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ferrodir did not listen within 30 s:\n{}", self.log_text());
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server's log satisfies `done` (a deadline, not a
    /// guess at how long the server needs); panics with the log after it.
    pub fn wait_log(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log_text();
            if done(&text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for the log to show {what}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Path of an OpenLDAP client, or a failure telling what to install.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install OpenLDAP's clients (apt-get install -y ldap-utils)");
}

/// Runs an OpenLDAP client with optional standard input.
pub fn run_tool(name: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(tool(name));
    cmd.args(args)
        .env("LDAPTLS_REQCERT", "never")
        .env("LDAPNOINIT", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    feed_and_wait(child, stdin)
}

/// Writes `stdin` to the child from a thread of its own while its output
/// is read: a tool that answers as it reads (ldapmodify prints a line per
/// entry) would otherwise fill its output pipe and both would wait forever.
pub fn feed_and_wait(mut child: std::process::Child, stdin: Option<&str>) -> Output {
    let feeder = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut sin)) => {
            let input = input.to_owned();
            // A tool that exits early closes its end: its exit status and
            // output say why, not the broken pipe.
            Some(std::thread::spawn(move || {
                let _ = sin.write_all(input.as_bytes());
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output().expect("wait");
    if let Some(f) = feeder {
        let _ = f.join();
    }
    output
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Arguments for a simple bind as the root DN.
pub fn as_root(url: &str) -> Vec<String> {
    vec![
        "-x".into(),
        "-H".into(),
        url.into(),
        "-D".into(),
        ROOT_DN.into(),
        "-w".into(),
        root_password(),
    ]
}

pub fn ldapadd_root(url: &str, ldif: &str) -> Output {
    let mut args = as_root(url);
    args.push("-a".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("ldapmodify", &refs, Some(ldif))
}

pub fn ldapmodify_root(url: &str, ldif: &str) -> Output {
    let args = as_root(url);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("ldapmodify", &refs, Some(ldif))
}

/// ldapsearch as root, LDIF output without wrapping; returns the output.
pub fn search_root(url: &str, base: &str, extra: &[&str]) -> Output {
    let mut args = as_root(url);
    args.extend(
        ["-LLL", "-o", "ldif-wrap=no", "-b", base]
            .iter()
            .map(|s| s.to_string()),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("ldapsearch", &refs, None)
}

/// DNs in ldapsearch -LLL output.
pub fn dns(ldif: &str) -> Vec<String> {
    BufReader::new(ldif.as_bytes())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("dn: ").map(str::to_string))
        .collect()
}

/// The exit code of an OpenLDAP client is the LDAP result code.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub const SAMPLE: &str = "\
dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: shadowAccount
uid: alice
cn: Alice Liddell
sn: Liddell
givenName: Alice
mail: alice@example.com
uidNumber: 10001
gidNumber: 10000
homeDirectory: /home/alice
loginShell: /bin/bash
userPassword: alicepw

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: posixAccount
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.com
uidNumber: 10002
gidNumber: 10000
homeDirectory: /home/bob
userPassword: bobpw

dn: cn=staff,ou=groups,dc=example,dc=com
objectClass: groupOfNames
objectClass: posixGroup
cn: staff
gidNumber: 10000
member: uid=alice,ou=people,dc=example,dc=com
member: uid=bob,ou=people,dc=example,dc=com
memberUid: alice
memberUid: bob
";

// ---------------------------------------------------------------------------
// Helpers shared by the test files.

impl Server {
    /// A fresh server loaded with [`SAMPLE`] (asserts the load succeeded).
    /// A [`Server::fast`] server loaded with [`SAMPLE`].
    pub fn with_sample() -> Server {
        let s = Server::fast();
        let o = ldapadd_root(&s.url(), SAMPLE);
        assert_code(&o, 0, "loading SAMPLE");
        s
    }

    /// A default-configuration server (PBKDF2-SHA512) loaded with [`SAMPLE`].
    pub fn with_sample_default() -> Server {
        let s = Server::start();
        let o = ldapadd_root(&s.url(), SAMPLE);
        assert_code(&o, 0, "loading SAMPLE");
        s
    }

    /// PID of the running process.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("server not running")
    }

    /// True when the process has not exited.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

/// Runs the ferrodir binary (import, export, hash-password, ...) to completion.
pub fn ferrodir(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("FERRODIR_ROOT_PASSWORD")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("running ferrodir");
    feed_and_wait(child, stdin)
}

/// Who a client binds as.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Anon,
    Root,
    User(&'a str, &'a str),
}

pub const ALICE: &str = "uid=alice,ou=people,dc=example,dc=com";
pub const BOB: &str = "uid=bob,ou=people,dc=example,dc=com";
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";
/// Test-only passwords of the SAMPLE users.
pub const ALICE_PW: &str = "alicepw";
pub const BOB_PW: &str = "bobpw";

/// Common client arguments: `-x -H url` plus the bind.
pub fn base_args(url: &str, who: Who) -> Vec<String> {
    let mut v: Vec<String> = vec!["-x".into(), "-H".into(), url.into()];
    match who {
        Who::Anon => {}
        Who::Root => {
            v.extend([
                "-D".to_string(),
                ROOT_DN.to_string(),
                "-w".to_string(),
                root_password(),
            ]);
        }
        Who::User(dn, pw) => {
            v.extend([
                "-D".to_string(),
                dn.to_string(),
                "-w".to_string(),
                pw.to_string(),
            ]);
        }
    }
    v
}

/// Runs an OpenLDAP client as `who` with extra arguments and optional stdin.
pub fn client(name: &str, url: &str, who: Who, extra: &[&str], stdin: Option<&str>) -> Output {
    let mut args = base_args(url, who);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool(name, &refs, stdin)
}

/// ldapsearch -LLL (no wrapping) as `who`.
pub fn search_as(url: &str, who: Who, base: &str, extra: &[&str]) -> Output {
    let mut args = vec!["-LLL", "-o", "ldif-wrap=no", "-b", base];
    args.extend_from_slice(extra);
    client("ldapsearch", url, who, &args, None)
}

/// Panics with the client's output when its exit code is not `want`.
pub fn assert_code(o: &Output, want: i32, what: &str) {
    assert_eq!(
        code(o),
        want,
        "{what}: expected exit/result code {want}, got {}\n--- stdout:\n{}\n--- stderr:\n{}",
        code(o),
        out(o),
        err(o)
    );
}

/// One entry of ldapsearch LDIF output; values decoded (base64 `::` too).
#[derive(Debug, Clone, Default)]
pub struct LdifEntry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<u8>)>,
}

impl LdifEntry {
    /// Values of an attribute (case-insensitive name; options kept in the name).
    pub fn get(&self, name: &str) -> Vec<String> {
        self.attrs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).to_string())
            .collect()
    }
    pub fn get_bytes(&self, name: &str) -> Vec<Vec<u8>> {
        self.attrs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
    /// Attribute names, lower-cased, deduplicated, in order.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (n, _) in &self.attrs {
            let l = n.to_ascii_lowercase();
            if !v.contains(&l) {
                v.push(l);
            }
        }
        v
    }
}

/// Parses LDIF as printed by `ldapsearch -LLL` (folded or not, comments skipped).
pub fn parse_ldif(text: &str) -> Vec<LdifEntry> {
    use base64::Engine;
    // Unfold.
    let mut lines: Vec<String> = Vec::new();
    for raw in text.lines() {
        if let Some(cont) = raw.strip_prefix(' ') {
            if let Some(last) = lines.last_mut() {
                last.push_str(cont);
                continue;
            }
        }
        lines.push(raw.to_string());
    }
    let mut entries = Vec::new();
    let mut cur: Option<LdifEntry> = None;
    for line in lines {
        if line.is_empty() {
            if let Some(e) = cur.take() {
                entries.push(e);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some(colon) = line.find(':') else {
            continue;
        };
        let name = line[..colon].to_string();
        let rest = &line[colon + 1..];
        let value: Vec<u8> = if let Some(b) = rest.strip_prefix(':') {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .unwrap_or_else(|e| panic!("bad base64 in {line:?}: {e}"))
        } else {
            rest.strip_prefix(' ').unwrap_or(rest).as_bytes().to_vec()
        };
        if name.eq_ignore_ascii_case("dn") {
            if let Some(e) = cur.take() {
                entries.push(e);
            }
            cur = Some(LdifEntry {
                dn: String::from_utf8_lossy(&value).to_string(),
                attrs: Vec::new(),
            });
        } else if let Some(e) = cur.as_mut() {
            e.attrs.push((name, value));
        }
    }
    if let Some(e) = cur.take() {
        entries.push(e);
    }
    entries
}

/// Entries from a client's stdout.
pub fn entries(o: &Output) -> Vec<LdifEntry> {
    parse_ldif(&out(o))
}

/// Sorted, lower-cased DNs from a client's stdout.
pub fn dn_set(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = entries(o)
        .into_iter()
        .map(|e| e.dn.to_ascii_lowercase())
        .collect();
    v.sort();
    v
}

/// Sorted, lower-cased copy of a DN list.
pub fn sorted_lower(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v
}

/// The one entry at `dn` read as root with the given attribute selection; None if absent.
pub fn read_entry(url: &str, dn: &str, attrs: &[&str]) -> Option<LdifEntry> {
    let mut extra = vec!["-s", "base"];
    extra.extend_from_slice(attrs);
    let o = search_root(url, dn, &extra);
    match code(&o) {
        0 => entries(&o).into_iter().next(),
        32 => None,
        c => panic!("reading {dn}: exit {c}\n{}\n{}", out(&o), err(&o)),
    }
}

/// Can `dn` bind with `pw`? Returns the ldapwhoami exit code.
pub fn bind_code(url: &str, dn: &str, pw: &str) -> i32 {
    code(&client("ldapwhoami", url, Who::User(dn, pw), &[], None))
}

// ---------------------------------------------------------------------------
// A raw LDAP connection: ldap3_proto's codec over a blocking TcpStream, for
// hand-made message sequences (pipelining, abandon, protocol abuse).

pub mod raw {
    use bytes::BytesMut;
    use ldap3_proto::proto::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    use tokio_util::codec::{Decoder, Encoder};

    pub struct RawConn {
        pub stream: TcpStream,
        codec: ldap3_proto::LdapCodec,
        buf: BytesMut,
    }

    impl RawConn {
        pub fn connect(port: u16) -> RawConn {
            let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream.set_nodelay(true).ok();
            RawConn {
                stream,
                codec: ldap3_proto::LdapCodec::new(Some(64 << 20), None),
                buf: BytesMut::with_capacity(1 << 16),
            }
        }

        /// Encodes messages without sending them.
        pub fn encode(&mut self, msgs: Vec<LdapMsg>) -> Vec<u8> {
            let mut out = BytesMut::new();
            for m in msgs {
                self.codec.encode(m, &mut out).expect("encode");
            }
            out.to_vec()
        }

        /// Sends all messages in a single write.
        pub fn send_all(&mut self, msgs: Vec<LdapMsg>) {
            let bytes = self.encode(msgs);
            self.stream.write_all(&bytes).expect("write");
        }

        pub fn send(&mut self, msg: LdapMsg) {
            self.send_all(vec![msg]);
        }

        /// The next message, or None on EOF / timeout.
        pub fn recv(&mut self, timeout: Duration) -> Option<LdapMsg> {
            let deadline = Instant::now() + timeout;
            loop {
                match self.codec.decode(&mut self.buf) {
                    Ok(Some(m)) => return Some(m),
                    Ok(None) => {}
                    Err(e) => panic!("undecodable response: {e}"),
                }
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                self.stream.set_read_timeout(Some(deadline - now)).ok();
                let mut chunk = [0u8; 65536];
                match self.stream.read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(_) => return None,
                }
            }
        }

        /// Simple bind; returns the result code.
        pub fn bind(&mut self, msgid: i32, dn: &str, pw: &str) -> LdapResultCode {
            self.send(LdapMsg::new(
                msgid,
                LdapOp::BindRequest(LdapBindRequest {
                    version: 3,
                    dn: dn.to_string(),
                    cred: LdapBindCred::Simple(pw.to_string()),
                }),
            ));
            match self.recv(Duration::from_secs(30)) {
                Some(LdapMsg {
                    msgid: id,
                    op: LdapOp::BindResponse(r),
                    ..
                }) if id == msgid => r.res.code,
                other => panic!("expected a bind response, got {other:?}"),
            }
        }

        /// True when the server closed the connection (EOF or reset) within `timeout`;
        /// messages received meanwhile (e.g. a notice of disconnection) are returned.
        pub fn closed_within(&mut self, timeout: Duration) -> (bool, Vec<LdapMsg>) {
            let deadline = Instant::now() + timeout;
            let mut msgs = Vec::new();
            loop {
                while let Ok(Some(m)) = self.codec.decode(&mut self.buf) {
                    msgs.push(m);
                }
                let now = Instant::now();
                if now >= deadline {
                    return (false, msgs);
                }
                self.stream.set_read_timeout(Some(deadline - now)).ok();
                let mut chunk = [0u8; 65536];
                match self.stream.read(&mut chunk) {
                    Ok(0) => return (true, msgs),
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        return (false, msgs)
                    }
                    Err(_) => return (true, msgs),
                }
            }
        }
    }

    pub fn search(
        msgid: i32,
        base: &str,
        scope: LdapSearchScope,
        filter: &str,
        attrs: &[&str],
    ) -> LdapMsg {
        LdapMsg::new(
            msgid,
            LdapOp::SearchRequest(LdapSearchRequest {
                base: base.to_string(),
                scope,
                aliases: LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: ldap3_proto::parse_ldap_filter_str(filter).expect("filter"),
                attrs: attrs.iter().map(|s| s.to_string()).collect(),
            }),
        )
    }

    /// An entry to add: DN and (attribute, values).
    pub type NewEntry<'a> = (String, Vec<(&'a str, Vec<Vec<u8>>)>);

    pub fn add_request(msgid: i32, dn: &str, attrs: &[(&str, Vec<Vec<u8>>)]) -> LdapMsg {
        LdapMsg::new(
            msgid,
            LdapOp::AddRequest(LdapAddRequest {
                dn: dn.to_string(),
                attributes: attrs
                    .iter()
                    .map(|(n, v)| LdapPartialAttribute {
                        atype: n.to_string(),
                        vals: v.clone(),
                    })
                    .collect(),
            }),
        )
    }

    /// Adds entries as the root DN over one connection, pipelined in bursts
    /// of 100 requests (below the per-connection outstanding limit); asserts
    /// every add succeeded.
    pub fn bulk_add(port: u16, adds: Vec<NewEntry>) {
        let mut c = RawConn::connect(port);
        assert_eq!(
            c.bind(1, super::ROOT_DN, &super::root_password()),
            LdapResultCode::Success
        );
        let mut id = 2;
        for chunk in adds.chunks(100) {
            let first = id;
            let msgs: Vec<LdapMsg> = chunk
                .iter()
                .map(|(dn, attrs)| {
                    id += 1;
                    add_request(id - 1, dn, attrs)
                })
                .collect();
            c.send_all(msgs);
            for _ in first..id {
                match c.recv(Duration::from_secs(60)) {
                    Some(LdapMsg {
                        op: LdapOp::AddResponse(r),
                        msgid,
                        ..
                    }) => {
                        assert_eq!(
                            r.code,
                            LdapResultCode::Success,
                            "add #{msgid}: {}",
                            r.message
                        )
                    }
                    other => panic!("expected an add response, got {other:?}"),
                }
            }
        }
    }
}
