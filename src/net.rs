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
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The first pause after a failed accept; it doubles while accepts keep failing, up to
/// [`ACCEPT_BACKOFF_MAX`]. Such failures (out of file descriptors, a connection reset before it
/// was accepted) repeat at once if retried at once, so the pause keeps the loop from spinning a
/// core while the system recovers.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause between failed accepts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How many refused connections may be answered at once; past that, more are closed unanswered
/// (a flood must not turn the answers themselves into unbounded work).
const SHED_AT_ONCE: usize = 64;
/// How long a refused connection has to take its answer before it is closed.
const SHED_TIME: Duration = Duration::from_secs(1);
/// Why a connection past the cap is refused.
const SHED_DETAIL: &str = "hubmock is serving as many connections as it accepts at once \
     (--max-connections); retry when one has closed.";
/// The answer of a refused connection: a `503` in the control API's JSON dialect.
static SHED_ANSWER: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let body = serde_json::json!({ "detail": SHED_DETAIL }).to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Accepts connections on `listener` until `shutdown` completes, then drains them.
///
/// Each accepted stream gets `TCP_NODELAY` (requests and answers are small and latency is what
/// tests measure) and goes to `handle` together with a token that is cancelled when the loop
/// stops; the future `handle` returns runs in a task of its own, owned by the loop. On shutdown
/// the listener is closed at once, the token is cancelled (so [`serve_http`] connections finish
/// their request and close), running connections get up to `grace` to end, and whatever is
/// still running then is aborted. No task outlives the call.
///
/// At most `max_connections` are served at once: the newest past that are answered
/// `503 Service Unavailable` with `Retry-After` and closed, so the ones being served go on and
/// a client that is turned away knows why. When the process runs out of file descriptors, one
/// kept in reserve is given up to accept and answer the waiting connection the same way, and
/// the loop backs off (5 ms, doubling to 500 ms) instead of spinning on the failed accept.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    max_connections: usize,
    mut handle: H,
) where
    H: FnMut(TcpStream, CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut shedding = JoinSet::new();
    let mut reserve = Reserve::open();
    let mut backoff = ACCEPT_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff = ACCEPT_BACKOFF;
                    if connections.len() >= max_connections {
                        shed(&mut shedding, stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    connections.spawn(handle(stream, stopping.clone()));
                }
                Err(error) => {
                    let mut answered = false;
                    if is_out_of_descriptors(&error) {
                        if !reserve.is_held() {
                            // The last answer given with it may have finished.
                            reserve = Reserve::open();
                        }
                        if reserve.release() {
                            // The reserve's descriptor is free for a moment: take the waiting
                            // connection with it and answer it, rather than leave it hanging.
                            if let Some(Ok((stream, _))) = accept_now(&listener) {
                                refuse_at_once(stream);
                                answered = true;
                            }
                            reserve = Reserve::open();
                        }
                    }
                    if answered {
                        // A waiting connection was taken off the backlog: that is progress,
                        // and the next accept fails only if another one waits.
                        backoff = ACCEPT_BACKOFF;
                    } else {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                }
            },
            // Reaps finished connections so a long-lived listener does not collect them.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Some(_) = shedding.join_next(), if !shedding.is_empty() => {}
        }
    }
    drop(listener);
    stopping.cancel();
    shedding.abort_all();
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(grace, drained).await;
    // Dropping the set aborts the connections that did not end within the grace period.
}

/// Answers a connection past the cap with [`SHED_ANSWER`] and closes it. The request is read
/// and dropped (briefly) before closing, so the client reads the answer instead of a reset.
fn shed(shedding: &mut JoinSet<()>, mut stream: TcpStream) {
    if shedding.len() >= SHED_AT_ONCE {
        return refuse_at_once(stream);
    }
    shedding.spawn(async move {
        let answer = async {
            stream.write_all(&SHED_ANSWER).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        };
        let _ = tokio::time::timeout(SHED_TIME, answer).await;
    });
}

