//! The OpenAPI 3.0.3 document of the API, served at `/v1/openapi.json` and copied to
//! `docs/openapi.json` (`tests/openapi.rs` keeps the copy current and checks that every documented
//! route is served).
//!
//! Written by hand with `json!`, one function per resource family. Sort keys, fields, statuses,
//! roles and action names are taken from the model, so they follow what the API accepts. What s4t
//! adds to IoTronic is marked `x-s4t-extension: true`.

use serde_json::{json, Map, Value};

use s4t_model::listing::{specs, CollectionSpec, MAX_LIMIT};
use s4t_model::policy::KNOWN_ROLES;
use s4t_model::resources::{
    Outcome, RequestStatus, BOARD_ACTIONS, BOARD_CODE_MAX, NAME_MAX, PLUGIN_ACTIONS,
    PLUGIN_CODE_MAX, SERVICE_ACTIONS,
};
use s4t_model::BoardStatus;

use crate::api::middleware::VERSION_HEADER;

const EXTENSION: &str = "x-s4t-extension";

const DESCRIPTION: &str = "The Stack4Things IoTronic v1 REST API, as served by s4t.\n\n\
Requests may name the microversion in `X-OpenStack-Iotronic-API-Version`: only 1.0 is served \
(no header or `latest` means 1.0), any other version is refused with 406. Every response carries \
the served version in the same header and an `Openstack-Request-Id`.\n\n\
Paths are also served with a trailing slash and without the `/v1` prefix. Error bodies are \
`{\"error_message\": \"<JSON-encoded fault>\"}`, except 401, which is in keystone's format.\n\n\
What s4t adds to IoTronic is marked `x-s4t-extension: true`.";

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Stack4Things IoTronic API",
            "version": "1.0",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "tags": tags(),
        "security": [{"token": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {"token": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": "An API token (see /v1/tokens). A cloud started with --noauth checks \
                    no token and trusts X-User-Id, X-Project-Id and X-Roles instead.",
            }},
            "parameters": parameters(),
            "responses": error_responses(),
            "schemas": schemas(),
        },
    })
}

fn tags() -> Value {
    json!([
        {"name": "versions", "description": "The version documents; no token needed."},
        {"name": "boards", "description": "Boards and board actions."},
        {"name": "plugins", "description": "The plugin catalogue and plugins on boards."},
        {"name": "services", "description": "The service catalogue and services exposed by boards."},
        {"name": "fleets", "description": "Groups of boards."},
        {"name": "webservices", "description": "Web services published by boards."},
        {"name": "ports", "description": "Network ports of boards."},
        {"name": "requests", "description": "The record of board operations and their results."},
        {"name": "tokens", "description": "API tokens; admin only.", EXTENSION: true},
        {"name": "networks", "description": "Overlay networks that board ports join.", EXTENSION: true},
        {"name": "workloads", "description": "Programs the cloud keeps running on boards.", EXTENSION: true},
    ])
}

// ---------------------------------------------------------------------------------------------
// Paths

fn paths() -> Value {
    let families = [
        version_paths(),
        board_paths(),
        plugin_paths(),
        service_paths(),
        fleet_paths(),
        webservice_paths(),
        port_paths(),
        request_paths(),
        token_paths(),
    ];
    let mut all = Map::new();
    for family in families {
        if let Value::Object(items) = family {
            for (path, ops) in items {
                let item = path_item(&path, ops);
                all.insert(path, item);
            }
        }
    }
    Value::Object(all)
}

/// `ops` after the parameters they share: the path's `{name}`s and the version header.
fn path_item(path: &str, ops: Value) -> Value {
    let mut params: Vec<Value> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(param_ref)
        .collect();
    params.push(param_ref("api_version"));
    let mut item = Map::new();
    item.insert("parameters".into(), Value::Array(params));
    if let Value::Object(ops) = ops {
        item.extend(ops);
    }
    Value::Object(item)
}

fn version_paths() -> Value {
    let op = |summary: &str| Op::new("versions", summary).public();
    let root = json!({"type": "object", "properties": {
        "name": string(),
        "description": string(),
        "versions": array(schema_ref("Version")),
        "default_version": schema_ref("Version"),
    }});
    let v1 = json!({
        "type": "object",
        "description": "The collections, each as a list of links.",
        "properties": {"id": string(), "links": links()},
        "additionalProperties": links(),
    });
    json!({
        "/": {"get": op("The API versions").ok(root, PUBLIC)},
        "/v1": {"get": op("The v1 API and its collections").ok(v1, PUBLIC)},
        "/v1/openapi.json": {"get": op("This document").extension().ok(json!({"type": "object"}), PUBLIC)},
    })
}

fn board_paths() -> Value {
    let op = |summary: &str| Op::new("boards", summary);
    let list = |summary: &str, detail: bool| {
        let params = [
            list_params(&specs::BOARDS, detail),
            scope_params(),
            vec![board_status_filter()],
        ];
        conditional(
            op(summary)
                .params(params.concat())
                .ok(collection(&specs::BOARDS, "Board"), LIST),
        )
    };
    json!({
        "/v1/boards": {
            "get": list("List boards", false),
            "post": op("Create a board").body("NewBoard").created("Board", CREATE),
        },
        "/v1/boards/detail": {"get": list("List boards with every field", true)},
        "/v1/boards/{board}": {
            "get": conditional(op("Show a board").params(show_params(&specs::BOARDS)).ok(schema_ref("Board"), SHOW)),
            "patch": op("Update a board").body("BoardPatch").ok(schema_ref("Board"), WRITE),
            "delete": op("Delete a board; a connected board is factory-reset first").no_content(WRITE),
        },
        "/v1/boards/{board}/action": {
            "post": op("Run an action on a board").body("BoardAction").ok(reply(), OPERATE),
        },
    })
}

