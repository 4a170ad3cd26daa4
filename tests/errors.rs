//! SPEC section 7: bad input gets a clear error and loses nothing. Every bad request answers a
//! 4xx with a JSON body that says what is wrong, never a 5xx, and leaves the state as it was;
//! a misbehaving receiver fails only its own step.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{http_response, receiver, step_statuses, RawReceiver, Resp, TestHub, WAIT};

/// The body limit of SPEC section 7.
const MIB: usize = 1024 * 1024;

/// Sends a bad request and asserts that it answered `status` with a JSON body and that the
/// whole state is the same afterwards. Answers the JSON body.
async fn refused(hub: &TestHub, status: u16, request: impl Future<Output = Resp>) -> Value {
    let before = hub.state().await;
    let resp = request.await;
    assert!(
        (400..500).contains(&status),
        "a bad request must answer a 4xx"
    );
    let body = resp.expect(status);
    assert!(
        body.is_object() || body.is_string(),
        "the error body says what is wrong: {resp:?}"
    );
    let content_type = resp
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap());
    assert_eq!(content_type, Some("application/json"), "{resp:?}");
    assert_eq!(
        hub.state().await,
        before,
        "a refused request changed the state"
    );
    body
}

/// The `detail` of a Django REST framework error, asserted to be a string.
#[track_caller]
fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"detail\" string in {body:#}"))
}

/// The messages of one field in a Django REST framework field-error body.
#[track_caller]
fn messages(body: &Value, field: &str) -> Vec<String> {
    body[field]
        .as_array()
        .unwrap_or_else(|| panic!("field {field:?} not named in {body:#}"))
        .iter()
        .map(|m| m.as_str().expect("a message is a string").to_owned())
        .collect()
}

/// A receiver that answers every delivery `200`.
async fn ok_receiver() -> MockServer {
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&r)
        .await;
    r
}

/// A hub with `acme/app`, one pipeline expecting a callback, and a run whose step 0 was
/// delivered and now awaits its callback.
async fn awaiting_callback() -> (TestHub, MockServer, Value) {
    let hub = TestHub::start().await;
    let r = ok_receiver().await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    let run = hub.delivered(&run, 0).await;
    assert_eq!(step_statuses(&run), ["awaiting_callback"], "{run:#}");
    (hub, r, run)
}

/// Sends `body` as a callback for a step that awaits one; asserts it is refused with `400`,
/// that nothing changed, and that a corrected callback is then accepted. Answers the error body.
async fn refused_callback(body: Value) -> Value {
    let (hub, _r, run) = awaiting_callback().await;
    let errors = refused(&hub, 400, hub.callback(&run, 0, body)).await;
    let id = &run["id"];
    let now = hub
        .http
        .get(&format!("/_hubmock/runs/{id}"))
        .await
        .expect(200);
    assert_eq!(step_statuses(&now), ["awaiting_callback"], "{now:#}");
    assert!(now["steps"][0]["callback"].is_null(), "{now:#}");
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    assert_eq!(hub.finished(&run).await["status"], "success");
    errors
}

