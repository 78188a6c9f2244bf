//! `plugins.json`: what Lightning-rod keeps about the plugins injected into a board, in its
//! format, so that a board taken over from a Lightning-rod keeps its plugins and the other way
//! round: `{"plugins": {"<uuid>": {"name", "onboot", "callable", "injected_at", "updated_at",
//! "status"}}}`. Keys this agent does not know are kept.

use std::path::Path;

use serde_json::{json, Map, Value};

use s4t_model::plugin_runtime::Runtime;

/// One plugin's entry, as far as decisions go.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    /// As stored: Lightning-rod tests `callable is False` and `onboot is True`, so only real
    /// booleans count.
    pub callable: Value,
    pub onboot: Value,
    pub status: String,
    /// `runtime` and `wasm` (s4t keys; a stock Lightning-rod ignores them): Python without.
    pub runtime: Runtime,
}

impl Entry {
    /// An asynchronous plugin: `callable` is literally false.
    pub fn is_async(&self) -> bool {
        self.callable == Value::Bool(false)
    }

    /// Started again when the agent starts: asynchronous, `onboot` literally true, and running
    /// when the board last knew (`operative`).
    pub fn restarts_on_boot(&self) -> bool {
        self.is_async() && self.onboot == Value::Bool(true) && self.status == "operative"
    }
}

/// What PluginInject records of a plugin.
#[derive(Debug, Clone)]
pub struct Injected<'a> {
    pub name: &'a str,
    pub onboot: Value,
    pub callable: Value,
    pub runtime: &'a Runtime,
}

/// The whole document.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConf {
    doc: Map<String, Value>,
}

impl Default for PluginsConf {
    fn default() -> Self {
        PluginsConf::parse(r#"{"plugins": {}}"#).expect("a valid document")
    }
}

impl PluginsConf {
    pub fn parse(text: &str) -> Result<PluginsConf, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match doc {
            Value::Object(doc) if doc.get("plugins").is_some_and(Value::is_object) => {
                Ok(PluginsConf { doc })
            }
            _ => Err("expected {\"plugins\": {...}}".into()),
        }
    }