fn plugin_paths() -> Value {
    let op = |summary: &str| Op::new("plugins", summary);
    let list = |summary: &str, params: Vec<Value>| {
        op(summary)
            .params(params)
            .ok(collection(&specs::PLUGINS, "Plugin"), LIST)
    };
    let own = |detail: bool| {
        let filters = vec![
            flag("all_plugins", "Admin only: list every user's plugins."),
            flag("with_public", "Also list other users' public plugins."),
        ];
        [list_params(&specs::PLUGINS, detail), filters].concat()
    };
    json!({
        "/v1/plugins": {
            "get": list("List the caller's plugins", own(false)),
            "post": op("Create a plugin").body("NewPlugin").created("Plugin", CREATE),
        },
        "/v1/plugins/detail": {
            "get": list("List the caller's plugins with every field", own(true)),
        },
        "/v1/plugins/public": {"get": list("List the public plugins", list_params(&specs::PLUGINS, false))},
        "/v1/plugins/{plugin}": {
            "get": op("Show a plugin").params(show_params(&specs::PLUGINS)).ok(schema_ref("Plugin"), SHOW),
            "patch": op("Update a plugin").body("PluginPatch").ok(schema_ref("Plugin"), WRITE),
            "delete": op("Delete a plugin").no_content(WRITE),
        },
        "/v1/boards/{board}/plugins": {
            "get": op("List the plugins injected into a board").ok(list_of("injections", "Injection"), SHOW),
            "put": op("Inject a plugin into a board").body("PluginInjection").ok(reply(), OPERATE),
        },
        "/v1/boards/{board}/plugins/{plugin}": {
            "post": op("Run a plugin action on a board").body("PluginAction").ok(reply(), OPERATE),
            "delete": op("Remove a plugin from a board").no_content(OPERATE),
        },
        "/v1/boards/{board}/plugins/{plugin}/logs": {
            "get": op("The last lines of a plugin's log on the board (s4t agent boards)")
                .extension()
                .params(vec![query_param("lines", "How many lines, 1 to 10000 (default 100).", integer())])
                .ok(reply(), OPERATE),
        },
    })
}

fn service_paths() -> Value {
    let op = |summary: &str| Op::new("services", summary);
    let list = |summary: &str, detail: bool| {
        let all = flag(
            "all_services",
            "Admin only: list the services of every project.",
        );
        let params = [
            list_params(&specs::SERVICES, detail),
            scope_params(),
            vec![all],
        ];
        op(summary)
            .params(params.concat())
            .ok(collection(&specs::SERVICES, "Service"), LIST)
    };
    let exposed = || list_of("exposed", "ExposedService");
    json!({
        "/v1/services": {
            "get": list("List services", false),
            "post": op("Create a service").body("NewService").created("Service", CREATE),
        },
        "/v1/services/detail": {"get": list("List services with every field", true)},
        "/v1/services/public": {"get": list("List services (as /v1/services)", false)},
        "/v1/services/{service}": {
            "get": op("Show a service").params(show_params(&specs::SERVICES)).ok(schema_ref("Service"), SHOW),
            "patch": op("Update a service").body("ServicePatch").ok(schema_ref("Service"), WRITE),
            "delete": op("Delete a service").no_content(WRITE),
        },
        "/v1/boards/{board}/services": {
            "get": op("List the services a board exposes").ok(exposed(), SHOW),
        },
        "/v1/boards/{board}/services/restore": {
            "get": op("Expose again every service a board exposes").ok(exposed(), OPERATE),
        },
        "/v1/boards/{board}/services/status": {
            "get": op("Ask a board for the status of its services").ok(reply(), OPERATE),
        },
        "/v1/boards/{board}/services/{service}/action": {
            "post": op("Run a service action on a board").body("ServiceAction").ok(reply(), OPERATE),
        },
        "/v1/workloads": {
            "get": Op::new("workloads", "List workloads with their replicas").extension().ok(json!({"type": "object"}), LIST),
            "post": Op::new("workloads", "Apply a workload: create it, or update the one of that name")
                .extension()
                .body("Workload")
                .created("WorkloadStatus", CREATE),
        },
        "/v1/workloads/{workload}": {
            "get": Op::new("workloads", "Show a workload: spec, generation, replicas and their states").extension().ok(schema_ref("WorkloadStatus"), SHOW),
            "delete": Op::new("workloads", "Delete a workload; its replicas stop").extension().no_content(WRITE),
        },
        "/v1/workloads/{workload}/logs": {
            "get": Op::new("workloads", "The last lines of one replica's log (?replica=ORDINAL|UUID&lines=N)").extension().ok(json!({"type": "object"}), OPERATE),
        },
        "/v1/tunnels": {
            "get": op("The tunnel server as it runs: URL, port range, open ports, counters")
                .extension()
                .ok(json!({"type": "object"}), SHOW),
        },
    })
}

