//! The reference model: what R1–R11 say should happen, in a few lines per rule.

use hubmock::{RunStatus, StepStatus};
use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

/// How a webhook's receiver answers its deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receiver {
    /// `200`.
    Ok,
    /// `500`.
    Fails,
    /// Nothing listens: the connection is refused.
    Refused,
}

/// What a callback says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    Success,
    Failure,
    Error,
    /// A 256-character description: invalid (R8).
    TooLong,
}

/// What the emulator must answer to a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `200`.
    Accepted,
    /// `400 "Update not allowed"` (R7).
    NotAllowed,
    /// `400` naming the field (R8).
    Invalid,
    /// `404`.
    UnknownHook,
}

#[derive(Clone, Debug)]
pub struct Pipeline {
    pub hooks: Vec<Receiver>,
    pub expect_final: bool,
    pub alive: bool,
}

#[derive(Clone, Debug)]
pub struct Run {
    pub pipeline: usize,
    pub hooks: Vec<Receiver>,
    pub expect_final: bool,
    pub status: RunStatus,
    pub steps: Vec<StepStatus>,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    pub pipelines: Vec<Pipeline>,
    pub runs: Vec<Run>,
    /// The answer the last callback transition must get.
    pub answer: Option<Answer>,
}

#[derive(Clone, Debug)]
pub enum Transition {
    CreatePipeline {
        hooks: Vec<Receiver>,
        expect_final: bool,
    },
    Push,
    Callback {
        run: usize,
        step: usize,
        body: Body,
    },
    UnknownHook,
    DeletePipeline {
        pipeline: usize,
    },
    TimeOut {
        run: usize,
        step: usize,
    },
}

const MAX_PIPELINES: usize = 4;

impl Run {
    fn finish(&mut self, status: RunStatus) {
        self.status = status;
        for step in &mut self.steps {
            *step = match (*step, status) {
                (StepStatus::Waiting | StepStatus::AwaitingCallback, RunStatus::Cancelled) => {
                    StepStatus::Cancelled
                }
                (StepStatus::Waiting, _) => StepStatus::Skipped,
                (other, _) => other,
            };
        }
    }

    /// R2, R3, R6: deliver a step; the receiver's answer is known at once.
    fn deliver(&mut self, step: usize) {
        self.steps[step] = StepStatus::AwaitingCallback;
        let last = step + 1 == self.steps.len();
        match self.hooks[step] {
            Receiver::Ok if last && !self.expect_final => {
                self.steps[step] = StepStatus::Success;
                self.finish(RunStatus::Success);
            }
            Receiver::Ok => {}
            Receiver::Fails | Receiver::Refused => {
                self.steps[step] = StepStatus::DeliveryFailed;
                self.finish(RunStatus::Error);
            }
        }
    }

    fn awaits(&self, step: usize) -> bool {
        self.status == RunStatus::Pending && self.steps[step] == StepStatus::AwaitingCallback
    }
}

fn receiver() -> impl Strategy<Value = Receiver> {
    prop_oneof![6 => Just(Receiver::Ok), 1 => Just(Receiver::Fails), 1 => Just(Receiver::Refused)]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        5 => Just(Body::Success),
        1 => Just(Body::Failure),
        1 => Just(Body::Error),
        1 => Just(Body::TooLong),
    ]
}

/// Picks a run and one of its steps.
fn run_and_step(state: &State) -> BoxedStrategy<(usize, usize)> {
    let sizes: Vec<usize> = state.runs.iter().map(|r| r.steps.len()).collect();
    (0..sizes.len())
        .prop_flat_map(move |run| (Just(run), 0..sizes[run]))
        .boxed()
}

pub struct ChainModel;

impl ReferenceStateMachine for ChainModel {
    type State = State;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<State> {
        Just(State::default()).boxed()
    }

