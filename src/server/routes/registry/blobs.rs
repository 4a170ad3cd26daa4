//! Blob endpoints: `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`, uploads
//! (`POST /v2/<name>/blobs/uploads/`, monolithic with `?digest=`, a mount with
//! `?mount=&from=`) and upload sessions (`GET|PATCH|PUT|DELETE .../blobs/uploads/<id>`).
//!
//! An upload session's URL is a capability, as distribution's signed upload state is: its id
//! is 128 random bits handed only to the caller who was allowed to start the upload, so the
//! session's own requests need no credentials (clients that drop their query on an auth retry,
//! like the conformance suite's, keep working).

use bytes::Bytes;
use http::{header, Method, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Body;

use super::super::super::http::{Req, BODY_LIMIT};
use super::auth::{self, Access};
use super::{answer, body_error, empty_answer, file_body, from_domain, name};
use crate::registry::{Algorithm, Digest, RegistryError, RegistryName};
use crate::server::http::HttpResponse;
use crate::store::Store;

/// `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`
pub(super) fn blob(
    store: &Store,
    req: &Req,
    name_text: &str,
    digest: &str,
) -> Result<HttpResponse, RegistryError> {
    let name = name(name_text)?;
    let access = if req.method == Method::DELETE {
        Access::Push
    } else {
        Access::Pull
    };
    auth::caller(store, req)?.may(store, &name, access)?;
    let digest = Digest::parse(digest)?;
    let registry = store.registry();
    let digest_text = digest.to_string();
    if req.method == Method::DELETE {
        registry.delete_blob(name.repo(), &digest)?;
        return Ok(empty_answer(
            StatusCode::ACCEPTED,
            &[("docker-content-digest", &digest_text)],
            0,
        ));
    }
    let blob = registry.open_blob(name.repo(), &digest)?;
    let headers = [
        ("content-type", "application/octet-stream"),
        ("docker-content-digest", digest_text.as_str()),
        ("accept-ranges", "bytes"),
    ];
    let range = requested_range(req, blob.size)?;
    if req.method == Method::HEAD {
        return Ok(empty_answer(StatusCode::OK, &headers, blob.size));
    }
    let (status, start, length) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, blob.size),
    };
    let length_text = length.to_string();
    let content_range = range.map(|(start, end)| format!("bytes {start}-{end}/{}", blob.size));
    let mut all = headers.to_vec();
    all.push(("content-length", &length_text));
    if let Some(content_range) = &content_range {
        all.push(("content-range", content_range));
    }
    Ok(answer(status, &all, file_body(blob.file, start, length)))
}

/// The one byte range a `GET` asks for (`Range: bytes=a-b`, `a-`, `-n`), if any. A range
/// past the end is `416`; a header that is not one byte range is ignored, as HTTP allows.
fn requested_range(req: &Req, size: u64) -> Result<Option<(u64, u64)>, RegistryError> {
    let Some(spec) = req
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = || RegistryError::RangeNotSatisfiable {
        message: format!("range bytes={spec} is outside the blob's {size} bytes"),
        size,
    };
    let (start, end) = match (first.trim(), last.trim()) {
        ("", "") => return Ok(None),
        ("", suffix) => {
            let Ok(n) = suffix.parse::<u64>() else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(n), size - 1)
        }
        (first, last) => {
            let Ok(start) = first.parse::<u64>() else {
                return Ok(None);
            };
            let end = match last {
                "" => size.saturating_sub(1),
                last => match last.parse::<u64>() {
                    Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return Ok(None),
                },
            };
            if start >= size {
                return Err(unsatisfiable());
            }
            (start, end)
        }
    };
    Ok(Some((start, end)))
}

/// The request body of a streamed route, its errors in the registry's words.
fn body(req: &mut Req) -> impl Body<Data = Bytes, Error = RegistryError> + Unpin {
    req.stream
        .take()
        .unwrap_or_else(|| Empty::new().map_err(|never| match never {}).boxed())
        .map_err(body_error)
}

