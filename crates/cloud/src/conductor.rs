//! The conductor: decides and records every operation that reaches a board.
//!
//! An operation writes its request and RUNNING result rows before the board is called and its
//! outcome after, so a restart never loses one (pending ones are closed as interrupted on start).
//! The board link (the WAMP gateway, [`crate::gateway`]) is behind [`BoardLink`]; a cloud that
//! runs no gateway has no board online, and every board operation answers IoTronic's 400
//! "Board X is not connected.".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use s4t_model::resources::{Board, Outcome};
use s4t_store::requests::NewRequest;
use s4t_store::Store;

use crate::api::ApiError;
use crate::tunnel::TunnelServer;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A board's answer (`WampMessage`): outcome and message.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardReply {
    pub outcome: Outcome,
    pub message: Value,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("Board {0} is not connected.")]
    NotConnected(String),
    #[error("Error in the execution of {call} on {board}: {error}")]
    Failed {
        call: String,
        board: String,
        error: String,
    },
}

/// Sends calls to connected boards. Implemented by the WAMP board gateway.
pub trait BoardLink: Send + Sync {
    /// Calls `method` on the board with `req` first and `args` after, as IoTronic does.
    fn call<'a>(
        &'a self,
        board: &'a Board,
        method: &'a str,
        req: Value,
        args: Vec<Value>,
    ) -> BoxFuture<'a, Result<BoardReply, LinkError>>;
}

/// The link of a cloud that runs no board gateway: every board is unreachable.
pub struct NoBoardLink;

impl BoardLink for NoBoardLink {
    fn call<'a>(
        &'a self,
        board: &'a Board,
        _: &'a str,
        _: Value,
        _: Vec<Value>,
    ) -> BoxFuture<'a, Result<BoardReply, LinkError>> {
        Box::pin(async move { Err(LinkError::NotConnected(board.uuid.clone())) })
    }
}

/// How one board call is made as part of a larger operation.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The parent request this call is a sub-request of.
    pub parent: Option<String>,
    /// How long the board may take.
    pub timeout: Option<std::time::Duration>,
}

#[derive(Clone)]
pub struct Conductor {
    store: Store,
    link: Arc<dyn BoardLink>,
    tunnels: Option<TunnelServer>,
    /// The tunnel server URL boards are told (`ws[s]://HOST:PORT`).
    tunnel_url: Option<Arc<str>>,
    /// The webservice front and its (http, https) ports.
    front: Option<(crate::front::Front, (u16, u16))>,
}

impl Conductor {
    pub fn new(store: Store) -> Conductor {
        Conductor {
            store,
            link: Arc::new(NoBoardLink),
            tunnels: None,
            tunnel_url: None,
            front: None,
        }
    }

    pub fn with_link(store: Store, link: Arc<dyn BoardLink>) -> Conductor {
        Conductor {
            store,
            link,
            tunnels: None,
            tunnel_url: None,
            front: None,
        }
    }

    /// Service tunnels go through `server`, which boards reach at `url`.
    pub fn with_tunnels(mut self, server: TunnelServer, url: String) -> Conductor {
        self.tunnels = Some(server);
        self.tunnel_url = Some(url.into());
        self
    }

    /// Webservices are served by `front`, on these (http, https) ports.
    pub fn with_front(mut self, front: crate::front::Front, ports: (u16, u16)) -> Conductor {
        self.front = Some((front, ports));
        self
    }

    pub fn front(&self) -> Option<&(crate::front::Front, (u16, u16))> {
        self.front.as_ref()
    }

    pub fn tunnels(&self) -> Option<&TunnelServer> {
        self.tunnels.as_ref()
    }

    pub fn tunnel_url(&self) -> Option<&str> {
        self.tunnel_url.as_deref()
    }

