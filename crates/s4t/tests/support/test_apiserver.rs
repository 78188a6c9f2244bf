//! A **test Kubernetes API server** on loopback: the real `kube` client and controller run
//! against it over HTTP, since no kube-apiserver can run on this machine. It keeps objects in
//! memory and serves what the provider uses:
//! - list (with `metadata.resourceVersion`) and watch (newline-delimited events, replaying
//!   every event newer than `?resourceVersion=`) of namespaced and cluster-scoped kinds, in
//!   one namespace or all;
//! - get, create (uid, resourceVersion, generation, creationTimestamp, `generateName`),
//!   merge patch (RFC 7386) of the object or its `/status`, with `metadata.resourceVersion`
//!   in a patch as a precondition (409 when stale), delete with finalizers
//!   (`deletionTimestamp` first, gone when the last finalizer is removed);
//! - a write that changes nothing changes neither the resourceVersion nor the watch;
//! - discovery (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/G/V`, with the kinds of the
//!   CRDs created so far, their categories and short names) and server-side printing
//!   (`meta.k8s.io/v1` Tables from a CRD's printer columns, for the JSONPath subset CRDs
//!   use), so the real `kubectl` can apply and get.
//!
//! Gaps against a real API server: no schema validation, defaulting or pruning (CRD defaults
//! are not applied), no CEL (`x-kubernetes-validations`), no OpenAPI documents (so kubectl
//! runs with `--validate=false`), no protobuf (JSON only: `kubectl create secret` cannot be
//! used, `kubectl apply` can), no JSON patch, strategic merge or server-side apply, no field
//! or label selectors, no RBAC, admission, namespaces as objects, or garbage collection of
//! owned objects, no aggregated discovery, and watches never time out or expire (no 410
//! Gone).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// (group/version, plural, namespace, name)
type Key = (String, String, Option<String>, String);

/// A watch event as recorded.
#[derive(Clone)]
struct Recorded {
    revision: u64,
    gv: String,
    plural: String,
    namespace: Option<String>,
    kind: &'static str,
    object: Value,
}

impl Recorded {
    fn line(&self) -> bytes::Bytes {
        let mut l = serde_json::to_vec(&json!({"type": self.kind, "object": self.object})).unwrap();
        l.push(b'\n');
        bytes::Bytes::from(l)
    }
}

struct Store {
    revision: u64,
    objects: BTreeMap<Key, Value>,
    /// Every event so far.
    history: Vec<Recorded>,
}

#[derive(Clone)]
pub struct TestApiServer {
    store: Arc<Mutex<Store>>,
    events: broadcast::Sender<Recorded>,
    /// Requests served (the provider benchmark counts its API calls with it).
    requests: Arc<std::sync::atomic::AtomicU64>,
}

/// Where a request goes.
struct Target {
    gv: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match *segs.first()? {
        "api" => (segs.get(1)?.to_string(), &segs[2..]),
        "apis" => (format!("{}/{}", segs.get(1)?, segs.get(2)?), &segs[3..]),
        _ => return None,
    };
    let (namespace, rest) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    Some(Target {
        gv,
        plural: rest.first()?.to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        status: rest.get(2) == Some(&"status"),
        namespace,
    })
}

fn status_error(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    (
        code,
        axum::Json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": reason, "message": message.into(), "code": code.as_u16()}),
        ),
    )
        .into_response()
}

/// RFC 7386.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl TestApiServer {
    /// Serves on 127.0.0.1 (any free port); the base URL.
    pub async fn start() -> (TestApiServer, String) {
        let (events, _) = broadcast::channel(65536);
        let server = TestApiServer {
            store: Arc::new(Mutex::new(Store {
                revision: 1,
                objects: BTreeMap::new(),
                history: Vec::new(),
            })),
            events,
            requests: Default::default(),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, url)
    }

    /// A kubeconfig file at `path` for the server at `url`, with `namespace` as the default
    /// namespace when given (for `kubectl` and the provider's processes).
    #[allow(dead_code)]
    pub fn write_kubeconfig(path: &std::path::Path, url: &str, namespace: Option<&str>) {
        let namespace = namespace
            .map(|n| format!("    namespace: {n}\n"))
            .unwrap_or_default();
        std::fs::write(
            path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n\
                 users:\n- name: test\n  user:\n    token: test\ncontexts:\n- name: test\n  context:\n    \
                 cluster: test\n    user: test\n{namespace}current-context: test\n"
            ),
        )
        .unwrap();
    }

    /// Requests served so far.
    #[allow(dead_code)]
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every object of a kind (tests look at Events this way).
    pub fn objects(&self, plural: &str) -> Vec<Value> {
        let s = self.store.lock().unwrap();
        s.objects
            .iter()
            .filter(|(k, _)| k.1 == plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn record(&self, s: &mut Store, key: &Key, kind: &'static str, object: Value) {
        let event = Recorded {
            revision: s.revision,
            gv: key.0.clone(),
            plural: key.1.clone(),
            namespace: key.2.clone(),
            kind,
            object,
        };
        s.history.push(event.clone());
        let _ = self.events.send(event);
    }

    fn write(&self, s: &mut Store, key: Key, mut object: Value, created: bool) -> Value {
        s.revision += 1;
        object["metadata"]["resourceVersion"] = json!(s.revision.to_string());
        let deleting = object["metadata"]["deletionTimestamp"].is_string();
        let no_finalizers = object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty());
        if deleting && no_finalizers {
            s.objects.remove(&key);
            self.record(s, &key, "DELETED", object.clone());
        } else {
            s.objects.insert(key.clone(), object.clone());
            self.record(
                s,
                &key,
                if created { "ADDED" } else { "MODIFIED" },
                object.clone(),
            );
        }
        object
    }
}

