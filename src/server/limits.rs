//! Bounds on the DNs a request names, checked before the request runs:
//! work on a DN (parsing, normalising, walking its ancestors for access
//! control and matchedDN) grows with its size, so a DN far beyond anything
//! a real directory holds is refused at the door.

use crate::config::Limits;
use ldap3_proto::proto::{LdapOp, LdapResult, LdapResultCode};

/// RDNs in an RFC 4514 string: unescaped separators plus one (none for the
/// empty DN). Counted on the text so the limit costs no parse.
pub fn rdn_count(dn: &str) -> usize {
    if dn.trim().is_empty() {
        return 0;
    }
    let mut count = 1;
    let mut escaped = false;
    for b in dn.bytes() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b',' || b == b';' {
            count += 1;
        }
    }
    count
}

/// The DNs a request names, with the RFC 4511 field each comes from.
fn request_dns(op: &LdapOp) -> Vec<(&'static str, &str)> {
    match op {
        LdapOp::BindRequest(r) => vec![("name", r.dn.as_str())],
        LdapOp::SearchRequest(r) => vec![("baseObject", r.base.as_str())],
        LdapOp::ModifyRequest(r) => vec![("object", r.dn.as_str())],
        LdapOp::AddRequest(r) => vec![("entry", r.dn.as_str())],
        LdapOp::DelRequest(dn) => vec![("entry", dn.as_str())],
        LdapOp::ModifyDNRequest(r) => {
            let mut v = vec![("entry", r.dn.as_str()), ("newrdn", r.newrdn.as_str())];
            if let Some(s) = &r.new_superior {
                v.push(("newSuperior", s.as_str()));
            }
            v
        }
        LdapOp::CompareRequest(r) => vec![("entry", r.dn.as_str())],
        _ => Vec::new(),
    }
}

/// Why a DN of the request exceeds `max_dn_length` or `max_dn_depth`
/// (0 turns either off), or Ok.
pub fn check_request_dns(op: &LdapOp, limits: &Limits) -> Result<(), String> {
    for (field, dn) in request_dns(op) {
        let depth = rdn_count(dn);
        if limits.max_dn_depth > 0 && depth > limits.max_dn_depth {
            return Err(format!(
                "{field} has {depth} RDNs; this server accepts DNs of at most {} RDNs (max_dn_depth)",
                limits.max_dn_depth
            ));
        }
        if limits.max_dn_length > 0 && dn.len() > limits.max_dn_length {
            return Err(format!(
                "{field} is {} bytes long; this server accepts DNs of at most {} bytes (max_dn_length)",
                dn.len(),
                limits.max_dn_length
            ));
        }
    }
    Ok(())
}

/// The answer to a request whose DN exceeds the limits.
///
/// adminLimitExceeded (11), not invalidDNSyntax (34): such a DN is valid
/// RFC 4514 syntax, and RFC 4511 keeps 34 for names that are not; what it
/// breaks is a bound this server's administrator set, which is what 11 means.
pub fn dn_limit_result(why: String) -> LdapResult {
    crate::ops::result::result(LdapResultCode::AdminLimitExceeded, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rdns_on_the_text() {
        assert_eq!(rdn_count(""), 0);
        assert_eq!(rdn_count("  "), 0);
        assert_eq!(rdn_count("dc=com"), 1);
        assert_eq!(rdn_count("uid=a,ou=people;dc=example, dc=com"), 4);
        // Escaped separators and hex-escaped ones are inside values.
        assert_eq!(rdn_count("cn=Smith\\, John,dc=x"), 2);
        assert_eq!(rdn_count("cn=a\\2Cb,dc=x"), 2);
        assert_eq!(rdn_count("cn=a\\\\,dc=x"), 2);
        // A multi-valued RDN is one RDN.
        assert_eq!(rdn_count("cn=a+uid=b,dc=x"), 2);
    }

    #[test]
    fn deep_or_long_dns_exceed_the_limits() {
        let limits = Limits {
            max_dn_depth: 3,
            max_dn_length: 40,
            ..Limits::default()
        };
        let del = |dn: &str| LdapOp::DelRequest(dn.to_string());
        assert!(check_request_dns(&del("ou=a,dc=example,dc=com"), &limits).is_ok());
        let e = check_request_dns(&del("ou=b,ou=a,dc=example,dc=com"), &limits).unwrap_err();
        assert!(e.contains("4 RDNs") && e.contains("max_dn_depth"), "{e}");
        let long = format!("cn={},dc=com", "x".repeat(40));
        let e = check_request_dns(&del(&long), &limits).unwrap_err();
        assert!(e.contains("max_dn_length"), "{e}");
        let off = Limits {
            max_dn_depth: 0,
            max_dn_length: 0,
            ..Limits::default()
        };
        assert!(check_request_dns(&del(&long), &off).is_ok());
        assert!(check_request_dns(&LdapOp::UnbindRequest, &limits).is_ok());
    }
}
