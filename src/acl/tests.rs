//! Parser tests. Evaluation through a real directory is tested in
//! directory/access_tests.rs, where the layers it wires together are below.

use super::*;
use crate::schema::Schema;

const SUFFIX: &str = "dc=example,dc=com";

fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap()
}

fn schema() -> Schema {
    Schema::builtin().unwrap()
}

/// A DN-key function equivalent to the directory's, for parser tests.
fn key_fn(schema: &Schema) -> impl Fn(&Dn) -> Vec<u8> + '_ {
    move |d: &Dn| {
        let mut key = Vec::new();
        for rdn in d.rdns.iter().rev() {
            let one = Dn {
                rdns: vec![rdn.clone()],
            };
            key.extend_from_slice(schema.normalize_dn(&one).as_bytes());
            key.push(0);
        }
        key
    }
}

fn parse(text: &str) -> Result<Aci, AciError> {
    let s = schema();
    let k = key_fn(&s);
    let res = Resolver {
        schema: &s,
        dn_key: &k,
        computed: None,
    };
    parse_aci(text, &res)
}

fn parse_err(text: &str) -> String {
    match parse(text) {
        Ok(aci) => panic!("accepted {text:?}: {aci:?}"),
        Err(e) => e.to_string(),
    }
}

// ---- parser ---------------------------------------------------------------

