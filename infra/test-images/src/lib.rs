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

/// The picture as a JPEG of the given quality, as the `image` crate writes it (SOI, APP0 JFIF,
/// DQT, SOF0, DHT, SOS).
pub fn jpeg(width: u32, height: u32, quality: u8) -> Vec<u8> {
    let img = picture(
        width,
        height,
        u64::from(width) << 32 | u64::from(height) | u64::from(quality) << 16,
    );
    let mut out = Cursor::new(Vec::new());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(encoder).expect("JPEG encodes");
    out.into_inner()
}

/// Metadata segments put before a JPEG's frame header, as cameras, phones and editors write them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JpegMeta {
    /// Bytes of an APP1 EXIF segment (0: none): a TIFF structure with camera tags, padded with
    /// maker-note bytes to this size (the thumbnail's bytes included).
    pub exif: usize,
    /// The EXIF block carries a 160x120 JPEG thumbnail (IFD1), as cameras write it.
    pub thumbnail: bool,
    /// Bytes of an ICC profile in APP2 (0: none; 3144 is the common sRGB IEC61966-2.1, ~500 a
    /// compact sRGB or Display P3).
    pub icc: usize,
    /// Bytes of an XMP packet in APP1 (0: none), as editors add.
    pub xmp: usize,
    /// The frame is marked progressive (SOF2). Only the header is: the scans stay the baseline
    /// encoder's, so such a file is for header readers, not decoders.
    pub progressive: bool,
}

/// A JPEG (quality `quality`) with the metadata of `meta` between SOI and the frame header, in the
/// order cameras write it (EXIF, XMP, ICC; no JFIF APP0 when there is EXIF).
pub fn jpeg_photo(width: u32, height: u32, quality: u8, meta: JpegMeta) -> Vec<u8> {
    let plain = jpeg(width, height, quality);
    let mut rest = &plain[2..];
    if meta.exif > 0 && rest.starts_with(&[0xff, 0xe0]) {
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        rest = &rest[2 + len..];
    }
    let mut out = plain[..2].to_vec(); // SOI
    if meta.exif > 0 {
        segment(&mut out, 0xe1, &exif(meta.exif, meta.thumbnail));
    }
    if meta.xmp > 0 {
        let mut xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">".to_vec();
        while xmp.len() < meta.xmp {
            xmp.extend_from_slice(b"<rdf:li>keyword</rdf:li> ");
        }
        xmp.truncate(meta.xmp.clamp(64, 65_533));
        segment(&mut out, 0xe1, &xmp);
    }
    if meta.icc > 0 {
        let size = meta.icc.min(65_519);
        let mut icc = b"ICC_PROFILE\0\x01\x01".to_vec();
        let mut profile = vec![0u8; size];
        profile[..4].copy_from_slice(&(size as u32).to_be_bytes());
        profile[12..16].copy_from_slice(b"mntr");
        profile[16..20].copy_from_slice(b"RGB ");
        profile[20..24].copy_from_slice(b"XYZ ");
        profile[36..40].copy_from_slice(b"acsp");
        for (i, b) in profile.iter_mut().enumerate().skip(128) {
            *b = (i * 7 % 251) as u8;
        }
        icc.extend_from_slice(&profile);
        segment(&mut out, 0xe2, &icc);
    }
    let start = out.len();
    out.extend_from_slice(rest);
    if meta.progressive {
        // Find the frame header by walking the segments (never by searching the bytes).
        let mut i = start;
        while out[i] == 0xff && out[i + 1] != 0xc0 {
            i += 2 + usize::from(u16::from_be_bytes([out[i + 2], out[i + 3]]));
        }
        assert_eq!(out[i + 1], 0xc0, "a baseline frame header");
        out[i + 1] = 0xc2;
    }
    out
}

