//! The plugin manager with real `python3` processes (from PATH), without a cloud: each procedure
//! as the cloud calls it (`[req, ...]` minus `req`), Lightning-rod's replies, the files it
//! leaves, and the failure cases a thread-based Lightning-rod cannot survive.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use s4t_agent::{MemorySettings, Plugins};
use s4t_model::board_link::WampMessage;
use s4t_model::resources::Outcome;

const BOARD: &str = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";

const ECHO: &str = r#"# café 漢字
from iotronic_lightningrod.modules.plugins import Plugin
from oslo_log import log as logging
LOG = logging.getLogger(__name__)


class Worker(Plugin.Plugin):
    def __init__(self, uuid, name, q_result=None, params=None):
        super(Worker, self).__init__(uuid, name, q_result, params)

    def run(self):
        LOG.info("called with %s", self.params)
        print("noise on stdout must not reach the agent")
        self.q_result.put('echo: ' + str(self.params))
"#;

const BOARD_INFO: &str = r#"from iotronic_lightningrod.modules.plugins import Plugin
from iotronic_lightningrod.modules.plugins import pluginApis


class Worker(Plugin.Plugin):
    def run(self):
        try:
            pluginApis.getBoardGpio()
        except NotImplementedError as e:
            gpio = str(e)
        self.q_result.put({"board": pluginApis.getBoardID(),
                           "location": pluginApis.getLocation(),
                           "gpio": gpio[:12], "name": self.name, "uuid": self.uuid,
                           "status": self.complete("PluginCall", "done")})
"#;

const TICKER: &str = r#"import time
from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def __init__(self, uuid, name, q_result=None, params=None):
        super(Worker, self).__init__(uuid, name, q_result, params)

    def run(self):
        with open("params.txt", "w") as f:
            f.write(repr(self.params))
        while self._is_running:
            time.sleep(0.05)
"#;

/// Ignores stop(): only SIGKILL ends it.
const STUBBORN: &str = r#"import signal, time
from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def stop(self):
        pass

    def run(self):
        while True:
            time.sleep(0.05)
"#;

const RAISES: &str = r#"from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def run(self):
        raise ValueError("boom: café 漢字")
"#;

const SILENT: &str = r#"from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def run(self):
        pass
"#;

const BROKEN: &str = "def broken(:\n";

fn uuid(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "s4t-agent-plugins-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> String {
    use std::time::SystemTime;
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    format!("{:x}", t.as_nanos())
}

fn open(home: &Path) -> Plugins {
    let settings = Arc::new(MemorySettings::new(json!({"iotronic": {"board": {
        "uuid": BOARD, "location": {"latitude": "38.19", "longitude": "15.55", "altitude": "10"}}}})));
    Plugins::open(home, Path::new("python3"), settings)
        .unwrap()
        .with_stop_grace(Duration::from_millis(500))
}

fn plugin(uuid: &str, name: &str, code: &str, callable: bool) -> Value {
    json!({"uuid": uuid, "name": name, "code": s4t_model::pickle::encode_str(code),
           "callable": callable, "parameters": {}, "public": false, "owner": null, "extra": {}})
}

fn reply(m: &WampMessage) -> (Outcome, Value) {
    (m.result, m.message.clone())
}

fn ok(text: &str) -> (Outcome, Value) {
    (Outcome::Success, json!(text))
}

