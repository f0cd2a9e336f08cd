//! A deterministic, realistic JSONL log corpus: the same bytes for the same seed and size, on any
//! machine (own PRNG, no crate whose sequence could change).
//!
//! Mix per line: levels weighted like production (mostly info, some debug/warn, few error), in
//! varied case; timestamps as RFC 3339 (UTC or with an offset) or epoch seconds/milliseconds;
//! `service` on ~85 %, `trace_id` on ~55 %; 0-6 extra attributes (numbers, strings, booleans,
//! small objects and arrays); messages of 20-200 characters, some with escapes or non-ASCII;
//! ~3 % invalid lines of every kind the validator rejects, and a few blank lines.

use std::fmt::Write;

/// xorshift64*: tiny, fast, and fixed forever.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// true with probability `percent` %.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const SERVICES: &[&str] = &[
    "checkout",
    "payments",
    "auth",
    "search",
    "inventory",
    "gateway",
    "notifications",
    "billing-worker",
];
const WORDS: &[&str] = &[
    "request",
    "completed",
    "user",
    "order",
    "cache",
    "miss",
    "hit",
    "retrying",
    "upstream",
    "timeout",
    "connection",
    "pool",
    "exhausted",
    "payment",
    "authorized",
    "declined",
    "session",
    "refreshed",
    "token",
    "expired",
    "query",
    "slow",
    "rows",
    "scanned",
    "queue",
    "depth",
    "message",
    "published",
    "consumer",
    "lag",
    "disk",
    "usage",
    "high",
    "GET",
    "POST",
    "/api/v1/orders",
    "/health",
    "200",
    "404",
    "503",
];
const ODD: &[&str] = &[
    "quoted \\\"value\\\"",
    "path C:\\\\logs\\\\app",
    "tab\\tseparated",
    "caf\u{e9} cr\u{e8}me",
    "\u{1f680} deployed",
    "line\\nbreak",
    "\\u00e9t\\u00e9",
];
const ATTR_KEYS: &[&str] = &[
    "http_status",
    "duration_ms",
    "user_id",
    "region",
    "retry",
    "bytes",
    "cache_hit",
    "order_id",
    "host",
    "pod",
    "method",
    "path",
    "attempt",
    "tenant",
    "queue_depth",
];

/// Appends one line (with its `\n`) to `out`; returns whether the validator should accept it
/// (`None` for a blank line, which the ingest skips without counting).
pub fn line(rng: &mut Rng, n: u64, out: &mut String) -> Option<bool> {
    let roll = rng.below(1000);
    if roll < 3 {
        out.push('\n');
        return None;
    }
    if roll < 33 {
        invalid(rng, n, out);
        out.push('\n');
        return Some(false);
    }
    valid(rng, n, out);
    Some(true)
}

