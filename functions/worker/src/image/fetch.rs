//! Fetching just enough of an image to know its size.
//!
//! The first `Range` request asks for a small window ([`FIRST_WINDOW`] bytes), enough for the
//! header of a PNG, GIF, WebP, BMP, ICO or a JPEG without large metadata. After it, only what the
//! format needs is asked for ([`HeaderReads::Adaptive`]):
//! - a JPEG's segments before its frame header (SOFn) are skipped by their lengths: the next
//!   request starts where the next marker is, so an EXIF block (with its thumbnail), an ICC profile
//!   or XMP costs one request each, not their bytes;
//! - a TIFF's first directory is read where it is, often after the pixels;
//! - anything else reads on from where it stopped, doubling.
//!
//! A server that ignores `Range` (200 instead of 206) is read as a stream that stops as soon as
//! the dimensions are known. The dimensions come from the header alone (`imagesize`: JPEG, PNG,
//! GIF, WebP, BMP, TIFF, ICO, AVIF/HEIF and more; the JPEG marker walk here); nothing is decoded.
//! Nothing past `header_limit` bytes into the file is read looking for them (a TIFF's directory
//! excepted). [`HeaderReads::Contiguous`] is the earlier way (16 KiB, then 8x larger windows, the
//! file read through), kept for the image benchmark's comparison.
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

use shared::metrics::{Dims, Metric, put};
use shared::retry::Backoff;

const IMAGE: &str = "image";

use super::guard::{Guard, GuardedResolver, Ports, Refused, Unresolved};

/// The first `Range` asked for by default ([`HeaderReads::Adaptive`]): every common format's
/// header but a JPEG's behind large metadata (chosen with `infra/bench/images`, README "Image jobs").
pub const FIRST_WINDOW: u64 = 1024;
/// The first window of the earlier, contiguous reads ([`HeaderReads::Contiguous`]).
pub const CONTIGUOUS_FIRST_WINDOW: u64 = 16 * 1024;
/// Contiguous reads: each further window is this many times the bytes already read.
const GROWTH: u64 = 8;
/// Contiguous reads: the bytes read at a TIFF's directory.
const CONTIGUOUS_DIRECTORY_READ: u64 = 4096;

/// How an image's header is read (`IMAGE_FIRST_WINDOW`: the adaptive first window, in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderReads {
    /// A first window of `first` bytes, then only what the format needs: a JPEG's segments before
    /// its frame header skipped by their lengths (each next request, of `first` bytes, starting at
    /// the next marker), a TIFF's directory read where it is, other formats read on, doubling.
    Adaptive { first: u64 },
    /// The earlier way: `first` bytes, then windows 8x the bytes read so far, the file read
    /// through (a TIFF's directory excepted). For comparisons (`infra/bench/images`).
    Contiguous { first: u64 },
}

impl Default for HeaderReads {
    fn default() -> Self {
        HeaderReads::Adaptive { first: FIRST_WINDOW }
    }
}

impl HeaderReads {
    /// The earlier reads: a 16 KiB first window, growing 8x.
    pub const CONTIGUOUS_16_KIB: HeaderReads = HeaderReads::Contiguous {
        first: CONTIGUOUS_FIRST_WINDOW,
    };

