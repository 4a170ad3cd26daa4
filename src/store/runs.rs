//! Pushes, delivery outcomes, callbacks and callback timeouts, each applied to its run through
//! the chain rules; and the run queries and long-poll.

use std::sync::Arc;
use std::time::Duration;

use super::deliveries::{self, DeliveryRecord, Dispatch};
use super::state::RepoEntry;
use super::Store;
use crate::error::{Error, Missing};
use crate::logging;
use crate::model::callback::Callback;
use crate::model::chain::{self, Effect, Event, Rejection, RunStart};
use crate::model::ids;
use crate::model::push::{ExtraPost, PushRequest};
use crate::model::repository::{RepoName, Repository};
use crate::model::run::{Run, RunStatus};
use crate::model::tag::{self, PushEvents, TagRecord};
use crate::model::time::Timestamp;

/// The answer to a callback of a run with the `callback-gone` quirk (`404`), in the words of
/// Docker Hub's documentation since 2026 (docker/docs#23955).
pub const CALLBACK_GONE: &str = "callback_url is a legacy feature and no longer accepts \
     callbacks (hubmock's callback-gone quirk).";

/// What to wait for on a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// The run is no longer pending.
    Finished,
    /// The step's delivery (0-based) has been answered (or will never be sent).
    Delivered(usize),
}

impl WaitFor {
    /// Whether `run` got there: posts a fault plan still adds to its deliveries count as
    /// not there yet.
    fn reached(self, run: &Run, state: &super::state::State) -> bool {
        match self {
            WaitFor::Finished => !run.is_pending() && !state.fault_posts_pending(run.id(), None),
            WaitFor::Delivered(step) => {
                run.delivery_settled(step) && !state.fault_posts_pending(run.id(), Some(step))
            }
        }
    }
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only this repository's.
    pub repository: Option<RepoName>,
    /// Only this pipeline's (by slug).
    pub pipeline: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
}

impl RunFilter {
    fn matches(&self, run: &Run) -> bool {
        self.repository
            .as_ref()
            .is_none_or(|n| run.repository() == n)
            && self.pipeline.as_ref().is_none_or(|p| run.pipeline() == p)
            && self.status.is_none_or(|s| run.status() == s)
    }
}

impl Store {
    /// A push as the control API reports it: the chain starts one run per pipeline of the
    /// repository (R1), step 1 of each delivered at once, and the tag the push implies
    /// ([`TagRecord::implied_by`]: no manifest behind it) is recorded for the Hub API. An
    /// unknown repository is created when the configuration says so.
    pub fn push(&self, name: &RepoName, push: PushRequest) -> Result<Vec<Arc<Run>>, Error> {
        self.push_recording(name, push, TagUpdate::Implied)
    }

