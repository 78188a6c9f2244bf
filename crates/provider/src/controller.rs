//! The executor: runs the [`crate::managed`] decisions for every [`ManagedKind`] against
//! Kubernetes (kube) and the site's S4T REST API (`s4t-client`). It decides nothing itself.
//!
//! Kubernetes writes:
//! - the finalizer and the create-pending annotation are merge patches carrying the
//!   resource's `resourceVersion`, so a stale copy gets a conflict and is requeued;
//! - the create results (external name, succeeded/failed time) are merge patches retried
//!   on failure: they must not be lost;
//! - status goes to the status subresource; conditions equal to the present ones keep their
//!   time, so an unchanged status is an unchanged object;
//! - Events are core/v1 (the group Crossplane grants providers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use crate::apis::{
    Board, ClusterProviderConfig, Fleet, ManagedStatus, ProviderConfig, ProviderConfigReference,
    SiteSpec,
};
use crate::conditions::{self, Cond};
use crate::kinds::{ManagedKind, Observed};
use crate::managed::{
    self, AfterObserve, Begin, Call, EventKind, Outcome, Requeue, Snapshot, Step, Then,
};
use crate::meta;
use crate::policy::{DeletionPolicy, Policies};

/// How the provider runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// How often an up-to-date resource is observed again.
    pub poll: Duration,
    /// Reconciles at once (Crossplane's `--max-reconcile-rate`).
    pub max_reconcile_rate: u16,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            poll: Duration::from_secs(60),
            max_reconcile_rate: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

/// What every reconcile shares.
pub struct Context {
    kube: Client,
    config: RunConfig,
    /// Failures in a row per resource (namespace/name), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

/// Runs the controllers of every kind (Board, Fleet) until their watches end.
pub async fn run(kube: Client, config: RunConfig) {
    let ctx = Arc::new(Context {
        kube: kube.clone(),
        failures: Mutex::new(HashMap::new()),
        config,
    });
    tokio::join!(
        run_kind::<Board>(kube.clone(), ctx.clone()),
        run_kind::<Fleet>(kube, ctx),
    );
}

async fn run_kind<K: ManagedKind>(kube: Client, ctx: Arc<Context>) {
    let concurrency = ctx.config.max_reconcile_rate;
    Controller::new(Api::<K>::all(kube), watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile");
            }
        })
        .await;
}

fn key<K: ManagedKind>(r: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        r.namespace().unwrap_or_default(),
        r.name_any()
    )
}

fn error_policy<K: ManagedKind>(r: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(resource = %key(r.as_ref()), %error, "reconcile failed");
    Action::requeue(ctx.next_backoff(&key(r.as_ref())))
}

impl Context {
    fn next_backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap();
        let n = f.entry(key.to_string()).or_insert(0);
        let d = managed::backoff(*n);
        *n = n.saturating_add(1);
        d
    }

    fn action(&self, key: &str, requeue: Requeue) -> Action {
        match requeue {
            Requeue::Never => Action::await_change(),
            Requeue::RateLimited => Action::requeue(self.next_backoff(key)),
            Requeue::Poll => {
                self.failures.lock().unwrap().remove(key);
                let jitter = self.config.poll / 10;
                Action::requeue(managed::jittered(self.config.poll, jitter, rand::random()))
            }
        }
    }
}

