//! The control API `/_hubmock/` (SPEC section 6): health, repositories, pushes, runs and their
//! long-poll, deliveries, reset and state export/import, through real HTTP.

use std::time::Instant;

use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{answering, receiver, step_statuses, TestHub};

/// The ids of a `{"runs": [...]}` answer, in order.
fn run_ids(body: &Value) -> Vec<u64> {
    body["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs list: {body:#}"))
        .iter()
        .map(|run| run["id"].as_u64().expect("numeric run id"))
        .collect()
}

/// The id of a run as a number.
fn id(run: &Value) -> u64 {
    run["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id: {run:#}"))
}

// ---- health and documentation --------------------------------------------------------------

#[tokio::test]
async fn health_answers_ok_and_the_version() {
    let hub = TestHub::start().await;
    let body = hub.http.get("/_hubmock/health").await.expect(200);
    assert_eq!(
        body,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[tokio::test]
async fn openapi_document_is_json_with_openapi_and_paths() {
    let hub = TestHub::start().await;
    let resp = hub.http.get("/_hubmock/openapi.json").await;
    let document = resp.expect(200);
    assert!(document["openapi"].is_string(), "{resp:?}");
    assert!(document["paths"].is_object(), "{resp:?}");
}

// ---- repositories --------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_repository_sets_every_payload_field() {
    let hub = TestHub::start().await;
    let fields = json!({
        "description": "Short",
        "full_description": "# Long\n\nREADME",
        "dockerfile": "FROM scratch\n",
        "is_private": true,
        "is_trusted": true,
        "is_official": true,
        "owner": "someone",
        "star_count": 12,
        "comment_count": 3,
    });
    let mut body = fields.clone();
    body["namespace"] = json!("acme");
    body["name"] = json!("app");
    let created = hub
        .http
        .post("/_hubmock/repositories", body)
        .await
        .expect(201);
    assert_eq!(created["namespace"], "acme", "{created:#}");
    assert_eq!(created["name"], "app", "{created:#}");
    assert_eq!(created["status"], "Active", "{created:#}");
    assert!(created["date_created"].is_string(), "{created:#}");
    for (field, value) in fields.as_object().unwrap() {
        assert_eq!(&created[field], value, "{field}: {created:#}");
    }
    // Stored as answered.
    let listed = hub.http.get("/_hubmock/repositories").await.expect(200);
    assert_eq!(listed["repositories"], json!([created]));
}

#[tokio::test]
async fn a_new_repository_has_documented_defaults() {
    let hub = TestHub::start().await;
    let created = hub.repository("acme", "app").await;
    assert_eq!(created["is_private"], false, "{created:#}");
    assert_eq!(created["is_official"], false, "{created:#}");
    assert_eq!(created["owner"], "acme", "{created:#}");
    assert_eq!(created["status"], "Active", "{created:#}");
}

#[tokio::test]
async fn creating_an_existing_repository_answers_409() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let before = hub.state().await;
    let body = hub
        .http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "description": "again"}),
        )
        .await
        .expect(409);
    assert!(body["detail"].is_string(), "{body:#}");
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_bad_namespace_answers_400_naming_the_rule() {
    let hub = TestHub::start().await;
    let before = hub.state().await;
    for namespace in ["a", &"a".repeat(31), "Acme", "ac.me", "ac/me", ""] {
        let body = hub
            .http
            .post(
                "/_hubmock/repositories",
                json!({"namespace": namespace, "name": "app"}),
            )
            .await
            .expect(400);
        let message = body["namespace"][0].as_str().unwrap_or_default();
        assert!(
            message.contains("2 to 30 characters"),
            "namespace {namespace:?}: {body:#}"
        );
        assert!(body.get("name").is_none(), "{body:#}");
    }
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_bad_repository_name_answers_400_naming_the_rule() {
    let hub = TestHub::start().await;
    let before = hub.state().await;
    for name in ["", ".app", "-app", "App", "a b", "a/b", &"a".repeat(256)] {
        let body = hub
            .http
            .post(
                "/_hubmock/repositories",
                json!({"namespace": "acme", "name": name}),
            )
            .await
            .expect(400);
        let message = body["name"][0].as_str().unwrap_or_default();
        assert!(
            message.contains("1 to 255 characters") && message.contains("starting with"),
            "name {name:?}: {body:#}"
        );
    }
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_repository_without_a_namespace_answers_400_naming_the_field() {
    let hub = TestHub::start().await;
    let body = hub
        .http
        .post("/_hubmock/repositories", json!({"name": "app"}))
        .await
        .expect(400);
    assert_eq!(body, json!({"namespace": ["This field is required."]}));
}

#[tokio::test]
async fn a_library_repository_is_official_by_default() {
    let hub = TestHub::start().await;
    let official = hub.repository("library", "nginx").await;
    assert_eq!(official["is_official"], true, "{official:#}");
    let unofficial = hub.repository("acme", "nginx").await;
    assert_eq!(unofficial["is_official"], false, "{unofficial:#}");
}

#[tokio::test]
async fn repositories_are_listed() {
    let hub = TestHub::start().await;
    let empty = hub.http.get("/_hubmock/repositories").await.expect(200);
    assert_eq!(empty, json!({"repositories": []}));
    let app = hub.repository("acme", "app").await;
    let nginx = hub.repository("library", "nginx").await;
    let listed = hub.http.get("/_hubmock/repositories").await.expect(200);
    let listed = listed["repositories"].as_array().expect("repositories");
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(listed.contains(&app), "{listed:#?}");
    assert!(listed.contains(&nginx), "{listed:#?}");
}

// ---- pushes --------------------------------------------------------------------------------

#[tokio::test]
async fn a_push_answers_202_with_one_run_per_pipeline() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "first", &[r.uri()], true).await;
    hub.pipeline("acme/app", "second", &[r.uri(), r.uri()], true)
        .await;
    let body = hub
        .http
        .post("/_hubmock/repositories/acme/app/push", json!({"tag": "v1"}))
        .await
        .expect(202);
    let runs = body["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{body:#}");
    assert_ne!(runs[0]["id"], runs[1]["id"]);
    for (run, (slug, steps)) in runs.iter().zip([("first", 1), ("second", 2)]) {
        assert_eq!(run["repository"], "acme/app", "{run:#}");
        assert_eq!(run["pipeline"], slug, "{run:#}");
        assert_eq!(run["status"], "pending", "{run:#}");
        assert_eq!(run["finished"], Value::Null, "{run:#}");
        assert!(run["created"].is_string(), "{run:#}");
        assert_eq!(run["push"]["tag"], "v1", "{run:#}");
        assert!(run["push"]["pushed_at"].is_string(), "{run:#}");
        let steps_json = run["steps"].as_array().expect("steps");
        assert_eq!(steps_json.len(), steps, "{run:#}");
        for step in steps_json {
            assert_eq!(step["hook_url"], r.uri(), "{run:#}");
            assert!(step["callback_url"].is_string(), "{run:#}");
            assert!(step["webhook"].is_string(), "{run:#}");
        }
        // Only the first step is on its way.
        if steps == 2 {
            assert_eq!(step_statuses(run)[1], "waiting", "{run:#}");
        }
    }
}

