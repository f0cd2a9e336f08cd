//! How big anything from outside may be, checked at the edge, and how long the texts we store
//! may get. DynamoDB refuses items over 400 KB: every string that reaches an item has a limit
//! here, so no client input can make a job, a part or an entry unstorable (and the job stuck).
//!
//! | what | limit |
//! |---|---|
//! | store id (Retail Pulse) | 64 characters |
//! | image URL | 2,048 characters |
//! | visit time | 64 characters |
//! | asset id (archive) | 256 characters |
//! | S3 bucket name | 63 characters |
//! | S3 key (archive source, ingest object) | 1,024 bytes (S3's own limit) |
//! | file name (uploads) | 255 characters |
//! | `Idempotency-Key` header | 255 characters |
//! | JSONL line | 1 MiB read (`INGEST_MAX_LINE_BYTES`), 300 KiB stored |
//! | stored error of a job | 300 characters |
//! | rejection reason of a line | 200 characters, a bad value quoted in at most 40 |
//! | timeline message | 200 characters; 100 entries (the first and the last 99), the rest counted |
//! | error in an API answer | 500 characters |

use crate::error::{Error, invalid};

pub const STORE_ID: usize = 64;
pub const IMAGE_URL: usize = 2048;
pub const VISIT_TIME: usize = 64;
pub const ASSET_ID: usize = 256;
pub const BUCKET: usize = 63;
pub const S3_KEY: usize = 1024;
pub const FILE_NAME: usize = 255;
pub const IDEMPOTENCY_KEY: usize = 255;
/// Longest JSONL line the ingest reads; a longer one is a rejected line, skipped unbuffered.
pub const LINE_READ: usize = 1024 * 1024;
/// Longest JSONL line the ingest stores (an entry item must stay well under 400 KB).
pub const LINE_STORED: usize = 300 * 1024;
pub const JOB_ERROR: usize = 300;
pub const REASON: usize = 200;
pub const QUOTED: usize = 40;
pub const TIMELINE_MESSAGE: usize = 200;
/// Longest error text an API answer carries (parser messages quote the offending value whole).
pub const RESPONSE_ERROR: usize = 500;

/// Refuses `value` longer than `max` characters, naming the field.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), Error> {
    let n = value.chars().count();
    if n > max {
        Err(invalid(
            field,
            format!("is {n} characters long; at most {max} are allowed"),
        ))
    } else {
        Ok(())
    }
}

/// Refuses `value` longer than `max` bytes (S3 keys count bytes), naming the field.
pub fn check_bytes(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.len() > max {
        Err(invalid(
            field,
            format!("is {} bytes long; at most {max} are allowed", value.len()),
        ))
    } else {
        Ok(())
    }
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text[at..].chars().nth(1).is_some() => format!("{}…", &text[..at]),
        _ => text.to_string(),
    }
}

/// A value quoted for a message: `"abc"`, or `"abcdef…" (5000 characters)` when long.
pub fn quote(value: &str) -> String {
    let n = value.chars().count();
    if n <= QUOTED {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(QUOTED).collect();
        format!("{:?}… ({n} characters)", head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_texts_and_cuts_long_ones_on_char_boundaries() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("ééééé", 3).chars().count(), 3);
        assert_eq!(clip("", 3), "");
    }

    #[test]
    fn quote_shows_the_start_and_the_length_of_long_values() {
        assert_eq!(quote("INFO"), "\"INFO\"");
        let q = quote(&"x".repeat(5000));
        assert!(q.len() < 70 && q.ends_with("(5000 characters)"), "{q}");
    }

    #[test]
    fn lengths_are_checked_naming_the_field() {
        assert!(check_len("payload.asset_id", "abc", 3).is_ok());
        let e = check_len("payload.asset_id", "abcd", 3).unwrap_err().to_string();
        assert!(e.starts_with("payload.asset_id: is 4 characters"), "{e}");
        assert!(check_bytes("key", "é", 1).is_err());
    }
}
