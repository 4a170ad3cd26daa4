//! [`ApiClient`]: a typed client of a running hubmock's control API and Hub API.
//!
//! Over 500 lines on purpose: one documented method per endpoint of two APIs over one shared
//! request/answer path; split by API, the two halves would each repeat that path.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::HttpClient;
use crate::model::pipeline::PipelineSpec;
use crate::model::push::PushRequest;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::{Run, RunStatus, StepStatus};
use crate::server::wire::PipelineView;
use crate::store::{DeliveryFilter, DeliveryRecord, RunFilter};

/// Every run status, in the order the documentation lists them.
pub const RUN_STATUSES: [RunStatus; 5] = [
    RunStatus::Pending,
    RunStatus::Success,
    RunStatus::Failure,
    RunStatus::Error,
    RunStatus::Cancelled,
];

/// Every step status, in the order the documentation lists them.
pub const STEP_STATUSES: [StepStatus; 9] = [
    StepStatus::Waiting,
    StepStatus::AwaitingCallback,
    StepStatus::Success,
    StepStatus::Failure,
    StepStatus::Error,
    StepStatus::DeliveryFailed,
    StepStatus::TimedOut,
    StepStatus::Skipped,
    StepStatus::Cancelled,
];

/// A status as the JSON surfaces and scenario files write it (`awaiting_callback`): its serde
/// name, so the words can never drift from the enums.
pub(crate) fn status_word(status: impl Serialize) -> String {
    match serde_json::to_value(status) {
        Ok(Value::String(word)) => word,
        other => unreachable!("a status serialises as a string, not {other:?}"),
    }
}

/// A call of an [`ApiClient`] that did not get the answer it expects.
#[derive(Clone, Debug)]
pub enum ApiError {
    /// No answer: nothing listens at the URL, or the connection broke off.
    Unreachable {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// Why, with its causes.
        reason: String,
    },
    /// An answer with another status than the call expects (an error answer, usually).
    Status {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The status answered.
        status: u16,
        /// The body answered.
        body: Bytes,
    },
    /// The expected status, with a body that is not what the call expects.
    Body {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The status answered.
        status: u16,
        /// The body answered.
        body: Bytes,
        /// What is wrong with it.
        reason: String,
    },
}

impl ApiError {
    /// The status answered, if there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unreachable { .. } => None,
            ApiError::Status { status, .. } | ApiError::Body { status, .. } => Some(*status),
        }
    }

    /// The body answered (empty if there was no answer).
    pub fn body(&self) -> &[u8] {
        match self {
            ApiError::Unreachable { .. } => &[],
            ApiError::Status { body, .. } | ApiError::Body { body, .. } => body,
        }
    }

    /// The body answered as JSON; a body that is not JSON as a JSON string, an empty one as
    /// `null`.
    pub fn json(&self) -> Value {
        json_or_text(self.body())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable {
                method,
                url,
                reason,
            } => write!(f, "{method} {url} failed: {reason}"),
            ApiError::Status {
                method,
                url,
                status,
                ..
            } => write!(f, "{method} {url} answered {status} {}", self.json()),
            ApiError::Body {
                method,
                url,
                status,
                reason,
                ..
            } => write!(
                f,
                "{method} {url} answered {status} with an unexpected body ({reason}): {}",
                self.json()
            ),
        }
    }
}

impl std::error::Error for ApiError {}

