//! Which runtime runs a plugin, and within which limits. Both are read from the plugin's
//! `extra` (free-form upstream, so stock clients can set it):
//!
//! ```json
//! {"runtime": "wasm", "wasm": {"fuel": 1000000000, "memory_mib": 64, "wall_secs": 30, "files": false}}
//! ```
//!
//! Without `runtime` (or with `"python"`) the plugin is Lightning-rod Python. A WASM plugin's
//! `code` is the module as WebAssembly text (it starts with `(`) or as the base64 of the binary.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::InputError;

/// Fuel for one PluginCall when `wasm.fuel` is not set: about a second of straight-line work.
pub const DEFAULT_CALL_FUEL: u64 = 1_000_000_000;
/// Linear memory a module may hold when `wasm.memory_mib` is not set.
pub const DEFAULT_MEMORY_MIB: u32 = 64;
/// The most `wasm.memory_mib` may ask for (a wasm32 memory cannot pass 4 GiB).
pub const MAX_MEMORY_MIB: u32 = 4096;
/// The longest `wasm.wall_secs` (a day).
pub const MAX_WALL_SECS: f64 = 86_400.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
    /// Lightning-rod's `class Worker(Plugin.Plugin)`, in a `python3` process.
    Python,
    /// A WASI (preview 1) command module, in the agent's sandbox.
    Wasm(WasmLimits),
}

/// What a WASM plugin may use. Unset limits take the defaults when the plugin runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WasmLimits {
    /// Fuel (about one unit per instruction) for one run. Unset: [`DEFAULT_CALL_FUEL`] for a
    /// PluginCall, no limit for an asynchronous plugin (it runs until stopped).
    pub fuel: Option<u64>,
    /// Linear memory, MiB. Unset: [`DEFAULT_MEMORY_MIB`].
    pub memory_mib: Option<u32>,
    /// Wall-clock time for one run. Unset: the agent's PluginCall timeout for a call, no limit
    /// for an asynchronous plugin.
    pub wall_secs: Option<f64>,
    /// The plugin's own `data` directory is preopened as `/data` (read-write). No other file
    /// is ever visible, and WASI preview 1 has no network.
    pub files: bool,
}

impl WasmLimits {
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB) as usize * 1024 * 1024
    }

    /// The fuel of one run: `None` is unlimited.
    pub fn run_fuel(&self, call: bool) -> Option<u64> {
        match (self.fuel, call) {
            (Some(f), _) => Some(f),
            (None, true) => Some(DEFAULT_CALL_FUEL),
            (None, false) => None,
        }
    }

    /// As kept beside the plugin (plugins.json) and read back by [`Runtime::from_extra`].
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(f) = self.fuel {
            m.insert("fuel".into(), json!(f));
        }
        if let Some(mib) = self.memory_mib {
            m.insert("memory_mib".into(), json!(mib));
        }
        if let Some(w) = self.wall_secs {
            m.insert("wall_secs".into(), json!(w));
        }
        if self.files {
            m.insert("files".into(), json!(true));
        }
        Value::Object(m)
    }
}

impl Runtime {
    /// Reads `extra.runtime` and `extra.wasm`; errors name the field and say what fits.
    pub fn from_extra(extra: Option<&Value>) -> Result<Runtime, InputError> {
        let extra = match extra {
            None | Some(Value::Null) => return Ok(Runtime::Python),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(InputError::field("extra", "extra must be a JSON object.")),
        };
        match extra.get("runtime") {
            None | Some(Value::Null) => Ok(Runtime::Python),
            Some(Value::String(r)) if r == "python" => Ok(Runtime::Python),
            Some(Value::String(r)) if r == "wasm" => {
                Ok(Runtime::Wasm(read_limits(extra.get("wasm"))?))
            }
            Some(other) => Err(InputError::field(
                "extra.runtime",
                format!("extra.runtime {other} is not a plugin runtime: use \"python\" (the default) or \"wasm\"."),
            )),
        }
    }

