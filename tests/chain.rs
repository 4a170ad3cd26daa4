//! The chain rules R1–R11 of the SPEC, one behaviour per test, through real HTTP.

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::util::{answering, receiver, step_statuses, TestHub};

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
    hub.callback(&runs[0], 0, json!({"state": "success"}))
        .await
        .expect(200);
    assert_eq!(hub.finished(&runs[0]).await["status"], "success");
    let other = hub
        .http
        .get(&format!("/_hubmock/runs/{}", runs[1]["id"]))
        .await
        .expect(200);
    assert_eq!(other["status"], "pending");
    assert_eq!(step_statuses(&other), ["awaiting_callback"]);
}

#[tokio::test]
async fn the_next_step_is_delivered_only_after_a_successful_callback() {
    let hub = TestHub::start().await;
    let (first, second) = (answering(200).await, answering(200).await);
    let run = hub
        .first_run("chain", &[first.uri(), second.uri()], true)
        .await;
    let run = hub.delivered(&run, 0).await;
    assert_eq!(step_statuses(&run), ["awaiting_callback", "waiting"]);
    assert_eq!(first.received_requests().await.unwrap().len(), 1);
    assert!(second.received_requests().await.unwrap().is_empty());

    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    let run = hub.delivered(&run, 1).await;
    assert_eq!(step_statuses(&run), ["success", "awaiting_callback"]);
    assert_eq!(second.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_delivery_is_a_json_post_with_a_content_length() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("p", &[r.uri()], true).await;
    hub.delivered(&run, 0).await;
    let requests = r.received_requests().await.unwrap();
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.headers["content-length"],
        request.body.len().to_string().as_str()
    );
    let payload: hubmock::Payload = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload.callback_url, run["steps"][0]["callback_url"]);
    assert_eq!(payload.push_data.tag.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_5xx_answer_fails_the_step_and_ends_the_run_with_error() {
    let hub = TestHub::start().await;
    let (failing, never) = (answering(503).await, answering(200).await);
    let run = hub
        .first_run("p", &[failing.uri(), never.uri()], true)
        .await;
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "error");
    assert_eq!(step_statuses(&run), ["delivery_failed", "skipped"]);
    assert_eq!(run["steps"][0]["delivery"]["status"], 503);
    assert!(never.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_connection_fails_the_step_with_the_reason_recorded() {
    let hub = TestHub::start().await;
    // Bind, learn the port, close: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = hub
        .first_run("p", &[format!("http://127.0.0.1:{port}/x")], true)
        .await;
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "error");
    assert_eq!(step_statuses(&run), ["delivery_failed"]);
    let error = run["steps"][0]["delivery"]["error"].as_str().unwrap();
    assert!(error.contains("refused"), "{error}");
}

#[tokio::test]
async fn a_redirect_counts_as_delivered_and_is_not_followed() {
    let hub = TestHub::start().await;
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/elsewhere"))
        .mount(&r)
        .await;
    let run = hub.first_run("p", &[r.uri()], false).await;
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "success");
    assert_eq!(run["steps"][0]["delivery"]["status"], 302);
    assert_eq!(r.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_callback_sent_before_the_receiver_answers_is_accepted() {
    use crate::util::{http_response, Http, RawReceiver};
    use std::sync::{Arc, Mutex};
    let hub = TestHub::start().await;
    let answers = Arc::new(Mutex::new(Vec::new()));
    let seen = answers.clone();
    // Like schickling/docker-hook: call back first, answer the delivery afterwards.
    let r = RawReceiver::start(move |body| {
        let seen = seen.clone();
        async move {
            let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let url = payload["callback_url"].as_str().unwrap().to_owned();
            let answer = Http::new("http://unused")
                .post(&url, json!({"state": "success", "description": "deployed"}))
                .await;
            seen.lock().unwrap().push(answer.status.as_u16());
            Some(http_response(200, "ok"))
        }
    })
    .await;
    let run = hub.first_run("p", &[r.url()], true).await;
    let run = hub.finished(&run).await;
    assert_eq!(*answers.lock().unwrap(), [200]);
    assert_eq!(run["status"], "success");
    assert_eq!(run["steps"][0]["callback"]["description"], "deployed");
    // The delivery's own answer came after the callback and is recorded too.
    let run = hub.delivered(&run, 0).await;
    assert_eq!(run["steps"][0]["delivery"]["status"], 200);
}

#[tokio::test]
async fn a_failure_callback_interrupts_the_chain_and_skips_later_steps() {
    let hub = TestHub::start().await;
    let (a, b, c) = (
        answering(200).await,
        answering(200).await,
        answering(200).await,
    );
    let run = hub.first_run("p", &[a.uri(), b.uri(), c.uri()], true).await;
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    hub.callback(
        &run,
        1,
        json!({"state": "failure", "description": "3 tests failed"}),
    )
    .await
    .expect(200);
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "failure");
    assert_eq!(step_statuses(&run), ["success", "failure", "skipped"]);
    assert!(c.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_error_callback_interrupts_the_chain_with_error() {
    let hub = TestHub::start().await;
    let (a, b) = (answering(200).await, answering(200).await);
    let run = hub.first_run("p", &[a.uri(), b.uri()], true).await;
    hub.callback(&run, 0, json!({"state": "error"}))
        .await
        .expect(200);
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "error");
    assert_eq!(step_statuses(&run), ["error", "skipped"]);
    assert!(b.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_run_succeeds_when_the_last_callback_says_success() {
    let hub = TestHub::start().await;
    let (a, b) = (answering(200).await, answering(200).await);
    let run = hub.first_run("p", &[a.uri(), b.uri()], true).await;
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    // The last delivery's 2xx alone does not finish the run when a final callback is expected.
    let run = hub.delivered(&run, 1).await;
    assert_eq!(run["status"], "pending");
    hub.callback(&run, 1, json!({"state": "success"}))
        .await
        .expect(200);
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "success");
    assert_eq!(step_statuses(&run), ["success", "success"]);
    assert!(run["finished"].is_string());
}

#[tokio::test]
async fn without_a_final_callback_the_last_2xx_delivery_ends_the_run() {
    let hub = TestHub::start().await;
    let (a, b) = (answering(200).await, answering(201).await);
    let run = hub.first_run("p", &[a.uri(), b.uri()], false).await;
    // Earlier steps still need their callback.
    let run = hub.delivered(&run, 0).await;
    assert_eq!(run["status"], "pending");
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "success");
    assert_eq!(step_statuses(&run), ["success", "success"]);
    assert!(run["steps"][1]["callback"].is_null());
}

#[tokio::test]
async fn a_second_callback_for_a_step_answers_update_not_allowed() {
    let hub = TestHub::start().await;
    let a = answering(200).await;
    let run = hub.first_run("p", &[a.uri()], true).await;
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    let again = hub.callback(&run, 0, json!({"state": "failure"})).await;
    assert_eq!(again.expect(400), json!("Update not allowed"));
    assert_eq!(hub.finished(&run).await["status"], "success");
}

#[tokio::test]
async fn a_callback_for_a_step_not_yet_delivered_answers_update_not_allowed() {
    let hub = TestHub::start().await;
    let (a, b) = (answering(200).await, answering(200).await);
    let run = hub.first_run("p", &[a.uri(), b.uri()], true).await;
    let early = hub.callback(&run, 1, json!({"state": "success"})).await;
    assert_eq!(early.expect(400), json!("Update not allowed"));
    let run = hub.delivered(&run, 0).await;
    assert_eq!(step_statuses(&run), ["awaiting_callback", "waiting"]);
}

#[tokio::test]
async fn a_callback_to_an_unknown_hook_id_answers_404() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let unknown = hub
        .http
        .post(
            &format!("/u/acme/app/hook/{}/", "a".repeat(32)),
            json!({"state": "success"}),
        )
        .await;
    assert!(unknown.expect(404)["detail"].is_string());
    // A real hook id under another repository's path is unknown there too.
    let a = answering(200).await;
    hub.pipeline("acme/app", "p", &[a.uri()], true).await;
    let run = hub.push("acme/app", "v1").await.remove(0);
    let hook_id = run["steps"][0]["hook_id"].as_str().unwrap();
    hub.http
        .post(
            &format!("/u/acme/other/hook/{hook_id}/"),
            json!({"state": "success"}),
        )
        .await
        .expect(404);
}

#[tokio::test]
async fn library_repositories_take_callbacks_under_the_short_path() {
    let hub = TestHub::start().await;
    let a = answering(200).await;
    hub.repository("library", "nginx").await;
    hub.pipeline("library/nginx", "p", &[a.uri()], true).await;
    let run = hub.push("library/nginx", "1.27").await.remove(0);
    let url = run["steps"][0]["callback_url"].as_str().unwrap();
    assert!(url.contains("/_/nginx/hook/"), "{url}");
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    assert_eq!(hub.finished(&run).await["status"], "success");
}

#[tokio::test]
async fn an_invalid_callback_changes_nothing_and_a_corrected_one_is_accepted() {
    let hub = TestHub::start().await;
    let a = answering(200).await;
    let run = hub.first_run("p", &[a.uri()], true).await;
    let bad = hub
        .callback(
            &run,
            0,
            json!({"state": "success", "description": "é".repeat(256), "context": "c".repeat(101)}),
        )
        .await;
    assert_eq!(
        bad.expect(400),
        json!({
            "description": ["Ensure this field has no more than 255 characters."],
            "context": ["Ensure this field has no more than 100 characters."],
        })
    );
    let unchanged = hub
        .http
        .get(&format!("/_hubmock/runs/{}", run["id"]))
        .await
        .expect(200);
    assert_eq!(step_statuses(&unchanged), ["awaiting_callback"]);
    assert!(unchanged["steps"][0]["callback"].is_null());
    let good = json!({"state": "success", "description": "é".repeat(255), "context": "c".repeat(100),
                      "target_url": "https://ci.example.com/build/1"});
    hub.callback(&run, 0, good).await.expect(200);
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "success");
    assert_eq!(
        run["steps"][0]["callback"]["target_url"],
        "https://ci.example.com/build/1"
    );
}

