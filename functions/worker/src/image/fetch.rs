//! Fetching just enough of an image to know its size.
//!
//! A `Range` request asks for the first [`FIRST_WINDOW`] bytes; if the header is not complete
//! there (a JPEG with a big EXIF block), the next window is 8x larger, up to `header_limit`. A
//! server that ignores `Range` (200 instead of 206) is read as a stream that stops as soon as the
//! dimensions are known. The dimensions come from the header alone (`imagesize`: JPEG, PNG, GIF,
//! WebP, BMP, TIFF, ICO, AVIF/HEIF and more); nothing is decoded.
//!
//! Timeouts, connection failures, 408/429 and 5xx are transient and retried with backoff; a 4xx,
//! a body that is not an image, one past `max_bytes`, or a refused URL (see [`super::guard`])
//! is permanent.
//!
//! Error texts end up on jobs, where the client reads them: they are status codes and our own
//! words, never what the server sent (bodies, headers, reason phrases, certificate names); the
//! full error goes to the debug log.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use reqwest::{StatusCode, Url};
use tokio::sync::Semaphore;

use shared::retry::Backoff;

use super::guard::{Guard, GuardedResolver, Ports, Refused, Unresolved};

/// The first `Range` asked for: enough for every common format but JPEGs with a large EXIF block.
pub const FIRST_WINDOW: u64 = 16 * 1024;
/// Each further window is this many times the bytes already read.
const GROWTH: u64 = 8;

/// Limits and knobs of the fetcher (environment names in `from_env`).
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Whole request, body included (`IMAGE_TIMEOUT_MS`, 10 s).
    pub timeout: Duration,
    /// TCP + TLS connect (`IMAGE_CONNECT_TIMEOUT_MS`, 3 s).
    pub connect_timeout: Duration,
    /// Refuse images larger than this (`IMAGE_MAX_BYTES`, 25 MiB).
    pub max_bytes: u64,
    /// Give up looking for the dimensions after this many bytes (`IMAGE_HEADER_LIMIT`, 2 MiB).
    pub header_limit: u64,
    /// Tries per image for transient failures (`IMAGE_FETCH_ATTEMPTS`, 3).
    pub attempts: u32,
    /// Images fetched at once per invocation (`IMAGE_CONCURRENCY`, 16).
    pub concurrency: usize,
    /// First retry delay; doubled each time (`IMAGE_RETRY_BASE_MS`, 200 ms).
    pub retry_base: Duration,
    /// Hosts allowed although not public (`IMAGE_ALLOW_HOSTS`, none).
    pub allow_hosts: String,
    /// Ports image URLs may use (`IMAGE_ALLOW_PORTS`, 80 and 443).
    pub allow_ports: Ports,
    /// All the time one image may take, windows and retries included (`IMAGE_BUDGET_MS`, 25 s).
    pub budget: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_bytes: 25 * 1024 * 1024,
            header_limit: 2 * 1024 * 1024,
            attempts: 3,
            concurrency: 16,
            retry_base: Duration::from_millis(200),
            allow_hosts: String::new(),
            allow_ports: Ports::default(),
            budget: Duration::from_secs(25),
        }
    }
}

impl FetchConfig {
    pub fn from_env() -> shared::Result<Self> {
        use shared::settings::optional;
        let d = FetchConfig::default();
        Ok(FetchConfig {
            timeout: Duration::from_millis(optional("IMAGE_TIMEOUT_MS", d.timeout.as_millis() as u64)?),
            connect_timeout: Duration::from_millis(optional(
                "IMAGE_CONNECT_TIMEOUT_MS",
                d.connect_timeout.as_millis() as u64,
            )?),
            max_bytes: optional("IMAGE_MAX_BYTES", d.max_bytes)?,
            header_limit: optional("IMAGE_HEADER_LIMIT", d.header_limit)?.max(FIRST_WINDOW),
            attempts: optional("IMAGE_FETCH_ATTEMPTS", d.attempts)?.max(1),
            concurrency: optional("IMAGE_CONCURRENCY", d.concurrency)?.max(1),
            retry_base: Duration::from_millis(optional("IMAGE_RETRY_BASE_MS", d.retry_base.as_millis() as u64)?),
            allow_hosts: std::env::var("IMAGE_ALLOW_HOSTS").unwrap_or_default(),
            allow_ports: match std::env::var("IMAGE_ALLOW_PORTS") {
                Ok(v) if !v.trim().is_empty() => v.parse().map_err(|e| {
                    shared::Error::Internal(format!("environment variable IMAGE_ALLOW_PORTS={v:?}: {e}"))
                })?,
                _ => d.allow_ports,
            },
            budget: Duration::from_millis(optional("IMAGE_BUDGET_MS", d.budget.as_millis() as u64)?),
        })
    }
}

