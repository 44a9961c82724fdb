//! The client side of one exchange: send a request, read the whole answer.

use proto::{ErrorCode, Request, Response};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use transport::frames::{read_response, write_request};
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
    /// The answers of this survey already took all the memory it may use.
    #[error("answer dropped: the survey's memory budget is used up")]
    OverBudget,
}

/// Sends `request` on a new stream of `conn` and reads the answer's bytes, at most `max_len` of them.
pub(crate) async fn request(conn: &dyn Connection, request: &Request, max_len: u64) -> Result<Vec<u8>, ExchangeError> {
    request_within(conn, request, max_len, None).await
}

/// [`request`], each piece of the answer taken from `budget` (one permit a byte, never given back) as it
/// arrives: the answers of many peers together stay within what the budget holds.
pub(crate) async fn request_within(
    conn: &dyn Connection,
    request: &Request,
    max_len: u64,
    budget: Option<&Semaphore>,
) -> Result<Vec<u8>, ExchangeError> {
    let mut stream = conn.open().await?;
    write_request(&mut stream, request).await?;
    let len = match read_response(&mut stream).await? {
        Response::Ok { len } if len <= max_len => len,
        Response::Ok { len } => return Err(ExchangeError::TooLarge { len, max: max_len }),
        Response::Err { code, message } => {
            stream.finish();
            return Err(ExchangeError::Refused { code, message });
        }
    };
    let reserve = if budget.is_some() { PIECE } else { RESERVE };
    let mut body = Vec::with_capacity(len.min(reserve) as usize);
    while (body.len() as u64) < len {
        let piece = (len - body.len() as u64).min(if budget.is_some() { PIECE } else { len });
        if let Some(budget) = budget {
            budget.try_acquire_many(piece as u32).map_err(|_| ExchangeError::OverBudget)?.forget();
        }
        let read = (&mut stream).take(piece).read_to_end(&mut body).await.map_err(TransportError::from)?;
        if read as u64 != piece {
            return Err(TransportError::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)).into());
        }
    }
    stream.finish();
    Ok(body)
}
