//! RFC 2849 LDIF reader and writer.
//!
//! CONTRACT: the signatures below are used by the CLI (import/export) and tests.
//!
//! [`LdifReader`] streams records from any `BufRead`, keeping only the record
//! being parsed in memory. After a bad record it yields the error and goes on
//! with the next record, so an importer can report every bad record in one
//! pass; only an I/O error ends the iteration. [`write_entry`] and
//! [`write_change`] produce text the reader parses back to the same record.

/// One attribute line: type (with options, as written) and raw value bytes.
pub type LdifAttr = (String, Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModOp {
    Add,
    Delete,
    Replace,
    Increment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifMod {
    pub op: ModOp,
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdifChange {
    Add(Vec<LdifAttr>),
    Delete,
    Modify(Vec<LdifMod>),
    ModDn {
        new_rdn: String,
        delete_old_rdn: bool,
        new_superior: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdifRecord {
    /// A content record: DN and attributes.
    Entry { dn: String, attrs: Vec<LdifAttr> },
    /// A change record.
    Change { dn: String, change: LdifChange },
}

/// A parse error naming the (1-based) line where the offending record or line starts.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct LdifError {
    pub line: usize,
    pub message: String,
}

pub use reader::LdifReader;

/// Parses a whole text (convenience for tests and small inputs).
pub fn parse_str(text: &str) -> Result<Vec<LdifRecord>, LdifError> {
    LdifReader::new(text.as_bytes())
        .map(|r| r.map(|(_, rec)| rec))
        .collect()
}

pub use writer::{write_change, write_entry};

mod reader;
mod writer;

#[cfg(test)]
mod tests;
