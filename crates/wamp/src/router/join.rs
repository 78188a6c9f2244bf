//! The opening of a session: HELLO, optional CHALLENGE/AUTHENTICATE, then WELCOME or ABORT.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use futures_util::future::BoxFuture;
use rand::RngCore;
use serde_json::{json, Value};

use super::realm::{abort, authprovider, Realm, SessionCtx};
use super::{AuthGrant, Authenticator, Router, SessionInfo};
use crate::auth::{ticket_matches, wampcra_verify};
use crate::message::{Dict, Message};
use crate::transport::MessageTx;
use crate::uri;

/// Where a connection is in the opening handshake.
#[derive(Default)]
pub(crate) enum JoinState {
    #[default]
    AwaitHello,
    Challenged(Box<Challenged>),
}

pub(crate) struct Challenged {
    realm: Arc<Realm>,
    session: u64,
    authid: String,
    authrole: String,
    check: Check,
}

enum Check {
    Ticket { secret: String },
    WampCra { secret: String, challenge: String },
}

/// Outcome of one pre-session message.
pub(crate) enum JoinStep {
    /// A CHALLENGE was queued; wait for AUTHENTICATE.
    Continue,
    /// WELCOME was queued and the session is joined; the queue now belongs to the realm.
    Joined(SessionCtx),
    /// Send this ABORT and close.
    Abort(Message),
}

/// Handles a message from a connection that has not joined yet. `tx` is the connection's
/// outbound queue; it is moved into the realm on success.
pub(crate) async fn on_message(
    router: &Router,
    state: &mut JoinState,
    message: Message,
    peer: Option<SocketAddr>,
    tx: &mut Option<MessageTx>,
) -> JoinStep {
    match (std::mem::take(state), message) {
        (JoinState::AwaitHello, Message::Hello { realm, details }) => {
            hello(router, state, realm, details, peer, tx).await
        }
        (JoinState::Challenged(challenged), Message::Authenticate { signature, .. }) => {
            let Challenged {
                realm,
                session,
                authid,
                authrole,
                check,
            } = *challenged;
            let (ok, method) = match &check {
                Check::Ticket { secret } => {
                    let presented = match &router.inner.config.authenticator {
                        Some(a) => a.ticket_as_stored(&signature),
                        None => signature.clone(),
                    };
                    (ticket_matches(secret, &presented), "ticket")
                }
                Check::WampCra { secret, challenge } => {
                    (wampcra_verify(secret, challenge, &signature), "wampcra")
                }
            };
            if !ok {
                tracing::info!(authid, method, "authentication failed");
                return JoinStep::Abort(abort(uri::NOT_AUTHORIZED, "authentication failed"));
            }
            let info = SessionInfo {
                id: session,
                realm: realm.name().to_string(),
                authid: Some(authid),
                authrole,
                authmethod: method.to_string(),
                peer,
            };
            admit(&realm, info, tx)
        }
        (JoinState::Challenged(_), other) => JoinStep::Abort(abort(
            uri::PROTOCOL_VIOLATION,
            format!("expected AUTHENTICATE, got {}", other.name()),
        )),
        (JoinState::AwaitHello, other) => JoinStep::Abort(abort(
            uri::PROTOCOL_VIOLATION,
            format!("expected HELLO, got {}", other.name()),
        )),
    }
}

