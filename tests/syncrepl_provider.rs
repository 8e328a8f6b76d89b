//! ferrodir as an RFC 4533 provider: a real OpenLDAP slapd (Debian's
//! package, back-mdb) configured as a syncrepl consumer of ferrodir, in
//! refreshAndPersist and in refreshOnly mode, follows adds, every modify
//! type, renames, moves and deletes, and resumes after a restart with its
//! cookie (a delete made while it was stopped included). The cookie
//! protocol itself is checked with ldapsearch's sync extension: a resumed
//! refresh carries only what changed (refreshDeletes TRUE), a cookie
//! ferrodir cannot read gets a present phase (refreshDeletes FALSE).

mod common;
#[path = "common/slapd.rs"]
mod slapd;

use common::*;
use slapd::Slapd;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What is compared between the two servers: user attributes, entryUUID
/// and the stored operational attributes; memberOf is computed by
/// ferrodir at read time and not sent (a consumer computes its own).
const COMPARED: &[&str] = &[
    "*",
    "entryUUID",
    "creatorsName",
    "createTimestamp",
    "modifiersName",
    "modifyTimestamp",
];

type Content = BTreeMap<String, Vec<(String, String)>>;

fn content(url: &str, bind: Option<(&str, &str)>) -> Content {
    let mut args: Vec<String> = vec![
        "-LLL".into(),
        "-x".into(),
        "-o".into(),
        "ldif-wrap=no".into(),
        "-H".into(),
        url.into(),
        "-b".into(),
        SUFFIX.into(),
    ];
    if let Some((dn, pw)) = bind {
        args.extend(["-D".into(), dn.into(), "-w".into(), pw.into()]);
    }
    args.push("(objectClass=*)".into());
    args.extend(COMPARED.iter().map(|s| s.to_string()));
    let o = std::process::Command::new("ldapsearch")
        .args(&args)
        .output()
        .expect("ldapsearch");
    let mut out = Content::new();
    if !o.status.success() {
        // No such object (an empty consumer) is an empty content.
        return out;
    }
    for e in parse_ldif(&String::from_utf8_lossy(&o.stdout)) {
        let mut attrs: Vec<(String, String)> = e
            .attrs
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("memberOf"))
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(v).to_string(),
                )
            })
            .collect();
        attrs.sort();
        out.insert(e.dn.to_ascii_lowercase().replace(", ", ","), attrs);
    }
    out
}

fn ferrodir_content(s: &Server) -> Content {
    content(&s.url(), Some((ROOT_DN, &root_password())))
}

fn slapd_content(c: &Slapd) -> Content {
    content(
        &c.url(),
        Some(("cn=admin,dc=example,dc=com", "consumer-secret")),
    )
}

