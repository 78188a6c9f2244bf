//! The migration API's kinds (`crate::apis::legacy`), reconciled by the modern kinds' code:
//! each legacy resource is read as the modern resource it means, and every REST decision is
//! that kind's. Late initialisation is left out (the legacy specs have other field names).

use kube::ResourceExt;
use serde_json::{json, Map, Value};

use super::{ManagedKind, Observed, Reply, Request, Target};
use crate::apis::legacy::{
    BoardPluginInjection, BoardServiceInjection, Device, Fleet as LegacyFleet,
    Plugin as LegacyPlugin, Port as LegacyPort, Service as LegacyService,
    Webservice as LegacyWebservice,
};
use crate::apis::{self, ManagedStatus, ProviderConfigReference};
use crate::refs::{Resolved, Slot};

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn modern_meta(name: String) -> kube::api::ObjectMeta {
    kube::api::ObjectMeta {
        name: Some(name),
        ..Default::default()
    }
}

/// The modern resource a legacy one means: its spec with the same policies. The site and
/// the connection Secret stay the legacy resource's own.
macro_rules! modern_spec {
    ($spec:ident, $params:expr) => {
        apis::$spec {
            for_provider: $params,
            management_policies: None,
            provider_config_ref: Default::default(),
            write_connection_secret_to_ref: None,
        }
    };
}

impl Device {
    fn modern(&self) -> apis::Board {
        let p = &self.spec.for_provider;
        let location = p.location.first();
        let coordinate =
            |f: fn(&crate::apis::legacy::LegacyLocation) -> &Value| location.map(|l| text(f(l)));
        let params = apis::BoardParameters {
            name: Some(p.name.clone()),
            code: p.code.clone(),
            board_type: p.board_type.clone(),
            location: apis::Location {
                latitude: coordinate(|l| &l.latitude).unwrap_or_default(),
                longitude: coordinate(|l| &l.longitude).unwrap_or_default(),
                altitude: coordinate(|l| &l.altitude).unwrap_or_else(|| "0".into()),
            },
            mobile: None,
            fleet: None,
            extra: Default::default(),
        };
        apis::Board {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(BoardSpec, params),
            status: None,
        }
    }
}

impl LegacyPlugin {
    fn modern(&self) -> apis::Plugin {
        let p = &self.spec.for_provider;
        let params = apis::PluginParameters {
            name: Some(p.name.clone()),
            code: p.code.clone(),
            public: None,
            callable: None,
            parameters: Some(p.parameters.clone()),
            extra: p
                .version
                .as_ref()
                .map(|v| Map::from_iter([("version".to_string(), json!(v))])),
        };
        apis::Plugin {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(PluginSpec, params),
            status: None,
        }
    }
}

impl BoardPluginInjection {
    fn modern(&self) -> apis::PluginInjection {
        let p = &self.spec.for_provider;
        let params = apis::PluginInjectionParameters {
            plugin: Some(p.plugin_uuid.clone()),
            plugin_ref: None,
            plugin_selector: None,
            board: Some(p.board_uuid.clone()),
            board_ref: None,
            board_selector: None,
            fleet: None,
            fleet_ref: None,
            fleet_selector: None,
            onboot: false,
            // Upstream injected and never started.
            start: Some(false),
            parameters: None,
        };
        apis::PluginInjection {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(PluginInjectionSpec, params),
            status: None,
        }
    }
}

impl LegacyService {
    fn modern(&self) -> apis::Service {
        let p = &self.spec.for_provider;
        let params = apis::ServiceParameters {
            name: Some(p.name.clone()),
            port: p.port,
            protocol: p.protocol.to_ascii_uppercase(),
            extra: None,
        };
        apis::Service {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(ServiceSpec, params),
            status: None,
        }
    }
}

impl BoardServiceInjection {
    fn modern(&self) -> apis::ServiceExposure {
        let p = &self.spec.for_provider;
        let params = apis::ServiceExposureParameters {
            service: Some(p.service_uuid.clone()),
            service_ref: None,
            service_selector: None,
            board: Some(p.board_uuid.clone()),
            board_ref: None,
            board_selector: None,
        };
        apis::ServiceExposure {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(ServiceExposureSpec, params),
            status: None,
        }
    }
}

