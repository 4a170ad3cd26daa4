//! The fuzzer's own callback endpoint, playing Docker Hub's part: every payload's
//! `callback_url` points here, so a receiver that calls back never reaches the real Hub.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Method, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::model::callback::Callback;
use crate::net::{serve_http, AcceptLoop, Timeouts};
use crate::server::http::{json_error, ok, read_limited, HttpError, HttpResponse, BODY_LIMIT};

/// What a receiver called back with: a valid callback, or why its body was rejected.
pub(crate) type Verdict = Result<Callback, String>;

enum Hook {
    /// The case is waiting; the sender is taken by the first callback that decides it.
    Awaiting(Option<oneshot::Sender<Verdict>>),
    /// The case is over, or a valid callback arrived: later callbacks are "Update not allowed".
    Done,
}

type Hooks = Arc<Mutex<HashMap<String, Hook>>>;

/// A local HTTP server answering callbacks as Docker Hub does: `200` to a valid body, `400`
/// with the offending fields to an invalid one, `400 "Update not allowed"` to a callback for a
/// finished case, `404` to an unknown hook id. Stops when dropped.
pub(crate) struct CallbackListener {
    base_url: String,
    hooks: Hooks,
    _accepting: AcceptLoop,
}

impl CallbackListener {
    /// Binds `127.0.0.1:0` and serves on the current runtime.
    pub(crate) async fn start() -> io::Result<CallbackListener> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let hooks: Hooks = Arc::default();
        let serving = hooks.clone();
        let accepting = AcceptLoop::spawn(listener, move |stream, stopping| {
            let hooks = serving.clone();
            let service = service_fn(move |req| {
                let hooks = hooks.clone();
                async move { Ok::<_, Infallible>(answer(&hooks, req).await) }
            });
            serve_http(stream, service, stopping, Timeouts::default())
        })?;
        Ok(CallbackListener {
            base_url,
            hooks,
            _accepting: accepting,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Starts waiting for a callback to `hook_id`; the receiver answers the first valid or
    /// invalid one.
    pub(crate) fn expect(&self, hook_id: &str) -> oneshot::Receiver<Verdict> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.hooks).insert(hook_id.to_owned(), Hook::Awaiting(Some(sender)));
        receiver
    }

    /// Ends the case of `hook_id`: a late callback gets "Update not allowed".
    pub(crate) fn finish(&self, hook_id: &str) {
        lock(&self.hooks).insert(hook_id.to_owned(), Hook::Done);
    }
}

fn lock(hooks: &Hooks) -> std::sync::MutexGuard<'_, HashMap<String, Hook>> {
    // A panic elsewhere cannot leave the map half-updated: every change is one insert.
    hooks.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The hook id of `/u/{ns}/{name}/hook/{id}/` or `/_/{name}/hook/{id}/`.
fn hook_id(path: &str) -> Option<&str> {
    let rest = path.strip_suffix('/').unwrap_or(path);
    let (before, id) = rest.rsplit_once('/')?;
    before.ends_with("/hook").then_some(id)
}

/// Answers one callback; errors are mapped to HTTP by the server's own [`json_error`], so
/// they read exactly as hubmock's callback endpoint writes them.
async fn answer(hooks: &Hooks, request: Request<Incoming>) -> HttpResponse {
    match decide(hooks, request).await {
        Ok(response) => response,
        Err(error) => json_error(&error),
    }
}

async fn decide(hooks: &Hooks, request: Request<Incoming>) -> Result<HttpResponse, HttpError> {
    let not_found = || Error::not_found("Not found.");
    let id = hook_id(request.uri().path())
        .map(str::to_owned)
        .ok_or_else(not_found)?;
    if request.method() != Method::POST {
        return Err(HttpError::MethodNotAllowed {
            method: request.method().clone(),
            allowed: "POST",
        });
    }
    let (parts, body) = request.into_parts();
    let body = read_limited(
        &parts.headers,
        body.map_err(Into::into).boxed(),
        BODY_LIMIT,
        true,
        crate::config::BODY_TIMEOUT,
    )
    .await?;
    let mut hooks = lock(hooks);
    let hook = hooks.get_mut(&id).ok_or_else(not_found)?;
    let Hook::Awaiting(sender) = hook else {
        return Err(Error::UpdateNotAllowed.into());
    };
    match Callback::validate(&body) {
        Ok(callback) => {
            if let Some(sender) = sender.take() {
                let _ = sender.send(Ok(callback));
            }
            *hook = Hook::Done;
            Ok(ok(&json!({"detail": "Callback accepted."})))
        }
        Err(errors) => {
            if let Some(sender) = sender.take() {
                let shown = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
                let _ = sender.send(Err(format!("{errors} (body: {shown})")));
            }
            // As on the Hub, the step still awaits a corrected callback.
            Err(Error::from(errors).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hook_id;

    #[test]
    fn hook_ids_are_read_from_both_callback_paths() {
        assert_eq!(hook_id("/u/acme/app/hook/abc/"), Some("abc"));
        assert_eq!(hook_id("/_/app/hook/abc/"), Some("abc"));
        assert_eq!(hook_id("/u/acme/app/hook/abc"), Some("abc"));
        assert_eq!(hook_id("/u/acme/app/abc/"), None);
        assert_eq!(hook_id("/"), None);
    }
}
