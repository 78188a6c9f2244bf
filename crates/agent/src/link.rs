//! The agent's life: wait for a code, register, connect, serve the cloud's calls, reconnect.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use s4t_model::board_link::{self, agent_procedure, board_procedure, WampMessage};
use s4t_model::resources::Outcome;
use s4t_wamp::{
    handler, CallError, CallResult, ClientAuth, ClientConfig, Invocation, Session, WampError,
};

use crate::device::{self, Aftermath, Device, Performed};
use crate::overlay::{self, Overlay};
use crate::plugins::{self, Plugins};
use crate::services::{self, Services, TunnelIdentity};
use crate::settings::{self, Identity, Phase, SettingsStore};
use crate::workloads::{self, Workloads};

/// How an agent runs.
#[derive(Clone)]
pub struct AgentConfig {
    pub settings: Arc<dyn SettingsStore>,
    pub device: Device,
    /// Skip TLS certificate checks (explicit opt-out).
    pub tls_insecure: bool,
    /// Extra PEM trust anchors for `wss://`.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// WebSocket ping period; the link is dead after twice as long without a frame.
    pub ping_interval: Duration,
    /// Source address for the connection (the swarm spreads boards over loopback addresses).
    pub local_addr: Option<IpAddr>,
    /// What the agent reports as `lr_version`.
    pub version: String,
    /// How often a board without a code looks at its settings again.
    pub first_boot_poll: Duration,
    /// Reconnection backoff bounds (jittered exponential).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The board's data dir (Lightning-rod's `lightningrod_home`): `plugins.json` and
    /// `plugins/<uuid>/`. None: the board offers no plugins (simulated boards).
    pub data_dir: Option<PathBuf>,
    /// Without a data dir: answer plugin procedures from memory (simulated boards).
    pub simulated_plugins: bool,
    /// The Python interpreter plugins run with.
    pub python: PathBuf,
}

/// The `lr_version` the agent reports: the Lightning-rod protocol it speaks, then its own
/// version. A stock IoTronic compares the first three dot-separated numbers (and fails with a
/// 500 on anything else) to decide whether boards get the `req` argument, and stores at most 20
/// characters.
pub fn protocol_version() -> String {
    format!("0.5.0.s4t-{}", env!("CARGO_PKG_VERSION"))
}

impl AgentConfig {
    pub fn new(settings: Arc<dyn SettingsStore>, device: Device) -> AgentConfig {
        AgentConfig {
            settings,
            device,
            tls_insecure: false,
            extra_ca_pem: None,
            ping_interval: Duration::from_secs(5),
            local_addr: None,
            version: protocol_version(),
            first_boot_poll: Duration::from_secs(5),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            data_dir: None,
            simulated_plugins: false,
            python: PathBuf::from("python3"),
        }
    }
}

/// Where an agent stands, for status displays and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    Starting,
    /// Waiting for a registration code.
    FirstBoot,
    Registering,
    Connecting,
    Online {
        uuid: String,
        session: u64,
    },
    /// The last attempt failed; retrying after a backoff.
    Retrying {
        error: String,
    },
    Stopped,
}

/// A running agent.
pub struct AgentHandle {
    pub state: watch::Receiver<AgentState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AgentHandle {
    /// Leaves the session and stops.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Waits until the agent is online (or `timeout` passes); returns its state then.
    pub async fn wait_online(&mut self, timeout: Duration) -> AgentState {
        let _ = tokio::time::timeout(
            timeout,
            self.state
                .wait_for(|s| matches!(s, AgentState::Online { .. })),
        )
        .await;
        self.state.borrow().clone()
    }
}

/// Starts an agent on the current runtime.
pub fn spawn(config: AgentConfig) -> AgentHandle {
    let (state_tx, state) = watch::channel(AgentState::Starting);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(config, state_tx, stop_rx));
    AgentHandle { state, stop, task }
}

struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    /// The next delay, with full jitter so that boards cut off together do not return together.
    fn next(&mut self) -> Duration {
        let cap = self.next;
        self.next = (self.next * 2).min(self.max);
        let ms = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

async fn run(
    config: AgentConfig,
    state: watch::Sender<AgentState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    let plugins = open_plugins(&config);
    let services = config.data_dir.as_ref().map(|d| {
        Arc::new(Services::open(
            d,
            client_config(&config, board_link::REALM, None),
        ))
    });
    let workloads = match &config.data_dir {
        Some(d) => Some(Workloads::open(d).await),
        None => None,
    };
    let overlay = match &config.data_dir {
        Some(d) => match Overlay::open(d, client_config(&config, board_link::REALM, None)).await {
            Ok(o) => Some(Arc::new(o)),
            Err(e) => {
                tracing::error!(error = %e, "overlay ports unavailable");
                None
            }
        },
        None => None,
    };
    if let Some(p) = &plugins {
        // In the background: the board comes online while slow plugins load.
        let p = p.clone();
        tokio::spawn(async move { p.restart_onboot().await });
    }
    loop {
        if *stop.borrow() {
            break;
        }
        let parts = Parts {
            plugins: plugins.as_ref(),
            services: services.as_ref(),
            workloads: workloads.as_ref(),
            overlay: overlay.as_ref(),
        };
        let wait = match step(&config, &parts, &state, &mut stop).await {
            Ok(Step::Again) => {
                backoff.reset();
                Duration::ZERO
            }
            Ok(Step::Wait(d)) => d,
            Err(e) => {
                tracing::warn!(error = %e, "board link");
                let _ = state.send(AgentState::Retrying { error: e });
                backoff.next()
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }
    if let Some(p) = &plugins {
        p.shutdown().await;
    }
    if let Some(s) = &services {
        s.shutdown().await;
    }
    if let Some(w) = &workloads {
        w.shutdown().await;
    }
    if let Some(o) = &overlay {
        o.shutdown().await;
    }
    let _ = state.send(AgentState::Stopped);
}

/// The board's plugins, when it has a data dir; a board whose data dir is unusable runs
/// without them (and says why).
fn open_plugins(config: &AgentConfig) -> Option<Arc<Plugins>> {
    let dir = config.data_dir.as_ref()?;
    match Plugins::open(dir, &config.python, config.settings.clone()) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(error = %e, dir = %dir.display(), "plugins unavailable");
            None
        }
    }
}

enum Step {
    /// Go on at once (registered, or a session ended normally).
    Again,
    Wait(Duration),
}

/// What a board serves besides the device actions (each needs a data dir).
struct Parts<'a> {
    plugins: Option<&'a Arc<Plugins>>,
    services: Option<&'a Arc<Services>>,
    workloads: Option<&'a Arc<Workloads>>,
    overlay: Option<&'a Arc<Overlay>>,
}

async fn step(
    config: &AgentConfig,
    parts: &Parts<'_>,
    state: &watch::Sender<AgentState>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Step, String> {
    let doc = match config.settings.load() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "no usable settings; waiting for a registration code");
            let _ = state.send(AgentState::FirstBoot);
            return Ok(Step::Wait(config.first_boot_poll));
        }
    };
    match settings::phase(&doc) {
        Phase::FirstBoot => {
            let _ = state.send(AgentState::FirstBoot);
            Ok(Step::Wait(config.first_boot_poll))
        }
        Phase::Unregistered { code, url } => {
            let _ = state.send(AgentState::Registering);
            let provisioned = register(config, &code, &url).await?;
            config
                .settings
                .save(&provisioned)
                .map_err(|e| e.to_string())?;
            tracing::info!(%code, "registered; provisioning document stored");
            Ok(Step::Again)
        }
        Phase::Provisioned(identity) => {
            let _ = state.send(AgentState::Connecting);
            serve(config, parts, doc, identity, state, stop).await
        }
    }
}