    /// Bytes of the first request.
    pub fn first(&self) -> u64 {
        match *self {
            HeaderReads::Adaptive { first } | HeaderReads::Contiguous { first } => first.max(MAGIC_BYTES as u64),
        }
    }
}

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
    /// How the header is read (`IMAGE_FIRST_WINDOW`, adaptive from [`FIRST_WINDOW`] bytes).
    pub header_reads: HeaderReads,
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
            header_reads: HeaderReads::default(),
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
            header_limit: optional("IMAGE_HEADER_LIMIT", d.header_limit)?.max(CONTIGUOUS_FIRST_WINDOW),
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
            header_reads: HeaderReads::Adaptive {
                first: optional("IMAGE_FIRST_WINDOW", FIRST_WINDOW)?,
            },
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
            .retry(
                "image fetch",
                |attempt| {
                    if attempt > 1 {
                        put(Dims::Kind(IMAGE), Metric::FetchRetries, 1.0);
                    }
                    self.probe(url)
                },
                FetchError::is_transient,
            )
            .await
            .map_err(|e| match e {
                FetchError::Transient(e) if backoff.attempts > 1 => {
                    FetchError::Transient(format!("{e} (after {} attempts)", backoff.attempts))
                }
                other => other,
            })
    }

    /// One try: the `Range` requests [`Header`] asks for, or an early-stopped stream when `Range`
    /// is ignored.
    async fn probe(&self, url: &Url) -> Result<Dimensions, FetchError> {
        let mut header = Header::new(self.config.header_reads, self.header_limit());
        let mut read = Read::default();
        loop {
            let (start, len) = match header.next() {
                Next::Found(width, height) => return Ok(read.dimensions(width, height)),
                Next::Fail(e) => return Err(e),
                Next::Read { start, len } => (start, len),
            };
            if start > self.config.max_bytes {
                return Err(header.not_an_image()); // a TIFF directory past any image we take
            }
            let mut chunk = Vec::new();
            let (ranged, complete) = self
                .read_range(url, start, start + len.max(1) - 1, &mut chunk, &mut read)
                .await?;
            if !ranged {
                // The server sent the file from byte 0, read as a stream that stopped early.
                return match parse(&chunk) {
                    Parsed::Found(width, height) => Ok(read.dimensions(width, height)),
                    _ => Err(not_an_image(&chunk)),
                };
            }
            header.add(start, chunk, complete);
        }
    }

    fn header_limit(&self) -> u64 {
        self.config.header_limit.max(self.config.header_reads.first())
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
        let header_limit = self.header_limit();
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

/// What [`Header`] wants next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Found(u32, u32),
    Fail(FetchError),
    /// The bytes `start..start + len` of the file.
    Read {
        start: u64,
        len: u64,
    },
}

/// Where the search for the dimensions stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The file's first bytes, contiguous.
    Prefix,
    /// A JPEG's next marker is at this offset (the bytes before it are not needed).
    Jpeg { marker: u64 },
    /// A classic TIFF's first directory starts at this offset.
    TiffDirectory { little_endian: bool, at: u64 },
}

/// The bytes of one image read so far, and what to read next: the reading strategy apart from
/// HTTP, so that it can be tested on byte strings.
#[derive(Debug)]
struct Header {
    reads: HeaderReads,
    /// Nothing past this offset is read looking for the dimensions (a TIFF directory excepted).
    limit: u64,
    stage: Stage,
    /// The file's first bytes (for the format and for naming what a non-image is).
    head: Vec<u8>,
    /// Bytes `base..base + buf.len()` of the file.
    base: u64,
    buf: Vec<u8>,
    /// The file ends at `base + buf.len()`.
    at_end: bool,
}

impl Header {
    fn new(reads: HeaderReads, limit: u64) -> Self {
        Header {
            reads,
            limit: limit.max(reads.first()),
            stage: Stage::Prefix,
            head: Vec::new(),
            base: 0,
            buf: Vec::new(),
            at_end: false,
        }
    }

    fn adaptive(&self) -> bool {
        matches!(self.reads, HeaderReads::Adaptive { .. })
    }

    /// Bytes `start..` as received; `at_end`: the file ends with them.
    fn add(&mut self, start: u64, bytes: Vec<u8>, at_end: bool) {
        if start == self.base + self.buf.len() as u64 {
            self.buf.extend_from_slice(&bytes);
        } else {
            self.base = start;
            self.buf = bytes;
        }
        if self.base == 0 && self.head.len() < 64 {
            self.head = self.buf[..self.buf.len().min(64)].to_vec();
        }
        self.at_end = at_end;
    }

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn not_an_image(&self) -> FetchError {
        not_an_image(&self.head)
    }

    /// The next step, from the bytes so far.
    fn next(&mut self) -> Next {
        match self.stage {
            Stage::Prefix => self.next_in_prefix(),
            Stage::Jpeg { marker } => self.next_in_jpeg(marker),
            Stage::TiffDirectory { little_endian, at } => self.next_in_tiff_directory(little_endian, at),
        }
    }

