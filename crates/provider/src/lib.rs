//! The s4t Crossplane provider (docs/provider.md).
//!
//! Pure, table-tested decisions, with no I/O:
//! - [`meta`]: annotation keys, the finalizer, the interrupted-create rule;
//! - [`policy`]: management policies (and the legacy deletion policy), the supported sets;
//! - [`conditions`]: `Ready`/`Synced` with Crossplane's merge rule;
//! - [`managed`]: the managed reconciler's steps as functions from what was read and what the
//!   external calls answered to the writes, events and requeue to apply;
//! - [`refs`]: references between resources (`fooRef`, `fooSelector`) and their policies;
//! - [`kinds`]: per kind, the REST reads that observe it, what they mean, and the calls that
//!   create, correct and delete it;
//! - [`ratelimit`]: the global reconcile budget;
//! - [`leader`]: the Lease rule of leader election between replicas (and its executor).
//!
//! The API types and CRDs are in [`apis`]; [`controller`] runs the decisions with kube and
//! the S4T REST client; [`feed`] follows the sites' board status; [`metrics`] counts what it
//! did.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod apis;
pub mod conditions;
pub use {k8s_openapi, kube};
pub mod controller;
pub mod feed;
pub mod kinds;
pub mod leader;
pub mod managed;
pub mod meta;
pub mod metrics;
pub mod own_writes;
pub mod policy;
pub mod ratelimit;
pub mod refs;
