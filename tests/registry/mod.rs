//! The registry (OCI distribution API) through real HTTP: every route's happy path here;
//! errors, auth, push events and real clients in the files beside this one.

mod auth;
mod clients;
mod errors;
mod events;

use base64::Engine;
use bytes::Bytes;
use http::Method;
use hubmock::registry::digest::{Algorithm, Digest};
use hubmock::registry::image::{Blob, Image, ImageSpec, Index};
use hubmock::Config;
use serde_json::{json, Value};

use crate::util::{Resp, TestHub};

/// A registry client for tests: raw requests with optional credentials, and helpers that push
/// generated blobs, images and indexes the way clients do.
#[derive(Clone)]
pub struct Reg {
    http: crate::util::Http,
    authorization: Option<String>,
}

impl Reg {
    pub fn new(hub: &TestHub) -> Reg {
        Reg {
            http: hub.http.clone(),
            authorization: None,
        }
    }

    /// The same client, with Basic credentials on every request.
    pub fn basic(&self, user: &str, password: &str) -> Reg {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Reg {
            authorization: Some(format!("Basic {encoded}")),
            ..self.clone()
        }
    }

    /// The same client, with a bearer token on every request.
    pub fn bearer(&self, token: &str) -> Reg {
        Reg {
            authorization: Some(format!("Bearer {token}")),
            ..self.clone()
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let mut all = headers.to_vec();
        if let Some(authorization) = &self.authorization {
            all.push(("authorization", authorization));
        }
        self.http.send(method, path, &all, body).await
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
async fn a_monolithic_upload_is_read_back_whole_and_by_range() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let content = blob(b"hello, registry");
    let digest = content.digest().to_string();
    let resp = reg.upload("acme/app", &content).await;
    resp.expect(201);
    assert_eq!(location(&resp), format!("/v2/acme/app/blobs/{digest}"));
    assert_eq!(header(&resp, "docker-content-digest"), digest);

    let path = format!("/v2/acme/app/blobs/{digest}");
    let head = reg.head(&path).await;
    status(&head, 200);
    assert!(head.body.is_empty());
    assert_eq!(header(&head, "content-length"), "15");
    assert_eq!(header(&head, "docker-content-digest"), digest);

    let get = reg.get(&path).await;
    status(&get, 200);
    assert_eq!(&get.body[..], b"hello, registry");

    let range = reg
        .send(Method::GET, &path, &[("range", "bytes=7-")], Bytes::new())
        .await;
    assert_eq!(range.status, 206, "{range:?}");
    assert_eq!(&range.body[..], b"registry");
    assert_eq!(header(&range, "content-range"), "bytes 7-14/15");
    let suffix = reg
        .send(Method::GET, &path, &[("range", "bytes=-3")], Bytes::new())
        .await;
    assert_eq!(&suffix.body[..], b"try");
}

#[tokio::test]
async fn a_chunked_upload_reports_its_range_and_finishes_with_the_last_chunk() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let content = blob(b"0123456789abcdefghij");
    let session = reg.session("acme/app").await;
    assert!(
        session.starts_with("/v2/acme/app/blobs/uploads/"),
        "{session}"
    );

    let state = reg.get(&session).await;
    status(&state, 204);
    assert_eq!(header(&state, "range"), "0-0");
    let id = header(&state, "docker-upload-uuid");
    assert!(session.ends_with(&id));

    let headers = [
        ("content-range", "0-9"),
        ("content-type", "application/octet-stream"),
    ];
    let patch = reg
        .send(
            Method::PATCH,
            &session,
            &headers,
            content.bytes[..10].to_vec(),
        )
        .await;
    patch.expect(202);
    assert_eq!(header(&patch, "range"), "0-9");
    let next = location(&patch);

    // A chunk without Content-Range is streamed onto the end.
    let patch = reg
        .send(Method::PATCH, &next, &[], content.bytes[10..15].to_vec())
        .await;
    patch.expect(202);
    assert_eq!(header(&patch, "range"), "0-14");
    assert_eq!(header(&reg.get(&next).await, "range"), "0-14");

    let finish = format!("{next}?digest={}", content.digest());
    let put = reg
        .send(Method::PUT, &finish, &[], content.bytes[15..].to_vec())
        .await;
    put.expect(201);
    let blob = reg.get(&location(&put)).await;
    status(&blob, 200);
    assert_eq!(&blob.body[..], &content.bytes[..]);
    // The finished upload is gone.
    assert_eq!(
        error_code(&reg.get(&next).await, 404),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn a_cancelled_upload_is_gone() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let session = reg.session("acme/app").await;
    reg.send(Method::PATCH, &session, &[], "partial")
        .await
        .expect(202);
    let cancel = reg.delete(&session).await;
    assert_eq!(cancel.status, 204, "{cancel:?}");
    assert_eq!(
        error_code(&reg.get(&session).await, 404),
        "BLOB_UPLOAD_UNKNOWN"
    );
    let finish = format!("{session}?digest={}", blob(b"partial").digest());
    let put = reg.send(Method::PUT, &finish, &[], Bytes::new()).await;
    assert_eq!(error_code(&put, 404), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn a_sha512_digest_is_computed_when_asked_for() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let bytes = b"sha512 please".to_vec();
    let digest = Digest::of(Algorithm::Sha512, &bytes).to_string();
    let path = format!("/v2/acme/app/blobs/uploads/?digest={digest}");
    reg.send(Method::POST, &path, &[], bytes.clone())
        .await
        .expect(201);
    // A chunked upload learns the algorithm only at its end.
    let session = reg.session("acme/other").await;
    reg.send(Method::PATCH, &session, &[], bytes.clone())
        .await
        .expect(202);
    let put = reg
        .send(
            Method::PUT,
            &format!("{session}?digest={digest}"),
            &[],
            Bytes::new(),
        )
        .await;
    put.expect(201);
    let got = reg.get(&format!("/v2/acme/other/blobs/{digest}")).await;
    assert_eq!(&got.body[..], &bytes[..]);
}

#[tokio::test]
async fn a_blob_is_mounted_from_another_repository() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let content = blob(b"shared layer");
    let digest = content.digest().to_string();
    reg.upload("acme/base", &content).await.expect(201);
    let mount = format!("/v2/acme/app/blobs/uploads/?mount={digest}&from=acme/base");
    let resp = reg.send(Method::POST, &mount, &[], Bytes::new()).await;
    resp.expect(201);
    assert_eq!(location(&resp), format!("/v2/acme/app/blobs/{digest}"));
    status(&reg.get(&location(&resp)).await, 200);
    // A blob the source lacks: an ordinary upload session instead.
    let missing = blob(b"nowhere").digest();
    let mount = format!("/v2/acme/app/blobs/uploads/?mount={missing}&from=acme/base");
    let resp = reg.send(Method::POST, &mount, &[], Bytes::new()).await;
    resp.expect(202);
    assert!(location(&resp).starts_with("/v2/acme/app/blobs/uploads/"));
}

#[tokio::test]
async fn a_deleted_blob_is_gone_from_its_repository_only() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let content = blob(b"delete me");
    reg.upload("acme/one", &content).await.expect(201);
    reg.upload("acme/two", &content).await.expect(201);
    let path = format!("/v2/acme/one/blobs/{}", content.digest());
    assert_eq!(reg.delete(&path).await.status, 202);
    assert_eq!(error_code(&reg.get(&path).await, 404), "BLOB_UNKNOWN");
    status(
        &reg.get(&format!("/v2/acme/two/blobs/{}", content.digest()))
            .await,
        200,
    );
}

#[tokio::test]
async fn manifests_are_put_and_read_by_tag_and_by_digest() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("manifests").layers(2, 3000).generate();
    let digest = image.manifest.digest().to_string();
    let put = reg.push_image("acme/app", "v1", &image).await;
    put.expect(201);
    assert_eq!(location(&put), format!("/v2/acme/app/manifests/{digest}"));
    assert_eq!(header(&put, "docker-content-digest"), digest);

