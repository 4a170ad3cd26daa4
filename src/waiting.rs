//! `hubmock push --wait` and `hubmock push-image --wait` from any language: what a push's runs
//! are expected to end as (`--expect`), whether they did, a readable report of each run and a
//! diff of expected and actual. The binary sends the push and waits; this module judges and
//! writes, so the same words serve the tests.

use std::fmt::Write as _;
use std::str::FromStr;

use crate::api_client::status_word;
use crate::model::run::{Run, RunStatus};

/// What a push's runs must end as: `success` (every run), or `deploy=failure` (the runs of
/// pipeline `deploy`; the pipeline must have one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every run ends with this status (and there is at least one run).
    Every(RunStatus),
    /// The runs of this pipeline (by slug) end with this status (and there is one).
    Pipeline(String, RunStatus),
}

impl FromStr for Expect {
    type Err = String;

    fn from_str(text: &str) -> Result<Expect, String> {
        let status = |word: &str| {
            word.parse::<RunStatus>().map_err(|_| {
                format!(
                    "'{word}' is not a run status; expected success, failure, error, cancelled \
                     or pending"
                )
            })
        };
        match text.split_once('=') {
            Some((pipeline, word)) if !pipeline.is_empty() => {
                Ok(Expect::Pipeline(pipeline.to_owned(), status(word)?))
            }
            Some(_) => Err(format!(
                "'{text}' names no pipeline; write STATUS or PIPELINE=STATUS"
            )),
            None => Ok(Expect::Every(status(text)?)),
        }
    }
}

/// How a waited push ended, judged against the expectations.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The runs, as they were when the wait ended, in the order the push started them.
    pub runs: Vec<Run>,
    /// Whether every run had finished.
    pub finished: bool,
    /// The diff of expected and actual, when an expectation is not met (or a run did not
    /// finish in time); `None`: all is as expected.
    pub diff: Option<String>,
}

impl Verdict {
    /// Judges `runs` (with `finished`: whether all had finished in time) by `expects`.
    pub fn judge(runs: Vec<Run>, finished: bool, expects: &[Expect]) -> Verdict {
        let diff = diff(&runs, expects);
        let diff = match (diff, finished) {
            (None, true) => None,
            (diff, _) => Some(diff.unwrap_or_else(|| {
                let mut text = String::from("--- expected\n+++ actual\n");
                for run in runs.iter().filter(|r| r.is_pending()) {
                    let _ = writeln!(text, "  {}", run_line(run));
                    text.push_str("-   finished\n+   pending\n");
                }
                text
            })),
        };
        Verdict {
            runs,
            finished,
            diff,
        }
    }

    /// Exit code: 0 as expected, 1 not (or not finished in time).
    pub fn exit_code(&self) -> u8 {
        u8::from(self.diff.is_some())
    }
}

fn run_line(run: &Run) -> String {
    format!(
        "run {} (repository {}, pipeline {}, tag {})",
        run.id(),
        run.repository(),
        run.pipeline(),
        run.push().tag
    )
}

/// The lines of expected and actual statuses, `None` when they agree.
fn diff(runs: &[Run], expects: &[Expect]) -> Option<String> {
    let mut text = String::from("--- expected\n+++ actual\n");
    let mut differs = false;
    for expect in expects {
        let (matching, wanted, what): (Vec<&Run>, RunStatus, String) = match expect {
            Expect::Every(status) => (runs.iter().collect(), *status, "any pipeline".to_owned()),
            Expect::Pipeline(slug, status) => (
                runs.iter().filter(|r| r.pipeline() == slug).collect(),
                *status,
                format!("pipeline {slug}"),
            ),
        };
        if matching.is_empty() {
            differs = true;
            let _ = writeln!(
                text,
                "- a run of {what}: {}\n+ no run of {what} (the push started {})",
                status_word(wanted),
                runs.len()
            );
            continue;
        }
        for run in matching {
            let _ = writeln!(text, "  {}", run_line(run));
            if run.status() == wanted {
                let _ = writeln!(text, "    {}", status_word(wanted));
            } else {
                differs = true;
                let _ = writeln!(
                    text,
                    "-   {}\n+   {}",
                    status_word(wanted),
                    status_word(run.status())
                );
                // Why: the first step that did not succeed.
                if let Some(step) = run
                    .steps()
                    .iter()
                    .find(|s| !matches!(status_word(s.status).as_str(), "success" | "skipped"))
                {
                    let _ = writeln!(
                        text,
                        "      {} → {}: {}",
                        step.webhook,
                        crate::model::hook_url::redact(&step.hook_url),
                        step_outcome(step)
                    );
                }
            }
        }
    }
    differs.then_some(text)
}

