//! SPEC section 4: the payload, in its three formats, as receivers get it, and the public
//! payload types as a parser of Docker Hub's own payloads.

use std::time::{SystemTime, UNIX_EPOCH};

use hubmock::model::payload::{Count, Images};
use hubmock::{Config, Payload, PayloadFormat, Seconds};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{receiver, TestHub};

/// The seed document's example, verbatim but for one character: the seed writes
/// `[\/var/cache/apt-cacher-ng\]` in the `dockerfile` string, and `\]` is not a JSON escape,
/// so the fixture has `]` there (the valid `\/` is kept). Nothing else is changed.
const SEED_LEGACY: &str = include_str!("data/seed_legacy.json");
/// docs.docker.com's example today: integer times, no `images`, `comment_count` a number.
const DOCS_CURRENT: &str = include_str!("data/current.json");
/// A delivery as the real Hub sent them 2017–2022: Python's key order, `images: []`,
/// `media_type`, `full_description: null`, no `comment_count` and no `dockerfile`.
const OBSERVED: &str = include_str!("data/observed.json");

/// A receiver that answers every delivery `200`.
async fn ok_receiver() -> MockServer {
    let r = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&r)
        .await;
    r
}

/// The body step 0 of `run` delivered to `r`, as raw text and as JSON.
async fn delivered_body(hub: &TestHub, r: &MockServer, run: &Value) -> (String, Value) {
    let after = hub.delivered(run, 0).await;
    let callback_url = &after["steps"][0]["callback_url"];
    assert_eq!(after["steps"][0]["delivery"]["status"], 200, "{after:#}");
    let requests = r.received_requests().await.expect("recording is on");
    let request = requests
        .iter()
        .find(|req| {
            serde_json::from_slice::<Value>(&req.body)
                .is_ok_and(|body| &body["callback_url"] == callback_url)
        })
        .unwrap_or_else(|| panic!("no delivery for {callback_url} in {requests:#?}"));
    let content_type = request
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap());
    assert_eq!(content_type, Some("application/json"));
    let length = request
        .headers
        .get("content-length")
        .map(|v| v.to_str().unwrap());
    assert_eq!(length, Some(request.body.len().to_string().as_str()));
    let raw = String::from_utf8(request.body.clone()).expect("a payload is UTF-8");
    let json = serde_json::from_str(&raw).expect("a payload is JSON");
    (raw, json)
}

/// Creates a pipeline on `repo` delivering to `url`, with `payload_format` if given.
async fn pipeline(hub: &TestHub, repo: &str, name: &str, url: &str, format: Option<&str>) {
    let mut body = json!({
        "name": name,
        "expect_final_callback": true,
        "webhooks": [{"name": name, "hook_url": url}],
        "registry": "registry-1.docker.io",
    });
    if let Some(format) = format {
        body["payload_format"] = json!(format);
    }
    hub.http
        .post(&format!("/v2/repositories/{repo}/webhook_pipeline/"), body)
        .await
        .expect(201);
}

/// Pushes `body` to `repo` through the control API; answers the runs.
async fn push(hub: &TestHub, repo: &str, body: Value) -> Vec<Value> {
    let answer = hub
        .http
        .post(&format!("/_hubmock/repositories/{repo}/push"), body)
        .await
        .expect(202);
    answer["runs"].as_array().expect("runs").clone()
}

/// A hub with `config`, repository `acme/app`, one pipeline (with `format` if given) to a 200
/// receiver, one push of `v1`: the delivered body as raw text and JSON.
async fn one_delivery(config: Config, format: Option<&str>) -> (TestHub, String, Value) {
    let hub = TestHub::with(config).await;
    let r = ok_receiver().await;
    hub.repository("acme", "app").await;
    pipeline(&hub, "acme/app", "ci", &r.uri(), format).await;
    let runs = push(&hub, "acme/app", json!({"tag": "v1"})).await;
    let (raw, body) = delivered_body(&hub, &r, &runs[0]).await;
    (hub, raw, body)
}

