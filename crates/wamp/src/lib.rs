//! WAMP v2 basic profile for s4t: a router (broker + dealer) and a client, over WebSocket
//! (`wamp.2.json`, `wamp.2.msgpack`, plain or TLS) or in-process.
//!
//! # Layers
//!
//! - [`message`]: the [`Message`] enum, its list form and validation (arity, element types,
//!   IDs in `0..=2^53`, loose URIs). Empty trailing args/kwargs are omitted on encoding; an
//!   empty args list is kept when kwargs follow.
//! - [`codec`]: [`Serializer`] turns messages into frames and back; every malformed input is a
//!   [`ProtocolError`] whose text says what is wrong. Decoding never panics (fuzzed).
//! - transport (internal): sessions exchange messages over a pair of channels. A WebSocket
//!   connection is one transport (codec, pings, liveness, size limits); the router's
//!   in-process sessions are another (just the channels).
//! - [`router`]: [`Router`] serves connections ([`Router::serve`],
//!   [`Router::serve_connection`] for an already accepted TCP or TLS stream) and in-process
//!   sessions ([`Router::local_session`]). Each connection is one task; realm state sits behind
//!   a mutex that is never held across an await, and messages go straight into the
//!   destination sessions' outbound queues, so no central routing task exists.
//! - [`client`]: [`connect`] gives a [`Session`], a protocol state machine over a transport;
//!   local sessions are the same type.
//!
//! # Router behaviour
//!
//! - Join: HELLO for an unknown realm → ABORT `wamp.error.no_such_realm`. Authmethods are
//!   taken in the client's order: `wampcra` (HMAC-SHA256 over the JSON challenge, base64, no
//!   salt) and `ticket` need an [`Authenticator`]; `anonymous` (also assumed when HELLO has no
//!   `authmethods`) needs [`RouterConfig::anonymous`] and gives authrole `anonymous` and a random
//!   Crossbar-style authid (never the one in HELLO). Any failure, including no acceptable method → ABORT `wamp.error.not_authorized`
//!   with `details.message` saying why. WELCOME details carry `authid`, `authrole`,
//!   `authmethod`, `authprovider`, `realm` and `roles.broker/dealer.features`, as autobahn
//!   expects. Session ids are random in `[1, 2^53]`.
//! - Dealer: exact match, invoke `single` (other policies → `wamp.error.invalid_argument`).
//!   Errors: `wamp.error.procedure_already_exists`, `wamp.error.no_such_procedure`,
//!   `wamp.error.no_such_registration`, `wamp.error.invalid_uri` (the `wamp.` prefix is the
//!   router's). INVOCATION details always carry `caller`, `caller_authid`, `caller_authrole` and
//!   `procedure`. A positive `options.timeout` (ms) on CALL is honoured
//!   as given; otherwise [`RouterConfig::default_call_timeout`] applies. On expiry the caller
//!   gets `wamp.error.timeout` and the call is forgotten (no INTERRUPT; a late YIELD is
//!   dropped). When a callee leaves, its pending calls fail at once with
//!   `wamp.error.canceled`; when a caller leaves, its calls are forgotten. CANCEL is honoured
//!   in "skip" mode (`wamp.error.canceled` to the caller). Beyond
//!   [`RouterConfig::max_pending_calls_per_session`] outstanding calls, CALL fails with
//!   `wamp.error.limit_exceeded`. ERROR from a callee is forwarded with its URI and payload.
//! - Broker: exact match; subscribers of a topic share one subscription id; the publisher is
//!   excluded unless `exclude_me: false`; `exclude`/`eligible` session lists are honoured;
//!   `acknowledge: true` gives PUBLISHED (and errors, which are otherwise silent).
//! - Authorization: an [`Authorizer`] sees CALL, REGISTER, SUBSCRIBE and PUBLISH of every
//!   session (local ones too, with authmethod `trusted`); denial → `wamp.error.not_authorized`.
//! - Session meta API, per realm: events `wamp.session.on_join` (args `[details]`, details =
//!   `{session, realm, authid, authrole, authmethod, authprovider, transport: {type, peer}}`,
//!   peer like `"tcp4:127.0.0.1:5000"`) and `wamp.session.on_leave` (args
//!   `[session, authid, authrole]`); procedures `wamp.session.count` (→ `[n]`),
//!   `wamp.session.list` (→ `[[ids]]`, both with an optional `[authroles]` filter argument)
//!   and `wamp.session.get` (`[id]` → `[details]`, or `wamp.error.no_such_session`). Local
//!   sessions are listed like any other.
//! - Robustness: a malformed frame (bad JSON/MessagePack, not a list, unknown type, wrong
//!   arity or element types, invalid URI) → ABORT `wamp.error.protocol_violation` with
//!   `details.message` = the [`ProtocolError`] text, then close of that connection only.
//!   Anything but HELLO before joining (or AUTHENTICATE after a CHALLENGE) is also a protocol
//!   violation. A frame above [`RouterConfig::max_frame_bytes`] closes the connection with
//!   WebSocket code 1009. GOODBYE is answered with `wamp.close.goodbye_and_out`.
//!   [`Router::close`] says GOODBYE `wamp.close.system_shutdown` to everyone.
//! - Liveness: with [`RouterConfig::ping_interval`] set, the router pings; a connection with
//!   no frame at all from the peer for [`RouterConfig::ping_timeout`] (or a write blocked that
//!   long) is dropped and `on_leave` published. The WebSocket handshake and the join must
//!   finish within [`RouterConfig::handshake_timeout`].
//!
//! # Limits and memory
//!
//! Per connection the router keeps one task, a 4 KiB WebSocket read buffer (frames up to
//! `max_frame_bytes` grow it temporarily), an unbounded outbound queue of boxed messages, and
//! its entry in the realm maps. The WebSocket subprotocol must be `wamp.2.json` or
//! `wamp.2.msgpack` (the router's preference order, [`RouterConfig::serializers`], picks
//! among those offered); otherwise the handshake fails with HTTP 400, as with Crossbar.
//!
//! # Client
//!
//! [`connect`] resolves, binds [`ClientConfig::local_addr`] if set, does TLS for `wss://`
//! (rustls with the ring provider, webpki roots plus [`ClientConfig::extra_ca_pem`], or no
//! verification with [`ClientConfig::tls_insecure`]), the WebSocket handshake and the join,
//! all within [`ClientConfig::connect_timeout`]. Pending calls fail with
//! [`WampError::Closed`] as soon as the link drops; [`Session::closed`] resolves then.
//! Invocation handlers run concurrently, one task each; a panicking handler answers
//! `wamp.error.runtime_error`.

