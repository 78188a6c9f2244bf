//! TLS for `wss://` with rustls (ring provider): webpki roots plus optional extra anchors, or
//! no verification when explicitly asked for.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::ClientConfig;
use crate::error::WampError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport_error(context: &str, e: impl std::fmt::Display) -> WampError {
    WampError::Transport(format!("{context}: {e}"))
}

fn build(config: &ClientConfig) -> Result<rustls::ClientConfig, WampError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| transport_error("TLS setup", e))?;
    if config.tls_insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = &config.extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| transport_error("extra CA PEM", e))?;
            roots
                .add(cert)
                .map_err(|e| transport_error("extra CA certificate", e))?;
            added += 1;
        }
        if added == 0 {
            return Err(WampError::Transport(
                "extra CA PEM holds no certificate".into(),
            ));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The TLS client configuration; the common case (webpki roots only) is built once, since a
/// swarm opens many connections.
fn client_config(config: &ClientConfig) -> Result<Arc<rustls::ClientConfig>, WampError> {
    static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if config.tls_insecure || config.extra_ca_pem.is_some() {
        return build(config).map(Arc::new);
    }
    if let Some(shared) = DEFAULT.get() {
        return Ok(shared.clone());
    }
    let built = Arc::new(build(config)?);
    Ok(DEFAULT.get_or_init(|| built).clone())
}

pub(super) async fn connect(
    config: &ClientConfig,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, WampError> {
    let connector = TlsConnector::from(client_config(config)?);
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| transport_error("invalid TLS server name", e))?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| transport_error("TLS handshake failed", e))
}

/// Accepts any certificate but still checks handshake signatures, so the peer must at least
/// hold the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
