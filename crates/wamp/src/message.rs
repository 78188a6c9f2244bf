//! WAMP v2 messages: the basic profile plus CHALLENGE/AUTHENTICATE (and CANCEL/INTERRUPT so
//! that an advanced peer sending them is not a protocol violation).
//!
//! A message is a list whose first element is its type code. [`Message`] serializes itself as
//! that list (for any serde format) and [`Message::from_value`] parses one from a decoded
//! [`serde_json::Value`], checking arity, element types, IDs and URIs.

use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

use crate::codec::ProtocolError;

/// Session, request, publication, subscription and registration IDs (`0..=2^53`).
pub type Id = u64;
/// Positional payload.
pub type Args = Vec<Value>;
/// Keyword payload.
pub type Kwargs = serde_json::Map<String, Value>;
/// Options and details.
pub type Dict = serde_json::Map<String, Value>;

/// The largest ID the spec allows: IDs must be exactly representable as IEEE doubles.
pub const MAX_ID: Id = 1 << 53;

/// Message type codes of the WAMP v2 spec.
pub mod code {
    pub const HELLO: u64 = 1;
    pub const WELCOME: u64 = 2;
    pub const ABORT: u64 = 3;
    pub const CHALLENGE: u64 = 4;
    pub const AUTHENTICATE: u64 = 5;
    pub const GOODBYE: u64 = 6;
    pub const ERROR: u64 = 8;
    pub const PUBLISH: u64 = 16;
    pub const PUBLISHED: u64 = 17;
    pub const SUBSCRIBE: u64 = 32;
    pub const SUBSCRIBED: u64 = 33;
    pub const UNSUBSCRIBE: u64 = 34;
    pub const UNSUBSCRIBED: u64 = 35;
    pub const EVENT: u64 = 36;
    pub const CALL: u64 = 48;
    pub const CANCEL: u64 = 49;
    pub const RESULT: u64 = 50;
    pub const REGISTER: u64 = 64;
    pub const REGISTERED: u64 = 65;
    pub const UNREGISTER: u64 = 66;
    pub const UNREGISTERED: u64 = 67;
    pub const INVOCATION: u64 = 68;
    pub const INTERRUPT: u64 = 69;
    pub const YIELD: u64 = 70;
}

/// One WAMP message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello {
        realm: String,
        details: Dict,
    },
    Welcome {
        session: Id,
        details: Dict,
    },
    Abort {
        details: Dict,
        reason: String,
    },
    Goodbye {
        details: Dict,
        reason: String,
    },
    Challenge {
        authmethod: String,
        extra: Dict,
    },
    Authenticate {
        signature: String,
        extra: Dict,
    },
    Error {
        request_type: u64,
        request: Id,
        details: Dict,
        error: String,
        args: Args,
        kwargs: Kwargs,
    },
    Publish {
        request: Id,
        options: Dict,
        topic: String,
        args: Args,
        kwargs: Kwargs,
    },
    Published {
        request: Id,
        publication: Id,
    },
    Subscribe {
        request: Id,
        options: Dict,
        topic: String,
    },
    Subscribed {
        request: Id,
        subscription: Id,
    },
    Unsubscribe {
        request: Id,
        subscription: Id,
    },
    Unsubscribed {
        request: Id,
    },
    Event {
        subscription: Id,
        publication: Id,
        details: Dict,
        args: Args,
        kwargs: Kwargs,
    },
    Call {
        request: Id,
        options: Dict,
        procedure: String,
        args: Args,
        kwargs: Kwargs,
    },
    /// Advanced profile (call canceling); accepted so that such peers are not cut off.
    Cancel {
        request: Id,
        options: Dict,
    },
    Result {
        request: Id,
        details: Dict,
        args: Args,
        kwargs: Kwargs,
    },
    Register {
        request: Id,
        options: Dict,
        procedure: String,
    },
    Registered {
        request: Id,
        registration: Id,
    },
    Unregister {
        request: Id,
        registration: Id,
    },
    Unregistered {
        request: Id,
    },
    Invocation {
        request: Id,
        registration: Id,
        details: Dict,
        args: Args,
        kwargs: Kwargs,
    },
    /// Advanced profile (call canceling); accepted so that such peers are not cut off.
    Interrupt {
        request: Id,
        options: Dict,
    },
    Yield {
        request: Id,
        options: Dict,
        args: Args,
        kwargs: Kwargs,
    },
}

