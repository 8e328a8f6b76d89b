//! Replication test harness (a copy of tests/common plus replication
//! helpers). Test harness: starts the real `ferrodir` binary on an ephemeral loopback
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

fn uuid_like() -> String {
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
}

impl Server {
    /// Starts a fresh server with the embedded default suffix.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let log = tmp.path().join("server.log");
        // A fast password scheme keeps binds cheap in debug builds (every
        // poll binds); the scheme does not matter to replication.
        let config = tmp.path().join("ferrodir.toml");
        std::fs::write(&config, "password_scheme = \"SSHA512\"\n").expect("config");
        let mut extra: Vec<&str> = extra.to_vec();
        let config_text = config.to_string_lossy().to_string();
        extra.push("--config");
        extra.push(&config_text);
        let mut s = Server {
            child: None,
            port: free_port(),
            data,
            _tmp: Some(tmp),
            log,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.launch();
        s
    }

    /// Starts (or restarts) the process on the same data directory and port.
    pub fn launch(&mut self) {
        let ready_before = self.ready_lines();
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(bin())
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--ldap")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .env("FERRODIR_ROOT_PASSWORD", root_password())
            .stdout(Stdio::from(logf.try_clone().expect("log")))
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("spawn ferrodir");
        self.child = Some(child);
        self.wait_ready(ready_before);
    }

    /// "ready" lines in the log: the server logs one when start-up is complete
    /// (base entry created, default access rules in place), after it already
    /// accepts connections.
    fn ready_lines(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(" ready"))
            .count()
    }

    fn wait_ready(&mut self, ready_before: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("ferrodir exited early ({status}):\n{}", self.log_text());
                }
            }
            if self.ready_lines() > ready_before
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
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
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    if let Some(input) = stdin {
        if let Some(mut sin) = child.stdin.take() {
            sin.write_all(input.as_bytes()).expect("stdin");
        }
    }
    child.wait_with_output().expect("wait")
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

// ---- replication helpers ----------------------------------------------------

/// Per-run random password of the replication manager (replaces the
/// CHANGE-ME placeholder of the example LDIFs).
pub fn repl_password() -> String {
    use std::sync::OnceLock;
    static PW: OnceLock<String> = OnceLock::new();
    PW.get_or_init(|| format!("repl-{}", uuid_like())).clone()
}

pub const PLACEHOLDER_PASSWORD: &str = "CHANGE-ME-replication-password";

pub fn agreement_dn(cn: &str) -> String {
    format!("cn={cn},cn=replica,cn=dc\\3Dexample\\2Cdc\\3Dcom,cn=mapping tree,cn=config")
}

