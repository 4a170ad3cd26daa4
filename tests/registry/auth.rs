//! Auth as Docker clients expect it: the 401 challenge, the token endpoint, Basic auth,
//! namespace ownership (`DENIED`), anonymous pulls of public repositories, and `--no-auth`.

use bytes::Bytes;
use http::Method;
use hubmock::registry::image::ImageSpec;
use hubmock::{Config, RepoName, Repository};
use serde_json::Value;

use super::{error_code, header, Reg};
use crate::util::TestHub;

async fn auth_hub() -> TestHub {
    let config = Config::default()
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw");
    TestHub::with(config).await
}

/// A token from the token endpoint, for these credentials (or anonymous).
async fn token(reg: &Reg, scope: &str) -> String {
    let resp = reg
        .get(&format!("/token?service=hubmock&scope={scope}"))
        .await;
    let body = resp.expect(200);
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");
    assert!(body["issued_at"].as_str().is_some(), "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_base_endpoint_challenges_a_caller_without_credentials() {
    let hub = auth_hub().await;
    let reg = Reg::new(&hub);
    let resp = reg.get("/v2/").await;
    assert_eq!(error_code(&resp, 401), "UNAUTHORIZED");
    assert_eq!(
        header(&resp, "www-authenticate"),
        format!(
            "Bearer realm=\"{}/token\",service=\"hubmock\"",
            hub.hub.uri()
        )
    );
    // The anonymous token passes the check (it pulls public repositories).
    let anonymous = token(&reg, "repository:alice/app:pull").await;
    reg.bearer(&anonymous).get("/v2/").await.expect(200);
    reg.basic("alice", "alice-pw").get("/v2/").await.expect(200);
    let wrong = reg.basic("alice", "nope").get("/v2/").await;
    assert_eq!(error_code(&wrong, 401), "UNAUTHORIZED");
    let forged = reg.bearer("forged").get("/v2/").await;
    assert!(header(&forged, "www-authenticate").contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn a_push_with_a_token_from_the_token_endpoint_works() {
    let hub = auth_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("token").generate();
    // Without credentials: challenged, with the scope the push needs.
    let resp = reg.upload("alice/app", &image.config).await;
    assert_eq!(error_code(&resp, 401), "UNAUTHORIZED");
    let challenge = header(&resp, "www-authenticate");
    assert!(
        challenge.ends_with(",scope=\"repository:alice/app:pull,push\""),
        "{challenge}"
    );
    let alice = token(
        &reg.basic("alice", "alice-pw"),
        "repository:alice/app:pull,push",
    )
    .await;
    reg.bearer(&alice)
        .push_image("alice/app", "v1", &image)
        .await
        .expect(201);
    // The token is a Hub API login token too.
    hub.http
        .send(
            Method::GET,
            "/v2/repositories/alice/app/",
            &[("authorization", &format!("Bearer {alice}"))],
            Bytes::new(),
        )
        .await
        .expect(200);
    let wrong = reg
        .basic("alice", "wrong")
        .get("/token?service=hubmock")
        .await;
    assert_eq!(error_code(&wrong, 401), "UNAUTHORIZED");
}

#[tokio::test]
async fn the_token_endpoint_takes_an_oauth2_form() {
    let hub = auth_hub().await;
    let reg = Reg::new(&hub);
    let form = "grant_type=password&username=alice&password=alice-pw&service=hubmock&scope=repository%3Aalice%2Fapp%3Apush";
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let resp = reg.send(Method::POST, "/token", &headers, form).await;
    let body: Value = resp.expect(200);
    let token = body["access_token"].as_str().unwrap().to_owned();
    reg.bearer(&token)
        .upload("alice/app", &super::blob(b"x"))
        .await
        .expect(201);
    let refresh = format!(
        "grant_type=refresh_token&refresh_token={}",
        body["refresh_token"].as_str().unwrap()
    );
    reg.send(Method::POST, "/token", &headers, refresh)
        .await
        .expect(200);
    let wrong = "grant_type=password&username=alice&password=nope";
    let resp = reg.send(Method::POST, "/token", &headers, wrong).await;
    assert_eq!(error_code(&resp, 401), "UNAUTHORIZED");
}

#[tokio::test]
async fn basic_auth_works_straight_on_registry_requests_and_ownership_is_the_hub_apis() {
    let hub = auth_hub().await;
    let reg = Reg::new(&hub);
    let alice = reg.basic("alice", "alice-pw");
    let bob = reg.basic("bob", "bob-pw");
    let image = ImageSpec::new("owner").generate();
    alice
        .push_image("alice/app", "v1", &image)
        .await
        .expect(201);

    // bob cannot push to, tag in or delete from alice's namespace.
    let resp = bob.upload("alice/app", &super::blob(b"bob's")).await;
    assert_eq!(error_code(&resp, 403), "DENIED");
    let resp = bob.put_manifest("alice/app", "v2", &image.manifest).await;
    assert_eq!(error_code(&resp, 403), "DENIED");
    let resp = bob.delete("/v2/alice/app/manifests/v1").await;
    assert_eq!(error_code(&resp, 403), "DENIED");
    // Pulls of a public repository: anyone, with or without credentials.
    for who in [&bob, &reg] {
        super::status(&who.get("/v2/alice/app/manifests/v1").await, 200);
        let config = format!("/v2/alice/app/blobs/{}", image.config.digest());
        super::status(&who.get(&config).await, 200);
        who.get("/v2/alice/app/tags/list").await.expect(200);
    }
    // bob pushes to his own namespace, mounting alice's public layer.
    let layer = image.layers[0].digest();
    let mount = format!("/v2/bob/app/blobs/uploads/?mount={layer}&from=alice/app");
    bob.send(Method::POST, &mount, &[], Bytes::new())
        .await
        .expect(201);
}

#[tokio::test]
async fn a_private_repository_is_pulled_by_its_owner_only() {
    let hub = auth_hub().await;
    let mut private = Repository::new(&RepoName::new("alice", "secret").unwrap());
    private.is_private = true;
    hub.hub.add_repository(private).unwrap();
    let reg = Reg::new(&hub);
    let alice = reg.basic("alice", "alice-pw");
    let image = ImageSpec::new("private").generate();
    alice
        .push_image("alice/secret", "v1", &image)
        .await
        .expect(201);
    super::status(&alice.get("/v2/alice/secret/manifests/v1").await, 200);

    let anonymous = reg.get("/v2/alice/secret/manifests/v1").await;
    assert_eq!(error_code(&anonymous, 401), "UNAUTHORIZED");
    assert!(
        header(&anonymous, "www-authenticate").ends_with(",scope=\"repository:alice/secret:pull\"")
    );
    let bob = reg.basic("bob", "bob-pw");
    let resp = bob.get("/v2/alice/secret/manifests/v1").await;
    assert_eq!(error_code(&resp, 403), "DENIED");
    // bob cannot mount from it either: he gets an upload session instead.
    let mount = format!(
        "/v2/bob/app/blobs/uploads/?mount={}&from=alice/secret",
        image.config.digest()
    );
    bob.send(Method::POST, &mount, &[], Bytes::new())
        .await
        .expect(202);
    // The catalog shows it to alice only.
    let all = alice.get("/v2/_catalog").await.expect(200);
    assert!(all["repositories"].to_string().contains("alice/secret"));
    let anonymous = reg.get("/v2/_catalog").await.expect(200);
    assert!(!anonymous["repositories"]
        .to_string()
        .contains("alice/secret"));
}

#[tokio::test]
async fn no_auth_opens_everything() {
    let hub = TestHub::with(Config::default().with_auth(false).with_user("alice", "pw")).await;
    let reg = Reg::new(&hub);
    reg.get("/v2/").await.expect(200);
    let image = ImageSpec::new("open").generate();
    reg.push_image("bob/app", "v1", &image).await.expect(201);
    reg.basic("alice", "pw")
        .delete("/v2/bob/app/manifests/v1")
        .await;
    assert_eq!(super::tags_of(&reg, "bob/app").await, serde_json::json!([]));
}
