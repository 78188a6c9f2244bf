//! Router and client over real WebSockets on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use s4t_wamp::{
    connect, handler, Action, Authorizer, CallError, CallResult, ClientAuth, Kwargs, RouterConfig,
    Serializer, SessionInfo, StaticAuthenticator, WampError,
};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn kwargs(v: Value) -> Kwargs {
    v.as_object().cloned().unwrap()
}

fn call_error_uri(result: Result<CallResult, WampError>) -> String {
    match result {
        Err(WampError::Call(e)) => e.error,
        other => panic!("expected a WAMP ERROR, got {other:?}"),
    }
}

/// Echoes args/kwargs and reports the caller identity it was given.
fn echo() -> s4t_wamp::Handler {
    handler(|inv| async move {
        let mut kw = inv.kwargs;
        kw.insert("caller".into(), inv.details["caller"].clone());
        kw.insert("caller_authid".into(), inv.details["caller_authid"].clone());
        kw.insert(
            "caller_authrole".into(),
            inv.details["caller_authrole"].clone(),
        );
        Ok(CallResult::new(inv.args, kw))
    })
}

#[tokio::test]
async fn join_and_welcome() {
    let t = start_default().await;
    let s = join(&t.url).await;
    assert!(s.id() >= 1 && s.id() <= 1 << 53);
    assert_eq!(s.realm(), REALM);
    let d = s.welcome_details();
    assert_eq!(d["authrole"], "anonymous");
    assert_eq!(d["authmethod"], "anonymous");
    assert!(d.contains_key("authid"));
    assert!(d["roles"]["broker"]["features"].is_object());
    assert!(d["roles"]["dealer"]["features"]["caller_identification"] == true);
    assert_eq!(t.router.session_count(), 1);
    s.leave().await;
    assert!(s.is_closed());
    tokio::time::timeout(PROMPT, async {
        while t.router.session_count() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_realm_is_aborted() {
    let t = start_default().await;
    let mut config = client_config();
    config.realm = "nowhere".into();
    match connect(&t.url, config).await {
        Err(WampError::Aborted { reason, message }) => {
            assert_eq!(reason, "wamp.error.no_such_realm");
            assert!(message.unwrap().contains("nowhere"));
        }
        other => panic!("expected abort, got {other:?}"),
    }
}

#[tokio::test]
async fn register_call_result_with_args_and_kwargs() {
    let t = start_default().await;
    let callee = join(&t.url).await;
    let caller = join(&t.url).await;
    callee.register("test.echo", echo()).await.unwrap();
    let result = caller
        .call(
            "test.echo",
            vec![json!(1), json!("a")],
            kwargs(json!({"k": [true]})),
        )
        .await
        .unwrap();
    assert_eq!(result.args, vec![json!(1), json!("a")]);
    assert_eq!(result.kwargs["k"], json!([true]));
    assert_eq!(result.kwargs["caller"], json!(caller.id()));
    // Anonymous sessions get a generated authid: autobahn insists on a string.
    let authid = result.kwargs["caller_authid"].as_str().unwrap();
    assert_eq!(authid.len(), 29, "{authid}");
    assert_eq!(json!(authid), caller.welcome_details()["authid"]);
    assert_eq!(result.kwargs["caller_authrole"], "anonymous");
    // Empty payloads both ways.
    let result = caller
        .call("test.echo", vec![], Kwargs::new())
        .await
        .unwrap();
    assert!(result.args.is_empty());
}

#[tokio::test]
async fn duplicate_registration_and_unknown_procedure() {
    let t = start_default().await;
    let a = join(&t.url).await;
    let b = join(&t.url).await;
    let registration = a.register("test.once", echo()).await.unwrap();
    match b.register("test.once", echo()).await {
        Err(WampError::Call(e)) => assert_eq!(e.error, "wamp.error.procedure_already_exists"),
        other => panic!("{other:?}"),
    }
    let missing = b.call("test.missing", vec![], Kwargs::new()).await;
    assert_eq!(call_error_uri(missing), "wamp.error.no_such_procedure");
    // Reserved prefix.
    match b.register("wamp.session.count", echo()).await {
        Err(WampError::Call(e)) => assert_eq!(e.error, "wamp.error.invalid_uri"),
        other => panic!("{other:?}"),
    }
    // After unregistering, another session may take it.
    a.unregister(registration).await.unwrap();
    b.register("test.once", echo()).await.unwrap();
    match a.unregister(registration).await {
        Err(WampError::Call(e)) => assert_eq!(e.error, "wamp.error.no_such_registration"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn callee_error_is_forwarded() {
    let t = start_default().await;
    let callee = join(&t.url).await;
    let caller = join(&t.url).await;
    callee
        .register(
            "test.fail",
            handler(|_| async {
                Err(CallError {
                    error: "app.error.bad_board".into(),
                    args: vec![json!("no such board")],
                    kwargs: kwargs(json!({"board": "b1"})),
                })
            }),
        )
        .await
        .unwrap();
    callee
        .register("test.panic", handler(|_| async { panic!("boom") }))
        .await
        .unwrap();
    match caller.call("test.fail", vec![], Kwargs::new()).await {
        Err(WampError::Call(e)) => {
            assert_eq!(e.error, "app.error.bad_board");
            assert_eq!(e.args, vec![json!("no such board")]);
            assert_eq!(e.kwargs["board"], "b1");
            assert_eq!(e.message(), Some("no such board"));
        }
        other => panic!("{other:?}"),
    }
    let panicked = caller.call("test.panic", vec![], Kwargs::new()).await;
    assert_eq!(call_error_uri(panicked), "wamp.error.runtime_error");
}

#[tokio::test]
async fn call_timeout_and_late_yield_ignored() {
    let t = start(RouterConfig {
        default_call_timeout: Duration::from_millis(300),
        ..RouterConfig::default()
    })
    .await;
    let callee = join(&t.url).await;
    let caller = join(&t.url).await;
    callee
        .register(
            "test.slow",
            handler(|_| async {
                tokio::time::sleep(Duration::from_millis(2000)).await;
                Ok(CallResult::default())
            }),
        )
        .await
        .unwrap();
    callee.register("test.echo", echo()).await.unwrap();
    // No client timeout: the router's default applies.
    let started = Instant::now();
    let r = caller
        .call_with_timeout("test.slow", vec![], Kwargs::new(), Duration::ZERO)
        .await;
    assert_eq!(call_error_uri(r), "wamp.error.timeout");
    // Well before the handler's answer (2 s), or the result would not be an error.
    assert!(started.elapsed() < Duration::from_millis(1900));
    // options.timeout from the caller is honoured too.
    let started = Instant::now();
    let r = caller
        .call_with_timeout(
            "test.slow",
            vec![],
            Kwargs::new(),
            Duration::from_millis(100),
        )
        .await;
    assert!(
        matches!(&r, Err(WampError::Timeout))
            || matches!(&r, Err(WampError::Call(e)) if e.error == "wamp.error.timeout"),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1900));
    // Late YIELDs arrive and are dropped; both sessions keep working.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let ok = caller
        .call("test.echo", vec![json!(7)], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(ok.args, vec![json!(7)]);
}

#[tokio::test]
async fn callee_dropping_cancels_pending_calls() {
    let t = start_default().await;
    let caller = join(&t.url).await;
    // A raw callee that registers, takes the INVOCATION, then vanishes.
    let mut raw = raw_json(t.addr).await;
    raw_join(&mut raw).await;
    raw_send(&mut raw, r#"[64, 1, {}, "test.vanish"]"#).await;
    let registered = raw_recv(&mut raw).await.unwrap();
    assert_eq!(registered[0], 65);
    let pending = tokio::spawn({
        let caller = caller.clone();
        async move { caller.call("test.vanish", vec![], Kwargs::new()).await }
    });
    let invocation = raw_recv(&mut raw).await.unwrap();
    assert_eq!(invocation[0], 68);
    assert_eq!(invocation[3]["caller"], json!(caller.id()));
    let dropped_at = Instant::now();
    drop(raw);
    let r = tokio::time::timeout(PROMPT, pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call_error_uri(r), "wamp.error.canceled");
    assert!(dropped_at.elapsed() < Duration::from_secs(2));
    // The procedure went with its callee.
    let gone = caller.call("test.vanish", vec![], Kwargs::new()).await;
    assert_eq!(call_error_uri(gone), "wamp.error.no_such_procedure");
}

#[tokio::test]
async fn caller_dropping_forgets_its_calls() {
    let t = start_default().await;
    let callee = join(&t.url).await;
    let gate = Arc::new(Gate::default());
    callee.register("test.wait", gate.handler()).await.unwrap();
    let mut raw = raw_json(t.addr).await;
    raw_join(&mut raw).await;
    raw_send(&mut raw, r#"[48, 1, {}, "test.wait"]"#).await;
    gate.wait_started(1).await;
    drop(raw);
    wait_until(|| t.router.session_count() == 1).await;
    gate.release(1);
    wait_until(|| gate.answered.load(Ordering::SeqCst) == 1).await;
    // The late YIELD was dropped and the callee is fine.
    callee.register("test.echo", echo()).await.unwrap();
    let other = join(&t.url).await;
    other
        .call("test.echo", vec![], Kwargs::new())
        .await
        .unwrap();
}

/// A procedure whose invocations wait until released, counting starts and answers.
struct Gate {
    permits: tokio::sync::Semaphore,
    started: AtomicUsize,
    answered: AtomicUsize,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            permits: tokio::sync::Semaphore::new(0),
            started: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
        }
    }
}

impl Gate {
    fn handler(self: &Arc<Self>) -> s4t_wamp::Handler {
        let gate = self.clone();
        handler(move |_| {
            let gate = gate.clone();
            async move {
                gate.started.fetch_add(1, Ordering::SeqCst);
                gate.permits.acquire().await.unwrap().forget();
                gate.answered.fetch_add(1, Ordering::SeqCst);
                Ok(CallResult::default())
            }
        })
    }

    async fn wait_started(&self, n: usize) {
        wait_until(|| self.started.load(Ordering::SeqCst) >= n).await;
    }

    fn release(&self, n: usize) {
        self.permits.add_permits(n);
    }
}

async fn wait_until(condition: impl Fn() -> bool) {
    tokio::time::timeout(PROMPT, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition in time");
}

#[tokio::test]
async fn publish_subscribe() {
    let t = start_default().await;
    let publisher = join(&t.url).await;
    let subscriber = join(&t.url).await;
    let mut events = collect(&subscriber, "test.topic").await;
    let mut own = collect(&publisher, "test.topic").await;
    publisher
        .publish("test.topic", vec![json!("hi")], kwargs(json!({"n": 1})))
        .await
        .unwrap();
    let e = next_event(&mut events).await;
    assert_eq!(e.topic, "test.topic");
    assert_eq!(e.args, vec![json!("hi")]);
    assert_eq!(e.kwargs["n"], 1);
    // Acknowledged publish, and exclude_me by default.
    let publication = publisher
        .publish_acknowledged("test.topic", vec![json!(2)], Kwargs::new())
        .await
        .unwrap();
    assert!(publication >= 1);
    assert_eq!(next_event(&mut events).await.args, vec![json!(2)]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), own.recv())
            .await
            .is_err(),
        "the publisher does not get its own events"
    );
    match publisher
        .publish_acknowledged("wamp.session.on_join", vec![], Kwargs::new())
        .await
    {
        Err(WampError::Call(e)) => assert_eq!(e.error, "wamp.error.invalid_uri"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn session_meta_api() {
    let t = start_default().await;
    let observer = t
        .router
        .local_session(REALM, "cloud", "admin")
        .await
        .unwrap();
    let mut joins = collect(&observer, "wamp.session.on_join").await;
    let mut leaves = collect(&observer, "wamp.session.on_leave").await;
    let board = join(&t.url).await;
    let joined = event_where(&mut joins, |e| e.args[0]["session"] == json!(board.id())).await;
    let details = &joined.args[0];
    assert_eq!(details["authrole"], "anonymous");
    assert_eq!(details["authmethod"], "anonymous");
    let peer = details["transport"]["peer"].as_str().unwrap();
    assert!(peer.starts_with("tcp4:127.0.0.1:"), "{peer}");

    let count = board
        .call("wamp.session.count", vec![], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(count.args, vec![json!(2)]);
    let admins = board
        .call("wamp.session.count", vec![json!(["admin"])], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(admins.args, vec![json!(1)]);
    let list = board
        .call("wamp.session.list", vec![], Kwargs::new())
        .await
        .unwrap();
    let mut ids: Vec<u64> = list.args[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![observer.id(), board.id()];
    expected.sort();
    assert_eq!(ids, expected);
    let got = board
        .call(
            "wamp.session.get",
            vec![json!(observer.id())],
            Kwargs::new(),
        )
        .await
        .unwrap();
    assert_eq!(got.args[0]["authid"], "cloud");
    assert_eq!(got.args[0]["authmethod"], "trusted");
    let missing = board
        .call("wamp.session.get", vec![json!(12345)], Kwargs::new())
        .await;
    assert_eq!(call_error_uri(missing), "wamp.error.no_such_session");

    let board_id = board.id();
    let board_authid = joined.args[0]["authid"].clone();
    assert!(board_authid.is_string());
    board.leave().await;
    let left = event_where(&mut leaves, |e| e.args[0] == json!(board_id)).await;
    assert_eq!(
        left.args,
        vec![json!(board_id), board_authid, json!("anonymous")]
    );
}

#[tokio::test]
async fn local_and_socket_sessions_call_each_other() {
    let t = start_default().await;
    let cloud = t
        .router
        .local_session(REALM, "conductor", "cloud")
        .await
        .unwrap();
    let board = join(&t.url).await;
    cloud.register("cloud.echo", echo()).await.unwrap();
    board.register("board.echo", echo()).await.unwrap();

    let r = board
        .call("cloud.echo", vec![json!("from board")], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(r.args, vec![json!("from board")]);
    assert_eq!(r.kwargs["caller"], json!(board.id()));

    let r = cloud
        .call("board.echo", vec![], kwargs(json!({"x": 1})))
        .await
        .unwrap();
    assert_eq!(r.kwargs["x"], 1);
    assert_eq!(r.kwargs["caller_authid"], "conductor");
    assert_eq!(r.kwargs["caller_authrole"], "cloud");

    let unknown = t.router.local_session("elsewhere", "x", "y").await;
    assert!(
        matches!(unknown, Err(WampError::Aborted { ref reason, .. }) if reason == "wamp.error.no_such_realm")
    );
    cloud.leave().await;
    assert!(cloud.is_closed());
    assert_eq!(
        call_error_uri(board.call("cloud.echo", vec![], Kwargs::new()).await),
        "wamp.error.no_such_procedure"
    );
}

fn auth_router_config(anonymous: bool) -> RouterConfig {
    let authenticator = StaticAuthenticator::new()
        .with(REALM, "board-1", "cra-secret", "board")
        .with(REALM, "board-2", "t1cket", "board");
    RouterConfig {
        anonymous,
        authenticator: Some(Arc::new(authenticator)),
        ..RouterConfig::default()
    }
}

async fn join_with(url: &str, auth: Option<ClientAuth>) -> Result<s4t_wamp::Session, WampError> {
    let mut config = client_config();
    config.auth = auth;
    connect(url, config).await
}

fn assert_not_authorized(result: Result<s4t_wamp::Session, WampError>) {
    match result {
        Err(WampError::Aborted { reason, .. }) => assert_eq!(reason, "wamp.error.not_authorized"),
        other => panic!("expected not_authorized, got {other:?}"),
    }
}

#[tokio::test]
async fn wampcra_and_ticket_authentication() {
    let t = start(auth_router_config(false)).await;
    let cra = join_with(
        &t.url,
        Some(ClientAuth::WampCra {
            authid: "board-1".into(),
            secret: "cra-secret".into(),
        }),
    )
    .await
    .unwrap();
    assert_eq!(cra.welcome_details()["authid"], "board-1");
    assert_eq!(cra.welcome_details()["authrole"], "board");
    assert_eq!(cra.welcome_details()["authmethod"], "wampcra");

    let ticket = join_with(
        &t.url,
        Some(ClientAuth::Ticket {
            authid: "board-2".into(),
            ticket: "t1cket".into(),
        }),
    )
    .await
    .unwrap();
    assert_eq!(ticket.welcome_details()["authmethod"], "ticket");

    // The callee sees who calls.
    ticket.register("board2.whoami", echo()).await.unwrap();
    let r = cra
        .call("board2.whoami", vec![], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(r.kwargs["caller_authid"], "board-1");
    assert_eq!(r.kwargs["caller_authrole"], "board");

    assert_not_authorized(
        join_with(
            &t.url,
            Some(ClientAuth::WampCra {
                authid: "board-1".into(),
                secret: "wrong".into(),
            }),
        )
        .await,
    );
    assert_not_authorized(
        join_with(
            &t.url,
            Some(ClientAuth::Ticket {
                authid: "board-2".into(),
                ticket: "wrong".into(),
            }),
        )
        .await,
    );
    assert_not_authorized(
        join_with(
            &t.url,
            Some(ClientAuth::Ticket {
                authid: "nobody".into(),
                ticket: "t1cket".into(),
            }),
        )
        .await,
    );
    // Anonymous is off here.
    assert_not_authorized(join_with(&t.url, None).await);
    assert_eq!(t.router.session_count(), 2);
}

#[tokio::test]
async fn anonymous_refused_when_disabled_even_without_authmethods() {
    let t = start(RouterConfig {
        anonymous: false,
        ..RouterConfig::default()
    })
    .await;
    assert_not_authorized(join_with(&t.url, None).await);
    // A HELLO without authmethods means anonymous as well.
    let mut raw = raw_json(t.addr).await;
    raw_send(&mut raw, r#"[1, "s4t", {"roles": {"caller": {}}}]"#).await;
    let message = expect_abort(&mut raw, "wamp.error.not_authorized").await;
    assert!(message.contains("anonymous"), "{message}");
}

struct BoardsOnlyTheirOwn;

impl Authorizer for BoardsOnlyTheirOwn {
    fn authorize(&self, session: &SessionInfo, action: Action, uri: &str) -> bool {
        match session.authrole.as_str() {
            "board" => {
                let own = format!("board.{}.", session.authid.as_deref().unwrap_or(""));
                action == Action::Call || uri.starts_with(&own)
            }
            _ => true,
        }
    }
}

#[tokio::test]
async fn authorizer_denies() {
    let mut config = auth_router_config(true);
    config.authorizer = Some(Arc::new(BoardsOnlyTheirOwn));
    let t = start(config).await;
    let board = join_with(
        &t.url,
        Some(ClientAuth::WampCra {
            authid: "board-1".into(),
            secret: "cra-secret".into(),
        }),
    )
    .await
    .unwrap();
    board.register("board.board-1.ping", echo()).await.unwrap();
    for result in [
        board
            .register("board.board-2.ping", echo())
            .await
            .map(|_| ()),
        board
            .subscribe("other.topic", s4t_wamp::event_handler(|_| {}))
            .await
            .map(|_| ()),
        board
            .publish_acknowledged("other.topic", vec![], Kwargs::new())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(WampError::Call(e)) => assert_eq!(e.error, "wamp.error.not_authorized"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn pending_call_limit() {
    let t = start(RouterConfig {
        max_pending_calls_per_session: 2,
        ..RouterConfig::default()
    })
    .await;
    let callee = join(&t.url).await;
    let gate = Arc::new(Gate::default());
    callee.register("test.block", gate.handler()).await.unwrap();
    let caller = join(&t.url).await;
    let first: Vec<_> = (0..2)
        .map(|_| {
            let caller = caller.clone();
            tokio::spawn(async move { caller.call("test.block", vec![], Kwargs::new()).await })
        })
        .collect();
    gate.wait_started(2).await;
    let third = caller.call("test.block", vec![], Kwargs::new()).await;
    assert_eq!(call_error_uri(third), "wamp.error.limit_exceeded");
    gate.release(2);
    for call in first {
        call.await.unwrap().unwrap();
    }
    // Slots are free again.
    gate.release(1);
    caller
        .call("test.block", vec![], Kwargs::new())
        .await
        .unwrap();
}

/// Each class of bad input ends only the offending connection.
#[tokio::test]
async fn bad_frames_close_only_that_connection() {
    let t = start(RouterConfig {
        max_frame_bytes: 64 * 1024,
        ..RouterConfig::default()
    })
    .await;
    let healthy = join(&t.url).await;
    healthy.register("test.echo", echo()).await.unwrap();
    let still_working = || async {
        let r = healthy
            .call("test.echo", vec![json!("ok")], Kwargs::new())
            .await
            .unwrap();
        assert_eq!(r.args, vec![json!("ok")]);
    };

    let cases: &[(&str, &str)] = &[
        ("[48, 1, {}, \"test.echo\"", "invalid JSON"),
        ("[99, 1, {}]", "unknown message type 99"),
        ("[48, 1]", "CALL: expected 4 to 6 elements, got 2"),
        ("[48, 1, {}, \"bad uri\"]", "invalid URI"),
        ("\"just a string\"", "message must be an array"),
    ];
    for (frame, expected) in cases {
        let mut raw = raw_json(t.addr).await;
        raw_join(&mut raw).await;
        raw_send(&mut raw, frame).await;
        let message = expect_abort(&mut raw, "wamp.error.protocol_violation").await;
        assert!(message.contains(expected), "{frame}: {message}");
        still_working().await;
    }

    // Before HELLO.
    let mut raw = raw_json(t.addr).await;
    raw_send(&mut raw, r#"[48, 1, {}, "test.echo"]"#).await;
    let message = expect_abort(&mut raw, "wamp.error.protocol_violation").await;
    assert!(message.contains("expected HELLO, got CALL"), "{message}");
    // Garbage before HELLO.
    let mut raw = raw_json(t.addr).await;
    raw_send(&mut raw, "}{").await;
    expect_abort(&mut raw, "wamp.error.protocol_violation").await;
    // A router-to-client message from a joined client.
    let mut raw = raw_json(t.addr).await;
    raw_join(&mut raw).await;
    raw_send(&mut raw, r#"[2, 5, {}]"#).await;
    let message = expect_abort(&mut raw, "wamp.error.protocol_violation").await;
    assert!(message.contains("WELCOME"), "{message}");
    still_working().await;

    // Oversize frame: WebSocket close 1009.
    let mut raw = raw_json(t.addr).await;
    raw_join(&mut raw).await;
    let big = format!("[16, 1, {{}}, \"t\", [\"{}\"]]", "x".repeat(100 * 1024));
    let _ = futures_util::SinkExt::send(&mut raw, WsMessage::text(big)).await;
    let close = tokio::time::timeout(PROMPT, async {
        loop {
            match raw.next().await {
                Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(close, Some(CloseCode::Size));
    still_working().await;

    // A frame just under the limit is fine.
    let fits = "y".repeat(60 * 1024);
    let r = healthy
        .call("test.echo", vec![json!(fits)], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(r.args[0].as_str().unwrap().len(), fits.len());
    assert_eq!(t.router.session_count(), 1);
}

#[tokio::test]
async fn goodbye_is_answered() {
    let t = start_default().await;
    let mut raw = raw_json(t.addr).await;
    raw_join(&mut raw).await;
    raw_send(&mut raw, r#"[6, {}, "wamp.close.close_realm"]"#).await;
    let goodbye = raw_recv(&mut raw).await.unwrap();
    assert_eq!(goodbye, json!([6, {}, "wamp.close.goodbye_and_out"]));
    assert!(raw_recv(&mut raw).await.is_none());
}

#[tokio::test]
async fn websocket_subprotocol_is_required() {
    let t = start_default().await;
    for offered in ["", "wamp.2.cbor"] {
        match raw_connect(t.addr, offered).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400);
            }
            Err(other) => panic!("expected HTTP 400, got {other}"),
            Ok(_) => panic!("handshake without a WAMP subprotocol must fail"),
        }
    }
    // Autobahn's offer without TLS: the router prefers JSON.
    let ws = raw_connect(
        t.addr,
        "wamp.2.cbor, wamp.2.msgpack, wamp.2.ubjson, wamp.2.json",
    )
    .await;
    assert!(ws.is_ok());
}

#[tokio::test]
async fn dead_peer_is_dropped_and_on_leave_published() {
    let t = start(RouterConfig {
        ping_interval: Some(Duration::from_millis(100)),
        ping_timeout: Duration::from_millis(500),
        ..RouterConfig::default()
    })
    .await;
    let observer = t
        .router
        .local_session(REALM, "cloud", "admin")
        .await
        .unwrap();
    let mut leaves = collect(&observer, "wamp.session.on_leave").await;
    // Joins, then never reads again: no pongs.
    let mut silent = raw_json(t.addr).await;
    let silent_id = raw_join(&mut silent).await;
    // A well-behaved client (it answers pings) stays.
    let alive = join(&t.url).await;
    let started = Instant::now();
    let left = event_where(&mut leaves, |e| e.args[0] == json!(silent_id)).await;
    let elapsed = started.elapsed();
    // Timeout 500 ms; generous margin for a loaded CI machine, still "within seconds".
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_eq!(left.args[0], json!(silent_id));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!alive.is_closed());
    alive
        .call("wamp.session.count", vec![], Kwargs::new())
        .await
        .unwrap();
    drop(silent);
}

#[tokio::test]
async fn client_notices_dead_router_link() {
    // A "router" that accepts the WebSocket, welcomes, then never answers pings.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        #[allow(clippy::result_large_err)]
        let callback = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
                        mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
            response.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                "wamp.2.json".parse().unwrap(),
            );
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .unwrap();
        let _hello = ws.next().await;
        futures_util::SinkExt::send(
            &mut ws,
            WsMessage::text(r#"[2, 77, {"authrole": "anonymous"}]"#),
        )
        .await
        .unwrap();
        // Hold the socket without reading.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    });
    let mut config = client_config();
    config.ping_interval = Some(Duration::from_millis(100));
    config.ping_timeout = Duration::from_millis(400);
    let session = connect(&format!("ws://{addr}/"), config).await.unwrap();
    assert_eq!(session.id(), 77);
    let pending = tokio::spawn({
        let s = session.clone();
        async move {
            s.call_with_timeout("x.y", vec![], Kwargs::new(), Duration::ZERO)
                .await
        }
    });
    tokio::time::timeout(Duration::from_secs(3), session.closed())
        .await
        .unwrap();
    let r = tokio::time::timeout(PROMPT, pending)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(WampError::Closed)), "{r:?}");
    assert!(matches!(
        session.call("x.y", vec![], Kwargs::new()).await,
        Err(WampError::Closed)
    ));
}

#[tokio::test]
async fn msgpack_and_json_clients_interoperate() {
    let t = start_default().await;
    let mut packed = client_config();
    packed.serializers = vec![Serializer::Msgpack];
    let mut plain = client_config();
    plain.serializers = vec![Serializer::Json];
    let m = connect(&t.url, packed).await.unwrap();
    let j = connect(&t.url, plain).await.unwrap();
    m.register("mp.echo", echo()).await.unwrap();
    j.register("js.echo", echo()).await.unwrap();
    let payload = vec![
        json!(1.5),
        json!(-7),
        json!(u64::MAX),
        json!({"nested": ["ü", null]}),
    ];
    let r = j
        .call("mp.echo", payload.clone(), kwargs(json!({"b": false})))
        .await
        .unwrap();
    assert_eq!(r.args, payload);
    assert_eq!(r.kwargs["b"], false);
    let r = m
        .call("js.echo", payload.clone(), Kwargs::new())
        .await
        .unwrap();
    assert_eq!(r.args, payload);
    let mut events = collect(&j, "mixed.topic").await;
    m.publish("mixed.topic", vec![json!("from msgpack")], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events).await.args,
        vec![json!("from msgpack")]
    );
}

#[tokio::test]
async fn router_close_ends_sessions_and_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = s4t_wamp::Router::new(RouterConfig::default());
    let serving = tokio::spawn({
        let router = router.clone();
        async move { router.serve(listener).await }
    });
    let url = format!("ws://{addr}/");
    let remote = join(&url).await;
    let local = router.local_session(REALM, "cloud", "admin").await.unwrap();
    router.close();
    tokio::time::timeout(PROMPT, remote.closed()).await.unwrap();
    tokio::time::timeout(PROMPT, local.closed()).await.unwrap();
    tokio::time::timeout(PROMPT, serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(router.session_count(), 0);
    assert!(router.local_session(REALM, "a", "b").await.is_err());
}

#[tokio::test]
async fn subscriptions_and_registrations_go_with_their_session() {
    let t = start_default().await;
    let a = join(&t.url).await;
    let b = join(&t.url).await;
    let sub = a
        .subscribe("t.x", s4t_wamp::event_handler(|_| {}))
        .await
        .unwrap();
    let mut b_events = collect(&b, "t.x").await;
    a.register("a.proc", echo()).await.unwrap();
    a.leave().await;
    // Same topic, fresh state: b still receives, a's procedure is gone.
    let c = join(&t.url).await;
    c.publish("t.x", vec![json!(1)], Kwargs::new())
        .await
        .unwrap();
    assert_eq!(next_event(&mut b_events).await.args, vec![json!(1)]);
    assert_eq!(
        call_error_uri(c.call("a.proc", vec![], Kwargs::new()).await),
        "wamp.error.no_such_procedure"
    );
    b.unsubscribe(sub).await.unwrap_or(());
}

#[tokio::test]
async fn registration_options_as_autobahn_sends_them_and_unsupported_policies() {
    let t = start_default().await;
    let mut raw = raw_json(t.addr).await;
    raw_join(&mut raw).await;
    raw_send(
        &mut raw,
        r#"[64, 1, {"match": "exact", "invoke": "single"}, "a.b"]"#,
    )
    .await;
    assert_eq!(raw_recv(&mut raw).await.unwrap()[0], 65);
    raw_send(&mut raw, r#"[64, 2, {"match": "prefix"}, "a"]"#).await;
    let e = raw_recv(&mut raw).await.unwrap();
    assert_eq!(
        (e[0].clone(), e[1].clone(), e[2].clone()),
        (json!(8), json!(64), json!(2))
    );
    assert_eq!(e[4], "wamp.error.invalid_argument");
    raw_send(&mut raw, r#"[64, 3, {"invoke": "roundrobin"}, "a.c"]"#).await;
    assert_eq!(
        raw_recv(&mut raw).await.unwrap()[4],
        "wamp.error.invalid_argument"
    );
    raw_send(&mut raw, r#"[32, 4, {"match": "wildcard"}, "a..c"]"#).await;
    let e = raw_recv(&mut raw).await.unwrap();
    // "a..c" is no valid URI, so this is a protocol violation before any policy check.
    assert_eq!(e[0], 3, "{e}");
}

#[tokio::test]
async fn cancel_in_skip_mode() {
    let t = start_default().await;
    let callee = join(&t.url).await;
    callee
        .register(
            "test.forever",
            handler(|_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(CallResult::default())
            }),
        )
        .await
        .unwrap();
    let mut raw = raw_json(t.addr).await;
    raw_join(&mut raw).await;
    raw_send(&mut raw, r#"[48, 7, {}, "test.forever"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    raw_send(&mut raw, r#"[49, 7, {"mode": "skip"}]"#).await;
    let e = raw_recv(&mut raw).await.unwrap();
    assert_eq!(e[0], 8);
    assert_eq!(e[1], 48);
    assert_eq!(e[2], 7);
    assert_eq!(e[4], "wamp.error.canceled");
    raw_send(&mut raw, r#"[32, 8, {"match": "prefix"}, "a"]"#).await;
    let e = raw_recv(&mut raw).await.unwrap();
    assert_eq!((e[0].clone(), e[1].clone()), (json!(8), json!(32)));
    assert_eq!(e[4], "wamp.error.invalid_argument");
}

/// Many sessions calling and publishing concurrently: everything answered, nothing stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_load() {
    let t = start_default().await;
    let callee = join(&t.url).await;
    callee.register("load.echo", echo()).await.unwrap();
    let local = t
        .router
        .local_session(REALM, "cloud", "cloud")
        .await
        .unwrap();
    local.register("load.local", echo()).await.unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    local
        .subscribe(
            "load.topic",
            s4t_wamp::event_handler(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let url = t.url.clone();
        tasks.push(tokio::spawn(async move {
            let s = join(&url).await;
            for j in 0..20u64 {
                let procedure = if j % 2 == 0 {
                    "load.echo"
                } else {
                    "load.local"
                };
                let r = s
                    .call(procedure, vec![json!(i), json!(j)], Kwargs::new())
                    .await
                    .unwrap();
                assert_eq!(r.args, vec![json!(i), json!(j)]);
                s.publish("load.topic", vec![json!(j)], Kwargs::new())
                    .await
                    .unwrap();
            }
            s.leave().await;
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
    }
    wait_until(|| received.load(Ordering::SeqCst) == 50 * 20).await;
    wait_until(|| t.router.session_count() == 2).await;
}
