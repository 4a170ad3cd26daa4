//! The `hubmock` binary: the first line, flags, signals and exit codes.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::serve::Serve;
use crate::util::{Http, WAIT};

#[tokio::test]
async fn serve_prints_the_listening_url_first_and_exits_0_on_sigterm() {
    let serve = Serve::start(&[]);
    assert!(serve.url.starts_with("http://127.0.0.1:"), "{}", serve.url);
    let health = Http::new(&serve.url)
        .get("/_hubmock/health")
        .await
        .expect(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(serve.stop_with("TERM").code(), Some(0));
}

#[test]
fn sigterm_or_sigint_right_after_the_listening_line_still_exits_0() {
    // A signal sent before its handler is installed kills the process. The window is narrow,
    // so try often, four at a time: a busy machine widens it.
    std::thread::scope(|scope| {
        for signal in ["TERM", "INT", "TERM", "INT"] {
            scope.spawn(move || {
                for attempt in 1..=15 {
                    let serve = Serve::start(&[]);
                    let status = serve.stop_with(signal);
                    assert_eq!(
                        status.code(),
                        Some(0),
                        "SIG{signal}, attempt {attempt}: {status}"
                    );
                }
            });
        }
    });
}

#[tokio::test]
async fn serve_exits_0_on_sigint() {
    let serve = Serve::start(&["--no-auth"]);
    Http::new(&serve.url)
        .get("/_hubmock/health")
        .await
        .expect(200);
    assert_eq!(serve.stop_with("INT").code(), Some(0));
}

#[tokio::test]
async fn serve_logs_each_request_with_method_path_and_status_on_stderr() {
    let serve = Serve::start(&[]);
    Http::new(&serve.url)
        .get("/_hubmock/health")
        .await
        .expect(200);
    let line = serve.wait_for_line("request line", |l| l.contains("hubmock::request"));
    for field in [
        "method=GET",
        "path=/_hubmock/health",
        "status=200",
        "elapsed_ms=",
    ] {
        assert!(line.contains(field), "{field} missing from {line:?}");
    }
}

#[tokio::test]
async fn log_format_json_writes_one_object_per_line_with_the_request_fields() {
    let serve = Serve::start(&["--log-format", "json"]);
    Http::new(&serve.url)
        .get("/_hubmock/health")
        .await
        .expect(200);
    let lines = serve.stopped();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect();
    let request = events
        .iter()
        .find(|e| e["target"] == "hubmock::request")
        .unwrap_or_else(|| panic!("no request event in {lines:#?}"));
    assert_eq!(request["level"], "INFO", "{request}");
    assert_eq!(request["method"], "GET", "{request}");
    assert_eq!(request["path"], "/_hubmock/health", "{request}");
    assert_eq!(request["status"], 200, "{request}");
    assert!(request["elapsed_ms"].is_number(), "{request}");
    assert!(request["timestamp"].is_string(), "{request}");
}

#[tokio::test]
async fn quiet_logs_no_request_lines() {
    let serve = Serve::start(&["-q"]);
    Http::new(&serve.url)
        .get("/_hubmock/health")
        .await
        .expect(200);
    // The request was logged, if at all, before it was answered; the whole log is read once
    // the process has ended.
    let lines = serve.stopped();
    assert!(
        !lines.iter().any(|l| l.contains("hubmock::request")),
        "{lines:#?}"
    );
    // Nothing went wrong, so -q says nothing at all.
    assert!(lines.is_empty(), "{lines:#?}");
}

#[tokio::test]
async fn rust_log_decides_instead_of_quiet() {
    let serve = Serve::start_with(&["-q"], Some("hubmock::request=info"));
    Http::new(&serve.url)
        .get("/_hubmock/health")
        .await
        .expect(200);
    serve.wait_for_line("request line", |l| {
        l.contains("hubmock::request") && l.contains("path=/_hubmock/health")
    });
}

#[test]
fn an_invalid_rust_log_exits_2_saying_why() {
    let output = Command::new(env!("CARGO_BIN_EXE_hubmock"))
        .args(["check", "no-such-folder"])
        .env("RUST_LOG", "hubmock=loud")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("hubmock: RUST_LOG=\"hubmock=loud\" is not a log filter"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_log_shows_deliveries_and_callbacks_but_never_a_password_token_or_hook_id() {
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    let receiver = crate::util::answering(200).await;
    let password = "login-pw-7f3a";
    let serve = Serve::start(&["--user", &format!("acme:{password}")]);
    let http = Http::new(&serve.url);
    let login = http
        .post(
            "/v2/users/login/",
            json!({"username": "acme", "password": password}),
        )
        .await
        .expect(200);
    let token = login["token"].as_str().unwrap().to_owned();
    // Every request from here on carries the token in its Authorization header.
    let http = http.with_token(&token);
    http.post(
        "/_hubmock/repositories",
        json!({"namespace": "acme", "name": "app"}),
    )
    .await
    .expect(201);
    let address = receiver.address();
    let hook = format!("http://user:hook-secret-9c1e@{address}/hook");
    http.post(
        "/v2/repositories/acme/app/webhook_pipeline/",
        json!({"name": "p", "expect_final_callback": true,
               "webhooks": [{"name": "a", "hook_url": hook}]}),
    )
    .await
    .expect(201);
    let runs = http
        .post("/_hubmock/repositories/acme/app/push", json!({}))
        .await
        .expect(202);
    let run = &runs["runs"][0];
    let id = run["id"].as_u64().unwrap();
    let step = &run["steps"][0];
    let hook_id = step["hook_id"].as_str().unwrap().to_owned();
    let wait = WAIT.as_millis();
    http.get(&format!(
        "/_hubmock/runs/{id}?wait=delivered&step=0&timeout_ms={wait}"
    ))
    .await
    .expect(200);
    http.post(
        step["callback_url"].as_str().unwrap(),
        json!({"state": "success"}),
    )
    .await
    .expect(200);
    let run = http
        .get(&format!(
            "/_hubmock/runs/{id}?wait=finished&timeout_ms={wait}"
        ))
        .await
        .expect(200);
    assert_eq!(run["status"], "success", "{run:#}");
    // A query value is never logged either.
    http.get("/_hubmock/health?token=query-secret-2b4d")
        .await
        .expect(200);
    let lines = serve.stopped();
    let log = lines.join("\n");
    let delivery = lines
        .iter()
        .find(|l| l.contains("hubmock::delivery"))
        .unwrap_or_else(|| panic!("no delivery line:\n{log}"));
    for field in [
        &format!("run={id}"),
        "step=0",
        &format!("url=http://user:***@{address}/hook"),
        "status=200",
    ] {
        assert!(
            delivery.contains(field),
            "{field} missing from {delivery:?}"
        );
    }
    let callback = lines
        .iter()
        .find(|l| l.contains("hubmock::callback"))
        .unwrap_or_else(|| panic!("no callback line:\n{log}"));
    for field in [
        &format!("run={id}"),
        "step=0",
        "state=success",
        "run_status=success",
    ] {
        assert!(
            callback.contains(field),
            "{field} missing from {callback:?}"
        );
    }
    assert!(
        log.contains("path=/u/acme/app/hook/***/"),
        "the callback request is logged with its hook id hidden:\n{log}"
    );
    let basic = BASE64_STANDARD.encode("user:hook-secret-9c1e");
    for secret in [
        password,
        "hook-secret-9c1e",
        &basic,
        &token,
        &hook_id,
        "query-secret-2b4d",
    ] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
}

#[tokio::test]
async fn flags_set_users_public_url_and_payload_format() {
    let serve = Serve::start(&[
        "--user",
        "acme:secret",
        "--public-url",
        "https://hub.example.test/",
        "--payload-format",
        "observed",
    ]);
    let http = Http::new(&serve.url);
    let login = http
        .post(
            "/v2/users/login/",
            serde_json::json!({"username": "acme", "password": "secret"}),
        )
        .await
        .expect(200);
    // The default user does not exist once users are given.
    http.post(
        "/v2/users/login/",
        serde_json::json!({"username": "hubmock", "password": "hubmock"}),
    )
    .await
    .expect(401);
    let http = http.with_token(login["token"].as_str().unwrap());
    http.post(
        "/_hubmock/repositories",
        serde_json::json!({"namespace": "acme", "name": "app"}),
    )
    .await
    .expect(201);
    http.post(
        "/v2/repositories/acme/app/webhook_pipeline/",
        serde_json::json!({"name": "p", "webhooks": [{"name": "a", "hook_url": "http://127.0.0.1:9/"}]}),
    )
    .await
    .expect(201);
    let runs = http
        .post(
            "/_hubmock/repositories/acme/app/push",
            serde_json::json!({}),
        )
        .await
        .expect(202);
    let run = &runs["runs"][0];
    assert_eq!(run["payload_format"], "observed");
    let url = run["steps"][0]["callback_url"].as_str().unwrap();
    assert!(
        url.starts_with("https://hub.example.test/u/acme/app/hook/"),
        "{url}"
    );
}

#[tokio::test]
async fn history_and_delivery_log_limits_come_from_their_flags() {
    let serve = Serve::start(&[
        "--no-auth",
        "--history-limit",
        "2",
        "--delivery-log-limit",
        "2",
    ]);
    let receiver = crate::util::answering(200).await;
    let http = Http::new(&serve.url);
    http.post(
        "/_hubmock/repositories",
        json!({"namespace": "acme", "name": "app"}),
    )
    .await
    .expect(201);
    http.post(
        "/v2/repositories/acme/app/webhook_pipeline/",
        json!({
            "name": "p",
            "expect_final_callback": false,
            "webhooks": [{"name": "a", "hook_url": receiver.uri()}],
        }),
    )
    .await
    .expect(201);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let pushed = http
            .post("/_hubmock/repositories/acme/app/push", json!({}))
            .await
            .expect(202);
        let id = pushed["runs"][0]["id"].as_u64().unwrap();
        let run = http
            .get(&format!(
                "/_hubmock/runs/{id}?wait=finished&timeout_ms=20000"
            ))
            .await
            .expect(200);
        assert_eq!(run["status"], "success", "{run:#}");
        ids.push(id);
    }
    let of = |body: &serde_json::Value, key: &str, field: &str| -> Vec<u64> {
        let list = body[key].as_array().unwrap_or_else(|| panic!("{body:#}"));
        list.iter().map(|x| x[field].as_u64().unwrap()).collect()
    };
    // The first run was dropped when the third took the pipeline past 2.
    let runs = http.get("/_hubmock/runs").await.expect(200);
    assert_eq!(of(&runs, "runs", "id"), [ids[2], ids[1]]);
    // The log kept the last two deliveries.
    let log = http.get("/_hubmock/deliveries").await.expect(200);
    assert_eq!(of(&log, "deliveries", "run_id"), [ids[1], ids[2]]);
}

#[test]
fn a_bad_flag_value_exits_2_with_a_message() {
    for args in [
        &["serve", "--payload-format", "newest"][..],
        &["serve", "--user", "nocolon"],
        &["serve", "--delivery-timeout", "soon"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_hubmock"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_port_in_use_exits_2_saying_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_hubmock"))
        .args(["serve", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("could not listen"), "{stderr}");
}

#[tokio::test]
async fn a_control_token_guards_the_control_api_but_not_health_or_the_hub_api() {
    let serve = Serve::start(&["--control-token", "s3cret"]);
    let http = Http::new(&serve.url);
    let missing = http.get("/_hubmock/runs").await;
    let detail = missing.expect(401)["detail"].to_string();
    assert!(detail.contains("not provided"), "{missing:?}");
    assert_eq!(
        missing.headers["www-authenticate"], "Bearer realm=\"hubmock\"",
        "{missing:?}"
    );
    let wrong = http
        .send(
            http::Method::POST,
            "/_hubmock/reset",
            &[("authorization", "Bearer s3cre7")],
            "",
        )
        .await;
    let detail = wrong.expect(401)["detail"].to_string();
    assert!(detail.contains("Invalid control token"), "{wrong:?}");
    assert!(
        !detail.contains("s3cre7"),
        "the token sent is echoed: {wrong:?}"
    );
    let right = http
        .send(
            http::Method::GET,
            "/_hubmock/runs",
            &[("authorization", "Bearer s3cret")],
            "",
        )
        .await;
    assert_eq!(right.expect(200), serde_json::json!({"runs": []}));
    http.get("/_hubmock/health").await.expect(200);
    // The Hub API keeps its own auth: a login needs no control token, nor does its use.
    let api = hubmock::ApiClient::new(&serve.url);
    let login = api.login("hubmock", "hubmock").await.unwrap();
    let api = api.with_token(&login).with_control_token("s3cret");
    api.create_repository("hubmock", "app").await.unwrap();
    let repo = hubmock::RepoName::new("hubmock", "app").unwrap();
    let spec = hubmock::PipelineSpec::new("p", &["http://127.0.0.1:9/hook"]);
    api.create_pipeline(&repo, spec).await.unwrap();
    http.with_token(&login)
        .get("/v2/repositories/hubmock/app/webhook_pipeline/p/")
        .await
        .expect(200);
}

#[tokio::test]
async fn the_control_token_can_come_from_the_environment() {
    let serve = Serve::start_with_env(&[], &[("HUBMOCK_CONTROL_TOKEN", "from-env")]);
    let http = Http::new(&serve.url);
    http.get("/_hubmock/runs").await.expect(401);
    http.send(
        http::Method::GET,
        "/_hubmock/runs",
        &[("authorization", "Bearer from-env")],
        "",
    )
    .await
    .expect(200);
}

#[test]
fn serve_refuses_an_empty_control_token() {
    assert_refused(
        &["serve", "--port", "0", "--control-token", ""],
        "invalid value '' for '--control-token <TOKEN>': must not be empty; leave the flag out \
         to run without a control token",
    );
}

#[test]
fn binding_a_non_loopback_address_without_a_token_warns_on_stderr() {
    let serve = Serve::start(&["--bind", "0.0.0.0"]);
    assert!(serve.url.starts_with("http://0.0.0.0:"), "{}", serve.url);
    let stderr = serve.stop_and_read_stderr();
    assert!(
        stderr.contains("warning")
            && stderr.contains("anyone who can reach this port can drive the emulator")
            && stderr.contains("--control-token"),
        "{stderr}"
    );
}

#[test]
fn binding_a_non_loopback_address_with_a_token_or_loopback_without_warns_nothing() {
    for args in [&["--bind", "0.0.0.0", "--control-token", "s3cret"][..], &[]] {
        let stderr = Serve::start(args).stop_and_read_stderr();
        // Only the warning is looked for: other lines (logs) may come and go.
        assert!(
            !stderr.contains("anyone who can reach"),
            "{args:?}: {stderr}"
        );
    }
}

/// Writes scenario files into a fresh folder.
fn scenario_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const PASSING: &str = "\
name: a success callback finishes the run
repository: acme/app
pipelines:
  - { name: p, webhooks: [a] }
receivers:
  a: { callback: { state: success } }
steps:
  - push: { tag: v1 }
  - expect_run: { pipeline: p, status: success, steps: [success] }
";

const FAILING: &str = "\
name: expects the wrong status
repository: acme/app
pipelines:
  - { name: p, webhooks: [a] }
receivers:
  a: { callback: { state: error } }
steps:
  - push: { tag: v1 }
  - expect_run: { pipeline: p, status: success }
";

pub(crate) fn hubmock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hubmock"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn run_exits_0_when_every_scenario_passes_and_writes_junit() {
    let dir = scenario_dir(&[("ok.yaml", PASSING)]);
    let junit = dir.path().join("report.xml");
    let output = hubmock(&[
        "run",
        dir.path().to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASS"), "{stdout}");
    assert!(
        stdout.contains("a success callback finishes the run"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains("<testcase name=\"a success callback finishes the run\""),
        "{xml}"
    );
    assert!(
        xml.contains("tests=\"1\"") && xml.contains("failures=\"0\""),
        "{xml}"
    );
}

#[test]
fn run_exits_1_when_a_scenario_fails_and_says_where() {
    let dir = scenario_dir(&[("ok.yaml", PASSING), ("bad.yaml", FAILING)]);
    let junit = dir.path().join("report.xml");
    let output = hubmock(&[
        "run",
        dir.path().to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains("bad.yaml:9: step 2 (expect_run)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("failures=\"1\""), "{xml}");
}

#[test]
fn run_with_a_filter_runs_only_matching_scenarios() {
    let dir = scenario_dir(&[("ok.yaml", PASSING), ("bad.yaml", FAILING)]);
    let output = hubmock(&[
        "run",
        dir.path().to_str().unwrap(),
        "--filter",
        "success callback",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}

#[test]
fn run_and_check_exit_2_for_an_invalid_file_naming_line_and_column() {
    let broken = "name: broken\nrepository: acme/app\nsteps:\n  - expect_runn: {}\n";
    let dir = scenario_dir(&[("ok.yaml", PASSING), ("broken.yaml", broken)]);
    for command in ["run", "check"] {
        let output = hubmock(&[command, dir.path().to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("broken.yaml:4:5: "), "{command}: {stderr}");
        assert!(
            stderr.contains("did you mean `expect_run`?"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn check_exits_0_for_valid_files() {
    let dir = scenario_dir(&[("ok.yaml", PASSING), ("bad.yaml", FAILING)]);
    let output = hubmock(&["check", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("2 scenario file(s) valid"), "{stdout}");
}

#[test]
fn run_and_check_exit_2_for_a_folder_without_scenario_files() {
    let dir = scenario_dir(&[("notes.txt", PASSING)]);
    let path = dir.path().to_str().unwrap();
    for command in ["run", "check"] {
        let output = hubmock(&[command, path]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("no scenario files (*.yaml, *.yml) in '{path}'")),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn run_exits_2_when_the_filter_matches_no_scenario() {
    let dir = scenario_dir(&[("ok.yaml", PASSING), ("bad.yaml", FAILING)]);
    let path = dir.path().to_str().unwrap();
    let output = hubmock(&["run", path, "--filter", "sucess"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "--filter 'sucess' matches none of the 2 scenario(s) in '{path}'"
        )),
        "{stderr}"
    );
    assert!(!stdout.contains("passed"), "{stdout}");
}

/// Runs `hubmock args`, which must refuse them: exit 2 with `message` on stderr. Killed after
/// 10 s, since a command that accepted its flags may serve or run forever.
fn assert_refused(args: &[&str], message: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubmock"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!(
        "hubmock {args:?} ({})\nstdout: {}\nstderr: {stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(stderr.contains(message), "expected {message:?}\n{shown}");
}

/// A port that accepts connections (the kernel completes them; nobody answers), so that
/// `fuzz-receiver` with flags it accepts would get past its reachability check.
fn listening_port() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    (listener, url)
}

#[test]
fn run_refuses_jobs_0() {
    let dir = scenario_dir(&[("ok.yaml", PASSING)]);
    assert_refused(
        &["run", dir.path().to_str().unwrap(), "--jobs", "0"],
        "invalid value '0' for '--jobs <N>': must be at least 1",
    );
}

#[test]
fn serve_refuses_a_pending_run_limit_of_0() {
    assert_refused(
        &["serve", "--port", "0", "--max-pending-runs", "0"],
        "invalid value '0' for '--max-pending-runs <N>': must be at least 1",
    );
}

#[test]
fn serve_refuses_a_history_or_delivery_log_limit_of_0() {
    for flag in ["--history-limit", "--delivery-log-limit"] {
        assert_refused(
            &["serve", "--port", "0", flag, "0"],
            &format!("invalid value '0' for '{flag} <N>': must be at least 1"),
        );
    }
}

#[test]
fn serve_refuses_a_delivery_timeout_of_0s() {
    assert_refused(
        &["serve", "--port", "0", "--delivery-timeout", "0s"],
        "invalid value '0s' for '--delivery-timeout <DELIVERY_TIMEOUT>': must be longer than zero",
    );
}

#[test]
fn serve_refuses_a_callback_timeout_of_0s_and_says_how_to_wait_forever() {
    assert_refused(
        &["serve", "--port", "0", "--callback-timeout", "0ms"],
        "invalid value '0ms' for '--callback-timeout <CALLBACK_TIMEOUT>': must be longer than \
         zero, e.g. 10s or 500ms; leave the flag out to wait forever",
    );
}

#[test]
fn serve_refuses_a_public_url_that_is_not_an_absolute_http_url() {
    for url in ["notaurl", "ftp://hub.example.test/", "/relative"] {
        assert_refused(
            &["serve", "--port", "0", "--public-url", url],
            &format!(
                "invalid value '{url}' for '--public-url <URL>': must be an absolute http:// or \
                 https:// URL"
            ),
        );
    }
}

#[test]
fn fuzz_receiver_refuses_0_cases() {
    let (_receiver, url) = listening_port();
    assert_refused(
        &["fuzz-receiver", &url, "--cases", "0"],
        "invalid value '0' for '--cases <N>': must be at least 1",
    );
}

#[test]
fn fuzz_receiver_refuses_a_timeout_of_0s() {
    let (_receiver, url) = listening_port();
    assert_refused(
        &["fuzz-receiver", &url, "--timeout", "0s"],
        "invalid value '0s' for '--timeout <TIMEOUT>': must be longer than zero",
    );
}

#[test]
fn serve_refuses_a_bad_fault_plan_or_quirk_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "seed: 1\nfaults:\n  - {kind: duplicate, probabilty: 0.5}\n",
    )
    .unwrap();
    let plan = plan.to_str().unwrap();
    assert_refused(
        &["serve", "--port", "0", "--fault-plan", plan],
        "probabilty",
    );
    assert_refused(
        &["serve", "--port", "0", "--quirks", "hub-2020,hub-2026"],
        "names two profiles",
    );
}

#[tokio::test]
async fn serve_with_a_fault_plan_duplicates_as_the_plan_says() {
    let receiver = crate::util::answering(200).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, "seed: 7\nfaults: [{kind: duplicate}]\n").unwrap();
    let serve = Serve::start(&["--no-auth", "--fault-plan", plan.to_str().unwrap()]);
    let http = Http::new(&serve.url);
    http.post(
        "/_hubmock/repositories",
        serde_json::json!({"namespace": "acme", "name": "app"}),
    )
    .await
    .expect(201);
    http.post(
        "/v2/repositories/acme/app/webhook_pipeline/",
        serde_json::json!({"name": "p", "expect_final_callback": false,
                           "webhooks": [{"name": "a", "hook_url": receiver.uri()}]}),
    )
    .await
    .expect(201);
    http.post(
        "/_hubmock/repositories/acme/app/push",
        serde_json::json!({}),
    )
    .await
    .expect(202);
    let log = http
        .get("/_hubmock/deliveries?min=2&timeout_ms=10000")
        .await
        .expect(200);
    assert_eq!(
        log["deliveries"][1]["fault"]["kind"], "duplicate",
        "{log:#}"
    );
    assert_eq!(
        log["deliveries"][1]["fault"]["of"],
        log["deliveries"][0]["id"]
    );
}