/// Answers [`SHED_ANSWER`] if the socket takes it without waiting, and closes at once: for
/// when no descriptor can be spared for longer. What the client has sent so far is read and
/// dropped first, so that closing sends the answer and a FIN rather than a reset.
fn refuse_at_once(stream: TcpStream) {
    let _ = stream.try_write(&SHED_ANSWER);
    let Ok(stream) = stream.into_std() else {
        return;
    };
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match io::Read::read(&mut &stream, &mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

/// Accepts a connection that is already waiting, without waiting for one.
fn accept_now(listener: &TcpListener) -> Option<io::Result<(TcpStream, SocketAddr)>> {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    match listener.poll_accept(&mut context) {
        std::task::Poll::Ready(accepted) => Some(accepted),
        std::task::Poll::Pending => None,
    }
}

/// `EMFILE` or `ENFILE`: the process or the system has no file descriptor left.
fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// A file descriptor held in reserve (an open `/dev/null`), given up when the process runs out
/// so that the connection waiting in the backlog can still be accepted and answered.
struct Reserve(Option<std::fs::File>);

impl Reserve {
    fn open() -> Reserve {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    fn is_held(&self) -> bool {
        self.0.is_some()
    }

    /// Closes the reserve; whether there was one to close.
    fn release(&mut self) -> bool {
        self.0.take().is_some()
    }
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
        let task = tokio::spawn(accept_loop(
            listener,
            never,
            Duration::ZERO,
            usize::MAX,
            handle,
        ));
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

/// How long a connection may keep hubmock waiting; see [`serve_http`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a request head may take to arrive whole, counted from the connection's start
    /// or from the first byte of a request that follows another.
    pub header: Duration,
    /// How long a connection may sit between requests with nothing sent either way.
    pub idle: Duration,
}

impl Default for Timeouts {
    /// 30 s for a request head (hyper's and Go's choice) and 120 s between requests: longer
    /// than the 90 s HTTP clients keep an idle pooled connection (Go, hyper-util, reqwest), so
    /// a client never sends a request on a connection hubmock is closing at that moment.
    fn default() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(30),
            idle: Duration::from_secs(120),
        }
    }
}

/// Serves one connection with hyper (HTTP/1, or HTTP/2 when the client opens with its
/// preface) until the client closes it or `stopping` is cancelled; then the request in progress
/// is finished and the connection closed. Errors (a client that goes away mid-request) are the
/// client's business and end the connection quietly.
///
/// A peer that holds the connection without using it is cut off: one whose request head has
/// not arrived whole within `timeouts.header` (a client that says nothing, or sends its
/// headers a byte at a time), and one that has sent and read nothing for `timeouts.idle`
/// between requests. While a request is being answered neither applies; its body has its own
/// limit where the body is read. Over HTTP/2 any frame counts as a request head arriving, so
/// a connection that only sends pings is closed at the head timeout.
pub async fn serve_http<IO, S, B>(
    stream: IO,
    service: S,
    stopping: CancellationToken,
    timeouts: Timeouts,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = Counted {
        inner: service,
        activity: activity.clone(),
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => {
            if let Err(err) = ended {
                tracing::debug!(target: crate::logging::REQUEST, "a connection ended: {err}");
            }
            return;
        }
        _ = activity.expired(timeouts) => {
            tracing::debug!(target: crate::logging::REQUEST, "a connection overstayed its timeouts and was closed");
            return;
        }
        _ = stopping.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// What a connection has been doing, for [`serve_http`]'s timeouts: times are milliseconds
/// since the connection started, on tokio's clock (so tests can pause it).
struct Activity {
    started: Instant,
    /// The last time a byte was read or written.
    last: AtomicU64,
    /// When the request head now arriving began, or [`Activity::NONE`] when none is arriving.
    head_since: AtomicU64,
    /// Requests handed to the service and not answered yet.
    in_flight: AtomicUsize,
    /// Wakes the watch when a request is answered: the deadline it sleeps towards may have
    /// moved closer (from the head timeout to the idle one).
    answered: tokio::sync::Notify,
}

impl Activity {
    const NONE: u64 = u64::MAX;

    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            last: AtomicU64::new(0),
            // A new connection owes its first request head from the start.
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            answered: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Bytes went either way; `read`: they came from the peer.
    fn moved(&self, read: bool) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if read && self.in_flight.load(Ordering::Relaxed) == 0 {
            // The first byte of a request that follows another starts its head's clock.
            let _ = self.head_since.compare_exchange(
                Self::NONE,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Completes when the connection has overstayed one of `timeouts`.
    async fn expired(&self, timeouts: Timeouts) {
        let millis = |d: Duration| d.as_millis().min(u128::from(u32::MAX)) as u64;
        loop {
            let now = self.now();
            let deadline = if self.in_flight.load(Ordering::Relaxed) > 0 {
                // A request is being answered; its body has its own limit. Look again later.
                now + millis(timeouts.header.min(timeouts.idle))
            } else {
                let deadline = match self.head_since.load(Ordering::Relaxed) {
                    Self::NONE => self.last.load(Ordering::Relaxed) + millis(timeouts.idle),
                    since => since + millis(timeouts.header),
                };
                if deadline <= now {
                    return;
                }
                deadline
            };
            let sleep = tokio::time::sleep_until(self.started + Duration::from_millis(deadline));
            tokio::select! {
                _ = sleep => {}
                _ = self.answered.notified() => {}
            }
        }
    }
}

/// A stream (TCP, or TLS over TCP) that tells its [`Activity`] when bytes move.
struct Watched<IO> {
    stream: IO,
    activity: Arc<Activity>,
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.moved(true);
        }
        polled
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.moved(false);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.moved(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A service that tells its [`Activity`] when a request arrives and when it is answered.
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> Service<R> for Counted<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        self.activity
            .head_since
            .store(Activity::NONE, Ordering::Relaxed);
        let answered = Answered(self.activity.clone());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(answered);
            response
        })
    }
}

/// Marks a request answered when dropped (also when the client went away first).
struct Answered(Arc<Activity>);

impl Drop for Answered {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.last.store(activity.now(), Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        activity.answered.notify_one();
    }
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
