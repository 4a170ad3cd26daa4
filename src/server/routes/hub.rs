//! The emulated Docker Hub API v2: login, repositories and webhook pipelines.

use http::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::error::Error;
use crate::model::fields::{expect_object, Fields};
use crate::model::pipeline::PipelineSpec;
use crate::model::repository::RepoName;
use crate::server::http::{empty, json_response, ok, HttpResponse, Req};
use crate::store::Store;

/// Default and largest `page_size` of list endpoints.
const PAGE_SIZE: (u64, u64) = (100, 1000);

/// `POST /v2/users/login/`
pub fn login(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    let body = req.json(false)?;
    let mut fields = Fields::new(expect_object(&body)?);
    let username = fields.required_string("username");
    let password = fields.required_string("password");
    let (Some(username), Some(password)) = (username, password) else {
        return Err(fields.errors.into());
    };
    match store.login(&username, &password) {
        Some(token) => Ok(ok(&json!({ "token": token }))),
        None => Err(Error::Unauthorized(
            "Incorrect authentication credentials.".to_owned(),
        )),
    }
}

/// Checks the token and namespace ownership; answers the acting user.
fn authorize(store: &Store, req: &Req, repository: &RepoName) -> Result<String, Error> {
    if !store.config().auth {
        return Ok(repository.namespace.clone());
    }
    let header = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::Unauthorized(
                "Authentication credentials were not provided: send 'Authorization: JWT <token>' with a token from POST /v2/users/login/.".to_owned(),
            )
        })?;
    let token = header
        .strip_prefix("JWT ")
        .or_else(|| header.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            Error::Unauthorized(
                "The Authorization header must be 'JWT <token>' or 'Bearer <token>'.".to_owned(),
            )
        })?;
    let user = store.user_of(token).ok_or_else(|| {
        Error::Unauthorized(
            "Invalid or expired token: log in again with POST /v2/users/login/.".to_owned(),
        )
    })?;
    if user == repository.namespace {
        return Ok(user);
    }
    match store.repository(repository) {
        // A private repository is not even admitted to exist.
        Ok(repo) if repo.is_private => Err(Error::not_found("Not found.")),
        _ => Err(Error::Forbidden(format!(
            "You do not have permission to perform this action: user '{user}' does not own namespace '{}'.",
            repository.namespace
        ))),
    }
}

/// `GET /v2/repositories/{ns}/{repo}/`
pub fn repository(store: &Store, req: &Req, name: &RepoName) -> Result<HttpResponse, Error> {
    authorize(store, req, name)?;
    Ok(ok(&store.repository(name)?.api_view()))
}

/// `GET|POST /v2/repositories/{ns}/{repo}/webhook_pipeline/`
pub fn pipelines(store: &Store, req: &Req, name: &RepoName) -> Result<HttpResponse, Error> {
    let user = authorize(store, req, name)?;
    if req.method == Method::POST {
        let spec = PipelineSpec::from_json(&req.json(false)?, true)?;
        let pipeline = store.create_pipeline(name, spec, &user)?;
        return Ok(json_response(StatusCode::CREATED, &pipeline.api_view()));
    }
    let items = store
        .pipelines(name)?
        .iter()
        .map(|p| serde_json::to_value(p.api_view()).unwrap_or(Value::Null))
        .collect();
    Ok(ok(&paginate(store, req, items)?))
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
    let items = runs
        .iter()
        .map(|run| serde_json::to_value(run).unwrap_or(Value::Null))
        .collect();
    Ok(ok(&paginate(store, req, items)?))
}

/// Django REST framework's page: `{count, next, previous, results}`.
fn paginate(store: &Store, req: &Req, items: Vec<Value>) -> Result<Value, Error> {
    let page = req.number_param("page").unwrap_or(None).unwrap_or(1);
    let page_size = req
        .number_param("page_size")?
        .unwrap_or(PAGE_SIZE.0)
        .clamp(1, PAGE_SIZE.1);
    let count = items.len() as u64;
    let pages = count.div_ceil(page_size).max(1);
    if page == 0 || page > pages || req.number_param("page").is_err() {
        return Err(Error::not_found("Invalid page."));
    }
    let link = |p: u64| {
        json!(format!(
            "{}{}?page={p}&page_size={page_size}",
            store.public_url(),
            req.path
        ))
    };
    let start = ((page - 1) * page_size) as usize;
    let results: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(page_size as usize)
        .collect();
    Ok(json!({
        "count": count,
        "next": if page < pages { link(page + 1) } else { Value::Null },
        "previous": if page > 1 { link(page - 1) } else { Value::Null },
        "results": results,
    }))
}
