//! Time-dependent rules on tokio's paused clock: the emulator, its receivers and the test all
//! run on the test's runtime, so the clock moves only when the test (or an idle runtime) moves
//! it, and no test waits in real time.

use std::time::Duration;

use hubmock::model::time::Timestamp;
use hubmock::{Config, Hub, PipelineSpec, PushRequest, RepoName, RunStatus, StepStatus};

use crate::util::{http_response, Http, RawReceiver};

/// The emulator on the current (paused) runtime, with one pipeline on `acme/app`; dropped, it
/// shuts down.
struct PausedHub {
    hub: Hub,
    repo: RepoName,
}

impl PausedHub {
    async fn start(config: Config, hooks: &[String]) -> PausedHub {
        let hub = Hub::builder()
            .config(config)
            .on_current_runtime()
            .start()
            .await;
        let repo = RepoName::new("acme", "app").unwrap();
        hub.create_repository("acme", "app").unwrap();
        let urls: Vec<&str> = hooks.iter().map(String::as_str).collect();
        hub.create_pipeline(&repo, PipelineSpec::new("p", &urls))
            .unwrap();
        PausedHub { hub, repo }
    }

    fn push(&self) -> u64 {
        self.hub
            .push_with(&self.repo, PushRequest::default())
            .unwrap()[0]
            .id()
    }
}

async fn answering_200() -> RawReceiver {
    RawReceiver::start(|_| async { Some(http_response(200, "")) }).await
}

#[tokio::test(start_paused = true)]
async fn a_step_whose_callback_does_not_come_in_time_times_out() {
    let (a, b) = (answering_200().await, answering_200().await);
    let config = Config::default().with_callback_timeout(Some(Duration::from_secs(30)));
    let hub = PausedHub::start(config, &[a.url(), b.url()]).await;
    let id = hub.push();
    let run = hub
        .hub
        .wait_for_delivery(id, 0, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(run.steps()[0].status, StepStatus::AwaitingCallback);

    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(hub.hub.run(id).unwrap().status(), RunStatus::Pending);

    tokio::time::advance(Duration::from_secs(2)).await;
    let run = hub
        .hub
        .wait_for_run(id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(run.status(), RunStatus::Error);
    let statuses: Vec<_> = run.steps().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::TimedOut, StepStatus::Skipped]);
    // A callback after the timeout is refused.
    let late = hub.hub.callback(
        &hub.repo,
        &run.steps()[0].hook_id,
        br#"{"state": "success"}"#,
    );
    assert_eq!(late.unwrap_err(), hubmock::Error::UpdateNotAllowed);
}