#[tokio::test]
async fn a_push_to_a_repository_without_pipelines_starts_no_runs() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let body = hub
        .http
        .post("/_hubmock/repositories/acme/app/push", json!({"tag": "v1"}))
        .await
        .expect(202);
    assert_eq!(body, json!({"runs": []}));
    let runs = hub.http.get("/_hubmock/runs").await.expect(200);
    assert_eq!(runs, json!({"runs": []}));
}

#[tokio::test]
async fn a_push_to_an_unknown_repository_creates_it() {
    let hub = TestHub::start().await;
    let body = hub
        .http
        .post("/_hubmock/repositories/acme/new/push", json!({"tag": "v1"}))
        .await
        .expect(202);
    assert_eq!(body, json!({"runs": []}));
    let listed = hub.http.get("/_hubmock/repositories").await.expect(200);
    assert_eq!(listed["repositories"][0]["namespace"], "acme", "{listed:#}");
    assert_eq!(listed["repositories"][0]["name"], "new", "{listed:#}");
    hub.http.get("/v2/repositories/acme/new/").await.expect(200);
}

#[tokio::test]
async fn a_push_to_an_unknown_repository_answers_404_without_implicit_repositories() {
    let hub = TestHub::with(
        hubmock::Config::default()
            .with_auth(false)
            .with_implicit_repositories(false),
    )
    .await;
    let before = hub.state().await;
    let body = hub
        .http
        .post("/_hubmock/repositories/acme/new/push", json!({"tag": "v1"}))
        .await
        .expect(404);
    assert!(body["detail"].is_string(), "{body:#}");
    assert_eq!(hub.state().await, before);
    // A repository created explicitly still takes pushes.
    hub.repository("acme", "new").await;
    hub.push("acme/new", "v1").await;
}

