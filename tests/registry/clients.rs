//! Real clients and hostile ones: `skopeo copy` both ways (single image and a multi-platform
//! index with `--all`), byte-identical, with the webhook checked; two clients pushing the
//! same blob at once; a client killed in the middle of a chunk. The emulator and webhook check
//! that every real client's test uses (oras in `pypi_oras.rs`, oci-client in
//! `rust_oci_client.rs`) are here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use http::Method;
use hubmock::registry::image::{write_oci_layout, Blob, ImageSpec, Index};
use hubmock::{Config, DeliveryFilter, PipelineSpec, RepoName, WebhookSpec};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use wiremock::MockServer;

use super::{blob, error_code, header, location, Reg};
use crate::util::{answering, Resp, TestHub, WAIT};

/// The skopeo binary, or `None` (with the reason printed) when it is not installed; in CI
/// (`CI=true`) a missing skopeo fails the test: `.ci/run` installs it.
pub(crate) fn skopeo() -> Option<&'static str> {
    let found = Command::new("skopeo").arg("--version").output().is_ok();
    if found {
        return Some("skopeo");
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!(
            "skopeo is not installed, and CI=true: .ci/run installs it (apt-get install skopeo)"
        );
    }
    eprintln!("skipping the skopeo test: skopeo is not installed (apt-get install skopeo)");
    None
}

/// Runs skopeo with `args` off the runtime (the receiver answers meanwhile); panics with its
/// output when it fails.
pub(crate) async fn run_skopeo(args: Vec<String>) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("skopeo")
            .arg("--insecure-policy")
            .args(&args)
            .output()
            .map(|output| (args, output))
    })
    .await
    .unwrap()
    .expect("skopeo runs");
    let (args, output) = output;
    assert!(
        output.status.success(),
        "skopeo {}\nfailed: {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Every blob of an OCI layout, by file name.
fn layout_blobs(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// The digest `index.json` of a layout names.
fn layout_top(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

/// An emulator with the user alice (password `alice-pw`) and a pipeline on `alice/app` whose
/// webhook goes to `receiver`; answers it and the hook's URL.
pub(super) async fn alice_hub(receiver: &MockServer) -> (TestHub, String) {
    let hub = TestHub::with(Config::default().with_user("alice", "alice-pw")).await;
    hub.repository("alice", "app").await;
    let url = format!("{}/hook", receiver.uri());
    let spec = PipelineSpec {
        name: Some("deploy".to_owned()),
        expect_final_callback: Some(false),
        webhooks: Some(vec![WebhookSpec {
            name: "deploy".to_owned(),
            hook_url: url.clone(),
        }]),
        payload_format: None,
        quirks: None,
    };
    hub.hub
        .create_pipeline(&RepoName::parse("alice/app").unwrap(), spec)
        .unwrap();
    (hub, url)
}

/// Waits (on the control API's long poll) until `url` has had `n` deliveries, then checks the
/// last payload the receiver got: a push by alice of `tag` whose only image is `digest`.
pub(super) async fn assert_push_delivered(
    hub: &TestHub,
    receiver: &MockServer,
    url: &str,
    n: usize,
    tag: &str,
    digest: &str,
) {
    let filter = DeliveryFilter {
        url: Some(url.to_owned()),
        ..Default::default()
    };
    let made = hub.api.wait_for_deliveries(&filter, n, WAIT).await.unwrap();
    assert_eq!(made.len(), n, "deliveries to {url}: {made:?}");
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), n, "requests the receiver got");
    let payload: Value = serde_json::from_slice(&requests[n - 1].body).unwrap();
    assert_eq!(payload["push_data"]["tag"], tag, "{payload:#}");
    assert_eq!(
        payload["push_data"]["images"],
        json!([digest]),
        "{payload:#}"
    );
    assert_eq!(payload["push_data"]["pusher"], "alice", "{payload:#}");
    assert_eq!(
        payload["repository"]["repo_name"], "alice/app",
        "{payload:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_an_image_and_an_index_both_ways_and_the_webhook_fires() {
    let Some(_) = skopeo() else { return };
    let receiver = answering(200).await;
    let (hub, url) = alice_hub(&receiver).await;
    let host = hub.hub.address().to_string();
    let work = tempfile::tempdir().unwrap();

    let image = ImageSpec::new("skopeo-single")
        .layers(2, 300_000)
        .generate();
    let index = Index::of(vec![
        ImageSpec::new("skopeo-amd64").layers(1, 100_000).generate(),
        ImageSpec::new("skopeo-arm64")
            .platform("linux", "arm64")
            .layers(1, 100_000)
            .generate(),
    ]);
    let single_dir = work.path().join("single");
    write_oci_layout(&single_dir, "v1", &image.manifest, image.blobs()).unwrap();
    let multi_dir = work.path().join("multi");
    let children: Vec<&Blob> = index
        .images
        .iter()
        .flat_map(|i| std::iter::once(&i.manifest).chain(i.blobs()))
        .collect();
    write_oci_layout(&multi_dir, "multi", &index.manifest, children).unwrap();

    let cases = [
        ("v1", &single_dir, &image.manifest, false),
        ("multi", &multi_dir, &index.manifest, true),
    ];
    for (n, (tag, dir, top, all)) in cases.into_iter().enumerate() {
        let remote = format!("docker://{host}/alice/app:{tag}");
        let mut push = strings(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:alice-pw",
        ]);
        if all {
            push.push("--all".to_owned());
        }
        push.push(format!("oci:{}:{tag}", dir.display()));
        push.push(remote.clone());
        run_skopeo(push).await;

        // The webhook a receiver got names the tag and the manifest skopeo pushed.
        let digest = top.digest().to_string();
        assert_push_delivered(&hub, &receiver, &url, n + 1, tag, &digest).await;

        // Pulled back, byte for byte.
        let back = work.path().join(format!("back-{tag}"));
        let mut pull = strings(&[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "alice:alice-pw",
        ]);
        if all {
            pull.push("--all".to_owned());
        }
        pull.push(remote);
        pull.push(format!("oci:{}:{tag}", back.display()));
        run_skopeo(pull).await;
        assert_eq!(layout_top(&back), top.digest().to_string());
        assert_eq!(layout_blobs(&back), layout_blobs(dir));
    }
}

#[tokio::test]
async fn two_clients_pushing_the_same_blob_at_once_end_with_one_correct_blob() {
    let hub = super::open_hub().await;
    let reg = Reg::new(&hub);
    let content = blob(
        &ImageSpec::new("race")
            .layers(1, 3 * 1024 * 1024)
            .generate()
            .layers[0]
            .bytes,
    );
    let chunked = |reg: Reg, name: &'static str| {
        let content = content.clone();
        async move {
            let mut at = reg.session(name).await;
            for chunk in content.bytes.chunks(700_000) {
                let resp = reg.send(Method::PATCH, &at, &[], chunk.to_vec()).await;
                resp.expect(202);
                at = location(&resp);
                tokio::task::yield_now().await;
            }
            let finish = format!("{at}?digest={}", content.digest());
            reg.send(Method::PUT, &finish, &[], Vec::new()).await
        }
    };
    let monolithic = |reg: Reg, name: &'static str| {
        let content = content.clone();
        async move { reg.upload(name, &content).await }
    };
    let (a, b, c, d) = tokio::join!(
        chunked(reg.clone(), "acme/app"),
        chunked(reg.clone(), "acme/app"),
        monolithic(reg.clone(), "acme/app"),
        monolithic(reg.clone(), "acme/other"),
    );
    for resp in [&a, &b, &c, &d] {
        resp.expect(201);
    }
    for name in ["acme/app", "acme/other"] {
        let got = reg
            .get(&format!("/v2/{name}/blobs/{}", content.digest()))
            .await;
        super::status(&got, 200);
        assert!(
            got.body == content.bytes,
            "the blob of {name} is not the one pushed"
        );
    }
}

