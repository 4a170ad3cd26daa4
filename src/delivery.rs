//! The outbound engine: takes the deliveries the store queues, POSTs each in a task of its own
//! (so a slow receiver delays only its own step), and reports the outcome back to the store.
//! It also carries out the callback timers of R9 that the chain arms and disarms.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use base64::prelude::{Engine as _, BASE64_STANDARD};

use crate::client::HttpClient;
use crate::faults::{FaultKind, FaultNote, Hits};
use crate::logging;
use crate::model::hook_url;
use crate::model::repository::RepoName;
use crate::model::run::DeliveryResult;
use crate::model::time::Timestamp;
use crate::store::{DeliveryRecord, Dispatch, Store, Work};

/// How much of a receiver's answer is kept (R11).
pub const RESPONSE_BODY_LIMIT: usize = 4096;

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("hubmock/", env!("CARGO_PKG_VERSION"));

/// The header every delivery carries, `{instance}/{run}/{step}`, so that hubmock recognises
/// its own deliveries when a hook URL points back at it and refuses to act on them (a push
/// endpoint as a hook URL would otherwise start runs without bound).
pub const DELIVERY_HEADER: &str = "x-hubmock-delivery";

/// Runs the engine until `cancel` fires: every queued delivery gets a task on `tracker`; the
/// callback timers live in the engine itself, starting with those of the state as it finds it
/// ([`Store::resume`]). The engine decides nothing: the chain ([`crate::model::chain`]) said
/// what to do.
pub async fn run(
    store: Store,
    mut queue: mpsc::UnboundedReceiver<Work>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    // Made on the first delivery, not at start: reading the platform's trust store takes
    // milliseconds a test suite starting hubmock would wait for. The server checked the TLS
    // settings before it started ([`crate::server::prepare`]).
    let client: Arc<tokio::sync::OnceCell<HttpClient>> = Arc::default();
    // At most this many deliveries in flight to one host: a burst of pushes reuses pooled
    // connections instead of opening one socket per delivery (and running out of them), and
    // a receiver that hangs holds up only its own host's queue.
    let mut per_host: HashMap<String, Arc<Semaphore>> = HashMap::new();
    // Every armed callback timer, in one structure and one sleep: a timer is gone the moment
    // its step's wait ends, so a week-long process holds one entry per step still waiting.
    let mut timers = Timers::default();
    let alarm = tokio::time::sleep_until(Instant::now());
    tokio::pin!(alarm);
    // Deliveries a fault plan holds back for a newer push to overtake (`out-of-order`), one
    // per step of a pipeline, with the time each is let go regardless.
    let plan = store.config().fault_plan.clone();
    let mut held: HashMap<(u64, usize), Held> = HashMap::new();
    let release = tokio::time::sleep_until(Instant::now());
    tokio::pin!(release);
    // The state may already hold steps awaiting their callback (loaded after a restart).
    store.resume();
    loop {
        let next = timers.next_deadline();
        if let Some(at) = next {
            if alarm.deadline() != at {
                alarm.as_mut().reset(at);
            }
        }
        let next_release = held.values().map(|h| h.until).min();
        if let Some(at) = next_release {
            if release.deadline() != at {
                release.as_mut().reset(at);
            }
        }
        let work = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = &mut release, if next_release.is_some() => {
                // Nothing overtook them in time: they go now, late.
                let now = Instant::now();
                let due: Vec<(u64, usize)> =
                    held.iter().filter(|(_, h)| h.until <= now).map(|(k, _)| *k).collect();
                for key in due {
                    let held = held.remove(&key).expect("listed");
                    let sender = sender(&store, &client, &mut per_host, &held.delivery.dispatch);
                    tracker.spawn(sender.send(held.delivery, None));
                }
                continue;
            }
            _ = &mut alarm, if next.is_some() => {
                for (run_id, step, hook_id) in timers.expired(Instant::now()) {
                    store.callback_timed_out(run_id, step, &hook_id);
                }
                store.set_armed_timers(timers.len());
                continue;
            }
            next = queue.recv() => match next {
                Some(work) => work,
                None => return,
            },
        };
        let dispatch = match work {
            Work::Deliver(dispatch) => *dispatch,
            Work::ArmTimer {
                run_id,
                step,
                hook_id,
                deadline,
            } => {
                // The deadline is wall-clock (it is kept on the step); the wait is tokio's, so
                // tests on a paused clock move it.
                let at = Instant::now() + deadline.since(Timestamp::now());
                timers.arm(run_id, step, hook_id, at);
                store.set_armed_timers(timers.len());
                continue;
            }
            Work::Disarm {
                run_id,
                step,
                hook_id,
            } => {
                timers.disarm(run_id, step, &hook_id);
                store.set_armed_timers(timers.len());
                continue;
            }
            Work::Finished { run_id } => {
                timers.finish(run_id);
                store.set_armed_timers(timers.len());
                continue;
            }
            Work::Forget => {
                timers = Timers::default();
                store.set_armed_timers(0);
                // Their runs are gone.
                held.clear();
                continue;
            }
        };
        let hits = plan.as_ref().map_or_else(Hits::default, |plan| {
            plan.hits(
                &dispatch.repository,
                &dispatch.pipeline.0,
                dispatch.run_id,
                dispatch.step,
            )
        });
        let key = (dispatch.pipeline.1, dispatch.step);
        let mut delivery = Planned {
            dispatch,
            hits,
            overtaken_by: None,
            held: false,
            queued: Instant::now(),
        };
        // A held delivery of this step goes right after this one has been answered.
        if let Some(mut held) = held.remove(&key) {
            held.delivery.overtaken_by = Some(delivery.dispatch.run_id);
            let (answered, after) = tokio::sync::oneshot::channel();
            let first = sender(&store, &client, &mut per_host, &delivery.dispatch);
            tracker.spawn(first.send(delivery, Some(answered)));
            let second = sender(&store, &client, &mut per_host, &held.delivery.dispatch);
            let until = held.until;
            tracker.spawn(async move {
                // Once the newer one has been answered (or dropped), or its time is up.
                tokio::select! {
                    _ = after => {}
                    _ = tokio::time::sleep_until(until) => {}
                }
                second.send(held.delivery, None).await;
            });
            continue;
        }
        if let Some(within) = delivery.hits.out_of_order.take() {
            delivery.held = true;
            // A library caller's plan is not checked: no duration may overflow the clock.
            let until = Instant::now()
                .checked_add(within)
                .unwrap_or_else(|| Instant::now() + crate::faults::MAX_DELAY);
            held.insert(key, Held { delivery, until });
            continue;
        }
        let sender = sender(&store, &client, &mut per_host, &delivery.dispatch);
        tracker.spawn(sender.send(delivery, None));
    }
}

