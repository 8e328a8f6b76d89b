//! A client's write request as the directory receives it, before any
//! replication state is attached.

use super::{Dn, Modification, Rdn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Add {
        dn: Dn,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Delete {
        dn: Dn,
    },
    Modify {
        dn: Dn,
        mods: Vec<Modification>,
    },
    ModDn {
        dn: Dn,
        new_rdn: Rdn,
        delete_old_rdn: bool,
        new_superior: Option<Dn>,
    },
}

impl WriteOp {
    pub fn dn(&self) -> &Dn {
        match self {
            WriteOp::Add { dn, .. }
            | WriteOp::Delete { dn }
            | WriteOp::Modify { dn, .. }
            | WriteOp::ModDn { dn, .. } => dn,
        }
    }
}
