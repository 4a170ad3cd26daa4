//! Tags: what a push leaves in a repository for the Hub API to show. A push reports a
//! [`TagRecord`] (the registry from the manifest it stored, a control-API push from what it
//! was told); the store keeps one [`Tag`] per tag name, updated by each push of that tag.
//!
//! The registry tells the rest of hubmock that tag `T` of repository `R` now names manifest
//! `D` with a [`TagPush`], which becomes the tag's [`TagRecord`]; [`PushEvents`] says how many
//! push events an index makes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::fields::FieldErrors;
use super::push::{ExtraPost, PushEvent, PushRequest, DOCKER_MANIFEST_V2};
use super::repository::RepoName;
use super::time::Timestamp;

/// The platform a control-API push is recorded with: such a push names no manifest, so
/// hubmock records one `linux/amd64` image of size 0 *(ours)*.
pub const IMPLIED_PLATFORM: (&str, &str) = ("linux", "amd64");

/// One platform's image of a tag: for a single manifest, the manifest itself; for a manifest
/// list or index, each platform manifest it lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformImage {
    /// The CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// The operating system (`linux`, `windows`, ...).
    pub os: String,
    /// The CPU variant (`v7`, `v8`), when the platform has one.
    #[serde(default)]
    pub variant: Option<String>,
    /// The platform manifest's digest (`sha256:...`).
    pub digest: String,
    /// Its compressed size in bytes: the manifest's layers added up.
    pub size: u64,
}

/// What one push of a tag reports: the registry builds it from the manifest it stored, a
/// control-API push from what it was told ([`TagRecord::implied_by`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    /// The tag's name.
    pub tag: String,
    /// The digest of the manifest (or manifest list / index) the tag now names.
    pub digest: String,
    /// That manifest's media type.
    pub media_type: String,
    /// The compressed size in bytes (the layers added up; for an index, as the registry
    /// decides).
    pub full_size: u64,
    /// Who pushed.
    pub pusher: String,
    /// When.
    pub pushed_at: Timestamp,
    /// One entry per platform.
    pub images: Vec<PlatformImage>,
}

impl TagRecord {
    /// The record a push implies when no manifest is behind it (a control-API push): its tag
    /// and pusher, the first image it names as the digest (`sha256:` added to a bare id), its
    /// media type (Docker's schema 2 manifest when it names none), size 0 and one
    /// [`IMPLIED_PLATFORM`] image *(ours: nothing was uploaded, so nothing has a size)*.
    pub fn implied_by(event: &PushEvent) -> TagRecord {
        let digest = event.images.first().map_or_else(String::new, |image| {
            if image.contains(':') {
                image.clone()
            } else {
                format!("sha256:{image}")
            }
        });
        let (os, architecture) = IMPLIED_PLATFORM;
        TagRecord {
            tag: event.tag.clone(),
            media_type: event
                .media_type
                .clone()
                .unwrap_or_else(|| DOCKER_MANIFEST_V2.to_owned()),
            full_size: 0,
            pusher: event.pusher.clone(),
            pushed_at: event.pushed_at,
            images: vec![PlatformImage {
                architecture: architecture.to_owned(),
                os: os.to_owned(),
                variant: None,
                digest: digest.clone(),
                size: 0,
            }],
            digest,
        }
    }

    /// The push this tag's webhook reports: its tag, pusher, the manifest digest as the one
    /// image, and the manifest's media type.
    pub fn push_request(&self) -> PushRequest {
        PushRequest {
            tag: Some(self.tag.clone()),
            pusher: Some(self.pusher.clone()),
            images: vec![self.digest.clone()],
            media_type: Some(self.media_type.clone()),
            extra: None,
        }
    }

    /// Checks what a caller may get wrong: the tag's name, and that the digest and pusher are
    /// given.
    pub fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Err(message) = check_tag(&self.tag) {
            errors.add("tag", message);
        }
        if self.digest.is_empty() {
            errors.add("digest", "A tag names the digest of its manifest.");
        }
        if self.pusher.is_empty() {
            errors.add("pusher", "A push has a pusher.");
        }
        errors.or_ok(())
    }
}

/// A tag as the store keeps it: the last push of it, with what stays from its first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Its id, fixed at the first push (the Hub API shows tag ids).
    pub id: u64,
    /// Who pushed it first.
    pub creator: String,
    /// The last push of it.
    #[serde(flatten)]
    pub last: TagRecord,
}

impl Tag {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.last.tag
    }
}

