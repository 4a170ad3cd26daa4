//! Who may read what: anonymous reads of public repositories, private ones for their owner
//! only, webhook settings for the owner; personal-access-token login, `Bearer` tokens and the
//! logged-in user's profile.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::{bearer, create, two_users};
use crate::util::TestHub;

/// Every read of `acme/{name}` the Hub API serves.
fn reads(name: &str) -> Vec<String> {
    vec![
        format!("/v2/repositories/acme/{name}/"),
        format!("/v2/repositories/acme/{name}/tags/"),
        format!("/v2/repositories/acme/{name}/tags/v1/"),
        format!("/v2/namespaces/acme/repositories/{name}"),
        format!("/v2/namespaces/acme/repositories/{name}/tags"),
        format!("/v2/namespaces/acme/repositories/{name}/tags/v1"),
    ]
}

/// A hub with `acme/app` (public) and `acme/secret` (private), each with the tag `v1`.
async fn public_and_private() -> TestHub {
    let hub = two_users().await;
    create(&hub, "acme", "app", json!({})).await;
    create(&hub, "acme", "secret", json!({"is_private": true})).await;
    hub.push("acme/app", "v1").await;
    hub.push("acme/secret", "v1").await;
    hub
}

#[tokio::test]
async fn anyone_reads_a_public_repository_and_its_tags_without_logging_in() {
    let hub = public_and_private().await;
    let other = bearer(&hub, "other", "pw2").await;
    for path in reads("app") {
        hub.http.get(&path).await.expect(200);
        other.get(&path).await.expect(200);
    }
    let page = hub.http.get("/v2/repositories/acme/").await.expect(200);
    assert_eq!(
        super::names(&page),
        ["app"],
        "private ones are not listed: {page:#}"
    );
    let repo = hub.http.get("/v2/repositories/acme/app/").await.expect(200);
    assert_eq!(
        repo["permissions"],
        json!({"read": true, "write": false, "admin": false}),
        "{repo:#}"
    );
    assert_eq!(repo["can_edit"], false);
}

#[tokio::test]
async fn a_private_repository_is_404_to_anyone_but_its_owner() {
    let hub = public_and_private().await;
    let before = hub.state().await;
    let other = bearer(&hub, "other", "pw2").await;
    for path in reads("secret") {
        for client in [&hub.http, &other] {
            let body = client.get(&path).await.expect(404);
            assert!(
                body["detail"].as_str().unwrap().contains("private"),
                "{path}: {body:#}"
            );
        }
    }
    let owner = bearer(&hub, "acme", "pw").await;
    for path in reads("secret") {
        owner.get(&path).await.expect(200);
    }
    let page = owner.get("/v2/repositories/acme/").await.expect(200);
    assert_eq!(super::names(&page), ["app", "secret"]);
    assert_eq!(page["results"][1]["is_private"], true);
    let repo = owner.get("/v2/repositories/acme/secret/").await.expect(200);
    assert_eq!(
        repo["permissions"],
        json!({"read": true, "write": true, "admin": true})
    );
    assert_eq!(repo["affiliation"], "owner");
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn webhook_settings_still_need_the_owner() {
    let hub = public_and_private().await;
    let pipelines = "/v2/repositories/acme/app/webhook_pipeline/";
    let body = hub.http.get(pipelines).await.expect(401);
    assert!(
        body["detail"].as_str().unwrap().contains("not provided"),
        "{body:#}"
    );
    let other = bearer(&hub, "other", "pw2").await;
    other.get(pipelines).await.expect(403);
    bearer(&hub, "acme", "pw")
        .await
        .get(pipelines)
        .await
        .expect(200);
}

#[tokio::test]
async fn a_bad_token_is_refused_even_on_a_public_read() {
    let hub = public_and_private().await;
    for client in [
        hub.http.with_bearer("garbage"),
        hub.http.with_token("garbage"),
    ] {
        let body = client
            .get("/v2/repositories/acme/app/tags/")
            .await
            .expect(401);
        assert!(
            body["detail"].as_str().unwrap().contains("Invalid"),
            "{body:#}"
        );
    }
    let resp = hub
        .http
        .send(
            http::Method::GET,
            "/v2/repositories/acme/app/",
            &[("authorization", "Token abc")],
            bytes::Bytes::new(),
        )
        .await;
    resp.expect(401);
}

#[tokio::test]
async fn an_access_token_from_a_password_works_as_a_bearer_token() {
    let hub = two_users().await;
    create(&hub, "acme", "app", json!({})).await;
    let body = hub
        .http
        .post(
            "/v2/auth/token",
            json!({"identifier": "acme", "secret": "pw"}),
        )
        .await
        .expect(200);
    let token = body["access_token"].as_str().expect("access_token");
    // Shaped as Docker Hub's: a JWT whose claims a client may read.
    let claims = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["sub"], "acme");
    assert!(
        claims["exp"].as_u64() > claims["iat"].as_u64(),
        "{claims:#}"
    );
    let acme = hub.http.with_bearer(token);
    let user = acme.get("/v2/user/").await.expect(200);
    assert_eq!(user["username"], "acme");
    // The owner's token opens the webhook settings.
    acme.post(
        "/v2/repositories/acme/app/webhook_pipeline/",
        json!({"name": "CI", "webhooks": [{"name": "a", "hook_url": "http://127.0.0.1:9/"}]}),
    )
    .await
    .expect(201);
    // A personal access token is a user's password given as one (`--user acme:dckr_pat_...`).
    let hub = TestHub::with(hubmock::Config::default().with_user("acme", "dckr_pat_abc")).await;
    bearer(&hub, "acme", "dckr_pat_abc")
        .await
        .get("/v2/user/")
        .await
        .expect(200);
}

