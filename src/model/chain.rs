//! The webhook-chain rules R1–R11 as a pure state machine: events in, a new run state and
//! effects out. No I/O, no clock, no randomness: the caller passes the time and the hook ids.
//!
//! The server, the scenario runner and the property tests all drive this one module; nothing
//! else decides what a delivery answer, a callback, a timeout or a deletion does to a run.

use std::time::Duration;

use super::callback::{Callback, CallbackRefusal, CallbackState};
use super::format::PayloadFormat;
use super::pipeline::Pipeline;
use super::push::{ExtraPost, PushEvent, PushRequest};
use super::quirks::Quirks;
use super::repository::{RepoName, Repository};
use super::run::{CallbackRecord, DeliveryResult, Run, RunStatus, Step, StepStatus};
use super::time::Timestamp;

/// Something the caller must do after a transition. The chain decides; callers (the store and
/// the delivery engine) only carry effects out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Queue the payload of this step (0-based) for delivery. Its callback is awaited from
    /// this moment on (R4); the engine asks again ([`Event::Sending`]) just before it POSTs.
    Deliver {
        /// The step to deliver.
        step: usize,
    },
    /// POST the queued payload of this step now: the run still wants it.
    Post {
        /// The step being sent.
        step: usize,
    },
    /// Fire [`Event::CallbackTimedOut`] for this step at `deadline` (R9).
    ArmTimer {
        /// The step whose callback is awaited.
        step: usize,
        /// When the wait ends; also kept on the step ([`Step::callback_deadline`]).
        deadline: Timestamp,
    },
    /// The step's wait for its callback is over (its callback came): its timer can go.
    Disarm {
        /// The step whose timer was armed.
        step: usize,
    },
    /// The run ended with this status: wake whoever waits for it and disarm its timers.
    Finished {
        /// Its final status.
        status: RunStatus,
    },
}

/// Something that happened to a run.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// A delivery was answered, failed or timed out.
    Delivered {
        /// The step (0-based).
        step: usize,
        /// How it went.
        result: DeliveryResult,
    },
    /// A callback body arrived for a step's hook id.
    Callback {
        /// The step (0-based).
        step: usize,
        /// The body as [`Callback::validate`] judged it (R8). Validation is pure and may run
        /// before the state lock is taken; whether the verdict counts is decided here.
        body: &'a Result<Callback, CallbackRefusal>,
    },
    /// The step's callback timer ran out (R9).
    CallbackTimedOut {
        /// The step (0-based).
        step: usize,
    },
    /// The pipeline was deleted (R10).
    PipelineDeleted,
    /// A delivery the chain asked for is about to be POSTed (a connection is free). Answered
    /// with [`Effect::Post`] when it still goes out, and an [`Effect::ArmTimer`] when steps
    /// may wait for their callback only `callback_timeout` (R9): the wait counts from the
    /// actual send, not from the queueing.
    Sending {
        /// The step (0-based).
        step: usize,
        /// How long a step may await its callback; `None`: for ever, as the real Hub.
        callback_timeout: Option<Duration>,
    },
}

/// Why a callback was refused; the run is unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejection {
    /// The step does not await a callback (any more): `400 "Update not allowed"` (R7).
    UpdateNotAllowed,
    /// The body broke R8; the step still awaits a corrected callback.
    Invalid(CallbackRefusal),
    /// The run follows the `callback-gone` quirk: its callback URLs are legacy and answer
    /// `404`, whatever the body.
    Gone,
}

/// Whether a delivery's answer counts as delivered (R3).
pub fn delivery_succeeded(result: &DeliveryResult) -> bool {
    result.status.is_some_and(status_counts_as_delivered) && result.error.is_none()
}

/// Whether an answer with this status counts as delivered (R3): a 2xx or 3xx status.
/// Redirects are not followed: the Jenkins plugin answers 302 and means success.
pub fn status_counts_as_delivered(status: u16) -> bool {
    (200..=399).contains(&status)
}

/// The callback URL for a hook id: `{public_url}/u/{ns}/{name}/hook/{id}/`
/// (`/_/{name}/hook/{id}/` for `library`).
pub fn callback_url(public_url: &str, repository: &RepoName, hook_id: &str) -> String {
    format!("{public_url}{}hook/{hook_id}/", repository.hub_path())
}

