//! Workloads end to end, with the real binary: five `s4t agent` boards behind a TCP proxy that
//! can cut one board off (each board leaves from its own loopback address, as boards on
//! different networks would); 3 replicas spread over them; a crash-looping process restarted
//! with backoff and reported; a board cut off beyond the grace period loses its replica to
//! another board, and at no moment do more copies run than asked for, before or after it comes
//! back.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

mod common;
use common::*;

const GRACE_SECS: f64 = 3.0;

/// Writes a line to stdout, then exits with status 3 (WASI preview 1).
const TICK_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "tick from wasm\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 3))))"#;

/// A TCP proxy in front of the cloud's WAMP port. Connections from a source address in
/// `cut` are closed and refused: that board is partitioned from the cloud.
#[derive(Clone, Default)]
struct Partition {
    cut: Arc<Mutex<HashSet<IpAddr>>>,
    live: Arc<Mutex<HashMap<IpAddr, Vec<tokio::task::AbortHandle>>>>,
}

impl Partition {
    async fn start(&self, to: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, peer)) = listener.accept().await else {
                    return;
                };
                if me.cut.lock().unwrap().contains(&peer.ip()) {
                    continue; // dropped: the board cannot reach the cloud
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                me.live
                    .lock()
                    .unwrap()
                    .entry(peer.ip())
                    .or_default()
                    .push(task.abort_handle());
            }
        });
        port
    }

    fn cut(&self, ip: IpAddr) {
        self.cut.lock().unwrap().insert(ip);
        for t in self.live.lock().unwrap().remove(&ip).unwrap_or_default() {
            t.abort();
        }
    }

    fn heal(&self, ip: IpAddr) {
        self.cut.lock().unwrap().remove(&ip);
    }
}

/// Live processes whose command line holds `marker`.
fn running_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| {
            let text = String::from_utf8_lossy(cmd);
            text.contains(marker) && !text.contains("s4t")
        })
        .count()
}

impl Api {
    async fn workload(&self, name: &str) -> Value {
        let (status, w) = self
            .call(reqwest::Method::GET, &format!("/v1/workloads/{name}"), None)
            .await;
        assert_eq!(status, 200, "{w}");
        w
    }