#[tokio::test]
async fn a_push_to_a_bad_repository_name_answers_400() {
    let hub = TestHub::start().await;
    let before = hub.state().await;
    hub.http
        .post("/_hubmock/repositories/Acme/app/push", json!({"tag": "v1"}))
        .await
        .expect(400);
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_push_with_a_bad_tag_answers_400_and_starts_nothing() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let before = hub.state().await;
    let long = "t".repeat(129);
    for tag in [
        json!(""),
        json!(".v1"),
        json!("-v1"),
        json!("v 1"),
        json!("v1/x"),
        json!(long),
        json!(1),
    ] {
        let body = hub
            .http
            .post("/_hubmock/repositories/acme/app/push", json!({"tag": tag}))
            .await
            .expect(400);
        assert!(body["tag"].is_array(), "tag {tag}: {body:#}");
    }
    assert_eq!(hub.state().await, before);
    assert!(r.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_push_accepts_the_longest_tag() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let tag = format!(
        "_{}",
        "A.b-9".repeat(26).chars().take(127).collect::<String>()
    );
    assert_eq!(tag.len(), 128);
    hub.http
        .post("/_hubmock/repositories/acme/app/push", json!({"tag": tag}))
        .await
        .expect(202);
}

#[tokio::test]
async fn a_push_records_tag_images_pusher_and_media_type_in_the_run() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let images = json!([
        "sha256:0000000000000000000000000000000000000000000000000000000000000001",
        "sha256:0000000000000000000000000000000000000000000000000000000000000002"
    ]);
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let body = hub
        .http
        .post(
            "/_hubmock/repositories/acme/app/push",
            json!({"tag": "v2.0", "pusher": "alice", "images": images, "media_type": media_type}),
        )
        .await
        .expect(202);
    let run = &body["runs"][0];
    assert_eq!(run["push"]["tag"], "v2.0", "{run:#}");
    assert_eq!(run["push"]["pusher"], "alice", "{run:#}");
    assert_eq!(run["push"]["images"], images, "{run:#}");
    assert_eq!(run["push"]["media_type"], media_type, "{run:#}");
    // And kept so.
    let stored = hub
        .http
        .get(&format!("/_hubmock/runs/{}", id(run)))
        .await
        .expect(200);
    assert_eq!(stored["push"], run["push"]);
}

#[tokio::test]
async fn a_push_without_pusher_or_images_fills_them_in() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let runs = hub.push("acme/app", "v1").await;
    let push = &runs[0]["push"];
    assert_eq!(push["pusher"], "acme", "{push:#}");
    let images = push["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "{push:#}");
    assert!(
        images[0].as_str().is_some_and(|s| !s.is_empty()),
        "{push:#}"
    );
}

// ---- runs ----------------------------------------------------------------------------------

#[tokio::test]
async fn runs_are_listed_newest_first() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let mut pushed = Vec::new();
    for tag in ["v1", "v2", "v3"] {
        pushed.push(id(&hub.push("acme/app", tag).await[0]));
    }
    pushed.reverse();
    let body = hub.http.get("/_hubmock/runs").await.expect(200);
    assert_eq!(run_ids(&body), pushed, "{body:#}");
    assert_eq!(body["runs"][0]["push"]["tag"], "v3");
}

#[tokio::test]
async fn runs_can_be_filtered_by_repository() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.repository("acme", "other").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    hub.pipeline("acme/other", "ci", &[r.uri()], true).await;
    let app = hub.push("acme/app", "v1").await;
    hub.push("acme/other", "v1").await;
    let body = hub
        .http
        .get("/_hubmock/runs?repository=acme/app")
        .await
        .expect(200);
    assert_eq!(run_ids(&body), [id(&app[0])], "{body:#}");
    // The slash may come percent-encoded, as URL builders send it.
    let encoded = hub
        .http
        .get("/_hubmock/runs?repository=acme%2Fapp")
        .await
        .expect(200);
    assert_eq!(run_ids(&encoded), [id(&app[0])], "{encoded:#}");
}

#[tokio::test]
async fn runs_can_be_filtered_by_pipeline() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "Build", &[r.uri()], true).await;
    hub.pipeline("acme/app", "Deploy", &[r.uri()], true).await;
    let runs = hub.push("acme/app", "v1").await;
    let deploy = runs
        .iter()
        .find(|run| run["pipeline"] == "deploy")
        .expect("deploy run");
    let body = hub
        .http
        .get("/_hubmock/runs?pipeline=deploy")
        .await
        .expect(200);
    assert_eq!(run_ids(&body), [id(deploy)], "{body:#}");
}

#[tokio::test]
async fn runs_can_be_filtered_by_status() {
    let hub = TestHub::start().await;
    let ok = answering(200).await;
    let broken = answering(500).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "waits", &[ok.uri()], true).await;
    hub.pipeline("acme/app", "fails", &[broken.uri()], true)
        .await;
    hub.pipeline("acme/app", "passes", &[ok.uri()], false).await;
    let runs = hub.push("acme/app", "v1").await;
    let (waits, fails, passes) = (&runs[0], &runs[1], &runs[2]);
    hub.delivered(waits, 0).await;
    assert_eq!(hub.finished(fails).await["status"], "error");
    assert_eq!(hub.finished(passes).await["status"], "success");
    for (status, expected) in [
        ("pending", id(waits)),
        ("error", id(fails)),
        ("success", id(passes)),
    ] {
        let body = hub
            .http
            .get(&format!("/_hubmock/runs?status={status}"))
            .await
            .expect(200);
        assert_eq!(run_ids(&body), [expected], "status {status}: {body:#}");
    }
    let none = hub
        .http
        .get("/_hubmock/runs?status=cancelled")
        .await
        .expect(200);
    assert_eq!(none, json!({"runs": []}));
}