fn fleet_paths() -> Value {
    let op = |summary: &str| Op::new("fleets", summary);
    let list = |summary: &str, detail: bool| {
        op(summary)
            .params([list_params(&specs::FLEETS, detail), scope_params()].concat())
            .ok(collection(&specs::FLEETS, "Fleet"), LIST)
    };
    json!({
        "/v1/fleets": {
            "get": list("List fleets", false),
            "post": op("Create a fleet").body("NewFleet").created("Fleet", CREATE),
        },
        "/v1/fleets/detail": {"get": list("List fleets with every field", true)},
        "/v1/fleets/{fleet}": {
            "get": op("Show a fleet").params(show_params(&specs::FLEETS)).ok(schema_ref("Fleet"), SHOW),
            "patch": op("Update a fleet").body("FleetPatch").ok(schema_ref("Fleet"), WRITE),
            "delete": op("Delete a fleet").no_content(WRITE),
        },
        "/v1/fleets/{fleet}/boards": {
            "get": op("List the boards of a fleet")
                .params(list_params(&specs::BOARDS, false))
                .ok(collection(&specs::BOARDS, "Board"), SHOW),
        },
        "/v1/fleets/{fleet}/plugins": {
            "post": op("Inject a plugin into every board of the fleet (a staged rollout)")
                .extension()
                .body("FleetPluginInjection")
                .accepted("Request", WRITE),
        },
        "/v1/fleets/{fleet}/plugins/{plugin}/action": {
            "post": op("Run a plugin action on every board of the fleet (a staged rollout)")
                .extension()
                .body("FleetPluginAction")
                .accepted("Request", WRITE),
        },
    })
}

fn webservice_paths() -> Value {
    let op = |summary: &str| Op::new("webservices", summary);
    let list = |summary: &str, detail: bool, errors| {
        op(summary)
            .params([list_params(&specs::WEBSERVICES, detail), scope_params()].concat())
            .ok(collection(&specs::WEBSERVICES, "Webservice"), errors)
    };
    let enabled = [
        list_params(&specs::ENABLED_WEBSERVICES, false),
        scope_params(),
    ]
    .concat();
    json!({
        "/v1/webservices": {"get": list("List webservices", false, LIST)},
        "/v1/webservices/detail": {"get": list("List webservices with every field", true, LIST)},
        "/v1/webservices/{webservice}": {
            "get": op("Show a webservice")
                .params(show_params(&specs::WEBSERVICES))
                .ok(schema_ref("Webservice"), SHOW),
            "delete": op("Delete a webservice").no_content(WRITE),
        },
        "/v1/enabledwebservices": {
            "get": op("List the boards with webservices enabled")
                .params(enabled)
                .ok(collection(&specs::ENABLED_WEBSERVICES, "EnabledWebservice"), LIST),
        },
        "/v1/boards/{board}/webservices": {
            "get": list("List the webservices of a board", false, SHOW),
            "put": op("Publish a board port as https://NAME.DNS.ZONE through the cloud's front")
                .body("WebserviceExposure")
                .created("Webservice", OPERATE),
        },
        "/v1/boards/{board}/webservices/enable": {
            "post": op("Enable webservices on a board under DNS.ZONE")
                .body("WebserviceEnabling")
                .created("EnabledWebservice", OPERATE),
        },
        "/v1/boards/{board}/webservices/disable": {
            "delete": op("Disable webservices on a board (every webservice of it goes)").no_content(OPERATE),
        },
        "/v1/boards/{board}/webservices/renew": {
            "get": op("Renew the certificates of a board's webservices (served from the next connection)").ok(reply(), OPERATE),
        },
    })
}

fn port_paths() -> Value {
    let op = |summary: &str| Op::new("ports", summary);
    let list = |summary: &str, detail: bool| {
        op(summary)
            .params([list_params(&specs::PORTS, detail), scope_params()].concat())
            .ok(collection(&specs::PORTS, "Port"), LIST)
    };
    json!({
        "/v1/ports": {"get": list("List ports", false)},
        "/v1/ports/detail": {"get": list("List ports with every field", true)},
        "/v1/ports/{port}": {
            "get": op("Show a port").params(show_params(&specs::PORTS)).ok(schema_ref("Port"), SHOW),
            "delete": op("Delete a port").no_content(WRITE),
        },
        "/v1/boards/{board}/ports": {
            "get": op("List the ports of a board").ok(list_of("ports", "BoardPort"), SHOW),
            "put": op("Attach a board to an s4t network: a port with an address, a MAC and an interface name; the board makes the TAP and joins the network through an encrypted tunnel to the cloud's hub")
                .body("PortAttachment")
                .created("Port", OPERATE),
        },
        "/v1/boards/{board}/ports/{port}": {
            "get": op("Show a port of a board").ok(schema_ref("BoardPort"), SHOW),
            "delete": op("Delete a port of a board").no_content(WRITE),
        },
        "/v1/networks": {
            "get": Op::new("networks", "List overlay networks").extension().ok(json!({"type": "object"}), LIST),
            "post": Op::new("networks", "Create an overlay network (IPv4 range, MTU, optional gateway)")
                .extension()
                .body("NewNetwork")
                .created("Network", CREATE),
        },
        "/v1/networks/{network}": {
            "get": Op::new("networks", "Show a network, with its addresses used and free").extension().ok(schema_ref("Network"), SHOW),
            "delete": Op::new("networks", "Delete a network no port uses").extension().no_content(WRITE),
        },
        "/v1/overlay": {
            "get": Op::new("networks", "The overlay hub as it runs: public key, address, sessions, learnt addresses per network, counters")
                .extension()
                .ok(json!({"type": "object"}), SHOW),
        },
        "/v1/metrics": {
            "get": Op::new("networks", "Counters of the overlay hub and the tunnel server in the Prometheus text format (also at /metrics; the token may come as Authorization: Bearer)")
                .extension()
                .ok(json!({"type": "string"}), SHOW),
        },
    })
}

