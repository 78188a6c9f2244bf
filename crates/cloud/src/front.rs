//! The webservice front: `https://<name>.<dns>.<zone>` reaches port `port` of a board, with no
//! DNS server, no nginx and no certbot anywhere.
//!
//! HTTPS (`--https-addr`): the TLS ClientHello is read first; its SNI names the webservice (the
//! store says which board and which tunnel port), TLS is terminated here with a certificate for
//! that name (issued by the cloud's own CA, or the operator's), and the decrypted stream goes
//! through the webservice's tunnel to the board. Unknown names get no certificate.
//! HTTP (`--http-addr`): the `Host` header names the webservice; a `secure` webservice answers
//! 301 to its https URL, any other is proxied as plain HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::LazyConfigAcceptor;

use s4t_model::resources::Webservice;
use s4t_store::Store;

/// Where the front's certificates come from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// The cloud's own CA, kept in `dir` (`webservice-ca.pem`, `webservice-ca.key`), made on
    /// first start. Clients must trust `webservice-ca.pem`.
    OwnCa { dir: PathBuf },
    /// An operator's certificate chain and key (a wildcard for the zones, typically), served
    /// for every name. Re-read on renew.
    Files { cert: PathBuf, key: PathBuf },
}

/// How long certificates from the cloud CA are valid.
const LEAF_DAYS: i64 = 90;
/// The most a plain HTTP request head may take before the Host header is known.
const MAX_HEAD: usize = 16 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Certs {
    OwnCa {
        issuer: Box<Issuer<'static, KeyPair>>,
        ca_der: CertificateDer<'static>,
    },
    Files {
        cert: PathBuf,
        key: PathBuf,
        /// The config, and the certificate file's modification time it was read at.
        config: Mutex<(Arc<ServerConfig>, Option<std::time::SystemTime>)>,
    },
}

/// A CA-issued certificate is issued again once this old (well before it expires).
const REISSUE_AFTER: Duration = Duration::from_secs(60 * 86_400);

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

struct Inner {
    store: Store,
    certs: Certs,
    /// Server configs per host name (one certificate each), made at the first handshake.
    configs: Mutex<HashMap<String, (Arc<ServerConfig>, std::time::Instant)>>,
    /// The HTTPS port in redirects (none when it is 443).
    https_port: Mutex<Option<u16>>,
}

/// The webservice front. Cheap to clone.
#[derive(Clone)]
pub struct Front {
    inner: Arc<Inner>,
}

impl Front {
    /// A front serving the webservices of `store`, with certificates from `source`.
    pub fn new(store: Store, source: &CertSource) -> Result<Front, String> {
        let certs = match source {
            CertSource::OwnCa { dir } => {
                let (issuer, ca_der) = load_or_make_ca(dir)?;
                Certs::OwnCa {
                    issuer: Box::new(issuer),
                    ca_der,
                }
            }
            CertSource::Files { cert, key } => Certs::Files {
                config: Mutex::new((config_from_files(cert, key)?, modified(cert))),
                cert: cert.clone(),
                key: key.clone(),
            },
        };
        Ok(Front {
            inner: Arc::new(Inner {
                store,
                certs,
                configs: Mutex::new(HashMap::new()),
                https_port: Mutex::new(None),
            }),
        })
    }

    /// Forgets the certificates of `<dns>.<zone>` and its webservices, so the next handshake gets
    /// fresh ones (operator files are read again).
    pub fn renew(&self, dns: &str, zone: &str) -> Result<(), String> {
        let suffix = format!(
            ".{}.{}",
            dns.to_ascii_lowercase(),
            zone.to_ascii_lowercase()
        );
        self.inner
            .configs
            .lock()
            .unwrap()
            .retain(|name, _| !name.ends_with(&suffix));
        if let Certs::Files { cert, key, config } = &self.inner.certs {
            *config.lock().unwrap() = (config_from_files(cert, key)?, modified(cert));
        }
        Ok(())
    }

    /// The https URL of a host name, as redirects give it.
    pub fn https_url(&self, host: &str, path: &str) -> String {
        match *self.inner.https_port.lock().unwrap() {
            Some(port) => format!("https://{host}:{port}{path}"),
            None => format!("https://{host}{path}"),
        }
    }

    /// Serves HTTPS on `listener` until it fails.
    pub async fn serve_https(self, listener: TcpListener) {
        if let Ok(addr) = listener.local_addr() {
            *self.inner.https_port.lock().unwrap() = (addr.port() != 443).then_some(addr.port());
        }
        loop {
            let Some((tcp, peer)) = accept(&listener).await else {
                continue;
            };
            let front = self.clone();
            tokio::spawn(async move {
                if let Err(e) = front.https_connection(tcp).await {
                    tracing::debug!(%peer, "webservice front (https): {e}");
                }
            });
        }
    }

