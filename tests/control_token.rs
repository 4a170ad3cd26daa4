//! The control token (`Config::with_control_token`, `serve --control-token`): the control API
//! refuses a request without it before reading the body and without changing anything, while
//! health, the OpenAPI document, the Hub API and the callback endpoint stay as they were.

use hubmock::{ApiClient, Config, Hub, PipelineSpec, RepoName, Run, RunFilter, RunStatus};
use serde_json::json;

use crate::util::{Http, Resp, WAIT};

const TOKEN: &str = "s3cret-control-token";

/// An emulator whose control API needs [`TOKEN`] (Hub API auth off), and a client that sends it.
async fn guarded_hub() -> (Hub, ApiClient) {
    let config = Config::default().with_auth(false).with_control_token(TOKEN);
    let hub = Hub::builder().config(config).start().await;
    let api = ApiClient::new(&hub.uri()).with_control_token(TOKEN);
    (hub, api)
}

/// `acme/app` with one pipeline to a closed port, and one push of `v1` whose run has ended (its
/// delivery failed): a state with a run, which nothing changes any more.
async fn some_state(hub: &Hub) -> RepoName {
    let repo = RepoName::new("acme", "app").unwrap();
    hub.create_repository("acme", "app").unwrap();
    hub.create_pipeline(&repo, PipelineSpec::new("p", &["http://127.0.0.1:9/hook"]))
        .unwrap();
    let run = hub.push(&repo, "v1").unwrap().remove(0);
    let run = hub.wait_for_run(run.id(), WAIT).await.unwrap();
    assert_ne!(run.status(), RunStatus::Pending, "{run:#?}");
    repo
}

/// Asserts a refusal for the control token: 401, `WWW-Authenticate: Bearer`, and a detail
/// containing `why` (and never the token sent, if any).
#[track_caller]
fn assert_token_refused(resp: &Resp, why: &str, sent: Option<&str>) {
    let body = resp.expect(401);
    assert_eq!(
        resp.headers["www-authenticate"], "Bearer realm=\"hubmock\"",
        "{resp:?}"
    );
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(why), "expected {why:?} in {resp:?}");
    if let Some(sent) = sent {
        assert!(!detail.contains(sent), "the token sent is echoed: {resp:?}");
    }
}

#[tokio::test]
async fn a_control_request_without_the_token_is_refused_saying_it_is_missing() {
    let (hub, _) = guarded_hub().await;
    let resp = Http::new(&hub.uri()).get("/_hubmock/runs").await;
    assert_token_refused(&resp, "credentials were not provided", None);
}

#[tokio::test]
async fn a_control_request_with_another_token_is_refused_saying_it_is_wrong() {
    let (hub, _) = guarded_hub().await;
    let http = Http::new(&hub.uri());
    for wrong in [
        "not-the-token",
        "s3cret-control-toke",
        "s3cret-control-token!",
    ] {
        let header = format!("Bearer {wrong}");
        let resp = http
            .send(
                http::Method::GET,
                "/_hubmock/runs",
                &[("authorization", &header)],
                "",
            )
            .await;
        assert_token_refused(&resp, "Invalid control token", Some(wrong));
    }
}

#[tokio::test]
async fn a_hub_api_login_token_does_not_open_the_control_api() {
    let (hub, _) = guarded_hub().await;
    let resp = Http::new(&hub.uri())
        .with_token("some-login-token")
        .get("/_hubmock/runs")
        .await;
    assert_token_refused(&resp, "must be 'Bearer <token>'", Some("some-login-token"));
}

