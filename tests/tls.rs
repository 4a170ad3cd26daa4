//! Deliveries to `https://` hook URLs: a rustls receiver with a certificate made here (its own
//! CA, a wrong name, an expired one), trusted with `--ca-cert` (`Config::with_ca_cert`), or
//! not, or taken as it is with `--insecure-skip-verify`.

use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hubmock::net::AcceptLoop;
use hubmock::Config;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::serve::Serve;
use crate::util::TestHub;

/// A certificate authority of the test's own.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A certificate for `names`, valid until `until` (a day from now when `None`).
    fn issue(&self, names: &[&str], until: Option<OffsetDateTime>) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(400);
        params.not_after = until.unwrap_or(now + Duration::days(1));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A receiver over https: answers `200` to every request and keeps (HTTP version, body).
struct TlsReceiver {
    _serving: AcceptLoop,
    url: String,
    received: Arc<Mutex<Vec<(http::Version, Value)>>>,
}

impl TlsReceiver {
    // ring's provider, as hubmock's (src/tls.rs says why the deprecation is allowed).
    #[allow(deprecated)]
    async fn start((cert, key): (String, String)) -> TlsReceiver {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let serving = AcceptLoop::spawn(listener, move |stream, _| {
            let (acceptor, kept) = (acceptor.clone(), kept.clone());
            async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let kept = kept.clone();
                    async move {
                        let version = request.version();
                        let body = request.into_body().collect().await?.to_bytes();
                        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        kept.lock().unwrap().push((version, json));
                        Ok::<_, hyper::Error>(http::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from_static(b"ok"),
                        )))
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            }
        })
        .unwrap();
        let url = format!("https://{}/hook", serving.address());
        TlsReceiver {
            _serving: serving,
            url,
            received,
        }
    }

    fn received(&self) -> Vec<(http::Version, Value)> {
        self.received.lock().unwrap().clone()
    }
}

/// Pushes once to a pipeline of one webhook to `url`; answers step 1's delivery as the run
/// shows it.
async fn deliver_once(config: Config, url: &str) -> Value {
    let hub = TestHub::with(config.with_auth(false)).await;
    let run = hub.first_run("tls", &[url.to_owned()], false).await;
    let run = hub.finished(&run).await;
    run["steps"][0]["delivery"].clone()
}

#[tokio::test]
async fn a_receiver_with_a_certificate_of_its_own_ca_gets_deliveries_when_the_ca_is_given() {
    let ca = Ca::new();
    let receiver = TlsReceiver::start(ca.issue(&["127.0.0.1", "localhost"], None)).await;
    let delivery = deliver_once(Config::default().with_ca_cert(ca.pem()), &receiver.url).await;
    assert_eq!(delivery["status"], 200, "{delivery:#}");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    // HTTP/2, as both sides offer it by ALPN.
    assert_eq!(received[0].0, http::Version::HTTP_2);
    assert_eq!(received[0].1["repository"]["repo_name"], "acme/app");
}

