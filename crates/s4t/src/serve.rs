//! `s4t cloud` and `s4t dev`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use s4t_cloud::{CloudConfig, RunningCloud};

#[derive(Args, Debug)]
pub struct CloudArgs {
    /// Holds the SQLite database (unless --database-url) and the admin token.
    #[arg(long, env = "S4T_DATA_DIR", default_value = "s4t-data")]
    data_dir: PathBuf,
    /// postgres://USER@HOST/DB for PostgreSQL; default: SQLite at DIR/s4t.db.
    #[arg(long, env = "S4T_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the REST API listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8812")]
    api_addr: String,
    /// Trust X-User-Id / X-Project-Id / X-Roles headers and check no token (upstream noauth).
    /// For tests and trusted networks only.
    #[arg(long)]
    noauth: bool,
    /// Base URL written into links (default: from the request's Host header).
    #[arg(long)]
    public_url: Option<String>,
    /// Where the board WAMP router listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8181")]
    wamp_addr: String,
    /// The WAMP URL written into board configs (default: ws://WAMP_ADDR/, wss:// with TLS). Set it when boards
    /// reach the cloud through another name or a proxy.
    #[arg(long)]
    wamp_public_url: Option<String>,
    /// PEM certificate chain for the WAMP router; with --wamp-tls-key it speaks wss:// only.
    #[arg(long, requires = "wamp_tls_key")]
    wamp_tls_cert: Option<PathBuf>,
    /// PEM private key for --wamp-tls-cert.
    #[arg(long, requires = "wamp_tls_cert")]
    wamp_tls_key: Option<PathBuf>,
    /// Accept boards that do not authenticate: stock Lightning-rods cannot. Compatibility mode;
    /// any client that knows a board's uuid can then act as that board.
    #[arg(long)]
    allow_anonymous_boards: bool,
    /// Seconds between WebSocket pings to boards; a board silent for twice as long is offline.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    wamp_ping_interval: u64,
    /// Seconds a board call may take before the API answers with an error.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    board_call_timeout: u64,
    /// The stable agent name boards are provisioned with: their RPC prefix. Never a host name.
    #[arg(long, default_value = "s4t")]
    agent_name: String,
    #[command(flatten)]
    tunnels: TunnelArgs,
}

/// The service tunnel server.
#[derive(Args, Debug)]
pub struct TunnelArgs {
    /// Where the service tunnel server (wstun protocol) listens. Stock Lightning-rods use port
    /// 8080 on the host of their WAMP URL. TLS with the WAMP certificate when it has one.
    /// `off`: no tunnel server (services cannot be enabled).
    #[arg(long, default_value = "127.0.0.1:8080")]
    tunnel_addr: String,
    /// The tunnel URL s4t agents are told (default: the WAMP URL's scheme and host, with the tunnel
    /// server's port).
    #[arg(long)]
    tunnel_public_url: Option<String>,
    /// Public ports handed out to exposed services, FIRST-LAST. IoTronic's defaults give 50001-50098.
    #[arg(long, default_value = "50001-50098", value_parser = parse_ports)]
    public_ports: std::ops::RangeInclusive<u16>,
    /// The address public ports are opened on (default: the --tunnel-addr address). Use 0.0.0.0
    /// to serve exposed services on every interface.
    #[arg(long)]
    public_host: Option<std::net::IpAddr>,
    /// Seconds without traffic after which a tunnelled connection is closed (0: never).
    #[arg(long, default_value_t = 0)]
    tunnel_idle_timeout: u64,
    /// Where the webservice HTTPS front listens (`https://NAME.DNS.ZONE` to a board's port).
    /// Off unless given; needs the tunnel server.
    #[arg(long)]
    https_addr: Option<String>,
    /// Where the front's plain HTTP listener listens (301 to https for secure webservices).
    #[arg(long, requires = "https_addr")]
    http_addr: Option<String>,
    /// PEM certificate chain for the front (a wildcard for your zones). Without it, the cloud
    /// issues certificates from its own CA, DATA-DIR/webservice-ca.pem, which clients must trust.
    #[arg(long, requires_all = ["https_key", "https_addr"])]
    https_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --https-cert.
    #[arg(long, requires = "https_cert")]
    https_key: Option<std::path::PathBuf>,
    /// Where the overlay network hub listens for boards' encrypted tunnels (UDP). Ports on s4t
    /// networks carry frames through it; boards fall back to the tunnel server's `/overlay`
    /// WebSocket when UDP cannot pass. `off`: no hub.
    #[arg(long, default_value = "127.0.0.1:8814")]
    overlay_addr: String,
    /// HOST:PORT boards are told to send overlay packets to (default: --overlay-addr, or the
    /// host of the WAMP URL with the hub's port when the hub listens on 0.0.0.0).
    #[arg(long)]
    overlay_public_addr: Option<String>,
    /// Give this host a TAP on every overlay network (named s4tn + 11 hex digits of the network
    /// uuid, with the network's gateway address when it has one), so that it joins the segment.
    /// Needs CAP_NET_ADMIN.
    #[arg(long)]
    bridge_networks: bool,
    /// Seconds a board may stay offline before its workload replicas move to other boards
    /// (boards stop replicas themselves once cut off this long).
    #[arg(long, default_value_t = 60.0)]
    workload_grace: f64,
    /// Seconds between two passes of the workload scheduler.
    #[arg(long, default_value_t = 2.0)]
    workload_interval: f64,
}

