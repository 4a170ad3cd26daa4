//! Delivery fault plans: what a real webhook sender does to a receiver now and then —
//! deliver twice, deliver two pushes out of order, retry after the receiver already answered,
//! deliver late, or a forged post that only claims to come from the Hub — so a suite can test
//! its receiver's idempotency, ordering and trust.
//!
//! A plan is a seed and a list of rules. Whether a rule hits a delivery is decided from the
//! seed, the rule's place in the list, the run id and the step alone ([`FaultPlan::hits`]),
//! never from a random generator's state or the time: the same pushes against a hub with the
//! same plan make the same faults, on every run. What a fault does is carried out by the
//! delivery engine ([`crate::delivery`]); each extra or altered post is recorded in the
//! deliveries log with a [`FaultNote`] saying which delivery it repeats.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::format::Wait;

/// The longest a fault may hold a delivery back (and the longest `tag-visible-after`).
pub const MAX_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

/// A fault plan: `seed` and `faults` (`serve --fault-plan FILE`, a scenario's `faults`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// What the choices follow from; the same seed makes the same faults.
    #[serde(default)]
    pub seed: u64,
    /// The rules, each tried on every delivery.
    #[serde(default)]
    pub faults: Vec<FaultRule>,
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The same payload (and `callback_url`) is POSTed a second time right after the
    /// receiver answered the first.
    Duplicate,
    /// The delivery is held back until the next push's delivery to the same step of the same
    /// pipeline has been answered (or `delay` has passed, default 2s): the receiver sees the
    /// newer push first.
    OutOfOrder,
    /// The delivery is POSTed again `delay` (default 500ms) after the receiver answered it,
    /// as a sender that never saw the answer would; by then a quick receiver has called back,
    /// so its second callback answers `400 "Update not allowed"`.
    RetryAfterAnswer,
    /// The delivery waits `delay` (default 1s) before it is sent.
    Delay,
    /// After the delivery, one more POST to the same URL with the same headers (the Hub signs
    /// nothing) but a payload for another repository (`claims`, default `forged/<name>`) and a
    /// `callback_url` no step has: a receiver must not act on a repository it does not own.
    Forged,
}

impl FaultKind {
    /// Its name in plans and in the deliveries log.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Duplicate => "duplicate",
            FaultKind::OutOfOrder => "out-of-order",
            FaultKind::RetryAfterAnswer => "retry-after-answer",
            FaultKind::Delay => "delay",
            FaultKind::Forged => "forged",
        }
    }

    fn default_delay(self) -> Duration {
        match self {
            FaultKind::OutOfOrder => Duration::from_secs(2),
            FaultKind::RetryAfterAnswer => Duration::from_millis(500),
            FaultKind::Delay => Duration::from_secs(1),
            FaultKind::Duplicate | FaultKind::Forged => Duration::ZERO,
        }
    }
}

/// One rule of a plan.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// What it does.
    pub kind: FaultKind,
    /// The share of deliveries it hits, 0 to 1 (default 1: every one).
    #[serde(default = "always")]
    pub probability: f64,
    /// Only deliveries of this pipeline (by slug).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Only deliveries of pushes to this repository (`namespace/name`).
    #[serde(default)]
    pub repository: Option<String>,
    /// Only this step's deliveries (1 is the first webhook of a pipeline).
    #[serde(default)]
    pub step: Option<usize>,
    /// `delay`: how long the delivery waits; `retry-after-answer`: how long after the answer
    /// it is sent again; `out-of-order`: how long it waits for a newer push to overtake it.
    #[serde(default)]
    pub delay: Option<Wait>,
    /// `forged`: the repository the forged payload claims (`namespace/name`).
    #[serde(default)]
    pub claims: Option<String>,
}

fn always() -> f64 {
    1.0
}

impl FaultRule {
    /// Its delay, or its kind's default.
    pub fn delay(&self) -> Duration {
        self.delay.map_or(self.kind.default_delay(), |w| w.0)
    }

