//! Running a scenario: a fresh emulator, its receivers, then each step in order, through the
//! emulator's real HTTP surfaces.
//!
//! Over 500 lines on purpose: one method per step kind of the scenario format, and the
//! expectation checks they share; the format is documented step by step in scenarios/README.md.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::expect::{subset_diff, type_check, PushedDigests};
use super::format::{PipelineDef, Step};
use super::load::Loaded;
use super::receiver::ScriptedReceiver;
use crate::api_client::{status_word, ApiClient};
use crate::config::Config;
use crate::hub::Hub;
use crate::model::pipeline::{slugify, PipelineSpec, WebhookSpec};
use crate::model::push::PushRequest;
use crate::model::repository::RepoName;
use crate::model::run::{Run, StepStatus};
use crate::store::{DeliveryFilter, RunFilter};

/// The password of the users a scenario's `push_image` steps name (the emulator runs with
/// auth off: a user's credentials only make it the pusher).
const SCENARIO_PASSWORD: &str = "hubmock";

/// Default time an `expect_*` step waits for what it expects.
pub const EXPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a scenario failed, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The file.
    pub file: String,
    /// The step, counted from 1 (`None`: during set-up or after the last step).
    pub step: Option<usize>,
    /// The step's key (`expect_run`, ...), or `setup` / `teardown`.
    pub kind: String,
    /// The step's line in the file.
    pub line: Option<u32>,
    /// Expected versus actual.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        match self.step {
            Some(step) => write!(f, ": step {step} ({})", self.kind)?,
            None => write!(f, ": {}", self.kind)?,
        }
        write!(f, ": {}", self.message)
    }
}

/// How one scenario went.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The scenario's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// How long it took.
    pub duration: Duration,
    /// `None` when it passed.
    pub failure: Option<Failure>,
}

impl Outcome {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Where a receiver is and, when hubmock scripts it, the script's handle.
struct Endpoint {
    url: String,
    scripted: Option<ScriptedReceiver>,
}

/// One scenario's world.
struct World<'a> {
    loaded: &'a Loaded,
    /// The scenario talks to it over HTTP: through `api`, and through its registry for
    /// `push_image` ([`Hub::registry_push`]).
    hub: Hub,
    api: ApiClient,
    repo: RepoName,
    receivers: BTreeMap<String, Endpoint>,
    /// Deliveries already matched by `expect_delivery`, per receiver: their places in the
    /// receiver's deliveries, counting from 0.
    matched: BTreeMap<String, std::collections::BTreeSet<usize>>,
    /// What `push_image` steps pushed, for `${digest}` in payloads.
    pushed: PushedDigests,
    expect_timeout: Duration,
    callback_timeout: Option<Duration>,
}

/// Runs one loaded scenario against a fresh emulator.
pub async fn run(loaded: &Loaded) -> Outcome {
    let started = Instant::now();
    let failure = match World::start(loaded).await {
        Ok(mut world) => world.play().await.err(),
        Err(message) => Some(Failure {
            file: loaded.file.clone(),
            step: None,
            kind: "setup".to_owned(),
            line: None,
            message,
        }),
    };
    Outcome {
        name: loaded.scenario.name.clone(),
        file: loaded.file.clone(),
        duration: started.elapsed(),
        failure,
    }
}

/// `${VAR}` replaced from the environment; an unset variable is an error naming it.
pub fn substitute_env(text: &str) -> Result<String, String> {
    fill_placeholders(text, |name| {
        std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (used in {text:?})"))
    })
}

