//! Which reply for which state: Lightning-rod 0.5.0's replies (texts included, double spaces and
//! all), decided without I/O.

use std::path::Path;

use serde_json::Value;

use s4t_model::board_link::WampMessage;
use s4t_model::resources::Outcome;

use super::conf::Entry;

/// Where a plugin's process stands (Lightning-rod: its thread in `PLUGINS_THRS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Never started, or stopped.
    Absent,
    Alive,
    /// Started and ended on its own (or a PluginCall that answered and finished).
    Exited,
}

fn warning(message: String) -> WampMessage {
    WampMessage {
        message: Value::String(message),
        result: Outcome::Warning,
        req_id: None,
    }
}

/// Plugin uuids become file names: only the canonical 8-4-4-4-12 hex form is accepted.
pub fn valid_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The refusal of an argument that is not a plugin uuid.
pub fn not_a_uuid(rpc: &str, raw: &Value) -> WampMessage {
    WampMessage::error(format!("{rpc} - ERROR - {raw} is not a plugin uuid"))
}

pub fn injected(new: bool) -> WampMessage {
    WampMessage::success(if new {
        "PluginInject result: INJECTED"
    } else {
        "PluginInject result: UPDATED"
    })
}

/// PluginInject failures (bad plugin dict, undecodable code, file errors).
pub fn inject_error(err: &str) -> WampMessage {
    WampMessage::error(format!("Plugin injection error: {err}"))
}

/// The last `lines` lines of a log.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// PluginStart: may the plugin start?
pub fn start(
    uuid: &str,
    entry: Option<&Entry>,
    live: Live,
    source: &Path,
    source_exists: bool,
) -> Result<(), WampMessage> {
    if entry.is_none() {
        return Err(WampMessage::error(format!(
            "Plugin {uuid} does not exist in this board!"
        )));
    }
    if live == Live::Alive {
        return Err(WampMessage::error("ALREADY STARTED!"));
    }
    if !source_exists {
        return Err(WampMessage::error(format!(
            "PluginStart - ERROR {} does not exist!",
            source.display()
        )));
    }
    Ok(())
}

/// PluginStop: stop it, or why not.
pub fn stop(uuid: &str, live: Live) -> Result<(), WampMessage> {
    match live {
        Live::Alive => Ok(()),
        Live::Absent => Err(warning(format!(
            "PluginStop - WARNING {uuid}  is not running!"
        ))),
        Live::Exited => Err(WampMessage::error(format!(
            "PluginStop - ERROR - plugin ({uuid}) is instantiated but is not running anymore!"
        ))),
    }
}

/// PluginCall: may the plugin run? (Lightning-rod looks at a live worker first, then at
/// plugins.json, where a missing entry is a `KeyError`.)
pub fn call(
    uuid: &str,
    entry: Option<&Entry>,
    live: Live,
    source: &Path,
    source_exists: bool,
) -> Result<(), WampMessage> {
    if live == Live::Alive {
        return Err(warning(format!("Plugin {uuid} already started!")));
    }
    if entry.is_none() {
        return Err(WampMessage::error(format!(
            "PluginCall - ERROR - plugin ({uuid}) - '{uuid}'"
        )));
    }
    if !source_exists {
        return Err(WampMessage::error(format!(
            "PluginCall - ERROR {} does not exist!",
            source.display()
        )));
    }
    Ok(())
}

/// PluginReboot, before anything is stopped: only asynchronous plugins (`callable` literally
/// false) can be rebooted.
pub fn reboot(uuid: &str, entry: Option<&Entry>) -> Result<(), WampMessage> {
    match entry {
        None => Err(WampMessage::error(format!(
            "Error rebooting plugin '{uuid}': '{uuid}'"
        ))),
        Some(e) if !e.is_async() => Err(WampMessage::error(format!(
            "Error rebooting plugin '{uuid}': only asynchronous plugins (callable false) can be rebooted"
        ))),
        Some(_) => Ok(()),
    }
}

