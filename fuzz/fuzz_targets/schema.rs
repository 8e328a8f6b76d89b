//! Schema loader: `Schema::from_texts` on arbitrary text must return a
//! schema or an error, never panic. When it loads, the derived output the
//! server publishes (cn=schema values, rendered definitions) is produced too.
//!
//! The first byte picks the context: odd = after the builtin 00-system.ldif
//! (so definitions can reference real syntaxes, rules and superiors), even =
//! the fuzz text alone.
#![no_main]

use ferrodir::schema::Schema;
use libfuzzer_sys::fuzz_target;

const SYSTEM: &str = include_str!("../../schema/00-system.ldif");

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let loaded = if mode % 2 == 1 {
        Schema::from_texts(&[("00-system.ldif", SYSTEM), ("fuzz.ldif", text)])
    } else {
        Schema::from_texts(&[("fuzz.ldif", text)])
    };
    let Ok(schema) = loaded else {
        return;
    };
    for at in schema.attributes() {
        let _ = at.render();
        let _ = schema.check_syntax(&at, b"x");
        let _ = schema.eq_normalize(&at, b" Some Value ");
    }
    for oc in schema.object_classes() {
        let _ = oc.render();
    }
    let _ = schema.subschema_attributes();
});
