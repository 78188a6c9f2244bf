//! Strict reading of JSON request bodies.
//!
//! IoTronic (WSME) rejects unknown attributes, read-only attributes and values of the wrong type
//! with 400. We do the same, with messages that name the field and say what to send instead, and
//! we treat the zero values the Go SDK sends (`""` for uuids, status, agent, ...) as absent where
//! the caller marks a field so.

use serde_json::{Map, Value};

/// Why a request body was refused. Always a client error (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// The offending field, when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn field(field: &str, message: impl Into<String>) -> InputError {
        InputError {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> InputError {
        InputError {
            field: None,
            message: message.into(),
        }
    }
}

/// Reads one JSON object field by field. Build it with the attributes the type accepts; every
/// other key is refused up front.
#[derive(Debug)]
pub struct BodyReader {
    type_name: &'static str,
    fields: Map<String, Value>,
}

/// Attributes that exist on every resource but are never written by clients.
const READ_ONLY: [&str; 3] = ["created_at", "updated_at", "links"];

impl BodyReader {
    /// `accepted` lists the attributes the body may carry (read-only ones excluded).
    pub fn new(
        type_name: &'static str,
        body: Value,
        accepted: &[&str],
    ) -> Result<BodyReader, InputError> {
        let Value::Object(fields) = body else {
            return Err(InputError::general(format!(
                "The request body for {type_name} must be a JSON object."
            )));
        };
        if let Some(ro) = fields.keys().find(|k| READ_ONLY.contains(&k.as_str())) {
            return Err(InputError::field(
                ro,
                format!(
                    "Cannot set read only field {ro:?} on {type_name}: remove it from the body."
                ),
            ));
        }
        let mut unknown: Vec<&str> = fields
            .keys()
            .map(String::as_str)
            .filter(|k| !accepted.contains(k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(InputError {
                field: Some(unknown[0].to_string()),
                message: format!(
                    "Unknown attribute for argument {type_name}: {}. Accepted attributes: {}.",
                    unknown.join(", "),
                    accepted.join(", ")
                ),
            });
        }
        Ok(BodyReader { type_name, fields })
    }

    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// Removes and returns the raw value (`None` when absent).
    pub fn take(&mut self, field: &str) -> Option<Value> {
        self.fields.remove(field)
    }

    /// A text field; `null` reads as absent.
    pub fn text(&mut self, field: &str, max_len: usize) -> Result<Option<String>, InputError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max_len {
                    Err(InputError::field(
                        field,
                        format!("{field} is too long: at most {max_len} characters are allowed."),
                    ))
                } else {
                    Ok(Some(s))
                }
            }
            Some(other) => Err(wrong_type(field, "a string", &other)),
        }
    }

    /// A text field where `""` (the Go SDK's zero value) also reads as absent.
    pub fn text_or_zero(
        &mut self,
        field: &str,
        max_len: usize,
    ) -> Result<Option<String>, InputError> {
        Ok(self.text(field, max_len)?.filter(|s| !s.is_empty()))
    }

    /// A required text field that must not be empty.
    pub fn required_text(&mut self, field: &str, max_len: usize) -> Result<String, InputError> {
        match self.text(field, max_len)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(InputError::field(
                field,
                format!(
                    "{field} is required for {}: send a non-empty string.",
                    self.type_name
                ),
            )),
        }
    }

    /// A resource name: non-empty, bounded, and not UUID-like (so lookups stay unambiguous).
    pub fn name(
        &mut self,
        field: &str,
        max_len: usize,
        required: bool,
    ) -> Result<Option<String>, InputError> {
        let value = if required {
            Some(self.required_text(field, max_len)?)
        } else {
            self.text(field, max_len)?
        };
        if let Some(name) = &value {
            check_name(field, name)?;
        }
        Ok(value)
    }

    /// A uuid; `""` reads as absent (Go SDK zero value).
    pub fn uuid(&mut self, field: &str) -> Result<Option<String>, InputError> {
        match self.text_or_zero(field, 64)? {
            None => Ok(None),
            Some(s) if crate::is_uuid_like(&s) => Ok(Some(s.to_ascii_lowercase())),
            Some(s) => Err(InputError::field(
                field,
                format!("Expected a uuid for {field} but received {s}."),
            )),
        }
    }

    /// A boolean: JSON booleans, or the strings oslo's strict `bool_from_string` accepts.
    pub fn boolean(&mut self, field: &str) -> Result<Option<bool>, InputError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => parse_bool(&s).map(Some).ok_or_else(|| {
                InputError::field(field, format!("{field} must be true or false, got {s:?}."))
            }),
            Some(other) => Err(wrong_type(field, "a boolean", &other)),
        }
    }

    /// An integer within `range`.
    pub fn integer(
        &mut self,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, InputError> {
        let n = match self.take(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(other) => return Err(wrong_type(field, "an integer", &other)),
        };
        match n {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(InputError::field(
                field,
                format!(
                    "{field} must be an integer between {} and {}.",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// A JSON object (`extra`, `parameters`, `connectivity`); `null` reads as absent.
    pub fn object(&mut self, field: &str) -> Result<Option<Map<String, Value>>, InputError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(wrong_type(field, "a JSON object", &other)),
        }
    }

    /// Refuses a field the cloud owns, unless it is absent or a zero value.
    pub fn cloud_owned(&mut self, field: &str, why: &str) -> Result<(), InputError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(s)) if s.is_empty() => Ok(()),
            Some(Value::Object(m)) if m.is_empty() => Ok(()),
            Some(_) => Err(InputError::field(
                field,
                format!("{field} is set by the cloud ({why}): omit it."),
            )),
        }
    }

    /// Drops a field that clients send but that has no effect (documented in docs/compat.md).
    pub fn ignore(&mut self, field: &str) {
        self.fields.remove(field);
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> InputError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    InputError::field(field, format!("{field} must be {expected}, got {kind}."))
}

/// oslo `strutils.bool_from_string(strict=True)`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// Names are non-blank and never UUID-like, so `{board}` resolves unambiguously.
pub fn check_name(field: &str, name: &str) -> Result<(), InputError> {
    if name.trim().is_empty() {
        return Err(InputError::field(
            field,
            format!("{field} must not be empty."),
        ));
    }
    if crate::is_uuid_like(name) {
        return Err(InputError::field(
            field,
            format!("{field} {name:?} looks like a uuid; names must not, so that lookups stay unambiguous."),
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(InputError::field(
            field,
            format!("{field} must not contain '/' or control characters."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader(body: Value) -> Result<BodyReader, InputError> {
        BodyReader::new(
            "Board",
            body,
            &["name", "code", "mobile", "uuid", "status", "extra", "port"],
        )
    }

    #[test]
    fn unknown_attributes_are_named() {
        let err = reader(json!({"name": "b", "colour": 1, "age": 2})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("age"));
        assert!(
            err.message
                .starts_with("Unknown attribute for argument Board: age, colour."),
            "{}",
            err.message
        );
    }

    #[test]
    fn read_only_attributes_are_refused() {
        let err = reader(json!({"created_at": "x"})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("created_at"));
        assert!(err.message.contains("read only"));
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(reader(json!([1, 2])).is_err());
        assert!(reader(json!("board")).is_err());
    }

    #[test]
    fn field_reading_table() {
        let mut r = reader(
            json!({"name": "x".repeat(300), "mobile": "yes", "uuid": "", "status": "",
            "extra": [1], "port": "8080", "code": 5}),
        )
        .unwrap();
        assert!(r
            .text("name", 255)
            .unwrap_err()
            .message
            .contains("too long"));
        assert_eq!(r.boolean("mobile").unwrap(), Some(true));
        assert_eq!(
            r.uuid("uuid").unwrap(),
            None,
            "the Go SDK's empty uuid is absent"
        );
        assert!(
            r.cloud_owned("status", "lifecycle").is_ok(),
            "empty status is absent"
        );
        assert!(r
            .object("extra")
            .unwrap_err()
            .message
            .contains("must be a JSON object, got a list"));
        assert_eq!(r.integer("port", 1..=65535).unwrap(), Some(8080));
        assert!(r
            .text("code", 36)
            .unwrap_err()
            .message
            .contains("must be a string, got a number"));
    }

    #[test]
    fn names_must_not_look_like_uuids() {
        let mut r = reader(json!({"name": "1aa98d40-e54c-4a3d-87cd-a031bb9b8410"})).unwrap();
        let err = r.name("name", 255, true).unwrap_err();
        assert!(err.message.contains("looks like a uuid"));
        let mut r = reader(json!({})).unwrap();
        assert!(r
            .name("name", 255, true)
            .unwrap_err()
            .message
            .contains("required"));
    }

    #[test]
    fn cloud_owned_fields_with_values_are_refused() {
        let mut r = reader(json!({"status": "online"})).unwrap();
        let err = r.cloud_owned("status", "the board lifecycle").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("status"));
    }

    #[test]
    fn strict_bool_strings() {
        for (s, b) in [
            ("TRUE", Some(true)),
            ("off", Some(false)),
            ("maybe", None),
            ("", None),
        ] {
            assert_eq!(parse_bool(s), b, "{s:?}");
        }
    }
}
