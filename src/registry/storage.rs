//! Where blob content lives: the one small interface between the registry and the disk.
//!
//! A directory holds content-addressed files (`blobs/<algorithm>/<hex>`: layers, configs and
//! manifests alike) and the files of uploads in progress (`uploads/<id>`), on one file system
//! so that a finished upload is *published* by a rename: a blob is either whole at its
//! content address or not there at all, and two uploads of the same content end with one
//! correct file. By default the directory is a temporary one (`tempfile`), created on the
//! first write and removed when the emulator is dropped; [`BlobStore::at`] keeps it in a
//! given directory instead (what `--data-dir` will use).
//!
//! Content is streamed: an upload is written in chunks of at most [`CHUNK`] bytes, hashed
//! and written on tokio's blocking pool while the next chunk arrives, so memory use does not
//! grow with the blob. The registry's index (which blob is where) is kept by the caller; no
//! method here takes a lock, and only [`BlobStore::publish`] and the removals are meant to run
//! under the caller's index lock (they are renames and unlinks, not content I/O).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body;
use tempfile::TempDir;

use super::digest::{Algorithm, Digest, Hasher};

/// How many bytes of an upload are gathered before they are written (and hashed) at once.
pub const CHUNK: usize = 1024 * 1024;

/// Where the store keeps its files.
enum Root {
    /// A temporary directory, removed when the store is dropped.
    Temporary(TempDir),
    /// A directory the store was given.
    Directory(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
        match self {
            Root::Temporary(dir) => dir.path(),
            Root::Directory(path) => path,
        }
    }
}

/// Blob content on disk; see the module documentation.
pub struct BlobStore {
    root: OnceLock<Root>,
    /// Where to create the root on first use (`None`: a temporary directory).
    wanted: Option<PathBuf>,
    creating: Mutex<()>,
}

/// How appending a body to an upload failed. The upload's file is as it was before.
#[derive(Debug)]
pub enum AppendError<E> {
    /// The body broke off or stalled (the body's own error).
    Body(E),
    /// The disk failed.
    Io(io::Error),
}

impl BlobStore {
    /// A store in a temporary directory, created on first use and removed on drop.
    pub fn temporary() -> BlobStore {
        BlobStore {
            root: OnceLock::new(),
            wanted: None,
            creating: Mutex::new(()),
        }
    }

    /// A store in `dir` (created if missing), kept after the emulator stops.
    pub fn at(dir: impl Into<PathBuf>) -> BlobStore {
        BlobStore {
            wanted: Some(dir.into()),
            ..BlobStore::temporary()
        }
    }

    /// The root directory, created (with `blobs/` and `uploads/`) on first use.
    pub fn root(&self) -> io::Result<&Path> {
        if let Some(root) = self.root.get() {
            return Ok(root.path());
        }
        let _creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(root) = self.root.get() {
            return Ok(root.path());
        }
        let root = match &self.wanted {
            Some(dir) => {
                fs::create_dir_all(dir)?;
                Root::Directory(dir.clone())
            }
            None => Root::Temporary(
                tempfile::Builder::new()
                    .prefix("hubmock-registry-")
                    .tempdir()?,
            ),
        };
        for sub in ["blobs/sha256", "blobs/sha512", "uploads"] {
            fs::create_dir_all(root.path().join(sub))?;
        }
        Ok(self.root.get_or_init(|| root).path())
    }

    /// Removes a temporary store's directory now, rather than when the store is dropped (a
    /// [`crate::Hub`] in a test process that may end before its thread lets go of the store).
    /// A store in a given directory keeps it.
    pub fn discard(&self) {
        if let Some(Root::Temporary(dir)) = self.root.get() {
            let _ = fs::remove_dir_all(dir.path());
        }
    }

