//! The deliveries log: every outbound request as `/_hubmock/deliveries` shows it, bounded by
//! [`Config::delivery_log_limit`](crate::Config), and the long-poll on it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::State;
use super::Store;
use crate::model::payload::Payload;
use crate::model::run::DeliveryResult;
use crate::model::time::Timestamp;

/// One delivery for the engine to make.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// The run.
    pub run_id: u64,
    /// The step (0-based).
    pub step: usize,
    /// The step's hook id: names the step even after a reset or an import reused its run id.
    pub hook_id: String,
    /// The run's repository, `namespace/name` (what fault plans filter on).
    pub repository: String,
    /// The run's pipeline: its slug and internal id.
    pub pipeline: (String, u64),
    /// Where to POST.
    pub url: String,
    /// What to POST.
    pub payload: Payload,
}

impl Dispatch {
    /// The log record of this delivery: sent at `sent` with these headers and body, ending as
    /// `result`. Its id is given when the store records it.
    pub fn record(
        &self,
        sent: Timestamp,
        request_headers: BTreeMap<String, String>,
        request_body: Box<serde_json::value::RawValue>,
        result: DeliveryResult,
    ) -> DeliveryRecord {
        DeliveryRecord {
            id: 0,
            run_id: self.run_id,
            step: self.step,
            // The log shows where it went, never a password.
            url: crate::model::hook_url::redact(&self.url),
            sent,
            request_headers,
            request_body,
            result,
            fault: None,
        }
    }
}

/// One outbound request, as `/_hubmock/deliveries` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Sequence number.
    pub id: u64,
    /// The run it belongs to.
    pub run_id: u64,
    /// The step (0-based).
    pub step: usize,
    /// Where it went.
    pub url: String,
    /// When it was sent.
    pub sent: Timestamp,
    /// The request headers.
    pub request_headers: BTreeMap<String, String>,
    /// The request body, exactly as sent.
    pub request_body: Box<serde_json::value::RawValue>,
    /// How it went.
    #[serde(flatten)]
    pub result: DeliveryResult,
    /// Set when a fault plan made or changed this delivery: which fault, and which delivery
    /// it repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::faults::FaultNote>,
}

/// Which outbound requests to list.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only this run's.
    pub run: Option<u64>,
    /// Only those sent to this URL.
    pub url: Option<String>,
}

impl DeliveryFilter {
    fn matches(&self, record: &DeliveryRecord) -> bool {
        self.run.is_none_or(|id| record.run_id == id)
            && self.url.as_ref().is_none_or(|url| &record.url == url)
    }
}

/// Appends a record with the next id, dropping the oldest past `limit` (0: keep none); answers
/// the last one dropped, for the caller to free after the lock.
pub(crate) fn log(
    state: &mut State,
    mut record: DeliveryRecord,
    limit: usize,
) -> Option<DeliveryRecord> {
    if limit == 0 {
        state.ids.delivery += 1;
        return None;
    }
    let mut dropped = None;
    while state.deliveries.len() >= limit {
        dropped = state.deliveries.pop_front();
    }
    state.ids.delivery += 1;
    record.id = state.ids.delivery;
    state.deliveries.push_back(record);
    dropped
}

impl Store {
    /// Records a post a fault plan added to a delivery (a duplicate, a retry, a forged post):
    /// logged with its run and step, changing nothing else. Answers its log id, `None` when
    /// its run is gone (a reset, an import).
    pub fn log_extra(&self, dispatch: &Dispatch, record: DeliveryRecord) -> Option<u64> {
        let limit = self.shared.config.delivery_log_limit;
        let mut dropped = None;
        let id = self
            .commit(|state, changes| {
                if !state.is_current(dispatch.run_id, dispatch.step, &dispatch.hook_id) {
                    return Ok(None);
                }
                dropped = log(state, record, limit);
                changes.logged = true;
                let key = (dispatch.run_id, dispatch.step);
                if let Some(left) = state.fault_posts.get_mut(&key) {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        state.fault_posts.remove(&key);
                    }
                }
                // Whoever waits for the run looks again (the run itself is unchanged).
                changes.wake(dispatch.run_id);
                Ok(Some(state.ids.delivery))
            })
            .unwrap_or(None);
        drop(dropped);
        id
    }

    /// Outbound requests, oldest first, optionally for one run only.
    pub fn deliveries(&self, run_id: Option<u64>) -> Vec<DeliveryRecord> {
        self.deliveries_matching(&DeliveryFilter {
            run: run_id,
            url: None,
        })
    }

    /// Outbound requests matching `filter`, oldest first.
    pub fn deliveries_matching(&self, filter: &DeliveryFilter) -> Vec<DeliveryRecord> {
        self.read(|state| {
            state
                .deliveries
                .iter()
                .filter(|d| filter.matches(d))
                .cloned()
                .collect()
        })
    }

    /// Waits until at least `min` recorded requests match `filter`, or `timeout` passes (or the
    /// server shuts down); answers those that match then.
    pub async fn wait_for_deliveries(
        &self,
        filter: &DeliveryFilter,
        min: usize,
        timeout: Duration,
    ) -> Vec<DeliveryRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut stopping = false;
        loop {
            // Register before looking, so a delivery recorded in between still wakes us.
            let notified = self.shared.watchers.delivered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = self.deliveries_matching(filter);
            if found.len() >= min || tokio::time::Instant::now() >= deadline || stopping {
                return found;
            }
            // A shutdown answers what was found so far.
            tokio::select! {
                _ = tokio::time::timeout_at(deadline, notified) => {}
                _ = self.stopped_waiting() => stopping = true,
            }
        }
    }
}