#[tokio::test]
async fn lifecycle_with_lightning_rod_replies() {
    let home = temp_dir();
    let p = open(&home);
    let (echo, ticker) = (uuid(1), uuid(2));
    let conf_file = home.join("plugins.json");
    assert_eq!(
        serde_json::from_str::<Value>(&std::fs::read_to_string(&conf_file).unwrap()).unwrap(),
        json!({"plugins": {}})
    );

    let r = p
        .perform(
            "PluginInject",
            &[plugin(&echo, "echo", ECHO, true), json!(false)],
        )
        .await;
    assert_eq!(reply(&r), ok("PluginInject result: INJECTED"));
    let r = p
        .perform(
            "PluginInject",
            &[plugin(&echo, "echo", ECHO, true), json!(false)],
        )
        .await;
    assert_eq!(reply(&r), ok("PluginInject result: UPDATED"));
    let src = std::fs::read_to_string(home.join(format!("plugins/{echo}/{echo}.py"))).unwrap();
    assert_eq!(src, ECHO);

    let r = p
        .perform("PluginCall", &[json!(echo), json!({"say": "hi"})])
        .await;
    assert_eq!(reply(&r), ok("echo: {'say': 'hi'}"));
    // The parameters are kept, as Lightning-rod keeps them.
    let saved = std::fs::read_to_string(home.join(format!("plugins/{echo}/{echo}.json"))).unwrap();
    assert_eq!(saved, "{\n    \"say\": \"hi\"\n}");
    let log = std::fs::read_to_string(home.join(format!("plugins/{echo}/{echo}.log"))).unwrap();
    assert!(log.contains("noise on stdout"), "{log}");
    assert!(log.contains("called with {'say': 'hi'}"), "{log}");

    p.perform(
        "PluginInject",
        &[plugin(&ticker, "ticker", TICKER, false), json!(true)],
    )
    .await;
    let start = p
        .perform("PluginStart", &[json!(ticker), json!({"n": 1})])
        .await;
    assert_eq!(reply(&start), ok("STARTED"));
    let conf: Value = serde_json::from_str(&std::fs::read_to_string(&conf_file).unwrap()).unwrap();
    assert_eq!(conf["plugins"][&ticker]["status"], "operative");
    assert_eq!(conf["plugins"][&ticker]["onboot"], true);
    assert_eq!(conf["plugins"][&ticker]["callable"], false);
    let again = p.perform("PluginStart", &[json!(ticker), json!({})]).await;
    assert_eq!(reply(&again), (Outcome::Error, json!("ALREADY STARTED!")));
    let r = p.perform("PluginStatus", &[json!(ticker)]).await;
    assert_eq!(reply(&r), ok("ALIVE"));
    let r = p.perform("PluginCall", &[json!(ticker), json!({})]).await;
    assert_eq!(
        reply(&r),
        (
            Outcome::Warning,
            json!(format!("Plugin {ticker} already started!"))
        )
    );
    let r = p.perform("PluginStop", &[json!(ticker), json!({})]).await;
    assert_eq!(reply(&r), ok("STOPPED"));
    let r = p.perform("PluginStatus", &[json!(ticker)]).await;
    assert_eq!(reply(&r), ok("DEAD"));
    let r = p.perform("PluginStop", &[json!(ticker), json!({})]).await;
    assert_eq!(
        reply(&r),
        (
            Outcome::Warning,
            json!(format!("PluginStop - WARNING {ticker}  is not running!"))
        )
    );

    // Reboot: asynchronous plugins only; None means the saved parameters.
    let r = p.perform("PluginReboot", &[json!(echo), json!({})]).await;
    assert_eq!(r.result, Outcome::Error, "{:?}", r.message);
    let r = p
        .perform("PluginReboot", &[json!(ticker), Value::Null])
        .await;
    assert_eq!(reply(&r), ok("REBOOTED"));
    assert_eq!(
        reply(&p.perform("PluginStatus", &[json!(ticker)]).await),
        ok("ALIVE")
    );
    let params_seen = home.join(format!("plugins/{ticker}/params.txt"));
    wait_for(|| std::fs::read_to_string(&params_seen).is_ok_and(|t| t == "{'n': 1}")).await;
    let r = p
        .perform("PluginReboot", &[json!(ticker), json!({"n": 2})])
        .await;
    assert_eq!(reply(&r), ok("REBOOTED"));
    wait_for(|| std::fs::read_to_string(&params_seen).is_ok_and(|t| t == "{'n': 2}")).await;

    // Remove stops it, deletes its files and its entry.
    let r = p.perform("PluginRemove", &[json!(ticker)]).await;
    assert_eq!(
        reply(&r),
        ok(&format!("PluginRemove result: {ticker} removed!"))
    );
    assert!(!home.join("plugins").join(&ticker).exists());
    assert_eq!(
        reply(&p.perform("PluginStatus", &[json!(ticker)]).await),
        ok("DEAD")
    );
    let conf: Value = serde_json::from_str(&std::fs::read_to_string(&conf_file).unwrap()).unwrap();
    assert!(conf["plugins"].get(&ticker).is_none(), "{conf}");
    let r = p.perform("PluginRemove", &[json!(ticker)]).await;
    assert_eq!(
        reply(&r),
        (Outcome::Error, json!("Plugin paths or files do not exist!"))
    );
    p.shutdown().await;
    std::fs::remove_dir_all(home).unwrap();
}

