//! A small query builder shared by every collection: equality filters, project scoping and
//! keyset pagination (`marker`), with `$n` placeholders that both engines accept.

use serde_json::{Map, Value};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use s4t_model::listing::SortDir;

use crate::{Result, StoreError};

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(String),
    Int(i64),
    Bool(bool),
    Null,
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_string())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}
impl From<Option<String>> for Val {
    fn from(s: Option<String>) -> Val {
        s.map(Val::Text).unwrap_or(Val::Null)
    }
}
impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Int(n)
    }
}
impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Bool(b)
    }
}

pub fn bind_all<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    vals: &'q [Val],
) -> Query<'q, Any, AnyArguments<'q>> {
    for v in vals {
        q = match v {
            Val::Text(s) => q.bind(s.as_str()),
            Val::Int(n) => q.bind(*n),
            Val::Bool(b) => q.bind(*b),
            Val::Null => q.bind(Option::<String>::None),
        };
    }
    q
}

/// Which project's rows a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every project (admins, and internal callers).
    All,
    /// Rows of this project; `None` matches rows without a project (upstream noauth without headers).
    Project(Option<String>),
}

/// The type of a sortable column, which decides the neutral value `NULL` sorts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Bool,
}

/// A sortable column: its API name, its SQL expression and its kind.
#[derive(Debug, Clone, Copy)]
pub struct SortColumn {
    pub key: &'static str,
    pub expr: &'static str,
    pub kind: Kind,
}

/// One page of a collection.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: u32,
    /// The uuid (or, for results, the id) of the last row of the previous page.
    pub marker: Option<String>,
    pub sort_key: String,
    pub sort_dir: SortDir,
}

impl Default for Page {
    fn default() -> Page {
        Page {
            limit: s4t_model::listing::MAX_LIMIT,
            marker: None,
            sort_key: "id".into(),
            sort_dir: SortDir::Asc,
        }
    }
}

impl From<&s4t_model::listing::ListQuery> for Page {
    fn from(q: &s4t_model::listing::ListQuery) -> Page {
        Page {
            limit: q.limit,
            marker: q.marker.clone(),
            sort_key: q.sort_key.clone(),
            sort_dir: q.sort_dir,
        }
    }
}

/// Builds `WHERE` clauses with numbered placeholders.
#[derive(Debug, Default)]
pub struct Where {
    clauses: Vec<String>,
    pub vals: Vec<Val>,
}

impl Where {
    pub fn new() -> Where {
        Where::default()
    }

    /// The next placeholder, bound to `v`.
    pub fn arg(&mut self, v: impl Into<Val>) -> String {
        self.vals.push(v.into());
        format!("${}", self.vals.len())
    }

    pub fn eq(&mut self, expr: &str, v: impl Into<Val>) -> &mut Where {
        let p = self.arg(v);
        self.clauses.push(format!("{expr} = {p}"));
        self
    }

    pub fn raw(&mut self, clause: String) -> &mut Where {
        self.clauses.push(clause);
        self
    }

