//! The registry (OCI distribution API) through real HTTP: helpers, the base endpoint, routing
//! and reset here; blobs, manifests, errors, auth, push events and real clients (skopeo, PyPI's
//! oras, the oci-client crate) in the files beside this one.

mod auth;
mod blobs;
pub(crate) mod clients;
mod errors;
mod events;
mod library;
mod manifests;
mod pypi_oras;
mod rust_oci_client;

use bytes::Bytes;
use http::Method;
use hubmock::registry::image::{Blob, Image, ImageSpec, Index};
use hubmock::Config;
use serde_json::{json, Value};

use crate::util::{Resp, TestHub};

/// A registry client for tests: raw requests with optional credentials, and helpers that push
/// generated blobs, images and indexes the way clients do.
#[derive(Clone)]
pub struct Reg {
    /// Its credentials, if any, are the client's.
    http: crate::util::Http,
}

impl Reg {
    pub fn new(hub: &TestHub) -> Reg {
        Reg {
            http: hub.http.clone(),
        }
    }

    /// The same client, with Basic credentials on every request.
    pub fn basic(&self, user: &str, password: &str) -> Reg {
        Reg {
            http: self.http.with_basic(user, password),
        }
    }

    /// The same client, with a bearer token on every request.
    pub fn bearer(&self, token: &str) -> Reg {
        Reg {
            http: self.http.with_bearer(token),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        self.http.send(method, path, headers, body).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn head(&self, path: &str) -> Resp {
        self.send(Method::HEAD, path, &[], Bytes::new()).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, &[], Bytes::new()).await
    }

    /// A monolithic upload (`POST ?digest=`).
    pub async fn upload(&self, name: &str, blob: &Blob) -> Resp {
        let path = format!("/v2/{name}/blobs/uploads/?digest={}", blob.digest());
        let headers = [("content-type", "application/octet-stream")];
        self.send(Method::POST, &path, &headers, blob.bytes.clone())
            .await
    }

    /// Starts an upload session; answers its location.
    pub async fn session(&self, name: &str) -> String {
        let path = format!("/v2/{name}/blobs/uploads/");
        let resp = self.send(Method::POST, &path, &[], Bytes::new()).await;
        resp.expect(202);
        location(&resp)
    }

    pub async fn put_manifest(&self, name: &str, reference: &str, manifest: &Blob) -> Resp {
        let path = format!("/v2/{name}/manifests/{reference}");
        let headers = [("content-type", manifest.media_type.as_str())];
        self.send(Method::PUT, &path, &headers, manifest.bytes.clone())
            .await
    }

    /// Pushes an image's blobs and its manifest by `reference`.
    pub async fn push_image(&self, name: &str, reference: &str, image: &Image) -> Resp {
        for blob in image.blobs() {
            self.upload(name, blob).await.expect(201);
        }
        self.put_manifest(name, reference, &image.manifest).await
    }

    /// Pushes an index: each image by digest, then the index by `reference`.
    pub async fn push_index(&self, name: &str, reference: &str, index: &Index) -> Resp {
        for image in &index.images {
            let digest = image.manifest.digest().to_string();
            self.push_image(name, &digest, image).await.expect(201);
        }
        self.put_manifest(name, reference, &index.manifest).await
    }
}

/// The `Location` header of an answer.
pub fn location(resp: &Resp) -> String {
    header(resp, "location")
}

/// A header of an answer (panics, showing the answer, if it is missing).
#[track_caller]
pub fn header(resp: &Resp, name: &str) -> String {
    resp.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {resp:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The code of a registry error answer, after checking its status and shape.
#[track_caller]
pub fn error_code(resp: &Resp, status: u16) -> String {
    let body = resp.expect(status);
    let error = &body["errors"][0];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {resp:?}"
    );
    assert!(error.get("detail").is_some(), "no detail: {resp:?}");
    assert_eq!(
        header(resp, "docker-distribution-api-version"),
        "registry/2.0"
    );
    error["code"].as_str().expect("code").to_owned()
}

/// Asserts an answer's status (of any body, JSON or not).
#[track_caller]
pub fn status(resp: &Resp, status: u16) {
    assert_eq!(resp.status.as_u16(), status, "unexpected status: {resp:?}");
}

/// A blob of these bytes.
pub fn blob(bytes: &[u8]) -> Blob {
    Blob {
        media_type: "application/octet-stream".to_owned(),
        bytes: bytes.to_vec(),
    }
}

/// An emulator with auth off.
pub async fn open_hub() -> TestHub {
    TestHub::with(Config::default().with_auth(false)).await
}

#[tokio::test]
async fn the_base_endpoint_answers_the_api_version() {
    let hub = open_hub().await;
    for path in ["/v2/", "/v2"] {
        let resp = Reg::new(&hub).get(path).await;
        assert_eq!(resp.expect(200), json!({}));
        assert_eq!(
            header(&resp, "docker-distribution-api-version"),
            "registry/2.0"
        );
    }
}

#[tokio::test]
async fn registry_paths_and_hub_api_paths_share_v2_by_their_shape() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("routing").generate();
    // A registry repository named like a Hub API keyword: `repositories` is library/repositories.
    for name in [
        "repositories",
        "acme/repositories",
        "users",
        "acme/users",
        "v2/app",
        "acme/v2",
    ] {
        reg.push_image(name, "latest", &image).await.expect(201);
        status(&reg.get(&format!("/v2/{name}/manifests/latest")).await, 200);
        let tags = reg.get(&format!("/v2/{name}/tags/list")).await;
        assert_eq!(tags.expect(200)["tags"], json!(["latest"]));
    }
    // The Hub API keeps its paths: a trailing slash is the Hub API's.
    hub.repository("manifests", "latest").await;
    let hub_view = hub.http.get("/v2/repositories/manifests/latest/").await;
    assert_eq!(hub_view.expect(200)["name"], "latest");
    let registry_view = reg.get("/v2/repositories/manifests/latest").await;
    assert_eq!(&registry_view.body[..], &image.manifest.bytes[..]);
    hub.http.get("/v2/repositories/acme/app/").await.expect(404);
    assert_eq!(
        hub.http
            .post(
                "/v2/users/login/",
                json!({"username": "hubmock", "password": "hubmock"})
            )
            .await
            .status,
        200
    );
    // The pushes made Hub repositories, visible to the Hub API.
    hub.http
        .get("/v2/repositories/library/repositories/")
        .await
        .expect(200);
    hub.http
        .get("/v2/repositories/acme/users/")
        .await
        .expect(200);
}

#[tokio::test]
async fn a_reset_forgets_the_registry_content() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("reset").generate();
    reg.push_image("acme/app", "v1", &image).await.expect(201);
    let session = reg.session("acme/app").await;
    hub.api.reset().await.unwrap();
    assert_eq!(
        reg.get("/v2/_catalog").await.expect(200),
        json!({"repositories": []})
    );
    let get = reg.get("/v2/acme/app/manifests/v1").await;
    assert_eq!(error_code(&get, 404), "MANIFEST_UNKNOWN");
    assert_eq!(
        error_code(&reg.get(&session).await, 404),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

/// The repository's tags, as the registry lists them.
pub async fn tags_of(reg: &Reg, name: &str) -> Value {
    reg.get(&format!("/v2/{name}/tags/list")).await.expect(200)["tags"].clone()
}