#[tokio::test]
async fn runs_with_an_unknown_status_filter_answer_400() {
    let hub = TestHub::start().await;
    let body = hub.http.get("/_hubmock/runs?status=done").await.expect(400);
    assert!(body["status"].is_array(), "{body:#}");
}

#[tokio::test]
async fn runs_with_a_bad_repository_filter_answer_400() {
    let hub = TestHub::start().await;
    for repository in ["acme", "Acme/app", "acme/", "a/app"] {
        let resp = hub
            .http
            .get(&format!("/_hubmock/runs?repository={repository}"))
            .await;
        let body = resp.expect(400);
        assert!(
            body.as_object().is_some_and(|o| !o.is_empty()),
            "repository {repository:?}: {resp:?}"
        );
    }
}

#[tokio::test]
async fn a_run_answers_as_the_push_started_it() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let pushed = hub.first_run("ci", &[r.uri()], true).await;
    let run = hub.delivered(&pushed, 0).await;
    assert_eq!(run["id"], pushed["id"]);
    assert_eq!(step_statuses(&run), ["awaiting_callback"]);
    assert_eq!(run["steps"][0]["delivery"]["status"], 200, "{run:#}");
    let again = hub
        .http
        .get(&format!("/_hubmock/runs/{}", id(&run)))
        .await
        .expect(200);
    assert_eq!(again, run);
}

/// Asserts `value` has every one of `keys` (a `null` value counts).
#[track_caller]
fn assert_keys(value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(*key).is_some(), "no {key:?} in {value:#}");
    }
}

#[tokio::test]
async fn a_run_shows_every_documented_field() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    let run = hub.delivered(&run, 0).await;
    hub.callback(
        &run,
        0,
        json!({"state": "success", "description": "built", "context": "ci",
               "target_url": "https://ci.example.com/1"}),
    )
    .await
    .expect(200);
    let run = hub.finished(&run).await;
    assert_keys(
        &run,
        &[
            "id",
            "repository",
            "pipeline",
            "status",
            "created",
            "finished",
            "push",
            "steps",
        ],
    );
    assert_eq!(run["status"], "success", "{run:#}");
    assert!(run["finished"].is_string(), "{run:#}");
    assert_keys(&run["push"], &["tag", "pusher", "images", "pushed_at"]);
    let step = &run["steps"][0];
    assert_keys(
        step,
        &[
            "webhook",
            "hook_url",
            "status",
            "callback_url",
            "delivery",
            "callback",
        ],
    );
    assert_keys(
        &step["delivery"],
        &["status", "error", "duration_ms", "response_body"],
    );
    let callback = &step["callback"];
    assert_eq!(callback["state"], "success", "{run:#}");
    assert_eq!(callback["description"], "built", "{run:#}");
    assert_eq!(callback["context"], "ci", "{run:#}");
    assert_eq!(
        callback["target_url"], "https://ci.example.com/1",
        "{run:#}"
    );
    assert!(callback["received"].is_string(), "{run:#}");
}

#[tokio::test]
async fn a_callback_without_optional_fields_shows_them_as_null_in_the_run() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    let run = hub.delivered(&run, 0).await;
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(200);
    let run = hub.finished(&run).await;
    // SPEC section 6: "callback": {"state", "description", "context", "target_url", "received"},
    // the same fixed shape as "delivery", whose absent "error" is null.
    assert_keys(
        &run["steps"][0]["callback"],
        &["state", "description", "context", "target_url", "received"],
    );
    assert_eq!(run["steps"][0]["callback"]["description"], Value::Null);
}

#[tokio::test]
async fn an_unknown_run_answers_404() {
    let hub = TestHub::start().await;
    let body = hub.http.get("/_hubmock/runs/12345").await.expect(404);
    assert!(body["detail"].is_string(), "{body:#}");
    // Waiting on it does not hang either.
    hub.http
        .get("/_hubmock/runs/12345?wait=finished&timeout_ms=5000")
        .await
        .expect(404);
}

#[tokio::test]
async fn a_non_numeric_run_id_answers_404() {
    let hub = TestHub::start().await;
    for run in ["abc", "-1", "1.5"] {
        let body = hub
            .http
            .get(&format!("/_hubmock/runs/{run}"))
            .await
            .expect(404);
        assert!(body["detail"].is_string(), "{run}: {body:#}");
    }
}

