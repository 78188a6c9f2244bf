//! Identifiers: every `{board}`, `{plugin}`, `{service}`, `{fleet}` path segment is a uuid or a name.

/// True when `s` has the shape of a UUID (any case, with dashes), the way oslo's `is_uuid_like` decides.
pub fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::try_parse(s)
        .map(|u| u.hyphenated().to_string() == s.to_ascii_lowercase())
        .unwrap_or(false)
}

/// A path identifier, resolved by uuid when it looks like one and by name otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ident {
    Uuid(String),
    Name(String),
}

impl Ident {
    pub fn parse(raw: &str) -> Ident {
        if is_uuid_like(raw) {
            Ident::Uuid(raw.to_ascii_lowercase())
        } else {
            Ident::Name(raw.to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Ident::Uuid(s) | Ident::Name(s) => s,
        }
    }
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new random uuid in the canonical lower-case hyphenated form.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_likeness_table() {
        let table = [
            ("1aa98d40-e54c-4a3d-87cd-a031bb9b8410", true),
            ("1AA98D40-E54C-4A3D-87CD-A031BB9B8410", true),
            ("1aa98d40e54c4a3d87cda031bb9b8410", false),
            ("board-lr-01", false),
            ("", false),
            ("1aa98d40-e54c-4a3d-87cd-a031bb9b841", false),
        ];
        for (input, expected) in table {
            assert_eq!(is_uuid_like(input), expected, "{input:?}");
        }
    }

    #[test]
    fn ident_parse_picks_uuid_or_name() {
        assert_eq!(
            Ident::parse("1AA98D40-E54C-4A3D-87CD-A031BB9B8410"),
            Ident::Uuid("1aa98d40-e54c-4a3d-87cd-a031bb9b8410".into())
        );
        assert_eq!(Ident::parse("b1"), Ident::Name("b1".into()));
    }
}
