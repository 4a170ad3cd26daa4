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
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::delivery;
use crate::logging;
use crate::net;
use crate::seed::{self, Applied};
use crate::store::{Store, Work};
use crate::yaml::FileError;

/// The URL a listener serves over plain http, e.g. `http://127.0.0.1:5555`.
pub fn listening_url(listener: &TcpListener) -> io::Result<String> {
    Ok(format!("http://{}", listener.local_addr()?))
}

/// The URL a listener serves with `config`: `https://` when it serves TLS ([`Config::tls`]).
pub fn listening_url_for(listener: &TcpListener, config: &Config) -> io::Result<String> {
    Ok(format!("{}://{}", config.scheme(), listener.local_addr()?))
}

/// The TLS acceptor of `config` ([`Config::tls`]), or `None` for plain http; `Err` when its
/// certificate or key cannot be used. Also checks the outbound TLS settings
/// ([`Config::client_tls`]), so a CA certificate that does not parse stops the start rather
/// than every https delivery.
pub(crate) fn tls_acceptor(config: &Config) -> Result<Option<TlsAcceptor>, StartError> {
    config.client_tls.check().map_err(StartError::Tls)?;
    match &config.tls {
        Some(tls) => Ok(Some(TlsAcceptor::from(
            tls.config().map_err(StartError::Tls)?,
        ))),
        None => Ok(None),
    }
}

/// Serves `listener` with a fresh state (seeded from [`Config::seed`], if any) until
/// `shutdown` completes. A seed file that cannot be applied is an
/// [`io::ErrorKind::InvalidInput`] error; [`prepare`] returns it as it is.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let prepared = prepare(listener, config)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    prepared.serve(shutdown).await
}

/// A server whose state is made, and seeded, but that accepts nothing yet (connections wait
/// in the listener's backlog): `hubmock serve` prepares, prints its listening line, then
/// serves, so the seed is in place before the first request is read.
pub struct Prepared {
    listener: TcpListener,
    store: Store,
    queue: mpsc::UnboundedReceiver<Work>,
    seeded: Option<Applied>,
    tls: Option<TlsAcceptor>,
}

/// Makes the state for `config` and applies its seed file ([`Config::with_seed`]); an error
/// names the file, line and column of what could not be applied.
pub fn prepare(listener: TcpListener, config: Config) -> Result<Prepared, StartError> {
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => listening_url_for(&listener, &config)
            .map_err(|err| FileError::whole("listener", format!("no local address: {err}")))?,
    };
    let tls = tls_acceptor(&config)?;
    let (store, queue, seeded) = seeded_store(config, &public_url)?;
    Ok(Prepared {
        listener,
        store,
        queue,
        seeded,
        tls,
    })
}

impl Prepared {
    /// What the seed file created and left alone; `None` without a seed file.
    pub fn seeded(&self) -> Option<&Applied> {
        self.seeded.as_ref()
    }

    /// Serves until `shutdown` completes (see [`run`]), then writes what the journal of a
    /// data directory has queued and notes a clean stop.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let store = self.store.clone();
        let served = serve(self.listener, self.store, self.queue, self.tls, shutdown).await;
        store.close();
        served
    }
}

/// Why an emulator could not start: its seed file, its data directory, or its TLS settings.
#[derive(Debug)]
pub enum StartError {
    /// The seed file cannot be applied (file, line, column).
    Seed(FileError),
    /// The data directory cannot be used (locked, newer, damaged: the message names the file).
    DataDir(crate::OpenError),
    /// A TLS setting cannot be used (a CA certificate that does not parse, say).
    Tls(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Seed(err) => err.fmt(f),
            StartError::DataDir(err) => err.fmt(f),
            StartError::Tls(err) => f.write_str(err),
        }
    }
}

impl std::error::Error for StartError {}

impl From<FileError> for StartError {
    fn from(err: FileError) -> Self {
        StartError::Seed(err)
    }
}

impl From<crate::OpenError> for StartError {
    fn from(err: crate::OpenError) -> Self {
        StartError::DataDir(err)
    }
}

/// The store for `config` (opened from its data directory, or fresh) with its seed file
/// applied: the file's users were joined to the configured ones by
/// [`Config::effective_users`]; its repositories and pipelines are created here, through
/// [`seed::apply`], before anything can reach the store, when missing (with a data directory,
/// what an earlier run created, or a user changed, is left alone). Logs what it did.
pub(crate) fn seeded_store(
    config: Config,
    public_url: &str,
) -> Result<(Store, mpsc::UnboundedReceiver<Work>, Option<Applied>), StartError> {
    let seed = config.seed.clone();
    if let Some(seed) = &seed {
        seed.check_with(&config)?;
    }
    let (store, queue) = match config.data_dir.clone() {
        Some(dir) => Store::open(config, public_url, &dir)?,
        None => Store::new(config, public_url),
    };
    let seeded = match &seed {
        Some(seed) => {
            let applied = seed::apply(&store, seed)?;
            tracing::info!(target: logging::SERVER, "seed file applied: {applied}");
            Some(applied)
        }
        None => None,
    };
    Ok((store, queue, seeded))
}

/// Serves `listener` over an existing store (whose engine work arrives on `queue`) until
/// `shutdown` completes; then stops accepting, finishes in-flight requests and deliveries
/// (each phase bounded by the configured grace period) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    store: Store,
    queue: mpsc::UnboundedReceiver<Work>,
    tls: Option<TlsAcceptor>,
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
    if let Ok(url) = listening_url_for(&listener, store.config()) {
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
            let tls = tls.clone();
            async move {
                let Some(tls) = tls else {
                    return sendable(net::serve_http(stream, service, stopping, timeouts)).await;
                };
                // The handshake is the connection's first request head: it has as long.
                match tokio::time::timeout(timeouts.header, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        sendable(net::serve_http(stream, service, stopping, timeouts)).await
                    }
                    Ok(Err(err)) => tracing::debug!(
                        target: logging::REQUEST,
                        "a TLS handshake failed: {err}"
                    ),
                    Err(_) => tracing::debug!(
                        target: logging::REQUEST,
                        "a TLS handshake did not finish within the header timeout"
                    ),
                }
            }
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

/// A connection's future, boxed as `Send`: awaited inside another `async` block, the compiler
/// cannot prove hyper's connection future `Send` for every lifetime on its own.
fn sendable(
    future: impl Future<Output = ()> + Send + 'static,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(future)
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
