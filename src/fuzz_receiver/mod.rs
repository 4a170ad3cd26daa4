//! `hubmock fuzz-receiver`: sends generated Docker Hub payloads to a user's webhook receiver
//! and checks that it copes, the way Docker Hub would judge it.
//!
//! Each case POSTs one payload from [`strategy`] (every format unless one is chosen; boundary
//! and Unicode strings; `library/` repositories; optional fields absent; empty and long
//! `images`; integer and float times as each format has them) with
//! `Content-Type: application/json`. The receiver passes a case when it answers a 2xx or 3xx
//! status within the timeout (what Docker Hub counts as delivered, SPEC R3: the Jenkins plugin
//! answers 302) and, with [`FuzzOptions::expect_callback`], when it also calls the payload's
//! `callback_url` with a valid body (SPEC R8) within the timeout of the delivery being sent.
//!
//! Every `callback_url` points at a small local server the fuzzer starts, never at the real
//! Hub; its hook id differs on every attempt, so a late callback never counts for another case.
//!
//! On a failure, proptest shrinks the payload to a minimal one that still fails. The cases are
//! drawn from a seeded generator: the same seed sends the same payloads in the same order, so a
//! deterministic receiver fails the same way again.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use hubmock::fuzz_receiver::{fuzz_receiver, FuzzOptions};
//!
//! let options = FuzzOptions {
//!     cases: 64,
//!     ..FuzzOptions::new("http://127.0.0.1:8080/hook")
//! };
//! let report = fuzz_receiver(options).await.expect("the receiver is reachable");
//! println!("{report}");
//! assert!(report.passed());
//! # }
//! ```
//!
//! Over 500 lines on purpose: the options, the case loop, the verdict on each answer and the
//! shrinking report belong to one command; the payload strategies and the callback listener
//! have their own files.

mod listener;
pub mod strategy;

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::client::HttpClient;
use crate::model::chain;
use crate::model::chain::callback_url;
use crate::model::fields::is_absolute_http_url;
use crate::model::format::PayloadFormat;
use crate::model::payload::Payload;
use crate::model::repository::RepoName;
use listener::{CallbackListener, Verdict};

/// How much of a receiver's answer a failure shows.
const SHOWN_BODY: usize = 200;

/// What to fuzz and how hard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzOptions {
    /// The receiver's URL, `http://` or `https://`.
    pub url: String,
    /// How many passing cases make a pass.
    pub cases: u32,
    /// The generator's seed; random (and reported) when `None`.
    pub seed: Option<u64>,
    /// Only this payload format; every format when `None`.
    pub format: Option<PayloadFormat>,
    /// How long the receiver may take to answer, and to call back after the delivery is sent.
    pub timeout: Duration,
    /// Whether each case also needs a valid callback to `callback_url`.
    pub expect_callback: bool,
    /// How long shrinking a failure may take before the smallest failure so far is reported.
    /// A receiver that hangs costs a whole timeout per attempt.
    pub max_shrink_time: Duration,
    /// PEM files of certificate authorities to trust for an `https://` receiver, beside the
    /// platform's (`--ca-cert`).
    pub ca_cert_files: Vec<std::path::PathBuf>,
    /// Take any certificate from an `https://` receiver (`--insecure-skip-verify`).
    pub insecure_skip_verify: bool,
}

impl FuzzOptions {
    /// The defaults for `url`: 256 cases, a random seed, every format, a 10 s timeout (Docker
    /// Hub's delivery timeout in hubmock), no callback needed, at most 60 s of shrinking.
    pub fn new(url: impl Into<String>) -> FuzzOptions {
        FuzzOptions {
            url: url.into(),
            cases: 256,
            seed: None,
            format: None,
            timeout: Duration::from_secs(10),
            expect_callback: false,
            max_shrink_time: Duration::from_secs(60),
            ca_cert_files: Vec::new(),
            insecure_skip_verify: false,
        }
    }

    /// How the client trusts an `https://` receiver: the CA files read.
    fn client_tls(&self) -> Result<crate::tls::ClientTls, FuzzError> {
        crate::tls::ClientTls::from_files(&self.ca_cert_files, self.insecure_skip_verify)
            .map_err(FuzzError::Setup)
    }