/// R1's defaults for what a push leaves out: the tag `latest`, the repository's owner as the
/// pusher, and one made-up image id from `new_image_id` (legacy payloads list image ids; a
/// push that names none gets one).
pub fn push_event(
    request: PushRequest,
    repository: &Repository,
    now: Timestamp,
    new_image_id: impl FnOnce() -> String,
) -> PushEvent {
    let mut images = request.images;
    if images.is_empty() {
        images.push(new_image_id());
    }
    PushEvent {
        tag: request.tag.unwrap_or_else(|| "latest".to_owned()),
        pusher: request.pusher.unwrap_or_else(|| repository.owner.clone()),
        images,
        media_type: request.media_type,
        pushed_at: now,
        extra: request.extra,
    }
}

/// R1: a push starts one run of every pipeline of the repository, in the pipelines' order,
/// each with the next id from `next_id`; answers each run with the effects of its start.
/// A platform manifest's extra post ([`ExtraPost::Manifest`]) starts runs only for the
/// pipelines that post per manifest ([`RunStart::every_manifest`], or their
/// `duplicate-per-manifest` quirk).
pub fn fan_out(
    start: &RunStart<'_>,
    pipelines: &[Pipeline],
    mut next_id: impl FnMut() -> u64,
    mut new_hook_id: impl FnMut() -> String,
) -> Vec<(Run, Vec<Effect>)> {
    pipelines
        .iter()
        .filter(|pipeline| start.posts_to(pipeline))
        .map(|pipeline| Run::start(next_id(), start, pipeline, &mut new_hook_id))
        .collect()
}

/// R10: the runs that deleting the pipeline with id `pipeline_id` cancels: its pending ones.
pub fn cancelled_by_deleting<'a>(
    pipeline_id: u64,
    runs: impl Iterator<Item = &'a Run>,
) -> Vec<u64> {
    runs.filter(|r| r.pipeline_id == pipeline_id && r.is_pending())
        .map(|r| r.id)
        .collect()
}

/// What a push's runs need to start, besides their pipelines and ids.
pub struct RunStart<'a> {
    /// The repository pushed to.
    pub repository: &'a RepoName,
    /// The push.
    pub push: PushEvent,
    /// The server's default payload format, used when the pipeline names none.
    pub default_format: PayloadFormat,
    /// The server's quirks, used when the pipeline names none.
    pub default_quirks: Quirks,
    /// Whether a platform manifest's extra post goes to every pipeline
    /// (`--push-events per-manifest`).
    pub every_manifest: bool,
    /// Base of callback URLs, without a trailing slash.
    pub public_url: &'a str,
    /// The time now.
    pub now: Timestamp,
}

impl RunStart<'_> {
    /// The quirks a run of `pipeline` follows: its own, else the server's.
    pub fn quirks(&self, pipeline: &Pipeline) -> Quirks {
        pipeline.quirks_or(self.default_quirks)
    }

    /// The payload format of a run of `pipeline`: its own, else its quirk profile's, else
    /// the server's.
    pub fn format(&self, pipeline: &Pipeline) -> PayloadFormat {
        pipeline
            .payload_format
            .or_else(|| pipeline.quirks.as_ref().and_then(|q| q.format()))
            .unwrap_or(self.default_format)
    }

    /// Whether this push starts a run of `pipeline` (R1, and the extra posts of a push).
    pub fn posts_to(&self, pipeline: &Pipeline) -> bool {
        self.push.extra != Some(ExtraPost::Manifest)
            || posts_per_manifest(pipeline, self.default_quirks, self.every_manifest)
    }
}

/// Whether a platform manifest's extra post ([`ExtraPost::Manifest`]) starts a run of
/// `pipeline`: with `--push-events per-manifest` (`every_manifest`) for every pipeline, else
/// for those following `duplicate-per-manifest` (theirs, or the server's `default_quirks`).
pub fn posts_per_manifest(
    pipeline: &Pipeline,
    default_quirks: Quirks,
    every_manifest: bool,
) -> bool {
    every_manifest || pipeline.quirks_or(default_quirks).duplicate_per_manifest
}

