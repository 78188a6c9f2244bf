//! Service tunnels end to end, with the real binary: a TCP echo service on the board side,
//! exposed through the REST API, reached on its public port through `s4t cloud`'s tunnel server
//! and `s4t agent`'s tunnel client. 100 concurrent connections with half-close, 100 MB each way
//! on one connection, the tunnel back by itself after the cloud is killed (SIGKILL) and after the
//! agent is killed, the port closed and given back on disable. A raw wstun client written from
//! the protocol rules checks the tunnel server's refusals.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

mod common;
use common::*;

const BOARD: &str = "tb";
const CODE: &str = "TUNNELS-E2E";

fn rand_u64() -> u64 {
    let u = uuid::Uuid::new_v4();
    u64::from_le_bytes(u.as_bytes()[..8].try_into().unwrap())
}

struct Cloud {
    dir: PathBuf,
    api_port: u16,
    wamp_port: u16,
    tunnel_port: u16,
    ports: (u16, u16),
}

impl Cloud {
    fn start(&self, extra: &[&str]) -> Proc {
        let tunnel = format!("127.0.0.1:{}", self.tunnel_port);
        let ports = format!("{}-{}", self.ports.0, self.ports.1);
        let mut args = vec!["--tunnel-addr", &tunnel, "--public-ports", &ports];
        args.extend_from_slice(extra);
        let (p, _) = start_cloud_with(&self.dir, self.api_port, self.wamp_port, &args);
        p
    }
}

fn start_agent(dir: &Path, wamp_port: u16) -> Proc {
    start_agent_at(dir, CODE, &format!("ws://127.0.0.1:{wamp_port}/"), &[])
}

/// An echo service: writes back what it reads, and closes its side once the client closed its.
async fn echo_service() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    port
}

/// A deterministic byte stream (xorshift), so both ends can check 100 MB without keeping it.
struct Pattern(u64);

impl Pattern {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Sends `total` bytes of a pattern while reading the echo; true when every byte came back in
/// order and the far side then closed.
async fn echo_round(port: u16, seed: u64, total: usize) -> Result<(), String> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect {port}: {e}"))?;
    let (mut r, mut w) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let mut pattern = Pattern(seed);
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = buf.len().min(total - sent);
            pattern.fill(&mut buf[..n]);
            w.write_all(&buf[..n]).await?;
            sent += n;
        }
        // Half-close: the echo answers everything, then closes its side.
        w.shutdown().await?;
        Ok::<_, std::io::Error>(w)
    });
    let mut expected = Pattern(seed);
    let mut want = vec![0u8; 64 * 1024];
    let mut got = vec![0u8; 64 * 1024];
    let mut received = 0usize;
    // Pattern chunks are made in 64 KiB blocks by the writer, so compare by the same blocks.
    let mut block_left = 0usize;
    let mut block_at = 0usize;
    loop {
        let n = r
            .read(&mut got)
            .await
            .map_err(|e| format!("read after {received} bytes: {e}"))?;
        if n == 0 {
            break;
        }
        let mut i = 0;
        while i < n {
            if block_left == 0 {
                let len = want.len().min(total.saturating_sub(received + i));
                if len == 0 {
                    return Err(format!("more than {total} bytes came back"));
                }
                expected.fill(&mut want[..len]);
                block_left = len;
                block_at = 0;
            }
            let take = block_left.min(n - i);
            if got[i..i + take] != want[block_at..block_at + take] {
                return Err(format!("byte {} differs", received + i));
            }
            block_at += take;
            block_left -= take;
            i += take;
        }
        received += n;
    }
    writer.await.unwrap().map_err(|e| format!("write: {e}"))?;
    if received != total {
        return Err(format!("{received} of {total} bytes came back"));
    }
    Ok(())
}

impl Api {
    async fn board_status(&self) -> Value {
        self.call(reqwest::Method::GET, &format!("/v1/boards/{BOARD}"), None)
            .await
            .1["status"]
            .clone()
    }

    async fn wait_online(&self, limit: Duration) {
        let start = Instant::now();
        while self.board_status().await != "online" {
            assert!(start.elapsed() < limit, "board not online after {limit:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn service_action(&self, service: &str, action: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/boards/{BOARD}/services/{service}/action"),
            Some(json!({"action": action})),
        )
        .await
    }

    async fn exposed(&self) -> Vec<Value> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/boards/{BOARD}/services"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["exposed"].as_array().unwrap().clone()
    }
}

