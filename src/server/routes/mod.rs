//! The router: which surface and handler a method and path belong to. One file per surface.

mod callback;
mod control;
mod hub;

use http::Method;

use super::http::{error_response, HttpResponse, Req};
use crate::error::Error;
use crate::model::repository::{RepoName, LIBRARY};
use crate::store::Store;

/// Every endpoint, with the parts of its path.
enum Route<'a> {
    Login,
    Repository(&'a str, &'a str),
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
}

/// Answers one request. Never fails: every error becomes a 4xx answer.
pub async fn handle(store: &Store, request: http::Request<hyper::body::Incoming>) -> HttpResponse {
    let is_state_import = request.method() == Method::PUT
        && request.uri().path().trim_end_matches('/') == "/_hubmock/state";
    let limit = if is_state_import {
        super::http::STATE_LIMIT
    } else {
        super::http::BODY_LIMIT
    };
    match Req::read(request, limit).await {
        Ok(req) => respond(store, &req).await,
        Err(error) => error_response(&error),
    }
}

/// Answers a request whose body has been read: the whole router, in process (the fuzz target
/// of the router calls this directly).
pub async fn respond(store: &Store, req: &Req) -> HttpResponse {
    match dispatch(store, req).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

async fn dispatch(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    let route = route(&req.method, &req.path)?;
    match route {
        Route::Login => hub::login(store, req),
        Route::Repository(ns, name) => hub::repository(store, req, &repo(ns, name)?),
        Route::Pipelines(ns, name) => hub::pipelines(store, req, &repo(ns, name)?),
        Route::Pipeline(ns, name, slug) => hub::pipeline(store, req, &repo(ns, name)?, slug),
        Route::History(ns, name, slug) => hub::history(store, req, &repo(ns, name)?, slug),
        Route::Callback(ns, name, hook_id) => callback::receive(store, req, ns, name, hook_id),
        Route::Health => control::health(),
        Route::OpenApi => control::openapi(),
        Route::Repositories => control::repositories(store, req),
        Route::Push(ns, name) => control::push(store, req, &repo(ns, name)?),
        Route::Runs => control::runs(store, req),
        Route::Run(id) => control::run(store, req, id).await,
        Route::Deliveries => control::deliveries(store, req).await,
        Route::Reset => control::reset(store),
        Route::State => control::state(store, req),
    }
}

fn repo(namespace: &str, name: &str) -> Result<RepoName, Error> {
    Ok(RepoName::new(namespace, name)?)
}

/// Matches a path (one optional trailing slash) and checks the method.
fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, Error> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = trimmed.split('/').collect();
    let allow = |allowed: &'static str, route: Route<'a>| {
        if allowed.split(", ").any(|m| m == method.as_str()) {
            Ok(route)
        } else {
            Err(Error::MethodNotAllowed {
                method: method.to_string(),
                allowed,
            })
        }
    };
    match segments.as_slice() {
        ["v2", "users", "login"] => allow("POST", Route::Login),
        ["v2", "repositories", ns, name] => allow("GET", Route::Repository(ns, name)),
        ["v2", "repositories", ns, name, "webhook_pipeline"] => {
            allow("GET, POST", Route::Pipelines(ns, name))
        }
        ["v2", "repositories", ns, name, "webhook_pipeline", slug] => {
            allow("GET, PATCH, DELETE", Route::Pipeline(ns, name, slug))
        }
        ["v2", "repositories", ns, name, "webhook_pipeline", slug, "history"] => {
            allow("GET", Route::History(ns, name, slug))
        }
        ["u", ns, name, "hook", hook_id] => allow("POST", Route::Callback(ns, name, hook_id)),
        ["_", name, "hook", hook_id] => allow("POST", Route::Callback(LIBRARY, name, hook_id)),
        ["_hubmock", "health"] => allow("GET", Route::Health),
        ["_hubmock", "openapi.json"] => allow("GET", Route::OpenApi),
        ["_hubmock", "repositories"] => allow("GET, POST", Route::Repositories),
        ["_hubmock", "repositories", ns, name, "push"] => allow("POST", Route::Push(ns, name)),
        ["_hubmock", "runs"] => allow("GET", Route::Runs),
        ["_hubmock", "runs", id] => allow("GET", Route::Run(id)),
        ["_hubmock", "deliveries"] => allow("GET", Route::Deliveries),
        ["_hubmock", "reset"] => allow("POST", Route::Reset),
        ["_hubmock", "state"] => allow("GET, PUT", Route::State),
        _ => Err(Error::NotFound(format!(
            "No route for {method} {path}. The control API is described at /_hubmock/openapi.json."
        ))),
    }
}
