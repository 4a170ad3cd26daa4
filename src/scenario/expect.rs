//! Expectations on JSON: subset matching with a readable diff, type checks by path, and the
//! placeholders of pushed digests.

use std::collections::BTreeMap;

use serde_json::Value;

use super::format::JsonType;

/// Every place where `actual` does not contain `expected`, as `path: expected X, got Y` lines.
/// Objects match when every expected key matches; lists when they have the same length and
/// each item matches; numbers by value (`1.417566161e+09` equals `1417566161`).
pub fn subset_diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(expected, actual, "", &mut out);
    out
}

fn show(path: &str) -> &str {
    if path.is_empty() {
        "(the whole body)"
    } else {
        path
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, want) in want {
                let at = join(path, key);
                match have.get(key) {
                    Some(have) => diff(want, have, &at, out),
                    None => out.push(format!("{at}: expected {want}, but the key is missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                out.push(format!(
                    "{}: expected {} items {expected}, got {} items {actual}",
                    show(path),
                    want.len(),
                    have.len()
                ));
                return;
            }
            for (i, (want, have)) in want.iter().zip(have).enumerate() {
                diff(want, have, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(want), Value::Number(have)) => {
            if want.as_f64() != have.as_f64() {
                out.push(format!("{}: expected {want}, got {have}", show(path)));
            }
        }
        (want, have) if want == have => {}
        (want, have) => out.push(format!("{}: expected {want}, got {have}", show(path))),
    }
}

/// The value at a dotted path (`push_data.images.0` indexes lists).
pub fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, key| match current {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// Whether the value at `path` has the type `want`; a sentence saying otherwise if not.
pub fn type_check(value: &Value, path: &str, want: JsonType) -> Result<(), String> {
    let found = at_path(value, path);
    let actual = match found {
        None => JsonType::Absent,
        Some(Value::Null) => JsonType::Null,
        Some(Value::Bool(_)) => JsonType::Boolean,
        Some(Value::Number(n)) if n.is_f64() => JsonType::Float,
        Some(Value::Number(_)) => JsonType::Integer,
        Some(Value::String(_)) => JsonType::String,
        Some(Value::Array(_)) => JsonType::Array,
        Some(Value::Object(_)) => JsonType::Object,
    };
    let ok = actual == want
        || (want == JsonType::Number && matches!(actual, JsonType::Integer | JsonType::Float));
    if ok {
        Ok(())
    } else {
        let shown = found.map_or_else(|| "nothing".to_owned(), Value::to_string);
        Err(format!("{path}: expected {want}, got {actual} ({shown})"))
    }
}

/// The digests `push_image` steps pushed, for the placeholders an `expect_delivery` payload
/// may hold in its strings: `${digest}`, the digest the last `push_image` pushed, and
/// `${digest:TAG}`, that of the last `push_image` of `TAG`.
#[derive(Clone, Debug, Default)]
pub struct PushedDigests {
    last: Option<String>,
    by_tag: BTreeMap<String, String>,
}

impl PushedDigests {
    /// A `push_image` of `tag` pushed `digest`.
    pub fn record(&mut self, tag: &str, digest: &str) {
        self.last = Some(digest.to_owned());
        self.by_tag.insert(tag.to_owned(), digest.to_owned());
    }

    /// `expected` with every placeholder replaced; an unknown placeholder, or one that no
    /// earlier `push_image` gives a value, is an error saying so.
    pub fn fill(&self, expected: &Value) -> Result<Value, String> {
        Ok(match expected {
            Value::String(text) => Value::String(self.fill_text(text)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.fill(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| Ok((key.clone(), self.fill(value)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    fn fill_text(&self, text: &str) -> Result<String, String> {
        super::runner::fill_placeholders(text, |name| self.lookup(name).map(str::to_owned))
    }

    fn lookup(&self, name: &str) -> Result<&str, String> {
        match name.split_once(':') {
            None if name == "digest" => self.last.as_deref().ok_or_else(|| {
                "`${digest}` is the digest the last push_image pushed, but no push_image comes \
                 before this step"
                    .to_owned()
            }),
            Some(("digest", tag)) => self.by_tag.get(tag).map(String::as_str).ok_or_else(|| {
                let pushed = if self.by_tag.is_empty() {
                    String::new()
                } else {
                    let tags: Vec<&str> = self.by_tag.keys().map(String::as_str).collect();
                    format!(" (tags pushed: {})", tags.join(", "))
                };
                format!(
                    "`${{{name}}}`: no push_image of tag `{tag}` comes before this step{pushed}"
                )
            }),
            _ => Err(format!(
                "`${{{name}}}` is not a placeholder: a payload may hold `${{digest}}` (the \
                 digest the last push_image pushed) or `${{digest:TAG}}` (that of the last \
                 push_image of TAG); environment variables are substituted only in receiver \
                 urls"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subset_matches_and_differences_are_listed_by_path() {
        let actual = json!({"push_data": {"tag": "v1", "images": ["a"]}, "n": 1.0});
        assert!(subset_diff(&json!({"push_data": {"tag": "v1"}, "n": 1}), &actual).is_empty());
        let diff = subset_diff(&json!({"push_data": {"tag": "v2", "pusher": "x"}}), &actual);
        assert_eq!(
            diff,
            [
                "push_data.pusher: expected \"x\", but the key is missing",
                "push_data.tag: expected \"v2\", got \"v1\"",
            ]
        );
    }

    #[test]
    fn types_tell_floats_from_integers() {
        let value: Value =
            serde_json::from_str(r#"{"a": 1.417566161e+09, "b": 1417566161}"#).unwrap();
        assert!(type_check(&value, "a", JsonType::Float).is_ok());
        assert!(type_check(&value, "b", JsonType::Integer).is_ok());
        assert!(type_check(&value, "b", JsonType::Float).is_err());
        assert!(type_check(&value, "c", JsonType::Absent).is_ok());
        assert!(type_check(&value, "a", JsonType::Number).is_ok());
    }

    #[test]
    fn placeholders_name_pushed_digests() {
        let mut pushed = PushedDigests::default();
        let expected = json!({"push_data": {"images": ["${digest}"], "tag": "v1"}, "n": 1});
        let err = pushed.fill(&expected).unwrap_err();
        assert!(err.contains("no push_image comes before"), "{err}");
        pushed.record("v1", "sha256:aa");
        pushed.record("v2", "sha256:bb");
        assert_eq!(
            pushed.fill(&expected).unwrap(),
            json!({"push_data": {"images": ["sha256:bb"], "tag": "v1"}, "n": 1})
        );
        assert_eq!(
            pushed.fill(&json!("acme/app@${digest:v1}")).unwrap(),
            json!("acme/app@sha256:aa")
        );
        let err = pushed.fill(&json!("${digest:v3}")).unwrap_err();
        assert!(err.ends_with("(tags pushed: v1, v2)"), "{err}");
        let err = pushed.fill(&json!("${HOME}")).unwrap_err();
        assert!(err.contains("is not a placeholder"), "{err}");
        let err = pushed.fill(&json!("${digest")).unwrap_err();
        assert!(err.contains("unclosed"), "{err}");
    }
}
