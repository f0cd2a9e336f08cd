//! Time as the job model sees it: UTC, millisecond precision, fixed-width RFC 3339 text.
//!
//! Fixed width matters: `created_at` is part of a DynamoDB sort key, so text order must be time order.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

const MINUTE: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]");

/// Now, in UTC, truncated to milliseconds.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .expect("valid nanosecond")
}

/// `2026-11-23T14:22:49.123Z`.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(FORMAT)
        .expect("formattable UTC time")
}

/// `2026-11-23T14:22`: the key of a per-minute statistics bucket.
pub fn minute_key(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(MINUTE)
        .expect("formattable UTC time")
}

/// Serde adapter for `OffsetDateTime` fields stored and served in the fixed-width format.
pub mod serde_ts {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<OffsetDateTime>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;
        use time::format_description::well_known::Rfc3339;

        pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn format_is_fixed_width_so_text_order_is_time_order() {
        let a = format(datetime!(2026-11-23 09:05:07 UTC));
        let b = format(datetime!(2026-11-23 10:00:00.5 UTC));
        assert_eq!(a, "2026-11-23T09:05:07.000Z");
        assert_eq!(b, "2026-11-23T10:00:00.500Z");
        assert!(a < b);
        assert_eq!(minute_key(datetime!(2026-11-23 10:00:59.9 UTC)), "2026-11-23T10:00");
    }
}
