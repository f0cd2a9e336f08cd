//! Image jobs benchmark: the worker's header-only fetch against downloading and decoding the whole
//! image (the seed implementations' way), same run, same photos, same local server and concurrency.
//!
//! Photos: camera-sized JPEGs (12 and 8 megapixels, one with a 40 KB EXIF block) made by
//! `test-images`, served on 127.0.0.1 with `Range` support. Reported per path: images/s, body
//! bytes received per image, and the ratios. `infra/bench/images [IMAGES] [CONCURRENCY]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use test_images::{ImageFormat, ImageServer, encode, jpeg_with_exif};
use worker::image::fetch::{FetchConfig, Fetcher};

struct Outcome {
    images: usize,
    wall: Duration,
    bytes: u64,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.images as f64 / self.wall.as_secs_f64()
    }
    fn bytes_per_image(&self) -> f64 {
        self.bytes as f64 / self.images as f64
    }
    fn p(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l[((l.len() as f64 - 1.0) * q).round() as usize]
    }
}

/// Runs `work(i)` for `n` items, `concurrency` at a time; `work` returns body bytes received.
async fn run<F, Fut>(n: usize, concurrency: usize, work: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let start = Instant::now();
    let results: Vec<(u64, Duration)> = futures::stream::iter(0..n)
        .map(|i| {
            let fut = work(i);
            async move {
                let t = Instant::now();
                let bytes = fut.await;
                (bytes, t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Outcome {
        images: n,
        wall: start.elapsed(),
        bytes: results.iter().map(|r| r.0).sum(),
        latencies: results.iter().map(|r| r.1).collect(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let header_images = args.first().copied().unwrap_or(400);
    let concurrency = args.get(1).copied().unwrap_or(16);
    let full_images = (header_images / 10).clamp(8, 64);

    eprintln!("encoding the photos ...");
    let photos: Vec<(String, Vec<u8>, (u32, u32))> = vec![
        ("a.jpg".into(), encode(ImageFormat::Jpeg, 4000, 3000), (4000, 3000)),
        ("b.jpg".into(), jpeg_with_exif(4032, 3024, 40_000), (4032, 3024)),
        ("c.jpg".into(), encode(ImageFormat::Jpeg, 3264, 2448), (3264, 2448)),
        ("d.jpg".into(), jpeg_with_exif(3264, 2448, 12_000), (3264, 2448)),
    ];
    let sizes: Vec<usize> = photos.iter().map(|p| p.1.len()).collect();
    let server = Arc::new(ImageServer::start(photos.iter().map(|(n, b, _)| (n.clone(), b.clone()))).await);
    let names: Vec<String> = photos.iter().map(|p| p.0.clone()).collect();
    let dims: Vec<(u32, u32)> = photos.iter().map(|p| p.2).collect();
    let url = |i: usize| server.url(&format!("/img/{}?i={i}", names[i % names.len()]));

    let fetcher = Fetcher::new(FetchConfig {
        concurrency,
        allow_hosts: "127.0.0.1".into(),
        allow_ports: "1-65535".parse().unwrap(), // the local servers' random ports
        ..FetchConfig::default()
    })
    .unwrap();
    // Same client settings for both paths: pooled, same concurrency.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // Warm both (connections, page cache).
    fetcher.dimensions(&url(0)).await.unwrap();
    client.get(url(0)).send().await.unwrap().bytes().await.unwrap();

    eprintln!("header-only: {header_images} images, {concurrency} at a time ...");
    let header = run(header_images, concurrency, |i| {
        let fetcher = &fetcher;
        let u = url(i);
        let expect = dims[i % dims.len()];
        async move {
            let d = fetcher.dimensions(&u).await.unwrap();
            assert_eq!((d.width, d.height), expect, "{u}");
            d.bytes_read
        }
    })
    .await;

    eprintln!("full download + decode: {full_images} images, {concurrency} at a time ...");
    let full = run(full_images, concurrency, |i| {
        let client = client.clone();
        let u = url(i);
        let expect = dims[i % dims.len()];
        async move {
            let body = client.get(&u).send().await.unwrap().bytes().await.unwrap();
            let n = body.len() as u64;
            let (w, h) = tokio::task::spawn_blocking(move || {
                let img = image::load_from_memory(&body).expect("decodes");
                (img.width(), img.height())
            })
            .await
            .unwrap();
            assert_eq!((w, h), expect, "{u}");
            n
        }
    })
    .await;

    eprintln!("full download, no decode: {} images ...", full_images * 4);
    let download = run(full_images * 4, concurrency, |i| {
        let client = client.clone();
        let u = url(i);
        async move { client.get(&u).send().await.unwrap().bytes().await.unwrap().len() as u64 }
    })
    .await;

    let mean_size = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    println!(
        "photos: {} JPEGs, {:.2} MB mean ({})",
        sizes.len(),
        mean_size / 1e6,
        sizes
            .iter()
            .map(|s| format!("{:.2}", *s as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!("| path | images | images/s | bytes per image | p50 | p99 |\n|---|---|---|---|---|---|");
    for (name, o) in [
        ("full download + decode (seed's way, baseline)", &full),
        ("full download, no decode (for reference)", &download),
        ("header only (worker)", &header),
    ] {
        println!(
            "| {name} | {} | {:.1} | {:.0} | {:.1} ms | {:.1} ms |",
            o.images,
            o.rate(),
            o.bytes_per_image(),
            o.p(0.5).as_secs_f64() * 1e3,
            o.p(0.99).as_secs_f64() * 1e3
        );
    }
    let bytes_ratio = header.bytes_per_image() / full.bytes_per_image();
    let speedup = header.rate() / full.rate();
    println!(
        "header-only reads 1/{:.0} of the bytes (target <= 1/20: {}) at {:.1}x the images/s (target >= 10x: {})",
        1.0 / bytes_ratio,
        if bytes_ratio <= 0.05 { "met" } else { "NOT met" },
        speedup,
        if speedup >= 10.0 { "met" } else { "NOT met" }
    );
    println!(
        "against downloading without decoding: {:.1}x the images/s",
        header.rate() / download.rate()
    );
}
