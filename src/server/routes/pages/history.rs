//! A pipeline's History: a page of runs, its long-poll (`?live=VERSION`), and "send
//! callback".

use http::{Method, StatusCode};

use super::{html_response, see_other};
use crate::error::Error;
use crate::model::repository::RepoName;
use crate::server::http::{empty, HttpError, HttpResponse, Req};
use crate::server::pages;
use crate::server::pages::form::{CallbackForm, Errors, Form};
use crate::server::pages::history::{self, Refused, PAGE_SIZE};
use crate::store::Store;

/// Longest a History long-poll waits before answering `204 No Content` (the script asks
/// again); well below the usual proxy and browser timeouts.
const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(25);

/// History: a page of runs; with `?live=VERSION`, a long-poll that answers the page once it
/// differs from that version (`204` after [`LIVE_WAIT`] if it never does, or at once when the
/// server shuts down); a posted "send callback" form.
pub(super) async fn answer(
    store: &Store,
    req: &Req,
    name: &RepoName,
    slug: &str,
    nonce: &str,
) -> Result<HttpResponse, HttpError> {
    if req.method == Method::POST {
        return send_callback(store, req, name, slug, nonce);
    }
    let number = page_number(req.param("page"))?;
    let live = req.param("live");
    let deadline = tokio::time::Instant::now() + LIVE_WAIT;
    loop {
        let offset = (number - 1) * PAGE_SIZE;
        let (page, wakeup) = store.history_page(name, slug, offset, PAGE_SIZE, live.is_some())?;
        check_page_exists(number, page.total)?;
        let (markup, version) = history::page(&page, number, None, &[], nonce);
        match (live, wakeup) {
            (Some(seen), Some(wakeup)) if seen == version => {
                // Past the wait, or the server shutting down: nothing new, the script asks again.
                tokio::select! {
                    woken = tokio::time::timeout_at(deadline, wakeup) => {
                        if woken.is_err() {
                            return Ok(empty(StatusCode::NO_CONTENT));
                        }
                    }
                    _ = store.stopped_waiting() => return Ok(empty(StatusCode::NO_CONTENT)),
                }
            }
            _ => return Ok(html_response(StatusCode::OK, markup, nonce)),
        }
    }
}

/// `?page=N`: 1 when absent, refused unless a positive number.
fn page_number(param: Option<&str>) -> Result<usize, Error> {
    match param {
        None => Ok(1),
        Some(text) => text
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| Error::not_found(format!("History has no page {text:?}."))),
    }
}

fn check_page_exists(number: usize, total: usize) -> Result<(), Error> {
    let pages = history::pages(total);
    if number > pages {
        return Err(Error::not_found(format!(
            "History has {pages} page(s) of {PAGE_SIZE} runs; there is no page {number}."
        )));
    }
    Ok(())
}

/// "Send callback": the form's fields as the callback body, to `Store::callback` for the
/// step's hook id, as if its receiver had called back.
fn send_callback(
    store: &Store,
    req: &Req,
    name: &RepoName,
    slug: &str,
    nonce: &str,
) -> Result<HttpResponse, HttpError> {
    let posted = Form::parse(&req.body);
    let number = page_number(posted.get("page")).unwrap_or(1);
    let (typed, body) = CallbackForm::read(&posted);
    let run_id = posted.get("run").and_then(|v| v.parse::<u64>().ok());
    let step = posted.get("step").and_then(|v| v.parse::<usize>().ok());
    // The pipeline exists (or this is a 404) before the run is looked for.
    store.pipeline(name, slug)?;
    let hook = run_id.zip(step).and_then(|(run_id, step)| {
        let run = store.run(run_id).ok()?;
        let ours = run.repository() == name && run.pipeline() == slug;
        let hook_id = run.steps().get(step).filter(|_| ours)?.hook_id.clone();
        Some((run_id, step, hook_id))
    });
    let (run_id, step, errors) = match hook {
        None => {
            let problem = format!(
                "No step {} of run {} belongs to this pipeline: the form names a run and a step \
                 (0-based) of this History.",
                posted.get("step").unwrap_or("(none)"),
                posted.get("run").unwrap_or("(none)"),
            );
            return history_with(store, name, slug, 1, None, &[problem], nonce);
        }
        Some((run_id, step, hook_id)) => {
            match store.callback(name, &hook_id, body.to_string().as_bytes()) {
                Ok(_) => {
                    let path = pages::history_path(name, slug);
                    return Ok(see_other(&format!("{path}?page={number}#run-{run_id}")));
                }
                Err(Error::Invalid(errors)) => (run_id, step, Errors::of(&errors)),
                Err(Error::UpdateNotAllowed) => (
                    run_id,
                    step,
                    Errors::general(
                        "Update not allowed: this step does not await a callback (any more), \
                         as Docker Hub answers.",
                    ),
                ),
                Err(Error::BadRequest(text)) => (run_id, step, Errors::general(text)),
                Err(other) => return Err(other.into()),
            }
        }
    };
    let refused = Refused {
        run: run_id,
        step,
        form: &typed,
        errors: &errors,
    };
    history_with(store, name, slug, number, Some(&refused), &[], nonce)
}

/// History page `number` (the first if it no longer exists) answered `400` with a refused
/// form or problems shown.
fn history_with(
    store: &Store,
    name: &RepoName,
    slug: &str,
    number: usize,
    refused: Option<&Refused<'_>>,
    problems: &[String],
    nonce: &str,
) -> Result<HttpResponse, HttpError> {
    let offset = (number - 1) * PAGE_SIZE;
    let (mut page, _) = store.history_page(name, slug, offset, PAGE_SIZE, false)?;
    let mut number = number;
    if check_page_exists(number, page.total).is_err() {
        number = 1;
        page = store.history_page(name, slug, 0, PAGE_SIZE, false)?.0;
    }
    let (markup, _) = history::page(&page, number, refused, problems, nonce);
    Ok(html_response(StatusCode::BAD_REQUEST, markup, nonce))
}
