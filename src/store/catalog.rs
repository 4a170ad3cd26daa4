//! Repositories and their webhook pipelines.

use super::state::RepoEntry;
use super::Store;
use crate::error::Error;
use crate::model::chain::{self, Event};
use crate::model::pipeline::{Pipeline, PipelineSpec};
use crate::model::repository::{RepoName, Repository};
use crate::model::run::Run;
use crate::model::time::Timestamp;
use std::sync::Arc;

impl Store {
    /// Creates a repository; a conflict if it exists.
    pub fn create_repository(&self, repository: Repository) -> Result<Repository, Error> {
        let name = repository.repo_name();
        self.commit(|state, changes| {
            if state.repositories.contains_key(&name) {
                return Err(Error::Conflict(format!(
                    "Repository {name} already exists."
                )));
            }
            changes.repository(&name);
            state
                .repositories
                .insert(name, RepoEntry::new(repository.clone()));
            Ok(repository)
        })
    }

    /// A repository.
    pub fn repository(&self, name: &RepoName) -> Result<Repository, Error> {
        self.read(|state| Ok(state.entry(name)?.repository.clone()))
    }

    /// Every repository, by name.
    pub fn repositories(&self) -> Vec<Repository> {
        self.read(|state| {
            state
                .repositories
                .values()
                .map(|e| e.repository.clone())
                .collect()
        })
    }

    /// A repository's pipelines, in creation order.
    pub fn pipelines(&self, name: &RepoName) -> Result<Vec<Pipeline>, Error> {
        self.read(|state| Ok(state.entry(name)?.pipelines.clone()))
    }

    /// One pipeline.
    pub fn pipeline(&self, name: &RepoName, slug: &str) -> Result<Pipeline, Error> {
        self.read(|state| {
            let entry = state.entry(name)?;
            Ok(entry.pipelines[entry.pipeline_index(slug)?].clone())
        })
    }

    /// Creates a pipeline from a validated spec; refused if its name or slug is taken.
    pub fn create_pipeline(
        &self,
        name: &RepoName,
        spec: PipelineSpec,
        creator: &str,
    ) -> Result<Pipeline, Error> {
        self.commit(|state, changes| {
            let id = state.ids.pipeline + 1;
            let entry = state.entry_mut(name)?;
            let pipeline = Pipeline::create(id, spec, creator, Timestamp::now());
            check_unique(entry, &pipeline, None)?;
            entry.pipelines.push(pipeline.clone());
            state.ids.pipeline = id;
            changes.repository(name);
            Ok(pipeline)
        })
    }

    /// Updates a pipeline; pending runs keep the copy they started with.
    pub fn update_pipeline(
        &self,
        name: &RepoName,
        slug: &str,
        spec: PipelineSpec,
    ) -> Result<Pipeline, Error> {
        self.commit(|state, changes| {
            let entry = state.entry_mut(name)?;
            let index = entry.pipeline_index(slug)?;
            let mut updated = entry.pipelines[index].clone();
            updated.update(spec, Timestamp::now());
            check_unique(entry, &updated, Some(index))?;
            entry.pipelines[index] = updated.clone();
            changes.repository(name);
            Ok(updated)
        })
    }

    /// Deletes a pipeline; the chain cancels the runs it names (R10).
    pub fn delete_pipeline(&self, name: &RepoName, slug: &str) -> Result<(), Error> {
        self.commit(|state, changes| {
            let entry = state.entry_mut(name)?;
            let index = entry.pipeline_index(slug)?;
            let pipeline = entry.pipelines.remove(index);
            changes.repository(name);
            let now = Timestamp::now();
            for run_id in
                chain::cancelled_by_deleting(pipeline.id, state.runs.values().map(|r| &**r))
            {
                if let Some(run) = state.runs.get_mut(&run_id).map(Arc::make_mut) {
                    if let Ok(effects) = run.apply(Event::PipelineDeleted, now) {
                        changes.run(run_id, effects);
                    }
                }
            }
            Ok(())
        })
    }

    /// A pipeline's runs, newest first.
    pub fn history(&self, name: &RepoName, slug: &str) -> Result<Vec<Arc<Run>>, Error> {
        self.read(|state| {
            let entry = state.entry(name)?;
            let pipeline_id = entry.pipelines[entry.pipeline_index(slug)?].id;
            Ok(state.pipeline_runs(pipeline_id).cloned().collect())
        })
    }
}

fn check_unique(entry: &RepoEntry, pipeline: &Pipeline, skip: Option<usize>) -> Result<(), Error> {
    for (i, other) in entry.pipelines.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if other.name == pipeline.name || other.slug == pipeline.slug {
            return Err(Error::field(
                "name",
                format!(
                    "A webhook pipeline named '{}' (slug '{}') already exists for this repository.",
                    other.name, other.slug
                ),
            ));
        }
    }
    Ok(())
}
