//! Running many scenarios at once and reporting on them (lines for people, JUnit for CI).

use std::sync::Arc;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use tokio::sync::Semaphore;

use super::load::Loaded;
use super::runner::{run, Outcome};

/// Runs `scenarios`, at most `jobs` at a time, each against its own emulator; `on_done` hears
/// of each as it ends. Outcomes come back in the order of `scenarios`.
pub async fn run_all(
    scenarios: Vec<Loaded>,
    jobs: usize,
    mut on_done: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let permits = Arc::new(Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let count = scenarios.len();
    for (index, loaded) in scenarios.into_iter().enumerate() {
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, run(&loaded).await)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        // A scenario task only ends by returning; a panic would be a bug worth surfacing.
        let (index, outcome) = joined.expect("a scenario task panicked");
        on_done(&outcome);
        outcomes[index] = Some(outcome);
    }
    outcomes.into_iter().flatten().collect()
}

/// One line for a person: `PASS  12ms  name (file)`, with the failure below it.
pub fn line(outcome: &Outcome) -> String {
    let verdict = if outcome.passed() { "PASS" } else { "FAIL" };
    let mut text = format!(
        "{verdict} {:>6}  {} ({})",
        format_ms(outcome.duration),
        outcome.name,
        outcome.file
    );
    if let Some(failure) = &outcome.failure {
        for (i, line) in failure.to_string().lines().enumerate() {
            text.push_str(if i == 0 { "\n    " } else { "\n      " });
            text.push_str(line);
        }
    }
    text
}

fn format_ms(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// The outcomes as JUnit XML, one test case per scenario.
pub fn junit(outcomes: &[Outcome]) -> String {
    let mut report = Report::new("hubmock");
    let mut suite = TestSuite::new("scenarios");
    for outcome in outcomes {
        let status = match &outcome.failure {
            None => TestCaseStatus::success(),
            Some(failure) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(failure.message.lines().next().unwrap_or_default());
                status.set_description(failure.to_string());
                status
            }
        };
        let mut case = TestCase::new(outcome.name.as_str(), status);
        case.set_classname(outcome.file.as_str());
        case.set_time(outcome.duration);
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report
        .to_string()
        .unwrap_or_else(|err| format!("<!-- could not write the JUnit report: {err} -->"))
}
