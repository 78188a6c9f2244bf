//! The board gateway: the WAMP router boards connect to, and the cloud's own session in it.
//!
//! The cloud joins realm `s4t` in-process and registers what upstream's wamp agent registers
//! (`stack4things.register`, `<agent>.stack4things.{connection, wamp_alive, notify_result,
//! alive, echo}`); it follows `wamp.session.on_leave` to set boards offline, and calls board
//! procedures `iotronic.<session>.<board>.<Method>` for the conductor ([`BoardLink`]).
//!
//! Sessions: an anonymous session may only call `stack4things.register`, unless the cloud runs
//! with `--allow-anonymous-boards` (stock Lightning-rods, which cannot authenticate). A session
//! authenticated by ticket (authid = board uuid, ticket = the secret issued at registration) is
//! that board: it may register procedures only under its own session and uuid, and may only
//! report for itself.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use s4t_model::board_link::{
    self, agent_procedure, board_prefix, board_procedure, registration_step, AgentUrls,
    ConnectionInfo, RegistrationStep, WampMessage,
};
use s4t_model::resources::Board;
use s4t_model::Ident;
use s4t_store::{Scope, Store, StoreError};
use s4t_wamp::uri::NO_SUCH_PROCEDURE;
use s4t_wamp::{
    handler, Action, AuthGrant, Authenticator, Authorizer, CallError, CallResult, Invocation,
    Router, RouterConfig, Session, SessionInfo, WampError,
};

use crate::conductor::{BoardLink, BoardReply, BoxFuture, LinkError};

/// The role of the cloud's own session.
const CLOUD_ROLE: &str = "cloud";
/// The role of sessions authenticated as a board.
const BOARD_ROLE: &str = "board";

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub agent_name: String,
    pub registration_url: String,
    pub main_url: String,
    pub allow_anonymous_boards: bool,
    pub ping_interval: Duration,
    pub call_timeout: Duration,
}

struct Inner {
    store: Store,
    config: GatewayConfig,
    /// Bounds the registrations and connections handled at once. A board that waits too long
    /// is told the cloud is busy and retries after its backoff, instead of timing out while the
    /// cloud still does the work (which, in a reconnection storm, only feeds the storm).
    admission: tokio::sync::Semaphore,
    /// To skip work for callers that left while they waited.
    router: Router,
    /// The cloud's own session: board calls go out through it.
    session: Session,
    /// Boards whose deferred calls are running (one runner per board).
    deferred_running: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How long a call that finds no procedure on a live board session is tried again (the board
/// registers its procedures just after `connection`), and how often.
const REGISTRATION_GRACE: Duration = Duration::from_secs(5);
const REGISTRATION_STEP: Duration = Duration::from_millis(100);

/// How long a registration or connection may wait for admission before "busy".
const ADMISSION_WAIT: Duration = Duration::from_secs(20);
const ADMISSION_PERMITS: usize = 64;

async fn admitted<'a>(
    inner: &'a Inner,
    inv: &Invocation,
) -> Result<tokio::sync::SemaphorePermit<'a>, CallError> {
    match tokio::time::timeout(ADMISSION_WAIT, inner.admission.acquire()).await {
        Ok(Ok(permit)) => {
            // A caller that gave up while waiting would never see the answer; doing its
            // registration anyway only feeds a reconnection storm.
            let caller = inv.details.get("caller").and_then(Value::as_u64);
            if let Some(id) = caller {
                if inner.router.session_info(board_link::REALM, id).is_none() {
                    return Err(app_error("the caller left before its turn"));
                }
            }
            Ok(permit)
        }
        _ => Err(CallError::with_message(
            "s4t.error.busy",
            "the cloud is busy with other boards; retry after a backoff",
        )),
    }
}

/// The running gateway; cheap to share.
#[derive(Clone)]
pub struct BoardGateway {
    router: Router,
    inner: Arc<Inner>,
}

/// The SHA-256 (hex) a board secret is stored as.
pub fn secret_hash(secret: &str) -> String {
    crate::auth::hash_token(secret)
}

struct BoardSecrets(Store);

