//! The service tunnel server: wstun-compatible reverse tunnels from boards to public ports.
//!
//! A board's control socket (`?dst=HOST:PORT&uuid=BOARD`) is admitted only when the store says
//! that public port is exposed for that board: the allowlist is the `exposed_services` table,
//! not a file. s4t agents also prove who they are with their board secret
//! (`Authorization: Bearer`); stock boards, which cannot, are admitted only with
//! `--allow-anonymous-boards`. The server then listens on the public port and, for every TCP
//! connection there, sends `NC:<id>` on the control socket and waits (bounded) for the board's
//! data socket `?id=<id>`; the public socket is not read until then. See [`s4t_tunnel::wstun`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use s4t_store::services::PortPurpose;
use s4t_store::Store;
use s4t_tunnel::pump::{self, PumpOptions};
use s4t_tunnel::wstun::{self, Upgrade};

type TunnelSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// How the tunnel server runs.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// Where public ports are opened (the address users reach services on).
    pub public_host: IpAddr,
    /// Public ports the cloud hands out.
    pub ports: RangeInclusive<u16>,
    /// Admit control sockets without a board secret (stock Lightning-rods).
    pub allow_anonymous_boards: bool,
    /// How long a public connection waits for the board's data socket.
    pub pending_timeout: Duration,
    /// Close a tunnelled connection after this long without traffic; `None`: never.
    pub idle_timeout: Option<Duration>,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            public_host: IpAddr::from([127, 0, 0, 1]),
            ports: s4t_model::public_ports::DEFAULT_RANGE,
            allow_anonymous_boards: false,
            pending_timeout: Duration::from_secs(10),
            idle_timeout: None,
        }
    }
}

/// Counters, for status and metrics.
#[derive(Debug, Default)]
pub struct TunnelCounters {
    pub connections_total: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_unanswered: AtomicU64,
    /// Bytes from public clients to boards.
    pub bytes_to_boards: AtomicU64,
    /// Bytes from boards to public clients.
    pub bytes_from_boards: AtomicU64,
    pub controls_refused: AtomicU64,
}

/// One public port that a board's control socket holds open.
struct Control {
    board: String,
    serial: u64,
    /// Opened with the board secret: an anonymous socket may not take its place.
    authenticated: bool,
    /// Ends the control socket and closes its listener.
    stop: watch::Sender<bool>,
}

struct Pending {
    port: u16,
    deliver: oneshot::Sender<(TunnelSocket, bool)>,
}

struct Inner {
    store: Store,
    config: TunnelConfig,
    controls: Mutex<HashMap<u16, Control>>,
    /// Per public port, ends every connection tunnelled through it, whichever control socket
    /// announced it: a board that reconnects keeps its open connections; a disable cuts them.
    revocations: Mutex<HashMap<u16, watch::Sender<bool>>>,
    /// Per public port, how many times it was revoked: a control socket admitted while its
    /// port was being revoked is not kept.
    revoked: Mutex<HashMap<u16, u64>>,
    pending: Mutex<HashMap<Uuid, Pending>>,
    serial: AtomicU64,
    counters: TunnelCounters,
    /// The overlay hub whose WebSocket fallback is served on `/overlay`.
    overlay: std::sync::OnceLock<crate::hub::Hub>,
}

/// The tunnel server. Cheap to clone.
#[derive(Clone)]
pub struct TunnelServer {
    inner: Arc<Inner>,
}

/// What a public port's tunnel looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub board: String,
    pub connected: bool,
}

