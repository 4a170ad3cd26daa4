//! The callback a receiver sends to report its result (rule R8 of the SPEC).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fields::{expect_object, is_absolute_http_url, FieldErrors, Fields};

/// Longest `description` Docker Hub accepts, in Unicode scalar values.
pub const MAX_DESCRIPTION: usize = 255;
/// Longest `context` Docker Hub accepts, in Unicode scalar values.
pub const MAX_CONTEXT: usize = 100;

/// The result a receiver reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackState {
    /// Go on with the chain.
    Success,
    /// The receiver's job failed: stop the chain.
    Failure,
    /// The receiver could not do its job: stop the chain.
    Error,
}

impl CallbackState {
    fn parse(text: &str) -> Option<CallbackState> {
        match text {
            "success" => Some(CallbackState::Success),
            "failure" => Some(CallbackState::Failure),
            "error" => Some(CallbackState::Error),
            _ => None,
        }
    }
}

/// A validated callback body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// `success`, `failure` or `error`.
    pub state: CallbackState,
    /// At most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// At most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// An absolute http(s) URL with details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

/// Why a callback body is refused (R8).
#[derive(Clone, Debug, PartialEq)]
pub enum CallbackRefusal {
    /// Not JSON at all: Django REST framework's parse error, answered as `{"detail": ...}`
    /// like every other malformed body.
    Malformed(String),
    /// JSON, with these fields wrong.
    Invalid(FieldErrors),
}

impl CallbackRefusal {
    /// The refusal as the callback endpoint answers it: `{"detail": ...}` for a body that is
    /// not JSON, one list of messages per field otherwise.
    pub fn to_json(&self) -> Value {
        match self {
            CallbackRefusal::Malformed(message) => serde_json::json!({ "detail": message }),
            CallbackRefusal::Invalid(errors) => errors.to_json(),
        }
    }
}

impl fmt::Display for CallbackRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackRefusal::Malformed(message) => f.write_str(message),
            CallbackRefusal::Invalid(errors) => write!(f, "{}", errors.to_json()),
        }
    }
}

impl Callback {
    /// A callback with just a state.
    pub fn new(state: CallbackState) -> Callback {
        Callback {
            state,
            description: None,
            context: None,
            target_url: None,
        }
    }

    /// Validates a callback body as Docker Hub does, naming every offending field.
    /// Unknown fields are ignored.
    pub fn validate(body: &[u8]) -> Result<Callback, CallbackRefusal> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|err| CallbackRefusal::Malformed(format!("JSON parse error - {err}")))?;
        Callback::from_json(&value).map_err(CallbackRefusal::Invalid)
    }

    /// Validates an already-parsed callback body.
    pub fn from_json(value: &Value) -> Result<Callback, FieldErrors> {
        let object = expect_object(value)?;
        let mut fields = Fields::new(object);
        let state = match fields.raw("state") {
            None => {
                fields.errors.add("state", super::fields::REQUIRED);
                None
            }
            Some(Value::String(text)) => {
                let state = CallbackState::parse(text);
                if state.is_none() {
                    fields
                        .errors
                        .add("state", format!("\"{text}\" is not a valid choice."));
                }
                state
            }
            Some(Value::Null) => {
                fields.errors.add("state", super::fields::NOT_NULL);
                None
            }
            Some(other) => {
                fields
                    .errors
                    .add("state", format!("\"{other}\" is not a valid choice."));
                None
            }
        };
        let description = fields.string("description");
        let context = fields.string("context");
        let target_url = fields.string("target_url");
        if let Some(text) = &description {
            fields.max_chars("description", text, MAX_DESCRIPTION);
        }
        if let Some(text) = &context {
            fields.max_chars("context", text, MAX_CONTEXT);
        }
        if let Some(url) = &target_url {
            if !is_absolute_http_url(url) {
                fields.errors.add("target_url", "Enter a valid URL.");
            }
        }
        let errors = fields.errors;
        match state {
            Some(state) if errors.is_empty() => Ok(Callback {
                state,
                description,
                context,
                target_url,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validate(value: Value) -> Result<Callback, Value> {
        Callback::from_json(&value).map_err(|e| e.to_json())
    }

    #[test]
    fn a_minimal_success_is_valid() {
        assert_eq!(
            validate(json!({"state": "success"})),
            Ok(Callback::new(CallbackState::Success))
        );
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(validate(json!({"state": "success", "description": "é".repeat(255)})).is_ok());
        assert_eq!(
            validate(json!({"state": "success", "description": "é".repeat(256)})),
            Err(json!({"description": ["Ensure this field has no more than 255 characters."]}))
        );
        assert!(validate(json!({"state": "error", "context": "😀".repeat(100)})).is_ok());
        assert!(validate(json!({"state": "error", "context": "😀".repeat(101)})).is_err());
    }

    #[test]
    fn every_offending_field_is_named() {
        let errors = validate(json!({
            "state": "done", "description": 5, "context": "x".repeat(101), "target_url": "nope"
        }))
        .unwrap_err();
        for field in ["state", "description", "context", "target_url"] {
            assert!(errors.get(field).is_some(), "{field} missing from {errors}");
        }
    }

    #[test]
    fn non_objects_and_bad_json_are_rejected() {
        assert!(validate(json!([1])).is_err());
        assert!(validate(json!("success")).is_err());
        assert!(Callback::validate(b"{").is_err());
        assert!(Callback::validate(b"\xff").is_err());
        assert!(validate(json!({})).unwrap_err().get("state").is_some());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert!(validate(json!({"state": "failure", "extra": [1, 2]})).is_ok());
    }
}
