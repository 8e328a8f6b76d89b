//! Transport security against the real binary: LDAPS and StartTLS with the
//! generated instance CA, trust failures, protocol versions, client
//! certificates with SASL EXTERNAL, certificate reload and StartTLS rules.
//! OpenLDAP's clients (GnuTLS) and the openssl CLI are the other side.

mod common;

use bytes::BytesMut;
use common::*;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapExtendedRequest, LdapMsg, LdapOp, LdapResultCode,
};
use ldap3_proto::LdapCodec;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::codec::{Decoder, Encoder};

const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
const ALICE: &str = "uid=alice,ou=people,dc=example,dc=com";

/// A server with an LDAPS listener besides the plain one.
struct TlsServer {
    srv: Server,
    ldaps_port: u16,
    _cfg: Option<tempfile::TempDir>,
}

impl TlsServer {
    fn start(config: Option<&str>) -> TlsServer {
        let ldaps_port = free_port();
        let addr = format!("127.0.0.1:{ldaps_port}");
        let mut args = vec!["--ldaps".to_string(), addr];
        let cfg_dir = config.map(|text| {
            let d = tempfile::tempdir().expect("tempdir");
            let p = d.path().join("ferrodir.toml");
            std::fs::write(&p, text).expect("write config");
            args.push("--config".into());
            args.push(p.display().to_string());
            d
        });
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let srv = Server::start_with(&refs);
        // The ports are bound before the certificates exist: wait for the listeners.
        wait_for(
            || srv.log_text().contains("listening for LDAPS"),
            "the LDAPS listener",
        );
        TlsServer {
            srv,
            ldaps_port,
            _cfg: cfg_dir,
        }
    }

    fn ldaps(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    fn tls_dir(&self) -> PathBuf {
        self.srv.data.join("tls")
    }

    fn ca(&self) -> PathBuf {
        self.tls_dir().join("ca.pem")
    }

    fn pid(&self) -> u32 {
        self.srv
            .child
            .as_ref()
            .map(|c| c.id())
            .expect("server running")
    }
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Runs an OpenLDAP client with the given TLS environment and nothing from
/// ldap.conf or ~/.ldaprc (LDAPNOINIT would also ignore the LDAPTLS_* variables).
fn ldap_tool(name: &str, args: &[&str], env: &[(&str, &Path)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(tool(name));
    cmd.args(args)
        .env("LDAPCONF", "/nonexistent/ldap.conf")
        .env("LDAPRC", "/nonexistent/ldaprc")
        .env("LDAPTLS_REQCERT", "demand")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    feed_and_wait(child, stdin)
}

fn openssl() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join("openssl");
        if p.exists() {
            return p;
        }
    }
    panic!("openssl not found: install the OpenSSL command-line tool (apt-get install -y openssl)");
}

fn run_openssl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(openssl())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running openssl");
    if let Some(mut sin) = child.stdin.take() {
        let _ = sin.write_all(stdin.unwrap_or("").as_bytes());
    }
    child.wait_with_output().expect("wait openssl")
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        out(o),
        err(o)
    );
}

/// Issues a certificate signed by the instance CA (openssl: rcgen cannot
/// repeat an attribute type such as DC in a subject).
fn issue_cert(
    ca_dir: &Path,
    out_dir: &Path,
    name: &str,
    subject: &str,
    extensions: &str,
) -> (PathBuf, PathBuf) {
    let key = out_dir.join(format!("{name}.key"));
    let csr = out_dir.join(format!("{name}.csr"));
    let cert = out_dir.join(format!("{name}.pem"));
    let ext = out_dir.join(format!("{name}.ext"));
    std::fs::write(&ext, extensions).expect("ext file");
    let o = run_openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-subj",
            subject,
        ],
        None,
    );
    ok(&o, "openssl req");
    let serial = format!(
        "0x{:x}",
        std::process::id() as u64 * 1_000_003 + name.len() as u64 + now_nanos()
    );
    let o = run_openssl(
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca_dir.join("ca.pem").to_str().unwrap(),
            "-CAkey",
            ca_dir.join("ca.key").to_str().unwrap(),
            "-set_serial",
            &serial,
            "-days",
            "30",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
        None,
    );
    ok(&o, "openssl x509 -req");
    (cert, key)
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

const CLIENT_EXT: &str =
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";

fn load_sample(s: &TlsServer) {
    let o = ldapadd_root(&s.srv.url(), SAMPLE);
    ok(&o, "loading the sample entries");
}

