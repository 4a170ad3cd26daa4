//! The test double's own promises: expectations checked when a `Hub` is dropped, and the
//! router refusing a wrong route before it reads a byte of the body.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use hubmock::{Expectation, Hub, PipelineSpec, RepoName, RunStatus};

use crate::util::{answering, WAIT};

/// Drops the hub and answers the panic message its expectations raised, if any.
fn drop_and_catch(hub: Hub) -> Option<String> {
    let result = catch_unwind(AssertUnwindSafe(move || drop(hub)));
    result.err().map(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

async fn hub_with_a_pipeline(hook: &str) -> (Hub, RepoName) {
    let hub = Hub::builder().start().await;
    let repo = RepoName::new("acme", "app").unwrap();
    hub.create_repository("acme", "app").unwrap();
    hub.create_pipeline(&repo, PipelineSpec::new("p", &[hook]))
        .unwrap();
    (hub, repo)
}

/// A hub whose one pipeline's receiver has answered the delivery of a push: the hub, the hook
/// URL, the run, and the receiver (kept alive by the caller).
async fn one_delivered_run() -> (Hub, String, hubmock::Run, wiremock::MockServer) {
    let receiver = answering(200).await;
    let hook = format!("{}/hook", receiver.uri());
    let (hub, repo) = hub_with_a_pipeline(&hook).await;
    let run = hub.push(&repo, "v1").unwrap().remove(0);
    hub.wait_for_delivery(run.id(), 0, WAIT).await.unwrap();
    (hub, hook, run, receiver)
}

#[tokio::test]
async fn expectations_that_hold_are_silent_when_the_hub_is_dropped() {
    let (hub, hook, run, _receiver) = one_delivered_run().await;
    hub.expect(Expectation::deliveries_to(&hook).times(1));
    hub.expect(Expectation::run_ends(run.id(), RunStatus::Pending));
    hub.verify();
    assert_eq!(drop_and_catch(hub), None);
}

#[tokio::test]
async fn an_unmet_delivery_count_panics_on_drop_naming_what_was_seen() {
    let (hub, hook, _run, _receiver) = one_delivered_run().await;
    hub.expect(Expectation::deliveries_to(&hook).times(2));
    hub.expect(Expectation::deliveries_to("http://127.0.0.1:9/elsewhere"));
    let message = drop_and_catch(hub).expect("the hub panics on drop");
    assert!(message.contains("2 expectation(s) not met"), "{message}");
    assert!(
        message.contains(&format!("expected exactly 2 deliveries to {hook}, saw 1")),
        "{message}"
    );
    assert!(
        message.contains("expected at least 1 deliveries to http://127.0.0.1:9/elsewhere, saw 0")
            && message.contains(&format!("(deliveries went to: {hook})")),
        "{message}"
    );
}

#[tokio::test]
async fn a_run_that_ends_otherwise_panics_on_drop_with_its_status_and_steps() {
    let (hub, repo) = hub_with_a_pipeline("http://127.0.0.1:9/hook").await;
    let run = hub.push(&repo, "v1").unwrap().remove(0);
    let run = hub.wait_for_run(run.id(), WAIT).await.unwrap();
    hub.expect(Expectation::run_ends(run.id(), RunStatus::Success));
    hub.expect(Expectation::run_ends(999_999, RunStatus::Success));
    let message = drop_and_catch(hub).expect("the hub panics on drop");
    assert!(
        message.contains(&format!(
            "expected run {} to end Success, it is Error (steps: DeliveryFailed)",
            run.id()
        )),
        "{message}"
    );
    assert!(
        message.contains("expected run 999999 to end Success: There is no run 999999."),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hub_on_the_current_runtime_follows_the_paused_clock() {
    let receiver =
        crate::util::RawReceiver::start(|_| async { Some(crate::util::http_response(200, "")) })
            .await;
    let hub = Hub::builder()
        .callback_timeout(Duration::from_secs(3600))
        .on_current_runtime()
        .start()
        .await;
    let repo = RepoName::new("acme", "app").unwrap();
    hub.create_repository("acme", "app").unwrap();
    hub.create_pipeline(&repo, PipelineSpec::new("p", &[receiver.url().as_str()]))
        .unwrap();
    let run = hub.push(&repo, "v1").unwrap().remove(0);
    hub.wait_for_delivery(run.id(), 0, Duration::from_secs(5))
        .await
        .unwrap();
    // An hour passes in no time: the callback timer fires.
    tokio::time::advance(Duration::from_secs(3601)).await;
    let run = hub
        .wait_for_run(run.id(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(run.status(), RunStatus::Error);
    assert!(run.steps()[0].callback_deadline.is_some());
}
