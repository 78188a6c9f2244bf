//! The board gateway over real WebSockets, driven by a hand-rolled board (the wamp client), so
//! each rule is exercised directly: registration, secrets, who may call and register what,
//! board calls through the REST API, sessions leaving, and TLS.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use s4t_cloud::{CloudConfig, RunningCloud};
use s4t_model::board_link::WampMessage;
use s4t_model::resources::Outcome;
use s4t_wamp::{connect, handler, CallResult, ClientAuth, ClientConfig, Invocation, WampError};

const CA: &[u8] = include_bytes!("../../wamp/tests/fixtures/test-ca.pem");
const CERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../wamp/tests/fixtures/localhost.pem"
);
const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../wamp/tests/fixtures/localhost.key"
);

struct Cloud {
    running: RunningCloud,
    base: String,
    token: String,
    http: reqwest::Client,
}

async fn start(tweak: impl FnOnce(&mut CloudConfig)) -> Cloud {
    let dir = std::env::temp_dir().join(format!("s4t-gw-{}", uuid::Uuid::new_v4()));
    let mut cfg = CloudConfig::for_dir(&dir);
    cfg.api_addr = "127.0.0.1:0".into();
    cfg.wamp_addr = Some("127.0.0.1:0".into());
    cfg.wamp_ping_interval = Duration::from_secs(1);
    tweak(&mut cfg);
    let running = RunningCloud::start(cfg).await.unwrap();
    let token = running.new_admin_token.clone().unwrap();
    let base = format!("http://{}", running.api_addr);
    let cloud = Cloud {
        running,
        base,
        token,
        http: reqwest::Client::new(),
    };
    let r = cloud
        .http
        .post(format!("{}/v1/boards", cloud.base))
        .header("X-Auth-Token", &cloud.token)
        .json(&json!({"name": "gw", "code": "GW-CODE", "type": "virtual",
            "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    cloud
}

impl Cloud {
    fn url(&self) -> String {
        self.running.board_url.clone()
    }

    async fn board(&self) -> Value {
        self.http
            .get(format!("{}/v1/boards/gw", self.base))
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn wait_status(&self, status: &str) {
        let start = Instant::now();
        while self.board().await["status"] != status {
            assert!(start.elapsed() < Duration::from_secs(5), "never {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn kwargs(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn refused(r: Result<CallResult, WampError>) -> String {
    match r {
        Err(WampError::Call(e)) => e.error,
        other => panic!("expected a WAMP error, got {other:?}"),
    }
}

/// Registers by code from an anonymous session: the provisioning document and the secret.
/// Without compatibility mode, nothing but registration is allowed to that session.
async fn register(cloud: &Cloud, anonymous_boards: bool) -> (Value, String) {
    let s = connect(&cloud.url(), ClientConfig::new("s4t"))
        .await
        .unwrap();
    let r = s
        .call(
            "stack4things.register",
            vec![],
            kwargs(json!({"code": "GW-CODE", "session": s.id()})),
        )
        .await
        .unwrap();
    let m = WampMessage::from_args(&r.args).unwrap();
    assert_eq!(m.result, Outcome::Success);
    let denied = refused(
        s.call(
            "s4t.stack4things.connection",
            vec![],
            kwargs(json!({"uuid": "x", "session": 1})),
        )
        .await,
    );
    if anonymous_boards {
        // Allowed in compatibility mode; there is just no board "x".
        assert_eq!(denied, "wamp.error.runtime_error");
        s.leave().await;
        let secret = m.message["s4t"]["board_secret"]
            .as_str()
            .unwrap()
            .to_string();
        return (m.message, secret);
    }
    // Anything but registration is refused to an anonymous session.
    assert_eq!(denied, "wamp.error.not_authorized");
    let reg = s
        .register(
            &format!("iotronic.{}.x.DevicePing", s.id()),
            handler(|_| async {
                Ok(CallResult {
                    args: vec![],
                    kwargs: Map::new(),
                })
            }),
        )
        .await;
    assert!(matches!(reg, Err(WampError::Call(e)) if e.error == "wamp.error.not_authorized"));
    s.leave().await;
    let secret = m.message["s4t"]["board_secret"]
        .as_str()
        .unwrap()
        .to_string();
    (m.message, secret)
}

#[tokio::test]
async fn registration_auth_and_board_calls() {
    let cloud = start(|_| {}).await;
    // Unknown code: an ERROR envelope, as upstream.
    let s = connect(&cloud.url(), ClientConfig::new("s4t"))
        .await
        .unwrap();
    let r = s
        .call(
            "stack4things.register",
            vec![],
            kwargs(json!({"code": "NOPE", "session": s.id()})),
        )
        .await
        .unwrap();
    let m = WampMessage::from_args(&r.args).unwrap();
    assert_eq!(
        (m.result, m.message),
        (Outcome::Error, json!("Board NOPE could not be found."))
    );
    s.leave().await;

    let (doc, secret) = register(&cloud, false).await;
    let uuid = doc["iotronic"]["board"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(doc["iotronic"]["board"]["status"], "registered");
    assert_eq!(doc["iotronic"]["wamp"]["main-agent"]["url"], cloud.url());
    let board = cloud.board().await;
    assert_eq!(board["status"], "offline");
    assert!(board.get("config").is_some());
    assert!(
        !board.to_string().contains(&secret),
        "the secret leaks through the API"
    );

    // A wrong secret does not join.
    let mut bad = ClientConfig::new("s4t");
    bad.auth = Some(ClientAuth::Ticket {
        authid: uuid.clone(),
        ticket: "0".repeat(64),
    });
    assert!(matches!(
        connect(&cloud.url(), bad).await,
        Err(WampError::Aborted { .. })
    ));

    let mut good = ClientConfig::new("s4t");
    good.auth = Some(ClientAuth::Ticket {
        authid: uuid.clone(),
        ticket: secret.clone(),
    });
    let s = connect(&cloud.url(), good.clone()).await.unwrap();
    // Another board's uuid is refused; its own is accepted.
    let other = uuid::Uuid::new_v4().to_string();
    let denied = refused(
        s.call(
            "s4t.stack4things.connection",
            vec![],
            kwargs(json!({"uuid": other, "session": s.id()})),
        )
        .await,
    );
    assert_eq!(denied, "wamp.error.runtime_error");
    let r = s
        .call(
            "s4t.stack4things.connection",
            vec![],
            kwargs(json!({"uuid": uuid, "session": s.id(), "info": {"lr_version": "test", "connectivity": {"iface": "lo"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        r.args,
        vec![json!(r#"{"message": "", "result": "SUCCESS"}"#)]
    );
    let board = cloud.board().await;
    assert_eq!(board["status"], "online");
    assert_eq!(board["session"], json!(s.id().to_string()));
    assert_eq!(board["lr_version"], "test");

    // Procedures only under its own session and uuid.
    let noop = handler(|_| async {
        Ok(CallResult {
            args: vec![],
            kwargs: Map::new(),
        })
    });
    for uri in [
        format!("iotronic.{}.{other}.DevicePing", s.id()),
        format!("iotronic.1.{uuid}.DevicePing"),
        "s4t.stack4things.connection".to_string(),
    ] {
        let r = s.register(&uri, noop.clone()).await;
        assert!(
            matches!(r, Err(WampError::Call(ref e)) if e.error == "wamp.error.not_authorized"),
            "{uri}: {r:?}"
        );
    }
    s.register(
        &format!("iotronic.{}.{uuid}.DeviceEcho", s.id()),
        handler(|inv: Invocation| async move {
            let req_id = inv.args[0]["uuid"].as_str().map(str::to_string);
            let say = inv.args[1]["say"].clone();
            Ok(CallResult {
                args: vec![json!(WampMessage::success(say)
                    .with_req_id(req_id)
                    .to_wire())],
                kwargs: Map::new(),
            })
        }),
    )
    .await
    .unwrap();

    // Through the REST API and the conductor to this session, with the request row first.
    let r = cloud
        .http
        .post(format!("{}/v1/boards/gw/action", cloud.base))
        .header("X-Auth-Token", &cloud.token)
        .json(&json!({"action": "DeviceEcho", "parameters": {"say": "ping"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!("ping"));
    // A procedure the board did not register: a clear 500, and the request is closed.
    let r = cloud
        .http
        .post(format!("{}/v1/boards/gw/action", cloud.base))
        .header("X-Auth-Token", &cloud.token)
        .json(&json!({"action": "DevicePing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("offers no DevicePing"));
    // A procedure registered a moment after the call (as Lightning-rod registers its
    // procedures just after `connection`): the call waits for it and is answered.
    let late = tokio::spawn({
        let (http, base, token) = (cloud.http.clone(), cloud.base.clone(), cloud.token.clone());
        async move {
            let r = http
                .post(format!("{base}/v1/boards/gw/action"))
                .header("X-Auth-Token", &token)
                .json(&json!({"action": "DevicePing"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    s.register(
        &format!("iotronic.{}.{uuid}.DevicePing", s.id()),
        handler(|inv: Invocation| async move {
            let req_id = inv.args[0]["uuid"].as_str().map(str::to_string);
            Ok(CallResult {
                args: vec![json!(WampMessage::success("pong")
                    .with_req_id(req_id)
                    .to_wire())],
                kwargs: Map::new(),
            })
        }),
    )
    .await
    .unwrap();
    assert_eq!(late.await.unwrap(), (200, json!("pong")));

    // notify_result only for itself.
    let msg = WampMessage::success("x")
        .with_req_id(Some("R".into()))
        .to_wire();
    let denied = refused(
        s.call(
            "s4t.stack4things.notify_result",
            vec![],
            kwargs(json!({"board_uuid": other, "wampmessage": msg})),
        )
        .await,
    );
    assert_eq!(denied, "wamp.error.runtime_error");

    s.leave().await;
    cloud.wait_status("offline").await;
    assert_eq!(cloud.board().await["session"], Value::Null);

    // Registering again resends the stored document and rotates the secret.
    let (doc2, secret2) = register(&cloud, false).await;
    assert_eq!(doc2["iotronic"], doc["iotronic"]);
    assert_ne!(secret2, secret);
    good.auth = Some(ClientAuth::Ticket {
        authid: uuid.clone(),
        ticket: secret,
    });
    assert!(
        connect(&cloud.url(), good).await.is_err(),
        "the old secret still works"
    );
    cloud.running.shutdown().await;
}

#[tokio::test]
async fn anonymous_boards_only_in_compatibility_mode() {
    let cloud = start(|c| c.allow_anonymous_boards = true).await;
    let (doc, _) = register(&cloud, true).await;
    let uuid = doc["iotronic"]["board"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let s = connect(&cloud.url(), ClientConfig::new("s4t"))
        .await
        .unwrap();
    s.call(
        "s4t.stack4things.connection",
        vec![],
        kwargs(json!({"uuid": uuid, "session": s.id()})),
    )
    .await
    .unwrap();
    cloud.wait_status("online").await;
    // Still only its own session's procedures.
    let r = s
        .register(
            "iotronic.1.x.DevicePing",
            handler(|_| async {
                Ok(CallResult {
                    args: vec![],
                    kwargs: Map::new(),
                })
            }),
        )
        .await;
    assert!(matches!(r, Err(WampError::Call(e)) if e.error == "wamp.error.not_authorized"));
    s.leave().await;
    cloud.wait_status("offline").await;
    cloud.running.shutdown().await;
}

#[tokio::test]
async fn tls_boards_verify_the_cloud() {
    let cloud = start(|c| c.wamp_tls = Some((CERT.into(), KEY.into()))).await;
    let url = cloud.url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    // The fixture certificate names `localhost`.
    let url = url.replace("127.0.0.1", "localhost");
    assert!(
        connect(&url, ClientConfig::new("s4t")).await.is_err(),
        "joined without trusting the CA"
    );
    let mut trusted = ClientConfig::new("s4t");
    trusted.extra_ca_pem = Some(CA.to_vec());
    let s = connect(&url, trusted).await.unwrap();
    let r = s
        .call(
            "stack4things.register",
            vec![],
            kwargs(json!({"code": "GW-CODE", "session": s.id()})),
        )
        .await
        .unwrap();
    assert_eq!(
        WampMessage::from_args(&r.args).unwrap().result,
        Outcome::Success
    );
    s.leave().await;
    cloud.running.shutdown().await;
}
