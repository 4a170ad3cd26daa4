//! The bodies of the fuzz targets in `fuzz/`, one function per parser, each taking arbitrary
//! bytes and panicking only when an invariant breaks.
//!
//! They live in the library rather than in `fuzz/` so that each target there is one line, and
//! so that `cargo test` (tests/fuzz_replay.rs) replays the committed corpora and crash files
//! through exactly the same code on the stable toolchain: a crash, once pinned, stays fixed.
//!
//! | target | input | invariants |
//! |---|---|---|
//! | [`payload`] | a webhook payload | parsing never panics; what parses re-serialises and parses back equal |
//! | [`callback`] | a callback body | validation never panics, agrees with [`Callback::from_json`]; a valid callback survives a round trip |
//! | [`hub_bodies`] | a Hub API request body | pipeline and repository bodies never panic; what is accepted round-trips through what the API shows |
//! | [`scenario`] | a YAML scenario file | parsing never panics; errors name the file and 1-based positions |
//! | [`router`] | a script of HTTP requests (below) | every answer is < 500 (but a `508` for hubmock's own delivery and a `503` past the pending-run limit), JSON (or an empty 204, a registry success: content as pushed, or on a page path an HTML page or an empty 303), prompt; a refusal or a GET changes nothing; runs keep the chain's shape; the state exports and imports back equal |
//!
//! # The router's input
//!
//! A script of requests run in order against one fresh emulator, written like HTTP/1.1
//! without the version, requests separated by a line `###`:
//!
//! ```text
//! #! current no-auth
//! POST /_hubmock/repositories/acme/app/push
//! content-type: application/json
//!
//! {"tag": "v1"}
//! ###
//! POST {callback}
//!
//! {"state": "success"}
//! ```
//!
//! - An optional first line `#!` sets options: `no-auth`, `no-implicit-repositories`,
//!   `max-pending-runs=N`, and a payload format (`legacy`, `current`, `observed`).
//! - Then each request: `METHOD TARGET`, header lines `Name: value`, an empty line, the body.
//!   Lines that are not valid methods or headers are skipped, never an error.
//! - Placeholders reach what a fuzzer cannot guess: `{token}` (a login token of user
//!   `hubmock`, who owns namespace `hubmock`), `{rival}` (a token of user `rival`), `{run}`
//!   (the newest run id), `{hook}` (the hook id of the newest step awaiting a callback, else of
//!   the newest step), `{callback}` (that step's callback path) and `{marker}` (the
//!   `x-hubmock-delivery` marker of the newest delivery: a request carrying it is hubmock's own
//!   delivery come back, and must be refused with `508` whatever its route).
//! - A slow client: a request with the header `x-fuzz-stall` (taken off before it is sent)
//!   sends its body and then nothing more, never ending it; the body timeout must answer it
//!   `408` and change nothing.
//! - Deliveries are not sent: each is answered `200` after the next request (so a callback
//!   may come before or after the answer, R4), or as its hook URL says: `answer=NNN` for that
//!   status, `answer=refused` for a connection error, `answer=hold` for never.
//! - Long-polls (`wait=...`, `min=...`) do not wait: their `timeout_ms` is made 0. The script
//!   runs on tokio's paused clock (the `fuzzing` feature turns on tokio's `test-util`), so a
//!   stalled body's timeout passes at once in virtual time.
//! - `HUBMOCK_FUZZ_TRACE=1` prints every request and its answer ([`TRACE`]).
//!
//! Over 500 lines on purpose: five small targets, and the router target's request-script
//! interpreter with the promises it checks after every answer, which only it uses.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::config::Config;
use crate::model::callback::{Callback, CallbackRefusal, MAX_CONTEXT, MAX_DESCRIPTION};
use crate::model::fields::is_absolute_http_url;
use crate::model::format::PayloadFormat;
use crate::model::payload::Payload;
use crate::model::pipeline::{Pipeline, PipelineSpec};
use crate::model::repository::Repository;
use crate::model::run::{DeliveryResult, RunStatus, StepStatus};
use crate::model::time::Timestamp;
use crate::store::{Dispatch, RunFilter, Store, Work};