/// A status line, headers and body read from a raw connection.
struct RawAnswer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Writes `head` and then `body` (in a task of its own, so the answer is read while the body
/// is still going out; write errors after the server has answered are expected) and reads the
/// answer.
async fn raw_exchange(address: SocketAddr, head: String, body: Vec<Vec<u8>>) -> RawAnswer {
    let stream = TcpStream::connect(address)
        .await
        .expect("connect to hubmock");
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        for chunk in body {
            write.write_all(&chunk).await?;
        }
        write.flush().await?;
        // Keep the write half open (dropping it would half-close) until the answer is read.
        std::future::pending::<()>().await;
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let Ok(read) = tokio::time::timeout(WAIT, read.read(&mut buf)).await else {
            let text = String::from_utf8_lossy(&answer);
            panic!("no complete answer from hubmock after {WAIT:?}: {text:?}");
        };
        match read {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived is the server refusing the rest of the body.
            Err(err) if !answer.is_empty() => {
                eprintln!("read ended with {err} after {} bytes", answer.len());
                break;
            }
            Err(err) => panic!("no answer from hubmock: {err}"),
        }
        if complete(&answer) {
            break;
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
    let head = text[..end].to_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    RawAnswer {
        status,
        head,
        body: answer[end + 4..].to_vec(),
    }
}

/// Whether `answer` holds a whole response with a `content-length` body.
fn complete(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|length| answer.len() >= end + 4 + length)
}

// ---- malformed JSON ---------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_on_repository_create_is_a_400_parse_error() {
    let hub = TestHub::start().await;
    let body = refused(
        &hub,
        400,
        hub.http.post_raw(
            "/_hubmock/repositories",
            r#"{"namespace": "acme", "name": "#,
        ),
    )
    .await;
    assert!(detail(&body).starts_with("JSON parse error - "), "{body:#}");
}

#[tokio::test]
async fn malformed_json_on_pipeline_create_is_a_400_parse_error() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let body = refused(
        &hub,
        400,
        hub.http.post_raw(
            "/v2/repositories/acme/app/webhook_pipeline/",
            r#"{"name": "ci", "webhooks": [{"name": "a", "hook_url": "http://x/"}"#,
        ),
    )
    .await;
    assert!(detail(&body).starts_with("JSON parse error - "), "{body:#}");
}

#[tokio::test]
async fn malformed_json_on_push_is_a_400_and_creates_no_repository() {
    // Pushing to an unknown repository creates it; a refused push must not.
    let hub = TestHub::start().await;
    let body = refused(
        &hub,
        400,
        hub.http
            .post_raw("/_hubmock/repositories/acme/app/push", "{'tag': 'v1'}"),
    )
    .await;
    assert!(detail(&body).starts_with("JSON parse error - "), "{body:#}");
    hub.http.get("/v2/repositories/acme/app/").await.expect(404);
}

#[tokio::test]
async fn malformed_json_on_state_put_is_a_400_and_keeps_the_state() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let body = refused(
        &hub,
        400,
        hub.http.send(
            Method::PUT,
            "/_hubmock/state",
            &[("content-type", "application/json")],
            r#"{"version": 1, "repositories": [}"#,
        ),
    )
    .await;
    assert!(detail(&body).starts_with("JSON parse error - "), "{body:#}");
    hub.http.get("/v2/repositories/acme/app/").await.expect(200);
}

#[tokio::test]
async fn a_state_put_that_is_not_a_state_document_is_a_400_and_keeps_the_state() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let body = refused(
        &hub,
        400,
        hub.http
            .put("/_hubmock/state", json!({"repositories": "none"})),
    )
    .await;
    assert!(!detail(&body).is_empty(), "{body:#}");
    hub.http.get("/v2/repositories/acme/app/").await.expect(200);
}

#[tokio::test]
async fn malformed_json_on_a_callback_is_a_400_detail_and_the_step_still_awaits_it() {
    let (hub, _r, run) = awaiting_callback().await;
    let url = run["steps"][0]["callback_url"].as_str().unwrap();
    // As every malformed body on every surface: Django REST framework's parse error, in
    // `detail` (field lists are for JSON with wrong fields).
    let body = refused(&hub, 400, hub.http.post_raw(url, r#"{"state": "success""#)).await;
    assert!(detail(&body).starts_with("JSON parse error - "), "{body:#}");
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    assert_eq!(hub.finished(&run).await["status"], "success");
}

// ---- wrong JSON types -------------------------------------------------------------------

#[tokio::test]
async fn a_repository_with_is_private_yes_is_a_400_naming_is_private() {
    let hub = TestHub::start().await;
    let body = refused(
        &hub,
        400,
        hub.http.post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "is_private": "yes"}),
        ),
    )
    .await;
    assert_eq!(body, json!({"is_private": ["Must be a valid boolean."]}));
}

