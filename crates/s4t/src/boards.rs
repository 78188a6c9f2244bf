//! `s4t agent` (a board) and `s4t swarm` (many simulated boards in one process).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use s4t_agent::settings::{self, FileSettings, MemorySettings, Phase, SettingsStore};
use s4t_agent::{AgentConfig, AgentState, Device, DevicePolicy};

use crate::serve::{init_logging, say};

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Where the agent keeps its state (settings.json unless --settings) and its plugins
    /// (plugins.json, plugins/UUID/), as Lightning-rod's home (/var/lib/iotronic) does.
    #[arg(long, env = "S4T_AGENT_DIR", default_value = "/var/lib/s4t-agent")]
    data_dir: PathBuf,
    /// The settings file. Point it at a Lightning-rod's /etc/iotronic/settings.json to take over
    /// that board as it is.
    #[arg(long)]
    settings: Option<PathBuf>,
    /// First boot: the board's registration code (from `s4t board create`). Ignored once the
    /// board is registered.
    #[arg(long, requires = "cloud")]
    code: Option<String>,
    /// First boot: the cloud's WAMP URL (ws://HOST:8181/ or wss://...).
    #[arg(long, requires = "code")]
    cloud: Option<String>,
    /// Skip TLS certificate verification (self-signed test clouds only).
    #[arg(long)]
    insecure: bool,
    /// Extra CA certificates (PEM) to trust for wss://.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Let the cloud reboot this machine (DeviceReboot).
    #[arg(long)]
    allow_reboot: bool,
    /// Let the cloud install and remove packages (DevicePkgOperation: apt, pip, npm).
    #[arg(long)]
    allow_packages: bool,
    /// Let the cloud upgrade the agent (DeviceUpgradeLR) by running this command; `{version}` is
    /// replaced by the requested version.
    #[arg(long)]
    upgrade_command: Option<String>,
    /// Seconds between WebSocket pings; the link counts as dead after twice as long in silence.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    ping_interval: u64,
    /// The name DevicePing reports (default: this host's name).
    #[arg(long)]
    hostname: Option<String>,
    /// The Python interpreter that runs plugins (one process per plugin).
    #[arg(long, env = "S4T_AGENT_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// The local address the agent's connections to the cloud leave from (multi-homed boards).
    #[arg(long)]
    source_addr: Option<IpAddr>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Writes a first-boot document unless the board already has a code or an identity.
pub fn prepare_first_boot(
    store: &dyn SettingsStore,
    code: &str,
    cloud: &str,
) -> anyhow::Result<()> {
    let current = store.load().ok();
    let fresh = match current.as_ref().map(settings::phase) {
        None | Some(Phase::FirstBoot) => true,
        Some(Phase::Unregistered { code: old, .. }) => old != code,
        Some(Phase::Provisioned(_)) => false,
    };
    if fresh {
        store
            .save(&settings::first_boot_document(code, cloud))
            .context("cannot write the settings")?;
    }
    Ok(())
}

fn state_line(s: &AgentState) -> String {
    match s {
        AgentState::Starting => "starting".into(),
        AgentState::FirstBoot => {
            "waiting for a registration code (s4t agent --code CODE --cloud URL)".into()
        }
        AgentState::Registering => "registering".into(),
        AgentState::Connecting => "connecting".into(),
        AgentState::Online { uuid, session } => {
            format!("online as board {uuid} (session {session})")
        }
        AgentState::Retrying { error } => format!("retrying: {error}"),
        AgentState::Stopped => "stopped".into(),
    }
}

pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    init_logging();
    let path = args
        .settings
        .clone()
        .unwrap_or_else(|| args.data_dir.join("settings.json"));
    let store = Arc::new(FileSettings::new(&path));
    if let (Some(code), Some(cloud)) = (&args.code, &args.cloud) {
        url::Url::parse(cloud).with_context(|| format!("--cloud {cloud}: not a URL"))?;
        prepare_first_boot(store.as_ref(), code, cloud)?;
    }
    let extra_ca_pem = match &args.ca_file {
        Some(f) => Some(std::fs::read(f).with_context(|| format!("--ca-file {}", f.display()))?),
        None => None,
    };
    let mut config = AgentConfig::new(
        store,
        Device {
            hostname: args.hostname.clone().unwrap_or_else(host_name),
            policy: DevicePolicy {
                allow_reboot: args.allow_reboot,
                allow_packages: args.allow_packages,
                upgrade_command: args.upgrade_command.clone(),
            },
        },
    );
    config.tls_insecure = args.insecure;
    config.extra_ca_pem = extra_ca_pem;
    config.ping_interval = Duration::from_secs(args.ping_interval);
    config.local_addr = args.source_addr;
    config.data_dir = Some(args.data_dir.clone());
    config.python = args.python.clone();
    if args.insecure {
        tracing::warn!("--insecure: the cloud's TLS certificate is not verified");
    }
    say(&format!("s4t agent: settings in {}", path.display()));
    let mut handle = s4t_agent::spawn(config);
    let mut state = handle.state.clone();
    let printer = tokio::spawn(async move {
        loop {
            say(&format!(
                "s4t agent: {}",
                state_line(&state.borrow_and_update())
            ));
            if state.changed().await.is_err() {
                break;
            }
        }
    });
    crate::serve::stop_signal().await;
    let _ = &mut handle;
    handle.stop().await;
    printer.abort();
    Ok(())
}

