//! OpenLDAP's command-line clients against the real server: exit codes are
//! LDAP result codes (RFC 4511), and the data left behind is checked.

mod common;

use common::*;

/// Extra people for filter tests: a small uidNumber (numeric vs string
/// ordering) and a cn holding the filter metacharacters `*`, `(` and `)`.
const EXTRA: &str = "\
dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: posixAccount
uid: carol
cn: Carol Star*Name (x)
sn: Star
uidNumber: 9
gidNumber: 10000
homeDirectory: /home/carol
description: first line
";

const CAROL: &str = "uid=carol,ou=people,dc=example,dc=com";

fn sample_plus_extra() -> Server {
    let s = Server::with_sample();
    assert_code(&ldapadd_root(&s.url(), EXTRA), 0, "adding carol");
    s
}

/// DNs (sorted, lower case) matching `filter` in a subtree search as root.
fn find(s: &Server, filter: &str) -> Vec<String> {
    let o = search_root(&s.url(), SUFFIX, &[filter, "1.1"]);
    assert_code(&o, 0, &format!("search {filter}"));
    dn_set(&o)
}

fn assert_finds(s: &Server, filter: &str, want: &[&str]) {
    assert_eq!(find(s, filter), sorted_lower(want), "filter {filter}");
}

// ---------------------------------------------------------------------------
// ldapsearch

#[test]
fn search_scopes() {
    let s = Server::with_sample();
    let url = s.url();
    let base = search_root(&url, SUFFIX, &["-s", "base", "1.1"]);
    assert_code(&base, 0, "base scope");
    assert_eq!(dn_set(&base), sorted_lower(&[SUFFIX]));

    let one = search_root(&url, SUFFIX, &["-s", "one", "1.1"]);
    assert_code(&one, 0, "one scope");
    assert_eq!(dn_set(&one), sorted_lower(&[PEOPLE, GROUPS]));

    let sub = search_root(&url, SUFFIX, &["-s", "sub", "1.1"]);
    assert_code(&sub, 0, "sub scope");
    assert_eq!(
        dn_set(&sub),
        sorted_lower(&[
            SUFFIX,
            PEOPLE,
            GROUPS,
            ALICE,
            BOB,
            "cn=staff,ou=groups,dc=example,dc=com"
        ])
    );

    let one_people = search_root(&url, PEOPLE, &["-s", "one", "1.1"]);
    assert_code(&one_people, 0, "one scope under people");
    assert_eq!(dn_set(&one_people), sorted_lower(&[ALICE, BOB]));

    // A base search on a leaf with a non-matching filter returns nothing, code 0.
    let none = search_root(&url, ALICE, &["-s", "base", "(uid=bob)", "1.1"]);
    assert_code(&none, 0, "base scope, filter false");
    assert!(dn_set(&none).is_empty());
}

#[test]
fn search_filter_equality_and_substrings() {
    let s = sample_plus_extra();
    assert_finds(&s, "(uid=alice)", &[ALICE]);
    // caseIgnoreMatch, insignificant spaces.
    assert_finds(&s, "(cn=alice   LIDDELL)", &[ALICE]);
    assert_finds(&s, "(cn=Ali*)", &[ALICE]);
    assert_finds(&s, "(cn=*iddel*)", &[ALICE]);
    assert_finds(&s, "(cn=*der)", &[BOB]);
    assert_finds(&s, "(cn=A*Li*l)", &[ALICE]);
    assert_finds(&s, "(cn=B*b*u*r)", &[BOB]);
    assert_finds(&s, "(cn=*o*)", &[BOB, CAROL]);
    // RFC 4515 escapes: \2a is a literal '*', \28 and \29 are parentheses.
    assert_finds(&s, "(cn=Carol Star\\2aName \\28x\\29)", &[CAROL]);
    assert_finds(&s, "(cn=*\\2aName*)", &[CAROL]);
    assert_finds(&s, "(cn=*\\28x\\29)", &[CAROL]);
    assert_finds(&s, "(cn=carol star\\2a*)", &[CAROL]);
    // The escaped '*' is not a wildcard.
    assert_finds(&s, "(cn=Carol Star\\2a)", &[]);
    assert_finds(&s, "(cn=Alice\\2a)", &[]);
    // Equality on a DN-syntax attribute.
    assert_finds(
        &s,
        "(member=UID=Alice, OU=People,DC=example,DC=com)",
        &["cn=staff,ou=groups,dc=example,dc=com"],
    );
    // objectClass equality is case-insensitive and follows inheritance of the value set.
    assert_finds(&s, "(objectClass=POSIXACCOUNT)", &[ALICE, BOB, CAROL]);
}

#[test]
fn search_filter_ordering_presence_approx() {
    let s = sample_plus_extra();
    // integerOrderingMatch: 9 < 10001 numerically (a string comparison would say otherwise).
    assert_finds(&s, "(uidNumber>=10002)", &[BOB]);
    assert_finds(&s, "(uidNumber<=10001)", &[ALICE, CAROL]);
    assert_finds(&s, "(uidNumber>=10)", &[ALICE, BOB]);
    assert_finds(&s, "(uidNumber<=9)", &[CAROL]);
    // cn has no ORDERING rule (RFC 4519 name): Undefined, no match.
    assert_finds(&s, "(cn>=C)", &[]);
    // generalizedTimeOrderingMatch on createTimestamp.
    assert_eq!(find(&s, "(createTimestamp>=19700101000000Z)").len(), 7);
    assert_finds(&s, "(createTimestamp<=19700101000000Z)", &[]);
    // Presence.
    assert_finds(&s, "(mail=*)", &[ALICE, BOB]);
    assert_finds(&s, "(loginShell=*)", &[ALICE]);
    assert_finds(
        &s,
        "(memberUid=*)",
        &["cn=staff,ou=groups,dc=example,dc=com"],
    );
    // Approximate match: at least equality matches (exact algorithm is the server's).
    let approx = find(&s, "(cn~=Alice Liddell)");
    assert!(
        approx.contains(&ALICE.to_ascii_lowercase()),
        "approx: {approx:?}"
    );
    assert!(
        !approx.contains(&BOB.to_ascii_lowercase()),
        "approx: {approx:?}"
    );
}

#[test]
fn search_filter_boolean_nested() {
    let s = sample_plus_extra();
    assert_finds(
        &s,
        "(&(objectClass=posixAccount)(|(uid=alice)(uid=bob))(!(uid=bob)))",
        &[ALICE],
    );
    assert_finds(
        &s,
        "(|(uid=alice)(cn=staff))",
        &[ALICE, "cn=staff,ou=groups,dc=example,dc=com"],
    );
    assert_finds(&s, "(!(objectClass=*))", &[]);
    assert_finds(
        &s,
        "(&(objectClass=inetOrgPerson)(!(|(uid=alice)(uid=carol))))",
        &[BOB],
    );
    assert_finds(&s, "(&(!(!(uid=bob))))", &[BOB]);
    // RFC 4526 absolute true/false filters.
    assert_finds(&s, "(&(uid=alice)(&))", &[ALICE]);
    assert_finds(&s, "(&(uid=alice)(|))", &[]);
}

#[test]
fn search_filter_extensible_match() {
    let s = sample_plus_extra();
    assert_finds(&s, "(cn:caseExactMatch:=Alice Liddell)", &[ALICE]);
    assert_finds(&s, "(cn:caseExactMatch:=alice liddell)", &[]);
    // By matching rule OID (caseExactMatch is 2.5.13.5).
    assert_finds(&s, "(cn:2.5.13.5:=Bob Builder)", &[BOB]);
    // dnAttributes: the value is matched against the RDN values of the DN too.
    assert_finds(&s, "(ou:dn:=people)", &[PEOPLE, ALICE, BOB, CAROL]);
    assert_finds(
        &s,
        "(&(objectClass=posixGroup)(ou:dn:=groups))",
        &["cn=staff,ou=groups,dc=example,dc=com"],
    );
    // Attribute-less extensible match with a rule.
    let any = find(&s, "(:caseExactMatch:=Bob Builder)");
    assert_eq!(any, sorted_lower(&[BOB]), "(:caseExactMatch:=Bob Builder)");
    // Active Directory bitAnd (1.2.840.113556.1.4.803): odd uidNumbers.
    assert_finds(&s, "(uidNumber:1.2.840.113556.1.4.803:=1)", &[ALICE, CAROL]);
    assert_finds(&s, "(uidNumber:1.2.840.113556.1.4.803:=2)", &[BOB]);
    // bitOr (1.2.840.113556.1.4.804): 10001 = 0b10011100010001, 10002 has bit 2.
    assert_finds(&s, "(uidNumber:1.2.840.113556.1.4.804:=6)", &[BOB]);
}

#[test]
fn search_filter_unknown_attribute() {
    let s = sample_plus_extra();
    // An undefined attribute type evaluates to Undefined: no error, no match.
    assert_finds(&s, "(unknownAttr=x)", &[]);
    assert_finds(&s, "(unknownAttr=*)", &[]);
    assert_finds(&s, "(unknownAttr=x*)", &[]);
    // NOT Undefined is Undefined (RFC 4511 4.5.1.7): still no match.
    assert_finds(&s, "(!(unknownAttr=x))", &[]);
    // Undefined OR TRUE is TRUE.
    assert_finds(&s, "(|(unknownAttr=x)(uid=alice))", &[ALICE]);
    // Undefined AND FALSE is FALSE, NOT FALSE is TRUE.
    assert_finds(&s, "(&(uid=bob)(!(&(unknownAttr=x)(uid=alice))))", &[BOB]);
}

