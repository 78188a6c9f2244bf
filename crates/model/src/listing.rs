//! Collection queries: `limit`, `marker`, `sort_key`, `sort_dir` and `fields`, as IoTronic reads them.

use crate::InputError;

/// The page size used when a client gives none, and the most a client can ask for.
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    pub fn as_str(self) -> &'static str {
        match self {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    }
}

/// What a collection allows: its envelope key, the columns it sorts by, its fields.
#[derive(Debug)]
pub struct CollectionSpec {
    /// The path segment and the resource word in `next` links (`boards`).
    pub path: &'static str,
    /// The key of the list in the response body (`boards`, `EnabledWebservices`).
    pub envelope: &'static str,
    /// Columns a client may sort by; `id` is always allowed and always the secondary key.
    pub sort_keys: &'static [&'static str],
    /// Every field of the representation.
    pub fields: &'static [&'static str],
    /// Fields of a list entry when the client names none.
    pub default_fields: &'static [&'static str],
    /// Fields present whatever `fields` says.
    pub always: &'static [&'static str],
    /// Whether unknown names in `fields` are refused (boards ignore them, as upstream: clients
    /// such as the stock CLI ask for board fields that do not exist).
    pub strict_fields: bool,
}

pub mod specs {
    use super::CollectionSpec;

    pub static BOARDS: CollectionSpec = CollectionSpec {
        path: "boards",
        envelope: "boards",
        sort_keys: &[
            "id",
            "uuid",
            "code",
            "status",
            "name",
            "type",
            "agent",
            "owner",
            "project",
            "fleet",
            "mobile",
            "lr_version",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "uuid",
            "code",
            "status",
            "name",
            "type",
            "agent",
            "wstun_ip",
            "owner",
            "session",
            "project",
            "fleet",
            "mobile",
            "lr_version",
            "connectivity",
            "links",
            "location",
            "extra",
            "config",
            "created_at",
            "updated_at",
        ],
        default_fields: &[
            "name",
            "code",
            "status",
            "uuid",
            "session",
            "type",
            "fleet",
            "lr_version",
            "connectivity",
            "agent",
            "wstun_ip",
        ],
        always: &["uuid", "session", "location", "wstun_ip", "links"],
        strict_fields: false,
    };
    pub static PLUGINS: CollectionSpec = CollectionSpec {
        path: "plugins",
        envelope: "plugins",
        sort_keys: &[
            "id",
            "uuid",
            "name",
            "owner",
            "public",
            "callable",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "uuid",
            "name",
            "code",
            "public",
            "owner",
            "callable",
            "parameters",
            "extra",
            "digest",
            "links",
            "created_at",
            "updated_at",
        ],
        default_fields: &["name", "uuid", "owner", "public", "callable"],
        always: &["uuid", "links"],
        strict_fields: true,
    };
    pub static SERVICES: CollectionSpec = CollectionSpec {
        path: "services",
        envelope: "services",
        sort_keys: &[
            "id",
            "uuid",
            "name",
            "project",
            "port",
            "protocol",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "uuid",
            "name",
            "project",
            "port",
            "protocol",
            "extra",
            "links",
            "created_at",
            "updated_at",
        ],
        default_fields: &["name", "uuid", "project", "port", "protocol", "extra"],
        always: &["uuid", "links"],
        strict_fields: true,
    };
    pub static FLEETS: CollectionSpec = CollectionSpec {
        path: "fleets",
        envelope: "fleets",
        sort_keys: &[
            "id",
            "uuid",
            "name",
            "project",
            "description",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "uuid",
            "name",
            "project",
            "description",
            "extra",
            "links",
            "created_at",
            "updated_at",
        ],
        default_fields: &["name", "uuid", "project", "description", "extra"],
        always: &["uuid", "links"],
        strict_fields: true,
    };
    pub static PORTS: CollectionSpec = CollectionSpec {
        path: "ports",
        envelope: "ports",
        sort_keys: &[
            "id",
            "uuid",
            "board_uuid",
            "VIF_name",
            "MAC_add",
            "ip",
            "network",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "uuid",
            "board_uuid",
            "MAC_add",
            "VIF_name",
            "network",
            "ip",
            "links",
            "status",
            "created_at",
            "updated_at",
        ],
        default_fields: &["uuid", "board_uuid", "MAC_add", "VIF_name", "network", "ip"],
        always: &["uuid", "links"],
        strict_fields: true,
    };
    pub static WEBSERVICES: CollectionSpec = CollectionSpec {
        path: "webservices",
        envelope: "webservices",
        sort_keys: &[
            "id",
            "uuid",
            "name",
            "port",
            "board_uuid",
            "secure",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "uuid",
            "name",
            "port",
            "board_uuid",
            "secure",
            "extra",
            "links",
            "created_at",
            "updated_at",
        ],
        default_fields: &["name", "uuid", "port", "board_uuid", "extra"],
        always: &["uuid", "links"],
        strict_fields: true,
    };
    pub static ENABLED_WEBSERVICES: CollectionSpec = CollectionSpec {
        path: "enabledwebservices",
        envelope: "EnabledWebservices",
        sort_keys: &[
            "id",
            "board_uuid",
            "dns",
            "zone",
            "http_port",
            "https_port",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "board_uuid",
            "http_port",
            "https_port",
            "dns",
            "zone",
            "extra",
            "created_at",
            "updated_at",
        ],
        default_fields: &[
            "board_uuid",
            "http_port",
            "https_port",
            "dns",
            "zone",
            "extra",
            "created_at",
            "updated_at",
        ],
        always: &["board_uuid"],
        strict_fields: true,
    };
    pub static REQUESTS: CollectionSpec = CollectionSpec {
        path: "requests",
        envelope: "requests",
        sort_keys: &[
            "id",
            "uuid",
            "destination_uuid",
            "main_request_uuid",
            "status",
            "project",
            "type",
            "action",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "uuid",
            "destination_uuid",
            "main_request_uuid",
            "pending_requests",
            "status",
            "project",
            "type",
            "action",
            "links",
            "created_at",
            "updated_at",
        ],
        default_fields: &[
            "uuid",
            "destination_uuid",
            "main_request_uuid",
            "pending_requests",
            "status",
            "type",
            "action",
        ],
        always: &["uuid", "links"],
        strict_fields: true,
    };
    pub static RESULTS: CollectionSpec = CollectionSpec {
        path: "results",
        envelope: "results",
        sort_keys: &[
            "id",
            "board_uuid",
            "request_uuid",
            "result",
            "created_at",
            "updated_at",
        ],
        fields: &[
            "board_uuid",
            "request_uuid",
            "result",
            "message",
            "created_at",
            "updated_at",
        ],
        default_fields: &["board_uuid", "request_uuid", "result", "message"],
        always: &[],
        strict_fields: true,
    };
}

