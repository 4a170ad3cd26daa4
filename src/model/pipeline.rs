//! Webhook pipelines: the seed's "webhook chain", an ordered list of URLs called one by one.

use serde::{Deserialize, Serialize};

use super::fields::{is_absolute_http_url, FieldErrors};
use super::format::PayloadFormat;
use super::quirks::{QuirkSpec, Quirks};
use super::time::Timestamp;

/// Longest `hook_url` Docker Hub accepts.
pub const MAX_HOOK_URL: usize = 255;
/// Longest pipeline or webhook name *(ours)*.
pub const MAX_NAME: usize = 100;

/// One URL of a chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its name.
    pub name: String,
    /// Where the payload is POSTed.
    pub hook_url: String,
    /// When it was added.
    pub created: Timestamp,
    /// When it last changed.
    pub last_updated: Timestamp,
}

/// A repository's webhook pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Internal id, unique for the emulator's life; runs refer to it.
    pub id: u64,
    /// Its name, unique per repository.
    pub name: String,
    /// URL-safe form of the name, fixed at creation.
    pub slug: String,
    /// Whether the run waits for the last webhook's callback (the seed's default: yes).
    pub expect_final_callback: bool,
    /// The chain, in order; at least one.
    pub webhooks: Vec<Webhook>,
    /// When it was created.
    pub created: Timestamp,
    /// When it last changed.
    pub last_updated: Timestamp,
    /// Who created it.
    pub creator: String,
    /// Payload shape for this pipeline *(ours)*; the server's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<PayloadFormat>,
    /// Docker Hub's quirks for this pipeline *(ours)*, replacing the server's (`--quirks`);
    /// a profile's payload format applies unless `payload_format` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirks: Option<QuirkSpec>,
}

/// A webhook as a request describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSpec {
    /// Its name.
    pub name: String,
    /// Where the payload goes.
    pub hook_url: String,
}

/// A pipeline as a create or update request describes it; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineSpec {
    /// New name.
    pub name: Option<String>,
    /// New `expect_final_callback`.
    pub expect_final_callback: Option<bool>,
    /// New chain (replaces the old one whole).
    pub webhooks: Option<Vec<WebhookSpec>>,
    /// New payload format.
    pub payload_format: Option<PayloadFormat>,
    /// New quirks.
    pub quirks: Option<QuirkSpec>,
}

impl PipelineSpec {
    /// A spec for a new pipeline with the given name and URLs (webhooks named after their
    /// position).
    pub fn new(name: &str, hook_urls: &[&str]) -> PipelineSpec {
        PipelineSpec {
            name: Some(name.to_owned()),
            expect_final_callback: None,
            webhooks: Some(
                hook_urls
                    .iter()
                    .enumerate()
                    .map(|(i, url)| WebhookSpec {
                        name: format!("{name} {}", i + 1),
                        hook_url: (*url).to_owned(),
                    })
                    .collect(),
            ),
            payload_format: None,
            quirks: None,
        }
    }
}

/// Checks a hook URL: at most [`MAX_HOOK_URL`] characters, an absolute http(s) URL. Docker
/// Hub answers "Invalid value." for every kind of bad URL *(observed)*; the length limit gets
/// the framework's own message so the user sees which rule it is.
pub(crate) fn check_hook_url(errors: &mut FieldErrors, url: &str) {
    if url.chars().count() > MAX_HOOK_URL {
        errors.add(
            "hook_url",
            format!("Ensure this field has no more than {MAX_HOOK_URL} characters."),
        );
    } else if !is_absolute_http_url(url) {
        errors.add("hook_url", "Invalid value.");
    }
}

/// Checks a pipeline or webhook name (`field` names it in the errors).
pub(crate) fn check_name(errors: &mut FieldErrors, field: &str, name: &str) {
    let count = name.chars().count();
    if count == 0 || name.trim().is_empty() {
        errors.add(field, "This field may not be blank.");
    } else if count > MAX_NAME {
        errors.add(
            field,
            format!("Ensure this field has no more than {MAX_NAME} characters."),
        );
    } else if field == "name" && slugify(name).is_empty() {
        errors.add(field, "The name must contain at least one letter or digit.");
    }
}

/// The URL-safe form of a name: lower-case letters and digits, runs of anything else as one `-`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

impl Pipeline {
    /// The quirks its runs follow: its own, else `server`'s.
    pub fn quirks_or(&self, server: Quirks) -> Quirks {
        self.quirks.as_ref().map_or(server, QuirkSpec::quirks)
    }

    /// A new pipeline from a validated creation spec.
    pub fn create(id: u64, spec: PipelineSpec, creator: &str, now: Timestamp) -> Pipeline {
        let name = spec.name.unwrap_or_default();
        let mut pipeline = Pipeline {
            id,
            slug: slugify(&name),
            name,
            expect_final_callback: spec.expect_final_callback.unwrap_or(true),
            webhooks: Vec::new(),
            created: now,
            last_updated: now,
            creator: creator.to_owned(),
            payload_format: spec.payload_format,
            quirks: spec.quirks,
        };
        pipeline.set_webhooks(spec.webhooks.unwrap_or_default(), now);
        pipeline
    }

    /// Applies a validated update. The slug stays as it was created, so links and history keep
    /// working after a rename *(ours)*.
    pub fn update(&mut self, spec: PipelineSpec, now: Timestamp) {
        if let Some(name) = spec.name {
            self.name = name;
        }
        if let Some(expect) = spec.expect_final_callback {
            self.expect_final_callback = expect;
        }
        if let Some(format) = spec.payload_format {
            self.payload_format = Some(format);
        }
        if let Some(quirks) = spec.quirks {
            self.quirks = Some(quirks);
        }
        if let Some(webhooks) = spec.webhooks {
            self.set_webhooks(webhooks, now);
        }
        self.last_updated = now;
    }

    fn set_webhooks(&mut self, specs: Vec<WebhookSpec>, now: Timestamp) {
        let old = std::mem::take(&mut self.webhooks);
        self.webhooks = specs
            .into_iter()
            .map(|spec| {
                // A webhook that is unchanged keeps its creation time.
                let created = old
                    .iter()
                    .find(|w| w.name == spec.name && w.hook_url == spec.hook_url)
                    .map_or(now, |w| w.created);
                Webhook {
                    name: spec.name,
                    hook_url: spec.hook_url,
                    created,
                    last_updated: now,
                }
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_with_single_dashes() {
        assert_eq!(slugify("CI then Deploy!"), "ci-then-deploy");
        assert_eq!(slugify("  a__b  "), "a-b");
        assert_eq!(slugify("***"), "");
    }
}