    /// A board call that keeps no request row (the scheduler's frequent status calls): the
    /// reply's message, or why there is none.
    pub async fn call_quiet(
        &self,
        board: &Board,
        method: &str,
        args: Vec<Value>,
        timeout: std::time::Duration,
    ) -> Result<Value, String> {
        let req = serde_json::json!({"uuid": s4t_model::ident::new_uuid(), "main_request_uuid": null, "action": method});
        match tokio::time::timeout(timeout, self.link.call(board, method, req, args)).await {
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(reply)) if reply.outcome == Outcome::Error => Err(match reply.message {
                Value::String(s) => s,
                other => other.to_string(),
            }),
            Ok(Ok(reply)) => Ok(reply.message),
        }
    }

    /// IoTronic's `check_if_online`.
    pub fn ensure_connected(&self, board: &Board) -> Result<(), ApiError> {
        if board.status.is_connected() {
            Ok(())
        } else {
            Err(ApiError::not_connected(&board.uuid))
        }
    }

    /// Runs `method` on a connected board, recording the request and its result. Returns the
    /// board's message (the HTTP body of action routes).
    pub async fn execute(
        &self,
        board: &Board,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Value, ApiError> {
        self.ensure_connected(board)?;
        self.execute_with(board, method, args, &ExecOptions::default())
            .await
    }

    /// [`Conductor::execute`] as one step of a larger operation: the request is recorded as a
    /// sub-request of `parent`, and the board gets `timeout` to answer. Does not check that the
    /// board is online (a board that left meanwhile fails the call, which is recorded).
    pub async fn execute_with(
        &self,
        board: &Board,
        method: &str,
        args: Vec<Value>,
        options: &ExecOptions,
    ) -> Result<Value, ApiError> {
        let request = self
            .store
            .open_request(
                &NewRequest {
                    destination_uuid: Some(board.uuid.clone()),
                    main_request_uuid: options.parent.clone(),
                    pending_requests: 0,
                    project: board.project.clone(),
                    request_type: 0,
                    action: method.to_string(),
                },
                &board.uuid,
            )
            .await?;
        let mut req = s4t_model::board_link::request_dict(&request);
        // Boards answer asynchronously when `req` names a parent, and Lightning-rod 0.5.0 then
        // loses some notifications (PluginInject). The parent is ours to track: boards are
        // asked to answer at once.
        req["main_request_uuid"] = Value::Null;
        let call = self.link.call(board, method, req, args);
        let outcome = match options.timeout {
            Some(t) => match tokio::time::timeout(t, call).await {
                Ok(r) => r,
                Err(_) => Err(LinkError::Failed {
                    call: method.to_string(),
                    board: board.uuid.clone(),
                    error: format!("no answer within {} s", t.as_secs()),
                }),
            },
            None => call.await,
        };
        match outcome {
            Ok(reply) => {
                let text = match &reply.message {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                self.store
                    .close_request(&request.uuid, &board.uuid, reply.outcome, &text)
                    .await?;
                match reply.outcome {
                    Outcome::Error => Err(ApiError::internal(format!(
                        "Error in the execution of {method} on {}: {text}",
                        board.uuid
                    ))),
                    _ => Ok(reply.message),
                }
            }
            Err(e) => {
                self.store
                    .close_request(&request.uuid, &board.uuid, Outcome::Error, &e.to_string())
                    .await?;
                Err(match e {
                    LinkError::NotConnected(uuid) => ApiError::not_connected(&uuid),
                    other => ApiError::internal(other.to_string()),
                })
            }
        }
    }

    /// Only the board call of a request already recorded (batched bookkeeping): the outcome and
    /// the message as text; link failures are ERROR outcomes.
    pub async fn call_recorded(
        &self,
        board: &Board,
        method: &str,
        args: Vec<Value>,
        request: &s4t_model::resources::Request,
        timeout: std::time::Duration,
    ) -> (Outcome, String) {
        let mut req = s4t_model::board_link::request_dict(request);
        req["main_request_uuid"] = Value::Null;
        match tokio::time::timeout(timeout, self.link.call(board, method, req, args)).await {
            Ok(Ok(reply)) => {
                let text = match reply.message {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (reply.outcome, text)
            }
            Ok(Err(e)) => (Outcome::Error, e.to_string()),
            Err(_) => (
                Outcome::Error,
                format!("no answer within {} s", timeout.as_secs()),
            ),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Deletes a board. A connected board is factory-reset first, as upstream does.
    pub async fn delete_board(&self, board: &Board) -> Result<(), ApiError> {
        if board.status.is_connected() {
            if let Err(e) = self.execute(board, "DeviceFactoryReset", vec![]).await {
                tracing::warn!(board = %board.uuid, error = %e.message, "factory reset before delete failed; deleting anyway");
            }
        }
        // Ports are listed before the rows go, and closed after, so that a board reconnecting
        // meanwhile is not admitted again.
        let ports = self.board_ports(board).await;
        self.store.delete_board(&board.uuid).await?;
        if let Some(t) = self.tunnels() {
            for port in ports {
                t.revoke_port(port);
            }
        }
        Ok(())
    }
}
