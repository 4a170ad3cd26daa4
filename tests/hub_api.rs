//! The emulated Docker Hub API v2 (SPEC section 5): login, tokens and ownership, repositories,
//! webhook pipelines and their history, through real HTTP.

use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::util::{receiver, Http, TestHub};

/// A hub with auth on and the user `acme` (password `pw`), who owns namespace `acme`.
async fn hub_with_acme() -> TestHub {
    TestHub::with(hubmock::Config::default().with_user("acme", "pw")).await
}

/// Logs in and answers the token.
async fn login(hub: &TestHub, username: &str, password: &str) -> String {
    let body = hub
        .http
        .post(
            "/v2/users/login/",
            json!({"username": username, "password": password}),
        )
        .await
        .expect(200);
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login answered no token string: {body:#}"))
        .to_owned()
}

/// A hub with `acme`, the repository `acme/app`, and a client holding acme's token.
async fn acme_app() -> (TestHub, Http) {
    let hub = hub_with_acme().await;
    hub.repository("acme", "app").await;
    let token = login(&hub, "acme", "pw").await;
    let api = hub.http.with_token(&token);
    (hub, api)
}

/// The body real clients send to create a pipeline.
fn pipeline_body(name: &str, hook_url: &str) -> Value {
    json!({
        "name": name,
        "expect_final_callback": false,
        "webhooks": [{"name": name, "hook_url": hook_url}],
        "registry": "registry-1.docker.io",
    })
}

const PIPELINES: &str = "/v2/repositories/acme/app/webhook_pipeline/";

/// Whether `value` looks like the RFC 3339 timestamps Docker Hub shows.
fn is_timestamp(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() >= 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z'))
}

// ---- login ---------------------------------------------------------------------------------

#[tokio::test]
async fn login_answers_a_token_that_opens_the_api() {
    let hub = hub_with_acme().await;
    hub.repository("acme", "app").await;
    let token = login(&hub, "acme", "pw").await;
    assert!(!token.is_empty());
    let repo = hub
        .http
        .with_token(&token)
        .get("/v2/repositories/acme/app/")
        .await
        .expect(200);
    assert_eq!(repo["name"], "app");
}

#[tokio::test]
async fn an_expired_token_is_refused_exactly_as_an_unknown_one() {
    // A lifetime of zero: every token has expired by the time it is sent.
    let config = hubmock::Config::default()
        .with_user("acme", "pw")
        .with_token_ttl(std::time::Duration::ZERO);
    let hub = TestHub::with(config).await;
    hub.repository("acme", "app").await;
    let expired = login(&hub, "acme", "pw").await;
    for path in ["/v2/user/", PIPELINES, "/v2/repositories/acme/app/"] {
        let refused = hub.http.with_token(&expired).get(path).await;
        let unknown = hub.http.with_token("garbage").get(path).await;
        assert_eq!(refused.status.as_u16(), 401, "{refused:?}");
        assert_eq!(refused.body, unknown.body, "{path}");
        assert_eq!(
            refused.headers.get("content-type"),
            unknown.headers.get("content-type")
        );
    }
    // The registry refuses it as a bearer just as it refuses a token it never issued.
    let refused = hub.http.with_bearer(&expired).get("/v2/").await;
    let unknown = hub.http.with_bearer("garbage").get("/v2/").await;
    assert_eq!(refused.status.as_u16(), 401, "{refused:?}");
    assert_eq!(refused.body, unknown.body);
    assert_eq!(
        refused.headers.get("www-authenticate"),
        unknown.headers.get("www-authenticate")
    );
}

#[tokio::test]
async fn a_tokens_expiry_claim_is_its_lifetime_after_the_login() {
    let hub = hub_with_acme().await;
    let token = login(&hub, "acme", "pw").await;
    use base64::Engine;
    let claims = token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 600, "{claims}");
}

#[tokio::test]
async fn login_with_a_wrong_password_answers_401() {
    let hub = hub_with_acme().await;
    let body = hub
        .http
        .post(
            "/v2/users/login/",
            json!({"username": "acme", "password": "wrong"}),
        )
        .await
        .expect(401);
    assert!(body["detail"].is_string(), "{body:#}");
    assert!(body.get("token").is_none(), "{body:#}");
}