#[tokio::test]
async fn a_pipeline_with_expect_final_callback_no_is_a_400_naming_the_field() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let body = refused(
        &hub,
        400,
        hub.http.post(
            "/v2/repositories/acme/app/webhook_pipeline/",
            json!({"name": "ci", "expect_final_callback": "no",
                   "webhooks": [{"name": "a", "hook_url": "http://127.0.0.1:9/"}]}),
        ),
    )
    .await;
    assert_eq!(
        body,
        json!({"expect_final_callback": ["Must be a valid boolean."]})
    );
}

#[tokio::test]
async fn a_pipeline_with_webhooks_as_a_string_is_a_400_naming_webhooks() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let body = refused(
        &hub,
        400,
        hub.http.post(
            "/v2/repositories/acme/app/webhook_pipeline/",
            json!({"name": "ci", "webhooks": "x"}),
        ),
    )
    .await;
    assert_eq!(messages(&body, "webhooks").len(), 1, "{body:#}");
    assert!(
        messages(&body, "webhooks")[0].contains("Expected a list"),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_push_with_a_numeric_tag_is_a_400_naming_tag() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let body = refused(
        &hub,
        400,
        hub.http
            .post("/_hubmock/repositories/acme/app/push", json!({"tag": 5})),
    )
    .await;
    assert_eq!(body, json!({"tag": ["Not a valid string."]}));
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_a_400_non_field_error() {
    let hub = TestHub::start().await;
    let body = refused(
        &hub,
        400,
        hub.http
            .post("/_hubmock/repositories", json!(["acme", "app"])),
    )
    .await;
    assert_eq!(
        body,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    );
}

#[tokio::test]
async fn every_wrong_field_is_named_at_once() {
    let hub = TestHub::start().await;
    let body = refused(
        &hub,
        400,
        hub.http.post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "is_private": 1,
                   "star_count": -1, "description": null}),
        ),
    )
    .await;
    for field in ["is_private", "star_count", "description"] {
        assert_eq!(messages(&body, field).len(), 1, "{field}: {body:#}");
    }
}

// ---- routes and methods -----------------------------------------------------------------

