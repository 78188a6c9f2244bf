//! What the executor needs of each managed kind, as pure functions: the references its spec
//! makes, the REST reads that observe it, what those reads mean, and the REST calls that
//! create, correct and delete it. The reconciler's decisions stay in [`crate::managed`]; the
//! I/O stays in [`crate::controller`].

use std::collections::BTreeMap;

use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::apis::{ManagedStatus, ProviderConfigReference};
use crate::conditions::Cond;
use crate::managed::Observation;
use crate::refs::{Resolved, Slot};

pub mod board;
pub mod fleet;
pub mod legacy;
pub mod network;
pub mod plugin;
pub mod service;
pub mod webservice;
pub mod workload;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// One call to the site's REST API (`path` without the leading slash, such as `v1/boards`).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub verb: Verb,
    pub path: String,
    pub body: Option<Value>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            verb: Verb::Get,
            path: path.into(),
            body: None,
        }
    }

    pub fn delete(path: impl Into<String>) -> Request {
        Request {
            verb: Verb::Delete,
            path: path.into(),
            body: None,
        }
    }

    pub fn with(verb: Verb, path: impl Into<String>, body: Value) -> Request {
        Request {
            verb,
            path: path.into(),
            body: Some(body),
        }
    }
}

/// What the API answered: a success with its body, or an HTTP error with the API's message.
/// (A site that cannot be reached fails the observation before any kind sees it.)
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok(Value),
    Failed { status: u16, message: String },
}

impl Reply {
    pub fn not_found(&self) -> bool {
        matches!(self, Reply::Failed { status: 404, .. })
    }
}

/// An observation as the executor uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub observation: Observation,
    /// `status.atProvider`.
    pub at_provider: Value,
    /// `Ready` as the external resource's state says (None: not observed).
    pub ready: Option<Cond>,
    /// `spec.forProvider` with late-initialised fields, when any were filled.
    pub late_initialized: Option<Value>,
    /// The calls that bring the external resource back to the spec, in order (empty when up
    /// to date).
    pub updates: Vec<Request>,
    /// The connection details to publish (`spec.writeConnectionSecretToRef`).
    pub connection: BTreeMap<String, String>,
}

impl Observed {
    /// There is no such external resource.
    pub fn absent() -> Observed {
        Observed {
            observation: Observation {
                exists: false,
                up_to_date: false,
                late_initialized: false,
            },
            at_provider: json!({}),
            ready: None,
            late_initialized: None,
            updates: Vec::new(),
            connection: BTreeMap::new(),
        }
    }

    /// It exists; up to date when `updates` is empty.
    pub fn present(at_provider: Value, ready: Cond, updates: Vec<Request>) -> Observed {
        Observed {
            observation: Observation {
                exists: true,
                up_to_date: updates.is_empty(),
                late_initialized: false,
            },
            at_provider,
            ready: Some(ready),
            late_initialized: None,
            updates,
            connection: BTreeMap::new(),
        }
    }
}

/// Where an observation starts: the external name and the resolved references.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub external: &'a str,
    pub refs: &'a Resolved,
}

pub trait ManagedKind:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Events' reporting component.
    const COMPONENT: &'static str;
    /// Its external resource is a board, whose status changes the [`crate::feed`] reports.
    const FOLLOWS_BOARD_STATUS: bool = false;
    fn management_policies(&self) -> Option<&[String]>;
    /// The legacy `deletionPolicy` (cluster-scoped kinds of the migration API).
    fn deletion_policy(&self) -> Option<&str> {
        None
    }
    fn provider_config(&self) -> ProviderConfigReference;
    /// The resources of this kind in `namespace` (every one, for cluster-scoped kinds).
    fn api(client: kube::Client, namespace: &str) -> kube::Api<Self>;
    fn managed_status(&self) -> ManagedStatus;
    /// `spec.writeConnectionSecretToRef`: the Secret's namespace and name.
    fn connection_secret(&self) -> Option<(String, String)> {
        None
    }
    /// The external name of a resource that has none yet but names its external resource
    /// (the migration API's `uuid`, or a name the spec determines).
    fn initial_external_name(&self) -> Option<String> {
        None
    }
    /// The references of the spec (`boardRef`, `pluginSelector`, ...), resolved before
    /// Observe into [`Resolved`].
    fn references(&self) -> Vec<Slot> {
        Vec::new()
    }
    /// The next read of an observation, given the replies to the previous ones (`None`: the
    /// observation is complete).
    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request>;
    /// What the replies mean, or why they cannot be understood (observe failed).
    fn observe(&self, at: Target<'_>, replies: &[Reply]) -> Result<Observed, String>;
    fn create(&self, refs: &Resolved) -> Result<Request, String>;
    /// The external name of what `create` made, from the API's answer.
    fn created(&self, refs: &Resolved, reply: &Value) -> Result<String, String>;
    /// The calls that delete the external resource (a 404 counts as deleted), given the
    /// replies of this reconcile's observation.
    fn delete(&self, at: Target<'_>, replies: &[Reply]) -> Vec<Request>;
}

/// The accessors every namespaced kind shares: its spec has `managementPolicies`,
/// `providerConfigRef` and `writeConnectionSecretToRef`, its status flattens
/// [`ManagedStatus`].
macro_rules! spec_and_status_accessors {
    () => {
        fn management_policies(&self) -> Option<&[String]> {
            self.spec.management_policies.as_deref()
        }

        fn api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
            kube::Api::namespaced(client, namespace)
        }

        fn provider_config(&self) -> crate::apis::ProviderConfigReference {
            self.spec.provider_config_ref.clone()
        }

        fn managed_status(&self) -> crate::apis::ManagedStatus {
            self.status
                .as_ref()
                .map(|s| s.managed.clone())
                .unwrap_or_default()
        }

        fn connection_secret(&self) -> Option<(String, String)> {
            use kube::ResourceExt;
            self.spec
                .write_connection_secret_to_ref
                .as_ref()
                .map(|r| (self.namespace().unwrap_or_default(), r.name.clone()))
        }
    };
}
pub(crate) use spec_and_status_accessors;

/// The observation of a resource that is one REST item: one GET of `item`.
pub fn read_item(item: String, replies: &[Reply]) -> Option<Request> {
    replies.is_empty().then(|| Request::get(item))
}

/// The item the single read found (`None`: there is none), or the API's error.
pub fn found(replies: &[Reply]) -> Result<Option<&Value>, String> {
    match replies.first() {
        None => Ok(None),
        Some(Reply::Ok(v)) => Ok(Some(v)),
        Some(r) if r.not_found() => Ok(None),
        Some(Reply::Failed { message, .. }) => Err(message.clone()),
    }
}

/// The `uuid` of a created item.
pub fn uuid_of(reply: &Value) -> Result<String, String> {
    reply["uuid"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("the created resource has no uuid: {reply}"))
}

/// The name a resource has in S4T: the spec's, else the Kubernetes object's.
pub fn s4t_name<K: kube::Resource>(spec_name: Option<&str>, resource: &K) -> String {
    spec_name
        .map(str::to_string)
        .unwrap_or_else(|| resource.name_any())
}
