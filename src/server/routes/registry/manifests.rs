//! Manifest endpoints (`GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`), the tag list,
//! the catalog and the referrers API; and the push event a manifest put by tag fires.

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::super::super::http::Req;
use super::auth::{self, Access, Caller};
use super::{answer, empty_answer, file_body, from_domain, json_answer, name};
use crate::model::tag::{TagImage, TagPush};
use crate::model::time::Timestamp;
use crate::registry::manifest::{Manifest, Platform, OCI_INDEX};
use crate::registry::{paginate, Algorithm, Digest, Page, Reference, RegistryError, RegistryName};
use crate::server::http::HttpResponse;
use crate::store::Store;

/// `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`
pub(super) async fn manifest(
    store: &Store,
    req: &Req,
    name_text: &str,
    reference: &str,
) -> Result<HttpResponse, RegistryError> {
    let name = name(name_text)?;
    let access = match req.method {
        Method::GET | Method::HEAD => Access::Pull,
        _ => Access::Push,
    };
    let pusher = auth::caller(store, req)?.may(store, &name, access)?;
    if req.method == Method::PUT {
        return put(store, req, &name, reference, pusher).await;
    }
    let reference = match Reference::parse(reference) {
        Ok(reference) => reference,
        // A malformed tag names no manifest.
        Err(RegistryError::TagInvalid(_)) => {
            return Err(RegistryError::ManifestUnknown(format!(
                "repository {name} has no manifest '{}' (nor could it: that is not a tag)",
                crate::registry::digest::shorten(reference)
            )))
        }
        Err(err) => return Err(err),
    };
    let registry = store.registry();
    if req.method == Method::DELETE {
        registry.delete_manifest(name.repo(), &reference)?;
        // The Hub API shows the registry's tags: it forgets the deleted ones too.
        store.forget_tags(name.repo(), |tag| match &reference {
            Reference::Tag(deleted) => tag.name() == deleted.as_str(),
            Reference::Digest(digest) => tag.last.digest == digest.to_string(),
        });
        return Ok(empty_answer(StatusCode::ACCEPTED, &[], 0));
    }
    let read = registry.open_manifest(name.repo(), &reference)?;
    let digest = read.digest.to_string();
    let etag = format!("\"{digest}\"");
    let headers = [
        ("content-type", read.media_type.as_str()),
        ("docker-content-digest", digest.as_str()),
        ("etag", etag.as_str()),
    ];
    if req.method == Method::HEAD {
        return Ok(empty_answer(StatusCode::OK, &headers, read.size));
    }
    let length = read.size.to_string();
    let mut all = headers.to_vec();
    all.push(("content-length", &length));
    Ok(answer(
        StatusCode::OK,
        &all,
        file_body(read.file, 0, read.size),
    ))
}

/// `PUT /v2/<name>/manifests/<reference>`: checks the manifest, stores it, points the tag at
/// it, and (by tag) fires the push event; a refused push event undoes the put.
async fn put(
    store: &Store,
    req: &Req,
    name: &RegistryName,
    reference: &str,
    pusher: Option<String>,
) -> Result<HttpResponse, RegistryError> {
    let reference = Reference::parse(reference)?;
    store
        .may_push_to(name.repo())
        .map_err(|e| from_domain(&e))?;
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let manifest = Manifest::parse(content_type, &req.body)?;
    let digest = match &reference {
        Reference::Digest(given) => {
            let computed = Digest::of(given.algorithm(), &req.body);
            if computed != *given {
                return Err(RegistryError::DigestInvalid(format!(
                    "the manifest's digest is {computed}, not {given} as its URL says"
                )));
            }
            computed
        }
        Reference::Tag(_) => Digest::of(Algorithm::Sha256, &req.body),
    };
    let registry = store.registry();
    let platform = registry.image_platform(name.repo(), &manifest).await;
    let tag = match &reference {
        Reference::Tag(tag) => Some(tag.as_str()),
        Reference::Digest(_) => None,
    };
    let put = registry
        .put_manifest(
            name.repo(),
            tag,
            &digest,
            req.body.clone(),
            &manifest,
            platform.clone(),
        )
        .await?;
    if let Some(tag) = tag {
        if let Some(delay) = store.config().quirks.tag_visible_after {
            registry.hide_tag(name.repo(), tag, delay);
        }
        let push = tag_push(store, name, tag, &digest, &manifest, platform, pusher);
        // The put is visible first, so a receiver that pulls the tag as soon as the webhook
        // arrives finds it.
        match store.tag_pushed(&push, put.id) {
            Ok(_) => registry.settle(&put),
            Err(error) => {
                registry.undo_put(name.repo(), &put);
                return Err(from_domain(&error));
            }
        }
    }
    let location = format!("/v2/{name}/manifests/{digest}");
    let digest_text = digest.to_string();
    let subject = manifest.subject.as_ref().map(|s| s.digest.to_string());
    let mut headers = vec![
        ("location", location.as_str()),
        ("docker-content-digest", digest_text.as_str()),
    ];
    if let Some(subject) = &subject {
        headers.push(("oci-subject", subject));
    }
    Ok(empty_answer(StatusCode::CREATED, &headers, 0))
}

