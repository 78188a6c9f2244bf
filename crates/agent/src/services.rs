//! Board services exposed through the cloud: Lightning-rod's service manager, with a native
//! wstun client instead of a Node.js process per tunnel.
//!
//! Each enabled service holds one control socket to the cloud's tunnel server and, for every
//! public connection announced on it (`NC:<id>`), a data socket joined to a fresh TCP connection
//! to the local port. A tunnel whose link drops reconnects by itself with jittered backoff, so a
//! restarted cloud gets its tunnels back without being asked. The enabled services are kept in
//! Lightning-rod's `services.json` (plus a backup copy) and come back when the agent restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use s4t_model::board_link::WampMessage;
use s4t_tunnel::pump::{self, PumpOptions};
use s4t_tunnel::wstun;
use s4t_wamp::ClientConfig;

use crate::plugins::conf::write_atomically;

/// The service procedures a board registers.
pub const SERVICE_METHODS: [&str; 4] = [
    "ServiceEnable",
    "ServiceDisable",
    "ServiceRestore",
    "ServicesStatus",
];

/// Lightning-rod's tunnel server port, used when the cloud does not say where its server is.
pub const WSTUN_PORT: u16 = 8080;

/// Consecutive "not allocated" refusals after which a tunnel is given up.
const GIVE_UP_AFTER: u32 = 3;

/// How long an enable or restore waits for the tunnel server to accept the control socket.
const UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Who the tunnels are opened as.
#[derive(Debug, Clone, Default)]
pub struct TunnelIdentity {
    pub board: String,
    /// The board secret an s4t cloud issued; sent as `Authorization: Bearer`.
    pub secret: Option<String>,
    /// Where the tunnel server is when a service does not say (`ws[s]://WAMP-HOST:8080`).
    pub default_server: Option<Url>,
}

impl TunnelIdentity {
    /// Lightning-rod's rule: the tunnel server is on port 8080 of the WAMP URL's host, with the
    /// same scheme.
    pub fn default_server_for(wamp_url: &str) -> Option<Url> {
        let u = Url::parse(wamp_url).ok()?;
        let host = u.host_str()?;
        Url::parse(&format!("{}://{host}:{WSTUN_PORT}", u.scheme())).ok()
    }
}

/// Where a tunnel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelState {
    Connecting,
    Up,
    /// The link is down; retrying. Why it went down.
    Down(String),
    /// The tunnel server refused the control socket (retrying: the cloud may not have recorded
    /// the port yet). Its answer.
    Refused(String),
}

