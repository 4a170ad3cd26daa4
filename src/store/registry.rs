//! What the registry asks of the store: whether credentials are a user's, whether a
//! repository exists or may be created and who may read it, and — in one place,
//! [`Store::tag_pushed`] — what a tag pushed through the registry does to the rest of hubmock.

use std::sync::Arc;

use super::Store;
use crate::error::{Error, Missing};
use crate::logging;
use crate::model::chain;
use crate::model::repository::RepoName;
use crate::model::run::Run;
use crate::model::tag::{PushEvents, TagPush};

impl Store {
    /// Whether `username` and `password` are those of a configured user.
    pub fn check_password(&self, username: &str, password: &str) -> bool {
        self.shared
            .users
            .iter()
            .any(|(u, p)| u == username && p == password)
    }

    /// Whether the registry may store content for `name`: the Hub repository exists, or a
    /// push may create it (`--no-implicit-repositories` off). `NAME_UNKNOWN` otherwise, before
    /// any byte is stored.
    pub fn may_push_to(&self, name: &RepoName) -> Result<(), Error> {
        if self.shared.config.implicit_repositories || self.repository(name).is_ok() {
            Ok(())
        } else {
            Err(Error::NotFound(Missing::Repository(name.clone())))
        }
    }

    /// Whether the Hub repository `name` exists.
    pub fn has_repository(&self, name: &RepoName) -> bool {
        self.read(|state| state.repositories.contains_key(name))
    }

    /// Whether the Hub repository `name` is private (one not created yet is public, as a
    /// push would create it).
    pub fn is_private(&self, name: &RepoName) -> bool {
        self.read(|state| {
            state
                .repositories
                .get(name)
                .is_some_and(|entry| entry.repository.is_private)
        })
    }

    /// Whether a platform manifest of an index pushed to `name` fires a push event of its
    /// own: for every pipeline with `--push-events per-manifest`, else for the pipelines
    /// with the `duplicate-per-manifest` quirk ([`crate::model::chain::fan_out`]
    /// picks them).
    fn posts_per_manifest(&self, name: &RepoName) -> bool {
        let config = &self.shared.config;
        let every = config.push_events == PushEvents::PerManifest;
        every
            || self.read(|state| {
                state.repositories.get(name).is_some_and(|entry| {
                    entry
                        .pipelines
                        .iter()
                        .any(|p| chain::posts_per_manifest(p, config.quirks, every))
                })
            })
    }

    /// **The one place where a tag pushed through the registry reaches the rest of hubmock**:
    /// tag `push.tag` of `push.repository` now names manifest `push.digest` (its media type,
    /// size and platform images, who pushed it and when).
    ///
    /// It records the tag for the Hub API (`GET /v2/repositories/{ns}/{repo}/tags/`) and
    /// fires the push of SPEC R1 in one commit ([`Store::record_tag`]), exactly as the control
    /// API's push does (same runs, history and deliveries): `images` = `[digest]`,
    /// `media_type` = the manifest's; so a receiver that asks the Hub API about the tag as
    /// soon as its webhook arrives finds it. With `--push-events per-manifest` an index also
    /// fires one push per platform manifest, after the tag's own, leaving the tag record as
    /// it is; those are best effort (the tag's push has already started runs). A refused tag
    /// push (the pending-run limit, an unknown repository with `--no-implicit-repositories`)
    /// records nothing and is the caller's to undo.
    pub fn tag_pushed(&self, push: &TagPush, put: u64) -> Result<Vec<Arc<Run>>, Error> {
        let pusher = match &push.pusher {
            Some(user) => user.clone(),
            // No user (`--no-auth`, no credentials): the repository's owner, as for a
            // control-API push; a repository the push creates is owned by its namespace.
            None => self
                .repository(&push.repository)
                .map_or_else(|_| push.repository.namespace.clone(), |r| r.owner),
        };
        let mut runs =
            self.record_tag_settling(&push.repository, push.record(pusher), Some(put))?;
        if self.posts_per_manifest(&push.repository) {
            for request in push.platform_push_requests() {
                match self.push_event_only(&push.repository, request) {
                    Ok(more) => runs.extend(more),
                    Err(error) => tracing::warn!(
                        target: logging::REQUEST,
                        repository = %push.repository,
                        tag = %push.tag,
                        %error,
                        "a platform manifest's push event was refused"
                    ),
                }
            }
        }
        tracing::info!(
            target: logging::REQUEST,
            repository = %push.repository,
            tag = %push.tag,
            digest = %push.digest,
            runs = runs.len(),
            "registry push"
        );
        Ok(runs)
    }
}
