//! The HTTP server: one port for every surface, an accept loop, and a graceful shutdown that
//! finishes in-flight requests and deliveries within a bound.
//!
//! - `http.rs`: body policies and limits, query parsing, JSON answers and refusals;
//! - `body.rs`: reading request bodies within their size and time limits;
//! - `routes/`: the router and one file per surface (Hub API, callbacks, control API, pages);
//! - `pages/`: the settings pages' HTML (maud views, their forms, inline style and script);
//! - `wire.rs`: the JSON formats of request bodies and Hub API views.

pub(crate) mod body;
pub(crate) mod http;
mod pages;
mod routes;
pub mod wire;

/// The whole router in process, for the router's fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) use routes::handle;

use std::convert::Infallible;
use std::future::Future;
use std::io;

use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::delivery;
use crate::logging;
use crate::net;
use crate::store::{Store, Work};

/// The URL a listener serves, e.g. `http://127.0.0.1:5555`.
pub fn listening_url(listener: &TcpListener) -> io::Result<String> {
    Ok(format!("http://{}", listener.local_addr()?))
}

/// Serves `listener` with a fresh state until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => listening_url(&listener)?,
    };
    Emulator::open(config, &public_url)
        .map_err(io::Error::other)?
        .serve(listener, shutdown)
        .await
}

/// An emulator's state, opened (from `--data-dir`, or empty) and not served yet: the binary
/// opens it before it prints its listening line, so that a locked or damaged data directory
/// is reported before anyone is told to connect.
pub struct Emulator {
    store: Store,
    queue: mpsc::UnboundedReceiver<Work>,
}

impl Emulator {
    /// Opens the state [`Config::data_dir`] names (see
    /// [`crate::store::Store::open`] in the architecture notes), or a fresh one in memory.
    pub fn open(config: Config, public_url: &str) -> Result<Emulator, crate::OpenError> {
        let (store, queue) = match config.data_dir.clone() {
            Some(dir) => Store::open(config, public_url, &dir)?,
            None => Store::new(config, public_url),
        };
        Ok(Emulator { store, queue })
    }

    /// Serves `listener` until `shutdown` completes, then writes what the journal has queued.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let store = self.store.clone();
        let served = serve(listener, self.store, self.queue, shutdown).await;
        store.close();
        served
    }
}

/// Serves `listener` over an existing store (whose engine work arrives on `queue`) until
/// `shutdown` completes; then stops accepting, finishes in-flight requests and deliveries
/// (each phase bounded by the configured grace period) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    store: Store,
    queue: mpsc::UnboundedReceiver<Work>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let engine = tokio::spawn(delivery::run(
        store.clone(),
        queue,
        tracker.clone(),
        cancel.clone(),
    ));
    let grace = store.config().shutdown_grace;
    let max_connections = store.config().max_connections;
    let timeouts = store.config().connection_timeouts;
    if let Ok(url) = listening_url(&listener) {
        tracing::info!(target: logging::SERVER, %url, "listening");
    }
    let shutdown = async {
        shutdown.await;
        // Long-polls answer now, as on their timeout, so they do not hold the grace period.
        store.stop_waiting();
        tracing::info!(
            target: logging::SERVER,
            "shutting down: requests and deliveries in flight may finish"
        );
    };
    let service_store = store.clone();
    // Stops accepting when `shutdown` completes, then lets requests in flight finish (up to
    // the grace period) before the engine is stopped.
    net::accept_loop(
        listener,
        shutdown,
        grace,
        max_connections,
        move |stream, stopping| {
            let store = service_store.clone();
            let service = service_fn(move |request| {
                let store = store.clone();
                async move { Ok::<_, Infallible>(answer(&store, request).await) }
            });
            net::serve_http(stream, service, stopping, timeouts)
        },
    )
    .await;
    // No new deliveries or timers; those in flight may finish.
    cancel.cancel();
    let _ = engine.await;
    tracker.close();
    let _ = tokio::time::timeout(grace, tracker.wait()).await;
    Ok(())
}

/// Answers one request and logs it: the one place where requests are logged. Only the method,
/// the path (a callback's hook id hidden), the status and the time to the answer's head are
/// logged; never a header, the query or a body, where tokens and passwords travel.
async fn answer(store: &Store, request: ::http::Request<Incoming>) -> http::HttpResponse {
    let started = tokio::time::Instant::now();
    // Cheap copies: the URI shares its bytes.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let mut response = routes::handle(store, request).await;
    // What the request changed is on disk before it is answered (with --data-dir).
    if let Err(failed) = store.durable().await {
        let body = serde_json::json!({ "detail": &*failed });
        response = http::json_response(::http::StatusCode::SERVICE_UNAVAILABLE, &body);
    }
    tracing::info!(
        target: logging::REQUEST,
        %method,
        path = %routes::shown_path(uri.path()),
        status = response.status().as_u16(),
        elapsed_ms = logging::millis(started.elapsed()),
        "answered"
    );
    response
}