#[derive(Args, Debug)]
pub struct SwarmArgs {
    /// The cloud's WAMP URL.
    #[arg(long)]
    cloud: String,
    /// How many boards.
    #[arg(long, default_value_t = 100)]
    boards: u32,
    /// Board codes are PREFIX0, PREFIX1, ...
    #[arg(long, default_value = "SWARM-")]
    code_prefix: String,
    /// Create the boards through this REST API first (with --token), named swarm-CODE.
    #[arg(long, requires = "token")]
    api: Option<String>,
    /// With --api: put the boards in this fleet (created when missing).
    #[arg(long, requires = "api")]
    fleet: Option<String>,
    /// API token for --api.
    #[arg(long, env = "S4T_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Spread the boards' sockets over 127.0.0.N, N from 2 up to this (past the ephemeral port
    /// range of a single source address). 0: one source address.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=254))]
    source_ips: u8,
    /// Seconds between WebSocket pings per board.
    #[arg(long, default_value_t = 30)]
    ping_interval: u64,
    /// New boards connecting per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Skip TLS certificate verification.
    #[arg(long)]
    insecure: bool,
    /// Exit once every board is online (for scripts), instead of running until Ctrl-C.
    #[arg(long)]
    exit_when_online: bool,
}

async fn create_swarm_boards(
    api: &str,
    token: &str,
    codes: &[String],
    fleet: Option<&str>,
) -> anyhow::Result<()> {
    let client = s4t_client::Client::new(api, Some(token.to_string()))?;
    if let Some(f) = fleet {
        if client.get(&format!("v1/fleets/{f}")).await.is_err() {
            let body = serde_json::json!({"name": f});
            client
                .call(s4t_client::Method::POST, "/v1/fleets", Some(&body))
                .await
                .map_err(|e| anyhow::anyhow!("creating fleet {f}: {e}"))?;
        }
    }
    let fleet = fleet.map(str::to_string);
    let existing: std::collections::HashSet<String> = client
        .list_all("/v1/boards?fields=code", "boards")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .iter()
        .filter_map(|b| b["code"].as_str().map(str::to_string))
        .collect();
    let todo: Vec<&String> = codes.iter().filter(|c| !existing.contains(*c)).collect();
    let client = Arc::new(client);
    let mut set = tokio::task::JoinSet::new();
    for chunk in todo.chunks(todo.len().div_ceil(16).max(1)) {
        let client = client.clone();
        let chunk: Vec<String> = chunk.iter().map(|s| s.to_string()).collect();
        let fleet = fleet.clone();
        set.spawn(async move {
            for code in chunk {
                let body = serde_json::json!({"name": format!("swarm-{code}").to_lowercase(), "code": code,
                    "type": "virtual", "fleet": fleet,
                    "location": [{"latitude": "0", "longitude": "0", "altitude": "0"}]});
                client
                    .call(s4t_client::Method::POST, "/v1/boards", Some(&body))
                    .await
                    .map_err(|e| anyhow::anyhow!("creating {code}: {e}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    say(&format!(
        "s4t swarm: created {} boards ({} existed)",
        todo.len(),
        codes.len() - todo.len()
    ));
    Ok(())
}

pub async fn swarm(args: SwarmArgs) -> anyhow::Result<()> {
    init_logging();
    if args.boards == 0 {
        bail!("--boards must be at least 1");
    }
    url::Url::parse(&args.cloud).with_context(|| format!("--cloud {}: not a URL", args.cloud))?;
    let codes: Vec<String> = (0..args.boards)
        .map(|i| format!("{}{i}", args.code_prefix))
        .collect();
    if let (Some(api), Some(token)) = (&args.api, &args.token) {
        create_swarm_boards(api, token, &codes, args.fleet.as_deref()).await?;
    }
    let started = Instant::now();
    let mut handles = Vec::with_capacity(codes.len());
    let gap = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    for (i, code) in codes.iter().enumerate() {
        let store = Arc::new(MemorySettings::new(settings::first_boot_document(
            code,
            &args.cloud,
        )));
        let mut config = AgentConfig::new(
            store,
            Device {
                hostname: format!("swarm-{code}").to_lowercase(),
                policy: DevicePolicy::default(),
            },
        );
        config.tls_insecure = args.insecure;
        config.simulated_plugins = true;
        config.ping_interval = Duration::from_secs(args.ping_interval.max(1));
        config.backoff_min = Duration::from_secs(1);
        if args.source_ips > 1 {
            let n = 2 + (i as u32 % (args.source_ips as u32 - 1)) as u8;
            config.local_addr = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)));
        }
        handles.push(s4t_agent::spawn(config));
        if let Some(gap) = gap {
            tokio::time::sleep(gap).await;
        } else if i % 256 == 255 {
            tokio::task::yield_now().await;
        }
    }
    say(&format!(
        "s4t swarm: {} boards started in {:.2} s",
        handles.len(),
        started.elapsed().as_secs_f64()
    ));
    let total = handles.len();
    let mut all_online_reported = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::serve::stop_signal() => break,
        }
        let online = handles
            .iter()
            .filter(|h| matches!(*h.state.borrow(), AgentState::Online { .. }))
            .count();
        if online == total && !all_online_reported {
            all_online_reported = true;
            say(&format!(
                "s4t swarm: all {total} boards online after {:.2} s",
                started.elapsed().as_secs_f64()
            ));
            if args.exit_when_online {
                break;
            }
        } else if online < total {
            all_online_reported = false;
            say(&format!(
                "s4t swarm: {online}/{total} online ({:.0} s)",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    for h in handles {
        h.stop().await;
    }
    Ok(())
}