fn parse_ports(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    s4t_model::public_ports::parse_range(text)
}

impl TunnelArgs {
    fn apply(self, config: &mut CloudConfig) {
        config.tunnel_addr = (self.tunnel_addr != "off").then_some(self.tunnel_addr);
        config.tunnel_public_url = self.tunnel_public_url.unwrap_or_default();
        config.public_ports = self.public_ports;
        config.public_host = self.public_host;
        config.tunnel_idle_timeout = (self.tunnel_idle_timeout > 0)
            .then(|| std::time::Duration::from_secs(self.tunnel_idle_timeout));
        config.overlay_addr = (self.overlay_addr != "off").then_some(self.overlay_addr);
        config.overlay_public_addr = self.overlay_public_addr;
        config.bridge_networks = self.bridge_networks;
        config.https_addr = self.https_addr;
        config.http_addr = self.http_addr;
        config.https_cert = self.https_cert.zip(self.https_key);
        config.workload_grace = std::time::Duration::from_secs_f64(self.workload_grace.max(0.0));
        config.workload_interval =
            std::time::Duration::from_secs_f64(self.workload_interval.max(0.1));
    }
}

impl CloudArgs {
    fn config(self) -> CloudConfig {
        let mut config = CloudConfig {
            data_dir: self.data_dir,
            database_url: self.database_url,
            api_addr: self.api_addr,
            noauth: self.noauth,
            public_url: self.public_url,
            wamp_public_url: self.wamp_public_url.unwrap_or_default(),
            agent_name: self.agent_name,
            wamp_addr: Some(self.wamp_addr),
            wamp_tls: self.wamp_tls_cert.zip(self.wamp_tls_key),
            allow_anonymous_boards: self.allow_anonymous_boards,
            wamp_ping_interval: std::time::Duration::from_secs(self.wamp_ping_interval),
            board_call_timeout: std::time::Duration::from_secs(self.board_call_timeout),
            ..CloudConfig::for_dir(".")
        };
        self.tunnels.apply(&mut config);
        config
    }
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Where the embedded database and the admin token live.
    #[arg(long, default_value = ".s4t-dev")]
    data_dir: PathBuf,
    /// Where the REST API listens.
    #[arg(long, default_value = "127.0.0.1:8812")]
    api_addr: String,
    /// Where the board WAMP router listens.
    #[arg(long, default_value = "127.0.0.1:8181")]
    wamp_addr: String,
    /// Virtual boards to run: real agents in this process, each with its own data dir, which
    /// register and come online.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1000))]
    boards: u32,
    #[command(flatten)]
    tunnels: TunnelArgs,
}

/// Prints a line for the operator. A closed stdout (a supervisor that stopped reading) must not
/// take the cloud down, so write errors are ignored.
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub(crate) fn init_logging() {
    init_logging_with("info,sqlx=warn");
}

