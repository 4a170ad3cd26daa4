//! A pipeline's History page: its runs newest first, 25 a page, each step with what was sent,
//! what came back and the callback; a "send callback" form on each step that awaits one.
//! The page carries a version (a hash of what it shows) so that a long-poll can tell whether
//! anything changed, and each run its own, so the script replaces only the runs that did.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use maud::{html, Markup};

use super::form::{CallbackForm, Errors};
use super::pretty::pretty;
use super::{history_path, layout, messages, repo_crumbs, status, time};
use crate::model::fields::is_absolute_http_url;
use crate::model::hook_url::redact;
use crate::model::repository::RepoName;
use crate::model::run::{Run, Step, StepStatus};
use crate::store::{DeliveryRecord, HistoryPage};

/// Runs on one page of History.
pub(crate) const PAGE_SIZE: usize = 25;
/// How much of a response body History shows, in characters.
const EXCERPT: usize = 1000;

/// A "send callback" form that was refused, shown again on its step with what was typed.
pub(crate) struct Refused<'a> {
    /// The run.
    pub(crate) run: u64,
    /// The step (0-based).
    pub(crate) step: usize,
    /// The form as typed.
    pub(crate) form: &'a CallbackForm,
    /// Why it was refused.
    pub(crate) errors: &'a Errors,
}

/// How many pages `total` runs take (at least one, an empty first page).
pub(crate) fn pages(total: usize) -> usize {
    total.div_ceil(PAGE_SIZE).max(1)
}

/// The History page `number` (1-based), with a refused callback form or problems with a post
/// when there are any, and the page's version.
pub(crate) fn page(
    history: &HistoryPage,
    number: usize,
    refused: Option<&Refused<'_>>,
    problems: &[String],
    nonce: &str,
) -> (Markup, String) {
    let repo = history.repository.repo_name();
    let pipeline = &history.pipeline;
    let path = history_path(&repo, &pipeline.slug);
    let pages = pages(history.total);
    // A refused form whose step shows no form (it awaits no callback, or is not on this page)
    // has its messages shown at the top, so none is lost.
    let shown = refused.is_some_and(|r| {
        history.runs.iter().any(|run| {
            run.id() == r.run
                && run
                    .steps()
                    .get(r.step)
                    .is_some_and(|s| s.status == StepStatus::AwaitingCallback)
        })
    });
    let mut problems = problems.to_vec();
    if let Some(refused) = refused.filter(|_| !shown) {
        let step = refused.step + 1;
        for message in refused.errors.others(&[]) {
            problems.push(format!("Run #{}, step {step}: {message}", refused.run));
        }
    }
    let runs = runs(history, &repo, number, refused);
    let summary = html! {
        p #summary {
            (history.total) " run(s), newest first, " (PAGE_SIZE) " a page. "
            @let pending = history.runs.iter().filter(|r| r.is_pending()).count();
            @if pending > 0 { (pending) " pending on this page." }
        }
    };
    let pager = html! {
        nav #pager .pages aria-label="Pages" {
            @if number > 1 {
                a href=(format!("{path}?page={}", number - 1)) rel="prev" { "← Newer" }
            }
            span { "Page " (number) " of " (pages) }
            @if number < pages {
                a href=(format!("{path}?page={}", number + 1)) rel="next" { "Older →" }
            }
        }
    };
    let version = version(&[&summary, &pager, &runs]);
    let main = html! {
        main data-live data-version=(version) {
            h1 { "History of " (pipeline.name) }
            p.muted {
                "Webhook pipeline of " (repo) ": "
                @for (i, webhook) in pipeline.webhooks.iter().enumerate() {
                    @if i > 0 { " → " }
                    code { (redact(&webhook.hook_url)) }
                }
            }
            p #live-note .muted { "Reload the page to see what changed since it was served." }
            @if !problems.is_empty() {
                div role="alert" { (messages("problems", &problems)) }
            }
            (summary)
            (runs)
            (pager)
        }
    };
    let mut crumbs = repo_crumbs(&repo);
    crumbs.push((format!("{} history", pipeline.name), path));
    let title = format!("History of {}", pipeline.name);
    (layout(&title, &crumbs, nonce, main), version)
}

