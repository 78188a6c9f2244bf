//! Fleet-wide plugin operations, run in the background: one parent request, one sub-request per
//! board (upstream §3.2), boards called in batches with a per-board timeout, offline boards
//! reported, and a stop once failures pass the threshold. What to do is decided in
//! `s4t_model::rollout`; this module only runs it.

use std::time::Duration;

use s4t_model::board_link::{plugin_action_args, plugin_payload};
use s4t_model::resources::{Board, Plugin, Request};
use s4t_model::rollout::{Operation, RolloutOptions, Tally};
use s4t_store::requests::NewRequest;

use crate::api::ApiError;
use crate::conductor::{Conductor, ExecOptions};

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
    let method = operation.board_method().to_string();
    let mut tally = Tally::default();
    let (online, offline): (Vec<Board>, Vec<Board>) =
        boards.into_iter().partition(|b| b.status.is_connected());
    for b in &offline {
        let why = format!("not called: the board is {}", b.status);
        if let Err(e) = conductor.record_not_run(b, &method, parent, &why).await {
            tracing::error!(board = %b.uuid, error = %e.message, "cannot record a board the rollout skipped");
        }
        tally.offline += 1;
    }
    let exec = ExecOptions {
        parent: Some(parent.to_string()),
        timeout: Some(Duration::from_secs(options.board_timeout_secs)),
    };
    let args = board_args(operation, plugin);
    let mut rest = online.into_iter();
    loop {
        let batch: Vec<Board> = rest.by_ref().take(options.batch_size).collect();
        if batch.is_empty() {
            break;
        }
        let mut calls = tokio::task::JoinSet::new();
        for b in batch {
            let (conductor, method, args, exec) = (
                conductor.clone(),
                method.clone(),
                args.clone(),
                exec.clone(),
            );
            calls.spawn(async move {
                let outcome = conductor.execute_with(&b, &method, args, &exec).await;
                (b, outcome)
            });
        }
        while let Some(done) = calls.join_next().await {
            let Ok((board, outcome)) = done else {
                tally.failed += 1;
                continue;
            };
            match outcome {
                Ok(_) => {
                    tally.succeeded += 1;
                    if let Operation::Inject { onboot, .. } = operation {
                        if let Err(e) = conductor
                            .store()
                            .upsert_injection(&board.uuid, &plugin.uuid, *onboot)
                            .await
                        {
                            tracing::error!(board = %board.uuid, error = %e, "injection not recorded");
                        }
                    }
                }
                Err(_) => tally.failed += 1,
            }
        }
        if tally.must_halt(options) {
            let why = format!(
                "not run: the rollout stopped after {} failures (max_failures {})",
                tally.failed,
                options.max_failures.unwrap_or_default()
            );
            for b in rest.by_ref() {
                if let Err(e) = conductor.record_not_run(&b, &method, parent, &why).await {
                    tracing::error!(board = %b.uuid, error = %e.message, "cannot record a board the rollout skipped");
                }
                tally.not_run += 1;
            }
            break;
        }
    }
    tally
}