/// Logs to stderr, filtered by S4T_LOG, else by `default`.
pub(crate) fn init_logging_with(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("S4T_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn wait_for_stop(cloud: &mut RunningCloud) -> anyhow::Result<()> {
    tokio::select! {
        r = cloud.wait() => r.context("the API server stopped"),
        _ = stop_signal() => Ok(()),
    }
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}

pub async fn cloud(args: CloudArgs) -> anyhow::Result<()> {
    init_logging();
    let config = args.config();
    let token_file = config.data_dir.join(s4t_cloud::auth::ADMIN_TOKEN_FILE);
    let mut running = RunningCloud::start(config)
        .await
        .context("cannot start the cloud")?;
    say(&format!(
        "s4t cloud: REST API on http://{}",
        running.api_addr
    ));
    if let Some(addr) = running.wamp_addr {
        say(&format!(
            "s4t cloud: board WAMP router on {addr}, boards are given {}",
            running.board_url
        ));
    }
    if let Some(addr) = running.tunnel_addr {
        say(&format!("s4t cloud: service tunnel server on {addr}"));
    }
    if let Some(addr) = running.overlay_addr {
        say(&format!("s4t cloud: overlay network hub on udp://{addr}"));
    }
    if let Some(addr) = running.https_addr {
        say(&format!(
            "s4t cloud: webservice front on https://{addr}{}",
            running
                .http_addr
                .map(|h| format!(" and http://{h}"))
                .unwrap_or_default()
        ));
    }
    if running.new_admin_token.is_some() {
        say(&format!(
            "s4t cloud: admin token written to {}",
            token_file.display()
        ));
    }
    wait_for_stop(&mut running).await?;
    tracing::info!("stopping");
    running.shutdown().await;
    Ok(())
}

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    init_logging();
    let mut config = CloudConfig::for_dir(&args.data_dir);
    config.api_addr = args.api_addr;
    config.wamp_addr = Some(args.wamp_addr);
    args.tunnels.apply(&mut config);
    let token_file = config.data_dir.join(s4t_cloud::auth::ADMIN_TOKEN_FILE);
    let mut running = RunningCloud::start(config)
        .await
        .context("cannot start the dev cloud")?;
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("cannot read the admin token from {}", token_file.display()))?;
    let url = format!("http://{}", running.api_addr);
    let agents = start_dev_boards(&running, &args.data_dir, args.boards).await?;
    let boards_line = if agents.is_empty() {
        String::new()
    } else {
        format!(
            "{} virtual boards (dev-board-1..{}) run in this process and come online; their \
             state is in {}.\n\n",
            agents.len(),
            agents.len(),
            args.data_dir.join("boards").display()
        )
    };
    say(&format!(
        "s4t dev: a cloud on embedded SQLite ({db}), REST API v1 on {url}, boards connect to {wamp}\n\n\
         {boards_line}\
         Try it, in another terminal:\n  \
           export S4T_URL={url} S4T_TOKEN={token}\n  \
           s4t board list\n  \
           s4t board action dev-board-1 DevicePing\n  \
           s4t board create --name board-x --code CODE-X --lat 38.19 --lon 15.55 --alt 10\n  \
           s4t agent --data-dir /tmp/board-x --code CODE-X --cloud {wamp}\n  \
           curl -H \"X-Auth-Token: $S4T_TOKEN\" {url}/v1/boards\n\n\
         The stock client works too:\n  \
           iotronic --os-auth-token $S4T_TOKEN --iotronic-url {url} board-list\n\n\
         Stop with Ctrl-C; the data stays in {dir}.",
        db = args.data_dir.join("s4t.db").display(),
        wamp = running.board_url,
        token = token.trim(),
        dir = args.data_dir.display(),
    ));
    wait_for_stop(&mut running).await?;
    for a in agents {
        a.stop().await;
    }
    running.shutdown().await;
    Ok(())
}

/// Creates dev-board-1..N (if missing) and starts an agent for each, in this process.
async fn start_dev_boards(
    running: &RunningCloud,
    data_dir: &std::path::Path,
    n: u32,
) -> anyhow::Result<Vec<s4t_agent::AgentHandle>> {
    use s4t_model::resources::NewBoard;
    use s4t_store::boards::BoardOwnership;
    let mut agents = Vec::new();
    for i in 1..=n {
        let (name, code) = (format!("dev-board-{i}"), format!("DEV-BOARD-{i}"));
        if running.store.board_by_code(&code).await.is_err() {
            let new = NewBoard::from_body(serde_json::json!({
                "name": name, "code": code, "type": "virtual",
                "location": [{"latitude": "38.19", "longitude": "15.55", "altitude": "10"}],
            }))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            running
                .store
                .create_board(
                    &new,
                    // The admin token's project, so `s4t board list` shows them.
                    &BoardOwnership {
                        owner: Some("admin".into()),
                        project: Some("admin".into()),
                        fleet: None,
                    },
                )
                .await
                .with_context(|| format!("cannot create {name}"))?;
        }
        let board_dir = data_dir.join("boards").join(&name);
        let settings = std::sync::Arc::new(s4t_agent::FileSettings::new(
            board_dir.join("settings.json"),
        ));
        crate::boards::prepare_first_boot(settings.as_ref(), &code, &running.board_url)?;
        let mut config = s4t_agent::AgentConfig::new(
            settings,
            s4t_agent::Device {
                hostname: name.clone(),
                policy: s4t_agent::DevicePolicy::default(),
            },
        );
        config.data_dir = Some(board_dir);
        agents.push(s4t_agent::spawn(config));
    }
    Ok(agents)
}
