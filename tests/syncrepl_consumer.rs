//! ferrodir as an RFC 4533 consumer of a real OpenLDAP provider (Debian's
//! slapd 2.5 with back-mdb and syncprov), in refreshAndPersist and
//! refreshOnly modes: initial sync, every kind of change, restarts of
//! either side, referrals for writes, and the config entry's checks.
//! A missing slapd is a failure saying what to install.

mod common;
#[path = "common/slapd.rs"]
mod slapd;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use std::time::{Duration, Instant};

const ADMIN: &str = "cn=admin,dc=example,dc=com";
const CONSUMER_DN: &str = "cn=provider,cn=syncrepl,cn=config";

/// The provider: a real slapd with syncprov (tests/common/slapd.rs).
struct Slapd {
    server: slapd::Slapd,
    pw: String,
}

impl Slapd {
    fn start() -> Slapd {
        assert!(
            Path::new("/usr/lib/ldap/syncprov.so").exists(),
            "slapd's syncprov module not found: install it (apt-get install -y slapd)"
        );
        let pw = format!("slapd-{}", uuid_like());
        let server = slapd::Slapd::start(&format!(
            "moduleload syncprov\n\
             database mdb\nsuffix \"dc=example,dc=com\"\nrootdn \"{ADMIN}\"\nrootpw {pw}\n\
             directory @DIR@/db\nmaxsize 104857600\n\
             index objectClass eq\nindex entryUUID,entryCSN eq\n\
             overlay syncprov\nsyncprov-checkpoint 1 1\nsyncprov-sessionlog 100\n"
        ));
        Slapd { server, pw }
    }

    fn launch(&mut self) {
        self.server.launch();
    }

