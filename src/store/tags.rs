//! Tags: what pushes left in each repository, as the Hub API reads them. Every push records
//! its tag through the push door in `runs.rs`; this file is the registry's way in and the
//! queries.

use std::sync::Arc;

use super::Store;
use crate::error::Error;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::Run;
use crate::model::tag::{Activity, Tag, TagRecord};

impl Store {
    /// A tag pushed through the registry: records `record` for the Hub API and fires its push
    /// (R1: one run per pipeline, with the tag, the pusher, the manifest digest as the one
    /// image and the manifest's media type) in one commit, so a receiver that asks the Hub
    /// API about the tag when its webhook arrives finds it. A tag pushed again keeps its id
    /// and shows the new push. An unknown repository is created when the configuration says
    /// so; a refused push (an invalid record, too many runs pending) changes nothing.
    pub fn record_tag(&self, name: &RepoName, record: TagRecord) -> Result<Vec<Arc<Run>>, Error> {
        self.record_tag_settling(name, record, None)
    }

    /// [`Store::record_tag`] for the registry's put `settles` ([`crate::registry::TagPut::id`]):
    /// the journal records the push and the put's settling in one record.
    pub(super) fn record_tag_settling(
        &self,
        name: &RepoName,
        record: TagRecord,
        settles: Option<u64>,
    ) -> Result<Vec<Arc<Run>>, Error> {
        let push = record.push_request();
        self.push_recording(name, push, super::runs::TagUpdate::Given(record, settles))
    }

    /// Tags deleted through the registry: the Hub API forgets the tag records `gone` picks
    /// (a tag deleted by name; every tag naming a manifest deleted by digest). Answers how
    /// many it forgot; an unknown repository has none.
    pub fn forget_tags(&self, name: &RepoName, gone: impl Fn(&Tag) -> bool) -> usize {
        self.commit(|state, changes| {
            let Some(entry) = state.repositories.get_mut(name) else {
                return Ok(0);
            };
            let before = entry.tags.len();
            entry.tags.retain(|tag| !gone(tag));
            if entry.tags.len() != before {
                changes.all_tags.push(name.clone());
            }
            Ok(before - entry.tags.len())
        })
        .unwrap_or(0)
    }

    /// A repository's tags, in the order first pushed.
    pub fn tags(&self, name: &RepoName) -> Result<Vec<Tag>, Error> {
        self.read(|state| Ok(state.entry(name)?.tags.clone()))
    }

    /// One tag of a repository.
    pub fn tag(&self, name: &RepoName, tag: &str) -> Result<Tag, Error> {
        self.read(|state| state.entry(name)?.tag(tag).cloned())
    }

    /// A repository with what its tags say about it.
    pub fn repository_activity(&self, name: &RepoName) -> Result<(Repository, Activity), Error> {
        self.read(|state| {
            let entry = state.entry(name)?;
            Ok((entry.repository.clone(), Activity::of(&entry.tags)))
        })
    }

    /// The repositories of a namespace, by name, each with what its tags say about it.
    pub fn namespace_repositories(&self, namespace: &str) -> Vec<(Repository, Activity)> {
        self.read(|state| {
            state
                .repositories
                .values()
                .filter(|e| e.repository.namespace == namespace)
                .map(|e| (e.repository.clone(), Activity::of(&e.tags)))
                .collect()
        })
    }

    /// Whether anyone can own this namespace: a configured user's, or one a repository lives
    /// in.
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.shared.users.iter().any(|(user, _)| user == namespace)
            || self.read(|state| state.repositories.keys().any(|n| n.namespace == namespace))
    }
}
