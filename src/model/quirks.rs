//! Docker Hub as it really behaved: quirks its documentation never described, each switchable
//! alone, and named profiles that bundle them with a payload format.
//!
//! A quirk changes what a receiver sees (how many posts, what a payload carries, whether its
//! callback URL still answers, when a pushed tag can be pulled), never the chain rules'
//! bookkeeping of a run. Each is found in a public issue thread; the README's table "Docker
//! Hub's quirks" cites them:
//!
//! | quirk | what the Hub did |
//! |---|---|
//! | `duplicate-per-manifest` | a multi-arch push: one post per manifest, each `images: []` (docker/hub-feedback#2148) |
//! | `images-null-extra-posts` | an automated build with N tags: N-1 extra posts with `images: null` (gitterHQ/services#45) |
//! | `no-tag` | a payload without `push_data.tag` (a 2017 delivery) |
//! | `callback-gone` | `callback_url` is "legacy" and answers 404 (docker/docs#23955) |
//! | `tag-visible-after=D` | the webhook arrives before the tag can be pulled (distribution/distribution#2625) |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::format::PayloadFormat;

/// The quirks in force for a pipeline's runs (or, for `tag_visible_after`, the registry's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quirks {
    /// A push of an index (multi-arch) posts once per manifest (the index and each platform's
    /// image), every post with `images: []`.
    pub duplicate_per_manifest: bool,
    /// The posts for a push's extra tags (an automated build tagging one image several
    /// times) carry `images: null`.
    pub images_null_extra_posts: bool,
    /// Payloads carry no `push_data.tag`.
    pub no_tag: bool,
    /// `callback_url` is legacy: it answers `404`, and a step succeeds when its delivery is
    /// answered 2xx/3xx (the next URL is called at once).
    pub callback_gone: bool,
    /// The registry hides a tag pushed through it for this long from its push (when its
    /// webhook fires): pulling it by tag answers `MANIFEST_UNKNOWN` until then. Server-wide
    /// only.
    pub tag_visible_after: Option<Duration>,
}

/// A named bundle: a payload format and quirks.
pub struct Profile {
    /// Its name, as `--quirks` takes it.
    pub name: &'static str,
    /// What it stands for.
    pub summary: &'static str,
    /// Its payload format.
    pub format: PayloadFormat,
    /// Its quirks.
    pub quirks: Quirks,
}

/// The profiles, oldest first.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "docs-2016",
        summary: "the seed document: float times, image ids, chains with callbacks",
        format: PayloadFormat::Legacy,
        quirks: Quirks {
            duplicate_per_manifest: false,
            images_null_extra_posts: false,
            no_tag: false,
            callback_gone: false,
            tag_visible_after: None,
        },
    },
    Profile {
        name: "hub-2020",
        summary: "integer times, `images: []`, one post per manifest of a multi-arch push, \
                  `images: null` on an automated build's extra tags",
        format: PayloadFormat::Observed,
        quirks: Quirks {
            duplicate_per_manifest: true,
            images_null_extra_posts: true,
            no_tag: false,
            callback_gone: false,
            tag_visible_after: None,
        },
    },
    Profile {
        name: "hub-2026",
        summary: "today's documented payload (no `images`), `callback_url` answering 404",
        format: PayloadFormat::Current,
        quirks: Quirks {
            duplicate_per_manifest: false,
            images_null_extra_posts: false,
            no_tag: false,
            callback_gone: true,
            tag_visible_after: None,
        },
    },
];

/// The quirks that can be switched alone, with what each does (for errors and `--help`).
pub const QUIRKS: [(&str, &str); 5] = [
    (
        "duplicate-per-manifest",
        "a multi-arch push posts once per manifest, each with images: []",
    ),
    (
        "images-null-extra-posts",
        "a push's extra tags post with images: null",
    ),
    ("no-tag", "payloads carry no push_data.tag"),
    (
        "callback-gone",
        "callback_url answers 404; a 2xx delivery completes its step",
    ),
    (
        "tag-visible-after=D",
        "the registry hides a pushed tag for D (e.g. 2s) after its webhook",
    ),
];