/// Retries an echo round until it passes (a tunnel coming back by itself).
async fn wait_echo(port: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match echo_round(port, rand_u64() | 1, 1000).await {
            Ok(()) => return start.elapsed(),
            Err(e) => assert!(
                start.elapsed() < limit,
                "no echo on port {port} after {limit:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A wstun handshake as a stock client would make it; the HTTP status and body of a refusal.
async fn wstun_handshake(
    tunnel_port: u16,
    query: &str,
    subprotocol: Option<&str>,
    bearer: Option<&str>,
) -> Result<String, (u16, String)> {
    let url = format!("ws://127.0.0.1:{tunnel_port}/?{query}");
    let mut req = url.as_str().into_client_request().unwrap();
    if let Some(p) = subprotocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    if let Some(b) = bearer {
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {b}")).unwrap(),
        );
    }
    let tcp = TcpStream::connect(("127.0.0.1", tunnel_port))
        .await
        .unwrap();
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((_, resp)) => Ok(resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err((
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("wstun handshake to {url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tunnels_end_to_end() {
    let cloud = Cloud {
        dir: temp_dir("tunnels-cloud"),
        api_port: free_port(),
        wamp_port: free_port(),
        tunnel_port: free_port(),
        ports: free_range(6),
    };
    let agent_dir = temp_dir("tunnels-agent");
    let mut cloud_proc = cloud.start(&[]);
    let api = Api::of(&cloud.dir, format!("http://127.0.0.1:{}", cloud.api_port));
    let body = api.create_board(BOARD, CODE).await;
    let board_uuid = body["uuid"].as_str().unwrap().to_string();
    let mut agent = start_agent(&agent_dir, cloud.wamp_port);
    api.wait_online(Duration::from_secs(15)).await;

    let local_port = echo_service().await;
    let (status, svc) = api
        .call(
            reqwest::Method::POST,
            "/v1/services",
            Some(json!({"name": "echo", "port": local_port, "protocol": "TCP"})),
        )
        .await;
    assert_eq!(status, 201, "{svc}");
    let service = svc["uuid"].as_str().unwrap().to_string();

    // Enable: the board's Lightning-rod reply, and a public port from the configured range.
    let (status, reply) = api.service_action(&service, "ServiceEnable").await;
    assert_eq!(status, 200, "{reply}");
    let exposed = api.exposed().await;
    assert_eq!(exposed.len(), 1, "{exposed:?}");
    let public = exposed[0]["public_port"].as_u64().unwrap() as u16;
    assert!(
        (cloud.ports.0..=cloud.ports.1).contains(&public),
        "{public}"
    );
    assert_eq!(
        reply,
        format!("Cloud service 'echo' exposed on port {public} on 127.0.0.1"),
        "{reply}"
    );
    // Enabling twice is refused with the reason, and takes no second port.
    let (status, again) = api.service_action(&service, "ServiceEnable").await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(api.exposed().await.len(), 1);

    // 100 connections at once, each with its own data and a half-close.
    let rounds: Vec<_> = (0..100u64)
        .map(|i| tokio::spawn(echo_round(public, i * 7919 + 1, 32 * 1024 + i as usize)))
        .collect();
    for (i, r) in rounds.into_iter().enumerate() {
        r.await
            .unwrap()
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
    }
    // 100 MB each way on one connection, checked byte for byte.
    let t = Instant::now();
    echo_round(public, 0x5eed, 100 * 1024 * 1024)
        .await
        .unwrap_or_else(|e| panic!("100 MB round: {e}"));
    eprintln!("100 MB each way in {:?}", t.elapsed());

    // The board reports its tunnel.
    let (status, st) = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/boards/{BOARD}/services/status"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{st}");
    let sockets = st["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "{st}");
    let line = sockets[0].as_str().unwrap();
    assert!(
        line.contains(&format!("public port {public}, up")),
        "{line}"
    );

    // The tunnel server's refusals, as a stock wstun client meets them.
    let query = format!("dst=127.0.0.1:{public}&uuid={board_uuid}");
    let (code, why) = wstun_handshake(cloud.tunnel_port, &query, Some("tunnel-protocol"), None)
        .await
        .unwrap_err();
    assert_eq!(code, 401);
    assert!(why.starts_with("Request unauthorized!"), "{why}");
    assert!(why.contains("--allow-anonymous-boards"), "{why}");
    let (code, why) = wstun_handshake(
        cloud.tunnel_port,
        &query,
        Some("tunnel-protocol"),
        Some("not-the-secret"),
    )
    .await
    .unwrap_err();
    assert_eq!((code, why.contains("wrong secret")), (401, true), "{why}");
    let free = (cloud.ports.0..=cloud.ports.1)
        .find(|p| *p != public)
        .unwrap();
    let (code, why) = wstun_handshake(
        cloud.tunnel_port,
        &format!("dst=127.0.0.1:{free}&uuid={board_uuid}"),
        Some("tunnel-protocol"),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code, why.contains("is not allocated to board")),
        (401, true),
        "{why}"
    );
    let (code, why) = wstun_handshake(
        cloud.tunnel_port,
        &format!("id={}", uuid::Uuid::new_v4()),
        Some("tunnel-protocol"),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code, why.contains("waits for its data socket")),
        (404, true),
        "{why}"
    );
    let (code, why) = wstun_handshake(cloud.tunnel_port, &query, None, None)
        .await
        .unwrap_err();
    assert_eq!(
        (code, why.contains("tunnel-protocol")),
        (400, true),
        "{why}"
    );
    let (code, why) = wstun_handshake(
        cloud.tunnel_port,
        "dst=nowhere",
        Some("tunnel-protocol"),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(code, 400, "{why}");
    // The live tunnel was not disturbed by any of that.
    echo_round(public, 42, 10_000).await.unwrap();

    // The cloud dies without a word; the agent brings the tunnel back by itself.
    cloud_proc.kill9();
    assert!(TcpStream::connect(("127.0.0.1", public)).await.is_err());
    // Back in compatibility mode: stock boards may come anonymously, but never in place of the
    // agent that holds the port with its secret.
    let _cloud_proc = cloud.start(&["--allow-anonymous-boards"]);
    api.wait_online(Duration::from_secs(20)).await;
    wait_echo(public, Duration::from_secs(20)).await;
    let (code, why) = wstun_handshake(cloud.tunnel_port, &query, Some("tunnel-protocol"), None)
        .await
        .unwrap_err();
    assert_eq!(
        (code, why.contains("cannot take it over")),
        (401, true),
        "{why}"
    );
    echo_round(public, 43, 10_000).await.unwrap();

    // The agent dies; started again, it restores the tunnel from services.json.
    agent.kill9();
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(agent_dir.join("services.json")).unwrap())
            .unwrap();
    assert_eq!(kept["services"][&service]["public_port"], public, "{kept}");
    assert_eq!(
        kept["services"][&service]["local_port"], local_port,
        "{kept}"
    );
    // A tunnel the cloud no longer gives a port to (as after a disable the board missed) is
    // refused, then given up and forgotten; the real one comes back.
    let stale = uuid::Uuid::new_v4().to_string();
    let stale_port = (cloud.ports.0..=cloud.ports.1)
        .find(|p| *p != public)
        .unwrap();
    let mut doc = kept.clone();
    doc["services"][&stale] = json!({"name": "stale", "public_port": stale_port,
        "local_port": local_port, "tunnel_url": kept["services"][&service]["tunnel_url"]});
    std::fs::write(agent_dir.join("services.json"), doc.to_string()).unwrap();
    let _agent = start_agent(&agent_dir, cloud.wamp_port);
    api.wait_online(Duration::from_secs(20)).await;
    wait_echo(public, Duration::from_secs(20)).await;
    let start = Instant::now();
    loop {
        let now: Value = serde_json::from_str(
            &std::fs::read_to_string(agent_dir.join("services.json")).unwrap(),
        )
        .unwrap();
        if now["services"].get(&stale).is_none() {
            assert!(now["services"].get(&service).is_some(), "{now}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "stale tunnel kept: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Disable: the port closes, the exposure and the board's record go, the port is free again.
    let (status, reply) = api.service_action(&service, "ServiceDisable").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, "Cloud service 'echo' tunnel disabled.", "{reply}");
    assert!(api.exposed().await.is_empty());
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", public)).await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "port {public} still open"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(agent_dir.join("services.json")).unwrap())
            .unwrap();
    assert!(kept["services"].get(&service).is_none(), "{kept}");
    let (status, reply) = api.service_action(&service, "ServiceDisable").await;
    assert_eq!(status, 409, "{reply}");

    // Every port of the range can be handed out again.
    let (status, reply) = api.service_action(&service, "ServiceEnable").await;
    assert_eq!(status, 200, "{reply}");
    let again = api.exposed().await[0]["public_port"].as_u64().unwrap() as u16;
    wait_echo(again, Duration::from_secs(5)).await;
}