#[tokio::test]
async fn an_unknown_route_is_a_404_with_a_json_detail() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    // `/` is the home page (tests/pages/).
    for path in [
        "/nope",
        "/v2/nope/",
        "/v2/repositories/acme/app/builds/",
        "/_hubmock/nope",
        "/_hubmock/runs/1/steps",
        "/u/acme/app/",
    ] {
        let body = refused(&hub, 404, hub.http.get(path)).await;
        assert!(detail(&body).contains("No route"), "{path}: {body:#}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_with_an_allow_header() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &["http://127.0.0.1:9/".to_owned()], true)
        .await;
    for (method, path, allow) in [
        (Method::DELETE, "/_hubmock/health", "GET, HEAD"),
        (Method::GET, "/_hubmock/reset", "POST"),
        (Method::DELETE, "/_hubmock/state", "GET, HEAD, PUT"),
        (Method::PUT, "/_hubmock/repositories", "GET, HEAD, POST"),
        (Method::GET, "/_hubmock/repositories/acme/app/push", "POST"),
        (Method::DELETE, "/v2/repositories/acme/app/", "GET, HEAD"),
        (
            Method::DELETE,
            "/v2/repositories/acme/app/webhook_pipeline/",
            "GET, HEAD, POST",
        ),
        (
            Method::POST,
            "/v2/repositories/acme/app/webhook_pipeline/ci/",
            "GET, HEAD, PATCH, DELETE",
        ),
        (Method::GET, "/v2/users/login/", "POST"),
        (
            Method::GET,
            "/u/acme/app/hook/0123456789abcdefghij012345678901/",
            "POST",
        ),
    ] {
        let resp = {
            let before = hub.state().await;
            let resp = hub.http.send(method.clone(), path, &[], "").await;
            assert_eq!(
                hub.state().await,
                before,
                "{method} {path} changed the state"
            );
            resp
        };
        let body = resp.expect(405);
        assert!(detail(&body).contains(method.as_str()), "{resp:?}");
        let allowed = resp.headers.get("allow").map(|v| v.to_str().unwrap());
        assert_eq!(allowed, Some(allow), "{resp:?}");
    }
}

// ---- oversized bodies -------------------------------------------------------------------

/// A JSON repository body of exactly `len` bytes (padded in `full_description`).
fn repository_body(name: &str, len: usize) -> Vec<u8> {
    let start = format!(r#"{{"namespace": "acme", "name": "{name}", "full_description": ""#);
    let end = r#""}"#;
    let mut body = start.into_bytes();
    body.resize(len - end.len(), b'a');
    body.extend_from_slice(end.as_bytes());
    body
}

#[tokio::test]
async fn a_body_of_exactly_one_mebibyte_is_accepted() {
    let hub = TestHub::start().await;
    let created = hub
        .http
        .post_raw("/_hubmock/repositories", repository_body("big", MIB))
        .await
        .expect(201);
    assert_eq!(created["name"], "big");
}

#[tokio::test]
async fn a_body_over_one_mebibyte_with_content_length_is_a_413() {
    // An ordinary client sends the whole body before it reads the answer; it must get the
    // 413, not a broken pipe because the server closed the connection on the unread rest.
    // Whether the answer or the close wins is a race, so the test asks several times.
    let hub = TestHub::start().await;
    let sizes = [MIB + 1, 2 * MIB, 4 * MIB, 8 * MIB];
    for size in sizes.into_iter().cycle().take(3 * sizes.len()) {
        let body = refused(
            &hub,
            413,
            hub.http
                .post_raw("/_hubmock/repositories", repository_body("big", size)),
        )
        .await;
        assert!(detail(&body).contains("1048576"), "{size}: {body:#}");
    }
    hub.http.get("/_hubmock/health").await.expect(200);
}

#[tokio::test]
async fn a_wrong_route_is_refused_before_its_body_is_read() {
    // The router decides on the path and method first: a 10 MiB body that is never sent
    // does not stand between a client and its 404 or 405.
    let hub = TestHub::start().await;
    for (method, path, status) in [
        ("PUT", "/_hubmock/repositories", 405),
        ("POST", "/nowhere", 404),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            hub.hub.address(),
            10 * MIB
        );
        let answer = raw_exchange(hub.hub.address(), head, Vec::new()).await;
        assert_eq!(answer.status, status, "{}", answer.head);
    }
}

#[tokio::test]
async fn a_declared_content_length_over_one_mebibyte_is_a_413_before_the_body_is_sent() {
    let hub = TestHub::start().await;
    let before = hub.state().await;
    let head = format!(
        "POST /_hubmock/repositories HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        hub.hub.address(),
        10 * MIB
    );
    let answer = raw_exchange(hub.hub.address(), head, Vec::new()).await;
    assert_eq!(answer.status, 413, "{}", answer.head);
    let body: Value = serde_json::from_slice(&answer.body).expect("a JSON body");
    assert!(detail(&body).contains("1048576"), "{body:#}");
    assert_eq!(hub.state().await, before);
}

/// The head of a chunked `POST /_hubmock/repositories`.
fn chunked_head(hub: &TestHub) -> String {
    format!(
        "POST /_hubmock/repositories HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n",
        hub.hub.address()
    )
}

/// `body` in 64 KiB chunks (without the last, empty chunk).
fn chunks(body: &[u8]) -> Vec<Vec<u8>> {
    body.chunks(64 * 1024)
        .map(|c| {
            let mut chunk = format!("{:x}\r\n", c.len()).into_bytes();
            chunk.extend_from_slice(c);
            chunk.extend_from_slice(b"\r\n");
            chunk
        })
        .collect()
}

#[tokio::test]
async fn a_chunked_body_over_one_mebibyte_without_content_length_is_a_413() {
    let hub = TestHub::start().await;
    let before = hub.state().await;
    // 1 MiB and 64 KiB of a 2 MiB body, then the client waits for the answer.
    let body = repository_body("big", 2 * MIB);
    let sent = chunks(&body[..MIB + 64 * 1024]);
    let answer = raw_exchange(hub.hub.address(), chunked_head(&hub), sent).await;
    assert_eq!(answer.status, 413, "{}", answer.head);
    let body: Value = serde_json::from_slice(&answer.body).expect("a JSON body");
    assert!(detail(&body).contains("1048576"), "{body:#}");
    assert_eq!(hub.state().await, before);
    hub.http.get("/_hubmock/health").await.expect(200);
}

#[tokio::test]
async fn a_client_that_sends_a_whole_oversized_chunked_body_still_reads_the_413() {
    // The server must not close on the unread rest of the body before the client has read
    // the answer (RFC 9112 section 9.6): the reset can destroy the answer in the client's
    // buffers. Whether the answer or the reset wins is a race, so the test asks several times.
    let hub = TestHub::start().await;
    let before = hub.state().await;
    let mut sent = chunks(&repository_body("big", 2 * MIB));
    sent.push(b"0\r\n\r\n".to_vec());
    for _ in 0..8 {
        let answer = raw_exchange(hub.hub.address(), chunked_head(&hub), sent.clone()).await;
        assert_eq!(answer.status, 413, "{}", answer.head);
        let body: Value = serde_json::from_slice(&answer.body).expect("a JSON body");
        assert!(detail(&body).contains("1048576"), "{body:#}");
    }
    assert_eq!(hub.state().await, before);
}

// ---- invalid UTF-8 ----------------------------------------------------------------------

#[tokio::test]
async fn invalid_utf8_in_a_json_body_is_a_400() {
    let hub = TestHub::start().await;
    let mut body = br#"{"namespace": "acme", "name": "app", "description": ""#.to_vec();
    body.extend_from_slice(b"\xff\xfe\xc3(");
    body.extend_from_slice(br#""}"#);
    let errors = refused(&hub, 400, hub.http.post_raw("/_hubmock/repositories", body)).await;
    assert!(
        detail(&errors).starts_with("JSON parse error - "),
        "{errors:#}"
    );
}

#[tokio::test]
async fn invalid_utf8_in_a_callback_is_a_400_and_the_step_still_awaits_it() {
    let (hub, _r, run) = awaiting_callback().await;
    let url = run["steps"][0]["callback_url"].as_str().unwrap();
    let mut body = br#"{"state": "success", "description": ""#.to_vec();
    body.extend_from_slice(b"\xed\xa0\x80");
    body.extend_from_slice(br#""}"#);
    let errors = refused(&hub, 400, hub.http.post_raw(url, body)).await;
    // As every other malformed body: Django REST framework's `detail`.
    assert!(
        detail(&errors).starts_with("JSON parse error - "),
        "{errors:#}"
    );
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
}

// ---- repository names in paths ----------------------------------------------------------

#[tokio::test]
async fn an_upper_case_namespace_in_a_path_is_a_400_naming_the_rule() {
    let hub = TestHub::start().await;
    let body = refused(&hub, 400, hub.http.get("/v2/repositories/A/b/")).await;
    let rule = messages(&body, "namespace");
    assert!(
        rule[0].contains("2 to 30 characters of a-z, 0-9"),
        "{body:#}"
    );
    assert!(body.get("name").is_none(), "'b' is a valid name: {body:#}");
}

#[tokio::test]
async fn an_invalid_repository_in_a_push_path_is_a_400_naming_both_rules_and_creates_nothing() {
    let hub = TestHub::start().await;
    let body = refused(
        &hub,
        400,
        hub.http
            .post("/_hubmock/repositories/x/.bad/push", json!({"tag": "v1"})),
    )
    .await;
    assert!(
        messages(&body, "namespace")[0].contains("2 to 30 characters"),
        "{body:#}"
    );
    assert!(
        messages(&body, "name")[0].contains("starting with a letter or digit"),
        "{body:#}"
    );
}

#[tokio::test]
async fn an_invalid_repository_name_in_a_pipeline_path_is_a_400() {
    let hub = TestHub::start().await;
    let body = refused(
        &hub,
        400,
        hub.http.post(
            "/v2/repositories/acme/Bad/webhook_pipeline/",
            json!({"name": "ci", "webhooks": [{"name": "a", "hook_url": "http://x/"}]}),
        ),
    )
    .await;
    assert!(messages(&body, "name")[0].contains("a-z, 0-9"), "{body:#}");
}

// ---- unknown things ---------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_repository_is_a_404() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let pipeline = json!({"name": "ci", "webhooks": [{"name": "a", "hook_url": "http://x/"}]});
    for (method, path) in [
        (Method::GET, "/v2/repositories/acme/nope/"),
        (Method::GET, "/v2/repositories/acme/nope/webhook_pipeline/"),
        (Method::POST, "/v2/repositories/acme/nope/webhook_pipeline/"),
        (
            Method::GET,
            "/v2/repositories/acme/nope/webhook_pipeline/ci/",
        ),
    ] {
        let body = refused(
            &hub,
            404,
            hub.http.send_json(method, path, pipeline.clone()),
        )
        .await;
        assert!(detail(&body).contains("acme/nope"), "{path}: {body:#}");
    }
}

#[tokio::test]
async fn a_push_to_an_unknown_repository_is_a_404_when_implicit_creation_is_off() {
    let hub = TestHub::with(
        hubmock::Config::default()
            .with_auth(false)
            .with_implicit_repositories(false),
    )
    .await;
    let body = refused(
        &hub,
        404,
        hub.http.post(
            "/_hubmock/repositories/acme/nope/push",
            json!({"tag": "v1"}),
        ),
    )
    .await;
    assert!(detail(&body).contains("acme/nope"), "{body:#}");
}

#[tokio::test]
async fn an_unknown_pipeline_slug_is_a_404() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &["http://127.0.0.1:9/".to_owned()], true)
        .await;
    let base = "/v2/repositories/acme/app/webhook_pipeline/nope";
    for (method, path) in [
        (Method::GET, format!("{base}/")),
        (Method::GET, format!("{base}/history/")),
        (Method::PATCH, format!("{base}/")),
        (Method::DELETE, format!("{base}/")),
    ] {
        let request = hub.http.send_json(method, &path, json!({"name": "x"}));
        let body = refused(&hub, 404, request).await;
        assert!(detail(&body).contains("'nope'"), "{path}: {body:#}");
    }
}

