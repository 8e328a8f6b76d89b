//! LDIF reader over arbitrary bytes: it never panics, and every record it
//! accepts survives a write -> parse round trip unchanged (the writer is what
//! `ferrodir export` uses, the reader what `ferrodir import` uses).
#![no_main]

use ferrodir::ldif::{self, LdifReader, LdifRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small reads exercise the streaming buffer handling too.
    let reader = std::io::BufReader::with_capacity(7, data);
    for item in LdifReader::new(reader).take(1000) {
        let Ok((_line, record)) = item else {
            continue;
        };
        let mut text = String::new();
        match &record {
            LdifRecord::Entry { dn, attrs } => ldif::write_entry(&mut text, dn, attrs),
            LdifRecord::Change { dn, change } => ldif::write_change(&mut text, dn, change),
        }
        let again = match ldif::parse_str(&text) {
            Ok(r) => r,
            Err(e) => panic!("written record does not parse: {e}\n{text}\nfrom {record:?}"),
        };
        assert_eq!(again, vec![record], "round trip through\n{text}");
    }
});
