//! Workloads and their replicas (s4t extension).

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::sql::{bind_all, Val};
use crate::{Result, Scope, Store, StoreError};

/// A workload as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub uuid: String,
    pub name: String,
    pub project: Option<String>,
    /// The applied spec ([`s4t_model::workloads::WorkloadSpec::to_json`]).
    pub spec: Value,
    /// The board uuid of a `placement.board` workload.
    pub pinned_board: Option<String>,
    /// Goes up at every apply that changes the spec; replicas carry the one they run.
    pub generation: i64,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// One replica: where it is placed and what its board last said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub uuid: String,
    pub workload_uuid: String,
    pub ordinal: i64,
    pub board_uuid: Option<String>,
    pub generation: i64,
    /// `pending` (not on a board yet), `starting`, `running`, `backoff`, `exited`, `failed`,
    /// `fenced`, or `unknown` (the board did not answer).
    pub state: String,
    pub exit_code: Option<i64>,
    pub restarts: i64,
    pub message: Option<String>,
    pub placed_at: Option<String>,
    pub reported_at: Option<String>,
    pub created_at: String,
}

/// What a board reported about a replica.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReport {
    pub state: String,
    pub exit_code: Option<i64>,
    pub restarts: i64,
    pub message: Option<String>,
    pub generation: Option<i64>,
}

const SELECT: &str = "SELECT uuid, name, project, spec, pinned_board, generation, created_at, updated_at FROM workloads";
const SELECT_REPLICA: &str =
    "SELECT uuid, workload_uuid, ordinal, board_uuid, generation, state, exit_code, restarts, \
    message, placed_at, reported_at, created_at FROM workload_replicas";

