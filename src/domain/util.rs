//! Small helpers for time and text shared by the domain and the database layer.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// Now, truncated to microseconds so values round-trip through both databases unchanged.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Database timestamps are UTC without a zone.
pub fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

/// See [`to_db`].
pub fn from_db(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// RFC 3339 in UTC with microseconds, the one timestamp format of the API.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Serde helper for `DateTime<Utc>` fields.
pub mod ts {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Serializes with [`super::rfc3339`].
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }
}

/// Serde helper for `Option<DateTime<Utc>>` fields.
pub mod ts_opt {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Serializes with [`super::rfc3339`], or `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
}
