//! Plugins, as Lightning-rod 0.5.0 runs them: the same procedures (`PluginInject`,
//! `PluginStart`, `PluginStop`, `PluginCall`, `PluginReboot`, `PluginStatus`, `PluginRemove`), the
//! same files under the data dir (`plugins.json`, `plugins/<uuid>/<uuid>.py` and `.json`) and the
//! same replies, for plugins written against Lightning-rod's plugin API.
//!
//! Unlike Lightning-rod, each plugin runs in its own `python3` process ([`worker`]), hosted by a
//! runner shipped inside the agent ([`runtime`]): stopping a plugin terminates its process, and a
//! plugin that crashes or hangs cannot take the agent down. Its stderr (prints, logging,
//! tracebacks) goes to `plugins/<uuid>/<uuid>.log`. A callable plugin's process is kept between
//! PluginCalls (each call builds a fresh `Worker` in it, in a thread, as Lightning-rod does); it
//! is replaced after it crashed, hung past [`CALL_TIMEOUT`] or its code changed.
//!
//! A plugin whose `extra.runtime` is `"wasm"` runs in [`wasm`] instead: a WASI module in the
//! agent's wasmtime sandbox, under fuel, memory and wall-clock limits, one fresh instance per run.
//! The procedures, their replies and the files are the same.
//!
//! Parts: [`conf`] reads and writes `plugins.json`; [`decide`] says which reply for which state
//! (pure).

pub mod conf;
pub mod decide;
pub mod runtime;
pub mod simulated;
pub mod wasm;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use s4t_model::board_link::WampMessage;
use s4t_model::plugin_runtime::{self, Runtime};

use crate::settings::SettingsStore;
use conf::{Entry, Injected, PluginsConf};
use decide::{First, Live};
use worker::{Job, Launcher, Mode, Server, Worker};

/// Every plugin procedure the agent registers.
pub const PLUGIN_METHODS: &[&str] = &[
    "PluginInject",
    "PluginStart",
    "PluginStop",
    "PluginCall",
    "PluginReboot",
    "PluginStatus",
    "PluginRemove",
    // s4t extension: the tail of the plugin's log (stock Lightning-rods lack it).
    "PluginLogs",
];

/// How long a plugin gets to end after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long a PluginCall waits for the plugin's result before its process is stopped.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a PluginCall waits for the worker thread of the previous call (which answered) to
/// end before it answers that the plugin is running.
const SETTLE: Duration = Duration::from_millis(100);

/// One plugin's processes (Lightning-rod's `PLUGINS_THRS[uuid]`). Operations on one plugin take
/// turns; different plugins do not wait for each other.
#[derive(Default)]
struct Procs {
    /// The process of PluginStart, PluginReboot or the boot.
    worker: Option<Worker>,
    /// A callable plugin's kept process, serving its PluginCalls.
    server: Option<Server>,
    /// A PluginCall's worker was built (Lightning-rod then keeps it: instantiated, ended).
    called: bool,
    /// A WASM plugin's compiled module (kept across runs; replaced by PluginInject).
    program: Option<Arc<wasm::Program>>,
}

impl Procs {
    /// Takes every process, to stop them; the plugin is then absent.
    fn take(&mut self) -> Vec<Worker> {
        self.called = false;
        let server = self.server.take().map(|s| s.process);
        self.worker.take().into_iter().chain(server).collect()
    }
}

type Slot = Arc<tokio::sync::Mutex<Procs>>;

/// The plugins of one board.
pub struct Plugins {
    home: PathBuf,
    launcher: Launcher,
    settings: Arc<dyn SettingsStore>,
    slots: Mutex<HashMap<String, Slot>>,
    /// Per Python plugin: PluginCalls take turns, as on Lightning-rod (which answers one at a
    /// time), instead of the second being refused while the first runs.
    call_turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Read-modify-write of plugins.json.
    conf_lock: Mutex<()>,
    next_id: AtomicU64,
    grace: Duration,
    call_timeout: Duration,
}