#[test]
fn search_filter_syntax_error() {
    let s = Server::with_sample();
    // ldapsearch rejects some bad filters itself; one it passes: an invalid extensible rule.
    let o = search_root(&s.url(), SUFFIX, &["(cn:noSuchRule:=x)", "1.1"]);
    // RFC 4511 4.5.1.7.7: unrecognized matchingRule -> Undefined, not an error.
    assert_code(&o, 0, "unknown matching rule");
    assert!(
        dn_set(&o).is_empty(),
        "no entry matches an unknown rule: {}",
        out(&o)
    );
}

#[test]
fn search_attribute_selection() {
    let s = Server::with_sample();
    let url = s.url();
    // Default: all user attributes, no operational ones.
    let e = read_entry(&url, ALICE, &[]).expect("alice");
    for a in ["objectClass", "uid", "cn", "sn", "mail", "uidNumber"] {
        assert!(e.has(a), "default selection lacks {a}: {e:?}");
    }
    for a in [
        "entryUUID",
        "createTimestamp",
        "creatorsName",
        "entryDN",
        "structuralObjectClass",
    ] {
        assert!(!e.has(a), "default selection has operational {a}: {e:?}");
    }
    // "*" is the same.
    let star = read_entry(&url, ALICE, &["*"]).expect("alice *");
    assert!(star.has("cn") && !star.has("entryUUID"), "{star:?}");

    // "+": operational only.
    let plus = read_entry(&url, ALICE, &["+"]).expect("alice +");
    assert!(
        !plus.has("cn") && !plus.has("uid"),
        "+ returned user attributes: {plus:?}"
    );
    for a in [
        "entryUUID",
        "createTimestamp",
        "modifyTimestamp",
        "creatorsName",
        "modifiersName",
        "entryDN",
        "entryCSN",
        "structuralObjectClass",
        "subschemaSubentry",
        "hasSubordinates",
    ] {
        assert!(plus.has(a), "+ lacks {a}: {plus:?}");
    }
    // "*" and "+".
    let both = read_entry(&url, ALICE, &["*", "+"]).expect("alice * +");
    assert!(both.has("cn") && both.has("entryUUID"), "{both:?}");

    // "1.1": no attributes at all.
    let none = read_entry(&url, ALICE, &["1.1"]).expect("alice 1.1");
    assert!(none.attrs.is_empty(), "1.1 returned attributes: {none:?}");

    // Explicit names, case-insensitively, including operational ones.
    let ex = read_entry(
        &url,
        ALICE,
        &[
            "MAIL",
            "entryUUID",
            "createTimestamp",
            "entryDN",
            "hasSubordinates",
            "numSubordinates",
            "structuralObjectClass",
            "subschemaSubentry",
        ],
    )
    .expect("alice explicit");
    assert_eq!(ex.get("mail"), vec!["alice@example.com"]);
    assert!(!ex.has("cn"), "only requested attributes: {ex:?}");
    let uuid = ex.get("entryUUID");
    assert_eq!(uuid.len(), 1, "{ex:?}");
    let u = &uuid[0];
    let parts: Vec<usize> = u.split('-').map(str::len).collect();
    assert_eq!(parts, vec![8, 4, 4, 4, 12], "entryUUID {u}");
    let ts = ex.get("createTimestamp");
    assert_eq!(ts.len(), 1, "{ex:?}");
    assert!(
        ts[0].len() >= 15
            && ts[0].ends_with('Z')
            && ts[0][..14].bytes().all(|b| b.is_ascii_digit()),
        "createTimestamp {:?}",
        ts[0]
    );
    assert!(ts[0].starts_with("20"), "createTimestamp {:?}", ts[0]);
    assert_eq!(
        ex.get("entryDN")
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        vec![ALICE.to_string()]
    );
    assert_eq!(ex.get("hasSubordinates"), vec!["FALSE"]);
    assert_eq!(ex.get("numSubordinates"), vec!["0"]);
    assert_eq!(
        ex.get("structuralObjectClass")
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        vec!["inetorgperson"]
    );
    assert_eq!(
        ex.get("subschemaSubentry")
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        vec!["cn=schema"]
    );

    let people = read_entry(
        &url,
        PEOPLE,
        &[
            "hasSubordinates",
            "numSubordinates",
            "structuralObjectClass",
        ],
    )
    .expect("people");
    assert_eq!(people.get("hasSubordinates"), vec!["TRUE"]);
    assert_eq!(people.get("numSubordinates"), vec!["2"]);
    assert_eq!(
        people
            .get("structuralObjectClass")
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        vec!["organizationalunit"]
    );

    // Unknown attribute names in the selection are ignored.
    let unk = read_entry(&url, ALICE, &["noSuchAttr", "sn"]).expect("alice unknown");
    assert_eq!(unk.get("sn"), vec!["Liddell"]);
    assert_eq!(unk.names(), vec!["sn"]);

    // -A typesOnly: names without values.
    let o = search_root(&url, ALICE, &["-s", "base", "-A"]);
    assert_code(&o, 0, "typesOnly");
    let t = entries(&o);
    assert_eq!(t.len(), 1);
    assert!(t[0].has("cn") && t[0].has("mail"), "{:?}", t[0]);
    assert!(
        t[0].attrs.iter().all(|(_, v)| v.is_empty()),
        "typesOnly returned values: {}",
        out(&o)
    );
}

#[test]
fn search_size_and_time_limits() {
    let s = Server::with_sample();
    let url = s.url();
    let o = search_root(&url, SUFFIX, &["-z", "1", "(objectClass=*)", "1.1"]);
    assert_code(&o, 4, "-z 1 over 6 entries");
    assert_eq!(
        entries(&o).len(),
        1,
        "exactly one entry before sizeLimitExceeded: {}",
        out(&o)
    );
    assert!(err(&o).contains("Size limit exceeded"), "{}", err(&o));
    // A limit not exceeded is no error.
    let ok = search_root(&url, SUFFIX, &["-z", "1", "(uid=alice)", "1.1"]);
    assert_code(&ok, 0, "-z 1 with one match");
    let ok2 = search_root(&url, SUFFIX, &["-z", "6", "1.1"]);
    assert_code(&ok2, 0, "-z 6 with six entries");
    assert_eq!(entries(&ok2).len(), 6);
    // Time limit: accepted, results complete.
    let t = search_root(&url, SUFFIX, &["-l", "5", "1.1"]);
    assert_code(&t, 0, "-l 5");
    assert_eq!(entries(&t).len(), 6);
}

#[test]
fn search_paged_results() {
    let s = Server::with_sample();
    let url = s.url();
    let mut ldif = String::new();
    for i in 0..15 {
        ldif.push_str(&format!(
            "dn: uid=p{i:02},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: p{i:02}\ncn: Paged {i}\nsn: P\n\n"
        ));
    }
    assert_code(&ldapadd_root(&url, &ldif), 0, "adding 15 entries");
    // Non-LLL output to also see the cookies.
    let o = client(
        "ldapsearch",
        &url,
        Who::Root,
        &[
            "-o",
            "ldif-wrap=no",
            "-b",
            SUFFIX,
            "-E",
            "pr=2/noprompt",
            "(objectClass=*)",
            "1.1",
        ],
        None,
    );
    assert_code(&o, 0, "paged search");
    let mut got: Vec<String> = entries(&o)
        .into_iter()
        .map(|e| e.dn.to_ascii_lowercase())
        .collect();
    assert_eq!(got.len(), 21, "21 entries over the pages:\n{}", out(&o));
    got.sort();
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(got, dedup, "an entry was returned twice");
    let pages = out(&o).matches("pagedresults: cookie=").count();
    assert!(
        pages >= 10,
        "expected >= 10 page responses, saw {pages}:\n{}",
        out(&o)
    );
    // Every page holds at most 2 entries: between two "# search result" markers.
    for chunk in out(&o).split("# search result") {
        let n = chunk.lines().filter(|l| l.starts_with("dn: ")).count();
        assert!(n <= 2, "a page held {n} entries:\n{chunk}");
    }
    // Paged results as an ordinary user on a filter.
    let u = client(
        "ldapsearch",
        &url,
        Who::User(ALICE, ALICE_PW),
        &[
            "-LLL",
            "-b",
            PEOPLE,
            "-E",
            "pr=4/noprompt",
            "(cn=Paged*)",
            "cn",
        ],
        None,
    );
    assert_code(&u, 0, "paged search as alice");
    assert_eq!(dn_set(&u).len(), 15, "{}", out(&u));
}

