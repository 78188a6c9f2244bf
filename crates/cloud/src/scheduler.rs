//! The workload scheduler: every tick, it places replicas with [`s4t_model::workloads::plan`],
//! tells boards what to run (`WorkloadApply`, `WorkloadRemove`), and asks the boards that run
//! replicas how they are (`WorkloadStatus`), which also finds replicas a returning board still
//! holds after they were moved away (they are removed).
//!
//! Boards enforce the grace period themselves: a replica comes with a lease of that length,
//! and an agent cut off from the cloud for longer stops its replicas. The scheduler moves a
//! replica only once its board has been offline for the grace period as the cloud saw it (which
//! starts later than the board's own count), so the two never run at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use s4t_model::resources::Board;
use s4t_model::workloads::{plan, BoardView, Decision, ReplicaView, WorkloadSpec};
use s4t_store::workloads::{Replica, ReplicaReport, Workload};
use s4t_store::{Scope, Store};

use crate::conductor::Conductor;

/// How the scheduler runs.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// How often it looks at every workload.
    pub interval: Duration,
    /// How long a board may stay offline before its replicas move (the autonomy window).
    pub grace: Duration,
    /// How long a board call of the scheduler may take.
    pub call_timeout: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            interval: Duration::from_secs(2),
            grace: Duration::from_secs(60),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// The scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    conductor: Conductor,
    config: SchedulerConfig,
    /// When each board was first seen offline (since this cloud started).
    offline_since: Arc<Mutex<HashMap<String, Instant>>>,
    /// Wakes the loop early (a workload was applied or deleted).
    kick: Arc<tokio::sync::Notify>,
    /// Boards whose last status listed replicas: asked again even when the store gives them
    /// none, so a replica started in a race with a delete or a move is found and removed.
    running_somewhere: Arc<Mutex<HashSet<String>>>,
}