#[tokio::test]
async fn waiting_on_a_run_that_stays_pending_answers_the_pending_run_after_the_timeout() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let pushed = hub.first_run("ci", &[r.uri()], true).await;
    // Delivered, it awaits a callback that never comes.
    hub.delivered(&pushed, 0).await;
    let started = Instant::now();
    let run = hub
        .http
        .get(&format!(
            "/_hubmock/runs/{}?wait=finished&timeout_ms=100",
            id(&pushed)
        ))
        .await
        .expect(200);
    let waited = started.elapsed();
    assert_eq!(run["status"], "pending", "{run:#}");
    assert_eq!(run["id"], pushed["id"]);
    assert!(
        waited.as_millis() >= 100,
        "answered after {waited:?}, before the timeout"
    );
}

#[tokio::test]
async fn waiting_for_a_finished_run_answers_at_once() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], false).await;
    let run = hub.finished(&run).await;
    assert_eq!(run["status"], "success", "{run:#}");
    let started = Instant::now();
    hub.http
        .get(&format!(
            "/_hubmock/runs/{}?wait=finished&timeout_ms=10000",
            id(&run)
        ))
        .await
        .expect(200);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

#[tokio::test]
async fn wait_delivered_without_a_step_answers_400() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    let body = hub
        .http
        .get(&format!(
            "/_hubmock/runs/{}?wait=delivered&timeout_ms=100",
            id(&run)
        ))
        .await
        .expect(400);
    assert!(body["step"].is_array(), "{body:#}");
}

#[tokio::test]
async fn an_unknown_wait_condition_answers_400() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    let body = hub
        .http
        .get(&format!(
            "/_hubmock/runs/{}?wait=forever&timeout_ms=100",
            id(&run)
        ))
        .await
        .expect(400);
    assert!(body["wait"].is_array(), "{body:#}");
}

#[tokio::test]
async fn a_non_numeric_timeout_answers_400() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    let body = hub
        .http
        .get(&format!(
            "/_hubmock/runs/{}?wait=finished&timeout_ms=soon",
            id(&run)
        ))
        .await
        .expect(400);
    assert!(body["timeout_ms"].is_array(), "{body:#}");
}

// ---- deliveries ----------------------------------------------------------------------------

