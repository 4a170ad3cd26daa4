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

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::Method;
use support::{env_or, post, send, HttpClient};

/// The body of every push: wrk's, the open-loop generator's.
const PUSH_BODY: &str = r#"{"tag": "latest"}"#;
/// The push endpoint's path, on hubmock and on WireMock's stub alike.
const PUSH_PATH: &str = "/_hubmock/repositories/acme/app/push";
/// How often nginx's count is read while waiting for deliveries.
const POLL: Duration = Duration::from_millis(50);
/// A figure measured while deliveries were still arriving when the wait ended.
const SATURATED: &str = " †";

macro_rules! say {
    ($($arg:tt)*) => { eprintln!("compare: {}", format!($($arg)*)) };
}

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
            "latency" => latency(settings, scratch).await,
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
            load_secs: env_or("COMPARE_SECS", pick(10, 1)).max(1),
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

// ---------------------------------------------------------------------------------------
// The table

/// One row of the table: what is measured, then one figure per column ("" shows as "–").
#[derive(Default)]
struct Row {
    what: String,
    hubmock: String,
    wiremock: String,
    nginx: String,
    hubmock_to_nginx: String,
    hubmock_to_wiremock: String,
}

impl Row {
    fn new(what: impl Into<String>) -> Row {
        Row {
            what: what.into(),
            ..Row::default()
        }
    }

    /// Prints the row at once, so the figures of a run that fails later are not lost.
    fn print(self) {
        let cell = |text: String| if text.is_empty() { "–".into() } else { text };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            self.what,
            cell(self.hubmock),
            cell(self.wiremock),
            cell(self.nginx),
            cell(self.hubmock_to_nginx),
            cell(self.hubmock_to_wiremock)
        );
    }
}

/// `12,345`: a rate, whole, its thousands grouped.
fn whole(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Three significant digits: `0.0797`, `1.23`, `10.8`, `166`.
fn significant(value: f64) -> String {
    if !value.is_finite() || value == 0.0 {
        return format!("{value}");
    }
    let decimals = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        significant(a / b)
    } else {
        String::new()
    }
}

/// `0.412 ms`, `2.61 ms`, `1.23 s`.
fn time(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 1.0 {
        format!("{} s", significant(seconds))
    } else {
        format!("{} ms", significant(seconds * 1000.0))
    }
}

/// `1 pipeline`, `100 pipelines`.
fn count(n: usize, noun: &str) -> String {
    format!(
        "{} {noun}{}",
        whole(n as f64),
        if n == 1 { "" } else { "s" }
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn median<T: Ord + Copy>(values: &mut [T]) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------------------
// The programs under test

/// A program this bench started; stopped (SIGTERM, SIGKILL 10 s later) when dropped.
struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with stdin closed and stderr (and stdout unless `piped`) to a log.
    fn spawn(name: &str, mut command: Command, log: PathBuf, piped: bool) -> Running {
        let file = fs::File::create(&log).expect("a log file in the scratch directory");
        let stdout = if piped {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone().unwrap())
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name} ({command:?}): {err}"));
        Running {
            name: name.to_owned(),
            child,
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics saying what failed, with the end of the program's log, when it has exited.
    fn check_alive(&mut self, doing: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}) while {doing}; the end of its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        support::stop(&mut self.child);
    }
}

/// hubmock's release binary, `serve --port 0 --no-auth -q` and `args`, its URL.
fn start_hubmock(scratch: &Path, args: &[String]) -> (Running, String) {
    let tmp = scratch.join("hubmock-tmp");
    fs::create_dir_all(&tmp).unwrap();
    let mut command = support::command(env!("CARGO_BIN_EXE_hubmock"));
    command
        .args(["serve", "--port", "0", "--no-auth", "-q"])
        .args(args)
        .env("TMPDIR", &tmp);
    let mut hubmock = Running::spawn("hubmock", command, scratch.join("hubmock.log"), true);
    let Some(url) = support::listening_url(&mut hubmock.child) else {
        hubmock.check_alive("starting");
        panic!(
            "hubmock printed no `listening on` line:\n{}",
            hubmock.log_tail()
        );
    };
    (hubmock, url)
}

/// WireMock's standalone jar on `port`, with the options its documentation gives for
/// performance testing (no request journal, no request logging) and `COMPARE_WIREMOCK_ARGS`.
fn start_wiremock(settings: &Settings, scratch: &Path, port: u16) -> Running {
    let jar = settings.wiremock_jar.as_ref().expect(
        "COMPARE_WIREMOCK_JAR: the path of wiremock-standalone-*.jar (benches/compare.sh fetches it)",
    );
    let root = scratch.join("wiremock-root");
    fs::create_dir_all(&root).unwrap();
    let mut command = support::command(&settings.java);
    command
        .arg("-jar")
        .arg(jar)
        .args(["--port", &port.to_string(), "--bind-address", "127.0.0.1"])
        .arg("--root-dir")
        .arg(&root)
        .args([
            "--disable-banner",
            "--no-request-journal",
            "--disable-request-logging",
        ])
        .args(&settings.wiremock_args);
    Running::spawn("WireMock", command, scratch.join("wiremock.log"), false)
}

