//! What `--data-dir` costs: pushes a second and callbacks a second over HTTP, memory-only and
//! durable (each change fsynced before its answer) side by side, in one run.
//! `cargo bench --bench durability` (`N=...` requests per phase, default 5,000; 32 in flight).
//!
//! Pushes go to `POST /_hubmock/repositories/acme/app/push` (one pipeline, one webhook, a
//! local receiver that answers 200 and hands the payload's `callback_url` back to the bench);
//! then every run's callback is posted to its `callback_url`. The data directory is a
//! temporary one on the same disk as the build (`TMPDIR` to move it).

mod support;

use hubmock::Config;
use support::IN_FLIGHT;

async fn measure(n: usize, data_dir: Option<&std::path::Path>) -> (f64, f64) {
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
    let figures = support::chains(&uri, n, 1).await;
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    (figures.pushes_per_s, figures.callbacks_per_s)
}

fn main() {
    let n: usize = support::env_or("N", 5_000);
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
