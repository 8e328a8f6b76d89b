//! A small async LDAP client over `ldap3_proto`'s codec: what a supplier
//! needs to push changes (connect over LDAP, LDAPS or StartTLS, simple or
//! SASL EXTERNAL bind, extended operations, unbind) plus searches and
//! deletes for the admin tooling (`ferrodir repl`). Every step has a timeout and every failure names the
//! step, so an agreement's status says what broke. Nothing here panics on a
//! bad peer: it becomes a `ClientError`.
//!
//! TLS is rustls with the ring provider (given explicitly, TLS 1.2 and 1.3),
//! the peer's chain verified against a CA bundle and its host name (or IP
//! address, as an IP SAN) by rustls' WebPKI verifier.

use crate::directory::repl::Transport;
use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::{
    LdapAddRequest, LdapAttribute, LdapBindCred, LdapBindRequest, LdapDerefAliases,
    LdapExtendedRequest, LdapModify, LdapModifyRequest, LdapModifyType, LdapMsg, LdapOp,
    LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest, SaslCredentials,
};
pub use ldap3_proto::proto::{LdapFilter, LdapSearchScope};
use ldap3_proto::LdapCodec;
use rustls::client::WebPkiServerVerifier;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Framed;

/// The StartTLS extended operation (RFC 4511 §4.14).
use crate::model::oid::STARTTLS as OID_STARTTLS;

/// Largest response accepted (entries with big values, RUVs).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS with {addr}: {reason}")]
    Tls { addr: String, reason: String },
    #[error("bind as '{dn}' failed: {code} ({name}) {message}")]
    Bind {
        dn: String,
        code: i32,
        name: String,
        message: String,
    },
    #[error("{step} failed: {code} ({name}) {message}")]
    Result {
        step: String,
        code: i32,
        name: String,
        message: String,
    },
    #[error("protocol error during {step}: {reason}")]
    Protocol { step: String, reason: String },
    /// The peer ended the connection (a restart or shutdown, usually):
    /// not a protocol error.
    #[error("{step}: the peer closed the connection")]
    Closed { step: String },
    #[error("{step}: no answer within {secs} s")]
    Timeout { step: String, secs: u64 },
    #[error("TLS settings: {0}")]
    TlsSetup(String),
}

impl ClientError {
    /// The LDAP result code, when the peer answered with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientError::Bind { code, .. } | ClientError::Result { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The peer ended the session on purpose: it closed the connection,
    /// or sent a notice of disconnection (unavailable, 52) as a server
    /// does when it shuts down.
    pub fn is_peer_shutdown(&self) -> bool {
        match self {
            ClientError::Closed { .. } => true,
            ClientError::Result { step, code, .. } => {
                *code == 52 && step.ends_with("(server disconnected)")
            }
            _ => false,
        }
    }

    /// The peer's diagnostic message, when it answered with one.
    pub fn message(&self) -> Option<&str> {
        match self {
            ClientError::Bind { message, .. } | ClientError::Result { message, .. } => {
                Some(message)
            }
            _ => None,
        }
    }

    fn result(step: &str, r: &LdapResult) -> ClientError {
        ClientError::Result {
            step: step.to_string(),
            code: r.code.clone() as i32,
            name: code_name(&r.code),
            message: r.message.clone(),
        }
    }
}

fn code_name(c: &LdapResultCode) -> String {
    let dbg = format!("{c:?}");
    // Unknown codes print as Other(n) or similar; keep the name short.
    dbg.split('(').next().unwrap_or("").to_string()
}

/// One entry of a search result: DN and attributes with their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// First value of an attribute (case-insensitive name), as text.
    pub fn first(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(|v| String::from_utf8_lossy(v).to_string())
    }
}

/// Trust anchors and (optionally) the client certificate for TLS transports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA certificates (PEM) the peer's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// Certificate chain and private key (PEM) presented to the peer; None:
    /// no client certificate.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// SHA-256 of the one server certificate to accept (a synchronization
    /// key's pin): with it, that certificate is trusted whatever its
    /// issuer and names, and no other is; the CA bundle is not used.
    pub pin_sha256: Option<[u8; 32]>,
}

