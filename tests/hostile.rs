//! Hostile peers and configurations: each stalls or fails only itself.

use std::time::Duration;

use hubmock::Config;
use serde_json::json;

use crate::util::{http_response, RawReceiver, TestHub};

#[tokio::test]
async fn a_hook_that_points_back_at_hubmock_fails_its_step_instead_of_looping() {
    let hub = TestHub::start().await;
    let own_push = format!("{}/_hubmock/repositories/acme/app/push", hub.hub.uri());
    let run = hub.first_run("loop", &[own_push], false).await;
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "error", "{run:#}");
    let step = &run["steps"][0];
    assert_eq!(step["status"], "delivery_failed", "{run:#}");
    assert_eq!(step["delivery"]["status"], 508, "{run:#}");
    let said = step["delivery"]["response_body"].as_str().unwrap();
    assert!(
        said.contains("own delivery of run") && said.contains("points back at hubmock"),
        "{said}"
    );
    // The refused delivery started nothing: one run, from the one push.
    let runs = hub.http.get("/_hubmock/runs").await.expect(200);
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs:#}");
}

#[tokio::test]
async fn another_hubmocks_delivery_is_an_ordinary_request() {
    // Two emulators chained on purpose: A's webhook pushes to B.
    let (a, b) = (TestHub::start().await, TestHub::start().await);
    b.repository("acme", "downstream").await;
    let b_push = format!("{}/_hubmock/repositories/acme/downstream/push", b.hub.uri());
    let run = a.first_run("chain", &[b_push], false).await;
    let run = a.finished(&run).await;
    assert_eq!(run["status"], "success", "{run:#}");
    assert_eq!(run["steps"][0]["delivery"]["status"], 202, "{run:#}");
}

#[tokio::test]
async fn a_push_over_the_pending_limit_is_a_503_that_changes_nothing() {
    // A receiver that holds every delivery: runs stay pending.
    let holds = RawReceiver::start(|_| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Some(http_response(200, ""))
    })
    .await;
    let hub = TestHub::with(Config::default().with_auth(false).with_max_pending_runs(2)).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "held", &[holds.url()], false)
        .await;
    hub.push("acme/app", "v1").await;
    hub.push("acme/app", "v2").await;
    let before = hub.state().await;
    let refused = hub
        .http
        .post("/_hubmock/repositories/acme/app/push", json!({"tag": "v3"}))
        .await;
    let body = refused.expect(503);
    assert_eq!(
        refused
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("2 runs pending") && detail.contains("--max-pending-runs"),
        "{detail}"
    );
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn deliveries_record_every_header_they_were_sent_with() {
    let hub = TestHub::start().await;
    let ok = RawReceiver::start(|_| async { Some(http_response(200, "")) }).await;
    let run = hub.first_run("p", &[ok.url()], false).await;
    hub.finished(&run).await;
    let log = hub.http.get("/_hubmock/deliveries").await.expect(200);
    let headers = &log["deliveries"][0]["request_headers"];
    let host = ok
        .url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(headers["host"], json!(host), "{headers:#}");
    assert_eq!(headers["accept"], "*/*", "{headers:#}");
    assert!(headers["x-hubmock-delivery"].is_string(), "{headers:#}");
}

#[tokio::test]
async fn credentials_in_a_hook_url_go_as_basic_auth_and_are_never_shown() {
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, ResponseTemplate};
    let receiver = crate::util::receiver().await;
    // "user:s3cr%3At" → user "user", password "s3cr:t".
    Mock::given(method("POST"))
        .and(header("authorization", "Basic dXNlcjpzM2NyOnQ="))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let address = receiver.address().to_string();
    let hook = format!("http://user:s3cr%3At@{address}/hook");
    let hub = TestHub::start().await;
    let run = hub.first_run("auth", &[hook], false).await;
    let run = hub.finished(&run).await;
    // The receiver answered 200 only to the right Authorization header.
    assert_eq!(run["status"], "success", "{run:#}");
    let shown = format!("http://user:***@{address}/hook");
    assert_eq!(run["steps"][0]["hook_url"], json!(shown), "{run:#}");
    let pipeline = hub
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/auth/")
        .await
        .expect(200);
    let history = hub
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/auth/history/")
        .await
        .expect(200);
    let log = hub.http.get("/_hubmock/deliveries").await.expect(200);
    assert_eq!(log["deliveries"][0]["url"], json!(shown), "{log:#}");
    assert_eq!(
        log["deliveries"][0]["request_headers"]["authorization"],
        "Basic ***"
    );
    for (what, body) in [
        ("pipeline", &pipeline),
        ("history", &history),
        ("log", &log),
    ] {
        let text = body.to_string();
        assert!(
            !text.contains("s3cr") && !text.contains("dXNlcjpzM2NyOnQ="),
            "{what} shows the password: {text}"
        );
    }
    // The state export keeps the pipeline's credentials, so an import delivers with them.
    let other = TestHub::start().await;
    other
        .http
        .put("/_hubmock/state", hub.state().await)
        .await
        .expect(200);
    let run = other.push("acme/app", "v2").await.remove(0);
    assert_eq!(other.finished(&run).await["status"], "success");
}