/// Waits until slapd holds exactly what ferrodir holds.
fn wait_equal(s: &Server, c: &Slapd, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = ferrodir_content(s);
        let got = slapd_content(c);
        if want == got && !want.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = want
                .keys()
                .filter(|k| got.get(*k) != want.get(*k))
                .collect();
            let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
            panic!(
                "{what}: slapd did not converge with ferrodir in 30 s\n\
                 differing or missing on slapd: {missing:?}\nextra on slapd: {extra:?}\n\
                 slapd log:\n{}",
                c.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn consumer(provider: &Server, kind: &str) -> Slapd {
    let mode = match kind {
        "persist" => "type=refreshAndPersist",
        _ => "type=refreshOnly interval=00:00:00:01",
    };
    Slapd::start(&format!(
        "database mdb\n\
         suffix \"dc=example,dc=com\"\n\
         rootdn \"cn=admin,dc=example,dc=com\"\n\
         rootpw consumer-secret\n\
         directory @DIR@/db\n\
         maxsize 1073741824\n\
         index objectClass eq\n\
         index entryUUID,entryCSN eq\n\
         syncrepl rid=001 provider={url} bindmethod=simple \
         binddn=\"{root}\" credentials={pw} searchbase=\"dc=example,dc=com\" \
         {mode} retry=\"1 +\" timeout=3\n",
        url = provider.url(),
        root = ROOT_DN,
        pw = root_password(),
    ))
}

fn modify(s: &Server, ldif: &str) {
    let o = ldapmodify_root(&s.url(), ldif);
    assert_code(&o, 0, ldif);
}

/// Adds, each kind of modify, a rename, a move and deletes, each batch
/// followed until slapd holds the same.
fn follow_every_change(s: &Server, c: &Slapd, kind: &str) {
    modify(
        s,
        "dn: uid=carol,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\n\
         uid: carol\ncn: Carol\nsn: Singer\nmail: carol@example.com\n\n\
         dn: ou=branch,dc=example,dc=com\nchangetype: add\nobjectClass: organizationalUnit\nou: branch\n",
    );
    wait_equal(s, c, &format!("{kind}: adds"));
    modify(
        s,
        "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\n\
         add: mail\nmail: alice@branch.example.com\n-\n\
         delete: givenName\n-\n\
         replace: sn\nsn: Liddell-Hart\n",
    );
    modify(
        s,
        "dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: modify\n\
         delete: mail\nmail: bob@example.com\n-\n\
         add: description\ndescription: builds things\n",
    );
    wait_equal(s, c, &format!("{kind}: modifies"));
    modify(
        s,
        "dn: uid=carol,ou=people,dc=example,dc=com\nchangetype: modrdn\n\
         newrdn: uid=caroline\ndeleteoldrdn: 1\n",
    );
    wait_equal(s, c, &format!("{kind}: rename"));
    modify(
        s,
        "dn: uid=caroline,ou=people,dc=example,dc=com\nchangetype: modrdn\n\
         newrdn: uid=caroline\ndeleteoldrdn: 1\nnewsuperior: ou=branch,dc=example,dc=com\n",
    );
    wait_equal(s, c, &format!("{kind}: move"));
    modify(
        s,
        "dn: uid=caroline,ou=branch,dc=example,dc=com\nchangetype: delete\n\n\
         dn: ou=branch,dc=example,dc=com\nchangetype: delete\n",
    );
    wait_equal(s, c, &format!("{kind}: deletes"));
}

#[test]
fn slapd_follows_ferrodir_in_refresh_and_persist_mode() {
    let s = Server::with_sample();
    let mut c = consumer(&s, "persist");
    wait_equal(&s, &c, "persist: initial refresh");
    follow_every_change(&s, &c, "persist");

    // Stopped consumer: what it missed, a delete included, arrives on restart.
    c.stop();
    modify(
        &s,
        "dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: delete\n\n\
         dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\n\
         replace: description\ndescription: changed while the consumer was down\n\n\
         dn: uid=dave,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: account\nuid: dave\n",
    );
    c.launch();
    wait_equal(&s, &c, "persist: after the consumer's restart");
    let got = slapd_content(&c);
    assert!(
        !got.contains_key("uid=bob,ou=people,dc=example,dc=com"),
        "the delete made while slapd was stopped reached it"
    );

    // A provider restart: the consumer reconnects and carries on.
    let mut s = s;
    s.stop();
    s.launch();
    modify(
        &s,
        "dn: uid=dave,ou=people,dc=example,dc=com\nchangetype: modify\n\
         add: description\ndescription: after the provider's restart\n",
    );
    wait_equal(&s, &c, "persist: after the provider's restart");
}

#[test]
fn slapd_follows_ferrodir_in_refresh_only_mode() {
    let s = Server::with_sample();
    let mut c = consumer(&s, "refreshOnly");
    wait_equal(&s, &c, "refreshOnly: initial refresh");
    follow_every_change(&s, &c, "refreshOnly");
    c.stop();
    modify(
        &s,
        "dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: delete\n",
    );
    c.launch();
    wait_equal(&s, &c, "refreshOnly: after the consumer's restart");
}

/// One refreshOnly synchronisation with ldapsearch: (entries, cookie,
/// refreshDeletes).
fn sync_once(s: &Server, cookie: Option<&str>) -> (Vec<String>, String, bool) {
    let ext = match cookie {
        Some(c) => format!("!sync=ro/{c}"),
        None => "!sync=ro".to_string(),
    };
    let pw = root_password();
    let o = std::process::Command::new("ldapsearch")
        .args([
            "-x",
            "-o",
            "ldif-wrap=no",
            "-H",
            &s.url(),
            "-D",
            ROOT_DN,
            "-w",
            &pw,
        ])
        .args(["-b", SUFFIX, "-E", &ext, "1.1"])
        .output()
        .expect("ldapsearch");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "sync search failed: {text}{}", err(&o));
    let dns = text
        .lines()
        .filter_map(|l| l.strip_prefix("dn: "))
        .map(str::to_string)
        .collect();
    let done = text
        .split("# SyncDone control")
        .nth(1)
        .expect("a SyncDone control on the result");
    let cookie = done
        .lines()
        .find_map(|l| l.strip_prefix("# cookie: "))
        .expect("a cookie in SyncDone")
        .to_string();
    let deletes = done.starts_with(" refreshDeletes=1");
    (dns, cookie, deletes)
}

#[test]
fn cookies_resume_with_only_what_changed() {
    let s = Server::with_sample();
    let (all, cookie, deletes) = sync_once(&s, Some("rid=042"));
    assert_eq!(all.len(), 6, "a first refresh sends every entry: {all:?}");
    assert!(!deletes, "a first refresh is a present phase");
    assert!(cookie.starts_with("rid=042,sid=001,csn="), "{cookie}");
    let csn = cookie.rsplit("csn=").next().unwrap_or_default();
    assert_eq!(csn.len(), 40, "OpenLDAP's fixed-width CSN: {csn}");
    let suffix = read_entry(&s.url(), SUFFIX, &["contextCSN"]).expect("suffix entry");
    assert_eq!(
        suffix.get("contextCSN"),
        [csn.to_string()],
        "the suffix entry's contextCSN is the cookie's CSN"
    );

    // Nothing changed: nothing sent.
    let (none, same, deletes) = sync_once(&s, Some(&cookie));
    assert!(none.is_empty(), "{none:?}");
    assert!(deletes, "a resumed refresh is a delete phase");
    assert_eq!(same, cookie);

    // One modify and one delete: exactly those entries, and the group that
    // referential integrity changed when bob went.
    modify(
        &s,
        "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\n\
         replace: description\ndescription: x\n\n\
         dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: delete\n",
    );
    let (changed, newer, deletes) = sync_once(&s, Some(&cookie));
    assert_eq!(
        changed,
        [
            ALICE.to_string(),
            BOB.to_string(),
            "cn=staff,ou=groups,dc=example,dc=com".to_string()
        ],
        "only what changed since the cookie"
    );
    assert!(deletes);
    assert_ne!(newer, cookie);

    // A cookie ferrodir did not issue (slapd's microseconds): a present
    // phase, whose refreshDeletes FALSE tells the consumer to drop what it
    // was not told about.
    let foreign = "rid=042,csn=20240101000000.123456Z#000000#001#000000";
    let (again, _, deletes) = sync_once(&s, Some(foreign));
    assert_eq!(again.len(), 5, "every live entry: {again:?}");
    assert!(!deletes);

    // A malformed cookie is a protocol error, not a full reload.
    let pw = root_password();
    let o = std::process::Command::new("ldapsearch")
        .args(["-x", "-H", &s.url(), "-D", ROOT_DN, "-w", &pw, "-b", SUFFIX])
        .args(["-E", "!sync=ro/rid=042,csn=garbage", "1.1"])
        .output()
        .expect("ldapsearch");
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
}

#[test]
fn a_consumer_behind_the_trimmed_changelog_gets_a_present_phase() {
    let s = Server::with_sample();
    let replica = "cn=replica,cn=dc\\3Dexample\\2Cdc\\3Dcom,cn=mapping tree,cn=config";
    let o = ldapadd_root(
        &s.url(),
        &format!(
            "dn: {replica}\nobjectClass: top\nobjectClass: nsDS5Replica\ncn: replica\n\
             nsDS5ReplicaRoot: dc=example,dc=com\nnsDS5ReplicaType: 3\nnsDS5ReplicaId: 1\n\
             nsDS5ReplicaBindDN: cn=replication manager,cn=config\n\
             nsds5ReplicaPurgeDelay: 1\nnsds5ReplicaTombstonePurgeInterval: 1\n"
        ),
    );
    assert_code(&o, 0, "replica with a one-second purge delay");
    let (_, cookie, _) = sync_once(&s, Some("rid=042"));
    modify(
        &s,
        "dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\n\
         replace: description\ndescription: after the cookie\n\n\
         dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: delete\n",
    );
    // Until housekeeping trims the changelog past the cookie (one second
    // after the changes), the answer is a delete phase; then it must be a
    // present phase.
    let pw = root_password();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let o = loop {
        let o = std::process::Command::new("ldapsearch")
            .args([
                "-x",
                "-o",
                "ldif-wrap=no",
                "-H",
                &s.url(),
                "-D",
                ROOT_DN,
                "-w",
                &pw,
            ])
            .args(["-b", SUFFIX, "-E", &format!("!sync=ro/{cookie}"), "1.1"])
            .output()
            .expect("ldapsearch");
        // Only the answer of a finished refresh that is not a delete phase
        // ends the wait; anything else (a delete phase, an error) retries.
        if o.status.success() && !out(&o).contains("refreshDeletes=1") {
            break o;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the changelog was not trimmed past the cookie within 30 s:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = out(&o);
    assert!(o.status.success(), "{text}{}", err(&o));
    let sent: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("dn: "))
        .collect();
    assert!(
        sent.contains(&ALICE),
        "the changed entry is sent whole: {text}"
    );
    assert!(!sent.contains(&BOB), "a deleted entry is not sent: {text}");
    assert!(
        !sent.contains(&PEOPLE),
        "an unchanged entry goes in a syncIdSet, not whole: {text}"
    );
    assert!(
        text.contains("SyncInfo Received"),
        "the unchanged entries' UUIDs arrive as syncIdSet: {text}"
    );
    assert!(
        text.contains("# SyncDone control refreshDeletes=0"),
        "a present phase must end with refreshDeletes FALSE: {text}"
    );
}
