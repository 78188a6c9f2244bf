//! URIs this crate sends: errors, close reasons and the session meta API.

/// A peer broke the protocol (malformed frame, unexpected message); sent in ABORT.
pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
/// HELLO named a realm the router does not serve.
pub const NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
/// Authentication failed, no acceptable authmethod, or an action was denied.
pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
/// CALL to a procedure nobody registered.
pub const NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
/// REGISTER of a procedure someone else already registered.
pub const PROCEDURE_ALREADY_EXISTS: &str = "wamp.error.procedure_already_exists";
/// UNREGISTER of a registration the session does not own.
pub const NO_SUCH_REGISTRATION: &str = "wamp.error.no_such_registration";
/// UNSUBSCRIBE of a subscription the session does not have.
pub const NO_SUCH_SUBSCRIPTION: &str = "wamp.error.no_such_subscription";
/// `wamp.session.get` for an unknown session.
pub const NO_SUCH_SESSION: &str = "wamp.error.no_such_session";
/// REGISTER or PUBLISH under the router's reserved `wamp.` prefix.
pub const INVALID_URI: &str = "wamp.error.invalid_uri";
/// Unsupported options or bad meta procedure arguments.
pub const INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
/// The call was not answered within its timeout.
pub const TIMEOUT: &str = "wamp.error.timeout";
/// The callee left before answering, or the caller canceled.
pub const CANCELED: &str = "wamp.error.canceled";
/// The caller has too many calls outstanding.
pub const LIMIT_EXCEEDED: &str = "wamp.error.limit_exceeded";
/// A callee handler panicked (client side).
pub const RUNTIME_ERROR: &str = "wamp.error.runtime_error";

/// GOODBYE reason of a leaving peer.
pub const CLOSE_REALM: &str = "wamp.close.close_realm";
/// GOODBYE reason answering a peer's GOODBYE.
pub const CLOSE_GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
/// GOODBYE (or ABORT) reason when the router shuts down.
pub const CLOSE_SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";

/// Meta event: a session joined; args `[details]`.
pub const SESSION_ON_JOIN: &str = "wamp.session.on_join";
/// Meta event: a session left; args `[session, authid, authrole]`.
pub const SESSION_ON_LEAVE: &str = "wamp.session.on_leave";
/// Meta procedure: args `[authroles?]` → `[[session ids]]`.
pub const SESSION_LIST: &str = "wamp.session.list";
/// Meta procedure: args `[authroles?]` → `[count]`.
pub const SESSION_COUNT: &str = "wamp.session.count";
/// Meta procedure: args `[session]` → `[details]`.
pub const SESSION_GET: &str = "wamp.session.get";