    for reference in ["v1", digest.as_str()] {
        let path = format!("/v2/acme/app/manifests/{reference}");
        let get = reg.get(&path).await;
        status(&get, 200);
        assert_eq!(&get.body[..], &image.manifest.bytes[..]);
        assert_eq!(header(&get, "content-type"), image.manifest.media_type);
        assert_eq!(header(&get, "docker-content-digest"), digest);
        let head = reg.head(&path).await;
        status(&head, 200);
        assert_eq!(
            header(&head, "content-length"),
            image.manifest.bytes.len().to_string()
        );
    }
    // A manifest is a blob too.
    status(&reg.get(&format!("/v2/acme/app/blobs/{digest}")).await, 200);

    // Deleting the tag keeps the manifest; deleting the manifest takes its tags.
    reg.put_manifest("acme/app", "v2", &image.manifest)
        .await
        .expect(201);
    assert_eq!(reg.delete("/v2/acme/app/manifests/v1").await.status, 202);
    let missing = reg.get("/v2/acme/app/manifests/v1").await;
    assert_eq!(error_code(&missing, 404), "MANIFEST_UNKNOWN");
    status(&reg.get("/v2/acme/app/manifests/v2").await, 200);
    let by_digest = format!("/v2/acme/app/manifests/{digest}");
    assert_eq!(reg.delete(&by_digest).await.status, 202);
    assert_eq!(
        error_code(&reg.get("/v2/acme/app/manifests/v2").await, 404),
        "MANIFEST_UNKNOWN"
    );
    status(&reg.head(&by_digest).await, 404);
}

