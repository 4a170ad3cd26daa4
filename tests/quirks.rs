//! Docker Hub's quirks (`--quirks`, a pipeline's `quirks`): each through the HTTP API (and the
//! registry for the multi-arch and tag-visibility ones), asserting the exact deliveries a
//! receiver saw.

use std::time::Duration;

use hubmock::model::quirks::QuirkSpec;
use hubmock::{Config, DeliveryFilter, Hub, PipelineSpec, RepoName, WebhookSpec};
use serde_json::{json, Value};
use wiremock::MockServer;

use crate::util::{answering, http_response, Http, RawReceiver, TestHub, WAIT};

fn quirks(text: &str) -> Option<QuirkSpec> {
    Some(text.parse().unwrap())
}

/// A pipeline `name` on `acme/app` of one webhook per receiver, with these quirks; answers
/// the first hook URL.
fn pipeline(hub: &Hub, name: &str, receivers: &[&MockServer], quirks: Option<QuirkSpec>) -> String {
    let webhooks: Vec<WebhookSpec> = receivers
        .iter()
        .enumerate()
        .map(|(i, r)| WebhookSpec {
            name: format!("{name} {i}"),
            hook_url: format!("{}/{name}/{i}", r.uri()),
        })
        .collect();
    let url = webhooks[0].hook_url.clone();
    let spec = PipelineSpec {
        name: Some(name.to_owned()),
        expect_final_callback: Some(true),
        webhooks: Some(webhooks),
        payload_format: None,
        quirks,
    };
    hub.create_pipeline(&RepoName::parse("acme/app").unwrap(), spec)
        .unwrap();
    url
}