fn config() -> Config {
    Config::default().with_auth(false)
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value:#}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// The number written after `"key":` in compact JSON, as text.
fn raw_number<'a>(raw: &'a str, key: &str) -> &'a str {
    let needle = format!("\"{key}\":");
    let start = raw
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in {raw}"))
        + needle.len();
    let rest = &raw[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim()
}

/// Whether `text` is a float in Python's old exponent form, e.g. `1.417566161e+09`.
fn is_exponent_float(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once("e+") else {
        return false;
    };
    let Some((whole, fraction)) = mantissa.split_once('.') else {
        return false;
    };
    whole.len() == 1
        && [whole, fraction, exponent]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        && exponent.len() == 2
}

/// Whether `text` is a JSON integer.
fn is_integer(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Asserts a time is within a minute of now.
#[track_caller]
fn is_recent(seconds: &Value) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let seconds = seconds.as_f64().expect("a number of seconds");
    assert!((now - seconds).abs() < 60.0, "{seconds} is not now ({now})");
}

/// Whether `id` is a hook id: 32 characters of `[0-9a-j]`.
fn is_hook_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'j'))
}

/// Asserts `callback_url` is `{base}{repo_path}hook/<hook id>/`.
#[track_caller]
fn assert_callback_url(body: &Value, base: &str, repo_path: &str) {
    let url = body["callback_url"].as_str().expect("callback_url");
    let prefix = format!("{base}{repo_path}hook/");
    let id = url
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{url} is not {prefix}<hook id>/"));
    assert!(is_hook_id(id), "{id:?} is not 32 characters of [0-9a-j]");
}

/// What every format shares: the top-level keys, the URLs and names, the push.
#[track_caller]
fn assert_common(hub: &TestHub, body: &Value) {
    assert_eq!(keys(body), ["callback_url", "push_data", "repository"]);
    assert_callback_url(body, &hub.hub.uri(), "/u/acme/app/");
    let repository = &body["repository"];
    assert_eq!(repository["repo_name"], "acme/app");
    assert_eq!(
        repository["repo_url"],
        format!("{}/u/acme/app/", hub.hub.uri())
    );
    assert_eq!(repository["name"], "app");
    assert_eq!(repository["namespace"], "acme");
    assert_eq!(repository["owner"], "acme");
    assert_eq!(repository["status"], "Active");
    assert_eq!(repository["is_official"], false);
    assert_eq!(repository["is_private"], false);
    assert_eq!(repository["is_trusted"], false);
    assert_eq!(repository["star_count"], 0);
    assert_eq!(body["push_data"]["tag"], "v1");
    assert_eq!(body["push_data"]["pusher"], "acme");
    is_recent(&body["push_data"]["pushed_at"]);
    is_recent(&repository["date_created"]);
}

/// The `legacy` row of the SPEC's table.
#[track_caller]
fn assert_legacy(raw: &str, body: &Value) {
    for key in ["pushed_at", "date_created"] {
        let number = raw_number(raw, key);
        assert!(
            is_exponent_float(number),
            "{key} is {number}, not like 1.417566161e+09"
        );
    }
    let push_data = &body["push_data"];
    assert_eq!(keys(push_data), ["images", "pushed_at", "pusher", "tag"]);
    let images = push_data["images"].as_array().expect("images");
    assert!(!images.is_empty(), "{body:#}");
    let repository = &body["repository"];
    assert_eq!(repository["comment_count"], "0");
    assert!(repository["dockerfile"].is_string(), "{body:#}");
    assert_eq!(keys(repository), REPOSITORY_KEYS);
}