    pub fn is_wasm(&self) -> bool {
        matches!(self, Runtime::Wasm(_))
    }
}

fn read_limits(raw: Option<&Value>) -> Result<WasmLimits, InputError> {
    let m = match raw {
        None | Some(Value::Null) => return Ok(WasmLimits::default()),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(InputError::field(
                "extra.wasm",
                "extra.wasm must be an object such as {\"fuel\": 1000000000, \"memory_mib\": 64, \"wall_secs\": 30, \"files\": false}.",
            ))
        }
    };
    const KNOWN: [&str; 4] = ["fuel", "memory_mib", "wall_secs", "files"];
    if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(InputError::field(
            &format!("extra.wasm.{k}"),
            format!(
                "extra.wasm.{k} is not a WASM limit: use fuel, memory_mib, wall_secs or files."
            ),
        ));
    }
    let fuel = match m.get("fuel") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(f) if f > 0 => Some(f),
            _ => {
                return Err(InputError::field(
                    "extra.wasm.fuel",
                    format!("extra.wasm.fuel must be a positive integer (units of fuel, about one per instruction), not {v}."),
                ))
            }
        },
    };
    let memory_mib = match m.get("memory_mib") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_MEMORY_MIB as u64).contains(&n) => Some(n as u32),
            _ => {
                return Err(InputError::field(
                    "extra.wasm.memory_mib",
                    format!(
                    "extra.wasm.memory_mib must be an integer from 1 to {MAX_MEMORY_MIB}, not {v}."
                ),
                ))
            }
        },
    };
    let wall_secs = match m.get("wall_secs") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(s) if s > 0.0 && s <= MAX_WALL_SECS => Some(s),
            _ => {
                return Err(InputError::field(
                    "extra.wasm.wall_secs",
                    format!("extra.wasm.wall_secs must be a number of seconds above 0 and at most {MAX_WALL_SECS}, not {v}."),
                ))
            }
        },
    };
    let files = match m.get("files") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(InputError::field(
                "extra.wasm.files",
                format!("extra.wasm.files must be true or false, not {v}."),
            ))
        }
    };
    Ok(WasmLimits {
        fuel,
        memory_mib,
        wall_secs,
        files,
    })
}

/// A WASM plugin's `code`.
#[derive(Debug, Clone, PartialEq)]
pub enum WasmCode {
    /// WebAssembly text, compiled by the agent.
    Text(String),
    /// The binary module.
    Binary(Vec<u8>),
}

const WASM_MAGIC: &[u8] = b"\0asm";

/// Tells the two forms of a WASM plugin's code apart, and decodes the base64 one.
pub fn wasm_code(code: &str) -> Result<WasmCode, InputError> {
    let trimmed = code.trim_start();
    if trimmed.starts_with('(') || trimmed.starts_with(";;") {
        return Ok(WasmCode::Text(code.to_string()));
    }
    let compact: String = code.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            InputError::field(
                "code",
                format!("code of a WASM plugin must be WebAssembly text (starting with \"(\") or the base64 of a .wasm module; it is neither ({e})."),
            )
        })?;
    if !bytes.starts_with(WASM_MAGIC) {
        return Err(InputError::field(
            "code",
            "code of a WASM plugin decodes from base64, but not to a WebAssembly module (no \\0asm header).",
        ));
    }
    Ok(WasmCode::Binary(bytes))
}