fn request_paths() -> Value {
    let op = |summary: &str| Op::new("requests", summary);
    let list = |summary: &str, detail: bool| {
        op(summary)
            .params([list_params(&specs::REQUESTS, detail), scope_params()].concat())
            .ok(collection(&specs::REQUESTS, "Request"), LIST)
    };
    let result_fields = fields(&specs::RESULTS, specs::RESULTS.default_fields);
    json!({
        "/v1/requests": {"get": list("List requests", false)},
        "/v1/requests/detail": {"get": list("List requests with every field", true)},
        "/v1/requests/{request}": {
            "get": op("Show a request").params(show_params(&specs::REQUESTS)).ok(schema_ref("Request"), SHOW),
        },
        "/v1/requests/{request}/results": {
            "get": op("List the results of a request")
                .params(vec![result_fields])
                .ok(list_of("results", "Result"), SHOW),
        },
    })
}

fn token_paths() -> Value {
    let op = |summary: &str| Op::new("tokens", summary).extension();
    json!({
        "/v1/tokens": {
            "get": op("List API tokens").ok(list_of("tokens", "Token"), ADMIN),
            "post": op("Create an API token; only this response shows it")
                .body("NewToken")
                .created("Token", CREATE),
        },
        "/v1/tokens/{id}": {"delete": op("Revoke an API token").no_content(WRITE)},
    })
}

/// A GET answered with an `ETag`, and with `304 Not Modified` when `If-None-Match` names it
/// (`api::cache`).
fn conditional(mut op: Value) -> Value {
    let param = json!({"name": "If-None-Match", "in": "header", "required": false,
        "description": "The ETag of a body received before: 304 and no body while the boards have not changed.",
        "schema": {"type": "string"}});
    if let Some(params) = op["parameters"].as_array_mut() {
        params.push(param);
    }
    op["responses"]["200"]["headers"] = json!({"ETag": {
        "description": "Names this body; changes when any board changes.",
        "schema": {"type": "string"}}});
    op["responses"]["304"] =
        json!({"description": "Not Modified: the body named by If-None-Match is current"});
    op
}

/// An operation under construction; its success response finishes it.
struct Op(Map<String, Value>);

impl Op {
    fn new(tag: &str, summary: &str) -> Op {
        let mut op = Map::new();
        op.insert("tags".into(), json!([tag]));
        op.insert("summary".into(), json!(summary));
        Op(op)
    }

    fn params(mut self, params: Vec<Value>) -> Op {
        self.0.insert("parameters".into(), Value::Array(params));
        self
    }

    /// A required JSON body of the named schema.
    fn body(mut self, schema: &str) -> Op {
        let body = json!({"required": true, "content": json_content(schema_ref(schema))});
        self.0.insert("requestBody".into(), body);
        self
    }

    /// Served without a token.
    fn public(mut self) -> Op {
        self.0.insert("security".into(), json!([]));
        self
    }

    fn extension(mut self) -> Op {
        self.0.insert(EXTENSION.into(), json!(true));
        self
    }

    fn ok(self, schema: Value, errors: &[ErrorResponse]) -> Value {
        let success = json!({"description": "OK", "content": json_content(schema)});
        self.responses("200", success, errors)
    }

    fn created(self, schema: &str, errors: &[ErrorResponse]) -> Value {
        let success =
            json!({"description": "Created", "content": json_content(schema_ref(schema))});
        self.responses("201", success, errors)
    }

    /// 202: work started in the background, tracked by the returned resource.
    fn accepted(self, schema: &str, errors: &[ErrorResponse]) -> Value {
        let success = json!({"description": "Accepted; follow the returned request and its results",
            "content": json_content(schema_ref(schema))});
        self.responses("202", success, errors)
    }

    fn no_content(self, errors: &[ErrorResponse]) -> Value {
        self.responses("204", json!({"description": "Done; no body"}), errors)
    }

    fn responses(mut self, status: &str, success: Value, errors: &[ErrorResponse]) -> Value {
        let mut responses = Map::new();
        responses.insert(status.into(), success);
        for e in errors {
            responses.insert(e.status.into(), reference("responses", e.name));
        }
        self.0.insert("responses".into(), Value::Object(responses));
        Value::Object(self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Error responses

/// An error status, shared by the operations through `#/components/responses/{name}`.
struct ErrorResponse {
    status: &'static str,
    name: &'static str,
    description: &'static str,
}

const BAD_REQUEST: ErrorResponse = ErrorResponse {
    status: "400",
    name: "BadRequest",
    description:
        "The body, a query parameter or an identifier is invalid, or the board is not connected.",
};
const UNAUTHORIZED: ErrorResponse = ErrorResponse {
    status: "401",
    name: "Unauthorized",
    description: "No valid token was sent.",
};
const FORBIDDEN: ErrorResponse = ErrorResponse {
    status: "403",
    name: "Forbidden",
    description: "The caller's roles do not allow this.",
};
const NOT_FOUND: ErrorResponse = ErrorResponse {
    status: "404",
    name: "NotFound",
    description:
        "The resource, or one the request names, does not exist or is not visible to the caller.",
};
const NOT_ACCEPTABLE: ErrorResponse = ErrorResponse {
    status: "406",
    name: "NotAcceptable",
    description: "The requested microversion is not served: only 1.0 is.",
};
const CONFLICT: ErrorResponse = ErrorResponse {
    status: "409",
    name: "Conflict",
    description: "A name or uuid is taken, a name matches several resources (use the uuid), \
        or the resource is still in use.",
};
const BOARD_FAILED: ErrorResponse = ErrorResponse {
    status: "500",
    name: "BoardFailed",
    description: "The board reported an error, or could not be reached.",
};
const NOT_IMPLEMENTED: ErrorResponse = ErrorResponse {
    status: "501",
    name: "NotImplemented",
    description: "Not served yet: it needs a part of the cloud that does not run yet \
        (the network layer, the HTTPS front).",
};

const PUBLIC: &[ErrorResponse] = &[NOT_ACCEPTABLE];
const ADMIN: &[ErrorResponse] = &[UNAUTHORIZED, FORBIDDEN, NOT_ACCEPTABLE];
const LIST: &[ErrorResponse] = &[BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_ACCEPTABLE];
const SHOW: &[ErrorResponse] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    NOT_ACCEPTABLE,
    CONFLICT,
];
const CREATE: &[ErrorResponse] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_ACCEPTABLE,
    CONFLICT,
];
const WRITE: &[ErrorResponse] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    NOT_ACCEPTABLE,
    CONFLICT,
];
/// Operations carried out by a board.
const OPERATE: &[ErrorResponse] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    NOT_ACCEPTABLE,
    CONFLICT,
    BOARD_FAILED,
];

