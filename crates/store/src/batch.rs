//! Bookkeeping for many boards at once (fleet rollouts): sub-requests opened and closed a batch
//! at a time, in a handful of statements instead of several per board.

use std::collections::HashMap;

use sqlx::Row;

use s4t_model::resources::{Outcome, Request, RequestStatus};

use crate::sql::{bind_all, Val};
use crate::{Result, Store};

/// Rows per multi-row statement (well under both engines' parameter limits).
const CHUNK: usize = 400;

/// One board's final answer in a batch.
#[derive(Debug, Clone)]
pub struct Closed {
    pub request_uuid: String,
    pub board_uuid: String,
    pub outcome: Outcome,
    pub message: String,
}

fn placeholders(
    rows: usize,
    per_row: usize,
    first: usize,
    shape: impl Fn(&[String]) -> String,
) -> String {
    (0..rows)
        .map(|r| {
            let ps: Vec<String> = (0..per_row)
                .map(|c| format!("${}", first + r * per_row + c))
                .collect();
            shape(&ps)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Opens one PENDING sub-request of `parent` (with its RUNNING result) per board, in one
    /// transaction. Returns the requests in the order of `boards` (uuid, project).
    pub async fn open_sub_requests(
        &self,
        parent: &str,
        action: &str,
        boards: &[(String, Option<String>)],
    ) -> Result<Vec<Request>> {
        let now = s4t_model::time::now();
        let uuids: Vec<String> = boards
            .iter()
            .map(|_| s4t_model::ident::new_uuid())
            .collect();
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(boards.len());
        let mut tx = self.begin_write().await?;
        for (chunk_boards, chunk_uuids) in boards.chunks(CHUNK).zip(uuids.chunks(CHUNK)) {
            let mut vals = Vec::with_capacity(chunk_boards.len() * 6);
            for ((board, project), uuid) in chunk_boards.iter().zip(chunk_uuids) {
                vals.extend([
                    Val::from(uuid.as_str()),
                    Val::from(board.as_str()),
                    Val::from(parent),
                    Val::from(project.clone()),
                    Val::from(action),
                    Val::from(now.as_str()),
                ]);
            }
            let rows = placeholders(chunk_boards.len(), 6, 1, |p| {
                format!(
                    "({}, {}, {}, 0, {}, 'PENDING', 0, {}, {})",
                    p[0], p[1], p[2], p[3], p[4], p[5]
                )
            });
            let sql = format!(
                "INSERT INTO requests (uuid, destination_uuid, main_request_uuid, pending_requests, project, \
                 status, type, action, created_at) VALUES {rows} RETURNING id, uuid"
            );
            for row in bind_all(sqlx::query(&sql), &vals)
                .fetch_all(&mut **tx)
                .await?
            {
                ids.insert(row.try_get(1)?, row.try_get(0)?);
            }
            let mut vals = Vec::with_capacity(chunk_boards.len() * 3);
            for ((board, _), uuid) in chunk_boards.iter().zip(chunk_uuids) {
                vals.extend([
                    Val::from(board.as_str()),
                    Val::from(uuid.as_str()),
                    Val::from(now.as_str()),
                ]);
            }
            let rows = placeholders(chunk_boards.len(), 3, 1, |p| {
                format!("({}, {}, 'RUNNING', '', {})", p[0], p[1], p[2])
            });
            let sql = format!(
                "INSERT INTO results (board_uuid, request_uuid, result, message, created_at) VALUES {rows}"
            );
            bind_all(sqlx::query(&sql), &vals)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(boards
            .iter()
            .zip(uuids)
            .map(|((board, project), uuid)| Request {
                id: ids.get(&uuid).copied().unwrap_or_default(),
                uuid,
                destination_uuid: Some(board.clone()),
                main_request_uuid: Some(parent.to_string()),
                pending_requests: 0,
                status: RequestStatus::Pending,
                project: project.clone(),
                request_type: 0,
                action: Some(action.to_string()),
                created_at: now.clone(),
                updated_at: None,
            })
            .collect())
    }

    /// Stores final answers of sub-requests of `parent` (no RUNNING ones), completes them,
    /// counts them off the parent, and completes the parent at zero: one transaction.
    pub async fn close_sub_requests(&self, parent: &str, closed: &[Closed]) -> Result<()> {
        debug_assert!(closed.iter().all(|c| c.outcome != Outcome::Running));
        if closed.is_empty() {
            return Ok(());
        }
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        for chunk in closed.chunks(CHUNK) {
            let mut vals = vec![Val::from(now.as_str())];
            for c in chunk {
                vals.extend([
                    Val::from(c.request_uuid.as_str()),
                    Val::from(c.board_uuid.as_str()),
                    Val::from(c.outcome.as_str()),
                    Val::from(c.message.as_str()),
                ]);
            }
            let rows = placeholders(chunk.len(), 4, 2, |p| {
                format!("({}, {}, {}, {})", p[0], p[1], p[2], p[3])
            });
            let sql = format!(
                "UPDATE results SET result = v.column3, message = v.column4, updated_at = $1 \
                 FROM (VALUES {rows}) AS v WHERE results.request_uuid = v.column1 AND results.board_uuid = v.column2"
            );
            bind_all(sqlx::query(&sql), &vals)
                .execute(&mut **tx)
                .await?;
            let mut vals = vec![Val::from(now.as_str())];
            vals.extend(chunk.iter().map(|c| Val::from(c.request_uuid.as_str())));
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE requests SET status = 'COMPLETED', updated_at = $1 WHERE status = 'PENDING' AND uuid IN ({list})"
            );
            bind_all(sqlx::query(&sql), &vals)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query(
            "UPDATE requests SET pending_requests = CASE WHEN pending_requests > $1 THEN pending_requests - $1 ELSE 0 END, \
             updated_at = $2 WHERE uuid = $3",
        )
        .bind(closed.len() as i64)
        .bind(now.as_str())
        .bind(parent)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE requests SET status = 'COMPLETED', updated_at = $1 WHERE uuid = $2 AND status = 'PENDING' \
             AND pending_requests = 0",
        )
        .bind(now.as_str())
        .bind(parent)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `plugin` is injected into each of `boards` (new rows `injected`, existing
    /// ones `updated`), in one transaction.
    pub async fn upsert_injections(
        &self,
        plugin: &str,
        boards: &[String],
        onboot: bool,
    ) -> Result<()> {
        if boards.is_empty() {
            return Ok(());
        }
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        for chunk in boards.chunks(CHUNK) {
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let mut vals = vec![
                Val::from(onboot),
                Val::from(now.as_str()),
                Val::from(plugin),
            ];
            vals.extend(chunk.iter().map(|b| Val::from(b.as_str())));
            let sql = format!(
                "UPDATE injection_plugins SET status = 'updated', onboot = $1, updated_at = $2 \
                 WHERE plugin_uuid = $3 AND board_uuid IN ({list})"
            );
            bind_all(sqlx::query(&sql), &vals)
                .execute(&mut **tx)
                .await?;
            let sql = format!(
                "INSERT INTO injection_plugins (board_uuid, plugin_uuid, onboot, status, created_at) \
                 SELECT b.uuid, $3, $1, 'injected', $2 FROM boards b WHERE b.uuid IN ({list}) AND NOT EXISTS \
                 (SELECT 1 FROM injection_plugins i WHERE i.board_uuid = b.uuid AND i.plugin_uuid = $3)"
            );
            bind_all(sqlx::query(&sql), &vals)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A board call waiting for its board to come back online.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    pub id: i64,
    pub request: Request,
    pub method: String,
    pub args: Vec<serde_json::Value>,
    /// For PluginInject: the injection to record once it succeeds.
    pub plugin_uuid: Option<String>,
    pub onboot: bool,
}

impl Store {
    /// Marks sub-requests as waiting for their boards: their results say so, and the calls are
    /// kept until the board connects (they survive restarts).
    pub async fn defer(
        &self,
        requests: &[Request],
        method: &str,
        args: &[serde_json::Value],
        plugin: Option<(&str, bool)>,
    ) -> Result<()> {
        let now = s4t_model::time::now();
        let args = serde_json::to_string(args).unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin_write().await?;
        for r in requests {
            let board = r.destination_uuid.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO deferred_operations (request_uuid, board_uuid, method, args, plugin_uuid, onboot, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.uuid.as_str())
            .bind(board.as_str())
            .bind(method)
            .bind(args.as_str())
            .bind(plugin.map(|p| p.0))
            .bind(plugin.map(|p| p.1))
            .bind(now.as_str())
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE results SET message = $1, updated_at = $2 WHERE request_uuid = $3 AND result = 'RUNNING'",
            )
            .bind("deferred: runs when the board is online again")
            .bind(now.as_str())
            .bind(r.uuid.as_str())
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The calls waiting for `board_uuid`, oldest first.
    pub async fn deferred_for(&self, board_uuid: &str) -> Result<Vec<Deferred>> {
        let rows = sqlx::query(
            "SELECT d.id, d.request_uuid, d.method, d.args, d.plugin_uuid, d.onboot FROM deferred_operations d \
             WHERE d.board_uuid = $1 ORDER BY d.id",
        )
        .bind(board_uuid)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let request_uuid: String = row.try_get(1)?;
            let args: String = row.try_get(3)?;
            out.push(Deferred {
                id: row.try_get(0)?,
                request: self.request(&request_uuid, &crate::Scope::All).await?,
                method: row.try_get(2)?,
                args: serde_json::from_str(&args).unwrap_or_default(),
                plugin_uuid: row.try_get(4)?,
                onboot: crate::sql::boolean(&row, "onboot")?.unwrap_or(false),
            });
        }
        Ok(out)
    }

    /// Forgets a deferred call (it ran, whatever its outcome).
    pub async fn drop_deferred(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM deferred_operations WHERE id = $1")
            .bind(id)
            .execute(&*self.writer())
            .await?;
        Ok(())
    }
}