// ---------------------------------------------------------------- raw LDAP

/// LDAP messages over any byte stream (plain TCP or rustls).
struct Wire<S: Read + Write> {
    io: S,
    codec: LdapCodec,
    buf: BytesMut,
}

impl<S: Read + Write> Wire<S> {
    fn new(io: S) -> Wire<S> {
        Wire {
            io,
            codec: LdapCodec::new(Some(16 << 20), None),
            buf: BytesMut::new(),
        }
    }

    fn send(&mut self, m: LdapMsg) {
        let mut out = BytesMut::new();
        self.codec.encode(m, &mut out).expect("encode");
        self.io.write_all(&out).expect("write");
        self.io.flush().expect("flush");
    }

    fn recv(&mut self) -> LdapMsg {
        loop {
            if let Some(m) = self.codec.decode(&mut self.buf).expect("decode") {
                return m;
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed by the server");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn extended(&mut self, msgid: i32, oid: &str) -> (LdapResultCode, String, Option<Vec<u8>>) {
        self.send(LdapMsg::new(
            msgid,
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: oid.into(),
                value: None,
            }),
        ));
        let m = self.recv();
        assert_eq!(m.msgid, msgid);
        match m.op {
            LdapOp::ExtendedResponse(r) => (r.res.code, r.res.message, r.value),
            other => panic!("expected an extended response, got {other:?}"),
        }
    }

    fn whoami(&mut self, msgid: i32) -> String {
        let (code, msg, value) = self.extended(msgid, OID_WHOAMI);
        assert_eq!(code, LdapResultCode::Success, "{msg}");
        String::from_utf8(value.unwrap_or_default()).expect("utf8")
    }

    fn sasl_external(&mut self, msgid: i32) -> LdapResultCode {
        self.send(LdapMsg::new(
            msgid,
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: String::new(),
                cred: LdapBindCred::SASL(ldap3_proto::proto::SaslCredentials {
                    mechanism: "EXTERNAL".into(),
                    credentials: Vec::new(),
                }),
            }),
        ));
        match self.recv().op {
            LdapOp::BindResponse(r) => r.res.code,
            other => panic!("expected a bind response, got {other:?}"),
        }
    }

    fn simple_bind(&mut self, msgid: i32, dn: &str, pw: &str) -> LdapResultCode {
        self.send(LdapMsg::new(
            msgid,
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: dn.into(),
                cred: LdapBindCred::Simple(pw.into()),
            }),
        ));
        match self.recv().op {
            LdapOp::BindResponse(r) => r.res.code,
            other => panic!("expected a bind response, got {other:?}"),
        }
    }
}

fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("ca.pem") {
        roots.add(c.expect("ca cert")).expect("add root");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_over(tcp: TcpStream, ca: &Path) -> TlsConn {
    tls_over_with(tcp, client_config(ca))
}

fn tls_over_with(tcp: TcpStream, config: Arc<rustls::ClientConfig>) -> TlsConn {
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("TLS handshake");
    }
    s
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

fn peer_leaf(s: &TlsConn) -> Vec<u8> {
    s.conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .expect("server certificate")
}

fn pem_leaf(path: &Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(path)
        .expect("pem")
        .next()
        .expect("a certificate")
        .expect("valid pem")
        .as_ref()
        .to_vec()
}

// ------------------------------------------------------------------- tests

#[test]
fn ldaps_and_starttls_with_the_generated_ca() {
    let s = TlsServer::start(None);
    let tls = s.tls_dir();
    for f in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert!(tls.join(f).exists(), "{f} was not generated");
    }
    use std::os::unix::fs::PermissionsExt;
    for f in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(tls.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f} must be private");
    }
    // The listeners log from tasks of their own, in either order.
    wait_for(
        || {
            let log = s.srv.log_text();
            log.contains("listening for LDAPS") && log.contains("listening for LDAP starttls")
        },
        "both listeners to log",
    );
    let log = s.srv.log_text();
    assert!(
        log.contains("LDAPTLS_CACERT="),
        "the log names the CA:\n{log}"
    );
    assert!(log.contains("listening for LDAPS tls=1.2+1.3"), "{log}");
    assert!(
        log.contains("listening for LDAP starttls=available"),
        "{log}"
    );

    let ca = s.ca();
    let env = [("LDAPTLS_CACERT", ca.as_path())];
    let pw = root_password();
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &s.ldaps(),
            "-D",
            ROOT_DN,
            "-w",
            &pw,
            "-LLL",
            "-b",
            SUFFIX,
            "-s",
            "base",
            "dn",
        ],
        &env,
        None,
    );
    ok(&o, "ldapsearch over LDAPS");
    assert!(out(&o).contains("dn: dc=example,dc=com"), "{}", out(&o));

    // By host name too: the certificate names localhost.
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &format!("ldaps://localhost:{}", s.ldaps_port),
            "-LLL",
            "-b",
            "",
            "-s",
            "base",
            "vendorName",
        ],
        &env,
        None,
    );
    ok(&o, "ldapsearch over LDAPS to localhost");

    // -ZZ: StartTLS required, then a password bind on the upgraded connection.
    let o = ldap_tool(
        "ldapwhoami",
        &["-ZZ", "-x", "-H", &s.srv.url(), "-D", ROOT_DN, "-w", &pw],
        &env,
        None,
    );
    ok(&o, "ldapwhoami -ZZ");
    assert!(out(&o).contains("dn:cn=Directory Manager"), "{}", out(&o));

    // The root DSE advertises StartTLS and (client_auth = optional) SASL EXTERNAL.
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &s.srv.url(),
            "-LLL",
            "-b",
            "",
            "-s",
            "base",
            "supportedExtension",
            "supportedSASLMechanisms",
        ],
        &[],
        None,
    );
    ok(&o, "root DSE");
    assert!(
        out(&o).contains(&format!("supportedExtension: {OID_STARTTLS}")),
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains("supportedSASLMechanisms: EXTERNAL"),
        "{}",
        out(&o)
    );
    assert!(!s.srv.log_text().contains("panicked"));
}