fn error_responses() -> Value {
    let all = [
        BAD_REQUEST,
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        NOT_ACCEPTABLE,
        CONFLICT,
        BOARD_FAILED,
        NOT_IMPLEMENTED,
    ];
    let responses = all.iter().map(|e| {
        let response = if e.status == UNAUTHORIZED.status {
            json!({
                "description": e.description,
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": json_content(schema_ref("KeystoneError")),
            })
        } else {
            json!({"description": e.description, "content": json_content(schema_ref("Error"))})
        };
        (e.name.to_string(), response)
    });
    Value::Object(responses.collect())
}

// ---------------------------------------------------------------------------------------------
// Parameters

fn parameters() -> Value {
    json!({
        "api_version": {
            "name": VERSION_HEADER,
            "in": "header",
            "description": "The microversion: only 1.0 is served; any other is refused with 406.",
            "schema": {"type": "string", "enum": ["1.0", "latest"]},
        },
        "board": path_param("board", "The board's uuid or name.", string()),
        "plugin": path_param("plugin", "The plugin's uuid or name.", string()),
        "service": path_param("service", "The service's uuid or name.", string()),
        "fleet": path_param("fleet", "The fleet's uuid or name.", string()),
        "webservice": path_param("webservice", "The webservice's uuid.", uuid()),
        "port": path_param("port", "The port's uuid.", uuid()),
        "request": path_param("request", "The request's uuid.", uuid()),
        "id": path_param("id", "The token's id.", integer()),
        "limit": query_param("limit", "The most entries to return.", json!({
            "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": MAX_LIMIT,
        })),
        "marker": query_param(
            "marker",
            "Start after this entry: the last one of the previous page, as in the `next` link.",
            string(),
        ),
        "sort_dir": query_param("sort_dir", "The sort direction.", json!({
            "type": "string", "enum": ["asc", "desc"], "default": "asc",
        })),
        "project": query_param(
            "project",
            "Admin only: list this project's entries instead of the caller's.",
            string(),
        ),
        "all_projects": s4t_extension(flag("all_projects", "Admin only: list the entries of every project.")),
    })
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": schema})
}

fn flag(name: &str, description: &str) -> Value {
    query_param(
        name,
        description,
        json!({"type": "boolean", "default": false}),
    )
}

fn param_ref(name: &str) -> Value {
    reference("parameters", name)
}

/// Paging, sorting and field selection of a list of `spec`; detail lists return every field.
fn list_params(spec: &CollectionSpec, detail: bool) -> Vec<Value> {
    let default = if detail {
        spec.fields
    } else {
        spec.default_fields
    };
    let sort_key = query_param(
        "sort_key",
        "The field to sort by; `id` (creation order) breaks ties.",
        json!({"type": "string", "enum": spec.sort_keys, "default": "id"}),
    );
    vec![
        param_ref("limit"),
        param_ref("marker"),
        sort_key,
        param_ref("sort_dir"),
        fields(spec, default),
    ]
}

/// `fields` for one resource of `spec`: every field by default.
fn show_params(spec: &CollectionSpec) -> Vec<Value> {
    vec![fields(spec, spec.fields)]
}

fn fields(spec: &CollectionSpec, default: &[&str]) -> Value {
    let mut description = format!(
        "The fields to return, comma-separated (default: {}).",
        default.join(", ")
    );
    if !spec.always.is_empty() {
        description += &format!(" Always returned: {}.", spec.always.join(", "));
    }
    if !spec.strict_fields {
        description += " Unknown names are ignored.";
    }
    json!({
        "name": "fields",
        "in": "query",
        "description": description,
        "style": "form",
        "explode": false,
        "schema": array(json!({"type": "string", "enum": spec.fields})),
    })
}

/// `project` and `all_projects`, for lists scoped to the caller's project.
fn scope_params() -> Vec<Value> {
    vec![param_ref("project"), param_ref("all_projects")]
}

fn board_status_filter() -> Value {
    let statuses = BoardStatus::ALL.map(BoardStatus::as_str);
    query_param(
        "status",
        "Only boards in this status.",
        json!({"type": "string", "enum": statuses}),
    )
}

// ---------------------------------------------------------------------------------------------
// Schemas

