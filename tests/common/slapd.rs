//! A real OpenLDAP slapd (Debian's package, back-mdb) for interoperability
//! tests: started on a free loopback port in a temporary directory from a
//! slapd.conf the test writes, stopped on drop. A missing slapd is a
//! failure that says what to install.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SLAPD: &str = "/usr/sbin/slapd";

/// Schema files every slapd here loads (Debian's paths).
pub const SCHEMA: &str = "\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
";

pub fn require_slapd() {
    assert!(
        Path::new(SLAPD).exists(),
        "this test runs OpenLDAP's slapd: install it with `apt-get install slapd ldap-utils` \
         (tools/test and .ci/run do)"
    );
}

pub struct Slapd {
    pub port: u16,
    pub dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
    _tmp: tempfile::TempDir,
}

impl Slapd {
    /// Writes `conf_body` (after the schema includes, pid/args files and
    /// module lines; `@DIR@` is replaced by the instance directory) and
    /// starts slapd.
    pub fn start(conf_body: &str) -> Slapd {
        require_slapd();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("db")).expect("db dir");
        let conf = dir.join("slapd.conf");
        let text = format!(
            "{SCHEMA}pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\n{}",
            conf_body.replace("@DIR@", &dir.display().to_string()),
            d = dir.display()
        );
        std::fs::write(&conf, text).expect("writing slapd.conf");
        let mut s = Slapd {
            port: super::free_port(),
            dir,
            conf,
            child: None,
            _tmp: tmp,
        };
        s.launch();
        s
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) slapd on the same directory and port, and
    /// waits until it answers.
    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("slapd.log"))
            .expect("slapd log");
        let child = Command::new(SLAPD)
            .args(["-f", &self.conf.display().to_string()])
            .args(["-h", &format!("{}/", self.url())])
            .args(["-d", "sync"])
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting slapd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = Command::new("ldapsearch")
                .args([
                    "-x",
                    "-H",
                    &self.url(),
                    "-s",
                    "base",
                    "-b",
                    "",
                    "-LLL",
                    "1.1",
                ])
                .output()
                .expect("ldapsearch");
            if o.status.success() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("slapd exited ({st}): {}", self.log_text());
                }
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not answer within 20 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM: slapd shuts down cleanly (and writes its contextCSN).
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or(&text).to_string()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