#[tokio::test]
async fn deliveries_list_each_outbound_request_as_sent() {
    let hub = TestHub::start().await;
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_string("queued"))
        .mount(&r)
        .await;
    hub.repository("acme", "app").await;
    let hook_url = format!("{}/hooks/ci", r.uri());
    hub.pipeline("acme/app", "ci", std::slice::from_ref(&hook_url), true)
        .await;
    let runs = hub.push("acme/app", "v1").await;
    let run = hub.delivered(&runs[0], 0).await;
    let body = hub.http.get("/_hubmock/deliveries").await.expect(200);
    let deliveries = body["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 1, "{body:#}");
    let d = &deliveries[0];
    assert_eq!(d["run_id"], run["id"], "{d:#}");
    assert_eq!(d["step"], 0, "{d:#}");
    assert_eq!(d["url"], hook_url, "{d:#}");
    assert_eq!(d["status"], 202, "{d:#}");
    assert!(d["duration_ms"].is_u64(), "{d:#}");
    assert_eq!(
        d["request_headers"]["content-type"], "application/json",
        "{d:#}"
    );
    // The body recorded is the body received, byte for byte.
    let received = r.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(d["request_body"], sent, "{d:#}");
    assert_eq!(
        d["request_headers"]["content-length"],
        received[0].body.len().to_string(),
        "{d:#}"
    );
    assert_eq!(
        d["request_body"]["callback_url"],
        run["steps"][0]["callback_url"]
    );
    assert_eq!(d["request_body"]["push_data"]["tag"], "v1");
}

#[tokio::test]
async fn a_failed_delivery_is_listed_with_its_error() {
    let hub = TestHub::start().await;
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", std::slice::from_ref(&closed), true)
        .await;
    let runs = hub.push("acme/app", "v1").await;
    assert_eq!(hub.finished(&runs[0]).await["status"], "error");
    let body = hub
        .http
        .get(&format!("/_hubmock/deliveries?run={}", id(&runs[0])))
        .await
        .expect(200);
    let d = &body["deliveries"][0];
    assert_eq!(d["url"], closed, "{body:#}");
    assert_eq!(d["status"], Value::Null, "{body:#}");
    assert!(
        d["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body:#}"
    );
}

#[tokio::test]
async fn deliveries_can_be_filtered_by_run() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let first = hub.push("acme/app", "v1").await;
    let second = hub.push("acme/app", "v2").await;
    hub.delivered(&first[0], 0).await;
    hub.delivered(&second[0], 0).await;
    let all = hub.http.get("/_hubmock/deliveries").await.expect(200);
    assert_eq!(all["deliveries"].as_array().unwrap().len(), 2, "{all:#}");
    let body = hub
        .http
        .get(&format!("/_hubmock/deliveries?run={}", id(&second[0])))
        .await
        .expect(200);
    let deliveries = body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{body:#}");
    assert_eq!(deliveries[0]["run_id"], second[0]["id"], "{body:#}");
    assert_eq!(deliveries[0]["request_body"]["push_data"]["tag"], "v2");
    let none = hub
        .http
        .get("/_hubmock/deliveries?run=999999")
        .await
        .expect(200);
    assert_eq!(none, json!({"deliveries": []}));
}

// ---- reset ---------------------------------------------------------------------------------

#[tokio::test]
async fn reset_forgets_repositories_runs_and_deliveries() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    hub.delivered(&run, 0).await;
    let body = hub
        .http
        .post("/_hubmock/reset", json!({}))
        .await
        .expect(200);
    assert!(body.is_object(), "{body:#}");
    assert_eq!(
        hub.http.get("/_hubmock/repositories").await.expect(200),
        json!({"repositories": []})
    );
    assert_eq!(
        hub.http.get("/_hubmock/runs").await.expect(200),
        json!({"runs": []})
    );
    assert_eq!(
        hub.http.get("/_hubmock/deliveries").await.expect(200),
        json!({"deliveries": []})
    );
    hub.http
        .get(&format!("/_hubmock/runs/{}", id(&run)))
        .await
        .expect(404);
    hub.http
        .get("/v2/repositories/acme/app/webhook_pipeline/ci/")
        .await
        .expect(404);
    // The old run's callback URL is forgotten too.
    hub.callback(&run, 0, json!({"state": "success"}))
        .await
        .expect(404);
}

#[tokio::test]
async fn a_long_poll_ends_when_a_reset_forgets_its_run() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    let run = hub.first_run("ci", &[r.uri()], true).await;
    hub.delivered(&run, 0).await;
    let http = hub.http.clone();
    let path = format!("/_hubmock/runs/{}?wait=finished&timeout_ms=60000", id(&run));
    let started = Instant::now();
    let waiting = tokio::spawn(async move { http.get(&path).await });
    hub.http
        .post("/_hubmock/reset", json!({}))
        .await
        .expect(200);
    let resp = tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .expect("the long-poll outlived the reset")
        .unwrap();
    resp.expect(404);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[tokio::test]
async fn run_ids_are_not_reused_after_a_reset() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let old = hub.push("acme/app", "v1").await;
    hub.http
        .post("/_hubmock/reset", json!({}))
        .await
        .expect(200);
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let new = hub.push("acme/app", "v1").await;
    assert_ne!(id(&new[0]), id(&old[0]));
}

#[tokio::test]
async fn reset_keeps_the_configured_users() {
    let hub = TestHub::with(hubmock::Config::default().with_user("acme", "pw")).await;
    hub.http
        .post("/_hubmock/reset", json!({}))
        .await
        .expect(200);
    hub.http
        .post(
            "/v2/users/login/",
            json!({"username": "acme", "password": "pw"}),
        )
        .await
        .expect(200);
}

// ---- state export / import -----------------------------------------------------------------

/// A hub with `acme/app`, a one-step pipeline to `r` awaiting callbacks, and one run whose
/// delivery has been answered (so the state no longer changes by itself).
async fn hub_with_a_waiting_run(r: &MockServer) -> (TestHub, Value) {
    let hub = TestHub::start().await;
    hub.http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "description": "exported"}),
        )
        .await
        .expect(201);
    hub.pipeline("acme/app", "ci", &[r.uri()], true).await;
    let runs = hub.push("acme/app", "v1").await;
    let run = hub.delivered(&runs[0], 0).await;
    assert_eq!(step_statuses(&run), ["awaiting_callback"]);
    (hub, run)
}

#[tokio::test]
async fn state_exported_from_one_hub_imports_into_another() {
    let r = answering(200).await;
    let (old, run) = hub_with_a_waiting_run(&r).await;
    let exported = old.state().await;
    let new = TestHub::start().await;
    new.http
        .put("/_hubmock/state", exported.clone())
        .await
        .expect(200);
    // Everything comes across; the steps' callback URLs now name the emulator they live in.
    let mut expected = exported.clone();
    for step in expected["runs"][0]["steps"].as_array_mut().unwrap() {
        let url = step["callback_url"].as_str().unwrap();
        let path = &url[url.find("/u/").unwrap()..];
        step["callback_url"] = json!(format!("{}{path}", new.hub.uri()));
    }
    assert_eq!(new.state().await, expected);
    let repositories = new.http.get("/_hubmock/repositories").await.expect(200);
    assert_eq!(repositories["repositories"][0]["description"], "exported");
    let pipeline = new
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/ci/")
        .await
        .expect(200);
    assert_eq!(pipeline["webhooks"][0]["hook_url"], r.uri());
    let imported = new
        .http
        .get(&format!("/_hubmock/runs/{}", id(&run)))
        .await
        .expect(200);
    assert_eq!(imported, expected["runs"][0]);
    assert_eq!(imported["steps"][0]["hook_id"], run["steps"][0]["hook_id"]);
    let deliveries = new.http.get("/_hubmock/deliveries").await.expect(200);
    assert_eq!(
        deliveries["deliveries"].as_array().unwrap().len(),
        1,
        "{deliveries:#}"
    );
}

