//! Networks and ports through the API with the real binary and an `s4t agent` in its own
//! network namespace (root, `ip netns`, a veth to the cloud): a network created, ports on it get
//! an address from its range, a locally administered MAC and a 15-character interface name; the
//! board makes a real TAP interface with them (checked in its namespace) and removes it with the
//! port; the network cannot go while ports use it; deleting a port frees its address. (This
//! cloud's hub is on loopback, out of the board's reach, so the tunnel stays down; the data
//! plane is tested in `overlay.rs`.)

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

/// A network namespace joined to the host by a veth pair: host side `.1`, namespace side `.2`
/// of a /30. Deleted when dropped.
struct Netns {
    name: String,
    host_ip: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2) is installed");
    assert!(
        out.status.success(),
        "ip {}: {} (these tests need root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn new() -> Netns {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        let name = format!("s4tn{tag}");
        let third = u8::from_str_radix(&tag[..2], 16).unwrap();
        let (host, inner) = (format!("vh{tag}"), format!("vn{tag}"));
        let host_ip = format!("10.251.{third}.1");
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner]);
        ip(&["link", "set", &inner, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host]);
        ip(&["link", "set", &host, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("10.251.{third}.2/30"),
            "dev",
            &inner,
        ]);
        ip(&["-n", &name, "link", "set", &inner, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns { name, host_ip }
    }

    /// `ip -j` output inside the namespace.
    fn json(&self, args: &[&str]) -> Value {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-j"])
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_and_ports() {
    let ns = Netns::new();
    let dir = temp_dir("net-cloud");
    let api_port = free_port();
    let wamp = format!("{}:{}", ns.host_ip, free_port());
    let (_cloud, base) = start_cloud_with(
        &dir,
        api_port,
        0,
        &["--tunnel-addr", "127.0.0.1:0", "--wamp-addr", &wamp],
    );
    let api = Api::of(&dir, base);
    api.create_board("nb", "NET-E2E").await;
    let _agent = Proc(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, BIN, "agent", "--data-dir"])
            .arg(temp_dir("net-agent"))
            .args(["--code", "NET-E2E", "--cloud", &format!("ws://{wamp}/")])
            .args(["--ping-interval", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
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
        // The board made the interface in its namespace, as the port says.
        let shown = ns.json(&["addr", "show", "dev", vif]);
        let link = &shown[0];
        assert_eq!(link["address"], p["MAC_add"], "{link}");
        assert_eq!(link["mtu"], 1380, "{link}");
        assert!(
            link["flags"].as_array().unwrap().contains(&json!("UP")),
            "{link}"
        );
        let addr = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["family"] == "inet")
            .unwrap_or_else(|| panic!("no IPv4 on {vif}: {link}"));
        assert_eq!(
            (&addr["local"], &addr["prefixlen"]),
            (&p["ip"], &json!(30)),
            "{link}"
        );
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
        let vif = p["VIF_name"].as_str().unwrap();
        assert_eq!(
            ns.json(&["link", "show", "dev", vif]),
            Value::Null,
            "{vif} still there"
        );
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
