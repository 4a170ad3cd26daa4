//! Every file in `scenarios/` runs through the library runner and passes; a wrong expectation
//! and a malformed file are reported with file, line and step.

use std::path::PathBuf;

use hubmock::scenario::{self, report};

fn bundled() -> Vec<scenario::Loaded> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let files = scenario::collect(&[dir]).expect("scenarios/ is readable");
    assert!(!files.is_empty(), "scenarios/ holds no scenario");
    files
        .iter()
        .map(|f| scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bundled_scenario_passes() {
    let outcomes = report::run_all(bundled(), 8, |_| {}).await;
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(report::line)
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_wrong_expectation_fails_naming_file_line_and_step() {
    let text = "\
name: wrong on purpose
repository: acme/app
pipelines:
  - { name: p, webhooks: [a] }
receivers:
  a: { callback: { state: failure } }
steps:
  - push: { tag: v1 }
  - expect_run: { pipeline: p, status: success, steps: [success] }
";
    let loaded = scenario::Loaded {
        file: "wrong.yaml".to_owned(),
        scenario: scenario::parse(text, "wrong.yaml").unwrap(),
        client_tls: Default::default(),
    };
    let outcome = scenario::run(&loaded).await;
    let failure = outcome.failure.expect("the scenario must fail");
    assert_eq!(failure.step, Some(2));
    assert_eq!(failure.line, Some(9));
    assert_eq!(failure.kind, "expect_run");
    let shown = failure.to_string();
    assert!(
        shown.starts_with("wrong.yaml:9: step 2 (expect_run): "),
        "{shown}"
    );
    assert!(
        shown.contains("status: expected success, got \"failure\""),
        "{shown}"
    );
    assert!(
        shown.contains("steps: expected [success], got [failure]"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_payload_mismatch_shows_a_diff_by_path() {
    let text = "\
name: wrong payload
repository: acme/app
pipelines:
  - { name: p, webhooks: [a] }
receivers:
  a: { callback: { state: success } }
steps:
  - push: { tag: v1 }
  - expect_delivery:
      receiver: a
      payload: { push_data: { tag: v2 } }
      types: { push_data.pushed_at: integer }
";
    let loaded = scenario::Loaded {
        file: "diff.yaml".to_owned(),
        scenario: scenario::parse(text, "diff.yaml").unwrap(),
        client_tls: Default::default(),
    };
    let failure = scenario::run(&loaded).await.failure.expect("must fail");
    let shown = failure.to_string();
    assert!(
        shown.starts_with("diff.yaml:9: step 2 (expect_delivery): "),
        "{shown}"
    );
    assert!(
        shown.contains("push_data.tag: expected \"v2\", got \"v1\""),
        "{shown}"
    );
    assert!(
        shown.contains("push_data.pushed_at: expected integer, got float"),
        "{shown}"
    );
}

#[test]
fn a_malformed_file_is_reported_with_line_and_column() {
    let text = "name: broken\nrepository: acme/app\nsteps:\n  - push: { tag: [v1 }\n";
    let err = scenario::parse(text, "broken.yaml").unwrap_err();
    assert_eq!(err.file, "broken.yaml");
    assert_eq!(err.line, Some(4));
    assert!(err.column.is_some());
    assert!(err.to_string().starts_with("broken.yaml:4:"), "{err}");
}

#[test]
fn an_unknown_key_suggests_the_nearest_valid_one() {
    let text = "name: typo\nrepository: acme/app\nsteps:\n  - push: { tga: v1 }\n";
    let err = scenario::parse(text, "typo.yaml").unwrap_err();
    assert_eq!(err.line, Some(4));
    assert!(err.message.contains("did you mean `tag`?"), "{err}");
}

#[tokio::test]
async fn a_digest_placeholder_is_compared_with_what_push_image_pushed() {
    let text = "\
name: the wrong tag's digest on purpose
repository: acme/app
pipelines:
  - { name: p, webhooks: [a], expect_final_callback: false }
receivers:
  a: {}
steps:
  - push_image: { tag: v1 }
  - push_image: { tag: v2, platforms: [linux/amd64, linux/arm64] }
  - expect_delivery: { receiver: a, payload: { push_data: { tag: v1, images: [\"${digest:v1}\"] } } }
  - expect_delivery: { receiver: a, payload: { push_data: { tag: v2, images: [\"${digest:v1}\"] } } }
";
    let loaded = scenario::Loaded {
        file: "digest.yaml".to_owned(),
        scenario: scenario::parse(text, "digest.yaml").unwrap(),
        client_tls: Default::default(),
    };
    let failure = scenario::run(&loaded)
        .await
        .failure
        .expect("the second delivery carries v2's digest");
    assert_eq!(
        (failure.step, failure.line),
        (Some(4), Some(11)),
        "{failure}"
    );
    let shown = failure.to_string();
    let expected = shown
        .split("push_data.images[0]: expected \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(expected.starts_with("sha256:"), "{shown}");
    // v1's digest was expected; v2's index digest came, and the payload shows it.
    assert!(shown.contains("\", got \"sha256:"), "{shown}");
    assert!(shown.contains("\"tag\":\"v2\""), "{shown}");
    assert!(
        !shown.contains(&format!("\"images\":[\"{expected}\"]")),
        "{shown}"
    );
}
