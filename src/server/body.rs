//! Reading request bodies: whole into memory up to a limit and within a time
//! ([`read_limited`]), or as a stream that may not pause too long ([`stall_limited`]); an
//! oversized body is answered at once and drained in the background.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

use super::http::{BodyStream, BoxError, HttpError, BODY_LIMIT};

/// How much of an oversized body is read and dropped before the connection is given up.
const DRAIN_LIMIT: usize = 16 * BODY_LIMIT;
/// How long an oversized body is read and dropped before the connection is given up.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The `413` for an oversized body. The 413 is answered at once, while the rest of the body is
/// read and dropped in the background (up to [`DRAIN_LIMIT`] bytes or [`DRAIN_TIME`]), so a
/// client that writes its whole body before reading still gets the answer, not a reset.
fn refuse_oversized(mut body: BodyStream, already: usize, limit: usize) -> HttpError {
    tokio::spawn(async move {
        let drain = async {
            let mut seen = already;
            while seen <= DRAIN_LIMIT {
                match body.frame().await {
                    Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    });
    HttpError::PayloadTooLarge(limit)
}

/// Reads a body whole up to `limit` bytes (`keep`: into memory; otherwise only counted),
/// within `timeout`. A body declared larger than the limit is refused before it is read; a
/// client that waits for `100 Continue` never has to send it.
pub async fn read_limited(
    headers: &HeaderMap,
    mut body: BodyStream,
    limit: usize,
    keep: bool,
    timeout: Duration,
) -> Result<Bytes, HttpError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        let expects_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if expects_continue {
            // The client waits for our word before sending the body: it never has to.
            return Err(HttpError::PayloadTooLarge(limit));
        }
        return Err(refuse_oversized(body, 0, limit));
    }
    let mut bytes = Vec::new();
    let mut seen = 0;
    let deadline = after(timeout);
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(HttpError::BodyTimeout(timeout)),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|err| match err.downcast::<BodyStalled>() {
                Ok(stalled) => HttpError::BodyTimeout(stalled.0),
                Err(err) => HttpError::BodyBroken(err.to_string()),
            })?,
        };
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen > limit {
                return Err(refuse_oversized(body, seen, limit));
            }
            if keep {
                bytes.extend_from_slice(data);
            }
        }
    }
    Ok(Bytes::from(bytes))
}

/// The instant `wait` from now, or a far future when that is past what the clock can hold.
fn after(wait: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The error a [`stall_limited`] body ends with when it pauses too long.
#[derive(Debug)]
pub struct BodyStalled(pub Duration);

impl fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no byte of the request body arrived for {}",
            humantime::format_duration(self.0)
        )
    }
}

impl std::error::Error for BodyStalled {}

/// A streamed body that ends with [`BodyStalled`] when no frame arrives for `limit`: a large
/// body may take as long as it needs, as long as it keeps coming.
pub fn stall_limited(body: BodyStream, limit: Duration) -> BodyStream {
    Stalling {
        inner: body,
        limit,
        timer: Box::pin(tokio::time::sleep_until(after(limit))),
    }
    .boxed()
}

struct Stalling {
    inner: BodyStream,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Stalling {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => {
                if self.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(self.limit)))));
                }
                Poll::Pending
            }
            ready => {
                let next = after(self.limit);
                self.timer.as_mut().reset(next);
                ready
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
