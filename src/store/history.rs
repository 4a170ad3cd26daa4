//! The reads behind the settings pages: one page of a pipeline's History with the deliveries
//! logged for it, each repository's latest run per pipeline, a pipeline's pending count, and a
//! wake-up at the next change a History page shows. Read in one look each, so a page never shows half a change, and a
//! page of 25 runs never copies the other 975.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::deliveries::DeliveryRecord;
use super::Store;
use crate::error::Error;
use crate::model::pipeline::Pipeline;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::Run;
use crate::model::tag::Tag;

/// One page of a pipeline's runs, newest first, as one look at the state saw it.
#[derive(Debug)]
pub struct HistoryPage {
    /// The repository.
    pub repository: Repository,
    /// The pipeline.
    pub pipeline: Pipeline,
    /// How many runs the pipeline has in all.
    pub total: usize,
    /// The runs of this page, newest first.
    pub runs: Vec<Arc<Run>>,
    /// The logged deliveries of these runs, oldest first (the log is bounded, so an old run's
    /// may be gone).
    pub deliveries: Vec<DeliveryRecord>,
}

/// A repository as its settings page shows it.
#[derive(Debug)]
pub struct Overview {
    /// The repository.
    pub repository: Repository,
    /// Its pipelines, in creation order.
    pub pipelines: Vec<Pipeline>,
    /// The latest run of each pipeline that has one, by slug.
    pub latest: HashMap<String, Arc<Run>>,
    /// Its tags, in the order first pushed.
    pub tags: Vec<Tag>,
}

/// Completes at the next change of a run it watches, or when a new run starts (or the state
/// is reset or imported). Dropping it stops watching.
#[must_use = "a wake-up does nothing unless awaited"]
pub struct Wakeup(Vec<oneshot::Receiver<()>>);

impl Future for Wakeup {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A sender dropped (by a reset or an import) wakes as well as one that fired.
        let any = self.0.iter_mut().any(|rx| Pin::new(rx).poll(cx).is_ready());
        if any {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Store {
    /// `limit` runs of a pipeline from the `offset`-th newest, with their logged deliveries;
    /// with `watch`, also a [`Wakeup`] for the page's pending runs and the next run to start,
    /// registered in the same look so that no change slips in between.
    pub fn history_page(
        &self,
        name: &RepoName,
        slug: &str,
        offset: usize,
        limit: usize,
        watch: bool,
    ) -> Result<(HistoryPage, Option<Wakeup>), Error> {
        let state = self.lock();
        let entry = state.entry(name)?;
        let pipeline = entry.pipelines[entry.pipeline_index(slug)?].clone();
        let mut total = 0;
        let mut runs = Vec::with_capacity(limit);
        for run in state.pipeline_runs(pipeline.id) {
            if total >= offset && runs.len() < limit {
                runs.push(run.clone());
            }
            total += 1;
        }
        let ids: HashSet<u64> = runs.iter().map(|r| r.id()).collect();
        let deliveries = state
            .deliveries
            .iter()
            .filter(|d| ids.contains(&d.run_id))
            .cloned()
            .collect();
        let wakeup = watch.then(|| {
            let watchers = &self.shared.watchers;
            let mut receivers: Vec<_> = runs
                .iter()
                .filter(|run| run.is_pending())
                .map(|run| watchers.watch(run.id()))
                .collect();
            // A push wakes the ids of the runs it starts; the next one is the first of them.
            receivers.push(watchers.watch(state.ids.run + 1));
            Wakeup(receivers)
        });
        let page = HistoryPage {
            repository: entry.repository.clone(),
            pipeline,
            total,
            runs,
            deliveries,
        };
        Ok((page, wakeup))
    }

    /// How many of a pipeline's runs are pending: what deleting it would cancel (R10).
    pub fn pending_runs(&self, name: &RepoName, slug: &str) -> Result<usize, Error> {
        self.read(|state| {
            let entry = state.entry(name)?;
            let id = entry.pipelines[entry.pipeline_index(slug)?].id;
            Ok(state
                .pipeline_runs(id)
                .filter(|run| run.is_pending())
                .count())
        })
    }

    /// A repository, its pipelines in creation order, the latest run of each pipeline that
    /// has one, and its tags.
    pub fn repository_overview(&self, name: &RepoName) -> Result<Overview, Error> {
        self.read(|state| {
            let entry = state.entry(name)?;
            let mut latest = HashMap::new();
            let ids: HashMap<u64, &str> = entry
                .pipelines
                .iter()
                .map(|p| (p.id, p.slug.as_str()))
                .collect();
            // Newest first, stopping once every pipeline has its latest.
            for run in state.runs.values().rev() {
                if latest.len() == ids.len() {
                    break;
                }
                if let Some(slug) = ids.get(&run.pipeline_id()) {
                    latest
                        .entry((*slug).to_owned())
                        .or_insert_with(|| run.clone());
                }
            }
            Ok(Overview {
                repository: entry.repository.clone(),
                pipelines: entry.pipelines.clone(),
                latest,
                tags: entry.tags.clone(),
            })
        })
    }
}