/// Every `${NAME}` in `text` replaced with what `value` answers for `NAME`; the first error,
/// or an unclosed `${`, is the answer instead. Scenario files use it for environment
/// variables and for the digests `push_image` steps pushed.
pub(super) fn fill_placeholders(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        out.push_str(&value(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl<'a> World<'a> {
    async fn start(loaded: &'a Loaded) -> Result<World<'a>, String> {
        let scenario = &loaded.scenario;
        let settings = &scenario.settings;
        let mut config = Config::default().with_auth(false);
        config.client_tls = loaded.client_tls.clone();
        if let Some(quirks) = &settings.quirks {
            config = config.with_quirks(quirks);
        }
        if !scenario.faults.is_empty() {
            config = config.with_fault_plan(scenario.fault_plan());
        }
        if let Some(format) = settings.payload_format {
            config = config.with_payload_format(format);
        }
        if let Some(timeout) = settings.delivery_timeout {
            config = config.with_delivery_timeout(timeout.0);
        }
        config = config.with_callback_timeout(settings.callback_timeout.map(|w| w.0));
        // The users `push_image` steps push as, so their credentials name the pusher.
        let users: std::collections::BTreeSet<&str> = scenario
            .steps
            .iter()
            .filter_map(|step| match &step.value {
                Step::PushImage(push) => push.user.as_deref(),
                _ => None,
            })
            .collect();
        for user in users {
            config = config.with_user(user, SCENARIO_PASSWORD);
        }
        let hub = Hub::start_with(config).await;
        let mut receivers = BTreeMap::new();
        for (name, def) in &scenario.receivers {
            let endpoint = match &def.value.url {
                Some(url) => Endpoint {
                    url: substitute_env(url).map_err(|e| format!("receiver `{name}`: {e}"))?,
                    scripted: None,
                },
                None => {
                    let scripted = ScriptedReceiver::start(name, def.value.clone())
                        .await
                        .map_err(|e| format!("receiver `{name}` could not start: {e}"))?;
                    Endpoint {
                        url: scripted.url().to_owned(),
                        scripted: Some(scripted),
                    }
                }
            };
            receivers.insert(name.clone(), endpoint);
        }
        let repo = RepoName::parse(&scenario.repository)
            .map_err(|_| "repository is not namespace/name")?;
        let world = World {
            loaded,
            api: ApiClient::new(&hub.uri()),
            hub,
            repo,
            receivers,
            matched: BTreeMap::new(),
            pushed: PushedDigests::default(),
            expect_timeout: settings.expect_timeout.map_or(EXPECT_TIMEOUT, |w| w.0),
            callback_timeout: settings.callback_timeout.map(|w| w.0),
        };
        world
            .api
            .create_repository(&world.repo.namespace, &world.repo.name)
            .await
            .map_err(|e| e.to_string())?;
        for pipeline in &scenario.pipelines {
            world.create_pipeline(&pipeline.value, 201).await?;
        }
        Ok(world)
    }

    /// Creates a pipeline through the Hub API and checks that it answers `expected`.
    async fn create_pipeline(&self, pipeline: &PipelineDef, expected: u16) -> Result<(), String> {
        let spec = PipelineSpec {
            name: Some(pipeline.name.clone()),
            expect_final_callback: Some(pipeline.expect_final_callback),
            webhooks: Some(
                pipeline
                    .webhooks
                    .iter()
                    .map(|name| WebhookSpec {
                        name: name.clone(),
                        hook_url: self.receivers[name].url.clone(),
                    })
                    .collect(),
            ),
            payload_format: pipeline.payload_format,
            quirks: pipeline.quirks.clone(),
        };
        match self.api.create_pipeline(&self.repo, spec).await {
            Ok(_) if expected == 201 => Ok(()),
            Ok(created) => Err(format!(
                "pipeline `{}` was created (201); expected {expected}",
                created.name
            )),
            Err(err) if expected != 201 && err.status() == Some(expected) => Ok(()),
            Err(err) if expected != 201 => Err(format!("{err}; expected {expected}")),
            Err(err) => Err(err.to_string()),
        }
    }

    async fn play(&mut self) -> Result<(), Failure> {
        let steps = &self.loaded.scenario.steps;
        for (index, step) in steps.iter().enumerate() {
            let line = Some(step.referenced.line() as u32);
            let fail = |message: String| Failure {
                file: self.loaded.file.clone(),
                step: Some(index + 1),
                kind: step.value.kind().to_owned(),
                line,
                message,
            };
            self.step(&step.value).await.map_err(fail)?;
            self.receiver_problems().map_err(fail)?;
        }
        // Whatever the receivers still had to do must have gone as scripted too.
        self.settle().await.map_err(|m| self.teardown_failure(m))?;
        self.receiver_problems()
            .map_err(|m| self.teardown_failure(m))
    }

    fn teardown_failure(&self, message: String) -> Failure {
        Failure {
            file: self.loaded.file.clone(),
            step: None,
            kind: "after the last step".to_owned(),
            line: None,
            message,
        }
    }

    fn receiver_problems(&self) -> Result<(), String> {
        let problems: Vec<String> = self
            .receivers
            .values()
            .filter_map(|e| e.scripted.as_ref())
            .flat_map(ScriptedReceiver::take_problems)
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Waits until no delivery is in flight and no scripted callback is still to be sent.
    async fn settle(&self) -> Result<(), String> {
        let deadline = Instant::now() + self.expect_timeout;
        loop {
            for endpoint in self.receivers.values() {
                if let Some(scripted) = &endpoint.scripted {
                    scripted.settled().await;
                }
            }
            let filter = RunFilter {
                repository: Some(self.repo.clone()),
                ..RunFilter::default()
            };
            let runs = self.api.runs(&filter).await.map_err(|e| e.to_string())?;
            let mut busy = false;
            // With a fault plan, a delivered step may still have posts to come (a duplicate,
            // a retry): the delivery long-poll waits for those too.
            let faults = !self.loaded.scenario.faults.is_empty();
            for run in &runs {
                for step in 0..run.steps.len() {
                    let in_flight = run.delivery_in_flight(step);
                    let delivered = run.steps[step].delivered_at.is_some();
                    if in_flight || (faults && delivered) {
                        // Another look is needed only after a delivery was in flight (its
                        // answer may start the next step's).
                        busy |= in_flight;
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        self.api
                            .wait_for_delivery(run.id, step, remaining)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
            if !busy {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "deliveries were still in flight after {}",
                    humantime::format_duration(self.expect_timeout)
                ));
            }
        }
    }

    /// The newest run of a pipeline.
    async fn latest_run(&self, pipeline: &str) -> Result<Run, String> {
        let filter = RunFilter {
            repository: Some(self.repo.clone()),
            pipeline: Some(slugify(pipeline)),
            status: None,
        };
        let runs = self.api.runs(&filter).await.map_err(|e| e.to_string())?;
        runs.into_iter()
            .next()
            .ok_or_else(|| format!("pipeline `{pipeline}` has no run yet (was there a push?)"))
    }

    /// What was sent to a receiver.
    fn deliveries_to(&self, receiver: &str) -> DeliveryFilter {
        DeliveryFilter {
            run: None,
            url: Some(self.receivers[receiver].url.clone()),
        }
    }

    async fn wait_finished(&self, run: &Run, timeout: Duration) -> Result<Run, String> {
        self.api
            .wait_for_run(run.id, timeout)
            .await
            .map_err(|e| e.to_string())
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Push(step) => {
                let push = PushRequest {
                    tag: step.tag.clone(),
                    pusher: step.pusher.clone(),
                    images: step.images.clone().unwrap_or_default(),
                    media_type: step.media_type.clone(),
                    extra: None,
                };
                self.api
                    .push_tags(&self.repo, &push, &step.extra_tags)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
            Step::PushImage(push) => {
                let repository = push
                    .repository
                    .clone()
                    .unwrap_or_else(|| self.repo.to_string());
                let mut request = self
                    .hub
                    .registry_push(&repository, push.tag())
                    .platforms(push.platforms.iter().flatten());
                if push.docker {
                    request = request.docker();
                }
                if let Some(user) = &push.user {
                    request = request.user(user);
                }
                let pushed = request.await.map_err(|e| e.to_string())?;
                self.pushed.record(push.tag(), &pushed.digest);
                Ok(())
            }
            Step::ExpectDelivery(expect) => {
                let matched = self.matched.entry(expect.receiver.clone()).or_default();
                // In order: the first delivery not matched yet. In any order: the first not
                // matched yet that matches, waiting for more until one does.
                let first_free = (0..).find(|i| !matched.contains(i)).expect("a free place");
                let problems_of = |payload: &Value| -> Result<Vec<String>, String> {
                    let mut problems = Vec::new();
                    if let Some(expected) = &expect.payload {
                        let expected = self.pushed.fill(expected)?;
                        problems.extend(subset_diff(&expected, payload));
                    }
                    for (path, want) in &expect.types {
                        if let Err(problem) = type_check(payload, path, *want) {
                            problems.push(problem);
                        }
                    }
                    Ok(problems)
                };
                let mut wanted = first_free + 1;
                let deadline = tokio::time::Instant::now() + self.expect_timeout;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let deliveries = self
                        .api
                        .wait_for_deliveries(&self.deliveries_to(&expect.receiver), wanted, left)
                        .await
                        .map_err(|e| e.to_string())?;
                    if deliveries.len() < wanted {
                        return Err(format!(
                            "receiver `{}` got {} deliveries within {}; expected delivery number {wanted}{}",
                            expect.receiver,
                            deliveries.len(),
                            humantime::format_duration(self.expect_timeout),
                            if expect.any_order { " (none of the others matched)" } else { "" }
                        ));
                    }
                    let index = wanted - 1;
                    let payload = &request_body(deliveries[index].request_body.get());
                    let problems = problems_of(payload)?;
                    if problems.is_empty() {
                        self.matched
                            .entry(expect.receiver.clone())
                            .or_default()
                            .insert(index);
                        return Ok(());
                    }
                    if !expect.any_order {
                        return Err(format!(
                            "delivery {wanted} to receiver `{}` differs:\n  {}\npayload was: {payload}",
                            expect.receiver,
                            problems.join("\n  ")
                        ));
                    }
                    // Any order: try the next delivery not matched yet.
                    let matched = &self.matched[&expect.receiver];
                    wanted = (wanted..)
                        .find(|i| !matched.contains(i))
                        .expect("a free place")
                        + 1;
                }
            }
            Step::ExpectNoDelivery(expect) => {
                self.settle().await?;
                let deliveries = self
                    .api
                    .deliveries(&self.deliveries_to(&expect.receiver))
                    .await
                    .map_err(|e| e.to_string())?;
                let matched = self.matched.get(&expect.receiver);
                let unmatched = (0..deliveries.len())
                    .find(|i| !matched.is_some_and(|m| m.contains(i)))
                    .map(|i| &deliveries[i]);
                match unmatched {
                    None => Ok(()),
                    Some(extra) => Err(format!(
                        "receiver `{}` got a delivery it should not have (run {}, step {}): {}",
                        expect.receiver,
                        extra.run_id,
                        extra.step,
                        request_body(extra.request_body.get())
                    )),
                }
            }
            Step::Callback(callback) => {
                let run = self.latest_run(&callback.pipeline).await?;
                let url = &run
                    .steps
                    .get(callback.step - 1)
                    .ok_or_else(|| {
                        format!(
                            "the latest run of `{}` has no step {}",
                            callback.pipeline, callback.step
                        )
                    })?
                    .callback_url;
                let (status, answer) = match self.api.send_callback(url, &callback.body).await {
                    Ok(answer) => (200, answer),
                    Err(err) => match err.status() {
                        Some(status) => (status, err.json()),
                        None => return Err(err.to_string()),
                    },
                };
                let expected = callback.expect_status.unwrap_or(200);
                if status != expected {
                    return Err(format!(
                        "the callback was answered {status} {answer}; expected {expected}"
                    ));
                }
                if let Some(want) = &callback.expect_body {
                    let diff = subset_diff(want, &answer);
                    if !diff.is_empty() {
                        return Err(format!(
                            "the callback's answer differs:\n  {}\nanswer was: {answer}",
                            diff.join("\n  ")
                        ));
                    }
                }
                Ok(())
            }
            Step::ExpectRun(expect) => {
                let mut run = self.latest_run(&expect.pipeline).await?;
                if expect.status == "pending" {
                    self.settle().await?;
                    run = self.latest_run(&expect.pipeline).await?;
                } else {
                    run = self.wait_finished(&run, self.expect_timeout).await?;
                }
                let mut problems = Vec::new();
                if status_word(run.status) != expect.status {
                    problems.push(format!(
                        "status: expected {}, got {}",
                        expect.status,
                        json!(run.status)
                    ));
                }
                if let Some(steps) = &expect.steps {
                    let actual: Vec<String> =
                        run.steps.iter().map(|s| status_word(s.status)).collect();
                    if actual != *steps {
                        problems.push(format!(
                            "steps: expected [{}], got [{}]",
                            steps.join(", "),
                            actual.join(", ")
                        ));
                    }
                }
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "run {} of pipeline `{}`: {}",
                        run.id,
                        expect.pipeline,
                        problems.join("; ")
                    ))
                }
            }
            Step::ExpectHistory(expect) => {
                let history = self
                    .api
                    .history(&self.repo, &slugify(&expect.pipeline))
                    .await
                    .map_err(|e| e.to_string())?;
                let statuses: Vec<String> =
                    history.iter().map(|run| status_word(run.status)).collect();
                if let Some(count) = expect.count {
                    if statuses.len() != count {
                        return Err(format!(
                            "history of `{}` has {} runs; expected {count}",
                            expect.pipeline,
                            statuses.len()
                        ));
                    }
                }
                if let Some(want) = &expect.statuses {
                    if statuses != *want {
                        return Err(format!(
                            "history of `{}`: expected [{}], got [{}]",
                            expect.pipeline,
                            want.join(", "),
                            statuses.join(", ")
                        ));
                    }
                }
                Ok(())
            }
            Step::CreatePipeline(create) => {
                self.create_pipeline(&create.pipeline(), create.expect_status.unwrap_or(201))
                    .await?;
                Ok(())
            }
            Step::DeletePipeline(target) => self
                .api
                .delete_pipeline(&self.repo, &slugify(&target.pipeline))
                .await
                .map_err(|e| e.to_string()),
            Step::WaitForTimeout(target) => {
                let Some(callback_timeout) = self.callback_timeout else {
                    return Err(
                        "settings.callback_timeout is not set, so no step can time out".to_owned(),
                    );
                };
                let run = self.latest_run(&target.pipeline).await?;
                let run = self
                    .wait_finished(&run, callback_timeout + self.expect_timeout)
                    .await?;
                if run.steps().iter().any(|s| s.status == StepStatus::TimedOut) {
                    Ok(())
                } else {
                    Err(format!(
                        "run {} of `{}` ended {} without a timed-out step",
                        run.id,
                        target.pipeline,
                        json!(run.status)
                    ))
                }
            }
        }
    }
}

/// A delivery's request body as JSON, to compare and to show (it was sent as JSON).
fn request_body(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}
