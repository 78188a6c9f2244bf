//! The overlay network hub (s4t extension): where boards' encrypted tunnels end, and one
//! learning switch per network moves Ethernet frames between them.
//!
//! Boards open a Noise IK session per port (`s4t_tunnel::overlay`) over UDP on
//! `--overlay-addr`, or over a WebSocket on the tunnel server's `/overlay` path when UDP is
//! blocked. A handshake names its port; it is accepted only from the key the port's board
//! reported over its authenticated link. A session follows its board to a new address or path
//! as soon as an authentic packet arrives from there (roaming). Frames are opened, switched
//! within the port's network only, and sealed again for each member they go to.
//!
//! UDP packets are received and switched on a thread of their own with plain syscalls (one
//! receive, one send per member); only handshakes, which look the port up in the store, go
//! through the async runtime.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::Digest;
use std::net::UdpSocket;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use s4t_model::switch::{Forward, Switch, DEFAULT_AGEING};
use s4t_store::Store;
use s4t_tunnel::overlay::{self, Initiation, Kind, Session};

/// A session that has carried nothing for this long is dropped (its board re-handshakes
/// within its keepalive period when it is alive).
pub const DEAD_AFTER: Duration = Duration::from_secs(180);
/// A session replaced by a rekey still opens in-flight packets for this long.
pub const RETIRE_AFTER: Duration = Duration::from_secs(10);
/// How often the hub checks that its sessions' ports still exist.
const REVALIDATE_EVERY: Duration = Duration::from_secs(30);
/// Handshakes being looked up at once; more are dropped (the board retries).
const MAX_PENDING_HANDSHAKES: usize = 256;
/// Ethernet header plus one VLAN tag, above the network's MTU.
const FRAME_HEADROOM: usize = 18;
/// The WebSocket subprotocol of the fallback path.
pub const WS_SUBPROTOCOL: &str = "s4t-overlay.v1";
/// Where the fallback path is on the tunnel server.
pub const WS_PATH: &str = "/overlay";

/// Hub-wide counters, exported as metrics.
#[derive(Debug, Default)]
pub struct HubCounters {
    pub handshakes_accepted: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub frames_switched: AtomicU64,
    pub frames_flooded: AtomicU64,
    pub dropped_no_session: AtomicU64,
    pub dropped_decrypt: AtomicU64,
    pub dropped_oversize: AtomicU64,
    pub dropped_malformed: AtomicU64,
    pub dropped_send: AtomicU64,
}

/// How a board's session is reached.
#[derive(Clone, Debug)]
enum Route {
    Udp(SocketAddr),
    WebSocket {
        connection: u64,
        peer: SocketAddr,
        out: mpsc::Sender<Vec<u8>>,
    },
}

impl Route {
    fn same(&self, other: &Route) -> bool {
        match (self, other) {
            (Route::Udp(a), Route::Udp(b)) => a == b,
            (Route::WebSocket { connection: a, .. }, Route::WebSocket { connection: b, .. }) => {
                a == b
            }
            _ => false,
        }
    }

    fn transport(&self) -> &'static str {
        match self {
            Route::Udp(_) => "udp",
            Route::WebSocket { .. } => "websocket",
        }
    }

    fn endpoint(&self) -> SocketAddr {
        match self {
            Route::Udp(a) => *a,
            Route::WebSocket { peer, .. } => *peer,
        }
    }
}

/// One board port's session.
struct Peer {
    port: Arc<str>,
    network: Arc<str>,
    board: String,
    mtu: usize,
    session: Session,
    route: Mutex<Route>,
    established: SystemTime,
    /// Milliseconds since the hub started, at the last authentic packet.
    last_rx: AtomicU64,
    rx_bytes: AtomicU64,
    tx_bytes: AtomicU64,
    rx_frames: AtomicU64,
    tx_frames: AtomicU64,
}

/// The cloud's own TAP on a network (`--bridge-networks`): a member of its switch, so the
/// cloud host and what runs beside it join the segment.
struct Bridge {
    member: Arc<str>,
    network: Arc<str>,
    name: String,
    /// Taken (and so closed) when the network goes.
    device: Mutex<Option<Arc<tun_rs::SyncDevice>>>,
    stop: tun_rs::InterruptEvent,
    rx_frames: AtomicU64,
    tx_frames: AtomicU64,
}