/// The `current` row of the SPEC's table.
#[track_caller]
fn assert_current(raw: &str, body: &Value) {
    for key in ["pushed_at", "date_created"] {
        let number = raw_number(raw, key);
        assert!(is_integer(number), "{key} is {number}, not an integer");
    }
    assert_eq!(keys(&body["push_data"]), ["pushed_at", "pusher", "tag"]);
    let repository = &body["repository"];
    assert_eq!(repository["comment_count"], 0);
    assert!(repository["comment_count"].is_u64(), "{body:#}");
    assert!(repository["dockerfile"].is_string(), "{body:#}");
    assert_eq!(keys(repository), REPOSITORY_KEYS);
}

/// The `observed` row of the SPEC's table.
#[track_caller]
fn assert_observed(raw: &str, body: &Value) {
    for key in ["pushed_at", "date_created"] {
        let number = raw_number(raw, key);
        assert!(is_integer(number), "{key} is {number}, not an integer");
    }
    let push_data = &body["push_data"];
    assert_eq!(
        keys(push_data),
        ["images", "media_type", "pushed_at", "pusher", "tag"]
    );
    assert_eq!(push_data["images"], json!([]));
    assert!(
        push_data["media_type"]
            .as_str()
            .is_some_and(|m| m.starts_with("application/vnd.")),
        "{body:#}"
    );
    let repository = &body["repository"];
    let expected: Vec<&str> = REPOSITORY_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "comment_count" && *k != "dockerfile")
        .collect();
    assert_eq!(keys(repository), expected);
}

/// The `repository` keys of the SPEC, sorted.
const REPOSITORY_KEYS: [&str; 15] = [
    "comment_count",
    "date_created",
    "description",
    "dockerfile",
    "full_description",
    "is_official",
    "is_private",
    "is_trusted",
    "name",
    "namespace",
    "owner",
    "repo_name",
    "repo_url",
    "star_count",
    "status",
];

/// Parses a body with the public types and asserts it serialises back to the same JSON.
#[track_caller]
fn round_trip(raw: &str) -> Payload {
    let payload: Payload = serde_json::from_slice(raw.as_bytes())
        .unwrap_or_else(|err| panic!("not a hubmock::Payload ({err}): {raw}"));
    let again = serde_json::to_vec(&payload).expect("a payload serialises");
    let again: Value = serde_json::from_slice(&again).expect("and is JSON");
    let original: Value = serde_json::from_str(raw).unwrap();
    assert_eq!(again, original, "re-serialised payload differs");
    payload
}

// ---- the formats, as the server's default -------------------------------------------------

#[tokio::test]
async fn the_default_format_is_legacy_with_times_as_exponent_floats() {
    let (hub, raw, body) = one_delivery(config(), None).await;
    assert_common(&hub, &body);
    assert_legacy(&raw, &body);
}

#[tokio::test]
async fn a_legacy_server_sends_the_legacy_shape() {
    let (hub, raw, body) =
        one_delivery(config().with_payload_format(PayloadFormat::Legacy), None).await;
    assert_common(&hub, &body);
    assert_legacy(&raw, &body);
}

#[tokio::test]
async fn a_current_server_sends_integer_times_no_images_and_a_numeric_comment_count() {
    let format = PayloadFormat::Current;
    let (hub, raw, body) = one_delivery(config().with_payload_format(format), None).await;
    assert_common(&hub, &body);
    assert_current(&raw, &body);
}

#[tokio::test]
async fn an_observed_server_sends_empty_images_a_media_type_and_no_comment_count_or_dockerfile() {
    let format = PayloadFormat::Observed;
    let (hub, raw, body) = one_delivery(config().with_payload_format(format), None).await;
    assert_common(&hub, &body);
    assert_observed(&raw, &body);
}

// ---- the formats, per pipeline ------------------------------------------------------------

