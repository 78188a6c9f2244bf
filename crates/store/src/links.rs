//! Board link bookkeeping: registration, WAMP sessions, board status, and results that boards
//! report later (`notify_result`). Every change of status goes through the lifecycle table.

use sqlx::Row;

use s4t_model::board_link::ConnectionInfo;
use s4t_model::resources::{Board, Outcome};
use s4t_model::{BoardStatus, LifecycleEvent};

use crate::sql::to_json_text;
use crate::{Result, Store, StoreError};

fn lifecycle(board: &Board, event: LifecycleEvent) -> Result<BoardStatus> {
    board
        .status
        .on(event)
        .map_err(|e| StoreError::Conflict(e.to_string()))
}

impl Store {
    /// A registration: the board's registration session becomes its valid session, the board
    /// is offline with `config` stored (a new document, or `None` to keep the stored one), and
    /// its WAMP secret is replaced by one with this SHA-256 — all in one transaction.
    pub async fn register_board(
        &self,
        board: &Board,
        session_id: &str,
        provisioned: Option<(&str, &serde_json::Value)>,
        secret_hash: &str,
    ) -> Result<()> {
        let status = lifecycle(board, LifecycleEvent::Provisioned)?;
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        replace_session(&mut tx, &board.uuid, session_id, &now).await?;
        match provisioned {
            Some((agent, config)) => {
                let config = match config {
                    serde_json::Value::Object(m) => to_json_text(m),
                    _ => "{}".into(),
                };
                sqlx::query(
                    "UPDATE boards SET status = $1, agent = $2, config = $3, updated_at = $4, secret_hash = $5 \
                     WHERE uuid = $6",
                )
                .bind(status.as_str())
                .bind(agent)
                .bind(config)
                .bind(now.as_str())
                .bind(secret_hash)
                .bind(board.uuid.as_str())
                .execute(&mut **tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE boards SET status = $1, updated_at = $2, secret_hash = $3 WHERE uuid = $4",
                )
                .bind(status.as_str())
                .bind(now.as_str())
                .bind(secret_hash)
                .bind(board.uuid.as_str())
                    .execute(&mut **tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A `connection` call: `session_id` becomes the board's only valid session, the board goes
    /// online, and its version and connectivity are updated.
    pub async fn connect_board(
        &self,
        board: &Board,
        session_id: &str,
        info: &ConnectionInfo,
    ) -> Result<()> {
        let status = lifecycle(board, LifecycleEvent::SessionOpened)?;
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        replace_session(&mut tx, &board.uuid, session_id, &now).await?;
        sqlx::query(
            "UPDATE boards SET status = $1, lr_version = COALESCE($2, lr_version), \
             connectivity = COALESCE($3, connectivity), updated_at = $4 WHERE uuid = $5",
        )
        .bind(status.as_str())
        .bind(info.lr_version.as_deref())
        .bind(info.connectivity.as_ref().map(to_json_text))
        .bind(now.as_str())
        .bind(board.uuid.as_str())
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A WAMP session left: it stops being valid, and its board (if that was its valid session)
    /// goes offline. Returns the boards that went offline.
    pub async fn close_session(&self, session_id: &str) -> Result<Vec<String>> {
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE sessions SET valid = FALSE, updated_at = $1 WHERE session_id = $2 AND valid = TRUE \
             RETURNING board_uuid",
        )
        .bind(now.as_str())
        .bind(session_id)
        .fetch_all(&mut **tx)
        .await?;
        let mut boards = Vec::with_capacity(rows.len());
        for r in rows {
            let uuid: String = r.try_get(0)?;
            sqlx::query(
                "UPDATE boards SET status = 'offline', updated_at = $1 WHERE uuid = $2 AND status = 'online'",
            )
            .bind(now.as_str())
            .bind(uuid.as_str())
            .execute(&mut **tx)
            .await?;
            boards.push(uuid);
        }
        tx.commit().await?;
        Ok(boards)
    }

    /// Invalidates every valid session not in `live` and sets those boards offline (on router
    /// start nothing is live). Returns how many sessions were closed.
    pub async fn reconcile_sessions(
        &self,
        live: &std::collections::HashSet<String>,
    ) -> Result<u64> {
        let rows = sqlx::query("SELECT session_id FROM sessions WHERE valid = TRUE")
            .fetch_all(self.pool())
            .await?;
        let mut closed = 0;
        for r in rows {
            let id: String = r.try_get(0)?;
            if !live.contains(&id) {
                self.close_session(&id).await?;
                closed += 1;
            }
        }
        // Online boards without any valid session (a crash between two writes) are offline too.
        let now = s4t_model::time::now();
        sqlx::query(
            "UPDATE boards SET status = 'offline', updated_at = $1 WHERE status = 'online' AND NOT EXISTS \
             (SELECT 1 FROM sessions s WHERE s.board_uuid = boards.uuid AND s.valid = TRUE)",
        )
        .bind(now.as_str())
        .execute(&*self.writer())
        .await?;
        Ok(closed)
    }

    /// The SHA-256 (hex) of the board's WAMP secret, if it has one.
    pub async fn board_secret_hash(&self, board_uuid: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT secret_hash FROM boards WHERE uuid = $1")
            .bind(board_uuid)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => None,
        })
    }

    /// A result a board reports later (`notify_result`): updates its result row, completes the
    /// request when nothing of it still runs, and counts it off its parent. Returns false when no
    /// such result exists.
    pub async fn notify_result(
        &self,
        board_uuid: &str,
        request_uuid: &str,
        outcome: Outcome,
        message: &str,
    ) -> Result<bool> {
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE results SET result = $1, message = $2, updated_at = $3 WHERE request_uuid = $4 AND board_uuid = $5",
        )
        .bind(outcome.as_str())
        .bind(message)
        .bind(now.as_str())
        .bind(request_uuid)
        .bind(board_uuid)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if outcome != Outcome::Running {
            complete_if_settled(&mut tx, request_uuid, &now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Makes `session_id` the board's only valid session (reusing the row if it exists).
async fn replace_session(
    tx: &mut Tx<'_>,
    board_uuid: &str,
    session_id: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET valid = FALSE, updated_at = $1 WHERE board_uuid = $2 AND valid = TRUE",
    )
    .bind(now)
    .bind(board_uuid)
    .execute(&mut **tx)
    .await?;
    let reused = sqlx::query(
        "UPDATE sessions SET valid = TRUE, updated_at = $1 WHERE board_uuid = $2 AND session_id = $3",
    )
    .bind(now)
    .bind(board_uuid)
    .bind(session_id)
    .execute(&mut **tx)
    .await?;
    if reused.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO sessions (valid, session_id, board_uuid, created_at) VALUES (TRUE, $1, $2, $3)",
        )
        .bind(session_id)
        .bind(board_uuid)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Completes `request_uuid` when none of its results (or its sub-requests' results) is RUNNING
/// and no sub-request is pending, then counts it off its parent, which completes at zero
/// (upstream §3.2).
pub(crate) async fn complete_if_settled(
    tx: &mut Tx<'_>,
    request_uuid: &str,
    now: &str,
) -> Result<()> {
    // One statement: complete it unless a result of it or of a sub-request still runs.
    let completed = sqlx::query(
        "UPDATE requests SET status = 'COMPLETED', updated_at = $1 WHERE uuid = $2 AND status = 'PENDING' \
         AND pending_requests = 0 AND NOT EXISTS (SELECT 1 FROM results WHERE result = 'RUNNING' AND \
         (request_uuid = $2 OR request_uuid IN (SELECT uuid FROM requests WHERE main_request_uuid = $2))) \
         RETURNING main_request_uuid",
    )
    .bind(now)
    .bind(request_uuid)
    .fetch_optional(&mut **tx)
    .await?;
    let parent: Option<String> = match completed {
        Some(r) => r.try_get(0)?,
        None => None,
    };
    if let Some(parent) = parent {
        sqlx::query(
            "UPDATE requests SET pending_requests = pending_requests - 1, updated_at = $1 \
             WHERE uuid = $2 AND pending_requests > 0",
        )
        .bind(now)
        .bind(parent.as_str())
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE requests SET status = 'COMPLETED', updated_at = $1 WHERE uuid = $2 AND status = 'PENDING' \
             AND pending_requests = 0",
        )
        .bind(now)
        .bind(parent.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
