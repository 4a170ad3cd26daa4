//! Uploads (monolithic and chunked), cross-repository mounts, and blob reads and deletes.
//!
//! An upload is checked out of the index while a request writes to it (its running hash
//! taken out), so two requests never write one upload at once; a chunk that fails (the
//! client went away, the body stalled, the range or digest is wrong) is cut off again and the
//! upload stays as it was before the request. A finished upload is published by a rename
//! under the index lock, then linked: no partial blob is ever visible.

use std::fs::File;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Body;

use super::digest::{Algorithm, Digest, Hasher};
use super::error::RegistryError;
use super::storage::AppendError;
use super::{storage_error, Registry, RegistryChange, Upload, UPLOAD_IDLE_LIMIT};
use crate::model::ids;
use crate::model::repository::RepoName;

/// A blob opened for reading.
pub struct BlobRead {
    /// The open file (it stays readable if the blob is deleted meanwhile).
    pub file: File,
    /// Its size in bytes.
    pub size: u64,
}

/// Where an upload stands after a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Bytes received so far.
    pub size: u64,
}

impl Registry {
    /// Starts an upload to `repo` whose content will be hashed with `algorithm` as it
    /// streams; answers its id (a UUID, unguessable: the upload URL is a capability).
    pub fn start_upload(
        &self,
        repo: &RepoName,
        algorithm: Algorithm,
    ) -> Result<String, RegistryError> {
        self.forget_idle_uploads();
        let hex = ids::random_hex(32);
        let id = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        self.storage
            .create_upload(&id)
            .map_err(storage_error("create an upload file"))?;
        self.lock().uploads.insert(
            id.clone(),
            Upload {
                repo: repo.clone(),
                size: 0,
                hasher: Some(Hasher::new(algorithm)),
                touched: Instant::now(),
            },
        );
        Ok(id)
    }

