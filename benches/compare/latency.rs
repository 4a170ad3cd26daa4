//! The latency phase: pushes sent open loop, on a fixed schedule, each timed from its
//! scheduled send to its webhook's arrival at a receiver in this process.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hubmock::net::AcceptLoop;
use hyper::Method;

use crate::programs::start_hubmock;
use crate::support::{self, send, HttpClient};
use crate::table::{time, whole, Row};
use crate::{set_up_hubmock, Settings, PUSH_BODY, PUSH_PATH};

/// The header every delivery carries (README, "Security and limits"): `{instance}/{run}/{step}`.
const DELIVERY_HEADER: &str = "x-hubmock-delivery";

/// When each run's first webhook arrived, by run id.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

/// What came of the pushes after the warm-up.
#[derive(Default)]
struct Sent {
    /// The run id and scheduled send time of each push answered `202`.
    accepted: Vec<(u64, Instant)>,
    /// Pushes answered otherwise, or not at all.
    refused: u64,
}

/// Microseconds, 1 µs to a minute, three significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros().try_into().unwrap_or(u64::MAX)
}

/// Push to first delivery latency at a fixed offered load, against hubmock: the first
/// `COMPARE_WARMUP_SECS` of sends are not counted.
pub async fn latency(settings: &Settings, scratch: &Path) {
    let arrivals = Arrivals::default();
    let receiving = receiver(arrivals.clone());
    let hook = format!("http://{}/hook", receiving.address());
    let (_hubmock, url) = start_hubmock(scratch, &[]);
    let client = support::client(1024);
    set_up_hubmock(&client, &url, &[(vec![hook], false)]).await;

    let rate = settings.rate;
    let warm = rate * settings.warmup_secs;
    let total = warm + rate * settings.latency_secs;
    say!("{total} pushes at {rate}/s, open loop, the first {warm} not counted");
    let (sent, lateness) = open_loop(client, format!("{url}{PUSH_PATH}"), rate, warm, total).await;

    // Every accepted push's webhook, or 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let all_arrived = {
            let arrived = arrivals.lock().unwrap();
            sent.accepted
                .iter()
                .all(|(run, _)| arrived.contains_key(run))
        };
        if all_arrived {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = arrivals.lock().unwrap();
    let mut latencies = histogram();
    let mut lost = 0;
    for (run, scheduled) in &sent.accepted {
        match arrived.get(run) {
            Some(arrival) => {
                latencies.saturating_record(micros(arrival.saturating_duration_since(*scheduled)))
            }
            None => lost += 1,
        }
    }
    assert!(
        !latencies.is_empty(),
        "no push was delivered ({} refused, {lost} never delivered)",
        sent.refused
    );

    let at = |quantile: f64| Duration::from_micros(latencies.value_at_quantile(quantile));
    let what = format!(
        "push→first delivery, {} pushes/s offered, open loop",
        whole(rate as f64)
    );
    for (name, quantile) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
        Row {
            hubmock: time(at(quantile)),
            ..Row::new(format!("{what}: {name}"))
        }
        .print();
    }
    Row {
        hubmock: format!(
            "{} timed, {} refused, {lost} never delivered; max {}; the sends' own lateness p99 {} (in the figures)",
            whole(latencies.len() as f64),
            whole(sent.refused as f64),
            time(Duration::from_micros(latencies.max())),
            time(Duration::from_micros(lateness.value_at_quantile(0.99)))
        ),
        ..Row::new(format!("{what}: the run"))
    }
    .print();
}

/// A receiver that notes when each run's first delivery arrives (its head, before the body
/// is read) and answers 200.
fn receiver(arrivals: Arrivals) -> AcceptLoop {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    support::serve(
        listener,
        move |request: hyper::Request<hyper::body::Incoming>| {
            let at = Instant::now();
            let run = request
                .headers()
                .get(DELIVERY_HEADER)
                .and_then(|marker| marker.to_str().ok()?.split('/').nth(1)?.parse().ok());
            if let Some(run) = run {
                arrivals.lock().unwrap().entry(run).or_insert(at);
            }
            async move {
                let _ = request.into_body().collect().await;
                support::ok()
            }
        },
    )
}

/// Sends `total` pushes to `url`, the i-th scheduled at `i / rate` seconds from the start,
/// each in a task of its own that does not wait for any other; the first `warm` are not
/// counted. Answers what came of the others and how late each send was (µs).
///
/// A thread of its own keeps the schedule, sleeping to each send's time (tokio's timer has a
/// 1 ms grain: 5 sends at 5,000/s). A late send is timed from when it was due all the same,
/// so a stall anywhere, in hubmock or here, shows in the latencies instead of delaying the
/// sends that would have seen it (coordinated omission).
async fn open_loop(
    client: HttpClient,
    url: String,
    rate: u64,
    warm: u64,
    total: u64,
) -> (Sent, Histogram<u64>) {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let runtime = tokio::runtime::Handle::current();
    let scheduler = std::thread::spawn({
        let sent = sent.clone();
        move || {
            let start = Instant::now() + Duration::from_millis(10);
            let mut lateness = histogram();
            let mut sends = Vec::with_capacity(total as usize);
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                lateness.saturating_record(micros(due.elapsed()));
                let (client, url, sent) = (client.clone(), url.clone(), sent.clone());
                sends.push(runtime.spawn(async move {
                    let run = match send(&client, Method::POST, &url, PUSH_BODY).await {
                        Ok((202, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|answer| answer["runs"][0]["id"].as_u64()),
                        _ => None,
                    };
                    if i < warm {
                        return;
                    }
                    let mut sent = sent.lock().unwrap();
                    match run {
                        Some(run) => sent.accepted.push((run, due)),
                        None => sent.refused += 1,
                    }
                }));
            }
            (sends, lateness)
        }
    });
    let (sends, lateness) = tokio::task::spawn_blocking(move || scheduler.join().unwrap())
        .await
        .unwrap();
    for send in sends {
        send.await.unwrap();
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    (sent, lateness)
}
