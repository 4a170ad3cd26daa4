//! Every error code of the registry, each provoked, each a 4xx in the OCI error format that
//! leaves stored content and state as they were.

use bytes::Bytes;
use http::Method;
use hubmock::registry::image::{Blob, ImageSpec};
use hubmock::Config;
use serde_json::{json, Value};

use super::{blob, error_code, location, open_hub, tags_of, Reg};
use crate::util::TestHub;

/// What a refused request must not change: the catalog, the tags, the runs.
async fn snapshot(hub: &TestHub, reg: &Reg) -> Value {
    json!({
        "catalog": reg.get("/v2/_catalog").await.expect(200),
        "tags": tags_of(reg, "acme/app").await,
        "runs": hub.api.runs(&Default::default()).await.unwrap().len(),
    })
}

#[tokio::test]
async fn each_error_code_is_answered_and_changes_nothing() {
    let hub = open_hub().await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("errors").generate();
    reg.push_image("acme/app", "v1", &image).await.expect(201);
    let before = snapshot(&hub, &reg).await;
    let missing = blob(b"missing").digest();

    // BLOB_UNKNOWN
    let resp = reg.get(&format!("/v2/acme/app/blobs/{missing}")).await;
    assert_eq!(error_code(&resp, 404), "BLOB_UNKNOWN");
    let resp = reg.delete(&format!("/v2/acme/app/blobs/{missing}")).await;
    assert_eq!(error_code(&resp, 404), "BLOB_UNKNOWN");

    // BLOB_UPLOAD_UNKNOWN
    let unknown = "/v2/acme/app/blobs/uploads/00000000-0000-0000-0000-000000000000";
    assert_eq!(
        error_code(&reg.get(unknown).await, 404),
        "BLOB_UPLOAD_UNKNOWN"
    );
    let resp = reg.send(Method::PATCH, unknown, &[], "x").await;
    assert_eq!(error_code(&resp, 404), "BLOB_UPLOAD_UNKNOWN");
    // An upload of another repository is unknown here.
    let session = reg.session("acme/app").await;
    let elsewhere = session.replace("/acme/app/", "/acme/other/");
    assert_eq!(
        error_code(&reg.get(&elsewhere).await, 404),
        "BLOB_UPLOAD_UNKNOWN"
    );

    // BLOB_UPLOAD_INVALID: a chunk out of order (416, with the upload's range), a
    // malformed Content-Range.
    reg.send(Method::PATCH, &session, &[("content-range", "0-3")], "abcd")
        .await
        .expect(202);
    let resp = reg
        .send(Method::PATCH, &session, &[("content-range", "0-3")], "abcd")
        .await;
    assert_eq!(error_code(&resp, 416), "BLOB_UPLOAD_INVALID");
    assert_eq!(super::header(&resp, "range"), "0-3");
    let resp = reg
        .send(Method::PATCH, &session, &[("content-range", "8-9")], "ij")
        .await;
    assert_eq!(error_code(&resp, 416), "BLOB_UPLOAD_INVALID");
    let resp = reg
        .send(Method::PATCH, &session, &[("content-range", "4-9")], "ef")
        .await;
    assert_eq!(error_code(&resp, 416), "BLOB_UPLOAD_INVALID");
    let resp = reg
        .send(Method::PATCH, &session, &[("content-range", "four")], "ef")
        .await;
    assert_eq!(error_code(&resp, 400), "BLOB_UPLOAD_INVALID");
    // The upload still has its four bytes, and goes on.
    assert_eq!(super::header(&reg.get(&session).await, "range"), "0-3");

    // DIGEST_INVALID: content that does not match; a malformed digest; none at all. The
    // upload is as it was.
    let wrong = format!("{session}?digest={missing}");
    let resp = reg.send(Method::PUT, &wrong, &[], "efgh").await;
    assert_eq!(error_code(&resp, 400), "DIGEST_INVALID");
    assert_eq!(super::header(&reg.get(&session).await, "range"), "0-3");
    let resp = reg
        .send(
            Method::PUT,
            &format!("{session}?digest=sha256:nope"),
            &[],
            "",
        )
        .await;
    assert_eq!(error_code(&resp, 400), "DIGEST_INVALID");
    let resp = reg.send(Method::PUT, &session, &[], "").await;
    assert_eq!(error_code(&resp, 400), "DIGEST_INVALID");
    let resp = reg.get("/v2/acme/app/blobs/sha256:totallywrong").await;
    assert_eq!(error_code(&resp, 400), "DIGEST_INVALID");
    let resp = reg.get("/v2/acme/app/manifests/md5:abc").await;
    assert_eq!(error_code(&resp, 400), "DIGEST_INVALID");
    let monolithic = format!("/v2/acme/app/blobs/uploads/?digest={missing}");
    let resp = reg.send(Method::POST, &monolithic, &[], "not it").await;
    assert_eq!(error_code(&resp, 400), "DIGEST_INVALID");
    assert_eq!(
        error_code(
            &reg.get(&format!("/v2/acme/app/blobs/{missing}")).await,
            404
        ),
        "BLOB_UNKNOWN"
    );
    // A manifest put by a digest that is not its own.
    let resp = reg
        .put_manifest("acme/app", &missing.to_string(), &image.manifest)
        .await;
    assert_eq!(error_code(&resp, 400), "DIGEST_INVALID");

    // MANIFEST_INVALID
    let garbage = Blob {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        bytes: b"blablabla".to_vec(),
    };
    let resp = reg.put_manifest("acme/app", "v1", &garbage).await;
    assert_eq!(error_code(&resp, 400), "MANIFEST_INVALID");
    let no_config = Blob {
        bytes: br#"{"schemaVersion":2,"layers":[]}"#.to_vec(),
        ..garbage.clone()
    };
    let resp = reg.put_manifest("acme/app", "v1", &no_config).await;
    assert_eq!(error_code(&resp, 400), "MANIFEST_INVALID");

    // MANIFEST_BLOB_UNKNOWN: a layer, or an index's child, the repository lacks.
    let orphan = ImageSpec::new("orphan").generate();
    let resp = reg.put_manifest("acme/app", "v1", &orphan.manifest).await;
    assert_eq!(error_code(&resp, 400), "MANIFEST_BLOB_UNKNOWN");
    let index = hubmock::registry::image::Index::of(vec![orphan.clone()]);
    let resp = reg.put_manifest("acme/app", "v1", &index.manifest).await;
    assert_eq!(error_code(&resp, 400), "MANIFEST_BLOB_UNKNOWN");

    // MANIFEST_UNKNOWN
    let resp = reg.get("/v2/acme/app/manifests/nope").await;
    assert_eq!(error_code(&resp, 404), "MANIFEST_UNKNOWN");
    let resp = reg
        .get("/v2/acme/app/manifests/.INVALID_MANIFEST_NAME")
        .await;
    assert_eq!(error_code(&resp, 404), "MANIFEST_UNKNOWN");
    let resp = reg
        .delete(&format!("/v2/acme/app/manifests/{missing}"))
        .await;
    assert_eq!(error_code(&resp, 404), "MANIFEST_UNKNOWN");

    // NAME_INVALID: too deep for Docker Hub, upper case, a bad component.
    for name in ["a/b/c", "Acme/app", "acme/-app", "x/app"] {
        let resp = reg.get(&format!("/v2/{name}/tags/list")).await;
        assert_eq!(error_code(&resp, 400), "NAME_INVALID", "{name}");
    }

    // NAME_UNKNOWN
    let resp = reg.get("/v2/acme/nothing/tags/list").await;
    assert_eq!(error_code(&resp, 404), "NAME_UNKNOWN");

    // SIZE_INVALID: a manifest over 4 MiB (413), refused without being stored.
    let huge = Blob {
        bytes: vec![b' '; 4 * 1024 * 1024 + 1],
        ..garbage.clone()
    };
    let resp = reg.put_manifest("acme/app", "huge", &huge).await;
    assert_eq!(error_code(&resp, 413), "SIZE_INVALID");

    // TAG_INVALID
    let resp = reg.put_manifest("acme/app", "-bad", &image.manifest).await;
    assert_eq!(error_code(&resp, 400), "TAG_INVALID");
    let long = "t".repeat(129);
    let resp = reg.put_manifest("acme/app", &long, &image.manifest).await;
    assert_eq!(error_code(&resp, 400), "TAG_INVALID");

    // UNSUPPORTED: a method a path does not take (405, with Allow); a schema 1 manifest; a
    // media type the registry does not know.
    let resp = reg
        .send(Method::POST, "/v2/acme/app/manifests/v1", &[], Bytes::new())
        .await;
    assert_eq!(error_code(&resp, 405), "UNSUPPORTED");
    assert_eq!(super::header(&resp, "allow"), "GET, HEAD, PUT, DELETE");
    // A body on a method the path does not take is refused before it is read: 405, not 413.
    // Unread, the body leaves the connection unusable, and the answer says so. The client
    // reads the answer while it is still sending (as curl does): one that only reads once it
    // has sent everything may see the closed connection first (a broken pipe), whatever the
    // server answered.
    let head = refused_while_sending(&hub.hub.uri(), &session, 2 * 1024 * 1024).await;
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{head}"
    );
    assert!(head.contains("UNSUPPORTED"), "{head}");
    let schema1 = Blob {
        media_type: "application/vnd.docker.distribution.manifest.v1+prettyjws".to_owned(),
        bytes: br#"{"schemaVersion":1}"#.to_vec(),
    };
    let resp = reg.put_manifest("acme/app", "v1", &schema1).await;
    assert_eq!(error_code(&resp, 415), "UNSUPPORTED");

    // A range a blob cannot satisfy.
    let config = image.config.digest();
    let resp = reg
        .send(
            Method::GET,
            &format!("/v2/acme/app/blobs/{config}"),
            &[("range", "bytes=99999-")],
            Bytes::new(),
        )
        .await;
    assert_eq!(error_code(&resp, 416), "RANGE_INVALID");
    assert!(super::header(&resp, "content-range").starts_with("bytes */"));

    // Nothing changed: the same catalog, tags and runs; the manifest as pushed.
    assert_eq!(snapshot(&hub, &reg).await, before);
    let get = reg.get("/v2/acme/app/manifests/v1").await;
    assert_eq!(&get.body[..], &image.manifest.bytes[..]);
    // The session survived every refusal, and finishes.
    let right = format!("{session}?digest={}", blob(b"abcdefgh").digest());
    let put = reg.send(Method::PUT, &right, &[], "efgh").await;
    put.expect(201);
    super::status(&reg.get(&location(&put)).await, 200);
}

