//! A port's encrypted tunnel to the cloud's network hub: frames read from the TAP are sealed
//! (Noise IK session, `s4t_tunnel::overlay`) and sent to the hub; the hub's packets are opened
//! and written to the TAP.
//!
//! The frames move on two threads of their own (TAP to hub, UDP to TAP) with plain syscalls:
//! one read and one write per frame, no wakeups through the async runtime, which costs more
//! than the cipher at these rates. Handshakes, keepalives and the WebSocket path stay async.
//!
//! UDP to the hub comes first. When it gets no answer, the tunnel tries the WebSocket path on
//! the cloud's tunnel server (`/overlay`), and goes back to UDP when a rekey finds it open
//! again. A keepalive every [`KEEPALIVE`] is answered by the hub; a tunnel that hears nothing
//! for [`DEAD_AFTER`] handshakes again, so it recovers from link loss and cloud restarts by
//! itself. The session is renewed every [`REKEY`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::UdpSocket;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use s4t_tunnel::overlay::{self, Initiator, Kind, Session};

/// A keepalive goes to the hub this often.
pub const KEEPALIVE: Duration = Duration::from_secs(5);
/// Nothing heard from the hub for this long: handshake again.
pub const DEAD_AFTER: Duration = Duration::from_secs(15);
/// A session is renewed this often.
pub const REKEY: Duration = Duration::from_secs(120);
/// The WebSocket subprotocol of the fallback path.
const WS_SUBPROTOCOL: &str = "s4t-overlay.v1";

/// The board's static overlay key pair (`overlay.key`).
pub type Keypair = overlay::StaticKey;

/// The hub a port's tunnel goes to, as `OverlayPortAdd` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct HubSpec {
    public_key: Vec<u8>,
    /// `host:port` for UDP.
    endpoint: Option<String>,
    /// `ws[s]://…/overlay` for the fallback.
    fallback_url: Option<Url>,
}

impl HubSpec {
    pub fn read(v: &Value) -> Result<HubSpec, String> {
        let public_key = v["public_key"]
            .as_str()
            .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
            .filter(|k| k.len() == 32)
            .ok_or("hub.public_key must be a 32-byte key in base64")?;
        let endpoint = v["endpoint"].as_str().map(str::to_string);
        let fallback_url = match v["fallback_url"].as_str() {
            None => None,
            Some(u) => Some(
                Url::parse(u)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "ws" | "wss"))
                    .ok_or_else(|| {
                        format!("hub.fallback_url {u:?} is not a ws:// or wss:// URL")
                    })?,
            ),
        };
        if endpoint.is_none() && fallback_url.is_none() {
            return Err("the hub has neither an endpoint nor a fallback_url".into());
        }
        Ok(HubSpec {
            public_key,
            endpoint,
            fallback_url,
        })
    }
}

/// How a tunnel stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStatus {
    /// `udp` or `websocket` while up; `None` while down.
    pub transport: Option<&'static str>,
    /// Why it is down, while it is.
    pub reason: Option<String>,
    pub last_handshake: Option<SystemTime>,
    pub handshakes: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl LinkStatus {
    pub fn to_json(&self) -> Value {
        json!({
            "tunnel": if self.transport.is_some() { "up" } else { "down" },
            "transport": self.transport,
            "reason": self.reason,
            "last_handshake": self.last_handshake.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "handshakes": self.handshakes,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        })
    }
}

/// Where sealed packets go.
#[derive(Clone)]
enum Out {
    Udp(Arc<UdpSocket>),
    WebSocket(mpsc::Sender<Vec<u8>>),
}

