//! The service catalogue and the services exposed on boards.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::{ExposedService, Service, ServiceFields};
use s4t_model::Ident;

use crate::sql::{
    delete_by_uuid, fetch_page, find_one, json_obj, to_json_text, update_by_uuid, Collection, Kind,
    SortColumn, Val, Where,
};
use crate::{Page, Result, Scope, Store, StoreError};

const SELECT: &str =
    "SELECT s.id, s.uuid, s.name, s.project, s.port, s.protocol, s.extra, s.created_at, s.updated_at FROM services s";

const SORT: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "s.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "uuid",
        expr: "s.uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "name",
        expr: "s.name",
        kind: Kind::Text,
    },
    SortColumn {
        key: "project",
        expr: "s.project",
        kind: Kind::Text,
    },
    SortColumn {
        key: "port",
        expr: "s.port",
        kind: Kind::Int,
    },
    SortColumn {
        key: "protocol",
        expr: "s.protocol",
        kind: Kind::Text,
    },
    SortColumn {
        key: "created_at",
        expr: "s.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "s.updated_at",
        kind: Kind::Text,
    },
];

fn decode(row: &AnyRow) -> Result<Service> {
    Ok(Service {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        name: row.try_get("name")?,
        project: row.try_get("project")?,
        port: row.try_get("port")?,
        protocol: row.try_get("protocol")?,
        extra: json_obj(row, "extra")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_service(
        &self,
        f: &ServiceFields,
        project: Option<&str>,
    ) -> Result<Service> {
        let uuid = f.uuid.clone().unwrap_or_else(s4t_model::ident::new_uuid);
        sqlx::query(
            "INSERT INTO services (uuid, name, project, port, protocol, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid.as_str())
        .bind(f.name.as_deref().unwrap_or_default())
        .bind(project)
        .bind(f.port.unwrap_or_default())
        .bind(f.protocol.as_deref().unwrap_or("TCP"))
        .bind(to_json_text(&f.extra.clone().unwrap_or_default()))
        .bind(s4t_model::time::now())
        .execute(self.writer())
        .await
        .map_err(|e| StoreError::conflict_or(e, || format!("A service with uuid {uuid} already exists.")))?;
        self.service(&Ident::Uuid(uuid), &Scope::All).await
    }

    pub async fn service(&self, ident: &Ident, scope: &Scope) -> Result<Service> {
        let mut w = Where::new();
        w.scope("s.project", scope);
        decode(&find_one(self.pool(), SELECT, "s", "Service", ident, w).await?)
    }

    pub async fn list_services(&self, scope: &Scope, page: &Page) -> Result<Vec<Service>> {
        let mut w = Where::new();
        w.scope("s.project", scope);
        let rows = fetch_page(
            self.pool(),
            &Collection {
                select: SELECT,
                table: "services",
                alias: "s",
                kind: "Service",
                sort: SORT,
                marker_by_id: false,
            },
            w,
            page,
        )
        .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn update_service(&self, uuid: &str, f: &ServiceFields) -> Result<Service> {
        let mut sets: Vec<(&'static str, Val)> = Vec::new();
        if let Some(n) = &f.name {
            sets.push(("name", n.clone().into()));
        }
        if let Some(p) = f.port {
            sets.push(("port", p.into()));
        }
        if let Some(p) = &f.protocol {
            sets.push(("protocol", p.clone().into()));
        }
        if let Some(e) = &f.extra {
            sets.push(("extra", to_json_text(e).into()));
        }
        update_by_uuid(self.writer(), "services", "Service", uuid, sets, || {
            "service update conflicts".into()
        })
        .await?;
        self.service(&Ident::Uuid(uuid.to_string()), &Scope::All)
            .await
    }

    /// Deletes a service no board exposes; otherwise a conflict naming the boards.
    pub async fn delete_service(&self, uuid: &str) -> Result<()> {
        let rows = sqlx::query(
            "SELECT board_uuid FROM exposed_services WHERE service_uuid = $1 ORDER BY id",
        )
        .bind(uuid)
        .fetch_all(self.pool())
        .await?;
        if !rows.is_empty() {
            let boards: Vec<String> = rows
                .iter()
                .take(5)
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            return Err(StoreError::Conflict(format!(
                "Service {uuid} is still exposed on {} board(s) ({}): disable it there first.",
                rows.len(),
                boards.join(", ")
            )));
        }
        delete_by_uuid(self.writer(), "services", "Service", uuid)
            .await
            .map_err(|e| match e {
                StoreError::Database(db) => StoreError::conflict_or(db, || {
                    format!("Service {uuid} was exposed meanwhile: disable it first.")
                }),
                other => other,
            })
    }

    pub async fn exposed_services(&self, board_uuid: &str) -> Result<Vec<ExposedService>> {
        let rows = sqlx::query(
            "SELECT board_uuid, service_uuid, public_port, created_at, updated_at FROM exposed_services \
             WHERE board_uuid = $1 ORDER BY id",
        )
        .bind(board_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ExposedService {
                    board_uuid: row.try_get("board_uuid")?,
                    service_uuid: row.try_get("service_uuid")?,
                    public_port: row.try_get("public_port")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }
}