#[tokio::test]
async fn an_unknown_hook_id_on_the_callback_endpoint_is_a_404() {
    let (hub, _r, run) = awaiting_callback().await;
    let known = run["steps"][0]["callback_url"].as_str().unwrap();
    let hook_id = known.trim_end_matches('/').rsplit('/').next().unwrap();
    let success = json!({"state": "success"});
    for path in [
        // Well-formed but never handed out.
        "/u/acme/app/hook/0123456789abcdefghij012345678901/".to_owned(),
        // Not even the shape of a hook id.
        "/u/acme/app/hook/nope/".to_owned(),
        "/_/app/hook/0123456789abcdefghij012345678901/".to_owned(),
        // A real hook id under another repository's path.
        format!("/u/acme/other/hook/{hook_id}/"),
        format!("/_/app/hook/{hook_id}/"),
        // A real hook id under an impossible repository name.
        format!("/u/ACME/app/hook/{hook_id}/"),
    ] {
        let body = refused(&hub, 404, hub.http.post(&path, success.clone())).await;
        assert!(!detail(&body).is_empty(), "{path}: {body:#}");
    }
    // The real one still awaits its callback.
    hub.callback(&run, 0, success).await.expect(200);
}

#[tokio::test]
async fn an_unknown_run_is_a_404() {
    let hub = TestHub::start().await;
    for path in [
        "/_hubmock/runs/999999",
        "/_hubmock/runs/999999?wait=finished&timeout_ms=10000",
        "/_hubmock/runs/abc",
        "/_hubmock/runs/-1",
    ] {
        let body = refused(&hub, 404, hub.http.get(path)).await;
        assert!(!detail(&body).is_empty(), "{path}: {body:#}");
    }
}

