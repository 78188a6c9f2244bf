//! Workloads (an s4t extension): what runs on boards, how many, where, and the scheduler's
//! decisions. No I/O here: the cloud's scheduler feeds [`plan`] what the store and the board
//! link say, and carries out what it returns.
//!
//! Placement is leased: a replica placed on a board stays there while the board is offline for
//! up to the grace period (the board keeps running it on its own); after that the board's agent
//! has stopped it (its lease ran out) and the scheduler places the replica elsewhere, under a
//! new replica id, so a board that comes back is told to drop the old one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::input::InputError;
use crate::rollout::selects;

pub type JsonObject = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Process,
    Wasm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

impl Restart {
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
            Restart::Never => "never",
        }
    }

    /// Whether a run that ended with `exit_code` (None: killed by a signal) is started again.
    pub fn restarts_after(self, exit_code: Option<i32>) -> bool {
        match self {
            Restart::Always => true,
            Restart::OnFailure => exit_code != Some(0),
            Restart::Never => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// At most one replica per board while there are boards enough.
    Board,
    /// Replicas on boards at different locations first, then different boards.
    Location,
}

/// Where replicas may go.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Exactly this board (uuid or name as given; the cloud resolves it).
    Board(String),
    /// Boards of a fleet and/or matching a selector on `extra`.
    Select {
        fleet: Option<String>,
        selector: JsonObject,
        replicas: u32,
        spread: Spread,
    },
}

/// A workload as applied: validated, with the body it came from kept for display.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    pub name: String,
    pub runtime: Runtime,
    /// `{"command": "...", "args": [...]}` for processes; `{"digest": "sha256:...", "inline" |
    /// "url": ...}` for WASM modules.
    pub artifact: JsonObject,
    pub env: BTreeMap<String, String>,
    pub restart: Restart,
    pub limits: JsonObject,
    pub placement: Placement,
    /// Board-local ports that become services (each `{"port": N, "name"?: ...}`).
    pub expose: Vec<JsonObject>,
}

const FIELDS: &[&str] = &[
    "name",
    "runtime",
    "artifact",
    "env",
    "restart",
    "limits",
    "placement",
    "expose",
];

/// Replicas a workload may ask for.
pub const MAX_REPLICAS: u32 = 1000;

fn err(field: &str, message: impl Into<String>) -> InputError {
    InputError::field(field, message)
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a JsonObject, InputError> {
    v.as_object()
        .ok_or_else(|| err(field, format!("{field} must be a JSON object")))
}

fn text<'a>(m: &'a JsonObject, key: &str, field: &str) -> Result<Option<&'a str>, InputError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(field, format!("{field} must be a string"))),
    }
}