/// Where a switched frame goes.
enum Target {
    Peer(Arc<Peer>),
    Bridge(Arc<Bridge>),
}

/// The switch member name of a network's bridge TAP (port uuids never look like it).
fn bridge_member(network: &str) -> Arc<str> {
    format!("bridge:{network}").into()
}

/// The bridge TAP's interface name: `s4tn` and 11 hex digits of the network uuid.
pub fn bridge_name(network: &str) -> String {
    let hex: String = network
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(11)
        .collect();
    format!("s4tn{hex}")
}

#[derive(Default)]
struct State {
    /// Sessions by the hub's index: the current one of each port, and retiring ones.
    peers: HashMap<u32, Arc<Peer>>,
    /// The current session of each port.
    by_port: HashMap<Arc<str>, u32>,
    /// Replaced sessions and when they go.
    retiring: Vec<(u32, Instant)>,
    /// The newest initiation timestamp accepted per port (replay guard).
    last_timestamp: HashMap<Arc<str>, u64>,
    switches: HashMap<Arc<str>, Switch<Arc<str>>>,
    members: HashMap<Arc<str>, HashSet<Arc<str>>>,
    bridges: HashMap<Arc<str>, Arc<Bridge>>,
}

impl State {
    fn current(&self, port: &str) -> Option<&Arc<Peer>> {
        self.peers.get(self.by_port.get(port)?)
    }

    fn target(&self, network: &str, member: &str) -> Option<Target> {
        match self.bridges.get(network) {
            Some(b) if *b.member == *member => Some(Target::Bridge(b.clone())),
            _ => self.current(member).cloned().map(Target::Peer),
        }
    }

    fn forget_port(&mut self, port: &str) -> bool {
        let Some(index) = self.by_port.remove(port) else {
            return false;
        };
        if let Some(peer) = self.peers.remove(&index) {
            if let Some(m) = self.members.get_mut(&peer.network) {
                m.remove(port);
            }
            if let Some(s) = self.switches.get_mut(&peer.network) {
                s.remove_member(&peer.port);
            }
        }
        self.last_timestamp.remove(port);
        let peers = &self.peers;
        self.retiring.retain(|(i, _)| peers.contains_key(i));
        true
    }
}

/// An initiation and where it came from.
type PendingHandshake = (Vec<u8>, Route);

struct Inner {
    store: Store,
    key: overlay::StaticKey,
    udp: Arc<UdpSocket>,
    state: Mutex<State>,
    counters: HubCounters,
    started: Instant,
    connections: AtomicU64,
    /// Initiations waiting for their store lookup.
    handshakes: mpsc::Sender<PendingHandshake>,
    handshake_queue: Mutex<Option<mpsc::Receiver<PendingHandshake>>>,
    stopped: AtomicBool,
}

/// The network hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct StopOnDrop(Hub);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.inner.stopped.store(true, Ordering::Relaxed);
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A frame's destination and source addresses.
fn ethernet_addresses(frame: &[u8]) -> Option<([u8; 6], [u8; 6])> {
    Some((
        frame.get(0..6)?.try_into().ok()?,
        frame.get(6..12)?.try_into().ok()?,
    ))
}

