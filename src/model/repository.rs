//! Repositories: their names and the fields webhook payloads carry.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::fields::FieldErrors;
use super::time::Timestamp;

/// Longest short description of a repository.
pub const MAX_DESCRIPTION: usize = 100;

/// The namespace of official images, whose URLs are `/_/{name}/` rather than `/u/library/{name}/`.
pub const LIBRARY: &str = "library";

/// A repository's full name, `namespace/name` (and so it is written in JSON).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RepoName {
    /// The owner's namespace, 2–30 characters of `[a-z0-9_-]`.
    pub namespace: String,
    /// The repository's own name, 1–255 characters of `[a-z0-9._-]`.
    pub name: String,
}

impl RepoName {
    /// Checks both parts against the naming rules, naming the rule that is broken.
    pub fn new(namespace: &str, name: &str) -> Result<RepoName, FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Err(message) = check_namespace(namespace) {
            errors.add("namespace", message);
        }
        if let Err(message) = check_name(name) {
            errors.add("name", message);
        }
        errors.or_ok(RepoName {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Checks a namespace alone (a namespace's listing names no repository).
    pub fn check_namespace(namespace: &str) -> Result<(), FieldErrors> {
        check_namespace(namespace).map_err(|message| FieldErrors::single("namespace", message))
    }

    /// Parses `namespace/name`.
    pub fn parse(full: &str) -> Result<RepoName, FieldErrors> {
        match full.split_once('/') {
            Some((namespace, name)) => RepoName::new(namespace, name),
            None => Err(FieldErrors::single(
                "repository",
                format!("'{full}' is not of the form namespace/name"),
            )),
        }
    }

    /// Whether this is an official image (`library/...`).
    pub fn is_library(&self) -> bool {
        self.namespace == LIBRARY
    }

    /// The `repo_name` of payloads: `namespace/name`, or just `name` for `library`.
    pub fn repo_name(&self) -> String {
        if self.is_library() {
            self.name.clone()
        } else {
            self.to_string()
        }
    }

    /// The path of the repository's page on the Hub: `/u/{ns}/{name}/`, or `/_/{name}/`.
    pub fn hub_path(&self) -> String {
        if self.is_library() {
            format!("/_/{}/", self.name)
        } else {
            format!("/u/{}/{}/", self.namespace, self.name)
        }
    }
}

impl From<RepoName> for String {
    fn from(name: RepoName) -> String {
        name.to_string()
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;

    fn try_from(full: String) -> Result<RepoName, String> {
        RepoName::parse(&full).map_err(|errors| errors.to_json().to_string())
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

fn check_namespace(namespace: &str) -> Result<(), String> {
    let valid_chars = namespace
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if (2..=30).contains(&namespace.len()) && valid_chars {
        Ok(())
    } else {
        Err(format!(
            "namespace {namespace:?} must be 2 to 30 characters of a-z, 0-9, '_' and '-'"
        ))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let valid_chars = name.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
    });
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (1..=255).contains(&name.len()) && valid_chars && first_ok {
        Ok(())
    } else {
        Err(format!(
            "repository name {name:?} must be 1 to 255 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        ))
    }
}

/// A repository and every field a webhook payload shows of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repository {
    /// The owner's namespace.
    pub namespace: String,
    /// The repository's name.
    pub name: String,
    /// The short description.
    pub description: String,
    /// The long (README) description.
    pub full_description: String,
    /// The Dockerfile shown by automated builds.
    pub dockerfile: String,
    /// Whether only its owner sees it.
    pub is_private: bool,
    /// Whether it is an automated build.
    pub is_trusted: bool,
    /// Whether it is an official image.
    pub is_official: bool,
    /// The owning user.
    pub owner: String,
    /// Stars.
    pub star_count: u64,
    /// Pulls, as the Hub API shows them (hubmock counts none itself; set it when creating
    /// the repository).
    #[serde(default)]
    pub pull_count: u64,
    /// Comments.
    pub comment_count: u64,
    /// When it was created.
    pub date_created: Timestamp,
    /// Always `Active` on the Hub.
    pub status: String,
}

impl Repository {
    /// A repository with default fields, created now.
    pub fn new(name: &RepoName) -> Repository {
        Repository {
            namespace: name.namespace.clone(),
            name: name.name.clone(),
            description: String::new(),
            full_description: String::new(),
            dockerfile: String::new(),
            is_private: false,
            is_trusted: false,
            is_official: name.is_library(),
            owner: name.namespace.clone(),
            star_count: 0,
            pull_count: 0,
            comment_count: 0,
            date_created: Timestamp::now(),
            status: "Active".to_owned(),
        }
    }

    /// Its full name.
    pub fn repo_name(&self) -> RepoName {
        RepoName {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_rules() {
        assert!(RepoName::new("acme", "app").is_ok());
        assert!(RepoName::new("library", "nginx").is_ok());
        assert!(RepoName::new("a_b-c", "x.y_z-1").is_ok());
        assert!(RepoName::new("a", "app").is_err());
        assert!(RepoName::new(&"a".repeat(31), "app").is_err());
        assert!(RepoName::new("Acme", "app").is_err());
        assert!(RepoName::new("acme", "").is_err());
        assert!(RepoName::new("acme", ".app").is_err());
        assert!(RepoName::new("acme", &"a".repeat(255)).is_ok());
        assert!(RepoName::new("acme", &"a".repeat(256)).is_err());
    }

    #[test]
    fn library_repositories_have_short_names_and_paths() {
        let nginx = RepoName::new("library", "nginx").unwrap();
        assert_eq!(nginx.repo_name(), "nginx");
        assert_eq!(nginx.hub_path(), "/_/nginx/");
        let app = RepoName::new("acme", "app").unwrap();
        assert_eq!(app.repo_name(), "acme/app");
        assert_eq!(app.hub_path(), "/u/acme/app/");
    }

    #[test]
    fn a_body_with_a_bad_name_and_a_bad_type_names_both_fields() {
        let errors = Repository::from_json(
            &serde_json::json!({"namespace": "A", "name": "ok", "is_private": "yes"}),
        )
        .unwrap_err();
        assert!(
            errors.has("namespace") && errors.has("is_private"),
            "{errors:?}"
        );
    }
}