#[test]
fn search_controls_criticality() {
    let s = Server::with_sample();
    let url = s.url();
    let o = search_root(&url, SUFFIX, &["-e", "!1.2.3.4", "1.1"]);
    assert_code(&o, 12, "unknown critical control");
    assert!(
        entries(&o).is_empty(),
        "no entries with an unsupported critical control"
    );
    let o = search_root(&url, SUFFIX, &["-e", "1.2.3.4", "1.1"]);
    assert_code(&o, 0, "unknown non-critical control is ignored");
    assert_eq!(entries(&o).len(), 6);
    // Same on a write: nothing is changed.
    let mut args = base_args(&url, Who::Root);
    args.extend(["-e".to_string(), "!1.2.3.4".to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = run_tool(
        "ldapmodify",
        &refs,
        Some(&format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: changed@example.com\n"
        )),
    );
    assert_code(&m, 12, "modify with an unknown critical control");
    let e = read_entry(&url, ALICE, &["mail"]).expect("alice");
    assert_eq!(e.get("mail"), vec!["alice@example.com"]);
    // manageDsaIT (2.16.840.1.113730.3.4.2) is supported, critical is fine.
    let o = search_root(&url, SUFFIX, &["-M", "-M", "-s", "base", "1.1"]);
    assert_code(&o, 0, "critical manageDsaIT");
}

#[test]
fn search_missing_and_invalid_base() {
    let s = Server::with_sample();
    let url = s.url();
    let o = search_root(&url, "uid=nobody,ou=people,dc=example,dc=com", &[]);
    assert_code(&o, 32, "missing base");
    assert!(
        err(&o).contains(&format!("Matched DN: {PEOPLE}")),
        "matchedDN should be the deepest existing ancestor:\n{}",
        err(&o)
    );
    let o = search_root(&url, "ou=a,ou=b,dc=example,dc=com", &[]);
    assert_code(&o, 32, "missing base two levels down");
    assert!(
        err(&o).contains(&format!("Matched DN: {SUFFIX}")),
        "{}",
        err(&o)
    );
    // Outside every naming context: 32 (no matchedDN to give).
    let o = search_root(&url, "dc=other,dc=org", &[]);
    assert_code(&o, 32, "base outside the naming contexts");
    // Syntactically invalid DNs.
    for bad in ["foo", "uid=alice,,dc=example", "=x,dc=example,dc=com"] {
        let o = search_root(&url, bad, &[]);
        assert_code(&o, 34, &format!("invalid base {bad:?}"));
    }
}

// ---------------------------------------------------------------------------
// root DSE and schema

#[test]
fn root_dse() {
    let s = Server::fast();
    let url = s.url();
    // Plain: only objectClass (everything else is operational).
    let o = search_as(&url, Who::Anon, "", &["-s", "base"]);
    assert_code(&o, 0, "root DSE anonymously");
    let e = entries(&o);
    assert_eq!(e.len(), 1, "{}", out(&o));
    assert_eq!(e[0].dn, "");
    assert_eq!(
        e[0].names(),
        vec!["objectclass"],
        "plain root DSE: {}",
        out(&o)
    );

    let o = search_as(&url, Who::Anon, "", &["-s", "base", "+"]);
    assert_code(&o, 0, "root DSE +");
    let r = &entries(&o)[0];
    let has = |attr: &str, v: &str| {
        assert!(
            r.get(attr).iter().any(|x| x.eq_ignore_ascii_case(v)),
            "root DSE {attr} lacks {v}:\n{}",
            out(&o)
        )
    };
    has("namingContexts", SUFFIX);
    assert_eq!(r.get("supportedLDAPVersion"), vec!["3"], "only LDAPv3");
    has("supportedControl", "1.2.840.113556.1.4.319");
    has("supportedControl", "2.16.840.1.113730.3.4.2");
    has("supportedExtension", "1.3.6.1.4.1.4203.1.11.1");
    has("supportedExtension", "1.3.6.1.4.1.4203.1.11.3");
    has("supportedFeatures", "1.3.6.1.4.1.4203.1.5.1");
    has("supportedFeatures", "1.3.6.1.1.14");
    has("subschemaSubentry", "cn=schema");
    assert!(!r.get("vendorName").is_empty(), "vendorName");
    assert!(!r.get("vendorVersion").is_empty(), "vendorVersion");
    // Explicit request by name works too.
    let o = search_as(&url, Who::Anon, "", &["-s", "base", "namingContexts"]);
    assert_code(&o, 0, "namingContexts");
    assert_eq!(entries(&o)[0].get("namingContexts"), vec![SUFFIX]);
    // A one-level search from "" does not list the root DSE itself and a
    // subtree search from "" does not return the root DSE (RFC 4512 5.1),
    // though the subtree search does return the naming context's entries.
    for scope in ["one", "sub"] {
        let o = search_as(
            &url,
            Who::Anon,
            "",
            &["-s", scope, "(objectClass=*)", "1.1"],
        );
        assert_code(&o, 0, &format!("{scope} search from the root"));
        assert!(
            entries(&o).iter().all(|e| !e.dn.is_empty()),
            "a {scope} search from \"\" returned the root DSE:\n{}",
            out(&o)
        );
        if scope == "sub" {
            assert!(dn_set(&o).contains(&SUFFIX.to_string()), "{}", out(&o));
        }
    }
    let o = search_as(
        &url,
        Who::Anon,
        "",
        &["-s", "base", "(objectClass=*)", "supportedSASLMechanisms"],
    );
    assert_code(&o, 0, "supportedSASLMechanisms request");
    assert_eq!(
        entries(&o)[0].get("supportedSASLMechanisms"),
        vec!["EXTERNAL"],
        "{}",
        out(&o)
    );
}

#[test]
fn schema_subentry() {
    let s = Server::fast();
    let url = s.url();
    let o = search_as(&url, Who::Anon, "cn=schema", &["-s", "base", "+"]);
    assert_code(&o, 0, "cn=schema +");
    let e = &entries(&o)[0];
    for a in [
        "attributeTypes",
        "objectClasses",
        "ldapSyntaxes",
        "matchingRules",
    ] {
        assert!(!e.get(a).is_empty(), "cn=schema has no {a}");
    }
    let ocs = e.get("objectClasses").join("\n");
    for name in [
        "'inetOrgPerson'",
        "'posixAccount'",
        "'sambaSamAccount'",
        "'organizationalUnit'",
        "'groupOfNames'",
    ] {
        assert!(ocs.contains(name), "objectClasses lacks NAME {name}");
    }
    let ats = e.get("attributeTypes").join("\n");
    for name in ["'uidNumber'", "'sambaSID'", "'mail'", "'entryUUID'"] {
        assert!(ats.contains(name), "attributeTypes lacks NAME {name}");
    }
    assert!(
        e.get("ldapSyntaxes")
            .iter()
            .any(|v| v.contains("1.3.6.1.4.1.1466.115.121.1.27")),
        "Integer syntax"
    );
    assert!(
        e.get("matchingRules")
            .iter()
            .any(|v| v.contains("caseIgnoreMatch")),
        "caseIgnoreMatch"
    );
    // Explicit attribute names give the same.
    let o = search_as(
        &url,
        Who::Anon,
        "cn=schema",
        &[
            "-s",
            "base",
            "attributeTypes",
            "objectClasses",
            "ldapSyntaxes",
            "matchingRules",
        ],
    );
    assert_code(&o, 0, "cn=schema explicit");
    let x = &entries(&o)[0];
    assert_eq!(x.get("objectClasses").len(), e.get("objectClasses").len());
    assert_eq!(x.get("attributeTypes").len(), e.get("attributeTypes").len());
    // The subentry's object classes.
    let o = search_as(&url, Who::Anon, "cn=schema", &["-s", "base", "objectClass"]);
    assert_code(&o, 0, "cn=schema objectClass");
    let oc: Vec<String> = entries(&o)[0]
        .get("objectClass")
        .iter()
        .map(|v| v.to_ascii_lowercase())
        .collect();
    assert!(oc.contains(&"subschema".to_string()), "{oc:?}");
}

// ---------------------------------------------------------------------------
// ldapadd

fn person(uid: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid} Person\nsn: Person\n"
    )
}

fn assert_absent(url: &str, dn: &str) {
    assert!(
        read_entry(url, dn, &[]).is_none(),
        "{dn} exists after a failed operation"
    );
}

