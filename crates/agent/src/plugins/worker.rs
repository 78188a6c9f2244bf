//! One plugin, one `python3` process: started with the runner, stopped with SIGTERM and, after a
//! grace period, SIGKILL (to its whole process group, so whatever the plugin started goes too).
//! A callable plugin's process ([`Server`]) is kept and serves its PluginCalls one after another.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

use super::decide::First;

/// How the runner hosts the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PluginCall: a result queue; the first item is the reply.
    Call,
    /// PluginStart / PluginReboot / boot: runs until it ends or is stopped.
    Async,
}

/// What every plugin process shares.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub python: PathBuf,
    /// The runtime directory (runner, `iotronic_lightningrod`): the process's `PYTHONPATH`.
    pub runtime: PathBuf,
    pub runner: PathBuf,
}

/// One plugin run.
pub struct Job<'a> {
    pub mode: Mode,
    pub uuid: &'a str,
    pub name: &'a str,
    pub source: &'a Path,
    pub params: &'a Value,
    /// The plugin's directory: its working directory.
    pub dir: &'a Path,
    pub log: &'a Path,
    /// Extra environment (the board's identity for `pluginApis`).
    pub env: Vec<(String, String)>,
}

/// A started process (or a WASM plugin's task, [`Worker::task`]). Its exit is watched by a task
/// that also reaps it.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Distinguishes successive processes of one plugin.
    pub id: u64,
    pid: Option<u32>,
    /// A task's stop switch (a process has its pid instead).
    stop: Option<Arc<watch::Sender<bool>>>,
    exit: watch::Receiver<Option<String>>,
}

/// Logs above this size are moved to `<uuid>.log.1` when the plugin starts again.
const LOG_ROTATE_BYTES: u64 = 1 << 20;

impl Launcher {
    /// Starts the runner with `job` as its first line on stdin.
    fn start(
        &self,
        job: &Job<'_>,
    ) -> std::io::Result<(tokio::process::Child, Option<u32>, String)> {
        if std::fs::metadata(job.log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
            let mut old = job.log.as_os_str().to_owned();
            old.push(".1");
            let _ = std::fs::rename(job.log, old);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(job.log)?;
        let pythonpath = match std::env::var_os("PYTHONPATH") {
            Some(p) if !p.is_empty() => {
                let mut all = self.runtime.as_os_str().to_owned();
                all.push(":");
                all.push(p);
                all
            }
            _ => self.runtime.as_os_str().to_owned(),
        };
        let mut cmd = tokio::process::Command::new(&self.python);
        cmd.arg(&self.runner)
            .arg(job.uuid)
            .current_dir(job.dir)
            .env("PYTHONPATH", pythonpath)
            .env("PYTHONIOENCODING", "utf-8")
            .envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}", self.python.display()),
            )
        })?;
        let pid = child.id();
        let mode = match job.mode {
            Mode::Call => "call",
            Mode::Async => "async",
        };
        let request = json!({
            "mode": mode, "uuid": job.uuid, "name": job.name,
            "file": job.source.display().to_string(), "params": job.params,
        })
        .to_string();
        Ok((child, pid, request))
    }

    /// Starts the process; the receiver gets the first thing it says (or how it ended).
    pub fn spawn(
        &self,
        id: u64,
        job: Job<'_>,
    ) -> std::io::Result<(Worker, oneshot::Receiver<First>)> {
        let (mut child, pid, request) = self.start(&job)?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (first_tx, first_rx) = oneshot::channel();
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let _ = stdin.write_all(format!("{request}\n").as_bytes()).await;
            drop(stdin);
            let mut lines = BufReader::new(stdout).lines();
            match lines.next_line().await {
                Ok(Some(line)) => {
                    let _ = first_tx.send(First::parse(&line));
                    while let Ok(Some(_)) = lines.next_line().await {}
                    let status = describe(child.wait().await);
                    let _ = exit_tx.send(Some(status));
                }
                _ => {
                    let status = describe(child.wait().await);
                    let _ = exit_tx.send(Some(status.clone()));
                    let _ =
                        first_tx.send(First::Ended(format!("the plugin process ended ({status})")));
                }
            }
        });
        Ok((
            Worker {
                id,
                pid,
                stop: None,
                exit,
            },
            first_rx,
        ))
    }

    /// Starts the process that serves a callable plugin's PluginCalls (`job.mode` and
    /// `job.params` are not used: each call brings its parameters).
    pub fn serve(&self, id: u64, job: Job<'_>) -> std::io::Result<Server> {
        let env = job.env.clone();
        let (mut child, pid, _) = self.start(&job)?;
        let hello = json!({
            "mode": "serve", "uuid": job.uuid, "name": job.name,
            "file": job.source.display().to_string(),
        })
        .to_string();
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (exit_tx, exit) = watch::channel(None);
        let (requests, mut next) = mpsc::unbounded_channel::<String>();
        let pending: Arc<Mutex<Option<oneshot::Sender<First>>>> = Arc::default();
        let busy = Arc::new(watch::Sender::new(false));
        tokio::spawn(async move {
            let mut line = hello;
            loop {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                match next.recv().await {
                    Some(l) => line = l,
                    // The server was let go: end of input, the process ends.
                    None => break,
                }
            }
        });
        let (answer, idle) = (pending.clone(), busy.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let v = serde_json::from_str::<Value>(&line).unwrap_or(Value::Null);
                if v["event"] == "idle" {
                    idle.send_replace(false);
                    continue;
                }
                // The call's worker thread had ended when it answered.
                if v["idle"] == true {
                    idle.send_replace(false);
                }
                let waiting = answer.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(tx) = waiting {
                    let _ = tx.send(First::parse(&line));
                }
            }
            let status = describe(child.wait().await);
            let _ = exit_tx.send(Some(status.clone()));
            idle.send_replace(false);
            let waiting = answer.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(tx) = waiting {
                let _ = tx.send(First::Ended(format!("the plugin process ended ({status})")));
            }
        });
        Ok(Server {
            process: Worker {
                id,
                pid,
                stop: None,
                exit,
            },
            env,
            requests,
            pending,
            busy,
        })
    }
}