    /// Whether it may apply to a delivery of `step` (0-based) of `pipeline` on `repository`.
    fn applies(&self, repository: &str, pipeline: &str, step: usize) -> bool {
        self.pipeline.as_deref().is_none_or(|p| p == pipeline)
            && self.repository.as_deref().is_none_or(|r| r == repository)
            && self.step.is_none_or(|s| s == step + 1)
    }
}

/// What a delivery was, when a fault made or changed it: in the deliveries log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultNote {
    /// The fault.
    pub kind: FaultKind,
    /// The delivery (log id) this one repeats, or forges (duplicate, retry-after-answer,
    /// forged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<u64>,
    /// How long it was held back before it was sent (delay, out-of-order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<u64>,
    /// Out of order: the run whose delivery went out first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overtaken_by: Option<u64>,
}

/// Which faults hit one delivery, at most one of each kind (the first rule of a kind that hits).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hits {
    /// Delivered twice.
    pub duplicate: bool,
    /// Held for a newer push, for at most this long.
    pub out_of_order: Option<Duration>,
    /// Sent again this long after its answer.
    pub retry_after: Option<Duration>,
    /// Sent this late.
    pub delay: Option<Duration>,
    /// Followed by a forged post claiming this repository (`None`: the default).
    pub forged: Option<Option<String>>,
}

impl Hits {
    /// Whether nothing hit.
    pub fn is_none(&self) -> bool {
        *self == Hits::default()
    }

    /// How many posts these faults add after the delivery: a duplicate, a forged post, a
    /// retry.
    pub fn extra_posts(&self) -> usize {
        usize::from(self.duplicate)
            + usize::from(self.forged.is_some())
            + usize::from(self.retry_after.is_some())
    }
}

impl FaultPlan {
    /// Reads a plan file (YAML; JSON is YAML too), checked as a scenario's `faults` are.
    pub fn from_file(path: &Path) -> Result<FaultPlan, crate::yaml::FileError> {
        let (file, text) = crate::yaml::read(path)?;
        let plan: FaultPlan = crate::yaml::from_str(&text, &file)?;
        plan.check()
            .map_err(|message| crate::yaml::FileError::whole(&file, message))?;
        Ok(plan)
    }

    /// What a plan may not say: a probability outside 0..=1, `claims` on another kind, a
    /// `claims` that is not `namespace/name`, step 0.
    pub fn check(&self) -> Result<(), String> {
        for (i, rule) in self.faults.iter().enumerate() {
            let at = format!("faults[{i}] ({})", rule.kind.as_str());
            if !(0.0..=1.0).contains(&rule.probability) {
                return Err(format!(
                    "{at}: probability {} is not between 0 and 1",
                    rule.probability
                ));
            }
            if rule.step == Some(0) {
                return Err(format!("{at}: steps count from 1"));
            }
            match (&rule.claims, rule.kind) {
                (Some(claims), FaultKind::Forged) => {
                    crate::model::repository::RepoName::parse(claims)
                        .map_err(|_| format!("{at}: claims `{claims}` is not namespace/name"))?;
                }
                (Some(_), _) => return Err(format!("{at}: only a forged fault claims")),
                (None, _) => {}
            }
            if rule.delay() > MAX_DELAY {
                return Err(format!(
                    "{at}: a delay of {} is longer than the {} a fault may wait",
                    humantime::format_duration(rule.delay()),
                    humantime::format_duration(MAX_DELAY)
                ));
            }
            if rule.delay.is_some() && matches!(rule.kind, FaultKind::Duplicate | FaultKind::Forged)
            {
                return Err(format!("{at}: a {} fault has no delay", rule.kind.as_str()));
            }
        }
        Ok(())
    }