#[test]
fn untrusted_ca_and_old_protocol_versions_are_refused() {
    let s = TlsServer::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other-ca.pem");
    let o = run_openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            tmp.path().join("other.key").to_str().unwrap(),
            "-out",
            other.to_str().unwrap(),
            "-subj",
            "/CN=some other CA",
            "-days",
            "2",
        ],
        None,
    );
    ok(&o, "making another CA");
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &s.ldaps(),
            "-LLL",
            "-b",
            "",
            "-s",
            "base",
            "vendorName",
        ],
        &[("LDAPTLS_CACERT", other.as_path())],
        None,
    );
    assert!(
        !o.status.success(),
        "a client trusting another CA must fail: {}",
        out(&o)
    );
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-ZZ",
            "-x",
            "-H",
            &s.srv.url(),
            "-LLL",
            "-b",
            "",
            "-s",
            "base",
            "vendorName",
        ],
        &[("LDAPTLS_CACERT", other.as_path())],
        None,
    );
    assert!(
        !o.status.success(),
        "StartTLS with another CA must fail: {}",
        out(&o)
    );

    // TLS 1.1 (and lower) is refused by the server; TLS 1.2 works.
    let connect = format!("127.0.0.1:{}", s.ldaps_port);
    let o = run_openssl(
        &[
            "s_client",
            "-connect",
            &connect,
            "-tls1_1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ],
        Some(""),
    );
    let text = format!("{}{}", out(&o), err(&o));
    assert!(
        text.contains("Cipher is (NONE)") && !text.contains("TLSv1.1, Cipher is"),
        "TLS 1.1 was negotiated:\n{text}"
    );
    wait_for(
        || s.srv.log_text().contains("TLS 1.2 and 1.3 only"),
        "the server to log the refused TLS 1.1 handshake",
    );
    let log = s.srv.log_text();
    assert!(
        log.contains("TLS handshake failed from 127.0.0.1:")
            && log.contains("TLS 1.2 and 1.3 only"),
        "the handshake failure names the peer and the reason:\n{log}"
    );
    // openssl prints "Protocol: TLSv1.2" even for a failed handshake, so
    // the version that was really negotiated comes from an in-process client
    // limited to one version.
    use rustls::ProtocolVersion;
    for (version, want) in [
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let tls = tls_over_with(
            self::connect(s.ldaps_port),
            client_config_for(&s.ca(), version),
        );
        assert_eq!(
            tls.conn.protocol_version(),
            Some(want),
            "{want:?} must work"
        );
    }
}

