//! Three writable suppliers in a full mesh, as real processes: clients
//! write round-robin to all three (the same entries too), agreements are
//! paused to force conflicts, a supplier is killed with kill -9 mid-stream;
//! at the end the three hold the same data, entryUUID, entryCSN and conflict
//! entries included.

mod repl_common;
use repl_common::*;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(120);
const SUFFIX: &str = "dc=example,dc=com";

fn modify(url: &str, ldif: &str) -> i32 {
    code(&ldapmodify_root(url, ldif))
}

fn all(servers: &[Server]) -> Vec<&Server> {
    servers.iter().collect()
}

#[test]
fn round_robin_writes_to_three_suppliers_converge() {
    let servers = mesh();
    let urls: Vec<String> = servers.iter().map(Server::url).collect();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let urls = urls.clone();
            std::thread::spawn(move || {
                for i in 0..30 {
                    let url = &urls[(w + i) % 3];
                    // Every writer touches the same two entries too.
                    let same = if i % 2 == 0 { "alice" } else { "bob" };
                    let ldif = format!(
                        "dn: uid={same},ou=people,{SUFFIX}\nchangetype: modify\nreplace: description\ndescription: writer {w} step {i}\n-\nadd: mail\nmail: w{w}-{i}@example.com\n"
                    );
                    assert_eq!(modify(url, &ldif), 0);
                    let add = format!(
                        "dn: uid=w{w}-{i},ou=people,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: w{w}-{i}\ncn: w{w}-{i}\nsn: w\n"
                    );
                    assert_eq!(modify(url, &add), 0);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let exported = wait_converged(&all(&servers), CONVERGE);
    assert_eq!(exported.matches("dn: uid=w").count(), 90);
    for w in 0..3 {
        for i in 0..30 {
            assert!(exported.contains(&format!("mail: w{w}-{i}@example.com")));
        }
    }
}

#[test]
fn paused_agreements_force_conflicts_that_resolve_identically() {
    let servers = mesh();
    for s in &servers {
        set_agreements(s, false);
    }
    let [s1, s2, s3] = [&servers[0], &servers[1], &servers[2]];
    // add/add of one DN on two servers
    let add = |url: &str, uid: &str, sn: &str| {
        let o = ldapadd_root(
            url,
            &format!("dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {sn}\n"),
        );
        assert_eq!(code(&o), 0, "{}", err(&o));
    };
    add(&s1.url(), "twin", "first");
    add(&s2.url(), "twin", "second");
    // single-valued replace on all three (displayName is single-valued);
    // the one with the largest CSN must win everywhere. CSNs count seconds,
    // then a per-server sequence: within one second that need not be the
    // last one made, so the expected winner is read from the CSNs.
    let mut replaces: Vec<(String, &str)> = Vec::new();
    for (s, v) in [(s1, "Alice One"), (s2, "Alice Two"), (s3, "Alice Three")] {
        assert_eq!(
            modify(&s.url(), &format!("dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nreplace: displayName\ndisplayName: {v}\n")),
            0
        );
        let o = search_root(
            &s.url(),
            &format!("uid=alice,ou=people,{SUFFIX}"),
            &["-s", "base", "(objectClass=*)", "entryCSN"],
        );
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let csn = text
            .lines()
            .find_map(|l| l.strip_prefix("entryCSN: "))
            .unwrap_or_else(|| panic!("no entryCSN after the replace: {text}"))
            .to_string();
        replaces.push((csn, v));
    }
    let winner = replaces.iter().max().map(|(_, v)| *v).unwrap_or_default();
    // delete on one side, modify on another
    assert_eq!(
        modify(
            &s1.url(),
            &format!("dn: uid=bob,ou=people,{SUFFIX}\nchangetype: delete\n")
        ),
        0
    );
    assert_eq!(
        modify(&s3.url(), &format!("dn: uid=bob,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\nmail: bob@three.example.com\n")),
        0
    );
    // replace on one side, add of a value on another
    assert_eq!(
        modify(&s2.url(), &format!("dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\nmail: only@two.example.com\n")),
        0
    );
    assert_eq!(
        modify(&s3.url(), &format!("dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: mail\nmail: extra@three.example.com\n")),
        0
    );
    for s in &servers {
        set_agreements(s, true);
    }
    let exported = wait_converged(&all(&servers), CONVERGE);
    // The later add of uid=twin became a conflict entry, the same on all three.
    let conflicts = search_root(&s1.url(), SUFFIX, &["(objectClass=ldapSubEntry)", "dn"]);
    let conflict_dns = dn_set(&conflicts);
    assert_eq!(conflict_dns.len(), 1, "{conflict_dns:?}");
    assert!(
        conflict_dns[0]
            .to_ascii_lowercase()
            .starts_with("nsuniqueid="),
        "{conflict_dns:?}"
    );
    let plain = dn_set(&search_root(&s1.url(), SUFFIX, &["(uid=twin)", "dn"]));
    assert_eq!(plain.len(), 1, "ordinary searches see one twin: {plain:?}");
    // The last single-valued replace wins everywhere.
    let alice: String = exported
        .split("\n\n")
        .filter(|e| e.starts_with("dn: uid=alice,"))
        .collect();
    assert_eq!(
        exported.matches("displayName: ").count(),
        1,
        "one displayName survives: {alice}"
    );
    assert!(
        exported.contains(&format!("displayName: {winner}\n")),
        "the replace with the largest CSN ({replaces:?}) wins: {alice}"
    );
    // Delete wins over the concurrent modify.
    assert!(!exported.contains("dn: uid=bob,ou=people"));
    // The add after the replace survives it; the replaced values do not.
    assert!(exported.contains("mail: extra@three.example.com"));
    assert!(exported.contains("mail: only@two.example.com"));
}

/// Renames, moves and deletes of parents made concurrently on different
/// suppliers: rename vs rename, two renames onto one name, an add under a
/// parent deleted elsewhere, and two moves that would make a cycle.
#[test]
fn renames_moves_and_deleted_parents_converge() {
    let servers = mesh();
    let [s1, s2, s3] = [&servers[0], &servers[1], &servers[2]];
    let person = |uid: &str| {
        format!("dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\n")
    };
    let ou = |name: &str| {
        format!("dn: ou={name},{SUFFIX}\nobjectClass: organizationalUnit\nou: {name}\n\n")
    };
    let seed = [
        ou("temp"),
        ou("a"),
        ou("b"),
        person("carol"),
        person("dave"),
        person("erin"),
    ]
    .concat();
    let o = ldapadd_root(&s1.url(), &seed);
    assert_eq!(code(&o), 0, "{}", err(&o));
    wait_converged(&all(&servers), CONVERGE);
    for s in &servers {
        set_agreements(s, false);
    }
    let ok = |s: &Server, ldif: String| {
        let o = ldapmodify_root(&s.url(), &ldif);
        assert_eq!(code(&o), 0, "{ldif}: {}", err(&o));
    };
    // An add under a parent that another supplier deletes.
    ok(s1, format!("dn: ou=temp,{SUFFIX}\nchangetype: delete\n"));
    ok(s2, format!("dn: cn=new,ou=temp,{SUFFIX}\nchangetype: add\nobjectClass: organizationalRole\ncn: new\n"));
    // One entry renamed two ways.
    let rename = |uid: &str, to: &str| {
        format!("dn: uid={uid},ou=people,{SUFFIX}\nchangetype: modrdn\nnewrdn: uid={to}\ndeleteoldrdn: 1\n")
    };
    ok(s1, rename("carol", "carol1"));
    ok(s2, rename("carol", "carol2"));
    // Two entries renamed to one name.
    ok(s2, rename("dave", "same"));
    ok(s3, rename("erin", "same"));
    // Two moves that would put ou=a and ou=b below each other.
    ok(s1, format!("dn: ou=a,{SUFFIX}\nchangetype: modrdn\nnewrdn: ou=a\ndeleteoldrdn: 1\nnewsuperior: ou=b,{SUFFIX}\n"));
    ok(s3, format!("dn: ou=b,{SUFFIX}\nchangetype: modrdn\nnewrdn: ou=b\ndeleteoldrdn: 1\nnewsuperior: ou=a,{SUFFIX}\n"));
    for s in &servers {
        set_agreements(s, true);
    }
    wait_converged(&all(&servers), CONVERGE);
    for s in &servers {
        let url = s.url();
        // The child survives under its parent, kept as glue.
        let glue = dn_set(&search_root(&url, SUFFIX, &["(objectClass=glue)", "dn"]));
        assert_eq!(glue, vec![format!("ou=temp,{SUFFIX}")], "{url}");
        let child = dn_set(&search_root(&url, SUFFIX, &["(cn=new)", "dn"]));
        assert_eq!(child, vec![format!("cn=new,ou=temp,{SUFFIX}")], "{url}");
        // Rename vs rename: one name, the same everywhere.
        let carol = dn_set(&search_root(
            &url,
            SUFFIX,
            &["(|(uid=carol)(uid=carol1)(uid=carol2))", "dn"],
        ));
        assert_eq!(carol.len(), 1, "{url}: {carol:?}");
        // Two entries, one name: one holds it, the other is a conflict entry.
        let same = dn_set(&search_root(&url, SUFFIX, &["(uid=same)", "dn"]));
        assert_eq!(same, vec![format!("uid=same,ou=people,{SUFFIX}")], "{url}");
        let conflicts = dn_set(&search_root(
            &url,
            SUFFIX,
            &["(objectClass=ldapSubEntry)", "dn"],
        ));
        assert!(
            conflicts.iter().any(|d| d.starts_with("nsuniqueid=")
                && d.ends_with(&format!("+uid=same,ou=people,{SUFFIX}"))),
            "{url}: {conflicts:?}"
        );
        // The cycle is broken the same way everywhere: one of the two sits
        // directly under the suffix as a conflict entry, the other below it.
        let ous = dn_set(&search_root(
            &url,
            SUFFIX,
            &["(|(ou=a)(ou=b)(objectClass=ldapSubEntry))", "dn"],
        ));
        let top: Vec<&String> = ous
            .iter()
            .filter(|d| {
                d.starts_with("nsuniqueid=")
                    && (d.ends_with(&format!("+ou=a,{SUFFIX}"))
                        || d.ends_with(&format!("+ou=b,{SUFFIX}")))
            })
            .collect();
        assert_eq!(top.len(), 1, "{url}: {ous:?}");
    }
}

#[test]
fn a_supplier_killed_mid_stream_rejoins_and_all_converge() {
    let mut servers = mesh();
    let urls: Vec<String> = servers.iter().map(Server::url).collect();
    let writer = {
        let urls = urls.clone();
        std::thread::spawn(move || {
            for i in 0..60 {
                // Servers 1 and 2 keep taking writes; 3 is killed meanwhile.
                let url = &urls[i % 2];
                let add = format!(
                    "dn: uid=k{i},ou=people,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: k{i}\ncn: k{i}\nsn: k\n"
                );
                assert_eq!(modify(url, &add), 0);
            }
        })
    };
    // Kill server 3 once it is receiving the stream, not before.
    let deadline = std::time::Instant::now() + CONVERGE;
    while count_children(&urls[2], &format!("ou=people,{SUFFIX}")) < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "server 3 received nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    servers[2].kill9();
    writer.join().expect("writer");
    servers[2].launch();
    let o = ldapadd_root(
        &servers[2].url(),
        &format!("dn: uid=after-restart,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: after-restart\ncn: a\nsn: a\n"),
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    let exported = wait_converged(&all(&servers), CONVERGE);
    assert_eq!(exported.matches("dn: uid=k").count(), 60);
    assert!(exported.contains("dn: uid=after-restart,"));
}