    /// The path of a published blob.
    pub fn blob_path(&self, digest: &Digest) -> io::Result<PathBuf> {
        Ok(self
            .root()?
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex()))
    }

    /// The path of an upload's file (or a staged manifest's).
    pub fn upload_path(&self, id: &str) -> io::Result<PathBuf> {
        Ok(self.root()?.join("uploads").join(id))
    }

    /// Creates the empty file of a new upload.
    pub fn create_upload(&self, id: &str) -> io::Result<()> {
        File::create(self.upload_path(id)?).map(drop)
    }

    /// Writes `bytes` as a staged file `id` (a manifest, before it is published).
    pub async fn stage(&self, id: &str, bytes: Bytes) -> io::Result<()> {
        let path = self.upload_path(id)?;
        tokio::task::spawn_blocking(move || fs::write(path, &bytes))
            .await
            .map_err(io::Error::other)?
    }

    /// Appends `body` to upload `id`, which has `from` bytes, hashing with `hasher` as it
    /// goes; answers the hasher and the bytes written. On failure the file is cut back to
    /// `from` bytes (the caller keeps its own copy of the hasher as it was).
    pub async fn append<B>(
        &self,
        id: &str,
        from: u64,
        hasher: Hasher,
        body: &mut B,
    ) -> Result<(Hasher, u64), AppendError<B::Error>>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let path = self.upload_path(id).map_err(AppendError::Io)?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(AppendError::Io)?;
        let mut writer = Writer::Idle(file, Box::new(hasher));
        let mut written = 0u64;
        let mut gathered: Vec<Bytes> = Vec::new();
        let mut gathered_len = 0;
        let outcome = loop {
            let frame = match body.frame().await {
                None => break Ok(()),
                Some(Err(err)) => break Err(AppendError::Body(err)),
                Some(Ok(frame)) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            gathered_len += data.len();
            gathered.push(data);
            if gathered_len >= CHUNK {
                written += gathered_len as u64;
                gathered_len = 0;
                if let Err(err) = writer.write(std::mem::take(&mut gathered)).await {
                    break Err(AppendError::Io(err));
                }
            }
        };
        let finished = match outcome {
            Ok(()) => {
                written += gathered_len as u64;
                match writer.write(gathered).await {
                    Ok(()) => writer.finish().await,
                    Err(err) => Err(err),
                }
            }
            Err(err) => {
                // Let a chunk in flight land before the file is cut back.
                let _ = writer.finish().await;
                return Err(self.cut_back(&path, from, err));
            }
        };
        match finished {
            Ok(hasher) => Ok((hasher, written)),
            Err(err) => Err(self.cut_back(&path, from, AppendError::Io(err))),
        }
    }

    /// Cuts an upload's file back to `size` bytes (a chunk that failed, or was refused).
    pub fn truncate(&self, id: &str, size: u64) -> io::Result<()> {
        let path = self.upload_path(id)?;
        fs::OpenOptions::new().write(true).open(path)?.set_len(size)
    }

    fn cut_back<E>(&self, path: &Path, size: u64, error: AppendError<E>) -> AppendError<E> {
        let cut = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(size));
        match cut {
            Ok(()) => error,
            Err(err) => AppendError::Io(err),
        }
    }

    /// The digest of upload `id`'s whole file with `algorithm`, read from disk (when the
    /// client asks for another algorithm than the one computed while it streamed).
    pub async fn hash_upload(&self, id: &str, algorithm: Algorithm) -> io::Result<Digest> {
        let path = self.upload_path(id)?;
        tokio::task::spawn_blocking(move || {
            let mut file = File::open(path)?;
            let mut hasher = Hasher::new(algorithm);
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    return Ok(hasher.finish());
                }
                hasher.update(&buf[..n]);
            }
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Publishes upload (or staged file) `id` as the blob `digest`: a rename, so the blob
    /// appears whole or not at all. When the blob is there already, the upload's file is
    /// removed instead (same content, same address).
    pub fn publish(&self, id: &str, digest: &Digest, already_there: bool) -> io::Result<()> {
        let upload = self.upload_path(id)?;
        if already_there {
            return remove_file(&upload);
        }
        fs::rename(upload, self.blob_path(digest)?)
    }

    /// Whether files are kept (a given directory) rather than temporary.
    pub fn is_durable(&self) -> bool {
        self.wanted.is_some()
    }

    /// Makes an upload's (or a staged file's) content durable before it is published, when
    /// the store keeps its files; on the blocking pool, never under a lock.
    pub async fn sync_upload(&self, id: &str) -> io::Result<()> {
        if !self.is_durable() {
            return Ok(());
        }
        let path = self.upload_path(id)?;
        tokio::task::spawn_blocking(move || File::open(path)?.sync_all())
            .await
            .map_err(io::Error::other)?
    }

    /// The directories blobs are published into (fsynced by the journal before a link to a
    /// new blob is written). A data directory's are named, not created: `Store::open` asks
    /// before it knows the directory is hubmock's, and must write nothing in one it refuses.
    pub fn blob_dirs(&self) -> io::Result<Vec<PathBuf>> {
        let root = match &self.wanted {
            Some(dir) => dir.clone(),
            None => self.root()?.to_owned(),
        };
        Ok(["sha256", "sha512"]
            .iter()
            .map(|a| root.join("blobs").join(a))
            .collect())
    }

    /// Removes every upload's file, and every blob file `keep` does not want (at start, after
    /// the index was rebuilt from the journal).
    pub fn remove_unlisted(&self, keep: impl Fn(&Digest) -> bool) -> io::Result<()> {
        let root = self.root()?.to_owned();
        for entry in fs::read_dir(root.join("uploads"))? {
            remove_file(&entry?.path())?;
        }
        for algorithm in ["sha256", "sha512"] {
            for entry in fs::read_dir(root.join("blobs").join(algorithm))? {
                let entry = entry?;
                let name = entry.file_name();
                let text = format!("{algorithm}:{}", name.to_string_lossy());
                let wanted = Digest::parse(&text).is_ok_and(|digest| keep(&digest));
                if !wanted {
                    remove_file(&entry.path())?;
                }
            }
        }
        Ok(())
    }

    /// Opens a published blob for reading.
    pub fn open(&self, digest: &Digest) -> io::Result<File> {
        File::open(self.blob_path(digest)?)
    }

    /// Reads a published blob whole, if it has at most `limit` bytes (an image
    /// configuration, to learn its platform).
    pub async fn read_small(&self, digest: &Digest, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest)?;
        tokio::task::spawn_blocking(move || {
            let file = File::open(path)?;
            if file.metadata()?.len() > limit {
                return Ok(None);
            }
            let mut bytes = Vec::new();
            file.take(limit).read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Removes an upload's (or a staged file's) file; a missing one is not an error.
    pub fn remove_upload(&self, id: &str) -> io::Result<()> {
        remove_file(&self.upload_path(id)?)
    }

    /// Removes a published blob; a missing one is not an error.
    pub fn remove_blob(&self, digest: &Digest) -> io::Result<()> {
        remove_file(&self.blob_path(digest)?)
    }
}

fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// The file and hasher of an append: idle, or on the blocking pool writing one chunk while
/// the next one arrives.
enum Writer {
    Idle(File, Box<Hasher>),
    Writing(tokio::task::JoinHandle<io::Result<(File, Hasher)>>),
    Failed,
}

impl Writer {
    /// Starts writing `chunk` once the chunk before it is written.
    async fn write(&mut self, chunk: Vec<Bytes>) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let (mut file, mut hasher) = self.settle().await?;
        *self = Writer::Writing(tokio::task::spawn_blocking(move || {
            for part in &chunk {
                file.write_all(part)?;
                hasher.update(part);
            }
            Ok((file, hasher))
        }));
        Ok(())
    }

    /// Waits for the chunk in flight; answers the hasher.
    async fn finish(&mut self) -> io::Result<Hasher> {
        self.settle().await.map(|(_, hasher)| hasher)
    }

    async fn settle(&mut self) -> io::Result<(File, Hasher)> {
        match std::mem::replace(self, Writer::Failed) {
            Writer::Idle(file, hasher) => Ok((file, *hasher)),
            Writer::Writing(task) => task.await.map_err(io::Error::other)?,
            Writer::Failed => Err(io::Error::other("an earlier write of this upload failed")),
        }
    }
}
