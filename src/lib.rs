//! hubmock: a Docker Hub emulator for integration tests.
//!
//! It holds repositories and webhook pipelines, fires Docker Hub's webhook payloads on a push,
//! enforces the webhook-chain rules (the next URL is called only after the previous one's
//! callback said `success`), and records a history a test can assert on.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use hubmock::{Expectation, Hub, PipelineSpec, RepoName, RunStatus};
//!
//! let hub = Hub::builder().start().await;
//! let repo = RepoName::new("acme", "app").unwrap();
//! hub.create_repository("acme", "app").unwrap();
//! // Nothing listens on port 9 (discard): the delivery fails and the run ends with `error`.
//! let hook = "http://127.0.0.1:9/hook";
//! hub.create_pipeline(&repo, PipelineSpec::new("deploy", &[hook])).unwrap();
//! let run = &hub.push(&repo, "v1.0.0").unwrap()[0];
//! // Checked when `hub` is dropped, with a panic that says what was seen instead.
//! hub.expect(Expectation::deliveries_to(hook).times(1));
//! hub.expect(Expectation::run_ends(run.id(), RunStatus::Error));
//! let run = hub.wait_for_run(run.id(), Duration::from_secs(10)).await.unwrap();
//! assert_eq!(run.status(), RunStatus::Error);
//! # }
//! ```
//!
//! # Layout
//! - [`model`]: the domain without I/O. [`model::chain`] holds the chain rules R1–R11 as a
//!   pure state machine (events in, effects out); nothing else decides a step's fate.
//! - `store` (private): the shared state behind one mutex, changed only through its commit
//!   point, which hands the chain's effects to the engine and wakes long-polls.
//! - `delivery` (private): the outbound engine; carries out the chain's effects (POSTs, each
//!   in its own task, and callback timers).
//! - [`server`]: the HTTP server on one port; the router picks a route before reading the
//!   body; one file per surface (Hub API, callbacks, control API, registry, the settings
//!   pages, whose HTML is in `server::pages`); [`server::wire`] holds the JSON formats.
//! - [`registry`]: the OCI registry's content without HTTP: digests, manifests, the blob
//!   store on disk and the index of what each repository holds. A manifest pushed by tag
//!   becomes a push event through the store.
//! - [`Hub`], [`HubBuilder`], [`Expectation`]: the emulator as a test double in a Rust test
//!   suite.
//! - [`ApiClient`]: a typed client of a running emulator's control API and Hub API, for
//!   callers that reach it over HTTP (the scenario runner, the tests, a hubmock in another
//!   process).
//! - [`client`]: the outbound HTTP client the engine and the scenario runner share.
//! - [`net`]: the one accept loop behind every listener (server, receivers, tests).
//! - [`scenario`]: YAML scenarios: format, loader, runner, reports.
//! - [`seed`]: seed files (`serve --config`): users, repositories and pipelines an emulator
//!   starts with, checked with the Hub API's own validators and applied through the store.
//! - `yaml` (private): what both YAML loaders share; its [`FileError`] names file, line and
//!   column.
//! - [`fuzz_receiver`]: `hubmock fuzz-receiver`, generated payloads against a user's receiver.
//! - `fuzzing` (with the `fuzzing` feature): the bodies of the cargo-fuzz targets in `fuzz/`.
//! - `logging` (private): what the library logs, as `tracing` events (requests, deliveries,
//!   callbacks); never a secret. Only the binary installs a subscriber.
//! - [`Config`], [`Error`]: options of one instance; the domain's errors.
//!
//! ARCHITECTURE.md at the repository's root is the longer map: where each rule lives and
//! what each module may not touch.
#![deny(missing_docs)]

mod api_client;
pub mod client;
pub mod config;
mod delivery;
pub mod error;
pub mod faults;
pub mod fuzz_receiver;
// Only the fuzz crate and the corpus replay (tests/fuzz_replay.rs, through the self
// dev-dependency in Cargo.toml) need the target bodies; a user of the library never does.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod hub;
mod logging;
pub mod model;
pub mod net;
pub mod registry;
pub mod scenario;
pub mod seed;
pub mod server;
mod store;
pub mod tls;
pub mod waiting;
mod yaml;

/// The README's examples, compiled and run with the crate's doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use api_client::{ApiClient, ApiError, RUN_STATUSES, STEP_STATUSES};
pub use config::{Config, DELIVERY_LOG_LIMIT, HISTORY_LIMIT};
pub use error::{Error, Missing};
pub use hub::{Expectation, Hub, HubBuilder, RegistryPush, RegistryPushed};
pub use model::callback::{Callback, CallbackState};
pub use model::format::PayloadFormat;
pub use model::payload::{Payload, PayloadRepository, PushData, Seconds};
pub use model::pipeline::{Pipeline, PipelineSpec, WebhookSpec};
pub use model::push::{PushEvent, PushRequest};
pub use model::repository::{RepoName, Repository};
pub use model::run::{Run, RunStatus, Step, StepStatus};
pub use model::tag::{PlatformImage, PushEvents, Tag, TagImage, TagPush, TagRecord};
pub use seed::{Applied, SeedFile};
pub use server::wire::PipelineView;
pub use store::{DeliveryFilter, DeliveryRecord, OpenError, RunFilter, INTERRUPTED, MAX_ID};
pub use yaml::FileError;
