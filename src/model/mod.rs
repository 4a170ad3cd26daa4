//! The domain, without I/O: repositories, pipelines, pushes, runs and steps, payloads,
//! callbacks, and the chain rules as a pure state machine ([`chain`]).
//!
//! The modules form a tree with no cycles: `time`, `ids`, `fields` at the bottom; `format`,
//! `push`, `repository`, `callback`, `pipeline` on them, `tag` on `push` and `repository`;
//! `payload` and `run` above; `chain`
//! on top. Nothing here reads a socket, a clock other than [`time::Timestamp::now`] passed in
//! by callers, or a request body of a particular surface (those parsers live in
//! [`crate::server::wire`]).

pub mod callback;
pub mod chain;
pub mod fields;
pub mod format;
pub mod hook_url;
pub mod ids;
pub mod payload;
pub mod pipeline;
pub mod push;
pub mod quirks;
pub mod repository;
pub mod run;
pub mod tag;
pub mod time;
