//! Drivers that attach a transport to the router: one task per WebSocket connection, and one
//! per in-process session. Both feed messages to the same join and realm logic, and both
//! receive the router's messages through the same kind of outbound queue.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::join::{self, JoinState, JoinStep};
use super::realm::{abort, SessionCtx};
use super::{Router, SessionInfo};
use crate::client::{self, Session};
use crate::codec::Serializer;
use crate::error::WampError;
use crate::message::Message;
use crate::transport::{channel, later, Inbound, Liveness, MessageRx, MessageTx, WsConn};
use crate::uri;

/// Picks the serializer: the router's preference among what the client offered.
fn negotiate(request: &Request, supported: &[Serializer]) -> Option<Serializer> {
    let offered: Vec<Serializer> = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(Serializer::from_subprotocol)
        .collect();
    supported.iter().copied().find(|s| offered.contains(s))
}

fn reject(text: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

pub(super) async fn serve<S>(router: &Router, stream: S, peer: Option<SocketAddr>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if router.is_closed() {
        return;
    }
    let config = &router.inner.config;
    let mut chosen = None;
    // The error type is tungstenite's, large or not.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        let Some(serializer) = negotiate(request, &config.serializers) else {
            let names: Vec<&str> = config.serializers.iter().map(|s| s.subprotocol()).collect();
            return Err(reject(format!(
                "WAMP needs a WebSocket subprotocol; supported: {}\n",
                names.join(", ")
            )));
        };
        chosen = Some(serializer);
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(serializer.subprotocol()),
        );
        Ok(response)
    };
    // Boxed so its size does not count in the long-lived connection task.
    let handshake = Box::pin(tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(router.websocket_config()),
    ));
    let ws = match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(?peer, "websocket handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(?peer, "websocket handshake timed out");
            return;
        }
    };
    let Some(serializer) = chosen else {
        return;
    };
    let liveness = Liveness {
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
    };
    let mut conn = WsConn::new(ws, serializer, liveness);
    conn.set_deadline(later(Instant::now(), config.handshake_timeout));
    let (tx, mut outbox) = channel();
    run(router, conn, peer, tx, &mut outbox).await;
}

/// How a connection ends, decided in the loop and carried out after it.
enum Ending {
    /// Send this ABORT, then close.
    Abort(Box<Message>, CloseCode),
    /// Close with a close frame (the session's final messages were already written).
    Close,
    /// Close with 1009 after an oversize frame.
    Oversize,
    /// The link is gone: nothing to send.
    Gone,
}

async fn run<S>(
    router: &Router,
    mut conn: WsConn<S>,
    peer: Option<SocketAddr>,
    tx: MessageTx,
    outbox: &mut MessageRx,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Held until the join succeeds, then owned by the realm.
    let mut tx = Some(tx);
    let mut join_state = JoinState::default();
    let mut session: Option<SessionCtx> = None;
    let ending = loop {
        match conn.next(outbox).await {
            Inbound::Message(message) => match &session {
                Some(ctx) => ctx.realm.handle(ctx, message),
                None => {
                    // Boxed: joining is rare, the loop's idle state should stay small.
                    let step = join::on_message(router, &mut join_state, message, peer, &mut tx);
                    match Box::pin(step).await {
                        JoinStep::Continue => {}
                        JoinStep::Joined(ctx) => {
                            conn.set_deadline(None);
                            session = Some(ctx);
                        }
                        JoinStep::Abort(abort) => {
                            break Ending::Abort(Box::new(abort), CloseCode::Normal)
                        }
                    }
                }
            },
            Inbound::Invalid(error) => {
                tracing::info!(?peer, "protocol violation: {error}");
                let abort = abort(uri::PROTOCOL_VIOLATION, error.message());
                break Ending::Abort(Box::new(abort), CloseCode::Protocol);
            }
            Inbound::TooBig => {
                tracing::info!(?peer, "frame above the size limit");
                break Ending::Oversize;
            }
            // The realm removed the session (GOODBYE, ABORT, shutdown) and its final
            // messages were written.
            Inbound::OutboxClosed => break Ending::Close,
            Inbound::DeadlineReached => {
                tracing::debug!(?peer, "no WAMP join in time");
                let abort = abort(uri::PROTOCOL_VIOLATION, "no HELLO in time");
                break Ending::Abort(Box::new(abort), CloseCode::Policy);
            }
            Inbound::Dead | Inbound::Closed => break Ending::Gone,
        }
    };
    if let Some(ctx) = &session {
        ctx.realm.leave(ctx.info.id);
    }
    Box::pin(finish(conn, ending)).await;
}

async fn finish<S>(mut conn: WsConn<S>, ending: Ending)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match ending {
        Ending::Abort(abort, code) => {
            conn.send_now(&abort).await;
            conn.close(code, "").await;
        }
        Ending::Close => conn.close(CloseCode::Normal, "").await,
        Ending::Oversize => conn.close_oversize().await,
        Ending::Gone => {}
    }
}

/// Opens an in-process session: the client side runs the ordinary join over a channel pair,
/// and a small driver task plays the connection's role on the router side.
pub(super) async fn local_session(
    router: &Router,
    realm: &str,
    authid: &str,
    authrole: &str,
) -> Result<Session, WampError> {
    let (to_router, from_client) = channel();
    let (to_client, from_router) = channel();
    let driver = LocalDriver {
        router: router.clone(),
        authid: authid.to_string(),
        authrole: authrole.to_string(),
    };
    tokio::spawn(driver.run(from_client, to_client));
    client::session::join(
        to_router,
        from_router,
        realm,
        None,
        router.inner.config.default_call_timeout,
    )
    .await
}

struct LocalDriver {
    router: Router,
    authid: String,
    authrole: String,
}

impl LocalDriver {
    async fn run(self, mut from_client: MessageRx, to_client: MessageTx) {
        let ctx = match from_client.recv().await {
            Some(Message::Hello { realm, .. }) => {
                let step = match self.router.realm(&realm) {
                    _ if self.router.is_closed() => JoinStep::Abort(abort(
                        uri::CLOSE_SYSTEM_SHUTDOWN,
                        "the router is shutting down",
                    )),
                    None => JoinStep::Abort(abort(
                        uri::NO_SUCH_REALM,
                        format!("no realm '{realm}' on this router"),
                    )),
                    Some(realm) => {
                        let info = SessionInfo {
                            id: realm.fresh_session_id(),
                            realm: realm.name().to_string(),
                            authid: Some(self.authid),
                            authrole: self.authrole,
                            authmethod: "trusted".into(),
                            peer: None,
                        };
                        join::admit(realm, info, &mut Some(to_client.clone()))
                    }
                };
                match step {
                    JoinStep::Joined(ctx) => ctx,
                    JoinStep::Abort(message) => {
                        to_client.send(message);
                        return;
                    }
                    JoinStep::Continue => return,
                }
            }
            _ => return,
        };
        // Only the realm may keep the client's inbound queue open from here on.
        drop(to_client);
        while let Some(message) = from_client.recv().await {
            ctx.realm.handle(&ctx, message);
        }
        ctx.realm.leave(ctx.info.id);
    }
}
