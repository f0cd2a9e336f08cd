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

/// Buffered lines of `body`, gunzipped when `gzip`; `count` follows the raw bytes read.
pub fn lines<R: AsyncRead + Send + Unpin + 'static>(
    body: R,
    gzip: bool,
    count: Arc<AtomicU64>,
) -> Box<dyn AsyncBufRead + Send + Unpin> {
    let counted = BufReader::with_capacity(256 * 1024, Counted::new(body, count));
    if gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            async_compression::tokio::bufread::GzipDecoder::new(counted),
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
}