    /// The one door of every push: starts its runs and records its tag (`record`, or the one
    /// the push implies) in one commit, so a receiver that asks the Hub API about the tag as
    /// soon as its webhook arrives finds it.
    pub(super) fn push_recording(
        &self,
        name: &RepoName,
        push: PushRequest,
        update: TagUpdate,
    ) -> Result<Vec<Arc<Run>>, Error> {
        // Checked before the lock: a refused push changes nothing.
        match (&update, &push.tag) {
            (TagUpdate::Given(record, _), _) => record.check()?,
            (_, Some(name)) => tag::check_tag(name).map_err(|m| Error::field("tag", m))?,
            (_, None) => {}
        }
        let now = match &update {
            TagUpdate::Given(record, _) => record.pushed_at,
            _ => Timestamp::now(),
        };
        let implicit = self.shared.config.implicit_repositories;
        let default_format = self.shared.config.payload_format;
        let default_quirks = self.shared.config.quirks;
        let every_manifest = self.shared.config.push_events == PushEvents::PerManifest;
        let max_pending = self.shared.config.max_pending_runs;
        let history_limit = self.shared.config.history_limit;
        // Made before the lock is taken (used when the push names no image).
        let image_id = ids::random_hex(32);
        self.commit(|state, changes| {
            // Checked before anything changes: a refused push leaves the state as it was.
            let starting = state
                .repositories
                .get(name)
                .map_or(0, |e| e.pipelines.len());
            check_pending_limit(state.pending, starting, max_pending)?;
            if !state.repositories.contains_key(name) {
                if !implicit {
                    return Err(Error::NotFound(Missing::Repository(name.clone())));
                }
                let entry = RepoEntry::new(Repository::new(name));
                state.repositories.insert(name.clone(), entry);
                changes.repository(name);
            }
            let entry = &state.repositories[name];
            let event = chain::push_event(push, &entry.repository, now, || image_id);
            let record = match update {
                TagUpdate::Given(record, settles) => {
                    changes.settles = settles;
                    Some(record)
                }
                TagUpdate::Implied => Some(TagRecord::implied_by(&event)),
                TagUpdate::Unchanged => None,
            };
            let start = RunStart {
                repository: name,
                push: event,
                default_format,
                default_quirks,
                every_manifest,
                public_url: &self.shared.public_url,
                now,
            };
            let mut next_id = state.ids.run;
            let started = chain::fan_out(
                &start,
                &entry.pipelines,
                || {
                    next_id += 1;
                    next_id
                },
                ids::new_hook_id,
            );
            state.ids.run = next_id;
            state.pending += started.len();
            if let Some(record) = record {
                changes.tags.push((name.clone(), record.tag.clone()));
                let mut next_tag = state.ids.tag;
                let entry = state.repositories.get_mut(name).expect("inserted above");
                tag::record(&mut entry.tags, record, || {
                    next_tag += 1;
                    next_tag
                });
                state.ids.tag = next_tag;
            }
            let mut runs = Vec::with_capacity(started.len());
            for (run, effects) in started {
                changes.run(run.id(), effects);
                // Shared with the answer, not copied: the first change to the run copies it.
                let run = Arc::new(run);
                runs.push(run.clone());
                state.insert_run(run);
            }
            // Bounded memory: each pipeline that grew keeps `--history-limit` runs, dropping
            // its oldest finished ones (never a pending one, so never one just started).
            for run in &runs {
                state.trim_history(run.pipeline_id(), history_limit, changes);
            }
            Ok(runs)
        })
    }

    /// A push of one image under several tags, as an automated build made them: the push of
    /// its first tag, then one extra post per further tag ([`ExtraPost::Tag`]: `images:
    /// null` with the `images-null-extra-posts` quirk), each recorded as a tag and each
    /// starting its runs. All carry the same images (one made-up id when the push names
    /// none). A refusal of an extra tag's push (the pending-run limit) ends the push there.
    pub fn push_tags(
        &self,
        name: &RepoName,
        mut push: PushRequest,
        extra_tags: &[String],
    ) -> Result<Vec<Arc<Run>>, Error> {
        if extra_tags.is_empty() {
            return self.push(name, push);
        }
        for extra in extra_tags {
            tag::check_tag(extra).map_err(|m| Error::field("extra_tags", m))?;
        }
        // Checked for every tag before the first is pushed, so a push that would go past
        // `--max-pending-runs` is refused whole (pushes in between may still take the room).
        let (pending, starting) = self.read(|state| {
            let pipelines = state
                .repositories
                .get(name)
                .map_or(0, |e| e.pipelines.len());
            (state.pending, pipelines * (1 + extra_tags.len()))
        });
        check_pending_limit(pending, starting, self.shared.config.max_pending_runs)?;
        if push.images.is_empty() {
            push.images.push(ids::random_hex(32));
        }
        let mut runs = self.push(name, push.clone())?;
        for extra in extra_tags {
            let post = PushRequest {
                tag: Some(extra.clone()),
                extra: Some(ExtraPost::Tag),
                ..push.clone()
            };
            runs.extend(self.push(name, post)?);
        }
        Ok(runs)
    }

    /// A push event that leaves the tag records as they are: the extra events of an index
    /// with `--push-events per-manifest` (the tag names the index, not the platform manifest
    /// each event reports).
    pub(super) fn push_event_only(
        &self,
        name: &RepoName,
        push: PushRequest,
    ) -> Result<Vec<Arc<Run>>, Error> {
        self.push_recording(name, push, TagUpdate::Unchanged)
    }