#[tokio::test]
async fn docker_manifests_and_manifest_lists_keep_their_media_types() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let index = Index::of(vec![
        ImageSpec::new("d-amd64").docker().generate(),
        ImageSpec::new("d-arm64")
            .docker()
            .platform("linux", "arm64")
            .generate(),
    ]);
    reg.push_index("acme/app", "multi", &index)
        .await
        .expect(201);
    let get = reg.get("/v2/acme/app/manifests/multi").await;
    status(&get, 200);
    assert_eq!(
        header(&get, "content-type"),
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let child = index.images[1].manifest.digest();
    let get = reg.get(&format!("/v2/acme/app/manifests/{child}")).await;
    assert_eq!(
        header(&get, "content-type"),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[tokio::test]
async fn tags_are_listed_in_pages_with_a_link_to_the_next() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("tags").generate();
    reg.push_image("acme/app", "c", &image).await.expect(201);
    for tag in ["a", "b", "d"] {
        reg.put_manifest("acme/app", tag, &image.manifest)
            .await
            .expect(201);
    }
    let all = reg.get("/v2/acme/app/tags/list").await;
    assert_eq!(
        all.expect(200),
        json!({"name": "acme/app", "tags": ["a", "b", "c", "d"]})
    );
    assert!(all.headers.get("link").is_none());

    let first = reg.get("/v2/acme/app/tags/list?n=2").await;
    assert_eq!(first.expect(200)["tags"], json!(["a", "b"]));
    assert_eq!(
        header(&first, "link"),
        "</v2/acme/app/tags/list?n=2&last=b>; rel=\"next\""
    );
    let second = reg.get("/v2/acme/app/tags/list?n=2&last=b").await;
    assert_eq!(second.expect(200)["tags"], json!(["c", "d"]));
    assert!(second.headers.get("link").is_none());
    let none = reg.get("/v2/acme/app/tags/list?n=0").await;
    assert_eq!(none.expect(200)["tags"], json!([]));
}

#[tokio::test]
async fn the_catalog_lists_repositories_that_hold_something() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    for name in ["acme/b", "acme/a", "zeta/z"] {
        reg.upload(name, &blob(name.as_bytes())).await.expect(201);
    }
    let all = reg.get("/v2/_catalog").await;
    assert_eq!(
        all.expect(200),
        json!({"repositories": ["acme/a", "acme/b", "zeta/z"]})
    );
    let page = reg.get("/v2/_catalog?n=1&last=acme/a").await;
    assert_eq!(page.expect(200)["repositories"], json!(["acme/b"]));
    assert!(header(&page, "link").contains("last=acme%2Fb"));
}

#[tokio::test]
async fn referrers_list_the_manifests_whose_subject_is_a_digest() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("subject").generate();
    reg.push_image("acme/app", "v1", &image).await.expect(201);
    let subject = image.manifest.digest();
    let empty = blob(b"{}");
    reg.upload("acme/app", &empty).await.expect(201);
    let mut pushed = Vec::new();
    for (i, artifact_type) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ]
    .iter()
    .enumerate()
    {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest().to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest().to_string(), "size": 2}],
            "subject": image.manifest.descriptor(),
            "annotations": {"n": i.to_string()},
        });
        let artifact = Blob {
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            bytes: serde_json::to_vec(&manifest).unwrap(),
        };
        let put = reg
            .put_manifest("acme/app", &artifact.digest().to_string(), &artifact)
            .await;
        put.expect(201);
        assert_eq!(header(&put, "oci-subject"), subject.to_string());
        pushed.push(artifact.digest().to_string());
    }
    let list = reg.get(&format!("/v2/acme/app/referrers/{subject}")).await;
    assert_eq!(
        header(&list, "content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
    let index = list.expect(200);
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, pushed);
    assert_eq!(
        index["manifests"][1]["artifactType"],
        "application/vnd.example.sig"
    );
    assert_eq!(index["manifests"][1]["annotations"], json!({"n": "1"}));

    let filtered = reg
        .get(&format!(
            "/v2/acme/app/referrers/{subject}?artifactType=application/vnd.example.sbom"
        ))
        .await;
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    assert_eq!(
        filtered.expect(200)["manifests"].as_array().unwrap().len(),
        1
    );
    let none = reg
        .get(&format!("/v2/acme/app/referrers/{}", blob(b"x").digest()))
        .await;
    assert_eq!(none.expect(200)["manifests"], json!([]));
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