async fn handle(State(server): State<TestApiServer>, req: Request) -> Response {
    server
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if req.method() == Method::GET {
        if let Some(doc) = discovery(&server, req.uri().path()) {
            return axum::Json(doc).into_response();
        }
    }
    let as_table = req
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    let Some(t) = parse_path(req.uri().path()) else {
        return status_error(StatusCode::NOT_FOUND, "NotFound", "no such path");
    };
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let method = req.method().clone();
    let body = axum::body::to_bytes(req.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (&method, &t.name) {
        (&Method::GET, None) => {
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                watch(server, t, query.get("resourceVersion").cloned())
            } else if as_table {
                let items = list_items(&server, &t);
                axum::Json(table(&server, &t, &items)).into_response()
            } else {
                list(&server, &t)
            }
        }
        (&Method::GET, Some(name)) => {
            let s = server.store.lock().unwrap();
            match s.objects.get(&(
                t.gv.clone(),
                t.plural.clone(),
                t.namespace.clone(),
                name.clone(),
            )) {
                Some(o) if as_table => {
                    let o = o.clone();
                    drop(s);
                    axum::Json(table(&server, &t, &[o])).into_response()
                }
                Some(o) => axum::Json(o.clone()).into_response(),
                None => status_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} {name} not found", t.plural),
                ),
            }
        }
        (&Method::POST, None) => create(&server, &t, body),
        (&Method::PATCH, Some(name)) => patch(&server, &t, name, body),
        (&Method::DELETE, Some(name)) => delete(&server, &t, name),
        _ => status_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not served here"),
        ),
    }
}

fn list_items(server: &TestApiServer, t: &Target) -> Vec<Value> {
    let s = server.store.lock().unwrap();
    s.objects
        .iter()
        .filter(|(k, _)| {
            k.0 == t.gv && k.1 == t.plural && (t.namespace.is_none() || k.2 == t.namespace)
        })
        .map(|(_, v)| v.clone())
        .collect()
}

const CRDS: (&str, &str) = ("apiextensions.k8s.io/v1", "customresourcedefinitions");

/// The CRDs created so far.
fn crds(server: &TestApiServer) -> Vec<Value> {
    let s = server.store.lock().unwrap();
    s.objects
        .iter()
        .filter(|(k, _)| k.0 == CRDS.0 && k.1 == CRDS.1)
        .map(|(_, v)| v.clone())
        .collect()
}

fn api_resource(plural: &str, singular: &str, kind: &str, namespaced: bool) -> Value {
    json!({"name": plural, "singularName": singular, "namespaced": namespaced, "kind": kind,
           "verbs": ["create", "delete", "get", "list", "patch", "watch"]})
}

