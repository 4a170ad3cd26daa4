//! A manifest put by tag is a push (SPEC R1): the webhook a receiver gets carries the tag, the
//! manifest's digest, the pusher and (observed format) the media type; runs look exactly like
//! those of a control-API push; an index fires once, or once per platform manifest with
//! `--push-events per-manifest`.

use hubmock::registry::image::{ImageSpec, Index};
use hubmock::{
    Config, DeliveryFilter, PayloadFormat, PipelineSpec, PushEvents, PushRequest, RepoName,
    WebhookSpec,
};
use serde_json::{json, Value};
use wiremock::MockServer;

use super::Reg;
use crate::util::{answering, TestHub, WAIT};

/// A pipeline of one webhook to `receiver` (no final callback expected), in `format`.
async fn pipeline(
    hub: &TestHub,
    repo: &str,
    receiver: &MockServer,
    format: Option<PayloadFormat>,
) -> String {
    let url = format!("{}/hook", receiver.uri());
    let spec = PipelineSpec {
        name: Some("deploy".to_owned()),
        expect_final_callback: Some(false),
        webhooks: Some(vec![WebhookSpec {
            name: "deploy".to_owned(),
            hook_url: url.clone(),
        }]),
        payload_format: format,
        quirks: None,
    };
    // Through the library: the Hub API would need the owner's login.
    hub.hub
        .create_pipeline(&RepoName::parse(repo).unwrap(), spec)
        .unwrap();
    url
}

/// The payloads `receiver` got, once the control API says `n` deliveries were made to `url`.
async fn payloads(hub: &TestHub, receiver: &MockServer, url: &str, n: usize) -> Vec<Value> {
    let filter = DeliveryFilter {
        url: Some(url.to_owned()),
        ..Default::default()
    };
    let made = hub.api.wait_for_deliveries(&filter, n, WAIT).await.unwrap();
    assert_eq!(made.len(), n, "deliveries to {url}: {made:#?}");
    crate::util::received_json(receiver).await
}

#[tokio::test]
async fn a_manifest_put_by_tag_fires_the_push_with_its_tag_digest_and_pusher() {
    let receiver = answering(200).await;
    let hub = TestHub::with(Config::default().with_user("alice", "pw")).await;
    hub.repository("alice", "app").await;
    let url = pipeline(&hub, "alice/app", &receiver, None).await;
    let reg = Reg::new(&hub).basic("alice", "pw");
    let image = ImageSpec::new("event").generate();
    let digest = image.manifest.digest().to_string();
    reg.push_image("alice/app", "v1.2.3", &image)
        .await
        .expect(201);

    let payload = &payloads(&hub, &receiver, &url, 1).await[0];
    assert_eq!(payload["push_data"]["tag"], "v1.2.3");
    assert_eq!(payload["push_data"]["images"], json!([digest]));
    assert_eq!(payload["push_data"]["pusher"], "alice");
    assert_eq!(payload["repository"]["repo_name"], "alice/app");
}