#[tokio::test(start_paused = true)]
async fn a_callback_in_time_stops_the_timer() {
    let a = answering_200().await;
    let config = Config::default().with_callback_timeout(Some(Duration::from_secs(30)));
    let hub = PausedHub::start(config, &[a.url()]).await;
    let id = hub.push();
    let run = hub.hub.run(id).unwrap();
    tokio::time::advance(Duration::from_secs(29)).await;
    hub.hub
        .callback(
            &hub.repo,
            &run.steps()[0].hook_id,
            br#"{"state": "success"}"#,
        )
        .unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    let run = hub
        .hub
        .wait_for_run(id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(run.status(), RunStatus::Success);
}

#[tokio::test(start_paused = true)]
async fn without_a_callback_timeout_a_run_waits_for_ever() {
    let a = answering_200().await;
    let hub = PausedHub::start(Config::default(), &[a.url()]).await;
    let id = hub.push();
    hub.hub
        .wait_for_delivery(id, 0, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(30 * 24 * 3600)).await;
    let run = hub.hub.run(id).unwrap();
    assert_eq!(run.status(), RunStatus::Pending);
    assert_eq!(run.steps()[0].status, StepStatus::AwaitingCallback);
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_never_answers_fails_its_step_at_the_delivery_timeout() {
    let hanging = RawReceiver::start(|_| std::future::pending()).await;
    let config = Config::default().with_delivery_timeout(Duration::from_secs(10));
    let hub = PausedHub::start(config, &[hanging.url()]).await;
    let id = hub.push();
    let before = tokio::time::Instant::now();
    let run = hub
        .hub
        .wait_for_run(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(run.status(), RunStatus::Error);
    assert_eq!(run.steps()[0].status, StepStatus::DeliveryFailed);
    let delivery = run.steps()[0].delivery.as_ref().unwrap();
    assert!(
        delivery
            .error
            .as_deref()
            .unwrap()
            .contains("delivery timeout of 10s"),
        "{delivery:?}"
    );
    assert_eq!(
        tokio::time::Instant::now() - before,
        Duration::from_secs(10)
    );
}

#[tokio::test(start_paused = true)]
async fn the_long_poll_answers_the_pending_run_when_its_time_is_up() {
    let hanging = RawReceiver::start(|_| std::future::pending()).await;
    let config = Config::default().with_delivery_timeout(Duration::from_secs(3600));
    let hub = PausedHub::start(config, &[hanging.url()]).await;
    let id = hub.push();
    let run = hub
        .hub
        .wait_for_run(id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(run.status(), RunStatus::Pending);
}

#[tokio::test(start_paused = true)]
async fn a_step_called_back_early_leaves_the_next_step_its_own_full_wait() {
    let (a, b) = (answering_200().await, answering_200().await);
    let config = Config::default().with_callback_timeout(Some(Duration::from_secs(30)));
    let hub = PausedHub::start(config, &[a.url(), b.url()]).await;
    let id = hub.push();
    let run = hub
        .hub
        .wait_for_delivery(id, 0, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    hub.hub
        .callback(
            &hub.repo,
            &run.steps()[0].hook_id,
            br#"{"state": "success"}"#,
        )
        .unwrap();
    hub.hub
        .wait_for_delivery(id, 1, Duration::from_secs(1))
        .await
        .unwrap();
    // Step 1's deadline (30 s) passes: nothing happens, its timer is gone.
    tokio::time::advance(Duration::from_secs(25)).await;
    assert_eq!(hub.hub.run(id).unwrap().status(), RunStatus::Pending);
    // Step 2 waits its own 30 s from its send.
    tokio::time::advance(Duration::from_secs(6)).await;
    let run = hub
        .hub
        .wait_for_run(id, Duration::from_secs(1))
        .await
        .unwrap();
    let statuses: Vec<_> = run.steps().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Success, StepStatus::TimedOut]);
}

/// R9 across an import: a step that awaits its callback keeps its deadline, and the importing
/// emulator (here one with no callback timeout of its own) times it out then.
#[tokio::test(start_paused = true)]
async fn an_imported_step_awaiting_its_callback_times_out_at_its_deadline() {
    let a = answering_200().await;
    // The source's own timer is far off: only the deadline written into the state counts.
    let config = Config::default().with_callback_timeout(Some(Duration::from_secs(3600)));
    let source = PausedHub::start(config, &[a.url()]).await;
    let id = source.push();
    source
        .hub
        .wait_for_delivery(id, 0, Duration::from_secs(1))
        .await
        .unwrap();
    let mut state = hubmock::ApiClient::new(&source.hub.uri())
        .export_state()
        .await
        .unwrap();
    drop(source);
    let deadline = Timestamp::now().after(Duration::from_secs(20));
    state["runs"][0]["steps"][0]["callback_deadline"] = deadline.to_string().into();

    let target = Hub::builder().on_current_runtime().start().await;
    hubmock::ApiClient::new(&target.uri())
        .import_state(&state)
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(15)).await;
    assert_eq!(target.run(id).unwrap().status(), RunStatus::Pending);
    tokio::time::advance(Duration::from_secs(10)).await;
    let run = target
        .wait_for_run(id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(run.status(), RunStatus::Error);
    assert_eq!(run.steps()[0].status, StepStatus::TimedOut);
}

/// A shutdown answers the long-polls in progress at once (as their timeout would) instead of
/// letting them hold the server for its grace period: a run's, the deliveries log's and a
/// History page's.
#[tokio::test(start_paused = true)]
async fn a_shutdown_answers_long_polls_at_once_instead_of_waiting_out_its_grace() {
    let grace = Duration::from_secs(30);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        shutdown_grace: grace,
        ..Config::default().with_auth(false)
    };
    let (shut_down, shutdown) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hubmock::server::run(listener, config, async {
        let _ = shutdown.await;
    }));

    // A run that awaits its callback for ever.
    let receiver = answering_200().await;
    let api = hubmock::ApiClient::new(&uri);
    let repo = RepoName::new("acme", "app").unwrap();
    api.create_repository("acme", "app").await.unwrap();
    let mut spec = PipelineSpec::new("p", &[receiver.url().as_str()]);
    spec.expect_final_callback = Some(true);
    let slug = api.create_pipeline(&repo, spec).await.unwrap().slug;
    let id = api.push(&repo, "v1").await.unwrap()[0].id();
    api.wait_for_delivery(id, 0, Duration::from_secs(5))
        .await
        .unwrap();
    let http = Http::new(&uri);
    let history = format!("/r/acme/app/~/settings/webhooks/{slug}/history/");
    let page = http.get(&history).await;
    assert_eq!(page.status.as_u16(), 200, "{page:?}");
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    let at = html.find("data-version=\"").unwrap() + 14;
    let version = &html[at..at + html[at..].find('"').unwrap()];

    let long = Duration::from_secs(300);
    let run_poll = tokio::spawn({
        let api = api.clone();
        async move { api.wait_for_run(id, long).await }
    });
    let log_poll = tokio::spawn({
        let api = api.clone();
        async move {
            let filter = hubmock::DeliveryFilter::default();
            api.wait_for_deliveries(&filter, 5, long).await
        }
    });
    let page_poll = tokio::spawn({
        let (http, url) = (http.clone(), format!("{history}?live={version}"));
        async move { http.get(&url).await }
    });
    // The clock moves only once every task waits: the three requests are being held.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!run_poll.is_finished() && !log_poll.is_finished() && !page_poll.is_finished());

    let stopping = tokio::time::Instant::now();
    shut_down.send(()).unwrap();
    server.await.unwrap().unwrap();
    let took = stopping.elapsed();
    assert!(took < grace / 10, "shutdown took {took:?}, grace {grace:?}");
    // Each was answered with what it had, as on its timeout.
    let run = run_poll.await.unwrap().unwrap();
    assert_eq!(run.status(), RunStatus::Pending);
    assert_eq!(log_poll.await.unwrap().unwrap().len(), 1);
    assert_eq!(page_poll.await.unwrap().status.as_u16(), 204);
}