    /// Reads the file; a missing file is an empty document.
    pub fn load(path: &Path) -> Result<PluginsConf, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => PluginsConf::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PluginsConf::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The text, indented by four spaces as Lightning-rod writes it.
    pub fn to_text(&self) -> String {
        pretty(&Value::Object(self.doc.clone()))
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        write_atomically(path, self.to_text().as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn plugins(&self) -> &Map<String, Value> {
        self.doc
            .get("plugins")
            .and_then(Value::as_object)
            .expect("checked when read")
    }

    fn plugins_mut(&mut self) -> &mut Map<String, Value> {
        self.doc
            .get_mut("plugins")
            .and_then(Value::as_object_mut)
            .expect("checked when read")
    }

    pub fn entry(&self, uuid: &str) -> Option<Entry> {
        let e = self.plugins().get(uuid)?;
        let text = |k: &str| match e.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Some(Entry {
            name: text("name"),
            callable: e.get("callable").cloned().unwrap_or(Value::Null),
            onboot: e.get("onboot").cloned().unwrap_or(Value::Null),
            status: text("status"),
            runtime: Runtime::from_extra(Some(e)).unwrap_or_else(|err| {
                tracing::warn!(plugin = %uuid, error = %err, "plugins.json: unreadable runtime; taken as python");
                Runtime::Python
            }),
        })
    }

    /// Records an injection at `now`: a new entry (`injected`, true returned) or an update of
    /// the existing one (`updated`, its `injected_at` kept).
    pub fn inject(&mut self, uuid: &str, plugin: Injected<'_>, now: &str) -> bool {
        let plugins = self.plugins_mut();
        let new = match plugins.get_mut(uuid).and_then(Value::as_object_mut) {
            Some(e) => {
                e.insert("name".into(), json!(plugin.name));
                e.insert("onboot".into(), plugin.onboot);
                e.insert("callable".into(), plugin.callable);
                e.insert("updated_at".into(), json!(now));
                e.insert("status".into(), json!("updated"));
                false
            }
            None => {
                plugins.insert(
                    uuid.into(),
                    json!({"name": plugin.name, "onboot": plugin.onboot, "callable": plugin.callable,
                           "injected_at": now, "updated_at": "", "status": "injected"}),
                );
                true
            }
        };
        if let Some(e) = plugins.get_mut(uuid).and_then(Value::as_object_mut) {
            match plugin.runtime {
                Runtime::Python => {
                    e.remove("runtime");
                    e.remove("wasm");
                }
                Runtime::Wasm(limits) => {
                    e.insert("runtime".into(), json!("wasm"));
                    e.insert("wasm".into(), limits.to_json());
                }
            }
        }
        new
    }

    pub fn set_status(&mut self, uuid: &str, status: &str) {
        if let Some(e) = self
            .plugins_mut()
            .get_mut(uuid)
            .and_then(Value::as_object_mut)
        {
            e.insert("status".into(), json!(status));
        }
    }

    /// Drops an entry; whether there was one.
    pub fn remove(&mut self, uuid: &str) -> bool {
        self.plugins_mut().shift_remove(uuid).is_some()
    }

    /// The plugins to start when the agent starts, in file order.
    pub fn onboot(&self) -> Vec<(String, Entry)> {
        self.plugins()
            .keys()
            .filter_map(|uuid| Some((uuid.clone(), self.entry(uuid)?)))
            .filter(|(_, e)| e.restarts_on_boot())
            .collect()
    }
}

/// JSON indented by four spaces (Python's `json.dump(..., indent=4)`).
pub fn pretty(v: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    v.serialize(&mut ser).expect("a Value always serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use s4t_model::plugin_runtime::WasmLimits;

    /// What Lightning-rod 0.5.0 writes (`json.dump(conf, f, indent=4)`), with a key it does not
    /// know of.
    const FROM_LR: &str = r#"{
    "plugins": {
        "1b6b4e3c-8a47-4a4e-9d84-3f6b2a0c9e11": {
            "name": "ticker",
            "onboot": true,
            "callable": false,
            "injected_at": "2026-01-02T10:00:00.123456",
            "updated_at": "",
            "status": "operative",
            "note": "kept"
        },
        "2c7c5f4d-9b58-4b5f-8e95-4a7c3b1d0f22": {
            "name": "echo",
            "onboot": false,
            "callable": true,
            "injected_at": "2026-01-02T10:00:01.000000",
            "updated_at": "",
            "status": "injected"
        }
    }
}"#;

    #[test]
    fn lightning_rod_file_round_trips_byte_for_byte() {
        let conf = PluginsConf::parse(FROM_LR).unwrap();
        assert_eq!(conf.to_text(), FROM_LR);
        let dir = crate::plugins::test_dir("conf");
        let path = dir.join("plugins.json");
        conf.save(&path).unwrap();
        assert_eq!(PluginsConf::load(&path).unwrap(), conf);
        assert_eq!(
            PluginsConf::load(&dir.join("missing.json")).unwrap(),
            PluginsConf::default()
        );
        std::fs::write(&path, "[]").unwrap();
        assert!(PluginsConf::load(&path).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn inject_creates_then_updates() {
        let mut conf = PluginsConf::default();
        let u = "3d8d6a5e-ac69-4c6a-8fa6-5b8d4c2e1a33";
        let injected = |name, onboot, runtime| Injected {
            name,
            onboot,
            callable: json!(false),
            runtime,
        };
        assert!(conf.inject(u, injected("p", json!(true), &Runtime::Python), "T1"));
        assert_eq!(
            serde_json::from_str::<Value>(&conf.to_text()).unwrap()["plugins"][u],
            json!({"name": "p", "onboot": true, "callable": false, "injected_at": "T1",
                   "updated_at": "", "status": "injected"})
        );
        conf.set_status(u, "operative");
        let wasm = Runtime::Wasm(WasmLimits {
            fuel: Some(10),
            ..WasmLimits::default()
        });
        assert!(!conf.inject(u, injected("p2", json!(false), &wasm), "T2"));
        assert_eq!(conf.entry(u).unwrap().runtime, wasm);
        let e = &serde_json::from_str::<Value>(&conf.to_text()).unwrap()["plugins"][u];
        assert_eq!(
            (&e["runtime"], &e["wasm"]),
            (&json!("wasm"), &json!({"fuel": 10}))
        );
        assert_eq!(
            (
                &e["name"],
                &e["injected_at"],
                &e["updated_at"],
                &e["status"]
            ),
            (&json!("p2"), &json!("T1"), &json!("T2"), &json!("updated"))
        );
        // Back to Python: the WASM keys go.
        conf.inject(u, injected("p2", json!(false), &Runtime::Python), "T3");
        let e = &serde_json::from_str::<Value>(&conf.to_text()).unwrap()["plugins"][u];
        assert_eq!((&e["runtime"], &e["wasm"]), (&Value::Null, &Value::Null));
        assert!(conf.remove(u));
        assert!(!conf.remove(u));
        assert_eq!(conf.entry(u), None);
    }

    #[test]
    fn onboot_restart_table() {
        let table = [
            // callable, onboot, status, restarted
            (json!(false), json!(true), "operative", true),
            (json!(false), json!(true), "injected", false),
            (json!(false), json!(true), "updated", false),
            (json!(false), json!(false), "operative", false),
            (json!(true), json!(true), "operative", false),
            // Only real booleans count (Lightning-rod's `is False` / `is True`).
            (Value::Null, json!(true), "operative", false),
            (json!(false), json!("true"), "operative", false),
            (json!(0), json!(true), "operative", false),
        ];
        for (callable, onboot, status, want) in table {
            let e = Entry {
                name: "p".into(),
                callable: callable.clone(),
                onboot: onboot.clone(),
                status: status.into(),
                runtime: Runtime::Python,
            };
            assert_eq!(e.restarts_on_boot(), want, "{callable} {onboot} {status}");
        }
        let conf = PluginsConf::parse(FROM_LR).unwrap();
        let names: Vec<String> = conf.onboot().into_iter().map(|(_, e)| e.name).collect();
        assert_eq!(names, ["ticker"]);
    }
}
