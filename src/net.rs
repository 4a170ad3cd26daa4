//! Accepting connections: the one accept loop behind every listener hubmock serves (the
//! emulator's port, the scenario runner's scripted receivers, the fuzzer's callback endpoint)
//! and behind the test suite's hand-written receivers.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use tokio::io::AsyncWriteExt;
//!
//! // A receiver that answers every connection with a fixed response, until it is dropped.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let receiver = hubmock::net::AcceptLoop::spawn(listener, |mut stream, _stopping| async move {
//!     let _ = stream
//!         .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
//!         .await;
//! })?;
//! println!("listening on {}", receiver.address());
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// How long the loop pauses after a failed accept. Such failures (out of file descriptors, a
/// connection reset before it was accepted) repeat at once if retried at once, so a pause keeps
/// the loop from spinning a core while the system recovers.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(5);

/// Accepts connections on `listener` until `shutdown` completes, then drains them.
///
/// Each accepted stream gets `TCP_NODELAY` (requests and answers are small and latency is what
/// tests measure) and goes to `handle` together with a token that is cancelled when the loop
/// stops; the future `handle` returns runs in a task of its own, owned by the loop. On shutdown
/// the listener is closed at once, the token is cancelled (so [`serve_http`] connections finish
/// their request and close), running connections get up to `grace` to end, and whatever is
/// still running then is aborted. No task outlives the call.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    mut handle: H,
) where
    H: FnMut(TcpStream, CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(handle(stream, stopping.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Reaps finished connections so a long-lived listener does not collect them.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    stopping.cancel();
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(grace, drained).await;
    // Dropping the set aborts the connections that did not end within the grace period.
}

/// An [`accept_loop`] in a task of its own, for receivers and other test doubles: it serves
/// until dropped, and dropping it stops the loop and aborts every connection at once.
#[must_use = "the listener stops serving when the AcceptLoop is dropped"]
pub struct AcceptLoop {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl AcceptLoop {
    /// Starts serving `listener` on the current runtime; `handle` is called as
    /// [`accept_loop`] calls it (its token is cancelled only when the loop is dropped, which
    /// aborts the connection anyway).
    pub fn spawn<H, F>(listener: TcpListener, handle: H) -> io::Result<AcceptLoop>
    where
        H: FnMut(TcpStream, CancellationToken) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let address = listener.local_addr()?;
        let never = std::future::pending();
        let task = tokio::spawn(accept_loop(listener, never, Duration::ZERO, handle));
        Ok(AcceptLoop { address, task })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        // The loop's task owns the connections (a JoinSet), so they end with it.
        self.task.abort();
    }
}

/// Serves one connection with hyper (HTTP/1, or HTTP/2 when the client opens with its
/// preface) until the client closes it or `stopping` is cancelled; then the request in progress
/// is finished and the connection closed. Errors (a client that goes away mid-request) are the
/// client's business and end the connection quietly.
pub async fn serve_http<S, B>(stream: TcpStream, service: S, stopping: CancellationToken)
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopping.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Reads one HTTP/1 request from a raw stream, for receivers that write their answer by hand:
/// the head, then as many body bytes as its `Content-Length` says (at most `limit`). Answers
/// the body, or `None` if the peer went away first or the head grew past `limit`. Chunked
/// bodies are not read: hubmock's deliveries always carry a length.
pub async fn read_request_body(stream: &mut TcpStream, limit: usize) -> Option<Bytes> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0)
                .min(limit);
            let start = end + 4;
            while buf.len() < start + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(Bytes::copy_from_slice(&buf[start..start + length]));
        }
        if buf.len() > limit {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