#[test]
fn add_and_duplicate() {
    let s = Server::with_sample();
    let url = s.url();
    let o = ldapadd_root(&url, &person("dave"));
    assert_code(&o, 0, "add dave");
    let e = read_entry(
        &url,
        "uid=dave,ou=people,dc=example,dc=com",
        &["cn", "sn", "creatorsName"],
    )
    .expect("dave");
    assert_eq!(e.get("cn"), vec!["dave Person"]);
    assert_eq!(
        e.get("creatorsName")
            .iter()
            .map(|v| v.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        vec!["cn=directory manager"]
    );
    let o = ldapadd_root(&url, &person("dave"));
    assert_code(&o, 68, "duplicate add");
    // Different case and spacing, same DN.
    let o = ldapadd_root(
        &url,
        "dn: UID=Dave , OU=People,DC=Example,DC=Com\nobjectClass: inetOrgPerson\nuid: Dave\ncn: x\nsn: y\n",
    );
    assert_code(&o, 68, "duplicate add, differently written DN");
}

#[test]
fn add_missing_parent() {
    let s = Server::with_sample();
    let url = s.url();
    let o = ldapadd_root(
        &url,
        "dn: uid=x,ou=nowhere,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: x\ncn: x\nsn: x\n",
    );
    assert_code(&o, 32, "add under a missing parent");
    assert!(
        err(&o)
            .to_ascii_lowercase()
            .contains(&format!("matched dn: {SUFFIX}")),
        "matchedDN in:\n{}",
        err(&o)
    );
    assert_absent(&url, "uid=x,ou=nowhere,dc=example,dc=com");
}

#[test]
fn add_objectclass_violations() {
    let s = Server::with_sample();
    let url = s.url();
    let cases = [
        (
            "missing MUST sn",
            "dn: uid=v1,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: v1\ncn: v1\n",
            "uid=v1,ou=people,dc=example,dc=com",
        ),
        (
            "two unrelated structural classes",
            "dn: uid=v2,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: account\nuid: v2\ncn: v2\nsn: v2\n",
            "uid=v2,ou=people,dc=example,dc=com",
        ),
        (
            "attribute not allowed",
            "dn: uid=v3,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: v3\ncn: v3\nsn: v3\ngidNumber: 5\n",
            "uid=v3,ou=people,dc=example,dc=com",
        ),
        (
            "no structural class",
            "dn: uid=v4,ou=people,dc=example,dc=com\nobjectClass: posixAccount\nuid: v4\ncn: v4\nuidNumber: 1\ngidNumber: 1\nhomeDirectory: /\n",
            "uid=v4,ou=people,dc=example,dc=com",
        ),
        (
            "unknown object class",
            "dn: uid=v5,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: noSuchClass\nuid: v5\ncn: v5\nsn: v5\n",
            "uid=v5,ou=people,dc=example,dc=com",
        ),
        (
            "no objectClass at all",
            "dn: uid=v6,ou=people,dc=example,dc=com\nuid: v6\ncn: v6\nsn: v6\n",
            "uid=v6,ou=people,dc=example,dc=com",
        ),
    ];
    for (what, ldif, dn) in cases {
        let o = ldapadd_root(&url, ldif);
        // OpenLDAP gives 65 (objectClassViolation) for all of these; an
        // undefined objectClass value is 65 too ("unrecognized objectClass").
        assert_code(&o, 65, what);
        assert!(
            !err(&o).trim().is_empty(),
            "{what}: a diagnostic message is expected"
        );
        assert_absent(&url, dn);
    }
}

#[test]
fn add_attribute_errors() {
    let s = Server::with_sample();
    let url = s.url();
    let base = "objectClass: inetOrgPerson\nobjectClass: posixAccount\ncn: x\nsn: x\ngidNumber: 1\nhomeDirectory: /home/x\n";
    let cases: [(&str, String, i32); 6] = [
        ("unknown attribute type", format!("dn: uid=e1,{PEOPLE}\n{base}uid: e1\nuidNumber: 1\nfooBarBaz: 1\n"), 17),
        ("invalid INTEGER syntax", format!("dn: uid=e2,{PEOPLE}\n{base}uid: e2\nuidNumber: abc\n"), 21),
        ("two values of SINGLE-VALUE uidNumber", format!("dn: uid=e3,{PEOPLE}\n{base}uid: e3\nuidNumber: 1\nuidNumber: 2\n"), 19),
        ("duplicate value", format!("dn: uid=e4,{PEOPLE}\n{base}uid: e4\nuidNumber: 1\nmail: a@example.com\nmail: a@example.com\n"), 20),
        ("NO-USER-MODIFICATION createTimestamp", format!("dn: uid=e5,{PEOPLE}\n{base}uid: e5\nuidNumber: 1\ncreateTimestamp: 20200101000000Z\n"), 19),
        ("invalid DN syntax in a DN-valued attribute", format!("dn: cn=g,{GROUPS}\nobjectClass: groupOfNames\ncn: g\nmember: not a dn\n"), 21),
    ];
    for (what, ldif, want) in cases.iter() {
        let o = ldapadd_root(&url, ldif);
        assert_code(&o, *want, what);
        let dn = ldif
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("dn: ")
            .to_string();
        assert_absent(&url, &dn);
    }
    // A syntactically invalid entry DN.
    let o = ldapadd_root(
        &url,
        "dn: uid=bad,,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: bad\ncn: b\nsn: b\n",
    );
    assert_code(&o, 34, "invalid entry DN");
    // An RDN value missing from the attribute list is added from the DN.
    let o = ldapadd_root(
        &url,
        &format!("dn: uid=rdnonly,{PEOPLE}\nobjectClass: inetOrgPerson\ncn: r\nsn: r\n"),
    );
    // RFC 4511 4.7: the RDN's values are part of the entry whether or not
    // the attribute list repeats them.
    assert_code(&o, 0, "add with the RDN value only in the DN");
    let e = read_entry(&url, &format!("uid=rdnonly,{PEOPLE}"), &["uid"]).expect("rdnonly");
    assert_eq!(
        e.get("uid"),
        vec!["rdnonly"],
        "the RDN value must be an attribute value"
    );
    // Nothing else appeared under people.
    let o = search_root(
        &url,
        PEOPLE,
        &[
            "-s",
            "one",
            "(!(|(uid=alice)(uid=bob)(uid=rdnonly)))",
            "1.1",
        ],
    );
    assert_code(&o, 0, "leftover search");
    assert!(
        dn_set(&o).is_empty(),
        "failed adds left entries: {}",
        out(&o)
    );
}

// ---------------------------------------------------------------------------
// ldapmodify

#[test]
fn modify_values() {
    let s = Server::with_sample();
    let url = s.url();
    let o = ldapmodify_root(
        &url,
        &format!(
            "dn: {ALICE}\nchangetype: modify\nadd: mail\nmail: a2@example.com\nmail: a3@example.com\n-\nadd: description\ndescription: to be removed\n-\nreplace: givenName\ngivenName: Alicia\n-\nincrement: uidNumber\nuidNumber: 5\n-\n"
        ),
    );
    assert_code(&o, 0, "modify add/replace/increment");
    let e = read_entry(
        &url,
        ALICE,
        &[
            "mail",
            "givenName",
            "uidNumber",
            "description",
            "modifiersName",
            "modifyTimestamp",
        ],
    )
    .expect("alice");
    let mut mail = e.get("mail");
    mail.sort();
    assert_eq!(
        mail,
        vec!["a2@example.com", "a3@example.com", "alice@example.com"]
    );
    assert_eq!(e.get("givenName"), vec!["Alicia"]);
    assert_eq!(e.get("uidNumber"), vec!["10006"]);
    assert_eq!(e.get("description"), vec!["to be removed"]);
    assert_eq!(
        e.get("modifiersName")
            .iter()
            .map(|v| v.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        vec!["cn=directory manager"]
    );

    let o = ldapmodify_root(
        &url,
        &format!(
            "dn: {ALICE}\nchangetype: modify\ndelete: mail\nmail: A2@EXAMPLE.COM\n-\ndelete: description\n-\nincrement: uidNumber\nuidNumber: -10\n-\nreplace: loginShell\n-\n"
        ),
    );
    assert_code(
        &o,
        0,
        "modify delete value/attribute, negative increment, replace with nothing",
    );
    let e = read_entry(
        &url,
        ALICE,
        &["mail", "description", "uidNumber", "loginShell"],
    )
    .expect("alice");
    let mut mail = e.get("mail");
    mail.sort();
    assert_eq!(
        mail,
        vec!["a3@example.com", "alice@example.com"],
        "mail value deleted by equality match"
    );
    assert!(!e.has("description"), "description deleted");
    assert!(!e.has("loginShell"), "replace with no values deletes");
    assert_eq!(e.get("uidNumber"), vec!["9996"]);
    // The increment is visible to indexed equality search.
    assert_eq!(find_root(&url, "(uidNumber=9996)"), vec![ALICE.to_string()]);
    assert!(find_root(&url, "(uidNumber=10001)").is_empty());
    assert!(find_root(&url, "(description=*)").is_empty());
}

fn find_root(url: &str, filter: &str) -> Vec<String> {
    let o = search_root(url, SUFFIX, &[filter, "1.1"]);
    assert_code(&o, 0, filter);
    dn_set(&o)
}

#[test]
fn modify_is_atomic() {
    let s = Server::with_sample();
    let url = s.url();
    let before = read_entry(&url, ALICE, &["*"]).expect("alice");
    let bad = [
        ("valid then invalid syntax", format!("dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: new@example.com\n-\nreplace: uidNumber\nuidNumber: abc\n-\n"), 21),
        ("valid then delete missing value", format!("dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: new@example.com\n-\ndelete: cn\ncn: Nobody\n-\n"), 16),
        ("valid then unknown attribute", format!("dn: {ALICE}\nchangetype: modify\nadd: description\ndescription: d\n-\nadd: fooBarBaz\nfooBarBaz: x\n-\n"), 17),
        ("valid then MUST removed", format!("dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: new@example.com\n-\ndelete: sn\n-\n"), 65),
        ("increment of a non-integer", format!("dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: new@example.com\n-\nincrement: cn\ncn: 1\n-\n"), 19),
    ];
    for (what, ldif, want) in bad.iter() {
        let o = ldapmodify_root(&url, ldif);
        assert_code(&o, *want, what);
        let after = read_entry(&url, ALICE, &["*"]).expect("alice");
        assert_eq!(
            after.attrs.len(),
            before.attrs.len(),
            "{what}: entry changed"
        );
        assert_eq!(
            after.get("mail"),
            vec!["alice@example.com"],
            "{what}: first change applied"
        );
        assert!(!after.has("description"), "{what}: first change applied");
    }
    assert!(
        find_root(&url, "(mail=new@example.com)").is_empty(),
        "index changed by a failed modify"
    );
}

#[test]
fn modify_errors() {
    let s = Server::with_sample();
    let url = s.url();
    let m = |ldif: String, want: i32, what: &str| {
        let o = ldapmodify_root(&url, &ldif);
        assert_code(&o, want, what);
    };
    m(
        format!("dn: {ALICE}\nchangetype: modify\ndelete: mail\nmail: nope@example.com\n"),
        16,
        "delete a missing value",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\ndelete: description\n"),
        16,
        "delete a missing attribute",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\nadd: mail\nmail: ALICE@example.com\n"),
        20,
        "add an existing value (by equality)",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\ndelete: uid\nuid: alice\n"),
        67,
        "delete the RDN value",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\nreplace: uid\nuid: alice2\n"),
        67,
        "replace the RDN value",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\nreplace: objectClass\nobjectClass: account\nobjectClass: posixAccount\nobjectClass: shadowAccount\n"),
        69,
        "change the structural object class",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\ndelete: sn\n"),
        65,
        "remove a MUST attribute",
    );
    m(
        format!(
            "dn: {ALICE}\nchangetype: modify\ndelete: objectClass\nobjectClass: posixAccount\n"
        ),
        65,
        "remove an aux class but keep its attributes",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\nadd: uidNumber\nuidNumber: 7\n"),
        19,
        "second value of SINGLE-VALUE",
    );
    m(format!("dn: {ALICE}\nchangetype: modify\nreplace: createTimestamp\ncreateTimestamp: 20200101000000Z\n"), 19, "modify NO-USER-MODIFICATION");
    m(
        format!("dn: {ALICE}\nchangetype: modify\nadd: fooBarBaz\nfooBarBaz: 1\n"),
        17,
        "unknown attribute",
    );
    m(
        format!("dn: {ALICE}\nchangetype: modify\nadd: dc\ndc: x\n"),
        65,
        "attribute not allowed",
    );
    m(
        "dn: uid=nobody,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: cn\ncn: x\n"
            .into(),
        32,
        "modify a missing entry",
    );
    // Adding an auxiliary class with its attributes is fine.
    m(format!("dn: {BOB}\nchangetype: modify\nadd: objectClass\nobjectClass: shadowAccount\n-\nadd: shadowLastChange\nshadowLastChange: 19000\n"), 0, "add aux class");
    let e = read_entry(&url, ALICE, &["uid", "sn", "objectClass", "uidNumber"]).expect("alice");
    assert_eq!(e.get("uid"), vec!["alice"]);
    assert_eq!(e.get("sn"), vec!["Liddell"]);
    assert_eq!(e.get("uidNumber"), vec!["10001"]);
    // Failed modifies left the classes as added: the three given plus their
    // superclasses, which the server stores (as 389-ds does).
    let mut classes: Vec<String> = e
        .get("objectClass")
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    classes.sort();
    assert_eq!(
        classes,
        [
            "inetorgperson",
            "organizationalperson",
            "person",
            "posixaccount",
            "shadowaccount",
            "top"
        ],
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// ldapdelete

#[test]
fn delete_entries() {
    let s = Server::with_sample();
    let url = s.url();
    let del = |dn: &str| client("ldapdelete", &url, Who::Root, &[dn], None);
    assert_code(&del(PEOPLE), 66, "delete a non-leaf");
    assert!(read_entry(&url, PEOPLE, &["1.1"]).is_some());
    assert_code(
        &del("uid=nobody,ou=people,dc=example,dc=com"),
        32,
        "delete a missing entry",
    );
    assert_code(&del(BOB), 0, "delete a leaf");
    assert_absent(&url, BOB);
    assert!(
        find_root(&url, "(uid=bob)").is_empty(),
        "index still finds bob"
    );
    assert_code(&del(ALICE), 0, "delete the other leaf");
    let p = read_entry(&url, PEOPLE, &["hasSubordinates", "numSubordinates"]).expect("people");
    assert_eq!(p.get("hasSubordinates"), vec!["FALSE"]);
    assert_code(&del(PEOPLE), 0, "delete now-empty ou");
    assert_absent(&url, PEOPLE);
    // A recursive delete by the client (-r) of a subtree.
    assert_code(
        &client("ldapdelete", &url, Who::Root, &["-r", GROUPS], None),
        0,
        "ldapdelete -r",
    );
    let o = search_root(&url, SUFFIX, &["1.1"]);
    assert_eq!(dn_set(&o), vec![SUFFIX.to_string()]);
}

// ---------------------------------------------------------------------------
// ldapmodrdn

#[test]
fn modrdn_keep_and_delete_old_rdn() {
    let s = Server::with_sample();
    let url = s.url();
    let o = client("ldapmodrdn", &url, Who::Root, &[BOB, "uid=robert"], None);
    assert_code(&o, 0, "modrdn without -r");
    let robert = "uid=robert,ou=people,dc=example,dc=com";
    assert_absent(&url, BOB);
    let e = read_entry(&url, robert, &["uid", "entryDN", "cn"]).expect("robert");
    let mut uids = e.get("uid");
    uids.sort();
    assert_eq!(uids, vec!["bob", "robert"], "old RDN value kept without -r");
    assert_eq!(e.get("entryDN"), vec![robert]);
    assert_eq!(find_root(&url, "(uid=robert)"), vec![robert.to_string()]);
    assert_eq!(find_root(&url, "(uid=bob)"), vec![robert.to_string()]);

    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["-r", ALICE, "uid=alicia"],
        None,
    );
    assert_code(&o, 0, "modrdn with -r");
    let alicia = "uid=alicia,ou=people,dc=example,dc=com";
    let e = read_entry(&url, alicia, &["uid"]).expect("alicia");
    assert_eq!(
        e.get("uid"),
        vec!["alicia"],
        "old RDN value removed with -r"
    );
    assert!(find_root(&url, "(uid=alice)").is_empty());
    // Alice can bind under the new DN with her password.
    assert_eq!(bind_code(&url, alicia, ALICE_PW), 0);
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 49);
    // Rename to an RDN whose attribute is new to the entry: the value is added.
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &[alicia, "cn=Alice Liddell"],
        None,
    );
    assert_code(&o, 0, "modrdn to a different RDN attribute");
    let e = read_entry(
        &url,
        "cn=Alice Liddell,ou=people,dc=example,dc=com",
        &["uid", "cn"],
    )
    .expect("cn=");
    assert_eq!(
        e.get("uid"),
        vec!["alicia"],
        "old RDN kept without -r: {e:?}"
    );
    assert_eq!(
        e.get("cn"),
        vec!["Alice Liddell"],
        "no duplicate cn value: {e:?}"
    );
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &[
            "cn=Alice Liddell,ou=people,dc=example,dc=com",
            "givenName=Ally",
        ],
        None,
    );
    assert_code(&o, 0, "modrdn to a new value of a multi-valued attribute");
    let e = read_entry(
        &url,
        "givenName=Ally,ou=people,dc=example,dc=com",
        &["givenName"],
    )
    .expect("givenName=");
    let mut g = e.get("givenName");
    g.sort();
    assert_eq!(g, vec!["Alice", "Ally"], "new RDN value added to the entry");
}

