//! The REST API over real HTTP on loopback, against a real SQLite store.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use s4t_cloud::{CloudConfig, RunningCloud};

struct Api {
    base: String,
    admin: String,
    http: reqwest::Client,
    cloud: Option<RunningCloud>,
    dir: std::path::PathBuf,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    /// The faultstring inside the double-encoded error body.
    fn fault(&self) -> String {
        let inner = self.body["error_message"]
            .as_str()
            .unwrap_or_else(|| panic!("not an IoTronic error body: {}", self.body));
        let fault: Value = serde_json::from_str(inner).expect("error_message holds a JSON string");
        fault["faultstring"].as_str().unwrap().to_string()
    }
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("s4t-api-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Api {
    async fn start() -> Api {
        Api::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut CloudConfig)) -> Api {
        let dir = temp_dir();
        let mut cfg = CloudConfig::for_dir(&dir);
        cfg.api_addr = "127.0.0.1:0".into();
        tweak(&mut cfg);
        let cloud = RunningCloud::start(cfg).await.unwrap();
        let admin = cloud.new_admin_token.clone().unwrap_or_default();
        Api {
            base: format!("http://{}", cloud.api_addr),
            admin,
            http: reqwest::Client::new(),
            cloud: Some(cloud),
            dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(&self.admin), None, &[])
            .await
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> Reply {
        self.call(
            method,
            path,
            Some(&self.admin),
            Some(&body.to_string()),
            &[],
        )
        .await
    }

    async fn send_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let b = body.map(|b| b.to_string());
        self.call(method, path, Some(token), b.as_deref(), &[])
            .await
    }