/// One reconcile of one managed resource.
async fn reconcile<K: ManagedKind>(resource: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let r = resource.as_ref();
    let mut run = Run::new(r, &ctx);
    let snapshot = Snapshot {
        annotations: r.annotations().clone(),
        finalizers: r.finalizers().to_vec(),
        deleting: r.meta().deletion_timestamp.is_some(),
        policies: Policies::read(r.management_policies(), DeletionPolicy::Delete),
        last_handled_reconcile_at: run.status.last_handled_reconcile_at.clone(),
        now: Utc::now(),
    };
    match managed::begin(&snapshot) {
        Begin::Done(o) => return run.finish(o).await,
        Begin::Proceed { handled } => {
            if let Some(token) = handled {
                let message = format!("reconcile requested at {token}");
                run.event(EventKind::Normal, "ReconcileRequestHandled", &message)
                    .await;
                run.status.last_handled_reconcile_at = Some(token);
            }
        }
    }
    let namespace = r.namespace().unwrap_or_default();
    let site = match connect(&ctx.kube, r.provider_config(), &namespace).await {
        Ok(c) => c,
        Err(e) => return run.finish(managed::failed(Step::Connect, &e)).await,
    };
    let external = r.annotations().get(meta::EXTERNAL_NAME).cloned();
    let item = |uuid: &str| format!("{}/{uuid}", K::COLLECTION);
    let remote = match &external {
        None => Ok(None),
        Some(uuid) => match site.get(&item(uuid)).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e.to_string()),
        },
    };
    let observed: Result<Observed, String> = remote.map(|v| r.observe(v.as_ref()));
    if let Ok(o) = &observed {
        run.at_provider = Some(o.at_provider.clone());
        run.ready = o.ready.clone();
    }
    let plan = managed::after_observe(
        &snapshot,
        observed
            .as_ref()
            .map(|o| &o.observation)
            .map_err(String::as_str),
    );
    let (add_finalizer, late_initialize, then) = match plan {
        AfterObserve::Done(o) => return run.finish(o).await,
        AfterObserve::Act {
            add_finalizer,
            late_initialize,
            then,
            ..
        } => (add_finalizer, late_initialize, then),
    };
    let observed = observed.expect("after_observe acts on an observation only");
    if add_finalizer {
        let mut finalizers = r.finalizers().to_vec();
        finalizers.push(meta::FINALIZER.to_string());
        if let Err(e) = run
            .patch_meta(json!({ "finalizers": finalizers }), true)
            .await
        {
            return run.finish(managed::failed(Step::AddFinalizer, &e)).await;
        }
    }
    if late_initialize {
        if let Some(filled) = &observed.late_initialized {
            let patch = json!({"spec": {"forProvider": filled}});
            if let Err(e) = run.patch(patch, false).await {
                return run.finish(managed::failed(Step::UpdateManaged, &e)).await;
            }
        }
    }
    let outcome = match then {
        Then::Done(o) => o,
        Then::Call(Call::Create) => {
            let (key, value) = managed::before_create(Utc::now());
            if let Err(e) = run
                .patch_meta(json!({"annotations": {key: value}}), true)
                .await
            {
                let conflict = e.contains("Conflict") || e.contains("409");
                return run
                    .finish(managed::before_create_failed(conflict, &e))
                    .await;
            }
            let created = site
                .call(
                    s4t_client::Method::POST,
                    K::COLLECTION,
                    Some(&r.create_body()),
                )
                .await
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    v["uuid"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("the created resource has no uuid: {v}"))
                });
            managed::after_create(created.as_deref().map_err(String::as_str), Utc::now())
        }
        Then::Call(Call::Update) => {
            let uuid = external.unwrap_or_default();
            let patch = observed.patch.clone().unwrap_or(json!({}));
            let done = site
                .call(s4t_client::Method::PATCH, &item(&uuid), Some(&patch))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            managed::after_update(done.as_ref().map(|_| ()).map_err(String::as_str))
        }
        Then::Call(Call::Delete) => {
            let uuid = external.unwrap_or_default();
            let done = match site
                .call(s4t_client::Method::DELETE, &item(&uuid), None)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.status() == Some(404) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            managed::after_delete(done.as_ref().map(|_| ()).map_err(String::as_str))
        }
    };
    run.finish(outcome).await
}

/// The S4T client of the resource's site: its ProviderConfig (or ClusterProviderConfig) and
/// the token in the Secret it names.
async fn connect(
    kube: &Client,
    r: &ProviderConfigReference,
    ns: &str,
) -> Result<s4t_client::Client, String> {
    let ns = ns.to_string();
    let (site, secret_ns): (SiteSpec, String) = match r.kind.as_str() {
        "ClusterProviderConfig" => {
            let pc = Api::<ClusterProviderConfig>::all(kube.clone())
                .get(&r.name)
                .await
                .map_err(|e| format!("ClusterProviderConfig {}: {e}", r.name))?;
            let secret_ns = pc.spec.site.credentials.secret_ref.namespace.clone().ok_or_else(|| {
                format!("ClusterProviderConfig {}: spec.credentials.secretRef.namespace is required", r.name)
            })?;
            (pc.spec.site, secret_ns)
        }
        "ProviderConfig" => {
            let pc = Api::<ProviderConfig>::namespaced(kube.clone(), &ns)
                .get(&r.name)
                .await
                .map_err(|e| format!("ProviderConfig {ns}/{}: {e}", r.name))?;
            (pc.spec.site, ns.clone())
        }
        other => {
            return Err(format!(
            "spec.providerConfigRef.kind {other:?} is not ProviderConfig or ClusterProviderConfig"
        ))
        }
    };
    if site.credentials.source != "Secret" {
        return Err(format!(
            "spec.credentials.source {:?}: only Secret is supported",
            site.credentials.source
        ));
    }
    let s = &site.credentials.secret_ref;
    let secret = Api::<Secret>::namespaced(kube.clone(), &secret_ns)
        .get(&s.name)
        .await
        .map_err(|e| format!("Secret {secret_ns}/{}: {e}", s.name))?;
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&s.key))
        .map(|b| String::from_utf8_lossy(&b.0).trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("Secret {secret_ns}/{} has no key {:?}", s.name, s.key))?;
    s4t_client::Client::with_ca(&site.endpoint, Some(token), site.ca_bundle.as_deref())
        .map_err(|e| e.to_string())
}