/// A target's body: arbitrary bytes in, a panic only when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/` and `fuzz/seeds/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("payload", payload),
    ("callback", callback),
    ("hub_bodies", hub_bodies),
    ("scenario", scenario),
    ("router", router),
];

/// A webhook payload: `serde_json::from_slice::<Payload>` never panics, and a payload that
/// parses is written back as JSON that parses to the same payload.
pub fn payload(data: &[u8]) {
    let Ok(payload) = serde_json::from_slice::<Payload>(data) else {
        return;
    };
    check_payload_round_trip(&payload);
}

fn check_payload_round_trip(payload: &Payload) {
    let bytes = payload.to_bytes();
    assert_eq!(
        payload.to_json().get().as_bytes(),
        &bytes[..],
        "to_json and to_bytes disagree"
    );
    let back: Payload = serde_json::from_slice(&bytes).unwrap_or_else(|err| {
        panic!(
            "a serialised payload does not parse: {err}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        &back,
        payload,
        "the payload changed in a round trip through\n{}",
        String::from_utf8_lossy(&bytes)
    );
}

/// A callback body: [`Callback::validate`] never panics, agrees with
/// [`Callback::from_json`] on the parsed JSON, names at least one field when it refuses JSON
/// (and calls only what is not JSON malformed), keeps
/// R8's limits when it accepts, and a callback it accepts validates again once serialised.
pub fn callback(data: &[u8]) {
    let verdict = Callback::validate(data);
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        assert_eq!(
            Callback::from_json(&value).map_err(CallbackRefusal::Invalid),
            verdict,
            "validate and from_json disagree"
        );
    }
    match verdict {
        Ok(callback) => {
            let chars = |text: &Option<String>| text.as_deref().map_or(0, |t| t.chars().count());
            assert!(chars(&callback.description) <= MAX_DESCRIPTION);
            assert!(chars(&callback.context) <= MAX_CONTEXT);
            if let Some(url) = &callback.target_url {
                assert!(is_absolute_http_url(url), "accepted target_url {url:?}");
            }
            let bytes = serde_json::to_vec(&callback).expect("a callback serialises");
            assert_eq!(
                Callback::validate(&bytes),
                Ok(callback),
                "a valid callback changed in a round trip"
            );
        }
        Err(CallbackRefusal::Invalid(errors)) => {
            assert!(!errors.is_empty(), "refused without naming a field");
            assert!(errors.to_json().is_object());
        }
        Err(CallbackRefusal::Malformed(message)) => {
            assert!(
                serde_json::from_slice::<Value>(data).is_err(),
                "called JSON malformed: {message}"
            );
            assert!(message.starts_with("JSON parse error - "), "{message}");
        }
    }
}

/// Hub API request bodies: pipeline create and update bodies
/// ([`PipelineSpec::from_json`]) and control-API repository bodies
/// ([`Repository::from_json`]) never panic. A body good for a create is good for an update
/// and means the same; what a created pipeline or repository shows can be sent back and means
/// the same again.
pub fn hub_bodies(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let create = PipelineSpec::from_json(&value, true);
    let update = PipelineSpec::from_json(&value, false);
    for errors in [create.as_ref().err(), update.as_ref().err()]
        .into_iter()
        .flatten()
    {
        assert!(
            !errors.is_empty(),
            "a pipeline body refused without a field"
        );
    }
    if let Ok(spec) = create {
        assert_eq!(
            update.as_ref(),
            Ok(&spec),
            "a body valid for a create is not the same update"
        );
        let pipeline = Pipeline::create(1, spec.clone(), "fuzz", Timestamp::now());
        assert!(!pipeline.slug.is_empty(), "a valid name gave an empty slug");
        let shown = serde_json::to_value(pipeline.api_view()).expect("a view serialises");
        let again = PipelineSpec::from_json(&shown, true)
            .unwrap_or_else(|errors| panic!("the API's own view {shown} is refused: {errors:?}"));
        // The view never shows a password: the spec comes back with it as `***`.
        let shown_webhooks = spec.webhooks.clone().map(|hooks| {
            hooks
                .into_iter()
                .map(|mut w| {
                    w.hook_url = crate::model::hook_url::redact(&w.hook_url);
                    w
                })
                .collect()
        });
        let expected = PipelineSpec {
            expect_final_callback: Some(pipeline.expect_final_callback),
            webhooks: shown_webhooks,
            ..spec
        };
        assert_eq!(again, expected, "the pipeline changed through {shown}");
    }
    match Repository::from_json(&value) {
        Ok(repository) => {
            let shown = serde_json::to_value(&repository).expect("a repository serialises");
            let mut again = Repository::from_json(&shown).unwrap_or_else(|errors| {
                panic!("a created repository's own JSON {shown} is refused: {errors:?}")
            });
            again.date_created = repository.date_created;
            assert_eq!(again, repository, "the repository changed through {shown}");
            let _ = repository.api_view(&crate::model::tag::Activity::default(), false);
        }
        Err(errors) => assert!(
            !errors.is_empty(),
            "a repository body refused without a field"
        ),
    }
}

/// A scenario file ([`crate::scenario::parse`]) never panics (invalid UTF-8 is replaced, as
/// the fuzzer otherwise rarely gets past it); an error names the file and 1-based positions.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = crate::scenario::parse(&text, "fuzz.yaml") {
        assert_eq!(error.file, "fuzz.yaml");
        assert_ne!(error.line, Some(0), "line 0 in {error}");
        assert_ne!(error.column, Some(0), "column 0 in {error}");
        let _ = error.to_string();
    }
}

