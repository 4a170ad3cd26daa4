//! Lists as the Hub API answers them: Django REST framework's page `{count, next, previous,
//! results}`, chosen by `page` and `page_size`, with absolute `next` and `previous` links; and
//! the `ordering` and `name` a list may be asked for.

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Error;
use crate::server::http::Req;
use crate::store::Store;

/// A list's `page_size` when none is asked for, and the largest it gives (a larger one is
/// cut down to it, as Django REST framework's `max_page_size` does).
#[derive(Clone, Copy)]
pub(super) struct PageSizes {
    pub(super) default: u64,
    pub(super) max: u64,
}

/// Webhook pipelines and their history (hubmock's own choice, from before the reads).
pub(super) const PIPELINE_PAGES: PageSizes = PageSizes {
    default: 100,
    max: 1000,
};

/// Repositories and tags: Docker Hub's documented default of 10 and maximum of 100.
pub(super) const HUB_PAGES: PageSizes = PageSizes {
    default: 10,
    max: 100,
};

/// One page of `items`, each shown as `show` makes it (only the items on the page are). A
/// `page` or `page_size` that is not a positive integer is a `400` naming it; a page past the
/// last is Django REST framework's `404 "Invalid page."`.
pub(super) fn paginate<T, V: Serialize>(
    store: &Store,
    req: &Req,
    items: Vec<T>,
    sizes: PageSizes,
    show: impl Fn(T) -> V,
) -> Result<Value, Error> {
    let page = positive(req, "page")?.unwrap_or(1);
    let page_size = positive(req, "page_size")?
        .unwrap_or(sizes.default)
        .min(sizes.max);
    let count = items.len() as u64;
    let pages = count.div_ceil(page_size).max(1);
    if page > pages {
        return Err(Error::not_found("Invalid page."));
    }
    let link = |p: u64| json!(link(store, req, p, page_size));
    let start = usize::try_from((page - 1) * page_size).unwrap_or(usize::MAX);
    let results: Vec<V> = items
        .into_iter()
        .skip(start)
        .take(usize::try_from(page_size).unwrap_or(usize::MAX))
        .map(show)
        .collect();
    Ok(json!({
        "count": count,
        "next": if page < pages { link(page + 1) } else { Value::Null },
        "previous": if page > 1 { link(page - 1) } else { Value::Null },
        "results": results,
    }))
}

/// A query parameter that must be a whole number from 1 up.
fn positive(req: &Req, name: &str) -> Result<Option<u64>, Error> {
    match req.param(name) {
        None => Ok(None),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(Error::field(
                name,
                format!("'{text}' is not a valid {name}: give a whole number from 1 up."),
            )),
        },
    }
}

/// The absolute URL of page `page`: this request's path under the public URL, with its other
/// query parameters (`ordering`, `name`, ...) kept in their order.
fn link(store: &Store, req: &Req, page: u64, page_size: u64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in &req.query {
        if key != "page" && key != "page_size" {
            query.append_pair(key, value);
        }
    }
    query.append_pair("page", &page.to_string());
    query.append_pair("page_size", &page_size.to_string());
    format!("{}{}?{}", store.public_url(), req.path, query.finish())
}

/// How a list is sorted, from its `ordering` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ordering {
    /// `last_updated`: the most recently pushed first, as Docker Hub's tag and repository
    /// lists answer it *(observed)*.
    NewestFirst,
    /// `-last_updated`: the least recently pushed first.
    OldestFirst,
    /// `name`: by name, A to Z.
    Name,
    /// `-name`: by name, Z to A.
    NameDescending,
    /// `pull_count`: the least pulled first.
    Pulls,
    /// `-pull_count`: the most pulled first.
    PullsDescending,
}

impl Ordering {
    /// The `ordering` parameter read among the `allowed` values; `None` when absent. Any other
    /// value is a `400` listing them.
    pub(super) fn from_query(req: &Req, allowed: &[Ordering]) -> Result<Option<Ordering>, Error> {
        let Some(text) = req.param("ordering") else {
            return Ok(None);
        };
        allowed
            .iter()
            .copied()
            .find(|o| o.name() == text)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|o| o.name()).collect();
                Error::field(
                    "ordering",
                    format!(
                        "Invalid ordering value '{text}'. Must be one of: {}.",
                        names.join(", ")
                    ),
                )
            })
    }

    fn name(self) -> &'static str {
        match self {
            Ordering::NewestFirst => "last_updated",
            Ordering::OldestFirst => "-last_updated",
            Ordering::Name => "name",
            Ordering::NameDescending => "-name",
            Ordering::Pulls => "pull_count",
            Ordering::PullsDescending => "-pull_count",
        }
    }
}

/// Whether `name` passes the list's `name` filter: it contains the text, as Docker Hub's
/// partial match does.
pub(super) fn name_matches(req: &Req, name: &str) -> bool {
    req.param("name").is_none_or(|wanted| name.contains(wanted))
}
