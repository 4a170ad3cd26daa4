//! The registry surface: the OCI distribution API (v1.1, as Docker clients speak it) on
//! hubmock's port, with its own error dialect `{"errors": [{"code", "message", "detail"}]}`.
//!
//! - this file: which paths are the registry's ([`Target::parse`], and the rule for paths the
//!   Hub API shares), body policies, dispatch, and [`render`], the one place registry errors
//!   become answers;
//! - `auth.rs`: who is calling (Basic, a bearer token, or nobody) and what they may do;
//!   `token.rs`: the token endpoint `/token` the `WWW-Authenticate` challenge points at;
//! - `blobs.rs`: uploads, mounts, blob reads and deletes; `manifests.rs`: manifests, tags,
//!   the catalog and the referrers API, and the push event of a manifest put by tag.
//!
//! The OCI distribution spec is the reference for these routes
//! (<https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md>).

mod auth;
mod blobs;
mod manifests;
mod token;

pub(super) use token::token;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use serde_json::{json, Value};

use super::super::http::{full, BodyPolicy, BoxError, HttpError, HttpResponse, Req, ResponseBody};
use crate::error::{Error, Missing};
use crate::registry::manifest::MANIFEST_LIMIT;
use crate::registry::{RegistryError, RegistryName};
use crate::server::body::BodyStalled;
use crate::store::Store;

