//! Fleets: named groups of boards.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::{Fleet, FleetFields};
use s4t_model::Ident;

use crate::sql::{
    delete_by_uuid, fetch_page, find_one, json_obj, to_json_text, update_by_uuid, Collection, Kind,
    SortColumn, Val, Where,
};
use crate::{Page, Result, Scope, Store, StoreError};

const SELECT: &str =
    "SELECT f.id, f.uuid, f.name, f.project, f.description, f.extra, f.created_at, f.updated_at FROM fleets f";

const SORT: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "f.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "uuid",
        expr: "f.uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "name",
        expr: "f.name",
        kind: Kind::Text,
    },
    SortColumn {
        key: "project",
        expr: "f.project",
        kind: Kind::Text,
    },
    SortColumn {
        key: "description",
        expr: "f.description",
        kind: Kind::Text,
    },
    SortColumn {
        key: "created_at",
        expr: "f.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "f.updated_at",
        kind: Kind::Text,
    },
];

fn decode(row: &AnyRow) -> Result<Fleet> {
    Ok(Fleet {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        name: row.try_get("name")?,
        project: row.try_get("project")?,
        description: row.try_get("description")?,
        extra: json_obj(row, "extra")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates a fleet; names are unique within a project.
    pub async fn create_fleet(&self, f: &FleetFields, project: Option<&str>) -> Result<Fleet> {
        let name = f.name.clone().unwrap_or_default();
        let scope = Scope::Project(project.map(str::to_string));
        match self.fleet(&Ident::Name(name.clone()), &scope).await {
            Ok(_) => {
                return Err(StoreError::Conflict(format!(
                    "A fleet named {name} already exists in this project."
                )))
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let uuid = f.uuid.clone().unwrap_or_else(s4t_model::ident::new_uuid);
        sqlx::query(
            "INSERT INTO fleets (uuid, name, project, description, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid.as_str())
        .bind(name.as_str())
        .bind(project)
        .bind(f.description.as_deref())
        .bind(to_json_text(&f.extra.clone().unwrap_or_default()))
        .bind(s4t_model::time::now())
        .execute(&*self.writer())
        .await
        .map_err(|e| StoreError::conflict_or(e, || format!("A fleet with uuid {uuid} already exists.")))?;
        self.fleet(&Ident::Uuid(uuid), &Scope::All).await
    }

    pub async fn fleet(&self, ident: &Ident, scope: &Scope) -> Result<Fleet> {
        let mut w = Where::new();
        w.scope("f.project", scope);
        decode(&find_one(self.pool(), SELECT, "f", "Fleet", ident, w).await?)
    }

    pub async fn list_fleets(&self, scope: &Scope, page: &Page) -> Result<Vec<Fleet>> {
        let mut w = Where::new();
        w.scope("f.project", scope);
        let rows = fetch_page(
            self.pool(),
            &Collection {
                select: SELECT,
                table: "fleets",
                alias: "f",
                kind: "Fleet",
                sort: SORT,
                marker_by_id: false,
            },
            w,
            page,
        )
        .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn update_fleet(&self, uuid: &str, f: &FleetFields) -> Result<Fleet> {
        let mut sets: Vec<(&'static str, Val)> = Vec::new();
        if let Some(n) = &f.name {
            sets.push(("name", n.clone().into()));
        }
        if let Some(d) = &f.description {
            sets.push(("description", d.clone().into()));
        }
        if let Some(e) = &f.extra {
            sets.push(("extra", to_json_text(e).into()));
        }
        update_by_uuid(&self.writer(), "fleets", "Fleet", uuid, sets, || {
            "fleet update conflicts".into()
        })
        .await?;
        self.fleet(&Ident::Uuid(uuid.to_string()), &Scope::All)
            .await
    }

    /// Deletes an empty fleet; a fleet with boards is a conflict.
    pub async fn delete_fleet(&self, uuid: &str) -> Result<()> {
        let n = self.count_fleet_boards(uuid).await?;
        if n > 0 {
            return Err(StoreError::Conflict(format!(
                "Fleet {uuid} still has {n} board(s): move them out (PATCH the board with \"fleet\": null) first."
            )));
        }
        delete_by_uuid(&self.writer(), "fleets", "Fleet", uuid)
            .await
            .map_err(|e| match e {
                StoreError::Database(db) => {
                    StoreError::conflict_or(db, || format!("Fleet {uuid} gained boards meanwhile."))
                }
                other => other,
            })
    }
}