    /// The command line that runs these options again with `seed`.
    pub fn command_line(&self, seed: u64) -> String {
        let mut line = format!(
            "hubmock fuzz-receiver {} --cases {} --seed {seed}",
            shell_quote(&self.url),
            self.cases
        );
        if let Some(format) = self.format {
            line.push_str(&format!(" --format {format}"));
        }
        line.push_str(&format!(" --timeout {}", duration_arg(self.timeout)));
        if self.expect_callback {
            line.push_str(" --expect-callback");
        }
        for path in &self.ca_cert_files {
            line.push_str(&format!(
                " --ca-cert {}",
                shell_quote(&path.display().to_string())
            ));
        }
        if self.insecure_skip_verify {
            line.push_str(" --insecure-skip-verify");
        }
        if self.max_shrink_time != FuzzOptions::new("").max_shrink_time {
            line.push_str(&format!(
                " --max-shrink-time {}",
                duration_arg(self.max_shrink_time)
            ));
        }
        line
    }
}

/// A duration as `humantime` reads it back, without spaces: `10s`, `1500ms`.
fn duration_arg(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}us", duration.as_micros())
    }
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":/._-@+,=".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Why fuzzing could not start or finish (as opposed to the receiver failing a case).
#[derive(Debug)]
pub enum FuzzError {
    /// The URL is not an absolute `http://` URL.
    InvalidUrl(String),
    /// Nothing accepted a connection at the URL's host and port before the first case.
    Unreachable {
        /// The receiver's URL.
        url: String,
        /// What connecting said.
        error: String,
    },
    /// The fuzzer's own callback server or runtime could not start.
    Setup(String),
    /// proptest gave up (it does not for these strategies; kept for completeness).
    Aborted(String),
}

impl fmt::Display for FuzzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FuzzError::InvalidUrl(message) => f.write_str(message),
            FuzzError::Unreachable { url, error } => write!(
                f,
                "cannot reach the receiver at {url}: {error}; is it running and listening there?"
            ),
            FuzzError::Setup(message) => write!(f, "could not start fuzzing: {message}"),
            FuzzError::Aborted(message) => write!(f, "fuzzing gave up: {message}"),
        }
    }
}

impl std::error::Error for FuzzError {}

/// A case the receiver failed, shrunk.
#[derive(Clone, Debug, PartialEq)]
pub struct FuzzFailure {
    /// The format of the minimal payload.
    pub format: PayloadFormat,
    /// The smallest payload found that still fails. Its `callback_url` is as generated; each
    /// attempt sent its own hook id.
    pub payload: Payload,
    /// Why the minimal payload failed, e.g. `answered 500 Internal Server Error: ...`.
    pub reason: String,
    /// Why the first failing payload failed, before shrinking.
    pub first_reason: String,
    /// How many cases passed before the first failure.
    pub passed: u32,
    /// How many payloads were tried while shrinking.
    pub shrink_attempts: u32,
}

/// The outcome of [`fuzz_receiver`].
#[derive(Clone, Debug, PartialEq)]
pub struct FuzzReport {
    /// The options it ran with.
    pub options: FuzzOptions,
    /// The seed it used (the given one, or the random one chosen).
    pub seed: u64,
    /// The failure, if the receiver failed a case.
    pub failure: Option<FuzzFailure>,
}

impl FuzzReport {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// The command line that runs the same cases again.
    pub fn command_line(&self) -> String {
        self.options.command_line(self.seed)
    }

    /// The minimal failing payload as pretty JSON, exactly as it is sent but indented.
    pub fn payload_json(&self) -> Option<String> {
        self.failure.as_ref().map(|failure| {
            serde_json::to_string_pretty(&failure.payload).expect("a payload always serialises")
        })
    }
}

impl fmt::Display for FuzzReport {
    /// `N cases passed (seed S)`, or the failure: reason, minimal payload, seed, command line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(failure) = &self.failure else {
            return write!(
                f,
                "{} cases passed (seed {})",
                self.options.cases, self.seed
            );
        };
        writeln!(
            f,
            "the receiver failed a case after {} passing case(s): {}",
            failure.passed, failure.reason
        )?;
        if failure.first_reason != failure.reason {
            writeln!(f, "(before shrinking: {})", failure.first_reason)?;
        }
        writeln!(
            f,
            "minimal payload ({} format, {} shrinking attempt(s)):",
            failure.format, failure.shrink_attempts
        )?;
        writeln!(f, "{}", self.payload_json().unwrap_or_default())?;
        writeln!(f, "seed: {}", self.seed)?;
        write!(f, "reproduce: {}", self.command_line())
    }
}

/// A seed from the operating system's generator.
pub fn random_seed() -> u64 {
    getrandom::u64().expect("the operating system's random generator is unavailable")
}