fn schemas() -> Value {
    let mut all = Map::new();
    for group in [common_schemas(), resource_schemas(), body_schemas()] {
        if let Value::Object(schemas) = group {
            all.extend(schemas);
        }
    }
    Value::Object(all)
}

fn common_schemas() -> Value {
    let fault =
        r#"{"faultcode":"Client","faultstring":"Board b1 could not be found.","debuginfo":null}"#;
    json!({
        "Error": {
            "type": "object",
            "required": ["error_message"],
            "properties": {"error_message": {
                "type": "string",
                "description": "A JSON-encoded WSME fault: {\"faultcode\": \"Client\" or \"Server\", \
                    \"faultstring\": the message, \"debuginfo\": null}.",
                "example": fault,
            }},
        },
        "KeystoneError": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "integer", "example": 401},
                "title": {"type": "string", "example": "Unauthorized"},
                "message": string(),
            }}},
        },
        "Link": {"type": "object", "properties": {
            "href": {"type": "string", "format": "uri"},
            "rel": {"type": "string", "enum": ["self", "bookmark"]},
        }},
        "Version": {"type": "object", "properties": {
            "id": {"type": "string", "example": "v1"},
            "links": links(),
            "status": {"type": "string", "example": "CURRENT"},
            "version": {"type": "string", "example": "1.0"},
            "min_version": {"type": "string", "example": "1.0"},
        }},
    })
}

fn resource_schemas() -> Value {
    let outcomes = [
        Outcome::Success,
        Outcome::Error,
        Outcome::Warning,
        Outcome::Running,
    ];
    let request_statuses = [RequestStatus::Pending, RequestStatus::Completed];
    json!({
        "Board": board_schema(),
        "Location": {"type": "object", "properties": {
            "longitude": string(),
            "latitude": string(),
            "altitude": string(),
            "updated_at": nullable(timestamp()),
        }},
        "Plugin": resource(json!({
            "uuid": uuid(),
            "name": string(),
            "code": described(string(), "The plugin source."),
            "public": boolean(),
            "owner": nullable(string()),
            "callable": nullable(boolean()),
            "parameters": object(),
            "extra": object(),
            "digest": {"type": "string", "description": "sha256 of `code`, hex.", EXTENSION: true},
            "links": links(),
        })),
        "Injection": resource(json!({
            "plugin": described(uuid(), "The injected plugin."),
            "status": {"type": "string", "enum": ["injected", "updated"]},
            "onboot": boolean(),
        })),
        "Service": resource(json!({
            "uuid": uuid(),
            "name": string(),
            "project": nullable(string()),
            "port": port_number(),
            "protocol": {"type": "string", "enum": ["TCP", "UDP"]},
            "extra": object(),
            "links": links(),
        })),
        "ExposedService": resource(json!({
            "service": uuid(),
            "public_port": port_number(),
        })),
        "Fleet": resource(json!({
            "uuid": uuid(),
            "name": string(),
            "project": nullable(string()),
            "description": nullable(string()),
            "extra": object(),
            "links": links(),
        })),
        "Webservice": resource(json!({
            "uuid": uuid(),
            "name": string(),
            "port": port_number(),
            "board_uuid": uuid(),
            "secure": boolean(),
            "extra": object(),
            "links": links(),
        })),
        "WorkloadStatus": s4t_extension(resource(json!({
            "uuid": uuid(),
            "name": string(),
            "project": nullable(string()),
            "generation": {"type": "integer"},
            "spec": schema_ref("Workload"),
            "pinned_board": nullable(uuid()),
            "status": {"type": "object", "properties": {
                "desired": {"type": "integer"}, "placed": {"type": "integer"}, "running": {"type": "integer"},
            }},
            "replicas": {"type": "array", "items": {"type": "object", "properties": {
                "uuid": uuid(), "ordinal": {"type": "integer"}, "board_uuid": nullable(uuid()),
                "generation": {"type": "integer"},
                "state": {"type": "string", "enum": ["pending", "starting", "running", "backoff", "exited", "failed", "stopped", "unknown"]},
                "exit_code": nullable(json!({"type": "integer"})), "restarts": {"type": "integer"},
                "message": nullable(string()), "placed_at": nullable(timestamp()), "reported_at": nullable(timestamp()),
            }}},
        }))),
        "Network": s4t_extension(resource(json!({
            "uuid": uuid(),
            "name": string(),
            "project": nullable(string()),
            "cidr": string(),
            "mtu": {"type": "integer"},
            "gateway": nullable(string()),
            "addresses": {"type": "object", "properties": {"used": {"type": "integer"}, "free": {"type": "integer"}}},
        }))),
        "EnabledWebservice": resource(json!({
            "board_uuid": uuid(),
            "http_port": port_number(),
            "https_port": port_number(),
            "dns": string(),
            "zone": string(),
            "extra": object(),
        })),
        "Port": resource(json!({
            "uuid": uuid(),
            "board_uuid": uuid(),
            "MAC_add": string(),
            "VIF_name": string(),
            "network": nullable(string()),
            "ip": nullable(string()),
            "links": links(),
            "status": {"type": "object", "description": "Ports on s4t networks: whether the board's tunnel to the hub is up (tunnel, transport, endpoint, last_handshake, bytes and frames from and to the board), or why it is down"},
        })),
        "BoardPort": resource(json!({
            "uuid": uuid(),
            "VIF_name": string(),
            "MAC_add": string(),
            "ip": nullable(string()),
            "network": nullable(string()),
            "status": {"type": "object", "description": "Ports on s4t networks: whether the board's tunnel to the hub is up (tunnel, transport, endpoint, last_handshake, bytes and frames from and to the board), or why it is down"},
        })),
        "Request": resource(json!({
            "uuid": uuid(),
            "destination_uuid": nullable(uuid()),
            "main_request_uuid": nullable(uuid()),
            "pending_requests": integer(),
            "status": {"type": "string", "enum": request_statuses.map(RequestStatus::as_str)},
            "project": nullable(string()),
            "type": described(json!({"type": "integer", "enum": [0, 1]}), "0: board, 1: fleet."),
            "action": nullable(string()),
            "links": links(),
        })),
        "Result": resource(json!({
            "board_uuid": uuid(),
            "request_uuid": uuid(),
            "result": {"type": "string", "enum": outcomes.map(Outcome::as_str)},
            "message": string(),
        })),
        "Token": {"type": "object", EXTENSION: true, "properties": {
            "id": integer(),
            "user_id": string(),
            "project_id": nullable(string()),
            "roles": array(json!({"type": "string", "enum": KNOWN_ROLES})),
            "description": nullable(string()),
            "created_at": timestamp(),
            "token": described(string(), "The token itself: only in the response that creates it."),
        }},
    })
}

