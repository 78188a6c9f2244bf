//! Client commands: one subcommand tree per resource, each a thin call of the REST API.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use s4t_client::{Client, ClientError, Method};

use crate::output::{self, Format};
use crate::Command;

/// A failed command: the message and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let code = match &e {
            ClientError::Api {
                status: 400 | 406 | 422,
                ..
            } => 2,
            ClientError::Api { status: 404, .. } => 3,
            ClientError::Api {
                status: 401 | 403, ..
            } => 4,
            ClientError::Api { status: 409, .. } => 5,
            ClientError::Connect { .. } | ClientError::BadUrl(_) => 6,
            _ => 1,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure {
            code: 1,
            message: format!("{e:#}"),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

type Outcome = Result<(), Failure>;

/// `--params k=v ...` or `--params-json '{...}'` into a JSON object.
#[derive(Args, Debug, Default)]
pub struct Params {
    /// Parameters as key=value pairs (values that parse as JSON are sent as JSON).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    param: Vec<String>,
    /// Parameters as one JSON object.
    #[arg(long, value_name = "JSON", conflicts_with = "param")]
    params_json: Option<String>,
}

impl Params {
    fn object(&self) -> Result<Map<String, Value>, Failure> {
        if let Some(raw) = &self.params_json {
            return match serde_json::from_str(raw) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(usage(
                    "--params-json must be a JSON object, e.g. '{\"msg\": \"hi\"}'",
                )),
            };
        }
        let mut m = Map::new();
        for kv in &self.param {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| usage(format!("--param {kv:?}: use KEY=VALUE")))?;
            m.insert(
                k.to_string(),
                serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())),
            );
        }
        Ok(m)
    }
}

fn json_arg(name: &str, raw: &Option<String>) -> Result<Option<Value>, Failure> {
    raw.as_ref()
        .map(|r| {
            serde_json::from_str::<Value>(r)
                .map_err(|e| usage(format!("--{name} is not valid JSON: {e}")))
        })
        .transpose()
}

/// Options shared by list commands.
#[derive(Args, Debug, Default)]
pub struct ListOpts {
    /// Page size; all pages are fetched.
    #[arg(long)]
    limit: Option<u32>,
    /// Sort by this field.
    #[arg(long)]
    sort_key: Option<String>,
    /// asc or desc.
    #[arg(long)]
    sort_dir: Option<String>,
    /// Show every field.
    #[arg(long)]
    detail: bool,
}

impl ListOpts {
    fn path(&self, collection: &str, extra: &[(&str, Option<String>)]) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(l) = self.limit {
            q.append_pair("limit", &l.to_string());
        }
        if let Some(k) = &self.sort_key {
            q.append_pair("sort_key", k);
        }
        if let Some(d) = &self.sort_dir {
            q.append_pair("sort_dir", d);
        }
        for (k, v) in extra {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        let q = q.finish();
        let base = if self.detail {
            format!("v1/{collection}/detail")
        } else {
            format!("v1/{collection}")
        };
        if q.is_empty() {
            base
        } else {
            format!("{base}?{q}")
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum BoardCmd {
    /// List boards.
    List {
        #[command(flatten)]
        opts: ListOpts,
        /// Only boards in this status (registered, offline, online).
        #[arg(long)]
        status: Option<String>,
        /// Another project's boards (admin).
        #[arg(long)]
        project: Option<String>,
    },
    /// Show one board (uuid or name).
    Show { board: String },
    /// Register a new board; it is `registered` until it connects with its code.
    Create {
        #[arg(long)]
        name: String,
        /// The registration code the board presents on first boot.
        #[arg(long)]
        code: String,
        #[arg(long = "type", default_value = "server")]
        board_type: String,
        #[arg(long, allow_hyphen_values = true)]
        lat: String,
        #[arg(long, allow_hyphen_values = true)]
        lon: String,
        #[arg(long, allow_hyphen_values = true, default_value = "0")]
        alt: String,
        #[arg(long)]
        mobile: bool,
        /// Fleet uuid or name.
        #[arg(long)]
        fleet: Option<String>,
        /// Extra attributes as a JSON object.
        #[arg(long)]
        extra: Option<String>,
    },
    /// Change a board's attributes.
    Update {
        board: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long = "type")]
        board_type: Option<String>,
        /// Fleet uuid or name; an empty string removes the board from its fleet.
        #[arg(long)]
        fleet: Option<String>,
        #[arg(long)]
        mobile: Option<bool>,
        #[arg(long)]
        extra: Option<String>,
    },
    /// Delete a board (an online board is factory-reset first).
    Delete { board: String },
    /// Run a board action (DevicePing, DeviceEcho, DeviceReboot, ...).
    Action {
        board: String,
        action: String,
        #[command(flatten)]
        params: Params,
    },
    /// Plugins injected into the board.
    Plugins { board: String },
    /// Inject a plugin into the board.
    Inject {
        board: String,
        plugin: String,
        #[arg(long)]
        onboot: bool,
    },
    /// Run a plugin action (PluginStart, PluginStop, PluginCall, PluginStatus, PluginReboot).
    PluginAction {
        board: String,
        plugin: String,
        action: String,
        #[command(flatten)]
        params: Params,
    },
    /// Remove a plugin from the board.
    RemovePlugin { board: String, plugin: String },
    /// Services exposed on the board.
    Services { board: String },
    /// Enable, disable or restore a service on the board.
    ServiceAction {
        board: String,
        service: String,
        action: String,
    },
    /// Ports of the board.
    Ports { board: String },
    /// Webservices of the board.
    Webservices { board: String },
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// List plugins (yours, plus public ones with --with-public).
    List {
        #[command(flatten)]
        opts: ListOpts,
        #[arg(long)]
        with_public: bool,
        /// Every plugin (admin).
        #[arg(long)]
        all: bool,
    },
    /// Show a plugin.
    Show { plugin: String },
    /// Add a plugin from a source file.
    Create {
        #[arg(long)]
        name: String,
        /// The plugin source file: Python (Lightning-rod), or a WASI command module (`.wasm`, or
        /// WebAssembly text `.wat`), which makes it a WASM plugin (`extra.runtime` "wasm"; set
        /// limits with --extra '{"wasm": {"fuel": N, "memory_mib": N, "wall_secs": S, "files": true}}').
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long)]
        public: bool,
        /// The plugin answers PluginCall synchronously.
        #[arg(long)]
        callable: bool,
        /// Required parameters, as a JSON object of defaults.
        #[arg(long)]
        parameters: Option<String>,
        #[arg(long)]
        extra: Option<String>,
    },
    Update {
        plugin: String,
        #[arg(long)]
        name: Option<String>,
        /// New code (as for create).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        #[arg(long)]
        public: Option<bool>,
        #[arg(long)]
        callable: Option<bool>,
        #[arg(long)]
        parameters: Option<String>,
        #[arg(long)]
        extra: Option<String>,
    },
    /// Delete a plugin.
    Delete { plugin: String },
}