/// The header every registry answer carries; clients check it on `GET /v2/`.
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// A registry endpoint, with the parts of its path. A name may have several segments
/// (`alice/app`): a path is read from its end, where the registry's keywords are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::server) enum Target<'a> {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/blobs/<digest>`.
    Blob(&'a str, &'a str),
    /// `/v2/<name>/blobs/uploads/`: start an upload (or mount).
    Uploads(&'a str),
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload(&'a str, &'a str),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(&'a str, &'a str),
    /// `/v2/<name>/tags/list`.
    Tags(&'a str),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(&'a str, &'a str),
}

impl<'a> Target<'a> {
    /// The registry endpoint a path has the shape of, if any.
    pub(in crate::server) fn parse(path: &'a str) -> Option<Target<'a>> {
        let rest = path.strip_prefix("/v2")?;
        if rest.is_empty() || rest == "/" {
            return Some(Target::Base);
        }
        let rest = rest.strip_prefix('/')?;
        if rest == "_catalog" {
            return Some(Target::Catalog);
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return (!name.is_empty()).then_some(Target::Uploads(name));
        }
        let (before, last) = rest.rsplit_once('/')?;
        if last.is_empty() {
            return None;
        }
        if let Some(name) = before.strip_suffix("/blobs/uploads") {
            return (!name.is_empty()).then_some(Target::Upload(name, last));
        }
        let (name, keyword) = before.rsplit_once('/')?;
        if name.is_empty() {
            return None;
        }
        match (keyword, last) {
            ("blobs", digest) => Some(Target::Blob(name, digest)),
            ("manifests", reference) => Some(Target::Manifest(name, reference)),
            ("tags", "list") => Some(Target::Tags(name)),
            ("referrers", digest) => Some(Target::Referrers(name, digest)),
            _ => None,
        }
    }

    /// When a path fits a Hub API route as well (`/v2/repositories/manifests/latest` is the
    /// manifest `latest` of the registry repository `repositories`, or the Hub repository
    /// `manifests/latest`), whether the registry takes it. It does when its name could be a
    /// Docker Hub repository (one or two parts; deeper names never are, so
    /// `/v2/repositories/ns/app/tags/list` stays the Hub API's tag `list`) and the path has
    /// no trailing slash (Hub API clients write one; registry clients never do, but for
    /// `POST .../blobs/uploads/`).
    pub(in crate::server) fn wins_over_hub(&self, method: &Method, path: &str) -> bool {
        let name = match self {
            Target::Base | Target::Catalog => return true,
            Target::Blob(name, _)
            | Target::Uploads(name)
            | Target::Upload(name, _)
            | Target::Manifest(name, _)
            | Target::Tags(name)
            | Target::Referrers(name, _) => name,
        };
        let slash_ok =
            !path.ends_with('/') || (matches!(self, Target::Uploads(_)) && *method == Method::POST);
        name.split('/').count() <= 2 && slash_ok
    }

    /// The methods this endpoint takes, as `Allow` lists them.
    fn allowed(&self) -> &'static str {
        match self {
            Target::Base | Target::Catalog | Target::Tags(_) | Target::Referrers(..) => "GET, HEAD",
            Target::Blob(..) => "GET, HEAD, DELETE",
            Target::Uploads(_) => "POST",
            Target::Upload(..) => "GET, HEAD, PATCH, PUT, DELETE",
            Target::Manifest(..) => "GET, HEAD, PUT, DELETE",
        }
    }

    /// How this endpoint takes its body when called with `method`: blobs stream (no limit but
    /// the disk, each pause at most `--body-timeout`), a manifest is read whole up to 4 MiB. A
    /// method the endpoint does not take is refused (`405`) before a byte of its body is read.
    pub(in crate::server) fn body_policy(&self, method: &Method) -> BodyPolicy {
        match (self, method) {
            (Target::Uploads(_), &Method::POST)
            | (Target::Upload(..), &Method::PATCH | &Method::PUT) => BodyPolicy::Streamed,
            (Target::Manifest(..), &Method::PUT) => BodyPolicy::Buffered(MANIFEST_LIMIT),
            _ if !allows(self.allowed(), method) => BodyPolicy::Streamed,
            _ => BodyPolicy::None,
        }
    }
}

/// Answers a registry request; every refusal is rendered by [`render`].
pub(in crate::server) async fn handle(
    store: &Store,
    req: &mut Req,
    target: Target<'_>,
) -> HttpResponse {
    // A streamed body that a refusal leaves unread (or a drain stops short of) makes the
    // connection unusable: the answer says so, so a client does not send its next request
    // down a connection hubmock is closing.
    let streamed = req.stream.as_ref().is_some_and(|b| !b.is_end_stream());
    if !allows(target.allowed(), &req.method) {
        let refusal = RegistryError::MethodNotAllowed {
            method: req.method.to_string(),
            allowed: target.allowed(),
        };
        return closing(render(&refusal, Some(store.public_url())), streamed);
    }
    let answer = match target {
        Target::Base => base(store, req),
        Target::Catalog => manifests::catalog(store, req),
        Target::Blob(name, digest) => blobs::blob(store, req, name, digest),
        Target::Uploads(name) => blobs::start(store, req, name).await,
        Target::Upload(name, id) => blobs::upload(store, req, name, id).await,
        Target::Manifest(name, reference) => manifests::manifest(store, req, name, reference).await,
        Target::Tags(name) => manifests::tags(store, req, name),
        Target::Referrers(name, digest) => manifests::referrers(store, req, name, digest),
    };
    match answer {
        Ok(response) => {
            let unread = req.stream.is_some() || response.headers().contains_key(BODY_LEFT);
            closing(with_version(response), streamed && unread)
        }
        Err(error) => closing(render(&error, Some(store.public_url())), streamed),
    }
}

/// Set by a handler on an answer that leaves part of the request body unread (removed before
/// the answer goes out).
const BODY_LEFT: &str = "x-hubmock-body-left";

/// The answer, with `Connection: close` when `close`.
fn closing(mut response: HttpResponse, close: bool) -> HttpResponse {
    response.headers_mut().remove(BODY_LEFT);
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `GET /v2/`: `200 {}` to a caller who may use the registry; with auth on, `401` and the
/// challenge to one who brought no credentials, as Docker clients expect before they log in.
fn base(store: &Store, req: &Req) -> Result<HttpResponse, RegistryError> {
    auth::caller(store, req)?.require_login()?;
    Ok(json_answer(StatusCode::OK, &json!({})))
}

/// Whether `method` is one of `allowed` (as `Allow` lists them).
fn allows(allowed: &str, method: &Method) -> bool {
    allowed.split(", ").any(|m| m == method.as_str())
}

/// Checks a repository name from the path.
fn name(written: &str) -> Result<RegistryName, RegistryError> {
    RegistryName::parse(written)
}

/// A JSON answer.
fn json_answer(status: StatusCode, body: &Value) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    answer(status, &[("content-type", "application/json")], full(bytes))
}

/// An answer with headers (names lowercase) and a body.
fn answer(status: StatusCode, headers: &[(&str, &str)], body: ResponseBody) -> HttpResponse {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// An empty answer with headers; `length` is the `Content-Length` it announces (a `HEAD`
/// answers the length of what a `GET` would send).
fn empty_answer(status: StatusCode, headers: &[(&str, &str)], length: u64) -> HttpResponse {
    let length = length.to_string();
    let mut all = headers.to_vec();
    all.push(("content-length", &length));
    answer(status, &all, full(Bytes::new()))
}

fn with_version(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    response
}

/// How the registry surface answers HTTP's own refusals (a body over its limit, a body that
/// stalled, a wrong method): in its own dialect, through [`render`].
pub(in crate::server) fn render_http(error: &HttpError) -> HttpResponse {
    render(&from_http(error), None)
}

/// Turns an HTTP-layer or domain refusal into the registry's words.
fn from_http(error: &HttpError) -> RegistryError {
    match error {
        HttpError::Domain(domain) => from_domain(domain),
        HttpError::MethodNotAllowed { method, allowed } => RegistryError::MethodNotAllowed {
            method: method.to_string(),
            allowed,
        },
        HttpError::PayloadTooLarge(limit) => RegistryError::TooLarge(format!(
            "the body is over the limit of {limit} bytes (a manifest may have at most 4 MiB)"
        )),
        HttpError::BodyBroken(_) => RegistryError::Body {
            message: error.to_string(),
            timed_out: false,
        },
        HttpError::BodyTimeout(_) => RegistryError::Body {
            message: error.to_string(),
            timed_out: true,
        },
        // Refused before a route is chosen, in the control API's words; listed for
        // completeness.
        HttpError::NoRoute { .. }
        | HttpError::OwnDelivery { .. }
        | HttpError::ControlToken(_)
        | HttpError::UriTooLong(_)
        | HttpError::HeadersTooLarge(_) => RegistryError::Unsupported(error.to_string()),
    }
}

/// A refusal of the store (the pending-run limit, an unknown repository with
/// `--no-implicit-repositories`) in the registry's words.
fn from_domain(error: &Error) -> RegistryError {
    match error {
        Error::NotFound(Missing::Repository(name)) => RegistryError::NameUnknown(format!(
            "repository {name} does not exist, and this hubmock does not create repositories \
             on push (--no-implicit-repositories): create it with POST /_hubmock/repositories"
        )),
        Error::NotFound(missing) => RegistryError::NameUnknown(missing.to_string()),
        Error::Busy(text) => RegistryError::Busy(text.clone()),
        Error::Unauthorized(text) => RegistryError::Unauthorized {
            message: text.clone(),
            scope: None,
            invalid_token: false,
        },
        Error::Forbidden(text) | Error::Conflict(text) => RegistryError::Denied(text.clone()),
        Error::Invalid(_) | Error::BadRequest(_) | Error::UpdateNotAllowed => {
            RegistryError::Unsupported(error.to_string())
        }
    }
}

/// A body error of a streamed upload, in the registry's words: a stall past
/// `--body-timeout` is `408`, a body that broke off `400`.
pub(super) fn body_error(error: BoxError) -> RegistryError {
    match error.downcast::<BodyStalled>() {
        Ok(stalled) => RegistryError::Body {
            message: format!(
                "{stalled} (--body-timeout); the upload is as it was before this request"
            ),
            timed_out: true,
        },
        Err(other) => RegistryError::Body {
            message: format!(
                "the request body broke off ({other}); the upload is as it was before this \
                 request"
            ),
            timed_out: false,
        },
    }
}

/// **The one place registry refusals become answers**: the spec's status for the code,
/// `{"errors": [{"code", "message", "detail"}]}`, and the headers that go with it (the
/// `WWW-Authenticate` challenge, naming the token endpoint under `public_url`; `Range` of an
/// upload; `Allow`).
fn render(error: &RegistryError, public_url: Option<&str>) -> HttpResponse {
    let mut headers: Vec<(&str, String)> = Vec::new();
    let (status, detail) = match error {
        RegistryError::BlobUnknown(_)
        | RegistryError::BlobUploadUnknown(_)
        | RegistryError::ManifestUnknown(_)
        | RegistryError::NameUnknown(_) => (StatusCode::NOT_FOUND, Value::Null),
        RegistryError::BlobUploadInvalid(_)
        | RegistryError::DigestInvalid(_)
        | RegistryError::ManifestBlobUnknown(_)
        | RegistryError::ManifestInvalid(_)
        | RegistryError::NameInvalid(_)
        | RegistryError::SizeInvalid(_)
        | RegistryError::PaginationInvalid(_)
        | RegistryError::TagInvalid(_) => (StatusCode::BAD_REQUEST, Value::Null),
        RegistryError::ChunkOutOfOrder { size, .. } => {
            headers.push(("range", format!("0-{}", size.saturating_sub(1))));
            (StatusCode::RANGE_NOT_SATISFIABLE, json!({ "size": size }))
        }
        RegistryError::RangeNotSatisfiable { size, .. } => {
            headers.push(("content-range", format!("bytes */{size}")));
            (StatusCode::RANGE_NOT_SATISFIABLE, json!({ "size": size }))
        }
        RegistryError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, Value::Null),
        RegistryError::Unauthorized {
            scope,
            invalid_token,
            ..
        } => {
            if let Some(public_url) = public_url {
                headers.push((
                    "www-authenticate",
                    auth::challenge(public_url, scope.as_deref(), *invalid_token),
                ));
            }
            (StatusCode::UNAUTHORIZED, json!({ "scope": scope }))
        }
        RegistryError::Denied(_) => (StatusCode::FORBIDDEN, Value::Null),
        RegistryError::Unsupported(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, Value::Null),
        RegistryError::MethodNotAllowed { allowed, .. } => {
            headers.push(("allow", (*allowed).to_owned()));
            (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "allowed": allowed.split(", ").collect::<Vec<_>>() }),
            )
        }
        RegistryError::Busy(_) => {
            headers.push(("retry-after", "1".to_owned()));
            (StatusCode::SERVICE_UNAVAILABLE, Value::Null)
        }
        RegistryError::Body { timed_out, .. } => {
            // The rest of the body may still be on its way: the connection cannot be reused.
            headers.push(("connection", "close".to_owned()));
            let status = if *timed_out {
                StatusCode::REQUEST_TIMEOUT
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, Value::Null)
        }
        RegistryError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, Value::Null),
    };
    let body = json!({
        "errors": [{ "code": error.code(), "message": error.to_string(), "detail": detail }]
    });
    let mut response = json_answer(status, &body);
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    with_version(response)
}

