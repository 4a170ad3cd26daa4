//! Memory over a long run: hubmock's resident set (`VmRSS`) after 10,000, 100,000 and
//! 1,000,000 pushes with the default limits (1,000 runs per pipeline, 10,000 deliveries
//! logged), and for contrast after 10,000 and 100,000 with a history limit too large to
//! reach. `cargo bench --bench memory` (`PUSHES=N` for the last count of the first row,
//! `COUNTS=A,B,C` for all the counts, the configuration without a limit stopping before the
//! last; `CONCURRENCY=N` for the pushes in flight, 256 by default). `benches/compare.sh`
//! runs it with smaller counts.
//!
//! Each configuration runs in a process of its own (this program started again), so one's
//! memory never shows in another's figures. In it, a [`Hub`] on its own thread with one
//! repository and one pipeline of one webhook, without a final callback: a local keep-alive
//! receiver's `200` ends each run. `CONCURRENCY` tasks push (in process, through
//! [`Hub::push_with`], ten tag names in turn) and long-poll each run until it has ended, so
//! every delivery goes out over HTTP and is logged. At each count the pushes stop and the
//! process reads its own `VmRSS` and `VmHWM` (`/proc/self/status`); the receiver and the
//! pushing tasks are in the figure too, and are small.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubmock::net::AcceptLoop;
use hubmock::{Config, Error, Hub, PipelineSpec, PushRequest, RepoName, Repository};
use support::env_or;

/// Set in the environment of a configuration's own process: `HISTORY_LIMIT:COUNT,COUNT,...`.
const CHILD: &str = "HUBMOCK_MEMORY_BENCH";

/// A history limit no run of this benchmark reaches.
const UNREACHED: usize = 100_000_000;

fn main() {
    match std::env::var(CHILD) {
        Ok(spec) => child(&spec),
        Err(_) => parent(),
    }
}

/// Runs each configuration in a process of its own and prints their figures side by side.
fn parent() {
    let counts: Vec<usize> = match std::env::var("COUNTS") {
        Ok(list) => list
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .expect("COUNTS: counts separated by commas")
            })
            .collect(),
        Err(_) => vec![10_000, 100_000, env_or("PUSHES", 1_000_000)],
    };
    let configurations = [
        (
            format!(
                "default limits (--history-limit {})",
                hubmock::HISTORY_LIMIT
            ),
            hubmock::HISTORY_LIMIT,
            counts.clone(),
        ),
        (
            format!("--history-limit {UNREACHED}"),
            UNREACHED,
            counts[..counts.len() - 1].to_vec(),
        ),
    ];
    let exe = std::env::current_exe().expect("the benchmark's own path");
    println!(
        "{:<40} {:>10} {:>12} {:>12} {:>11} {:>10} {:>9}",
        "configuration", "pushes", "VmRSS MiB", "VmHWM MiB", "runs kept", "elapsed", "pushes/s"
    );
    for (name, limit, counts) in configurations {
        if counts.is_empty() {
            continue;
        }
        let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
        let output = support::command(&exe)
            .env(CHILD, format!("{limit}:{}", counts.join(",")))
            .output()
            .expect("start the benchmark again");
        if !output.status.success() {
            panic!(
                "{name} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            println!("{name:<40} {line}");
        }
    }
}

/// One configuration: pushes up to each count, printing the figures at each.
fn child(spec: &str) {
    let (limit, counts) = spec.split_once(':').expect("LIMIT:COUNTS");
    let limit: usize = limit.parse().expect("a history limit");
    let counts: Vec<usize> = counts
        .split(',')
        .map(|c| c.parse().expect("a count"))
        .collect();
    let concurrency: usize = env_or("CONCURRENCY", 256);
    // One worker for the receiver and the pushing tasks; hubmock has a thread of its own:
    // two busy threads on two cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (hook, _receiving) = receiver();
        let config = Config::default().with_auth(false).with_history_limit(limit);
        let hub = Arc::new(Hub::builder().config(config).start().await);
        let repo = RepoName::new("acme", "app").unwrap();
        hub.add_repository(Repository::new(&repo)).unwrap();
        let mut spec = PipelineSpec::new("p", &[hook.as_str()]);
        spec.expect_final_callback = Some(false);
        hub.create_pipeline(&repo, spec).unwrap();

        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        for count in counts {
            let pushers: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (hub, repo, next) = (hub.clone(), repo.clone(), next.clone());
                    tokio::spawn(async move { push_until(&hub, &repo, &next, count).await })
                })
                .collect();
            for pusher in pushers {
                pusher.await.unwrap();
            }
            let (rss, hwm) = (
                support::status_kib(None, "VmRSS"),
                support::status_kib(None, "VmHWM"),
            );
            let kept = hub.history(&repo, "p").unwrap().len();
            let elapsed = started.elapsed();
            println!(
                "{count:>10} {:>12.1} {:>12.1} {kept:>11} {:>9.1}s {:>9.0}",
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0,
                elapsed.as_secs_f64(),
                count as f64 / elapsed.as_secs_f64()
            );
        }
    });
}

/// Pushes (taking the next number from `next`) until `count` pushes were made, waiting for
/// each run to end before the next push.
async fn push_until(hub: &Hub, repo: &RepoName, next: &AtomicUsize, count: usize) {
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= count {
            // Not taken: leave it for the next count.
            next.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let push = PushRequest {
            tag: Some(format!("v{}", n % 10)),
            ..PushRequest::default()
        };
        let run = hub.push_with(repo, push).unwrap().remove(0);
        match hub.wait_for_run(run.id(), Duration::from_secs(60)).await {
            Ok(run) => assert!(!run.is_pending(), "run {} still pending", run.id()),
            // Only a finished run is dropped: 1,000 newer ones ended before this task looked.
            Err(Error::NotFound(_)) => {}
            Err(err) => panic!("{err}"),
        }
    }
}

/// A receiver that answers every request 200 and keeps connections alive, on hubmock's own
/// accept loop; it serves until the returned handle is dropped.
fn receiver() -> (String, AcceptLoop) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let accepting = support::serve(listener, |_request| async { support::ok() });
    (format!("http://{}/hook", accepting.address()), accepting)
}
