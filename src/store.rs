//! The emulator's shared state: a cheap-clone handle over one mutex-guarded [`State`].
//!
//! Every operation takes the lock, does its pure work (the chain rules live in
//! [`crate::model::chain`]), queues the deliveries that result on a channel, and lets go: the
//! lock is never held across an `.await`. The delivery engine ([`crate::delivery`]) takes the
//! queued work and POSTs outside the lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::error::Error;
use crate::model::callback::Callback;
use crate::model::chain::{callback_url, Effect, Event, Rejection, RunStart};
use crate::model::ids;
use crate::model::payload::{Payload, PayloadFormat};
use crate::model::pipeline::{Pipeline, PipelineSpec};
use crate::model::repository::{RepoName, Repository};
use crate::model::run::{DeliveryResult, PushEvent, Run, RunStatus};
use crate::model::time::Timestamp;

/// One delivery for the engine to make.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// The run.
    pub run_id: u64,
    /// The step (0-based).
    pub step: usize,
    /// The step's hook id: names the step even after a reset or an import reused its run id.
    pub hook_id: String,
    /// Where to POST.
    pub url: String,
    /// What to POST.
    pub payload: Payload,
}

impl Dispatch {
    /// The log record of this delivery: sent at `sent` with these headers and body, ending as
    /// `result`. Its id is given when the store records it.
    pub fn record(
        &self,
        sent: Timestamp,
        request_headers: BTreeMap<String, String>,
        request_body: Box<serde_json::value::RawValue>,
        result: DeliveryResult,
    ) -> DeliveryRecord {
        DeliveryRecord {
            id: 0,
            run_id: self.run_id,
            step: self.step,
            url: self.url.clone(),
            sent,
            request_headers,
            request_body,
            result,
        }
    }
}

/// One outbound request, as `/_hubmock/deliveries` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Sequence number.
    pub id: u64,
    /// The run it belongs to.
    pub run_id: u64,
    /// The step (0-based).
    pub step: usize,
    /// Where it went.
    pub url: String,
    /// When it was sent.
    pub sent: Timestamp,
    /// The request headers.
    pub request_headers: BTreeMap<String, String>,
    /// The request body, exactly as sent.
    pub request_body: Box<serde_json::value::RawValue>,
    /// How it went.
    #[serde(flatten)]
    pub result: DeliveryResult,
}

/// A push as the control API (or the registry, later) reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushRequest {
    /// The tag; `latest` when absent.
    pub tag: Option<String>,
    /// Who pushed; the repository's owner when absent.
    pub pusher: Option<String>,
    /// Image ids or digests; one is made up when empty.
    pub images: Vec<String>,
    /// The manifest's media type.
    pub media_type: Option<String>,
}

/// What to wait for on a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// The run is no longer pending.
    Finished,
    /// The step's delivery (0-based) has been answered (or will never be sent).
    Delivered(usize),
}

impl WaitFor {
    fn reached(self, run: &Run) -> bool {
        match self {
            WaitFor::Finished => !run.is_pending(),
            // Answered, or never to be sent because the run is over; a delivery still in flight
            // after its run ended is waited for (it ends within the delivery timeout).
            WaitFor::Delivered(step) => match run.steps.get(step) {
                Some(s) => s.delivery.is_some() || (s.delivered_at.is_none() && !run.is_pending()),
                None => true,
            },
        }
    }
}

/// Which outbound requests to list.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only this run's.
    pub run: Option<u64>,
    /// Only those sent to this URL.
    pub url: Option<String>,
}

impl DeliveryFilter {
    fn matches(&self, record: &DeliveryRecord) -> bool {
        self.run.is_none_or(|id| record.run_id == id)
            && self.url.as_ref().is_none_or(|url| &record.url == url)
    }
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only this repository's.
    pub repository: Option<RepoName>,
    /// Only this pipeline's (by slug).
    pub pipeline: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RepoEntry {
    repository: Repository,
    pipelines: Vec<Pipeline>,
}

/// Everything the emulator knows; exported and imported whole by `/_hubmock/state`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    repositories: BTreeMap<RepoName, RepoEntry>,
    runs: BTreeMap<u64, Run>,
    deliveries: VecDeque<DeliveryRecord>,
    ids: Counters,
    /// hook id -> (run id, step); derived from `runs`.
    #[serde(skip)]
    hooks: HashMap<String, (u64, usize)>,
    /// login token -> user name.
    #[serde(skip)]
    tokens: HashMap<String, String>,
    /// run id -> whoever long-polls it.
    #[serde(skip)]
    watchers: HashMap<u64, Vec<oneshot::Sender<()>>>,
}

