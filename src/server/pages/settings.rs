//! A repository's webhooks page, `/r/{ns}/{repo}/~/settings/webhooks/`: its pipelines in
//! creation order and its registry tags, the form to create a pipeline, "push now", and the
//! delete confirmation.

use std::collections::HashMap;

use maud::{html, Markup};

use super::form::{Errors, PipelineForm, PushForm};
use super::{
    delete_path, history_path, layout, messages, repo_crumbs, settings_path, status, text_field,
    time,
};
use crate::model::format::PayloadFormat;
use crate::model::hook_url::redact;
use crate::model::pipeline::Pipeline;
use crate::model::repository::Repository;
use crate::model::run::Run;
use crate::model::tag::Tag;

/// Everything the settings page shows.
pub(crate) struct Settings<'a> {
    /// The repository.
    pub(crate) repository: &'a Repository,
    /// Its pipelines, in creation order.
    pub(crate) pipelines: &'a [Pipeline],
    /// The latest run of each pipeline that has one, by slug.
    pub(crate) latest: &'a HashMap<String, std::sync::Arc<Run>>,
    /// Its tags, in the order first pushed.
    pub(crate) tags: &'a [Tag],
    /// The server's payload format, for pipelines that name none.
    pub(crate) default_format: PayloadFormat,
    /// The create form as typed.
    pub(crate) pipeline_form: &'a PipelineForm,
    /// What the API said about it.
    pub(crate) pipeline_errors: &'a Errors,
    /// The messages of each URL field of the form, in its order.
    pub(crate) url_errors: &'a [Vec<String>],
    /// The push form as typed.
    pub(crate) push_form: &'a PushForm,
    /// What the control API said about it.
    pub(crate) push_errors: &'a Errors,
}

/// The settings page.
pub(crate) fn page(view: &Settings<'_>, nonce: &str) -> Markup {
    let repo = view.repository.repo_name();
    let title = format!("{repo} webhooks");
    let main = html! {
        main {
            h1 { "Webhooks of " (repo) }
            p.muted {
                "A webhook pipeline calls its URLs one after the other on every push: the next \
                 only after the previous one's callback said success."
            }
            div.columns {
                section aria-labelledby="pipelines" {
                    h2 #pipelines { "Webhook pipelines" }
                    @if view.pipelines.is_empty() {
                        p.muted { "None yet: create one with the form." }
                    }
                    @for pipeline in view.pipelines {
                        (pipeline_card(view, pipeline))
                    }
                    section aria-labelledby="tags" { (tags(view.tags)) }
                }
                div {
                    (create_form(view))
                    (push_form(view))
                }
            }
        }
    };
    layout(&title, &repo_crumbs(&repo), nonce, main)
}

/// How many tags the page lists: the Hub's Tags tab pages them too, and a repository pushed
/// to a thousand times would otherwise make the page slow to send and to read.
const TAGS_SHOWN: usize = 100;

/// The repository's tags as Docker Hub's Tags tab shows them, the last pushed first (at most
/// [`TAGS_SHOWN`]; the Hub API's tag list has them all).
fn tags(tags: &[Tag]) -> Markup {
    let total = tags.len();
    let mut tags: Vec<&Tag> = tags.iter().collect();
    tags.sort_by_key(|tag| std::cmp::Reverse(tag.last.pushed_at));
    tags.truncate(TAGS_SHOWN);
    html! {
        h2 #tags { "Tags" }
        @if total > TAGS_SHOWN {
            p.muted { "The " (TAGS_SHOWN) " last pushed of " (total) " tags; the Hub API's tag list (GET /v2/repositories/{namespace}/{repo}/tags/) has them all." }
        }
        @if tags.is_empty() {
            p.muted { "None yet: a push records its tag here (through the registry, or \"Push now\")." }
        } @else {
            div.scroll { table.tags aria-labelledby="tags" {
                thead {
                    tr {
                        th scope="col" { "Tag" }
                        th scope="col" { "Digest" }
                        th scope="col" { "Size" }
                        th scope="col" { "Platforms" }
                        th scope="col" { "Last pushed" }
                        th scope="col" { "Pusher" }
                    }
                }
                tbody {
                    @for tag in tags {
                        tr id=(format!("tag-{}", tag.name())) {
                            td { code { (tag.name()) } }
                            // Shortened as the Hub shows it; the whole digest on hover.
                            td { code title=(tag.last.digest) { (short_digest(&tag.last.digest)) } }
                            td { (size(tag.last.full_size)) }
                            td.platforms {
                                @for (i, image) in tag.last.images.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (image.os) "/" (image.architecture)
                                    @if let Some(variant) = &image.variant { "/" (variant) }
                                }
                            }
                            td { (time(tag.last.pushed_at)) }
                            td { (tag.last.pusher) }
                        }
                    }
                }
            } }
        }
    }
}

