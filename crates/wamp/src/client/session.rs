//! The client session: a WAMP protocol state machine over a message transport (a channel
//! pair), whatever carries the messages: a WebSocket or the router in the same process.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use crate::auth::wampcra_sign;
use crate::client::ClientAuth;
use crate::codec::ProtocolError;
use crate::error::{CallError, WampError};
use crate::message::{code, Args, Dict, Id, Kwargs, Message, MAX_ID};
use crate::transport::{MessageRx, MessageTx};
use crate::uri;

/// The answer of a successful call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResult {
    pub args: Args,
    pub kwargs: Kwargs,
}

impl CallResult {
    pub fn new(args: Args, kwargs: Kwargs) -> Self {
        CallResult { args, kwargs }
    }

    /// A result with positional arguments only.
    pub fn args(args: Args) -> Self {
        CallResult {
            args,
            kwargs: Kwargs::new(),
        }
    }
}

/// A call received by a registered procedure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub args: Args,
    pub kwargs: Kwargs,
    /// INVOCATION details; the router puts `caller`, `caller_authid`, `caller_authrole` and
    /// `procedure` here.
    pub details: Dict,
}

/// An event received on a subscription.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub args: Args,
    pub kwargs: Kwargs,
    pub details: Dict,
    pub topic: String,
}

/// A procedure implementation. Each invocation runs in its own task.
pub type Handler =
    Arc<dyn Fn(Invocation) -> BoxFuture<'static, Result<CallResult, CallError>> + Send + Sync>;

/// An event callback; it runs on the session's receive task, so it should not block.
pub type EventHandler = Arc<dyn Fn(Event) + Send + Sync>;

/// Wraps an async function as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Invocation) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CallResult, CallError>> + Send + 'static,
{
    Arc::new(move |invocation| Box::pin(f(invocation)))
}

/// Wraps a closure as an [`EventHandler`].
pub fn event_handler<F>(f: F) -> EventHandler
where
    F: Fn(Event) + Send + Sync + 'static,
{
    Arc::new(f)
}

/// A joined WAMP session. Cheap to clone; the connection lives in a background task and stays
/// up until [`leave`](Self::leave), the peer closing, or a link failure, even when all handles
/// are dropped (registered procedures keep being served).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("realm", &self.inner.realm)
            .field("closed", &self.is_closed())
            .finish()
    }
}

struct Inner {
    id: Id,
    realm: String,
    welcome: Dict,
    default_call_timeout: Duration,
    state: Mutex<State>,
    closed: watch::Sender<bool>,
}

struct State {
    /// `None` once the session is over; dropping it closes the transport.
    tx: Option<MessageTx>,
    next_request: Id,
    pending: HashMap<Id, Pending>,
    registrations: HashMap<Id, Handler>,
    subscriptions: HashMap<Id, Subscription>,
    leaving: bool,
}

struct Subscription {
    topic: String,
    handlers: Vec<EventHandler>,
}

struct Pending {
    reply: oneshot::Sender<Result<Message, WampError>>,
    /// Applied by the receive task, before any message that depends on it is processed.
    on_success: OnSuccess,
}

enum OnSuccess {
    Nothing,
    AddRegistration(Handler),
    RemoveRegistration(Id),
    AddSubscription(String, EventHandler),
    RemoveSubscription(Id),
}

