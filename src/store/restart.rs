//! Opening a store over a data directory (`--data-dir`): the state is rebuilt from the
//! snapshot and the journal, then what was under way when the last process stopped is taken
//! up again, each one documented way:
//!
//! - a step whose delivery was being POSTed (its "sending" record is on disk, its outcome is
//!   not) is recorded as **interrupted**: a delivery failure with that error, never sent a
//!   second time, since the receiver may have got it (R3 then decides the run);
//! - a step queued but not yet sent is delivered now;
//! - a step awaiting its callback keeps awaiting it, and its callback timeout resumes with the
//!   time that was left when the process was last known alive (the journal notes that at
//!   least every 30 seconds, and at a clean stop): the downtime does not count against it.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::persist::{Entry, Journal, OpenError, Recovered};
use super::state::State;
use super::{Store, Work};
use crate::config::Config;
use crate::logging;
use crate::model::run::DeliveryResult;
use crate::model::time::Timestamp;
use crate::registry::{BlobStore, Registry, RegistryImage, Replay};

/// The error a delivery in flight at a crash is recorded with.
pub const INTERRUPTED: &str =
    "interrupted: hubmock stopped while this delivery was being sent; it was not sent again";

/// How many journal bytes are written between two snapshots, by default.
pub const SNAPSHOT_BYTES: u64 = 64 * 1024 * 1024;

/// What a data directory holds, read back by [`Store::load`].
pub(crate) struct Loaded {
    pub(crate) state: State,
    pub(crate) registry: Registry,
    /// The journal, ready for more.
    pub(crate) journal: Journal,
    /// The last moment the previous process is known to have been alive.
    pub(crate) last_alive: Option<Timestamp>,
    /// How many journal bytes were read after the snapshot.
    pub(crate) replayed: u64,
}

impl Store {
    /// A store over the data directory `dir`: its state and registry as they were, the work
    /// they had under way queued again for the engine (see the module documentation). Fails
    /// with an error that names the file and says what to do when the directory is locked by
    /// another process, written by a newer hubmock, or damaged.
    pub fn open(
        config: Config,
        public_url: &str,
        dir: &Path,
    ) -> Result<(Store, mpsc::UnboundedReceiver<Work>), OpenError> {
        let loaded = Store::load(&config, dir)?;
        // Past `--snapshot-bytes` of journal a snapshot is written now, before anything is
        // served: one written in the background can be cut off by the next crash, and a
        // process killed often enough would otherwise pile up journals that every start reads.
        let compact = loaded.replayed > config.snapshot_bytes;
        let (store, queue) = Store::with_parts(
            config,
            public_url,
            loaded.state,
            loaded.registry,
            Some(loaded.journal),
        );
        store.resume_after_restart(loaded.last_alive.unwrap_or_else(Timestamp::now));
        if compact {
            let started = std::time::Instant::now();
            store.snapshot_now();
            tracing::info!(
                target: logging::SERVER,
                "the journals held {} bytes since the last snapshot; a new snapshot was written \
                 before serving (in {:?})",
                loaded.replayed,
                started.elapsed()
            );
        }
        Ok((store, queue))
    }

    /// The state and registry a data directory holds, as the last process left them, and its
    /// journal ready for more.
    pub(crate) fn load(config: &Config, dir: &Path) -> Result<Loaded, OpenError> {
        let blobs = BlobStore::at(dir.join("registry"));
        let blob_dirs = blobs.blob_dirs().map_err(|error| OpenError::Io {
            what: "create the registry's directory".to_owned(),
            path: dir.join("registry"),
            error,
        })?;
        let mut opened = Journal::open(dir, config.snapshot_bytes, blob_dirs)?;
        let (mut state, registry_image) = match opened.image.take() {
            Some(image) => image.into_state(),
            None => (State::default(), RegistryImage::default()),
        };
        let mut replay = Replay::new(registry_image);
        let mut settled = std::collections::HashSet::new();
        // Each record is applied as it is read: a journal is never held in memory whole.
        let (journal, recovered) = opened.replay(|entry| match entry {
            Entry::State(delta) => {
                settled.extend(delta.settles.iter().copied());
                if delta.reset {
                    // A reset clears the registry too, in the same record.
                    replay = Replay::new(RegistryImage::default());
                }
                delta.apply(&mut state, config.delivery_log_limit);
            }
            Entry::Registry(change) => replay.apply(change),
            Entry::Alive(_) => {}
        })?;
        let Recovered {
            warnings,
            last_alive,
            replayed,
        } = recovered;
        for warning in &warnings {
            tracing::warn!(target: logging::SERVER, "{warning}");
        }
        state.count_pending();
        let registry = Registry::new(blobs);
        let undone = registry
            .restore(replay, &settled)
            .map_err(|problem| OpenError::Damaged {
                path: dir.join("registry"),
                offset: None,
                problem,
            })?;
        // Manifests put by tag whose push event the crash cut off: never acknowledged, so
        // undone, and the journal says so.
        for change in undone {
            journal.send_registry(change);
        }
        let sink = journal.clone();
        registry.journal_to(std::sync::Arc::new(move |change| {
            sink.send_registry(change)
        }));
        Ok(Loaded {
            state,
            registry,
            journal,
            last_alive,
            replayed,
        })
    }

    /// Takes up the work the previous process had under way (module documentation).
    fn resume_after_restart(&self, last_alive: Timestamp) {
        let now = Timestamp::now();
        let _ = self.commit(|state, changes| {
            // Deliveries in flight: interrupted.
            for (run_id, step) in std::mem::take(&mut state.sending) {
                let Some(run) = state.runs.get_mut(&run_id).map(Arc::make_mut) else {
                    continue;
                };
                let open = run.steps().get(step).is_some_and(|s| s.delivery.is_none());
                if !open || !run.is_pending() {
                    continue;
                }
                let event = crate::model::chain::Event::Delivered {
                    step,
                    result: DeliveryResult {
                        status: None,
                        error: Some(INTERRUPTED.to_owned()),
                        duration_ms: 0,
                        response_body: None,
                    },
                };
                if let Ok(effects) = run.apply(event, now) {
                    changes.run(run_id, effects);
                }
            }
            // Queued deliveries go out; callback waits resume with the time that was left.
            let resumed = |deadline: Timestamp| now.after(deadline.since(last_alive));
            let ids: Vec<u64> = state.runs.keys().copied().collect();
            for run_id in ids {
                // Not shared yet at start: no copy.
                let run = state.runs.get_mut(&run_id).map(Arc::make_mut);
                let effects = run.map(|run| run.restart(resumed)).unwrap_or_default();
                if !effects.is_empty() {
                    changes.run(run_id, effects);
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests;
