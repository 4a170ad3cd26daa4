//! Reading request bodies field by field, with errors in Docker Hub's (Django REST framework)
//! style: `{"field": ["What is wrong."]}`, every offending field named at once.

use serde_json::{Map, Value};

/// Errors keyed by field name, each a list of messages (or, for a list of objects, a list of
/// per-item error objects), serialised exactly as Docker Hub's API does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One error for one field.
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// Records `message` against `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self
            .0
            .entry(field.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(message.into()));
        }
    }

    /// Records a structured error (such as one object per list item) against `field`.
    pub fn set(&mut self, field: &str, value: Value) {
        self.0.insert(field.to_owned(), value);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `field` has an error.
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn or_ok<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// The JSON body Docker Hub would answer.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// The message for a missing required field.
pub const REQUIRED: &str = "This field is required.";
/// The message for a `null` where a value is needed.
pub const NOT_NULL: &str = "This field may not be null.";

/// The JSON type name Django REST framework uses in "Expected a dictionary, but got X".
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The body as a JSON object, or the error Docker Hub gives for anything else.
pub fn expect_object(value: &Value) -> Result<&Map<String, Value>, FieldErrors> {
    value.as_object().ok_or_else(|| {
        FieldErrors::single(
            "non_field_errors",
            format!(
                "Invalid data. Expected a dictionary, but got {}.",
                type_name(value)
            ),
        )
    })
}

/// A typed view of one JSON object that collects an error per offending field.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    /// The errors found so far.
    pub errors: FieldErrors,
}

impl<'a> Fields<'a> {
    /// Starts reading `object`.
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Fields {
            object,
            errors: FieldErrors::new(),
        }
    }

    /// The raw value of `key`, if present.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key)
    }

    /// An optional string; `null` and other types are errors.
    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.object.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => {
                self.errors.add(key, NOT_NULL);
                None
            }
            _ => {
                self.errors.add(key, "Not a valid string.");
                None
            }
        }
    }

    /// A required string.
    pub fn required_string(&mut self, key: &str) -> Option<String> {
        if !self.object.contains_key(key) {
            self.errors.add(key, REQUIRED);
            return None;
        }
        self.string(key)
    }

    /// An optional boolean (JSON `true`/`false` only).
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.object.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Null => {
                self.errors.add(key, NOT_NULL);
                None
            }
            _ => {
                self.errors.add(key, "Must be a valid boolean.");
                None
            }
        }
    }

    /// An optional non-negative integer.
    pub fn count(&mut self, key: &str) -> Option<u64> {
        match self.object.get(key)? {
            Value::Number(n) if n.is_u64() => n.as_u64(),
            Value::Null => {
                self.errors.add(key, NOT_NULL);
                None
            }
            _ => {
                self.errors
                    .add(key, "A valid non-negative integer is required.");
                None
            }
        }
    }

    /// An optional list of strings.
    pub fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.object.get(key)? {
            Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect();
                if strings.is_none() {
                    self.errors.add(key, "Every item must be a string.");
                }
                strings
            }
            _ => {
                self.errors.add(
                    key,
                    "Expected a list of items but got type \"".to_owned()
                        + type_name(&self.object[key])
                        + "\".",
                );
                None
            }
        }
    }

    /// Checks a string against a character limit counted in Unicode scalar values.
    pub fn max_chars(&mut self, key: &str, value: &str, max: usize) -> bool {
        if value.chars().count() > max {
            self.errors.add(
                key,
                format!("Ensure this field has no more than {max} characters."),
            );
            false
        } else {
            true
        }
    }
}

/// Whether `text` is an absolute `http` or `https` URL with a host, with no white space.
pub fn is_absolute_http_url(text: &str) -> bool {
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Ok(uri) = text.parse::<http::Uri>() else {
        return false;
    };
    let scheme_ok = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    scheme_ok && uri.host().is_some_and(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_http_urls_are_told_apart_from_the_rest() {
        for good in [
            "http://a",
            "https://example.com/hooks/x?y=1",
            "HTTP://127.0.0.1:8080/",
            "http://[::1]:80/a",
        ] {
            assert!(is_absolute_http_url(good), "{good}");
        }
        for bad in [
            "",
            " http://a",
            "http://a ",
            "ftp://a",
            "/relative",
            "example.com",
            "http://",
            "http:///path",
            "http://a/b c",
        ] {
            assert!(!is_absolute_http_url(bad), "{bad:?}");
        }
    }

    #[test]
    fn errors_render_in_django_rest_framework_style() {
        let mut errors = FieldErrors::new();
        errors.add(
            "description",
            "Ensure this field has no more than 255 characters.",
        );
        assert_eq!(
            errors.to_json(),
            serde_json::json!({"description": ["Ensure this field has no more than 255 characters."]})
        );
    }
}