/// A delivery with the faults its plan chose for it.
struct Planned {
    dispatch: Dispatch,
    hits: Hits,
    /// Out of order: the run whose delivery went first.
    overtaken_by: Option<u64>,
    /// Whether it was held back for a newer push (`out-of-order`).
    held: bool,
    /// When the engine took it (a held one's wait counts from here).
    queued: Instant,
}

/// A delivery held back for a newer push to overtake it, until `until` at the latest.
struct Held {
    delivery: Planned,
    until: Instant,
}

/// What a delivery task needs: the store, the client, its host's slots.
struct Sender {
    store: Store,
    client: Arc<tokio::sync::OnceCell<HttpClient>>,
    limit: Arc<Semaphore>,
}

/// The sender of a delivery to `dispatch.url`: at most [`MAX_IN_FLIGHT_PER_HOST`] in flight to
/// its host.
fn sender(
    store: &Store,
    client: &Arc<tokio::sync::OnceCell<HttpClient>>,
    per_host: &mut HashMap<String, Arc<Semaphore>>,
    dispatch: &Dispatch,
) -> Sender {
    let host = host_of(&dispatch.url);
    let limit = per_host
        .entry(host)
        .or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_HOST)))
        .clone();
    if per_host.len() > 1024 {
        // Forget the hosts nothing is being delivered to.
        per_host.retain(|_, slots| Arc::strong_count(slots) > 1);
    }
    Sender {
        store: store.clone(),
        client: client.clone(),
        limit,
    }
}