/// Records a push in a repository's tags: a new tag gets the id `new_id` gives, a known one
/// keeps its id and creator and shows the new push. Answers the tag as recorded.
pub fn record(tags: &mut Vec<Tag>, record: TagRecord, new_id: impl FnOnce() -> u64) -> &Tag {
    let index = match tags.iter().position(|t| t.last.tag == record.tag) {
        Some(index) => {
            tags[index].last = record;
            index
        }
        None => {
            tags.push(Tag {
                id: new_id(),
                creator: record.pusher.clone(),
                last: record,
            });
            tags.len() - 1
        }
    };
    &tags[index]
}

/// What a repository's tags say about it as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// When it was last pushed to; `None` if never.
    pub last_updated: Option<Timestamp>,
    /// The media types of its tags' manifests, sorted, each once.
    pub media_types: Vec<String>,
    /// Its tags' sizes added up, each digest counted once.
    pub storage_size: u64,
    /// How many tags it has.
    pub tag_count: usize,
}

impl Activity {
    /// The activity these tags show.
    pub fn of(tags: &[Tag]) -> Activity {
        let mut media_types: Vec<String> = tags.iter().map(|t| t.last.media_type.clone()).collect();
        media_types.sort();
        media_types.dedup();
        let mut sized: Vec<(&str, u64)> = tags
            .iter()
            .map(|t| (t.last.digest.as_str(), t.last.full_size))
            .collect();
        sized.sort();
        sized.dedup_by(|a, b| a.0 == b.0);
        Activity {
            last_updated: tags.iter().map(|t| t.last.pushed_at).max(),
            media_types,
            storage_size: sized.iter().map(|(_, size)| size).sum(),
            tag_count: tags.len(),
        }
    }
}

/// Whether `tag` is a valid Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), &'static str> {
    let mut bytes = tag.bytes();
    let first = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if first
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        Ok(())
    } else {
        Err("A tag is 1 to 128 characters of A-Z, a-z, 0-9, '_', '.' and '-', not starting with '.' or '-'.")
    }
}

/// Tag `tag` of `repository` now names the manifest `digest`: everything Docker Hub shows of
/// a tag (its digest, size, platforms, last pusher and time) and everything its push event
/// carries.
#[derive(Clone, Debug, PartialEq)]
pub struct TagPush {
    /// The repository.
    pub repository: RepoName,
    /// The tag.
    pub tag: String,
    /// The manifest's digest, `sha256:...`.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The size Docker Hub shows (`full_size`): an image's layers; an index's images'
    /// layers, summed.
    pub size: u64,
    /// The images: one for an image manifest (its own digest), one per platform manifest of
    /// an index.
    pub images: Vec<TagImage>,
    /// Who pushed; `None` (with `--no-auth` and no credentials): the repository's owner.
    pub pusher: Option<String>,
    /// When.
    pub pushed_at: Timestamp,
}

/// One image of a pushed tag, as Docker Hub lists a tag's `images`.
#[derive(Clone, Debug, PartialEq)]
pub struct TagImage {
    /// The image manifest's digest.
    pub digest: String,
    /// The image manifest's media type.
    pub media_type: String,
    /// e.g. `amd64` (`None` when the image names no platform, e.g. an artifact).
    pub architecture: Option<String>,
    /// e.g. `linux`.
    pub os: Option<String>,
    /// e.g. `v8`.
    pub variant: Option<String>,
    /// Its layers' size.
    pub size: u64,
}

impl TagPush {
    /// The push of SPEC R1 for the tag: `images` = the manifest's digest, with its media
    /// type.
    pub fn push_request(&self) -> PushRequest {
        PushRequest {
            tag: Some(self.tag.clone()),
            pusher: self.pusher.clone(),
            images: vec![self.digest.clone()],
            media_type: Some(self.media_type.clone()),
            extra: None,
        }
    }

    /// The tag record of this push, `pusher` being who pushed (the repository's owner when
    /// the registry knew no user). An image that names no platform (an artifact, an
    /// attestation) is listed as `unknown`, as Docker Hub lists one.
    pub fn record(&self, pusher: String) -> TagRecord {
        let unknown = || "unknown".to_owned();
        TagRecord {
            tag: self.tag.clone(),
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            full_size: self.size,
            pusher,
            pushed_at: self.pushed_at,
            images: self
                .images
                .iter()
                .map(|image| PlatformImage {
                    architecture: image.architecture.clone().unwrap_or_else(unknown),
                    os: image.os.clone().unwrap_or_else(unknown),
                    variant: image.variant.clone(),
                    digest: image.digest.clone(),
                    size: image.size,
                })
                .collect(),
        }
    }

