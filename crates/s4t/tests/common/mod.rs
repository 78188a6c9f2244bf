//! Shared by the tests that run the real binary and real peers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_s4t");

/// A port that was free a moment ago (for processes that must restart on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` consecutive ports that were free a moment ago (a public port range of its own, so that
/// tests running side by side do not take each other's ports), all below the ephemeral range.
pub fn free_range(n: u16) -> (u16, u16) {
    for _ in 0..200 {
        let r = uuid::Uuid::new_v4().as_u128();
        // Below Linux's ephemeral range (32768 up), so that no outgoing connection of a test
        // running alongside is given one of them meanwhile.
        let start = 20000 + (r % (12000 - n as u128)) as u16;
        let held: Vec<_> = (start..start + n)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == n as usize {
            return (start, start + n - 1);
        }
    }
    panic!("no {n} consecutive free ports");
}

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.0.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    pub fn kill9(&mut self) {
        self.0.kill().unwrap(); // SIGKILL
        self.0.wait().unwrap();
    }
}

/// Starts `s4t agent` with a data dir, a registration code and a cloud URL, plus `extra` flags.
pub fn start_agent_at(dir: &Path, code: &str, cloud: &str, extra: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .args(["agent", "--data-dir"])
            .arg(dir)
            .args(["--code", code, "--cloud", cloud, "--ping-interval", "1"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("s4t-e2e-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `s4t cloud` and waits for its "REST API on" line.
pub fn start_cloud(dir: &Path, api_port: u16, wamp_port: u16) -> (Proc, String) {
    start_cloud_with(dir, api_port, wamp_port, &["--tunnel-addr", "127.0.0.1:0"])
}

/// [`start_cloud`] with more flags.
pub fn start_cloud_with(
    dir: &Path,
    api_port: u16,
    wamp_port: u16,
    extra: &[&str],
) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["cloud", "--data-dir"])
        .arg(dir)
        .args(["--api-addr", &format!("127.0.0.1:{api_port}")]);
    // `extra` may put the router elsewhere (on a veth, say).
    if !extra.contains(&"--wamp-addr") {
        cmd.args(["--wamp-addr", &format!("127.0.0.1:{wamp_port}")]);
    }
    if !extra.contains(&"--overlay-addr") {
        cmd.args(["--overlay-addr", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .args(["--wamp-ping-interval", "1"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut api = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("s4t cloud: REST API on ") {
            api = Some(rest.trim().to_string());
        }
        if line.contains("board WAMP router on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), api.expect("the cloud printed its API address"))
}

/// The REST API as a test sees it.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    /// The API of the cloud whose data dir is `dir`, with its admin token.
    pub fn of(dir: &Path, base: String) -> Api {
        let token = std::fs::read_to_string(dir.join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        Api {
            base,
            token,
            http: reqwest::Client::new(),
        }
    }

    /// Creates a virtual board; its body as the API returns it.
    pub async fn create_board(&self, name: &str, code: &str) -> Value {
        let (status, b) = self
            .call(
                reqwest::Method::POST,
                "/v1/boards",
                Some(
                    serde_json::json!({"name": name, "code": code, "type": "virtual",
                    "location": [{"latitude": "38.19", "longitude": "15.55", "altitude": "10"}]}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{b}");
        b
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// A callable Lightning-rod plugin: answers with its parameters.
pub const ECHO_PLUGIN: &str = r#"# café 漢字: any Unicode travels
from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def __init__(self, uuid, name, q_result=None, params=None):
        super(Worker, self).__init__(uuid, name, q_result, params)

    def run(self):
        self.q_result.put('echo: ' + str(self.params))
"#;

/// An asynchronous Lightning-rod plugin: runs until stopped.
pub const TICKER_PLUGIN: &str = r#"# café 漢字: any Unicode travels
import time
from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def __init__(self, uuid, name, q_result=None, params=None):
        super(Worker, self).__init__(uuid, name, q_result, params)

    def run(self):
        while self._is_running:
            time.sleep(0.05)
"#;
