//! A TCP or TLS stream to the host of a `ws://` or `wss://` URL, with the same trust settings
//! as the WAMP client: other WebSocket protocols between a board and its cloud (the service
//! tunnels) use it, so one `--ca`/`--insecure` choice covers every link.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{tcp_connect, tls, ClientConfig};
use crate::error::WampError;

/// A plain or TLS client stream.
pub enum DialedStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Opens TCP (and TLS for `wss://`) to the URL's host and port, within
/// `config.connect_timeout`. Uses `config.local_addr`, `tls_insecure` and `extra_ca_pem`.
pub async fn dial(url: &url::Url, config: &ClientConfig) -> Result<DialedStream, WampError> {
    let secure = match url.scheme() {
        "ws" => false,
        "wss" => true,
        other => {
            return Err(WampError::Transport(format!(
                "unsupported URL scheme {other:?} in {url} (expected ws or wss)"
            )))
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| WampError::Transport(format!("URL {url} has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    let attempt = async {
        let tcp = tcp_connect(&host, port, config.local_addr).await?;
        let _ = tcp.set_nodelay(true);
        if secure {
            Ok(DialedStream::Tls(Box::new(
                tls::connect(config, &host, tcp).await?,
            )))
        } else {
            Ok(DialedStream::Plain(tcp))
        }
    };
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(WampError::Transport(format!(
            "connecting to {url} timed out after {:?}",
            config.connect_timeout
        ))),
    }
}

impl AsyncRead for DialedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DialedStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            DialedStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for DialedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            DialedStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            DialedStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DialedStream::Plain(s) => Pin::new(s).poll_flush(cx),
            DialedStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DialedStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            DialedStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            DialedStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            DialedStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            DialedStream::Plain(s) => s.is_write_vectored(),
            DialedStream::Tls(s) => s.is_write_vectored(),
        }
    }
}
