//! The emulator's shared state: a cheap-clone handle over one mutex-guarded [`State`].
//!
//! - `state.rs`: the plain data and its lookups;
//! - `auth.rs`: users and login tokens;
//! - `catalog.rs`: repositories and pipelines;
//! - `runs.rs`: pushes (the one door that starts runs and records tags), delivery outcomes,
//!   callbacks, timeouts, and the run queries;
//! - `tags.rs`: the registry's tag pushes, and the tag and namespace queries of the Hub API;
//! - `deliveries.rs`: the log of outbound requests;
//! - `history.rs`: the settings pages' reads (a page of History, the latest runs) and wake-ups;
//! - `watchers.rs`: long-polls on runs and on the log;
//! - `snapshot.rs`: export, import and reset of the whole state;
//! - `registry.rs`: what the registry asks of the store: credentials, repositories, and
//!   [`Store::tag_pushed`], where a tag pushed through the registry becomes a push event.
//!
//! The registry's own index and blobs live in [`crate::registry::Registry`], behind its own
//! lock; the store only holds it ([`Store::registry`]) so that a reset clears it too.
//!
//! **One door.** Every change goes through [`Store::commit`]: it takes the lock, applies a
//! change (the chain rules live in [`crate::model::chain`]; the store only applies their
//! effects), turns the chain's effects into [`Work`] for the delivery engine, lets go of the
//! lock, and then wakes whoever waits. The lock is never held across an `.await`, and nothing
//! is serialised under it. Persistence (`persist/`, `restart.rs`) hooks in at the same door:
//! with `--data-dir`, `commit` sends what the change touched to the journal under the lock.

mod auth;
mod catalog;
mod deliveries;
mod history;
pub(crate) mod persist;
mod registry;
mod restart;
mod runs;
mod snapshot;
mod state;
mod tags;
mod watchers;

pub use deliveries::{DeliveryFilter, DeliveryRecord, Dispatch};
pub use history::HistoryPage;
pub use persist::OpenError;
pub use restart::{INTERRUPTED, SNAPSHOT_BYTES};
pub use runs::{RunFilter, WaitFor};
pub use state::MAX_ID;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::error::Error;
use crate::model::chain::Effect;
use crate::model::payload::Payload;
use crate::model::repository::{RepoName, Repository};
use crate::model::time::Timestamp;
use crate::registry::{BlobStore, Registry};
use state::State;
use watchers::Watchers;

/// What the delivery engine is asked to do, in the order the chain decided it.
#[derive(Debug)]
pub enum Work {
    /// Make this delivery.
    Deliver(Box<Dispatch>),
    /// Report [`Store::callback_timed_out`] for this step at `deadline` (R9).
    ArmTimer {
        /// The run.
        run_id: u64,
        /// The step (0-based).
        step: usize,
        /// The step's hook id (names the step across resets and imports).
        hook_id: String,
        /// When.
        deadline: Timestamp,
    },
    /// The step's wait for its callback is over: its timer goes now.
    Disarm {
        /// The run.
        run_id: u64,
        /// The step (0-based).
        step: usize,
        /// The step's hook id.
        hook_id: String,
    },
    /// The run ended: its timers can go.
    Finished {
        /// The run.
        run_id: u64,
    },
    /// The whole state was replaced (a reset or an import): every timer goes; the new state's
    /// come next ([`Store::resume`]).
    Forget,
}

/// What one commit changed, collected while the lock is held and acted on after: waiters to
/// wake, work for the engine, and (with `--data-dir`) what the journal records. **Every
/// change of the state is named here**, or it would not survive a restart; the journal's
/// round-trip property test (`restart/tests.rs`) replays a journal and compares it with the
/// live state to catch a change that is not.
#[derive(Default)]
pub(crate) struct Changes {
    /// Runs with the effects their transitions asked for.
    runs: Vec<(u64, Vec<Effect>)>,
    /// Runs removed from the state, in the order removed ([`State::forget_run`], the only way
    /// a run leaves it short of a reset or an import).
    forgotten: Vec<u64>,
    /// A delivery was recorded in the log.
    logged: bool,
    /// Runs whose waiters look again though the run itself did not change (nothing to
    /// journal): a fault plan's extra post of theirs was made.
    woken: Vec<u64>,
    /// The whole state was replaced; the old one, dropped after the lock is released.
    retired: Option<Box<State>>,
    /// The replacement was an import: its whole content is journaled.
    imported: bool,
    /// Repositories whose settings or pipelines changed (or that were created).
    repositories: Vec<RepoName>,
    /// Tags pushed (repository, tag).
    tags: Vec<(RepoName, String)>,
    /// Repositories some of whose tags were forgotten.
    all_tags: Vec<RepoName>,
    /// Login tokens given or dropped.
    tokens: Vec<String>,
    /// A delivery about to be POSTed.
    sending: Option<(u64, usize)>,
    /// The registry's put whose push event this commit records.
    settles: Option<u64>,
}

