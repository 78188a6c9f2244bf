//! `wss://`: the router behind a TLS acceptor (as the gateway would run it), clients verifying
//! with an extra CA, with verification disabled, and failing without the CA.

mod common;

use std::sync::Arc;

use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use s4t_wamp::{connect, handler, CallResult, Kwargs, Router, RouterConfig, WampError};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const CA: &[u8] = include_bytes!("fixtures/test-ca.pem");
const CERT: &[u8] = include_bytes!("fixtures/localhost.pem");
const KEY: &[u8] = include_bytes!("fixtures/localhost.key");

async fn start_tls() -> (Router, String) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CERT)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Router::new(RouterConfig::default());
    let serving = router.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = serving.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    router.serve_connection(tls, Some(peer)).await;
                }
            });
        }
    });
    (router, format!("wss://localhost:{port}/ws"))
}

#[tokio::test]
async fn wss_with_extra_ca() {
    let (router, url) = start_tls().await;
    let mut config = client_config();
    config.extra_ca_pem = Some(CA.to_vec());
    let callee = connect(&url, config.clone()).await.unwrap();
    callee
        .register(
            "tls.echo",
            handler(|inv| async move { Ok(CallResult::new(inv.args, Kwargs::new())) }),
        )
        .await
        .unwrap();
    let caller = connect(&url, config).await.unwrap();
    let r = caller
        .call("tls.echo", vec![json!("secure")], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(r.args, vec![json!("secure")]);
    assert_eq!(router.session_count(), 2);
    router.close();
}

#[tokio::test]
async fn wss_insecure_and_unknown_issuer() {
    let (router, url) = start_tls().await;
    let mut insecure = client_config();
    insecure.tls_insecure = true;
    let s = connect(&url, insecure).await.unwrap();
    assert!(!s.is_closed());
    match connect(&url, client_config()).await {
        Err(WampError::Transport(message)) => assert!(message.contains("TLS"), "{message}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    let mut bad = client_config();
    bad.extra_ca_pem = Some(b"not a certificate".to_vec());
    assert!(matches!(
        connect(&url, bad).await,
        Err(WampError::Transport(_))
    ));
    router.close();
}
