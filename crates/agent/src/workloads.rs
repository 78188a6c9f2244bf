//! Workload replicas (s4t extension): processes the cloud's scheduler places on this board,
//! supervised here (restart with backoff per the restart policy, logs, exit codes).
//!
//! Replicas are leased. While the link to the cloud is up the lease is renewed; once the board
//! has been cut off for longer than a replica's lease, the replica is stopped and forgotten, so
//! that the scheduler can run it elsewhere without two copies running. Replicas are kept in
//! `workloads.json` and come back when the agent restarts within their lease.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use s4t_model::board_link::WampMessage;
use s4t_model::plugin_runtime::WasmLimits;
use s4t_model::workloads::{Restart, Runtime, WorkloadSpec};

use crate::plugins::conf::write_atomically;
use crate::plugins::wasm;

/// The workload procedures a board registers.
pub const WORKLOAD_METHODS: [&str; 4] = [
    "WorkloadApply",
    "WorkloadRemove",
    "WorkloadStatus",
    "WorkloadLogs",
];

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long fetching a WASM module by URL may take, and how large it may be.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
const MODULE_MAX: usize = 64 << 20;

#[derive(Debug, Clone)]
struct Status {
    state: &'static str,
    exit_code: Option<i32>,
    restarts: u64,
    pid: Option<u32>,
    message: Option<String>,
    since: String,
}

impl Status {
    fn new() -> Status {
        Status {
            state: "starting",
            exit_code: None,
            restarts: 0,
            pid: None,
            message: None,
            since: now_text(),
        }
    }
}

struct Replica {
    doc: Value,
    generation: i64,
    lease: Duration,
    status: Arc<Mutex<Status>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Replica {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Link {
    up: bool,
    /// The last moment the cloud was known to be there.
    last_contact: Instant,
}

/// This board's replicas.
pub struct Workloads {
    /// Replicas (uuid, generation) being started: a repeated apply does not start another.
    starting: Mutex<std::collections::HashSet<(String, i64)>>,
    file: PathBuf,
    logs: PathBuf,
    replicas: tokio::sync::Mutex<HashMap<String, Replica>>,
    link: Mutex<Link>,
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl Workloads {
    /// Replicas kept in `dir/workloads.json`, logs in `dir/workloads/`. Replicas whose lease
    /// has not run out since the agent last heard from the cloud start again at once.
    pub async fn open(dir: &Path) -> Arc<Workloads> {
        let file = dir.join("workloads.json");
        let logs = dir.join("workloads");
        let (kept, last_contact) = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => {
                    end_leftovers(&v["pids"]);
                    (
                        v["replicas"].as_object().cloned().unwrap_or_default(),
                        v["last_contact"].as_f64().unwrap_or_default(),
                    )
                }
                Err(e) => {
                    tracing::error!(error = %e, "workloads.json unreadable: no replica restored");
                    (Map::new(), 0.0)
                }
            },
            Err(_) => (Map::new(), 0.0),
        };
        // A clock behind the last contact (a board without a real-time clock, after a long
        // power-off) says nothing about how long the board was away: restore nothing.
        let since = unix_now() - last_contact;
        let away = if since >= 0.0 {
            Duration::from_secs_f64(since)
        } else {
            Duration::MAX
        };
        let w = Arc::new(Workloads {
            starting: Mutex::new(Default::default()),
            file,
            logs,
            replicas: tokio::sync::Mutex::new(HashMap::new()),
            link: Mutex::new(Link {
                up: false,
                last_contact: Instant::now()
                    .checked_sub(away)
                    .unwrap_or_else(Instant::now),
            }),
        });
        for (uuid, doc) in kept {
            let lease = lease_of(&doc);
            if away > lease {
                tracing::info!(replica = %uuid, "replica not restored: its lease ran out while the agent was away");
                continue;
            }
            if let Err(e) = w.start(&uuid, doc).await {
                tracing::error!(replica = %uuid, error = %e, "replica not restored");
            }
        }
        w.save().await;
        tokio::spawn(Workloads::fence_loop(Arc::downgrade(&w)));
        w
    }

    /// The link to the cloud is up (the lease is renewed while it stays up).
    pub fn link_up(&self) {
        let mut l = self.link.lock().unwrap();
        l.up = true;
        l.last_contact = Instant::now();
    }

    /// The link is down. The leases run from the last moment the cloud can have been heard,
    /// `silence` (the link's dead-peer time) before now: the cloud may have seen the link go
    /// that much earlier, and its grace period runs from then.
    pub fn link_down(&self, silence: Duration) {
        let mut l = self.link.lock().unwrap();
        if l.up {
            l.up = false;
            let now = Instant::now();
            l.last_contact = now.checked_sub(silence).unwrap_or(now);
        }
    }

    /// Stops every replica (the agent stops; `workloads.json` keeps them).
    pub async fn shutdown(&self) {
        self.save().await;
        let all: Vec<Replica> = self.replicas.lock().await.drain().map(|(_, r)| r).collect();
        for r in all {
            r.stop().await;
        }
    }

    async fn fence_loop(me: std::sync::Weak<Workloads>) {
        let mut ticks = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Some(w) = me.upgrade() else { return };
            ticks += 1;
            let (up, away) = {
                let mut l = w.link.lock().unwrap();
                if l.up {
                    l.last_contact = Instant::now();
                }
                (l.up, l.last_contact.elapsed())
            };
            if up {
                // The lease survives an agent restart: note the contact now and then.
                if ticks.is_multiple_of(8) {
                    w.save().await;
                }
                continue;
            }
            let expired: Vec<String> = w
                .replicas
                .lock()
                .await
                .iter()
                .filter(|(_, r)| away > r.lease)
                .map(|(u, _)| u.clone())
                .collect();
            for uuid in expired {
                tracing::warn!(replica = %uuid, "cut off from the cloud beyond the replica's lease: stopping it");
                let r = w.replicas.lock().await.remove(&uuid);
                if let Some(r) = r {
                    r.stop().await;
                }
                w.save().await;
            }
        }
    }

