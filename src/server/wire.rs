//! The JSON formats of the Hub API and the control API: request bodies read into domain specs,
//! and the views the Hub API shows. They are wire formats, so they live beside the routes,
//! not in the domain; the domain's own rules (name lengths, URL forms) are checked by the
//! model's validators they call.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::format::PayloadFormat;
use crate::model::hook_url;
use crate::model::ids;
use crate::model::pipeline::Webhook;
use crate::model::push::DOCKER_MANIFEST_V2;
use crate::model::quirks::QuirkSpec;
use crate::model::tag::{Activity, Tag};
use crate::model::time::Timestamp;

use crate::model::fields::{expect_object, type_name, FieldErrors, Fields, REQUIRED};
use crate::model::pipeline::{check_hook_url, check_name, Pipeline, PipelineSpec, WebhookSpec};
use crate::model::repository::{RepoName, Repository, MAX_DESCRIPTION};

impl PipelineSpec {
    /// Reads a request body the way real clients send it; `creating` makes `name` and
    /// `webhooks` required. Unknown fields (such as `registry`) are ignored.
    pub fn from_json(body: &Value, creating: bool) -> Result<PipelineSpec, FieldErrors> {
        let object = expect_object(body)?;
        let mut fields = Fields::new(object);
        let name = if creating {
            fields.required_string("name")
        } else {
            fields.string("name")
        };
        if let Some(name) = &name {
            check_name(&mut fields.errors, "name", name);
        }
        let expect_final_callback = fields.boolean("expect_final_callback");
        let payload_format = match fields.string("payload_format") {
            Some(text) => match text.parse() {
                Ok(format) => Some(format),
                Err(message) => {
                    fields.errors.add("payload_format", message);
                    None
                }
            },
            None => None,
        };
        let quirks = match fields.string("quirks") {
            Some(text) => match text.parse::<QuirkSpec>() {
                Ok(quirks) if quirks.quirks().tag_visible_after.is_some() => {
                    fields.errors.add(
                        "quirks",
                        "tag-visible-after is the registry's, for the whole server (serve \
                         --quirks): a pipeline cannot set it.",
                    );
                    None
                }
                Ok(quirks) => Some(quirks),
                Err(message) => {
                    fields.errors.add("quirks", message);
                    None
                }
            },
            None => None,
        };
        let webhooks = match fields.raw("webhooks") {
            None if creating => {
                fields.errors.add("webhooks", REQUIRED);
                None
            }
            None => None,
            Some(Value::Array(items)) if items.is_empty() => {
                fields
                    .errors
                    .add("webhooks", "A pipeline needs at least one webhook.");
                None
            }
            Some(Value::Array(items)) => {
                let mut specs = Vec::with_capacity(items.len());
                let mut item_errors = Vec::with_capacity(items.len());
                for item in items {
                    match webhook_from_json(item) {
                        Ok(spec) => {
                            specs.push(spec);
                            item_errors.push(json!({}));
                        }
                        Err(errors) => item_errors.push(errors.to_json()),
                    }
                }
                if specs.len() == items.len() {
                    Some(specs)
                } else {
                    fields.errors.set("webhooks", Value::Array(item_errors));
                    None
                }
            }
            Some(other) => {
                fields.errors.add(
                    "webhooks",
                    format!(
                        "Expected a list of items but got type \"{}\".",
                        type_name(other)
                    ),
                );
                None
            }
        };
        let errors = fields.errors;
        errors.or_ok(PipelineSpec {
            name,
            expect_final_callback,
            webhooks,
            payload_format,
            quirks,
        })
    }
}

/// A pipeline as the Hub API shows it: the [`Pipeline`](crate::Pipeline) without its internal
/// id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineView {
    /// Its name, unique per repository.
    pub name: String,
    /// URL-safe form of the name, fixed at creation.
    pub slug: String,
    /// Whether a run waits for the last webhook's callback.
    pub expect_final_callback: bool,
    /// The chain, in order.
    pub webhooks: Vec<Webhook>,
    /// When it was created.
    pub created: Timestamp,
    /// When it last changed.
    pub last_updated: Timestamp,
    /// Who created it.
    pub creator: String,
    /// Payload shape for this pipeline *(ours)*; absent when it uses the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<PayloadFormat>,
    /// Docker Hub's quirks for this pipeline *(ours)*; absent when it uses the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirks: Option<QuirkSpec>,
}

impl Pipeline {
    /// The pipeline as Docker Hub's API shows it: every field but the internal id.
    pub fn api_view(&self) -> PipelineView {
        PipelineView {
            name: self.name.clone(),
            slug: self.slug.clone(),
            expect_final_callback: self.expect_final_callback,
            // Shown, so never with a password; the pipeline itself keeps it.
            webhooks: self
                .webhooks
                .iter()
                .map(|w| Webhook {
                    hook_url: hook_url::redact(&w.hook_url),
                    ..w.clone()
                })
                .collect(),
            created: self.created,
            last_updated: self.last_updated,
            creator: self.creator.clone(),
            payload_format: self.payload_format,
            quirks: self.quirks.clone(),
        }
    }
}

