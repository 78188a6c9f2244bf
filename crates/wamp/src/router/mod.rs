//! The WAMP router: broker and dealer of the basic profile, authentication, and the session
//! meta API, serving WebSocket connections and in-process sessions alike.

mod connection;
mod join;
mod realm;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::client::Session;
use crate::codec::Serializer;
use crate::error::WampError;
use crate::message::Id;
use crate::transport::websocket_config;

pub use join::StaticAuthenticator;
use realm::Realm;

/// Router settings. Build with [`Default`] and override fields.
#[derive(Clone)]
pub struct RouterConfig {
    /// Realms served; a HELLO for any other realm is answered with `wamp.error.no_such_realm`.
    pub realms: Vec<String>,
    /// Largest accepted WebSocket frame/message; a bigger one closes that connection (1009).
    pub max_frame_bytes: usize,
    /// Calls a session may have outstanding; beyond, CALL fails with
    /// `wamp.error.limit_exceeded`.
    pub max_pending_calls_per_session: usize,
    /// Call timeout when CALL carries no positive `options.timeout` (ms).
    pub default_call_timeout: Duration,
    /// Router-side WebSocket ping period; `None` disables pings and dead-peer detection.
    /// Only links quiet for a whole period are pinged.
    pub ping_interval: Option<Duration>,
    /// A connection with no frame at all from the peer for this long is dropped
    /// (only when pinging). Keep it a few times `ping_interval`.
    pub ping_timeout: Duration,
    /// Allow authmethod `anonymous` (authrole `anonymous`).
    pub anonymous: bool,
    /// Credentials for `ticket` and `wampcra`; without one only `anonymous` is possible.
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// Permission check for CALL, REGISTER, SUBSCRIBE and PUBLISH; `None` allows everything.
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// Serializers accepted, in the router's order of preference (the client's offer filters).
    pub serializers: Vec<Serializer>,
    /// Limit for the WebSocket handshake and for completing the WAMP join.
    pub handshake_timeout: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            realms: vec!["s4t".to_string()],
            max_frame_bytes: 1 << 20,
            max_pending_calls_per_session: 1024,
            default_call_timeout: Duration::from_secs(60),
            ping_interval: Some(Duration::from_secs(10)),
            ping_timeout: Duration::from_secs(30),
            anonymous: true,
            authenticator: None,
            authorizer: None,
            serializers: vec![Serializer::Json, Serializer::Msgpack],
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterConfig")
            .field("realms", &self.realms)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field(
                "max_pending_calls_per_session",
                &self.max_pending_calls_per_session,
            )
            .field("default_call_timeout", &self.default_call_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("anonymous", &self.anonymous)
            .field("authenticator", &self.authenticator.is_some())
            .field("authorizer", &self.authorizer.is_some())
            .field("serializers", &self.serializers)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// Source of credentials for `ticket` and `wampcra`.
pub trait Authenticator: Send + Sync + 'static {
    /// Secret and role for `authid` in `realm`, or `None` if unknown. The secret is the ticket
    /// for `ticket` (compared in constant time) and the key for `wampcra`.
    fn lookup(&self, realm: &str, authid: &str) -> BoxFuture<'static, Option<AuthGrant>>;

    /// The form a presented ticket is compared in: an authenticator that keeps only digests of
    /// tickets returns the digest here. Default: the ticket itself.
    fn ticket_as_stored(&self, ticket: &str) -> String {
        ticket.to_string()
    }
}

/// What an [`Authenticator`] knows about a principal.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthGrant {
    pub secret: String,
    pub authrole: String,
}

impl fmt::Debug for AuthGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthGrant")
            .field("secret", &"<redacted>")
            .field("authrole", &self.authrole)
            .finish()
    }
}

/// A joined session as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: Id,
    pub realm: String,
    /// Always set by this router. Anonymous sessions get a random one (Crossbar style,
    /// e.g. `"7KQ2-M4ZD-..."`); their HELLO authid is not trusted.
    pub authid: Option<String>,
    pub authrole: String,
    /// `anonymous`, `ticket`, `wampcra`, or `trusted` for local sessions.
    pub authmethod: String,
    /// Remote address of socket sessions.
    pub peer: Option<SocketAddr>,
}

/// An action subject to authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Call,
    Register,
    Subscribe,
    Publish,
}

/// Permission check; a denial answers the request with ERROR `wamp.error.not_authorized`.
pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, session: &SessionInfo, action: Action, uri: &str) -> bool;
}

/// A WAMP router. Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct Router {
    inner: Arc<RouterInner>,
}

struct RouterInner {
    config: RouterConfig,
    realms: HashMap<String, Arc<Realm>>,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("realms", &self.inner.config.realms)
            .field("sessions", &self.session_count())
            .finish()
    }
}

impl Router {
    pub fn new(config: RouterConfig) -> Router {
        let realms = config
            .realms
            .iter()
            .map(|name| (name.clone(), Arc::new(Realm::new(name.clone(), &config))))
            .collect();
        let (shutdown, _) = watch::channel(false);
        Router {
            inner: Arc::new(RouterInner {
                config,
                realms,
                closed: AtomicBool::new(false),
                shutdown,
            }),
        }
    }

    /// The configuration this router was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    /// Serves one accepted stream (plain TCP or TLS): WebSocket handshake, which must
    /// negotiate `wamp.2.json` or `wamp.2.msgpack` (otherwise HTTP 400, as Crossbar does),
    /// then the WAMP session. Returns when the connection ends.
    pub async fn serve_connection<S>(&self, stream: S, peer: Option<SocketAddr>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        connection::serve(self, stream, peer).await
    }

    /// Accepts connections until the listener fails or the router is closed, serving each in
    /// its own task.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let mut shutdown = self.inner.shutdown.subscribe();
        loop {
            if self.is_closed() {
                return Ok(());
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Small WAMP messages: latency matters more than packet count.
                        let _ = stream.set_nodelay(true);
                        let router = self.clone();
                        tokio::spawn(async move { router.serve_connection(stream, Some(peer)).await });
                    }
                    Err(e) if is_transient_accept_error(&e) => {
                        tracing::warn!("accept failed, retrying: {e}");
                        // Out of descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => return Err(e),
                },
                _ = async { shutdown.wait_for(|closed| *closed).await.is_ok() } => return Ok(()),
            }
        }
    }

    /// An in-process session on `realm`, joined as `authid`/`authrole` without authentication.
    /// It is a session like any other: it shows in the meta API and its calls and events go
    /// through the same routing, just without sockets or serialization.
    pub async fn local_session(
        &self,
        realm: &str,
        authid: &str,
        authrole: &str,
    ) -> Result<Session, WampError> {
        connection::local_session(self, realm, authid, authrole).await
    }

    /// Sessions currently joined, over all realms.
    pub fn session_count(&self) -> usize {
        self.inner.realms.values().map(|r| r.session_count()).sum()
    }

    /// Information about a joined session.
    pub fn session_info(&self, realm: &str, session: Id) -> Option<SessionInfo> {
        self.realm(realm)?.session_info(session)
    }

    /// Closes every session (GOODBYE `wamp.close.system_shutdown`) and stops serving: `serve`
    /// returns and new connections and joins are refused.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.shutdown.send_replace(true);
        for realm in self.inner.realms.values() {
            realm.shutdown();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    fn realm(&self, name: &str) -> Option<&Arc<Realm>> {
        self.inner.realms.get(name)
    }

    fn websocket_config(&self) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        websocket_config(self.inner.config.max_frame_bytes)
    }
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}