/// What tag `tag` now names, for [`Store::tag_pushed`]: the manifest, its size and its
/// platform images (an index's children that name a real platform, with what the registry
/// knows of each).
fn tag_push(
    store: &Store,
    name: &RegistryName,
    tag: &str,
    digest: &Digest,
    manifest: &Manifest,
    platform: Option<Platform>,
    pusher: Option<String>,
) -> TagPush {
    let image = |digest: String, media_type: String, platform: Option<Platform>, size: u64| {
        let platform = platform.unwrap_or_default();
        let known = |text: String| (!text.is_empty()).then_some(text);
        TagImage {
            digest,
            media_type,
            architecture: known(platform.architecture),
            os: known(platform.os),
            variant: platform.variant,
            size,
        }
    };
    let images: Vec<TagImage> = if manifest.children().is_empty() {
        vec![image(
            digest.to_string(),
            manifest.media_type.clone(),
            platform,
            manifest.layers_size(),
        )]
    } else {
        manifest
            .children()
            .iter()
            .filter(|child| child.platform.as_ref().is_none_or(Platform::is_known))
            .map(|child| {
                let stored = store.registry().stored(name.repo(), &child.digest);
                let platform = child
                    .platform
                    .clone()
                    .or_else(|| stored.as_ref().and_then(|s| s.platform.clone()));
                let size = stored.map_or(0, |s| s.layers_size);
                image(
                    child.digest.to_string(),
                    child.media_type.clone(),
                    platform,
                    size,
                )
            })
            .collect()
    };
    TagPush {
        repository: name.repo().clone(),
        tag: tag.to_owned(),
        digest: digest.to_string(),
        media_type: manifest.media_type.clone(),
        size: images.iter().map(|i| i.size).sum(),
        images,
        pusher,
        pushed_at: Timestamp::now(),
    }
}

/// `n` and `last` of a paginated list; `n` that is not a number is refused.
fn pagination(req: &Req) -> Result<(Option<usize>, Option<&str>), RegistryError> {
    let n = match req.param("n") {
        None | Some("") => None,
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            RegistryError::PaginationInvalid(format!(
                "n={} is not a non-negative integer",
                crate::registry::digest::shorten(text)
            ))
        })?),
    };
    Ok((n, req.param("last").filter(|l| !l.is_empty())))
}

/// The `Link` header to the next page, when there is one.
fn next_link(path: &str, n: Option<usize>, page: &Page) -> Option<String> {
    let last = page.items.last().filter(|_| page.more)?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(n) = n {
        query.append_pair("n", &n.to_string());
    }
    query.append_pair("last", last);
    Some(format!("<{path}?{}>; rel=\"next\"", query.finish()))
}

/// `GET /v2/<name>/tags/list?n=&last=`
pub(super) fn tags(
    store: &Store,
    req: &Req,
    name_text: &str,
) -> Result<HttpResponse, RegistryError> {
    let name = name(name_text)?;
    auth::caller(store, req)?.may(store, &name, Access::Pull)?;
    let (n, last) = pagination(req)?;
    let page = match store.registry().tags(name.repo(), n, last) {
        Some(page) => page,
        None if store.has_repository(name.repo()) => paginate(std::iter::empty(), n, last),
        None => {
            return Err(RegistryError::NameUnknown(format!(
                "repository {name} is not known to this registry"
            )))
        }
    };
    let link = next_link(&format!("/v2/{name}/tags/list"), n, &page);
    let mut response = json_answer(
        StatusCode::OK,
        &json!({ "name": name.as_str(), "tags": page.items }),
    );
    add_link(&mut response, link);
    Ok(response)
}

/// `GET /v2/_catalog?n=&last=`: the repositories holding something that the caller may read.
pub(super) fn catalog(store: &Store, req: &Req) -> Result<HttpResponse, RegistryError> {
    let caller = auth::caller(store, req)?;
    let (n, last) = pagination(req)?;
    let visible: Vec<String> = store
        .registry()
        .repositories()
        .into_iter()
        .filter(|repo| match &caller {
            Caller::Open(_) => true,
            Caller::User(user) => *user == repo.namespace || !store.is_private(repo),
            Caller::Anonymous { .. } => !store.is_private(repo),
        })
        .map(|repo| repo.to_string())
        .collect();
    let page = paginate(visible.iter().map(String::as_str), n, last);
    let link = next_link("/v2/_catalog", n, &page);
    let mut response = json_answer(StatusCode::OK, &json!({ "repositories": page.items }));
    add_link(&mut response, link);
    Ok(response)
}

fn add_link(response: &mut HttpResponse, link: Option<String>) {
    if let Some(Ok(link)) = link.map(|l| http::HeaderValue::from_str(&l)) {
        response.headers_mut().insert(http::header::LINK, link);
    }
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: an OCI index of the manifests whose
/// subject is `digest` (empty when none, or when the digest is unknown).
pub(super) fn referrers(
    store: &Store,
    req: &Req,
    name_text: &str,
    digest: &str,
) -> Result<HttpResponse, RegistryError> {
    let name = name(name_text)?;
    auth::caller(store, req)?.may(store, &name, Access::Pull)?;
    let digest = Digest::parse(digest)?;
    let artifact_type = req.param("artifactType").filter(|t| !t.is_empty());
    let manifests: Vec<Value> = store
        .registry()
        .referrers(name.repo(), &digest, artifact_type)
        .into_iter()
        .map(|r| {
            let mut descriptor = Map::new();
            descriptor.insert("mediaType".into(), json!(r.media_type));
            descriptor.insert("digest".into(), json!(r.digest.to_string()));
            descriptor.insert("size".into(), json!(r.size));
            if let Some(artifact_type) = r.artifact_type {
                descriptor.insert("artifactType".into(), json!(artifact_type));
            }
            if !r.annotations.is_empty() {
                descriptor.insert("annotations".into(), json!(r.annotations));
            }
            Value::Object(descriptor)
        })
        .collect();
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut headers = vec![("content-type", OCI_INDEX)];
    if artifact_type.is_some() {
        headers.push(("oci-filters-applied", "artifactType"));
    }
    Ok(answer(
        StatusCode::OK,
        &headers,
        super::super::super::http::full(bytes),
    ))
}
