//! Test fixtures for image jobs: real image files of every common format ([`encode`]), and
//! [`ImageServer`], a local HTTP server that serves them properly (with `Range`) or badly.
//!
//! Routes of the server (`{name}` is a file given to [`ImageServer::start`]):
//!
//! | route                    | answer                                                     |
//! |--------------------------|------------------------------------------------------------|
//! | `/img/{name}`            | the file, honouring `Range` (206 / 416)                   |
//! | `/norange/{name}`        | the file, always whole (200), ignoring `Range`             |
//! | `/from0/{name}`          | 206 with the file from byte 0, whatever range was asked    |
//! | `/slow/{name}`           | waits 30 s before answering                                |
//! | `/flaky/{name}`          | 503 on the first request for that name, then the file      |
//! | `/redirect?to=URL`       | 302 to `URL`                                               |
//! | `/html`                  | an HTML page (200)                                         |
//! | anything else            | 404                                                        |
//!
//! [`ImageServer::bytes_sent`] counts the body bytes it wrote, so a test can check how much of a
//! file a client read.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
pub use image::ImageFormat;
use image::{DynamicImage, RgbImage};

/// The formats the fixtures come in.
pub const FORMATS: [ImageFormat; 6] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Gif,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];

/// File extension of a format.
pub fn extension(format: ImageFormat) -> &'static str {
    format.extensions_str()[0]
}

/// A `width` x `height` picture: smooth gradients with noise on top, so it compresses like a
/// photo (a few MB as a 12-megapixel JPEG) rather than like a flat colour.
pub fn picture(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut state = seed | 1;
    RgbImage::from_fn(width, height, |x, y| {
        // xorshift: cheap, deterministic noise
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state & 0x3f) as u32;
        image::Rgb([
            ((x * 255 / width.max(1)) + n).min(255) as u8,
            ((y * 255 / height.max(1)) + n / 2).min(255) as u8,
            (((x + y) * 127 / (width + height).max(1)) + n).min(255) as u8,
        ])
    })
}

/// The picture encoded as `format` (JPEG at quality 90, like a camera).
pub fn encode(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let img = picture(width, height, u64::from(width) << 32 | u64::from(height));
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
            img.write_with_encoder(encoder).expect("JPEG encodes");
        }
        ImageFormat::Gif => {
            // GIF is 8-bit: encode a paletted copy
            DynamicImage::ImageRgb8(img)
                .to_rgba8()
                .write_to(&mut out, ImageFormat::Gif)
                .expect("GIF encodes");
        }
        f => img.write_to(&mut out, f).expect("image encodes"),
    }
    out.into_inner()
}

/// Width and height of an encoded image, by decoding its header.
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("readable")
        .into_dimensions()
        .expect("an image")
}

