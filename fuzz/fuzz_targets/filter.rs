//! Search filters: bytes -> `LdapFilter`, then evaluated against a fixed
//! entry with the builtin schema (as an anonymous and as the root user),
//! and printed the way the access log prints them.
//!
//! The first byte picks the input form: even = RFC 4515 text through
//! `ldap3_proto::parse_ldap_filter_str`, odd = BER (the form a search request
//! carries) through the ldap3 BER parser and `LdapFilter::try_from`.
#![no_main]

use ferrodir::directory::filter::{EvalContext, Tri};
use ferrodir::model::{Csn, Dn, Entry};
use ferrodir::ops::filter_text;
use ferrodir::schema::{AttributeType, Schema};
use ldap3_proto::proto::LdapFilter;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| Schema::builtin().unwrap())
}

fn entry() -> &'static Entry {
    static E: OnceLock<Entry> = OnceLock::new();
    E.get_or_init(|| {
        let mut e = Entry::new(
            Dn::parse("uid=bjensen+cn=Babs Jensen,ou=People,dc=example,dc=com").unwrap(),
        );
        let set = |e: &mut Entry, name: &str, vals: &[&[u8]]| {
            e.set(name, vals.iter().map(|v| v.to_vec()).collect(), Csn::ZERO)
        };
        set(
            &mut e,
            "objectClass",
            &[
                b"top",
                b"person",
                b"organizationalPerson",
                b"inetOrgPerson",
                b"posixAccount",
            ],
        );
        set(&mut e, "uid", &[b"bjensen"]);
        set(&mut e, "cn", &[b"Babs Jensen", b"Barbara  Jensen"]);
        set(&mut e, "sn", &[b"Jensen"]);
        set(&mut e, "givenName", &[b"Barbara"]);
        set(&mut e, "mail", &[b"bjensen@example.com"]);
        set(&mut e, "telephoneNumber", &[b"+1 408 555 1862"]);
        set(&mut e, "uidNumber", &[b"1001"]);
        set(&mut e, "gidNumber", &[b"-42"]);
        set(&mut e, "homeDirectory", &[b"/home/bjensen"]);
        set(&mut e, "userPassword", &[b"{SSHA}secret"]);
        set(&mut e, "description", &[b"caf\xc3\xa9 \xff\xfe not utf-8"]);
        set(&mut e, "seeAlso", &[b"cn=Other, dc=example,dc=com"]);
        set(&mut e, "createTimestamp", &[b"20240102030405Z"]);
        set(&mut e, "modifyTimestamp", &[b"20240102030405.123+0100"]);
        set(&mut e, "jpegPhoto", &[b"\x00\x01\x02"]);
        set(&mut e, "member", &[b"uid=a,dc=example,dc=com", b"not a dn"]);
        set(
            &mut e,
            "entryUUID",
            &[b"597ae2f6-16a6-1027-98f4-abcdefabcdef"],
        );
        e
    })
}

fn parse(data: &[u8]) -> Option<LdapFilter> {
    let (&mode, rest) = data.split_first()?;
    if mode % 2 == 0 {
        let text = std::str::from_utf8(rest).ok()?;
        ldap3_proto::parse_ldap_filter_str(text).ok()
    } else {
        let mut parser = ldap3_lber::parse::Parser::new(32);
        let (_, tag) = parser.parse(rest).ok()?;
        LdapFilter::try_from(tag).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(filter) = parse(data) else {
        return;
    };
    let text = filter_text::to_string(&filter);
    let computed = |name: &str, e: &Entry| match name {
        "entrydn" => Some(vec![e.dn.to_string().into_bytes()]),
        "hassubordinates" => Some(vec![b"FALSE".to_vec()]),
        "numsubordinates" => Some(vec![b"0".to_vec()]),
        _ => None,
    };
    let secret = |at: &AttributeType| at.name().eq_ignore_ascii_case("userPassword");
    let nothing = |_: &AttributeType| false;
    for hidden in [&secret as &dyn Fn(&AttributeType) -> bool, &nothing] {
        let ctx = EvalContext {
            schema: schema(),
            hidden,
            computed: &computed,
        };
        let r = ctx.eval(&filter, entry());
        // NOT flips True/False and keeps Undefined (RFC 4511 §4.5.1.7).
        let not = ctx.eval(&LdapFilter::Not(Box::new(filter.clone())), entry());
        let expected = match r {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Undefined => Tri::Undefined,
        };
        assert_eq!(not, expected, "{text}");
    }
});
