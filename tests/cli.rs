//! The `hubmock` binary: the first line, flags, signals and exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::Http;

/// A running `hubmock serve`, killed when dropped.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hubmock"))
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hubmock");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim_end()
            .to_owned();
        Serve { child, url }
    }

    /// Sends a signal and answers the exit code.
    fn stop_with(mut self, signal: &str) -> Option<i32> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_prints_the_listening_url_first_and_exits_0_on_sigterm() {
    let serve = Serve::start(&[]);
    assert!(serve.url.starts_with("http://127.0.0.1:"), "{}", serve.url);
    let health = Http::new(&serve.url).get("/_hubmock/health").await.expect(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(serve.stop_with("TERM"), Some(0));
}

#[tokio::test]
async fn serve_exits_0_on_sigint() {
    let serve = Serve::start(&["--no-auth"]);
    Http::new(&serve.url).get("/_hubmock/health").await.expect(200);
    assert_eq!(serve.stop_with("INT"), Some(0));
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
        .post("/v2/users/login/", serde_json::json!({"username": "acme", "password": "secret"}))
        .await
        .expect(200);
    // The default user does not exist once users are given.
    http.post("/v2/users/login/", serde_json::json!({"username": "hubmock", "password": "hubmock"}))
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
        .post("/_hubmock/repositories/acme/app/push", serde_json::json!({}))
        .await
        .expect(202);
    let run = &runs["runs"][0];
    assert_eq!(run["payload_format"], "observed");
    let url = run["steps"][0]["callback_url"].as_str().unwrap();
    assert!(url.starts_with("https://hub.example.test/u/acme/app/hook/"), "{url}");
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