/// An image's size and what it took to learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
    /// Body bytes received, over every request.
    pub bytes_read: u64,
    /// HTTP requests made (windows and retries).
    pub requests: u32,
}

/// Why an image could not be measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Worth another try: timeouts, resets, 408, 429, 5xx.
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way again: 4xx, not an image, too large, refused address.
    #[error("{0}")]
    Permanent(String),
}

impl FetchError {
    pub fn is_transient(&self) -> bool {
        matches!(self, FetchError::Transient(_))
    }
}

/// The HTTP client for image URLs: pooled connections, guarded addresses, bounded concurrency.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Arc<Guard>,
    permits: Arc<Semaphore>,
    config: FetchConfig,
}

impl Fetcher {
    pub fn new(config: FetchConfig) -> Result<Self, reqwest::Error> {
        let guard = Arc::new(Guard::new(&config.allow_hosts).with_ports(config.allow_ports.clone()));
        let client = reqwest::Client::builder()
            .no_proxy() // a proxy would resolve names itself, around the guard
            .dns_resolver(Arc::new(GuardedResolver { guard: guard.clone() }))
            .redirect(guard.redirect_policy())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.concurrency)
            .user_agent(concat!("serverless-jobs-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Fetcher {
            client,
            guard,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            config,
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// The image's width and height from its header, retrying transient failures with backoff.
    pub async fn dimensions(&self, url: &str) -> Result<Dimensions, FetchError> {
        let url = Url::parse(url).map_err(|e| FetchError::Permanent(format!("invalid URL: {e}")))?;
        self.guard
            .check_url(&url)
            .map_err(|r| FetchError::Permanent(r.to_string()))?;
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let budget = self.config.budget;
        tokio::time::timeout(budget, self.with_retries(&url))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Transient(format!(
                    "timed out after {} s in all",
                    budget.as_secs_f32()
                )))
            })
    }

    async fn with_retries(&self, url: &Url) -> Result<Dimensions, FetchError> {
        let backoff = Backoff::new(self.config.attempts, self.config.retry_base, self.config.retry_base * 8);
        backoff
            .retry("image fetch", |_| self.probe(url), FetchError::is_transient)
            .await
            .map_err(|e| match e {
                FetchError::Transient(e) if backoff.attempts > 1 => {
                    FetchError::Transient(format!("{e} (after {} attempts)", backoff.attempts))
                }
                other => other,
            })
    }

    /// One try: growing `Range` windows, or an early-stopped stream when `Range` is ignored.
    async fn probe(&self, url: &Url) -> Result<Dimensions, FetchError> {
        let mut buf: Vec<u8> = Vec::new();
        let mut read = Read::default();
        loop {
            let start = buf.len() as u64;
            let header_limit = self.config.header_limit.max(FIRST_WINDOW);
            let end = (start + (start * GROWTH).max(FIRST_WINDOW)).min(header_limit) - 1;
            let (ranged, complete) = self.read_range(url, start, end, &mut buf, &mut read).await?;
            match parse(&buf) {
                Parsed::Found(width, height) => return Ok(read.dimensions(width, height)),
                Parsed::NotImage => return Err(not_an_image(&buf)),
                Parsed::TiffDirectoryAt(offset) if ranged && offset >= buf.len() as u64 => {
                    // A TIFF's directory may sit anywhere, often after the pixels: fetch just it.
                    if offset > self.config.max_bytes {
                        return Err(not_an_image(&buf));
                    }
                    let mut directory = Vec::new();
                    self.read_range(url, offset, offset + 4095, &mut directory, &mut read)
                        .await?;
                    return match tiff_directory_dimensions(buf[0] == b'I', &directory) {
                        Some((width, height)) => Ok(read.dimensions(width, height)),
                        None => Err(FetchError::Permanent("TIFF directory without width and height".into())),
                    };
                }
                // The whole body (or file) is in and still no dimensions.
                _ if complete => return Err(not_an_image(&buf)),
                _ if buf.len() as u64 >= header_limit => return Err(no_header(header_limit)),
                _ => {} // next, larger window
            }
        }
    }

    /// Reads bytes `start..=end` into `buf` with a `Range` request. Returns whether the server
    /// honoured the range, and whether the file is all in. When the range is ignored (200, or a
    /// 206 from byte 0) the body is read as a stream from byte 0 that stops as soon as the bytes
    /// answer the question, never keeping more than `header_limit` bytes.
    async fn read_range(
        &self,
        url: &Url,
        start: u64,
        end: u64,
        buf: &mut Vec<u8>,
        read: &mut Read,
    ) -> Result<(bool, bool), FetchError> {
        let response = self
            .client
            .get(url.clone())
            .header(RANGE, format!("bytes={start}-{end}"))
            .send()
            .await
            .map_err(classify)?;
        read.requests += 1;
        let mut total = None;
        let ranged = match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let (first, size) = content_range(&response)
                    .ok_or_else(|| FetchError::Permanent("206 without a valid Content-Range: bytes a-b/size".into()))?;
                if let Some(size) = size
                    && size > self.config.max_bytes
                {
                    return Err(too_large(size, self.config.max_bytes));
                }
                total = size;
                if first == start {
                    true
                } else if first == 0 {
                    buf.clear(); // the server sent the file from its start: read it as a stream
                    false
                } else {
                    return Err(FetchError::Permanent(
                        "the server answered another range than the one asked for".into(),
                    ));
                }
            }
            StatusCode::OK => {
                if let Some(len) = header_u64(&response, CONTENT_LENGTH)
                    && len > self.config.max_bytes
                {
                    return Err(too_large(len, self.config.max_bytes));
                }
                buf.clear(); // the server starts from byte 0 again
                false
            }
            StatusCode::RANGE_NOT_SATISFIABLE if start == 0 => {
                return Err(FetchError::Permanent("empty body: not an image".into()));
            }
            StatusCode::RANGE_NOT_SATISFIABLE => return Ok((true, true)),
            s if s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                return Err(FetchError::Transient(format!("HTTP {s}")));
            }
            s => return Err(FetchError::Permanent(format!("HTTP {s}"))),
        };
        let wanted = end - start + 1;
        let header_limit = self.config.header_limit.max(FIRST_WINDOW);
        let all_in = |received: u64| total.map(|t| start + received >= t);
        let mut received = 0u64;
        let mut parsed_at = 0usize;
        let mut limit = header_limit;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            read.bytes += chunk.len() as u64;
            received += chunk.len() as u64;
            buf.extend_from_slice(&chunk);
            if ranged {
                if received >= wanted {
                    // A server sending more than asked is not read further.
                    return Ok((true, all_in(received).unwrap_or(false)));
                }
                continue;
            }
            // Range ignored: stop as soon as the bytes so far answer the question (parsing again
            // only every few KiB, so a header of many tiny segments costs little).
            if parsed_at == 0 || buf.len() - parsed_at >= PARSE_STEP {
                parsed_at = buf.len();
                limit = match parse(buf) {
                    Parsed::Found(..) | Parsed::NotImage => return Ok((false, false)),
                    Parsed::TiffDirectoryAt(offset) if offset + 4096 > header_limit => {
                        return Err(FetchError::Permanent(format!(
                            "TIFF directory past the first {header_limit} bytes, and the server ignores Range"
                        )));
                    }
                    // Streaming, a TIFF's directory is reached by reading on to it.
                    Parsed::TiffDirectoryAt(offset) => offset + 4096,
                    Parsed::NeedMore => header_limit,
                };
            }
            if received >= limit {
                return match parse(buf) {
                    Parsed::Found(..) | Parsed::NotImage => Ok((false, false)),
                    _ => Err(no_header(limit)),
                };
            }
        }
        Ok((ranged, !ranged || all_in(received).unwrap_or(received < wanted)))
    }
}

