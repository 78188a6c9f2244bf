//! WASM plugins: a WASI (preview 1) command module, run by wasmtime inside the agent.
//!
//! The plugin's parameters arrive as JSON on stdin and in `S4T_PARAMS`; a PluginCall's result
//! is what it writes to stdout (JSON, or else the text as a string). Its stderr, and an
//! asynchronous plugin's stdout, go to the plugin's log. Each run has its own store, under
//! three limits: fuel (about one unit per instruction), linear memory and wall-clock time. The
//! module sees no file unless granted its own `data` directory (`/data`), and no network (WASI
//! preview 1 has none). A trap or an exhausted limit ends the run with an error that says which;
//! it never reaches the agent.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{oneshot, watch};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, ResourceLimiter, Store, Trap};
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use s4t_model::plugin_runtime::{WasmCode, WasmLimits};

use super::decide::First;
use super::worker::{Mode, Worker};

/// The most of stdout a PluginCall keeps as its result; a longer write fails in the module.
pub const RESULT_MAX: usize = 1 << 20;

/// Fuel between two returns to the agent's scheduler: a busy module cannot hold a thread, and a
/// stop or the wall-clock limit takes effect within about a millisecond.
const YIELD_EVERY: u64 = 1_000_000;

/// The most elements a module's tables may hold.
const TABLE_ELEMENTS_MAX: usize = 1_000_000;

/// One engine for the whole agent process (the swarm runs many boards in one).
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        // Deep recursion traps ("call stack exhausted") well before the host stack is at risk.
        config.max_wasm_stack(512 * 1024);
        Engine::new(&config).expect("this wasmtime configuration is valid")
    })
}

/// The module as the agent keeps it (`<uuid>.wasm`): text is compiled to the binary format.
pub fn to_binary(code: WasmCode) -> Result<Vec<u8>, String> {
    match code {
        WasmCode::Binary(b) => Ok(b),
        WasmCode::Text(t) => {
            wat::parse_str(&t).map_err(|e| format!("the WebAssembly text does not parse: {e}"))
        }
    }
}

/// A compiled module, linked against WASI preview 1, ready to instantiate.
pub struct Program {
    pre: InstancePre<Guest>,
}

impl Program {
    /// Compiles and links `wasm` (CPU-bound: call it off the async threads).
    pub fn compile(wasm: &[u8]) -> Result<Program, String> {
        let module = Module::new(engine(), wasm)
            .map_err(|e| format!("the WASM module does not compile: {e:#}"))?;
        match module.get_export("_start") {
            Some(wasmtime::ExternType::Func(_)) => {}
            _ => {
                return Err(
                    "the WASM module has no _start function: build it as a WASI command (a program with a main)".into(),
                )
            }
        }
        let imports_wasi = module
            .imports()
            .any(|i| i.module() == "wasi_snapshot_preview1");
        let exports_memory = matches!(
            module.get_export("memory"),
            Some(wasmtime::ExternType::Memory(_))
        );
        if imports_wasi && !exports_memory {
            return Err(
                "the WASM module calls WASI but exports no memory named \"memory\" (WASI reads and writes through it)".into(),
            );
        }
        let mut linker: Linker<Guest> = Linker::new(engine());
        p1::add_to_linker_async(&mut linker, |g: &mut Guest| &mut g.wasi)
            .map_err(|e| format!("linking WASI: {e:#}"))?;
        let pre = linker.instantiate_pre(&module).map_err(|e| {
            format!("the WASM module imports what the agent does not give (only wasi_snapshot_preview1): {e:#}")
        })?;
        Ok(Program { pre })
    }
}

/// The store's data: the WASI context and the memory cap.
struct Guest {
    wasi: WasiP1Ctx,
    memory: MemoryCap,
}