impl Out {
    /// Sends one packet. On UDP this may wait for room in the socket buffer, as a blocking
    /// send does: that is the back-pressure towards the TAP.
    fn send(&self, packet: Vec<u8>) -> bool {
        match self {
            Out::Udp(s) => s.send(&packet).is_ok(),
            // A full queue loses the frame, as a full UDP buffer would.
            Out::WebSocket(tx) => tx.try_send(packet).is_ok(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Out::Udp(_) => "udp",
            Out::WebSocket(_) => "websocket",
        }
    }
}

struct Active {
    session: Arc<Session>,
    out: Out,
}

/// What the tunnel's tasks share.
struct Shared {
    /// The TAP; taken (and so closed) when the link stops, whoever else still holds `Shared`.
    device: RwLock<Option<tun_rs::SyncDevice>>,
    /// Wakes the TAP thread when the link stops.
    stop_tap: tun_rs::InterruptEvent,
    stopped: AtomicBool,
    current: RwLock<Option<Arc<Active>>>,
    /// The session a rekey replaced: in-flight packets still open.
    previous: RwLock<Option<Arc<Session>>>,
    started: Instant,
    /// Milliseconds since `started` at the last authentic packet from the hub.
    last_rx: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    handshakes: AtomicU64,
    last_handshake: Mutex<Option<SystemTime>>,
    reason: Mutex<Option<String>>,
}

impl Shared {
    fn heard(&self) {
        self.last_rx
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_rx.load(Ordering::Relaxed)))
    }

    fn down(&self, why: impl Into<String>) {
        *self.current.write().unwrap() = None;
        *self.reason.lock().unwrap() = Some(why.into());
    }

    /// A packet from the hub: a handshake answer goes to the control task, data to the TAP.
    fn incoming(&self, packet: &[u8], answers: &mpsc::Sender<Vec<u8>>) {
        match overlay::kind(packet) {
            Some(Kind::Response) => {
                let _ = answers.try_send(packet.to_vec());
            }
            Some(Kind::Data) => {
                let Ok((index, _)) = overlay::data_header(packet) else {
                    return;
                };
                let session = {
                    let current = self.current.read().unwrap();
                    match current.as_ref() {
                        Some(a) if a.session.local_index == index => Some(a.session.clone()),
                        _ => self
                            .previous
                            .read()
                            .unwrap()
                            .clone()
                            .filter(|s| s.local_index == index),
                    }
                };
                let Some(session) = session else { return };
                let Ok(frame) = session.open(packet) else {
                    return;
                };
                self.heard();
                if !frame.is_empty() {
                    self.bytes_in
                        .fetch_add(frame.len() as u64, Ordering::Relaxed);
                    // The kernel queues TAP writes; one it refuses is a dropped frame.
                    if let Some(d) = self.device.read().unwrap().as_ref() {
                        let _ = d.send(&frame);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A port's tunnel. Dropping it stops the tunnel and closes the TAP.
pub struct Link {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.stopped.store(true, Ordering::Relaxed);
        let _ = self.shared.stop_tap.trigger();
        // Waits for the TAP thread to leave its read (the event woke it), then closes the TAP
        // now: the interface is gone when the port's removal is answered.
        drop(self.shared.device.write().unwrap().take());
    }
}

impl Link {
    /// Starts the tunnel of `device` (the TAP of port `port`) to `hub`; with no hub the TAP is
    /// only held open.
    pub fn start(
        device: tun_rs::SyncDevice,
        port: uuid::Uuid,
        hub: Option<HubSpec>,
        key: Arc<Keypair>,
        dial: s4t_wamp::ClientConfig,
    ) -> Link {
        let stop_tap = match tun_rs::InterruptEvent::new() {
            Ok(e) => e,
            Err(e) => panic!("an eventfd for the overlay thread: {e}"),
        };
        let shared = Arc::new(Shared {
            device: RwLock::new(Some(device)),
            stop_tap,
            stopped: AtomicBool::new(false),
            current: RwLock::new(None),
            previous: RwLock::new(None),
            started: Instant::now(),
            last_rx: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            handshakes: AtomicU64::new(0),
            last_handshake: Mutex::new(None),
            reason: Mutex::new(Some(
                "the cloud runs no overlay hub: the interface carries no traffic".into(),
            )),
        });
        let mut tasks = Vec::new();
        if let Some(hub) = hub {
            *shared.reason.lock().unwrap() = Some("connecting".into());
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("overlay-tap".into())
                .spawn(move || tap_to_hub(&s));
            if let Err(e) = spawned {
                *shared.reason.lock().unwrap() = Some(format!("cannot start a thread: {e}"));
                return Link { shared, tasks };
            }
            tasks.push(tokio::spawn(control(shared.clone(), port, hub, key, dial)));
        }
        Link { shared, tasks }
    }

    pub fn status(&self) -> LinkStatus {
        let s = &self.shared;
        let transport = s.current.read().unwrap().as_ref().map(|a| a.out.name());
        LinkStatus {
            transport,
            reason: if transport.is_some() {
                None
            } else {
                s.reason.lock().unwrap().clone()
            },
            last_handshake: *s.last_handshake.lock().unwrap(),
            handshakes: s.handshakes.load(Ordering::Relaxed),
            bytes_in: s.bytes_in.load(Ordering::Relaxed),
            bytes_out: s.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// Frames from the TAP, sealed, to the hub (a thread of its own, until the link stops).
/// Frames read while the tunnel is down are dropped (the kernel's own retries and TCP cover
/// them).
fn tap_to_hub(shared: &Shared) {
    let mut buf = vec![0u8; 65536];
    while !shared.stopped.load(Ordering::Relaxed) {
        let guard = shared.device.read().unwrap();
        let Some(device) = guard.as_ref() else { return };
        // Read while frames wait; sleep in poll (TAP or stop event) only when none does.
        let n = match device.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let _ = device.wait_readable_intr(&shared.stop_tap);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "overlay: reading the TAP failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        drop(guard);
        let active = shared.current.read().unwrap().clone();
        let Some(active) = active else { continue };
        if let Ok(packet) = active.session.seal(&buf[..n]) {
            if active.out.send(packet) {
                shared.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// What receives from a path: a thread (UDP) or a task (WebSocket).
enum Receiver {
    Thread(Arc<AtomicBool>),
    Task(JoinHandle<()>),
}

/// An open path to the hub: where to send, and what receives from it.
struct HubPath {
    out: Out,
    answers: mpsc::Receiver<Vec<u8>>,
    receiver: Receiver,
}

impl Drop for HubPath {
    fn drop(&mut self) {
        match &self.receiver {
            Receiver::Thread(stop) => stop.store(true, Ordering::Relaxed),
            Receiver::Task(t) => t.abort(),
        }
    }
}

/// How long the UDP thread blocks before it looks whether its path was dropped.
const UDP_POLL: Duration = Duration::from_millis(250);

async fn open_udp(
    shared: &Arc<Shared>,
    endpoint: &str,
    local: Option<std::net::IpAddr>,
) -> Result<HubPath, String> {
    let target: SocketAddr = tokio::net::lookup_host(endpoint)
        .await
        .map_err(|e| format!("hub endpoint {endpoint}: {e}"))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("hub endpoint {endpoint} has no IPv4 address"))?;
    let bind = SocketAddr::new(
        local.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        0,
    );
    let socket = UdpSocket::bind(bind).map_err(|e| format!("UDP socket: {e}"))?;
    let _ = overlay::prepare_udp_socket(&socket);
    socket
        .connect(target)
        .map_err(|e| format!("UDP to {target}: {e}"))?;
    socket
        .set_read_timeout(Some(UDP_POLL))
        .map_err(|e| format!("UDP socket: {e}"))?;
    let socket = Arc::new(socket);
    let (tx, answers) = mpsc::channel(8);
    let stop = Arc::new(AtomicBool::new(false));
    let (s, sock, stopped) = (shared.clone(), socket.clone(), stop.clone());
    std::thread::Builder::new()
        .name("overlay-udp".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stopped.load(Ordering::Relaxed) && !s.stopped.load(Ordering::Relaxed) {
                match sock.recv(&mut buf) {
                    Ok(n) => s.incoming(&buf[..n], &tx),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    // ICMP unreachable from an earlier send: the path may come back.
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok(HubPath {
        out: Out::Udp(socket),
        answers,
        receiver: Receiver::Thread(stop),
    })
}

async fn open_websocket(
    shared: &Arc<Shared>,
    url: &Url,
    dial: &s4t_wamp::ClientConfig,
) -> Result<HubPath, String> {
    let stream = s4t_wamp::client::dial(url, dial)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(WS_SUBPROTOCOL),
    );
    let (ws, _) = tokio::time::timeout(
        dial.connect_timeout,
        tokio_tungstenite::client_async(request, stream),
    )
    .await
    .map_err(|_| format!("{url}: no WebSocket handshake in time"))?
    .map_err(|e| format!("{url}: {e}"))?;
    let (mut sink, mut stream) = ws.split();
    let (out, mut queue) = mpsc::channel::<Vec<u8>>(1024);
    let (tx, answers) = mpsc::channel(8);
    let s = shared.clone();
    let receiver = tokio::spawn(async move {
        let writer = tokio::spawn(async move {
            while let Some(p) = queue.recv().await {
                if sink.send(Message::binary(p)).await.is_err() {
                    break;
                }
            }
        });
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Binary(p) = m {
                s.incoming(&p, &tx);
            }
        }
        writer.abort();
    });
    Ok(HubPath {
        out: Out::WebSocket(out),
        answers,
        receiver: Receiver::Task(receiver),
    })
}

/// Handshakes over `path`; the session. `attempts` initiations, each waited for `wait`.
async fn handshake(
    path: &mut HubPath,
    port: &uuid::Uuid,
    hub: &HubSpec,
    key: &Keypair,
    attempts: u32,
    wait: Duration,
) -> Result<Session, String> {
    for _ in 0..attempts {
        let (initiator, hello) =
            Initiator::start(key.private(), &hub.public_key, rand::random(), port)
                .map_err(|e| e.to_string())?;
        if !path.out.send(hello) {
            tokio::time::sleep(wait).await;
            continue;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let answer = tokio::time::timeout_at(deadline, path.answers.recv()).await;
            match answer {
                Ok(Some(packet))
                    if overlay::response_receiver(&packet) == Some(initiator.index()) =>
                {
                    return initiator
                        .finish(&packet)
                        .map_err(|e| format!("the hub's answer: {e}"));
                }
                Ok(Some(_)) => continue, // an answer to an older attempt
                Ok(None) => return Err("the path to the hub closed".into()),
                Err(_) => break,
            }
        }
    }
    Err("no answer from the hub".into())
}

/// Keeps the tunnel up: handshakes, keepalives, rekeys, and the choice of path.
async fn control(
    shared: Arc<Shared>,
    port: uuid::Uuid,
    hub: HubSpec,
    key: Arc<Keypair>,
    dial: s4t_wamp::ClientConfig,
) {
    let mut use_websocket = hub.endpoint.is_none();
    let mut backoff = Duration::from_millis(500);
    loop {
        let opened = match (use_websocket, &hub.endpoint, &hub.fallback_url) {
            (false, Some(endpoint), _) => open_udp(&shared, endpoint, dial.local_addr).await,
            (_, _, Some(url)) => open_websocket(&shared, url, &dial).await,
            (true, Some(endpoint), None) => open_udp(&shared, endpoint, dial.local_addr).await,
            (_, None, None) => unreachable!("HubSpec::read requires one path"),
        };
        let mut path = match opened {
            Ok(p) => p,
            Err(e) => {
                shared.down(e);
                use_websocket = next_choice(use_websocket, &hub);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
                continue;
            }
        };
        let transport = path.out.name();
        let session = match handshake(&mut path, &port, &hub, &key, 3, Duration::from_secs(1)).await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%port, transport, error = %e, "overlay handshake failed");
                shared.down(format!("{transport}: {e}"));
                drop(path);
                use_websocket = next_choice(use_websocket, &hub);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        tracing::info!(%port, transport, "overlay tunnel up");
        install(&shared, session, path.out.clone());
        maintain(&shared, &mut path, &port, &hub, &key, &dial).await;
        tracing::info!(%port, "overlay tunnel silent: handshaking again");
        shared.down(format!(
            "nothing heard from the hub for {} s",
            DEAD_AFTER.as_secs()
        ));
        // After a silence, UDP is tried first again.
        use_websocket = hub.endpoint.is_none();
    }
}

/// The other path, when there is one.
fn next_choice(use_websocket: bool, hub: &HubSpec) -> bool {
    match (use_websocket, &hub.endpoint, &hub.fallback_url) {
        (false, _, Some(_)) => true,
        (true, Some(_), _) => false,
        (current, _, _) => current,
    }
}

fn install(shared: &Shared, session: Session, out: Out) {
    let old = shared.current.write().unwrap().replace(Arc::new(Active {
        session: Arc::new(session),
        out,
    }));
    *shared.previous.write().unwrap() = old.map(|a| a.session.clone());
    shared.heard();
    shared.handshakes.fetch_add(1, Ordering::Relaxed);
    *shared.last_handshake.lock().unwrap() = Some(SystemTime::now());
    *shared.reason.lock().unwrap() = None;
}

/// Runs an established tunnel until the hub goes silent.
async fn maintain(
    shared: &Arc<Shared>,
    path: &mut HubPath,
    port: &uuid::Uuid,
    hub: &HubSpec,
    key: &Keypair,
    dial: &s4t_wamp::ClientConfig,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut last_keepalive, mut established) = (Instant::now(), Instant::now());
    loop {
        tick.tick().await;
        if shared.silent_for() > DEAD_AFTER {
            return;
        }
        if last_keepalive.elapsed() >= KEEPALIVE {
            last_keepalive = Instant::now();
            let active = shared.current.read().unwrap().clone();
            if let Some(a) = active {
                if let Ok(p) = a.session.seal(&[]) {
                    a.out.send(p);
                }
            }
        }
        if established.elapsed() >= REKEY {
            established = Instant::now();
            // On the fallback, see whether UDP passes again.
            if matches!(path.out, Out::WebSocket(_)) {
                if let Some(endpoint) = &hub.endpoint {
                    if let Ok(mut udp) = open_udp(shared, endpoint, dial.local_addr).await {
                        if let Ok(s) =
                            handshake(&mut udp, port, hub, key, 1, Duration::from_secs(2)).await
                        {
                            tracing::info!(%port, "overlay tunnel back on UDP");
                            install(shared, s, udp.out.clone());
                            *path = udp;
                            continue;
                        }
                    }
                }
            }
            match handshake(path, port, hub, key, 1, Duration::from_secs(3)).await {
                Ok(s) => install(shared, s, path.out.clone()),
                Err(e) => {
                    tracing::debug!(%port, error = %e, "overlay rekey failed (the session goes on)")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_specs_are_checked() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let ok = HubSpec::read(&json!({"public_key": key, "endpoint": "10.0.0.1:8814"})).unwrap();
        assert_eq!(ok.endpoint.as_deref(), Some("10.0.0.1:8814"));
        for (bad, says) in [
            (json!({"endpoint": "h:1"}), "public_key"),
            (
                json!({"public_key": "c2hvcnQ=", "endpoint": "h:1"}),
                "public_key",
            ),
            (json!({"public_key": key}), "neither"),
            (
                json!({"public_key": key, "fallback_url": "http://h/overlay"}),
                "fallback_url",
            ),
        ] {
            let e = HubSpec::read(&bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_path_alternates_only_when_there_is_another() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let both = HubSpec::read(
            &json!({"public_key": key, "endpoint": "h:1", "fallback_url": "ws://h/overlay"}),
        )
        .unwrap();
        assert!(next_choice(false, &both));
        assert!(!next_choice(true, &both));
        let udp_only = HubSpec::read(&json!({"public_key": key, "endpoint": "h:1"})).unwrap();
        assert!(!next_choice(false, &udp_only));
        let ws_only =
            HubSpec::read(&json!({"public_key": key, "fallback_url": "ws://h/overlay"})).unwrap();
        assert!(next_choice(true, &ws_only));
    }
}