impl Hub {
    /// Binds the hub's UDP socket on `addr` with the key pair kept in `data_dir`.
    pub async fn bind(store: Store, data_dir: &Path, addr: &str) -> std::io::Result<Hub> {
        // Kept in the data dir, so that the key boards pinned stays valid across restarts.
        let key = overlay::StaticKey::load_or_create(&data_dir.join("overlay-hub.key"))
            .map_err(std::io::Error::other)?;
        let target = tokio::net::lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{addr} names no address")))?;
        let udp = UdpSocket::bind(target)?;
        udp.set_read_timeout(Some(Duration::from_millis(250)))?;
        let (handshakes, queue) = mpsc::channel(MAX_PENDING_HANDSHAKES);
        // Large buffers; large frames fragmented by the underlay rather than dropped.
        prepare_udp_socket(&udp);
        Ok(Hub {
            inner: Arc::new(Inner {
                store,
                key,
                udp: Arc::new(udp),
                state: Mutex::new(State::default()),
                counters: HubCounters::default(),
                started: Instant::now(),
                connections: AtomicU64::new(1),
                handshakes,
                handshake_queue: Mutex::new(Some(queue)),
                stopped: AtomicBool::new(false),
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.udp.local_addr()
    }

    /// The hub's public key, base64: boards pin it.
    pub fn public_key(&self) -> String {
        self.inner.key.public_base64()
    }

    pub fn counters(&self) -> &HubCounters {
        &self.inner.counters
    }

    fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    /// Receives and switches UDP packets, and keeps the sessions tidy, until aborted.
    pub async fn run(self) {
        // Aborting `run` drops these guards, which stop the rest.
        let _maintenance = AbortOnDrop(tokio::spawn(self.clone().maintain()));
        let _stop = StopOnDrop(self.clone());
        let Some(mut queue) = self.inner.handshake_queue.lock().unwrap().take() else {
            return; // already running
        };
        let hub = self.clone();
        let receiver = std::thread::Builder::new()
            .name("overlay-hub".into())
            .spawn(move || hub.receive_udp());
        if let Err(e) = receiver {
            tracing::error!(error = %e, "overlay hub: cannot start its thread");
            return;
        }
        while let Some((packet, from)) = queue.recv().await {
            let hub = self.clone();
            tokio::spawn(async move { hub.handshake(&packet, from).await });
        }
    }

    fn receive_udp(&self) {
        let mut buf = vec![0u8; 65536];
        while !self.inner.stopped.load(Ordering::Relaxed) {
            match self.inner.udp.recv_from(&mut buf) {
                Ok((n, from)) => self.on_packet(&buf[..n], Route::Udp(from)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // ICMP errors from earlier sends surface here; they concern one peer only.
                Err(e) => tracing::debug!(error = %e, "overlay hub: receive"),
            }
        }
    }

    fn on_packet(&self, packet: &[u8], from: Route) {
        match overlay::kind(packet) {
            Some(Kind::Data) => self.on_data(packet, from),
            Some(Kind::Initiation) => {
                // A full queue drops the initiation; the board tries again.
                if self
                    .inner
                    .handshakes
                    .try_send((packet.to_vec(), from))
                    .is_err()
                {
                    self.inner
                        .counters
                        .handshakes_refused
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                self.inner
                    .counters
                    .dropped_malformed
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn handshake(&self, packet: &[u8], from: Route) {
        let refused = |why: &str| {
            self.inner
                .counters
                .handshakes_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(endpoint = %from.endpoint(), why, "overlay handshake refused");
        };
        let initiation = match Initiation::open(self.inner.key.private(), packet) {
            Ok(i) => i,
            Err(e) => return refused(&e.to_string()),
        };
        let port = initiation.port.to_string();
        let peer = match self.inner.store.overlay_peer(&port).await {
            Ok(Some(p)) => p,
            Ok(None) => return refused("no such port on an s4t network"),
            Err(e) => return refused(&format!("store: {e}")),
        };
        let Some(expected) = peer
            .public_key
            .as_deref()
            .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
        else {
            return refused("the port's board has reported no overlay key");
        };
        let port: Arc<str> = port.into();
        let network: Arc<str> = peer.network_uuid.as_str().into();
        let reply = {
            let mut state = self.inner.state.lock().unwrap();
            let newer_than = state.last_timestamp.get(&port).copied();
            let mut index = rand::random::<u32>();
            while state.peers.contains_key(&index) {
                index = rand::random();
            }
            let accepted = match initiation.accept(&expected, newer_than, index) {
                Ok(a) => a,
                Err(e) => {
                    drop(state);
                    return refused(&e.to_string());
                }
            };
            state
                .last_timestamp
                .insert(port.clone(), accepted.timestamp);
            let fresh = Arc::new(Peer {
                port: port.clone(),
                network: network.clone(),
                board: peer.board_uuid.clone(),
                mtu: peer.mtu.max(0) as usize,
                session: accepted.session,
                route: Mutex::new(from.clone()),
                established: SystemTime::now(),
                last_rx: AtomicU64::new(self.now_ms()),
                rx_bytes: AtomicU64::new(0),
                tx_bytes: AtomicU64::new(0),
                rx_frames: AtomicU64::new(0),
                tx_frames: AtomicU64::new(0),
            });
            state.peers.insert(index, fresh);
            if let Some(old) = state.by_port.insert(port.clone(), index) {
                state.retiring.push((old, Instant::now() + RETIRE_AFTER));
            }
            state
                .members
                .entry(network.clone())
                .or_default()
                .insert(port.clone());
            state
                .switches
                .entry(network)
                .or_insert_with(|| Switch::new(DEFAULT_AGEING));
            accepted.reply
        };
        self.inner
            .counters
            .handshakes_accepted
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(%port, board = %peer.board_uuid, transport = from.transport(), endpoint = %from.endpoint(), "overlay session up");
        self.send_raw(&from, reply);
    }

    fn on_data(&self, packet: &[u8], from: Route) {
        let counters = &self.inner.counters;
        let Ok((index, _)) = overlay::data_header(packet) else {
            counters.dropped_malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(peer) = self.inner.state.lock().unwrap().peers.get(&index).cloned() else {
            counters.dropped_no_session.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let frame = match peer.session.open(packet) {
            Ok(f) => f,
            Err(_) => {
                counters.dropped_decrypt.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        peer.last_rx.store(self.now_ms(), Ordering::Relaxed);
        {
            let mut route = peer.route.lock().unwrap();
            if !route.same(&from) {
                tracing::info!(port = %peer.port, from = %route.endpoint(), to = %from.endpoint(), transport = from.transport(), "overlay session roamed");
                *route = from;
            }
        }
        if frame.is_empty() {
            // A keepalive: answered, so the board knows its path works.
            self.send(&peer, &[]);
            return;
        }
        peer.rx_bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        peer.rx_frames.fetch_add(1, Ordering::Relaxed);
        if frame.len() > peer.mtu + FRAME_HEADROOM {
            counters.dropped_oversize.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(port = %peer.port, len = frame.len(), mtu = peer.mtu, "frame above the network's MTU dropped");
            return;
        }
        self.switch_frame(&peer.network, &peer.port, &frame);
    }

    /// Sends a frame from `member` of `network` where the network's switch says.
    fn switch_frame(&self, network: &Arc<str>, member: &Arc<str>, frame: &[u8]) {
        let counters = &self.inner.counters;
        let Some((dst, src)) = ethernet_addresses(frame) else {
            counters.dropped_malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = self.inner.started.elapsed();
        let targets: Vec<Target> = {
            let mut state = self.inner.state.lock().unwrap();
            let state = &mut *state;
            let Some(switch) = state.switches.get_mut(network) else {
                return;
            };
            match switch.forward(member, &src, &dst, now) {
                Forward::One(to) => {
                    counters.frames_switched.fetch_add(1, Ordering::Relaxed);
                    state.target(network, &to).into_iter().collect()
                }
                Forward::Flood => {
                    counters.frames_flooded.fetch_add(1, Ordering::Relaxed);
                    state
                        .members
                        .get(network)
                        .into_iter()
                        .flatten()
                        .filter(|m| *m != member)
                        .filter_map(|m| state.target(network, m))
                        .collect()
                }
                Forward::Drop => Vec::new(),
            }
        };
        for target in targets {
            match target {
                Target::Peer(p) => self.send(&p, frame),
                Target::Bridge(b) => {
                    let device = b.device.lock().unwrap().clone();
                    if let Some(d) = device {
                        if d.send(frame).is_ok() {
                            b.tx_frames.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }

    fn send(&self, peer: &Peer, frame: &[u8]) {
        let Ok(packet) = peer.session.seal(frame) else {
            // Worn out after 2^64 packets: the board's rekey replaces it long before.
            self.inner
                .counters
                .dropped_send
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !frame.is_empty() {
            peer.tx_bytes
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
            peer.tx_frames.fetch_add(1, Ordering::Relaxed);
        }
        let route = peer.route.lock().unwrap().clone();
        self.send_raw(&route, packet);
    }

    fn send_raw(&self, route: &Route, packet: Vec<u8>) {
        let sent = match route {
            Route::Udp(addr) => self.inner.udp.send_to(&packet, addr).is_ok(),
            // A slow WebSocket peer loses frames rather than stalling the whole hub.
            Route::WebSocket { out, .. } => out.try_send(packet).is_ok(),
        };
        if !sent {
            self.inner
                .counters
                .dropped_send
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Carries one board's fallback WebSocket: each binary message is one overlay packet.
    pub async fn serve_websocket<S>(self, ws: S, peer: SocketAddr)
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + futures_util::Sink<Message>
            + Send
            + 'static,
    {
        let connection = self.inner.connections.fetch_add(1, Ordering::Relaxed);
        let (mut sink, mut stream) = ws.split();
        let (out, mut queue) = mpsc::channel::<Vec<u8>>(1024);
        let writer = tokio::spawn(async move {
            while let Some(packet) = queue.recv().await {
                if sink.send(Message::binary(packet)).await.is_err() {
                    break;
                }
            }
        });
        let route = Route::WebSocket {
            connection,
            peer,
            out,
        };
        tracing::debug!(%peer, "overlay fallback socket open");
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(packet) => self.on_packet(&packet, route.clone()),
                Message::Close(_) => break,
                _ => {}
            }
        }
        writer.abort();
        tracing::debug!(%peer, "overlay fallback socket closed");
    }

    /// Makes the cloud's TAP on a network (`--bridge-networks`), with the network's gateway
    /// address when it has one, and joins it to the network's switch. Idempotent.
    pub fn bridge_network(
        &self,
        network: &str,
        mtu: u16,
        gateway: Option<(std::net::Ipv4Addr, u8)>,
    ) -> Result<(), String> {
        if self
            .inner
            .state
            .lock()
            .unwrap()
            .bridges
            .contains_key(network)
        {
            return Ok(());
        }
        let name = bridge_name(network);
        let hash = sha2::Sha256::digest(network.as_bytes());
        let mac = [0x02, hash[0], hash[1], hash[2], hash[3], hash[4]];
        let mut builder = tun_rs::DeviceBuilder::new()
            .name(name.clone())
            .layer(tun_rs::Layer::L2)
            .mac_addr(mac)
            .mtu(mtu);
        if let Some((ip, prefix)) = gateway {
            builder = builder.ipv4(ip, prefix, None);
        }
        let device = builder
            .build_sync()
            .and_then(|d| d.set_nonblocking(true).map(|_| d))
            .map_err(|e| format!("cannot create the bridge TAP {name}: {e}"))?;
        let stop = tun_rs::InterruptEvent::new().map_err(|e| format!("eventfd: {e}"))?;
        // Strict host model on this TAP: ARP answered only for its own address, and packets
        // whose source routes through another interface dropped, so that another network's
        // frames cannot reach this network's address through the host.
        for (knob, value) in [("arp_ignore", "1"), ("rp_filter", "1")] {
            let file = format!("/proc/sys/net/ipv4/conf/{name}/{knob}");
            if let Err(e) = std::fs::write(&file, value) {
                tracing::warn!(%file, error = %e, "bridge TAP: cannot set");
            }
        }
        let network: Arc<str> = network.into();
        let bridge = Arc::new(Bridge {
            member: bridge_member(&network),
            network: network.clone(),
            name: name.clone(),
            device: Mutex::new(Some(Arc::new(device))),
            stop,
            rx_frames: AtomicU64::new(0),
            tx_frames: AtomicU64::new(0),
        });
        {
            let mut state = self.inner.state.lock().unwrap();
            state.bridges.insert(network.clone(), bridge.clone());
            state
                .members
                .entry(network.clone())
                .or_default()
                .insert(bridge.member.clone());
            state
                .switches
                .entry(network)
                .or_insert_with(|| Switch::new(DEFAULT_AGEING));
        }
        let hub = self.clone();
        std::thread::Builder::new()
            .name("overlay-bridge".into())
            .spawn(move || hub.read_bridge(&bridge))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        tracing::info!(interface = %name, ?gateway, "network bridged into the cloud host");
        Ok(())
    }

    fn read_bridge(&self, bridge: &Bridge) {
        let mut buf = vec![0u8; 65536];
        loop {
            let Some(device) = bridge.device.lock().unwrap().clone() else {
                return;
            };
            match device.recv(&mut buf) {
                Ok(n) => {
                    bridge.rx_frames.fetch_add(1, Ordering::Relaxed);
                    self.switch_frame(&bridge.network, &bridge.member, &buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = device.wait_readable_intr(&bridge.stop);
                }
                Err(e) => {
                    tracing::warn!(interface = %bridge.name, error = %e, "bridge TAP read failed");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Removes the cloud's TAP of a network (the network was deleted).
    pub fn unbridge_network(&self, network: &str) {
        let removed = {
            let mut state = self.inner.state.lock().unwrap();
            let removed = state.bridges.remove(network);
            if let Some(b) = &removed {
                if let Some(m) = state.members.get_mut(network) {
                    m.remove(&b.member);
                }
                if let Some(s) = state.switches.get_mut(network) {
                    s.remove_member(&b.member);
                }
            }
            removed
        };
        if let Some(b) = removed {
            b.device.lock().unwrap().take();
            let _ = b.stop.trigger();
            tracing::info!(interface = %b.name, "network bridge removed");
        }
    }

    /// Ends a port's session at once (the port was deleted).
    pub fn forget_port(&self, port: &str) {
        if self.inner.state.lock().unwrap().forget_port(port) {
            tracing::info!(%port, "overlay session closed");
        }
    }

    /// Drops retired and dead sessions, ages the switches, and closes sessions whose port is
    /// gone from the store.
    async fn maintain(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let mut last_check = Instant::now();
        loop {
            tick.tick().await;
            let now_ms = self.now_ms();
            let ports: Vec<Arc<str>> = {
                let mut state = self.inner.state.lock().unwrap();
                let now = Instant::now();
                let (gone, kept): (Vec<_>, Vec<_>) =
                    state.retiring.drain(..).partition(|(_, at)| *at <= now);
                state.retiring = kept;
                for (index, _) in gone {
                    state.peers.remove(&index);
                }
                let dead: Vec<Arc<str>> = state
                    .by_port
                    .iter()
                    .filter(|(_, i)| {
                        state.peers.get(i).is_none_or(|p| {
                            now_ms.saturating_sub(p.last_rx.load(Ordering::Relaxed))
                                > DEAD_AFTER.as_millis() as u64
                        })
                    })
                    .map(|(p, _)| p.clone())
                    .collect();
                for port in dead {
                    tracing::info!(%port, "overlay session silent too long: dropped");
                    state.forget_port(&port);
                }
                let elapsed = self.inner.started.elapsed();
                for s in state.switches.values_mut() {
                    s.expire(elapsed);
                }
                state.by_port.keys().cloned().collect()
            };
            if last_check.elapsed() >= REVALIDATE_EVERY {
                last_check = Instant::now();
                for port in ports {
                    if let Ok(None) = self.inner.store.overlay_peer(&port).await {
                        self.forget_port(&port);
                    }
                }
            }
        }
    }

    /// What a port's tunnel looks like now, for its `status`.
    pub fn port_status(&self, port: &str) -> Value {
        let state = self.inner.state.lock().unwrap();
        let Some(p) = state.current(port) else {
            return json!({"tunnel": "down", "reason": "no session: the board has not completed a handshake with the hub (it retries by itself)"});
        };
        let route = p.route.lock().unwrap().clone();
        let idle_ms = self
            .now_ms()
            .saturating_sub(p.last_rx.load(Ordering::Relaxed));
        json!({
            "tunnel": "up",
            "transport": route.transport(),
            "endpoint": route.endpoint().to_string(),
            "last_handshake": chrono::DateTime::<chrono::Utc>::from(p.established).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "last_received_seconds_ago": idle_ms / 1000,
            "bytes_from_board": p.rx_bytes.load(Ordering::Relaxed),
            "bytes_to_board": p.tx_bytes.load(Ordering::Relaxed),
            "frames_from_board": p.rx_frames.load(Ordering::Relaxed),
            "frames_to_board": p.tx_frames.load(Ordering::Relaxed),
        })
    }

    /// Sessions, per-network learnt addresses and the hub's counters.
    pub fn status(&self) -> Value {
        let state = self.inner.state.lock().unwrap();
        let mut sessions: Vec<Value> = state
            .by_port
            .iter()
            .filter_map(|(port, i)| {
                let p = state.peers.get(i)?;
                let route = p.route.lock().unwrap().clone();
                Some(json!({
                    "port": port.as_ref(), "board": p.board, "network": p.network.as_ref(),
                    "transport": route.transport(), "endpoint": route.endpoint().to_string(),
                    "bytes_from_board": p.rx_bytes.load(Ordering::Relaxed), "bytes_to_board": p.tx_bytes.load(Ordering::Relaxed),
                }))
            })
            .collect();
        sessions.sort_by(|a, b| a["port"].as_str().cmp(&b["port"].as_str()));
        let networks: serde_json::Map<String, Value> = state
            .switches
            .iter()
            .map(|(n, s)| {
                (
                    n.to_string(),
                    json!({"learnt_addresses": s.len(), "members": state.members.get(n).map_or(0, |m| m.len())}),
                )
            })
            .collect();
        let bridges: Vec<Value> = state
            .bridges
            .values()
            .map(|b| json!({"network": b.network.as_ref(), "interface": b.name, "frames_from_host": b.rx_frames.load(Ordering::Relaxed), "frames_to_host": b.tx_frames.load(Ordering::Relaxed)}))
            .collect();
        json!({
            "bridges": bridges,
            "public_key": self.public_key(),
            "address": self.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "sessions": sessions,
            "networks": networks,
            "counters": self.counters_json(),
        })
    }

    fn counters_json(&self) -> Value {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "handshakes_accepted": get(&c.handshakes_accepted),
            "handshakes_refused": get(&c.handshakes_refused),
            "frames_switched": get(&c.frames_switched),
            "frames_flooded": get(&c.frames_flooded),
            "dropped_no_session": get(&c.dropped_no_session),
            "dropped_decrypt": get(&c.dropped_decrypt),
            "dropped_oversize": get(&c.dropped_oversize),
            "dropped_malformed": get(&c.dropped_malformed),
            "dropped_send": get(&c.dropped_send),
        })
    }

    /// The counters in the Prometheus text format.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        if let Value::Object(counters) = self.counters_json() {
            for (name, v) in counters {
                out.push_str(&format!(
                    "# TYPE s4t_overlay_{name}_total counter\ns4t_overlay_{name}_total {v}\n"
                ));
            }
        }
        let state = self.inner.state.lock().unwrap();
        let mut per_network: HashMap<&str, [u64; 4]> = HashMap::new();
        for i in state.by_port.values() {
            if let Some(p) = state.peers.get(i) {
                let e = per_network.entry(p.network.as_ref()).or_default();
                e[0] += p.rx_bytes.load(Ordering::Relaxed);
                e[1] += p.tx_bytes.load(Ordering::Relaxed);
                e[2] += 1;
            }
        }
        for (n, s) in &state.switches {
            per_network.entry(n.as_ref()).or_default()[3] = s.len() as u64;
        }
        let mut names: Vec<_> = per_network.keys().copied().collect();
        names.sort();
        for (metric, kind, at) in [
            ("s4t_overlay_network_bytes_from_boards_total", "counter", 0),
            ("s4t_overlay_network_bytes_to_boards_total", "counter", 1),
            ("s4t_overlay_network_sessions", "gauge", 2),
            ("s4t_overlay_network_learnt_addresses", "gauge", 3),
        ] {
            out.push_str(&format!("# TYPE {metric} {kind}\n"));
            for n in &names {
                out.push_str(&format!(
                    "{metric}{{network=\"{n}\"}} {}\n",
                    per_network[n][at]
                ));
            }
        }
        out
    }
}

fn prepare_udp_socket(socket: &UdpSocket) {
    if socket.local_addr().is_ok_and(|a| a.is_ipv4()) {
        if let Err(e) = overlay::prepare_udp_socket(socket) {
            tracing::warn!(error = %e, "overlay hub: cannot size its buffers or allow fragmentation");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_addresses_need_a_whole_header() {
        let mut frame = vec![0xffu8; 6];
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        assert_eq!(
            ethernet_addresses(&frame),
            Some(([0xff; 6], [2, 0, 0, 0, 0, 1]))
        );
        assert_eq!(ethernet_addresses(&frame[..11]), None);
    }
}