    fn transitions(state: &State) -> BoxedStrategy<Transition> {
        let create = (prop::collection::vec(receiver(), 1..=4), any::<bool>()).prop_map(
            |(hooks, expect_final)| Transition::CreatePipeline {
                hooks,
                expect_final,
            },
        );
        let mut choices: Vec<(u32, BoxedStrategy<Transition>)> = vec![
            (3, create.boxed()),
            (4, Just(Transition::Push).boxed()),
            (1, Just(Transition::UnknownHook).boxed()),
        ];
        if !state.runs.is_empty() {
            let callback = (run_and_step(state), body())
                .prop_map(|((run, step), body)| Transition::Callback { run, step, body });
            choices.push((8, callback.boxed()));
            let timeout =
                run_and_step(state).prop_map(|(run, step)| Transition::TimeOut { run, step });
            choices.push((1, timeout.boxed()));
        }
        if !state.pipelines.is_empty() {
            let delete = (0..state.pipelines.len())
                .prop_map(|pipeline| Transition::DeletePipeline { pipeline });
            choices.push((1, delete.boxed()));
        }
        proptest::strategy::Union::new_weighted(choices).boxed()
    }

    fn preconditions(state: &State, transition: &Transition) -> bool {
        let step_exists =
            |run: usize, step: usize| state.runs.get(run).is_some_and(|r| step < r.steps.len());
        match transition {
            Transition::CreatePipeline { .. } => state.pipelines.len() < MAX_PIPELINES,
            Transition::Push | Transition::UnknownHook => true,
            Transition::Callback { run, step, .. } | Transition::TimeOut { run, step } => {
                step_exists(*run, *step)
            }
            Transition::DeletePipeline { pipeline } => {
                state.pipelines.get(*pipeline).is_some_and(|p| p.alive)
            }
        }
    }

    fn apply(mut state: State, transition: &Transition) -> State {
        state.answer = None;
        match transition {
            Transition::CreatePipeline {
                hooks,
                expect_final,
            } => state.pipelines.push(Pipeline {
                hooks: hooks.clone(),
                expect_final: *expect_final,
                alive: true,
            }),
            // R1: one run per pipeline, in creation order; step 1 at once.
            Transition::Push => {
                for (index, pipeline) in state.pipelines.iter().enumerate() {
                    if !pipeline.alive {
                        continue;
                    }
                    let mut run = Run {
                        pipeline: index,
                        hooks: pipeline.hooks.clone(),
                        expect_final: pipeline.expect_final,
                        status: RunStatus::Pending,
                        steps: vec![StepStatus::Waiting; pipeline.hooks.len()],
                    };
                    run.deliver(0);
                    state.runs.push(run);
                }
            }
            // R5–R8: only an awaited step takes a callback, and only a valid one.
            Transition::Callback { run, step, body } => {
                let r = &mut state.runs[*run];
                let answer = if !r.awaits(*step) {
                    Answer::NotAllowed
                } else {
                    match body {
                        Body::TooLong => Answer::Invalid,
                        Body::Success => {
                            r.steps[*step] = StepStatus::Success;
                            if step + 1 == r.steps.len() {
                                r.finish(RunStatus::Success);
                            } else {
                                r.deliver(step + 1);
                            }
                            Answer::Accepted
                        }
                        Body::Failure => {
                            r.steps[*step] = StepStatus::Failure;
                            r.finish(RunStatus::Failure);
                            Answer::Accepted
                        }
                        Body::Error => {
                            r.steps[*step] = StepStatus::Error;
                            r.finish(RunStatus::Error);
                            Answer::Accepted
                        }
                    }
                };
                state.answer = Some(answer);
            }
            Transition::UnknownHook => state.answer = Some(Answer::UnknownHook),
            // R10.
            Transition::DeletePipeline { pipeline } => {
                state.pipelines[*pipeline].alive = false;
                for run in &mut state.runs {
                    if run.pipeline == *pipeline && run.status == RunStatus::Pending {
                        run.finish(RunStatus::Cancelled);
                    }
                }
            }
            // R9.
            Transition::TimeOut { run, step } => {
                let r = &mut state.runs[*run];
                if r.awaits(*step) {
                    r.steps[*step] = StepStatus::TimedOut;
                    r.finish(RunStatus::Error);
                }
            }
        }
        state
    }
}