/// The largest id of any kind: 2^53 - 1, exact as a JavaScript number.
pub const MAX_ID: u64 = (1 << 53) - 1;

/// The last id handed out of each kind; they keep counting across a reset, so an old id never
/// names a new thing.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Counters {
    pipeline: u64,
    run: u64,
    delivery: u64,
}

impl State {
    fn entry(&self, name: &RepoName) -> Result<&RepoEntry, Error> {
        self.repositories
            .get(name)
            .ok_or_else(|| not_found_repository(name))
    }

    fn entry_mut(&mut self, name: &RepoName) -> Result<&mut RepoEntry, Error> {
        self.repositories
            .get_mut(name)
            .ok_or_else(|| not_found_repository(name))
    }

    fn wake(&mut self, run_id: u64) {
        for tx in self.watchers.remove(&run_id).unwrap_or_default() {
            let _ = tx.send(());
        }
    }

    /// Whether the step (with this hook id) is still part of the state.
    fn is_current(&self, run_id: u64, step: usize, hook_id: &str) -> bool {
        self.runs
            .get(&run_id)
            .and_then(|run| run.steps.get(step))
            .is_some_and(|s| s.hook_id == hook_id)
    }

    fn index_hooks(&mut self, run: &Run) {
        for (step, s) in run.steps.iter().enumerate() {
            self.hooks.insert(s.hook_id.clone(), (run.id, step));
        }
    }
}

impl RepoEntry {
    /// Where the pipeline with this slug is, or the `404` that names it.
    fn pipeline_index(&self, name: &RepoName, slug: &str) -> Result<usize, Error> {
        self.pipelines
            .iter()
            .position(|p| p.slug == slug)
            .ok_or_else(|| not_found_pipeline(name, slug))
    }
}

fn not_found_repository(name: &RepoName) -> Error {
    Error::NotFound(format!(
        "Repository {name} does not exist: create it with POST /_hubmock/repositories."
    ))
}

fn not_found_pipeline(name: &RepoName, slug: &str) -> Error {
    Error::NotFound(format!(
        "Repository {name} has no webhook pipeline '{slug}'."
    ))
}

struct Shared {
    state: Mutex<State>,
    config: Config,
    public_url: String,
    users: Vec<(String, String)>,
    work: mpsc::UnboundedSender<Dispatch>,
    /// Woken whenever a delivery is recorded (for long-polls on the deliveries log).
    delivered: tokio::sync::Notify,
}

