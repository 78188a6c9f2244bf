//! Routing within one realm: sessions, broker, dealer and the session meta API.
//!
//! All state of a realm sits behind one mutex that is never held across an await; messages
//! are sent into the sessions' unbounded outbound queues while it is held, which keeps every
//! session's view ordered (SUBSCRIBED before the first EVENT, REGISTERED before the first
//! INVOCATION) without a central routing task.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tokio::task::AbortHandle;

use super::{Action, Authorizer, RouterConfig, SessionInfo};
use crate::message::{code, Args, Dict, Id, Kwargs, Message, MAX_ID};
use crate::transport::MessageTx;
use crate::uri;

/// A joined session as seen by its connection driver.
pub(crate) struct SessionCtx {
    pub realm: Arc<Realm>,
    pub info: Arc<SessionInfo>,
}

pub(crate) struct Realm {
    name: String,
    state: Mutex<RealmState>,
    authorizer: Option<Arc<dyn Authorizer>>,
    default_call_timeout: Duration,
    max_pending_calls: usize,
    closed: AtomicBool,
    next_invocation: AtomicU64,
}

#[derive(Default)]
struct RealmState {
    sessions: HashMap<Id, SessionEntry>,
    topics: HashMap<String, Topic>,
    subscriptions: HashMap<Id, String>,
    procedures: HashMap<String, Procedure>,
    registrations: HashMap<Id, String>,
    calls: HashMap<Id, PendingCall>,
    next_subscription: Id,
    next_registration: Id,
}

struct SessionEntry {
    /// The only long-lived sender of the session's outbound queue: dropping the entry ends
    /// the queue, which tells the connection driver to close.
    tx: MessageTx,
    info: Arc<SessionInfo>,
    subscriptions: Vec<Id>,
    registrations: Vec<Id>,
    pending_calls: usize,
    /// Calls in flight where this session is the caller or the callee, so that a session
    /// leaving settles its own calls without scanning every call of the realm.
    calls: HashSet<Id>,
}

struct Topic {
    id: Id,
    subscribers: HashSet<Id>,
}

struct Procedure {
    id: Id,
    callee: Id,
}

struct PendingCall {
    caller: Id,
    caller_request: Id,
    callee: Id,
    timer: AbortHandle,
}

fn error_message(request_type: u64, request: Id, uri: &str, message: impl Into<String>) -> Message {
    Message::Error {
        request_type,
        request,
        details: Dict::new(),
        error: uri.to_string(),
        args: vec![Value::String(message.into())],
        kwargs: Kwargs::new(),
    }
}

/// The `wamp.` prefix is the router's (meta API); peers may not register or publish under it.
fn is_reserved(uri: &str) -> bool {
    uri.starts_with("wamp.")
}

fn opt_bool(options: &Dict, key: &str) -> Option<bool> {
    options.get(key).and_then(Value::as_bool)
}

fn opt_ids(options: &Dict, key: &str) -> Option<HashSet<Id>> {
    options
        .get(key)
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
}

pub(crate) fn random_id() -> Id {
    rand::thread_rng().gen_range(1..=MAX_ID)
}

/// Details of a session as published by the meta API.
pub(crate) fn session_details(info: &SessionInfo) -> Dict {
    let transport = match info.peer {
        Some(addr) => {
            let family = if addr.is_ipv4() { "tcp4" } else { "tcp6" };
            json!({"type": "websocket", "peer": format!("{family}:{addr}")})
        }
        None => json!({"type": "local"}),
    };
    let details = json!({
        "session": info.id,
        "realm": info.realm,
        "authid": info.authid,
        "authrole": info.authrole,
        "authmethod": info.authmethod,
        "authprovider": authprovider(&info.authmethod),
        "transport": transport,
    });
    match details {
        Value::Object(map) => map,
        _ => Dict::new(),
    }
}

pub(crate) fn authprovider(authmethod: &str) -> &'static str {
    match authmethod {
        "anonymous" => "anonymous",
        "trusted" => "router",
        _ => "static",
    }
}