    /// Which faults hit the delivery of `step` (0-based) of run `run_id`, a run of `pipeline`
    /// (slug) on `repository`: decided by the seed, each rule's index, the run id and the step,
    /// nothing else.
    pub fn hits(&self, repository: &str, pipeline: &str, run_id: u64, step: usize) -> Hits {
        let mut hits = Hits::default();
        for (index, rule) in self.faults.iter().enumerate() {
            if !rule.applies(repository, pipeline, step) {
                continue;
            }
            let roll = unit(self.seed, index as u64, run_id, step as u64);
            if roll >= rule.probability {
                continue;
            }
            match rule.kind {
                FaultKind::Duplicate => hits.duplicate = true,
                FaultKind::OutOfOrder => {
                    hits.out_of_order = hits.out_of_order.or(Some(rule.delay()))
                }
                FaultKind::RetryAfterAnswer => {
                    hits.retry_after = hits.retry_after.or(Some(rule.delay()))
                }
                FaultKind::Delay => hits.delay = hits.delay.or(Some(rule.delay())),
                FaultKind::Forged => {
                    hits.forged = hits.forged.clone().or(Some(rule.claims.clone()))
                }
            }
        }
        hits
    }
}

/// A number in `[0, 1)` from the four inputs (SplitMix64 over them in turn).
fn unit(seed: u64, rule: u64, run: u64, step: u64) -> f64 {
    let mut x = seed;
    for part in [rule, run, step] {
        x = mix(x ^ mix(part.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> FaultPlan {
        crate::yaml::from_str(text, "plan.yaml").unwrap()
    }

    #[test]
    fn the_same_seed_hits_the_same_deliveries_and_another_seed_others() {
        let half = "seed: 7\nfaults: [{kind: duplicate, probability: 0.5}]\n";
        let hits = |p: &FaultPlan| -> Vec<bool> {
            (1..=64)
                .map(|run| p.hits("a/b", "p", run, 0).duplicate)
                .collect()
        };
        let once = hits(&plan(half));
        assert_eq!(once, hits(&plan(half)));
        let count = once.iter().filter(|h| **h).count();
        assert!((16..=48).contains(&count), "about half: {count}");
        let other = hits(&plan(
            "seed: 8\nfaults: [{kind: duplicate, probability: 0.5}]\n",
        ));
        assert_ne!(once, other);
    }

    #[test]
    fn rules_apply_only_where_their_filters_say() {
        let p = plan(
            "faults:\n  - {kind: delay, pipeline: deploy, step: 2, delay: 3s}\n  \
             - {kind: forged, repository: acme/app, claims: evil/app}\n",
        );
        assert_eq!(
            p.hits("acme/app", "deploy", 1, 1).delay,
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.hits("acme/app", "deploy", 1, 0).delay, None);
        assert_eq!(p.hits("acme/app", "notify", 1, 1).delay, None);
        assert_eq!(
            p.hits("acme/app", "notify", 1, 0).forged,
            Some(Some("evil/app".to_owned()))
        );
        assert!(p.hits("acme/other", "notify", 1, 0).is_none());
        p.check().unwrap();
    }

    #[test]
    fn mistakes_are_named() {
        let bad = |text: &str| plan(text).check().unwrap_err();
        assert!(bad("faults: [{kind: duplicate, probability: 2}]").contains("between 0 and 1"));
        assert!(bad("faults: [{kind: delay, claims: a/b}]").contains("only a forged fault"));
        assert!(bad("faults: [{kind: forged, claims: nope}]").contains("not namespace/name"));
        assert!(bad("faults: [{kind: duplicate, delay: 1s}]").contains("has no delay"));
        assert!(bad("faults: [{kind: delay, step: 0}]").contains("count from 1"));
        assert!(bad("faults: [{kind: delay, delay: 1000y}]").contains("longer than"));
        let unknown =
            crate::yaml::from_str::<FaultPlan>("faults: [{kind: duplicates}]", "plan.yaml")
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("duplicates"), "{unknown}");
    }
}