/// Polls until no request writes to the upload any more (a PATCH with no body is accepted),
/// i.e. hubmock has seen the client go. Bounded by WAIT.
async fn settled(reg: &Reg, session: &str) -> Resp {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp = reg.send(Method::PATCH, session, &[], Vec::new()).await;
        if resp.status != 400 || tokio::time::Instant::now() > deadline {
            return resp;
        }
        // Nothing to long-poll on for a client that vanished: look again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_killed_mid_chunk_leaves_no_blob_and_no_event() {
    let receiver = answering(200).await;
    let hub = super::open_hub().await;
    hub.repository("acme", "app").await;
    let url = format!("{}/hook", receiver.uri());
    hub.pipeline("acme/app", "deploy", &[url], false).await;
    let reg = Reg::new(&hub);
    let content = blob(&vec![7u8; 1024 * 1024]);
    let session = reg.session("acme/app").await;
    reg.send(
        Method::PATCH,
        &session,
        &[("content-range", "0-9")],
        content.bytes[..10].to_vec(),
    )
    .await
    .expect(202);

    // A chunk that announces the rest but sends a third of it, then the client dies.
    let mut stream = tokio::net::TcpStream::connect(hub.hub.address())
        .await
        .unwrap();
    let rest = content.bytes.len() - 10;
    let head = format!(
        "PATCH {session} HTTP/1.1\r\nhost: hubmock\r\ncontent-length: {rest}\r\ncontent-range: 10-{}\r\n\r\n",
        content.bytes.len() - 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&content.bytes[10..10 + rest / 3])
        .await
        .unwrap();
    stream.flush().await.unwrap();
    drop(stream);

    let resp = settled(&reg, &session).await;
    resp.expect(202);
    // The upload is as it was before the killed request: ten bytes.
    assert_eq!(header(&reg.get(&session).await, "range"), "0-9");
    let blob_path = format!("/v2/acme/app/blobs/{}", content.digest());
    assert_eq!(error_code(&reg.get(&blob_path).await, 404), "BLOB_UNKNOWN");
    // A monolithic upload killed midway leaves nothing either.
    let mut stream = tokio::net::TcpStream::connect(hub.hub.address())
        .await
        .unwrap();
    let head = format!(
        "POST /v2/acme/app/blobs/uploads/?digest={} HTTP/1.1\r\nhost: hubmock\r\ncontent-length: {}\r\n\r\n",
        content.digest(),
        content.bytes.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&content.bytes[..1000]).await.unwrap();
    drop(stream);
    assert_eq!(error_code(&reg.get(&blob_path).await, 404), "BLOB_UNKNOWN");
    assert_eq!(
        reg.get("/v2/_catalog").await.expect(200),
        json!({"repositories": []})
    );
    assert!(hub.api.runs(&Default::default()).await.unwrap().is_empty());

    // The session goes on where it was, and finishes.
    let range = format!("10-{}", content.bytes.len() - 1);
    let headers = [("content-range", range.as_str())];
    reg.send(
        Method::PATCH,
        &session,
        &headers,
        content.bytes[10..].to_vec(),
    )
    .await
    .expect(202);
    let put = reg
        .send(
            Method::PUT,
            &format!("{session}?digest={}", content.digest()),
            &[],
            Vec::new(),
        )
        .await;
    put.expect(201);
    super::status(&reg.get(&blob_path).await, 200);
}
