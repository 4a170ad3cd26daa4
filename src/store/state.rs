//! Everything the emulator knows, as one plain value behind the store's lock, and the lookups
//! every part of the store shares.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::deliveries::DeliveryRecord;
use super::Changes;
use crate::error::{Error, Missing};
use crate::model::pipeline::Pipeline;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::Run;
use crate::model::tag::Tag;
use crate::model::time::Timestamp;

/// A repository, its pipelines in creation order, and its tags in the order first pushed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RepoEntry {
    pub(crate) repository: Repository,
    pub(crate) pipelines: Vec<Pipeline>,
    /// Absent from state documents written before tags were recorded.
    #[serde(default)]
    pub(crate) tags: Vec<Tag>,
}

impl RepoEntry {
    /// A repository with no pipelines yet.
    pub(crate) fn new(repository: Repository) -> RepoEntry {
        RepoEntry {
            repository,
            pipelines: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// Where the pipeline with this slug is, or the error that names it.
    pub(crate) fn pipeline_index(&self, slug: &str) -> Result<usize, Error> {
        self.pipelines
            .iter()
            .position(|p| p.slug == slug)
            .ok_or_else(|| {
                Error::NotFound(Missing::Pipeline(
                    self.repository.repo_name(),
                    slug.to_owned(),
                ))
            })
    }

    /// The tag with this name, or the error that names it.
    pub(crate) fn tag(&self, tag: &str) -> Result<&Tag, Error> {
        self.tags.iter().find(|t| t.name() == tag).ok_or_else(|| {
            Error::NotFound(Missing::Tag(self.repository.repo_name(), tag.to_owned()))
        })
    }
}

/// Everything the emulator knows; exported and imported whole by `/_hubmock/state`.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) repositories: BTreeMap<RepoName, RepoEntry>,
    /// Shared with the copies exports, pages and the journal take under the lock (a change
    /// copies a run only while such a copy still holds it: `Arc::make_mut`).
    pub(crate) runs: BTreeMap<u64, Arc<Run>>,
    pub(crate) deliveries: VecDeque<DeliveryRecord>,
    pub(crate) ids: Counters,
    /// How many runs are pending; kept by the commit point from the chain's effects.
    pub(crate) pending: usize,
    /// hook id -> (run id, step); derived from `runs`.
    pub(crate) hooks: HashMap<String, (u64, usize)>,
    /// pipeline id -> the ids of its runs, oldest first; derived from `runs`. Runs enter and
    /// leave the three together, through [`State::insert_run`] and [`State::forget_run`].
    pub(crate) by_pipeline: HashMap<u64, PipelineRuns>,
    /// login token -> whose it is and until when.
    pub(crate) tokens: HashMap<String, TokenEntry>,
    /// Deliveries being POSTed (run, step): asked for by the engine, outcome not recorded yet.
    /// After a crash, these are the ones recorded as interrupted.
    pub(crate) sending: BTreeSet<(u64, usize)>,
    /// (run, step) -> how many posts a fault plan still adds to the step's delivery (a
    /// duplicate, a forged post, a retry): a wait for the run or the delivery waits for them
    /// too. Not kept across a restart.
    pub(crate) fault_posts: HashMap<(u64, usize), usize>,
}

impl State {
    /// Whether a fault plan still has posts to make for `step` of run `run_id` (`None`: any
    /// step).
    pub(crate) fn fault_posts_pending(&self, run_id: u64, step: Option<usize>) -> bool {
        !self.fault_posts.is_empty()
            && self
                .fault_posts
                .keys()
                .any(|(run, s)| *run == run_id && step.is_none_or(|step| *s == step))
    }
}

/// A pipeline's runs, by id (oldest first), and the finished ones among them: what
/// [`State::trim_history`] forgets first, found without walking past the pending ones (a
/// pipeline may have `--max-pending-runs` of them, and every push trims).
#[derive(Debug, Default)]
pub(crate) struct PipelineRuns {
    all: BTreeSet<u64>,
    finished: BTreeSet<u64>,
}

/// A login token's user and its expiry: wall-clock, so it means the same after a restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Login {
    pub(crate) user: String,
    /// The token is refused from this instant on.
    pub(crate) expires: Timestamp,
}

impl Login {
    /// Whether the token is still taken at `now`.
    pub(crate) fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires
    }
}

/// What a login token stands for.
pub(crate) type TokenEntry = Login;

/// The largest id of any kind: 2^53 - 1, exact as a JavaScript number.
pub const MAX_ID: u64 = (1 << 53) - 1;

/// The last id handed out of each kind; they keep counting across a reset, so an old id never
/// names a new thing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub(crate) pipeline: u64,
    pub(crate) run: u64,
    pub(crate) delivery: u64,
    pub(crate) tag: u64,
}

impl State {
    pub(crate) fn entry(&self, name: &RepoName) -> Result<&RepoEntry, Error> {
        self.repositories
            .get(name)
            .ok_or_else(|| Error::NotFound(Missing::Repository(name.clone())))
    }

