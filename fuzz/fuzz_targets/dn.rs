//! DN parser: `Dn::parse` never panics, and printing a parsed DN gives text
//! that parses back to the same DN: parse(print(parse(x))) == parse(x).
//! The RDN parser and the normalised form (builtin schema) ride along, and
//! the server's RDN count on the raw text (the DN depth limit) agrees with
//! the parser. A DN that parses is also repeated into one of over 500 RDNs,
//! which must parse, count and normalise the same way (deep DNs once
//! overflowed the stack of a recursive walk).
#![no_main]

use ferrodir::model::{Dn, Rdn};
use ferrodir::schema::Schema;
use ferrodir::server::limits::rdn_count;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| Schema::builtin().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Rdn::parse(text);
    let Ok(dn) = Dn::parse(text) else {
        return;
    };
    assert_eq!(rdn_count(text), dn.rdns.len(), "RDN count of {text:?}");
    let printed = dn.to_string();
    let again = match Dn::parse(&printed) {
        Ok(d) => d,
        Err(e) => panic!("printed DN {printed:?} (from {text:?}) does not parse: {e}"),
    };
    assert_eq!(again, dn, "round trip through {printed:?} changed the DN");
    // The normalised form is the store key: equal DNs must normalise equally.
    let norm = schema().normalize_dn(&dn);
    assert_eq!(norm, schema().normalize_dn(&again));
    let _ = dn.parent();
    let _ = dn.rdn().map(|r| r.to_string());
    if !dn.rdns.is_empty() && text.len() <= 64 {
        const COPIES: usize = 512;
        let deep = vec![text; COPIES].join(",");
        if let Ok(deep_dn) = Dn::parse(&deep) {
            assert_eq!(deep_dn.rdns.len(), COPIES * dn.rdns.len(), "{deep:?}");
            assert_eq!(rdn_count(&deep), deep_dn.rdns.len());
            let _ = schema().normalize_dn(&deep_dn);
        }
    }
});
