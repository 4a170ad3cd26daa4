//! Manifests and tags: put (with the checks that the blobs and child manifests it names are
//! there), read, delete; the tag list, the catalog and the referrers API.

use std::collections::BTreeMap;
use std::fs::File;

use bytes::Bytes;

use super::digest::Digest;
use super::error::RegistryError;
use super::manifest::{Manifest, Platform};
use super::name::Reference;
use super::{paginate, storage_error, Index, Registry, RegistryChange};
use crate::model::ids;
use crate::model::repository::RepoName;

/// Largest image configuration read to learn an image's platform.
const CONFIG_LIMIT: u64 = 1024 * 1024;

/// What the index keeps of a manifest (its bytes are a blob on disk).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Orders manifests as they were first pushed.
    seq: u64,
    /// The manifest it refers to.
    pub subject: Option<Digest>,
    /// Its artifact type as the referrers API lists it.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// An index's child manifests.
    pub children: Vec<Digest>,
    /// An image's platform, from its configuration.
    pub platform: Option<Platform>,
    /// An image's layers' size.
    pub layers_size: u64,
}

impl Stored {
    /// Its place in the order manifests were first pushed.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

/// What a manifest put changed, so that it can be undone when its push event is refused.
#[derive(Clone, Debug)]
pub struct TagPut {
    /// Names the put in the journal, until its push event is decided (`Registry::settle`,
    /// or `Registry::undo_put`).
    pub id: u64,
    /// The manifest's digest.
    pub digest: Digest,
    /// The tag put, and the manifest it named before (if any).
    tag: Option<(String, Option<Digest>)>,
    /// Whether the manifest was new to the repository.
    new_manifest: bool,
}

/// What undoes a put by tag whose push event was never decided (a crash came between).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingPut {
    pub(crate) repo: RepoName,
    pub(crate) tag: String,
    pub(crate) before: Option<Digest>,
    pub(crate) digest: Digest,
    pub(crate) new_manifest: bool,
}

impl PendingPut {
    /// Undoes the put in `index` as [`Registry::undo_put`] does; answers what changed.
    pub(super) fn undo(&self, index: &mut Index) -> Vec<RegistryChange> {
        let tag = Some((&self.tag, &self.before));
        undo_in(index, &self.repo, tag, &self.digest, self.new_manifest)
    }
}

/// Undoes a put in `index`: `tag` names what it named before (`(tag, before)`, unless another
/// put moved it since), and a manifest that was new goes unless a tag names it. Answers what
/// changed, for the journal; the caller removes a file nothing links any more.
fn undo_in(
    index: &mut Index,
    repo: &RepoName,
    tag: Option<(&String, &Option<Digest>)>,
    digest: &Digest,
    new_manifest: bool,
) -> Vec<RegistryChange> {
    let mut changes = Vec::new();
    let Some(entry) = index.repos.get_mut(repo) else {
        return changes;
    };
    if let Some((tag, before)) = tag {
        if entry.tags.get(tag) == Some(digest) {
            match before {
                Some(before) => entry.tags.insert(tag.clone(), before.clone()),
                None => entry.tags.remove(tag),
            };
            changes.push(RegistryChange::Tag {
                repo: repo.clone(),
                tag: tag.clone(),
                digest: before.clone(),
            });
        }
    }
    if new_manifest && !entry.tags.values().any(|d| d == digest) {
        entry.manifests.remove(digest);
        changes.push(RegistryChange::Unmanifest {
            repo: repo.clone(),
            digest: digest.clone(),
        });
    }
    changes
}

/// A manifest opened for reading.
pub struct ManifestRead {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The open file.
    pub file: File,
}

/// One entry of the referrers list: a manifest whose `subject` is the digest asked about.
#[derive(Clone, Debug, PartialEq)]
pub struct Referrer {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A page of a list (tags, repositories): the items, and whether more follow.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The items, sorted.
    pub items: Vec<String>,
    /// Whether more follow the last one.
    pub more: bool,
}

impl Registry {
    /// The platform of an image manifest, from its configuration blob in `repo` (if it is an
    /// image configuration of at most 1 MiB). Read outside the index lock.
    pub async fn image_platform(&self, repo: &RepoName, manifest: &Manifest) -> Option<Platform> {
        let config = manifest.image_config()?;
        self.blob_size(repo, &config.digest)?;
        let bytes = self
            .storage
            .read_small(&config.digest, CONFIG_LIMIT)
            .await
            .ok()??;
        Platform::from_json(&serde_json::from_slice(&bytes).ok()?)
    }

