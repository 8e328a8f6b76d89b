//! RFC 4515 string form of a filter, for the access log.

use ldap3_proto::proto::LdapFilter;
use std::fmt::Write;

fn esc(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => {
                let _ = write!(out, "\\{:02x}", c as u32);
            }
            _ => out.push(c),
        }
    }
}

pub fn to_string(f: &LdapFilter) -> String {
    let mut s = String::new();
    write_filter(&mut s, f);
    s
}

fn write_filter(out: &mut String, f: &LdapFilter) {
    out.push('(');
    match f {
        LdapFilter::And(l) | LdapFilter::Or(l) => {
            out.push(if matches!(f, LdapFilter::And(_)) {
                '&'
            } else {
                '|'
            });
            for sub in l {
                write_filter(out, sub);
            }
        }
        LdapFilter::Not(inner) => {
            out.push('!');
            write_filter(out, inner);
        }
        LdapFilter::Equality(a, v) => {
            out.push_str(a);
            out.push('=');
            esc(out, v);
        }
        LdapFilter::Approx(a, v) => {
            out.push_str(a);
            out.push_str("~=");
            esc(out, v);
        }
        LdapFilter::GreaterOrEqual(a, v) => {
            out.push_str(a);
            out.push_str(">=");
            esc(out, v);
        }
        LdapFilter::LessOrEqual(a, v) => {
            out.push_str(a);
            out.push_str("<=");
            esc(out, v);
        }
        LdapFilter::Present(a) => {
            out.push_str(a);
            out.push_str("=*");
        }
        LdapFilter::Substring(a, sub) => {
            out.push_str(a);
            out.push('=');
            if let Some(i) = &sub.initial {
                esc(out, i);
            }
            out.push('*');
            for any in &sub.any {
                esc(out, any);
                out.push('*');
            }
            if let Some(fin) = &sub.final_ {
                esc(out, fin);
            }
        }
        LdapFilter::Extensible(m) => {
            if let Some(t) = &m.type_ {
                out.push_str(t);
            }
            if m.dn_attributes {
                out.push_str(":dn");
            }
            if let Some(r) = &m.matching_rule {
                out.push(':');
                out.push_str(r);
            }
            out.push_str(":=");
            esc(out, &m.match_value);
        }
    }
    out.push(')');
}
