//! `kill -9` at random moments under load, then a restart on the same data directory: every
//! change that was answered is there, nothing unanswered is half there, and no delivery
//! reaches its receiver twice.
//!
//! Each round starts the server on the same directory (state accumulates), drives load from
//! several tasks (repositories, pipelines created, updated and deleted, control-API pushes,
//! callbacks, registry pushes), kills the server after a random delay, restarts it and checks
//! what it recovered against what the tasks were told. The delays come from a seed that is
//! printed (`CRASH_SEED=<n>` repeats them). `cargo test` runs 3 rounds; the longer run is
//!
//! ```text
//! CRASH_ROUNDS=200 cargo test --release --test integration crash -- --nocapture
//! ```
//!
//! (`CRASH_KEEP_DIR=1` keeps the data directory, to look into after a failure).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use hubmock::registry::push::{Generated, ImagePush, PushClient, PushError};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::serve_on_with_env;
use crate::serve::Serve;
use crate::util::{receiver, Http, Resp, WAIT};

const NAMESPACE: &str = "crash";
/// The pipelines of each round's push targets: (name, expect_final_callback, hook paths).
const FIXED: [(&str, bool, &[&str]); 2] = [
    ("chain", true, &["/hook/callback", "/hook/callback"]),
    ("fire", false, &["/hook/fire"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_at_random_moments_loses_nothing_acknowledged_and_leaves_nothing_half_done() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .map(|r| r.parse().expect("CRASH_ROUNDS is a number"))
        .unwrap_or(3);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .map(|s| s.parse().expect("CRASH_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test: {rounds} rounds, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("CRASH_KEEP_DIR").is_some() {
        // Kept after the test, to look into after a failure.
        dir.disable_cleanup(true);
        eprintln!(
            "crash test: data directory {} is kept",
            dir.path().display()
        );
    }
    let (receiver, callbacks) = Receiver::start().await;
    let callbacks = Arc::new(tokio::sync::Mutex::new(callbacks));
    let mut ledger = Ledger::default();
    let mut serve = start(dir.path());
    for round in 0..rounds {
        let http = Http::new(&serve.url);
        let mut book = Book::default();
        setup_round(&http, &receiver, round, &mut book).await;
        let book = Arc::new(Mutex::new(book));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        let load = Load {
            http: http.clone(),
            hooks: receiver.uri.clone(),
            round,
            seed,
            book: book.clone(),
            stop: stop.clone(),
        };
        tasks.spawn(load.clone().repositories());
        for t in 0..2 {
            tasks.spawn(load.clone().churn(t));
            tasks.spawn(load.clone().control_pushes(t));
        }
        tasks.spawn(load.clone().registry_pushes(PushClient::new(&serve.url)));
        tasks.spawn(load.callbacks(callbacks.clone()));
        let delay = Duration::from_millis(50 + rng.below(1200));
        tokio::time::sleep(delay).await;
        let log = serve.crash();
        stop.store(true, Ordering::SeqCst);
        let joined = tokio::time::timeout(WAIT, async {
            while let Some(done) = tasks.join_next().await {
                done.expect("a load task panicked");
            }
        })
        .await;
        assert!(
            joined.is_ok(),
            "the load tasks did not stop after the crash"
        );
        let book = Arc::try_unwrap(book).ok().unwrap().into_inner().unwrap();
        eprintln!(
            "round {round}: killed after {delay:?} ({}); {} log lines before",
            book.summary(),
            log.len()
        );
        ledger.rounds.push(book);
        serve = start(dir.path());
        let http = Http::new(&serve.url);
        // The round that crashed, and one earlier round picked at random (state accumulates:
        // a later restart must still have it); every round at the end.
        let mut check = vec![round];
        if round > 0 {
            check.push(rng.below(round as u64) as usize);
        }
        if round + 1 == rounds {
            check = (0..rounds).collect();
        }
        ledger
            .verify(&http, &receiver, &check)
            .await
            .unwrap_or_else(|problem| {
                let alive = serve.child.try_wait().unwrap().is_none();
                let log = serve.log_lines();
                let tail = log[log.len().saturating_sub(40)..].join("\n");
                panic!(
                    "after the crash of round {round} (CRASH_SEED={seed}): {problem}\n\
                     the restarted server is {}; its log ends:\n{tail}",
                    if alive { "alive" } else { "gone" }
                )
            });
    }
    eprintln!(
        "crash test: {rounds} rounds in {:?} (CRASH_SEED={seed})",
        started.elapsed()
    );
}

/// Starts the server on `dir`: it must come up, whatever moment the last one was killed at.
fn start(dir: &Path) -> Serve {
    // Connection errors too (debug), for a failure's log tail.
    let serve = serve_on_with_env(
        dir,
        &["--max-pending-runs", "1000000"],
        &[("RUST_LOG", "warn,hubmock=info,hubmock::request=debug")],
    );
    for line in serve.log_lines() {
        assert!(!line.contains("damaged"), "restart logged damage: {line}");
    }
    serve
}

/// splitmix64: the moments of a run follow from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The webhook receiver: answers 200, counts deliveries per callback path (hook id), and
/// hands the callback paths of steps that await a callback (`/hook/callback`) to the test.
struct Receiver {
    _server: MockServer,
    uri: String,
    deliveries: Arc<Mutex<HashMap<String, u32>>>,
}

struct Recorder {
    deliveries: Arc<Mutex<HashMap<String, u32>>>,
    callbacks: mpsc::UnboundedSender<String>,
}

impl Respond for Recorder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let payload: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let Some(path) = payload["callback_url"].as_str().map(url_path) else {
            return ResponseTemplate::new(400);
        };
        *self
            .deliveries
            .lock()
            .unwrap()
            .entry(path.clone())
            .or_default() += 1;
        if request.url.path() == "/hook/callback" {
            let _ = self.callbacks.send(path);
        }
        ResponseTemplate::new(200)
    }
}

impl Receiver {
    async fn start() -> (Receiver, mpsc::UnboundedReceiver<String>) {
        let server = receiver().await;
        let deliveries = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(Recorder {
                deliveries: deliveries.clone(),
                callbacks: tx,
            })
            .mount(&server)
            .await;
        let uri = server.uri();
        let receiver = Receiver {
            _server: server,
            uri,
            deliveries,
        };
        (receiver, rx)
    }

    fn deliveries_of(&self, path: &str) -> u32 {
        self.deliveries
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// `http://host:port/u/...` → `/u/...`: callback URLs name the port of the process that made
/// them, and each restart listens on another.
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("/", |i| &rest[i..]).to_owned()
}

/// A pipeline as the test knows it: expect_final_callback and (name, hook URL) per webhook.
#[derive(Clone, Debug, PartialEq)]
struct Spec {
    expect_final: bool,
    hooks: Vec<(String, String)>,
}

impl Spec {
    fn new(expect_final: bool, base: &str, paths: &[&str]) -> Spec {
        let hooks = paths
            .iter()
            .enumerate()
            .map(|(i, path)| (format!("hook {i}"), format!("{base}{path}")))
            .collect();
        Spec {
            expect_final,
            hooks,
        }
    }

    fn body(&self, name: &str) -> Value {
        let webhooks: Vec<Value> = self
            .hooks
            .iter()
            .map(|(name, url)| json!({"name": name, "hook_url": url}))
            .collect();
        json!({"name": name, "expect_final_callback": self.expect_final, "webhooks": webhooks})
    }

    fn of(pipeline: &Value) -> Spec {
        let hooks = pipeline["webhooks"]
            .as_array()
            .expect("webhooks")
            .iter()
            .map(|w| {
                let text = |k: &str| w[k].as_str().expect("a string").to_owned();
                (text("name"), text("hook_url"))
            })
            .collect();
        Spec {
            expect_final: pipeline["expect_final_callback"].as_bool().expect("bool"),
            hooks,
        }
    }
}

/// What became of a change the test asked for.
#[derive(Clone, Debug, PartialEq)]
enum Told<T> {
    /// Answered: it happened, with this.
    Acked(T),
    /// Sent, and the server died before the answer: it happened whole or not at all.
    InFlight,
}

/// A pipeline: its acknowledged state (`None`: absent) and the state a change in flight would
/// leave. A restart must show one of the two, whole.
#[derive(Debug)]
struct PipelineEntry {
    now: Option<Spec>,
    next: Option<Option<Spec>>,
}

/// A control-API or registry push of a unique tag.
#[derive(Debug)]
struct PushEntry {
    /// The run ids answered, sorted (registry pushes answer none: `Acked(None)`).
    told: Told<Option<Vec<u64>>>,
    /// How many runs a whole push starts (one per pipeline), when the test knows.
    whole: Option<usize>,
    /// What a check found (later restarts must find the same).
    seen: Option<Vec<u64>>,
}

/// An image pushed through the registry by a unique tag.
#[derive(Debug)]
struct ImageEntry {
    told: Told<()>,
    manifest: Generated,
    seen: Option<bool>,
}

/// A callback posted for a step.
#[derive(Debug)]
struct CallbackEntry {
    told: Told<()>,
    seen: Option<bool>,
}

/// What the load of one round was told.
#[derive(Debug, Default)]
struct Book {
    /// Repositories created (name → told).
    repositories: BTreeMap<String, Told<()>>,
    /// Pipelines by (repository, pipeline name).
    pipelines: BTreeMap<(String, String), PipelineEntry>,
    /// Pushes by (repository, tag).
    pushes: BTreeMap<(String, String), PushEntry>,
    /// Registry pushes by (repository, tag).
    images: BTreeMap<(String, String), ImageEntry>,
    /// Callbacks by callback path.
    callbacks: BTreeMap<String, CallbackEntry>,
    /// Callbacks refused, with the answer: their step must not await a callback.
    refused: Vec<(String, String)>,
}

impl Book {
    fn summary(&self) -> String {
        let acked = |n: usize, of: usize| format!("{n}/{of}");
        let pushes = self.pushes.values();
        format!(
            "acknowledged: repositories {}, pipelines {}, pushes {}, images {}, callbacks {}",
            acked(
                self.repositories
                    .values()
                    .filter(|t| matches!(t, Told::Acked(_)))
                    .count(),
                self.repositories.len()
            ),
            self.pipelines.len(),
            acked(
                pushes.filter(|p| matches!(p.told, Told::Acked(_))).count(),
                self.pushes.len()
            ),
            acked(
                self.images
                    .values()
                    .filter(|i| i.told == Told::Acked(()))
                    .count(),
                self.images.len()
            ),
            acked(
                self.callbacks
                    .values()
                    .filter(|c| c.told == Told::Acked(()))
                    .count(),
                self.callbacks.len()
            ),
        )
    }
}

/// The names of a round's repositories.
fn fixed_repo(round: usize, i: usize) -> String {
    format!("r{round}-{}", ["a", "b"][i])
}

fn churn_repo(round: usize, t: usize) -> String {
    format!("r{round}-churn{t}")
}

/// The round's repositories and their pipelines, created (and acknowledged) before the load.
async fn setup_round(http: &Http, receiver: &Receiver, round: usize, book: &mut Book) {
    let repos = (0..2)
        .map(|i| fixed_repo(round, i))
        .chain((0..2).map(|t| churn_repo(round, t)));
    for name in repos {
        http.post(
            "/_hubmock/repositories",
            json!({"namespace": NAMESPACE, "name": name}),
        )
        .await
        .expect(201);
        book.repositories.insert(name, Told::Acked(()));
    }
    for i in 0..2 {
        let repo = fixed_repo(round, i);
        for (name, expect_final, paths) in FIXED {
            let spec = Spec::new(expect_final, &receiver.uri, paths);
            http.post(&pipelines_path(&repo), spec.body(name))
                .await
                .expect(201);
            let entry = PipelineEntry {
                now: Some(spec),
                next: None,
            };
            book.pipelines
                .insert((repo.clone(), name.to_owned()), entry);
        }
    }
}

fn pipelines_path(repo: &str) -> String {
    format!("/v2/repositories/{NAMESPACE}/{repo}/webhook_pipeline/")
}

/// The load of one round: each method is a task that runs until `stop` (or until the server
/// is gone), writing down what it asks before it asks and what it was told when it is told.
#[derive(Clone)]
struct Load {
    http: Http,
    hooks: String,
    round: usize,
    seed: u64,
    book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
}

/// What a request came to: an answer with the expected status, or none (the server died).
/// Any other answer is a failure of the test.
fn answered(resp: Result<Resp, String>, expected: u16) -> Option<Value> {
    match resp {
        Ok(resp) if resp.status.as_u16() == expected => {
            Some(serde_json::from_slice(&resp.body).unwrap_or(Value::Null))
        }
        Ok(resp) => panic!("expected {expected}, got {resp:?}"),
        Err(_) => None,
    }
}

fn run_ids(runs: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = runs["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    ids.sort_unstable();
    ids
}

impl Load {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn note(&self, f: impl FnOnce(&mut Book)) {
        f(&mut self.book.lock().unwrap());
    }

    async fn repositories(self) {
        for n in 0.. {
            if self.stopped() {
                return;
            }
            let name = format!("r{}-new{n}", self.round);
            self.note(|b| {
                b.repositories.insert(name.clone(), Told::InFlight);
            });
            let body =
                json!({"namespace": NAMESPACE, "name": name, "description": "made under load"});
            let sent = self
                .http
                .try_json(Method::POST, "/_hubmock/repositories", body)
                .await;
            match answered(sent, 201) {
                Some(_) => self.note(|b| {
                    b.repositories.insert(name, Told::Acked(()));
                }),
                None => return,
            }
        }
    }

    /// Pipelines created, updated, and every other one deleted (after a push, so that its
    /// runs are cancelled), one at a time in a repository of its own.
    async fn churn(self, t: usize) {
        let repo = churn_repo(self.round, t);
        let path = pipelines_path(&repo);
        for i in 0..150 {
            if self.stopped() {
                return;
            }
            let name = format!("p{i}");
            let key = (repo.clone(), name.clone());
            let first = Spec::new(true, &self.hooks, &["/hook/churn"]);
            let second = Spec::new(false, &self.hooks, &["/hook/churn", "/hook/churn"]);
            self.note(|b| {
                let entry = PipelineEntry {
                    now: None,
                    next: Some(Some(first.clone())),
                };
                b.pipelines.insert(key.clone(), entry);
            });
            let sent = self
                .http
                .try_json(Method::POST, &path, first.body(&name))
                .await;
            let Some(created) = answered(sent, 201) else {
                return;
            };
            let slug = created["slug"].as_str().expect("slug").to_owned();
            self.set_pipeline(&key, Some(first.clone()), Some(Some(second.clone())));
            let sent = self
                .http
                .try_json(Method::PATCH, &format!("{path}{slug}/"), second.body(&name))
                .await;
            if answered(sent, 200).is_none() {
                return;
            }
            self.set_pipeline(&key, Some(second.clone()), None);
            if i % 2 == 0 {
                continue;
            }
            if !self.push(&repo, &format!("t{i}"), None).await {
                return;
            }
            self.set_pipeline(&key, Some(second), Some(None));
            let sent = self
                .http
                .try_send(Method::DELETE, &format!("{path}{slug}/"), &[], Bytes::new())
                .await;
            if answered(sent, 204).is_none() {
                return;
            }
            self.set_pipeline(&key, None, None);
        }
    }

    /// The pipeline's acknowledged state, and the one a change in flight would leave.
    fn set_pipeline(&self, key: &(String, String), now: Option<Spec>, next: Option<Option<Spec>>) {
        self.note(|b| {
            b.pipelines.insert(key.clone(), PipelineEntry { now, next });
        });
    }

    /// One control-API push; `false` when the server did not answer.
    async fn push(&self, repo: &str, tag: &str, whole: Option<usize>) -> bool {
        let key = (repo.to_owned(), tag.to_owned());
        let entry = PushEntry {
            told: Told::InFlight,
            whole,
            seen: None,
        };
        self.note(|b| {
            b.pushes.insert(key.clone(), entry);
        });
        let path = format!("/_hubmock/repositories/{NAMESPACE}/{repo}/push");
        let sent = self
            .http
            .try_json(Method::POST, &path, json!({"tag": tag}))
            .await;
        let Some(runs) = answered(sent, 202) else {
            return false;
        };
        let ids = run_ids(&runs);
        if let Some(whole) = whole {
            assert_eq!(ids.len(), whole, "a push answered {runs:#}");
        }
        self.note(|b| b.pushes.get_mut(&key).unwrap().told = Told::Acked(Some(ids)));
        true
    }

    async fn control_pushes(self, t: usize) {
        for n in 0.. {
            if self.stopped() {
                return;
            }
            let repo = fixed_repo(self.round, n % 2);
            if !self
                .push(&repo, &format!("c{t}-{n}"), Some(FIXED.len()))
                .await
            {
                return;
            }
        }
    }

    async fn registry_pushes(self, client: PushClient) {
        for n in 0.. {
            if self.stopped() {
                return;
            }
            let repo = fixed_repo(self.round, n % 2);
            let tag = format!("g{n}");
            let mut push = ImagePush::new(format!("{NAMESPACE}/{repo}"), &tag);
            push.seed = Some(format!("{}-{}-{n}", self.seed, self.round));
            push.layers = 2;
            push.layer_size = 700;
            let key = (repo.clone(), tag.clone());
            self.note(|b| {
                let entry = ImageEntry {
                    told: Told::InFlight,
                    manifest: push.generate(),
                    seen: None,
                };
                b.images.insert(key.clone(), entry);
                let entry = PushEntry {
                    told: Told::InFlight,
                    whole: Some(FIXED.len()),
                    seen: None,
                };
                b.pushes.insert(key.clone(), entry);
            });
            match client.push(&push).await {
                Ok(pushed) => {
                    assert_eq!(
                        pushed.digest,
                        push.generate().manifest().digest().to_string()
                    );
                    self.note(|b| {
                        b.images.get_mut(&key).unwrap().told = Told::Acked(());
                        b.pushes.get_mut(&key).unwrap().told = Told::Acked(None);
                    });
                }
                Err(PushError::Unreachable { .. }) => return,
                Err(err) => panic!("registry push of {repo}:{tag}: {err}"),
            }
        }
    }

    /// Posts `success` for each step that awaits a callback, as its receiver would.
    async fn callbacks(self, paths: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>) {
        let mut paths = paths.lock().await;
        loop {
            let path = tokio::select! {
                path = paths.recv() => path.expect("the receiver is alive"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {
                    if self.stopped() {
                        return;
                    }
                    continue;
                }
            };
            self.note(|b| {
                let entry = CallbackEntry {
                    told: Told::InFlight,
                    seen: None,
                };
                b.callbacks.insert(path.clone(), entry);
            });
            let body = json!({"state": "success", "description": "crash test"});
            match self.http.try_json(Method::POST, &path, body).await {
                Ok(resp) if resp.status == 200 => {
                    self.note(|b| b.callbacks.get_mut(&path).unwrap().told = Told::Acked(()));
                }
                Ok(resp) if resp.status.is_server_error() => panic!("callback: {resp:?}"),
                Ok(resp) => self.note(|b| {
                    b.callbacks.remove(&path);
                    b.refused.push((path.clone(), format!("{resp:?}")));
                }),
                Err(_) => return,
            }
        }
    }
}

/// Everything each round was told.
#[derive(Default)]
struct Ledger {
    rounds: Vec<Book>,
}

/// Runs fetched during one check, by repository.
#[derive(Default)]
struct Runs {
    by_repo: HashMap<String, Vec<Value>>,
}

impl Runs {
    async fn of(&mut self, http: &Http, repo: &str) -> &[Value] {
        if !self.by_repo.contains_key(repo) {
            let listed = http
                .get(&format!("/_hubmock/runs?repository={NAMESPACE}/{repo}"))
                .await
                .expect(200);
            let runs = listed["runs"].as_array().expect("runs").clone();
            self.by_repo.insert(repo.to_owned(), runs);
        }
        &self.by_repo[repo]
    }

    /// The run and step whose callback path is `path` (`/u/crash/<repo>/hook/<id>/`).
    async fn step_of(&mut self, http: &Http, path: &str) -> Option<(Value, usize)> {
        let repo = path
            .strip_prefix(&format!("/u/{NAMESPACE}/"))
            .and_then(|rest| rest.split('/').next())
            .expect("a callback path of the crash namespace")
            .to_owned();
        for run in self.of(http, &repo).await {
            for (i, step) in run["steps"].as_array().unwrap().iter().enumerate() {
                if step["callback_url"].as_str().map(url_path).as_deref() == Some(path) {
                    return Some((run.clone(), i));
                }
            }
        }
        None
    }
}

impl Ledger {
    async fn verify(
        &mut self,
        http: &Http,
        receiver: &Receiver,
        rounds: &[usize],
    ) -> Result<(), String> {
        let listed = http.get("/_hubmock/repositories").await.expect(200);
        let existing: Vec<String> = listed
            .as_array()
            .or_else(|| listed["repositories"].as_array())
            .expect("a repository list")
            .iter()
            .filter(|r| r["namespace"] == NAMESPACE)
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        let mut runs = Runs::default();
        for &round in rounds {
            let book = &mut self.rounds[round];
            for (name, told) in &book.repositories {
                if *told == Told::Acked(()) && !existing.contains(name) {
                    return Err(format!("repository {name} was acknowledged and is gone"));
                }
            }
            verify_pipelines(http, book).await?;
            verify_pushes(http, &mut runs, book).await?;
            verify_images(http, book).await?;
            verify_callbacks(http, &mut runs, book).await?;
            let repos: Vec<String> = (0..2)
                .map(|i| fixed_repo(round, i))
                .chain((0..2).map(|t| churn_repo(round, t)))
                .collect();
            let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
            for repo in repos {
                for run in runs.of(http, &repo).await.to_vec() {
                    *outcomes
                        .entry(verify_run_after_crash(http, receiver, &run).await?)
                        .or_default() += 1;
                }
            }
            eprintln!("  round {round} checked: runs {outcomes:?}");
        }
        let deliveries = receiver.deliveries.lock().unwrap();
        if let Some((path, n)) = deliveries.iter().find(|(_, n)| **n > 1) {
            return Err(format!(
                "the receiver got {n} deliveries for the step of {path}"
            ));
        }
        Ok(())
    }
}

async fn verify_pipelines(http: &Http, book: &mut Book) -> Result<(), String> {
    let mut by_repo: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (repo, _) in book.pipelines.keys() {
        if !by_repo.contains_key(repo) {
            let page = http
                .get(&format!("{}?page_size=1000", pipelines_path(repo)))
                .await
                .expect(200);
            let results = page["results"].as_array().expect("results").clone();
            by_repo.insert(repo.clone(), results);
        }
    }
    for (repo, pipelines) in &by_repo {
        for pipeline in pipelines {
            let name = pipeline["name"].as_str().unwrap();
            if !book
                .pipelines
                .contains_key(&(repo.clone(), name.to_owned()))
            {
                return Err(format!(
                    "{repo} has a pipeline nobody created: {pipeline:#}"
                ));
            }
        }
    }
    for ((repo, name), entry) in &mut book.pipelines {
        let seen = by_repo[repo]
            .iter()
            .find(|p| p["name"] == name.as_str())
            .map(Spec::of);
        let allowed = seen == entry.now || entry.next.as_ref() == Some(&seen);
        if !allowed {
            return Err(format!(
                "pipeline {repo}/{name} is {seen:?}; it was acknowledged as {:?} (in flight: {:?})",
                entry.now, entry.next
            ));
        }
        *entry = PipelineEntry {
            now: seen,
            next: None,
        };
    }
    Ok(())
}

async fn verify_pushes(http: &Http, runs: &mut Runs, book: &mut Book) -> Result<(), String> {
    for ((repo, tag), entry) in &mut book.pushes {
        let all = runs.of(http, repo).await;
        let mut ids: Vec<u64> = all
            .iter()
            .filter(|r| r["push"]["tag"] == tag.as_str())
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        ids.sort_unstable();
        let shown = || format!("push of {repo}:{tag} ({:?}) has runs {ids:?}", entry.told);
        if let Some(seen) = &entry.seen {
            if *seen != ids {
                return Err(format!("{}; an earlier restart found {seen:?}", shown()));
            }
        }
        match &entry.told {
            Told::Acked(Some(answered)) if *answered != ids => return Err(shown()),
            Told::Acked(None) if Some(ids.len()) != entry.whole => return Err(shown()),
            Told::InFlight if !ids.is_empty() && entry.whole.is_some_and(|w| w != ids.len()) => {
                return Err(format!("{}: half a push", shown()))
            }
            _ => {}
        }
        entry.seen = Some(ids);
    }
    Ok(())
}

async fn verify_images(http: &Http, book: &mut Book) -> Result<(), String> {
    for ((repo, tag), entry) in &mut book.images {
        let name = format!("{NAMESPACE}/{repo}");
        let manifest = entry.manifest.manifest();
        let digest = manifest.digest().to_string();
        let accept = [("accept", manifest.media_type.as_str())];
        let by_digest = http
            .send(
                Method::GET,
                &format!("/v2/{name}/manifests/{digest}"),
                &accept,
                Bytes::new(),
            )
            .await;
        let present = match by_digest.status.as_u16() {
            200 if by_digest.body == manifest.bytes => true,
            404 => false,
            _ => return Err(format!("manifest {digest} of {name}:{tag}: {by_digest:?}")),
        };
        if entry.told == Told::Acked(()) && !present {
            return Err(format!(
                "{name}:{tag} was pushed and acknowledged; its manifest {digest} is gone"
            ));
        }
        if entry.seen.is_some_and(|seen| seen != present) {
            return Err(format!(
                "manifest {digest} of {name}:{tag} came and went across restarts (now {present})"
            ));
        }
        entry.seen = Some(present);
        if !present {
            continue;
        }
        let Generated::Image(image) = &entry.manifest else {
            unreachable!("single images only")
        };
        for blob in image.blobs() {
            let blob_digest = blob.digest().to_string();
            let got = http.get(&format!("/v2/{name}/blobs/{blob_digest}")).await;
            if got.status != 200 || got.body != blob.bytes {
                return Err(format!(
                    "manifest {digest} of {name}:{tag} resolves, its blob {blob_digest} does not: {got:?}"
                ));
            }
        }
        let by_tag = http
            .send(
                Method::GET,
                &format!("/v2/{name}/manifests/{tag}"),
                &accept,
                Bytes::new(),
            )
            .await;
        let tag_digest = by_tag
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        let resolves = by_tag.status == 200 && tag_digest == Some(digest.as_str());
        // A manifest stored by an unanswered put may be there before its tag.
        if !resolves && (entry.told == Told::Acked(()) || by_tag.status != 404) {
            return Err(format!("{name}:{tag} should name {digest}: {by_tag:?}"));
        }
        // The tag and its push event are one: the registry resolves the tag exactly when the
        // Hub API has its tag record (the push's runs are checked with the pushes).
        let record = http
            .get(&format!("/v2/repositories/{name}/tags/{tag}/"))
            .await;
        let recorded = match record.status.as_u16() {
            200 => true,
            404 => false,
            _ => return Err(format!("tag record {name}:{tag}: {record:?}")),
        };
        if recorded != resolves {
            return Err(format!(
                "{name}:{tag}: the registry {} it, the Hub API {} a tag record: half a push",
                if resolves {
                    "resolves"
                } else {
                    "does not resolve"
                },
                if recorded { "has" } else { "has no" },
            ));
        }
    }
    Ok(())
}

async fn verify_callbacks(http: &Http, runs: &mut Runs, book: &mut Book) -> Result<(), String> {
    for (path, entry) in &mut book.callbacks {
        let Some((run, step)) = runs.step_of(http, path).await else {
            return Err(format!("no run has the step of callback {path}"));
        };
        let callback = &run["steps"][step]["callback"];
        let recorded = !callback.is_null();
        if recorded && (callback["state"] != "success" || callback["description"] != "crash test") {
            return Err(format!("callback {path} recorded as {callback}"));
        }
        if entry.told == Told::Acked(()) && !recorded {
            return Err(format!(
                "callback {path} was acknowledged; step {step} of run {} has none: {run:#}",
                run["id"]
            ));
        }
        if entry.seen.is_some_and(|seen| seen != recorded) {
            return Err(format!("callback {path} came and went across restarts"));
        }
        entry.seen = Some(recorded);
    }
    for (path, answer) in &book.refused {
        let Some((run, step)) = runs.step_of(http, path).await else {
            return Err(format!("no run has the step of callback {path}"));
        };
        if run["status"] == "pending" && run["steps"][step]["status"] == "awaiting_callback" {
            return Err(format!(
                "callback {path} was refused ({answer}), yet its step awaits it: {run:#}"
            ));
        }
    }
    Ok(())
}

/// A run the crash may have caught: once the restarted server has sent what it had queued,
/// it is finished (success, cancelled, or error with a delivery interrupted by the crash) or
/// awaits the callback of a step whose delivery was answered.
async fn verify_run_after_crash(
    http: &Http,
    receiver: &Receiver,
    run: &Value,
) -> Result<&'static str, String> {
    let id = run["id"].as_u64().unwrap();
    let mut run = run.clone();
    if run["status"] == "pending" {
        let Some(step) = run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s["status"] == "awaiting_callback")
        else {
            return Err(format!(
                "run {id} is pending with no step under way: {run:#}"
            ));
        };
        let waited = http
            .get(&format!(
                "/_hubmock/runs/{id}?wait=delivered&step={step}&timeout_ms={}",
                WAIT.as_millis()
            ))
            .await
            .expect(200);
        run = waited;
        if run["status"] == "pending" {
            let s = &run["steps"][step];
            let status = s["delivery"]["status"].as_u64();
            if s["status"] != "awaiting_callback"
                || !status.is_some_and(|c| (200..400).contains(&c))
            {
                return Err(format!(
                    "run {id} is pending, step {step} neither delivered nor awaiting: {run:#}"
                ));
            }
            let path = url_path(s["callback_url"].as_str().unwrap());
            if receiver.deliveries_of(&path) != 1 {
                return Err(format!(
                    "step {step} of run {id} was delivered, the receiver got it {} times",
                    receiver.deliveries_of(&path)
                ));
            }
            return Ok("awaiting a callback");
        }
    }
    let steps = run["steps"].as_array().unwrap();
    let interrupted = steps
        .iter()
        .any(|s| s["delivery"]["error"] == hubmock::INTERRUPTED);
    match run["status"].as_str().unwrap() {
        "success" => Ok("success"),
        "cancelled" => Ok("cancelled"),
        "error" if interrupted => Ok("interrupted"),
        _ => Err(format!("run {id} ended as no crash explains: {run:#}")),
    }
}
