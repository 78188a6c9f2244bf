//! What `s4t cloud` is started with.

use std::path::PathBuf;

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
    /// The WAMP URL boards are given to register (`wamp.registration-agent.url`).
    pub wamp_public_url: String,
    /// The stable agent name boards are provisioned with (their procedure prefix).
    pub agent_name: String,
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
            wamp_public_url: "ws://127.0.0.1:8181/".into(),
            agent_name: "s4t".into(),
        }
    }

    /// The host boards reach the tunnel server on (`wstun_ip`): the host of the WAMP URL.
    pub fn wstun_host(&self) -> Option<String> {
        url::Url::parse(&self.wamp_public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    }
}