impl Authenticator for BoardSecrets {
    fn lookup(
        &self,
        _realm: &str,
        authid: &str,
    ) -> s4t_wamp::BoxFuture<'static, Option<AuthGrant>> {
        let store = self.0.clone();
        let authid = authid.to_string();
        Box::pin(async move {
            if !s4t_model::is_uuid_like(&authid) {
                return None;
            }
            let hash = store.board_secret_hash(&authid).await.ok().flatten()?;
            Some(AuthGrant {
                secret: hash,
                authrole: BOARD_ROLE.into(),
            })
        })
    }

    fn ticket_as_stored(&self, ticket: &str) -> String {
        secret_hash(ticket)
    }
}

struct BoardPolicy {
    agent: String,
    allow_anonymous_boards: bool,
}

impl BoardPolicy {
    fn is_cloud_procedure(&self, uri: &str) -> bool {
        uri == board_link::REGISTER
            || board_link::AGENT_PROCEDURES
                .iter()
                .any(|f| uri == agent_procedure(&self.agent, f))
    }
}

impl Authorizer for BoardPolicy {
    fn authorize(&self, s: &SessionInfo, action: Action, uri: &str) -> bool {
        let own_prefix = |uuid: &str| board_prefix(&s.id.to_string(), uuid);
        match (s.authrole.as_str(), action) {
            (CLOUD_ROLE, _) => true,
            (BOARD_ROLE, Action::Call) => self.is_cloud_procedure(uri),
            (BOARD_ROLE, Action::Register) => s
                .authid
                .as_deref()
                .is_some_and(|uuid| uri.starts_with(&own_prefix(uuid))),
            (_, Action::Call) if uri == board_link::REGISTER => true,
            (_, Action::Call) => self.allow_anonymous_boards && self.is_cloud_procedure(uri),
            // An anonymous board cannot prove its uuid; it may still only use its own session.
            (_, Action::Register) => {
                self.allow_anonymous_boards && uri.starts_with(&format!("iotronic.{}.", s.id))
            }
            _ => false,
        }
    }
}

fn kwarg<'a>(inv: &'a Invocation, name: &str) -> Option<&'a Value> {
    inv.kwargs.get(name)
}