impl TunnelState {
    fn label(&self) -> String {
        match self {
            TunnelState::Connecting => "connecting".into(),
            TunnelState::Up => "up".into(),
            TunnelState::Down(why) => format!("down: {why}"),
            TunnelState::Refused(why) => format!("refused: {why}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct TunnelSpec {
    service: String,
    name: String,
    public_port: u16,
    local_port: u16,
    server: Url,
}

struct Tunnel {
    spec: TunnelSpec,
    state: watch::Receiver<TunnelState>,
    stop: watch::Sender<bool>,
    open: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Tunnel {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The board's exposed services.
pub struct Services {
    file: PathBuf,
    dial: ClientConfig,
    identity: Arc<RwLock<TunnelIdentity>>,
    tunnels: Mutex<HashMap<String, Tunnel>>,
    restored: std::sync::atomic::AtomicBool,
    /// Held from reading services.json to writing it back, so that two calls at once cannot
    /// lose each other's change.
    file_lock: Arc<Mutex<()>>,
}

impl Services {
    /// Services kept in `dir/services.json`. `dial` gives the TLS trust settings.
    pub fn open(dir: &Path, dial: ClientConfig) -> Services {
        Services {
            file: dir.join("services.json"),
            dial,
            identity: Arc::new(RwLock::new(TunnelIdentity::default())),
            tunnels: Mutex::new(HashMap::new()),
            restored: Default::default(),
            file_lock: Arc::new(Mutex::new(())),
        }
    }

    /// Sets who the tunnels are opened as (at every connection: a re-registration changes the
    /// secret). The first call also brings back the tunnels kept in `services.json`.
    pub async fn connected_as(&self, identity: TunnelIdentity) {
        *self.identity.write().unwrap() = identity;
        if !self.restored.swap(true, Ordering::SeqCst) {
            self.restore_all().await;
        }
    }

    /// Starts a tunnel for every service in `services.json`, without waiting for them.
    async fn restore_all(&self) {
        let doc = match self.load() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "services not restored");
                return;
            }
        };
        let default = self.identity.read().unwrap().default_server.clone();
        for (uuid, entry) in doc.iter() {
            match spec_from_entry(uuid, entry, default.as_ref()) {
                Ok(spec) => {
                    tracing::info!(service = %spec.name, public_port = spec.public_port, "restoring service tunnel");
                    let t = self.start(spec);
                    if let Some(old) = self.tunnels.lock().await.insert(uuid.clone(), t) {
                        old.stop().await;
                    }
                }
                Err(e) => {
                    tracing::error!(service = %uuid, error = %e, "services.json entry not restored")
                }
            }
        }
    }

    /// Stops every tunnel (the agent stops; `services.json` keeps them for the next start).
    pub async fn shutdown(&self) {
        let all: Vec<Tunnel> = self.tunnels.lock().await.drain().map(|(_, t)| t).collect();
        for t in all {
            t.stop().await;
        }
    }

    /// Answers a service procedure with Lightning-rod's replies.
    pub async fn perform(&self, method: &str, data: &[Value]) -> WampMessage {
        match method {
            "ServiceEnable" => self.enable(data, false).await,
            "ServiceRestore" => self.enable(data, true).await,
            "ServiceDisable" => self.disable(data).await,
            "ServicesStatus" => self.status().await,
            other => WampMessage::error(format!("unknown service procedure {other}")),
        }
    }

    async fn enable(&self, data: &[Value], restore: bool) -> WampMessage {
        let svc = match ServiceArg::read(data.first()) {
            Ok(s) => s,
            Err(e) => return WampMessage::error(e),
        };
        let Some(public_port) = data.get(1).and_then(port_value) else {
            return WampMessage::error(format!(
                "{}: the second argument must be the public port (1-65535)",
                if restore {
                    "ServiceRestore"
                } else {
                    "ServiceEnable"
                }
            ));
        };
        let doc = match self.load() {
            Ok(d) => d,
            Err(e) => return WampMessage::error(e),
        };
        let server = svc
            .tunnel_url
            .clone()
            .or_else(|| self.identity.read().unwrap().default_server.clone());
        let Some(server) = server else {
            return WampMessage::error(format!(
                "Error spawning '{}' service tunnel! (no tunnel server known: the board has no WAMP URL)",
                svc.name
            ));
        };
        // A restore keeps the local port it had; anything else takes the service's.
        let local_port = match (restore, doc.get(&svc.uuid)) {
            (true, Some(e)) => e.get("local_port").and_then(port_value).unwrap_or(svc.port),
            _ => svc.port,
        };
        let spec = TunnelSpec {
            service: svc.uuid.clone(),
            name: svc.name.clone(),
            public_port,
            local_port,
            server: server.clone(),
        };
        if let Some(old) = self.tunnels.lock().await.remove(&svc.uuid) {
            old.stop().await;
        }
        let tunnel = self.start(spec.clone());
        let mut state = tunnel.state.clone();
        let reached = tokio::time::timeout(
            UP_TIMEOUT,
            state.wait_for(|s| !matches!(s, TunnelState::Connecting)),
        )
        .await
        .ok()
        .and_then(|r| r.ok().map(|s| s.clone()));
        let host = server.host_str().unwrap_or_default().to_string();
        if reached != Some(TunnelState::Up) {
            tunnel.stop().await;
            let why = match reached {
                Some(s) => s.label(),
                None => format!(
                    "the tunnel server at {server} did not answer within {} s",
                    UP_TIMEOUT.as_secs()
                ),
            };
            return WampMessage::error(if restore {
                format!("Error spawning {} service tunnel! ({why})", svc.name)
            } else {
                format!("Error spawning '{}' service tunnel! ({why})", svc.name)
            });
        }
        self.tunnels.lock().await.insert(svc.uuid.clone(), tunnel);
        let _file = self.file_lock.lock().await;
        let doc = match self.load() {
            Ok(d) => d,
            Err(e) => return WampMessage::error(e),
        };
        let now = chrono::Local::now()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string();
        let mut doc = doc;
        let entry = doc
            .entry(svc.uuid.clone())
            .or_insert_with(|| json!({"name": svc.name, "enabled_at": now, "updated_at": ""}));
        if entry.get("enabled_at").and_then(Value::as_str) != Some(&now) {
            entry["updated_at"] = json!(now);
        }
        entry["name"] = json!(svc.name);
        entry["public_port"] = json!(public_port);
        entry["local_port"] = json!(local_port);
        entry["pid"] = json!(std::process::id());
        entry["tunnel_url"] = json!(server.as_str());
        if let Err(e) = self.save(&doc) {
            return WampMessage::error(e);
        }
        WampMessage::success(if restore {
            format!(
                "service {} restored on port {public_port} on {host}",
                svc.name
            )
        } else {
            format!(
                "Cloud service '{}' exposed on port {public_port} on {host}",
                svc.name
            )
        })
    }

    async fn disable(&self, data: &[Value]) -> WampMessage {
        let svc = match ServiceArg::read(data.first()) {
            Ok(s) => s,
            Err(e) => return WampMessage::error(e),
        };
        let _file = self.file_lock.lock().await;
        let mut doc = match self.load() {
            Ok(d) => d,
            Err(e) => return WampMessage::error(e),
        };
        let running = self.tunnels.lock().await.remove(&svc.uuid);
        let had_running = running.is_some();
        if let Some(t) = running {
            t.stop().await;
        }
        if doc.remove(&svc.uuid).is_none() && !had_running {
            return WampMessage::success(format!(
                "ServiceDisable result:  {} already removed!",
                svc.uuid
            ));
        }
        if let Err(e) = self.save(&doc) {
            return WampMessage::error(e);
        }
        WampMessage::success(format!("Cloud service '{}' tunnel disabled.", svc.name))
    }

    async fn status(&self) -> WampMessage {
        let tunnels = self.tunnels.lock().await;
        let board = self.identity.read().unwrap().board.clone();
        let pid = std::process::id();
        let mut sockets = Vec::new();
        let mut procs = Vec::new();
        let mut list: Vec<&Tunnel> = tunnels.values().collect();
        list.sort_by_key(|t| t.spec.public_port);
        for t in list {
            let s = &t.spec;
            let server = format!(
                "{}:{}",
                s.server.host_str().unwrap_or_default(),
                s.server.port_or_known_default().unwrap_or(WSTUN_PORT)
            );
            sockets.push(format!(
                "s4t-agent {pid} TCP 127.0.0.1:{local} -> {server} (tunnel '{name}', public port {public}, {state}, {open} open connection(s))",
                local = s.local_port,
                name = s.name,
                public = s.public_port,
                state = t.state.borrow().label(),
                open = t.open.load(Ordering::Relaxed),
            ));
            procs.push(format!(
                "s4t-agent {pid} tunnel -r{public}:127.0.0.1:{local} {url} -u {board}",
                public = s.public_port,
                local = s.local_port,
                url = s.server.as_str().trim_end_matches('/'),
            ));
        }
        WampMessage::success(json!({"sockets": sockets, "procs": procs}))
    }

    fn start(&self, spec: TunnelSpec) -> Tunnel {
        let (state_tx, state) = watch::channel(TunnelState::Connecting);
        let (stop, stop_rx) = watch::channel(false);
        let open = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run_tunnel(
            spec.clone(),
            self.identity.clone(),
            self.dial.clone(),
            state_tx,
            stop_rx,
            open.clone(),
            (self.file.clone(), self.file_lock.clone()),
        ));
        Tunnel {
            spec,
            state,
            stop,
            open,
            task,
        }
    }

    fn load(&self) -> Result<Map<String, Value>, String> {
        load_file(&self.file)
    }

    fn save(&self, services: &Map<String, Value>) -> Result<(), String> {
        save_file(&self.file, services)
    }
}

/// The `services` map of `services.json`; a missing file is an empty map, a broken one is
/// replaced by its backup when that reads.
fn load_file(file: &Path) -> Result<Map<String, Value>, String> {
    let read = |p: &Path| -> Result<Option<Map<String, Value>>, String> {
        match std::fs::read(p) {
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("services").and_then(Value::as_object).cloned())
                .map(Some)
                .ok_or_else(|| format!("{} is not a services document", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    };
    match read(file) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Ok(Map::new()),
        Err(e) => match read(&backup(file)) {
            Ok(Some(m)) => {
                tracing::warn!(error = %e, "services.json unreadable; using its backup");
                Ok(m)
            }
            _ => Err(format!(
                "Error loading services.json file: backup is not restorable! ({e})"
            )),
        },
    }
}

fn save_file(file: &Path, services: &Map<String, Value>) -> Result<(), String> {
    let doc = json!({"services": services});
    let bytes = serde_json::to_vec_pretty(&doc).expect("a Value always serialises");
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    write_atomically(file, &bytes)
        .and_then(|()| write_atomically(&backup(file), &bytes))
        .map_err(|e| format!("Updating services.json error: {e}"))
}

fn backup(file: &Path) -> PathBuf {
    let mut b = file.as_os_str().to_owned();
    b.push(".bkp");
    PathBuf::from(b)
}

/// A port given as a number or a numeric string.
fn port_value(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|p| *p != 0)
}

/// The service dict boards are called with.
struct ServiceArg {
    uuid: String,
    name: String,
    port: u16,
    tunnel_url: Option<Url>,
}

impl ServiceArg {
    fn read(v: Option<&Value>) -> Result<ServiceArg, String> {
        let v = v
            .and_then(Value::as_object)
            .ok_or("the first argument must be the service (an object with uuid, name and port)")?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("the service argument has no {k}"))
        };
        let port = v
            .get("port")
            .and_then(port_value)
            .ok_or("the service argument has no port from 1 to 65535")?;
        let tunnel_url = match v.get("tunnel_url").and_then(Value::as_str) {
            Some(u) => Some(
                Url::parse(u)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "ws" | "wss"))
                    .ok_or_else(|| {
                        format!("the service's tunnel_url {u:?} is not a ws:// or wss:// URL")
                    })?,
            ),
            None => None,
        };
        Ok(ServiceArg {
            uuid: text("uuid")?,
            name: text("name")?,
            port,
            tunnel_url,
        })
    }
}

