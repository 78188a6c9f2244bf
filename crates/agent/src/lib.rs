//! `s4t agent`: the board agent. It replaces a Lightning-rod in place (same `settings.json`, same
//! WAMP procedures and replies) and works against an s4t cloud and a stock IoTronic alike.
//!
//! - [`settings`]: the Lightning-rod settings document: first boot, registration, identity.
//! - [`link`]: register by code, connect, call `connection`, register the board procedures under
//!   the session, detect a dead link by WebSocket pings, reconnect with jittered backoff.
//! - [`device`]: the device actions, with reboot, package operations and upgrades refused
//!   unless the board's operator allows them.
//! - [`plugins`]: Lightning-rod plugins (Python), each in its own process, with Lightning-rod's
//!   files and replies.
//! - [`services`]: board services exposed on public cloud ports through native wstun tunnels,
//!   with Lightning-rod's `services.json` and replies.
//!
//! Against an s4t cloud the agent authenticates with the secret issued at registration (WAMP
//! ticket, authid = board uuid); against a stock cloud it joins anonymously, as Lightning-rod.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod device;
pub mod link;
pub mod overlay;
pub mod overlay_link;
pub mod plugins;
pub mod services;
pub mod settings;
pub mod workloads;

pub use device::{Device, DevicePolicy};
pub use link::{spawn, AgentConfig, AgentHandle, AgentState};
pub use plugins::Plugins;
pub use settings::{FileSettings, MemorySettings, SettingsStore};
