//! The settings pages over plain HTTP: every page, every refusal (unknown repository, forged
//! and cross-site posts, bad pages, the control token), and that every stored string renders
//! as text. tests/browser.rs drives the same pages in a real browser.

use http::Method;
use hubmock::{Config, PlatformImage, RepoName, TagRecord};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::util::{answering, receiver, Resp, TestHub, WAIT};

const SETTINGS: &str = "/r/acme/app/~/settings/webhooks/";

/// Posts a form (`application/x-www-form-urlencoded`) as a browser on the same origin does.
async fn post_form(t: &TestHub, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body = form_body(fields);
    t.http
        .send(
            Method::POST,
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
}

fn form_body(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The body of an HTML answer with `status`; panics showing the exchange otherwise.
#[track_caller]
fn page(resp: &Resp, status: u16) -> String {
    assert_eq!(resp.status.as_u16(), status, "unexpected status: {resp:?}");
    assert_eq!(
        resp.headers["content-type"], "text/html; charset=utf-8",
        "{resp:?}"
    );
    String::from_utf8(resp.body.to_vec()).expect("pages are UTF-8")
}

/// Asserts a `303 See Other` to `location`.
#[track_caller]
fn redirects(resp: &Resp, location: &str) {
    assert_eq!(resp.status.as_u16(), 303, "{resp:?}");
    assert_eq!(resp.headers["location"], location, "{resp:?}");
}

/// An emulator with `acme/app`.
async fn with_repo() -> TestHub {
    let t = TestHub::start().await;
    t.repository("acme", "app").await;
    t
}

/// Creates a pipeline of these URLs through the form; answers its slug.
async fn create(t: &TestHub, name: &str, urls: &[&str]) -> String {
    let mut fields = vec![
        ("form", "pipeline"),
        ("name", name),
        ("expect_final_callback", "on"),
    ];
    fields.extend(urls.iter().map(|url| ("hook_url", *url)));
    let resp = post_form(t, SETTINGS, &fields).await;
    redirects(&resp, "/r/acme/app/~/settings/webhooks/#pipelines");
    hubmock::model::pipeline::slugify(name)
}

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
async fn a_form_posted_from_another_site_is_refused_and_changes_nothing() {
    let t = with_repo().await;
    let before = t.state().await;
    let body = form_body(&[("name", "p"), ("hook_url", "http://a/")]);
    for header in [
        ("origin", "http://evil.example"),
        ("origin", "http://127.0.0.1:1"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let resp = t
            .http
            .send(Method::POST, SETTINGS, &[header], body.clone())
            .await;
        let html = page(&resp, 403);
        assert!(html.contains("another site"), "{header:?}: {html}");
    }
    assert_eq!(t.state().await, before);
    // The pages' own origin, as a browser says it.
    let origin = t.hub.uri();
    let resp = t
        .http
        .send(
            Method::POST,
            SETTINGS,
            &[("origin", &origin), ("sec-fetch-site", "same-origin")],
            body,
        )
        .await;
    assert_eq!(resp.status.as_u16(), 303, "{resp:?}");
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

#[tokio::test]
async fn history_shows_each_step_and_the_exact_payload_sent() {
    let t = with_repo().await;
    let receiver = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_string("queued"))
        .mount(&receiver)
        .await;
    let hook = format!("{}/ci", receiver.uri());
    let slug = create(&t, "p", &[&hook, &hook]).await;
    let run = t.push("acme/app", "v1").await.remove(0);
    t.delivered(&run, 0).await;
    let html = page(
        &t.http.get(&format!("{SETTINGS}{slug}/history/")).await,
        200,
    );
    assert!(html.contains(&format!("Run #{}", run["id"])));
    assert!(html.contains(r#"<span class="status awaiting_callback">awaiting callback</span>"#));
    assert!(html.contains("HTTP 202"));
    assert!(html.contains("queued"));
    assert!(html.contains("Send callback"));
    // The payload as the deliveries log holds it, re-indented only.
    let log = t.http.get("/_hubmock/deliveries").await.expect(200);
    let sent = serde_json::to_string(&log["deliveries"][0]["request_body"]).unwrap();
    let start = html.find("<summary>Payload sent</summary><pre>").unwrap();
    let shown = &html[start..];
    let shown = &shown[shown.find("<pre>").unwrap() + 5..shown.find("</pre>").unwrap()];
    let shown = shown.replace("&quot;", "\"");
    let strip = |s: &str| s.split_whitespace().collect::<String>();
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(strip(&serde_json::to_string(&shown).unwrap()), strip(&sent));
}

#[tokio::test]
async fn send_callback_from_history_moves_the_chain_on() {
    let t = with_repo().await;
    let receiver = answering(200).await;
    let hook = format!("{}/hook", receiver.uri());
    let slug = create(&t, "p", &[&hook, &hook]).await;
    let run = t.push("acme/app", "v1").await.remove(0);
    t.delivered(&run, 0).await;
    let history = format!("{SETTINGS}{slug}/history/");
    let id = run["id"].to_string();
    let resp = post_form(
        &t,
        &history,
        &[
            ("run", &id),
            ("step", "0"),
            ("page", "1"),
            ("state", "success"),
            ("description", "tests passed"),
            ("context", "ci"),
            ("target_url", "http://ci.example/1"),
        ],
    )
    .await;
    redirects(&resp, &format!("{history}?page=1#run-{id}"));
    let after = t.delivered(&run, 1).await;
    assert_eq!(after["steps"][0]["status"], "success");
    assert_eq!(after["steps"][0]["callback"]["description"], "tests passed");
    assert_eq!(after["steps"][1]["status"], "awaiting_callback");
    let html = page(&t.http.get(&history).await, 200);
    assert!(html.contains(r#"<a href="http://ci.example/1" rel="noopener noreferrer nofollow">"#));
}

#[tokio::test]
async fn a_refused_callback_form_shows_the_messages_as_typed_and_changes_nothing() {
    let t = with_repo().await;
    let receiver = answering(200).await;
    let slug = create(&t, "p", &[&format!("{}/hook", receiver.uri())]).await;
    let other = create(&t, "other", &["http://127.0.0.1:9/x"]).await;
    let run = t.push("acme/app", "v1").await.remove(0);
    t.delivered(&run, 0).await;
    let history = format!("{SETTINGS}{slug}/history/");
    let id = run["id"].to_string();
    let before = t.state().await;
    let long = "d".repeat(256);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("run", &id), ("step", "0")], "This field is required."),
        (
            vec![("run", &id), ("step", "0"), ("state", "done")],
            "&quot;done&quot; is not a valid choice.",
        ),
        (
            vec![
                ("run", &id),
                ("step", "0"),
                ("state", "success"),
                ("target_url", "javascript:alert(1)"),
            ],
            "Enter a valid URL.",
        ),
        (
            vec![
                ("run", &id),
                ("step", "0"),
                ("state", "success"),
                ("description", &long),
            ],
            "Ensure this field has no more than 255 characters.",
        ),
        (
            vec![("run", "x"), ("step", "0"), ("state", "success")],
            "No step 0 of run x belongs to this pipeline",
        ),
        (
            vec![("run", &id), ("step", "7"), ("state", "success")],
            "No step 7 of run",
        ),
    ];
    for (fields, message) in cases {
        let html = page(&post_form(&t, &history, &fields).await, 400);
        assert!(
            html.contains(message),
            "{fields:?}: {message} not in {html}"
        );
        for (field, value) in &fields {
            if ["description", "target_url"].contains(field) {
                assert!(
                    html.contains(&format!(r#"value="{value}""#)),
                    "{field} not kept"
                );
            }
        }
        assert_eq!(t.state().await, before, "{fields:?} changed the state");
    }
    // Another pipeline's run is not this History's to call back.
    let html = page(
        &post_form(
            &t,
            &format!("{SETTINGS}{other}/history/"),
            &[("run", &id), ("step", "0"), ("state", "success")],
        )
        .await,
        400,
    );
    assert!(html.contains("belongs to this pipeline"), "{html}");
    // A step that awaits no callback (any more): Docker Hub's own refusal.
    let ok = [("run", id.as_str()), ("step", "0"), ("state", "success")];
    post_form(&t, &history, &ok).await;
    let html = page(&post_form(&t, &history, &ok).await, 400);
    assert!(html.contains("Update not allowed"), "{html}");
}

#[tokio::test]
async fn history_is_25_runs_a_page_newest_first() {
    let t = with_repo().await;
    let slug = create(&t, "p", &["http://127.0.0.1:9/closed"]).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let run = t.push("acme/app", &format!("v{i}")).await.remove(0);
        ids.push(run["id"].as_u64().unwrap());
    }
    let history = format!("{SETTINGS}{slug}/history/");
    let shown = |html: &str| -> Vec<u64> {
        html.match_indices(r#"<article class="run"#)
            .map(|(at, _)| {
                let rest = &html[at..];
                let id = &rest[rest.find("id=\"run-").unwrap() + 8..];
                id[..id.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    };
    let first = page(&t.http.get(&history).await, 200);
    let newest: Vec<u64> = ids.iter().rev().take(25).copied().collect();
    assert_eq!(shown(&first), newest);
    assert!(first.contains("Page 1 of 2"));
    let second = page(&t.http.get(&format!("{history}?page=2")).await, 200);
    let oldest: Vec<u64> = ids.iter().rev().skip(25).copied().collect();
    assert_eq!(shown(&second), oldest);
    for bad in ["3", "0", "x", "-1"] {
        page(&t.http.get(&format!("{history}?page={bad}")).await, 404);
    }
}

#[tokio::test]
async fn a_live_history_request_answers_once_the_page_changes() {
    let t = with_repo().await;
    let receiver = answering(200).await;
    let slug = create(&t, "p", &[&format!("{}/hook", receiver.uri())]).await;
    let history = format!("{SETTINGS}{slug}/history/");
    let html = page(&t.http.get(&history).await, 200);
    let version = version_of(&html);
    // Nothing to wait for when the version is not the page's.
    let resp = t.http.get(&format!("{history}?live=stale")).await;
    assert_eq!(version_of(&page(&resp, 200)), version);
    // The page's version: answered when a push starts a run.
    let waiting = {
        let http = t.http.clone();
        let url = format!("{history}?live={version}");
        tokio::spawn(async move { http.get(&url).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "answered before anything changed");
    let run = t.push("acme/app", "v1").await.remove(0);
    let resp = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    let html = page(&resp, 200);
    assert_ne!(version_of(&html), version);
    assert!(html.contains(&format!("run-{}", run["id"])));
}

fn version_of(html: &str) -> String {
    let at = html.find("data-version=\"").unwrap() + 14;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn every_stored_string_renders_as_text() {
    let t = TestHub::start().await;
    let xss = r#"<script>alert(1)</script>"'</textarea><img src=x onerror=alert(2)>"#;
    t.http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "description": &xss[..90.min(xss.len())]}),
        )
        .await
        .expect(201);
    let receiver = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(xss))
        .mount(&receiver)
        .await;
    let hook = format!("{}/hook?q='x'", receiver.uri());
    let slug = create(&t, &format!("p {xss}"), &[&hook, &hook]).await;
    let run = t.push("acme/app", "v1").await.remove(0);
    // The pusher through the push form.
    post_form(&t, SETTINGS, &[("form", "push"), ("pusher", xss)]).await;
    t.delivered(&run, 0).await;
    let history = format!("{SETTINGS}{slug}/history/");
    let id = run["id"].to_string();
    let resp = post_form(
        &t,
        &history,
        &[
            ("run", &id),
            ("step", "0"),
            ("state", "success"),
            ("description", xss),
            ("context", &xss[..60]),
        ],
    )
    .await;
    assert_eq!(resp.status.as_u16(), 303, "{resp:?}");
    t.delivered(&run, 1).await;
    for path in ["/", SETTINGS, &history] {
        let html = page(&t.http.get(path).await, 200);
        assert_eq!(html.matches("<script").count(), 1, "{path}: {html}");
        assert!(!html.contains("<img"), "{path}");
        assert!(!html.contains("</textarea>"), "{path}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
    }
    // A refused form shows the typed text as text too.
    let html = page(
        &post_form(&t, SETTINGS, &[("name", xss), ("hook_url", xss)]).await,
        400,
    );
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("<img"));
}

#[tokio::test]
async fn a_target_url_is_a_link_only_when_it_is_http() {
    let t = with_repo().await;
    let receiver = answering(200).await;
    let slug = create(&t, "p", &[&format!("{}/hook", receiver.uri())]).await;
    let run = t.push("acme/app", "v1").await.remove(0);
    t.delivered(&run, 0).await;
    let callback = json!({"state": "failure", "target_url": "http://ci.example/1"});
    t.callback(&run, 0, callback).await.expect(200);
    // A state document can carry any text; History still never links to a script.
    let mut state = t.state().await;
    let text = state
        .to_string()
        .replace("http://ci.example/1", "javascript:alert(1)");
    state = serde_json::from_str(&text).unwrap();
    t.http.put("/_hubmock/state", state).await.expect(200);
    let html = page(
        &t.http.get(&format!("{SETTINGS}{slug}/history/")).await,
        200,
    );
    assert!(html.contains("<code>javascript:alert(1)</code>"), "{html}");
    assert!(!html.contains("href=\"javascript"));
}

#[tokio::test]
async fn pages_carry_a_policy_that_runs_only_their_own_inline_code() {
    let t = with_repo().await;
    let resp = t.http.get(SETTINGS).await;
    let html = page(&resp, 200);
    let policy = resp.headers["content-security-policy"].to_str().unwrap();
    let nonce = &policy[policy.find("'nonce-").unwrap() + 7..];
    let nonce = &nonce[..nonce.find('\'').unwrap()];
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(html.contains(&format!(r#"<script nonce="{nonce}">"#)));
    // No external asset: nothing is loaded from anywhere.
    assert!(!html.contains(" src="), "{html}");
    assert!(!html.contains("<link"));
}

mod token {
    use super::*;

    const TOKEN: &str = "s3cret;token";

    async fn guarded() -> TestHub {
        let t = TestHub::with(Config::default().with_auth(false).with_control_token(TOKEN)).await;
        t.hub.create_repository("acme", "app").unwrap();
        t
    }

    #[tokio::test]
    async fn a_page_without_the_token_asks_for_it() {
        let t = guarded().await;
        for path in ["/", SETTINGS] {
            let html = page(&t.http.get(path).await, 401);
            assert!(html.contains(r#"<label for="token">Control token</label>"#));
            assert!(html.contains(r#"<form method="get">"#));
        }
        let html = page(&t.http.get("/?token=wrong").await, 401);
        assert!(html.contains("not this hubmock's control token"));
        assert!(!html.contains("wrong"));
        // A post without it changes nothing.
        let resp = post_form(&t, "/", &[("namespace", "acme"), ("name", "other")]).await;
        page(&resp, 401);
        assert!(t.hub.create_repository("acme", "other").is_ok());
    }

    #[tokio::test]
    async fn the_token_given_once_is_kept_in_a_strict_http_only_cookie() {
        let t = guarded().await;
        let query = form_body(&[("page", "1"), ("token", TOKEN)]);
        let resp = t.http.get(&format!("{SETTINGS}?{query}")).await;
        redirects(&resp, &format!("{SETTINGS}?page=1"));
        let cookie = resp.headers["set-cookie"].to_str().unwrap();
        assert_eq!(
            cookie,
            "hubmock_control_token=s3cret%3Btoken; Path=/; HttpOnly; SameSite=Strict"
        );
        let pair = cookie.split(';').next().unwrap();
        let resp = t
            .http
            .send(Method::GET, SETTINGS, &[("cookie", pair)], "")
            .await;
        page(&resp, 200);
        // The control API's bearer header works too; a cookie is for browsers only.
        let bearer = format!("Bearer {TOKEN}");
        let resp = t
            .http
            .send(Method::GET, SETTINGS, &[("authorization", &bearer)], "")
            .await;
        page(&resp, 200);
        let resp = t
            .http
            .send(Method::GET, "/_hubmock/runs", &[("cookie", pair)], "")
            .await;
        assert_eq!(resp.status.as_u16(), 401, "{resp:?}");
    }
}