/// Appends the segment `FF marker` with `payload`.
fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    let len = payload.len().min(65_533);
    out.extend_from_slice(&[0xff, marker]);
    out.extend_from_slice(&((len + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
}

/// An EXIF payload ("Exif\0\0" + TIFF) of about `size` bytes: IFD0 with Make, Model,
/// Orientation and an ExifIFD holding a maker note that pads it to `size`; with `thumbnail`, IFD1
/// pointing at a 160x120 JPEG (whose own SOI and SOF a marker walk must never see).
fn exif(size: usize, thumbnail: bool) -> Vec<u8> {
    let thumb = if thumbnail { jpeg(160, 120, 75) } else { Vec::new() };
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    // IFD0 at 8: 4 entries, then the next IFD's offset; strings and the ExifIFD after it.
    let ifd0_end = 8 + 2 + 4 * 12 + 4;
    let make_at = ifd0_end as u32;
    let model_at = make_at + 8;
    let exif_ifd_at = model_at + 12;
    let exif_ifd_len = 2 + 12 + 4;
    let note_at = exif_ifd_at + exif_ifd_len;
    let fixed = 6 + note_at as usize + thumb.len() + if thumbnail { 2 + 2 * 12 + 4 } else { 0 };
    let note_len = size.saturating_sub(fixed).max(16) as u32;
    let ifd1_at = note_at + note_len;
    t.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut t, 0x010f, 2, 8, make_at); // Make
    entry(&mut t, 0x0110, 2, 12, model_at); // Model
    entry(&mut t, 0x0112, 3, 1, 1); // Orientation
    entry(&mut t, 0x8769, 4, 1, exif_ifd_at); // ExifIFD
    t.extend_from_slice(&(if thumbnail { ifd1_at } else { 0 }).to_le_bytes());
    t.extend_from_slice(b"Camera\0\0");
    t.extend_from_slice(b"Model 12 Pro");
    t.extend_from_slice(&1u16.to_le_bytes());
    entry(&mut t, 0x927c, 7, note_len, note_at); // MakerNote
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend((0..note_len).map(|i| (i % 253) as u8));
    if thumbnail {
        let thumb_at = ifd1_at + 2 + 2 * 12 + 4;
        t.extend_from_slice(&2u16.to_le_bytes());
        entry(&mut t, 0x0201, 4, 1, thumb_at); // JPEGInterchangeFormat
        entry(&mut t, 0x0202, 4, 1, thumb.len() as u32); // JPEGInterchangeFormatLength
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&thumb);
    }
    let mut out = b"Exif\0\0".to_vec();
    out.extend_from_slice(&t);
    out
}

/// An animated GIF of `frames` frames (the picture shifted a little each frame).
pub fn gif_animated(width: u32, height: u32, frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 30);
        encoder
            .set_repeat(image::codecs::gif::Repeat::Infinite)
            .expect("repeat");
        let frames = (0..frames).map(|i| {
            let img = DynamicImage::ImageRgb8(picture(width, height, 7 + u64::from(i))).to_rgba8();
            image::Frame::from_parts(img, 0, 0, image::Delay::from_numer_denom_ms(100, 1))
        });
        encoder.encode_frames(frames).expect("GIF encodes");
    }
    out
}

/// A lossy WebP's header (`RIFF`, `VP8 ` chunk, key frame tag, start code, size) followed by
/// `size` bytes in all. The `image` crate encodes only lossless WebP, so the frame data is filler:
/// a file for header readers, not decoders.
pub fn webp_lossy(width: u16, height: u16, size: usize) -> Vec<u8> {
    let size = size.max(64) & !1;
    let chunk = (size - 20) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(size as u32 - 8).to_le_bytes());
    out.extend_from_slice(b"WEBPVP8 ");
    out.extend_from_slice(&chunk.to_le_bytes());
    let partition = (chunk / 4) << 5 | 1 << 4; // key frame (bit 0 clear), version 0, shown
    out.extend_from_slice(&partition.to_le_bytes()[..3]);
    out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
    out.extend_from_slice(&(width & 0x3fff).to_le_bytes());
    out.extend_from_slice(&(height & 0x3fff).to_le_bytes());
    let mut state = u64::from(width) << 16 | u64::from(height) | 1;
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(state as u8);
    }
    out
}

