//! Fleet-wide plugin operations, run in the background: one parent request, one sub-request per
//! board (upstream §3.2), boards called in batches with a per-board timeout, offline boards
//! reported, and a stop once failures pass the threshold. What to do is decided in
//! `s4t_model::rollout`; this module only runs it.

use std::time::Duration;

use s4t_model::board_link::{plugin_action_args, plugin_payload};
use s4t_model::resources::{Board, Outcome, Plugin, Request};
use s4t_model::rollout::{OfflinePolicy, Operation, RolloutOptions, Tally};
use s4t_store::batch::Closed;
use s4t_store::requests::NewRequest;

use crate::api::ApiError;
use crate::conductor::Conductor;

/// Records the parent request and starts the rollout; returns the parent at once.
pub async fn start(
    conductor: Conductor,
    fleet_uuid: &str,
    project: Option<String>,
    boards: Vec<Board>,
    plugin: Plugin,
    operation: Operation,
    options: RolloutOptions,
) -> Result<Request, ApiError> {
    let parent = conductor
        .store()
        .open_parent_request(&NewRequest {
            destination_uuid: Some(fleet_uuid.to_string()),
            main_request_uuid: None,
            pending_requests: boards.len() as i64,
            project,
            request_type: 1,
            action: operation.parent_action(),
        })
        .await?;
    let parent_uuid = parent.uuid.clone();
    tokio::spawn(async move {
        let tally = run(
            &conductor,
            &parent_uuid,
            boards,
            &plugin,
            &operation,
            &options,
        )
        .await;
        tracing::info!(request = %parent_uuid, action = %operation.parent_action(),
            "rollout done: {}", tally.summary(&options));
    });
    Ok(parent)
}

fn board_args(operation: &Operation, plugin: &Plugin) -> Vec<serde_json::Value> {
    match operation {
        Operation::Inject { onboot, .. } => {
            vec![plugin_payload(plugin), serde_json::json!(onboot)]
        }
        Operation::Action {
            action, parameters, ..
        } => plugin_action_args(action, &plugin.uuid, parameters),
    }
}

async fn run(
    conductor: &Conductor,
    parent: &str,
    boards: Vec<Board>,
    plugin: &Plugin,
    operation: &Operation,
    options: &RolloutOptions,
) -> Tally {
    match run_batches(conductor, parent, boards, plugin, operation, options).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(request = %parent, error = %e, "rollout stopped: the store failed");
            Tally::default()
        }
    }
}

/// Records boards that are not called (offline, or after a stop) as WARNING results.
async fn not_run(
    conductor: &Conductor,
    parent: &str,
    method: &str,
    boards: &[Board],
    why: impl Fn(&Board) -> String,
) -> Result<(), s4t_store::StoreError> {
    let store = conductor.store();
    let keys: Vec<(String, Option<String>)> = boards
        .iter()
        .map(|b| (b.uuid.clone(), b.project.clone()))
        .collect();
    let requests = store.open_sub_requests(parent, method, &keys).await?;
    let closed: Vec<Closed> = boards
        .iter()
        .zip(requests)
        .map(|(b, r)| Closed {
            request_uuid: r.uuid,
            board_uuid: b.uuid.clone(),
            outcome: Outcome::Warning,
            message: why(b),
        })
        .collect();
    store.close_sub_requests(parent, &closed).await
}

async fn run_batches(
    conductor: &Conductor,
    parent: &str,
    boards: Vec<Board>,
    plugin: &Plugin,
    operation: &Operation,
    options: &RolloutOptions,
) -> Result<Tally, s4t_store::StoreError> {
    let method = operation.board_method().to_string();
    let store = conductor.store();
    let mut tally = Tally::default();
    let (online, offline): (Vec<Board>, Vec<Board>) =
        boards.into_iter().partition(|b| b.status.is_connected());
    let timeout = Duration::from_secs(options.board_timeout_secs);
    let args = board_args(operation, plugin);
    match options.offline {
        OfflinePolicy::Report => {
            not_run(conductor, parent, &method, &offline, |b| {
                format!("not called: the board is {}", b.status)
            })
            .await?;
            tally.offline = offline.len();
        }
        OfflinePolicy::Defer if !offline.is_empty() => {
            let keys: Vec<(String, Option<String>)> = offline
                .iter()
                .map(|b| (b.uuid.clone(), b.project.clone()))
                .collect();
            let requests = store.open_sub_requests(parent, &method, &keys).await?;
            let injection = match operation {
                Operation::Inject { onboot, .. } => Some((plugin.uuid.as_str(), *onboot)),
                Operation::Action { .. } => None,
            };
            store.defer(&requests, &method, &args, injection).await?;
            tally.deferred = offline.len();
        }
        OfflinePolicy::Defer => {}
    }
    let mut rest = online.into_iter();
    loop {
        let batch: Vec<Board> = rest.by_ref().take(options.batch_size).collect();
        if batch.is_empty() {
            break;
        }
        let keys: Vec<(String, Option<String>)> = batch
            .iter()
            .map(|b| (b.uuid.clone(), b.project.clone()))
            .collect();
        let requests = store.open_sub_requests(parent, &method, &keys).await?;
        let mut calls = tokio::task::JoinSet::new();
        for (b, r) in batch.into_iter().zip(requests) {
            let (conductor, method, args) = (conductor.clone(), method.clone(), args.clone());
            calls.spawn(async move {
                let (outcome, message) = conductor
                    .call_recorded(&b, &method, args, &r, timeout)
                    .await;
                (b, r, outcome, message)
            });
        }
        let mut closed = Vec::new();
        let mut injected = Vec::new();
        while let Some(done) = calls.join_next().await {
            let Ok((board, request, outcome, message)) = done else {
                continue;
            };
            match outcome {
                Outcome::Success | Outcome::Warning => {
                    tally.succeeded += 1;
                    injected.push(board.uuid.clone());
                }
                Outcome::Error => tally.failed += 1,
                // Asked to answer at once, a board still went asynchronous: its own
                // notify_result completes this sub-request.
                Outcome::Running => {
                    tally.succeeded += 1;
                    store
                        .close_request(&request.uuid, &board.uuid, Outcome::Running, &message)
                        .await?;
                    continue;
                }
            }
            closed.push(Closed {
                request_uuid: request.uuid,
                board_uuid: board.uuid,
                outcome,
                message,
            });
        }
        store.close_sub_requests(parent, &closed).await?;
        if let Operation::Inject { onboot, .. } = operation {
            store
                .upsert_injections(&plugin.uuid, &injected, *onboot)
                .await?;
        }
        if tally.must_halt(options) {
            let remaining: Vec<Board> = rest.by_ref().collect();
            let why = format!(
                "not run: the rollout stopped after {} failures (max_failures {})",
                tally.failed,
                options.max_failures.unwrap_or_default()
            );
            not_run(conductor, parent, &method, &remaining, |_| why.clone()).await?;
            tally.not_run = remaining.len();
            break;
        }
    }
    Ok(tally)
}
