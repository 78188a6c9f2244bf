//! Helpers for tests over real sockets on 127.0.0.1.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use s4t_wamp::{
    connect, event_handler, ClientConfig, Event, Router, RouterConfig, Serializer, Session,
};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

pub const REALM: &str = "s4t";
/// Generous bound for things that should happen "at once".
pub const PROMPT: Duration = Duration::from_secs(5);

pub struct TestRouter {
    pub router: Router,
    pub url: String,
    pub addr: std::net::SocketAddr,
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        self.router.close();
    }
}

pub async fn start(config: RouterConfig) -> TestRouter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new(config);
    let serving = router.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    TestRouter {
        router,
        url: format!("ws://{addr}/ws"),
        addr,
    }
}

pub async fn start_default() -> TestRouter {
    start(RouterConfig::default()).await
}

pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new(REALM);
    config.connect_timeout = PROMPT;
    config
}

pub async fn join(url: &str) -> Session {
    connect(url, client_config()).await.expect("join")
}

/// Subscribes and returns a receiver of the events.
pub async fn collect(session: &Session, topic: &str) -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    session
        .subscribe(
            topic,
            event_handler(move |e| {
                let _ = tx.send(e);
            }),
        )
        .await
        .expect("subscribe");
    rx
}

pub async fn next_event(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(PROMPT, rx.recv())
        .await
        .expect("event in time")
        .expect("event channel open")
}

/// Waits for an event matching `pred`, skipping others.
pub async fn event_where(
    rx: &mut mpsc::UnboundedReceiver<Event>,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    loop {
        let e = next_event(rx).await;
        if pred(&e) {
            return e;
        }
    }
}

pub type RawWs = WebSocketStream<TcpStream>;

/// A bare WebSocket client offering the given subprotocols (none if empty).
pub async fn raw_connect(
    addr: std::net::SocketAddr,
    protocols: &str,
) -> Result<RawWs, tokio_tungstenite::tungstenite::Error> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    tokio_tungstenite::client_async(request, tcp)
        .await
        .map(|(ws, _)| ws)
}

pub async fn raw_json(addr: std::net::SocketAddr) -> RawWs {
    raw_connect(addr, Serializer::Json.subprotocol())
        .await
        .unwrap()
}

pub async fn raw_send(ws: &mut RawWs, text: &str) {
    ws.send(WsMessage::text(text.to_string())).await.unwrap();
}

/// Next WAMP message (JSON) from a raw client; `None` when the connection ends.
pub async fn raw_recv(ws: &mut RawWs) -> Option<Value> {
    loop {
        match tokio::time::timeout(PROMPT, ws.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(WsMessage::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// HELLO as autobahn sends it, and the WELCOME's session id.
pub async fn raw_join(ws: &mut RawWs) -> u64 {
    raw_send(
        ws,
        r#"[1,"s4t",{"roles":{"caller":{"features":{}},"callee":{},"publisher":{},"subscriber":{}}}]"#,
    )
    .await;
    let welcome = raw_recv(ws).await.expect("welcome");
    assert_eq!(welcome[0], 2, "{welcome}");
    welcome[1].as_u64().unwrap()
}

/// Expects ABORT with `reason`, then the end of the connection; returns details.message.
pub async fn expect_abort(ws: &mut RawWs, reason: &str) -> String {
    let abort = raw_recv(ws).await.expect("abort");
    assert_eq!(abort[0], 3, "{abort}");
    assert_eq!(abort[2], reason, "{abort}");
    let message = abort[1]["message"].as_str().unwrap_or_default().to_string();
    assert!(
        raw_recv(ws).await.is_none(),
        "connection closed after ABORT"
    );
    message
}