fn webhook_from_json(item: &Value) -> Result<WebhookSpec, FieldErrors> {
    let object = expect_object(item)?;
    let mut fields = Fields::new(object);
    let name = fields.required_string("name");
    let hook_url = fields.required_string("hook_url");
    if let Some(name) = &name {
        check_name(&mut fields.errors, "name", name);
    }
    if let Some(url) = &hook_url {
        check_hook_url(&mut fields.errors, url);
    }
    let errors = fields.errors;
    match (name, hook_url) {
        (Some(name), Some(hook_url)) if errors.is_empty() => Ok(WebhookSpec { name, hook_url }),
        _ => Err(errors),
    }
}

impl Repository {
    /// Builds a repository from a control-API body: `namespace` and `name` required, every
    /// other payload field optional.
    pub fn from_json(body: &Value) -> Result<Repository, FieldErrors> {
        let object = expect_object(body)?;
        let mut fields = Fields::new(object);
        let namespace = fields.required_string("namespace");
        let name = fields.required_string("name");
        let description = fields.string("description");
        let full_description = fields.string("full_description");
        let dockerfile = fields.string("dockerfile");
        let is_private = fields.boolean("is_private");
        let is_trusted = fields.boolean("is_trusted");
        let is_official = fields.boolean("is_official");
        let owner = fields.string("owner");
        let star_count = fields.count("star_count");
        let pull_count = fields.count("pull_count");
        let comment_count = fields.count("comment_count");
        let status = fields.string("status");
        let date_created = match fields.raw("date_created") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let parsed = date_created_from_json(value);
                if parsed.is_none() {
                    fields.errors.add(
                        "date_created",
                        "Expected an RFC 3339 date-time such as \"2026-11-22T22:39:34Z\", or \
                         seconds since the Unix epoch.",
                    );
                }
                parsed
            }
        };
        if let Some(description) = &description {
            fields.max_chars("description", description, MAX_DESCRIPTION);
        }
        let mut errors = fields.errors;
        let (Some(namespace), Some(name)) = (namespace, name) else {
            return Err(errors);
        };
        let repo_name = match RepoName::new(&namespace, &name) {
            Ok(repo_name) => Some(repo_name),
            Err(name_errors) => {
                for (field, messages) in name_errors.to_json().as_object().into_iter().flatten() {
                    errors.set(field, messages.clone());
                }
                None
            }
        };
        let mut repository = Repository::new(&errors.or_ok(repo_name)?.expect("checked"));
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = $field { repository.$field = v; } )* };
        }
        set!(
            description,
            full_description,
            dockerfile,
            is_private,
            is_trusted,
            is_official,
            owner,
            star_count,
            pull_count,
            comment_count,
            status,
            date_created
        );
        Ok(repository)
    }

    /// The repository as Docker Hub's `GET /v2/repositories/{ns}/{name}/` (and
    /// `GET /v2/namespaces/{ns}/repositories/{name}`) shows it: its own fields, what its tags
    /// say ([`Activity`]), and what the asking user may do (`owner`: they own its namespace).
    pub fn api_view(&self, activity: &Activity, owner: bool) -> Value {
        let mut view = self.list_entry(activity, owner);
        let extra = json!({
            "is_official": self.is_official,
            "comment_count": self.comment_count,
            "full_description": self.full_description,
            "dockerfile": self.dockerfile,
            "collaborator_count": 0,
            "has_starred": false,
            "permissions": {"read": true, "write": owner, "admin": owner},
            "immutable_tags_settings": {"enabled": false, "rules": []},
            "source": Value::Null,
        });
        if let (Value::Object(view), Value::Object(extra)) = (&mut view, extra) {
            view.extend(extra);
        }
        view
    }

    /// The repository as an item of Docker Hub's repository lists
    /// (`GET /v2/repositories/{ns}/`, `GET /v2/namespaces/{ns}/repositories`): the fields of
    /// today's list and the older ones clients still read (`user`, `can_edit`, ...).
    pub fn list_entry(&self, activity: &Activity, owner: bool) -> Value {
        let last_updated = activity
            .last_updated
            .map(|t| json!(t))
            .unwrap_or(Value::Null);
        let content_types: Vec<&str> = {
            let mut types: Vec<&str> = activity
                .media_types
                .iter()
                .map(|m| content_type(m))
                .collect();
            types.sort_unstable();
            types.dedup();
            types
        };
        json!({
            "user": self.owner,
            "name": self.name,
            "namespace": self.namespace,
            "repository_type": "image",
            "status": 1,
            "status_description": self.status.to_lowercase(),
            "description": self.description,
            "is_private": self.is_private,
            "is_automated": self.is_trusted,
            "can_edit": owner,
            "is_migrated": false,
            "star_count": self.star_count,
            "pull_count": self.pull_count,
            "last_updated": last_updated,
            "last_modified": last_updated,
            "date_registered": self.date_created,
            "affiliation": if owner { "owner" } else { "" },
            "media_types": activity.media_types,
            "content_types": content_types,
            "categories": [],
            "storage_size": activity.storage_size,
            "hub_user": self.owner,
        })
    }
}

