//! `GET /v2/repositories/{ns}/{repo}/tags/[{tag}/]` and their `/v2/namespaces/...` twins:
//! Docker Hub's shape, pages with absolute links, ordering, the name filter and the errors.

use std::sync::{Arc, Mutex};

use hubmock::{Config, PayloadFormat, PipelineSpec, PlatformImage};
use serde_json::{json, Value};

use super::{is_timestamp, names, record, repo, walk};
use crate::util::{http_response, Http, RawReceiver, TestHub};

const TAGS: &str = "/v2/repositories/acme/app/tags/";

#[tokio::test]
async fn a_control_api_push_records_a_tag_in_docker_hubs_shape() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let image = "d".repeat(64);
    hub.http
        .post(
            "/_hubmock/repositories/acme/app/push",
            json!({"tag": "v1", "pusher": "ci-bot", "images": [image]}),
        )
        .await
        .expect(202);
    let tag = hub.http.get(&format!("{TAGS}v1/")).await.expect(200);
    assert_eq!(tag["name"], "v1", "{tag:#}");
    // The push's image id, as a digest; nothing was uploaded, so size 0 and linux/amd64.
    assert_eq!(tag["digest"], format!("sha256:{image}"), "{tag:#}");
    assert_eq!(tag["full_size"], 0, "{tag:#}");
    assert_eq!(tag["last_updater_username"], "ci-bot", "{tag:#}");
    assert_eq!(tag["tag_status"], "active", "{tag:#}");
    assert_eq!(
        tag["media_type"], "application/vnd.docker.distribution.manifest.v2+json",
        "{tag:#}"
    );
    assert_eq!(tag["content_type"], "image", "{tag:#}");
    assert_eq!(tag["v2"], true, "{tag:#}");
    for field in ["last_updated", "tag_last_pushed"] {
        assert!(is_timestamp(&tag[field]), "{field}: {tag:#}");
    }
    assert!(tag["tag_last_pulled"].is_null(), "{tag:#}");
    for field in ["id", "creator", "last_updater", "repository"] {
        assert!(
            tag[field].as_u64().is_some_and(|id| id > 0),
            "{field}: {tag:#}"
        );
    }
    let images = tag["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "{tag:#}");
    let image = &images[0];
    assert_eq!(
        (&image["os"], &image["architecture"]),
        (&json!("linux"), &json!("amd64"))
    );
    assert_eq!(image["digest"], tag["digest"], "{tag:#}");
    assert_eq!(image["size"], 0, "{tag:#}");
    assert_eq!(image["status"], "active", "{tag:#}");
    assert!(
        image["variant"].is_null() && image["os_version"].is_null(),
        "{tag:#}"
    );
    assert_eq!(image["last_pushed"], tag["last_updated"], "{tag:#}");
    // The same tag through the newer route, with or without the trailing slash.
    for path in [
        "/v2/namespaces/acme/repositories/app/tags/v1",
        "/v2/namespaces/acme/repositories/app/tags/v1/",
        "/v2/repositories/acme/app/tags/v1",
    ] {
        assert_eq!(hub.http.get(path).await.expect(200), tag, "{path}");
    }
}

#[tokio::test]
async fn a_push_without_images_records_the_made_up_image_id_its_webhook_carries() {
    let hub = TestHub::start().await;
    let receiver = crate::util::answering(200).await;
    hub.repository("acme", "app").await;
    hub.pipeline(
        "acme/app",
        "ci",
        &[format!("{}/hook", receiver.uri())],
        false,
    )
    .await;
    let run = hub.push("acme/app", "latest").await.remove(0);
    let image = run["push"]["images"][0]
        .as_str()
        .expect("a made-up image id");
    let tag = hub.http.get(&format!("{TAGS}latest/")).await.expect(200);
    assert_eq!(tag["digest"], format!("sha256:{image}"), "{tag:#}");
}

#[tokio::test]
async fn a_tag_pushed_again_keeps_its_id_and_shows_the_new_push() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let push = |image: &str| {
        json!({"tag": "v1", "images": [format!("sha256:{}", image.repeat(64))],
               "media_type": "application/vnd.oci.image.index.v1+json"})
    };
    let path = "/_hubmock/repositories/acme/app/push";
    hub.http.post(path, push("a")).await.expect(202);
    let first = hub.http.get(&format!("{TAGS}v1/")).await.expect(200);
    hub.http.post(path, push("b")).await.expect(202);
    let again = hub.http.get(&format!("{TAGS}v1/")).await.expect(200);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["digest"], format!("sha256:{}", "b".repeat(64)));
    assert_eq!(
        again["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert!(again["last_updated"].as_str() > first["last_updated"].as_str());
    let list = hub.http.get(TAGS).await.expect(200);
    assert_eq!(list["count"], 1, "{list:#}");
}

/// `acme/app` with tags `t1` .. `t5` pushed in that order, one second apart.
async fn five_tags(config: Config) -> TestHub {
    let hub = TestHub::with(config.with_auth(false)).await;
    hub.repository("acme", "app").await;
    for i in 1..=5 {
        let pushed = record(
            &format!("t{i}"),
            &i.to_string(),
            1_700_000_000.0 + f64::from(i),
            10,
        );
        hub.hub.record_tag(&repo("acme/app"), pushed).unwrap();
    }
    hub
}

#[tokio::test]
async fn tags_come_newest_first_in_pages_linked_by_absolute_urls() {
    let hub = five_tags(Config::default()).await;
    let page = hub
        .http
        .get(&format!("{TAGS}?page_size=2"))
        .await
        .expect(200);
    assert_eq!(page["count"], 5, "{page:#}");
    assert_eq!(names(&page), ["t5", "t4"]);
    assert!(page["previous"].is_null(), "{page:#}");
    assert_eq!(
        page["next"],
        format!("{}{TAGS}?page=2&page_size=2", hub.hub.uri()),
        "{page:#}"
    );
    let second = hub
        .http
        .get(page["next"].as_str().unwrap())
        .await
        .expect(200);
    assert_eq!(
        second["previous"],
        format!("{}{TAGS}?page=1&page_size=2", hub.hub.uri())
    );
    assert_eq!(
        walk(&hub.http, &format!("{TAGS}?page_size=2")).await,
        ["t5", "t4", "t3", "t2", "t1"]
    );
    // `ordering=last_updated` is the same order, as on Docker Hub.
    let ordered = walk(
        &hub.http,
        &format!("{TAGS}?ordering=last_updated&page_size=3"),
    )
    .await;
    assert_eq!(ordered, ["t5", "t4", "t3", "t2", "t1"]);
}

#[tokio::test]
async fn page_links_start_with_the_public_url_and_keep_the_other_parameters() {
    let hub = five_tags(Config::default().with_public_url("https://hub.example.com/")).await;
    let page = hub
        .http
        .get(&format!("{TAGS}?ordering=name&name=t&page_size=2&page=2"))
        .await
        .expect(200);
    assert_eq!(
        page["next"],
        format!("https://hub.example.com{TAGS}?ordering=name&name=t&page=3&page_size=2")
    );
    assert_eq!(
        page["previous"],
        format!("https://hub.example.com{TAGS}?ordering=name&name=t&page=1&page_size=2")
    );
}

#[tokio::test]
async fn tags_can_be_ordered_by_name_or_oldest_first_and_filtered_by_name() {
    let hub = five_tags(Config::default()).await;
    let all = |query: &str| {
        let http = hub.http.clone();
        let path = format!("/v2/namespaces/acme/repositories/app/tags?{query}");
        async move { names(&http.get(&path).await.expect(200)) }
    };
    assert_eq!(
        all("ordering=-last_updated").await,
        ["t1", "t2", "t3", "t4", "t5"]
    );
    assert_eq!(all("ordering=name").await, ["t1", "t2", "t3", "t4", "t5"]);
    assert_eq!(all("ordering=-name").await, ["t5", "t4", "t3", "t2", "t1"]);
    assert_eq!(all("name=3").await, ["t3"]);
    assert_eq!(all("name=nothing").await, Vec::<String>::new());
}

#[tokio::test]
async fn a_page_size_over_100_gives_pages_of_100() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    for i in 0..101 {
        let pushed = record(
            &format!("v{i:03}"),
            &format!("{i:x}"),
            1_700_000_000.0 + f64::from(i),
            1,
        );
        hub.hub.record_tag(&repo("acme/app"), pushed).unwrap();
    }
    let page = hub
        .http
        .get(&format!("{TAGS}?page_size=1000"))
        .await
        .expect(200);
    assert_eq!(page["results"].as_array().unwrap().len(), 100);
    assert_eq!(page["count"], 101);
    assert!(
        page["next"]
            .as_str()
            .unwrap()
            .ends_with("page=2&page_size=100"),
        "{page:#}"
    );
    // Without page_size, Docker Hub's 10.
    let page = hub.http.get(TAGS).await.expect(200);
    assert_eq!(page["results"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn bad_list_parameters_answer_400_naming_them_and_a_page_past_the_end_404() {
    let hub = five_tags(Config::default()).await;
    let before = hub.state().await;
    for (query, field) in [
        ("page=0", "page"),
        ("page=two", "page"),
        ("page_size=0", "page_size"),
        ("page_size=-5", "page_size"),
        ("ordering=size", "ordering"),
    ] {
        let body = hub.http.get(&format!("{TAGS}?{query}")).await.expect(400);
        let message = body[field][0]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: {body:#}"));
        assert!(
            message.contains(query.split('=').nth(1).unwrap()),
            "{query}: {message}"
        );
    }
    let body = hub
        .http
        .get(&format!("{TAGS}?ordering=size"))
        .await
        .expect(400);
    assert!(
        body["ordering"][0]
            .as_str()
            .unwrap()
            .contains("last_updated, -last_updated, name, -name"),
        "{body:#}"
    );
    let body = hub.http.get(&format!("{TAGS}?page=2")).await.expect(404);
    assert_eq!(body, json!({"detail": "Invalid page."}));
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn an_unknown_tag_answers_404_in_docker_hubs_tag_dialect() {
    let hub = five_tags(Config::default()).await;
    for path in [
        format!("{TAGS}nope/"),
        "/v2/namespaces/acme/repositories/app/tags/nope".to_owned(),
    ] {
        let body = hub.http.get(&path).await.expect(404);
        assert_eq!(
            body["message"], "httperror 404: tag 'nope' not found",
            "{body:#}"
        );
        assert_eq!(
            body["errinfo"],
            json!({"namespace": "acme", "repository": "app", "tag": "nope"})
        );
        assert!(
            body["detail"].as_str().unwrap().contains("no tag 'nope'"),
            "{body:#}"
        );
    }
}

#[tokio::test]
async fn the_tags_of_an_unknown_repository_answer_404() {
    let hub = TestHub::start().await;
    for path in [
        "/v2/repositories/acme/none/tags/",
        "/v2/repositories/acme/none/tags/v1/",
    ] {
        let body = hub.http.get(path).await.expect(404);
        assert!(
            body["detail"].as_str().unwrap().contains("acme/none"),
            "{body:#}"
        );
    }
    // An empty repository has an empty list.
    hub.repository("acme", "empty").await;
    let page = hub
        .http
        .get("/v2/repositories/acme/empty/tags")
        .await
        .expect(200);
    assert_eq!(
        page,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[tokio::test]
async fn a_registry_push_shows_its_platforms_and_the_receiver_finds_the_tag_when_called() {
    let hub = TestHub::with(Config::default().with_auth(false)).await;
    // The receiver asks the Hub API about the tag before it answers, as a deploy hook does.
    let seen: Arc<Mutex<Vec<(Value, Value)>>> = Arc::default();
    let client = Http::new(&hub.hub.uri());
    let receiver = {
        let seen = seen.clone();
        RawReceiver::start(move |body| {
            let (seen, client) = (seen.clone(), client.clone());
            async move {
                let payload: Value = serde_json::from_slice(&body).unwrap();
                let tag = client.get(&format!("{TAGS}multi/")).await.json();
                seen.lock().unwrap().push((payload, tag));
                Some(http_response(200, "{}"))
            }
        })
        .await
    };
    hub.repository("acme", "app").await;
    let mut spec = PipelineSpec::new("deploy", &[receiver.url().as_str()]);
    spec.expect_final_callback = Some(false);
    spec.payload_format = Some(PayloadFormat::Observed);
    hub.hub.create_pipeline(&repo("acme/app"), spec).unwrap();
    let mut index = record("multi", "1", 1_700_000_000.0, 300);
    index.media_type = "application/vnd.oci.image.index.v1+json".to_owned();
    index.images.push(PlatformImage {
        architecture: "arm".to_owned(),
        os: "linux".to_owned(),
        variant: Some("v7".to_owned()),
        digest: format!("sha256:{:0>64}", "2"),
        size: 200,
    });
    let run = hub
        .hub
        .record_tag(&repo("acme/app"), index.clone())
        .unwrap()
        .remove(0);
    hub.finished(&serde_json::to_value(&run).unwrap()).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (payload, tag) = &seen[0];
    assert_eq!(payload["push_data"]["tag"], "multi");
    assert_eq!(payload["push_data"]["media_type"], index.media_type);
    assert_eq!(
        tag["digest"], index.digest,
        "the tag was there when the webhook came: {tag:#}"
    );
    assert_eq!(tag["full_size"], 300);
    let platforms: Vec<(&str, &str, Option<&str>, u64)> = tag["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["os"].as_str().unwrap(),
                i["architecture"].as_str().unwrap(),
                i["variant"].as_str(),
                i["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("linux", "amd64", None, 300),
            ("linux", "arm", Some("v7"), 200)
        ]
    );
    // The legacy payload's images: the manifest digest.
    let runs = hub.hub.runs(&Default::default());
    assert_eq!(runs[0].push().images, [index.digest.clone()]);
}

#[tokio::test]
async fn a_refused_registry_push_changes_nothing() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let before = hub.state().await;
    for broken in [
        {
            let mut r = record("v1", "1", 1.0, 1);
            r.tag = ".hidden".to_owned();
            r
        },
        {
            let mut r = record("v1", "1", 1.0, 1);
            r.digest.clear();
            r
        },
    ] {
        let error = hub.hub.record_tag(&repo("acme/app"), broken).unwrap_err();
        assert!(matches!(error, hubmock::Error::Invalid(_)), "{error:?}");
    }
    // A refused push creates no implicit repository either.
    let error = hub
        .hub
        .record_tag(&repo("acme/new"), {
            let mut r = record("v1", "1", 1.0, 1);
            r.tag = String::new();
            r
        })
        .unwrap_err();
    assert!(matches!(error, hubmock::Error::Invalid(_)), "{error:?}");
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn head_says_whether_a_tag_or_repository_exists_without_a_body() {
    // Docker Hub clients check with HEAD (dockerhub-api's `check_repository_tag`, ...).
    let hub = five_tags(Config::default()).await;
    for (path, status) in [
        ("/v2/namespaces/acme/repositories/app/tags/t1", 200),
        ("/v2/namespaces/acme/repositories/app/tags", 200),
        ("/v2/namespaces/acme/repositories/app", 200),
        ("/v2/repositories/acme/", 200),
        ("/v2/namespaces/acme/repositories/app/tags/nope", 404),
        ("/v2/namespaces/acme/repositories/none", 404),
    ] {
        let head = hub
            .http
            .send(http::Method::HEAD, path, &[], bytes::Bytes::new())
            .await;
        assert_eq!(head.status.as_u16(), status, "HEAD {path}: {head:?}");
        assert!(head.body.is_empty(), "HEAD {path} sent a body");
    }
}