/// PluginReboot, after the stop: is there a file to start?
pub fn reboot_source(source: &Path, source_exists: bool) -> Result<(), WampMessage> {
    if source_exists {
        Ok(())
    } else {
        Err(WampMessage::error(format!(
            "ERROR '{}' does not exist!",
            source.display()
        )))
    }
}

/// The parameters a reboot starts with: the given ones, else the saved ones, else none.
pub fn reboot_params(given: &Value, saved: Option<Value>) -> Value {
    if given.is_null() {
        saved.unwrap_or(Value::Null)
    } else {
        given.clone()
    }
}

pub fn status(live: Live) -> WampMessage {
    WampMessage::success(if live == Live::Alive { "ALIVE" } else { "DEAD" })
}

/// PluginRemove, before anything is touched.
pub fn remove(dir_exists: bool, conf_exists: bool) -> Result<(), WampMessage> {
    if dir_exists && conf_exists {
        Ok(())
    } else {
        Err(WampMessage::error("Plugin paths or files do not exist!"))
    }
}

/// PluginRemove's reply once the files are gone.
pub fn removed(uuid: &str, had_entry: bool) -> WampMessage {
    WampMessage::success(if had_entry {
        format!("PluginRemove result: {uuid} removed!")
    } else {
        format!("PluginRemove result:  {uuid} already removed!")
    })
}

/// The `delay` of PluginStop, in seconds (a number, or a number in a string; at most an hour).
pub fn stop_delay(params: &Value) -> f64 {
    let d = match params.get("delay") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    };
    if d.is_finite() {
        d.clamp(0.0, 3600.0)
    } else {
        0.0
    }
}

/// What the plugin's process said first.
#[derive(Debug, Clone, PartialEq)]
pub enum First {
    /// An asynchronous plugin is running.
    Started,
    /// A callable plugin's first result.
    Result(Value),
    /// Loading or building the worker failed: Lightning-rod replies with the exception's text.
    LoadFailed(String),
    /// The plugin raised (or ended) before it gave a result.
    RunFailed(String),
    /// The process ended without a word (killed, interpreter missing a module, ...).
    Ended(String),
}

impl First {
    /// Reads the runner's JSON line.
    pub fn parse(line: &str) -> First {
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => return First::Ended(format!("the plugin runner said {line:.200}")),
        };
        let message = || {
            v.get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string()
        };
        match v.get("event").and_then(Value::as_str) {
            Some("started") => First::Started,
            Some("result") => First::Result(v.get("value").cloned().unwrap_or(Value::Null)),
            Some("error") if v.get("stage").and_then(Value::as_str) == Some("run") => {
                First::RunFailed(message())
            }
            Some("error") => First::LoadFailed(message()),
            _ => First::Ended(format!("the plugin runner said {line:.200}")),
        }
    }
}

/// PluginCall's reply from what the process said.
pub fn call_reply(first: First, log: &Path) -> WampMessage {
    match first {
        First::Result(v) => WampMessage::success(v),
        First::LoadFailed(m) => WampMessage::error(m),
        First::RunFailed(m) => {
            WampMessage::error(format!("PluginCall - ERROR - {m} (log: {})", log.display()))
        }
        First::Started => WampMessage::error("PluginCall - ERROR - the plugin gave no result"),
        First::Ended(why) => WampMessage::error(format!(
            "PluginCall - ERROR - {why} (log: {})",
            log.display()
        )),
    }
}

