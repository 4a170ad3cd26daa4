//! Request reading and response writing shared by every surface: body policies, limits,
//! query parsing, and the JSON answers.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Error, Missing};

/// Largest request body accepted, in bytes (SPEC section 7).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest state document `PUT /_hubmock/state` accepts: an export of a busy emulator (up to
/// 10,000 logged deliveries) is well over 1 MiB, and it must import back.
pub const STATE_LIMIT: usize = 256 * 1024 * 1024;

/// Longest request target (path and query) answered, in bytes; a longer one is answered
/// `414` with a JSON body. (hyper itself refuses targets over 65,534 bytes, without a body.)
pub const URI_LIMIT: usize = 8 * 1024;
/// Largest total size of a request's header names and values, in bytes; a larger one is
/// answered `431` with a JSON body. (hyper itself refuses heads over about 408 KiB or with
/// more than 100 headers, without a body.)
pub const HEADERS_LIMIT: usize = 64 * 1024;

/// The reason a request is refused before (or instead of) reaching the domain: either a
/// domain [`Error`], or one of HTTP's own (no route, wrong method, body over the limit).
/// Each surface renders it in its own dialect, in one function ([`json_error`] today).
#[derive(Debug)]
pub enum HttpError {
    /// The domain refused.
    Domain(Error),
    /// No route has this path.
    NoRoute {
        /// The method used.
        method: Method,
        /// The path asked for.
        path: String,
    },
    /// The path takes other methods.
    MethodNotAllowed {
        /// The method used.
        method: Method,
        /// The methods the path takes, as the `Allow` header lists them.
        allowed: &'static str,
    },
    /// The body is over the route's limit.
    PayloadTooLarge(usize),
    /// The body broke off.
    BodyBroken(String),
    /// The request target is longer than [`URI_LIMIT`].
    UriTooLong(usize),
    /// The headers are larger than [`HEADERS_LIMIT`].
    HeadersTooLarge(usize),
    /// The body did not arrive within the time allowed (`--body-timeout`).
    BodyTimeout(std::time::Duration),
    /// The request is one of this emulator's own deliveries: a hook URL points back at it.
    OwnDelivery {
        /// The run whose delivery it is.
        run_id: u64,
        /// Its step (0-based).
        step: usize,
        /// The method used.
        method: Method,
        /// The path the hook URL named.
        path: String,
    },
    /// The surface requires the control token and the request does not carry it.
    ControlToken(TokenRefusal),
}

/// What is wrong with a request's control token. Never holds the token given: no answer or
/// log echoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header of another scheme (a Hub API `JWT` token, say).
    NotBearer,
    /// A bearer token that is not the control token.
    Wrong,
}

impl From<Error> for HttpError {
    fn from(error: Error) -> HttpError {
        HttpError::Domain(error)
    }
}

impl From<crate::model::fields::FieldErrors> for HttpError {
    fn from(errors: crate::model::fields::FieldErrors) -> HttpError {
        HttpError::Domain(Error::Invalid(errors))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Domain(error) => error.fmt(f),
            HttpError::NoRoute { method, path } => write!(
                f,
                "No route for {method} {path}. The control API is described at /_hubmock/openapi.json."
            ),
            HttpError::MethodNotAllowed { method, .. } => {
                write!(f, "Method \"{method}\" not allowed.")
            }
            HttpError::PayloadTooLarge(limit) => {
                write!(f, "Request body is larger than the limit of {limit} bytes.")
            }
            HttpError::BodyBroken(error) => write!(f, "Could not read the request body: {error}"),
            HttpError::UriTooLong(length) => write!(
                f,
                "The request target is {length} bytes long; hubmock takes at most {URI_LIMIT}."
            ),
            HttpError::HeadersTooLarge(size) => write!(
                f,
                "The request headers take {size} bytes; hubmock takes at most {HEADERS_LIMIT}."
            ),
            HttpError::BodyTimeout(limit) => write!(
                f,
                "The request body did not arrive within {} (--body-timeout); the connection is \
                 closed.",
                humantime::format_duration(*limit)
            ),
            HttpError::OwnDelivery {
                run_id,
                step,
                method,
                path,
            } => write!(
                f,
                "This request is hubmock's own delivery of run {run_id}, step {step}: its hook URL \
                 points back at hubmock ({method} {path}), which would make the emulator drive \
                 itself, so hubmock does not act on it. Point the webhook at a receiver instead."
            ),
            HttpError::ControlToken(TokenRefusal::Missing) => f.write_str(
                "Authentication credentials were not provided: this hubmock's control API \
                 requires its control token (set with --control-token or \
                 HUBMOCK_CONTROL_TOKEN) as 'Authorization: Bearer <token>'.",
            ),
            HttpError::ControlToken(TokenRefusal::NotBearer) => f.write_str(
                "The Authorization header must be 'Bearer <token>' with this hubmock's control \
                 token; a Hub API login token does not open the control API.",
            ),
            HttpError::ControlToken(TokenRefusal::Wrong) => f.write_str(
                "Invalid control token: the bearer token is not the one this hubmock was \
                 started with (--control-token or HUBMOCK_CONTROL_TOKEN).",
            ),
        }
    }
}

