//! `Hub::registry_push`: a generated image pushed over HTTP through the hub's own registry
//! fires the webhook as a real client's push does; refusals come back as `PushError`s that
//! name the registry's code.

use hubmock::registry::push::PushError;
use hubmock::{Config, Hub, PipelineSpec, PushEvents, RepoName, RunStatus};
use serde_json::{json, Value};
use wiremock::MockServer;

use crate::util::{answering, WAIT};

/// A pipeline of one webhook to `receiver` that ends on the 2xx answer; answers its URL.
fn pipeline(hub: &Hub, repo: &str, receiver: &MockServer) -> String {
    let url = format!("{}/hook", receiver.uri());
    let mut spec = PipelineSpec::new("deploy", &[&url]);
    spec.expect_final_callback = Some(false);
    hub.create_pipeline(&RepoName::parse(repo).unwrap(), spec)
        .unwrap();
    url
}

/// The payloads `receiver` got, oldest first.
async fn payloads(receiver: &MockServer) -> Vec<Value> {
    crate::util::received_json(receiver).await
}

#[tokio::test]
async fn a_pushed_image_fires_the_webhook_with_its_digest_and_answers_the_runs() {
    let receiver = answering(200).await;
    let hub = Hub::start().await; // auth off
    hub.create_repository("acme", "app").unwrap();
    pipeline(&hub, "acme/app", &receiver);

    let pushed = hub.registry_push("acme/app", "v1").await.unwrap();
    assert!(pushed.digest.starts_with("sha256:"), "{pushed:?}");
    assert_eq!(
        pushed.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(pushed.manifests.len(), 1);
    assert_eq!(pushed.manifests[0].platform.to_string(), "linux/amd64");
    assert_eq!(pushed.manifests[0].digest, pushed.digest);
    assert_eq!(pushed.runs.len(), 1, "{:?}", pushed.runs);
    let run = &pushed.runs[0];
    assert_eq!(run.push().tag, "v1");
    assert_eq!(run.push().images, std::slice::from_ref(&pushed.digest));
    let run = hub.wait_for_run(run.id(), WAIT).await.unwrap();
    assert_eq!(run.status(), RunStatus::Success);

    let payload = &payloads(&receiver).await[0];
    assert_eq!(payload["push_data"]["tag"], "v1");
    assert_eq!(payload["push_data"]["images"], json!([pushed.digest]));
    // Auth off and no user named: anonymous, so the namespace pushed, as with Hub::push.
    assert_eq!(payload["push_data"]["pusher"], "acme");

    // The registry holds it and the Hub API's tag shows it.
    let tags = hub.tags(&RepoName::parse("acme/app").unwrap()).unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].last.digest, pushed.digest);
    let manifest = status_of_get(&hub, "/v2/acme/app/manifests/v1").await;
    assert_eq!(manifest, 200);

    // The same tag again is the same image; another seed another one.
    let again = hub.registry_push("acme/app", "v1").await.unwrap();
    assert_eq!(again.digest, pushed.digest);
    assert_eq!(again.runs.len(), 1);
    assert_ne!(again.runs[0].id(), pushed.runs[0].id());
    let other = hub
        .registry_push("acme/app", "v1")
        .seed("another")
        .layers(2, 10)
        .await
        .unwrap();
    assert_ne!(other.digest, pushed.digest);
}