/// PluginStart's (and PluginReboot's) reply once the process spoke: `ok` when it runs.
pub fn started_reply(rpc: &str, uuid: &str, first: First, ok: &str, log: &Path) -> WampMessage {
    let failed = |m: String| match rpc {
        "PluginReboot" => WampMessage::error(format!("Error rebooting plugin '{uuid}': {m}")),
        _ => WampMessage::error(m),
    };
    match first {
        First::Started => WampMessage::success(ok),
        First::LoadFailed(m) => failed(m),
        First::Result(_) | First::RunFailed(_) => failed("the plugin is not asynchronous".into()),
        First::Ended(why) => failed(format!("{why} (log: {})", log.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const U: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn entry(callable: Value) -> Entry {
        Entry {
            name: "p".into(),
            callable,
            onboot: json!(false),
            status: "injected".into(),
            runtime: s4t_model::plugin_runtime::Runtime::Python,
        }
    }

    fn text(r: Result<(), WampMessage>) -> Option<(Outcome, String)> {
        r.err()
            .map(|m| (m.result, m.message.as_str().unwrap().to_string()))
    }

    #[test]
    fn uuid_table() {
        for (s, ok) in [
            (U, true),
            ("0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", true),
            ("0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d", false),
            ("../../etc/passwd", false),
            ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4/", false),
            ("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/..", false),
            ("", false),
        ] {
            assert_eq!(valid_uuid(s), ok, "{s}");
        }
    }

    #[test]
    fn start_table() {
        let src = Path::new("home/plugins/x/x.py");
        let e = entry(json!(false));
        let table = [
            (
                None,
                Live::Absent,
                true,
                Some((
                    Outcome::Error,
                    format!("Plugin {U} does not exist in this board!"),
                )),
            ),
            (
                Some(&e),
                Live::Alive,
                true,
                Some((Outcome::Error, "ALREADY STARTED!".into())),
            ),
            (
                Some(&e),
                Live::Absent,
                false,
                Some((
                    Outcome::Error,
                    "PluginStart - ERROR home/plugins/x/x.py does not exist!".into(),
                )),
            ),
            (Some(&e), Live::Absent, true, None),
            (Some(&e), Live::Exited, true, None),
        ];
        for (entry, live, exists, want) in table {
            assert_eq!(text(start(U, entry, live, src, exists)), want, "{live:?}");
        }
    }

    #[test]
    fn stop_table() {
        assert_eq!(text(stop(U, Live::Alive)), None);
        assert_eq!(
            text(stop(U, Live::Absent)),
            Some((
                Outcome::Warning,
                format!("PluginStop - WARNING {U}  is not running!")
            ))
        );
        assert_eq!(
            text(stop(U, Live::Exited)),
            Some((
                Outcome::Error,
                format!(
                    "PluginStop - ERROR - plugin ({U}) is instantiated but is not running anymore!"
                )
            ))
        );
    }

    #[test]
    fn call_table() {
        let src = Path::new("h/x.py");
        let e = entry(json!(true));
        let table = [
            (
                Some(&e),
                Live::Alive,
                true,
                Some((Outcome::Warning, format!("Plugin {U} already started!"))),
            ),
            // A live worker is looked at before plugins.json.
            (
                None,
                Live::Alive,
                true,
                Some((Outcome::Warning, format!("Plugin {U} already started!"))),
            ),
            (
                None,
                Live::Absent,
                true,
                Some((
                    Outcome::Error,
                    format!("PluginCall - ERROR - plugin ({U}) - '{U}'"),
                )),
            ),
            (
                Some(&e),
                Live::Exited,
                false,
                Some((
                    Outcome::Error,
                    "PluginCall - ERROR h/x.py does not exist!".into(),
                )),
            ),
            (Some(&e), Live::Exited, true, None),
            (Some(&e), Live::Absent, true, None),
        ];
        for (entry, live, exists, want) in table {
            assert_eq!(text(call(U, entry, live, src, exists)), want, "{live:?}");
        }
    }

    #[test]
    fn reboot_table() {
        let table = [
            (None, Some(format!("Error rebooting plugin '{U}': '{U}'"))),
            (Some(entry(json!(true))), Some(format!("Error rebooting plugin '{U}': only asynchronous plugins (callable false) can be rebooted"))),
            (Some(entry(Value::Null)), Some(format!("Error rebooting plugin '{U}': only asynchronous plugins (callable false) can be rebooted"))),
            (Some(entry(json!(false))), None),
        ];
        for (e, want) in table {
            assert_eq!(
                text(reboot(U, e.as_ref())),
                want.map(|w| (Outcome::Error, w))
            );
        }
        assert_eq!(
            text(reboot_source(Path::new("h/x.py"), false)),
            Some((Outcome::Error, "ERROR 'h/x.py' does not exist!".into()))
        );
        let saved = json!({"message": "saved"});
        assert_eq!(reboot_params(&Value::Null, Some(saved.clone())), saved);
        assert_eq!(reboot_params(&Value::Null, None), Value::Null);
        assert_eq!(reboot_params(&json!({}), Some(json!({"a": 1}))), json!({}));
    }

    #[test]
    fn status_and_remove_table() {
        assert_eq!(status(Live::Alive), WampMessage::success("ALIVE"));
        assert_eq!(status(Live::Exited), WampMessage::success("DEAD"));
        assert_eq!(status(Live::Absent), WampMessage::success("DEAD"));
        for (dir, conf, ok) in [
            (true, true, true),
            (false, true, false),
            (true, false, false),
        ] {
            assert_eq!(
                text(remove(dir, conf)),
                (!ok).then(|| (Outcome::Error, "Plugin paths or files do not exist!".into()))
            );
        }
        assert_eq!(
            removed(U, true),
            WampMessage::success(format!("PluginRemove result: {U} removed!"))
        );
        assert_eq!(
            removed(U, false),
            WampMessage::success(format!("PluginRemove result:  {U} already removed!"))
        );
        assert_eq!(
            injected(true),
            WampMessage::success("PluginInject result: INJECTED")
        );
        assert_eq!(
            injected(false),
            WampMessage::success("PluginInject result: UPDATED")
        );
    }

    #[test]
    fn stop_delay_table() {
        for (params, want) in [
            (json!({}), 0.0),
            (Value::Null, 0.0),
            (json!({"delay": 2}), 2.0),
            (json!({"delay": 0.5}), 0.5),
            (json!({"delay": "3"}), 3.0),
            (json!({"delay": -4}), 0.0),
            (json!({"delay": 1e9}), 3600.0),
            (json!({"delay": "soon"}), 0.0),
        ] {
            assert_eq!(stop_delay(&params), want, "{params}");
        }
    }

    #[test]
    fn first_line_to_reply_table() {
        let log = Path::new("h/x.log");
        let table = [
            (
                r#"{"event": "result", "value": "echo: {'say': 'hi'}"}"#,
                WampMessage::success("echo: {'say': 'hi'}"),
            ),
            (
                r#"{"event": "result", "value": {"t": 21.5}}"#,
                WampMessage::success(json!({"t": 21.5})),
            ),
            (
                r#"{"event": "error", "stage": "load", "message": "invalid syntax (x.py, line 3)"}"#,
                WampMessage::error("invalid syntax (x.py, line 3)"),
            ),
            (
                r#"{"event": "error", "stage": "run", "message": "ValueError: boom"}"#,
                WampMessage::error("PluginCall - ERROR - ValueError: boom (log: h/x.log)"),
            ),
            (
                "garbage",
                WampMessage::error(
                    "PluginCall - ERROR - the plugin runner said garbage (log: h/x.log)",
                ),
            ),
        ];
        for (line, want) in table {
            assert_eq!(call_reply(First::parse(line), log), want, "{line}");
        }
        assert_eq!(
            started_reply("PluginStart", U, First::Started, "STARTED", log),
            WampMessage::success("STARTED")
        );
        assert_eq!(
            started_reply(
                "PluginStart",
                U,
                First::LoadFailed("No module named 'x'".into()),
                "STARTED",
                log
            ),
            WampMessage::error("No module named 'x'")
        );
        assert_eq!(
            started_reply(
                "PluginReboot",
                U,
                First::LoadFailed("boom".into()),
                "REBOOTED",
                log
            ),
            WampMessage::error(format!("Error rebooting plugin '{U}': boom"))
        );
        assert_eq!(
            started_reply(
                "PluginStart",
                U,
                First::Ended("exit status: 1".into()),
                "STARTED",
                log
            ),
            WampMessage::error("exit status: 1 (log: h/x.log)")
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\nb", 5), "a\nb");
        assert_eq!(tail("", 3), "");
    }
}