    fn stop(&mut self) {
        self.server.stop();
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn modify(&self, ldif: &str) {
        let o = run_tool(
            "ldapmodify",
            &["-x", "-H", &self.url(), "-D", ADMIN, "-w", &self.pw],
            Some(ldif),
        );
        assert!(o.status.success(), "slapd ldapmodify: {}", err(&o));
    }

    fn search(&self, extra: &[&str]) -> String {
        let url = self.url();
        let mut args = vec![
            "-x",
            "-H",
            &url,
            "-D",
            ADMIN,
            "-w",
            &self.pw,
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-b",
            SUFFIX,
        ];
        args.extend_from_slice(extra);
        let o = run_tool("ldapsearch", &args, None);
        assert!(o.status.success(), "slapd ldapsearch: {}", err(&o));
        out(&o)
    }
}

const COMPARED: [&str; 7] = [
    "(objectClass=*)",
    "*",
    "entryUUID",
    "creatorsName",
    "createTimestamp",
    "modifiersName",
    "modifyTimestamp",
];

type Content = BTreeMap<String, BTreeSet<(String, String)>>;

/// Entries by lower-cased DN, each a set of (attribute, value) with names
/// and objectClass values lower-cased.
fn normalise(ldif: &str) -> Content {
    let mut out = Content::new();
    for e in parse_ldif(ldif) {
        let mut set = BTreeSet::new();
        for name in e.names() {
            let lower = name.to_ascii_lowercase();
            for v in e.get(&name) {
                let v = if lower == "objectclass" {
                    v.to_ascii_lowercase()
                } else {
                    v
                };
                set.insert((lower.clone(), v));
            }
        }
        out.insert(e.dn.to_ascii_lowercase().replace(", ", ","), set);
    }
    out
}

fn consumer_content(f: &Server) -> Content {
    let o = search_root(&f.url(), SUFFIX, &COMPARED);
    if code(&o) == 32 {
        return Content::new();
    }
    assert!(o.status.success(), "ferrodir ldapsearch: {}", err(&o));
    normalise(&out(&o))
}

fn wait_same(p: &Slapd, f: &Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let want = normalise(&p.search(&COMPARED));
        let got = consumer_content(f);
        if want == got {
            assert!(!want.is_empty());
            return;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .collect();
            let extra: Vec<_> = got
                .iter()
                .filter(|(k, v)| want.get(*k) != Some(v))
                .collect();
            panic!(
                "{what}: ferrodir differs from slapd after 40 s\nslapd has (differing): {missing:#?}\nferrodir has (differing): {extra:#?}\nlog:\n{}",
                f.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SEED: &str = "\
dn: dc=example,dc=com
objectClass: top
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: top
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: top
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Smith
mail: alice@example.com

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Jones
";

fn seed(p: &Slapd) {
    let o = run_tool(
        "ldapadd",
        &["-x", "-H", &p.url(), "-D", ADMIN, "-w", &p.pw],
        Some(SEED),
    );
    assert!(o.status.success(), "seeding slapd: {}", err(&o));
}

fn consumer_ldif(p: &Slapd, kind: &str) -> String {
    format!(
        "dn: {CONSUMER_DN}\nobjectClass: top\nobjectClass: ferrodirSyncreplConsumer\ncn: provider\n\
         olcSyncrepl: rid=001 provider={url} bindmethod=simple binddn=\"{ADMIN}\" credentials={pw} \
         searchbase=\"dc=example,dc=com\" {kind} retry=\"1 +\" timeout=5 schemachecking=on\n",
        url = p.url(),
        pw = p.pw
    )
}

fn person(uid: &str, ou: &str) -> String {
    format!(
        "dn: uid={uid},ou={ou},dc=example,dc=com\nchangetype: add\nobjectClass: top\n\
         objectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\n\
         uid: {uid}\ncn: {uid}\nsn: {uid}\n\n"
    )
}

fn changes(p: &Slapd, f: &Server) {
    // Adds, including a parent and its child.
    p.modify(&format!(
        "{}dn: ou=staff,dc=example,dc=com\nchangetype: add\nobjectClass: top\nobjectClass: organizationalUnit\nou: staff\n\n{}",
        person("carol", "people"),
        person("dave", "staff")
    ));
    wait_same(p, f, "adds");
    // Every modify type.
    p.modify(
        "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nadd: telephoneNumber\ntelephoneNumber: +1 555 0100\ntelephoneNumber: +1 555 0101\n-\ndelete: mail\n-\nreplace: sn\nsn: Smith-Jones\n-\n\n\
         dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\ndelete: telephoneNumber\ntelephoneNumber: +1 555 0100\n-\n",
    );
    wait_same(p, f, "modifies");
    // A rename, a move to another parent, a delete.
    p.modify(
        "dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=robert\ndeleteoldrdn: 1\n\n\
         dn: uid=carol,ou=people,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=carol\ndeleteoldrdn: 1\nnewsuperior: ou=groups,dc=example,dc=com\n\n\
         dn: uid=dave,ou=staff,dc=example,dc=com\nchangetype: delete\n",
    );
    wait_same(p, f, "rename, move and delete");
}

fn configure(p: &Slapd, kind: &str) -> Server {
    let f = Server::fast();
    let o = ldapadd_root(&f.url(), &consumer_ldif(p, kind));
    assert_code(&o, 0, "adding the consumer entry");
    f
}

fn referral_check(p: &Slapd, f: &Server) {
    let o = ldapmodify_root(
        &f.url(),
        "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: Local\n",
    );
    assert_eq!(
        code(&o),
        10,
        "a write to the replica is referred: {}",
        err(&o)
    );
    let text = format!("{}{}", out(&o), err(&o));
    assert!(text.contains(&p.url()), "referral names slapd: {text}");
}

fn restart_ferrodir(p: &Slapd, f: &mut Server) {
    f.stop();
    p.modify(&format!(
        "dn: uid=robert,ou=people,dc=example,dc=com\nchangetype: delete\n\n{}",
        person("erin", "people")
    ));
    f.launch();
    f.wait_log("resuming with its cookie", Duration::from_secs(20), |l| {
        l.contains("resuming with cookie")
    });
    wait_same(p, f, "after a ferrodir restart");
}

#[test]
fn refresh_and_persist_follows_slapd() {
    let mut p = Slapd::start();
    seed(&p);
    let mut f = configure(&p, "type=refreshAndPersist");
    wait_same(&p, &f, "initial refresh");
    changes(&p, &f);
    referral_check(&p, &f);
    restart_ferrodir(&p, &mut f);
    // The provider restarts: the session reconnects and carries on.
    p.stop();
    p.launch();
    p.modify(&person("frank", "people"));
    wait_same(&p, &f, "after a slapd restart");
    // Status shows the consumer.
    let o = Command::new(bin())
        .args(["repl", "status", "--url", &f.url()])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir repl status");
    let text = out(&o);
    assert!(o.status.success(), "repl status: {}", err(&o));
    assert!(text.contains("refreshAndPersist"), "{text}");
    assert!(text.contains("persisting"), "{text}");
}

#[test]
fn refresh_only_polls_slapd() {
    let p = Slapd::start();
    seed(&p);
    let mut f = configure(&p, "type=refreshOnly interval=00:00:00:01");
    wait_same(&p, &f, "initial refresh");
    changes(&p, &f);
    referral_check(&p, &f);
    restart_ferrodir(&p, &mut f);
}

#[test]
fn consumer_entries_are_checked_and_credentials_hidden() {
    let f = Server::fast();
    let port = free_port();
    let bad = |value: &str| {
        format!(
            "dn: {CONSUMER_DN}\nobjectClass: top\nobjectClass: ferrodirSyncreplConsumer\ncn: provider\nolcSyncrepl: {value}\n"
        )
    };
    for (value, want) in [
        (
            format!("rid=1 provider=ldap://127.0.0.1:{port} searchbase=\"dc=example,dc=com\" type=sometimes"),
            "type",
        ),
        (
            format!("rid=1 provider=ldap://127.0.0.1:{port} searchbase=\"dc=example,dc=com\" retry=\"5\""),
            "retry",
        ),
        (
            format!("rid=1 provider=ldap://127.0.0.1:{port} searchbase=\"o=elsewhere\""),
            "not a suffix",
        ),
    ] {
        let o = ldapadd_root(&f.url(), &bad(&value));
        assert!(
            code(&o) == 21 || code(&o) == 53,
            "{value}: code {} {}",
            code(&o),
            err(&o)
        );
        assert!(err(&o).contains(want), "{value}: {}", err(&o));
        let gone = search_root(&f.url(), CONSUMER_DN, &["-s", "base"]);
        assert_eq!(code(&gone), 32, "nothing was added");
    }
    let secret = format!("s3cret-{}", uuid_like());
    let o = ldapadd_root(
        &f.url(),
        &bad(&format!(
            "rid=1 provider=ldap://127.0.0.1:{port} bindmethod=simple binddn=\"cn=x\" credentials={secret} searchbase=\"dc=example,dc=com\" type=refreshOnly"
        )),
    );
    assert_code(&o, 0, "a good consumer entry");
    let back = out(&search_root(
        &f.url(),
        CONSUMER_DN,
        &["-s", "base", "olcSyncrepl"],
    ));
    assert!(!back.contains(&secret), "the secret is never shown: {back}");
    assert!(back.contains("credentials={FDCHACHA}"), "{back}");
    let raw = std::fs::read(f.data_dir().join("data.mdb")).unwrap_or_default();
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is not stored in clear"
    );
}