    /// Answers a workload procedure.
    pub async fn perform(&self, method: &str, data: &[Value]) -> WampMessage {
        let arg = data.first().cloned().unwrap_or(Value::Null);
        match method {
            "WorkloadApply" => self.apply(arg).await,
            "WorkloadRemove" => match arg["uuid"].as_str() {
                Some(uuid) => {
                    let r = self.replicas.lock().await.remove(uuid);
                    let had = r.is_some();
                    if let Some(r) = r {
                        r.stop().await;
                    }
                    self.save().await;
                    WampMessage::success(if had {
                        format!("replica {uuid} removed")
                    } else {
                        format!("replica {uuid} already removed")
                    })
                }
                None => WampMessage::error("WorkloadRemove: the argument must be {\"uuid\": ...}"),
            },
            "WorkloadStatus" => self.status().await,
            "WorkloadLogs" => {
                let Some(uuid) = arg["uuid"].as_str() else {
                    return WampMessage::error(
                        "WorkloadLogs: the argument must be {\"uuid\": ..., \"lines\": N}",
                    );
                };
                let lines = arg["lines"].as_u64().unwrap_or(100).clamp(1, 10_000) as usize;
                match tail(&self.log_path(uuid), lines) {
                    Ok(text) => WampMessage::success(text),
                    Err(e) => WampMessage::error(format!("no log for replica {uuid}: {e}")),
                }
            }
            other => WampMessage::error(format!("unknown workload procedure {other}")),
        }
    }

    async fn apply(&self, doc: Value) -> WampMessage {
        let Some(uuid) = doc["uuid"].as_str().map(str::to_string) else {
            return WampMessage::error("WorkloadApply: the replica has no uuid");
        };
        let generation = doc["generation"].as_i64().unwrap_or(0);
        let key = (uuid.clone(), generation);
        if !self.starting.lock().unwrap().insert(key.clone()) {
            return WampMessage::success(format!("replica {uuid} is being started"));
        }
        let reply = self.apply_one(&uuid, generation, doc).await;
        self.starting.lock().unwrap().remove(&key);
        reply
    }

    async fn apply_one(&self, uuid: &str, generation: i64, doc: Value) -> WampMessage {
        {
            let mut replicas = self.replicas.lock().await;
            if replicas
                .get(uuid)
                .is_some_and(|r| r.generation == generation)
            {
                return WampMessage::success(format!(
                    "replica {uuid} already runs generation {generation}"
                ));
            }
            if let Some(old) = replicas.remove(uuid) {
                drop(replicas);
                old.stop().await;
            }
        }
        match self.start(uuid, doc).await {
            Ok(()) => {
                self.save().await;
                WampMessage::success(format!("replica {uuid} started"))
            }
            Err(e) => WampMessage::error(format!("replica {uuid} not started: {e}")),
        }
    }

