//! The chain rules, one behaviour per test, on runs driven without I/O.

use super::*;
use crate::model::pipeline::PipelineSpec;

fn pipeline(hooks: usize, expect_final_callback: bool) -> Pipeline {
    let urls: Vec<String> = (0..hooks).map(|i| format!("http://r/{i}")).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let mut spec = PipelineSpec::new("p", &urls);
    spec.expect_final_callback = Some(expect_final_callback);
    Pipeline::create(1, spec, "u", Timestamp::now())
}

fn start(hooks: usize, expect_final_callback: bool) -> (Run, Vec<Effect>) {
    let repo = RepoName::new("acme", "app").unwrap();
    let mut n = 0;
    Run::start(
        7,
        &RunStart {
            repository: &repo,
            push: PushEvent {
                tag: "latest".into(),
                pusher: "acme".into(),
                images: vec![],
                media_type: None,
                pushed_at: Timestamp::now(),
                extra: None,
            },
            default_format: PayloadFormat::Legacy,
            default_quirks: Default::default(),
            every_manifest: false,
            public_url: "http://hub",
            now: Timestamp::now(),
        },
        &pipeline(hooks, expect_final_callback),
        || {
            n += 1;
            format!("{n:032}")
        },
    )
}

fn answered(status: u16) -> Event<'static> {
    Event::Delivered {
        step: 0,
        result: DeliveryResult {
            status: Some(status),
            error: None,
            duration_ms: 1,
            response_body: None,
        },
    }
}

fn at(event: Event<'static>, step: usize) -> Event<'static> {
    match event {
        Event::Delivered { result, .. } => Event::Delivered { step, result },
        Event::Callback { body, .. } => Event::Callback { step, body },
        Event::CallbackTimedOut { .. } => Event::CallbackTimedOut { step },
        other => other,
    }
}

fn callback(step: usize, body: &str) -> Event<'static> {
    let verdict = Box::leak(Box::new(Callback::validate(body.as_bytes())));
    Event::Callback {
        step,
        body: verdict,
    }
}

fn statuses(run: &Run) -> Vec<StepStatus> {
    run.steps.iter().map(|s| s.status).collect()
}

const SUCCESS: &str = r#"{"state": "success"}"#;
const FAILURE: &str = r#"{"state": "failure"}"#;

#[test]
fn a_push_delivers_the_first_step_at_once() {
    let (run, effects) = start(3, true);
    assert_eq!(effects, vec![Effect::Deliver { step: 0 }]);
    use StepStatus::*;
    assert_eq!(statuses(&run), vec![AwaitingCallback, Waiting, Waiting]);
    assert_eq!(
        run.steps[0].callback_url,
        format!("http://hub/u/acme/app/hook/{}/", run.steps[0].hook_id)
    );
}

#[test]
fn the_next_step_is_delivered_only_after_a_successful_callback() {
    let (mut run, _) = start(2, true);
    assert_eq!(run.apply(answered(200), Timestamp::now()), Ok(vec![]));
    assert_eq!(run.steps[1].status, StepStatus::Waiting);
    let effects = run.apply(callback(0, SUCCESS), Timestamp::now()).unwrap();
    assert_eq!(effects, vec![Effect::Deliver { step: 1 }]);
    let effects = run.apply(callback(1, SUCCESS), Timestamp::now()).unwrap();
    assert_eq!(
        effects,
        vec![Effect::Finished {
            status: RunStatus::Success
        }]
    );
}

#[test]
fn a_callback_before_the_delivery_is_answered_is_accepted() {
    let (mut run, _) = start(1, true);
    assert!(run.delivery_in_flight(0));
    assert!(run.apply(callback(0, SUCCESS), Timestamp::now()).is_ok());
    assert_eq!(run.status, RunStatus::Success);
    // The late answer is recorded and changes nothing.
    assert_eq!(run.apply(answered(500), Timestamp::now()), Ok(vec![]));
    assert_eq!(run.status, RunStatus::Success);
    assert_eq!(run.steps[0].delivery.as_ref().unwrap().status, Some(500));
}