/// A validated collection query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Page size, capped at [`MAX_LIMIT`].
    pub limit: u32,
    /// Whether the client gave a limit (it then appears in `next` links).
    pub marker: Option<String>,
    pub sort_key: String,
    pub sort_dir: SortDir,
    /// The fields the client asked for; `None` means the collection's defaults.
    pub fields: Option<Vec<String>>,
}

impl ListQuery {
    /// Reads the common parameters from the decoded query string of a request on `spec`.
    /// `detail` lists default to every field.
    pub fn parse(
        spec: &CollectionSpec,
        params: &[(String, String)],
        detail: bool,
    ) -> Result<ListQuery, InputError> {
        let get = |k: &str| {
            params
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let limit = match get("limit") {
            None | Some("") => MAX_LIMIT,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if n > 0 => n.min(MAX_LIMIT as i64) as u32,
                Ok(_) => return Err(InputError::field("limit", "Limit must be positive")),
                Err(_) => {
                    return Err(InputError::field(
                        "limit",
                        format!("Invalid limit {raw:?}: send a positive integer."),
                    ))
                }
            },
        };
        let sort_key = get("sort_key")
            .filter(|s| !s.is_empty())
            .unwrap_or("id")
            .to_string();
        if sort_key == "extra"
            || sort_key == "location"
            || !spec.sort_keys.contains(&sort_key.as_str())
        {
            return Err(InputError::field(
                "sort_key",
                format!(
                    "The sort_key value \"{sort_key}\" is an invalid field for sorting. Valid keys: {}.",
                    spec.sort_keys.join(", ")
                ),
            ));
        }
        let sort_dir = match get("sort_dir").unwrap_or("asc") {
            "" | "asc" => SortDir::Asc,
            "desc" => SortDir::Desc,
            other => {
                return Err(InputError::field(
                    "sort_dir",
                    format!(
                        "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
                    ),
                ))
            }
        };
        let fields = match get("fields").filter(|f| !f.trim().is_empty()) {
            Some(raw) => Some(parse_fields(spec, raw)?),
            None if detail => Some(spec.fields.iter().map(|f| f.to_string()).collect()),
            None => None,
        };
        let marker = get("marker").filter(|m| !m.is_empty()).map(str::to_string);
        Ok(ListQuery {
            limit,
            marker,
            sort_key,
            sort_dir,
            fields,
        })
    }