#[test]
fn parses_the_documented_examples() {
    let a = parse(r#"(targetattr="cn || mail || telephoneNumber")(targetfilter="(objectClass=person)")(version 3.0; acl "people read"; allow (read,search,compare) userdn="ldap:///anyone";)"#).unwrap();
    assert_eq!(a.name, "people read");
    let ta = a.targetattr.as_deref().unwrap();
    assert_eq!(ta.names, vec!["cn", "mail", "telephonenumber"]);
    assert!(!ta.negate && !ta.all);
    assert!(a.targetfilter.is_some());
    assert_eq!(a.permissions.len(), 1);
    let p = &a.permissions[0];
    assert!(p.allow);
    assert_eq!(p.rights, Rights::READ | Rights::SEARCH | Rights::COMPARE);
    assert_eq!(
        p.subject,
        BindRule::User {
            negate: false,
            refs: vec![UserRef::Anyone]
        }
    );

    let a = parse(r#"(targetattr="userPassword")(version 3.0; acl "self pw"; allow (write) userdn="ldap:///self";)"#).unwrap();
    assert_eq!(a.permissions[0].rights, Rights::WRITE);

    let a = parse(r#"(target="ldap:///ou=people,dc=example,dc=com")(targetattr="*")(version 3.0; acl "admins"; allow (all) groupdn="ldap:///cn=admins,ou=groups,dc=example,dc=com";)"#).unwrap();
    assert!(a.target.is_some());
    assert!(a.targetattr.as_deref().unwrap().all);
    assert_eq!(a.permissions[0].rights, Rights::ALL);
    assert!(matches!(a.permissions[0].subject, BindRule::Group { .. }));
}

#[test]
fn parses_lists_negations_and_combinations() {
    // Aliases resolve to primary names; several permissions; and/or/not; spacing.
    let a = parse(
        r#" ( targetattr != "surname||userPassword" ) ( version 3.0 ; acl "x" ;
            allow ( read , search ) userdn = "ldap:///uid=a,dc=example,dc=com || ldap:///all" and not groupdn != "ldap:///cn=g,dc=example,dc=com" ;
            deny (write) userdn="ldap:///anyone" or (userdn="ldap:///replication");
            allow (proxy) userdn="ldap:///self"; ) "#,
    )
    .unwrap();
    let ta = a.targetattr.as_deref().unwrap();
    assert!(ta.negate);
    assert_eq!(ta.names, vec!["sn", "userpassword"]);
    assert!(ta.covers("mail") && !ta.covers("SN") && !ta.covers("userPassword"));
    assert_eq!(a.permissions.len(), 3);
    assert!(matches!(a.permissions[0].subject, BindRule::And(_, _)));
    assert!(!a.permissions[1].allow);
    assert!(matches!(a.permissions[1].subject, BindRule::Or(_, _)));
    let BindRule::And(left, right) = &a.permissions[0].subject else {
        unreachable!()
    };
    assert!(
        matches!(&**left, BindRule::User { refs, .. } if refs.len() == 2 && refs[1] == UserRef::All)
    );
    assert!(
        matches!(&**right, BindRule::Not(inner) if matches!(&**inner, BindRule::Group { negate: true, .. }))
    );
    // Keywords are case-insensitive.
    parse(r#"(TargetAttr="cn")(Version 3.0; ACL "y"; Allow (Read) UserDN="LDAP:///Anyone";)"#)
        .unwrap();
}

#[test]
fn the_default_acis_parse() {
    for text in default_acis(&dn(SUFFIX)) {
        let a = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            a.target.as_ref().map(|t| t.dn.to_string()),
            Some(SUFFIX.into())
        );
    }
    let closed = default_acis_with(
        &dn(SUFFIX),
        &DefaultAclOptions {
            anonymous_read: false,
            ..DefaultAclOptions::default()
        },
    );
    assert!(closed[0].contains("ldap:///all"), "{}", closed[0]);
    parse(&closed[0]).unwrap();
}

#[test]
fn rejects_invalid_acis_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("", "expected '('"),
        (r#"(targetattr="cn")"#, "expected '('"),
        (
            r#"(targetattr="cn")(version 2.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "unsupported ACI version '2.0'",
        ),
        (
            r#"(targetattr="cn")(version 3.0; allow (read) userdn="ldap:///anyone";)"#,
            "expected 'acl \"<name>\"'",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; allow (raed) userdn="ldap:///anyone";)"#,
            "unknown right 'raed'",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; permit (read) userdn="ldap:///anyone";)"#,
            "expected 'allow' or 'deny', found 'permit'",
        ),
        (
            r#"(targetattr="nosuchattr")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "unknown attribute type 'nosuchattr'",
        ),
        (
            r#"(targetattr="cn || *")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "'*' cannot be combined",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; allow (read) userdn="anyone";)"#,
            "must be an LDAP URL",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; allow (read) userdn="ldap:///uid=*,dc=example,dc=com";)"#,
            "wildcards",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; allow (read) ip="10.0.0.1";)"#,
            "bind rule keyword 'ip' is not supported",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; allow (read) usrdn="ldap:///anyone";)"#,
            "unknown bind rule keyword 'usrdn'",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone")"#,
            "expected ';' after the bind rule",
        ),
        (
            r#"(targetfilter="(objectClass=person")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "invalid targetfilter",
        ),
        (
            r#"(target="ldap:///not a dn")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "target: invalid DN",
        ),
        (
            r#"(targetattr="cn")(targetattr="sn")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "'targetattr' appears twice",
        ),
        (
            r#"(targattrfilters="add=cn:(cn=*)")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "target keyword 'targattrfilters' is not supported",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a";)"#,
            "grants or denies nothing",
        ),
        (
            r#"(targetattr="cn")(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";) trailing"#,
            "unexpected text after the end",
        ),
        (
            r#"(targetattr="cn)(version 3.0; acl "a"; allow (read) userdn="ldap:///anyone";)"#,
            "unknown attribute type 'cn)(version 3.0; acl'",
        ),
    ];
    // The offset points at the offending word.
    let msg = parse_err(
        r#"(targetattr="cn")(version 3.0; acl "typo"; allow (raed) userdn="ldap:///anyone";)"#,
    );
    assert!(msg.ends_with("(at offset 50)"), "{msg}");
    for (text, want) in cases {
        let msg = parse_err(text);
        assert!(msg.contains(want), "{text:?}: got {msg:?}, want {want:?}");
        assert!(msg.contains("at offset"), "{msg}");
    }
}

#[test]
fn secret_attributes() {
    for a in [
        "userPassword",
        "SAMBANTPASSWORD",
        "sambaLMPassword",
        "sambaPasswordHistory",
        "sambaClearTextPassword",
        "shadowLastChange",
        "shadowExpire",
    ] {
        assert!(is_secret(a), "{a}");
    }
    for a in ["cn", "uid", "sambaSID", "aci"] {
        assert!(!is_secret(a), "{a}");
    }
}