#[tokio::test]
async fn a_run_awaiting_its_callback_accepts_it_after_import_into_another_hub() {
    let r = answering(200).await;
    let (old, run) = hub_with_a_waiting_run(&r).await;
    let exported = old.state().await;
    drop(old);
    let new = TestHub::start().await;
    new.http.put("/_hubmock/state", exported).await.expect(200);
    // The callback URL names the old hub; the path is what identifies the step.
    let callback_url = run["steps"][0]["callback_url"].as_str().unwrap();
    let path_start = callback_url
        .find("/u/acme/app/hook/")
        .unwrap_or_else(|| panic!("unexpected callback URL {callback_url}"));
    let path = &callback_url[path_start..];
    new.http
        .post(
            path,
            json!({"state": "success", "description": "after the move"}),
        )
        .await
        .expect(200);
    let finished = new.finished(&run).await;
    assert_eq!(finished["status"], "success", "{finished:#}");
    assert_eq!(
        finished["steps"][0]["callback"]["description"],
        "after the move"
    );
    // Accepted once only (R7).
    let again = new.http.post(path, json!({"state": "success"})).await;
    assert_eq!(again.expect(400), json!("Update not allowed"));
}

#[tokio::test]
async fn pipelines_created_after_an_import_do_not_collide_with_imported_runs() {
    let r = answering(200).await;
    let (old, run) = hub_with_a_waiting_run(&r).await;
    let exported = old.state().await;
    let new = TestHub::start().await;
    new.http.put("/_hubmock/state", exported).await.expect(200);
    new.pipeline("acme/app", "second", &[r.uri()], true).await;
    let runs = new.push("acme/app", "v2").await;
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for fresh in &runs {
        assert!(id(fresh) > id(&run), "run id reused: {fresh:#}");
    }
    // The imported run belongs to its own pipeline only.
    let history = new
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/second/history/")
        .await
        .expect(200);
    assert_eq!(history["count"], 1, "{history:#}");
}

#[tokio::test]
async fn a_malformed_state_answers_400_and_changes_nothing() {
    let r = answering(200).await;
    let (hub, _run) = hub_with_a_waiting_run(&r).await;
    let before = hub.state().await;
    let mut bad_name = before.clone();
    bad_name["repositories"][0]["repository"]["namespace"] = json!("A");
    let mut bad_version = before.clone();
    bad_version["version"] = json!(99);
    let mut bad_type = before.clone();
    bad_type["runs"] = json!("none");
    let mut unknown_field = before.clone();
    unknown_field["surprise"] = json!(true);
    for (what, body) in [
        ("an array", json!([])),
        ("an empty object", json!({})),
        ("a bad repository name", bad_name),
        ("an unknown version", bad_version),
        ("runs of the wrong type", bad_type),
        ("an unknown field", unknown_field),
    ] {
        let resp = hub.http.put("/_hubmock/state", body).await;
        assert_eq!(resp.status.as_u16(), 400, "{what}: {resp:?}");
        assert_eq!(hub.state().await, before, "{what} changed the state");
    }
    let resp = hub
        .http
        .send(
            http::Method::PUT,
            "/_hubmock/state",
            &[("content-type", "application/json")],
            "{\"version\": 1,",
        )
        .await;
    resp.expect(400);
    assert_eq!(
        hub.state().await,
        before,
        "truncated JSON changed the state"
    );
}

#[tokio::test]
async fn a_pipeline_created_after_an_import_has_none_of_a_deleted_pipelines_history() {
    let r = answering(200).await;
    let old = TestHub::start().await;
    old.repository("acme", "app").await;
    old.pipeline("acme/app", "kept", &[r.uri()], true).await;
    old.pipeline("acme/app", "deleted", &[r.uri()], true).await;
    let runs = old.push("acme/app", "v1").await;
    old.delivered(&runs[0], 0).await;
    old.delivered(&runs[1], 0).await;
    old.http
        .delete("/v2/repositories/acme/app/webhook_pipeline/deleted/")
        .await
        .expect(204);
    // The deleted pipeline's run stays in the history of runs (R10).
    assert_eq!(old.finished(&runs[1]).await["status"], "cancelled");
    let exported = old.state().await;
    let new = TestHub::start().await;
    new.http.put("/_hubmock/state", exported).await.expect(200);
    new.pipeline("acme/app", "fresh", &[r.uri()], true).await;
    let history = new
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/fresh/history/")
        .await
        .expect(200);
    assert_eq!(history["count"], 0, "{history:#}");
}