fn valid(rng: &mut Rng, n: u64, out: &mut String) {
    out.push('{');
    timestamp(rng, n, out);
    let level = match rng.below(100) {
        0..=59 => "info",
        60..=74 => "debug",
        75..=86 => "warn",
        87..=94 => "error",
        95..=97 => "trace",
        _ => "fatal",
    };
    let level = match rng.below(20) {
        0 => level.to_ascii_uppercase(),
        1 if level == "warn" => "WARNING".to_string(),
        2 if level == "fatal" => "critical".to_string(),
        _ => level.to_string(),
    };
    write!(out, r#","level":"{level}""#).unwrap();
    if rng.chance(85) {
        write!(out, r#","service":"{}""#, rng.pick(SERVICES)).unwrap();
    }
    out.push_str(r#","message":""#);
    message(rng, out);
    out.push('"');
    if rng.chance(55) {
        write!(out, r#","trace_id":"{:016x}{:016x}""#, rng.next(), rng.next()).unwrap();
    }
    for _ in 0..rng.below(7) {
        attribute(rng, out);
    }
    out.push_str("}\n");
}

fn timestamp(rng: &mut Rng, n: u64, out: &mut String) {
    // 2026-11-23T00:00:00Z plus about 2 lines a second.
    let secs = 1_795_392_000 + n / 2;
    let millis = rng.below(1000);
    match rng.below(100) {
        0..=79 => {
            let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
            write!(
                out,
                r#""timestamp":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z""#,
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
            .unwrap();
        }
        80..=84 => {
            let t = time::OffsetDateTime::from_unix_timestamp(secs as i64 + 3600).unwrap();
            write!(
                out,
                r#""timestamp":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}+01:00""#,
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
            .unwrap();
        }
        85..=94 => write!(out, r#""timestamp":{}{millis:03}"#, secs).unwrap(),
        _ => write!(out, r#""timestamp":{secs}"#).unwrap(),
    }
}

fn message(rng: &mut Rng, out: &mut String) {
    let words = 3 + rng.below(22);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        if rng.chance(3) {
            out.push_str(rng.pick(ODD));
        } else if rng.chance(10) {
            write!(out, "{}", rng.below(100_000)).unwrap();
        } else {
            out.push_str(rng.pick(WORDS));
        }
    }
}

fn attribute(rng: &mut Rng, out: &mut String) {
    let key = rng.pick(ATTR_KEYS);
    match rng.below(10) {
        0..=3 => write!(out, r#","{key}":{}"#, rng.below(10_000)).unwrap(),
        4 => write!(out, r#","{key}":{}.{:02}"#, rng.below(5000), rng.below(100)).unwrap(),
        5..=7 => write!(out, r#","{key}":"{}-{:x}""#, rng.pick(WORDS), rng.below(1 << 20)).unwrap(),
        8 => write!(out, r#","{key}":{}"#, rng.chance(50)).unwrap(),
        _ => {
            if rng.chance(50) {
                write!(
                    out,
                    r#","{key}":{{"zone":"{}","weight":{},"tags":["a","b"]}}"#,
                    rng.pick(SERVICES),
                    rng.below(100)
                )
                .unwrap()
            } else {
                write!(
                    out,
                    r#","{key}":[{},{},{}]"#,
                    rng.below(9),
                    rng.below(99),
                    rng.below(999)
                )
                .unwrap()
            }
        }
    }
}

fn invalid(rng: &mut Rng, n: u64, out: &mut String) {
    let ok_ts = r#""timestamp":"2026-11-23T10:00:00.000Z""#;
    match rng.below(10) {
        0 => {
            // truncated mid-line
            let mut full = String::new();
            valid(rng, n, &mut full);
            let cut = full.len() / 2;
            let cut = (0..=cut).rev().find(|&i| full.is_char_boundary(i)).unwrap_or(0);
            out.push_str(&full[..cut]);
        }
        1 => write!(out, "ERROR {n} plain text, not JSON").unwrap(),
        2 => write!(out, r#"[{n},"array"]"#).unwrap(),
        3 => write!(out, r#"{{"level":"info","message":"no timestamp {n}"}}"#).unwrap(),
        4 => write!(
            out,
            r#"{{"timestamp":"yesterday","level":"info","message":"bad time {n}"}}"#
        )
        .unwrap(),
        5 => write!(out, r#"{{{ok_ts},"level":"loud","message":"unknown level {n}"}}"#).unwrap(),
        6 => write!(out, r#"{{{ok_ts},"message":"no level {n}"}}"#).unwrap(),
        7 => write!(out, r#"{{{ok_ts},"level":"warn","message":"  "}}"#).unwrap(),
        8 => write!(out, r#"{{{ok_ts},"level":"warn","message":"s","service":{n}}}"#).unwrap(),
        _ => write!(out, r#"{{"timestamp":-{n},"level":"info","message":"negative epoch"}}"#).unwrap(),
    }
}

/// Counts of a generated corpus, to check the ingest's figures against.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub lines: u64,
    pub valid: u64,
    pub invalid: u64,
    pub blank: u64,
}

/// Lines from `seed` until at least `bytes` bytes, each passed to `sink` (terminator included).
pub fn generate(seed: u64, bytes: u64, mut sink: impl FnMut(&str)) -> Expected {
    let mut rng = Rng::new(seed);
    let (mut written, mut e) = (0u64, Expected::default());
    let mut buf = String::with_capacity(1024);
    while written < bytes {
        buf.clear();
        e.lines += 1;
        match line(&mut rng, e.lines, &mut buf) {
            Some(true) => e.valid += 1,
            Some(false) => e.invalid += 1,
            None => e.blank += 1,
        }
        written += buf.len() as u64;
        sink(&buf);
    }
    e
}

/// `generate` into memory.
pub fn in_memory(seed: u64, bytes: u64) -> (Vec<u8>, Expected) {
    let mut out = Vec::with_capacity(bytes as usize + 1024);
    let e = generate(seed, bytes, |l| out.extend_from_slice(l.as_bytes()));
    (out, e)
}

/// `generate` into a file (kept: the same seed and size give the same file, so it is reused).
pub fn file(dir: &std::path::Path, seed: u64, bytes: u64) -> std::io::Result<(std::path::PathBuf, Expected)> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("logs-{seed}-{}MB.jsonl", bytes >> 20));
    // The counts are cheap to recompute; the bytes are only written when missing.
    let reuse = path.exists();
    let mut w = if reuse {
        None
    } else {
        Some(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path.with_extension("tmp"))?,
        ))
    };
    let mut err = None;
    let e = generate(seed, bytes, |l| {
        if let Some(w) = w.as_mut()
            && err.is_none()
            && let Err(e) = w.write_all(l.as_bytes())
        {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    if let Some(mut w) = w {
        w.flush()?;
        drop(w);
        std::fs::rename(path.with_extension("tmp"), &path)?;
    }
    Ok((path, e))
}
