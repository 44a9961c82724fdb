//! One exchange on a QUIC stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use quinn::VarInt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Authenticated, Stream};

/// One bidirectional QUIC stream. Finishing it ends our side cleanly; dropping it unfinished resets it,
/// so the peer sees an abandoned exchange as an error, never as a short clean one.
pub(super) struct QuicStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    auth: Authenticated,
    finished: bool,
}

impl QuicStream {
    pub(super) fn new((send, recv): (quinn::SendStream, quinn::RecvStream), auth: Authenticated) -> Self {
        Self { send, recv, auth, finished: false }
    }
}

impl Stream for QuicStream {
    fn finish(mut self: Box<Self>) {
        self.finished = true;
        let _ = self.send.finish();
    }

    fn finish_delivered(mut self: Box<Self>) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.finished = true;
        let _ = self.send.finish();
        // The stream holds its connection open until the peer acknowledged every byte (or gave up).
        Box::pin(async move {
            let _ = self.send.stopped().await;
        })
    }

    fn authenticated(&self) -> Option<Authenticated> {
        Some(self.auth)
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.send.reset(VarInt::from_u32(0));
            let _ = self.recv.stop(VarInt::from_u32(0));
        }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf).map_err(io::Error::from)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}
