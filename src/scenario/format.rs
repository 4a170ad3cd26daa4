//! The scenario file format: what a YAML scenario may say. `scenarios/README.md` documents
//! every key; this module is its single source of truth.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub use serde_saphyr::Spanned;

/// One scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows, as a sentence.
    pub name: String,
    /// Longer explanation (ignored by the runner).
    #[serde(default)]
    pub description: Option<String>,
    /// The repository, `namespace/name`; created before the first step.
    pub repository: String,
    /// Emulator options for this scenario.
    #[serde(default)]
    pub settings: Settings,
    /// Pipelines created before the first step.
    #[serde(default)]
    pub pipelines: Vec<Spanned<PipelineDef>>,
    /// Receivers by name: scripted ones hubmock starts, or external URLs.
    #[serde(default)]
    pub receivers: BTreeMap<String, Spanned<ReceiverDef>>,
    /// The delivery fault plan's rules (duplicates, reordering, retries, delays, forged
    /// posts); its seed is `settings.fault_seed`.
    #[serde(default)]
    pub faults: Vec<crate::faults::FaultRule>,
    /// What happens, in order.
    pub steps: Vec<Spanned<Step>>,
}

impl Scenario {
    /// Its fault plan: `faults` with `settings.fault_seed`.
    pub fn fault_plan(&self) -> crate::faults::FaultPlan {
        crate::faults::FaultPlan {
            seed: self.settings.fault_seed,
            faults: self.faults.clone(),
        }
    }
}

/// Emulator options a scenario may set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `legacy` (default), `current` or `observed`.
    #[serde(default)]
    pub payload_format: Option<crate::PayloadFormat>,
    /// Docker Hub's quirks for the whole emulator, as `--quirks` takes them (`hub-2020`,
    /// `no-tag,tag-visible-after=1s`); a profile's payload format applies unless
    /// `payload_format` names one.
    #[serde(default)]
    pub quirks: Option<crate::model::quirks::QuirkSpec>,
    /// The seed of the fault plan (`faults`): the same seed makes the same faults.
    #[serde(default)]
    pub fault_seed: u64,
    /// How long a delivery may take (default 10s).
    #[serde(default)]
    pub delivery_timeout: Option<Wait>,
    /// How long a step may await its callback (default: forever).
    #[serde(default)]
    pub callback_timeout: Option<Wait>,
    /// How long each `expect_*` step waits for what it expects (default 5s).
    #[serde(default)]
    pub expect_timeout: Option<Wait>,
}

/// A pipeline to create.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    /// Its name (its slug is derived from it).
    pub name: String,
    /// Receiver names, in chain order.
    pub webhooks: Vec<String>,
    /// Whether the run waits for the last callback (default true).
    #[serde(default = "yes")]
    pub expect_final_callback: bool,
    /// Payload format for this pipeline.
    #[serde(default)]
    pub payload_format: Option<crate::PayloadFormat>,
    /// Docker Hub's quirks for this pipeline, replacing the settings' (`hub-2026`, `no-tag`).
    #[serde(default)]
    pub quirks: Option<crate::model::quirks::QuirkSpec>,
}

fn yes() -> bool {
    true
}

/// A receiver: scripted (hubmock starts it) or external (`url`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverDef {
    /// An external receiver's URL; `${VAR}` is replaced from the environment.
    #[serde(default)]
    pub url: Option<String>,
    /// Status to answer deliveries with (default 200).
    #[serde(default)]
    pub answer: Option<u16>,
    /// Body to answer with.
    #[serde(default)]
    pub body: Option<String>,
    /// Time to wait before answering.
    #[serde(default)]
    pub delay: Option<Wait>,
    /// Misbehaviour instead of an answer.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Callbacks to send for each delivery, in order.
    #[serde(default)]
    pub callback: Option<OneOrMany<CallbackDef>>,
}