/// How a route takes its request body; chosen by the route, before any byte is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPolicy {
    /// The route takes no body: one that comes anyway is read and dropped (never kept), up to
    /// [`BODY_LIMIT`].
    None,
    /// Read whole into memory, up to this many bytes.
    Buffered(usize),
    /// Handed to the handler as a stream, to read at its own pace and with its own limit.
    Streamed,
}

/// A request body as a stream of frames, whatever transport it came by.
pub type BodyStream = BoxBody<Bytes, BoxError>;
/// Any error a body stream can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use super::body::{read_limited, stall_limited};

/// The response type of every handler: a body that may stream.
pub type HttpResponse = Response<ResponseBody>;
/// A response body: whole bytes or a stream.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// A response body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request as handlers see it: method, path, query and headers, and the body as its route's
/// [`BodyPolicy`] asked for it.
pub struct Req {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, when the route buffers it (empty otherwise).
    pub body: Bytes,
    /// The body, when the route streams it.
    pub stream: Option<BodyStream>,
}

/// Refuses a request head past [`URI_LIMIT`] or [`HEADERS_LIMIT`].
pub fn check_head(parts: &http::request::Parts) -> Result<(), HttpError> {
    let target = parts
        .uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > URI_LIMIT {
        return Err(HttpError::UriTooLong(target));
    }
    let headers: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > HEADERS_LIMIT {
        return Err(HttpError::HeadersTooLarge(headers));
    }
    Ok(())
}

impl Req {
    /// The head of a request, its body not read yet.
    pub fn head(parts: http::request::Parts) -> Req {
        Req {
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(parse_query).unwrap_or_default(),
            method: parts.method,
            headers: parts.headers,
            body: Bytes::new(),
            stream: None,
        }
    }

    /// Takes the body as `policy` says, enforcing its limit and `timeout` (for a body read
    /// whole: the time it may take; for a stream: the longest pause between two frames).
    pub async fn take_body(
        &mut self,
        body: BodyStream,
        policy: BodyPolicy,
        timeout: Duration,
    ) -> Result<(), HttpError> {
        match policy {
            BodyPolicy::Streamed => self.stream = Some(stall_limited(body, timeout)),
            BodyPolicy::None => {
                read_limited(&self.headers, body, BODY_LIMIT, false, timeout).await?;
            }
            BodyPolicy::Buffered(limit) => {
                self.body = read_limited(&self.headers, body, limit, true, timeout).await?;
            }
        }
        Ok(())
    }

    /// The value of a query parameter (the last one if repeated).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; an empty body is `{}` when `empty_is_object`.
    pub fn json(&self, empty_is_object: bool) -> Result<Value, Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return if empty_is_object {
                Ok(json!({}))
            } else {
                Err(Error::BadRequest(
                    "The request body is empty; this endpoint expects a JSON object.".to_owned(),
                ))
            };
        }
        parse_json(&self.body)
    }

    /// A query parameter parsed as a number, or a clear error.
    pub fn number_param(&self, name: &str) -> Result<Option<u64>, Error> {
        match self.param(name) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                Error::field(name, format!("'{text}' is not a non-negative integer."))
            }),
        }
    }
}

