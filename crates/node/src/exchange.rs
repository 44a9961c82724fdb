//! The client side of one exchange: send a request, read the whole answer.

use proto::{ErrorCode, Request, Response};
use tokio::io::AsyncReadExt;
use transport::frames::{read_response, write_request};
use transport::{Connection, TransportError};

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
}

/// Sends `request` on a new stream of `conn` and reads the answer's bytes, at most `max_len` of them.
pub(crate) async fn request(conn: &dyn Connection, request: &Request, max_len: u64) -> Result<Vec<u8>, ExchangeError> {
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
    // `len` is at most `max_len`, which callers derive from in-memory sizes.
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await.map_err(TransportError::from)?;
    stream.finish();
    Ok(body)
}
