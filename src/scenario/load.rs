//! Reading scenario files: YAML to [`Scenario`], then the checks serde cannot make (names that
//! refer to each other, status words), each error pointing at its file, line and column.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::expect::PushedDigests;
use super::format::{PushImageStep, Scenario, Step};
use crate::api_client::{status_word, RUN_STATUSES, STEP_STATUSES};
use crate::model::repository::RepoName;
use crate::model::tag::check_tag;
use crate::registry::push::Platform;
use crate::registry::RegistryName;
use crate::yaml::{self, did_you_mean, FileError};

/// A scenario file that cannot be run, and where (the error every YAML file of hubmock's gives).
pub type ScenarioError = FileError;

/// A parsed, checked scenario and the file it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The file, as given.
    pub file: String,
    /// Its content.
    pub scenario: Scenario,
    /// How its emulator trusts `https://` receivers (external ones): `hubmock run --ca-cert`
    /// and `--insecure-skip-verify`; by default the platform's certificate authorities.
    pub client_tls: crate::tls::ClientTls,
}

const CALLBACK_STATES: &[&str] = &["success", "failure", "error"];

/// Reads and checks one file.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let (file, text) = yaml::read(path)?;
    let scenario = parse(&text, &file)?;
    Ok(Loaded {
        file,
        scenario,
        client_tls: crate::tls::ClientTls::default(),
    })
}

/// Parses and checks scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let scenario: Scenario = yaml::from_str(text, file)?;
    check(&scenario, text, file)?;
    Ok(scenario)
}

/// Every scenario file under `paths` (folders are searched for `*.yaml` and `*.yml`), sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|err| ScenarioError {
                file: path.display().to_string(),
                line: None,
                column: None,
                message: format!("cannot read the folder: {err}"),
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(ScenarioError {
                file: path.display().to_string(),
                line: None,
                column: None,
                message: "no such file or folder".to_owned(),
            });
        }
    }
    Ok(files)
}

/// The line of the first top-level `key:` in the text.
fn key_line(text: &str, key: &str) -> Option<u32> {
    text.lines()
        .position(|l| l.starts_with(key) && l[key.len()..].trim_start().starts_with(':'))
        .map(|i| i as u32 + 1)
}

/// `word` names one of `statuses` (as the JSON surfaces write them), or an error listing them.
fn one_of_statuses<S: serde::Serialize + Copy>(
    what: &str,
    word: &str,
    statuses: &[S],
) -> Result<(), String> {
    let words: Vec<String> = statuses.iter().map(|s| status_word(*s)).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    one_of(what, word, &words)
}

fn one_of(what: &str, word: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&word) {
        return Ok(());
    }
    let hint = did_you_mean(word, allowed);
    Err(format!(
        "{what} `{word}` is not one of {}{hint}",
        allowed.join(", ")
    ))
}

