//! The Board kind against the S4T REST API, as pure functions: the body that creates a board,
//! what an observed board says (exists, up to date, late-initialised fields), and the patch
//! that brings it back to the spec.

use kube::ResourceExt;
use serde_json::{json, Map, Value};

use super::{
    found, read_item, spec_and_status_accessors, uuid_of, ManagedKind, Request, Target, Verb,
};
use crate::apis::{Board, BoardObservation, BoardParameters};
use crate::conditions;
use crate::managed::Observation;
use crate::refs::Resolved;

impl ManagedKind for Board {
    const COMPONENT: &'static str = "provider-s4t/managed/board";
    const FOLLOWS_BOARD_STATUS: bool = true;

    spec_and_status_accessors!();

    fn next_read(&self, at: Target<'_>, replies: &[super::Reply]) -> Option<Request> {
        read_item(format!("v1/boards/{}", at.external), replies)
    }

    fn observe(&self, at: Target<'_>, replies: &[super::Reply]) -> Result<super::Observed, String> {
        let o = observe(&self.spec.for_provider, &self.name_any(), found(replies)?);
        if !o.observation.exists {
            return Ok(super::Observed::absent());
        }
        // Ready tells the truth: a board is usable when its agent is connected.
        let ready = match o.at_provider.status.as_deref() {
            Some("online") => conditions::available(),
            other => conditions::unavailable(format!(
                "the board is {} in S4T: it is usable once its agent connects",
                other.unwrap_or("in an unknown state")
            )),
        };
        Ok(super::Observed {
            observation: o.observation,
            at_provider: json!(o.at_provider),
            ready: Some(ready),
            late_initialized: o.late_initialized.map(|p| json!(p)),
            updates: o
                .patch
                .map(|p| {
                    vec![Request::with(
                        Verb::Patch,
                        format!("v1/boards/{}", at.external),
                        p,
                    )]
                })
                .unwrap_or_default(),
            connection: Default::default(),
        })
    }

