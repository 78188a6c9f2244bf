//! Errors seen by users of the client [`Session`](crate::Session).

use serde_json::Value;

use crate::codec::ProtocolError;
use crate::message::{Args, Kwargs};

/// A WAMP ERROR: an error URI and its payload.
///
/// Handlers return it to answer an invocation with ERROR; callers get it in [`WampError::Call`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}{}", self.message().map(|m| format!(": {m}")).unwrap_or_default())]
pub struct CallError {
    pub error: String,
    pub args: Args,
    pub kwargs: Kwargs,
}

impl CallError {
    /// An error with just a URI.
    pub fn new(error: impl Into<String>) -> Self {
        CallError {
            error: error.into(),
            args: Args::new(),
            kwargs: Kwargs::new(),
        }
    }

    /// An error with a URI and a human-readable message as its only argument (the common style).
    pub fn with_message(error: impl Into<String>, message: impl Into<String>) -> Self {
        CallError {
            error: error.into(),
            args: vec![Value::String(message.into())],
            kwargs: Kwargs::new(),
        }
    }

    /// The first positional argument when it is a string: by convention, the human message.
    pub fn message(&self) -> Option<&str> {
        self.args.first().and_then(Value::as_str)
    }
}

/// What can go wrong with a client session.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WampError {
    /// The router or the callee answered with an ERROR.
    #[error("{0}")]
    Call(CallError),
    /// The client-side timeout expired.
    #[error("timed out")]
    Timeout,
    /// The connection is gone (or was never up).
    #[error("connection closed")]
    Closed,
    /// The router answered the join with ABORT.
    #[error("join aborted: {reason}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Aborted {
        reason: String,
        message: Option<String>,
    },
    /// The peer sent something that is not valid WAMP.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// Connecting, TLS or the WebSocket handshake failed.
    #[error("transport error: {0}")]
    Transport(String),
}

impl WampError {
    /// The error URI when the peer answered with ERROR or ABORT.
    pub fn uri(&self) -> Option<&str> {
        match self {
            WampError::Call(e) => Some(&e.error),
            WampError::Aborted { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl From<CallError> for WampError {
    fn from(e: CallError) -> Self {
        WampError::Call(e)
    }
}
