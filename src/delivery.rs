//! The outbound engine: takes the deliveries the store queues, POSTs each in a task of its own
//! (so a slow receiver delays only its own step), and reports the outcome back to the store.
//! It also carries out the callback timers of R9 that the chain arms and disarms.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use base64::prelude::{Engine as _, BASE64_STANDARD};

use crate::client::HttpClient;
use crate::logging;
use crate::model::hook_url;
use crate::model::run::DeliveryResult;
use crate::model::time::Timestamp;
use crate::store::{DeliveryRecord, Dispatch, Store, Work};

/// How much of a receiver's answer is kept (R11).
pub const RESPONSE_BODY_LIMIT: usize = 4096;

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("hubmock/", env!("CARGO_PKG_VERSION"));

/// The header every delivery carries, `{instance}/{run}/{step}`, so that hubmock recognises
/// its own deliveries when a hook URL points back at it and refuses to act on them (a push
/// endpoint as a hook URL would otherwise start runs without bound).
pub const DELIVERY_HEADER: &str = "x-hubmock-delivery";

/// Runs the engine until `cancel` fires: every queued delivery and timer gets a task on
/// `tracker`. The engine decides nothing: the chain ([`crate::model::chain`]) said what to do.
pub async fn run(
    store: Store,
    mut queue: mpsc::UnboundedReceiver<Work>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    let client = HttpClient::new();
    // At most this many deliveries in flight to one host: a burst of pushes reuses pooled
    // connections instead of opening one socket per delivery (and running out of them), and
    // a receiver that hangs holds up only its own host's queue.
    let mut per_host: HashMap<String, Arc<Semaphore>> = HashMap::new();
    // The armed callback timers of each pending run, disarmed when the run finishes.
    let mut timers: HashMap<u64, Arc<CancellationToken>> = HashMap::new();
    loop {
        let work = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            next = queue.recv() => match next {
                Some(work) => work,
                None => return,
            },
        };
        let dispatch = match work {
            Work::Deliver(dispatch) => *dispatch,
            Work::ArmTimer {
                run_id,
                step,
                hook_id,
                deadline,
            } => {
                if timers.len() > 1024 {
                    // Forget the runs no timer task waits for any more (their run was reset).
                    timers.retain(|_, disarm| Arc::strong_count(disarm) > 1);
                }
                let disarmed = timers
                    .entry(run_id)
                    .or_insert_with(|| Arc::new(cancel.child_token()))
                    .clone();
                let store = store.clone();
                let wait = deadline.since(Timestamp::now());
                tracker.spawn(async move {
                    tokio::select! {
                        _ = disarmed.cancelled() => {}
                        _ = tokio::time::sleep(wait) => store.callback_timed_out(run_id, step, &hook_id),
                    }
                });
                continue;
            }
            Work::Finished { run_id } => {
                if let Some(disarm) = timers.remove(&run_id) {
                    disarm.cancel();
                }
                continue;
            }
        };
        let host = host_of(&dispatch.url);
        let limit = per_host
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_HOST)))
            .clone();
        if per_host.len() > 1024 {
            // Forget the hosts nothing is being delivered to.
            per_host.retain(|_, slots| Arc::strong_count(slots) > 1);
        }
        let (store, client) = (store.clone(), client.clone());
        tracker.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = limit.acquire_owned().await;
            // R4, R9: the chain arms the step's callback timer from the moment it is sent.
            if !store.sending(&dispatch) {
                tracing::debug!(
                    target: logging::DELIVERY,
                    run = dispatch.run_id,
                    step = dispatch.step,
                    "delivery dropped: its run is over, reset or replaced"
                );
                return;
            }
            // Its "sending" record is on disk first (with --data-dir): after a crash the
            // delivery is known to have been in flight, and is never sent twice.
            if store.durable().await.is_err() {
                return;
            }
            tracing::debug!(
                target: logging::DELIVERY,
                run = dispatch.run_id,
                step = dispatch.step,
                url = %hook_url::redact(&dispatch.url),
                "sending delivery"
            );
            let marker = store.delivery_marker(&dispatch);
            let timeout = store.config().delivery_timeout;
            let record = deliver(&client, &dispatch, &marker, timeout).await;
            log_delivery(&record);
            store.delivered(&dispatch, record);
        });
    }
}

