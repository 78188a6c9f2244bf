//! Wire formats shared by the s4t cloud and the s4t agent.
//!
//! - [`wstun`]: the reverse-tunnel protocol of `wstun` (the Node.js tunnel that IoTronic and
//!   Lightning-rod use for board services): how upgrade requests are told apart, the `NC:<id>`
//!   frames, the URLs, and the s4t extension negotiated by subprotocol.
//! - [`pump`](mod@pump): moving bytes between a TCP socket and a tunnel WebSocket in both directions, with
//!   back-pressure and (with s4t peers) TCP half-close.
//! - [`overlay`]: the overlay network's secure channel (Noise IK through `snow`, counters and a
//!   replay window) between boards and the cloud's network hub.
//!
//! # Fuzzing
//!
//! `crates/tunnel/fuzz` is a cargo-fuzz project (its own workspace) with the targets
//! `overlay_packet` and `wstun_request`: `cargo +nightly fuzz run overlay_packet` from
//! `crates/tunnel`. A seeded mutation test in `overlay` covers the packet property in ordinary
//! test runs.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod overlay;
pub mod pump;
pub mod wstun;

pub use pump::{pump, Transferred};
