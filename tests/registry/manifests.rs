//! Manifest routes: put, get, head and delete by tag and by digest (OCI and Docker types,
//! indexes), the tag list, the catalog and the referrers API.

use hubmock::registry::image::{Blob, ImageSpec, Index};
use serde_json::json;

use super::{blob, error_code, header, location, open_hub, status, Reg};

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
