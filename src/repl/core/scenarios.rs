//! The rules on small, named scenarios. Each applies a common history and
//! then the concurrent changes in every order, checks that every order
//! ends in the same bytes, and checks the outcome the rule promises.

use super::sim::{norm, Mem, SUFFIX};
use super::*;
use crate::model::{Csn, Rdn};

fn c(t: u32, rid: u16) -> Csn {
    Csn::new(t, 0, rid, 0)
}

fn u(n: u8) -> Uuid {
    [n; 16]
}

fn add(
    csn: Csn,
    uuid: Uuid,
    parent: Uuid,
    rdn: (&str, &str),
    extra: &[(&str, &[&str])],
) -> ReplChange {
    let mut attrs = vec![
        (
            "objectClass".to_string(),
            vec![b"top".to_vec(), b"person".to_vec()],
        ),
        (rdn.0.to_string(), vec![rdn.1.as_bytes().to_vec()]),
    ];
    for (name, values) in extra {
        attrs.push((
            name.to_string(),
            values.iter().map(|v| v.as_bytes().to_vec()).collect(),
        ));
    }
    ReplChange {
        csn,
        uuid,
        op: Op::Add {
            parent: Some(parent),
            rdn: Rdn::single(rdn.0, rdn.1),
            attrs,
        },
    }
}

fn modify(csn: Csn, uuid: Uuid, mods: Vec<ValueOp>) -> ReplChange {
    ReplChange {
        csn,
        uuid,
        op: Op::Modify { mods },
    }
}

/// A modify of entry 1 at `c(t, rid)` with one value operation.
fn one_op(t: u32, rid: u16, op: ValueOp) -> ReplChange {
    modify(c(t, rid), u(1), vec![op])
}

fn delete(csn: Csn, uuid: Uuid) -> ReplChange {
    ReplChange {
        csn,
        uuid,
        op: Op::Delete,
    }
}

fn rename(
    csn: Csn,
    uuid: Uuid,
    old: (&str, &str),
    new: (&str, &str),
    sup: Option<Uuid>,
) -> ReplChange {
    ReplChange {
        csn,
        uuid,
        op: Op::ModDn {
            new_rdn: Rdn::single(new.0, new.1),
            old_rdn: Rdn::single(old.0, old.1),
            delete_old_rdn: true,
            new_superior: sup,
        },
    }
}