    fn next_in_prefix(&mut self) -> Next {
        if self.buf.is_empty() && !self.at_end {
            return Next::Read {
                start: 0,
                len: self.reads.first().min(self.limit),
            };
        }
        if self.adaptive() && self.buf.starts_with(&[0xff, 0xd8, 0xff]) {
            // A JPEG: its markers are walked here, from the first window on, skipping segments.
            self.stage = Stage::Jpeg { marker: 2 };
            return self.next();
        }
        match parse(&self.buf) {
            Parsed::Found(width, height) => return Next::Found(width, height),
            Parsed::NotImage => return Next::Fail(self.not_an_image()),
            Parsed::TiffDirectoryAt(at) => {
                self.stage = Stage::TiffDirectory {
                    little_endian: self.buf[0] == b'I',
                    at,
                };
                return self.next();
            }
            Parsed::NeedMore => {}
        }
        let have = self.buf.len() as u64;
        if self.at_end {
            return Next::Fail(self.not_an_image()); // the whole file, and no dimensions
        }
        if have >= self.limit {
            return Next::Fail(no_header(self.limit));
        }
        let len = match self.reads {
            HeaderReads::Adaptive { .. } => have.max(self.reads.first()),
            HeaderReads::Contiguous { .. } => (have * GROWTH).max(self.reads.first()),
        };
        Next::Read {
            start: have,
            len: len.min(self.limit - have),
        }
    }

    fn next_in_jpeg(&mut self, marker: u64) -> Next {
        let walked = if marker >= self.base && marker <= self.end() {
            jpeg_frame(&self.buf, self.base, marker)
        } else {
            JpegWalk::NeedFrom(marker)
        };
        let from = match walked {
            JpegWalk::Found(width, height) => return Next::Found(width, height),
            JpegWalk::Corrupt(why) => return Next::Fail(FetchError::Permanent(format!("not an image: {why}"))),
            JpegWalk::NeedFrom(from) => from,
        };
        self.stage = Stage::Jpeg { marker: from };
        if self.at_end && from >= self.base && from <= self.end() {
            return Next::Fail(FetchError::Permanent("not an image: a JPEG cut short".into()));
        }
        if from >= self.limit {
            return Next::Fail(no_header(self.limit));
        }
        // A marker whose first bytes are in: read on from the end; one further on: jump to it.
        let start = if from >= self.base && from < self.end() {
            self.end()
        } else {
            from
        };
        if start >= self.limit {
            return Next::Fail(no_header(self.limit));
        }
        Next::Read {
            start,
            len: self.reads.first().min(self.limit - start),
        }
    }

    fn next_in_tiff_directory(&mut self, little_endian: bool, at: u64) -> Next {
        let read_len = match self.reads {
            HeaderReads::Adaptive { .. } => self.reads.first(),
            HeaderReads::Contiguous { .. } => CONTIGUOUS_DIRECTORY_READ,
        };
        if at < self.base || at >= self.end() {
            if self.at_end && at >= self.base {
                return Next::Fail(self.not_an_image()); // the file ends before its directory
            }
            return Next::Read {
                start: at,
                len: read_len,
            };
        }
        let directory = &self.buf[(at - self.base) as usize..];
        match tiff_directory_dimensions(little_endian, directory) {
            TiffDirectory::Found(width, height) => Next::Found(width, height),
            TiffDirectory::Truncated if !self.at_end => Next::Read {
                start: self.end(),
                len: read_len,
            },
            _ => Next::Fail(FetchError::Permanent("TIFF directory without width and height".into())),
        }
    }
}