/// Discovery documents (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/G/V`): what kubectl
/// reads to map kinds to paths. The provider's kinds are known from their CRDs.
fn discovery(server: &TestApiServer, path: &str) -> Option<Value> {
    let path = path.trim_end_matches('/');
    let crds = || crds(server);
    let served = |crd: &Value| -> Vec<(String, String)> {
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        crd["spec"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((group.clone(), v["name"].as_str()?.to_string())))
            .collect()
    };
    match path {
        "/version" => Some(
            json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-s4t-test-apiserver",
                                  "platform": "linux/amd64"}),
        ),
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
        "/api/v1" => Some(
            json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                api_resource("namespaces", "namespace", "Namespace", false),
                api_resource("secrets", "secret", "Secret", true),
                api_resource("events", "event", "Event", true),
                api_resource("configmaps", "configmap", "ConfigMap", true),
            ]}),
        ),
        "/apis" => {
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            groups.insert("apiextensions.k8s.io".into(), vec!["v1".into()]);
            for crd in crds() {
                for (g, v) in served(&crd) {
                    let versions = groups.entry(g).or_default();
                    if !versions.contains(&v) {
                        versions.push(v);
                    }
                }
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(name, versions)| {
                    let versions: Vec<Value> = versions
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
                        .collect();
                    json!({"name": name, "preferredVersion": versions[0], "versions": versions})
                })
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        "/apis/apiextensions.k8s.io/v1" => Some(json!({"kind": "APIResourceList",
            "groupVersion": "apiextensions.k8s.io/v1", "resources": [
                api_resource("customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", false)]})),
        _ => {
            let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let ["apis", group, version] = segs.as_slice() else {
                return None;
            };
            let mut resources = Vec::new();
            for crd in crds() {
                if !served(&crd).contains(&(group.to_string(), version.to_string())) {
                    continue;
                }
                let n = &crd["spec"]["names"];
                let plural = n["plural"].as_str().unwrap_or_default();
                let mut r = api_resource(
                    plural,
                    n["singular"].as_str().unwrap_or_default(),
                    n["kind"].as_str().unwrap_or_default(),
                    crd["spec"]["scope"] == "Namespaced",
                );
                r["categories"] = n["categories"].clone();
                r["shortNames"] = n["shortNames"].clone();
                resources.push(r);
                let mut status = api_resource(
                    &format!("{plural}/status"),
                    "",
                    n["kind"].as_str().unwrap_or_default(),
                    crd["spec"]["scope"] == "Namespaced",
                );
                status["verbs"] = json!(["get", "patch"]);
                resources.push(status);
            }
            (!resources.is_empty()).then(|| {
                json!({"kind": "APIResourceList", "groupVersion": format!("{group}/{version}"),
                       "resources": resources})
            })
        }
    }
}

/// A value of an object at a printer column's JSONPath. The subset CRDs use: `.a.b`, dots
/// escaped in keys (`crossplane\.io/external-name`), and `[?(@.k=='v')]` filters of lists.
fn json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.trim_start_matches('.').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            '.' => segments.push(std::mem::take(&mut current)),
            '[' => {
                segments.push(std::mem::take(&mut current));
                let filter: String = chars.by_ref().take_while(|c| *c != ']').collect();
                segments.push(format!("[{filter}]"));
                if chars.peek() == Some(&'.') {
                    chars.next();
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    let mut v = object;
    for seg in segments.iter().filter(|s| !s.is_empty()) {
        if let Some(filter) = seg.strip_prefix("[?(@.").and_then(|f| f.strip_suffix(")]")) {
            let (key, wanted) = filter.split_once("==")?;
            let wanted = wanted.trim_matches('\'');
            v = v
                .as_array()?
                .iter()
                .find(|item| item[key].as_str() == Some(wanted))?;
        } else {
            v = v.get(seg.as_str())?;
        }
    }
    Some(v)
}

/// How old a timestamp is, the way kubectl shows ages.
fn age(timestamp: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(timestamp) else {
        return "<invalid>".into();
    };
    let s = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// A `meta.k8s.io/v1` Table of `objects` with the printer columns of their CRD (server-side
/// printing, which `kubectl get` asks for). Kinds without a CRD get NAME and AGE.
fn table(server: &TestApiServer, t: &Target, objects: &[Value]) -> Value {
    let group = t.gv.split_once('/').map_or("", |(g, _)| g);
    let columns: Vec<Value> = crds(server)
        .into_iter()
        .find(|c| c["spec"]["group"] == group && c["spec"]["names"]["plural"] == t.plural.as_str())
        .and_then(|c| {
            c["spec"]["versions"][0]["additionalPrinterColumns"]
                .as_array()
                .cloned()
        })
        .unwrap_or_else(|| {
            vec![json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})]
        });
    let mut definitions = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}),
    ];
    for c in &columns {
        definitions.push(json!({"name": c["name"], "type": c["type"], "format": "",
            "description": c["description"].as_str().unwrap_or_default(), "priority": c["priority"].as_i64().unwrap_or(0)}));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &columns {
                let v = json_path(o, c["jsonPath"].as_str().unwrap_or_default()).cloned();
                cells.push(match (c["type"].as_str(), v) {
                    (Some("date"), Some(Value::String(ts))) => json!(age(&ts)),
                    (_, Some(v)) => v,
                    (_, None) => Value::Null,
                });
            }
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata",
                   "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    let revision = server.store.lock().unwrap().revision;
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
           "metadata": {"resourceVersion": revision.to_string()},
           "columnDefinitions": definitions, "rows": rows})
}

fn list(server: &TestApiServer, t: &Target) -> Response {
    let s = server.store.lock().unwrap();
    let items: Vec<Value> = s
        .objects
        .iter()
        .filter(|(k, _)| {
            k.0 == t.gv && k.1 == t.plural && (t.namespace.is_none() || k.2 == t.namespace)
        })
        .map(|(_, v)| v.clone())
        .collect();
    axum::Json(json!({"apiVersion": t.gv, "kind": "List", "metadata": {"resourceVersion": s.revision.to_string()}, "items": items}))
        .into_response()
}

