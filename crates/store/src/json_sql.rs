//! JSON built by the database: the same expressions spelled for SQLite and for PostgreSQL, so a
//! long list is rendered in one statement instead of being decoded row by row.

use crate::Dialect;

/// SQL spellings of JSON constructors for one engine. Keys are our own field names, never input.
#[derive(Debug, Clone, Copy)]
pub struct JsonSql(pub Dialect);

impl JsonSql {
    /// A JSON object from `(key, value expression)` pairs, in that order.
    pub fn object(&self, pairs: &[(&str, String)]) -> String {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("'{}', {v}", k.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        match self.0 {
            Dialect::Sqlite => format!("json_object({body})"),
            Dialect::Postgres => format!("json_build_object({body})"),
        }
    }

    pub fn array(&self, items: &[String]) -> String {
        match self.0 {
            Dialect::Sqlite => format!("json_array({})", items.join(", ")),
            Dialect::Postgres => format!("json_build_array({})", items.join(", ")),
        }
    }

    /// A column holding JSON as text, embedded as JSON (empty text reads as `{}`).
    pub fn stored(&self, column: &str) -> String {
        match self.0 {
            Dialect::Sqlite => format!("json(COALESCE(NULLIF({column}, ''), '{{}}'))"),
            Dialect::Postgres => format!("CAST(COALESCE(NULLIF({column}, ''), '{{}}') AS json)"),
        }
    }

    /// A boolean column (an integer on SQLite) as `true`/`false`.
    pub fn boolean(&self, column: &str) -> String {
        match self.0 {
            Dialect::Sqlite => format!("json(CASE WHEN {column} THEN 'true' ELSE 'false' END)"),
            Dialect::Postgres => column.to_string(),
        }
    }

    /// `CASE WHEN cond THEN a ELSE b END` over JSON values, keeping them JSON on SQLite (whose
    /// JSON subtype does not survive every expression).
    pub fn choose(&self, cond: &str, then: &str, otherwise: &str) -> String {
        match self.0 {
            Dialect::Sqlite => format!("json(CASE WHEN {cond} THEN {then} ELSE {otherwise} END)"),
            Dialect::Postgres => format!("(CASE WHEN {cond} THEN {then} ELSE {otherwise} END)"),
        }
    }

    pub fn empty_array(&self) -> String {
        match self.0 {
            Dialect::Sqlite => "json('[]')".into(),
            Dialect::Postgres => "CAST('[]' AS json)".into(),
        }
    }

    /// A text parameter placeholder, typed so that both engines accept it inside expressions.
    pub fn text_param(&self, placeholder: &str) -> String {
        format!("CAST({placeholder} AS TEXT)")
    }

    /// The top-level JSON expression as text.
    pub fn as_text(&self, expr: &str) -> String {
        match self.0 {
            Dialect::Sqlite => expr.to_string(),
            Dialect::Postgres => format!("CAST({expr} AS TEXT)"),
        }
    }
}
