//! Pushing a generated image through a registry's HTTP API, as a client does: each blob is
//! looked for (`HEAD`) and, when missing, uploaded (`POST .../blobs/uploads/`, then `PUT` the
//! session's `Location` with `?digest=`); then the manifest is put by tag. With several
//! platforms, each platform's image is pushed by digest and the index by tag, as
//! `docker buildx` and `skopeo copy --all` do.
//!
//! [`Hub::registry_push`](crate::Hub::registry_push) and the scenario step `push_image` push
//! with [`PushClient`] to hubmock's own registry; it speaks to any registry over plain HTTP
//! with Basic credentials (no token dance: hubmock takes Basic on every request).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use bytes::Bytes;
use http::Method;
use serde_json::Value;

use super::image::{Blob, Image, ImageSpec, Index};
use crate::client::{Answer, HttpClient};

/// How much of an error answer's body is kept to report it.
const KEEP: usize = 64 * 1024;

/// A platform, written `os/architecture` or `os/architecture/variant` (`linux/arm/v7`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// The OS, e.g. `linux`.
    pub os: String,
    /// The architecture, e.g. `amd64`.
    pub architecture: String,
    /// The variant, e.g. `v7`.
    pub variant: Option<String>,
}

impl Default for Platform {
    /// `linux/amd64`.
    fn default() -> Platform {
        Platform {
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            variant: None,
        }
    }
}

impl FromStr for Platform {
    type Err = String;

    /// Reads `os/architecture[/variant]`, each part of lowercase letters, digits, `.`, `_`
    /// and `-`; the error is a sentence that shows the expected form.
    fn from_str(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(format!(
                "platform `{text}` is not os/architecture or os/architecture/variant (lowercase \
                 letters, digits, `.`, `_`, `-`), e.g. linux/amd64 or linux/arm/v7"
            ));
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// What to push: a generated image (one platform) or index (several) for a tag.
/// Deterministic: the same fields give the same bytes and digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePush {
    /// The registry name: `namespace/name`, or `name` for `library/name`.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// No platform or one: a single image (`linux/amd64` when none). Two or more: an index
    /// of one image per platform, in this order.
    pub platforms: Vec<Platform>,
    /// Docker's media types (schema 2 manifest and manifest list) instead of OCI's.
    pub docker: bool,
    /// What the content follows from; `None` is `repository:tag`, so another tag is another
    /// image and the same tag pushed again is the same image.
    pub seed: Option<String>,
    /// Layers per image.
    pub layers: usize,
    /// Bytes of content per layer.
    pub layer_size: usize,
}

impl ImagePush {
    /// A `linux/amd64` OCI image of one 1 KiB layer, for `repository:tag`.
    pub fn new(repository: impl Into<String>, tag: impl Into<String>) -> ImagePush {
        ImagePush {
            repository: repository.into(),
            tag: tag.into(),
            platforms: Vec::new(),
            docker: false,
            seed: None,
            layers: 1,
            layer_size: 1024,
        }
    }

    /// The content to push.
    pub fn generate(&self) -> Generated {
        let seed = self
            .seed
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.repository, self.tag));
        let spec = |seed: String, platform: &Platform| {
            let mut spec = ImageSpec::new(seed)
                .platform(&platform.os, &platform.architecture)
                .layers(self.layers, self.layer_size);
            if let Some(variant) = &platform.variant {
                spec = spec.variant(variant);
            }
            if self.docker {
                spec = spec.docker();
            }
            spec.generate()
        };
        match self.platforms.as_slice() {
            [] => Generated::Image(spec(seed, &Platform::default())),
            [platform] => Generated::Image(spec(seed, platform)),
            platforms => Generated::Index(Index::of(
                platforms
                    .iter()
                    .map(|platform| spec(format!("{seed}/{platform}"), platform))
                    .collect(),
            )),
        }
    }
}

/// Generated content: an image, or an index of images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Generated {
    /// One image.
    Image(Image),
    /// An index (manifest list) of images.
    Index(Index),
}

impl Generated {
    /// The manifest pushed by tag (the image's, or the index).
    pub fn manifest(&self) -> &Blob {
        match self {
            Generated::Image(image) => &image.manifest,
            Generated::Index(index) => &index.manifest,
        }
    }
}

/// What a push stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The digest of the manifest (or index) the tag names: `push_data.images` of the
    /// webhook in the legacy payload format.
    pub digest: String,
    /// Its media type: `push_data.media_type` in the observed format.
    pub media_type: String,
    /// Each platform's image manifest (one, for a single image).
    pub manifests: Vec<PushedManifest>,
}

impl Pushed {
    /// Whether `run` is one this push of `tag` started: newer than `before` (the newest run
    /// id of the repository before the push began), of the tag, and naming what was pushed
    /// (the manifest or index, or with per-manifest push events one of its platforms').
    pub fn started(&self, run: &crate::model::run::Run, before: u64, tag: &str) -> bool {
        let named = |image: &String| {
            *image == self.digest || self.manifests.iter().any(|m| m.digest == *image)
        };
        run.id() > before && run.push().tag == tag && run.push().images.iter().any(named)
    }
}

