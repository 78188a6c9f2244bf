//! Memory per idle session: a router in a child process (this test binary re-run as
//! `router_child`), many idle WebSocket sessions opened from here, and the child's resident
//! set size read from /proc before and after.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use s4t_wamp::{Router, RouterConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const CHILD_ENV: &str = "S4T_WAMP_MEMORY_CHILD";
/// Sessions opened; `S4T_WAMP_MEMORY_SESSIONS` overrides (a multiple of 100).
const SESSIONS: usize = 2000;
/// The cloud's budget for a whole process holding 100k idle boards, per board.
const BUDGET_BYTES: usize = 30 * 1024;

/// Runs only when spawned by `idle_sessions_fit_the_budget`.
#[test]
#[ignore = "spawned by idle_sessions_fit_the_budget"]
fn router_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        let router = Router::new(RouterConfig::default());
        tokio::spawn(async move { router.serve(listener).await });
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await
        .unwrap();
    });
}

fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

async fn idle_session(port: u16) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!("ws://127.0.0.1:{port}/")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .unwrap();
    ws.send(WsMessage::text(
        r#"[1,"s4t",{"roles":{"caller":{},"callee":{},"subscriber":{},"publisher":{}}}]"#,
    ))
    .await
    .unwrap();
    match ws.next().await {
        Some(Ok(WsMessage::Text(t))) => assert!(t.starts_with("[2,"), "{t}"),
        other => panic!("no WELCOME: {other:?}"),
    }
    ws
}

/// A measurement, so it runs from `bench/router-memory.sh`, not in the test suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/router-memory.sh runs it"]
async fn idle_sessions_fit_the_budget() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("no /proc: skipping");
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["router_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("child output").unwrap();
        if let Some(port) = line.strip_prefix("PORT ") {
            break port.trim().parse().unwrap();
        }
    };
    let sessions_wanted: usize = std::env::var("S4T_WAMP_MEMORY_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SESSIONS);
    // Warm up allocator and runtime so the baseline is not the empty process.
    let mut sessions = Vec::with_capacity(sessions_wanted + 50);
    for _ in 0..50 {
        sessions.push(idle_session(port).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_bytes(pid);
    for _ in 0..sessions_wanted / 100 {
        let batch: Vec<_> = (0..100).map(|_| tokio::spawn(idle_session(port))).collect();
        for handle in batch {
            sessions.push(handle.await.unwrap());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes(pid);
    let per_session = after.saturating_sub(before) / sessions_wanted;
    println!(
        "router RSS: {} KiB before, {} KiB after {sessions_wanted} idle sessions: {} bytes per session",
        before / 1024,
        after / 1024,
        per_session
    );
    drop(sessions);
    drop(child.stdin.take());
    let _ = child.wait();
    assert!(
        per_session <= BUDGET_BYTES,
        "{per_session} bytes per idle session, budget {BUDGET_BYTES}"
    );
}
