//! The plugin catalogue and the plugins injected into boards.

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::resources::{Injection, Plugin, PluginFields};
use s4t_model::Ident;

use crate::sql::{
    bind_all, boolean, delete_by_uuid, fetch_page, find_one, json_obj, to_json_text,
    update_by_uuid, Collection, Kind, SortColumn, Val, Where,
};
use crate::{Page, Result, Store, StoreError};

const SELECT: &str =
    "SELECT p.id, p.uuid, p.name, p.owner, p.public, p.code, p.digest, p.callable, p.parameters, \
    p.extra, p.created_at, p.updated_at FROM plugins p";

const SORT: &[SortColumn] = &[
    SortColumn {
        key: "id",
        expr: "p.id",
        kind: Kind::Int,
    },
    SortColumn {
        key: "uuid",
        expr: "p.uuid",
        kind: Kind::Text,
    },
    SortColumn {
        key: "name",
        expr: "p.name",
        kind: Kind::Text,
    },
    SortColumn {
        key: "owner",
        expr: "p.owner",
        kind: Kind::Text,
    },
    SortColumn {
        key: "public",
        expr: "p.public",
        kind: Kind::Bool,
    },
    SortColumn {
        key: "callable",
        expr: "p.callable",
        kind: Kind::Bool,
    },
    SortColumn {
        key: "created_at",
        expr: "p.created_at",
        kind: Kind::Text,
    },
    SortColumn {
        key: "updated_at",
        expr: "p.updated_at",
        kind: Kind::Text,
    },
];

/// Which plugins a caller sees: upstream scopes plugins by owner user, not by project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginVisibility {
    /// Every plugin (admins with `all_plugins`, internal callers).
    All,
    /// Plugins owned by this user (`None`: plugins without owner), plus public ones when asked.
    Owner {
        owner: Option<String>,
        with_public: bool,
    },
    /// Only public plugins.
    PublicOnly,
}

impl PluginVisibility {
    fn apply(&self, w: &mut Where) {
        match self {
            PluginVisibility::All => {}
            PluginVisibility::PublicOnly => {
                w.raw("p.public = TRUE".into());
            }
            PluginVisibility::Owner { owner, with_public } => {
                let own = match owner {
                    Some(o) => format!("p.owner = {}", w.arg(o.as_str())),
                    None => "p.owner IS NULL".into(),
                };
                w.raw(if *with_public {
                    format!("({own} OR p.public = TRUE)")
                } else {
                    own
                });
            }
        }
    }
}