#[tokio::test]
async fn the_observed_format_carries_the_manifest_media_type() {
    let receiver = answering(200).await;
    let hub = super::open_hub().await;
    hub.repository("acme", "app").await;
    let url = pipeline(&hub, "acme/app", &receiver, Some(PayloadFormat::Observed)).await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("observed").docker().generate();
    reg.push_image("acme/app", "latest", &image)
        .await
        .expect(201);
    let payload = &payloads(&hub, &receiver, &url, 1).await[0];
    assert_eq!(
        payload["push_data"]["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(payload["push_data"]["tag"], "latest");
    // No credentials with --no-auth: the repository's owner pushed.
    assert_eq!(payload["push_data"]["pusher"], "acme");
}

/// A run as JSON with what differs between two runs of the same push (ids, times, hook ids)
/// taken out.
fn shape(run: &Value) -> Value {
    let mut run = run.clone();
    for key in ["id", "created", "finished"] {
        run[key] = Value::Null;
    }
    run["push"]["pushed_at"] = Value::Null;
    for step in run["steps"].as_array_mut().unwrap() {
        for key in ["callback_url", "hook_id", "delivered_at"] {
            step[key] = Value::Null;
        }
        if step["delivery"].is_object() {
            step["delivery"]["duration_ms"] = Value::Null;
        }
    }
    run
}

#[tokio::test]
async fn a_registry_push_runs_exactly_as_a_control_api_push() {
    let receiver = answering(200).await;
    let hub = super::open_hub().await;
    hub.repository("acme", "app").await;
    let url = pipeline(&hub, "acme/app", &receiver, None).await;
    let image = ImageSpec::new("same").generate();
    let digest = image.manifest.digest().to_string();
    Reg::new(&hub)
        .push_image("acme/app", "v1", &image)
        .await
        .expect(201);
    let push = PushRequest {
        tag: Some("v1".to_owned()),
        pusher: None,
        images: vec![digest.clone()],
        media_type: Some("application/vnd.oci.image.manifest.v1+json".to_owned()),
        extra: None,
    };
    let repo = RepoName::parse("acme/app").unwrap();
    hub.api.push_with(&repo, push).await.unwrap();
    let bodies = payloads(&hub, &receiver, &url, 2).await;
    let runs = hub.api.runs(&Default::default()).await.unwrap();
    let runs: Vec<Value> = futures_runs(&hub, runs.iter().map(|r| r.id()).collect()).await;
    assert_eq!(shape(&runs[0]), shape(&runs[1]));
    let strip = |payload: &Value| {
        let mut payload = payload.clone();
        payload["callback_url"] = Value::Null;
        payload["push_data"]["pushed_at"] = Value::Null;
        payload
    };
    assert_eq!(strip(&bodies[0]), strip(&bodies[1]));
    let history = hub
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/deploy/history/")
        .await;
    assert_eq!(history.expect(200)["count"], 2);
}

/// The runs, each once its delivery is settled.
async fn futures_runs(hub: &TestHub, ids: Vec<u64>) -> Vec<Value> {
    let mut runs = Vec::new();
    for id in ids {
        let run = hub.api.wait_for_run(id, WAIT).await.unwrap();
        runs.push(serde_json::to_value(run).unwrap());
    }
    runs
}

fn multi_platform() -> Index {
    Index::of(vec![
        ImageSpec::new("amd64").generate(),
        ImageSpec::new("arm64")
            .platform("linux", "arm64")
            .generate(),
        // buildx's attestation manifests name no real platform.
        ImageSpec::new("attestation")
            .platform("unknown", "unknown")
            .generate(),
    ])
}

#[tokio::test]
async fn an_index_pushed_by_tag_fires_once_and_its_children_by_digest_fire_nothing() {
    let receiver = answering(200).await;
    let hub = super::open_hub().await;
    hub.repository("acme", "app").await;
    let url = pipeline(&hub, "acme/app", &receiver, Some(PayloadFormat::Observed)).await;
    let reg = Reg::new(&hub);
    let index = multi_platform();
    for image in &index.images {
        let digest = image.manifest.digest().to_string();
        reg.push_image("acme/app", &digest, image).await.expect(201);
    }
    assert!(hub.api.runs(&Default::default()).await.unwrap().is_empty());
    reg.put_manifest("acme/app", "multi", &index.manifest)
        .await
        .expect(201);
    let payload = &payloads(&hub, &receiver, &url, 1).await[0];
    assert_eq!(payload["push_data"]["tag"], "multi");
    assert_eq!(
        payload["push_data"]["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let runs = hub.api.runs(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].push().images,
        vec![index.manifest.digest().to_string()]
    );
}

#[tokio::test]
async fn per_manifest_push_events_fire_once_more_per_platform_manifest() {
    let receiver = answering(200).await;
    let config = Config::default()
        .with_auth(false)
        .with_push_events(PushEvents::PerManifest);
    let hub = TestHub::with(config).await;
    hub.repository("acme", "app").await;
    let url = pipeline(&hub, "acme/app", &receiver, None).await;
    let index = multi_platform();
    Reg::new(&hub)
        .push_index("acme/app", "multi", &index)
        .await
        .expect(201);
    let bodies = payloads(&hub, &receiver, &url, 3).await;
    let mut images: Vec<String> = bodies
        .iter()
        .map(|b| {
            assert_eq!(b["push_data"]["tag"], "multi");
            b["push_data"]["images"][0].as_str().unwrap().to_owned()
        })
        .collect();
    images.sort();
    let mut expected = vec![
        index.manifest.digest().to_string(),
        index.images[0].manifest.digest().to_string(),
        index.images[1].manifest.digest().to_string(),
    ];
    expected.sort();
    assert_eq!(images, expected);
}

#[tokio::test]
async fn a_manifest_put_by_digest_fires_nothing() {
    let hub = super::open_hub().await;
    let image = ImageSpec::new("by-digest").generate();
    let digest = image.manifest.digest().to_string();
    Reg::new(&hub)
        .push_image("acme/app", &digest, &image)
        .await
        .expect(201);
    assert!(hub.api.runs(&Default::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_hub_api_shows_a_tag_pushed_through_the_registry() {
    let hub = TestHub::with(Config::default().with_user("alice", "pw")).await;
    let reg = Reg::new(&hub).basic("alice", "pw");
    let image = ImageSpec::new("shown").layers(2, 1000).generate();
    reg.push_image("alice/app", "1.0", &image).await.expect(201);
    // Anonymous, as a public repository's tags are read on Docker Hub.
    let tag = hub
        .http
        .get("/v2/repositories/alice/app/tags/1.0/")
        .await
        .expect(200);
    assert_eq!(tag["name"], "1.0");
    assert_eq!(tag["digest"], image.manifest.digest().to_string());
    assert_eq!(tag["full_size"], image.layers_size());
    assert_eq!(tag["last_updater_username"], "alice");
    assert_eq!(tag["media_type"], image.manifest.media_type.as_str());
    assert_eq!(tag["images"][0]["architecture"], "amd64");
    assert_eq!(tag["images"][0]["os"], "linux");
}

#[tokio::test]
async fn an_index_tag_keeps_the_index_digest_and_lists_each_platform_even_per_manifest() {
    let config = Config::default()
        .with_auth(false)
        .with_push_events(PushEvents::PerManifest);
    let hub = TestHub::with(config).await;
    let index = multi_platform();
    Reg::new(&hub)
        .push_index("acme/app", "multi", &index)
        .await
        .expect(201);
    let tag = hub
        .http
        .get("/v2/repositories/acme/app/tags/multi/")
        .await
        .expect(200);
    // The per-platform push events do not make the tag name a platform manifest.
    assert_eq!(tag["digest"], index.manifest.digest().to_string());
    let platforms: Vec<String> = tag["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["os"].as_str().unwrap(),
                i["architecture"].as_str().unwrap()
            )
        })
        .collect();
    // buildx's attestation manifest (`unknown/unknown`) is no platform of the tag.
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // With no user (--no-auth), the pusher is the repository's owner.
    assert_eq!(tag["last_updater_username"], "acme");
}

#[tokio::test]
async fn a_tag_deleted_through_the_registry_is_gone_from_the_hub_api_too() {
    let hub = super::open_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("deleted").generate();
    let digest = image.manifest.digest().to_string();
    for tag in ["a", "b", "c"] {
        reg.push_image("acme/app", tag, &image).await.expect(201);
    }
    let other = ImageSpec::new("kept").generate();
    reg.push_image("acme/app", "kept", &other).await.expect(201);
    let names = |page: Value| -> Vec<String> {
        let mut names: Vec<String> = page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    // By tag: that tag only.
    assert_eq!(reg.delete("/v2/acme/app/manifests/a").await.status, 202);
    hub.http
        .get("/v2/repositories/acme/app/tags/a/")
        .await
        .expect(404);
    let tags = hub
        .http
        .get("/v2/repositories/acme/app/tags/")
        .await
        .expect(200);
    assert_eq!(names(tags), ["b", "c", "kept"]);
    // By digest: every tag naming the manifest.
    let path = format!("/v2/acme/app/manifests/{digest}");
    assert_eq!(reg.delete(&path).await.status, 202);
    let tags = hub
        .http
        .get("/v2/repositories/acme/app/tags/")
        .await
        .expect(200);
    assert_eq!(names(tags), ["kept"]);
}