#[tokio::test]
async fn a_wrong_or_incomplete_access_token_request_is_refused() {
    let hub = two_users().await;
    for (body, status) in [
        (json!({"identifier": "acme", "secret": "wrong"}), 401),
        (json!({"identifier": "nobody", "secret": "pw"}), 401),
    ] {
        let answer = hub.http.post("/v2/auth/token", body).await.expect(status);
        assert_eq!(answer["detail"], "Incorrect authentication credentials.");
        assert!(answer.get("access_token").is_none());
    }
    let answer = hub.http.post("/v2/auth/token", json!({})).await.expect(400);
    assert_eq!(answer["identifier"], json!(["This field is required."]));
    assert_eq!(answer["secret"], json!(["This field is required."]));
    let answer = hub.http.post_raw("/v2/auth/token", "{").await.expect(400);
    assert!(
        answer["detail"].as_str().unwrap().contains("JSON"),
        "{answer:#}"
    );
    hub.http.get("/v2/auth/token").await.expect(405);
}

#[tokio::test]
async fn the_user_endpoint_shows_the_logged_in_users_profile() {
    let hub = two_users().await;
    let body = hub.http.get("/v2/user/").await.expect(401);
    assert!(
        body["detail"].as_str().unwrap().contains("not provided"),
        "{body:#}"
    );
    let login = hub
        .http
        .post(
            "/v2/users/login/",
            json!({"username": "other", "password": "pw2"}),
        )
        .await
        .expect(200);
    let other = hub.http.with_token(login["token"].as_str().unwrap());
    let user = other.get("/v2/user").await.expect(200);
    assert_eq!(user["username"], "other");
    assert_eq!(user["type"], "User");
    assert!(
        user["id"].as_str().is_some_and(|id| id.len() == 32),
        "{user:#}"
    );
    assert!(super::is_timestamp(&user["date_joined"]), "{user:#}");
    for field in [
        "full_name",
        "location",
        "company",
        "profile_url",
        "gravatar_url",
    ] {
        assert!(user[field].is_string(), "{field}: {user:#}");
    }
    // The same user's public profile, which needs no login.
    assert_eq!(hub.http.get("/v2/users/other/").await.expect(200), user);
    let body = hub.http.get("/v2/users/nobody/").await.expect(404);
    assert!(
        body["detail"].as_str().unwrap().contains("--user"),
        "{body:#}"
    );
}

#[tokio::test]
async fn with_auth_off_the_user_endpoint_shows_the_first_user_and_private_ones_are_read() {
    let hub = TestHub::start().await;
    create(&hub, "hubmock", "secret", json!({"is_private": true})).await;
    let user = hub.http.get("/v2/user/").await.expect(200);
    assert_eq!(user["username"], "hubmock");
    hub.http
        .get("/v2/repositories/hubmock/secret/")
        .await
        .expect(200);
    let page = hub.http.get("/v2/repositories/hubmock/").await.expect(200);
    assert_eq!(super::names(&page), ["secret"]);
}
