//! Handshakes against a [`TlsServer`] from real rustls clients over loopback: what each
//! connection is told about its own client certificate, under concurrency, and what a
//! certificate swap changes.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mtls_pki::{Ca, InitOptions, KeyType};
use mtls_test_support::{TestCa, forge};
use mtls_tls::{ClientHello, HandshakeError, ServerTlsSettings, TlsServer, VerifyClient};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, mpsc};
use tokio_rustls::TlsConnector;

/// What one client presents, and so what the server must say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Good,
    Expired,
    UnknownCa,
    Revoked,
    NoCertificate,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Good,
        Kind::Expired,
        Kind::UnknownCa,
        Kind::Revoked,
        Kind::NoCertificate,
    ];

    /// The `check` the server reports for it (`None`: the handshake completes).
    fn check(self) -> Option<&'static str> {
        match self {
            Kind::Good => None,
            Kind::Expired => Some("expired"),
            Kind::UnknownCa => Some("unknown_issuer"),
            Kind::Revoked => Some("revoked"),
            Kind::NoCertificate => Some("no_certificate"),
        }
    }
}

/// One client: its kind, its certificate's CN (distinct for every client), its config.
struct Client {
    kind: Kind,
    cn: String,
    config: Arc<ClientConfig>,
}

fn settings(ca: &mut TestCa, crl: PathBuf) -> ServerTlsSettings {
    let server = ca.server("localhost", &["localhost"]);
    ServerTlsSettings {
        certificate: server.chain,
        key: server.key.unwrap(),
        key_password_file: None,
        client_ca: vec![ca.ca.layout().ca_cert()],
        trusted_ca: Vec::new(),
        verify_client: VerifyClient::On,
        crl: vec![crl],
        verify_depth: 1,
        protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
        ciphers: None,
        prefer_server_ciphers: false,
        session_cache: Some(100),
        session_timeout: Duration::from_secs(300),
        session_tickets: true,
        session_ticket_keys: Vec::new(),
        alpn: Vec::new(),
        keylog: None,
    }
}

fn client_config(
    ca_cert: &Path,
    identity: Option<(&Path, &Path)>,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in mtls_pki::pem::certificates(&std::fs::read(ca_cert).unwrap(), "ca").unwrap() {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = mtls_pki::pem::certificates(&std::fs::read(cert).unwrap(), "cert").unwrap();
            let key = mtls_pki::key::private_key(&std::fs::read(key).unwrap(), "key").unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    })
}

/// Accept connections for `server` and report (client address, subject or error) for each.
async fn accept_loop(
    server: Arc<TlsServer>,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<(SocketAddr, Result<String, HandshakeError>)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, remote)) = listener.accept().await {
            let (server, tx) = (server.clone(), tx.clone());
            tokio::spawn(async move {
                let result = match ClientHello::read(tcp).await {
                    Ok(hello) => hello
                        .complete(&server)
                        .await
                        .map(|(_, info)| info.peer.map(|p| p.subject.clone()).unwrap_or_default()),
                    Err(e) => Err(e),
                };
                let _ = tx.send((remote, result));
            });
        }
    });
    (addr, rx)
}

/// A CA of its own, "Stranger CA", that the server does not trust.
fn stranger_ca() -> TestCa {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::init(
        &tmp.path().join("pki"),
        &InitOptions {
            common_name: "Stranger CA".into(),
            key_type: KeyType::P256,
            days: 30,
            intermediate: false,
            force: false,
        },
    )
    .unwrap();
    TestCa { tmp, ca }
}

/// Connect, finish our side of the handshake, and wait for the server's verdict (in TLS 1.3
/// a refusal arrives after our side is done). Returns our local address.
async fn run_client(client: &Client, addr: SocketAddr, barrier: &Barrier) -> SocketAddr {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    barrier.wait().await;
    let name = ServerName::try_from("localhost").unwrap();
    if let Ok(mut stream) = TlsConnector::from(client.config.clone())
        .connect(name, tcp)
        .await
    {
        let mut byte = [0u8; 1];
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
    }
    local
}

