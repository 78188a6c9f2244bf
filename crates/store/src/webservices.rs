//! Webservices (board HTTP ports published under a host name) and the boards enabled for them.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::{EnabledWebservice, Webservice};

use crate::services::{claim_port, pick_port, retry_or_fail, ReserveError, PURPOSE_WEBSERVICE};
use crate::sql::{
    bind_all, boolean, fetch_page, json_obj, Collection, Kind, SortColumn, Val, Where,
};
use crate::{Page, Result, Scope, Store, StoreError};

const SELECT: &str = "SELECT w.id, w.uuid, w.name, w.port, w.board_uuid, w.secure, w.extra, w.created_at, w.updated_at, w.tunnel_port \
    FROM webservices w JOIN boards b ON b.uuid = w.board_uuid";

const SORT: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "w.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "uuid",
        expr: "w.uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "name",
        expr: "w.name",
        kind: Kind::Text,
    },
    SortColumn {
        key: "port",
        expr: "w.port",
        kind: Kind::Int,
    },
    SortColumn {
        key: "board_uuid",
        expr: "w.board_uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "secure",
        expr: "w.secure",
        kind: Kind::Bool,
    },
    SortColumn {
        key: "created_at",
        expr: "w.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "w.updated_at",
        kind: Kind::Text,
    },
];

const SELECT_ENABLED: &str =
    "SELECT e.id, e.board_uuid, e.http_port, e.https_port, e.dns, e.zone, e.extra, \
    e.created_at, e.updated_at FROM enabled_webservices e JOIN boards b ON b.uuid = e.board_uuid";

const SORT_ENABLED: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "e.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "board_uuid",
        expr: "e.board_uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "dns",
        expr: "e.dns",
        kind: Kind::Text,
    },
    SortColumn {
        key: "zone",
        expr: "e.zone",
        kind: Kind::Text,
    },
    SortColumn {
        key: "http_port",
        expr: "e.http_port",
        kind: Kind::Int,
    },
    SortColumn {
        key: "https_port",
        expr: "e.https_port",
        kind: Kind::Int,
    },
    SortColumn {
        key: "created_at",
        expr: "e.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "e.updated_at",
        kind: Kind::Text,
    },
];

fn decode(row: &AnyRow) -> Result<Webservice> {
    Ok(Webservice {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        name: row.try_get("name")?,
        port: row.try_get("port")?,
        board_uuid: row.try_get("board_uuid")?,
        secure: boolean(row, "secure")?.unwrap_or(true),
        extra: json_obj(row, "extra")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        tunnel_port: row.try_get("tunnel_port")?,
    })
}

