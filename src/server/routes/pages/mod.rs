//! The settings pages' surface: `GET /`, a repository's webhooks page
//! `/r/{ns}/{repo}/~/settings/webhooks/` (`/_/{repo}/...` for `library`), a pipeline's
//! delete confirmation `.../{slug}/delete/` and its History `.../{slug}/history/`. Forms post
//! back to the page that shows them; what they post becomes the JSON body an API takes and
//! goes through that API's validation and the same store calls (`Store::create_pipeline`,
//! `Store::push` through the control API's own handler, `Store::callback`). A success answers
//! `303 See Other` to a page (POST-redirect-GET); a refusal shows the form again, as typed,
//! with the API's messages beside the fields, and changes nothing.
//!
//! - `guard.rs`: the control token for browsers (cookie, `?token=`) and the same-origin
//!   check on forms;
//! - `webhooks.rs`: home, the settings page, its forms, delete;
//! - `history.rs`: History, its long-poll and "send callback".
//!
//! Every answer carries a Content-Security-Policy that lets only the page's own inline style
//! and script run.

mod guard;
mod history;
mod webhooks;

use http::{header, HeaderValue, Method, Response, StatusCode};
use maud::{html, Markup};

pub(super) use guard::token_refusal;

use crate::error::Error;
use crate::model::ids;
use crate::model::repository::{RepoName, LIBRARY};
use crate::server::http::{empty, full, json_error, HttpError, HttpResponse, Req, TokenRefusal};
use crate::server::pages;
use crate::store::Store;

/// A page, with the parts of its path.
pub(super) enum Page<'a> {
    Home,
    Settings(&'a str, &'a str),
    Delete(&'a str, &'a str, &'a str),
    History(&'a str, &'a str, &'a str),
}

/// The page a path names, with the methods it takes.
pub(super) fn route<'a>(segments: &[&'a str]) -> Option<(&'static str, Page<'a>)> {
    const METHODS: &str = "GET, HEAD, POST";
    let (ns, name, rest) = match segments {
        [""] => return Some((METHODS, Page::Home)),
        ["r", ns, name, "~", "settings", "webhooks", rest @ ..] => (*ns, *name, rest),
        ["_", name, "~", "settings", "webhooks", rest @ ..] => (LIBRARY, *name, rest),
        _ => return None,
    };
    let page = match rest {
        [] => Page::Settings(ns, name),
        [slug, "delete"] => Page::Delete(ns, name, slug),
        [slug, "history"] => Page::History(ns, name, slug),
        _ => return None,
    };
    Some((METHODS, page))
}

/// Answers a page.
pub(super) async fn answer(
    store: &Store,
    req: &Req,
    page: Page<'_>,
) -> Result<HttpResponse, HttpError> {
    if let Some(redirect) = guard::token_redirect(store, req) {
        return Ok(redirect);
    }
    if req.method == Method::POST {
        guard::check_same_origin(req)?;
    }
    let nonce = ids::random_hex(16);
    match page {
        Page::Home => webhooks::home(store, req, &nonce),
        Page::Settings(ns, name) => webhooks::settings(store, req, &repo(ns, name)?, &nonce),
        Page::Delete(ns, name, slug) => {
            webhooks::delete(store, req, &repo(ns, name)?, slug, &nonce)
        }
        Page::History(ns, name, slug) => {
            history::answer(store, req, &repo(ns, name)?, slug, &nonce).await
        }
    }
}

/// The one place the pages' refusals become answers: an HTML page with the status (and the
/// `Allow`, `Retry-After`, ... headers) the JSON surfaces would answer, and a link home.
pub(super) fn render(error: &HttpError) -> HttpResponse {
    let json = json_error(error);
    let status = json.status();
    let nonce = ids::random_hex(16);
    let (title, text) = match error {
        HttpError::ControlToken(refusal) => (
            "The control token is needed",
            match refusal {
                TokenRefusal::Wrong => "That is not this hubmock's control token.",
                _ => {
                    "This hubmock was started with a control token (--control-token or \
                      HUBMOCK_CONTROL_TOKEN); these pages need it too."
                }
            }
            .to_owned(),
        ),
        HttpError::Domain(Error::NotFound(_)) | HttpError::NoRoute { .. } => {
            ("Not found", error.to_string())
        }
        HttpError::Domain(Error::Forbidden(_)) => ("Refused", error.to_string()),
        _ => ("The request was refused", error.to_string()),
    };
    let main = html! {
        main {
            h1 { (title) }
            p { (text) }
            @if let HttpError::ControlToken(_) = error {
                // A GET form: the token arrives as `?token=`, is kept in a cookie and taken
                // out of the address at once.
                form method="get" {
                    div.field {
                        label for="token" { "Control token" }
                        input type="password" id="token" name="token" autocomplete="current-password";
                    }
                    div.actions { button.primary type="submit" { "Open" } }
                }
            }
            p { a href="/" { "Go to hubmock's home page" } }
        }
    };
    let mut response = html_response(status, pages::layout(title, &[], &nonce, main), &nonce);
    for name in [header::ALLOW, header::RETRY_AFTER, header::CONNECTION] {
        if let Some(value) = json.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// A page as the answer: HTML, never cached, only its own inline style and script allowed
/// to run (`nonce`), and fetches only to this origin (History's long-poll).
pub(super) fn html_response(status: StatusCode, markup: Markup, nonce: &str) -> HttpResponse {
    let mut response = Response::new(full(markup.into_string()));
    *response.status_mut() = status;
    let policy = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// `303 See Other` to `location` (a path of this server).
pub(super) fn see_other(location: &str) -> HttpResponse {
    let mut response = empty(StatusCode::SEE_OTHER);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A repository named by a page's path; a name that cannot be one is simply not found.
fn repo(namespace: &str, name: &str) -> Result<RepoName, Error> {
    RepoName::new(namespace, name).map_err(|_| {
        Error::not_found(format!(
            "There is no repository {namespace}/{name}: that is not a repository name."
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<&str> {
        p.split('/').collect()
    }

    #[test]
    fn pages_are_routed_for_users_and_library() {
        assert!(matches!(route(&[""]), Some((_, Page::Home))));
        let segments = path("r/acme/app/~/settings/webhooks");
        assert!(matches!(
            route(&segments),
            Some((_, Page::Settings("acme", "app")))
        ));
        let segments = path("_/app/~/settings/webhooks/ci/history");
        assert!(matches!(
            route(&segments),
            Some((_, Page::History(LIBRARY, "app", "ci")))
        ));
        assert!(route(&path("r/acme/app/~/settings/webhooks/ci/other")).is_none());
    }
}
