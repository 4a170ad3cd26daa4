//! The webhook payload, in the three shapes Docker Hub has used, as public serde types.
//!
//! The same types parse what the real Hub sends, so the crate doubles as a payload parser:
//! `serde_json::from_slice::<Payload>(body)` never panics, whatever the bytes.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::format::PayloadFormat;
use super::push::{ExtraPost, PushEvent, DOCKER_MANIFEST_V2};
use super::quirks::Quirks;
use super::repository::{RepoName, Repository};

/// A time in seconds since the Unix epoch, as an integer or a float, exactly as it was sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Seconds {
    /// `1417566161`
    Integer(i64),
    /// `1.417566161e+09`
    Float(f64),
}

impl Seconds {
    /// The value as a float, whichever way it was written.
    pub fn as_f64(self) -> f64 {
        match self {
            Seconds::Integer(i) => i as f64,
            Seconds::Float(f) => f,
        }
    }
}

/// Writes a float the way the seed document (Python's `repr` of old) shows times:
/// `1.417566161e+09`. Always valid JSON.
fn python_exponent(value: f64) -> String {
    if !value.is_finite() {
        // JSON has no NaN or infinity; a payload never carries one, but never emit bad JSON.
        return "0.0".to_owned();
    }
    let formatted = format!("{value:e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mantissa = if mantissa.contains('.') {
        mantissa.to_owned()
    } else {
        format!("{mantissa}.0")
    };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Seconds::Integer(i) => serializer.serialize_i64(i),
            Seconds::Float(f) => {
                // A RawValue keeps the exponent form in JSON output; the value is the same number.
                match serde_json::value::RawValue::from_string(python_exponent(f)) {
                    Ok(raw) => raw.serialize(serializer),
                    Err(_) => serializer.serialize_f64(f),
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;
        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds since the Unix epoch")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                i64::try_from(v)
                    .map(Seconds::Integer)
                    .or(Ok(Seconds::Float(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Ok(Seconds::Float(v))
            }
        }
        deserializer.deserialize_any(SecondsVisitor)
    }
}

/// `comment_count`: a string in the seed's example, a number in today's documentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Count {
    /// `0`
    Number(u64),
    /// `"0"`
    Text(String),
}

/// `push_data.images`: a list, `null`, or not there at all, each of which real payloads
/// carried.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Images {
    /// No `images` key (today's documented payload).
    #[default]
    Absent,
    /// `images: null` (an automated build's extra posts, `images-null-extra-posts`).
    Null,
    /// A list: image ids (legacy), digests, or `[]`.
    List(Vec<String>),
}

impl Images {
    /// Whether there is no `images` key.
    pub fn is_absent(&self) -> bool {
        *self == Images::Absent
    }

    /// The list, if it is one.
    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            Images::List(list) => Some(list),
            _ => None,
        }
    }
}

impl From<Option<Vec<String>>> for Images {
    /// `None` is no key at all.
    fn from(images: Option<Vec<String>>) -> Images {
        images.map_or(Images::Absent, Images::List)
    }
}

impl Serialize for Images {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Not written at all (`skip_serializing_if`); `null` if ever asked.
            Images::Absent | Images::Null => serializer.serialize_none(),
            Images::List(list) => list.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Images {
    /// Called only when the key is there: `null` or a list.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<Vec<String>>::deserialize(deserializer)?.map_or(Images::Null, Images::List))
    }
}

/// A webhook payload as Docker Hub POSTs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// Where the receiver reports its result (the webhook-chain callback).
    pub callback_url: String,
    /// What was pushed.
    pub push_data: PushData,
    /// The repository pushed to.
    pub repository: PayloadRepository,
}