/// The quirks that are on/off switches, by name: the one table that parsing, naming and
/// merging a profile's quirks read.
type Switch = fn(&mut Quirks) -> &mut bool;
const SWITCHES: [(&str, Switch); 4] = [
    ("duplicate-per-manifest", |q| &mut q.duplicate_per_manifest),
    ("images-null-extra-posts", |q| {
        &mut q.images_null_extra_posts
    }),
    ("no-tag", |q| &mut q.no_tag),
    ("callback-gone", |q| &mut q.callback_gone),
];

/// What `--quirks` or a pipeline's `quirks` says: a comma-separated list of at most one
/// profile and any quirks (`hub-2020,no-tag`, `tag-visible-after=500ms`, `none`). Kept with
/// its text, which is how it is shown and stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuirkSpec {
    text: String,
    format: Option<PayloadFormat>,
    quirks: Quirks,
}

impl QuirkSpec {
    /// No quirk and no format: what `none` says.
    pub fn none() -> QuirkSpec {
        QuirkSpec {
            text: "none".to_owned(),
            format: None,
            quirks: Quirks::default(),
        }
    }

    /// The payload format of its profile, if it names one.
    pub fn format(&self) -> Option<PayloadFormat> {
        self.format
    }

    /// The quirks it switches on (its profile's and its own).
    pub fn quirks(&self) -> Quirks {
        self.quirks
    }

    /// The text it was read from, normalised (no spaces).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for QuirkSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<QuirkSpec, String> {
        let mut spec = QuirkSpec {
            text: String::new(),
            format: None,
            quirks: Quirks::default(),
        };
        let mut profile: Option<&str> = None;
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        for part in &parts {
            if part.is_empty() {
                return Err(format!(
                    "'{text}' has an empty item; give profiles and quirks separated by commas, \
                     e.g. hub-2020,no-tag"
                ));
            }
            if *part == "none" {
                if parts.len() > 1 {
                    return Err("'none' cannot be combined with other quirks".to_owned());
                }
                return Ok(QuirkSpec::none());
            }
            if let Some(found) = PROFILES.iter().find(|p| p.name == *part) {
                if let Some(first) = profile {
                    return Err(format!(
                        "'{text}' names two profiles ({first} and {part}); name at most one, \
                         then quirks to add"
                    ));
                }
                profile = Some(found.name);
                spec.format = Some(found.format);
                for (_, switch) in SWITCHES {
                    if *switch(&mut { found.quirks }) {
                        *switch(&mut spec.quirks) = true;
                    }
                }
                continue;
            }
            if let Some((_, switch)) = SWITCHES.iter().find(|(name, _)| name == part) {
                *switch(&mut spec.quirks) = true;
                continue;
            }
            let rest = part
                .strip_prefix("tag-visible-after")
                .ok_or_else(|| unknown(part))?;
            let duration = rest
                .strip_prefix('=')
                .ok_or_else(|| format!("'{part}' needs a duration: tag-visible-after=2s"))?;
            let duration = humantime::parse_duration(duration)
                .map_err(|e| format!("'{part}': '{duration}' is not a duration ({e}), e.g. 2s"))?;
            if duration > crate::faults::MAX_DELAY {
                return Err(format!(
                    "'{part}': at most {} (30 days)",
                    humantime::format_duration(crate::faults::MAX_DELAY)
                ));
            }
            spec.quirks.tag_visible_after = Some(duration);
        }
        spec.text = parts.join(",");
        Ok(spec)
    }
}

