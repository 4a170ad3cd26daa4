//! What keeps the pages safe: stored strings as text, links only to the web, the CSP, forms
//! only from the pages' own origin, and the control token.

use http::Method;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use super::*;

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