#[tokio::test]
async fn without_implicit_repositories_an_unknown_repository_takes_no_content() {
    let config = Config::default()
        .with_auth(false)
        .with_implicit_repositories(false);
    let hub = TestHub::with(config).await;
    let reg = Reg::new(&hub);
    let image = ImageSpec::new("implicit").generate();
    let resp = reg.upload("acme/app", &image.config).await;
    assert_eq!(super::error_code(&resp, 404), "NAME_UNKNOWN");
    let resp = reg.put_manifest("acme/app", "v1", &image.manifest).await;
    assert_eq!(super::error_code(&resp, 404), "NAME_UNKNOWN");
    assert_eq!(
        reg.get("/v2/_catalog").await.expect(200)["repositories"],
        json!([])
    );
    hub.repository("acme", "app").await;
    reg.push_image("acme/app", "v1", &image).await.expect(201);
}

#[tokio::test]
async fn the_pending_run_limit_refuses_a_tag_push_and_undoes_it() {
    let receiver = crate::util::answering(200).await;
    let config = Config::default().with_auth(false).with_max_pending_runs(1);
    let hub = TestHub::with(config).await;
    let reg = Reg::new(&hub);
    hub.repository("acme", "app").await;
    // Two pipelines whose receivers never call back: one push would start two runs.
    let url = format!("{}/hook", receiver.uri());
    hub.pipeline("acme/app", "one", std::slice::from_ref(&url), true)
        .await;
    hub.pipeline("acme/app", "two", &[url], true).await;
    let image = ImageSpec::new("busy").generate();
    let resp = reg.push_image("acme/app", "v1", &image).await;
    assert_eq!(super::error_code(&resp, 503), "UNAVAILABLE");
    assert_eq!(super::header(&resp, "retry-after"), "1");
    // The tag was not left behind.
    assert_eq!(tags_of(&reg, "acme/app").await, json!([]));
    let get = reg.get("/v2/acme/app/manifests/v1").await;
    assert_eq!(super::error_code(&get, 404), "MANIFEST_UNKNOWN");
}

/// POSTs `size` bytes to `path` over a raw connection, reading the answer while the body is
/// still being written (write errors ignored: the server may close once it has answered);
/// answers what was read until the server closed.
async fn refused_while_sending(base: &str, path: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!("POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-length: {size}\r\n\r\n");
    let sending = tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&vec![0u8; size]).await;
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(crate::util::WAIT, read.read_to_end(&mut answer)).await;
    sending.abort();
    String::from_utf8_lossy(&answer).into_owned()
}
