//! A Docker Hub API client nobody here wrote, against a running hubmock: PyPI's
//! `dockerhub-status` (pure Python, no dependencies). It logs in with `POST /v2/auth/token`,
//! lists a namespace through `/v2/namespaces/{ns}/repositories` and each repository's tags
//! through `.../tags`, following the absolute `next` links (and refusing one that leaves the
//! first URL's origin). `.ci/run` installs it in `target/hub-clients`; where it is missing the
//! test says so and passes.

use std::path::PathBuf;
use std::process::{Command, Output};

use hubmock::{Config, PlatformImage};
use serde_json::{json, Value};

use super::{create, record, repo};
use crate::util::{TestHub, WAIT};

/// The Python that has `dockerhub_status`.
fn client_python() -> Result<PathBuf, String> {
    crate::util::venv_python(
        "HUBMOCK_HUB_CLIENT_PYTHON",
        "hub-clients",
        "dockerhub_status",
        "dockerhub-status",
    )
}

/// Runs `dockerhub-status` against `hub` with these arguments. Its API base is a module
/// constant (`https://hub.docker.com/v2`), so it is set the way a user pointing it at hubmock
/// would: before `run`.
async fn dockerhub_status(python: PathBuf, hub: &TestHub, args: &[&str]) -> Output {
    const SCRIPT: &str = "import sys, dockerhub_status as d\n\
                          d.DOCKER_HUB_API = sys.argv[1] + '/v2'\n\
                          sys.exit(d.run(d.build_parser().parse_args(sys.argv[2:])))";
    let mut command = Command::new(python);
    command.args(["-c", SCRIPT, &hub.hub.uri()]).args(args);
    let shown = format!("{command:?}");
    let output = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || command.output()))
        .await
        .unwrap_or_else(|_| panic!("{shown} did not finish within {WAIT:?}"))
        .expect("the client's thread")
        .unwrap_or_else(|err| panic!("{shown} did not start: {err}"));
    eprintln!(
        "{shown}\n-> {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The client's JSON report.
fn report(output: &Output) -> Value {
    assert!(output.status.success(), "the client failed: {output:?}");
    serde_json::from_slice(&output.stdout).expect("the client's --format json report")
}

/// The images and tag names of a report.
fn inventory(report: &Value) -> Vec<(String, usize)> {
    report["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .map(|r| {
            let image = r["image"].as_str().unwrap().to_owned();
            (image, r["versions"].as_array().map_or(0, Vec::len))
        })
        .collect()
}

#[tokio::test]
async fn dockerhub_status_from_pypi_reads_what_was_pushed() {
    let python = match client_python() {
        Ok(python) => python,
        Err(reason) => return crate::util::missing_program(&reason),
    };
    let hub = TestHub::with(Config::default().with_user("acme", "dckr_pat_hubread")).await;
    create(&hub, "acme", "app", json!({"description": "The app"})).await;
    create(&hub, "acme", "worker", json!({})).await;
    create(&hub, "acme", "secret", json!({"is_private": true})).await;
    // Over 100 tags: the client asks for pages of 100 and must follow `next`.
    for i in 0..105 {
        let pushed = record(
            &format!("v{i}"),
            &format!("{i:x}"),
            1_700_000_000.0 + f64::from(i),
            10,
        );
        hub.hub.record_tag(&repo("acme/app"), pushed).unwrap();
    }
    let mut multi = record("multi", "ff", 1_800_000_000.0, 30);
    multi.images.push(PlatformImage {
        architecture: "arm64".to_owned(),
        os: "linux".to_owned(),
        variant: Some("v8".to_owned()),
        digest: format!("sha256:{:0>64}", "fe"),
        size: 20,
    });
    hub.hub
        .record_tag(&repo("acme/app"), multi.clone())
        .unwrap();
    hub.push("acme/secret", "v1").await;

    // Anonymous: the public repositories and their tags, newest first.
    let anonymous = report(
        &dockerhub_status(
            python.clone(),
            &hub,
            &["--organization", "acme", "--format", "json"],
        )
        .await,
    );
    assert_eq!(
        inventory(&anonymous),
        [("acme/app".to_owned(), 106), ("acme/worker".to_owned(), 0)]
    );
    let app = &anonymous["repositories"][0];
    assert_eq!(app["description"], "The app");
    assert_eq!(app["status"], "active");
    let newest = &app["versions"][0];
    assert_eq!(newest["name"], "multi");
    assert_eq!(newest["digest"], multi.digest);
    assert_eq!(newest["size"], 30);
    let platforms: Vec<(&str, &str, Option<&str>)> = newest["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
                p["variant"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [("linux", "amd64", None), ("linux", "arm64", Some("v8"))]
    );

    // With the owner's personal access token: the private repository too.
    let owner = report(
        &dockerhub_status(
            python.clone(),
            &hub,
            &[
                "--organization",
                "acme",
                "--token",
                "dckr_pat_hubread",
                "--format",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(
        inventory(&owner),
        [
            ("acme/app".to_owned(), 106),
            ("acme/secret".to_owned(), 1),
            ("acme/worker".to_owned(), 0)
        ]
    );

    // A wrong token: the client reports hubmock's 401.
    let refused = dockerhub_status(
        python,
        &hub,
        &["--organization", "acme", "--token", "wrong"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("Incorrect authentication credentials"),
        "{stderr}"
    );
}
