//! Event Horizon's log entry: one JSON object per line of a `.jsonl` file, validated.
//!
//! Required: `timestamp` (RFC 3339 text, or epoch seconds or milliseconds as a number), `level`
//! (trace, debug, info, warn/warning, error, fatal/critical; any case) and a non-empty `message`.
//! Optional: `service`, `trace_id` (strings). Every other field is kept in `attributes`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::serde_ts;
use crate::limits::{self, quote};

/// Normalized severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// A level name in any case (ASCII), with the `warning` and `critical` aliases.
    pub fn parse(s: &str) -> Option<Level> {
        const NAMES: [(&str, Level); 8] = [
            ("info", Level::Info),
            ("debug", Level::Debug),
            ("warn", Level::Warn),
            ("error", Level::Error),
            ("trace", Level::Trace),
            ("fatal", Level::Fatal),
            ("warning", Level::Warn),
            ("critical", Level::Fatal),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, level)| level)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

/// A valid line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// 1-based line number in the file.
    pub line: u64,
    #[serde(with = "serde_ts")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: OffsetDateTime,
    pub level: Level,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
    /// The line is not JSON at all (counted apart in an ingest's result); not stored.
    #[serde(skip)]
    pub not_json: bool,
}

impl Rejection {
    /// A rejection whose reason is cut to [`limits::REASON`] characters (bad values are quoted
    /// in part by the parser; this bounds the rest).
    pub fn new(line: u64, reason: String) -> Rejection {
        Rejection {
            line,
            reason: limits::clip(&reason, limits::REASON),
            not_json: false,
        }
    }

    /// A line that does not parse as JSON.
    pub fn not_json(line: u64, error: &serde_json::Error) -> Rejection {
        Rejection {
            not_json: true,
            ..Rejection::new(line, format!("invalid JSON: {error}"))
        }
    }
}

/// Parses and validates one line (`line` is its 1-based number).
///
/// One pass over the text: the five known fields are read straight into `Raw` values borrowed
/// from the line (no allocation unless they hold escapes, or until an owned `String` is needed);
/// only the other fields become `serde_json::Value`s. As in a `serde_json::Map`, the last of
/// duplicate keys wins.
pub fn parse_line(line: u64, text: &str) -> Result<LogEntry, Rejection> {
    let reject = |reason: String| Rejection::new(line, reason);
    let fields = match serde_json::from_str::<Line>(text) {
        Ok(Line::Object(fields)) => fields,
        Ok(Line::Other(kind)) => return Err(reject(format!("not a JSON object (found {kind})"))),
        Err(e) => return Err(Rejection::not_json(line, &e)),
    };
    let timestamp = match fields.timestamp {
        None | Some(Raw::Null) => return Err(reject("missing field `timestamp`".into())),
        Some(Raw::Str(s)) => OffsetDateTime::parse(&s, &Rfc3339)
            .map_err(|_| reject(format!("timestamp {} is not RFC 3339", quote(&s))))?,
        Some(Raw::Number(n)) => epoch(&n).ok_or_else(|| reject(format!("timestamp {n} is not a valid epoch time")))?,
        Some(Raw::Other(kind)) => {
            return Err(reject(format!("timestamp must be a string or a number, not {kind}")));
        }
    };
    let level = match fields.level {
        None | Some(Raw::Null) => return Err(reject("missing field `level`".into())),
        Some(Raw::Str(s)) => Level::parse(&s).ok_or_else(|| reject(format!("unknown level {}", quote(&s))))?,
        Some(other) => return Err(reject(format!("level must be a string, not {}", other.kind()))),
    };
    let message = match fields.message {
        None | Some(Raw::Null) => return Err(reject("missing field `message`".into())),
        Some(Raw::Str(s)) if s.trim().is_empty() => return Err(reject("message is empty".into())),
        Some(Raw::Str(s)) => s.into_owned(),
        Some(other) => return Err(reject(format!("message must be a string, not {}", other.kind()))),
    };
    let optional = |name: &str, value: Option<Raw>| -> Result<Option<String>, Rejection> {
        match value {
            None | Some(Raw::Null) => Ok(None),
            Some(Raw::Str(s)) => Ok(Some(s.into_owned())),
            Some(other) => Err(reject(format!("{name} must be a string, not {}", other.kind()))),
        }
    };
    let service = optional("service", fields.service)?;
    let trace_id = optional("trace_id", fields.trace_id)?;
    Ok(LogEntry {
        line,
        timestamp,
        level,
        message,
        service,
        trace_id,
        attributes: fields.attributes,
    })
}