fn spec_from_entry(uuid: &str, e: &Value, default: Option<&Url>) -> Result<TunnelSpec, String> {
    let server = match e.get("tunnel_url").and_then(Value::as_str) {
        Some(u) => Url::parse(u).map_err(|err| format!("tunnel_url {u:?}: {err}"))?,
        None => default
            .cloned()
            .ok_or("no tunnel server known (no tunnel_url, no WAMP URL)")?,
    };
    Ok(TunnelSpec {
        service: uuid.to_string(),
        name: e
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(uuid)
            .to_string(),
        public_port: e
            .get("public_port")
            .and_then(port_value)
            .ok_or("no public_port")?,
        local_port: e
            .get("local_port")
            .and_then(port_value)
            .ok_or("no local_port")?,
        server,
    })
}

enum ControlError {
    /// The server answered with an HTTP error (401: not allowed).
    Refused(String),
    Failed(String),
}

type ClientSocket = tokio_tungstenite::WebSocketStream<s4t_wamp::client::DialedStream>;

/// Opens a wstun WebSocket (control or data) to `url`, offering the s4t extension; returns it
/// and whether the server took the extension.
async fn open_socket(
    url: &Url,
    dial: &ClientConfig,
    secret: Option<&str>,
) -> Result<(ClientSocket, bool), ControlError> {
    let stream = s4t_wamp::client::dial(url, dial)
        .await
        .map_err(|e| ControlError::Failed(e.to_string()))?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ControlError::Failed(format!("{url}: {e}")))?;
    let offer = format!("{}, {}", wstun::S4T_SUBPROTOCOL, wstun::SUBPROTOCOL);
    let h = request.headers_mut();
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(&offer).expect("static subprotocols are valid"),
    );
    if let Some(s) = secret {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {s}")) {
            h.insert(header::AUTHORIZATION, v);
        }
    }
    let handshake = tokio_tungstenite::client_async_with_config(
        request,
        stream,
        Some(pump::websocket_config()),
    );
    match tokio::time::timeout(dial.connect_timeout, handshake).await {
        Err(_) => Err(ControlError::Failed(format!(
            "the tunnel server at {url} did not complete the WebSocket handshake"
        ))),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            Err(ControlError::Refused(format!(
                "HTTP {}{}",
                resp.status().as_u16(),
                if body.is_empty() {
                    String::new()
                } else {
                    format!(": {body}")
                }
            )))
        }
        Ok(Err(e)) => Err(ControlError::Failed(format!("WebSocket handshake: {e}"))),
        Ok(Ok((ws, resp))) => {
            let chosen = resp
                .headers()
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim()
                .to_string();
            Ok((ws, chosen == wstun::S4T_SUBPROTOCOL))
        }
    }
}