/// What a misbehaving receiver does instead of answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Never answers (the delivery times out).
    Hang,
    /// Closes the connection without answering.
    Drop,
    /// Answers bytes that are not HTTP.
    Garbage,
}

/// One value or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// Several.
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    /// As a list.
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

/// When a scripted receiver calls back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// After answering the delivery (the common case).
    #[default]
    After,
    /// Before answering the delivery (as schickling/docker-hook does).
    Before,
}

/// A callback a scripted receiver sends.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackDef {
    /// `success`, `failure` or `error`.
    #[serde(default)]
    pub state: Option<String>,
    /// Description (at most 255 characters for Docker Hub).
    #[serde(default)]
    pub description: Option<String>,
    /// Context (at most 100 characters).
    #[serde(default)]
    pub context: Option<String>,
    /// Link with details.
    #[serde(default)]
    pub target_url: Option<String>,
    /// A raw JSON body instead of the fields above (to send an invalid callback).
    #[serde(default)]
    pub body: Option<Value>,
    /// Before or after answering the delivery.
    #[serde(default)]
    pub when: When,
    /// Time to wait before calling back.
    #[serde(default)]
    pub delay: Option<Wait>,
    /// The HTTP status the emulator must answer (default 200).
    #[serde(default)]
    pub expect_status: Option<u16>,
}

impl CallbackDef {
    /// The JSON body to send.
    pub fn body(&self) -> Value {
        if let Some(body) = &self.body {
            return body.clone();
        }
        let mut body = serde_json::Map::new();
        let fields = [
            ("state", &self.state),
            ("description", &self.description),
            ("context", &self.context),
            ("target_url", &self.target_url),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                body.insert(key.to_owned(), Value::String(value.clone()));
            }
        }
        Value::Object(body)
    }
}

/// One step of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Push a tag to the repository.
    Push(PushStep),
    /// Push a generated image through the registry API.
    PushImage(PushImageStep),
    /// Expect the receiver to get a delivery whose payload contains `payload`.
    ExpectDelivery(ExpectDelivery),
    /// Expect the receiver to get no delivery beyond those already expected.
    ExpectNoDelivery(ReceiverRef),
    /// Send a callback by hand and check the emulator's answer.
    Callback(ManualCallback),
    /// Expect a run's status and step statuses.
    ExpectRun(ExpectRun),
    /// Expect a pipeline's history through the Hub API.
    ExpectHistory(ExpectHistory),
    /// Create a pipeline through the Hub API.
    CreatePipeline(CreatePipeline),
    /// Delete a pipeline through the Hub API.
    DeletePipeline(PipelineRef),
    /// Wait until a pipeline's latest run ends by a callback timeout.
    WaitForTimeout(PipelineRef),
}

impl Step {
    /// The step's key, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Push(_) => "push",
            Step::PushImage(_) => "push_image",
            Step::ExpectDelivery(_) => "expect_delivery",
            Step::ExpectNoDelivery(_) => "expect_no_delivery",
            Step::Callback(_) => "callback",
            Step::ExpectRun(_) => "expect_run",
            Step::ExpectHistory(_) => "expect_history",
            Step::CreatePipeline(_) => "create_pipeline",
            Step::DeletePipeline(_) => "delete_pipeline",
            Step::WaitForTimeout(_) => "wait_for_timeout",
        }
    }
}

/// `push:`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushStep {
    /// The tag (default `latest`).
    #[serde(default)]
    pub tag: Option<String>,
    /// Who pushed.
    #[serde(default)]
    pub pusher: Option<String>,
    /// Image ids or digests.
    #[serde(default)]
    pub images: Option<Vec<String>>,
    /// Manifest media type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// More tags of the same image (an automated build): one more post each.
    #[serde(default)]
    pub extra_tags: Vec<String>,
}

