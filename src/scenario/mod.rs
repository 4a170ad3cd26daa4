//! YAML scenarios: a Docker Hub interaction described in a file and executed end to end against
//! a fresh emulator, with scripted receivers. `scenarios/README.md` documents the format.

pub mod expect;
pub mod format;
mod load;
pub mod receiver;
pub mod report;
mod runner;

pub use format::Scenario;
pub use load::{collect, load, parse, Loaded, ScenarioError};
pub use runner::{run, substitute_env, Failure, Outcome, EXPECT_TIMEOUT};
