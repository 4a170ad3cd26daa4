//! The chain rules R1–R11 of the SPEC, one behaviour per test, through real HTTP.

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::util::{receiver, step_statuses, TestHub};

#[tokio::test]
async fn a_push_starts_one_run_per_pipeline() {
    let hub = TestHub::start().await;
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&r)
        .await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "first", &[r.uri()], true).await;
    hub.pipeline("acme/app", "second", &[r.uri()], true).await;
    let runs = hub.push("acme/app", "v1").await;
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0]["pipeline"], "first");
    assert_eq!(runs[1]["pipeline"], "second");
    // Independent: finishing one leaves the other pending.
    hub.callback(&runs[0], 0, json!({"state": "success"})).await.expect(200);
    assert_eq!(hub.finished(&runs[0]).await["status"], "success");
    let other = hub.http.get(&format!("/_hubmock/runs/{}", runs[1]["id"])).await.expect(200);
    assert_eq!(other["status"], "pending");
    assert_eq!(step_statuses(&other), ["awaiting_callback"]);
}