    /// Stores a manifest (already parsed and checked) under `digest` in `repo`, and points
    /// `tag` at it. Every blob and child manifest it names must be in the repository
    /// (`MANIFEST_BLOB_UNKNOWN` otherwise, and nothing changes).
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        tag: Option<&str>,
        digest: &Digest,
        bytes: Bytes,
        manifest: &Manifest,
        platform: Option<Platform>,
    ) -> Result<TagPut, RegistryError> {
        let size = bytes.len() as u64;
        // Written aside first (outside the lock), published by a rename once checked.
        let staged = format!("manifest-{}", ids::random_hex(16));
        self.storage
            .stage(&staged, bytes)
            .await
            .map_err(storage_error("stage a manifest"))?;
        self.storage
            .sync_upload(&staged)
            .await
            .map_err(storage_error("save a manifest"))?;
        let mut index = self.lock();
        if let Err(err) = check_references(&index, repo, manifest) {
            drop(index);
            let _ = self.storage.remove_upload(&staged);
            return Err(err);
        }
        let already_there = index.files.contains_key(digest);
        if let Err(err) = self.storage.publish(&staged, digest, already_there) {
            drop(index);
            let _ = self.storage.remove_upload(&staged);
            return Err(RegistryError::storage("publish a manifest", err));
        }
        index.files.insert(digest.clone(), size);
        index.next_seq += 1;
        let seq = index.next_seq;
        let entry = index.repos.entry(repo.clone()).or_default();
        let new_manifest = !entry.manifests.contains_key(digest);
        if new_manifest {
            entry.manifests.insert(
                digest.clone(),
                Stored {
                    media_type: manifest.media_type.clone(),
                    size,
                    seq,
                    subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
                    artifact_type: manifest.referrer_artifact_type(),
                    annotations: manifest.annotations.clone(),
                    children: manifest
                        .children()
                        .iter()
                        .map(|c| c.digest.clone())
                        .collect(),
                    platform,
                    layers_size: manifest.layers_size(),
                },
            );
        }
        let tag = tag.map(|tag| {
            let before = entry.tags.insert(tag.to_owned(), digest.clone());
            (tag.to_owned(), before)
        });
        let stored = new_manifest.then(|| Box::new(entry.manifests[digest].clone()));
        let id = ids::random_u64();
        match &tag {
            // One record: after a crash the journal holds the manifest and the tag with it,
            // or neither; and until the push event is decided, the put is pending.
            Some((tag, before)) => {
                let pending = PendingPut {
                    repo: repo.clone(),
                    tag: tag.clone(),
                    before: before.clone(),
                    digest: digest.clone(),
                    new_manifest,
                };
                self.journal(|| RegistryChange::Put {
                    id,
                    stored,
                    pending: pending.clone(),
                });
                index.pending_puts.insert(id, pending);
            }
            None => {
                if let Some(stored) = stored {
                    self.journal(|| RegistryChange::Manifest {
                        repo: repo.clone(),
                        digest: digest.clone(),
                        stored,
                    });
                }
            }
        }
        Ok(TagPut {
            id,
            digest: digest.clone(),
            tag,
            new_manifest,
        })
    }

    /// Undoes a put whose push event was refused: the tag names what it named before (unless
    /// another put moved it since), and a manifest that was new goes unless a tag names it.
    pub fn undo_put(&self, repo: &RepoName, put: &TagPut) {
        let mut index = self.lock();
        let pending = index.pending_puts.remove(&put.id).is_some();
        if let Some((tag, _)) = &put.tag {
            index.hidden.remove(&(repo.clone(), tag.clone()));
        }
        let tag = put.tag.as_ref().map(|(tag, before)| (tag, before));
        for change in undo_in(&mut index, repo, tag, &put.digest, put.new_manifest) {
            if let RegistryChange::Unmanifest { digest, .. } = &change {
                self.release_if_unlinked(&mut index, digest);
            }
            self.journal(|| change);
        }
        if pending {
            // Last: a crash before it leaves the put pending, undone again at the restart.
            self.journal(|| RegistryChange::Settled { id: put.id });
        }
    }

    /// The put's push event was recorded (in the same journal record as its runs): it stays.
    pub fn settle(&self, put: &TagPut) {
        self.lock().pending_puts.remove(&put.id);
    }

    /// What the index keeps of manifest `digest` of `repo`.
    pub fn stored(&self, repo: &RepoName, digest: &Digest) -> Option<Stored> {
        self.lock().repos.get(repo)?.manifests.get(digest).cloned()
    }

    /// Hides `tag` of `repo` from pulls by tag and the tags list for `duration` (the
    /// `tag-visible-after` quirk): called between the put and its push event, so the
    /// webhook arrives while the tag still answers `MANIFEST_UNKNOWN`. Pulls by digest see
    /// the manifest at once.
    pub fn hide_tag(&self, repo: &RepoName, tag: &str, duration: std::time::Duration) {
        let now = tokio::time::Instant::now();
        let until = now
            .checked_add(duration)
            .unwrap_or(now + crate::faults::MAX_DELAY);
        self.lock()
            .hidden
            .insert((repo.clone(), tag.to_owned()), until);
    }

    /// Opens the manifest a tag or digest names.
    pub fn open_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<ManifestRead, RegistryError> {
        let mut index = self.lock();
        let unknown = || unknown_manifest(repo, reference);
        if let Reference::Tag(tag) = reference {
            if index.is_hidden(repo, tag) {
                return Err(unknown());
            }
        }
        let entry = index.repos.get(repo).ok_or_else(unknown)?;
        let digest = match reference {
            Reference::Tag(tag) => entry.tags.get(tag).ok_or_else(unknown)?,
            Reference::Digest(digest) => digest,
        };
        let stored = entry.manifests.get(digest).ok_or_else(unknown)?;
        let file = self
            .storage
            .open(digest)
            .map_err(storage_error("open a manifest"))?;
        Ok(ManifestRead {
            digest: digest.clone(),
            media_type: stored.media_type.clone(),
            size: stored.size,
            file,
        })
    }

    /// Deletes a tag (the manifest stays), or a manifest by digest (with every tag that
    /// names it).
    pub fn delete_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        let mut index = self.lock();
        let unknown = || unknown_manifest(repo, reference);
        let entry = index.repos.get_mut(repo).ok_or_else(unknown)?;
        match reference {
            Reference::Tag(tag) => {
                entry.tags.remove(tag).ok_or_else(unknown)?;
                index.hidden.remove(&(repo.clone(), tag.clone()));
                self.journal(|| RegistryChange::Tag {
                    repo: repo.clone(),
                    tag: tag.clone(),
                    digest: None,
                });
                Ok(())
            }
            Reference::Digest(digest) => {
                entry.manifests.remove(digest).ok_or_else(unknown)?;
                entry.tags.retain(|_, d| d != digest);
                self.journal(|| RegistryChange::Unmanifest {
                    repo: repo.clone(),
                    digest: digest.clone(),
                });
                self.release_if_unlinked(&mut index, digest);
                Ok(())
            }
        }
    }

    /// A page of `repo`'s tags in lexical order (`None`: the registry has no such
    /// repository).
    /// Tags hidden by the `tag-visible-after` quirk are left out.
    pub fn tags(&self, repo: &RepoName, n: Option<usize>, last: Option<&str>) -> Option<Page> {
        let mut index = self.lock();
        let entry = index.repos.get(repo).filter(|r| !r.is_empty())?;
        if index.hidden.is_empty() {
            return Some(paginate(entry.tags.keys().map(String::as_str), n, last));
        }
        let names: Vec<String> = entry.tags.keys().cloned().collect();
        let visible: Vec<String> = names
            .into_iter()
            .filter(|tag| !index.is_hidden(repo, tag))
            .collect();
        Some(paginate(visible.iter().map(String::as_str), n, last))
    }

    /// The repositories holding something, sorted by `namespace/name`.
    pub fn repositories(&self) -> Vec<RepoName> {
        let mut names: Vec<RepoName> = self
            .lock()
            .repos
            .iter()
            .filter(|(_, repo)| !repo.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_by_key(|name| name.to_string());
        names
    }

    /// The manifests of `repo` whose subject is `digest`, oldest first; only those of
    /// `artifact_type` when given.
    pub fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Vec<Referrer> {
        let index = self.lock();
        let Some(entry) = index.repos.get(repo) else {
            return Vec::new();
        };
        let mut found: Vec<(&Digest, &Stored)> = entry
            .manifests
            .iter()
            .filter(|(_, m)| m.subject.as_ref() == Some(digest))
            .filter(|(_, m)| artifact_type.is_none_or(|t| m.artifact_type.as_deref() == Some(t)))
            .collect();
        found.sort_by_key(|(_, m)| m.seq);
        found
            .into_iter()
            .map(|(digest, m)| Referrer {
                media_type: m.media_type.clone(),
                digest: digest.clone(),
                size: m.size,
                artifact_type: m.artifact_type.clone(),
                annotations: m.annotations.clone(),
            })
            .collect()
    }
}

/// Every blob and child manifest a manifest names must be in the repository.
fn check_references(
    index: &Index,
    repo: &RepoName,
    manifest: &Manifest,
) -> Result<(), RegistryError> {
    let entry = index.repos.get(repo);
    for blob in manifest.blobs() {
        if !entry.is_some_and(|r| r.blobs.contains_key(&blob.digest)) {
            return Err(RegistryError::ManifestBlobUnknown(format!(
                "the manifest names blob {} ({}), which repository {repo} does not have: push \
                 the blob first",
                blob.digest, blob.media_type
            )));
        }
    }
    for child in manifest.children() {
        if !entry.is_some_and(|r| r.manifests.contains_key(&child.digest)) {
            return Err(RegistryError::ManifestBlobUnknown(format!(
                "the index names manifest {}, which repository {repo} does not have: push it \
                 (by digest) first",
                child.digest
            )));
        }
    }
    Ok(())
}

fn unknown_manifest(repo: &RepoName, reference: &Reference) -> RegistryError {
    RegistryError::ManifestUnknown(format!("repository {repo} has no manifest {reference}"))
}
