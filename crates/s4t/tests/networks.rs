//! Networks and ports through the API with the real binary and an online `s4t agent`: a
//! network created, ports on it get an address from its range, a locally administered MAC and
//! a 15-character interface name; the network cannot go while ports use it; deleting a port
//! frees its address. (The board-side interface and tunnel are not built yet: the port says so.)

use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_and_ports() {
    let dir = temp_dir("net-cloud");
    let (api_port, wamp_port) = (free_port(), free_port());
    let (_cloud, base) = start_cloud(&dir, api_port, wamp_port);
    let api = Api::of(&dir, base);
    api.create_board("nb", "NET-E2E").await;
    let _agent = start_agent_at(
        &temp_dir("net-agent"),
        "NET-E2E",
        &format!("ws://127.0.0.1:{wamp_port}/"),
        &[],
    );
    let start = Instant::now();
    while api
        .call(reqwest::Method::GET, "/v1/boards/nb", None)
        .await
        .1["status"]
        != "online"
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "board not online"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let (status, e) = api
        .call(
            reqwest::Method::POST,
            "/v1/networks",
            Some(json!({"name": "n1", "cidr": "10.20.0.0/30"})),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    let (status, e) = api
        .call(
            reqwest::Method::POST,
            "/v1/networks",
            Some(json!({"name": "bad", "cidr": "10.20.0.0/33"})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(e.to_string().contains("cidr"), "{e}");
    let (status, e) = api
        .call(
            reqwest::Method::PUT,
            "/v1/boards/nb/ports",
            Some(json!({"network": "nope"})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(e.to_string().contains("POST /v1/networks"), "{e}");

    // A /30 has two host addresses.
    let mut ports = Vec::new();
    for _ in 0..2 {
        let (status, p) = api
            .call(
                reqwest::Method::PUT,
                "/v1/boards/nb/ports",
                Some(json!({"network": "n1"})),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        let vif = p["VIF_name"].as_str().unwrap();
        assert!(vif.starts_with("s4t") && vif.len() == 15, "{p}");
        let mac = p["MAC_add"].as_str().unwrap();
        assert_eq!(
            u8::from_str_radix(&mac[..2], 16).unwrap() & 0b11,
            0b10,
            "{p}"
        );
        assert_eq!(p["status"]["tunnel"], "down", "{p}");
        ports.push(p);
    }
    let mut ips: Vec<&str> = ports.iter().map(|p| p["ip"].as_str().unwrap()).collect();
    ips.sort();
    assert_eq!(ips, vec!["10.20.0.1", "10.20.0.2"]);
    let (status, e) = api
        .call(
            reqwest::Method::PUT,
            "/v1/boards/nb/ports",
            Some(json!({"network": "n1"})),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert!(e.to_string().contains("no free address"), "{e}");
    let (_, n) = api
        .call(reqwest::Method::GET, "/v1/networks/n1", None)
        .await;
    assert_eq!(n["addresses"], json!({"used": 2, "free": 0}), "{n}");
    let (_, list) = api
        .call(reqwest::Method::GET, "/v1/boards/nb/ports", None)
        .await;
    assert_eq!(list["ports"].as_array().unwrap().len(), 2, "{list}");
    let (status, e) = api
        .call(reqwest::Method::DELETE, "/v1/networks/n1", None)
        .await;
    assert_eq!(status, 409, "{e}");

    // Deleting ports frees their addresses; then the network can go.
    for p in &ports {
        let (status, _) = api
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/ports/{}", p["uuid"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    let (_, n): (u16, Value) = api
        .call(reqwest::Method::GET, "/v1/networks/n1", None)
        .await;
    assert_eq!(n["addresses"]["used"], 0, "{n}");
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/v1/networks/n1", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call(reqwest::Method::GET, "/v1/networks/n1", None)
        .await;
    assert_eq!(status, 404);
}
