//! Home, a repository's webhooks page and its forms, its tags, and delete.

use http::Method;

use super::*;

#[tokio::test]
async fn the_home_page_shows_the_version_and_links_every_repository() {
    let t = with_repo().await;
    t.repository("library", "redis").await;
    let html = page(&t.http.get("/").await, 200);
    assert!(html.contains(concat!("hubmock ", env!("CARGO_PKG_VERSION"))));
    assert!(html.contains(r#"href="/r/acme/app/~/settings/webhooks/""#));
    assert!(html.contains(r#"href="/_/redis/~/settings/webhooks/""#));
    assert!(html.contains(r#"href="/_hubmock/openapi.json""#));
    assert!(html.contains(r#"href="/_hubmock/deliveries""#));
    assert_eq!(html.matches("<h1>").count(), 1);
}

#[tokio::test]
async fn a_repository_created_from_the_home_page_opens_its_settings() {
    let t = TestHub::start().await;
    let resp = post_form(&t, "/", &[("namespace", "acme"), ("name", "app")]).await;
    redirects(&resp, SETTINGS);
    let html = page(&t.http.get(SETTINGS).await, 200);
    assert!(html.contains("Webhooks of acme/app"));
    // The API's own messages, beside the fields, with what was typed kept.
    let before = t.state().await;
    let resp = post_form(&t, "/", &[("namespace", "A!"), ("name", "app")]).await;
    let html = page(&resp, 400);
    assert!(html.contains("must be 2 to 30 characters"), "{html}");
    assert!(html.contains(r#"value="A!""#));
    let html = page(
        &post_form(&t, "/", &[("namespace", "acme"), ("name", "app")]).await,
        400,
    );
    assert!(html.contains("already exists"), "{html}");
    assert_eq!(t.state().await, before);
}

#[tokio::test]
async fn head_on_a_page_answers_its_head_without_a_body() {
    let t = with_repo().await;
    let resp = t.http.send(Method::HEAD, SETTINGS, &[], "").await;
    assert_eq!(resp.status.as_u16(), 200, "{resp:?}");
    assert_eq!(resp.headers["content-type"], "text/html; charset=utf-8");
    assert!(resp.body.is_empty());
}

#[tokio::test]
async fn an_unknown_repository_or_pipeline_is_a_404_page_with_a_link_home() {
    let t = with_repo().await;
    for path in [
        "/r/acme/nothing/~/settings/webhooks/",
        "/r/NOT_A_NAME/x/~/settings/webhooks/",
        "/_/nothing/~/settings/webhooks/",
        "/r/acme/app/~/settings/webhooks/nope/history/",
        "/r/acme/app/~/settings/webhooks/nope/delete/",
    ] {
        let html = page(&t.http.get(path).await, 404);
        assert!(html.contains(r#"href="/""#), "{path}: {html}");
        assert!(html.contains("<h1>Not found</h1>"), "{path}: {html}");
    }
    // A post to an unknown repository changes nothing, and is a 404 too.
    let resp = post_form(
        &t,
        "/r/acme/nothing/~/settings/webhooks/",
        &[("name", "p"), ("hook_url", "http://a/")],
    )
    .await;
    page(&resp, 404);
    let resp = post_form(&t, "/r/acme/app/~/settings/webhooks/nope/delete/", &[]).await;
    page(&resp, 404);
}

#[tokio::test]
async fn a_pipeline_created_through_the_form_is_the_apis_pipeline() {
    let t = with_repo().await;
    let resp = post_form(
        &t,
        SETTINGS,
        &[
            ("form", "pipeline"),
            ("name", "CI then deploy"),
            ("hook_url", "http://127.0.0.1:9/ci"),
            ("hook_url", ""),
            ("hook_url", "http://u:secret@127.0.0.1:9/deploy"),
            ("payload_format", "observed"),
            ("quirks", "no-tag"),
        ],
    )
    .await;
    redirects(&resp, "/r/acme/app/~/settings/webhooks/#pipelines");
    let view = t
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/ci-then-deploy/")
        .await
        .expect(200);
    assert_eq!(view["expect_final_callback"], false);
    assert_eq!(view["payload_format"], "observed");
    assert_eq!(view["quirks"], "no-tag");
    let urls: Vec<&str> = view["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["hook_url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        ["http://127.0.0.1:9/ci", "http://u:***@127.0.0.1:9/deploy"]
    );
    let html = page(&t.http.get(SETTINGS).await, 200);
    assert!(html.contains("CI then deploy"));
    assert!(html.contains("http://u:***@127.0.0.1:9/deploy"));
    assert!(!html.contains("secret"), "a hook URL's password is shown");
    assert!(
        html.contains("<dt>Quirks</dt><dd><code>no-tag</code></dd>"),
        "{html}"
    );
}

#[tokio::test]
async fn add_webhook_without_javascript_posts_back_one_more_field_and_creates_nothing() {
    let t = with_repo().await;
    let before = t.state().await;
    let resp = post_form(
        &t,
        SETTINGS,
        &[
            ("form", "pipeline"),
            ("name", "typed"),
            ("hook_url", "http://first.example/"),
            ("action", "add-url"),
        ],
    )
    .await;
    let html = page(&resp, 200);
    assert!(html.contains(r#"id="hook_url-0" name="hook_url" value="http://first.example/""#));
    assert!(html.contains(r#"<label for="hook_url-1">Webhook URL 2</label>"#));
    assert!(html.contains(r#"value="typed""#));
    // An unticked checkbox stays unticked.
    assert!(!html.contains("checked"), "{html}");
    assert_eq!(t.state().await, before);
}

#[tokio::test]
async fn a_refused_pipeline_form_shows_the_apis_messages_beside_the_fields_as_typed() {
    let t = with_repo().await;
    create(&t, "taken", &["http://a.example/"]).await;
    let before = t.state().await;
    let long_url = format!("http://e.x/{}", "a".repeat(300));
    let long_name = "n".repeat(101);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        // Missing fields, as a forged post sends them.
        (vec![], "This field is required."),
        (vec![("name", "x")], "This field is required."),
        (
            vec![("name", ""), ("hook_url", "http://a/")],
            "This field may not be blank.",
        ),
        (
            vec![("name", "x"), ("hook_url", "ftp://a/")],
            "Invalid value.",
        ),
        (
            vec![("name", "x"), ("hook_url", " ")],
            "A pipeline needs at least one webhook.",
        ),
        (
            vec![("name", "x"), ("hook_url", &long_url)],
            "Ensure this field has no more than 255 characters.",
        ),
        (
            vec![("name", &long_name), ("hook_url", "http://a/")],
            "Ensure this field has no more than 100 characters.",
        ),
        // Wrong types.
        (
            vec![
                ("name", "x"),
                ("hook_url", "http://a/"),
                ("expect_final_callback", "maybe"),
            ],
            "Must be a valid boolean.",
        ),
        (
            vec![
                ("name", "x"),
                ("hook_url", "http://a/"),
                ("payload_format", "xml"),
            ],
            "unknown payload format &#39;xml&#39;",
        ),
        (
            vec![
                ("name", "x"),
                ("hook_url", "http://a/"),
                ("quirks", "hub-2030"),
            ],
            "unknown quirk or profile &#39;hub-2030&#39;",
        ),
        (
            vec![("name", "Taken"), ("hook_url", "http://a/")],
            "already exists for this repository",
        ),
    ];
    for (fields, message) in cases {
        let resp = post_form(&t, SETTINGS, &fields).await;
        let html = page(&resp, 400);
        let message = message.replace("&#39;", "'");
        assert!(
            html.contains(&message),
            "{fields:?}: {message} not in {html}"
        );
        for (field, value) in &fields {
            if *field == "name" || *field == "hook_url" {
                assert!(
                    html.contains(&format!(r#"value="{value}""#)),
                    "{field} not kept"
                );
            }
        }
        assert!(html.contains(r#"aria-invalid="true""#));
        assert_eq!(t.state().await, before, "{fields:?} changed the state");
    }
}

#[tokio::test]
async fn the_settings_page_lists_the_repositorys_tags_last_pushed_first() {
    let t = with_repo().await;
    let html = page(&t.http.get(SETTINGS).await, 200);
    assert!(html.contains("None yet: a push records its tag here"));
    let repo = RepoName::new("acme", "app").unwrap();
    let image = |architecture: &str, variant: Option<&str>| PlatformImage {
        architecture: architecture.to_owned(),
        os: "linux".to_owned(),
        variant: variant.map(str::to_owned),
        digest: format!("sha256:{}", "b".repeat(64)),
        size: 14_000_000,
    };
    let record = TagRecord {
        tag: "v1.0.0".to_owned(),
        digest: format!("sha256:{}", "a".repeat(64)),
        media_type: "application/vnd.oci.image.index.v1+json".to_owned(),
        full_size: 28_345_678,
        pusher: "alice".to_owned(),
        pushed_at: hubmock::model::time::Timestamp::now(),
        images: vec![image("amd64", None), image("arm", Some("v7"))],
    };
    t.hub.record_tag(&repo, record).unwrap();
    // "Push now" records its tag too (the control API's push does).
    post_form(
        &t,
        SETTINGS,
        &[("form", "push"), ("tag", "latest"), ("pusher", "bob")],
    )
    .await;
    let html = page(&t.http.get(SETTINGS).await, 200);
    let row = |tag: &str| {
        let start = html.find(&format!(r#"<tr id="tag-{tag}">"#)).unwrap();
        let row = &html[start..];
        row[..row.find("</tr>").unwrap()].to_owned()
    };
    let v1 = row("v1.0.0");
    for shown in [
        &format!("sha256:{}", "a".repeat(64)),
        "28.3 MB",
        "linux/amd64, linux/arm/v7",
        "<td>alice</td>",
    ] {
        assert!(v1.contains(shown), "{shown} not in {v1}");
    }
    let latest = row("latest");
    assert!(latest.contains("<td>bob</td>"), "{latest}");
    assert!(
        html.find(r#"id="tag-latest""#) < html.find(r#"id="tag-v1.0.0""#),
        "the last pushed is not first"
    );
}

#[tokio::test]
async fn push_now_goes_through_the_control_apis_push() {
    let t = with_repo().await;
    let slug = create(&t, "p", &["http://127.0.0.1:9/hook"]).await;
    let before = t.state().await;
    let html = page(
        &post_form(&t, SETTINGS, &[("form", "push"), ("tag", "-bad")]).await,
        400,
    );
    assert!(html.contains("A tag is 1 to 128 characters"), "{html}");
    assert!(html.contains(r#"value="-bad""#));
    assert_eq!(t.state().await, before);
    let resp = post_form(
        &t,
        SETTINGS,
        &[("form", "push"), ("tag", "v2"), ("pusher", "alice")],
    )
    .await;
    redirects(&resp, "/r/acme/app/~/settings/webhooks/#pipelines");
    let runs = t.api.runs(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].push().tag, "v2");
    assert_eq!(runs[0].push().pusher, "alice");
    assert_eq!(runs[0].pipeline(), slug);
}

#[tokio::test]
async fn delete_asks_first_then_deletes_and_cancels_pending_runs() {
    let t = with_repo().await;
    let receiver = answering(200).await;
    let slug = create(&t, "p", &[&format!("{}/hook", receiver.uri())]).await;
    let run = t.push("acme/app", "v1").await.remove(0);
    t.delivered(&run, 0).await;
    let delete = format!("{SETTINGS}{slug}/delete/");
    let html = page(&t.http.get(&delete).await, 200);
    assert!(html.contains("1 pending run(s) are cancelled"), "{html}");
    assert!(html.contains(&format!(r#"<form method="post" action="{delete}">"#)));
    let pipelines = "/v2/repositories/acme/app/webhook_pipeline/";
    // Asking changed nothing.
    assert_eq!(t.http.get(pipelines).await.expect(200)["count"], 1);
    redirects(
        &post_form(&t, &delete, &[]).await,
        "/r/acme/app/~/settings/webhooks/#pipelines",
    );
    assert_eq!(t.http.get(pipelines).await.expect(200)["count"], 0);
    assert_eq!(t.finished(&run).await["status"], "cancelled");
}
