//! Which of Docker Hub's payload shapes a delivery takes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which of Docker Hub's payload shapes to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// The seed document's example: float times, image ids, `comment_count` as a string.
    #[default]
    Legacy,
    /// docs.docker.com today: integer times, no `images`, `comment_count` a number.
    Current,
    /// What real deliveries carried 2017–2022: integer times, `images: []`, `media_type`,
    /// no `comment_count` and no `dockerfile`.
    Observed,
}

impl PayloadFormat {
    /// Every format, for tests and fuzzing.
    pub const ALL: [PayloadFormat; 3] = [
        PayloadFormat::Legacy,
        PayloadFormat::Current,
        PayloadFormat::Observed,
    ];

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Legacy => "legacy",
            PayloadFormat::Current => "current",
            PayloadFormat::Observed => "observed",
        }
    }
}

impl fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PayloadFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PayloadFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!("unknown payload format '{s}'; expected legacy, current or observed")
            })
    }
}