#[tokio::test]
async fn login_with_an_unknown_user_answers_401() {
    let hub = hub_with_acme().await;
    let body = hub
        .http
        .post(
            "/v2/users/login/",
            json!({"username": "nobody", "password": "pw"}),
        )
        .await
        .expect(401);
    assert!(body["detail"].is_string(), "{body:#}");
}

#[tokio::test]
async fn login_without_a_password_answers_400_naming_the_field() {
    let hub = hub_with_acme().await;
    let body = hub
        .http
        .post("/v2/users/login/", json!({"username": "acme"}))
        .await
        .expect(400);
    assert!(body["password"].is_array(), "{body:#}");
    assert!(body.get("username").is_none(), "{body:#}");
}

#[tokio::test]
async fn login_without_any_field_answers_400_naming_each_field() {
    let hub = hub_with_acme().await;
    let body = hub
        .http
        .post("/v2/users/login/", json!({}))
        .await
        .expect(400);
    assert_eq!(
        body["username"],
        json!(["This field is required."]),
        "{body:#}"
    );
    assert_eq!(
        body["password"],
        json!(["This field is required."]),
        "{body:#}"
    );
}

#[tokio::test]
async fn the_default_user_hubmock_exists_when_no_user_is_given() {
    let hub = TestHub::with(hubmock::Config::default()).await;
    hub.repository("hubmock", "app").await;
    let token = login(&hub, "hubmock", "hubmock").await;
    hub.http
        .with_token(&token)
        .get("/v2/repositories/hubmock/app/")
        .await
        .expect(200);
}

#[tokio::test]
async fn a_configured_user_replaces_the_default_user() {
    let hub = hub_with_acme().await;
    hub.http
        .post(
            "/v2/users/login/",
            json!({"username": "hubmock", "password": "hubmock"}),
        )
        .await
        .expect(401);
}

// ---- tokens and ownership ------------------------------------------------------------------

/// Every Hub API endpoint behind a token (the webhook settings: reads of a public repository
/// need none, see tests/hub_read), as (method, path, body).
fn protected_endpoints() -> Vec<(http::Method, &'static str, Value)> {
    use http::Method;
    vec![
        (Method::GET, PIPELINES, Value::Null),
        (
            Method::POST,
            PIPELINES,
            pipeline_body("New", "https://example.com/h"),
        ),
        (
            Method::GET,
            "/v2/repositories/acme/app/webhook_pipeline/ci/",
            Value::Null,
        ),
        (
            Method::PATCH,
            "/v2/repositories/acme/app/webhook_pipeline/ci/",
            json!({"name": "Changed"}),
        ),
        (
            Method::DELETE,
            "/v2/repositories/acme/app/webhook_pipeline/ci/",
            Value::Null,
        ),
        (
            Method::GET,
            "/v2/repositories/acme/app/webhook_pipeline/ci/history/",
            Value::Null,
        ),
    ]
}

/// Sends every protected request with `client` and asserts each answers `status`; the state
/// must not change.
async fn assert_every_endpoint_answers(hub: &TestHub, client: &Http, status: u16) {
    let before = hub.state().await;
    for (method, path, body) in protected_endpoints() {
        let resp = if body.is_null() {
            client.send(method, path, &[], bytes::Bytes::new()).await
        } else {
            client.send_json(method, path, body).await
        };
        let body = resp.expect(status);
        assert!(body["detail"].is_string(), "{resp:?}");
    }
    assert_eq!(
        hub.state().await,
        before,
        "a refused request changed the state"
    );
}

#[tokio::test]
async fn hub_api_endpoints_without_a_token_answer_401() {
    let (hub, api) = acme_app().await;
    api.post(PIPELINES, pipeline_body("CI", "https://example.com/h"))
        .await
        .expect(201);
    assert_every_endpoint_answers(&hub, &hub.http, 401).await;
}

#[tokio::test]
async fn hub_api_endpoints_with_a_garbage_token_answer_401() {
    let (hub, api) = acme_app().await;
    api.post(PIPELINES, pipeline_body("CI", "https://example.com/h"))
        .await
        .expect(201);
    assert_every_endpoint_answers(&hub, &hub.http.with_token("garbage"), 401).await;
}

