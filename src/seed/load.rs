//! Reading a seed file: YAML to [`SeedDef`], then each repository and pipeline through the
//! API's own validators, then the checks across entries (duplicates, a pipeline's repository).
//! Every error points at its file, line and column.

use std::path::Path;

use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::format::{PipelineDef, RepositoryDef, SeedDef};
use super::{SeedFile, SeedPipeline, SeedRepository, SeedUser};
use crate::model::fields::FieldErrors;
use crate::model::pipeline::{slugify, PipelineSpec};
use crate::model::repository::{RepoName, Repository};
use crate::yaml::{self, did_you_mean, FileError};

/// Reads and checks one seed file.
pub(super) fn load(path: &Path) -> Result<SeedFile, FileError> {
    let (file, text) = yaml::read(path)?;
    parse(&text, &file)
}

/// Parses and checks seed-file text; `file` names it in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<SeedFile, FileError> {
    // An empty file (or one of comments only) declares nothing.
    let def: Option<SeedDef> = yaml::from_str(text, file)?;
    let Some(def) = def else {
        return Ok(SeedFile {
            file: file.to_owned(),
            users: Vec::new(),
            repositories: Vec::new(),
            pipelines: Vec::new(),
        });
    };
    let at = |location: Location, message: String| FileError::at(file, location, message);
    let mut users: Vec<SeedUser> = Vec::new();
    for user in &def.users {
        let name = &user.value.username;
        check_username(&name.value).map_err(|m| at(name.referenced, m))?;
        if let Some(first) = users.iter().find(|u| u.name == name.value) {
            return Err(at(
                name.referenced,
                format!(
                    "user `{}` is declared twice (first on line {})",
                    name.value,
                    first.location.line()
                ),
            ));
        }
        users.push(SeedUser {
            name: name.value.clone(),
            password: user.value.password.value.clone(),
            location: name.referenced,
        });
    }
    let mut repositories: Vec<SeedRepository> = Vec::new();
    for (index, entry) in def.repositories.iter().enumerate() {
        let repository = repository(entry, index).map_err(|(l, m)| at(l, m))?;
        if let Some(first) = repositories.iter().find(|r| r.name == repository.name) {
            return Err(at(
                entry.referenced,
                format!(
                    "repository `{}` is declared twice (first on line {})",
                    repository.name,
                    first.location.line()
                ),
            ));
        }
        repositories.push(repository);
    }
    let mut pipelines: Vec<SeedPipeline> = Vec::new();
    for (index, entry) in def.pipelines.iter().enumerate() {
        let pipeline = pipeline(entry, index, &repositories).map_err(|(l, m)| at(l, m))?;
        let slug = slugify(&pipeline.name);
        let twin = pipelines
            .iter()
            .find(|p| p.repository == pipeline.repository && slugify(&p.name) == slug);
        if let Some(first) = twin {
            return Err(at(
                entry.referenced,
                format!(
                    "pipeline `{}` of {} is declared twice (first on line {}, as `{}`; names \
                     that make the same slug `{slug}` count as one)",
                    pipeline.name,
                    pipeline.repository,
                    first.location.line(),
                    first.name
                ),
            ));
        }
        pipelines.push(pipeline);
    }
    Ok(SeedFile {
        file: file.to_owned(),
        users,
        repositories,
        pipelines,
    })
}

/// A user name as `--user` takes one: not empty, no `:`, no white space.
fn check_username(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && !name.contains(':')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "user `{name}` is not a user name: it may not be empty nor hold `:` or spaces"
        ))
    }
}

type Located = (Location, String);

fn repository(entry: &Spanned<RepositoryDef>, index: usize) -> Result<SeedRepository, Located> {
    let def = &entry.value;
    let body = Value::Object(def.body());
    let label = match (def.namespace.as_ref(), def.name.as_ref()) {
        (Some(ns), Some(name)) => match (ns.value.as_str(), name.value.as_str()) {
            (Some(ns), Some(name)) => format!("repository `{ns}/{name}`"),
            _ => format!("repository {}", index + 1),
        },
        _ => format!("repository {}", index + 1),
    };
    // The control API's own reading of its body: the same rules, the same messages.
    let repository = Repository::from_json(&body).map_err(|errors| {
        let located = located(&errors, entry.referenced, |field| {
            written_at(def.written(), field)
        });
        (located.0, format!("{label}: {}", located.1))
    })?;
    Ok(SeedRepository {
        name: repository.repo_name(),
        body,
        location: entry.referenced,
    })
}

