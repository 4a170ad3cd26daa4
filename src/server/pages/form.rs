//! Posted forms: read field by field into the very JSON body the Hub API or the control API
//! takes, so the API's own validation (and its messages) decides; and the errors it answers,
//! sorted back to the fields a person typed into. A forged post (a field missing, repeated,
//! of another type, too long) meets the same validation as a JSON body would.

use serde_json::{json, Map, Value};

use crate::model::fields::FieldErrors;

/// The fields of an `application/x-www-form-urlencoded` body, in order.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Reads a body; malformed escapes and bytes that are not UTF-8 are kept as text, so
    /// whatever was sent reaches validation.
    pub(crate) fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `name` as a JSON string when given and not blank (an empty optional field means "not
    /// given", as a person leaving it empty means).
    fn optional(&self, name: &str) -> Option<Value> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| Value::String(v.to_owned()))
    }
}

/// An API's errors, by field, as its `FieldErrors` answered them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Errors(Map<String, Value>);

impl Errors {
    /// The errors of a refused body.
    pub(crate) fn of(errors: &FieldErrors) -> Errors {
        match errors.to_json() {
            Value::Object(map) => Errors(map),
            _ => Errors::default(),
        }
    }

    /// One message about the form as a whole.
    pub(crate) fn general(message: impl Into<String>) -> Errors {
        Errors::of(&FieldErrors::single("non_field_errors", message))
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The messages of `field` (those that are text).
    pub(crate) fn field(&self, field: &str) -> Vec<String> {
        texts(self.0.get(field))
    }

    /// The messages of `sub` in item `index` of the list field `field`.
    pub(crate) fn item(&self, field: &str, index: usize, sub: &str) -> Vec<String> {
        texts(
            self.0
                .get(field)
                .and_then(|v| v.get(index))
                .and_then(|item| item.get(sub)),
        )
    }

    /// The messages no field of the form shows, each with its field's name: nothing the API
    /// said goes unshown.
    pub(crate) fn others(&self, shown: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(field, _)| !shown.contains(&field.as_str()))
            .flat_map(|(field, value)| {
                let all: Vec<String> = match value {
                    Value::Array(items) => items.iter().flat_map(|i| texts(Some(i))).collect(),
                    other => texts(Some(other)),
                };
                all.into_iter().map(move |message| match field.as_str() {
                    "non_field_errors" | "detail" => message,
                    field => format!("{field}: {message}"),
                })
            })
            .collect()
    }
}

/// The text messages in a value: a string, or the strings of a list (nested objects are
/// reached through [`Errors::item`]).
fn texts(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Some(Value::Object(map)) => map.values().flat_map(|v| texts(Some(v))).collect(),
        _ => Vec::new(),
    }
}

/// The webhook pipeline form: a name, the chain's URLs, the final-callback checkbox and the
/// payload format, as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PipelineForm {
    /// The name, if the field was sent.
    pub(crate) name: Option<String>,
    /// The URL fields, in chain order, blank ones included (there is always at least one).
    pub(crate) urls: Vec<String>,
    /// The checkbox's value when ticked (`on`), or whatever a forged post sent.
    pub(crate) expect_final_callback: Option<String>,
    /// `legacy`, `current`, `observed`, or empty for the server's default.
    pub(crate) payload_format: String,
    /// Docker Hub's quirks as `--quirks` takes them, or empty for the server's.
    pub(crate) quirks: String,
}

impl Default for PipelineForm {
    /// The form as first shown: one empty URL, the final callback expected (the API's
    /// default).
    fn default() -> PipelineForm {
        PipelineForm {
            name: None,
            urls: vec![String::new()],
            expect_final_callback: Some("on".to_owned()),
            payload_format: String::new(),
            quirks: String::new(),
        }
    }
}

impl PipelineForm {
    /// The form as posted.
    pub(crate) fn read(form: &Form) -> PipelineForm {
        let mut urls = form.all("hook_url");
        if urls.is_empty() {
            urls.push(String::new());
        }
        PipelineForm {
            name: form.get("name").map(str::to_owned),
            urls,
            expect_final_callback: form.get("expect_final_callback").map(str::to_owned),
            payload_format: form.get("payload_format").unwrap_or_default().to_owned(),
            quirks: form.get("quirks").unwrap_or_default().to_owned(),
        }
    }

    /// Whether the checkbox shows ticked.
    pub(crate) fn checked(&self) -> bool {
        self.expect_final_callback.is_some()
    }