fn watch(server: TestApiServer, t: Target, since: Option<String>) -> Response {
    let since: u64 = since.and_then(|r| r.parse().ok()).unwrap_or(0);
    let matches = {
        let (gv, plural, ns) = (t.gv.clone(), t.plural.clone(), t.namespace.clone());
        move |e: &Recorded| e.gv == gv && e.plural == plural && (ns.is_none() || e.namespace == ns)
    };
    // Subscribed before the replay is read, so nothing falls in between.
    let live = server.events.subscribe();
    // The replay and the revision the live events start after, under one lock: a write in
    // between would be neither replayed nor sent live.
    let (replay, last) = {
        let s = server.store.lock().unwrap();
        let replayed: Vec<&Recorded> = s
            .history
            .iter()
            .filter(|e| e.revision > since && matches(e))
            .collect();
        let last = replayed.last().map_or(since, |e| e.revision);
        let lines: Vec<bytes::Bytes> = replayed.into_iter().map(Recorded::line).collect();
        (lines, last)
    };
    let head = futures_util::stream::iter(replay.into_iter().map(Ok::<_, std::io::Error>));
    let tail = futures_util::stream::unfold((live, last), move |(mut rx, last)| {
        let matches = matches.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.revision > last && matches(&e) => {
                        return Some((Ok(e.line()), (rx, e.revision)));
                    }
                    Ok(_) => continue,
                    // A watcher too slow for the live events: its watch ends, and it watches
                    // again from its last resourceVersion (replayed from the history).
                    Err(_) => return None,
                }
            }
        }
    });
    use futures_util::StreamExt;
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(head.chain(tail)))
        .unwrap()
}

fn create(server: &TestApiServer, t: &Target, mut object: Value) -> Response {
    let mut s = server.store.lock().unwrap();
    let name = match object["metadata"]["name"].as_str() {
        Some(n) => n.to_string(),
        None => match object["metadata"]["generateName"].as_str() {
            Some(prefix) => format!(
                "{prefix}{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            None => {
                return status_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "metadata.name is required",
                )
            }
        },
    };
    let key = (
        t.gv.clone(),
        t.plural.clone(),
        t.namespace.clone(),
        name.clone(),
    );
    if s.objects.contains_key(&key) {
        return status_error(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} {name} already exists", t.plural),
        );
    }
    let m = &mut object["metadata"];
    m["name"] = json!(name);
    if let Some(ns) = &t.namespace {
        m["namespace"] = json!(ns);
    }
    m["uid"] = json!(uuid::Uuid::new_v4().to_string());
    m["generation"] = json!(1);
    m["creationTimestamp"] = json!(now());
    let written = server.write(&mut s, key, object, true);
    (StatusCode::CREATED, axum::Json(written)).into_response()
}

fn patch(server: &TestApiServer, t: &Target, name: &str, patch: Value) -> Response {
    let mut s = server.store.lock().unwrap();
    let key = (
        t.gv.clone(),
        t.plural.clone(),
        t.namespace.clone(),
        name.to_string(),
    );
    let Some(current) = s.objects.get(&key).cloned() else {
        return status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name} not found", t.plural),
        );
    };
    if let Some(rv) = patch["metadata"]["resourceVersion"].as_str() {
        if Some(rv) != current["metadata"]["resourceVersion"].as_str() {
            return status_error(
                StatusCode::CONFLICT,
                "Conflict",
                format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", t.plural),
            );
        }
    }
    let mut next = current.clone();
    if t.status {
        merge(&mut next["status"], &patch["status"]);
    } else {
        let mut p = patch.clone();
        if let Some(o) = p.as_object_mut() {
            o.remove("status"); // the status subresource owns it
        }
        if let Some(m) = p.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        merge(&mut next, &p);
        if next["spec"] != current["spec"] {
            let g = current["metadata"]["generation"].as_i64().unwrap_or(1);
            next["metadata"]["generation"] = json!(g + 1);
        }
    }
    if next == current {
        return axum::Json(current).into_response();
    }
    let written = server.write(&mut s, key, next, false);
    axum::Json(written).into_response()
}

fn delete(server: &TestApiServer, t: &Target, name: &str) -> Response {
    let mut s = server.store.lock().unwrap();
    let key = (
        t.gv.clone(),
        t.plural.clone(),
        t.namespace.clone(),
        name.to_string(),
    );
    let Some(mut object) = s.objects.get(&key).cloned() else {
        return status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name} not found", t.plural),
        );
    };
    if object["metadata"]["deletionTimestamp"].is_null() {
        object["metadata"]["deletionTimestamp"] = json!(now());
    }
    let written = server.write(&mut s, key, object, false);
    axum::Json(written).into_response()
}
