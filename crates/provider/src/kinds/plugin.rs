//! The Plugin and PluginInjection kinds against the S4T REST API, as pure functions.
//!
//! A PluginInjection's external name says where it is: `{board}/{plugin}` for one board,
//! `fleet/{fleet}/{plugin}` for a fleet's boards. Observing it reads the board's injections
//! and, when the plugin is to run, its `PluginStatus` (ALIVE or DEAD); a dead plugin is
//! started again (`PluginStart` with `forProvider.parameters`) as the update.

use serde_json::{json, Map, Value};

use super::{
    found, read_item, s4t_name, spec_and_status_accessors, uuid_of, ManagedKind, Observed, Reply,
    Request, Target, Verb,
};
use crate::apis::{Plugin, PluginInjection, PluginInjectionObservation, PluginParameters};
use crate::conditions;
use crate::refs::{RefKind, Resolved, Slot};

fn plugin_body(p: &PluginParameters, name: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("name".into(), json!(name));
    body.insert("code".into(), json!(p.code));
    if let Some(v) = p.public {
        body.insert("public".into(), json!(v));
    }
    if let Some(v) = p.callable {
        body.insert("callable".into(), json!(v));
    }
    if let Some(v) = &p.parameters {
        body.insert("parameters".into(), Value::Object(v.clone()));
    }
    if let Some(v) = &p.extra {
        body.insert("extra".into(), Value::Object(v.clone()));
    }
    body
}

/// The fields of the spec that differ from the plugin S4T has.
fn plugin_patch(p: &PluginParameters, name: &str, remote: &Value) -> Map<String, Value> {
    plugin_body(p, name)
        .into_iter()
        .filter(|(k, v)| remote.get(k) != Some(v))
        .collect()
}

impl ManagedKind for Plugin {
    const COMPONENT: &'static str = "provider-s4t/managed/plugin";

    spec_and_status_accessors!();

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        read_item(format!("v1/plugins/{}", at.external), replies)
    }

    fn observe(&self, at: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let Some(remote) = found(replies)? else {
            return Ok(Observed::absent());
        };
        let p = &self.spec.for_provider;
        let name = s4t_name(p.name.as_deref(), self);
        let patch = plugin_patch(p, &name, remote);
        let updates = if patch.is_empty() {
            Vec::new()
        } else {
            vec![Request::with(
                Verb::Patch,
                format!("v1/plugins/{}", at.external),
                Value::Object(patch),
            )]
        };
        let mut o = Observed::present(
            json!({"uuid": remote["uuid"], "digest": remote["digest"]}),
            conditions::available(),
            updates,
        );
        let mut filled = p.clone();
        if p.public.is_none() {
            filled.public = remote["public"].as_bool();
        }
        if p.callable.is_none() {
            filled.callable = remote["callable"].as_bool();
        }
        if filled != *p {
            o.observation.late_initialized = true;
            o.late_initialized = Some(json!(filled));
        }
        Ok(o)
    }

    fn create(&self, _: &Resolved) -> Result<Request, String> {
        let name = s4t_name(self.spec.for_provider.name.as_deref(), self);
        Ok(Request::with(
            Verb::Post,
            "v1/plugins",
            Value::Object(plugin_body(&self.spec.for_provider, &name)),
        ))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/plugins/{}", at.external))]
    }
}

/// Where a PluginInjection is, read from its external name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Board { board: String, plugin: String },
    Fleet { fleet: String, plugin: String },
}

impl Placement {
    pub fn parse(external: &str) -> Result<Placement, String> {
        let parts: Vec<&str> = external.split('/').collect();
        match parts.as_slice() {
            [board, plugin] if !board.is_empty() && !plugin.is_empty() => Ok(Placement::Board {
                board: board.to_string(),
                plugin: plugin.to_string(),
            }),
            ["fleet", fleet, plugin] if !fleet.is_empty() && !plugin.is_empty() => {
                Ok(Placement::Fleet {
                    fleet: fleet.to_string(),
                    plugin: plugin.to_string(),
                })
            }
            _ => Err(format!(
                "external name {external:?} is not BOARD/PLUGIN or fleet/FLEET/PLUGIN: fix or remove the crossplane.io/external-name annotation"
            )),
        }
    }

    pub fn external_name(&self) -> String {
        match self {
            Placement::Board { board, plugin } => format!("{board}/{plugin}"),
            Placement::Fleet { fleet, plugin } => format!("fleet/{fleet}/{plugin}"),
        }
    }

    fn plugin(&self) -> &str {
        match self {
            Placement::Board { plugin, .. } | Placement::Fleet { plugin, .. } => plugin,
        }
    }
}