/// Joins `realm` over a transport: HELLO, optional authentication, WELCOME.
pub(crate) async fn join(
    tx: MessageTx,
    mut rx: MessageRx,
    realm: &str,
    auth: Option<&ClientAuth>,
    default_call_timeout: Duration,
) -> Result<Session, WampError> {
    let mut details = Dict::new();
    details.insert(
        "roles".into(),
        json!({
            "caller": {"features": {"call_timeout": true}},
            "callee": {"features": {"caller_identification": true}},
            "publisher": {"features": {"publisher_exclusion": true}},
            "subscriber": {"features": {}},
        }),
    );
    details.insert(
        "agent".into(),
        json!(concat!("s4t-wamp/", env!("CARGO_PKG_VERSION"))),
    );
    let authmethod = match auth {
        None => "anonymous",
        Some(ClientAuth::Ticket { authid, .. }) => {
            details.insert("authid".into(), json!(authid));
            "ticket"
        }
        Some(ClientAuth::WampCra { authid, .. }) => {
            details.insert("authid".into(), json!(authid));
            "wampcra"
        }
    };
    details.insert("authmethods".into(), json!([authmethod]));
    if !tx.send(Message::Hello {
        realm: realm.to_string(),
        details,
    }) {
        return Err(WampError::Closed);
    }
    loop {
        match rx.recv().await {
            None => return Err(WampError::Closed),
            Some(Message::Welcome { session, details }) => {
                return Ok(Session::start(
                    session,
                    realm.to_string(),
                    details,
                    default_call_timeout,
                    tx,
                    rx,
                ))
            }
            Some(Message::Abort { details, reason }) => {
                let message = details
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                return Err(WampError::Aborted { reason, message });
            }
            Some(Message::Challenge { authmethod, extra }) => {
                let signature = match (auth, authmethod.as_str()) {
                    (Some(ClientAuth::Ticket { ticket, .. }), "ticket") => ticket.clone(),
                    (Some(ClientAuth::WampCra { secret, .. }), "wampcra") => {
                        if extra.contains_key("salt") {
                            return Err(WampError::Transport(
                                "salted WAMP-CRA is not supported".into(),
                            ));
                        }
                        let Some(challenge) = extra.get("challenge").and_then(Value::as_str) else {
                            return Err(ProtocolError::new(
                                "CHALLENGE: wampcra without a challenge string",
                            )
                            .into());
                        };
                        wampcra_sign(secret, challenge)
                    }
                    _ => {
                        return Err(ProtocolError::new(format!(
                            "CHALLENGE for authmethod {authmethod:?}, which was not offered"
                        ))
                        .into())
                    }
                };
                tx.send(Message::Authenticate {
                    signature,
                    extra: Dict::new(),
                });
            }
            Some(other) => {
                return Err(ProtocolError::new(format!(
                    "expected WELCOME, ABORT or CHALLENGE, got {}",
                    other.name()
                ))
                .into())
            }
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Session {
    fn start(
        id: Id,
        realm: String,
        welcome: Dict,
        default_call_timeout: Duration,
        tx: MessageTx,
        rx: MessageRx,
    ) -> Session {
        let (closed, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            id,
            realm,
            welcome,
            default_call_timeout,
            state: Mutex::new(State {
                tx: Some(tx),
                next_request: 1,
                pending: HashMap::new(),
                registrations: HashMap::new(),
                subscriptions: HashMap::new(),
                leaving: false,
            }),
            closed,
        });
        tokio::spawn(receive(inner.clone(), rx));
        Session { inner }
    }

    /// The session id the router assigned.
    pub fn id(&self) -> Id {
        self.inner.id
    }

    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// WELCOME details: `authid`, `authrole`, `authmethod`, `roles`, ...
    pub fn welcome_details(&self) -> &Dict {
        &self.inner.welcome
    }

    /// Calls a procedure with the session's default timeout.
    pub async fn call(
        &self,
        procedure: &str,
        args: Args,
        kwargs: Kwargs,
    ) -> Result<CallResult, WampError> {
        self.call_with_timeout(procedure, args, kwargs, self.inner.default_call_timeout)
            .await
    }

    /// Calls a procedure. The timeout applies here and is sent to the router as
    /// `options.timeout`; `Duration::ZERO` means none.
    pub async fn call_with_timeout(
        &self,
        procedure: &str,
        args: Args,
        kwargs: Kwargs,
        timeout: Duration,
    ) -> Result<CallResult, WampError> {
        let mut options = Dict::new();
        if !timeout.is_zero() {
            options.insert("timeout".into(), json!(ms(timeout).max(1)));
        }
        let (request, reply) = self.request(OnSuccess::Nothing, |request| Message::Call {
            request,
            options,
            procedure: procedure.to_string(),
            args,
            kwargs,
        })?;
        let outcome = if timeout.is_zero() {
            reply.await
        } else {
            match tokio::time::timeout(timeout, reply).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    self.inner.lock().pending.remove(&request);
                    return Err(WampError::Timeout);
                }
            }
        };
        match outcome.unwrap_or(Err(WampError::Closed))? {
            Message::Result { args, kwargs, .. } => Ok(CallResult { args, kwargs }),
            other => Err(unexpected_reply("CALL", &other)),
        }
    }

    /// Registers a procedure; invocations run `handler` concurrently, each in its own task.
    pub async fn register(&self, procedure: &str, handler: Handler) -> Result<Id, WampError> {
        let mut options = Dict::new();
        options.insert("match".into(), json!("exact"));
        options.insert("invoke".into(), json!("single"));
        let reply = self.request_reply(OnSuccess::AddRegistration(handler), |request| {
            Message::Register {
                request,
                options,
                procedure: procedure.to_string(),
            }
        });
        match reply.await? {
            Message::Registered { registration, .. } => Ok(registration),
            other => Err(unexpected_reply("REGISTER", &other)),
        }
    }

    pub async fn unregister(&self, registration: Id) -> Result<(), WampError> {
        let reply = self.request_reply(OnSuccess::RemoveRegistration(registration), |request| {
            Message::Unregister {
                request,
                registration,
            }
        });
        match reply.await? {
            Message::Unregistered { .. } => Ok(()),
            other => Err(unexpected_reply("UNREGISTER", &other)),
        }
    }

    /// Subscribes to a topic; events are delivered to `handler` in order.
    pub async fn subscribe(&self, topic: &str, handler: EventHandler) -> Result<Id, WampError> {
        let reply = self.request_reply(
            OnSuccess::AddSubscription(topic.to_string(), handler),
            |request| Message::Subscribe {
                request,
                options: Dict::new(),
                topic: topic.to_string(),
            },
        );
        match reply.await? {
            Message::Subscribed { subscription, .. } => Ok(subscription),
            other => Err(unexpected_reply("SUBSCRIBE", &other)),
        }
    }

    /// Drops a subscription (all handlers subscribed under it).
    pub async fn unsubscribe(&self, subscription: Id) -> Result<(), WampError> {
        let reply = self.request_reply(OnSuccess::RemoveSubscription(subscription), |request| {
            Message::Unsubscribe {
                request,
                subscription,
            }
        });
        match reply.await? {
            Message::Unsubscribed { .. } => Ok(()),
            other => Err(unexpected_reply("UNSUBSCRIBE", &other)),
        }
    }

    /// Publishes without acknowledgement: returns once queued; errors (e.g. not authorized)
    /// are not reported. Use [`publish_acknowledged`](Self::publish_acknowledged) for that.
    pub async fn publish(&self, topic: &str, args: Args, kwargs: Kwargs) -> Result<(), WampError> {
        let mut state = self.inner.lock();
        let request = state.next_request_id();
        let tx = state.tx.as_ref().ok_or(WampError::Closed)?;
        let sent = tx.send(Message::Publish {
            request,
            options: Dict::new(),
            topic: topic.to_string(),
            args,
            kwargs,
        });
        if sent {
            Ok(())
        } else {
            Err(WampError::Closed)
        }
    }

    /// Publishes and waits for the router's PUBLISHED (or ERROR); returns the publication id.
    pub async fn publish_acknowledged(
        &self,
        topic: &str,
        args: Args,
        kwargs: Kwargs,
    ) -> Result<Id, WampError> {
        let mut options = Dict::new();
        options.insert("acknowledge".into(), json!(true));
        let reply = self.request_reply(OnSuccess::Nothing, |request| Message::Publish {
            request,
            options,
            topic: topic.to_string(),
            args,
            kwargs,
        });
        match reply.await? {
            Message::Published { publication, .. } => Ok(publication),
            other => Err(unexpected_reply("PUBLISH", &other)),
        }
    }

    /// Says GOODBYE, waits briefly for the router's answer, and closes the connection.
    pub async fn leave(&self) {
        let first_call = {
            let mut state = self.inner.lock();
            let first_call = !state.leaving;
            state.leaving = true;
            if first_call {
                state.send(Message::Goodbye {
                    details: Dict::new(),
                    reason: uri::CLOSE_REALM.into(),
                });
            }
            first_call
        };
        let answered = tokio::time::timeout(Duration::from_secs(5), self.closed()).await;
        if first_call && answered.is_err() {
            // The router did not answer: close the transport ourselves.
            self.inner.lock().tx = None;
            self.closed().await;
        }
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Resolves when the session ends for any reason.
    pub async fn closed(&self) {
        let mut watcher = self.inner.closed.subscribe();
        let _ = watcher.wait_for(|closed| *closed).await;
    }

    /// Queues a request; the receive task answers through the returned channel.
    fn request(
        &self,
        on_success: OnSuccess,
        build: impl FnOnce(Id) -> Message,
    ) -> Result<(Id, oneshot::Receiver<Result<Message, WampError>>), WampError> {
        let mut state = self.inner.lock();
        if state.tx.is_none() {
            return Err(WampError::Closed);
        }
        let request = state.next_request_id();
        let (reply, receiver) = oneshot::channel();
        state.pending.insert(request, Pending { reply, on_success });
        let sent = state.tx.as_ref().is_some_and(|tx| tx.send(build(request)));
        if !sent {
            state.pending.remove(&request);
            return Err(WampError::Closed);
        }
        Ok((request, receiver))
    }

    /// [`request`](Self::request) without a timeout: the router always answers these, or the
    /// link drops and they fail with `Closed`.
    fn request_reply(
        &self,
        on_success: OnSuccess,
        build: impl FnOnce(Id) -> Message,
    ) -> impl Future<Output = Result<Message, WampError>> {
        let queued = self.request(on_success, build);
        async move {
            let (_, reply) = queued?;
            reply.await.unwrap_or(Err(WampError::Closed))
        }
    }
}

fn unexpected_reply(request: &str, reply: &Message) -> WampError {
    ProtocolError::new(format!("{} in answer to {request}", reply.name())).into()
}

impl State {
    fn next_request_id(&mut self) -> Id {
        let id = self.next_request;
        self.next_request = if id >= MAX_ID { 1 } else { id + 1 };
        id
    }

    fn send(&self, message: Message) {
        if let Some(tx) = &self.tx {
            tx.send(message);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the session: the transport closes, pending requests fail with `Closed`, handlers
    /// are dropped (they may hold session handles), and `closed()` resolves.
    fn finish(&self) {
        let (pending, registrations, subscriptions) = {
            let mut state = self.lock();
            state.tx = None;
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.registrations),
                std::mem::take(&mut state.subscriptions),
            )
        };
        for (_, p) in pending {
            let _ = p.reply.send(Err(WampError::Closed));
        }
        drop((registrations, subscriptions));
        self.closed.send_replace(true);
    }

    fn complete(&self, request: Id, outcome: Result<Message, WampError>) {
        let reply = {
            let mut state = self.lock();
            let Some(Pending { reply, on_success }) = state.pending.remove(&request) else {
                return;
            };
            match (on_success, &outcome) {
                (
                    OnSuccess::AddRegistration(handler),
                    Ok(Message::Registered { registration, .. }),
                ) => {
                    state.registrations.insert(*registration, handler);
                }
                (OnSuccess::RemoveRegistration(id), Ok(_)) => {
                    state.registrations.remove(&id);
                }
                (
                    OnSuccess::AddSubscription(topic, handler),
                    Ok(Message::Subscribed { subscription, .. }),
                ) => {
                    state
                        .subscriptions
                        .entry(*subscription)
                        .or_insert_with(|| Subscription {
                            topic,
                            handlers: Vec::new(),
                        })
                        .handlers
                        .push(handler);
                }
                (OnSuccess::RemoveSubscription(id), Ok(_)) => {
                    state.subscriptions.remove(&id);
                }
                _ => {}
            }
            reply
        };
        let _ = reply.send(outcome);
    }

    fn dispatch(self: &Arc<Self>, message: Message) {
        match message {
            Message::Result { request, .. }
            | Message::Registered { request, .. }
            | Message::Unregistered { request }
            | Message::Subscribed { request, .. }
            | Message::Unsubscribed { request }
            | Message::Published { request, .. } => {
                self.complete(request, Ok(message));
            }
            Message::Error {
                request,
                error,
                args,
                kwargs,
                ..
            } => self.complete(
                request,
                Err(WampError::Call(CallError {
                    error,
                    args,
                    kwargs,
                })),
            ),
            Message::Invocation {
                request,
                registration,
                details,
                args,
                kwargs,
            } => self.invoke(request, registration, details, args, kwargs),
            Message::Event {
                subscription,
                details,
                args,
                kwargs,
                ..
            } => self.deliver(subscription, details, args, kwargs),
            Message::Goodbye { .. } => {
                let mut state = self.lock();
                if !state.leaving {
                    state.send(Message::Goodbye {
                        details: Dict::new(),
                        reason: uri::CLOSE_GOODBYE_AND_OUT.into(),
                    });
                }
                state.tx = None;
            }
            Message::Abort { reason, .. } => {
                tracing::warn!(session = self.id, "router aborted the session: {reason}");
                self.lock().tx = None;
            }
            // We never announce call canceling, so an INTERRUPT can be ignored.
            Message::Interrupt { .. } => {}
            other => {
                let text = format!("unexpected {} from the router", other.name());
                tracing::warn!(session = self.id, "{text}");
                let mut state = self.lock();
                let mut details = Dict::new();
                details.insert("message".into(), Value::String(text));
                state.send(Message::Abort {
                    details,
                    reason: uri::PROTOCOL_VIOLATION.into(),
                });
                state.tx = None;
            }
        }
    }

    fn invoke(
        self: &Arc<Self>,
        request: Id,
        registration: Id,
        details: Dict,
        args: Args,
        kwargs: Kwargs,
    ) {
        let handler = self.lock().registrations.get(&registration).cloned();
        let Some(handler) = handler else {
            self.lock().send(error_reply(
                request,
                CallError::with_message(
                    uri::NO_SUCH_REGISTRATION,
                    format!("no registration {registration} in this session"),
                ),
            ));
            return;
        };
        let inner = self.clone();
        let invocation = Invocation {
            args,
            kwargs,
            details,
        };
        tokio::spawn(async move {
            let outcome = AssertUnwindSafe(async move { handler(invocation).await })
                .catch_unwind()
                .await;
            let reply = match outcome {
                Ok(Ok(result)) => Message::Yield {
                    request,
                    options: Dict::new(),
                    args: result.args,
                    kwargs: result.kwargs,
                },
                Ok(Err(error)) => error_reply(request, error),
                Err(_) => error_reply(
                    request,
                    CallError::with_message(uri::RUNTIME_ERROR, "the procedure panicked"),
                ),
            };
            inner.lock().send(reply);
        });
    }

    fn deliver(&self, subscription: Id, details: Dict, args: Args, kwargs: Kwargs) {
        let Some((topic, handlers)) = self
            .lock()
            .subscriptions
            .get(&subscription)
            .map(|s| (s.topic.clone(), s.handlers.clone()))
        else {
            return;
        };
        let event = Event {
            args,
            kwargs,
            details,
            topic,
        };
        for handler in handlers {
            let event = event.clone();
            // A panicking callback must not take the whole session down.
            if std::panic::catch_unwind(AssertUnwindSafe(|| handler(event))).is_err() {
                tracing::error!(session = self.id, "event handler panicked");
            }
        }
    }
}

fn error_reply(request: Id, error: CallError) -> Message {
    Message::Error {
        request_type: code::INVOCATION,
        request,
        details: Dict::new(),
        error: error.error,
        args: error.args,
        kwargs: error.kwargs,
    }
}

/// The receive task: feeds messages from the peer to the state machine until the transport ends.
async fn receive(inner: Arc<Inner>, mut rx: MessageRx) {
    while let Some(message) = rx.recv().await {
        inner.dispatch(message);
        if inner.lock().tx.is_none() {
            break;
        }
    }
    inner.finish();
}
