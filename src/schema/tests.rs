//! Unit tests for the schema module.

use super::*;
use crate::model::{Attribute, Csn, Dn, Entry};
use proptest::prelude::*;

const BASE: &str = r#"
# A small schema modelled on RFC 4519/2798/2307bis.
dn: cn=schema
objectClass: top
objectClass: ldapSubentry
attributeTypes: ( 2.5.4.0 NAME 'objectClass' EQUALITY objectIdentifierMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )
attributeTypes: ( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )
attributeTypes: ( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )
attributeTypes: ( 2.5.4.4 NAME ( 'sn' 'surname' ) SUP name )
attributeTypes: ( 2.5.4.11 NAME ( 'ou' 'organizationalUnitName' ) SUP name )
attributeTypes: ( 2.5.4.35 NAME 'userPassword' EQUALITY octetStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40{128} )
attributeTypes: ( 2.5.4.13 NAME 'description' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{1024} )
attributeTypes: ( 0.9.2342.19200300.100.1.1 NAME ( 'uid' 'userid' ) EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{256} )
attributeTypes: ( 1.3.6.1.1.1.1.0 NAME 'uidNumber' EQUALITY integerMatch
  ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributeTypes: ( 0.9.2342.19200300.100.1.3 NAME ( 'mail' 'rfc822Mailbox' )
  EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
attributeTypes: ( 2.5.4.20 NAME 'telephoneNumber' EQUALITY telephoneNumberMatch
  SUBSTR telephoneNumberSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.50{32} )
attributeTypes: ( 2.5.4.49 NAME 'distinguishedName' EQUALITY distinguishedNameMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributeTypes: ( 2.5.4.31 NAME 'member' SUP distinguishedName )
attributeTypes: ( 2.5.4.50 NAME 'uniqueMember' EQUALITY uniqueMemberMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.34 )
attributeTypes: ( 2.5.4.36 NAME 'userCertificate' EQUALITY octetStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.8 )
attributeTypes: ( 2.5.4.16 NAME 'postalAddress' EQUALITY caseIgnoreListMatch
  SUBSTR caseIgnoreListSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.41 )
attributeTypes: ( 2.5.4.5 NAME 'serialNumber' EQUALITY caseExactMatch
  ORDERING caseExactOrderingMatch SUBSTR caseExactSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributeTypes: ( 2.5.4.18 NAME 'postOfficeBox' EQUALITY numericStringMatch
  ORDERING numericStringOrderingMatch SUBSTR numericStringSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.36 )
attributeTypes: ( 1.3.6.1.4.1.1466.101.120.16 NAME 'ldapSyntaxes' EQUALITY objectIdentifierFirstComponentMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.54 USAGE directoryOperation )
attributeTypes: ( 2.5.21.1 NAME 'dITStructureRules' EQUALITY integerFirstComponentMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.17 USAGE directoryOperation )
attributeTypes: ( 9.9.9.1 NAME 'nickName' EQUALITY directoryStringFirstComponentMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributeTypes: ( 1.3.6.1.1.16.4 NAME 'entryUUID' EQUALITY uuidMatch ORDERING uuidOrderingMatch
  SYNTAX 1.3.6.1.1.16.1 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )
attributeTypes: ( 2.5.18.1 NAME 'createTimestamp' EQUALITY generalizedTimeMatch
  ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24
  SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )
attributeTypes: ( 9.9.9.2 NAME 'accountFlags' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )
attributeTypes: ( 9.9.9.3 NAME 'isActive' EQUALITY booleanMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
attributeTypes: ( 9.9.9.4 NAME 'flagBits' EQUALITY bitStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.6 )
attributeTypes: ( 9.9.9.5 NAME 'blob' EQUALITY octetStringMatch ORDERING octetStringOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
attributeTypes: ( 9.9.9.6 NAME 'shellName' EQUALITY caseExactIA5Match
  SUBSTR caseExactIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
attributeTypes: ( 9.9.9.7 NAME 'opaque' SYNTAX 1.2.3.4.5.6 )
attributeTypes: ( 9.9.9.8 NAME 'sortName' EQUALITY caseIgnoreMatch
  ORDERING caseIgnoreOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributeTypes: ( 9.9.9.9 NAME 'supportedThing' EQUALITY objectIdentifierMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )
objectClasses: ( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )
objectClasses: ( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn )
  MAY ( userPassword $ telephoneNumber $ description ) )
objectClasses: ( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL
  MAY ( ou $ postalAddress $ postOfficeBox ) )
objectClasses: ( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson
  STRUCTURAL MAY ( uid $ mail $ userCertificate $ serialNumber ) )
objectClasses: ( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou
  MAY description )
objectClasses: ( 1.3.6.1.1.1.2.0 NAME 'posixAccount' SUP top AUXILIARY
  MUST ( uid $ uidNumber ) )
objectClasses: ( 1.3.6.1.4.1.1466.101.120.111 NAME 'extensibleObject' SUP top AUXILIARY )
objectClasses: ( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST ( member $ cn ) )
objectClasses: ( 2.5.6.17 NAME 'groupOfUniqueNames' SUP top STRUCTURAL
  MUST ( uniqueMember $ cn ) )
objectClasses: ( 9.9.9.100 NAME 'testThing' SUP top STRUCTURAL MUST cn
  MAY ( accountFlags $ isActive $ flagBits $ blob $ shellName $ opaque $ sortName
  $ supportedThing $ nickName ) )
"#;

fn base() -> Schema {
    Schema::from_texts(&[("base.ldif", BASE)]).unwrap_or_else(|e| panic!("{e}"))
}

fn at(s: &Schema, name: &str) -> Arc<AttributeType> {
    s.attribute(name)
        .unwrap_or_else(|| panic!("no attribute {name}"))
}

fn load_err(files: &[(&str, &str)]) -> SchemaError {
    match Schema::from_texts(files) {
        Ok(_) => panic!("expected a load error"),
        Err(e) => e,
    }
}

fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
    let mut e = Entry::new(Dn::parse(dn).unwrap());
    for (name, vals) in attrs {
        e.attrs.push(Attribute::new(
            *name,
            vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
            Csn::ZERO,
        ));
    }
    e
}

fn person(extra: &[(&str, &[&str])]) -> Entry {
    let mut attrs: Vec<(&str, &[&str])> = vec![
        (
            "objectClass",
            &["top", "person", "organizationalPerson", "inetOrgPerson"],
        ),
        ("cn", &["Babs Jensen"]),
        ("sn", &["Jensen"]),
        ("uid", &["bjensen"]),
    ];
    attrs.extend_from_slice(extra);
    entry("uid=bjensen,ou=People,dc=example,dc=com", &attrs)
}

fn expect_violation(s: &Schema, e: &Entry, kind: ViolationKind, message: &str) {
    match s.check_entry(e) {
        Ok(()) => panic!("expected {kind:?}: {message}"),
        Err(v) => {
            assert_eq!(v.kind, kind, "{}", v.message);
            assert_eq!(v.message, message);
        }
    }
}

// ---------------------------------------------------------------- parser

#[test]
fn parses_attribute_type_with_every_field() {
    let at = parser::parse_attribute_type(
        "( 1.2.3.4 NAME ( 'fooBar' 'fb' ) DESC 'it\\27s a \\5C test' OBSOLETE SUP name \
         EQUALITY caseIgnoreMatch ORDERING caseIgnoreOrderingMatch SUBSTR caseIgnoreSubstringsMatch \
         SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{64} SINGLE-VALUE X-ORIGIN ( 'a' 'b' ) \
         X-SCHEMA-FILE 'x' )",
    )
    .unwrap();
    assert_eq!(at.oid, "1.2.3.4");
    assert_eq!(at.names, vec!["fooBar", "fb"]);
    assert_eq!(at.desc.as_deref(), Some("it's a \\ test"));
    assert!(at.obsolete && at.single_value && !at.collective);
    assert_eq!(at.sup.as_deref(), Some("name"));
    assert_eq!(at.syntax.as_deref(), Some("1.3.6.1.4.1.1466.115.121.1.15"));
    assert_eq!(at.ordering.as_deref(), Some("caseIgnoreOrderingMatch"));
    assert!(at.definition.contains("X-ORIGIN ( 'a' 'b' )"));
    let op = parser::parse_attribute_type(
        "( 1.2.3.5 NAME 'op' SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 NO-USER-MODIFICATION USAGE dSAOperation )",
    )
    .unwrap();
    assert_eq!(op.usage, Usage::DsaOperation);
    assert!(op.no_user_modification && op.is_operational());
}

#[test]
fn parses_object_class_lists_and_kinds() {
    let oc = parser::parse_object_class(
        "( 2.5.6.7 NAME 'organizationalPerson' SUP ( person $ 2.5.6.0 ) STRUCTURAL \
         MUST cn MAY ( ou $ 2.5.4.20 $ description ) )",
    )
    .unwrap();
    assert_eq!(oc.sup, vec!["person", "2.5.6.0"]);
    assert_eq!(oc.must, vec!["cn"]);
    assert_eq!(oc.may, vec!["ou", "2.5.4.20", "description"]);
    assert_eq!(oc.kind, ObjectClassKind::Structural);
    let aux = parser::parse_object_class("( 1.1.1 NAME 'x' AUXILIARY )").unwrap();
    assert_eq!(aux.kind, ObjectClassKind::Auxiliary);
    // STRUCTURAL is the default kind.
    let d = parser::parse_object_class("( 1.1.2 NAME 'y' )").unwrap();
    assert_eq!(d.kind, ObjectClassKind::Structural);
}

#[test]
fn rejects_malformed_descriptions() {
    for bad in [
        "1.2.3 NAME 'x' SYNTAX 1.2 )",
        "( 1.2.3 NAME 'x' SYNTAX 1.2",
        "( x-oid NAME 'x' SYNTAX 1.2 )",
        "( 1.02.3 NAME 'x' SYNTAX 1.2 )",
        "( 1.2.3 NAME 'x )",
        "( 1.2.3 NAME '1bad' SYNTAX 1.2 )",
        "( 1.2.3 NAME 'x' FOO SYNTAX 1.2 )",
        "( 1.2.3 NAME 'x' NAME 'y' SYNTAX 1.2 )",
        "( 1.2.3 NAME 'x' )",
        "( 1.2.3 NAME 'x' SYNTAX 1.2{x} )",
        "( 1.2.3 NAME 'x' SYNTAX 1.2 USAGE sometimes )",
        "( 1.2.3 NAME 'x' SYNTAX 1.2 ) trailing",
        "( 1.2.3 NAME 'x' DESC 'bad \\zz' SYNTAX 1.2 )",
        "( 1.2.3 NAME 'x' SYNTAX 1.2 NO-USER-MODIFICATION )",
    ] {
        assert!(parser::parse_attribute_type(bad).is_err(), "{bad}");
    }
    for bad in [
        "( 1.2.3 NAME 'x' MUST ( a b ) )",
        "( 1.2.3 NAME 'x' MUST ( a $ ) )",
        "( 1.2.3 NAME 'x' ABSTRACT AUXILIARY )",
    ] {
        assert!(parser::parse_object_class(bad).is_err(), "{bad}");
    }
}

#[test]
fn ldif_reader_handles_folding_comments_base64_and_crlf() {
    let text = "# comment\n#  folded comment\n continues\r\ndn: cn=schema\r\n\
                attributeTypes: ( 1.2.3 NAME 'a'\r\n  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\r\n\
                objectclasses:: KCAxLjIuNCBOQU1FICdiJyBNQVkgYSAp\n\
                olcAttributeTypes: {0}( 1.2.5 NAME 'c' SUP a )\n";
    let defs = parser::read_ldif(text).unwrap();
    assert_eq!(defs.len(), 3);
    assert_eq!(defs[0].kind, parser::DefKind::AttributeType);
    assert_eq!(defs[0].line, 5);
    assert_eq!(
        defs[0].text,
        "( 1.2.3 NAME 'a' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"
    );
    assert_eq!(defs[1].kind, parser::DefKind::ObjectClass);
    assert_eq!(defs[1].text, "( 1.2.4 NAME 'b' MAY a )");
    assert_eq!(defs[2].text, "( 1.2.5 NAME 'c' SUP a )");
    let s = Schema::from_texts(&[("t.ldif", text)]).unwrap();
    assert_eq!(s.attribute("C").unwrap().equality, None);
    assert_eq!(s.object_class("B").unwrap().may, vec!["a"]);
}

#[test]
fn load_errors_name_file_and_line() {
    let e = load_err(&[(
        "x.ldif",
        "dn: cn=schema\nattributeTypes: ( 1.2.3 NAME 'a'\n  FROB SYNTAX 1.2.3.4 )\n",
    )]);
    assert_eq!((e.file.as_str(), e.line), ("x.ldif", 2));
    assert!(e.to_string().starts_with("x.ldif:2: "), "{e}");
    assert!(e.message.contains("unknown keyword \"FROB\""), "{e}");

    let e = load_err(&[("y.ldif", " starts folded\n")]);
    assert_eq!(e.line, 1);
    let e = load_err(&[("y.ldif", "dn: cn=schema\n\nno colon here\n")]);
    assert_eq!(e.line, 3);

    let e = load_err(&[
        ("a.ldif", BASE),
        (
            "b.ldif",
            "dn: cn=schema\n\nobjectClasses: ( 7.7.7 NAME 'q' SUP nosuch )\n",
        ),
    ]);
    assert_eq!((e.file.as_str(), e.line), ("b.ldif", 3));
    assert!(e.message.contains("unknown SUP 'nosuch'"), "{e}");

    let e = load_err(&[(
        "c.ldif",
        "objectClasses: ( 7.7.7 NAME 'q' MUST ( cn $ nosuch ) )\n",
    )]);
    assert!(
        e.message.contains("unknown attribute type 'cn' in MUST"),
        "{e}"
    );

    let e = load_err(&[("d.ldif", "attributeTypes: ( 7.7.8 NAME 'q' SUP nosuch )\n")]);
    assert!(e.message.contains("unknown SUP 'nosuch'"), "{e}");

    let e = load_err(&[(
        "e.ldif",
        "attributeTypes: ( 7.7.9 NAME 'q' EQUALITY fuzzyMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n",
    )]);
    assert!(
        e.message.contains("unknown matching rule 'fuzzyMatch'"),
        "{e}"
    );

    let e = load_err(&[(
        "f.ldif",
        "attributeTypes: ( 7.7.9 NAME 'q' EQUALITY caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n",
    )]);
    assert!(e.message.contains("cannot be used as EQUALITY"), "{e}");
}

#[test]
fn duplicate_oids_and_names_are_errors() {
    let e = load_err(&[
        ("a.ldif", BASE),
        (
            "b.ldif",
            "attributeTypes: ( 2.5.4.3 NAME 'other' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n",
        ),
    ]);
    assert_eq!((e.file.as_str(), e.line), ("b.ldif", 1));
    assert!(
        e.message.contains("duplicate attribute type OID '2.5.4.3'"),
        "{e}"
    );
    assert!(
        e.message.contains("base") || e.message.contains("a.ldif:"),
        "{e}"
    );

    let e = load_err(&[
        ("a.ldif", BASE),
        (
            "b.ldif",
            "\n\nattributeTypes: ( 7.7.7 NAME 'COMMONNAME' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n",
        ),
    ]);
    assert_eq!(e.line, 3);
    assert!(
        e.message
            .contains("duplicate attribute type name 'commonname'"),
        "{e}"
    );

    let e = load_err(&[
        ("a.ldif", BASE),
        ("b.ldif", "objectClasses: ( 7.7.7 NAME 'Person' )\n"),
    ]);
    assert!(
        e.message.contains("duplicate object class name 'person'"),
        "{e}"
    );

    let e = load_err(&[
        ("a.ldif", BASE),
        ("b.ldif", "objectClasses: ( 2.5.4.3 NAME 'zzz' )\n"),
    ]);
    assert!(
        e.message.contains("already used by an attribute type"),
        "{e}"
    );
}

#[test]
fn attribute_types_inherit_from_sup_chain() {
    let s = Schema::from_texts(&[(
        "t.ldif",
        "attributeTypes: ( 1.1.3 NAME 'grandchild' SUP child SINGLE-VALUE )\n\
         attributeTypes: ( 1.1.2 NAME 'child' SUP 1.1.1 ORDERING caseIgnoreOrderingMatch )\n\
         attributeTypes: ( 1.1.1 NAME 'root' EQUALITY 2.5.13.2 SUBSTR caseignoresubstringsmatch \
           SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{10} )\n",
    )])
    .unwrap();
    let g = s.attribute("GRANDCHILD").unwrap();
    assert_eq!(g.sup.as_deref(), Some("child"));
    // Rule references are stored under their canonical names.
    assert_eq!(g.equality.as_deref(), Some("caseIgnoreMatch"));
    assert_eq!(g.ordering.as_deref(), Some("caseIgnoreOrderingMatch"));
    assert_eq!(g.substr.as_deref(), Some("caseIgnoreSubstringsMatch"));
    assert_eq!(g.syntax.as_deref(), Some("1.3.6.1.4.1.1466.115.121.1.15"));
    assert!(g.single_value);
    assert_eq!(s.attribute("child").unwrap().sup.as_deref(), Some("root"));
    // The served definition is the text as loaded.
    assert_eq!(
        g.definition,
        "( 1.1.3 NAME 'grandchild' SUP child SINGLE-VALUE )"
    );

    let e = load_err(&[(
        "cycle.ldif",
        "attributeTypes: ( 1.1.1 NAME 'a' SUP b )\nattributeTypes: ( 1.1.2 NAME 'b' SUP a )\n",
    )]);
    assert!(e.message.contains("SUP cycle"), "{e}");
}

#[test]
fn object_class_kind_rules_and_cycles() {
    let e = load_err(&[(
        "k.ldif",
        "objectClasses: ( 1.1.1 NAME 'aux' AUXILIARY )\n\
         objectClasses: ( 1.1.2 NAME 'st' SUP aux STRUCTURAL )\n",
    )]);
    assert_eq!(e.line, 2);
    assert!(
        e.message.contains("cannot have Auxiliary superclass 'aux'"),
        "{e}"
    );
    let e = load_err(&[(
        "c.ldif",
        "objectClasses: ( 1.1.1 NAME 'a' SUP b )\nobjectClasses: ( 1.1.2 NAME 'b' SUP a )\n",
    )]);
    assert!(e.message.contains("SUP cycle"), "{e}");
}

#[test]
fn lookups_are_case_insensitive_by_name_and_oid() {
    let s = base();
    for n in ["cn", "CN", "commonName", "COMMONNAME", "2.5.4.3"] {
        assert_eq!(s.attribute(n).unwrap().name(), "cn", "{n}");
    }
    assert_eq!(
        s.object_class("INETORGPERSON").unwrap().oid,
        "2.16.840.1.113730.3.2.2"
    );
    assert_eq!(s.object_class("2.5.6.6").unwrap().name(), "person");
    assert!(s.attribute("nosuch").is_none());
    assert!(s.attribute(&"x".repeat(200)).is_none());
    assert!(s.has_matching_rule("CASEIGNOREMATCH"));
    assert!(s.has_matching_rule("2.5.13.2"));
    assert!(s.has_matching_rule("1.2.840.113556.1.4.803"));
    assert!(!s.has_matching_rule("fuzzyMatch"));
    // MUST/MAY hold primary names whatever the file used.
    let oc = s.object_class("organizationalPerson").unwrap();
    assert_eq!(oc.sup, vec!["person"]);
}

#[test]
fn builtin_loads() {
    let s = Schema::builtin().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.attribute("commonName").unwrap().name(), "cn");
    assert!(s.object_class("inetOrgPerson").is_some());
    let e = entry(
        "uid=bjensen,ou=People,dc=example,dc=com",
        &[
            ("objectClass", &["top", "inetOrgPerson", "posixAccount"]),
            ("cn", &["Babs Jensen"]),
            ("sn", &["Jensen"]),
            ("uid", &["bjensen"]),
            ("uidNumber", &["1000"]),
            ("gidNumber", &["1000"]),
            ("homeDirectory", &["/home/bjensen"]),
            ("mail", &["bjensen@example.com"]),
        ],
    );
    s.check_entry(&e).unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(s.structural_class(&e).unwrap(), "inetOrgPerson");
    let typical: &[Entry] = &[
        entry(
            "dc=example,dc=com",
            &[
                ("objectClass", &["top", "dcObject", "organization"]),
                ("dc", &["example"]),
                ("o", &["Example Inc."]),
            ],
        ),
        entry(
            "cn=admins,ou=Groups,dc=example,dc=com",
            &[
                ("objectClass", &["groupOfNames", "posixGroup"]),
                ("cn", &["admins"]),
                ("gidNumber", &["500"]),
                ("member", &["uid=bjensen,ou=People,dc=example,dc=com"]),
                ("memberUid", &["bjensen"]),
            ],
        ),
        entry(
            "sambaDomainName=EXAMPLE,dc=example,dc=com",
            &[
                ("objectClass", &["sambaDomain"]),
                ("sambaDomainName", &["EXAMPLE"]),
                ("sambaSID", &["S-1-5-21-1-2-3"]),
            ],
        ),
    ];
    for t in typical {
        s.check_entry(t).unwrap_or_else(|v| panic!("{}: {v}", t.dn));
    }
    // The subschema subentry itself passes the checks.
    let mut sub = entry(
        "cn=schema",
        &[
            ("objectClass", &["top", "ldapSubentry", "subschema"]),
            ("cn", &["schema"]),
        ],
    );
    for (name, values) in s.subschema_attributes() {
        sub.attrs.push(Attribute::new(name, values, Csn::ZERO));
    }
    s.check_entry(&sub)
        .unwrap_or_else(|v| panic!("cn=schema: {v}"));
    let round = subschema_ldif(&s);
    let again = Schema::from_texts(&[("round.ldif", &round)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.attributes().len(), s.attributes().len());
}

// ---------------------------------------------------------------- syntaxes

fn syntax_ok(s: &Schema, syntax_oid: &str, v: &[u8]) -> bool {
    let at = AttributeType {
        oid: "1.1".into(),
        names: vec!["t".into()],
        desc: None,
        obsolete: false,
        sup: None,
        equality: None,
        ordering: None,
        substr: None,
        syntax: Some(syntax_oid.into()),
        single_value: false,
        collective: false,
        no_user_modification: false,
        usage: Usage::UserApplications,
        definition: String::new(),
    };
    s.check_syntax(&at, v).is_ok()
}

/// Syntax OID suffix, valid values, invalid values.
type SyntaxCase<'a> = (&'a str, &'a [&'a str], &'a [&'a [u8]]);

#[test]
fn syntaxes_accept_and_reject() {
    let s = base();
    let p = "1.3.6.1.4.1.1466.115.121.1.";
    let cases: &[SyntaxCase] = &[
        ("15", &["x", "Babs Jensen", "café"], &[b"", b"\xff"]),
        ("26", &["", "a@b.c"], &["é".as_bytes()]),
        (
            "27",
            &["0", "-1", "42", "123456789012345678901234567890"],
            &[b"", b"-", b"007", b"-0", b"1.5", b" 1", b"+1"],
        ),
        ("7", &["TRUE", "FALSE"], &[b"true", b"yes", b""]),
        (
            "12",
            &["", "cn=a,dc=b", "cn=a\\,b+uid=c,dc=x"],
            &[b"cn", b"cn=a,", b"\xff=a"],
        ),
        (
            "24",
            &[
                "20240229235959Z",
                "2024010112Z",
                "202401011230Z",
                "20240101123045.5Z",
                "20240101123045,123+0130",
                "2024010112.25-05",
                "19991231235960Z",
            ],
            &[
                b"20230229000000Z",
                b"20241301000000Z",
                b"2024010124Z",
                b"20240101126000Z",
                b"20240101000000",
                b"20240101000000.Z",
                b"20240101000000+2400",
                b"2024010100000Z",
            ],
        ),
        ("50", &["+1 408 555 1212", "555-1234"], &[b"", b"555#1"]),
        ("40", &["", "\u{0}\u{1}"], &[]),
        (
            "38",
            &["2.5.4.3", "cn", "x-y-1"],
            &[b"", b"2.", b"2.05", b"1cn", b"a_b"],
        ),
        ("36", &["123 456", " 1"], &[b"", b"12a", b"-1"]),
        (
            "41",
            &["1 Main St$Springfield", "a\\24b$c\\5Cd"],
            &[b"", b"a$$b", b"a\\b", b"$"],
        ),
        (
            "44",
            &["Hello (World) 1.", "a'b+c,d-e=f/g:h?"],
            &[b"", b"a@b", b"a_b"],
        ),
        ("6", &["''B", "'0101'B"], &[b"'012'B", b"0101", b"'0101'"]),
        ("11", &["US", "de"], &[b"USA", b"U", b"U@"]),
        (
            "34",
            &["cn=a,dc=b", "cn=a,dc=b#'0101'B", "cn=a\\#b,dc=c"],
            &[b"cn", b"=x#'01'B", b"cn=a,#'01'B"],
        ),
        (
            "58",
            &["a*", "*a", "a*b*c", "*", "*a*", "x\\2Ay*"],
            &[b"abc", b"a**b", b"a\\2Bb*", b""],
        ),
        ("4", &["anything"], &[]),
        ("28", &["\u{ff}"], &[]),
        ("5", &[""], &[]),
        ("8", &["x"], &[]),
        (
            "3",
            &["( 1.2.3 NAME 'a' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"],
            &[b"( 1.2.3 NAME 'a' )", b"junk"],
        ),
        (
            "37",
            &["( 1.2.3 NAME 'a' SUP top AUXILIARY )"],
            &[b"( 1.2.3 NAME 'a' FOO )"],
        ),
        ("54", &["( 1.2.3 DESC 'x' )"], &[b"( 1.2.3 NAME 'x' )"]),
        (
            "30",
            &["( 2.5.13.2 NAME 'caseIgnoreMatch' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"],
            &[b"( 2.5.13.2 NAME 'caseIgnoreMatch' )"],
        ),
        (
            "31",
            &["( 2.5.13.2 APPLIES ( cn $ sn ) )"],
            &[b"( 2.5.13.2 NAME 'x' )"],
        ),
        (
            "22",
            &["+1 555 1234", "+1 555 1234$twoDimensional$fineResolution"],
            &[b"+1 555 1234$bogus", b""],
        ),
        (
            "39",
            &["internet$user@example.com"],
            &[b"internet", b"$x", b"a@b$x", b"internet$"],
        ),
        (
            "25",
            &["person#sn$EQ", "sn$EQ|(cn$SUBSTR&!uid$GE)", "?true"],
            &[b"sn$FOO", b"sn", b"(sn$EQ", b"!!!"],
        ),
        (
            "21",
            &[
                "person#sn$EQ#wholeSubtree",
                "person # (cn$APPROX|?false) # baseobject",
            ],
            &[b"person#sn$EQ", b"person#sn$EQ#everywhere"],
        ),
    ];
    for (suffix, good, bad) in cases {
        let oid = format!("{p}{suffix}");
        for g in *good {
            assert!(
                syntax_ok(&s, &oid, g.as_bytes()),
                "{oid} should accept {g:?}"
            );
        }
        for b in *bad {
            assert!(
                !syntax_ok(&s, &oid, b),
                "{oid} should reject {:?}",
                String::from_utf8_lossy(b)
            );
        }
    }
    assert!(syntax_ok(
        &s,
        "1.3.6.1.1.16.1",
        b"8a0a8d3e-1d2f-4b3a-9c1e-0123456789AB"
    ));
    assert!(!syntax_ok(
        &s,
        "1.3.6.1.1.16.1",
        b"8a0a8d3e1d2f4b3a9c1e0123456789ab"
    ));
    assert!(!syntax_ok(
        &s,
        "1.3.6.1.1.16.1",
        b"8a0a8d3e-1d2f-4b3a-9c1e-0123456789ag"
    ));
    // Syntaxes the code does not know accept anything.
    assert!(syntax_ok(&s, "1.2.3.4.5.6", b"\xff\x00"));
    // A deeply nested guide is rejected, not a stack overflow.
    let deep = format!("{}sn$EQ", "!".repeat(100_000));
    assert!(!syntax_ok(&s, &format!("{p}25"), deep.as_bytes()));
    let err = s.check_syntax(&at(&s, "uidNumber"), b"12x").unwrap_err();
    assert_eq!(err.kind, ViolationKind::InvalidAttributeSyntax);
    assert_eq!(
        err.message,
        "value '12x' of 'uidNumber' is not a valid Integer"
    );
}

#[test]
fn subschema_lists_code_syntaxes_and_rules() {
    let s = base();
    let attrs = s.subschema_attributes();
    let get = |n: &str| -> Vec<String> {
        attrs
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| {
                v.iter()
                    .map(|x| String::from_utf8(x.clone()).unwrap())
                    .collect()
            })
            .unwrap()
    };
    let syntaxes = get("ldapSyntaxes");
    assert!(
        syntaxes.contains(&"( 1.3.6.1.4.1.1466.115.121.1.15 DESC 'Directory String' )".to_string())
    );
    assert!(syntaxes.contains(&"( 1.3.6.1.1.16.1 DESC 'UUID' )".to_string()));
    assert!(
        syntaxes
            .iter()
            .any(|x| x
                .starts_with("( 1.3.6.1.4.1.1466.115.121.1.28 DESC 'JPEG' X-NOT-HUMAN-READABLE"))
    );
    let rules = get("matchingRules");
    assert!(rules.contains(
        &"( 2.5.13.2 NAME 'caseIgnoreMatch' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )".to_string()
    ));
    assert!(rules
        .iter()
        .any(|r| r.starts_with("( 1.2.840.113556.1.4.803 ")));
    assert_eq!(rules.len(), matching::RULES.len());
    let uses = get("matchingRuleUse");
    let ci = uses.iter().find(|u| u.starts_with("( 2.5.13.2 ")).unwrap();
    assert!(
        ci.contains(" cn ") && ci.contains("description") && ci.contains("mail"),
        "{ci}"
    );
    assert!(!ci.contains("uidNumber"), "{ci}");
    let int = uses.iter().find(|u| u.starts_with("( 2.5.13.14 ")).unwrap();
    assert!(int.contains("uidNumber"), "{int}");
    assert_eq!(get("attributeTypes").len(), s.attributes().len());
    assert!(get("objectClasses")
        .iter()
        .any(|x| x.contains("'inetOrgPerson'")));
}

fn subschema_ldif(s: &Schema) -> String {
    let mut out = String::from("dn: cn=schema\n");
    for (name, values) in s.subschema_attributes() {
        for v in values {
            let text = String::from_utf8(v).unwrap();
            // Fold at 60 characters to exercise continuation lines too.
            let mut line = format!("{name}: {text}");
            while line.len() > 60 {
                let cut = (60..line.len())
                    .find(|&i| line.is_char_boundary(i))
                    .unwrap();
                out.push_str(&line[..cut]);
                out.push_str("\n ");
                line = line[cut..].to_string();
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn subschema_output_parses_back() {
    let s = base();
    let text = subschema_ldif(&s);
    let again = Schema::from_texts(&[("subschema.ldif", &text)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.attributes().len(), s.attributes().len());
    for a in s.attributes() {
        let b = again.attribute(&a.oid).unwrap();
        assert_eq!(a.names, b.names);
        assert_eq!(a.equality, b.equality);
        assert_eq!(a.syntax, b.syntax);
    }
    for (name, values) in s.subschema_attributes() {
        for v in values {
            let t = std::str::from_utf8(&v).unwrap();
            let ok = match name.as_str() {
                "attributeTypes" => parser::parse_attribute_type(t).is_ok(),
                "objectClasses" => parser::parse_object_class(t).is_ok(),
                "ldapSyntaxes" => parser::parse_syntax(t).is_ok(),
                "matchingRules" => parser::parse_matching_rule(t).is_ok(),
                "matchingRuleUse" => parser::parse_matching_rule_use(t).is_ok(),
                _ => false,
            };
            assert!(ok, "{name}: {t}");
        }
    }
}

// ---------------------------------------------------------------- matching rules

fn norm(s: &Schema, attr: &str, v: &str) -> Vec<u8> {
    s.eq_normalize(&at(s, attr), v.as_bytes())
        .unwrap_or_else(|e| panic!("{attr}={v:?}: {e}"))
}

fn assert_eq_pairs(s: &Schema, attr: &str, equal: &[(&str, &str)], unequal: &[(&str, &str)]) {
    for (a, b) in equal {
        assert_eq!(norm(s, attr, a), norm(s, attr, b), "{attr}: {a:?} == {b:?}");
    }
    for (a, b) in unequal {
        assert_ne!(norm(s, attr, a), norm(s, attr, b), "{attr}: {a:?} != {b:?}");
    }
}

#[test]
fn case_ignore_and_exact_rules() {
    let s = base();
    assert_eq_pairs(
        &s,
        "cn",
        &[
            ("Babs Jensen", "babs jensen"),
            ("  Babs   Jensen ", "BABS JENSEN"),
            ("Babs\tJensen", "babs jensen"),
            ("ÉCOLE", "école"),
            ("soft\u{AD}hyphen", "softhyphen"),
            ("a\u{A0}b", "a b"),
        ],
        &[("Babs Jensen", "BabsJensen"), ("a", "b"), ("e", "é")],
    );
    assert_eq!(norm(&s, "cn", "  Babs   JENSEN "), b"babs jensen");
    assert_eq!(norm(&s, "cn", "   "), b" ");
    assert_eq_pairs(
        &s,
        "serialNumber",
        &[(" AB  C ", "AB C")],
        &[("ABC", "abc")],
    );
    assert_eq_pairs(
        &s,
        "mail",
        &[("A@Example.COM", "a@example.com")],
        &[("a@b", "a@c")],
    );
    assert!(s.eq_normalize(&at(&s, "mail"), "é@x".as_bytes()).is_err());
    assert_eq_pairs(
        &s,
        "shellName",
        &[("/bin/sh", " /bin/sh ")],
        &[("/bin/SH", "/bin/sh")],
    );
    let e = s.eq_normalize(&at(&s, "cn"), b"\xff").unwrap_err();
    assert_eq!(e.kind, ViolationKind::InvalidAttributeSyntax);
    let e = s.eq_normalize(&at(&s, "opaque"), b"x").unwrap_err();
    assert_eq!(e.kind, ViolationKind::InappropriateMatching);
}

#[test]
fn ordering_rules() {
    let s = base();
    use std::cmp::Ordering::*;
    let cmp = |a: &str, x: &str, y: &str| s.compare(&at(&s, a), x.as_bytes(), y.as_bytes());
    assert_eq!(cmp("sortName", "apple", "BANANA"), Some(Less));
    assert_eq!(cmp("sortName", "Apple", "apple "), Some(Equal));
    assert_eq!(cmp("serialNumber", "B", "a"), Some(Less));
    assert_eq!(cmp("uidNumber", "9", "10"), Some(Less));
    assert_eq!(cmp("uidNumber", "-10", "-9"), Some(Less));
    assert_eq!(cmp("uidNumber", "-1", "0"), Some(Less));
    assert_eq!(
        cmp(
            "uidNumber",
            "123456789012345678901234567890",
            "123456789012345678901234567891"
        ),
        Some(Less)
    );
    assert_eq!(
        cmp(
            "uidNumber",
            "-99999999999999999999999999999999999999999",
            "1"
        ),
        Some(Less)
    );
    assert_eq!(cmp("uidNumber", "7", "007"), None);
    assert_eq!(cmp("postOfficeBox", "1 2", "13"), Some(Less));
    assert_eq!(cmp("blob", "a", "b"), Some(Less));
    assert_eq!(
        cmp("createTimestamp", "20240101120000Z", "20240101130000+0200"),
        Some(Greater)
    );
    assert_eq!(
        cmp("createTimestamp", "20240101120000Z", "202401011400+0200"),
        Some(Equal)
    );
    assert_eq!(
        cmp("createTimestamp", "20240101120000.5Z", "20240101120000Z"),
        Some(Greater)
    );
    assert_eq!(
        cmp(
            "entryUUID",
            "00000000-0000-0000-0000-00000000000A",
            "00000000-0000-0000-0000-00000000000b"
        ),
        Some(Less)
    );
    // No ORDERING rule.
    assert_eq!(cmp("cn", "a", "b"), None);
    assert_eq!(cmp("mail", "a", "b"), None);
}

#[test]
fn integer_boolean_bitstring_octet_rules() {
    let s = base();
    assert_eq_pairs(
        &s,
        "uidNumber",
        &[("1000", "1000")],
        &[("1000", "-1000"), ("1", "10")],
    );
    for bad in ["007", "-0", " 1", "1e3", ""] {
        assert_eq!(
            s.eq_normalize(&at(&s, "uidNumber"), bad.as_bytes())
                .unwrap_err()
                .kind,
            ViolationKind::InvalidAttributeSyntax,
            "{bad}"
        );
    }
    assert_eq_pairs(&s, "isActive", &[("TRUE", "TRUE")], &[("TRUE", "FALSE")]);
    assert!(s.eq_normalize(&at(&s, "isActive"), b"true").is_err());
    assert_eq_pairs(
        &s,
        "flagBits",
        &[("'0101'B", "'0101'B")],
        &[("'0101'B", "'01010'B")],
    );
    assert_eq_pairs(
        &s,
        "userPassword",
        &[("secret", "secret")],
        &[("secret", "Secret"), ("a", "a ")],
    );
}

#[test]
fn telephone_numeric_and_list_rules() {
    let s = base();
    assert_eq_pairs(
        &s,
        "telephoneNumber",
        &[
            ("+1 408-555-1212", "+14085551212"),
            ("555 ext A", "555EXTa"),
        ],
        &[("555-1212", "555-1213")],
    );
    assert_eq_pairs(
        &s,
        "postOfficeBox",
        &[("12 34", "1234")],
        &[("1234", "12345")],
    );
    assert!(s.eq_normalize(&at(&s, "postOfficeBox"), b"12a").is_err());
    assert_eq_pairs(
        &s,
        "postalAddress",
        &[
            ("1 Main  St$Springfield", "1 MAIN ST $ springfield"),
            ("a\\24b$c", "A\\24B$C"),
        ],
        &[("a$b", "ab"), ("a\\24b", "a$b")],
    );
}

#[test]
fn time_uuid_and_oid_rules() {
    let s = base();
    assert_eq_pairs(
        &s,
        "createTimestamp",
        &[
            ("20240101120000Z", "20240101130000+0100"),
            ("20240101120000Z", "2024010112Z"),
            ("20240101120000Z", "20240101120000.000Z"),
            ("2024010112.5Z", "20240101123000Z"),
            ("202401011230.5Z", "20240101123030Z"),
            ("20240101000000Z", "20231231190000-05"),
        ],
        &[("20240101120000Z", "20240101120001Z")],
    );
    assert_eq!(
        norm(&s, "createTimestamp", "20240101013000.250+0200"),
        b"20231231233000.25Z"
    );
    assert_eq_pairs(
        &s,
        "entryUUID",
        &[(
            "8A0A8D3E-1D2F-4B3A-9C1E-0123456789AB",
            "8a0a8d3e-1d2f-4b3a-9c1e-0123456789ab",
        )],
        &[(
            "8a0a8d3e-1d2f-4b3a-9c1e-0123456789ab",
            "8a0a8d3e-1d2f-4b3a-9c1e-0123456789ac",
        )],
    );
    assert_eq_pairs(
        &s,
        "objectClass",
        &[
            ("person", "2.5.6.6"),
            ("PERSON", "person"),
            ("inetorgperson", "2.16.840.1.113730.3.2.2"),
            ("Unknown-X", "unknown-x"),
        ],
        &[("person", "organizationalPerson"), ("2.5.6.6", "2.5.6.7")],
    );
    assert_eq_pairs(
        &s,
        "supportedThing",
        &[("commonName", "2.5.4.3"), ("caseIgnoreMatch", "2.5.13.2")],
        &[],
    );
    assert!(s
        .eq_normalize(&at(&s, "objectClass"), b"not valid")
        .is_err());
}

#[test]
fn dn_and_unique_member_rules() {
    let s = base();
    assert_eq_pairs(
        &s,
        "member",
        &[
            (
                "CN=Babs  Jensen,OU=People,DC=Example,DC=com",
                "cn=babs jensen,ou=people,dc=example,dc=com",
            ),
            ("commonName=x+uid=Y,dc=z", "UID=y+2.5.4.3=X,dc=z"),
            ("uidNumber=1,dc=x", "uidnumber=1,dc=x"),
        ],
        &[
            ("cn=a,dc=x", "cn=a,dc=y"),
            ("cn=a\\,b,dc=x", "cn=a,cn=b,dc=x"),
        ],
    );
    assert!(s.eq_normalize(&at(&s, "member"), b"not a dn").is_err());
    assert_eq_pairs(
        &s,
        "uniqueMember",
        &[
            ("CN=A,DC=X#'01'B", "cn=a,dc=x#'01'B"),
            ("CN=A,DC=X", "cn=a, dc=x"),
        ],
        &[
            ("cn=a,dc=x#'01'B", "cn=a,dc=x#'10'B"),
            ("cn=a,dc=x#'01'B", "cn=a,dc=x"),
        ],
    );
}

#[test]
fn first_component_rules() {
    let s = base();
    let syn = "( 1.3.6.1.4.1.1466.115.121.1.15 DESC 'Directory String' )";
    assert_eq!(
        norm(&s, "ldapSyntaxes", syn),
        norm(&s, "ldapSyntaxes", "1.3.6.1.4.1.1466.115.121.1.15")
    );
    assert_ne!(
        norm(&s, "ldapSyntaxes", syn),
        norm(&s, "ldapSyntaxes", "1.2.3")
    );
    assert_eq!(
        norm(&s, "dITStructureRules", "( 12 NAME 'x' FORM y )"),
        b"12"
    );
    assert_eq!(norm(&s, "dITStructureRules", "12"), b"12");
    assert!(s
        .eq_normalize(&at(&s, "dITStructureRules"), b"( x )")
        .is_err());
    assert_eq!(
        norm(&s, "nickName", "( 'Bob\\27s' 2 )"),
        norm(&s, "nickName", "BOB'S")
    );
}

fn substr(
    s: &Schema,
    attr: &str,
    value: &str,
    i: Option<&str>,
    any: &[&str],
    f: Option<&str>,
) -> Option<bool> {
    let any: Vec<&[u8]> = any.iter().map(|x| x.as_bytes()).collect();
    s.substring_match(
        &at(s, attr),
        value.as_bytes(),
        i.map(str::as_bytes),
        &any,
        f.map(str::as_bytes),
    )
}

#[test]
fn substring_rules() {
    let s = base();
    assert_eq!(
        substr(&s, "cn", "Babs  Jensen", Some("BABS "), &[], Some("SEN")),
        Some(true)
    );
    assert_eq!(
        substr(&s, "cn", "Babs Jensen", Some("b"), &["s j", "n"], None),
        Some(true)
    );
    assert_eq!(
        substr(&s, "cn", "Babs Jensen", Some("Jen"), &[], None),
        Some(false)
    );
    assert_eq!(
        substr(&s, "cn", "Babs Jensen", None, &["jen", "abs"], None),
        Some(false)
    );
    assert_eq!(
        substr(&s, "serialNumber", "AbC", Some("Ab"), &[], None),
        Some(true)
    );
    assert_eq!(
        substr(&s, "serialNumber", "AbC", Some("ab"), &[], None),
        Some(false)
    );
    assert_eq!(
        substr(
            &s,
            "mail",
            "Bob@Example.com",
            None,
            &[],
            Some("EXAMPLE.COM")
        ),
        Some(true)
    );
    assert_eq!(
        substr(&s, "shellName", "/bin/Bash", None, &[], Some("bash")),
        Some(false)
    );
    assert_eq!(
        substr(
            &s,
            "telephoneNumber",
            "+1 408-555-1212",
            None,
            &["5551"],
            None
        ),
        Some(true)
    );
    assert_eq!(
        substr(&s, "postOfficeBox", "12 34 56", Some("1234"), &[], None),
        Some(true)
    );
    assert_eq!(
        substr(
            &s,
            "postalAddress",
            "1 Main St$Springfield",
            None,
            &["stspring"],
            None
        ),
        Some(true)
    );
    // No SUBSTR rule.
    assert_eq!(substr(&s, "uidNumber", "1000", Some("1"), &[], None), None);
    assert_eq!(
        s.substr_normalize(&at(&s, "cn"), b"  Hello   World "),
        Some(b"hello world".to_vec())
    );
    assert_eq!(s.substr_normalize(&at(&s, "uidNumber"), b"1"), None);
}

#[test]
fn extensible_match_rules() {
    let s = base();
    let m = |rule: Option<&str>, attr: &str, assertion: &str, value: &str| {
        s.extensible_match(rule, &at(&s, attr), assertion.as_bytes(), value.as_bytes())
    };
    // Default: the attribute's equality rule.
    assert_eq!(m(None, "cn", "BABS", "babs"), Some(true));
    assert_eq!(m(None, "cn", "x", "babs"), Some(false));
    assert_eq!(m(Some("caseExactMatch"), "cn", "BABS", "babs"), Some(false));
    assert_eq!(m(Some("2.5.13.5"), "cn", "babs", "babs"), Some(true));
    assert_eq!(
        m(Some("caseIgnoreIA5Match"), "mail", "A@B", "a@b"),
        Some(true)
    );
    // Ordering rules: TRUE when the value is less than the assertion.
    assert_eq!(
        m(Some("integerOrderingMatch"), "uidNumber", "1000", "999"),
        Some(true)
    );
    assert_eq!(
        m(Some("integerOrderingMatch"), "uidNumber", "1000", "1000"),
        Some(false)
    );
    assert_eq!(
        m(Some("caseIgnoreOrderingMatch"), "cn", "M", "alpha"),
        Some(true)
    );
    // Substrings rules take a Substring Assertion.
    assert_eq!(
        m(
            Some("caseIgnoreSubstringsMatch"),
            "cn",
            "ba*JEN*",
            "Babs Jensen"
        ),
        Some(true)
    );
    assert_eq!(
        m(
            Some("caseIgnoreSubstringsMatch"),
            "cn",
            "*x*",
            "Babs Jensen"
        ),
        Some(false)
    );
    assert_eq!(
        m(
            Some("caseIgnoreSubstringsMatch"),
            "cn",
            "no star",
            "Babs Jensen"
        ),
        None
    );
    // Bit rules.
    assert_eq!(
        m(Some("1.2.840.113556.1.4.803"), "accountFlags", "6", "14"),
        Some(true)
    );
    assert_eq!(
        m(Some("1.2.840.113556.1.4.803"), "accountFlags", "6", "12"),
        Some(false)
    );
    assert_eq!(
        m(Some("1.2.840.113556.1.4.804"), "accountFlags", "6", "12"),
        Some(true)
    );
    assert_eq!(
        m(Some("1.2.840.113556.1.4.804"), "accountFlags", "1", "12"),
        Some(false)
    );
    assert_eq!(
        m(Some("integerBitAndMatch"), "accountFlags", "x", "12"),
        None
    );
    assert_eq!(
        m(Some("integerBitAndMatch"), "accountFlags", "1", "junk"),
        Some(false)
    );
    // Rule not fitting the attribute's syntax, unknown rules, invalid assertions.
    assert_eq!(m(Some("integerMatch"), "cn", "1", "1"), None);
    assert_eq!(m(Some("1.2.840.113556.1.4.803"), "cn", "1", "1"), None);
    assert_eq!(m(Some("fuzzyMatch"), "cn", "a", "a"), None);
    assert_eq!(m(Some("integerMatch"), "uidNumber", "007", "7"), None);
    assert_eq!(m(None, "opaque", "a", "a"), None);
    assert_eq!(
        m(
            Some("distinguishedNameMatch"),
            "member",
            "CN=A,DC=X",
            "cn=a,dc=x"
        ),
        Some(true)
    );
}

#[test]
fn normalize_dn_equivalences() {
    let s = base();
    let n = |d: &str| s.normalize_dn(&Dn::parse(d).unwrap());
    assert_eq!(
        n("CN=Babs Jensen,OU=People,DC=Example,DC=COM"),
        "cn=babs jensen,ou=people,dc=example,dc=com"
    );
    assert_eq!(
        n("commonName=Babs   Jensen, ou=People"),
        n("2.5.4.3=babs jensen,organizationalUnitName=PEOPLE")
    );
    assert_eq!(n("cn=a+uid=b,dc=x"), n("UID=B+CN=A,DC=X"));
    assert_eq!(n("uidNumber=1000,dc=x"), "uidnumber=1000,dc=x");
    // Unknown types fall back to caseIgnore with the type lowercased.
    assert_eq!(n("FOO=Bar  Baz,dc=x"), "foo=bar baz,dc=x");
    assert_eq!(n("1.2.3.4=X"), "1.2.3.4=x");
    // Escaping keeps the string unambiguous.
    assert_eq!(n("cn=a\\,b,dc=x"), "cn=a\\,b,dc=x");
    assert_ne!(n("cn=a\\,b,dc=x"), n("cn=a,cn=b,dc=x"));
    assert_eq!(n("cn=\\#x,dc=x"), "cn=\\#x,dc=x");
    assert_eq!(n("cn=#04024869"), n("cn=hi"));
    assert_eq!(n(""), "");
}

// ---------------------------------------------------------------- entry checks

#[test]
fn valid_entries_pass() {
    let s = base();
    s.check_entry(&person(&[])).unwrap();
    assert_eq!(s.structural_class(&person(&[])).unwrap(), "inetOrgPerson");
    // Superclasses are implied; names and OIDs resolve case-insensitively.
    let e = entry(
        "CN=Babs+sn=J,dc=x",
        &[
            ("objectclass", &["INETORGPERSON", "1.3.6.1.1.1.2.0"]),
            ("commonName", &["Babs"]),
            ("2.5.4.4", &["J"]),
            ("userid", &["b"]),
            ("uidNumber", &["1000"]),
            ("userCertificate;binary", &["\u{1}\u{2}"]),
            ("entryUUID", &["8a0a8d3e-1d2f-4b3a-9c1e-0123456789ab"]),
            ("createTimestamp", &["20240101000000Z"]),
            ("telephoneNumber", &["+1 555 1212"]),
        ],
    );
    s.check_entry(&e).unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(s.structural_class(&e).unwrap(), "inetOrgPerson");
    let ou = entry(
        "ou=People,dc=x",
        &[
            ("objectClass", &["organizationalUnit"]),
            ("ou", &["People"]),
        ],
    );
    s.check_entry(&ou).unwrap();
    assert_eq!(s.structural_class(&ou).unwrap(), "organizationalUnit");
    // extensibleObject allows any user attribute.
    let ext = entry(
        "ou=x,dc=x",
        &[
            ("objectClass", &["organizationalUnit", "extensibleObject"]),
            ("ou", &["x"]),
            ("uidNumber", &["5"]),
            ("mail", &["a@b"]),
        ],
    );
    s.check_entry(&ext).unwrap();
    // Empty attributes count as absent.
    let mut e = person(&[]);
    e.attrs
        .push(Attribute::new("description", vec![], Csn::ZERO));
    s.check_entry(&e).unwrap();
}

#[test]
fn object_class_violations() {
    let s = base();
    let oc = ViolationKind::ObjectClassViolation;
    expect_violation(
        &s,
        &entry("cn=x", &[("cn", &["x"])]),
        oc,
        "entry has no objectClass attribute",
    );
    expect_violation(
        &s,
        &entry(
            "cn=x",
            &[
                ("objectClass", &["person", "wizard"]),
                ("cn", &["x"]),
                ("sn", &["y"]),
            ],
        ),
        oc,
        "object class 'wizard' is not defined",
    );
    expect_violation(
        &s,
        &entry(
            "uid=x",
            &[
                ("objectClass", &["top", "posixAccount"]),
                ("uid", &["x"]),
                ("uidNumber", &["1"]),
            ],
        ),
        oc,
        "entry has no structural object class",
    );
    expect_violation(
        &s,
        &entry(
            "cn=x",
            &[("objectClass", &["extensibleObject"]), ("cn", &["x"])],
        ),
        oc,
        "entry has no structural object class",
    );
    expect_violation(
        &s,
        &entry(
            "cn=x",
            &[("objectClass", &["person", "organizationalUnit"]), ("cn", &["x"]), ("sn", &["y"]), ("ou", &["z"])],
        ),
        oc,
        "structural object classes 'person' and 'organizationalUnit' are not on one superclass chain",
    );
    let e = entry(
        "cn=x",
        &[("objectClass", &["inetOrgPerson"]), ("cn", &["x"])],
    );
    expect_violation(
        &s,
        &e,
        oc,
        "object class 'inetOrgPerson' requires attribute 'sn'",
    );
    assert_eq!(s.structural_class(&e).unwrap(), "inetOrgPerson");
    expect_violation(
        &s,
        &person(&[("objectClass", &["posixAccount"])]),
        oc,
        "object class 'posixAccount' requires attribute 'uidNumber'",
    );
    expect_violation(
        &s,
        &person(&[("uidNumber", &["1"])]),
        oc,
        "attribute 'uidNumber' is not allowed by the entry's object classes",
    );
    // A subtype of an allowed type is not itself allowed.
    expect_violation(
        &s,
        &entry(
            "ou=x",
            &[
                ("objectClass", &["organizationalUnit"]),
                ("ou", &["x"]),
                ("cn", &["y"]),
            ],
        ),
        oc,
        "attribute 'cn' is not allowed by the entry's object classes",
    );
    assert_eq!(
        s.structural_class(&entry("cn=x", &[("cn", &["x"])]))
            .unwrap_err()
            .kind,
        ViolationKind::ObjectClassViolation
    );
}

#[test]
fn attribute_and_value_violations() {
    let s = base();
    expect_violation(
        &s,
        &person(&[("foo", &["bar"])]),
        ViolationKind::UndefinedAttributeType,
        "attribute type 'foo' is not defined",
    );
    expect_violation(
        &s,
        &person(&[("description;lang-en", &["x"])]),
        ViolationKind::UndefinedAttributeType,
        "attribute description 'description;lang-en' has unsupported option 'lang-en'",
    );
    let mut e = entry(
        "uid=x",
        &[
            ("objectClass", &["inetOrgPerson", "posixAccount"]),
            ("cn", &["x"]),
            ("sn", &["y"]),
            ("uid", &["x"]),
            ("uidNumber", &["1", "2"]),
        ],
    );
    expect_violation(
        &s,
        &e,
        ViolationKind::ConstraintViolation,
        "attribute 'uidNumber' is single-valued (found 2 values)",
    );
    e.set("uidNumber", vec![b"12a".to_vec()], Csn::ZERO);
    expect_violation(
        &s,
        &e,
        ViolationKind::InvalidAttributeSyntax,
        "value #1 of 'uidNumber' is not a valid Integer",
    );
    expect_violation(
        &s,
        &person(&[("mail", &["a@b", "c@d", "é@x"])]),
        ViolationKind::InvalidAttributeSyntax,
        "value #3 of 'mail' is not a valid IA5 String",
    );
    expect_violation(
        &s,
        &person(&[("description", &["Hello  World", "hello world"])]),
        ViolationKind::ConstraintViolation,
        "duplicate value 'hello world' in attribute 'description'",
    );
    // Values under two spellings of one type are one attribute.
    expect_violation(
        &s,
        &person(&[("commonName", &["BABS JENSEN"])]),
        ViolationKind::ConstraintViolation,
        "duplicate value 'BABS JENSEN' in attribute 'cn'",
    );
    // Exact-match types keep case-distinct values.
    s.check_entry(&person(&[("serialNumber", &["A", "a"])]))
        .unwrap();
}

#[test]
fn naming_violations() {
    let s = base();
    let mut e = person(&[]);
    e.dn = Dn::parse("uid=someoneelse,dc=x").unwrap();
    expect_violation(
        &s,
        &e,
        ViolationKind::NamingViolation,
        "value 'someoneelse' of RDN attribute 'uid' is not present in the entry",
    );
    // RDN values match under the equality rule.
    e.dn = Dn::parse("UID=BJENSEN+CN=babs  jensen,dc=x").unwrap();
    s.check_entry(&e).unwrap();
    e.dn = Dn::parse("mail=a@b,dc=x").unwrap();
    expect_violation(
        &s,
        &e,
        ViolationKind::NamingViolation,
        "value 'a@b' of RDN attribute 'mail' is not present in the entry",
    );
    e.dn = Dn::parse("frob=x,dc=x").unwrap();
    expect_violation(
        &s,
        &e,
        ViolationKind::UndefinedAttributeType,
        "RDN attribute type 'frob' is not defined",
    );
}

// ---------------------------------------------------------------- properties

fn arb_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9-]{0,10}"
}

fn arb_oid() -> impl Strategy<Value = String> {
    proptest::collection::vec(0u32..100_000, 2..8)
        .prop_map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join("."))
}

fn arb_attribute_type() -> impl Strategy<Value = AttributeType> {
    (
        arb_oid(),
        proptest::collection::vec(arb_name(), 0..3),
        proptest::option::of("[ -~éß'\\\\]{0,20}"),
        any::<[bool; 4]>(),
        proptest::option::of(arb_name()),
        proptest::option::of(prop_oneof![
            Just("caseIgnoreMatch".to_string()),
            Just("2.5.13.14".to_string())
        ]),
        proptest::option::of(arb_oid()),
        0..4usize,
    )
        .prop_map(|(oid, names, desc, flags, sup, equality, syntax, usage)| {
            let usage = [
                Usage::UserApplications,
                Usage::DirectoryOperation,
                Usage::DistributedOperation,
                Usage::DsaOperation,
            ][usage];
            let syntax = if sup.is_none() && syntax.is_none() {
                Some("1.3.6.1.4.1.1466.115.121.1.15".to_string())
            } else {
                syntax
            };
            AttributeType {
                oid,
                names,
                desc,
                obsolete: flags[0],
                sup,
                equality,
                ordering: None,
                substr: flags[1].then(|| "caseIgnoreSubstringsMatch".to_string()),
                syntax,
                single_value: flags[2],
                collective: flags[3] && usage == Usage::UserApplications,
                no_user_modification: flags[3] && usage != Usage::UserApplications,
                usage,
                definition: String::new(),
            }
        })
}

fn arb_object_class() -> impl Strategy<Value = ObjectClass> {
    (
        arb_oid(),
        proptest::collection::vec(arb_name(), 0..3),
        proptest::option::of("[ -~]{0,20}"),
        any::<bool>(),
        proptest::collection::vec(prop_oneof![arb_name(), arb_oid()], 0..3),
        0..3usize,
        proptest::collection::vec(arb_name(), 0..4),
        proptest::collection::vec(arb_name(), 0..4),
    )
        .prop_map(
            |(oid, names, desc, obsolete, sup, kind, must, may)| ObjectClass {
                also_auxiliary: false,
                oid,
                names,
                desc,
                obsolete,
                sup,
                kind: [
                    ObjectClassKind::Abstract,
                    ObjectClassKind::Structural,
                    ObjectClassKind::Auxiliary,
                ][kind],
                must,
                may,
                definition: String::new(),
            },
        )
}

proptest! {
    #[test]
    fn case_ignore_normalisation_is_idempotent(v in "\\PC{0,24}|[ A-Za-z\\t]{0,24}") {
        let s = base();
        let cn = at(&s, "cn");
        if let Ok(once) = s.eq_normalize(&cn, v.as_bytes()) {
            let twice = s.eq_normalize(&cn, &once).unwrap();
            prop_assert_eq!(&twice, &once);
            // Case variants normalise identically.
            let upper = s.eq_normalize(&cn, v.to_uppercase().as_bytes()).unwrap();
            let lower = s.eq_normalize(&cn, v.to_lowercase().as_bytes()).unwrap();
            if v.is_ascii() {
                prop_assert_eq!(&upper, &once);
                prop_assert_eq!(&lower, &once);
            }
        }
    }

    #[test]
    fn attribute_type_text_round_trips(at in arb_attribute_type()) {
        let text = at.render();
        let parsed = parser::parse_attribute_type(&text).unwrap();
        prop_assert_eq!(&parsed.definition, &text);
        let mut expected = at.clone();
        expected.definition = text.clone();
        prop_assert_eq!(format!("{expected:?}"), format!("{parsed:?}"));
        prop_assert_eq!(parsed.render(), text);
    }

    #[test]
    fn object_class_text_round_trips(oc in arb_object_class()) {
        let text = oc.render();
        let parsed = parser::parse_object_class(&text).unwrap();
        let mut expected = oc.clone();
        expected.definition = text.clone();
        prop_assert_eq!(format!("{expected:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn integer_order_matches_numeric_order(a in any::<i64>(), b in any::<i64>()) {
        let s = base();
        let n = at(&s, "uidNumber");
        let got = s.compare(&n, a.to_string().as_bytes(), b.to_string().as_bytes());
        prop_assert_eq!(got, Some(a.cmp(&b)));
    }

    #[test]
    fn generalized_time_offsets_agree(secs in 0i64..4_000_000_000, off_min in -1439i64..1440) {
        let s = base();
        let t = at(&s, "createTimestamp");
        let utc = syntax::format_generalized_time(i128::from(secs) * 1_000_000_000);
        // The same instant written in local time with an offset.
        let local = syntax::format_generalized_time(i128::from(secs + off_min * 60) * 1_000_000_000);
        let sign = if off_min < 0 { '-' } else { '+' };
        let with_off = format!("{}{sign}{:02}{:02}", local.trim_end_matches('Z'), off_min.abs() / 60, off_min.abs() % 60);
        prop_assert_eq!(
            s.eq_normalize(&t, utc.as_bytes()).unwrap(),
            s.eq_normalize(&t, with_off.as_bytes()).unwrap()
        );
        prop_assert_eq!(s.compare(&t, utc.as_bytes(), with_off.as_bytes()), Some(std::cmp::Ordering::Equal));
    }

    #[test]
    fn parsers_do_not_panic(v in proptest::collection::vec(any::<u8>(), 0..64)) {
        let s = base();
        for a in s.attributes() {
            let _ = s.check_syntax(&a, &v);
            let _ = s.eq_normalize(&a, &v);
            let _ = s.substr_normalize(&a, &v);
            let _ = s.compare(&a, &v, b"1");
        }
        if let Ok(t) = std::str::from_utf8(&v) {
            let _ = Schema::from_texts(&[("x", t)]);
        }
    }
}

/// posixGroup in both forms nslcd and friends write: RFC 2307's (on its
/// own, structural) and rfc2307bis's (auxiliary to groupOfNames), as
/// 389-ds's rfc2307compat schema accepts both.
#[test]
fn posix_group_alone_and_with_group_of_names() {
    let s = Schema::builtin().unwrap_or_else(|e| panic!("{e}"));
    let alone = entry(
        "cn=staff",
        &[
            ("objectClass", &["top", "posixGroup"]),
            ("cn", &["staff"]),
            ("gidNumber", &["100"]),
            ("memberUid", &["alice"]),
        ],
    );
    assert_eq!(
        s.check_new_entry(&alone).map_err(|e| e.to_string()),
        Ok("posixGroup".to_string())
    );
    let bis = entry(
        "cn=staff",
        &[
            ("objectClass", &["groupOfNames", "posixGroup"]),
            ("cn", &["staff"]),
            ("gidNumber", &["100"]),
            ("member", &["uid=alice,dc=example,dc=com"]),
        ],
    );
    assert_eq!(
        s.check_new_entry(&bis).map_err(|e| e.to_string()),
        Ok("groupOfNames".to_string())
    );
    let unique = entry(
        "cn=staff",
        &[
            ("objectClass", &["groupOfUniqueNames", "posixGroup"]),
            ("cn", &["staff"]),
            ("gidNumber", &["100"]),
        ],
    );
    assert_eq!(
        s.check_new_entry(&unique).map_err(|e| e.to_string()),
        Ok("groupOfUniqueNames".to_string())
    );
}