fn kwarg_text(inv: &Invocation, name: &str) -> Option<String> {
    match kwarg(inv, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The caller's session id and identity, as the router discloses them.
fn caller(inv: &Invocation) -> (Option<String>, Option<String>, Option<String>) {
    let d = &inv.details;
    (
        d.get("caller")
            .and_then(Value::as_u64)
            .map(|n| n.to_string()),
        d.get("caller_authid")
            .and_then(Value::as_str)
            .map(str::to_string),
        d.get("caller_authrole")
            .and_then(Value::as_str)
            .map(str::to_string),
    )
}

fn reply(m: WampMessage) -> Result<CallResult, CallError> {
    Ok(CallResult {
        args: vec![Value::String(m.to_wire())],
        kwargs: Map::new(),
    })
}

fn app_error(message: impl Into<String>) -> CallError {
    CallError::with_message("wamp.error.runtime_error", message)
}

/// Python's `datetime.isoformat` with microseconds, as upstream's alive replies carry.
fn alive_stamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

impl Inner {
    async fn register(&self, inv: Invocation) -> Result<CallResult, CallError> {
        let _permit = admitted(self, &inv).await?;
        let Some(code) = kwarg_text(&inv, "code") else {
            return reply(WampMessage::error(
                "register: the code keyword argument is missing",
            ));
        };
        let (caller_session, _, _) = caller(&inv);
        let Some(session) = caller_session.or_else(|| kwarg_text(&inv, "session")) else {
            return reply(WampMessage::error(
                "register: the session keyword argument is missing",
            ));
        };
        let board = match self.store.board_by_code(&code).await {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => {
                return reply(WampMessage::error(format!(
                    "Board {code} could not be found."
                )))
            }
            Err(e) => return Err(app_error(format!("register: {e}"))),
        };
        // A fresh secret at every registration; only its hash is stored. Stock Lightning-rods
        // ignore the extra top-level key of the reply.
        let secret = crate::auth::new_secret();
        let hash = secret_hash(&secret);
        let fail = |e: StoreError| app_error(format!("register: {e}"));
        let mut message = match registration_step(&board, &self.config.agent_name) {
            RegistrationStep::Provision { agent } => {
                let doc = board_link::provisioning_document(
                    &board,
                    &agent,
                    &AgentUrls {
                        registration: &self.config.registration_url,
                        main: &self.config.main_url,
                    },
                );
                self.store
                    .register_board(&board, &session, Some((&agent, &doc)), &hash)
                    .await
                    .map_err(fail)?;
                doc
            }
            RegistrationStep::Resend => {
                self.store
                    .register_board(&board, &session, None, &hash)
                    .await
                    .map_err(fail)?;
                Value::Object(board.config.clone())
            }
        };
        if let Value::Object(m) = &mut message {
            m.insert("s4t".into(), json!({"board_secret": secret}));
        }
        tracing::info!(board = %board.uuid, code = %code, %session, "board registered");
        reply(WampMessage::success(message))
    }

    async fn connection(&self, inv: Invocation) -> Result<CallResult, CallError> {
        let _permit = admitted(self, &inv).await?;
        let uuid =
            kwarg_text(&inv, "uuid").ok_or_else(|| app_error("connection: uuid is missing"))?;
        let (caller_session, caller_authid, caller_role) = caller(&inv);
        if caller_role.as_deref() == Some(BOARD_ROLE) && caller_authid.as_deref() != Some(&uuid) {
            return Err(app_error(format!(
                "connection: this session is authenticated as {} and cannot connect board {uuid}",
                caller_authid.unwrap_or_default()
            )));
        }
        let session = caller_session
            .or_else(|| kwarg_text(&inv, "session"))
            .ok_or_else(|| app_error("connection: session is missing"))?;
        let board = match self
            .store
            .board(&Ident::Uuid(uuid.clone()), &Scope::All)
            .await
        {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => {
                return Err(app_error(format!("Board {uuid} could not be found.")))
            }
            Err(e) => return Err(app_error(format!("connection: {e}"))),
        };
        let info = ConnectionInfo::from_value(kwarg(&inv, "info"));
        self.store
            .connect_board(&board, &session, &info)
            .await
            .map_err(|e| app_error(format!("connection of {uuid}: {e}")))?;
        tracing::info!(board = %uuid, %session, lr_version = ?info.lr_version, "board online");
        reply(WampMessage::success(""))
    }

    async fn notify_result(&self, inv: Invocation) -> Result<CallResult, CallError> {
        let board = kwarg_text(&inv, "board_uuid")
            .ok_or_else(|| app_error("notify_result: board_uuid is missing"))?;
        let (_, caller_authid, caller_role) = caller(&inv);
        if caller_role.as_deref() == Some(BOARD_ROLE) && caller_authid.as_deref() != Some(&board) {
            return Err(app_error(
                "notify_result: a board may only report its own results",
            ));
        }
        let msg = match kwarg(&inv, "wampmessage") {
            Some(v) => WampMessage::from_args(std::slice::from_ref(v)),
            None => return Err(app_error("notify_result: wampmessage is missing")),
        }
        .map_err(|e| app_error(format!("notify_result: {e}")))?;
        let req_id = msg
            .req_id
            .clone()
            .ok_or_else(|| app_error("notify_result: the wampmessage has no req_id"))?;
        let text = match &msg.message {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let known = self
            .store
            .notify_result(&board, &req_id, msg.result, &text)
            .await
            .map_err(|e| app_error(format!("notify_result: {e}")))?;
        if !known {
            tracing::warn!(%board, %req_id, "notify_result for an unknown request");
        }
        reply(WampMessage::success("notification_received"))
    }
}

impl BoardGateway {
    /// Starts the router (not yet listening) and the cloud's session in it. Sessions the store
    /// still believes valid belong to a previous run and are closed first.
    pub async fn start(store: Store, config: GatewayConfig) -> Result<BoardGateway, WampError> {
        let closed = store
            .reconcile_sessions(&Default::default())
            .await
            .map_err(|e| WampError::Transport(format!("store: {e}")))?;
        if closed > 0 {
            tracing::info!(
                closed,
                "sessions of the previous run closed; their boards are offline"
            );
        }
        if config.allow_anonymous_boards {
            tracing::warn!("--allow-anonymous-boards: boards may connect without a secret (stock Lightning-rod compatibility)");
        }
        let router = Router::new(RouterConfig {
            realms: vec![board_link::REALM.into()],
            ping_interval: Some(config.ping_interval),
            ping_timeout: config.ping_interval * 2,
            anonymous: true,
            authenticator: Some(Arc::new(BoardSecrets(store.clone()))),
            authorizer: Some(Arc::new(BoardPolicy {
                agent: config.agent_name.clone(),
                allow_anonymous_boards: config.allow_anonymous_boards,
            })),
            ..RouterConfig::default()
        });
        let session = router
            .local_session(board_link::REALM, "s4t-cloud", CLOUD_ROLE)
            .await?;
        let inner = Arc::new(Inner {
            store,
            config,
            admission: tokio::sync::Semaphore::new(ADMISSION_PERMITS),
            router: router.clone(),
            session: session.clone(),
            deferred_running: Default::default(),
        });
        let agent = inner.config.agent_name.clone();

        let i = inner.clone();
        session
            .register(
                board_link::REGISTER,
                handler(move |inv| {
                    let i = i.clone();
                    async move { i.register(inv).await }
                }),
            )
            .await?;
        let i = inner.clone();
        session
            .register(
                &agent_procedure(&agent, "connection"),
                handler(move |inv| {
                    let i = i.clone();
                    async move {
                        let uuid = kwarg_text(&inv, "uuid");
                        let reply = i.connection(inv).await;
                        if let (Ok(_), Some(uuid)) = (&reply, uuid) {
                            tokio::spawn(run_deferred(i.clone(), uuid));
                        }
                        reply
                    }
                }),
            )
            .await?;
        let i = inner.clone();
        session
            .register(
                &agent_procedure(&agent, "notify_result"),
                handler(move |inv| {
                    let i = i.clone();
                    async move { i.notify_result(inv).await }
                }),
            )
            .await?;
        for name in ["wamp_alive", "alive"] {
            session
                .register(
                    &agent_procedure(&agent, name),
                    handler(|_inv| async move {
                        Ok(CallResult {
                            args: vec![Value::String(format!(
                                "Iotronic alive @ {}",
                                alive_stamp()
                            ))],
                            kwargs: Map::new(),
                        })
                    }),
                )
                .await?;
        }
        session
            .register(
                &agent_procedure(&agent, "echo"),
                handler(|inv: Invocation| async move {
                    let data = inv
                        .args
                        .first()
                        .cloned()
                        .or_else(|| inv.kwargs.get("data").cloned())
                        .unwrap_or(Value::Null);
                    Ok(CallResult {
                        args: vec![data],
                        kwargs: Map::new(),
                    })
                }),
            )
            .await?;
        let store = inner.store.clone();
        session
            .subscribe(
                "wamp.session.on_leave",
                Arc::new(move |ev: s4t_wamp::Event| {
                    let Some(id) = ev.args.first().and_then(Value::as_u64) else {
                        return;
                    };
                    let store = store.clone();
                    tokio::spawn(async move {
                        match store.close_session(&id.to_string()).await {
                            Ok(boards) => {
                                for b in boards {
                                    tracing::info!(board = %b, session = id, "board offline");
                                }
                            }
                            Err(e) => {
                                tracing::error!(session = id, error = %e, "cannot close session")
                            }
                        }
                    });
                }),
            )
            .await?;
        Ok(BoardGateway { router, inner })
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Stops every session (boards see the link drop and reconnect elsewhere or later).
    pub fn close(&self) {
        self.router.close();
    }
}

impl BoardLink for BoardGateway {
    fn call<'a>(
        &'a self,
        board: &'a Board,
        method: &'a str,
        req: Value,
        args: Vec<Value>,
    ) -> BoxFuture<'a, Result<BoardReply, LinkError>> {
        Box::pin(
            self.inner
                .call_board(board, method, req, args, self.inner.config.call_timeout),
        )
    }
}

impl Inner {
    /// Calls `method` on the board's current session, `req` first.
    async fn call_board(
        &self,
        board: &Board,
        method: &str,
        req: Value,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<BoardReply, LinkError> {
        let Some(session) = board.session.as_deref() else {
            return Err(LinkError::NotConnected(board.uuid.clone()));
        };
        let procedure = board_procedure(session, &board.uuid, method);
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(req);
        call_args.extend(args);
        let failed = |error: String| LinkError::Failed {
            call: method.to_string(),
            board: board.uuid.clone(),
            error,
        };
        // A board registers its procedures just after `connection` (Lightning-rod does), so
        // a call made as soon as it shows online can find none yet: it is tried again while
        // the session lives, for at most REGISTRATION_GRACE.
        let started = tokio::time::Instant::now();
        let answer = loop {
            let answer = self
                .session
                .call_with_timeout(&procedure, call_args.clone(), Map::new(), timeout)
                .await;
            let unregistered =
                matches!(&answer, Err(WampError::Call(e)) if e.error == NO_SUCH_PROCEDURE);
            if !unregistered
                || !self.session_lives(session)
                || started.elapsed() + REGISTRATION_STEP > REGISTRATION_GRACE.min(timeout)
            {
                break answer;
            }
            tokio::time::sleep(REGISTRATION_STEP).await;
        };
        match answer {
            Ok(result) => {
                let msg =
                    WampMessage::from_args(&result.args).map_err(|e| failed(e.to_string()))?;
                Ok(BoardReply {
                    outcome: msg.result,
                    message: msg.message,
                })
            }
            Err(WampError::Call(e)) if e.error == NO_SUCH_PROCEDURE => Err(failed(format!(
                "the board offers no {method} in its current session ({NO_SUCH_PROCEDURE})"
            ))),
            Err(WampError::Call(e)) if e.error == "wamp.error.canceled" => {
                Err(failed("the board disconnected before it answered".into()))
            }
            Err(WampError::Call(e)) => Err(failed(e.to_string())),
            Err(WampError::Timeout) => {
                Err(failed(format!("no answer within {} s", timeout.as_secs())))
            }
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// Whether the board session `session` is still joined to the router.
    fn session_lives(&self, session: &str) -> bool {
        session
            .parse()
            .is_ok_and(|id| self.router.session_info(board_link::REALM, id).is_some())
    }
}

/// Runs the calls deferred until this board came back (fleet rollouts with `offline: defer`).
async fn run_deferred(inner: Arc<Inner>, board_uuid: String) {
    {
        let mut running = inner
            .deferred_running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !running.insert(board_uuid.clone()) {
            return;
        }
    }
    let result = run_deferred_calls(&inner, &board_uuid).await;
    inner
        .deferred_running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&board_uuid);
    if let Err(e) = result {
        tracing::error!(board = %board_uuid, error = %e, "deferred calls stopped");
    }
}

async fn run_deferred_calls(inner: &Inner, board_uuid: &str) -> Result<(), StoreError> {
    let store = &inner.store;
    let pending = store.deferred_for(board_uuid).await?;
    if pending.is_empty() {
        return Ok(());
    }
    for d in pending {
        let board = store
            .board(&Ident::Uuid(board_uuid.to_string()), &Scope::All)
            .await?;
        let mut req = board_link::request_dict(&d.request);
        req["main_request_uuid"] = Value::Null;
        let reply = inner
            .call_board(
                &board,
                &d.method,
                req,
                d.args.clone(),
                inner.config.call_timeout,
            )
            .await;
        let (outcome, message) = match reply {
            Ok(r) => (
                r.outcome,
                match r.message {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            ),
            Err(e) => (s4t_model::resources::Outcome::Error, e.to_string()),
        };
        store
            .close_request(&d.request.uuid, board_uuid, outcome, &message)
            .await?;
        if let (Some(plugin), s4t_model::resources::Outcome::Success) = (&d.plugin_uuid, outcome) {
            store.upsert_injection(board_uuid, plugin, d.onboot).await?;
        }
        store.drop_deferred(d.id).await?;
        tracing::info!(board = %board_uuid, request = %d.request.uuid, method = %d.method,
            result = outcome.as_str(), "deferred call ran");
    }
    Ok(())
}
