//! The overlay network end to end, on the kernel's real TAP path (root, `ip netns`, veth,
//! iperf3, tcpdump, nftables): an `s4t cloud` in a cloud namespace with a bridge, and three
//! boards in their own namespaces, each an `s4t agent` joined to the bridge by a veth. Boards A
//! and B have ports on network N1, board C on N2 (same address range, another network).
//!
//! - A pings B and carries an iperf3 TCP stream through the hub; full-size frames pass, and a
//!   frame above the MTU is refused at the sender ("message too long"), not lost;
//! - the cloud host joins N1 through its bridge TAP (`--bridge-networks`, N1's gateway address);
//! - C cannot reach A: its ARP never arrives on A's interface;
//! - a capture on A's underlay veth shows sealed packets, never the ping's payload marker
//!   (which a capture on B's overlay interface does show);
//! - A's underlay down for 10 s, then up: the overlay recovers by itself;
//! - UDP from A to the hub dropped (nftables): A moves to the WebSocket path and reaches B;
//! - the cloud restarts: the tunnels come back;
//! - deleting a port removes its interface, frees its address and ends its session.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

const MARKER: &str = "5e4c7e75a1e7feed";
/// N1's gateway: the cloud host's address on N1 (`--bridge-networks`).
const GATEWAY: &str = "10.91.0.1";

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is not installed ({e}): scripts/test.sh installs it"))
}

fn ok(cmd: &str, args: &[&str]) {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {}: {} (these tests need root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and links; removed when dropped.
struct Topology {
    tag: String,
    cloud: String,
    boards: Vec<String>,
    /// The cloud's address on the bridge, and its API address (reachable from the test).
    cloud_ip: String,
    api_ip: String,
}

impl Topology {
    fn new() -> Topology {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..5].to_string();
        let third = u8::from_str_radix(&tag[..2], 16).unwrap();
        let cloud = format!("s4tcl{tag}");
        let boards: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|b| format!("s4tb{b}{tag}"))
            .collect();
        let t = Topology {
            cloud_ip: format!("10.252.{third}.1"),
            api_ip: format!("10.253.{third}.2"),
            tag,
            cloud,
            boards,
        };
        let nc = t.cloud.as_str();
        ok("ip", &["netns", "add", nc]);
        ok("ip", &["-n", nc, "link", "set", "lo", "up"]);
        ok("ip", &["-n", nc, "link", "add", "br0", "type", "bridge"]);
        ok(
            "ip",
            &[
                "-n",
                nc,
                "addr",
                "add",
                &format!("{}/24", t.cloud_ip),
                "dev",
                "br0",
            ],
        );
        ok("ip", &["-n", nc, "link", "set", "br0", "up"]);
        let host = format!("oh{}", t.tag);
        ok(
            "ip",
            &[
                "link", "add", &host, "type", "veth", "peer", "name", "api", "netns", nc,
            ],
        );
        ok(
            "ip",
            &["addr", "add", &format!("10.253.{third}.1/30"), "dev", &host],
        );
        ok("ip", &["link", "set", &host, "up"]);
        ok(
            "ip",
            &[
                "-n",
                nc,
                "addr",
                "add",
                &format!("{}/30", t.api_ip),
                "dev",
                "api",
            ],
        );
        ok("ip", &["-n", nc, "link", "set", "api", "up"]);
        for (i, ns) in t.boards.iter().enumerate() {
            ok("ip", &["netns", "add", ns]);
            ok("ip", &["-n", ns, "link", "set", "lo", "up"]);
            let uplink = format!("u{i}");
            ok(
                "ip",
                &[
                    "-n", nc, "link", "add", &uplink, "type", "veth", "peer", "name", "u0",
                    "netns", ns,
                ],
            );
            ok(
                "ip",
                &["-n", nc, "link", "set", &uplink, "master", "br0", "up"],
            );
            ok(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("10.252.{third}.{}/24", 11 + i),
                    "dev",
                    "u0",
                ],
            );
            ok("ip", &["-n", ns, "link", "set", "u0", "up"]);
        }
        t
    }

    fn exec(&self, ns: &str, args: &[&str]) -> std::process::Output {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn ping(&self, ns: &str, ip: &str, count: u32) -> bool {
        self.exec(
            ns,
            &[
                "ping",
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "1",
                "-q",
                "-p",
                MARKER,
                ip,
            ],
        )
        .status
        .success()
    }

    /// `ip -j -s link show dev VIF` in `ns`.
    fn link(&self, ns: &str, vif: &str) -> Value {
        let out = self.exec(ns, &["ip", "-j", "-s", "link", "show", "dev", vif]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn start_cloud(&self, dir: &std::path::Path, api_port: u16, ports: [u16; 3]) -> Proc {
        let at = |p: u16| format!("{}:{p}", self.cloud_ip);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.cloud, BIN, "cloud", "--data-dir"])
            .arg(dir)
            .args(["--api-addr", &format!("{}:{api_port}", self.api_ip)])
            .args(["--wamp-addr", &at(ports[0]), "--tunnel-addr", &at(ports[1])])
            .args(["--overlay-addr", &at(ports[2]), "--wamp-ping-interval", "1"])
            .arg("--bridge-networks")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("overlay network hub on") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Proc(child)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.boards.iter().chain([&self.cloud]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("oh{}", self.tag)])
            .status();
    }
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn port_status(api: &Api, port: &str) -> Value {
    api.call(reqwest::Method::GET, &format!("/v1/ports/{port}"), None)
        .await
        .1["status"]
        .clone()
}

