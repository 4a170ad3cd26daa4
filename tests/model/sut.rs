//! The system under test: a real emulator on a local port, driven over HTTP, with receivers
//! that answer 200 or 500 and a URL where nothing listens.

use std::time::Duration;

use hubmock::{Config, Hub, RepoName, RunStatus, StepStatus};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use serde_json::json;
use tokio::runtime::Runtime;

use super::reference::{Answer, Body, ChainModel, Receiver, State, Transition};
use crate::util::{http_response, Http, RawReceiver};

const WAIT: Duration = Duration::from_secs(10);

pub struct Sut {
    runtime: Runtime,
    hub: Hub,
    http: Http,
    repo: RepoName,
    ok: RawReceiver,
    fails: RawReceiver,
    refused: String,
    /// Reference run index -> emulator run id.
    run_ids: Vec<u64>,
    /// Reference pipeline index -> slug.
    slugs: Vec<String>,
}

impl Sut {
    fn start() -> Sut {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (hub, http, ok, fails) = runtime.block_on(async {
            // On this runtime, so deliveries move exactly when the test drives it.
            let hub = Hub::builder()
                .config(Config::default().with_auth(false))
                .on_current_runtime()
                .start()
                .await;
            let ok = RawReceiver::start(|_| async { Some(http_response(200, "ok")) }).await;
            let fails = RawReceiver::start(|_| async { Some(http_response(500, "no")) }).await;
            let http = Http::new(&hub.uri());
            (hub, http, ok, fails)
        });
        let refused = {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            format!("http://127.0.0.1:{port}/gone")
        };
        let repo = RepoName::new("acme", "app").unwrap();
        hub.add_repository(hubmock::Repository::new(&repo)).unwrap();
        Sut {
            runtime,
            hub,
            http,
            repo,
            ok,
            fails,
            refused,
            run_ids: Vec::new(),
            slugs: Vec::new(),
        }
    }

    fn url(&self, receiver: Receiver) -> String {
        match receiver {
            Receiver::Ok => self.ok.url(),
            Receiver::Fails => self.fails.url(),
            Receiver::Refused => self.refused.clone(),
        }
    }

    /// Waits until every delivery in flight has been answered, so the state is the model's.
    fn settle(&self) {
        for &id in &self.run_ids {
            let run = self.hub.run(id).unwrap();
            for (step, s) in run.steps().iter().enumerate() {
                if s.delivered_at.is_some() && s.delivery.is_none() {
                    self.runtime
                        .block_on(self.hub.wait_for_delivery(id, step, WAIT))
                        .unwrap();
                }
            }
        }
    }

    fn apply(&mut self, ref_state: &State, transition: Transition) {
        match transition {
            Transition::CreatePipeline {
                hooks,
                expect_final,
            } => {
                let name = format!("pipeline {}", self.slugs.len());
                let webhooks: Vec<_> = hooks
                    .iter()
                    .enumerate()
                    .map(|(i, r)| json!({"name": format!("hook {i}"), "hook_url": self.url(*r)}))
                    .collect();
                let body = json!({"name": name, "expect_final_callback": expect_final, "webhooks": webhooks});
                let created = self
                    .runtime
                    .block_on(
                        self.http
                            .post("/v2/repositories/acme/app/webhook_pipeline/", body),
                    )
                    .expect(201);
                self.slugs
                    .push(created["slug"].as_str().unwrap().to_owned());
            }
            Transition::Push => {
                let pushed = self
                    .runtime
                    .block_on(
                        self.http
                            .post("/_hubmock/repositories/acme/app/push", json!({"tag": "v1"})),
                    )
                    .expect(202);
                for run in pushed["runs"].as_array().unwrap() {
                    self.run_ids.push(run["id"].as_u64().unwrap());
                }
            }
            Transition::Callback { run, step, body } => {
                let id = self.run_ids[run];
                let url = self.hub.run(id).unwrap().steps()[step].callback_url.clone();
                let body = match body {
                    Body::Success => json!({"state": "success"}),
                    Body::Failure => json!({"state": "failure"}),
                    Body::Error => json!({"state": "error"}),
                    Body::TooLong => json!({"state": "success", "description": "é".repeat(256)}),
                };
                let answer = self.runtime.block_on(self.http.post(&url, body));
                match ref_state.answer.expect("a callback has an expected answer") {
                    Answer::Accepted => {
                        answer.expect(200);
                    }
                    Answer::NotAllowed => {
                        assert_eq!(answer.expect(400), json!("Update not allowed"))
                    }
                    Answer::Invalid => {
                        assert!(answer.expect(400)["description"].is_array(), "{answer:?}")
                    }
                    Answer::UnknownHook => unreachable!(),
                }
            }
            Transition::UnknownHook => {
                let url = format!("/u/acme/app/hook/{}/", "a".repeat(32));
                self.runtime
                    .block_on(self.http.post(&url, json!({"state": "success"})))
                    .expect(404);
            }
            Transition::DeletePipeline { pipeline } => {
                let path = format!(
                    "/v2/repositories/acme/app/webhook_pipeline/{}/",
                    self.slugs[pipeline]
                );
                self.runtime.block_on(self.http.delete(&path)).expect(204);
            }
            // The engine's timer calls exactly this when a callback timeout runs out.
            Transition::TimeOut { run, step } => {
                let id = self.run_ids[run];
                let hook_id = self.hub.run(id).unwrap().steps()[step].hook_id.clone();
                self.hub.expire_callback(id, step, &hook_id)
            }
        }
        self.settle();
    }