    async fn board(&self, name: &str) -> Value {
        let r = self
            .send(Method::POST, "/v1/boards", board_body(name))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    async fn token(&self, user: &str, project: &str, roles: &[&str]) -> String {
        let r = self
            .send(
                Method::POST,
                "/v1/tokens",
                json!({"user_id": user, "project_id": project, "roles": roles}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }

    async fn stop(mut self) -> std::path::PathBuf {
        if let Some(c) = self.cloud.take() {
            c.shutdown().await;
        }
        self.dir.clone()
    }
}

fn board_body(name: &str) -> Value {
    json!({"name": name, "code": format!("CODE-{name}"), "type": "server", "mobile": false,
           "location": [{"latitude": "38.19", "longitude": "15.55", "altitude": "10"}]})
}

#[tokio::test]
async fn root_documents_are_public_and_carry_version_headers() {
    let api = Api::start().await;
    for path in ["/", "/v1", "/v1/"] {
        let r = api.call(Method::GET, path, None, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers["x-openstack-iotronic-api-maximum-version"], "1.0");
        assert!(r.headers["openstack-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req-"));
    }
    let root = api.call(Method::GET, "/", None, None, &[]).await;
    assert_eq!(root.body["versions"][0]["id"], "v1");
    assert_eq!(root.body["default_version"]["min_version"], "1.0");
    let v1 = api.call(Method::GET, "/v1", None, None, &[]).await;
    assert!(v1.body["boards"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with("/v1/boards/"));
}

#[tokio::test]
async fn requests_without_a_valid_token_get_a_keystone_style_401() {
    let api = Api::start().await;
    for token in [None, Some("s4t_wrong")] {
        let r = api.call(Method::GET, "/v1/boards", token, None, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["error"]["code"], 401);
        assert!(r.headers.contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn microversion_negotiation_follows_iotronic() {
    let api = Api::start().await;
    let api = &api;
    let with = |v: &'static str| async move {
        api.call(
            Method::GET,
            "/v1/boards",
            Some(&api.admin),
            None,
            &[("X-OpenStack-Iotronic-API-Version", v)],
        )
        .await
    };
    let r = with("1.9").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(r.headers["x-openstack-iotronic-api-minimum-version"], "1.0");
    assert_eq!(r.headers["x-openstack-iotronic-api-maximum-version"], "1.0");
    assert!(r.fault().contains("[1.0, 1.0]"));
    assert_eq!(with("bogus").await.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(with("1.0").await.status, StatusCode::OK);
    let latest = with("latest").await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(latest.headers["x-openstack-iotronic-api-version"], "1.0");
}

#[tokio::test]
async fn board_lifecycle_over_http() {
    let api = Api::start().await;
    let b = api.board("board-1").await;
    assert_eq!(b["status"], "registered");
    assert_eq!(b["owner"], "admin");
    assert_eq!(b["location"][0]["latitude"], "38.19");
    assert!(b["location"][0]["updated_at"].is_null());
    assert_eq!(b["config"]["iotronic"]["board"]["code"], "CODE-board-1");
    assert_eq!(
        b["config"]["iotronic"]["wamp"]["registration-agent"]["realm"],
        "s4t"
    );
    let uuid = b["uuid"].as_str().unwrap().to_string();
    assert!(b["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/boards/{uuid}")));
    for path in [
        format!("/v1/boards/{uuid}"),
        "/v1/boards/board-1".into(),
        "/v1/boards/board-1/".into(),
        "/boards/board-1".into(),
    ] {
        let r = api.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["uuid"], uuid.as_str());
    }
    let r = api
        .send(
            Method::PATCH,
            "/v1/boards/board-1",
            json!({"name": "board-one", "mobile": true, "extra": {"k": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "board-one");
    assert_eq!(r.body["mobile"], true);
    assert!(r.body["updated_at"].is_string());
    let r = api
        .send(
            Method::PATCH,
            "/v1/boards/board-one",
            json!({"uuid": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(r.fault(), "Cannot overwrite UUID for an existing Board.");
    let r = api
        .send(
            Method::PATCH,
            "/v1/boards/board-one",
            json!({"status": "online"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the status cannot be forced"
    );
    let r = api
        .call(
            Method::DELETE,
            "/v1/boards/board-one",
            Some(&api.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api.get("/v1/boards/board-one").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.fault(), "Board board-one could not be found.");
    let inner: Value = serde_json::from_str(r.body["error_message"].as_str().unwrap()).unwrap();
    assert_eq!(inner["faultcode"], "Client");
    assert!(inner["debuginfo"].is_null());
}

#[tokio::test]
async fn bad_board_bodies_are_refused_naming_the_field() {
    let api = Api::start().await;
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "not valid JSON"),
        ("".into(), "body is empty"),
        ("[1]".into(), "must be a JSON object"),
        (json!({"name": "b", "code": "C", "colour": "red", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}).to_string(), "Unknown attribute for argument Board: colour"),
        (json!({"name": 5, "code": "C", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}).to_string(), "name must be a string"),
        (json!({"name": "1aa98d40-e54c-4a3d-87cd-a031bb9b8410", "code": "C", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}).to_string(), "looks like a uuid"),
        (json!({"name": "b", "code": "C".repeat(37), "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}).to_string(), "code is too long"),
        (json!({"name": "b", "code": "C", "created_at": "now", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}).to_string(), "read only"),
        (json!({"name": "b", "code": "C"}).to_string(), "location is required"),
        (json!({"name": "b", "code": "C", "status": "online", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}).to_string(), "status is set by the cloud"),
        (json!({"name": "b", "code": "C", "fleet": "nowhere", "location": [{"latitude": 1, "longitude": 1, "altitude": 1}]}).to_string(), "fleet: Fleet nowhere could not be found"),
    ];
    for (body, expected) in cases {
        let r = api
            .call(
                Method::POST,
                "/v1/boards",
                Some(&api.admin),
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.fault().contains(expected), "{body}: {}", r.fault());
    }
    assert!(
        api.get("/v1/boards").await.body["boards"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn go_sdk_zero_values_are_accepted_and_duplicates_conflict() {
    let api = Api::start().await;
    let mut body = board_body("sdk");
    for k in [
        "uuid",
        "status",
        "agent",
        "session",
        "lr_version",
        "wstun_ip",
    ] {
        body[k] = json!("");
    }
    body["fleet"] = Value::Null;
    body["connectivity"] = json!({});
    body["location"][0]["updated_at"] = Value::Null;
    let r = api.send(Method::POST, "/v1/boards/", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "registered");
    let r = api
        .send(Method::POST, "/v1/boards", board_body("sdk"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.fault().contains("sdk"), "{}", r.fault());
}

#[tokio::test]
async fn lists_paginate_with_next_links_and_validate_queries() {
    let api = Api::start().await;
    for i in 0..5 {
        api.board(&format!("b{i}")).await;
    }
    let mut names = Vec::new();
    let mut path = "/v1/boards?limit=2&sort_key=name&sort_dir=desc".to_string();
    loop {
        let r = api.get(&path).await;
        assert_eq!(r.status, StatusCode::OK);
        names.extend(
            r.body["boards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].as_str().unwrap().to_string()),
        );
        match r.body["next"].as_str() {
            Some(next) => {
                assert!(
                    next.contains("sort_key=name&sort_dir=desc&limit=2&marker="),
                    "{next}"
                );
                path = next.trim_start_matches(&api.base).to_string();
            }
            None => break,
        }
    }
    assert_eq!(names, ["b4", "b3", "b2", "b1", "b0"]);
    let r = api.get("/v1/boards?limit=10").await;
    assert!(
        r.body.get("next").is_none(),
        "a short page has no next link"
    );
    let first = &r.body["boards"][0];
    for key in [
        "name",
        "code",
        "status",
        "uuid",
        "session",
        "type",
        "fleet",
        "lr_version",
        "connectivity",
        "agent",
        "location",
        "links",
    ] {
        assert!(first.get(key).is_some(), "default list field {key}");
    }
    assert!(first.get("config").is_none() && first.get("extra").is_none());
    let detail = api.get("/v1/boards/detail").await;
    assert!(detail.body["boards"][0].get("config").is_some());
    let only = api.get("/v1/boards?fields=name").await;
    let keys: Vec<&String> = only.body["boards"][0].as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["name", "uuid", "session", "location", "links"].contains(&k.as_str())),
        "{keys:?}"
    );
    for (q, msg) in [
        ("limit=0", "Limit must be positive"),
        ("sort_key=extra", "invalid field for sorting"),
        ("sort_dir=up", "Invalid sort direction"),
        ("status=broken", "status"),
    ] {
        let r = api.get(&format!("/v1/boards?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.fault().contains(msg), "{q}: {}", r.fault());
    }
    assert_eq!(
        api.get("/v1/boards?marker=00000000-0000-0000-0000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/v1/plugins?fields=bogus").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn every_collection_is_scoped_to_the_callers_project() {
    let api = Api::start().await;
    let alice = api.token("alice", "p1", &["admin_iot_project"]).await;
    let bob = api.token("bob", "p2", &["admin_iot_project"]).await;
    let r = api
        .send_as(&alice, Method::POST, "/v1/boards", Some(board_body("a1")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["project"], "p1");
    let uuid = r.body["uuid"].as_str().unwrap().to_string();
    api.send_as(
        &alice,
        Method::POST,
        "/v1/fleets",
        Some(json!({"name": "f1"})),
    )
    .await;
    api.send_as(
        &alice,
        Method::POST,
        "/v1/services",
        Some(json!({"name": "ssh", "port": 22, "protocol": "TCP"})),
    )
    .await;
    for (collection, key) in [
        ("boards", "boards"),
        ("fleets", "fleets"),
        ("services", "services"),
    ] {
        let mine = api
            .send_as(&alice, Method::GET, &format!("/v1/{collection}"), None)
            .await;
        assert_eq!(
            mine.body[key].as_array().unwrap().len(),
            1,
            "{collection} of p1"
        );
        let theirs = api
            .send_as(&bob, Method::GET, &format!("/v1/{collection}"), None)
            .await;
        assert_eq!(
            theirs.body[key].as_array().unwrap().len(),
            0,
            "{collection} leak into p2"
        );
    }
    assert_eq!(
        api.send_as(&bob, Method::GET, &format!("/v1/boards/{uuid}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.send_as(&bob, Method::DELETE, &format!("/v1/boards/{uuid}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = api
        .send_as(&bob, Method::GET, "/v1/boards?project=p1", None)
        .await;
    assert_eq!(
        r.fault(),
        "Project parameter can be used only by the administrator."
    );
    assert_eq!(
        api.get("/v1/boards?project=p1").await.body["boards"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/v1/boards?all_projects=true").await.body["boards"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/v1/boards").await.body["boards"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "admin defaults to own project"
    );
}

#[tokio::test]
async fn roles_are_enforced_and_tokens_can_be_revoked() {
    let api = Api::start().await;
    let user = api.token("carol", "p1", &["user_iot"]).await;
    let r = api
        .send_as(&user, Method::POST, "/v1/boards", Some(board_body("c1")))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.fault(),
        "Access was denied to the following resource: iot:board:create"
    );
    assert_eq!(
        api.send_as(&user, Method::GET, "/v1/boards", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.send_as(&user, Method::GET, "/v1/tokens", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let stranger = api.token("dave", "p1", &[]).await;
    assert_eq!(
        api.send_as(&stranger, Method::GET, "/v1/boards", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let list = api.get("/v1/tokens").await;
    let id = list.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user_id"] == "carol")
        .unwrap()["id"]
        .clone();
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(&api.admin),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.send_as(&user, Method::GET, "/v1/boards", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = api
        .send(
            Method::POST,
            "/v1/tokens",
            json!({"user_id": "x", "roles": ["superuser"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn operations_on_boards_that_are_not_online_answer_400_not_connected() {
    let api = Api::start().await;
    let b = api.board("off").await;
    let uuid = b["uuid"].as_str().unwrap();
    let plugin = api
        .send(
            Method::POST,
            "/v1/plugins",
            json!({"name": "echo", "code": "print('hi')", "callable": true}),
        )
        .await;
    assert_eq!(plugin.status, StatusCode::CREATED);
    api.send(
        Method::POST,
        "/v1/services",
        json!({"name": "ssh", "port": 22, "protocol": "TCP"}),
    )
    .await;
    let expected = format!("Board {uuid} is not connected.");
    let cases = [
        (
            Method::POST,
            "/v1/boards/off/action".to_string(),
            json!({"action": "DevicePing"}),
        ),
        (
            Method::PUT,
            "/v1/boards/off/plugins".into(),
            json!({"plugin": "echo", "onboot": false}),
        ),
        (
            Method::POST,
            "/v1/boards/off/plugins/echo".into(),
            json!({"action": "PluginCall", "parameters": {}}),
        ),
        (
            Method::POST,
            "/v1/boards/off/services/ssh/action".into(),
            json!({"action": "ServiceEnable"}),
        ),
        (
            Method::PUT,
            "/v1/boards/off/ports".into(),
            json!({"network": "n1"}),
        ),
        (
            Method::POST,
            "/v1/boards/off/webservices/enable".into(),
            json!({"dns": "d", "zone": "z", "email": "e@x"}),
        ),
    ];
    for (method, path, body) in cases {
        let r = api.send(method.clone(), &path, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert_eq!(r.fault(), expected, "{method} {path}");
    }
    let r = api
        .send(
            Method::POST,
            "/v1/boards/off/action",
            json!({"action": "Explode"}),
        )
        .await;
    assert!(r
        .fault()
        .starts_with("Invalid Action Explode for the board."));
    let r = api
        .send(Method::POST, "/v1/boards/off/action", json!({}))
        .await;
    assert_eq!(r.fault(), "Action is not specified.");
    assert_eq!(
        api.get("/v1/boards/off/services/restore").await.fault(),
        expected
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            "/v1/boards/off/plugins/echo",
            Some(&api.admin),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/v1/boards/off/plugins").await.body,
        json!({"injections": []})
    );
    assert_eq!(
        api.get("/v1/boards/off/services").await.body,
        json!({"exposed": []})
    );
    assert_eq!(
        api.get("/v1/boards/off/ports").await.body,
        json!({"ports": []})
    );
}

#[tokio::test]
async fn plugins_keep_their_source_and_digest_through_updates() {
    let api = Api::start().await;
    let code = "from iotronic_lightningrod.plugins import Plugin\n# ünïcödé ✓ 日本\n";
    let r = api
        .send(
            Method::POST,
            "/v1/plugins",
            json!({"name": "uni", "code": code, "parameters": {"msg": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["code"], code);
    assert!(r.body["callable"].is_null(), "unset callable stays null");
    let digest = r.body["digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64);
    let r = api
        .send(
            Method::PATCH,
            "/v1/plugins/uni",
            json!({"code": "print(2)", "public": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["code"], "print(2)");
    assert_ne!(r.body["digest"], digest.as_str());
    assert_eq!(
        api.get("/v1/plugins/public").await.body["plugins"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/v1/plugins?with_public=true").await.body["plugins"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let b = api.board("pb").await;
    let r = api
        .send(
            Method::POST,
            &format!("/v1/boards/{}/plugins/uni", b["uuid"].as_str().unwrap()),
            json!({"action": "PluginCall", "parameters": {}}),
        )
        .await;
    assert!(
        r.fault()
            .starts_with("Parameters are different from the valid ones"),
        "{}",
        r.fault()
    );
    let r = api
        .send(Method::POST, "/v1/plugins", json!({"name": "nocode"}))
        .await;
    assert!(r.fault().contains("code is required"));
    assert_eq!(
        api.call(
            Method::DELETE,
            "/v1/plugins/uni",
            Some(&api.admin),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn services_and_fleets_round_trip() {
    let api = Api::start().await;
    let s = api
        .send(
            Method::POST,
            "/v1/services",
            json!({"name": "ssh", "port": 22, "protocol": "tcp"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::CREATED);
    assert_eq!(s.body["protocol"], "TCP");
    let r = api
        .send(Method::PATCH, "/v1/services/ssh", json!({"port": 2222}))
        .await;
    assert_eq!(r.body["port"], 2222);
    let r = api
        .send(
            Method::POST,
            "/v1/services",
            json!({"name": "bad", "port": 0, "protocol": "TCP"}),
        )
        .await;
    assert!(r
        .fault()
        .contains("port must be an integer between 1 and 65535"));
    assert_eq!(
        api.call(
            Method::DELETE,
            "/v1/services/ssh",
            Some(&api.admin),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    let f = api
        .send(
            Method::POST,
            "/v1/fleets",
            json!({"name": "lab", "description": "the lab"}),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED);
    let fleet = f.body["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        api.send(Method::POST, "/v1/fleets", json!({"name": "lab"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    api.board("fb").await;
    let r = api
        .send(Method::PATCH, "/v1/boards/fb", json!({"fleet": "lab"}))
        .await;
    assert_eq!(
        r.body["fleet"],
        fleet.as_str(),
        "a fleet given by name is stored by uuid"
    );
    for path in [
        "/v1/fleets/lab/boards",
        &format!("/v1/fleets/{fleet}/boards/"),
    ] {
        let r = api.get(path).await;
        assert_eq!(r.body["boards"].as_array().unwrap().len(), 1, "{path}");
    }
    let r = api
        .call(
            Method::DELETE,
            "/v1/fleets/lab",
            Some(&api.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.fault().contains("still has 1 board"));
    api.send(Method::PATCH, "/v1/boards/fb", json!({"fleet": null}))
        .await;
    assert_eq!(
        api.call(
            Method::DELETE,
            "/v1/fleets/lab",
            Some(&api.admin),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn detail_routes_and_empty_collections_answer_with_their_envelopes() {
    let api = Api::start().await;
    let cases = [
        ("/v1/boards/detail", "boards"),
        ("/v1/plugins/detail", "plugins"),
        ("/v1/services/detail", "services"),
        ("/v1/fleets/detail", "fleets"),
        ("/v1/webservices/detail", "webservices"),
        ("/v1/requests/detail", "requests"),
        ("/v1/ports/detail", "ports"),
        ("/v1/ports", "ports"),
        ("/v1/webservices", "webservices"),
        ("/v1/enabledwebservices", "EnabledWebservices"),
        ("/v1/requests", "requests"),
    ];
    for (path, key) in cases {
        let r = api.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.body[key].is_array(), "{path}: {}", r.body);
    }
    let r = api.get("/v1/webservices/not-a-uuid").await;
    assert_eq!(r.fault(), "Expected a uuid but received not-a-uuid.");
    let r = api
        .get("/v1/requests/00000000-0000-0000-0000-000000000000/results")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.send(Method::POST, "/v1/webservices", json!({})).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.fault().contains("not allowed"));
    assert_eq!(
        api.get("/v1/nothing-here").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn admin_token_is_written_once_with_mode_0600() {
    let api = Api::start().await;
    let token = api.admin.clone();
    let dir = api.stop().await;
    let file = dir.join("admin-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut cfg = CloudConfig::for_dir(&dir);
    cfg.api_addr = "127.0.0.1:0".into();
    let again = RunningCloud::start(cfg).await.unwrap();
    assert!(
        again.new_admin_token.is_none(),
        "a restart keeps the existing admin token"
    );
    again.shutdown().await;
}

#[tokio::test]
async fn noauth_takes_identity_from_headers() {
    let api = Api::start_with(|c| c.noauth = true).await;
    let body = board_body("na").to_string();
    let r = api
        .call(
            Method::POST,
            "/v1/boards",
            None,
            Some(&body),
            &[("X-Project-Id", "px"), ("X-User-Id", "ux")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["project"], "px");
    assert_eq!(r.body["owner"], "ux");
    let anon = api.call(Method::GET, "/v1/boards", None, None, &[]).await;
    assert_eq!(
        anon.body["boards"].as_array().unwrap().len(),
        0,
        "no project header sees project-less boards only"
    );
    let px = api
        .call(
            Method::GET,
            "/v1/boards",
            None,
            None,
            &[("X-Project-Id", "px")],
        )
        .await;
    assert_eq!(px.body["boards"].as_array().unwrap().len(), 1);
}