/// `push_image:`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushImageStep {
    /// The registry name (default: the scenario's repository).
    #[serde(default)]
    pub repository: Option<String>,
    /// The tag (default `latest`).
    #[serde(default)]
    pub tag: Option<String>,
    /// `os/architecture[/variant]` each; two or more push an index (default one
    /// `linux/amd64` image).
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
    /// Docker's media types instead of OCI's.
    #[serde(default)]
    pub docker: bool,
    /// Who pushes (`push_data.pusher`; default the repository's namespace).
    #[serde(default)]
    pub user: Option<String>,
}

impl PushImageStep {
    /// The tag pushed.
    pub fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

/// `expect_delivery:`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDelivery {
    /// The receiver.
    pub receiver: String,
    /// A JSON subset the payload must contain.
    #[serde(default)]
    pub payload: Option<Value>,
    /// JSON types by dotted path: `push_data.pushed_at: float`.
    #[serde(default)]
    pub types: BTreeMap<String, JsonType>,
    /// Match the first delivery not matched yet that fits, in whatever order the deliveries
    /// came (the posts of one push go out concurrently), instead of the next one.
    #[serde(default)]
    pub any_order: bool,
}

/// A JSON type an `expect_delivery` can require at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    /// A string.
    String,
    /// An integer number (`1417566161`).
    Integer,
    /// A number written with a fraction or exponent (`1.417566161e+09`).
    Float,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array,
    /// An object.
    Object,
    /// `null`.
    Null,
    /// The key is not there.
    Absent,
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Float => "float",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Array => "array",
            JsonType::Object => "object",
            JsonType::Null => "null",
            JsonType::Absent => "absent",
        };
        f.write_str(name)
    }
}

/// `{receiver: name}`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverRef {
    /// The receiver.
    pub receiver: String,
}

/// `{pipeline: name}`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineRef {
    /// The pipeline's name.
    pub pipeline: String,
}

/// `callback:`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualCallback {
    /// The pipeline whose latest run is called back.
    pub pipeline: String,
    /// The step, counted from 1.
    pub step: usize,
    /// The JSON body.
    pub body: Value,
    /// The HTTP status the emulator must answer (default 200).
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// A JSON subset the answer must contain.
    #[serde(default)]
    pub expect_body: Option<Value>,
}

/// `expect_run:`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRun {
    /// The pipeline whose latest run is checked.
    pub pipeline: String,
    /// The run's status; waited for unless `pending`.
    pub status: String,
    /// Each step's status, in order.
    #[serde(default)]
    pub steps: Option<Vec<String>>,
}

/// `expect_history:`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectHistory {
    /// The pipeline.
    pub pipeline: String,
    /// How many runs.
    #[serde(default)]
    pub count: Option<usize>,
    /// The runs' statuses, newest first.
    #[serde(default)]
    pub statuses: Option<Vec<String>>,
}

/// `create_pipeline:`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePipeline {
    /// Its name.
    pub name: String,
    /// Receiver names, in chain order.
    pub webhooks: Vec<String>,
    /// Whether the run waits for the last callback (default true).
    #[serde(default = "yes")]
    pub expect_final_callback: bool,
    /// Payload format for this pipeline.
    #[serde(default)]
    pub payload_format: Option<crate::PayloadFormat>,
    /// Docker Hub's quirks for this pipeline.
    #[serde(default)]
    pub quirks: Option<crate::model::quirks::QuirkSpec>,
    /// The HTTP status the Hub API must answer (default 201).
    #[serde(default)]
    pub expect_status: Option<u16>,
}

impl CreatePipeline {
    /// The pipeline it creates.
    pub fn pipeline(&self) -> PipelineDef {
        PipelineDef {
            name: self.name.clone(),
            webhooks: self.webhooks.clone(),
            expect_final_callback: self.expect_final_callback,
            payload_format: self.payload_format,
            quirks: self.quirks.clone(),
        }
    }
}

/// A duration written as `200ms`, `5s`, `1m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Wait).map_err(|err| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({err}); write e.g. 200ms, 5s or 1m"
            ))
        })
    }
}