/// `sha256:` and the first 10 hex digits of a digest.
fn short_digest(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("", digest));
    let short: String = hex.chars().take(10).collect();
    match (algorithm, short.len() < hex.len()) {
        ("", _) => short,
        (_, true) => format!("{algorithm}:{short}…"),
        (_, false) => digest.to_owned(),
    }
}

/// A size in bytes as Docker Hub writes it: decimal units, one decimal past kB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn pipeline_card(view: &Settings<'_>, pipeline: &Pipeline) -> Markup {
    let repo = view.repository.repo_name();
    let format = pipeline.payload_format;
    html! {
        article.panel id=(format!("pipeline-{}", pipeline.slug)) aria-labelledby=(format!("name-{}", pipeline.slug)) {
            h3 id=(format!("name-{}", pipeline.slug)) { (pipeline.name) }
            ol.chain aria-label="Webhook URLs in chain order" {
                @for webhook in &pipeline.webhooks {
                    li { (webhook.name) ": " code { (redact(&webhook.hook_url)) } }
                }
            }
            dl.facts {
                dt { "Final callback" }
                dd { @if pipeline.expect_final_callback { "expected" } @else { "not expected" } }
                dt { "Payload format" }
                dd {
                    @match format {
                        Some(format) => { (format) }
                        None => { (view.default_format) " (the server's default)" }
                    }
                }
                dt { "Quirks" }
                dd {
                    @match &pipeline.quirks {
                        Some(quirks) => code { (quirks) },
                        None => { "the server's" }
                    }
                }
                dt { "Created" }
                dd { (time(pipeline.created)) " by " (pipeline.creator) }
                dt { "Latest run" }
                dd {
                    @match view.latest.get(&pipeline.slug) {
                        Some(run) => {
                            a href=(format!("{}#run-{}", history_path(&repo, &pipeline.slug), run.id())) {
                                "#" (run.id())
                            }
                            " " (status(&run.status())) " " (run.push().tag)
                        }
                        None => span.muted { "none yet" },
                    }
                }
            }
            div.actions {
                a.button href=(history_path(&repo, &pipeline.slug)) { "History" }
                a.button.danger href=(delete_path(&repo, &pipeline.slug)) { "Delete…" }
            }
        }
    }
}

