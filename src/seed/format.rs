//! What a seed file may say: its keys, each kept with where it was written. The values of a
//! repository's or a pipeline's fields stay JSON values here: they become the body the API
//! takes and are judged by the API's own validators (`load.rs`), so a field's rules are
//! written once, in `server/wire.rs`.

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

/// Declares a struct of optional API fields, each a [`Spanned`] JSON value, and the body they
/// make. Unknown keys are refused (with "did you mean"), so the list here is the keys a file
/// may use; what each may hold is the API's to say.
macro_rules! api_fields {
    ($(#[$meta:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $( #[serde(default)] pub(crate) $field: Option<Spanned<Value>>, )*
        }

        impl $name {
            /// The fields written, in the order of the struct, with where each was written.
            pub(crate) fn written(&self) -> Vec<(&'static str, &Spanned<Value>)> {
                let mut written = Vec::new();
                $( if let Some(value) = &self.$field { written.push((stringify!($field), value)); } )*
                written
            }

            /// The fields written, as a JSON object.
            pub(crate) fn body(&self) -> Map<String, Value> {
                self.written()
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value.value.clone()))
                    .collect()
            }
        }
    };
}

/// A whole seed file; every list may be left out.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeedDef {
    #[serde(default)]
    pub(crate) users: Vec<Spanned<UserDef>>,
    #[serde(default)]
    pub(crate) repositories: Vec<Spanned<RepositoryDef>>,
    #[serde(default)]
    pub(crate) pipelines: Vec<Spanned<PipelineDef>>,
}

/// A user, as `--user NAME:PASSWORD` gives one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserDef {
    pub(crate) username: Spanned<String>,
    pub(crate) password: Spanned<String>,
}

api_fields! {
    /// A repository: the control API's `POST /_hubmock/repositories` body.
    RepositoryDef {
        namespace,
        name,
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
        date_created,
    }
}

/// A pipeline: the repository it belongs to, then the Hub API's
/// `POST /v2/repositories/{ns}/{repo}/webhook_pipeline/` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineDef {
    /// `namespace/name` of a repository the file declares.
    pub(crate) repository: Spanned<String>,
    #[serde(default)]
    pub(crate) name: Option<Spanned<Value>>,
    #[serde(default)]
    pub(crate) expect_final_callback: Option<Spanned<Value>>,
    #[serde(default)]
    pub(crate) payload_format: Option<Spanned<Value>>,
    #[serde(default)]
    pub(crate) quirks: Option<Spanned<Value>>,
    #[serde(default)]
    pub(crate) webhooks: Option<Spanned<Vec<Spanned<WebhookDef>>>>,
}

impl PipelineDef {
    /// The pipeline's own fields written (its webhooks aside), with where each was written.
    pub(crate) fn written(&self) -> Vec<(&'static str, &Spanned<Value>)> {
        [
            ("name", &self.name),
            ("expect_final_callback", &self.expect_final_callback),
            ("payload_format", &self.payload_format),
            ("quirks", &self.quirks),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|value| (key, value)))
        .collect()
    }

    /// The Hub API's body for this pipeline.
    pub(crate) fn body(&self) -> Value {
        let mut body: Map<String, Value> = self
            .written()
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.value.clone()))
            .collect();
        if let Some(webhooks) = &self.webhooks {
            let items = webhooks
                .value
                .iter()
                .map(|webhook| Value::Object(webhook.value.body()))
                .collect();
            body.insert("webhooks".to_owned(), Value::Array(items));
        }
        Value::Object(body)
    }
}

api_fields! {
    /// One webhook of a pipeline's chain.
    WebhookDef {
        name,
        hook_url,
    }
}