impl Message {
    /// The message type code.
    pub fn code(&self) -> u64 {
        use code::*;
        match self {
            Message::Hello { .. } => HELLO,
            Message::Welcome { .. } => WELCOME,
            Message::Abort { .. } => ABORT,
            Message::Goodbye { .. } => GOODBYE,
            Message::Challenge { .. } => CHALLENGE,
            Message::Authenticate { .. } => AUTHENTICATE,
            Message::Error { .. } => ERROR,
            Message::Publish { .. } => PUBLISH,
            Message::Published { .. } => PUBLISHED,
            Message::Subscribe { .. } => SUBSCRIBE,
            Message::Subscribed { .. } => SUBSCRIBED,
            Message::Unsubscribe { .. } => UNSUBSCRIBE,
            Message::Unsubscribed { .. } => UNSUBSCRIBED,
            Message::Event { .. } => EVENT,
            Message::Call { .. } => CALL,
            Message::Cancel { .. } => CANCEL,
            Message::Result { .. } => RESULT,
            Message::Register { .. } => REGISTER,
            Message::Registered { .. } => REGISTERED,
            Message::Unregister { .. } => UNREGISTER,
            Message::Unregistered { .. } => UNREGISTERED,
            Message::Invocation { .. } => INVOCATION,
            Message::Interrupt { .. } => INTERRUPT,
            Message::Yield { .. } => YIELD,
        }
    }