#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// List services.
    List {
        #[command(flatten)]
        opts: ListOpts,
    },
    /// Show a service.
    Show { service: String },
    Create {
        #[arg(long)]
        name: String,
        /// The board-local port.
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "TCP")]
        protocol: String,
        #[arg(long)]
        extra: Option<String>,
    },
    Update {
        service: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        protocol: Option<String>,
        #[arg(long)]
        extra: Option<String>,
    },
    /// Delete a service.
    Delete { service: String },
    /// Expose the service of a board on a public port (ServiceEnable).
    Enable {
        service: String,
        #[arg(long)]
        board: String,
    },
    /// End the exposure and free its public port (ServiceDisable).
    Disable {
        service: String,
        #[arg(long)]
        board: String,
    },
    /// Ask the board to bring the service's tunnel up again (ServiceRestore).
    Restore {
        service: String,
        #[arg(long)]
        board: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum FleetCmd {
    /// List fleets.
    List {
        #[command(flatten)]
        opts: ListOpts,
    },
    /// Show a fleet.
    Show { fleet: String },
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        extra: Option<String>,
    },
    Update {
        fleet: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        extra: Option<String>,
    },
    /// Delete a fleet.
    Delete { fleet: String },
    /// Boards of the fleet.
    Boards { fleet: String },
    /// Inject a plugin into every board of the fleet, in batches, with a progress line and a
    /// summary table (exit code 1 if any board failed).
    Inject {
        fleet: String,
        plugin: String,
        /// Start the plugin when a board boots.
        #[arg(long)]
        onboot: bool,
        #[command(flatten)]
        staging: Staging,
    },
    /// Run a plugin action (PluginCall, PluginStart, ...) on every board of the fleet.
    PluginAction {
        fleet: String,
        plugin: String,
        action: String,
        #[command(flatten)]
        params: Params,
        #[command(flatten)]
        staging: Staging,
    },
}

/// How a fleet rollout is staged.
#[derive(Args, Debug)]
pub struct Staging {
    /// Boards called at once; the next batch starts when this one is done.
    #[arg(long, default_value_t = 50)]
    batch_size: u32,
    /// Stop once more boards than this have failed (default: never stop).
    #[arg(long)]
    max_failures: Option<u32>,
    /// Seconds one board may take.
    #[arg(long, default_value_t = 60)]
    board_timeout: u32,
    /// Only boards whose extra has KEY=VALUE (repeatable).
    #[arg(long = "select", value_name = "KEY=VALUE")]
    select: Vec<String>,
    /// Run the call on offline boards when they are online again, instead of reporting them
    /// as not called. The command then returns before those boards have answered.
    #[arg(long)]
    defer_offline: bool,
}

impl Staging {
    fn into_body(self, mut body: Map<String, Value>) -> Result<Value, Failure> {
        body.insert("batch_size".into(), json!(self.batch_size));
        body.insert("board_timeout".into(), json!(self.board_timeout));
        if self.defer_offline {
            body.insert("offline".into(), json!("defer"));
        }
        if let Some(m) = self.max_failures {
            body.insert("max_failures".into(), json!(m));
        }
        let mut selector = Map::new();
        for kv in &self.select {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| usage(format!("--select {kv:?}: use KEY=VALUE")))?;
            selector.insert(
                k.to_string(),
                serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())),
            );
        }
        if !selector.is_empty() {
            body.insert("selector".into(), Value::Object(selector));
        }
        Ok(Value::Object(body))
    }
}