    async fn start(&self, uuid: &str, doc: Value) -> Result<(), String> {
        let spec = WorkloadSpec::read(&doc["spec"]).map_err(|e| e.message)?;
        let program = match spec.runtime {
            Runtime::Process => Program::Process {
                command: spec.artifact["command"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                args: spec.artifact["args"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Runtime::Wasm => Program::Wasm {
                module: fetch_module(&spec.artifact).await?,
                limits: WasmLimits {
                    fuel: spec
                        .limits
                        .get("fuel")
                        .and_then(Value::as_f64)
                        .map(|f| f as u64),
                    memory_mib: spec
                        .limits
                        .get("memory_mib")
                        .and_then(Value::as_f64)
                        .map(|m| m as u32),
                    wall_secs: spec.limits.get("wall_secs").and_then(Value::as_f64),
                    files: false,
                },
            },
        };
        std::fs::create_dir_all(&self.logs).map_err(|e| format!("{}: {e}", self.logs.display()))?;
        let status = Arc::new(Mutex::new(Status::new()));
        let (stop, stop_rx) = watch::channel(false);
        let run = Run {
            replica: uuid.to_string(),
            workload: doc["name"].as_str().unwrap_or_default().to_string(),
            ordinal: doc["ordinal"].as_i64().unwrap_or_default(),
            program,
            env: spec.env.clone(),
            restart: spec.restart,
            log: self.log_path(uuid),
        };
        let task = tokio::spawn(supervise(run, status.clone(), stop_rx));
        let replica = Replica {
            generation: doc["generation"].as_i64().unwrap_or(0),
            lease: lease_of(&doc),
            doc,
            status,
            stop,
            task,
        };
        self.replicas.lock().await.insert(uuid.to_string(), replica);
        Ok(())
    }

    async fn status(&self) -> WampMessage {
        let replicas = self.replicas.lock().await;
        let mut list: Vec<Value> = replicas
            .iter()
            .map(|(uuid, r)| {
                let s = r.status.lock().unwrap().clone();
                json!({
                    "uuid": uuid, "workload": r.doc["workload"], "name": r.doc["name"],
                    "ordinal": r.doc["ordinal"], "generation": r.generation,
                    "state": s.state, "exit_code": s.exit_code, "restarts": s.restarts,
                    "pid": s.pid, "message": s.message, "since": s.since,
                })
            })
            .collect();
        list.sort_by(|a, b| a["uuid"].as_str().cmp(&b["uuid"].as_str()));
        WampMessage::success(json!({"replicas": list}))
    }

    fn log_path(&self, uuid: &str) -> PathBuf {
        // Replica ids are uuids; anything else cannot name a file outside the log directory.
        let safe: String = uuid
            .chars()
            .filter(|c| c.is_ascii_hexdigit() || *c == '-')
            .collect();
        self.logs.join(format!("{safe}.log"))
    }

    async fn save(&self) {
        let (replicas, pids): (Map<String, Value>, Map<String, Value>) = {
            let held = self.replicas.lock().await;
            (
                held.iter()
                    .map(|(u, r)| (u.clone(), r.doc.clone()))
                    .collect(),
                held.iter()
                    .filter_map(|(u, r)| Some((u.clone(), json!(r.status.lock().unwrap().pid?))))
                    .collect(),
            )
        };
        let doc =
            json!({"replicas": replicas, "pids": pids, "last_contact": self.last_contact_unix()});
        let bytes = serde_json::to_vec_pretty(&doc).expect("a Value always serialises");
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = write_atomically(&self.file, &bytes) {
            tracing::error!(error = %e, "workloads.json not written");
        }
    }

    fn last_contact_unix(&self) -> f64 {
        let l = self.link.lock().unwrap();
        let ago = if l.up {
            0.0
        } else {
            l.last_contact.elapsed().as_secs_f64()
        };
        unix_now() - ago
    }
}

/// Kills the process groups of replicas a previous agent left running (it was killed on a board
/// without setpriv). A pid is only trusted while its environment still names its replica, so
/// a reused pid is never hit.
fn end_leftovers(pids: &Value) {
    for (uuid, pid) in pids.as_object().into_iter().flatten() {
        let Some(pid) = pid.as_u64().and_then(|p| u32::try_from(p).ok()) else {
            continue;
        };
        let marker = format!("S4T_REPLICA={uuid}");
        let ours = std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()));
        if ours {
            tracing::warn!(replica = %uuid, pid, "a replica outlived the previous agent: killing it");
            kill_group(Some(pid), rustix::process::Signal::KILL);
        }
    }
}

fn lease_of(doc: &Value) -> Duration {
    Duration::from_secs_f64(
        doc["lease_secs"]
            .as_f64()
            .filter(|s| *s > 0.0)
            .unwrap_or(60.0),
    )
}

/// The last `lines` lines of a log file (reads at most its last 4 MiB).
fn tail(path: &Path, lines: usize) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(4 << 20);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    Ok(all[start..].join("\n"))
}

