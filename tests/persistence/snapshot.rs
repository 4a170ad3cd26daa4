//! Snapshots: with a small `--snapshot-bytes`, the journal is rotated many times; a `kill -9`
//! after that loses nothing acknowledged, and the files each snapshot replaces are gone.

use serde_json::json;

use super::{file_names, serve_on};
use crate::util::{answering, Http, WAIT};

#[tokio::test]
async fn snapshots_rotate_the_journal_and_a_crash_after_them_loses_nothing() {
    let receiver = answering(200).await;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let args = ["--snapshot-bytes", "4096"];
    let serve = serve_on(&data, &args);
    let http = Http::new(&serve.url);
    let hook = format!("{}/hook", receiver.uri());
    let mut runs = Vec::new();
    let mut generations = Vec::new();
    for i in 0..40 {
        let name = format!("app{i}");
        http.post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": name}),
        )
        .await
        .expect(201);
        http.post(
            &format!("/v2/repositories/acme/{name}/webhook_pipeline/"),
            json!({
                "name": "deploy",
                "expect_final_callback": false,
                "webhooks": [{"name": "deploy", "hook_url": hook}],
            }),
        )
        .await
        .expect(201);
        let pushed = http
            .post(
                &format!("/_hubmock/repositories/acme/{name}/push"),
                json!({"tag": format!("v{i}")}),
            )
            .await
            .expect(202);
        let run = pushed["runs"][0].clone();
        let id = run["id"].as_u64().unwrap();
        let finished = http
            .get(&format!(
                "/_hubmock/runs/{id}?wait=finished&timeout_ms={}",
                WAIT.as_millis()
            ))
            .await
            .expect(200);
        assert_eq!(finished["status"], "success", "{finished:#}");
        runs.push(finished);
        generations.push(current(&data));
    }
    // Snapshots are written by a thread of their own: CURRENT moved on while the changes came.
    let last = *generations.last().unwrap();
    assert!(
        last >= 3,
        "CURRENT went {generations:?}; 40 pushes should fill 4 KiB journals several times"
    );
    serve.crash();

    let serve = serve_on(&data, &args);
    let http = Http::new(&serve.url);
    for (i, run) in runs.iter().enumerate() {
        let id = run["id"].as_u64().unwrap();
        let now = http.get(&format!("/_hubmock/runs/{id}")).await.expect(200);
        assert_eq!(
            without_port(now),
            without_port(run.clone()),
            "run {id} changed across the crash"
        );
        let pipeline = http
            .get(&format!(
                "/v2/repositories/acme/app{i}/webhook_pipeline/deploy/"
            ))
            .await
            .expect(200);
        assert_eq!(pipeline["webhooks"][0]["hook_url"], hook.as_str());
        http.get(&format!("/v2/repositories/acme/app{i}/tags/v{i}/"))
            .await
            .expect(200);
    }
    // Stopped cleanly first: the restarted server may be writing a snapshot of its own, and a
    // clean stop waits for it.
    drop(serve.stopped());
    // Nothing older than CURRENT's snapshot is left: one snapshot, and the journals from its
    // generation on (the one it starts, and one more if a snapshot was being written).
    let generation = current(&data);
    assert!(
        generation >= last,
        "CURRENT went back from {last} to {generation}"
    );
    let names = file_names(&data);
    for name in &names {
        if let Some(g) = name.strip_prefix("snapshot-") {
            assert_eq!(g.parse::<u64>().unwrap(), generation, "{names:?}");
        }
        if let Some(g) = name.strip_prefix("journal-") {
            assert!(g.parse::<u64>().unwrap() >= generation, "{names:?}");
        }
        assert!(!name.starts_with(".tmp-"), "{names:?}");
    }
    assert!(
        names.contains(&format!("snapshot-{generation}")),
        "{names:?}"
    );
    assert!(
        names.contains(&format!("journal-{generation}")),
        "{names:?}"
    );
}

/// The generation `CURRENT` names.
fn current(data: &std::path::Path) -> u64 {
    std::fs::read_to_string(data.join("CURRENT"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A run without its steps' callback URLs, which name the port of the process that shows them.
fn without_port(mut run: serde_json::Value) -> serde_json::Value {
    for step in run["steps"].as_array_mut().unwrap() {
        step.as_object_mut().unwrap().remove("callback_url");
    }
    run
}
