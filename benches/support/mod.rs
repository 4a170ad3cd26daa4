//! What several benches share: a keep-alive HTTP client and its requests, local receivers,
//! the release binary's start and stop, and `/proc` figures. `mod support;` in a bench.

// Each bench uses a part of this module; the rest would warn in that bench.
#![allow(dead_code)]

use std::convert::Infallible;
use std::ffi::OsStr;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hubmock::net::{serve_http, AcceptLoop, Timeouts};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{mpsc, Mutex};

/// Requests in flight at once in [`blast`]'s callers (`durability`, `compare`'s callbacks).
pub const IN_FLIGHT: usize = 32;

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A client that keeps up to `idle` connections a host open between requests.
pub fn client(idle: usize) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .build_http()
}

/// Serves `listener` on hubmock's own accept loop, answering each request with `handle`,
/// until the returned handle is dropped.
pub fn serve<H, F>(listener: tokio::net::TcpListener, handle: H) -> AcceptLoop
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    AcceptLoop::spawn(listener, move |stream, stopping| {
        let handle = handle.clone();
        let service = service_fn(move |request| {
            let answer = handle(request);
            async move { Ok::<_, Infallible>(answer.await) }
        });
        serve_http(stream, service, stopping, Timeouts::default())
    })
    .expect("a bound listener's address")
}

/// `200 ok`.
pub fn ok() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// A receiver on `127.0.0.1` that answers 200 and sends each payload's `callback_url` down
/// `found`.
pub async fn receiver(found: mpsc::UnboundedSender<String>) -> (String, AcceptLoop) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let accepting = serve(listener, move |request| {
        let found = found.clone();
        async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let url = payload["callback_url"].as_str().unwrap().to_owned();
            let _ = found.send(url);
            ok()
        }
    });
    (format!("http://{}/hook", accepting.address()), accepting)
}

/// Sends one request (`body` as JSON when there is one); answers the status and the body, or
/// why there was no answer.
pub async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    body: impl Into<Bytes>,
) -> Result<(u16, Bytes), String> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .map_err(|err| err.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

/// POSTs `body` as JSON; answers the status and the body. No answer at all is a panic.
pub async fn post(client: &HttpClient, url: &str, body: impl Into<Bytes>) -> (u16, Bytes) {
    send(client, Method::POST, url, body)
        .await
        .unwrap_or_else(|err| panic!("POST {url}: {err}"))
}

/// Sends every request of `urls` ([`IN_FLIGHT`] at a time), each expecting `want`, and
/// answers requests a second.
pub async fn blast(client: &HttpClient, urls: Vec<String>, body: &'static str, want: u16) -> f64 {
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
                let (status, answer) = post(&client, &url, body).await;
                assert_eq!(status, want, "{url}: {}", String::from_utf8_lossy(&answer));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// What [`chains`] measured.
pub struct Chains {
    pub pushes_per_s: f64,
    pub callbacks_per_s: f64,
}

/// Pushes and callbacks a second through the hubmock at `uri` (no auth): creates `acme/app`
/// with one pipeline of `steps` webhooks (the final callback expected), all going to a local
/// receiver that answers 200; pushes `n` times (expecting `202`), waits for every run's first
/// delivery, then calls back `success` to each run's `callback_url`, and to each later step's
/// as soon as its delivery arrives, until all `n * steps` callbacks are validated (`200`).
/// [`IN_FLIGHT`] requests at a time, over keep-alive HTTP. Every run must be able to wait at
/// once: `n` pending runs at most (`--max-pending-runs`).
pub async fn chains(uri: &str, n: usize, steps: usize) -> Chains {
    let (found, mut urls) = mpsc::unbounded_channel();
    let (hook, _receiving) = receiver(found.clone()).await;
    let client = client(IN_FLIGHT);
    let (status, answer) = post(
        &client,
        &format!("{uri}/_hubmock/repositories"),
        r#"{"namespace": "acme", "name": "app"}"#,
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let webhooks: Vec<_> = (0..steps)
        .map(|step| serde_json::json!({"name": format!("step{step}"), "hook_url": hook}))
        .collect();
    let pipeline =
        serde_json::json!({"name": "p", "expect_final_callback": true, "webhooks": webhooks});
    let pipelines = format!("{uri}/v2/repositories/acme/app/webhook_pipeline/");
    let (status, answer) = post(&client, &pipelines, pipeline.to_string()).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));

    let push = format!("{uri}/_hubmock/repositories/acme/app/push");
    let pushes_per_s = blast(&client, vec![push; n], r#"{"tag": "latest"}"#, 202).await;
    let mut first = Vec::with_capacity(n);
    while first.len() < n {
        let url = tokio::time::timeout(Duration::from_secs(60), urls.recv())
            .await
            .expect("every run's first step is delivered");
        first.push(url.unwrap());
    }
    // Back in the queue, ahead of every later step's.
    for url in first {
        found.send(url).unwrap();
    }
    let started = Instant::now();
    let urls = Arc::new(Mutex::new(urls));
    let taken = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, urls, taken) = (client.clone(), urls.clone(), taken.clone());
        tasks.push(tokio::spawn(async move {
            while taken.fetch_add(1, Ordering::Relaxed) < n * steps {
                let next = tokio::time::timeout(Duration::from_secs(60), async {
                    urls.lock().await.recv().await
                });
                let url = next.await.expect("every later step is delivered").unwrap();
                let (status, answer) = post(&client, &url, r#"{"state": "success"}"#).await;
                assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&answer));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Chains {
        pushes_per_s,
        callbacks_per_s: (n * steps) as f64 / started.elapsed().as_secs_f64(),
    }
}

/// `Command::new(program)`, whose process is sent SIGTERM by the kernel should the bench
/// die before it (a panic stops what the bench started through `Drop`, a signal does not).
/// Spawn from a thread that lives as long as the child: the kernel watches that thread.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    // SAFETY: between fork and exec the child only makes one prctl(2) system call, which is
    // async-signal-safe and touches no memory of the parent's.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
    command
}

/// The URL in hubmock's first line on stdout (`listening on URL`), read from `child`'s
/// piped stdout (the pipe stays open; hubmock writes nothing more to it); `None` when hubmock
/// exited without it (its stderr says why).
pub fn listening_url(child: &mut Child) -> Option<String> {
    let stdout = child.stdout.as_mut().expect("hubmock's stdout piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).ok()?;
    let url = line.trim().strip_prefix("listening on ")?;
    Some(url.trim_end_matches('/').to_owned())
}

/// SIGTERM (hubmock then removes its blob store; nginx stops its workers), then waits: at
/// most 10 s before SIGKILL.
pub fn stop(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A port nothing listens on, for servers that cannot pick one themselves.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `kB` figure (`VmRSS`, `VmHWM`) of `/proc/PID/status`, or of this process's own status
/// when `pid` is `None`; 0 when the process is gone.
pub fn status_kib(pid: Option<u32>, field: &str) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The environment variable `name` parsed, or `default` when it is not set; one that does
/// not parse is an error, not the default.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} does not parse")),
        Err(_) => default,
    }
}
