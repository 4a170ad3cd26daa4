//! Runs and steps: the history of one push through one pipeline.

use serde::{Deserialize, Serialize};

use super::callback::{Callback, CallbackState};
use super::format::PayloadFormat;
use super::push::PushEvent;
use super::quirks::Quirks;
use super::repository::RepoName;
use super::time::Timestamp;

/// A run's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Some step is still to be delivered or called back.
    Pending,
    /// Every step succeeded.
    Success,
    /// A receiver reported `failure`.
    Failure,
    /// A receiver reported `error`, a delivery failed or a callback timed out.
    Error,
    /// Its pipeline was deleted while it was pending.
    Cancelled,
}

/// A step's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not delivered yet.
    Waiting,
    /// Delivered (or being delivered); its callback is awaited.
    AwaitingCallback,
    /// Its callback said `success` (or, for a last step that expects none, its delivery got 2xx).
    Success,
    /// Its callback said `failure`.
    Failure,
    /// Its callback said `error`.
    Error,
    /// The delivery got a non-2xx/3xx status, a connection error or a timeout.
    DeliveryFailed,
    /// No callback came in time.
    TimedOut,
    /// An earlier step stopped the chain.
    Skipped,
    /// The pipeline was deleted.
    Cancelled,
}

impl std::str::FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
            format!(
                "unknown run status '{s}'; expected pending, success, failure, error or cancelled"
            )
        })
    }
}

/// How a delivery went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryResult {
    /// The response status, when there was a response.
    pub status: Option<u16>,
    /// Why there was no acceptable response (connection refused, timeout, ...).
    pub error: Option<String>,
    /// From sending the request to the end of the response.
    pub duration_ms: u64,
    /// The first 4 KiB of the response body (lossy UTF-8).
    pub response_body: Option<String>,
}

/// A callback as it was received; absent optional fields show as `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// `success`, `failure` or `error`.
    pub state: CallbackState,
    /// Its description.
    pub description: Option<String>,
    /// Its context.
    pub context: Option<String>,
    /// Its link.
    pub target_url: Option<String>,
    /// When it was accepted.
    pub received: Timestamp,
}

impl CallbackRecord {
    /// Records `callback` as accepted at `received`.
    pub fn new(callback: Callback, received: Timestamp) -> CallbackRecord {
        CallbackRecord {
            state: callback.state,
            description: callback.description,
            context: callback.context,
            target_url: callback.target_url,
            received,
        }
    }
}

/// One webhook of the chain within a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The webhook's name.
    pub webhook: String,
    /// Where it is delivered. Written with any password as `***`
    /// ([`crate::model::hook_url::redact`]): a run is history to show, and only pipelines
    /// keep credentials (the state export restores them from there).
    #[serde(serialize_with = "serialize_redacted")]
    pub hook_url: String,
    /// Where it is.
    pub status: StepStatus,
    /// The secret part of its callback URL.
    pub hook_id: String,
    /// The URL its receiver calls back.
    pub callback_url: String,
    /// When the delivery was sent.
    pub delivered_at: Option<Timestamp>,
    /// When the wait for its callback ends (R9), once sent with a callback timeout in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_deadline: Option<Timestamp>,
    /// How the delivery went (absent while in flight).
    pub delivery: Option<DeliveryResult>,
    /// The accepted callback.
    pub callback: Option<CallbackRecord>,
}

/// One push through one pipeline. Only the chain rules ([`crate::model::chain`]) change a
/// run, so its fields are read through methods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Unique for the emulator's life.
    pub(crate) id: u64,
    /// `namespace/name`.
    pub(crate) repository: RepoName,
    /// The pipeline's slug.
    pub(crate) pipeline: String,
    /// The pipeline's internal id.
    pub(crate) pipeline_id: u64,
    /// Copied from the pipeline when the run started.
    pub(crate) expect_final_callback: bool,
    /// The payload shape of its deliveries.
    pub(crate) payload_format: PayloadFormat,
    /// Docker Hub's quirks its deliveries and callbacks follow (the pipeline's, else the
    /// server's, when it started).
    #[serde(default, skip_serializing_if = "Quirks::is_none")]
    pub(crate) quirks: Quirks,
    /// Where it is.
    pub(crate) status: RunStatus,
    /// When it started.
    pub(crate) created: Timestamp,
    /// When it ended.
    pub(crate) finished: Option<Timestamp>,
    /// The push that started it.
    pub(crate) push: PushEvent,
    /// One per webhook of the pipeline, in order.
    pub(crate) steps: Vec<Step>,
}

impl Run {
    /// Unique for the emulator's life.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The repository pushed to.
    pub fn repository(&self) -> &RepoName {
        &self.repository
    }

    /// The pipeline's slug.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The pipeline's internal id.
    pub fn pipeline_id(&self) -> u64 {
        self.pipeline_id
    }

    /// Whether the run waits for the last step's callback (copied from the pipeline).
    pub fn expect_final_callback(&self) -> bool {
        self.expect_final_callback
    }

    /// The payload shape of its deliveries.
    pub fn payload_format(&self) -> PayloadFormat {
        self.payload_format
    }

    /// Docker Hub's quirks its deliveries and callbacks follow.
    pub fn quirks(&self) -> Quirks {
        self.quirks
    }

    /// Where it is.
    pub fn status(&self) -> RunStatus {
        self.status
    }

    /// When it started.
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// When it ended.
    pub fn finished(&self) -> Option<Timestamp> {
        self.finished
    }

    /// The push that started it.
    pub fn push(&self) -> &PushEvent {
        &self.push
    }

    /// One per webhook of the pipeline, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether it is still going.
    pub fn is_pending(&self) -> bool {
        self.status == RunStatus::Pending
    }

    /// Whether this step's delivery is settled: answered, or never to be sent because the
    /// run is over (or there is no such step). A delivery still in flight after its run
    /// ended is not settled yet (it ends within the delivery timeout).
    pub fn delivery_settled(&self, step: usize) -> bool {
        match self.steps.get(step) {
            Some(s) => s.delivery.is_some() || (s.delivered_at.is_none() && !self.is_pending()),
            None => true,
        }
    }

    /// Whether this step's delivery was sent and has not been answered yet.
    pub fn delivery_in_flight(&self, step: usize) -> bool {
        self.steps
            .get(step)
            .is_some_and(|s| s.delivered_at.is_some() && s.delivery.is_none())
    }
}

fn serialize_redacted<S: serde::Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&super::hook_url::redact(url))
}