async fn hello(
    router: &Router,
    state: &mut JoinState,
    realm_name: String,
    details: Dict,
    peer: Option<SocketAddr>,
    tx: &mut Option<MessageTx>,
) -> JoinStep {
    if router.is_closed() {
        return JoinStep::Abort(abort(
            uri::CLOSE_SYSTEM_SHUTDOWN,
            "the router is shutting down",
        ));
    }
    let Some(realm) = router.realm(&realm_name).cloned() else {
        return JoinStep::Abort(abort(
            uri::NO_SUCH_REALM,
            format!("no realm '{realm_name}' on this router"),
        ));
    };
    let config = &router.inner.config;
    // No authmethods means anonymous, as in the spec.
    let offered: Vec<&str> = match details.get("authmethods") {
        Some(Value::Array(methods)) => methods.iter().filter_map(Value::as_str).collect(),
        _ => vec!["anonymous"],
    };
    let chosen = offered.iter().copied().find(|m| match *m {
        "ticket" | "wampcra" => config.authenticator.is_some(),
        "anonymous" => config.anonymous,
        _ => false,
    });
    let Some(method) = chosen else {
        return JoinStep::Abort(abort(
            uri::NOT_AUTHORIZED,
            format!("none of the offered authmethods {offered:?} is accepted"),
        ));
    };
    let session = realm.fresh_session_id();
    if method == "anonymous" {
        let info = SessionInfo {
            id: session,
            realm: realm_name,
            authid: Some(anonymous_authid()),
            authrole: "anonymous".into(),
            authmethod: "anonymous".into(),
            peer,
        };
        return admit(&realm, info, tx);
    }
    let Some(authid) = details
        .get("authid")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return JoinStep::Abort(abort(
            uri::NOT_AUTHORIZED,
            format!("authmethod {method} requires an authid"),
        ));
    };
    let Some(authenticator) = config.authenticator.clone() else {
        return JoinStep::Abort(abort(uri::NOT_AUTHORIZED, "no authenticator"));
    };
    let lookup = authenticator.lookup(&realm_name, &authid);
    let grant = match tokio::time::timeout(config.handshake_timeout, lookup).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            tracing::info!(authid, method, "authentication failed: unknown authid");
            return JoinStep::Abort(abort(uri::NOT_AUTHORIZED, "authentication failed"));
        }
        Err(_) => {
            tracing::warn!(authid, "authenticator lookup timed out");
            return JoinStep::Abort(abort(uri::NOT_AUTHORIZED, "authentication timed out"));
        }
    };
    let (challenge_message, check) = if method == "ticket" {
        (
            Message::Challenge {
                authmethod: "ticket".into(),
                extra: Dict::new(),
            },
            Check::Ticket {
                secret: grant.secret,
            },
        )
    } else {
        let challenge = wampcra_challenge(session, &authid, &grant.authrole);
        let mut extra = Dict::new();
        extra.insert("challenge".into(), Value::String(challenge.clone()));
        (
            Message::Challenge {
                authmethod: "wampcra".into(),
                extra,
            },
            Check::WampCra {
                secret: grant.secret,
                challenge,
            },
        )
    };
    if let Some(tx) = tx {
        tx.send(challenge_message);
    }
    *state = JoinState::Challenged(Box::new(Challenged {
        realm,
        session,
        authid,
        authrole: grant.authrole,
        check,
    }));
    JoinStep::Continue
}

/// A random authid for an anonymous session, in Crossbar's style. The HELLO's authid is not
/// used: nothing vouches for it. A string rather than null because autobahn rejects
/// INVOCATIONs whose `caller_authid` is not a string.
fn anonymous_authid() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let groups: Vec<String> = (0..6)
        .map(|_| {
            (0..4)
                .map(|_| ALPHABET[rand::Rng::gen_range(&mut rng, 0..ALPHABET.len())] as char)
                .collect()
        })
        .collect();
    groups.join("-")
}

/// The WAMP-CRA challenge: a JSON object serialized to a string, signed as-is by the client.
fn wampcra_challenge(session: u64, authid: &str, authrole: &str) -> String {
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    json!({
        "nonce": BASE64.encode(nonce),
        "authprovider": authprovider("wampcra"),
        "authid": authid,
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "authrole": authrole,
        "authmethod": "wampcra",
        "session": session,
    })
    .to_string()
}

/// The router's roles and features, as autobahn expects them in WELCOME.
pub(crate) fn welcome_details() -> Dict {
    let roles = json!({
        "broker": {"features": {
            "publisher_exclusion": true,
            "subscriber_blackwhite_listing": true,
            "session_meta_api": true,
        }},
        "dealer": {"features": {
            "caller_identification": true,
            "call_timeout": true,
            "session_meta_api": true,
        }},
    });
    let mut details = Dict::new();
    details.insert("roles".into(), roles);
    details
}

/// Moves the outbound queue into the realm and queues WELCOME.
pub(crate) fn admit(realm: &Arc<Realm>, info: SessionInfo, tx: &mut Option<MessageTx>) -> JoinStep {
    let Some(queue) = tx.take() else {
        return JoinStep::Abort(abort(uri::PROTOCOL_VIOLATION, "session already joined"));
    };
    match realm.admit(info, queue, welcome_details()) {
        Ok(ctx) => JoinStep::Joined(ctx),
        Err(queue) => {
            *tx = Some(queue);
            JoinStep::Abort(abort(
                uri::CLOSE_SYSTEM_SHUTDOWN,
                "the router is shutting down",
            ))
        }
    }
}

/// An [`Authenticator`] over a fixed table, for tests and simple deployments.
#[derive(Clone, Default)]
pub struct StaticAuthenticator {
    principals: HashMap<(String, String), AuthGrant>,
}

impl StaticAuthenticator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a principal.
    pub fn with(
        mut self,
        realm: impl Into<String>,
        authid: impl Into<String>,
        secret: impl Into<String>,
        authrole: impl Into<String>,
    ) -> Self {
        self.principals.insert(
            (realm.into(), authid.into()),
            AuthGrant {
                secret: secret.into(),
                authrole: authrole.into(),
            },
        );
        self
    }
}

impl std::fmt::Debug for StaticAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticAuthenticator")
            .field("principals", &self.principals.len())
            .finish()
    }
}

impl Authenticator for StaticAuthenticator {
    fn lookup(&self, realm: &str, authid: &str) -> BoxFuture<'static, Option<AuthGrant>> {
        let grant = self
            .principals
            .get(&(realm.to_string(), authid.to_string()))
            .cloned();
        Box::pin(async move { grant })
    }
}
