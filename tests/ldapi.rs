//! ldapi:// with SASL EXTERNAL, as admins of OpenLDAP and 389-ds script
//! without passwords: OpenLDAP's own clients over the Unix socket in the
//! data directory; root is the root DN, another local user the
//! posixAccount with its uidNumber, an unknown user nobody.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn ldapi_url(s: &Server) -> String {
    let path = s.data_dir().join("ldapi").display().to_string();
    format!("ldapi://{}", path.replace('/', "%2F"))
}

/// An OpenLDAP client run as `uid` (setpriv from util-linux).
fn as_user(uid: u32, tool_name: &str, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
        ])
        .arg(tool(tool_name))
        .args(args)
        .env("LDAPNOINIT", "1")
        .output()
        .expect("run setpriv (util-linux)")
}

fn running_as_root() {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the ldapi test checks the mapping of root and of other users, so it runs as root"
    );
}

#[test]
fn external_over_ldapi_maps_local_users() {
    running_as_root();
    let mut s = Server::start();
    let url = ldapi_url(&s);
    // Root: the root DN, no password anywhere.
    let who = run_tool("ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url], None);
    assert_eq!(code(&who), 0, "{}", err(&who));
    assert!(
        out(&who)
            .trim()
            .eq_ignore_ascii_case("dn:cn=Directory Manager"),
        "{}",
        out(&who)
    );
    let add = run_tool(
        "ldapadd",
        &["-Q", "-Y", "EXTERNAL", "-H", &url],
        Some(&format!(
            "dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: uid=svc,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: svc\ncn: svc\nsn: svc\nuidNumber: 4321\ngidNumber: 4321\nhomeDirectory: /home/svc\n"
        )),
    );
    assert_eq!(code(&add), 0, "{}", err(&add));

    // Another user reaches the socket (mode 0666) through traversable directories.
    let mut dir = s.data_dir().to_path_buf();
    loop {
        if let Ok(meta) = std::fs::metadata(&dir) {
            let mode = meta.permissions().mode() | 0o011;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
        }
        if !dir.pop() || dir.as_os_str().len() <= 1 {
            break;
        }
    }
    let svc = as_user(4321, "ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url]);
    assert_eq!(code(&svc), 0, "{}", err(&svc));
    assert_eq!(
        out(&svc).trim(),
        format!("dn:uid=svc,ou=people,{SUFFIX}"),
        "{}",
        err(&svc)
    );
    let nobody = as_user(4322, "ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url]);
    assert_eq!(code(&nobody), 49, "{}{}", out(&nobody), err(&nobody));
    // Anonymous and simple binds work there as on any listener; StartTLS
    // does not (the connection never leaves the machine).
    let anon = run_tool(
        "ldapsearch",
        &["-x", "-H", &url, "-b", "", "-s", "base"],
        None,
    );
    assert_eq!(code(&anon), 0, "{}", err(&anon));
    let starttls = run_tool("ldapwhoami", &["-x", "-ZZ", "-H", &url], None);
    assert_ne!(code(&starttls), 0);

    // A socket left by a killed server is replaced at the next start.
    s.kill9();
    s.launch();
    let again = run_tool("ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url], None);
    assert_eq!(code(&again), 0, "{}", err(&again));
}

#[test]
fn ldapi_can_be_turned_off() {
    let s = Server::start_with(&["--ldapi", "none"]);
    assert!(!s.data_dir().join("ldapi").exists());
}
