//! A registry client nobody here wrote, in Rust: the `oci-client` crate (the ORAS project's),
//! over plain HTTP with alice's password, which it trades for a bearer token at the realm
//! hubmock names. Its own push (it writes the manifest), a generated Docker image pushed blob by
//! blob with its exact manifest, and a multi-platform index; each pulled back with it byte for
//! byte, each firing the webhook.

use futures_util::stream;
use hubmock::registry::image::{Blob, Image, ImageSpec, Index};
use hubmock::registry::{Algorithm, Digest};
use oci_client::client::{linux_amd64_resolver, ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{
    OciDescriptor, OciImageManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::clients::{alice_hub, assert_push_delivered};
use crate::util::{answering, TestHub};

const MANIFEST_TYPES: [&str; 4] = [
    OCI_IMAGE_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// A client over plain HTTP that picks linux/amd64 out of an index; `monolithic`: it uploads a
/// blob in one request (`POST`, then one `PUT` with the body), else in `PATCH` chunks.
// ring's provider, as hubmock's (src/tls.rs says why the deprecation is allowed).
#[allow(deprecated)]
fn new_client(monolithic: bool) -> Client {
    // reqwest is built with rustls but no crypto provider of its own (Cargo.toml): it wants one
    // installed even for plain HTTP. A second install (another test first) is refused: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        platform_resolver: Some(Box::new(linux_amd64_resolver)),
        use_monolithic_push: monolithic,
        ..Default::default()
    })
}

fn tagged(hub: &TestHub, tag: &str) -> Reference {
    Reference::with_tag(
        hub.hub.address().to_string(),
        "alice/app".to_owned(),
        tag.to_owned(),
    )
}

fn by_digest(hub: &TestHub, digest: &str) -> Reference {
    Reference::with_digest(
        hub.hub.address().to_string(),
        "alice/app".to_owned(),
        digest.to_owned(),
    )
}

fn sha256(bytes: &[u8]) -> String {
    Digest::of(Algorithm::Sha256, bytes).to_string()
}

/// A descriptor of a generated blob, as oci-client takes one.
fn descriptor(blob: &Blob) -> OciDescriptor {
    OciDescriptor {
        media_type: blob.media_type.clone(),
        digest: blob.digest().to_string(),
        size: i64::try_from(blob.bytes.len()).unwrap(),
        ..Default::default()
    }
}

/// Pushes an image blob by blob and then its manifest, byte for byte, as `reference`.
async fn push_exact(client: &Client, hub: &TestHub, image: &Image, reference: &Reference) {
    let auth = RegistryAuth::Basic("alice".to_owned(), "alice-pw".to_owned());
    client
        .store_auth_if_needed(reference.resolve_registry(), &auth)
        .await;
    // As a stream of 100 kB pieces: a chunked client sends a PATCH for each. (`push_blob` would
    // quietly retry monolithically after a chunked upload failed; a stream cannot be retried.)
    for blob in image.blobs() {
        let pieces: Vec<oci_client::errors::Result<bytes::Bytes>> = blob
            .bytes
            .chunks(100_000)
            .map(|piece| Ok(bytes::Bytes::copy_from_slice(piece)))
            .collect();
        let size = u64::try_from(blob.bytes.len()).unwrap();
        let digest = blob.digest().to_string();
        client
            .push_blob_stream(reference, stream::iter(pieces), &digest, Some(size))
            .await
            .unwrap_or_else(|err| panic!("push_blob_stream {digest}: {err:?}"));
    }
    let content_type = image.manifest.media_type.parse().unwrap();
    let url = client
        .push_manifest_raw(reference, image.manifest.bytes.clone(), content_type)
        .await
        .expect("push_manifest_raw");
    let digest = image.manifest.digest().to_string();
    assert!(url.contains(&hub.hub.address().to_string()), "{url}");
    // Pulled back by digest: the manifest and every blob, byte for byte.
    let back = by_digest(hub, &digest);
    let (bytes, pulled) = client
        .pull_manifest_raw(&back, &auth, &MANIFEST_TYPES)
        .await
        .expect("pull_manifest_raw");
    assert_eq!(pulled, digest);
    assert!(
        bytes == image.manifest.bytes,
        "the manifest came back different"
    );
    for blob in image.blobs() {
        let mut out = Vec::new();
        client
            .pull_blob(&back, &descriptor(blob), &mut out)
            .await
            .expect("pull_blob");
        assert!(
            out == blob.bytes,
            "blob {} came back different",
            blob.digest()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_client_crate_pushes_images_and_an_index_with_a_password_and_pulls_them_back() {
    let receiver = answering(200).await;
    let (hub, url) = alice_hub(&receiver).await;
    let client = new_client(false);
    let auth = RegistryAuth::Basic("alice".to_owned(), "alice-pw".to_owned());

    // 1. Its own push: it uploads the layers and config and writes the manifest itself.
    let image = ImageSpec::new("oci-client-own")
        .layers(2, 400_000)
        .generate();
    let layers: Vec<ImageLayer> = image
        .layers
        .iter()
        .map(|l| ImageLayer::new(l.bytes.clone(), l.media_type.clone(), None))
        .collect();
    let config = Config::new(
        image.config.bytes.clone(),
        image.config.media_type.clone(),
        None,
    );
    let expected = OciImageManifest::build(&layers, &config, None);
    let v1 = tagged(&hub, "v1");
    client
        .push(&v1, &layers, config, &auth, None)
        .await
        .expect("push");
    let (raw, digest) = client
        .pull_manifest_raw(&v1, &auth, &MANIFEST_TYPES)
        .await
        .expect("pull_manifest_raw");
    assert_eq!(sha256(&raw), digest);
    let raw: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(raw, serde_json::to_value(&expected).unwrap());
    let pulled = client
        .pull(&v1, &auth, vec![&image.layers[0].media_type])
        .await
        .expect("pull");
    assert_eq!(pulled.digest.as_deref(), Some(digest.as_str()));
    assert!(
        pulled.config.data == image.config.bytes,
        "the config came back different"
    );
    // `pull` fetches the layers concurrently and lists them in the order they arrived.
    let mut back: Vec<&[u8]> = pulled.layers.iter().map(|l| &l.data[..]).collect();
    let mut sent: Vec<&[u8]> = image.layers.iter().map(|l| &l.bytes[..]).collect();
    back.sort_unstable();
    sent.sort_unstable();
    assert!(back == sent, "the layers came back different");
    assert_push_delivered(&hub, &receiver, &url, 1, "v1", &digest).await;

    // 2. A generated Docker schema 2 image, its exact manifest by tag.
    let docker = ImageSpec::new("oci-client-docker")
        .docker()
        .layers(1, 300_000)
        .generate();
    push_exact(&client, &hub, &docker, &tagged(&hub, "v2")).await;
    let digest = docker.manifest.digest().to_string();
    let (_, by_tag) = client
        .pull_manifest_raw(&tagged(&hub, "v2"), &auth, &MANIFEST_TYPES)
        .await
        .expect("pull_manifest_raw");
    assert_eq!(by_tag, digest);
    assert_push_delivered(&hub, &receiver, &url, 2, "v2", &digest).await;

    // 3. A multi-platform index: each image by digest (no event), then the index by tag (one).
    let index = Index::of(vec![
        ImageSpec::new("oci-client-amd64")
            .layers(1, 200_000)
            .generate(),
        ImageSpec::new("oci-client-arm64")
            .platform("linux", "arm64")
            .layers(1, 200_000)
            .generate(),
    ]);
    // The images' blobs by another client, monolithic this time.
    let monolithic = new_client(true);
    for image in &index.images {
        let child = by_digest(&hub, &image.manifest.digest().to_string());
        push_exact(&monolithic, &hub, image, &child).await;
    }
    let multi = tagged(&hub, "multi");
    let content_type = index.manifest.media_type.parse().unwrap();
    client
        .push_manifest_raw(&multi, index.manifest.bytes.clone(), content_type)
        .await
        .expect("push_manifest_raw of the index");
    let (bytes, digest) = client
        .pull_manifest_raw(&multi, &auth, &MANIFEST_TYPES)
        .await
        .expect("pull_manifest_raw of the index");
    assert!(
        bytes == index.manifest.bytes,
        "the index came back different"
    );
    assert_eq!(digest, index.manifest.digest().to_string());
    // A pull of the tag resolves the index to linux/amd64, as a user's pull would.
    let amd64 = &index.images[0];
    let pulled = client
        .pull(&multi, &auth, vec![&amd64.layers[0].media_type])
        .await
        .expect("pull of the index");
    assert_eq!(pulled.digest, Some(amd64.manifest.digest().to_string()));
    assert!(
        pulled.layers[0].data == amd64.layers[0].bytes,
        "the amd64 layer came back different"
    );
    assert_push_delivered(&hub, &receiver, &url, 3, "multi", &digest).await;
}