impl TunnelServer {
    pub fn new(store: Store, config: TunnelConfig) -> TunnelServer {
        TunnelServer {
            inner: Arc::new(Inner {
                store,
                config,
                controls: Mutex::new(HashMap::new()),
                revocations: Mutex::new(HashMap::new()),
                revoked: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                serial: AtomicU64::new(1),
                counters: TunnelCounters::default(),
                overlay: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Serves the overlay hub's WebSocket fallback on [`crate::hub::WS_PATH`].
    pub fn set_overlay(&self, hub: crate::hub::Hub) {
        let _ = self.inner.overlay.set(hub);
    }

    pub fn config(&self) -> &TunnelConfig {
        &self.inner.config
    }

    pub fn counters(&self) -> &TunnelCounters {
        &self.inner.counters
    }

    /// The HTTP service: the wstun upgrade endpoint on `/` and a status page.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Hands an upgrade on `/overlay` to the hub: the board's frames, when UDP cannot pass.
    /// The sealed packets authenticate themselves, so no credential is asked here.
    fn overlay(&self, mut req: Request) -> Response {
        let Some(hub) = self.inner.overlay.get().cloned() else {
            return plain(
                StatusCode::NOT_FOUND,
                "this cloud runs no overlay hub (--overlay-addr)",
            );
        };
        let offered = req
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !offered
            .split(',')
            .any(|p| p.trim() == crate::hub::WS_SUBPROTOCOL)
        {
            return plain(
                StatusCode::BAD_REQUEST,
                format!(
                    "offer the WebSocket subprotocol {} (Sec-WebSocket-Protocol)",
                    crate::hub::WS_SUBPROTOCOL
                ),
            );
        }
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (response, on_upgrade) = match accept(&mut req, crate::hub::WS_SUBPROTOCOL) {
            Ok(r) => r,
            Err(why) => return plain(StatusCode::BAD_REQUEST, why),
        };
        tokio::spawn(async move {
            if let Some(ws) = upgraded(on_upgrade).await {
                hub.serve_websocket(ws, peer).await;
            }
        });
        response
    }

    /// Whether a board's control socket holds `port` open.
    pub fn port_status(&self, port: u16) -> Option<PortStatus> {
        self.inner
            .controls
            .lock()
            .unwrap()
            .get(&port)
            .map(|c| PortStatus {
                board: c.board.clone(),
                connected: true,
            })
    }

    /// Closes a public port at once: its control socket, its listener and every connection
    /// tunnelled through it (the service was disabled or its board deleted).
    pub fn revoke_port(&self, port: u16) {
        let removed = {
            // Counted under the controls lock, which admission holds while it checks the count.
            let mut controls = self.inner.controls.lock().unwrap();
            *self.inner.revoked.lock().unwrap().entry(port).or_default() += 1;
            controls.remove(&port)
        };
        if let Some(c) = removed {
            let _ = c.stop.send(true);
        }
        if let Some(r) = self.inner.revocations.lock().unwrap().remove(&port) {
            let _ = r.send(true);
        }
        self.inner
            .pending
            .lock()
            .unwrap()
            .retain(|_, p| p.port != port);
    }

    /// Closes every public port and tunnelled connection (the cloud stops).
    pub fn close_all(&self) {
        let mut ports: Vec<u16> = self
            .inner
            .controls
            .lock()
            .unwrap()
            .keys()
            .copied()
            .collect();
        ports.extend(self.inner.revocations.lock().unwrap().keys());
        for port in ports {
            self.revoke_port(port);
        }
    }

    /// Serves until the listener fails. TLS when an acceptor is given.
    pub async fn serve(self, listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
        let app = self.router();
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let app = app.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_http(tcp, app, peer).await,
                    Some(tls) => {
                        match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                            Ok(Ok(stream)) => serve_http(stream, app, peer).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "tunnel TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "tunnel TLS handshake timed out"),
                        }
                    }
                }
            });
        }
    }
}

async fn serve_http<S>(io: S, app: axum::Router, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "tunnel HTTP connection ended with an error");
    }
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

fn unauthorized(why: impl std::fmt::Display) -> Response {
    // wstun's words first, so that a stock client's log reads as it used to.
    plain(
        StatusCode::UNAUTHORIZED,
        format!("Request unauthorized! ({why})"),
    )
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

/// The `101 Switching Protocols` answer, and the socket once hyper hands it over.
fn accept(
    req: &mut Request,
    subprotocol: &'static str,
) -> Result<(Response, hyper::upgrade::OnUpgrade), &'static str> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key is missing")?;
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let accept_key = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key)
        .header(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(subprotocol),
        )
        .body(Body::empty())
        .expect("static response parts are valid");
    Ok((response, on_upgrade))
}

async fn upgraded(on_upgrade: hyper::upgrade::OnUpgrade) -> Option<TunnelSocket> {
    match on_upgrade.await {
        Ok(io) => Some(
            WebSocketStream::from_raw_socket(
                TokioIo::new(io),
                Role::Server,
                Some(pump::websocket_config()),
            )
            .await,
        ),
        Err(e) => {
            tracing::debug!(error = %e, "tunnel upgrade failed");
            None
        }
    }
}

