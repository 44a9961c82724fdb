//! A connection that makes no progress for a while is closed: a client that stops reading a download,
//! trickles a body, or holds a connection open without a request gives its slot back after [`IDLE`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may go without a byte read or written. The pages' live updates write a
/// keep-alive every 15 s, so an open page is never idle that long.
pub(crate) const IDLE: Duration = Duration::from_secs(30);

/// `S`, failing with `TimedOut` once neither a read nor a write has made progress for `limit`.
pub(crate) struct Idle<S> {
    inner: S,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<S> Idle<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit, timer: Box::pin(tokio::time::sleep(limit)) }
    }

    /// Progress: the idle time starts again.
    fn moved(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.limit);
    }

    /// What a pending read or write comes to: still pending, or timed out.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle"))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes what `polled` came to, counting progress.
    fn track<T>(&mut self, polled: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.moved();
                Poll::Ready(result)
            }
            Poll::Pending => self.waiting(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.track(polled, cx)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(polled, cx)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_and_a_talking_one_does_not() {
        let (mine, mut theirs) = tokio::io::duplex(64);
        let mut idle = Idle::new(mine, IDLE);
        let mut byte = [0u8; 1];
        tokio::time::sleep(IDLE / 2).await;
        theirs.write_all(b"x").await.expect("write");
        idle.read_exact(&mut byte).await.expect("a byte in time");
        let started = Instant::now();
        let silent = idle.read_exact(&mut byte).await.expect_err("nothing more comes");
        assert_eq!(silent.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), IDLE, "counted from the last byte");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_times_out() {
        let (mine, _theirs) = tokio::io::duplex(8);
        let mut idle = Idle::new(mine, IDLE);
        let stuck = idle.write_all(&[0u8; 64]).await.expect_err("the buffer fills");
        assert_eq!(stuck.kind(), io::ErrorKind::TimedOut);
    }
}