// ---- receivers that misbehave -----------------------------------------------------------

/// Pushes to a repository with two pipelines: `bad` delivering to `bad_url`, `good` to a
/// receiver that answers 200 and calls back. Asserts the good run completes normally and
/// answers the bad run, finished.
async fn only_its_own_step_fails(hub: &TestHub, bad_url: String) -> Value {
    let good = ok_receiver().await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "bad", &[bad_url, good.uri()], true)
        .await;
    hub.pipeline("acme/app", "good", &[good.uri()], true).await;
    let runs = hub.push("acme/app", "v1").await;
    let (bad_run, good_run) = (&runs[0], &runs[1]);
    assert_eq!(bad_run["pipeline"], "bad");
    assert_eq!(good_run["pipeline"], "good");

    let bad_run = hub.finished(bad_run).await;
    assert_eq!(bad_run["status"], "error", "{bad_run:#}");
    assert_eq!(
        step_statuses(&bad_run),
        ["delivery_failed", "skipped"],
        "{bad_run:#}"
    );

    let delivered = hub.delivered(good_run, 0).await;
    assert_eq!(delivered["steps"][0]["delivery"]["status"], 200);
    hub.callback(good_run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    let good_run = hub.finished(good_run).await;
    assert_eq!(good_run["status"], "success", "{good_run:#}");
    assert_eq!(step_statuses(&good_run), ["success"]);
    // The bad run's second webhook (the good receiver) was never called.
    let received = good.received_requests().await.expect("recording");
    assert_eq!(received.len(), 1, "{received:#?}");
    bad_run
}

