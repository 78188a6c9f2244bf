//! What `s4t cloud` is started with.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Holds the SQLite database (unless `database_url` is given) and the admin token.
    pub data_dir: PathBuf,
    /// `postgres://...` or `sqlite://...`; default: SQLite at `data_dir/s4t.db`.
    pub database_url: Option<String>,
    /// Where the REST API listens.
    pub api_addr: String,
    /// Trust identity headers instead of tokens (upstream `auth_strategy = noauth`).
    pub noauth: bool,
    /// The base URL put into links; default: taken from the request's `Host`.
    pub public_url: Option<String>,
    /// The WAMP URL boards are given to register (`wamp.registration-agent.url`) and to connect
    /// to (`wamp.main-agent.url`). Empty: `ws://<wamp_addr>/` once the router listens.
    pub wamp_public_url: String,
    /// The stable agent name boards are provisioned with (their procedure prefix).
    pub agent_name: String,
    /// Where the WAMP router for boards listens; `None` runs no board gateway.
    pub wamp_addr: Option<String>,
    /// PEM certificate chain and key: the router then speaks `wss://` only.
    pub wamp_tls: Option<(PathBuf, PathBuf)>,
    /// Accept boards that do not authenticate (stock Lightning-rods). Off by default.
    pub allow_anonymous_boards: bool,
    /// WebSocket ping interval towards boards; a board silent for twice as long is gone.
    pub wamp_ping_interval: Duration,
    /// How long a board call may take before the API answers with an error.
    pub board_call_timeout: Duration,
    /// Where the service tunnel server (wstun protocol) listens; `None` runs none. It speaks
    /// TLS with the WAMP router's certificate when that has one (boards follow the WAMP scheme).
    pub tunnel_addr: Option<String>,
    /// The tunnel URL boards are told; empty: `ws[s]://<host of the WAMP URL>:<tunnel port>`.
    pub tunnel_public_url: String,
    /// Public ports handed out to exposed services.
    pub public_ports: std::ops::RangeInclusive<u16>,
    /// The address public ports are opened on; `None`: the tunnel server's address.
    pub public_host: Option<std::net::IpAddr>,
    /// Close a tunnelled connection after this long without traffic; `None`: never.
    pub tunnel_idle_timeout: Option<Duration>,
    /// Where the webservice HTTPS front listens; `None` runs none (webservices cannot be
    /// enabled). Needs the tunnel server.
    pub https_addr: Option<String>,
    /// Where the front's plain HTTP listener (redirects, non-secure webservices) listens.
    pub http_addr: Option<String>,
    /// The operator's PEM certificate chain and key for the front; `None`: the cloud's own CA
    /// (`data_dir/webservice-ca.pem`).
    pub https_cert: Option<(PathBuf, PathBuf)>,
    /// Where the overlay network hub listens for boards' encrypted tunnels (UDP); `None` runs
    /// none (ports on s4t networks then carry no traffic).
    pub overlay_addr: Option<String>,
    /// The `HOST:PORT` boards are told to reach the hub at; `None`: the hub's address, or the
    /// host of the board's WAMP URL when the hub listens on every interface.
    pub overlay_public_addr: Option<String>,
    /// Give the cloud host a TAP on every network (the network's gateway address, when it has
    /// one), joined to the network's switch.
    pub bridge_networks: bool,
    /// How long a board may be offline before its workload replicas move elsewhere.
    pub workload_grace: Duration,
    /// How often the workload scheduler runs.
    pub workload_interval: Duration,
}

impl CloudConfig {
    /// A configuration for tests and `s4t dev`: loopback, ephemeral port.
    pub fn for_dir(data_dir: impl Into<PathBuf>) -> CloudConfig {
        CloudConfig {
            data_dir: data_dir.into(),
            database_url: None,
            api_addr: "127.0.0.1:8812".into(),
            noauth: false,
            public_url: None,
            wamp_public_url: String::new(),
            agent_name: "s4t".into(),
            wamp_addr: None,
            wamp_tls: None,
            allow_anonymous_boards: false,
            wamp_ping_interval: Duration::from_secs(5),
            board_call_timeout: Duration::from_secs(60),
            tunnel_addr: None,
            tunnel_public_url: String::new(),
            public_ports: s4t_model::public_ports::DEFAULT_RANGE,
            public_host: None,
            tunnel_idle_timeout: None,
            https_addr: None,
            http_addr: None,
            https_cert: None,
            overlay_addr: None,
            overlay_public_addr: None,
            bridge_networks: false,
            workload_grace: Duration::from_secs(60),
            workload_interval: Duration::from_secs(2),
        }
    }

    /// The URL boards are given, before the router has bound its port.
    pub fn board_url(&self) -> String {
        if self.wamp_public_url.is_empty() {
            let scheme = if self.wamp_tls.is_some() { "wss" } else { "ws" };
            let addr = self.wamp_addr.as_deref().unwrap_or("127.0.0.1:8181");
            format!("{scheme}://{addr}/")
        } else {
            self.wamp_public_url.clone()
        }
    }

    /// The tunnel URL boards are told, once the tunnel server listens on `bound`.
    pub fn tunnel_url(&self, bound: std::net::SocketAddr) -> String {
        if !self.tunnel_public_url.is_empty() {
            return self.tunnel_public_url.clone();
        }
        let scheme = if self.wamp_tls.is_some() { "wss" } else { "ws" };
        let host = self.wstun_host().unwrap_or_else(|| bound.ip().to_string());
        format!("{scheme}://{host}:{}", bound.port())
    }

    /// The host boards reach the tunnel server on (`wstun_ip`): the host of the WAMP URL.
    pub fn wstun_host(&self) -> Option<String> {
        url::Url::parse(&self.board_url())
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    }
}