fn client_config(config: &AgentConfig, realm: &str, auth: Option<ClientAuth>) -> ClientConfig {
    let mut c = ClientConfig::new(realm);
    c.auth = auth;
    c.tls_insecure = config.tls_insecure;
    c.extra_ca_pem = config.extra_ca_pem.clone();
    c.ping_interval = Some(config.ping_interval);
    c.ping_timeout = config.ping_interval * 2;
    c.connect_timeout = Duration::from_secs(10);
    c.default_call_timeout = Duration::from_secs(30);
    c.local_addr = config.local_addr;
    c
}

/// `stack4things.register(code, session)` from an anonymous session; the provisioning document.
async fn register(config: &AgentConfig, code: &str, url: &str) -> Result<Value, String> {
    let session = s4t_wamp::connect(url, client_config(config, board_link::REALM, None))
        .await
        .map_err(|e| format!("registration at {url}: {}", e))?;
    let mut kwargs = Map::new();
    kwargs.insert("code".into(), json!(code));
    kwargs.insert("session".into(), json!(session.id()));
    let result = session
        .call_with_timeout(
            board_link::REGISTER,
            vec![],
            kwargs,
            Duration::from_secs(30),
        )
        .await;
    session.leave().await;
    let result = result.map_err(|e| format!("register: {}", e))?;
    let reply = WampMessage::from_args(&result.args).map_err(|e| format!("register: {e}"))?;
    match (reply.result, reply.message) {
        (Outcome::Success, doc @ Value::Object(_)) if doc.get("iotronic").is_some() => Ok(doc),
        (_, message) => Err(format!(
            "the cloud refused the registration of code {code}: {}",
            message
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| message.to_string())
        )),
    }
}

/// The address this host uses to reach `url`'s host (what Lightning-rod reports as local_ip).
fn local_ip_towards(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .next()?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = std::net::UdpSocket::bind(bind).ok()?;
    sock.connect(target).ok()?;
    Some(sock.local_addr().ok()?.ip().to_string())
}