async fn wait_for(mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn plugin_api_sees_the_board() {
    let home = temp_dir();
    let p = open(&home);
    let u = uuid(3);
    p.perform(
        "PluginInject",
        &[plugin(&u, "info", BOARD_INFO, true), json!(false)],
    )
    .await;
    let r = p.perform("PluginCall", &[json!(u), json!({})]).await;
    assert_eq!(
        reply(&r),
        (
            Outcome::Success,
            json!({"board": BOARD, "location": {"latitude": "38.19", "longitude": "15.55", "altitude": "10"},
                   "gpio": "getBoardGpio", "name": "info", "uuid": u,
                   "status": "PluginCall result: done"})
        )
    );
    p.shutdown().await;
    std::fs::remove_dir_all(home).unwrap();
}

#[tokio::test]
async fn failing_plugins_give_errors_not_hangs() {
    let home = temp_dir();
    let p = open(&home);
    let (raises, broken, silent) = (uuid(4), uuid(5), uuid(6));
    for (u, code) in [(&raises, RAISES), (&broken, BROKEN), (&silent, SILENT)] {
        p.perform(
            "PluginInject",
            &[plugin(u, "bad", code, true), json!(false)],
        )
        .await;
    }
    let r = p.perform("PluginCall", &[json!(raises), json!({})]).await;
    assert_eq!(r.result, Outcome::Error);
    let text = r.message.as_str().unwrap();
    assert!(text.contains("ValueError: boom: café 漢字"), "{text}");
    let log = std::fs::read_to_string(p.log(&raises)).unwrap();
    assert!(log.contains("Traceback"), "{log}");

    let r = p.perform("PluginCall", &[json!(broken), json!({})]).await;
    assert_eq!(r.result, Outcome::Error);
    assert!(
        r.message.as_str().unwrap().contains("line 1"),
        "{:?}",
        r.message
    );
    let r = p.perform("PluginStart", &[json!(broken), json!({})]).await;
    assert_eq!(r.result, Outcome::Error);
    // A plugin that failed to load is not running, and never was.
    let r = p.perform("PluginStop", &[json!(broken), json!({})]).await;
    assert_eq!(r.result, Outcome::Warning);

    let r = p.perform("PluginCall", &[json!(silent), json!({})]).await;
    assert_eq!(r.result, Outcome::Error);
    assert!(
        r.message
            .as_str()
            .unwrap()
            .contains("without putting a result"),
        "{:?}",
        r.message
    );
    // Lightning-rod keeps a finished worker: stopping it is an error, its status DEAD.
    let r = p.perform("PluginStop", &[json!(silent), json!({})]).await;
    assert_eq!(
        reply(&r),
        (
            Outcome::Error,
            json!(format!(
                "PluginStop - ERROR - plugin ({silent}) is instantiated but is not running anymore!"
            ))
        )
    );

    // Missing plugins and bad uuids.
    let ghost = uuid(99);
    let r = p.perform("PluginStart", &[json!(ghost), json!({})]).await;
    assert_eq!(
        reply(&r),
        (
            Outcome::Error,
            json!(format!("Plugin {ghost} does not exist in this board!"))
        )
    );
    let r = p.perform("PluginCall", &[json!(ghost), json!({})]).await;
    assert_eq!(
        reply(&r),
        (
            Outcome::Error,
            json!(format!("PluginCall - ERROR - plugin ({ghost}) - '{ghost}'"))
        )
    );
    for bad in [json!("../../etc"), json!(42), Value::Null] {
        let r = p.perform("PluginRemove", std::slice::from_ref(&bad)).await;
        assert_eq!(r.result, Outcome::Error, "{bad}");
        assert!(r.message.as_str().unwrap().contains("is not a plugin uuid"));
    }
    let mut evil = plugin(&uuid(7), "evil", SILENT, true);
    evil["uuid"] = json!("../escape");
    let r = p.perform("PluginInject", &[evil, json!(false)]).await;
    assert_eq!(r.result, Outcome::Error);
    assert!(!home.join("escape").exists());
    p.shutdown().await;
    std::fs::remove_dir_all(home).unwrap();
}

#[tokio::test]
async fn a_plugin_that_ignores_stop_is_killed() {
    let home = temp_dir();
    let p = open(&home);
    let u = uuid(8);
    p.perform(
        "PluginInject",
        &[plugin(&u, "stubborn", STUBBORN, false), json!(false)],
    )
    .await;
    assert_eq!(
        reply(&p.perform("PluginStart", &[json!(u), json!({})]).await),
        ok("STARTED")
    );
    let t = Instant::now();
    assert_eq!(
        reply(
            &p.perform("PluginStop", &[json!(u), json!({"delay": 0.2})])
                .await
        ),
        ok("STOPPED")
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(700), "{took:?}"); // delay + grace
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        reply(&p.perform("PluginStatus", &[json!(u)]).await),
        ok("DEAD")
    );
    std::fs::remove_dir_all(home).unwrap();
}

