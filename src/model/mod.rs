//! The domain, without I/O: repositories, pipelines, runs and steps, payloads, callbacks, and
//! the chain rules as a pure state machine ([`chain`]).

pub mod callback;
pub mod chain;
pub mod fields;
pub mod ids;
pub mod payload;
pub mod pipeline;
pub mod repository;
pub mod run;
pub mod time;