/// A line's top-level JSON value: an object's fields, or the kind of value it is instead.
enum Line<'a> {
    Object(Fields<'a>),
    Other(&'static str),
}

/// An object's fields: the known ones raw, the rest as attributes.
#[derive(Default)]
struct Fields<'a> {
    timestamp: Option<Raw<'a>>,
    level: Option<Raw<'a>>,
    message: Option<Raw<'a>>,
    service: Option<Raw<'a>>,
    trace_id: Option<Raw<'a>>,
    attributes: Map<String, Value>,
}

/// A known field's value: what validation needs to know of it, strings borrowed when possible.
enum Raw<'a> {
    Null,
    Str(Cow<'a, str>),
    Number(Number),
    /// Anything else, by kind (`a boolean`, `an array`, `an object`).
    Other(&'static str),
}

impl Raw<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Str(_) => "a string",
            Raw::Number(_) => "a number",
            Raw::Other(kind) => kind,
        }
    }
}

/// A field name, borrowed when it has no escapes; the known ones without their text.
enum Key<'a> {
    Timestamp,
    Level,
    Message,
    Service,
    TraceId,
    Other(Cow<'a, str>),
}

impl<'a> Key<'a> {
    fn known(name: &str) -> Option<Key<'a>> {
        Some(match name {
            "timestamp" => Key::Timestamp,
            "level" => Key::Level,
            "message" => Key::Message,
            "service" => Key::Service,
            "trace_id" => Key::TraceId,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::known(s).unwrap_or(Key::Other(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key::known(s).unwrap_or_else(|| Key::Other(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key::known(&s).unwrap_or(Key::Other(Cow::Owned(s))))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Reads any JSON value; `kind` says what a non-object top-level value was, `raw` keeps strings
/// and numbers. Arrays and objects met here are skipped (still checked to be valid JSON).
struct ValueVisitor;

macro_rules! visit_scalars {
    ($out:ty, $wrap:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<$out, E> {
            Ok($wrap(Raw::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<$out, E> {
            Ok($wrap(Raw::Null))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$out, E> {
            Ok($wrap(Raw::Other("a boolean")))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<$out, E> {
            Ok($wrap(Raw::Number(n.into())))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<$out, E> {
            Ok($wrap(Raw::Number(n.into())))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<$out, E> {
            // As `serde_json::Value` does: a non-finite float would be null.
            Ok($wrap(Number::from_f64(n).map_or(Raw::Null, Raw::Number)))
        }
        fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<$out, E> {
            Ok($wrap(Raw::Str(Cow::Borrowed(s))))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<$out, E> {
            Ok($wrap(Raw::Str(Cow::Owned(s.to_owned()))))
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<$out, E> {
            Ok($wrap(Raw::Str(Cow::Owned(s))))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<$out, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($wrap(Raw::Other("an array")))
        }
    };
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Raw<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(Raw<'de>, |r| r);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Other("an object"))
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    visit_scalars!(Line<'de>, |r: Raw| Line::Other(r.kind()));
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line<'de>, A::Error> {
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Timestamp => f.timestamp = Some(map.next_value()?),
                Key::Level => f.level = Some(map.next_value()?),
                Key::Message => f.message = Some(map.next_value()?),
                Key::Service => f.service = Some(map.next_value()?),
                Key::TraceId => f.trace_id = Some(map.next_value()?),
                Key::Other(name) => {
                    let value: Value = map.next_value()?;
                    f.attributes.insert(name.into_owned(), value);
                }
            }
        }
        Ok(Line::Object(f))
    }
}

impl<'de> Deserialize<'de> for Line<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LineVisitor)
    }
}

/// Epoch seconds, or milliseconds when the value is too large to be seconds (after year 5138).
fn epoch(n: &serde_json::Number) -> Option<OffsetDateTime> {
    let v = n.as_f64()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let nanos = if v >= 1e11 { v * 1e6 } else { v * 1e9 } as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_line_keeps_extra_fields_as_attributes() {
        let e = parse_line(
            3,
            r#"{"timestamp":"2026-11-23T10:00:00.5+01:00","level":"WARNING","message":"slow","service":"db","trace_id":"t1","ms":812}"#,
        )
        .unwrap();
        assert_eq!(e.line, 3);
        assert_eq!(e.level, Level::Warn);
        assert_eq!(crate::clock::format(e.timestamp), "2026-11-23T09:00:00.500Z");
        assert_eq!((e.service.as_deref(), e.trace_id.as_deref()), (Some("db"), Some("t1")));
        assert_eq!(e.attributes["ms"], 812);
    }

    #[test]
    fn epoch_seconds_and_milliseconds_are_both_understood() {
        let s = parse_line(1, r#"{"timestamp":1795428002,"level":"info","message":"a"}"#).unwrap();
        let ms = parse_line(1, r#"{"timestamp":1795428002500,"level":"info","message":"a"}"#).unwrap();
        assert_eq!(crate::clock::format(s.timestamp), "2026-11-23T10:00:02.000Z");
        assert_eq!(crate::clock::format(ms.timestamp), "2026-11-23T10:00:02.500Z");
    }

    #[test]
    fn escapes_duplicates_and_nested_values_read_as_a_json_map_would() {
        let e = parse_line(
            1,
            r#"{"level":"debug","time\u0073tamp":1795428002,"message":"caf\u00e9 \"q\"","level":"ERROR","x":{"a":[1,{"b":null}]},"x":2.5,"service":null,"tr\u0061ce_id":"t"}"#,
        )
        .unwrap();
        assert_eq!(e.level, Level::Error, "the last of duplicate keys wins");
        assert_eq!(crate::clock::format(e.timestamp), "2026-11-23T10:00:02.000Z");
        assert_eq!(e.message, "caf\u{e9} \"q\"");
        assert_eq!((e.service, e.trace_id.as_deref()), (None, Some("t")));
        assert_eq!(Value::Object(e.attributes), serde_json::json!({"x": 2.5}));
        let nested = parse_line(
            2,
            r#"{"timestamp":1,"level":"info","message":"m","a":{"b":[1,"2",{"c":true}]}}"#,
        );
        assert_eq!(
            nested.unwrap().attributes["a"],
            serde_json::json!({"b": [1, "2", {"c": true}]})
        );
    }

    #[test]
    fn what_is_not_an_object_is_named() {
        for (text, kind) in [
            ("null", "null"),
            ("true", "a boolean"),
            ("12.5", "a number"),
            (r#""text""#, "a string"),
            ("[{}]", "an array"),
        ] {
            let r = parse_line(1, text).unwrap_err();
            assert_eq!(r.reason, format!("not a JSON object (found {kind})"));
        }
        let typed = [
            (
                r#"{"timestamp":true,"level":"info","message":"a"}"#,
                "timestamp must be a string or a number, not a boolean",
            ),
            (
                r#"{"timestamp":1,"level":["info"],"message":"a"}"#,
                "level must be a string, not an array",
            ),
            (
                r#"{"timestamp":1,"level":"info","message":{"a":1}}"#,
                "message must be a string, not an object",
            ),
            (
                r#"{"timestamp":1,"level":"info","message":"a","trace_id":2}"#,
                "trace_id must be a string, not a number",
            ),
            (
                r#"{"timestamp":1,"level":"info","message":"a"} x"#,
                "invalid JSON: trailing characters at line 1 column 46",
            ),
            (
                r#"{"timestamp":1,"level":"info","message":"a""#,
                "invalid JSON: EOF while parsing an object at line 1 column 43",
            ),
        ];
        for (text, reason) in typed {
            assert_eq!(parse_line(1, text).unwrap_err().reason, reason, "{text}");
        }
    }

    /// The straightforward version (a `serde_json::Map`, fields removed from it), kept as the
    /// reference the one-pass parser must agree with.
    fn reference(line: u64, text: &str) -> Result<LogEntry, Rejection> {
        let reject = |reason: String| Rejection::new(line, reason);
        let kind = |v: &Value| match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        let mut fields: Map<String, Value> = match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            Ok(other) => return Err(reject(format!("not a JSON object (found {})", kind(&other)))),
            Err(e) => return Err(Rejection::not_json(line, &e)),
        };
        let timestamp = match fields.remove("timestamp") {
            None | Some(Value::Null) => return Err(reject("missing field `timestamp`".into())),
            Some(Value::String(s)) => OffsetDateTime::parse(&s, &Rfc3339)
                .map_err(|_| reject(format!("timestamp {} is not RFC 3339", quote(&s))))?,
            Some(Value::Number(n)) => {
                epoch(&n).ok_or_else(|| reject(format!("timestamp {n} is not a valid epoch time")))?
            }
            Some(other) => {
                return Err(reject(format!(
                    "timestamp must be a string or a number, not {}",
                    kind(&other)
                )));
            }
        };
        let level = match fields.remove("level") {
            None | Some(Value::Null) => return Err(reject("missing field `level`".into())),
            Some(Value::String(s)) => {
                let l = match s.to_ascii_lowercase().as_str() {
                    "trace" => Some(Level::Trace),
                    "debug" => Some(Level::Debug),
                    "info" => Some(Level::Info),
                    "warn" | "warning" => Some(Level::Warn),
                    "error" => Some(Level::Error),
                    "fatal" | "critical" => Some(Level::Fatal),
                    _ => None,
                };
                l.ok_or_else(|| reject(format!("unknown level {}", quote(&s))))?
            }
            Some(other) => return Err(reject(format!("level must be a string, not {}", kind(&other)))),
        };
        let message = match fields.remove("message") {
            None | Some(Value::Null) => return Err(reject("missing field `message`".into())),
            Some(Value::String(s)) if s.trim().is_empty() => return Err(reject("message is empty".into())),
            Some(Value::String(s)) => s,
            Some(other) => return Err(reject(format!("message must be a string, not {}", kind(&other)))),
        };
        let mut optional = |name: &str| -> Result<Option<String>, Rejection> {
            match fields.remove(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(reject(format!("{name} must be a string, not {}", kind(&other)))),
            }
        };
        let service = optional("service")?;
        let trace_id = optional("trace_id")?;
        Ok(LogEntry {
            line,
            timestamp,
            level,
            message,
            service,
            trace_id,
            attributes: fields,
        })
    }

    #[test]
    fn the_one_pass_parser_agrees_with_the_reference_on_odd_lines() {
        let lines = [
            r#"{"timestamp":"2026-11-23T10:00:00Z","level":"Info","message":"a","service":"s","trace_id":"t","n":1}"#,
            r#"{"timestamp":"2026-11-23T10:00:00Z","level":"info","message":"a","level":"nope"}"#,
            r#"{"timestamp":"2026-11-23T10:00:00Z","level":"nope","message":"a","level":"WARN"}"#,
            r#"{"timestamp":null,"level":"info","message":"a"}"#,
            r#"{"timestamp":1.5e9,"level":"info","message":"a"}"#,
            r#"{"timestamp":-1.5,"level":"info","message":"a"}"#,
            r#"{"timestamp":18446744073709551615,"level":"info","message":"a"}"#,
            r#"{"timestamp":1e400,"level":"info","message":"a"}"#,
            r#"{"timestamp":"2026-11-23T10:00:00\u005a","level":"in\u0066o","message":"\t\n"}"#,
            r#"{"timestamp":1,"level":"info","message":"\ud83d\ude80","m\u00e9ta":{"k":[]}}"#,
            r#"{"timestamp":1,"level":"info","message":"a","service":{},"trace_id":[]}"#,
            r#"{"timestamp":1,"level":"info","message":"a","trace_id":false}"#,
            r#"{"timestamp":1,"level":"info","message":"a","x":"\ud800"}"#,
            r#"{"timestamp":1,"level":"info","message":"a",}"#,
            r#"{"timestamp":1,"level":"info","message":"a"}}"#,
            r#"{"timestamp":1 "level":"info"}"#,
            r#"{"level":"info","message":"a","timestamp":"2026-02-30T00:00:00Z"}"#,
            r#"{}"#,
            r#"  {"timestamp":1,"level":"\u0130nfo","message":"a"}  "#,
            r#"{"timestamp":1,"level":"info","message":"a","deep":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}"#,
            "",
            "\u{feff}{}",
        ];
        for text in lines {
            assert_eq!(parse_line(4, text), reference(4, text), "{text}");
        }
    }

    #[test]
    fn every_kind_of_bad_line_is_rejected_with_its_reason() {
        let cases = [
            ("not json", "invalid JSON"),
            ("[1,2]", "not a JSON object (found an array)"),
            (r#"{"level":"info","message":"a"}"#, "missing field `timestamp`"),
            (
                r#"{"timestamp":"yesterday","level":"info","message":"a"}"#,
                "is not RFC 3339",
            ),
            (r#"{"timestamp":-5,"level":"info","message":"a"}"#, "not a valid epoch"),
            (
                r#"{"timestamp":"2026-11-23T10:00:00Z","level":"loud","message":"a"}"#,
                "unknown level",
            ),
            (
                r#"{"timestamp":"2026-11-23T10:00:00Z","message":"a"}"#,
                "missing field `level`",
            ),
            (
                r#"{"timestamp":"2026-11-23T10:00:00Z","level":"info","message":" "}"#,
                "message is empty",
            ),
            (
                r#"{"timestamp":"2026-11-23T10:00:00Z","level":"info"}"#,
                "missing field `message`",
            ),
            (
                r#"{"timestamp":"2026-11-23T10:00:00Z","level":"info","message":"a","service":7}"#,
                "service must be a string",
            ),
        ];
        for (text, reason) in cases {
            let r = parse_line(9, text).unwrap_err();
            assert_eq!(r.line, 9);
            assert!(r.reason.contains(reason), "{text}: {}", r.reason);
        }
    }
}
