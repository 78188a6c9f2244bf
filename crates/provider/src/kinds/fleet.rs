//! The Fleet kind against the S4T REST API, as pure functions.

use kube::ResourceExt;
use serde_json::{json, Map, Value};

use super::{
    found, read_item, spec_and_status_accessors, uuid_of, ManagedKind, Observed, Reply, Request,
    Target, Verb,
};
use crate::apis::{Fleet, FleetParameters};
use crate::conditions;
use crate::managed::Observation;
use crate::refs::Resolved;

impl ManagedKind for Fleet {
    const COMPONENT: &'static str = "provider-s4t/managed/fleet";

    spec_and_status_accessors!();

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        read_item(format!("v1/fleets/{}", at.external), replies)
    }

    fn observe(&self, at: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let remote = found(replies)?;
        let (observation, patch) = observe(&self.spec.for_provider, &self.name_any(), remote);
        if !observation.exists {
            return Ok(Observed::absent());
        }
        let updates = patch
            .map(|p| {
                vec![Request::with(
                    Verb::Patch,
                    format!("v1/fleets/{}", at.external),
                    p,
                )]
            })
            .unwrap_or_default();
        Ok(Observed::present(
            json!({"uuid": remote.and_then(|r| r["uuid"].as_str())}),
            conditions::available(),
            updates,
        ))
    }

    fn create(&self, _: &Resolved) -> Result<Request, String> {
        Ok(Request::with(
            Verb::Post,
            "v1/fleets",
            create_body(&self.spec.for_provider, &self.name_any()),
        ))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[super::Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/fleets/{}", at.external))]
    }
}

fn name<'a>(p: &'a FleetParameters, resource_name: &'a str) -> &'a str {
    p.name.as_deref().unwrap_or(resource_name)
}

/// `POST /v1/fleets`.
pub fn create_body(p: &FleetParameters, resource_name: &str) -> Value {
    let mut body = json!({"name": name(p, resource_name)});
    if let Some(d) = &p.description {
        body["description"] = json!(d);
    }
    if !p.extra.is_empty() {
        body["extra"] = json!(p.extra);
    }
    body
}

/// Whether the fleet S4T answered with matches the spec, and the patch that makes it.
pub fn observe(
    p: &FleetParameters,
    resource_name: &str,
    remote: Option<&Value>,
) -> (Observation, Option<Value>) {
    let Some(f) = remote else {
        return (
            Observation {
                exists: false,
                up_to_date: false,
                late_initialized: false,
            },
            None,
        );
    };
    let mut patch = Map::new();
    let wanted = name(p, resource_name);
    if f["name"].as_str() != Some(wanted) {
        patch.insert("name".into(), json!(wanted));
    }
    if let Some(d) = &p.description {
        if f["description"].as_str() != Some(d.as_str()) {
            patch.insert("description".into(), json!(d));
        }
    }
    let wanted_extra: Map<String, Value> =
        p.extra.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    if !p.extra.is_empty() && f["extra"].as_object() != Some(&wanted_extra) {
        patch.insert("extra".into(), Value::Object(wanted_extra));
    }
    (
        Observation {
            exists: true,
            up_to_date: patch.is_empty(),
            late_initialized: false,
        },
        (!patch.is_empty()).then_some(Value::Object(patch)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_table() {
        let spec = FleetParameters {
            name: None,
            description: Some("lab boards".into()),
            extra: [("site".to_string(), "a".to_string())].into(),
        };
        let remote = json!({"uuid": "f-1", "name": "lab", "description": "lab boards", "extra": {"site": "a"}});
        for (name, r, keys) in [
            ("in sync", remote.clone(), vec![]),
            (
                "renamed",
                json!({"name": "x", "description": "lab boards", "extra": {"site": "a"}}),
                vec!["name"],
            ),
            (
                "description",
                json!({"name": "lab", "description": "", "extra": {"site": "a"}}),
                vec!["description"],
            ),
            (
                "extra",
                json!({"name": "lab", "description": "lab boards", "extra": {}}),
                vec!["extra"],
            ),
        ] {
            let (o, patch) = observe(&spec, "lab", Some(&r));
            let got: Vec<String> = patch
                .as_ref()
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            assert_eq!(
                (got, o.up_to_date),
                (
                    keys.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    keys.is_empty()
                ),
                "{name}"
            );
        }
        assert!(!observe(&spec, "lab", None).0.exists);
        assert_eq!(
            create_body(&spec, "lab"),
            json!({"name": "lab", "description": "lab boards", "extra": {"site": "a"}})
        );
    }
}
