//! Referential integrity on real servers over loopback with OpenLDAP's
//! clients: deleting or renaming an entry removes or rewrites the DNs that
//! name it in member, uniqueMember, manager and seeAlso; dangling values
//! refused when configured; and with three suppliers the refint modifies
//! made by one server replicate to the others exactly once, with memberOf
//! right on every replica.

mod repl_common;

use repl_common::*;
use std::collections::BTreeSet;

const BASE: &str = "dc=example,dc=com";

const DATA: &str = "\
dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=boss,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: boss
cn: Boss
sn: B

dn: uid=dan,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dan
cn: Dan
sn: D
manager: uid=boss,ou=people,dc=example,dc=com

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann
sn: A
manager: uid=boss,ou=people,dc=example,dc=com
seeAlso: uid=dan,ou=people,dc=example,dc=com

dn: cn=staff,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: staff
member: uid=ann,ou=people,dc=example,dc=com
member: uid=dan,ou=people,dc=example,dc=com
member: uid=boss,ou=people,dc=example,dc=com

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfUniqueNames
cn: admins
uniqueMember: uid=dan,ou=people,dc=example,dc=com
uniqueMember: uid=boss,ou=people,dc=example,dc=com

dn: cn=solo,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: solo
member: uid=dan,ou=people,dc=example,dc=com
";

const STAFF: &str = "cn=staff,ou=groups,dc=example,dc=com";
const ADMINS: &str = "cn=admins,ou=groups,dc=example,dc=com";
const SOLO: &str = "cn=solo,ou=groups,dc=example,dc=com";

fn attr(url: &str, dn: &str, name: &str) -> BTreeSet<String> {
    let o = search_root(url, dn, &["-s", "base", "(objectClass=*)", name]);
    assert_eq!(code(&o), 0, "{dn}: {}", err(&o));
    entries(&o)
        .first()
        .map(|e| e.get(name))
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.to_ascii_lowercase())
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_ascii_lowercase()).collect()
}

fn ok(o: std::process::Output, what: &str) {
    assert_eq!(code(&o), 0, "{what}: {}{}", out(&o), err(&o));
}