/// An extended WebP (`VP8X` with an ICC profile of `icc` bytes) around the `image` crate's
/// lossless bitstream: decodable.
pub fn webp_extended(width: u32, height: u32, icc: usize) -> Vec<u8> {
    let lossless = encode(ImageFormat::WebP, width, height);
    let vp8l = &lossless[12..]; // the chunk after RIFF....WEBP
    let icc = icc & !1;
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0x20, 0, 0, 0]); // ICC profile present
    body.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    if icc > 0 {
        body.extend_from_slice(b"ICCP");
        body.extend_from_slice(&(icc as u32).to_le_bytes());
        body.extend((0..icc).map(|i| (i % 251) as u8));
    }
    body.extend_from_slice(vp8l);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// An uncompressed RGB TIFF, one strip, its directory after the pixels (where most writers put
/// it), little (`II`) or big (`MM`) endian: decodable.
pub fn tiff(width: u32, height: u32, big_endian: bool) -> Vec<u8> {
    let pixels = picture(width, height, 3).into_raw();
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = if big_endian {
        b"MM\0*".to_vec()
    } else {
        b"II*\0".to_vec()
    };
    let bits_at = 8 + pixels.len() as u32;
    let ifd_at = bits_at + 6 + (bits_at + 6) % 2;
    out.extend_from_slice(&u32b(ifd_at));
    out.extend_from_slice(&pixels);
    for _ in 0..3 {
        out.extend_from_slice(&u16b(8)); // BitsPerSample 8,8,8
    }
    out.resize(ifd_at as usize, 0);
    let entries: [(u16, u16, u32, u32); 9] = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, bits_at),
        (259, 3, 1, 1), // no compression
        (262, 3, 1, 2), // RGB
        (273, 4, 1, 8), // the strip's offset
        (277, 3, 1, 3), // samples per pixel
        (278, 4, 1, height),
        (279, 4, 1, pixels.len() as u32),
    ];
    out.extend_from_slice(&u16b(entries.len() as u16));
    for (tag, kind, count, value) in entries {
        out.extend_from_slice(&u16b(tag));
        out.extend_from_slice(&u16b(kind));
        out.extend_from_slice(&u32b(count));
        if kind == 3 && count == 1 {
            // A SHORT value sits in the first two bytes of the field.
            out.extend_from_slice(&u16b(value as u16));
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&u32b(value));
        }
    }
    out.extend_from_slice(&u32b(0));
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
    fn web_images_are_what_they_claim() {
        // Decodable ones decode to their size; the header-only ones (progressive marker, lossy
        // WebP filler) at least parse as images of their size.
        let exif_icc = JpegMeta {
            exif: 24_000,
            thumbnail: true,
            icc: 3144,
            xmp: 2000,
            ..JpegMeta::default()
        };
        for (bytes, size, decodes) in [
            (jpeg_photo(120, 80, 85, exif_icc), (120, 80), true),
            (
                jpeg_photo(
                    120,
                    80,
                    85,
                    JpegMeta {
                        exif: 3000,
                        ..JpegMeta::default()
                    },
                ),
                (120, 80),
                true,
            ),
            (
                jpeg_photo(
                    120,
                    80,
                    85,
                    JpegMeta {
                        progressive: true,
                        ..JpegMeta::default()
                    },
                ),
                (120, 80),
                false,
            ),
            (gif_animated(40, 30, 3), (40, 30), true),
            (webp_lossy(640, 480, 5000), (640, 480), false),
            (webp_extended(50, 40, 600), (50, 40), true),
            (tiff(33, 21, false), (33, 21), true),
            (tiff(33, 21, true), (33, 21), true),
        ] {
            if decodes {
                let img = image::load_from_memory(&bytes).unwrap();
                assert_eq!((img.width(), img.height()), size);
            }
            assert_eq!(dimensions(&bytes), size);
        }
        let with_exif = jpeg_photo(120, 80, 85, exif_icc);
        let plain = jpeg(120, 80, 85);
        assert!(with_exif.len() > plain.len() + 24_000 + 3144 + 2000 - 100);
        assert!(with_exif.len() < plain.len() + 24_000 + 3144 + 2000 + 100);
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
