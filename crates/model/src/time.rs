//! Timestamps as IoTronic writes them: ISO-8601 with an explicit `+00:00` offset.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats an instant the way IoTronic does (`2019-02-20T10:38:26+00:00`).
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The current time in the wire format.
pub fn now() -> String {
    format(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_with_explicit_utc_offset_and_whole_seconds() {
        let at = Utc.with_ymd_and_hms(2019, 2, 20, 10, 38, 26).unwrap();
        assert_eq!(format(at), "2019-02-20T10:38:26+00:00");
    }
}
