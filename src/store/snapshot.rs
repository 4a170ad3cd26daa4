//! The whole state at once: export (`GET /_hubmock/state`), import (`PUT`) and reset.
//! Exports copy the state under the lock and serialise after letting go of it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::deliveries::DeliveryRecord;
use super::state::{Counters, RepoEntry, State, MAX_ID};
use super::Store;
use crate::error::Error;
use crate::model::chain::callback_url;
use crate::model::repository::RepoName;
use crate::model::run::Run;
use crate::model::tag::{check_tag, Tag};

/// The version of the state document this hubmock writes and reads.
const VERSION: u32 = 1;

/// The state document, as written.
#[derive(Serialize)]
struct Export {
    version: u32,
    repositories: Vec<RepoEntry>,
    runs: Vec<std::sync::Arc<Run>>,
    deliveries: VecDeque<DeliveryRecord>,
}

/// The state document, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    version: u32,
    repositories: Vec<RepoEntry>,
    runs: Vec<Run>,
    #[serde(default)]
    deliveries: VecDeque<DeliveryRecord>,
}

impl Store {
    /// Forgets everything but the configured users and their login tokens (a suite logs in once
    /// and resets between tests), the registry's blobs, manifests and uploads included. Ids
    /// keep counting, so an old run id never names a new run.
    pub fn reset(&self) {
        let _ = self.commit(|state, changes| {
            let fresh = State {
                ids: state.ids,
                tokens: std::mem::take(&mut state.tokens),
                ..State::default()
            };
            changes.retire(std::mem::replace(state, fresh));
            Ok(())
        });
        self.shared.registry.clear();
    }

    /// The whole state as JSON text, written straight from the records so that delivery
    /// bodies keep the exact form they were sent in.
    pub fn export_json(&self) -> Box<serde_json::value::RawValue> {
        let export = self.read(|state| Export {
            version: VERSION,
            repositories: state.repositories.values().cloned().collect(),
            runs: state.runs.values().cloned().collect(),
            deliveries: state.deliveries.clone(),
        });
        serde_json::value::to_raw_value(&export).expect("the state always serialises")
    }

    /// The whole state as a JSON value (to compare or edit; numbers keep their value, not
    /// their written form — [`Store::export_json`] keeps both).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn export(&self) -> Value {
        serde_json::from_str(self.export_json().get()).expect("the export is valid JSON")
    }

    /// Replaces the whole state with an export. Runs awaiting a callback keep awaiting it; a
    /// step with a `callback_deadline` gets its timer back in the same commit (the commit
    /// point resumes the timers of a replaced state, see [`Store::resume`]).
    pub fn import(&self, value: &Value) -> Result<(), Error> {
        let fresh = self.parse_snapshot(value)?;
        self.commit(|state, changes| {
            let mut fresh = fresh;
            fresh.ids = Counters {
                pipeline: state.ids.pipeline.max(fresh.ids.pipeline),
                run: state.ids.run.max(fresh.ids.run),
                delivery: state.ids.delivery.max(fresh.ids.delivery),
                tag: state.ids.tag.max(fresh.ids.tag),
            };
            fresh.tokens = std::mem::take(&mut state.tokens);
            changes.retire(std::mem::replace(state, fresh));
            changes.imported = true;
            Ok(())
        })
    }

    /// Checks a state document and builds the state it describes (outside the lock); its
    /// counters are the largest ids it holds.
    fn parse_snapshot(&self, value: &Value) -> Result<State, Error> {
        let snapshot: Snapshot = serde_json::from_value(value.clone())
            .map_err(|err| Error::BadRequest(format!("Invalid state document: {err}")))?;
        if snapshot.version != VERSION {
            return Err(Error::field(
                "version",
                format!(
                    "Unsupported state version {}; this hubmock reads version {VERSION}.",
                    snapshot.version
                ),
            ));
        }
        // Ids keep counting from the largest imported one; bounding them keeps the counters
        // from overflowing and the ids exact in JavaScript clients.
        let too_large = |what: &str, id: u64| {
            Error::field(
                what,
                format!("Id {id} is larger than {MAX_ID}, the largest id hubmock hands out."),
            )
        };
        for pipeline in snapshot.repositories.iter().flat_map(|e| &e.pipelines) {
            if pipeline.id > MAX_ID {
                return Err(too_large("repositories", pipeline.id));
            }
        }
        for run in &snapshot.runs {
            if run.id() > MAX_ID || run.pipeline_id() > MAX_ID {
                return Err(too_large("runs", run.id().max(run.pipeline_id())));
            }
        }
        if let Some(record) = snapshot.deliveries.iter().find(|d| d.id > MAX_ID) {
            return Err(too_large("deliveries", record.id));
        }
        let mut fresh = State::default();
        for entry in snapshot.repositories {
            let name = entry.repository.repo_name();
            RepoName::new(&name.namespace, &name.name)?;
            check_tags(&name, &entry.tags)?;
            if let Some(tag) = entry.tags.iter().find(|t| t.id > MAX_ID) {
                return Err(too_large("repositories", tag.id));
            }
            fresh.repositories.insert(name, entry);
        }
        for mut run in snapshot.runs {
            // Callback URLs name this emulator, wherever the state was exported from.
            let repository = run.repository().clone();
            for step in &mut run.steps {
                step.callback_url =
                    callback_url(&self.shared.public_url, &repository, &step.hook_id);
            }
            fresh.insert_run(run);
        }
        // Runs of deleted pipelines count too: a new pipeline must not inherit their history.
        fresh.ids = Counters {
            pipeline: fresh
                .repositories
                .values()
                .flat_map(|e| e.pipelines.iter().map(|p| p.id))
                .chain(fresh.runs.values().map(|r| r.pipeline_id()))
                .max()
                .unwrap_or(0),
            run: fresh.runs.keys().copied().max().unwrap_or(0),
            delivery: snapshot.deliveries.iter().map(|d| d.id).max().unwrap_or(0),
            tag: fresh
                .repositories
                .values()
                .flat_map(|e| e.tags.iter().map(|t| t.id))
                .max()
                .unwrap_or(0),
        };
        fresh.deliveries = snapshot.deliveries;
        fresh.count_pending();
        Ok(fresh)
    }
}

/// A repository's tags as a state document gives them: valid names, each once (a tag is
/// found by its name).
fn check_tags(repository: &RepoName, tags: &[Tag]) -> Result<(), Error> {
    for (i, tag) in tags.iter().enumerate() {
        let problem = match check_tag(tag.name()) {
            Err(message) => Some(message.to_owned()),
            Ok(()) if tags[..i].iter().any(|t| t.name() == tag.name()) => {
                Some("it appears twice; a repository has one record per tag".to_owned())
            }
            Ok(()) => tag.last.check().err().map(|e| e.to_json().to_string()),
        };
        if let Some(problem) = problem {
            return Err(Error::field(
                "repositories",
                format!("Repository {repository}, tag {:?}: {problem}", tag.name()),
            ));
        }
    }
    Ok(())
}