/// A repository's `date_created` as a create body may give it: RFC 3339 (as the control API
/// shows it) or Unix seconds (as the legacy payload shows it), from the epoch to the year 9999.
fn date_created_from_json(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(text) => humantime::parse_rfc3339_weak(text).ok().map(|time| {
            let secs = time
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            Timestamp::from_unix_seconds(secs)
        }),
        Value::Number(number) => number
            .as_f64()
            .filter(|secs| (0.0..=253_402_300_799.0).contains(secs))
            .map(Timestamp::from_unix_seconds),
        _ => None,
    }
}

/// The content type Docker Hub shows for a manifest's media type: `image` for Docker's and
/// OCI's image manifests and indexes, `unrecognized` for anything else.
pub fn content_type(media_type: &str) -> &'static str {
    const IMAGES: [&str; 4] = [
        DOCKER_MANIFEST_V2,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ];
    if IMAGES.contains(&media_type) {
        "image"
    } else {
        "unrecognized"
    }
}

/// A tag as Docker Hub's tag endpoints show it (`/v2/repositories/{ns}/{repo}/tags/...` and
/// `/v2/namespaces/{ns}/repositories/{repo}/tags...`). Users and the repository, which hubmock
/// knows by name, get stable made-up ids ([`ids::stable_id`]); nothing is ever pulled, so the
/// pull times are `null`.
pub fn tag_view(repository: &RepoName, tag: &Tag) -> Value {
    let last = &tag.last;
    let images: Vec<Value> = last
        .images
        .iter()
        .map(|image| {
            json!({
                "architecture": image.architecture,
                "features": "",
                "variant": image.variant,
                "digest": image.digest,
                "os": image.os,
                "os_features": "",
                "os_version": Value::Null,
                "size": image.size,
                "status": "active",
                "last_pulled": Value::Null,
                "last_pushed": last.pushed_at,
            })
        })
        .collect();
    json!({
        "creator": ids::stable_id(&tag.creator),
        "id": tag.id,
        "images": images,
        "last_updated": last.pushed_at,
        "last_updater": ids::stable_id(&last.pusher),
        "last_updater_username": last.pusher,
        "name": last.tag,
        "repository": ids::stable_id(&repository.to_string()),
        "full_size": last.full_size,
        "v2": true,
        "tag_status": "active",
        "tag_last_pulled": Value::Null,
        "tag_last_pushed": last.pushed_at,
        "media_type": last.media_type,
        "content_type": content_type(&last.media_type),
        "digest": last.digest,
    })
}

/// A user's profile as Docker Hub's `GET /v2/user/` and `GET /v2/users/{name}/` show it;
/// hubmock knows only the name, so the rest is empty, and every user joined when the emulator
/// started.
pub fn user_view(username: &str, joined: Timestamp) -> Value {
    json!({
        "id": ids::stable_hex(username),
        "username": username,
        "full_name": "",
        "location": "",
        "company": "",
        "profile_url": "",
        "gravatar_email": "",
        "gravatar_url": "",
        "date_joined": joined,
        "type": "User",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_client_request_body_is_accepted() {
        let spec = PipelineSpec::from_json(
            &json!({"name": "X", "expect_final_callback": false,
                    "webhooks": [{"name": "X", "hook_url": "https://example.com/h"}],
                    "registry": "registry-1.docker.io"}),
            true,
        )
        .unwrap();
        assert_eq!(spec.expect_final_callback, Some(false));
        assert_eq!(spec.webhooks.unwrap()[0].hook_url, "https://example.com/h");
    }

    #[test]
    fn a_bad_hook_url_is_reported_per_webhook() {
        let errors = PipelineSpec::from_json(
            &json!({"name": "X", "webhooks": [
                {"name": "a", "hook_url": "https://ok.example/"},
                {"name": "b", "hook_url": " https://example.com"}]}),
            true,
        )
        .unwrap_err();
        assert_eq!(
            errors.to_json(),
            json!({"webhooks": [{}, {"hook_url": ["Invalid value."]}]})
        );
    }

    #[test]
    fn hook_urls_are_limited_to_255_characters() {
        let url = |len: usize| format!("http://e.x/{}", "a".repeat(len - 11));
        let body = |u: String| json!({"name": "X", "webhooks": [{"name": "a", "hook_url": u}]});
        assert!(PipelineSpec::from_json(&body(url(255)), true).is_ok());
        assert!(PipelineSpec::from_json(&body(url(256)), true).is_err());
    }
}