fn only(m: &JsonObject, allowed: &[&str], field: &str) -> Result<(), InputError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(
            &format!("{field}.{k}"),
            format!(
                "{field}.{k} is not a field of {field}: use {}",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

impl WorkloadSpec {
    /// Reads an apply body. Every error names the field and what to send instead.
    pub fn read(body: &Value) -> Result<WorkloadSpec, InputError> {
        let m = body
            .as_object()
            .ok_or_else(|| InputError::general("a workload is a JSON object"))?;
        only(m, FIELDS, "workload").map_err(|e| {
            let f = e.field.clone().unwrap_or_default();
            err(
                f.trim_start_matches("workload."),
                format!(
                    "{} is not a workload field: use {}",
                    f.trim_start_matches("workload."),
                    FIELDS.join(", ")
                ),
            )
        })?;
        let name = text(m, "name", "name")?
            .ok_or_else(|| err("name", "name is required"))?
            .to_string();
        crate::dns::label("name", &name).map_err(|e| err("name", e))?;
        let runtime = match text(m, "runtime", "runtime")?.unwrap_or("process") {
            "process" => Runtime::Process,
            "wasm" => Runtime::Wasm,
            other => {
                return Err(err(
                    "runtime",
                    format!("runtime {other:?} is not known: use process or wasm"),
                ))
            }
        };
        let artifact = object(
            m.get("artifact")
                .ok_or_else(|| err("artifact", "artifact is required"))?,
            "artifact",
        )?
        .clone();
        match runtime {
            Runtime::Process => read_process_artifact(&artifact)?,
            Runtime::Wasm => read_wasm_artifact(&artifact)?,
        }
        let mut env = BTreeMap::new();
        if let Some(e) = m.get("env").filter(|v| !v.is_null()) {
            for (k, v) in object(e, "env")? {
                let ok = !k.is_empty()
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(err(
                        &format!("env.{k}"),
                        format!("env.{k}: variable names are letters, digits and _, not starting with a digit"),
                    ));
                }
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(err(
                            &format!("env.{k}"),
                            format!("env.{k} must be a string"),
                        ))
                    }
                };
                env.insert(k.clone(), v);
            }
        }
        let restart = match text(m, "restart", "restart")?.unwrap_or("on-failure") {
            "always" => Restart::Always,
            "on-failure" => Restart::OnFailure,
            "never" => Restart::Never,
            other => {
                return Err(err(
                    "restart",
                    format!("restart {other:?} is not known: use always, on-failure or never"),
                ))
            }
        };
        let limits = match m.get("limits").filter(|v| !v.is_null()) {
            Some(l) => {
                let l = object(l, "limits")?.clone();
                only(&l, &["memory_mib", "fuel", "wall_secs"], "limits")?;
                for (k, v) in &l {
                    if !v.as_f64().is_some_and(|n| n > 0.0) {
                        return Err(err(
                            &format!("limits.{k}"),
                            format!("limits.{k} must be a positive number"),
                        ));
                    }
                }
                l
            }
            None => JsonObject::new(),
        };
        let placement = read_placement(m.get("placement"))?;
        let mut expose = Vec::new();
        if let Some(e) = m.get("expose").filter(|v| !v.is_null()) {
            let list = e
                .as_array()
                .ok_or_else(|| err("expose", "expose must be a list of {\"port\": N}"))?;
            for (i, item) in list.iter().enumerate() {
                let field = format!("expose[{i}]");
                let o = object(item, &field)?;
                only(o, &["port", "name"], &field)?;
                if !o
                    .get("port")
                    .and_then(Value::as_u64)
                    .is_some_and(|p| (1..=65535).contains(&p))
                {
                    return Err(err(
                        &format!("{field}.port"),
                        format!("{field}.port must be a port from 1 to 65535"),
                    ));
                }
                expose.push(o.clone());
            }
        }
        Ok(WorkloadSpec {
            name,
            runtime,
            artifact,
            env,
            restart,
            limits,
            placement,
            expose,
        })
    }

    /// How many replicas the workload wants.
    pub fn replicas(&self) -> u32 {
        match &self.placement {
            Placement::Board(_) => 1,
            Placement::Select { replicas, .. } => *replicas,
        }
    }

    /// The spec as stored and shown.
    pub fn to_json(&self) -> Value {
        let placement = match &self.placement {
            Placement::Board(b) => json!({"board": b}),
            Placement::Select {
                fleet,
                selector,
                replicas,
                spread,
            } => json!({
                "fleet": fleet, "selector": selector, "replicas": replicas,
                "spread": match spread { Spread::Board => "board", Spread::Location => "location" },
            }),
        };
        json!({
            "name": self.name,
            "runtime": match self.runtime { Runtime::Process => "process", Runtime::Wasm => "wasm" },
            "artifact": self.artifact,
            "env": self.env,
            "restart": self.restart.as_str(),
            "limits": self.limits,
            "placement": placement,
            "expose": self.expose,
        })
    }
}

fn read_process_artifact(a: &JsonObject) -> Result<(), InputError> {
    only(a, &["command", "args"], "artifact")?;
    let command = text(a, "command", "artifact.command")?.ok_or_else(|| {
        err(
            "artifact.command",
            "artifact.command is required for runtime process: the program to run",
        )
    })?;
    if command.trim().is_empty() {
        return Err(err(
            "artifact.command",
            "artifact.command must not be empty",
        ));
    }
    if let Some(args) = a.get("args").filter(|v| !v.is_null()) {
        let ok = args
            .as_array()
            .is_some_and(|l| l.iter().all(Value::is_string));
        if !ok {
            return Err(err(
                "artifact.args",
                "artifact.args must be a list of strings",
            ));
        }
    }
    Ok(())
}

fn read_wasm_artifact(a: &JsonObject) -> Result<(), InputError> {
    only(a, &["digest", "inline", "url", "args"], "artifact")?;
    let digest = text(a, "digest", "artifact.digest")?.ok_or_else(|| {
        err(
            "artifact.digest",
            "artifact.digest is required for runtime wasm: sha256:<64 hex digits> of the module",
        )
    })?;
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(
            "artifact.digest",
            format!("artifact.digest {digest:?} must be sha256:<64 hex digits>"),
        ));
    }
    match (
        text(a, "inline", "artifact.inline")?,
        text(a, "url", "artifact.url")?,
    ) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        _ => Err(err(
            "artifact",
            "a wasm artifact has exactly one source: inline (base64 of the module) or url",
        )),
    }
}