pub mod client;
pub mod codec;
pub mod error;
pub mod message;
pub mod router;
pub mod uri;

mod auth;
mod transport;

pub use client::{
    connect, event_handler, handler, CallResult, ClientAuth, ClientConfig, Event, EventHandler,
    Handler, Invocation, Session,
};
pub use codec::{ProtocolError, Serializer};
pub use error::{CallError, WampError};
pub use futures_util::future::BoxFuture;
pub use message::{Args, Dict, Id, Kwargs, Message};
pub use router::{
    Action, AuthGrant, Authenticator, Authorizer, Router, RouterConfig, SessionInfo,
    StaticAuthenticator,
};

#[cfg(test)]
mod send_checks {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The gateway spawns these futures on a multi-threaded runtime; this only has to compile.
    #[allow(dead_code)]
    fn futures_are_send(
        router: Router,
        session: Session,
        listener: tokio::net::TcpListener,
        stream: tokio::net::TcpStream,
    ) {
        assert_send(&router.serve(listener));
        assert_send(&router.serve_connection(stream, None));
        assert_send(&router.local_session("r", "a", "b"));
        assert_send(&connect("ws://x", ClientConfig::new("r")));
        assert_send(&session.call("p", Args::new(), Kwargs::new()));
        assert_send(&session.register("p", handler(|_| async { Ok(CallResult::default()) })));
        assert_send(&session.subscribe("t", event_handler(|_| {})));
        assert_send(&session.publish("t", Args::new(), Kwargs::new()));
        assert_send(&session.leave());
        assert_send(&session.closed());
    }
}