/// Connects as the board, calls `connection`, registers the device (and plugin) procedures and
/// serves until the link ends.
async fn serve(
    config: &AgentConfig,
    parts: &Parts<'_>,
    mut doc: Value,
    id: Identity,
    state: &watch::Sender<AgentState>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Step, String> {
    let (plugins, services, workloads) = (parts.plugins, parts.services, parts.workloads);
    let auth = id.secret.as_ref().map(|secret| ClientAuth::Ticket {
        authid: id.uuid.clone(),
        ticket: secret.clone(),
    });
    let session =
        match s4t_wamp::connect(&id.main_url, client_config(config, &id.realm, auth)).await {
            Ok(s) => s,
            Err(WampError::Aborted { reason, .. })
                if reason == "wamp.error.not_authorized" && id.secret.is_some() =>
            {
                // The cloud no longer knows this secret (the board was registered again, or its
                // answer to an earlier registration was lost): register again with the code.
                let code = doc.pointer("/iotronic/board/code").and_then(Value::as_str);
                let reg_url = doc
                    .pointer("/iotronic/wamp/registration-agent/url")
                    .and_then(Value::as_str);
                if let (Some(code), Some(reg_url)) = (code, reg_url) {
                    config
                        .settings
                        .save(&settings::first_boot_document(code, reg_url))
                        .map_err(|e| e.to_string())?;
                }
                return Err(
                    "the cloud refused this board's secret; registering again with its code".into(),
                );
            }
            Err(e) => return Err(format!("connecting to {}: {}", id.main_url, e)),
        };
    if id.status == "registered" {
        settings::set_status(&mut doc, "operative");
        config.settings.save(&doc).map_err(|e| e.to_string())?;
    }
    let mut info = Map::new();
    info.insert("lr_version".into(), json!(config.version));
    let connectivity = match local_ip_towards(&id.main_url) {
        Some(ip) => json!({"local_ip": ip}),
        None => json!({}),
    };
    info.insert("connectivity".into(), connectivity);
    let mut kwargs = Map::new();
    kwargs.insert("uuid".into(), json!(id.uuid));
    kwargs.insert("session".into(), json!(session.id()));
    kwargs.insert("info".into(), Value::Object(info));
    let connected = session
        .call_with_timeout(
            &agent_procedure(&id.agent, "connection"),
            vec![],
            kwargs,
            Duration::from_secs(30),
        )
        .await;
    let reply = match connected {
        Ok(r) => WampMessage::from_args(&r.args).map_err(|e| format!("connection: {e}")),
        Err(e) => Err(format!("connection: {}", e)),
    };
    match reply {
        Ok(m) if m.result == Outcome::Success => {}
        Ok(m) => {
            session.leave().await;
            return Err(format!("the cloud refused the connection: {}", m.message));
        }
        Err(e) => {
            session.leave().await;
            return Err(e);
        }
    }

    let (after_tx, mut after_rx) = mpsc::unbounded_channel::<Aftermath>();
    let sid = session.id().to_string();
    let mut procedures: Vec<(&'static str, Actions)> = Vec::new();
    for method in device::DEVICE_METHODS {
        procedures.push((method, Actions::Device(config.device.clone())));
    }
    if let Some(p) = plugins {
        for method in plugins::PLUGIN_METHODS {
            procedures.push((method, Actions::Plugins(p.clone())));
        }
    } else if config.simulated_plugins {
        let p = Arc::new(plugins::simulated::SimulatedPlugins::default());
        for method in plugins::PLUGIN_METHODS {
            procedures.push((method, Actions::Simulated(p.clone())));
        }
    }
    if let Some(s) = services {
        s.connected_as(TunnelIdentity {
            board: id.uuid.clone(),
            secret: id.secret.clone(),
            default_server: TunnelIdentity::default_server_for(&id.main_url),
        })
        .await;
        for method in services::SERVICE_METHODS {
            procedures.push((method, Actions::Services(s.clone())));
        }
    }
    if let Some(w) = workloads {
        for method in workloads::WORKLOAD_METHODS {
            procedures.push((method, Actions::Workloads(w.clone())));
        }
    }
    if let Some(o) = parts.overlay {
        for method in overlay::OVERLAY_METHODS {
            procedures.push((method, Actions::Overlay(o.clone())));
        }
    }
    for (method, actions) in procedures {
        let ctx = CallContext {
            actions,
            session: session.clone(),
            uuid: id.uuid.clone(),
            agent: id.agent.clone(),
            method,
            after: after_tx.clone(),
        };
        session
            .register(
                &board_procedure(&sid, &id.uuid, method),
                handler(move |inv| {
                    let ctx = ctx.clone();
                    async move { ctx.handle(inv).await }
                }),
            )
            .await
            .map_err(|e| format!("registering {method}: {}", e))?;
    }
    tracing::info!(board = %id.uuid, session = session.id(), "online");
    if let Some(w) = workloads {
        w.link_up();
    }
    let _ = state.send(AgentState::Online {
        uuid: id.uuid.clone(),
        session: session.id(),
    });

    let outcome = loop {
        tokio::select! {
            _ = session.closed() => break Err("the link to the cloud dropped".to_string()),
            _ = stop.changed() => {
                session.leave().await;
                break Ok(Step::Again);
            }
            Some(after) = after_rx.recv() => match after {
                Aftermath::Restart(d) => {
                    tokio::time::sleep(d).await;
                    session.leave().await;
                    tracing::info!("restarting the board link, as the cloud asked");
                    break Ok(Step::Again);
                }
                Aftermath::Reboot(d) => {
                    tokio::time::sleep(d).await;
                    tracing::warn!("rebooting, as the cloud asked");
                    let _ = tokio::process::Command::new("systemctl").arg("reboot").status().await;
                }
                Aftermath::FactoryReset => {
                    let reg_url = doc
                        .pointer("/iotronic/wamp/registration-agent/url")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let fresh = settings::first_boot_document(settings::FIRST_BOOT_CODE, &reg_url);
                    if let Err(e) = config.settings.save(&fresh) {
                        tracing::error!(error = %e, "factory reset could not rewrite the settings");
                    }
                    session.leave().await;
                    tracing::warn!("factory reset: identity forgotten, waiting for a new code");
                    break Ok(Step::Again);
                }
            },
        }
    };
    if let Some(w) = workloads {
        w.link_down(config.ping_interval * 2);
    }
    outcome
}

/// What answers a board procedure.
#[derive(Clone)]
enum Actions {
    Device(Device),
    Plugins(Arc<Plugins>),
    Simulated(Arc<plugins::simulated::SimulatedPlugins>),
    Services(Arc<Services>),
    Workloads(Arc<Workloads>),
    Overlay(Arc<Overlay>),
}

impl Actions {
    /// Answers RUNNING first even outside a parent request.
    fn always_async(&self, method: &str) -> bool {
        match self {
            Actions::Device(_) => device::always_async(method),
            _ => false,
        }
    }

    /// Never answers RUNNING, even inside a parent request.
    fn never_async(&self, method: &str) -> bool {
        match self {
            Actions::Device(_) => device::never_async(method),
            // Scheduler calls are answered at once whatever the request says.
            Actions::Workloads(_) | Actions::Overlay(_) => true,
            _ => false,
        }
    }

    /// Answer RUNNING now and the result through `notify_result`? Inside a parent request
    /// (`req.main_request_uuid` set), and for the always-asynchronous device actions.
    fn goes_async(&self, method: &str, in_parent: bool) -> bool {
        self.always_async(method) || (in_parent && !self.never_async(method))
    }

    fn running_message(&self, method: &str, data: &[Value]) -> String {
        match self {
            Actions::Device(_) => device::running_message(method, &device_params(data)),
            _ => method.to_string(),
        }
    }

    async fn perform(&self, method: &str, data: &[Value]) -> Performed {
        match self {
            Actions::Device(d) => d.perform(method, &device_params(data)).await,
            Actions::Plugins(p) => Performed {
                reply: p.perform(method, data).await,
                then: None,
            },
            Actions::Simulated(p) => Performed {
                reply: p.perform(method, data),
                then: None,
            },
            Actions::Services(s) => Performed {
                reply: s.perform(method, data).await,
                then: None,
            },
            Actions::Workloads(w) => Performed {
                reply: w.perform(method, data).await,
                then: None,
            },
            Actions::Overlay(o) => Performed {
                reply: o.perform(method, data).await,
                then: None,
            },
        }
    }
}

/// Device actions take one parameters dict.
fn device_params(data: &[Value]) -> Value {
    data.first().cloned().unwrap_or_else(|| json!({}))
}

#[derive(Clone)]
struct CallContext {
    actions: Actions,
    session: Session,
    uuid: String,
    agent: String,
    method: &'static str,
    after: mpsc::UnboundedSender<Aftermath>,
}

/// Splits `[req, *data]`; boards older than 0.4.9 got no `req`, and a stock cloud decides by
/// the reported version, so both forms are read.
fn split_request(args: &[Value]) -> (Option<&Map<String, Value>>, &[Value]) {
    match args.first() {
        Some(Value::Object(m)) if m.contains_key("uuid") && m.contains_key("main_request_uuid") => {
            (Some(m), &args[1..])
        }
        _ => (None, args),
    }
}

impl CallContext {
    async fn handle(&self, inv: Invocation) -> Result<CallResult, CallError> {
        let (req, data) = split_request(&inv.args);
        let req_id = req
            .and_then(|r| r.get("uuid"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let in_parent = req
            .and_then(|r| r.get("main_request_uuid"))
            .is_some_and(|m| !m.is_null());
        let method = self.method;
        let actions = &self.actions;
        let reply = if actions.goes_async(method, in_parent) {
            let ctx = self.clone();
            let req_id2 = req_id.clone();
            let running = actions.running_message(method, data);
            let data = data.to_vec();
            tokio::spawn(async move {
                let done = ctx.actions.perform(method, &data).await;
                ctx.notify(done.reply.with_req_id(req_id2)).await;
                if let Some(a) = done.then {
                    let _ = ctx.after.send(a);
                }
            });
            WampMessage {
                message: json!(running),
                result: Outcome::Running,
                req_id,
            }
        } else {
            let done = actions.perform(method, data).await;
            if let Some(a) = done.then {
                let _ = self.after.send(a);
            }
            done.reply.with_req_id(req_id)
        };
        Ok(CallResult {
            args: vec![Value::String(reply.to_wire())],
            kwargs: Map::new(),
        })
    }

    /// `notify_result` for an asynchronous action (10 s timeout, as Lightning-rod).
    async fn notify(&self, msg: WampMessage) {
        let mut kwargs = Map::new();
        kwargs.insert("board_uuid".into(), json!(self.uuid));
        kwargs.insert("wampmessage".into(), json!(msg.to_wire()));
        if let Err(e) = self
            .session
            .call_with_timeout(
                &agent_procedure(&self.agent, "notify_result"),
                vec![],
                kwargs,
                Duration::from_secs(10),
            )
            .await
        {
            tracing::warn!(error = %e, "notify_result failed; the result stays RUNNING in the cloud");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_dict_is_recognised_in_both_forms() {
        let req = json!({"uuid": "R1", "main_request_uuid": null, "action": "DeviceEcho"});
        let args = vec![req.clone(), json!({"say": "hi"})];
        let (r, data) = split_request(&args);
        assert_eq!(r.unwrap()["uuid"], "R1");
        assert_eq!(data, &[json!({"say": "hi"})]);
        let legacy = vec![json!({"say": "hi"})];
        let (r, data) = split_request(&legacy);
        assert!(r.is_none());
        assert_eq!(data.len(), 1);
    }

    #[test]
    fn plugin_procedures_go_async_inside_a_parent_request_only() {
        let dir = crate::plugins::test_dir("link");
        let settings = Arc::new(crate::MemorySettings::new(json!({})));
        let p = Arc::new(Plugins::open(&dir, "python3".as_ref(), settings).unwrap());
        let plugins = Actions::Plugins(p);
        let device = Actions::Device(Device {
            hostname: "b".into(),
            policy: Default::default(),
        });
        for method in plugins::PLUGIN_METHODS {
            assert!(!plugins.goes_async(method, false), "{method}");
            assert!(plugins.goes_async(method, true), "{method}");
            assert_eq!(plugins.running_message(method, &[json!("u")]), *method);
        }
        // (method, in a parent request, async)
        for (method, in_parent, want) in [
            ("DeviceEcho", false, false),
            ("DeviceEcho", true, true),
            ("DeviceReboot", true, false),
            ("DevicePkgOperation", false, true),
        ] {
            assert_eq!(device.goes_async(method, in_parent), want, "{method}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn version_reads_as_lightning_rod_0_5_0_to_a_stock_cloud() {
        let v = protocol_version();
        assert!(v.len() <= 20, "{v}");
        let first: Vec<u32> = v.split('.').take(3).map(|p| p.parse().unwrap()).collect();
        assert_eq!(first, [0, 5, 0]);
    }

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let delays: Vec<u128> = (0..6).map(|_| b.next().as_millis()).collect();
        for (d, cap) in delays.iter().zip([100, 200, 400, 800, 800, 800]) {
            assert!(*d >= cap / 2 && *d <= cap, "{delays:?}");
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }
}
