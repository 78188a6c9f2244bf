//! Interop with the stock board agent: iotronic-lightningrod 0.5.0 from PyPI, unmodified, run
//! through `tests/peers/lr_shim.py` (settings path, UI on loopback, no pkill). It registers with
//! a code made through our API, writes its settings.json, comes online and answers DevicePing and
//! DeviceEcho through our REST API.
//!
//! Needs `S4T_LR_PYTHON` (the venv python from `tests/peers/setup-lr.sh`). Without it the test
//! is skipped, or fails when `S4T_REQUIRE_PEERS=1` (CI).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

fn lr_python() -> Option<String> {
    match std::env::var("S4T_LR_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            if std::env::var("S4T_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("S4T_REQUIRE_PEERS=1 but S4T_LR_PYTHON is not set (tests/peers/setup-lr.sh prints it)");
            }
            eprintln!("skipped: S4T_LR_PYTHON is not set");
            None
        }
    }
}

fn shim() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/lr_shim.py")
}

fn lightning_rod_conf(home: &Path, log: &Path) -> String {
    format!(
        "[DEFAULT]\nlightningrod_home = {}\nskip_cert_verify = True\nlog_level = info\nlog_file = {}\ndebug = False\n\n\
         [services]\nwstun_bin = /usr/bin/wstun\n\n[webservices]\nproxy = nginx\n\n\
         [autobahn]\nconnection_timer = 30\nalive_timer = 600\nrpc_alive_timer = 10\nconnection_failure_timer = 300\n",
        home.display(),
        log.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_lightning_rod_registers_and_answers() {
    let Some(python) = lr_python() else { return };
    let dir = std::env::temp_dir().join(format!("s4t-lr-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let (api_port, wamp_port, ui_port) = (free_port(), free_port(), free_port());
    let mut cloud = Command::new(BIN)
        .args(["cloud", "--data-dir"])
        .arg(dir.join("cloud"))
        .args(["--api-addr", &format!("127.0.0.1:{api_port}")])
        .args(["--wamp-addr", &format!("127.0.0.1:{wamp_port}")])
        .args([
            "--tunnel-addr",
            "127.0.0.1:0",
            "--overlay-addr",
            "127.0.0.1:0",
        ])
        .arg("--allow-anonymous-boards")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cloud.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("board WAMP router on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let _cloud = Proc(cloud);
    let base = format!("http://127.0.0.1:{api_port}");
    let token = std::fs::read_to_string(dir.join("cloud/admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/v1/boards"))
        .header("X-Auth-Token", &token)
        .json(
            &json!({"name": "stock-lr", "code": "LR-CODE-1", "type": "server",
            "location": [{"latitude": "38.19", "longitude": "15.55", "altitude": "10"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let settings = dir.join("settings.json");
    std::fs::write(
        &settings,
        json!({"iotronic": {"board": {"code": "LR-CODE-1"},
            "wamp": {"registration-agent": {"url": format!("ws://127.0.0.1:{wamp_port}/"), "realm": "s4t"}}}})
        .to_string(),
    )
    .unwrap();
    let conf = dir.join("lightning-rod.conf");
    let log = dir.join("lightning-rod.log");
    std::fs::write(&conf, lightning_rod_conf(&dir.join("home"), &log)).unwrap();
    let lr = Proc(
        Command::new(&python)
            .arg(shim())
            .arg("--config-file")
            .arg(&conf)
            .env("LR_SETTINGS", &settings)
            .env("LR_REST_PORT", ui_port.to_string())
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let get_board = || async {
        http.get(format!("{base}/v1/boards/stock-lr"))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let start = Instant::now();
    loop {
        let b = get_board().await;
        if b["status"] == "online" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Lightning-rod not online after 60 s: {b}\nLR log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "stock Lightning-rod online {:?} after start",
        start.elapsed()
    );
    let board = get_board().await;
    assert_eq!(board["lr_version"], "0.5.0");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(written["iotronic"]["board"]["uuid"], board["uuid"]);
    assert_eq!(written["iotronic"]["board"]["status"], "operative");
    assert_eq!(written["iotronic"]["wamp"]["main-agent"]["realm"], "s4t");

    let action = |name: &'static str, params: Value| {
        let http = http.clone();
        let (base, token) = (base.clone(), token.clone());
        async move {
            let r = http
                .post(format!("{base}/v1/boards/stock-lr/action"))
                .header("X-Auth-Token", &token)
                .json(&json!({"action": name, "parameters": params}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = action("DevicePing", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_str().unwrap().contains(" @ "), "{body}");
    let (status, body) = action("DeviceEcho", json!({"say": "hello from s4t"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.as_str().unwrap().starts_with("hello from s4t @ "),
        "{body}"
    );

    // Plugins: the code travels as protocol-0 pickle text; a non-Latin-1-safe source works.
    let api = |method: reqwest::Method, path: String, body: Option<Value>| {
        let http = http.clone();
        let (base, token) = (base.clone(), token.clone());
        async move {
            let mut r = http
                .request(method, format!("{base}{path}"))
                .header("X-Auth-Token", &token);
            if let Some(b) = body {
                r = r.json(&b);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, echo) = api(
        reqwest::Method::POST,
        "/v1/plugins".into(),
        Some(json!({"name": "echo", "callable": true, "code": ECHO_PLUGIN})),
    )
    .await;
    assert_eq!(status, 201, "{echo}");
    let (status, ticker) = api(
        reqwest::Method::POST,
        "/v1/plugins".into(),
        Some(json!({"name": "ticker", "callable": false, "code": TICKER_PLUGIN})),
    )
    .await;
    assert_eq!(status, 201, "{ticker}");
    for (plugin, uuid) in [("echo", &echo["uuid"]), ("ticker", &ticker["uuid"])] {
        let (status, body) = api(
            reqwest::Method::PUT,
            "/v1/boards/stock-lr/plugins".into(),
            Some(json!({"plugin": plugin, "onboot": false})),
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, Some("PluginInject result: INJECTED")),
            "{plugin}"
        );
        let file = dir.join(format!("home/plugins/{0}/{0}.py", uuid.as_str().unwrap()));
        let written = std::fs::read_to_string(&file).unwrap();
        assert!(written.contains("café 漢字"), "{written}");
    }
    let plugin_action = |plugin: &'static str, action: &'static str, params: Value| {
        api(
            reqwest::Method::POST,
            format!("/v1/boards/stock-lr/plugins/{plugin}"),
            Some(json!({"action": action, "parameters": params})),
        )
    };
    let (status, body) = plugin_action("echo", "PluginCall", json!({"say": "hi"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!("echo: {'say': 'hi'}"));
    assert_eq!(
        plugin_action("ticker", "PluginStart", json!({})).await,
        (200, json!("STARTED"))
    );
    assert_eq!(
        plugin_action("ticker", "PluginStatus", json!({})).await,
        (200, json!("ALIVE"))
    );
    assert_eq!(
        plugin_action("ticker", "PluginStop", json!({})).await,
        (200, json!("STOPPED"))
    );
    let (status, _) = api(
        reqwest::Method::DELETE,
        "/v1/boards/stock-lr/plugins/echo".into(),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, injections) = api(
        reqwest::Method::GET,
        "/v1/boards/stock-lr/plugins".into(),
        None,
    )
    .await;
    assert_eq!(
        injections["injections"].as_array().unwrap().len(),
        1,
        "{injections}"
    );

    drop(lr);
    let start = Instant::now();
    while get_board().await["status"] != "offline" {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "still online after the LR was killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}