/// A response body that streams `length` bytes of `file` from `start`, read on tokio's
/// blocking pool a quarter MiB at a time: a blob is never held in memory whole.
fn file_body(file: std::fs::File, start: u64, length: u64) -> ResponseBody {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    const READ: u64 = 256 * 1024;
    let (sender, body) = Fed::new(2);
    // Owned by the response body: it ends when the body is dropped (the client went away).
    tokio::spawn(async move {
        let mut file = tokio::fs::File::from_std(file);
        if start > 0 {
            if let Err(err) = file.seek(std::io::SeekFrom::Start(start)).await {
                let _ = sender.send(Err(Box::new(err))).await;
                return;
            }
        }
        let mut left = length;
        while left > 0 {
            let mut buf = bytes::BytesMut::with_capacity(READ.min(left) as usize);
            match file.read_buf(&mut buf).await {
                Ok(0) => {
                    tracing::warn!(left, length, "a blob's file ended before its recorded size");
                    let _ = sender.send(Err("the blob ended early".into())).await;
                    return;
                }
                Ok(n) => {
                    // Never past the recorded size, whatever the read gave.
                    buf.truncate(left.min(n as u64) as usize);
                    left -= buf.len() as u64;
                    if sender.send(Ok(buf.freeze())).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(left, length, "reading a blob's file failed: {err}");
                    let _ = sender.send(Err(Box::new(err))).await;
                    return;
                }
            }
        }
    });
    body.boxed_unsync()
}

