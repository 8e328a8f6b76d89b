//! Transport security: rustls (ring provider only, TLS 1.2 and 1.3), the
//! generated instance CA, certificate reload without restart, client
//! certificates and readable handshake errors.

use crate::auth::PeerCert;
use crate::config::{ClientAuth, TlsConfig};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("generating certificates: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Installs ring as the process-wide rustls provider. Exactly one provider
/// is compiled in; installing it explicitly keeps rustls from guessing.
pub fn install_provider() {
    // Err only means it is installed already (a second call).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Names of the files of the generated instance CA, in `<data_dir>/tls/`.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server.key";

/// Which files the server reads.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundle for client certificates (None: client certificates are not asked for).
    pub client_ca: Option<PathBuf>,
    /// The generated CA certificate, when the instance made one.
    pub generated_ca: Option<PathBuf>,
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(buf.get(..end)?).trim().to_string();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then_some(name)
}

/// Writes `data` to `path` with mode 0600 (created that way, never widened).
fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_err(path, e))?;
    f.write_all(data).map_err(|e| file_err(path, e))?;
    f.sync_all().map_err(|e| file_err(path, e))
}

fn write_public(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    fs::write(path, data).map_err(|e| file_err(path, e))
}

/// Logs a warning when a private key file is readable by group or others.
pub fn check_key_permissions(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "private key {} is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
}

fn gen_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::Generate(e.to_string())
}

fn ca_params() -> Result<rcgen::CertificateParams, TlsError> {
    use rcgen::{BasicConstraints, DnType, IsCa, KeyUsagePurpose};
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ferrodir");
    dn.push(
        DnType::CommonName,
        format!(
            "ferrodir instance CA {}",
            hostname().unwrap_or_else(|| "localhost".into())
        ),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
    Ok(p)
}

fn server_params() -> Result<rcgen::CertificateParams, TlsError> {
    use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose};
    let host = hostname();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Some(h) = &host {
        if h != "localhost" {
            names.push(h.clone());
        }
    }
    let mut p = rcgen::CertificateParams::new(names).map_err(gen_err)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ferrodir");
    dn.push(
        DnType::CommonName,
        host.unwrap_or_else(|| "localhost".into()),
    );
    p.distinguished_name = dn;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    // ClientAuth too: replicas present this certificate for SSLCLIENTAUTH agreements.
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(825);
    Ok(p)
}

/// Makes sure `<dir>` holds an instance CA and a server certificate issued
/// by it; creates whatever is missing. Returns true when something was made.
pub fn ensure_generated(dir: &Path) -> Result<bool, TlsError> {
    let (ca_cert, ca_key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let (srv_cert, srv_key) = (dir.join(SERVER_CERT), dir.join(SERVER_KEY));
    if srv_cert.exists() && srv_key.exists() {
        return Ok(false);
    }
    fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let ca_params = ca_params()?;
    let ca_key_pair = if ca_cert.exists() && ca_key.exists() {
        // Keep the CA clients already trust; issue a new server certificate.
        let pem = fs::read_to_string(&ca_key).map_err(|e| file_err(&ca_key, e))?;
        rcgen::KeyPair::from_pem(&pem).map_err(|e| file_err(&ca_key, e))?
    } else {
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        let cert = ca_params.self_signed(&key).map_err(gen_err)?;
        write_private(&ca_key, key.serialize_pem().as_bytes())?;
        write_public(&ca_cert, cert.pem().as_bytes())?;
        key
    };
    // The issuer is named by the stored CA certificate's subject.
    let issuer_dn = read_ca_subject(&ca_cert)?;
    let mut issuer_params = ca_params;
    issuer_params.distinguished_name = issuer_dn;
    let issuer = rcgen::Issuer::new(issuer_params, &ca_key_pair);
    let key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let cert = server_params()?.signed_by(&key, &issuer).map_err(gen_err)?;
    write_private(&srv_key, key.serialize_pem().as_bytes())?;
    // The chain: server certificate, then the CA.
    let ca_pem = fs::read_to_string(&ca_cert).map_err(|e| file_err(&ca_cert, e))?;
    write_public(&srv_cert, format!("{}{}", cert.pem(), ca_pem).as_bytes())?;
    Ok(true)
}

/// The subject of a PEM CA certificate as rcgen's distinguished name.
fn read_ca_subject(path: &Path) -> Result<rcgen::DistinguishedName, TlsError> {
    let der = CertificateDer::from_pem_file(path).map_err(|e| file_err(path, e))?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| file_err(path, e))?;
    let mut dn = rcgen::DistinguishedName::new();
    for rdn in cert.subject().iter() {
        for atv in rdn.iter() {
            let oid: Vec<u64> = atv
                .attr_type()
                .iter()
                .map(|it| it.collect())
                .unwrap_or_default();
            let value = atv_text(atv).ok_or_else(|| file_err(path, "unreadable subject"))?;
            dn.push(rcgen::DnType::from_oid(&oid), value);
        }
    }
    Ok(dn)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate (PEM) found"));
    }
    Ok(certs)
}

fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert)?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| file_err(key, e))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        file_err(
            cert,
            format!(
                "the certificate does not match the key in {}: {e}",
                key.display()
            ),
        )
    })?;
    Ok(ck)
}

/// Serves whichever certificate was loaded last; handshakes in progress keep
/// the one they started with.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|g| g.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp(Option<(SystemTime, u64)>);

fn stamp(path: &Path) -> Stamp {
    Stamp(
        fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len()))),
    )
}

/// The TLS side of the server: one per process, shared by every listener.
pub struct TlsContext {
    files: TlsFiles,
    client_auth: ClientAuth,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    config: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Vec<Stamp>>,
    reload_interval: u64,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("files", &self.files)
            .finish()
    }
}

fn build_config(
    provider: &Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    client_auth: ClientAuth,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (client_auth, client_ca) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c).map_err(|e| file_err(ca, e))?;
            }
            let vb = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let vb = if mode == ClientAuth::Optional {
                vb.allow_unauthenticated()
            } else {
                vb
            };
            builder.with_client_cert_verifier(vb.build().map_err(|e| file_err(ca, e))?)
        }
    };
    let mut cfg = builder.with_cert_resolver(resolver);
    cfg.ignore_client_order = true;
    Ok(cfg)
}

impl TlsContext {
    /// Reads (or first generates) the certificates named by `cfg`.
    pub fn setup(cfg: &TlsConfig, data_dir: &Path) -> Result<Arc<TlsContext>, TlsError> {
        let tls_dir = data_dir.join("tls");
        let files = match (&cfg.cert_file, &cfg.key_file) {
            (Some(c), Some(k)) => {
                let generated = tls_dir.join(CA_CERT);
                TlsFiles {
                    cert: c.clone(),
                    key: k.clone(),
                    client_ca: cfg
                        .ca_file
                        .clone()
                        .or_else(|| generated.exists().then_some(generated.clone())),
                    generated_ca: generated.exists().then_some(generated),
                }
            }
            (None, None) => {
                if ensure_generated(&tls_dir)? {
                    tracing::info!(
                        "generated an instance CA and a server certificate in {}",
                        tls_dir.display()
                    );
                }
                let ca = tls_dir.join(CA_CERT);
                check_key_permissions(&tls_dir.join(CA_KEY));
                TlsFiles {
                    cert: tls_dir.join(SERVER_CERT),
                    key: tls_dir.join(SERVER_KEY),
                    client_ca: Some(cfg.ca_file.clone().unwrap_or_else(|| ca.clone())),
                    generated_ca: Some(ca),
                }
            }
            _ => {
                return Err(TlsError::Config(
                    "[tls] cert_file and key_file go together: give both or neither".into(),
                ))
            }
        };
        if cfg.client_auth != ClientAuth::None && files.client_ca.is_none() {
            if cfg.client_auth == ClientAuth::Required {
                return Err(TlsError::Config(
                    "client_auth = \"required\" needs [tls] ca_file (no instance CA exists)".into(),
                ));
            }
            tracing::warn!(
                "client certificates are not asked for: no [tls] ca_file and no instance CA"
            );
        }
        check_key_permissions(&files.key);
        let provider = provider();
        let ck = load_certified_key(&files.cert, &files.key, &provider)?;
        let resolver = Arc::new(CertResolver {
            current: RwLock::new(Arc::new(ck)),
        });
        let config = build_config(
            &provider,
            resolver.clone(),
            cfg.client_auth,
            files.client_ca.as_deref(),
        )?;
        let ctx = TlsContext {
            stamps: Mutex::new(Vec::new()),
            files,
            client_auth: cfg.client_auth,
            provider,
            resolver,
            config: RwLock::new(Arc::new(config)),
            reload_interval: cfg.reload_interval,
        };
        ctx.record_stamps();
        Ok(Arc::new(ctx))
    }

