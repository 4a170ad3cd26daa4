//! Manifests as the registry checks them: Docker schema 2 manifests and manifest lists, OCI
//! image manifests and indexes, and artifacts (either, with `artifactType` or a `subject`).
//! The bytes are stored as pushed; this module only reads what the registry needs from them:
//! the media type, the blobs and child manifests it names, its subject, and platforms.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::digest::{shorten, Digest};
use super::error::RegistryError;

/// Largest manifest accepted (the distribution spec's suggested minimum limit).
pub const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image configuration.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image configuration.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Where an image runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl Platform {
    /// Reads `architecture`, `os` and `variant` of a JSON object (a descriptor's `platform`,
    /// or an image configuration); `None` when either of the first two is missing.
    pub fn from_json(object: &Value) -> Option<Platform> {
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Platform {
            architecture: text("architecture")?,
            os: text("os")?,
            variant: text("variant").filter(|v| !v.is_empty()),
        })
    }

    /// Whether it names a real platform: buildx's attestation manifests say `unknown/unknown`.
    pub fn is_known(&self) -> bool {
        self.architecture != "unknown" && self.os != "unknown"
    }
}

/// A content descriptor: what a manifest says about a blob or a manifest it names.
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its platform (children of an index).
    pub platform: Option<Platform>,
    /// Whether the content lives elsewhere (`urls`, foreign layers): not in the registry.
    pub external: bool,
}

/// What a manifest holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// An image (or artifact) manifest: a config and layers.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layer blobs.
        layers: Vec<Descriptor>,
    },
    /// An index or manifest list: child manifests.
    Index {
        /// The children.
        manifests: Vec<Descriptor>,
    },
}

/// A manifest, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Its media type (from the body, or the `Content-Type` it was pushed with).
    pub media_type: String,
    /// What it holds.
    pub content: Content,
    /// The manifest it refers to (the referrers API).
    pub subject: Option<Descriptor>,
    /// Its `artifactType`, if any.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Parses and checks a manifest pushed with this `Content-Type` (if any).
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, RegistryError> {
        let invalid =
            |why: String| RegistryError::ManifestInvalid(format!("invalid manifest: {why}"));
        let value: Value =
            serde_json::from_slice(body).map_err(|err| invalid(format!("not JSON ({err})")))?;
        let object = value
            .as_object()
            .ok_or_else(|| invalid("not a JSON object".to_owned()))?;
        let declared = match object.get("mediaType") {
            None => None,
            Some(Value::String(text)) => Some(text.as_str()),
            Some(_) => return Err(invalid("mediaType is not a string".to_owned())),
        };
        // `Content-Type` may carry parameters; `application/json` (or none) says nothing.
        let header = content_type
            .map(|ct| ct.split(';').next().unwrap_or("").trim())
            .filter(|ct| !ct.is_empty() && *ct != "application/json");
        let media_type = match (header, declared) {
            (Some(header), Some(declared)) if header != declared => {
                return Err(invalid(format!(
                    "its mediaType '{}' differs from the Content-Type '{}' it was pushed with",
                    shorten(declared),
                    shorten(header)
                )))
            }
            (Some(media_type), _) | (None, Some(media_type)) => media_type.to_owned(),
            // No word on the type: an OCI manifest or index by its shape.
            (None, None) if object.contains_key("manifests") => OCI_INDEX.to_owned(),
            (None, None) => OCI_MANIFEST.to_owned(),
        };
        let is_index = match media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => false,
            OCI_INDEX | DOCKER_MANIFEST_LIST => true,
            other if other.starts_with("application/vnd.docker.distribution.manifest.v1") => {
                return Err(RegistryError::Unsupported(
                    "Docker schema 1 manifests are not supported (neither does Docker Hub \
                     accept them any more); push a schema 2 or OCI manifest"
                        .to_owned(),
                ))
            }
            other => {
                return Err(RegistryError::Unsupported(format!(
                    "manifest media type '{}' is not supported: use {OCI_MANIFEST}, {OCI_INDEX}, \
                     {DOCKER_MANIFEST} or {DOCKER_MANIFEST_LIST}",
                    shorten(other)
                )))
            }
        };
        match object.get("schemaVersion") {
            Some(v) if v.as_u64() == Some(2) => {}
            Some(v) => return Err(invalid(format!("schemaVersion is {v}, not 2"))),
            None => return Err(invalid("schemaVersion is missing".to_owned())),
        }
        let content = if is_index {
            let manifests = array(object, "manifests")?
                .iter()
                .enumerate()
                .map(|(i, d)| descriptor(d, &format!("manifests[{i}]")))
                .collect::<Result<_, _>>()?;
            Content::Index { manifests }
        } else {
            let config = object
                .get("config")
                .ok_or_else(|| invalid("config is missing".to_owned()))?;
            let layers = array(object, "layers")?
                .iter()
                .enumerate()
                .map(|(i, d)| descriptor(d, &format!("layers[{i}]")))
                .collect::<Result<_, _>>()?;
            Content::Image {
                config: descriptor(config, "config")?,
                layers,
            }
        };
        let subject = object
            .get("subject")
            .map(|d| descriptor(d, "subject"))
            .transpose()?;
        let artifact_type = match object.get("artifactType") {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(invalid("artifactType is not a string".to_owned())),
        };
        Ok(Manifest {
            media_type,
            content,
            subject,
            artifact_type,
            annotations: annotations(object.get("annotations"), "annotations")?,
        })
    }

    /// The blobs it names that the registry must hold: config and layers (not those that
    /// live elsewhere).
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match &self.content {
            Content::Image { config, layers } => std::iter::once(config)
                .chain(layers)
                .filter(|d| !d.external)
                .collect(),
            Content::Index { .. } => Vec::new(),
        }
    }

    /// The child manifests it names (an index's).
    pub fn children(&self) -> &[Descriptor] {
        match &self.content {
            Content::Index { manifests } => manifests,
            Content::Image { .. } => &[],
        }
    }

    /// Its config, if it is an image whose config is an image configuration (not an
    /// artifact's): where its platform is written.
    pub fn image_config(&self) -> Option<&Descriptor> {
        match &self.content {
            Content::Image { config, .. }
                if config.media_type == OCI_CONFIG || config.media_type == DOCKER_CONFIG =>
            {
                Some(config)
            }
            _ => None,
        }
    }

    /// The size of its layers, as Docker Hub's `full_size` counts an image.
    pub fn layers_size(&self) -> u64 {
        match &self.content {
            Content::Image { layers, .. } => layers.iter().map(|d| d.size).sum(),
            Content::Index { .. } => 0,
        }
    }

    /// Its `artifactType` as the referrers API lists it: the manifest's own, else (for an
    /// image manifest) its config's media type.
    pub fn referrer_artifact_type(&self) -> Option<String> {
        self.artifact_type.clone().or_else(|| match &self.content {
            Content::Image { config, .. } => Some(config.media_type.clone()),
            Content::Index { .. } => None,
        })
    }
}

