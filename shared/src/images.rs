//! What an image job produces: per-image measurements, per-store errors, and the job's summary.
//!
//! The worker records one [`PartResult`] per part (see `store::parts`); when the last part is in,
//! [`summarize`] turns them into the job's result and, if any store failed, its error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One measured image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResult {
    pub store_id: String,
    pub url: String,
    pub width: u32,
    pub height: u32,
    /// `2 * (width + height)`.
    pub perimeter: u64,
    /// Body bytes fetched to find the dimensions.
    pub bytes_read: u64,
}

impl ImageResult {
    pub fn new(store_id: &str, url: &str, width: u32, height: u32, bytes_read: u64) -> Self {
        ImageResult {
            store_id: store_id.to_owned(),
            url: url.to_owned(),
            width,
            height,
            perimeter: perimeter(width, height),
            bytes_read,
        }
    }
}

/// Retail Pulse's measure of an image.
pub fn perimeter(width: u32, height: u32) -> u64 {
    2 * (u64::from(width) + u64::from(height))
}

/// Why one image of a store's visit failed (an unknown store id fails each of its images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreError {
    pub store_id: String,
    #[serde(default)]
    pub url: Option<String>,
    pub error: String,
}

/// The outcome of one part of an image job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartResult {
    pub part: u32,
    pub images: Vec<ImageResult>,
    pub errors: Vec<StoreError>,
}

/// The job's result and, if any store failed, its error text. Errors are reported once per store
/// (its first error in payload order), as Retail Pulse's `GET /api/status` lists them.
pub fn summarize(parts: &[PartResult]) -> (Value, Option<String>) {
    let mut parts: Vec<&PartResult> = parts.iter().collect();
    parts.sort_by_key(|p| p.part);
    let images_ok: usize = parts.iter().map(|p| p.images.len()).sum();
    let images_failed: usize = parts.iter().map(|p| p.errors.len()).sum();
    let bytes_read: u64 = parts.iter().flat_map(|p| &p.images).map(|i| i.bytes_read).sum();
    let mut stores = BTreeMap::new();
    for image in parts.iter().flat_map(|p| &p.images) {
        stores.entry(image.store_id.as_str()).or_insert(None::<&str>);
    }
    let mut errors: Vec<Value> = Vec::new();
    for e in parts.iter().flat_map(|p| &p.errors) {
        let slot = stores.entry(e.store_id.as_str()).or_insert(None);
        if slot.is_none() {
            *slot = Some(e.error.as_str());
            errors.push(json!({"store_id": e.store_id, "error": e.error}));
        }
    }
    let result = json!({
        "images_ok": images_ok,
        "images_failed": images_failed,
        "stores": stores.len(),
        "bytes_read": bytes_read,
        "parts": parts.len(),
        "errors": errors,
    });
    let error = match errors.len() {
        0 => None,
        n => Some(format!(
            "{n} store{} failed: {}",
            if n == 1 { "" } else { "s" },
            errors
                .iter()
                .take(5)
                .map(|e| format!(
                    "{} ({})",
                    e["store_id"].as_str().unwrap_or(""),
                    e["error"].as_str().unwrap_or("")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    };
    (result, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(store: &str, url: Option<&str>, error: &str) -> StoreError {
        StoreError {
            store_id: store.into(),
            url: url.map(Into::into),
            error: error.into(),
        }
    }

    #[test]
    fn perimeter_is_twice_the_sum_of_the_sides() {
        assert_eq!(perimeter(640, 480), 2240);
        assert_eq!(perimeter(u32::MAX, u32::MAX), 4 * u64::from(u32::MAX));
    }

    #[test]
    fn a_clean_job_has_no_error() {
        let parts = vec![PartResult {
            part: 0,
            images: vec![ImageResult::new("S1", "http://x/a.png", 10, 20, 33)],
            errors: vec![],
        }];
        let (result, error) = summarize(&parts);
        assert_eq!(error, None);
        assert_eq!(result["images_ok"], 1);
        assert_eq!(result["bytes_read"], 33);
        assert_eq!(result["stores"], 1);
        assert_eq!(result["errors"], json!([]));
    }

    #[test]
    fn errors_are_reported_once_per_store_in_part_order_and_results_are_kept() {
        let parts = vec![
            PartResult {
                part: 1,
                images: vec![ImageResult::new("S1", "http://x/b.png", 1, 1, 10)],
                errors: vec![err("S2", Some("http://x/404"), "HTTP 404 Not Found")],
            },
            PartResult {
                part: 0,
                images: vec![],
                errors: vec![
                    err("S9", None, "unknown store_id S9"),
                    err("S2", Some("http://x/slow"), "timed out"),
                ],
            },
        ];
        let (result, error) = summarize(&parts);
        assert_eq!(
            result["errors"],
            json!([
                {"store_id": "S9", "error": "unknown store_id S9"},
                {"store_id": "S2", "error": "timed out"},
            ])
        );
        assert_eq!(result["images_ok"], 1);
        assert_eq!(result["images_failed"], 3);
        assert_eq!(result["stores"], 3);
        assert_eq!(
            error.as_deref(),
            Some("2 stores failed: S9 (unknown store_id S9); S2 (timed out)")
        );
    }
}
