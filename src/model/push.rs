//! A push: what a client reports ([`PushRequest`]) and the event that starts runs
//! ([`PushEvent`], with the defaults of R1 filled in by [`crate::model::chain`]).

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// Docker's image manifest, schema 2: what `docker push` of one image stores, and the media
/// type hubmock assumes for a push that names none.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A push as the control API (or the registry, later) reports it; absent parts get defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushRequest {
    /// The tag; `latest` when absent.
    pub tag: Option<String>,
    /// Who pushed; the repository's owner when absent.
    pub pusher: Option<String>,
    /// Image ids or digests; one is made up when empty.
    pub images: Vec<String>,
    /// The manifest's media type.
    pub media_type: Option<String>,
    /// Set when this push is an extra post of another (the caller's bookkeeping).
    pub extra: Option<ExtraPost>,
}

/// Why a push event is an extra post of one push rather than a push of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraPost {
    /// One platform manifest of an index pushed by tag: fired for every pipeline with
    /// `--push-events per-manifest`, else only for pipelines with `duplicate-per-manifest`.
    Manifest,
    /// One more tag of the same push (an automated build that tagged its image several
    /// times): `images: null` with `images-null-extra-posts`.
    Tag,
}

/// What was pushed: the event that starts runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushEvent {
    /// The tag pushed.
    pub tag: String,
    /// Who pushed.
    pub pusher: String,
    /// Image ids or digests (hubmock makes up one id when a push names none).
    pub images: Vec<String>,
    /// The manifest's media type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// When the push happened.
    pub pushed_at: Timestamp,
    /// Set when this event is an extra post of a push ([`ExtraPost`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<ExtraPost>,
}