/// A step's outcome in a few words: its status, the delivery's answer, the callback.
fn step_outcome(step: &crate::model::run::Step) -> String {
    let mut text = status_word(step.status);
    if let Some(delivery) = &step.delivery {
        let _ = write!(text, "; delivery {}", answer(delivery));
    }
    if let Some(callback) = &step.callback {
        let _ = write!(text, "; callback {}", status_word(callback.state));
        if let Some(description) = &callback.description {
            let _ = write!(text, " \"{description}\"");
        }
    }
    text
}

/// How a delivery was answered: `answered 200`, `failed: <why>`.
fn answer(delivery: &crate::model::run::DeliveryResult) -> String {
    match (&delivery.error, delivery.status) {
        (Some(error), _) => format!("failed: {error}"),
        (None, Some(status)) => format!("answered {status}"),
        (None, None) => "no answer".to_owned(),
    }
}

/// Every run with its steps, deliveries and callbacks, for a person reading a CI log.
pub fn report(runs: &[Run]) -> String {
    let mut text = String::new();
    if runs.is_empty() {
        text.push_str("the push started no run (the repository has no pipeline)\n");
    }
    for run in runs {
        let _ = writeln!(text, "{}: {}", run_line(run), status_word(run.status()));
        for (i, step) in run.steps().iter().enumerate() {
            let _ = writeln!(
                text,
                "  step {} {} → {}: {}",
                i + 1,
                step.webhook,
                crate::model::hook_url::redact(&step.hook_url),
                status_word(step.status)
            );
            match &step.delivery {
                Some(d) => {
                    let _ = writeln!(text, "    delivery: {} in {} ms", answer(d), d.duration_ms);
                }
                None if step.delivered_at.is_some() => {
                    text.push_str("    delivery: sent, no answer yet\n");
                }
                None => text.push_str("    delivery: not sent\n"),
            }
            if let Some(c) = &step.callback {
                let _ = write!(text, "    callback: {}", status_word(c.state));
                for (key, value) in [
                    ("description", &c.description),
                    ("context", &c.context),
                    ("target_url", &c.target_url),
                ] {
                    if let Some(value) = value {
                        let _ = write!(text, ", {key} \"{value}\"");
                    }
                }
                text.push('\n');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_read_a_status_or_a_pipeline_and_a_status() {
        assert_eq!(
            "success".parse::<Expect>(),
            Ok(Expect::Every(RunStatus::Success))
        );
        assert_eq!(
            "deploy=failure".parse::<Expect>(),
            Ok(Expect::Pipeline("deploy".into(), RunStatus::Failure))
        );
        assert!("succes"
            .parse::<Expect>()
            .unwrap_err()
            .contains("not a run status"));
        assert!("=success"
            .parse::<Expect>()
            .unwrap_err()
            .contains("names no pipeline"));
    }

    #[test]
    fn no_run_meets_no_expectation() {
        let verdict = Verdict::judge(Vec::new(), true, &[Expect::Every(RunStatus::Success)]);
        let diff = verdict.diff.unwrap();
        assert!(diff.contains("+ no run of any pipeline"), "{diff}");
        assert_eq!(Verdict::judge(Vec::new(), true, &[]).exit_code(), 0);
    }
}
