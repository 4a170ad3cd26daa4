//! What `--data-dir` costs: pushes a second and callbacks a second over HTTP, memory-only and
//! durable (each change fsynced before its answer) side by side, in one run.
//! `cargo bench --bench durability` (`N=...` requests per phase, default 5,000; 32 in flight).
//!
//! Pushes go to `POST /_hubmock/repositories/acme/app/push` (one pipeline, one webhook, a
//! local receiver that answers 200 and hands the payload's `callback_url` back to the bench);
//! then every run's callback is posted to its `callback_url`. The data directory is a
//! temporary one on the same disk as the build (`TMPDIR` to move it).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hubmock::net::{serve_http, AcceptLoop, Timeouts};
use hubmock::Config;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{mpsc, Mutex};

const IN_FLIGHT: usize = 32;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A receiver that answers 200 and sends each payload's `callback_url` down `found`.
async fn receiver(found: mpsc::UnboundedSender<String>) -> (String, AcceptLoop) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let accepting = AcceptLoop::spawn(listener, move |stream, stopping| {
        let found = found.clone();
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let found = found.clone();
            async move {
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let url = payload["callback_url"].as_str().unwrap().to_owned();
                let _ = found.send(url);
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        });
        serve_http(stream, service, stopping, Timeouts::default())
    })
    .unwrap();
    (format!("http://{}/hook", accepting.address()), accepting)
}

async fn post(client: &HttpClient, url: &str, body: &'static str) -> u16 {
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

/// Sends every request of `urls` (`IN_FLIGHT` at a time) and answers requests a second.
async fn blast(client: &HttpClient, urls: Vec<String>, body: &'static str, want: u16) -> f64 {
    let count = urls.len();
    let queue = Arc::new(Mutex::new(urls));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, queue) = (client.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(url) = queue.lock().await.pop() else {
                    return;
                };
                let status = post(&client, &url, body).await;
                assert_eq!(status, want, "{url}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

async fn measure(n: usize, data_dir: Option<&std::path::Path>) -> (f64, f64) {
    let (found, mut callback_urls) = mpsc::unbounded_channel();
    let (hook, _receiving) = receiver(found).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = hubmock::server::listening_url(&listener).unwrap();
    let mut config = Config::default().with_auth(false);
    config.delivery_log_limit = 1_000;
    if let Some(dir) = data_dir {
        config = config.with_data_dir(dir);
    }
    let prepared = hubmock::server::prepare(listener, config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(prepared.serve(async {
        let _ = stopped.await;
    }));
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(IN_FLIGHT)
        .build_http();
    let body: &'static str = Box::leak(
        format!(
            r#"{{"name": "p", "expect_final_callback": true, "webhooks": [{{"name": "ci", "hook_url": "{hook}"}}]}}"#
        )
        .into_boxed_str(),
    );
    post(
        &client,
        &format!("{uri}/_hubmock/repositories"),
        r#"{"namespace": "acme", "name": "app"}"#,
    )
    .await;
    let pipelines = format!("{uri}/v2/repositories/acme/app/webhook_pipeline/");
    assert_eq!(post(&client, &pipelines, body).await, 201);
    let push = format!("{uri}/_hubmock/repositories/acme/app/push");
    let pushes = blast(&client, vec![push; n], r#"{"tag": "latest"}"#, 202).await;
    let mut urls = Vec::with_capacity(n);
    while urls.len() < n {
        let url = tokio::time::timeout(Duration::from_secs(60), callback_urls.recv())
            .await
            .expect("every run is delivered")
            .unwrap();
        urls.push(url);
    }
    let callbacks = blast(&client, urls, r#"{"state": "success"}"#, 200).await;
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    (pushes, callbacks)
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (memory_pushes, memory_callbacks) = measure(n, None).await;
        let dir = tempfile::tempdir().unwrap();
        let (durable_pushes, durable_callbacks) = measure(n, Some(dir.path())).await;
        println!("{n} requests per phase, {IN_FLIGHT} in flight, over HTTP on loopback");
        println!("{:<24}{:>14}{:>14}", "", "memory-only", "--data-dir");
        println!(
            "{:<24}{:>14.0}{:>14.0}",
            "pushes/s", memory_pushes, durable_pushes
        );
        println!(
            "{:<24}{:>14.0}{:>14.0}",
            "callbacks/s", memory_callbacks, durable_callbacks
        );
    });
}
