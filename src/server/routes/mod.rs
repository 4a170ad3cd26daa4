//! The router: which surface and handler a method and path belong to, and how each route
//! takes its body. One file per surface; each surface renders errors in its own dialect here.
//!
//! Routing happens on the path alone, before a byte of the body is read: a wrong path or
//! method is refused at once, and each route says whether it takes no body, a buffered one
//! (with its limit) or a stream.

mod callback;
mod control;
mod hub;
mod pages;
mod registry;

use std::borrow::Cow;

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Body;

use super::http::{
    check_head, json_error, BodyPolicy, BoxError, HttpError, HttpResponse, Req, TokenRefusal,
    BODY_LIMIT,
};
use crate::logging;
use crate::model::repository::{RepoName, LIBRARY};
use crate::store::Store;

/// Every endpoint, with the parts of its path.
enum Route<'a> {
    Login,
    AccessToken,
    User,
    Profile(&'a str),
    Namespace(&'a str),
    Repository(&'a str, &'a str),
    Tags(&'a str, &'a str),
    Tag(&'a str, &'a str, &'a str),
    Pipelines(&'a str, &'a str),
    Pipeline(&'a str, &'a str, &'a str),
    History(&'a str, &'a str, &'a str),
    Callback(&'a str, &'a str, &'a str),
    Health,
    OpenApi,
    Repositories,
    Push(&'a str, &'a str),
    Runs,
    Run(&'a str),
    Deliveries,
    Reset,
    State,
    Page(pages::Page<'a>),
    /// The registry (OCI distribution API) under `/v2/`.
    Registry(registry::Target<'a>),
    /// The registry's token endpoint.
    Token,
}

/// Who a route serves, and so which dialect its errors speak.
#[derive(Clone, Copy)]
enum Surface {
    /// Docker Hub's API v2: Django REST framework's JSON errors.
    Hub,
    /// The callback endpoint: as Docker Hub answers it.
    Callback,
    /// The control API `/_hubmock/`: the emulator's JSON errors.
    Control,
    /// The settings pages (`/`, `/r/{ns}/{repo}/~/settings/webhooks/`): HTML for people.
    Pages,
    /// The registry and its token endpoint: the OCI `{"errors": [...]}`.
    Registry,
}

impl Route<'_> {
    fn surface(&self) -> Surface {
        match self {
            Route::Login
            | Route::AccessToken
            | Route::User
            | Route::Profile(..)
            | Route::Namespace(..)
            | Route::Repository(..)
            | Route::Tags(..)
            | Route::Tag(..)
            | Route::Pipelines(..)
            | Route::Pipeline(..)
            | Route::History(..) => Surface::Hub,
            Route::Callback(..) => Surface::Callback,
            Route::Page(..) => Surface::Pages,
            Route::Registry(_) | Route::Token => Surface::Registry,
            _ => Surface::Control,
        }
    }

    /// Whether this route needs the control token, when one is configured: every route of a
    /// surface that takes it, except health (liveness probes carry no credentials) and the
    /// OpenAPI document (it describes the API and shows no state).
    fn needs_control_token(&self) -> bool {
        self.surface().takes_control_token() && !matches!(self, Route::Health | Route::OpenApi)
    }

    /// How this route takes its body when called with `method`.
    fn body_policy(&self, method: &Method) -> BodyPolicy {
        match (self, method) {
            // A state document can be far larger than any other body; its handler reads the
            // stream with its own limit.
            (Route::State, &Method::PUT) => BodyPolicy::Streamed,
            (Route::Reset, _) => BodyPolicy::None,
            (Route::Registry(target), method) => target.body_policy(method),
            (_, &Method::POST | &Method::PATCH | &Method::PUT) => BodyPolicy::Buffered(BODY_LIMIT),
            _ => BodyPolicy::None,
        }
    }
}

impl Surface {
    /// Whether `HEAD` on this surface's `GET` routes is answered as the `GET` is, without
    /// the body (the handlers then see a `GET`).
    fn answers_head_as_get(self) -> bool {
        match self {
            Surface::Hub | Surface::Callback | Surface::Control | Surface::Pages => true,
            // The registry answers HEAD itself, with the length a GET would send.
            Surface::Registry => false,
        }
    }

    /// Whether the control token (`--control-token`) guards this surface. It is a property of
    /// the surface, not of each route, so a surface that drives the emulator's state opts in
    /// here in one line, as the settings pages do. The Hub API and
    /// the callback endpoint never take it: they keep Docker Hub's own auth (login tokens; the
    /// hook id as the secret), so code under test calls them exactly as it calls Docker Hub.
    fn takes_control_token(self) -> bool {
        match self {
            Surface::Control | Surface::Pages => true,
            Surface::Hub | Surface::Callback | Surface::Registry => false,
        }
    }

    /// The one place where this surface's errors become answers. The Hub API, its callback
    /// endpoint and the control API all speak Django REST framework's `{"detail": ...}` JSON;
    /// the pages answer HTML, the registry the OCI `{"errors": [...]}` (its handlers' own
    /// refusals go through the same function, `registry::render`).
    fn render(self, error: &HttpError) -> HttpResponse {
        match self {
            Surface::Hub | Surface::Callback | Surface::Control => json_error(error),
            Surface::Pages => pages::render(error),
            Surface::Registry => registry::render_http(error),
        }
    }

    /// Why a request to this surface does not carry the control token, when one is set: the
    /// pages also take it from the cookie a browser keeps (README, "In the browser").
    fn token_refusal(self, store: &Store, req: &Req) -> Option<TokenRefusal> {
        match self {
            Surface::Pages => pages::token_refusal(store, req),
            _ => control_token_refusal(store, req),
        }
    }
}

/// Answers one request, whatever its body type (hyper's, or whole bytes in process). Never
/// fails: every error becomes a 4xx answer in the dialect of the route's surface.
pub async fn handle<B>(store: &Store, request: http::Request<B>) -> HttpResponse
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    if let Err(refusal) = check_head(&parts) {
        linger(body);
        return Surface::Control.render(&refusal);
    }
    // The route borrows its parts from the URI (a cheap, shared copy) while the request's
    // body is taken into `req`.
    let uri = parts.uri.clone();
    let mut req = Req::head(parts);
    if let Some(refusal) = own_delivery(store, &req) {
        linger(body);
        return Surface::Control.render(&refusal);
    }
    let route = match route(&req.method, uri.path()) {
        Ok(route) => route,
        Err(error) => {
            linger(body);
            return Surface::Control.render(&error);
        }
    };
    let surface = route.surface();
    // Before the body: a refused request is not read, and changes nothing.
    if route.needs_control_token() {
        if let Some(refusal) = surface.token_refusal(store, &req) {
            linger(body);
            return surface.render(&HttpError::ControlToken(refusal));
        }
    }
    if req.method == Method::HEAD && surface.answers_head_as_get() {
        // hyper sends the head of the GET answer without its body.
        req.method = Method::GET;
    }
    let body = body.map_err(Into::into).boxed();
    let timeout = store.config().body_timeout;
    if let Err(error) = req
        .take_body(body, route.body_policy(&req.method), timeout)
        .await
    {
        return surface.render(&error);
    }
    match dispatch(store, &mut req, route).await {
        Ok(response) => response,
        Err(error) => surface.render(&error),
    }
}

/// At most this much of a refused request's body is read and dropped ([`linger`]).
const LINGER_BYTES: usize = 8 * 1024 * 1024;
/// For at most this long.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and drops what is left of the body of a request refused before its body was read
/// (at most [`LINGER_BYTES`] for at most [`LINGER_TIME`]), in a task of its own, while the
/// answer goes out: a client still sending its body then reads the refusal, instead of a
/// connection reset that loses it (what nginx calls a lingering close). Nothing is kept.
fn linger<B>(body: B)
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
{
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let mut body = std::pin::pin!(body);
        let mut read = 0;
        let drain = async {
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}

async fn dispatch(
    store: &Store,
    req: &mut Req,
    route: Route<'_>,
) -> Result<HttpResponse, HttpError> {
    Ok(match route {
        Route::Login => hub::login(store, req)?,
        Route::AccessToken => hub::access_token(store, req)?,
        Route::User => hub::user(store, req)?,
        Route::Profile(name) => hub::profile(store, name)?,
        Route::Namespace(ns) => hub::namespace(store, req, ns)?,
        Route::Repository(ns, name) => hub::repository(store, req, &repo(ns, name)?)?,
        Route::Tags(ns, name) => hub::tags(store, req, &repo(ns, name)?)?,
        Route::Tag(ns, name, tag) => hub::tag(store, req, &repo(ns, name)?, tag)?,
        Route::Pipelines(ns, name) => hub::pipelines(store, req, &repo(ns, name)?)?,
        Route::Pipeline(ns, name, slug) => hub::pipeline(store, req, &repo(ns, name)?, slug)?,
        Route::History(ns, name, slug) => hub::history(store, req, &repo(ns, name)?, slug)?,
        Route::Callback(ns, name, hook_id) => callback::receive(store, req, ns, name, hook_id)?,
        Route::Health => control::health(),
        Route::OpenApi => control::openapi(),
        Route::Repositories => control::repositories(store, req)?,
        Route::Push(ns, name) => control::push(store, req, &repo(ns, name)?).await?,
        Route::Runs => control::runs(store, req)?,
        Route::Run(id) => control::run(store, req, id).await?,
        Route::Deliveries => control::deliveries(store, req).await?,
        Route::Reset => control::reset(store),
        Route::State => return control::state(store, req).await,
        Route::Page(page) => return pages::answer(store, req, page).await,
        Route::Registry(target) => return Ok(registry::handle(store, req, target).await),
        Route::Token => registry::token(store, req),
    })
}

/// A request that carries this emulator's own delivery marker: a hook URL points back at
/// hubmock. Refused whatever its route, so no configuration can make the emulator feed itself.
fn own_delivery(store: &Store, req: &Req) -> Option<HttpError> {
    let marker = req
        .headers
        .get(crate::delivery::DELIVERY_HEADER)?
        .to_str()
        .ok()?;
    let (run_id, step) = store.own_delivery(marker)?;
    tracing::warn!(
        target: logging::REQUEST,
        run = run_id,
        step,
        method = %req.method,
        path = %shown_path(&req.path),
        "refused hubmock's own delivery (508): a hook URL points back at hubmock"
    );
    Some(HttpError::OwnDelivery {
        run_id,
        step,
        method: req.method.clone(),
        path: req.path.clone(),
    })
}

/// Why a request does not carry the configured control token, if one is configured.
fn control_token_refusal(store: &Store, req: &Req) -> Option<TokenRefusal> {
    let expected = store.config().control_token.as_deref()?;
    let Some(header) = req.headers.get(http::header::AUTHORIZATION) else {
        return Some(TokenRefusal::Missing);
    };
    // The scheme is case-insensitive (RFC 9110, section 11.1); the token is compared as bytes.
    let header = header.as_bytes();
    let given = match header.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => header[7..].trim_ascii(),
        _ => return Some(TokenRefusal::NotBearer),
    };
    (!same_secret(given, expected.as_bytes())).then_some(TokenRefusal::Wrong)
}

/// Compares a given secret with the expected one in time that depends only on the expected
/// one's length, not on where they first differ, so the answer's timing does not lead a
/// guesser to the token byte by byte.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let differs = expected
        .iter()
        .enumerate()
        .fold(u8::from(given.len() != expected.len()), |acc, (i, byte)| {
            acc | (byte ^ given.get(i).copied().unwrap_or(0))
        });
    std::hint::black_box(differs) == 0
}

fn repo(namespace: &str, name: &str) -> Result<RepoName, HttpError> {
    Ok(RepoName::new(namespace, name)?)
}

/// The path as the log shows it: a callback path's hook id, which lets whoever knows it decide
/// the step, as `***`.
pub(super) fn shown_path(path: &str) -> Cow<'_, str> {
    match route(&Method::POST, path) {
        // The hook id is the last segment (a trailing slash aside).
        Ok(Route::Callback(_, _, hook_id)) if !hook_id.is_empty() => match path.rfind(hook_id) {
            Some(start) => Cow::Owned(format!(
                "{}***{}",
                &path[..start],
                &path[start + hook_id.len()..]
            )),
            None => Cow::Borrowed(path),
        },
        _ => Cow::Borrowed(path),
    }
}

/// Matches a path and checks the method. The registry shares `/v2/` with the Hub API: a path
/// of a registry endpoint's shape (`/v2/<name>/manifests/<reference>`, ...) is the registry's
/// unless it also fits a Hub API route and [`registry::Target::wins_over_hub`] says the Hub
/// API keeps it.
fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, HttpError> {
    let table = table_route(method, path);
    match registry::Target::parse(path) {
        Some(target)
            if matches!(table, Err(HttpError::NoRoute { .. }))
                || target.wins_over_hub(method, path) =>
        {
            Ok(Route::Registry(target))
        }
        _ => table,
    }
}

/// Matches a path (one optional trailing slash) against the table and checks the method.
fn table_route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, HttpError> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = trimmed.split('/').collect();
    let allow = |allowed: &'static str, route: Route<'a>| {
        if allowed.split(", ").any(|m| m == method.as_str()) {
            Ok(route)
        } else {
            Err(HttpError::MethodNotAllowed {
                method: method.clone(),
                allowed,
            })
        }
    };
    match segments.as_slice() {
        ["v2", "users", "login"] => allow("POST", Route::Login),
        ["v2", "auth", "token"] => allow("POST", Route::AccessToken),
        ["v2", "user"] => allow("GET, HEAD", Route::User),
        ["v2", "users", name] => allow("GET, HEAD", Route::Profile(name)),
        ["v2", "users", ns, "repositories"]
        | ["v2", "repositories", ns]
        | ["v2", "namespaces", ns, "repositories"] => allow("GET, HEAD", Route::Namespace(ns)),
        ["v2", "repositories", ns, name] | ["v2", "namespaces", ns, "repositories", name] => {
            allow("GET, HEAD", Route::Repository(ns, name))
        }
        ["v2", "repositories", ns, name, "tags"]
        | ["v2", "namespaces", ns, "repositories", name, "tags"] => {
            allow("GET, HEAD", Route::Tags(ns, name))
        }
        ["v2", "repositories", ns, name, "tags", tag]
        | ["v2", "namespaces", ns, "repositories", name, "tags", tag] => {
            allow("GET, HEAD", Route::Tag(ns, name, tag))
        }
        ["v2", "repositories", ns, name, "webhook_pipeline"] => {
            allow("GET, HEAD, POST", Route::Pipelines(ns, name))
        }
        ["v2", "repositories", ns, name, "webhook_pipeline", slug] => {
            allow("GET, HEAD, PATCH, DELETE", Route::Pipeline(ns, name, slug))
        }
        ["v2", "repositories", ns, name, "webhook_pipeline", slug, "history"] => {
            allow("GET, HEAD", Route::History(ns, name, slug))
        }
        ["u", ns, name, "hook", hook_id] => allow("POST", Route::Callback(ns, name, hook_id)),
        ["_", name, "hook", hook_id] => allow("POST", Route::Callback(LIBRARY, name, hook_id)),
        ["_hubmock", "health"] => allow("GET, HEAD", Route::Health),
        ["_hubmock", "openapi.json"] => allow("GET, HEAD", Route::OpenApi),
        ["_hubmock", "repositories"] => allow("GET, HEAD, POST", Route::Repositories),
        ["_hubmock", "repositories", ns, name, "push"] => allow("POST", Route::Push(ns, name)),
        ["_hubmock", "runs"] => allow("GET, HEAD", Route::Runs),
        ["_hubmock", "runs", id] => allow("GET, HEAD", Route::Run(id)),
        ["_hubmock", "deliveries"] => allow("GET, HEAD", Route::Deliveries),
        ["_hubmock", "reset"] => allow("POST", Route::Reset),
        ["_hubmock", "state"] => allow("GET, HEAD, PUT", Route::State),
        ["token"] => allow("GET, POST", Route::Token),
        _ => match pages::route(&segments) {
            Some((methods, page)) => allow(methods, Route::Page(page)),
            None => Err(HttpError::NoRoute {
                method: method.clone(),
                path: path.to_owned(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{same_secret, shown_path};

    #[test]
    fn only_the_same_bytes_are_the_same_secret() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cret!", b"s3cret"));
        assert!(!same_secret(b"s3creT", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
        // A given token padded with the zero bytes the fold reads past its end is still wrong.
        assert!(!same_secret(b"ab", b"ab\0"));
    }

    #[test]
    fn the_log_shows_a_callback_path_without_its_hook_id() {
        assert_eq!(
            shown_path("/u/acme/app/hook/abc123/"),
            "/u/acme/app/hook/***/"
        );
        assert_eq!(shown_path("/_/app/hook/abc123"), "/_/app/hook/***");
        // A hook id that also appears earlier in the path: only the last segment goes.
        assert_eq!(
            shown_path("/u/hook/hook/hook/hook"),
            "/u/hook/hook/hook/***"
        );
        assert_eq!(shown_path("/_hubmock/runs/7"), "/_hubmock/runs/7");
        assert_eq!(shown_path("/nowhere"), "/nowhere");
    }
}
