//! The emulated Docker Hub API v2: login, who is asking, and webhook pipelines (which need
//! the repository's owner). What anyone may read is in `reads.rs`; lists are paged by
//! `page.rs`.

mod page;
mod reads;

pub use reads::{namespace, profile, repository, tag, tags, user};

use http::{header, Method, StatusCode};
use serde_json::json;

use crate::error::Error;
use crate::model::fields::{expect_object, Fields};
use crate::model::pipeline::PipelineSpec;
use crate::model::repository::{RepoName, Repository};
use crate::server::http::{empty, json_response, ok, HttpResponse, Req};
use crate::store::Store;
use page::PIPELINE_PAGES;

/// `POST /v2/users/login/` `{username, password}` → `{"token"}`
pub fn login(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    let (username, password) = credentials(req, ("username", "password"))?;
    let token = store
        .login(&username, &password)
        .ok_or_else(wrong_credentials)?;
    Ok(ok(&json!({ "token": token })))
}

/// `POST /v2/auth/token` `{identifier, secret}` → `{"access_token"}`: Docker Hub's login with
/// a personal access token. hubmock's users have one secret, the password given with
/// `--user name:secret`; give a PAT-like password (`dckr_pat_...`) to log in with a PAT.
pub fn access_token(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    let (identifier, secret) = credentials(req, ("identifier", "secret"))?;
    let token = store
        .login(&identifier, &secret)
        .ok_or_else(wrong_credentials)?;
    Ok(ok(&json!({ "access_token": token })))
}

/// The two required string fields of a login body, or the errors naming each one missing.
fn credentials(req: &Req, (user, secret): (&str, &str)) -> Result<(String, String), Error> {
    let body = req.json(false)?;
    let mut fields = Fields::new(expect_object(&body)?);
    let user = fields.required_string(user);
    let secret = fields.required_string(secret);
    match (user, secret) {
        (Some(user), Some(secret)) => Ok((user, secret)),
        _ => Err(fields.errors.into()),
    }
}

fn wrong_credentials() -> Error {
    Error::Unauthorized("Incorrect authentication credentials.".to_owned())
}

/// The `401` for a request that needs a login and sent no token.
fn credentials_not_provided() -> Error {
    Error::Unauthorized(
        "Authentication credentials were not provided: send 'Authorization: JWT <token>' (or \
         'Bearer <token>') with a token from POST /v2/users/login/ or POST /v2/auth/token."
            .to_owned(),
    )
}

/// Who sent a request.
struct Viewer {
    /// The user of the token it sent, if it sent one.
    user: Option<String>,
    /// Auth is off (`--no-auth`): anyone sees and changes everything.
    open: bool,
}

impl Viewer {
    /// Whether the viewer owns `namespace` (a user owns the namespace of its name).
    fn owns(&self, namespace: &str) -> bool {
        self.open || self.user.as_deref() == Some(namespace)
    }

    /// Whether the viewer may see `repository`: a public one anyone may, a private one its
    /// owner.
    fn sees(&self, repository: &Repository) -> bool {
        !repository.is_private || self.owns(&repository.namespace)
    }
}

/// Who sent this request: the user of its token, or nobody when it sent no `Authorization`
/// header. With auth on, a header that is not a valid token is a `401` even where no login is
/// needed, as Docker Hub answers a stale token; with auth off it is ignored.
fn viewer(store: &Store, req: &Req) -> Result<Viewer, Error> {
    let open = !store.config().auth;
    let Some(header) = req.headers.get(header::AUTHORIZATION) else {
        return Ok(Viewer { user: None, open });
    };
    let token = header.to_str().ok().and_then(|header| {
        header
            .strip_prefix("JWT ")
            .or_else(|| header.strip_prefix("Bearer "))
            .map(str::trim)
    });
    let user = token.and_then(|token| store.user_of(token));
    if open || user.is_some() {
        return Ok(Viewer { user, open });
    }
    Err(Error::Unauthorized(match token {
        None => "The Authorization header must be 'JWT <token>' or 'Bearer <token>'.".to_owned(),
        Some(_) => "Invalid or expired token: log in again with POST /v2/users/login/ or POST \
                    /v2/auth/token."
            .to_owned(),
    }))
}

/// Checks that the request comes from the repository's owner (webhook settings); answers the
/// acting user. Anonymous is `401`; another user `403`, or `404` for a private repository,
/// which is not even admitted to exist.
fn authorize(store: &Store, req: &Req, repository: &RepoName) -> Result<String, Error> {
    let viewer = viewer(store, req)?;
    if viewer.open {
        return Ok(repository.namespace.clone());
    }
    let user = viewer.user.ok_or_else(credentials_not_provided)?;
    if user == repository.namespace {
        return Ok(user);
    }
    match store.repository(repository) {
        Ok(repo) if repo.is_private => Err(Error::not_found("Not found.")),
        _ => Err(Error::Forbidden(format!(
            "You do not have permission to perform this action: user '{user}' does not own namespace '{}'.",
            repository.namespace
        ))),
    }
}

/// `GET|POST /v2/repositories/{ns}/{repo}/webhook_pipeline/`
pub fn pipelines(store: &Store, req: &Req, name: &RepoName) -> Result<HttpResponse, Error> {
    let user = authorize(store, req, name)?;
    if req.method == Method::POST {
        let spec = PipelineSpec::from_json(&req.json(false)?, true)?;
        let pipeline = store.create_pipeline(name, spec, &user)?;
        return Ok(json_response(StatusCode::CREATED, &pipeline.api_view()));
    }
    let pipelines = store.pipelines(name)?;
    let page = page::paginate(store, req, pipelines, PIPELINE_PAGES, |p| p.api_view())?;
    Ok(ok(&page))
}

/// `GET|PATCH|DELETE /v2/repositories/{ns}/{repo}/webhook_pipeline/{slug}/`
pub fn pipeline(
    store: &Store,
    req: &Req,
    name: &RepoName,
    slug: &str,
) -> Result<HttpResponse, Error> {
    authorize(store, req, name)?;
    match req.method {
        Method::PATCH => {
            let spec = PipelineSpec::from_json(&req.json(false)?, false)?;
            Ok(ok(&store.update_pipeline(name, slug, spec)?.api_view()))
        }
        Method::DELETE => {
            store.delete_pipeline(name, slug)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Ok(ok(&store.pipeline(name, slug)?.api_view())),
    }
}

/// `GET /v2/repositories/{ns}/{repo}/webhook_pipeline/{slug}/history/`
pub fn history(
    store: &Store,
    req: &Req,
    name: &RepoName,
    slug: &str,
) -> Result<HttpResponse, Error> {
    authorize(store, req, name)?;
    let runs = store.history(name, slug)?;
    Ok(ok(&page::paginate(
        store,
        req,
        runs,
        PIPELINE_PAGES,
        |run| run,
    )?))
}
