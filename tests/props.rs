//! Property tests: field limits counted in Unicode scalar values (SPEC R8, section 2), bad input
//! that leaves the state as it was (section 7), payloads that survive a round trip in every
//! format (section 4).
//!
//! Case counts: 64 per property that only computes, 16 per property that goes through HTTP.
//! `PROPTEST_CASES=N` sets every one of them to `N`, for a longer run:
//! `PROPTEST_CASES=2000 cargo test --test integration props`.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::{json, Value};

use hubmock::fuzz_receiver::strategy::{self, fuzz_char};
use hubmock::model::callback::{CallbackRefusal, MAX_CONTEXT, MAX_DESCRIPTION};
use hubmock::model::pipeline::{MAX_HOOK_URL, MAX_NAME};
use hubmock::{Callback, Payload, PayloadFormat, PipelineSpec, RepoName};

use crate::util::{answering, step_statuses, TestHub};

/// Cases of a property that only computes.
const PURE_CASES: u32 = 64;
/// Cases of a property that sends HTTP requests to a hub.
const HTTP_CASES: u32 = 16;

/// `default` cases, or what `PROPTEST_CASES` says. proptest reads that variable only into
/// `ProptestConfig::default()`; a config that names its own `cases` ignores it, so this helper
/// gives it back its say.
fn config(default: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        base.cases
    } else {
        default
    };
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/props.txt",
        ))),
        ..base
    }
}