#[test]
fn modrdn_deleteoldrdn_must_attribute() {
    let s = Server::with_sample();
    let url = s.url();
    // alice is a posixAccount: uid is MUST, so removing the old uid value
    // with a rename to mail=... violates the schema.
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["-r", ALICE, "mail=alice@example.com"],
        None,
    );
    assert_code(&o, 65, "deleteoldrdn removing a MUST attribute");
    assert!(
        read_entry(&url, ALICE, &["1.1"]).is_some(),
        "alice unchanged"
    );
    // Rename to an attribute not allowed by the entry's classes.
    let o = client("ldapmodrdn", &url, Who::Root, &[BOB, "dc=bob"], None);
    assert_code(&o, 65, "rename to a disallowed attribute");
    // Rename to an unknown attribute.
    let o = client("ldapmodrdn", &url, Who::Root, &[BOB, "fooBarBaz=bob"], None);
    assert_code(&o, 17, "rename to an unknown attribute");
    assert!(read_entry(&url, BOB, &["1.1"]).is_some(), "bob unchanged");
}

#[test]
fn modrdn_new_superior() {
    let s = Server::with_sample();
    let url = s.url();
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["-s", GROUPS, BOB, "uid=bob"],
        None,
    );
    assert_code(&o, 0, "move bob to groups");
    let moved = "uid=bob,ou=groups,dc=example,dc=com";
    assert_absent(&url, BOB);
    assert!(read_entry(&url, moved, &["1.1"]).is_some());
    assert_eq!(find_root(&url, "(uid=bob)"), vec![moved.to_string()]);
    let one = search_root(&url, GROUPS, &["-s", "one", "1.1"]);
    assert_eq!(
        dn_set(&one),
        sorted_lower(&[moved, "cn=staff,ou=groups,dc=example,dc=com"])
    );
    // Errors.
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["-s", "ou=nowhere,dc=example,dc=com", ALICE, "uid=alice"],
        None,
    );
    assert_code(&o, 32, "newSuperior missing");
    assert!(read_entry(&url, ALICE, &["1.1"]).is_some());
    let o = client("ldapmodrdn", &url, Who::Root, &[ALICE, "uid=bob"], None);
    assert_code(&o, 0, "uid=bob under people is free again");
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["-s", GROUPS, BOB, "uid=bob"],
        None,
    );
    assert_code(&o, 68, "target exists");
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["uid=nobody,ou=people,dc=example,dc=com", "uid=x"],
        None,
    );
    assert_code(&o, 32, "rename a missing entry");
    // Moving an entry below itself or below one of its own descendants
    // (which exists, so noSuchObject cannot answer for it):
    // unwillingToPerform, as RFC 4511 4.9 names for a move the server
    // cannot do, and nothing moves.
    assert!(
        read_entry(&url, BOB, &["1.1"]).is_some(),
        "{BOB} is a child of {PEOPLE}"
    );
    for (superior, what) in [
        (PEOPLE, "moving ou=people below itself"),
        (BOB, "moving ou=people below its own child"),
    ] {
        let o = client(
            "ldapmodrdn",
            &url,
            Who::Root,
            &["-s", superior, PEOPLE, "ou=people"],
            None,
        );
        assert_code(&o, 53, what);
        assert!(
            read_entry(&url, PEOPLE, &["1.1"]).is_some(),
            "{what}: {PEOPLE} is gone"
        );
        assert!(
            read_entry(&url, BOB, &["1.1"]).is_some(),
            "{what}: {BOB} is gone"
        );
    }
}

