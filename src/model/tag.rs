//! A tag pushed through the registry: what the registry tells the rest of hubmock when tag
//! `T` of repository `R` comes to name manifest `D` ([`TagPush`]); and how many push events
//! an index makes ([`PushEvents`]).

use std::fmt;
use std::str::FromStr;

use super::push::PushRequest;
use super::repository::RepoName;
use super::time::Timestamp;

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