fn array<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a Vec<Value>, RegistryError> {
    match object.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(RegistryError::ManifestInvalid(format!(
            "invalid manifest: {key} is not an array"
        ))),
        None => Err(RegistryError::ManifestInvalid(format!(
            "invalid manifest: {key} is missing"
        ))),
    }
}

fn descriptor(value: &Value, at: &str) -> Result<Descriptor, RegistryError> {
    let invalid =
        |why: &str| RegistryError::ManifestInvalid(format!("invalid manifest: {at}: {why}"));
    let object = value
        .as_object()
        .ok_or_else(|| invalid("not a descriptor object"))?;
    let media_type = object
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("mediaType is missing or not a string"))?;
    let digest = object
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("digest is missing or not a string"))?;
    let digest = Digest::parse(digest).map_err(|err| invalid(&err.to_string()))?;
    let size = object
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("size is missing or not a non-negative integer"))?;
    let platform = match object.get("platform") {
        None => None,
        Some(platform) => Some(
            Platform::from_json(platform)
                .ok_or_else(|| invalid("platform needs architecture and os strings"))?,
        ),
    };
    annotations(object.get("annotations"), &format!("{at}.annotations"))?;
    let external = object.get("urls").is_some_and(|u| !u.is_null())
        || media_type.contains(".foreign.")
        || media_type.contains(".nondistributable.");
    Ok(Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        platform,
        external,
    })
}

fn annotations(value: Option<&Value>, at: &str) -> Result<BTreeMap<String, String>, RegistryError> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let invalid = || {
        RegistryError::ManifestInvalid(format!(
            "invalid manifest: {at} must map strings to strings"
        ))
    };
    value
        .as_object()
        .ok_or_else(invalid)?
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(invalid)?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn an_image_manifest_names_its_blobs() {
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D}","size":2}},
                "layers":[{{"mediaType":"x","digest":"{D}","size":5}}],
                "subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":9}}}}"#
        );
        let manifest = Manifest::parse(Some(OCI_MANIFEST), body.as_bytes()).unwrap();
        assert_eq!(manifest.media_type, OCI_MANIFEST);
        assert_eq!(manifest.blobs().len(), 2);
        assert_eq!(manifest.layers_size(), 5);
        assert!(manifest.subject.is_some());
        assert_eq!(
            manifest.referrer_artifact_type().as_deref(),
            Some(OCI_CONFIG)
        );
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let cases = [
            (Some(OCI_MANIFEST), "blablabla"),
            (Some(OCI_MANIFEST), "[]"),
            (Some(OCI_MANIFEST), r#"{"schemaVersion":1}"#),
            (Some(OCI_MANIFEST), r#"{"schemaVersion":2,"layers":[]}"#),
            (Some(OCI_INDEX), r#"{"schemaVersion":2,"mediaType":"x"}"#),
            (Some(OCI_INDEX), r#"{"schemaVersion":2,"manifests":[{}]}"#),
            (Some("text/plain"), r#"{"schemaVersion":2,"manifests":[]}"#),
        ];
        for (content_type, body) in cases {
            assert!(
                Manifest::parse(content_type, body.as_bytes()).is_err(),
                "{body}"
            );
        }
        assert!(Manifest::parse(None, br#"{"schemaVersion":2,"manifests":[]}"#).is_ok());
    }
}