fn read_placement(v: Option<&Value>) -> Result<Placement, InputError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Err(err(
            "placement",
            "placement is required: {\"board\": B} or {\"replicas\": N, \"fleet\"?: F, \"selector\"?: {...}}",
        ));
    };
    let m = object(v, "placement")?;
    only(
        m,
        &["board", "fleet", "selector", "replicas", "spread"],
        "placement",
    )?;
    if let Some(board) = text(m, "board", "placement.board")? {
        if ["fleet", "selector", "replicas", "spread"]
            .iter()
            .any(|k| m.get(*k).is_some_and(|v| !v.is_null()))
        {
            return Err(err(
                "placement.board",
                "placement.board places one replica on that board: leave out fleet, selector, replicas and spread",
            ));
        }
        return Ok(Placement::Board(board.to_string()));
    }
    let replicas = match m.get("replicas") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_REPLICAS as u64).contains(n))
            .ok_or_else(|| {
                err(
                    "placement.replicas",
                    format!("placement.replicas must be an integer from 1 to {MAX_REPLICAS}"),
                )
            })? as u32,
    };
    let selector = match m.get("selector").filter(|v| !v.is_null()) {
        Some(s) => object(s, "placement.selector")?.clone(),
        None => JsonObject::new(),
    };
    let spread = match text(m, "spread", "placement.spread")?.unwrap_or("board") {
        "board" => Spread::Board,
        "location" => Spread::Location,
        other => {
            return Err(err(
                "placement.spread",
                format!("placement.spread {other:?} is not known: use board or location"),
            ))
        }
    };
    Ok(Placement::Select {
        fleet: text(m, "fleet", "placement.fleet")?.map(str::to_string),
        selector,
        replicas,
        spread,
    })
}

/// A board as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardView {
    pub uuid: String,
    pub online: bool,
    /// How long it has been offline, when it is (as the scheduler has watched it).
    pub offline_for: Option<Duration>,
    pub fleet: Option<String>,
    pub extra: JsonObject,
    /// Where it is (for spread by location): its first location, as text.
    pub location: Option<String>,
}

/// A replica as the store has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaView {
    pub uuid: String,
    pub ordinal: u32,
    /// `None`: waiting for a board.
    pub board: Option<String>,
}

/// What the scheduler must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run replica `ordinal` on `board` (a new replica, or one that waited for a board).
    Place { ordinal: u32, board: String },
    /// The replica's board has been offline longer than the grace period: run the replica
    /// elsewhere (or nowhere yet, `to: None`), under a new id.
    Move {
        replica: String,
        ordinal: u32,
        to: Option<String>,
    },
    /// Replica not wanted any more (scaled down, or its board no longer matches).
    Remove { replica: String },
}

/// Whether a board may run the workload.
pub fn eligible(placement: &Placement, board: &BoardView, pinned: Option<&str>) -> bool {
    match placement {
        Placement::Board(_) => pinned == Some(board.uuid.as_str()),
        Placement::Select {
            fleet, selector, ..
        } => {
            fleet
                .as_ref()
                .is_none_or(|f| board.fleet.as_ref() == Some(f))
                && selects(selector, &board.extra)
        }
    }
}