/// A client configuration that offers one protocol version only.
fn client_config_for(
    ca: &Path,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("ca.pem") {
        roots.add(c.expect("ca cert")).expect("add root");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[test]
fn sasl_external_maps_client_certificates_to_entries() {
    let s = TlsServer::start(Some("[tls]\ncert_map_attribute = \"uid\"\n"));
    load_sample(&s);
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = issue_cert(
        &s.tls_dir(),
        tmp.path(),
        "alice",
        "/DC=com/DC=example/OU=people/UID=alice",
        CLIENT_EXT,
    );
    let ca = s.ca();
    let env = [
        ("LDAPTLS_CACERT", ca.as_path()),
        ("LDAPTLS_CERT", cert.as_path()),
        ("LDAPTLS_KEY", key.as_path()),
    ];
    // Exact subject DN match, over LDAPS and over StartTLS.
    let o = ldap_tool(
        "ldapwhoami",
        &["-Y", "EXTERNAL", "-H", &s.ldaps()],
        &env,
        None,
    );
    ok(&o, "ldapwhoami -Y EXTERNAL over LDAPS");
    assert!(out(&o).contains(&format!("dn:{ALICE}")), "{}", out(&o));
    let o = ldap_tool(
        "ldapwhoami",
        &["-ZZ", "-Y", "EXTERNAL", "-H", &s.srv.url()],
        &env,
        None,
    );
    ok(&o, "ldapwhoami -ZZ -Y EXTERNAL");
    assert!(out(&o).contains(&format!("dn:{ALICE}")), "{}", out(&o));
    // The bound identity has alice's rights: she reads her own entry.
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-Y",
            "EXTERNAL",
            "-H",
            &s.ldaps(),
            "-LLL",
            "-b",
            ALICE,
            "-s",
            "base",
            "uid",
        ],
        &env,
        None,
    );
    ok(&o, "search as alice via EXTERNAL");
    assert!(out(&o).contains("uid: alice"), "{}", out(&o));

    // No entry has the DN CN=bob: cert_map_attribute maps the CN to uid=bob.
    let (bcert, bkey) = issue_cert(
        &s.tls_dir(),
        tmp.path(),
        "bob",
        "/O=ferrodir tests/CN=bob",
        CLIENT_EXT,
    );
    let benv = [
        ("LDAPTLS_CACERT", ca.as_path()),
        ("LDAPTLS_CERT", bcert.as_path()),
        ("LDAPTLS_KEY", bkey.as_path()),
    ];
    let o = ldap_tool(
        "ldapwhoami",
        &["-Y", "EXTERNAL", "-H", &s.ldaps()],
        &benv,
        None,
    );
    ok(&o, "ldapwhoami -Y EXTERNAL mapped by CN");
    assert!(
        out(&o).contains("dn:uid=bob,ou=people,dc=example,dc=com"),
        "{}",
        out(&o)
    );

    // A certificate that maps to nothing is invalidCredentials (49).
    let (ncert, nkey) = issue_cert(&s.tls_dir(), tmp.path(), "nobody", "/CN=nobody", CLIENT_EXT);
    let nenv = [
        ("LDAPTLS_CACERT", ca.as_path()),
        ("LDAPTLS_CERT", ncert.as_path()),
        ("LDAPTLS_KEY", nkey.as_path()),
    ];
    let o = ldap_tool(
        "ldapwhoami",
        &["-Y", "EXTERNAL", "-H", &s.ldaps()],
        &nenv,
        None,
    );
    assert_eq!(code(&o), 49, "{}{}", out(&o), err(&o));

    // Without a client certificate EXTERNAL is inappropriateAuthentication
    // (48); OpenLDAP's client does not even try, so send the bind by hand.
    let mut w = Wire::new(tls_over(connect(s.ldaps_port), &ca));
    assert_eq!(
        w.sasl_external(1),
        LdapResultCode::InappropriateAuthentication
    );
    let mut w = Wire::new(connect(s.srv.port));
    assert_eq!(
        w.sasl_external(1),
        LdapResultCode::InappropriateAuthentication
    );
    assert_eq!(w.whoami(2), "");

    // An authorization identity other than the certificate's is refused.
    let o = ldap_tool(
        "ldapwhoami",
        &[
            "-Y",
            "EXTERNAL",
            "-X",
            "dn:uid=bob,ou=people,dc=example,dc=com",
            "-H",
            &s.ldaps(),
        ],
        &env,
        None,
    );
    assert!(
        !o.status.success(),
        "proxy authorization must be refused: {}",
        out(&o)
    );
}

