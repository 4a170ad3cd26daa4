//! `hubmock push --wait` and `hubmock push-image --wait` through the real binary, against a
//! real `hubmock serve`: what a shell, Python or Node test sees (stdout, exit code).

use std::process::{Command, Output};

use serde_json::{json, Value};
use wiremock::MockServer;

use crate::serve::Serve;
use crate::util::{answering, Http};

/// Runs `hubmock ARGS` off the test's runtime (its receivers keep answering meanwhile).
async fn hubmock(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hubmock"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A hubmock with auth off and `acme/app` holding pipeline `name` of one webhook to
/// `receiver`.
async fn serve_with(pipelines: &[(&str, &MockServer, bool)]) -> (Serve, Http) {
    let serve = Serve::start(&["--no-auth"]);
    let http = Http::new(&serve.url);
    http.post(
        "/_hubmock/repositories",
        json!({"namespace": "acme", "name": "app"}),
    )
    .await
    .expect(201);
    for (name, receiver, expect_final_callback) in pipelines {
        http.post(
            "/v2/repositories/acme/app/webhook_pipeline/",
            json!({"name": name, "expect_final_callback": expect_final_callback,
                   "webhooks": [{"name": name, "hook_url": format!("{}/{name}", receiver.uri())}]}),
        )
        .await
        .expect(201);
    }
    (serve, http)
}

#[tokio::test]
async fn push_wait_exits_0_when_every_run_ends_as_expected_and_prints_its_steps() {
    let receiver = answering(200).await;
    let (serve, _) =
        serve_with(&[("deploy", &receiver, false), ("notify", &receiver, false)]).await;
    let output = hubmock(&[
        "push",
        "acme/app:v1",
        "--hub",
        &serve.url,
        "--expect",
        "success",
        "--expect",
        "deploy=success",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let text = stdout(&output);
    assert!(text.contains("pipeline deploy, tag v1): success"), "{text}");
    assert!(text.contains("pipeline notify, tag v1): success"), "{text}");
    assert!(text.contains("delivery: answered 200 in"), "{text}");
    assert!(!text.contains("--- expected"), "{text}");
    // The receiver got both deliveries before the command returned.
    assert_eq!(receiver.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn push_wait_with_an_unmet_expect_exits_1_with_a_diff() {
    let (ok, failing) = (answering(200).await, answering(500).await);
    let (serve, _) = serve_with(&[("deploy", &failing, false), ("notify", &ok, false)]).await;
    let output = hubmock(&[
        "push",
        "acme/app:v2",
        "--hub",
        &serve.url,
        "--expect",
        "success",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let text = stdout(&output);
    // The diff: expected success, actual error, and why.
    let diff = &text[text.find("--- expected\n+++ actual\n").expect(&text)..];
    assert!(
        diff.contains("pipeline deploy, tag v2)\n-   success\n+   error\n"),
        "{diff}"
    );
    assert!(
        diff.contains("delivery_failed; delivery answered 500"),
        "{diff}"
    );
    // The pipeline that met it is shown as agreeing.
    assert!(
        diff.contains("pipeline notify, tag v2)\n    success\n"),
        "{diff}"
    );
    // A pipeline expectation that names no pipeline of the push is unmet too.
    let output = hubmock(&[
        "push",
        "acme/app:v3",
        "--hub",
        &serve.url,
        "--expect",
        "release=success",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert!(stdout(&output).contains("+ no run of pipeline release (the push started 2)"));
}

#[tokio::test]
async fn push_wait_exits_1_at_the_timeout_with_the_runs_still_pending() {
    // The receiver answers but never calls back: the run waits for its callback.
    let receiver = answering(200).await;
    let (serve, http) = serve_with(&[("deploy", &receiver, true)]).await;
    let output = hubmock(&[
        "push",
        "acme/app:v1",
        "--hub",
        &serve.url,
        "--wait",
        "--timeout",
        "1s",
        "--json",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(answer["finished"], false);
    assert_eq!(answer["runs"][0]["status"], "pending");
    assert_eq!(answer["runs"][0]["steps"][0]["status"], "awaiting_callback");
    assert!(
        answer["diff"].as_str().unwrap().contains("+   pending"),
        "{answer:#}"
    );
    // The run is still there to be called back.
    let runs = http.get("/_hubmock/runs").await.expect(200);
    assert_eq!(runs["runs"][0]["status"], "pending");
}

#[tokio::test]
async fn push_without_wait_answers_at_once_and_bad_input_exits_2() {
    let receiver = answering(200).await;
    let (serve, _) = serve_with(&[("deploy", &receiver, true)]).await;
    let output = hubmock(&["push", "acme/app:v1", "--hub", &serve.url]).await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert!(stdout(&output).contains("): pending"), "{}", shown(&output));
    // A tag the Hub refuses: the control API's 400, exit 2, nothing pushed.
    let output = hubmock(&["push", "acme/app:no spaces", "--hub", &serve.url, "--wait"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(shown(&output).contains("400"), "{}", shown(&output));
    // Not a repository name.
    let output = hubmock(&["push", "app", "--hub", &serve.url]).await;
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(
        shown(&output).contains("is not NAMESPACE/NAME[:TAG]"),
        "{}",
        shown(&output)
    );
    // A misspelt status.
    let output = hubmock(&["push", "acme/app", "--expect", "sucess"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(
        shown(&output).contains("not a run status"),
        "{}",
        shown(&output)
    );
    // Nothing listens.
    let output = hubmock(&["push", "acme/app", "--hub", "http://127.0.0.1:9", "--wait"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
}

#[tokio::test]
async fn push_image_wait_pushes_through_the_registry_and_waits_for_its_runs() {
    let receiver = answering(200).await;
    let (serve, _) = serve_with(&[("deploy", &receiver, false)]).await;
    let output = hubmock(&[
        "push-image",
        "acme/app:v1",
        "--hub",
        &serve.url,
        "--platform",
        "linux/amd64",
        "--platform",
        "linux/arm64",
        "--expect",
        "success",
        "--json",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let runs = answer["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{answer:#}");
    // The index's digest is the push's image, as the webhook said.
    let digest = runs[0]["push"]["images"][0].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{answer:#}");
    assert!(shown(&output).contains(&format!("pushed acme/app:v1 as {digest}")));
    let bodies = crate::util::received_json(&receiver).await;
    assert_eq!(bodies[0]["push_data"]["images"], json!([digest]));
}

#[tokio::test]
async fn push_gives_up_on_a_hub_that_never_answers_and_exits_2() {
    // Takes the connection, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            kept.push(stream);
        }
    });
    let output = hubmock(&[
        "push",
        "acme/app:v1",
        "--hub",
        &url,
        "--wait",
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(
        shown(&output).contains("did not answer within 6s"),
        "{}",
        shown(&output)
    );
    hold.abort();
}