fn pipeline(
    entry: &Spanned<PipelineDef>,
    index: usize,
    repositories: &[SeedRepository],
) -> Result<SeedPipeline, Located> {
    let def = &entry.value;
    let label = match def.name.as_ref().and_then(|n| n.value.as_str()) {
        Some(name) => format!("pipeline `{name}`"),
        None => format!("pipeline {}", index + 1),
    };
    let written = &def.repository;
    let repository = RepoName::parse(&written.value).map_err(|errors| {
        (
            written.referenced,
            format!(
                "{label}: repository `{}`: {}",
                written.value,
                first_message(&errors)
            ),
        )
    })?;
    if !repositories.iter().any(|r| r.name == repository) {
        let declared: Vec<String> = repositories.iter().map(|r| r.name.to_string()).collect();
        let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
        let listed = if declared.is_empty() {
            "none".to_owned()
        } else {
            declared.join(", ")
        };
        return Err((
            written.referenced,
            format!(
                "{label}: repository `{repository}` is not declared under `repositories` \
                 (declared: {listed}){}",
                did_you_mean(&written.value, &declared)
            ),
        ));
    }
    let body = def.body();
    // The Hub API's own reading of a create body.
    let spec = PipelineSpec::from_json(&body, true).map_err(|errors| {
        let located = located(&errors, entry.referenced, |field| {
            // `webhooks`, `webhooks.{i}` or `webhooks.{i}.{key}`.
            let mut path = field.split('.');
            if path.next() == Some("webhooks") {
                let webhooks = def.webhooks.as_ref()?;
                let Some(index) = path.next() else {
                    return Some(webhooks.referenced);
                };
                let webhook = webhooks.value.get(index.parse::<usize>().ok()?)?;
                let Some(key) = path.next() else {
                    return Some(webhook.referenced);
                };
                return written_at(webhook.value.written(), key);
            }
            written_at(def.written(), field)
        });
        (located.0, format!("{label}: {}", located.1))
    })?;
    Ok(SeedPipeline {
        repository,
        name: spec.name.unwrap_or_default(),
        body,
        location: entry.referenced,
    })
}

/// The first message of a field's list.
fn first_message(errors: &FieldErrors) -> String {
    errors
        .to_json()
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|v| v.get(0))
        .and_then(Value::as_str)
        .unwrap_or("invalid")
        .to_owned()
}

/// The first error in the file of an API's [`FieldErrors`], located: `field: message`, at
/// where `locate` says the field was written (the entry itself for a missing field). A list
/// of objects (a pipeline's webhooks) is located item by item as `field.{i}.{key}`.
/// Where field `field` was written, among the fields `written`.
fn written_at(written: Vec<(&'static str, &Spanned<Value>)>, field: &str) -> Option<Location> {
    written
        .into_iter()
        .find(|(key, _)| *key == field)
        .map(|(_, value)| value.referenced)
}

fn located(
    errors: &FieldErrors,
    entry: Location,
    locate: impl Fn(&str) -> Option<Location>,
) -> Located {
    let mut found: Vec<Located> = Vec::new();
    for (field, value) in errors.to_json().as_object().into_iter().flatten() {
        match value {
            Value::Array(items) if items.iter().all(Value::is_string) => {
                let location = locate(field).unwrap_or(entry);
                found.push((location, format!("{field}: {}", messages(field, value))));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    for (key, value) in item.as_object().into_iter().flatten() {
                        let location = locate(&format!("{field}.{i}.{key}"))
                            .or_else(|| locate(&format!("{field}.{i}")))
                            .unwrap_or(entry);
                        let message = format!("{field} {}: {key}: {}", i + 1, messages(key, value));
                        found.push((location, message));
                    }
                }
            }
            other => found.push((locate(field).unwrap_or(entry), format!("{field}: {other}"))),
        }
    }
    found
        .into_iter()
        .min_by_key(|(location, _)| (location.line(), location.column()))
        .unwrap_or((entry, "invalid".to_owned()))
}

/// A field's messages as one sentence or more.
fn messages(field: &str, value: &Value) -> String {
    let text: Vec<&str> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    hint(field, &text.join(" "))
}

/// The API answers "Invalid value." for any bad hook URL; a file's reader is told the rule.
fn hint(field: &str, message: &str) -> String {
    if field == "hook_url" && message == "Invalid value." {
        format!("{message} A hook URL is an absolute http:// or https:// URL.")
    } else {
        message.to_owned()
    }
}