#[derive(Subcommand, Debug)]
pub enum WebserviceCmd {
    /// List webservices.
    List {
        #[command(flatten)]
        opts: ListOpts,
    },
    /// Show a webservice.
    Show { webservice: String },
    /// Delete a webservice.
    Delete { webservice: String },
    /// Boards enabled for webservices.
    Enabled,
    /// Enable webservices on a board: each is then served over HTTPS as NAME.DNS.ZONE.
    Enable {
        board: String,
        #[arg(long)]
        dns: String,
        #[arg(long)]
        zone: String,
        /// Contact address (kept for certificate authorities).
        #[arg(long)]
        email: String,
    },
    /// Publish a board's local port over HTTPS as NAME.DNS.ZONE.
    Expose {
        board: String,
        #[arg(long)]
        name: String,
        /// The board-local port of the web server.
        #[arg(long)]
        port: u16,
        /// Also serve plain http (no redirect to https).
        #[arg(long)]
        insecure: bool,
    },
    /// Disable webservices on a board (every webservice of it goes).
    Disable { board: String },
    /// New certificates for a board's names.
    Renew { board: String },
}

#[derive(Subcommand, Debug)]
pub enum WorkloadCmd {
    /// Create or update a workload from a YAML or JSON file ("-": standard input).
    Apply {
        #[arg(short = 'f', long)]
        file: std::path::PathBuf,
    },
    /// List workloads.
    List,
    /// The workload, its replicas, where they run and how they are.
    Show { workload: String },
    /// The log of one replica.
    Logs {
        workload: String,
        /// The replica's ordinal (0, 1, ...) or uuid.
        #[arg(long, default_value = "0")]
        replica: String,
        #[arg(long, default_value_t = 100)]
        lines: u32,
    },
    /// Delete the workload; its replicas stop.
    Delete { workload: String },
}

#[derive(Subcommand, Debug)]
pub enum PortCmd {
    /// List ports.
    List {
        #[command(flatten)]
        opts: ListOpts,
    },
    /// Show a port.
    Show { port: String },
    /// Delete a port.
    Delete { port: String },
    /// Attach a board to an s4t network: a port with an address, a MAC and an interface.
    Create {
        #[arg(long)]
        board: String,
        /// The network's uuid or name.
        #[arg(long)]
        network: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// List networks.
    List,
    /// Show a network.
    Show { network: String },
    /// Create an overlay network.
    Create {
        #[arg(long)]
        name: String,
        /// The IPv4 range, such as 10.10.0.0/24.
        #[arg(long)]
        cidr: String,
        #[arg(long)]
        mtu: Option<u16>,
        /// A host address of the range that ports never get.
        #[arg(long)]
        gateway: Option<String>,
    },
    /// Delete a network no port uses.
    Delete { network: String },
}

#[derive(Subcommand, Debug)]
pub enum RequestCmd {
    /// List requests.
    List {
        #[command(flatten)]
        opts: ListOpts,
    },
    /// Show a request.
    Show { request: String },
    /// Results of the request and of its sub-requests.
    Results { request: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; it is printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        project: Option<String>,
        /// Comma-separated: admin, admin_iot_project, manager_iot_project, user_iot.
        #[arg(long, value_delimiter = ',', default_value = "user_iot")]
        roles: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens.
    List,
    /// Revoke a token by id.
    Delete { id: i64 },
}

fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn put_opt(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.into(), v);
    }
}

const BOARD_COLS: &[&str] = &[
    "uuid",
    "name",
    "code",
    "status",
    "type",
    "fleet",
    "session",
    "lr_version",
];

pub async fn run(url: &str, token: Option<String>, fmt: Format, cmd: Command) -> Outcome {
    let c = Client::new(url, token)?;
    match cmd {
        Command::Board(b) => board(&c, fmt, b).await,
        Command::Plugin(p) => plugin(&c, fmt, p).await,
        Command::Service(s) => service(&c, fmt, s).await,
        Command::Fleet(f) => fleet(&c, fmt, f).await,
        Command::Webservice(w) => webservice(&c, fmt, w).await,
        Command::Workload(w) => workload(&c, fmt, w).await,
        Command::Port(p) => port(&c, fmt, p).await,
        Command::Network(n) => network(&c, fmt, n).await,
        Command::Request(r) => request(&c, fmt, r).await,
        Command::Token(t) => tokens(&c, fmt, t).await,
        Command::Cloud(_)
        | Command::Dev(_)
        | Command::Agent(_)
        | Command::Swarm(_)
        | Command::Provider(_) => {
            unreachable!("server commands are dispatched in main")
        }
    }
}