/// Accepts exactly the certificate whose SHA-256 is the pin; handshake
/// signatures are still checked against it, so only the holder of its
/// private key passes.
#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha2::Digest;
        let seen: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if seen == self.pin {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a TLS session settled on, for logs and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// "TLS 1.2" or "TLS 1.3".
    pub version: String,
    /// The name (or address) the peer's certificate was verified for.
    pub verified_name: String,
    /// Whether a client certificate was presented.
    pub client_cert: bool,
}

/// Plain TCP, or TLS over it.
#[allow(clippy::large_enum_variant)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate (PEM) found", path.display()));
    }
    Ok(certs)
}

/// A rustls client configuration: ring provider, TLS 1.2/1.3, WebPKI
/// verification against `settings.ca_file`, the client certificate if any.
fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    if let Some(pin) = settings.pin_sha256 {
        let verifier = Arc::new(PinnedVerifier {
            pin,
            provider: provider.clone(),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let ca = settings.ca_file.as_deref().ok_or_else(|| {
        "no CA bundle to verify the peer with (set [replication] ca_file or [tls] ca_file)"
            .to_string()
    })?;
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("{}: {e}", ca.display()))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_webpki_verifier(verifier);
    let config = match &settings.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = load_certs(cert)?;
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("client certificate {}: {e}", cert.display()))?
        }
    };
    Ok(Arc::new(config))
}

/// Why a TLS handshake with a server failed, in words an operator can act on.
fn describe_tls_error(e: &std::io::Error, host: &str, settings: &TlsSettings) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the TLS handshake (does it serve TLS on this port?)".into()
            }
            _ => e.to_string(),
        };
    };
    let ca = settings
        .ca_file
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match inner {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => format!(
                "certificate verify failed: unknown CA (the server's certificate does not chain to a CA in {ca})"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "certificate verify failed: host name mismatch (the server's certificate is not valid for '{host}')"
            ),
            C::Expired | C::ExpiredContext { .. } => {
                "certificate verify failed: expired (the server's certificate has expired)".into()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "certificate verify failed: not valid yet (check the clocks)".into()
            }
            C::Revoked => "certificate verify failed: revoked".into(),
            C::BadSignature => "certificate verify failed: bad signature".into(),
            other => format!("certificate verify failed: {other:?}"),
        },
        E::AlertReceived(a) => {
            let why = match a {
                A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::CertificateRequired
                | A::UnsupportedCertificate => {
                    " (the server does not accept this side's client certificate: is it issued by a CA the server trusts, with clientAuth usage?)"
                }
                A::CertificateExpired => " (the server says the client certificate expired)",
                A::ProtocolVersion | A::HandshakeFailure => {
                    " (no common protocol version or cipher: TLS 1.2 and 1.3 only)"
                }
                _ => "",
            };
            format!("the server refused the handshake with alert {a:?}{why}")
        }
        E::InvalidMessage(m) => format!("not a TLS server (invalid message {m:?})"),
        other => other.to_string(),
    }
}

pub struct Client {
    framed: Framed<Stream, LdapCodec>,
    next_id: i32,
    addr: String,
    /// Timeout of each request/response exchange.
    op_timeout: Duration,
    tls: Option<TlsInfo>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish()
    }
}

fn codec() -> LdapCodec {
    LdapCodec::new(Some(MAX_MESSAGE), None)
}

