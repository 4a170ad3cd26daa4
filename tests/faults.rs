//! Delivery fault plans (`--fault-plan`, a scenario's `faults`): each kind through the HTTP
//! API, asserting the exact posts a receiver saw and what the deliveries log says of them; and
//! the same plan and seed making the same faults on every run.

use std::time::Duration;

use hubmock::faults::FaultPlan;
use hubmock::{Config, DeliveryFilter, DeliveryRecord, Hub, PipelineSpec, RepoName};
use serde_json::{json, Value};
use wiremock::MockServer;

use crate::util::{answering, http_response, received_json, RawReceiver, TestHub, WAIT};

fn plan(yaml: &str) -> FaultPlan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, yaml).unwrap();
    FaultPlan::from_file(&path).unwrap()
}

/// A hub with `plan`, `acme/app` and pipeline `p` of one webhook to `receiver`.
async fn hub_with(plan: FaultPlan, receiver: &MockServer, expect_final: bool) -> TestHub {
    let hub = TestHub::with(Config::default().with_auth(false).with_fault_plan(plan)).await;
    hub.repository("acme", "app").await;
    hub.pipeline(
        "acme/app",
        "p",
        &[format!("{}/hook", receiver.uri())],
        expect_final,
    )
    .await;
    hub
}

/// The deliveries log once it holds `n` records.
async fn logged(hub: &TestHub, n: usize) -> Vec<DeliveryRecord> {
    let all = hub
        .api
        .wait_for_deliveries(&DeliveryFilter::default(), n, WAIT)
        .await
        .unwrap();
    assert_eq!(all.len(), n, "{all:#?}");
    all
}

fn fault(record: &DeliveryRecord) -> Value {
    serde_json::to_value(record).unwrap()["fault"].clone()
}

#[tokio::test]
async fn a_duplicate_posts_the_same_payload_twice_and_the_log_says_which_is_the_copy() {
    let receiver = answering(200).await;
    let hub = hub_with(plan("faults: [{kind: duplicate}]"), &receiver, false).await;
    let run = hub.push("acme/app", "v1").await.remove(0);
    let log = logged(&hub, 2).await;
    let bodies = received_json(&receiver).await;
    assert_eq!(bodies.len(), 2);
    // The same bytes, callback_url included.
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(log[0].request_body.get(), log[1].request_body.get());
    assert!(fault(&log[0]).is_null());
    assert_eq!(
        fault(&log[1]),
        json!({"kind": "duplicate", "of": log[0].id})
    );
    assert_eq!(log[1].run_id, log[0].run_id);
    // The run counted the first answer only.
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "success");
}

#[tokio::test]
async fn a_retry_after_the_answer_repeats_a_delivery_whose_callback_was_taken() {
    let receiver = answering(200).await;
    let hub = hub_with(
        plan("faults: [{kind: retry-after-answer, delay: 50ms}]"),
        &receiver,
        true,
    )
    .await;
    let run = hub.push("acme/app", "v1").await.remove(0);
    hub.delivered(&run, 0).await;
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    let log = logged(&hub, 2).await;
    assert_eq!(
        fault(&log[1]),
        json!({"kind": "retry-after-answer", "of": log[0].id})
    );
    let bodies = received_json(&receiver).await;
    assert_eq!(bodies[0], bodies[1]);
    // A receiver that calls back again for the retry is told the step is done.
    let again = hub.callback(&run, 0, json!({"state": "success"})).await;
    assert_eq!(again.expect(400), json!("Update not allowed"));
    assert_eq!(hub.finished(&run).await["status"], "success");
}