    /// Polls the workload until `ok` holds; the last view.
    async fn wait_workload(
        &self,
        name: &str,
        limit: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let w = self.workload(name).await;
            if ok(&w) {
                return w;
            }
            assert!(
                start.elapsed() < limit,
                "workload {name} never got there: {w:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn running_boards(w: &Value) -> Vec<String> {
    w["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "running")
        .filter_map(|r| r["board_uuid"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_placed_supervised_and_moved() {
    let cloud_dir = temp_dir("wl-cloud");
    let (api_port, wamp_port) = (free_port(), free_port());
    let partition = Partition::default();
    let proxy = partition.start(wamp_port).await;
    let (_cloud, base) = start_cloud_with(
        &cloud_dir,
        api_port,
        wamp_port,
        &[
            "--tunnel-addr",
            "127.0.0.1:0",
            "--public-ports",
            &{
                let (a, b) = free_range(8);
                format!("{a}-{b}")
            },
            "--wamp-public-url",
            &format!("ws://127.0.0.1:{proxy}/"),
            "--workload-grace",
            &GRACE_SECS.to_string(),
            "--workload-interval",
            "0.3",
        ],
    );
    let api = Api::of(&cloud_dir, base);
    let mut agents = Vec::new();
    let mut source_of = HashMap::new();
    for i in 1..=5u8 {
        let (status, b) = api
            .call(
                reqwest::Method::POST,
                "/v1/boards",
                Some(json!({"name": format!("wb{i}"), "code": format!("WL-{i}"), "type": "virtual",
                    "location": [{"latitude": format!("{i}"), "longitude": "15", "altitude": "0"}]})),
            )
            .await;
        assert_eq!(status, 201, "{b}");
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i));
        source_of.insert(b["uuid"].as_str().unwrap().to_string(), ip);
        agents.push(start_agent_at(
            &temp_dir(&format!("wl-agent{i}")),
            &format!("WL-{i}"),
            &format!("ws://127.0.0.1:{proxy}/"),
            &["--source-addr", &ip.to_string()],
        ));
    }
    let start = Instant::now();
    loop {
        let (_, list) = api.call(reqwest::Method::GET, "/v1/boards", None).await;
        let online = list["boards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["status"] == "online")
            .count();
        if online == 5 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "boards not online: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bad specs are refused naming the field.
    let (status, r) = api
        .call(reqwest::Method::POST, "/v1/workloads",
            Some(json!({"name": "x", "artifact": {"command": "sleep"}, "placement": {"replicas": 0}})))
        .await;
    assert_eq!(status, 400, "{r}");
    assert!(r.to_string().contains("placement.replicas"), "{r}");

    // 3 replicas, one per board.
    let marker = format!("3000.{}", std::process::id());
    let (status, w) = api
        .call(
            reqwest::Method::POST,
            "/v1/workloads",
            Some(json!({
                "name": "sleeper", "runtime": "process",
                "artifact": {"command": "sleep", "args": [marker]},
                "env": {"MODE": "test"}, "restart": "always",
                "placement": {"replicas": 3, "spread": "board"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    let w = api
        .wait_workload("sleeper", Duration::from_secs(20), |w| {
            running_boards(w).len() == 3
        })
        .await;
    let boards: HashSet<String> = running_boards(&w).into_iter().collect();
    assert_eq!(boards.len(), 3, "{w:#}");
    assert_eq!(running_with(&marker), 3);
    // Applying the same spec again changes nothing.
    let (status, again) = api
        .call(
            reqwest::Method::POST,
            "/v1/workloads",
            Some(w["spec"].clone()),
        )
        .await;
    assert_eq!(
        (status, again["generation"].as_i64()),
        (200, w["generation"].as_i64()),
        "{again}"
    );

    // A crash loop: restarted with growing backoff, exit code and restarts reported, logs kept.
    let (status, c) = api
        .call(reqwest::Method::POST, "/v1/workloads", Some(json!({
            "name": "crasher", "artifact": {"command": "sh", "args": ["-c", "echo boom $MODE; exit 3"]},
            "env": {"MODE": "loop"}, "restart": "on-failure", "placement": {"board": "wb5"},
        })))
        .await;
    assert_eq!(status, 201, "{c}");
    let c = api
        .wait_workload("crasher", Duration::from_secs(20), |w| {
            w["replicas"][0]["restarts"].as_i64().unwrap_or(0) >= 3
        })
        .await;
    let r = &c["replicas"][0];
    assert_eq!(r["exit_code"], 3, "{c:#}");
    assert!(
        ["backoff", "running"].contains(&r["state"].as_str().unwrap()),
        "{c:#}"
    );
    let (status, logs) = api
        .call(
            reqwest::Method::GET,
            "/v1/workloads/crasher/logs?replica=0&lines=50",
            None,
        )
        .await;
    assert_eq!(status, 200, "{logs}");
    let text = logs["lines"].as_str().unwrap();
    assert!(text.contains("boom loop"), "{text}");
    assert!(text.contains("exited with code 3"), "{text}");
    for (n, secs) in [(1, 1), (2, 2), (3, 4)] {
        assert!(text.contains(&format!("restart {n} in {secs} s")), "{text}");
    }
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/v1/workloads/crasher", None)
        .await;
    assert_eq!(status, 204);

    // What a replica leaves behind in its process group ends with it.
    let orphan = format!("3001.{}", std::process::id());
    let (status, f) = api
        .call(reqwest::Method::POST, "/v1/workloads", Some(json!({
            "name": "forker", "artifact": {"command": "sh", "args": ["-c", format!("sleep {orphan} & exit 0")]},
            "restart": "never", "placement": {"board": "wb3"},
        })))
        .await;
    assert_eq!(status, 201, "{f}");
    api.wait_workload("forker", Duration::from_secs(20), |w| {
        w["replicas"][0]["state"] == "exited"
    })
    .await;
    let start = Instant::now();
    while running_with(&orphan) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the replica's child outlived it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/v1/workloads/forker", None)
        .await;
    assert_eq!(status, 204);

    // A WASM workload: the module by digest (inline), run in the agent's sandbox, its stdout in
    // the log, its exit status reported and restarted per policy. A module that does not match
    // its digest is refused by the board.
    let module = wat::parse_str(TICK_WAT).unwrap();
    let digest = {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&module)))
    };
    let inline = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&module)
    };
    let (status, t) = api
        .call(
            reqwest::Method::POST,
            "/v1/workloads",
            Some(json!({
                "name": "ticker", "runtime": "wasm",
                "artifact": {"digest": digest, "inline": inline},
                "limits": {"fuel": 10_000_000, "memory_mib": 4},
                "restart": "on-failure", "placement": {"board": "wb4"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let t = api
        .wait_workload("ticker", Duration::from_secs(20), |w| {
            w["replicas"][0]["restarts"].as_i64().unwrap_or(0) >= 1
        })
        .await;
    assert_eq!(t["replicas"][0]["exit_code"], 3, "{t:#}");
    let (_, logs) = api
        .call(
            reqwest::Method::GET,
            "/v1/workloads/ticker/logs?lines=20",
            None,
        )
        .await;
    let text = logs["lines"].as_str().unwrap_or_default();
    assert!(text.contains("tick from wasm"), "{logs}");
    assert!(text.contains("started the WASM module"), "{logs}");
    let (status, bad) = api
        .call(
            reqwest::Method::POST,
            "/v1/workloads",
            Some(json!({
                "name": "forged", "runtime": "wasm",
                "artifact": {"digest": format!("sha256:{}", "0".repeat(64)), "inline": inline},
                "placement": {"board": "wb4"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{bad}");
    let bad = api
        .wait_workload("forged", Duration::from_secs(20), |w| {
            w["replicas"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("digest"))
        })
        .await;
    assert_ne!(bad["replicas"][0]["state"], "running", "{bad:#}");
    for name in ["ticker", "forged"] {
        let (status, _) = api
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/workloads/{name}"),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }

    // Exposed ports become services, reachable on a public port while the replica runs, gone
    // with the workload.
    let web_port = free_port();
    let (status, web) = api
        .call(
            reqwest::Method::POST,
            "/v1/workloads",
            Some(json!({
                "name": "web", "artifact": {"command": "python3",
                    "args": ["-m", "http.server", web_port.to_string(), "--bind", "127.0.0.1"]},
                "restart": "always", "placement": {"board": "wb4"}, "expose": [{"port": web_port}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{web}");
    let web = api
        .wait_workload("web", Duration::from_secs(30), |w| {
            w["exposed"][0]["exposed"][0]["public_port"].is_u64()
        })
        .await;
    let public = web["exposed"][0]["exposed"][0]["public_port"]
        .as_u64()
        .unwrap() as u16;
    let start = Instant::now();
    let page = loop {
        match reqwest::get(format!("http://127.0.0.1:{public}/")).await {
            Ok(r) if r.status() == 200 => break r.text().await.unwrap(),
            other => assert!(start.elapsed() < Duration::from_secs(20), "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("Directory listing"), "{page}");
    // The port leaves the spec: its exposure closes and its service goes.
    let mut spec = web["spec"].clone();
    spec["expose"] = json!([]);
    let (status, _) = api
        .call(reqwest::Method::POST, "/v1/workloads", Some(spec))
        .await;
    assert_eq!(status, 200);
    api.wait_workload("web", Duration::from_secs(20), |w| {
        w["exposed"] == json!([])
    })
    .await;
    assert!(TcpStream::connect(("127.0.0.1", public)).await.is_err());
    // Back in the spec: exposed again, then the workload is deleted with it.
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/v1/workloads",
            Some(web["spec"].clone()),
        )
        .await;
    assert_eq!(status, 200);
    let web = api
        .wait_workload("web", Duration::from_secs(30), |w| {
            w["exposed"][0]["exposed"][0]["public_port"].is_u64()
        })
        .await;
    let public = web["exposed"][0]["exposed"][0]["public_port"]
        .as_u64()
        .unwrap() as u16;
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/v1/workloads/web", None)
        .await;
    assert_eq!(status, 204);
    assert!(TcpStream::connect(("127.0.0.1", public)).await.is_err());
    let (_, services) = api.call(reqwest::Method::GET, "/v1/services", None).await;
    assert_eq!(services["services"], json!([]), "{services}");

    // Cut one board off. Its agent stops the replica when its lease runs out; the cloud moves
    // the replica after the grace period; never more than 3 copies run meanwhile.
    let victim = w["replicas"][0]["board_uuid"].as_str().unwrap().to_string();
    let old_replica = w["replicas"][0]["uuid"].as_str().unwrap().to_string();
    let ip = source_of[&victim];
    partition.cut(ip);
    let cut_at = Instant::now();
    let (mut most, mut least) = (0, usize::MAX);
    let moved = loop {
        let copies = running_with(&marker);
        (most, least) = (most.max(copies), least.min(copies));
        let w = api.workload("sleeper").await;
        let boards = running_boards(&w);
        if boards.len() == 3 && !boards.contains(&victim) && running_with(&marker) == 3 {
            break w;
        }
        assert!(
            cut_at.elapsed() < Duration::from_secs(30),
            "replica never moved: {w:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(most <= 3, "{most} copies ran at once");
    // The cut-off board stopped its copy (lease) before the cloud started another.
    assert_eq!(
        least, 2,
        "the old copy was not stopped before the new one started"
    );
    assert!(
        cut_at.elapsed() >= Duration::from_secs_f64(GRACE_SECS),
        "moved before the grace period"
    );
    let uuids: Vec<&str> = moved["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert!(
        !uuids.contains(&old_replica.as_str()),
        "the moved replica has a new id: {moved:#}"
    );

    // The board comes back: it is told nothing to run twice; still 3 copies, on 3 boards.
    partition.heal(ip);
    let start = Instant::now();
    loop {
        let (_, b) = api
            .call(reqwest::Method::GET, &format!("/v1/boards/{victim}"), None)
            .await;
        if b["status"] == "online" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "board not back: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..30 {
        assert_eq!(running_with(&marker), 3);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let w = api.workload("sleeper").await;
    let boards: HashSet<String> = running_boards(&w).into_iter().collect();
    assert_eq!(boards.len(), 3, "{w:#}");

    // Delete: every copy stops.
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/v1/workloads/sleeper", None)
        .await;
    assert_eq!(status, 204);
    let start = Instant::now();
    while running_with(&marker) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "copies left after delete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(agents);
}
