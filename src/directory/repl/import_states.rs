//! Replication states written while an offline import adds its entries.
//!
//! An import into suffixes that hold nothing yet has nothing to resolve:
//! each entry's parent was added before it and each DN is taken once, so an
//! entry's state is the entry itself (every value added at its CSN) placed
//! live under its parent. Written beside the entry, it spares the import
//! the offline build, which reads every entry twice more and normalises its
//! values again. Anything else (a suffix with entries or tombstones
//! already, a name claimed twice, a conflict entry carried by the LDIF)
//! falls back to that build.

use super::urp::{name_keys, state_from_entry, state_of_new_entry, SchemaNorm, META_STATES_BUILT};
use super::{Core, DirResult};
use crate::directory::write::ValueKeys;
use crate::model::{Change, Entry};
use crate::repl::core::{self as rc, EntryState, CONFLICT_ATTR};
use crate::schema::Schema;
use crate::store::replstate::{is_claim_key, ReplStateRead};
use crate::store::{StoreRead, WriteTxn};
use std::sync::Arc;

/// The states of an import in progress.
pub(crate) struct ImportStates {
    schema: Arc<Schema>,
    /// Every state so far was written beside its entry; false once the
    /// offline build must do it.
    inline: bool,
}

impl Core {
    /// How the states of an import starting in `txn` will be written.
    pub(crate) fn import_states(&self, txn: &WriteTxn<'_>) -> DirResult<ImportStates> {
        let mut inline = txn.repl_states_after(None, 1)?.is_empty();
        for key in self.replicated_suffix_keys() {
            if !inline {
                break;
            }
            inline = txn.id_by_dn(&key)?.is_none() && self.tombstones(txn, &key)?.is_empty();
        }
        Ok(ImportStates {
            schema: self.schema(),
            inline,
        })
    }
}

/// The state of an entry an import adds, without its parent (the writer
/// knows it); None where the entry needs the offline build (it carries a
/// conflict marker from an earlier resolution).
pub(crate) fn state_of_added(
    schema: &Schema,
    entry: &Entry,
    known: Option<&mut ValueKeys>,
) -> Option<EntryState> {
    if entry.get(CONFLICT_ATTR).is_some() {
        return None;
    }
    match known {
        Some(k) => state_of_new_entry(entry, &SchemaNorm(schema), k),
        None => state_from_entry(entry, None, None, &SchemaNorm(schema)),
    }
}

impl ImportStates {
    /// Writes the state of the entry the import just added (`change`, the
    /// change no changelog recorded), or gives up writing them inline.
    /// `prepared`: [`state_of_added`] of the entry, when it was in a
    /// replicated suffix and its add was prepared.
    pub(crate) fn added(
        &mut self,
        core: &Core,
        txn: &mut WriteTxn<'_>,
        change: &Change,
        prepared: Option<&mut EntryState>,
    ) -> DirResult<()> {
        if !self.inline {
            return Ok(());
        }
        let Change::Add { entry, parent } = change else {
            self.inline = false;
            return Ok(());
        };
        let mut computed = None;
        let state = match prepared {
            Some(s) => Some(s),
            None if core.replicated_suffix_of(&core.dn_key(&entry.dn)).is_none() => {
                return Ok(());
            }
            None => computed
                .insert(state_of_added(&self.schema, entry, None))
                .as_mut(),
        };
        let Some(state) = state else {
            self.inline = false;
            return Ok(());
        };
        state.parent = *parent;
        rc::place_added(state);
        let keys = name_keys(&SchemaNorm(&self.schema), state);
        // Two DNs the entries' index tells apart but whose RDNs the
        // resolver's normalisation makes one name: a conflict to resolve.
        for claim in keys.iter().filter(|k| is_claim_key(k)) {
            if !txn.repl_names(claim)?.is_empty() {
                self.inline = false;
                return Ok(());
            }
        }
        for k in &keys {
            txn.add_repl_name(k, &state.uuid)?;
        }
        txn.put_repl_state_in_order(&state.uuid, &state.encode())?;
        Ok(())
    }

    /// After the import's last commit: the states are marked built, or built.
    pub(crate) fn finish(self, core: &Core, offline_chunk: usize) -> DirResult<()> {
        if self.inline {
            let mut txn = core.store.write()?;
            txn.put_meta(META_STATES_BUILT, &[])?;
            txn.commit()?;
            return Ok(());
        }
        core.build_repl_states_offline(offline_chunk)
    }
}

#[cfg(test)]
mod tests {
    use crate::directory::test_support::{add_example_suffix, temp_directory};
    use crate::directory::Directory;
    use crate::model::Dn;
    use crate::store::replstate::ReplStateRead;
    use crate::store::StoreRead;
    use std::collections::BTreeMap;

    const SUFFIX: &str = "dc=example,dc=com";