fn vals(vs: &[&str]) -> Vec<Vec<u8>> {
    vs.iter().map(|v| v.as_bytes().to_vec()).collect()
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

/// Applies `history`, then `concurrent` in every order (each change also
/// a second time), and returns the common final state.
fn converge(history: &[ReplChange], concurrent: &[ReplChange]) -> Mem {
    let mut base = Mem::new(norm());
    for ch in history {
        base.apply(ch);
    }
    let mut reference: Option<(Mem, Vec<Vec<u8>>)> = None;
    for order in permutations(concurrent.len()) {
        let mut m = base.clone();
        for i in &order {
            m.apply(&concurrent[*i]);
            let again = m.apply(&concurrent[*i]);
            assert_eq!(again.resolution, Resolution::Absorbed(Absorbed::Duplicate));
            assert!(again.writes.is_empty() && again.effects.is_empty());
        }
        let bytes: Vec<Vec<u8>> = m.states.values().map(EntryState::encode).collect();
        let mut scratch = m.states.clone();
        derive_all(&mut scratch, SUFFIX, &m.norm);
        assert_eq!(
            scratch, m.states,
            "order {order:?}: incremental != derive_all"
        );
        match &reference {
            None => reference = Some((m, bytes)),
            Some((_, r)) => assert_eq!(&bytes, r, "order {order:?} diverges"),
        }
    }
    reference.map(|r| r.0).unwrap_or(base)
}

fn status(m: &Mem, uuid: Uuid) -> EntryStatus {
    m.get(&uuid)
        .map(|s| s.derived.status)
        .unwrap_or(EntryStatus::Phantom)
}

#[test]
fn add_add_later_csn_becomes_the_conflict_entry() {
    let first = add(c(10, 1), u(1), SUFFIX, ("cn", "x"), &[]);
    let second = add(c(12, 2), u(2), SUFFIX, ("cn", "X"), &[]);
    let m = converge(&[], &[first.clone(), second.clone()]);
    assert_eq!(m.dn(&u(1)).as_deref(), Some("cn=x,dc=x"));
    assert_eq!(
        m.dn(&u(2)).as_deref(),
        Some("nsuniqueid=02020202-02020202-02020202-02020202+cn=X,dc=x")
    );
    assert_eq!(status(&m, u(2)), EntryStatus::Conflict);
    let parent = crate::model::Dn::parse("dc=x").unwrap_or_default();
    let e = m
        .get(&u(2))
        .and_then(|s| s.to_entry(&parent, &m.norm))
        .expect("in the tree");
    assert_eq!(
        e.values("nsds5ReplConflict"),
        vec![b"namingConflict cn=X,dc=x".as_slice()]
    );
    assert!(e
        .values("objectClass")
        .contains(&b"ldapSubEntry".as_slice()));

    // The later add arrived first: the earlier one's arrival renames it.
    let mut m = Mem::new(norm());
    assert_eq!(m.apply(&second).effects.len(), 1);
    let out = m.apply(&first);
    assert!(
        matches!(&out.effects[0], Effect::Renamed { uuid, to, .. } if *uuid == u(2) && to.rdn.avas.len() == 2)
    );
    assert!(matches!(&out.effects[1], Effect::Added { uuid, .. } if *uuid == u(1)));
}

#[test]
fn delete_wins_over_a_concurrent_modify_before_or_after_it() {
    for modify_at in [15, 25] {
        let history = [add(
            c(10, 1),
            u(1),
            SUFFIX,
            ("cn", "x"),
            &[("description", &["a"])],
        )];
        let m = converge(
            &history,
            &[
                delete(c(20, 1), u(1)),
                modify(
                    c(modify_at, 2),
                    u(1),
                    vec![ValueOp::Add("description".into(), vals(&["b"]))],
                ),
            ],
        );
        assert_eq!(status(&m, u(1)), EntryStatus::Tombstone);
        assert_eq!(m.dn(&u(1)), None);
    }
}

#[test]
fn add_under_a_concurrently_deleted_parent_revives_it_as_glue() {
    let history = [add(c(10, 1), u(1), SUFFIX, ("cn", "p"), &[])];
    let m = converge(
        &history,
        &[
            delete(c(20, 1), u(1)),
            add(c(15, 2), u(2), u(1), ("cn", "child"), &[]),
        ],
    );
    assert_eq!(status(&m, u(1)), EntryStatus::Glue);
    assert_eq!(status(&m, u(2)), EntryStatus::Live);
    assert_eq!(m.dn(&u(2)).as_deref(), Some("cn=child,cn=p,dc=x"));
    let parent = crate::model::Dn::parse("dc=x").unwrap_or_default();
    let glue = m
        .get(&u(1))
        .and_then(|s| s.to_entry(&parent, &m.norm))
        .expect("glue in the tree");
    let classes = glue.values("objectClass");
    assert!(
        classes.contains(&b"glue".as_slice()) && classes.contains(&b"extensibleObject".as_slice())
    );
    assert_eq!(
        glue.values("nsds5ReplConflict"),
        vec![b"deletedEntryHasChildren cn=p,dc=x".as_slice()]
    );
    // The child goes: the glue has nothing to hold and is buried too.
    let mut m = m;
    let out = m.apply(&delete(c(30, 2), u(2)));
    assert_eq!(
        out.effects,
        vec![Effect::Buried { uuid: u(2) }, Effect::Buried { uuid: u(1) }]
    );
    assert_eq!(status(&m, u(1)), EntryStatus::Tombstone);
}

#[test]
fn later_rename_wins_and_renames_to_one_dn_follow_the_add_rule() {
    let history = [
        add(c(10, 1), u(1), SUFFIX, ("cn", "a"), &[]),
        add(c(11, 1), u(2), SUFFIX, ("cn", "b"), &[]),
    ];
    let m = converge(
        &history,
        &[
            rename(c(20, 1), u(1), ("cn", "a"), ("cn", "one"), None),
            rename(c(21, 2), u(1), ("cn", "a"), ("cn", "two"), None),
        ],
    );
    assert_eq!(m.dn(&u(1)).as_deref(), Some("cn=two,dc=x"));
    assert_eq!(
        m.visible(&u(1), "cn"),
        vec!["one", "two"],
        "both renames added their value"
    );

    let m = converge(
        &history,
        &[
            rename(c(20, 1), u(1), ("cn", "a"), ("cn", "c"), None),
            rename(c(25, 2), u(2), ("cn", "b"), ("cn", "C"), None),
        ],
    );
    assert_eq!(m.dn(&u(1)).as_deref(), Some("cn=c,dc=x"));
    assert_eq!(status(&m, u(2)), EntryStatus::Conflict);
}

#[test]
fn rename_against_delete_stays_deleted() {
    let history = [add(c(10, 1), u(1), SUFFIX, ("cn", "a"), &[])];
    let m = converge(
        &history,
        &[
            delete(c(20, 1), u(1)),
            rename(c(25, 2), u(1), ("cn", "a"), ("cn", "z"), None),
        ],
    );
    assert_eq!(status(&m, u(1)), EntryStatus::Tombstone);
}

#[test]
fn conflict_attribute_multi_valued_as_389ds() {
    // test_conflict_attribute_multi_valued: renamed uid=foo1 on M1, uid=foo2
    // later on M2, then `replace uid: foo1` on M1.
    let history = [add(c(10, 1), u(1), SUFFIX, ("uid", "user_test_1000"), &[])];
    let m = converge(
        &history,
        &[
            rename(
                c(20, 1),
                u(1),
                ("uid", "user_test_1000"),
                ("uid", "foo1"),
                None,
            ),
            rename(
                c(21, 2),
                u(1),
                ("uid", "user_test_1000"),
                ("uid", "foo2"),
                None,
            ),
            one_op(22, 1, ValueOp::Replace("uid".into(), vals(&["foo1"]))),
        ],
    );
    assert_eq!(m.dn(&u(1)).as_deref(), Some("uid=foo2,dc=x"));
    assert_eq!(m.visible(&u(1), "uid"), vec!["foo1", "foo2"]);
}

#[test]
fn conflict_attribute_single_valued_as_389ds() {
    // test_conflict_attribute_single_valued: the same with employeeNumber.
    let history = [add(
        c(10, 1),
        u(1),
        SUFFIX,
        ("uid", "user_test_1000"),
        &[("uid", &["dummy"])],
    )];
    let m = converge(
        &history,
        &[
            rename(
                c(20, 1),
                u(1),
                ("uid", "user_test_1000"),
                ("employeeNumber", "foo1"),
                None,
            ),
            rename(
                c(21, 2),
                u(1),
                ("uid", "user_test_1000"),
                ("employeeNumber", "foo2"),
                None,
            ),
            one_op(
                22,
                1,
                ValueOp::Replace("employeeNumber".into(), vals(&["foo1"])),
            ),
        ],
    );
    assert_eq!(m.dn(&u(1)).as_deref(), Some("employeeNumber=foo2,dc=x"));
    assert_eq!(m.visible(&u(1), "employeeNumber"), vec!["foo1"]);
    assert_eq!(m.visible(&u(1), "uid"), vec!["dummy"]);
}

#[test]
fn single_valued_keeps_the_latest_value_whatever_the_shape() {
    let history = [add(
        c(10, 1),
        u(1),
        SUFFIX,
        ("cn", "a"),
        &[("employeeNumber", &["old"])],
    )];
    let replace = one_op(
        20,
        1,
        ValueOp::Replace("employeeNumber".into(), vals(&["r"])),
    );
    let add_delete = modify(
        c(21, 2),
        u(1),
        vec![
            ValueOp::Add("employeeNumber".into(), vals(&["ad"])),
            ValueOp::Delete("employeeNumber".into(), vals(&["old"])),
        ],
    );
    let delete_add = modify(
        c(22, 3),
        u(1),
        vec![
            ValueOp::Delete("employeeNumber".into(), vals(&["old"])),
            ValueOp::Add("employeeNumber".into(), vals(&["da"])),
        ],
    );
    let m = converge(&history, &[replace.clone(), add_delete.clone(), delete_add]);
    assert_eq!(m.visible(&u(1), "employeeNumber"), vec!["da"]);
    let m = converge(&history, &[replace, add_delete]);
    assert_eq!(m.visible(&u(1), "employeeNumber"), vec!["ad"]);
}

#[test]
fn values_are_one_value_by_matching_rule_and_lww_per_value() {
    let history = [add(
        c(10, 1),
        u(1),
        SUFFIX,
        ("cn", "a"),
        &[("description", &["Foo"])],
    )];
    let m = converge(
        &history,
        &[
            one_op(20, 1, ValueOp::Delete("description".into(), vals(&["foo"]))),
            one_op(15, 2, ValueOp::Add("DESCRIPTION".into(), vals(&["bar"]))),
        ],
    );
    assert_eq!(m.visible(&u(1), "description"), vec!["bar"]);
    // A late, older add does not resurrect what a newer replace removed.
    let m = converge(
        &history,
        &[
            one_op(
                20,
                1,
                ValueOp::Replace("description".into(), vals(&["new"])),
            ),
            one_op(15, 2, ValueOp::Add("description".into(), vals(&["late"]))),
        ],
    );
    assert_eq!(m.visible(&u(1), "description"), vec!["new"]);
}

#[test]
fn move_cycle_puts_the_latest_mover_under_the_suffix() {
    let history = [
        add(c(10, 1), u(1), SUFFIX, ("cn", "a"), &[]),
        add(c(11, 1), u(2), SUFFIX, ("cn", "b"), &[]),
    ];
    let m = converge(
        &history,
        &[
            rename(c(20, 1), u(1), ("cn", "a"), ("cn", "a"), Some(u(2))),
            rename(c(21, 2), u(2), ("cn", "b"), ("cn", "b"), Some(u(1))),
        ],
    );
    assert_eq!(
        m.dn(&u(2)).as_deref(),
        Some("nsuniqueid=02020202-02020202-02020202-02020202+cn=b,dc=x")
    );
    assert_eq!(
        m.dn(&u(1)).as_deref(),
        Some("cn=a,nsuniqueid=02020202-02020202-02020202-02020202+cn=b,dc=x")
    );
}

#[test]
fn a_live_entry_keeps_its_name_against_glue() {
    // P deleted on r1; r2 adds a child under P concurrently; r1 then adds a
    // new cn=p: the new live entry keeps the DN, the glue is conflict-named.
    let history = [add(c(10, 1), u(1), SUFFIX, ("cn", "p"), &[])];
    let m = converge(
        &history,
        &[
            delete(c(20, 1), u(1)),
            add(c(22, 1), u(3), SUFFIX, ("cn", "p"), &[]),
            add(c(15, 2), u(2), u(1), ("cn", "child"), &[]),
        ],
    );
    assert_eq!(m.dn(&u(3)).as_deref(), Some("cn=p,dc=x"));
    assert_eq!(status(&m, u(1)), EntryStatus::Glue);
    assert!(m
        .dn(&u(2))
        .is_some_and(|d| d.starts_with("cn=child,nsuniqueid=")));
}

#[test]
fn a_value_replaced_at_every_modify_leaves_no_record_behind() {
    let history = [add(
        c(10, 1),
        u(1),
        SUFFIX,
        ("cn", "a"),
        &[("description", &["v0"])],
    )];
    let replace = |t: u32, rid: u16, v: &str| {
        modify(
            c(t, rid),
            u(1),
            vec![ValueOp::Replace("description".into(), vals(&[v]))],
        )
    };
    let m = converge(
        &history,
        &[
            replace(20, 1, "v1"),
            replace(30, 2, "v2"),
            replace(40, 1, "v3"),
            // An add older than the last replace, of a value replaced
            // earlier: absent, and nothing to keep.
            one_op(35, 3, ValueOp::Add("description".into(), vals(&["V1"]))),
            // A value delete newer than the last replace: kept, so that an
            // add older than it stays absent.
            one_op(45, 2, ValueOp::Delete("description".into(), vals(&["v9"]))),
        ],
    );
    assert_eq!(m.visible(&u(1), "description"), vec!["v3"]);
    let state = m.get(&u(1)).expect("entry state");
    let records: Vec<&[u8]> = state.attrs["description"]
        .values
        .keys()
        .map(|k| k.as_slice())
        .collect();
    assert_eq!(records, vec![&b"v3"[..], &b"v9"[..]]);
    // A thousand replaces cost what one does.
    let mut long = Mem::new(norm());
    long.apply(&history[0]);
    for t in 0..1000 {
        long.apply(&replace(100 + t, 1, &format!("value {t}")));
    }
    let state = long.get(&u(1)).expect("entry state");
    assert_eq!(state.attrs["description"].values.len(), 1);
    assert!(state.encode().len() < 200, "{} bytes", state.encode().len());
}

#[test]
fn a_replaced_value_of_the_rdn_keeps_the_rdn_spelling_in_every_order() {
    let history = [add(c(10, 1), u(1), SUFFIX, ("cn", "Alice"), &[])];
    let m = converge(
        &history,
        &[
            // Replaces cn while the entry is still named by "Alice".
            one_op(20, 1, ValueOp::Replace("cn".into(), vals(&["Bob"]))),
            // An older add of another spelling of the RDN's value.
            one_op(15, 2, ValueOp::Add("cn".into(), vals(&["ALICE"]))),
            one_op(25, 3, ValueOp::Add("cn".into(), vals(&["Carol"]))),
        ],
    );
    assert_eq!(m.visible(&u(1), "cn"), vec!["Alice", "Bob", "Carol"]);
    assert_eq!(m.dn(&u(1)).as_deref(), Some("cn=Alice,dc=x"));
    // Renamed away from "Alice" later: the replaced value goes.
    let m = converge(
        &history,
        &[
            one_op(20, 1, ValueOp::Replace("cn".into(), vals(&["Bob"]))),
            rename(c(30, 2), u(1), ("cn", "Alice"), ("cn", "Bob"), None),
            one_op(15, 3, ValueOp::Add("cn".into(), vals(&["ALICE"]))),
        ],
    );
    assert_eq!(m.visible(&u(1), "cn"), vec!["Bob"]);
    assert_eq!(m.get(&u(1)).expect("state").attrs["cn"].values.len(), 2);
}