fn decode_enabled(row: &AnyRow) -> Result<EnabledWebservice> {
    Ok(EnabledWebservice {
        id: row.try_get("id")?,
        board_uuid: row.try_get("board_uuid")?,
        http_port: row.try_get("http_port")?,
        https_port: row.try_get("https_port")?,
        dns: row.try_get("dns")?,
        zone: row.try_get("zone")?,
        extra: json_obj(row, "extra")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Webservices of boards in `scope`, optionally of one board.
    pub async fn list_webservices(
        &self,
        scope: &Scope,
        board_uuid: Option<&str>,
        page: &Page,
    ) -> Result<Vec<Webservice>> {
        let mut w = Where::new();
        w.scope("b.project", scope);
        if let Some(b) = board_uuid {
            w.eq("w.board_uuid", b);
        }
        let rows = fetch_page(
            self.pool(),
            &Collection {
                select: SELECT,
                table: "webservices",
                alias: "w",
                kind: "Webservice",
                sort: SORT,
                marker_by_id: false,
            },
            w,
            page,
        )
        .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn webservice(&self, uuid: &str, scope: &Scope) -> Result<Webservice> {
        let mut w = Where::new();
        w.eq("w.uuid", uuid);
        w.scope("b.project", scope);
        let sql = format!("{SELECT}{}", w.sql());
        match bind_all(sqlx::query(&sql), &w.vals)
            .fetch_optional(self.pool())
            .await?
        {
            Some(r) => decode(&r),
            None => Err(StoreError::not_found("Webservice", uuid)),
        }
    }

    /// Deletes a webservice and frees its tunnel port.
    pub async fn delete_webservice(&self, uuid: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM public_ports WHERE purpose = $1 AND owner_uuid = $2")
            .bind(PURPOSE_WEBSERVICE)
            .bind(uuid)
            .execute(&mut **tx)
            .await?;
        let done = sqlx::query("DELETE FROM webservices WHERE uuid = $1")
            .bind(uuid)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Webservice", uuid));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Publishes `port` of a board as webservice `name`, with a tunnel port of `range` for the
    /// HTTPS front. A name the board already has gives that webservice back (`false`: not new),
    /// as IoTronic does.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_webservice(
        &self,
        board_uuid: &str,
        name: &str,
        port: u16,
        secure: bool,
        extra: &s4t_model::resources::JsonObject,
        range: &std::ops::RangeInclusive<u16>,
        mut draw: impl FnMut() -> u64,
    ) -> std::result::Result<(Webservice, bool), ReserveError> {
        for _ in 0..16 {
            let mut tx = self.begin_write().await?;
            let existing =
                sqlx::query(&format!("{SELECT} WHERE w.board_uuid = $1 AND w.name = $2"))
                    .bind(board_uuid)
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(StoreError::from)?;
            if let Some(row) = existing {
                return Ok((decode(&row)?, false));
            }
            let Some(tunnel_port) = pick_port(&mut tx, range, draw()).await? else {
                return Err(ReserveError::Full {
                    service: format!("webservice {name}"),
                    first: *range.start(),
                    last: *range.end(),
                });
            };
            let uuid = uuid::Uuid::new_v4().to_string();
            let now = s4t_model::time::now();
            let mut result = claim_port(
                &mut tx,
                tunnel_port,
                board_uuid,
                PURPOSE_WEBSERVICE,
                &uuid,
                &now,
            )
            .await;
            if result.is_ok() {
                result = sqlx::query(
                    "INSERT INTO webservices (uuid, port, name, board_uuid, secure, extra, created_at, tunnel_port) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&uuid)
                .bind(port as i64)
                .bind(name)
                .bind(board_uuid)
                .bind(secure)
                .bind(serde_json::Value::Object(extra.clone()).to_string())
                .bind(&now)
                .bind(tunnel_port as i64)
                .execute(&mut **tx)
                .await
                .map(|_| ());
            }
            match result {
                Ok(()) => {
                    tx.commit().await?;
                    return Ok((self.webservice(&uuid, &Scope::All).await?, true));
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    retry_or_fail(e, board_uuid, name)?;
                }
            }
        }
        Err(StoreError::Conflict(format!(
            "could not reserve a tunnel port for webservice {name}: too many concurrent reservations, try again"
        ))
        .into())
    }

    /// The webservice published as `<name>.<dns>.<zone>`: what the HTTPS front routes to.
    pub async fn webservice_for_host(&self, host: &str) -> Result<Option<Webservice>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut labels = host.splitn(3, '.');
        let (Some(name), Some(dns), Some(zone)) = (labels.next(), labels.next(), labels.next())
        else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "{SELECT} JOIN enabled_webservices e ON e.board_uuid = w.board_uuid \
             WHERE lower(w.name) = $1 AND lower(e.dns) = $2 AND lower(e.zone) = $3"
        ))
        .bind(name)
        .bind(dns)
        .bind(zone)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Enables webservices on a board under `<dns>.<zone>`. The DNS label must be free and the
    /// board not enabled yet (IoTronic's two 409s).
    pub async fn enable_webservices(
        &self,
        board_uuid: &str,
        dns: &str,
        zone: &str,
        (http_port, https_port): (u16, u16),
        extra: &s4t_model::resources::JsonObject,
    ) -> Result<EnabledWebservice> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT board_uuid FROM enabled_webservices WHERE lower(dns) = lower($1) OR board_uuid = $2")
            .bind(dns)
            .bind(board_uuid)
            .fetch_all(&mut **tx)
            .await?;
        let holders: Vec<String> = taken
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        // The board's own row first: "already enabled" says more than "name taken".
        if let Some(holder) = holders
            .iter()
            .find(|h| *h == board_uuid)
            .or(holders.first())
        {
            return Err(StoreError::Conflict(if holder == board_uuid {
                format!("Webservices are already enabled on board {board_uuid}: disable them first to change the name.")
            } else {
                format!("The DNS name {dns} is already used by the webservices of board {holder}: choose another dns.")
            }));
        }
        sqlx::query(
            "INSERT INTO enabled_webservices (board_uuid, http_port, https_port, dns, zone, extra, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(board_uuid)
        .bind(http_port as i64)
        .bind(https_port as i64)
        .bind(dns)
        .bind(zone)
        .bind(serde_json::Value::Object(extra.clone()).to_string())
        .bind(s4t_model::time::now())
        .execute(&mut **tx)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.is_unique_violation() => StoreError::Conflict(format!(
                "The DNS name {dns} was taken meanwhile: choose another dns."
            )),
            _ => StoreError::Database(e),
        })?;
        tx.commit().await?;
        self.enabled_webservice(board_uuid).await
    }

    /// Disables webservices on a board: the enabled row, its webservices and their tunnel
    /// ports go. Returns the webservices that were removed.
    pub async fn disable_webservices(&self, board_uuid: &str) -> Result<Vec<Webservice>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!("{SELECT} WHERE w.board_uuid = $1"))
            .bind(board_uuid)
            .fetch_all(&mut **tx)
            .await?;
        let removed: Vec<Webservice> = rows.iter().map(decode).collect::<Result<_>>()?;
        sqlx::query("DELETE FROM public_ports WHERE board_uuid = $1 AND purpose = $2")
            .bind(board_uuid)
            .bind(PURPOSE_WEBSERVICE)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM webservices WHERE board_uuid = $1")
            .bind(board_uuid)
            .execute(&mut **tx)
            .await?;
        let done = sqlx::query("DELETE FROM enabled_webservices WHERE board_uuid = $1")
            .bind(board_uuid)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("EnabledWebservice", board_uuid));
        }
        tx.commit().await?;
        Ok(removed)
    }

    pub async fn list_enabled_webservices(
        &self,
        scope: &Scope,
        page: &Page,
    ) -> Result<Vec<EnabledWebservice>> {
        let mut w = Where::new();
        w.scope("b.project", scope);
        let rows = fetch_page(
            self.pool(),
            &Collection {
                select: SELECT_ENABLED,
                table: "enabled_webservices",
                alias: "e",
                kind: "EnabledWebservice",
                sort: SORT_ENABLED,
                marker_by_id: true,
            },
            w,
            page,
        )
        .await?;
        rows.iter().map(decode_enabled).collect()
    }

    pub async fn enabled_webservice(&self, board_uuid: &str) -> Result<EnabledWebservice> {
        let vals = [Val::from(board_uuid)];
        let sql = format!("{SELECT_ENABLED} WHERE e.board_uuid = $1");
        match bind_all(sqlx::query(&sql), &vals)
            .fetch_optional(self.pool())
            .await?
        {
            Some(r) => decode_enabled(&r),
            None => Err(StoreError::not_found("EnabledWebservice", board_uuid)),
        }
    }
}