/// Where a walk over a JPEG's markers ended.
#[derive(Debug, PartialEq, Eq)]
enum JpegWalk {
    /// The frame header's width and height.
    Found(u32, u32),
    /// The bytes from this offset are needed (a marker, or the rest of one, is there).
    NeedFrom(u64),
    Corrupt(&'static str),
}

/// Walks a JPEG's markers from the one at offset `marker`, over `buf` (the file's bytes from
/// `base`), skipping every segment by its length, to the first frame header (SOF0..SOF15 but DHT,
/// JPG and DAC).
fn jpeg_frame(buf: &[u8], base: u64, mut marker: u64) -> JpegWalk {
    let at = |offset: u64| buf.get(usize::try_from(offset.checked_sub(base)?).ok()?).copied();
    let u16_at = |offset: u64| Some(u16::from_be_bytes([at(offset)?, at(offset + 1)?]));
    loop {
        let (Some(prefix), Some(kind)) = (at(marker), at(marker + 1)) else {
            return JpegWalk::NeedFrom(marker);
        };
        if prefix != 0xff {
            return JpegWalk::Corrupt("a JPEG without a marker where one should be");
        }
        match kind {
            0xff => marker += 1, // fill byte before a marker
            0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => {
                // FF Cn, length, precision, height, width
                return match (u16_at(marker + 5), u16_at(marker + 7)) {
                    (Some(height), Some(width)) if height > 0 && width > 0 => {
                        JpegWalk::Found(u32::from(width), u32::from(height))
                    }
                    (Some(_), Some(_)) => JpegWalk::Corrupt("a JPEG frame header without its size"),
                    _ => JpegWalk::NeedFrom(marker),
                };
            }
            // Markers without a length: SOI, RSTn, TEM.
            0xd8 | 0xd0..=0xd7 | 0x01 => marker += 2,
            0xd9 | 0xda => return JpegWalk::Corrupt("a JPEG without a frame header before its data"),
            0x00 => return JpegWalk::Corrupt("a JPEG without a marker where one should be"),
            _ => match u16_at(marker + 2) {
                Some(len) if len >= 2 => marker += 2 + u64::from(len),
                Some(_) => return JpegWalk::Corrupt("a JPEG segment of a length under 2"),
                None => return JpegWalk::NeedFrom(marker),
            },
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

/// The size a file's first bytes give, if they give it: what one contiguous read from the start
/// must cover (the image bench measures the web mix with it).
pub fn size_from_prefix(buf: &[u8]) -> Option<(u32, u32)> {
    match parse(buf) {
        Parsed::Found(w, h) => Some((w, h)),
        _ => None,
    }
}

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

/// What a TIFF directory, or its first bytes, says.
#[derive(Debug, PartialEq, Eq)]
enum TiffDirectory {
    Found(u32, u32),
    /// Entries are missing from the bytes given and the size was not among those there.
    Truncated,
    /// All entries are there, without a width and a height.
    Missing,
}

/// ImageWidth (256) and ImageLength (257) from a TIFF directory's entries. They are usually
/// among the first (entries are sorted by tag), so the directory's first bytes often suffice.
fn tiff_directory_dimensions(little_endian: bool, dir: &[u8]) -> TiffDirectory {
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
    let Some(entries) = u16_at(dir) else {
        return TiffDirectory::Truncated;
    };
    let (mut width, mut height) = (None, None);
    for i in 0..usize::from(entries) {
        let Some(entry) = dir.get(2 + i * 12..2 + (i + 1) * 12) else {
            return TiffDirectory::Truncated;
        };
        let value = match u16_at(&entry[2..]) {
            Some(3) => u16_at(&entry[8..]).map(u32::from), // SHORT
            Some(4) => u32_at(&entry[8..]),                // LONG
            _ => continue,
        };
        match u16_at(entry) {
            Some(256) => width = value.filter(|w| *w > 0),
            Some(257) => height = value.filter(|h| *h > 0),
            _ => {}
        }
        if let (Some(width), Some(height)) = (width, height) {
            return TiffDirectory::Found(width, height);
        }
    }
    TiffDirectory::Missing
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

    /// What reading `file` with `reads` from a server honouring `Range` costs: the outcome, the
    /// bytes received and the requests, through the same [`Header`] steps as [`Fetcher::probe`].
    fn read_from(reads: HeaderReads, limit: u64, file: &[u8]) -> (Result<(u32, u32), FetchError>, u64, u32) {
        let mut header = Header::new(reads, limit);
        let (mut bytes, mut requests) = (0u64, 0u32);
        loop {
            match header.next() {
                Next::Found(w, h) => return (Ok((w, h)), bytes, requests),
                Next::Fail(e) => return (Err(e), bytes, requests),
                Next::Read { start, len } => {
                    assert!(len > 0 && requests < 50, "{start} {len}");
                    requests += 1;
                    let from = (start as usize).min(file.len());
                    let to = ((start + len) as usize).min(file.len());
                    bytes += (to - from) as u64;
                    header.add(start, file[from..to].to_vec(), to == file.len());
                }
            }
        }
    }

    const ADAPTIVE: HeaderReads = HeaderReads::Adaptive { first: FIRST_WINDOW };
    const LIMIT: u64 = 2 * 1024 * 1024;

    #[test]
    fn a_jpegs_metadata_is_skipped_by_its_lengths_not_read() {
        use test_images::{JpegMeta, jpeg_photo};
        // GIVEN a camera JPEG: 30 KB of EXIF with a 160x120 thumbnail, XMP, a 3 KB ICC profile
        let meta = JpegMeta {
            exif: 30_000,
            thumbnail: true,
            xmp: 4_000,
            icc: 3144,
            ..JpegMeta::default()
        };
        let file = jpeg_photo(1200, 900, 85, meta);
        // WHEN read adaptively THEN the frame's size (not the thumbnail's), one request per
        // segment that does not fit, and about a window per request
        let (size, bytes, requests) = read_from(ADAPTIVE, LIMIT, &file);
        assert_eq!(size.unwrap(), (1200, 900));
        assert_eq!(
            requests, 4,
            "the first window, then the XMP, the ICC profile, the frame header"
        );
        assert!(bytes <= 4 * FIRST_WINDOW, "{bytes}");
        // The earlier contiguous reads went through it all: 16 KiB, then 128 KiB.
        let (size, old_bytes, old_requests) = read_from(HeaderReads::CONTIGUOUS_16_KIB, LIMIT, &file);
        assert_eq!(size.unwrap(), (1200, 900));
        assert_eq!(old_requests, 2);
        assert!(old_bytes > 37_000 && old_bytes > 9 * bytes, "{old_bytes} vs {bytes}");
        // A JPEG without metadata, or with a small profile, progressive or not: one request.
        for meta in [
            JpegMeta::default(),
            JpegMeta {
                icc: 536,
                progressive: true,
                ..JpegMeta::default()
            },
        ] {
            let (size, bytes, requests) = read_from(ADAPTIVE, LIMIT, &jpeg_photo(640, 480, 80, meta));
            assert_eq!(
                (size.unwrap(), requests, bytes),
                ((640, 480), 1, FIRST_WINDOW),
                "{meta:?}"
            );
        }
    }

    #[test]
    fn the_marker_walk_takes_fill_bytes_and_refuses_what_is_not_a_jpeg() {
        let sof = |h: u16, w: u16| {
            let mut b = vec![0xff, 0xc0, 0, 17, 8];
            b.extend_from_slice(&h.to_be_bytes());
            b.extend_from_slice(&w.to_be_bytes());
            b
        };
        let jpeg = |middle: &[u8], frame: Vec<u8>| [&[0xff, 0xd8][..], middle, &frame, &[0u8; 40][..]].concat();
        // Fill bytes before a marker, a restart marker, an APP segment, then the frame.
        let file = jpeg(&[0xff, 0xff, 0xff, 0xe1, 0, 4, 1, 2, 0xff, 0xd0, 0xff, 0xff], sof(7, 9));
        assert_eq!(jpeg_frame(&file, 0, 2), JpegWalk::Found(9, 7));
        assert_eq!(read_from(ADAPTIVE, LIMIT, &file).0.unwrap(), (9, 7));
        // The walk stops where bytes are missing and says from where they are needed.
        assert_eq!(
            jpeg_frame(&file[..7], 0, 2),
            JpegWalk::NeedFrom(4),
            "a marker without its length"
        );
        assert_eq!(jpeg_frame(&file[..12], 0, 2), JpegWalk::NeedFrom(12));
        assert_eq!(
            jpeg_frame(&file[12..], 12, 12),
            JpegWalk::Found(9, 7),
            "bytes from a jump"
        );
        // Not a marker where one should be, the data before any frame, a length under 2, no size.
        for (middle, frame) in [
            (&[0xff, 0xe0, 0, 2, 0x00, 0x01][..], sof(7, 9)),
            (&[0xff, 0xda, 0, 2][..], sof(7, 9)),
            (&[0xff, 0xd9][..], sof(7, 9)),
            (&[0xff, 0xe0, 0, 1][..], sof(7, 9)),
            (&[][..], sof(0, 9)),
        ] {
            let (result, _, _) = read_from(ADAPTIVE, LIMIT, &jpeg(middle, frame));
            let e = result.unwrap_err();
            assert!(
                !e.is_transient() && e.to_string().starts_with("not an image: a JPEG"),
                "{e}"
            );
        }
        // A segment whose length runs past the end of the file: cut short, after a jump.
        let cut = [0xff, 0xd8, 0xff, 0xe1, 0xff, 0xf0, 1, 2, 3];
        let (result, _, requests) = read_from(ADAPTIVE, LIMIT, &cut);
        assert_eq!(result.unwrap_err().to_string(), "not an image: a JPEG cut short");
        assert_eq!(requests, 2);
    }

    #[test]
    fn nothing_past_the_header_limit_is_read_looking_for_a_frame() {
        use test_images::{JpegMeta, jpeg_photo};
        // Four 60 KB EXIF-like blocks: the frame starts past a 100 KB limit.
        let mut file = vec![0xff, 0xd8];
        for _ in 0..4 {
            file.extend_from_slice(&[0xff, 0xe1, 0xea, 0x60]);
            file.extend(std::iter::repeat_n(7u8, 60_000 - 2));
        }
        file.extend_from_slice(&jpeg_photo(64, 48, 80, JpegMeta::default())[2..]);
        let (result, bytes, requests) = read_from(ADAPTIVE, 100_000, &file);
        assert_eq!(
            result.unwrap_err().to_string(),
            "no image dimensions in the first 100000 bytes"
        );
        assert_eq!(
            (requests, bytes),
            (2, 2 * FIRST_WINDOW),
            "two jumps, the next would pass the limit"
        );
        assert_eq!(read_from(ADAPTIVE, LIMIT, &file).0.unwrap(), (64, 48));
    }

    #[test]
    fn every_format_but_tiff_takes_one_small_request() {
        use test_images::{FORMATS, encode, gif_animated, tiff, webp_extended, webp_lossy};
        let mut files: Vec<(String, Vec<u8>, (u32, u32))> = FORMATS
            .iter()
            .filter(|f| **f != ImageFormat::Tiff)
            .map(|f| (format!("{f:?}"), encode(*f, 300, 200), (300, 200)))
            .collect();
        files.push(("animated GIF".into(), gif_animated(60, 40, 3), (60, 40)));
        files.push(("lossy WebP".into(), webp_lossy(1920, 1080, 80_000), (1920, 1080)));
        files.push(("extended WebP".into(), webp_extended(64, 40, 3144), (64, 40)));
        for (name, file, size) in &files {
            let (found, bytes, requests) = read_from(ADAPTIVE, LIMIT, file);
            assert_eq!((found.unwrap(), requests), (*size, 1), "{name}");
            assert!(bytes <= FIRST_WINDOW, "{name}");
        }
        // A TIFF: its header, then its directory after the pixels, both byte orders.
        for big_endian in [false, true] {
            let file = tiff(300, 200, big_endian);
            let (found, bytes, requests) = read_from(ADAPTIVE, LIMIT, &file);
            assert_eq!((found.unwrap(), requests), ((300, 200), 2), "big endian: {big_endian}");
            assert!(bytes <= FIRST_WINDOW + 2 + 9 * 12 + 4, "{bytes}");
        }
    }

    #[test]
    fn a_tiff_directory_past_the_first_window_is_read_where_it_is() {
        let tiff = test_images::encode(test_images::ImageFormat::Tiff, 300, 200);
        let window = &tiff[..FIRST_WINDOW as usize];
        let Parsed::TiffDirectoryAt(offset) = parse(window) else {
            panic!("the encoder writes the directory after the pixels: {:?}", parse(window));
        };
        let dir = &tiff[offset as usize..];
        assert_eq!(
            tiff_directory_dimensions(tiff[0] == b'I', dir),
            TiffDirectory::Found(300, 200)
        );
        // The size is among the first entries: their bytes are enough.
        assert_eq!(
            tiff_directory_dimensions(true, &dir[..2 + 2 * 12]),
            TiffDirectory::Found(300, 200)
        );
        assert_eq!(
            tiff_directory_dimensions(true, &dir[..2 + 12]),
            TiffDirectory::Truncated
        );
        assert_eq!(tiff_directory_dimensions(true, &[1, 0]), TiffDirectory::Truncated);
        assert_eq!(tiff_directory_dimensions(true, &[0, 0]), TiffDirectory::Missing);
        assert_eq!(parse(&tiff), Parsed::Found(300, 200));
        // A directory past the end of the file: not an image, after one try.
        let mut cut = tiff[..64].to_vec();
        cut[4..8].copy_from_slice(&100_000u32.to_le_bytes());
        let (result, _, requests) = read_from(ADAPTIVE, LIMIT, &cut);
        assert_eq!(result.unwrap_err().to_string(), "not an image");
        assert_eq!(requests, 1, "the whole file came in the first window");
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