/// The `push_data` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushData {
    /// Image ids (legacy), `[]` (observed), absent (current), or `null`.
    #[serde(default, skip_serializing_if = "Images::is_absent")]
    pub images: Images,
    /// When the push happened.
    pub pushed_at: Seconds,
    /// Who pushed.
    pub pusher: String,
    /// The tag pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The manifest's media type (observed format only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// The `repository` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayloadRepository {
    /// `"0"` (legacy), `0` (current), absent (observed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_count: Option<Count>,
    /// When the repository was created.
    pub date_created: Seconds,
    /// Short description; real payloads have carried `null`.
    #[serde(default)]
    pub description: Option<String>,
    /// The Dockerfile (absent in the observed format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Long description; real payloads have carried `null`.
    #[serde(default)]
    pub full_description: Option<String>,
    /// Official image.
    pub is_official: bool,
    /// Private repository.
    pub is_private: bool,
    /// Automated build.
    pub is_trusted: bool,
    /// Repository name without namespace.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Owning user.
    pub owner: String,
    /// `namespace/name`, or `name` for official images.
    pub repo_name: String,
    /// The repository's page.
    pub repo_url: String,
    /// Stars.
    pub star_count: u64,
    /// `Active`.
    pub status: String,
}

impl Payload {
    /// The payload for one delivery of `push` to `repository` in `format`, with Docker
    /// Hub's `quirks`. `public_url` has no trailing slash.
    pub fn build(
        format: PayloadFormat,
        quirks: Quirks,
        repository: &Repository,
        push: &PushEvent,
        callback_url: String,
        public_url: &str,
    ) -> Payload {
        let repo_name: RepoName = repository.repo_name();
        let time = |t: super::time::Timestamp| match format {
            // The seed shows whole seconds written as floats: 1.417566161e+09.
            PayloadFormat::Legacy => Seconds::Float(t.unix_whole_seconds() as f64),
            PayloadFormat::Current | PayloadFormat::Observed => {
                Seconds::Integer(t.unix_whole_seconds())
            }
        };
        let (images, comment_count, dockerfile, media_type) = match format {
            PayloadFormat::Legacy => (
                Images::List(push.images.clone()),
                Some(Count::Text(repository.comment_count.to_string())),
                Some(repository.dockerfile.clone()),
                None,
            ),
            PayloadFormat::Current => (
                Images::Absent,
                Some(Count::Number(repository.comment_count)),
                Some(repository.dockerfile.clone()),
                None,
            ),
            PayloadFormat::Observed => (
                Images::List(Vec::new()),
                None,
                None,
                Some(
                    push.media_type
                        .clone()
                        .unwrap_or_else(|| DOCKER_MANIFEST_V2.to_owned()),
                ),
            ),
        };
        // The quirks, over the format's choice.
        let images = if quirks.images_null_extra_posts && push.extra == Some(ExtraPost::Tag) {
            Images::Null
        } else if quirks.duplicate_per_manifest {
            Images::List(Vec::new())
        } else {
            images
        };
        let tag = (!quirks.no_tag).then(|| push.tag.clone());
        Payload {
            callback_url,
            push_data: PushData {
                images,
                pushed_at: time(push.pushed_at),
                pusher: push.pusher.clone(),
                tag,
                media_type,
            },
            repository: PayloadRepository {
                comment_count,
                date_created: time(repository.date_created),
                description: Some(repository.description.clone()),
                dockerfile,
                full_description: Some(repository.full_description.clone()),
                is_official: repository.is_official,
                is_private: repository.is_private,
                is_trusted: repository.is_trusted,
                name: repository.name.clone(),
                namespace: repository.namespace.clone(),
                owner: repository.owner.clone(),
                repo_name: repo_name.repo_name(),
                repo_url: format!("{public_url}{}", repo_name.hub_path()),
                star_count: repository.star_count,
                status: repository.status.clone(),
            },
        }
    }

    /// The payload as the JSON bytes that are POSTed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload always serialises")
    }

    /// The payload as the exact JSON text that is POSTed.
    pub fn to_json(&self) -> Box<serde_json::value::RawValue> {
        serde_json::value::to_raw_value(self).expect("a payload always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_like_the_seed_document() {
        assert_eq!(python_exponent(1_417_566_161.0), "1.417566161e+09");
        assert_eq!(python_exponent(1.0), "1.0e+00");
        assert_eq!(python_exponent(0.5), "5.0e-01");
        let json = serde_json::to_string(&Seconds::Float(1_417_494_799.0)).unwrap();
        assert_eq!(json, "1.417494799e+09");
        let back: Seconds = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Seconds::Float(1_417_494_799.0));
        let int: Seconds = serde_json::from_str("1417494799").unwrap();
        assert_eq!(int, Seconds::Integer(1_417_494_799));
    }
}
