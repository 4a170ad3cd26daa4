//! Reading hubmock's YAML files (scenarios, seed files): serde's errors with the file, line and
//! column in front, "did you mean" for a misspelt key, and [`FileError`], the one error both
//! loaders report.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::Location;

/// A file hubmock cannot use, and where: `file:line:column: what is wrong`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl FileError {
    /// An error at `location` (line and column) of `file`.
    pub(crate) fn at(file: &str, location: Location, message: impl Into<String>) -> FileError {
        FileError {
            file: file.to_owned(),
            line: Some(location.line() as u32),
            column: Some(location.column() as u32),
            message: message.into(),
        }
    }

    /// An error about the whole file.
    pub(crate) fn whole(file: &str, message: impl Into<String>) -> FileError {
        FileError {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

/// The file's text; its name, as given, names it in errors.
pub(crate) fn read(path: &Path) -> Result<(String, String), FileError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(err) => Err(FileError::whole(
            &file,
            format!("cannot read the file: {err}"),
        )),
    }
}

/// Parses YAML `text` into `T`; an error names `file`, the line and column, and for an unknown
/// key or variant the likely intended one.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, FileError> {
    serde_saphyr::from_str(text).map_err(|err| {
        let location = err.location();
        let message = err.without_snippet().to_string();
        // "line 3 column 5: unknown field ..." -> the location goes in front, once.
        let message = match message.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => rest.to_owned(),
            _ => message,
        };
        let message = message.trim_start_matches("error: ");
        // "... at line 3, column 5" at the end: said in front already.
        let message = match message.rsplit_once(" at line ") {
            Some((head, tail))
                if tail.split(", column ").all(|n| n.parse::<u32>().is_ok())
                    && tail.contains(", column ") =>
            {
                head
            }
            _ => message,
        };
        FileError {
            file: file.to_owned(),
            line: location.map(|l| l.line() as u32),
            column: location.map(|l| l.column() as u32),
            message: with_suggestion(message),
        }
    })
}

/// Adds "did you mean `x`?" to serde's unknown-key messages.
fn with_suggestion(message: &str) -> String {
    let unknown = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|prefix| message.split_once(prefix).map(|(_, rest)| rest));
    let Some(rest) = unknown else {
        return message.to_owned();
    };
    let Some((word, rest)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let candidates: Vec<&str> = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))
        .map(|(_, list)| {
            list.split(", ")
                .map(|c| c.trim().trim_matches('`'))
                .collect()
        })
        .unwrap_or_default();
    format!("{message}{}", did_you_mean(word, &candidates))
}

/// `"; did you mean `x`?"` when one of `candidates` is a likely typo of `word`, else nothing.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    nearest(word, candidates)
        .map(|best| format!("; did you mean `{best}`?"))
        .unwrap_or_default()
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