impl Client {
    /// Opens a connection: plain LDAP, LDAPS (TLS from the first byte) or
    /// LDAP upgraded with StartTLS. With TLS the server's certificate must
    /// chain to `tls.ca_file` and name `host` (a DNS name, or an IP address
    /// as an IP SAN); otherwise nothing is sent but the StartTLS request.
    pub async fn connect(
        host: &str,
        port: u16,
        transport: Transport,
        tls: &TlsSettings,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tls_err = |reason: String| ClientError::Tls {
            addr: addr.clone(),
            reason,
        };
        // Everything that can be checked before connecting is.
        let tls_parts = match transport {
            Transport::Ldap => None,
            Transport::Ldaps | Transport::StartTls => {
                let config = client_config(tls).map_err(ClientError::TlsSetup)?;
                let name = ServerName::try_from(host.to_string()).map_err(|e| {
                    tls_err(format!("'{host}' is not a valid host name or address: {e}"))
                })?;
                Some((TlsConnector::from(config), name))
            }
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.clone(),
                reason: format!("timed out after {} s", timeout.as_secs()),
            })?
            .map_err(|e| ClientError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        let mut client = Client {
            framed: Framed::new(Stream::Plain(stream), codec()),
            next_id: 1,
            addr: addr.clone(),
            op_timeout: Duration::from_secs(300),
            tls: None,
        };
        let Some((connector, name)) = tls_parts else {
            return Ok(client);
        };
        if transport == Transport::StartTls {
            client.op_timeout = timeout;
            client.start_tls_request().await?;
            client.op_timeout = Duration::from_secs(300);
        }
        let parts = client.framed.into_parts();
        if !parts.read_buf.is_empty() {
            return Err(tls_err(
                "the server sent data after the StartTLS response, before the handshake".into(),
            ));
        }
        let Stream::Plain(tcp) = parts.io else {
            return Err(tls_err("TLS is already active on this connection".into()));
        };
        let verified_name = host.to_string();
        let tls_stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| {
                tls_err(format!(
                    "TLS handshake: no answer within {} s",
                    timeout.as_secs()
                ))
            })?
            .map_err(|e| tls_err(describe_tls_error(&e, host, tls)))?;
        let (_, session) = tls_stream.get_ref();
        let version = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "TLS".to_string(),
        };
        let client_cert = tls.client_cert.is_some();
        Ok(Client {
            framed: Framed::new(Stream::Tls(Box::new(tls_stream)), codec()),
            next_id: client.next_id,
            addr: client.addr,
            op_timeout: client.op_timeout,
            tls: Some(TlsInfo {
                version,
                verified_name,
                client_cert,
            }),
        })
    }

    /// Sends StartTLS in clear and requires success.
    async fn start_tls_request(&mut self) -> Result<(), ClientError> {
        let step = "StartTLS";
        let id = self
            .send(
                step,
                LdapOp::ExtendedRequest(LdapExtendedRequest {
                    name: OID_STARTTLS.to_string(),
                    value: None,
                }),
            )
            .await?;
        match self.recv(step, id).await? {
            LdapOp::ExtendedResponse(r) if r.res.code == LdapResultCode::Success => Ok(()),
            LdapOp::ExtendedResponse(r) => Err(ClientError::result(step, &r.res)),
            other => Err(unexpected(step, &other)),
        }
    }

    /// The TLS session, if any.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// One line describing the transport security, e.g.
    /// "LDAPS (TLS 1.3, verified consumer.example.com)".
    pub fn security(&self, transport: Transport) -> String {
        match (&self.tls, transport) {
            (None, _) => "LDAP (no TLS)".into(),
            (Some(t), tr) => format!(
                "{} ({}, verified {}{})",
                if tr == Transport::StartTls {
                    "StartTLS"
                } else {
                    "LDAPS"
                },
                t.version,
                t.verified_name,
                if t.client_cert {
                    ", client certificate presented"
                } else {
                    ""
                }
            ),
        }
    }

    /// Parses `ldap://host[:port][/...]` or `ldaps://…`. For LDAPS the CA
    /// bundle is `LDAPTLS_CACERT` (as for OpenLDAP's tools).
    pub async fn connect_url(url: &str, timeout: Duration) -> Result<Client, ClientError> {
        let (transport, host, port) = parse_url(url)?;
        let tls = TlsSettings {
            ca_file: std::env::var_os("LDAPTLS_CACERT").map(PathBuf::from),
            client_cert: None,
            pin_sha256: None,
        };
        if transport == Transport::Ldaps && tls.ca_file.is_none() {
            return Err(ClientError::TlsSetup(
                "ldaps:// needs the CA certificate in LDAPTLS_CACERT".into(),
            ));
        }
        Client::connect(&host, port, transport, &tls, timeout).await
    }

    /// Connects over TLS to the server whose certificate has SHA-256
    /// `pin`: `ldaps://`, or `ldap://` upgraded with StartTLS (never in
    /// clear).
    pub async fn connect_pinned(
        url: &str,
        pin: [u8; 32],
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let (transport, host, port) = parse_url(url)?;
        let transport = match transport {
            Transport::Ldap => Transport::StartTls,
            other => other,
        };
        let tls = TlsSettings {
            ca_file: None,
            client_cert: None,
            pin_sha256: Some(pin),
        };
        Client::connect(&host, port, transport, &tls, timeout).await
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn set_op_timeout(&mut self, t: Duration) {
        self.op_timeout = t;
    }

    fn msgid(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = if id >= i32::MAX - 1 { 1 } else { id + 1 };
        id
    }

    /// Sends one request and returns the server's response to it (for
    /// operations with a single response: not search).
    pub async fn request(&mut self, step: &str, op: LdapOp) -> Result<LdapOp, ClientError> {
        let id = self.send(step, op).await?;
        self.recv(step, id).await
    }

    async fn send(&mut self, step: &str, op: LdapOp) -> Result<i32, ClientError> {
        self.send_with(step, op, Vec::new()).await
    }

    async fn send_with(
        &mut self,
        step: &str,
        op: LdapOp,
        ctrl: Vec<ldap3_proto::control::LdapControl>,
    ) -> Result<i32, ClientError> {
        let msgid = self.msgid();
        let msg = LdapMsg { msgid, op, ctrl };
        match tokio::time::timeout(self.op_timeout, self.framed.send(msg)).await {
            Err(_) => Err(ClientError::Timeout {
                step: step.into(),
                secs: self.op_timeout.as_secs(),
            }),
            Ok(Err(e)) if peer_gone(&e) => Err(ClientError::Closed { step: step.into() }),
            Ok(Err(e)) => Err(ClientError::Protocol {
                step: step.into(),
                reason: format!("sending: {e}"),
            }),
            Ok(Ok(())) => Ok(msgid),
        }
    }

    /// Sends a search with request controls (a sync request, RFC 4533);
    /// its answers, controls included, come from [`Client::next_message`].
    pub async fn send_search(
        &mut self,
        req: LdapSearchRequest,
        ctrl: Vec<ldap3_proto::control::LdapControl>,
    ) -> Result<i32, ClientError> {
        self.send_with("search", LdapOp::SearchRequest(req), ctrl)
            .await
    }

    /// The next message for `msgid` with its controls; `wait` None waits
    /// as long as the connection lives (a persistent search).
    pub async fn next_message(
        &mut self,
        step: &str,
        msgid: i32,
        wait: Option<Duration>,
    ) -> Result<LdapMsg, ClientError> {
        self.recv_msg(step, msgid, wait).await
    }

    /// Next message for `msgid`; a notice of disconnection (id 0) is an error.
    async fn recv(&mut self, step: &str, msgid: i32) -> Result<LdapOp, ClientError> {
        let wait = Some(self.op_timeout);
        self.recv_msg(step, msgid, wait).await.map(|m| m.op)
    }

    async fn recv_msg(
        &mut self,
        step: &str,
        msgid: i32,
        wait: Option<Duration>,
    ) -> Result<LdapMsg, ClientError> {
        loop {
            let next = match wait {
                Some(w) => tokio::time::timeout(w, self.framed.next())
                    .await
                    .map_err(|_| ClientError::Timeout {
                        step: step.into(),
                        secs: w.as_secs(),
                    })?,
                None => self.framed.next().await,
            };
            let msg = match next {
                None => return Err(ClientError::Closed { step: step.into() }),
                Some(Err(e)) if peer_gone(&e) => {
                    return Err(ClientError::Closed { step: step.into() })
                }
                Some(Err(e)) => {
                    return Err(ClientError::Protocol {
                        step: step.into(),
                        reason: format!("reading: {e}"),
                    })
                }
                Some(Ok(m)) => m,
            };
            if msg.msgid == msgid {
                return Ok(msg);
            }
            if msg.msgid == 0 {
                if let LdapOp::ExtendedResponse(r) = &msg.op {
                    return Err(ClientError::result(
                        &format!("{step} (server disconnected)"),
                        &r.res,
                    ));
                }
            }
            // A stray answer to an earlier, abandoned request: skip it.
        }
    }

    /// Simple bind; the password never appears in errors or logs.
    pub async fn simple_bind(&mut self, dn: &str, password: &str) -> Result<(), ClientError> {
        let id = self
            .send(
                "bind",
                LdapOp::BindRequest(LdapBindRequest {
                    version: 3,
                    dn: dn.to_string(),
                    cred: LdapBindCred::Simple(password.to_string()),
                }),
            )
            .await?;
        match self.recv("bind", id).await? {
            LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success => Ok(()),
            LdapOp::BindResponse(r) => Err(ClientError::Bind {
                dn: dn.to_string(),
                code: r.res.code.clone() as i32,
                name: code_name(&r.res.code),
                message: r.res.message,
            }),
            other => Err(unexpected("bind", &other)),
        }
    }

    /// SASL EXTERNAL bind: the server maps the client certificate presented
    /// during the TLS handshake to an entry.
    pub async fn external_bind(&mut self) -> Result<(), ClientError> {
        if self.tls.as_ref().is_none_or(|t| !t.client_cert) {
            return Err(ClientError::TlsSetup(
                "SASL EXTERNAL needs TLS with a client certificate".into(),
            ));
        }
        let id = self
            .send(
                "bind",
                LdapOp::BindRequest(LdapBindRequest {
                    version: 3,
                    dn: String::new(),
                    cred: LdapBindCred::SASL(SaslCredentials {
                        mechanism: "EXTERNAL".into(),
                        credentials: Vec::new(),
                    }),
                }),
            )
            .await?;
        match self.recv("bind", id).await? {
            LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success => Ok(()),
            LdapOp::BindResponse(r) => Err(ClientError::Bind {
                dn: "SASL EXTERNAL (client certificate)".into(),
                code: r.res.code.clone() as i32,
                name: code_name(&r.res.code),
                message: r.res.message,
            }),
            other => Err(unexpected("bind", &other)),
        }
    }

    /// Extended operation: the response value on success.
    pub async fn extended(
        &mut self,
        step: &str,
        oid: &str,
        value: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        let id = self
            .send(
                step,
                LdapOp::ExtendedRequest(LdapExtendedRequest {
                    name: oid.to_string(),
                    value: Some(value),
                }),
            )
            .await?;
        match self.recv(step, id).await? {
            LdapOp::ExtendedResponse(r) if r.res.code == LdapResultCode::Success => {
                Ok(r.value.unwrap_or_default())
            }
            LdapOp::ExtendedResponse(r) => Err(ClientError::result(step, &r.res)),
            other => Err(unexpected(step, &other)),
        }
    }

    /// Modify that adds `values` to one attribute of `dn`.
    pub async fn modify_add(
        &mut self,
        step: &str,
        dn: &str,
        attr: &str,
        values: Vec<Vec<u8>>,
    ) -> Result<(), ClientError> {
        let id = self
            .send(
                step,
                LdapOp::ModifyRequest(LdapModifyRequest {
                    dn: dn.to_string(),
                    changes: vec![LdapModify {
                        operation: LdapModifyType::Add,
                        modification: LdapPartialAttribute {
                            atype: attr.to_string(),
                            vals: values,
                        },
                    }],
                }),
            )
            .await?;
        match self.recv(step, id).await? {
            LdapOp::ModifyResponse(r) if r.code == LdapResultCode::Success => Ok(()),
            LdapOp::ModifyResponse(r) => Err(ClientError::result(step, &r)),
            other => Err(unexpected(step, &other)),
        }
    }

    /// Subtree search with an equality or presence filter given as
    /// (attribute, Some(value)) / (attribute, None).
    pub async fn search(
        &mut self,
        base: &str,
        filter: (&str, Option<&str>),
        attrs: &[&str],
    ) -> Result<Vec<Entry>, ClientError> {
        let filter = match filter {
            (a, Some(v)) => LdapFilter::Equality(a.to_string(), v.to_string()),
            (a, None) => LdapFilter::Present(a.to_string()),
        };
        self.search_with(base, LdapSearchScope::Subtree, filter, attrs)
            .await
    }

    /// Search with any scope and filter; a base that does not exist is an
    /// error with code 32 (noSuchObject).
    pub async fn search_with(
        &mut self,
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, ClientError> {
        let id = self
            .send(
                "search",
                LdapOp::SearchRequest(LdapSearchRequest {
                    base: base.to_string(),
                    scope,
                    aliases: LdapDerefAliases::Never,
                    sizelimit: 0,
                    timelimit: 0,
                    typesonly: false,
                    filter,
                    attrs: attrs.iter().map(|s| s.to_string()).collect(),
                }),
            )
            .await?;
        let mut out = Vec::new();
        loop {
            match self.recv("search", id).await? {
                LdapOp::SearchResultEntry(e) => out.push(Entry {
                    dn: e.dn,
                    attrs: e
                        .attributes
                        .into_iter()
                        .map(|a| (a.atype, a.vals))
                        .collect(),
                }),
                LdapOp::SearchResultReference(_) => {}
                LdapOp::SearchResultDone(r) if r.code == LdapResultCode::Success => return Ok(out),
                LdapOp::SearchResultDone(r) => return Err(ClientError::result("search", &r)),
                other => return Err(unexpected("search", &other)),
            }
        }
    }

    /// Adds one entry; the server's result code and message on failure.
    pub async fn add(
        &mut self,
        dn: &str,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    ) -> Result<(), ClientError> {
        let id = self
            .send(
                "add",
                LdapOp::AddRequest(LdapAddRequest {
                    dn: dn.to_string(),
                    attributes: attrs
                        .into_iter()
                        .map(|(atype, vals)| LdapAttribute { atype, vals })
                        .collect(),
                }),
            )
            .await?;
        match self.recv("add", id).await? {
            LdapOp::AddResponse(r) if r.code == LdapResultCode::Success => Ok(()),
            LdapOp::AddResponse(r) => Err(ClientError::result(&format!("add {dn}"), &r)),
            other => Err(unexpected("add", &other)),
        }
    }

    /// Deletes one entry; the server's result code and message on failure.
    pub async fn delete(&mut self, dn: &str) -> Result<(), ClientError> {
        let id = self
            .send("delete", LdapOp::DelRequest(dn.to_string()))
            .await?;
        match self.recv("delete", id).await? {
            LdapOp::DelResponse(r) if r.code == LdapResultCode::Success => Ok(()),
            LdapOp::DelResponse(r) => Err(ClientError::result(&format!("delete {dn}"), &r)),
            other => Err(unexpected("delete", &other)),
        }
    }

    /// Polite goodbye; errors do not matter at this point.
    pub async fn unbind(mut self) {
        let msgid = self.msgid();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.framed.send(LdapMsg {
                msgid,
                op: LdapOp::UnbindRequest,
                ctrl: Vec::new(),
            }),
        )
        .await;
    }
}