    /// Asked by the engine just before it POSTs: whether the delivery still goes out (not
    /// when its run was cancelled, forgotten by a reset or replaced by an import while the
    /// delivery waited for a connection). Arms the step's callback timer if the chain says so.
    pub fn sending(&self, dispatch: &Dispatch) -> bool {
        let event = Event::Sending {
            step: dispatch.step,
            callback_timeout: self.shared.config.callback_timeout,
        };
        let post = Effect::Post {
            step: dispatch.step,
        };
        self.commit(|state, changes| {
            if !state.is_current(dispatch.run_id, dispatch.step, &dispatch.hook_id) {
                return Ok(false);
            }
            let run = state
                .runs
                .get_mut(&dispatch.run_id)
                .map(Arc::make_mut)
                .expect("current");
            let effects = run.apply(event, Timestamp::now()).unwrap_or_default();
            let goes_out = effects.contains(&post);
            if goes_out {
                // In flight until its outcome is recorded: after a crash, recorded as
                // interrupted, never sent again.
                state.sending.insert((dispatch.run_id, dispatch.step));
                changes.sending = Some((dispatch.run_id, dispatch.step));
            }
            // Only an armed timer changes the run; a bare "post it" wakes nobody.
            if effects.iter().any(|effect| *effect != post) {
                changes.run(dispatch.run_id, effects);
            }
            Ok(goes_out)
        })
        .unwrap_or(false)
    }

    /// Records a delivery's outcome and applies it to its run (R3, R6, R11); `extra_posts` a
    /// fault plan still makes for it are awaited by waits on the run ([`Store::log_extra`]
    /// records each). Answers its id in the deliveries log, `None` when its run is gone (a
    /// reset, an import).
    pub fn delivered(
        &self,
        dispatch: &Dispatch,
        record: DeliveryRecord,
        extra_posts: usize,
    ) -> Option<u64> {
        let limit = self.shared.config.delivery_log_limit;
        // The run's copy of the outcome is made before the lock; the record moves into the log.
        let result = record.result.clone();
        let mut dropped = None;
        let mut id = None;
        let _ = self.commit(|state, changes| {
            if !state.is_current(dispatch.run_id, dispatch.step, &dispatch.hook_id) {
                // Its run was forgotten by a reset or replaced by an import: not this state's
                // news.
                return Ok(());
            }
            id = Some(state.ids.delivery + 1);
            if extra_posts > 0 {
                state
                    .fault_posts
                    .insert((dispatch.run_id, dispatch.step), extra_posts);
            }
            dropped = deliveries::log(state, record, limit);
            changes.logged = true;
            state.sending.remove(&(dispatch.run_id, dispatch.step));
            let event = Event::Delivered {
                step: dispatch.step,
                result,
            };
            let run = state
                .runs
                .get_mut(&dispatch.run_id)
                .map(Arc::make_mut)
                .expect("current");
            if let Ok(effects) = run.apply(event, Timestamp::now()) {
                changes.run(dispatch.run_id, effects);
            }
            Ok(())
        });
        // The record the log let go of is freed here, after the lock.
        drop(dropped);
        id
    }

    /// A callback to a hook id (R7, R8). `Ok` carries the run as it is after the callback.
    pub fn callback(
        &self,
        repository: &RepoName,
        hook_id: &str,
        body: &[u8],
    ) -> Result<Run, Error> {
        // Parse and validate before taking the lock: a 1 MiB body never stalls other requests.
        let verdict = Callback::validate(body);
        let applied = self.commit(|state, changes| {
            let unknown = || Error::NotFound(Missing::Hook(hook_id.to_owned()));
            let &(run_id, step) = state.hooks.get(hook_id).ok_or_else(unknown)?;
            let run = state
                .runs
                .get_mut(&run_id)
                .map(Arc::make_mut)
                .ok_or_else(unknown)?;
            if run.repository() != repository {
                return Err(unknown());
            }
            let event = Event::Callback {
                step,
                body: &verdict,
            };
            match run.apply(event, Timestamp::now()) {
                Ok(effects) => {
                    changes.run(run_id, effects);
                    Ok((run.clone(), step))
                }
                Err(Rejection::UpdateNotAllowed) => Err(Error::UpdateNotAllowed),
                Err(Rejection::Gone) => Err(Error::not_found(CALLBACK_GONE)),
                Err(Rejection::Invalid(refusal)) => Err(refusal.into()),
            }
        });
        // Logged after the lock is released; the body is not logged.
        match applied {
            Ok((run, step)) => {
                // Applied, so the body was a valid callback.
                let state = verdict.map_or(String::new(), |c| logging::wire_name(&c.state));
                tracing::info!(
                    target: logging::CALLBACK,
                    run = run.id(),
                    step,
                    state = %state,
                    run_status = %logging::wire_name(&run.status()),
                    "callback"
                );
                Ok(run)
            }
            Err(error) => {
                // A hook id is as good as a password to its step: never shown.
                let reason = match &error {
                    Error::NotFound(_) => "no step of this repository has this hook id".to_owned(),
                    other => other.to_string(),
                };
                tracing::info!(
                    target: logging::CALLBACK,
                    %repository,
                    reason,
                    "callback refused"
                );
                Err(error)
            }
        }
    }