#[tokio::test]
async fn an_authorization_header_without_a_known_prefix_answers_401() {
    let (hub, _api) = acme_app().await;
    let token = login(&hub, "acme", "pw").await;
    let header = format!("Token {token}");
    let resp = hub
        .http
        .send(
            http::Method::GET,
            "/v2/repositories/acme/app/",
            &[("authorization", &header)],
            bytes::Bytes::new(),
        )
        .await;
    resp.expect(401);
}

#[tokio::test]
async fn hub_api_accepts_both_jwt_and_bearer_tokens() {
    let hub = hub_with_acme().await;
    hub.repository("acme", "app").await;
    let token = login(&hub, "acme", "pw").await;
    for scheme in ["JWT", "Bearer"] {
        let header = format!("{scheme} {token}");
        let resp = hub
            .http
            .send(
                http::Method::GET,
                "/v2/repositories/acme/app/",
                &[("authorization", &header)],
                bytes::Bytes::new(),
            )
            .await;
        assert_eq!(resp.expect(200)["namespace"], "acme", "{scheme}");
    }
}

#[tokio::test]
async fn a_user_who_does_not_own_the_namespace_gets_403() {
    let hub = TestHub::with(
        hubmock::Config::default()
            .with_user("acme", "pw")
            .with_user("other", "pw2"),
    )
    .await;
    hub.repository("acme", "app").await;
    let acme = hub.http.with_token(&login(&hub, "acme", "pw").await);
    acme.post(PIPELINES, pipeline_body("CI", "https://example.com/h"))
        .await
        .expect(201);
    let other = hub.http.with_token(&login(&hub, "other", "pw2").await);
    assert_every_endpoint_answers(&hub, &other, 403).await;
}

#[tokio::test]
async fn a_private_repository_of_another_user_answers_404() {
    let hub = TestHub::with(
        hubmock::Config::default()
            .with_user("acme", "pw")
            .with_user("other", "pw2"),
    )
    .await;
    hub.http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "is_private": true}),
        )
        .await
        .expect(201);
    let acme = hub.http.with_token(&login(&hub, "acme", "pw").await);
    acme.post(PIPELINES, pipeline_body("CI", "https://example.com/h"))
        .await
        .expect(201);
    let other = hub.http.with_token(&login(&hub, "other", "pw2").await);
    assert_every_endpoint_answers(&hub, &other, 404).await;
    // Its owner still sees it.
    let repo = acme.get("/v2/repositories/acme/app/").await.expect(200);
    assert_eq!(repo["is_private"], true);
}

// ---- repositories --------------------------------------------------------------------------

#[tokio::test]
async fn get_repository_answers_the_repository() {
    let hub = hub_with_acme().await;
    hub.http
        .post(
            "/_hubmock/repositories",
            json!({"namespace": "acme", "name": "app", "description": "The app",
                   "full_description": "# App", "star_count": 7}),
        )
        .await
        .expect(201);
    let api = hub.http.with_token(&login(&hub, "acme", "pw").await);
    let repo = api.get("/v2/repositories/acme/app/").await.expect(200);
    assert_eq!(repo["namespace"], "acme", "{repo:#}");
    assert_eq!(repo["name"], "app", "{repo:#}");
    assert_eq!(repo["description"], "The app", "{repo:#}");
    assert_eq!(repo["full_description"], "# App", "{repo:#}");
    assert_eq!(repo["star_count"], 7, "{repo:#}");
    assert_eq!(repo["is_private"], false, "{repo:#}");
}

#[tokio::test]
async fn get_an_unknown_repository_answers_404() {
    let (_hub, api) = acme_app().await;
    let body = api.get("/v2/repositories/acme/nothing/").await.expect(404);
    assert!(body["detail"].is_string(), "{body:#}");
}

// ---- creating pipelines --------------------------------------------------------------------