fn unknown(item: &str) -> String {
    let profiles: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
    let quirks: Vec<&str> = QUIRKS.iter().map(|(name, _)| *name).collect();
    format!(
        "unknown quirk or profile '{item}'; profiles: {}; quirks: {}; or none",
        profiles.join(", "),
        quirks.join(", ")
    )
}

impl fmt::Display for QuirkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for QuirkSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for QuirkSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Quirks {
    /// Whether no quirk is on.
    pub fn is_none(&self) -> bool {
        *self == Quirks::default()
    }

    /// The names of the quirks that are on, as `--quirks` takes them.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = SWITCHES
            .iter()
            .filter(|(_, switch)| *switch(&mut { *self }))
            .map(|(name, _)| (*name).to_owned())
            .collect();
        if let Some(after) = self.tag_visible_after {
            // One word, so the list reads back: whole seconds, else milliseconds.
            let after = if after.subsec_millis() == 0 {
                format!("{}s", after.as_secs())
            } else {
                format!("{}ms", after.as_millis())
            };
            names.push(format!("tag-visible-after={after}"));
        }
        names
    }
}

/// A run's quirks in its JSON: the list of their names (`[]` is never written).
impl Serialize for Quirks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Quirks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        if names.is_empty() {
            return Ok(Quirks::default());
        }
        let spec: QuirkSpec = names.join(",").parse().map_err(serde::de::Error::custom)?;
        Ok(spec.quirks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_quirks_combine() {
        let spec: QuirkSpec = "hub-2020, no-tag".parse().unwrap();
        assert_eq!(spec.as_str(), "hub-2020,no-tag");
        assert_eq!(spec.format(), Some(PayloadFormat::Observed));
        let q = spec.quirks();
        assert!(q.duplicate_per_manifest && q.images_null_extra_posts && q.no_tag);
        assert!(!q.callback_gone);
        let alone: QuirkSpec = "tag-visible-after=250ms".parse().unwrap();
        assert_eq!(alone.format(), None);
        assert_eq!(
            alone.quirks().tag_visible_after,
            Some(Duration::from_millis(250))
        );
        assert_eq!(QuirkSpec::none(), "none".parse().unwrap());
    }

    #[test]
    fn mistakes_are_named() {
        let error = "hub-2021".parse::<QuirkSpec>().unwrap_err();
        assert!(
            error.contains("unknown quirk or profile 'hub-2021'"),
            "{error}"
        );
        assert!(error.contains("hub-2026"), "{error}");
        let two = "hub-2020,hub-2026".parse::<QuirkSpec>().unwrap_err();
        assert!(two.contains("two profiles"), "{two}");
        let bare = "tag-visible-after".parse::<QuirkSpec>().unwrap_err();
        assert!(bare.contains("needs a duration"), "{bare}");
        let bad = "tag-visible-after=soon".parse::<QuirkSpec>().unwrap_err();
        assert!(bad.contains("not a duration"), "{bad}");
        assert!("no-tag,,x"
            .parse::<QuirkSpec>()
            .unwrap_err()
            .contains("empty item"));
        assert!("none,no-tag".parse::<QuirkSpec>().is_err());
        let huge = "tag-visible-after=1000y".parse::<QuirkSpec>();
        assert!(huge.unwrap_err().contains("at most"));
    }

    #[test]
    fn quirks_round_trip_as_names() {
        let q = "callback-gone,tag-visible-after=2s"
            .parse::<QuirkSpec>()
            .unwrap()
            .quirks();
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, r#"["callback-gone","tag-visible-after=2s"]"#);
        assert_eq!(serde_json::from_str::<Quirks>(&json).unwrap(), q);
        let odd = "tag-visible-after=1s500ms"
            .parse::<QuirkSpec>()
            .unwrap()
            .quirks();
        assert_eq!(odd.names(), ["tag-visible-after=1500ms"]);
        let json = serde_json::to_string(&odd).unwrap();
        assert_eq!(serde_json::from_str::<Quirks>(&json).unwrap(), odd);
    }
}