    /// The emulator agrees with the model, and its runs keep the chain's invariants.
    fn check(&self, ref_state: &State) {
        assert_eq!(
            self.run_ids.len(),
            ref_state.runs.len(),
            "one run per push × pipeline"
        );
        for (index, expected) in ref_state.runs.iter().enumerate() {
            let run = self.hub.run(self.run_ids[index]).unwrap();
            let steps: Vec<StepStatus> = run.steps().iter().map(|s| s.status).collect();
            assert_eq!(
                (run.status(), &steps),
                (expected.status, &expected.steps),
                "run {index} (id {}) differs from the model: {run:#?}",
                run.id()
            );
            for (k, step) in run.steps().iter().enumerate() {
                // No step is delivered before its predecessor's success.
                if k > 0 && step.delivered_at.is_some() {
                    assert_eq!(run.steps()[k - 1].status, StepStatus::Success, "{run:#?}");
                }
                // A callback is recorded only for a step that took one.
                if step.callback.is_some() {
                    assert!(matches!(
                        step.status,
                        StepStatus::Success | StepStatus::Failure | StepStatus::Error
                    ));
                }
            }
            // A failure or error stops the chain: nothing after it was delivered.
            if let Some(stop) = run.steps().iter().position(|s| {
                matches!(
                    s.status,
                    StepStatus::Failure
                        | StepStatus::Error
                        | StepStatus::DeliveryFailed
                        | StepStatus::TimedOut
                )
            }) {
                assert!(run.steps()[stop + 1..]
                    .iter()
                    .all(|s| s.delivered_at.is_none() && s.status == StepStatus::Skipped));
                assert_ne!(run.status(), RunStatus::Success);
            }
            // A run succeeds exactly when every step did.
            assert_eq!(
                run.status() == RunStatus::Success,
                steps.iter().all(|s| *s == StepStatus::Success)
            );
        }
        // Each live pipeline's history holds its runs, newest first.
        for (index, pipeline) in ref_state.pipelines.iter().enumerate() {
            if !pipeline.alive {
                continue;
            }
            let history = self.hub.history(&self.repo, &self.slugs[index]).unwrap();
            let expected: Vec<u64> = ref_state
                .runs
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, r)| r.pipeline == index)
                .map(|(i, _)| self.run_ids[i])
                .collect();
            let ids: Vec<u64> = history.iter().map(|r| r.id()).collect();
            assert_eq!(ids, expected, "history of pipeline {index}");
        }
    }
}

pub struct ChainTest;

impl StateMachineTest for ChainTest {
    type SystemUnderTest = Sut;
    type Reference = ChainModel;

    fn init_test(_: &<ChainModel as ReferenceStateMachine>::State) -> Sut {
        Sut::start()
    }

    fn apply(mut sut: Sut, ref_state: &State, transition: Transition) -> Sut {
        sut.apply(ref_state, transition);
        sut
    }

    fn check_invariants(sut: &Sut, ref_state: &State) {
        sut.check(ref_state);
    }
}