    fn create(&self, _: &Resolved) -> Result<Request, String> {
        Ok(Request::with(
            Verb::Post,
            "v1/boards",
            create_body(&self.spec.for_provider, &self.name_any()),
        ))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[super::Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/boards/{}", at.external))]
    }
}

/// The name the board has in S4T: `forProvider.name`, else the resource's name.
fn name<'a>(p: &'a BoardParameters, resource_name: &'a str) -> &'a str {
    p.name.as_deref().unwrap_or(resource_name)
}

/// `POST /v1/boards`.
pub fn create_body(p: &BoardParameters, resource_name: &str) -> Value {
    let mut body = json!({
        "name": name(p, resource_name),
        "code": p.code,
        "type": p.board_type.as_deref().unwrap_or("virtual"),
        "location": [{"latitude": p.location.latitude, "longitude": p.location.longitude, "altitude": p.location.altitude}],
    });
    if let Some(m) = p.mobile {
        body["mobile"] = json!(m);
    }
    if let Some(f) = &p.fleet {
        body["fleet"] = json!(f);
    }
    if !p.extra.is_empty() {
        body["extra"] = json!(p.extra);
    }
    body
}

/// What Observe makes of a board S4T answered with (`None`: there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub observation: Observation,
    pub at_provider: BoardObservation,
    /// The spec with the fields S4T filled in where the spec left them out (late
    /// initialisation); `None` when nothing was filled.
    pub late_initialized: Option<BoardParameters>,
    /// `PATCH /v1/boards/{uuid}` that brings S4T back to the spec; `None` when up to date.
    pub patch: Option<Value>,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A fleet given by name cannot be compared with the uuid S4T answers; only uuids are.
fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

pub fn observe(p: &BoardParameters, resource_name: &str, remote: Option<&Value>) -> Observed {
    let Some(b) = remote else {
        return Observed {
            observation: Observation {
                exists: false,
                up_to_date: false,
                late_initialized: false,
            },
            at_provider: BoardObservation::default(),
            late_initialized: None,
            patch: None,
        };
    };
    let at_provider = BoardObservation {
        uuid: text(b, "uuid").map(str::to_string),
        status: text(b, "status").map(str::to_string),
        agent: text(b, "agent").map(str::to_string),
        lr_version: text(b, "lr_version").map(str::to_string),
    };
    let mut patch = Map::new();
    let wanted_name = name(p, resource_name);
    if text(b, "name") != Some(wanted_name) {
        patch.insert("name".into(), json!(wanted_name));
    }
    if text(b, "code") != Some(p.code.as_str()) {
        patch.insert("code".into(), json!(p.code));
    }
    if let Some(t) = &p.board_type {
        if text(b, "type") != Some(t.as_str()) {
            patch.insert("type".into(), json!(t));
        }
    }
    if let Some(m) = p.mobile {
        if b.get("mobile").and_then(Value::as_bool) != Some(m) {
            patch.insert("mobile".into(), json!(m));
        }
    }
    if let Some(f) = p.fleet.as_deref().filter(|f| looks_like_uuid(f)) {
        if text(b, "fleet") != Some(f) {
            patch.insert("fleet".into(), json!(f));
        }
    }
    let remote_extra: Map<String, Value> = b
        .get("extra")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let wanted_extra: Map<String, Value> =
        p.extra.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    if !p.extra.is_empty() && remote_extra != wanted_extra {
        patch.insert("extra".into(), Value::Object(wanted_extra));
    }
    // The newest location is the first one S4T lists.
    let loc = b.get("location").and_then(|l| l.get(0));
    let same_location = loc.is_some_and(|l| {
        text(l, "latitude") == Some(p.location.latitude.as_str())
            && text(l, "longitude") == Some(p.location.longitude.as_str())
            && text(l, "altitude") == Some(p.location.altitude.as_str())
    });
    if !same_location {
        patch.insert(
            "location".into(),
            json!([{"latitude": p.location.latitude, "longitude": p.location.longitude, "altitude": p.location.altitude}]),
        );
    }
    let mut filled = p.clone();
    if p.board_type.is_none() {
        filled.board_type = text(b, "type").map(str::to_string);
    }
    if p.mobile.is_none() {
        filled.mobile = b.get("mobile").and_then(Value::as_bool);
    }
    let late = (filled != *p).then_some(filled);
    Observed {
        observation: Observation {
            exists: true,
            up_to_date: patch.is_empty(),
            late_initialized: late.is_some(),
        },
        at_provider,
        late_initialized: late,
        patch: (!patch.is_empty()).then_some(Value::Object(patch)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::Location;

    fn spec() -> BoardParameters {
        BoardParameters {
            name: None,
            code: "CODE-1".into(),
            board_type: Some("virtual".into()),
            location: Location {
                latitude: "38.19".into(),
                longitude: "15.55".into(),
                altitude: "10".into(),
            },
            mobile: None,
            fleet: None,
            extra: Default::default(),
        }
    }

    fn remote() -> Value {
        json!({"uuid": "u-1", "name": "b1", "code": "CODE-1", "type": "virtual", "status": "online",
               "mobile": false, "agent": "s4t", "lr_version": "0.5.0", "fleet": null, "extra": {},
               "location": [{"latitude": "38.19", "longitude": "15.55", "altitude": "10"}]})
    }

    #[test]
    fn create_body_uses_the_resource_name_by_default() {
        let b = create_body(&spec(), "b1");
        assert_eq!(b["name"], "b1");
        assert_eq!(b["location"][0]["altitude"], "10");
        assert!(b.get("mobile").is_none() && b.get("extra").is_none());
    }

    #[test]
    fn observe_table() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut r = remote();
            f(&mut r);
            r
        };
        // (remote, expected patch keys, late-initialised)
        for (name, r, keys, late) in [
            ("in sync (mobile filled in)", remote(), vec![], true),
            (
                "code changed out of band",
                with(&|r| r["code"] = json!("OTHER")),
                vec!["code"],
                true,
            ),
            (
                "renamed",
                with(&|r| r["name"] = json!("x")),
                vec!["name"],
                true,
            ),
            (
                "moved",
                with(&|r| r["location"][0]["latitude"] = json!("1")),
                vec!["location"],
                true,
            ),
            (
                "no location",
                with(&|r| r["location"] = json!([])),
                vec!["location"],
                true,
            ),
            (
                "type changed",
                with(&|r| r["type"] = json!("gateway")),
                vec!["type"],
                true,
            ),
        ] {
            let o = observe(&spec(), "b1", Some(&r));
            let got: Vec<String> = o
                .patch
                .as_ref()
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            assert_eq!(got, keys, "{name}");
            assert_eq!(o.observation.up_to_date, keys.is_empty(), "{name}");
            assert_eq!(o.observation.late_initialized, late, "{name}");
            assert_eq!(o.at_provider.status.as_deref(), Some("online"), "{name}");
        }
        let mut full = spec();
        full.mobile = Some(false);
        let o = observe(&full, "b1", Some(&remote()));
        assert!(o.observation.up_to_date && !o.observation.late_initialized);
        let gone = observe(&spec(), "b1", None);
        assert!(!gone.observation.exists);
        // A fleet by name is not compared; by uuid it is.
        let mut named = full.clone();
        named.fleet = Some("lab".into());
        assert!(
            observe(&named, "b1", Some(&remote()))
                .observation
                .up_to_date
        );
        named.fleet = Some("3f0c2a8e-6a5b-4a8e-9d7c-1b2c3d4e5f60".into());
        assert!(
            !observe(&named, "b1", Some(&remote()))
                .observation
                .up_to_date
        );
    }
}
