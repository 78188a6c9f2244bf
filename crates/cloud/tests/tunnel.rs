//! The service tunnel server met by a stock-style board: an anonymous WAMP session (the cloud in
//! compatibility mode) whose ServiceEnable opens a plain wstun control socket, as Lightning-rod's
//! `wstun` child does, with no secret and only the `tunnel-protocol` subprotocol. The test then
//! plays both the public user and the board's data side frame by frame: `NC:<id>`, the `?id=`
//! data socket, binary frames both ways, closes in both directions, a board that never answers,
//! a control socket replaced by a reconnect, and disable closing the port.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use s4t_cloud::{CloudConfig, RunningCloud};
use s4t_model::board_link::WampMessage;
use s4t_wamp::{connect, handler, CallResult, ClientConfig, Invocation};

type Ws = WebSocketStream<TcpStream>;

/// `n` consecutive ports that were free a moment ago.
fn free_range(n: u16) -> (u16, u16) {
    for _ in 0..200 {
        let r = uuid::Uuid::new_v4().as_u128();
        let start = 20000 + (r % 20000) as u16;
        let held: Vec<_> = (start..start + n)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == n as usize {
            return (start, start + n - 1);
        }
    }
    panic!("no {n} consecutive free ports");
}

/// A wstun handshake as the stock client makes it: `tunnel-protocol` only, no credentials.
async fn stock_handshake(
    tunnel: std::net::SocketAddr,
    query: &str,
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = format!("ws://{tunnel}/?{query}")
        .as_str()
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("tunnel-protocol"),
    );
    let tcp = TcpStream::connect(tunnel).await.unwrap();
    tokio_tungstenite::client_async(req, tcp).await
}

/// A refused stock handshake: its HTTP status and body (a panic if it was accepted).
async fn stock_refusal(tunnel: std::net::SocketAddr, query: &str) -> (u16, String) {
    match stock_handshake(tunnel, query).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => (
            r.status().as_u16(),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        other => panic!("?{query} was not refused: {:?}", other.map(|_| ())),
    }
}

/// A wstun socket as the stock client opens it.
async fn stock_socket(tunnel: std::net::SocketAddr, query: &str) -> Ws {
    let (ws, resp) = stock_handshake(tunnel, query)
        .await
        .unwrap_or_else(|e| panic!("wstun socket ?{query}: {e}"));
    // A stock peer is answered with its own subprotocol, never the s4t extension.
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], "tunnel-protocol");
    ws
}

/// The next text frame on a control socket.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next data frame, or `None` once the socket closed.
async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