/// The version of what these parts show: equal versions, equal pages.
fn version(parts: &[&Markup]) -> String {
    let mut hasher = DefaultHasher::new();
    for part in parts {
        part.0.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn runs(
    history: &HistoryPage,
    repo: &RepoName,
    number: usize,
    refused: Option<&Refused<'_>>,
) -> Markup {
    html! {
        div #runs {
            @if history.runs.is_empty() {
                p.muted { "No runs yet: push from the repository's webhooks page." }
            }
            @for run in &history.runs {
                @let body = run_body(history, repo, run, number, refused);
                article.run.live[run.is_pending()] id=(format!("run-{}", run.id()))
                    data-version=(version(&[&body]))
                    aria-labelledby=(format!("run-{}-title", run.id())) {
                    (body)
                }
            }
        }
    }
}

fn run_body(
    history: &HistoryPage,
    repo: &RepoName,
    run: &Run,
    number: usize,
    refused: Option<&Refused<'_>>,
) -> Markup {
    let push = run.push();
    html! {
        h2 id=(format!("run-{}-title", run.id())) { "Run #" (run.id()) " " (status(&run.status())) }
        dl.facts {
            dt { "Push" } dd { "tag " code { (push.tag) } " by " (push.pusher) }
            dt { "Digest" }
            dd {
                @if push.images.is_empty() { span.muted { "none" } }
                @for image in &push.images { code { (image) } " " }
            }
            dt { "Started" } dd { (time(run.created())) }
            dt { "Finished" }
            dd {
                @match run.finished() {
                    Some(finished) => {
                        (time(finished)) " (after " (finished.since(run.created()).as_millis()) " ms)"
                    }
                    None => span.muted { "not yet" },
                }
            }
        }
        @for (i, step) in run.steps().iter().enumerate() {
            @let records: Vec<&DeliveryRecord> = history
                .deliveries
                .iter()
                .filter(|d| d.run_id == run.id() && d.step == i)
                .collect();
            // The step's own delivery; a fault plan's extra posts (a duplicate, a forged
            // one) are listed apart.
            @let record = records
                .iter()
                .rev()
                .find(|d| d.fault.as_ref().is_none_or(|f| f.of.is_none()))
                .copied();
            @let extras: Vec<&DeliveryRecord> = records
                .iter()
                .filter(|d| d.fault.as_ref().is_some_and(|f| f.of.is_some()))
                .copied()
                .collect();
            @let refused = refused.filter(|r| r.run == run.id() && r.step == i);
            (step_section(repo, &history.pipeline.slug, run, i, step, record, number, refused))
            @if !extras.is_empty() {
                p.faults {
                    "Also posted by the fault plan: "
                    @for (n, extra) in extras.iter().enumerate() {
                        @if n > 0 { ", " }
                        @if let Some(fault) = &extra.fault { code { (fault.kind.as_str()) } }
                        " (HTTP "
                        @match extra.result.status { Some(code) => (code), None => "none" }
                        ")"
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn step_section(
    repo: &RepoName,
    slug: &str,
    run: &Run,
    index: usize,
    step: &Step,
    record: Option<&DeliveryRecord>,
    number: usize,
    refused: Option<&Refused<'_>>,
) -> Markup {
    let id = format!("run-{}-step-{index}", run.id());
    html! {
        section.step aria-labelledby=(format!("{id}-title")) {
            h3 id=(format!("{id}-title")) {
                "Step " (index + 1) ": " (step.webhook) " " (status(&step.status))
            }
            dl.facts {
                dt { "URL" } dd { code { (redact(&step.hook_url)) } }
                dt { "Delivered" }
                dd {
                    @match step.delivered_at {
                        Some(at) => (time(at)),
                        None => span.muted { "not yet" },
                    }
                }
                @if let Some(delivery) = &step.delivery {
                    dt { "Response" }
                    dd {
                        @if let Some(code) = delivery.status { "HTTP " (code) }
                        @if let Some(error) = &delivery.error { " " span.error { (error) } }
                    }
                    dt { "Duration" } dd { (delivery.duration_ms) " ms" }
                } @else if step.delivered_at.is_some() {
                    dt { "Response" } dd.muted { "awaited" }
                }
                dt { "Callback" }
                dd {
                    @match &step.callback {
                        Some(callback) => {
                            (status(&callback.state)) " at " (time(callback.received))
                        }
                        None if step.status == StepStatus::AwaitingCallback => {
                            span.muted { "awaited" }
                        }
                        None => span.muted { "none" },
                    }
                }
                @if let Some(callback) = &step.callback {
                    @if let Some(description) = &callback.description {
                        dt { "Description" } dd { (description) }
                    }
                    @if let Some(context) = &callback.context {
                        dt { "Context" } dd { (context) }
                    }
                    @if let Some(target) = &callback.target_url {
                        dt { "Target URL" }
                        dd {
                            // A link only to the web: never `javascript:` or `data:`.
                            @if is_absolute_http_url(target) {
                                a href=(target) rel="noopener noreferrer nofollow" { (target) }
                            } @else {
                                code { (target) }
                            }
                        }
                    }
                }
            }
            @if let Some(body) = step.delivery.as_ref().and_then(|d| d.response_body.as_deref()) {
                @if !body.is_empty() {
                    details id=(format!("{id}-response")) {
                        summary { "Response body" @if body.chars().count() > EXCERPT { " (the first " (EXCERPT) " characters)" } }
                        pre { (excerpt(body)) }
                    }
                }
            }
            @if let Some(record) = record {
                details id=(format!("{id}-payload")) {
                    summary { "Payload sent" }
                    pre { (pretty(record.request_body.get())) }
                }
            } @else if step.delivered_at.is_some() && step.delivery.is_some() {
                p.muted { "Its payload is no longer in the deliveries log (it keeps the latest ones)." }
            }
            @if step.status == StepStatus::AwaitingCallback {
                (callback_form(repo, slug, run.id(), index, number, refused))
            }
        }
    }
}

fn excerpt(body: &str) -> &str {
    match body.char_indices().nth(EXCERPT) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

fn callback_form(
    repo: &RepoName,
    slug: &str,
    run: u64,
    step: usize,
    number: usize,
    refused: Option<&Refused<'_>>,
) -> Markup {
    let id = format!("cb-{run}-{step}");
    let empty = CallbackForm::default();
    let none = Errors::default();
    let (form, errors) = refused.map_or((&empty, &none), |r| (r.form, r.errors));
    let field = |name: &str, label: &str, value: &str| {
        let input_id = format!("{id}-{name}");
        let field_errors = errors.field(name);
        let error_id = format!("{input_id}-error");
        html! {
            div.field {
                label for=(input_id) { (label) }
                input type="text" id=(input_id) name=(name) value=(value)
                    aria-invalid=[(!field_errors.is_empty()).then_some("true")]
                    aria-describedby=[(!field_errors.is_empty()).then_some(error_id.as_str())];
                (messages(&error_id, &field_errors))
            }
        }
    };
    let state_errors = errors.field("state");
    html! {
        details.panel id=(format!("{id}-details")) open[refused.is_some()] {
            summary { "Send callback" }
            form method="post" action=(history_path(repo, slug)) {
                input type="hidden" name="run" value=(run);
                input type="hidden" name="step" value=(step);
                input type="hidden" name="page" value=(number);
                (messages(&format!("{id}-error"), &errors.others(&["state", "description", "context", "target_url"])))
                div.field {
                    label for=(format!("{id}-state")) { "State" }
                    select id=(format!("{id}-state")) name="state"
                        aria-invalid=[(!state_errors.is_empty()).then_some("true")] {
                        @for state in ["success", "failure", "error"] {
                            option value=(state)
                                selected[form.state == state || (form.state.is_empty() && state == "success")] {
                                (state)
                            }
                        }
                    }
                    (messages(&format!("{id}-state-error"), &state_errors))
                }
                (field("description", "Description", &form.description))
                (field("context", "Context", &form.context))
                (field("target_url", "Target URL", &form.target_url))
                div.actions { button.primary type="submit" { "Send callback" } }
            }
        }
    }
}