fn delete(url: &str, dn: &str) -> std::process::Output {
    let mut args = as_root(url);
    args.push(dn.to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("ldapdelete", &refs, None)
}

#[test]
fn deletes_and_renames_update_references() {
    let s = Server::fast();
    let url = s.url();
    ok(ldapadd_root(&url, DATA), "data");
    let p = |uid: &str| format!("uid={uid},ou=people,{BASE}");
    let q = |uid: &str| format!("uid={uid},ou=staff,{BASE}");

    // Delete: dan leaves staff and admins, ann's seeAlso, and the group
    // whose only member he was (member is optional in ferrodir's schema).
    ok(delete(&url, &p("dan")), "delete dan");
    assert_eq!(attr(&url, STAFF, "member"), set(&[&p("ann"), &p("boss")]));
    assert_eq!(attr(&url, ADMINS, "uniqueMember"), set(&[&p("boss")]));
    assert!(attr(&url, &p("ann"), "seeAlso").is_empty());
    assert!(attr(&url, SOLO, "member").is_empty());
    assert_eq!(attr(&url, SOLO, "cn"), set(&["solo"]));
    // The modify is the server's, stamped as made by the one who deleted.
    assert_eq!(
        attr(&url, STAFF, "modifiersName"),
        set(&["cn=directory manager"])
    );

    // Rename of a leaf: the DN follows in member, uniqueMember, manager.
    ok(
        ldapmodify_root(
            &url,
            &format!(
                "dn: {}\nchangetype: modrdn\nnewrdn: uid=chief\ndeleteoldrdn: 1\n",
                p("boss")
            ),
        ),
        "rename boss",
    );
    assert_eq!(attr(&url, STAFF, "member"), set(&[&p("ann"), &p("chief")]));
    assert_eq!(attr(&url, ADMINS, "uniqueMember"), set(&[&p("chief")]));
    assert_eq!(attr(&url, &p("ann"), "manager"), set(&[&p("chief")]));

    // Rename of a subtree: references to everything below follow.
    ok(
        ldapmodify_root(
            &url,
            &format!(
                "dn: ou=people,{BASE}\nchangetype: modrdn\nnewrdn: ou=staff\ndeleteoldrdn: 1\n"
            ),
        ),
        "rename ou=people",
    );
    assert_eq!(attr(&url, STAFF, "member"), set(&[&q("ann"), &q("chief")]));
    assert_eq!(attr(&url, ADMINS, "uniqueMember"), set(&[&q("chief")]));
    assert_eq!(attr(&url, &q("ann"), "manager"), set(&[&q("chief")]));

    // Move under another parent (newSuperior).
    ok(
        ldapmodify_root(
            &url,
            &format!("dn: {}\nchangetype: modrdn\nnewrdn: uid=chief\ndeleteoldrdn: 1\nnewsuperior: ou=groups,{BASE}\n", q("chief")),
        ),
        "move chief",
    );
    let moved = format!("uid=chief,ou=groups,{BASE}");
    assert_eq!(attr(&url, STAFF, "member"), set(&[&q("ann"), &moved]));
    assert_eq!(attr(&url, &q("ann"), "manager"), set(&[&moved]));
    // memberOf agrees with the rewritten members.
    assert_eq!(attr(&url, &moved, "memberOf"), set(&[STAFF, ADMINS]));
}

#[test]
fn dangling_references_refused_when_configured_and_refint_can_be_off() {
    let strict = Server::start_with_config(
        "password_scheme = \"SSHA512\"\n[refint]\nallow_dangling = false\n",
        &[],
    );
    let url = strict.url();
    ok(ldapadd_root(&url, DATA), "data");
    let missing = format!("uid=ghost,ou=people,{BASE}");
    let o = ldapadd_root(
        &url,
        &format!(
            "dn: cn=new,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: new\nmember: {missing}\n"
        ),
    );
    assert_eq!(code(&o), 19, "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("uid=ghost"), "{}", err(&o));
    let o = ldapmodify_root(
        &url,
        &format!("dn: uid=ann,ou=people,{BASE}\nchangetype: modify\nreplace: manager\nmanager: {missing}\n"),
    );
    assert_eq!(code(&o), 19, "{}{}", out(&o), err(&o));
    assert_eq!(
        attr(&url, &format!("uid=ann,ou=people,{BASE}"), "manager"),
        set(&[&format!("uid=boss,ou=people,{BASE}")])
    );
    // Existing entries, and DNs outside every suffix served here, pass.
    ok(
        ldapadd_root(
            &url,
            &format!("dn: cn=new,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: new\nmember: uid=ann,ou=people,{BASE}\nmember: cn=elsewhere,o=other\n"),
        ),
        "add with existing and foreign members",
    );

    // The default accepts dangling values; with refint off, references stay.
    let off = Server::start_with_config(
        "password_scheme = \"SSHA512\"\n[refint]\nenabled = false\n",
        &[],
    );
    let url = off.url();
    ok(ldapadd_root(&url, DATA), "data");
    ok(
        ldapmodify_root(
            &url,
            &format!("dn: {STAFF}\nchangetype: modify\nadd: member\nmember: {missing}\n"),
        ),
        "dangling member accepted",
    );
    ok(
        delete(&url, &format!("uid=ann,ou=people,{BASE}")),
        "delete ann",
    );
    assert!(attr(&url, STAFF, "member").contains(&format!("uid=ann,ou=people,{BASE}")));
}

/// The RUV's max CSN per replica ID, from 389-ds's RUV entry.
fn ruv_max(url: &str) -> Vec<(String, String)> {
    let dn = format!("nsuniqueid=ffffffff-ffffffff-ffffffff-ffffffff,{BASE}");
    let o = search_root(url, &dn, &["-s", "base", "(objectClass=*)", "nsds50ruv"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let mut v: Vec<(String, String)> = entries(&o)
        .first()
        .map(|e| e.get("nsds50ruv"))
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.starts_with("{replica "))
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            (
                parts
                    .get(1)
                    .unwrap_or(&"")
                    .trim_end_matches('}')
                    .to_string(),
                parts.last().unwrap_or(&"").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn refint_changes_replicate_once_and_member_of_is_right_everywhere() {
    // mesh() holds the sample data (ou=people, ou=groups, cn=staff).
    const STAFF: &str = "cn=crew,ou=groups,dc=example,dc=com";
    let data = DATA
        .split_once("dn: uid=boss")
        .map(|(_, rest)| format!("dn: uid=boss{rest}"))
        .unwrap_or_default()
        .replace("cn=staff,", "cn=crew,")
        .replace("cn: staff", "cn: crew");
    let servers = mesh();
    let all: Vec<&Server> = servers.iter().collect();
    ok(ldapadd_root(&servers[0].url(), &data), "data");
    wait_converged(&all, MESH_CONVERGE);
    let before: Vec<Vec<(String, String)>> = servers.iter().map(|s| ruv_max(&s.url())).collect();

    // Server 1 deletes dan and renames boss: its refint modifies arrive
    // on 2 and 3 as ordinary changes.
    let p = |uid: &str| format!("uid={uid},ou=people,{BASE}");
    ok(delete(&servers[0].url(), &p("dan")), "delete dan");
    ok(
        ldapmodify_root(
            &servers[0].url(),
            &format!(
                "dn: {}\nchangetype: modrdn\nnewrdn: uid=chief\ndeleteoldrdn: 1\n",
                p("boss")
            ),
        ),
        "rename boss",
    );
    wait_converged(&all, MESH_CONVERGE);
    for s in &servers {
        let url = s.url();
        assert_eq!(attr(&url, STAFF, "member"), set(&[&p("ann"), &p("chief")]));
        assert_eq!(attr(&url, ADMINS, "uniqueMember"), set(&[&p("chief")]));
        assert_eq!(attr(&url, &p("ann"), "manager"), set(&[&p("chief")]));
        assert_eq!(attr(&url, &p("chief"), "memberOf"), set(&[STAFF, ADMINS]));
        assert_eq!(attr(&url, &p("ann"), "memberOf"), set(&[STAFF]));
        // Exactly once: the groups were last changed by server 1 (replica
        // ID 1 in the CSN), and servers 2 and 3 originated nothing.
        let csn = attr(&url, STAFF, "entryCSN");
        assert!(
            !csn.is_empty() && csn.iter().all(|c| c.get(12..16) == Some("0001")),
            "{url}: {csn:?}"
        );
    }
    let after: Vec<Vec<(String, String)>> = servers.iter().map(|s| ruv_max(&s.url())).collect();
    for (b, a) in before.iter().zip(&after) {
        for rid in ["2", "3"] {
            let max = |v: &Vec<(String, String)>| {
                v.iter()
                    .find(|(r, _)| r.as_str() == rid)
                    .map(|(_, m)| m.clone())
            };
            assert_eq!(
                max(b),
                max(a),
                "replica {rid} originated changes: {b:?} -> {a:?}"
            );
        }
    }
    // Server 2 renames the group: memberOf follows on every replica.
    ok(
        ldapmodify_root(
            &servers[1].url(),
            &format!("dn: {STAFF}\nchangetype: modrdn\nnewrdn: cn=team\ndeleteoldrdn: 1\n"),
        ),
        "rename crew",
    );
    wait_converged(&all, MESH_CONVERGE);
    let team = format!("cn=team,ou=groups,{BASE}");
    for s in &servers {
        assert_eq!(attr(&s.url(), &p("ann"), "memberOf"), set(&[&team]));
    }
}

#[test]
fn an_index_added_to_the_configuration_is_built_at_the_next_start() {
    let without = "password_scheme = \"SSHA512\"\n[indexes]\nobjectClass = \"eq\"\nuid = \"eq\"\nmember = \"eq\"\nuniqueMember = \"eq\"\n";
    let mut s = Server::start_with_config(without, &[]);
    ok(ldapadd_root(&s.url(), DATA), "data");
    let boss = format!("uid=boss,ou=people,{BASE}");
    let managed = |url: &str| {
        let o = search_root(url, BASE, &[&format!("(manager={boss})"), "1.1"]);
        assert_eq!(code(&o), 0, "{}", err(&o));
        dns(&out(&o))
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect::<BTreeSet<_>>()
    };
    let both = set(&[
        &format!("uid=ann,ou=people,{BASE}"),
        &format!("uid=dan,ou=people,{BASE}"),
    ]);
    assert_eq!(managed(&s.url()), both);
    // The same data with manager indexed: the index holds the old entries
    // (an index answering only for entries written later would find none).
    s.stop();
    let config = s.data.parent().expect("tmp").join("ferrodir.toml");
    std::fs::write(&config, format!("{without}manager = \"eq\"\n")).expect("config");
    s.launch();
    assert!(
        s.log_text().contains("index set changed"),
        "{}",
        s.log_text()
    );
    assert_eq!(managed(&s.url()), both);
    // Refint finds them through the index.
    ok(delete(&s.url(), &boss), "delete boss");
    assert!(managed(&s.url()).is_empty());
    assert!(attr(&s.url(), &format!("uid=ann,ou=people,{BASE}"), "manager").is_empty());
}