/// The delivery error recorded for a failed step 0.
#[track_caller]
fn delivery_error(run: &Value) -> &str {
    let delivery = &run["steps"][0]["delivery"];
    assert!(delivery["status"].is_null(), "{run:#}");
    delivery["error"]
        .as_str()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| panic!("no delivery error recorded: {run:#}"))
}

#[tokio::test]
async fn a_receiver_that_drops_the_connection_fails_only_its_own_step() {
    let hub = TestHub::start().await;
    let bad = RawReceiver::start(|_body| async { None }).await;
    let run = only_its_own_step_fails(&hub, bad.url()).await;
    delivery_error(&run);
}

#[tokio::test]
async fn a_receiver_that_resets_the_connection_fails_only_its_own_step() {
    let hub = TestHub::start().await;
    // A listener that accepts and resets at once: SO_LINGER 0 makes close send an RST.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resetter = hubmock::net::AcceptLoop::spawn(listener, |stream, _| async move {
        let _ = stream.set_zero_linger();
        drop(stream);
    })
    .unwrap();
    let url = format!("http://{}/hook", resetter.address());
    let run = only_its_own_step_fails(&hub, url).await;
    drop(resetter);
    delivery_error(&run);
}

#[tokio::test]
async fn a_receiver_that_answers_garbage_fails_only_its_own_step() {
    let hub = TestHub::start().await;
    let bad = RawReceiver::start(|_body| async {
        Some(b"\x00\x01\x02 this is not HTTP at all \xff\r\n\r\n".to_vec())
    })
    .await;
    let run = only_its_own_step_fails(&hub, bad.url()).await;
    delivery_error(&run);
}