    /// The upper-case name used by the spec, e.g. `"CALL"`.
    pub fn name(&self) -> &'static str {
        type_name(self.code()).unwrap_or("UNKNOWN")
    }

    /// Parses a message from its decoded list form.
    pub fn from_value(value: Value) -> Result<Message, ProtocolError> {
        let Value::Array(items) = value else {
            return Err(ProtocolError::new(format!(
                "message must be an array, got {}",
                kind_of(&value)
            )));
        };
        let Some(first) = items.first() else {
            return Err(ProtocolError::new("empty message array"));
        };
        let Some(code) = first.as_u64() else {
            return Err(ProtocolError::new(format!(
                "message type must be a non-negative integer, got {}",
                kind_of(first)
            )));
        };
        let Some(name) = type_name(code) else {
            return Err(ProtocolError::new(format!("unknown message type {code}")));
        };
        let (min, max) = arity(code);
        if items.len() < min || items.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(ProtocolError::new(format!(
                "{name}: expected {expected} elements, got {}",
                items.len()
            )));
        }
        let mut p = Fields {
            name,
            items: items.into_iter().skip(1),
            index: 1,
        };
        use code::*;
        let msg = match code {
            HELLO => Message::Hello {
                realm: p.uri("realm")?,
                details: p.dict("details")?,
            },
            WELCOME => Message::Welcome {
                session: p.id("session")?,
                details: p.dict("details")?,
            },
            ABORT => Message::Abort {
                details: p.dict("details")?,
                reason: p.uri("reason")?,
            },
            GOODBYE => Message::Goodbye {
                details: p.dict("details")?,
                reason: p.uri("reason")?,
            },
            CHALLENGE => Message::Challenge {
                authmethod: p.string("authmethod")?,
                extra: p.dict("extra")?,
            },
            AUTHENTICATE => Message::Authenticate {
                signature: p.string("signature")?,
                extra: p.dict("extra")?,
            },
            ERROR => Message::Error {
                request_type: p.uint("request type")?,
                request: p.id("request")?,
                details: p.dict("details")?,
                error: p.uri("error")?,
                args: p.args()?,
                kwargs: p.kwargs()?,
            },
            PUBLISH => Message::Publish {
                request: p.id("request")?,
                options: p.dict("options")?,
                topic: p.uri("topic")?,
                args: p.args()?,
                kwargs: p.kwargs()?,
            },
            PUBLISHED => Message::Published {
                request: p.id("request")?,
                publication: p.id("publication")?,
            },
            SUBSCRIBE => Message::Subscribe {
                request: p.id("request")?,
                options: p.dict("options")?,
                topic: p.uri("topic")?,
            },
            SUBSCRIBED => Message::Subscribed {
                request: p.id("request")?,
                subscription: p.id("subscription")?,
            },
            UNSUBSCRIBE => Message::Unsubscribe {
                request: p.id("request")?,
                subscription: p.id("subscription")?,
            },
            UNSUBSCRIBED => Message::Unsubscribed {
                request: p.id("request")?,
            },
            EVENT => Message::Event {
                subscription: p.id("subscription")?,
                publication: p.id("publication")?,
                details: p.dict("details")?,
                args: p.args()?,
                kwargs: p.kwargs()?,
            },
            CALL => Message::Call {
                request: p.id("request")?,
                options: p.dict("options")?,
                procedure: p.uri("procedure")?,
                args: p.args()?,
                kwargs: p.kwargs()?,
            },
            CANCEL => Message::Cancel {
                request: p.id("request")?,
                options: p.dict("options")?,
            },
            RESULT => Message::Result {
                request: p.id("request")?,
                details: p.dict("details")?,
                args: p.args()?,
                kwargs: p.kwargs()?,
            },
            REGISTER => Message::Register {
                request: p.id("request")?,
                options: p.dict("options")?,
                procedure: p.uri("procedure")?,
            },
            REGISTERED => Message::Registered {
                request: p.id("request")?,
                registration: p.id("registration")?,
            },
            UNREGISTER => Message::Unregister {
                request: p.id("request")?,
                registration: p.id("registration")?,
            },
            UNREGISTERED => Message::Unregistered {
                request: p.id("request")?,
            },
            INVOCATION => Message::Invocation {
                request: p.id("request")?,
                registration: p.id("registration")?,
                details: p.dict("details")?,
                args: p.args()?,
                kwargs: p.kwargs()?,
            },
            INTERRUPT => Message::Interrupt {
                request: p.id("request")?,
                options: p.dict("options")?,
            },
            YIELD => Message::Yield {
                request: p.id("request")?,
                options: p.dict("options")?,
                args: p.args()?,
                kwargs: p.kwargs()?,
            },
            _ => unreachable!("type_name accepted an unhandled code"),
        };
        Ok(msg)
    }
}

/// Spec name of a message type code, or `None` if the code is not one this crate speaks.
pub fn type_name(code: u64) -> Option<&'static str> {
    use code::*;
    Some(match code {
        HELLO => "HELLO",
        WELCOME => "WELCOME",
        ABORT => "ABORT",
        CHALLENGE => "CHALLENGE",
        AUTHENTICATE => "AUTHENTICATE",
        GOODBYE => "GOODBYE",
        ERROR => "ERROR",
        PUBLISH => "PUBLISH",
        PUBLISHED => "PUBLISHED",
        SUBSCRIBE => "SUBSCRIBE",
        SUBSCRIBED => "SUBSCRIBED",
        UNSUBSCRIBE => "UNSUBSCRIBE",
        UNSUBSCRIBED => "UNSUBSCRIBED",
        EVENT => "EVENT",
        CALL => "CALL",
        CANCEL => "CANCEL",
        RESULT => "RESULT",
        REGISTER => "REGISTER",
        REGISTERED => "REGISTERED",
        UNREGISTER => "UNREGISTER",
        UNREGISTERED => "UNREGISTERED",
        INVOCATION => "INVOCATION",
        INTERRUPT => "INTERRUPT",
        YIELD => "YIELD",
        _ => return None,
    })
}