/// Many handshakes at once on a multi-thread runtime, failing for different reasons: each
/// connection's error names the check and the certificate that client presented, never
/// another connection's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refusals_each_name_their_own_certificate() {
    const EACH: usize = 40;
    let mut ca = TestCa::new();
    let mut stranger = stranger_ca();
    let ca_cert = ca.ca.layout().ca_cert();
    let ca_key = ca.ca.layout().ca_key();
    let work = tempfile::tempdir().unwrap();

    let mut clients = Vec::new();
    let mut revoked = Vec::new();
    for i in 0..EACH {
        for kind in Kind::ALL {
            let version = if (i + kind as usize).is_multiple_of(2) {
                &rustls::version::TLS13
            } else {
                &rustls::version::TLS12
            };
            let cn = format!("{kind:?}-{i}").to_lowercase();
            let files: Option<(PathBuf, PathBuf)> = match kind {
                Kind::Good => {
                    let issued = ca.client(&cn);
                    Some((issued.chain, issued.key.unwrap()))
                }
                Kind::Revoked => {
                    let issued = ca.client(&cn);
                    revoked.push(forge::serial_of(&issued.cert));
                    Some((issued.chain, issued.key.unwrap()))
                }
                Kind::UnknownCa => {
                    let issued = stranger.client(&cn);
                    Some((issued.chain, issued.key.unwrap()))
                }
                Kind::Expired => {
                    let (cert, key) = forge::expired_client(&ca_cert, &ca_key, &cn);
                    let (cert_path, key_path) = (
                        work.path().join(format!("{cn}.crt")),
                        work.path().join(format!("{cn}.key")),
                    );
                    std::fs::write(&cert_path, cert).unwrap();
                    std::fs::write(&key_path, key).unwrap();
                    Some((cert_path, key_path))
                }
                Kind::NoCertificate => None,
            };
            let config = client_config(
                &ca_cert,
                files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
                version,
            );
            clients.push(Client { kind, cn, config });
        }
    }
    let crl = work.path().join("ca.crl");
    std::fs::write(&crl, forge::crl_pem(&ca_cert, &ca_key, &revoked)).unwrap();
    let server = Arc::new(TlsServer::build(&settings(&mut ca, crl)).unwrap());
    let (addr, mut seen) = accept_loop(server).await;

    let barrier = Arc::new(Barrier::new(clients.len()));
    let clients: Vec<Arc<Client>> = clients.into_iter().map(Arc::new).collect();
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, barrier) = (client.clone(), barrier.clone());
            tokio::spawn(async move { (run_client(&client, addr, &barrier).await, client) })
        })
        .collect();
    let mut by_addr: HashMap<SocketAddr, Arc<Client>> = HashMap::new();
    for task in tasks {
        let (local, client) = task.await.unwrap();
        by_addr.insert(local, client);
    }

    let mut counted: HashMap<&'static str, usize> = HashMap::new();
    for _ in 0..by_addr.len() {
        let (remote, result) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("the server reported every connection")
            .unwrap();
        let client = &by_addr[&remote];
        let expected_subject = format!("CN={}", client.cn);
        match (client.kind.check(), result) {
            (None, Ok(subject)) => {
                assert_eq!(subject, expected_subject);
                *counted.entry("ok").or_default() += 1;
            }
            (Some("no_certificate"), Err(e @ HandshakeError::NoCertificate { .. })) => {
                *counted.entry(e.check()).or_default() += 1;
            }
            (Some(check), Err(HandshakeError::CertificateRefused { refusal, alert })) => {
                assert_eq!(
                    (refusal.check, refusal.subject.as_str()),
                    (check, expected_subject.as_str()),
                    "{} was told about another connection's certificate: {refusal:?} ({alert})",
                    client.cn
                );
                *counted.entry(refusal.check).or_default() += 1;
            }
            (expected, other) => panic!("{}: expected {expected:?}, got {other:?}", client.cn),
        }
    }
    for check in [
        "ok",
        "expired",
        "unknown_issuer",
        "revoked",
        "no_certificate",
    ] {
        assert_eq!(counted.get(check), Some(&EACH), "{check}: {counted:?}");
    }
}

