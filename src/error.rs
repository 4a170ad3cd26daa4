//! The domain's errors: each says what is wrong in the domain's words. Each surface renders
//! them in its own dialect in exactly one place (the Hub and control APIs' JSON in
//! `server::respond`, the fuzz-receiver's callback listener through the same function);
//! nothing here knows about HTTP.

use std::fmt;

use crate::model::fields::FieldErrors;
use crate::model::repository::RepoName;

/// Why a request was refused. Nothing in the state changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// One or more fields are invalid (one list of messages per field).
    Invalid(FieldErrors),
    /// The request as a whole is malformed.
    BadRequest(String),
    /// A callback for a step that does not await one (R7).
    UpdateNotAllowed,
    /// No valid credentials.
    Unauthorized(String),
    /// The user does not own the namespace.
    Forbidden(String),
    /// No such thing.
    NotFound(Missing),
    /// It exists already.
    Conflict(String),
    /// Too much work is pending to take more now; try again once some has finished.
    Busy(String),
}

impl From<crate::model::callback::CallbackRefusal> for Error {
    fn from(refusal: crate::model::callback::CallbackRefusal) -> Error {
        match refusal {
            crate::model::callback::CallbackRefusal::Malformed(message) => {
                Error::BadRequest(message)
            }
            crate::model::callback::CallbackRefusal::Invalid(errors) => Error::Invalid(errors),
        }
    }
}

/// What was looked for and not found.
#[derive(Clone, Debug, PartialEq)]
pub enum Missing {
    /// A repository.
    Repository(RepoName),
    /// A repository's pipeline, by slug.
    Pipeline(RepoName, String),
    /// A repository's tag, by name.
    Tag(RepoName, String),
    /// A run, by id.
    Run(u64),
    /// A step, by the hook id of its callback URL.
    Hook(String),
    /// Anything else, described.
    Other(String),
}

impl Error {
    /// A single-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> Error {
        Error::Invalid(FieldErrors::single(field, message))
    }

    /// A "not found" described in words.
    pub fn not_found(what: impl Into<String>) -> Error {
        Error::NotFound(Missing::Other(what.into()))
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Error {
        Error::Invalid(errors)
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Repository(name) => write!(f, "Repository {name} does not exist."),
            Missing::Pipeline(name, slug) => {
                write!(f, "Repository {name} has no webhook pipeline '{slug}'.")
            }
            Missing::Tag(name, tag) => write!(
                f,
                "Repository {name} has no tag '{tag}': a tag exists once it is pushed."
            ),
            Missing::Run(id) => write!(f, "There is no run {id}."),
            Missing::Hook(id) => write!(f, "No webhook delivery has hook id '{id}'."),
            Missing::Other(text) => f.write_str(text),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(errors) => write!(f, "invalid request: {}", errors.to_json()),
            Error::BadRequest(detail)
            | Error::Unauthorized(detail)
            | Error::Forbidden(detail)
            | Error::Conflict(detail)
            | Error::Busy(detail) => f.write_str(detail),
            Error::NotFound(missing) => missing.fmt(f),
            Error::UpdateNotAllowed => f.write_str("Update not allowed"),
        }
    }
}

impl std::error::Error for Error {}