fn describe(r: std::io::Result<std::process::ExitStatus>) -> String {
    match r {
        Ok(s) => s.to_string(),
        Err(e) => format!("not waited for: {e}"),
    }
}

fn signal_group(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

impl Worker {
    /// A run inside the agent: `exit` says how it ended; `stop` is set to ask it to end now.
    pub fn task(
        id: u64,
        stop: Arc<watch::Sender<bool>>,
        exit: watch::Receiver<Option<String>>,
    ) -> Worker {
        Worker {
            id,
            pid: None,
            stop: Some(stop),
            exit,
        }
    }

    pub fn alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// How the run ended (`None` while it runs).
    pub fn exit_status(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Waits until the process ended.
    pub async fn ended(&self) {
        self.exit_watch().ended().await
    }

    /// Something to wait on for the end of the process, without the worker.
    pub fn exit_watch(&self) -> ExitWatch {
        ExitWatch(self.exit.clone())
    }

    /// Asks the process to stop (SIGTERM: the runner calls the worker's `stop()`).
    pub fn ask_to_stop(&self) {
        if let (true, Some(pid)) = (self.alive(), self.pid) {
            signal_group(pid, rustix::process::Signal::TERM);
        }
        if let Some(stop) = &self.stop {
            stop.send_replace(true);
        }
    }

    /// SIGKILL to the process group (a task ends at its next yield, as when asked).
    pub fn kill(&self) {
        if let (true, Some(pid)) = (self.alive(), self.pid) {
            signal_group(pid, rustix::process::Signal::KILL);
        }
        if let Some(stop) = &self.stop {
            stop.send_replace(true);
        }
    }

    /// Stops the process: SIGTERM, then SIGKILL after `grace`; returns once it ended.
    pub async fn terminate(&self, grace: Duration) {
        if !self.alive() {
            return;
        }
        self.ask_to_stop();
        if tokio::time::timeout(grace, self.ended()).await.is_err() {
            tracing::warn!(pid = ?self.pid, "plugin did not stop within {grace:?}; killing it");
            self.kill();
            self.ended().await;
        }
    }
}

/// A callable plugin's process, kept between PluginCalls. It serves one call at a time: it is
/// busy from the request until the plugin's worker thread for it has ended.
#[derive(Debug)]
pub struct Server {
    pub process: Worker,
    /// The environment it was started with (the board's identity).
    pub env: Vec<(String, String)>,
    requests: mpsc::UnboundedSender<String>,
    pending: Arc<Mutex<Option<oneshot::Sender<First>>>>,
    busy: Arc<watch::Sender<bool>>,
}

impl Server {
    /// Whether a call is being served (or its worker thread still runs after answering).
    pub fn busy(&self) -> bool {
        *self.busy.borrow()
    }

    /// Whether the last call was answered but its worker thread may still be ending.
    pub fn answered_but_busy(&self) -> bool {
        self.busy()
            && self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
    }

    /// Sends one call; the receiver gets its answer, or how the process ended. The caller makes
    /// sure the server is alive and not busy.
    pub fn call(&self, params: &Value) -> oneshot::Receiver<First> {
        let (tx, rx) = oneshot::channel();
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        self.busy.send_replace(true);
        let line = json!({ "params": params }).to_string();
        if self.requests.send(line).is_err() {
            self.busy.send_replace(false);
            let waiting = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(tx) = waiting {
                let _ = tx.send(First::Ended("the plugin process ended".into()));
            }
        }
        rx
    }

    /// Waits until the current call's worker thread has ended (or the process).
    pub async fn idle(&self) {
        let mut rx = self.busy.subscribe();
        let _ = rx.wait_for(|b| !*b).await;
    }
}

/// The end of a worker's process, to wait for.
pub struct ExitWatch(watch::Receiver<Option<String>>);

impl ExitWatch {
    pub async fn ended(mut self) {
        let _ = self.0.wait_for(Option::is_some).await;
    }
}
