//! Event Horizon's log entry: one JSON object per line of a `.jsonl` file, validated.
//!
//! Required: `timestamp` (RFC 3339 text, or epoch seconds or milliseconds as a number), `level`
//! (trace, debug, info, warn/warning, error, fatal/critical; any case) and a non-empty `message`.
//! Optional: `service`, `trace_id` (strings). Every other field is kept in `attributes`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::serde_ts;

/// Normalized severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" => Level::Error,
            "fatal" | "critical" => Level::Fatal,
            _ => return None,
        })
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
pub struct LogEntry {
    /// 1-based line number in the file.
    pub line: u64,
    #[serde(with = "serde_ts")]
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
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

/// Parses and validates one line (`line` is its 1-based number).
pub fn parse_line(line: u64, text: &str) -> Result<LogEntry, Rejection> {
    let reject = |reason: String| Rejection { line, reason };
    let mut fields: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        Ok(other) => return Err(reject(format!("not a JSON object (found {})", kind_of(&other)))),
        Err(e) => return Err(reject(format!("invalid JSON: {e}"))),
    };
    let timestamp = match fields.remove("timestamp") {
        None | Some(Value::Null) => return Err(reject("missing field `timestamp`".into())),
        Some(Value::String(s)) => {
            OffsetDateTime::parse(&s, &Rfc3339).map_err(|_| reject(format!("timestamp {s:?} is not RFC 3339")))?
        }
        Some(Value::Number(n)) => {
            epoch(&n).ok_or_else(|| reject(format!("timestamp {n} is not a valid epoch time")))?
        }
        Some(other) => {
            return Err(reject(format!(
                "timestamp must be a string or a number, not {}",
                kind_of(&other)
            )));
        }
    };
    let level = match fields.remove("level") {
        None | Some(Value::Null) => return Err(reject("missing field `level`".into())),
        Some(Value::String(s)) => Level::parse(&s).ok_or_else(|| reject(format!("unknown level {s:?}")))?,
        Some(other) => return Err(reject(format!("level must be a string, not {}", kind_of(&other)))),
    };
    let message = match fields.remove("message") {
        None | Some(Value::Null) => return Err(reject("missing field `message`".into())),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(reject("message is empty".into())),
        Some(Value::String(s)) => s,
        Some(other) => return Err(reject(format!("message must be a string, not {}", kind_of(&other)))),
    };
    let mut optional = |name: &str| -> Result<Option<String>, Rejection> {
        match fields.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(reject(format!("{name} must be a string, not {}", kind_of(&other)))),
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

/// Epoch seconds, or milliseconds when the value is too large to be seconds (after year 5138).
fn epoch(n: &serde_json::Number) -> Option<OffsetDateTime> {
    let v = n.as_f64()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let nanos = if v >= 1e11 { v * 1e6 } else { v * 1e9 } as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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