/// The bodies POSTed to `url`, once the control API has recorded `n` deliveries to it.
async fn bodies_to(hub: &TestHub, receiver: &MockServer, url: &str, n: usize) -> Vec<Value> {
    let filter = DeliveryFilter {
        url: Some(url.to_owned()),
        ..Default::default()
    };
    let made = hub.api.wait_for_deliveries(&filter, n, WAIT).await.unwrap();
    assert_eq!(made.len(), n, "deliveries to {url}: {made:#?}");
    let prefix = url.trim_start_matches(&receiver.uri()).to_owned();
    let requests = receiver.received_requests().await.unwrap();
    requests
        .iter()
        .filter(|r| r.url.path() == prefix)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn no_tag_leaves_the_tag_out_of_the_pipelines_payloads_only() {
    let receiver = answering(200).await;
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let quirky = pipeline(&hub.hub, "quirky", &[&receiver], quirks("no-tag"));
    let plain = pipeline(&hub.hub, "plain", &[&receiver], None);
    hub.push("acme/app", "v1").await;
    let quirky = bodies_to(&hub, &receiver, &quirky, 1).await;
    assert!(
        quirky[0]["push_data"].get("tag").is_none(),
        "{:#}",
        quirky[0]
    );
    assert_eq!(quirky[0]["push_data"]["pusher"], "acme");
    let plain = bodies_to(&hub, &receiver, &plain, 1).await;
    assert_eq!(plain[0]["push_data"]["tag"], "v1");
    // The run shows the quirks it followed.
    let runs = hub.api.runs(&Default::default()).await.unwrap();
    let shown: Vec<Value> = runs
        .iter()
        .map(|r| serde_json::to_value(r).unwrap()["quirks"].clone())
        .collect();
    assert!(shown.contains(&json!(["no-tag"])), "{shown:?}");
    assert!(shown.contains(&Value::Null), "{shown:?}");
}

#[tokio::test]
async fn the_server_profile_applies_to_pipelines_that_name_none() {
    let receiver = answering(200).await;
    let spec: QuirkSpec = "hub-2020,no-tag".parse().unwrap();
    let hub = TestHub::with(Config::default().with_auth(false).with_quirks(&spec)).await;
    hub.repository("acme", "app").await;
    let url = pipeline(&hub.hub, "p", &[&receiver], None);
    hub.push("acme/app", "v1").await;
    let body = &bodies_to(&hub, &receiver, &url, 1).await[0];
    // hub-2020: the observed format (integer times, images: []), and the added no-tag.
    assert!(body["push_data"]["pushed_at"].is_i64(), "{body:#}");
    assert_eq!(body["push_data"]["images"], json!([]));
    assert!(body["push_data"].get("tag").is_none(), "{body:#}");
    assert!(body["repository"].get("dockerfile").is_none(), "{body:#}");
}

#[tokio::test]
async fn callback_gone_calls_each_url_at_once_and_its_callback_url_answers_404() {
    let (a, b) = (answering(200).await, answering(200).await);
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let first = pipeline(&hub.hub, "gone", &[&a, &b], quirks("hub-2026"));
    let runs = hub.push("acme/app", "v1").await;
    // No callback is sent, yet both URLs are called and the run succeeds.
    let run = hub.finished(&runs[0]).await;
    assert_eq!(run["status"], "success");
    assert_eq!(run["steps"][0]["status"], "success");
    assert_eq!(run["steps"][1]["status"], "success");
    let body = &bodies_to(&hub, &a, &first, 1).await[0];
    // hub-2026: today's documented payload, no images, integer times; callback_url still there.
    assert!(body["push_data"].get("images").is_none(), "{body:#}");
    assert!(body["push_data"]["pushed_at"].is_i64(), "{body:#}");
    let callback_url = body["callback_url"].as_str().unwrap();
    assert_eq!(callback_url, run["steps"][0]["callback_url"]);
    let answer = hub
        .http
        .post(callback_url, json!({"state": "failure"}))
        .await;
    let detail = answer.expect(404);
    assert!(
        detail["detail"].as_str().unwrap().contains("legacy"),
        "{detail:#}"
    );
    // The refused callback changed nothing.
    assert_eq!(hub.finished(&runs[0]).await, run);
}

#[tokio::test]
async fn images_null_extra_posts_marks_an_automated_builds_extra_tags() {
    let receiver = answering(200).await;
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let quirky = pipeline(
        &hub.hub,
        "quirky",
        &[&receiver],
        quirks("images-null-extra-posts"),
    );
    let plain = pipeline(&hub.hub, "plain", &[&receiver], None);
    let answer = hub
        .http
        .post(
            "/_hubmock/repositories/acme/app/push",
            json!({"tag": "1.2.0", "extra_tags": ["1.2", "latest"]}),
        )
        .await
        .expect(202);
    // One push per tag, each starting a run of both pipelines.
    assert_eq!(answer["runs"].as_array().unwrap().len(), 6, "{answer:#}");
    let quirky = bodies_to(&hub, &receiver, &quirky, 3).await;
    let plain = bodies_to(&hub, &receiver, &plain, 3).await;
    // The posts of the three pushes go out at once: in any order.
    let by_tag = |bodies: &[Value]| -> Vec<Value> {
        let mut bodies = bodies.to_vec();
        bodies.sort_by_key(|b| b["push_data"]["tag"].as_str().unwrap().to_owned());
        bodies
    };
    let (quirky, plain) = (by_tag(&quirky), by_tag(&plain));
    let tags = |bodies: &[Value]| -> Vec<Value> {
        bodies
            .iter()
            .map(|b| b["push_data"]["tag"].clone())
            .collect()
    };
    assert_eq!(
        tags(&quirky),
        [json!("1.2"), json!("1.2.0"), json!("latest")]
    );
    assert_eq!(tags(&plain), tags(&quirky));
    let image = quirky[1]["push_data"]["images"][0].clone();
    assert!(image.is_string(), "{:#}", quirky[1]);
    // The extra posts carry `images: null` (the key is there, its value null).
    for extra in [&quirky[0], &quirky[2]] {
        assert_eq!(
            extra["push_data"].get("images"),
            Some(&Value::Null),
            "{extra:#}"
        );
    }
    // Without the quirk every post names the same image.
    for body in &plain {
        assert_eq!(
            body["push_data"]["images"],
            json!([image.clone()]),
            "{body:#}"
        );
    }
    // Each tag was recorded for the Hub API.
    let tags = hub
        .http
        .get("/v2/repositories/acme/app/tags/")
        .await
        .expect(200);
    assert_eq!(tags["count"], 3, "{tags:#}");
}

#[tokio::test]
async fn a_bad_extra_tag_or_quirk_is_refused_and_changes_nothing() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let before = hub.state().await;
    let answer = hub
        .http
        .post(
            "/_hubmock/repositories/acme/app/push",
            json!({"tag": "v1", "extra_tags": ["ok", "no spaces"]}),
        )
        .await
        .expect(400);
    assert!(answer["extra_tags"][0].is_string(), "{answer:#}");
    let answer = hub
        .http
        .post(
            "/v2/repositories/acme/app/webhook_pipeline/",
            json!({"name": "p", "quirks": "hub-2021",
                   "webhooks": [{"name": "a", "hook_url": "http://127.0.0.1:9/"}]}),
        )
        .await
        .expect(400);
    let message = answer["quirks"][0].as_str().unwrap();
    assert!(
        message.contains("unknown quirk or profile 'hub-2021'"),
        "{message}"
    );
    // The registry's quirk is the server's alone.
    let answer = hub
        .http
        .post(
            "/v2/repositories/acme/app/webhook_pipeline/",
            json!({"name": "p", "quirks": "tag-visible-after=2s",
                   "webhooks": [{"name": "a", "hook_url": "http://127.0.0.1:9/"}]}),
        )
        .await
        .expect(400);
    let message = answer["quirks"][0].as_str().unwrap();
    assert!(message.contains("a pipeline cannot set it"), "{message}");
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_pipelines_quirks_show_in_the_hub_api_and_can_be_changed() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let created = hub
        .http
        .post(
            "/v2/repositories/acme/app/webhook_pipeline/",
            json!({"name": "p", "quirks": "hub-2020, no-tag",
                   "webhooks": [{"name": "a", "hook_url": "http://127.0.0.1:9/"}]}),
        )
        .await
        .expect(201);
    assert_eq!(created["quirks"], "hub-2020,no-tag");
    let changed = hub
        .http
        .patch(
            "/v2/repositories/acme/app/webhook_pipeline/p/",
            json!({"quirks": "none"}),
        )
        .await
        .expect(200);
    assert_eq!(changed["quirks"], "none");
}

