//! Access control evaluated through a real Directory on a temporary store,
//! so search, compare and the write path are covered as they are wired.

use crate::acl::*;
use crate::directory::{
    DirError, DirResult, Directory, Modification, Scope, SearchEntry, SearchRequest,
};
use crate::model::{Dn, Identity, ModOp, Rdn, WriteOp};

const SUFFIX: &str = "dc=example,dc=com";
const ALICE: &str = "uid=alice,ou=people,dc=example,dc=com";
const BOB: &str = "uid=bob,ou=people,dc=example,dc=com";
const CAROL: &str = "uid=carol,ou=people,dc=example,dc=com";
const ADMINS: &str = "cn=admins,ou=groups,dc=example,dc=com";
const STAFF: &str = "cn=staff,ou=groups,dc=example,dc=com";

fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap()
}

// ---- evaluation through the directory ----------------------------------

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: Directory,
}

fn add_op(dn_s: &str, attrs: &[(&str, &str)]) -> WriteOp {
    let mut out: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for (name, value) in attrs {
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, vals)) => vals.push(value.as_bytes().to_vec()),
            None => out.push((name.to_string(), vec![value.as_bytes().to_vec()])),
        }
    }
    WriteOp::Add {
        dn: dn(dn_s),
        attrs: out,
    }
}

fn person(uid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("objectClass", "inetOrgPerson".into()),
        ("objectClass", "posixAccount".into()),
        ("objectClass", "shadowAccount".into()),
        ("uid", uid.into()),
        ("cn", format!("{uid} user")),
        ("sn", uid.into()),
        ("mail", format!("{uid}@example.com")),
        ("uidNumber", "1000".into()),
        ("gidNumber", "1000".into()),
        ("homeDirectory", format!("/home/{uid}")),
        ("userPassword", format!("{uid}-password")),
        ("shadowLastChange", "19000".into()),
        ("employeeNumber", "42".into()),
    ]
}

impl Fixture {
    fn new() -> Fixture {
        let (tmp, dir) = super::test_support::temp_directory(SUFFIX, Default::default());
        let f = Fixture { _tmp: tmp, dir };
        let mut base = vec![
            ("objectClass", "domain".to_string()),
            ("dc", "example".to_string()),
        ];
        for aci in default_acis(&dn(SUFFIX)) {
            base.push(("aci", aci));
        }
        f.add(&f.root(), SUFFIX, &base).unwrap();
        for ou in ["people", "groups"] {
            f.add(
                &f.root(),
                &format!("ou={ou},{SUFFIX}"),
                &[("objectClass", "organizationalUnit"), ("ou", ou)],
            )
            .unwrap();
        }
        for uid in ["alice", "bob", "carol"] {
            f.add(
                &f.root(),
                &format!("uid={uid},ou=people,{SUFFIX}"),
                &person(uid),
            )
            .unwrap();
        }
        f.add(
            &f.root(),
            ADMINS,
            &[
                ("objectClass", "groupOfNames"),
                ("cn", "admins"),
                ("member", ALICE),
            ],
        )
        .unwrap();
        f.add(
            &f.root(),
            STAFF,
            &[
                ("objectClass", "groupOfUniqueNames".to_string()),
                ("cn", "staff".to_string()),
                ("uniqueMember", format!("{BOB}#'0101'B")),
            ],
        )
        .unwrap();
        f
    }

    fn root(&self) -> Identity {
        let root_dn = self.dir.config().root_dn.clone();
        Identity {
            norm: self.dir.normalize_dn(&root_dn),
            dn: Some(root_dn),
            root: true,
        }
    }

    fn user(&self, s: &str) -> Identity {
        let d = dn(s);
        Identity {
            norm: self.dir.normalize_dn(&d),
            dn: Some(d),
            root: false,
        }
    }

    fn add<S: AsRef<str>>(&self, who: &Identity, d: &str, attrs: &[(&str, S)]) -> DirResult<()> {
        let pairs: Vec<(&str, &str)> = attrs.iter().map(|(n, v)| (*n, v.as_ref())).collect();
        self.dir.write_blocking(who, add_op(d, &pairs))
    }