#[test]
fn a_failed_delivery_ends_the_run_with_error_and_skips_the_rest() {
    for status in [404, 500, 101] {
        let (mut run, _) = start(3, true);
        run.apply(answered(status), Timestamp::now()).unwrap();
        assert_eq!(run.status, RunStatus::Error);
        use StepStatus::*;
        assert_eq!(statuses(&run), vec![DeliveryFailed, Skipped, Skipped]);
    }
    let (mut run, _) = start(1, true);
    let refused = Event::Delivered {
        step: 0,
        result: DeliveryResult {
            status: None,
            error: Some("connection refused".into()),
            duration_ms: 0,
            response_body: None,
        },
    };
    run.apply(refused, Timestamp::now()).unwrap();
    assert_eq!(run.steps[0].status, StepStatus::DeliveryFailed);
}

#[test]
fn redirects_count_as_delivered() {
    let (mut run, _) = start(1, false);
    run.apply(answered(302), Timestamp::now()).unwrap();
    assert_eq!(run.status, RunStatus::Success);
}

#[test]
fn failure_and_error_callbacks_interrupt_the_chain() {
    for (body, status, step_status) in [
        (FAILURE, RunStatus::Failure, StepStatus::Failure),
        (r#"{"state": "error"}"#, RunStatus::Error, StepStatus::Error),
    ] {
        let (mut run, _) = start(3, true);
        run.apply(callback(0, SUCCESS), Timestamp::now()).unwrap();
        let effects = run.apply(callback(1, body), Timestamp::now()).unwrap();
        assert_eq!(effects, vec![Effect::Finished { status }]);
        use StepStatus::*;
        assert_eq!(statuses(&run), vec![Success, step_status, Skipped]);
    }
}

#[test]
fn without_a_final_callback_the_last_delivery_decides() {
    let (mut run, _) = start(2, false);
    run.apply(callback(0, SUCCESS), Timestamp::now()).unwrap();
    assert!(run.is_pending());
    let effects = run.apply(at(answered(204), 1), Timestamp::now()).unwrap();
    assert_eq!(
        effects,
        vec![Effect::Finished {
            status: RunStatus::Success
        }]
    );
    // With a final callback expected, the same answer decides nothing.
    let (mut run, _) = start(1, true);
    run.apply(answered(204), Timestamp::now()).unwrap();
    assert!(run.is_pending());
}

#[test]
fn without_a_final_callback_the_last_step_takes_no_callback() {
    let (mut run, _) = start(2, false);
    run.apply(callback(0, SUCCESS), Timestamp::now()).unwrap();
    assert_eq!(
        run.apply(callback(1, SUCCESS), Timestamp::now()),
        Err(Rejection::UpdateNotAllowed)
    );
    assert!(run.is_pending());
    // Its delivery's failure decides, whatever a receiver said first.
    run.apply(at(answered(500), 1), Timestamp::now()).unwrap();
    assert_eq!(run.status, RunStatus::Error);
}

#[test]
fn a_callback_is_accepted_once_and_only_while_awaited() {
    let (mut run, _) = start(2, true);
    assert_eq!(
        run.apply(callback(1, SUCCESS), Timestamp::now()),
        Err(Rejection::UpdateNotAllowed)
    );
    run.apply(callback(0, SUCCESS), Timestamp::now()).unwrap();
    assert_eq!(
        run.apply(callback(0, SUCCESS), Timestamp::now()),
        Err(Rejection::UpdateNotAllowed)
    );
}

#[test]
fn an_invalid_callback_changes_nothing_and_a_corrected_one_follows() {
    let (mut run, _) = start(1, true);
    let before = run.clone();
    let long = format!(
        r#"{{"state": "success", "description": "{}"}}"#,
        "x".repeat(256)
    );
    let body: &'static str = Box::leak(long.into_boxed_str());
    assert!(matches!(
        run.apply(callback(0, body), Timestamp::now()),
        Err(Rejection::Invalid(_))
    ));
    assert_eq!(run, before);
    assert!(run.apply(callback(0, SUCCESS), Timestamp::now()).is_ok());
}

#[test]
fn a_callback_timeout_ends_the_run_with_error() {
    let (mut run, _) = start(2, true);
    run.apply(at(Event::CallbackTimedOut { step: 0 }, 0), Timestamp::now())
        .unwrap();
    use StepStatus::*;
    assert_eq!(statuses(&run), vec![TimedOut, Skipped]);
    assert_eq!(run.status, RunStatus::Error);
    // A timer for a step that was already called back does nothing.
    let (mut run, _) = start(2, true);
    run.apply(callback(0, SUCCESS), Timestamp::now()).unwrap();
    assert_eq!(
        run.apply(Event::CallbackTimedOut { step: 0 }, Timestamp::now()),
        Ok(vec![])
    );
    assert!(run.is_pending());
}

#[test]
fn deleting_the_pipeline_cancels_a_pending_run_only() {
    let (mut run, _) = start(2, true);
    run.apply(Event::PipelineDeleted, Timestamp::now()).unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    use StepStatus::*;
    assert_eq!(statuses(&run), vec![Cancelled, Cancelled]);
    assert_eq!(
        run.apply(callback(0, SUCCESS), Timestamp::now()),
        Err(Rejection::UpdateNotAllowed)
    );
    let (mut done, _) = start(1, true);
    done.apply(callback(0, FAILURE), Timestamp::now()).unwrap();
    assert_eq!(
        done.apply(Event::PipelineDeleted, Timestamp::now()),
        Ok(vec![])
    );
    assert_eq!(done.status, RunStatus::Failure);
}

#[test]
fn a_send_arms_the_callback_timer_from_that_moment_and_keeps_its_deadline() {
    let (mut run, _) = start(2, true);
    let now = Timestamp::now();
    let sending = Event::Sending {
        step: 0,
        callback_timeout: Some(std::time::Duration::from_secs(30)),
    };
    let deadline = now.after(std::time::Duration::from_secs(30));
    assert_eq!(
        run.apply(sending, now),
        Ok(vec![
            Effect::Post { step: 0 },
            Effect::ArmTimer { step: 0, deadline }
        ])
    );
    assert_eq!(run.steps[0].callback_deadline, Some(deadline));
    // Without a timeout the step waits for ever: no timer.
    let (mut run, _) = start(1, true);
    let untimed = Event::Sending {
        step: 0,
        callback_timeout: None,
    };
    assert_eq!(run.apply(untimed, now), Ok(vec![Effect::Post { step: 0 }]));
}

#[test]
fn a_cancelled_run_sends_nothing_more() {
    let (mut run, _) = start(1, true);
    run.apply(Event::PipelineDeleted, Timestamp::now()).unwrap();
    let sending = Event::Sending {
        step: 0,
        callback_timeout: Some(std::time::Duration::from_secs(1)),
    };
    assert_eq!(run.apply(sending, Timestamp::now()), Ok(vec![]));
}

#[test]
fn a_last_step_without_a_final_callback_arms_no_timer() {
    let (mut run, _) = start(1, false);
    let sending = Event::Sending {
        step: 0,
        callback_timeout: Some(std::time::Duration::from_secs(1)),
    };
    assert_eq!(
        run.apply(sending, Timestamp::now()),
        Ok(vec![Effect::Post { step: 0 }])
    );
}

#[test]
fn deleting_a_pipeline_cancels_its_pending_runs_only() {
    let (pending, _) = start(1, true);
    let (mut done, _) = start(1, true);
    done.id = 8;
    done.apply(callback(0, SUCCESS), Timestamp::now()).unwrap();
    let (mut other, _) = start(1, true);
    other.id = 9;
    other.pipeline_id = 2;
    let runs = [pending, done, other];
    assert_eq!(cancelled_by_deleting(1, runs.iter()), vec![7]);
}

#[test]
fn a_push_that_names_nothing_gets_the_defaults() {
    let repo = crate::model::repository::Repository::new(&RepoName::new("acme", "app").unwrap());
    let event = push_event(PushRequest::default(), &repo, Timestamp::now(), made_up_id);
    assert_eq!(event.tag, "latest");
    assert_eq!(event.pusher, "acme");
    assert_eq!(event.images.len(), 1);
    let named = PushRequest {
        tag: Some("v1".into()),
        pusher: Some("ci".into()),
        images: vec!["sha256:abc".into()],
        media_type: None,
        extra: None,
    };
    let event = push_event(named, &repo, Timestamp::now(), made_up_id);
    assert_eq!((event.tag.as_str(), event.pusher.as_str()), ("v1", "ci"));
    assert_eq!(event.images, vec!["sha256:abc".to_owned()]);
}

#[test]
fn a_push_starts_one_run_per_pipeline_in_order() {
    let repo = RepoName::new("acme", "app").unwrap();
    let start = RunStart {
        repository: &repo,
        push: push_event(
            PushRequest::default(),
            &crate::model::repository::Repository::new(&repo),
            Timestamp::now(),
            made_up_id,
        ),
        default_format: PayloadFormat::Legacy,
        default_quirks: Default::default(),
        every_manifest: false,
        public_url: "http://hub",
        now: Timestamp::now(),
    };
    let mut second = pipeline(2, true);
    second.id = 2;
    let mut id = 10;
    let mut hook = 0;
    let runs = fan_out(
        &start,
        &[pipeline(1, true), second],
        || {
            id += 1;
            id
        },
        || {
            hook += 1;
            format!("{hook:032}")
        },
    );
    let ids: Vec<(u64, u64)> = runs.iter().map(|(r, _)| (r.id, r.pipeline_id)).collect();
    assert_eq!(ids, vec![(11, 1), (12, 2)]);
    assert!(runs
        .iter()
        .all(|(_, effects)| effects == &vec![Effect::Deliver { step: 0 }]));
}

fn made_up_id() -> String {
    "0".repeat(64)
}

fn timed_send(step: usize) -> Event<'static> {
    Event::Sending {
        step,
        callback_timeout: Some(std::time::Duration::from_secs(30)),
    }
}