/// A response body fed by a task through a bounded channel: it ends once the task has
/// dropped its sender *and* every chunk it sent was taken, and an `Err` it sends fails the
/// body (hyper then closes the connection: the client sees the answer cut short).
///
/// Not http-body-util's `Channel`: its `poll_frame` looks at the data queue, finds it empty,
/// then looks at its error channel and answers "the end" if the sender is gone by then; a
/// sender that sent its last chunk and dropped between the two looks lost that chunk. That
/// cut blob downloads short under load (the client read `IncompleteBody`, hyper logged "user
/// body write aborted"), as the long crash test found.
struct Fed(tokio::sync::mpsc::Receiver<Result<Bytes, BoxError>>);

impl Fed {
    fn new(buffer: usize) -> (tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>, Fed) {
        let (sender, receiver) = tokio::sync::mpsc::channel(buffer);
        (sender, Fed(receiver))
    }
}

impl hyper::body::Body for Fed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        // `None` only when every sender is gone and the queue is empty.
        self.0
            .poll_recv(cx)
            .map(|next| next.map(|chunk| chunk.map(hyper::body::Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::{Fed, Target};

    #[tokio::test]
    async fn a_fed_body_gives_every_chunk_sent_before_its_sender_went_then_ends() {
        use http_body_util::BodyExt;
        let (sender, mut body) = Fed::new(2);
        // Polled while empty and the sender alive: not the end.
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let polled = hyper::body::Body::poll_frame(std::pin::Pin::new(&mut body), &mut context);
        assert!(polled.is_pending());
        let task = tokio::spawn(async move {
            for chunk in [&b"first "[..], b"last"] {
                sender
                    .send(Ok(bytes::Bytes::from_static(chunk)))
                    .await
                    .unwrap();
            }
            // The sender goes with its last chunk still queued.
        });
        task.await.unwrap();
        let whole = body.collect().await.unwrap().to_bytes();
        assert_eq!(&whole[..], b"first last");

        let (sender, body) = Fed::new(1);
        sender.send(Err("broken".into())).await.unwrap();
        drop(sender);
        assert_eq!(body.collect().await.unwrap_err().to_string(), "broken");
    }

    use http::Method;

    #[test]
    fn paths_are_read_from_their_end() {
        assert_eq!(Target::parse("/v2/"), Some(Target::Base));
        assert_eq!(Target::parse("/v2"), Some(Target::Base));
        assert_eq!(Target::parse("/v2/_catalog"), Some(Target::Catalog));
        assert_eq!(
            Target::parse("/v2/a/b/blobs/uploads/"),
            Some(Target::Uploads("a/b"))
        );
        assert_eq!(
            Target::parse("/v2/a/blobs/blobs/uploads/x"),
            Some(Target::Upload("a/blobs", "x"))
        );
        assert_eq!(
            Target::parse("/v2/x/blobs/uploads/manifests/v1"),
            Some(Target::Manifest("x/blobs/uploads", "v1"))
        );
        assert_eq!(Target::parse("/v2/a/tags/list"), Some(Target::Tags("a")));
        assert_eq!(
            Target::parse("/v2/repositories/manifests/latest"),
            Some(Target::Manifest("repositories", "latest"))
        );
        for not_registry in [
            "/v2/users/login",
            "/v2/repositories/acme/app/",
            "/v2/a/tags/other",
            "/v2/manifests/x",
            "/v2/a/manifests/",
            "/v3/a/manifests/x",
            "/v2x/a/manifests/x",
        ] {
            assert_eq!(Target::parse(not_registry), None, "{not_registry}");
        }
    }

    #[test]
    fn the_hub_api_keeps_paths_with_a_trailing_slash_or_deep_names() {
        let get = Method::GET;
        let wins =
            |path: &str, method: &Method| Target::parse(path).unwrap().wins_over_hub(method, path);
        assert!(wins("/v2/repositories/manifests/latest", &get));
        assert!(!wins("/v2/repositories/ns/app/tags/list", &get));
        assert!(wins("/v2/repositories/blobs/uploads/", &Method::POST));
        assert!(!wins("/v2/repositories/blobs/uploads/", &get));
    }
}
