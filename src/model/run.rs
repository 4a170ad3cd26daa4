//! Runs and steps: the history of one push through one pipeline.

use serde::{Deserialize, Serialize};

use super::callback::{Callback, CallbackState};
use super::payload::PayloadFormat;
use super::repository::RepoName;
use super::time::Timestamp;

/// What was pushed: the event that starts runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushEvent {
    /// The tag pushed.
    pub tag: String,
    /// Who pushed.
    pub pusher: String,
    /// Image ids or digests (hubmock makes up one id when a push names none).
    pub images: Vec<String>,
    /// The manifest's media type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// When the push happened.
    pub pushed_at: Timestamp,
}

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
    /// Where it is delivered.
    pub hook_url: String,
    /// Where it is.
    pub status: StepStatus,
    /// The secret part of its callback URL.
    pub hook_id: String,
    /// The URL its receiver calls back.
    pub callback_url: String,
    /// When the delivery was sent.
    pub delivered_at: Option<Timestamp>,
    /// How the delivery went (absent while in flight).
    pub delivery: Option<DeliveryResult>,
    /// The accepted callback.
    pub callback: Option<CallbackRecord>,
}

/// One push through one pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Unique for the emulator's life.
    pub id: u64,
    /// `namespace/name`.
    pub repository: RepoName,
    /// The pipeline's slug.
    pub pipeline: String,
    /// The pipeline's internal id.
    pub pipeline_id: u64,
    /// Copied from the pipeline when the run started.
    pub expect_final_callback: bool,
    /// The payload shape of its deliveries.
    pub payload_format: PayloadFormat,
    /// Where it is.
    pub status: RunStatus,
    /// When it started.
    pub created: Timestamp,
    /// When it ended.
    pub finished: Option<Timestamp>,
    /// The push that started it.
    pub push: PushEvent,
    /// One per webhook of the pipeline, in order.
    pub steps: Vec<Step>,
}

impl Run {
    /// Whether it is still going.
    pub fn is_pending(&self) -> bool {
        self.status == RunStatus::Pending
    }

    /// Whether this step's delivery was sent and has not been answered yet.
    pub fn delivery_in_flight(&self, step: usize) -> bool {
        self.steps
            .get(step)
            .is_some_and(|s| s.delivered_at.is_some() && s.delivery.is_none())
    }
}
