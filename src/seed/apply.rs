//! Applying a seed file to a store: what is missing is created, what is present is left alone.

use std::fmt;

use super::SeedFile;
use crate::error::Error;
use crate::model::pipeline::PipelineSpec;
use crate::model::repository::{RepoName, Repository};
use crate::store::Store;
use crate::yaml::FileError;

/// What applying a seed file did: each repository and pipeline it declares, created or left
/// alone because one of that name was there already.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The file.
    pub file: String,
    /// How many users it declares (they join the emulator's when it starts).
    pub users: usize,
    /// Repositories created.
    pub repositories_created: Vec<RepoName>,
    /// Repositories left as they were.
    pub repositories_present: Vec<RepoName>,
    /// Pipelines created, as `(repository, name)`.
    pub pipelines_created: Vec<(RepoName, String)>,
    /// Pipelines left as they were.
    pub pipelines_present: Vec<(RepoName, String)>,
}

impl Applied {
    /// Whether it created nothing.
    pub fn created_nothing(&self) -> bool {
        self.repositories_created.is_empty() && self.pipelines_created.is_empty()
    }
}

/// One line: `seed.yaml: 1 user; repositories: 1 created, 0 left alone; pipelines: ...`.
impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} user(s); repositories: {} created, {} left alone; pipelines: {} created, {} \
             left alone",
            self.file,
            self.users,
            self.repositories_created.len(),
            self.repositories_present.len(),
            self.pipelines_created.len(),
            self.pipelines_present.len()
        )
    }
}

/// Applies `seed` to `store`: each repository and pipeline it declares is created when missing
/// and left alone when present (a repository matched by its name, a pipeline by its name
/// within its repository), whatever their fields say. Creating goes through the ordinary
/// store methods ([`Store::create_repository`], [`Store::create_pipeline`]), the calls the
/// control API and the Hub API make, so it is journaled and checked as theirs are; a pipeline
/// is created by its namespace's user. The file's users must be users of the store already
/// (they join it when it starts); nothing is created unless they are, and unless every
/// pipeline's namespace has a user.
pub(crate) fn apply(store: &Store, seed: &SeedFile) -> Result<Applied, FileError> {
    for user in &seed.users {
        if !store.check_password(&user.name, &user.password) {
            return Err(seed.at(
                user.location,
                format!(
                    "user `{}` is not a user of this emulator with that password: users are \
                     fixed when it starts (give the file at start: serve --config, \
                     HubBuilder::seed)",
                    user.name
                ),
            ));
        }
    }
    seed.check_owners(|name| store.is_user(name))?;
    let mut applied = Applied {
        file: seed.file.clone(),
        users: seed.users.len(),
        ..Applied::default()
    };
    for declared in &seed.repositories {
        let failed = |err: Error| {
            seed.at(
                declared.location,
                format!("repository `{}`: {err}", declared.name),
            )
        };
        if store.repository(&declared.name).is_ok() {
            applied.repositories_present.push(declared.name.clone());
            continue;
        }
        // Read again now, as the control API reads its body, so that it is created now.
        let repository =
            Repository::from_json(&declared.body).map_err(|e| failed(Error::Invalid(e)))?;
        match store.create_repository(repository) {
            Ok(_) => applied.repositories_created.push(declared.name.clone()),
            // Created in between by someone else: present.
            Err(Error::Conflict(_)) => applied.repositories_present.push(declared.name.clone()),
            Err(err) => return Err(failed(err)),
        }
    }
    for declared in &seed.pipelines {
        let named = (declared.repository.clone(), declared.name.clone());
        let failed = |err: Error| {
            let detail = match err {
                Error::Invalid(errors) => errors
                    .to_json()
                    .as_object()
                    .and_then(|o| o.values().next())
                    .and_then(|v| v.get(0))
                    .and_then(|v| v.as_str())
                    .map_or_else(|| errors.to_json().to_string(), str::to_owned),
                other => other.to_string(),
            };
            seed.at(
                declared.location,
                format!(
                    "pipeline `{}` of {}: {detail}",
                    declared.name, declared.repository
                ),
            )
        };
        let present = store
            .pipelines(&declared.repository)
            .map_err(&failed)?
            .iter()
            .any(|p| p.name == declared.name);
        if present {
            applied.pipelines_present.push(named);
            continue;
        }
        let spec = PipelineSpec::from_json(&declared.body, true).map_err(|e| failed(e.into()))?;
        store
            .create_pipeline(&declared.repository, spec, &declared.repository.namespace)
            .map_err(&failed)?;
        applied.pipelines_created.push(named);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SEED: &str = "\
users: [{username: alice, password: s3cret}]
repositories: [{namespace: alice, name: app, description: The app}]
pipelines:
  - {repository: alice/app, name: p, webhooks: [{name: a, hook_url: \"http://127.0.0.1:9/\"}]}
";

    #[test]
    fn applying_twice_to_one_store_creates_once_and_leaves_the_rest_alone() {
        let seed = SeedFile::parse(SEED, "seed.yaml").unwrap();
        let config = Config::default().with_seed(seed.clone());
        let (store, _queue) = Store::new(config, "http://hub");
        let first = apply(&store, &seed).unwrap();
        let app = RepoName::new("alice", "app").unwrap();
        assert_eq!(first.repositories_created.len(), 1);
        assert_eq!(first.repositories_created[0], app);
        assert_eq!(first.pipelines_created, [(app.clone(), "p".to_owned())]);
        let second = apply(&store, &seed).unwrap();
        assert!(second.created_nothing(), "{second:?}");
        assert_eq!(second.repositories_present.len(), 1);
        assert_eq!(second.pipelines_present, [(app.clone(), "p".to_owned())]);
        assert_eq!(store.pipelines(&app).unwrap().len(), 1);
        assert_eq!(store.repository(&app).unwrap().description, "The app");
    }
}