/// Checks a plugin as it would be stored: its runtime, limits and, for WASM, the form of its
/// code.
pub fn check_plugin(extra: Option<&Value>, code: &str) -> Result<Runtime, InputError> {
    let runtime = Runtime::from_extra(extra)?;
    if runtime.is_wasm() {
        wasm_code(code)?;
    }
    Ok(runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_table() {
        let wasm = |l: WasmLimits| Ok::<_, String>(Runtime::Wasm(l));
        let cases: Vec<(Value, Result<Runtime, String>)> = vec![
            (Value::Null, Ok(Runtime::Python)),
            (json!({}), Ok(Runtime::Python)),
            (
                json!({"runtime": "python", "other": 1}),
                Ok(Runtime::Python),
            ),
            (json!({"runtime": "wasm"}), wasm(WasmLimits::default())),
            (
                json!({"runtime": "wasm", "wasm": {"fuel": 5, "memory_mib": 2, "wall_secs": 0.5, "files": true}}),
                wasm(WasmLimits {
                    fuel: Some(5),
                    memory_mib: Some(2),
                    wall_secs: Some(0.5),
                    files: true,
                }),
            ),
            (json!({"runtime": "lua"}), Err("extra.runtime".into())),
            (json!({"runtime": 3}), Err("extra.runtime".into())),
            (json!([1]), Err("extra".into())),
            (
                json!({"runtime": "wasm", "wasm": 1}),
                Err("extra.wasm".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"fuel": 0}}),
                Err("extra.wasm.fuel".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"fuel": -1}}),
                Err("extra.wasm.fuel".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"fuel": "lots"}}),
                Err("extra.wasm.fuel".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"memory_mib": 0}}),
                Err("extra.wasm.memory_mib".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"memory_mib": 4097}}),
                Err("extra.wasm.memory_mib".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"wall_secs": 0}}),
                Err("extra.wasm.wall_secs".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"wall_secs": 1e9}}),
                Err("extra.wasm.wall_secs".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"files": "yes"}}),
                Err("extra.wasm.files".into()),
            ),
            (
                json!({"runtime": "wasm", "wasm": {"network": true}}),
                Err("extra.wasm.network".into()),
            ),
        ];
        for (extra, want) in cases {
            let got = Runtime::from_extra(Some(&extra)).map_err(|e| e.field.unwrap());
            assert_eq!(got, want, "extra {extra}");
        }
    }

    #[test]
    fn limits_round_trip_through_json() {
        let l = WasmLimits {
            fuel: Some(7),
            memory_mib: None,
            wall_secs: Some(2.5),
            files: true,
        };
        let back = Runtime::from_extra(Some(&json!({"runtime": "wasm", "wasm": l.to_json()})));
        assert_eq!(back.unwrap(), Runtime::Wasm(l));
    }

    #[test]
    fn run_fuel_and_memory_defaults() {
        let d = WasmLimits::default();
        assert_eq!(d.run_fuel(true), Some(DEFAULT_CALL_FUEL));
        assert_eq!(d.run_fuel(false), None);
        assert_eq!(d.memory_bytes(), 64 << 20);
        let set = WasmLimits { fuel: Some(9), ..d };
        assert_eq!(
            (set.run_fuel(true), set.run_fuel(false)),
            (Some(9), Some(9))
        );
    }

    #[test]
    fn code_forms() {
        assert_eq!(
            wasm_code("  (module)").unwrap(),
            WasmCode::Text("  (module)".into())
        );
        assert!(matches!(
            wasm_code(";; a comment\n(module)").unwrap(),
            WasmCode::Text(_)
        ));
        // "\0asm\x01\0\0\0", wrapped over two lines.
        assert_eq!(
            wasm_code("AGFzbQ\nEAAAA=").unwrap(),
            WasmCode::Binary(b"\0asm\x01\0\0\0".to_vec())
        );
        for bad in ["print('hi')", "aGVsbG8=", ""] {
            assert_eq!(
                wasm_code(bad).unwrap_err().field.as_deref(),
                Some("code"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn check_plugin_looks_at_code_only_for_wasm() {
        assert_eq!(
            check_plugin(None, "class Worker: pass").unwrap(),
            Runtime::Python
        );
        let wasm = json!({"runtime": "wasm"});
        assert!(check_plugin(Some(&wasm), "(module)").is_ok());
        assert_eq!(
            check_plugin(Some(&wasm), "class Worker: pass")
                .unwrap_err()
                .field
                .as_deref(),
            Some("code")
        );
    }
}
