//! Repository names and manifest references as registry paths carry them.
//!
//! A registry name is one or two path components (`app`, `alice/app`), each of the OCI
//! grammar `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, and it must also be a Docker Hub repository
//! name: `alice/app` is the repository `alice/app`, and a single component `app` is the
//! official `library/app`, as Docker Hub reads it. Docker Hub has no deeper names, so neither
//! has hubmock: `a/b/c` is `NAME_INVALID`.

use std::fmt;

use super::digest::{shorten, Digest};
use super::error::RegistryError;
use crate::model::repository::{RepoName, LIBRARY};

/// A repository of the registry: the name as the client wrote it (echoed in `Location`
/// headers and listings) and the Hub repository it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryName {
    written: String,
    repo: RepoName,
}

impl RegistryName {
    /// Checks a name from a path.
    pub fn parse(written: &str) -> Result<RegistryName, RegistryError> {
        let invalid = |why: String| {
            RegistryError::NameInvalid(format!(
                "invalid repository name '{}': {why}",
                shorten(written)
            ))
        };
        let parts: Vec<&str> = written.split('/').collect();
        if parts.len() > 2 {
            return Err(invalid(
                "Docker Hub repository names have one or two parts, [namespace/]name".to_owned(),
            ));
        }
        if let Some(bad) = parts.iter().find(|part| !is_component(part)) {
            return Err(invalid(format!(
                "'{}' is not a name component: lowercase letters and digits, separated by \
                 '.', '_', '__' or dashes",
                shorten(bad)
            )));
        }
        let (namespace, name) = match parts.as_slice() {
            [name] => (LIBRARY, *name),
            [namespace, name] => (*namespace, *name),
            _ => return Err(invalid("the name is empty".to_owned())),
        };
        let repo = RepoName::new(namespace, name).map_err(|errors| {
            invalid(
                errors
                    .to_json()
                    .as_object()
                    .into_iter()
                    .flat_map(|fields| fields.values())
                    .flat_map(|messages| messages.as_array().into_iter().flatten())
                    .filter_map(|message| message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(RegistryName {
            written: written.to_owned(),
            repo,
        })
    }

    /// The name as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The Hub repository.
    pub fn repo(&self) -> &RepoName {
        &self.repo
    }
}

impl fmt::Display for RegistryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// One component of the OCI name grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// What a manifest path names: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A tag, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

impl Reference {
    /// A digest if it has a `:`, a tag otherwise; `TAG_INVALID` or `DIGEST_INVALID` when
    /// malformed.
    pub fn parse(text: &str) -> Result<Reference, RegistryError> {
        if text.contains(':') {
            return Digest::parse(text).map(Reference::Digest);
        }
        if is_tag(text) {
            Ok(Reference::Tag(text.to_owned()))
        } else {
            Err(RegistryError::TagInvalid(format!(
                "'{}' is not a tag: 1 to 128 characters of A-Z, a-z, 0-9, '_', '.' and '-', \
                 not starting with '.' or '-'",
                shorten(text)
            )))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => f.write_str(tag),
            Reference::Digest(digest) => digest.fmt(f),
        }
    }
}

/// Whether `text` is a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(text: &str) -> bool {
    let mut bytes = text.bytes();
    let first = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first
        && text.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_hub_repositories() {
        let name = RegistryName::parse("alice/app").unwrap();
        assert_eq!(name.repo().to_string(), "alice/app");
        assert_eq!(
            RegistryName::parse("app").unwrap().repo().to_string(),
            "library/app"
        );
        for good in ["a1/b.c", "ns/a__b", "ns/a---b", "repositories", "users/v2"] {
            assert!(RegistryName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a/b/c",
            "Alice/app",
            "ns/-app",
            "ns/app-",
            "ns/a..b",
            "ns/a___b",
            "x/app",
            "ns//app",
            "/ns/app",
        ] {
            assert!(RegistryName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert_eq!(
            Reference::parse("v1.0").unwrap(),
            Reference::Tag("v1.0".into())
        );
        assert!(matches!(
            Reference::parse(".INVALID"),
            Err(RegistryError::TagInvalid(_))
        ));
        assert!(matches!(
            Reference::parse("sha256:totallywrong"),
            Err(RegistryError::DigestInvalid(_))
        ));
        assert!(!is_tag(&"a".repeat(129)));
        assert!(is_tag(&"a".repeat(128)));
    }
}
