//! `hubmock fuzz-receiver`: it must find the fault in a deliberately fragile receiver, shrink
//! the payload to a minimal one, and pass a robust receiver, with and without callbacks.

use std::future::Future;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;

use hubmock::fuzz_receiver::{fuzz_receiver, FuzzError, FuzzOptions, FuzzReport};
use hubmock::net::{serve_http, AcceptLoop, Timeouts};
use hubmock::{Payload, PayloadFormat};
use serde_json::json;

use crate::util::Http;

/// A keep-alive HTTP/1 receiver on the test's runtime: `respond` gets each request's body and
/// answers a status and a body. Stops when dropped.
struct Receiver {
    accepting: AcceptLoop,
}

impl Receiver {
    async fn start<F, Fut>(respond: F) -> Receiver
    where
        F: Fn(Bytes) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = (u16, String)> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let accepting = AcceptLoop::spawn(listener, move |stream, stopping| {
            let respond = respond.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let respond = respond.clone();
                async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    let (status, body) = respond(body).await;
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = StatusCode::from_u16(status).unwrap();
                    Ok::<_, hyper::Error>(response)
                }
            });
            serve_http(stream, service, stopping, Timeouts::default())
        })
        .unwrap();
        Receiver { accepting }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.accepting.address())
    }
}

/// A receiver that parses every delivery as a Docker Hub payload and answers `500` when
/// `breaks` says so, `400` when the body is not a payload, `200` otherwise.
async fn fragile(breaks: fn(&Payload) -> bool) -> Receiver {
    Receiver::start(move |body| async move {
        match serde_json::from_slice::<Payload>(&body) {
            Ok(payload) if breaks(&payload) => (500, "{\"error\": \"boom\"}".to_owned()),
            Ok(_) => (200, "{}".to_owned()),
            Err(err) => (400, json!({"error": err.to_string()}).to_string()),
        }
    })
    .await
}

/// A receiver that answers `200` to every payload and first calls back to its `callback_url`
/// with `callback(payload)` as the body.
async fn calling_back(callback: fn(&Payload) -> serde_json::Value) -> Receiver {
    let http = Http::new("http://127.0.0.1");
    Receiver::start(move |body| {
        let http = http.clone();
        async move {
            let Ok(payload) = serde_json::from_slice::<Payload>(&body) else {
                return (400, "{}".to_owned());
            };
            // Calls back before answering, as schickling/docker-hook does (SPEC R4).
            let body = callback(&payload);
            tokio::spawn(async move { http.post(&payload.callback_url, body).await });
            (200, "{}".to_owned())
        }
    })
    .await
}

fn options(receiver: &Receiver, cases: u32, seed: u64) -> FuzzOptions {
    FuzzOptions {
        cases,
        seed: Some(seed),
        timeout: Duration::from_secs(5),
        ..FuzzOptions::new(receiver.url())
    }
}

async fn fuzz(options: FuzzOptions) -> FuzzReport {
    fuzz_receiver(options)
        .await
        .unwrap_or_else(|err| panic!("fuzzing could not run: {err}"))
}

#[tokio::test]
async fn a_receiver_failing_on_a_non_ascii_tag_is_found_and_the_tag_shrinks_to_one_character() {
    let receiver = fragile(|p| p.push_data.tag.as_deref().is_some_and(|t| !t.is_ascii())).await;
    let report = fuzz(options(&receiver, 64, 1)).await;
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{report}"));
    let tag = failure.payload.push_data.tag.as_deref().unwrap();
    assert_eq!(
        tag.chars().count(),
        1,
        "tag {tag:?} is not minimal:\n{report}"
    );
    assert!(!tag.is_ascii(), "{report}");
    assert!(failure.reason.starts_with("answered 500"), "{report}");
    // Everything unrelated shrank too: short texts, no images, no nulls turned into text.
    let repository = &failure.payload.repository;
    assert!(
        repository.description.as_deref().unwrap_or("").len() <= 12,
        "{report}"
    );
    assert!(
        failure
            .payload
            .push_data
            .images
            .as_list()
            .is_none_or(<[String]>::is_empty),
        "{report}"
    );
}

#[tokio::test]
async fn a_receiver_failing_on_long_descriptions_is_found_at_the_boundary() {
    let receiver = fragile(|p| {
        p.repository
            .description
            .as_deref()
            .is_some_and(|d| d.chars().count() > 100)
    })
    .await;
    let report = fuzz(options(&receiver, 128, 2)).await;
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{report}"));
    let description = failure.payload.repository.description.as_deref().unwrap();
    assert_eq!(description.chars().count(), 101, "{report}");
    assert!(report.to_string().contains("seed: 2"), "{report}");
    assert!(
        report.command_line().contains("--seed 2"),
        "{}",
        report.command_line()
    );
}

#[tokio::test]
async fn a_robust_receiver_passes_every_case_in_every_format() {
    let receiver = fragile(|_| false).await;
    for format in [None].into_iter().chain(PayloadFormat::ALL.map(Some)) {
        let report = fuzz(FuzzOptions {
            format,
            ..options(&receiver, 48, 3)
        })
        .await;
        assert!(report.passed(), "{format:?}: {report}");
        assert_eq!(report.to_string(), "48 cases passed (seed 3)");
    }
}