/// Runs a property outside the `proptest!` macro (for properties that share one hub), and
/// panics with the minimal failing input.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(config(cases));
    if let Err(err) = runner.run(&strategy, test) {
        panic!("{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Strings of an exact length in characters, whatever their bytes.

/// One character of a class whose UTF-8 is wider than its count: two, three or four bytes,
/// combining marks, right-to-left letters.
fn wide_char() -> BoxedStrategy<char> {
    prop_oneof![
        proptest::char::range('\u{80}', '\u{7FF}'),
        proptest::char::range('\u{800}', '\u{D7FF}'),
        proptest::char::range('\u{10000}', '\u{10FFFF}'),
        proptest::char::range('\u{300}', '\u{36F}'),
        proptest::char::range('\u{590}', '\u{6FF}'),
        Just('😀'),
    ]
    .boxed()
}

/// Exactly `n` characters: all one wide character (255 × `é`, the SPEC's example), or a mix of
/// every class the fuzzer knows (ASCII, controls, combining, astral...).
fn chars(n: usize) -> BoxedStrategy<String> {
    prop_oneof![
        wide_char().prop_map(move |c| String::from_iter(std::iter::repeat_n(c, n))),
        proptest::collection::vec(fuzz_char(), n).prop_map(String::from_iter),
    ]
    .boxed()
}

/// A text of exactly `max` characters, one more character, and a length up to `max`.
fn at_the_limit(max: usize) -> impl Strategy<Value = (String, char, usize)> {
    (chars(max), prop_oneof![wide_char(), fuzz_char()], 0..=max)
}

/// The first `n` characters of `text`.
fn first(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

fn too_long(max: usize) -> Value {
    json!([format!(
        "Ensure this field has no more than {max} characters."
    )])
}

// ---------------------------------------------------------------------------------------------
// Callback field limits (R8).

proptest! {
    #![proptest_config(config(PURE_CASES))]

    #[test]
    fn a_callback_description_of_at_most_255_characters_is_accepted_and_256_are_not(
        (text, extra, cut) in at_the_limit(MAX_DESCRIPTION)
    ) {
        for ok in [first(&text, cut), text.clone()] {
            let callback = Callback::validate(
                json!({"state": "success", "description": ok}).to_string().as_bytes(),
            );
            prop_assert_eq!(callback.map(|c| c.description), Ok(Some(ok)));
        }
        let long = format!("{text}{extra}");
        let errors = Callback::validate(
            json!({"state": "success", "description": long}).to_string().as_bytes(),
        )
        .unwrap_err()
        .to_json();
        prop_assert_eq!(errors, json!({"description": too_long(MAX_DESCRIPTION)}));
    }

    #[test]
    fn a_callback_context_of_at_most_100_characters_is_accepted_and_101_are_not(
        (text, extra, cut) in at_the_limit(MAX_CONTEXT)
    ) {
        for ok in [first(&text, cut), text.clone()] {
            let callback = Callback::validate(
                json!({"state": "failure", "context": ok}).to_string().as_bytes(),
            );
            prop_assert_eq!(callback.map(|c| c.context), Ok(Some(ok)));
        }
        let long = format!("{text}{extra}");
        let errors = Callback::validate(
            json!({"state": "failure", "context": long}).to_string().as_bytes(),
        )
        .unwrap_err()
        .to_json();
        prop_assert_eq!(errors, json!({"context": too_long(MAX_CONTEXT)}));
    }

    #[test]
    fn every_offending_callback_field_is_named_and_no_other(
        description in prop_oneof![Just(None), (0..=300_usize).prop_flat_map(chars).prop_map(Some)],
        context in prop_oneof![Just(None), (0..=130_usize).prop_flat_map(chars).prop_map(Some)],
        state in select(&["success", "failure", "error", "done", "SUCCESS", ""][..]),
    ) {
        let mut body = json!({"state": state});
        if let Some(text) = &description {
            body["description"] = json!(text);
        }
        if let Some(text) = &context {
            body["context"] = json!(text);
        }
        let long = |text: &Option<String>, max: usize| {
            text.as_ref().is_some_and(|t| t.chars().count() > max)
        };
        let bad_state = !["success", "failure", "error"].contains(&state);
        let expected = [
            ("state", bad_state),
            ("description", long(&description, MAX_DESCRIPTION)),
            ("context", long(&context, MAX_CONTEXT)),
        ];
        match Callback::validate(body.to_string().as_bytes()) {
            Ok(_) => prop_assert!(expected.iter().all(|(_, bad)| !bad), "accepted {}", body),
            Err(errors) => {
                for (field, bad) in expected {
                    let named = matches!(&errors, CallbackRefusal::Invalid(e) if e.has(field));
                    prop_assert_eq!(named, bad, "{}: {}", field, errors.to_json());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pipeline limits (section 2): hook_url at most 255 characters, names 1 to 100.

fn pipeline_body(name: &str, hook_url: &str) -> Value {
    json!({"name": name, "expect_final_callback": true,
           "webhooks": [{"name": "hook", "hook_url": hook_url}],
           "registry": "registry-1.docker.io"})
}

/// Characters a URL path may carry unescaped.
fn url_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range('a', 'z'),
        proptest::char::range('0', '9'),
        select(&['-', '.', '_', '~', '/', '%', '=', '&', '?'][..]),
    ]
}

proptest! {
    #![proptest_config(config(PURE_CASES))]

    #[test]
    fn a_hook_url_of_at_most_255_characters_is_accepted_and_256_are_not(
        path in proptest::collection::vec(url_char(), MAX_HOOK_URL - 11),
        extra in url_char(),
        cut in 0..=(MAX_HOOK_URL - 11),
    ) {
        let path = String::from_iter(path);
        for url in [format!("http://e.x/{}", first(&path, cut)), format!("http://e.x/{path}")] {
            prop_assert!(url.chars().count() <= MAX_HOOK_URL);
            let spec = PipelineSpec::from_json(&pipeline_body("ci", &url), true);
            prop_assert!(spec.is_ok(), "{} refused: {:?}", url, spec);
        }
        let url = format!("http://e.x/{path}{extra}");
        let errors = PipelineSpec::from_json(&pipeline_body("ci", &url), true)
            .unwrap_err()
            .to_json();
        prop_assert_eq!(errors, json!({"webhooks": [{"hook_url": too_long(MAX_HOOK_URL)}]}));
    }

    #[test]
    fn a_hook_url_is_measured_in_characters_not_bytes(
        n in 0..=(MAX_HOOK_URL + 20),
        text in (0..=(MAX_HOOK_URL + 20)).prop_flat_map(chars),
    ) {
        // Whatever its characters, only a URL over 255 of them gets the length error; a shorter
        // one with wide characters is merely "Invalid value." (http::Uri wants ASCII).
        let url = format!("http://e.x/{}", first(&text, n));
        let result = PipelineSpec::from_json(&pipeline_body("ci", &url), true);
        let length_error = result
            .as_ref()
            .err()
            .map(|errors| errors.to_json())
            == Some(json!({"webhooks": [{"hook_url": too_long(MAX_HOOK_URL)}]}));
        prop_assert_eq!(length_error, url.chars().count() > MAX_HOOK_URL, "{:?}", result);
    }

    #[test]
    fn a_pipeline_name_of_1_to_100_characters_is_accepted_and_101_are_not(
        (text, extra, cut) in at_the_limit(MAX_NAME - 1)
    ) {
        // A leading letter keeps the name from being blank or slug-less; the rest is anything.
        for name in [format!("a{}", first(&text, cut)), format!("a{text}")] {
            let spec = PipelineSpec::from_json(&pipeline_body(&name, "http://e.x/"), true);
            prop_assert_eq!(spec.map(|s| s.name), Ok(Some(name)));
        }
        let name = format!("a{text}{extra}");
        let errors = PipelineSpec::from_json(&pipeline_body(&name, "http://e.x/"), true)
            .unwrap_err()
            .to_json();
        prop_assert_eq!(errors, json!({"name": too_long(MAX_NAME)}));
    }
}

// ---------------------------------------------------------------------------------------------
// Repository names (section 2).

/// Mostly characters a name may have, sometimes one it may not.
fn name_text() -> impl Strategy<Value = String> {
    let valid = select(&['a', 'z', '0', '9', '_', '-', '.'][..]);
    let invalid = select(&['A', 'Z', 'é', ' ', '/', ':', '😀', '\0', '+'][..]);
    let ch = prop_oneof![12 => valid, 1 => invalid];
    prop_oneof![
        proptest::collection::vec(ch.clone(), 0..=4),
        proptest::collection::vec(ch.clone(), 28..=32),
        proptest::collection::vec(ch, 253..=257),
    ]
    .prop_map(String::from_iter)
}

/// The SPEC's rules, written independently of the code under test.
fn namespace_ok(ns: &str) -> bool {
    (2..=30).contains(&ns.chars().count())
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn name_ok(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=255).contains(&name.chars().count())
        && name.chars().next().is_some_and(allowed)
        && name.chars().all(|c| allowed(c) || "._-".contains(c))
}

proptest! {
    #![proptest_config(config(PURE_CASES))]

    #[test]
    fn repository_names_follow_the_spec_rules_and_errors_name_the_broken_part(
        ns in name_text(),
        name in name_text(),
    ) {
        match RepoName::new(&ns, &name) {
            Ok(repo) => {
                prop_assert!(namespace_ok(&ns) && name_ok(&name), "accepted {ns:?}/{name:?}");
                prop_assert_eq!(RepoName::parse(&repo.to_string()), Ok(repo));
            }
            Err(errors) => {
                prop_assert_eq!(errors.has("namespace"), !namespace_ok(&ns), "{}", errors.to_json());
                prop_assert_eq!(errors.has("name"), !name_ok(&name), "{}", errors.to_json());
            }
        }
    }

    #[test]
    fn the_fuzzers_repository_names_are_all_valid(repo in strategy::repo_name()) {
        prop_assert_eq!(RepoName::new(&repo.namespace, &repo.name), Ok(repo));
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads (section 4).

const BASE: &str = "http://127.0.0.1:5555";

fn round_trip(payload: &Payload) -> Result<(), TestCaseError> {
    let bytes = serde_json::to_vec(payload).unwrap();
    prop_assert_eq!(&bytes, &payload.to_bytes());
    let back: Payload = serde_json::from_slice(&bytes).unwrap();
    prop_assert_eq!(&back, payload);
    let pretty: Payload =
        serde_json::from_str(&serde_json::to_string_pretty(payload).unwrap()).unwrap();
    prop_assert_eq!(&pretty, payload);
    Ok(())
}

/// The shape SPEC section 4's table gives each format.
fn has_the_shape_of(format: PayloadFormat, payload: &Payload) -> Result<(), TestCaseError> {
    let json: Value = serde_json::from_slice(&payload.to_bytes()).unwrap();
    let push = &json["push_data"];
    let repository = &json["repository"];
    let float = |v: &Value| v.is_f64();
    let integer = |v: &Value| v.is_i64() || v.is_u64();
    match format {
        PayloadFormat::Legacy => {
            prop_assert!(float(&push["pushed_at"]) && float(&repository["date_created"]));
            prop_assert!(push["images"].is_array());
            prop_assert!(repository["comment_count"].is_string());
            prop_assert!(repository["dockerfile"].is_string());
        }
        PayloadFormat::Current => {
            prop_assert!(integer(&push["pushed_at"]) && integer(&repository["date_created"]));
            prop_assert!(push.get("images").is_none());
            prop_assert!(repository["comment_count"].is_u64());
            prop_assert!(repository["dockerfile"].is_string());
        }
        PayloadFormat::Observed => {
            prop_assert!(integer(&push["pushed_at"]) && integer(&repository["date_created"]));
            prop_assert_eq!(&push["images"], &json!([]));
            prop_assert!(repository.get("comment_count").is_none());
            prop_assert!(repository.get("dockerfile").is_none());
        }
    }
    let repo_name = if payload.repository.namespace == "library" {
        payload.repository.name.clone()
    } else {
        format!(
            "{}/{}",
            payload.repository.namespace, payload.repository.name
        )
    };
    prop_assert_eq!(&payload.repository.repo_name, &repo_name);
    prop_assert!(payload.callback_url.starts_with(BASE));
    Ok(())
}

proptest! {
    #![proptest_config(config(PURE_CASES))]

    #[test]
    fn legacy_payloads_survive_a_round_trip(p in strategy::payload(PayloadFormat::Legacy, BASE.to_owned())) {
        round_trip(&p)?;
        has_the_shape_of(PayloadFormat::Legacy, &p)?;
    }

    #[test]
    fn current_payloads_survive_a_round_trip(p in strategy::payload(PayloadFormat::Current, BASE.to_owned())) {
        round_trip(&p)?;
        has_the_shape_of(PayloadFormat::Current, &p)?;
    }

    #[test]
    fn observed_payloads_survive_a_round_trip(p in strategy::payload(PayloadFormat::Observed, BASE.to_owned())) {
        round_trip(&p)?;
        has_the_shape_of(PayloadFormat::Observed, &p)?;
    }

    #[test]
    fn the_seed_examples_parse_with_any_text_in_their_string_fields(
        seed in select(&[SEED_LEGACY, DOCS_CURRENT, OBSERVED][..]),
        texts in proptest::collection::vec(strategy::text(strategy::DESCRIPTION_LENGTHS), 6),
    ) {
        let mut json: Value = serde_json::from_str(seed).unwrap();
        let fields = ["/push_data/tag", "/push_data/pusher", "/repository/description",
                      "/repository/full_description", "/repository/owner", "/callback_url"];
        for (field, text) in fields.iter().zip(texts) {
            *json.pointer_mut(field).unwrap() = json!(text);
        }
        let payload: Payload = serde_json::from_value(json.clone()).unwrap();
        round_trip(&payload)?;
        prop_assert_eq!(serde_json::to_value(&payload).unwrap(), json);
    }

    #[test]
    fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<Payload>(&bytes);
    }
}

/// The seed document's example (one invalid escape fixed; see tests/payload.rs).
const SEED_LEGACY: &str = include_str!("data/seed_legacy.json");
/// docs.docker.com's example today.
const DOCS_CURRENT: &str = include_str!("data/current.json");
/// A delivery as the real Hub sent them 2017–2022.
const OBSERVED: &str = include_str!("data/observed.json");

#[test]
fn the_seed_examples_parse_and_write_back_the_same_json() {
    for seed in [SEED_LEGACY, DOCS_CURRENT, OBSERVED] {
        let payload: Payload = serde_json::from_str(seed).unwrap();
        let original: Value = serde_json::from_str(seed).unwrap();
        assert_eq!(serde_json::to_value(&payload).unwrap(), original, "{seed}");
    }
}

// ---------------------------------------------------------------------------------------------
// Every rejection leaves the state as it was (section 7), through a real hub.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A callback body with at least one thing wrong.
fn bad_callback() -> impl Strategy<Value = Value> {
    let description = (MAX_DESCRIPTION + 1..=MAX_DESCRIPTION + 40).prop_flat_map(chars);
    let context = (MAX_CONTEXT + 1..=MAX_CONTEXT + 40).prop_flat_map(chars);
    prop_oneof![
        description.prop_map(|d| json!({"state": "success", "description": d})),
        context.prop_map(|c| json!({"state": "error", "context": c})),
        chars(8).prop_map(|s| json!({"state": s})),
        chars(8).prop_map(|url| json!({"state": "success", "target_url": url})),
        any::<i64>().prop_map(|n| json!({"state": "success", "description": n})),
        Just(json!({"description": "no state"})),
        Just(json!(["success"])),
    ]
}

#[test]
fn a_rejected_callback_leaves_the_state_as_it_was() {
    let rt = runtime();
    let (hub, _receiver, run) = rt.block_on(async {
        let hub = TestHub::start().await;
        let r = answering(200).await;
        let run = hub.first_run("ci", &[r.uri()], true).await;
        let run = hub.delivered(&run, 0).await;
        assert_eq!(step_statuses(&run), ["awaiting_callback"], "{run:#}");
        (hub, r, run)
    });
    check(HTTP_CASES, bad_callback(), |body| {
        rt.block_on(async {
            let before = hub.state().await;
            let answer = hub.callback(&run, 0, body.clone()).await;
            let errors = answer.expect(400);
            prop_assert!(errors.is_object(), "{:?}", answer);
            prop_assert_eq!(hub.state().await, before, "{} changed the state", body);
            Ok(())
        })
    });
    // The step still awaits its callback: a corrected one is accepted.
    rt.block_on(async {
        hub.callback(&run, 0, json!({"state": "success"}))
            .await
            .expect(200);
        assert_eq!(step_statuses(&hub.finished(&run).await), ["success"]);
    });
}

/// A pipeline creation body with at least one thing wrong.
fn bad_pipeline() -> impl Strategy<Value = Value> {
    let long_name = (MAX_NAME + 1..=MAX_NAME + 30)
        .prop_flat_map(chars)
        .prop_map(|n| format!("a{n}"));
    let long_url = (MAX_HOOK_URL - 10..=MAX_HOOK_URL + 20)
        .prop_map(|n| format!("http://e.x/{}", "a".repeat(n)));
    let odd_url = chars(12).prop_map(|s| format!(" http://e.x/{s}"));
    prop_oneof![
        long_name.prop_map(|name| pipeline_body(&name, "http://e.x/")),
        long_url.prop_map(|url| pipeline_body("ci", &url)),
        odd_url.prop_map(|url| pipeline_body("ci", &url)),
        Just(pipeline_body("", "http://e.x/")),
        Just(pipeline_body("   ", "http://e.x/")),
        Just(json!({"name": "ci", "webhooks": []})),
        Just(json!({"name": "ci"})),
    ]
    .prop_filter("an invalid body", |body| {
        PipelineSpec::from_json(body, true).is_err()
    })
}

#[test]
fn a_rejected_pipeline_or_repository_leaves_the_state_as_it_was() {
    let rt = runtime();
    let hub = rt.block_on(async {
        let hub = TestHub::start().await;
        hub.repository("acme", "app").await;
        hub
    });
    check(HTTP_CASES, bad_pipeline(), |body| {
        rt.block_on(async {
            let before = hub.state().await;
            let answer = hub
                .http
                .post("/v2/repositories/acme/app/webhook_pipeline/", body.clone())
                .await;
            answer.expect(400);
            prop_assert_eq!(hub.state().await, before, "{} changed the state", body);
            Ok(())
        })
    });
    let bad_repository = (name_text(), name_text()).prop_filter("an invalid name", |(ns, name)| {
        !(namespace_ok(ns) && name_ok(name))
    });
    check(HTTP_CASES, bad_repository, |(ns, name)| {
        rt.block_on(async {
            let before = hub.state().await;
            let answer = hub
                .http
                .post(
                    "/_hubmock/repositories",
                    json!({"namespace": ns, "name": name}),
                )
                .await;
            answer.expect(400);
            prop_assert_eq!(
                hub.state().await,
                before,
                "{}/{} changed the state",
                ns,
                name
            );
            Ok(())
        })
    });
}
