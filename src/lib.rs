//! hubmock: a Docker Hub emulator for integration tests.
#![deny(missing_docs)]

pub mod model;
