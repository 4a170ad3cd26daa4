//! hubmock side by side with WireMock and nginx, every figure from the same run on the same
//! machine. `benches/compare.sh` installs what this needs, builds, runs it and the `memory`
//! bench, and prints the table; this program prints the table's rows (Markdown) on stdout and
//! its progress on stderr. BENCHMARKS.md ("Side by side") says what each row measures.
//!
//! Phases (`COMPARE_PHASES`, comma-separated; all by default):
//! - `ready`: process start to the first successful HTTP answer, and RSS then: hubmock's
//!   release binary against WireMock's standalone jar, median of `COMPARE_STARTS` starts.
//! - `fanout`: wrk (`COMPARE_CONNECTIONS` connections) POSTs pushes for `COMPARE_SECS`
//!   seconds to hubmock with 1, 100 and 1,000 pipelines on one repository
//!   (`COMPARE_PIPELINES`), each with one webhook to nginx, and to WireMock with a stub of as
//!   many webhook listeners; and straight at nginx (one hop: the ceiling). Pushes accepted a
//!   second from wrk, deliveries a second from nginx's `stub_status`.
//! - `latency`: an open-loop generator sends pushes at `COMPARE_RATE` a second to hubmock for
//!   `COMPARE_LATENCY_SECS` seconds; latency from each push's scheduled time to its webhook's
//!   arrival here, in an HDR histogram.
//! - `callbacks`: callbacks validated a second in two-step chains (`COMPARE_CHAINS` pushes),
//!   the receiver here calling back as deliveries arrive (`support::chains`, as `durability`).
//! - `slow`: the fan-out with `COMPARE_SLOW_MIX` pipelines, without and then with one more
//!   pipeline whose receiver (here, on `127.0.0.2`) answers after `COMPARE_SLOW_MS`.
//!
//! `COMPARE_TINY=1` makes every default tiny (a few hundred operations a phase, so CI can run
//! each phase once); each setting above still overrides. Also `COMPARE_WARMUP_SECS` (load
//! before each measured load, not counted), `COMPARE_DRAIN_SECS` (how long after a load to
//! wait for deliveries), `COMPARE_QUIET_MS` (no delivery for that long: they stopped),
//! `COMPARE_WRK_THREADS`. The programs: `COMPARE_NGINX`, `COMPARE_WRK`, `COMPARE_JAVA`,
//! `COMPARE_WIREMOCK_JAR` (no default: compare.sh fetches it), `COMPARE_WIREMOCK_ARGS`.
//!
//! # Layout
//! - `main.rs`: the settings, and the phases but `latency`.
//! - `latency.rs`: the open-loop generator and its receiver.
//! - `programs.rs`: hubmock and WireMock, started and stopped.
//! - `nginx.rs`: nginx, and the deliveries its `stub_status` counted.
//! - `wrk.rs`: wrk's runs and what they counted.
//! - `table.rs`: the rows, and how figures are written in them.
//! - `../support/mod.rs`: what the benches share (HTTP, receivers, chains, `/proc`).

#[path = "../support/mod.rs"]
mod support;

/// Progress on stderr.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("compare: {}", format!($($arg)*)) };
}

mod latency;
mod nginx;
mod programs;
mod table;
mod wrk;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;

use nginx::{Delivered, Nginx};
use programs::{get, start_hubmock, start_wiremock, until_answers};
use support::{env_or, post, HttpClient};
use table::{count, median, mib, ratio, time, whole, Row};
use wrk::{Load, Wrk};

/// The body of every push: wrk's, the open-loop generator's.
const PUSH_BODY: &str = r#"{"tag": "latest"}"#;
/// The push endpoint's path, on hubmock and on WireMock's stub alike.
const PUSH_PATH: &str = "/_hubmock/repositories/acme/app/push";

fn main() {
    let settings = Settings::from_env();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    // Every process is started from this thread (`block_on` runs here), which lives until the
    // end: the kernel stops them should the bench die (support::command).
    runtime.block_on(run(&settings));
}

