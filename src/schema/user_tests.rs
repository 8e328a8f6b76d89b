//! Unit tests for definitions added over LDAP (user.rs).

use super::*;
use crate::model::Csn;

const AT: &str = "( 2.25.77.1.1 NAME 'exampleBadge' DESC 'badge number' \
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch \
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )";
const AT2: &str = "( 2.25.77.1.2 NAME 'exampleFloor' EQUALITY integerMatch \
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )";
const OC: &str = "( 2.25.77.2.1 NAME 'exampleStaff' SUP top AUXILIARY MAY exampleBadge )";

const AT_KIND: DefinitionKind = DefinitionKind::AttributeType;
const OC_KIND: DefinitionKind = DefinitionKind::ObjectClass;

fn csn(n: u32) -> Csn {
    Csn::new(1_700_000_000 + n, 0, 1, 0)
}

fn builtin() -> Schema {
    Schema::builtin().unwrap_or_else(|e| panic!("{e}"))
}

/// `base` with `values` added in one edit.
fn added(
    base: &Schema,
    values: &[(DefinitionKind, &str)],
) -> Result<SchemaChange, SchemaChangeError> {
    let mut edit = base.edit();
    for (kind, v) in values {
        edit.add(*kind, v.as_bytes(), csn(1))?;
    }
    edit.finish()
}

fn with_example() -> Schema {
    added(&builtin(), &[(AT_KIND, AT), (OC_KIND, OC)])
        .unwrap_or_else(|e| panic!("{e}"))
        .schema
}