/// The 32 bytes of a ChaCha seed, spread from a `u64` with splitmix64 so that nearby seeds give
/// unrelated cases.
fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut state = seed;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes
}

/// A hook id of the observed shape (32 characters of `[0-9a-j]`) unique to one attempt.
fn attempt_hook_id(attempt: u32) -> String {
    format!("{attempt:032}")
}

/// Sends generated payloads to `options.url` until `options.cases` pass or one fails; a
/// failure is shrunk to a minimal payload. Runs the cases on a blocking thread with its own
/// runtime, and the callback server on the caller's runtime.
///
/// Errors only when fuzzing cannot start: a URL that is not `http://` or `https://`, nothing
/// listening at it, a CA file that cannot be used, or no local port for the callback server.
pub async fn fuzz_receiver(options: FuzzOptions) -> Result<FuzzReport, FuzzError> {
    if !is_absolute_http_url(&options.url) {
        return Err(FuzzError::InvalidUrl(format!(
            "'{}' is not an absolute http(s) URL such as http://127.0.0.1:8080/hook",
            options.url
        )));
    }
    // A CA file that cannot be read is said before anything is sent.
    options.client_tls()?;
    probe(&options.url, options.timeout).await?;
    let listener = CallbackListener::start()
        .await
        .map_err(|err| FuzzError::Setup(format!("could not bind 127.0.0.1:0: {err}")))?;
    let listener = Arc::new(listener);
    let seed = options.seed.unwrap_or_else(random_seed);
    let failure = {
        let options = options.clone();
        let listener = listener.clone();
        tokio::task::spawn_blocking(move || run_cases(&options, seed, &listener))
            .await
            .map_err(|err| FuzzError::Setup(format!("the fuzzing thread failed: {err}")))??
    };
    Ok(FuzzReport {
        options,
        seed,
        failure,
    })
}

/// Connects once to the URL's host and port, so that a receiver that is not running is an
/// error to fix rather than a "failure" shrunk to nothing.
async fn probe(url: &str, timeout: Duration) -> Result<(), FuzzError> {
    let unreachable = |error: String| FuzzError::Unreachable {
        url: url.to_owned(),
        error,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|err| FuzzError::InvalidUrl(format!("'{url}' is not a URL: {err}")))?;
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let https = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(unreachable(err.to_string())),
        Err(_) => Err(unreachable(format!(
            "no connection within {}",
            duration_arg(timeout)
        ))),
    }
}

/// What the cases have seen so far, shared by every attempt.
#[derive(Default)]
struct Progress {
    attempts: AtomicU32,
    passed: AtomicU32,
    /// The attempt number, reason and time of the first failure.
    first_failure: OnceLock<(u32, String, std::time::Instant)>,
}

