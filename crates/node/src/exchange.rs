//! The client side of one exchange: send a request, read the whole answer.

use proto::{ErrorCode, Request, Response};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, SemaphorePermit};
use transport::frame_io::{read_response, write_request};
use transport::{Connection, TransportError};

/// The answer's buffer grows as its bytes arrive, never by the length a peer announces; up to this much is
/// reserved at once (the largest chunk, so a chunk's buffer is allocated once), or one piece for an answer
/// counted against a budget.
const RESERVE: u64 = proto::MAX_CHUNK_SIZE as u64;
/// Bytes read at a time when they are counted against a budget.
const PIECE: u64 = 64 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The connection failed, or the peer broke the protocol.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The peer answered with an error.
    #[error("peer refused: {code}: {message}")]
    Refused { code: ErrorCode, message: String },
    /// The peer announced more bytes than the request can yield.
    #[error("peer announced {len} bytes where at most {max} fit")]
    TooLarge { len: u64, max: u64 },
    /// The answers in flight already took all the memory they may use.
    #[error("answer dropped: the memory budget for answers is used up")]
    OverBudget,
}

/// Sends `request` on a new stream of `conn` and reads the answer's bytes, at most `max_len` of them,
/// into `body` (emptied first): a buffer to reuse, so that chunk after chunk allocates nothing (and the
/// allocator keeps no freed chunk buffers around).
pub(crate) async fn request(
    conn: &dyn Connection,
    request: &Request,
    max_len: u64,
    body: Vec<u8>,
) -> Result<Vec<u8>, ExchangeError> {
    exchange(conn, request, max_len, None, body).await
}

/// [`request`], each piece of the answer taken from `budget` (one permit a byte) as it arrives: the
/// answers of many peers together stay within what the budget holds. A complete answer keeps its permits
/// for good (the caller keeps its bytes); a failed one gives them back.
pub(crate) async fn request_within(
    conn: &dyn Connection,
    request: &Request,
    max_len: u64,
    budget: &Semaphore,
) -> Result<Vec<u8>, ExchangeError> {
    exchange(conn, request, max_len, Some(budget), Vec::new()).await
}

async fn exchange(
    conn: &dyn Connection,
    request: &Request,
    max_len: u64,
    budget: Option<&Semaphore>,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, ExchangeError> {
    let mut stream = conn.open().await?;
    write_request(&mut stream, request).await?;
    let len = match read_response(&mut stream).await? {
        Response::Ok { len } if len <= max_len => len,
        Response::Ok { len } => return Err(ExchangeError::TooLarge { len, max: max_len }),
        Response::Err { code, message } => {
            // After `busy` or `not trusted` the server closes the connection: no channel to use again.
            if !matches!(code, ErrorCode::Busy | ErrorCode::NotTrusted) {
                stream.finish();
            }
            return Err(ExchangeError::Refused { code, message });
        }
    };
    let reserve = if budget.is_some() { PIECE } else { RESERVE };
    body.clear();
    body.reserve(len.min(reserve) as usize);
    let mut held: Option<SemaphorePermit<'_>> = None;
    while (body.len() as u64) < len {
        let piece = (len - body.len() as u64).min(if budget.is_some() { PIECE } else { len });
        if let Some(budget) = budget {
            let permit = budget.try_acquire_many(piece as u32).map_err(|_| ExchangeError::OverBudget)?;
            match &mut held {
                Some(held) => held.merge(permit),
                None => held = Some(permit),
            }
        }
        let read = (&mut stream).take(piece).read_to_end(&mut body).await.map_err(TransportError::from)?;
        if read as u64 != piece {
            return Err(TransportError::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)).into());
        }
    }
    stream.finish();
    if let Some(held) = held {
        held.forget();
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proto::{FileId, NodeId};
    use tokio::io::AsyncWriteExt;
    use transport::Transport;
    use transport::frame_io::{read_request, write_response};
    use transport::tcp::TcpTransport;

    use super::*;

    /// An answer cut short gives its bytes back to the budget; a complete one keeps them.
    #[tokio::test]
    async fn only_complete_answers_keep_their_budget() {
        const SENT: usize = 200 * 1024;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            for announced in [SENT as u64 * 2, SENT as u64] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let _ = read_request(&mut s).await;
                let _ = write_response(&mut s, &Response::Ok { len: announced }).await;
                let _ = s.write_all(&[7; SENT]).await;
            }
        });
        let budget = Semaphore::new(1 << 20);
        let transport = TcpTransport::new(Default::default());
        let ask = Request::Manifest(FileId([1; 32]));
        let cut = transport.connect(addr, NodeId([2; 32])).await.expect("connect");
        assert!(request_within(&*cut, &ask, 1 << 20, &budget).await.is_err(), "the answer was cut short");
        assert_eq!(budget.available_permits(), 1 << 20);
        let whole = transport.connect(addr, NodeId([2; 32])).await.expect("connect");
        let body = request_within(&*whole, &ask, 1 << 20, &budget).await.expect("whole answer");
        assert_eq!(body.len(), SENT);
        assert_eq!(budget.available_permits(), (1 << 20) - SENT);
    }
}