/// Waits until `url` answers 2xx (polling every millisecond); panics when `program` exits
/// first or a minute passes.
async fn until_answers(client: &HttpClient, url: &str, program: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200..=299, _)) = send(client, Method::GET, url, Bytes::new()).await {
            return;
        }
        program.check_alive(&format!("waiting for {url} to answer"));
        assert!(
            Instant::now() < deadline,
            "{} did not answer {url} within 60 s:\n{}",
            program.name,
            program.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// nginx answering `200 ok` to everything but `/nginx_status` (its `stub_status`, whose
/// request count less this bench's own reads of it is the deliveries it answered).
struct Nginx {
    _running: Running,
    base: String,
    client: HttpClient,
    /// How many times this bench has read `stub_status`: each read is a request it counts.
    reads: AtomicU64,
}

/// nginx's request count at one moment, and how many reads of it this bench had made.
#[derive(Clone, Copy)]
struct Mark {
    requests: u64,
    reads: u64,
}

impl Nginx {
    async fn start(settings: &Settings, scratch: &Path) -> Nginx {
        let dir = scratch.join("nginx");
        fs::create_dir_all(&dir).unwrap();
        let port = support::free_port();
        let dir_text = dir.display();
        // Keep-alive both ways as a real receiver would: no request cap per connection. The
        // temporary paths are set so nginx needs nothing of /var/lib/nginx.
        let config = format!(
            "worker_processes auto;\n\
             pid {dir_text}/nginx.pid;\n\
             error_log {dir_text}/error.log warn;\n\
             events {{ worker_connections 8192; }}\n\
             http {{\n\
               access_log off;\n\
               keepalive_timeout 120s;\n\
               keepalive_requests 1000000000;\n\
               client_body_temp_path {dir_text}/client_body;\n\
               proxy_temp_path {dir_text}/proxy;\n\
               fastcgi_temp_path {dir_text}/fastcgi;\n\
               uwsgi_temp_path {dir_text}/uwsgi;\n\
               scgi_temp_path {dir_text}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port} backlog=4096;\n\
                 location = /nginx_status {{ stub_status; }}\n\
                 location / {{ return 200 \"ok\"; }}\n\
               }}\n\
             }}\n"
        );
        fs::write(dir.join("nginx.conf"), config).unwrap();
        let mut command = support::command(&settings.nginx);
        command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"]);
        let mut running = Running::spawn("nginx", command, dir.join("stderr.log"), false);
        let base = format!("http://127.0.0.1:{port}");
        let client = support::client(4);
        until_answers(&client, &format!("{base}/nginx_status"), &mut running).await;
        Nginx {
            _running: running,
            base,
            client,
            reads: AtomicU64::new(0),
        }
    }

    /// Where the webhooks go.
    fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// Reads `stub_status`: `Active connections: N \n server accepts handled requests \n
    /// A H R \n ...`; R counts this read too.
    async fn mark(&self) -> Mark {
        let url = format!("{}/nginx_status", self.base);
        let (status, body) = post_or_get(&self.client, Method::GET, &url).await;
        let reads = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        let text = String::from_utf8_lossy(&body);
        let requests = text
            .lines()
            .nth(2)
            .and_then(|line| line.split_whitespace().nth(2))
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("nginx's stub_status answered {status}: {text}"));
        Mark { requests, reads }
    }

    /// The requests nginx answered since `since`, other than this bench's reads of its count.
    async fn since(&self, since: Mark) -> u64 {
        let now = self.mark().await;
        now.requests - since.requests - (now.reads - since.reads)
    }

    /// Waits until deliveries stop arriving (none for `settings.quiet`) or `settings.drain`
    /// after `ended`. `started` is when the load began.
    async fn settle(
        &self,
        settings: &Settings,
        since: Mark,
        started: Instant,
        ended: Instant,
    ) -> Delivered {
        let (mut count, mut last_seen) = (0, started);
        loop {
            let now = Instant::now();
            if now.duration_since(ended) >= settings.drain {
                let count = self.since(since).await;
                return Delivered {
                    count,
                    elapsed: now.duration_since(started),
                    saturated: true,
                };
            }
            let seen = self.since(since).await;
            if seen > count {
                (count, last_seen) = (seen, now);
            } else if now.duration_since(last_seen) >= settings.quiet {
                return Delivered {
                    count,
                    elapsed: last_seen.duration_since(started),
                    saturated: false,
                };
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Deliveries nginx answered after a load started.
struct Delivered {
    count: u64,
    /// From the start of the load to the last delivery seen (within [`POLL`]), or to the end of
    /// the wait when they had not stopped.
    elapsed: Duration,
    /// Still arriving when the wait ended: the rate is while the system was saturated.
    saturated: bool,
}

impl Delivered {
    fn per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn shown(&self) -> String {
        let mark = if self.saturated { SATURATED } else { "" };
        format!("{}{mark}", whole(self.per_s()))
    }
}

async fn post_or_get(client: &HttpClient, method: Method, url: &str) -> (u16, Bytes) {
    send(client, method.clone(), url, Bytes::new())
        .await
        .unwrap_or_else(|err| panic!("{method} {url}: {err}"))
}

/// wrk POSTing [`PUSH_BODY`] through a Lua script.
struct Wrk {
    program: PathBuf,
    script: PathBuf,
    connections: usize,
    threads: usize,
}

/// What one wrk run counted.
struct Load {
    requests: u64,
    /// Answered but not 2xx/3xx (hubmock's `503` at `--max-pending-runs`).
    refused: u64,
    /// Connect, read, write errors and timeouts.
    errors: u64,
    seconds: f64,
}

impl Load {
    fn accepted_per_s(&self) -> f64 {
        (self.requests - self.refused) as f64 / self.seconds
    }

    /// The rate, and what was not accepted when there was any.
    fn shown(&self) -> String {
        let mut text = whole(self.accepted_per_s());
        if self.refused > 0 {
            text += &format!(" ({} refused)", whole(self.refused as f64));
        }
        if self.errors > 0 {
            text += &format!(" ({} socket errors)", whole(self.errors as f64));
        }
        text
    }
}

impl Wrk {
    fn new(settings: &Settings, scratch: &Path) -> Wrk {
        let script = scratch.join("push.lua");
        let body = PUSH_BODY.replace('\'', "\\'");
        fs::write(
            &script,
            format!(
                "wrk.method = \"POST\"\nwrk.body = '{body}'\n\
                 wrk.headers[\"Content-Type\"] = \"application/json\"\n"
            ),
        )
        .unwrap();
        Wrk {
            program: settings.wrk.clone(),
            script,
            connections: settings.connections.max(settings.wrk_threads),
            threads: settings.wrk_threads,
        }
    }

    /// Loads `url` for `secs` seconds. Blocks this thread: what the bench serves itself
    /// (receivers) runs on the runtime's workers meanwhile.
    fn run(&self, url: &str, secs: u64) -> Load {
        let output = support::command(&self.program)
            .args(["-t", &self.threads.to_string()])
            .args(["-c", &self.connections.to_string()])
            .args(["-d", &format!("{secs}s")])
            .arg("-s")
            .arg(&self.script)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.program.display()));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "wrk failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Wrk::parse(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
    }

    /// `  123456 requests in 10.00s, 12.34MB read`, `Non-2xx or 3xx responses: 12`, `Socket
    /// errors: connect 0, read 0, write 0, timeout 0`.
    fn parse(text: &str) -> Option<Load> {
        let summary = text.lines().find(|line| line.contains(" requests in "))?;
        let mut words = summary.split_whitespace();
        let requests = words.next()?.parse().ok()?;
        let time = words.nth(2)?.trim_end_matches(',');
        let seconds = [("ms", 0.001), ("us", 0.000_001), ("s", 1.0), ("m", 60.0)]
            .iter()
            .find_map(|(unit, scale)| {
                Some(time.strip_suffix(unit)?.parse::<f64>().ok()? * scale)
            })?;
        let refused = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .map_or(Some(0), |n| n.trim().parse().ok())?;
        let errors = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("Socket errors:"))
            .map_or(0, |counts| {
                counts
                    .split(',')
                    .filter_map(|count| count.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum()
            });
        Some(Load {
            requests,
            refused,
            errors,
            seconds,
        })
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
    let (_, answer) = post_or_get(client, Method::GET, &log).await;
    let log: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let deliveries = log["deliveries"].as_array().map_or(0, Vec::len);
    assert_eq!(
        deliveries, pipelines,
        "the first push's deliveries within 60 s"
    );
    log["deliveries"][0]["request_body"].to_string()
}

// ---------------------------------------------------------------------------------------
// Phases

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
                "{system} delivered no webhook to nginx with {pipelines} pipelines"
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

/// Push to first delivery latency at a fixed offered load, open loop, against hubmock.
async fn latency(settings: &Settings, scratch: &Path) {
    // When each run's webhook arrived, by run id (from `x-hubmock-delivery: {instance}/{run}/{step}`).
    let arrivals = Arc::new(std::sync::Mutex::new(HashMap::<u64, Instant>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiving = support::serve(listener, {
        let arrivals = arrivals.clone();
        move |request: hyper::Request<hyper::body::Incoming>| {
            let at = Instant::now();
            let run = request
                .headers()
                .get("x-hubmock-delivery")
                .and_then(|marker| marker.to_str().ok()?.split('/').nth(1)?.parse().ok());
            if let Some(run) = run {
                arrivals.lock().unwrap().entry(run).or_insert(at);
            }
            async move {
                let _ = request.into_body().collect().await;
                support::ok()
            }
        }
    });
    let hook = format!("http://{}/hook", receiving.address());
    let (_hubmock, url) = start_hubmock(scratch, &[]);
    let client = support::client(1024);
    set_up_hubmock(&client, &url, &[(vec![hook], false)]).await;

    let rate = settings.rate;
    let warm = rate * settings.warmup_secs;
    let total = warm + rate * settings.latency_secs;
    say!("{total} pushes at {rate}/s, open loop, the first {warm} not counted");
    // (run id, scheduled time) of each accepted push after the warm-up, and the count of the
    // refused ones (an answer other than 202, or none).
    let accepted = Arc::new(std::sync::Mutex::new(Vec::<(u64, Instant)>::new()));
    let refused = Arc::new(AtomicU64::new(0));
    let push = format!("{url}{PUSH_PATH}");
    let runtime = tokio::runtime::Handle::current();
    // The schedule is kept by a thread of its own, sleeping to each send's time: tokio's
    // timer has a 1 ms grain, 5 sends at 5,000/s. A late send is measured from its scheduled
    // time all the same, so a stall anywhere shows in the latencies instead of delaying the
    // sends (coordinated omission).
    let scheduler = std::thread::spawn({
        let (accepted, refused) = (accepted.clone(), refused.clone());
        move || {
            let interval_ns = 1_000_000_000 / rate;
            let origin = Instant::now() + Duration::from_millis(10);
            let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut sends = Vec::with_capacity(total as usize);
            for i in 0..total {
                let at = origin + Duration::from_nanos(interval_ns * i);
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                lag.saturating_record(at.elapsed().as_micros() as u64);
                let (client, push) = (client.clone(), push.clone());
                let (accepted, refused) = (accepted.clone(), refused.clone());
                sends.push(runtime.spawn(async move {
                    let run = match send(&client, Method::POST, &push, PUSH_BODY).await {
                        Ok((202, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|runs| runs["runs"][0]["id"].as_u64()),
                        _ => None,
                    };
                    match run {
                        Some(run) if i >= warm => accepted.lock().unwrap().push((run, at)),
                        Some(_) => {}
                        None => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            (sends, lag)
        }
    });
    let (sends, lag) = tokio::task::spawn_blocking(move || scheduler.join().unwrap())
        .await
        .unwrap();
    for sent in sends {
        sent.await.unwrap();
    }
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let arrived = arrivals.lock().unwrap();
        if accepted.iter().all(|(run, _)| arrived.contains_key(run)) {
            break;
        }
        drop(arrived);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = arrivals.lock().unwrap();
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut lost = 0;
    for (run, at) in &accepted {
        match arrived.get(run) {
            Some(arrival) => latencies
                .saturating_record(arrival.saturating_duration_since(*at).as_micros() as u64),
            None => lost += 1,
        }
    }
    assert!(
        !latencies.is_empty(),
        "no push was delivered ({} refused, {lost} lost)",
        refused.load(Ordering::Relaxed)
    );
    let at = |quantile: f64| Duration::from_micros(latencies.value_at_quantile(quantile));
    let what = format!(
        "push→first delivery, {} pushes/s offered, open loop",
        whole(rate as f64)
    );
    for (name, quantile) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
        Row {
            hubmock: time(at(quantile)),
            ..Row::new(format!("{what}: {name}"))
        }
        .print();
    }
    Row {
        hubmock: format!(
            "{} measured, {} refused, {lost} never delivered; max {}; the generator's own lateness p99 {} (counted in)",
            whole(latencies.len() as f64),
            whole(refused.load(Ordering::Relaxed) as f64),
            time(Duration::from_micros(latencies.max())),
            time(Duration::from_micros(lag.value_at_quantile(0.99)))
        ),
        ..Row::new(format!("{what}: the run"))
    }
    .print();
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
        // The slow pipeline first: each push's runs start in creation order.
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