async fn run(settings: &Settings) {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let scratch = scratch.path();
    for phase in &settings.phases {
        say!("phase {phase}");
        match phase.as_str() {
            "ready" => ready(settings, scratch).await,
            "fanout" => fan_out_phase(settings, scratch).await,
            "latency" => latency::latency(settings, scratch).await,
            "callbacks" => callbacks(settings, scratch).await,
            "slow" => slow_receiver(settings, scratch).await,
            other => panic!(
                "COMPARE_PHASES: no phase {other:?} (ready, fanout, latency, callbacks, slow)"
            ),
        }
    }
}

/// What to run and for how long, from the environment.
struct Settings {
    phases: Vec<String>,
    starts: usize,
    connections: usize,
    wrk_threads: usize,
    warmup_secs: u64,
    load_secs: u64,
    drain: Duration,
    quiet: Duration,
    pipelines: Vec<usize>,
    rate: u64,
    latency_secs: u64,
    chains: usize,
    slow_mix: usize,
    slow_delay: Duration,
    nginx: PathBuf,
    wrk: PathBuf,
    java: PathBuf,
    wiremock_jar: Option<PathBuf>,
    wiremock_args: Vec<String>,
}

impl Settings {
    fn from_env() -> Settings {
        let tiny = env_or("COMPARE_TINY", 0) != 0;
        let pick = |full: u64, small: u64| if tiny { small } else { full };
        let list = |name: &str, default: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_else(|_| default.to_owned())
                .split(',')
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect()
        };
        let pipelines = list(
            "COMPARE_PIPELINES",
            if tiny { "1,10,100" } else { "1,100,1000" },
        );
        let wrk_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Settings {
            phases: list("COMPARE_PHASES", "ready,fanout,latency,callbacks,slow")
                .into_iter()
                // compare.sh runs the memory phase (the memory bench) itself.
                .filter(|phase| phase != "memory")
                .collect(),
            starts: env_or("COMPARE_STARTS", pick(5, 1) as usize).max(1),
            connections: env_or("COMPARE_CONNECTIONS", 64),
            wrk_threads: env_or("COMPARE_WRK_THREADS", wrk_threads).max(1),
            warmup_secs: env_or("COMPARE_WARMUP_SECS", pick(3, 0)),
            // wrk counts whole seconds.
            load_secs: env_or("COMPARE_SECS", pick(15, 1)).max(1),
            drain: Duration::from_secs(env_or("COMPARE_DRAIN_SECS", pick(10, 3))),
            quiet: Duration::from_millis(env_or("COMPARE_QUIET_MS", pick(1000, 500))),
            pipelines: pipelines
                .iter()
                .map(|n| {
                    n.parse()
                        .expect("COMPARE_PIPELINES: counts separated by commas")
                })
                .collect(),
            rate: env_or("COMPARE_RATE", pick(5_000, 200)).max(1),
            latency_secs: env_or("COMPARE_LATENCY_SECS", pick(10, 1)).max(1),
            chains: env_or("COMPARE_CHAINS", pick(10_000, 200) as usize).max(1),
            slow_mix: env_or("COMPARE_SLOW_MIX", pick(100, 10) as usize).max(1),
            slow_delay: Duration::from_millis(env_or("COMPARE_SLOW_MS", 100)),
            nginx: env_or("COMPARE_NGINX", PathBuf::from("nginx")),
            wrk: env_or("COMPARE_WRK", PathBuf::from("wrk")),
            java: env_or("COMPARE_JAVA", PathBuf::from("java")),
            wiremock_jar: std::env::var_os("COMPARE_WIREMOCK_JAR").map(PathBuf::from),
            wiremock_args: list("COMPARE_WIREMOCK_ARGS", "")
                .iter()
                .flat_map(|args| args.split_whitespace().map(str::to_owned))
                .collect(),
        }
    }
}

