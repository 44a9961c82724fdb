//! Reading and writing [`proto`] frames on a stream, with the size limits checked before any allocation.

use std::time::Duration;

use proto::{ErrorCode, FRAME_PREFIX, Request, Response, frame_len};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Incoming, TransportError};

/// Answers the first request of a connection a server will not serve (`busy`, `not trusted`) with
/// `code` and `message`, within `within`, and closes it: so that its peer can tell a refusal from a
/// fault. The caller bounds how many are answered at once.
pub async fn refuse_connection(mut incoming: Box<dyn Incoming>, code: ErrorCode, message: &str, within: Duration) {
    let answer = async {
        let mut stream = incoming.accept_stream().await.ok()??;
        read_request(&mut stream).await.ok()??;
        write_response(&mut stream, &Response::Err { code, message: message.to_string() }).await.ok()?;
        stream.flush().await.ok()?;
        stream.finish();
        // Held until the peer is done or asks again: a QUIC connection dropped at once is closed (code 0)
        // before the answer goes out.
        let _ = incoming.accept_stream().await;
        Some(())
    };
    let _ = tokio::time::timeout(within, answer).await;
}

/// Writes a request frame.
pub async fn write_request<S: AsyncWrite + Unpin + ?Sized>(s: &mut S, req: &Request) -> Result<(), TransportError> {
    s.write_all(&req.encode()).await?;
    s.flush().await?;
    Ok(())
}

/// Writes a response frame (the raw bytes of an ok response follow, written by the caller).
pub async fn write_response<S: AsyncWrite + Unpin + ?Sized>(s: &mut S, resp: &Response) -> Result<(), TransportError> {
    s.write_all(&resp.encode()).await?;
    Ok(())
}

/// Reads a request; `None` if the stream ended cleanly before its first byte (the peer is done).
pub async fn read_request<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> Result<Option<Request>, TransportError> {
    let mut prefix = [0u8; FRAME_PREFIX];
    let first = s.read(&mut prefix).await?;
    if first == 0 {
        return Ok(None);
    }
    s.read_exact(&mut prefix[first..]).await?;
    let body = read_body(s, prefix).await?;
    Ok(Some(Request::decode(&body)?))
}

/// Reads a response header.
pub async fn read_response<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> Result<Response, TransportError> {
    let mut prefix = [0u8; FRAME_PREFIX];
    s.read_exact(&mut prefix).await?;
    let body = read_body(s, prefix).await?;
    Ok(Response::decode(&body)?)
}

async fn read_body<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    prefix: [u8; FRAME_PREFIX],
) -> Result<Vec<u8>, TransportError> {
    let mut body = vec![0u8; frame_len(prefix)?];
    s.read_exact(&mut body).await?;
    Ok(body)
}
