//! Fractional replication, as 389-ds's nsDS5ReplicatedAttributeList: an
//! agreement may keep some attributes from its consumer (settings that stay
//! local to a server). The supplier strips them from every entry and change
//! it sends; a change that touched nothing else still goes, emptied, so the
//! consumer's RUV covers its CSN and it is not offered again forever (389-ds
//! reaches the same end with keep-alive updates).

use crate::model::{Change, ChangeRecord, Entry};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FractionalError(pub String);

/// Attributes replication itself needs on every replica.
pub const NEVER_EXCLUDED: [&str; 3] = ["objectClass", "entryUUID", "entryCSN"];

/// What every modify carries besides the client's changes: when nothing
/// else is left after stripping, the change is sent empty.
pub const BOOKKEEPING: [&str; 3] = ["modifiersName", "modifyTimestamp", "entryCSN"];

/// The attribute names of one nsDS5ReplicatedAttributeList value,
/// `(objectclass=*) $ EXCLUDE a b c`, as written. 389-ds accepts only the
/// `(objectclass=*)` filter and the EXCLUDE form; so does this.
pub fn parse_exclude_list(value: &str) -> Result<Vec<String>, FractionalError> {
    let err = |why: &str| FractionalError(format!("'{value}': {why}"));
    let (filter, rest) = value
        .split_once('$')
        .ok_or_else(|| err("expected '(objectclass=*) $ EXCLUDE <attributes>'"))?;
    let filter: String = filter.chars().filter(|c| !c.is_whitespace()).collect();
    if !filter.eq_ignore_ascii_case("(objectclass=*)") {
        return Err(err(
            "only the filter (objectclass=*) is supported, as in 389-ds",
        ));
    }
    let mut words = rest.split_whitespace();
    match words.next() {
        Some(w) if w.eq_ignore_ascii_case("EXCLUDE") => {}
        Some(w) if w.eq_ignore_ascii_case("INCLUDE") => {
            return Err(err(
                "INCLUDE is not supported (389-ds neither): list the attributes to EXCLUDE",
            ))
        }
        _ => return Err(err("expected EXCLUDE after '$'")),
    }
    let names: Vec<String> = words.map(str::to_string).collect();
    if let Some(bad) = names.iter().find(|n| !valid_attr_name(n)) {
        return Err(err(&format!("'{bad}' is not an attribute type name")));
    }
    if let Some(needed) = names
        .iter()
        .find(|n| NEVER_EXCLUDED.iter().any(|x| x.eq_ignore_ascii_case(n)))
    {
        return Err(err(&format!(
            "{needed} cannot be excluded: replication needs it on every replica"
        )));
    }
    Ok(names)
}

/// The names of nsds5ReplicaStripAttrs: a space-separated list.
pub fn parse_strip_list(value: &str) -> Result<Vec<String>, FractionalError> {
    let names: Vec<String> = value.split_whitespace().map(str::to_string).collect();
    match names.iter().find(|n| !valid_attr_name(n)) {
        Some(bad) => Err(FractionalError(format!(
            "'{bad}' is not an attribute type name"
        ))),
        None => Ok(names),
    }
}

fn valid_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '-'),
        Some(c) if c.is_ascii_digit() => s
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())),
        _ => false,
    }
}

/// One agreement's exclusions. Names are compared case-insensitively and
/// without options (`description;lang-en` is `description`); the caller
/// gives every name and the OID of each excluded type, as the schema knows
/// them, so any spelling matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fractional {
    excluded: BTreeSet<String>,
    strip: BTreeSet<String>,
}

fn base_lower(name: &str) -> String {
    name.split(';').next().unwrap_or(name).to_ascii_lowercase()
}

impl Fractional {
    /// `excluded`: the attributes kept from the consumer; `strip`: those
    /// that alone do not make a stripped modify worth applying
    /// (nsds5ReplicaStripAttrs, added to [`BOOKKEEPING`]).
    pub fn new(
        excluded: impl IntoIterator<Item = String>,
        strip: impl IntoIterator<Item = String>,
    ) -> Fractional {
        let excluded: BTreeSet<String> = excluded.into_iter().map(|n| base_lower(&n)).collect();
        let strip = strip
            .into_iter()
            .chain(BOOKKEEPING.iter().map(|s| s.to_string()))
            .map(|n| base_lower(&n))
            .collect();
        Fractional { excluded, strip }
    }