impl Run {
    /// R1, R2: a push starts a run of `pipeline` (copied into the run); step 1 is delivered
    /// at once. `new_hook_id` makes one unguessable id per step.
    pub fn start(
        id: u64,
        start: &RunStart<'_>,
        pipeline: &Pipeline,
        mut new_hook_id: impl FnMut() -> String,
    ) -> (Run, Vec<Effect>) {
        let steps = pipeline
            .webhooks
            .iter()
            .map(|webhook| {
                let hook_id = new_hook_id();
                Step {
                    webhook: webhook.name.clone(),
                    hook_url: webhook.hook_url.clone(),
                    status: StepStatus::Waiting,
                    callback_url: callback_url(start.public_url, start.repository, &hook_id),
                    hook_id,
                    delivered_at: None,
                    callback_deadline: None,
                    delivery: None,
                    callback: None,
                }
            })
            .collect();
        let mut run = Run {
            id,
            repository: start.repository.clone(),
            pipeline: pipeline.slug.clone(),
            pipeline_id: pipeline.id,
            expect_final_callback: pipeline.expect_final_callback,
            payload_format: start.format(pipeline),
            quirks: start.quirks(pipeline),
            status: RunStatus::Pending,
            created: start.now,
            finished: None,
            push: start.push.clone(),
            steps,
        };
        let effects = if run.steps.is_empty() {
            // A pipeline always has a webhook; an imported state might not. Nothing to do.
            vec![run.finish(RunStatus::Success, start.now)]
        } else {
            vec![run.deliver(0, start.now)]
        };
        (run, effects)
    }

    /// Applies one event. Only a callback can be refused; every other event is absorbed
    /// (a late delivery answer is recorded but changes nothing that was already decided).
    pub fn apply(&mut self, event: Event<'_>, now: Timestamp) -> Result<Vec<Effect>, Rejection> {
        match event {
            Event::Delivered { step, result } => Ok(self.delivered(step, result, now)),
            Event::Callback { step, body } => self.callback(step, body, now),
            Event::CallbackTimedOut { step } => Ok(self.timed_out(step, now)),
            Event::PipelineDeleted => Ok(self.cancel(now)),
            Event::Sending {
                step,
                callback_timeout,
            } => Ok(self.sending(step, callback_timeout, now)),
        }
    }

    /// Whether this step accepts a callback now (R7). Without `expect_final_callback` the last
    /// step's delivery alone decides the run (R6), so that step takes no callback at all: the
    /// outcome never depends on whether a callback beat the delivery's answer *(ours)*.
    /// With the `callback-gone` quirk no step takes one: a 2xx/3xx delivery completes it.
    pub fn awaits_callback(&self, step: usize) -> bool {
        self.in_progress(step)
            && !self.quirks.callback_gone
            && (self.expect_final_callback || !self.is_last(step))
    }

    /// Whether a delivery the chain asked for still goes out when a connection frees up: not
    /// once the run was cancelled (R10). A step whose callback came early is still delivered.
    pub fn still_delivers(&self, step: usize) -> bool {
        self.status != RunStatus::Cancelled && step < self.steps.len()
    }

    /// R4, R9: the step's payload is about to be POSTed. If the step still awaits its
    /// callback and callbacks may take only `callback_timeout`, the wait ends that long from
    /// now; the deadline is kept on the step.
    fn sending(
        &mut self,
        step: usize,
        callback_timeout: Option<Duration>,
        now: Timestamp,
    ) -> Vec<Effect> {
        if !self.still_delivers(step) {
            return Vec::new();
        }
        let mut effects = vec![Effect::Post { step }];
        if let Some(timeout) = callback_timeout {
            if self.awaits_callback(step) {
                let deadline = now.after(timeout);
                self.steps[step].callback_deadline = Some(deadline);
                effects.push(Effect::ArmTimer { step, deadline });
            }
        }
        effects
    }

    /// R4 and R9 after a restart (deliveries that were being sent were recorded as failed
    /// first): a step decided to be delivered whose delivery never went out is delivered now,
    /// as long as the run still delivers; a step awaiting its callback until a deadline waits
    /// until `resumed(deadline)` (the time that was left when the last process stopped,
    /// counted from now). Changes only those deadlines.
    pub fn restart(&mut self, resumed: impl Fn(Timestamp) -> Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        for step in 0..self.steps.len() {
            let s = &self.steps[step];
            if s.delivered_at.is_some() && s.delivery.is_none() {
                if self.still_delivers(step) {
                    effects.push(Effect::Deliver { step });
                }
            } else if let Some(deadline) = s.callback_deadline {
                if self.awaits_callback(step) {
                    let deadline = resumed(deadline);
                    self.steps[step].callback_deadline = Some(deadline);
                    effects.push(Effect::ArmTimer { step, deadline });
                }
            }
        }
        effects
    }

    /// R9 after a restart or an import: a timer for every step that awaits its callback until
    /// a deadline (a deadline already past times the step out at once). Changes nothing.
    pub fn resume(&self) -> Vec<Effect> {
        (0..self.steps.len())
            .filter(|&step| self.awaits_callback(step))
            .filter_map(|step| {
                let deadline = self.steps[step].callback_deadline?;
                Some(Effect::ArmTimer { step, deadline })
            })
            .collect()
    }