    /// A step's callback timer ran out (R9).
    pub fn callback_timed_out(&self, run_id: u64, step: usize, hook_id: &str) {
        let timed_out = self.commit(|state, changes| {
            if !state.is_current(run_id, step, hook_id) {
                return Ok(None);
            }
            let run = state
                .runs
                .get_mut(&run_id)
                .map(Arc::make_mut)
                .expect("current");
            // Refused when the callback came first: then nothing timed out.
            let effects = run.apply(Event::CallbackTimedOut { step }, Timestamp::now());
            Ok(effects.ok().map(|effects| {
                changes.run(run_id, effects);
                run.status()
            }))
        });
        if let Ok(Some(run_status)) = timed_out {
            tracing::info!(
                target: logging::CALLBACK,
                run = run_id,
                step,
                run_status = %logging::wire_name(&run_status),
                "callback timed out"
            );
        }
    }

    /// One run.
    pub fn run(&self, id: u64) -> Result<Run, Error> {
        let run = self.read(|state| state.run(id).cloned())?;
        // Copied after the lock is released.
        Ok(Run::clone(&run))
    }

    /// Runs matching `filter`, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Vec<Arc<Run>> {
        self.read(|state| {
            state
                .runs
                .values()
                .rev()
                .filter(|r| filter.matches(r))
                .cloned()
                .collect()
        })
    }

    /// Waits until every one of `runs` has finished or `timeout` passes (or the server shuts
    /// down), then answers them as they are, in the same order. A run forgotten meanwhile
    /// (a reset) is answered as it was given.
    pub async fn wait_for_runs(&self, runs: &[Arc<Run>], timeout: Duration) -> Vec<Run> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut answered = Vec::with_capacity(runs.len());
        for run in runs {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let now = self.wait_for_run(run.id(), WaitFor::Finished, left).await;
            answered.push(now.unwrap_or_else(|_| Run::clone(run)));
        }
        answered
    }

    /// Waits until the run reaches `until` or `timeout` passes (or the server shuts down), then
    /// answers the run as it is.
    pub async fn wait_for_run(
        &self,
        id: u64,
        until: WaitFor,
        timeout: Duration,
    ) -> Result<Run, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut stopping = false;
        loop {
            let changed = {
                let state = self.lock();
                let run = state.run(id)?;
                if until.reached(run, &state) || tokio::time::Instant::now() >= deadline || stopping
                {
                    let run = Arc::clone(run);
                    drop(state);
                    return Ok(Run::clone(&run));
                }
                // Registered under the state lock: no change can slip in between.
                self.shared.watchers.watch(id)
            };
            // Woken on any change of the run (or dropped by a reset): look again. A shutdown
            // answers the run as it is now.
            tokio::select! {
                _ = tokio::time::timeout_at(deadline, changed) => {}
                _ = self.stopped_waiting() => stopping = true,
            }
        }
    }
}

/// `--max-pending-runs`: a push that would start `starting` runs while `pending` are pending
/// is refused when that goes past `max_pending` (a push that starts none never is).
fn check_pending_limit(pending: usize, starting: usize, max_pending: usize) -> Result<(), Error> {
    if starting > 0 && pending + starting > max_pending {
        return Err(Error::Busy(format!(
            "hubmock has {pending} runs pending, and this push would start {starting} more: \
             over the limit of {max_pending} (--max-pending-runs). Let some finish (or delete \
             their pipelines) and push again."
        )));
    }
    Ok(())
}

/// What a push does to its repository's tag records.
pub(super) enum TagUpdate {
    /// Records the tag the push implies (a control-API push: its first image, no size).
    Implied,
    /// Records this tag (the registry's, from the manifest it stored); the registry's put
    /// it came from, if any, is decided in the same journal record.
    Given(TagRecord, Option<u64>),
    /// Leaves them as they are.
    Unchanged,
}