/// Allowed list lengths (type code included) per message type.
fn arity(code: u64) -> (usize, usize) {
    use code::*;
    match code {
        HELLO | WELCOME | ABORT | GOODBYE | CHALLENGE | AUTHENTICATE => (3, 3),
        ERROR => (5, 7),
        PUBLISH | CALL | EVENT | INVOCATION => (4, 6),
        RESULT | YIELD => (3, 5),
        PUBLISHED | SUBSCRIBED | UNSUBSCRIBE | REGISTERED | UNREGISTER | CANCEL | INTERRUPT => {
            (3, 3)
        }
        SUBSCRIBE | REGISTER => (4, 4),
        UNSUBSCRIBED | UNREGISTERED => (2, 2),
        _ => (0, usize::MAX),
    }
}

/// Cursor over the elements after the type code, naming each in errors.
struct Fields {
    name: &'static str,
    items: std::iter::Skip<std::vec::IntoIter<Value>>,
    index: usize,
}

impl Fields {
    fn next(&mut self) -> Option<Value> {
        self.index += 1;
        self.items.next()
    }

    fn fail(&self, what: &str, expected: &str, got: &Value) -> ProtocolError {
        ProtocolError::new(format!(
            "{}: element {} ({what}) must be {expected}, got {}",
            self.name,
            self.index - 1,
            kind_of(got)
        ))
    }

    fn required(&mut self, what: &str) -> Result<Value, ProtocolError> {
        // Arity was checked up front, so a missing required element is a bug in `arity`.
        self.next()
            .ok_or_else(|| ProtocolError::new(format!("{}: missing {what}", self.name)))
    }

    fn uint(&mut self, what: &str) -> Result<u64, ProtocolError> {
        let v = self.required(what)?;
        v.as_u64()
            .ok_or_else(|| self.fail(what, "a non-negative integer", &v))
    }

