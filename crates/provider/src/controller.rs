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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::ByteString;
use kube::api::{ApiResource, DynamicObject};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use crate::apis::{
    Board, ClusterProviderConfig, Fleet, ManagedStatus, Network, Plugin, PluginInjection, Port,
    ProviderConfig, ProviderConfigReference, Service, ServiceExposure, SiteSpec, Webservice,
    Workload,
};
use crate::conditions::{self, Cond};
use crate::feed::FeedState;
use crate::kinds::{ManagedKind, Observed, Reply, Request, Target, Verb};
use crate::managed::{
    self, AfterObserve, Begin, Call, EventKind, Outcome, Requeue, Snapshot, Step, Then,
};
use crate::meta;
use crate::policy::{DeletionPolicy, Policies};
use crate::refs::{Candidate, RefKind, Resolved};

/// How the provider runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// How often an up-to-date resource is observed again.
    pub poll: Duration,
    /// Reconciles a second, and at once per kind (Crossplane's `--max-reconcile-rate`).
    pub max_reconcile_rate: u16,
    /// Reconciles that talk to one site at once. Each holds a connection to the site and
    /// one to Kubernetes; the others wait for a slot without holding any.
    pub max_reconciles_per_site: u16,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            poll: Duration::from_secs(60),
            max_reconcile_rate: 10,
            max_reconciles_per_site: 64,
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
    /// The global reconcile budget.
    budget: Mutex<crate::ratelimit::TokenBucket>,
    /// Observations in a row that found a resource existing but not Ready.
    unready: Mutex<HashMap<String, u32>>,
    /// The sites' clients, reused for [`SITE_TTL`] (one connection pool per site, and no
    /// ProviderConfig and Secret reads per reconcile).
    sites: Mutex<HashMap<SiteKey, CachedSite>>,
    /// The board status feeds of the sites that have Boards ([`crate::feed`]).
    feeds: Mutex<HashMap<SiteKey, Arc<FeedState>>>,
    /// Boards whose status a feed saw move, to the controllers of the kinds that follow it.
    board_moves: tokio::sync::broadcast::Sender<Arc<Vec<String>>>,
    /// The slots of the reconciles talking to each site ([`RunConfig::max_reconciles_per_site`]).
    site_slots: Mutex<HashMap<SiteKey, Arc<tokio::sync::Semaphore>>>,
    /// The spec and annotation writes a reconcile made and acted on, so that their echo from
    /// the watch does not trigger another one.
    own_writes: Mutex<crate::own_writes::OwnWrites>,
}

/// A site: the kind of its config, the namespace of a namespaced one, and its name.
type SiteKey = (String, String, String);

fn site_key(r: &ProviderConfigReference, ns: &str) -> SiteKey {
    // A ProviderConfig belongs to the resource's namespace; a ClusterProviderConfig not.
    let scope = if r.kind == "ProviderConfig" { ns } else { "" };
    (r.kind.clone(), scope.to_string(), r.name.clone())
}

/// A site's feed as [`crate::feed::follow`] sees the provider: the site's current client
/// while any controller listens, and the channel to those controllers.
struct SiteFeed {
    ctx: std::sync::Weak<Context>,
    key: SiteKey,
}

impl crate::feed::Source for SiteFeed {
    fn client(&self) -> Option<s4t_client::Client> {
        let ctx = self.ctx.upgrade()?;
        if ctx.board_moves.receiver_count() == 0 {
            return None;
        }
        let sites = ctx.sites.lock().unwrap();
        sites.get(&self.key).map(|c| c.client.clone())
    }

    fn wake(&self, boards: Vec<String>) {
        if let Some(ctx) = self.ctx.upgrade() {
            let _ = ctx.board_moves.send(Arc::new(boards));
        }
    }
}

/// How long a site's client (and the credentials it was made with) is reused.
const SITE_TTL: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct CachedSite {
    made: std::time::Instant,
    client: s4t_client::Client,
    host: Option<String>,
}