/// One target board as the replies describe it.
#[derive(Debug, Clone, PartialEq)]
struct BoardState {
    uuid: String,
    /// From the fleet's board list (a single board is assumed reachable).
    online: bool,
    /// `None` while the board's injections were not read; `Some(None)`: the board is gone.
    injection: Option<Option<Value>>,
    /// `PluginStatus`: Ok(ALIVE/DEAD) or why it could not be asked.
    state: Option<Result<String, String>>,
}

/// The replies, walked in the order [`ManagedKind::next_read`] asked them: the boards, then
/// per board its injections and (when the plugin is to run) its status. Returns the boards
/// seen so far and the next read, if any.
fn walk(
    inj: &PluginInjection,
    at: &Placement,
    replies: &[Reply],
) -> Result<(Vec<BoardState>, Option<Request>), String> {
    let start = inj.spec.for_provider.start.unwrap_or(true);
    let mut replies = replies.iter();
    let mut boards: Vec<BoardState> = match at {
        Placement::Board { board, .. } => vec![BoardState {
            uuid: board.clone(),
            online: true,
            injection: None,
            state: None,
        }],
        Placement::Fleet { fleet, .. } => {
            let mut boards = Vec::new();
            let mut next = Some(format!("v1/fleets/{fleet}/boards"));
            while let Some(path) = next.take() {
                let Some(reply) = replies.next() else {
                    return Ok((boards, Some(Request::get(path))));
                };
                let page = match reply {
                    Reply::Ok(v) => v,
                    Reply::Failed { status: 404, .. } => return Ok((Vec::new(), None)),
                    Reply::Failed { message, .. } => return Err(message.clone()),
                };
                for b in page["boards"].as_array().into_iter().flatten() {
                    if let Some(uuid) = b["uuid"].as_str() {
                        boards.push(BoardState {
                            uuid: uuid.to_string(),
                            online: b["status"].as_str() == Some("online"),
                            injection: None,
                            state: None,
                        });
                    }
                }
                next = page["next"]
                    .as_str()
                    .and_then(|u| u.find("/v1/").map(|i| u[i + 1..].to_string()));
            }
            boards
        }
    };
    let plugin = at.plugin();
    for i in 0..boards.len() {
        let Some(reply) = replies.next() else {
            let ask = Request::get(format!("v1/boards/{}/plugins", boards[i].uuid));
            return Ok((boards, Some(ask)));
        };
        let injection = match reply {
            Reply::Ok(v) => v["injections"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["plugin"].as_str() == Some(plugin))
                .cloned(),
            Reply::Failed { status: 404, .. } => None,
            Reply::Failed { message, .. } => return Err(message.clone()),
        };
        let injected = injection.is_some();
        boards[i].injection = Some(injection);
        if !(start && injected && boards[i].online) {
            continue;
        }
        let Some(reply) = replies.next() else {
            let ask = Request::with(
                Verb::Post,
                format!("v1/boards/{}/plugins/{plugin}", boards[i].uuid),
                json!({"action": "PluginStatus"}),
            );
            return Ok((boards, Some(ask)));
        };
        boards[i].state = Some(match reply {
            Reply::Ok(v) => Ok(v.as_str().unwrap_or("unknown").to_string()),
            Reply::Failed { message, .. } => Err(message.clone()),
        });
    }
    Ok((boards, None))
}

impl ManagedKind for PluginInjection {
    const COMPONENT: &'static str = "provider-s4t/managed/plugininjection";

    spec_and_status_accessors!();

