//! Push-to-delivery round trips a second: pushes go into the store in process, each starts one
//! run whose single webhook a local keep-alive receiver answers 200 (the pipeline expects no
//! final callback, so the answer ends the run). `cargo bench --bench throughput`
//! (`PUSHES=N` to change the count).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hubmock::{Config, Hub, PipelineSpec, PushRequest, RepoName, Repository};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

/// A receiver that answers every request 200 and keeps connections alive.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

fn main() {
    let pushes: usize = std::env::var("PUSHES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let hook = receiver().await;
        // A small log: the bench measures delivery, not the memory of 20,000 records.
        let mut config = Config::default().with_auth(false);
        config.delivery_log_limit = 1_000;
        // Every run is waited for by id after the pushes, and all may be pending at once.
        config.history_limit = pushes;
        config.max_pending_runs = config.max_pending_runs.max(pushes);
        // On this 2-worker runtime, as before: the engine shares the workers with the pushes.
        let store = Hub::builder()
            .config(config)
            .on_current_runtime()
            .start()
            .await;
        let repo = RepoName::new("acme", "app").unwrap();
        store.add_repository(Repository::new(&repo)).unwrap();
        let mut spec = PipelineSpec::new("p", &[hook.as_str()]);
        spec.expect_final_callback = Some(false);
        store.create_pipeline(&repo, spec).unwrap();

        let started = Instant::now();
        let mut ids = Vec::with_capacity(pushes);
        for _ in 0..pushes {
            ids.push(store.push_with(&repo, PushRequest::default()).unwrap()[0].id());
        }
        let pushed = started.elapsed();
        for id in &ids {
            let run = store
                .wait_for_run(*id, Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(run.status(), hubmock::RunStatus::Success, "{run:?}");
        }
        let elapsed = started.elapsed();
        println!(
            "{pushes} push-to-delivery round trips on 2 worker threads: {:.0}/s ({elapsed:?} in all, pushes queued in {pushed:?})",
            pushes as f64 / elapsed.as_secs_f64()
        );
    });
}