async fn handle(State(server): State<TunnelServer>, mut req: Request) -> Response {
    if !is_websocket_upgrade(req.headers()) {
        return plain(
            StatusCode::OK,
            "s4t tunnel server is running (wstun protocol).\n",
        );
    }
    if req.uri().path() == crate::hub::WS_PATH {
        return server.overlay(req);
    }
    let kind = match wstun::classify(req.uri().query()) {
        Ok(k) => k,
        Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let offered = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(subprotocol) = wstun::select_subprotocol(offered) else {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "offer the WebSocket subprotocol {} (Sec-WebSocket-Protocol)",
                wstun::SUBPROTOCOL
            ),
        );
    };
    let half_close = subprotocol == wstun::S4T_SUBPROTOCOL;
    match kind {
        Upgrade::Control {
            public_port, board, ..
        } => server.control(req, public_port, board, subprotocol).await,
        Upgrade::Data { id } => {
            let Some(pending) = server.inner.pending.lock().unwrap().remove(&id) else {
                return plain(
                    StatusCode::NOT_FOUND,
                    format!("no public connection {id} waits for its data socket (it expired, or was never announced)"),
                );
            };
            let (response, on_upgrade) = match accept(&mut req, subprotocol) {
                Ok(r) => r,
                Err(why) => return plain(StatusCode::BAD_REQUEST, why),
            };
            tokio::spawn(async move {
                if let Some(ws) = upgraded(on_upgrade).await {
                    let _ = pending.deliver.send((ws, half_close));
                }
            });
            response
        }
    }
}

