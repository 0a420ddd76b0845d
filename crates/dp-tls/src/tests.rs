//! Real handshakes, in memory: a rustls server with the self-signed certificate in `testdata/` against the client
//! configurations of this crate, over TLS 1.2 and 1.3.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{CertificateError, ClientConfig, ClientConnection, ServerConfig, ServerConnection};

use super::*;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn certificate() -> CertificateDer<'static> {
    CertificateDer::from_pem_file(testdata("cert.pem")).unwrap()
}

fn key(name: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(testdata(name)).unwrap()
}

/// A server presenting `cert.pem` and signing its handshakes with the key in `key_file`: `key.pem` is the
/// certificate's own, `other-key.pem` is not.
fn server(version: &'static rustls::SupportedProtocolVersion, key_file: &str) -> ServerConfig {
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key(key_file))
        .unwrap();
    let certified = Arc::new(CertifiedKey::new(vec![certificate()], signing_key));
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Always(certified)))
}

/// Hands every client the same certificate and key, whether or not they belong together (rustls's own
/// `with_single_cert` refuses a key that does not match).
#[derive(Debug)]
struct Always(Arc<CertifiedKey>);

impl ResolvesServerCert for Always {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// [`connect_to`] `localhost`, the name the certificate is for.
fn connect(client: ClientConfig, server: ServerConfig) -> Result<Vec<u8>, rustls::Error> {
    connect_to("localhost", client, server)
}

/// Runs a handshake to `name` and then sends one message from client to server. Returns what the server read, or
/// the client's error: when the server gives up, its alert reaches the client, so the client's error is the one
/// that says why.
fn connect_to(
    name: &'static str,
    client: ClientConfig,
    server: ServerConfig,
) -> Result<Vec<u8>, rustls::Error> {
    let name = ServerName::try_from(name).unwrap();
    let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
    let mut server = ServerConnection::new(Arc::new(server)).unwrap();
    client.writer().write_all(b"hello").unwrap();
    let mut received = Vec::new();
    for _ in 0..10 {
        let mut bytes = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut bytes).unwrap();
        }
        let mut to_server = &bytes[..];
        while !to_server.is_empty() {
            server.read_tls(&mut to_server).unwrap();
        }
        // A server error is seen by the client as the alert that follows it.
        if server.process_new_packets().is_ok() {
            match server.reader().read_to_end(&mut received) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("server read: {e}"),
            }
        }
        let mut bytes = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut bytes).unwrap();
        }
        let mut to_client = &bytes[..];
        while !to_client.is_empty() {
            client.read_tls(&mut to_client).unwrap();
        }
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() && !received.is_empty() {
            return Ok(received);
        }
    }
    panic!("the handshake neither finished nor failed");
}

const VERSIONS: [&rustls::SupportedProtocolVersion; 2] = [&TLS12, &TLS13];

#[test]
fn encrypt_only_accepts_a_self_signed_certificate() {
    for version in VERSIONS {
        let received = connect(encrypt_only(), server(version, "key.pem"));
        assert_eq!(received, Ok(b"hello".to_vec()), "{version:?}");
    }
}

#[test]
fn encrypt_only_still_checks_the_handshake_signature() {
    for version in VERSIONS {
        let error = connect(encrypt_only(), server(version, "other-key.pem")).unwrap_err();
        assert_eq!(
            error,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature),
            "{version:?}"
        );
    }
}

#[test]
fn verifying_refuses_a_certificate_outside_its_roots() {
    for version in VERSIONS {
        for roots in [RootCertStore::empty(), native_roots()] {
            let error = connect(verifying(roots), server(version, "key.pem")).unwrap_err();
            assert_eq!(
                error,
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "{version:?}"
            );
        }
    }
}

#[test]
fn verifying_accepts_the_certificate_once_it_is_a_root() {
    let roots = roots_from_pem_file(&testdata("cert.pem")).unwrap();
    assert_eq!(roots.len(), 1);
    for version in VERSIONS {
        let received = connect(verifying(roots.clone()), server(version, "key.pem"));
        assert_eq!(received, Ok(b"hello".to_vec()), "{version:?}");
    }
}

#[test]
fn verifying_checks_the_name() {
    let roots = roots_from_pem_file(&testdata("cert.pem")).unwrap();
    for version in VERSIONS {
        let error = connect_to(
            "example.com",
            verifying(roots.clone()),
            server(version, "key.pem"),
        );
        assert!(
            matches!(
                error,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{version:?}: {error:?}"
        );
    }
}

#[test]
fn ca_bundle_errors_name_the_file_and_the_reason() {
    let missing = Path::new("/nonexistent/bundle.pem");
    let error = roots_from_pem_file(missing).unwrap_err();
    assert_eq!(error.path(), missing);
    assert!(
        matches!(error.kind(), CaBundleErrorKind::Unreadable(_)),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("Could not load the CA bundle /nonexistent/bundle.pem: "),
        "{error}"
    );

    // A PEM file with a key and no certificate.
    let keys_only = testdata("key.pem");
    let error = roots_from_pem_file(&keys_only).unwrap_err();
    assert_eq!(error.kind(), &CaBundleErrorKind::NoCertificate);
    assert_eq!(
        error.to_string(),
        format!(
            "Could not load the CA bundle {}: it contains no usable certificate",
            keys_only.display()
        )
    );
}

#[test]
fn encrypt_only_offers_the_providers_signature_schemes() {
    let verifier = EncryptOnly::new(provider());
    let schemes = verifier.supported_verify_schemes();
    assert!(
        schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256),
        "{schemes:?}"
    );
    assert!(
        schemes.contains(&SignatureScheme::RSA_PSS_SHA256),
        "{schemes:?}"
    );
}