/// Runs the controllers of every kind until their watches end.
pub async fn run(kube: Client, config: RunConfig) {
    let ctx = Arc::new(Context {
        kube: kube.clone(),
        failures: Mutex::new(HashMap::new()),
        unready: Mutex::new(HashMap::new()),
        sites: Mutex::new(HashMap::new()),
        feeds: Mutex::new(HashMap::new()),
        board_moves: tokio::sync::broadcast::channel(64).0,
        site_slots: Mutex::new(HashMap::new()),
        own_writes: Mutex::new(crate::own_writes::OwnWrites::default()),
        budget: Mutex::new(crate::ratelimit::TokenBucket::new(
            config.max_reconcile_rate,
            std::time::Instant::now(),
        )),
        config,
    });
    use crate::apis::legacy;
    // One task per kind, so that the kinds' reconciles run on every worker thread.
    let mut kinds = AbortOnDrop(vec![
        tokio::spawn(run_kind::<Board>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<Fleet>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<Plugin>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<PluginInjection>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<Service>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<ServiceExposure>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<Network>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<Port>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<Webservice>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<Workload>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<legacy::Device>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<legacy::Plugin>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<legacy::BoardPluginInjection>(
            kube.clone(),
            ctx.clone(),
        )),
        tokio::spawn(run_kind::<legacy::Service>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<legacy::BoardServiceInjection>(
            kube.clone(),
            ctx.clone(),
        )),
        tokio::spawn(run_kind::<legacy::Fleet>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<legacy::Port>(kube.clone(), ctx.clone())),
        tokio::spawn(run_kind::<legacy::Webservice>(kube, ctx.clone())),
    ]);
    futures_util::future::join_all(kinds.0.iter_mut()).await;
}

/// The kinds' tasks, stopped with the future that runs them (when leadership is lost, or a
/// test ends).
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn run_kind<K: ManagedKind>(kube: Client, ctx: Arc<Context>) {
    use kube::runtime::{reflector, WatchStreamExt};
    let concurrency = ctx.config.max_reconcile_rate;
    let (reader, writer) = reflector::store();
    // Only changes of the desired state trigger a reconcile (Crossplane's
    // DesiredStateChanged): the provider's own status writes and create bookkeeping do not.
    let trigger = watcher(Api::<K>::all(kube), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(desired_state::<K>, Default::default())
        .try_filter({
            let ctx = ctx.clone();
            move |r: &K| {
                let echo = ctx
                    .own_writes
                    .lock()
                    .unwrap()
                    .is_echo(&key(r), r.meta().resource_version.as_deref());
                std::future::ready(!echo)
            }
        });
    let mut controller = Controller::for_stream(trigger, reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    if K::FOLLOWS_BOARD_STATUS {
        controller = controller.reconcile_on(woken_by_feeds(ctx.board_moves.subscribe(), reader));
    }
    controller
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile");
            }
        })
        .await;
}