/// The writes of one reconcile.
struct Run<'a, K: ManagedKind> {
    resource: &'a K,
    ctx: &'a Context,
    api: Api<K>,
    /// The newest resourceVersion this reconcile knows (it changes with each write).
    resource_version: Option<String>,
    status: ManagedStatus,
    /// `status.atProvider` as Observe found it.
    at_provider: Option<Value>,
    /// Ready as Observe found it (the outcome's own Ready, if any, wins).
    ready: Option<Cond>,
}

impl<'a, K: ManagedKind> Run<'a, K> {
    fn new(resource: &'a K, ctx: &'a Context) -> Run<'a, K> {
        Run {
            resource,
            ctx,
            api: Api::namespaced(ctx.kube.clone(), &resource.namespace().unwrap_or_default()),
            resource_version: resource.resource_version(),
            status: resource.managed_status(),
            at_provider: None,
            ready: None,
        }
    }

    /// A merge patch of the resource; with `fresh`, only if nobody wrote it since it was read.
    async fn patch(&mut self, mut patch: Value, fresh: bool) -> Result<(), String> {
        if fresh {
            patch["metadata"]["resourceVersion"] = json!(self.resource_version);
        }
        let done = self
            .api
            .patch(
                &self.resource.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| e.to_string())?;
        self.resource_version = done.resource_version();
        Ok(())
    }

    async fn patch_meta(&mut self, metadata: Value, fresh: bool) -> Result<(), String> {
        self.patch(json!({ "metadata": metadata }), fresh).await
    }

    async fn event(&self, kind: EventKind, reason: &str, message: &str) {
        let r = self.resource;
        let ns = r.namespace().unwrap_or_default();
        let now = k8s_openapi::jiff::Timestamp::now();
        let event = CoreEvent {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", r.name_any())),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).to_string()),
                kind: Some(K::kind(&()).to_string()),
                name: Some(r.name_any()),
                namespace: Some(ns.clone()),
                uid: r.uid(),
                resource_version: self.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(match kind {
                EventKind::Normal => "Normal".into(),
                EventKind::Warning => "Warning".into(),
            }),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            reporting_component: Some(K::COMPONENT.into()),
            reporting_instance: Some(K::COMPONENT.into()),
            action: Some("Reconcile".into()),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some(K::COMPONENT.into()),
                host: None,
            }),
            ..Default::default()
        };
        if let Err(e) = Api::<CoreEvent>::namespaced(self.ctx.kube.clone(), &ns)
            .create(&PostParams::default(), &event)
            .await
        {
            tracing::debug!(error = %e, "event not recorded");
        }
    }

    /// Applies an outcome: events, the create bookkeeping, the finalizer, the status; then
    /// the requeue.
    async fn finish(mut self, o: Outcome) -> Result<Action, Error> {
        let key = key(self.resource);
        for e in &o.events {
            self.event(e.kind, e.reason, &e.message).await;
        }
        if !o.critical_annotations.is_empty() {
            let annotations: serde_json::Map<String, Value> = o
                .critical_annotations
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            let mut last = None;
            for _ in 0..5 {
                match self
                    .patch_meta(json!({ "annotations": annotations }), false)
                    .await
                {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if let Some(e) = last {
                tracing::error!(resource = %key, error = %e, "create result not recorded: the next reconcile stops on the pending annotation");
            }
        }
        if o.remove_finalizer {
            let kept: Vec<String> = self
                .resource
                .finalizers()
                .iter()
                .filter(|f| *f != meta::FINALIZER)
                .cloned()
                .collect();
            if let Err(e) = self.patch_meta(json!({ "finalizers": kept }), true).await {
                tracing::warn!(resource = %key, error = %e, "finalizer not removed");
                return Ok(Action::requeue(self.ctx.next_backoff(&key)));
            }
        }
        if o.write_status {
            let generation = self.resource.meta().generation.unwrap_or(0);
            let now = meta::timestamp(Utc::now());
            let mut list = std::mem::take(&mut self.status.conditions);
            if let Some(ready) = &self.ready {
                if !o.conditions.iter().any(|c| c.kind == conditions::READY) {
                    conditions::set(&mut list, ready, generation, &now);
                }
            }
            for c in &o.conditions {
                conditions::set(&mut list, c, generation, &now);
            }
            self.status.conditions = list;
            self.status.observed_generation = Some(generation);
            let current = serde_json::to_value(self.resource)
                .map(|v| v["status"].clone())
                .unwrap_or(Value::Null);
            let mut status = serde_json::to_value(&self.status).unwrap_or(json!({}));
            status["atProvider"] = self
                .at_provider
                .clone()
                .unwrap_or_else(|| current["atProvider"].clone());
            if status != current {
                self.api
                    .patch_status(
                        &self.resource.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&json!({ "status": status })),
                    )
                    .await?;
            }
        }
        Ok(self.ctx.action(&key, o.requeue))
    }
}