    fn references(&self) -> Vec<Slot> {
        let p = &self.spec.for_provider;
        vec![
            Slot {
                field: "plugin",
                kind: RefKind::Plugin,
                value: p.plugin.clone(),
                reference: p.plugin_ref.clone(),
                selector: p.plugin_selector.clone(),
            },
            Slot {
                field: "board",
                kind: RefKind::Board,
                value: p.board.clone(),
                reference: p.board_ref.clone(),
                selector: p.board_selector.clone(),
            },
            Slot {
                field: "fleet",
                kind: RefKind::Fleet,
                value: p.fleet.clone(),
                reference: p.fleet_ref.clone(),
                selector: p.fleet_selector.clone(),
            },
        ]
    }

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        let placement = Placement::parse(at.external).ok()?;
        walk(self, &placement, replies)
            .ok()
            .and_then(|(_, next)| next)
    }

    fn observe(&self, at: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let placement = Placement::parse(at.external)?;
        let (boards, _) = walk(self, &placement, replies)?;
        let p = &self.spec.for_provider;
        let start = p.start.unwrap_or(true);
        let plugin = placement.plugin();
        let single = matches!(placement, Placement::Board { .. });
        if !single && replies.first().is_some_and(Reply::not_found) {
            return Ok(Observed::absent());
        }
        if single
            && !matches!(
                boards.first().and_then(|b| b.injection.as_ref()),
                Some(Some(_))
            )
        {
            return Ok(Observed::absent());
        }
        let mut updates = Vec::new();
        let (mut injected, mut running) = (0u32, 0u32);
        let mut not_running = Vec::new();
        for b in &boards {
            let Some(Some(i)) = &b.injection else {
                if b.online {
                    updates.push(Request::with(
                        Verb::Put,
                        format!("v1/boards/{}/plugins", b.uuid),
                        json!({"plugin": plugin, "onboot": p.onboot}),
                    ));
                }
                not_running.push(format!("{}: not injected", b.uuid));
                continue;
            };
            injected += 1;
            if i["onboot"].as_bool() != Some(p.onboot) && b.online {
                updates.push(Request::with(
                    Verb::Put,
                    format!("v1/boards/{}/plugins", b.uuid),
                    json!({"plugin": plugin, "onboot": p.onboot}),
                ));
            }
            if !start {
                continue;
            }
            match &b.state {
                Some(Ok(s)) if s == "ALIVE" => running += 1,
                Some(Ok(s)) => {
                    not_running.push(format!("{}: {s}", b.uuid));
                    updates.push(Request::with(
                        Verb::Post,
                        format!("v1/boards/{}/plugins/{plugin}", b.uuid),
                        json!({"action": "PluginStart", "parameters": p.parameters.clone().unwrap_or_default()}),
                    ));
                }
                Some(Err(e)) => not_running.push(format!("{}: state unknown ({e})", b.uuid)),
                None => not_running.push(format!("{}: offline", b.uuid)),
            }
        }
        let total = boards.len() as u32;
        let ready = if not_running.is_empty() && (total > 0 || !single) {
            conditions::available()
        } else {
            let what = if start { "runs" } else { "is injected" };
            let done = if start { running } else { injected };
            conditions::unavailable(format!(
                "the plugin {what} on {done} of {total} boards; {}",
                not_running.join("; ")
            ))
        };
        let state = single.then(|| match boards.first().and_then(|b| b.state.clone()) {
            Some(Ok(s)) => s,
            Some(Err(e)) => format!("unknown: {e}"),
            None if start => "unknown".into(),
            None => "injected".into(),
        });
        let at_provider = PluginInjectionObservation {
            boards: Some(total),
            injected: Some(injected),
            running: start.then_some(running),
            state,
        };
        Ok(Observed::present(json!(at_provider), ready, updates))
    }

    fn create(&self, refs: &Resolved) -> Result<Request, String> {
        let p = &self.spec.for_provider;
        let plugin = refs
            .get("plugin")
            .ok_or("spec.forProvider: give the plugin (plugin, pluginRef or pluginSelector)")?;
        let body = json!({"plugin": plugin, "onboot": p.onboot});
        match (refs.get("board"), refs.get("fleet")) {
            (Some(board), None) => Ok(Request::with(
                Verb::Put,
                format!("v1/boards/{board}/plugins"),
                body,
            )),
            (None, Some(fleet)) => Ok(Request::with(
                Verb::Post,
                format!("v1/fleets/{fleet}/plugins"),
                body,
            )),
            (None, None) => Err("spec.forProvider: give the target, a board (board, boardRef, boardSelector) or a fleet (fleet, fleetRef, fleetSelector)".into()),
            (Some(_), Some(_)) => Err("spec.forProvider: give a board or a fleet, not both".into()),
        }
    }

    fn created(&self, refs: &Resolved, _: &Value) -> Result<String, String> {
        let plugin = refs.get("plugin").cloned().unwrap_or_default();
        Ok(match (refs.get("board"), refs.get("fleet")) {
            (Some(board), _) => Placement::Board {
                board: board.clone(),
                plugin,
            },
            (None, fleet) => Placement::Fleet {
                fleet: fleet.cloned().unwrap_or_default(),
                plugin,
            },
        }
        .external_name())
    }

    fn delete(&self, at: Target<'_>, replies: &[Reply]) -> Vec<Request> {
        let Ok(placement) = Placement::parse(at.external) else {
            return Vec::new();
        };
        // Every board this reconcile's observation found the plugin on.
        let boards = walk(self, &placement, replies)
            .map(|(boards, _)| boards)
            .unwrap_or_default();
        boards
            .iter()
            .filter(|b| matches!(b.injection, Some(Some(_))))
            .map(|b| {
                Request::delete(format!(
                    "v1/boards/{}/plugins/{}",
                    b.uuid,
                    placement.plugin()
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::{PluginInjectionParameters, PluginInjectionSpec, PluginSpec};

    fn plugin_spec() -> PluginParameters {
        PluginParameters {
            name: None,
            code: "class Worker: pass".into(),
            public: None,
            callable: Some(false),
            parameters: None,
            extra: None,
        }
    }

    fn plugin() -> Plugin {
        Plugin::new(
            "ticker",
            PluginSpec {
                for_provider: plugin_spec(),
                management_policies: None,
                provider_config_ref: Default::default(),
                write_connection_secret_to_ref: None,
            },
        )
    }

    fn target<'a>(external: &'a str, refs: &'a Resolved) -> Target<'a> {
        Target { external, refs }
    }

    #[test]
    fn plugin_observe_table() {
        let refs = Resolved::new();
        let remote = json!({"uuid": "p-1", "name": "ticker", "code": "class Worker: pass",
                            "public": false, "callable": false, "digest": "d", "parameters": {}});
        // (case, remote, patched fields)
        let rows: Vec<(&str, Value, Vec<&str>)> = vec![
            ("in sync", remote.clone(), vec![]),
            (
                "code changed",
                {
                    let mut r = remote.clone();
                    r["code"] = json!("x");
                    r
                },
                vec!["code"],
            ),
            (
                "renamed",
                {
                    let mut r = remote.clone();
                    r["name"] = json!("other");
                    r
                },
                vec!["name"],
            ),
            (
                "callable flipped",
                {
                    let mut r = remote.clone();
                    r["callable"] = json!(true);
                    r
                },
                vec!["callable"],
            ),
        ];
        for (case, r, fields) in rows {
            let o = plugin()
                .observe(target("p-1", &refs), &[Reply::Ok(r)])
                .unwrap();
            let got: Vec<String> = o
                .updates
                .first()
                .and_then(|u| u.body.as_ref())
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            assert_eq!(got, fields, "{case}");
            assert_eq!(o.observation.up_to_date, fields.is_empty(), "{case}");
            // `public` was left out of the spec: S4T's value is late-initialised.
            assert!(o.observation.late_initialized, "{case}");
            assert_eq!(o.late_initialized.unwrap()["public"], json!(false));
        }
        let gone = plugin()
            .observe(
                target("p-1", &refs),
                &[Reply::Failed {
                    status: 404,
                    message: "nope".into(),
                }],
            )
            .unwrap();
        assert!(!gone.observation.exists);
        let broken = plugin().observe(
            target("p-1", &refs),
            &[Reply::Failed {
                status: 500,
                message: "db down".into(),
            }],
        );
        assert_eq!(broken.unwrap_err(), "db down");
        let create = plugin().create(&refs).unwrap();
        assert_eq!(create.path, "v1/plugins");
        assert_eq!(create.body.unwrap()["name"], "ticker");
    }

    fn injection(start: Option<bool>) -> PluginInjection {
        PluginInjection::new(
            "ticker-on-rpi",
            PluginInjectionSpec {
                for_provider: PluginInjectionParameters {
                    plugin: None,
                    plugin_ref: None,
                    plugin_selector: None,
                    board: None,
                    board_ref: None,
                    board_selector: None,
                    fleet: None,
                    fleet_ref: None,
                    fleet_selector: None,
                    onboot: true,
                    start,
                    parameters: None,
                },
                management_policies: None,
                provider_config_ref: Default::default(),
                write_connection_secret_to_ref: None,
            },
        )
    }

    fn injections(onboot: bool) -> Reply {
        Reply::Ok(json!({"injections": [{"plugin": "P", "onboot": onboot, "status": "injected"}]}))
    }

    #[test]
    fn injection_on_a_board_table() {
        let refs = Resolved::new();
        let none = Reply::Ok(json!({"injections": []}));
        let alive = Reply::Ok(json!("ALIVE"));
        let dead = Reply::Ok(json!("DEAD"));
        let offline = Reply::Failed {
            status: 409,
            message: "board B is not connected".into(),
        };
        let status_call = Request::with(
            Verb::Post,
            "v1/boards/B/plugins/P",
            json!({"action": "PluginStatus"}),
        );
        // (case, start, replies, next read, exists, update verbs+actions, ready)
        type Row = (
            &'static str,
            Option<bool>,
            Vec<Reply>,
            Option<Request>,
            bool,
            Vec<&'static str>,
            bool,
        );
        let rows: Vec<Row> = vec![
            (
                "nothing read yet",
                None,
                vec![],
                Some(Request::get("v1/boards/B/plugins")),
                false,
                vec![],
                false,
            ),
            (
                "not injected",
                None,
                vec![none.clone()],
                None,
                false,
                vec![],
                false,
            ),
            (
                "injected: its status is asked",
                None,
                vec![injections(true)],
                Some(status_call.clone()),
                true,
                vec![],
                false,
            ),
            (
                "injected and running",
                None,
                vec![injections(true), alive.clone()],
                None,
                true,
                vec![],
                true,
            ),
            (
                "injected, dead: started",
                None,
                vec![injections(true), dead.clone()],
                None,
                true,
                vec!["PluginStart"],
                false,
            ),
            (
                "onboot differs: injected again",
                None,
                vec![injections(false), alive.clone()],
                None,
                true,
                vec!["PUT"],
                true,
            ),
            (
                "board offline: not ready, nothing to do",
                None,
                vec![injections(true), offline.clone()],
                None,
                true,
                vec![],
                false,
            ),
            (
                "start: false never asks the status",
                Some(false),
                vec![injections(true)],
                None,
                true,
                vec![],
                true,
            ),
        ];
        for (case, start, replies, next, exists, updates, ready) in rows {
            let inj = injection(start);
            let at = target("B/P", &refs);
            assert_eq!(inj.next_read(at, &replies), next, "{case}");
            if next.is_some() {
                continue;
            }
            let o = inj.observe(at, &replies).unwrap();
            assert_eq!(o.observation.exists, exists, "{case}");
            let got: Vec<&str> = o
                .updates
                .iter()
                .map(|u| match u.verb {
                    Verb::Put => "PUT",
                    _ => u.body.as_ref().unwrap()["action"].as_str().unwrap(),
                })
                .collect();
            assert_eq!(got, updates, "{case}");
            if exists {
                let is_ready = o.ready.unwrap().status == "True";
                assert_eq!(is_ready, ready, "{case}");
            }
        }
    }

    #[test]
    fn injection_on_a_fleet_reads_every_board() {
        let refs = Resolved::new();
        let inj = injection(None);
        let at = target("fleet/F/P", &refs);
        let boards = Reply::Ok(json!({"boards": [
            {"uuid": "B1", "status": "online"},
            {"uuid": "B2", "status": "online"},
            {"uuid": "B3", "status": "offline"},
        ]}));
        let mut replies = vec![];
        let mut asked = vec![];
        let answers = [
            boards,
            injections(true),
            Reply::Ok(json!("ALIVE")),
            Reply::Ok(json!({"injections": []})),
            Reply::Ok(json!({"injections": []})),
        ];
        for a in answers {
            asked.push(inj.next_read(at, &replies).expect("a read").path);
            replies.push(a);
        }
        assert_eq!(
            asked,
            [
                "v1/fleets/F/boards",
                "v1/boards/B1/plugins",
                "v1/boards/B1/plugins/P",
                "v1/boards/B2/plugins",
                "v1/boards/B3/plugins"
            ]
        );
        assert_eq!(inj.next_read(at, &replies), None);
        let o = inj.observe(at, &replies).unwrap();
        // B2 gets the plugin; B3 is offline and waits.
        let paths: Vec<&str> = o.updates.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["v1/boards/B2/plugins"]);
        assert_eq!(o.at_provider["running"], 1);
        assert_eq!(o.at_provider["boards"], 3);
        assert_eq!(o.ready.unwrap().status, "False");
    }

    #[test]
    fn injection_create_and_names() {
        let inj = injection(None);
        let mut refs = Resolved::new();
        assert!(inj.create(&refs).unwrap_err().contains("plugin"));
        refs.insert("plugin", "P".into());
        assert!(inj.create(&refs).unwrap_err().contains("target"));
        refs.insert("board", "B".into());
        let c = inj.create(&refs).unwrap();
        assert_eq!(
            (c.verb, c.path.as_str()),
            (Verb::Put, "v1/boards/B/plugins")
        );
        assert_eq!(inj.created(&refs, &json!({})).unwrap(), "B/P");
        refs.insert("fleet", "F".into());
        assert!(inj.create(&refs).unwrap_err().contains("not both"));
        refs.remove("board");
        assert_eq!(inj.create(&refs).unwrap().path, "v1/fleets/F/plugins");
        assert_eq!(inj.created(&refs, &json!({})).unwrap(), "fleet/F/P");
        for bad in ["", "B", "a/b/c", "fleet//P", "/P"] {
            assert!(Placement::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Placement::parse("fleet/F/P").unwrap(),
            Placement::Fleet {
                fleet: "F".into(),
                plugin: "P".into()
            }
        );
    }
}
