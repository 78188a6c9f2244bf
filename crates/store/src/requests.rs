//! Requests and results: the record of every operation sent to boards.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::{Outcome, Request, RequestResult, RequestStatus};

use crate::sql::{bind_all, fetch_page, Collection, Kind, SortColumn, Val, Where};
use crate::{Page, Result, Scope, Store, StoreError};

const SELECT: &str =
    "SELECT r.id, r.uuid, r.destination_uuid, r.main_request_uuid, r.pending_requests, r.project, \
    r.status, r.type, r.action, r.created_at, r.updated_at FROM requests r";

const SORT: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "r.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "uuid",
        expr: "r.uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "destination_uuid",
        expr: "r.destination_uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "main_request_uuid",
        expr: "r.main_request_uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "status",
        expr: "r.status",
        kind: Kind::Text,
    },
    SortColumn {
        key: "project",
        expr: "r.project",
        kind: Kind::Text,
    },
    SortColumn {
        key: "type",
        expr: "r.type",
        kind: Kind::Int,
    },
    SortColumn {
        key: "action",
        expr: "r.action",
        kind: Kind::Text,
    },
    SortColumn {
        key: "created_at",
        expr: "r.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "r.updated_at",
        kind: Kind::Text,
    },
];

/// A request to record before a board is called.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub destination_uuid: Option<String>,
    pub main_request_uuid: Option<String>,
    pub pending_requests: i64,
    pub project: Option<String>,
    pub request_type: i64,
    pub action: String,
}