/// How many new bytes a streamed read waits for before parsing the header again.
const PARSE_STEP: usize = 4096;

/// Body bytes and requests spent on one image.
#[derive(Debug, Default)]
struct Read {
    bytes: u64,
    requests: u32,
}

impl Read {
    fn dimensions(&self, width: u32, height: u32) -> Dimensions {
        Dimensions {
            width,
            height,
            bytes_read: self.bytes,
            requests: self.requests,
        }
    }
}

/// What the bytes so far say.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Found(u32, u32),
    NeedMore,
    NotImage,
    /// A TIFF whose first directory (holding the size) starts at this offset, past the bytes read.
    TiffDirectoryAt(u64),
}

/// Bytes needed to tell an image format from anything else.
const MAGIC_BYTES: usize = 32;

fn parse(buf: &[u8]) -> Parsed {
    if imagesize::image_type(buf).is_err() {
        return if buf.len() >= MAGIC_BYTES {
            Parsed::NotImage
        } else {
            Parsed::NeedMore
        };
    }
    if let Some(offset) = tiff_directory_offset(buf)
        && offset + 2 > buf.len() as u64
    {
        return Parsed::TiffDirectoryAt(offset);
    }
    match imagesize::blob_size(buf) {
        Ok(size) if size.width > 0 && size.height > 0 => {
            match (u32::try_from(size.width), u32::try_from(size.height)) {
                (Ok(w), Ok(h)) => Parsed::Found(w, h),
                _ => Parsed::NotImage,
            }
        }
        _ => Parsed::NeedMore,
    }
}