/// The connection ended under us (the peer stopped or restarted).
fn peer_gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

fn unexpected(step: &str, op: &LdapOp) -> ClientError {
    ClientError::Protocol {
        step: step.into(),
        reason: format!("unexpected response {}", op_kind(op)),
    }
}

fn op_kind(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindResponse(_) => "bind response",
        LdapOp::SearchResultEntry(_) => "search entry",
        LdapOp::SearchResultDone(_) => "search done",
        LdapOp::ExtendedResponse(_) => "extended response",
        LdapOp::IntermediateResponse(_) => "intermediate response",
        _ => "message",
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
/// `ldap://host[:port][/...]` or `ldaps://…`: transport, host, port.
fn parse_url(url: &str) -> Result<(Transport, String, u16), ClientError> {
    let (transport, rest, default_port) = if let Some(r) = url.strip_prefix("ldap://") {
        (Transport::Ldap, r, 389)
    } else if let Some(r) = url.strip_prefix("ldaps://") {
        (Transport::Ldaps, r, 636)
    } else {
        return Err(ClientError::Connect {
            addr: url.to_string(),
            reason: "expected an ldap:// or ldaps:// URL".into(),
        });
    };
    let hostport = rest.split('/').next().unwrap_or_default();
    let (host, port) =
        split_host_port(hostport, default_port).ok_or_else(|| ClientError::Connect {
            addr: url.to_string(),
            reason: "bad host:port".into(),
        })?;
    Ok((transport, host, port))
}

pub fn split_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => Some((s.to_string(), default_port)),
        None if s.is_empty() => None,
        None => Some((s.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a:1", 389), Some(("a".into(), 1)));
        assert_eq!(split_host_port("a", 389), Some(("a".into(), 389)));
        assert_eq!(split_host_port("[::1]:5", 389), Some(("::1".into(), 5)));
        assert_eq!(split_host_port("[::1]", 389), Some(("::1".into(), 389)));
        assert_eq!(split_host_port("", 389), None);
        assert_eq!(split_host_port("a:x", 389), None);
    }

    #[tokio::test]
    async fn tls_without_a_ca_is_refused_before_connecting() {
        let e = Client::connect(
            "127.0.0.1",
            1,
            Transport::Ldaps,
            &TlsSettings::default(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("no CA bundle"), "{e}");
    }

    #[tokio::test]
    async fn connect_failure_names_the_step() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Client::connect(
            "127.0.0.1",
            port,
            Transport::Ldap,
            &TlsSettings::default(),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().starts_with("connect to 127.0.0.1:"), "{e}");
    }
}