async fn run_tunnel(
    spec: TunnelSpec,
    identity: Arc<RwLock<TunnelIdentity>>,
    dial: ClientConfig,
    state: watch::Sender<TunnelState>,
    mut stop: watch::Receiver<bool>,
    open: Arc<AtomicU64>,
    (file, file_lock): (PathBuf, Arc<Mutex<()>>),
) {
    let mut delay = Duration::from_millis(250);
    // Refusals that say the port is not this tunnel's (it was disabled while the board was
    // away, or given to another service): after a few in a row, the tunnel is given up.
    let mut not_ours = 0;
    loop {
        let (board, secret) = {
            let id = identity.read().unwrap();
            (id.board.clone(), id.secret.clone())
        };
        let mut url = wstun::control_url(&spec.server, spec.public_port, &board);
        url.query_pairs_mut()
            .append_pair(wstun::SERVICE_PARAM, &spec.service);
        let attempt = tokio::select! {
            r = open_socket(&url, &dial, secret.as_deref()) => r,
            _ = stop.changed() => return,
        };
        match attempt {
            Ok((ws, half_close)) => {
                let _ = state.send(TunnelState::Up);
                delay = Duration::from_millis(250);
                tracing::info!(service = %spec.name, public_port = spec.public_port, "service tunnel up");
                let why = serve_control(ws, &spec, &dial, half_close, &mut stop, &open).await;
                if *stop.borrow() {
                    return;
                }
                tracing::warn!(service = %spec.name, public_port = spec.public_port, "service tunnel down: {why}");
                let _ = state.send(TunnelState::Down(why));
            }
            Err(ControlError::Refused(why)) => {
                tracing::warn!(service = %spec.name, public_port = spec.public_port, "tunnel server refused the tunnel: {why}");
                not_ours = if why.contains(wstun::NOT_ALLOCATED) {
                    not_ours + 1
                } else {
                    0
                };
                if not_ours >= GIVE_UP_AFTER {
                    tracing::warn!(service = %spec.name, public_port = spec.public_port, "the cloud no longer gives this port to the service: tunnel given up and forgotten");
                    let _guard = file_lock.lock().await;
                    if let Ok(mut doc) = load_file(&file) {
                        if doc.remove(&spec.service).is_some() {
                            if let Err(e) = save_file(&file, &doc) {
                                tracing::error!(error = %e, "services.json not updated");
                            }
                        }
                    }
                    let _ = state.send(TunnelState::Refused(format!("given up: {why}")));
                    return;
                }
                let _ = state.send(TunnelState::Refused(why));
            }
            Err(ControlError::Failed(why)) => {
                let _ = state.send(TunnelState::Down(why));
            }
        }
        let ms = delay.as_millis() as u64;
        let wait = Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms));
        delay = (delay * 2).min(Duration::from_secs(30));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Serves `NC:<id>` frames until the control socket ends; returns why it ended.