impl Changes {
    /// The run changed; `effects` are what the chain asked for.
    pub(crate) fn run(&mut self, run_id: u64, effects: Vec<Effect>) {
        self.runs.push((run_id, effects));
    }

    /// Whoever waits for the run looks again; the run did not change.
    pub(crate) fn wake(&mut self, run_id: u64) {
        self.woken.push(run_id);
    }

    /// The run was removed from the state; called by [`State::forget_run`] alone.
    pub(crate) fn forgot(&mut self, run_id: u64) {
        self.forgotten.push(run_id);
    }

    /// The whole state was replaced by a reset or an import: every waiter looks again.
    fn retire(&mut self, old: State) {
        self.retired = Some(Box::new(old));
    }

    /// A repository was created, or its settings or pipelines changed.
    pub(crate) fn repository(&mut self, name: &RepoName) {
        self.repositories.push(name.clone());
    }

    /// What the journal records of this commit, copied from the state it left (under the
    /// lock; serialised by the journal's writer). `None` when nothing changed.
    fn delta(&self, state: &State, ids_before: state::Counters) -> Option<persist::Delta> {
        let mut delta = persist::Delta {
            at: Some(Timestamp::now()),
            ids: state.ids,
            reset: self.retired.is_some(),
            forgotten: self.forgotten.clone(),
            sending: self.sending,
            settles: self.settles,
            ..persist::Delta::default()
        };
        let mut names: Vec<&RepoName> = self.repositories.iter().collect();
        if self.imported {
            names = state.repositories.keys().collect();
        }
        names.sort();
        names.dedup();
        for name in names {
            if let Some(entry) = state.repositories.get(name) {
                delta.repositories.push(persist::RepoSettings {
                    repository: entry.repository.clone(),
                    pipelines: entry.pipelines.clone(),
                });
                if self.imported {
                    let tags = entry.tags.clone();
                    delta.tags.push(persist::TagChange::All(name.clone(), tags));
                }
            }
        }
        for (name, tag) in &self.tags {
            if let Some(tag) = state.repositories.get(name).and_then(|e| e.tag(tag).ok()) {
                delta
                    .tags
                    .push(persist::TagChange::Put(name.clone(), tag.clone()));
            }
        }
        for name in &self.all_tags {
            if let Some(entry) = state.repositories.get(name) {
                let tags = entry.tags.clone();
                delta.tags.push(persist::TagChange::All(name.clone(), tags));
            }
        }
        let mut run_ids: Vec<u64> = if self.imported {
            state.runs.keys().copied().collect()
        } else {
            self.runs.iter().map(|(id, _)| *id).collect()
        };
        run_ids.sort_unstable();
        run_ids.dedup();
        for id in run_ids {
            if let Some(run) = state.runs.get(&id) {
                delta.runs.push(persist::RunRecord::of(run));
            }
        }
        if self.imported {
            delta.deliveries = state.deliveries.iter().cloned().collect();
        } else if self.logged {
            delta.deliveries.extend(state.deliveries.back().cloned());
        }
        for token in &self.tokens {
            delta
                .tokens
                .push((token.clone(), state.tokens.get(token).cloned()));
        }
        let unchanged = !delta.reset
            && delta.repositories.is_empty()
            && delta.tags.is_empty()
            && delta.runs.is_empty()
            && delta.forgotten.is_empty()
            && delta.deliveries.is_empty()
            && delta.tokens.is_empty()
            && delta.sending.is_none()
            && delta.settles.is_none()
            && ids_before == state.ids;
        (!unchanged).then_some(delta)
    }
}

