//! The Stack4Things domain, free of I/O.
//!
//! - [`ident`]: uuid-or-name identifiers, the way IoTronic resolves `{board}` and friends.
//! - [`lifecycle`]: the board lifecycle state machine (`registered → offline ⇄ online`).
//! - [`resources`]: boards, plugins, services, fleets, webservices, ports, requests, results, sessions.
//! - [`input`]: strict, WSME-like reading of request bodies, with errors that name the field.
//! - [`listing`]: collection queries (`limit`, `marker`, `sort_key`, `sort_dir`, `fields`).
//! - [`plugin_runtime`]: which runtime runs a plugin (Python or WASM) and its limits.
//! - [`policy`]: callers, IoTronic roles and the authorisation rules.
//! - [`public_ports`]: the public port pool of service tunnels.
//! - [`time`]: the timestamp format IoTronic puts on the wire.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod board_link;
pub mod dns;
pub mod ident;
pub mod input;
pub mod lifecycle;
pub mod listing;
pub mod net;
pub mod pickle;
pub mod plugin_runtime;
pub mod policy;
pub mod public_ports;
pub mod resources;
pub mod rollout;
pub mod switch;
pub mod time;
pub mod workloads;

pub use ident::{is_uuid_like, Ident};
pub use input::InputError;
pub use lifecycle::{BoardStatus, LifecycleError, LifecycleEvent};
pub use policy::{Action, Caller, Denied};