/// Runs the cases on this (blocking) thread; answers the shrunk failure, if any.
fn run_cases(
    options: &FuzzOptions,
    seed: u64,
    listener: &CallbackListener,
) -> Result<Option<FuzzFailure>, FuzzError> {
    // TestRunner::run is synchronous: each attempt drives its requests on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| FuzzError::Setup(format!("could not start a runtime: {err}")))?;
    let client = HttpClient::with_tls(&options.client_tls()?).map_err(FuzzError::Setup)?;
    let config = Config {
        cases: options.cases,
        // The user's working directory is theirs: no proptest-regressions files.
        failure_persistence: None,
        fork: false,
        timeout: 0,
        // Shrinking is bounded by time, below; u32::MAX would mean "4 × cases".
        max_shrink_time: 0,
        max_shrink_iters: u32::MAX - 1,
        verbose: 0,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed));
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = strategy::payloads(options.format, listener.base_url().to_owned());
    let progress = Progress::default();
    let result = runner.run(&strategy, |(_, payload)| {
        if progress
            .first_failure
            .get()
            .is_some_and(|(_, _, at)| at.elapsed() > options.max_shrink_time)
        {
            // Out of shrinking time: nothing more is sent, and proptest, seeing every further
            // simplification pass, settles on the smallest failure found so far. (Its own
            // time limit would tell the user about a PROPTEST_ variable instead of our flag.)
            return Ok(());
        }
        let attempt = progress.attempts.fetch_add(1, Ordering::Relaxed);
        let result = runtime.block_on(attempt_case(&client, options, listener, attempt, payload));
        match result {
            Ok(()) => {
                if progress.first_failure.get().is_none() {
                    progress.passed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(reason) => {
                let _ = progress.first_failure.set((
                    attempt,
                    reason.clone(),
                    std::time::Instant::now(),
                ));
                Err(TestCaseError::fail(reason))
            }
        }
    });
    match result {
        Ok(()) => Ok(None),
        Err(TestError::Fail(reason, (format, payload))) => {
            let (first_attempt, first_reason) = progress
                .first_failure
                .get()
                .map(|(attempt, reason, _)| (*attempt, reason.clone()))
                .unwrap_or_default();
            let attempts = progress.attempts.load(Ordering::Relaxed);
            Ok(Some(FuzzFailure {
                format,
                payload,
                reason: reason.message().to_owned(),
                first_reason,
                passed: progress.passed.load(Ordering::Relaxed),
                shrink_attempts: attempts.saturating_sub(first_attempt + 1),
            }))
        }
        Err(TestError::Abort(reason)) => Err(FuzzError::Aborted(reason.message().to_owned())),
    }
}

/// One attempt: the payload with a `callback_url` of its own, POSTed and judged.
async fn attempt_case(
    client: &HttpClient,
    options: &FuzzOptions,
    listener: &CallbackListener,
    attempt: u32,
    mut payload: Payload,
) -> Result<(), String> {
    let hook_id = attempt_hook_id(attempt);
    let repository = RepoName {
        namespace: payload.repository.namespace.clone(),
        name: payload.repository.name.clone(),
    };
    payload.callback_url = callback_url(listener.base_url(), &repository, &hook_id);
    let callback = listener.expect(&hook_id);
    let result = deliver_and_judge(client, options, &payload, callback).await;
    listener.finish(&hook_id);
    result
}

async fn deliver_and_judge(
    client: &HttpClient,
    options: &FuzzOptions,
    payload: &Payload,
    callback: oneshot::Receiver<Verdict>,
) -> Result<(), String> {
    let timeout = options.timeout;
    // The callback may come before the answer (SPEC R4): its clock starts with the request.
    let deadline = Instant::now() + timeout;
    let request = client.send(
        Method::POST,
        &options.url,
        &[("content-type", "application/json")],
        Bytes::from(payload.to_bytes()),
        SHOWN_BODY,
    );
    let answer = match tokio::time::timeout_at(deadline, request).await {
        Err(_) => return Err(format!("no answer within {}", duration_arg(timeout))),
        Ok(Err(err)) => return Err(format!("the request failed: {err}")),
        Ok(Ok(answer)) => answer,
    };
    let status = StatusCode::from_u16(answer.status).map_or_else(
        |_| answer.status.to_string(),
        |s| {
            format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
                .trim_end()
                .to_owned()
        },
    );
    if !chain::status_counts_as_delivered(answer.status) {
        let body = String::from_utf8_lossy(&answer.body);
        return Err(if body.trim().is_empty() {
            format!("answered {status}")
        } else {
            format!("answered {status}: {}", body.trim())
        });
    }
    if !options.expect_callback {
        return Ok(());
    }
    match tokio::time::timeout_at(deadline, callback).await {
        Ok(Ok(Ok(_callback))) => Ok(()),
        Ok(Ok(Err(errors))) => Err(format!(
            "answered {status}, but called back with an invalid body: {errors}"
        )),
        Ok(Err(_)) => Err("the callback server stopped".to_owned()),
        Err(_) => Err(format!(
            "answered {status}, but did not call back to callback_url within {}",
            duration_arg(timeout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let options = FuzzOptions {
            seed: Some(7),
            format: Some(PayloadFormat::Observed),
            timeout: Duration::from_millis(1500),
            expect_callback: true,
            ..FuzzOptions::new("http://127.0.0.1:8080/hook?a=1&b=2")
        };
        assert_eq!(
            options.command_line(7),
            "hubmock fuzz-receiver 'http://127.0.0.1:8080/hook?a=1&b=2' --cases 256 --seed 7 \
             --format observed --timeout 1500ms --expect-callback"
        );
        assert_eq!(shell_quote("http://a/b"), "http://a/b");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn nearby_seeds_give_unrelated_generator_seeds() {
        assert_ne!(seed_bytes(1)[..8], seed_bytes(2)[..8]);
        assert_eq!(seed_bytes(42), seed_bytes(42));
    }

    #[test]
    fn attempt_hook_ids_have_the_observed_shape() {
        assert!(crate::model::ids::is_hook_id(&attempt_hook_id(0)));
        assert!(crate::model::ids::is_hook_id(&attempt_hook_id(u32::MAX)));
    }
}