#[tokio::test]
async fn deleting_a_pipeline_cancels_its_pending_runs_and_refuses_their_callbacks() {
    let hub = TestHub::start().await;
    let (a, b) = (answering(200).await, answering(200).await);
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "p", &[a.uri(), b.uri()], true)
        .await;
    let done = hub.push("acme/app", "v1").await.remove(0);
    hub.callback(&done, 0, json!({"state": "failure"}))
        .await
        .expect(200);
    let pending = hub.push("acme/app", "v2").await.remove(0);
    hub.http
        .delete("/v2/repositories/acme/app/webhook_pipeline/p/")
        .await
        .expect(204);
    let cancelled = hub.finished(&pending).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(step_statuses(&cancelled), ["cancelled", "cancelled"]);
    let late = hub.callback(&pending, 0, json!({"state": "success"})).await;
    assert_eq!(late.expect(400), json!("Update not allowed"));
    // The finished run's history stays readable until reset.
    let runs = hub
        .http
        .get("/_hubmock/runs?repository=acme/app")
        .await
        .expect(200);
    let statuses: Vec<_> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("cancelled"), json!("failure")]);
}

#[tokio::test]
async fn runs_record_times_status_duration_and_the_first_4_kib_of_the_answer() {
    let hub = TestHub::start().await;
    let r = receiver().await;
    let long_body = "x".repeat(10_000);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(long_body))
        .mount(&r)
        .await;
    let run = hub.first_run("p", &[r.uri()], true).await;
    hub.callback(&run, 0, json!({"state": "success", "context": "ci/tests"}))
        .await
        .expect(200);
    let run = hub.finished(&run).await;
    let run = hub.delivered(&run, 0).await;
    let step = &run["steps"][0];
    assert!(run["created"].is_string() && run["finished"].is_string());
    assert!(step["delivered_at"].is_string());
    assert_eq!(step["delivery"]["status"], 200);
    assert!(step["delivery"]["duration_ms"].is_u64());
    assert_eq!(
        step["delivery"]["response_body"].as_str().unwrap().len(),
        4096
    );
    assert_eq!(step["callback"]["state"], "success");
    assert_eq!(step["callback"]["context"], "ci/tests");
    assert!(step["callback"]["received"].is_string());
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another_pipelines_run() {
    let hub = TestHub::start().await;
    let hanging = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(3600)))
        .mount(&hanging)
        .await;
    let fast = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "slow", &[hanging.uri()], false)
        .await;
    hub.pipeline("acme/app", "fast", &[fast.uri(), fast.uri()], false)
        .await;
    let runs = hub.push("acme/app", "v1").await;
    hub.callback(&runs[1], 0, json!({"state": "success"}))
        .await
        .expect(200);
    let fast_run = hub.finished(&runs[1]).await;
    assert_eq!(fast_run["status"], "success");
    let slow_run = hub
        .http
        .get(&format!("/_hubmock/runs/{}", runs[0]["id"]))
        .await
        .expect(200);
    assert_eq!(slow_run["status"], "pending");
    assert!(slow_run["steps"][0]["delivery"].is_null(), "{slow_run:#}");
}