    fn modify(
        &self,
        who: &Identity,
        d: &str,
        op: ModOp,
        attr: &str,
        vals: &[&str],
    ) -> DirResult<()> {
        self.dir.write_blocking(
            who,
            WriteOp::Modify {
                dn: dn(d),
                mods: vec![Modification {
                    op,
                    attr: attr.into(),
                    values: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
                }],
            },
        )
    }

    fn add_aci(&self, d: &str, aci: &str) {
        self.modify(&self.root(), d, ModOp::Add, "aci", &[aci])
            .unwrap_or_else(|e| panic!("adding aci {aci}: {e}"));
    }

    fn search(&self, who: &Identity, base: &str, filter: &str, attrs: &[&str]) -> Vec<SearchEntry> {
        let f = parse_filter(filter).unwrap();
        let attrs: Vec<String> = attrs.iter().map(|s| s.to_string()).collect();
        let req = SearchRequest {
            base: dn(base),
            scope: Scope::Sub,
            filter: &f,
            attrs: &attrs,
            types_only: false,
            size_limit: 0,
            time_limit: 0,
            page: None,
            lookthrough_limit: 0,
        };
        let mut out = Vec::new();
        self.dir
            .search(who, &req, &|| false, &mut |e| out.push(e))
            .unwrap();
        out
    }

    fn dns(&self, who: &Identity, base: &str, filter: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .search(who, base, filter, &["1.1"])
            .into_iter()
            .map(|e| e.dn.to_ascii_lowercase())
            .collect();
        v.sort();
        v
    }