    /// With [`PushEvents::PerManifest`], the extra pushes an index makes: one per platform
    /// image (not the index's own), each with the image's digest and media type.
    pub fn platform_push_requests(&self) -> Vec<PushRequest> {
        self.images
            .iter()
            .filter(|image| image.digest != self.digest)
            .map(|image| PushRequest {
                tag: Some(self.tag.clone()),
                pusher: self.pusher.clone(),
                images: vec![image.digest.clone()],
                media_type: Some(image.media_type.clone()),
                extra: Some(ExtraPost::Manifest),
            })
            .collect()
    }
}

/// How many push events a manifest list or index pushed by tag fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PushEvents {
    /// One, for the tag (the index's digest) — what Docker Hub does today. Children pushed
    /// by digest fire nothing.
    #[default]
    PerTag,
    /// One for the tag, then one per platform manifest of the index (same tag, the
    /// platform manifest's digest and media type), as the Hub has done at times: receivers
    /// must cope with both.
    PerManifest,
}

impl PushEvents {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PushEvents::PerTag => "per-tag",
            PushEvents::PerManifest => "per-manifest",
        }
    }
}

impl fmt::Display for PushEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PushEvents {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per-tag" => Ok(PushEvents::PerTag),
            "per-manifest" => Ok(PushEvents::PerManifest),
            _ => Err(format!(
                "unknown push-events mode '{s}'; expected per-tag or per-manifest"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(images: &[&str], media_type: Option<&str>) -> PushEvent {
        PushEvent {
            tag: "v1".into(),
            pusher: "alice".into(),
            images: images.iter().map(|i| i.to_string()).collect(),
            media_type: media_type.map(str::to_owned),
            pushed_at: Timestamp::from_unix_seconds(1_700_000_000.0),
            extra: None,
        }
    }

    #[test]
    fn a_control_push_implies_a_linux_amd64_tag_of_size_zero() {
        let record = TagRecord::implied_by(&event(&["abc123"], None));
        assert_eq!(record.digest, "sha256:abc123");
        assert_eq!(record.media_type, DOCKER_MANIFEST_V2);
        assert_eq!(record.full_size, 0);
        assert_eq!(record.images.len(), 1);
        assert_eq!(
            (
                record.images[0].os.as_str(),
                record.images[0].architecture.as_str()
            ),
            IMPLIED_PLATFORM
        );
        assert_eq!(record.images[0].digest, record.digest);
        // A digest stays as given, and so does a media type.
        let index = "application/vnd.oci.image.index.v1+json";
        let record = TagRecord::implied_by(&event(&["sha256:ff", "sha256:ee"], Some(index)));
        assert_eq!(record.digest, "sha256:ff");
        assert_eq!(record.media_type, index);
        assert!(record.check().is_ok());
    }

    #[test]
    fn a_tag_pushed_again_keeps_its_id_and_creator() {
        let mut tags = Vec::new();
        let first = TagRecord::implied_by(&event(&["aa"], None));
        assert_eq!(record(&mut tags, first, || 7).id, 7);
        let mut again = TagRecord::implied_by(&event(&["bb"], None));
        again.pusher = "bob".into();
        let tag = record(&mut tags, again, || unreachable!("no new id")).clone();
        assert_eq!((tag.id, tag.creator.as_str()), (7, "alice"));
        assert_eq!(
            (tag.last.pusher.as_str(), tag.last.digest.as_str()),
            ("bob", "sha256:bb")
        );
        assert_eq!(tags.len(), 1);
    }

    #[test]
    fn activity_counts_each_digest_once_and_keeps_the_newest_push() {
        let mut tags = Vec::new();
        let mut a = TagRecord::implied_by(&event(&["aa"], None));
        a.full_size = 10;
        let mut b = a.clone();
        b.tag = "latest".into();
        b.pushed_at = Timestamp::from_unix_seconds(1_800_000_000.0);
        record(&mut tags, a, || 1);
        record(&mut tags, b.clone(), || 2);
        let activity = Activity::of(&tags);
        assert_eq!(activity.storage_size, 10);
        assert_eq!(activity.last_updated, Some(b.pushed_at));
        assert_eq!(activity.media_types, vec![DOCKER_MANIFEST_V2.to_owned()]);
        assert_eq!(activity.tag_count, 2);
        assert_eq!(Activity::of(&[]), Activity::default());
    }

    #[test]
    fn tags_follow_dockers_rule() {
        assert!(check_tag("v1.0_rc-1").is_ok());
        assert!(check_tag("_x").is_ok());
        assert!(check_tag(&"a".repeat(128)).is_ok());
        for bad in ["", ".v1", "-v1", "a/b", "a:b", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
    }
}
