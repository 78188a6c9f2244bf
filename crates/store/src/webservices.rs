//! Webservices (board HTTP ports published under a host name) and the boards enabled for them.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::{EnabledWebservice, Webservice};

use crate::sql::{
    bind_all, boolean, delete_by_uuid, fetch_page, json_obj, Collection, Kind, SortColumn, Val,
    Where,
};
use crate::{Page, Result, Scope, Store, StoreError};

const SELECT: &str = "SELECT w.id, w.uuid, w.name, w.port, w.board_uuid, w.secure, w.extra, w.created_at, w.updated_at \
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

    pub async fn delete_webservice(&self, uuid: &str) -> Result<()> {
        delete_by_uuid(self.writer(), "webservices", "Webservice", uuid).await
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
