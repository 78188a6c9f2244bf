//! The s4t cloud: the IoTronic v1 REST API on a real store.
//!
//! - [`config`]: what `s4t cloud` is started with.
//! - [`api`]: the HTTP surface (axum): routing, microversions, errors, auth, one module per
//!   resource family. Handlers parse and authorise; they never talk to boards themselves.
//! - [`conductor`]: decides and records board operations (request/result rows) and hands them to
//!   the board link.
//! - [`auth`]: API tokens (hashed at rest) and the first-start admin token.
//! - [`openapi`]: the OpenAPI 3 document served at `/v1/openapi.json`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod auth;
pub mod conductor;
pub mod config;
pub mod front;
pub mod gateway;
pub mod hub;
pub mod openapi;
pub mod rollout;
pub mod scheduler;
pub mod services;
mod tls;
pub mod tunnel;
pub mod webservices;

use std::net::SocketAddr;
use std::sync::Arc;

use s4t_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::CloudConfig;

/// A cloud that is serving. Dropping it does not stop it; call [`RunningCloud::shutdown`].
pub struct RunningCloud {
    pub api_addr: SocketAddr,
    pub store: Store,
    /// Where the board WAMP router listens, when it runs.
    pub wamp_addr: Option<SocketAddr>,
    /// Where the service tunnel server listens, when it runs.
    pub tunnel_addr: Option<SocketAddr>,
    /// Where the overlay network hub listens (UDP), when it runs.
    pub overlay_addr: Option<SocketAddr>,
    /// Where the webservice front listens (https, http), when it runs.
    pub https_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    /// The URL boards are given (`ws://` or `wss://`).
    pub board_url: String,
    /// The admin token, when this start created it (first start).
    pub new_admin_token: Option<String>,
    gateway: Option<gateway::BoardGateway>,
    tunnels: Option<(tunnel::TunnelServer, JoinHandle<()>)>,
    front_tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] s4t_store::StoreError),
    #[error("webservice front: {0}")]
    Front(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot prepare the data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("board gateway: {0}")]
    Gateway(String),
}

