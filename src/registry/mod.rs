//! The registry: what `docker push` and `skopeo copy` store in hubmock, without HTTP.
//!
//! - `digest.rs`: digests and the hashers that compute them while a blob streams;
//! - `name.rs`: repository names and manifest references as registry paths carry them;
//! - `manifest.rs`: the manifest formats, checked;
//! - `storage.rs`: [`BlobStore`], the one small interface to the disk (content-addressed
//!   files, upload files, publish by rename);
//! - `blobs.rs`: uploads, mounts, blob reads and deletes;
//! - `manifests.rs`: manifests, tags, the referrers and the catalog;
//! - `error.rs`: [`RegistryError`], the spec's error codes in domain words;
//! - `image.rs`: small generated images and OCI layouts, for tests and clients of the library;
//! - `push.rs`: [`push::PushClient`], a minimal client that pushes generated images over HTTP
//!   (what `Hub::registry_push` and the scenario step `push_image` use).
//!
//! [`Registry`] keeps the index (which repository links which blob and manifest, its tags,
//! the uploads in progress) behind its own mutex, separate from the store's state lock: the
//! index is never held across an `.await` nor while blob content is read or written; under
//! it run only lookups, and the renames and unlinks that make a change visible at once.
//! Pushes become push events in the store (`Store::tag_pushed`), not here.

mod blobs;
pub mod digest;
mod durable;
pub mod error;
pub mod image;
pub mod manifest;
mod manifests;
pub mod name;
pub mod push;
pub mod storage;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub use blobs::{Appended, BlobRead};
pub use digest::{Algorithm, Digest, Hasher};
pub(crate) use durable::Replay;
pub use durable::{RegistryChange, RegistryImage};
pub use error::RegistryError;
pub use manifests::{ManifestRead, Page, Referrer, Stored, TagPut};
pub use name::{Reference, RegistryName};
pub use storage::BlobStore;

use crate::model::repository::RepoName;

/// How long an upload may sit untouched before it is forgotten (and its file removed).
const UPLOAD_IDLE_LIMIT: Duration = Duration::from_secs(3600);

/// The registry's content and index; see the module documentation.
pub struct Registry {
    storage: BlobStore,
    index: Mutex<Index>,
    /// Where changes of the index go to be journaled (with `--data-dir`).
    sink: OnceLock<durable::Sink>,
}

/// Which repository holds what. Blob files are shared between repositories: a file stays
/// while some repository links it.
#[derive(Default)]
struct Index {
    /// Published files by digest, with their size.
    files: HashMap<Digest, u64>,
    repos: BTreeMap<RepoName, Repo>,
    uploads: HashMap<String, Upload>,
    /// Orders manifests as they were pushed (the referrers list).
    next_seq: u64,
    /// Puts by tag whose push event is not decided yet (`TagPut::id` -> what undoes it):
    /// after a crash, the ones the journal never saw decided are undone.
    pending_puts: HashMap<u64, manifests::PendingPut>,
    /// Tags pulled by tag as unknown until the time given (the `tag-visible-after` quirk);
    /// on tokio's clock, so paused-time tests can step past it. Not journaled: after a
    /// restart every tag is visible.
    hidden: HashMap<(RepoName, String), tokio::time::Instant>,
}

impl Index {
    /// Whether `tag` of `repo` is hidden now; a hiding that has run out is dropped.
    fn is_hidden(&mut self, repo: &RepoName, tag: &str) -> bool {
        if self.hidden.is_empty() {
            return false;
        }
        let key = (repo.clone(), tag.to_owned());
        match self.hidden.get(&key) {
            Some(until) if tokio::time::Instant::now() < *until => true,
            Some(_) => {
                self.hidden.remove(&key);
                false
            }
            None => false,
        }
    }
}

/// One repository's links.
#[derive(Default)]
struct Repo {
    /// Blobs (layers, configs) by digest, with their size.
    blobs: HashMap<Digest, u64>,
    manifests: HashMap<Digest, Stored>,
    tags: BTreeMap<String, Digest>,
}

impl Repo {
    fn is_empty(&self) -> bool {
        self.blobs.is_empty() && self.manifests.is_empty() && self.tags.is_empty()
    }
}

/// An upload in progress.
struct Upload {
    repo: RepoName,
    /// Bytes received so far.
    size: u64,
    /// The running hash; `None` while a request writes to the upload.
    hasher: Option<Hasher>,
    touched: Instant,
}

impl Registry {
    /// A registry over `storage`.
    pub fn new(storage: BlobStore) -> Registry {
        Registry {
            storage,
            index: Mutex::new(Index::default()),
            sink: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where its files are.
    pub fn storage(&self) -> &BlobStore {
        &self.storage
    }

    /// Whether the registry holds anything for this repository.
    pub fn has_repository(&self, repo: &RepoName) -> bool {
        self.lock().repos.get(repo).is_some_and(|r| !r.is_empty())
    }

    /// Forgets everything (`POST /_hubmock/reset`): every blob, manifest, tag and upload.
    /// Requests in flight that finish later find their upload gone.
    pub fn clear(&self) {
        let mut index = self.lock();
        self.journal(|| RegistryChange::Clear);
        let old = std::mem::take(&mut *index);
        drop(index);
        for digest in old.files.keys() {
            let _ = self.storage.remove_blob(digest);
        }
        for id in old.uploads.keys() {
            let _ = self.storage.remove_upload(id);
        }
    }

    /// Forgets everything and removes a temporary store's directory at once (the emulator
    /// stops).
    pub fn discard(&self) {
        self.clear();
        self.storage.discard();
    }

    /// Removes a file no repository links any more (under the index lock).
    fn release_if_unlinked(&self, index: &mut Index, digest: &Digest) {
        let linked = index
            .repos
            .values()
            .any(|r| r.blobs.contains_key(digest) || r.manifests.contains_key(digest));
        if !linked && index.files.remove(digest).is_some() {
            let _ = self.storage.remove_blob(digest);
        }
    }
}

/// The storage failure of `what`, as the registry reports it.
fn storage_error(what: &str) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |err| RegistryError::storage(what, err)
}

/// A page of a sorted list: at most `n` items after `last`, and whether more follow (`n = 0`
/// is an empty page with nothing said to follow).
pub fn paginate<'a, I>(items: I, n: Option<usize>, last: Option<&str>) -> Page
where
    I: Iterator<Item = &'a str>,
{
    if n == Some(0) {
        return Page {
            items: Vec::new(),
            more: false,
        };
    }
    let mut after = items.filter(|item| last.is_none_or(|last| *item > last));
    let limit = n.unwrap_or(usize::MAX);
    let items: Vec<String> = after.by_ref().take(limit).map(str::to_owned).collect();
    let more = after.next().is_some();
    Page { items, more }
}