#[tokio::test]
async fn the_right_token_opens_the_control_api_whatever_the_scheme_case() {
    let (hub, api) = guarded_hub().await;
    api.create_repository("acme", "app").await.unwrap();
    let header = format!("bearer {TOKEN}");
    Http::new(&hub.uri())
        .send(
            http::Method::GET,
            "/_hubmock/repositories",
            &[("authorization", &header)],
            "",
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn a_refused_reset_leaves_the_state_as_it_was() {
    let (hub, api) = guarded_hub().await;
    some_state(&hub).await;
    let before = api.export_state().await.unwrap();
    let refused = ApiClient::new(&hub.uri()).reset().await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    let wrong = ApiClient::new(&hub.uri()).with_control_token("guess");
    assert_eq!(wrong.reset().await.unwrap_err().status(), Some(401));
    assert_eq!(api.export_state().await.unwrap(), before);
    assert_eq!(hub.runs(&RunFilter::default()).len(), 1);
}

#[tokio::test]
async fn a_refused_push_starts_no_run() {
    let (hub, api) = guarded_hub().await;
    let repo = some_state(&hub).await;
    let before = api.export_state().await.unwrap();
    let refused = ApiClient::new(&hub.uri())
        .push(&repo, "v2")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    assert_eq!(hub.runs(&RunFilter::default()).len(), 1);
    assert_eq!(api.export_state().await.unwrap(), before);
    // The same push with the token starts its run.
    assert_eq!(api.push(&repo, "v2").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_state_import_changes_nothing() {
    let (hub, api) = guarded_hub().await;
    some_state(&hub).await;
    let before = api.export_state().await.unwrap();
    let resp = Http::new(&hub.uri())
        .put("/_hubmock/state", json!({"repositories": []}))
        .await;
    assert_token_refused(&resp, "credentials were not provided", None);
    assert_eq!(api.export_state().await.unwrap(), before);
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    let (hub, _) = guarded_hub().await;
    // Over the 1 MiB limit: read, it would be a 413.
    let body = vec![b' '; 2 * 1024 * 1024];
    let resp = Http::new(&hub.uri())
        .post_raw("/_hubmock/repositories", body)
        .await;
    assert_token_refused(&resp, "credentials were not provided", None);
}

#[tokio::test]
async fn health_and_the_openapi_document_stay_open() {
    let (hub, _) = guarded_hub().await;
    let http = Http::new(&hub.uri());
    let health = http.get("/_hubmock/health").await.expect(200);
    assert_eq!(health["status"], "ok");
    let document = http.get("/_hubmock/openapi.json").await.expect(200);
    assert!(document["paths"].is_object());
}

#[tokio::test]
async fn the_hub_api_and_the_callback_endpoint_take_no_control_token() {
    let (hub, _) = guarded_hub().await;
    some_state(&hub).await;
    let http = Http::new(&hub.uri());
    let repository = http.get("/v2/repositories/acme/app/").await.expect(200);
    assert_eq!(repository["name"], "app");
    // An unknown hook id: the callback endpoint's own answer, not the control token's 401.
    let resp = http
        .post("/u/acme/app/hook/unknown/", json!({"state": "success"}))
        .await;
    assert_ne!(resp.status.as_u16(), 401, "{resp:?}");
}

#[tokio::test]
async fn the_api_client_sends_the_control_token_and_the_login_token_each_where_it_belongs() {
    let config = Config::default().with_control_token(TOKEN);
    let hub = Hub::builder().config(config).start().await;
    let api = ApiClient::new(&hub.uri()).with_control_token(TOKEN);
    let login = api.login("hubmock", "hubmock").await.unwrap();
    let api = api.with_token(&login);
    api.create_repository("hubmock", "app").await.unwrap();
    let repo = RepoName::new("hubmock", "app").unwrap();
    let spec = PipelineSpec::new("p", &["http://127.0.0.1:9/hook"]);
    api.create_pipeline(&repo, spec).await.unwrap();
    let runs = api.push(&repo, "v1").await.unwrap();
    let history = api.history(&repo, "p").await.unwrap();
    let ids: Vec<u64> = history.iter().map(Run::id).collect();
    assert_eq!(ids, vec![runs[0].id()]);
}