    pub(crate) fn entry_mut(&mut self, name: &RepoName) -> Result<&mut RepoEntry, Error> {
        self.repositories
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(Missing::Repository(name.clone())))
    }

    pub(crate) fn run(&self, id: u64) -> Result<&Arc<Run>, Error> {
        self.runs.get(&id).ok_or(Error::NotFound(Missing::Run(id)))
    }

    /// Whether the step (with this hook id) is still part of the state: not forgotten by a
    /// reset nor replaced by an import that reused its run id.
    pub(crate) fn is_current(&self, run_id: u64, step: usize, hook_id: &str) -> bool {
        self.runs
            .get(&run_id)
            .and_then(|run| run.steps().get(step))
            .is_some_and(|s| s.hook_id == hook_id)
    }

    /// Counts the pending runs afresh (after an import).
    pub(crate) fn count_pending(&mut self) {
        self.pending = self.runs.values().filter(|r| r.is_pending()).count();
    }

    /// A pipeline's runs, newest first.
    pub(crate) fn pipeline_runs(&self, pipeline_id: u64) -> impl Iterator<Item = &Arc<Run>> {
        self.by_pipeline
            .get(&pipeline_id)
            .into_iter()
            .flat_map(|ids| ids.all.iter().rev())
            .filter_map(|id| self.runs.get(id))
    }

    /// Adds a run (or replaces it: the journal's records), and indexes its hook ids and its
    /// pipeline.
    pub(crate) fn insert_run(&mut self, run: impl Into<Arc<Run>>) {
        let run = run.into();
        for (step, s) in run.steps().iter().enumerate() {
            self.hooks.insert(s.hook_id.clone(), (run.id(), step));
        }
        let of_pipeline = self.by_pipeline.entry(run.pipeline_id()).or_default();
        of_pipeline.all.insert(run.id());
        if run.is_pending() {
            of_pipeline.finished.remove(&run.id());
        } else {
            of_pipeline.finished.insert(run.id());
        }
        self.runs.insert(run.id(), run);
    }

    /// The run has finished (the commit point calls this on the chain's `Finished` effect):
    /// its pipeline's history may forget it from now on.
    pub(crate) fn run_finished(&mut self, id: u64) {
        let Some(run) = self.runs.get(&id).filter(|run| !run.is_pending()) else {
            return;
        };
        if let Some(of_pipeline) = self.by_pipeline.get_mut(&run.pipeline_id()) {
            of_pipeline.finished.insert(id);
        }
    }

    /// **The one way a run leaves the state** (a reset or an import replaces the whole state
    /// instead, [`Changes`]'s `retired`): removes it from `runs` and from every index of runs,
    /// so its hook ids answer as unknown ones do, and records its id in `changes`
    /// ([`Changes::forgot`]) for whoever must learn what a commit removed. A pending run
    /// leaves the pending count; its deliveries and timers then find it gone
    /// ([`State::is_current`]) and do nothing. Its records in the deliveries log stay until
    /// the log's own limit drops them.
    pub(crate) fn forget_run(&mut self, id: u64, changes: &mut Changes) -> Option<Arc<Run>> {
        let run = self.remove_run(id)?;
        changes.forgot(id);
        Some(run)
    }

    /// Removes a run from `runs` and every index of runs (what [`State::forget_run`] does,
    /// and the journal's replay of it).
    pub(crate) fn remove_run(&mut self, id: u64) -> Option<Arc<Run>> {
        let run = self.runs.remove(&id)?;
        for s in run.steps() {
            // Only if it still names this run: an import may have reused a hook id.
            if self
                .hooks
                .get(&s.hook_id)
                .is_some_and(|&(run_id, _)| run_id == id)
            {
                self.hooks.remove(&s.hook_id);
            }
        }
        if let Some(ids) = self.by_pipeline.get_mut(&run.pipeline_id()) {
            ids.all.remove(&id);
            ids.finished.remove(&id);
            if ids.all.is_empty() {
                self.by_pipeline.remove(&run.pipeline_id());
            }
        }
        if run.is_pending() {
            self.pending = self.pending.saturating_sub(1);
        }
        for step in 0..run.steps().len() {
            self.sending.remove(&(id, step));
        }
        Some(run)
    }

    /// Keeps at most `limit` runs of the pipeline (at least 1) by forgetting its oldest
    /// finished ones; pending runs are never forgotten, so it keeps more while more are
    /// pending. Answers how many it forgot.
    pub(crate) fn trim_history(
        &mut self,
        pipeline_id: u64,
        limit: usize,
        changes: &mut Changes,
    ) -> usize {
        let Some(ids) = self.by_pipeline.get(&pipeline_id) else {
            return 0;
        };
        let over = ids.all.len().saturating_sub(limit.max(1));
        if over == 0 {
            return 0;
        }
        // Oldest first; the pending ones are not in `finished`.
        let finished: Vec<u64> = ids.finished.iter().take(over).copied().collect();
        for id in &finished {
            self.forget_run(*id, changes);
        }
        finished.len()
    }
}
