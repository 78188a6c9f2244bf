//! Message transports.
//!
//! Sessions (client and router side) exchange [`Message`]s over a pair of channels. An
//! in-process session is just such a pair; a network session puts a WebSocket connection
//! ([`WsConn`]) behind one: frames are decoded into messages, queued messages are encoded
//! into frames, and the link is kept alive with pings.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use crate::codec::{ProtocolError, Serializer};
use crate::message::Message;

/// Sending half of a message channel. Messages are boxed so an idle channel's preallocated
/// slots stay a few hundred bytes, not kilobytes (matters with 100k sessions).
#[derive(Clone, Debug)]
pub(crate) struct MessageTx(mpsc::UnboundedSender<Box<Message>>);

/// Receiving half of a message channel.
#[derive(Debug)]
pub(crate) struct MessageRx(mpsc::UnboundedReceiver<Box<Message>>);

pub(crate) fn channel() -> (MessageTx, MessageRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MessageTx(tx), MessageRx(rx))
}

impl MessageTx {
    /// Queues a message; false if the receiving side is gone.
    pub(crate) fn send(&self, message: Message) -> bool {
        self.0.send(Box::new(message)).is_ok()
    }
}

impl MessageRx {
    pub(crate) async fn recv(&mut self) -> Option<Message> {
        self.0.recv().await.map(|b| *b)
    }

    fn try_recv(&mut self) -> Option<Message> {
        self.0.try_recv().ok().map(|b| *b)
    }
}

/// Small buffers: the router must hold very many idle connections.
pub(crate) fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4 * 1024;
    config.write_buffer_size = 4 * 1024;
    config.max_message_size = Some(max_frame_bytes);
    config.max_frame_size = Some(max_frame_bytes);
    config
}

/// Liveness settings of a WebSocket link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness {
    /// Send a ping this often; `None` disables pings and dead-peer detection.
    pub ping_interval: Option<Duration>,
    /// Drop the link after this long without any frame from the peer; also bounds writes.
    pub ping_timeout: Duration,
}

/// What [`WsConn::next`] returns.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A decoded message from the peer.
    Message(Message),
    /// The peer sent an undecodable or invalid frame.
    Invalid(ProtocolError),
    /// The peer sent a frame above the size limit.
    TooBig,
    /// The peer closed the connection or it broke.
    Closed,
    /// The peer went silent for longer than the ping timeout, or stopped reading.
    Dead,
    /// The deadline set with [`WsConn::set_deadline`] passed.
    DeadlineReached,
    /// Every sender of the outbound queue is gone: the session is over on our side.
    OutboxClosed,
}

/// One WebSocket connection carrying WAMP messages.
pub(crate) struct WsConn<S> {
    ws: WebSocketStream<S>,
    serializer: Serializer,
    liveness: Liveness,
    last_seen: Instant,
    next_ping: Option<Instant>,
    deadline: Option<Instant>,
}

/// Most queued messages written before flushing, so a flood cannot starve reading.
const WRITE_BATCH: usize = 64;
/// How long a closing connection waits for the peer's side of the close.
const LINGER: Duration = Duration::from_secs(1);

impl<S: AsyncRead + AsyncWrite + Unpin> WsConn<S> {
    pub(crate) fn new(ws: WebSocketStream<S>, serializer: Serializer, liveness: Liveness) -> Self {
        let now = Instant::now();
        WsConn {
            ws,
            serializer,
            liveness,
            last_seen: now,
            next_ping: liveness.ping_interval.and_then(|i| later(now, i)),
            deadline: None,
        }
    }

