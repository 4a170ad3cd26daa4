//! The fuzzer's own callback endpoint, playing Docker Hub's part: every payload's
//! `callback_url` points here, so a receiver that calls back never reaches the real Hub.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::model::callback::Callback;

/// Largest callback body read, as hubmock's own server allows.
const MAX_BODY: usize = 1024 * 1024;

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
    task: JoinHandle<()>,
}

impl CallbackListener {
    /// Binds `127.0.0.1:0` and serves on the current runtime.
    pub(crate) async fn start() -> io::Result<CallbackListener> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let hooks: Hooks = Arc::default();
        let task = tokio::spawn(serve(listener, hooks.clone()));
        Ok(CallbackListener {
            base_url,
            hooks,
            task,
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

impl Drop for CallbackListener {
    fn drop(&mut self) {
        // The accept loop owns the connection tasks (a JoinSet), so they end with it.
        self.task.abort();
    }
}

fn lock(hooks: &Hooks) -> std::sync::MutexGuard<'_, HashMap<String, Hook>> {
    // A panic elsewhere cannot leave the map half-updated: every change is one insert.
    hooks.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(listener: TcpListener, hooks: Hooks) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let hooks = hooks.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let hooks = hooks.clone();
                        async move { Ok::<_, Infallible>(answer(&hooks, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The hook id of `/u/{ns}/{name}/hook/{id}/` or `/_/{name}/hook/{id}/`.
fn hook_id(path: &str) -> Option<&str> {
    let rest = path.strip_suffix('/').unwrap_or(path);
    let (before, id) = rest.rsplit_once('/')?;
    before.ends_with("/hook").then_some(id)
}

async fn answer(hooks: &Hooks, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let not_found = || respond(StatusCode::NOT_FOUND, &json!({"detail": "Not found."}));
    let Some(id) = hook_id(req.uri().path()).map(str::to_owned) else {
        return not_found();
    };
    if req.method() != Method::POST {
        let detail = format!("Method \"{}\" not allowed.", req.method());
        return respond(StatusCode::METHOD_NOT_ALLOWED, &json!({"detail": detail}));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            let detail = "The request body is larger than 1 MiB, or broke off.";
            return respond(StatusCode::PAYLOAD_TOO_LARGE, &json!({"detail": detail}));
        }
    };
    let mut hooks = lock(hooks);
    let Some(hook) = hooks.get_mut(&id) else {
        return not_found();
    };
    let Hook::Awaiting(sender) = hook else {
        return respond(StatusCode::BAD_REQUEST, &json!("Update not allowed"));
    };
    match Callback::validate(&body) {
        Ok(callback) => {
            if let Some(sender) = sender.take() {
                let _ = sender.send(Ok(callback));
            }
            *hook = Hook::Done;
            respond(StatusCode::OK, &json!({"detail": "Callback accepted."}))
        }
        Err(errors) => {
            let errors = errors.to_json();
            if let Some(sender) = sender.take() {
                let shown = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
                let _ = sender.send(Err(format!("{errors} (body: {shown})")));
            }
            // As on the Hub, the step still awaits a corrected callback.
            respond(StatusCode::BAD_REQUEST, &errors)
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
