//! API tokens, stored as sha256 hashes: a leaked database does not leak usable tokens.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub user_id: String,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
    pub description: Option<String>,
    pub created_at: String,
}

fn decode(row: &AnyRow) -> Result<TokenRecord> {
    let roles: String = row.try_get("roles")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        project_id: row.try_get("project_id")?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

const SELECT: &str =
    "SELECT id, user_id, project_id, roles, description, created_at FROM api_tokens";

impl Store {
    pub async fn insert_token(
        &self,
        token_hash: &str,
        user_id: &str,
        project_id: Option<&str>,
        roles: &[String],
        description: Option<&str>,
    ) -> Result<TokenRecord> {
        let row = sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, project_id, roles, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(project_id)
        .bind(roles.join(","))
        .bind(description)
        .bind(s4t_model::time::now())
        .fetch_one(&*self.writer())
        .await?;
        let id: i64 = row.try_get(0)?;
        let sql = format!("{SELECT} WHERE id = $1");
        decode(&sqlx::query(&sql).bind(id).fetch_one(self.pool()).await?)
    }

    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("{SELECT} WHERE token_hash = $1");
        sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let sql = format!("{SELECT} ORDER BY id");
        sqlx::query(&sql)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    pub async fn count_tokens(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?)
    }

    pub async fn delete_token(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&*self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Token", id.to_string()));
        }
        Ok(())
    }
}