/// A body as JSON; one that is not JSON as a JSON string, an empty one as `null`.
fn json_or_text(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// A typed client of one running hubmock's control API and Hub API, for callers that reach the
/// emulator over HTTP (the scenario runner, the test suite, a hubmock started as a separate
/// process) rather than through a [`Hub`](crate::Hub) in the same process. Cheap to clone;
/// clones share a connection pool.
///
/// Its methods are named as [`Hub`](crate::Hub)'s are and answer the same types, so a test
/// reads the same either way. A call that gets another status than the one it expects answers
/// an [`ApiError`] carrying the status and body, so a test can assert on error answers too.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use hubmock::{ApiClient, Hub, PipelineSpec, RepoName, RunStatus};
///
/// // Arrange: an emulator, and a client that only knows its URL.
/// let hub = Hub::start().await;
/// let api = ApiClient::new(&hub.uri());
/// api.create_repository("acme", "app").await.unwrap();
/// let repo = RepoName::new("acme", "app").unwrap();
/// // Nothing listens on port 9 (discard): the delivery fails and the run ends with `error`.
/// let spec = PipelineSpec::new("deploy", &["http://127.0.0.1:9/hook"]);
/// let pipeline = api.create_pipeline(&repo, spec).await.unwrap();
/// assert_eq!(pipeline.slug, "deploy");
///
/// // Act: push, then long-poll the run until it ends.
/// let run = api.push(&repo, "v1.0.0").await.unwrap().remove(0);
/// let run = api.wait_for_run(run.id(), std::time::Duration::from_secs(10)).await.unwrap();
///
/// // Assert: typed values, and typed errors with the status and body of the answer.
/// assert_eq!(run.status(), RunStatus::Error);
/// let taken = api.create_repository("acme", "app").await.unwrap_err();
/// assert_eq!(taken.status(), Some(409));
/// # }
/// ```
#[derive(Clone)]
pub struct ApiClient {
    http: HttpClient,
    base: String,
    token: Option<String>,
    control_token: Option<String>,
}

/// `{"runs": [...]}`, as push and the run list answer.
#[derive(Deserialize)]
struct Runs {
    runs: Vec<Run>,
}

/// Django REST framework's page, as the Hub API's lists answer.
#[derive(Deserialize)]
struct Page<T> {
    next: Option<String>,
    results: Vec<T>,
}

impl ApiClient {
    /// A client of the hubmock at `base_url` (`http://127.0.0.1:5555`).
    pub fn new(base_url: &str) -> ApiClient {
        ApiClient {
            http: HttpClient::new(),
            base: base_url.trim_end_matches('/').to_owned(),
            token: None,
            control_token: None,
        }
    }

    /// The same client, trusting an `https://` hubmock as `tls` says (`--ca-cert` files,
    /// `--insecure-skip-verify`), not only through the platform's certificate authorities.
    pub fn with_tls(mut self, tls: &crate::tls::ClientTls) -> Result<ApiClient, String> {
        self.http = HttpClient::with_tls(tls)?;
        Ok(self)
    }

    /// The same client, sending `Authorization: JWT <token>` (from [`ApiClient::login`]), as
    /// the Hub API needs unless hubmock runs with auth off.
    pub fn with_token(mut self, token: &str) -> ApiClient {
        self.token = Some(token.to_owned());
        self
    }

    /// The same client, sending `Authorization: Bearer <token>` on the control API
    /// (`/_hubmock/...`), as a hubmock started with `--control-token` requires. The Hub API
    /// keeps getting the login token of [`ApiClient::with_token`], if any.
    pub fn with_control_token(mut self, token: &str) -> ApiClient {
        self.control_token = Some(token.to_owned());
        self
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    // ---- Hub API ------------------------------------------------------------------------

    /// Logs in (`POST /v2/users/login/`); answers the token for [`ApiClient::with_token`].
    pub async fn login(&self, username: &str, password: &str) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let body = json!({ "username": username, "password": password });
        let answer: Token = self
            .call_json(Method::POST, "/v2/users/login/", Some(&body), 200)
            .await?;
        Ok(answer.token)
    }

    /// Creates a webhook pipeline (`POST /v2/repositories/{ns}/{repo}/webhook_pipeline/`),
    /// with the body Docker Hub's own client sends.
    pub async fn create_pipeline(
        &self,
        repository: &RepoName,
        spec: PipelineSpec,
    ) -> Result<PipelineView, ApiError> {
        let mut body = spec_json(&spec);
        body["registry"] = json!("registry-1.docker.io");
        let path = format!("/v2/repositories/{repository}/webhook_pipeline/");
        self.call_json(Method::POST, &path, Some(&body), 201).await
    }

    /// A webhook pipeline (`GET .../webhook_pipeline/{slug}/`).
    pub async fn pipeline(
        &self,
        repository: &RepoName,
        slug: &str,
    ) -> Result<PipelineView, ApiError> {
        let path = pipeline_path(repository, slug);
        self.call_json(Method::GET, &path, None, 200).await
    }

    /// Changes a webhook pipeline (`PATCH .../webhook_pipeline/{slug}/`); the fields `spec`
    /// leaves out stay as they are.
    pub async fn update_pipeline(
        &self,
        repository: &RepoName,
        slug: &str,
        spec: PipelineSpec,
    ) -> Result<PipelineView, ApiError> {
        let path = pipeline_path(repository, slug);
        let body = spec_json(&spec);
        self.call_json(Method::PATCH, &path, Some(&body), 200).await
    }

    /// Deletes a webhook pipeline (`DELETE .../webhook_pipeline/{slug}/`), cancelling its
    /// pending runs.
    pub async fn delete_pipeline(&self, repository: &RepoName, slug: &str) -> Result<(), ApiError> {
        let path = pipeline_path(repository, slug);
        self.call(Method::DELETE, &path, None, 204).await?;
        Ok(())
    }

    /// Every run of a pipeline, newest first (`GET .../webhook_pipeline/{slug}/history/`,
    /// every page).
    pub async fn history(&self, repository: &RepoName, slug: &str) -> Result<Vec<Run>, ApiError> {
        let mut next = Some(format!(
            "{}history/?page_size=1000",
            pipeline_path(repository, slug)
        ));
        let mut runs = Vec::new();
        while let Some(target) = next {
            let page: Page<Run> = self.call_json(Method::GET, &target, None, 200).await?;
            runs.extend(page.results);
            next = page.next;
        }
        Ok(runs)
    }

    /// Sends a callback as a receiver does: POSTs `body` to a step's `callback_url` (an
    /// absolute URL, as the run and the payload show it); answers the acceptance (`200`).
    pub async fn send_callback(&self, callback_url: &str, body: &Value) -> Result<Value, ApiError> {
        let answer = self
            .call(Method::POST, callback_url, Some(body), 200)
            .await?;
        Ok(json_or_text(&answer))
    }

    // ---- control API --------------------------------------------------------------------

    /// Creates a repository with default fields (`POST /_hubmock/repositories`).
    pub async fn create_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Repository, ApiError> {
        let body = json!({ "namespace": namespace, "name": name });
        self.call_json(Method::POST, "/_hubmock/repositories", Some(&body), 201)
            .await
    }

    /// Pushes `tag`; answers the runs it started, one per pipeline.
    pub async fn push(&self, repository: &RepoName, tag: &str) -> Result<Vec<Run>, ApiError> {
        let push = PushRequest {
            tag: Some(tag.to_owned()),
            ..PushRequest::default()
        };
        self.push_with(repository, push).await
    }

    /// Pushes with every detail given (`POST /_hubmock/repositories/{ns}/{repo}/push`).
    pub async fn push_with(
        &self,
        repository: &RepoName,
        push: PushRequest,
    ) -> Result<Vec<Run>, ApiError> {
        self.push_tags(repository, &push, &[]).await
    }

    /// Pushes one image under several tags, as an automated build does: the push, then one
    /// more post per extra tag (`"extra_tags"`); answers every run started.
    pub async fn push_tags(
        &self,
        repository: &RepoName,
        push: &PushRequest,
        extra_tags: &[String],
    ) -> Result<Vec<Run>, ApiError> {
        let mut body = push_json(push);
        if !extra_tags.is_empty() {
            body["extra_tags"] = json!(extra_tags);
        }
        let path = format!("/_hubmock/repositories/{repository}/push");
        let answer: Runs = self
            .call_json(Method::POST, &path, Some(&body), 202)
            .await?;
        Ok(answer.runs)
    }

    /// Pushes (with `extra_tags`: one image under several tags, as an automated build) and
    /// waits until every run the push started has finished, or `timeout` passes (hubmock caps
    /// one wait at five minutes): the runs as they are then, and whether all had finished
    /// (`POST .../push?wait=finished&timeout_ms=`).
    pub async fn push_and_wait(
        &self,
        repository: &RepoName,
        push: &PushRequest,
        extra_tags: &[String],
        timeout: Duration,
    ) -> Result<(Vec<Run>, bool), ApiError> {
        #[derive(Deserialize)]
        struct Waited {
            runs: Vec<Run>,
            finished: bool,
        }
        let mut body = push_json(push);
        if !extra_tags.is_empty() {
            body["extra_tags"] = json!(extra_tags);
        }
        let query = Query::new()
            .add("wait", Some("finished"))
            .add("timeout_ms", Some(timeout.as_millis()));
        let path = format!("/_hubmock/repositories/{repository}/push{query}");
        let answer: Waited = self
            .call_json(Method::POST, &path, Some(&body), 200)
            .await?;
        Ok((answer.runs, answer.finished))
    }

    /// Runs, newest first (`GET /_hubmock/runs?repository=&pipeline=&status=`).
    pub async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>, ApiError> {
        let query = Query::new()
            .add("repository", filter.repository.as_ref())
            .add("pipeline", filter.pipeline.as_ref())
            .add("status", filter.status.map(status_word));
        let path = format!("/_hubmock/runs{query}");
        let answer: Runs = self.call_json(Method::GET, &path, None, 200).await?;
        Ok(answer.runs)
    }

    /// A run as it is now (`GET /_hubmock/runs/{id}`).
    pub async fn run(&self, id: u64) -> Result<Run, ApiError> {
        let path = format!("/_hubmock/runs/{id}");
        self.call_json(Method::GET, &path, None, 200).await
    }

    /// Waits until the run is no longer pending, or `timeout` passes (hubmock caps it at five
    /// minutes); answers the run as it is then (`?wait=finished`).
    pub async fn wait_for_run(&self, id: u64, timeout: Duration) -> Result<Run, ApiError> {
        let query = Query::new()
            .add("wait", Some("finished"))
            .add("timeout_ms", Some(timeout.as_millis()));
        let path = format!("/_hubmock/runs/{id}{query}");
        self.call_json(Method::GET, &path, None, 200).await
    }

    /// Waits until the step's (0-based) delivery has been answered, or will never be sent, or
    /// `timeout` passes; answers the run as it is then (`?wait=delivered&step=`).
    pub async fn wait_for_delivery(
        &self,
        id: u64,
        step: usize,
        timeout: Duration,
    ) -> Result<Run, ApiError> {
        let query = Query::new()
            .add("wait", Some("delivered"))
            .add("step", Some(step))
            .add("timeout_ms", Some(timeout.as_millis()));
        let path = format!("/_hubmock/runs/{id}{query}");
        self.call_json(Method::GET, &path, None, 200).await
    }

    /// The outbound requests that match `filter`, oldest first (`GET /_hubmock/deliveries`).
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        self.deliveries_query(delivery_query(filter)).await
    }

    /// Waits until at least `min` requests match `filter`, or `timeout` passes; answers those
    /// recorded then, oldest first (`?min=&timeout_ms=`).
    pub async fn wait_for_deliveries(
        &self,
        filter: &DeliveryFilter,
        min: usize,
        timeout: Duration,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        let query = delivery_query(filter)
            .add("min", Some(min))
            .add("timeout_ms", Some(timeout.as_millis()));
        self.deliveries_query(query).await
    }

    async fn deliveries_query(&self, query: Query) -> Result<Vec<DeliveryRecord>, ApiError> {
        #[derive(Deserialize)]
        struct Deliveries {
            deliveries: Vec<DeliveryRecord>,
        }
        let path = format!("/_hubmock/deliveries{query}");
        let answer: Deliveries = self.call_json(Method::GET, &path, None, 200).await?;
        Ok(answer.deliveries)
    }

    /// Forgets everything (`POST /_hubmock/reset`).
    pub async fn reset(&self) -> Result<(), ApiError> {
        self.call(Method::POST, "/_hubmock/reset", None, 200)
            .await?;
        Ok(())
    }

    /// The whole state as JSON (`GET /_hubmock/state`), for [`ApiClient::import_state`].
    pub async fn export_state(&self) -> Result<Value, ApiError> {
        self.call_json(Method::GET, "/_hubmock/state", None, 200)
            .await
    }

    /// Replaces the whole state with an export (`PUT /_hubmock/state`).
    pub async fn import_state(&self, state: &Value) -> Result<(), ApiError> {
        self.call(Method::PUT, "/_hubmock/state", Some(state), 200)
            .await?;
        Ok(())
    }

    // ---- the exchange -------------------------------------------------------------------

    /// A path of this hubmock as a URL; an absolute URL (a callback URL) as it is.
    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// Sends one request to a path of this hubmock (or to an absolute URL); answers the body
    /// if the status is `expected`.
    async fn call(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Result<Bytes, ApiError> {
        let url = self.url(path_or_url);
        // One Authorization header per request: the control token on the control API, the
        // login token everywhere else.
        let authorization = match &self.control_token {
            Some(token) if path_or_url.starts_with("/_hubmock/") => Some(format!("Bearer {token}")),
            _ => self.token.as_ref().map(|token| format!("JWT {token}")),
        };
        let mut headers = Vec::new();
        if let Some(value) = &authorization {
            headers.push(("authorization", value.as_str()));
        }
        let bytes = match body {
            Some(body) => {
                headers.push(("content-type", "application/json"));
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let answer = self
            .http
            .send(method.clone(), &url, &headers, bytes, usize::MAX)
            .await
            .map_err(|reason| ApiError::Unreachable {
                method: method.clone(),
                url: url.clone(),
                reason,
            })?;
        if answer.status != expected {
            return Err(ApiError::Status {
                method,
                url,
                status: answer.status,
                body: answer.body,
            });
        }
        Ok(answer.body)
    }

    /// [`ApiClient::call`], with the body read as `T`.
    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Result<T, ApiError> {
        let answer = self
            .call(method.clone(), path_or_url, body, expected)
            .await?;
        serde_json::from_slice(&answer).map_err(|err| ApiError::Body {
            method,
            url: self.url(path_or_url),
            status: expected,
            body: answer,
            reason: err.to_string(),
        })
    }
}

/// `/v2/repositories/{ns}/{repo}/webhook_pipeline/{slug}/`
fn pipeline_path(repository: &RepoName, slug: &str) -> String {
    format!("/v2/repositories/{repository}/webhook_pipeline/{slug}/")
}

/// A pipeline spec as the Hub API reads it: only the fields it sets.
fn spec_json(spec: &PipelineSpec) -> Value {
    let mut body = json!({});
    if let Some(name) = &spec.name {
        body["name"] = json!(name);
    }
    if let Some(expect) = spec.expect_final_callback {
        body["expect_final_callback"] = json!(expect);
    }
    if let Some(webhooks) = &spec.webhooks {
        let webhooks: Vec<Value> = webhooks
            .iter()
            .map(|w| json!({ "name": w.name, "hook_url": w.hook_url }))
            .collect();
        body["webhooks"] = json!(webhooks);
    }
    if let Some(format) = spec.payload_format {
        body["payload_format"] = json!(format);
    }
    if let Some(quirks) = &spec.quirks {
        body["quirks"] = json!(quirks);
    }
    body
}

/// A push as the control API reads it: only the fields it sets.
fn push_json(push: &PushRequest) -> Value {
    let mut body = json!({});
    if let Some(tag) = &push.tag {
        body["tag"] = json!(tag);
    }
    if let Some(pusher) = &push.pusher {
        body["pusher"] = json!(pusher);
    }
    if !push.images.is_empty() {
        body["images"] = json!(push.images);
    }
    if let Some(media_type) = &push.media_type {
        body["media_type"] = json!(media_type);
    }
    body
}

fn delivery_query(filter: &DeliveryFilter) -> Query {
    Query::new()
        .add("run", filter.run)
        .add("url", filter.url.as_ref())
}

/// A query string built from optional parameters, each value percent-encoded; shown as
/// `?a=1&b=2`, or as nothing when no parameter is set.
struct Query(Vec<String>);

impl Query {
    fn new() -> Query {
        Query(Vec::new())
    }

    fn add(mut self, name: &str, value: Option<impl fmt::Display>) -> Query {
        if let Some(value) = value {
            self.0
                .push(format!("{name}={}", encode(&value.to_string())));
        }
        self
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() {
            write!(f, "?{}", self.0.join("&"))?;
        }
        Ok(())
    }
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_listed_once_under_its_json_word() {
        // The matches are exhaustive, so a new status does not compile here until it gets a
        // position: give it the next one, and list it there in RUN_STATUSES or STEP_STATUSES.
        let run_position = |status: RunStatus| match status {
            RunStatus::Pending => 0,
            RunStatus::Success => 1,
            RunStatus::Failure => 2,
            RunStatus::Error => 3,
            RunStatus::Cancelled => 4,
        };
        let step_position = |status: StepStatus| match status {
            StepStatus::Waiting => 0,
            StepStatus::AwaitingCallback => 1,
            StepStatus::Success => 2,
            StepStatus::Failure => 3,
            StepStatus::Error => 4,
            StepStatus::DeliveryFailed => 5,
            StepStatus::TimedOut => 6,
            StepStatus::Skipped => 7,
            StepStatus::Cancelled => 8,
        };
        for (position, status) in RUN_STATUSES.into_iter().enumerate() {
            assert_eq!(run_position(status), position);
            assert_eq!(status_word(status).parse::<RunStatus>(), Ok(status));
        }
        for (position, status) in STEP_STATUSES.into_iter().enumerate() {
            assert_eq!(step_position(status), position);
            let word = Value::String(status_word(status));
            assert_eq!(serde_json::from_value::<StepStatus>(word).unwrap(), status);
        }
        assert_eq!(
            status_word(StepStatus::AwaitingCallback),
            "awaiting_callback"
        );
    }

    #[test]
    fn a_query_encodes_its_values_and_leaves_out_absent_ones() {
        let query = Query::new()
            .add("url", Some("http://127.0.0.1:1/hook?a=b"))
            .add("run", None::<u64>)
            .add("min", Some(2));
        assert_eq!(
            query.to_string(),
            "?url=http%3A%2F%2F127.0.0.1%3A1%2Fhook%3Fa%3Db&min=2"
        );
        assert_eq!(Query::new().to_string(), "");
    }
}