impl Realm {
    pub(crate) fn new(name: String, config: &RouterConfig) -> Realm {
        Realm {
            name,
            state: Mutex::new(RealmState {
                next_subscription: 1,
                next_registration: 1,
                ..Default::default()
            }),
            authorizer: config.authorizer.clone(),
            default_call_timeout: config.default_call_timeout,
            max_pending_calls: config.max_pending_calls_per_session,
            closed: AtomicBool::new(false),
            next_invocation: AtomicU64::new(1),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, RealmState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing all further service, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    pub(crate) fn session_info(&self, session: Id) -> Option<SessionInfo> {
        self.lock()
            .sessions
            .get(&session)
            .map(|e| SessionInfo::clone(&e.info))
    }

    /// A session id not in use right now.
    pub(crate) fn fresh_session_id(&self) -> Id {
        let state = self.lock();
        loop {
            let id = random_id();
            if !state.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Adds a joined session: sends WELCOME (with the final session id; a colliding
    /// tentative id is replaced) and announces it on `wamp.session.on_join`.
    /// Refused (returns the queue back) once the realm is shut down.
    pub(crate) fn admit(
        self: &Arc<Self>,
        mut info: SessionInfo,
        tx: MessageTx,
        mut welcome_details: Dict,
    ) -> Result<SessionCtx, MessageTx> {
        let mut state = self.lock();
        if self.closed.load(Ordering::SeqCst) {
            return Err(tx);
        }
        while info.id == 0 || state.sessions.contains_key(&info.id) {
            info.id = random_id();
        }
        let info = Arc::new(info);
        welcome_details.insert("authid".into(), json!(info.authid));
        welcome_details.insert("authrole".into(), json!(info.authrole));
        welcome_details.insert("authmethod".into(), json!(info.authmethod));
        welcome_details.insert("authprovider".into(), json!(authprovider(&info.authmethod)));
        welcome_details.insert("realm".into(), json!(self.name));
        tx.send(Message::Welcome {
            session: info.id,
            details: welcome_details,
        });
        state.sessions.insert(
            info.id,
            SessionEntry {
                tx,
                info: info.clone(),
                subscriptions: Vec::new(),
                registrations: Vec::new(),
                pending_calls: 0,
                calls: HashSet::new(),
            },
        );
        let details = session_details(&info);
        state.publish_meta(uri::SESSION_ON_JOIN, vec![Value::Object(details)]);
        drop(state);
        tracing::debug!(session = info.id, realm = %self.name, authid = ?info.authid, "session joined");
        Ok(SessionCtx {
            realm: self.clone(),
            info,
        })
    }

    /// Removes a session and everything it owns; idempotent. Calls it was serving fail with
    /// `wamp.error.canceled`; calls it made are forgotten.
    pub(crate) fn leave(&self, session: Id) {
        self.leave_with(session, None);
    }

    /// [`leave`](Self::leave), queueing `last` to the session first under the same lock, so
    /// nothing routed concurrently can follow it.
    fn leave_with(&self, session: Id, last: Option<Message>) {
        let mut state = self.lock();
        let Some(entry) = state.remove_session(session) else {
            return;
        };
        if let Some(message) = last {
            entry.tx.send(message);
        }
        state.publish_meta(
            uri::SESSION_ON_LEAVE,
            vec![
                json!(session),
                json!(entry.info.authid),
                json!(entry.info.authrole),
            ],
        );
        drop(state);
        tracing::debug!(session, realm = %self.name, "session left");
    }

    /// Says GOODBYE to every session and forgets all state; later joins are refused.
    pub(crate) fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut state = self.lock();
        for (_, entry) in state.sessions.drain() {
            entry.tx.send(Message::Goodbye {
                details: Dict::new(),
                reason: uri::CLOSE_SYSTEM_SHUTDOWN.into(),
            });
        }
        for (_, call) in state.calls.drain() {
            call.timer.abort();
        }
        state.topics.clear();
        state.subscriptions.clear();
        state.procedures.clear();
        state.registrations.clear();
    }

    fn authorized(&self, ctx: &SessionCtx, action: Action, uri: &str) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize(&ctx.info, action, uri))
    }

    /// Sends to one session if it is still joined.
    fn reply(&self, session: Id, message: Message) {
        if let Some(entry) = self.lock().sessions.get(&session) {
            entry.tx.send(message);
        }
    }

    /// Handles a message from a joined session. Messages that end the session (GOODBYE,
    /// ABORT, protocol violations) remove it, which closes its outbound queue.
    pub(crate) fn handle(self: &Arc<Self>, ctx: &SessionCtx, message: Message) {
        let session = ctx.info.id;
        match message {
            Message::Publish {
                request,
                options,
                topic,
                args,
                kwargs,
            } => self.publish(ctx, request, options, topic, args, kwargs),
            Message::Subscribe {
                request,
                options,
                topic,
            } => self.subscribe(ctx, request, options, topic),
            Message::Unsubscribe {
                request,
                subscription,
            } => self.unsubscribe(session, request, subscription),
            Message::Call {
                request,
                options,
                procedure,
                args,
                kwargs,
            } => self.call(ctx, request, options, procedure, args, kwargs),
            Message::Cancel { request, .. } => self.cancel(session, request),
            Message::Register {
                request,
                options,
                procedure,
            } => self.register(ctx, request, options, procedure),
            Message::Unregister {
                request,
                registration,
            } => self.unregister(session, request, registration),
            Message::Yield {
                request,
                args,
                kwargs,
                ..
            } => self.finish_call(session, request, |caller_request| Message::Result {
                request: caller_request,
                details: Dict::new(),
                args,
                kwargs,
            }),
            Message::Error {
                request_type: code::INVOCATION,
                request,
                details,
                error,
                args,
                kwargs,
            } => self.finish_call(session, request, |caller_request| Message::Error {
                request_type: code::CALL,
                request: caller_request,
                details,
                error,
                args,
                kwargs,
            }),
            Message::Goodbye { .. } => {
                let goodbye = Message::Goodbye {
                    details: Dict::new(),
                    reason: uri::CLOSE_GOODBYE_AND_OUT.into(),
                };
                self.leave_with(session, Some(goodbye));
            }
            Message::Abort { .. } => self.leave(session),
            other => {
                let text = format!("unexpected {} from a joined session", other.name());
                tracing::debug!(session, "protocol violation: {text}");
                self.leave_with(session, Some(abort(uri::PROTOCOL_VIOLATION, text)));
            }
        }
    }

    fn publish(
        &self,
        ctx: &SessionCtx,
        request: Id,
        options: Dict,
        topic: String,
        args: Args,
        kwargs: Kwargs,
    ) {
        let publisher = ctx.info.id;
        let acknowledge = opt_bool(&options, "acknowledge").unwrap_or(false);
        // Errors for publications are only reported when acknowledgement was asked for.
        let refuse = |uri: &str, text: String| {
            if acknowledge {
                self.reply(publisher, error_message(code::PUBLISH, request, uri, text));
            }
        };
        if is_reserved(&topic) {
            return refuse(
                uri::INVALID_URI,
                format!("topic '{topic}' is reserved for the router"),
            );
        }
        if !self.authorized(ctx, Action::Publish, &topic) {
            return refuse(
                uri::NOT_AUTHORIZED,
                format!("session is not authorized to publish to '{topic}'"),
            );
        }
        let exclude_me = opt_bool(&options, "exclude_me").unwrap_or(true);
        let exclude = opt_ids(&options, "exclude").unwrap_or_default();
        let eligible = opt_ids(&options, "eligible");
        let state = self.lock();
        let publication = random_id();
        if let Some(t) = state.topics.get(&topic) {
            for subscriber in &t.subscribers {
                if (exclude_me && *subscriber == publisher)
                    || exclude.contains(subscriber)
                    || eligible.as_ref().is_some_and(|e| !e.contains(subscriber))
                {
                    continue;
                }
                if let Some(entry) = state.sessions.get(subscriber) {
                    entry.tx.send(Message::Event {
                        subscription: t.id,
                        publication,
                        details: Dict::new(),
                        args: args.clone(),
                        kwargs: kwargs.clone(),
                    });
                }
            }
        }
        if acknowledge {
            if let Some(entry) = state.sessions.get(&publisher) {
                entry.tx.send(Message::Published {
                    request,
                    publication,
                });
            }
        }
    }

    fn subscribe(&self, ctx: &SessionCtx, request: Id, options: Dict, topic: String) {
        let session = ctx.info.id;
        if options
            .get("match")
            .is_some_and(|m| m.as_str() != Some("exact"))
        {
            let text = "only match 'exact' is supported".to_string();
            return self.reply(
                session,
                error_message(code::SUBSCRIBE, request, uri::INVALID_ARGUMENT, text),
            );
        }
        if !self.authorized(ctx, Action::Subscribe, &topic) {
            let text = format!("session is not authorized to subscribe to '{topic}'");
            return self.reply(
                session,
                error_message(code::SUBSCRIBE, request, uri::NOT_AUTHORIZED, text),
            );
        }
        let mut state = self.lock();
        let state = &mut *state;
        let Some(entry) = state.sessions.get_mut(&session) else {
            return;
        };
        let subscription = match state.topics.get_mut(&topic) {
            Some(t) => {
                t.subscribers.insert(session);
                t.id
            }
            None => {
                let id = state.next_subscription;
                state.next_subscription += 1;
                state.subscriptions.insert(id, topic.clone());
                state.topics.insert(
                    topic,
                    Topic {
                        id,
                        subscribers: HashSet::from([session]),
                    },
                );
                id
            }
        };
        if !entry.subscriptions.contains(&subscription) {
            entry.subscriptions.push(subscription);
        }
        entry.tx.send(Message::Subscribed {
            request,
            subscription,
        });
    }

    fn unsubscribe(&self, session: Id, request: Id, subscription: Id) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(entry) = state.sessions.get_mut(&session) else {
            return;
        };
        if let Some(position) = entry.subscriptions.iter().position(|s| *s == subscription) {
            entry.subscriptions.swap_remove(position);
            entry.tx.send(Message::Unsubscribed { request });
            state.drop_subscriber(subscription, session);
        } else {
            entry.tx.send(error_message(
                code::UNSUBSCRIBE,
                request,
                uri::NO_SUCH_SUBSCRIPTION,
                format!("no subscription {subscription} for this session"),
            ));
        }
    }

    fn register(&self, ctx: &SessionCtx, request: Id, options: Dict, procedure: String) {
        let session = ctx.info.id;
        let refuse = |uri: &str, text: String| {
            self.reply(session, error_message(code::REGISTER, request, uri, text))
        };
        if is_reserved(&procedure) {
            return refuse(
                uri::INVALID_URI,
                format!("procedure '{procedure}' is reserved for the router"),
            );
        }
        let policy_ok = |key: &str, supported: &str| {
            options
                .get(key)
                .is_none_or(|v| v.as_str() == Some(supported))
        };
        if !policy_ok("match", "exact") || !policy_ok("invoke", "single") {
            return refuse(
                uri::INVALID_ARGUMENT,
                "only match 'exact' and invoke 'single' are supported".into(),
            );
        }
        if !self.authorized(ctx, Action::Register, &procedure) {
            return refuse(
                uri::NOT_AUTHORIZED,
                format!("session is not authorized to register '{procedure}'"),
            );
        }
        let mut state = self.lock();
        let state = &mut *state;
        let Some(entry) = state.sessions.get_mut(&session) else {
            return;
        };
        if state.procedures.contains_key(&procedure) {
            entry.tx.send(error_message(
                code::REGISTER,
                request,
                uri::PROCEDURE_ALREADY_EXISTS,
                format!("procedure '{procedure}' is already registered"),
            ));
            return;
        }
        let registration = state.next_registration;
        state.next_registration += 1;
        state.registrations.insert(registration, procedure.clone());
        state.procedures.insert(
            procedure,
            Procedure {
                id: registration,
                callee: session,
            },
        );
        entry.registrations.push(registration);
        entry.tx.send(Message::Registered {
            request,
            registration,
        });
    }

    fn unregister(&self, session: Id, request: Id, registration: Id) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(entry) = state.sessions.get_mut(&session) else {
            return;
        };
        if let Some(position) = entry.registrations.iter().position(|r| *r == registration) {
            entry.registrations.swap_remove(position);
            if let Some(procedure) = state.registrations.remove(&registration) {
                state.procedures.remove(&procedure);
            }
            entry.tx.send(Message::Unregistered { request });
        } else {
            entry.tx.send(error_message(
                code::UNREGISTER,
                request,
                uri::NO_SUCH_REGISTRATION,
                format!("no registration {registration} for this session"),
            ));
        }
    }