    /// Restricts to a project (or to rows without one).
    pub fn scope(&mut self, expr: &str, scope: &Scope) -> &mut Where {
        match scope {
            Scope::All => {}
            Scope::Project(Some(p)) => {
                self.eq(expr, p.as_str());
            }
            Scope::Project(None) => {
                self.clauses.push(format!("{expr} IS NULL"));
            }
        }
        self
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn neutral(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "''",
        Kind::Int => "0",
        Kind::Bool => "FALSE",
    }
}

/// How to page through one collection.
#[derive(Debug, Clone, Copy)]
pub struct Collection {
    /// The `SELECT ... FROM ... [JOIN ...]` part, ending before `WHERE`.
    pub select: &'static str,
    /// The table the marker refers to, and its alias in `select`.
    pub table: &'static str,
    pub alias: &'static str,
    /// The resource name in "not found" errors.
    pub kind: &'static str,
    pub sort: &'static [SortColumn],
    /// The marker is the row id (for rows without a uuid) rather than the uuid.
    pub marker_by_id: bool,
}

/// How one page is cut: the sort expression and direction. Resolving the marker adds its
/// condition to `filter` (an unknown marker is a 404).
struct PagePlan {
    sort_expr: String,
    dir: &'static str,
}

impl PagePlan {
    fn order(&self, alias: &str) -> String {
        format!("{} {d}, {alias}.id {d}", self.sort_expr, d = self.dir)
    }
}

async fn plan_page(
    pool: &sqlx::AnyPool,
    c: &Collection,
    filter: &mut Where,
    page: &Page,
) -> Result<PagePlan> {
    let (table, alias, kind_name, columns, marker_by_id) =
        (c.table, c.alias, c.kind, c.sort, c.marker_by_id);
    let col = columns
        .iter()
        .find(|c| c.key == page.sort_key)
        .or_else(|| columns.iter().find(|c| c.key == "id"))
        .ok_or_else(|| StoreError::Corrupt {
            what: "sort columns",
            detail: format!("no id column for {table}"),
        })?;
    // The row id is never NULL: sorting on it bare lets the engine walk the primary key.
    let sort_expr = if col.key == "id" {
        col.expr.to_string()
    } else {
        format!("COALESCE({}, {})", col.expr, neutral(col.kind))
    };
    let dir = match page.sort_dir {
        SortDir::Asc => ("ASC", ">"),
        SortDir::Desc => ("DESC", "<"),
    };
    if let Some(marker) = &page.marker {
        let marker_id: i64 = {
            let (sql, val): (String, Val) = if marker_by_id {
                (
                    format!("SELECT id FROM {table} WHERE id = $1"),
                    Val::Int(marker.parse().unwrap_or(-1)),
                )
            } else {
                (
                    format!("SELECT id FROM {table} WHERE uuid = $1"),
                    Val::Text(marker.clone()),
                )
            };
            let vals = [val];
            let row = bind_all(sqlx::query(&sql), &vals)
                .fetch_optional(pool)
                .await?;
            match row {
                Some(r) => r.try_get(0)?,
                None => return Err(StoreError::not_found(kind_name, marker.clone())),
            }
        };
        let m = filter.arg(marker_id);
        let inner_expr = sort_expr.replace(&format!("{alias}."), "mk.");
        filter.raw(format!(
            "({sort_expr} {op} (SELECT {inner_expr} FROM {table} mk WHERE mk.id = {m}) OR \
             ({sort_expr} = (SELECT {inner_expr} FROM {table} mk WHERE mk.id = {m}) AND {alias}.id {op} {m}))",
            op = dir.1
        ));
    }
    Ok(PagePlan {
        sort_expr,
        dir: dir.0,
    })
}

/// Runs one page of `c` with `filter`.
pub async fn fetch_page(
    pool: &sqlx::AnyPool,
    c: &Collection,
    mut filter: Where,
    page: &Page,
) -> Result<Vec<AnyRow>> {
    let plan = plan_page(pool, c, &mut filter, page).await?;
    let sql = format!(
        "{}{} ORDER BY {} LIMIT {}",
        c.select,
        filter.sql(),
        plan.order(c.alias),
        page.limit
    );
    Ok(bind_all(sqlx::query(&sql), &filter.vals)
        .fetch_all(pool)
        .await?)
}

/// One page rendered by the database itself: the items as JSON texts joined by commas (an
/// array without its brackets), how many there are, and the marker of the last one when the page
/// is full.
#[derive(Debug, Clone)]
pub struct JsonPage {
    pub items: String,
    pub count: u32,
    pub last_marker: Option<String>,
}

/// Runs one page of `c` in a single statement whose result is the page already rendered as
/// JSON, built from `item_expr` (a text-valued JSON expression over the collection's aliases).
/// `from` replaces the collection's `SELECT` list: it starts at `FROM`. A full page costs one
/// more, small statement for its last marker. Nothing is decoded row by row, and the subquery
/// streams into the aggregate without a temporary table.
pub async fn fetch_page_json(
    pool: &sqlx::AnyPool,
    dialect: crate::Dialect,
    c: &Collection,
    from: &str,
    item_expr: &str,
    mut filter: Where,
    page: &Page,
) -> Result<JsonPage> {
    let plan = plan_page(pool, c, &mut filter, page).await?;
    let (a, d) = (c.alias, plan.dir);
    // SQLite runs the ordered subquery as a co-routine that feeds the aggregate in order; an
    // ORDER BY inside the aggregate would only add a temporary B-tree. PostgreSQL is told.
    let agg_order = match dialect {
        crate::Dialect::Sqlite => String::new(),
        crate::Dialect::Postgres => format!(" ORDER BY sk {d}, rid {d}"),
    };
    let sql = format!(
        "SELECT string_agg(item, ','{agg_order}), count(*) FROM \
         (SELECT {item_expr} AS item, {sk} AS sk, {a}.id AS rid {from}{w} ORDER BY {o} LIMIT {n}) page",
        sk = plan.sort_expr,
        w = filter.sql(),
        o = plan.order(a),
        n = page.limit,
    );
    let row = bind_all(sqlx::query(&sql), &filter.vals)
        .fetch_one(pool)
        .await?;
    let items: Option<String> = row.try_get(0)?;
    let count = row.try_get::<i64, _>(1)? as u32;
    let last_marker = if count == page.limit && count > 0 {
        let marker = if c.marker_by_id {
            format!("CAST({a}.id AS TEXT)")
        } else {
            format!("{a}.uuid")
        };
        let sql = format!(
            "SELECT {marker} {from}{w} ORDER BY {o} LIMIT 1 OFFSET {skip}",
            w = filter.sql(),
            o = plan.order(a),
            skip = count - 1,
        );
        let row = bind_all(sqlx::query(&sql), &filter.vals)
            .fetch_optional(pool)
            .await?;
        row.map(|r| r.try_get::<String, _>(0)).transpose()?
    } else {
        None
    };
    Ok(JsonPage {
        items: items.unwrap_or_default(),
        count,
        last_marker,
    })
}

/// Reads a JSON object stored as text; `NULL` and empty read as `{}`.
pub fn json_obj(row: &AnyRow, col: &str) -> Result<Map<String, Value>> {
    let raw: Option<String> = row.try_get(col)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(Value::Null) => Ok(Map::new()),
            _ => Err(StoreError::Corrupt {
                what: "JSON column",
                detail: format!("{col}: {text:.80}"),
            }),
        },
    }
}