#[test]
fn modrdn_subtree_rename_and_move() {
    let s = Server::with_sample();
    let url = s.url();
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["-r", PEOPLE, "ou=staff"],
        None,
    );
    assert_code(&o, 0, "rename ou=people with children");
    let staff = "ou=staff,dc=example,dc=com";
    let alice = "uid=alice,ou=staff,dc=example,dc=com";
    let bob = "uid=bob,ou=staff,dc=example,dc=com";
    assert_absent(&url, PEOPLE);
    assert_absent(&url, ALICE);
    let e =
        read_entry(&url, alice, &["uid", "entryDN"]).expect("alice at the new DN (base search)");
    assert_eq!(e.get("entryDN"), vec![alice]);
    assert!(
        read_entry(&url, bob, &["1.1"]).is_some(),
        "bob at the new DN"
    );
    assert_eq!(
        find_root(&url, "(uid=alice)"),
        vec![alice.to_string()],
        "indexed filter"
    );
    let one = search_root(&url, staff, &["-s", "one", "1.1"]);
    assert_eq!(dn_set(&one), sorted_lower(&[alice, bob]));
    let sub = search_root(&url, staff, &["-s", "sub", "(objectClass=*)", "1.1"]);
    assert_eq!(dn_set(&sub), sorted_lower(&[staff, alice, bob]));
    assert!(
        find_root(&url, "(ou:dn:=people)").is_empty(),
        "old DN components still matched"
    );
    assert_eq!(
        find_root(&url, "(&(uid=*)(ou:dn:=staff))"),
        sorted_lower(&[alice, bob])
    );
    // Bind under the renamed DN.
    assert_eq!(bind_code(&url, alice, ALICE_PW), 0);
    // The group member values are not rewritten (no referential integrity): only check the entry.

    // Move the subtree under a new parent.
    assert_code(
        &ldapadd_root(
            &url,
            "dn: ou=org,dc=example,dc=com\nobjectClass: organizationalUnit\nou: org\n",
        ),
        0,
        "add ou=org",
    );
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &["-s", "ou=org,dc=example,dc=com", staff, "ou=staff"],
        None,
    );
    assert_code(&o, 0, "move ou=staff under ou=org");
    let alice2 = "uid=alice,ou=staff,ou=org,dc=example,dc=com";
    let bob2 = "uid=bob,ou=staff,ou=org,dc=example,dc=com";
    assert_absent(&url, alice);
    assert!(
        read_entry(&url, alice2, &["1.1"]).is_some(),
        "alice after the move"
    );
    assert_eq!(find_root(&url, "(uid=bob)"), vec![bob2.to_string()]);
    let sub = search_root(&url, "ou=org,dc=example,dc=com", &["1.1"]);
    assert_eq!(
        dn_set(&sub),
        sorted_lower(&[
            "ou=org,dc=example,dc=com",
            "ou=staff,ou=org,dc=example,dc=com",
            alice2,
            bob2
        ])
    );
    let whole = search_root(&url, SUFFIX, &["1.1"]);
    assert_eq!(
        entries(&whole).len(),
        7,
        "no entry lost or duplicated:\n{}",
        out(&whole)
    );
    let org = read_entry(&url, "ou=org,dc=example,dc=com", &["numSubordinates"]).expect("org");
    assert_eq!(org.get("numSubordinates"), vec!["1"]);
}

// ---------------------------------------------------------------------------
// ldapcompare, ldapwhoami, ldappasswd, bind

#[test]
fn compare() {
    let s = Server::with_sample();
    let url = s.url();
    let cmp = |who: Who, dn: &str, ava: &str| client("ldapcompare", &url, who, &[dn, ava], None);
    let o = cmp(Who::Anon, ALICE, "cn:Alice Liddell");
    assert_code(&o, 6, "compareTrue");
    assert!(out(&o).contains("TRUE"));
    assert_code(
        &cmp(Who::Anon, ALICE, "cn:ALICE  liddell"),
        6,
        "compareTrue by caseIgnoreMatch",
    );
    let o = cmp(Who::Anon, ALICE, "cn:Bob Builder");
    assert_code(&o, 5, "compareFalse");
    assert!(out(&o).contains("FALSE"));
    assert_code(
        &cmp(Who::Anon, ALICE, "uidNumber:10001"),
        6,
        "integer compare",
    );
    // RFC 4517 3.3.16: leading zeros are not valid INTEGER syntax.
    assert_code(
        &cmp(Who::Anon, ALICE, "uidNumber:010001"),
        21,
        "integer compare, invalid assertion value",
    );
    assert_code(
        &cmp(Who::Anon, ALICE, "description:x"),
        16,
        "attribute not present",
    );
    assert_code(
        &cmp(Who::Anon, ALICE, "fooBarBaz:x"),
        17,
        "unknown attribute",
    );
    assert_code(
        &cmp(Who::Anon, "uid=nobody,ou=people,dc=example,dc=com", "cn:x"),
        32,
        "missing entry",
    );
    assert_code(
        &cmp(Who::Root, ALICE, &format!("userPassword:{ALICE_PW}")),
        6,
        "userPassword as root, clear text",
    );
    assert_code(
        &cmp(Who::Root, ALICE, "userPassword:wrong"),
        5,
        "userPassword as root, wrong",
    );
    // Anonymous may not probe passwords.
    // insufficientAccessRights (50): the attribute exists, the client may not compare it.
    let o = cmp(Who::Anon, ALICE, &format!("userPassword:{ALICE_PW}"));
    assert_code(&o, 50, "anonymous compare on userPassword");
}

#[test]
fn whoami() {
    let s = Server::with_sample();
    let url = s.url();
    let o = client("ldapwhoami", &url, Who::Anon, &[], None);
    assert_code(&o, 0, "anonymous whoami");
    assert_eq!(out(&o).trim(), "anonymous");
    let o = client("ldapwhoami", &url, Who::Root, &[], None);
    assert_code(&o, 0, "root whoami");
    assert_eq!(
        out(&o).trim().to_ascii_lowercase(),
        "dn:cn=directory manager"
    );
    let o = client("ldapwhoami", &url, Who::User(ALICE, ALICE_PW), &[], None);
    assert_code(&o, 0, "alice whoami");
    assert_eq!(out(&o).trim(), format!("dn:{ALICE}"));
    // A bind DN written differently identifies the same entry.
    let o = client(
        "ldapwhoami",
        &url,
        Who::User("UID=alice, ou=People,dc=EXAMPLE,dc=com", ALICE_PW),
        &[],
        None,
    );
    assert_code(&o, 0, "alice whoami, odd DN spelling");
    assert_eq!(out(&o).trim().to_ascii_lowercase(), format!("dn:{ALICE}"));
}

/// ldappasswd exits 1 on any failure; the LDAP result code is in its
/// "Result: <text> (<code>)" line.
fn passwd_code(o: &std::process::Output) -> i32 {
    if code(o) == 0 {
        return 0;
    }
    let text = format!("{}\n{}", out(o), err(o));
    text.lines()
        .filter(|l| {
            l.contains("Result:")
                || l.contains("ldap_extended_operation")
                || l.contains("ldap_sasl_bind")
                || l.contains("ldap_bind")
        })
        .find_map(|l| {
            let open = l.rfind('(')?;
            let close = l.rfind(')')?;
            l.get(open + 1..close)?.trim().parse::<i32>().ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "ldappasswd failed without a result code (exit {}):\n{text}",
                code(o)
            )
        })
}

fn assert_passwd(o: &std::process::Output, want: i32, what: &str) {
    assert_eq!(
        passwd_code(o),
        want,
        "{what}: ldappasswd result\n--- stdout:\n{}\n--- stderr:\n{}",
        out(o),
        err(o)
    );
}

#[test]
fn passwd_self_change() {
    let s = Server::with_sample();
    let url = s.url();
    let o = client(
        "ldappasswd",
        &url,
        Who::User(ALICE, ALICE_PW),
        &["-a", ALICE_PW, "-s", "alice-new-1"],
        None,
    );
    assert_passwd(&o, 0, "alice changes her own password");
    assert_eq!(
        bind_code(&url, ALICE, "alice-new-1"),
        0,
        "new password binds"
    );
    assert_eq!(
        bind_code(&url, ALICE, ALICE_PW),
        49,
        "old password no longer binds"
    );
    // Stored hashed, not in clear.
    let e = read_entry(&url, ALICE, &["userPassword"]).expect("alice");
    let pw = e.get("userPassword");
    assert_eq!(pw.len(), 1);
    assert!(
        pw[0].starts_with('{') && !pw[0].contains("alice-new-1"),
        "stored {:?}",
        pw[0]
    );
    // Wrong old password: refused, nothing changes.
    let o = client(
        "ldappasswd",
        &url,
        Who::User(ALICE, "alice-new-1"),
        &["-a", "not-the-old-one", "-s", "alice-new-2"],
        None,
    );
    // RFC 3062 names no code; the old password is a credential that does
    // not match, which is invalidCredentials (RFC 4511 Appendix A).
    assert_passwd(&o, 49, "wrong old password");
    assert_eq!(bind_code(&url, ALICE, "alice-new-1"), 0);
    assert_eq!(bind_code(&url, ALICE, "alice-new-2"), 49);
}

