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
        .execute(&*self.writer())
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
        update_by_uuid(&self.writer(), "services", "Service", uuid, sets, || {
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
        delete_by_uuid(&self.writer(), "services", "Service", uuid)
            .await
            .map_err(|e| match e {
                StoreError::Database(db) => StoreError::conflict_or(db, || {
                    format!("Service {uuid} was exposed meanwhile: disable it first.")
                }),
                other => other,
            })
    }

    pub async fn exposed_services(&self, board_uuid: &str) -> Result<Vec<ExposedService>> {
        let rows = sqlx::query(&format!("{EXPOSED} WHERE board_uuid = $1 ORDER BY id"))
            .bind(board_uuid)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(decode_exposed).collect()
    }
}

/// Why a public port could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    #[error("Service {service} is already exposed on board {board} (public port {port}).")]
    AlreadyExposed {
        board: String,
        service: String,
        port: i64,
    },
    #[error("No free public port for service {service}: every port of {first}-{last} is taken. Disable a service or widen the range (s4t cloud --public-ports).")]
    Full {
        service: String,
        first: u16,
        last: u16,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn decode_exposed(row: &AnyRow) -> Result<ExposedService> {
    Ok(ExposedService {
        board_uuid: row.try_get("board_uuid")?,
        service_uuid: row.try_get("service_uuid")?,
        public_port: row.try_get("public_port")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const EXPOSED: &str =
    "SELECT board_uuid, service_uuid, public_port, created_at, updated_at FROM exposed_services";

impl Store {
    /// The service exposed on a public port, if any: what the tunnel server admits.
    pub async fn exposed_at_port(&self, port: u16) -> Result<Option<ExposedService>> {
        let row = sqlx::query(&format!("{EXPOSED} WHERE public_port = $1"))
            .bind(port as i64)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(decode_exposed).transpose()
    }

    /// The exposure of one service on one board, if any.
    pub async fn exposed_service(
        &self,
        board_uuid: &str,
        service_uuid: &str,
    ) -> Result<Option<ExposedService>> {
        let row = sqlx::query(&format!(
            "{EXPOSED} WHERE board_uuid = $1 AND service_uuid = $2"
        ))
        .bind(board_uuid)
        .bind(service_uuid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode_exposed).transpose()
    }

    /// Takes a free public port of `range` for the service on the board and records the
    /// exposure. Safe between replicas on one database: every port handed out is a row of
    /// `public_ports` (port as key) written in the same transaction, and a lost race is retried
    /// with another port. `draw` gives random numbers (to spread the ports).
    pub async fn reserve_public_port(
        &self,
        board_uuid: &str,
        service_uuid: &str,
        range: &std::ops::RangeInclusive<u16>,
        mut draw: impl FnMut() -> u64,
    ) -> std::result::Result<ExposedService, ReserveError> {
        for _ in 0..16 {
            let mut tx = self.begin_write().await?;
            let existing = sqlx::query(&format!(
                "{EXPOSED} WHERE board_uuid = $1 AND service_uuid = $2"
            ))
            .bind(board_uuid)
            .bind(service_uuid)
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::from)?;
            if let Some(e) = existing.as_ref().map(decode_exposed).transpose()? {
                return Err(ReserveError::AlreadyExposed {
                    board: board_uuid.into(),
                    service: service_uuid.into(),
                    port: e.public_port,
                });
            }
            let Some(port) = pick_port(&mut tx, range, draw()).await? else {
                return Err(ReserveError::Full {
                    service: service_uuid.into(),
                    first: *range.start(),
                    last: *range.end(),
                });
            };
            let now = s4t_model::time::now();
            let claimed = claim_port(
                &mut tx,
                port,
                board_uuid,
                PURPOSE_SERVICE,
                service_uuid,
                &now,
            )
            .await;
            let inserted = match claimed {
                Ok(()) => sqlx::query(
                    "INSERT INTO exposed_services (board_uuid, service_uuid, public_port, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(board_uuid)
                .bind(service_uuid)
                .bind(port as i64)
                .bind(&now)
                .execute(&mut **tx)
                .await
                .map(|_| ()),
                Err(e) => Err(e),
            };
            match inserted {
                Ok(()) => {
                    tx.commit().await?;
                    return self
                        .exposed_service(board_uuid, service_uuid)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Conflict(format!(
                                "the exposure of service {service_uuid} on board {board_uuid} vanished as it was made"
                            ))
                            .into()
                        });
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    retry_or_fail(e, board_uuid, service_uuid)?;
                }
            }
        }
        Err(StoreError::Conflict(format!(
            "could not reserve a public port for service {service_uuid}: too many concurrent reservations, try again"
        ))
        .into())
    }

    /// Ends an exposure; returns the port it held (now free), if it existed.
    pub async fn release_public_port(
        &self,
        board_uuid: &str,
        service_uuid: &str,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "{EXPOSED} WHERE board_uuid = $1 AND service_uuid = $2"
        ))
        .bind(board_uuid)
        .bind(service_uuid)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(e) = row.as_ref().map(decode_exposed).transpose()? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM exposed_services WHERE board_uuid = $1 AND service_uuid = $2")
            .bind(board_uuid)
            .bind(service_uuid)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM public_ports WHERE port = $1")
            .bind(e.public_port)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(Some(e.public_port))
    }

    /// The catalogue services a workload made for its exposed ports (`extra.workload`).
    pub async fn workload_services(&self, workload_uuid: &str) -> Result<Vec<Service>> {
        let rows = sqlx::query(&format!("{SELECT} WHERE s.name LIKE 'wl-%' ORDER BY s.id"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|s| s.extra.get("workload").and_then(|v| v.as_str()) == Some(workload_uuid))
            .collect())
    }

    /// Every exposure of a service, on any board.
    pub async fn exposures_of_service(&self, service_uuid: &str) -> Result<Vec<ExposedService>> {
        let rows = sqlx::query(&format!("{EXPOSED} WHERE service_uuid = $1 ORDER BY id"))
            .bind(service_uuid)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(decode_exposed).collect()
    }

    /// Who holds a public port: what the tunnel server admits a control socket for.
    pub async fn port_holder(&self, port: u16) -> Result<Option<PortHolder>> {
        let row = sqlx::query(
            "SELECT port, board_uuid, purpose, owner_uuid FROM public_ports WHERE port = $1",
        )
        .bind(port as i64)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let purpose: String = r.try_get("purpose")?;
            Ok(PortHolder {
                port,
                board_uuid: r.try_get("board_uuid")?,
                purpose: if purpose == PURPOSE_WEBSERVICE {
                    PortPurpose::Webservice
                } else {
                    PortPurpose::Service
                },
                owner_uuid: r.try_get("owner_uuid")?,
            })
        })
        .transpose()
    }

    /// Stamps `updated_at` of an exposure (a restore).
    pub async fn touch_exposed_service(&self, board_uuid: &str, service_uuid: &str) -> Result<()> {
        sqlx::query(
            "UPDATE exposed_services SET updated_at = $1 WHERE board_uuid = $2 AND service_uuid = $3",
        )
        .bind(s4t_model::time::now())
        .bind(board_uuid)
        .bind(service_uuid)
        .execute(&*self.writer())
        .await?;
        Ok(())
    }
}

