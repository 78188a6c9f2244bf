//! What lets the API cache rendered boards without serving a stale one: the version of the
//! tables a board's representation reads (`boards`, `sessions`, `locations`).
//!
//! - In the database, triggers count every committed change of those tables in
//!   `change_versions` (migration 8): changes made by cascades, by any process, by hand.
//! - In this process, every write through the store ([`WriteTx`], [`WriteGuard`]) counts
//!   itself when it is over (after its commit), and so does every notification from another
//!   replica's commit (PostgreSQL `LISTEN s4t_changes`, see [`listen`]).
//! - [`crate::Store::boards_version`] reads the version from the database again whenever a
//!   write was counted since it last did, or when it cannot hear other replicas; otherwise it
//!   answers from memory without a query.
//!
//! A cached entry made at version v is served only while the version is still v, so a read
//! that starts after a write has returned never sees what the write replaced.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::Row;

use crate::{Result, Store};

/// The counters one store handle shares with its clones.
#[derive(Debug)]
pub(crate) struct Changes {
    /// Writes finished (and notifications heard) so far.
    writes: AtomicU64,
    /// (writes counted when the version was last read, that version).
    known: tokio::sync::Mutex<(u64, Option<i64>)>,
    /// Whether commits of other processes are heard: always on SQLite (one process owns the
    /// file), on PostgreSQL while the listener is connected.
    hearing_others: AtomicBool,
}

impl Changes {
    pub(crate) fn new(hearing_others: bool) -> Arc<Changes> {
        Arc::new(Changes {
            writes: AtomicU64::new(0),
            known: tokio::sync::Mutex::new((0, None)),
            hearing_others: AtomicBool::new(hearing_others),
        })
    }

    /// A write is over, or another process committed one.
    pub(crate) fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    fn set_hearing_others(&self, on: bool) {
        self.hearing_others.store(on, Ordering::SeqCst);
        // Whatever was committed while nothing was heard: read the version again.
        self.count_write();
    }
}

/// A write transaction of the store: a `sqlx` transaction that counts itself as a write when
/// it is committed or dropped.
pub struct WriteTx {
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    changes: Arc<Changes>,
}

impl WriteTx {
    pub(crate) fn new(tx: sqlx::Transaction<'static, sqlx::Any>, changes: Arc<Changes>) -> WriteTx {
        WriteTx {
            tx: Some(tx),
            changes,
        }
    }

    pub async fn commit(mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            tx.rollback().await?;
        }
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::Transaction<'static, sqlx::Any>;
    fn deref(&self) -> &Self::Target {
        self.tx.as_ref().expect("a transaction until commit")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.tx.as_mut().expect("a transaction until commit")
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        // After the commit (or the rollback of a dropped transaction).
        drop(self.tx.take());
        self.changes.count_write();
    }
}

/// The writer pool for statements outside a transaction; counts a write when dropped, which
/// is after the statement that borrowed it has run.
pub struct WriteGuard<'a> {
    pool: &'a sqlx::AnyPool,
    changes: &'a Changes,
}

impl<'a> WriteGuard<'a> {
    pub(crate) fn new(pool: &'a sqlx::AnyPool, changes: &'a Arc<Changes>) -> WriteGuard<'a> {
        WriteGuard { pool, changes }
    }
}

impl std::ops::Deref for WriteGuard<'_> {
    type Target = sqlx::AnyPool;
    fn deref(&self) -> &sqlx::AnyPool {
        self.pool
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.changes.count_write();
    }
}

impl Store {
    /// Whether commits of other processes are heard (so [`Store::boards_version`] can answer
    /// from memory): always on SQLite, on PostgreSQL while the change listener is connected.
    pub fn hears_other_writers(&self) -> bool {
        self.changes.hearing_others.load(Ordering::SeqCst)
    }

    /// The version of what a board's representation reads: it changes with every committed
    /// change of a board, its location or its sessions. `None` on a database without
    /// `change_versions`, where nothing may be cached.
    pub async fn boards_version(&self) -> Result<Option<i64>> {
        let changes = &self.changes;
        let hearing = changes.hearing_others.load(Ordering::SeqCst);
        let mut known = changes.known.lock().await;
        let writes = changes.writes.load(Ordering::SeqCst);
        if hearing && known.0 == writes && known.1.is_some() {
            return Ok(known.1);
        }
        // Counted before the read: a write that ends meanwhile makes the next call read again.
        let version = sqlx::query("SELECT version FROM change_versions WHERE name = 'boards'")
            .fetch_optional(self.pool())
            .await?
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?;
        *known = (writes, version);
        Ok(version)
    }
}

/// Hears other replicas' commits on PostgreSQL (`LISTEN s4t_changes`, notified by the
/// triggers of migration 8) until the store is closed; reconnects with backoff. While it is
/// not connected, [`Store::boards_version`] reads the version at every call.
pub(crate) fn listen(url: String, changes: Arc<Changes>) {
    tokio::spawn(async move {
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen("s4t_changes").await {
                    Ok(()) => {
                        changes.set_hearing_others(true);
                        backoff = std::time::Duration::from_millis(100);
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(_)) => changes.count_write(),
                                // The connection was lost: notifications may be missed.
                                Ok(None) | Err(_) => {
                                    changes.set_hearing_others(false);
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN s4t_changes"),
                },
                Err(e) => tracing::warn!(error = %e, "connecting the change listener"),
            }
            if Arc::strong_count(&changes) == 1 {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
        }
    });
}