async fn rest(
    cloud: &RunningCloud,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}{path}", cloud.api_addr))
        .header("X-Auth-Token", token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

fn reply(text: &str, inv: &Invocation) -> CallResult {
    let req_id = inv.args[0]["uuid"].as_str().map(str::to_string);
    CallResult {
        args: vec![json!(WampMessage::success(text)
            .with_req_id(req_id)
            .to_wire())],
        kwargs: Map::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_wstun_board_through_the_tunnel_server() {
    let dir = std::env::temp_dir().join(format!("s4t-tunnel-{}", uuid::Uuid::new_v4()));
    let ports = free_range(4);
    let mut cfg = CloudConfig::for_dir(&dir);
    cfg.api_addr = "127.0.0.1:0".into();
    cfg.wamp_addr = Some("127.0.0.1:0".into());
    cfg.tunnel_addr = Some("127.0.0.1:0".into());
    cfg.public_ports = ports.0..=ports.1;
    cfg.allow_anonymous_boards = true;
    let cloud = RunningCloud::start(cfg).await.unwrap();
    let token = cloud.new_admin_token.clone().unwrap();
    let tunnel = cloud.tunnel_addr.unwrap();
    let (s, b) = rest(
        &cloud,
        &token,
        reqwest::Method::POST,
        "/v1/boards",
        Some(json!({
        "name": "stock", "code": "STOCK-WSTUN", "type": "virtual",
        "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let board = b["uuid"].as_str().unwrap().to_string();
    let (s, svc) = rest(
        &cloud,
        &token,
        reqwest::Method::POST,
        "/v1/services",
        Some(json!({"name": "ssh", "port": 22, "protocol": "TCP"})),
    )
    .await;
    assert_eq!(s, 201, "{svc}");
    let service = svc["uuid"].as_str().unwrap().to_string();

    // The board: registered by code, connected anonymously, serving the service procedures.
    let session = connect(&cloud.board_url, ClientConfig::new("s4t"))
        .await
        .unwrap();
    let r = session
        .call(
            "stack4things.register",
            vec![],
            json!({"code": "STOCK-WSTUN", "session": session.id()})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        WampMessage::from_args(&r.args).unwrap().message["iotronic"]["board"]["uuid"],
        board.as_str()
    );
    let (controls_tx, mut controls) = mpsc::unbounded_channel::<(Value, u16, Ws)>();
    let prefix = format!("iotronic.{}.{board}", session.id());
    let enable_board = board.clone();
    session
        .register(
            &format!("{prefix}.ServiceEnable"),
            handler(move |inv: Invocation| {
                let (tx, board) = (controls_tx.clone(), enable_board.clone());
                async move {
                    // What the stock board's wstun child does: a control socket for the port.
                    let port = inv.args[2].as_u64().unwrap() as u16;
                    let ws =
                        stock_socket(tunnel, &format!("dst=127.0.0.1:{port}&uuid={board}")).await;
                    let text = format!(
                        "Cloud service '{}' exposed on port {port} on 127.0.0.1",
                        inv.args[1]["name"].as_str().unwrap()
                    );
                    let r = reply(&text, &inv);
                    tx.send((inv.args[1].clone(), port, ws)).unwrap();
                    Ok(r)
                }
            }),
        )
        .await
        .unwrap();
    session
        .register(
            &format!("{prefix}.ServiceDisable"),
            handler(|inv: Invocation| async move {
                Ok(reply("Cloud service 'ssh' tunnel disabled.", &inv))
            }),
        )
        .await
        .unwrap();
    session
        .call(
            "s4t.stack4things.connection",
            vec![],
            json!({"uuid": board, "session": session.id()})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .await
        .unwrap();

    let action = |a: &'static str| {
        let (cloud, token, board, service) = (&cloud, &token, &board, &service);
        async move {
            rest(
                cloud,
                token,
                reqwest::Method::POST,
                &format!("/v1/boards/{board}/services/{service}/action"),
                Some(json!({"action": a})),
            )
            .await
        }
    };
    let (s, r) = action("ServiceEnable").await;
    assert_eq!(s, 200, "{r}");
    let (dict, public, mut control) = controls.recv().await.unwrap();
    assert!((ports.0..=ports.1).contains(&public));
    // The service dict carries what Lightning-rod reads, and where s4t agents find the server.
    assert_eq!(
        (dict["uuid"].as_str(), dict["port"].as_u64()),
        (Some(service.as_str()), Some(22))
    );
    assert_eq!(dict["tunnel_url"], format!("ws://{tunnel}"));

    // A public user connects: NC:<id> on the control socket, then the board's data socket.
    let mut user = TcpStream::connect(("127.0.0.1", public)).await.unwrap();
    let nc = next_text(&mut control).await;
    let id = nc.strip_prefix("NC:").unwrap_or_else(|| panic!("{nc}"));
    uuid::Uuid::parse_str(id).unwrap();
    // The user speaks first; nothing is lost while the data socket is not there yet.
    user.write_all(b"SSH-2.0-client\r\n").await.unwrap();
    let mut data = stock_socket(tunnel, &format!("id={id}")).await;
    assert_eq!(next_binary(&mut data).await.unwrap(), b"SSH-2.0-client\r\n");
    data.send(Message::binary(b"SSH-2.0-board\r\n".to_vec()))
        .await
        .unwrap();
    let mut got = [0u8; 15];
    user.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"SSH-2.0-board\r\n");
    // The same id cannot be claimed twice.
    assert_eq!(stock_refusal(tunnel, &format!("id={id}")).await.0, 404);
    // Plain wstun has no half-close: the user closing ends the data socket.
    drop(user);
    assert_eq!(next_binary(&mut data).await, None);

    // The board side closing ends the user's connection.
    let mut user = TcpStream::connect(("127.0.0.1", public)).await.unwrap();
    let nc = next_text(&mut control).await;
    let mut data = stock_socket(tunnel, &format!("id={}", &nc[3..])).await;
    data.send(Message::binary(vec![7u8; 100_000]))
        .await
        .unwrap();
    data.close(None).await.unwrap();
    let mut all = Vec::new();
    user.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, vec![7u8; 100_000]);

    // A board that never opens the data socket: the user waits (bounded), others are served.
    let _waiting = TcpStream::connect(("127.0.0.1", public)).await.unwrap();
    let _ignored = next_text(&mut control).await;
    let mut user = TcpStream::connect(("127.0.0.1", public)).await.unwrap();
    let nc = next_text(&mut control).await;
    let mut data = stock_socket(tunnel, &format!("id={}", &nc[3..])).await;
    user.write_all(b"x").await.unwrap();
    assert_eq!(next_binary(&mut data).await.unwrap(), b"x");

    // An s4t client naming another service than the port's is refused (a tunnel left over for
    // a port that now serves something else); naming the right one is fine.
    let query = format!(
        "dst=127.0.0.1:{public}&uuid={board}&service={}",
        uuid::Uuid::new_v4()
    );
    let (code, body) = stock_refusal(tunnel, &query).await;
    assert_eq!(code, 401);
    assert!(body.contains("is not allocated to service"), "{body}");

    // The board reconnects its control socket (its link flapped): the new one takes the port.
    let mut control2 = stock_socket(
        tunnel,
        &format!("dst=127.0.0.1:{public}&uuid={board}&service={service}"),
    )
    .await;
    let start = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), control.next())
            .await
            .unwrap()
        {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
            Some(Ok(_)) => assert!(start.elapsed() < Duration::from_secs(5)),
        }
    }
    let _user2 = TcpStream::connect(("127.0.0.1", public)).await.unwrap();
    assert!(next_text(&mut control2).await.starts_with("NC:"));
    // A connection made on the old control socket keeps flowing.
    data.send(Message::binary(b"still here".to_vec()))
        .await
        .unwrap();
    let mut got = [0u8; 10];
    user.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"still here");

    // Disable: the control socket and the port close, tunnelled connections too.
    let (s, r) = action("ServiceDisable").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(next_binary(&mut control2).await, None);
    assert_eq!(next_binary(&mut data).await, None);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", public)).await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "port {public} still open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the board cannot take the port back on its own.
    let query = format!("dst=127.0.0.1:{public}&uuid={board}");
    assert_eq!(stock_refusal(tunnel, &query).await.0, 401);
    let counters = cloud.tunnels().unwrap().counters_json();
    assert_eq!(counters["controls_refused"], 2, "{counters}");
    assert!(
        counters["connections_total"].as_u64().unwrap() >= 5,
        "{counters}"
    );
    session.leave().await;
    cloud.shutdown().await;
}