fn check(scenario: &Scenario, text: &str, file: &str) -> Result<(), ScenarioError> {
    let at = |line: Option<u32>, message: String| ScenarioError {
        file: file.to_owned(),
        line,
        column: None,
        message,
    };
    if let Err(errors) = RepoName::parse(&scenario.repository) {
        let detail = errors.to_json();
        let reason = detail
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v[0].as_str())
            .unwrap_or("invalid name")
            .to_owned();
        return Err(at(
            key_line(text, "repository"),
            format!("repository `{}`: {reason}", scenario.repository),
        ));
    }
    if let Err(message) = scenario.fault_plan().check() {
        return Err(at(key_line(text, "faults"), message));
    }
    // A filter that can never match is a mistake, not a plan that never fires.
    let slugs: BTreeSet<String> = scenario
        .pipelines
        .iter()
        .map(|p| p.value.name.clone())
        .chain(scenario.steps.iter().filter_map(|s| match &s.value {
            Step::CreatePipeline(create) => Some(create.name.clone()),
            _ => None,
        }))
        .map(|name| crate::model::pipeline::slugify(&name))
        .collect();
    for (i, rule) in scenario.faults.iter().enumerate() {
        if let Some(pipeline) = rule.pipeline.as_ref().filter(|p| !slugs.contains(*p)) {
            let known: Vec<&str> = slugs.iter().map(String::as_str).collect();
            return Err(at(
                key_line(text, "faults"),
                format!(
                    "faults[{i}]: pipeline `{pipeline}` is no pipeline's slug here (slugs: {})",
                    known.join(", ")
                ),
            ));
        }
        if let Some(repository) = rule
            .repository
            .as_ref()
            .filter(|r| **r != scenario.repository)
        {
            return Err(at(
                key_line(text, "faults"),
                format!(
                    "faults[{i}]: repository `{repository}` is not this scenario's ({})",
                    scenario.repository
                ),
            ));
        }
    }
    for (name, receiver) in &scenario.receivers {
        let line = Some(receiver.referenced.line() as u32);
        let def = &receiver.value;
        let scripted = def.answer.is_some()
            || def.body.is_some()
            || def.delay.is_some()
            || def.fault.is_some()
            || def.callback.is_some();
        if def.url.is_some() && scripted {
            return Err(at(line, format!("receiver `{name}` has a `url`, so it is external: it cannot also script `answer`, `body`, `delay`, `fault` or `callback`")));
        }
        if let Some(url) = &def.url {
            if url.matches("${").count() != url.matches('}').count() {
                return Err(at(
                    line,
                    format!("receiver `{name}`: unclosed `${{` in url {url:?}"),
                ));
            }
        }
        if let Some(status) = def.answer {
            if !(100..=599).contains(&status) {
                return Err(at(
                    line,
                    format!(
                        "receiver `{name}`: answer {status} is not an HTTP status (100 to 599)"
                    ),
                ));
            }
        }
        for callback in def.callback.iter().flat_map(|c| c.to_vec()) {
            match (&callback.state, &callback.body) {
                (Some(state), None) => {
                    one_of("callback state", state, CALLBACK_STATES)
                        .map_err(|m| at(line, format!("receiver `{name}`: {m}")))?;
                }
                (None, None) => {
                    return Err(at(
                        line,
                        format!("receiver `{name}`: a callback needs a `state` (or a raw `body`)"),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(at(line, format!("receiver `{name}`: a callback has either `state` and its fields, or a raw `body`, not both")));
                }
                (None, Some(_)) => {}
            }
        }
    }
    let mut pipelines = BTreeSet::new();
    for pipeline in &scenario.pipelines {
        let line = Some(pipeline.referenced.line() as u32);
        check_pipeline(scenario, &pipeline.value.name, &pipeline.value.webhooks)
            .map_err(|m| at(line, m))?;
        if !pipelines.insert(pipeline.value.name.clone()) {
            return Err(at(
                line,
                format!("pipeline `{}` is defined twice", pipeline.value.name),
            ));
        }
    }
    if scenario.steps.is_empty() {
        return Err(at(
            key_line(text, "steps"),
            "a scenario needs at least one step".to_owned(),
        ));
    }
    let mut pushed = PushedDigests::default();
    for step in &scenario.steps {
        let line = Some(step.referenced.line() as u32);
        check_step(scenario, &step.value, &mut pipelines, &mut pushed)
            .map_err(|m| at(line, format!("{}: {m}", step.value.kind())))?;
    }
    Ok(())
}

fn check_pipeline(scenario: &Scenario, name: &str, webhooks: &[String]) -> Result<(), String> {
    if webhooks.is_empty() {
        return Err(format!("pipeline `{name}` needs at least one webhook"));
    }
    for webhook in webhooks {
        check_receiver(scenario, webhook)?;
    }
    Ok(())
}

fn check_receiver(scenario: &Scenario, name: &str) -> Result<(), String> {
    let known: Vec<&str> = scenario.receivers.keys().map(String::as_str).collect();
    check_known("receiver", name, &known)
}

fn check_known_pipeline(pipelines: &BTreeSet<String>, name: &str) -> Result<(), String> {
    let known: Vec<&str> = pipelines.iter().map(String::as_str).collect();
    check_known("pipeline", name, &known)
}

/// `name` is one of `known`, or an error listing them with the likely intended one.
fn check_known(kind: &str, name: &str, known: &[&str]) -> Result<(), String> {
    if known.contains(&name) {
        return Ok(());
    }
    let hint = did_you_mean(name, known);
    let listed = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    Err(format!(
        "no {kind} `{name}` is defined before this step ({kind}s: {listed}){hint}"
    ))
}

fn check_step(
    scenario: &Scenario,
    step: &Step,
    pipelines: &mut BTreeSet<String>,
    pushed: &mut PushedDigests,
) -> Result<(), String> {
    match step {
        Step::Push(_) => Ok(()),
        Step::PushImage(push) => {
            check_push_image(push)?;
            // A stand-in: the loader only checks that a placeholder will have a value.
            pushed.record(push.tag(), "sha256:...");
            Ok(())
        }
        Step::ExpectDelivery(e) => {
            check_receiver(scenario, &e.receiver)?;
            if let Some(payload) = &e.payload {
                pushed.fill(payload)?;
            }
            Ok(())
        }
        Step::ExpectNoDelivery(e) => check_receiver(scenario, &e.receiver),
        Step::Callback(c) => {
            check_known_pipeline(pipelines, &c.pipeline)?;
            if c.step == 0 {
                return Err("steps are counted from 1".to_owned());
            }
            Ok(())
        }
        Step::ExpectRun(e) => {
            check_known_pipeline(pipelines, &e.pipeline)?;
            one_of_statuses("run status", &e.status, &RUN_STATUSES)?;
            for status in e.steps.iter().flatten() {
                one_of_statuses("step status", status, &STEP_STATUSES)?;
            }
            Ok(())
        }
        Step::ExpectHistory(e) => {
            check_known_pipeline(pipelines, &e.pipeline)?;
            for status in e.statuses.iter().flatten() {
                one_of_statuses("run status", status, &RUN_STATUSES)?;
            }
            Ok(())
        }
        Step::CreatePipeline(c) => {
            check_pipeline(scenario, &c.name, &c.webhooks)?;
            pipelines.insert(c.name.clone());
            Ok(())
        }
        Step::DeletePipeline(p) | Step::WaitForTimeout(p) => {
            check_known_pipeline(pipelines, &p.pipeline)
        }
    }
}

fn check_push_image(push: &PushImageStep) -> Result<(), String> {
    if let Some(repository) = &push.repository {
        RegistryName::parse(repository).map_err(|err| err.to_string())?;
    }
    check_tag(push.tag()).map_err(|rule| format!("tag `{}`: {rule}", push.tag()))?;
    if let Some(platforms) = &push.platforms {
        if platforms.is_empty() {
            return Err(
                "`platforms` is empty: name at least one, or leave it out for one linux/amd64 \
                 image"
                    .to_owned(),
            );
        }
        let mut seen = BTreeSet::new();
        for written in platforms {
            let platform: Platform = written.parse()?;
            if !seen.insert(platform) {
                return Err(format!("platform `{written}` is listed twice"));
            }
        }
    }
    if let Some(user) = &push.user {
        let valid = !user.is_empty()
            && !user.contains(':')
            && !user.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(format!(
                "user `{user}` is not a user name: it may not be empty nor hold `:` or spaces"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_in_keys_get_a_suggestion() {
        let err = parse(
            "name: x\nrepository: acme/app\nrecievers: {}\nsteps: []\n",
            "t.yaml",
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (Some(3), Some(1)));
        assert!(err.message.contains("did you mean `receivers`?"), "{err}");
        let err = parse(
            "name: x\nrepository: acme/app\nsteps:\n  - pusj: {}\n",
            "t.yaml",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(err.message.contains("did you mean `push`?"), "{err}");
    }

    #[test]
    fn a_bad_fault_plan_or_quirk_is_caught_before_running() {
        let text = "name: x\nrepository: acme/app\nfaults:\n  - {kind: delay, probability: 3}\nsteps: []\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("between 0 and 1"), "{err}");
        let text = "name: x\nrepository: acme/app\nfaults:\n  - {kind: dupe}\nsteps: []\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert!(err.message.contains("dupe"), "{err}");
        let text = "name: x\nrepository: acme/app\nfaults:\n  - {kind: delay, pipeline: Deploy}\npipelines:\n  - {name: Deploy, webhooks: [r]}\nreceivers: {r: {}}\nsteps: []\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert!(
            err.message
                .contains("pipeline `Deploy` is no pipeline's slug here (slugs: deploy)"),
            "{err}"
        );
        let text = "name: x\nrepository: acme/app\nfaults:\n  - {kind: delay, repository: acme/other}\nsteps: []\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert!(
            err.message.contains("is not this scenario's (acme/app)"),
            "{err}"
        );
        let text = "name: x\nrepository: acme/app\nsettings: {quirks: hub-1999}\nsteps: []\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert!(
            err.message.contains("unknown quirk or profile 'hub-1999'"),
            "{err}"
        );
    }

    #[test]
    fn references_to_unknown_receivers_name_the_line() {
        let text = "name: x\nrepository: acme/app\nreceivers:\n  tests: {}\npipelines:\n  - name: p\n    webhooks: [test]\nsteps:\n  - push: {}\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert_eq!(err.line, Some(6));
        assert!(err.message.contains("did you mean `tests`?"), "{err}");
    }

    #[test]
    fn a_misspelt_status_is_caught_before_running() {
        let text = "name: x\nrepository: acme/app\nreceivers:\n  a: {}\npipelines:\n  - {name: p, webhooks: [a]}\nsteps:\n  - push: {}\n  - expect_run: {pipeline: p, status: sucess}\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert_eq!(err.line, Some(9));
        assert!(err.message.contains("did you mean `success`?"), "{err}");
        assert!(
            err.message
                .contains("is not one of pending, success, failure, error, cancelled"),
            "{err}"
        );
    }

    #[test]
    fn a_misspelt_step_status_lists_every_step_status() {
        let text = "name: x\nrepository: acme/app\nreceivers:\n  a: {}\npipelines:\n  - {name: p, webhooks: [a]}\nsteps:\n  - push: {}\n  - expect_run: {pipeline: p, status: success, steps: [timedout]}\n";
        let err = parse(text, "t.yaml").unwrap_err();
        assert!(
            err.message.contains(
                "step status `timedout` is not one of waiting, awaiting_callback, success, failure, error, delivery_failed, timed_out, skipped, cancelled; did you mean `timed_out`?"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_push_image_step_is_checked_before_running() {
        let head = "name: x\nrepository: acme/app\nreceivers:\n  a: {}\nsteps:\n";
        let error = |steps: &str| parse(&format!("{head}{steps}"), "t.yaml").unwrap_err();
        let err = error("  - push_image: { tag: v1, platforms: [linux/amd64, linux] }\n");
        assert_eq!(err.line, Some(6));
        assert!(
            err.message
                .starts_with("push_image: platform `linux` is not os/architecture"),
            "{err}"
        );
        let err = error("  - push_image: { platforms: [linux/arm64, linux/arm64] }\n");
        assert!(err.message.contains("listed twice"), "{err}");
        let err = error("  - push_image: { platforms: [] }\n");
        assert!(err.message.contains("`platforms` is empty"), "{err}");
        let err = error("  - push_image: { repository: Acme/App }\n");
        assert!(err.message.contains("invalid repository name"), "{err}");
        let err = error("  - push_image: { tag: -v1 }\n");
        assert!(err.message.contains("tag `-v1`"), "{err}");
        let err = error("  - push_image: { user: \"a:b\" }\n");
        assert!(err.message.contains("user `a:b`"), "{err}");
        let err = error("  - push_image: { tga: v1 }\n");
        assert_eq!((err.line, err.column), (Some(6), Some(19)));
        assert!(err.message.contains("did you mean `tag`?"), "{err}");
        let err = error("  - push_imgae: { tag: v1 }\n");
        assert!(err.message.contains("did you mean `push_image`?"), "{err}");
        let err = error("  - push_image: { tag: v1, platforms: linux/amd64 }\n");
        assert_eq!(err.line, Some(6));
    }

    #[test]
    fn a_digest_placeholder_needs_a_push_image_before_it() {
        let head = "name: x\nrepository: acme/app\nreceivers:\n  a: {}\nsteps:\n";
        let expect = "  - expect_delivery: { receiver: a, payload: { push_data: { images: [\"${digest:v1}\"] } } }\n";
        let err = parse(
            &format!("{head}  - push_image: {{ tag: v2 }}\n{expect}"),
            "t.yaml",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(7));
        assert!(
            err.message
                .contains("no push_image of tag `v1` comes before this step"),
            "{err}"
        );
        parse(
            &format!("{head}  - push_image: {{ tag: v1 }}\n{expect}"),
            "t.yaml",
        )
        .unwrap();
        let err = parse(
            &format!("{head}  - expect_delivery: {{ receiver: a, payload: \"${{DIGEST}}\" }}\n"),
            "t.yaml",
        )
        .unwrap_err();
        assert!(err.message.contains("is not a placeholder"), "{err}");
    }
}