    /// Whether this step has been delivered and its outcome is still open.
    fn in_progress(&self, step: usize) -> bool {
        self.is_pending()
            && self
                .steps
                .get(step)
                .is_some_and(|s| s.status == StepStatus::AwaitingCallback)
    }

    fn is_last(&self, step: usize) -> bool {
        step + 1 == self.steps.len()
    }

    /// R2, R4: the step is delivered now and awaits its callback from this moment.
    fn deliver(&mut self, step: usize, now: Timestamp) -> Effect {
        let s = &mut self.steps[step];
        s.status = StepStatus::AwaitingCallback;
        s.delivered_at = Some(now);
        Effect::Deliver { step }
    }

    /// Ends the run; steps never reached are skipped (or cancelled with the run).
    fn finish(&mut self, status: RunStatus, now: Timestamp) -> Effect {
        self.status = status;
        self.finished = Some(now);
        for s in &mut self.steps {
            match (s.status, status) {
                (StepStatus::Waiting | StepStatus::AwaitingCallback, RunStatus::Cancelled) => {
                    s.status = StepStatus::Cancelled
                }
                (StepStatus::Waiting, _) => s.status = StepStatus::Skipped,
                _ => {}
            }
        }
        Effect::Finished { status }
    }

    /// R3, R6, R11.
    fn delivered(&mut self, step: usize, result: DeliveryResult, now: Timestamp) -> Vec<Effect> {
        let Some(s) = self.steps.get_mut(step) else {
            return Vec::new();
        };
        let ok = delivery_succeeded(&result);
        s.delivery = Some(result);
        if !self.in_progress(step) {
            return Vec::new();
        }
        if !ok {
            self.steps[step].status = StepStatus::DeliveryFailed;
            return vec![self.finish(RunStatus::Error, now)];
        }
        if self.is_last(step) && !self.expect_final_callback {
            self.steps[step].status = StepStatus::Success;
            return vec![self.finish(RunStatus::Success, now)];
        }
        if self.quirks.callback_gone {
            // Callbacks are gone: the delivery's answer is the step's outcome, and the next
            // URL is called at once.
            self.steps[step].status = StepStatus::Success;
            return vec![if self.is_last(step) {
                self.finish(RunStatus::Success, now)
            } else {
                self.deliver(step + 1, now)
            }];
        }
        Vec::new()
    }

    /// R2, R5, R6, R7, R8.
    fn callback(
        &mut self,
        step: usize,
        body: &Result<Callback, CallbackRefusal>,
        now: Timestamp,
    ) -> Result<Vec<Effect>, Rejection> {
        if self.quirks.callback_gone {
            return Err(Rejection::Gone);
        }
        // R7 before R8: a step that awaits nothing refuses any body, valid or not.
        if !self.awaits_callback(step) {
            return Err(Rejection::UpdateNotAllowed);
        }
        let callback = body.clone().map_err(Rejection::Invalid)?;
        let state = callback.state;
        let s = &mut self.steps[step];
        s.callback = Some(CallbackRecord::new(callback, now));
        // The wait is over now, whatever comes next: the step's timer goes at once rather than
        // at its deadline.
        let disarm = s
            .callback_deadline
            .is_some()
            .then_some(Effect::Disarm { step });
        let effect = match state {
            CallbackState::Success => {
                s.status = StepStatus::Success;
                if self.is_last(step) {
                    self.finish(RunStatus::Success, now)
                } else {
                    self.deliver(step + 1, now)
                }
            }
            CallbackState::Failure => {
                s.status = StepStatus::Failure;
                self.finish(RunStatus::Failure, now)
            }
            CallbackState::Error => {
                s.status = StepStatus::Error;
                self.finish(RunStatus::Error, now)
            }
        };
        Ok(disarm.into_iter().chain([effect]).collect())
    }

    /// R9.
    fn timed_out(&mut self, step: usize, now: Timestamp) -> Vec<Effect> {
        if !self.awaits_callback(step) {
            return Vec::new();
        }
        self.steps[step].status = StepStatus::TimedOut;
        vec![self.finish(RunStatus::Error, now)]
    }

    /// R10.
    fn cancel(&mut self, now: Timestamp) -> Vec<Effect> {
        if !self.is_pending() {
            return Vec::new();
        }
        vec![self.finish(RunStatus::Cancelled, now)]
    }
}

#[cfg(test)]
mod tests;