/// A load of `url` as every system gets it: a warm-up (not counted; then deliveries may
/// settle), then `settings.load_secs` of wrk, then the wait for deliveries to stop arriving.
async fn fan_out(settings: &Settings, nginx: &Nginx, wrk: &Wrk, url: &str) -> (Load, Delivered) {
    if settings.warmup_secs > 0 {
        let since = nginx.mark().await;
        let started = Instant::now();
        wrk.run(url, settings.warmup_secs);
        nginx.settle(settings, since, started, Instant::now()).await;
    }
    let since = nginx.mark().await;
    let started = Instant::now();
    let load = wrk.run(url, settings.load_secs);
    let delivered = nginx.settle(settings, since, started, Instant::now()).await;
    say!(
        "  {} requests answered in {:.2} s ({} refused, {} socket errors); nginx then counted {} in {:.2} s{}",
        load.requests,
        load.seconds,
        load.refused,
        load.errors,
        delivered.count,
        delivered.elapsed.as_secs_f64(),
        if delivered.saturated { ", still arriving" } else { "" }
    );
    (load, delivered)
}

/// Creates `acme/app` on the hubmock at `url`, then a pipeline for each of `pipelines`
/// (`(hook URLs, expect_final_callback)`), through the control and Hub APIs.
async fn set_up_hubmock(client: &HttpClient, url: &str, pipelines: &[(Vec<String>, bool)]) {
    let repositories = format!("{url}/_hubmock/repositories");
    let (status, answer) = post(
        client,
        &repositories,
        r#"{"namespace":"acme","name":"app"}"#,
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let endpoint = format!("{url}/v2/repositories/acme/app/webhook_pipeline/");
    for (i, (hooks, expect_final_callback)) in pipelines.iter().enumerate() {
        let webhooks: Vec<_> = hooks
            .iter()
            .enumerate()
            .map(
                |(step, hook)| serde_json::json!({"name": format!("step{step}"), "hook_url": hook}),
            )
            .collect();
        let body = serde_json::json!({
            "name": format!("p{i}"),
            "expect_final_callback": expect_final_callback,
            "webhooks": webhooks,
        });
        let (status, answer) = post(client, &endpoint, body.to_string()).await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    }
}

/// One push through the hubmock at `url` with `pipelines` pipelines of one webhook, the first
/// push there; once all its deliveries are answered (so none is counted in a load after it),
/// the first one's body as sent, from the deliveries log: WireMock's webhooks send the same.
async fn sample_payload(client: &HttpClient, url: &str, pipelines: usize) -> String {
    let (status, answer) = post(client, &format!("{url}{PUSH_PATH}"), PUSH_BODY).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    let log = format!("{url}/_hubmock/deliveries?min={pipelines}&timeout_ms=60000");
    let (_, answer) = get(client, &log).await;
    let log: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let deliveries = log["deliveries"].as_array().map_or(0, Vec::len);
    assert_eq!(
        deliveries, pipelines,
        "the first push's deliveries within 60 s"
    );
    log["deliveries"][0]["request_body"].to_string()
}

/// Ready-to-serve time and RSS at ready, hubmock against WireMock.
async fn ready(settings: &Settings, scratch: &Path) {
    let client = support::client(0);
    let (mut hub_times, mut hub_rss) = (Vec::new(), Vec::new());
    for _ in 0..settings.starts {
        let started = Instant::now();
        let (mut hubmock, url) = start_hubmock(scratch, &[]);
        until_answers(&client, &format!("{url}/_hubmock/health"), &mut hubmock).await;
        hub_times.push(started.elapsed());
        hub_rss.push(support::status_kib(Some(hubmock.pid()), "VmRSS"));
    }
    let (mut wm_times, mut wm_rss) = (Vec::new(), Vec::new());
    for _ in 0..settings.starts {
        let port = support::free_port();
        let started = Instant::now();
        let mut wiremock = start_wiremock(settings, scratch, port);
        let health = format!("http://127.0.0.1:{port}/__admin/health");
        until_answers(&client, &health, &mut wiremock).await;
        wm_times.push(started.elapsed());
        wm_rss.push(support::status_kib(Some(wiremock.pid()), "VmRSS"));
    }
    let (hub_time, wm_time) = (median(&mut hub_times), median(&mut wm_times));
    let (hub_kib, wm_kib) = (median(&mut hub_rss), median(&mut wm_rss));
    Row {
        hubmock: time(hub_time),
        wiremock: time(wm_time),
        hubmock_to_wiremock: ratio(hub_time.as_secs_f64(), wm_time.as_secs_f64()),
        ..Row::new(format!(
            "ready to serve: start to first answer (median of {})",
            count(settings.starts, "start")
        ))
    }
    .print();
    Row {
        hubmock: mib(hub_kib),
        wiremock: mib(wm_kib),
        hubmock_to_wiremock: ratio(hub_kib as f64, wm_kib as f64),
        ..Row::new("RSS at ready (median)")
    }
    .print();
}

/// Push to webhook fan-out with each pipeline count: hubmock, WireMock, nginx one hop.
async fn fan_out_phase(settings: &Settings, scratch: &Path) {
    let nginx = Nginx::start(settings, scratch).await;
    let wrk = Wrk::new(settings, scratch);
    let client = support::client(4);
    let secs = settings.load_secs;

    say!("nginx one hop, {secs} s");
    let (one_hop, _) = fan_out(settings, &nginx, &wrk, &nginx.hook_url()).await;
    let ceiling = one_hop.accepted_per_s();
    Row {
        nginx: one_hop.shown(),
        ..Row::new(format!(
            "nginx one hop: requests/s ({} connections, {secs} s)",
            wrk.connections
        ))
    }
    .print();

    for &pipelines in &settings.pipelines {
        say!("hubmock, {}, {secs} s", count(pipelines, "pipeline"));
        let (hubmock, url) = start_hubmock(scratch, &[]);
        let hooks = vec![(vec![nginx.hook_url()], false); pipelines];
        set_up_hubmock(&client, &url, &hooks).await;
        let payload = sample_payload(&client, &url, pipelines).await;
        let (hub_load, hub_delivered) =
            fan_out(settings, &nginx, &wrk, &format!("{url}{PUSH_PATH}")).await;
        drop(hubmock);

        say!(
            "WireMock, {}, {secs} s",
            count(pipelines, "webhook listener")
        );
        let port = support::free_port();
        let mut wiremock = start_wiremock(settings, scratch, port);
        let base = format!("http://127.0.0.1:{port}");
        until_answers(&client, &format!("{base}/__admin/health"), &mut wiremock).await;
        let listener = serde_json::json!({
            "name": "webhook",
            "parameters": {
                "method": "POST",
                "url": nginx.hook_url(),
                "headers": {"Content-Type": "application/json"},
                "body": payload,
            }
        });
        let stub = serde_json::json!({
            "request": {"method": "POST", "url": PUSH_PATH},
            "response": {"status": 202, "headers": {"Content-Type": "application/json"}, "body": "{\"runs\": []}"},
            "serveEventListeners": vec![listener; pipelines],
        });
        let (status, answer) = post(
            &client,
            &format!("{base}/__admin/mappings"),
            stub.to_string(),
        )
        .await;
        assert_eq!(
            status,
            201,
            "WireMock refused the stub: {}",
            String::from_utf8_lossy(&answer)
        );
        let (wm_load, wm_delivered) =
            fan_out(settings, &nginx, &wrk, &format!("{base}{PUSH_PATH}")).await;
        wiremock.check_alive("under load");
        drop(wiremock);

        for (system, delivered) in [("hubmock", &hub_delivered), ("WireMock", &wm_delivered)] {
            assert!(
                delivered.count > 0,
                "{system} delivered no webhook to nginx with {} within {} s of the load's end",
                count(pipelines, "pipeline"),
                settings.drain.as_secs()
            );
        }
        let what = format!("fan-out, {}", count(pipelines, "pipeline"));
        Row {
            hubmock: hub_load.shown(),
            wiremock: wm_load.shown(),
            hubmock_to_wiremock: ratio(hub_load.accepted_per_s(), wm_load.accepted_per_s()),
            ..Row::new(format!("{what}: pushes/s accepted"))
        }
        .print();
        Row {
            hubmock: hub_delivered.shown(),
            wiremock: wm_delivered.shown(),
            nginx: whole(ceiling),
            hubmock_to_nginx: ratio(hub_delivered.per_s(), ceiling),
            hubmock_to_wiremock: ratio(hub_delivered.per_s(), wm_delivered.per_s()),
            ..Row::new(format!("{what}: deliveries/s completed"))
        }
        .print();
    }
}

/// Callbacks validated a second, two-step chains, as many waiting at once as there are.
async fn callbacks(settings: &Settings, scratch: &Path) {
    let n = settings.chains;
    say!("{n} two-step chains");
    let limit = n.max(hubmock::Config::default().max_pending_runs);
    let (_hubmock, url) = start_hubmock(scratch, &["--max-pending-runs".into(), limit.to_string()]);
    let figures = support::chains(&url, n, 2).await;
    Row {
        hubmock: whole(figures.callbacks_per_s),
        ..Row::new(format!(
            "callbacks validated/s, {} two-step chains, {} in flight",
            whole(n as f64),
            support::IN_FLIGHT
        ))
    }
    .print();
}

/// The fan-out's fast deliveries without and with a slow receiver in the mix.
async fn slow_receiver(settings: &Settings, scratch: &Path) {
    let nginx = Nginx::start(settings, scratch).await;
    let wrk = Wrk::new(settings, scratch);
    let client = support::client(4);
    let answered = Arc::new(AtomicU64::new(0));
    // Another host (all of 127.0.0.0/8 is loopback on Linux): hubmock limits deliveries in
    // flight per host:port.
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2 for the slow receiver");
    let slow = support::serve(listener, {
        let (answered, delay) = (answered.clone(), settings.slow_delay);
        move |request: hyper::Request<hyper::body::Incoming>| {
            let answered = answered.clone();
            async move {
                let _ = request.into_body().collect().await;
                tokio::time::sleep(delay).await;
                answered.fetch_add(1, Ordering::Relaxed);
                support::ok()
            }
        }
    });
    let slow_hook = format!("http://{}/hook", slow.address());
    let fast = settings.slow_mix;
    let delay = time(settings.slow_delay);
    let mut rates = Vec::new();
    for with_slow in [false, true] {
        say!(
            "hubmock, {fast} pipelines{}",
            if with_slow {
                format!(" and one to a receiver answering after {delay}")
            } else {
                String::new()
            }
        );
        let (_hubmock, url) = start_hubmock(scratch, &[]);
        // The slow pipeline is created first, ahead of the fast ones.
        let mut pipelines = Vec::new();
        if with_slow {
            pipelines.push((vec![slow_hook.clone()], false));
        }
        pipelines.extend(vec![(vec![nginx.hook_url()], false); fast]);
        set_up_hubmock(&client, &url, &pipelines).await;
        let slow_before = answered.load(Ordering::Relaxed);
        let (_, delivered) = fan_out(settings, &nginx, &wrk, &format!("{url}{PUSH_PATH}")).await;
        let slow_count = answered.load(Ordering::Relaxed) - slow_before;
        rates.push(delivered.per_s());
        let what = format!(
            "fan-out, {fast} pipelines to nginx{}: nginx's deliveries/s",
            if with_slow {
                format!(" + 1 to a {delay} receiver")
            } else {
                String::new()
            }
        );
        Row {
            hubmock: delivered.shown(),
            ..Row::new(what)
        }
        .print();
        if with_slow {
            Row {
                hubmock: format!(
                    "{} (slow receiver answered {})",
                    ratio(rates[1], rates[0]),
                    whole(slow_count as f64)
                ),
                ..Row::new("fast deliveries/s with the slow receiver ÷ without")
            }
            .print();
        }
    }
}