fn decode(row: &AnyRow) -> Result<Request> {
    let status: String = row.try_get("status")?;
    Ok(Request {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        destination_uuid: row.try_get("destination_uuid")?,
        main_request_uuid: row.try_get("main_request_uuid")?,
        pending_requests: row.try_get("pending_requests")?,
        status: RequestStatus::parse(&status).ok_or(StoreError::Corrupt {
            what: "request status",
            detail: status,
        })?,
        project: row.try_get("project")?,
        request_type: row.try_get("type")?,
        action: row.try_get("action")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn decode_result(row: &AnyRow) -> Result<RequestResult> {
    let result: String = row.try_get("result")?;
    Ok(RequestResult {
        id: row.try_get("id")?,
        board_uuid: row.try_get("board_uuid")?,
        request_uuid: row.try_get("request_uuid")?,
        result: Outcome::parse(&result).ok_or(StoreError::Corrupt {
            what: "result",
            detail: result,
        })?,
        message: row.try_get("message")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Records a PENDING request and its RUNNING result row for `board_uuid`, in one transaction.
    pub async fn open_request(&self, new: &NewRequest, board_uuid: &str) -> Result<Request> {
        let uuid = s4t_model::ident::new_uuid();
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO requests (uuid, destination_uuid, main_request_uuid, pending_requests, project, status, type, action, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8) RETURNING id",
        )
        .bind(uuid.as_str())
        .bind(new.destination_uuid.as_deref())
        .bind(new.main_request_uuid.as_deref())
        .bind(new.pending_requests)
        .bind(new.project.as_deref())
        .bind(new.request_type)
        .bind(new.action.as_str())
        .bind(now.as_str())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        sqlx::query(
            "INSERT INTO results (board_uuid, request_uuid, result, message, created_at) VALUES ($1, $2, 'RUNNING', '', $3)",
        )
        .bind(board_uuid)
        .bind(uuid.as_str())
        .bind(now.as_str())
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        // Everything is known: no need to read the row back.
        Ok(Request {
            id,
            uuid,
            destination_uuid: new.destination_uuid.clone(),
            main_request_uuid: new.main_request_uuid.clone(),
            pending_requests: new.pending_requests,
            status: RequestStatus::Pending,
            project: new.project.clone(),
            request_type: new.request_type,
            action: Some(new.action.clone()),
            created_at: now,
            updated_at: None,
        })
    }

    /// Records a PENDING parent ("main") request with no result of its own: it completes when
    /// its `pending_requests` sub-requests have (upstream §3.2).
    pub async fn open_parent_request(&self, new: &NewRequest) -> Result<Request> {
        let uuid = s4t_model::ident::new_uuid();
        sqlx::query(
            "INSERT INTO requests (uuid, destination_uuid, main_request_uuid, pending_requests, project, status, type, action, created_at) \
             VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid.as_str())
        .bind(new.destination_uuid.as_deref())
        .bind(new.pending_requests)
        .bind(new.project.as_deref())
        // A parent with nothing to wait for is done at once.
        .bind(if new.pending_requests > 0 { "PENDING" } else { "COMPLETED" })
        .bind(new.request_type)
        .bind(new.action.as_str())
        .bind(s4t_model::time::now())
        .execute(&*self.writer())
        .await?;
        self.request(&uuid, &Scope::All).await
    }

    /// Stores the board's final answer and completes the request.
    pub async fn close_request(
        &self,
        request_uuid: &str,
        board_uuid: &str,
        outcome: Outcome,
        message: &str,
    ) -> Result<()> {
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        // A RUNNING reply never overwrites a final result: the board's notify_result may have
        // landed before the reply to the call itself was recorded.
        let guard = if outcome == Outcome::Running {
            " AND result = 'RUNNING'"
        } else {
            ""
        };
        sqlx::query(&format!("UPDATE results SET result = $1, message = $2, updated_at = $3 WHERE request_uuid = $4 AND board_uuid = $5{guard}"))
            .bind(outcome.as_str())
            .bind(message)
            .bind(now.as_str())
            .bind(request_uuid)
            .bind(board_uuid)
            .execute(&mut **tx)
            .await?;
        if outcome != Outcome::Running {
            crate::links::complete_if_settled(&mut tx, request_uuid, &now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends every request still PENDING (after a restart) with an ERROR result saying so, except
    /// calls deferred until their board is online (and their parents, whose count of pending
    /// sub-requests is recomputed).
    pub async fn interrupt_pending_requests(&self, reason: &str) -> Result<u64> {
        const WAITING: &str = "SELECT request_uuid FROM deferred_operations";
        const WAITING_PARENTS: &str =
            "SELECT r.main_request_uuid FROM requests r JOIN deferred_operations d \
             ON d.request_uuid = r.uuid WHERE r.main_request_uuid IS NOT NULL";
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "UPDATE results SET result = 'ERROR', message = $1, updated_at = $2 WHERE result = 'RUNNING' \
             AND request_uuid IN (SELECT uuid FROM requests WHERE status = 'PENDING') \
             AND request_uuid NOT IN ({WAITING})"
        ))
        .bind(reason)
        .bind(now.as_str())
        .execute(&mut **tx)
        .await?;
        let done = sqlx::query(&format!(
            "UPDATE requests SET status = 'COMPLETED', updated_at = $1 WHERE status = 'PENDING' \
             AND uuid NOT IN ({WAITING}) AND uuid NOT IN ({WAITING_PARENTS})"
        ))
        .bind(now.as_str())
        .execute(&mut **tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE requests SET pending_requests = (SELECT count(*) FROM requests c \
             WHERE c.main_request_uuid = requests.uuid AND c.status = 'PENDING') \
             WHERE uuid IN ({WAITING_PARENTS})"
        ))
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub async fn request(&self, uuid: &str, scope: &Scope) -> Result<Request> {
        let mut w = Where::new();
        w.eq("r.uuid", uuid);
        w.scope("r.project", scope);
        let sql = format!("{SELECT}{}", w.sql());
        match bind_all(sqlx::query(&sql), &w.vals)
            .fetch_optional(self.pool())
            .await?
        {
            Some(r) => decode(&r),
            None => Err(StoreError::not_found("Request", uuid)),
        }
    }

    pub async fn list_requests(&self, scope: &Scope, page: &Page) -> Result<Vec<Request>> {
        let mut w = Where::new();
        w.scope("r.project", scope);
        let rows = fetch_page(
            self.pool(),
            &Collection {
                select: SELECT,
                table: "requests",
                alias: "r",
                kind: "Request",
                sort: SORT,
                marker_by_id: false,
            },
            w,
            page,
        )
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Results of a request and of its sub-requests.
    pub async fn results(&self, request_uuid: &str) -> Result<Vec<RequestResult>> {
        let vals = [Val::from(request_uuid)];
        let rows = bind_all(
            sqlx::query(
                "SELECT id, board_uuid, request_uuid, result, message, created_at, updated_at FROM results \
                 WHERE request_uuid = $1 OR request_uuid IN (SELECT uuid FROM requests WHERE main_request_uuid = $1) \
                 ORDER BY id",
            ),
            &vals,
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode_result).collect()
    }
}