#[tokio::test]
async fn a_pipeline_payload_format_overrides_the_server_default() {
    for server in PayloadFormat::ALL {
        let hub = TestHub::with(config().with_payload_format(server)).await;
        let r = ok_receiver().await;
        hub.repository("acme", "app").await;
        for format in PayloadFormat::ALL {
            pipeline(
                &hub,
                "acme/app",
                format.as_str(),
                &r.uri(),
                Some(format.as_str()),
            )
            .await;
        }
        pipeline(&hub, "acme/app", "default", &r.uri(), None).await;
        let runs = push(&hub, "acme/app", json!({"tag": "v1"})).await;
        assert_eq!(runs.len(), 4);
        for run in &runs {
            let (raw, body) = delivered_body(&hub, &r, run).await;
            assert_common(&hub, &body);
            let format = match run["pipeline"].as_str().unwrap() {
                "default" => server,
                name => name.parse().unwrap(),
            };
            match format {
                PayloadFormat::Legacy => assert_legacy(&raw, &body),
                PayloadFormat::Current => assert_current(&raw, &body),
                PayloadFormat::Observed => assert_observed(&raw, &body),
            }
        }
    }
}

#[tokio::test]
async fn a_pipeline_shows_its_payload_format() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    pipeline(
        &hub,
        "acme/app",
        "ci",
        "http://127.0.0.1:9/",
        Some("observed"),
    )
    .await;
    let shown = hub
        .http
        .get("/v2/repositories/acme/app/webhook_pipeline/ci/")
        .await
        .expect(200);
    assert_eq!(shown["payload_format"], "observed");
}

#[tokio::test]
async fn an_unknown_payload_format_is_a_400_naming_the_field() {
    let hub = TestHub::start().await;
    hub.repository("acme", "app").await;
    let answer = hub
        .http
        .post(
            "/v2/repositories/acme/app/webhook_pipeline/",
            json!({"name": "ci", "payload_format": "v3",
                   "webhooks": [{"name": "a", "hook_url": "http://127.0.0.1:9/"}]}),
        )
        .await
        .expect(400);
    let message = answer["payload_format"][0].as_str().unwrap_or_default();
    assert!(message.contains("legacy"), "{answer:#}");
}

// ---- push details in the payload ----------------------------------------------------------

#[tokio::test]
async fn a_legacy_payload_lists_the_pushed_images() {
    let hub = TestHub::start().await;
    let r = ok_receiver().await;
    hub.repository("acme", "app").await;
    pipeline(&hub, "acme/app", "ci", &r.uri(), None).await;
    let images = [
        "27d47432a69bca5f2700e4dff7de0388ed65f9d3fb1ec645e2bc24c223dc1cc3",
        "51a9c7c1f8bb2fa19bcd09789a34e63f35abb80044bc10196e304f6634cc582c",
    ];
    let runs = push(
        &hub,
        "acme/app",
        json!({"tag": "v2", "pusher": "trustedbuilder", "images": images}),
    )
    .await;
    let (_, body) = delivered_body(&hub, &r, &runs[0]).await;
    assert_eq!(body["push_data"]["images"], json!(images));
    assert_eq!(body["push_data"]["pusher"], "trustedbuilder");
    assert_eq!(body["push_data"]["tag"], "v2");
}