/// Parses a JSON body, with Django REST framework's message for malformed input.
pub fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|err| Error::BadRequest(format!("JSON parse error - {err}")))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    // Most answers fit: written without growing the buffer over and over.
    let mut bytes = Vec::with_capacity(1024);
    if serde_json::to_writer(&mut bytes, body).is_err() {
        bytes = b"{}".to_vec();
    }
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `200` with JSON.
pub fn ok(body: &impl Serialize) -> HttpResponse {
    json_response(StatusCode::OK, body)
}

/// An answer with this status and no body.
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// The JSON answer for a refusal, as the Hub API (Django REST framework) words it; the
/// control API and the callback endpoint speak the same dialect. `Allow` comes with a 405 and
/// `WWW-Authenticate` with a 401 (`JWT` for the Hub API's, `Bearer` for the control token's).
pub fn json_error(error: &HttpError) -> HttpResponse {
    let detail = |text: String| json!({ "detail": text });
    let (status, body) = match error {
        HttpError::Domain(domain) => match domain {
            Error::Invalid(errors) => (StatusCode::BAD_REQUEST, errors.to_json()),
            Error::BadRequest(text) => (StatusCode::BAD_REQUEST, detail(text.clone())),
            // Docker Hub's own answer to a callback it does not await *(observed)*.
            Error::UpdateNotAllowed => (StatusCode::BAD_REQUEST, json!("Update not allowed")),
            Error::Unauthorized(text) => (StatusCode::UNAUTHORIZED, detail(text.clone())),
            Error::Forbidden(text) => (StatusCode::FORBIDDEN, detail(text.clone())),
            Error::NotFound(Missing::Repository(name)) => (
                StatusCode::NOT_FOUND,
                detail(format!(
                    "Repository {name} does not exist: create it with POST /_hubmock/repositories."
                )),
            ),
            // Docker Hub's tag service answers `message` and `errinfo` *(observed)*; `detail`
            // too, for the clients that look for Django REST framework's key.
            Error::NotFound(missing @ Missing::Tag(name, tag)) => (
                StatusCode::NOT_FOUND,
                json!({
                    "message": format!("httperror 404: tag '{tag}' not found"),
                    "errinfo": {"namespace": name.namespace, "repository": name.name, "tag": tag},
                    "detail": missing.to_string(),
                }),
            ),
            Error::NotFound(missing) => (StatusCode::NOT_FOUND, detail(missing.to_string())),
            Error::Conflict(text) => (StatusCode::CONFLICT, detail(text.clone())),
            Error::Busy(text) => (StatusCode::SERVICE_UNAVAILABLE, detail(text.clone())),
        },
        HttpError::NoRoute { .. } => (StatusCode::NOT_FOUND, detail(error.to_string())),
        HttpError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, detail(error.to_string())),
        HttpError::BodyBroken(_) => (StatusCode::BAD_REQUEST, detail(error.to_string())),
        HttpError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, detail(error.to_string())),
        HttpError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, detail(error.to_string())),
        HttpError::HeadersTooLarge(_) => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            detail(error.to_string()),
        ),
        HttpError::MethodNotAllowed { .. } => {
            (StatusCode::METHOD_NOT_ALLOWED, detail(error.to_string()))
        }
        HttpError::OwnDelivery { .. } => (StatusCode::LOOP_DETECTED, detail(error.to_string())),
        HttpError::ControlToken(_) => (StatusCode::UNAUTHORIZED, detail(error.to_string())),
    };
    let mut response = json_response(status, &body);
    match error {
        HttpError::MethodNotAllowed { allowed, .. } => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        HttpError::BodyTimeout(_) => {
            // The rest of the body may still be on its way: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        HttpError::Domain(Error::Busy(_)) => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        HttpError::Domain(Error::Unauthorized(_)) => {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("JWT realm=\"api\""),
            );
        }
        HttpError::ControlToken(_) => {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hubmock\""),
            );
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            parse_query("repository=acme%2Fapp&x=a+b&bad=%zz&end=%4"),
            vec![
                ("repository".into(), "acme/app".into()),
                ("x".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }
}