#[tokio::test]
async fn creating_a_pipeline_with_a_real_client_body_answers_201_with_every_field() {
    let (_hub, api) = acme_app().await;
    let created = api
        .post(
            PIPELINES,
            json!({"name": "Deploy to Staging", "expect_final_callback": false,
                   "webhooks": [{"name": "CI hook", "hook_url": "https://ci.example.com/hook?x=1"}],
                   "registry": "registry-1.docker.io"}),
        )
        .await
        .expect(201);
    assert_eq!(created["name"], "Deploy to Staging", "{created:#}");
    assert_eq!(created["slug"], "deploy-to-staging", "{created:#}");
    assert_eq!(created["expect_final_callback"], false, "{created:#}");
    assert_eq!(created["creator"], "acme", "{created:#}");
    assert!(is_timestamp(&created["created"]), "{created:#}");
    assert!(is_timestamp(&created["last_updated"]), "{created:#}");
    let webhooks = created["webhooks"].as_array().expect("webhooks");
    assert_eq!(webhooks.len(), 1, "{created:#}");
    assert_eq!(webhooks[0]["name"], "CI hook");
    assert_eq!(webhooks[0]["hook_url"], "https://ci.example.com/hook?x=1");
    assert!(is_timestamp(&webhooks[0]["created"]), "{created:#}");
    assert!(is_timestamp(&webhooks[0]["last_updated"]), "{created:#}");
    // And it is there afterwards.
    let list = api.get(PIPELINES).await.expect(200);
    assert_eq!(list["results"], json!([created]));
}

#[tokio::test]
async fn expect_final_callback_defaults_to_true() {
    let (_hub, api) = acme_app().await;
    let created = api
        .post(
            PIPELINES,
            json!({"name": "CI", "webhooks": [{"name": "a", "hook_url": "https://example.com/h"}]}),
        )
        .await
        .expect(201);
    assert_eq!(created["expect_final_callback"], true, "{created:#}");
}

#[tokio::test]
async fn an_invalid_hook_url_answers_400_invalid_value_and_creates_nothing() {
    let (hub, api) = acme_app().await;
    let before = hub.state().await;
    for url in [
        " https://example.com/h",
        "https://example.com/h ",
        "/relative/hook",
        "example.com/hook",
        "ftp://example.com/hook",
        "",
    ] {
        let body = api
            .post(PIPELINES, pipeline_body("CI", url))
            .await
            .expect(400);
        assert_eq!(
            body,
            json!({"webhooks": [{"hook_url": ["Invalid value."]}]}),
            "hook_url {url:?}"
        );
    }
    assert_eq!(api.get(PIPELINES).await.expect(200)["count"], 0);
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_hook_url_over_255_characters_answers_400_and_255_are_accepted() {
    let (hub, api) = acme_app().await;
    let url = |len: usize| format!("https://example.com/{}", "a".repeat(len - 20));
    assert_eq!(url(256).chars().count(), 256);
    let before = hub.state().await;
    let body = api
        .post(PIPELINES, pipeline_body("CI", &url(256)))
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"webhooks": [{"hook_url": ["Ensure this field has no more than 255 characters."]}]})
    );
    assert_eq!(hub.state().await, before);
    let created = api
        .post(PIPELINES, pipeline_body("CI", &url(255)))
        .await
        .expect(201);
    assert_eq!(created["webhooks"][0]["hook_url"], url(255));
}

