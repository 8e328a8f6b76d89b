//! Authentication: password schemes and bind checks, and what a client
//! certificate says about its holder (for SASL EXTERNAL).

mod crypt;
pub mod password;

/// What a client certificate says about its holder (the server's TLS layer
/// fills it in; bind maps it to an identity).
#[derive(Debug, Clone, Default)]
pub struct PeerCert {
    /// The subject as an RFC 4514 string, most specific RDN first.
    pub subject: Option<String>,
    /// The first common name of the subject.
    pub cn: Option<String>,
}