fn edit_err(
    base: &Schema,
    f: impl FnOnce(&mut SchemaEdit<'_>) -> Result<(), SchemaChangeError>,
) -> SchemaChangeError {
    let mut edit = base.edit();
    match f(&mut edit).and_then(|()| edit.finish().map(|_| ())) {
        Ok(()) => panic!("the edit was accepted"),
        Err(e) => e,
    }
}

fn assert_conflict(e: SchemaChangeError, needle: &str) {
    match e {
        SchemaChangeError::Conflict(m) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected a conflict naming {needle:?}, got {other:?}"),
    }
}

#[test]
fn added_definitions_resolve_and_are_marked_user_defined() {
    let change =
        added(&builtin(), &[(AT_KIND, AT), (OC_KIND, OC)]).unwrap_or_else(|e| panic!("{e}"));
    let s = &change.schema;
    let at = s
        .attribute("examplebadge")
        .unwrap_or_else(|| panic!("type missing"));
    assert_eq!(at.equality.as_deref(), Some("caseIgnoreMatch"));
    assert!(at.single_value);
    assert!(
        at.definition.contains("X-ORIGIN 'user defined'"),
        "{}",
        at.definition
    );
    let oc = s
        .object_class("exampleStaff")
        .unwrap_or_else(|| panic!("class missing"));
    assert_eq!(oc.may, vec!["exampleBadge".to_string()]);
    assert!(s.is_user_defined("2.25.77.2.1"));
    assert!(!s.is_user_defined("2.5.4.3"));
    assert_eq!(change.stored.len(), 2);
    assert!(change.removed.is_empty() && change.retired.is_empty());
    // Listed in cn=schema with the origin, shipped definitions unchanged.
    let listed = s.subschema_attributes();
    let types = &listed
        .iter()
        .find(|(n, _)| n == "attributeTypes")
        .unwrap_or_else(|| panic!("no list"))
        .1;
    assert!(types
        .iter()
        .any(|v| v.starts_with(b"( 2.25.77.1.1 ") && v.ends_with(b"X-ORIGIN 'user defined' )")));
    assert!(!types
        .iter()
        .any(|v| v.starts_with(b"( 2.5.4.3 ") && v.windows(8).any(|w| w == b"X-ORIGIN")));
}

#[test]
fn a_class_may_come_before_its_types_in_one_edit() {
    let change =
        added(&builtin(), &[(OC_KIND, OC), (AT_KIND, AT)]).unwrap_or_else(|e| panic!("{e}"));
    assert!(change.schema.object_class("exampleStaff").is_some());
}

#[test]
fn an_origin_given_by_the_client_is_kept() {
    let text =
        "( 2.25.77.1.9 NAME 'exampleX' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 X-ORIGIN 'my app' )";
    let s = added(&builtin(), &[(AT_KIND, text)])
        .unwrap_or_else(|e| panic!("{e}"))
        .schema;
    let at = s.attribute("exampleX").unwrap_or_else(|| panic!("missing"));
    assert!(at.definition.contains("X-ORIGIN 'my app'"));
    assert!(!at.definition.contains("user defined"));
}

#[test]
fn unparsable_values_are_invalid_syntax() {
    for bad in [
        "( 2.25.77.1.1 NAME 'x' SYNTAX",
        "2.25.77.1.1 NAME 'x'",
        "( exampleName NAME 'x' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "( 2.25.77.1.1 NAME 'x' )",
        "( 2.25.77.1.1 NAME 'x' BOGUS SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
    ] {
        match edit_err(&builtin(), |e| e.add(AT_KIND, bad.as_bytes(), csn(1))) {
            SchemaChangeError::Invalid(m) => assert!(m.starts_with("attributeTypes: "), "{m}"),
            other => panic!("{bad}: expected Invalid, got {other:?}"),
        }
    }
    match edit_err(&builtin(), |e| e.add(OC_KIND, b"\xff\xfe", csn(1))) {
        SchemaChangeError::Invalid(m) => assert!(m.contains("UTF-8")),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unknown_references_are_conflicts_naming_them() {
    let cases: [(DefinitionKind, &str, &str); 5] = [
        (
            AT_KIND,
            "( 2.25.77.1.5 NAME 'exA' SUP noSuchType )",
            "noSuchType",
        ),
        (
            AT_KIND,
            "( 2.25.77.1.5 NAME 'exA' SYNTAX 1.2.3.4.5.6 )",
            "SYNTAX 1.2.3.4.5.6",
        ),
        (
            AT_KIND,
            "( 2.25.77.1.5 NAME 'exA' EQUALITY noSuchMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
            "noSuchMatch",
        ),
        (
            OC_KIND,
            "( 2.25.77.2.5 NAME 'exC' SUP noSuchClass AUXILIARY )",
            "noSuchClass",
        ),
        (
            OC_KIND,
            "( 2.25.77.2.5 NAME 'exC' SUP top AUXILIARY MUST noSuchAttr )",
            "noSuchAttr",
        ),
    ];
    for (kind, text, needle) in cases {
        assert_conflict(
            edit_err(&builtin(), |e| e.add(kind, text.as_bytes(), csn(1))),
            needle,
        );
    }
}

#[test]
fn oids_and_names_must_be_free() {
    // OID of a shipped object class, given to an attribute type.
    let e = edit_err(&builtin(), |e| {
        e.add(
            AT_KIND,
            b"( 2.5.6.6 NAME 'exP' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
            csn(1),
        )
    });
    assert_conflict(e, "object class 'person'");
    // OID of a matching rule.
    let e = edit_err(&builtin(), |e| {
        e.add(
            AT_KIND,
            b"( 2.5.13.2 NAME 'exP' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
            csn(1),
        )
    });
    assert_conflict(e, "matching rule 'caseIgnoreMatch'");
    // A shipped name under a new OID.
    let e = edit_err(&builtin(), |e| {
        e.add(
            AT_KIND,
            b"( 2.25.77.1.7 NAME 'CN' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
            csn(1),
        )
    });
    assert_conflict(
        e,
        "name 'CN' is already used by attribute type 'cn' (2.5.4.3)",
    );
    // A user name under another OID.
    let s = with_example();
    let e = edit_err(&s, |e| {
        e.add(
            AT_KIND,
            b"( 2.25.77.1.8 NAME 'exampleBadge' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
            csn(2),
        )
    });
    assert_conflict(e, "'exampleBadge' (2.25.77.1.1)");
    // The same OID as a user definition, defined differently.
    let e = edit_err(&s, |e| {
        e.add(
            AT_KIND,
            AT2.replace("2.25.77.1.2", "2.25.77.1.1").as_bytes(),
            csn(2),
        )
    });
    assert_conflict(
        e,
        "OID 2.25.77.1.1 is already used by a different definition",
    );
}

#[test]
fn identical_definitions_exist_already() {
    let s = with_example();
    let spaced = AT
        .replace("( ", "(\n  ")
        .replace(" EQUALITY", "   equality");
    match edit_err(&s, |e| e.add(AT_KIND, spaced.as_bytes(), csn(2))) {
        SchemaChangeError::Exists(m) => assert!(m.contains("exampleBadge"), "{m}"),
        other => panic!("expected Exists, got {other:?}"),
    }
    let listed = s
        .attribute("exampleBadge")
        .map(|a| a.definition.clone())
        .unwrap_or_default();
    assert!(matches!(
        edit_err(&s, |e| e.add(AT_KIND, listed.as_bytes(), csn(2))),
        SchemaChangeError::Exists(_)
    ));
    let shipped = s
        .attribute("cn")
        .map(|a| a.definition.clone())
        .unwrap_or_default();
    match edit_err(&s, |e| e.add(AT_KIND, shipped.as_bytes(), csn(2))) {
        SchemaChangeError::Exists(m) => assert!(m.contains("shipped"), "{m}"),
        other => panic!("expected Exists, got {other:?}"),
    }
}

#[test]
fn shipped_definitions_are_neither_replaced_nor_deleted() {
    let s = builtin();
    let e = edit_err(&s, |e| {
        e.add(
            AT_KIND,
            b"( 2.5.4.3 NAME 'cn' SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )",
            csn(1),
        )
    });
    assert!(
        matches!(&e, SchemaChangeError::Refused(m) if m.contains("'cn' (2.5.4.3)") && m.contains("cannot be replaced")),
        "{e:?}"
    );
    let e = edit_err(&s, |e| e.delete(OC_KIND, b"( 2.5.6.6 )"));
    assert!(
        matches!(&e, SchemaChangeError::Refused(m) if m.contains("'person'") && m.contains("cannot be deleted")),
        "{e:?}"
    );
}

#[test]
fn deleting_by_oid() {
    let s = with_example();
    let mut edit = s.edit();
    edit.delete(OC_KIND, b"( 2.25.77.2.1 NAME 'whatever' )")
        .unwrap_or_else(|e| panic!("{e}"));
    let change = edit.finish().unwrap_or_else(|e| panic!("{e}"));
    assert!(change.schema.object_class("exampleStaff").is_none());
    assert_eq!(change.removed, vec![(OC_KIND, "2.25.77.2.1".to_string())]);
    assert_eq!(
        change.retired,
        vec![Retired {
            kind: OC_KIND,
            oid: "2.25.77.2.1".into(),
            name: "exampleStaff".into(),
            changed: None
        }]
    );
    assert!(change.stored.is_empty());
    assert!(matches!(
        edit_err(&s, |e| e.delete(AT_KIND, b"( 2.25.77.1.99 )")),
        SchemaChangeError::Missing(m) if m.contains("2.25.77.1.99")
    ));
    assert!(matches!(
        edit_err(&s, |e| e.delete(AT_KIND, b"exampleBadge")),
        SchemaChangeError::Invalid(_)
    ));
}

#[test]
fn definitions_in_use_by_other_definitions_stay() {
    let s = with_example();
    assert_conflict(
        edit_err(&s, |e| e.delete(AT_KIND, AT.as_bytes())),
        "cannot delete attribute type 'exampleBadge' (2.25.77.1.1): object class 'exampleStaff' (2.25.77.2.1) allows it (MAY)",
    );
    let sub = "( 2.25.77.1.3 NAME 'exampleBadgeOld' SUP exampleBadge )";
    let s2 = added(&s, &[(AT_KIND, sub)])
        .unwrap_or_else(|e| panic!("{e}"))
        .schema;
    let mut edit = s2.edit();
    edit.delete(OC_KIND, OC.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    edit.delete(AT_KIND, AT.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_conflict(
        edit.finish()
            .map(|_| ())
            .err()
            .unwrap_or_else(|| panic!("accepted")),
        "is derived from it (SUP)",
    );
    // Both at once is fine.
    let mut edit = s.edit();
    edit.delete(OC_KIND, OC.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    edit.delete(AT_KIND, AT.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let change = edit.finish().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(change.retired.len(), 2);
    assert!(change.schema.user_definitions().is_empty());
}

#[test]
fn changing_a_definition_in_one_modify() {
    let s = added(&with_example(), &[(AT_KIND, AT2)])
        .unwrap_or_else(|e| panic!("{e}"))
        .schema;
    // Allowing one more attribute is safe for existing entries.
    let wider =
        "( 2.25.77.2.1 NAME 'exampleStaff' SUP top AUXILIARY MAY ( exampleBadge $ exampleFloor ) )";
    let mut edit = s.edit();
    edit.delete(OC_KIND, OC.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    edit.add(OC_KIND, wider.as_bytes(), csn(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let change = edit.finish().unwrap_or_else(|e| panic!("{e}"));
    assert!(change.retired.is_empty(), "{:?}", change.retired);
    assert!(change.removed.is_empty());
    assert_eq!(change.stored.len(), 1);
    assert_eq!(change.stored.first().map(|d| d.csn), Some(csn(5)));
    // Requiring one is not: entries must not use the class.
    let stricter =
        "( 2.25.77.2.1 NAME 'exampleStaff' SUP top AUXILIARY MUST exampleFloor MAY exampleBadge )";
    let mut edit = s.edit();
    edit.delete(OC_KIND, OC.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    edit.add(OC_KIND, stricter.as_bytes(), csn(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let change = edit.finish().unwrap_or_else(|e| panic!("{e}"));
    let why = change
        .retired
        .first()
        .and_then(|r| r.changed.clone())
        .unwrap_or_default();
    assert!(why.contains("requires 'exampleFloor'"), "{why}");
    // A type that stops being single-valued stays compatible; the reverse does not.
    let multi = AT.replace(" SINGLE-VALUE", "");
    let mut edit = s.edit();
    edit.delete(AT_KIND, AT.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    edit.add(AT_KIND, multi.as_bytes(), csn(5))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(edit
        .finish()
        .unwrap_or_else(|e| panic!("{e}"))
        .retired
        .is_empty());
    let renamed = AT.replace("'exampleBadge'", "'exampleBadge2'");
    let mut edit = s.edit();
    edit.delete(OC_KIND, OC.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    edit.delete(AT_KIND, AT.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    edit.add(AT_KIND, renamed.as_bytes(), csn(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let change = edit.finish().unwrap_or_else(|e| panic!("{e}"));
    assert!(change.retired.iter().any(|r| r.oid == "2.25.77.1.1"
        && r.changed
            .as_deref()
            .is_some_and(|w| w.contains("primary name"))));
}

#[test]
fn stored_definitions_that_no_longer_fit_are_left_out() {
    let good = UserDefinition {
        kind: AT_KIND,
        oid: "2.25.77.1.1".into(),
        text: AT.into(),
        csn: csn(1),
    };
    let clash = UserDefinition {
        kind: AT_KIND,
        oid: "2.25.77.1.4".into(),
        text: "( 2.25.77.1.4 NAME 'cn' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )".into(),
        csn: csn(1),
    };
    // The class comes first but depends on the type after it.
    let class = UserDefinition {
        kind: OC_KIND,
        oid: "2.25.77.2.1".into(),
        text: OC.into(),
        csn: csn(1),
    };
    let (s, skipped) = builtin().with_stored_definitions(vec![class, clash.clone(), good]);
    assert!(s.object_class("exampleStaff").is_some());
    assert!(s.attribute("exampleBadge").is_some());
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped.first().map(|(d, _)| d), Some(&clash));
    assert_eq!(s.user_definitions().len(), 2);
}

#[test]
fn origin_and_first_component_helpers() {
    assert_eq!(
        parser::first_oid(" ( 1.2.3 NAME 'x' )"),
        Ok("1.2.3".to_string())
    );
    assert!(parser::first_oid("( x )").is_err());
    assert_eq!(
        parser::with_origin("( 1.2.3 NAME 'x' )", "user defined"),
        "( 1.2.3 NAME 'x' X-ORIGIN 'user defined' )"
    );
    assert_eq!(
        parser::with_origin("( 1.2.3 x-origin 'a' )", "user defined"),
        "( 1.2.3 x-origin 'a' )"
    );
}

fn def(kind: DefinitionKind, text: &str, n: u32) -> UserDefinition {
    UserDefinition {
        kind,
        oid: parser::first_oid(text).unwrap_or_else(|e| panic!("{e}")),
        text: text.to_string(),
        csn: csn(n),
    }
}

#[test]
fn merge_adds_what_is_missing_in_csn_order_and_keeps_the_peers_csn() {
    let here = builtin();
    // The class first in the list but younger: it needs the attribute type.
    let peer = [def(OC_KIND, OC, 5), def(AT_KIND, AT, 4)];
    let merge = here.merge_replicated(&peer);
    assert!(merge.conflicts.is_empty(), "{:?}", merge.conflicts);
    let schema = merge.schema.unwrap_or_else(|| panic!("nothing applied"));
    assert!(schema.object_class("exampleStaff").is_some());
    assert_eq!(merge.stored.len(), 2);
    assert!(merge
        .stored
        .iter()
        .all(|d| d.csn == csn(4) || d.csn == csn(5)));
    // Merging the same again changes nothing.
    let again = schema.merge_replicated(&peer);
    assert!(again.schema.is_none() && again.stored.is_empty() && again.conflicts.is_empty());
}

#[test]
fn merge_takes_a_newer_compatible_version_and_refuses_an_incompatible_one() {
    let here = with_example();
    let wider =
        "( 2.25.77.2.1 NAME 'exampleStaff' SUP top AUXILIARY MAY ( exampleBadge $ description ) )";
    let merge = here.merge_replicated(&[def(OC_KIND, wider, 9)]);
    assert!(merge.conflicts.is_empty(), "{:?}", merge.conflicts);
    assert_eq!(merge.stored.len(), 1);
    // The peer holds the older version of what is now held here: nothing
    // to do, the peer takes ours in turn.
    let newer = merge.schema.unwrap_or_else(|| panic!("nothing applied"));
    let older = newer.merge_replicated(&[def(OC_KIND, OC, 1)]);
    assert!(older.schema.is_none() && older.conflicts.is_empty());
    // Same OID, another syntax: a conflict, whatever the CSNs say.
    let other = "( 2.25.77.1.1 NAME 'exampleBadge' EQUALITY integerMatch \
        SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )";
    for n in [0, 9] {
        let merge = here.merge_replicated(&[def(AT_KIND, other, n)]);
        assert!(merge.schema.is_none(), "CSN {n}");
        assert_eq!(merge.conflicts.len(), 1, "CSN {n}");
        assert_eq!(merge.conflicts[0].oid, "2.25.77.1.1");
        assert!(
            merge.conflicts[0].to_string().contains("SYNTAX")
                || merge.conflicts[0].to_string().contains("EQUALITY"),
            "{}",
            merge.conflicts[0]
        );
    }
    // Another OID with a name held here: a conflict too.
    let clash = "( 2.25.77.1.9 NAME 'exampleBadge' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )";
    let merge = here.merge_replicated(&[def(AT_KIND, clash, 9)]);
    assert_eq!(merge.conflicts.len(), 1);
    assert!(
        merge.conflicts[0].reason.contains("exampleBadge"),
        "{}",
        merge.conflicts[0]
    );
}

#[test]
fn replicated_values_round_trip_and_bad_ones_are_named() {
    let d = def(OC_KIND, OC, 3);
    let v = d.replicated_value();
    assert!(v.starts_with("objectClasses "), "{v}");
    assert_eq!(UserDefinition::from_replicated_value(v.as_bytes()), Ok(d));
    for bad in [
        "objectClasses",
        "widgets 1 ( 1.2 )",
        "objectClasses nocsn ( 1.2 )",
    ] {
        let e = UserDefinition::from_replicated_value(bad.as_bytes()).unwrap_err();
        assert!(e.contains(REPLICATED_DEFINITION_ATTR), "{e}");
    }
}