pub(crate) const PURPOSE_SERVICE: &str = "service";
pub(crate) const PURPOSE_WEBSERVICE: &str = "webservice";

/// What a public port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPurpose {
    /// A service exposure: the port is open to users.
    Service,
    /// A webservice's tunnel: reached only by the cloud's HTTPS front (bound on loopback).
    Webservice,
}

/// The holder of a public port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    pub port: u16,
    pub board_uuid: String,
    pub purpose: PortPurpose,
    /// The service or webservice uuid.
    pub owner_uuid: String,
}

/// A free port of `range` (the `draw`-th free one, wrapping), as the transaction sees it.
pub(crate) async fn pick_port(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    range: &std::ops::RangeInclusive<u16>,
    draw: u64,
) -> Result<Option<u16>> {
    let used: Vec<i64> = sqlx::query("SELECT port FROM public_ports WHERE port BETWEEN $1 AND $2")
        .bind(*range.start() as i64)
        .bind(*range.end() as i64)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, sqlx::Error>>()?;
    Ok(s4t_model::public_ports::pick_free(range, &used, draw))
}

/// Records `port` as handed out; a unique violation means another request took it first.
pub(crate) async fn claim_port(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    port: u16,
    board_uuid: &str,
    purpose: &str,
    owner_uuid: &str,
    now: &str,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO public_ports (port, board_uuid, purpose, owner_uuid, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(port as i64)
    .bind(board_uuid)
    .bind(purpose)
    .bind(owner_uuid)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// After a failed insert: `Ok` to try again (a lost race), or the error to report.
pub(crate) fn retry_or_fail(
    e: sqlx::Error,
    board_uuid: &str,
    owner_uuid: &str,
) -> std::result::Result<(), ReserveError> {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => Ok(()),
        Some(db) if db.is_foreign_key_violation() => Err(StoreError::Conflict(format!(
            "board {board_uuid} or {owner_uuid} was deleted meanwhile"
        ))
        .into()),
        _ => Err(StoreError::Database(e).into()),
    }
}