#[tokio::test]
async fn a_bad_webhook_among_good_ones_is_reported_at_its_position() {
    let (hub, api) = acme_app().await;
    let before = hub.state().await;
    let body = api
        .post(
            PIPELINES,
            json!({"name": "CI", "webhooks": [
                {"name": "a", "hook_url": "https://example.com/a"},
                {"name": "b", "hook_url": "ftp://example.com/b"}]}),
        )
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"webhooks": [{}, {"hook_url": ["Invalid value."]}]})
    );
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_pipeline_with_an_empty_webhook_list_answers_400_naming_webhooks() {
    let (hub, api) = acme_app().await;
    let before = hub.state().await;
    let body = api
        .post(PIPELINES, json!({"name": "CI", "webhooks": []}))
        .await
        .expect(400);
    assert!(body["webhooks"].is_array(), "{body:#}");
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_pipeline_without_a_name_answers_400_naming_name() {
    let (hub, api) = acme_app().await;
    let before = hub.state().await;
    let body = api
        .post(
            PIPELINES,
            json!({"webhooks": [{"name": "a", "hook_url": "https://example.com/h"}]}),
        )
        .await
        .expect(400);
    assert_eq!(body, json!({"name": ["This field is required."]}));
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_pipeline_name_over_100_characters_answers_400_and_100_are_accepted() {
    let (hub, api) = acme_app().await;
    let before = hub.state().await;
    let long = "n".repeat(101);
    let body = api
        .post(PIPELINES, pipeline_body(&long, "https://example.com/h"))
        .await
        .expect(400);
    assert!(body["name"].is_array(), "{body:#}");
    assert_eq!(hub.state().await, before);
    // Characters, not bytes: 99 two-byte characters and a letter for the slug.
    let name = format!("x{}", "é".repeat(99));
    let created = api
        .post(PIPELINES, pipeline_body(&name, "https://example.com/h"))
        .await
        .expect(201);
    assert_eq!(created["name"].as_str().unwrap().chars().count(), 100);
}

#[tokio::test]
async fn a_duplicate_pipeline_name_answers_400_naming_name() {
    let (hub, api) = acme_app().await;
    api.post(PIPELINES, pipeline_body("CI", "https://example.com/a"))
        .await
        .expect(201);
    let before = hub.state().await;
    let body = api
        .post(PIPELINES, pipeline_body("CI", "https://example.com/b"))
        .await
        .expect(400);
    assert!(body["name"].is_array(), "{body:#}");
    assert_eq!(hub.state().await, before);
    assert_eq!(api.get(PIPELINES).await.expect(200)["count"], 1);
}

#[tokio::test]
async fn a_pipeline_for_an_unknown_repository_answers_404() {
    let (_hub, api) = acme_app().await;
    api.post(
        "/v2/repositories/acme/nothing/webhook_pipeline/",
        pipeline_body("CI", "https://example.com/h"),
    )
    .await
    .expect(404);
}

// ---- listing -------------------------------------------------------------------------------

#[tokio::test]
async fn pipelines_are_listed_in_pages() {
    let (_hub, api) = acme_app().await;
    for name in ["one", "two", "three"] {
        api.post(PIPELINES, pipeline_body(name, "https://example.com/h"))
            .await
            .expect(201);
    }
    let first = api
        .get(&format!("{PIPELINES}?page=1&page_size=2"))
        .await
        .expect(200);
    assert_eq!(first["count"], 3, "{first:#}");
    assert_eq!(first["previous"], Value::Null, "{first:#}");
    let names: Vec<&Value> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, [&json!("one"), &json!("two")]);
    let next = first["next"].as_str().expect("a next link");
    let second = api.get(next).await.expect(200);
    assert_eq!(second["count"], 3, "{second:#}");
    assert_eq!(second["next"], Value::Null, "{second:#}");
    assert!(second["previous"].is_string(), "{second:#}");
    assert_eq!(second["results"].as_array().unwrap().len(), 1, "{second:#}");
    assert_eq!(second["results"][0]["name"], "three");
}

#[tokio::test]
async fn an_empty_pipeline_list_is_one_empty_page() {
    let (_hub, api) = acme_app().await;
    let list = api.get(PIPELINES).await.expect(200);
    assert_eq!(
        list,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[tokio::test]
async fn a_page_out_of_range_answers_404_invalid_page() {
    let (_hub, api) = acme_app().await;
    api.post(PIPELINES, pipeline_body("one", "https://example.com/h"))
        .await
        .expect(201);
    for query in ["page=2", "page=2&page_size=1"] {
        let body = api.get(&format!("{PIPELINES}?{query}")).await.expect(404);
        assert_eq!(body, json!({"detail": "Invalid page."}), "{query}");
    }
}

#[tokio::test]
async fn a_page_or_page_size_that_is_no_positive_number_answers_400_naming_it() {
    let (_hub, api) = acme_app().await;
    for (query, field) in [
        ("page=0", "page"),
        ("page=x", "page"),
        ("page=-1", "page"),
        ("page_size=0", "page_size"),
        ("page_size=ten", "page_size"),
    ] {
        let body = api.get(&format!("{PIPELINES}?{query}")).await.expect(400);
        assert!(body[field][0].is_string(), "{query}: {body:#}");
    }
}

// ---- one pipeline --------------------------------------------------------------------------

#[tokio::test]
async fn get_a_pipeline_by_slug_answers_it() {
    let (_hub, api) = acme_app().await;
    let created = api
        .post(
            PIPELINES,
            pipeline_body("Build and Test", "https://example.com/h"),
        )
        .await
        .expect(201);
    let got = api
        .get(&format!("{PIPELINES}build-and-test/"))
        .await
        .expect(200);
    assert_eq!(got, created);
}

#[tokio::test]
async fn get_an_unknown_pipeline_answers_404() {
    let (_hub, api) = acme_app().await;
    let body = api.get(&format!("{PIPELINES}nothing/")).await.expect(404);
    assert!(body["detail"].is_string(), "{body:#}");
}

#[tokio::test]
async fn patch_changes_name_webhooks_and_expect_final_callback_but_keeps_the_slug() {
    let (_hub, api) = acme_app().await;
    let created = api
        .post(
            PIPELINES,
            json!({"name": "CI", "webhooks": [{"name": "a", "hook_url": "https://example.com/a"}]}),
        )
        .await
        .expect(201);
    assert_eq!(created["expect_final_callback"], true);
    let patched = api
        .patch(
            &format!("{PIPELINES}ci/"),
            json!({"name": "CI renamed", "expect_final_callback": false,
                   "webhooks": [{"name": "b", "hook_url": "https://example.com/b"},
                                {"name": "c", "hook_url": "http://example.com/c"}]}),
        )
        .await
        .expect(200);
    assert_eq!(patched["name"], "CI renamed", "{patched:#}");
    assert_eq!(patched["slug"], "ci", "{patched:#}");
    assert_eq!(patched["expect_final_callback"], false, "{patched:#}");
    let urls: Vec<&Value> = patched["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["hook_url"])
        .collect();
    assert_eq!(
        urls,
        [
            &json!("https://example.com/b"),
            &json!("http://example.com/c")
        ]
    );
    assert_eq!(patched["created"], created["created"], "{patched:#}");
    // The change is stored, under the same slug.
    assert_eq!(
        api.get(&format!("{PIPELINES}ci/")).await.expect(200),
        patched
    );
}

#[tokio::test]
async fn patch_with_an_invalid_hook_url_answers_400_and_changes_nothing() {
    let (hub, api) = acme_app().await;
    api.post(PIPELINES, pipeline_body("CI", "https://example.com/a"))
        .await
        .expect(201);
    let before = hub.state().await;
    let body = api
        .patch(
            &format!("{PIPELINES}ci/"),
            json!({"name": "Other", "webhooks": [{"name": "a", "hook_url": "ftp://example.com/"}]}),
        )
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"webhooks": [{"hook_url": ["Invalid value."]}]})
    );
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn delete_a_pipeline_answers_204_and_then_it_is_gone() {
    let (_hub, api) = acme_app().await;
    api.post(PIPELINES, pipeline_body("CI", "https://example.com/a"))
        .await
        .expect(201);
    let resp = api.delete(&format!("{PIPELINES}ci/")).await;
    resp.expect(204);
    assert!(resp.body.is_empty(), "{resp:?}");
    api.get(&format!("{PIPELINES}ci/")).await.expect(404);
    api.delete(&format!("{PIPELINES}ci/")).await.expect(404);
    assert_eq!(api.get(PIPELINES).await.expect(200)["count"], 0);
}

#[tokio::test]
async fn renaming_a_pipeline_to_a_taken_name_answers_400_naming_name() {
    let (hub, api) = acme_app().await;
    for name in ["CI", "Deploy"] {
        api.post(PIPELINES, pipeline_body(name, "https://example.com/h"))
            .await
            .expect(201);
    }
    let before = hub.state().await;
    let body = api
        .patch(&format!("{PIPELINES}deploy/"), json!({"name": "CI"}))
        .await
        .expect(400);
    assert!(body["name"].is_array(), "{body:#}");
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn a_name_whose_slug_is_taken_answers_400_naming_name() {
    let (hub, api) = acme_app().await;
    api.post(
        PIPELINES,
        pipeline_body("Build Test", "https://example.com/h"),
    )
    .await
    .expect(201);
    let before = hub.state().await;
    let body = api
        .post(
            PIPELINES,
            pipeline_body("build--test!", "https://example.com/h"),
        )
        .await
        .expect(400);
    assert!(body["name"].is_array(), "{body:#}");
    assert_eq!(hub.state().await, before);
}

// ---- history -------------------------------------------------------------------------------

#[tokio::test]
async fn history_lists_the_runs_newest_first_as_the_control_api_shows_them() {
    let (hub, api) = acme_app().await;
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&r)
        .await;
    api.post(PIPELINES, pipeline_body("CI", &r.uri()))
        .await
        .expect(201);
    let first = hub.push("acme/app", "v1").await;
    let second = hub.push("acme/app", "v2").await;
    // Once delivered, a run with expect_final_callback false is finished and stays as it is.
    let first = hub.finished(&first[0]).await;
    let second = hub.finished(&second[0]).await;
    let history = api
        .get(&format!("{PIPELINES}ci/history/"))
        .await
        .expect(200);
    assert_eq!(history["count"], 2, "{history:#}");
    assert_eq!(history["next"], Value::Null);
    assert_eq!(history["previous"], Value::Null);
    assert_eq!(history["results"], json!([second, first]));
    assert_eq!(history["results"][0]["push"]["tag"], "v2");
}

#[tokio::test]
async fn history_is_paginated() {
    let (hub, api) = acme_app().await;
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&r)
        .await;
    api.post(PIPELINES, pipeline_body("CI", &r.uri()))
        .await
        .expect(201);
    let first = hub.push("acme/app", "v1").await;
    let second = hub.push("acme/app", "v2").await;
    hub.finished(&first[0]).await;
    hub.finished(&second[0]).await;
    let page = |n: u32| format!("{PIPELINES}ci/history/?page={n}&page_size=1");
    let one = api.get(&page(1)).await.expect(200);
    assert_eq!(one["count"], 2, "{one:#}");
    assert_eq!(one["results"].as_array().unwrap().len(), 1, "{one:#}");
    assert_eq!(one["results"][0]["id"], second[0]["id"], "{one:#}");
    assert!(one["next"].is_string(), "{one:#}");
    let two = api.get(&page(2)).await.expect(200);
    assert_eq!(two["results"][0]["id"], first[0]["id"], "{two:#}");
    assert_eq!(two["next"], Value::Null, "{two:#}");
    let body = api.get(&page(3)).await.expect(404);
    assert_eq!(body, json!({"detail": "Invalid page."}));
}

#[tokio::test]
async fn history_of_an_unknown_pipeline_answers_404() {
    let (_hub, api) = acme_app().await;
    api.get(&format!("{PIPELINES}nothing/history/"))
        .await
        .expect(404);
}

// ---- auth off ------------------------------------------------------------------------------

#[tokio::test]
async fn with_auth_off_no_token_is_needed() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    hub.http.get("/v2/repositories/acme/app/").await.expect(200);
    hub.http
        .post(PIPELINES, pipeline_body("CI", "https://example.com/h"))
        .await
        .expect(201);
    hub.http.get(&format!("{PIPELINES}ci/")).await.expect(200);
    hub.http
        .get(&format!("{PIPELINES}ci/history/"))
        .await
        .expect(200);
    hub.http
        .delete(&format!("{PIPELINES}ci/"))
        .await
        .expect(204);
}

#[tokio::test]
async fn a_recreated_pipeline_starts_with_an_empty_history() {
    let (hub, api) = acme_app().await;
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&r)
        .await;
    api.post(PIPELINES, pipeline_body("CI", &r.uri()))
        .await
        .expect(201);
    let runs = hub.push("acme/app", "v1").await;
    hub.finished(&runs[0]).await;
    api.delete(&format!("{PIPELINES}ci/")).await.expect(204);
    api.post(PIPELINES, pipeline_body("CI", &r.uri()))
        .await
        .expect(201);
    let history = api
        .get(&format!("{PIPELINES}ci/history/"))
        .await
        .expect(200);
    assert_eq!(history["count"], 0, "{history:#}");
    // The old run is still readable through the control API.
    hub.http
        .get(&format!("/_hubmock/runs/{}", runs[0]["id"]))
        .await
        .expect(200);
}
