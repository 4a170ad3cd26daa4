//! A namespace's repositories (`GET /v2/repositories/{ns}/`, `/v2/namespaces/{ns}/repositories`,
//! `/v2/users/{ns}/repositories/`) and one repository as the Hub API shows what was pushed.

use serde_json::json;

use super::{create, is_timestamp, names, record, repo, walk};
use crate::util::TestHub;

/// `acme/alpha` (3 pulls, pushed at t=2), `acme/beta` (9 pulls, pushed at t=1) and
/// `acme/gamma` (never pushed), plus `other/app`.
async fn three_repositories() -> TestHub {
    let hub = TestHub::start().await;
    create(&hub, "acme", "gamma", json!({"description": "G"})).await;
    create(
        &hub,
        "acme",
        "alpha",
        json!({"pull_count": 3, "star_count": 1}),
    )
    .await;
    create(&hub, "acme", "beta", json!({"pull_count": 9})).await;
    create(&hub, "other", "app", json!({})).await;
    let push = |name: &str, secs: f64| {
        hub.hub
            .record_tag(&repo(name), record("v1", "1", 1_700_000_000.0 + secs, 100))
            .unwrap()
    };
    push("acme/alpha", 2.0);
    push("acme/beta", 1.0);
    hub
}

#[tokio::test]
async fn a_namespace_lists_its_repositories_with_every_field_clients_read() {
    let hub = three_repositories().await;
    let page = hub.http.get("/v2/repositories/acme/").await.expect(200);
    assert_eq!(page["count"], 3, "{page:#}");
    assert_eq!(
        names(&page),
        ["alpha", "beta", "gamma"],
        "by name unless asked"
    );
    let alpha = &page["results"][0];
    for (field, value) in [
        ("namespace", json!("acme")),
        ("repository_type", json!("image")),
        ("status", json!(1)),
        ("status_description", json!("active")),
        ("description", json!("")),
        ("is_private", json!(false)),
        ("star_count", json!(1)),
        ("pull_count", json!(3)),
        // Auth is off: whoever asks may change it.
        ("affiliation", json!("owner")),
        (
            "media_types",
            json!(["application/vnd.oci.image.manifest.v1+json"]),
        ),
        ("content_types", json!(["image"])),
        ("categories", json!([])),
        ("storage_size", json!(100)),
        ("user", json!("acme")),
        ("is_automated", json!(false)),
    ] {
        assert_eq!(alpha[field], value, "{field}: {alpha:#}");
    }
    for field in ["last_updated", "date_registered"] {
        assert!(is_timestamp(&alpha[field]), "{field}: {alpha:#}");
    }
    assert!(alpha["last_updated"]
        .as_str()
        .unwrap()
        .starts_with("2023-11-14T22:13:22"));
    // Never pushed: no last update yet, as on the Hub.
    let gamma = &page["results"][2];
    assert!(gamma["last_updated"].is_null(), "{gamma:#}");
    assert_eq!(gamma["media_types"], json!([]));
    assert_eq!(gamma["description"], "G");
}

#[tokio::test]
async fn the_three_namespace_routes_answer_the_same_list() {
    let hub = three_repositories().await;
    let page = hub.http.get("/v2/repositories/acme/").await.expect(200);
    for path in [
        "/v2/repositories/acme",
        "/v2/namespaces/acme/repositories",
        "/v2/namespaces/acme/repositories/",
        "/v2/users/acme/repositories/",
        "/v2/users/acme/repositories",
    ] {
        let other = hub.http.get(path).await.expect(200);
        assert_eq!(other["results"], page["results"], "{path}");
    }
}

#[tokio::test]
async fn a_namespace_list_is_ordered_filtered_and_paged_as_asked() {
    let hub = three_repositories().await;
    let list = |query: &str| {
        let http = hub.http.clone();
        let path = format!("/v2/namespaces/acme/repositories?{query}");
        async move { names(&http.get(&path).await.expect(200)) }
    };
    // Newest push first; never pushed last.
    assert_eq!(
        list("ordering=last_updated").await,
        ["alpha", "beta", "gamma"]
    );
    assert_eq!(
        list("ordering=-last_updated").await,
        ["gamma", "beta", "alpha"]
    );
    assert_eq!(list("ordering=-name").await, ["gamma", "beta", "alpha"]);
    assert_eq!(
        list("ordering=-pull_count").await,
        ["beta", "alpha", "gamma"]
    );
    assert_eq!(
        list("ordering=pull_count").await,
        ["gamma", "alpha", "beta"]
    );
    assert_eq!(list("name=ta").await, ["beta"]);
    let first = "/v2/repositories/acme/?page_size=1&ordering=-pull_count";
    assert_eq!(walk(&hub.http, first).await, ["beta", "alpha", "gamma"]);
    let page = hub.http.get(first).await.expect(200);
    assert_eq!(
        page["next"],
        format!(
            "{}/v2/repositories/acme/?ordering=-pull_count&page=2&page_size=1",
            hub.hub.uri()
        )
    );
    let body = hub
        .http
        .get("/v2/repositories/acme/?ordering=stars")
        .await
        .expect(400);
    assert!(
        body["ordering"][0].as_str().unwrap().contains("pull_count"),
        "{body:#}"
    );
}

#[tokio::test]
async fn an_unknown_or_invalid_namespace_is_refused() {
    let hub = three_repositories().await;
    let body = hub.http.get("/v2/repositories/nobody/").await.expect(404);
    assert!(
        body["detail"].as_str().unwrap().contains("nobody"),
        "{body:#}"
    );
    let body = hub
        .http
        .get("/v2/namespaces/A/repositories")
        .await
        .expect(400);
    assert!(body["namespace"][0].is_string(), "{body:#}");
    // A user's namespace exists before any repository is in it.
    let page = hub.http.get("/v2/repositories/hubmock/").await.expect(200);
    assert_eq!(page["count"], 0);
}

#[tokio::test]
async fn a_repository_shows_its_last_push_and_what_was_pushed() {
    let hub = three_repositories().await;
    let repo = hub
        .http
        .get("/v2/repositories/acme/alpha/")
        .await
        .expect(200);
    let newer = hub
        .http
        .get("/v2/namespaces/acme/repositories/alpha")
        .await
        .expect(200);
    assert_eq!(repo, newer);
    assert!(repo["last_updated"]
        .as_str()
        .unwrap()
        .starts_with("2023-11-14T22:13:22"));
    assert_eq!(repo["pull_count"], 3);
    assert_eq!(
        repo["media_types"],
        json!(["application/vnd.oci.image.manifest.v1+json"])
    );
    assert_eq!(
        repo["immutable_tags_settings"],
        json!({"enabled": false, "rules": []})
    );
    for field in [
        "full_description",
        "date_registered",
        "hub_user",
        "is_automated",
    ] {
        assert!(!repo[field].is_null(), "{field}: {repo:#}");
    }
    let gamma = hub
        .http
        .get("/v2/repositories/acme/gamma/")
        .await
        .expect(200);
    assert!(gamma["last_updated"].is_null(), "{gamma:#}");
    // A control-API push moves it.
    hub.push("acme/gamma", "latest").await;
    let gamma = hub
        .http
        .get("/v2/repositories/acme/gamma/")
        .await
        .expect(200);
    assert!(is_timestamp(&gamma["last_updated"]), "{gamma:#}");
}
