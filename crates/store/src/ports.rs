//! Ports: network interfaces of boards.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::Port;

use crate::sql::{bind_all, delete_by_uuid, fetch_page, Collection, Kind, SortColumn, Where};
use crate::{Page, Result, Scope, Store, StoreError};

const SELECT: &str =
    "SELECT o.id, o.uuid, o.board_uuid, o.vif_name, o.mac_add, o.ip, o.network, o.created_at, \
    o.updated_at FROM ports_on_boards o JOIN boards b ON b.uuid = o.board_uuid";

const SORT: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "o.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "uuid",
        expr: "o.uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "board_uuid",
        expr: "o.board_uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "VIF_name",
        expr: "o.vif_name",
        kind: Kind::Text,
    },
    SortColumn {
        key: "MAC_add",
        expr: "o.mac_add",
        kind: Kind::Text,
    },
    SortColumn {
        key: "ip",
        expr: "o.ip",
        kind: Kind::Text,
    },
    SortColumn {
        key: "network",
        expr: "o.network",
        kind: Kind::Text,
    },
    SortColumn {
        key: "created_at",
        expr: "o.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "o.updated_at",
        kind: Kind::Text,
    },
];

fn decode(row: &AnyRow) -> Result<Port> {
    Ok(Port {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        board_uuid: row.try_get("board_uuid")?,
        vif_name: row.try_get("vif_name")?,
        mac_add: row.try_get("mac_add")?,
        ip: row.try_get("ip")?,
        network: row.try_get("network")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Ports of boards in `scope`; with `board_uuid`, only that board's (the upstream filter bug
    /// returned every port).
    pub async fn list_ports(
        &self,
        scope: &Scope,
        board_uuid: Option<&str>,
        page: &Page,
    ) -> Result<Vec<Port>> {
        let mut w = Where::new();
        w.scope("b.project", scope);
        if let Some(b) = board_uuid {
            w.eq("o.board_uuid", b);
        }
        let rows = fetch_page(
            self.pool(),
            &Collection {
                select: SELECT,
                table: "ports_on_boards",
                alias: "o",
                kind: "Port",
                sort: SORT,
                marker_by_id: false,
            },
            w,
            page,
        )
        .await?;
        rows.iter().map(decode).collect()
    }

    /// One port; with `board_uuid`, it must belong to that board.
    pub async fn port(&self, uuid: &str, scope: &Scope, board_uuid: Option<&str>) -> Result<Port> {
        let mut w = Where::new();
        w.eq("o.uuid", uuid);
        w.scope("b.project", scope);
        if let Some(b) = board_uuid {
            w.eq("o.board_uuid", b);
        }
        let sql = format!("{SELECT}{}", w.sql());
        match bind_all(sqlx::query(&sql), &w.vals)
            .fetch_optional(self.pool())
            .await?
        {
            Some(r) => decode(&r),
            None => Err(StoreError::not_found("Port", uuid)),
        }
    }

    pub async fn delete_port(&self, uuid: &str) -> Result<()> {
        delete_by_uuid(&self.writer(), "ports_on_boards", "Port", uuid).await
    }
}