/// An example LDIF from ldif/replication, as an admin would edit it: the
/// consumer host and port set to 127.0.0.1:`port`, the placeholder password
/// replaced. Nothing else is changed.
pub fn example_ldif(rel: &str, port: Option<u16>) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ldif/replication")
        .join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        text.contains(PLACEHOLDER_PASSWORD)
            || !rel.contains("agreement") && !rel.contains("manager"),
        "{rel} should carry the password placeholder"
    );
    let mut out = String::new();
    for line in text.lines() {
        let line = match (port, line.split_once(": ")) {
            (Some(_), Some((k, _))) if k.eq_ignore_ascii_case("nsDS5ReplicaHost") => {
                "nsDS5ReplicaHost: 127.0.0.1".to_string()
            }
            (Some(p), Some((k, _))) if k.eq_ignore_ascii_case("nsDS5ReplicaPort") => {
                format!("nsDS5ReplicaPort: {p}")
            }
            _ => line.replace(PLACEHOLDER_PASSWORD, &repl_password()),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// ldapadd of an example LDIF as root; panics with the tool's output on failure.
pub fn add_example(url: &str, rel: &str, port: Option<u16>) {
    let o = ldapadd_root(url, &example_ldif(rel, port));
    assert_eq!(code(&o), 0, "ldapadd {rel}: {}{}", out(&o), err(&o));
}

/// `ferrodir export` of a (running or stopped) server's data directory.
pub fn export(s: &Server) -> String {
    let o = Command::new(bin())
        .arg("export")
        .arg("--data-dir")
        .arg(&s.data)
        .output()
        .expect("run ferrodir export");
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Polls until every server's export is identical; returns it.
pub fn wait_converged(servers: &[&Server], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let exports: Vec<String> = servers.iter().map(|s| export(s)).collect();
        if exports.windows(2).all(|w| w[0] == w[1]) {
            return exports.into_iter().next().unwrap_or_default();
        }
        if Instant::now() > deadline {
            let counts: Vec<usize> = exports
                .iter()
                .map(|e| e.lines().filter(|l| l.starts_with("dn: ")).count())
                .collect();
            let first_diff = exports[0]
                .lines()
                .zip(exports[1].lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{a:?} vs {b:?}"));
            let logs: Vec<String> = servers
                .iter()
                .map(|s| {
                    let t = s.log_text();
                    let tail: Vec<&str> = t.lines().rev().take(40).collect();
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                })
                .collect();
            panic!(
                "replicas did not converge within {timeout:?}: entries {counts:?}, first difference {first_diff:?}\nlogs:\n{}",
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One attribute of an agreement entry (status attributes included).
pub fn agreement_attr(s: &Server, cn: &str, attr: &str) -> Option<String> {
    let o = search_root(
        &s.url(),
        &agreement_dn(cn),
        &["-s", "base", "(objectClass=*)", "*"],
    );
    let text = out(&o);
    let prefix = format!("{attr}: ");
    text.lines()
        .find(|l| l.len() > prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(&prefix))
        .map(|l| l[prefix.len()..].to_string())
}

/// Waits until the agreement's total init has finished successfully.
pub fn wait_init_done(s: &Server, cn: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let end = agreement_attr(s, cn, "nsds5replicaLastInitEnd");
        let status = agreement_attr(s, cn, "nsds5replicaLastInitStatus").unwrap_or_default();
        if end.as_deref().is_some_and(|e| !e.starts_with("1970"))
            && status.starts_with("Error (0) Total update succeeded")
        {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "init over agreement {cn} did not finish within {timeout:?}: end {end:?} status {status:?}\nupdate status {:?}\nlog:\n{}",
                agreement_attr(s, cn, "nsds5replicaLastUpdateStatus"),
                s.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Number of entries directly below `base` (root search, one level).
pub fn count_children(url: &str, base: &str) -> usize {
    let o = search_root(url, base, &["-s", "one", "(objectClass=*)", "1.1"]);
    dns(&out(&o)).len()
}

/// LDIF adding `ou=<ou>` and `n` people below it.
pub fn people_ldif(ou: &str, n: usize) -> String {
    let mut s =
        format!("dn: ou={ou},dc=example,dc=com\nobjectClass: organizationalUnit\nou: {ou}\n\n");
    for i in 0..n {
        s.push_str(&format!(
            "dn: uid={ou}-{i},ou={ou},dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {ou}-{i}\ncn: User {i}\nsn: {ou}{i}\nmail: {ou}-{i}@example.com\n\n"
        ));
    }
    s
}

/// A supplier and a read-only consumer configured with the example LDIFs
/// (supplier-consumer/), the consumer initialised.
pub fn supplier_consumer() -> (Server, Server) {
    let supplier = Server::start();
    let consumer = Server::start();
    add_example(&consumer.url(), "replication-manager.ldif", None);
    add_example(
        &supplier.url(),
        "supplier-consumer/1-supplier-replica.ldif",
        None,
    );
    add_example(
        &consumer.url(),
        "supplier-consumer/2-consumer-replica.ldif",
        None,
    );
    add_example(
        &supplier.url(),
        "supplier-consumer/3-supplier-agreement.ldif",
        Some(consumer.port),
    );
    wait_init_done(&supplier, "to-consumer", Duration::from_secs(60));
    (supplier, consumer)
}
