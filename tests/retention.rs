//! Bounded memory: each pipeline keeps `--history-limit` runs, dropping its oldest finished
//! ones (never a pending one) when a push takes it past the limit; a dropped run is gone from
//! the control API, the Hub API's history, and the callback endpoint.

use hubmock::Config;
use serde_json::{json, Value};

use crate::util::{answering, TestHub};

const RUNS: &str = "/_hubmock/runs?repository=acme/app";
const HISTORY: &str = "/v2/repositories/acme/app/webhook_pipeline/p/history/";

fn with_history_limit(limit: usize) -> Config {
    Config::default().with_auth(false).with_history_limit(limit)
}

/// The ids of the runs an answer lists under `key`, as it lists them.
fn ids(body: &Value, key: &str) -> Vec<u64> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key:?} in {body:#}"))
        .iter()
        .map(|run| run["id"].as_u64().unwrap())
        .collect()
}

async fn control_api_ids(hub: &TestHub) -> Vec<u64> {
    ids(&hub.http.get(RUNS).await.expect(200), "runs")
}

async fn hub_api_ids(hub: &TestHub) -> Vec<u64> {
    let page = hub.http.get(HISTORY).await.expect(200);
    assert_eq!(
        page["count"].as_u64(),
        Some(ids(&page, "results").len() as u64)
    );
    ids(&page, "results")
}

fn id(run: &Value) -> u64 {
    run["id"].as_u64().unwrap()
}

#[tokio::test]
async fn a_pipeline_keeps_its_newest_runs_and_the_oldest_are_gone_with_their_hook_ids() {
    let hub = TestHub::with(with_history_limit(3)).await;
    let receiver = answering(200).await;
    hub.repository("acme", "app").await;
    // Without a final callback, the delivery's 200 ends each run.
    hub.pipeline("acme/app", "p", &[receiver.uri()], false)
        .await;
    let mut runs = Vec::new();
    for i in 0..5 {
        let run = hub.push("acme/app", &format!("v{i}")).await.remove(0);
        let run = hub.finished(&run).await;
        assert_eq!(run["status"], "success", "{run:#}");
        runs.push(run);
    }
    let newest: Vec<u64> = runs[2..].iter().rev().map(id).collect();
    assert_eq!(control_api_ids(&hub).await, newest);
    assert_eq!(hub_api_ids(&hub).await, newest);
    for dropped in &runs[..2] {
        hub.http
            .get(&format!("/_hubmock/runs/{}", id(dropped)))
            .await
            .expect(404);
    }
    // A kept run's step takes no more callbacks; the dropped run's hook id is unknown.
    let kept = hub.callback(&runs[2], 0, json!({"state": "success"})).await;
    assert_eq!(kept.expect(400), json!("Update not allowed"));
    let hook_id = runs[0]["steps"][0]["hook_id"].as_str().unwrap();
    let gone = hub.callback(&runs[0], 0, json!({"state": "success"})).await;
    assert_eq!(
        gone.expect(404)["detail"],
        format!("No webhook delivery has hook id '{hook_id}'.")
    );
}

#[tokio::test]
async fn pending_runs_are_never_dropped_and_go_once_finished_at_the_next_push() {
    let hub = TestHub::with(with_history_limit(1)).await;
    let receiver = answering(200).await;
    hub.repository("acme", "app").await;
    // With a final callback, each run stays pending until its callback.
    hub.pipeline("acme/app", "p", &[receiver.uri()], true).await;
    let first = hub.push("acme/app", "v1").await.remove(0);
    let second = hub.push("acme/app", "v2").await.remove(0);
    let both = vec![id(&second), id(&first)];
    assert_eq!(control_api_ids(&hub).await, both);
    assert_eq!(hub_api_ids(&hub).await, both);

    for run in [&first, &second] {
        let run = hub.delivered(run, 0).await;
        hub.callback(&run, 0, json!({"state": "success"}))
            .await
            .expect(200);
        assert_eq!(hub.finished(&run).await["status"], "success");
    }
    // Finished, they are still kept until a push takes the pipeline past the limit.
    assert_eq!(control_api_ids(&hub).await, both);
    let third = hub.push("acme/app", "v3").await.remove(0);
    assert_eq!(control_api_ids(&hub).await, [id(&third)]);
    assert_eq!(hub_api_ids(&hub).await, [id(&third)]);
    // The pending one left takes its callback as ever.
    let third = hub.delivered(&third, 0).await;
    hub.callback(&third, 0, json!({"state": "success"}))
        .await
        .expect(200);
}

#[tokio::test]
async fn the_oldest_finished_run_goes_first_while_an_older_one_is_still_pending() {
    let hub = TestHub::with(with_history_limit(2)).await;
    let receiver = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "p", &[receiver.uri()], true).await;
    let first = hub.push("acme/app", "v1").await.remove(0);
    let second = hub.push("acme/app", "v2").await.remove(0);
    // The second finishes, the first is still pending.
    let second = hub.delivered(&second, 0).await;
    hub.callback(&second, 0, json!({"state": "success"}))
        .await
        .expect(200);
    assert_eq!(hub.finished(&second).await["status"], "success");
    let third = hub.push("acme/app", "v3").await.remove(0);
    assert_eq!(control_api_ids(&hub).await, [id(&third), id(&first)]);
    assert_eq!(hub_api_ids(&hub).await, [id(&third), id(&first)]);
    // Finished now, the first is the oldest finished one: the next push takes it.
    let first = hub.delivered(&first, 0).await;
    hub.callback(&first, 0, json!({"state": "success"}))
        .await
        .expect(200);
    assert_eq!(hub.finished(&first).await["status"], "success");
    let fourth = hub.push("acme/app", "v4").await.remove(0);
    assert_eq!(control_api_ids(&hub).await, [id(&fourth), id(&third)]);
}

#[tokio::test]
async fn each_pipeline_keeps_its_own_runs() {
    let hub = TestHub::with(with_history_limit(2)).await;
    let receiver = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "p", &[receiver.uri()], false)
        .await;
    hub.pipeline("acme/app", "q", &[receiver.uri()], false)
        .await;
    for i in 0..3 {
        for run in hub.push("acme/app", &format!("v{i}")).await {
            hub.finished(&run).await;
        }
    }
    let q = ids(
        &hub.http
            .get(&format!("{RUNS}&pipeline=q"))
            .await
            .expect(200),
        "runs",
    );
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(hub_api_ids(&hub).await.len(), 2);
    assert_eq!(control_api_ids(&hub).await.len(), 4);
}