#[tokio::test]
async fn a_step_delivered_after_an_import_carries_the_new_hubs_callback_url() {
    let r = answering(200).await;
    let old = TestHub::start().await;
    old.repository("acme", "app").await;
    old.pipeline("acme/app", "ci", &[r.uri(), r.uri()], true)
        .await;
    let runs = old.push("acme/app", "v1").await;
    let run = old.delivered(&runs[0], 0).await;
    let exported = old.state().await;
    let new = TestHub::start().await;
    new.http.put("/_hubmock/state", exported).await.expect(200);
    let callback_url = run["steps"][0]["callback_url"].as_str().unwrap();
    let path = &callback_url[callback_url.find("/u/").expect("a /u/ path")..];
    new.http
        .post(path, json!({"state": "success"}))
        .await
        .expect(200);
    let run = new.delivered(&run, 1).await;
    let body = new
        .http
        .get(&format!("/_hubmock/deliveries?run={}", id(&run)))
        .await
        .expect(200);
    let payload = &body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["step"] == 1)
        .unwrap_or_else(|| panic!("no delivery of step 1: {body:#}"))["request_body"];
    // SPEC section 4: callback_url is {public_url}/u/{namespace}/{name}/hook/{hook_id}/, and the
    // hub that delivers the payload is the one that must receive the callback.
    let sent = payload["callback_url"].as_str().expect("callback_url");
    assert!(
        sent.starts_with(&format!("{}/u/acme/app/hook/", new.hub.uri())),
        "step 2's payload names {sent}, not the hub that sent it ({}); payload: {payload:#}",
        new.hub.uri()
    );
    assert!(
        payload["repository"]["repo_url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&new.hub.uri())),
        "{payload:#}"
    );
}

#[tokio::test]
async fn a_state_export_larger_than_the_body_limit_imports_back() {
    let old = TestHub::start().await;
    let long = "d".repeat(64 * 1024);
    for i in 0..24 {
        old.http
            .post(
                "/_hubmock/repositories",
                json!({"namespace": "acme", "name": format!("app{i}"), "full_description": long}),
            )
            .await
            .expect(201);
    }
    let exported = old.state().await;
    assert!(serde_json::to_vec(&exported).unwrap().len() > 1024 * 1024);
    let new = TestHub::start().await;
    new.http
        .put("/_hubmock/state", exported.clone())
        .await
        .expect(200);
    assert_eq!(new.state().await, exported);
}

#[tokio::test]
async fn a_push_with_wait_answers_200_once_every_run_has_finished() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "deploy", &[r.uri()], false).await;
    hub.pipeline("acme/app", "notify", &[r.uri()], false).await;
    let answer = hub
        .http
        .post(
            "/_hubmock/repositories/acme/app/push?wait=finished&timeout_ms=10000",
            json!({"tag": "v1"}),
        )
        .await
        .expect(200);
    assert_eq!(answer["finished"], true, "{answer:#}");
    let runs = answer["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_eq!(run["status"], "success", "{run:#}");
        assert_eq!(run["steps"][0]["delivery"]["status"], 200, "{run:#}");
    }
}

#[tokio::test]
async fn a_push_with_wait_answers_the_pending_runs_when_the_time_is_up() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    // The run waits for a callback that never comes.
    hub.pipeline("acme/app", "deploy", &[r.uri()], true).await;
    let answer = hub
        .http
        .post(
            "/_hubmock/repositories/acme/app/push?wait=finished&timeout_ms=200",
            json!({"tag": "v1"}),
        )
        .await
        .expect(200);
    assert_eq!(answer["finished"], false, "{answer:#}");
    assert_eq!(answer["runs"][0]["status"], "pending");
}

#[tokio::test]
async fn a_push_with_a_bad_wait_is_refused_before_anything_is_pushed() {
    let hub = TestHub::start().await;
    let r = answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline("acme/app", "deploy", &[r.uri()], false).await;
    let before = hub.state().await;
    for query in ["wait=delivered", "wait=finished&timeout_ms=soon"] {
        let answer = hub
            .http
            .post(
                &format!("/_hubmock/repositories/acme/app/push?{query}"),
                json!({"tag": "v1"}),
            )
            .await
            .expect(400);
        assert!(answer.is_object(), "{query}: {answer:#}");
        assert_eq!(hub.state().await, before, "{query}");
    }
}
