//! The registry's index as the journal records it: each change made under the index lock is
//! sent to the journal as a [`RegistryChange`] while the lock is held (so the journal has them
//! in the order they were made), and a snapshot holds the index as a [`RegistryImage`].
//! Uploads in progress are not kept: after a restart a client finds its upload unknown
//! (`BLOB_UPLOAD_UNKNOWN`) and starts it again, as clients do.
//!
//! Blob content is not in the journal: a blob's file is fsynced before it is published (renamed
//! to its content address), and the journal's writer fsyncs the blob directories before it
//! writes a batch that links a blob, so a link that is durable always names a durable file.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::manifests::{PendingPut, Stored};
use super::{Digest, Index, Registry, Repo};
use crate::model::repository::RepoName;

/// A change of the registry's index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RegistryChange {
    /// Blob `digest` (`size` bytes) is linked into `repo`: an upload finished, or a mount.
    Link {
        /// The repository.
        repo: RepoName,
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Blob `digest` is unlinked from `repo`.
    Unlink {
        /// The repository.
        repo: RepoName,
        /// The blob.
        digest: Digest,
    },
    /// Manifest `digest` is stored in `repo` (if it was not already).
    Manifest {
        /// The repository.
        repo: RepoName,
        /// The manifest.
        digest: Digest,
        /// What the index keeps of it.
        stored: Box<Stored>,
    },
    /// Manifest `digest` is gone from `repo`, with every tag that named it.
    Unmanifest {
        /// The repository.
        repo: RepoName,
        /// The manifest.
        digest: Digest,
    },
    /// Tag `tag` of `repo` names `digest`, or nothing.
    Tag {
        /// The repository.
        repo: RepoName,
        /// The tag.
        tag: String,
        /// What it names now.
        digest: Option<Digest>,
    },
    /// A manifest put by tag: the manifest stored (`stored`, when it was new) and the tag
    /// moved, in one record, and *pending* until its push event is decided: the store's record
    /// of the push names the put (`settles`), or [`RegistryChange::Settled`] follows its undo.
    /// A put still pending when the journal ends was never acknowledged (a crash came before
    /// its push event) and is undone at the restart.
    Put {
        /// The put's id ([`super::TagPut::id`]).
        id: u64,
        /// The manifest, when new to the repository.
        stored: Option<Box<Stored>>,
        /// What the put did, and what undoes it.
        pending: PendingPut,
    },
    /// The put's push event was refused and the put undone.
    Settled {
        /// The put's id.
        id: u64,
    },
    /// Everything was forgotten (a reset).
    Clear,
}

/// The registry's index in a snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RegistryImage {
    repos: BTreeMap<RepoName, RepoImage>,
    next_seq: u64,
    #[serde(default)]
    pending_puts: BTreeMap<u64, PendingPut>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RepoImage {
    blobs: HashMap<Digest, u64>,
    manifests: HashMap<Digest, Stored>,
    tags: BTreeMap<String, Digest>,
}

/// The registry's index being rebuilt at a restart: a snapshot's image, then each change
/// journaled after it, applied as the journal is read.
pub(crate) struct Replay {
    index: Index,
}

impl Replay {
    /// Starts from a snapshot's image (the default one: from nothing).
    pub(crate) fn new(image: RegistryImage) -> Replay {
        let mut index = Index {
            next_seq: image.next_seq,
            pending_puts: image.pending_puts.into_iter().collect(),
            ..Index::default()
        };
        for (name, repo) in image.repos {
            index.repos.insert(
                name,
                Repo {
                    blobs: repo.blobs,
                    manifests: repo.manifests,
                    tags: repo.tags,
                },
            );
        }
        Replay { index }
    }

    /// Applies one change, in journal order.
    pub(crate) fn apply(&mut self, change: RegistryChange) {
        apply(&mut self.index, change);
    }
}

/// Where the registry sends its changes.
pub(crate) type Sink = Arc<dyn Fn(RegistryChange) + Send + Sync>;

impl Registry {
    /// Sends `change` to the journal, if there is one (called under the index lock).
    pub(super) fn journal(&self, change: impl FnOnce() -> RegistryChange) {
        if let Some(sink) = self.sink.get() {
            sink(change());
        }
    }

    /// From now on, every change of the index goes to `sink` (called under the index lock).
    pub(crate) fn journal_to(&self, sink: Sink) {
        let _ = self.sink.set(sink);
    }

