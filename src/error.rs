//! The errors the emulator answers with. Each says what is wrong; the HTTP mapping lives in
//! one place, [`crate::server`]'s response module.

use std::fmt;

use crate::model::fields::FieldErrors;

/// Why a request was refused. Nothing in the state changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// One or more fields are invalid (`400`, one list of messages per field).
    Invalid(FieldErrors),
    /// The request as a whole is malformed (`400`, `{"detail": ...}`).
    BadRequest(String),
    /// A callback for a step that does not await one (`400 "Update not allowed"`, R7).
    UpdateNotAllowed,
    /// No valid token (`401`).
    Unauthorized(String),
    /// The user does not own the namespace (`403`).
    Forbidden(String),
    /// No such thing (`404`).
    NotFound(String),
    /// The method is not allowed on this path (`405`); lists the allowed ones.
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The methods the path takes.
        allowed: &'static str,
    },
    /// It exists already (`409`).
    Conflict(String),
    /// The body is over the limit (`413`).
    PayloadTooLarge(usize),
}

impl Error {
    /// A single-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> Error {
        Error::Invalid(FieldErrors::single(field, message))
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Error {
        Error::Invalid(errors)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(errors) => write!(f, "invalid request: {}", errors.to_json()),
            Error::BadRequest(detail)
            | Error::Unauthorized(detail)
            | Error::Forbidden(detail)
            | Error::NotFound(detail)
            | Error::Conflict(detail) => f.write_str(detail),
            Error::UpdateNotAllowed => f.write_str("Update not allowed"),
            Error::MethodNotAllowed { method, .. } => {
                write!(f, "Method \"{method}\" not allowed.")
            }
            Error::PayloadTooLarge(limit) => {
                write!(f, "Request body is larger than the limit of {limit} bytes.")
            }
        }
    }
}

impl std::error::Error for Error {}