    /// The Hub API's create body, and for each webhook in it the URL field it came from. Blank
    /// URL fields are left out (an "Add webhook" too many); with none left, the API says a
    /// pipeline needs one. Webhooks are named after their place in the chain.
    pub(crate) fn to_json(&self, posted: &Form) -> (Value, Vec<usize>) {
        let mut body = Map::new();
        if let Some(name) = &self.name {
            body.insert("name".into(), json!(name));
        }
        let fields: Vec<usize> = (0..self.urls.len())
            .filter(|&i| !self.urls[i].trim().is_empty())
            .collect();
        if !posted.all("hook_url").is_empty() {
            let webhooks: Vec<Value> = fields
                .iter()
                .enumerate()
                .map(|(place, &i)| {
                    json!({"name": format!("webhook {}", place + 1), "hook_url": self.urls[i]})
                })
                .collect();
            body.insert("webhooks".into(), Value::Array(webhooks));
        }
        let expect = match self.expect_final_callback.as_deref() {
            None => json!(false),
            Some("on" | "true") => json!(true),
            Some(other) => json!(other),
        };
        body.insert("expect_final_callback".into(), expect);
        if !self.payload_format.is_empty() {
            body.insert("payload_format".into(), json!(self.payload_format));
        }
        if !self.quirks.trim().is_empty() {
            body.insert("quirks".into(), json!(self.quirks));
        }
        (Value::Object(body), fields)
    }
}

/// The "push now" form: a tag and a pusher, both optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushForm {
    pub(crate) tag: String,
    pub(crate) pusher: String,
}

impl PushForm {
    /// The form as posted, and the control API's push body it makes.
    pub(crate) fn read(form: &Form) -> (PushForm, Value) {
        let mut body = Map::new();
        for field in ["tag", "pusher"] {
            if let Some(value) = form.optional(field) {
                body.insert(field.into(), value);
            }
        }
        let typed = PushForm {
            tag: form.get("tag").unwrap_or_default().to_owned(),
            pusher: form.get("pusher").unwrap_or_default().to_owned(),
        };
        (typed, Value::Object(body))
    }
}

/// The "send callback" form of one step: what a receiver would send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CallbackForm {
    pub(crate) state: String,
    pub(crate) description: String,
    pub(crate) context: String,
    pub(crate) target_url: String,
}

impl CallbackForm {
    /// The form as posted, and the callback body it makes (a state that was not sent stays
    /// out, so the callback's own validation says it is required).
    pub(crate) fn read(form: &Form) -> (CallbackForm, Value) {
        let mut body = Map::new();
        if let Some(state) = form.get("state") {
            body.insert("state".into(), json!(state));
        }
        for field in ["description", "context", "target_url"] {
            if let Some(value) = form.optional(field) {
                body.insert(field.into(), value);
            }
        }
        let text = |field: &str| form.get(field).unwrap_or_default().to_owned();
        let typed = CallbackForm {
            state: text("state"),
            description: text("description"),
            context: text("context"),
            target_url: text("target_url"),
        };
        (typed, Value::Object(body))
    }
}

/// The home page's "create a repository" form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RepositoryForm {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) description: String,
}

impl RepositoryForm {
    /// The form as posted, and the control API's create body it makes.
    pub(crate) fn read(form: &Form) -> (RepositoryForm, Value) {
        let mut body = Map::new();
        for field in ["namespace", "name"] {
            if let Some(value) = form.get(field) {
                body.insert(field.into(), json!(value));
            }
        }
        if let Some(description) = form.optional("description") {
            body.insert("description".into(), description);
        }
        let text = |field: &str| form.get(field).unwrap_or_default().to_owned();
        let typed = RepositoryForm {
            namespace: text("namespace"),
            name: text("name"),
            description: text("description"),
        };
        (typed, Value::Object(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_url_fields_are_left_out_and_the_rest_keep_their_field() {
        let posted = Form::parse(b"name=CI&hook_url=&hook_url=http%3A%2F%2Fa%2F&hook_url=+");
        let form = PipelineForm::read(&posted);
        let (body, fields) = form.to_json(&posted);
        assert_eq!(fields, vec![1]);
        assert_eq!(
            body,
            json!({"name": "CI", "expect_final_callback": false,
                   "webhooks": [{"name": "webhook 1", "hook_url": "http://a/"}]})
        );
    }

    #[test]
    fn a_forged_checkbox_value_reaches_validation() {
        let posted = Form::parse(b"expect_final_callback=maybe");
        let (body, _) = PipelineForm::read(&posted).to_json(&posted);
        assert_eq!(body, json!({"expect_final_callback": "maybe"}));
    }

    #[test]
    fn errors_are_found_by_field_and_item_and_none_is_lost() {
        let mut errors = FieldErrors::new();
        errors.add("name", "This field may not be blank.");
        errors.set("webhooks", json!([{}, {"hook_url": ["Invalid value."]}]));
        errors.add("registry", "Odd.");
        let errors = Errors::of(&errors);
        assert_eq!(errors.field("name"), ["This field may not be blank."]);
        assert_eq!(errors.item("webhooks", 1, "hook_url"), ["Invalid value."]);
        assert!(errors.item("webhooks", 0, "hook_url").is_empty());
        assert_eq!(errors.others(&["name", "webhooks"]), ["registry: Odd."]);
    }
}