/// The scheduler's decisions for one workload. `pinned` is the board uuid of a
/// `placement.board` workload. Deterministic: ties go to the board uuid that sorts first.
pub fn plan(
    spec: &WorkloadSpec,
    pinned: Option<&str>,
    replicas: &[ReplicaView],
    boards: &[BoardView],
    grace: Duration,
) -> Vec<Decision> {
    let by_uuid: HashMap<&str, &BoardView> = boards.iter().map(|b| (b.uuid.as_str(), b)).collect();
    let wanted = spec.replicas();
    let spread = match &spec.placement {
        Placement::Select { spread, .. } => *spread,
        Placement::Board(_) => Spread::Board,
    };
    let mut decisions = Vec::new();
    let mut sorted: Vec<&ReplicaView> = replicas.iter().collect();
    sorted.sort_by_key(|r| r.ordinal);
    // Scale down first: the highest ordinals go.
    let (keep, extra): (Vec<&ReplicaView>, Vec<&ReplicaView>) =
        sorted.into_iter().partition(|r| r.ordinal < wanted);
    for r in extra {
        decisions.push(Decision::Remove {
            replica: r.uuid.clone(),
        });
    }
    // Boards in use by the replicas that stay where they are.
    let mut used: Vec<String> = Vec::new();
    let mut homeless: Vec<(Option<&ReplicaView>, u32)> = Vec::new();
    for r in &keep {
        let home = r.board.as_deref().and_then(|b| by_uuid.get(b));
        let stays = home.is_some_and(|view| {
            let expired = !view.online && view.offline_for.is_some_and(|d| d > grace);
            eligible(&spec.placement, view, pinned) && !expired
        });
        match (stays, &r.board) {
            (true, Some(b)) => used.push(b.clone()),
            // Gone, no longer matching, or offline too long: elsewhere now.
            _ => homeless.push((Some(r), r.ordinal)),
        }
    }
    let have: HashSet<u32> = keep.iter().map(|r| r.ordinal).collect();
    for ordinal in 0..wanted {
        if !have.contains(&ordinal) {
            homeless.push((None, ordinal));
        }
    }
    homeless.sort_by_key(|(_, o)| *o);
    for (replica, ordinal) in homeless {
        let to = choose(spec, pinned, boards, &used, spread);
        if let Some(b) = &to {
            used.push(b.clone());
        }
        match (replica, to) {
            (Some(r), to) if r.board.is_some() => decisions.push(Decision::Move {
                replica: r.uuid.clone(),
                ordinal,
                to,
            }),
            (_, Some(board)) => decisions.push(Decision::Place { ordinal, board }),
            // Waiting for a board, and none is there yet.
            (_, None) => {}
        }
    }
    decisions
}

