//! Home, a repository's webhooks page with its forms ("create pipeline", "Add webhook",
//! "push now"), and the delete confirmation.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use super::{html_response, see_other};
use crate::error::Error;
use crate::model::fields::FieldErrors;
use crate::model::pipeline::PipelineSpec;
use crate::model::repository::{RepoName, Repository};
use crate::server::http::{HttpError, HttpResponse, Req};
use crate::server::pages::form::{Errors, Form, PipelineForm, PushForm, RepositoryForm};
use crate::server::pages::settings::{self, Settings};
use crate::server::pages::{self, home as home_view};
use crate::server::routes::control;
use crate::store::Store;

/// `GET|POST /`: the home page; its form creates a repository.
pub(super) fn home(store: &Store, req: &Req, nonce: &str) -> Result<HttpResponse, HttpError> {
    let mut form = RepositoryForm::default();
    let mut errors = Errors::default();
    if req.method == Method::POST {
        let (typed, body) = RepositoryForm::read(&Form::parse(&req.body));
        form = typed;
        match Repository::from_json(&body).map_err(Error::from) {
            Ok(repository) => {
                let name = repository.repo_name();
                match store.create_repository(repository) {
                    Ok(_) => return Ok(see_other(&pages::settings_path(&name))),
                    Err(Error::Conflict(text)) => {
                        errors = Errors::of(&FieldErrors::single("name", text))
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            Err(Error::Invalid(invalid)) => errors = Errors::of(&invalid),
            Err(other) => return Err(other.into()),
        }
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let markup = home_view::page(&store.repositories(), &form, &errors, nonce);
    Ok(html_response(status, markup, nonce))
}

/// The settings page's forms as typed, and what the APIs said about them.
#[derive(Default)]
struct SettingsForms {
    pipeline: PipelineForm,
    pipeline_errors: Errors,
    url_errors: Vec<Vec<String>>,
    push: PushForm,
    push_errors: Errors,
    status: Option<StatusCode>,
}

/// `GET|POST` a repository's webhooks page.
pub(super) fn settings(
    store: &Store,
    req: &Req,
    name: &RepoName,
    nonce: &str,
) -> Result<HttpResponse, HttpError> {
    let mut forms = SettingsForms::default();
    if req.method == Method::POST {
        let posted = Form::parse(&req.body);
        let done = match posted.get("form") {
            Some("push") => push(store, name, &posted, &mut forms)?,
            _ => create_pipeline(store, name, &posted, &mut forms)?,
        };
        if done {
            return Ok(see_other(&format!(
                "{}#pipelines",
                pages::settings_path(name)
            )));
        }
    }
    let overview = store.repository_overview(name)?;
    let view = Settings {
        repository: &overview.repository,
        pipelines: &overview.pipelines,
        latest: &overview.latest,
        tags: &overview.tags,
        default_format: store.config().payload_format,
        pipeline_form: &forms.pipeline,
        pipeline_errors: &forms.pipeline_errors,
        url_errors: &forms.url_errors,
        push_form: &forms.push,
        push_errors: &forms.push_errors,
    };
    let status = forms.status.unwrap_or(StatusCode::OK);
    Ok(html_response(status, settings::page(&view, nonce), nonce))
}

/// The create form posted: "Add webhook" (another URL field, nothing created) or "Create
/// pipeline" through the Hub API's validation. `true` when created.
fn create_pipeline(
    store: &Store,
    name: &RepoName,
    posted: &Form,
    forms: &mut SettingsForms,
) -> Result<bool, Error> {
    // Known before anything else: a form for a repository that does not exist is not shown.
    store.repository(name)?;
    forms.pipeline = PipelineForm::read(posted);
    if posted.get("action") == Some("add-url") {
        forms.pipeline.urls.push(String::new());
        return Ok(false);
    }
    let (body, fields) = forms.pipeline.to_json(posted);
    let created = PipelineSpec::from_json(&body, true)
        .map_err(Error::from)
        .and_then(|spec| store.create_pipeline(name, spec, &name.namespace));
    let errors = match created {
        Ok(_) => return Ok(true),
        Err(Error::Invalid(errors)) => Errors::of(&errors),
        Err(other) => return Err(other),
    };
    forms.url_errors = (0..forms.pipeline.urls.len())
        .map(|field| match fields.iter().position(|&f| f == field) {
            Some(sent) => [
                errors.item("webhooks", sent, "hook_url"),
                errors.item("webhooks", sent, "name"),
            ]
            .concat(),
            None => Vec::new(),
        })
        .collect();
    // What the API says of the chain as a whole ("needs at least one webhook", "required")
    // goes beside its first field.
    forms.url_errors[0].extend(errors.field("webhooks"));
    forms.pipeline_errors = errors;
    forms.status = Some(StatusCode::BAD_REQUEST);
    Ok(false)
}

/// "Push now": the control API's push body, through its own handler (and so `Store::push`).
fn push(
    store: &Store,
    name: &RepoName,
    posted: &Form,
    forms: &mut SettingsForms,
) -> Result<bool, Error> {
    let (typed, body) = PushForm::read(posted);
    forms.push = typed;
    let request = Req {
        method: Method::POST,
        path: format!("/_hubmock/repositories/{name}/push"),
        query: Vec::new(),
        headers: HeaderMap::new(),
        body: Bytes::from(body.to_string()),
        stream: None,
    };
    match control::start_push(store, &request, name) {
        Ok(_) => Ok(true),
        Err(Error::Invalid(errors)) => {
            forms.push_errors = Errors::of(&errors);
            forms.status = Some(StatusCode::BAD_REQUEST);
            Ok(false)
        }
        Err(Error::Busy(text)) => {
            forms.push_errors = Errors::general(text);
            forms.status = Some(StatusCode::SERVICE_UNAVAILABLE);
            Ok(false)
        }
        Err(other) => Err(other),
    }
}

/// `GET` the confirmation, `POST` the deletion.
pub(super) fn delete(
    store: &Store,
    req: &Req,
    name: &RepoName,
    slug: &str,
    nonce: &str,
) -> Result<HttpResponse, HttpError> {
    if req.method == Method::POST {
        store.delete_pipeline(name, slug)?;
        return Ok(see_other(&format!(
            "{}#pipelines",
            pages::settings_path(name)
        )));
    }
    let repository = store.repository(name)?;
    let pipeline = store.pipeline(name, slug)?;
    let pending = store.pending_runs(name, slug)?;
    let markup = settings::confirm_delete(&repository, &pipeline, pending, nonce);
    Ok(html_response(StatusCode::OK, markup, nonce))
}