#[tokio::test]
async fn running_plugins_come_back_with_the_agent() {
    let home = temp_dir();
    let (onboot, manual, callable) = (uuid(9), uuid(10), uuid(11));
    {
        let p = open(&home);
        p.perform(
            "PluginInject",
            &[plugin(&onboot, "t1", TICKER, false), json!(true)],
        )
        .await;
        p.perform(
            "PluginInject",
            &[plugin(&manual, "t2", TICKER, false), json!(false)],
        )
        .await;
        p.perform(
            "PluginInject",
            &[plugin(&callable, "e", ECHO, true), json!(true)],
        )
        .await;
        for u in [&onboot, &manual] {
            assert_eq!(
                reply(
                    &p.perform("PluginStart", &[json!(u), json!({"k": "v"})])
                        .await
                ),
                ok("STARTED")
            );
        }
        p.shutdown().await;
        for u in [&onboot, &manual] {
            assert_eq!(
                reply(&p.perform("PluginStatus", &[json!(u)]).await),
                ok("DEAD")
            );
        }
    }
    let p = open(&home);
    p.restart_onboot().await;
    assert_eq!(
        reply(&p.perform("PluginStatus", &[json!(onboot)]).await),
        ok("ALIVE")
    );
    for u in [&manual, &callable] {
        assert_eq!(
            reply(&p.perform("PluginStatus", &[json!(u)]).await),
            ok("DEAD")
        );
    }
    let seen = home.join(format!("plugins/{onboot}/params.txt"));
    wait_for(|| std::fs::read_to_string(&seen).is_ok_and(|t| t == "{'k': 'v'}")).await;
    p.shutdown().await;
    std::fs::remove_dir_all(home).unwrap();
}

/// Counts its calls in a module-level variable and says which process served it; crashes the
/// interpreter when asked, or hangs.
const COUNTER: &str = r#"import os, time
from iotronic_lightningrod.modules.plugins import Plugin

CALLS = 0


class Worker(Plugin.Plugin):
    def run(self):
        global CALLS
        CALLS += 1
        if self.params.get("crash"):
            os._exit(3)
        if self.params.get("hang"):
            time.sleep(3600)
        self.q_result.put({"pid": os.getpid(), "calls": CALLS, "v": 1})
"#;

fn pid_and_calls(r: &WampMessage) -> (u64, u64) {
    assert_eq!(r.result, Outcome::Success, "{:?}", r.message);
    (
        r.message["pid"].as_u64().unwrap(),
        r.message["calls"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_callable_plugin_keeps_its_process_between_calls() {
    let home = temp_dir();
    let p = open(&home).with_call_timeout(Duration::from_secs(1));
    let u = uuid(12);
    p.perform(
        "PluginInject",
        &[plugin(&u, "counter", COUNTER, true), json!(false)],
    )
    .await;
    let call = |params: Value| {
        let data = [json!(u), params];
        let p = &p;
        async move { p.perform("PluginCall", &data).await }
    };
    let (pid, calls) = pid_and_calls(&call(json!({})).await);
    assert_eq!(calls, 1);
    // One process, one module: the second call's fresh Worker sees the module's state.
    assert_eq!(pid_and_calls(&call(json!({})).await), (pid, 2));
    // Between calls the plugin is not running, as a finished Lightning-rod call thread.
    wait_for_status(&p, &u, "DEAD").await;

    // The interpreter dies in run(): an ERROR, then a new process serves the next call.
    let r = call(json!({"crash": true})).await;
    assert_eq!(r.result, Outcome::Error, "{:?}", r.message);
    assert!(
        r.message.as_str().unwrap().contains("process ended"),
        "{:?}",
        r.message
    );
    let (again, calls) = pid_and_calls(&call(json!({})).await);
    assert_ne!(again, pid);
    assert_eq!(calls, 1);

    // No result within the bound: the process is stopped, an ERROR, and the next call works.
    let t = Instant::now();
    let r = call(json!({"hang": true})).await;
    assert_eq!(r.result, Outcome::Error, "{:?}", r.message);
    assert!(
        r.message.as_str().unwrap().contains("no result within"),
        "{:?}",
        r.message
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let (third, calls) = pid_and_calls(&call(json!({})).await);
    assert_ne!(third, again);
    assert_eq!(calls, 1);

    // New code (UPDATED) is served by a new process.
    let r = p
        .perform(
            "PluginInject",
            &[
                plugin(
                    &u,
                    "counter",
                    &COUNTER.replace("\"v\": 1", "\"v\": 2"),
                    true,
                ),
                json!(false),
            ],
        )
        .await;
    assert_eq!(reply(&r), ok("PluginInject result: UPDATED"));
    let r = call(json!({})).await;
    assert_eq!(r.message["v"], 2, "{:?}", r.message);
    assert_ne!(pid_and_calls(&r), (third, 2));
    assert_eq!(pid_and_calls(&r).1, 1);

    // Remove stops it.
    let last = pid_and_calls(&r).0;
    assert_eq!(
        reply(&p.perform("PluginRemove", &[json!(u)]).await),
        ok(&format!("PluginRemove result: {u} removed!"))
    );
    assert!(!Path::new(&format!("/proc/{last}")).exists());
    p.shutdown().await;
    std::fs::remove_dir_all(home).unwrap();
}

async fn wait_for_status(p: &Plugins, u: &str, status: &str) {
    let start = Instant::now();
    loop {
        let r = p.perform("PluginStatus", &[json!(u)]).await;
        if r.message == status {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", r.message);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