/// The offset of a classic TIFF's first directory (`II*\0` or `MM\0*` header).
fn tiff_directory_offset(buf: &[u8]) -> Option<u64> {
    let header: &[u8; 8] = buf.get(..8)?.try_into().ok()?;
    let offset = match &header[..4] {
        b"II*\0" => u32::from_le_bytes(header[4..8].try_into().ok()?),
        b"MM\0*" => u32::from_be_bytes(header[4..8].try_into().ok()?),
        _ => return None,
    };
    Some(u64::from(offset))
}

/// ImageWidth (256) and ImageLength (257) from a TIFF directory's entries.
fn tiff_directory_dimensions(little_endian: bool, dir: &[u8]) -> Option<(u32, u32)> {
    let u16_at = |b: &[u8]| {
        let b: [u8; 2] = b.get(..2)?.try_into().ok()?;
        Some(if little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |b: &[u8]| {
        let b: [u8; 4] = b.get(..4)?.try_into().ok()?;
        Some(if little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let entries = u16_at(dir)? as usize;
    let (mut width, mut height) = (None, None);
    for i in 0..entries {
        let entry = dir.get(2 + i * 12..2 + (i + 1) * 12)?;
        let value = match u16_at(&entry[2..])? {
            3 => u32::from(u16_at(&entry[8..])?), // SHORT
            4 => u32_at(&entry[8..])?,            // LONG
            _ => continue,
        };
        match u16_at(entry)? {
            256 => width = Some(value),
            257 => height = Some(value),
            _ => {}
        }
    }
    Some((width.filter(|w| *w > 0)?, height.filter(|h| *h > 0)?))
}

/// The body is not an image. What it is (HTML, JSON...) is named from its first bytes, never
/// quoted: `buf` is the server's.
fn not_an_image(buf: &[u8]) -> FetchError {
    let start = String::from_utf8_lossy(&buf[..buf.len().min(64)])
        .trim_start()
        .to_ascii_lowercase();
    let looks_like = if start.starts_with("<!doctype html") || start.starts_with("<html") {
        " (an HTML page)"
    } else if start.starts_with('<') {
        " (markup)"
    } else if start.starts_with('{') || start.starts_with('[') {
        " (JSON?)"
    } else if buf.is_empty() {
        " (empty body)"
    } else {
        ""
    };
    FetchError::Permanent(format!("not an image{looks_like}"))
}

fn no_header(limit: u64) -> FetchError {
    FetchError::Permanent(format!("no image dimensions in the first {limit} bytes"))
}

/// `size` is the server's claim: it goes to the log, the limit to the job.
fn too_large(size: u64, max: u64) -> FetchError {
    tracing::debug!(size, max, "image too large");
    FetchError::Permanent(format!("image too large (over the limit of {max} bytes)"))
}

fn header_u64(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Content-Range: bytes a-b/size`: the first byte and the file size (`None` for `*`).
fn content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    parse_content_range(response.headers().get(CONTENT_RANGE)?.to_str().ok()?)
}

fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (range, size) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    if last < first {
        return None;
    }
    let size = match size.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    Some((first, size))
}

/// Sorts a reqwest error into transient and permanent, in our words: a reqwest error's text
/// carries URLs (a redirect's comes from the server), TLS errors the certificate's names. A
/// refusal by the guard is permanent and already in our words.
fn classify(e: reqwest::Error) -> FetchError {
    tracing::debug!(error = %e, cause = %cause_chain(&e), "image request failed");
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return FetchError::Permanent(refused.to_string());
        }
        if let Some(unresolved) = err.downcast_ref::<Unresolved>() {
            return FetchError::Transient(unresolved.to_string());
        }
        source = err.source();
    }
    let io = io_kind(&e);
    if e.is_redirect() {
        FetchError::Permanent("redirect failed".into())
    } else if e.is_timeout() || io == Some(std::io::ErrorKind::TimedOut) {
        FetchError::Transient("timed out".into())
    } else if e.is_connect() {
        let why = match io {
            // rustls reports a failed handshake (certificate, protocol) as invalid data.
            Some(std::io::ErrorKind::InvalidData) => "TLS handshake failed".into(),
            Some(kind) => io_words(kind),
            None => "connection failed".into(),
        };
        FetchError::Transient(why)
    } else if e.is_builder() {
        FetchError::Permanent("invalid request".into())
    } else {
        FetchError::Transient(match io {
            Some(kind) => format!("transfer failed: {}", io_words(kind)),
            None => "transfer failed".into(),
        })
    }
}

/// The kind of the first I/O error among the causes.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

/// An I/O error kind in words (the standard library's, never the peer's).
fn io_words(kind: std::io::ErrorKind) -> String {
    use std::io::ErrorKind::*;
    match kind {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        UnexpectedEof | BrokenPipe => "connection closed early".into(),
        TimedOut => "timed out".into(),
        other => format!("connection failed ({other})"),
    }
}

/// Every cause's text, for the debug log.
fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(err) = source {
        parts.push(err.to_string());
        source = err.source();
    }
    parts.join(": ")
}

/// The delay plus up to 25 % random, so retries of many images do not arrive together.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_common_format_parse_from_a_prefix() {
        // PNG: signature + IHDR with 640x480.
        let mut png = vec![
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ];
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0]);
        assert_eq!(parse(&png), Parsed::Found(640, 480));
        assert_eq!(parse(&png[..12]), Parsed::NeedMore);
        // GIF: logical screen 3x5.
        assert_eq!(parse(b"GIF89a\x03\x00\x05\x00\x00\x00\x00"), Parsed::Found(3, 5));
    }

    #[test]
    fn a_tiff_directory_past_the_first_window_is_read_where_it_is() {
        let tiff = test_images::encode(test_images::ImageFormat::Tiff, 300, 200);
        let window = &tiff[..FIRST_WINDOW as usize];
        let Parsed::TiffDirectoryAt(offset) = parse(window) else {
            panic!("the encoder writes the directory after the pixels: {:?}", parse(window));
        };
        let dir = &tiff[offset as usize..];
        assert_eq!(tiff_directory_dimensions(tiff[0] == b'I', dir), Some((300, 200)));
        assert_eq!(parse(&tiff), Parsed::Found(300, 200));
        assert_eq!(tiff_directory_dimensions(true, &[1, 0]), None, "truncated directory");
    }

    #[test]
    fn content_ranges_are_read_strictly() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, Some(1000))));
        assert_eq!(parse_content_range("bytes 16384-147455/*"), Some((16384, None)));
        assert_eq!(parse_content_range("bytes 10-5/100"), None);
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    use test_images::{ImageFormat, ImageServer, encode};

    /// A fetcher for the local test server: 127.0.0.1 on any port, quick retries.
    fn local_fetcher(ports: &str) -> Fetcher {
        Fetcher::new(FetchConfig {
            allow_hosts: "127.0.0.1".into(),
            allow_ports: ports.parse().unwrap(),
            attempts: 1,
            timeout: Duration::from_secs(5),
            ..FetchConfig::default()
        })
        .unwrap()
    }

    fn permanent(result: Result<Dimensions, FetchError>) -> String {
        match result {
            Err(FetchError::Permanent(e)) => e,
            other => panic!("expected a permanent failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn only_allowed_ports_are_fetched() {
        let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 3, 2))]).await;
        let url = server.url("/img/a.png");
        // GIVEN the default ports (80, 443) and a server on another one
        let refused = permanent(local_fetcher("80,443").dimensions(&url).await);
        assert!(
            refused.starts_with("refused: port ") && refused.ends_with("is not allowed (allowed: 80, 443)"),
            "{refused}"
        );
        assert_eq!(server.requests(), 0, "refused before any request");
        // WHEN its port is allowed THEN it is measured
        let port = url::Url::parse(&url).unwrap().port().unwrap();
        let fetched = local_fetcher(&format!("80,443,{port}")).dimensions(&url).await.unwrap();
        assert_eq!((fetched.width, fetched.height), (3, 2));
    }

    #[tokio::test]
    async fn credentials_are_refused_in_the_url_and_in_redirects_without_being_quoted() {
        let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 3, 2))]).await;
        let fetcher = local_fetcher("1-65535");
        let with_credentials = server.url("/img/a.png").replace("http://", "http://alice:s3cret@");
        let refused = permanent(fetcher.dimensions(&with_credentials).await);
        assert_eq!(
            refused,
            "refused: credentials in the URL (user:password@) are not allowed"
        );
        assert_eq!(server.requests(), 0);
        let redirect = server.url(&format!("/redirect?to={with_credentials}"));
        let refused = permanent(fetcher.dimensions(&redirect).await);
        assert_eq!(
            refused,
            "refused: a redirect to a URL with credentials (user:password@)"
        );
        assert_eq!(server.requests(), 1, "the redirect, not its target");
    }

    #[tokio::test]
    async fn stored_errors_never_echo_what_the_server_sent() {
        let server = ImageServer::start([("a.png".to_string(), encode(ImageFormat::Png, 3, 2))]).await;
        let fetcher = local_fetcher("1-65535");
        // A redirect's target is the server's Location header: refused in our words only.
        for target in [
            "http://10.0.0.1/internal-name.png",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let refused = permanent(fetcher.dimensions(&server.url(&format!("/redirect?to={target}"))).await);
            assert_eq!(refused, "refused: a redirect to an address that is not public");
        }
        let refused = permanent(
            fetcher
                .dimensions(&server.url("/redirect?to=gopher://example.com/x"))
                .await,
        );
        assert_eq!(refused, "refused: a redirect to a scheme other than http(s)");
        // A body: named, not quoted. A status: the code and its standard reason, not the body.
        assert_eq!(
            permanent(fetcher.dimensions(&server.url("/html")).await),
            "not an image (an HTML page)"
        );
        assert_eq!(
            permanent(fetcher.dimensions(&server.url("/img/missing.png")).await),
            "HTTP 404 Not Found"
        );
        // A refused connection: the standard library's words.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        match fetcher.dimensions(&format!("http://127.0.0.1:{closed}/a.png")).await {
            Err(FetchError::Transient(e)) => assert_eq!(e, "connection refused"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn html_is_not_an_image_and_its_text_is_not_quoted() {
        let html = b"<!doctype html><html><head><title>Secret internal page</title></head></html>";
        assert_eq!(parse(html), Parsed::NotImage);
        assert_eq!(parse(b"<html>"), Parsed::NeedMore, "too short to tell yet");
        assert_eq!(not_an_image(html).to_string(), "not an image (an HTML page)");
        assert_eq!(
            not_an_image(br#"{"token": "abc123", "internal": true}"#).to_string(),
            "not an image (JSON?)"
        );
        assert_eq!(not_an_image(b"\x00\x01secret bytes").to_string(), "not an image");
        assert!(!too_large(999_999_999, 100).to_string().contains("999999999"));
    }
}