fn decode(row: &AnyRow) -> Result<Workload> {
    let spec: String = row.try_get("spec")?;
    Ok(Workload {
        uuid: row.try_get("uuid")?,
        name: row.try_get("name")?,
        project: row.try_get("project")?,
        spec: serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt {
            what: "workload spec",
            detail: e.to_string(),
        })?,
        pinned_board: row.try_get("pinned_board")?,
        generation: row.try_get("generation")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn decode_replica(row: &AnyRow) -> Result<Replica> {
    Ok(Replica {
        uuid: row.try_get("uuid")?,
        workload_uuid: row.try_get("workload_uuid")?,
        ordinal: row.try_get("ordinal")?,
        board_uuid: row.try_get("board_uuid")?,
        generation: row.try_get("generation")?,
        state: row.try_get("state")?,
        exit_code: row.try_get("exit_code")?,
        restarts: row.try_get("restarts")?,
        message: row.try_get("message")?,
        placed_at: row.try_get("placed_at")?,
        reported_at: row.try_get("reported_at")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates the workload, or updates the one of that name in the project (the generation
    /// goes up when the spec changes). `true`: created.
    pub async fn apply_workload(
        &self,
        name: &str,
        project: Option<&str>,
        spec: &Value,
        pinned_board: Option<&str>,
    ) -> Result<(Workload, bool)> {
        let now = s4t_model::time::now();
        let spec_text = spec.to_string();
        for _ in 0..3 {
            let mut tx = self.begin_write().await?;
            let existing = sqlx::query(&format!(
                "{SELECT} WHERE name = $1 AND COALESCE(project, '') = $2"
            ))
            .bind(name)
            .bind(project.unwrap_or_default())
            .fetch_optional(&mut **tx)
            .await?;
            let (uuid, created) = match existing.as_ref().map(decode).transpose()? {
                Some(w) => {
                    if w.spec != *spec || w.pinned_board.as_deref() != pinned_board {
                        sqlx::query(
                            "UPDATE workloads SET spec = $1, pinned_board = $2, generation = generation + 1, updated_at = $3 WHERE uuid = $4",
                        )
                        .bind(&spec_text)
                        .bind(pinned_board)
                        .bind(&now)
                        .bind(&w.uuid)
                        .execute(&mut **tx)
                        .await?;
                    }
                    (w.uuid, false)
                }
                None => {
                    let uuid = s4t_model::ident::new_uuid();
                    let inserted = sqlx::query(
                        "INSERT INTO workloads (uuid, name, project, spec, pinned_board, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&uuid)
                    .bind(name)
                    .bind(project)
                    .bind(&spec_text)
                    .bind(pinned_board)
                    .bind(&now)
                    .execute(&mut **tx)
                    .await;
                    match inserted {
                        Ok(_) => (uuid, true),
                        // Applied at the same moment by another request: update it instead.
                        Err(e)
                            if e.as_database_error()
                                .is_some_and(|d| d.is_unique_violation()) =>
                        {
                            let _ = tx.rollback().await;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            tx.commit().await?;
            return Ok((self.workload(&uuid, &Scope::All).await?, created));
        }
        Err(StoreError::Conflict(format!(
            "workload {name} is being applied by another request: try again"
        )))
    }

    /// A workload by uuid or name, in `scope`.
    pub async fn workload(&self, ident: &str, scope: &Scope) -> Result<Workload> {
        decode(&crate::sql::fetch_by_ident(self.pool(), SELECT, "Workload", ident, scope).await?)
    }

    pub async fn workloads(&self, scope: &Scope) -> Result<Vec<Workload>> {
        crate::sql::fetch_in_scope(self.pool(), SELECT, scope)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Deletes a workload and its replicas; returns the replicas it had (their boards must be
    /// told).
    pub async fn delete_workload(&self, uuid: &str) -> Result<Vec<Replica>> {
        let replicas = self.replicas(uuid).await?;
        let done = sqlx::query("DELETE FROM workloads WHERE uuid = $1")
            .bind(uuid)
            .execute(&*self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Workload", uuid));
        }
        Ok(replicas)
    }

    /// The replicas of a workload, by ordinal.
    pub async fn replicas(&self, workload_uuid: &str) -> Result<Vec<Replica>> {
        let rows = sqlx::query(&format!(
            "{SELECT_REPLICA} WHERE workload_uuid = $1 ORDER BY ordinal"
        ))
        .bind(workload_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode_replica).collect()
    }

    /// Every replica placed on a board.
    pub async fn replicas_on_board(&self, board_uuid: &str) -> Result<Vec<Replica>> {
        let rows = sqlx::query(&format!(
            "{SELECT_REPLICA} WHERE board_uuid = $1 ORDER BY workload_uuid, ordinal"
        ))
        .bind(board_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode_replica).collect()
    }

    /// A replica by uuid.
    pub async fn replica(&self, uuid: &str) -> Result<Option<Replica>> {
        let row = sqlx::query(&format!("{SELECT_REPLICA} WHERE uuid = $1"))
            .bind(uuid)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(decode_replica).transpose()
    }

    /// Puts replica `ordinal` of a workload on `board` (`None`: waiting for one), replacing
    /// the replica that had that ordinal, if any, under a new uuid. Returns the new replica.
    pub async fn place_replica(
        &self,
        workload_uuid: &str,
        ordinal: u32,
        board: Option<&str>,
        generation: i64,
    ) -> Result<Replica> {
        let uuid = s4t_model::ident::new_uuid();
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM workload_replicas WHERE workload_uuid = $1 AND ordinal = $2")
            .bind(workload_uuid)
            .bind(ordinal as i64)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO workload_replicas (uuid, workload_uuid, ordinal, board_uuid, generation, state, placed_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&uuid)
        .bind(workload_uuid)
        .bind(ordinal as i64)
        .bind(board)
        .bind(generation)
        .bind(if board.is_some() { "starting" } else { "pending" })
        .bind(board.map(|_| now.clone()))
        .bind(&now)
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, || format!("workload {workload_uuid} was deleted meanwhile")))?;
        tx.commit().await?;
        self.replica(&uuid)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("replica {uuid} vanished as it was made")))
    }

    /// Forgets a replica (scaled down).
    pub async fn remove_replica(&self, uuid: &str) -> Result<()> {
        sqlx::query("DELETE FROM workload_replicas WHERE uuid = $1")
            .bind(uuid)
            .execute(&*self.writer())
            .await?;
        Ok(())
    }

    /// Records what a board said about a replica.
    pub async fn report_replica(&self, uuid: &str, r: &ReplicaReport) -> Result<()> {
        let vals = [
            Val::from(r.state.as_str()),
            r.exit_code.map_or(Val::Null, Val::from),
            Val::from(r.restarts),
            Val::from(r.message.clone()),
            Val::from(s4t_model::time::now()),
            Val::from(uuid),
        ];
        let mut sql = String::from(
            "UPDATE workload_replicas SET state = $1, exit_code = $2, restarts = $3, message = $4, reported_at = $5",
        );
        if let Some(g) = r.generation {
            sql.push_str(&format!(", generation = {g}"));
        }
        sql.push_str(" WHERE uuid = $6");
        bind_all(sqlx::query(&sql), &vals)
            .execute(&*self.writer())
            .await?;
        Ok(())
    }
}

/// A board as the scheduler needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardRow {
    pub uuid: String,
    pub online: bool,
    pub fleet: Option<String>,
    pub extra: s4t_model::resources::JsonObject,
    /// `latitude,longitude,altitude`, when the board has a location.
    pub location: Option<String>,
    pub owner: Option<String>,
    pub project: Option<String>,
}

impl Store {
    /// Every board, with what placement looks at.
    pub async fn board_rows(&self) -> Result<Vec<BoardRow>> {
        let rows = sqlx::query(
            "SELECT b.uuid, b.status, b.fleet, b.extra, b.owner, b.project, l.latitude, l.longitude, l.altitude \
             FROM boards b LEFT JOIN locations l ON l.board_id = b.id ORDER BY b.uuid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let lat: Option<String> = r.try_get("latitude")?;
                let lon: Option<String> = r.try_get("longitude")?;
                let alt: Option<String> = r.try_get("altitude")?;
                Ok(BoardRow {
                    uuid: r.try_get("uuid")?,
                    online: status == "online",
                    fleet: r.try_get("fleet")?,
                    extra: crate::sql::json_obj(r, "extra")?,
                    location: lat.map(|lat| {
                        format!(
                            "{lat},{},{}",
                            lon.unwrap_or_default(),
                            alt.unwrap_or_default()
                        )
                    }),
                    owner: r.try_get("owner")?,
                    project: r.try_get("project")?,
                })
            })
            .collect()
    }
}