    /// Whether every attribute is replicated.
    pub fn is_empty(&self) -> bool {
        self.excluded.is_empty()
    }

    pub fn excludes(&self, attr: &str) -> bool {
        !self.excluded.is_empty() && self.excluded.contains(&base_lower(attr))
    }

    /// The entry without the excluded attributes; values that name the
    /// entry (its RDN) stay, or the consumer's entry would lose its name.
    pub fn strip_entry(&self, mut entry: Entry) -> Entry {
        if self.is_empty() {
            return entry;
        }
        let naming: Vec<Vec<u8>> = entry
            .dn
            .rdn()
            .map(|r| {
                r.avas
                    .iter()
                    .filter(|a| self.excludes(&a.attr))
                    .map(|a| a.value.clone())
                    .collect()
            })
            .unwrap_or_default();
        for attr in &mut entry.attrs {
            if self.excludes(&attr.name) {
                attr.values.retain(|v| naming.contains(&v.bytes));
            }
        }
        entry.attrs.retain(|a| !a.values.is_empty());
        entry
    }

    /// The change as this agreement's consumer gets it. A modify left with
    /// only bookkeeping (or nsds5ReplicaStripAttrs) goes with no
    /// modifications: applying it changes no entry and moves the RUV.
    pub fn strip_change(&self, mut rec: ChangeRecord) -> ChangeRecord {
        if self.is_empty() {
            return rec;
        }
        rec.change = match rec.change {
            Change::Add { entry, parent } => Change::Add {
                entry: self.strip_entry(entry),
                parent,
            },
            Change::Modify { mut mods } => {
                let before = mods.len();
                mods.retain(|m| !self.excludes(&m.attr));
                let stripped = mods.len() < before;
                if stripped
                    && mods
                        .iter()
                        .all(|m| self.strip.contains(&base_lower(&m.attr)))
                {
                    mods.clear();
                }
                Change::Modify { mods }
            }
            other => other,
        };
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attribute, Csn, Dn, ModOp, Modification};

    fn csn() -> Csn {
        Csn::new(10, 0, 1, 0)
    }

    fn fractional(excluded: &[&str], strip: &[&str]) -> Fractional {
        Fractional::new(
            excluded.iter().map(|s| s.to_string()),
            strip.iter().map(|s| s.to_string()),
        )
    }

    fn modify(attrs: &[&str]) -> ChangeRecord {
        ChangeRecord {
            csn: csn(),
            uuid: [7; 16],
            dn: Dn::parse("uid=a,dc=x").unwrap(),
            modifier: String::new(),
            change: Change::Modify {
                mods: attrs
                    .iter()
                    .map(|a| Modification {
                        op: ModOp::Replace,
                        attr: a.to_string(),
                        values: vec![b"v".to_vec()],
                    })
                    .collect(),
            },
        }
    }

    fn mod_attrs(rec: &ChangeRecord) -> Vec<String> {
        match &rec.change {
            Change::Modify { mods } => mods.iter().map(|m| m.attr.clone()).collect(),
            other => panic!("not a modify: {other:?}"),
        }
    }

