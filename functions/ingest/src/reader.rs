//! Reading an S3 object as lines, in constant memory: a byte counter (for progress by bytes)
//! under an optional gzip decoder.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};

pin_project_lite::pin_project! {
    /// Counts the bytes read through it (compressed bytes, for a gzip object).
    pub struct Counted<R> {
        #[pin]
        inner: R,
        count: Arc<AtomicU64>,
    }
}

impl<R> Counted<R> {
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        Counted { inner, count }
    }
}

impl<R: AsyncRead> AsyncRead for Counted<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let poll = this.inner.poll_read(cx, buf);
        this.count
            .fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        poll
    }
}

/// How far a gzip stream may inflate before it is refused as a decompression bomb.
#[derive(Debug, Clone, Copy)]
pub struct InflateLimits {
    /// Most decoded bytes in all.
    pub max_bytes: u64,
    /// Most decoded bytes per compressed byte, once past [`RATIO_CHECKED_AFTER`].
    pub max_ratio: u64,
}

/// Decoded bytes after which the ratio is checked (small files may compress very well).
pub const RATIO_CHECKED_AFTER: u64 = 16 << 20;

/// The error a refused gzip stream reads as (find it with [`bomb`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Bomb(pub String);

/// The [`Bomb`] inside an I/O error, if that is what it is.
pub fn bomb(e: &std::io::Error) -> Option<&Bomb> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Bomb>())
}

pin_project_lite::pin_project! {
    /// Counts decoded bytes and fails the read as soon as the limits are passed, in the middle of
    /// a line if need be: a stream of zeros without a newline is stopped, not read to its end.
    pub struct Inflated<R> {
        #[pin]
        inner: R,
        decoded: u64,
        compressed: Arc<AtomicU64>,
        limits: InflateLimits,
    }
}

impl<R: AsyncRead> AsyncRead for Inflated<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let poll = this.inner.poll_read(cx, buf);
        *this.decoded += (buf.filled().len() - before) as u64;
        let (decoded, limits) = (*this.decoded, *this.limits);
        let compressed = this.compressed.load(Ordering::Relaxed).max(1);
        let refused = if decoded > limits.max_bytes {
            Some(format!(
                "the gzip file inflates to more than {} bytes; refused",
                limits.max_bytes
            ))
        } else if decoded > RATIO_CHECKED_AFTER && decoded / compressed > limits.max_ratio {
            Some(format!(
                "the gzip file inflates more than {}:1; refused as a possible decompression bomb",
                limits.max_ratio
            ))
        } else {
            None
        };
        match refused {
            Some(why) => Poll::Ready(Err(std::io::Error::other(Bomb(why)))),
            None => poll,
        }
    }
}

/// Buffered lines of `body`, gunzipped when `gzip` (within `limits`); `count` follows the raw
/// bytes read.
pub fn lines<R: AsyncRead + Send + Unpin + 'static>(
    body: R,
    gzip: bool,
    count: Arc<AtomicU64>,
    limits: InflateLimits,
) -> Box<dyn AsyncBufRead + Send + Unpin> {
    let counted = BufReader::with_capacity(256 * 1024, Counted::new(body, count.clone()));
    if gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            Inflated {
                inner: async_compression::tokio::bufread::GzipDecoder::new(counted),
                decoded: 0,
                compressed: count,
                limits,
            },
        ))
    } else {
        Box::new(counted)
    }
}

/// One line as [`read_line`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// No more lines.
    End,
    /// A line of this many bytes (terminator included) is in the buffer.
    Text(usize),
    /// A line of this many bytes was longer than the limit: it was consumed, not kept.
    TooLong(usize),
}

/// Reads the next line into `buf` (cleared first), keeping at most `max` bytes: a longer line
/// is consumed to its end without being buffered, so no line, however long, costs more memory
/// than `max`.
pub async fn read_line<R: AsyncBufRead + Unpin + ?Sized>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    use tokio::io::AsyncBufReadExt;
    buf.clear();
    let (mut total, mut too_long) = (0usize, false);
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (total, too_long) {
                (0, _) => Line::End,
                (n, true) => Line::TooLong(n),
                (n, false) => Line::Text(n),
            });
        }
        let (n, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + n > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..n]);
            }
        }
        reader.consume(n);
        total += n;
        if done {
            return Ok(if too_long {
                Line::TooLong(total)
            } else {
                Line::Text(total)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut reader, &mut buf, max).await.unwrap();
            if line == Line::End {
                return out;
            }
            out.push((line, buf.clone()));
        }
    }

    #[tokio::test]
    async fn lines_are_read_with_their_terminators_and_long_ones_skipped_unbuffered() {
        let lines = all(b"ab\r\nlong line here\n\nlast", 8).await;
        assert_eq!(
            lines,
            vec![
                (Line::Text(4), b"ab\r\n".to_vec()),
                (Line::TooLong(15), vec![]),
                (Line::Text(1), b"\n".to_vec()),
                (Line::Text(4), b"last".to_vec()),
            ]
        );
        assert_eq!(all(b"", 8).await, vec![]);
        assert_eq!(all(b"0123456789", 8).await, vec![(Line::TooLong(10), vec![])]);
    }

    #[tokio::test]
    async fn a_gzip_bomb_is_refused_in_the_middle_of_its_one_line() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..64 {
            gz.write_all(&[b'0'; 1 << 20]).unwrap(); // 64 MiB of zeros, no newline
        }
        let body = gz.finish().unwrap();
        let limits = InflateLimits {
            max_bytes: 1 << 40,
            max_ratio: 200,
        };
        let mut reader = lines(std::io::Cursor::new(body), true, Arc::new(AtomicU64::new(0)), limits);
        let mut buf = Vec::new();
        let err = read_line(&mut reader, &mut buf, 1 << 20).await.unwrap_err();
        assert!(bomb(&err).is_some_and(|b| b.0.contains("decompression bomb")), "{err}");
    }
}
