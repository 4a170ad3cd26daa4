//! History: each step as sent and answered, its pages, its long-poll, "send callback".

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use super::*;

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
async fn history_shows_the_steps_own_payload_and_lists_a_fault_plans_extra_posts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(
        &path,
        "faults: [{kind: forged, claims: evil/app}, {kind: duplicate}]",
    )
    .unwrap();
    let plan = hubmock::faults::FaultPlan::from_file(&path).unwrap();
    let t = TestHub::with(
        hubmock::Config::default()
            .with_auth(false)
            .with_fault_plan(plan),
    )
    .await;
    t.repository("acme", "app").await;
    let receiver = crate::util::answering(200).await;
    let hook = format!("{}/ci", receiver.uri());
    let slug = create(&t, "p", &[&hook]).await;
    t.push("acme/app", "v1").await;
    t.api
        .wait_for_deliveries(&Default::default(), 3, crate::util::WAIT)
        .await
        .unwrap();
    let html = page(
        &t.http.get(&format!("{SETTINGS}{slug}/history/")).await,
        200,
    );
    let start = html.find("<summary>Payload sent</summary><pre>").unwrap();
    let shown = &html[start..start + html[start..].find("</pre>").unwrap()];
    assert!(
        shown.contains("acme/app") && !shown.contains("evil/app"),
        "{shown}"
    );
    assert!(
        html.contains("Also posted by the fault plan: <code>duplicate</code> (HTTP 200), <code>forged</code> (HTTP 200)"),
        "{html}"
    );
}