impl TunnelServer {
    async fn control(
        &self,
        mut req: Request,
        public_port: u16,
        board: Option<String>,
        subprotocol: &'static str,
    ) -> Response {
        let inner = &self.inner;
        let refuse = |why: String| {
            inner
                .counters
                .controls_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(public_port, "tunnel control socket refused: {why}");
            unauthorized(why)
        };
        let Some(board) = board else {
            return refuse("no board uuid: add &uuid=<board uuid>".into());
        };
        let revoked_before = inner
            .revoked
            .lock()
            .unwrap()
            .get(&public_port)
            .copied()
            .unwrap_or(0);
        let holder = match inner.store.port_holder(public_port).await {
            Ok(e) => e,
            Err(e) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the tunnel server cannot read the store: {e}"),
                )
            }
        };
        let Some(holder) = holder.filter(|h| h.board_uuid == board) else {
            return refuse(format!(
                "public port {public_port} {} board {board}",
                wstun::NOT_ALLOCATED
            ));
        };
        if let Some(service) = wstun::requested_service(req.uri().query()) {
            if service != holder.owner_uuid {
                return refuse(format!(
                    "public port {public_port} {} service {service} (it is another's now)",
                    wstun::NOT_ALLOCATED
                ));
            }
        }
        let authenticated = bearer(req.headers()).is_some();
        match bearer(req.headers()) {
            Some(secret) => {
                let stored = inner.store.board_secret_hash(&board).await.ok().flatten();
                let given = crate::gateway::secret_hash(secret);
                let ok = stored.is_some_and(|s| {
                    subtle::ConstantTimeEq::ct_eq(s.as_bytes(), given.as_bytes()).into()
                });
                if !ok {
                    return refuse(format!("wrong secret for board {board}"));
                }
            }
            None if inner.config.allow_anonymous_boards => {
                // Compatibility mode admits stock boards, never in place of the real one.
                let held = inner
                    .controls
                    .lock()
                    .unwrap()
                    .get(&public_port)
                    .is_some_and(|c| c.authenticated);
                if held {
                    return refuse(format!(
                        "public port {public_port} is held by board {board} with its secret; an anonymous socket cannot take it over"
                    ));
                }
            }
            None => {
                return refuse(format!(
                    "board {board} did not authenticate; stock Lightning-rods need s4t cloud --allow-anonymous-boards"
                ))
            }
        }
        // A webservice's tunnel is for the HTTPS front only: never open to users directly.
        let host = match holder.purpose {
            PortPurpose::Service => inner.config.public_host,
            PortPurpose::Webservice => IpAddr::from([127, 0, 0, 1]),
        };
        let listener = match self.listen(host, public_port).await {
            Ok(l) => l,
            Err(e) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot listen on public port {public_port}: {e}"),
                )
            }
        };
        let (response, on_upgrade) = match accept(&mut req, subprotocol) {
            Ok(r) => r,
            Err(why) => return plain(StatusCode::BAD_REQUEST, why),
        };
        let serial = inner.serial.fetch_add(1, Ordering::Relaxed);
        let (stop, stop_rx) = watch::channel(false);
        let revoke_rx = inner
            .revocations
            .lock()
            .unwrap()
            .entry(public_port)
            .or_insert_with(|| watch::channel(false).0)
            .subscribe();
        let replaced = {
            let mut controls = inner.controls.lock().unwrap();
            let revoked_now = inner
                .revoked
                .lock()
                .unwrap()
                .get(&public_port)
                .copied()
                .unwrap_or(0);
            if revoked_now != revoked_before {
                drop(controls);
                return refuse(format!(
                    "public port {public_port} was revoked while this socket was admitted: try again"
                ));
            }
            controls.insert(
                public_port,
                Control {
                    board: board.clone(),
                    serial,
                    authenticated,
                    stop,
                },
            )
        };
        if let Some(old) = replaced {
            let _ = old.stop.send(true);
        }
        let server = self.clone();
        tokio::spawn(async move {
            if let Some(ws) = upgraded(on_upgrade).await {
                tracing::info!(public_port, %board, "service tunnel up");
                server
                    .run_control(ws, listener, public_port, stop_rx, revoke_rx)
                    .await;
                tracing::info!(public_port, %board, "service tunnel down");
            }
            let mut controls = server.inner.controls.lock().unwrap();
            if controls
                .get(&public_port)
                .is_some_and(|c| c.serial == serial)
            {
                controls.remove(&public_port);
            }
        });
        response
    }

    /// Binds the public port. A control socket that still holds it (the board reconnected before
    /// the old link was seen to drop) is told to let go first.
    async fn listen(&self, host: IpAddr, port: u16) -> std::io::Result<TcpListener> {
        let addr = SocketAddr::new(host, port);
        let old = self.inner.controls.lock().unwrap().remove(&port);
        if let Some(old) = old {
            let _ = old.stop.send(true);
        }
        let mut last = None;
        for _ in 0..40 {
            match TcpListener::bind(addr).await {
                Ok(l) => return Ok(l),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("address in use")))
    }

    async fn run_control(
        &self,
        mut ws: TunnelSocket,
        listener: TcpListener,
        port: u16,
        mut stop: watch::Receiver<bool>,
        revoke: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(port, error = %e, "public port: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    let id = Uuid::new_v4();
                    let (deliver, delivered) = oneshot::channel();
                    self.inner.pending.lock().unwrap().insert(id, Pending { port, deliver });
                    if ws.send(Message::text(wstun::new_connection_frame(&id))).await.is_err() {
                        self.inner.pending.lock().unwrap().remove(&id);
                        break;
                    }
                    tokio::spawn(self.clone().tunnel_connection(tcp, peer, id, delivered, revoke.clone()));
                }
                msg = ws.next() => match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => {}
                },
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    break;
                }
            }
        }
        // Connections announced on this socket that no board will answer now.
        self.inner
            .pending
            .lock()
            .unwrap()
            .retain(|_, p| p.port != port || !p.deliver.is_closed());
    }

    async fn tunnel_connection(
        self,
        tcp: TcpStream,
        peer: SocketAddr,
        id: Uuid,
        delivered: oneshot::Receiver<(TunnelSocket, bool)>,
        mut revoke: watch::Receiver<bool>,
    ) {
        let c = &self.inner.counters;
        c.connections_total.fetch_add(1, Ordering::Relaxed);
        let (ws, half_close) =
            match tokio::time::timeout(self.inner.config.pending_timeout, delivered).await {
                Ok(Ok(d)) => d,
                _ => {
                    self.inner.pending.lock().unwrap().remove(&id);
                    c.connections_unanswered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, %id, "the board did not open the data socket in time");
                    return;
                }
            };
        c.connections_open.fetch_add(1, Ordering::Relaxed);
        let options = PumpOptions {
            half_close,
            idle_timeout: self.inner.config.idle_timeout,
        };
        tokio::select! {
            r = pump::pump(ws, tcp, options) => {
                if let Ok(moved) = r {
                    c.bytes_to_boards.fetch_add(moved.tcp_to_ws, Ordering::Relaxed);
                    c.bytes_from_boards.fetch_add(moved.ws_to_tcp, Ordering::Relaxed);
                }
            }
            _ = revoke.wait_for(|r| *r) => {}
        }
        c.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The public ports a control socket holds open now, with their boards, by port.
    pub fn open_ports(&self) -> Vec<(u16, String)> {
        let mut list: Vec<(u16, String)> = self
            .inner
            .controls
            .lock()
            .unwrap()
            .iter()
            .map(|(p, c)| (*p, c.board.clone()))
            .collect();
        list.sort();
        list
    }

    /// Counters as JSON (for `GET /v1/tunnels`).
    pub fn counters_json(&self) -> Value {
        let c = &self.inner.counters;
        json!({
            "public_ports_open": self.inner.controls.lock().unwrap().len(),
            "connections_total": c.connections_total.load(Ordering::Relaxed),
            "connections_open": c.connections_open.load(Ordering::Relaxed),
            "connections_unanswered": c.connections_unanswered.load(Ordering::Relaxed),
            "bytes_to_boards": c.bytes_to_boards.load(Ordering::Relaxed),
            "bytes_from_boards": c.bytes_from_boards.load(Ordering::Relaxed),
            "controls_refused": c.controls_refused.load(Ordering::Relaxed),
        })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}