mod registry {
    use hubmock::registry::image::{ImageSpec, Index};

    use super::*;
    use crate::registry::Reg;

    #[tokio::test]
    async fn duplicate_per_manifest_posts_once_per_manifest_of_a_multi_arch_push() {
        let receiver = answering(200).await;
        let hub = TestHub::start().await;
        hub.repository("acme", "app").await;
        let quirky = pipeline(
            &hub.hub,
            "quirky",
            &[&receiver],
            quirks("duplicate-per-manifest"),
        );
        let plain = pipeline(&hub.hub, "plain", &[&receiver], None);
        let index = Index::of(vec![
            ImageSpec::new("q").platform("linux", "amd64").generate(),
            ImageSpec::new("q").platform("linux", "arm64").generate(),
        ]);
        Reg::new(&hub)
            .push_index("acme/app", "multi", &index)
            .await
            .expect(201);
        // The index and each platform's manifest: three posts, each `images: []`, one tag.
        let quirky = bodies_to(&hub, &receiver, &quirky, 3).await;
        for body in &quirky {
            assert_eq!(body["push_data"]["images"], json!([]), "{body:#}");
            assert_eq!(body["push_data"]["tag"], "multi");
        }
        // Each post is a run of its own, with its own callback URL.
        let callbacks: std::collections::HashSet<&str> = quirky
            .iter()
            .map(|b| b["callback_url"].as_str().unwrap())
            .collect();
        assert_eq!(callbacks.len(), 3);
        // A pipeline without the quirk gets the one post of the tag, naming the index.
        let plain = bodies_to(&hub, &receiver, &plain, 1).await;
        assert_eq!(
            plain[0]["push_data"]["images"],
            json!([index.manifest.digest().to_string()])
        );
        let runs = hub.api.runs(&Default::default()).await.unwrap();
        assert_eq!(runs.len(), 4);
    }

    #[tokio::test]
    async fn a_single_image_posts_once_even_with_duplicate_per_manifest() {
        let receiver = answering(200).await;
        let hub = TestHub::start().await;
        hub.repository("acme", "app").await;
        let url = pipeline(&hub.hub, "quirky", &[&receiver], quirks("hub-2020"));
        let image = ImageSpec::new("single").generate();
        Reg::new(&hub)
            .push_image("acme/app", "v1", &image)
            .await
            .expect(201);
        let bodies = bodies_to(&hub, &receiver, &url, 1).await;
        assert_eq!(bodies[0]["push_data"]["images"], json!([]));
        let runs = hub.api.runs(&Default::default()).await.unwrap();
        assert_eq!(runs.len(), 1);
    }

    /// On tokio's paused clock: the tag stays hidden an hour, then the test moves the clock.
    #[tokio::test(start_paused = true)]
    async fn tag_visible_after_hides_the_pushed_tag_when_the_webhook_arrives() {
        let receiver = RawReceiver::start(|_| async { Some(http_response(200, "")) }).await;
        let spec: QuirkSpec = "tag-visible-after=1h".parse().unwrap();
        let hub = Hub::builder()
            .config(Config::default().with_auth(false).with_quirks(&spec))
            .on_current_runtime()
            .start()
            .await;
        let repo = RepoName::parse("acme/app").unwrap();
        hub.create_repository("acme", "app").unwrap();
        hub.create_pipeline(&repo, PipelineSpec::new("p", &[&receiver.url()]))
            .unwrap();
        let pushed = hub.registry_push("acme/app", "v1").await.unwrap();
        let run = hub
            .wait_for_delivery(pushed.runs[0].id(), 0, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(run.steps()[0].delivery.is_some(), "the webhook arrived");
        let http = Http::new(&hub.uri());
        // Pulled by tag: unknown; not in the tags list; by digest: there.
        let by_tag = http.get("/v2/acme/app/manifests/v1").await.expect(404);
        assert_eq!(by_tag["errors"][0]["code"], "MANIFEST_UNKNOWN");
        let list = http.get("/v2/acme/app/tags/list").await.expect(200);
        assert_eq!(list["tags"], json!([]));
        http.get(&format!("/v2/acme/app/manifests/{}", pushed.digest))
            .await
            .expect(200);
        tokio::time::advance(Duration::from_secs(3601)).await;
        // A new client: the hour closed the idle connection of the last one.
        let http = Http::new(&hub.uri());
        http.get("/v2/acme/app/manifests/v1").await.expect(200);
        let list = http.get("/v2/acme/app/tags/list").await.expect(200);
        assert_eq!(list["tags"], json!(["v1"]));
    }
}
