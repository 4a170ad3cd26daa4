//! Seed files: the users, repositories and webhook pipelines an emulator starts with
//! (`hubmock serve --config FILE`, [`HubBuilder::seed`](crate::HubBuilder::seed)), checked by
//! `hubmock check --config FILE`. The README's "Seed files" section documents the format.
//!
//! - `format.rs`: the keys a file may use, each value kept with its line and column;
//! - `load.rs`: YAML to [`SeedFile`]: every repository and pipeline goes through the API's own
//!   validators (`Repository::from_json`, `PipelineSpec::from_json`), so a field's rules are
//!   the API's; then duplicates and references between entries;
//! - `apply.rs`: [`Applied`], and `apply`, which creates what is missing through the ordinary
//!   store methods, as the APIs would, and leaves alone what is present.
//!
//! **Users are fixed when an emulator starts**, so a file's users join the configured ones
//! there ([`Config::effective_users`]); applying a file to a running emulator only checks that
//! they exist.

mod apply;
mod format;
mod load;

use std::path::Path;

use serde_json::Value;
use serde_saphyr::Location;

pub(crate) use apply::apply;
pub use apply::Applied;

use crate::config::Config;
use crate::model::repository::RepoName;
use crate::yaml::FileError;

/// A checked seed file: what it declares, each entry with where it was written so that an
/// error found later (when it is applied) still points into the file.
///
/// ```
/// let seed = hubmock::SeedFile::parse(
///     "users: [{username: alice, password: s3cret}]\n\
///      repositories: [{namespace: alice, name: app, description: The app}]\n",
///     "seed.yaml",
/// )
/// .unwrap();
/// assert_eq!(seed.users().collect::<Vec<_>>(), [("alice", "s3cret")]);
/// let err = hubmock::SeedFile::parse("repositories: [{namespace: alice, nmae: app}]", "seed.yaml")
///     .unwrap_err();
/// assert_eq!((err.line, err.column), (Some(1), Some(35)));
/// assert!(err.message.contains("did you mean `name`?"), "{err}");
/// ```
#[derive(Clone, Debug)]
pub struct SeedFile {
    file: String,
    users: Vec<SeedUser>,
    repositories: Vec<SeedRepository>,
    pipelines: Vec<SeedPipeline>,
}

#[derive(Clone, Debug)]
struct SeedUser {
    name: String,
    password: String,
    location: Location,
}

#[derive(Clone, Debug)]
struct SeedRepository {
    name: RepoName,
    /// The control API's body, checked; read again when applied, so that its creation time is
    /// when it is created.
    body: Value,
    location: Location,
}

#[derive(Clone, Debug)]
struct SeedPipeline {
    repository: RepoName,
    name: String,
    /// The Hub API's body, checked.
    body: Value,
    location: Location,
}

impl SeedFile {
    /// Reads and checks a seed file.
    pub fn load(path: impl AsRef<Path>) -> Result<SeedFile, FileError> {
        load::load(path.as_ref())
    }

    /// Parses and checks seed-file text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<SeedFile, FileError> {
        load::parse(text, file)
    }

    /// The file, as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The declared users, as `(name, password)`.
    pub fn users(&self) -> impl Iterator<Item = (&str, &str)> {
        self.users
            .iter()
            .map(|u| (u.name.as_str(), u.password.as_str()))
    }

    /// The declared repositories' names.
    pub fn repositories(&self) -> impl Iterator<Item = &RepoName> {
        self.repositories.iter().map(|r| &r.name)
    }

    /// The declared pipelines, as `(repository, pipeline name)`.
    pub fn pipelines(&self) -> impl Iterator<Item = (&RepoName, &str)> {
        self.pipelines
            .iter()
            .map(|p| (&p.repository, p.name.as_str()))
    }

    /// Checks the file against the users `config` gives (`--user`, [`Config::with_user`]): a
    /// user of both with two passwords is an error, and so is a pipeline in a namespace no user
    /// owns (only a namespace's user manages its pipelines on the Hub). The rest was checked
    /// when the file was read.
    pub fn check_with(&self, config: &Config) -> Result<(), FileError> {
        for user in &self.users {
            let clash = config
                .users
                .iter()
                .find(|(name, password)| *name == user.name && *password != user.password);
            if clash.is_some() {
                return Err(self.at(
                    user.location,
                    format!(
                        "user `{}` is also given (by --user or Config::with_user) with another \
                         password",
                        user.name
                    ),
                ));
            }
        }
        let users = joined_users(&config.users, Some(self));
        self.check_owners(|name| users.iter().any(|(user, _)| user == name))
    }

    /// Every pipeline's namespace has a user.
    fn check_owners(&self, is_user: impl Fn(&str) -> bool) -> Result<(), FileError> {
        for pipeline in &self.pipelines {
            let namespace = &pipeline.repository.namespace;
            if !is_user(namespace) {
                return Err(self.at(
                    pipeline.location,
                    format!(
                        "pipeline `{}` of {}: namespace `{namespace}` has no user; declare \
                         `{namespace}` under `users` (or give --user {namespace}:PASSWORD): \
                         only a namespace's user manages its pipelines",
                        pipeline.name, pipeline.repository
                    ),
                ));
            }
        }
        Ok(())
    }

    fn at(&self, location: Location, message: String) -> FileError {
        FileError::at(&self.file, location, message)
    }
}

/// The users in force: `configured` ones, then the file's that they do not name; the default
/// user when there are none at all.
pub(crate) fn joined_users(
    configured: &[(String, String)],
    seed: Option<&SeedFile>,
) -> Vec<(String, String)> {
    let mut users = configured.to_vec();
    for (name, password) in seed.into_iter().flat_map(SeedFile::users) {
        if !users.iter().any(|(known, _)| known == name) {
            users.push((name.to_owned(), password.to_owned()));
        }
    }
    if users.is_empty() {
        let (name, password) = crate::config::DEFAULT_USER;
        users.push((name.to_owned(), password.to_owned()));
    }
    users
}