impl LegacyFleet {
    fn modern(&self) -> apis::Fleet {
        let p = &self.spec.for_provider;
        let params = apis::FleetParameters {
            name: Some(p.name.clone()),
            description: p.description.clone(),
            extra: p
                .extra
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
        };
        apis::Fleet {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(FleetSpec, params),
            status: None,
        }
    }
}

impl LegacyPort {
    fn modern(&self) -> apis::Port {
        let p = &self.spec.for_provider;
        let params = apis::PortParameters {
            board: Some(p.board_uuid.clone()),
            board_ref: None,
            board_selector: None,
            network: p.network.clone(),
            network_ref: None,
            network_selector: None,
        };
        apis::Port {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(PortSpec, params),
            status: None,
        }
    }
}

impl LegacyWebservice {
    fn modern(&self) -> apis::Webservice {
        let p = &self.spec.for_provider;
        let params = apis::WebserviceParameters {
            board: p.board_uuid.clone(),
            board_ref: None,
            board_selector: None,
            name: Some(p.name.clone()),
            port: p.port,
            secure: p.secure,
            extra: p.extra.clone(),
        };
        apis::Webservice {
            metadata: modern_meta(self.name_any()),
            spec: modern_spec!(WebserviceSpec, params),
            status: None,
        }
    }
}

/// A legacy kind reconciled as its modern kind; `$initial` gives the external name of a
/// resource upstream made (its uuid in the spec) or a deterministic one.
macro_rules! legacy_kind {
    ($legacy:ty, $component:literal, |$r:ident| $initial:expr) => {
        legacy_kind!($legacy, $component, false, |$r| $initial);
    };
    ($legacy:ty, $component:literal, $follows_board_status:literal, |$r:ident| $initial:expr) => {
        impl ManagedKind for $legacy {
            const COMPONENT: &'static str = $component;
            const FOLLOWS_BOARD_STATUS: bool = $follows_board_status;

            fn api(client: kube::Client, _: &str) -> kube::Api<Self> {
                kube::Api::all(client)
            }

            fn management_policies(&self) -> Option<&[String]> {
                self.spec.management_policies.as_deref()
            }

            fn deletion_policy(&self) -> Option<&str> {
                self.spec.deletion_policy.as_deref()
            }

            fn provider_config(&self) -> ProviderConfigReference {
                ProviderConfigReference {
                    kind: "ClusterProviderConfig".into(),
                    name: self.spec.provider_config_ref.name.clone(),
                }
            }

            fn managed_status(&self) -> ManagedStatus {
                self.status
                    .as_ref()
                    .map(|s| s.managed.clone())
                    .unwrap_or_default()
            }

            fn connection_secret(&self) -> Option<(String, String)> {
                self.spec
                    .write_connection_secret_to_ref
                    .as_ref()
                    .map(|s| (s.namespace.clone(), s.name.clone()))
            }

            fn initial_external_name(&self) -> Option<String> {
                let $r = self;
                $initial
            }

            fn references(&self) -> Vec<Slot> {
                self.modern().references()
            }

            fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
                self.modern().next_read(at, replies)
            }

            fn observe(&self, at: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
                let mut o = self.modern().observe(at, replies)?;
                o.observation.late_initialized = false;
                o.late_initialized = None;
                Ok(o)
            }

            fn create(&self, refs: &Resolved) -> Result<Request, String> {
                self.modern().create(refs)
            }

            fn created(&self, refs: &Resolved, reply: &Value) -> Result<String, String> {
                self.modern().created(refs, reply)
            }

            fn delete(&self, at: Target<'_>, replies: &[Reply]) -> Vec<Request> {
                self.modern().delete(at, replies)
            }
        }
    };
}

fn given(uuid: &Option<String>) -> Option<String> {
    uuid.clone().filter(|u| !u.is_empty())
}

