//! The Hub API sees what was pushed (issue 9): tags, a namespace's repositories, user
//! profiles and access-token login, anonymous reads of public repositories, and tag records in
//! the state export; through real HTTP, and through third-party Hub API clients.

mod access;
mod clients;
mod repositories;
mod state;
mod tags;

use hubmock::model::time::Timestamp;
use hubmock::{Config, PlatformImage, RepoName, TagRecord};
use serde_json::{json, Value};

use crate::util::{Http, TestHub};

/// A hub with auth on and two users: `acme` (password `pw`) and `other` (`pw2`).
async fn two_users() -> TestHub {
    TestHub::with(
        Config::default()
            .with_user("acme", "pw")
            .with_user("other", "pw2"),
    )
    .await
}

/// Logs in with a personal access token (`POST /v2/auth/token`) and answers a client that
/// sends the token as `Bearer`.
async fn bearer(hub: &TestHub, identifier: &str, secret: &str) -> Http {
    let body = hub
        .http
        .post(
            "/v2/auth/token",
            json!({"identifier": identifier, "secret": secret}),
        )
        .await
        .expect(200);
    let token = body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token: {body:#}"));
    hub.http.with_bearer(token)
}

/// Creates a repository through the control API with these extra fields.
async fn create(hub: &TestHub, namespace: &str, name: &str, extra: Value) {
    let mut body = json!({"namespace": namespace, "name": name});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    hub.http
        .post("/_hubmock/repositories", body)
        .await
        .expect(201);
}

/// `ns/name` as a repository name.
fn repo(full: &str) -> RepoName {
    RepoName::parse(full).expect("namespace/name")
}

/// A registry-style push of `tag` at `secs` seconds after the epoch, by `acme`: one manifest
/// of `size` bytes for linux/amd64, its digest made from `digest`.
fn record(tag: &str, digest: &str, secs: f64, size: u64) -> TagRecord {
    let digest = format!("sha256:{digest:0>64}");
    TagRecord {
        tag: tag.to_owned(),
        digest: digest.clone(),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        full_size: size,
        pusher: "acme".to_owned(),
        pushed_at: Timestamp::from_unix_seconds(secs),
        images: vec![PlatformImage {
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            variant: None,
            digest,
            size,
        }],
    }
}

/// The names of a page's results, in order.
fn names(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page:#}"))
        .iter()
        .map(|item| item["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Follows a list's absolute `next` links from `first` to the end; answers every item's name
/// and checks each page's `previous` link points back.
async fn walk(client: &Http, first: &str) -> Vec<String> {
    let mut page = client.get(first).await.expect(200);
    let mut all = names(&page);
    while let Some(next) = page["next"].as_str().map(str::to_owned) {
        let here = next.clone();
        page = client.get(&next).await.expect(200);
        assert!(page["previous"].is_string(), "{here}: {page:#}");
        all.extend(names(&page));
    }
    all
}

/// Whether `value` looks like the RFC 3339 timestamps Docker Hub shows.
fn is_timestamp(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() >= 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z'))
}