#[test]
fn required_client_certificates() {
    let s = TlsServer::start(Some("[tls]\nclient_auth = \"required\"\n"));
    load_sample(&s);
    let ca = s.ca();
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &s.ldaps(),
            "-LLL",
            "-b",
            "",
            "-s",
            "base",
            "vendorName",
        ],
        &[("LDAPTLS_CACERT", ca.as_path())],
        None,
    );
    assert!(
        !o.status.success(),
        "no client certificate must fail: {}",
        out(&o)
    );
    wait_for(
        || s.srv.log_text().contains("no client certificate presented"),
        "the server to log the missing client certificate",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = issue_cert(
        &s.tls_dir(),
        tmp.path(),
        "alice",
        "/DC=com/DC=example/OU=people/UID=alice",
        CLIENT_EXT,
    );
    let env = [
        ("LDAPTLS_CACERT", ca.as_path()),
        ("LDAPTLS_CERT", cert.as_path()),
        ("LDAPTLS_KEY", key.as_path()),
    ];
    let o = ldap_tool(
        "ldapwhoami",
        &["-Y", "EXTERNAL", "-H", &s.ldaps()],
        &env,
        None,
    );
    ok(&o, "ldapwhoami with a required client certificate");
    assert!(out(&o).contains(&format!("dn:{ALICE}")), "{}", out(&o));
    assert!(s.srv.log_text().contains("client_auth=required"));
}

#[test]
fn certificates_reload_on_sighup_without_dropping_connections() {
    let s = TlsServer::start(Some("[tls]\nreload_interval = 0\n"));
    let ca = s.ca();
    let tls = s.tls_dir();

    // An established connection before the reload.
    let mut old = Wire::new(tls_over(connect(s.ldaps_port), &ca));
    let before = peer_leaf(&old.io);
    assert_eq!(before, pem_leaf(&tls.join("server.pem")));
    assert_eq!(old.whoami(1), "");

    // A new certificate (new key, new serial) from the same CA, swapped in atomically.
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = issue_cert(
        &tls,
        tmp.path(),
        "server2",
        "/O=ferrodir/CN=reloaded",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    );
    std::fs::copy(&key, tls.join("server.key.new")).unwrap();
    std::fs::copy(&cert, tls.join("server.pem.new")).unwrap();
    std::fs::rename(tls.join("server.key.new"), tls.join("server.key")).unwrap();
    std::fs::rename(tls.join("server.pem.new"), tls.join("server.pem")).unwrap();
    let st = Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(st.success());
    wait_for(
        || {
            s.srv
                .log_text()
                .contains("TLS certificates reloaded (SIGHUP)")
        },
        "the reload",
    );

    // New connections get the new certificate ...
    let new = Wire::new(tls_over(connect(s.ldaps_port), &ca));
    let after = peer_leaf(&new.io);
    assert_ne!(before, after, "still the old certificate after SIGHUP");
    assert_eq!(after, pem_leaf(&cert));
    // ... and the old connection still works.
    assert_eq!(old.whoami(2), "");
    // ldapsearch agrees.
    let o = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-H",
            &s.ldaps(),
            "-LLL",
            "-b",
            "",
            "-s",
            "base",
            "vendorName",
        ],
        &[("LDAPTLS_CACERT", ca.as_path())],
        None,
    );
    ok(&o, "ldapsearch after the reload");

    // A broken replacement is refused and the working certificate stays.
    std::fs::write(tls.join("server.pem"), "not a certificate\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .expect("kill -HUP");
    wait_for(
        || {
            s.srv
                .log_text()
                .contains("keeping the previous certificates")
        },
        "the failed reload",
    );
    let again = Wire::new(tls_over(connect(s.ldaps_port), &ca));
    assert_eq!(peer_leaf(&again.io), after);
}