/// One line per delivery made. Its URL is the log record's, with any password as `***`;
/// neither the payload nor the headers are logged.
fn log_delivery(record: &DeliveryRecord) {
    let result = &record.result;
    let message = if result.status.is_some() {
        "delivery answered"
    } else {
        "delivery got no answer"
    };
    tracing::info!(
        target: logging::DELIVERY,
        run = record.run_id,
        step = record.step,
        url = %record.url,
        status = result.status,
        error = result.error.as_deref(),
        elapsed_ms = result.duration_ms,
        "{message}"
    );
}

/// Deliveries in flight to one host at most.
pub const MAX_IN_FLIGHT_PER_HOST: usize = 64;

/// The `host:port` a URL names (the whole URL if it does not parse; its delivery fails anyway).
fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().to_ascii_lowercase()))
        .unwrap_or_else(|| url.to_owned())
}

/// POSTs one payload and describes how it went. Never fails: every problem is a result.
async fn deliver(
    client: &HttpClient,
    dispatch: &Dispatch,
    marker: &str,
    timeout: Duration,
) -> DeliveryRecord {
    let json = dispatch.payload.to_json();
    // Credentials in the hook URL go as Basic auth, as HTTP clients send them.
    let target = hook_url::target(&dispatch.url);
    // Every header is set here, so the log shows the request exactly as it was sent (but for
    // a password, which is never shown).
    let mut headers = BTreeMap::new();
    let authorization = target.credentials.as_ref().map(|(user, password)| {
        headers.insert("authorization".to_owned(), "Basic ***".to_owned());
        format!(
            "Basic {}",
            BASE64_STANDARD.encode(format!("{user}:{password}"))
        )
    });
    headers.insert("accept".to_owned(), "*/*".to_owned());
    headers.insert("content-type".to_owned(), "application/json".to_owned());
    headers.insert("content-length".to_owned(), json.get().len().to_string());
    if let Ok(uri) = target.url.parse::<http::Uri>() {
        if let Some(authority) = uri.authority() {
            headers.insert("host".to_owned(), authority.as_str().to_owned());
        }
    }
    headers.insert("user-agent".to_owned(), USER_AGENT.to_owned());
    headers.insert(DELIVERY_HEADER.to_owned(), marker.to_owned());
    let sent = Timestamp::now();
    let started = tokio::time::Instant::now();
    let body = Bytes::copy_from_slice(json.get().as_bytes());
    // The log's copy says `Basic ***`; the request carries the real one.
    let headers_list: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k.as_str() != "authorization")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(authorization.as_deref().map(|a| ("authorization", a)))
        .collect();
    let post = client.send(
        Method::POST,
        &target.url,
        &headers_list,
        body,
        RESPONSE_BODY_LIMIT,
    );
    let outcome = tokio::time::timeout(timeout, post).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let result = match outcome {
        Ok(Ok(answer)) => DeliveryResult {
            status: Some(answer.status),
            error: None,
            duration_ms,
            response_body: Some(String::from_utf8_lossy(&answer.body).into_owned()),
        },
        Ok(Err(error)) => DeliveryResult {
            status: None,
            error: Some(error),
            duration_ms,
            response_body: None,
        },
        Err(_) => DeliveryResult {
            status: None,
            error: Some(format!(
                "no answer within the delivery timeout of {}",
                humantime::format_duration(timeout)
            )),
            duration_ms,
            response_body: None,
        },
    };
    dispatch.record(sent, headers, json, result)
}