    #[test]
    fn parses_the_389_ds_form() {
        assert_eq!(
            parse_exclude_list(
                "(objectclass=*) $ EXCLUDE authorityRevocationList accountUnlockTime memberof"
            )
            .unwrap(),
            vec!["authorityRevocationList", "accountUnlockTime", "memberof"]
        );
        assert_eq!(
            parse_exclude_list("( objectClass=* )$exclude description").unwrap(),
            vec!["description"]
        );
        assert!(parse_exclude_list("(objectclass=*) $ EXCLUDE")
            .unwrap()
            .is_empty());
        for (bad, says) in [
            ("EXCLUDE description", "expected '(objectclass=*) $ EXCLUDE"),
            (
                "(uid=*) $ EXCLUDE description",
                "only the filter (objectclass=*)",
            ),
            ("(objectclass=*) $ INCLUDE cn", "INCLUDE is not supported"),
            ("(objectclass=*) $ description", "expected EXCLUDE"),
            (
                "(objectclass=*) $ EXCLUDE de$c",
                "'de$c' is not an attribute type name",
            ),
            (
                "(objectclass=*) $ EXCLUDE entryuuid",
                "entryuuid cannot be excluded",
            ),
            (
                "(objectclass=*) $ EXCLUDE objectClass",
                "objectClass cannot be excluded",
            ),
        ] {
            let e = parse_exclude_list(bad).unwrap_err().0;
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(
            parse_strip_list("modifiersName  modifyTimestamp").unwrap(),
            vec!["modifiersName", "modifyTimestamp"]
        );
        assert!(parse_strip_list("a,b").is_err());
    }

    #[test]
    fn strips_entries_but_keeps_the_naming_value() {
        let f = fractional(&["description", "telephonenumber", "cn"], &[]);
        let mut e = Entry::new(Dn::parse("cn=Ann+uid=a,dc=x").unwrap());
        for (name, values) in [
            ("objectClass", vec!["person"]),
            ("cn", vec!["Ann", "Annie"]),
            ("sn", vec!["A"]),
            ("Description;lang-en", vec!["local"]),
            ("telephoneNumber", vec!["1"]),
        ] {
            e.attrs.push(Attribute::new(
                name,
                values.into_iter().map(|v| v.as_bytes().to_vec()).collect(),
                csn(),
            ));
        }
        let s = f.strip_entry(e.clone());
        let names: Vec<&str> = s.attrs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["objectClass", "cn", "sn"]);
        assert_eq!(s.values("cn"), vec![b"Ann".as_slice()]);
        assert_eq!(Fractional::default().strip_entry(e.clone()), e);
    }

    #[test]
    fn a_modify_of_excluded_attributes_only_goes_empty() {
        let f = fractional(&["description"], &[]);
        let rec = f.strip_change(modify(&[
            "description",
            "modifiersName",
            "modifyTimestamp",
            "entryCSN",
        ]));
        assert!(mod_attrs(&rec).is_empty());
        assert_eq!(rec.csn, csn());
        // Something else left: only the excluded attribute goes.
        let rec = f.strip_change(modify(&["description", "sn", "modifyTimestamp"]));
        assert_eq!(mod_attrs(&rec), ["sn", "modifyTimestamp"]);
        // Nothing excluded: bookkeeping alone is not stripped.
        let rec = f.strip_change(modify(&["modifyTimestamp"]));
        assert_eq!(mod_attrs(&rec), ["modifyTimestamp"]);
        // nsds5ReplicaStripAttrs adds to what alone is not worth sending.
        let f = fractional(&["description"], &["nsAccountLock"]);
        let rec = f.strip_change(modify(&["DESCRIPTION", "nsaccountlock", "entryCSN"]));
        assert!(mod_attrs(&rec).is_empty());
        let rec = fractional(&[], &[]).strip_change(modify(&["description"]));
        assert_eq!(mod_attrs(&rec), ["description"]);
    }

    #[test]
    fn adds_are_stripped_and_other_changes_pass() {
        let f = fractional(&["description"], &[]);
        let mut e = Entry::new(Dn::parse("uid=a,dc=x").unwrap());
        e.attrs
            .push(Attribute::new("description", vec![b"x".to_vec()], csn()));
        e.attrs
            .push(Attribute::new("uid", vec![b"a".to_vec()], csn()));
        let mut rec = modify(&[]);
        rec.change = Change::Add {
            entry: e,
            parent: None,
        };
        match f.strip_change(rec).change {
            Change::Add { entry, .. } => assert!(!entry.has("description") && entry.has("uid")),
            other => panic!("{other:?}"),
        }
        let mut rec = modify(&[]);
        rec.change = Change::Delete;
        assert_eq!(f.strip_change(rec.clone()), rec);
    }
}
