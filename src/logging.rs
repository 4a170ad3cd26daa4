//! What the library logs: `tracing` events with fields, under four targets. The library only
//! emits them; the `hubmock` binary installs the subscriber that writes them to stderr. A
//! program that uses [`crate::Hub`] gets them only if it installs a subscriber itself.
//!
//! - `hubmock::server`, info: listening, shutting down.
//! - `hubmock::request`, info: each request answered (`method`, `path`, `status`,
//!   `elapsed_ms`, up to the answer's head); warn: a request refused with 508 because it is
//!   hubmock's own delivery (a hook URL points back at hubmock); info: each tag pushed
//!   through the registry (`repository`, `tag`, `digest`, `runs` started).
//! - `hubmock::delivery`, info: each delivery made (`run`, `step`, `url`, then `status` or
//!   `error`, `elapsed_ms`); debug: one about to be sent, or dropped because its run is over.
//! - `hubmock::callback`, info: each callback applied (`run`, `step`, `state`, `run_status`),
//!   each refused (`reason`), each step whose callback timed out (R9).
//!
//! **Nothing logged carries a secret**: no header values (a token travels in `Authorization`),
//! no request or callback bodies (a login carries a password), no query strings, hook URLs
//! with their password as `***` ([`crate::model::hook_url::redact`]), and callback paths with
//! their hook id (which lets whoever knows it decide the step) as `***`.

use std::time::Duration;

use serde::Serialize;

/// Start and stop of the server.
pub(crate) const SERVER: &str = "hubmock::server";
/// Requests served.
pub(crate) const REQUEST: &str = "hubmock::request";
/// Outbound deliveries.
pub(crate) const DELIVERY: &str = "hubmock::delivery";
/// Callbacks received and callback timeouts.
pub(crate) const CALLBACK: &str = "hubmock::callback";

/// A status or state as the JSON APIs spell it (`awaiting_callback`, `success`).
pub(crate) fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// Milliseconds with microseconds as decimals: a fast request shows as `0.153`, not `0`.
pub(crate) fn millis(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::run::StepStatus;

    #[test]
    fn names_are_the_wire_names_and_times_keep_microseconds() {
        assert_eq!(
            wire_name(&StepStatus::AwaitingCallback),
            "awaiting_callback"
        );
        assert_eq!(millis(Duration::from_micros(153)), 0.153);
        assert_eq!(millis(Duration::from_secs(2)), 2000.0);
    }
}
