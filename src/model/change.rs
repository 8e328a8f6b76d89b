//! Changes as the changelog records them and replication sends them: what
//! happened to which entry (by entryUUID), stamped with its CSN.

use super::{Csn, Dn, Entry, Rdn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModOp {
    Add,
    Delete,
    Replace,
    Increment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modification {
    pub op: ModOp,
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The whole new entry with its state (entryUUID and operational attributes included).
    Add {
        entry: Entry,
        /// entryUUID of the parent on the originating replica, so the add
        /// lands under that entry wherever its DN has gone (None: the
        /// suffix entry, or a record from before parents were recorded).
        parent: Option<[u8; 16]>,
    },
    /// The modifications as applied (userPassword values already hashed).
    Modify {
        mods: Vec<Modification>,
    },
    Delete,
    ModDn {
        new_rdn: Rdn,
        delete_old_rdn: bool,
        /// entryUUID of the new parent when the entry moved.
        new_superior: Option<[u8; 16]>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub csn: Csn,
    /// entryUUID of the target entry.
    pub uuid: [u8; 16],
    /// The target's DN when the change was made.
    pub dn: Dn,
    /// Who made it (modifiersName of the change).
    pub modifier: String,
    pub change: Change,
}
