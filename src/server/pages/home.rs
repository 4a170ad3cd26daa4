//! `GET /`: what opening hubmock in a browser shows first.

use maud::{html, Markup};

use super::form::{Errors, RepositoryForm};
use super::{layout, messages, settings_path, text_field};
use crate::model::repository::Repository;

/// The home page: the version, every repository with a link to its webhooks, the API's
/// documents, and a form to create a repository (`form` as typed, `errors` beside it).
pub(crate) fn page(
    repositories: &[Repository],
    form: &RepositoryForm,
    errors: &Errors,
    nonce: &str,
) -> Markup {
    let main = html! {
        main {
            h1 { "hubmock " (env!("CARGO_PKG_VERSION")) }
            p.muted {
                "A Docker Hub emulator for integration tests. These pages drive the same store \
                 as the control API; they are not part of Docker Hub's API."
            }
            div.columns {
                section aria-labelledby="repositories" {
                    h2 #repositories { "Repositories" }
                    @if repositories.is_empty() {
                        p.muted { "None yet: create one here, or push to one through the control API." }
                    } @else {
                        ul {
                            @for repository in repositories {
                                li {
                                    a href=(settings_path(&repository.repo_name())) {
                                        (repository.repo_name())
                                    }
                                    @if !repository.description.is_empty() {
                                        " — " span.muted { (repository.description) }
                                    }
                                }
                            }
                        }
                    }
                    h2 #documents { "For programs" }
                    ul {
                        li { a href="/_hubmock/openapi.json" { "The control API's OpenAPI document" } }
                        li { a href="/_hubmock/deliveries" { "The deliveries log" } " (JSON)" }
                        li { a href="/_hubmock/runs" { "Every run" } " (JSON)" }
                    }
                }
                section.panel aria-labelledby="create" {
                    h2 #create { "Create a repository" }
                    form method="post" action="/" {
                        @let others = errors.others(&["namespace", "name", "description"]);
                        @if !others.is_empty() {
                            (messages("create-error", &others))
                        }
                        (text_field("namespace", "namespace", "Namespace", &form.namespace,
                            &errors.field("namespace"), Some("2 to 30 characters of a-z, 0-9, _ and -")))
                        (text_field("name", "name", "Name", &form.name, &errors.field("name"), None))
                        (text_field("description", "description", "Description (optional)",
                            &form.description, &errors.field("description"), None))
                        div.actions { button.primary type="submit" { "Create repository" } }
                    }
                }
            }
        }
    };
    layout("Home", &[], nonce, main)
}
