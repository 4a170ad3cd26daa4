//! The control API `/_hubmock/`: the test suite's handle on the emulator.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::json;

use crate::error::Error;
use crate::model::fields::{expect_object, Fields};
use crate::model::push::PushRequest;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::RunStatus;
use crate::model::tag::check_tag;
use crate::server::http::{
    json_response, ok, read_limited, HttpError, HttpResponse, Req, STATE_LIMIT,
};
use crate::store::{DeliveryFilter, RunFilter, Store, WaitFor};

/// The OpenAPI document of this API.
const OPENAPI: &str = include_str!("../openapi.json");

/// Longest long-poll accepted, so a forgotten `timeout_ms` cannot pin a connection for ever.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Long-poll time when `wait` is given without `timeout_ms`.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// `{"runs": [RUN, ...]}`, written straight from the runs (no detour through `Value`).
#[derive(serde::Serialize)]
struct Runs {
    runs: Vec<std::sync::Arc<crate::model::run::Run>>,
}

/// How long a long-poll waits: `timeout_ms`, else [`DEFAULT_WAIT`]; at most [`MAX_WAIT`].
fn wait_timeout(req: &Req) -> Result<Duration, Error> {
    Ok(req
        .number_param("timeout_ms")?
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(MAX_WAIT))
}

/// `GET /_hubmock/health`
pub fn health() -> HttpResponse {
    ok(&json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /_hubmock/openapi.json`
pub fn openapi() -> HttpResponse {
    let document: serde_json::Value =
        serde_json::from_str(OPENAPI).expect("the bundled OpenAPI document is valid JSON");
    ok(&document)
}

/// `GET|POST /_hubmock/repositories`
pub fn repositories(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    if req.method == Method::POST {
        let repository = Repository::from_json(&req.json(false)?)?;
        let created = store.create_repository(repository)?;
        return Ok(json_response(StatusCode::CREATED, &created));
    }
    Ok(ok(&json!({ "repositories": store.repositories() })))
}

/// `POST /_hubmock/repositories/{ns}/{repo}/push?wait=finished&timeout_ms=N`: without
/// `wait`, `202` at once with the runs started; with it, `200` once every run of the push has
/// finished (or the time is up: `"finished": false`, the runs as they are).
pub async fn push(store: &Store, req: &Req, name: &RepoName) -> Result<HttpResponse, Error> {
    // The query is checked before anything is pushed.
    let timeout = match req.param("wait") {
        None => None,
        Some("finished") => Some(wait_timeout(req)?),
        Some(other) => {
            return Err(Error::field(
                "wait",
                format!("Unknown wait condition '{other}'; a push can wait only for 'finished'."),
            ))
        }
    };
    let runs = start_push(store, req, name)?;
    let Some(timeout) = timeout else {
        return Ok(json_response(StatusCode::ACCEPTED, &Runs { runs }));
    };
    let runs = store.wait_for_runs(&runs, timeout).await;
    let finished = runs.iter().all(|run| !run.is_pending());
    Ok(ok(&json!({ "runs": runs, "finished": finished })))
}

/// The push a control-API body asks for (the page's "push now" sends the same body): the
/// runs it started.
pub fn start_push(
    store: &Store,
    req: &Req,
    name: &RepoName,
) -> Result<Vec<std::sync::Arc<crate::model::run::Run>>, Error> {
    let body = req.json(true)?;
    let mut fields = Fields::new(expect_object(&body)?);
    let tag = fields.string("tag");
    if let Some(Err(message)) = tag.as_deref().map(check_tag) {
        fields.errors.add("tag", message);
    }
    let push = PushRequest {
        tag,
        pusher: fields.string("pusher"),
        images: fields.string_list("images").unwrap_or_default(),
        media_type: fields.string("media_type"),
        extra: None,
    };
    let extra_tags = fields.string_list("extra_tags").unwrap_or_default();
    for extra in &extra_tags {
        if let Err(message) = check_tag(extra) {
            fields.errors.add("extra_tags", message);
        }
    }
    fields.errors.or_ok(())?;
    store.push_tags(name, push, &extra_tags)
}

/// `GET /_hubmock/runs?repository=ns/repo&pipeline=slug&status=s`
pub fn runs(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    let filter = RunFilter {
        repository: req.param("repository").map(RepoName::parse).transpose()?,
        pipeline: req.param("pipeline").map(str::to_owned),
        status: req
            .param("status")
            .map(|s| {
                s.parse::<RunStatus>()
                    .map_err(|e| Error::field("status", e))
            })
            .transpose()?,
    };
    Ok(ok(&Runs {
        runs: store.runs(&filter),
    }))
}

/// `GET /_hubmock/runs/{id}?wait=finished|delivered&step=K&timeout_ms=N`
pub async fn run(store: &Store, req: &Req, id: &str) -> Result<HttpResponse, Error> {
    let id: u64 = id
        .parse()
        .map_err(|_| Error::not_found(format!("There is no run {id:?}: run ids are numbers.")))?;
    let until = match req.param("wait") {
        None => return Ok(ok(&store.run(id)?)),
        Some("finished") => WaitFor::Finished,
        Some("delivered") => {
            let step = req.number_param("step")?.ok_or_else(|| {
                Error::field(
                    "step",
                    "wait=delivered needs the step (0-based) to wait for.",
                )
            })?;
            WaitFor::Delivered(step as usize)
        }
        Some(other) => {
            return Err(Error::field(
                "wait",
                format!("Unknown wait condition '{other}'; expected 'finished' or 'delivered'."),
            ))
        }
    };
    Ok(ok(&store
        .wait_for_run(id, until, wait_timeout(req)?)
        .await?))
}

/// `GET /_hubmock/deliveries?run=ID&url=U&min=N&timeout_ms=T`: with `min`, long-polls until
/// at least that many matching requests are recorded.
pub async fn deliveries(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    let filter = DeliveryFilter {
        run: req.number_param("run")?,
        url: req.param("url").map(str::to_owned),
    };
    let deliveries = match req.number_param("min")? {
        None => store.deliveries_matching(&filter),
        Some(min) => {
            store
                .wait_for_deliveries(&filter, min as usize, wait_timeout(req)?)
                .await
        }
    };
    // Serialised straight from the records so each body shows exactly as it was sent.
    #[derive(serde::Serialize)]
    struct Deliveries {
        deliveries: Vec<crate::store::DeliveryRecord>,
    }
    Ok(ok(&Deliveries { deliveries }))
}

/// `POST /_hubmock/reset`
pub fn reset(store: &Store) -> HttpResponse {
    store.reset();
    ok(&json!({ "status": "reset" }))
}

/// `GET|PUT /_hubmock/state`
pub async fn state(store: &Store, req: &mut Req) -> Result<HttpResponse, HttpError> {
    if req.method == Method::PUT {
        // Streamed to this handler: a state document has a limit of its own.
        if let Some(body) = req.stream.take() {
            // The stream is limited by pauses (`Req::take_body`), not by a total time.
            req.body = read_limited(&req.headers, body, STATE_LIMIT, true, Duration::MAX).await?;
        }
        store.import(&req.json(false)?)?;
        return Ok(ok(&json!({ "status": "imported" })));
    }
    Ok(ok(&store.export_json()))
}