    /// Runs `with` on a copy of the index, while the index is locked (the store takes its own
    /// lock inside, for a snapshot that cuts both at the same point of the journal).
    pub(crate) fn image_locked<T>(&self, with: impl FnOnce(RegistryImage) -> T) -> T {
        let index = self.lock();
        let image = RegistryImage {
            repos: index
                .repos
                .iter()
                .map(|(name, repo)| {
                    let image = RepoImage {
                        blobs: repo.blobs.clone(),
                        manifests: repo.manifests.clone(),
                        tags: repo.tags.clone(),
                    };
                    (name.clone(), image)
                })
                .collect(),
            next_seq: index.next_seq,
            pending_puts: index
                .pending_puts
                .iter()
                .map(|(id, put)| (*id, put.clone()))
                .collect(),
        };
        with(image)
    }

    /// Finishes the index [`Replay`] rebuilt, then undoes every put by tag still pending
    /// (neither in `settled`, the puts the store's records name, nor settled by an undo): its
    /// push event never happened. Every file a repository links must be on disk (`Err` names
    /// the first missing one); files no repository links (published just before a crash) and
    /// uploads are removed. Answers the changes the undoing made, for the journal.
    pub(crate) fn restore(
        &self,
        replay: Replay,
        settled: &std::collections::HashSet<u64>,
    ) -> Result<Vec<RegistryChange>, String> {
        let mut index = replay.index;
        let mut undone = Vec::new();
        let mut pending: Vec<(u64, PendingPut)> = std::mem::take(&mut index.pending_puts)
            .into_iter()
            .filter(|(id, _)| !settled.contains(id))
            .collect();
        pending.sort_by_key(|(id, _)| *id);
        for (id, put) in pending {
            undone.extend(put.undo(&mut index));
            undone.push(RegistryChange::Settled { id });
        }
        index.repos.retain(|_, repo| !repo.is_empty());
        for repo in index.repos.values() {
            for (digest, size) in &repo.blobs {
                index.files.insert(digest.clone(), *size);
            }
            for (digest, stored) in &repo.manifests {
                index.files.insert(digest.clone(), stored.size);
            }
        }
        for digest in index.files.keys() {
            let path = self
                .storage
                .blob_path(digest)
                .map_err(|e| format!("cannot open the registry's directory: {e}"))?;
            if !path.is_file() {
                return Err(format!(
                    "{} is missing: the journal says the registry holds blob {digest}",
                    path.display()
                ));
            }
        }
        self.storage
            .remove_unlisted(|digest| index.files.contains_key(digest))
            .map_err(|e| format!("cannot tidy the registry's directory: {e}"))?;
        *self.lock() = index;
        Ok(undone)
    }
}

fn apply(index: &mut Index, change: RegistryChange) {
    match change {
        RegistryChange::Link { repo, digest, size } => {
            index
                .repos
                .entry(repo)
                .or_default()
                .blobs
                .insert(digest, size);
        }
        RegistryChange::Unlink { repo, digest } => {
            if let Some(repo) = index.repos.get_mut(&repo) {
                repo.blobs.remove(&digest);
            }
        }
        RegistryChange::Manifest {
            repo,
            digest,
            stored,
        } => {
            index.next_seq = index.next_seq.max(stored.seq());
            index
                .repos
                .entry(repo)
                .or_default()
                .manifests
                .entry(digest)
                .or_insert(*stored);
        }
        RegistryChange::Unmanifest { repo, digest } => {
            if let Some(repo) = index.repos.get_mut(&repo) {
                repo.manifests.remove(&digest);
                repo.tags.retain(|_, d| *d != digest);
            }
        }
        RegistryChange::Tag { repo, tag, digest } => {
            let tags = &mut index.repos.entry(repo).or_default().tags;
            match digest {
                Some(digest) => tags.insert(tag, digest),
                None => tags.remove(&tag),
            };
        }
        RegistryChange::Put {
            id,
            stored,
            pending,
        } => {
            let repo = index.repos.entry(pending.repo.clone()).or_default();
            if let Some(stored) = stored {
                repo.manifests
                    .entry(pending.digest.clone())
                    .or_insert(*stored);
            }
            repo.tags
                .insert(pending.tag.clone(), pending.digest.clone());
            if let Some(stored) = repo.manifests.get(&pending.digest) {
                index.next_seq = index.next_seq.max(stored.seq());
            }
            index.pending_puts.insert(id, pending);
        }
        RegistryChange::Settled { id } => {
            index.pending_puts.remove(&id);
        }
        RegistryChange::Clear => *index = Index::default(),
    }
}