    /// Uploads nobody touched for an hour are forgotten, their files removed.
    fn forget_idle_uploads(&self) {
        let mut index = self.lock();
        let idle: Vec<String> = index
            .uploads
            .iter()
            .filter(|(_, u)| u.hasher.is_some() && u.touched.elapsed() > UPLOAD_IDLE_LIMIT)
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            index.uploads.remove(&id);
            let _ = self.storage.remove_upload(&id);
        }
    }

    /// How many bytes upload `id` of `repo` has.
    pub fn upload_size(&self, repo: &RepoName, id: &str) -> Result<u64, RegistryError> {
        let index = self.lock();
        match index.uploads.get(id) {
            Some(upload) if upload.repo == *repo => Ok(upload.size),
            _ => Err(unknown_upload(id)),
        }
    }

    /// Cancels an upload: it and its file are gone. A request writing to it meanwhile finds
    /// it gone when it is done.
    pub fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<(), RegistryError> {
        let mut index = self.lock();
        match index.uploads.get(id) {
            Some(upload) if upload.repo == *repo => {
                index.uploads.remove(id);
                let _ = self.storage.remove_upload(id);
                Ok(())
            }
            _ => Err(unknown_upload(id)),
        }
    }

    /// Takes an upload's running hash out of the index while a request writes to it.
    fn check_out(&self, repo: &RepoName, id: &str) -> Result<(u64, Hasher), RegistryError> {
        let mut index = self.lock();
        match index.uploads.get_mut(id) {
            Some(upload) if upload.repo == *repo => match upload.hasher.take() {
                Some(hasher) => Ok((upload.size, hasher)),
                None => Err(RegistryError::BlobUploadInvalid(format!(
                    "another request is writing to upload {id}; wait for it to finish"
                ))),
            },
            _ => Err(unknown_upload(id)),
        }
    }

    /// Puts an upload back with its new size and hash. Cancelled (or reset) meanwhile: the
    /// file goes, and the request learns the upload is unknown.
    fn check_in(&self, id: &str, size: u64, hasher: Hasher) -> Result<(), RegistryError> {
        let mut index = self.lock();
        match index.uploads.get_mut(id) {
            Some(upload) => {
                upload.size = size;
                upload.hasher = Some(hasher);
                upload.touched = Instant::now();
                Ok(())
            }
            None => {
                let _ = self.storage.remove_upload(id);
                Err(unknown_upload(id))
            }
        }
    }

    /// Appends a chunk to upload `id`. `range` is the chunk's first and last byte when the
    /// client said (`Content-Range`): the first must be where the upload ends, and the body
    /// must be that long. Body errors are the body's own (`B::Error`), turned into registry
    /// errors by the caller, which knows the transport.
    pub async fn append<B>(
        &self,
        repo: &RepoName,
        id: &str,
        range: Option<(u64, u64)>,
        body: &mut B,
    ) -> Result<Appended, RegistryError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<RegistryError>,
    {
        let (size, hasher) = self.check_out(repo, id)?;
        let written = self.write(id, size, &hasher, range, body).await;
        match written {
            Ok((hasher, new_size)) => {
                self.check_in(id, new_size, hasher)?;
                Ok(Appended { size: new_size })
            }
            Err(err) => {
                self.check_in(id, size, hasher)?;
                Err(err)
            }
        }
    }

    /// Writes a chunk (see [`Registry::append`]); on failure the file is as it was.
    async fn write<B>(
        &self,
        id: &str,
        size: u64,
        hasher: &Hasher,
        range: Option<(u64, u64)>,
        body: &mut B,
    ) -> Result<(Hasher, u64), RegistryError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<RegistryError>,
    {
        if let Some((start, end)) = range {
            if start != size || end < start {
                return Err(RegistryError::ChunkOutOfOrder {
                    message: format!(
                        "Content-Range {start}-{end} does not continue upload {id}, which has \
                         {size} bytes: the next chunk starts at byte {size}"
                    ),
                    size,
                });
            }
        }
        let (hasher, written) = self
            .storage
            .append(id, size, hasher.clone(), body)
            .await
            .map_err(|err| match err {
                AppendError::Body(err) => err.into(),
                AppendError::Io(err) => RegistryError::storage("write an upload", err),
            })?;
        if let Some((start, end)) = range {
            if written != end - start + 1 {
                self.storage
                    .truncate(id, size)
                    .map_err(storage_error("cut an upload back"))?;
                return Err(RegistryError::ChunkOutOfOrder {
                    message: format!(
                        "Content-Range {start}-{end} announces {} bytes but the body had \
                         {written}",
                        end - start + 1
                    ),
                    size,
                });
            }
        }
        Ok((hasher, size + written))
    }

    /// Finishes upload `id` as the blob `digest`, after appending `body` (the last chunk, or
    /// the whole blob), and links the blob into `repo`. Content that does not match the digest
    /// is `DIGEST_INVALID`, and the upload stays as it was before this request.
    pub async fn finish<B>(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: &mut B,
    ) -> Result<u64, RegistryError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<RegistryError>,
    {
        let (size, hasher) = self.check_out(repo, id)?;
        let verified = self
            .write_and_verify(id, size, &hasher, digest, range, body)
            .await;
        let new_size = match verified {
            Ok(new_size) => new_size,
            Err(err) => {
                self.check_in(id, size, hasher)?;
                return Err(err);
            }
        };
        self.storage
            .sync_upload(id)
            .await
            .map_err(storage_error("save a blob"))?;
        let mut index = self.lock();
        if !index.uploads.contains_key(id) {
            drop(index);
            let _ = self.storage.remove_upload(id);
            return Err(unknown_upload(id));
        }
        let already_there = index.files.contains_key(digest);
        let published = self.storage.publish(id, digest, already_there);
        index.uploads.remove(id);
        if let Err(err) = published {
            let _ = self.storage.remove_upload(id);
            return Err(RegistryError::storage("publish a blob", err));
        }
        index.files.insert(digest.clone(), new_size);
        index
            .repos
            .entry(repo.clone())
            .or_default()
            .blobs
            .insert(digest.clone(), new_size);
        self.journal(|| RegistryChange::Link {
            repo: repo.clone(),
            digest: digest.clone(),
            size: new_size,
        });
        Ok(new_size)
    }

    async fn write_and_verify<B>(
        &self,
        id: &str,
        size: u64,
        hasher: &Hasher,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: &mut B,
    ) -> Result<u64, RegistryError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<RegistryError>,
    {
        let (hasher, new_size) = self.write(id, size, hasher, range, body).await?;
        let computed = if hasher.algorithm() == digest.algorithm() {
            hasher.finish()
        } else {
            self.storage
                .hash_upload(id, digest.algorithm())
                .await
                .map_err(storage_error("hash an upload"))?
        };
        if computed != *digest {
            self.storage
                .truncate(id, size)
                .map_err(storage_error("cut an upload back"))?;
            return Err(RegistryError::DigestInvalid(format!(
                "the uploaded content ({new_size} bytes) has digest {computed}, not {digest}"
            )));
        }
        Ok(new_size)
    }

    /// Links blob `digest` of `from` into `to`, when `from` has it: a cross-repository mount.
    /// Answers whether it did.
    pub fn mount(&self, to: &RepoName, from: &RepoName, digest: &Digest) -> bool {
        let mut index = self.lock();
        let Some(size) = index
            .repos
            .get(from)
            .and_then(|r| r.blobs.get(digest))
            .copied()
        else {
            return false;
        };
        index
            .repos
            .entry(to.clone())
            .or_default()
            .blobs
            .insert(digest.clone(), size);
        self.journal(|| RegistryChange::Link {
            repo: to.clone(),
            digest: digest.clone(),
            size,
        });
        true
    }

    /// The size of blob `digest` of `repo` (a manifest counts too, as distribution serves).
    pub fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Option<u64> {
        let index = self.lock();
        let repo = index.repos.get(repo)?;
        repo.blobs
            .get(digest)
            .copied()
            .or_else(|| repo.manifests.get(digest).map(|m| m.size))
    }

    /// Opens blob `digest` of `repo` for reading.
    pub fn open_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobRead, RegistryError> {
        // Opened under the index lock, so a delete cannot come between lookup and open.
        let index = self.lock();
        let size = index
            .repos
            .get(repo)
            .and_then(|r| {
                r.blobs
                    .get(digest)
                    .copied()
                    .or_else(|| r.manifests.get(digest).map(|m| m.size))
            })
            .ok_or_else(|| unknown_blob(repo, digest))?;
        let file = self
            .storage
            .open(digest)
            .map_err(storage_error("open a blob"))?;
        Ok(BlobRead { file, size })
    }

    /// Unlinks blob `digest` from `repo`; its file goes when no repository links it.
    pub fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), RegistryError> {
        let mut index = self.lock();
        let removed = index
            .repos
            .get_mut(repo)
            .and_then(|r| r.blobs.remove(digest));
        if removed.is_none() {
            return Err(unknown_blob(repo, digest));
        }
        self.journal(|| RegistryChange::Unlink {
            repo: repo.clone(),
            digest: digest.clone(),
        });
        self.release_if_unlinked(&mut index, digest);
        Ok(())
    }
}

fn unknown_upload(id: &str) -> RegistryError {
    RegistryError::BlobUploadUnknown(format!(
        "no upload {} in this repository: it finished, was cancelled or never started",
        super::digest::shorten(id)
    ))
}

fn unknown_blob(repo: &RepoName, digest: &Digest) -> RegistryError {
    RegistryError::BlobUnknown(format!("repository {repo} has no blob {digest}"))
}
