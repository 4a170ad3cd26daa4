//! Request reading and response writing shared by every surface, and the one place where
//! [`Error`]s become HTTP answers.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Error;

/// Largest request body accepted, in bytes (SPEC section 7).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest state document `PUT /_hubmock/state` accepts: an export of a busy emulator (up to
/// 10,000 logged deliveries) is well over 1 MiB, and it must import back.
pub const STATE_LIMIT: usize = 256 * 1024 * 1024;

/// How much of an oversized body is read and dropped before the connection is given up.
const DRAIN_LIMIT: usize = 16 * BODY_LIMIT;
/// How long an oversized body is read and dropped before the connection is given up.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// The `413` for an oversized body. The 413 is answered at once, while the rest of the body is
/// read and dropped in the background (up to [`DRAIN_LIMIT`] bytes or [`DRAIN_TIME`]), so a
/// client that writes its whole body before reading still gets the answer, not a reset.
fn refuse_oversized(mut body: Incoming, already: usize, limit: usize) -> Error {
    tokio::spawn(async move {
        let drain = async {
            let mut seen = already;
            while seen <= DRAIN_LIMIT {
                match body.frame().await {
                    Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    });
    Error::PayloadTooLarge(limit)
}

/// The response type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;

/// A request, its body read, as handlers see it.
pub struct Req {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (empty for methods without one).
    pub body: Bytes,
}

impl Req {
    /// A request from its parts; `target` is the path with an optional `?query`. For
    /// in-process callers (the router's fuzz target); the server uses [`Req::read`].
    pub fn new(method: Method, target: &str, headers: HeaderMap, body: Bytes) -> Req {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Req {
            method,
            path: path.to_owned(),
            query: parse_query(query),
            headers,
            body,
        }
    }

    /// Reads a hyper request, enforcing a body limit of `limit` bytes.
    pub async fn read(request: http::Request<Incoming>, limit: usize) -> Result<Req, Error> {
        let (parts, mut body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            let expects_continue = parts
                .headers
                .get(header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if expects_continue {
                // The client waits for our word before sending the body: it never has to.
                return Err(Error::PayloadTooLarge(limit));
            }
            return Err(refuse_oversized(body, 0, limit));
        }
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| {
                Error::BadRequest(format!("Could not read the request body: {err}"))
            })?;
            if let Some(data) = frame.data_ref() {
                if bytes.len() + data.len() > limit {
                    return Err(refuse_oversized(body, bytes.len() + data.len(), limit));
                }
                bytes.extend_from_slice(data);
            }
        }
        Ok(Req {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(parse_query).unwrap_or_default(),
            headers: parts.headers,
            body: Bytes::from(bytes),
        })
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
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (as a space); malformed escapes are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
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

/// The HTTP answer for an error: the one place errors meet status codes.
pub fn error_response(error: &Error) -> HttpResponse {
    let detail = |text: &str| json!({ "detail": text });
    let (status, body) = match error {
        Error::Invalid(errors) => (StatusCode::BAD_REQUEST, errors.to_json()),
        Error::BadRequest(text) => (StatusCode::BAD_REQUEST, detail(text)),
        // Docker Hub's own answer to a callback it does not await *(observed)*.
        Error::UpdateNotAllowed => (StatusCode::BAD_REQUEST, json!("Update not allowed")),
        Error::Unauthorized(text) => (StatusCode::UNAUTHORIZED, detail(text)),
        Error::Forbidden(text) => (StatusCode::FORBIDDEN, detail(text)),
        Error::NotFound(text) => (StatusCode::NOT_FOUND, detail(text)),
        Error::MethodNotAllowed { .. } => {
            (StatusCode::METHOD_NOT_ALLOWED, detail(&error.to_string()))
        }
        Error::Conflict(text) => (StatusCode::CONFLICT, detail(text)),
        Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, detail(&error.to_string())),
    };
    let mut response = json_response(status, &body);
    match error {
        Error::MethodNotAllowed { allowed, .. } => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        Error::Unauthorized(_) => {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("JWT realm=\"api\""),
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
