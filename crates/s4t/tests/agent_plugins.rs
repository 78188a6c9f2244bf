//! Plugins in `s4t agent`, end to end with the real binary: the plugin sources of the stock
//! Lightning-rod test (`stock_lightningrod.rs`) created and injected through the REST API, then
//! called, started, queried, stopped and removed with the replies a stock Lightning-rod 0.5.0
//! gives; a running plugin comes back after the agent is killed and started again; a plugin that
//! raises gives an ERROR and leaves the agent serving. Plugins run with `python3` from PATH.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

/// A callable plugin whose `run()` raises.
const RAISING_PLUGIN: &str = r#"from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def run(self):
        raise RuntimeError("sensor unplugged: café 漢字")
"#;

fn start_agent(dir: &Path, wamp_port: u16) -> Proc {
    Proc(
        Command::new(BIN)
            .args(["agent", "--data-dir"])
            .arg(dir)
            .args(["--code", "PLUGINS-E2E"])
            .args(["--cloud", &format!("ws://127.0.0.1:{wamp_port}/")])
            .args(["--ping-interval", "1", "--python", "python3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

impl Api {
    async fn wait_status(&self, status: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            let (_, b) = self.call(reqwest::Method::GET, "/v1/boards/pb", None).await;
            if b["status"] == status {
                return;
            }
            assert!(start.elapsed() < limit, "board not {status}: {b}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn create_plugin(&self, name: &str, callable: bool, code: &str) -> String {
        let (status, p) = self
            .call(
                reqwest::Method::POST,
                "/v1/plugins",
                Some(json!({"name": name, "callable": callable, "code": code})),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        p["uuid"].as_str().unwrap().to_string()
    }

    async fn inject(&self, plugin: &str, onboot: bool) -> (u16, Value) {
        self.call(
            reqwest::Method::PUT,
            "/v1/boards/pb/plugins",
            Some(json!({"plugin": plugin, "onboot": onboot})),
        )
        .await
    }

    async fn action(&self, plugin: &str, action: &str, params: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/boards/pb/plugins/{plugin}"),
            Some(json!({"action": action, "parameters": params})),
        )
        .await
    }
}

/// How many processes have `arg` on their command line (plugin processes carry their uuid).
fn processes_with(arg: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| cmd.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        .count()
}

async fn wait_processes(arg: &str, n: usize) {
    let start = Instant::now();
    while processes_with(arg) != n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} processes for {arg}, expected {n}",
            processes_with(arg)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn plugins_json(agent_dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(agent_dir.join("plugins.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightning_rod_plugins_run_in_s4t_agent() {
    let cloud_dir = temp_dir("plugins-cloud");
    let agent_dir = temp_dir("plugins-agent");
    let (api_port, wamp_port) = (free_port(), free_port());
    let (_cloud, base) = start_cloud(&cloud_dir, api_port, wamp_port);
    let token = std::fs::read_to_string(cloud_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let api = Api {
        base,
        token,
        http: reqwest::Client::new(),
    };
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/boards",
            Some(
                json!({"name": "pb", "code": "PLUGINS-E2E", "type": "virtual",
                "location": [{"latitude": "38.19", "longitude": "15.55", "altitude": "10"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut agent = start_agent(&agent_dir, wamp_port);
    api.wait_status("online", Duration::from_secs(15)).await;

    let echo = api.create_plugin("echo", true, ECHO_PLUGIN).await;
    let ticker = api.create_plugin("ticker", false, TICKER_PLUGIN).await;
    let raiser = api.create_plugin("raiser", true, RAISING_PLUGIN).await;
    for (name, uuid, onboot) in [("echo", &echo, false), ("ticker", &ticker, true)] {
        assert_eq!(
            api.inject(name, onboot).await,
            (200, json!("PluginInject result: INJECTED")),
            "{name}"
        );
        let file = agent_dir.join(format!("plugins/{uuid}/{uuid}.py"));
        let written = std::fs::read_to_string(&file).unwrap();
        assert!(written.contains("café 漢字"), "{written}");
    }
    assert_eq!(
        api.inject("echo", false).await,
        (200, json!("PluginInject result: UPDATED"))
    );
    let conf = plugins_json(&agent_dir);
    assert_eq!(conf["plugins"][&echo]["status"], "updated", "{conf}");
    assert_eq!(conf["plugins"][&ticker]["status"], "injected", "{conf}");
    assert_eq!(conf["plugins"][&ticker]["callable"], false, "{conf}");

    // The stock test's flow, with its replies.
    assert_eq!(
        api.action("echo", "PluginCall", json!({"say": "hi"})).await,
        (200, json!("echo: {'say': 'hi'}"))
    );
    assert_eq!(
        api.action("echo", "PluginCall", json!({"say": "café 漢字"}))
            .await,
        (200, json!("echo: {'say': 'café 漢字'}"))
    );
    // Overlapping calls take turns, as Lightning-rod answers them one at a time: none is
    // refused as "already started".
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let (base, token, echo) = (api.base.clone(), api.token.clone(), echo.clone());
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(format!("{base}/v1/boards/pb/plugins/{echo}"))
                    .header("X-Auth-Token", token)
                    .json(&json!({"action": "PluginCall", "parameters": {"n": i}}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(
            c.await.unwrap(),
            (200, json!(format!("echo: {{'n': {i}}}"))),
            "call {i}"
        );
    }
    assert_eq!(
        api.action("ticker", "PluginStart", json!({})).await,
        (200, json!("STARTED"))
    );
    assert_eq!(
        api.action("ticker", "PluginStatus", json!({})).await,
        (200, json!("ALIVE"))
    );
    assert_eq!(
        plugins_json(&agent_dir)["plugins"][&ticker]["status"],
        "operative"
    );
    let (status, body) = api.action("ticker", "PluginStart", json!({})).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("ALREADY STARTED!"), "{body}");

    assert_eq!(processes_with(&ticker), 1);

    // The agent dies and comes back: the running onboot plugin runs again (once: the orphaned
    // process of the dead agent stops by itself).
    agent.kill9();
    api.wait_status("offline", Duration::from_secs(10)).await;
    let _agent = start_agent(&agent_dir, wamp_port);
    api.wait_status("online", Duration::from_secs(15)).await;
    let start = Instant::now();
    loop {
        let (status, body) = api.action("ticker", "PluginStatus", json!({})).await;
        assert_eq!(status, 200, "{body}");
        if body == "ALIVE" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the onboot plugin did not come back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_processes(&ticker, 1).await;

    assert_eq!(
        api.action("ticker", "PluginStop", json!({})).await,
        (200, json!("STOPPED"))
    );
    assert_eq!(
        api.action("ticker", "PluginStatus", json!({})).await,
        (200, json!("DEAD"))
    );
    assert_eq!(processes_with(&ticker), 0);
    // Lightning-rod's WARNING is a 200 with its text.
    assert_eq!(
        api.action("ticker", "PluginStop", json!({})).await,
        (
            200,
            json!(format!("PluginStop - WARNING {ticker}  is not running!"))
        )
    );

    // A plugin that raises: an ERROR (500 through the API), the agent keeps serving.
    assert_eq!(
        api.inject("raiser", false).await,
        (200, json!("PluginInject result: INJECTED"))
    );
    let (status, body) = api.action("raiser", "PluginCall", json!({})).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.to_string()
            .contains("RuntimeError: sensor unplugged: café 漢字"),
        "{body}"
    );
    let log =
        std::fs::read_to_string(agent_dir.join(format!("plugins/{raiser}/{raiser}.log"))).unwrap();
    assert!(log.contains("Traceback"), "{log}");
    // The same log through the API (s4t extension), its last lines only.
    let (status, tail) = api
        .call(
            reqwest::Method::GET,
            "/v1/boards/pb/plugins/raiser/logs?lines=4",
            None,
        )
        .await;
    assert_eq!(status, 200, "{tail}");
    assert!(tail.as_str().unwrap().contains("RuntimeError"), "{tail}");
    assert!(tail.as_str().unwrap().lines().count() <= 4, "{tail}");
    let (status, _) = api
        .call(
            reqwest::Method::GET,
            "/v1/boards/pb/plugins/raiser/logs?lines=0",
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/boards/pb/action",
            Some(json!({"action": "DevicePing", "parameters": {}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        api.action("echo", "PluginCall", json!({"say": "still here"}))
            .await,
        (200, json!("echo: {'say': 'still here'}"))
    );

    // Remove: files and entries gone.
    for (name, uuid) in [("echo", &echo), ("ticker", &ticker), ("raiser", &raiser)] {
        let (status, body) = api
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/boards/pb/plugins/{name}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "{name}: {body}");
        assert!(!agent_dir.join("plugins").join(uuid).exists(), "{name}");
    }
    assert_eq!(plugins_json(&agent_dir), json!({"plugins": {}}));
    let (_, injections) = api
        .call(reqwest::Method::GET, "/v1/boards/pb/plugins", None)
        .await;
    assert_eq!(injections["injections"], json!([]), "{injections}");

    drop(_agent);
    let _ = std::fs::remove_dir_all(cloud_dir);
    let _ = std::fs::remove_dir_all(agent_dir);
}

const SUM_WAT: &str = include_str!("../../agent/testdata/sum.wat");
const TICKER_WAT: &str = include_str!("../../agent/testdata/ticker.wat");
const SPIN_WAT: &str = r#"(module (func (export "_start") (loop $l (br $l))))"#;

/// WASM plugins (s4t extension), end to end: WebAssembly text created through the REST API,
/// compiled by the agent at inject, called with parameters, stopped by its fuel limit, run
/// asynchronously with its output in the log, restarted with the agent (onboot) and stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_plugins_run_sandboxed_in_s4t_agent() {
    let cloud_dir = temp_dir("wasm-cloud");
    let agent_dir = temp_dir("wasm-agent");
    let (api_port, wamp_port) = (free_port(), free_port());
    let (_cloud, base) = start_cloud(&cloud_dir, api_port, wamp_port);
    let token = std::fs::read_to_string(cloud_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let api = Api {
        base,
        token,
        http: reqwest::Client::new(),
    };
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/boards",
            Some(
                json!({"name": "pb", "code": "PLUGINS-E2E", "type": "virtual",
                "location": [{"latitude": "38.19", "longitude": "15.55", "altitude": "10"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut agent = start_agent(&agent_dir, wamp_port);
    api.wait_status("online", Duration::from_secs(15)).await;

    let create = |name: &str, callable: bool, code: &str, extra: Value| {
        let body = json!({"name": name, "callable": callable, "code": code, "extra": extra});
        let api = &api;
        async move {
            api.call(reqwest::Method::POST, "/v1/plugins", Some(body))
                .await
        }
    };
    // The cloud refuses what no agent could run, naming the field.
    for (code, extra, field) in [
        (RAISING_PLUGIN, json!({"runtime": "wasm"}), "code"),
        (
            SUM_WAT,
            json!({"runtime": "wasm", "wasm": {"fuel": 0}}),
            "extra.wasm.fuel",
        ),
        (SUM_WAT, json!({"runtime": "jvm"}), "extra.runtime"),
    ] {
        let (status, body) = create("bad", true, code, extra).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(field), "{field}: {body}");
    }
    let uuid = |(status, p): (u16, Value)| {
        assert_eq!(status, 201, "{p}");
        p["uuid"].as_str().unwrap().to_string()
    };
    let sum = uuid(create("sum", true, SUM_WAT, json!({"runtime": "wasm"})).await);
    uuid(
        create(
            "spin",
            true,
            SPIN_WAT,
            json!({"runtime": "wasm", "wasm": {"fuel": 5_000_000}}),
        )
        .await,
    );
    let ticker = uuid(create("ticker", false, TICKER_WAT, json!({"runtime": "wasm"})).await);
    uuid(
        create(
            "foreign",
            true,
            r#"(module (import "env" "open_door" (func)) (func (export "_start")))"#,
            json!({"runtime": "wasm"}),
        )
        .await,
    );

    for (name, onboot) in [("sum", false), ("spin", false), ("ticker", true)] {
        assert_eq!(
            api.inject(name, onboot).await,
            (200, json!("PluginInject result: INJECTED")),
            "{name}"
        );
    }
    let module = std::fs::read(agent_dir.join(format!("plugins/{sum}/{sum}.wasm"))).unwrap();
    assert!(module.starts_with(b"\0asm"), "the agent keeps the binary");
    let conf = plugins_json(&agent_dir);
    assert_eq!(conf["plugins"][&sum]["runtime"], "wasm", "{conf}");
    // A module that imports what the agent does not give is refused at inject, with the reason.
    let (status, body) = api.inject("foreign", false).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("imports"), "{body}");

    // Computes from its parameters (JSON on stdin), answers on stdout.
    assert_eq!(
        api.action("sum", "PluginCall", json!({"a": 20, "b": 22}))
            .await,
        (200, json!(42))
    );
    assert_eq!(
        api.action("sum", "PluginCall", json!({"readings": [1, 2, 3, 4]}))
            .await,
        (200, json!(10))
    );
    // Calls that overlap each run in their own instance, as overlapping PluginCalls run on a
    // stock Lightning-rod: none is refused as "already started".
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let (base, token, sum) = (api.base.clone(), api.token.clone(), sum.clone());
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(format!("{base}/v1/boards/pb/plugins/{sum}"))
                    .header("X-Auth-Token", token)
                    .json(&json!({"action": "PluginCall", "parameters": {"a": i, "b": 1}}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.await.unwrap(), (200, json!(i + 1)), "call {i}");
    }
    // An endless loop ends at its fuel limit, with an error that says so.
    let (status, body) = api.action("spin", "PluginCall", json!({})).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("fuel exhausted"), "{body}");
    assert_eq!(
        api.action("spin", "PluginStatus", json!({})).await,
        (200, json!("DEAD"))
    );

    // An asynchronous plugin: runs, logs, comes back with the agent, stops.
    assert_eq!(
        api.action("ticker", "PluginStart", json!({})).await,
        (200, json!("STARTED"))
    );
    assert_eq!(
        api.action("ticker", "PluginStatus", json!({})).await,
        (200, json!("ALIVE"))
    );
    agent.kill9();
    api.wait_status("offline", Duration::from_secs(10)).await;
    let log = agent_dir.join(format!("plugins/{ticker}/{ticker}.log"));
    std::fs::write(&log, "").unwrap();
    let _agent = start_agent(&agent_dir, wamp_port);
    api.wait_status("online", Duration::from_secs(15)).await;
    let start = Instant::now();
    while api.action("ticker", "PluginStatus", json!({})).await != (200, json!("ALIVE")) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not restarted at boot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let (status, tail) = api
            .call(
                reqwest::Method::GET,
                "/v1/boards/pb/plugins/ticker/logs?lines=3",
                None,
            )
            .await;
        assert_eq!(status, 200, "{tail}");
        if tail.as_str().unwrap().contains("tick") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no tick: {tail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        api.action("ticker", "PluginStop", json!({})).await,
        (200, json!("STOPPED"))
    );
    assert_eq!(
        api.action("ticker", "PluginStatus", json!({})).await,
        (200, json!("DEAD"))
    );
    assert_eq!(
        api.action("sum", "PluginCall", json!({"x": [7, 8]})).await,
        (200, json!(15)),
        "the agent is unharmed"
    );

    for name in ["sum", "spin", "ticker"] {
        let (status, body) = api
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/boards/pb/plugins/{name}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "{name}: {body}");
    }
    assert_eq!(plugins_json(&agent_dir), json!({"plugins": {}}));
    drop(_agent);
    let _ = std::fs::remove_dir_all(cloud_dir);
    let _ = std::fs::remove_dir_all(agent_dir);
}
