//! Boards, their locations and their WAMP sessions.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::{Board, JsonObject, Location, NewBoard};
use s4t_model::{BoardStatus, Ident};

use crate::json_sql::JsonSql;
use crate::sql::{
    bind_all, boolean, fetch_page, fetch_page_json, json_obj, to_json_text, Collection, JsonPage,
    Kind, SortColumn, Val, Where,
};
use crate::{Page, Result, Scope, Store, StoreError};

const SELECT: &str = "SELECT b.id, b.uuid, b.code, b.status, b.name, b.type, b.agent, b.owner, b.project, \
    b.fleet, b.mobile, b.lr_version, b.connectivity, b.config, b.extra, b.created_at, b.updated_at, \
    s.session_id, l.longitude, l.latitude, l.altitude, l.updated_at AS location_updated_at \
    FROM boards b \
    LEFT JOIN sessions s ON s.board_uuid = b.uuid AND s.valid = TRUE \
    LEFT JOIN locations l ON l.board_id = b.id";

/// `SELECT` without its column list, for statements that render JSON themselves.
const FROM: &str = "FROM boards b \
    LEFT JOIN sessions s ON s.board_uuid = b.uuid AND s.valid = TRUE \
    LEFT JOIN locations l ON l.board_id = b.id";

/// What a board's representation needs besides its row.
#[derive(Debug, Clone)]
pub struct BoardRendering<'a> {
    /// The fields to write (unknown names are ignored), in the order of
    /// `s4t_model::listing::specs::BOARDS.fields`, which is the order the API writes them.
    pub fields: &'a [&'a str],
    /// The API's base URL, for `links`.
    pub base_url: &'a str,
    /// Where unregistered boards are told to register (the synthetic `config`).
    pub registration_url: &'a str,
    /// `wstun_ip`, written only for boards that have an agent.
    pub wstun_host: Option<&'a str>,
}

const SORT: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "b.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "uuid",
        expr: "b.uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "code",
        expr: "b.code",
        kind: Kind::Text,
    },
    SortColumn {
        key: "status",
        expr: "b.status",
        kind: Kind::Text,
    },
    SortColumn {
        key: "name",
        expr: "b.name",
        kind: Kind::Text,
    },
    SortColumn {
        key: "type",
        expr: "b.type",
        kind: Kind::Text,
    },
    SortColumn {
        key: "agent",
        expr: "b.agent",
        kind: Kind::Text,
    },
    SortColumn {
        key: "owner",
        expr: "b.owner",
        kind: Kind::Text,
    },
    SortColumn {
        key: "project",
        expr: "b.project",
        kind: Kind::Text,
    },
    SortColumn {
        key: "fleet",
        expr: "b.fleet",
        kind: Kind::Text,
    },
    SortColumn {
        key: "mobile",
        expr: "b.mobile",
        kind: Kind::Bool,
    },
    SortColumn {
        key: "lr_version",
        expr: "b.lr_version",
        kind: Kind::Text,
    },
    SortColumn {
        key: "created_at",
        expr: "b.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "b.updated_at",
        kind: Kind::Text,
    },
];

const BOARDS: Collection = Collection {
    select: SELECT,
    table: "boards",
    alias: "b",
    kind: "Board",
    sort: SORT,
    marker_by_id: false,
};

/// Which boards a list returns.
#[derive(Debug, Clone)]
pub struct BoardFilter {
    pub scope: Scope,
    pub status: Option<BoardStatus>,
    pub fleet: Option<String>,
}

/// The columns of a board an update may change. `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct BoardUpdate {
    pub code: Option<String>,
    pub name: Option<String>,
    pub board_type: Option<Option<String>>,
    pub fleet: Option<Option<String>>,
    pub mobile: Option<bool>,
    pub extra: Option<JsonObject>,
    pub connectivity: Option<JsonObject>,
    pub location: Option<Location>,
}

/// Everything a new board row needs beyond the client's body.
#[derive(Debug, Clone)]
pub struct BoardOwnership {
    pub owner: Option<String>,
    pub project: Option<String>,
    /// The fleet uuid, already resolved.
    pub fleet: Option<String>,
}

fn decode(row: &AnyRow) -> Result<Board> {
    let status: String = row.try_get("status")?;
    let status = BoardStatus::parse(&status).map_err(|e| StoreError::Corrupt {
        what: "board status",
        detail: e.to_string(),
    })?;
    let longitude: Option<String> = row.try_get("longitude")?;
    let location = match longitude {
        Some(longitude) => vec![Location {
            longitude,
            latitude: row
                .try_get::<Option<String>, _>("latitude")?
                .unwrap_or_default(),
            altitude: row
                .try_get::<Option<String>, _>("altitude")?
                .unwrap_or_default(),
            updated_at: row.try_get("location_updated_at")?,
        }],
        None => Vec::new(),
    };
    Ok(Board {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        code: row.try_get("code")?,
        status,
        name: row.try_get("name")?,
        board_type: row.try_get("type")?,
        agent: row.try_get("agent")?,
        owner: row.try_get("owner")?,
        project: row.try_get("project")?,
        fleet: row.try_get("fleet")?,
        mobile: boolean(row, "mobile")?.unwrap_or(false),
        lr_version: row.try_get("lr_version")?,
        connectivity: json_obj(row, "connectivity")?,
        config: json_obj(row, "config")?,
        extra: json_obj(row, "extra")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        session: row.try_get("session_id")?,
        location,
    })
}