fn now() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// A call in progress counts as a running plugin, as Lightning-rod's call thread does.
fn live(p: &Procs) -> Live {
    let calling = p
        .server
        .as_ref()
        .is_some_and(|s| s.process.alive() && s.busy());
    match &p.worker {
        Some(w) if w.alive() => Live::Alive,
        _ if calling => Live::Alive,
        Some(_) => Live::Exited,
        None if p.called => Live::Exited,
        None => Live::Absent,
    }
}

/// `[uuid, params]` after `req`: the uuid (checked) and the parameters (null when absent).
fn uuid_and_params<'a>(rpc: &str, data: &'a [Value]) -> Result<(&'a str, Value), WampMessage> {
    let raw = data.first().unwrap_or(&Value::Null);
    match raw.as_str() {
        Some(u) if decide::valid_uuid(u) => Ok((u, data.get(1).cloned().unwrap_or(Value::Null))),
        _ => Err(decide::not_a_uuid(rpc, raw)),
    }
}

impl Plugins {
    /// Opens the plugins of the board whose Lightning-rod home is `home`: installs the Python
    /// runtime there and creates an empty plugins.json if there is none.
    pub fn open(
        home: &Path,
        python: &Path,
        settings: Arc<dyn SettingsStore>,
    ) -> std::io::Result<Plugins> {
        std::fs::create_dir_all(home.join("plugins"))?;
        let runtime = runtime::install(home)?;
        let p = Plugins {
            home: home.to_path_buf(),
            launcher: Launcher {
                python: python.to_path_buf(),
                runner: runtime.join(runtime::RUNNER),
                runtime,
            },
            settings,
            slots: Mutex::new(HashMap::new()),
            call_turns: Mutex::new(HashMap::new()),
            conf_lock: Mutex::new(()),
            next_id: AtomicU64::new(1),
            grace: STOP_GRACE,
            call_timeout: CALL_TIMEOUT,
        };
        if !p.conf_path().exists() {
            PluginsConf::default()
                .save(&p.conf_path())
                .map_err(std::io::Error::other)?;
        }
        Ok(p)
    }

    /// How long a plugin gets between SIGTERM and SIGKILL (default [`STOP_GRACE`]).
    pub fn with_stop_grace(mut self, grace: Duration) -> Plugins {
        self.grace = grace;
        self
    }