impl Sender {
    /// Makes one delivery (after its fault plan's delay), records it, tells `answered` (a
    /// delivery held back for it goes next), then makes the extra posts its plan chose.
    async fn send(self, delivery: Planned, answered: Option<tokio::sync::oneshot::Sender<()>>) {
        let Planned {
            dispatch,
            hits,
            overtaken_by,
            held,
            queued,
        } = delivery;
        let store = self.store;
        if let Some(delay) = hits.delay {
            tokio::time::sleep(delay.min(crate::faults::MAX_DELAY)).await;
        }
        // The semaphore is never closed, so acquiring only waits.
        let permit = self.limit.clone().acquire_owned().await;
        // R4, R9: the chain arms the step's callback timer from the moment it is sent.
        if !store.sending(&dispatch) {
            tracing::debug!(
                target: logging::DELIVERY,
                run = dispatch.run_id,
                step = dispatch.step,
                "delivery dropped: its run is over, reset or replaced"
            );
            return;
        }
        // Its "sending" record is on disk first (with --data-dir): after a crash the
        // delivery is known to have been in flight, and is never sent twice.
        if store.durable().await.is_err() {
            return;
        }
        tracing::debug!(
            target: logging::DELIVERY,
            run = dispatch.run_id,
            step = dispatch.step,
            url = %hook_url::redact(&dispatch.url),
            "sending delivery"
        );
        let marker = store.delivery_marker(&dispatch);
        let timeout = store.config().delivery_timeout;
        let client = self
            .client
            .get_or_init(|| async {
                let tls = store.config().client_tls.clone();
                let made = tokio::task::spawn_blocking(move || HttpClient::with_tls(&tls))
                    .await
                    .expect("making the client does not panic");
                made.unwrap_or_else(|err| {
                    tracing::error!(
                        target: logging::DELIVERY,
                        "{err}; https deliveries trust the platform's CAs only"
                    );
                    HttpClient::new()
                })
            })
            .await;
        let mut record = deliver(client, &dispatch, &marker, timeout).await;
        let held_ms = Some(queued.elapsed().as_millis() as u64);
        if held {
            // Held back for a newer push (which went first, if one came in time).
            record.fault = Some(FaultNote {
                kind: FaultKind::OutOfOrder,
                of: None,
                held_ms,
                overtaken_by,
            });
        } else if hits.delay.is_some() {
            record.fault = Some(FaultNote {
                kind: FaultKind::Delay,
                of: None,
                held_ms,
                overtaken_by: None,
            });
        }
        log_delivery(&record);
        let id = store.delivered(&dispatch, record, hits.extra_posts());
        if let Some(answered) = answered {
            let _ = answered.send(());
        }
        let Some(id) = id else { return };
        // Each extra post is made, logged as what it repeats, and recorded beside the step's
        // delivery (changing nothing else).
        let (store, dispatch, marker) = (&store, &dispatch, &marker);
        let extra = |post: Dispatch, kind| async move {
            let mut record = deliver(client, &post, marker, timeout).await;
            record.fault = Some(FaultNote {
                kind,
                of: Some(id),
                held_ms: None,
                overtaken_by: None,
            });
            log_delivery(&record);
            store.log_extra(dispatch, record);
        };
        if hits.duplicate {
            extra(dispatch.clone(), FaultKind::Duplicate).await;
        }
        if let Some(claims) = &hits.forged {
            let forged = forge(dispatch, claims.as_deref(), store.public_url());
            extra(forged, FaultKind::Forged).await;
        }
        if let Some(after) = hits.retry_after {
            // The slot is not kept while waiting.
            drop(permit);
            tokio::time::sleep(after.min(crate::faults::MAX_DELAY)).await;
            let _permit = self.limit.acquire_owned().await;
            extra(dispatch.clone(), FaultKind::RetryAfterAnswer).await;
        }
    }
}

/// The forged post of a delivery: its payload for repository `claims` (default
/// `forged/<name>`), with a callback URL no step has.
fn forge(dispatch: &Dispatch, claims: Option<&str>, public_url: &str) -> Dispatch {
    let mut forged = dispatch.clone();
    let repository = &mut forged.payload.repository;
    let claimed = claims
        .and_then(|c| RepoName::parse(c).ok())
        .or_else(|| RepoName::new("forged", &repository.name).ok())
        .unwrap_or_else(|| RepoName::new("forged", "app").expect("a valid name"));
    repository.namespace = claimed.namespace.clone();
    repository.name = claimed.name.clone();
    repository.owner = claimed.namespace.clone();
    repository.repo_name = claimed.repo_name();
    repository.repo_url = format!("{public_url}{}", claimed.hub_path());
    forged.payload.callback_url =
        crate::model::chain::callback_url(public_url, &claimed, &crate::model::ids::new_hook_id());
    forged
}

/// One line per delivery made. Its URL is the log record's, with any password as `***`;
/// neither the payload nor the headers are logged.
fn log_delivery(record: &DeliveryRecord) {
    let result = &record.result;
    let message = if result.status.is_some() {
        "delivery answered"
    } else {
        "delivery got no answer"
    };
    tracing::info!(
        target: logging::DELIVERY,
        run = record.run_id,
        step = record.step,
        url = %record.url,
        status = result.status,
        error = result.error.as_deref(),
        elapsed_ms = result.duration_ms,
        "{message}"
    );
}