/// The status of a GET on the hub, through hubmock's own client.
async fn status_of_get(hub: &Hub, path: &str) -> u16 {
    hubmock::client::HttpClient::new()
        .send(
            http::Method::GET,
            &format!("{}{path}", hub.uri()),
            &[],
            bytes::Bytes::new(),
            0,
        )
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn with_auth_on_the_pusher_is_the_first_user_or_the_one_named() {
    let receiver = answering(200).await;
    let config = Config::default()
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw");
    let hub = Hub::start_with(config).await;
    hub.create_repository("alice", "app").unwrap();
    hub.create_repository("bob", "app").unwrap();
    pipeline(&hub, "alice/app", &receiver);
    pipeline(&hub, "bob/app", &receiver);

    let by_alice = hub.registry_push("alice/app", "v1").await.unwrap();
    assert_eq!(by_alice.runs[0].push().pusher, "alice");
    let by_bob = hub
        .registry_push("bob/app", "v1")
        .user("bob")
        .docker()
        .await
        .unwrap();
    assert_eq!(by_bob.runs[0].push().pusher, "bob");
    assert_eq!(
        by_bob.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        by_bob.runs[0].push().media_type.as_deref(),
        Some(by_bob.media_type.as_str())
    );
    for run in [&by_alice.runs[0], &by_bob.runs[0]] {
        hub.wait_for_run(run.id(), WAIT).await.unwrap();
    }
    let mut pushers: Vec<String> = payloads(&receiver)
        .await
        .iter()
        .map(|p| p["push_data"]["pusher"].as_str().unwrap().to_owned())
        .collect();
    pushers.sort();
    assert_eq!(pushers, ["alice", "bob"]);
}

#[tokio::test]
async fn a_refused_push_is_an_error_naming_the_registry_code_and_starts_nothing() {
    let config = Config::default()
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw");
    let hub = Hub::start_with(config).await;
    hub.create_repository("bob", "app").unwrap();
    let receiver = answering(200).await;
    pipeline(&hub, "bob/app", &receiver);

    // alice (the first user) may push only to alice/...
    let denied = hub.registry_push("bob/app", "v1").await.unwrap_err();
    assert_eq!(denied.code(), Some("DENIED"), "{denied}");
    assert_eq!(denied.status(), Some(403));
    let shown = denied.to_string();
    assert!(
        shown.starts_with("POST /v2/bob/app/blobs/uploads/ was refused: 403 DENIED: "),
        "{shown}"
    );
    assert!(shown.contains("user 'alice' may push only"), "{shown}");

    let anonymous = hub
        .registry_push("bob/app", "v1")
        .anonymous()
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Some("UNAUTHORIZED"), "{anonymous}");
    let wrong = hub
        .registry_push("bob/app", "v1")
        .credentials("bob", "nope")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("UNAUTHORIZED"), "{wrong}");
    assert!(
        wrong.to_string().contains("incorrect username or password"),
        "{wrong}"
    );

    let unknown = hub
        .registry_push("bob/app", "v1")
        .user("carol")
        .await
        .unwrap_err();
    assert!(matches!(unknown, PushError::Invalid(_)), "{unknown:?}");
    assert_eq!(
        unknown.to_string(),
        "no user `carol` is configured (users: alice, bob); add it with Config::with_user"
    );
    let platform = hub
        .registry_push("bob/app", "v1")
        .user("bob")
        .platforms(["linux/amd64", "arm64"])
        .await
        .unwrap_err();
    assert!(
        platform
            .to_string()
            .starts_with("platform `arm64` is not os/architecture"),
        "{platform}"
    );
    let name = hub.registry_push("Bob/App", "v1").await.unwrap_err();
    assert!(
        name.to_string().contains("invalid repository name"),
        "{name}"
    );
    let tag = hub
        .registry_push("bob/app", "-v1")
        .user("bob")
        .await
        .unwrap_err();
    assert_eq!(tag.code(), Some("TAG_INVALID"), "{tag}");

    // Nothing was pushed, nothing fired.
    let repo = RepoName::parse("bob/app").unwrap();
    assert!(hub.tags(&repo).unwrap().is_empty());
    assert!(hub.deliveries().is_empty());
}

#[tokio::test]
async fn an_unknown_repository_without_implicit_repositories_is_name_unknown() {
    let hub = Hub::builder()
        .config(
            Config::default()
                .with_auth(false)
                .with_implicit_repositories(false),
        )
        .start()
        .await;
    let err = hub.registry_push("acme/nowhere", "v1").await.unwrap_err();
    assert_eq!(err.code(), Some("NAME_UNKNOWN"), "{err}");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn an_index_fires_once_with_its_digest_or_once_per_platform_when_asked() {
    let receiver = answering(200).await;
    let hub = Hub::start().await;
    hub.create_repository("acme", "app").unwrap();
    pipeline(&hub, "acme/app", &receiver);
    let platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

    let pushed = hub
        .registry_push("acme/app", "v1")
        .platforms(platforms)
        .await
        .unwrap();
    assert_eq!(pushed.media_type, "application/vnd.oci.image.index.v1+json");
    let shown: Vec<String> = pushed
        .manifests
        .iter()
        .map(|m| m.platform.to_string())
        .collect();
    assert_eq!(shown, platforms);
    assert!(pushed.manifests.iter().all(|m| m.digest != pushed.digest));
    assert_eq!(pushed.runs.len(), 1, "{:?}", pushed.runs);
    assert_eq!(
        pushed.runs[0].push().images,
        std::slice::from_ref(&pushed.digest)
    );

    // The Hub API's tag lists the platforms, variant included.
    let tags = hub.tags(&RepoName::parse("acme/app").unwrap()).unwrap();
    let images: Vec<(String, String, Option<String>, String)> = tags[0]
        .last
        .images
        .iter()
        .map(|i| {
            (
                i.os.clone(),
                i.architecture.clone(),
                i.variant.clone(),
                i.digest.clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, Option<String>, String)> = pushed
        .manifests
        .iter()
        .map(|m| {
            (
                m.platform.os.clone(),
                m.platform.architecture.clone(),
                m.platform.variant.clone(),
                m.digest.clone(),
            )
        })
        .collect();
    assert_eq!(images, expected);

    let per_manifest = Hub::builder()
        .config(
            Config::default()
                .with_auth(false)
                .with_push_events(PushEvents::PerManifest),
        )
        .start()
        .await;
    per_manifest.create_repository("acme", "app").unwrap();
    pipeline(&per_manifest, "acme/app", &receiver);
    let pushed = per_manifest
        .registry_push("acme/app", "v1")
        .platforms(["linux/amd64", "linux/arm64"])
        .docker()
        .await
        .unwrap();
    assert_eq!(
        pushed.media_type,
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let images: Vec<Vec<String>> = pushed
        .runs
        .iter()
        .map(|r| r.push().images.clone())
        .collect();
    assert_eq!(
        images,
        [
            vec![pushed.digest.clone()],
            vec![pushed.manifests[0].digest.clone()],
            vec![pushed.manifests[1].digest.clone()],
        ]
    );
}