pub fn to_json_text(m: &Map<String, Value>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

/// Reads a boolean column. SQLite hands booleans back as integers, PostgreSQL as booleans.
pub fn boolean(row: &AnyRow, col: &str) -> Result<Option<bool>> {
    if let Ok(b) = row.try_get::<Option<bool>, _>(col) {
        return Ok(b);
    }
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|n| n != 0))
}

/// Finds the one row matching a uuid-or-name `ident`. Names are not unique for every resource:
/// two matches give a conflict that tells the caller to use the uuid.
pub async fn find_one(
    pool: &sqlx::AnyPool,
    select: &str,
    alias: &str,
    kind_name: &'static str,
    ident: &s4t_model::Ident,
    mut filter: Where,
) -> Result<AnyRow> {
    match ident {
        s4t_model::Ident::Uuid(u) => filter.eq(&format!("{alias}.uuid"), u.as_str()),
        s4t_model::Ident::Name(n) => filter.eq(&format!("{alias}.name"), n.as_str()),
    };
    let sql = format!("{select}{} LIMIT 2", filter.sql());
    let mut rows = bind_all(sqlx::query(&sql), &filter.vals)
        .fetch_all(pool)
        .await?;
    match rows.len() {
        0 => Err(StoreError::not_found(kind_name, ident.as_str())),
        1 => Ok(rows.remove(0)),
        _ => Err(StoreError::Conflict(format!(
            "More than one {} is named {}: use its uuid.",
            kind_name.to_lowercase(),
            ident.as_str()
        ))),
    }
}

/// `UPDATE table SET ... WHERE uuid = ?`, built from `(column, value)` pairs.
pub async fn update_by_uuid(
    pool: &sqlx::AnyPool,
    table: &str,
    kind_name: &'static str,
    uuid: &str,
    mut sets: Vec<(&'static str, Val)>,
    conflict: impl FnOnce() -> String,
) -> Result<()> {
    sets.push(("updated_at", Val::Text(s4t_model::time::now())));
    let mut w = Where::new();
    let assignments: Vec<String> = sets
        .into_iter()
        .map(|(col, v)| format!("{col} = {}", w.arg(v)))
        .collect();
    let p = w.arg(uuid);
    let sql = format!(
        "UPDATE {table} SET {} WHERE uuid = {p}",
        assignments.join(", ")
    );
    let done = bind_all(sqlx::query(&sql), &w.vals)
        .execute(pool)
        .await
        .map_err(|e| StoreError::conflict_or(e, conflict))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found(kind_name, uuid));
    }
    Ok(())
}

/// `DELETE FROM table WHERE uuid = ?`; not found when nothing was deleted.
pub async fn delete_by_uuid(
    pool: &sqlx::AnyPool,
    table: &str,
    kind_name: &'static str,
    uuid: &str,
) -> Result<()> {
    let sql = format!("DELETE FROM {table} WHERE uuid = $1");
    let done = sqlx::query(&sql).bind(uuid).execute(pool).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found(kind_name, uuid));
    }
    Ok(())
}

/// Rows of `select` (a `SELECT ... FROM table` without WHERE) in `scope` (on its `project`
/// column), by uuid when `ident` looks like one, else by name: exactly one, or not found, or
/// ambiguous (409 naming `kind`).
pub(crate) async fn fetch_by_ident(
    pool: &sqlx::AnyPool,
    select: &str,
    kind: &'static str,
    ident: &str,
    scope: &Scope,
) -> crate::Result<sqlx::any::AnyRow> {
    let mut w = Where::new();
    w.scope("project", scope);
    w.eq(
        if s4t_model::is_uuid_like(ident) {
            "uuid"
        } else {
            "name"
        },
        ident,
    );
    let mut rows = bind_all(sqlx::query(&format!("{select}{}", w.sql())), &w.vals)
        .fetch_all(pool)
        .await?;
    match rows.len() {
        1 => Ok(rows.remove(0)),
        0 => Err(crate::StoreError::not_found(kind, ident)),
        _ => Err(crate::StoreError::Conflict(format!(
            "More than one {} is named {ident}: use its uuid.",
            kind.to_ascii_lowercase()
        ))),
    }
}

/// Every row of `select` in `scope`, by name.
pub(crate) async fn fetch_in_scope(
    pool: &sqlx::AnyPool,
    select: &str,
    scope: &Scope,
) -> crate::Result<Vec<sqlx::any::AnyRow>> {
    let mut w = Where::new();
    w.scope("project", scope);
    Ok(bind_all(
        sqlx::query(&format!("{select}{} ORDER BY name, id", w.sql())),
        &w.vals,
    )
    .fetch_all(pool)
    .await?)
}