#[test]
fn certificates_reload_when_the_files_change() {
    let s = TlsServer::start(Some("[tls]\nreload_interval = 1\n"));
    let ca = s.ca();
    let tls = s.tls_dir();
    let before = peer_leaf(&tls_over(connect(s.ldaps_port), &ca));
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = issue_cert(
        &tls,
        tmp.path(),
        "server3",
        "/O=ferrodir/CN=polled",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    std::fs::copy(&key, tls.join("server.key")).unwrap();
    std::fs::copy(&cert, tls.join("server.pem")).unwrap();
    wait_for(
        || {
            s.srv
                .log_text()
                .contains("TLS certificates reloaded (files changed)")
        },
        "the reload after the files changed",
    );
    let after = peer_leaf(&tls_over(connect(s.ldaps_port), &ca));
    assert_ne!(before, after);
    assert_eq!(after, pem_leaf(&cert));
}

#[test]
fn starttls_response_in_clear_then_no_second_starttls() {
    let s = TlsServer::start(None);
    let ca = s.ca();
    let tcp = connect(s.srv.port);
    let mut plain = Wire::new(tcp.try_clone().expect("clone"));
    // The response comes in clear, names the operation, and nothing follows it.
    let (code, msg, _) = plain.extended(1, OID_STARTTLS);
    assert_eq!(code, LdapResultCode::Success, "{msg}");
    assert!(plain.buf.is_empty(), "bytes after the StartTLS response");
    drop(plain);
    let mut tls = Wire::new(tls_over(tcp, &ca));
    // A second StartTLS on the TLS connection is refused, the connection goes on.
    let (code, msg, _) = tls.extended(2, OID_STARTTLS);
    assert_eq!(code, LdapResultCode::OperationsError);
    assert!(msg.contains("already"), "{msg}");
    assert_eq!(
        tls.simple_bind(3, ROOT_DN, &root_password()),
        LdapResultCode::Success
    );
    assert_eq!(tls.whoami(4), "dn:cn=Directory Manager");

    // StartTLS on an LDAPS connection is refused the same way.
    let mut ldaps = Wire::new(tls_over(connect(s.ldaps_port), &ca));
    let (code, _, _) = ldaps.extended(1, OID_STARTTLS);
    assert_eq!(code, LdapResultCode::OperationsError);
    assert_eq!(ldaps.whoami(2), "");
}

#[test]
fn tls_disabled_means_no_starttls_and_no_certificates() {
    let ldaps_free = free_port();
    let cfg = tempfile::tempdir().unwrap();
    let p = cfg.path().join("f.toml");
    std::fs::write(&p, "[tls]\nenabled = false\n").unwrap();
    let s = Server::start_with(&["--config", p.to_str().unwrap()]);
    assert!(!s.data.join("tls").exists());
    let mut w = Wire::new(connect(s.port));
    let (code, _, _) = w.extended(1, OID_STARTTLS);
    assert_eq!(code, LdapResultCode::ProtocolError);
    assert_eq!(w.whoami(2), "");
    assert!(s.log_text().contains("starttls=unavailable"));
    // And --ldaps with TLS disabled is a start-up error.
    let o = Command::new(bin())
        .args([
            "serve",
            "--config",
            p.to_str().unwrap(),
            "--data-dir",
            cfg.path().join("d2").to_str().unwrap(),
            "--ldaps",
            &format!("127.0.0.1:{ldaps_free}"),
        ])
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(err(&o).contains("enabled = false"), "{}", err(&o));
}

#[test]
fn starttls_is_refused_while_operations_are_outstanding() {
    let s = TlsServer::start(None);
    let tcp = connect(s.srv.port);
    // A small receive window: the server's writes block, so the searches
    // below stay outstanding while the StartTLS request is read.
    let small: libc::c_int = 65536;
    // SAFETY: setsockopt with a valid descriptor and an int option value.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let mut w = Wire::new(tcp);
    const SEARCHES: i32 = 300;
    for id in 1..=SEARCHES {
        w.send(LdapMsg::new(
            id,
            LdapOp::SearchRequest(ldap3_proto::proto::LdapSearchRequest {
                base: "cn=schema".into(),
                scope: ldap3_proto::proto::LdapSearchScope::Base,
                aliases: ldap3_proto::proto::LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: ldap3_proto::proto::LdapFilter::Present("objectClass".into()),
                attrs: vec!["+".into()],
            }),
        ));
    }
    w.send(LdapMsg::new(
        SEARCHES + 1,
        LdapOp::ExtendedRequest(LdapExtendedRequest {
            name: OID_STARTTLS.into(),
            value: None,
        }),
    ));
    let mut done = 0;
    let (code, message) = loop {
        let m = w.recv();
        match m.op {
            LdapOp::ExtendedResponse(r) => {
                assert_eq!(m.msgid, SEARCHES + 1);
                break (r.res.code, r.res.message);
            }
            LdapOp::SearchResultDone(_) => done += 1,
            _ => {}
        }
    };
    assert_eq!(code, LdapResultCode::OperationsError, "{message}");
    assert!(message.contains("outstanding"), "{message}");
    assert!(done < SEARCHES, "every search had finished before StartTLS");
    // The connection carries on in clear; once idle, StartTLS works.
    while done < SEARCHES {
        if let LdapOp::SearchResultDone(_) = w.recv().op {
            done += 1;
        }
    }
    let (code, msg, _) = w.extended(SEARCHES + 2, OID_STARTTLS);
    assert_eq!(code, LdapResultCode::Success, "{msg}");
}
