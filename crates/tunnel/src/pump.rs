//! Bytes between a TCP socket and a tunnel WebSocket, both ways at once.
//!
//! Back-pressure is end to end: a direction reads its source only after the previous chunk was
//! written to its sink, so a slow reader on one side slows the writer on the other instead of
//! filling memory. A tunnel ends when both directions have ended, or at once when either side
//! fails or the WebSocket closes.
//!
//! With `half_close` (both peers speak [`crate::wstun::S4T_SUBPROTOCOL`]), the end of one
//! direction travels as an empty binary frame and becomes a TCP `shutdown(Write)` on the far
//! side, so request/response protocols that half-close work. Without it, as wstun does, the end
//! of either direction closes the whole tunnel.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Largest chunk read from TCP into one binary frame.
pub const CHUNK: usize = 64 * 1024;

/// Largest frame accepted from a tunnel peer: wstun (WebSocket-Node) sends what one socket
/// read gave it, well below this.
pub const MAX_FRAME: usize = 4 << 20;

/// WebSocket settings for tunnel sockets.
pub fn websocket_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.max_message_size = Some(MAX_FRAME);
    c.max_frame_size = Some(MAX_FRAME);
    // One frame per chunk is written and flushed at once; a larger buffer only adds a copy.
    c.write_buffer_size = CHUNK;
    c.max_write_buffer_size = 4 * MAX_FRAME;
    c.read_buffer_size = CHUNK + 1024;
    c
}

/// What a finished tunnel moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transferred {
    /// From the TCP socket into the WebSocket.
    pub tcp_to_ws: u64,
    /// From the WebSocket into the TCP socket.
    pub ws_to_tcp: u64,
}

/// How a pump runs.
#[derive(Debug, Clone, Copy)]
pub struct PumpOptions {
    /// The s4t half-close extension is on (negotiated by subprotocol).
    pub half_close: bool,
    /// End the tunnel after this long with no byte in either direction.
    pub idle_timeout: Option<Duration>,
}

/// Copies between `tcp` and `ws` until the tunnel ends; returns what was moved. Errors of
/// either side end the tunnel and are returned.
pub async fn pump<S>(
    ws: WebSocketStream<S>,
    tcp: TcpStream,
    options: PumpOptions,
) -> io::Result<Transferred>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tcp_r, tcp_w) = tcp.into_split();
    pump_halves(ws, tcp_r, tcp_w, options).await
}

async fn pump_halves<S, R, W>(
    ws: WebSocketStream<S>,
    mut tcp_r: R,
    mut tcp_w: W,
    options: PumpOptions,
) -> io::Result<Transferred>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let activity = tokio::sync::Notify::new();
    // Atomics only to share the counters between the two directions' futures (one task).
    let (up_bytes, down_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let result = {
        // TCP -> WebSocket. Ok(true): ended by TCP EOF; the far side was told (half-close).
        let upstream = async {
            let mut buf = BytesMut::with_capacity(CHUNK);
            loop {
                buf.reserve(CHUNK);
                let n = tcp_r.read_buf(&mut buf).await?;
                if n == 0 {
                    if options.half_close {
                        sink.send(Message::Binary(bytes::Bytes::new()))
                            .await
                            .map_err(io::Error::other)?;
                        return Ok::<_, io::Error>(true);
                    }
                    return Ok(false);
                }
                activity.notify_one();
                up_bytes.fetch_add(n as u64, Ordering::Relaxed);
                sink.send(Message::Binary(buf.split().freeze()))
                    .await
                    .map_err(io::Error::other)?;
            }
        };

        // WebSocket -> TCP, until the socket closes. A half-close frame ends the TCP direction
        // (and says so through `half_closed`), but the socket is still read: its close, or its
        // loss, must end the tunnel even while the other direction is idle.
        let half_closed = tokio::sync::Notify::new();
        let downstream = async {
            let mut ended = false;
            while let Some(msg) = stream.next().await {
                match msg.map_err(io::Error::other)? {
                    Message::Binary(data) if data.is_empty() => {
                        if options.half_close && !ended {
                            tcp_w.shutdown().await?;
                            ended = true;
                            half_closed.notify_one();
                        }
                    }
                    // Data after the peer said it was done is a protocol error: dropped.
                    Message::Binary(_) if ended => {}
                    Message::Binary(data) => {
                        activity.notify_one();
                        down_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                        tcp_w.write_all(&data).await?;
                    }
                    Message::Text(t) => {
                        // wstun logs and ignores text on a data socket.
                        tracing::debug!(
                            len = t.len(),
                            "text frame on a tunnel data socket ignored"
                        );
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            if !ended {
                let _ = tcp_w.shutdown().await;
            }
            Ok::<_, io::Error>(false)
        };

        let idle = async {
            match options.idle_timeout {
                None => std::future::pending::<()>().await,
                Some(limit) => loop {
                    if tokio::time::timeout(limit, activity.notified())
                        .await
                        .is_err()
                    {
                        return;
                    }
                },
            }
        };

        tokio::pin!(upstream, downstream, idle);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                r = &mut upstream, if !up_done => match r {
                    Ok(true) => {
                        up_done = true;
                        if down_done { break Ok(()); }
                    }
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                },
                r = &mut downstream => match r {
                    Ok(_) => break Ok(()),
                    Err(e) => break Err(e),
                },
                _ = half_closed.notified(), if !down_done => {
                    down_done = true;
                    if up_done { break Ok(()); }
                }
                _ = &mut idle => break Err(io::Error::new(io::ErrorKind::TimedOut, "tunnel idle")),
            }
        }
    };
    // Closing is best effort: the peer may be gone already.
    if let Ok(mut ws) = stream.reunite(sink) {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    result.map(|()| Transferred {
        tcp_to_ws: up_bytes.into_inner(),
        ws_to_tcp: down_bytes.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::protocol::Role;

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn a_socket_closed_after_a_half_close_ends_the_tunnel() {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let ws = WebSocketStream::from_raw_socket(near, Role::Server, None).await;
        let mut peer = WebSocketStream::from_raw_socket(far, Role::Client, None).await;
        let (local, mut user) = tcp_pair().await;
        let options = PumpOptions {
            half_close: true,
            idle_timeout: None,
        };
        let tunnel = tokio::spawn(pump(ws, local, options));
        peer.send(Message::binary(b"last words".to_vec()))
            .await
            .unwrap();
        peer.send(Message::Binary(Default::default()))
            .await
            .unwrap();
        // The half-close reaches TCP: the user reads everything, then end of stream.
        let mut got = Vec::new();
        user.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
        // The peer then goes away while the user's side stays open and silent.
        peer.close(None).await.unwrap();
        let moved = tokio::time::timeout(Duration::from_secs(5), tunnel)
            .await
            .expect("the tunnel ended when the socket closed")
            .unwrap()
            .unwrap();
        assert_eq!(moved.ws_to_tcp, 10);
        drop(user);
    }
}