/// `POST /v2/<name>/blobs/uploads/`: a mount (`?mount=&from=`, `201` when `from` has the blob
/// and the caller may read it, else an ordinary upload), a monolithic upload (`?digest=`,
/// the body is the blob: `201`), or a new upload session (`202`).
pub(super) async fn start(
    store: &Store,
    req: &mut Req,
    name_text: &str,
) -> Result<HttpResponse, RegistryError> {
    let name = name(name_text)?;
    let caller = auth::caller(store, req)?;
    caller.may(store, &name, Access::Push)?;
    store
        .may_push_to(name.repo())
        .map_err(|e| from_domain(&e))?;
    let registry = store.registry();
    if let Some(mount) = req.param("mount") {
        let digest = Digest::parse(mount)?;
        let from = req.param("from").and_then(|f| RegistryName::parse(f).ok());
        if let Some(from) = from {
            let readable = caller.may(store, &from, Access::Pull).is_ok();
            if readable && registry.mount(name.repo(), from.repo(), &digest) {
                return Ok(blob_created(&name, &digest));
            }
        }
    }
    if let Some(digest) = req.param("digest") {
        let digest = Digest::parse(digest)?;
        let id = registry.start_upload(name.repo(), digest.algorithm())?;
        let mut body = body(req);
        let range = None;
        if let Err(err) = registry
            .finish(name.repo(), &id, &digest, range, &mut body)
            .await
        {
            let _ = registry.cancel_upload(name.repo(), &id);
            return Err(err);
        }
        return Ok(blob_created(&name, &digest));
    }
    let id = registry.start_upload(name.repo(), Algorithm::Sha256)?;
    // A body without a digest says nothing: up to 1 MiB of it is read and dropped, so the
    // connection stays usable; past that the connection is closed instead.
    let mut body = body(req);
    let mut dropped = 0;
    while dropped <= BODY_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => dropped += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
    let mut answer = upload_answer(StatusCode::ACCEPTED, &name, &id, 0);
    if dropped > BODY_LIMIT {
        answer
            .headers_mut()
            .insert(super::BODY_LEFT, http::HeaderValue::from_static("1"));
    }
    Ok(answer)
}

/// `GET|HEAD|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<id>`: status, a chunk, the last
/// chunk with `?digest=`, cancel.
pub(super) async fn upload(
    store: &Store,
    req: &mut Req,
    name_text: &str,
    id: &str,
) -> Result<HttpResponse, RegistryError> {
    let name = name(name_text)?;
    let registry = store.registry();
    let repo = name.repo();
    match req.method {
        Method::PATCH => {
            let range = content_range(req)?;
            let mut body = body(req);
            let appended = registry.append(repo, id, range, &mut body).await?;
            Ok(upload_answer(
                StatusCode::ACCEPTED,
                &name,
                id,
                appended.size,
            ))
        }
        Method::PUT => {
            let digest = req.param("digest").ok_or_else(|| {
                RegistryError::DigestInvalid(
                    "the PUT that finishes an upload needs ?digest=<digest of the whole blob>"
                        .to_owned(),
                )
            })?;
            let digest = Digest::parse(digest)?;
            let range = content_range(req)?;
            let mut body = body(req);
            registry.finish(repo, id, &digest, range, &mut body).await?;
            Ok(blob_created(&name, &digest))
        }
        Method::DELETE => {
            registry.cancel_upload(repo, id)?;
            Ok(empty_answer(StatusCode::NO_CONTENT, &[], 0))
        }
        _ => {
            let size = registry.upload_size(repo, id)?;
            Ok(upload_answer(StatusCode::NO_CONTENT, &name, id, size))
        }
    }
}

/// `Content-Range: <first>-<last>` of a chunk (`bytes ` and `/<total>` tolerated).
fn content_range(req: &Req) -> Result<Option<(u64, u64)>, RegistryError> {
    let Some(value) = req.headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let malformed = || {
        RegistryError::BlobUploadInvalid(
            "malformed Content-Range: expected <first byte>-<last byte>, e.g. 0-1023".to_owned(),
        )
    };
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let text = text.strip_prefix("bytes").map_or(text, str::trim_start);
    let text = text.split('/').next().unwrap_or("");
    let (first, last) = text.split_once('-').ok_or_else(malformed)?;
    let first = first.trim().parse().map_err(|_| malformed())?;
    let last = last.trim().parse().map_err(|_| malformed())?;
    Ok(Some((first, last)))
}

/// `201` for a blob now in the repository.
fn blob_created(name: &RegistryName, digest: &Digest) -> HttpResponse {
    let location = format!("/v2/{name}/blobs/{digest}");
    let digest = digest.to_string();
    empty_answer(
        StatusCode::CREATED,
        &[("location", &location), ("docker-content-digest", &digest)],
        0,
    )
}

/// An upload session's answer: where it is, and how much it has (`Range: 0-<last byte>`;
/// `0-0` when empty, as distribution answers).
fn upload_answer(status: StatusCode, name: &RegistryName, id: &str, size: u64) -> HttpResponse {
    let location = format!("/v2/{name}/blobs/uploads/{id}");
    let range = format!("0-{}", size.saturating_sub(1));
    empty_answer(
        status,
        &[
            ("location", &location),
            ("range", &range),
            ("docker-upload-uuid", id),
        ],
        0,
    )
}
