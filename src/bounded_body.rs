//! Bounded reading of the bodies that upstreams and users' URLs answer with. A body is
//! read chunk by chunk and never past its limit: past it, the response is dropped,
//! which closes its connection, so a server answering 400 MB costs us at most the
//! limit, whatever it declared in `Content-Length` (or did not declare).

use bytes::{Bytes, BytesMut};

/// What is read of an error answer: enough for a provider's error JSON.
pub const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// Why a body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body could not be read")]
    Transport(#[source] reqwest::Error),
}

/// The whole body, if it is at most `limit` bytes.
pub async fn read(mut response: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// At most the first `limit` bytes of the body (what could be read of them): for an
/// error answer, whose size we do not control and whose start says what went wrong.
pub async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body.freeze()
}