impl Scheduler {
    pub fn new(store: Store, conductor: Conductor, config: SchedulerConfig) -> Scheduler {
        Scheduler {
            store,
            conductor,
            config,
            offline_since: Arc::new(Mutex::new(HashMap::new())),
            kick: Arc::new(tokio::sync::Notify::new()),
            running_somewhere: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Asks for a tick now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Runs until the task is aborted.
    pub async fn run(self) {
        // The first tick asks every online board: after a cloud restart, any of them may hold
        // replicas the store moved or deleted.
        let mut ask_all = true;
        loop {
            if let Err(e) = self.tick(ask_all).await {
                tracing::warn!(error = %e, "workload scheduler tick failed");
            }
            ask_all = false;
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {}
                _ = self.kick.notified() => {}
            }
        }
    }

    /// One pass over every workload and board.
    pub async fn tick(&self, ask_all: bool) -> Result<(), String> {
        let err = |e: s4t_store::StoreError| e.to_string();
        let rows = self.store.board_rows().await.map_err(err)?;
        let now = Instant::now();
        let mut returned = HashSet::new();
        let views: Vec<BoardView> = {
            let mut since = self.offline_since.lock().unwrap();
            rows.iter()
                .map(|b| {
                    let offline_for = if b.online {
                        if since.remove(&b.uuid).is_some() {
                            returned.insert(b.uuid.clone());
                        }
                        None
                    } else {
                        Some(now - *since.entry(b.uuid.clone()).or_insert(now))
                    };
                    BoardView {
                        uuid: b.uuid.clone(),
                        online: b.online,
                        offline_for,
                        fleet: b.fleet.clone(),
                        extra: b.extra.clone(),
                        location: b.location.clone(),
                    }
                })
                .collect()
        };
        let workloads = self.store.workloads(&Scope::All).await.map_err(err)?;
        let mut by_uuid = HashMap::new();
        for w in &workloads {
            let spec = match WorkloadSpec::read(&w.spec) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(workload = %w.uuid, "stored spec unreadable: {}", e.message);
                    continue;
                }
            };
            let replicas = self.store.replicas(&w.uuid).await.map_err(err)?;
            let current: Vec<ReplicaView> = replicas
                .iter()
                .map(|r| ReplicaView {
                    uuid: r.uuid.clone(),
                    ordinal: r.ordinal as u32,
                    board: r.board_uuid.clone(),
                })
                .collect();
            for d in plan(
                &spec,
                w.pinned_board.as_deref(),
                &current,
                &views,
                self.config.grace,
            ) {
                self.carry_out(w, &replicas, d).await;
            }
            let now = self.store.replicas(&w.uuid).await.map_err(err)?;
            self.sync_exposures(w, &spec, &now, &rows).await;
            by_uuid.insert(w.uuid.clone(), (w.clone(), spec));
        }
        // What the online boards run.
        let online: Vec<&str> = rows
            .iter()
            .filter(|b| b.online)
            .map(|b| b.uuid.as_str())
            .collect();
        for board in online {
            let assigned = self.store.replicas_on_board(board).await.map_err(err)?;
            let ran = self.running_somewhere.lock().unwrap().contains(board);
            if assigned.is_empty() && !ask_all && !returned.contains(board) && !ran {
                continue;
            }
            self.sync_board(board, &assigned, &by_uuid).await;
        }
        Ok(())
    }

    async fn carry_out(&self, w: &Workload, replicas: &[Replica], d: Decision) {
        let result = match d {
            Decision::Place { ordinal, board } => {
                match self
                    .store
                    .place_replica(&w.uuid, ordinal, Some(&board), w.generation)
                    .await
                {
                    Ok(r) => {
                        tracing::info!(workload = %w.name, replica = %r.uuid, %board, "replica placed");
                        self.apply(&board, w, &r).await;
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Decision::Move {
                replica,
                ordinal,
                to,
            } => {
                tracing::info!(workload = %w.name, %replica, to = ?to, "replica moves: its board is offline beyond the grace period");
                match self
                    .store
                    .place_replica(&w.uuid, ordinal, to.as_deref(), w.generation)
                    .await
                {
                    Ok(r) => {
                        if let Some(board) = to {
                            self.apply(&board, w, &r).await;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Decision::Remove { replica } => {
                let r = replicas.iter().find(|r| r.uuid == replica);
                if let Some(board) = r.and_then(|r| r.board_uuid.as_deref()) {
                    self.remove_on_board(board, &replica).await;
                }
                self.store
                    .remove_replica(&replica)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        if let Err(e) = result {
            tracing::warn!(workload = %w.name, error = %e, "scheduler decision not carried out");
        }
    }

    /// The catalogue service that exposes `port` of a workload's replicas (made when missing).
    pub async fn expose_service(
        store: &Store,
        w: &Workload,
        port: u16,
    ) -> Result<s4t_model::resources::Service, s4t_store::StoreError> {
        let name = format!("wl-{}-{port}", w.name);
        let scope = Scope::Project(w.project.clone());
        match store
            .service(&s4t_model::Ident::Name(name.clone()), &scope)
            .await
        {
            Ok(s) => Ok(s),
            Err(s4t_store::StoreError::NotFound { .. }) => {
                let mut extra = s4t_model::resources::JsonObject::new();
                extra.insert("workload".into(), json!(w.uuid));
                let f = s4t_model::resources::ServiceFields {
                    uuid: None,
                    name: Some(name),
                    port: Some(port as i64),
                    protocol: Some("TCP".into()),
                    extra: Some(extra),
                };
                store.create_service(&f, w.project.as_deref()).await
            }
            Err(e) => Err(e),
        }
    }

    /// Each `expose` port of the workload is a service exposed on every board a replica is
    /// placed on (until it ended for good), and on no other; services of ports the spec no
    /// longer names are closed and deleted.
    async fn sync_exposures(
        &self,
        w: &Workload,
        spec: &WorkloadSpec,
        replicas: &[Replica],
        boards: &[s4t_store::workloads::BoardRow],
    ) {
        let online: HashSet<&str> = boards
            .iter()
            .filter(|b| b.online)
            .map(|b| b.uuid.as_str())
            .collect();
        // A replica between restarts, or on a board briefly away, keeps its port.
        let placed: HashSet<&str> = replicas
            .iter()
            .filter(|r| !matches!(r.state.as_str(), "exited" | "failed" | "pending"))
            .filter_map(|r| r.board_uuid.as_deref())
            .collect();
        let ports: HashSet<u16> = spec
            .expose
            .iter()
            .filter_map(|e| e.get("port").and_then(Value::as_u64))
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        let existing = self
            .store
            .workload_services(&w.uuid)
            .await
            .unwrap_or_default();
        for svc in existing
            .iter()
            .filter(|s| !ports.contains(&(s.port as u16)))
        {
            if let Err(e) = self.conductor.close_service(svc).await {
                tracing::warn!(service = %svc.uuid, error = ?e, "expose: service not closed");
            }
        }
        if placed.is_empty() {
            return;
        }
        for port in ports {
            let svc = match Scheduler::expose_service(&self.store, w, port).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(workload = %w.name, port, error = %e, "expose: no catalogue service");
                    continue;
                }
            };
            let exposed = self
                .store
                .exposures_of_service(&svc.uuid)
                .await
                .unwrap_or_default();
            for board in placed.iter().filter(|b| online.contains(*b)) {
                if exposed.iter().any(|x| x.board_uuid == *board) {
                    continue;
                }
                if let Some(b) = self.board(board).await {
                    if let Err(e) = self.conductor.enable_service(&b, &svc).await {
                        tracing::warn!(workload = %w.name, port, %board, error = ?e, "expose: ServiceEnable failed");
                    }
                }
            }
            for x in exposed
                .iter()
                .filter(|x| !placed.contains(x.board_uuid.as_str()))
            {
                self.conductor.end_exposure(x, &svc).await;
            }
        }
    }

    async fn board(&self, uuid: &str) -> Option<Board> {
        self.store
            .board(&s4t_model::Ident::Uuid(uuid.to_string()), &Scope::All)
            .await
            .ok()
    }

    /// The replica document a board runs.
    fn replica_doc(&self, w: &Workload, r: &Replica) -> Value {
        json!({
            "uuid": r.uuid,
            "workload": w.uuid,
            "name": w.name,
            "ordinal": r.ordinal,
            "generation": w.generation,
            "spec": w.spec,
            "lease_secs": self.config.grace.as_secs_f64(),
        })
    }

    async fn apply(&self, board: &str, w: &Workload, r: &Replica) {
        let Some(b) = self.board(board).await else {
            return;
        };
        let outcome = self
            .conductor
            .call_quiet(
                &b,
                "WorkloadApply",
                vec![self.replica_doc(w, r)],
                self.config.call_timeout,
            )
            .await;
        let report = match outcome {
            Ok(_) => ReplicaReport {
                state: "starting".into(),
                exit_code: None,
                restarts: 0,
                message: None,
                generation: Some(w.generation),
            },
            Err(e) => ReplicaReport {
                state: "unknown".into(),
                exit_code: None,
                restarts: r.restarts,
                message: Some(format!("WorkloadApply: {e}")),
                generation: None,
            },
        };
        if let Err(e) = self.store.report_replica(&r.uuid, &report).await {
            tracing::warn!(replica = %r.uuid, error = %e, "replica state not recorded");
        }
    }

    async fn remove_on_board(&self, board: &str, replica: &str) {
        let Some(b) = self.board(board).await else {
            return;
        };
        if !b.status.is_connected() {
            return;
        }
        if let Err(e) = self
            .conductor
            .call_quiet(
                &b,
                "WorkloadRemove",
                vec![json!({"uuid": replica})],
                self.config.call_timeout,
            )
            .await
        {
            tracing::warn!(%board, %replica, error = %e, "WorkloadRemove failed");
        }
    }

    /// Reconciles one online board: records what it reports, removes what it should not run,
    /// applies what it should run and does not (or runs at an older generation).
    async fn sync_board(
        &self,
        board: &str,
        assigned: &[Replica],
        workloads: &HashMap<String, (Workload, WorkloadSpec)>,
    ) {
        let Some(b) = self.board(board).await else {
            return;
        };
        let reply = match self
            .conductor
            .call_quiet(&b, "WorkloadStatus", vec![], self.config.call_timeout)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(%board, error = %e, "WorkloadStatus failed");
                return;
            }
        };
        let reported: HashMap<String, &Value> = reply["replicas"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|r| Some((r["uuid"].as_str()?.to_string(), r)))
                    .collect()
            })
            .unwrap_or_default();
        {
            let mut somewhere = self.running_somewhere.lock().unwrap();
            if reported.is_empty() {
                somewhere.remove(board);
            } else {
                somewhere.insert(board.to_string());
            }
        }
        for uuid in reported.keys() {
            if !assigned.iter().any(|r| &r.uuid == uuid) {
                tracing::info!(%board, replica = %uuid, "board runs a replica that is not its own: removing it");
                self.remove_on_board(board, uuid).await;
            }
        }
        for r in assigned {
            let Some((w, _)) = workloads.get(&r.workload_uuid) else {
                continue;
            };
            match reported.get(&r.uuid) {
                Some(rep) if rep["generation"].as_i64() == Some(w.generation) => {
                    let report = ReplicaReport {
                        state: rep["state"].as_str().unwrap_or("unknown").to_string(),
                        exit_code: rep["exit_code"].as_i64(),
                        restarts: rep["restarts"].as_i64().unwrap_or(0),
                        message: rep["message"].as_str().map(str::to_string),
                        generation: None,
                    };
                    if let Err(e) = self.store.report_replica(&r.uuid, &report).await {
                        tracing::warn!(replica = %r.uuid, error = %e, "replica state not recorded");
                    }
                }
                // Missing (the board restarted, or fenced it) or running an old spec; unless
                // the replica went meanwhile (deleted, moved).
                _ => {
                    if let Ok(Some(current)) = self.store.replica(&r.uuid).await {
                        if current.board_uuid.as_deref() == Some(board) {
                            self.apply(board, w, &current).await;
                        }
                    }
                }
            }
        }
    }
}