struct MemoryCap {
    max_bytes: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            // A trap with this text, rather than memory.grow's silent -1: the plugin's author
            // learns which limit to raise.
            wasmtime::bail!(
                "memory limit: the module asked for {} MiB of linear memory, its limit is {} MiB (extra.wasm.memory_mib)",
                desired.div_ceil(1 << 20),
                self.max_bytes >> 20
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

/// One run of a WASM plugin.
pub struct Run {
    pub mode: Mode,
    pub uuid: String,
    pub name: String,
    pub params: Value,
    /// The board's identity, as the Python runtime gets it.
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    /// Preopened as `/data` when the plugin was granted files.
    pub data_dir: PathBuf,
    pub limits: WasmLimits,
    /// Wall-clock limit when `limits.wall_secs` is unset (`None`: none).
    pub default_wall: Option<Duration>,
}

/// Why a run did not complete.
enum Failure {
    /// Before the module ran: Lightning-rod's load errors.
    Load(String),
    /// While it ran.
    Run(String),
}

/// Starts the run as a task; the receiver gets what a Python runner would have said first.
pub fn spawn(id: u64, program: Arc<Program>, run: Run) -> (Worker, oneshot::Receiver<First>) {
    let (first_tx, first_rx) = oneshot::channel();
    let (exit_tx, exit) = watch::channel(None);
    let stop = Arc::new(watch::Sender::new(false));
    let mut asked = stop.subscribe();
    tokio::spawn(async move {
        let wall = run
            .limits
            .wall_secs
            .map(Duration::from_secs_f64)
            .or(run.default_wall);
        let mut first = Some(first_tx);
        let outcome = tokio::select! {
            r = execute(&program, &run, &mut first) => r,
            _ = asked.wait_for(|s| *s) => Err(Failure::Run("stopped".into())),
            _ = sleep_or_never(wall) => Err(Failure::Run(format!(
                "wall-clock limit: the run took longer than {:.3} s (extra.wasm.wall_secs)",
                wall.unwrap_or_default().as_secs_f64()
            ))),
        };
        let (said, status) = match outcome {
            Ok(stdout) => (First::Result(result_of(&stdout)), "completed".to_string()),
            Err(Failure::Load(m)) => (First::LoadFailed(m.clone()), m),
            Err(Failure::Run(m)) => (First::RunFailed(m.clone()), m),
        };
        if status != "completed" {
            append_log(
                &run.log,
                &format!("[s4t] WASM plugin {}: {status}\n", run.uuid),
            );
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(said);
        }
        let _ = exit_tx.send(Some(status));
    });
    (Worker::task(id, stop, exit), first_rx)
}

async fn sleep_or_never(wall: Option<Duration>) {
    match wall {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The exit code a run's end status stands for: 0 for `completed`, the module's own status
/// when it exited with one, 1 for a trap or an exhausted limit.
pub fn exit_code_of(status: &str) -> i32 {
    if status == "completed" {
        return 0;
    }
    status
        .strip_prefix(EXITED_WITH)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

const EXITED_WITH: &str = "the plugin exited with status ";

/// stdout as a PluginCall result: JSON when it is JSON, else the text.
fn result_of(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let trimmed = text.trim();
    serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(trimmed.to_string()))
}

fn append_log(log: &std::path::Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Instantiates and runs `_start`; stdout is returned for a call. An asynchronous run says
/// `Started` through `first` once the module is instantiated.
async fn execute(
    program: &Program,
    run: &Run,
    first: &mut Option<oneshot::Sender<First>>,
) -> Result<Vec<u8>, Failure> {
    let load = |what: &str, e: &dyn std::fmt::Display| Failure::Load(format!("{what}: {e}"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&run.log)
        .map_err(|e| load(&run.log.display().to_string(), &e))?;
    let err_log = log
        .try_clone()
        .map_err(|e| load(&run.log.display().to_string(), &e))?;
    let params = run.params.to_string();
    let stdout = MemoryOutputPipe::new(RESULT_MAX);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdin(MemoryInputPipe::new(params.clone().into_bytes()))
        .stderr(OutputFile::new(err_log))
        .args(&[run.name.as_str()])
        .env("S4T_PARAMS", &params)
        .env("S4T_PLUGIN_UUID", &run.uuid)
        .env("S4T_PLUGIN_NAME", &run.name)
        .envs(&run.env);
    match run.mode {
        Mode::Call => wasi.stdout(stdout.clone()),
        Mode::Async => wasi.stdout(OutputFile::new(log)),
    };
    if run.limits.files {
        std::fs::create_dir_all(&run.data_dir)
            .map_err(|e| load(&run.data_dir.display().to_string(), &e))?;
        wasi.preopened_dir(&run.data_dir, "/data", FsPerms::ReadWrite)
            .map_err(|e| load(&run.data_dir.display().to_string(), &e))?;
    }
    let mut store = Store::new(
        engine(),
        Guest {
            wasi: wasi.build_p1(),
            memory: MemoryCap {
                max_bytes: run.limits.memory_bytes(),
            },
        },
    );
    store.limiter(|g| &mut g.memory);
    let fuel = run.limits.run_fuel(run.mode == Mode::Call);
    let setup = |e: wasmtime::Error| Failure::Load(format!("setting up the WASM store: {e:#}"));
    store.set_fuel(fuel.unwrap_or(u64::MAX)).map_err(setup)?;
    store
        .fuel_async_yield_interval(Some(YIELD_EVERY))
        .map_err(setup)?;
    let instance = program
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| Failure::Load(format!("instantiating the WASM module: {e:#}")))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| Failure::Load(format!("the WASM module's _start: {e:#}")))?;
    if run.mode == Mode::Async {
        if let Some(tx) = first.take() {
            let _ = tx.send(First::Started);
        }
    }
    match start.call_async(&mut store, ()).await {
        Ok(()) => {}
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => {}
            Some(I32Exit(code)) => {
                return Err(Failure::Run(format!(
                    "{EXITED_WITH}{code} (its stderr is in the plugin log)"
                )))
            }
            None if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) => {
                return Err(Failure::Run(format!(
                    "fuel exhausted: the run used all of its {} units of fuel (extra.wasm.fuel)",
                    fuel.unwrap_or(u64::MAX)
                )))
            }
            None => return Err(Failure::Run(describe_trap(&e))),
        },
    }
    drop(store);
    Ok(stdout.contents().to_vec())
}

/// What went wrong, without the wasm backtrace wasmtime wraps around it.
fn describe_trap(e: &wasmtime::Error) -> String {
    let root = e.root_cause().to_string();
    // The memory cap's refusal already says which limit.
    if root.starts_with("memory limit:") {
        return root;
    }
    match e.downcast_ref::<Trap>() {
        Some(trap) => format!("the WASM plugin trapped: {trap}"),
        None => format!("the WASM plugin failed: {root}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s4t_model::plugin_runtime::wasm_code;
    use serde_json::json;

    /// Sums the integers in its parameters (`[1, 2, 3]` → `6`).
    const SUM_WAT: &str = include_str!("../../testdata/sum.wat");

    const TICKER_WAT: &str = include_str!("../../testdata/ticker.wat");

    const SPIN_WAT: &str = r#"(module (func (export "_start") (loop $l (br $l))))"#;

    const GROW_WAT: &str = r#"(module (memory 1)
  (func (export "_start") (drop (memory.grow (i32.const 100)))))"#;

    const EXIT_3_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))"#;

    fn program(wat: &str) -> Arc<Program> {
        let bin = to_binary(wasm_code(wat).unwrap()).unwrap();
        Arc::new(Program::compile(&bin).unwrap())
    }

    fn run(mode: Mode, params: Value, limits: WasmLimits, tag: &str) -> Run {
        let dir = crate::plugins::test_dir(tag);
        Run {
            mode,
            uuid: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
            name: "t".into(),
            params,
            env: vec![],
            log: dir.join("t.log"),
            data_dir: dir.join("data"),
            limits,
            default_wall: Some(Duration::from_secs(30)),
        }
    }

    async fn call(wat: &str, params: Value, limits: WasmLimits) -> First {
        let (_w, first) = spawn(1, program(wat), run(Mode::Call, params, limits, "wasm"));
        first.await.unwrap()
    }

    #[tokio::test]
    async fn computes_from_its_parameters() {
        for (params, sum) in [
            (json!([1, 2, 3, 4]), 10),
            (json!([250, 750, 0]), 1000),
            (json!([]), 0),
        ] {
            let got = call(SUM_WAT, params.clone(), WasmLimits::default()).await;
            assert_eq!(got, First::Result(json!(sum)), "{params}");
        }
    }

    #[tokio::test]
    async fn an_endless_loop_is_stopped_by_fuel_or_wall_clock() {
        let fuel = WasmLimits {
            fuel: Some(5_000_000),
            ..WasmLimits::default()
        };
        match call(SPIN_WAT, json!({}), fuel).await {
            First::RunFailed(m) => assert!(m.starts_with("fuel exhausted"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Unlimited fuel (an asynchronous run without `fuel`): the wall clock ends it.
        let wall = WasmLimits {
            wall_secs: Some(0.2),
            ..WasmLimits::default()
        };
        let (w, first) = spawn(
            2,
            program(SPIN_WAT),
            run(Mode::Async, json!({}), wall, "wasm"),
        );
        assert_eq!(first.await.unwrap(), First::Started);
        tokio::time::timeout(Duration::from_secs(10), w.ended())
            .await
            .unwrap();
        assert!(!w.alive());
    }

    #[tokio::test]
    async fn a_running_plugin_writes_its_log_and_stops_when_asked() {
        for wat in [TICKER_WAT, SPIN_WAT] {
            let r = run(Mode::Async, json!({}), WasmLimits::default(), "wasm");
            let log = r.log.clone();
            let (w, first) = spawn(3, program(wat), r);
            assert_eq!(first.await.unwrap(), First::Started);
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(w.alive());
            tokio::time::timeout(Duration::from_secs(10), w.terminate(Duration::from_secs(5)))
                .await
                .unwrap();
            assert!(!w.alive());
            if wat == TICKER_WAT {
                let text = std::fs::read_to_string(&log).unwrap();
                assert!(text.matches("tick").count() >= 2, "{text}");
            }
        }
    }

    #[tokio::test]
    async fn memory_over_the_limit_is_refused_with_its_name() {
        let small = WasmLimits {
            memory_mib: Some(2),
            ..WasmLimits::default()
        };
        match call(GROW_WAT, json!({}), small).await {
            First::RunFailed(m) => {
                assert!(m.starts_with("memory limit:") && m.contains("2 MiB"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        // Within the default 64 MiB, the same growth is fine.
        assert_eq!(
            call(GROW_WAT, json!({}), WasmLimits::default()).await,
            First::Result(json!(""))
        );
    }

    #[tokio::test]
    async fn exit_status_and_bad_modules_are_reported() {
        match call(EXIT_3_WAT, json!({}), WasmLimits::default()).await {
            First::RunFailed(m) => assert!(m.contains("status 3"), "{m}"),
            other => panic!("{other:?}"),
        }
        let no_memory = to_binary(
            wasm_code(
                r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (func (export "_start")))"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(Program::compile(&no_memory)
            .err()
            .unwrap()
            .contains("exports no memory"));
        match call(
            r#"(module (func (export "_start") unreachable))"#,
            json!({}),
            WasmLimits::default(),
        )
        .await
        {
            First::RunFailed(m) => assert!(
                m.starts_with("the WASM plugin trapped:") && m.contains("unreachable"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        let no_start = to_binary(wasm_code("(module)").unwrap()).unwrap();
        assert!(Program::compile(&no_start)
            .err()
            .unwrap()
            .contains("_start"));
        let foreign = to_binary(
            wasm_code(r#"(module (import "env" "f" (func)) (func (export "_start")))"#).unwrap(),
        )
        .unwrap();
        assert!(Program::compile(&foreign)
            .err()
            .unwrap()
            .contains("imports"));
        assert!(to_binary(wasm_code("(module (func").unwrap()).is_err());
        assert!(Program::compile(b"\0asm\x01\0\0\0garbage")
            .err()
            .unwrap()
            .contains("does not compile"));
    }
}