/// A JPEG with an APP1 (EXIF-like) segment of `exif_bytes` before the frame header, as cameras
/// write them: the dimensions sit past the first window a client asks for.
pub fn jpeg_with_exif(width: u32, height: u32, exif_bytes: usize) -> Vec<u8> {
    let plain = encode(ImageFormat::Jpeg, width, height);
    let len = exif_bytes.min(65_533);
    let mut out = Vec::with_capacity(plain.len() + len + 4);
    out.extend_from_slice(&plain[..2]); // SOI
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((len + 2) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend((6..len).map(|i| (i % 251) as u8));
    out.extend_from_slice(&plain[2..]);
    out
}

struct State {
    files: HashMap<String, Bytes>,
    sent: AtomicU64,
    requests: AtomicU64,
    flaky_seen: Mutex<HashSet<String>>,
}

/// The local image server; stops when dropped.
pub struct ImageServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl ImageServer {
    /// Serves `files` (name -> bytes) on 127.0.0.1, on a free port.
    pub async fn start(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> ImageServer {
        Self::start_on("127.0.0.1:0", files).await
    }

    /// Serves `files` on `bind` (`127.0.0.1:8090`).
    pub async fn start_on(bind: &str, files: impl IntoIterator<Item = (String, Vec<u8>)>) -> ImageServer {
        let state = Arc::new(State {
            files: files.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect(),
            sent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            flaky_seen: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .expect("bind the image server");
        let addr = listener.local_addr().unwrap();
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        ImageServer { addr, state, task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Body bytes written so far.
    pub fn bytes_sent(&self) -> u64 {
        self.state.sent.load(Ordering::Relaxed)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Size of a served file.
    pub fn size(&self, name: &str) -> usize {
        self.state.files[name].len()
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(state: &State, status: StatusCode, headers: &[(&str, String)], body: Bytes) -> Response<Full<Bytes>> {
    state.sent.fetch_add(body.len() as u64, Ordering::Relaxed);
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, v);
    }
    builder.body(Full::new(body)).unwrap()
}

/// `bytes=a-b` / `bytes=a-` against a file of `len` bytes: the inclusive range, or `None` (416).
fn range(header: &str, len: usize) -> Option<(usize, usize)> {
    let (a, b) = header.strip_prefix("bytes=")?.split_once('-')?;
    let start: usize = a.trim().parse().ok()?;
    let end: usize = if b.trim().is_empty() {
        len.checked_sub(1)?
    } else {
        b.trim().parse::<usize>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end && start < len).then_some((start, end))
}

async fn answer(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_owned();
    let (route, name) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path.trim_start_matches('/'), ""));
    let file = state.files.get(name).cloned();
    let content_type = |name: &str| {
        ImageFormat::from_path(name)
            .map(|f| f.to_mime_type().to_owned())
            .unwrap_or_else(|_| "application/octet-stream".into())
    };
    match (route, file) {
        ("img", Some(body)) => match req.headers().get("range").and_then(|v| v.to_str().ok()) {
            Some(r) => match range(r, body.len()) {
                Some((start, end)) => respond(
                    state,
                    StatusCode::PARTIAL_CONTENT,
                    &[
                        ("content-type", content_type(name)),
                        ("content-range", format!("bytes {start}-{end}/{}", body.len())),
                    ],
                    body.slice(start..=end),
                ),
                None => respond(
                    state,
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &[("content-range", format!("bytes */{}", body.len()))],
                    Bytes::new(),
                ),
            },
            None => respond(state, StatusCode::OK, &[("content-type", content_type(name))], body),
        },
        ("from0", Some(body)) => respond(
            state,
            StatusCode::PARTIAL_CONTENT,
            &[
                ("content-type", content_type(name)),
                ("content-range", format!("bytes 0-{}/{}", body.len() - 1, body.len())),
            ],
            body,
        ),
        ("norange", Some(body)) => respond(state, StatusCode::OK, &[("content-type", content_type(name))], body),
        ("slow", Some(body)) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            respond(state, StatusCode::OK, &[], body)
        }
        ("flaky", Some(body)) => {
            let first = state.flaky_seen.lock().unwrap().insert(name.to_owned());
            if first {
                respond(
                    state,
                    StatusCode::SERVICE_UNAVAILABLE,
                    &[],
                    Bytes::from_static(b"try later"),
                )
            } else {
                respond(state, StatusCode::OK, &[("content-type", content_type(name))], body)
            }
        }
        ("redirect", _) => {
            let to = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("to="))
                .unwrap_or("/")
                .to_owned();
            respond(state, StatusCode::FOUND, &[("location", to)], Bytes::new())
        }
        ("html", _) => respond(
            state,
            StatusCode::OK,
            &[("content-type", "text/html".into())],
            Bytes::from_static(b"<!doctype html><html><body><h1>Not an image</h1></body></html>"),
        ),
        _ => respond(state, StatusCode::NOT_FOUND, &[], Bytes::from_static(b"not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_decodes_back_to_its_size() {
        for format in FORMATS {
            let bytes = encode(format, 31, 17);
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!((img.width(), img.height()), (31, 17), "{format:?}");
            assert_eq!(image::guess_format(&bytes).unwrap(), format);
        }
        let exif = jpeg_with_exif(40, 30, 50_000);
        assert_eq!(image::load_from_memory(&exif).unwrap().width(), 40);
        assert!(exif.len() > 50_000);
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(range("bytes=0-5000", 1000), Some((0, 999)));
        assert_eq!(range("bytes=1000-1100", 1000), None);
        assert_eq!(range("bytes=0-9", 0), None);
    }
}