    fn call(
        self: &Arc<Self>,
        ctx: &SessionCtx,
        request: Id,
        options: Dict,
        procedure: String,
        args: Args,
        kwargs: Kwargs,
    ) {
        let caller = ctx.info.id;
        let refuse = |uri: &str, text: String| {
            self.reply(caller, error_message(code::CALL, request, uri, text))
        };
        if !self.authorized(ctx, Action::Call, &procedure) {
            return refuse(
                uri::NOT_AUTHORIZED,
                format!("session is not authorized to call '{procedure}'"),
            );
        }
        let timeout = match options.get("timeout").and_then(Value::as_u64) {
            Some(ms) if ms > 0 => Duration::from_millis(ms),
            _ => self.default_call_timeout,
        };
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(callee) = state.procedures.get(&procedure).map(|p| (p.id, p.callee)) else {
            if let Some(result) = state.meta_call(&procedure, &args) {
                let reply = match result {
                    Ok(args) => Message::Result {
                        request,
                        details: Dict::new(),
                        args,
                        kwargs: Kwargs::new(),
                    },
                    Err((uri, text)) => error_message(code::CALL, request, uri, text),
                };
                if let Some(entry) = state.sessions.get(&caller) {
                    entry.tx.send(reply);
                }
                return;
            }
            drop(guard);
            return refuse(
                uri::NO_SUCH_PROCEDURE,
                format!("no callee registered for procedure '{procedure}'"),
            );
        };
        let (registration, callee) = callee;
        let Some(caller_entry) = state.sessions.get_mut(&caller) else {
            return;
        };
        if caller_entry.pending_calls >= self.max_pending_calls {
            caller_entry.tx.send(error_message(
                code::CALL,
                request,
                uri::LIMIT_EXCEEDED,
                format!(
                    "too many pending calls (limit {} per session)",
                    self.max_pending_calls
                ),
            ));
            return;
        }
        let invocation = self.next_invocation.fetch_add(1, Ordering::Relaxed) % MAX_ID + 1;
        let mut details = Dict::new();
        details.insert("caller".into(), json!(caller));
        details.insert("caller_authid".into(), json!(ctx.info.authid));
        details.insert("caller_authrole".into(), json!(ctx.info.authrole));
        details.insert("procedure".into(), json!(procedure));
        let delivered = state.sessions.get(&callee).is_some_and(|entry| {
            entry.tx.send(Message::Invocation {
                request: invocation,
                registration,
                details,
                args,
                kwargs,
            })
        });
        let Some(caller_entry) = state.sessions.get_mut(&caller) else {
            return;
        };
        if !delivered {
            caller_entry.tx.send(error_message(
                code::CALL,
                request,
                uri::CANCELED,
                format!("the callee of '{procedure}' is gone"),
            ));
            return;
        }
        caller_entry.pending_calls += 1;
        let realm = Arc::downgrade(self);
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(realm) = realm.upgrade() {
                realm.expire_call(invocation, timeout);
            }
        })
        .abort_handle();
        if let Some(e) = state.sessions.get_mut(&caller) {
            e.calls.insert(invocation);
        }
        if let Some(e) = state.sessions.get_mut(&callee) {
            e.calls.insert(invocation);
        }
        state.calls.insert(
            invocation,
            PendingCall {
                caller,
                caller_request: request,
                callee,
                timer,
            },
        );
    }

    /// Completes a call with the callee's answer; late or foreign answers are ignored.
    fn finish_call(&self, callee: Id, invocation: Id, answer: impl FnOnce(Id) -> Message) {
        let mut state = self.lock();
        if state
            .calls
            .get(&invocation)
            .is_none_or(|c| c.callee != callee)
        {
            return;
        }
        if let Some(call) = state.take_call(invocation) {
            call.timer.abort();
            if let Some(entry) = state.sessions.get_mut(&call.caller) {
                entry.pending_calls = entry.pending_calls.saturating_sub(1);
                entry.tx.send(answer(call.caller_request));
            }
        }
    }

    fn expire_call(&self, invocation: Id, timeout: Duration) {
        let mut state = self.lock();
        if let Some(call) = state.take_call(invocation) {
            if let Some(entry) = state.sessions.get_mut(&call.caller) {
                entry.pending_calls = entry.pending_calls.saturating_sub(1);
                entry.tx.send(error_message(
                    code::CALL,
                    call.caller_request,
                    uri::TIMEOUT,
                    format!("call timed out after {} ms", timeout.as_millis()),
                ));
            }
        }
    }

    /// CANCEL in "skip" mode: the caller gets `wamp.error.canceled` now, the callee's answer
    /// is ignored when it comes.
    fn cancel(&self, caller: Id, request: Id) {
        let mut state = self.lock();
        let found = state
            .calls
            .iter()
            .find(|(_, c)| c.caller == caller && c.caller_request == request)
            .map(|(id, _)| *id);
        let Some(invocation) = found else {
            return;
        };
        if let Some(call) = state.take_call(invocation) {
            call.timer.abort();
        }
        if let Some(entry) = state.sessions.get_mut(&caller) {
            entry.pending_calls = entry.pending_calls.saturating_sub(1);
            entry.tx.send(error_message(
                code::CALL,
                request,
                uri::CANCELED,
                "call canceled by the caller",
            ));
        }
    }
}