async fn board(c: &Client, fmt: Format, cmd: BoardCmd) -> Outcome {
    match cmd {
        BoardCmd::List {
            opts,
            status,
            project,
        } => {
            let items = c
                .list_all(
                    &opts.path("boards", &[("status", status), ("project", project)]),
                    "boards",
                )
                .await?;
            output::list(fmt, &items, if opts.detail { &[] } else { BOARD_COLS });
        }
        BoardCmd::Show { board } => {
            output::show(fmt, &c.get(&format!("v1/boards/{}", seg(&board))).await?)
        }
        BoardCmd::Create {
            name,
            code,
            board_type,
            lat,
            lon,
            alt,
            mobile,
            fleet,
            extra,
        } => {
            let mut body = json!({"name": name, "code": code, "type": board_type, "mobile": mobile,
                "location": [{"latitude": lat, "longitude": lon, "altitude": alt}]});
            put_opt(
                body.as_object_mut().unwrap_or(&mut Map::new()),
                "fleet",
                fleet.map(Value::String),
            );
            if let Some(e) = json_arg("extra", &extra)? {
                body["extra"] = e;
            }
            output::show(fmt, &c.call(Method::POST, "v1/boards", Some(&body)).await?);
        }
        BoardCmd::Update {
            board,
            name,
            code,
            board_type,
            fleet,
            mobile,
            extra,
        } => {
            let mut m = Map::new();
            put_opt(&mut m, "name", name.map(Value::String));
            put_opt(&mut m, "code", code.map(Value::String));
            put_opt(&mut m, "type", board_type.map(Value::String));
            put_opt(
                &mut m,
                "fleet",
                fleet.map(|f| {
                    if f.is_empty() {
                        Value::Null
                    } else {
                        Value::String(f)
                    }
                }),
            );
            put_opt(&mut m, "mobile", mobile.map(Value::Bool));
            put_opt(&mut m, "extra", json_arg("extra", &extra)?);
            if m.is_empty() {
                return Err(usage("nothing to update: give at least one of --name, --code, --type, --fleet, --mobile, --extra"));
            }
            output::show(
                fmt,
                &c.call(
                    Method::PATCH,
                    &format!("v1/boards/{}", seg(&board)),
                    Some(&Value::Object(m)),
                )
                .await?,
            );
        }
        BoardCmd::Delete { board } => {
            c.call(Method::DELETE, &format!("v1/boards/{}", seg(&board)), None)
                .await?;
            eprintln!("deleted board {board}");
        }
        BoardCmd::Action {
            board,
            action,
            params,
        } => {
            let body = json!({"action": action, "parameters": params.object()?});
            output::reply(
                fmt,
                &c.call(
                    Method::POST,
                    &format!("v1/boards/{}/action", seg(&board)),
                    Some(&body),
                )
                .await?,
            );
        }
        BoardCmd::Plugins { board } => {
            let v = c.get(&format!("v1/boards/{}/plugins", seg(&board))).await?;
            output::list(
                fmt,
                v["injections"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &["plugin", "status", "onboot", "created_at", "updated_at"],
            );
        }
        BoardCmd::Inject {
            board,
            plugin,
            onboot,
        } => {
            let body = json!({"plugin": plugin, "onboot": onboot});
            output::reply(
                fmt,
                &c.call(
                    Method::PUT,
                    &format!("v1/boards/{}/plugins", seg(&board)),
                    Some(&body),
                )
                .await?,
            );
        }
        BoardCmd::PluginAction {
            board,
            plugin,
            action,
            params,
        } => {
            let body = json!({"action": action, "parameters": params.object()?});
            let path = format!("v1/boards/{}/plugins/{}", seg(&board), seg(&plugin));
            output::reply(fmt, &c.call(Method::POST, &path, Some(&body)).await?);
        }
        BoardCmd::RemovePlugin { board, plugin } => {
            c.call(
                Method::DELETE,
                &format!("v1/boards/{}/plugins/{}", seg(&board), seg(&plugin)),
                None,
            )
            .await?;
            eprintln!("removed plugin {plugin} from board {board}");
        }
        BoardCmd::Services { board } => {
            let v = c
                .get(&format!("v1/boards/{}/services", seg(&board)))
                .await?;
            output::list(
                fmt,
                v["exposed"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &["service", "public_port", "created_at"],
            );
        }
        BoardCmd::ServiceAction {
            board,
            service,
            action,
        } => {
            let body = json!({"action": action});
            let path = format!(
                "v1/boards/{}/services/{}/action",
                seg(&board),
                seg(&service)
            );
            output::reply(fmt, &c.call(Method::POST, &path, Some(&body)).await?);
        }
        BoardCmd::Ports { board } => {
            let v = c.get(&format!("v1/boards/{}/ports", seg(&board))).await?;
            output::list(
                fmt,
                v["ports"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &["uuid", "VIF_name", "MAC_add", "ip", "network"],
            );
        }
        BoardCmd::Webservices { board } => {
            let v = c
                .get(&format!("v1/boards/{}/webservices", seg(&board)))
                .await?;
            output::list(
                fmt,
                v["webservices"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
                &["uuid", "name", "port", "secure"],
            );
        }
    }
    Ok(())
}

/// A plugin file's code: text as it is, a compiled WebAssembly module as base64.
fn read_source(path: &std::path::Path) -> Result<String, Failure> {
    use base64::Engine as _;
    let bytes = std::fs::read(path)
        .map_err(|e| usage(format!("cannot read plugin source {}: {e}", path.display())))?;
    if bytes.starts_with(b"\0asm") {
        return Ok(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    String::from_utf8(bytes).map_err(|_| {
        usage(format!(
            "{} is neither UTF-8 text nor a WebAssembly module",
            path.display()
        ))
    })
}

/// `--extra`, with `"runtime": "wasm"` added for a `.wasm` or `.wat` file when it names no
/// runtime.
fn plugin_extra(
    file: Option<&std::path::Path>,
    extra: &Option<String>,
    create: bool,
) -> Result<Option<Value>, Failure> {
    let mut e = json_arg("extra", extra)?;
    let wasm_file = file
        .and_then(|f| f.extension())
        .is_some_and(|x| x == "wasm" || x == "wat");
    if wasm_file && (create || e.is_some()) {
        if let Value::Object(m) = e.get_or_insert_with(|| json!({})) {
            m.entry("runtime").or_insert_with(|| json!("wasm"));
        }
    }
    Ok(e)
}

async fn plugin(c: &Client, fmt: Format, cmd: PluginCmd) -> Outcome {
    match cmd {
        PluginCmd::List {
            opts,
            with_public,
            all,
        } => {
            let extra = [
                ("with_public", with_public.then(|| "true".to_string())),
                ("all_plugins", all.then(|| "true".to_string())),
            ];
            let items = c.list_all(&opts.path("plugins", &extra), "plugins").await?;
            output::list(
                fmt,
                &items,
                if opts.detail {
                    &[]
                } else {
                    &["uuid", "name", "owner", "public", "callable"]
                },
            );
        }
        PluginCmd::Show { plugin } => {
            output::show(fmt, &c.get(&format!("v1/plugins/{}", seg(&plugin))).await?)
        }
        PluginCmd::Create {
            name,
            file,
            public,
            callable,
            parameters,
            extra,
        } => {
            let mut m = Map::new();
            m.insert("name".into(), json!(name));
            m.insert("code".into(), json!(read_source(&file)?));
            m.insert("public".into(), json!(public));
            m.insert("callable".into(), json!(callable));
            put_opt(&mut m, "parameters", json_arg("parameters", &parameters)?);
            put_opt(&mut m, "extra", plugin_extra(Some(&file), &extra, true)?);
            output::show(
                fmt,
                &c.call(Method::POST, "v1/plugins", Some(&Value::Object(m)))
                    .await?,
            );
        }
        PluginCmd::Update {
            plugin,
            name,
            file,
            public,
            callable,
            parameters,
            extra,
        } => {
            let extra = plugin_extra(file.as_deref(), &extra, false)?;
            let mut m = Map::new();
            put_opt(&mut m, "name", name.map(Value::String));
            put_opt(
                &mut m,
                "code",
                file.map(|f| read_source(&f))
                    .transpose()?
                    .map(Value::String),
            );
            put_opt(&mut m, "public", public.map(Value::Bool));
            put_opt(&mut m, "callable", callable.map(Value::Bool));
            put_opt(&mut m, "parameters", json_arg("parameters", &parameters)?);
            put_opt(&mut m, "extra", extra);
            if m.is_empty() {
                return Err(usage("nothing to update"));
            }
            output::show(
                fmt,
                &c.call(
                    Method::PATCH,
                    &format!("v1/plugins/{}", seg(&plugin)),
                    Some(&Value::Object(m)),
                )
                .await?,
            );
        }
        PluginCmd::Delete { plugin } => {
            c.call(
                Method::DELETE,
                &format!("v1/plugins/{}", seg(&plugin)),
                None,
            )
            .await?;
            eprintln!("deleted plugin {plugin}");
        }
    }
    Ok(())
}

async fn service(c: &Client, fmt: Format, cmd: ServiceCmd) -> Outcome {
    match cmd {
        ServiceCmd::List { opts } => {
            let items = c.list_all(&opts.path("services", &[]), "services").await?;
            output::list(
                fmt,
                &items,
                if opts.detail {
                    &[]
                } else {
                    &["uuid", "name", "port", "protocol", "project"]
                },
            );
        }
        ServiceCmd::Show { service } => output::show(
            fmt,
            &c.get(&format!("v1/services/{}", seg(&service))).await?,
        ),
        ServiceCmd::Create {
            name,
            port,
            protocol,
            extra,
        } => {
            let mut m = Map::new();
            m.insert("name".into(), json!(name));
            m.insert("port".into(), json!(port));
            m.insert("protocol".into(), json!(protocol));
            put_opt(&mut m, "extra", json_arg("extra", &extra)?);
            output::show(
                fmt,
                &c.call(Method::POST, "v1/services", Some(&Value::Object(m)))
                    .await?,
            );
        }
        ServiceCmd::Update {
            service,
            name,
            port,
            protocol,
            extra,
        } => {
            let mut m = Map::new();
            put_opt(&mut m, "name", name.map(Value::String));
            put_opt(&mut m, "port", port.map(|p| json!(p)));
            put_opt(&mut m, "protocol", protocol.map(Value::String));
            put_opt(&mut m, "extra", json_arg("extra", &extra)?);
            if m.is_empty() {
                return Err(usage("nothing to update"));
            }
            output::show(
                fmt,
                &c.call(
                    Method::PATCH,
                    &format!("v1/services/{}", seg(&service)),
                    Some(&Value::Object(m)),
                )
                .await?,
            );
        }
        ServiceCmd::Delete { service } => {
            c.call(
                Method::DELETE,
                &format!("v1/services/{}", seg(&service)),
                None,
            )
            .await?;
            eprintln!("deleted service {service}");
        }
        ServiceCmd::Enable { service, board } => {
            service_action(c, fmt, &board, &service, "ServiceEnable").await?
        }
        ServiceCmd::Disable { service, board } => {
            service_action(c, fmt, &board, &service, "ServiceDisable").await?
        }
        ServiceCmd::Restore { service, board } => {
            service_action(c, fmt, &board, &service, "ServiceRestore").await?
        }
    }
    Ok(())
}

async fn service_action(
    c: &Client,
    fmt: Format,
    board: &str,
    service: &str,
    action: &str,
) -> Outcome {
    let reply = c
        .call(
            Method::POST,
            &format!("v1/boards/{}/services/{}/action", seg(board), seg(service)),
            Some(&json!({"action": action})),
        )
        .await?;
    output::reply(fmt, &reply);
    Ok(())
}

async fn fleet(c: &Client, fmt: Format, cmd: FleetCmd) -> Outcome {
    match cmd {
        FleetCmd::List { opts } => {
            let items = c.list_all(&opts.path("fleets", &[]), "fleets").await?;
            output::list(
                fmt,
                &items,
                if opts.detail {
                    &[]
                } else {
                    &["uuid", "name", "description", "project"]
                },
            );
        }
        FleetCmd::Show { fleet } => {
            output::show(fmt, &c.get(&format!("v1/fleets/{}", seg(&fleet))).await?)
        }
        FleetCmd::Create {
            name,
            description,
            extra,
        } => {
            let mut m = Map::new();
            m.insert("name".into(), json!(name));
            put_opt(&mut m, "description", description.map(Value::String));
            put_opt(&mut m, "extra", json_arg("extra", &extra)?);
            output::show(
                fmt,
                &c.call(Method::POST, "v1/fleets", Some(&Value::Object(m)))
                    .await?,
            );
        }
        FleetCmd::Update {
            fleet,
            name,
            description,
            extra,
        } => {
            let mut m = Map::new();
            put_opt(&mut m, "name", name.map(Value::String));
            put_opt(&mut m, "description", description.map(Value::String));
            put_opt(&mut m, "extra", json_arg("extra", &extra)?);
            if m.is_empty() {
                return Err(usage("nothing to update"));
            }
            output::show(
                fmt,
                &c.call(
                    Method::PATCH,
                    &format!("v1/fleets/{}", seg(&fleet)),
                    Some(&Value::Object(m)),
                )
                .await?,
            );
        }
        FleetCmd::Delete { fleet } => {
            c.call(Method::DELETE, &format!("v1/fleets/{}", seg(&fleet)), None)
                .await?;
            eprintln!("deleted fleet {fleet}");
        }
        FleetCmd::Boards { fleet } => {
            let items = c
                .list_all(&format!("v1/fleets/{}/boards", seg(&fleet)), "boards")
                .await?;
            output::list(fmt, &items, BOARD_COLS);
        }
        FleetCmd::Inject {
            fleet,
            plugin,
            onboot,
            staging,
        } => {
            let mut m = Map::new();
            m.insert("plugin".into(), json!(plugin));
            m.insert("onboot".into(), json!(onboot));
            let body = staging.into_body(m)?;
            let path = format!("v1/fleets/{}/plugins", seg(&fleet));
            return follow_rollout(c, fmt, &c.call(Method::POST, &path, Some(&body)).await?).await;
        }
        FleetCmd::PluginAction {
            fleet,
            plugin,
            action,
            params,
            staging,
        } => {
            let mut m = Map::new();
            m.insert("action".into(), json!(action));
            m.insert("parameters".into(), Value::Object(params.object()?));
            let body = staging.into_body(m)?;
            let path = format!("v1/fleets/{}/plugins/{}/action", seg(&fleet), seg(&plugin));
            return follow_rollout(c, fmt, &c.call(Method::POST, &path, Some(&body)).await?).await;
        }
    }
    Ok(())
}

/// Follows a rollout's parent request to the end: a progress line on stderr, then every
/// board's result and a summary. Fails (exit code 1) when any board failed.
async fn follow_rollout(c: &Client, fmt: Format, parent: &Value) -> Outcome {
    use std::io::Write;
    let uuid = parent["uuid"].as_str().unwrap_or_default().to_string();
    let total = parent["pending_requests"].as_u64().unwrap_or(0);
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    loop {
        let r = c.get(&format!("v1/requests/{}", seg(&uuid))).await?;
        let pending = r["pending_requests"].as_u64().unwrap_or(0);
        let done = total.saturating_sub(pending);
        if tty {
            let width = 30usize;
            let filled = (done as usize * width)
                .checked_div(total as usize)
                .unwrap_or(width);
            eprint!(
                "\r[{}{}] {done}/{total} boards",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        }
        if r["status"] == "COMPLETED" {
            break;
        }
        // Only calls deferred until their boards are back remain: report what is known.
        let results = c
            .get(&format!("v1/requests/{}/results", seg(&uuid)))
            .await?;
        let items = results["results"].as_array().cloned().unwrap_or_default();
        let waiting = items
            .iter()
            .filter(|x| x["result"] == "RUNNING")
            .all(|x| x["message"].as_str().unwrap_or("").starts_with("deferred"));
        if !items.is_empty() && waiting && items.len() as u64 >= total {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if tty {
        eprintln!();
    }
    let results = c
        .get(&format!("v1/requests/{}/results", seg(&uuid)))
        .await?;
    let items = results["results"].as_array().cloned().unwrap_or_default();
    output::list(fmt, &items, &["board_uuid", "result", "message"]);
    let tally = |outcome: &str| items.iter().filter(|r| r["result"] == outcome).count();
    let (ok, failed, warned, waiting) = (
        tally("SUCCESS"),
        tally("ERROR"),
        tally("WARNING"),
        tally("RUNNING"),
    );
    eprintln!(
        "request {uuid}: {ok} succeeded, {failed} failed, {warned} not run (offline or stopped), \
         {waiting} waiting for their boards, {} boards",
        items.len()
    );
    if failed > 0 {
        return Err(Failure {
            code: 1,
            message: format!(
                "{failed} boards failed; see the table or GET /v1/requests/{uuid}/results"
            ),
        });
    }
    Ok(())
}

async fn webservice(c: &Client, fmt: Format, cmd: WebserviceCmd) -> Outcome {
    match cmd {
        WebserviceCmd::List { opts } => {
            let items = c
                .list_all(&opts.path("webservices", &[]), "webservices")
                .await?;
            output::list(
                fmt,
                &items,
                if opts.detail {
                    &[]
                } else {
                    &["uuid", "name", "port", "board_uuid"]
                },
            );
        }
        WebserviceCmd::Show { webservice } => output::show(
            fmt,
            &c.get(&format!("v1/webservices/{}", seg(&webservice)))
                .await?,
        ),
        WebserviceCmd::Delete { webservice } => {
            c.call(
                Method::DELETE,
                &format!("v1/webservices/{}", seg(&webservice)),
                None,
            )
            .await?;
            eprintln!("deleted webservice {webservice}");
        }
        WebserviceCmd::Enable {
            board,
            dns,
            zone,
            email,
        } => output::show(
            fmt,
            &c.call(
                Method::POST,
                &format!("v1/boards/{}/webservices/enable", seg(&board)),
                Some(&json!({"dns": dns, "zone": zone, "email": email})),
            )
            .await?,
        ),
        WebserviceCmd::Expose {
            board,
            name,
            port,
            insecure,
        } => output::show(
            fmt,
            &c.call(
                Method::PUT,
                &format!("v1/boards/{}/webservices", seg(&board)),
                Some(&json!({"name": name, "port": port, "secure": !insecure})),
            )
            .await?,
        ),
        WebserviceCmd::Disable { board } => {
            c.call(
                Method::DELETE,
                &format!("v1/boards/{}/webservices/disable", seg(&board)),
                None,
            )
            .await?;
            eprintln!("webservices disabled on board {board}");
        }
        WebserviceCmd::Renew { board } => output::reply(
            fmt,
            &c.get(&format!("v1/boards/{}/webservices/renew", seg(&board)))
                .await?,
        ),
        WebserviceCmd::Enabled => {
            let items = c
                .list_all("v1/enabledwebservices", "EnabledWebservices")
                .await?;
            output::list(
                fmt,
                &items,
                &["board_uuid", "dns", "zone", "http_port", "https_port"],
            );
        }
    }
    Ok(())
}

/// A workload file: YAML (JSON is YAML too).
fn read_workload_file(path: &std::path::Path) -> Result<Value, Failure> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| usage(format!("standard input: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?
    };
    serde_norway::from_str::<Value>(&text)
        .map_err(|e| usage(format!("{}: not YAML or JSON: {e}", path.display())))
}

async fn workload(c: &Client, fmt: Format, cmd: WorkloadCmd) -> Outcome {
    match cmd {
        WorkloadCmd::Apply { file } => {
            let body = read_workload_file(&file)?;
            output::show(
                fmt,
                &c.call(Method::POST, "v1/workloads", Some(&body)).await?,
            );
        }
        WorkloadCmd::List => {
            let v = c.get("v1/workloads").await?;
            let rows: Vec<Value> = v["workloads"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|w| {
                    json!({
                        "uuid": w["uuid"], "name": w["name"], "generation": w["generation"],
                        "desired": w["status"]["desired"], "running": w["status"]["running"],
                    })
                })
                .collect();
            output::list(
                fmt,
                &rows,
                &["uuid", "name", "generation", "desired", "running"],
            );
        }
        WorkloadCmd::Show { workload } => {
            let w = c.get(&format!("v1/workloads/{}", seg(&workload))).await?;
            if fmt == Format::Json {
                output::show(fmt, &w);
            } else {
                let mut head = w.clone();
                if let Some(o) = head.as_object_mut() {
                    o.remove("replicas");
                }
                output::show(fmt, &head);
                output::list(
                    fmt,
                    w["replicas"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                    &[
                        "ordinal",
                        "uuid",
                        "board_uuid",
                        "state",
                        "exit_code",
                        "restarts",
                        "message",
                    ],
                );
            }
        }
        WorkloadCmd::Logs {
            workload,
            replica,
            lines,
        } => {
            let v = c
                .get(&format!(
                    "v1/workloads/{}/logs?replica={}&lines={lines}",
                    seg(&workload),
                    seg(&replica)
                ))
                .await?;
            if fmt == Format::Json {
                output::show(fmt, &v);
            } else {
                println!("{}", v["lines"].as_str().unwrap_or_default());
            }
        }
        WorkloadCmd::Delete { workload } => {
            c.call(
                Method::DELETE,
                &format!("v1/workloads/{}", seg(&workload)),
                None,
            )
            .await?;
            eprintln!("deleted workload {workload}");
        }
    }
    Ok(())
}

async fn port(c: &Client, fmt: Format, cmd: PortCmd) -> Outcome {
    match cmd {
        PortCmd::List { opts } => {
            let items = c.list_all(&opts.path("ports", &[]), "ports").await?;
            output::list(
                fmt,
                &items,
                if opts.detail {
                    &[]
                } else {
                    &["uuid", "board_uuid", "VIF_name", "MAC_add", "ip", "network"]
                },
            );
        }
        PortCmd::Show { port } => {
            output::show(fmt, &c.get(&format!("v1/ports/{}", seg(&port))).await?)
        }
        PortCmd::Delete { port } => {
            c.call(Method::DELETE, &format!("v1/ports/{}", seg(&port)), None)
                .await?;
            eprintln!("deleted port {port}");
        }
        PortCmd::Create { board, network } => output::show(
            fmt,
            &c.call(
                Method::PUT,
                &format!("v1/boards/{}/ports", seg(&board)),
                Some(&json!({"network": network})),
            )
            .await?,
        ),
    }
    Ok(())
}

async fn network(c: &Client, fmt: Format, cmd: NetworkCmd) -> Outcome {
    match cmd {
        NetworkCmd::List => {
            let v = c.get("v1/networks").await?;
            let rows: Vec<Value> = v["networks"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|n| {
                    json!({"uuid": n["uuid"], "name": n["name"], "cidr": n["cidr"], "mtu": n["mtu"],
                        "used": n["addresses"]["used"], "free": n["addresses"]["free"]})
                })
                .collect();
            output::list(fmt, &rows, &["uuid", "name", "cidr", "mtu", "used", "free"]);
        }
        NetworkCmd::Show { network } => output::show(
            fmt,
            &c.get(&format!("v1/networks/{}", seg(&network))).await?,
        ),
        NetworkCmd::Create {
            name,
            cidr,
            mtu,
            gateway,
        } => {
            let mut m = Map::new();
            m.insert("name".into(), json!(name));
            m.insert("cidr".into(), json!(cidr));
            put_opt(&mut m, "mtu", mtu.map(|v| json!(v)));
            put_opt(&mut m, "gateway", gateway.map(Value::String));
            output::show(
                fmt,
                &c.call(Method::POST, "v1/networks", Some(&Value::Object(m)))
                    .await?,
            );
        }
        NetworkCmd::Delete { network } => {
            c.call(
                Method::DELETE,
                &format!("v1/networks/{}", seg(&network)),
                None,
            )
            .await?;
            eprintln!("deleted network {network}");
        }
    }
    Ok(())
}

async fn request(c: &Client, fmt: Format, cmd: RequestCmd) -> Outcome {
    match cmd {
        RequestCmd::List { opts } => {
            let items = c.list_all(&opts.path("requests", &[]), "requests").await?;
            output::list(
                fmt,
                &items,
                if opts.detail {
                    &[]
                } else {
                    &[
                        "uuid",
                        "action",
                        "status",
                        "destination_uuid",
                        "main_request_uuid",
                    ]
                },
            );
        }
        RequestCmd::Show { request } => output::show(
            fmt,
            &c.get(&format!("v1/requests/{}", seg(&request))).await?,
        ),
        RequestCmd::Results { request } => {
            let v = c
                .get(&format!("v1/requests/{}/results", seg(&request)))
                .await?;
            output::list(
                fmt,
                v["results"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &["board_uuid", "result", "message"],
            );
        }
    }
    Ok(())
}

async fn tokens(c: &Client, fmt: Format, cmd: TokenCmd) -> Outcome {
    match cmd {
        TokenCmd::Create {
            user,
            project,
            roles,
            description,
        } => {
            let body = json!({"user_id": user, "project_id": project, "roles": roles, "description": description});
            output::show(fmt, &c.call(Method::POST, "v1/tokens", Some(&body)).await?);
        }
        TokenCmd::List => {
            let v = c.get("v1/tokens").await?;
            output::list(
                fmt,
                v["tokens"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &[
                    "id",
                    "user_id",
                    "project_id",
                    "roles",
                    "description",
                    "created_at",
                ],
            );
        }
        TokenCmd::Delete { id } => {
            c.call(Method::DELETE, &format!("v1/tokens/{id}"), None)
                .await?;
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}