#[test]
fn a_callback_disarms_its_steps_timer_before_the_next_step_is_delivered() {
    let (mut run, _) = start(2, true);
    let now = Timestamp::now();
    run.apply(timed_send(0), now).unwrap();
    assert_eq!(
        run.apply(callback(0, SUCCESS), now),
        Ok(vec![
            Effect::Disarm { step: 0 },
            Effect::Deliver { step: 1 }
        ])
    );
    run.apply(timed_send(1), now).unwrap();
    assert_eq!(
        run.apply(callback(1, SUCCESS), now),
        Ok(vec![
            Effect::Disarm { step: 1 },
            Effect::Finished {
                status: RunStatus::Success
            }
        ])
    );
    // A step called back before it was sent has no timer to disarm.
    let (mut early, _) = start(2, true);
    assert_eq!(
        early.apply(callback(0, SUCCESS), now),
        Ok(vec![Effect::Deliver { step: 1 }])
    );
}

#[test]
fn resuming_arms_a_timer_for_each_step_awaiting_its_callback_until_a_deadline() {
    let (mut run, _) = start(2, true);
    let now = Timestamp::now();
    assert_eq!(run.resume(), vec![], "step 1 is not sent yet: no deadline");
    run.apply(timed_send(0), now).unwrap();
    let deadline = now.after(std::time::Duration::from_secs(30));
    assert_eq!(run.resume(), vec![Effect::ArmTimer { step: 0, deadline }]);
    run.apply(callback(0, SUCCESS), now).unwrap();
    assert_eq!(run.resume(), vec![], "step 1 is delivered but not sent");
    run.apply(callback(1, SUCCESS), now).unwrap();
    assert_eq!(run.resume(), vec![], "the run is over");
}
