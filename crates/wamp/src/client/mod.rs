//! The WAMP client: [`connect`] over `ws://` or `wss://`, giving a [`Session`].

mod dial;
pub(crate) mod session;
mod tls;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};

pub use dial::{dial, DialedStream};
pub use session::{
    event_handler, handler, CallResult, Event, EventHandler, Handler, Invocation, Session,
};

use crate::codec::Serializer;
use crate::error::WampError;
use crate::transport::{spawn_websocket, websocket_config, Liveness, WsConn};

/// Client settings. [`ClientConfig::new`] gives sensible defaults.
#[derive(Clone)]
pub struct ClientConfig {
    pub realm: String,
    /// Offered in this order; the router picks one.
    pub serializers: Vec<Serializer>,
    /// `None` joins anonymously.
    pub auth: Option<ClientAuth>,
    /// Skip certificate verification for `wss://` (explicit opt-out, for self-signed test
    /// deployments).
    pub tls_insecure: bool,
    /// Extra PEM trust anchors for `wss://`, on top of the webpki roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Client-side WebSocket ping period; `None` disables pings and dead-link detection.
    pub ping_interval: Option<Duration>,
    /// The link is considered dead after this long without any frame from the router
    /// (only when pinging). Keep it a few times `ping_interval`.
    pub ping_timeout: Duration,
    /// Limit for TCP connect, TLS, WebSocket handshake and WAMP join together.
    pub connect_timeout: Duration,
    /// Timeout of [`Session::call`]; also sent to the router as `options.timeout`.
    pub default_call_timeout: Duration,
    /// Source address to bind (spreads many client sockets over several loopback addresses).
    pub local_addr: Option<IpAddr>,
    /// Largest frame accepted from the router.
    pub max_frame_bytes: usize,
}

impl ClientConfig {
    pub fn new(realm: impl Into<String>) -> Self {
        ClientConfig {
            realm: realm.into(),
            serializers: vec![Serializer::Json, Serializer::Msgpack],
            auth: None,
            tls_insecure: false,
            extra_ca_pem: None,
            ping_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(75),
            connect_timeout: Duration::from_secs(15),
            default_call_timeout: Duration::from_secs(60),
            local_addr: None,
            max_frame_bytes: 16 << 20,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("realm", &self.realm)
            .field("serializers", &self.serializers)
            .field("auth", &self.auth)
            .field("tls_insecure", &self.tls_insecure)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(Vec::len))
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("default_call_timeout", &self.default_call_timeout)
            .field("local_addr", &self.local_addr)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .finish()
    }
}

/// Credentials for joining.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// authmethod `ticket`: the ticket is sent as-is (use over TLS).
    Ticket { authid: String, ticket: String },
    /// authmethod `wampcra`: HMAC-SHA256 challenge-response; the secret never travels.
    WampCra { authid: String, secret: String },
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Ticket { authid, .. } => f
                .debug_struct("Ticket")
                .field("authid", authid)
                .finish_non_exhaustive(),
            ClientAuth::WampCra { authid, .. } => f
                .debug_struct("WampCra")
                .field("authid", authid)
                .finish_non_exhaustive(),
        }
    }
}

/// Connects to a router at a `ws://` or `wss://` URL and joins `config.realm`.
pub async fn connect(url: &str, config: ClientConfig) -> Result<Session, WampError> {
    match tokio::time::timeout(config.connect_timeout, connect_inner(url, &config)).await {
        Ok(result) => result,
        Err(_) => Err(WampError::Transport(format!(
            "connecting to {url} timed out after {:?}",
            config.connect_timeout
        ))),
    }
}

async fn connect_inner(url: &str, config: &ClientConfig) -> Result<Session, WampError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| WampError::Transport(format!("invalid URL {url:?}: {e}")))?;
    let secure = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        other => {
            return Err(WampError::Transport(format!(
                "unsupported URL scheme {other:?} (expected ws or wss)"
            )))
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| WampError::Transport(format!("URL {url:?} has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    if config.serializers.is_empty() {
        return Err(WampError::Transport("no serializer configured".into()));
    }

    let tcp = tcp_connect(&host, port, config.local_addr).await?;
    let _ = tcp.set_nodelay(true);

    let mut request = url
        .into_client_request()
        .map_err(|e| WampError::Transport(format!("invalid URL {url:?}: {e}")))?;
    let offered: Vec<&str> = config.serializers.iter().map(|s| s.subprotocol()).collect();
    let offered = HeaderValue::from_str(&offered.join(", "))
        .map_err(|e| WampError::Transport(format!("bad subprotocol header: {e}")))?;
    request
        .headers_mut()
        .insert(header::SEC_WEBSOCKET_PROTOCOL, offered);

    let liveness = Liveness {
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
    };
    let ws_config = websocket_config(config.max_frame_bytes);
    let (tx, rx) = if secure {
        let stream = tls::connect(config, &host, tcp).await?;
        let (ws, response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config))
                .await
                .map_err(|e| WampError::Transport(format!("WebSocket handshake failed: {e}")))?;
        let serializer = negotiated(&response)?;
        spawn_websocket(WsConn::new(ws, serializer, liveness))
    } else {
        let (ws, response) =
            tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config))
                .await
                .map_err(|e| WampError::Transport(format!("WebSocket handshake failed: {e}")))?;
        let serializer = negotiated(&response)?;
        spawn_websocket(WsConn::new(ws, serializer, liveness))
    };
    session::join(
        tx,
        rx,
        &config.realm,
        config.auth.as_ref(),
        config.default_call_timeout,
    )
    .await
}

fn negotiated(
    response: &tokio_tungstenite::tungstenite::handshake::client::Response,
) -> Result<Serializer, WampError> {
    response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(Serializer::from_subprotocol)
        .ok_or_else(|| WampError::Transport("the server did not select a WAMP subprotocol".into()))
}

pub(crate) async fn tcp_connect(
    host: &str,
    port: u16,
    local: Option<IpAddr>,
) -> Result<TcpStream, WampError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| WampError::Transport(format!("cannot resolve {host}: {e}")))?
        .filter(|a| local.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
        .collect();
    let mut last_error = format!("no usable address for {host}");
    for addr in addrs {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let attempt = async {
            let socket = socket?;
            if let Some(ip) = local {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            socket.connect(addr).await
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(WampError::Transport(last_error))
}
