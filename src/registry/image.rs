//! Small generated images for tests: gzip-compressed tar layers, an image configuration, a
//! manifest (OCI or Docker schema 2), a multi-platform index, and an OCI image layout on disk
//! that `skopeo copy oci:DIR:TAG` reads. Deterministic: the same spec gives the same bytes
//! and digests, so a round trip through a registry can be compared byte for byte.
//!
//! Only the standard library and `sha2`: the gzip members use deflate's stored blocks (valid
//! gzip that any reader accepts, not smaller), the tar archives are ustar.

use std::fs;
use std::io;
use std::path::Path;

use serde_json::{json, Value};

use super::digest::{Algorithm, Digest};
use super::manifest::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};

/// Bytes with their media type: a layer, a config, a manifest or an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// The media type a descriptor of it names.
    pub media_type: String,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Its sha256 digest.
    pub fn digest(&self) -> Digest {
        Digest::of(Algorithm::Sha256, &self.bytes)
    }

    /// Its descriptor, as JSON.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest().to_string(),
            "size": self.bytes.len(),
        })
    }
}

/// What image to generate.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    seed: String,
    architecture: String,
    os: String,
    variant: Option<String>,
    layers: usize,
    layer_size: usize,
    docker: bool,
}

impl ImageSpec {
    /// A `linux/amd64` OCI image of one 1 KiB layer whose content follows from `seed`.
    pub fn new(seed: impl Into<String>) -> ImageSpec {
        ImageSpec {
            seed: seed.into(),
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            variant: None,
            layers: 1,
            layer_size: 1024,
            docker: false,
        }
    }

    /// For this platform.
    pub fn platform(mut self, os: &str, architecture: &str) -> ImageSpec {
        self.os = os.to_owned();
        self.architecture = architecture.to_owned();
        self
    }

    /// For this variant of the platform's architecture (`v7` of `linux/arm/v7`).
    pub fn variant(mut self, variant: &str) -> ImageSpec {
        self.variant = Some(variant.to_owned());
        self
    }

    /// With this many layers of `size` bytes of content each.
    pub fn layers(mut self, layers: usize, size: usize) -> ImageSpec {
        self.layers = layers;
        self.layer_size = size;
        self
    }

    /// With Docker's media types (schema 2) instead of OCI's.
    pub fn docker(mut self) -> ImageSpec {
        self.docker = true;
        self
    }

    /// The image.
    pub fn generate(&self) -> Image {
        let layer_type = if self.docker {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        };
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for i in 0..self.layers {
            let content = filler(&format!("{}/{i}", self.seed), self.layer_size);
            let tar = tar(
                &format!("hubmock/{}-{i}.bin", sanitize(&self.seed)),
                &content,
            );
            diff_ids.push(Digest::of(Algorithm::Sha256, &tar).to_string());
            layers.push(Blob {
                media_type: layer_type.to_owned(),
                bytes: gzip(&tar),
            });
        }
        let mut config = json!({
            "architecture": self.architecture,
            "os": self.os,
            "config": { "Labels": { "org.hubmock.seed": self.seed } },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        if let Some(variant) = &self.variant {
            config["variant"] = json!(variant);
        }
        let config = Blob {
            media_type: if self.docker {
                DOCKER_CONFIG
            } else {
                OCI_CONFIG
            }
            .to_owned(),
            bytes: to_bytes(&config),
        };
        let media_type = if self.docker {
            DOCKER_MANIFEST
        } else {
            OCI_MANIFEST
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        Image {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            manifest: Blob {
                media_type: media_type.to_owned(),
                bytes: to_bytes(&manifest),
            },
            config,
            layers,
        }
    }
}

/// A generated image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Its platform's architecture.
    pub architecture: String,
    /// Its platform's OS.
    pub os: String,
    /// Its platform's variant, if any.
    pub variant: Option<String>,
    /// Its configuration.
    pub config: Blob,
    /// Its layers.
    pub layers: Vec<Blob>,
    /// Its manifest.
    pub manifest: Blob,
}

impl Image {
    /// The config and the layers: what must be pushed before the manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(&self.layers)
    }

    /// The layers' size, as Docker Hub counts an image.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes.len() as u64).sum()
    }
}

