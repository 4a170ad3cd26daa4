//! The settings pages as HTML: what a person debugging a receiver opens in a browser. Views
//! only: each takes what the store answered and gives maud `Markup` (compile-time templates
//! that escape every value they interpolate, so no string of the state can become markup);
//! the routes that read forms and call the store are in `routes/pages.rs`.
//!
//! - `home.rs`: `GET /`; `settings.rs`: a repository's webhooks, tags' place, the create and
//!   "push now" forms, delete's confirmation; `history.rs`: a pipeline's runs;
//! - `form.rs`: posted forms read into the JSON the APIs take, and their errors by field;
//! - `pretty.rs`: a sent payload re-indented as it was sent;
//! - `style.css`, `script.js`: inlined into every page (no external asset).

pub(crate) mod form;
pub(crate) mod history;
pub(crate) mod home;
mod pretty;
pub(crate) mod settings;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::model::repository::RepoName;
use crate::model::time::Timestamp;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");

/// One link of the breadcrumb trail: its text and where it goes.
pub(crate) type Crumb = (String, String);

/// A whole page: `title` is the document's title and its one `h1`; `nonce` lets the inline
/// script run under the page's Content-Security-Policy.
pub(crate) fn layout(title: &str, crumbs: &[Crumb], nonce: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · hubmock" }
                style nonce=(nonce) { (PreEscaped(STYLE)) }
            }
            body {
                header.top {
                    a.brand href="/" { "hubmock" }
                    @if !crumbs.is_empty() {
                        nav.crumbs aria-label="Breadcrumb" {
                            ol {
                                @for (text, href) in crumbs {
                                    li { a href=(href) { (text) } }
                                }
                            }
                        }
                    }
                }
                (main)
                script nonce=(nonce) { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// Where a repository's pages are: `/r/{ns}/{name}/~/settings/webhooks/`, or
/// `/_/{name}/~/settings/webhooks/` for `library`, as Docker Hub writes them.
pub(crate) fn settings_path(repo: &RepoName) -> String {
    if repo.is_library() {
        format!("/_/{}/~/settings/webhooks/", repo.name)
    } else {
        format!("/r/{}/{}/~/settings/webhooks/", repo.namespace, repo.name)
    }
}

/// A pipeline's History page.
pub(crate) fn history_path(repo: &RepoName, slug: &str) -> String {
    format!("{}{slug}/history/", settings_path(repo))
}

/// A pipeline's delete confirmation.
pub(crate) fn delete_path(repo: &RepoName, slug: &str) -> String {
    format!("{}{slug}/delete/", settings_path(repo))
}

/// The crumbs down to a repository's settings page.
pub(crate) fn repo_crumbs(repo: &RepoName) -> Vec<Crumb> {
    vec![(format!("{repo} webhooks"), settings_path(repo))]
}

/// A status as a badge whose class is its wire name (`awaiting_callback`, `success`, ...).
pub(crate) fn status(status: &impl serde::Serialize) -> Markup {
    let name = crate::logging::wire_name(status);
    html! { span class=(format!("status {name}")) { (name.replace('_', " ")) } }
}

/// A time as a `<time>` element, to the second, in UTC.
pub(crate) fn time(at: Timestamp) -> Markup {
    let full = at.to_string();
    // `2026-11-22T22:48:36.226630Z` shown as `2026-11-22 22:48:36 UTC`.
    let shown = match full.split_once('.') {
        Some((seconds, _)) => format!("{} UTC", seconds.replacen('T', " ", 1)),
        None => full.clone(),
    };
    html! { time datetime=(full) { (shown) } }
}

/// The messages of one field, each a paragraph tied to the field by `id`.
pub(crate) fn messages(id: &str, messages: &[String]) -> Markup {
    html! {
        @if !messages.is_empty() {
            div id=(id) {
                @for message in messages { p.error { (message) } }
            }
        }
    }
}

/// A text field with its label and messages; the input says it is invalid when it has any.
pub(crate) fn text_field(
    id: &str,
    name: &str,
    label: &str,
    value: &str,
    errors: &[String],
    hint: Option<&str>,
) -> Markup {
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            input type="text" id=(id) name=(name) value=(value)
                aria-invalid=[(!errors.is_empty()).then_some("true")]
                aria-describedby=[(!errors.is_empty()).then_some(error_id.as_str())];
            @if let Some(hint) = hint { div.hint { (hint) } }
            (messages(&error_id, errors))
        }
    }
}
