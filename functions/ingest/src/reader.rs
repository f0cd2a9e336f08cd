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
