//! `s4t`: Stack4Things in Rust. One binary: the cloud, the zero-setup dev cloud and the CLI client.
#![forbid(unsafe_code)]

mod boards;
mod cli;
mod output;
mod provider;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "s4t",
    version,
    about = "Stack4Things in Rust: the IoT cloud, its board agent and its CLI in one binary",
    long_about = "Stack4Things in Rust.\n\n`s4t cloud` serves the IoTronic v1 REST API (wire-compatible with the stock \
python-iotronicclient); `s4t dev` runs a cloud on an embedded SQLite with zero setup; every other \
command is a client of the REST API.",
    after_help = "Exit codes: 0 ok, 1 server or unexpected error, 2 bad usage or input (HTTP 400), 3 not found, \
4 not authorised (401/403), 5 conflict (409), 6 API unreachable."
)]
pub struct Cli {
    /// The API root, without /v1.
    #[arg(
        long,
        global = true,
        env = "S4T_URL",
        default_value = "http://127.0.0.1:8812"
    )]
    url: String,
    /// API token (sent as X-Auth-Token). `s4t dev` prints one; `s4t cloud` writes DIR/admin-token.
    #[arg(long, global = true, env = "S4T_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output format of client commands.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = output::Format::Table)]
    output: output::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the cloud: the IoTronic v1 REST API on SQLite or PostgreSQL.
    Cloud(serve::CloudArgs),
    /// Run a cloud with zero setup: embedded SQLite in a local data dir, virtual boards, and
    /// print how to use it.
    Dev(serve::DevArgs),
    /// Run the board agent (replaces a Lightning-rod; works with s4t and stock clouds).
    Agent(boards::AgentArgs),
    /// Run many simulated boards in one process (scale tests and benchmarks).
    Swarm(boards::SwarmArgs),
    /// The Crossplane provider: its controllers (Board so far) and its CRDs.
    #[command(subcommand)]
    Provider(provider::ProviderCmd),
    /// Boards: list, show, create, update, delete, actions, and what runs on them.
    #[command(subcommand)]
    Board(cli::BoardCmd),
    /// The plugin catalogue.
    #[command(subcommand)]
    Plugin(cli::PluginCmd),
    /// The service catalogue.
    #[command(subcommand)]
    Service(cli::ServiceCmd),
    /// Fleets of boards.
    #[command(subcommand)]
    Fleet(cli::FleetCmd),
    /// Webservices published by boards.
    #[command(subcommand)]
    Webservice(cli::WebserviceCmd),
    /// Workloads: processes placed on boards by the cloud's scheduler (s4t extension).
    #[command(subcommand)]
    Workload(cli::WorkloadCmd),
    /// Network ports of boards.
    #[command(subcommand)]
    Port(cli::PortCmd),
    /// Overlay networks that board ports join (s4t extension).
    #[command(subcommand)]
    Network(cli::NetworkCmd),
    /// Recorded board operations and their results.
    #[command(subcommand)]
    Request(cli::RequestCmd),
    /// API tokens (admin).
    #[command(subcommand)]
    Token(cli::TokenCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Cloud(args) => serve::cloud(args).await.map_err(cli::Failure::from),
            Command::Dev(args) => serve::dev(args).await.map_err(cli::Failure::from),
            Command::Agent(args) => boards::agent(args).await.map_err(cli::Failure::from),
            Command::Swarm(args) => boards::swarm(args).await.map_err(cli::Failure::from),
            Command::Provider(cmd) => provider::run(cmd).await.map_err(cli::Failure::from),
            other => cli::run(&cli.url, cli.token, cli.output, other).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