fn decode(row: &AnyRow) -> Result<Plugin> {
    Ok(Plugin {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        name: row.try_get("name")?,
        owner: row.try_get("owner")?,
        public: boolean(row, "public")?.unwrap_or(false),
        code: row.try_get("code")?,
        digest: row.try_get("digest")?,
        callable: boolean(row, "callable")?,
        parameters: json_obj(row, "parameters")?,
        extra: json_obj(row, "extra")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn decode_injection(row: &AnyRow) -> Result<Injection> {
    Ok(Injection {
        board_uuid: row.try_get("board_uuid")?,
        plugin_uuid: row.try_get("plugin_uuid")?,
        onboot: boolean(row, "onboot")?.unwrap_or(false),
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Adds a plugin to the catalogue. `digest` is the sha256 of the code, computed by the caller.
    pub async fn create_plugin(
        &self,
        f: &PluginFields,
        owner: Option<&str>,
        digest: &str,
    ) -> Result<Plugin> {
        let uuid = f.uuid.clone().unwrap_or_else(s4t_model::ident::new_uuid);
        sqlx::query(
            "INSERT INTO plugins (uuid, name, owner, public, code, digest, callable, parameters, extra, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid.as_str())
        .bind(f.name.as_deref().unwrap_or_default())
        .bind(owner)
        .bind(f.public.unwrap_or(false))
        .bind(f.code.as_deref().unwrap_or_default())
        .bind(digest)
        .bind(f.callable.flatten())
        .bind(to_json_text(&f.parameters.clone().unwrap_or_default()))
        .bind(to_json_text(&f.extra.clone().unwrap_or_default()))
        .bind(s4t_model::time::now())
        .execute(&*self.writer())
        .await
        .map_err(|e| StoreError::conflict_or(e, || format!("A plugin with uuid {uuid} already exists.")))?;
        self.plugin(&Ident::Uuid(uuid), &PluginVisibility::All)
            .await
    }

    pub async fn plugin(&self, ident: &Ident, vis: &PluginVisibility) -> Result<Plugin> {
        let mut w = Where::new();
        vis.apply(&mut w);
        decode(&find_one(self.pool(), SELECT, "p", "Plugin", ident, w).await?)
    }

    pub async fn list_plugins(&self, vis: &PluginVisibility, page: &Page) -> Result<Vec<Plugin>> {
        let mut w = Where::new();
        vis.apply(&mut w);
        let rows = fetch_page(
            self.pool(),
            &Collection {
                select: SELECT,
                table: "plugins",
                alias: "p",
                kind: "Plugin",
                sort: SORT,
                marker_by_id: false,
            },
            w,
            page,
        )
        .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn update_plugin(
        &self,
        uuid: &str,
        f: &PluginFields,
        digest: Option<&str>,
    ) -> Result<Plugin> {
        let mut sets: Vec<(&'static str, Val)> = Vec::new();
        if let Some(n) = &f.name {
            sets.push(("name", n.clone().into()));
        }
        if let Some(c) = &f.code {
            sets.push(("code", c.clone().into()));
        }
        if let Some(d) = digest {
            sets.push(("digest", d.into()));
        }
        if let Some(p) = f.public {
            sets.push(("public", p.into()));
        }
        if let Some(c) = f.callable {
            sets.push(("callable", c.map(Val::Bool).unwrap_or(Val::Null)));
        }
        if let Some(p) = &f.parameters {
            sets.push(("parameters", to_json_text(p).into()));
        }
        if let Some(e) = &f.extra {
            sets.push(("extra", to_json_text(e).into()));
        }
        update_by_uuid(&self.writer(), "plugins", "Plugin", uuid, sets, || {
            "plugin update conflicts".into()
        })
        .await?;
        self.plugin(&Ident::Uuid(uuid.to_string()), &PluginVisibility::All)
            .await
    }

    /// Deletes a plugin that no board has injected; otherwise a conflict naming the boards.
    pub async fn delete_plugin(&self, uuid: &str) -> Result<()> {
        let boards = self.boards_with_plugin(uuid).await?;
        if !boards.is_empty() {
            return Err(StoreError::Conflict(format!(
                "Plugin {uuid} is still injected into {} board(s) ({}): remove it from them first.",
                boards.len(),
                boards
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        delete_by_uuid(&self.writer(), "plugins", "Plugin", uuid)
            .await
            .map_err(|e| match e {
                StoreError::Database(db) => StoreError::conflict_or(db, || format!("Plugin {uuid} was injected meanwhile: remove it from its boards first.")),
                other => other,
            })
    }

    async fn boards_with_plugin(&self, plugin_uuid: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT board_uuid FROM injection_plugins WHERE plugin_uuid = $1 ORDER BY id",
        )
        .bind(plugin_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub async fn injections(&self, board_uuid: &str) -> Result<Vec<Injection>> {
        let rows = sqlx::query(
            "SELECT board_uuid, plugin_uuid, onboot, status, created_at, updated_at FROM injection_plugins \
             WHERE board_uuid = $1 ORDER BY id",
        )
        .bind(board_uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode_injection).collect()
    }

    pub async fn injection(&self, board_uuid: &str, plugin_uuid: &str) -> Result<Injection> {
        let vals = [Val::from(board_uuid), Val::from(plugin_uuid)];
        let row = bind_all(
            sqlx::query(
                "SELECT board_uuid, plugin_uuid, onboot, status, created_at, updated_at FROM injection_plugins \
                 WHERE board_uuid = $1 AND plugin_uuid = $2",
            ),
            &vals,
        )
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => decode_injection(&r),
            None => Err(StoreError::not_found(
                "InjectionPlugin",
                format!("{plugin_uuid} on board {board_uuid}"),
            )),
        }
    }

    /// Records an injection: `injected` the first time, `updated` afterwards.
    pub async fn upsert_injection(
        &self,
        board_uuid: &str,
        plugin_uuid: &str,
        onboot: bool,
    ) -> Result<Injection> {
        let now = s4t_model::time::now();
        let updated = sqlx::query(
            "UPDATE injection_plugins SET status = 'updated', onboot = $1, updated_at = $2 \
             WHERE board_uuid = $3 AND plugin_uuid = $4",
        )
        .bind(onboot)
        .bind(now.as_str())
        .bind(board_uuid)
        .bind(plugin_uuid)
        .execute(&*self.writer())
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO injection_plugins (board_uuid, plugin_uuid, onboot, status, created_at) \
                 VALUES ($1, $2, $3, 'injected', $4)",
            )
            .bind(board_uuid)
            .bind(plugin_uuid)
            .bind(onboot)
            .bind(now.as_str())
            .execute(&*self.writer())
            .await
            .map_err(|e| StoreError::conflict_or(e, || format!("Plugin {plugin_uuid} or board {board_uuid} no longer exists.")))?;
        }
        self.injection(board_uuid, plugin_uuid).await
    }

    pub async fn delete_injection(&self, board_uuid: &str, plugin_uuid: &str) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM injection_plugins WHERE board_uuid = $1 AND plugin_uuid = $2")
                .bind(board_uuid)
                .bind(plugin_uuid)
                .execute(&*self.writer())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(
                "InjectionPlugin",
                format!("{plugin_uuid} on board {board_uuid}"),
            ));
        }
        Ok(())
    }
}
