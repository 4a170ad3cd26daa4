//! Running a scenario: a fresh emulator, its receivers, then each step in order, through the
//! emulator's real HTTP surfaces.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use super::expect::{subset_diff, type_check};
use super::format::{PipelineDef, Step};
use super::load::Loaded;
use super::receiver::ScriptedReceiver;
use crate::client::HttpClient;
use crate::config::Config;
use crate::hub::Hub;
use crate::model::pipeline::slugify;

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
    hub: Hub,
    client: HttpClient,
    repo: String,
    receivers: BTreeMap<String, Endpoint>,
    /// Deliveries already matched by `expect_delivery`, per receiver.
    matched: BTreeMap<String, usize>,
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
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let name = &after[..end];
        let value = std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (used in {text:?})"))?;
        out.push_str(&value);
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
        if let Some(format) = settings.payload_format {
            config = config.with_payload_format(format);
        }
        if let Some(timeout) = settings.delivery_timeout {
            config = config.with_delivery_timeout(timeout.0);
        }
        config = config.with_callback_timeout(settings.callback_timeout.map(|w| w.0));
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
        let world = World {
            loaded,
            hub,
            client: HttpClient::new(),
            repo: scenario.repository.clone(),
            receivers,
            matched: BTreeMap::new(),
            expect_timeout: settings.expect_timeout.map_or(EXPECT_TIMEOUT, |w| w.0),
            callback_timeout: settings.callback_timeout.map(|w| w.0),
        };
        let (namespace, name) = scenario
            .repository
            .split_once('/')
            .ok_or("repository is not namespace/name")?;
        world
            .call(
                Method::POST,
                "/_hubmock/repositories",
                Some(json!({"namespace": namespace, "name": name})),
                201,
            )
            .await?;
        for pipeline in &scenario.pipelines {
            world.create_pipeline(&pipeline.value, 201).await?;
        }
        Ok(world)
    }

    /// Sends a request to the emulator; answers the JSON body, or says what came back instead.
    async fn call(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Result<Value, String> {
        let (status, value) = self.exchange(method.clone(), path_or_url, body).await?;
        if status != expected {
            return Err(format!(
                "{method} {path_or_url} answered {status} {value}; expected {expected}"
            ));
        }
        Ok(value)
    }

    async fn exchange(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.hub.uri())
        };
        let bytes = body.map_or_else(Bytes::new, |b| {
            Bytes::from(serde_json::to_vec(&b).unwrap_or_default())
        });
        let answer = self
            .client
            .send(
                method.clone(),
                &url,
                &[("content-type", "application/json")],
                bytes,
                usize::MAX,
            )
            .await
            .map_err(|e| format!("{method} {url} failed: {e}"))?;
        let value = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&answer.body).into_owned())
            })
        };
        Ok((answer.status, value))
    }

    async fn create_pipeline(
        &self,
        pipeline: &PipelineDef,
        expected: u16,
    ) -> Result<Value, String> {
        let webhooks: Vec<Value> = pipeline
            .webhooks
            .iter()
            .map(|name| json!({"name": name, "hook_url": self.receivers[name].url}))
            .collect();
        let mut body = json!({
            "name": pipeline.name,
            "expect_final_callback": pipeline.expect_final_callback,
            "webhooks": webhooks,
            "registry": "registry-1.docker.io",
        });
        if let Some(format) = pipeline.payload_format {
            body["payload_format"] = json!(format);
        }
        let path = format!("/v2/repositories/{}/webhook_pipeline/", self.repo);
        self.call(Method::POST, &path, Some(body), expected).await
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
            let runs = self
                .call(
                    Method::GET,
                    &format!("/_hubmock/runs?repository={}", self.repo),
                    None,
                    200,
                )
                .await?;
            let mut busy = false;
            for run in runs["runs"].as_array().into_iter().flatten() {
                for (step, s) in run["steps"].as_array().into_iter().flatten().enumerate() {
                    if s["delivered_at"].is_string() && s["delivery"].is_null() {
                        busy = true;
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        let path = format!(
                            "/_hubmock/runs/{}?wait=delivered&step={step}&timeout_ms={}",
                            run["id"],
                            remaining.as_millis()
                        );
                        self.call(Method::GET, &path, None, 200).await?;
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
    async fn latest_run(&self, pipeline: &str) -> Result<Value, String> {
        let path = format!(
            "/_hubmock/runs?repository={}&pipeline={}",
            self.repo,
            slugify(pipeline)
        );
        let runs = self.call(Method::GET, &path, None, 200).await?;
        runs["runs"]
            .get(0)
            .cloned()
            .ok_or_else(|| format!("pipeline `{pipeline}` has no run yet (was there a push?)"))
    }

    async fn wait_finished(&self, run: &Value, timeout: Duration) -> Result<Value, String> {
        let path = format!(
            "/_hubmock/runs/{}?wait=finished&timeout_ms={}",
            run["id"],
            timeout.as_millis()
        );
        self.call(Method::GET, &path, None, 200).await
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Push(push) => {
                let mut body = json!({});
                if let Some(tag) = &push.tag {
                    body["tag"] = json!(tag);
                }
                if let Some(pusher) = &push.pusher {
                    body["pusher"] = json!(pusher);
                }
                if let Some(images) = &push.images {
                    body["images"] = json!(images);
                }
                if let Some(media_type) = &push.media_type {
                    body["media_type"] = json!(media_type);
                }
                let path = format!("/_hubmock/repositories/{}/push", self.repo);
                self.call(Method::POST, &path, Some(body), 202).await?;
                Ok(())
            }
            Step::ExpectDelivery(expect) => {
                let number = self.matched.get(&expect.receiver).copied().unwrap_or(0) + 1;
                let url = &self.receivers[&expect.receiver].url;
                let path = format!(
                    "/_hubmock/deliveries?url={}&min={number}&timeout_ms={}",
                    encode(url),
                    self.expect_timeout.as_millis()
                );
                let found = self.call(Method::GET, &path, None, 200).await?;
                let deliveries = found["deliveries"].as_array().cloned().unwrap_or_default();
                let Some(delivery) = deliveries.get(number - 1) else {
                    return Err(format!(
                        "receiver `{}` got {} deliveries within {}; expected delivery number {number}",
                        expect.receiver,
                        deliveries.len(),
                        humantime::format_duration(self.expect_timeout)
                    ));
                };
                self.matched.insert(expect.receiver.clone(), number);
                let payload = &delivery["request_body"];
                let mut problems = Vec::new();
                if let Some(expected) = &expect.payload {
                    problems.extend(subset_diff(expected, payload));
                }
                for (path, want) in &expect.types {
                    if let Err(problem) = type_check(payload, path, *want) {
                        problems.push(problem);
                    }
                }
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "delivery {number} to receiver `{}` differs:\n  {}\npayload was: {payload}",
                        expect.receiver,
                        problems.join("\n  ")
                    ))
                }
            }
            Step::ExpectNoDelivery(expect) => {
                self.settle().await?;
                let url = &self.receivers[&expect.receiver].url;
                let path = format!("/_hubmock/deliveries?url={}", encode(url));
                let found = self.call(Method::GET, &path, None, 200).await?;
                let deliveries = found["deliveries"].as_array().cloned().unwrap_or_default();
                let expected = self.matched.get(&expect.receiver).copied().unwrap_or(0);
                match deliveries.get(expected) {
                    None => Ok(()),
                    Some(extra) => Err(format!(
                        "receiver `{}` got a delivery it should not have (run {}, step {}): {}",
                        expect.receiver, extra["run_id"], extra["step"], extra["request_body"]
                    )),
                }
            }
            Step::Callback(callback) => {
                let run = self.latest_run(&callback.pipeline).await?;
                let url = run["steps"][callback.step - 1]["callback_url"]
                    .as_str()
                    .ok_or_else(|| {
                        format!(
                            "the latest run of `{}` has no step {}",
                            callback.pipeline, callback.step
                        )
                    })?
                    .to_owned();
                let (status, answer) = self
                    .exchange(Method::POST, &url, Some(callback.body.clone()))
                    .await?;
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
                if run["status"] != expect.status.as_str() {
                    problems.push(format!(
                        "status: expected {}, got {}",
                        expect.status, run["status"]
                    ));
                }
                if let Some(steps) = &expect.steps {
                    let actual: Vec<&str> = run["steps"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| s["status"].as_str().unwrap_or("?"))
                        .collect();
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
                        run["id"],
                        expect.pipeline,
                        problems.join("; ")
                    ))
                }
            }
            Step::ExpectHistory(expect) => {
                let path = format!(
                    "/v2/repositories/{}/webhook_pipeline/{}/history/?page_size=1000",
                    self.repo,
                    slugify(&expect.pipeline)
                );
                let page = self.call(Method::GET, &path, None, 200).await?;
                let statuses: Vec<&str> = page["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r["status"].as_str().unwrap_or("?"))
                    .collect();
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
            Step::DeletePipeline(target) => {
                let path = format!(
                    "/v2/repositories/{}/webhook_pipeline/{}/",
                    self.repo,
                    slugify(&target.pipeline)
                );
                self.call(Method::DELETE, &path, None, 204).await?;
                Ok(())
            }
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
                let timed_out = run["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["status"] == "timed_out");
                if timed_out {
                    Ok(())
                } else {
                    Err(format!(
                        "run {} of `{}` ended {} without a timed-out step",
                        run["id"], target.pipeline, run["status"]
                    ))
                }
            }
        }
    }
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
