//! Shared helpers: an emulator per test with hubmock's typed client for setting up, a small
//! HTTP client that prints everything on failure, and webhook receivers on listeners each test
//! binds itself.

#![allow(dead_code)]

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hubmock::net::{read_request_body, AcceptLoop};
use hubmock::{ApiClient, ApiError, Config, Hub, PipelineSpec, RepoName, WebhookSpec};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wiremock::MockServer;

/// How long a test waits for a run before it gives up (never reached when things work).
pub const WAIT: Duration = Duration::from_secs(20);

/// Largest request a RawReceiver reads; far above any payload hubmock sends.
const RAW_REQUEST_LIMIT: usize = 16 * 1024 * 1024;

/// An HTTP answer, printed whole when an assertion about it fails.
pub struct Resp {
    pub method: Method,
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON (panics, showing the whole exchange, if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {self:?}"))
    }

    /// Asserts the status and answers the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status: {self:?}");
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\n{} {}\n-> {}\n{:?}\n{}\n",
            self.method,
            self.url,
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// A plain HTTP/1 client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    /// The `Authorization` header to send, if any.
    authorization: Option<String>,
}

impl Http {
    /// A client whose relative paths go to `base`.
    pub fn new(base: &str) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            base: base.trim_end_matches('/').to_owned(),
            authorization: None,
        }
    }

    /// The same client, sending `Authorization: JWT <token>`.
    pub fn with_token(&self, token: &str) -> Http {
        Http {
            authorization: Some(format!("JWT {token}")),
            ..self.clone()
        }
    }

    /// The same client, sending `Authorization: Bearer <token>`.
    pub fn with_bearer(&self, token: &str) -> Http {
        Http {
            authorization: Some(format!("Bearer {token}")),
            ..self.clone()
        }
    }

    /// The same client, sending `Authorization: Basic` with these credentials.
    pub fn with_basic(&self, user: &str, password: &str) -> Http {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Http {
            authorization: Some(format!("Basic {encoded}")),
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends any request; `headers` are added as given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Sends any request; `Err` says why no whole answer came (the server is gone, say).
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Resp, String> {
        let url = self.url(path);
        let mut request = Request::builder().method(method.clone()).uri(&url);
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("valid request");
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| format!("{method} {url} failed: {err:?}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| format!("{method} {url}: the answer's body failed: {err:?}"))?
            .to_bytes();
        Ok(Resp {
            method,
            url,
            status,
            headers,
            body,
        })
    }

    /// POSTs, PATCHes or PUTs JSON; `Err` says why no whole answer came.
    pub async fn try_json(&self, method: Method, path: &str, body: Value) -> Result<Resp, String> {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.try_send(method, path, &[("content-type", "application/json")], bytes)
            .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, &[], Bytes::new()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send_json(Method::POST, path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send_json(Method::PATCH, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send_json(Method::PUT, path, body).await
    }

    pub async fn send_json(&self, method: Method, path: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.send(method, path, &[("content-type", "application/json")], bytes)
            .await
    }

    /// POSTs raw bytes.
    pub async fn post_raw(&self, path: &str, body: impl Into<Bytes>) -> Resp {
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await
    }
}

/// An emulator for one test, with clients for it: `api` for the calls a test sets up with,
/// `http` for the requests whose raw answer it asserts on.
pub struct TestHub {
    pub hub: Hub,
    pub http: Http,
    pub api: ApiClient,
}

impl TestHub {
    /// An emulator with auth off.
    pub async fn start() -> TestHub {
        TestHub::with(Config::default().with_auth(false)).await
    }

    /// An emulator with `config`.
    pub async fn with(config: Config) -> TestHub {
        let hub = Hub::start_with(config).await;
        let http = Http::new(&hub.uri());
        let api = ApiClient::new(&hub.uri());
        TestHub { hub, http, api }
    }

    /// Creates `ns/name` through the control API.
    pub async fn repository(&self, ns: &str, name: &str) -> Value {
        as_json(self.api.create_repository(ns, name).await)
    }

    /// Creates a pipeline through the Hub API with one webhook per URL.
    pub async fn pipeline(
        &self,
        repo: &str,
        name: &str,
        urls: &[String],
        expect_final: bool,
    ) -> Value {
        let webhooks = urls
            .iter()
            .enumerate()
            .map(|(i, url)| WebhookSpec {
                name: format!("hook {i}"),
                hook_url: url.clone(),
            })
            .collect();
        let spec = PipelineSpec {
            name: Some(name.to_owned()),
            expect_final_callback: Some(expect_final),
            webhooks: Some(webhooks),
            payload_format: None,
            quirks: None,
        };
        as_json(self.api.create_pipeline(&repo_name(repo), spec).await)
    }

    /// Creates `acme/app` with one pipeline of these hooks, pushes `v1` and answers its run.
    pub async fn first_run(&self, pipeline: &str, urls: &[String], expect_final: bool) -> Value {
        self.repository("acme", "app").await;
        self.pipeline("acme/app", pipeline, urls, expect_final)
            .await;
        self.push("acme/app", "v1").await.remove(0)
    }

    /// Pushes a tag through the control API; answers the runs started.
    pub async fn push(&self, repo: &str, tag: &str) -> Vec<Value> {
        let runs = self.api.push(&repo_name(repo), tag).await;
        as_json(runs).as_array().expect("runs").clone()
    }

    /// Long-polls a run until it is finished.
    pub async fn finished(&self, run: &Value) -> Value {
        let id = run_id(run);
        let run = as_json(self.api.wait_for_run(id, WAIT).await);
        assert_ne!(
            run["status"], "pending",
            "run {id} still pending after {WAIT:?}: {run:#}"
        );
        run
    }

    /// Long-polls a run until the step's delivery was answered.
    pub async fn delivered(&self, run: &Value, step: usize) -> Value {
        let id = run_id(run);
        let run = as_json(self.api.wait_for_delivery(id, step, WAIT).await);
        assert!(
            !run["steps"][step]["delivery"].is_null() || run["status"] != "pending",
            "step {step} of run {id} not delivered after {WAIT:?}: {run:#}"
        );
        run
    }

    /// Sends a callback for a step of a run (as the JSON the run shows).
    pub async fn callback(&self, run: &Value, step: usize, body: Value) -> Resp {
        let url = run["steps"][step]["callback_url"]
            .as_str()
            .expect("callback_url")
            .to_owned();
        self.http.post(&url, body).await
    }

    /// The whole state, to show that a bad request changed nothing.
    pub async fn state(&self) -> Value {
        as_json(self.api.export_state().await)
    }
}

/// What a typed call answered, as the JSON the API shows (tests index into it); a failed call
/// panics with the whole exchange.
fn as_json<T: Serialize>(answer: Result<T, ApiError>) -> Value {
    let value = answer.unwrap_or_else(|err| panic!("{err}"));
    serde_json::to_value(value).expect("API values serialise")
}

/// `ns/name` as a repository name.
fn repo_name(repo: &str) -> RepoName {
    RepoName::parse(repo).unwrap_or_else(|_| panic!("{repo:?} is not namespace/name"))
}

/// The id of a run, as the JSON the API shows.
fn run_id(run: &Value) -> u64 {
    run["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("not a run: {run:#}"))
}

/// A wiremock server on a listener this test bound itself, so a late delivery can never reach
/// another test's receiver.
pub async fn receiver() -> MockServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    MockServer::builder().listener(listener).start().await
}

/// A receiver (on its own listener) that answers every POST with `status`.
pub async fn answering(status: u16) -> MockServer {
    let r = receiver().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(status))
        .mount(&r)
        .await;
    r
}

/// The statuses of a run's steps.
pub fn step_statuses(run: &Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect()
}

/// A receiver written by hand for behaviours wiremock cannot script (calling back before
/// answering, closing the connection, answering garbage). Each connection gets `handler`'s
/// bytes written back after the request head and body are read. Stops when dropped.
pub struct RawReceiver {
    pub address: SocketAddr,
    _accepting: AcceptLoop,
}

impl RawReceiver {
    /// Starts on the current runtime; `respond` gets the request body and answers the raw
    /// bytes to write (or `None` to drop the connection).
    pub async fn start<F, Fut>(respond: F) -> RawReceiver
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Option<Vec<u8>>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let respond = Arc::new(respond);
        let accepting = AcceptLoop::spawn(listener, move |stream, _| {
            let respond = respond.clone();
            answer_raw(stream, move |body| (*respond)(body))
        })
        .unwrap();
        RawReceiver {
            address: accepting.address(),
            _accepting: accepting,
        }
    }

    /// The URL to register as a hook.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }
}

/// Reads one request and writes back what `respond` makes of its body; `None` drops the
/// connection.
async fn answer_raw<F, Fut>(mut stream: TcpStream, respond: F)
where
    F: FnOnce(Bytes) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<u8>>>,
{
    let Some(body) = read_request_body(&mut stream, RAW_REQUEST_LIMIT).await else {
        return;
    };
    if let Some(answer) = respond(body).await {
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    }
}

/// A complete HTTP/1.1 response with a body.
pub fn http_response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A test that needs an outside program (a browser, skopeo, a PyPI client) and cannot find it:
/// under CI (`CI=true`, where `.ci/run` installs every such program) that is a failure; locally
/// the test is skipped, saying why.
pub fn missing_program(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}; with CI=true it must be there (.ci/run installs it)");
    }
    eprintln!("skipped: {reason}");
}

/// The Python of the venv `.ci/run` makes under `target/{venv}` (or the one `env_var` names)
/// when it can import `module`; otherwise why not, saying how to install `package`.
pub fn venv_python(
    env_var: &str,
    venv: &str,
    module: &str,
    package: &str,
) -> Result<std::path::PathBuf, String> {
    let python = std::env::var_os(env_var)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(venv)
                .join("bin/python")
        });
    let imports = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if imports {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import {module}; .ci/run installs it (python3 -m venv target/{venv} && \
             target/{venv}/bin/pip install {package})",
            python.display()
        ))
    }
}

/// The JSON bodies `receiver` got, oldest first.
pub async fn received_json(receiver: &MockServer) -> Vec<Value> {
    receiver
        .received_requests()
        .await
        .expect("the receiver records requests")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}