    /// How long a PluginCall waits for its result (default [`CALL_TIMEOUT`]).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Plugins {
        self.call_timeout = timeout;
        self
    }

    pub fn conf_path(&self) -> PathBuf {
        self.home.join("plugins.json")
    }

    pub fn dir(&self, uuid: &str) -> PathBuf {
        self.home.join("plugins").join(uuid)
    }

    fn source(&self, uuid: &str) -> PathBuf {
        self.dir(uuid).join(format!("{uuid}.py"))
    }

    fn module_file(&self, uuid: &str) -> PathBuf {
        self.dir(uuid).join(format!("{uuid}.wasm"))
    }

    /// The file that holds the plugin's code in its runtime.
    fn code_file(&self, uuid: &str, runtime: &Runtime) -> PathBuf {
        match runtime {
            Runtime::Python => self.source(uuid),
            Runtime::Wasm(_) => self.module_file(uuid),
        }
    }

    fn params_file(&self, uuid: &str) -> PathBuf {
        self.dir(uuid).join(format!("{uuid}.json"))
    }

    /// The plugin's log (its process's stderr).
    pub fn log(&self, uuid: &str) -> PathBuf {
        self.dir(uuid).join(format!("{uuid}.log"))
    }

    fn slot(&self, uuid: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(uuid.to_string()).or_default().clone()
    }

    fn load_conf(&self) -> Result<PluginsConf, WampMessage> {
        PluginsConf::load(&self.conf_path()).map_err(WampMessage::error)
    }

    /// Changes plugins.json under its lock.
    fn update_conf<T>(&self, f: impl FnOnce(&mut PluginsConf) -> T) -> Result<T, String> {
        let _guard = self.conf_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut conf = PluginsConf::load(&self.conf_path())?;
        let out = f(&mut conf);
        conf.save(&self.conf_path())?;
        Ok(out)
    }

    /// The board's identity for `pluginApis` (from the settings as they are now).
    fn board_env(&self) -> Vec<(String, String)> {
        let doc = self.settings.load().unwrap_or(Value::Null);
        let board = doc.pointer("/iotronic/board");
        let mut env = Vec::new();
        if let Some(u) = board.and_then(|b| b.get("uuid")).and_then(Value::as_str) {
            env.push(("S4T_BOARD_UUID".into(), u.to_string()));
        }
        if let Some(l) = board.and_then(|b| b.get("location")) {
            env.push(("S4T_BOARD_LOCATION".into(), l.to_string()));
        }
        env
    }

    /// Starts one run of the plugin in its runtime.
    async fn launch(
        &self,
        procs: &mut Procs,
        mode: Mode,
        uuid: &str,
        entry: &Entry,
        params: &Value,
    ) -> Result<(Worker, tokio::sync::oneshot::Receiver<First>), WampMessage> {
        let limits = match &entry.runtime {
            Runtime::Python => return self.spawn(mode, uuid, &entry.name, params),
            Runtime::Wasm(limits) => limits.clone(),
        };
        let program = self.program(procs, uuid).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let run = wasm::Run {
            mode,
            uuid: uuid.to_string(),
            name: entry.name.clone(),
            params: params.clone(),
            env: self.board_env(),
            log: self.log(uuid),
            data_dir: self.dir(uuid).join("data"),
            limits,
            default_wall: (mode == Mode::Call).then_some(self.call_timeout),
        };
        Ok(wasm::spawn(id, program, run))
    }

    /// The plugin's compiled module: kept, or compiled from `<uuid>.wasm` (after a restart).
    async fn program(
        &self,
        procs: &mut Procs,
        uuid: &str,
    ) -> Result<Arc<wasm::Program>, WampMessage> {
        if let Some(p) = &procs.program {
            return Ok(p.clone());
        }
        let file = self.module_file(uuid);
        let bytes = std::fs::read(&file)
            .map_err(|e| WampMessage::error(format!("{}: {e}", file.display())))?;
        let program = compile(bytes).await.map_err(WampMessage::error)?;
        procs.program = Some(program.clone());
        Ok(program)
    }

    fn spawn(
        &self,
        mode: Mode,
        uuid: &str,
        name: &str,
        params: &Value,
    ) -> Result<(Worker, tokio::sync::oneshot::Receiver<First>), WampMessage> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (dir, source, log) = (self.dir(uuid), self.source(uuid), self.log(uuid));
        self.launcher
            .spawn(
                id,
                Job {
                    mode,
                    uuid,
                    name,
                    source: &source,
                    params,
                    dir: &dir,
                    log: &log,
                    env: self.board_env(),
                },
            )
            .map_err(|e| WampMessage::error(e.to_string()))
    }

    /// Starts the process that serves the plugin's PluginCalls.
    fn serve(
        &self,
        uuid: &str,
        name: &str,
        env: Vec<(String, String)>,
    ) -> Result<Server, WampMessage> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (dir, source, log) = (self.dir(uuid), self.source(uuid), self.log(uuid));
        self.launcher
            .serve(
                id,
                Job {
                    mode: Mode::Call,
                    uuid,
                    name,
                    source: &source,
                    params: &Value::Null,
                    dir: &dir,
                    log: &log,
                    env,
                },
            )
            .map_err(|e| WampMessage::error(e.to_string()))
    }

    fn write_params(&self, uuid: &str, params: &Value) -> Result<(), WampMessage> {
        if params.is_null() {
            return Ok(());
        }
        conf::write_atomically(&self.params_file(uuid), conf::pretty(params).as_bytes())
            .map_err(|e| WampMessage::error(format!("{}: {e}", self.params_file(uuid).display())))
    }

    /// Runs one plugin procedure; `data` is what follows `req`.
    pub async fn perform(&self, rpc: &str, data: &[Value]) -> WampMessage {
        let reply = match rpc {
            "PluginInject" => self.inject(data).await,
            "PluginStart" => self.start(data).await,
            "PluginStop" => self.stop(data).await,
            "PluginCall" => self.call(data).await,
            "PluginReboot" => self.reboot(data).await,
            "PluginStatus" => self.status(data).await,
            "PluginRemove" => self.remove(data).await,
            "PluginLogs" => self.logs(data).await,
            other => Err(WampMessage::error(format!(
                "{other} is not a plugin action"
            ))),
        };
        reply.unwrap_or_else(|e| e)
    }

    async fn inject(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let plugin = data.first().cloned().unwrap_or(Value::Null);
        let onboot = data.get(1).cloned().unwrap_or(Value::Bool(false));
        let field = |k: &str| plugin.get(k).and_then(Value::as_str);
        let uuid = match plugin.get("uuid") {
            Some(Value::String(u)) if decide::valid_uuid(u) => u.clone(),
            other => {
                let raw = other.cloned().unwrap_or(Value::Null);
                return Err(decide::inject_error(&format!("{raw} is not a plugin uuid")));
            }
        };
        let name = field("name").unwrap_or_default().to_string();
        let code = field("code").ok_or_else(|| decide::inject_error("the plugin has no code"))?;
        let source = s4t_model::pickle::decode_str(code)
            .map_err(|e| decide::inject_error(&e.to_string()))?;
        let callable = plugin.get("callable").cloned().unwrap_or(Value::Null);
        let runtime = Runtime::from_extra(plugin.get("extra"))
            .map_err(|e| decide::inject_error(&e.message))?;
        // A WASM module is compiled before anything is written: a bad one leaves the board as
        // it was.
        let (code, program) = match &runtime {
            Runtime::Python => (source.into_bytes(), None),
            Runtime::Wasm(_) => {
                let wasm = plugin_runtime::wasm_code(&source)
                    .map_err(|e| decide::inject_error(&e.message))
                    .and_then(|c| wasm::to_binary(c).map_err(|e| decide::inject_error(&e)))?;
                let program = compile(wasm.clone())
                    .await
                    .map_err(|e| decide::inject_error(&e))?;
                (wasm, Some(program))
            }
        };
        let slot = self.slot(&uuid);
        let mut current = slot.lock().await;
        // The next PluginCall loads the new code: the kept process ends (after the call it may
        // be serving: it ends when its input closes).
        drop(current.server.take());
        current.program = program;
        let (file, other) = match &runtime {
            Runtime::Python => (self.source(&uuid), self.module_file(&uuid)),
            Runtime::Wasm(_) => (self.module_file(&uuid), self.source(&uuid)),
        };
        std::fs::create_dir_all(self.dir(&uuid))
            .and_then(|()| conf::write_atomically(&file, &code))
            .map_err(|e| decide::inject_error(&e.to_string()))?;
        // The code of the other runtime, if the plugin changed runtime, is stale.
        let _ = std::fs::remove_file(other);
        let injected = Injected {
            name: &name,
            onboot,
            callable,
            runtime: &runtime,
        };
        let new = self
            .update_conf(|c| c.inject(&uuid, injected, &now()))
            .map_err(|e| decide::inject_error(&e))?;
        tracing::info!(plugin = %uuid, %name, new, "plugin injected");
        Ok(decide::injected(new))
    }

    async fn start(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let (uuid, params) = uuid_and_params("PluginStart", data)?;
        let conf = self.load_conf()?;
        let entry = conf.entry(uuid);
        let slot = self.slot(uuid);
        let mut current = slot.lock().await;
        let runtime = entry
            .as_ref()
            .map_or(Runtime::Python, |e| e.runtime.clone());
        let source = self.code_file(uuid, &runtime);
        decide::start(
            uuid,
            entry.as_ref(),
            live(&current),
            &source,
            source.exists(),
        )?;
        let entry = entry.ok_or_else(|| WampMessage::error("plugins.json changed"))?;
        let name = entry.name.clone();
        self.write_params(uuid, &params)?;
        let (worker, first) = self
            .launch(&mut current, Mode::Async, uuid, &entry, &params)
            .await?;
        let id = worker.id;
        current.worker = Some(worker);
        drop(current);
        let first = first
            .await
            .unwrap_or_else(|_| First::Ended("no word".into()));
        let reply = decide::started_reply("PluginStart", uuid, first, "STARTED", &self.log(uuid));
        if reply.result == s4t_model::resources::Outcome::Success {
            self.update_conf(|c| c.set_status(uuid, "operative"))
                .map_err(WampMessage::error)?;
            tracing::info!(plugin = %uuid, %name, "plugin started");
        } else {
            self.forget(uuid, id).await;
        }
        Ok(reply)
    }

    /// Drops a process that failed to start (if it is still the plugin's current one).
    async fn forget(&self, uuid: &str, id: u64) {
        let slot = self.slot(uuid);
        let mut current = slot.lock().await;
        if current.worker.as_ref().is_some_and(|w| w.id == id) {
            if let Some(w) = current.worker.take() {
                w.terminate(self.grace).await;
            }
        }
    }

    async fn stop(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let (uuid, params) = uuid_and_params("PluginStop", data)?;
        let slot = self.slot(uuid);
        decide::stop(uuid, live(&*slot.lock().await))?;
        // The delay is waited without holding the plugin's turn (a status query still answers).
        let delay = decide::stop_delay(&params);
        if delay > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(delay)).await;
        }
        let stopping = slot.lock().await.take();
        for w in stopping {
            w.terminate(self.grace).await;
        }
        tracing::info!(plugin = %uuid, "plugin stopped");
        Ok(WampMessage::success("STOPPED"))
    }

    async fn call(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let (uuid, params) = uuid_and_params("PluginCall", data)?;
        let wasm = self
            .load_conf()?
            .entry(uuid)
            .is_some_and(|e| e.runtime.is_wasm());
        let turn = (!wasm).then(|| {
            let mut turns = self.call_turns.lock().unwrap_or_else(|p| p.into_inner());
            turns.entry(uuid.to_string()).or_default().clone()
        });
        let _my_turn = match &turn {
            Some(t) => Some(t.lock().await),
            None => None,
        };
        let slot = self.slot(uuid);
        let mut current = slot.lock().await;
        // The previous call answered and its worker thread is about to end: a moment for it.
        if let Some(s) = current
            .server
            .as_ref()
            .filter(|s| s.process.alive() && s.answered_but_busy())
        {
            let _ = tokio::time::timeout(SETTLE, s.idle()).await;
        }
        let conf = self.load_conf()?;
        let entry = conf.entry(uuid);
        let runtime = entry
            .as_ref()
            .map_or(Runtime::Python, |e| e.runtime.clone());
        let source = self.code_file(uuid, &runtime);
        decide::call(
            uuid,
            entry.as_ref(),
            live(&current),
            &source,
            source.exists(),
        )?;
        let entry = entry.ok_or_else(|| WampMessage::error("plugins.json changed"))?;
        if runtime.is_wasm() {
            // Each call is a fresh instance of its own, so calls run side by side, as
            // overlapping PluginCalls do on a stock Lightning-rod; the worker lives until the
            // call has answered.
            self.write_params(uuid, &params)?;
            let (worker, first) = self
                .launch(&mut current, Mode::Call, uuid, &entry, &params)
                .await?;
            current.called = true;
            drop(current);
            let first = first
                .await
                .unwrap_or_else(|_| First::Ended("no word".into()));
            drop(worker);
            return Ok(decide::call_reply(first, &self.log(uuid)));
        }
        let name = entry.name;
        self.write_params(uuid, &params)?;
        let env = self.board_env();
        let reusable = current
            .server
            .as_ref()
            .is_some_and(|s| s.process.alive() && s.env == env);
        if !reusable {
            if let Some(old) = current.server.take() {
                old.process.terminate(self.grace).await;
            }
            current.server = Some(self.serve(uuid, &name, env)?);
        }
        let server = current.server.as_ref().expect("just set");
        let (answer, process) = (server.call(&params), server.process.clone());
        current.called = true;
        drop(current);
        let first = match tokio::time::timeout(self.call_timeout, answer).await {
            Ok(first) => first.unwrap_or_else(|_| First::Ended("no word".into())),
            Err(_) => {
                tracing::warn!(plugin = %uuid, "no result within {:?}; stopping the plugin process", self.call_timeout);
                process.terminate(self.grace).await;
                First::Ended(format!(
                    "no result within {} s; the plugin process was stopped",
                    self.call_timeout.as_secs_f64()
                ))
            }
        };
        if !matches!(first, First::Result(_)) {
            // The worker thread is over (or the process): once it is, the plugin is DEAD (not
            // still ALIVE for a moment after the reply).
            let current = slot.lock().await;
            if let Some(s) = current
                .server
                .as_ref()
                .filter(|s| s.process.id == process.id)
            {
                let _ = tokio::time::timeout(self.grace, s.idle()).await;
            }
            drop(current);
            if matches!(first, First::LoadFailed(_)) {
                // Lightning-rod keeps no worker it could not build.
                let mut current = slot.lock().await;
                if current
                    .server
                    .as_ref()
                    .is_none_or(|s| s.process.id == process.id)
                {
                    current.called = false;
                }
            }
        }
        Ok(decide::call_reply(first, &self.log(uuid)))
    }

    async fn reboot(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let (uuid, params) = uuid_and_params("PluginReboot", data)?;
        let conf = self.load_conf()?;
        let entry = conf.entry(uuid);
        decide::reboot(uuid, entry.as_ref())?;
        let slot = self.slot(uuid);
        let mut current = slot.lock().await;
        for w in current.take() {
            w.terminate(self.grace).await;
        }
        let entry = entry.ok_or_else(|| WampMessage::error("plugins.json changed"))?;
        let source = self.code_file(uuid, &entry.runtime);
        decide::reboot_source(&source, source.exists())?;
        let saved = std::fs::read_to_string(self.params_file(uuid))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let params = decide::reboot_params(&params, saved);
        let (worker, first) = self
            .launch(&mut current, Mode::Async, uuid, &entry, &params)
            .await?;
        let id = worker.id;
        current.worker = Some(worker);
        drop(current);
        let first = first
            .await
            .unwrap_or_else(|_| First::Ended("no word".into()));
        let reply = decide::started_reply("PluginReboot", uuid, first, "REBOOTED", &self.log(uuid));
        if reply.result != s4t_model::resources::Outcome::Success {
            self.forget(uuid, id).await;
        }
        Ok(reply)
    }

    async fn status(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let (uuid, _) = uuid_and_params("PluginStatus", data)?;
        let slot = self.slot(uuid);
        let current = slot.lock().await;
        Ok(decide::status(live(&current)))
    }

    /// The last `params.lines` lines (default 100, at most 10,000) of the plugin's log.
    async fn logs(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let (uuid, params) = uuid_and_params("PluginLogs", data)?;
        if !self.dir(uuid).is_dir() {
            return Err(WampMessage::error("Plugin paths or files do not exist!"));
        }
        let lines = params
            .get("lines")
            .and_then(Value::as_u64)
            .unwrap_or(100)
            .clamp(1, 10_000) as usize;
        let text = match std::fs::read(self.log(uuid)) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(WampMessage::error(format!("PluginLogs: {e}"))),
        };
        Ok(WampMessage::success(decide::tail(&text, lines)))
    }

    async fn remove(&self, data: &[Value]) -> Result<WampMessage, WampMessage> {
        let (uuid, _) = uuid_and_params("PluginRemove", data)?;
        let slot = self.slot(uuid);
        let mut current = slot.lock().await;
        let dir = self.dir(uuid);
        decide::remove(dir.is_dir(), self.conf_path().exists())?;
        for w in current.take() {
            w.terminate(self.grace).await;
        }
        current.program = None;
        std::fs::remove_dir_all(&dir).map_err(|e| {
            WampMessage::error(format!(
                "Removing plugin's files error in {}/: {e}",
                dir.display()
            ))
        })?;
        let had = self
            .update_conf(|c| c.remove(uuid))
            .map_err(|e| WampMessage::error(format!("Updating plugins.json error: {e}")))?;
        tracing::info!(plugin = %uuid, "plugin removed");
        Ok(decide::removed(uuid, had))
    }

    /// Starts again the asynchronous plugins that were running when the agent last stopped
    /// (`callable` false, `onboot` true, status `operative`), with their saved parameters.
    pub async fn restart_onboot(&self) {
        let conf = match self.load_conf() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e.message, "plugins.json unreadable; no plugin restarted");
                return;
            }
        };
        for (uuid, entry) in conf.onboot() {
            if !decide::valid_uuid(&uuid) {
                tracing::warn!(plugin = %uuid, "plugins.json: not a plugin uuid; skipped");
                continue;
            }
            let (source, params_file) = (
                self.code_file(&uuid, &entry.runtime),
                self.params_file(&uuid),
            );
            let params = match std::fs::read_to_string(&params_file) {
                Ok(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
                Err(e) => {
                    tracing::error!(plugin = %uuid, error = %e, "{} unreadable; not restarted", params_file.display());
                    continue;
                }
            };
            if !source.exists() {
                tracing::error!(plugin = %uuid, "{} does not exist; not restarted", source.display());
                continue;
            }
            let slot = self.slot(&uuid);
            let mut current = slot.lock().await;
            if live(&current) == Live::Alive {
                continue;
            }
            let (worker, first) = match self
                .launch(&mut current, Mode::Async, &uuid, &entry, &params)
                .await
            {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(plugin = %uuid, error = %e.message, "plugin not restarted");
                    continue;
                }
            };
            let id = worker.id;
            current.worker = Some(worker);
            drop(current);
            match first.await {
                Ok(First::Started) => {
                    tracing::info!(plugin = %uuid, name = %entry.name, "plugin restarted at boot")
                }
                other => {
                    tracing::error!(plugin = %uuid, outcome = ?other, "plugin failed to restart at boot; see {}", self.log(&uuid).display());
                    self.forget(&uuid, id).await;
                }
            }
        }
    }

    /// Stops every plugin process (the agent is stopping). plugins.json is left as it is, so
    /// the plugins that were running start again with the agent.
    pub async fn shutdown(&self) {
        let slots: Vec<Slot> = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.values().cloned().collect()
        };
        let mut workers = Vec::new();
        for slot in slots {
            for w in slot.lock().await.take() {
                w.ask_to_stop();
                workers.push(w);
            }
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        for w in &workers {
            if tokio::time::timeout_at(deadline, w.ended()).await.is_err() {
                w.kill();
            }
        }
        for w in &workers {
            w.ended().await;
        }
    }
}

/// Compiles a WASM module off the async threads (compiling is CPU-bound).
async fn compile(wasm: Vec<u8>) -> Result<Arc<wasm::Program>, String> {
    tokio::task::spawn_blocking(move || wasm::Program::compile(&wasm).map(Arc::new))
        .await
        .map_err(|e| format!("compiling the WASM module: {e}"))?
}

#[cfg(test)]
pub(crate) fn test_dir(tag: &str) -> PathBuf {
    use rand::Rng;
    let d = std::env::temp_dir().join(format!(
        "s4t-agent-{tag}-{}-{:x}",
        std::process::id(),
        rand::thread_rng().gen::<u64>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
