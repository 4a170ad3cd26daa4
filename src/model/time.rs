//! Wall-clock instants as the emulator records and shows them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock instant, shown as RFC 3339 with microseconds (`2026-11-22T10:00:00.123456Z`),
/// the way Docker Hub's API shows its `created` and `last_updated` fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp(SystemTime::now())
    }

    /// The instant `secs` seconds after the Unix epoch.
    /// Negative and NaN inputs clamp to the epoch, anything past the year 9999 (which RFC 3339
    /// cannot write) to its last second.
    pub fn from_unix_seconds(secs: f64) -> Self {
        const LAST_SECOND_OF_9999: f64 = 253_402_300_799.0;
        let secs = if secs.is_nan() {
            0.0
        } else {
            secs.clamp(0.0, LAST_SECOND_OF_9999)
        };
        Timestamp(UNIX_EPOCH + Duration::from_secs_f64(secs))
    }

    /// Seconds since the Unix epoch, with the fraction.
    pub fn unix_seconds(self) -> f64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Whole seconds since the Unix epoch.
    pub fn unix_whole_seconds(self) -> i64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    /// `duration` after this time (at most the end of the year 9999, which RFC 3339 can write).
    pub fn after(self, duration: Duration) -> Timestamp {
        let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        Timestamp(self.0.checked_add(duration).map_or(last, |t| t.min(last)))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        self.0.duration_since(earlier.0).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_micros(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text)
            .map(Timestamp)
            .map_err(|err| serde::de::Error::custom(format!("invalid timestamp {text:?}: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_float_makes_a_timestamp() {
        for secs in [f64::NAN, f64::INFINITY, -1.0, 1e300, 1.5] {
            let _ = Timestamp::from_unix_seconds(secs).to_string();
        }
        assert_eq!(Timestamp::from_unix_seconds(1.5).unix_seconds(), 1.5);
    }
}
