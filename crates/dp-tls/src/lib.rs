//! The rustls client configurations of the workspace, in one place: dp-wire (the Data Pipeline endpoint, credential
//! endpoints, S3 through its transport), dp-task-runner's PostgreSQL connections and dp-local's PostgreSQL store
//! build theirs here, so that there is one copy of the code that decides what a certificate must prove.
//!
//! Two modes. [`verifying`] checks that the server's certificate chains to the given roots and names the host.
//! [`encrypt_only`] takes any certificate, but still checks that the server signed the handshake with the key of the
//! certificate it sent: the connection is encrypted against someone who only listens, not against someone who
//! answers in the server's place. It exists for the settings that ask for exactly that (the AWS CLI's
//! `--no-verify-ssl`, libpq's `sslmode=require` and `prefer`) and for nothing else.
//!
//! This crate opens no connections and reads no settings: callers decide which mode applies. It reads only the
//! files it is handed ([`roots_from_pem_file`]) and the system's certificate store ([`native_roots`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{
    ClientConfig, ConfigBuilder, DigitallySignedStruct, RootCertStore, SignatureScheme,
    WantsVerifier,
};

/// A client configuration that accepts only certificates chaining to `roots` and naming the server.
pub fn verifying(roots: RootCertStore) -> ClientConfig {
    builder(provider())
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A client configuration that accepts any certificate the server sends, checking only that the server holds its
/// key (see [`EncryptOnly`]).
pub fn encrypt_only() -> ClientConfig {
    let provider = provider();
    builder(provider.clone())
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(EncryptOnly::new(provider)))
        .with_no_client_auth()
}

/// The roots this machine trusts. Certificates the system lists but that cannot be parsed, and stores that cannot be
/// read, are left out rather than refused: a connection that needed them then fails naming the server's
/// certificate as unknown, and connections that do not need them still work.
pub fn native_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// The roots in a PEM file (a CA bundle). Fails when the file cannot be read or holds no usable certificate.
pub fn roots_from_pem_file(path: &Path) -> Result<RootCertStore, CaBundleError> {
    let error = |kind| CaBundleError {
        path: path.to_path_buf(),
        kind,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(CaBundleErrorKind::Unreadable(e.to_string())))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(error(CaBundleErrorKind::NoCertificate));
    }
    Ok(roots)
}

/// A CA bundle that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundleError {
    path: PathBuf,
    kind: CaBundleErrorKind,
}

/// Why a CA bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaBundleErrorKind {
    /// The file cannot be read, or is not PEM; the text says what the reader found.
    Unreadable(String),
    /// The file is PEM but holds no certificate that can be parsed.
    NoCertificate,
}

impl CaBundleError {
    /// The file that was asked for.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why it cannot be used.
    pub fn kind(&self) -> &CaBundleErrorKind {
        &self.kind
    }
}

impl fmt::Display for CaBundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            CaBundleErrorKind::Unreadable(why) => {
                write!(f, "Could not load the CA bundle {path}: {why}")
            }
            CaBundleErrorKind::NoCertificate => write!(
                f,
                "Could not load the CA bundle {path}: it contains no usable certificate"
            ),
        }
    }
}

impl std::error::Error for CaBundleError {}

/// The certificate verifier of [`encrypt_only`]: every certificate is taken as it is (no root, name or expiry
/// check), but the handshake's signature must verify with the certificate's public key, so the handshake is
/// well-formed and the server holds the key it shows.
#[derive(Debug)]
pub struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl EncryptOnly {
    /// A verifier checking handshake signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> EncryptOnly {
        EncryptOnly { provider }
    }
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The workspace's crypto provider: ring, the one rustls is built with here.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The start every configuration shares: ring, and rustls's safe default protocol versions (TLS 1.2 and 1.3).
fn builder(provider: Arc<CryptoProvider>) -> ConfigBuilder<ClientConfig, WantsVerifier> {
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Fails only for a provider without cipher suites for those versions; ring has them for both.
        .expect("ring supports TLS 1.2 and 1.3")
}

#[cfg(test)]
mod tests;