/// One platform's image manifest of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedManifest {
    /// Its platform.
    pub platform: Platform,
    /// Its digest.
    pub digest: String,
}

/// Why a push failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// Nothing was sent: the push itself is wrong (a platform, a user, a repository name).
    Invalid(String),
    /// A request got no answer (connection refused, a broken answer).
    Unreachable {
        /// The request, e.g. `PUT /v2/acme/app/manifests/v1`.
        request: String,
        /// What went wrong.
        message: String,
    },
    /// The registry answered with an error.
    Refused {
        /// The request, e.g. `PUT /v2/acme/app/manifests/v1`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error code (`DENIED`, `NAME_UNKNOWN`, ...), when it sent one.
        code: Option<String>,
        /// The registry's error message (or the answer's text).
        message: String,
    },
    /// The registry answered what no registry should (no `Location`, another digest).
    Unexpected {
        /// The request.
        request: String,
        /// What was wrong.
        message: String,
    },
}

impl PushError {
    /// The registry's error code, e.g. `DENIED`, when it refused with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            PushError::Refused { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            PushError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Invalid(message) => f.write_str(message),
            PushError::Unreachable { request, message } => {
                write!(f, "{request} got no answer: {message}")
            }
            PushError::Refused {
                request,
                status,
                code,
                message,
            } => {
                write!(f, "{request} was refused: {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                write!(f, ": {message}")
            }
            PushError::Unexpected { request, message } => write!(f, "{request}: {message}"),
        }
    }
}

impl std::error::Error for PushError {}

/// A minimal registry client that pushes generated content over HTTP. Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use hubmock::registry::push::{ImagePush, PushClient};
/// let hub = hubmock::Hub::start().await; // auth off
/// let client = PushClient::new(&hub.uri());
/// let pushed = client.push(&ImagePush::new("acme/app", "v1")).await.unwrap();
/// assert!(pushed.digest.starts_with("sha256:"));
/// # }
/// ```
#[derive(Clone)]
pub struct PushClient {
    http: HttpClient,
    base: String,
    authorization: Option<String>,
}

impl PushClient {
    /// A client of the registry at `base_url` (`http://127.0.0.1:5555`), without credentials.
    pub fn new(base_url: &str) -> PushClient {
        PushClient {
            http: HttpClient::new(),
            base: base_url.trim_end_matches('/').to_owned(),
            authorization: None,
        }
    }

    /// The same client, trusting `https://` registries as `tls` says (`--ca-cert`,
    /// `--insecure-skip-verify`); an unreadable CA is the error.
    pub fn with_tls(mut self, tls: &crate::tls::ClientTls) -> Result<PushClient, String> {
        self.http = HttpClient::with_tls(tls)?;
        Ok(self)
    }

    /// The same client, sending Basic credentials on every request.
    pub fn with_basic(mut self, user: &str, password: &str) -> PushClient {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.authorization = Some(format!("Basic {encoded}"));
        self
    }

    /// Generates `push`'s content and pushes it: blobs, then manifests, the tag last.
    pub async fn push(&self, push: &ImagePush) -> Result<Pushed, PushError> {
        let name = &push.repository;
        match push.generate() {
            Generated::Image(image) => {
                let digest = self.push_image(name, &push.tag, &image).await?;
                Ok(Pushed {
                    digest: digest.clone(),
                    media_type: image.manifest.media_type.clone(),
                    manifests: vec![PushedManifest {
                        platform: platform_of(&image),
                        digest,
                    }],
                })
            }
            Generated::Index(index) => {
                let digest = self.push_index(name, &push.tag, &index).await?;
                Ok(Pushed {
                    digest,
                    media_type: index.manifest.media_type.clone(),
                    manifests: index
                        .images
                        .iter()
                        .map(|image| PushedManifest {
                            platform: platform_of(image),
                            digest: image.manifest.digest().to_string(),
                        })
                        .collect(),
                })
            }
        }
    }

    /// Pushes an image's blobs, then its manifest by `reference` (a tag or its digest);
    /// answers the manifest's digest.
    pub async fn push_image(
        &self,
        name: &str,
        reference: &str,
        image: &Image,
    ) -> Result<String, PushError> {
        for blob in image.blobs() {
            self.upload_blob(name, blob).await?;
        }
        self.put_manifest(name, reference, &image.manifest).await
    }

    /// Pushes each image of an index by digest, then the index by `reference`; answers the
    /// index's digest.
    pub async fn push_index(
        &self,
        name: &str,
        reference: &str,
        index: &Index,
    ) -> Result<String, PushError> {
        for image in &index.images {
            let digest = image.manifest.digest().to_string();
            self.push_image(name, &digest, image).await?;
        }
        self.put_manifest(name, reference, &index.manifest).await
    }

