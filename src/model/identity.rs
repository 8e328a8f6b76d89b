//! Who is asking: the identity every access decision and write is made for.

use super::Dn;

/// Who is asking: anonymous, an entry, or the root DN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub dn: Option<Dn>,
    /// Normalised DN (empty for anonymous).
    pub norm: String,
    pub root: bool,
}

impl Identity {
    pub fn anonymous() -> Identity {
        Identity::default()
    }
    pub fn is_anonymous(&self) -> bool {
        self.dn.is_none()
    }
}