    fn watched(&self) -> Vec<&Path> {
        let mut v = vec![self.files.cert.as_path(), self.files.key.as_path()];
        if let Some(ca) = &self.files.client_ca {
            v.push(ca);
        }
        v
    }

    fn record_stamps(&self) -> bool {
        let now: Vec<Stamp> = self.watched().into_iter().map(stamp).collect();
        match self.stamps.lock() {
            Ok(mut s) => {
                let changed = *s != now;
                *s = now;
                changed
            }
            Err(_) => false,
        }
    }

    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        let cfg = self.config.read().ok()?.clone();
        Some(TlsAcceptor::from(cfg))
    }

    /// Whether client certificates are asked for (SASL EXTERNAL offered).
    pub fn client_certs(&self) -> bool {
        self.client_auth != ClientAuth::None && self.files.client_ca.is_some()
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// For the start-up line of each TLS listener.
    pub fn summary(&self) -> String {
        let auth = if self.client_certs() {
            match self.client_auth {
                ClientAuth::None => "none",
                ClientAuth::Optional => "optional",
                ClientAuth::Required => "required",
            }
        } else {
            "none"
        };
        format!(
            "tls=1.2+1.3 cert={} client_auth={auth}",
            self.files.cert.display()
        )
    }

    /// Reads the certificate, key and client CA files again. On failure the
    /// previous ones stay in use. Existing connections are not affected.
    /// SHA-256 of the certificate served now (the first of its chain):
    /// what a synchronization key pins.
    pub fn certificate_sha256(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        let current = self.resolver.current.read().ok()?.clone();
        let leaf = current.cert.first()?;
        Some(sha2::Sha256::digest(leaf.as_ref()).into())
    }

    pub fn reload(&self) -> Result<(), TlsError> {
        let ck = load_certified_key(&self.files.cert, &self.files.key, &self.provider)?;
        check_key_permissions(&self.files.key);
        let ck = Arc::new(ck);
        let config = build_config(
            &self.provider,
            self.resolver.clone(),
            self.client_auth,
            self.files.client_ca.as_deref(),
        )?;
        if let Ok(mut cur) = self.resolver.current.write() {
            *cur = ck;
        }
        if let Ok(mut cur) = self.config.write() {
            *cur = Arc::new(config);
        }
        Ok(())
    }

    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => tracing::info!(
                cert = %self.files.cert.display(),
                "TLS certificates reloaded ({why})"
            ),
            Err(e) => {
                tracing::warn!("TLS reload ({why}) failed, keeping the previous certificates: {e}")
            }
        }
    }

    /// Reloads on SIGHUP and whenever a watched file changes. Runs forever.
    pub async fn watch(self: Arc<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).ok();
        let period = Duration::from_secs(self.reload_interval.max(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => {
                    self.record_stamps();
                    self.reload_logged("SIGHUP");
                }
                _ = tick.tick(), if self.reload_interval > 0 => {
                    if self.record_stamps() {
                        self.reload_logged("files changed");
                    }
                }
            }
        }
    }
}

fn atv_text(atv: &x509_parser::x509::AttributeTypeAndValue<'_>) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::Tag;
    if let Ok(s) = atv.as_str() {
        return Some(s.to_string());
    }
    let data = atv.as_slice();
    match atv.attr_value().tag() {
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|c| match c {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => 0xFFFD,
                })
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::T61String | Tag::VisibleString => Some(data.iter().map(|&b| b as char).collect()),
        _ => None,
    }
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "givenName",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// Reads the subject of a DER certificate.
pub fn peer_cert(der: &[u8]) -> PeerCert {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return PeerCert::default();
    };
    let mut rdns = Vec::new();
    let mut cn = None;
    let mut readable = true;
    for rdn in cert.subject().iter() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let Some(value) = atv_text(atv) else {
                readable = false;
                continue;
            };
            if oid == "2.5.4.3" && cn.is_none() {
                cn = Some(value.clone());
            }
            let name = short_name(&oid).map(str::to_string).unwrap_or(oid);
            let mut part = format!("{name}=");
            crate::model::escape_value_into(value.as_bytes(), &mut part);
            parts.push(part);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    PeerCert {
        subject: (readable && !rdns.is_empty()).then(|| rdns.join(",")),
        cn,
    }
}