/// The armed callback timers (R9), each named by its run, step and hook id (a reset or an
/// import may reuse a run id), ordered by deadline so the engine sleeps until the earliest.
#[derive(Default)]
struct Timers {
    /// (run, step, hook id) -> deadline.
    by_step: BTreeMap<(u64, usize, String), Instant>,
    /// The same timers, earliest first.
    by_deadline: BTreeSet<(Instant, u64, usize, String)>,
}

impl Timers {
    /// Arms the step's timer for `at`, replacing the one it had.
    fn arm(&mut self, run_id: u64, step: usize, hook_id: String, at: Instant) {
        if let Some(old) = self.by_step.insert((run_id, step, hook_id.clone()), at) {
            self.by_deadline
                .remove(&(old, run_id, step, hook_id.clone()));
        }
        self.by_deadline.insert((at, run_id, step, hook_id));
    }

    /// Disarms the step's timer, if it has one.
    fn disarm(&mut self, run_id: u64, step: usize, hook_id: &str) {
        let key = (run_id, step, hook_id.to_owned());
        if let Some(at) = self.by_step.remove(&key) {
            let (run_id, step, hook_id) = key;
            self.by_deadline.remove(&(at, run_id, step, hook_id));
        }
    }

    /// Disarms every timer of the run.
    fn finish(&mut self, run_id: u64) {
        let start = (run_id, 0, String::new());
        let of_run: Vec<_> = self
            .by_step
            .range(start..)
            .take_while(|((run, _, _), _)| *run == run_id)
            .map(|((_, step, hook_id), _)| (*step, hook_id.clone()))
            .collect();
        for (step, hook_id) in of_run {
            self.disarm(run_id, step, &hook_id);
        }
    }

    /// When the earliest timer is due.
    fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, ..)| *at)
    }

    /// Takes out the timers due by `now`, earliest first.
    fn expired(&mut self, now: Instant) -> Vec<(u64, usize, String)> {
        let mut due = Vec::new();
        while self.by_deadline.first().is_some_and(|(at, ..)| *at <= now) {
            let (_, run_id, step, hook_id) = self.by_deadline.pop_first().expect("checked");
            self.by_step.remove(&(run_id, step, hook_id.clone()));
            due.push((run_id, step, hook_id));
        }
        due
    }

    /// How many timers are armed.
    fn len(&self) -> usize {
        self.by_step.len()
    }
}

/// Deliveries in flight to one host at most.
pub const MAX_IN_FLIGHT_PER_HOST: usize = 64;

/// The `host:port` a URL names (the whole URL if it does not parse; its delivery fails anyway).
fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().to_ascii_lowercase()))
        .unwrap_or_else(|| url.to_owned())
}