    /// After `deadline`, [`next`](Self::next) returns [`Inbound::DeadlineReached`].
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    fn wake_at(&self) -> Option<Instant> {
        let silence = self
            .liveness
            .ping_interval
            .and_then(|_| later(self.last_seen, self.liveness.ping_timeout));
        [self.next_ping, silence, self.deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Writes queued outbound messages and waits for the next inbound one (or the end).
    pub(crate) async fn next(&mut self, outbox: &mut MessageRx) -> Inbound {
        loop {
            let wake_at = self.wake_at();
            tokio::select! {
                queued = outbox.recv() => match queued {
                    Some(message) => {
                        // Boxed, like the timer work below: an idle connection's task then
                        // only holds the small waiting state (matters with 100k sessions).
                        if let Err(end) = Box::pin(self.write_batch(message, outbox)).await {
                            return end;
                        }
                    }
                    None => return Inbound::OutboxClosed,
                },
                frame = self.ws.next() => {
                    self.last_seen = Instant::now();
                    match frame {
                        Some(Ok(WsMessage::Text(text))) => return self.decode(text.as_bytes()),
                        Some(Ok(WsMessage::Binary(bytes))) => return self.decode(&bytes),
                        // tungstenite queues the pong itself and sends it on the next read.
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                        Some(Ok(WsMessage::Close(_))) | None => return Inbound::Closed,
                        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                            return Inbound::TooBig
                        }
                        Some(Err(e)) => {
                            tracing::debug!("websocket read failed: {e}");
                            return Inbound::Closed;
                        }
                    }
                }
                _ = sleep_until_opt(wake_at) => {
                    if let Some(end) = Box::pin(self.on_timer()).await {
                        return end;
                    }
                }
            }
        }
    }

    async fn on_timer(&mut self) -> Option<Inbound> {
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Some(Inbound::DeadlineReached);
        }
        if self.liveness.ping_interval.is_some()
            && later(self.last_seen, self.liveness.ping_timeout).is_some_and(|at| now >= at)
        {
            return Some(Inbound::Dead);
        }
        if let (Some(at), Some(interval)) = (self.next_ping, self.liveness.ping_interval) {
            if now >= at {
                self.next_ping = later(now, interval);
                let ping = self.ws.send(WsMessage::Ping(Default::default()));
                match tokio::time::timeout(self.liveness.ping_timeout, ping).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Some(Inbound::Closed),
                    Err(_) => return Some(Inbound::Dead),
                }
            }
        }
        None
    }

    fn decode(&self, bytes: &[u8]) -> Inbound {
        match self.serializer.decode(bytes) {
            Ok(message) => Inbound::Message(message),
            Err(e) => Inbound::Invalid(e),
        }
    }

    async fn write_batch(&mut self, first: Message, outbox: &mut MessageRx) -> Result<(), Inbound> {
        let serializer = self.serializer;
        let ws = &mut self.ws;
        let write = async {
            ws.feed(frame(serializer, &first)).await?;
            for _ in 1..WRITE_BATCH {
                let Some(message) = outbox.try_recv() else {
                    break;
                };
                ws.feed(frame(serializer, &message)).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(self.liveness.ping_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!("websocket write failed: {e}");
                Err(Inbound::Closed)
            }
            Err(_) => Err(Inbound::Dead),
        }
    }

    /// Writes one message now, bypassing the queue (ABORT before closing).
    pub(crate) async fn send_now(&mut self, message: &Message) -> bool {
        let frame = frame(self.serializer, message);
        matches!(
            tokio::time::timeout(LINGER, self.ws.send(frame)).await,
            Ok(Ok(()))
        )
    }

    /// Closes gracefully: close frame, then wait briefly for the peer's close.
    pub(crate) async fn close(mut self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let finish = async {
            if self.ws.close(Some(frame)).await.is_err() {
                return;
            }
            while let Some(Ok(_)) = self.ws.next().await {}
        };
        let _ = tokio::time::timeout(LINGER, finish).await;
    }

    /// Closes after an oversize frame. The frame's payload is still unread, so it is discarded
    /// from the raw stream: closing a socket with unread input would reset the connection and
    /// could destroy the close frame before the peer reads it.
    pub(crate) async fn close_oversize(mut self) {
        let frame = CloseFrame {
            code: CloseCode::Size,
            reason: "frame too large".into(),
        };
        let _ = tokio::time::timeout(LINGER, self.ws.close(Some(frame))).await;
        let mut stream = self.ws.into_inner();
        let drain = async {
            let _ = stream.shutdown().await;
            let mut scratch = [0u8; 4096];
            while matches!(stream.read(&mut scratch).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

fn frame(serializer: Serializer, message: &Message) -> WsMessage {
    match serializer {
        // Serializing a Message cannot fail; see Serializer::encode.
        Serializer::Json => WsMessage::text(serde_json::to_string(message).unwrap_or_default()),
        Serializer::Msgpack => WsMessage::binary(serializer.encode(message)),
    }
}

/// `at + d`, or `None` (never) when a huge configured duration overflows.
pub(crate) fn later(at: Instant, d: Duration) -> Option<Instant> {
    at.checked_add(d)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs a WebSocket connection as a message transport: returns the channel pair a client
/// session uses, and drives the connection in a background task until either side ends.
pub(crate) fn spawn_websocket<S>(conn: WsConn<S>) -> (MessageTx, MessageRx)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (to_peer_tx, mut to_peer_rx) = channel();
    let (from_peer_tx, from_peer_rx) = channel();
    tokio::spawn(async move {
        let mut conn = conn;
        loop {
            match conn.next(&mut to_peer_rx).await {
                Inbound::Message(message) => {
                    if !from_peer_tx.send(message) {
                        conn.close(CloseCode::Normal, "").await;
                        return;
                    }
                }
                Inbound::Invalid(e) => {
                    tracing::warn!("closing connection: peer sent an invalid message: {e}");
                    conn.close(CloseCode::Protocol, "invalid WAMP message")
                        .await;
                    return;
                }
                Inbound::TooBig => {
                    conn.close_oversize().await;
                    return;
                }
                Inbound::OutboxClosed => {
                    conn.close(CloseCode::Normal, "").await;
                    return;
                }
                Inbound::DeadlineReached | Inbound::Dead => {
                    tracing::debug!("closing connection: peer unresponsive");
                    return;
                }
                Inbound::Closed => return,
            }
        }
    });
    (to_peer_tx, from_peer_rx)
}