    /// Uploads a blob unless the repository has it: `HEAD`, then `POST` a session and `PUT`
    /// its `Location` with the digest and the content.
    pub async fn upload_blob(&self, name: &str, blob: &Blob) -> Result<(), PushError> {
        let digest = blob.digest().to_string();
        let path = format!("/v2/{name}/blobs/{digest}");
        let url = format!("{}{path}", self.base);
        let found = self
            .send(
                Method::HEAD,
                &url,
                &format!("HEAD {path}"),
                None,
                Bytes::new(),
            )
            .await?;
        if found.status == 200 {
            return Ok(());
        }
        let path = format!("/v2/{name}/blobs/uploads/");
        let request = format!("POST {path}");
        let url = format!("{}{path}", self.base);
        let started = self
            .send(Method::POST, &url, &request, None, Bytes::new())
            .await?;
        expect_status(&started, 202, &request)?;
        let location = started
            .headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| PushError::Unexpected {
                request: request.clone(),
                message: "the upload session was answered without a Location".to_owned(),
            })?;
        let session = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            return Err(PushError::Unexpected {
                request,
                message: format!("the upload's Location {location:?} is not a URL or a path"),
            });
        };
        let separator = if session.contains('?') { '&' } else { '?' };
        let url = format!("{session}{separator}digest={digest}");
        let request = format!("PUT the upload of {digest} to {name}");
        let done = self
            .send(
                Method::PUT,
                &url,
                &request,
                Some("application/octet-stream"),
                Bytes::from(blob.bytes.clone()),
            )
            .await?;
        expect_status(&done, 201, &request)
    }

    /// Puts a manifest by `reference`; answers its digest (checked against the registry's
    /// `Docker-Content-Digest`).
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        manifest: &Blob,
    ) -> Result<String, PushError> {
        let path = format!("/v2/{name}/manifests/{reference}");
        let request = format!("PUT {path}");
        let url = format!("{}{path}", self.base);
        let answer = self
            .send(
                Method::PUT,
                &url,
                &request,
                Some(&manifest.media_type),
                Bytes::from(manifest.bytes.clone()),
            )
            .await?;
        expect_status(&answer, 201, &request)?;
        let digest = manifest.digest().to_string();
        let answered = answer
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        match answered {
            Some(answered) if answered != digest => Err(PushError::Unexpected {
                request,
                message: format!(
                    "the registry says the manifest's digest is {answered}; it is {digest}"
                ),
            }),
            _ => Ok(digest),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        request: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Answer, PushError> {
        let mut headers = Vec::new();
        if let Some(authorization) = &self.authorization {
            headers.push(("authorization", authorization.as_str()));
        }
        if let Some(content_type) = content_type {
            headers.push(("content-type", content_type));
        }
        self.http
            .send(method, url, &headers, body, KEEP)
            .await
            .map_err(|message| PushError::Unreachable {
                request: request.to_owned(),
                message,
            })
    }
}

fn platform_of(image: &Image) -> Platform {
    Platform {
        os: image.os.clone(),
        architecture: image.architecture.clone(),
        variant: image.variant.clone(),
    }
}

/// `Ok` when the answer has status `want`; else the registry's refusal, with the code and
/// message of its first error when it sent `{"errors": [...]}`.
fn expect_status(answer: &Answer, want: u16, request: &str) -> Result<(), PushError> {
    if answer.status == want {
        return Ok(());
    }
    let error = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|body| body["errors"].get(0).cloned());
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let code = error.as_ref().and_then(|e| text(e.get("code")));
    let message = error
        .as_ref()
        .and_then(|e| text(e.get("message")))
        .unwrap_or_else(|| {
            let body = String::from_utf8_lossy(&answer.body);
            let body = body.trim();
            if body.is_empty() {
                format!("expected {want}, and the answer has no body")
            } else {
                body.chars().take(300).collect()
            }
        });
    Err(PushError::Refused {
        request: request.to_owned(),
        status: answer.status,
        code,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_two_or_three_parts() {
        let arm: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(arm.variant.as_deref(), Some("v7"));
        assert_eq!(arm.to_string(), "linux/arm/v7");
        assert_eq!("linux/amd64".parse::<Platform>(), Ok(Platform::default()));
        for wrong in [
            "linux",
            "linux/",
            "/amd64",
            "Linux/amd64",
            "a/b/c/d",
            "linux/amd 64",
        ] {
            let err = wrong.parse::<Platform>().unwrap_err();
            assert!(err.contains("e.g. linux/amd64"), "{wrong}: {err}");
        }
    }

    #[test]
    fn several_platforms_make_an_index_one_makes_an_image() {
        let mut push = ImagePush::new("acme/app", "v1");
        let Generated::Image(image) = push.generate() else {
            panic!("one image expected");
        };
        assert_eq!(
            (image.os.as_str(), image.architecture.as_str()),
            ("linux", "amd64")
        );
        push.platforms = vec![Platform::default(), "linux/arm/v7".parse().unwrap()];
        let Generated::Index(index) = push.generate() else {
            panic!("an index expected");
        };
        assert_eq!(index.images.len(), 2);
        let manifest: Value = serde_json::from_slice(&index.manifest.bytes).unwrap();
        assert_eq!(manifest["manifests"][1]["platform"]["variant"], "v7");
        assert_eq!(push.generate(), Generated::Index(index));
    }
}