// ---- what the docs promise and the server does (item 6) ---------------------------------

#[tokio::test]
async fn a_request_target_over_8_kib_is_a_414_with_a_json_body() {
    let hub = TestHub::start().await;
    let long = format!("/_hubmock/health?pad={}", "x".repeat(9000));
    let refused = hub.http.get(&long).await;
    let body = refused.expect(414);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("at most 8192"), "{detail}");
    hub.http.get("/_hubmock/health").await.expect(200);
}

#[tokio::test]
async fn headers_over_64_kib_are_a_431_with_a_json_body() {
    let hub = TestHub::start().await;
    let big = "y".repeat(70 * 1024);
    let refused = hub
        .http
        .send(
            http::Method::GET,
            "/_hubmock/health",
            &[("x-big", &big)],
            "",
        )
        .await;
    let body = refused.expect(431);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("at most 65536"), "{detail}");
}

#[tokio::test]
async fn head_on_a_get_route_answers_as_get_without_the_body() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    for path in [
        "/_hubmock/health",
        "/v2/repositories/acme/app/",
        "/_hubmock/runs",
    ] {
        let get = hub.http.get(path).await;
        let head = hub.http.send(http::Method::HEAD, path, &[], "").await;
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            head.headers.get("content-type"),
            get.headers.get("content-type"),
            "HEAD {path}"
        );
    }
    // A route without GET still refuses HEAD, and says what it takes.
    let refused = hub
        .http
        .send(http::Method::HEAD, "/_hubmock/reset", &[], "")
        .await;
    assert_eq!(refused.status, 405);
    assert_eq!(refused.headers["allow"], "POST");
    let allow = hub
        .http
        .send(http::Method::DELETE, "/_hubmock/health", &[], "")
        .await;
    assert_eq!(allow.headers["allow"], "GET, HEAD");
}

#[tokio::test]
async fn date_created_on_repository_create_is_kept_and_shows_in_payloads() {
    let hub = TestHub::start().await;
    let created = hub
        .http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "date_created": "2020-01-02T03:04:05Z"}),
        )
        .await
        .expect(201);
    assert_eq!(
        created["date_created"], "2020-01-02T03:04:05.000000Z",
        "{created:#}"
    );
    // Unix seconds, as the legacy payload writes it, are taken too.
    let seconds = hub
        .http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "old", "date_created": 1577934245.5}),
        )
        .await
        .expect(201);
    assert_eq!(seconds["date_created"], "2020-01-02T03:04:05.500000Z");
    let receiver = crate::util::receiver().await;
    hub.pipeline(
        "acme/app",
        "p",
        &[format!("{}/hook", receiver.uri())],
        false,
    )
    .await;
    let run = hub.push("acme/app", "v1").await.remove(0);
    hub.delivered(&run, 0).await;
    let payload: serde_json::Value =
        serde_json::from_slice(&receiver.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        payload["repository"]["date_created"], 1577934245.0,
        "{payload:#}"
    );
}

#[tokio::test]
async fn a_date_created_that_is_not_a_time_is_a_400_naming_it_and_creates_nothing() {
    let hub = TestHub::start().await;
    for bad in [json!("yesterday"), json!(-5), json!(true)] {
        let refused = hub
            .http
            .post(
                "/_hubmock/repositories",
                json!({"namespace": "acme", "name": "app", "date_created": bad}),
            )
            .await
            .expect(400);
        assert!(refused["date_created"][0]
            .as_str()
            .unwrap()
            .contains("RFC 3339"));
    }
    let repositories = hub.http.get("/_hubmock/repositories").await.expect(200);
    assert_eq!(repositories, json!({"repositories": []}));
}