    /// Attribute names returned for one entry (lowercased).
    fn attrs_of(&self, who: &Identity, d: &str, attrs: &[&str]) -> Vec<String> {
        let found = self.search(who, d, "(objectClass=*)", attrs);
        found
            .iter()
            .find(|e| e.dn.eq_ignore_ascii_case(d))
            .map(|e| {
                let mut v: Vec<String> = e
                    .attrs
                    .iter()
                    .map(|(n, _)| n.to_ascii_lowercase())
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default()
    }

    fn compare(&self, who: &Identity, d: &str, attr: &str, value: &str) -> DirResult<bool> {
        self.dir.compare(who, &dn(d), attr, value.as_bytes())
    }
}

fn insufficient<T: std::fmt::Debug>(r: DirResult<T>) -> bool {
    matches!(r, Err(DirError::InsufficientAccess(_)))
}

#[test]
fn defaults_public_attributes_only_and_secrets_never() {
    let f = Fixture::new();
    let anon = Identity::anonymous();
    let bob = f.user(BOB);
    for who in [&anon, &bob] {
        let got = f.attrs_of(who, ALICE, &["*", "+"]);
        assert!(got.contains(&"cn".to_string()), "{got:?}");
        assert!(got.contains(&"entryuuid".to_string()), "{got:?}");
        assert!(got.contains(&"entrydn".to_string()), "{got:?}");
        for hidden in ["userpassword", "shadowlastchange", "employeenumber", "aci"] {
            assert!(!got.contains(&hidden.to_string()), "{hidden} in {got:?}");
        }
        // Explicitly asked for: still nothing.
        assert!(f
            .attrs_of(who, ALICE, &["userPassword", "shadowLastChange"])
            .is_empty());
        // Filter probing: Undefined, so no match, not even under NOT.
        for probe in [
            "(userPassword=*)",
            "(userPassword={SSHA}*)",
            "(userPassword=alice-password)",
            "(!(userPassword=x))",
            "(shadowLastChange>=0)",
            "(employeeNumber=42)",
            "(|(uid=nobody)(userPassword=*))",
        ] {
            assert!(f.dns(who, SUFFIX, probe).is_empty(), "{probe} matched");
        }
        assert!(insufficient(f.compare(
            who,
            ALICE,
            "userPassword",
            "alice-password"
        )));
        assert!(insufficient(f.compare(who, ALICE, "employeeNumber", "42")));
        assert_eq!(f.compare(who, ALICE, "cn", "alice user").ok(), Some(true));
        // aci on the base is not visible.
        assert!(!f
            .attrs_of(who, SUFFIX, &["aci"])
            .contains(&"aci".to_string()));
    }
    // Public search works and sees all three users.
    assert_eq!(f.dns(&anon, SUFFIX, "(uid=*)").len(), 3);
    // Root sees everything.
    let root = f.root();
    assert_eq!(f.dns(&root, SUFFIX, "(userPassword=*)").len(), 3);
    assert!(f
        .attrs_of(&root, ALICE, &["*"])
        .contains(&"userpassword".to_string()));
    assert_eq!(
        f.compare(&root, ALICE, "userPassword", "alice-password")
            .ok(),
        Some(true)
    );
}

#[test]
fn secrets_stay_hidden_even_when_an_aci_grants_them() {
    let f = Fixture::new();
    f.add_aci(
        SUFFIX,
        r#"(targetattr="*")(version 3.0; acl "too generous"; allow (all) userdn="ldap:///anyone";)"#,
    );
    let anon = Identity::anonymous();
    assert!(f
        .attrs_of(&anon, ALICE, &["*"])
        .contains(&"employeenumber".to_string()));
    assert!(!f
        .attrs_of(&anon, ALICE, &["*"])
        .contains(&"userpassword".to_string()));
    assert!(f.dns(&anon, SUFFIX, "(userPassword=*)").is_empty());
    assert!(f.dns(&anon, SUFFIX, "(shadowLastChange=*)").is_empty());
    assert!(insufficient(f.compare(
        &anon,
        ALICE,
        "userPassword",
        "alice-password"
    )));
}

#[test]
fn users_change_their_own_password_only() {
    let f = Fixture::new();
    let alice = f.user(ALICE);
    f.modify(
        &alice,
        ALICE,
        ModOp::Replace,
        "userPassword",
        &["new-alice"],
    )
    .unwrap();
    assert!(f.dir.bind(&dn(ALICE), b"new-alice").is_ok());
    assert!(insufficient(f.modify(
        &alice,
        BOB,
        ModOp::Replace,
        "userPassword",
        &["owned"]
    )));
    assert!(insufficient(f.modify(
        &alice,
        ALICE,
        ModOp::Replace,
        "mail",
        &["x@y"]
    )));
    assert!(insufficient(f.modify(
        &Identity::anonymous(),
        ALICE,
        ModOp::Replace,
        "userPassword",
        &["x"]
    )));
    // Without any ACI the built-in rule still lets a user change their own password...
    f.modify(&f.root(), SUFFIX, ModOp::Delete, "aci", &[])
        .unwrap();
    f.modify(
        &alice,
        ALICE,
        ModOp::Replace,
        "userPassword",
        &["again-and-again"],
    )
    .unwrap();
    // ...unless an explicit deny says otherwise.
    f.add_aci(
        ALICE,
        r#"(targetattr="userPassword")(version 3.0; acl "locked"; deny (write) userdn="ldap:///self";)"#,
    );
    assert!(insufficient(f.modify(
        &alice,
        ALICE,
        ModOp::Replace,
        "userPassword",
        &["x"]
    )));
}

#[test]
fn subjects() {
    let f = Fixture::new();
    let anon = Identity::anonymous();
    let (alice, bob, carol) = (f.user(ALICE), f.user(BOB), f.user(CAROL));
    let people = format!("ou=people,{SUFFIX}");
    let attr_aci = |attr: &str, subject: &str| {
        format!(
            r#"(targetattr="{attr}")(version 3.0; acl "{attr}"; allow (read,search) {subject};)"#
        )
    };
    // all: any authenticated identity.
    f.add_aci(
        &people,
        &attr_aci("employeeNumber", r#"userdn="ldap:///all""#),
    );
    assert!(f.dns(&anon, SUFFIX, "(employeeNumber=42)").is_empty());
    assert_eq!(f.dns(&bob, SUFFIX, "(employeeNumber=42)").len(), 3);
    // self: only one's own entry.
    f.add_aci(
        &people,
        &attr_aci("homeDirectory || pager", r#"userdn="ldap:///self""#),
    );
    f.modify(&f.root(), ALICE, ModOp::Add, "pager", &["555"])
        .unwrap();
    f.modify(&f.root(), BOB, ModOp::Add, "pager", &["555"])
        .unwrap();
    assert_eq!(
        f.dns(&alice, SUFFIX, "(pager=555)"),
        vec![ALICE.to_string()]
    );
    assert!(f.dns(&anon, SUFFIX, "(pager=555)").is_empty());
    // A DN list.
    f.add_aci(
        &people,
        &attr_aci(
            "employeeType",
            &format!(r#"userdn="ldap:///{CAROL} || ldap:///cn=nobody,{SUFFIX}""#),
        ),
    );
    f.modify(&f.root(), ALICE, ModOp::Add, "employeeType", &["x"])
        .unwrap();
    assert_eq!(f.dns(&carol, SUFFIX, "(employeeType=x)").len(), 1);
    assert!(f.dns(&bob, SUFFIX, "(employeeType=x)").is_empty());
    // groupdn via member and via uniqueMember (with a UID suffix).
    f.modify(&f.root(), ALICE, ModOp::Add, "roomNumber", &["101"])
        .unwrap();
    f.add_aci(
        &people,
        &attr_aci(
            "roomNumber",
            &format!(r#"groupdn="ldap:///{ADMINS} || ldap:///{STAFF}""#),
        ),
    );
    assert_eq!(f.dns(&alice, SUFFIX, "(roomNumber=101)").len(), 1);
    assert_eq!(f.dns(&bob, SUFFIX, "(roomNumber=101)").len(), 1);
    assert!(f.dns(&carol, SUFFIX, "(roomNumber=101)").is_empty());
    assert!(f.dns(&anon, SUFFIX, "(roomNumber=101)").is_empty());
    // not / !=: everybody authenticated except bob.
    f.modify(&f.root(), ALICE, ModOp::Add, "carLicense", &["X1"])
        .unwrap();
    f.add_aci(
        &people,
        &attr_aci(
            "carLicense",
            &format!(r#"userdn="ldap:///all" and userdn!="ldap:///{BOB}""#),
        ),
    );
    assert_eq!(f.dns(&carol, SUFFIX, "(carLicense=X1)").len(), 1);
    assert!(f.dns(&bob, SUFFIX, "(carLicense=X1)").is_empty());
}

#[test]
fn replication_identity() {
    let f = Fixture::new();
    let repl_dn = format!("cn=replicator,{SUFFIX}");
    f.add(
        &f.root(),
        &repl_dn,
        &[("objectClass", "person"), ("cn", "replicator"), ("sn", "r")],
    )
    .unwrap();
    let repl = f.user(&repl_dn);
    // Not yet configured: an ordinary user.
    assert!(f.dns(&repl, SUFFIX, "(userPassword=*)").is_empty());
    f.dir
        .access_control()
        .set_replication_identities(vec![dn(&repl_dn)]);
    assert_eq!(f.dns(&repl, SUFFIX, "(userPassword=*)").len(), 3);
    assert!(f
        .attrs_of(&repl, ALICE, &["*"])
        .contains(&"shadowlastchange".to_string()));
    assert_eq!(
        f.compare(&repl, ALICE, "userPassword", "alice-password")
            .ok(),
        Some(true)
    );
    // Writes are up to the ACIs; the keyword names it.
    assert!(insufficient(f.modify(
        &repl,
        ALICE,
        ModOp::Replace,
        "mail",
        &["r@x"]
    )));
    f.add_aci(
        SUFFIX,
        r#"(targetattr="*")(version 3.0; acl "repl"; allow (write) userdn="ldap:///replication";)"#,
    );
    f.modify(&repl, ALICE, ModOp::Replace, "mail", &["r@x"])
        .unwrap();
    assert!(insufficient(f.modify(
        &f.user(BOB),
        ALICE,
        ModOp::Replace,
        "mail",
        &["b@x"]
    )));
}

#[test]
fn deny_overrides_allow_and_negated_targetattr() {
    let f = Fixture::new();
    let bob = f.user(BOB);
    f.add_aci(
        SUFFIX,
        r#"(targetattr!="mail || homeDirectory")(version 3.0; acl "all but"; allow (read,search) userdn="ldap:///all";)"#,
    );
    let got = f.attrs_of(&bob, ALICE, &["*"]);
    assert!(got.contains(&"employeenumber".to_string()), "{got:?}");
    // mail is still readable through the public default ACI.
    assert!(got.contains(&"mail".to_string()));
    // homeDirectory is public too; deny it for bob explicitly.
    f.add_aci(
        &format!("ou=people,{SUFFIX}"),
        &format!(r#"(targetattr="homeDirectory || employeeNumber")(version 3.0; acl "no"; deny (read,search) userdn="ldap:///{BOB}";)"#),
    );
    let got = f.attrs_of(&bob, ALICE, &["*"]);
    assert!(!got.contains(&"homedirectory".to_string()), "{got:?}");
    assert!(!got.contains(&"employeenumber".to_string()), "{got:?}");
    assert!(got.contains(&"cn".to_string()));
    assert!(f
        .dns(&bob, SUFFIX, "(homeDirectory=/home/alice)")
        .is_empty());
    // Others keep them.
    let carol = f.user(CAROL);
    assert!(f
        .attrs_of(&carol, ALICE, &["*"])
        .contains(&"homedirectory".to_string()));
}

#[test]
fn targetfilter_and_subtree_scoping() {
    let f = Fixture::new();
    let carol = f.user(CAROL);
    let people = format!("ou=people,{SUFFIX}");
    let groups = format!("ou=groups,{SUFFIX}");
    // businessCategory on a person and on a group; only people's is granted.
    f.modify(&f.root(), ALICE, ModOp::Add, "businessCategory", &["x"])
        .unwrap();
    f.modify(&f.root(), ADMINS, ModOp::Add, "businessCategory", &["x"])
        .unwrap();
    f.add_aci(
        &people,
        r#"(targetattr="businessCategory")(version 3.0; acl "bc"; allow (read,search) userdn="ldap:///all";)"#,
    );
    assert_eq!(
        f.dns(&carol, SUFFIX, "(businessCategory=x)"),
        vec![ALICE.to_string()]
    );
    // A targetfilter narrows; != inverts.
    f.modify(&f.root(), BOB, ModOp::Add, "street", &["main"])
        .unwrap();
    f.modify(&f.root(), ALICE, ModOp::Add, "street", &["main"])
        .unwrap();
    f.add_aci(
        SUFFIX,
        r#"(targetattr="street")(targetfilter="(uid=bob)")(version 3.0; acl "bob street"; allow (read,search) userdn="ldap:///all";)"#,
    );
    assert_eq!(
        f.dns(&carol, SUFFIX, "(street=main)"),
        vec![BOB.to_string()]
    );
    f.modify(&f.root(), ALICE, ModOp::Add, "postalCode", &["1"])
        .unwrap();
    f.modify(&f.root(), BOB, ModOp::Add, "postalCode", &["1"])
        .unwrap();
    f.add_aci(
        SUFFIX,
        r#"(targetattr="postalCode")(targetfilter!="(uid=bob)")(version 3.0; acl "not bob"; allow (read,search) userdn="ldap:///all";)"#,
    );
    assert_eq!(
        f.dns(&carol, SUFFIX, "(postalCode=1)"),
        vec![ALICE.to_string()]
    );
    // target narrows to a subtree, negated target excludes it.
    f.add_aci(
        SUFFIX,
        &format!(r#"(target="ldap:///{groups}")(targetattr="*")(version 3.0; acl "groups"; allow (read,search) userdn="ldap:///all";)"#),
    );
    assert!(f
        .attrs_of(&carol, ADMINS, &["*"])
        .contains(&"businesscategory".to_string()));
    assert!(!f
        .attrs_of(&carol, ALICE, &["*"])
        .contains(&"employeenumber".to_string()));
    f.add_aci(
        SUFFIX,
        &format!(r#"(target!="ldap:///{people}")(targetattr="cn")(version 3.0; acl "hide"; deny (read) userdn="ldap:///all";)"#),
    );
    assert!(!f
        .attrs_of(&carol, ADMINS, &["cn"])
        .contains(&"cn".to_string()));
    assert!(f
        .attrs_of(&carol, ALICE, &["cn"])
        .contains(&"cn".to_string()));
}

#[test]
fn entries_without_readable_attributes_are_invisible() {
    let f = Fixture::new();
    f.add_aci(
        &format!("ou=people,{SUFFIX}"),
        r#"(targetattr="*")(version 3.0; acl "hide people"; deny (read,search) userdn="ldap:///anyone";)"#,
    );
    let anon = Identity::anonymous();
    let found = f.dns(&anon, SUFFIX, "(objectClass=*)");
    assert!(!found.iter().any(|d| d.contains("ou=people")), "{found:?}");
    assert!(found.contains(&format!("ou=groups,{SUFFIX}")));
}

#[test]
fn group_write_on_a_subtree_and_entry_rights() {
    let f = Fixture::new();
    let (alice, bob) = (f.user(ALICE), f.user(BOB));
    let people = format!("ou=people,{SUFFIX}");
    f.add_aci(
        &people,
        &format!(r#"(targetattr="*")(version 3.0; acl "admins"; allow (all) groupdn="ldap:///{ADMINS}";)"#),
    );
    // alice (member) writes, adds, renames, deletes; bob cannot.
    f.modify(&alice, BOB, ModOp::Replace, "mail", &["b@new"])
        .unwrap();
    f.modify(
        &alice,
        BOB,
        ModOp::Replace,
        "userPassword",
        &["reset-by-admin"],
    )
    .unwrap();
    assert!(insufficient(f.modify(
        &bob,
        CAROL,
        ModOp::Replace,
        "mail",
        &["c@new"]
    )));
    let dave = format!("uid=dave,{people}");
    assert!(insufficient(f.add(&bob, &dave, &person("dave"))));
    f.add(&alice, &dave, &person("dave")).unwrap();
    let rename = |who: &Identity, to: &str| {
        f.dir.write_blocking(
            who,
            WriteOp::ModDn {
                dn: dn(&dave),
                new_rdn: Rdn::single("uid", to.as_bytes().to_vec()),
                delete_old_rdn: false,
                new_superior: None,
            },
        )
    };
    assert!(insufficient(rename(&bob, "dave2")));
    rename(&alice, "dave2").unwrap();
    let dave2 = format!("uid=dave2,{people}");
    // Moving out of the subtree needs add rights at the destination.
    let moved = f.dir.write_blocking(
        &alice,
        WriteOp::ModDn {
            dn: dn(&dave2),
            new_rdn: Rdn::single("uid", b"dave2".to_vec()),
            delete_old_rdn: false,
            new_superior: Some(dn(&format!("ou=groups,{SUFFIX}"))),
        },
    );
    assert!(insufficient(moved));
    assert!(insufficient(
        f.dir
            .write_blocking(&bob, WriteOp::Delete { dn: dn(&dave2) })
    ));
    f.dir
        .write_blocking(&alice, WriteOp::Delete { dn: dn(&dave2) })
        .unwrap();
    // Outside the subtree alice has nothing.
    assert!(insufficient(f.modify(
        &alice,
        STAFF,
        ModOp::Replace,
        "description",
        &["x"]
    )));
    // Adding an entry that carries its own aci needs write on aci.
    let with_aci = f.add(
        &alice,
        &format!("uid=eve,{people}"),
        &[
            ("objectClass", "inetOrgPerson"),
            ("uid", "eve"),
            ("cn", "eve"),
            ("sn", "eve"),
            (
                "aci",
                r#"(targetattr="*")(version 3.0; acl "mine"; allow (all) userdn="ldap:///anyone";)"#,
            ),
        ],
    );
    with_aci.unwrap();
    let deny_aci = format!(
        r#"(targetattr="aci")(version 3.0; acl "no aci edits"; deny (write) groupdn="ldap:///{ADMINS}";)"#
    );
    f.add_aci(&people, &deny_aci);
    assert!(insufficient(f.add(
        &alice,
        &format!("uid=frank,{people}"),
        &[
            ("objectClass", "inetOrgPerson"),
            ("uid", "frank"),
            ("cn", "frank"),
            ("sn", "frank"),
            (
                "aci",
                r#"(targetattr="*")(version 3.0; acl "mine"; allow (all) userdn="ldap:///anyone";)"#,
            ),
        ],
    )));
}

#[test]
fn aci_values_are_visible_only_to_their_writers() {
    let f = Fixture::new();
    let people = format!("ou=people,{SUFFIX}");
    f.add_aci(
        &people,
        &format!(r#"(targetattr="*")(version 3.0; acl "admins"; allow (all) groupdn="ldap:///{ADMINS}";)"#),
    );
    assert!(f
        .attrs_of(&f.user(ALICE), &people, &["aci"])
        .contains(&"aci".to_string()));
    assert!(!f
        .attrs_of(&f.user(BOB), &people, &["aci"])
        .contains(&"aci".to_string()));
    assert!(f.dns(&f.user(BOB), SUFFIX, "(aci=*)").is_empty());
}

#[test]
fn selfwrite_adds_and_removes_only_ones_own_dn() {
    let f = Fixture::new();
    f.add_aci(
        ADMINS,
        r#"(targetattr="member")(version 3.0; acl "join"; allow (selfwrite) userdn="ldap:///all";)"#,
    );
    let bob = f.user(BOB);
    f.modify(&bob, ADMINS, ModOp::Add, "member", &[BOB])
        .unwrap();
    assert!(insufficient(f.modify(
        &bob,
        ADMINS,
        ModOp::Add,
        "member",
        &[CAROL]
    )));
    assert!(insufficient(f.modify(
        &bob,
        ADMINS,
        ModOp::Replace,
        "member",
        &[BOB]
    )));
    f.modify(&bob, ADMINS, ModOp::Delete, "member", &[BOB])
        .unwrap();
}

#[test]
fn invalid_aci_values_are_refused() {
    let f = Fixture::new();
    let r = f.modify(
        &f.root(),
        SUFFIX,
        ModOp::Add,
        "aci",
        &[r#"(targetattr="cn")(version 3.0; acl "x"; allow (raed) userdn="ldap:///anyone";)"#],
    );
    match r {
        Err(DirError::InvalidSyntax(msg)) => assert!(msg.contains("unknown right 'raed'"), "{msg}"),
        other => panic!("expected invalidAttributeSyntax, got {other:?}"),
    }
    let r = f.add(
        &f.root(),
        &format!("ou=x,{SUFFIX}"),
        &[
            ("objectClass", "organizationalUnit"),
            ("ou", "x"),
            ("aci", "not an aci"),
        ],
    );
    assert!(matches!(r, Err(DirError::InvalidSyntax(_))), "{r:?}");
}

/// The access check walks a DN's ancestors without recursion: a DN of
/// 50,000 RDNs is checked on a thread with a 256 KiB stack (recursion over
/// the depth overflowed the writer thread's stack and aborted the server),
/// and the ACIs of the ancestors that exist still apply to it.
#[test]
fn access_to_a_very_deep_dn_needs_no_deep_stack() {
    let f = Fixture::new();
    let anon = Identity::anonymous();
    let deep = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let s = f.dir.schema().clone();
            let core = &f.dir.core;
            let k = |d: &Dn| core.dn_key(d).into_bytes();
            let res = Resolver {
                schema: &s,
                dn_key: &k,
                computed: None,
            };
            let txn = f.dir.store().read().unwrap();
            let checker = Checker::new(res, &txn, &anon, false);
            let rights = |d: Dn| {
                let mut e = crate::model::Entry::new(d);
                e.set("cn", vec![b"x".to_vec()], crate::model::Csn::ZERO);
                let a = checker.access_at(&e, false).unwrap();
                (a.allows(Rights::READ, "cn"), a.allows(Rights::WRITE, "cn"))
            };
            let mut rdns: Vec<Rdn> = (0..50_000)
                .map(|i| Rdn::single("ou", format!("x{i}")))
                .collect();
            rdns.extend(dn(&format!("ou=people,{SUFFIX}")).rdns);
            let shallow = rights(dn(&format!("cn=x,ou=people,{SUFFIX}")));
            (rights(Dn { rdns }), shallow)
        })
        .unwrap()
        .join()
        .expect("the check ran to the end");
    assert_eq!(deep.0, deep.1);
    // The suffix's default ACIs let anyone read cn and nobody anonymous write it.
    assert_eq!(deep.0, (true, false));
}