    fn id(&mut self, what: &str) -> Result<Id, ProtocolError> {
        let v = self.required(what)?;
        match v.as_u64() {
            Some(id) if id <= MAX_ID => Ok(id),
            _ => Err(self.fail(what, "an ID (integer in 0..=2^53)", &v)),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, ProtocolError> {
        match self.required(what)? {
            Value::String(s) => Ok(s),
            other => Err(self.fail(what, "a string", &other)),
        }
    }

    fn uri(&mut self, what: &str) -> Result<String, ProtocolError> {
        let s = self.string(what)?;
        if is_valid_uri(&s) {
            Ok(s)
        } else {
            Err(ProtocolError::new(format!(
                "{}: invalid URI {:?} for {what}",
                self.name,
                truncate(&s, 80)
            )))
        }
    }

    fn dict(&mut self, what: &str) -> Result<Dict, ProtocolError> {
        match self.required(what)? {
            Value::Object(m) => Ok(m),
            other => Err(self.fail(what, "a dict", &other)),
        }
    }

    fn args(&mut self) -> Result<Args, ProtocolError> {
        match self.next() {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(self.fail("arguments", "a list", &other)),
        }
    }

    fn kwargs(&mut self) -> Result<Kwargs, ProtocolError> {
        match self.next() {
            None => Ok(Kwargs::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(self.fail("keyword arguments", "a dict", &other)),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(n) if n.as_i64().is_some_and(|i| i < 0) => "a negative integer",
        Value::Number(n) if n.as_u64().is_some_and(|u| u > MAX_ID) => "an integer above 2^53",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The spec's "loose" URI rule: dot-separated, non-empty components without whitespace or `#`.
/// Loose rather than strict because board and service names carry upper case and dashes.
pub fn is_valid_uri(uri: &str) -> bool {
    !uri.is_empty()
        && uri
            .split('.')
            .all(|c| !c.is_empty() && !c.chars().any(|ch| ch.is_whitespace() || ch == '#'))
}

/// Payload elements to emit: omit empty trailing args/kwargs, keep `[]` before non-empty kwargs.
fn payload_len(args: &Args, kwargs: &Kwargs) -> usize {
    if !kwargs.is_empty() {
        2
    } else if !args.is_empty() {
        1
    } else {
        0
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let code = self.code();
        macro_rules! seq {
            ($($field:expr),* ; $args:expr, $kwargs:expr) => {{
                let extra = payload_len($args, $kwargs);
                let mut seq = serializer.serialize_seq(Some(1 + count!($($field),*) + extra))?;
                seq.serialize_element(&code)?;
                $(seq.serialize_element($field)?;)*
                if extra >= 1 { seq.serialize_element($args)?; }
                if extra == 2 { seq.serialize_element($kwargs)?; }
                seq.end()
            }};
            ($($field:expr),*) => {{
                let mut seq = serializer.serialize_seq(Some(1 + count!($($field),*)))?;
                seq.serialize_element(&code)?;
                $(seq.serialize_element($field)?;)*
                seq.end()
            }};
        }
        macro_rules! count {
            () => { 0usize };
            ($head:expr $(, $tail:expr)*) => { 1usize + count!($($tail),*) };
        }
        match self {
            Message::Hello { realm, details } => seq!(realm, details),
            Message::Welcome { session, details } => seq!(session, details),
            Message::Abort { details, reason } => seq!(details, reason),
            Message::Goodbye { details, reason } => seq!(details, reason),
            Message::Challenge { authmethod, extra } => seq!(authmethod, extra),
            Message::Authenticate { signature, extra } => seq!(signature, extra),
            Message::Error {
                request_type,
                request,
                details,
                error,
                args,
                kwargs,
            } => seq!(request_type, request, details, error; args, kwargs),
            Message::Publish {
                request,
                options,
                topic,
                args,
                kwargs,
            } => seq!(request, options, topic; args, kwargs),
            Message::Published {
                request,
                publication,
            } => seq!(request, publication),
            Message::Subscribe {
                request,
                options,
                topic,
            } => seq!(request, options, topic),
            Message::Subscribed {
                request,
                subscription,
            } => seq!(request, subscription),
            Message::Unsubscribe {
                request,
                subscription,
            } => seq!(request, subscription),
            Message::Unsubscribed { request } => seq!(request),
            Message::Event {
                subscription,
                publication,
                details,
                args,
                kwargs,
            } => seq!(subscription, publication, details; args, kwargs),
            Message::Call {
                request,
                options,
                procedure,
                args,
                kwargs,
            } => seq!(request, options, procedure; args, kwargs),
            Message::Cancel { request, options } => seq!(request, options),
            Message::Result {
                request,
                details,
                args,
                kwargs,
            } => seq!(request, details; args, kwargs),
            Message::Register {
                request,
                options,
                procedure,
            } => seq!(request, options, procedure),
            Message::Registered {
                request,
                registration,
            } => seq!(request, registration),
            Message::Unregister {
                request,
                registration,
            } => seq!(request, registration),
            Message::Unregistered { request } => seq!(request),
            Message::Invocation {
                request,
                registration,
                details,
                args,
                kwargs,
            } => seq!(request, registration, details; args, kwargs),
            Message::Interrupt { request, options } => seq!(request, options),
            Message::Yield {
                request,
                options,
                args,
                kwargs,
            } => seq!(request, options; args, kwargs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uri_rules() {
        assert!(is_valid_uri("wamp.session.on_join"));
        assert!(is_valid_uri("iotronic.Board-1.x"));
        assert!(!is_valid_uri(""));
        assert!(!is_valid_uri("a..b"));
        assert!(!is_valid_uri(".a"));
        assert!(!is_valid_uri("a b"));
        assert!(!is_valid_uri("a.#"));
    }

    #[test]
    fn payload_is_trimmed() {
        let m = Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "p".into(),
            args: vec![],
            kwargs: Kwargs::new(),
        };
        assert_eq!(serde_json::to_value(&m).unwrap(), json!([48, 1, {}, "p"]));
        let mut kw = Kwargs::new();
        kw.insert("a".into(), json!(1));
        let m = Message::Yield {
            request: 2,
            options: Dict::new(),
            args: vec![],
            kwargs: kw,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!([70, 2, {}, [], {"a": 1}])
        );
    }
}
