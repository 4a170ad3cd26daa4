//! What the journal records: one [`Entry`] per commit (the store's [`Delta`] or a change of
//! the registry's index), and the [`Image`] a snapshot holds. Records are *physical*: they
//! carry the new value of what a commit touched (a run, a repository's settings, a tag), not
//! the request that caused it, so replaying one never decides anything again (no clock, no
//! random hook id, no chain rule runs at replay).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::pipeline::Pipeline;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::Run;
use crate::model::tag::Tag;
use crate::model::time::Timestamp;
use crate::registry::{RegistryChange, RegistryImage};
use crate::store::deliveries::DeliveryRecord;
use crate::store::state::{Counters, RepoEntry, State, TokenEntry};

/// One journal record.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Entry {
    /// A commit of the store.
    State(Box<Delta>),
    /// A change of the registry's index.
    Registry(RegistryChange),
    /// The process was alive at this time (written when idle, and at a clean stop): a callback
    /// timeout resumes with the time that was left then.
    Alive(Timestamp),
}

/// What one commit changed, as new values.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Delta {
    /// When it was committed.
    pub(crate) at: Option<Timestamp>,
    /// The id counters after it.
    pub(crate) ids: Counters,
    /// The state was emptied first (a reset, or an import whose content follows).
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) reset: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) repositories: Vec<RepoSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<TagChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) runs: Vec<RunRecord>,
    /// Runs dropped from the state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) forgotten: Vec<u64>,
    /// Deliveries appended to the log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) deliveries: Vec<DeliveryRecord>,
    /// Login tokens given (`Some`) or dropped (`None`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tokens: Vec<(String, Option<TokenEntry>)>,
    /// A delivery about to be POSTed (run, step): it is in flight until its outcome is
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sending: Option<(u64, usize)>,
    /// The registry's put by tag whose push event this is (it stays after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) settles: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A repository's settings and pipelines (its tags travel one by one).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RepoSettings {
    pub(crate) repository: Repository,
    pub(crate) pipelines: Vec<Pipeline>,
}

/// A change of a repository's tags.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum TagChange {
    /// This tag, new or pushed again.
    Put(RepoName, Tag),
    /// The repository's tags are now these (some were forgotten).
    All(RepoName, Vec<Tag>),
}

/// A run, with its hook URLs as they are (a run written for people shows them with any
/// password as `***`; a restarted hubmock must deliver to the real ones).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) run: Arc<Run>,
    pub(crate) hook_urls: Vec<String>,
}

impl RunRecord {
    pub(crate) fn of(run: &Arc<Run>) -> RunRecord {
        RunRecord {
            run: run.clone(),
            hook_urls: run.steps().iter().map(|s| s.hook_url.clone()).collect(),
        }
    }

    pub(crate) fn into_run(self) -> Arc<Run> {
        let mut run = self.run;
        // Just read, so not shared: no copy.
        let steps = &mut Arc::make_mut(&mut run).steps;
        for (step, url) in steps.iter_mut().zip(self.hook_urls) {
            step.hook_url = url;
        }
        run
    }
}

/// The whole state in a snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Image {
    pub(crate) at: Timestamp,
    pub(crate) ids: Counters,
    pub(crate) repositories: Vec<RepoEntry>,
    pub(crate) runs: Vec<RunRecord>,
    pub(crate) deliveries: VecDeque<DeliveryRecord>,
    pub(crate) tokens: HashMap<String, TokenEntry>,
    pub(crate) sending: BTreeSet<(u64, usize)>,
    pub(crate) registry: RegistryImage,
}

impl Image {
    /// The state's part of a snapshot (copied under the state lock; serialised after).
    pub(crate) fn of(state: &State, registry: RegistryImage) -> Image {
        Image {
            at: Timestamp::now(),
            ids: state.ids,
            repositories: state.repositories.values().cloned().collect(),
            runs: state.runs.values().map(RunRecord::of).collect(),
            deliveries: state.deliveries.clone(),
            tokens: state.tokens.clone(),
            sending: state.sending.clone(),
            registry,
        }
    }

    /// The state a snapshot describes, and the registry's part.
    pub(crate) fn into_state(self) -> (State, RegistryImage) {
        let mut state = State {
            ids: self.ids,
            deliveries: self.deliveries,
            tokens: self.tokens,
            sending: self.sending,
            ..State::default()
        };
        for entry in self.repositories {
            state
                .repositories
                .insert(entry.repository.repo_name(), entry);
        }
        for record in self.runs {
            let run = record.into_run();
            state.insert_run(run);
        }
        (state, self.registry)
    }
}

impl Delta {
    /// Applies a journaled commit to the state being rebuilt. `log_limit` bounds the
    /// deliveries log as it did when the commit was made.
    pub(crate) fn apply(self, state: &mut State, log_limit: usize) {
        if self.reset {
            *state = State {
                ids: state.ids,
                tokens: std::mem::take(&mut state.tokens),
                ..State::default()
            };
        }
        for settings in self.repositories {
            let name = settings.repository.repo_name();
            let entry = state
                .repositories
                .entry(name)
                .or_insert_with(|| RepoEntry::new(settings.repository.clone()));
            entry.repository = settings.repository;
            entry.pipelines = settings.pipelines;
        }
        for change in self.tags {
            match change {
                TagChange::Put(name, tag) => {
                    let entry = state
                        .repositories
                        .entry(name.clone())
                        .or_insert_with(|| RepoEntry::new(Repository::new(&name)));
                    match entry.tags.iter_mut().find(|t| t.name() == tag.name()) {
                        Some(kept) => *kept = tag,
                        None => entry.tags.push(tag),
                    }
                }
                TagChange::All(name, tags) => {
                    if let Some(entry) = state.repositories.get_mut(&name) {
                        entry.tags = tags;
                    }
                }
            }
        }
        for record in self.runs {
            let run = record.into_run();
            for (step, s) in run.steps().iter().enumerate() {
                if s.delivery.is_some() {
                    state.sending.remove(&(run.id(), step));
                }
            }
            state.insert_run(run);
        }
        for id in self.forgotten {
            state.remove_run(id);
        }
        for record in self.deliveries {
            while log_limit > 0 && state.deliveries.len() >= log_limit {
                state.deliveries.pop_front();
            }
            state.deliveries.push_back(record);
        }
        for (token, entry) in self.tokens {
            match entry {
                Some(entry) => state.tokens.insert(token, entry),
                None => state.tokens.remove(&token),
            };
        }
        if let Some(sent) = self.sending {
            state.sending.insert(sent);
        }
        state.ids = self.ids;
    }
}