/// The whole router in process ([`crate::server::respond`]), driven by a script of requests
/// (see the module documentation): never a panic, never a 5xx, every answer JSON (or an empty
/// `204`) within a bound, a 4xx or a GET leaves the state as it was, and the final state
/// exports and imports back equal.
pub fn router(data: &[u8]) {
    let script = Script::parse(data);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(script.run());
}

/// Set this variable to print each request of a router input and its answer, e.g. to read a
/// crash file: `HUBMOCK_FUZZ_TRACE=1 cargo test --test integration fuzz_replay -- --nocapture`.
pub const TRACE: &str = "HUBMOCK_FUZZ_TRACE";

/// Most requests one script runs, so one input stays fast.
const MAX_REQUESTS: usize = 64;

/// How long one answer may take, on the paused clock: past the longest long-poll (300 s), so it
/// only catches a router that hangs, and costs no real time.
const ANSWER_BOUND: Duration = Duration::from_secs(600);

/// A parsed router input.
struct Script<'a> {
    config: Config,
    requests: Vec<&'a [u8]>,
}

impl<'a> Script<'a> {
    fn parse(data: &'a [u8]) -> Script<'a> {
        let mut config = Config::default()
            .with_user("hubmock", "hubmock")
            .with_user("rival", "rival")
            // Well within ANSWER_BOUND, so a stalled body is answered (in virtual time).
            .with_body_timeout(Duration::from_secs(1));
        let mut rest = data;
        if let Some(options) = rest.strip_prefix(b"#!") {
            let (line, after) = split_line(options);
            for word in String::from_utf8_lossy(line).split_whitespace() {
                match word {
                    "no-auth" => config = config.with_auth(false),
                    "no-implicit-repositories" => config = config.with_implicit_repositories(false),
                    other => {
                        if let Some(max) = other
                            .strip_prefix("max-pending-runs=")
                            .and_then(|n| n.parse::<usize>().ok())
                            .filter(|&n| n > 0)
                        {
                            config = config.with_max_pending_runs(max);
                        }
                        if let Ok(format) = other.parse::<PayloadFormat>() {
                            config = config.with_payload_format(format);
                        }
                    }
                }
            }
            rest = after;
        }
        let mut requests = Vec::new();
        let (mut start, mut at) = (0, 0);
        loop {
            let end = rest[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| at + i);
            if trim_cr(&rest[at..end]) == b"###" {
                // The block ends before the newline that precedes the separator.
                requests.push(&rest[start..at.saturating_sub(1).max(start)]);
                start = (end + 1).min(rest.len());
            }
            if end >= rest.len() {
                break;
            }
            at = end + 1;
        }
        requests.push(&rest[start..]);
        requests.truncate(MAX_REQUESTS);
        Script { config, requests }
    }

    async fn run(self) {
        let (store, mut queue) = Store::new(self.config, "http://127.0.0.1:1");
        let tokens = Tokens {
            owner: store.login("hubmock", "hubmock").expect("user hubmock"),
            rival: store.login("rival", "rival").expect("user rival"),
        };
        let trace = std::env::var_os(TRACE).is_some();
        let mut held: Vec<Dispatch> = Vec::new();
        // An imported state is taken as it is, so only a state built by requests is held to
        // the chain's shape.
        let mut imported = false;
        // The marker of the newest delivery, for `{marker}`.
        let mut marker = None;
        for block in self.requests {
            let block = tokens.substitute(&store, block, marker.as_deref());
            if let Some(sent) = request(&block) {
                let before = store.export();
                let Sent {
                    request,
                    description: what,
                    head,
                } = sent;
                let answer =
                    tokio::time::timeout(ANSWER_BOUND, crate::server::handle(&store, request))
                        .await
                        .unwrap_or_else(|_| panic!("no answer within {ANSWER_BOUND:?} to {what}"));
                let status = check_answer(&store, &head, &what, answer, &before, trace).await;
                imported |= head.method == Method::PUT && status.is_success();
            }
            // Deliveries asked for by the previous request are answered now, after this one.
            for dispatch in std::mem::take(&mut held) {
                answer_delivery(&store, &dispatch, &mut held);
            }
            while let Ok(work) = queue.try_recv() {
                // Timers are the engine's; the script answers deliveries only.
                if let Work::Deliver(dispatch) = work {
                    check_payload_round_trip(&dispatch.payload);
                    marker = Some(store.delivery_marker(&dispatch));
                    held.push(*dispatch);
                }
            }
        }
        for dispatch in std::mem::take(&mut held) {
            answer_delivery(&store, &dispatch, &mut Vec::new());
        }
        if !imported {
            check_runs(&store);
        }
        let exported = store.export();
        store
            .import(&exported)
            .unwrap_or_else(|err| panic!("the state's own export is refused: {err}\n{exported}"));
        assert_eq!(
            store.export(),
            exported,
            "the state changed through an export and import"
        );
    }
}

/// Splits off the first line (without its `\n`).
fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The login tokens a script's placeholders stand for.
struct Tokens {
    owner: String,
    rival: String,
}

impl Tokens {
    /// Replaces the placeholders in one request with what they stand for right now.
    fn substitute(&self, store: &Store, block: &[u8], marker: Option<&str>) -> Vec<u8> {
        if !block.contains(&b'{') {
            return block.to_vec();
        }
        let runs = store.runs(&RunFilter::default());
        let step = runs
            .iter()
            .flat_map(|run| run.steps.iter())
            .find(|s| s.status == StepStatus::AwaitingCallback)
            .or_else(|| runs.first().and_then(|run| run.steps.last()));
        let (hook, callback) = step.map_or_else(
            || {
                let hook = "0123456789abcdefghij0123456789ab".to_owned();
                let callback = format!("/u/hubmock/app/hook/{hook}/");
                (hook, callback)
            },
            |s| {
                let path = s.callback_url.strip_prefix(store.public_url());
                (
                    s.hook_id.clone(),
                    path.unwrap_or(&s.callback_url).to_owned(),
                )
            },
        );
        let run = runs.first().map_or(1, |r| r.id).to_string();
        let mut out = block.to_vec();
        for (placeholder, value) in [
            ("{token}", self.owner.as_str()),
            ("{rival}", self.rival.as_str()),
            ("{run}", run.as_str()),
            ("{hook}", hook.as_str()),
            ("{callback}", callback.as_str()),
            // Before any delivery: a marker of the right shape that is not this instance's.
            ("{marker}", marker.unwrap_or("0000000000000000/1/0")),
        ] {
            out = replace_all(&out, placeholder.as_bytes(), value.as_bytes());
        }
        out
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(with);
        rest = &rest[i + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// One request from its block: `METHOD TARGET`, headers, an empty line, the body. `None`
/// when the method is not a valid token.
fn request(block: &[u8]) -> Option<Sent> {
    let (line, mut rest) = split_line(block);
    let line = trim_cr(line);
    let (method, target) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b"/"[..]),
    };
    let method = Method::from_bytes(method).ok()?;
    let mut headers = HeaderMap::new();
    loop {
        let (line, after) = split_line(rest);
        let line = trim_cr(line);
        if line.is_empty() {
            rest = after;
            break;
        }
        if let Some(i) = line.iter().position(|&b| b == b':') {
            let name = HeaderName::from_bytes(&line[..i]);
            let value = HeaderValue::from_bytes(line[i + 1..].trim_ascii());
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
        rest = after;
        if rest.is_empty() {
            break;
        }
    }
    // A long-poll answers at once: whatever it waits for, it sees the state as it is. A
    // fragment is never sent (clients keep it), so it is not part of the target.
    let target = String::from_utf8_lossy(target);
    let target = target.split('#').next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let mut has_timeout = false;
    for pair in &mut pairs {
        if let Some(value) = pair.strip_prefix("timeout_ms=") {
            has_timeout = true;
            if value.parse::<u64>().is_ok() {
                *pair = "timeout_ms=0".to_owned();
            }
        }
    }
    let long_poll = pairs
        .iter()
        .any(|p| p.starts_with("wait=") || p.starts_with("min="));
    if long_poll && !has_timeout {
        pairs.push("timeout_ms=0".to_owned());
    }
    let target = if pairs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", pairs.join("&"))
    };
    let stalls = headers.remove(STALL).is_some();
    let own_delivery = headers.contains_key(crate::delivery::DELIVERY_HEADER);
    let description = format!(
        "{method} {target} with {} body bytes{}",
        rest.len(),
        if stalls { ", then a stall" } else { "" }
    );
    let body = Stalling {
        data: Some(Bytes::copy_from_slice(rest)),
        stalls,
    };
    // A target no HTTP client could send (hyper refuses it on the wire) is no request.
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(target.as_str())
        .body(body)
        .ok()?;
    *request.headers_mut() = headers;
    // As the router sees the path (a target such as `PU` is an authority, with the path `/`).
    let routed = request.uri().path();
    // The router's reading: one leading and one trailing slash off (`//` is the home page, as
    // `/` with its one trailing slash).
    let bare = routed.strip_prefix('/').unwrap_or(routed);
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    let page = bare.is_empty() || routed.contains("/~/settings/webhooks");
    Some(Sent {
        request,
        description,
        head: SentHead {
            method,
            own_delivery,
            stalls,
            page,
        },
    })
}

/// The script's header for a slow client (see the module documentation).
const STALL: &str = "x-fuzz-stall";

/// A request of the script, as sent and as described in failures.
struct Sent {
    request: http::Request<Stalling>,
    description: String,
    head: SentHead,
}

/// What the checks of an answer need to know of its request.
struct SentHead {
    method: Method,
    /// It carries a delivery marker (this instance's or not).
    own_delivery: bool,
    /// Its body never ends.
    stalls: bool,
    /// Its path is one of the settings pages', which answer HTML and redirects.
    page: bool,
}

/// A request body: its bytes in one frame, then the end, or (`stalls`) nothing ever again.
struct Stalling {
    data: Option<Bytes>,
    stalls: bool,
}

impl hyper::body::Body for Stalling {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.data.take() {
            Some(data) if !data.is_empty() => {
                std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
            }
            _ if self.stalls => std::task::Poll::Pending,
            _ => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.stalls && self.data.as_ref().is_none_or(Bytes::is_empty)
    }
}

/// The router's promises for one answer.
async fn check_answer(
    store: &Store,
    sent: &SentHead,
    what: &str,
    answer: crate::server::http::HttpResponse,
    before: &Value,
    trace: bool,
) -> StatusCode {
    let method = &sent.method;
    let status = answer.status();
    // The two refusals that are the server's, not the client's: hubmock's own delivery come
    // back (only with a marker) and a push past the pending-run limit.
    let refused_by_server = (status == StatusCode::LOOP_DETECTED && sent.own_delivery)
        || status == StatusCode::SERVICE_UNAVAILABLE;
    assert!(
        status.as_u16() >= 200 && (status.as_u16() < 500 || refused_by_server),
        "{status} for {what}"
    );
    if sent.stalls && status.is_success() {
        // Only a route that reads no body may answer before the body ends: none does.
        panic!("{status} for {what}: a body that never ended was taken whole");
    }
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    // The registry answers content as it was pushed (a blob, a manifest), and its 201/202
    // and HEAD answers carry headers, not bodies; its refusals are JSON as everyone's.
    let registry = answer
        .headers()
        .contains_key("docker-distribution-api-version");
    let body = match answer.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => panic!("the answer's body broke off ({err}) for {what}"),
    };
    if trace {
        eprintln!("{what}\n  -> {status} {}", String::from_utf8_lossy(&body));
    }
    let html = content_type
        .as_ref()
        .is_some_and(|v| v.as_bytes() == b"text/html; charset=utf-8");
    if status == StatusCode::NO_CONTENT || (sent.page && status == StatusCode::SEE_OTHER) {
        assert!(body.is_empty(), "a {status} with a body for {what}");
    } else if sent.page && html {
        assert!(
            body.starts_with(b"<!DOCTYPE html>") && std::str::from_utf8(&body).is_ok(),
            "{status} with a body that is not an HTML page for {what}"
        );
    } else if registry && status.is_success() {
        // Content as pushed, or an empty answer whose headers say it all.
    } else {
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{status} without JSON content type for {what}"
        );
        if let Err(err) = serde_json::from_slice::<Value>(&body) {
            panic!(
                "{status} with a body that is not JSON ({err}) for {what}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    // SPEC section 7: bad input loses nothing; and a GET only looks.
    if status.is_client_error() || refused_by_server || method == Method::GET {
        let after = store.export();
        assert!(
            &after == before,
            "{status} for {what} changed the state\nbefore: {before}\nafter: {after}"
        );
    }
    status
}

/// Answers one delivery as its hook URL asks (see the module documentation).
fn answer_delivery(store: &Store, dispatch: &Dispatch, held: &mut Vec<Dispatch>) {
    let answer = dispatch
        .url
        .split_once("answer=")
        .map(|(_, rest)| rest.split(['&', '#', '/']).next().unwrap_or(""));
    let (status, error) = match answer {
        Some("hold") => {
            held.push(dispatch.clone());
            return;
        }
        Some("refused") => (None, Some("connection refused".to_owned())),
        Some(code) => (code.parse::<u16>().ok().or(Some(200)), None),
        None => (Some(200), None),
    };
    let record = dispatch.record(
        Timestamp::now(),
        BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        dispatch.payload.to_json(),
        DeliveryResult {
            status,
            error,
            duration_ms: 1,
            response_body: Some("ok".to_owned()),
        },
    );
    store.delivered(dispatch, record, 0);
}

/// Every run obeys the chain's shape: a pending run has no end and a finished run has one;
/// at most one step awaits a callback, and only in a pending run.
fn check_runs(store: &Store) {
    for run in store.runs(&RunFilter::default()) {
        let awaiting = run
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::AwaitingCallback)
            .count();
        let shown = || serde_json::to_string(&run).unwrap_or_default();
        assert_eq!(
            run.status == RunStatus::Pending,
            run.finished.is_none(),
            "run {}",
            shown()
        );
        assert!(
            awaiting <= usize::from(run.status == RunStatus::Pending),
            "run {}",
            shown()
        );
    }
}
