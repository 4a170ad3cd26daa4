//! How long the settings pages take to answer for a repository with 1,000 runs (each with its
//! delivery logged; a third of them called back so their second step was delivered too):
//! each page asked `ROUNDS` times (200) over keep-alive HTTP on loopback, as a browser asks.
//! `cargo bench --bench pages`. The goal: every page well under 10 ms.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hubmock::net::{serve_http, AcceptLoop, Timeouts};
use hubmock::{Config, Hub, PipelineSpec, PushRequest, RepoName, Repository};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const RUNS: usize = 1_000;

/// A receiver that answers every request 200 and keeps connections alive, on hubmock's own
/// accept loop; it serves until the returned handle is dropped.
async fn receiver() -> (String, AcceptLoop) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let accepting = AcceptLoop::spawn(listener, |stream, stopping| {
        let service = service_fn(|_req| async {
            let body = Full::new(Bytes::from_static(b"{\"queued\": true}"));
            Ok::<_, Infallible>(hyper::Response::new(body))
        });
        serve_http(stream, service, stopping, Timeouts::default())
    })
    .unwrap();
    (format!("http://{}/hook", accepting.address()), accepting)
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (hook, _receiving) = receiver().await;
        let hub = Hub::builder()
            .config(Config::default().with_auth(false))
            .start()
            .await;
        let repo = RepoName::new("acme", "app").unwrap();
        hub.add_repository(Repository::new(&repo)).unwrap();
        let spec = PipelineSpec::new("CI then deploy", &[hook.as_str(), hook.as_str()]);
        hub.create_pipeline(&repo, spec).unwrap();
        let mut ids = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let push = PushRequest {
                tag: Some(format!("v{i}")),
                ..PushRequest::default()
            };
            ids.push(hub.push_with(&repo, push).unwrap()[0].id());
        }
        for (i, id) in ids.iter().enumerate() {
            let run = hub.wait_for_delivery(*id, 0, Duration::from_secs(60)).await;
            let run = run.unwrap();
            if i % 3 == 0 {
                let hook_id = &run.steps()[0].hook_id;
                let body = br#"{"state": "success", "description": "tests passed"}"#;
                hub.callback(&repo, hook_id, body).unwrap();
                hub.wait_for_delivery(*id, 1, Duration::from_secs(60))
                    .await
                    .unwrap();
            }
        }

        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let settings = format!("{}/r/acme/app/~/settings/webhooks/", hub.uri());
        let pages = [
            ("home", format!("{}/", hub.uri())),
            ("settings", settings.clone()),
            (
                "history, page 1",
                format!("{settings}ci-then-deploy/history/"),
            ),
            (
                "history, page 40",
                format!("{settings}ci-then-deploy/history/?page=40"),
            ),
            ("delete", format!("{settings}ci-then-deploy/delete/")),
        ];
        println!("{RUNS} runs, each page asked {rounds} times over HTTP on loopback:");
        for (name, url) in pages {
            let mut times = Vec::with_capacity(rounds);
            let mut size = 0;
            for _ in 0..rounds {
                let started = Instant::now();
                let response = client.get(url.parse().unwrap()).await.unwrap();
                assert_eq!(response.status(), 200, "{url}");
                size = response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .len();
                times.push(started.elapsed());
            }
            times.sort();
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "  {name:<17} median {:>8.3?}  p95 {:>8.3?}  max {:>8.3?}  ({} KiB)",
                at(0.5),
                at(0.95),
                at(1.0),
                size / 1024
            );
        }
    });
}
