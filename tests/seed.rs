//! Seed files: `serve --config`, `check --config`, and applying one to a running hub.

use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::cli::hubmock;
use crate::serve::Serve;
use crate::util::{receiver, Http};
use hubmock::{Config, Hub, RepoName, SeedFile};

/// A seed file in a folder of its own, removed with it.
fn seed_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.yaml");
    std::fs::write(&path, text).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

/// The README's example, with its hooks pointing at `ci` and `deploy`.
fn example(ci: &str, deploy: &str) -> String {
    format!(
        "\
users: [{{username: alice, password: s3cret}}]
repositories:
  - {{namespace: alice, name: app, description: \"The app\", is_private: false}}
  - namespace: alice
    name: secret
    is_private: true
    full_description: \"# Secret\"
    star_count: 7
pipelines:
  - repository: alice/app
    name: ci then deploy
    expect_final_callback: true
    payload_format: current
    quirks: no-tag
    webhooks: [{{name: ci, hook_url: \"{ci}\"}}, {{name: deploy, hook_url: \"{deploy}\"}}]
"
    )
}

async fn login(http: &Http, user: &str, password: &str) -> Http {
    let answer = http
        .post(
            "/v2/users/login/",
            json!({"username": user, "password": password}),
        )
        .await
        .expect(200);
    http.with_token(answer["token"].as_str().expect("a token"))
}

#[tokio::test]
async fn serve_starts_with_the_files_users_repositories_and_pipelines() {
    let ci = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&ci)
        .await;
    let (ci_url, deploy_url) = (format!("{}/hook", ci.uri()), "http://127.0.0.1:9/hook");
    let (_dir, path) = seed_file(&example(&ci_url, deploy_url));
    let serve = Serve::start(&["--config", &path, "--user", "bob:pw"]);
    let summary = serve.wait_for_line("the seed file's summary", |l| {
        l.contains("seed file applied")
    });
    assert!(
        summary.contains(
            "1 user(s); repositories: 2 created, 0 left alone; pipelines: 1 created, 0 left alone"
        ),
        "{summary}"
    );
    let anonymous = Http::new(&serve.url);
    // The file's users join the --user ones; the default user is gone.
    let alice = login(&anonymous, "alice", "s3cret").await;
    login(&anonymous, "bob", "pw").await;
    anonymous
        .post(
            "/v2/users/login/",
            json!({"username": "hubmock", "password": "hubmock"}),
        )
        .await
        .expect(401);
    // Repositories with their fields, through the Hub API.
    let app = anonymous
        .get("/v2/repositories/alice/app/")
        .await
        .expect(200);
    assert_eq!(app["description"], "The app");
    assert_eq!(app["is_private"], false);
    anonymous
        .get("/v2/repositories/alice/secret/")
        .await
        .expect(404);
    let secret = alice
        .get("/v2/repositories/alice/secret/")
        .await
        .expect(200);
    assert_eq!(secret["is_private"], true);
    assert_eq!(secret["full_description"], "# Secret");
    assert_eq!(secret["star_count"], 7);
    // The pipeline, through the webhook API, created by its namespace's user.
    let pipelines = alice
        .get("/v2/repositories/alice/app/webhook_pipeline/")
        .await
        .expect(200);
    assert_eq!(pipelines["count"], 1, "{pipelines:#}");
    let pipeline = &pipelines["results"][0];
    assert_eq!(pipeline["name"], "ci then deploy");
    assert_eq!(pipeline["slug"], "ci-then-deploy");
    assert_eq!(pipeline["creator"], "alice");
    assert_eq!(pipeline["expect_final_callback"], true);
    assert_eq!(pipeline["payload_format"], "current");
    assert_eq!(pipeline["quirks"], "no-tag");
    let hooks: Vec<(&Value, &Value)> = pipeline["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (&w["name"], &w["hook_url"]))
        .collect();
    assert_eq!(
        hooks,
        [
            (&json!("ci"), &json!(ci_url)),
            (&json!("deploy"), &json!(deploy_url))
        ]
    );
    // And it works: a push reaches the first hook.
    let runs = alice
        .post(
            "/_hubmock/repositories/alice/app/push",
            json!({"tag": "v1"}),
        )
        .await
        .expect(202);
    let run = runs["runs"][0]["id"].as_u64().unwrap();
    alice
        .get(&format!(
            "/_hubmock/runs/{run}?wait=delivered&step=0&timeout_ms=20000"
        ))
        .await
        .expect(200);
    ci.verify().await;
    serve.stopped();
}

#[test]
fn serve_with_an_invalid_file_exits_2_naming_the_file_line_and_column() {
    let (_dir, path) = seed_file(
        "users: [{username: alice, password: a}]\nrepositories:\n  - {namespace: alice, nmae: app}\n",
    );
    let output = hubmock(&["serve", "--port", "0", "--config", &path]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "nothing listened");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{path}:3:24: unknown field `nmae`, expected one of namespace, name,"
        )) && stderr.contains("did you mean `name`?"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_file_user_that_a_user_flag_gives_another_password() {
    let (_dir, path) = seed_file("users:\n  - {username: alice, password: a}\n");
    let output = hubmock(&[
        "serve", "--port", "0", "--config", &path, "--user", "alice:b",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{path}:2:16: user `alice` is also given")),
        "{stderr}"
    );
    // The same password twice is one user.
    let output = hubmock(&["check", "--config", &path, "--user", "alice:a"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn check_config_exits_0_for_a_valid_file_and_2_for_an_invalid_one() {
    let (_dir, valid) = seed_file(&example("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"));
    let output = hubmock(&["check", "--config", &valid]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("seed file '{valid}' valid: users 1, repositories 2, pipelines 1")
    );
    let (_dir2, invalid) = seed_file(
        "repositories: [{namespace: bob, name: app}]\n\
         pipelines:\n  - {repository: bob/app, name: p, webhooks: [{name: a, hook_url: \"http://x/\"}]}\n",
    );
    let output = hubmock(&["check", "--config", &invalid]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{invalid}:3:5: pipeline `p` of bob/app: namespace `bob` has no user"
        )),
        "{stderr}"
    );
    // The user `serve` would be given makes it valid.
    let output = hubmock(&["check", "--config", &invalid, "--user", "bob:pw"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // Scenarios and a seed file in one call: both are checked.
    let output = hubmock(&["check", "scenarios/", "--config", &valid]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("scenario file(s) valid"), "{stdout}");
    let output = hubmock(&["check", "scenarios/", "--config", &invalid]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let output = hubmock(&["check", "--config", "no/such/seed.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no/such/seed.yaml: cannot read"));
}

/// `text` is refused at `line:column` with a message that contains `message`.
#[track_caller]
fn refused(text: &str, (line, column): (u32, u32), message: &str) {
    let err = SeedFile::parse(text, "seed.yaml")
        .and_then(|seed| seed.check_with(&Config::default()).map(|()| seed))
        .expect_err(text);
    assert_eq!(
        (err.line, err.column),
        (Some(line), Some(column)),
        "{err}\nfor:\n{text}"
    );
    assert!(err.message.contains(message), "{err}\nfor:\n{text}");
    assert_eq!(err.file, "seed.yaml");
}

const HEAD: &str = "users: [{username: alice, password: a}]\nrepositories: [{namespace: alice, name: app}]\npipelines:\n";

#[test]
fn each_error_names_its_line_and_column_and_what_is_wrong() {
    // Keys: a misspelt one gets the likely intended one, at every level.
    refused("user: []\n", (1, 1), "unknown field `user`, expected one of users, repositories, pipelines; did you mean `users`?");
    refused(
        "users: [{usrname: a, password: b}]\n",
        (1, 10),
        "did you mean `username`?",
    );
    refused(
        "repositories:\n  - {namespace: alice, name: app, descripton: x}\n",
        (2, 35),
        "did you mean `description`?",
    );
    refused(
        &format!("{HEAD}  - {{repository: alice/app, nme: p}}\n"),
        (4, 29),
        "did you mean `name`?",
    );
    refused(
        &format!("{HEAD}  - {{repository: alice/app, name: p, webhooks: [{{name: a, hookurl: \"http://x/\"}}]}}\n"),
        (4, 59),
        "did you mean `hook_url`?",
    );
    // Fields, judged by the API's own validators.
    refused(
        "repositories:\n  - {namespace: alice, name: app, is_private: \"yes\"}\n",
        (2, 47),
        "repository `alice/app`: is_private: Must be a valid boolean.",
    );
    refused(
        &format!(
            "repositories:\n  - namespace: alice\n    name: app\n    description: {}\n",
            "x".repeat(101)
        ),
        (4, 18),
        "description: Ensure this field has no more than 100 characters.",
    );
    refused(
        "repositories:\n  - {namespace: Alice, name: app}\n",
        (2, 17),
        "namespace: namespace \"Alice\" must be 2 to 30 characters",
    );
    refused(
        "repositories:\n  - {namespace: alice}\n",
        (2, 5),
        "repository 1: name: This field is required.",
    );
    refused(
        &format!("{HEAD}  - repository: alice/app\n    name: p\n    webhooks:\n      - {{name: a, hook_url: \"http://127.0.0.1:9/\"}}\n      - {{name: b, hook_url: \"ftp://x/\"}}\n"),
        (8, 29),
        "pipeline `p`: webhooks 2: hook_url: Invalid value. A hook URL is an absolute http:// or https:// URL.",
    );
    refused(
        &format!("{HEAD}  - {{repository: alice/app, name: p, webhooks: []}}\n"),
        (4, 48),
        "webhooks: A pipeline needs at least one webhook.",
    );
    refused(&format!("{HEAD}  - {{repository: alice/app, name: p, payload_format: curent, webhooks: [{{name: a, hook_url: \"http://x/\"}}]}}\n"), (4, 54), "payload_format: unknown payload format 'curent'");
    refused(&format!("{HEAD}  - {{repository: alice/app, webhooks: [{{name: a, hook_url: \"http://x/\"}}]}}\n"), (4, 5), "pipeline 1: name: This field is required.");
    refused(&format!("{HEAD}  - {{repository: alice/app, name: p, quirks: hub-2021, webhooks: [{{name: a, hook_url: \"http://x/\"}}]}}\n"), (4, 46), "quirks: unknown quirk or profile 'hub-2021'");
    // Duplicates.
    refused(
        "users:\n  - {username: alice, password: a}\n  - {username: alice, password: b}\n",
        (3, 16),
        "user `alice` is declared twice (first on line 2)",
    );
    refused(
        "repositories:\n  - {namespace: alice, name: app}\n  - {namespace: alice, name: app}\n",
        (3, 5),
        "repository `alice/app` is declared twice (first on line 2)",
    );
    let hook = "webhooks: [{name: a, hook_url: \"http://x/\"}]";
    refused(
        &format!("{HEAD}  - {{repository: alice/app, name: CI, {hook}}}\n  - {{repository: alice/app, name: ci!, {hook}}}\n"),
        (5, 5),
        "pipeline `ci!` of alice/app is declared twice (first on line 4, as `CI`; names that make the same slug `ci` count as one)",
    );
    // References.
    refused(
        &format!("{HEAD}  - {{repository: alice/ap, name: p, {hook}}}\n"),
        (4, 18),
        "pipeline `p`: repository `alice/ap` is not declared under `repositories` (declared: alice/app); did you mean `alice/app`?",
    );
    refused(
        &format!("{HEAD}  - {{repository: app, name: p, {hook}}}\n"),
        (4, 18),
        "is not of the form namespace/name",
    );
    refused(
        &format!("repositories: [{{namespace: bob, name: app}}]\npipelines:\n  - {{repository: bob/app, name: p, {hook}}}\n"),
        (3, 5),
        "namespace `bob` has no user; declare `bob` under `users`",
    );
    // YAML itself.
    refused(
        "users: [{username: alice, password: a}\n",
        (1, 8),
        "unclosed bracket",
    );
}

#[test]
fn an_empty_file_declares_nothing_and_the_default_user_owns_hubmock() {
    let seed = SeedFile::parse("# nothing yet\n", "seed.yaml").unwrap();
    assert_eq!(seed.users().count(), 0);
    let seed = SeedFile::parse(
        "repositories: [{namespace: hubmock, name: app}]\n\
         pipelines: [{repository: hubmock/app, name: p, webhooks: [{name: a, hook_url: \"http://x/\"}]}]\n",
        "seed.yaml",
    )
    .unwrap();
    seed.check_with(&Config::default()).unwrap();
}

#[tokio::test]
async fn applying_again_creates_only_what_is_missing_and_keeps_changes_made_through_the_api() {
    let seed = SeedFile::parse(
        &example("http://127.0.0.1:9/ci", "http://127.0.0.1:9/deploy"),
        "seed.yaml",
    )
    .unwrap();
    let hub = Hub::builder()
        .config(Config::default().with_auth(false))
        .seed(seed.clone())
        .start()
        .await;
    let http = Http::new(&hub.uri());
    // Change the pipeline through the Hub API ...
    http.patch(
        "/v2/repositories/alice/app/webhook_pipeline/ci-then-deploy/",
        json!({"webhooks": [{"name": "only", "hook_url": "http://127.0.0.1:9/only"}]}),
    )
    .await
    .expect(200);
    // ... and the repository through the control API's state import (no API edits a
    // repository's fields).
    let mut state = http.get("/_hubmock/state").await.expect(200);
    let repositories = state["repositories"].as_array_mut().unwrap();
    let app = repositories
        .iter_mut()
        .find(|r| r["repository"]["name"] == "app")
        .expect("alice/app is in the state");
    app["repository"]["description"] = json!("Changed");
    http.put("/_hubmock/state", state).await.expect(200);
    // A second, identical file shows it changed nothing.
    let applied = hub.apply_seed(&seed).unwrap();
    assert!(applied.created_nothing(), "{applied:?}");
    let app = RepoName::new("alice", "app").unwrap();
    let secret = RepoName::new("alice", "secret").unwrap();
    assert_eq!(applied.repositories_present, [app.clone(), secret]);
    assert_eq!(
        applied.pipelines_present,
        [(app.clone(), "ci then deploy".to_owned())]
    );
    assert_eq!(
        applied.to_string(),
        "seed.yaml: 1 user(s); repositories: 0 created, 2 left alone; pipelines: 0 created, 1 left alone"
    );
    let shown = http.get("/v2/repositories/alice/app/").await.expect(200);
    assert_eq!(shown["description"], "Changed");
    let pipeline = &hub.pipelines(&app).unwrap()[0];
    assert_eq!(pipeline.webhooks.len(), 1);
    assert_eq!(pipeline.webhooks[0].name, "only");
    // What went missing is created again, and only that.
    hub.delete_pipeline(&app, "ci-then-deploy").unwrap();
    let applied = hub.apply_seed(&seed).unwrap();
    assert_eq!(
        applied.pipelines_created,
        [(app.clone(), "ci then deploy".to_owned())]
    );
    assert!(applied.repositories_created.is_empty());
    assert_eq!(hub.pipelines(&app).unwrap()[0].webhooks.len(), 2);
}

#[tokio::test]
async fn a_seed_file_whose_users_the_hub_lacks_is_refused_and_creates_nothing() {
    let hub = Hub::start().await;
    let seed = SeedFile::parse(
        &example("http://127.0.0.1:9/ci", "http://127.0.0.1:9/deploy"),
        "seed.yaml",
    )
    .unwrap();
    let err = hub.apply_seed(&seed).unwrap_err();
    assert_eq!((err.line, err.column), (Some(1), Some(20)), "{err}");
    assert!(
        err.message.contains("users are fixed when it starts"),
        "{err}"
    );
    assert!(
        hub.create_repository("alice", "app").is_ok(),
        "nothing was created"
    );
}

/// With `--data-dir`, a restart with the same seed file finds what it declares present and
/// leaves it alone: an edit made through the API survives, and a pipeline deleted since is
/// created again.
#[tokio::test]
async fn with_a_data_dir_a_restart_keeps_api_changes_and_creates_only_what_is_missing() {
    let (_seed_dir, path) = seed_file(&example(
        "http://127.0.0.1:9/ci",
        "http://127.0.0.1:9/deploy",
    ));
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let args = ["--no-auth", "--config", &path, "--data-dir", data_dir];
    let serve = Serve::start(&args);
    let http = Http::new(&serve.url);
    http.patch(
        "/v2/repositories/alice/app/webhook_pipeline/ci-then-deploy/",
        json!({"webhooks": [{"name": "only", "hook_url": "http://127.0.0.1:9/only"}]}),
    )
    .await
    .expect(200);
    let log = serve.stopped();
    assert!(
        log.iter().any(|l| l.contains("2 created, 0 left alone")),
        "{log:#?}"
    );

    let serve = Serve::start(&args);
    let log = serve.wait_for_line("the seed's summary", |l| l.contains("seed file applied"));
    assert!(
        log.contains("repositories: 0 created, 2 left alone; pipelines: 0 created, 1 left alone"),
        "{log}"
    );
    let http = Http::new(&serve.url);
    let pipeline = http
        .get("/v2/repositories/alice/app/webhook_pipeline/ci-then-deploy/")
        .await
        .expect(200);
    assert_eq!(
        pipeline["webhooks"].as_array().unwrap().len(),
        1,
        "{pipeline}"
    );
    assert_eq!(pipeline["webhooks"][0]["name"], "only");
    http.delete("/v2/repositories/alice/app/webhook_pipeline/ci-then-deploy/")
        .await
        .expect(204);
    drop(serve.stopped());

    let serve = Serve::start(&args);
    let log = serve.wait_for_line("the seed's summary", |l| l.contains("seed file applied"));
    assert!(log.contains("pipelines: 1 created, 0 left alone"), "{log}");
    let http = Http::new(&serve.url);
    let pipeline = http
        .get("/v2/repositories/alice/app/webhook_pipeline/ci-then-deploy/")
        .await
        .expect(200);
    assert_eq!(
        pipeline["webhooks"].as_array().unwrap().len(),
        2,
        "{pipeline}"
    );
}