impl RealmState {
    fn remove_session(&mut self, session: Id) -> Option<SessionEntry> {
        let entry = self.sessions.remove(&session)?;
        for subscription in &entry.subscriptions {
            self.drop_subscriber(*subscription, session);
        }
        for registration in &entry.registrations {
            if let Some(procedure) = self.registrations.remove(registration) {
                self.procedures.remove(&procedure);
            }
        }
        for invocation in &entry.calls {
            let Some(call) = self.take_call(*invocation) else {
                continue;
            };
            call.timer.abort();
            if call.callee == session {
                if let Some(caller) = self.sessions.get_mut(&call.caller) {
                    caller.pending_calls = caller.pending_calls.saturating_sub(1);
                    caller.tx.send(error_message(
                        code::CALL,
                        call.caller_request,
                        uri::CANCELED,
                        "the callee left before answering",
                    ));
                }
            }
        }
        Some(entry)
    }

    /// Removes a call from the realm and from both parties' indexes.
    fn take_call(&mut self, invocation: Id) -> Option<PendingCall> {
        let call = self.calls.remove(&invocation)?;
        for party in [call.caller, call.callee] {
            if let Some(e) = self.sessions.get_mut(&party) {
                e.calls.remove(&invocation);
            }
        }
        Some(call)
    }

