//! The settings pages over plain HTTP: every page, every refusal (unknown repository, forged
//! and cross-site posts, bad pages, the control token), and that every stored string renders
//! as text. tests/browser.rs drives the same pages in a real browser.
//!
//! - `settings.rs`: home, a repository's webhooks page, its forms, tags, delete;
//! - `history.rs`: History, its pages, its long-poll, "send callback";
//! - `safety.rs`: escaping, links, the CSP, cross-site posts, the control token.

mod history;
mod safety;
mod settings;

use http::Method;
use hubmock::{Config, PlatformImage, RepoName, TagRecord};

use crate::util::{answering, receiver, Resp, TestHub, WAIT};

const SETTINGS: &str = "/r/acme/app/~/settings/webhooks/";

/// Posts a form (`application/x-www-form-urlencoded`) as a browser on the same origin does.
async fn post_form(t: &TestHub, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body = form_body(fields);
    t.http
        .send(
            Method::POST,
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
}

fn form_body(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The body of an HTML answer with `status`; panics showing the exchange otherwise.
#[track_caller]
fn page(resp: &Resp, status: u16) -> String {
    assert_eq!(resp.status.as_u16(), status, "unexpected status: {resp:?}");
    assert_eq!(
        resp.headers["content-type"], "text/html; charset=utf-8",
        "{resp:?}"
    );
    String::from_utf8(resp.body.to_vec()).expect("pages are UTF-8")
}

/// Asserts a `303 See Other` to `location`.
#[track_caller]
fn redirects(resp: &Resp, location: &str) {
    assert_eq!(resp.status.as_u16(), 303, "{resp:?}");
    assert_eq!(resp.headers["location"], location, "{resp:?}");
}

/// An emulator with `acme/app`.
async fn with_repo() -> TestHub {
    let t = TestHub::start().await;
    t.repository("acme", "app").await;
    t
}

/// Creates a pipeline of these URLs through the form; answers its slug.
async fn create(t: &TestHub, name: &str, urls: &[&str]) -> String {
    let mut fields = vec![
        ("form", "pipeline"),
        ("name", name),
        ("expect_final_callback", "on"),
    ];
    fields.extend(urls.iter().map(|url| ("hook_url", *url)));
    let resp = post_form(t, SETTINGS, &fields).await;
    redirects(&resp, "/r/acme/app/~/settings/webhooks/#pipelines");
    hubmock::model::pipeline::slugify(name)
}