legacy_kind!(Device, "provider-s4t/managed/device", true, |r| given(
    &r.spec.for_provider.uuid
));
legacy_kind!(LegacyPlugin, "provider-s4t/managed/legacy-plugin", |r| {
    given(&r.spec.for_provider.uuid)
});
legacy_kind!(
    BoardPluginInjection,
    "provider-s4t/managed/boardplugininjection",
    |r| {
        let p = &r.spec.for_provider;
        Some(format!("{}/{}", p.board_uuid, p.plugin_uuid))
    }
);
legacy_kind!(LegacyService, "provider-s4t/managed/legacy-service", |r| {
    given(&r.spec.for_provider.uuid)
});
legacy_kind!(
    BoardServiceInjection,
    "provider-s4t/managed/boardserviceinjection",
    |r| {
        let p = &r.spec.for_provider;
        Some(format!("{}/{}", p.board_uuid, p.service_uuid))
    }
);
legacy_kind!(LegacyFleet, "provider-s4t/managed/legacy-fleet", |r| given(
    &r.spec.for_provider.uuid
));
legacy_kind!(LegacyPort, "provider-s4t/managed/legacy-port", |r| given(
    &r.spec.for_provider.uuid
));
legacy_kind!(
    LegacyWebservice,
    "provider-s4t/managed/legacy-webservice",
    |r| given(&r.spec.for_provider.uuid)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_manifests_mean_the_modern_resources() {
        let device: Device = serde_json::from_value(json!({
            "apiVersion": "iot.s4t.crossplane.io/v1alpha1", "kind": "Device",
            "metadata": {"name": "dev-1"},
            "spec": {"forProvider": {"code": "C-1", "name": "board-1", "type": "virtual",
                     "location": [{"latitude": 38.1, "longitude": "15.5", "altitude": 0}]},
                     "deletionPolicy": "Orphan", "providerConfigRef": {"name": "site-b"}}
        }))
        .unwrap();
        let refs = Resolved::new();
        let body = device.create(&refs).unwrap().body.unwrap();
        assert_eq!(body["name"], "board-1");
        assert_eq!(body["location"][0]["latitude"], "38.1");
        assert_eq!(body["location"][0]["altitude"], "0");
        assert_eq!(device.deletion_policy(), Some("Orphan"));
        assert_eq!(device.provider_config().name, "site-b");
        assert_eq!(device.initial_external_name(), None);

        let injection: BoardPluginInjection = serde_json::from_value(json!({
            "apiVersion": "iot.s4t.crossplane.io/v1alpha1", "kind": "BoardPluginInjection",
            "metadata": {"name": "inj"},
            "spec": {"forProvider": {"boardUuid": "B", "pluginUuid": "P"}}
        }))
        .unwrap();
        assert_eq!(injection.initial_external_name().as_deref(), Some("B/P"));
        // Inject only, as upstream: the plugin's status is never asked.
        let at = Target {
            external: "B/P",
            refs: &refs,
        };
        let injected = Reply::Ok(json!({"injections": [{"plugin": "P", "onboot": false}]}));
        assert_eq!(
            injection.next_read(at, std::slice::from_ref(&injected)),
            None
        );
        let o = injection.observe(at, &[injected]).unwrap();
        assert!(o.observation.exists && o.observation.up_to_date);
        assert_eq!(o.ready.unwrap().status, "True");

        let plugin: LegacyPlugin = serde_json::from_value(json!({
            "apiVersion": "iot.s4t.crossplane.io/v1alpha1", "kind": "Plugin",
            "metadata": {"name": "p"},
            "spec": {"forProvider": {"uuid": "U-1", "name": "hello", "code": "x", "parameters": {"a": 1}}}
        }))
        .unwrap();
        assert_eq!(plugin.initial_external_name().as_deref(), Some("U-1"));
        assert_eq!(
            plugin.create(&refs).unwrap().body.unwrap()["parameters"],
            json!({"a": 1})
        );
    }
}
