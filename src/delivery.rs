//! The outbound engine: takes the deliveries the store queues, POSTs each in a task of its own
//! (so a slow receiver delays only its own step), and reports the outcome back to the store.
//! It also arms the callback timers of R9.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::model::run::DeliveryResult;
use crate::model::time::Timestamp;
use crate::store::{DeliveryRecord, Dispatch, Store};

/// How much of a receiver's answer is kept (R11).
pub const RESPONSE_BODY_LIMIT: usize = 4096;

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("hubmock/", env!("CARGO_PKG_VERSION"));

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Runs the engine until `cancel` fires: every queued delivery gets a task on `tracker`.
pub async fn run(
    store: Store,
    mut queue: mpsc::UnboundedReceiver<Dispatch>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    loop {
        let dispatch = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            next = queue.recv() => match next {
                Some(dispatch) => dispatch,
                None => return,
            },
        };
        if let Some(timeout) = store.config().callback_timeout {
            let (store, cancel) = (store.clone(), cancel.clone());
            let (run_id, step) = (dispatch.run_id, dispatch.step);
            tracker.spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(timeout) => store.callback_timed_out(run_id, step),
                }
            });
        }
        let (store, client) = (store.clone(), client.clone());
        tracker.spawn(async move {
            let record = deliver(&client, &dispatch, store.config().delivery_timeout).await;
            store.delivered(&dispatch, record);
        });
    }
}

/// POSTs one payload and describes how it went. Never fails: every problem is a result.
async fn deliver(client: &HttpClient, dispatch: &Dispatch, timeout: Duration) -> DeliveryRecord {
    let json = dispatch.payload.to_json();
    let mut headers = BTreeMap::new();
    headers.insert("content-type".to_owned(), "application/json".to_owned());
    headers.insert("content-length".to_owned(), json.get().len().to_string());
    headers.insert("user-agent".to_owned(), USER_AGENT.to_owned());
    let sent = Timestamp::now();
    let started = tokio::time::Instant::now();
    let body = Bytes::copy_from_slice(json.get().as_bytes());
    let outcome = tokio::time::timeout(timeout, post(client, &dispatch.url, &headers, body)).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let result = match outcome {
        Ok(Ok((status, response_body))) => DeliveryResult {
            status: Some(status),
            error: None,
            duration_ms,
            response_body: Some(response_body),
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
    DeliveryRecord {
        id: 0,
        run_id: dispatch.run_id,
        step: dispatch.step,
        url: dispatch.url.clone(),
        sent,
        request_headers: headers,
        request_body: json,
        result,
    }
}

async fn post(
    client: &HttpClient,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: Bytes,
) -> Result<(u16, String), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|err| format!("invalid hook URL {url:?}: {err}"))?;
    if uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    {
        return Err(
            "https hook URLs are not supported by hubmock's delivery client yet; use http://"
                .to_owned(),
        );
    }
    let mut request = Request::post(uri);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .header(header::ACCEPT, "*/*")
        .body(Full::new(body))
        .map_err(|err| format!("could not build the request: {err}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|err| describe_client_error(&err))?;
    let status = response.status().as_u16();
    // Keep the first 4 KiB; read (and drop) the rest so the connection can be reused.
    let mut kept = Vec::new();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| format!("the response body broke off: {err}"))?;
        if let Some(data) = frame.data_ref() {
            let room = RESPONSE_BODY_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok((status, String::from_utf8_lossy(&kept).into_owned()))
}

/// The client error with its causes, e.g. "client error (Connect): tcp connect error:
/// Connection refused (os error 111)".
fn describe_client_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