/// A readable reason for a failed handshake (or a TLS error later on).
pub fn describe_handshake_error(e: &std::io::Error) -> String {
    use rustls::{CertificateError, Error as E};
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the client closed the connection without TLS close_notify (did it reject the server certificate? clients need the CA: LDAPTLS_CACERT)".into()
            }
            _ => e.to_string(),
        };
    };
    match inner {
        E::NoCertificatesPresented => "no client certificate presented (client_auth = required)".into(),
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "client certificate from an unknown CA (not in the client CA bundle)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "client certificate expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "client certificate not valid yet".into()
            }
            CertificateError::Revoked => "client certificate revoked".into(),
            CertificateError::BadSignature => "client certificate has a bad signature".into(),
            other => format!("invalid client certificate: {other:?}"),
        },
        E::PeerIncompatible(p) => format!(
            "client offers no protocol version or cipher the server accepts (TLS 1.2 and 1.3 only): {p:?}"
        ),
        E::AlertReceived(a) => {
            let what = match a {
                rustls::AlertDescription::UnknownCA => " (the client does not trust the server's CA; give it ca.pem)",
                rustls::AlertDescription::BadCertificate => " (the client rejected the server certificate)",
                rustls::AlertDescription::CertificateExpired => " (the client says the server certificate expired)",
                rustls::AlertDescription::ProtocolVersion => " (protocol version)",
                _ => "",
            };
            format!("the client sent alert {a:?}{what}")
        }
        E::InvalidMessage(m) => format!("not a TLS handshake: {m:?}"),
        E::PeerMisbehaved(m) => format!("client misbehaved: {m:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_a_matching_server_certificate() {
        install_provider();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        assert!(ensure_generated(&dir).unwrap());
        assert!(!ensure_generated(&dir).unwrap());
        for key in [CA_KEY, SERVER_KEY] {
            let mode = fs::metadata(dir.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let ck =
            load_certified_key(&dir.join(SERVER_CERT), &dir.join(SERVER_KEY), &provider()).unwrap();
        assert_eq!(ck.cert.len(), 2);
        // A lost server certificate is reissued by the same CA.
        let ca_before = fs::read(dir.join(CA_CERT)).unwrap();
        fs::remove_file(dir.join(SERVER_CERT)).unwrap();
        assert!(ensure_generated(&dir).unwrap());
        assert_eq!(fs::read(dir.join(CA_CERT)).unwrap(), ca_before);
        let ck =
            load_certified_key(&dir.join(SERVER_CERT), &dir.join(SERVER_KEY), &provider()).unwrap();
        let leaf = peer_cert(ck.cert[0].as_ref());
        assert!(leaf.subject.unwrap().contains("O=ferrodir"));
        // The generated chain verifies against the generated CA.
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.join(CA_CERT)).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        for name in ["localhost", "127.0.0.1", "::1"] {
            verifier
                .verify_server_cert(
                    &ck.cert[0],
                    &ck.cert[1..],
                    &rustls_pki_types::ServerName::try_from(name).unwrap(),
                    &[],
                    rustls_pki_types::UnixTime::now(),
                )
                .unwrap();
        }
    }

    #[test]
    fn subject_is_rfc4514_most_specific_first() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        // rcgen keeps one value per type; repeated DCs are covered by tests/tls.rs.
        dn.push(
            rcgen::DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "example",
        );
        dn.push(rcgen::DnType::OrganizationalUnitName, "people");
        dn.push(rcgen::DnType::CommonName, "Alice, Jr.");
        p.distinguished_name = dn;
        let cert = p.self_signed(&key).unwrap();
        let pc = peer_cert(cert.der());
        assert_eq!(
            pc.subject.as_deref(),
            Some("CN=Alice\\, Jr.,OU=people,DC=example")
        );
        assert_eq!(pc.cn.as_deref(), Some("Alice, Jr."));
    }

    #[test]
    fn world_readable_key_is_detected_and_generated_keys_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("k");
        write_private(&p, b"x").unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
