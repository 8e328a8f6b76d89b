//! Replication over TLS against the real binary: agreements with
//! nsDS5ReplicaTransportInfo StartTLS and LDAPS, the consumer's certificate
//! verified against a CA made here with rcgen, a consumer with a certificate
//! from another CA refused (status and `ferrodir repl test` say why), and
//! SSLCLIENTAUTH (client certificate + SASL EXTERNAL) binds. Servers are
//! configured through the example LDIFs with ldapadd, as in
//! tests/replication.rs. Every wait polls with a bound.

mod repl_common;

use repl_common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(60);
/// The DN the test certificates' subject maps to (SASL EXTERNAL).
const MANAGER: &str = "cn=replication manager,cn=config";

/// A CA and the certificates it issues, in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
    name: String,
}

impl Pki {
    fn new(name: &str) -> Pki {
        use rcgen::{BasicConstraints, DnType, IsCa, KeyUsagePurpose};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(DnType::OrganizationName, "ferrodir tests");
        dn.push(DnType::CommonName, format!("{name} CA"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA");
        Pki {
            dir,
            ca_params: p,
            ca_key: key,
            name: name.to_string(),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for 127.0.0.1/localhost usable as server and client
    /// certificate, whose subject is `cn=replication manager,cn=config`.
    fn issue(&self, file: &str) -> (PathBuf, PathBuf) {
        use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose};
        // A file name starting with "misnamed" gets a certificate for another host.
        let names = if file.starts_with("misnamed") {
            vec!["consumer.example.com".to_string()]
        } else {
            vec!["127.0.0.1".to_string(), "localhost".into()]
        };
        let mut p = rcgen::CertificateParams::new(names).expect("params");
        let mut dn = rcgen::DistinguishedName::new();
        // Least specific first; rcgen keeps one value per type, so the outer
        // CN goes in under its OID.
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 3]), "config");
        dn.push(DnType::CommonName, "replication manager");
        p.distinguished_name = dn;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::new(self.ca_params.clone(), &self.ca_key);
        let cert = p.signed_by(&key, &issuer).expect("sign");
        let (c, k) = (
            self.dir.path().join(format!("{file}.pem")),
            self.dir.path().join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        std::fs::set_permissions(&k, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod key");
        (c, k)
    }
}

/// A `ferrodir serve` process with an LDAP and an LDAPS listener and
/// `[tls]` certificates from a test CA. (Not repl_common's Server: that one
/// writes its own configuration file.)
struct TlsServer {
    child: Option<Child>,
    port: u16,
    ldaps_port: u16,
    data: PathBuf,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl TlsServer {
    fn start(pki: &Pki, name: &str) -> TlsServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (cert, key) = pki.issue(name);
        let config = tmp.path().join("ferrodir.toml");
        std::fs::write(
            &config,
            format!(
                "password_scheme = \"SSHA512\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n",
                cert.display(),
                key.display(),
                pki.ca().display()
            ),
        )
        .expect("config");
        let mut s = TlsServer {
            child: None,
            port: 0,
            ldaps_port: 0,
            data: tmp.path().join("data"),
            log: tmp.path().join("server.log"),
            _tmp: tmp,
        };
        // A port picked here may be taken by someone else before the server
        // binds it: try again with other ports (a fresh data directory each time).
        for attempt in 0..3 {
            let _ = std::fs::remove_dir_all(&s.data);
            s.port = free_port();
            s.ldaps_port = free_port();
            let before = s.log_text().len();
            let logf = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&s.log)
                .expect("log file");
            let mut child = Command::new(bin())
                .arg("serve")
                .arg("--data-dir")
                .arg(&s.data)
                .arg("--ldap")
                .arg(format!("127.0.0.1:{}", s.port))
                .arg("--ldaps")
                .arg(format!("127.0.0.1:{}", s.ldaps_port))
                .arg("--config")
                .arg(&config)
                .env("FERRODIR_ROOT_PASSWORD", root_password())
                .stdout(Stdio::from(logf.try_clone().expect("log")))
                .stderr(Stdio::from(logf))
                .spawn()
                .expect("spawn ferrodir");
            let deadline = Instant::now() + Duration::from_secs(30);
            let ready = loop {
                if let Ok(Some(status)) = child.try_wait() {
                    break Err(status);
                }
                let text = s.log_text();
                let ours = text.get(before..).unwrap_or_default();
                if ours.contains("listening for LDAPS") && ours.contains("listening for LDAP ") {
                    break Ok(());
                }
                assert!(
                    Instant::now() < deadline,
                    "ferrodir ({name}) not listening within 30 s:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            match ready {
                Ok(()) => {
                    s.child = Some(child);
                    return s;
                }
                Err(status) => {
                    let text = s.log_text();
                    assert!(
                        attempt < 2 && text.contains("Address already in use"),
                        "ferrodir ({name}, {} CA) exited early ({status}):\n{text}",
                        pki.name
                    );
                }
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ferrodir export` of the data directory.
    fn export(&self) -> String {
        let o = Command::new(bin())
            .arg("export")
            .arg("--data-dir")
            .arg(&self.data)
            .output()
            .expect("run ferrodir export");
        assert!(o.status.success(), "export failed: {}", err(&o));
        out(&o)
    }

    /// One attribute of an agreement entry (status attributes included).
    fn agreement_attr(&self, cn: &str, attr: &str) -> Option<String> {
        let o = search_root(
            &self.url(),
            &agreement_dn(cn),
            &["-s", "base", "(objectClass=*)", "*"],
        );
        let prefix = format!("{}: ", attr.to_ascii_lowercase());
        out(&o)
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].to_string())
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls until both servers hold the same replication state (entries with
/// value CSNs, tombstones, RUV: repl_common's comparison); returns the
/// supplier's export.
fn wait_converged(a: &TlsServer, b: &TlsServer) -> String {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let diffs = differences_of(&[&a.data, &b.data]);
        if diffs.is_empty() {
            return a.export();
        }
        assert!(
            Instant::now() < deadline,
            "no convergence within {CONVERGE:?}; {} differences (server 0 is the supplier):\n{}\nsupplier log:\n{}\nconsumer log:\n{}",
            diffs.len(),
            diffs.join("\n"),
            a.log_text(),
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the agreement's total init has finished successfully.
fn wait_init_done(s: &TlsServer, cn: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = s
            .agreement_attr(cn, "nsds5replicaLastInitStatus")
            .unwrap_or_default();
        if status.starts_with("Error (0) Total update succeeded") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "init over {cn} not done: {status:?}, update status {:?}\n{}",
            s.agreement_attr(cn, "nsds5replicaLastUpdateStatus"),
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ferrodir(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("FERRODIR_ROOT_PASSWORD", root_password())
        .output()
        .expect("run ferrodir")
}

/// The supplier-consumer example agreement, edited: consumer port, transport
/// and agreement name; `edit` changes anything else.
fn agreement(cn: &str, port: u16, transport: &str, edit: impl Fn(String) -> String) -> String {
    let text = example_ldif("supplier-consumer/3-supplier-agreement.ldif", Some(port))
        .replace("cn=to-consumer,", &format!("cn={cn},"))
        .replace("cn: to-consumer", &format!("cn: {cn}"))
        .replace(
            "nsDS5ReplicaTransportInfo: LDAP\n",
            &format!("nsDS5ReplicaTransportInfo: {transport}\n"),
        );
    assert!(text.contains(&format!("nsDS5ReplicaTransportInfo: {transport}")));
    edit(text)
}

fn add_ok(url: &str, ldif: &str) {
    let o = ldapadd_root(url, ldif);
    assert_eq!(code(&o), 0, "{}{}\n{ldif}", out(&o), err(&o));
}

/// The supplier's replica entry (docs/replication.md, step 2).
fn configure_supplier(supplier: &TlsServer) {
    add_example(
        &supplier.url(),
        "supplier-consumer/1-supplier-replica.ldif",
        None,
    );
}

/// The replication manager and a read-only replica entry accepting changes
/// from `consumer_bind_dn` (steps 1 and 3).
fn configure_consumer(consumer: &TlsServer, consumer_bind_dn: &str) {
    add_example(&consumer.url(), "replication-manager.ldif", None);
    let replica = example_ldif("supplier-consumer/2-consumer-replica.ldif", None).replace(
        &format!("nsDS5ReplicaBindDN: {MANAGER}"),
        &format!("nsDS5ReplicaBindDN: {consumer_bind_dn}"),
    );
    add_ok(&consumer.url(), &replica);
}

fn wait_status(s: &TlsServer, cn: &str, want: &str) -> String {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = s
            .agreement_attr(cn, "nsds5replicaLastUpdateStatus")
            .unwrap_or_default();
        if status.contains(want) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "agreement {cn}: status {status:?} never contained {want:?}\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_log(s: &TlsServer, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "log lacks {needle:?}:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn has_entries_of(s: &TlsServer, ou: &str) -> bool {
    s.export().contains(&format!("ou={ou},dc=example,dc=com"))
}

/// A supplier and a consumer with certificates from `pki`, joined by the
/// agreement `to-consumer` over StartTLS, its total init done.
fn starttls_pair(pki: &Pki) -> (TlsServer, TlsServer) {
    let supplier = TlsServer::start(pki, "supplier");
    let consumer = TlsServer::start(pki, "consumer");
    configure_supplier(&supplier);
    configure_consumer(&consumer, MANAGER);
    add_ok(
        &supplier.url(),
        &agreement("to-consumer", consumer.port, "StartTLS", |t| t),
    );
    wait_init_done(&supplier, "to-consumer");
    (supplier, consumer)
}

/// StartTLS to the consumer's LDAP port replicates; a consumer whose
/// certificate comes from another CA is refused and gets nothing.
#[test]
fn starttls_agreement_replicates_and_an_untrusted_consumer_gets_nothing() {
    let pki = Pki::new("trusted");
    let (supplier, consumer) = starttls_pair(&pki);
    add_ok(&supplier.url(), &people_ldif("tls", 20));
    let exported = wait_converged(&supplier, &consumer);
    assert!(exported.contains("uid=tls-19,ou=tls,dc=example,dc=com"));
    assert_log(
        &supplier,
        "over StartTLS (TLS 1.3, verified 127.0.0.1), bound with SIMPLE",
    );
    let o = ferrodir(&["repl", "test", "--url", &supplier.url()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert_eq!(out(&o).trim(), "Pass");

    // A consumer with a certificate from another CA, configured to accept
    // changes: the handshake fails, nothing is sent.
    let other = Pki::new("other");
    let rogue = TlsServer::start(&other, "rogue");
    configure_consumer(&rogue, MANAGER);
    add_ok(
        &supplier.url(),
        &agreement("to-rogue", rogue.ldaps_port, "LDAPS", |t| t),
    );
    let status = wait_status(&supplier, "to-rogue", "certificate verify failed");
    assert!(
        status.starts_with("Error (-1) TLS with 127.0.0.1:"),
        "{status}"
    );
    assert!(status.contains("unknown CA"), "{status}");
    let o = ferrodir(&[
        "repl",
        "test",
        "--url",
        &supplier.url(),
        "--agreement",
        &agreement_dn("to-rogue"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let verdict = out(&o);
    assert!(
        verdict.starts_with("Fail: TLS with 127.0.0.1:")
            && verdict.contains("certificate verify failed: unknown CA"),
        "{verdict}"
    );
    let o = ferrodir(&["repl", "status", "--url", &supplier.url(), "--json"]);
    assert!(out(&o).contains("unknown CA"), "{}", out(&o));
    assert!(!has_entries_of(&rogue, "tls"));

    // A certificate from the right CA for another host name.
    let misnamed = TlsServer::start(&pki, "misnamed");
    configure_consumer(&misnamed, MANAGER);
    add_ok(
        &supplier.url(),
        &agreement("to-misnamed", misnamed.port, "StartTLS", |t| t),
    );
    let status = wait_status(
        &supplier,
        "to-misnamed",
        "certificate verify failed: host name mismatch",
    );
    assert!(status.contains("not valid for '127.0.0.1'"), "{status}");
    assert!(!has_entries_of(&misnamed, "tls"));
    // The trusted consumer is unaffected.
    assert!(has_entries_of(&consumer, "tls"));
}

/// LDAPS to the consumer's LDAPS port with SSLCLIENTAUTH: the supplier
/// presents its certificate, binds with SASL EXTERNAL, and the consumer
/// accepts it because the certificate maps to its nsDS5ReplicaBindDN.
#[test]
fn ldaps_agreement_with_client_certificate_replicates() {
    let pki = Pki::new("trusted");
    let supplier = TlsServer::start(&pki, "supplier");
    let consumer = TlsServer::start(&pki, "consumer");
    configure_supplier(&supplier);
    configure_consumer(&consumer, MANAGER);
    let ldif = agreement("to-consumer", consumer.ldaps_port, "LDAPS", |t| {
        t.replace(
            "nsDS5ReplicaBindMethod: SIMPLE",
            "nsDS5ReplicaBindMethod: SSLCLIENTAUTH",
        )
        .lines()
        .filter(|l| !l.starts_with("nsDS5ReplicaCredentials:"))
        .map(|l| format!("{l}\n"))
        .collect()
    });
    assert!(ldif.contains("SSLCLIENTAUTH") && !ldif.contains(&repl_password()));
    add_ok(&supplier.url(), &ldif);
    wait_init_done(&supplier, "to-consumer");
    add_ok(&supplier.url(), &people_ldif("cert", 10));
    let exported = wait_converged(&supplier, &consumer);
    assert!(exported.contains("uid=cert-9,ou=cert,dc=example,dc=com"));
    assert_log(
        &supplier,
        "over LDAPS (TLS 1.3, verified 127.0.0.1, client certificate presented), bound with SSLCLIENTAUTH",
    );
    let o = ferrodir(&["repl", "test", "--url", &supplier.url()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));

    // The same certificate does not get in where another identity is
    // expected: the consumer refuses the session.
    let strict = TlsServer::start(&pki, "strict");
    configure_consumer(&strict, "cn=someone else,cn=config");
    let ldif = ldif
        .replace("cn=to-consumer,", "cn=to-strict,")
        .replace("cn: to-consumer", "cn: to-strict")
        .replace(
            &format!("nsDS5ReplicaPort: {}", consumer.ldaps_port),
            &format!("nsDS5ReplicaPort: {}", strict.ldaps_port),
        );
    add_ok(&supplier.url(), &ldif);
    let status = wait_status(&supplier, "to-strict", "Error (50)");
    assert!(
        status.contains("not the replica's nsDS5ReplicaBindDN"),
        "{status}"
    );
    assert!(!has_entries_of(&strict, "cert"));
}

/// Certificates and CAs replaced on a live StartTLS pair while a client
/// writes (docs/replication.md, "Rotating credentials and certificates"):
/// the new CA joins the bundle, the consumer's certificate and key are
/// replaced on disk and reloaded, the old CA leaves the bundle; every
/// acknowledged write arrives and the sessions after each step verify the
/// consumer with what is then in the bundle.
#[test]
fn certificates_and_cas_rotate_while_writes_flow() {
    let old = Pki::new("old");
    let (supplier, consumer) = starttls_pair(&old);
    add_ok(
        &supplier.url(),
        "dn: ou=rot,dc=example,dc=com\nobjectClass: organizationalUnit\nou: rot\n",
    );
    let writer = BackgroundWriter::start(supplier.url(), "ou=rot,dc=example,dc=com");
    let verified = "over StartTLS (TLS 1.3, verified 127.0.0.1)";
    let sessions = |s: &TlsServer| s.log_text().matches(verified).count();
    // A new session, so a new handshake: the agreement off, then on.
    let restart_session = || {
        for value in ["off", "on"] {
            let o = ldapmodify_root(
                &supplier.url(),
                &format!(
                    "dn: {}\nchangetype: modify\nreplace: nsds5ReplicaEnabled\nnsds5ReplicaEnabled: {value}\n",
                    agreement_dn("to-consumer")
                ),
            );
            assert_eq!(code(&o), 0, "{}", err(&o));
            if value == "off" {
                // Stopped before it starts again: not one coalesced change.
                wait_status(&supplier, "to-consumer", "agreement disabled");
            }
        }
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + CONVERGE;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "waited for {what}\nsupplier log:\n{}\nconsumer log:\n{}",
                supplier.log_text(),
                consumer.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // 1. The new CA joins the bundle both sides read.
    let new = Pki::new("new");
    let old_ca = std::fs::read_to_string(old.ca()).expect("old CA");
    let new_ca = std::fs::read_to_string(new.ca()).expect("new CA");
    std::fs::write(old.ca(), format!("{old_ca}{new_ca}")).expect("bundle");
    // 2. The consumer's certificate and key are replaced by ones from the
    //    new CA, in place; the consumer reloads them by itself.
    let (cert, key) = new.issue("consumer");
    let reloads = |s: &TlsServer| s.log_text().matches("TLS certificates reloaded").count();
    let reloads_before = reloads(&consumer);
    std::fs::copy(&key, old.dir.path().join("consumer.key")).expect("key");
    std::fs::copy(&cert, old.dir.path().join("consumer.pem")).expect("cert");
    wait("the consumer to reload its certificate", &|| {
        reloads(&consumer) > reloads_before
    });
    let before = sessions(&supplier);
    restart_session();
    wait("a session verified with the bundle", &|| {
        sessions(&supplier) > before
    });
    // 3. The old CA leaves the bundle: only the new certificate verifies now.
    std::fs::write(old.ca(), &new_ca).expect("new CA only");
    let before = sessions(&supplier);
    restart_session();
    wait("a session verified with the new CA alone", &|| {
        sessions(&supplier) > before
    });
    let now = writer.acknowledged();
    wait("writes after the rotation", &|| {
        writer.acknowledged() >= now + 10
    });
    let acknowledged = writer.finish();
    wait_converged(&supplier, &consumer);
    let exported = consumer.export();
    for uid in &acknowledged {
        assert!(
            exported.contains(&format!("dn: uid={uid},ou=rot,dc=example,dc=com")),
            "{uid} missing on the consumer"
        );
    }
}