#[tokio::test]
async fn with_expect_callback_a_receiver_that_calls_back_validly_passes() {
    let receiver = calling_back(|_| json!({"state": "success", "context": "fuzz"})).await;
    let report = fuzz(FuzzOptions {
        expect_callback: true,
        ..options(&receiver, 48, 4)
    })
    .await;
    assert!(report.passed(), "{report}");
}

#[tokio::test]
async fn with_expect_callback_an_invalid_callback_body_is_found_and_shrunk() {
    // Echoes the repository's description into the callback, which allows only 255 characters.
    let receiver = calling_back(|p| {
        json!({"state": "success", "description": p.repository.description.clone().unwrap_or_default()})
    })
    .await;
    let report = fuzz(FuzzOptions {
        expect_callback: true,
        ..options(&receiver, 256, 5)
    })
    .await;
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{report}"));
    let description = failure.payload.repository.description.as_deref().unwrap();
    assert_eq!(description.chars().count(), 256, "{report}");
    assert!(
        failure
            .reason
            .contains("Ensure this field has no more than 255 characters."),
        "{report}"
    );
}

#[tokio::test]
async fn with_expect_callback_a_receiver_that_never_calls_back_fails() {
    let receiver = fragile(|_| false).await;
    let report = fuzz(FuzzOptions {
        expect_callback: true,
        timeout: Duration::from_millis(100),
        max_shrink_time: Duration::from_millis(300),
        ..options(&receiver, 8, 6)
    })
    .await;
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{report}"));
    assert!(failure.reason.contains("did not call back"), "{report}");
    assert_eq!(failure.passed, 0, "{report}");
}

#[tokio::test]
async fn the_same_seed_finds_the_same_minimal_payload() {
    let receiver = fragile(|p| {
        p.repository.star_count > 5 || p.push_data.tag.as_deref().is_some_and(|t| t.contains('"'))
    })
    .await;
    let first = fuzz(options(&receiver, 64, 7)).await;
    let second = fuzz(options(&receiver, 64, 7)).await;
    assert!(!first.passed(), "{first}");
    // Only the port of the fuzzer's callback server differs between the runs.
    assert_eq!(without_ports(&first), without_ports(&second));
}

/// The report's text with every `127.0.0.1:PORT` made the same.
fn without_ports(report: &FuzzReport) -> String {
    let text = report.to_string();
    let mut parts = text.split("127.0.0.1:");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        out.push_str("127.0.0.1:PORT");
        out.push_str(part.trim_start_matches(|c: char| c.is_ascii_digit()));
    }
    out
}

#[tokio::test]
async fn a_receiver_nobody_listens_for_is_an_error_not_a_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = fuzz_receiver(FuzzOptions::new(format!("http://127.0.0.1:{port}/hook")))
        .await
        .unwrap_err();
    assert!(matches!(err, FuzzError::Unreachable { .. }), "{err}");
    let err = fuzz_receiver(FuzzOptions::new("ftp://example.com/"))
        .await
        .unwrap_err();
    assert!(matches!(err, FuzzError::InvalidUrl(_)), "{err}");
}

/// Runs the binary off the runtime, so the receivers on it keep answering.
async fn hubmock(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hubmock"))
            .args(&args)
            .output()
            .expect("run hubmock")
    })
    .await
    .unwrap()
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn the_command_prints_the_minimal_payload_and_the_seed_and_exits_1_or_0() {
    let started = Instant::now();
    let receiver = fragile(|p| p.push_data.tag.as_deref().is_some_and(|t| !t.is_ascii())).await;
    let args = |cases: &str, format: &str| {
        [
            "fuzz-receiver",
            &receiver.url(),
            "--cases",
            cases,
            "--seed",
            "11",
        ]
        .into_iter()
        .chain(["--format", format, "--timeout", "5s"])
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let output = hubmock(args("64", "observed")).await;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert!(text.contains("seed: 11"), "{}", show(&output));
    let reproduce = format!(
        "reproduce: hubmock fuzz-receiver {} --cases 64 --seed 11 --format observed --timeout 5s",
        receiver.url()
    );
    assert!(text.contains(&reproduce), "{}", show(&output));
    let json = text
        .split_once("):\n")
        .and_then(|(_, rest)| rest.split_once("\nseed: "))
        .map(|(json, _)| json)
        .unwrap_or_else(|| panic!("no payload in {}", show(&output)));
    let payload: Payload = serde_json::from_str(json).expect("the printed payload parses");
    assert_eq!(payload.push_data.tag.unwrap().chars().count(), 1);
    assert!(
        payload.repository.dockerfile.is_none(),
        "an observed payload has no dockerfile: {json}"
    );

    let robust = fragile(|_| false).await;
    let output = hubmock(vec![
        "fuzz-receiver".into(),
        robust.url(),
        "--cases".into(),
        "16".into(),
        "--seed".into(),
        "12".into(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "16 cases passed (seed 12)"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn the_command_exits_2_when_nothing_listens_at_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = hubmock(vec![
        "fuzz-receiver".into(),
        format!("http://127.0.0.1:{port}/hook"),
    ])
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the receiver"),
        "{}",
        show(&output)
    );
    let output = hubmock(vec!["fuzz-receiver".into(), "not a url".into()]).await;
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
}