#[tokio::test]
async fn a_receiver_that_answers_500_fails_only_its_own_step() {
    let hub = TestHub::start().await;
    let bad = RawReceiver::start(|_body| async { Some(http_response(500, "boom")) }).await;
    let run = only_its_own_step_fails(&hub, bad.url()).await;
    let delivery = &run["steps"][0]["delivery"];
    assert_eq!(delivery["status"], 500, "{run:#}");
    assert_eq!(delivery["response_body"], "boom", "{run:#}");
}

#[tokio::test]
async fn a_receiver_that_hangs_fails_only_its_own_step_after_the_delivery_timeout() {
    let config = hubmock::Config::default()
        .with_auth(false)
        .with_delivery_timeout(Duration::from_millis(300));
    let hub = TestHub::with(config).await;
    let bad = RawReceiver::start(|_body| std::future::pending()).await;
    let run = only_its_own_step_fails(&hub, bad.url()).await;
    assert!(delivery_error(&run).contains("timeout"), "{run:#}");
}

// ---- the callback endpoint ----------------------------------------------------------------

#[tokio::test]
async fn a_callback_that_is_an_array_is_refused() {
    let errors = refused_callback(json!([{"state": "success"}])).await;
    assert_eq!(
        errors,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    );
}

#[tokio::test]
async fn a_callback_that_is_a_string_is_refused() {
    let errors = refused_callback(json!("success")).await;
    assert_eq!(
        errors,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]})
    );
}

#[tokio::test]
async fn a_callback_without_state_is_refused() {
    let errors = refused_callback(json!({"description": "done"})).await;
    assert_eq!(errors, json!({"state": ["This field is required."]}));
}

#[tokio::test]
async fn a_callback_with_an_unknown_state_is_refused() {
    let errors = refused_callback(json!({"state": "done"})).await;
    assert_eq!(
        errors,
        json!({"state": ["\"done\" is not a valid choice."]})
    );
}

#[tokio::test]
async fn a_callback_description_of_256_characters_is_refused_though_255_bytes_would_fit_more() {
    // 256 "é" are 512 bytes: the limit counts characters.
    let errors =
        refused_callback(json!({"state": "success", "description": "é".repeat(256)})).await;
    assert_eq!(
        errors,
        json!({"description": ["Ensure this field has no more than 255 characters."]})
    );
}

#[tokio::test]
async fn a_callback_description_of_255_two_byte_characters_is_accepted() {
    let (hub, _r, run) = awaiting_callback().await;
    let description = "é".repeat(255);
    hub.callback(
        &run,
        0,
        json!({"state": "success", "description": description}),
    )
    .await
    .expect(200);
    let run = hub.finished(&run).await;
    assert_eq!(run["steps"][0]["callback"]["description"], description);
}

#[tokio::test]
async fn a_callback_context_of_101_characters_is_refused() {
    let errors = refused_callback(json!({"state": "success", "context": "c".repeat(101)})).await;
    assert_eq!(
        errors,
        json!({"context": ["Ensure this field has no more than 100 characters."]})
    );
}

#[tokio::test]
async fn a_callback_target_url_that_is_not_a_url_is_refused() {
    let errors = refused_callback(json!({"state": "success", "target_url": "not a url"})).await;
    assert_eq!(errors, json!({"target_url": ["Enter a valid URL."]}));
}

#[tokio::test]
async fn a_callback_with_a_description_that_is_not_a_string_is_refused() {
    let errors = refused_callback(json!({"state": "success", "description": 5})).await;
    assert_eq!(errors, json!({"description": ["Not a valid string."]}));
}

#[tokio::test]
async fn a_callback_with_every_field_wrong_names_every_field() {
    let errors = refused_callback(json!({
        "state": "done",
        "description": "é".repeat(256),
        "context": "c".repeat(101),
        "target_url": "ftp://example.com/x",
    }))
    .await;
    for field in ["state", "description", "context", "target_url"] {
        assert_eq!(messages(&errors, field).len(), 1, "{field}: {errors:#}");
    }
}