impl Store {
    /// Inserts a board and its location in one transaction.
    pub async fn create_board(&self, new: &NewBoard, own: &BoardOwnership) -> Result<Board> {
        let uuid = new.uuid.clone().unwrap_or_else(s4t_model::ident::new_uuid);
        let now = s4t_model::time::now();
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query(
            "SELECT name, code, uuid FROM boards WHERE name = $1 OR code = $2 OR uuid = $3",
        )
        .bind(new.name.as_str())
        .bind(new.code.as_str())
        .bind(uuid.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = taken {
            let (name, code): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            return Err(StoreError::Conflict(if name == new.name {
                format!(
                    "A board with name {} is already associated to another board.",
                    new.name
                )
            } else if code == new.code {
                format!("A board with code {} already exists.", new.code)
            } else {
                format!("A board with uuid {uuid} already exists.")
            }));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO boards (uuid, code, status, name, type, owner, project, fleet, mobile, connectivity, config, extra, created_at) \
             VALUES ($1, $2, 'registered', $3, $4, $5, $6, $7, $8, $9, '{}', $10, $11) RETURNING id",
        )
        .bind(uuid.as_str())
        .bind(new.code.as_str())
        .bind(new.name.as_str())
        .bind(new.board_type.as_deref())
        .bind(own.owner.as_deref())
        .bind(own.project.as_deref())
        .bind(own.fleet.as_deref())
        .bind(new.mobile)
        .bind(to_json_text(&new.connectivity))
        .bind(to_json_text(&new.extra))
        .bind(now.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, || format!("A board with code {} or name {} already exists.", new.code, new.name)))?
        .try_get(0)?;
        sqlx::query("INSERT INTO locations (board_id, longitude, latitude, altitude, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(new.location.longitude.as_str())
            .bind(new.location.latitude.as_str())
            .bind(new.location.altitude.as_str())
            .bind(now.as_str())
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        self.board(&Ident::Uuid(uuid), &Scope::All).await
    }

    /// One board by uuid or name, within `scope`.
    pub async fn board(&self, ident: &Ident, scope: &Scope) -> Result<Board> {
        let mut w = Where::new();
        match ident {
            Ident::Uuid(u) => w.eq("b.uuid", u.as_str()),
            Ident::Name(n) => w.eq("b.name", n.as_str()),
        };
        w.scope("b.project", scope);
        let sql = format!("{SELECT}{}", w.sql());
        let row = bind_all(sqlx::query(&sql), &w.vals)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => decode(&r),
            None => Err(StoreError::not_found("Board", ident.as_str())),
        }
    }

