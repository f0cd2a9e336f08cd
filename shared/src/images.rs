//! What an image job produces: per-image measurements, per-store errors, and the job's summary.
//!
//! The worker records one [`PartResult`] per part (see `store::parts`); when the last part is in,
//! [`summarize`] turns them into the job's result and, if any store failed, its error.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::job::{ImageJobResult, ListedStoreError};

/// One measured image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Checks an image URL a client submits: http(s), with a host, without credentials
/// (`user:password@`, which the worker would send as a Basic authorization). `Err` says why in
/// words that quote no part of the URL. The worker checks again when it fetches, addresses and
/// ports included (`worker::image::guard`).
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let parsed = url::Url::parse(url).map_err(|_| "must be an http(s) URL")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http(s) URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials (user:password@)");
    }
    Ok(())
}

/// Retail Pulse's measure of an image.
pub fn perimeter(width: u32, height: u32) -> u64 {
    2 * (u64::from(width) + u64::from(height))
}

/// Why one image of a store's visit failed (an unknown store id fails each of its images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Store errors kept on the job item (it must stay under DynamoDB's 400 KB); the full list is
/// in the parts ([`store_errors`]).
pub const MAX_LISTED_ERRORS: usize = 100;
/// Longest error text kept on the job item.
const MAX_ERROR_CHARS: usize = 200;

/// Each failed store once, with its first error in payload order, as Retail Pulse's
/// `GET /api/status` lists them: `[{"store_id", "error"}]`.
pub fn store_errors(parts: &[PartResult]) -> Vec<ListedStoreError> {
    let mut parts: Vec<&PartResult> = parts.iter().collect();
    parts.sort_by_key(|p| p.part);
    let mut seen = std::collections::HashSet::new();
    parts
        .iter()
        .flat_map(|p| &p.errors)
        .filter(|e| seen.insert(e.store_id.as_str()))
        .map(|e| ListedStoreError {
            store_id: e.store_id.clone(),
            error: e.error.clone(),
        })
        .collect()
}

/// The job's result and, if any store failed, its error text. The result lists at most
/// [`MAX_LISTED_ERRORS`] stores (`errors_truncated` says when there are more).
pub fn summarize(parts: &[PartResult]) -> (ImageJobResult, Option<String>) {
    let count = |n: usize| n as u64;
    let stores: BTreeSet<&str> = parts
        .iter()
        .flat_map(|p| {
            p.images
                .iter()
                .map(|i| i.store_id.as_str())
                .chain(p.errors.iter().map(|e| e.store_id.as_str()))
        })
        .collect();
    let errors = store_errors(parts);
    let listed: Vec<ListedStoreError> = errors
        .iter()
        .take(MAX_LISTED_ERRORS)
        .map(|e| ListedStoreError {
            store_id: e.store_id.clone(),
            error: e.error.chars().take(MAX_ERROR_CHARS).collect(),
        })
        .collect();
    let error = match errors.len() {
        0 => None,
        n => Some(format!(
            "{n} store{} failed: {}{}",
            if n == 1 { "" } else { "s" },
            listed
                .iter()
                .take(5)
                .map(|e| format!("{} ({})", e.store_id, e.error))
                .collect::<Vec<_>>()
                .join("; "),
            if n > 5 { "; ..." } else { "" }
        )),
    };
    let result = ImageJobResult {
        images_ok: count(parts.iter().map(|p| p.images.len()).sum()),
        images_failed: count(parts.iter().map(|p| p.errors.len()).sum()),
        stores: count(stores.len()),
        stores_failed: count(errors.len()),
        bytes_read: parts.iter().flat_map(|p| &p.images).map(|i| i.bytes_read).sum(),
        parts: count(parts.len()),
        errors_truncated: errors.len() > listed.len(),
        errors: listed,
    };
    (result, error)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn err(store: &str, url: Option<&str>, error: &str) -> StoreError {
        StoreError {
            store_id: store.into(),
            url: url.map(Into::into),
            error: error.into(),
        }
    }

    #[test]
    fn submitted_urls_are_http_with_a_host_and_no_credentials() {
        for ok in [
            "http://a/b.jpg",
            "HTTPS://cdn.example.com:8443/shelf.png?v=1",
            "http://[2001:db8::1]/a.png",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("ftp://a/b.jpg", "must be an http(s) URL"),
            ("http://", "must be an http(s) URL"),
            ("shelf.png", "must be an http(s) URL"),
            (
                "http://alice:s3cret@cdn.example.com/a.png",
                "must not carry credentials (user:password@)",
            ),
            (
                "https://alice@cdn.example.com/a.png",
                "must not carry credentials (user:password@)",
            ),
            (
                "http://:s3cret@cdn.example.com/a.png",
                "must not carry credentials (user:password@)",
            ),
        ] {
            assert_eq!(check_url(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn a_visit_with_credentials_in_an_image_url_is_refused_naming_the_url_field_only() {
        let payload: crate::job::ImagePayload = serde_json::from_value(json!({"count": 1, "visits": [{
            "store_id": "S1",
            "image_url": ["http://a/b.jpg", "http://alice:s3cret@a/c.jpg"],
            "visit_time": "t",
        }]}))
        .unwrap();
        let err = payload.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "payload.visits[0].image_url[1]: must not carry credentials (user:password@)"
        );
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
        let result = serde_json::to_value(&result).unwrap();
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
        let result = serde_json::to_value(&result).unwrap();
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
        assert_eq!(result["errors_truncated"], false);
    }

    #[test]
    fn the_job_item_lists_a_bounded_number_of_store_errors() {
        let long = "x".repeat(5000);
        let parts = vec![PartResult {
            part: 0,
            images: vec![],
            errors: (0..1500)
                .map(|i| err(&format!("S{i:06}"), Some("http://x/a"), &long))
                .collect(),
        }];
        let (result, error) = summarize(&parts);
        let result = serde_json::to_value(&result).unwrap();
        assert_eq!(result["errors"].as_array().unwrap().len(), MAX_LISTED_ERRORS);
        assert_eq!(result["errors_truncated"], true);
        assert_eq!(result["stores_failed"], 1500);
        assert!(result.to_string().len() < 30_000, "{} bytes", result.to_string().len());
        assert!(error.unwrap().ends_with("; ..."));
        assert_eq!(store_errors(&parts).len(), 1500);
    }
}