fn create_form(view: &Settings<'_>) -> Markup {
    let form = view.pipeline_form;
    let errors = view.pipeline_errors;
    let others = errors.others(&[
        "name",
        "webhooks",
        "expect_final_callback",
        "payload_format",
        "quirks",
    ]);
    let format_errors = errors.field("payload_format");
    let expect_errors = errors.field("expect_final_callback");
    html! {
        section.panel aria-labelledby="create" {
            h2 #create { "New webhook pipeline" }
            // The API validates, not the browser: its messages show beside the fields.
            form method="post" action=(settings_path(&view.repository.repo_name())) novalidate {
                input type="hidden" name="form" value="pipeline";
                (messages("create-error", &others))
                (text_field("name", "name", "Pipeline name", form.name.as_deref().unwrap_or_default(),
                    &errors.field("name"), None))
                fieldset {
                    legend { "Webhook URLs, called in this order" }
                    @for (i, url) in form.urls.iter().enumerate() {
                        @let id = format!("hook_url-{i}");
                        @let field_errors = view.url_errors.get(i).cloned().unwrap_or_default();
                        @let error_id = format!("{id}-error");
                        div.field.url-row {
                            label for=(id) { "Webhook URL " (i + 1) }
                            input type="url" id=(id) name="hook_url" value=(url)
                                placeholder="https://receiver.example/hook"
                                aria-invalid=[(!field_errors.is_empty()).then_some("true")]
                                aria-describedby=[(!field_errors.is_empty()).then_some(error_id.as_str())];
                            (messages(&error_id, &field_errors))
                        }
                    }
                    button type="submit" name="action" value="add-url" formnovalidate data-add-url {
                        "Add webhook"
                    }
                }
                div.field {
                    input type="checkbox" id="expect_final_callback" name="expect_final_callback"
                        value="on" checked[form.checked()]
                        aria-invalid=[(!expect_errors.is_empty()).then_some("true")]
                        aria-describedby="expect_final_callback-hint expect_final_callback-error";
                    " "
                    label.inline for="expect_final_callback" { "Wait for the last webhook's callback" }
                    div.hint id="expect_final_callback-hint" {
                        "Unticked, a run ends when the last delivery is answered 2xx."
                    }
                    (messages("expect_final_callback-error", &expect_errors))
                }
                div.field {
                    label for="payload_format" { "Payload format" }
                    select id="payload_format" name="payload_format"
                        aria-invalid=[(!format_errors.is_empty()).then_some("true")]
                        aria-describedby="payload_format-error" {
                        option value="" selected[form.payload_format.is_empty()] {
                            "The server's default (" (view.default_format) ")"
                        }
                        @for format in PayloadFormat::ALL {
                            option value=(format) selected[form.payload_format == format.as_str()] {
                                (format)
                            }
                        }
                    }
                    (messages("payload_format-error", &format_errors))
                }
                (text_field("quirks", "quirks", "Docker Hub's quirks", &form.quirks,
                    &errors.field("quirks"),
                    Some("Empty: the server's. A profile (docs-2016, hub-2020, hub-2026) and/or \
                          quirks (duplicate-per-manifest, images-null-extra-posts, no-tag, \
                          callback-gone), comma-separated; none for none.")))
                div.actions {
                    button.primary type="submit" name="action" value="create" { "Create pipeline" }
                }
            }
        }
    }
}

fn push_form(view: &Settings<'_>) -> Markup {
    let form = view.push_form;
    let errors = view.push_errors;
    let others = errors.others(&["tag", "pusher"]);
    html! {
        section.panel aria-labelledby="push" {
            h2 #push { "Push now" }
            p.muted { "Starts one run per pipeline, as a push to the registry would." }
            form method="post" action=(settings_path(&view.repository.repo_name())) {
                input type="hidden" name="form" value="push";
                (messages("push-error", &others))
                (text_field("tag", "tag", "Tag", &form.tag, &errors.field("tag"),
                    Some("latest when empty")))
                (text_field("pusher", "pusher", "Pusher", &form.pusher, &errors.field("pusher"),
                    Some("the repository's owner when empty")))
                div.actions { button.primary type="submit" { "Push now" } }
            }
        }
    }
}

/// The confirmation asked before a pipeline is deleted.
pub(crate) fn confirm_delete(
    repository: &Repository,
    pipeline: &Pipeline,
    pending: usize,
    nonce: &str,
) -> Markup {
    let repo = repository.repo_name();
    let main = html! {
        main {
            h1 { "Delete " (pipeline.name) "?" }
            p {
                "The pipeline " strong { (pipeline.name) } " of " (repo) " and its "
                (pipeline.webhooks.len()) " webhook URL(s) go. "
                @if pending > 0 {
                    "Its " (pending) " pending run(s) are cancelled. "
                }
                "Its History stays readable through the control API."
            }
            form method="post" action=(delete_path(&repo, &pipeline.slug)) {
                div.actions {
                    button.danger type="submit" { "Delete pipeline" }
                    a.button href=(settings_path(&repo)) { "Cancel" }
                }
            }
        }
    };
    layout(
        &format!("Delete {}", pipeline.name),
        &repo_crumbs(&repo),
        nonce,
        main,
    )
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_000), "1.0 kB");
        assert_eq!(size(28_345_678), "28.3 MB");
        assert_eq!(size(u64::MAX), "18446744.1 TB");
    }
}