#[tokio::test]
async fn without_its_ca_the_delivery_fails_with_unknown_issuer() {
    let ca = Ca::new();
    let receiver = TlsReceiver::start(ca.issue(&["127.0.0.1"], None)).await;
    let delivery = deliver_once(Config::default(), &receiver.url).await;
    assert!(delivery["status"].is_null(), "{delivery:#}");
    let error = delivery["error"].as_str().unwrap();
    assert!(error.starts_with("unknown issuer"), "{error}");
    assert!(error.contains("--ca-cert"), "{error}");
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn insecure_skip_verify_delivers_to_a_receiver_nobody_vouches_for() {
    let ca = Ca::new();
    let receiver = TlsReceiver::start(ca.issue(&["receiver.local"], None)).await;
    let config = Config::default().with_insecure_skip_verify(true);
    let delivery = deliver_once(config, &receiver.url).await;
    assert_eq!(delivery["status"], 200, "{delivery:#}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_naming_both() {
    let ca = Ca::new();
    let receiver = TlsReceiver::start(ca.issue(&["receiver.local"], None)).await;
    let delivery = deliver_once(Config::default().with_ca_cert(ca.pem()), &receiver.url).await;
    assert_eq!(
        delivery["error"], "certificate for receiver.local is not valid for 127.0.0.1",
        "{delivery:#}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn an_expired_certificate_is_refused_as_expired() {
    let ca = Ca::new();
    let expired = OffsetDateTime::now_utc() - Duration::days(30);
    let receiver = TlsReceiver::start(ca.issue(&["127.0.0.1"], Some(expired))).await;
    let delivery = deliver_once(Config::default().with_ca_cert(ca.pem()), &receiver.url).await;
    let error = delivery["error"].as_str().unwrap();
    assert!(
        error.starts_with("certificate expired: not valid after "),
        "{error}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn serve_takes_the_ca_from_a_file_and_refuses_a_file_that_is_not_one() {
    let ca = Ca::new();
    let receiver = TlsReceiver::start(ca.issue(&["127.0.0.1"], None)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let ca_arg = ca_file.to_str().unwrap();
    let serve = Serve::start(&["--no-auth", "--ca-cert", ca_arg]);
    let hub = crate::util::Http::new(&serve.url);
    hub.post(
        "/_hubmock/repositories",
        serde_json::json!({"namespace": "acme", "name": "app"}),
    )
    .await
    .expect(201);
    let spec = serde_json::json!({"name": "tls", "expect_final_callback": false,
        "webhooks": [{"name": "r", "hook_url": receiver.url}]});
    hub.post("/v2/repositories/acme/app/webhook_pipeline/", spec)
        .await
        .expect(201);
    let runs = hub
        .post(
            "/_hubmock/repositories/acme/app/push",
            serde_json::json!({"tag": "v1"}),
        )
        .await
        .expect(202);
    let id = runs["runs"][0]["id"].as_u64().unwrap();
    let run = hub
        .get(&format!(
            "/_hubmock/runs/{id}?wait=finished&timeout_ms=10000"
        ))
        .await
        .expect(200);
    assert_eq!(run["steps"][0]["delivery"]["status"], 200, "{run:#}");

    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubmock"))
        .args([
            "serve",
            "--port",
            "0",
            "--ca-cert",
            not_pem.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not.pem: holds no PEM certificate"),
        "{stderr}"
    );
}

/// A client of an https hubmock that trusts the CA hubmock wrote.
fn trusting(ca_pem: &[u8]) -> hubmock::client::HttpClient {
    let tls = hubmock::tls::ClientTls {
        ca_certs: vec![ca_pem.to_vec()],
        insecure_skip_verify: false,
    };
    hubmock::client::HttpClient::with_tls(&tls).unwrap()
}

async fn call(
    client: &hubmock::client::HttpClient,
    method: http::Method,
    url: &str,
    body: Value,
) -> (u16, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let answer = client
        .send(
            method,
            url,
            &[("content-type", "application/json")],
            body.into(),
            1 << 20,
        )
        .await
        .unwrap_or_else(|err| panic!("{url}: {err}"));
    let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status, json)
}

#[tokio::test]
async fn a_chain_whose_receiver_calls_back_to_an_https_hubmock_completes() {
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("ca.pem");
    let serve = Serve::start(&[
        "--no-auth",
        "--tls-self-signed",
        "--tls-ca-out",
        ca_out.to_str().unwrap(),
    ]);
    assert!(serve.url.starts_with("https://127.0.0.1:"), "{}", serve.url);
    let client = trusting(&std::fs::read(&ca_out).unwrap());
    // Plain http to an https port gets no answer.
    let plain = crate::util::Http::new(&serve.url.replacen("https://", "http://", 1));
    assert!(plain
        .try_send(
            http::Method::GET,
            "/_hubmock/health",
            &[],
            bytes::Bytes::new()
        )
        .await
        .is_err());

    let receiver = crate::util::answering(200).await;
    let base = &serve.url;
    let (status, _) = call(
        &client,
        http::Method::POST,
        &format!("{base}/_hubmock/repositories"),
        serde_json::json!({"namespace": "acme", "name": "app"}),
    )
    .await;
    assert_eq!(status, 201);
    let spec = serde_json::json!({"name": "chain", "expect_final_callback": true,
        "webhooks": [{"name": "a", "hook_url": format!("{}/a", receiver.uri())},
                     {"name": "b", "hook_url": format!("{}/b", receiver.uri())}]});
    let (status, _) = call(
        &client,
        http::Method::POST,
        &format!("{base}/v2/repositories/acme/app/webhook_pipeline/"),
        spec,
    )
    .await;
    assert_eq!(status, 201);
    let (status, runs) = call(
        &client,
        http::Method::POST,
        &format!("{base}/_hubmock/repositories/acme/app/push"),
        serde_json::json!({"tag": "v1"}),
    )
    .await;
    assert_eq!(status, 202);
    let id = runs["runs"][0]["id"].as_u64().unwrap();
    for step in 0..2 {
        let (_, run) = call(
            &client,
            http::Method::GET,
            &format!("{base}/_hubmock/runs/{id}?wait=delivered&step={step}&timeout_ms=10000"),
            Value::Null,
        )
        .await;
        // The payload's callback_url is https, as the listening URL: the receiver calls back
        // over TLS, trusting the CA hubmock wrote.
        let callback = run["steps"][step]["callback_url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(callback.starts_with(base), "{callback}");
        let (status, _) = call(
            &client,
            http::Method::POST,
            &callback,
            serde_json::json!({"state": "success"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, run) = call(
        &client,
        http::Method::GET,
        &format!("{base}/_hubmock/runs/{id}?wait=finished&timeout_ms=10000"),
        Value::Null,
    )
    .await;
    assert_eq!(run["status"], "success", "{run:#}");
}

#[tokio::test]
async fn skopeo_pushes_to_an_https_hubmock_trusting_the_written_ca() {
    use hubmock::registry::image::{write_oci_layout, ImageSpec};
    let Some(_) = crate::registry::clients::skopeo() else {
        return;
    };
    let hub = hubmock::Hub::builder()
        .config(Config::default().with_user("alice", "alice-pw"))
        .tls_self_signed()
        .start()
        .await;
    let ca = hub.tls_ca().expect("a self-signed hub answers its CA");
    assert!(hub.uri().starts_with("https://"));
    let receiver = crate::util::answering(200).await;
    hub.create_repository("alice", "app").unwrap();
    let spec = hubmock::PipelineSpec::new("deploy", &[&format!("{}/hook", receiver.uri())]);
    hub.create_pipeline(&hubmock::RepoName::parse("alice/app").unwrap(), spec)
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), &ca).unwrap();
    let image = ImageSpec::new("tls").layers(1, 100_000).generate();
    let layout = work.path().join("layout");
    write_oci_layout(&layout, "v1", &image.manifest, image.blobs()).unwrap();
    let remote = format!("docker://{}/alice/app:v1", hub.address());
    crate::registry::clients::run_skopeo(vec![
        "copy".into(),
        "--dest-cert-dir".into(),
        certs.display().to_string(),
        "--dest-creds".into(),
        "alice:alice-pw".into(),
        format!("oci:{}:v1", layout.display()),
        remote.clone(),
    ])
    .await;
    let runs = hub.runs(&hubmock::RunFilter::default());
    assert_eq!(runs.len(), 1, "the push fired the pipeline");
    let run = hub
        .wait_for_run(runs[0].id(), crate::util::WAIT)
        .await
        .unwrap();
    assert_eq!(run.steps()[0].delivery.as_ref().unwrap().status, Some(200));
    // Pulled back over https, trusting the same CA.
    let back = work.path().join("back");
    crate::registry::clients::run_skopeo(vec![
        "copy".into(),
        "--src-cert-dir".into(),
        certs.display().to_string(),
        "--src-creds".into(),
        "alice:alice-pw".into(),
        remote,
        format!("dir:{}", back.display()),
    ])
    .await;
    assert!(back.join("manifest.json").exists());
}

#[tokio::test]
async fn fuzz_receiver_fuzzes_an_https_receiver_trusting_its_ca() {
    let ca = Ca::new();
    let receiver = TlsReceiver::start(ca.issue(&["127.0.0.1"], None)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let options = hubmock::fuzz_receiver::FuzzOptions {
        cases: 8,
        seed: Some(7),
        ca_cert_files: vec![ca_file.clone()],
        ..hubmock::fuzz_receiver::FuzzOptions::new(&receiver.url)
    };
    assert!(options
        .command_line(7)
        .contains(&format!("--ca-cert {}", ca_file.display())));
    let report = hubmock::fuzz_receiver::fuzz_receiver(options.clone())
        .await
        .unwrap();
    assert!(report.passed(), "{report}");
    assert!(receiver.received().len() >= 8);

    // Without the CA, the first case fails, saying why.
    let untrusted = hubmock::fuzz_receiver::FuzzOptions {
        ca_cert_files: Vec::new(),
        ..options
    };
    let report = hubmock::fuzz_receiver::fuzz_receiver(untrusted)
        .await
        .unwrap();
    assert!(!report.passed());
    assert!(report.to_string().contains("unknown issuer"), "{report}");
}

#[tokio::test]
async fn a_scenario_delivers_to_an_external_https_receiver_trusting_the_given_ca() {
    let ca = Ca::new();
    let receiver = TlsReceiver::start(ca.issue(&["127.0.0.1"], None)).await;
    let text = format!(
        "name: https receiver\n\
         repository: acme/app\n\
         pipelines:\n  - name: p\n    expect_final_callback: false\n    webhooks: [outside]\n\
         receivers:\n  outside: {{ url: \"{}\" }}\n\
         steps:\n  - push: {{ tag: v1 }}\n  - expect_run: {{ pipeline: p, status: success, steps: [success] }}\n",
        receiver.url
    );
    let mut loaded = hubmock::scenario::Loaded {
        file: "https.yaml".to_owned(),
        scenario: hubmock::scenario::parse(&text, "https.yaml").unwrap(),
        client_tls: Default::default(),
    };
    // Not trusted: the delivery fails, and so does the scenario.
    let failure = hubmock::scenario::run(&loaded).await.failure;
    assert!(failure.is_some(), "an untrusted receiver cannot pass");
    loaded.client_tls.ca_certs.push(ca.pem().into_bytes());
    let outcome = hubmock::scenario::run(&loaded).await;
    assert!(outcome.passed(), "{:?}", outcome.failure);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_receiver_with_a_self_signed_certificate_gets_deliveries_when_it_is_given() {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = made.cert.pem();
    let receiver = TlsReceiver::start((cert.clone(), made.signing_key.serialize_pem())).await;
    let delivery = deliver_once(Config::default().with_ca_cert(cert), &receiver.url).await;
    assert_eq!(delivery["status"], 200, "{delivery:#}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn serve_takes_a_certificate_and_key_from_files_and_serves_the_pages_over_https() {
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["127.0.0.1", "localhost"], None);
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let serve = Serve::start(&[
        "--no-auth",
        "--tls-cert",
        cert_file.to_str().unwrap(),
        "--tls-key",
        key_file.to_str().unwrap(),
    ]);
    assert!(serve.url.starts_with("https://"), "{}", serve.url);
    let client = trusting(ca.pem().as_bytes());
    let page = client
        .send(
            http::Method::GET,
            &format!("{}/", serve.url),
            &[],
            bytes::Bytes::new(),
            1 << 20,
        )
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<html"));

    // A key that is not one stops the start, naming the file.
    std::fs::write(&key_file, "not a key").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubmock"))
        .args([
            "serve",
            "--port",
            "0",
            "--tls-cert",
            cert_file.to_str().unwrap(),
        ])
        .args(["--tls-key", key_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("key.pem: not a PEM private key"),
        "{stderr}"
    );
}