/// The alert a refusal's error names (and the gateway logs) is the one the client received,
/// name and number, in TLS 1.2 and in TLS 1.3: rustls chooses it, and `HandshakeError` must
/// say what rustls chose.
#[tokio::test]
async fn the_alert_named_is_the_alert_the_client_received() {
    let mut ca = TestCa::new();
    let mut stranger = stranger_ca();
    let (ca_cert, ca_key) = (ca.ca.layout().ca_cert(), ca.ca.layout().ca_key());
    let work = tempfile::tempdir().unwrap();
    let crl = work.path().join("ca.crl");
    std::fs::write(&crl, forge::crl_pem(&ca_cert, &ca_key, &[])).unwrap();
    let server = Arc::new(TlsServer::build(&settings(&mut ca, crl)).unwrap());
    let (addr, mut seen) = accept_loop(server).await;

    let unknown = stranger.client("unknown");
    let (cert, key) = forge::expired_client(&ca_cert, &ca_key, "expired");
    let expired = (work.path().join("e.crt"), work.path().join("e.key"));
    std::fs::write(&expired.0, cert).unwrap();
    std::fs::write(&expired.1, key).unwrap();
    let identities = [
        ("none", None, "certificate_required (116)"),
        (
            "unknown CA",
            Some((unknown.chain.clone(), unknown.key.clone().unwrap())),
            "unknown_ca (48)",
        ),
        ("expired", Some(expired), "certificate_expired (45)"),
    ];
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        for (what, identity, expected) in &identities {
            let config = client_config(
                &ca_cert,
                identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
                version,
            );
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            // TLS 1.2: the alert ends our handshake; TLS 1.3: it comes with the first read.
            let error = match TlsConnector::from(config).connect(name, tcp).await {
                Err(e) => e,
                Ok(mut stream) => {
                    let mut byte = [0u8; 1];
                    stream.read(&mut byte).await.expect_err("refused")
                }
            };
            let received = match error.get_ref().and_then(|e| e.downcast_ref()) {
                Some(rustls::Error::AlertReceived(alert)) => mtls_tls::server::alert_words(*alert),
                _ => panic!("{version:?} {what}: no alert received: {error}"),
            };
            assert_eq!(&received, expected, "{version:?} {what}");
            let (_, result) = seen.recv().await.unwrap();
            let logged = match result {
                Err(HandshakeError::NoCertificate { alert })
                | Err(HandshakeError::CertificateRefused { alert, .. }) => alert,
                other => panic!("{version:?} {what}: {other:?}"),
            };
            assert_eq!(logged, received, "{version:?} {what}");
        }
    }
}

/// A replaced certificate is what the next handshake gets; the old one is never sent again.
#[tokio::test]
async fn replacing_the_certificate_changes_the_next_handshake() {
    let mut ca = TestCa::new();
    let first = ca.server("first", &["localhost"]);
    let second = ca.server("second", &["localhost"]);
    let settings = ServerTlsSettings {
        certificate: first.chain.clone(),
        key: first.key.clone().unwrap(),
        key_password_file: None,
        client_ca: Vec::new(),
        trusted_ca: Vec::new(),
        verify_client: VerifyClient::Off,
        crl: Vec::new(),
        verify_depth: 1,
        protocols: vec!["TLSv1.3".into()],
        ciphers: None,
        prefer_server_ciphers: false,
        session_cache: None,
        session_timeout: Duration::from_secs(300),
        session_tickets: false,
        session_ticket_keys: Vec::new(),
        alpn: Vec::new(),
        keylog: None,
    };
    let server = Arc::new(TlsServer::build(&settings).unwrap());
    assert_eq!(server.certificate().subject, "CN=first");
    let (addr, _seen) = accept_loop(server.clone()).await;
    let config = client_config(&ca.ca.layout().ca_cert(), None, &rustls::version::TLS13);
    let served = || async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let stream = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .unwrap();
        let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
        mtls_tls::PeerCert::from_der(leaf.as_ref()).subject
    };
    assert_eq!(served().await, "CN=first");

    let stranger = ca.client("not-the-key");
    let err = server
        .replace_certificate(&second.chain, &stranger.key.unwrap(), None)
        .expect_err("a key of another certificate");
    assert!(err.to_string().contains("does not belong"), "{err}");
    assert_eq!(
        served().await,
        "CN=first",
        "a failed replace changes nothing"
    );

    server
        .replace_certificate(&second.chain, &second.key.unwrap(), None)
        .unwrap();
    assert_eq!(server.certificate().subject, "CN=second");
    assert_eq!(served().await, "CN=second");
}
