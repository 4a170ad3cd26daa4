//! What the Hub API lets anyone read: repositories, a namespace's repositories, tags, and user
//! profiles. A public repository and its tags need no login, as on Docker Hub; a private one
//! is seen by its owner only, and is `404` to everyone else, anonymous or not.

use super::page::{self, name_matches, Ordering, HUB_PAGES};
use super::{viewer, Viewer};
use crate::error::{Error, Missing};
use crate::model::repository::{RepoName, Repository};
use crate::model::tag::{Activity, Tag};
use crate::server::http::{ok, HttpResponse, Req};
use crate::server::wire::{tag_view, user_view};
use crate::store::Store;

/// The orderings a tag list takes.
const TAG_ORDERINGS: [Ordering; 4] = [
    Ordering::NewestFirst,
    Ordering::OldestFirst,
    Ordering::Name,
    Ordering::NameDescending,
];

/// The orderings a repository list takes.
const REPOSITORY_ORDERINGS: [Ordering; 6] = [
    Ordering::NewestFirst,
    Ordering::OldestFirst,
    Ordering::Name,
    Ordering::NameDescending,
    Ordering::Pulls,
    Ordering::PullsDescending,
];

/// A repository the request may read, with what its tags say about it.
fn readable(
    store: &Store,
    req: &Req,
    name: &RepoName,
) -> Result<(Viewer, Repository, Activity), Error> {
    let viewer = viewer(store, req)?;
    let (repository, activity) = store.repository_activity(name)?;
    if !viewer.sees(&repository) {
        return Err(hidden(name));
    }
    Ok((viewer, repository, activity))
}

/// The `404` for a private repository asked for by someone else: as Docker Hub, hubmock does
/// not admit it exists, but says what would show it.
fn hidden(name: &RepoName) -> Error {
    Error::not_found(format!(
        "Not found: {name} does not exist or is private; a private repository is shown only \
         with its owner's token."
    ))
}

/// `GET /v2/repositories/{ns}/{repo}/`, `GET /v2/namespaces/{ns}/repositories/{repo}`
pub fn repository(store: &Store, req: &Req, name: &RepoName) -> Result<HttpResponse, Error> {
    let (viewer, repository, activity) = readable(store, req, name)?;
    let owner = viewer.owns(&name.namespace);
    Ok(ok(&repository.api_view(&activity, owner)))
}

/// `GET /v2/repositories/{ns}/`, `GET /v2/namespaces/{ns}/repositories`,
/// `GET /v2/users/{ns}/repositories/`: the namespace's repositories this request may see
/// (`name` filter, `ordering`; by name when none is asked for).
pub fn namespace(store: &Store, req: &Req, namespace: &str) -> Result<HttpResponse, Error> {
    RepoName::check_namespace(namespace)?;
    let viewer = viewer(store, req)?;
    let ordering = Ordering::from_query(req, &REPOSITORY_ORDERINGS)?;
    if !store.namespace_exists(namespace) {
        return Err(Error::not_found(format!(
            "Namespace {namespace} does not exist: no user has it and no repository is in it. \
             Create a repository in it with POST /_hubmock/repositories."
        )));
    }
    let owner = viewer.owns(namespace);
    let mut repositories: Vec<(Repository, Activity)> = store
        .namespace_repositories(namespace)
        .into_iter()
        .filter(|(repository, _)| viewer.sees(repository) && name_matches(req, &repository.name))
        .collect();
    repositories.sort_by(|(a, a_activity), (b, b_activity)| {
        let by_name = a.name.cmp(&b.name);
        match ordering.unwrap_or(Ordering::Name) {
            Ordering::Name => by_name,
            Ordering::NameDescending => by_name.reverse(),
            // Never pushed sorts as the oldest.
            Ordering::NewestFirst => b_activity.last_updated.cmp(&a_activity.last_updated),
            Ordering::OldestFirst => a_activity.last_updated.cmp(&b_activity.last_updated),
            Ordering::Pulls => a.pull_count.cmp(&b.pull_count),
            Ordering::PullsDescending => b.pull_count.cmp(&a.pull_count),
        }
        .then(by_name)
    });
    let page = page::paginate(
        store,
        req,
        repositories,
        HUB_PAGES,
        |(repository, activity)| repository.list_entry(&activity, owner),
    )?;
    Ok(ok(&page))
}

/// `GET /v2/repositories/{ns}/{repo}/tags/`, `GET /v2/namespaces/{ns}/repositories/{repo}/tags`
/// (`name` filter, `ordering`; the most recently pushed first when none is asked for).
pub fn tags(store: &Store, req: &Req, name: &RepoName) -> Result<HttpResponse, Error> {
    let ordering = Ordering::from_query(req, &TAG_ORDERINGS)?;
    readable(store, req, name)?;
    let mut tags: Vec<Tag> = store
        .tags(name)?
        .into_iter()
        .filter(|tag| name_matches(req, tag.name()))
        .collect();
    tags.sort_by(|a, b| {
        let by_name = a.name().cmp(b.name());
        let (a_time, b_time) = (a.last.pushed_at, b.last.pushed_at);
        match ordering.unwrap_or(Ordering::NewestFirst) {
            Ordering::OldestFirst => a_time.cmp(&b_time).then(by_name),
            Ordering::Name => by_name,
            Ordering::NameDescending => by_name.reverse(),
            _ => b_time.cmp(&a_time).then(by_name),
        }
    });
    let page = page::paginate(store, req, tags, HUB_PAGES, |tag| tag_view(name, &tag))?;
    Ok(ok(&page))
}

/// `GET /v2/repositories/{ns}/{repo}/tags/{tag}/`,
/// `GET /v2/namespaces/{ns}/repositories/{repo}/tags/{tag}`
pub fn tag(store: &Store, req: &Req, name: &RepoName, tag: &str) -> Result<HttpResponse, Error> {
    readable(store, req, name)?;
    Ok(ok(&tag_view(name, &store.tag(name, tag)?)))
}

/// `GET /v2/user/`: the logged-in user's profile. With auth off and no token, the first
/// configured user's.
pub fn user(store: &Store, req: &Req) -> Result<HttpResponse, Error> {
    let viewer = viewer(store, req)?;
    let username = match viewer.user {
        Some(user) => user,
        None if viewer.open => store.first_user().to_owned(),
        None => return Err(super::credentials_not_provided()),
    };
    Ok(ok(&user_view(&username, store.started())))
}

/// `GET /v2/users/{name}/`: a user's public profile.
pub fn profile(store: &Store, username: &str) -> Result<HttpResponse, Error> {
    if !store.is_user(username) {
        return Err(Error::NotFound(Missing::Other(format!(
            "User {username} does not exist: hubmock's users are the ones given with --user."
        ))));
    }
    Ok(ok(&user_view(username, store.started())))
}
