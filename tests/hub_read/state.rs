//! Tag records in the state document (`GET/PUT /_hubmock/state`) and across a reset.

use serde_json::{json, Value};

use super::{record, repo};
use crate::util::TestHub;

/// A hub with `acme/app` and tags `v1` (by the registry) and `v2` (by the control API).
async fn two_tags() -> TestHub {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    hub.hub
        .record_tag(&repo("acme/app"), record("v1", "1", 1_700_000_000.0, 42))
        .unwrap();
    hub.push("acme/app", "v2").await;
    hub
}

const V1: &str = "/v2/repositories/acme/app/tags/v1/";

#[tokio::test]
async fn tags_go_out_with_the_state_and_come_back_with_it() {
    let hub = two_tags().await;
    let state = hub.state().await;
    let tags = &state["repositories"][0]["tags"];
    assert_eq!(tags.as_array().map(Vec::len), Some(2), "{state:#}");
    let before = hub.http.get(V1).await.expect(200);
    hub.http
        .post("/_hubmock/reset", json!({}))
        .await
        .expect(200);
    hub.http.get(V1).await.expect(404);
    hub.http
        .put("/_hubmock/state", state.clone())
        .await
        .expect(200);
    assert_eq!(hub.http.get(V1).await.expect(200), before);
    assert_eq!(hub.state().await, state);
    // Another emulator takes it too, and a new tag there gets an id past the imported ones.
    let other = TestHub::start().await;
    other.http.put("/_hubmock/state", state).await.expect(200);
    assert_eq!(other.http.get(V1).await.expect(200), before);
    other.push("acme/app", "v3").await;
    let page = other
        .http
        .get("/v2/repositories/acme/app/tags/?ordering=name")
        .await
        .expect(200);
    let ids: Vec<u64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[2] > ids[0].max(ids[1]), "{ids:?}");
}

#[tokio::test]
async fn a_state_document_from_before_tags_still_imports() {
    let hub = two_tags().await;
    let mut state = hub.state().await;
    for entry in state["repositories"].as_array_mut().unwrap() {
        entry.as_object_mut().unwrap().remove("tags");
    }
    hub.http.put("/_hubmock/state", state).await.expect(200);
    let page = hub
        .http
        .get("/v2/repositories/acme/app/tags/")
        .await
        .expect(200);
    assert_eq!(page["count"], 0, "{page:#}");
    let repository = hub.http.get("/v2/repositories/acme/app/").await.expect(200);
    assert!(repository["last_updated"].is_null(), "{repository:#}");
}

#[tokio::test]
async fn a_state_document_with_a_broken_tag_is_refused_and_changes_nothing() {
    let hub = two_tags().await;
    let before = hub.state().await;
    let broken = |edit: fn(&mut Value)| {
        let mut state = before.clone();
        edit(&mut state["repositories"][0]["tags"]);
        state
    };
    for state in [
        broken(|tags| tags[0]["tag"] = json!("-bad")),
        broken(|tags| tags[1]["tag"] = json!("v1")),
        broken(|tags| tags[0]["digest"] = json!("")),
        broken(|tags| tags[0]["id"] = json!(1u64 << 60)),
        broken(|tags| tags[0]["images"] = json!("none")),
    ] {
        let body = hub.http.put("/_hubmock/state", state).await.expect(400);
        assert!(body.is_object(), "{body:#}");
    }
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_reset_forgets_the_tags() {
    let hub = two_tags().await;
    hub.http
        .post("/_hubmock/reset", json!({}))
        .await
        .expect(200);
    hub.repository("acme", "app").await;
    let page = hub
        .http
        .get("/v2/repositories/acme/app/tags/")
        .await
        .expect(200);
    assert_eq!(page["count"], 0, "{page:#}");
    // Tag ids keep counting, as run ids do.
    hub.push("acme/app", "v1").await;
    let tag = hub.http.get(V1).await.expect(200);
    assert!(tag["id"].as_u64().unwrap() > 2, "{tag:#}");
}
