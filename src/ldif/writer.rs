//! RFC 2849 writer: SAFE-STRING values as written, everything else base64,
//! lines folded at 76 columns.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{LdifAttr, LdifChange, LdifMod, ModOp};

/// Longest physical line we emit, in bytes (RFC 2849 suggests 76 columns).
const WIDTH: usize = 76;

/// Writes one content record (no trailing blank line): `dn:` then each
/// attribute; values that are not SAFE-STRINGs are base64 (`::`); lines are
/// folded at 76 columns.
pub fn write_entry(out: &mut String, dn: &str, attrs: &[LdifAttr]) {
    write_line(out, "dn", dn.as_bytes());
    for (name, value) in attrs {
        write_line(out, name, value);
    }
}

/// Writes one change record.
pub fn write_change(out: &mut String, dn: &str, change: &LdifChange) {
    write_line(out, "dn", dn.as_bytes());
    match change {
        LdifChange::Add(attrs) => {
            out.push_str("changetype: add\n");
            for (name, value) in attrs {
                write_line(out, name, value);
            }
        }
        LdifChange::Delete => out.push_str("changetype: delete\n"),
        LdifChange::Modify(mods) => {
            out.push_str("changetype: modify\n");
            for LdifMod { op, attr, values } in mods {
                let op = match op {
                    ModOp::Add => "add",
                    ModOp::Delete => "delete",
                    ModOp::Replace => "replace",
                    ModOp::Increment => "increment",
                };
                write_line(out, op, attr.as_bytes());
                for value in values {
                    write_line(out, attr, value);
                }
                out.push_str("-\n");
            }
        }
        LdifChange::ModDn {
            new_rdn,
            delete_old_rdn,
            new_superior,
        } => {
            // "modrdn" rather than "moddn": every reader knows it.
            out.push_str("changetype: modrdn\n");
            write_line(out, "newrdn", new_rdn.as_bytes());
            out.push_str(if *delete_old_rdn {
                "deleteoldrdn: 1\n"
            } else {
                "deleteoldrdn: 0\n"
            });
            if let Some(sup) = new_superior {
                write_line(out, "newsuperior", sup.as_bytes());
            }
        }
    }
}

/// RFC 2849 SAFE-STRING, plus "no trailing space" since readers differ on
/// whether they keep it.
fn is_safe(value: &[u8]) -> bool {
    let starts_ok = !matches!(value.first(), Some(b' ' | b':' | b'<'));
    let ends_ok = value.last() != Some(&b' ');
    starts_ok
        && ends_ok
        && value
            .iter()
            .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80)
}

fn write_line(out: &mut String, name: &str, value: &[u8]) {
    let mut f = Folder { out, col: 0 };
    f.push(name);
    if value.is_empty() {
        f.push(":");
    } else if is_safe(value) {
        f.push(": ");
        // is_safe guarantees ASCII, so this never takes the lossy branch.
        f.push(&String::from_utf8_lossy(value));
    } else {
        f.push(":: ");
        f.push(&STANDARD.encode(value));
    }
    out.push('\n');
}

/// Appends text, starting a continuation line (" ") whenever the current
/// physical line is full; never splits a UTF-8 character.
struct Folder<'a> {
    out: &'a mut String,
    col: usize,
}

impl Folder<'_> {
    fn push(&mut self, mut s: &str) {
        while !s.is_empty() {
            let room = WIDTH.saturating_sub(self.col);
            let mut take = room.min(s.len());
            while !s.is_char_boundary(take) {
                take -= 1;
            }
            if take == 0 {
                self.out.push_str("\n ");
                self.col = 1;
                continue;
            }
            let (head, tail) = s.split_at(take);
            self.out.push_str(head);
            self.col += take;
            s = tail;
        }
    }
}