    fn drop_subscriber(&mut self, subscription: Id, session: Id) {
        let Some(topic) = self.subscriptions.get(&subscription) else {
            return;
        };
        let Some(t) = self.topics.get_mut(topic) else {
            return;
        };
        t.subscribers.remove(&session);
        if t.subscribers.is_empty() {
            if let Some(topic) = self.subscriptions.remove(&subscription) {
                self.topics.remove(&topic);
            }
        }
    }

    /// Publishes a meta event from the router itself (no publisher to exclude).
    fn publish_meta(&self, topic: &str, args: Args) {
        let Some(t) = self.topics.get(topic) else {
            return;
        };
        let publication = random_id();
        for subscriber in &t.subscribers {
            if let Some(entry) = self.sessions.get(subscriber) {
                entry.tx.send(Message::Event {
                    subscription: t.id,
                    publication,
                    details: Dict::new(),
                    args: args.clone(),
                    kwargs: Kwargs::new(),
                });
            }
        }
    }

    /// The session meta procedures; `None` if `procedure` is not one of them.
    fn meta_call(
        &self,
        procedure: &str,
        args: &Args,
    ) -> Option<Result<Args, (&'static str, String)>> {
        let role_filter = || -> Option<HashSet<&str>> {
            args.first()
                .and_then(Value::as_array)
                .map(|roles| roles.iter().filter_map(Value::as_str).collect())
        };
        let matching = || {
            let filter = role_filter();
            self.sessions
                .values()
                .filter(move |e| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.contains(e.info.authrole.as_str()))
                })
                .map(|e| e.info.id)
        };
        Some(match procedure {
            uri::SESSION_COUNT => Ok(vec![json!(matching().count())]),
            uri::SESSION_LIST => Ok(vec![json!(matching().collect::<Vec<Id>>())]),
            uri::SESSION_GET => match args.first().and_then(Value::as_u64) {
                Some(id) => match self.sessions.get(&id) {
                    Some(entry) => Ok(vec![Value::Object(session_details(&entry.info))]),
                    None => Err((uri::NO_SUCH_SESSION, format!("no session {id}"))),
                },
                None => Err((
                    uri::INVALID_ARGUMENT,
                    "expected the session id as first argument".to_string(),
                )),
            },
            _ => return None,
        })
    }
}

/// An ABORT carrying a human-readable message.
pub(crate) fn abort(reason: &str, message: impl Into<String>) -> Message {
    let mut details = Dict::new();
    details.insert("message".into(), Value::String(message.into()));
    Message::Abort {
        details,
        reason: reason.to_string(),
    }
}