/// A cheap-clone handle to the emulator's state.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl Store {
    /// A new, empty store whose payload URLs start with `public_url`, and the receiving end of
    /// the deliveries it will ask for.
    pub fn new(config: Config, public_url: &str) -> (Store, mpsc::UnboundedReceiver<Dispatch>) {
        let (work, rx) = mpsc::unbounded_channel();
        let users = config.effective_users();
        let store = Store {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                public_url: public_url.trim_end_matches('/').to_owned(),
                config,
                users,
                work,
                delivered: tokio::sync::Notify::new(),
            }),
        };
        (store, rx)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The base of URLs in payloads.
    pub fn public_url(&self) -> &str {
        &self.shared.public_url
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; the state is still the best we have.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Carries out a transition's effects: queue deliveries, wake waiters. Called with the lock
    /// held; sending on an unbounded channel never blocks.
    fn effects(&self, state: &mut State, run_id: u64, effects: Vec<Effect>) {
        for effect in effects {
            if let Effect::Deliver { step } = effect {
                if let Some(dispatch) = self.dispatch_for(state, run_id, step) {
                    // The engine is gone only while shutting down; the step then stays pending.
                    let _ = self.shared.work.send(dispatch);
                }
            }
        }
        state.wake(run_id);
    }

    fn dispatch_for(&self, state: &State, run_id: u64, step: usize) -> Option<Dispatch> {
        let run = state.runs.get(&run_id)?;
        let s = run.steps.get(step)?;
        // The payload shows the repository as it is when the step is delivered.
        let repository = state.repositories.get(&run.repository).map_or_else(
            || Repository::new(&run.repository),
            |entry| entry.repository.clone(),
        );
        Some(Dispatch {
            run_id,
            step,
            hook_id: s.hook_id.clone(),
            url: s.hook_url.clone(),
            payload: Payload::build(
                run.payload_format,
                &repository,
                &run.push,
                s.callback_url.clone(),
                &self.shared.public_url,
            ),
        })
    }

    // ---- users -------------------------------------------------------------------------

    /// Logs in: a new token, or `None` for a wrong name or password.
    pub fn login(&self, username: &str, password: &str) -> Option<String> {
        let known = self
            .shared
            .users
            .iter()
            .any(|(u, p)| u == username && p == password);
        if !known {
            return None;
        }
        let token = ids::random_hex(32);
        self.lock()
            .tokens
            .insert(token.clone(), username.to_owned());
        Some(token)
    }

    /// The user a token belongs to.
    pub fn user_of(&self, token: &str) -> Option<String> {
        self.lock().tokens.get(token).cloned()
    }

    // ---- repositories ------------------------------------------------------------------

    /// Creates a repository; `409` if it exists.
    pub fn create_repository(&self, repository: Repository) -> Result<Repository, Error> {
        let name = repository.repo_name();
        let mut state = self.lock();
        if state.repositories.contains_key(&name) {
            return Err(Error::Conflict(format!(
                "Repository {name} already exists."
            )));
        }
        state.repositories.insert(
            name,
            RepoEntry {
                repository: repository.clone(),
                pipelines: Vec::new(),
            },
        );
        Ok(repository)
    }

    /// A repository.
    pub fn repository(&self, name: &RepoName) -> Result<Repository, Error> {
        Ok(self.lock().entry(name)?.repository.clone())
    }

    /// Every repository, by name.
    pub fn repositories(&self) -> Vec<Repository> {
        let state = self.lock();
        state
            .repositories
            .values()
            .map(|e| e.repository.clone())
            .collect()
    }

    // ---- pipelines ---------------------------------------------------------------------

    /// A repository's pipelines, in creation order.
    pub fn pipelines(&self, name: &RepoName) -> Result<Vec<Pipeline>, Error> {
        Ok(self.lock().entry(name)?.pipelines.clone())
    }

    /// One pipeline.
    pub fn pipeline(&self, name: &RepoName, slug: &str) -> Result<Pipeline, Error> {
        let state = self.lock();
        state
            .entry(name)?
            .pipelines
            .iter()
            .find(|p| p.slug == slug)
            .cloned()
            .ok_or_else(|| not_found_pipeline(name, slug))
    }

    /// Creates a pipeline from a validated spec; `400` if its name or slug is taken.
    pub fn create_pipeline(
        &self,
        name: &RepoName,
        spec: PipelineSpec,
        creator: &str,
    ) -> Result<Pipeline, Error> {
        let mut state = self.lock();
        let id = state.ids.pipeline + 1;
        let entry = state.entry_mut(name)?;
        let pipeline = Pipeline::create(id, spec, creator, Timestamp::now());
        check_unique(entry, &pipeline, None)?;
        entry.pipelines.push(pipeline.clone());
        state.ids.pipeline = id;
        Ok(pipeline)
    }

    /// Updates a pipeline; pending runs keep the copy they started with.
    pub fn update_pipeline(
        &self,
        name: &RepoName,
        slug: &str,
        spec: PipelineSpec,
    ) -> Result<Pipeline, Error> {
        let mut state = self.lock();
        let entry = state.entry_mut(name)?;
        let index = entry.pipeline_index(name, slug)?;
        let mut updated = entry.pipelines[index].clone();
        updated.update(spec, Timestamp::now());
        check_unique(entry, &updated, Some(index))?;
        entry.pipelines[index] = updated.clone();
        Ok(updated)
    }

    /// Deletes a pipeline and cancels its pending runs (R10).
    pub fn delete_pipeline(&self, name: &RepoName, slug: &str) -> Result<(), Error> {
        let mut state = self.lock();
        let entry = state.entry_mut(name)?;
        let index = entry.pipeline_index(name, slug)?;
        let pipeline = entry.pipelines.remove(index);
        let now = Timestamp::now();
        let pending: Vec<u64> = state
            .runs
            .values()
            .filter(|r| r.pipeline_id == pipeline.id && r.is_pending())
            .map(|r| r.id)
            .collect();
        for run_id in pending {
            let effects = apply(&mut state, run_id, Event::PipelineDeleted, now);
            if let Ok(effects) = effects {
                self.effects(&mut state, run_id, effects);
            }
        }
        Ok(())
    }

    /// A pipeline's runs, newest first.
    pub fn history(&self, name: &RepoName, slug: &str) -> Result<Vec<Run>, Error> {
        let state = self.lock();
        let pipeline = state
            .entry(name)?
            .pipelines
            .iter()
            .find(|p| p.slug == slug)
            .ok_or_else(|| not_found_pipeline(name, slug))?;
        Ok(state
            .runs
            .values()
            .rev()
            .filter(|r| r.pipeline_id == pipeline.id)
            .cloned()
            .collect())
    }

    // ---- pushes, deliveries, callbacks -------------------------------------------------

    /// A push: one run per pipeline of the repository (R1), step 1 of each delivered at once.
    pub fn push(&self, name: &RepoName, push: PushRequest) -> Result<Vec<Run>, Error> {
        let now = Timestamp::now();
        let mut state = self.lock();
        if !state.repositories.contains_key(name) {
            if !self.shared.config.implicit_repositories {
                return Err(not_found_repository(name));
            }
            state.repositories.insert(
                name.clone(),
                RepoEntry {
                    repository: Repository::new(name),
                    pipelines: Vec::new(),
                },
            );
        }
        let entry = &state.repositories[name];
        let mut images = push.images;
        if images.is_empty() {
            // Legacy payloads list image ids; a push that names none gets one made up.
            images.push(ids::random_hex(32));
        }
        let event = PushEvent {
            tag: push.tag.unwrap_or_else(|| "latest".to_owned()),
            pusher: push
                .pusher
                .unwrap_or_else(|| entry.repository.owner.clone()),
            images,
            media_type: push.media_type,
            pushed_at: now,
        };
        let pipelines = entry.pipelines.clone();
        let mut runs = Vec::with_capacity(pipelines.len());
        for pipeline in &pipelines {
            state.ids.run += 1;
            let id = state.ids.run;
            let (run, effects) = Run::start(
                RunStart {
                    id,
                    repository: name,
                    push: event.clone(),
                    default_format: self.shared.config.payload_format,
                    public_url: &self.shared.public_url,
                    now,
                },
                pipeline,
                ids::new_hook_id,
            );
            state.index_hooks(&run);
            state.runs.insert(id, run);
            self.effects(&mut state, id, effects);
            runs.push(state.runs[&id].clone());
        }
        Ok(runs)
    }

    /// Records a delivery's outcome and applies it to its run (R3, R6, R11).
    pub fn delivered(&self, dispatch: &Dispatch, record: DeliveryRecord) {
        let mut state = self.lock();
        if !state.is_current(dispatch.run_id, dispatch.step, &dispatch.hook_id) {
            // Its run was forgotten by a reset or replaced by an import: not this state's news.
            return;
        }
        let limit = self.shared.config.delivery_log_limit;
        if limit > 0 {
            while state.deliveries.len() >= limit {
                state.deliveries.pop_front();
            }
            let mut record = record.clone();
            state.ids.delivery += 1;
            record.id = state.ids.delivery;
            state.deliveries.push_back(record);
        }
        let event = Event::Delivered {
            step: dispatch.step,
            result: record.result,
        };
        if let Ok(effects) = apply(&mut state, dispatch.run_id, event, Timestamp::now()) {
            self.effects(&mut state, dispatch.run_id, effects);
        }
        drop(state);
        self.shared.delivered.notify_waiters();
    }

    /// A callback to a hook id (R7, R8). `Ok` carries the run as it is after the callback.
    pub fn callback(
        &self,
        repository: &RepoName,
        hook_id: &str,
        body: &[u8],
    ) -> Result<Run, Error> {
        // Parse and validate before taking the lock: a 1 MiB body never stalls other requests.
        let verdict = Callback::validate(body);
        let mut state = self.lock();
        let unknown = || Error::NotFound(format!("No webhook delivery has hook id '{hook_id}'."));
        let &(run_id, step) = state.hooks.get(hook_id).ok_or_else(unknown)?;
        if state
            .runs
            .get(&run_id)
            .is_none_or(|r| &r.repository != repository)
        {
            return Err(unknown());
        }
        let event = Event::Callback {
            step,
            body: &verdict,
        };
        match apply(&mut state, run_id, event, Timestamp::now()) {
            Ok(effects) => {
                self.effects(&mut state, run_id, effects);
                Ok(state.runs[&run_id].clone())
            }
            Err(Rejection::UpdateNotAllowed) => Err(Error::UpdateNotAllowed),
            Err(Rejection::Invalid(errors)) => Err(Error::Invalid(errors)),
        }
    }

    /// A step's callback timer ran out (R9).
    pub fn callback_timed_out(&self, run_id: u64, step: usize, hook_id: &str) {
        let mut state = self.lock();
        if !state.is_current(run_id, step, hook_id) {
            return;
        }
        let event = Event::CallbackTimedOut { step };
        if let Ok(effects) = apply(&mut state, run_id, event, Timestamp::now()) {
            self.effects(&mut state, run_id, effects);
        }
    }

    // ---- inspection --------------------------------------------------------------------

    /// One run.
    pub fn run(&self, id: u64) -> Result<Run, Error> {
        self.lock()
            .runs
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("There is no run {id}.")))
    }

    /// Runs matching `filter`, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Vec<Run> {
        let state = self.lock();
        state
            .runs
            .values()
            .rev()
            .filter(|r| {
                filter
                    .repository
                    .as_ref()
                    .is_none_or(|n| &r.repository == n)
            })
            .filter(|r| filter.pipeline.as_ref().is_none_or(|p| &r.pipeline == p))
            .filter(|r| filter.status.is_none_or(|s| r.status == s))
            .cloned()
            .collect()
    }

    /// Waits until the run reaches `until` or `timeout` passes, then answers the run as it is.
    pub async fn wait_for_run(
        &self,
        id: u64,
        until: WaitFor,
        timeout: Duration,
    ) -> Result<Run, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = {
                let mut state = self.lock();
                let run = state
                    .runs
                    .get(&id)
                    .ok_or_else(|| Error::NotFound(format!("There is no run {id}.")))?;
                if until.reached(run) || tokio::time::Instant::now() >= deadline {
                    return Ok(run.clone());
                }
                let (tx, rx) = oneshot::channel();
                let watchers = state.watchers.entry(id).or_default();
                watchers.retain(|w| !w.is_closed());
                watchers.push(tx);
                rx
            };
            // Woken on any change of the run (or dropped by a reset): look again.
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }

    /// Whether the delivery should still go out (checked just before the POST): not when its
    /// run was cancelled, forgotten by a reset or replaced by an import while the delivery
    /// waited for a connection. A step whose callback came early is still delivered.
    pub fn still_delivering(&self, dispatch: &Dispatch) -> bool {
        let state = self.lock();
        state.is_current(dispatch.run_id, dispatch.step, &dispatch.hook_id)
            && state.runs[&dispatch.run_id].still_delivers(dispatch.step)
    }

    /// Outbound requests, oldest first, optionally for one run only.
    pub fn deliveries(&self, run_id: Option<u64>) -> Vec<DeliveryRecord> {
        self.deliveries_matching(&DeliveryFilter {
            run: run_id,
            url: None,
        })
    }

    /// Outbound requests matching `filter`, oldest first.
    pub fn deliveries_matching(&self, filter: &DeliveryFilter) -> Vec<DeliveryRecord> {
        let state = self.lock();
        state
            .deliveries
            .iter()
            .filter(|d| filter.matches(d))
            .cloned()
            .collect()
    }

    /// Waits until at least `min` recorded requests match `filter`, or `timeout` passes;
    /// answers those that match then.
    pub async fn wait_for_deliveries(
        &self,
        filter: &DeliveryFilter,
        min: usize,
        timeout: Duration,
    ) -> Vec<DeliveryRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register before looking, so a delivery recorded in between still wakes us.
            let notified = self.shared.delivered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = self.deliveries_matching(filter);
            if found.len() >= min || tokio::time::Instant::now() >= deadline {
                return found;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    // ---- whole state -------------------------------------------------------------------

    /// Forgets everything but the configured users and their login tokens (a suite logs in once
    /// and resets between tests). Ids keep counting, so an old run id never names a new run.
    pub fn reset(&self) {
        let mut state = self.lock();
        let ids = state.ids;
        let tokens = std::mem::take(&mut state.tokens);
        let old = std::mem::take(&mut *state);
        state.ids = ids;
        state.tokens = tokens;
        drop(state);
        // Dropping the old watchers wakes every long-poll; they then find their run gone.
        drop(old);
    }

    /// The whole state as JSON text, written straight from the records so that delivery
    /// bodies keep the exact form they were sent in.
    pub fn export_json(&self) -> Box<serde_json::value::RawValue> {
        #[derive(Serialize)]
        struct Export<'a> {
            version: u32,
            repositories: Vec<&'a RepoEntry>,
            runs: Vec<&'a Run>,
            deliveries: &'a VecDeque<DeliveryRecord>,
        }
        let state = self.lock();
        serde_json::value::to_raw_value(&Export {
            version: 1,
            repositories: state.repositories.values().collect(),
            runs: state.runs.values().collect(),
            deliveries: &state.deliveries,
        })
        .expect("the state always serialises")
    }

    /// The whole state as a JSON value (to compare or edit; numbers keep their value, not
    /// their written form — [`Store::export_json`] keeps both).
    pub fn export(&self) -> Value {
        serde_json::from_str(self.export_json().get()).expect("the export is valid JSON")
    }

    /// Replaces the whole state with an export. Runs awaiting a callback keep awaiting it.
    pub fn import(&self, value: &Value) -> Result<(), Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Snapshot {
            version: u32,
            repositories: Vec<RepoEntry>,
            runs: Vec<Run>,
            #[serde(default)]
            deliveries: VecDeque<DeliveryRecord>,
        }
        let snapshot: Snapshot = serde_json::from_value(value.clone())
            .map_err(|err| Error::BadRequest(format!("Invalid state document: {err}")))?;
        if snapshot.version != 1 {
            return Err(Error::field(
                "version",
                format!(
                    "Unsupported state version {}; this hubmock reads version 1.",
                    snapshot.version
                ),
            ));
        }
        // Ids keep counting from the largest imported one; bounding them keeps the counters
        // from overflowing and the ids exact in JavaScript clients.
        let too_large = |what: &str, id: u64| {
            Error::field(
                what,
                format!("Id {id} is larger than {MAX_ID}, the largest id hubmock hands out."),
            )
        };
        for pipeline in snapshot.repositories.iter().flat_map(|e| &e.pipelines) {
            if pipeline.id > MAX_ID {
                return Err(too_large("repositories", pipeline.id));
            }
        }
        for run in &snapshot.runs {
            if run.id > MAX_ID || run.pipeline_id > MAX_ID {
                return Err(too_large("runs", run.id.max(run.pipeline_id)));
            }
        }
        if let Some(record) = snapshot.deliveries.iter().find(|d| d.id > MAX_ID) {
            return Err(too_large("deliveries", record.id));
        }
        let mut fresh = State::default();
        for entry in snapshot.repositories {
            let name = entry.repository.repo_name();
            RepoName::new(&name.namespace, &name.name)?;
            fresh.repositories.insert(name, entry);
        }
        for mut run in snapshot.runs {
            // Callback URLs name this emulator, wherever the state was exported from.
            for step in &mut run.steps {
                step.callback_url =
                    callback_url(&self.shared.public_url, &run.repository, &step.hook_id);
            }
            fresh.index_hooks(&run);
            fresh.runs.insert(run.id, run);
        }
        // Runs of deleted pipelines count too: a new pipeline must not inherit their history.
        let max_pipeline = fresh
            .repositories
            .values()
            .flat_map(|e| e.pipelines.iter().map(|p| p.id))
            .chain(fresh.runs.values().map(|r| r.pipeline_id))
            .max()
            .unwrap_or(0);
        fresh.deliveries = snapshot.deliveries;
        let mut state = self.lock();
        fresh.ids = Counters {
            pipeline: state.ids.pipeline.max(max_pipeline),
            run: state
                .ids
                .run
                .max(fresh.runs.keys().copied().max().unwrap_or(0)),
            delivery: state
                .ids
                .delivery
                .max(fresh.deliveries.iter().map(|d| d.id).max().unwrap_or(0)),
        };
        fresh.tokens = std::mem::take(&mut state.tokens);
        let old = std::mem::replace(&mut *state, fresh);
        drop(state);
        drop(old);
        Ok(())
    }

    /// The default payload format.
    pub fn payload_format(&self) -> PayloadFormat {
        self.shared.config.payload_format
    }
}