/// What a replica runs.
enum Program {
    Process {
        command: String,
        args: Vec<String>,
    },
    /// A WASI command module, run in the agent under its limits (like a WASM plugin).
    Wasm {
        module: Arc<wasm::Program>,
        limits: WasmLimits,
    },
}

impl Program {
    fn describe(&self) -> String {
        match self {
            Program::Process { command, .. } => command.clone(),
            Program::Wasm { .. } => "the WASM module".into(),
        }
    }
}

/// The module of a wasm artifact, checked against its digest and compiled.
async fn fetch_module(artifact: &Map<String, Value>) -> Result<Arc<wasm::Program>, String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = artifact["digest"].as_str().unwrap_or_default();
    let bytes = if let Some(inline) = artifact.get("inline").and_then(Value::as_str) {
        base64::engine::general_purpose::STANDARD
            .decode(inline.trim())
            .map_err(|e| format!("artifact.inline is not base64: {e}"))?
    } else {
        let url = artifact["url"].as_str().unwrap_or_default();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("artifact.url {url}: {e}"))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("artifact.url {url}: {e}"))?
        {
            if bytes.len() + chunk.len() > MODULE_MAX {
                return Err(format!(
                    "artifact.url {url}: the module is larger than {} MiB",
                    MODULE_MAX >> 20
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        bytes
    };
    let got = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    if !got.eq_ignore_ascii_case(digest) {
        return Err(format!(
            "the module's digest is {got}, not artifact.digest {digest}: refusing to run it"
        ));
    }
    let program = tokio::task::spawn_blocking(move || wasm::Program::compile(&bytes))
        .await
        .map_err(|e| e.to_string())??;
    Ok(Arc::new(program))
}

struct Run {
    replica: String,
    workload: String,
    ordinal: i64,
    program: Program,
    env: std::collections::BTreeMap<String, String>,
    restart: Restart,
    log: PathBuf,
}

fn note(log: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "[s4t {}] {line}", now_text());
    }
}