impl RunningCloud {
    /// Opens the store, prepares auth and starts serving the API.
    pub async fn start(mut config: CloudConfig) -> Result<RunningCloud, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
        let store = match &config.database_url {
            Some(url) => Store::open(url).await?,
            None => Store::open_sqlite_file(&config.data_dir.join("s4t.db")).await?,
        };
        let interrupted = store
            .interrupt_pending_requests("interrupted: the cloud stopped before the board answered")
            .await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "requests left pending by the previous run were closed as interrupted"
            );
        }
        let new_admin_token = if config.noauth {
            tracing::warn!("--noauth: the API trusts X-User-Id / X-Project-Id / X-Roles headers and checks no token");
            None
        } else {
            auth::ensure_admin_token(&store, &config.data_dir)
                .await
                .map_err(|source| StartError::DataDir {
                    dir: config.data_dir.display().to_string(),
                    source,
                })?
        };
        let (listener, api_addr) = listen(&config.api_addr).await?;
        let (gateway, wamp_addr) = match config.wamp_addr.clone() {
            None => (None, None),
            Some(addr) => {
                let (listener, bound) = listen(&addr).await?;
                if config.wamp_public_url.is_empty() {
                    let scheme = if config.wamp_tls.is_some() {
                        "wss"
                    } else {
                        "ws"
                    };
                    config.wamp_public_url = format!("{scheme}://{bound}/");
                }
                let gw = gateway::BoardGateway::start(
                    store.clone(),
                    gateway::GatewayConfig {
                        agent_name: config.agent_name.clone(),
                        registration_url: config.board_url(),
                        main_url: config.board_url(),
                        allow_anonymous_boards: config.allow_anonymous_boards,
                        ping_interval: config.wamp_ping_interval,
                        call_timeout: config.board_call_timeout,
                    },
                )
                .await
                .map_err(|e| StartError::Gateway(e.to_string()))?;
                let tls = match &config.wamp_tls {
                    Some((cert, key)) => Some(
                        tls::acceptor(cert, key).map_err(|e| StartError::Gateway(e.to_string()))?,
                    ),
                    None => None,
                };
                tokio::spawn(tls::serve(gw.router().clone(), listener, tls));
                tracing::info!(wamp_addr = %bound, url = %config.board_url(), "board WAMP router listening");
                (Some(gw), Some(bound))
            }
        };
        let mut front_tasks_early = Vec::new();
        let mut conductor = match &gateway {
            Some(gw) => conductor::Conductor::with_link(store.clone(), Arc::new(gw.clone())),
            None => conductor::Conductor::new(store.clone()),
        };
        let (mut hub, mut overlay_addr) = (None, None);
        if let Some(addr) = config.overlay_addr.clone() {
            let h = hub::Hub::bind(store.clone(), &config.data_dir, &addr)
                .await
                .map_err(|source| StartError::Listen {
                    addr: format!("{addr} (UDP)"),
                    source,
                })?;
            let bound = h.local_addr().map_err(|source| StartError::Listen {
                addr: addr.clone(),
                source,
            })?;
            tracing::info!(overlay_addr = %bound, public_key = %h.public_key(), "overlay network hub listening");
            front_tasks_early.push(tokio::spawn(h.clone().run()));
            overlay_addr = Some(bound);
            hub = Some(h);
        }
        let mut tunnel_addr = None;
        let mut tunnels = None;
        if let Some(addr) = config.tunnel_addr.clone() {
            let (listener, bound) = listen(&addr).await?;
            let server = tunnel::TunnelServer::new(
                store.clone(),
                tunnel::TunnelConfig {
                    public_host: config.public_host.unwrap_or(bound.ip()),
                    ports: config.public_ports.clone(),
                    allow_anonymous_boards: config.allow_anonymous_boards,
                    idle_timeout: config.tunnel_idle_timeout,
                    ..Default::default()
                },
            );
            let tls = match &config.wamp_tls {
                Some((cert, key)) => {
                    Some(tls::acceptor(cert, key).map_err(|e| StartError::Gateway(e.to_string()))?)
                }
                None => None,
            };
            let url = config.tunnel_url(bound);
            tracing::info!(tunnel_addr = %bound, %url, ports = ?config.public_ports, "service tunnel server listening");
            if let Some(h) = &hub {
                server.set_overlay(h.clone());
            }
            let task = tokio::spawn(server.clone().serve(listener, tls));
            conductor = conductor.with_tunnels(server.clone(), url);
            tunnel_addr = Some(bound);
            tunnels = Some((server, task));
        }
        let (mut https_addr, mut http_addr, mut front_tasks) = (None, None, front_tasks_early);
        if let Some(addr) = config.https_addr.clone() {
            if tunnels.is_none() {
                return Err(StartError::Front(
                    "the webservice front needs the tunnel server (--tunnel-addr)".into(),
                ));
            }
            let source = match &config.https_cert {
                Some((cert, key)) => front::CertSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                None => front::CertSource::OwnCa {
                    dir: config.data_dir.clone(),
                },
            };
            let front = front::Front::new(store.clone(), &source).map_err(StartError::Front)?;
            let (https, bound) = listen(&addr).await?;
            https_addr = Some(bound);
            front_tasks.push(tokio::spawn(front.clone().serve_https(https)));
            if let Some(addr) = config.http_addr.clone() {
                let (http, bound) = listen(&addr).await?;
                http_addr = Some(bound);
                front_tasks.push(tokio::spawn(front.clone().serve_http(http)));
            }
            tracing::info!(https = %bound, http = ?http_addr, "webservice front listening");
            let ports = (http_addr.map_or(0, |a| a.port()), bound.port());
            conductor = conductor.with_front(front, ports);
        }
        let board_url = config.board_url();
        let scheduler = gateway.as_ref().map(|_| {
            scheduler::Scheduler::new(
                store.clone(),
                conductor.clone(),
                scheduler::SchedulerConfig {
                    interval: config.workload_interval,
                    grace: config.workload_grace,
                    call_timeout: config
                        .board_call_timeout
                        .min(std::time::Duration::from_secs(10)),
                },
            )
        });
        if let Some(s) = &scheduler {
            front_tasks.push(tokio::spawn(s.clone().run()));
        }
        let mut state = api::AppState::with_conductor(store.clone(), Arc::new(config), conductor);
        state.scheduler = scheduler;
        state.hub = hub;
        if state.config.bridge_networks && state.hub.is_some() {
            api::networks::bridge_all(&state).await?;
        }
        let app = api::service(state);
        let (shutdown, mut rx) = watch::channel(false);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::info!(%api_addr, "REST API v1 listening");
        Ok(RunningCloud {
            api_addr,
            wamp_addr,
            tunnel_addr,
            overlay_addr,
            tunnels,
            https_addr,
            http_addr,
            front_tasks,
            board_url,
            gateway,
            store,
            new_admin_token,
            shutdown,
            server,
        })
    }

    /// Stops accepting requests, lets in-flight ones finish, closes the store.
    pub async fn shutdown(self) {
        if let Some(gw) = &self.gateway {
            gw.close();
        }
        if let Some((server, task)) = &self.tunnels {
            task.abort();
            server.close_all();
        }
        for t in &self.front_tasks {
            t.abort();
        }
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        self.store.close().await;
    }

    /// The service tunnel server, when it runs.
    pub fn tunnels(&self) -> Option<&tunnel::TunnelServer> {
        self.tunnels.as_ref().map(|(s, _)| s)
    }

    /// Waits until the server stops by itself (it only does on error).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.server)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Binds `addr`; the listener and the address it got (the port when `addr` asked for 0).
async fn listen(addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let failed = |source| StartError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    Ok((listener, bound))
}
