//! A real nslcd in a private mount namespace, for tests that need the
//! machine's NSS and PAM to resolve users from ferrodir: /etc/nsswitch.conf,
//! /etc/nslcd.conf and /etc/pam.d are bind mounts of files in a temporary
//! directory and /run is a fresh tmpfs (nslcd's socket directory, and no
//! nscd socket of the host), so the machine's own configuration is never
//! touched. Each run starts nslcd, runs shell commands as named sections
//! and stops it; the output of every section is kept with its exit code.
//!
//! Everything runs as root (`unshare -m`); a missing program is a failure
//! naming the exact `apt-get install` to run.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The PAM service written into the namespace's /etc/pam.d.
pub const PAM_SERVICE: &str = "ferrodir-branch-test";

/// Debian packages every nslcd run needs.
pub const NSLCD_PACKAGES: &str = "nslcd libnss-ldapd libpam-ldapd pamtester";

/// Fails (never skips) when a program or module is missing, naming the
/// packages: `extra` lists (path, package) beyond nslcd's own, and
/// `install` is the whole `apt-get install` argument list for the message.
pub fn require_programs(extra: &[(&str, &str)], install: &str) {
    let mut needed = vec![
        ("/usr/sbin/nslcd", "nslcd"),
        ("/usr/bin/pamtester", "pamtester"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/getent", "libc-bin"),
        ("/lib/x86_64-linux-gnu/libnss_ldap.so.2", "libnss-ldapd"),
        ("/lib/x86_64-linux-gnu/security/pam_ldap.so", "libpam-ldapd"),
    ];
    needed.extend_from_slice(extra);
    let missing: Vec<String> = needed
        .iter()
        .filter(|(path, _)| {
            let p = Path::new(path);
            let usr = Path::new("/usr").join(p.strip_prefix("/").unwrap_or(p));
            !p.exists() && !usr.exists()
        })
        .map(|(path, pkg)| format!("{path} (package {pkg})"))
        .collect();
    assert!(
        missing.is_empty(),
        "this test needs: {}; install them with `apt-get install -y {install}` \
         (tools/test does)",
        missing.join(", ")
    );
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test runs nslcd and bind mounts in a mount namespace, as root"
    );
}

/// What one run printed: `(section, exit code, output)` plus the whole
/// text (with nslcd's log) for failure messages.
pub struct Run {
    pub sections: Vec<(String, i32, String)>,
    pub text: String,
}

impl Run {
    /// Exit code and output of a section; panics with everything when absent.
    pub fn get(&self, name: &str) -> (i32, &str) {
        self.sections
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, rc, text)| (*rc, text.as_str()))
            .unwrap_or_else(|| panic!("no output for {name}; full output:\n{}", self.text))
    }

    /// Asserts the section succeeded; its output.
    pub fn ok(&self, name: &str) -> &str {
        let (rc, out) = self.get(name);
        assert_eq!(rc, 0, "{name} failed (exit {rc}):\n{}", self.text);
        out
    }
}

fn write_config(dir: &Path, uris: &[String], base: &str) {
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("writing {name}: {e}"))
    };
    write(
        "nsswitch.conf",
        "passwd: files ldap\ngroup: files ldap\nshadow: files\nhosts: files\n",
    );
    // One `uri` line per server, in the order nslcd tries them.
    let uri_lines: String = uris.iter().map(|u| format!("uri {u}/\n")).collect();
    write(
        "nslcd.conf",
        &format!("{uri_lines}base {base}\nbind_timelimit 5\ntimelimit 10\nreconnect_retrytime 1\n"),
    );
    let pam = dir.join("pam.d");
    std::fs::create_dir_all(&pam).expect("pam.d");
    std::fs::write(
        pam.join(PAM_SERVICE),
        "auth required pam_ldap.so minimum_uid=1000\naccount required pam_permit.so\n",
    )
    .expect("pam service");
    std::fs::write(pam.join("other"), "auth required pam_deny.so\n").expect("pam other");
}

/// Runs `commands` (section name, shell command) in a private mount
/// namespace where NSS and PAM go to nslcd configured with `uris` (tried in
/// this order) and search base `base`. `dir` receives the configuration
/// and nslcd's log; use a fresh one per run.
pub fn run(dir: &Path, uris: &[String], base: &str, commands: &[(&str, String)]) -> Run {
    write_config(dir, uris, base);
    let d = dir.display();
    let mut script = format!(
        r#"set -u
mount --bind {d}/nsswitch.conf /etc/nsswitch.conf
mount --bind {d}/nslcd.conf /etc/nslcd.conf
mount --bind {d}/pam.d /etc/pam.d
mount -t tmpfs tmpfs /run
mkdir -p /run/nslcd
/usr/sbin/nslcd -d > {d}/nslcd.log 2>&1 &
NSLCD=$!
trap 'kill $NSLCD 2>/dev/null; wait $NSLCD 2>/dev/null' EXIT
tries=0
while [ ! -S /run/nslcd/socket ]; do
  tries=$((tries + 1))
  if [ $tries -gt 300 ]; then echo "=== nslcd-start rc=1"; cat {d}/nslcd.log; exit 1; fi
  sleep 0.1
done
section() {{ name=$1; shift; out=$("$@" 2>&1); rc=$?; echo "=== $name rc=$rc"; echo "$out"; }}
"#
    );
    for (name, command) in commands {
        let quoted = command.replace('\'', r"'\''");
        script.push_str(&format!("section {name} sh -c '{quoted}'\n"));
    }
    // Closes the last section: what follows (nslcd's log) is not its output.
    script.push_str("echo '=== end rc=0'\n");
    let o = Command::new("/usr/bin/unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(&script)
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}\n--- nslcd log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(dir.join("nslcd.log")).unwrap_or_default()
    );
    Run {
        sections: sections(&text),
        text,
    }
}

/// Output of each `=== name rc=N` section.
fn sections(text: &str) -> Vec<(String, i32, String)> {
    let mut out: Vec<(String, i32, String)> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("=== ") {
            let (name, rc) = head.split_once(" rc=").unwrap_or((head, "-1"));
            out.push((name.to_string(), rc.parse().unwrap_or(-1), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    out
}

/// A PAM authentication through pam_ldap with `password` on stdin.
pub fn pam_command(user: &str, password: &str) -> String {
    format!("echo '{password}' | pamtester {PAM_SERVICE} {user} authenticate")
}