    /// Serves plain HTTP on `listener` until it fails.
    pub async fn serve_http(self, listener: TcpListener) {
        loop {
            let Some((tcp, peer)) = accept(&listener).await else {
                continue;
            };
            let front = self.clone();
            tokio::spawn(async move {
                if let Err(e) = front.http_connection(tcp).await {
                    tracing::debug!(%peer, "webservice front (http): {e}");
                }
            });
        }
    }

    async fn https_connection(&self, tcp: TcpStream) -> Result<(), String> {
        let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
        let start = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor)
            .await
            .map_err(|_| "no ClientHello in time".to_string())?
            .map_err(|e| format!("ClientHello: {e}"))?;
        let host = start
            .client_hello()
            .server_name()
            .map(str::to_ascii_lowercase)
            .ok_or("the client sent no server name (SNI)")?;
        let ws = self
            .route(&host)
            .await?
            .ok_or_else(|| format!("no webservice is published as {host}"))?;
        let config = self.config_for(&host)?;
        let mut tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake: {e}"))?;
        match self.dial(&ws).await {
            Ok(board) => splice(tls, board).await,
            Err(why) => {
                let _ = tls.write_all(&bad_gateway(&host, &why)).await;
                let _ = tls.shutdown().await;
                Err(why)
            }
        }
    }

    async fn http_connection(&self, mut tcp: TcpStream) -> Result<(), String> {
        let mut head = Vec::with_capacity(1024);
        let host = loop {
            let mut buf = [0u8; 2048];
            let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.read(&mut buf))
                .await
                .map_err(|_| "no request head in time".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before a request head".into());
            }
            head.extend_from_slice(&buf[..n]);
            match request_host(&head) {
                Ok(Some(host_and_path)) => break host_and_path,
                Ok(None) if head.len() < MAX_HEAD => continue,
                Ok(None) => {
                    let _ = tcp
                        .write_all(&plain_response(
                            431,
                            "Request Header Fields Too Large",
                            "The request head is larger than 16 KiB.\n",
                        ))
                        .await;
                    return Err("request head too large".into());
                }
                Err(why) => {
                    let _ = tcp
                        .write_all(&plain_response(400, "Bad Request", &format!("{why}\n")))
                        .await;
                    return Err(why);
                }
            }
        };
        let (host, path) = host;
        let Some(ws) = self.route(&host).await? else {
            let _ = tcp
                .write_all(&plain_response(
                    404,
                    "Not Found",
                    &format!("No webservice is published as {host}.\n"),
                ))
                .await;
            return Err(format!("no webservice is published as {host}"));
        };
        if ws.secure {
            let location = self.https_url(&host, &path);
            let response = format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tcp.write_all(response.as_bytes()).await;
            let _ = tcp.shutdown().await;
            return Ok(());
        }
        match self.dial(&ws).await {
            Ok(mut board) => {
                board.write_all(&head).await.map_err(|e| e.to_string())?;
                splice(tcp, board).await
            }
            Err(why) => {
                let _ = tcp.write_all(&bad_gateway(&host, &why)).await;
                Err(why)
            }
        }
    }

    async fn route(&self, host: &str) -> Result<Option<Webservice>, String> {
        self.inner
            .store
            .webservice_for_host(host)
            .await
            .map_err(|e| format!("store: {e}"))
    }

    /// The board end of a webservice: its tunnel port, open on loopback while the board's
    /// control socket is up.
    async fn dial(&self, ws: &Webservice) -> Result<TcpStream, String> {
        let port = ws
            .tunnel_port
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("the webservice has no tunnel port")?;
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|_| "its board is not connected (the tunnel is down)".to_string())?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    fn config_for(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        match &self.inner.certs {
            Certs::Files { cert, key, config } => {
                // Replaced files (a renewed wildcard) are served from the next connection.
                let mut held = config.lock().unwrap();
                let now = modified(cert);
                if now != held.1 {
                    match config_from_files(cert, key) {
                        Ok(c) => *held = (c, now),
                        Err(e) => {
                            tracing::warn!(error = %e, "new certificate files unusable; serving the old ones")
                        }
                    }
                }
                Ok(held.0.clone())
            }
            Certs::OwnCa { issuer, ca_der } => {
                if let Some((c, made)) = self.inner.configs.lock().unwrap().get(host) {
                    if made.elapsed() < REISSUE_AFTER {
                        return Ok(c.clone());
                    }
                }
                let (chain, key) = issue(issuer, ca_der, host)?;
                let config = server_config(chain, key)?;
                self.inner.configs.lock().unwrap().insert(
                    host.to_string(),
                    (config.clone(), std::time::Instant::now()),
                );
                Ok(config)
            }
        }
    }
}

async fn accept(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok((tcp, peer)) => {
            let _ = tcp.set_nodelay(true);
            Some((tcp, peer))
        }
        Err(e) => {
            tracing::warn!(error = %e, "webservice front: accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

async fn splice<A, B>(mut a: A, mut b: B) -> Result<(), String>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    tokio::io::copy_bidirectional(&mut a, &mut b)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The `Host` (without port, lower case) and the target of a complete request head; `None` while
/// the head is incomplete.
fn request_host(head: &[u8]) -> Result<Option<(String, String)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let host = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .ok_or("the request has no Host header: it names the webservice")?;
            let name = host
                .rsplit_once(':')
                .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                .map_or(host, |(name, _)| name)
                .trim()
                .to_ascii_lowercase();
            Ok(Some((name, req.path.unwrap_or("/").to_string())))
        }
        Err(e) => Err(format!("not an HTTP request: {e}")),
    }
}