    /// The board registered with `code` (one query).
    pub async fn board_by_code(&self, code: &str) -> Result<Board> {
        let sql = format!("{SELECT} WHERE b.code = $1");
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => decode(&r),
            None => Err(StoreError::not_found("Board", code)),
        }
    }

    /// One page of boards, in one query (plus one for the marker).
    pub async fn list_boards(&self, filter: &BoardFilter, page: &Page) -> Result<Vec<Board>> {
        let mut w = Where::new();
        w.scope("b.project", &filter.scope);
        if let Some(s) = filter.status {
            w.eq("b.status", s.as_str());
        }
        if let Some(f) = &filter.fleet {
            w.eq("b.fleet", f.as_str());
        }
        let rows = fetch_page(self.pool(), &BOARDS, w, page).await?;
        rows.iter().map(decode).collect()
    }

    /// One page of boards rendered as JSON by the database, in a single statement (plus one for
    /// a marker). Matches what the API renders for one board, field for field.
    pub async fn list_boards_json(
        &self,
        filter: &BoardFilter,
        page: &Page,
        r: &BoardRendering<'_>,
    ) -> Result<JsonPage> {
        let mut w = Where::new();
        let j = JsonSql(self.dialect());
        let base = j.text_param(&w.arg(r.base_url));
        let reg_url = j.text_param(&w.arg(r.registration_url));
        let wstun = j.text_param(&w.arg(r.wstun_host.map(str::to_string)));
        let expr = |field: &str| -> Option<String> {
            Some(match field {
                "uuid" | "code" | "status" | "name" | "type" | "agent" | "owner" | "project"
                | "fleet" | "lr_version" | "created_at" | "updated_at" => format!("b.{field}"),
                "wstun_ip" => wstun.clone(),
                "session" => "s.session_id".into(),
                "mobile" => j.boolean("b.mobile"),
                "connectivity" | "extra" => j.stored(&format!("b.{field}")),
                "links" => j.array(&[
                    j.object(&[
                        ("href", format!("{base} || '/v1/boards/' || b.uuid")),
                        ("rel", "'self'".into()),
                    ]),
                    j.object(&[
                        ("href", format!("{base} || '/boards/' || b.uuid")),
                        ("rel", "'bookmark'".into()),
                    ]),
                ]),
                "location" => j.choose(
                    "l.id IS NULL",
                    &j.empty_array(),
                    &j.array(&[j.object(&[
                        ("longitude", "l.longitude".into()),
                        ("latitude", "l.latitude".into()),
                        ("altitude", "l.altitude".into()),
                        ("updated_at", "l.updated_at".into()),
                    ])]),
                ),
                "config" => j.choose(
                    "b.config = '{}'",
                    &j.object(&[(
                        "iotronic",
                        j.object(&[
                            ("board", j.object(&[("code", "b.code".into())])),
                            (
                                "wamp",
                                j.object(&[(
                                    "registration-agent",
                                    j.object(&[
                                        ("url", reg_url.clone()),
                                        ("realm", "'s4t'".into()),
                                    ]),
                                )]),
                            ),
                        ]),
                    )]),
                    &j.stored("b.config"),
                ),
                _ => return None,
            })
        };
        let object = |with_wstun: bool| {
            let pairs: Vec<(&str, String)> = s4t_model::listing::specs::BOARDS
                .fields
                .iter()
                .filter(|f| r.fields.contains(f) && (with_wstun || **f != "wstun_ip"))
                .filter_map(|f| expr(f).map(|e| (*f, e)))
                .collect();
            j.object(&pairs)
        };
        // `wstun_ip` exists only for boards with an agent: two shapes, picked per row.
        let item = if r.fields.contains(&"wstun_ip") {
            // Text at the top level: no JSON subtype to keep, so no re-parse of the whole item.
            j.as_text(&format!(
                "(CASE WHEN b.agent IS NULL THEN {} ELSE {} END)",
                object(false),
                object(true)
            ))
        } else {
            j.as_text(&object(false))
        };
        w.scope("b.project", &filter.scope);
        if let Some(s) = filter.status {
            w.eq("b.status", s.as_str());
        }
        if let Some(f) = &filter.fleet {
            w.eq("b.fleet", f.as_str());
        }
        fetch_page_json(self.pool(), self.dialect(), &BOARDS, FROM, &item, w, page).await
    }

    /// Applies `update` to the board and returns it as stored.
    pub async fn update_board(&self, uuid: &str, update: &BoardUpdate) -> Result<Board> {
        let mut sets: Vec<String> = Vec::new();
        let mut w = Where::new();
        let mut set = |w: &mut Where, col: &str, v: Val| {
            let p = w.arg(v);
            sets.push(format!("{col} = {p}"));
        };
        if let Some(code) = &update.code {
            set(&mut w, "code", code.clone().into());
        }
        if let Some(name) = &update.name {
            set(&mut w, "name", name.clone().into());
        }
        if let Some(t) = &update.board_type {
            set(&mut w, "type", t.clone().into());
        }
        if let Some(f) = &update.fleet {
            set(&mut w, "fleet", f.clone().into());
        }
        if let Some(m) = update.mobile {
            set(&mut w, "mobile", m.into());
        }
        if let Some(e) = &update.extra {
            set(&mut w, "extra", to_json_text(e).into());
        }
        if let Some(c) = &update.connectivity {
            set(&mut w, "connectivity", to_json_text(c).into());
        }
        let now = s4t_model::time::now();
        set(&mut w, "updated_at", now.clone().into());
        let p = w.arg(uuid);
        let sql = format!("UPDATE boards SET {} WHERE uuid = {p}", sets.join(", "));
        let mut tx = self.begin_write().await?;
        let done = bind_all(sqlx::query(&sql), &w.vals)
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                StoreError::conflict_or(e, || match (&update.name, &update.code) {
                    (Some(n), _) if !n.is_empty() => format!("A board with name {n} or this code is already associated to another board."),
                    _ => "The new code is already used by another board.".to_string(),
                })
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Board", uuid));
        }
        if let Some(loc) = &update.location {
            sqlx::query(
                "UPDATE locations SET longitude = $1, latitude = $2, altitude = $3, updated_at = $4 \
                 WHERE board_id = (SELECT id FROM boards WHERE uuid = $5)",
            )
            .bind(loc.longitude.as_str())
            .bind(loc.latitude.as_str())
            .bind(loc.altitude.as_str())
            .bind(now.as_str())
            .bind(uuid)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        self.board(&Ident::Uuid(uuid.to_string()), &Scope::All)
            .await
    }

    /// Deletes a board; its location, sessions, injections, exposed services, ports and
    /// webservices go with it.
    pub async fn delete_board(&self, uuid: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM boards WHERE uuid = $1")
            .bind(uuid)
            .execute(&*self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Board", uuid));
        }
        Ok(())
    }

    /// Counts the boards of a fleet (a fleet in use cannot be deleted).
    pub async fn count_fleet_boards(&self, fleet_uuid: &str) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM boards WHERE fleet = $1")
            .bind(fleet_uuid)
            .fetch_one(self.pool())
            .await?
            .try_get(0)?)
    }
}
