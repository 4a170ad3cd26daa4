//! Why the registry refused, in the distribution spec's words. The registry surface
//! (`server/routes/registry`) renders these as `{"errors": [{"code", "message", "detail"}]}`
//! with the spec's statuses, in one function; nothing here knows about HTTP.

use std::fmt;

/// A refusal of the registry. Each leaves stored content and state as they were.
#[derive(Clone, Debug, PartialEq)]
pub enum RegistryError {
    /// `BLOB_UNKNOWN`: the repository has no blob with this digest.
    BlobUnknown(String),
    /// `BLOB_UPLOAD_UNKNOWN`: no upload has this id in this repository.
    BlobUploadUnknown(String),
    /// `BLOB_UPLOAD_INVALID`: the upload cannot go on this way.
    BlobUploadInvalid(String),
    /// A chunk does not start where the upload ends (`416`, `BLOB_UPLOAD_INVALID`); the
    /// upload has `size` bytes.
    ChunkOutOfOrder {
        /// What is wrong.
        message: String,
        /// The upload's size, for the `Range` header.
        size: u64,
    },
    /// A `Range` of a blob that it cannot satisfy (`416`); the blob has `size` bytes.
    RangeNotSatisfiable {
        /// What is wrong.
        message: String,
        /// The blob's size, for `Content-Range: bytes */size`.
        size: u64,
    },
    /// `DIGEST_INVALID`: a malformed digest, or content that does not match it.
    DigestInvalid(String),
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest names a blob or manifest the repository lacks.
    ManifestBlobUnknown(String),
    /// `MANIFEST_INVALID`: the manifest is malformed.
    ManifestInvalid(String),
    /// `MANIFEST_UNKNOWN`: no manifest has this tag or digest.
    ManifestUnknown(String),
    /// `NAME_INVALID`: the repository name breaks the naming rules.
    NameInvalid(String),
    /// `NAME_UNKNOWN`: no such repository.
    NameUnknown(String),
    /// `SIZE_INVALID`: a size does not match the content, or is over a limit.
    SizeInvalid(String),
    /// `SIZE_INVALID` with `413`: a body over its limit (a manifest over 4 MiB).
    TooLarge(String),
    /// `PAGINATION_NUMBER_INVALID` (distribution's code): `n` is not a number.
    PaginationInvalid(String),
    /// `TAG_INVALID`: the tag breaks the tag rules.
    TagInvalid(String),
    /// `UNAUTHORIZED`: credentials are missing or wrong; `scope` is what the request needs,
    /// for the `WWW-Authenticate` challenge.
    Unauthorized {
        /// What is wrong.
        message: String,
        /// e.g. `repository:alice/app:pull,push`.
        scope: Option<String>,
        /// The bearer token given was not one hubmock issued.
        invalid_token: bool,
    },
    /// `DENIED`: the user may not do this.
    Denied(String),
    /// `UNSUPPORTED`: the operation or media type is not supported.
    Unsupported(String),
    /// `UNSUPPORTED` with `405`: the path takes other methods (listed, as `Allow` says).
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The methods the path takes.
        allowed: &'static str,
    },
    /// `UNAVAILABLE`: too much work is pending (the pending-run limit); try again later.
    Busy(String),
    /// The request body broke off or stalled (`400`/`408`).
    Body {
        /// What happened.
        message: String,
        /// The body stalled past `--body-timeout`.
        timed_out: bool,
    },
    /// The disk failed (`500`, `UNKNOWN`): not the client's fault.
    Storage(String),
}

impl RegistryError {
    /// The error code on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::BlobUnknown(_) => "BLOB_UNKNOWN",
            RegistryError::BlobUploadUnknown(_) => "BLOB_UPLOAD_UNKNOWN",
            RegistryError::BlobUploadInvalid(_) | RegistryError::ChunkOutOfOrder { .. } => {
                "BLOB_UPLOAD_INVALID"
            }
            RegistryError::RangeNotSatisfiable { .. } => "RANGE_INVALID",
            RegistryError::DigestInvalid(_) => "DIGEST_INVALID",
            RegistryError::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            RegistryError::ManifestInvalid(_) => "MANIFEST_INVALID",
            RegistryError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            RegistryError::NameInvalid(_) => "NAME_INVALID",
            RegistryError::NameUnknown(_) => "NAME_UNKNOWN",
            RegistryError::SizeInvalid(_) | RegistryError::TooLarge(_) => "SIZE_INVALID",
            RegistryError::Body { .. } => "BLOB_UPLOAD_INVALID",
            RegistryError::PaginationInvalid(_) => "PAGINATION_NUMBER_INVALID",
            RegistryError::TagInvalid(_) => "TAG_INVALID",
            RegistryError::Unauthorized { .. } => "UNAUTHORIZED",
            RegistryError::Denied(_) => "DENIED",
            RegistryError::Unsupported(_) | RegistryError::MethodNotAllowed { .. } => "UNSUPPORTED",
            RegistryError::Busy(_) => "UNAVAILABLE",
            RegistryError::Storage(_) => "UNKNOWN",
        }
    }

    /// An I/O failure of the store.
    pub(crate) fn storage(what: &str, error: impl fmt::Display) -> RegistryError {
        RegistryError::Storage(format!("hubmock's blob store failed to {what}: {error}"))
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::BlobUnknown(text)
            | RegistryError::BlobUploadUnknown(text)
            | RegistryError::BlobUploadInvalid(text)
            | RegistryError::DigestInvalid(text)
            | RegistryError::ManifestBlobUnknown(text)
            | RegistryError::ManifestInvalid(text)
            | RegistryError::ManifestUnknown(text)
            | RegistryError::NameInvalid(text)
            | RegistryError::NameUnknown(text)
            | RegistryError::SizeInvalid(text)
            | RegistryError::TooLarge(text)
            | RegistryError::PaginationInvalid(text)
            | RegistryError::TagInvalid(text)
            | RegistryError::Denied(text)
            | RegistryError::Unsupported(text)
            | RegistryError::Busy(text)
            | RegistryError::Storage(text) => f.write_str(text),
            RegistryError::ChunkOutOfOrder { message, .. }
            | RegistryError::RangeNotSatisfiable { message, .. }
            | RegistryError::Unauthorized { message, .. }
            | RegistryError::Body { message, .. } => f.write_str(message),
            RegistryError::MethodNotAllowed { method, allowed } => write!(
                f,
                "method {method} is not supported here; this path takes {allowed}"
            ),
        }
    }
}

impl std::error::Error for RegistryError {}
