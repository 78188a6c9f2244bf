//! Lists are rendered by the database (one statement per page); a single board is rendered in
//! Rust. Both must agree field for field, on both engines, for boards in every shape. Both are
//! kept in memory between requests, and a change through the API or by a board shows at the
//! next request.

use reqwest::StatusCode;
use serde_json::{json, Value};

use s4t_cloud::{CloudConfig, RunningCloud};

async fn start(database_url: Option<String>) -> (RunningCloud, String, String) {
    let dir = std::env::temp_dir().join(format!("s4t-list-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = CloudConfig::for_dir(&dir);
    cfg.api_addr = "127.0.0.1:0".into();
    cfg.database_url = database_url;
    let cloud = RunningCloud::start(cfg).await.unwrap();
    let token = cloud.new_admin_token.clone().unwrap();
    let base = format!("http://{}", cloud.api_addr);
    (cloud, base, token)
}

async fn get(base: &str, token: &str, path: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    resp.json().await.unwrap()
}

async fn scenario(database_url: Option<String>) {
    let (cloud, base, token) = start(database_url).await;
    let http = reqwest::Client::new();
    let bodies = [
        json!({"name": "with-loc", "code": "C1", "type": "server", "mobile": true,
               "extra": {"k": "v \"quoted\" é"}, "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]}),
        json!({"name": "bare", "code": "C2", "location": [{"latitude": "0", "longitude": "0", "altitude": "0"}]}),
        json!({"name": "provisioned", "code": "C3", "type": "virtual", "location": [{"latitude": "5", "longitude": "6", "altitude": "7"}]}),
    ];
    for b in &bodies {
        let r = http
            .post(format!("{base}/v1/boards"))
            .header("X-Auth-Token", &token)
            .json(b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // A board whose location row is gone (older schemas allowed it): `location` is `[]`.
    sqlx::query(
        "DELETE FROM locations WHERE board_id = (SELECT id FROM boards WHERE name = 'bare')",
    )
    .execute(cloud.store.pool())
    .await
    .unwrap();
    // The third board as registration leaves it: an agent, a stored config and a live session.
    let pool = cloud.store.pool();
    sqlx::query(
        "UPDATE boards SET agent = 's4t', status = 'online', lr_version = '0.5.0', \
         connectivity = '{\"iface\": \"eth0\"}', config = '{\"iotronic\": {\"extra\": {}}}' \
         WHERE name = 'provisioned'",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sessions (valid, session_id, board_uuid, created_at) \
         SELECT TRUE, '12345', uuid, '2026-01-01T00:00:00' FROM boards WHERE name = 'provisioned'",
    )
    .execute(pool)
    .await
    .unwrap();

    for (path, single_fields) in [
        ("/v1/boards/detail", None),
        (
            "/v1/boards",
            Some("name,code,status,uuid,session,type,fleet,lr_version,connectivity,agent,wstun_ip"),
        ),
        (
            "/v1/boards?fields=mobile,extra,config",
            Some("mobile,extra,config"),
        ),
    ] {
        let list = get(&base, &token, path).await;
        let items = list["boards"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{path}: {list}");
        for item in items {
            let uuid = item["uuid"].as_str().unwrap();
            let single = match single_fields {
                None => get(&base, &token, &format!("/v1/boards/{uuid}")).await,
                Some(f) => get(&base, &token, &format!("/v1/boards/{uuid}?fields={f}")).await,
            };
            assert_eq!(item, &single, "{path}: list item and single GET differ");
        }
    }
    // Pagination through the rendered path: `next` appears on full pages and leads on.
    let page = get(&base, &token, "/v1/boards?limit=2&sort_key=name").await;
    assert_eq!(page["boards"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let rest = get(&base, &token, &next[base.len()..]).await;
    let names: Vec<&str> = page["boards"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["boards"].as_array().unwrap())
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bare", "provisioned", "with-loc"]);
    assert!(rest.get("next").is_none());
    let desc = get(&base, &token, "/v1/boards?sort_key=name&sort_dir=desc").await;
    let names: Vec<&str> = desc["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["with-loc", "provisioned", "bare"]);
    cloud.shutdown().await;
}

#[tokio::test]
async fn sqlite_list_items_match_single_gets() {
    scenario(None).await;
}

#[tokio::test]
async fn postgres_list_items_match_single_gets() {
    let Some(admin) = s4t_store::testing::postgres_admin_url() else {
        return;
    };
    let url = s4t_store::testing::fresh_postgres_url(&admin)
        .await
        .unwrap();
    scenario(Some(url)).await;
}

/// Bodies kept by the render cache never outlive a change: each GET after a write through
/// the API, a board's session opening and closing, or a delete sees it.
async fn cached_bodies_follow_changes(database_url: Option<String>) {
    use s4t_model::board_link::ConnectionInfo;
    let (cloud, base, token) = start(database_url).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/boards"))
        .header("X-Auth-Token", &token)
        .json(&json!({"name": "b1", "code": "K1",
                      "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let uuid = r.json::<Value>().await.unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let one = format!("/v1/boards/{uuid}");
    let names = async || {
        let list = get(&base, &token, "/v1/boards").await;
        list["boards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Twice each, so the second is served from memory.
    for _ in 0..2 {
        assert_eq!(get(&base, &token, &one).await["name"], "b1");
        assert_eq!(names().await, ["b1"]);
    }
    let r = http
        .patch(format!("{base}{one}"))
        .header("X-Auth-Token", &token)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get(&base, &token, &one).await["name"], "renamed");
    assert_eq!(names().await, ["renamed"]);

    // The board registers and connects (what the gateway does), then its session closes.
    let b = cloud.store.board_by_code("K1").await.unwrap();
    cloud
        .store
        .register_board(&b, "1", None, "h")
        .await
        .unwrap();
    let b = cloud.store.board_by_code("K1").await.unwrap();
    assert_eq!(get(&base, &token, &one).await["status"], "offline");
    cloud
        .store
        .connect_board(&b, "2", &ConnectionInfo::default())
        .await
        .unwrap();
    let shown = get(&base, &token, &one).await;
    assert_eq!(
        (shown["status"].clone(), shown["session"].clone()),
        (json!("online"), json!("2"))
    );
    cloud.store.close_session("2").await.unwrap();
    assert_eq!(get(&base, &token, &one).await["status"], "offline");

    let r = http
        .delete(format!("{base}{one}"))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let gone = http
        .get(format!("{base}{one}"))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(names().await.is_empty());
    cloud.shutdown().await;
}

#[tokio::test]
async fn sqlite_cached_bodies_follow_changes() {
    cached_bodies_follow_changes(None).await;
}

#[tokio::test]
async fn postgres_cached_bodies_follow_changes() {
    let Some(admin) = s4t_store::testing::postgres_admin_url() else {
        return;
    };
    let url = s4t_store::testing::fresh_postgres_url(&admin)
        .await
        .unwrap();
    cached_bodies_follow_changes(Some(url)).await;
}

/// A boards GET carries an `ETag`; sent back in `If-None-Match`, it gets `304 Not Modified`
/// with no body until a board changes (here: its session opens), and never names another
/// URL's body.
async fn conditional_gets_follow_changes(database_url: Option<String>) {
    use s4t_model::board_link::ConnectionInfo;
    let (cloud, base, token) = start(database_url).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/boards"))
        .header("X-Auth-Token", &token)
        .json(&json!({"name": "b1", "code": "E1",
                      "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let uuid = r.json::<Value>().await.unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let conditional = async |path: &str, tag: Option<&str>| {
        let mut req = http
            .get(format!("{base}{path}"))
            .header("X-Auth-Token", &token);
        if let Some(t) = tag {
            req = req.header("If-None-Match", t);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        (status, etag, r.text().await.unwrap())
    };
    let feed = "/v1/boards?fields=uuid,status";
    let (status, etag, body) = conditional(feed, None).await;
    assert_eq!(status, StatusCode::OK);
    let etag = etag.expect("a boards list carries an ETag");
    assert!(body.contains("registered"), "{body}");
    let (status, again, body) = conditional(feed, Some(&etag)).await;
    assert_eq!(
        (status, again.as_deref(), body.as_str()),
        (StatusCode::NOT_MODIFIED, Some(etag.as_str()), "")
    );
    // Weak comparison, and a list of tags.
    let listed = format!("\"x\", W/{etag}");
    assert_eq!(
        conditional(feed, Some(&listed)).await.0,
        StatusCode::NOT_MODIFIED
    );
    // The tag of one URL does not match another's body.
    for other in [
        "/v1/boards",
        "/v1/boards/detail",
        &format!("/v1/boards/{uuid}"),
    ] {
        let (status, tag, _) = conditional(other, Some(&etag)).await;
        assert_eq!(status, StatusCode::OK, "{other}");
        assert_ne!(tag.as_deref(), Some(etag.as_str()), "{other}");
    }
    let (_, one_tag, _) = conditional(&format!("/v1/boards/{uuid}"), None).await;
    assert_eq!(
        conditional(&format!("/v1/boards/{uuid}"), one_tag.as_deref())
            .await
            .0,
        StatusCode::NOT_MODIFIED
    );

    // The board registers and connects: the old tags no longer match.
    let b = cloud.store.board_by_code("E1").await.unwrap();
    cloud
        .store
        .register_board(&b, "1", None, "h")
        .await
        .unwrap();
    let b = cloud.store.board_by_code("E1").await.unwrap();
    cloud
        .store
        .connect_board(&b, "2", &ConnectionInfo::default())
        .await
        .unwrap();
    let (status, new_tag, body) = conditional(feed, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("online"), "{body}");
    let new_tag = new_tag.unwrap();
    assert_ne!(new_tag, etag);
    assert_eq!(
        conditional(feed, Some(&new_tag)).await.0,
        StatusCode::NOT_MODIFIED
    );
    let (status, _, body) = conditional(&format!("/v1/boards/{uuid}"), one_tag.as_deref()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("online"), "{body}");
    cloud.shutdown().await;
}

#[tokio::test]
async fn sqlite_conditional_gets_follow_changes() {
    conditional_gets_follow_changes(None).await;
}

#[tokio::test]
async fn postgres_conditional_gets_follow_changes() {
    let Some(admin) = s4t_store::testing::postgres_admin_url() else {
        return;
    };
    let url = s4t_store::testing::fresh_postgres_url(&admin)
        .await
        .unwrap();
    conditional_gets_follow_changes(Some(url)).await;
}
