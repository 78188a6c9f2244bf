//! The board's identity and where it connects, in Lightning-rod's `settings.json` format, so the
//! agent can replace a Lightning-rod in place (and a Lightning-rod could take its file back).
//!
//! Before registration the file holds a code and the registration URL; after it, the
//! provisioning document the cloud returned, verbatim (plus `s4t.board_secret` from an s4t
//! cloud). Unknown keys are kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

/// The placeholder code of a factory-fresh board: it waits until a real code is written.
pub const FIRST_BOOT_CODE: &str = "<REGISTRATION-TOKEN>";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a settings document: {reason}")]
    Invalid { path: String, reason: String },
}

/// Where the board stands, read from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No usable code yet: wait for one to be written.
    FirstBoot,
    /// A code and a registration URL: register.
    Unregistered { code: String, url: String },
    /// Provisioned: connect to the main agent.
    Provisioned(Identity),
}

/// A provisioned board's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uuid: String,
    pub name: String,
    pub board_type: Option<String>,
    pub agent: String,
    pub main_url: String,
    pub realm: String,
    /// Issued by an s4t cloud; absent with a stock cloud (anonymous sessions).
    pub secret: Option<String>,
    /// `registered` until the first successful join, then `operative` (as Lightning-rod does).
    pub status: String,
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    cur.as_str()
}

/// The document of a board that has a code but no identity yet.
pub fn first_boot_document(code: &str, registration_url: &str) -> Value {
    json!({"iotronic": {
        "board": {"code": code},
        "wamp": {"registration-agent": {"url": registration_url, "realm": "s4t"}},
    }})
}

/// Reads what phase a document is in. Lightning-rod's rules: the placeholder code means first
/// boot; a uuid and a main agent mean provisioned.
pub fn phase(doc: &Value) -> Phase {
    let board = ["iotronic", "board"];
    let code = text(doc, &[board[0], board[1], "code"]).unwrap_or(FIRST_BOOT_CODE);
    let uuid = text(doc, &["iotronic", "board", "uuid"]);
    let main_url = text(doc, &["iotronic", "wamp", "main-agent", "url"]);
    let agent = text(doc, &["iotronic", "board", "agent"]);
    if let (Some(uuid), Some(main_url), Some(agent)) = (uuid, main_url, agent) {
        return Phase::Provisioned(Identity {
            uuid: uuid.to_string(),
            name: text(doc, &["iotronic", "board", "name"])
                .unwrap_or(uuid)
                .to_string(),
            board_type: text(doc, &["iotronic", "board", "type"]).map(str::to_string),
            agent: agent.to_string(),
            main_url: main_url.to_string(),
            realm: text(doc, &["iotronic", "wamp", "main-agent", "realm"])
                .unwrap_or("s4t")
                .to_string(),
            secret: text(doc, &["s4t", "board_secret"]).map(str::to_string),
            status: text(doc, &["iotronic", "board", "status"])
                .unwrap_or("registered")
                .to_string(),
        });
    }
    match text(doc, &["iotronic", "wamp", "registration-agent", "url"]) {
        Some(url) if code != FIRST_BOOT_CODE && !code.is_empty() => Phase::Unregistered {
            code: code.to_string(),
            url: url.to_string(),
        },
        _ => Phase::FirstBoot,
    }
}

/// Sets `iotronic.board.status`.
pub fn set_status(doc: &mut Value, status: &str) {
    if let Some(board) = doc
        .get_mut("iotronic")
        .and_then(|i| i.get_mut("board"))
        .and_then(Value::as_object_mut)
    {
        board.insert("status".into(), Value::String(status.into()));
    }
}

/// Where a board keeps its document: a file (a real board) or memory (simulated boards).
pub trait SettingsStore: Send + Sync {
    fn load(&self) -> Result<Value, SettingsError>;
    fn save(&self, doc: &Value) -> Result<(), SettingsError>;
}

/// `settings.json` on disk, written atomically (temporary file + rename) with mode 0600, since
/// it holds the board's secret.
pub struct FileSettings {
    path: PathBuf,
}

impl FileSettings {
    pub fn new(path: impl Into<PathBuf>) -> FileSettings {
        FileSettings { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> SettingsError {
        SettingsError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
}

impl SettingsStore for FileSettings {
    fn load(&self) -> Result<Value, SettingsError> {
        let raw = std::fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
        let doc: Value = serde_json::from_str(&raw).map_err(|e| SettingsError::Invalid {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        if !doc.is_object() {
            return Err(SettingsError::Invalid {
                path: self.path.display().to_string(),
                reason: "expected a JSON object".into(),
            });
        }
        Ok(doc)
    }

    fn save(&self, doc: &Value) -> Result<(), SettingsError> {
        use std::io::Write;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(|e| self.io(e))?;
        let text = serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into());
        f.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }
}

/// A document held in memory (the swarm's boards).
pub struct MemorySettings(Mutex<Value>);

impl MemorySettings {
    pub fn new(doc: Value) -> MemorySettings {
        MemorySettings(Mutex::new(doc))
    }
}

impl SettingsStore for MemorySettings {
    fn load(&self) -> Result<Value, SettingsError> {
        Ok(self.0.lock().map(|d| d.clone()).unwrap_or(Value::Null))
    }

    fn save(&self, doc: &Value) -> Result<(), SettingsError> {
        if let Ok(mut d) = self.0.lock() {
            *d = doc.clone();
        }
        Ok(())
    }
}

/// An empty object, for callers that need one.
pub fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_table() {
        let provisioned = json!({"iotronic": {"extra": {}, "board": {"uuid": "U", "code": "C",
            "name": "b1", "type": "server", "agent": "s4t", "status": "registered"},
            "wamp": {"registration-agent": {"url": "ws://r/", "realm": "s4t"},
                     "main-agent": {"url": "ws://m/", "realm": "s4t"}}},
            "s4t": {"board_secret": "S"}});
        let table = [
            (json!({}), Phase::FirstBoot),
            (
                first_boot_document(FIRST_BOOT_CODE, "ws://r/"),
                Phase::FirstBoot,
            ),
            (first_boot_document("", "ws://r/"), Phase::FirstBoot),
            (
                first_boot_document("C1", "ws://r/"),
                Phase::Unregistered {
                    code: "C1".into(),
                    url: "ws://r/".into(),
                },
            ),
            (
                provisioned,
                Phase::Provisioned(Identity {
                    uuid: "U".into(),
                    name: "b1".into(),
                    board_type: Some("server".into()),
                    agent: "s4t".into(),
                    main_url: "ws://m/".into(),
                    realm: "s4t".into(),
                    secret: Some("S".into()),
                    status: "registered".into(),
                }),
            ),
        ];
        for (doc, want) in table {
            assert_eq!(phase(&doc), want, "{doc}");
        }
    }

    #[test]
    fn file_settings_round_trip_privately() {
        let dir = std::env::temp_dir().join(format!("s4t-settings-{}", std::process::id()));
        let f = FileSettings::new(dir.join("settings.json"));
        let mut doc = first_boot_document("C1", "ws://r/");
        doc["unknown"] = json!({"kept": true});
        f.save(&doc).unwrap();
        assert_eq!(f.load().unwrap(), doc);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(f.path(), "[1]").unwrap();
        assert!(f
            .load()
            .unwrap_err()
            .to_string()
            .contains("expected a JSON object"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