/// A multi-platform index (or Docker manifest list) of generated images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// The images, in the index's order.
    pub images: Vec<Image>,
    /// The index itself.
    pub manifest: Blob,
}

impl Index {
    /// An OCI index of `images` (a Docker manifest list when they are Docker images).
    pub fn of(images: Vec<Image>) -> Index {
        let docker = images
            .first()
            .is_some_and(|i| i.manifest.media_type == DOCKER_MANIFEST);
        let media_type = if docker {
            DOCKER_MANIFEST_LIST
        } else {
            OCI_INDEX
        };
        let manifests: Vec<Value> = images
            .iter()
            .map(|image| {
                let mut descriptor = image.manifest.descriptor();
                descriptor["platform"] =
                    json!({ "architecture": image.architecture, "os": image.os });
                if let Some(variant) = &image.variant {
                    descriptor["platform"]["variant"] = json!(variant);
                }
                descriptor
            })
            .collect();
        let index = json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": manifests });
        Index {
            images,
            manifest: Blob {
                media_type: media_type.to_owned(),
                bytes: to_bytes(&index),
            },
        }
    }
}

/// Writes an OCI image layout in `dir` (`oci-layout`, `index.json`, `blobs/sha256/...`) whose
/// `index.json` names `top` (a manifest or an index) as `tag`; `blobs` are every other blob
/// it needs. `skopeo copy oci:DIR:TAG ...` reads it.
pub fn write_oci_layout<'a>(
    dir: &Path,
    tag: &str,
    top: &'a Blob,
    blobs: impl IntoIterator<Item = &'a Blob>,
) -> io::Result<()> {
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir)?;
    for blob in std::iter::once(top).chain(blobs) {
        fs::write(blob_dir.join(blob.digest().hex()), &blob.bytes)?;
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut descriptor = top.descriptor();
    descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor] });
    fs::write(dir.join("index.json"), to_bytes(&index))
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn sanitize(seed: &str) -> String {
    seed.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60)
        .collect()
}

/// `size` bytes that follow from `seed` (xorshift over its sha256): incompressible, as real
/// layers are.
fn filler(seed: &str, size: usize) -> Vec<u8> {
    let digest = Digest::of(Algorithm::Sha256, seed.as_bytes());
    let mut state = u64::from_str_radix(&digest.hex()[..16], 16).unwrap_or(1) | 1;
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

/// A ustar archive of one regular file.
fn tar(path: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |header: &mut [u8; 512], at: usize, text: &[u8]| {
        header[at..at + text.len()].copy_from_slice(text);
    };
    put(&mut header, 0, &path.as_bytes()[..path.len().min(100)]);
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{checksum:06o}\0 ").as_bytes());
    let mut archive = header.to_vec();
    archive.extend_from_slice(content);
    archive.resize(archive.len().div_ceil(512) * 512, 0);
    archive.extend_from_slice(&[0; 1024]);
    archive
}

/// A gzip member of `data` in deflate's stored blocks.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = u8::from(blocks.peek().is_none());
        let len = block.len() as u16;
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE), as gzip's trailer needs it.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (n, entry) in table.iter_mut().enumerate() {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *entry = c;
    }
    !data.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn images_are_deterministic_and_name_their_blobs() {
        let a = ImageSpec::new("x").layers(2, 70_000).generate();
        assert_eq!(a, ImageSpec::new("x").layers(2, 70_000).generate());
        assert_ne!(a, ImageSpec::new("y").layers(2, 70_000).generate());
        let manifest: Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
        assert_eq!(manifest["config"]["digest"], a.config.digest().to_string());
        assert_eq!(&a.layers[0].bytes[..2], &[0x1f, 0x8b]);
    }
}
