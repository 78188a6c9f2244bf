//! Fleet rollouts over real WebSockets: 500 boards (WAMP sessions that register, authenticate
//! and serve plugin procedures; every tenth one fails), a staged PluginCall that the failure
//! threshold stops, a fleet-wide inject, and per-board results.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use s4t_cloud::{CloudConfig, RunningCloud};
use s4t_model::board_link::WampMessage;
use s4t_wamp::{connect, handler, CallResult, ClientAuth, ClientConfig, Invocation, Session};

const BOARDS: usize = 500;

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Waits for a request to complete; returns its results.
    async fn finished(&self, uuid: &str) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let (_, r) = self
                .call(reqwest::Method::GET, &format!("/v1/requests/{uuid}"), None)
                .await;
            if r["status"] == "COMPLETED" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "rollout not done: {r}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, res) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/requests/{uuid}/results"),
                None,
            )
            .await;
        res["results"].as_array().unwrap().clone()
    }
}

fn reply(m: WampMessage) -> Result<CallResult, s4t_wamp::CallError> {
    Ok(CallResult {
        args: vec![json!(m.to_wire())],
        kwargs: Map::new(),
    })
}

/// A board: registers by code, connects with its secret, serves PluginInject and PluginCall.
async fn board(url: &str, code: &str, fails: bool) -> Session {
    let anon = connect(url, ClientConfig::new("s4t")).await.unwrap();
    let mut kw = Map::new();
    kw.insert("code".into(), json!(code));
    kw.insert("session".into(), json!(anon.id()));
    let r = anon
        .call("stack4things.register", vec![], kw)
        .await
        .unwrap();
    anon.leave().await;
    let doc = WampMessage::from_args(&r.args).unwrap().message;
    let uuid = doc["iotronic"]["board"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cfg = ClientConfig::new("s4t");
    cfg.auth = Some(ClientAuth::Ticket {
        authid: uuid.clone(),
        ticket: doc["s4t"]["board_secret"].as_str().unwrap().to_string(),
    });
    let s = connect(url, cfg).await.unwrap();
    let mut kw = Map::new();
    kw.insert("uuid".into(), json!(uuid));
    kw.insert("session".into(), json!(s.id()));
    s.call("s4t.stack4things.connection", vec![], kw)
        .await
        .unwrap();
    let prefix = format!("iotronic.{}.{uuid}", s.id());
    s.register(
        &format!("{prefix}.PluginInject"),
        handler(|_: Invocation| async {
            reply(WampMessage::success("PluginInject result: INJECTED"))
        }),
    )
    .await
    .unwrap();
    s.register(
        &format!("{prefix}.PluginCall"),
        handler(move |inv: Invocation| async move {
            // The board is asked to answer at once, whatever the parent request.
            assert!(inv.args[0]["main_request_uuid"].is_null());
            if fails {
                reply(WampMessage::error("plugin crashed"))
            } else {
                reply(WampMessage::success(format!("echo: {}", inv.args[2])))
            }
        }),
    )
    .await
    .unwrap();
    s
}

fn count(results: &[Value], outcome: &str, fragment: &str) -> usize {
    results
        .iter()
        .filter(|r| {
            r["result"] == outcome && r["message"].as_str().unwrap_or("").contains(fragment)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_rollout_stops_at_the_failure_threshold() {
    let dir = std::env::temp_dir().join(format!("s4t-rollout-{}", uuid::Uuid::new_v4()));
    let mut cfg = CloudConfig::for_dir(&dir);
    cfg.api_addr = "127.0.0.1:0".into();
    cfg.wamp_addr = Some("127.0.0.1:0".into());
    let cloud = RunningCloud::start(cfg).await.unwrap();
    let api = Api {
        base: format!("http://{}", cloud.api_addr),
        token: cloud.new_admin_token.clone().unwrap(),
        http: reqwest::Client::new(),
    };
    let (status, fleet) = api
        .call(
            reqwest::Method::POST,
            "/v1/fleets",
            Some(json!({"name": "lab"})),
        )
        .await;
    assert_eq!(status, 201, "{fleet}");
    // Two more boards than connect: offline ones are reported, not skipped.
    for i in 0..BOARDS + 2 {
        let (status, b) = api
            .call(
                reqwest::Method::POST,
                "/v1/boards",
                Some(
                    json!({"name": format!("b{i:03}"), "code": format!("C{i:03}"), "fleet": "lab",
                    "extra": {"site": if i % 2 == 0 { "even" } else { "odd" }},
                    "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{b}");
    }
    let url = cloud.board_url.clone();
    let mut sessions = Vec::new();
    for chunk in (0..BOARDS).collect::<Vec<_>>().chunks(50) {
        let joins: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let url = url.clone();
                tokio::spawn(async move { board(&url, &format!("C{i:03}"), i % 10 == 0).await })
            })
            .collect();
        for j in joins {
            sessions.push(j.await.unwrap());
        }
    }
    let (status, plugin) = api
        .call(
            reqwest::Method::POST,
            "/v1/plugins",
            Some(json!({"name": "echo", "callable": true, "code": "print('hi')\n"})),
        )
        .await;
    assert_eq!(status, 201, "{plugin}");

    // Bad options are refused with the field named.
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/fleets/lab/plugins/echo/action",
            Some(json!({"action": "PluginCall", "batch_size": 0})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("batch_size"));

    // Batches of 50, stop past 10 failures: boards 0, 10, 20, ... fail, so the third batch
    // brings the count to 15 and the rest is not run.
    let (status, parent) = api
        .call(
            reqwest::Method::POST,
            "/v1/fleets/lab/plugins/echo/action",
            Some(
                json!({"action": "PluginCall", "parameters": {"n": 1}, "batch_size": 50,
                        "max_failures": 10, "board_timeout": 10}),
            ),
        )
        .await;
    assert_eq!(status, 202, "{parent}");
    assert_eq!(parent["action"], "FleetPluginCall");
    assert_eq!(parent["type"], 1);
    assert_eq!(parent["pending_requests"], BOARDS + 2);
    let results = api.finished(parent["uuid"].as_str().unwrap()).await;
    assert_eq!(results.len(), BOARDS + 2);
    assert_eq!(count(&results, "SUCCESS", "echo: "), 135);
    assert_eq!(count(&results, "ERROR", "plugin crashed"), 15);
    assert_eq!(
        count(
            &results,
            "WARNING",
            "stopped after 15 failures (max_failures 10)"
        ),
        350
    );
    assert_eq!(count(&results, "WARNING", "the board is registered"), 2);
    let (_, done) = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/requests/{}", parent["uuid"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(done["pending_requests"], 0);

    // A selector narrows the boards; without a threshold every online one is injected.
    let (status, parent) = api
        .call(
            reqwest::Method::POST,
            "/v1/fleets/lab/plugins",
            Some(json!({"plugin": "echo", "onboot": true, "selector": {"site": "even"}})),
        )
        .await;
    assert_eq!(status, 202, "{parent}");
    let results = api.finished(parent["uuid"].as_str().unwrap()).await;
    assert_eq!(results.len(), BOARDS / 2 + 1);
    assert_eq!(count(&results, "SUCCESS", "INJECTED"), BOARDS / 2);
    let (_, inj) = api
        .call(reqwest::Method::GET, "/v1/boards/b000/plugins", None)
        .await;
    assert_eq!(inj["injections"][0]["onboot"], true, "{inj}");
    let (_, inj) = api
        .call(reqwest::Method::GET, "/v1/boards/b001/plugins", None)
        .await;
    assert_eq!(inj["injections"], json!([]));

    for s in sessions {
        s.leave().await;
    }
    cloud.shutdown().await;
}

/// `offline: defer`: an offline board's call waits (across a cloud restart) and runs when the
/// board connects; the parent completes then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_calls_run_when_the_board_is_back() {
    let dir = std::env::temp_dir().join(format!("s4t-defer-{}", uuid::Uuid::new_v4()));
    let start = |dir: std::path::PathBuf| async move {
        let mut cfg = CloudConfig::for_dir(&dir);
        cfg.api_addr = "127.0.0.1:0".into();
        cfg.wamp_addr = Some("127.0.0.1:0".into());
        RunningCloud::start(cfg).await.unwrap()
    };
    let cloud = start(dir.clone()).await;
    let token = cloud.new_admin_token.clone().unwrap();
    let api = Api {
        base: format!("http://{}", cloud.api_addr),
        token: token.clone(),
        http: reqwest::Client::new(),
    };
    api.call(
        reqwest::Method::POST,
        "/v1/fleets",
        Some(json!({"name": "lab"})),
    )
    .await;
    for i in 0..2 {
        let (status, _) = api
            .call(
                reqwest::Method::POST,
                "/v1/boards",
                Some(
                    json!({"name": format!("d{i}"), "code": format!("D{i}"), "fleet": "lab",
                    "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]}),
                ),
            )
            .await;
        assert_eq!(status, 201);
    }
    api.call(
        reqwest::Method::POST,
        "/v1/plugins",
        Some(json!({"name": "echo", "callable": true, "code": "print('hi')\n"})),
    )
    .await;
    let online = board(&cloud.board_url, "D0", false).await;
    let (status, parent) = api
        .call(
            reqwest::Method::POST,
            "/v1/fleets/lab/plugins/echo/action",
            Some(json!({"action": "PluginCall", "parameters": {"n": 2}, "offline": "defer"})),
        )
        .await;
    assert_eq!(status, 202, "{parent}");
    let parent = parent["uuid"].as_str().unwrap().to_string();
    // The online board answers; the offline one waits.
    let deadline = Instant::now() + Duration::from_secs(10);
    let results = loop {
        let (_, r) = api
            .call(
                reqwest::Method::GET,
                &format!("/v1/requests/{parent}/results"),
                None,
            )
            .await;
        let r = r["results"].as_array().unwrap().clone();
        if r.iter().any(|x| x["result"] == "SUCCESS") {
            break r;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        count(
            &results,
            "RUNNING",
            "deferred: runs when the board is online again"
        ),
        1
    );
    online.leave().await;

    // A restart keeps the deferred call and its parent pending.
    cloud.shutdown().await;
    let cloud = start(dir.clone()).await;
    let api = Api {
        base: format!("http://{}", cloud.api_addr),
        token,
        http: reqwest::Client::new(),
    };
    let (_, p) = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/requests/{parent}"),
            None,
        )
        .await;
    assert_eq!(
        (p["status"].as_str(), p["pending_requests"].as_i64()),
        (Some("PENDING"), Some(1)),
        "{p}"
    );

    let back = board(&cloud.board_url, "D1", false).await;
    let results = api.finished(&parent).await;
    assert_eq!(count(&results, "SUCCESS", "echo: "), 2, "{results:?}");
    back.leave().await;
    cloud.shutdown().await;
}