fn board_schema() -> Value {
    let statuses = BoardStatus::ALL.map(BoardStatus::as_str);
    resource(json!({
        "uuid": uuid(),
        "code": string(),
        "status": {"type": "string", "enum": statuses},
        "name": string(),
        "type": nullable(string()),
        "agent": nullable(string()),
        "wstun_ip": described(nullable(string()), "Present once the board has an agent."),
        "owner": nullable(string()),
        "session": nullable(string()),
        "project": nullable(string()),
        "fleet": nullable(uuid()),
        "mobile": boolean(),
        "lr_version": nullable(string()),
        "connectivity": object(),
        "links": links(),
        "location": array(schema_ref("Location")),
        "extra": object(),
        "config": described(
            object(),
            "The provisioning document; until the board registers, where to register.",
        ),
    }))
}

fn body_schemas() -> Value {
    json!({
        "NewBoard": board_input(&["code", "name", "location"]),
        "BoardPatch": board_input(&[]),
        "NewLocation": input(json!({
            "longitude": coordinate(),
            "latitude": coordinate(),
            "altitude": coordinate(),
        }), &["longitude", "latitude", "altitude"]),
        "BoardAction": action_input(&BOARD_ACTIONS),
        "NewPlugin": plugin_input(&["name", "code"]),
        "PluginPatch": plugin_input(&[]),
        "PluginInjection": input(json!({
            "plugin": described(text(255), "The plugin's uuid or name."),
            "onboot": described(boolean(), "Start the plugin when the board boots."),
        }), &["plugin"]),
        "PluginAction": action_input(&PLUGIN_ACTIONS),
        "FleetPluginInjection": s4t_extension(input(rollout_fields(json!({
            "plugin": described(text(255), "The plugin's uuid or name."),
            "onboot": described(boolean(), "Start the plugin when the board boots."),
        })), &["plugin"])),
        "FleetPluginAction": s4t_extension(input(rollout_fields(json!({
            "action": {"type": "string", "enum": PLUGIN_ACTIONS},
            "parameters": object(),
        })), &["action"])),
        "NewService": service_input(&["name", "port", "protocol"]),
        "ServicePatch": service_input(&[]),
        "ServiceAction": action_input(&SERVICE_ACTIONS),
        "NewFleet": fleet_input(&["name"]),
        "FleetPatch": fleet_input(&[]),
        "WebserviceExposure": input(json!({
            "name": name(),
            "port": described(port_number(), "The board-local port to publish."),
            "secure": boolean(),
            "extra": object(),
        }), &["name", "port"]),
        "WebserviceEnabling": input(json!({
            "dns": text(100),
            "zone": text(100),
            "email": text(100),
        }), &["dns", "zone", "email"]),
        "Workload": s4t_extension(input(json!({
            "name": described(string(), "A DNS label, unique in the project; applying the same name updates it."),
            "runtime": {"type": "string", "enum": ["process", "wasm"], "default": "process"},
            "artifact": described(object(), "process: {command, args}; wasm: {digest: sha256:HEX, inline (base64) | url}."),
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "restart": {"type": "string", "enum": ["always", "on-failure", "never"], "default": "on-failure"},
            "limits": described(object(), "memory_mib, fuel, wall_secs: enforced for wasm replicas; stored for processes."),
            "placement": described(object(), "{board: B} or {replicas: N, fleet?: F, selector?: {...}, spread?: board | location}."),
            "expose": {"type": "array", "items": object()},
        }), &["name", "artifact", "placement"])),
        "NewNetwork": s4t_extension(input(json!({
            "name": name(),
            "cidr": described(string(), "The IPv4 range, such as 10.10.0.0/24 (prefix 8 to 30)."),
            "mtu": {"type": "integer", "minimum": 576, "maximum": 9000, "default": 1380},
            "gateway": described(string(), "A host address of the range that ports never get."),
        }), &["name", "cidr"])),
        "PortAttachment": input(json!({
            "network": text(64),
            "subnet": string(),
            "security_groups": {},
        }), &["network"]),
        "NewToken": token_input(),
    })
}