fn plain_response(code: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn bad_gateway(host: &str, why: &str) -> Vec<u8> {
    plain_response(502, "Bad Gateway", &format!("Webservice {host}: {why}.\n"))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let (chain, key) = crate::tls::read_pem(cert, key)?;
    server_config(chain, key)
}

/// The cloud CA's certificate file (what clients must trust) in a data dir.
pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join("webservice-ca.pem")
}

fn load_or_make_ca(
    dir: &Path,
) -> Result<(Issuer<'static, KeyPair>, CertificateDer<'static>), String> {
    let cert_path = ca_cert_path(dir);
    let key_path = dir.join("webservice-ca.key");
    if cert_path.exists() && key_path.exists() {
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let (cert_pem, key_pem) = (read(&cert_path)?, read(&key_path)?);
        let key =
            KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: {e}", key_path.display()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        return Ok((issuer, der));
    }
    let key = KeyPair::generate().map_err(|e| format!("CA key: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "s4t cloud webservice CA");
    dn.push(DnType::OrganizationName, "s4t");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("CA certificate: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem()).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "made the webservice CA");
    let der = cert.der().clone();
    Ok((Issuer::new(params, key), der))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A certificate for `host` from the cloud CA: the chain (leaf, CA) and the leaf key.
fn issue(
    issuer: &Issuer<'static, KeyPair>,
    ca_der: &CertificateDer<'static>,
    host: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let key = KeyPair::generate().map_err(|e| format!("key for {host}: {e}"))?;
    let mut params =
        CertificateParams::new(vec![host.to_string()]).map_err(|e| format!("{host}: {e}"))?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, host);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(LEAF_DAYS);
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|e| format!("certificate for {host}: {e}"))?;
    let key_der =
        PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| format!("key for {host}: {e}"))?;
    Ok((vec![cert.der().clone(), ca_der.clone()], key_der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_name_their_webservice() {
        type Want = Result<Option<(&'static str, &'static str)>, &'static str>;
        let table: &[(&[u8], Want)] = &[
            (
                b"GET /x?y=1 HTTP/1.1\r\nHost: Web.Board1.Example.Test:8880\r\n\r\n",
                Ok(Some(("web.board1.example.test", "/x?y=1"))),
            ),
            (
                b"GET / HTTP/1.1\r\nhost: a.b.c\r\n\r\n",
                Ok(Some(("a.b.c", "/"))),
            ),
            (b"GET / HTTP/1.1\r\nHost: a.b.c\r\n", Ok(None)),
            (b"GET / HTTP/1.1\r\n\r\n", Err("no Host header")),
            (
                b"\x16\x03\x01 tls on the http port",
                Err("not an HTTP request"),
            ),
        ];
        for (head, want) in table {
            let got = request_host(head);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(
                    w.map(|(h, p)| (h.to_string(), p.to_string())),
                    g.clone(),
                    "{}",
                    String::from_utf8_lossy(head)
                ),
                (Err(w), Err(g)) => assert!(g.contains(w), "{g}"),
                _ => panic!("{}: {got:?}", String::from_utf8_lossy(head)),
            }
        }
    }

    #[test]
    fn the_ca_is_made_once_and_signs_for_names() {
        use rustls::client::danger::ServerCertVerifier;
        let dir = std::env::temp_dir().join(format!("s4t-ca-{}", uuid::Uuid::new_v4()));
        let (issuer, ca) = load_or_make_ca(&dir).unwrap();
        let mode = std::fs::metadata(dir.join("webservice-ca.key")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        let (again_issuer, again) = load_or_make_ca(&dir).unwrap();
        assert_eq!(ca, again, "a second start keeps the CA");
        for issuer in [&issuer, &again_issuer] {
            let (chain, _) = issue(issuer, &ca, "web.board1.example.test").unwrap();
            assert_eq!(chain.len(), 2);
            // The leaf verifies against the stored CA as a client would check it.
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.clone()).unwrap();
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::new(rustls::crypto::ring::default_provider()),
            )
            .build()
            .unwrap();
            let name = rustls::pki_types::ServerName::try_from("web.board1.example.test").unwrap();
            verifier
                .verify_server_cert(
                    &chain[0],
                    &chain[1..],
                    &name,
                    &[],
                    rustls::pki_types::UnixTime::now(),
                )
                .unwrap();
            let other = rustls::pki_types::ServerName::try_from("other.example.test").unwrap();
            assert!(verifier
                .verify_server_cert(
                    &chain[0],
                    &chain[1..],
                    &other,
                    &[],
                    rustls::pki_types::UnixTime::now()
                )
                .is_err());
        }
    }
}
