//! Serializers: WAMP messages to and from bytes, one WebSocket frame per message.

use serde_json::Value;

use crate::message::Message;

/// Nesting limit for decoded payloads; keeps recursion (and stack use) bounded on hostile input.
const MAX_DEPTH: usize = 128;

/// A malformed or invalid message. Its text says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    message: String,
}

impl ProtocolError {
    /// A protocol error with the given description.
    pub fn new(message: impl Into<String>) -> Self {
        ProtocolError {
            message: message.into(),
        }
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A WAMP serializer, negotiated as a WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// `wamp.2.json`, carried in text frames.
    Json,
    /// `wamp.2.msgpack`, carried in binary frames.
    Msgpack,
}

impl Serializer {
    /// The WebSocket subprotocol name.
    pub fn subprotocol(&self) -> &'static str {
        match self {
            Serializer::Json => "wamp.2.json",
            Serializer::Msgpack => "wamp.2.msgpack",
        }
    }

    /// The serializer for a subprotocol name, if supported.
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        match name.trim() {
            "wamp.2.json" => Some(Serializer::Json),
            "wamp.2.msgpack" => Some(Serializer::Msgpack),
            _ => None,
        }
    }

    /// Whether frames are binary (as opposed to UTF-8 text).
    pub fn is_binary(&self) -> bool {
        matches!(self, Serializer::Msgpack)
    }

    /// Encodes a message. Infallible: every [`Message`] is representable in both formats.
    pub fn encode(&self, message: &Message) -> Vec<u8> {
        match self {
            // Serializing a Message (strings, integers, JSON values) cannot fail.
            Serializer::Json => serde_json::to_vec(message).unwrap_or_default(),
            Serializer::Msgpack => rmp_serde::to_vec(message).unwrap_or_default(),
        }
    }

    /// Decodes and validates one message.
    pub fn decode(&self, bytes: &[u8]) -> Result<Message, ProtocolError> {
        let value = match self {
            Serializer::Json => decode_json(bytes)?,
            Serializer::Msgpack => decode_msgpack(bytes)?,
        };
        Message::from_value(value)
    }
}

fn decode_json(bytes: &[u8]) -> Result<Value, ProtocolError> {
    // serde_json has its own recursion limit (128), equal to MAX_DEPTH.
    serde_json::from_slice(bytes).map_err(|e| ProtocolError::new(format!("invalid JSON: {e}")))
}

fn decode_msgpack(bytes: &[u8]) -> Result<Value, ProtocolError> {
    use serde::Deserialize;
    // A plain `&[u8]` reader advances as it reads, which reveals trailing bytes afterwards.
    let mut de = rmp_serde::Deserializer::new(bytes);
    de.set_max_depth(MAX_DEPTH);
    let value = Value::deserialize(&mut de)
        .map_err(|e| ProtocolError::new(format!("invalid MessagePack: {e}")))?;
    let trailing = de.get_ref().len();
    if trailing != 0 {
        return Err(ProtocolError::new(format!(
            "invalid MessagePack: {trailing} trailing bytes after the message"
        )));
    }
    Ok(value)
}