#[test]
fn passwd_generated() {
    let s = Server::with_sample();
    let url = s.url();
    let o = client(
        "ldappasswd",
        &url,
        Who::User(BOB, BOB_PW),
        &["-a", BOB_PW],
        None,
    );
    assert_passwd(&o, 0, "generated password");
    let line = out(&o)
        .lines()
        .find_map(|l| l.strip_prefix("New password: ").map(str::to_string))
        .unwrap_or_else(|| panic!("no 'New password:' line:\n{}", out(&o)));
    assert!(line.len() >= 8, "generated password too short: {line:?}");
    assert_eq!(bind_code(&url, BOB, &line), 0, "generated password binds");
    assert_eq!(bind_code(&url, BOB, BOB_PW), 49);
}

#[test]
fn passwd_permissions_and_root() {
    let s = Server::with_sample();
    let url = s.url();
    // A user changing someone else's password.
    let o = client(
        "ldappasswd",
        &url,
        Who::User(ALICE, ALICE_PW),
        &["-s", "hijack", BOB],
        None,
    );
    assert_passwd(&o, 50, "alice changes bob's password");
    assert_eq!(bind_code(&url, BOB, BOB_PW), 0);
    // Anonymous password modify with no user.
    let o = client("ldappasswd", &url, Who::Anon, &["-s", "x"], None);
    // No user named and none bound (RFC 3062 section 2: the request is
    // for the session's user): there is nobody to act on, unwillingToPerform.
    assert_passwd(&o, 53, "anonymous password change without a user");
    // Root resets a user's password.
    let o = client(
        "ldappasswd",
        &url,
        Who::Root,
        &["-s", "reset-by-root", ALICE],
        None,
    );
    assert_passwd(&o, 0, "root resets alice");
    assert_eq!(bind_code(&url, ALICE, "reset-by-root"), 0);
    assert_eq!(bind_code(&url, ALICE, ALICE_PW), 49);
    // Password modify on a missing user.
    let o = client(
        "ldappasswd",
        &url,
        Who::Root,
        &["-s", "x", "uid=nobody,ou=people,dc=example,dc=com"],
        None,
    );
    assert_passwd(&o, 32, "password modify for a missing entry");
    // Root changes its own password (the identity is the root DN).
    let o = client(
        "ldappasswd",
        &url,
        Who::Root,
        &["-s", "new-root-secret-1"],
        None,
    );
    assert_passwd(&o, 0, "root changes its own password");
    assert_eq!(
        bind_code(&url, ROOT_DN, "new-root-secret-1"),
        0,
        "root binds with the new password"
    );
    assert_eq!(
        bind_code(&url, ROOT_DN, &root_password()),
        49,
        "old root password refused"
    );
}

#[test]
fn bind_results() {
    let s = Server::with_sample();
    let url = s.url();
    let wrong = client("ldapwhoami", &url, Who::User(ALICE, "wrong"), &[], None);
    assert_code(&wrong, 49, "wrong password");
    let unknown = client(
        "ldapwhoami",
        &url,
        Who::User("uid=nobody,ou=people,dc=example,dc=com", "wrong"),
        &[],
        None,
    );
    assert_code(&unknown, 49, "unknown DN");
    assert_eq!(
        err(&wrong),
        err(&unknown),
        "wrong-password and unknown-DN diagnostics must not differ"
    );
    let outside = client(
        "ldapwhoami",
        &url,
        Who::User("cn=x,dc=other", "wrong"),
        &[],
        None,
    );
    assert_code(&outside, 49, "DN outside the naming contexts");
    // An entry without userPassword.
    let nopw = client("ldapwhoami", &url, Who::User(PEOPLE, "x"), &[], None);
    assert_code(&nopw, 49, "entry without userPassword");
    assert_eq!(err(&wrong), err(&nopw));
    // Unauthenticated bind (DN, empty password): RFC 4513 5.1.2 -> unwillingToPerform.
    let empty = client("ldapwhoami", &url, Who::User(ALICE, ""), &[], None);
    assert_code(&empty, 53, "DN with an empty password");
    // Anonymous.
    assert_code(
        &client("ldapwhoami", &url, Who::Anon, &[], None),
        0,
        "anonymous bind",
    );
    // An invalid bind DN.
    let bad = client("ldapwhoami", &url, Who::User("not a dn", "x"), &[], None);
    // invalidDNSyntax (RFC 4511 Appendix A: an LDAPDN field of a request
    // that does not conform to the syntax).
    assert_code(&bad, 34, "invalid bind DN");
    // SASL mechanisms the server does not offer: authMethodNotSupported (7).
    let sasl = run_tool(
        "ldapwhoami",
        &["-H", &url, "-Y", "DIGEST-MD5", "-U", "alice", "-w", "x"],
        None,
    );
    assert_code(&sasl, 7, "SASL DIGEST-MD5");
    let sasl = run_tool(
        "ldapwhoami",
        &["-H", &url, "-Y", "CRAM-MD5", "-U", "alice", "-w", "x"],
        None,
    );
    assert_code(&sasl, 7, "SASL CRAM-MD5");
}

// ---------------------------------------------------------------------------
// userPassword storage and visibility

fn ssha_via_slappasswd(pw: &str) -> String {
    let o = run_tool("slappasswd", &["-s", pw, "-h", "{SSHA}"], None);
    assert_code(&o, 0, "slappasswd");
    out(&o).trim().to_string()
}

#[test]
fn password_storage_and_visibility() {
    let s = Server::with_sample_default();
    let url = s.url();
    // Clear text given at add time is stored hashed with PBKDF2-SHA512.
    let o = search_root(&url, ALICE, &["-s", "base", "userPassword"]);
    assert_code(&o, 0, "read userPassword as root");
    let v = entries(&o)[0].get("userPassword");
    assert_eq!(v.len(), 1, "{}", out(&o));
    assert!(
        v[0].starts_with("{PBKDF2-SHA512}"),
        "stored value {:?}",
        v[0]
    );
    assert!(!v[0].contains(ALICE_PW));
    // ldapsearch prints it base64 (binary-ish) — the decoded form is the scheme string.
    assert!(
        out(&o).contains("userPassword::") || out(&o).contains("userPassword: {PBKDF2"),
        "{}",
        out(&o)
    );

    // An imported {SSHA} hash (from slappasswd) keeps working and is stored as given.
    let ssha = ssha_via_slappasswd("carol-secret");
    assert!(ssha.starts_with("{SSHA}"), "{ssha}");
    let o = ldapadd_root(
        &url,
        &format!("dn: uid=carol,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\nuserPassword: {ssha}\n"),
    );
    assert_code(&o, 0, "add with {SSHA}");
    let carol = format!("uid=carol,{PEOPLE}");
    assert_eq!(
        bind_code(&url, &carol, "carol-secret"),
        0,
        "bind with an {{SSHA}} password"
    );
    assert_eq!(bind_code(&url, &carol, "carol-wrong"), 49);
    let e = read_entry(&url, &carol, &["userPassword"]).expect("carol");
    assert_eq!(
        e.get("userPassword"),
        vec![ssha.clone()],
        "pre-hashed value stored unchanged"
    );
    // Replacing with a pre-hashed value via modify works too.
    let ssha2 = ssha_via_slappasswd("bob-via-ssha");
    assert_code(
        &ldapmodify_root(
            &url,
            &format!(
                "dn: {BOB}\nchangetype: modify\nreplace: userPassword\nuserPassword: {ssha2}\n"
            ),
        ),
        0,
        "replace userPassword with {SSHA}",
    );
    assert_eq!(bind_code(&url, BOB, "bob-via-ssha"), 0);

    // Never visible to anonymous or ordinary users.
    for who in [
        Who::Anon,
        Who::User(ALICE, ALICE_PW),
        Who::User(BOB, "bob-via-ssha"),
    ] {
        let o = search_as(&url, who, SUFFIX, &["(uid=*)", "userPassword", "uid"]);
        assert_code(&o, 0, "search userPassword as non-root");
        for e in entries(&o) {
            assert!(
                !e.has("userPassword"),
                "userPassword leaked to a non-root reader: {}",
                out(&o)
            );
        }
        let o = search_as(&url, who, SUFFIX, &["(userPassword=*)", "1.1"]);
        assert_code(&o, 0, "(userPassword=*) as non-root");
        assert!(
            dn_set(&o).is_empty(),
            "(userPassword=*) matched for a non-root user: {}",
            out(&o)
        );
        let o = search_as(&url, who, SUFFIX, &["(userPassword=*SSHA*)", "1.1"]);
        assert!(
            dn_set(&o).is_empty(),
            "substring filter on userPassword matched: {}",
            out(&o)
        );
        let o = search_as(&url, who, ALICE, &["-s", "base", "+", "*"]);
        assert!(!out(&o).contains("userPassword"), "{}", out(&o));
    }
    // As root the presence filter sees all three.
    assert_eq!(find_root(&url, "(userPassword=*)").len(), 3);
}