struct Shared {
    state: Mutex<State>,
    /// Names this emulator in the marker its deliveries carry.
    instance: String,
    config: Config,
    public_url: String,
    users: Vec<(String, String)>,
    /// When the store was made: the users' `date_joined`.
    started: Timestamp,
    work: mpsc::UnboundedSender<Work>,
    watchers: Watchers,
    /// The registry's content: its own index and lock, blobs on disk.
    registry: Registry,
    /// The data directory's journal (`--data-dir`); `None`: memory only.
    journal: Option<persist::Journal>,
    /// How many callback timers the engine holds (set by the engine, read by tests).
    armed_timers: AtomicUsize,
}

/// A cheap-clone handle to the emulator's state.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl Store {
    /// A new, empty store whose payload URLs start with `public_url`, and the receiving end of
    /// the work it will ask of the delivery engine.
    pub fn new(config: Config, public_url: &str) -> (Store, mpsc::UnboundedReceiver<Work>) {
        Store::with_parts(
            config,
            public_url,
            State::default(),
            Registry::new(BlobStore::temporary()),
            None,
        )
    }

    fn with_parts(
        config: Config,
        public_url: &str,
        state: State,
        registry: Registry,
        journal: Option<persist::Journal>,
    ) -> (Store, mpsc::UnboundedReceiver<Work>) {
        let (work, rx) = mpsc::unbounded_channel();
        let users = config.effective_users();
        let store = Store {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                instance: crate::model::ids::random_hex(16),
                public_url: public_url.trim_end_matches('/').to_owned(),
                config,
                users,
                started: Timestamp::now(),
                work,
                watchers: Watchers::default(),
                registry,
                journal,
                armed_timers: AtomicUsize::new(0),
            }),
        };
        (store, rx)
    }

    /// Waits until every change made so far is durable (with `--data-dir`; at once without):
    /// what a request changed is on disk before its answer is sent, and a delivery's "sending"
    /// record before it is POSTed. `Err` says why it never will be (the disk failed).
    pub async fn durable(&self) -> Result<(), std::sync::Arc<str>> {
        match &self.shared.journal {
            Some(journal) => journal.durable().await,
            None => Ok(()),
        }
    }

    /// Writes what is queued for the journal and notes a clean stop (with `--data-dir`).
    pub fn close(&self) {
        if let Some(journal) = &self.shared.journal {
            journal.close();
        }
    }

    /// Copies the whole state (both locks held, the registry's first, so the snapshot cuts
    /// both at the same point of the journal) and hands it to the journal's writer.
    fn snapshot(&self, journal: &persist::Journal) {
        self.shared.registry.image_locked(|registry| {
            let state = self.lock();
            journal.send_snapshot(persist::Image::of(&state, registry));
        });
    }

    /// Writes a snapshot and waits until it is written (at start, before anything is served,
    /// so nothing waits on the locks meanwhile; the copy is taken the same way as
    /// [`Store::snapshot`]'s).
    fn snapshot_now(&self) {
        if let Some(journal) = &self.shared.journal {
            let image = self.shared.registry.image_locked(|registry| {
                let state = self.lock();
                persist::Image::of(&state, registry)
            });
            journal.snapshot_now(image);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The value of the marker header a delivery carries: `{instance}/{run}/{step}`.
    pub fn delivery_marker(&self, dispatch: &Dispatch) -> String {
        format!(
            "{}/{}/{}",
            self.shared.instance, dispatch.run_id, dispatch.step
        )
    }

    /// If `marker` is one of this emulator's own delivery markers, the run and step it
    /// names. Another hubmock's deliveries are ordinary requests.
    pub fn own_delivery(&self, marker: &str) -> Option<(u64, usize)> {
        let rest = marker.strip_prefix(self.shared.instance.as_str())?;
        let (run, step) = rest.strip_prefix('/')?.split_once('/')?;
        Some((run.parse().ok()?, step.parse().ok()?))
    }

    /// The registry's content.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// The base of URLs in payloads.
    pub fn public_url(&self) -> &str {
        &self.shared.public_url
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; the state is still the best we have.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the state under the lock. `look` must be quick and must not serialise.
    fn read<T>(&self, look: impl FnOnce(&State) -> T) -> T {
        look(&self.lock())
    }

    /// The one door every change goes through: applies `change` under the lock, hands the
    /// effects it collected to the delivery engine, then (lock released) wakes the waiters.
    /// A `change` that fails must leave the state as it found it.
    fn commit<T>(
        &self,
        change: impl FnOnce(&mut State, &mut Changes) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut changes = Changes::default();
        let mut state = self.lock();
        let ids_before = state.ids;
        let result = change(&mut state, &mut changes);
        if let (Some(journal), true) = (&self.shared.journal, result.is_ok()) {
            if let Some(delta) = changes.delta(&state, ids_before) {
                // Sent under the lock, so the journal has commits in the order they were made.
                journal.send(persist::Entry::State(Box::new(delta)));
            }
        }
        if changes.retired.is_some() {
            // The old state's timers are stale; the new state's steps get theirs.
            let _ = self.shared.work.send(Work::Forget);
            self.send_resume_work(&state);
        }
        for (run_id, effects) in &changes.runs {
            for effect in effects {
                if let Effect::Finished { .. } = effect {
                    state.pending = state.pending.saturating_sub(1);
                    state.run_finished(*run_id);
                }
                if let Some(work) = self.work_for(&state, *run_id, *effect) {
                    // Sent under the lock so the engine sees work in the order it was decided;
                    // an unbounded send never blocks. The engine is gone only while shutting
                    // down; the step then stays pending.
                    let _ = self.shared.work.send(work);
                }
            }
        }
        drop(state);
        if let Some(journal) = &self.shared.journal {
            if journal.take_snapshot_request() {
                self.snapshot(journal);
            }
        }
        let watchers = &self.shared.watchers;
        if changes.retired.take().is_some() {
            watchers.wake_all();
        }
        if !changes.runs.is_empty() || !changes.forgotten.is_empty() || !changes.woken.is_empty() {
            // A waiter on a forgotten run looks again and finds it gone.
            let forgotten = changes.forgotten.iter().copied();
            let woken = changes.woken.iter().copied();
            watchers.wake(
                changes
                    .runs
                    .iter()
                    .map(|(id, _)| *id)
                    .chain(forgotten)
                    .chain(woken),
            );
        }
        if changes.logged {
            watchers.delivered.notify_waiters();
        }
        result
    }

    /// Ends every long-poll (runs, deliveries, History pages) at once, each answering what it
    /// has now as on its timeout, and keeps later ones from waiting: the server is shutting
    /// down, and a long-poll must not hold it for its grace period.
    pub(crate) fn stop_waiting(&self) {
        self.shared.watchers.stopping.cancel();
    }

    /// Completes once [`Store::stop_waiting`] was called: long-polls select on it.
    pub(crate) async fn stopped_waiting(&self) {
        self.shared.watchers.stopping.cancelled().await;
    }

    /// Arms a callback timer for every step that awaits its callback until a deadline, as the
    /// chain says ([`crate::model::run::Run::resume`]); a deadline already past times the
    /// step out at once. An import does this in its own commit; after a restart, call it once
    /// the state is loaded and the engine runs. Arming a step's timer again replaces it.
    pub(crate) fn resume(&self) {
        let state = self.lock();
        // Sent under the lock, like every commit's work: a change after this look is ordered
        // after these timers.
        self.send_resume_work(&state);
    }

    fn send_resume_work(&self, state: &State) {
        for run in state.runs.values().filter(|run| run.is_pending()) {
            for effect in run.resume() {
                if let Some(work) = self.work_for(state, run.id(), effect) {
                    let _ = self.shared.work.send(work);
                }
            }
        }
    }

    /// How many callback timers the engine holds now: one per step awaiting its callback until
    /// a deadline, once the engine has caught up with its work.
    #[cfg(test)]
    pub(crate) fn armed_timers(&self) -> usize {
        self.shared.armed_timers.load(Ordering::Relaxed)
    }

    /// The engine's count of its timers.
    pub(crate) fn set_armed_timers(&self, armed: usize) {
        self.shared.armed_timers.store(armed, Ordering::Relaxed);
    }

    /// The engine's part of an effect, if it has one.
    fn work_for(&self, state: &State, run_id: u64, effect: Effect) -> Option<Work> {
        let run = state.runs.get(&run_id)?;
        match effect {
            Effect::Deliver { step } => {
                let s = run.steps().get(step)?;
                // The payload shows the repository as it is when the step is delivered.
                let repository = state.repositories.get(run.repository()).map_or_else(
                    || Repository::new(run.repository()),
                    |entry| entry.repository.clone(),
                );
                Some(Work::Deliver(Box::new(Dispatch {
                    run_id,
                    step,
                    hook_id: s.hook_id.clone(),
                    repository: run.repository().to_string(),
                    pipeline: (run.pipeline().to_owned(), run.pipeline_id()),
                    url: s.hook_url.clone(),
                    payload: Payload::build(
                        run.payload_format(),
                        run.quirks(),
                        &repository,
                        run.push(),
                        s.callback_url.clone(),
                        &self.shared.public_url,
                    ),
                })))
            }
            Effect::ArmTimer { step, deadline } => Some(Work::ArmTimer {
                run_id,
                step,
                hook_id: run.steps().get(step)?.hook_id.clone(),
                deadline,
            }),
            Effect::Disarm { step } => Some(Work::Disarm {
                run_id,
                step,
                hook_id: run.steps().get(step)?.hook_id.clone(),
            }),
            Effect::Finished { .. } => Some(Work::Finished { run_id }),
            // Answered to the engine that asked ([`Store::sending`]).
            Effect::Post { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::model::pipeline::PipelineSpec;
    use crate::model::push::PushRequest;
    use crate::model::repository::RepoName;
    use crate::model::run::{DeliveryResult, RunStatus};

    fn answered(dispatch: &Dispatch, status: u16) -> DeliveryRecord {
        let result = DeliveryResult {
            status: Some(status),
            error: None,
            duration_ms: 1,
            response_body: None,
        };
        dispatch.record(
            Timestamp::now(),
            BTreeMap::new(),
            dispatch.payload.to_json(),
            result,
        )
    }

    fn store_with_a_push() -> (Store, Dispatch, Value) {
        let (store, mut queue) = Store::new(Config::default(), "http://hub");
        let repo = RepoName::new("acme", "app").unwrap();
        store.create_repository(Repository::new(&repo)).unwrap();
        let spec = PipelineSpec::new("p", &["http://receiver/"]);
        store.create_pipeline(&repo, spec, "acme").unwrap();
        let before = store.export();
        store.push(&repo, PushRequest::default()).unwrap();
        let Ok(Work::Deliver(dispatch)) = queue.try_recv() else {
            panic!("step 1 is queued");
        };
        let dispatch = *dispatch;
        (store, dispatch, before)
    }

    #[test]
    fn reads_of_many_runs_share_them_with_the_state_instead_of_copying_under_the_lock() {
        let (store, dispatch, _) = store_with_a_push();
        let kept = store.read(|state| state.runs[&dispatch.run_id].clone());
        let listed = store.runs(&RunFilter::default());
        assert!(Arc::ptr_eq(&listed[0], &kept));
        let repo = RepoName::new("acme", "app").unwrap();
        let history = store.history(&repo, "p").unwrap();
        assert!(Arc::ptr_eq(&history[0], &kept));
        let (page, _) = store.history_page(&repo, "p", 0, 10, false).unwrap();
        assert!(Arc::ptr_eq(&page.runs[0], &kept));
        // A change after the copy copies the run (the reader keeps what it saw).
        store.delivered(&dispatch, answered(&dispatch, 200), 0);
        let now = store.read(|state| state.runs[&dispatch.run_id].clone());
        assert!(!Arc::ptr_eq(&now, &kept));
        assert!(kept.steps()[0].delivery.is_none());
    }

    #[test]
    fn a_delivery_answered_after_a_reset_is_not_this_states_news() {
        let (store, dispatch, _) = store_with_a_push();
        store.reset();
        store.delivered(&dispatch, answered(&dispatch, 500), 0);
        assert!(store.deliveries(None).is_empty());
        assert!(!store.sending(&dispatch));
    }

    #[test]
    fn a_delivery_answered_after_an_import_does_not_touch_the_imported_run() {
        let (store, dispatch, _) = store_with_a_push();
        // Another emulator's state with a run of the same id, awaiting its callback.
        let (other, other_dispatch, _) = store_with_a_push();
        other.delivered(&other_dispatch, answered(&other_dispatch, 200), 0);
        store.import(&other.export()).unwrap();
        store.delivered(&dispatch, answered(&dispatch, 500), 0);
        store.callback_timed_out(dispatch.run_id, dispatch.step, &dispatch.hook_id);
        let run = store.run(dispatch.run_id).unwrap();
        assert_eq!(run.status(), RunStatus::Pending);
        assert_eq!(run.steps()[0].delivery.as_ref().unwrap().status, Some(200));
    }
}