#[tokio::test]
async fn a_forged_post_claims_another_repository_and_its_callback_url_leads_nowhere() {
    let receiver = answering(200).await;
    let hub = hub_with(
        plan("faults: [{kind: forged, claims: evil/app}]"),
        &receiver,
        false,
    )
    .await;
    hub.push("acme/app", "v1").await;
    let log = logged(&hub, 2).await;
    let bodies = received_json(&receiver).await;
    assert_eq!(bodies[0]["repository"]["repo_name"], "acme/app");
    let forged = &bodies[1];
    assert_eq!(forged["repository"]["repo_name"], "evil/app");
    assert_eq!(forged["repository"]["namespace"], "evil");
    assert_eq!(forged["push_data"], bodies[0]["push_data"]);
    assert_eq!(fault(&log[1]), json!({"kind": "forged", "of": log[0].id}));
    // The same headers: the Hub signs nothing, so nothing tells a forged post apart.
    let requests = receiver.received_requests().await.unwrap();
    let names = |i: usize| -> Vec<String> {
        let mut n: Vec<String> = requests[i].headers.keys().map(|k| k.to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names(0), names(1));
    let callback = forged["callback_url"].as_str().unwrap();
    assert!(callback.contains("/u/evil/app/hook/"), "{callback}");
    hub.http
        .post(callback, json!({"state": "success"}))
        .await
        .expect(404);
}

#[tokio::test]
async fn out_of_order_delivers_the_newer_push_first() {
    let receiver = answering(200).await;
    let hub = hub_with(
        plan("faults: [{kind: out-of-order, delay: 1h}]"),
        &receiver,
        false,
    )
    .await;
    let first = hub.push("acme/app", "v1").await.remove(0);
    let second = hub.push("acme/app", "v2").await.remove(0);
    let log = logged(&hub, 2).await;
    let tags: Vec<Value> = received_json(&receiver)
        .await
        .iter()
        .map(|b| b["push_data"]["tag"].clone())
        .collect();
    assert_eq!(tags, [json!("v2"), json!("v1")]);
    assert_eq!(log[0].run_id, second["id"].as_u64().unwrap());
    assert!(fault(&log[0]).is_null());
    let note = fault(&log[1]);
    assert_eq!(note["kind"], "out-of-order");
    assert_eq!(note["overtaken_by"], second["id"]);
    assert_eq!(log[1].run_id, first["id"].as_u64().unwrap());
    assert_eq!(hub.finished(&first).await["status"], "success");
}

/// On tokio's paused clock: a held delivery that nothing overtakes, and a delayed one, go out
/// when their time is up.
#[tokio::test(start_paused = true)]
async fn delayed_and_unovertaken_deliveries_go_out_when_their_time_is_up() {
    let receiver = RawReceiver::start(|_| async { Some(http_response(200, "")) }).await;
    let plan = plan(
        "faults:\n  - {kind: delay, pipeline: slow, delay: 1h}\n  \
         - {kind: out-of-order, pipeline: held, delay: 2h}\n",
    );
    let hub = Hub::builder()
        .config(Config::default().with_fault_plan(plan))
        .on_current_runtime()
        .start()
        .await;
    let repo = RepoName::parse("acme/app").unwrap();
    hub.create_repository("acme", "app").unwrap();
    for name in ["slow", "held"] {
        let mut spec = PipelineSpec::new(name, &[&receiver.url()]);
        spec.expect_final_callback = Some(false);
        hub.create_pipeline(&repo, spec).unwrap();
    }
    let runs = hub.push(&repo, "v1").unwrap();
    // Let the engine take both deliveries (and start their waits) before the clock moves.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(Duration::from_secs(3599)).await;
    assert!(hub.deliveries().is_empty(), "nothing before an hour");
    tokio::time::advance(Duration::from_secs(2)).await;
    let slow = hub
        .wait_for_run(runs[0].id(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(slow.status(), hubmock::RunStatus::Success);
    assert_eq!(hub.deliveries().len(), 1);
    tokio::time::advance(Duration::from_secs(3600)).await;
    let held = hub
        .wait_for_run(runs[1].id(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(held.status(), hubmock::RunStatus::Success);
    let log = hub.deliveries();
    let notes: Vec<Value> = log.iter().map(fault).collect();
    assert_eq!(notes[0]["kind"], "delay");
    assert!(
        notes[0]["held_ms"].as_u64().unwrap() >= 3_600_000,
        "{notes:?}"
    );
    assert_eq!(notes[1]["kind"], "out-of-order");
    assert!(notes[1]["overtaken_by"].is_null(), "{notes:?}");
    assert!(
        notes[1]["held_ms"].as_u64().unwrap() >= 7_200_000,
        "{notes:?}"
    );
}

/// Pushes `tags` one by one to a fresh hub with `plan`, each push's posts (its faults
/// included) all made before the next; answers what the receiver saw, in order, as
/// (tag, repository, fault kind).
async fn sequence(plan_text: &str, tags: usize) -> Vec<(String, String, String)> {
    let receiver = answering(200).await;
    let plan = plan(plan_text);
    let hub = hub_with(plan.clone(), &receiver, false).await;
    let mut expected = 0;
    for n in 1..=tags {
        let run = hub.push("acme/app", &format!("v{n}")).await.remove(0);
        let id = run["id"].as_u64().unwrap();
        // What the plan says this delivery gets: the post, and its extra posts.
        let hits = plan.hits("acme/app", "p", id, 0);
        expected += 1 + hits.extra_posts();
        logged(&hub, expected).await;
    }
    hub.api
        .deliveries(&DeliveryFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|record| {
            let body: Value = serde_json::from_str(record.request_body.get()).unwrap();
            (
                body["push_data"]["tag"].as_str().unwrap().to_owned(),
                body["repository"]["repo_name"].as_str().unwrap().to_owned(),
                fault(record)["kind"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_seeded_plan_makes_the_same_faults_on_every_run() {
    let rules = "faults:\n  - {kind: duplicate, probability: 0.5}\n  \
                 - {kind: forged, probability: 0.3}\n  \
                 - {kind: retry-after-answer, probability: 0.3, delay: 10ms}\n  \
                 - {kind: delay, probability: 0.3, delay: 10ms}\n";
    let once = sequence(&format!("seed: 42\n{rules}"), 10).await;
    let again = sequence(&format!("seed: 42\n{rules}"), 10).await;
    assert_eq!(once, again);
    let kinds: Vec<&str> = once.iter().map(|(_, _, k)| k.as_str()).collect();
    assert!(kinds.contains(&"duplicate"), "{once:?}");
    assert!(kinds.contains(&"forged"), "{once:?}");
    assert!(kinds.contains(&"retry-after-answer"), "{once:?}");
    assert!(kinds.contains(&"delay"), "{once:?}");
    assert!(kinds.len() > 10 && kinds.len() < 30, "{once:?}");
    // Another seed, other faults.
    let other = sequence(&format!("seed: 43\n{rules}"), 10).await;
    assert_ne!(once, other);
}

#[test]
fn a_bad_plan_file_is_refused_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    for (text, says) in [
        ("faults: [{kind: dupliate}]", "dupliate"),
        ("faults: [{kind: duplicate, probabilty: 1}]", "probabilty"),
        (
            "faults: [{kind: delay, probability: 1.5}]",
            "between 0 and 1",
        ),
        ("faults: [{kind: forged, claims: x}]", "not namespace/name"),
    ] {
        std::fs::write(&path, text).unwrap();
        let error = FaultPlan::from_file(&path).unwrap_err().to_string();
        assert!(error.contains(says), "{text}: {error}");
        assert!(error.contains("plan.yaml"), "{error}");
    }
    let missing = FaultPlan::from_file(&dir.path().join("none.yaml")).unwrap_err();
    assert!(missing.to_string().contains("cannot read"), "{missing}");
}

#[tokio::test]
async fn a_push_that_waits_waits_for_the_posts_its_faults_add() {
    let receiver = answering(200).await;
    let hub = hub_with(
        plan("faults: [{kind: retry-after-answer, delay: 200ms}, {kind: duplicate}]"),
        &receiver,
        false,
    )
    .await;
    let answer = hub
        .http
        .post(
            "/_hubmock/repositories/acme/app/push?wait=finished&timeout_ms=10000",
            json!({"tag": "v1"}),
        )
        .await
        .expect(200);
    assert_eq!(answer["finished"], true, "{answer:#}");
    // Answered only once the retry, 200ms after the answer, had been made too.
    let log = hub
        .api
        .deliveries(&DeliveryFilter::default())
        .await
        .unwrap();
    let kinds: Vec<Value> = log.iter().map(|r| fault(r)["kind"].clone()).collect();
    assert_eq!(
        kinds,
        [Value::Null, json!("duplicate"), json!("retry-after-answer")]
    );
}
