//! Blob routes: monolithic and chunked uploads, upload status and cancel, sha512, mounts,
//! reads (whole and by range) and deletes.

use bytes::Bytes;
use http::Method;
use hubmock::registry::digest::{Algorithm, Digest};

use super::{blob, error_code, header, location, open_hub, status, Reg};

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