#[test]
fn writes_need_rights() {
    let s = Server::with_sample();
    let url = s.url();
    let anon_add = client(
        "ldapmodify",
        &url,
        Who::Anon,
        &["-a"],
        Some(&person("anon")),
    );
    assert_code(&anon_add, 50, "anonymous add");
    assert_absent(&url, "uid=anon,ou=people,dc=example,dc=com");
    let anon_mod = client(
        "ldapmodify",
        &url,
        Who::Anon,
        &[],
        Some(&format!(
            "dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: x@x\n"
        )),
    );
    assert_code(&anon_mod, 50, "anonymous modify");
    assert_code(
        &client("ldapdelete", &url, Who::Anon, &[BOB], None),
        50,
        "anonymous delete",
    );
    assert_code(
        &client("ldapmodrdn", &url, Who::Anon, &[BOB, "uid=b2"], None),
        50,
        "anonymous modrdn",
    );

    let alice = Who::User(ALICE, ALICE_PW);
    let m = client(
        "ldapmodify",
        &url,
        alice,
        &[],
        Some(&format!(
            "dn: {BOB}\nchangetype: modify\nreplace: mail\nmail: owned@x\n"
        )),
    );
    assert_code(&m, 50, "alice modifies bob");
    assert_code(
        &client("ldapdelete", &url, alice, &[BOB], None),
        50,
        "alice deletes bob",
    );
    assert_code(
        &client("ldapmodrdn", &url, alice, &[BOB, "uid=b2"], None),
        50,
        "alice renames bob",
    );
    assert_code(
        &client("ldapmodify", &url, alice, &["-a"], Some(&person("byalice"))),
        50,
        "alice adds an entry",
    );
    // Privilege escalation attempts on her own entry.
    let m = client(
        "ldapmodify",
        &url,
        alice,
        &[],
        Some(&format!(
            "dn: cn=staff,{GROUPS}\nchangetype: modify\nadd: memberUid\nmemberUid: mallory\n"
        )),
    );
    assert_code(&m, 50, "alice modifies a group");
    let b = read_entry(&url, BOB, &["mail"]).expect("bob");
    assert_eq!(b.get("mail"), vec!["bob@example.com"]);
    assert!(read_entry(&url, BOB, &["1.1"]).is_some());
}

// ---------------------------------------------------------------------------
// Attribute and class inheritance, DN forms, extended operations

#[test]
fn search_filter_on_supertype() {
    let s = sample_plus_extra();
    // RFC 4511 4.5.1.7: an assertion on a supertype also matches its
    // subtypes; cn is a subtype of name (RFC 4519).
    assert_finds(&s, "(name=alice liddell)", &[ALICE]);
    assert_finds(&s, "(name=Bob*)", &[BOB]);
}

#[test]
fn search_filter_objectclass_superclasses() {
    let s = sample_plus_extra();
    // An entry of class inetOrgPerson is also an organizationalPerson, a
    // person and top (OpenLDAP's objectSubClassMatch; 389-ds stores the
    // superclasses), so objectClass filters on superclasses match it.
    assert_finds(&s, "(objectClass=person)", &[ALICE, BOB, CAROL]);
    assert_finds(
        &s,
        "(objectClass=organizationalPerson)",
        &[ALICE, BOB, CAROL],
    );
    assert_eq!(
        find(&s, "(objectClass=top)").len(),
        7,
        "every entry is of class top"
    );
}

#[test]
fn search_requesting_supertype_returns_subtypes() {
    let s = Server::with_sample();
    // RFC 4511 4.5.1.8: an attribute description in the list also selects its subtypes.
    let e = read_entry(&s.url(), ALICE, &["name"]).expect("alice");
    assert!(
        e.get("cn").contains(&"Alice Liddell".to_string()),
        "requesting 'name' should return cn: {e:?}"
    );
    assert!(
        e.get("sn").contains(&"Liddell".to_string()),
        "requesting 'name' should return sn: {e:?}"
    );
}

#[test]
fn dn_escapes_unicode_and_case() {
    let s = Server::with_sample();
    let url = s.url();
    let ldif = format!(
        "dn: cn=Smith\\, John,{PEOPLE}\nobjectClass: inetOrgPerson\ncn: Smith, John\nsn: Smith\n\n\
         dn: cn=J\u{fc}rgen \u{d6}l\u{df},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: J\u{fc}rgen \u{d6}l\u{df}\nsn: \u{d6}l\u{df}\n\n\
         dn: cn=a\\+b\\=c,{PEOPLE}\nobjectClass: inetOrgPerson\ncn: a+b=c\nsn: x\n"
    );
    assert_code(
        &ldapadd_root(&url, &ldif),
        0,
        "entries with escaped and non-ASCII RDNs",
    );
    // The same DN in other spellings.
    for spelling in [
        format!("cn=Smith\\2C John,{PEOPLE}"),
        "CN=smith\\, JOHN , OU=People,DC=Example,DC=COM".to_string(),
        format!("cn=j\u{fc}rgen \u{f6}l\u{df},{PEOPLE}"),
        format!("cn=J\u{dc}RGEN \u{d6}L\u{df},{PEOPLE}"),
        format!("cn=a\\2Bb\\3Dc,{PEOPLE}"),
    ] {
        assert!(
            read_entry(&url, &spelling, &["1.1"]).is_some(),
            "base search on {spelling:?}"
        );
    }
    assert_finds_url(
        &url,
        "(cn=Smith, John)",
        &[&format!("cn=Smith\\, John,{PEOPLE}")],
    );
    // RFC 4514 allows either `\=` or `=` inside a value: compare by count here.
    assert_eq!(find_root(&url, "(cn=a+b=c)").len(), 1, "(cn=a+b=c)");
    assert_finds_url(
        &url,
        "(cn=j\u{fc}rgen*)",
        &[&format!("cn=J\u{fc}rgen \u{d6}l\u{df},{PEOPLE}")],
    );
    // Rename of an escaped RDN, and a case-only rename (same normalized DN).
    let o = client(
        "ldapmodrdn",
        &url,
        Who::Root,
        &[
            "-r",
            &format!("cn=Smith\\, John,{PEOPLE}"),
            "cn=Smith\\, Jane",
        ],
        None,
    );
    assert_code(&o, 0, "rename escaped RDN");
    let e = read_entry(&url, &format!("cn=Smith\\, Jane,{PEOPLE}"), &["cn"]).expect("renamed");
    assert_eq!(e.get("cn"), vec!["Smith, Jane"]);
    let o = client("ldapmodrdn", &url, Who::Root, &["-r", BOB, "uid=Bob"], None);
    assert_code(&o, 0, "case-only rename");
    let o = search_root(&url, SUFFIX, &["(uid=bob)", "uid"]);
    let es = entries(&o);
    assert_eq!(es.len(), 1, "{}", out(&o));
    assert_eq!(
        es[0].dn,
        format!("uid=Bob,{PEOPLE}"),
        "the DN shows the new spelling"
    );
    assert_eq!(es[0].get("uid").len(), 1, "{:?}", es[0]);
    assert_eq!(
        bind_code(&url, BOB, BOB_PW),
        0,
        "bind with the old spelling of the DN"
    );
    assert_code(
        &client(
            "ldapdelete",
            &url,
            Who::Root,
            &[&format!("cn=a\\2bb\\3dc,{PEOPLE}")],
            None,
        ),
        0,
        "delete by hex-escaped DN",
    );
}

fn assert_finds_url(url: &str, filter: &str, want: &[&str]) {
    assert_eq!(
        find_root(url, filter),
        sorted_lower(want),
        "filter {filter}"
    );
}

#[test]
fn extended_operations() {
    let s = Server::with_sample();
    let url = s.url();
    // An unknown extended operation: protocolError (RFC 4511 4.12).
    let o = client("ldapexop", &url, Who::Anon, &["1.2.3.4"], None);
    assert_ne!(code(&o), 0);
    assert!(
        err(&o).contains("Protocol error (2)"),
        "unknown extended op: {}",
        err(&o)
    );
    // StartTLS is offered with the generated instance CA; a client that does
    // not trust that CA fails -ZZ (tests/tls.rs covers the trusted case).
    let o = client("ldapwhoami", &url, Who::Anon, &["-ZZ"], None);
    assert_ne!(
        code(&o),
        0,
        "-ZZ without the instance CA must fail verification"
    );
    let o = search_as(&url, Who::Anon, "", &["-s", "base", "supportedExtension"]);
    let ext = entries(&o)[0].get("supportedExtension");
    assert!(
        ext.contains(&"1.3.6.1.4.1.1466.20037".to_string()),
        "StartTLS not advertised: {ext:?}"
    );
    // WhoAmI through ldapexop.
    let o = client(
        "ldapexop",
        &url,
        Who::User(ALICE, ALICE_PW),
        &["whoami"],
        None,
    );
    assert_code(&o, 0, "ldapexop whoami");
    assert_eq!(out(&o).trim(), format!("dn:{ALICE}"));
    assert_code(
        &client("ldapwhoami", &url, Who::Anon, &[], None),
        0,
        "server healthy",
    );
}
