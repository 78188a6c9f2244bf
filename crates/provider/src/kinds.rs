//! What the executor needs of each managed kind: where it lives in the REST API, how it is
//! created, and what an observation of it means. The decisions stay in [`crate::managed`].

use kube::core::NamespaceResourceScope;
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::apis::{Board, Fleet, ManagedStatus, ProviderConfigReference};
use crate::conditions::{self, Cond};
use crate::managed::Observation;

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
    /// The REST patch that brings the external resource back to the spec.
    pub patch: Option<Value>,
}

pub trait ManagedKind:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The S4T collection (`v1/boards`); items are `COLLECTION/{uuid}`.
    const COLLECTION: &'static str;
    /// Events' reporting component.
    const COMPONENT: &'static str;
    fn management_policies(&self) -> Option<&[String]>;
    fn provider_config(&self) -> &ProviderConfigReference;
    fn managed_status(&self) -> ManagedStatus;
    fn create_body(&self) -> Value;
    fn observe(&self, remote: Option<&Value>) -> Observed;
}

/// The accessors every kind shares: its spec has `managementPolicies` and
/// `providerConfigRef`, its status flattens [`ManagedStatus`].
macro_rules! spec_and_status_accessors {
    () => {
        fn management_policies(&self) -> Option<&[String]> {
            self.spec.management_policies.as_deref()
        }

        fn provider_config(&self) -> &ProviderConfigReference {
            &self.spec.provider_config_ref
        }

        fn managed_status(&self) -> ManagedStatus {
            self.status
                .as_ref()
                .map(|s| s.managed.clone())
                .unwrap_or_default()
        }
    };
}

impl ManagedKind for Board {
    const COLLECTION: &'static str = "v1/boards";
    const COMPONENT: &'static str = "provider-s4t/managed/board";

    spec_and_status_accessors!();

    fn create_body(&self) -> Value {
        crate::boards::create_body(&self.spec.for_provider, &self.name_any())
    }

    fn observe(&self, remote: Option<&Value>) -> Observed {
        let o = crate::boards::observe(&self.spec.for_provider, &self.name_any(), remote);
        // Ready tells the truth: a board is usable when its agent is connected.
        let ready = o
            .observation
            .exists
            .then(|| match o.at_provider.status.as_deref() {
                Some("online") => conditions::available(),
                other => conditions::unavailable(format!(
                    "the board is {} in S4T: it is usable once its agent connects",
                    other.unwrap_or("in an unknown state")
                )),
            });
        Observed {
            observation: o.observation,
            at_provider: json!(o.at_provider),
            ready,
            late_initialized: o.late_initialized.map(|p| json!(p)),
            patch: o.patch,
        }
    }
}

impl ManagedKind for Fleet {
    const COLLECTION: &'static str = "v1/fleets";
    const COMPONENT: &'static str = "provider-s4t/managed/fleet";

    spec_and_status_accessors!();

    fn create_body(&self) -> Value {
        crate::fleets::create_body(&self.spec.for_provider, &self.name_any())
    }

    fn observe(&self, remote: Option<&Value>) -> Observed {
        let (observation, patch) =
            crate::fleets::observe(&self.spec.for_provider, &self.name_any(), remote);
        Observed {
            ready: observation.exists.then(conditions::available),
            at_provider: json!({"uuid": remote.and_then(|r| r["uuid"].as_str())}),
            late_initialized: None,
            observation,
            patch,
        }
    }
}