async fn serve_control(
    mut ws: ClientSocket,
    spec: &TunnelSpec,
    dial: &ClientConfig,
    half_close: bool,
    stop: &mut watch::Receiver<bool>,
    open: &Arc<AtomicU64>,
) -> String {
    // The data sockets of this control socket end with it (the service was disabled).
    let mut data = tokio::task::JoinSet::new();
    let why = loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => match wstun::parse_new_connection(&t) {
                    Ok(id) => {
                        let (server, dial, local, open) =
                            (spec.server.clone(), dial.clone(), spec.local_port, open.clone());
                        data.spawn(async move {
                            open.fetch_add(1, Ordering::Relaxed);
                            if let Err(e) = connect_data(&server, &dial, id, local, half_close).await {
                                tracing::debug!(%id, error = %e, "tunnelled connection failed");
                            }
                            open.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "ignored on the tunnel control socket"),
                },
                Some(Ok(Message::Close(_))) | None => break "the tunnel server closed the control socket".to_string(),
                Some(Err(e)) => break format!("control socket: {e}"),
                Some(Ok(_)) => {}
            },
            // Reap finished data tasks as they end, so a long-lived tunnel does not pile them up.
            Some(_) = data.join_next(), if !data.is_empty() => {}
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                break "stopped".to_string();
            }
        }
    };
    if *stop.borrow() {
        data.shutdown().await;
    } else {
        // A control link that dropped does not cut the connections that still flow.
        data.detach_all();
    }
    why
}

/// One tunnelled connection: the data socket for `id` joined to the local service.
async fn connect_data(
    server: &Url,
    dial: &ClientConfig,
    id: uuid::Uuid,
    local_port: u16,
    half_close_offered: bool,
) -> Result<(), String> {
    let url = wstun::data_url(server, &id);
    let local = async {
        let tcp = TcpStream::connect(("127.0.0.1", local_port))
            .await
            .map_err(|e| format!("local service 127.0.0.1:{local_port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok::<_, String>(tcp)
    };
    let remote = async {
        open_socket(&url, dial, None).await.map_err(|e| match e {
            ControlError::Refused(w) | ControlError::Failed(w) => format!("data socket: {w}"),
        })
    };
    let (local, remote) = tokio::join!(local, remote);
    let (mut ws, half_close) = remote?;
    let tcp = match local {
        Ok(t) => t,
        Err(e) => {
            let _ = ws.close(None).await;
            return Err(e);
        }
    };
    let options = PumpOptions {
        half_close: half_close && half_close_offered,
        idle_timeout: None,
    };
    pump::pump(ws, tcp, options)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