/// Runs a replica until it is stopped, restarting it per its policy with backoff.
async fn supervise(run: Run, status: Arc<Mutex<Status>>, mut stop: watch::Receiver<bool>) {
    let set = |f: &dyn Fn(&mut Status)| {
        let mut s = status.lock().unwrap();
        f(&mut s);
        s.since = now_text();
    };
    let mut backoff = FIRST_BACKOFF;
    let mut runs = 0u64;
    loop {
        let started = Instant::now();
        runs += 1;
        let outcome = if let Program::Wasm { module, limits } = &run.program {
            let (worker, _first) = wasm::spawn(
                runs,
                module.clone(),
                wasm::Run {
                    mode: crate::plugins::worker::Mode::Async,
                    uuid: run.replica.clone(),
                    name: run.workload.clone(),
                    params: Value::Object(Map::new()),
                    env: run
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .chain([
                            ("S4T_WORKLOAD".to_string(), run.workload.clone()),
                            ("S4T_REPLICA".to_string(), run.replica.clone()),
                            ("S4T_ORDINAL".to_string(), run.ordinal.to_string()),
                        ])
                        .collect(),
                    log: run.log.clone(),
                    data_dir: run.log.with_extension("data"),
                    limits: limits.clone(),
                    default_wall: None,
                },
            );
            set(&|s| {
                s.state = "running";
                s.pid = None;
                s.message = None;
            });
            note(&run.log, "started the WASM module");
            tokio::select! {
                _ = worker.ended() => {
                    let status = worker.exit_status().unwrap_or_default();
                    if status != "completed" {
                        set(&|s| s.message = Some(status.clone()));
                    }
                    Some(Ok(Some(wasm::exit_code_of(&status))))
                }
                _ = stopped(&mut stop) => {
                    worker.terminate(STOP_GRACE).await;
                    None
                }
            }
        } else {
            match spawn(&run) {
                Ok(mut child) => {
                    let pid = child.id();
                    set(&|s| {
                        s.state = "running";
                        s.pid = pid;
                        s.message = None;
                    });
                    note(
                        &run.log,
                        &format!(
                            "started {} (pid {})",
                            run.program.describe(),
                            pid.unwrap_or(0)
                        ),
                    );
                    tokio::select! {
                        r = child.wait() => {
                            // What the replica left running in its group goes with it.
                            kill_group(pid, rustix::process::Signal::KILL);
                            Some(r.map(|st| st.code()).map_err(|e| e.to_string()))
                        }
                        _ = stopped(&mut stop) => {
                            end(&mut child, pid).await;
                            None
                        }
                    }
                }
                Err(e) => Some(Err(e)),
            }
        };
        let exit = match outcome {
            None => {
                note(&run.log, "stopped");
                set(&|s| {
                    s.state = "stopped";
                    s.pid = None;
                });
                return;
            }
            Some(Ok(code)) => code,
            Some(Err(e)) => {
                let what = run.program.describe();
                note(&run.log, &format!("cannot start {what}: {e}"));
                set(&|s| s.message = Some(format!("cannot start {what}: {e}")));
                Some(127)
            }
        };
        let ran = started.elapsed();
        note(
            &run.log,
            &match exit {
                Some(c) => format!("exited with code {c} after {:.1} s", ran.as_secs_f64()),
                None => format!("killed by a signal after {:.1} s", ran.as_secs_f64()),
            },
        );
        if !run.restart.restarts_after(exit) {
            set(&|s| {
                s.state = if exit == Some(0) { "exited" } else { "failed" };
                s.exit_code = exit;
                s.pid = None;
            });
            return;
        }
        if ran >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        let wait = backoff;
        set(&|s| {
            s.state = "backoff";
            s.exit_code = exit;
            s.pid = None;
            s.restarts += 1;
            s.message = Some(format!(
                "{}; restart {} in {:.0} s",
                match exit {
                    Some(c) => format!("exited with code {c}"),
                    None => "killed by a signal".to_string(),
                },
                s.restarts,
                wait.as_secs_f64()
            ));
        });
        let n = status.lock().unwrap().restarts;
        note(
            &run.log,
            &format!("restart {n} in {:.0} s", wait.as_secs_f64()),
        );
        backoff = (backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut stop) => {
                set(&|s| s.state = "stopped");
                return;
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn spawn(run: &Run) -> Result<tokio::process::Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&run.log)
        .map_err(|e| format!("{}: {e}", run.log.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let Program::Process { command, args } = &run.program else {
        return Err("not a process".into());
    };
    // A replica must not outlive an agent that is killed: it would run twice once the
    // scheduler moves it. setpriv (util-linux) sets the parent-death signal, then execs.
    let mut cmd = match setpriv() {
        Some(setpriv) => {
            let mut c = tokio::process::Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(command);
            c
        }
        None => tokio::process::Command::new(command),
    };
    cmd.args(args)
        .envs(&run.env)
        .env("S4T_WORKLOAD", &run.workload)
        .env("S4T_REPLICA", &run.replica)
        .env("S4T_ORDINAL", run.ordinal.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| e.to_string())
}

/// util-linux's setpriv, when the board has it.
fn setpriv() -> Option<&'static Path> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            ["/usr/bin/setpriv", "/bin/setpriv"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
        .as_deref()
}

fn kill_group(pid: Option<u32>, sig: rustix::process::Signal) {
    if let Some(g) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(g, sig);
    }
}

/// Ends a replica's process group: TERM, then KILL after a grace period.
async fn end(child: &mut tokio::process::Child, pid: Option<u32>) {
    let group = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(g) = group {
        let _ = rustix::process::kill_process_group(g, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        if let Some(g) = group {
            let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
        }
        let _ = child.wait().await;
    }
}