/// The resources whose boards a feed saw move (their external name is the board's uuid).
/// A controller that falls behind the channel skips what it missed: the polls cover it.
fn woken_by_feeds<K: ManagedKind>(
    moves: tokio::sync::broadcast::Receiver<Arc<Vec<String>>>,
    resources: kube::runtime::reflector::Store<K>,
) -> impl futures_util::Stream<Item = kube::runtime::reflector::ObjectRef<K>> {
    use tokio::sync::broadcast::error::RecvError;
    futures_util::stream::unfold(moves, move |mut moves| {
        let resources = resources.clone();
        async move {
            loop {
                match moves.recv().await {
                    Ok(boards) => {
                        let boards: std::collections::HashSet<&str> =
                            boards.iter().map(String::as_str).collect();
                        let woken: Vec<_> = resources
                            .state()
                            .iter()
                            .filter(|r| {
                                r.annotations()
                                    .get(meta::EXTERNAL_NAME)
                                    .is_some_and(|u| boards.contains(u.as_str()))
                            })
                            .map(|r| kube::runtime::reflector::ObjectRef::from_obj(r.as_ref()))
                            .collect();
                        return Some((futures_util::stream::iter(woken), moves));
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
    .flatten()
}

/// What a change must touch to trigger a reconcile: the generation (the spec), the labels,
/// the annotations other than the create bookkeeping, or the deletion.
fn desired_state<K: ManagedKind>(r: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.meta().generation.hash(&mut h);
    r.labels().hash(&mut h);
    for (k, v) in r.annotations() {
        if !meta::IGNORED_BY_WATCH.contains(&k.as_str()) {
            (k, v).hash(&mut h);
        }
    }
    r.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
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

    /// The site's client, from the cache while fresh. A failure is not cached: the next
    /// reconcile tries again.
    async fn site(
        &self,
        r: &ProviderConfigReference,
        ns: &str,
    ) -> Result<(s4t_client::Client, Option<String>), String> {
        let key = site_key(r, ns);
        if let Some(c) = self.sites.lock().unwrap().get(&key) {
            if c.made.elapsed() < SITE_TTL {
                return Ok((c.client.clone(), c.host.clone()));
            }
        }
        let (client, host) = connect(&self.kube, r, ns).await?;
        let cached = CachedSite {
            made: std::time::Instant::now(),
            client: client.clone(),
            host: host.clone(),
        };
        self.sites.lock().unwrap().insert(key, cached);
        Ok((client, host))
    }

    /// The slots of the reconciles talking to the site.
    fn site_slots(&self, site: SiteKey) -> Arc<tokio::sync::Semaphore> {
        let mut slots = self.site_slots.lock().unwrap();
        let per_site = usize::from(self.config.max_reconciles_per_site.max(1));
        slots
            .entry(site)
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(per_site)))
            .clone()
    }

    /// Whether a live feed reports the status of the site's boards; starts its feed if none
    /// runs yet.
    fn follow_boards(self: &Arc<Self>, site: SiteKey) -> bool {
        let mut feeds = self.feeds.lock().unwrap();
        if let Some(state) = feeds.get(&site) {
            return state.live_at(std::time::Instant::now());
        }
        let state = Arc::new(FeedState::default());
        feeds.insert(site.clone(), state.clone());
        let label = format!("{}/{}", site.0, site.2);
        let source = SiteFeed {
            ctx: Arc::downgrade(self),
            key: site,
        };
        tokio::spawn(crate::feed::follow(source, state, label));
        false
    }

    fn action(&self, key: &str, requeue: Requeue, ready: bool, followed: bool) -> Action {
        match requeue {
            Requeue::Never => {
                self.unready.lock().unwrap().remove(key);
                Action::await_change()
            }
            Requeue::RateLimited => Action::requeue(self.next_backoff(key)),
            Requeue::Poll => {
                self.failures.lock().unwrap().remove(key);
                let poll = if ready {
                    self.unready.lock().unwrap().remove(key);
                    self.config.poll
                } else {
                    let mut u = self.unready.lock().unwrap();
                    let n = u.entry(key.to_string()).or_insert(0);
                    let p = managed::unready_poll(*n, self.config.poll, followed);
                    *n = n.saturating_add(1);
                    p
                };
                Action::requeue(managed::jittered(poll, poll / 10, rand::random()))
            }
        }
    }
}

/// One reconcile of one managed resource.
async fn reconcile<K: ManagedKind>(resource: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let over_budget = ctx
        .budget
        .lock()
        .unwrap()
        .reserve(std::time::Instant::now());
    if let Some(wait) = over_budget {
        crate::metrics::over_budget();
        tokio::time::sleep(wait).await;
    }
    crate::metrics::reconcile(K::COMPONENT);
    let r = resource.as_ref();
    // Inside kube's `reconciling object` span, which names the object and the trigger.
    tracing::debug!(generation = r.meta().generation, "reconcile");
    let mut run = Run::new(r, &ctx);
    let snapshot = Snapshot {
        annotations: r.annotations().clone(),
        finalizers: r.finalizers().to_vec(),
        deleting: r.meta().deletion_timestamp.is_some(),
        policies: Policies::read(
            r.management_policies(),
            match r.deletion_policy() {
                Some("Orphan") => DeletionPolicy::Orphan,
                _ => DeletionPolicy::Delete,
            },
        ),
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
    // References are resolved (and written back into the spec) unless the resource goes.
    let mut refs = Resolved::new();
    if !snapshot.deleting {
        match resolve_references(&ctx.kube, r, &namespace).await {
            Ok((resolved, patch)) => {
                if let Some(patch) = patch {
                    if let Err(e) = run
                        .patch(json!({"spec": {"forProvider": patch}}), true)
                        .await
                    {
                        return run
                            .finish(managed::failed(Step::ResolveReferences, &e))
                            .await;
                    }
                    run.acted_on_write();
                }
                refs = resolved;
            }
            Err(e) => {
                return run
                    .finish(managed::failed(Step::ResolveReferences, &e))
                    .await
            }
        }
    }
    let (site, endpoint_host) = match ctx.site(&r.provider_config(), &namespace).await {
        Ok(c) => c,
        Err(e) => return run.finish(managed::failed(Step::Connect, &e)).await,
    };
    let site_id = site_key(&r.provider_config(), &namespace);
    // Held to the end of the run: its site calls, its Kubernetes writes.
    let _slot = ctx
        .site_slots(site_id.clone())
        .acquire_owned()
        .await
        .expect("site slots are never closed");
    if K::FOLLOWS_BOARD_STATUS {
        run.followed = ctx.follow_boards(site_id);
    }
    if let Some(h) = endpoint_host {
        refs.insert(crate::kinds::service::ENDPOINT_HOST, h);
    }
    let mut external = r.annotations().get(meta::EXTERNAL_NAME).cloned();
    if external.is_none() {
        // Crossplane's Initialize step: an external name the spec already determines.
        if let Some(name) = r.initial_external_name() {
            let patch = json!({"annotations": {meta::EXTERNAL_NAME: name}});
            if let Err(e) = run.patch_meta(patch, true).await {
                return run.finish(managed::failed(Step::UpdateManaged, &e)).await;
            }
            run.acted_on_write();
            external = Some(name);
        }
    }
    let mut replies = Vec::new();
    let observed: Result<Observed, String> = match &external {
        None => Ok(Observed::absent()),
        Some(name) => {
            let at = Target {
                external: name,
                refs: &refs,
            };
            let mut failed = None;
            while let Some(req) = r.next_read(at, &replies) {
                match send(&site, &req).await {
                    Ok(reply) => replies.push(reply),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                if replies.len() > MAX_READS {
                    failed = Some(format!("more than {MAX_READS} reads to observe it"));
                    break;
                }
            }
            match failed {
                Some(e) => Err(e),
                None => r.observe(at, &replies),
            }
        }
    };
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
    let (publish, add_finalizer, late_initialize, then) = match plan {
        AfterObserve::Done(o) => return run.finish(o).await,
        AfterObserve::Act {
            publish,
            add_finalizer,
            late_initialize,
            then,
        } => (publish, add_finalizer, late_initialize, then),
    };
    let observed = observed.expect("after_observe acts on an observation only");
    if publish && !observed.connection.is_empty() {
        if let Err(e) = run.publish(&observed.connection).await {
            return run
                .finish(managed::failed(Step::PublishConnection, &e))
                .await;
        }
    }
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
            // The spec now holds what was observed: observing it again would find the same.
            run.acted_on_write();
        }
    }
    let outcome = match then {
        Then::Done(o) => o,
        Then::Call(Call::Create) => {
            // A spec that cannot make a request fails like a create the API refused.
            let request = match r.create(&refs) {
                Ok(req) => req,
                Err(e) => {
                    let o = managed::after_create(Err(&e), Utc::now());
                    return run
                        .finish(Outcome {
                            critical_annotations: Vec::new(),
                            ..o
                        })
                        .await;
                }
            };
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
            let created = match send(&site, &request).await {
                Ok(Reply::Ok(v)) => r.created(&refs, &v),
                Ok(Reply::Failed { message, .. }) => Err(message),
                Err(e) => Err(e),
            };
            managed::after_create(created.as_deref().map_err(String::as_str), Utc::now())
        }
        Then::Call(Call::Update) => {
            let mut done = Ok(());
            for req in &observed.updates {
                match send(&site, req).await {
                    Ok(Reply::Ok(_)) => {}
                    Ok(Reply::Failed { message, .. }) => {
                        done = Err(message);
                        break;
                    }
                    Err(e) => {
                        done = Err(e);
                        break;
                    }
                }
            }
            managed::after_update(done.as_ref().map(|_| ()).map_err(String::as_str))
        }
        Then::Call(Call::Delete) => {
            let at = Target {
                external: external.as_deref().unwrap_or_default(),
                refs: &refs,
            };
            let mut done = Ok(());
            for req in r.delete(at, &replies) {
                match send(&site, &req).await {
                    Ok(Reply::Ok(_)) => {}
                    Ok(reply) if reply.not_found() => {}
                    Ok(Reply::Failed { message, .. }) => {
                        done = Err(message);
                        break;
                    }
                    Err(e) => {
                        done = Err(e);
                        break;
                    }
                }
            }
            managed::after_delete(done.as_ref().map(|_| ()).map_err(String::as_str))
        }
    };
    if outcome.publish && !observed.connection.is_empty() {
        if let Err(e) = run.publish(&observed.connection).await {
            tracing::warn!(resource = %key(r), error = %e, "connection details not published");
        }
    }
    run.finish(outcome).await
}

/// Reads of one observation at most (a fleet's boards: two or three each).
const MAX_READS: usize = 100_000;

/// One REST call. An HTTP error is a [`Reply`] for the kind to judge; a site that cannot be
/// reached, or answers with something else than JSON, is an error.
async fn send(site: &s4t_client::Client, req: &Request) -> Result<Reply, String> {
    use s4t_client::Method;
    let (method, verb) = match req.verb {
        Verb::Get => (Method::GET, "GET"),
        Verb::Post => (Method::POST, "POST"),
        Verb::Put => (Method::PUT, "PUT"),
        Verb::Patch => (Method::PATCH, "PATCH"),
        Verb::Delete => (Method::DELETE, "DELETE"),
    };
    crate::metrics::site_request(verb);
    match site.call(method, &req.path, req.body.as_ref()).await {
        Ok(v) => Ok(Reply::Ok(v)),
        Err(s4t_client::ClientError::Api { status, message }) => {
            Ok(Reply::Failed { status, message })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The resource's references resolved: the values, and the patch of `spec.forProvider` that
/// records those that changed.
async fn resolve_references<K: ManagedKind>(
    kube: &Client,
    r: &K,
    namespace: &str,
) -> Result<(Resolved, Option<serde_json::Map<String, Value>>), String> {
    let mut resolved = Resolved::new();
    let mut patch = serde_json::Map::new();
    for slot in r.references() {
        let candidates = if slot.needs_lookup() {
            candidates(kube, slot.kind, namespace).await?
        } else {
            Vec::new()
        };
        let value = slot.resolve(&candidates)?;
        if value.is_some() && value != slot.value {
            patch.insert(slot.field.to_string(), json!(value));
        }
        if let Some(v) = value {
            resolved.insert(slot.field, v);
        }
    }
    Ok((resolved, (!patch.is_empty()).then_some(patch)))
}

/// The managed resources of a kind in a namespace, as references see them.
async fn candidates(
    kube: &Client,
    kind: RefKind,
    namespace: &str,
) -> Result<Vec<Candidate>, String> {
    let resource = match kind {
        RefKind::Board => ApiResource::erase::<Board>(&()),
        RefKind::Fleet => ApiResource::erase::<Fleet>(&()),
        RefKind::Plugin => ApiResource::erase::<Plugin>(&()),
        RefKind::Service => ApiResource::erase::<Service>(&()),
        RefKind::Network => ApiResource::erase::<Network>(&()),
    };
    let list = Api::<DynamicObject>::namespaced_with(kube.clone(), namespace, &resource)
        .list(&Default::default())
        .await
        .map_err(|e| format!("cannot list {}s in {namespace}: {e}", kind.name()))?;
    Ok(list
        .items
        .into_iter()
        .map(|o| Candidate {
            name: o.name_any(),
            labels: o.labels().clone(),
            external_name: o.annotations().get(meta::EXTERNAL_NAME).cloned(),
        })
        .collect())
}

/// The S4T client of the resource's site: its ProviderConfig (or ClusterProviderConfig) and
/// the token in the Secret it names.
async fn connect(
    kube: &Client,
    r: &ProviderConfigReference,
    ns: &str,
) -> Result<(s4t_client::Client, Option<String>), String> {
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
    let host = site
        .endpoint
        .split_once("://")
        .map(|(_, rest)| {
            rest.split(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .filter(|h| !h.is_empty());
    let client =
        s4t_client::Client::with_ca(&site.endpoint, Some(token), site.ca_bundle.as_deref())
            .map_err(|e| e.to_string())?;
    Ok((client, host))
}

/// The writes of one reconcile.
struct Run<'a, K: ManagedKind> {
    resource: &'a K,
    ctx: &'a Context,
    api: Api<K>,
    /// The newest resourceVersion this reconcile knows (it changes with each write).
    resource_version: Option<String>,
    /// The generation the status reports as observed: the resource's, or the one a spec
    /// write the run acted on made.
    generation: Option<i64>,
    /// The generation after the run's last write.
    written_generation: Option<i64>,
    status: ManagedStatus,
    /// `status.atProvider` as Observe found it.
    at_provider: Option<Value>,
    /// Ready as Observe found it (the outcome's own Ready, if any, wins).
    ready: Option<Cond>,
    /// A live feed reports its board's status changes.
    followed: bool,
}

impl<'a, K: ManagedKind> Run<'a, K> {
    fn new(resource: &'a K, ctx: &'a Context) -> Run<'a, K> {
        Run {
            resource,
            ctx,
            api: K::api(ctx.kube.clone(), &resource.namespace().unwrap_or_default()),
            resource_version: resource.resource_version(),
            generation: resource.meta().generation,
            written_generation: None,
            status: resource.managed_status(),
            at_provider: None,
            ready: None,
            followed: false,
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
        self.written_generation = done.meta().generation;
        Ok(())
    }

    /// The last write is one this run acted on: its echo from the watch is not a change.
    fn acted_on_write(&mut self) {
        if let Some(rv) = &self.resource_version {
            let mut own = self.ctx.own_writes.lock().unwrap();
            own.record(key(self.resource), rv.clone());
        }
        // One more than the generation read: only this write changed the spec since, so the
        // run has acted on all of it. More means somebody else's change came in between; its
        // own reconcile reports it.
        if let (Some(read), Some(written)) = (self.generation, self.written_generation) {
            if written == read + 1 {
                self.generation = Some(written);
            }
        }
    }

    async fn patch_meta(&mut self, metadata: Value, fresh: bool) -> Result<(), String> {
        self.patch(json!({ "metadata": metadata }), fresh).await
    }

    /// Writes the connection details into the Secret `spec.writeConnectionSecretToRef` names
    /// (made if missing, owned by the resource so that it goes with it).
    async fn publish(&self, details: &BTreeMap<String, String>) -> Result<(), String> {
        let Some((ns, name)) = self.resource.connection_secret() else {
            return Ok(());
        };
        let data: BTreeMap<String, ByteString> = details
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
            .collect();
        let secrets = Api::<Secret>::namespaced(self.ctx.kube.clone(), &ns);
        let current = secrets
            .get_opt(&name)
            .await
            .map_err(|e| format!("Secret {ns}/{name}: {e}"))?;
        match current {
            Some(s) if s.data.as_ref() == Some(&data) => Ok(()),
            Some(_) => secrets
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"data": data})),
                )
                .await
                .map(|_| ())
                .map_err(|e| format!("Secret {ns}/{name}: {e}")),
            None => {
                let r = self.resource;
                let owner = OwnerReference {
                    api_version: K::api_version(&()).to_string(),
                    kind: K::kind(&()).to_string(),
                    name: r.name_any(),
                    uid: r.uid().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: None,
                };
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(ns.clone()),
                        owner_references: Some(vec![owner]),
                        ..Default::default()
                    },
                    type_: Some(meta::CONNECTION_SECRET_TYPE.into()),
                    data: Some(data),
                    ..Default::default()
                };
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("Secret {ns}/{name}: {e}"))
            }
        }
    }

    /// Deletes the connection Secret, when the resource owns it.
    async fn unpublish(&self) -> Result<(), String> {
        let Some((ns, name)) = self.resource.connection_secret() else {
            return Ok(());
        };
        let secrets = Api::<Secret>::namespaced(self.ctx.kube.clone(), &ns);
        let Some(s) = secrets
            .get_opt(&name)
            .await
            .map_err(|e| format!("Secret {ns}/{name}: {e}"))?
        else {
            return Ok(());
        };
        let ours = s
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| Some(&o.uid) == self.resource.uid().as_ref());
        if !ours {
            return Ok(());
        }
        match secrets.delete(&name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(format!("Secret {ns}/{name}: {e}")),
        }
    }

    async fn event(&self, kind: EventKind, reason: &str, message: &str) {
        let r = self.resource;
        // Events of cluster-scoped resources go to `default`, as Kubernetes records them.
        let ns = r.namespace().unwrap_or_else(|| "default".into());
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
                namespace: r.namespace(),
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
        if o.unpublish {
            if let Err(e) = self.unpublish().await {
                tracing::warn!(resource = %key, error = %e, "connection details not unpublished");
                return Ok(Action::requeue(self.ctx.next_backoff(&key)));
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
            self.ctx.own_writes.lock().unwrap().forget(&key);
        }
        if o.write_status {
            let generation = self.generation.unwrap_or(0);
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
        let ready = self.ready.as_ref().is_none_or(|c| c.status == "True");
        Ok(self.ctx.action(&key, o.requeue, ready, self.followed))
    }
}