#[tokio::test]
async fn a_legacy_payload_makes_up_one_image_id_when_the_push_names_none() {
    let (_hub, _, body) = one_delivery(config(), None).await;
    let images = body["push_data"]["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "{body:#}");
    let id = images[0].as_str().expect("an image id is a string");
    assert!(
        id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{id:?} is not 64 lower-case hex digits"
    );
}

#[tokio::test]
async fn an_observed_payload_carries_the_pushed_media_type() {
    let hub = TestHub::with(config().with_payload_format(PayloadFormat::Observed)).await;
    let r = ok_receiver().await;
    hub.repository("acme", "app").await;
    pipeline(&hub, "acme/app", "ci", &r.uri(), None).await;
    let media_type = "application/vnd.oci.image.index.v1+json";
    let runs = push(
        &hub,
        "acme/app",
        json!({"tag": "v1", "media_type": media_type, "images": ["sha256:abc"]}),
    )
    .await;
    let (_, body) = delivered_body(&hub, &r, &runs[0]).await;
    assert_eq!(body["push_data"]["media_type"], media_type);
    // Observed deliveries never listed images, whatever was pushed.
    assert_eq!(body["push_data"]["images"], json!([]));
}

#[tokio::test]
async fn repository_fields_set_through_the_control_api_appear_in_each_format() {
    for format in PayloadFormat::ALL {
        let hub = TestHub::with(config().with_payload_format(format)).await;
        let r = ok_receiver().await;
        hub.http
            .post(
                "/_hubmock/repositories",
                json!({"namespace": "acme", "name": "app", "description": "Short",
                       "full_description": "Long", "dockerfile": "FROM scratch\n",
                       "is_private": true, "is_trusted": true, "owner": "bob",
                       "star_count": 7, "comment_count": 3}),
            )
            .await
            .expect(201);
        pipeline(&hub, "acme/app", "ci", &r.uri(), None).await;
        let runs = push(&hub, "acme/app", json!({"tag": "v1"})).await;
        let (_, body) = delivered_body(&hub, &r, &runs[0]).await;
        let repository = &body["repository"];
        assert_eq!(repository["description"], "Short", "{format}");
        assert_eq!(repository["full_description"], "Long", "{format}");
        assert_eq!(repository["is_private"], true, "{format}");
        assert_eq!(repository["is_trusted"], true, "{format}");
        assert_eq!(repository["owner"], "bob", "{format}");
        assert_eq!(repository["star_count"], 7, "{format}");
        assert_eq!(
            body["push_data"]["pusher"], "bob",
            "{format}: the owner pushes"
        );
        let (comment_count, dockerfile) = match format {
            PayloadFormat::Legacy => (json!("3"), json!("FROM scratch\n")),
            PayloadFormat::Current => (json!(3), json!("FROM scratch\n")),
            PayloadFormat::Observed => (Value::Null, Value::Null),
        };
        assert_eq!(repository["comment_count"], comment_count, "{format}");
        assert_eq!(repository["dockerfile"], dockerfile, "{format}");
    }
}

// ---- names and URLs -----------------------------------------------------------------------

#[tokio::test]
async fn a_library_repository_has_a_short_repo_name_and_underscore_urls() {
    for format in PayloadFormat::ALL {
        let hub = TestHub::with(config().with_payload_format(format)).await;
        let r = ok_receiver().await;
        hub.repository("library", "x").await;
        pipeline(&hub, "library/x", "ci", &r.uri(), None).await;
        let runs = push(&hub, "library/x", json!({"tag": "latest"})).await;
        let (_, body) = delivered_body(&hub, &r, &runs[0]).await;
        let repository = &body["repository"];
        assert_eq!(repository["repo_name"], "x", "{format}");
        assert_eq!(repository["name"], "x", "{format}");
        assert_eq!(repository["namespace"], "library", "{format}");
        assert_eq!(repository["is_official"], true, "{format}");
        assert_eq!(repository["repo_url"], format!("{}/_/x/", hub.hub.uri()));
        assert_callback_url(&body, &hub.hub.uri(), "/_/x/");
        // The short callback URL is the one the receiver calls back.
        let callback_url = body["callback_url"].as_str().unwrap();
        hub.http
            .post(callback_url, json!({"state": "success"}))
            .await
            .expect(200);
        assert_eq!(hub.finished(&runs[0]).await["status"], "success");
    }
}

#[tokio::test]
async fn each_delivery_has_its_own_callback_url_matching_its_step() {
    let hub = TestHub::start().await;
    let r = ok_receiver().await;
    hub.repository("acme", "app").await;
    pipeline(&hub, "acme/app", "one", &r.uri(), None).await;
    pipeline(&hub, "acme/app", "two", &r.uri(), None).await;
    let runs = push(&hub, "acme/app", json!({"tag": "v1"})).await;
    let (_, first) = delivered_body(&hub, &r, &runs[0]).await;
    let (_, second) = delivered_body(&hub, &r, &runs[1]).await;
    assert_eq!(first["callback_url"], runs[0]["steps"][0]["callback_url"]);
    assert_eq!(second["callback_url"], runs[1]["steps"][0]["callback_url"]);
    assert_ne!(first["callback_url"], second["callback_url"]);
}

#[tokio::test]
async fn payload_urls_start_with_the_public_url() {
    let config = config().with_public_url("https://hub.example.test");
    let (hub, _, body) = one_delivery(config, None).await;
    assert_callback_url(&body, "https://hub.example.test", "/u/acme/app/");
    assert_eq!(
        body["repository"]["repo_url"],
        "https://hub.example.test/u/acme/app/"
    );
    // A proxy at the public URL forwards to hubmock: the same path calls back.
    let url = body["callback_url"].as_str().unwrap();
    let path = url.strip_prefix("https://hub.example.test").unwrap();
    hub.http
        .post(path, json!({"state": "success"}))
        .await
        .expect(200);
}

// ---- the public payload types -------------------------------------------------------------

#[tokio::test]
async fn every_delivered_payload_parses_and_re_serialises_to_the_same_json() {
    for format in PayloadFormat::ALL {
        let (_hub, raw, body) = one_delivery(config().with_payload_format(format), None).await;
        let payload = round_trip(&raw);
        assert_eq!(payload.callback_url, body["callback_url"].as_str().unwrap());
        assert_eq!(payload.push_data.tag.as_deref(), Some("v1"));
        let pushed_at = payload.push_data.pushed_at;
        match format {
            PayloadFormat::Legacy => assert!(matches!(pushed_at, Seconds::Float(_)), "{raw}"),
            _ => assert!(matches!(pushed_at, Seconds::Integer(_)), "{raw}"),
        }
    }
}

#[test]
fn the_seed_documents_example_parses_as_a_legacy_payload() {
    let payload = round_trip(SEED_LEGACY);
    assert_eq!(
        payload.callback_url,
        "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/"
    );
    let push_data = &payload.push_data;
    assert_eq!(push_data.pushed_at, Seconds::Float(1_417_566_161.0));
    assert_eq!(push_data.pusher, "trustedbuilder");
    assert_eq!(push_data.tag.as_deref(), Some("latest"));
    assert_eq!(push_data.media_type, None);
    let images = push_data.images.as_list().expect("images");
    assert_eq!(images.len(), 3);
    assert_eq!(
        images[0],
        "27d47432a69bca5f2700e4dff7de0388ed65f9d3fb1ec645e2bc24c223dc1cc3"
    );
    assert_eq!(images[2], "...");
    let repository = &payload.repository;
    assert_eq!(repository.comment_count, Some(Count::Text("0".to_owned())));
    assert_eq!(repository.date_created, Seconds::Float(1_417_494_799.0));
    assert_eq!(repository.description.as_deref(), Some(""));
    let dockerfile = repository.dockerfile.as_deref().expect("dockerfile");
    assert!(
        dockerfile.starts_with("#\n# BUILD\t\tdocker build"),
        "{dockerfile:?}"
    );
    assert!(
        dockerfile.contains("VOLUME\t\t[/var/cache/apt-cacher-ng]\n"),
        "{dockerfile:?}"
    );
    assert_eq!(
        repository.full_description.as_deref(),
        Some("Автоматизированная сборка Docker Hub с репо GitHub")
    );
    assert!(!repository.is_official);
    assert!(repository.is_private);
    assert!(repository.is_trusted);
    assert_eq!(repository.name, "testhook");
    assert_eq!(repository.namespace, "svendowideit");
    assert_eq!(repository.owner, "svendowideit");
    assert_eq!(repository.repo_name, "svendowideit/testhook");
    assert_eq!(
        repository.repo_url,
        "https://registry.hub.docker.com/u/svendowideit/testhook/"
    );
    assert_eq!(repository.star_count, 0);
    assert_eq!(repository.status, "Active");
}

#[test]
fn the_seed_documents_times_are_written_back_in_exponent_form() {
    let payload: Payload = serde_json::from_str(SEED_LEGACY).unwrap();
    let text = serde_json::to_string(&payload).unwrap();
    assert_eq!(raw_number(&text, "pushed_at"), "1.417566161e+09");
    assert_eq!(raw_number(&text, "date_created"), "1.417494799e+09");
}

#[test]
fn the_current_documentation_example_parses_as_a_payload() {
    let payload = round_trip(DOCS_CURRENT);
    assert_eq!(payload.push_data.pushed_at, Seconds::Integer(1_417_566_161));
    assert_eq!(payload.push_data.images, Images::Absent);
    assert_eq!(payload.push_data.tag.as_deref(), Some("latest"));
    let repository = &payload.repository;
    assert_eq!(repository.date_created, Seconds::Integer(1_417_494_799));
    assert_eq!(repository.comment_count, Some(Count::Number(0)));
    assert!(repository.dockerfile.is_some());
    assert_eq!(repository.repo_name, "svendowideit/testhook");
}

#[test]
fn an_observed_delivery_parses_as_a_payload() {
    let payload = round_trip(OBSERVED);
    assert_eq!(payload.push_data.pushed_at, Seconds::Integer(1_631_871_970));
    assert_eq!(payload.push_data.images, Images::List(Vec::new()));
    assert_eq!(
        payload.push_data.media_type.as_deref(),
        Some("application/vnd.docker.distribution.manifest.list.v2+json")
    );
    assert_eq!(payload.push_data.pusher, "acmebot");
    let repository = &payload.repository;
    assert_eq!(repository.comment_count, None);
    assert_eq!(repository.dockerfile, None);
    assert_eq!(repository.full_description, None);
    assert_eq!(repository.description.as_deref(), Some("The Acme web app"));
    assert_eq!(repository.date_created, Seconds::Integer(1_620_102_244));
    assert_eq!(repository.star_count, 10);
    assert_eq!(repository.repo_url, "https://hub.docker.com/r/acme/webapp");
}

#[test]
fn seconds_read_either_way_compare_as_the_same_instant() {
    let legacy: Payload = serde_json::from_str(SEED_LEGACY).unwrap();
    let current: Payload = serde_json::from_str(DOCS_CURRENT).unwrap();
    assert_eq!(
        legacy.push_data.pushed_at.as_f64(),
        current.push_data.pushed_at.as_f64()
    );
}

#[test]
fn parsing_odd_input_never_panics() {
    let seed: Value = serde_json::from_str(SEED_LEGACY).unwrap();
    let mut odd: Vec<String> = [
        "",
        "null",
        "[]",
        "\"payload\"",
        "{}",
        "{\"callback_url\": 5}",
        "\u{feff}{}",
        "{\"push_data\": {\"pushed_at\": 1e400}}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (pointer, value) in [
        ("/push_data/pushed_at", json!(u64::MAX)),
        ("/push_data/pushed_at", json!(-1)),
        ("/push_data/pushed_at", json!("1417566161")),
        ("/push_data/images", Value::Null),
        ("/push_data/images", json!([1, 2])),
        ("/repository/comment_count", json!(-3)),
        ("/repository/comment_count", json!([])),
        ("/repository/star_count", json!(1.5)),
        ("/repository/description", Value::Null),
    ] {
        let mut changed = seed.clone();
        *changed.pointer_mut(pointer).unwrap() = value;
        odd.push(changed.to_string());
    }
    for text in &odd {
        // Ok or Err, never a panic; whatever parses also serialises.
        if let Ok(payload) = serde_json::from_str::<Payload>(text) {
            serde_json::to_vec(&payload).expect("a parsed payload serialises");
        }
    }
    // A huge integer time is kept as a float rather than refused.
    let mut huge = seed.clone();
    huge["push_data"]["pushed_at"] = json!(u64::MAX);
    let payload: Payload = serde_json::from_value(huge).unwrap();
    assert!(matches!(payload.push_data.pushed_at, Seconds::Float(_)));
}