    /// An LDIF with what an import meets: a suffix, an OU, users whose
    /// types are spelled by name and by alias, one with its own entryUUID
    /// (an export's, out of the generated order), and a group.
    fn ldif(users: usize) -> String {
        let mut t = String::from(
            "dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n\n\
             dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n",
        );
        for i in 0..users {
            t.push_str(&format!(
                "\ndn: uid=u{i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n\
                 uid: u{i}\ncn: User {i}\ncommonName: Nutzer {i}\nsn: S{i}\n\
                 mail: U{i}@Example.com\ndescription: first\ndescription: second\n"
            ));
            if i == 3 {
                t.push_str("entryUUID: 00000000-0000-4000-8000-000000000003\n");
            }
        }
        t.push_str(
            "\ndn: cn=staff,dc=example,dc=com\nobjectClass: groupOfNames\ncn: staff\n\
             member: uid=u0,ou=people,dc=example,dc=com\nmember: uid=u1,ou=people,dc=example,dc=com\n",
        );
        t
    }

    fn import(dir: &Directory, text: &str, batch: usize) -> u64 {
        dir.import_ldif(text.as_bytes(), "test.ldif", batch, &mut |_| {})
            .unwrap_or_else(|e| panic!("import: {e}"))
    }

    /// Every stored state, by entryUUID.
    fn states(dir: &Directory) -> BTreeMap<[u8; 16], Vec<u8>> {
        let txn = dir.core.store.read().unwrap();
        let all = txn.repl_states_after(None, usize::MAX).unwrap();
        all.into_iter().collect()
    }

    /// The states the offline build writes for what is stored now.
    fn rebuilt(dir: &Directory) -> BTreeMap<[u8; 16], Vec<u8>> {
        let core = &dir.core;
        let mut txn = core.store.write().unwrap();
        core.invalidate_repl_states(&mut txn).unwrap();
        txn.commit().unwrap();
        core.build_repl_states_offline(5).unwrap();
        states(dir)
    }

    fn writes_inline(dir: &Directory) -> bool {
        let txn = dir.core.store.write().unwrap();
        let inline = dir.core.import_states(&txn).unwrap().inline;
        txn.abort();
        inline
    }

    #[test]
    fn an_import_into_an_empty_suffix_writes_the_states_the_offline_build_writes() {
        let (_tmp, dir) = temp_directory(SUFFIX, Default::default());
        assert!(writes_inline(&dir), "a fresh directory takes inline states");
        // Batches of 7: states written across several commits.
        assert_eq!(import(&dir, &ldif(30), 7), 33);
        let core = &dir.core;
        assert!(core.repl_states_built(&core.store.read().unwrap()).unwrap());
        let inline = states(&dir);
        assert_eq!(inline.len(), 33, "one state per entry");
        assert_eq!(rebuilt(&dir), inline);
        // The next import finds the suffix there: the offline build.
        assert!(!writes_inline(&dir));
    }

    #[test]
    fn an_import_into_a_suffix_with_entries_builds_the_states_offline() {
        let (_tmp, dir) = temp_directory(SUFFIX, Default::default());
        add_example_suffix(&dir);
        assert!(!writes_inline(&dir));
        let text = ldif(6);
        // Everything but the suffix entry, which is there already.
        let rest = &text[text.find("\ndn: ou=people").unwrap() + 1..];
        assert_eq!(import(&dir, rest, 4), 8);
        let built = states(&dir);
        assert_eq!(built.len(), 9, "the suffix's state too");
        assert_eq!(rebuilt(&dir), built);
    }

    #[test]
    fn a_name_claimed_twice_falls_back_to_the_offline_build() {
        let (_tmp, dir) = temp_directory(SUFFIX, Default::default());
        let mut s = import_states_for(&dir);
        assert!(s.inline);
        let text = ldif(2);
        assert_eq!(import(&dir, &text, 100), 5);
        // The same RDN under the same parent, as a second claim: what the
        // resolver would have to settle.
        let core = &dir.core;
        let mut txn = core.store.write().unwrap();
        let stored = |dn: &str| {
            let id = txn
                .id_by_dn(&core.dn_key(&Dn::parse(dn).unwrap()))
                .unwrap()
                .unwrap();
            txn.entry(id).unwrap().unwrap()
        };
        let entry = stored("uid=u1,ou=people,dc=example,dc=com");
        let people = stored("ou=people,dc=example,dc=com");
        let parent = crate::directory::write::entry_uuid(&people).ok();
        let mut twin = entry.clone();
        twin.set(
            "entryUUID",
            vec![b"00000000-0000-4000-8000-0000000000ff".to_vec()],
            entry.get("entryUUID").unwrap().values[0].csn,
        );
        let change = crate::model::Change::Add {
            entry: twin,
            parent,
        };
        s.added(core, &mut txn, &change, None).unwrap();
        assert!(
            !s.inline,
            "a second claim on a name is left to the resolver"
        );
        txn.abort();
    }

    fn import_states_for(dir: &Directory) -> super::ImportStates {
        let txn = dir.core.store.write().unwrap();
        let s = dir.core.import_states(&txn).unwrap();
        txn.abort();
        s
    }
}
