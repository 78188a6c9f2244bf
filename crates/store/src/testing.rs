//! Helpers for tests of this and other crates: fresh databases on a test PostgreSQL server.

use crate::{Result, Store, StoreError};

/// The admin URL of the test PostgreSQL server (`S4T_TEST_POSTGRES_URL`). Without it a test
/// is skipped with a message, unless `S4T_REQUIRE_POSTGRES=1` (CI), where it fails.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("S4T_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("S4T_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("S4T_REQUIRE_POSTGRES=1 but S4T_TEST_POSTGRES_URL is not set")
        }
        Err(_) => {
            eprintln!("skipped: S4T_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// Creates a new empty database on the server at `admin_url` and opens a store on it.
pub async fn fresh_postgres(admin_url: &str) -> Result<Store> {
    Store::open(&fresh_postgres_url(admin_url).await?).await
}

/// Creates a new empty database on the server at `admin_url` and returns its URL.
pub async fn fresh_postgres_url(admin_url: &str) -> Result<String> {
    sqlx::any::install_default_drivers();
    let name = format!("s4t_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let mut url = url::Url::parse(admin_url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
    url.set_path(&name);
    Ok(url.to_string())
}