/// POSTs one payload and describes how it went. Never fails: every problem is a result.
async fn deliver(
    client: &HttpClient,
    dispatch: &Dispatch,
    marker: &str,
    timeout: Duration,
) -> DeliveryRecord {
    let json = dispatch.payload.to_json();
    // Credentials in the hook URL go as Basic auth, as HTTP clients send them.
    let target = hook_url::target(&dispatch.url);
    // Every header is set here, so the log shows the request exactly as it was sent (but for
    // a password, which is never shown).
    let mut headers = BTreeMap::new();
    let authorization = target.credentials.as_ref().map(|(user, password)| {
        headers.insert("authorization".to_owned(), "Basic ***".to_owned());
        format!(
            "Basic {}",
            BASE64_STANDARD.encode(format!("{user}:{password}"))
        )
    });
    headers.insert("accept".to_owned(), "*/*".to_owned());
    headers.insert("content-type".to_owned(), "application/json".to_owned());
    headers.insert("content-length".to_owned(), json.get().len().to_string());
    if let Ok(uri) = target.url.parse::<http::Uri>() {
        if let Some(authority) = uri.authority() {
            headers.insert("host".to_owned(), authority.as_str().to_owned());
        }
    }
    headers.insert("user-agent".to_owned(), USER_AGENT.to_owned());
    headers.insert(DELIVERY_HEADER.to_owned(), marker.to_owned());
    let sent = Timestamp::now();
    let started = tokio::time::Instant::now();
    let body = Bytes::copy_from_slice(json.get().as_bytes());
    // The log's copy says `Basic ***`; the request carries the real one.
    let headers_list: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k.as_str() != "authorization")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(authorization.as_deref().map(|a| ("authorization", a)))
        .collect();
    let post = client.send(
        Method::POST,
        &target.url,
        &headers_list,
        body,
        RESPONSE_BODY_LIMIT,
    );
    let outcome = tokio::time::timeout(timeout, post).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let result = match outcome {
        Ok(Ok(answer)) => DeliveryResult {
            status: Some(answer.status),
            error: None,
            duration_ms,
            response_body: Some(String::from_utf8_lossy(&answer.body).into_owned()),
        },
        Ok(Err(error)) => DeliveryResult {
            status: None,
            error: Some(error),
            duration_ms,
            response_body: None,
        },
        Err(_) => DeliveryResult {
            status: None,
            error: Some(format!(
                "no answer within the delivery timeout of {}",
                humantime::format_duration(timeout)
            )),
            duration_ms,
            response_body: None,
        },
    };
    dispatch.record(sent, headers, json, result)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::config::Config;
    use crate::model::pipeline::PipelineSpec;
    use crate::model::push::PushRequest;
    use crate::model::repository::{RepoName, Repository};
    use crate::model::run::RunStatus;
    use crate::net::AcceptLoop;
    use crate::store::WaitFor;

    const SUCCESS: &[u8] = br#"{"state": "success"}"#;

    #[test]
    fn timers_come_out_earliest_first_and_go_when_disarmed() {
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.arm(1, 0, "a".into(), now + Duration::from_secs(30));
        timers.arm(2, 0, "b".into(), now + Duration::from_secs(10));
        timers.arm(2, 1, "c".into(), now + Duration::from_secs(20));
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_secs(10)));
        // Armed again: the new deadline replaces the old one.
        timers.arm(2, 0, "b".into(), now + Duration::from_secs(40));
        assert_eq!(timers.len(), 3);
        timers.disarm(2, 1, "other hook");
        assert_eq!(
            timers.len(),
            3,
            "a timer of another hook id is not this step's"
        );
        timers.disarm(2, 1, "c");
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_secs(30)));
        assert_eq!(timers.expired(now + Duration::from_secs(29)), vec![]);
        assert_eq!(
            timers.expired(now + Duration::from_secs(60)),
            vec![(1, 0, "a".to_owned()), (2, 0, "b".to_owned())]
        );
        assert_eq!(timers.len(), 0);
        timers.arm(3, 0, "d".into(), now);
        timers.arm(3, 1, "e".into(), now);
        timers.arm(4, 0, "f".into(), now);
        timers.finish(3);
        assert_eq!(timers.expired(now), vec![(4, 0, "f".to_owned())]);
        assert_eq!(timers.next_deadline(), None);
    }

    /// Lets the engine take the work queued so far.
    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_callback_disarms_its_steps_timer_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = AcceptLoop::spawn(listener, |mut stream, _| async move {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        })
        .unwrap();
        let hook = format!("http://{}/", receiver.address());
        let config = Config::default().with_callback_timeout(Some(Duration::from_secs(30)));
        let (store, queue) = Store::new(config, "http://hub");
        let repo = RepoName::new("acme", "app").unwrap();
        store.create_repository(Repository::new(&repo)).unwrap();
        let spec = PipelineSpec::new("p", &[hook.as_str(), hook.as_str()]);
        store.create_pipeline(&repo, spec, "acme").unwrap();
        let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
        tokio::spawn(run(store.clone(), queue, tracker, cancel.clone()));

        let id = store.push(&repo, PushRequest::default()).unwrap()[0].id();
        let wait = Duration::from_secs(5);
        let run_now = store.wait_for_run(id, WaitFor::Delivered(0), wait).await;
        let hook_0 = run_now.unwrap().steps()[0].hook_id.clone();
        settle().await;
        assert_eq!(store.armed_timers(), 1, "step 1 awaits its callback");

        // Called back early: step 1's timer goes now, not in 30 s; step 2 gets its own.
        store.callback(&repo, &hook_0, SUCCESS).unwrap();
        let run_now = store.wait_for_run(id, WaitFor::Delivered(1), wait).await;
        let hook_1 = run_now.unwrap().steps()[1].hook_id.clone();
        settle().await;
        assert_eq!(store.armed_timers(), 1, "only step 2 awaits its callback");

        store.callback(&repo, &hook_1, SUCCESS).unwrap();
        settle().await;
        assert_eq!(store.armed_timers(), 0, "no step awaits a callback");
        assert_eq!(store.run(id).unwrap().status(), RunStatus::Success);
        cancel.cancel();
    }
}
