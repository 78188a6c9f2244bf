//! The Workload kind against the S4T REST API, as pure functions. `POST /v1/workloads`
//! applies by name (a changed spec is a new generation), so create and update are one call.

use serde_json::{json, Value};

use super::{
    found, read_item, s4t_name, spec_and_status_accessors, uuid_of, ManagedKind, Observed, Reply,
    Request, Target, Verb,
};
use crate::apis::{Workload, WorkloadObservation};
use crate::conditions;
use crate::refs::Resolved;

/// The workload document S4T is given: `forProvider` with the name.
fn document(w: &Workload) -> Value {
    let mut doc = json!(w.spec.for_provider);
    doc["name"] = json!(s4t_name(w.spec.for_provider.name.as_deref(), w));
    doc
}

/// Whether S4T's spec says what the document says. S4T fills defaults (restart, env,
/// `placement.spread`, ...), so only what the document gives is compared, at every depth.
fn same(doc: &Value, remote: &Value) -> bool {
    match (doc, remote) {
        (Value::Object(d), Value::Object(r)) => d
            .iter()
            .all(|(k, v)| r.get(k).is_some_and(|rv| same(v, rv))),
        (d, r) => d == r,
    }
}

impl ManagedKind for Workload {
    const COMPONENT: &'static str = "provider-s4t/managed/workload";

    spec_and_status_accessors!();

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        read_item(format!("v1/workloads/{}", at.external), replies)
    }

    fn observe(&self, _: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let Some(w) = found(replies)? else {
            return Ok(Observed::absent());
        };
        let status = &w["status"];
        let (desired, running) = (status["desired"].as_i64(), status["running"].as_i64());
        let at_provider = WorkloadObservation {
            uuid: w["uuid"].as_str().map(str::to_string),
            generation: w["generation"].as_i64(),
            desired,
            running,
        };
        let ready = match (desired, running) {
            (Some(d), Some(r)) if d > 0 && r >= d => conditions::available(),
            (d, r) => conditions::unavailable(format!(
                "{} of {} replicas run",
                r.unwrap_or(0),
                d.unwrap_or(0)
            )),
        };
        let doc = document(self);
        let updates = if same(&doc, &w["spec"]) {
            Vec::new()
        } else {
            vec![Request::with(Verb::Post, "v1/workloads", doc)]
        };
        Ok(Observed::present(json!(at_provider), ready, updates))
    }

    fn create(&self, _: &Resolved) -> Result<Request, String> {
        Ok(Request::with(Verb::Post, "v1/workloads", document(self)))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/workloads/{}", at.external))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::{WorkloadParameters, WorkloadSpec};

    #[test]
    fn workload_table() {
        let w = Workload::new(
            "sensor",
            WorkloadSpec {
                for_provider: WorkloadParameters {
                    name: None,
                    runtime: "process".into(),
                    artifact: json!({"command": "sleep", "args": ["60"]})
                        .as_object()
                        .cloned()
                        .unwrap(),
                    env: Default::default(),
                    restart: None,
                    limits: None,
                    placement: json!({"selector": {"room": "3"}, "replicas": 1})
                        .as_object()
                        .cloned()
                        .unwrap(),
                    expose: None,
                },
                management_policies: None,
                provider_config_ref: Default::default(),
                write_connection_secret_to_ref: None,
            },
        );
        let refs = Resolved::new();
        let at = Target {
            external: "W",
            refs: &refs,
        };
        let spec = json!({"name": "sensor", "runtime": "process", "restart": "on-failure",
                          "artifact": {"command": "sleep", "args": ["60"]},
                          "placement": {"fleet": null, "selector": {"room": "3"}, "replicas": 1}});
        // (case, remote spec, status, up to date, ready)
        for (case, remote_spec, status, up, ready) in [
            (
                "running",
                spec.clone(),
                json!({"desired": 1, "running": 1}),
                true,
                "True",
            ),
            (
                "placed, not running",
                spec.clone(),
                json!({"desired": 1, "running": 0}),
                true,
                "False",
            ),
            (
                "replicas changed out of band",
                {
                    let mut s = spec.clone();
                    s["placement"]["replicas"] = json!(3);
                    s
                },
                json!({"desired": 3, "running": 3}),
                false,
                "True",
            ),
            (
                "changed out of band",
                json!({"name": "sensor", "runtime": "wasm", "artifact": {}}),
                json!({"desired": 1, "running": 1}),
                false,
                "True",
            ),
        ] {
            let remote =
                json!({"uuid": "W", "generation": 2, "spec": remote_spec, "status": status});
            let o = w.observe(at, &[Reply::Ok(remote)]).unwrap();
            assert_eq!(o.observation.up_to_date, up, "{case}");
            assert_eq!(o.ready.unwrap().status, ready, "{case}");
            if !up {
                assert_eq!(o.updates[0].body.as_ref().unwrap()["runtime"], "process");
            }
        }
        assert_eq!(w.create(&refs).unwrap().body.unwrap()["name"], "sensor");
    }
}