/// tcpdump in `ns` on `dev` while `during` runs; the bytes captured.
fn capture(t: &Topology, ns: &str, dev: &str, during: impl FnOnce()) -> Vec<u8> {
    let file = std::env::temp_dir().join(format!("s4t-cap-{}.pcap", uuid::Uuid::new_v4()));
    let mut dump = Proc(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "--immediate-mode",
                "-i",
                dev,
                "-U",
                "-s",
                "0",
                "-w",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // tcpdump says "listening on" once it captures.
    let mut err = BufReader::new(dump.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("listening on"),
        "tcpdump in {ns} on {dev}: {line}"
    );
    // Drained, so that tcpdump's last words never meet a closed pipe.
    std::thread::spawn(move || for _ in err.lines() {});
    during();
    std::thread::sleep(Duration::from_millis(300));
    dump.signal("INT");
    let _ = dump.0.wait();
    let bytes = std::fs::read(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    let _ = t;
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_join_encrypted_l2_networks() {
    let t = Topology::new();
    let dir = temp_dir("overlay-cloud");
    let api_port = free_port();
    let ports = [free_port(), free_port(), free_port()];
    let mut cloud = t.start_cloud(&dir, api_port, ports);
    let api = Api::of(&dir, format!("http://{}:{api_port}", t.api_ip));
    let wamp = format!("ws://{}:{}/", t.cloud_ip, ports[0]);
    let mut agents = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let code = format!("OVL-{name}-{}", t.tag);
        api.create_board(name, &code).await;
        agents.push(Proc(
            Command::new("ip")
                .args(["netns", "exec", &t.boards[i], BIN, "agent", "--data-dir"])
                .arg(temp_dir(&format!("overlay-{name}")))
                .args(["--code", &code, "--cloud", &wamp, "--ping-interval", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
    }
    for name in ["a", "b", "c"] {
        wait_until("board online", Duration::from_secs(20), || async {
            api.call(reqwest::Method::GET, &format!("/v1/boards/{name}"), None)
                .await
                .1["status"]
                == "online"
        })
        .await;
    }
    // N1 has a gateway address, which the cloud's bridge TAP takes; N2 has none.
    for body in [
        json!({"name": "n1", "cidr": "10.91.0.0/24", "gateway": GATEWAY}),
        json!({"name": "n2", "cidr": "10.91.0.0/24"}),
    ] {
        let (status, n) = api
            .call(reqwest::Method::POST, "/v1/networks", Some(body))
            .await;
        assert_eq!(status, 201, "{n}");
        assert!(n["bridge"]["interface"].is_string(), "{n}");
        assert!(n["bridge"]["error"].is_null(), "{n}");
    }
    let port = |board: &'static str, network: &'static str| {
        let api = &api;
        async move {
            let (status, p) = api
                .call(
                    reqwest::Method::PUT,
                    &format!("/v1/boards/{board}/ports"),
                    Some(json!({ "network": network })),
                )
                .await;
            assert_eq!(status, 201, "{p}");
            p
        }
    };
    let pa = port("a", "n1").await;
    let pb = port("b", "n1").await;
    let mut pc = port("c", "n2").await;
    while pc["ip"] == pa["ip"] || pc["ip"] == GATEWAY {
        // Same range, separate IPAM: C must hold neither A's address nor N1's gateway for the
        // isolation checks.
        let again = port("c", "n2").await;
        api.call(
            reqwest::Method::DELETE,
            &format!("/v1/ports/{}", pc["uuid"].as_str().unwrap()),
            None,
        )
        .await;
        pc = again;
    }
    let (ns_a, ns_b, ns_c) = (&t.boards[0], &t.boards[1], &t.boards[2]);
    let uuid = |p: &Value| p["uuid"].as_str().unwrap().to_string();
    let ip = |p: &Value| p["ip"].as_str().unwrap().to_string();
    let vif = |p: &Value| p["VIF_name"].as_str().unwrap().to_string();
    for p in [&pa, &pb, &pc] {
        wait_until("tunnel up", Duration::from_secs(20), || async {
            port_status(&api, &uuid(p)).await["tunnel"] == "up"
        })
        .await;
    }
    let status = port_status(&api, &uuid(&pa)).await;
    assert_eq!(status["transport"], "udp", "{status}");
    assert!(status["last_handshake"].is_string(), "{status}");

    // Full-size frames pass (MTU 1380: 1,352 bytes of ICMP payload with DF set); one byte
    // more is refused at the sender with "message too long", never lost silently.
    let full = t.exec(
        ns_a,
        &[
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "1352",
            &ip(&pb),
        ],
    );
    assert!(
        full.status.success(),
        "full-size frames: {}",
        String::from_utf8_lossy(&full.stdout)
    );
    let over = t.exec(
        ns_a,
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "1353",
            &ip(&pb),
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&over.stdout),
        String::from_utf8_lossy(&over.stderr)
    );
    assert!(
        !over.status.success() && said.contains("message too long"),
        "an oversize frame must be refused loudly: {said}"
    );

    // A reaches B; an iperf3 TCP stream goes through.
    assert!(
        t.ping(ns_a, &ip(&pb), 3),
        "A cannot ping B through the overlay"
    );
    let mut server = Proc(
        Command::new("ip")
            .args(["netns", "exec", ns_b, "iperf3", "-s", "-1", "-B", &ip(&pb)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = t.exec(ns_a, &["iperf3", "-c", &ip(&pb), "-t", "2", "-J"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let received = report["end"]["sum_received"]["bytes"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(received > 1e6, "iperf3 through the overlay: {report}");
    let _ = server.0.wait();
    let status = port_status(&api, &uuid(&pb)).await;
    assert!(
        status["bytes_to_board"].as_f64().unwrap() > 1e6,
        "B's counters did not see the stream: {status}"
    );

    // The cloud host is on N1 through its bridge TAP, both ways; not on N2.
    assert!(
        t.ping(ns_a, GATEWAY, 2),
        "A cannot reach the cloud's bridge"
    );
    assert!(
        t.ping(&t.cloud, &ip(&pb), 2),
        "the cloud host cannot reach B"
    );
    assert!(!t.ping(ns_c, GATEWAY, 2), "C reached N1's gateway from N2");

    // C, on another network with the same range, cannot reach A: none of its frames (its
    // ARP requests carry its MAC) arrives on A's interface.
    let mac = |p: &Value| -> Vec<u8> {
        p["MAC_add"]
            .as_str()
            .unwrap()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    };
    let on_a = capture(&t, ns_a, &vif(&pa), || {
        assert!(!t.ping(ns_c, &ip(&pa), 3), "C reached A across networks");
        // Control: B's frames on N1 do arrive, so the capture sees what comes.
        assert!(t.ping(ns_b, &ip(&pa), 2), "B cannot ping A");
    });
    assert!(
        contains(&on_a, &mac(&pb)),
        "control: B's frames should show on A's interface"
    );
    assert!(
        !contains(&on_a, &mac(&pc)),
        "a frame from C (network N2) arrived on A's N1 interface"
    );

    // The underlay carries sealed packets only; the overlay interface carries the marker.
    let marker = hex::decode(MARKER).unwrap();
    let underlay = capture(&t, &t.cloud, "u0", || {
        assert!(t.ping(ns_a, &ip(&pb), 5));
    });
    assert!(underlay.len() > 5 * 100, "the underlay capture saw nothing");
    assert!(
        !contains(&underlay, &marker),
        "the ping's payload is readable on the underlay"
    );
    let overlay_side = capture(&t, ns_b, &vif(&pb), || {
        assert!(t.ping(ns_a, &ip(&pb), 3));
    });
    assert!(
        contains(&overlay_side, &marker),
        "control: the marker should show on B's overlay interface ({} bytes captured)",
        overlay_side.len()
    );

    // A's underlay down for 10 s: the overlay comes back by itself.
    ok("ip", &["-n", ns_a, "link", "set", "u0", "down"]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    ok("ip", &["-n", ns_a, "link", "set", "u0", "up"]);
    wait_until(
        "overlay after link flap",
        Duration::from_secs(40),
        || async { t.ping(ns_a, &ip(&pb), 1) },
    )
    .await;

    // UDP to the hub blocked in A: the WebSocket path carries A's frames.
    let hub_port = ports[2].to_string();
    ok(
        "ip",
        &[
            "netns", "exec", ns_a, "nft", "add", "table", "inet", "s4tblock",
        ],
    );
    ok(
        "ip",
        &[
            "netns",
            "exec",
            ns_a,
            "nft",
            "add",
            "chain",
            "inet",
            "s4tblock",
            "out",
            "{ type filter hook output priority 0; }",
        ],
    );
    ok(
        "ip",
        &[
            "netns", "exec", ns_a, "nft", "add", "rule", "inet", "s4tblock", "out", "udp", "dport",
            &hub_port, "drop",
        ],
    );
    wait_until(
        "fallback to the WebSocket path",
        Duration::from_secs(60),
        || async { port_status(&api, &uuid(&pa)).await["transport"] == "websocket" },
    )
    .await;
    wait_until(
        "B reached over the fallback",
        Duration::from_secs(20),
        || async { t.ping(ns_a, &ip(&pb), 1) },
    )
    .await;
    ok(
        "ip",
        &[
            "netns", "exec", ns_a, "nft", "delete", "table", "inet", "s4tblock",
        ],
    );

    // The cloud restarts: the tunnels come back, without any call to the boards.
    cloud.kill9();
    cloud = t.start_cloud(&dir, api_port, ports);
    wait_until(
        "overlay after cloud restart",
        Duration::from_secs(60),
        || async { t.ping(ns_a, &ip(&pb), 1) },
    )
    .await;
    assert!(
        t.ping(ns_a, GATEWAY, 2),
        "the bridge did not come back with the cloud"
    );
    let (_, overlay) = api.call(reqwest::Method::GET, "/v1/overlay", None).await;
    assert!(
        overlay["sessions"].as_array().unwrap().len() >= 2,
        "{overlay}"
    );
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("s4t_overlay_handshakes_accepted_total"),
        "{metrics}"
    );

    // Deleting A's port removes the interface, frees the address and ends the session.
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/ports/{}", uuid(&pa)),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        t.link(ns_a, &vif(&pa)),
        Value::Null,
        "A's TAP is still there"
    );
    let (_, n1) = api
        .call(reqwest::Method::GET, "/v1/networks/n1", None)
        .await;
    assert_eq!(n1["addresses"]["used"], 1, "{n1}");
    let (_, overlay) = api.call(reqwest::Method::GET, "/v1/overlay", None).await;
    assert!(
        !overlay["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["port"] == pa["uuid"]),
        "{overlay}"
    );
    drop(cloud);
    drop(agents);
}