/// The online eligible board with the fewest replicas of this workload already (and, for spread
/// by location, at a location not used yet), ties by uuid.
fn choose(
    spec: &WorkloadSpec,
    pinned: Option<&str>,
    boards: &[BoardView],
    used: &[String],
    spread: Spread,
) -> Option<String> {
    let count = |uuid: &str| used.iter().filter(|u| *u == uuid).count();
    let used_locations: HashSet<Option<&str>> = used
        .iter()
        .filter_map(|u| boards.iter().find(|b| &b.uuid == u))
        .map(|b| b.location.as_deref())
        .collect();
    let mut candidates: Vec<&BoardView> = boards
        .iter()
        .filter(|b| b.online && eligible(&spec.placement, b, pinned))
        .collect();
    candidates.sort_by(|a, b| {
        let loc = |x: &BoardView| match spread {
            Spread::Location => used_locations.contains(&x.location.as_deref()) as usize,
            Spread::Board => 0,
        };
        (loc(a), count(&a.uuid), &a.uuid).cmp(&(loc(b), count(&b.uuid), &b.uuid))
    });
    // One replica per board while boards last; a pinned workload has one replica anyway.
    candidates.first().map(|b| b.uuid.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> WorkloadSpec {
        WorkloadSpec::read(&body).unwrap()
    }

    fn select(replicas: u32, spread: &str) -> WorkloadSpec {
        spec(
            json!({"name": "w", "artifact": {"command": "sleep", "args": ["100"]},
            "placement": {"replicas": replicas, "spread": spread}}),
        )
    }

    fn board(uuid: &str, online: bool, offline_s: u64, loc: &str) -> BoardView {
        BoardView {
            uuid: uuid.into(),
            online,
            offline_for: (!online).then(|| Duration::from_secs(offline_s)),
            fleet: None,
            extra: JsonObject::new(),
            location: Some(loc.into()),
        }
    }

    fn replica(uuid: &str, ordinal: u32, board: Option<&str>) -> ReplicaView {
        ReplicaView {
            uuid: uuid.into(),
            ordinal,
            board: board.map(str::to_string),
        }
    }

    #[test]
    fn bodies_table() {
        let ok =
            json!({"name": "w", "artifact": {"command": "sleep"}, "placement": {"board": "b1"}});
        let w = spec(ok.clone());
        assert_eq!(
            (w.runtime, w.restart, w.replicas()),
            (Runtime::Process, Restart::OnFailure, 1)
        );
        // Round trip through what is stored.
        assert_eq!(WorkloadSpec::read(&w.to_json()).unwrap(), w);
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(WorkloadSpec::read(&json!({"name": "w", "runtime": "wasm",
            "artifact": {"digest": digest, "inline": "AGFzbQ=="}, "placement": {"replicas": 2}}))
        .is_ok());
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), ""),
            (
                json!({"artifact": {"command": "x"}, "placement": {"board": "b"}}),
                "name",
            ),
            (
                json!({"name": "bad name", "artifact": {"command": "x"}, "placement": {"board": "b"}}),
                "name",
            ),
            (
                json!({"name": "w", "colour": 1, "artifact": {"command": "x"}, "placement": {"board": "b"}}),
                "colour",
            ),
            (
                json!({"name": "w", "runtime": "docker", "artifact": {"command": "x"}, "placement": {"board": "b"}}),
                "runtime",
            ),
            (
                json!({"name": "w", "placement": {"board": "b"}}),
                "artifact",
            ),
            (
                json!({"name": "w", "artifact": {"args": []}, "placement": {"board": "b"}}),
                "artifact.command",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x", "args": [1]}, "placement": {"board": "b"}}),
                "artifact.args",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x", "image": "y"}, "placement": {"board": "b"}}),
                "artifact.image",
            ),
            (
                json!({"name": "w", "runtime": "wasm", "artifact": {"digest": "md5:1", "inline": "x"}, "placement": {"board": "b"}}),
                "artifact.digest",
            ),
            (
                json!({"name": "w", "runtime": "wasm", "artifact": {"digest": digest, "inline": "x", "url": "http://x"}, "placement": {"board": "b"}}),
                "artifact",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "env": {"1A": "x"}, "placement": {"board": "b"}}),
                "env.1A",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "env": {"A": [1]}, "placement": {"board": "b"}}),
                "env.A",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "restart": "sometimes", "placement": {"board": "b"}}),
                "restart",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "limits": {"memory_mib": -1}, "placement": {"board": "b"}}),
                "limits.memory_mib",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "limits": {"cpus": 1}, "placement": {"board": "b"}}),
                "limits.cpus",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}}),
                "placement",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "placement": {"replicas": 0}}),
                "placement.replicas",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "placement": {"replicas": 1001}}),
                "placement.replicas",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "placement": {"board": "b", "replicas": 2}}),
                "placement.board",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "placement": {"spread": "rack"}}),
                "placement.spread",
            ),
            (
                json!({"name": "w", "artifact": {"command": "x"}, "placement": {"board": "b"}, "expose": [{"port": 0}]}),
                "expose[0].port",
            ),
        ];
        for (body, field) in cases {
            let e = WorkloadSpec::read(&body).unwrap_err();
            assert_eq!(
                e.field.as_deref().unwrap_or(""),
                field,
                "{body}: {}",
                e.message
            );
            if !field.is_empty() {
                assert!(e.message.contains(field), "{body}: {}", e.message);
            }
        }
    }

    #[test]
    fn restart_policies_table() {
        for (policy, code, again) in [
            (Restart::Always, Some(0), true),
            (Restart::Always, Some(1), true),
            (Restart::OnFailure, Some(0), false),
            (Restart::OnFailure, Some(3), true),
            (Restart::OnFailure, None, true),
            (Restart::Never, Some(3), false),
        ] {
            assert_eq!(policy.restarts_after(code), again, "{policy:?} {code:?}");
        }
    }

    #[test]
    fn placement_table() {
        let grace = Duration::from_secs(10);
        let five: Vec<BoardView> = (1..=5)
            .map(|i| board(&format!("b{i}"), true, 0, &format!("l{i}")))
            .collect();
        // Fresh: 3 replicas on 3 different boards.
        let d = plan(&select(3, "board"), None, &[], &five, grace);
        assert_eq!(
            d,
            vec![
                Decision::Place {
                    ordinal: 0,
                    board: "b1".into()
                },
                Decision::Place {
                    ordinal: 1,
                    board: "b2".into()
                },
                Decision::Place {
                    ordinal: 2,
                    board: "b3".into()
                },
            ]
        );
        let placed = [
            replica("r0", 0, Some("b1")),
            replica("r1", 1, Some("b2")),
            replica("r2", 2, Some("b3")),
        ];
        // Steady: nothing to do.
        assert!(plan(&select(3, "board"), None, &placed, &five, grace).is_empty());
        // b2 offline within the grace period: the replica stays.
        let mut boards = five.clone();
        boards[1] = board("b2", false, 5, "l2");
        assert!(plan(&select(3, "board"), None, &placed, &boards, grace).is_empty());
        // Beyond it: the replica moves to a board that runs none yet.
        boards[1] = board("b2", false, 11, "l2");
        assert_eq!(
            plan(&select(3, "board"), None, &placed, &boards, grace),
            vec![Decision::Move {
                replica: "r1".into(),
                ordinal: 1,
                to: Some("b4".into())
            }]
        );
        // Back online after the move: nothing (the old id is not a replica any more).
        let moved = [
            replica("r0", 0, Some("b1")),
            replica("r1b", 1, Some("b4")),
            replica("r2", 2, Some("b3")),
        ];
        assert!(plan(&select(3, "board"), None, &moved, &five, grace).is_empty());
        // Scale down: the highest ordinal goes. Scale up: the next free board.
        assert_eq!(
            plan(&select(2, "board"), None, &placed, &five, grace),
            vec![Decision::Remove {
                replica: "r2".into()
            }]
        );
        assert_eq!(
            plan(&select(4, "board"), None, &placed, &five, grace),
            vec![Decision::Place {
                ordinal: 3,
                board: "b4".into()
            }]
        );
        // More replicas than boards: they double up, least loaded first.
        let two = &five[..2];
        let d = plan(&select(3, "board"), None, &[], two, grace);
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[2],
            Decision::Place {
                ordinal: 2,
                board: "b1".into()
            }
        );
        // No online board: nothing placed, a moving replica waits with no board.
        let all_off: Vec<BoardView> = (1..=2)
            .map(|i| board(&format!("b{i}"), false, 60, "l"))
            .collect();
        assert!(plan(&select(1, "board"), None, &[], &all_off, grace).is_empty());
        assert_eq!(
            plan(
                &select(1, "board"),
                None,
                &[replica("r0", 0, Some("b1"))],
                &all_off,
                grace
            ),
            vec![Decision::Move {
                replica: "r0".into(),
                ordinal: 0,
                to: None
            }]
        );
        // A waiting replica is placed once a board is there.
        assert_eq!(
            plan(
                &select(1, "board"),
                None,
                &[replica("r0", 0, None)],
                &five,
                grace
            ),
            vec![Decision::Place {
                ordinal: 0,
                board: "b1".into()
            }]
        );
        assert!(plan(
            &select(1, "board"),
            None,
            &[replica("r0", 0, None)],
            &all_off,
            grace
        )
        .is_empty());
    }

    #[test]
    fn spread_and_eligibility_table() {
        let grace = Duration::from_secs(10);
        // Two boards per location: spread by location uses l1, l2, l3 before doubling up.
        let boards: Vec<BoardView> = [
            ("a", "l1"),
            ("b", "l1"),
            ("c", "l2"),
            ("d", "l2"),
            ("e", "l3"),
        ]
        .iter()
        .map(|(u, l)| board(u, true, 0, l))
        .collect();
        let d = plan(&select(3, "location"), None, &[], &boards, grace);
        let chosen: Vec<String> = d
            .iter()
            .map(|x| match x {
                Decision::Place { board, .. } => board.clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(chosen, vec!["a", "c", "e"]);
        let d = plan(&select(3, "board"), None, &[], &boards, grace);
        let chosen: Vec<String> = d
            .iter()
            .map(|x| match x {
                Decision::Place { board, .. } => board.clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(chosen, vec!["a", "b", "c"]);
        // Fleet and selector filter boards; a board that stops matching loses its replica.
        let mut fleet = boards.clone();
        fleet[3].fleet = Some("f".into());
        fleet[4].fleet = Some("f".into());
        fleet[4].extra.insert("gpu".into(), json!(true));
        let s = spec(
            json!({"name": "w", "artifact": {"command": "x"}, "placement": {"fleet": "f", "selector": {"gpu": true}}}),
        );
        assert_eq!(
            plan(&s, None, &[], &fleet, grace),
            vec![Decision::Place {
                ordinal: 0,
                board: "e".into()
            }]
        );
        assert_eq!(
            plan(&s, None, &[replica("r0", 0, Some("d"))], &fleet, grace),
            vec![Decision::Move {
                replica: "r0".into(),
                ordinal: 0,
                to: Some("e".into())
            }]
        );
        // A pinned workload only ever goes to its board.
        let p =
            spec(json!({"name": "w", "artifact": {"command": "x"}, "placement": {"board": "c"}}));
        assert_eq!(
            plan(&p, Some("c"), &[], &boards, grace),
            vec![Decision::Place {
                ordinal: 0,
                board: "c".into()
            }]
        );
        let mut off = boards.clone();
        off[2] = board("c", false, 60, "l2");
        assert_eq!(
            plan(&p, Some("c"), &[replica("r0", 0, Some("c"))], &off, grace),
            vec![Decision::Move {
                replica: "r0".into(),
                ordinal: 0,
                to: None
            }]
        );
    }
}
