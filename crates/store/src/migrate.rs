//! The schema, written once for SQLite and PostgreSQL.
//!
//! A migration is plain SQL in the common subset of both engines; the dialect differences,
//! the auto-increment key and booleans, are the `{id}` and `{bool}` tokens. Triggers cannot be
//! written in a common subset: such a migration has one text per engine, its statements
//! separated by `-- ;;` lines. Applied versions are recorded in
//! `s4t_migrations`, each migration in its own transaction.

use sqlx::Row;

use crate::{Dialect, Result, Store, StoreError};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    /// On SQLite, and on PostgreSQL unless `postgres` is given.
    pub sql: &'static str,
    /// On PostgreSQL, when it differs.
    pub postgres: Option<&'static str>,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "iotronic resources",
        sql: include_str!("../migrations/0001_iotronic.sql"),
        postgres: None,
    },
    Migration {
        version: 2,
        name: "board secrets",
        sql: include_str!("../migrations/0002_board_secrets.sql"),
        postgres: None,
    },
    Migration {
        version: 3,
        name: "deferred operations",
        sql: include_str!("../migrations/0003_deferred_operations.sql"),
        postgres: None,
    },
    Migration {
        version: 4,
        name: "public ports",
        sql: include_str!("../migrations/0004_public_ports.sql"),
        postgres: None,
    },
    Migration {
        version: 5,
        name: "workloads",
        sql: include_str!("../migrations/0005_workloads.sql"),
        postgres: None,
    },
    Migration {
        version: 6,
        name: "networks",
        sql: include_str!("../migrations/0006_networks.sql"),
        postgres: None,
    },
    Migration {
        version: 7,
        name: "overlay keys",
        sql: include_str!("../migrations/0007_overlay_keys.sql"),
        postgres: None,
    },
    Migration {
        version: 8,
        name: "change versions",
        sql: include_str!("../migrations/0008_change_versions.sqlite.sql"),
        postgres: Some(include_str!(
            "../migrations/0008_change_versions.postgres.sql"
        )),
    },
];

const STATEMENT_BREAK: &str = "-- ;;";

fn render(sql: &str, dialect: Dialect) -> String {
    let id = match dialect {
        Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    let boolean = match dialect {
        Dialect::Sqlite => "INTEGER",
        Dialect::Postgres => "BOOLEAN",
    };
    sql.replace("{id}", id).replace("{bool}", boolean)
}

/// Splits a migration into statements: on `-- ;;` lines where it has them; otherwise `--`
/// comment lines dropped, then split on `;`.
fn statements(sql: &str) -> Vec<String> {
    if sql.lines().any(|l| l.trim() == STATEMENT_BREAK) {
        return sql
            .split(&format!("\n{STATEMENT_BREAK}\n"))
            .map(|s| {
                s.lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .filter(|s| !s.trim().is_empty())
            .collect();
    }
    let code: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn run(store: &Store) -> Result<()> {
    let pool = &*store.writer();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS s4t_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM s4t_migrations")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    if let Some(newest) = applied.iter().max() {
        let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
        if *newest > known {
            return Err(StoreError::Migration(format!(
                "the database is at schema version {newest}, newer than this s4t ({known}): upgrade s4t"
            )));
        }
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let mut tx = pool.begin().await?;
        let sql = match (store.dialect(), m.postgres) {
            (Dialect::Postgres, Some(pg)) => pg,
            _ => m.sql,
        };
        for statement in statements(&render(sql, store.dialect())) {
            sqlx::query(&statement)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration(format!("{} ({}): {e}", m.version, m.name)))?;
        }
        sqlx::query("INSERT INTO s4t_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(s4t_model::time::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied database migration"
        );
    }
    Ok(())
}