/// Applies an event to a stored run through the chain rules.
fn apply(
    state: &mut State,
    run_id: u64,
    event: Event<'_>,
    now: Timestamp,
) -> Result<Vec<Effect>, Rejection> {
    match state.runs.get_mut(&run_id) {
        Some(run) => run.apply(event, now),
        // The run was forgotten by a reset while its delivery was in flight.
        None => Ok(Vec::new()),
    }
}

fn check_unique(entry: &RepoEntry, pipeline: &Pipeline, skip: Option<usize>) -> Result<(), Error> {
    for (i, other) in entry.pipelines.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if other.name == pipeline.name || other.slug == pipeline.slug {
            return Err(Error::field(
                "name",
                format!(
                    "A webhook pipeline named '{}' (slug '{}') already exists for this repository.",
                    other.name, other.slug
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(dispatch: &Dispatch, status: u16) -> DeliveryRecord {
        let result = DeliveryResult {
            status: Some(status),
            error: None,
            duration_ms: 1,
            response_body: None,
        };
        dispatch.record(
            Timestamp::now(),
            BTreeMap::new(),
            dispatch.payload.to_json(),
            result,
        )
    }

    fn store_with_a_push() -> (Store, Dispatch, Value) {
        let (store, mut queue) = Store::new(Config::default(), "http://hub");
        let repo = RepoName::new("acme", "app").unwrap();
        store.create_repository(Repository::new(&repo)).unwrap();
        let spec = PipelineSpec::new("p", &["http://receiver/"]);
        store.create_pipeline(&repo, spec, "acme").unwrap();
        let before = store.export();
        store.push(&repo, PushRequest::default()).unwrap();
        let dispatch = queue.try_recv().expect("step 1 is queued");
        (store, dispatch, before)
    }

    #[test]
    fn a_delivery_answered_after_a_reset_is_not_this_states_news() {
        let (store, dispatch, _) = store_with_a_push();
        store.reset();
        store.delivered(&dispatch, answered(&dispatch, 500));
        assert!(store.deliveries(None).is_empty());
        assert!(!store.still_delivering(&dispatch));
    }

    #[test]
    fn a_delivery_answered_after_an_import_does_not_touch_the_imported_run() {
        let (store, dispatch, _) = store_with_a_push();
        // Another emulator's state with a run of the same id, awaiting its callback.
        let (other, other_dispatch, _) = store_with_a_push();
        other.delivered(&other_dispatch, answered(&other_dispatch, 200));
        store.import(&other.export()).unwrap();
        store.delivered(&dispatch, answered(&dispatch, 500));
        store.callback_timed_out(dispatch.run_id, dispatch.step, &dispatch.hook_id);
        let run = store.run(dispatch.run_id).unwrap();
        assert_eq!(run.status, RunStatus::Pending);
        assert_eq!(run.steps[0].delivery.as_ref().unwrap().status, Some(200));
    }
}
