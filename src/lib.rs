//! hubmock: a Docker Hub emulator for integration tests.
//!
//! It holds repositories and webhook pipelines, fires Docker Hub's webhook payloads on a push,
//! enforces the webhook-chain rules (the next URL is called only after the previous one's
//! callback said `success`), and records a history a test can assert on.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use hubmock::{Hub, PipelineSpec, RepoName};
//!
//! let hub = Hub::start().await;
//! let repo = RepoName::new("acme", "app").unwrap();
//! hub.create_repository("acme", "app").unwrap();
//! // Nothing listens on port 9 (discard): the delivery fails and the run ends with `error`.
//! hub.create_pipeline(&repo, PipelineSpec::new("deploy", &["http://127.0.0.1:9/hook"])).unwrap();
//! let run = &hub.push(&repo, "v1.0.0").unwrap()[0];
//! let run = hub.wait_for_run(run.id, std::time::Duration::from_secs(10)).await.unwrap();
//! assert_eq!(run.status, hubmock::RunStatus::Error);
//! # }
//! ```
//!
//! # Layout
//! - [`model`]: the domain without I/O; [`model::chain`] holds the chain rules R1–R11 as a pure
//!   state machine that everything else drives.
//! - [`store`]: the shared state behind a mutex that is never held across an `.await`.
//! - [`delivery`]: the outbound engine; each delivery in its own task.
//! - [`server`]: the HTTP server and its surfaces (Hub API, callbacks, control API).
//! - [`Hub`]: the emulator as a test double in a Rust test suite.
//! - [`Config`]: options of one instance.
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod delivery;
pub mod error;
pub mod fuzz_receiver;
#[doc(hidden)]
pub mod fuzzing;
mod hub;
pub mod model;
pub mod scenario;
pub mod server;
pub mod store;

pub use config::Config;
pub use error::Error;
pub use hub::Hub;
pub use model::callback::{Callback, CallbackState};
pub use model::payload::{Payload, PayloadFormat, PayloadRepository, PushData, Seconds};
pub use model::pipeline::{Pipeline, PipelineSpec, WebhookSpec};
pub use model::repository::{RepoName, Repository};
pub use model::run::{Run, RunStatus, Step, StepStatus};
pub use store::PushRequest;