    /// The fields to render for each entry of the list.
    pub fn list_fields(&self, spec: &CollectionSpec) -> Vec<String> {
        match &self.fields {
            Some(f) => f.clone(),
            None => spec.default_fields.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// `fields` for a single resource: validated the same way, default = every field.
pub fn parse_fields(spec: &CollectionSpec, raw: &str) -> Result<Vec<String>, InputError> {
    let mut out: Vec<String> = Vec::new();
    for f in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        // IoTronic lower-cases names; the port fields keep their historical capitals.
        let name = spec
            .fields
            .iter()
            .find(|known| known.eq_ignore_ascii_case(f))
            .map(|k| k.to_string())
            .unwrap_or_else(|| f.to_ascii_lowercase());
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if !spec.strict_fields {
        out.retain(|f| spec.fields.contains(&f.as_str()));
        return Ok(out);
    }
    let unknown: Vec<&str> = out
        .iter()
        .map(String::as_str)
        .filter(|f| !spec.fields.contains(f))
        .collect();
    if !unknown.is_empty() {
        return Err(InputError::field(
            "fields",
            format!(
                "Field(s) \"{}\" are not valid. Valid fields: {}.",
                unknown.join(", "),
                spec.fields.join(", ")
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::specs::*;
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let lq = ListQuery::parse(&BOARDS, &[], false).unwrap();
        assert_eq!(lq.limit, MAX_LIMIT);
        assert_eq!(lq.sort_key, "id");
        assert_eq!(lq.sort_dir, SortDir::Asc);
        assert_eq!(lq.fields, None);
        let detail = ListQuery::parse(&BOARDS, &[], true).unwrap();
        assert_eq!(detail.fields.unwrap().len(), BOARDS.fields.len());
    }

    /// (query, field named in the error, message fragment)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

    #[test]
    fn error_table() {
        let table: [Case<'_>; 7] = [
            (&[("limit", "0")], "limit", "Limit must be positive"),
            (&[("limit", "-3")], "limit", "Limit must be positive"),
            (&[("limit", "ten")], "limit", "Invalid limit"),
            (
                &[("sort_key", "extra")],
                "sort_key",
                "invalid field for sorting",
            ),
            (
                &[("sort_key", "nope")],
                "sort_key",
                "invalid field for sorting",
            ),
            (
                &[("sort_dir", "up")],
                "sort_dir",
                "Invalid sort direction: up",
            ),
            (
                &[("fields", "name,bogus")],
                "fields",
                "Field(s) \"bogus\" are not valid",
            ),
        ];
        for (params, field, msg) in table {
            let err = ListQuery::parse(&PLUGINS, &q(params), false).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{params:?}");
            assert!(err.message.contains(msg), "{params:?}: {}", err.message);
        }
    }

    #[test]
    fn board_fields_ignore_unknown_names() {
        let lq = ListQuery::parse(&BOARDS, &q(&[("fields", "name,mac_addr")]), false).unwrap();
        assert_eq!(lq.fields.unwrap(), vec!["name".to_string()]);
    }

    #[test]
    fn limit_is_capped_and_fields_are_normalised() {
        let lq = ListQuery::parse(
            &PORTS,
            &q(&[("limit", "5000"), ("fields", "UUID,mac_add,uuid")]),
            false,
        )
        .unwrap();
        assert_eq!(lq.limit, MAX_LIMIT);
        assert_eq!(
            lq.fields.unwrap(),
            vec!["uuid".to_string(), "MAC_add".to_string()]
        );
    }
}
