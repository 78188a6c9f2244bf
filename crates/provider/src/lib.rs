//! The s4t Crossplane provider.
//!
//! Built so far: the Crossplane managed-resource contract as pure, table-tested decisions,
//! with no Kubernetes dependency:
//! - [`meta`]: annotation keys, the finalizer, the interrupted-create rule;
//! - [`policy`]: management policies (and the legacy deletion policy), the supported sets;
//! - [`conditions`]: `Ready`/`Synced` with Crossplane's merge rule;
//! - [`managed`]: the managed reconciler's steps as functions from what was read and what the
//!   external calls answered to the writes, events and requeue to apply.
//!
//! Not built yet: the CRD types, the kube executor, the S4T external clients per kind, and the
//! `s4t provider` command (docs/provider.md).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod apis;
pub mod conditions;
pub use {k8s_openapi, kube};
pub mod controller;
pub mod kinds;
pub mod managed;
pub mod meta;
pub mod policy;
pub mod ratelimit;
pub mod refs;