fn board_input(required: &[&str]) -> Value {
    let mut props = json!({
        "uuid": uuid(),
        "code": described(text(BOARD_CODE_MAX), "The code the board registers with."),
        "name": name(),
        "type": text(NAME_MAX),
        "fleet": described(nullable(string()), "The fleet's uuid or name."),
        "mobile": boolean(),
        "connectivity": object(),
        "location": described(
            array(schema_ref("NewLocation")),
            "One position (a single object is accepted too).",
        ),
        "extra": object(),
    });
    for field in [
        "status",
        "agent",
        "session",
        "wstun_ip",
        "lr_version",
        "config",
    ] {
        props[field] =
            json!({"description": "Set by the cloud: omit it (an empty value is tolerated)."});
    }
    for field in ["owner", "project"] {
        props[field] = json!({"description": "Ignored: taken from the caller's token."});
    }
    input(props, required)
}

fn plugin_input(required: &[&str]) -> Value {
    input(
        json!({
            "uuid": uuid(),
            "name": name(),
            "code": described(text(PLUGIN_CODE_MAX), "The plugin source."),
            "public": boolean(),
            "owner": {"description": "Ignored: the caller owns the plugin."},
            "callable": nullable(boolean()),
            "parameters": described(object(), "The parameters the plugin's start and call take."),
            "extra": object(),
        }),
        required,
    )
}

fn service_input(required: &[&str]) -> Value {
    input(
        json!({
            "uuid": uuid(),
            "name": name(),
            "project": {"description": "Ignored: taken from the caller's token."},
            "port": described(port_number(), "The board-local port."),
            "protocol": described(json!({"type": "string", "enum": ["TCP", "UDP"]}), "Any case."),
            "extra": object(),
        }),
        required,
    )
}

fn fleet_input(required: &[&str]) -> Value {
    input(
        json!({
            "uuid": uuid(),
            "name": name(),
            "project": {"description": "Ignored: taken from the caller's token."},
            "description": text(300),
            "extra": object(),
        }),
        required,
    )
}

fn action_input(actions: &[&str]) -> Value {
    input(
        json!({
            "action": {"type": "string", "enum": actions},
            "parameters": object(),
        }),
        &["action"],
    )
}

/// The staging options every fleet rollout takes, added to its own fields.
fn rollout_fields(mut fields: Value) -> Value {
    let extra = json!({
        "batch_size": described(json!({"type": "integer", "minimum": 1, "maximum": 1000}),
            "Boards called at once; the next batch starts when this one is done. Default 50."),
        "max_failures": described(json!({"type": "integer", "minimum": 0}),
            "Stop before the next batch once more boards than this have failed. Default: never stop."),
        "board_timeout": described(json!({"type": "integer", "minimum": 1, "maximum": 3600}),
            "Seconds one board may take. Default 60."),
        "selector": described(object(),
            "Only boards whose extra has all these key/value pairs."),
        "offline": described(json!({"type": "string", "enum": ["report", "defer"]}),
            "Boards offline when reached: report them as not called (default), or defer their call until they are online again."),
    });
    if let (Some(f), Value::Object(e)) = (fields.as_object_mut(), extra) {
        f.extend(e);
    }
    fields
}

fn token_input() -> Value {
    let token = input(
        json!({
            "user_id": text(64),
            "project_id": text(64),
            "roles": described(
                array(json!({"type": "string", "enum": KNOWN_ROLES})),
                "Default: [\"user_iot\"].",
            ),
            "description": text(255),
        }),
        &["user_id"],
    );
    s4t_extension(token)
}

/// A resource representation: `props` and the timestamps. List entries carry only the fields
/// asked for (see the `fields` parameter).
fn resource(mut props: Value) -> Value {
    props["created_at"] = timestamp();
    props["updated_at"] = nullable(timestamp());
    json!({"type": "object", "properties": props})
}

/// A request body: only `props` are accepted (anything else is refused with 400).
fn input(props: Value, required: &[&str]) -> Value {
    let mut schema = json!({"type": "object", "additionalProperties": false, "properties": props});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A paginated list of `spec`, with the link to the next page when this one is full.
fn collection(spec: &CollectionSpec, item: &str) -> Value {
    json!({
        "type": "object",
        "required": [spec.envelope],
        "properties": {
            spec.envelope: array(schema_ref(item)),
            "next": {"type": "string", "format": "uri", "description": "The next page, when this one is full."},
        },
    })
}

/// A complete list under `key`.
fn list_of(key: &str, item: &str) -> Value {
    json!({"type": "object", "required": [key], "properties": {key: array(schema_ref(item))}})
}

/// What a board answered, as it sent it.
fn reply() -> Value {
    json!({"description": "The board's answer."})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn reference(kind: &str, name: &str) -> Value {
    json!({"$ref": format!("#/components/{kind}/{name}")})
}

fn schema_ref(name: &str) -> Value {
    reference("schemas", name)
}

fn string() -> Value {
    json!({"type": "string"})
}

fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max})
}

fn name() -> Value {
    described(text(NAME_MAX), "Not blank and not uuid-like.")
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn integer() -> Value {
    json!({"type": "integer"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn port_number() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 65535})
}

fn coordinate() -> Value {
    json!({"oneOf": [{"type": "string", "maxLength": 18}, {"type": "number"}]})
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time", "example": "2019-02-20T10:38:26+00:00"})
}

/// A free-form JSON object.
fn object() -> Value {
    json!({"type": "object", "additionalProperties": true})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn links() -> Value {
    array(schema_ref("Link"))
}

fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = json!(true);
    schema
}

/// Marks what s4t adds to IoTronic.
fn s4t_extension(mut value: Value) -> Value {
    value[EXTENSION] = json!(true);
    value
}

fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}
