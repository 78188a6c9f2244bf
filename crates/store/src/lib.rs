//! Persistence for s4t: one schema, one set of queries, on SQLite (embedded default) or PostgreSQL.
//!
//! - [`Store`]: the handle, opened from a URL; migrations run on open.
//! - [`migrate`]: the schema, written once for both dialects.
//! - [`sql`]: the small query builder (filters, keyset pagination) every collection uses.
//! - one module per resource family: [`boards`], [`plugins`], [`services`], [`fleets`],
//!   [`webservices`], [`ports`], [`requests`], [`tokens`].
//!
//! The database is the source of truth. Lists are served with a constant number of queries,
//! whatever their size.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod batch;
pub mod boards;
pub mod changes;
pub mod fleets;
pub mod json_sql;
pub mod links;
pub mod migrate;
pub mod networks;
pub mod plugins;
pub mod ports;
pub mod requests;
pub mod services;
pub mod sql;
pub mod testing;
pub mod tokens;
pub mod webservices;
pub mod workloads;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use changes::{WriteGuard, WriteTx};
pub use sql::{Page, Scope};

/// Which SQL engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// IoTronic's wording: "Board x could not be found."
    #[error("{kind} {id} could not be found.")]
    NotFound { kind: &'static str, id: String },
    /// A uniqueness or reference rule would be broken; the message says which and what to do.
    #[error("{0}")]
    Conflict(String),
    #[error("the database URL is not usable: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A row holds something the model refuses (hand-edited database).
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

impl StoreError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// Maps unique and foreign-key violations to a [`StoreError::Conflict`] with `message`.
    fn conflict_or(err: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
        if let Some(db) = err.as_database_error() {
            if db.is_unique_violation() || db.is_foreign_key_violation() || db.is_check_violation()
            {
                return StoreError::Conflict(message());
            }
        }
        StoreError::Database(err)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where writes go: on SQLite a single connection, on PostgreSQL the same pool.
    writer: AnyPool,
    dialect: Dialect,
    /// Counts writes, so that cached renderings know when to look again (`changes`).
    changes: std::sync::Arc<changes::Changes>,
}

impl Store {
    /// Opens (creating when needed) the database at `url` and brings its schema up to date.
    /// `sqlite://PATH` and `postgres://...` are understood.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(StoreError::BadUrl(format!(
                "{url:?}: use sqlite://PATH or postgres://USER@HOST/DB"
            )));
        };
        let mut options =
            AnyConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        options = sqlx::ConnectOptions::log_statements(options, tracing::log::LevelFilter::Trace);
        let (pool, writer) = match dialect {
            Dialect::Sqlite => {
                let pragmas = |opts: AnyPoolOptions| {
                    opts.after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; \
                                 PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                };
                // SQLite has one writer at a time. Writers share one connection, queued fairly
                // by the pool, instead of fighting for the lock through the busy handler's
                // sleeps; readers use WAL snapshots on their own connections.
                let writer = pragmas(AnyPoolOptions::new().max_connections(1))
                    .connect_with(options.clone())
                    .await?;
                let pool = pragmas(AnyPoolOptions::new().max_connections(8))
                    .connect_with(options)
                    .await?;
                (pool, writer)
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        let changes = changes::Changes::new(dialect == Dialect::Sqlite);
        let store = Store {
            pool,
            writer,
            dialect,
            changes: changes.clone(),
        };
        migrate::run(&store).await?;
        if dialect == Dialect::Postgres {
            changes::listen(url.to_string(), changes);
        }
        Ok(store)
    }

    /// The SQLite database `DIR/s4t.db`, created when missing.
    pub async fn open_sqlite_file(path: &Path) -> Result<Store> {
        Store::open(&sqlite_url(path)).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A transaction that writes. On SQLite it takes the write lock at `BEGIN` (IMMEDIATE), so
    /// a transaction that reads before it writes cannot fail when another write commits in
    /// between.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.writer.begin().await?,
        };
        Ok(WriteTx::new(tx, self.changes.clone()))
    }

    /// The pool for statements that write outside a transaction (`&*store.writer()`): the
    /// guard counts the write once the statement has run.
    pub fn writer(&self) -> WriteGuard<'_> {
        WriteGuard::new(&self.writer, &self.changes)
    }

    /// The pool for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// The sqlx URL of a SQLite file, created on first open.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
