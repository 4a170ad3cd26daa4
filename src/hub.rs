//! [`Hub`]: the emulator as a test double inside a Rust test suite, started by a
//! [`HubBuilder`], with [`Expectation`]s checked when it is dropped.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::Config;
use crate::error::Error;
use crate::model::pipeline::{Pipeline, PipelineSpec};
use crate::model::push::PushRequest;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::{Run, RunStatus};
use crate::model::tag::{Tag, TagRecord};
use crate::registry::push::{ImagePush, Platform, PushClient, PushError, PushedManifest};
use crate::registry::RegistryName;
use crate::seed::{Applied, SeedFile};
use crate::store::{DeliveryRecord, RunFilter, Store, WaitFor};
use crate::yaml::FileError;

/// A running emulator on a random local port. Dropping it shuts the server down and checks
/// its [`Expectation`]s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hub = hubmock::Hub::start().await;
/// let repo = hub.create_repository("acme", "app").unwrap();
/// let runs = hub.push(&repo.repo_name(), "v1").unwrap();
/// assert!(runs.is_empty()); // no pipelines yet
/// assert!(hub.uri().starts_with("http://127.0.0.1:"));
/// # }
/// ```
pub struct Hub {
    address: SocketAddr,
    uri: String,
    store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    expectations: Mutex<Vec<Expectation>>,
}

/// Where a [`Hub`]'s server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runtime {
    /// A thread of its own with its own runtime: works under any `#[tokio::test]` flavour.
    OwnThread,
    /// A task on the caller's runtime: for tests on tokio's paused clock, where the emulator's
    /// timers must follow the test's time.
    Current,
}

/// Options for a [`Hub`]; start it with [`HubBuilder::start`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// let hub = hubmock::Hub::builder()
///     .config(hubmock::Config::default().with_auth(false))
///     .callback_timeout(Duration::from_secs(30))
///     .start()
///     .await;
/// # drop(hub);
/// # }
/// ```
#[must_use = "a builder does nothing until it is started"]
pub struct HubBuilder {
    config: Config,
    runtime: Runtime,
}

impl HubBuilder {
    /// Replaces the whole configuration (the builder starts from auth off).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets how long a step may await its callback (R9).
    pub fn callback_timeout(mut self, timeout: Duration) -> Self {
        self.config.callback_timeout = Some(timeout);
        self
    }

    /// Serves https with a certificate made at start for `localhost` and `127.0.0.1`, signed
    /// by a CA made with it ([`Hub::tls_ca`] answers it, for clients to trust):
    /// `serve --tls-self-signed`. [`Config::with_tls`] takes a certificate of your own.
    pub fn tls_self_signed(mut self) -> Self {
        let tls = crate::tls::ServerTls::self_signed(&[])
            .unwrap_or_else(|err| panic!("hubmock cannot start: {err}"));
        self.config.tls = Some(tls);
        self
    }

    /// Trusts the certificate authorities of `pem` for `https://` hook URLs (`--ca-cert`).
    pub fn ca_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config = self.config.with_ca_cert(pem);
        self
    }

    /// Takes any certificate from `https://` receivers (`--insecure-skip-verify`).
    pub fn insecure_skip_verify(mut self) -> Self {
        self.config = self.config.with_insecure_skip_verify(true);
        self
    }

    /// Starts from a seed file: its users join the configured ones, and its repositories and
    /// pipelines are created before [`HubBuilder::start`] returns; `start` panics, with the
    /// file, line and column, if the file cannot be applied (a user given twice with two
    /// passwords, a pipeline in a namespace without a user).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let seed = hubmock::SeedFile::parse(
    ///     "repositories: [{namespace: hubmock, name: app}]\n\
    ///      pipelines: [{repository: hubmock/app, name: deploy, \
    ///                   webhooks: [{name: d, hook_url: \"http://127.0.0.1:9/\"}]}]\n",
    ///     "seed.yaml",
    /// )
    /// .unwrap();
    /// let hub = hubmock::Hub::builder().seed(seed).start().await;
    /// let repo = hubmock::RepoName::new("hubmock", "app").unwrap();
    /// assert_eq!(hub.pipelines(&repo).unwrap()[0].name, "deploy");
    /// # }
    /// ```
    pub fn seed(mut self, seed: SeedFile) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Runs the emulator on the caller's runtime instead of a thread of its own, so that a
    /// test on tokio's paused clock (`#[tokio::test(start_paused = true)]`) moves its timers.
    pub fn on_current_runtime(mut self) -> Self {
        self.runtime = Runtime::Current;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> Hub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("binding 127.0.0.1:0 for hubmock failed");
        listener
            .set_nonblocking(true)
            .expect("could not make the listener non-blocking");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let uri = format!("{}://{address}", self.config.scheme());
        let tls = crate::server::tls_acceptor(&self.config)
            .unwrap_or_else(|err| panic!("hubmock cannot start: {err}"));
        let public_url = self
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| uri.clone());
        let config = Config {
            // A test double that is dropped should not linger on its deliveries.
            shutdown_grace: Duration::from_millis(100),
            ..self.config
        };
        let (store, queue, _) = crate::server::seeded_store(config, &public_url)
            .unwrap_or_else(|err| panic!("hubmock cannot start: {err}"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let serve = {
            let store = store.clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .expect("could not register the listener");
                let stopped = async {
                    let _ = stopped.await;
                };
                let _ = crate::server::serve(listener, store.clone(), queue, tls, stopped).await;
                // With a data directory: what is queued is written, and a clean stop noted.
                store.close();
            }
        };
        match self.runtime {
            Runtime::Current => {
                tokio::spawn(serve);
            }
            Runtime::OwnThread => {
                std::thread::Builder::new()
                    .name(format!("hubmock-{}", address.port()))
                    .spawn(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("could not build hubmock's runtime")
                            .block_on(serve)
                    })
                    .expect("could not start hubmock's thread");
            }
        }
        Hub {
            address,
            uri,
            store,
            shutdown: Some(shutdown),
            expectations: Mutex::new(Vec::new()),
        }
    }
}

impl Hub {
    /// A builder, starting from the default configuration with auth off (so helpers and raw
    /// HTTP calls need no token).
    pub fn builder() -> HubBuilder {
        HubBuilder {
            config: Config::default().with_auth(false),
            runtime: Runtime::OwnThread,
        }
    }

    /// Starts an emulator with the default configuration (auth off).
    pub async fn start() -> Hub {
        Hub::builder().start().await
    }

    /// Starts an emulator with `config`.
    pub async fn start_with(config: Config) -> Hub {
        Hub::builder().config(config).start().await
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (`https://` when it serves TLS).
    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// The certificate authority (PEM) a client trusts to reach this hub over https, when
    /// the hub made its certificate ([`HubBuilder::tls_self_signed`]).
    pub fn tls_ca(&self) -> Option<String> {
        self.store
            .config()
            .tls
            .as_ref()
            .and_then(|tls| tls.ca_pem.clone())
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Creates a repository with default fields.
    pub fn create_repository(&self, namespace: &str, name: &str) -> Result<Repository, Error> {
        let name = RepoName::new(namespace, name)?;
        self.store.create_repository(Repository::new(&name))
    }

    /// Creates a repository with the given fields.
    pub fn add_repository(&self, repository: Repository) -> Result<Repository, Error> {
        self.store.create_repository(repository)
    }

    /// Creates a webhook pipeline.
    pub fn create_pipeline(
        &self,
        repository: &RepoName,
        spec: PipelineSpec,
    ) -> Result<Pipeline, Error> {
        self.store
            .create_pipeline(repository, spec, &repository.namespace)
    }

    /// A repository's webhook pipelines, in creation order.
    pub fn pipelines(&self, repository: &RepoName) -> Result<Vec<Pipeline>, Error> {
        self.store.pipelines(repository)
    }

    /// Applies a seed file now, as [`HubBuilder::seed`] does at start: what it declares is
    /// created when missing and left alone when present; the answer says which. Its users
    /// must be users of this hub already (users are fixed at start).
    pub fn apply_seed(&self, seed: &SeedFile) -> Result<Applied, FileError> {
        crate::seed::apply(&self.store, seed)
    }

    /// Deletes a webhook pipeline, cancelling its pending runs.
    pub fn delete_pipeline(&self, repository: &RepoName, slug: &str) -> Result<(), Error> {
        self.store.delete_pipeline(repository, slug)
    }

    /// Pushes `tag`; answers the runs it started.
    pub fn push(&self, repository: &RepoName, tag: &str) -> Result<Vec<Run>, Error> {
        self.push_with(
            repository,
            PushRequest {
                tag: Some(tag.to_owned()),
                ..PushRequest::default()
            },
        )
    }

    /// Pushes with every detail given.
    pub fn push_with(&self, repository: &RepoName, push: PushRequest) -> Result<Vec<Run>, Error> {
        let runs = self.store.push(repository, push)?;
        Ok(runs.iter().map(|run| Run::clone(run)).collect())
    }

    /// Pushes a tag as the registry does: records `record` (its digest, size and platforms,
    /// as the Hub API's tag endpoints then show them) and fires its push, one run per
    /// pipeline, in one step. [`Hub::push`] records a tag too, with a made-up digest, size 0
    /// and one `linux/amd64` image.
    pub fn record_tag(&self, repository: &RepoName, record: TagRecord) -> Result<Vec<Run>, Error> {
        let runs = self.store.record_tag(repository, record)?;
        Ok(runs.iter().map(|run| Run::clone(run)).collect())
    }

    /// Pushes a generated image as `repository:tag` through the hub's own registry, over
    /// HTTP as a registry client does (blob uploads, then the manifest by tag), so the push
    /// fires the webhook exactly as `docker push` would. `repository` is a registry name
    /// (`acme/app`, or `app` for `library/app`). Set it up with the [`RegistryPush`]
    /// methods (platforms, user, Docker media types), then `.await` it: it answers the
    /// manifest's digest and the runs the push started, or a [`PushError`] naming the
    /// registry's error code (`DENIED`, `NAME_UNKNOWN`, ...).
    ///
    /// With auth on, the push sends Basic credentials of the first configured user (the
    /// default user `hubmock` when none is), who is the pusher and may push only to its
    /// own namespace; `.user(name)` picks another. With auth off it pushes anonymously,
    /// so the pusher is the repository's namespace, as with [`Hub::push`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use hubmock::{Config, Hub};
    /// let hub = Hub::start_with(Config::default().with_user("alice", "s3cret")).await;
    /// let pushed = hub.registry_push("alice/app", "v1").await.unwrap();
    /// assert!(pushed.digest.starts_with("sha256:"));
    /// assert!(pushed.runs.is_empty()); // no pipelines yet
    ///
    /// let index = hub
    ///     .registry_push("alice/app", "v2")
    ///     .platforms(["linux/amd64", "linux/arm64"])
    ///     .await
    ///     .unwrap();
    /// assert_eq!(index.manifests.len(), 2);
    ///
    /// let refused = hub.registry_push("bob/app", "v1").await.unwrap_err();
    /// assert_eq!(refused.code(), Some("DENIED")); // alice pushes only to alice/...
    /// # }
    /// ```
    pub fn registry_push(&self, repository: impl fmt::Display, tag: &str) -> RegistryPush<'_> {
        RegistryPush {
            hub: self,
            push: ImagePush::new(repository.to_string(), tag),
            platforms: Ok(()),
            who: Pusher::Default,
        }
    }

    /// A repository's tags, in the order first pushed.
    pub fn tags(&self, repository: &RepoName) -> Result<Vec<Tag>, Error> {
        self.store.tags(repository)
    }

    /// Reports a callback for a hook id, as a receiver's POST to its `callback_url` would.
    pub fn callback(
        &self,
        repository: &RepoName,
        hook_id: &str,
        body: &[u8],
    ) -> Result<Run, Error> {
        self.store.callback(repository, hook_id, body)
    }

    /// Ends the wait for a step's callback now, as if its callback timeout had passed (R9):
    /// a test of a receiver that never calls back need not wait. The step is named by its
    /// hook id too, so a stale one (after a reset) changes nothing.
    pub fn expire_callback(&self, run_id: u64, step: usize, hook_id: &str) {
        self.store.callback_timed_out(run_id, step, hook_id)
    }

    /// A pipeline's runs, newest first.
    pub fn history(&self, repository: &RepoName, slug: &str) -> Result<Vec<Run>, Error> {
        let runs = self.store.history(repository, slug)?;
        Ok(runs.iter().map(|run| Run::clone(run)).collect())
    }

    /// A run as it is now.
    pub fn run(&self, id: u64) -> Result<Run, Error> {
        self.store.run(id)
    }

    /// Waits until the run is no longer pending, or `timeout` passes; answers the run as it is.
    pub async fn wait_for_run(&self, id: u64, timeout: Duration) -> Result<Run, Error> {
        self.store
            .wait_for_run(id, WaitFor::Finished, timeout)
            .await
    }

    /// Waits until the step's (0-based) delivery has been answered, or will never be sent.
    pub async fn wait_for_delivery(
        &self,
        id: u64,
        step: usize,
        timeout: Duration,
    ) -> Result<Run, Error> {
        self.store
            .wait_for_run(id, WaitFor::Delivered(step), timeout)
            .await
    }

    /// Runs, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Vec<Run> {
        self.store
            .runs(filter)
            .iter()
            .map(|run| Run::clone(run))
            .collect()
    }

    /// Every outbound request, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.store.deliveries(None)
    }

    /// Forgets everything.
    pub fn reset(&self) {
        self.store.reset()
    }

    /// Registers an expectation, checked when the hub is dropped (or by [`Hub::verify`]).
    ///
    /// ```should_panic
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use hubmock::{Expectation, Hub};
    /// let hub = Hub::start().await;
    /// hub.expect(Expectation::deliveries_to("http://127.0.0.1:9/hook").times(1));
    /// drop(hub); // panics: "expected exactly 1 delivery to http://127.0.0.1:9/hook, saw 0"
    /// # }
    /// ```
    pub fn expect(&self, expectation: Expectation) {
        self.expectations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(expectation);
    }

    /// Checks every registered expectation now; panics naming each one that does not hold and
    /// what was seen instead.
    #[track_caller]
    pub fn verify(&self) {
        if let Err(report) = self.check() {
            panic!("{report}");
        }
    }

    fn check(&self) -> Result<(), String> {
        let expectations = self
            .expectations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let failures: Vec<String> = expectations
            .iter()
            .filter_map(|e| e.check(&self.store).err())
            .collect();
        if failures.is_empty() {
            return Ok(());
        }
        let mut report = format!(
            "hubmock at {}: {} expectation(s) not met:",
            self.uri,
            failures.len()
        );
        for failure in failures {
            let _ = write!(report, "\n- {failure}");
        }
        Err(report)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // The registry's temporary directory goes now: the process may end before the
        // emulator's thread lets go of the store.
        self.store.registry().discard();
        // A test that already fails should show its own panic, not ours on top.
        if !std::thread::panicking() {
            if let Err(report) = self.check() {
                panic!("{report}");
            }
        }
    }
}

/// Something a test expects of a [`Hub`] by the time it is dropped, in the manner of
/// wiremock's `Mock::expect`.
#[derive(Clone, Debug)]
#[must_use = "an expectation does nothing until it is given to Hub::expect"]
pub struct Expectation {
    what: Expected,
}

#[derive(Clone, Debug)]
enum Expected {
    /// Requests sent to this URL: exactly `times`, or at least one when `None`.
    Deliveries { url: String, times: Option<usize> },
    /// The run ended with this status.
    RunEnds { id: u64, status: RunStatus },
}

impl Expectation {
    /// At least one delivery is sent to `url` (narrow it with [`Expectation::times`]).
    /// Deliveries are counted in the deliveries log, which keeps the most recent
    /// [`Config::delivery_log_limit`](crate::Config) (10,000 by default).
    pub fn deliveries_to(url: impl Into<String>) -> Expectation {
        Expectation {
            what: Expected::Deliveries {
                url: url.into(),
                times: None,
            },
        }
    }

    /// Exactly `n` deliveries, for [`Expectation::deliveries_to`].
    pub fn times(mut self, n: usize) -> Expectation {
        if let Expected::Deliveries { times, .. } = &mut self.what {
            *times = Some(n);
        }
        self
    }

    /// The run with this id has ended with `status`.
    pub fn run_ends(id: u64, status: RunStatus) -> Expectation {
        Expectation {
            what: Expected::RunEnds { id, status },
        }
    }

    fn check(&self, store: &Store) -> Result<(), String> {
        match &self.what {
            Expected::Deliveries { url, times } => {
                // The log shows URLs without their passwords; so is the expected one compared.
                let url = crate::model::hook_url::redact(url);
                let log = store.deliveries(None);
                let seen = log.iter().filter(|d| d.url == url).count();
                let (ok, wanted) = match times {
                    Some(n) => (seen == *n, format!("exactly {n}")),
                    None => (seen > 0, "at least 1".to_owned()),
                };
                if ok {
                    return Ok(());
                }
                let plural = if *times == Some(1) {
                    "delivery"
                } else {
                    "deliveries"
                };
                let others: BTreeSet<&str> = log
                    .iter()
                    .map(|d| d.url.as_str())
                    .filter(|u| *u != url)
                    .collect();
                let elsewhere = if others.is_empty() {
                    String::new()
                } else {
                    let others: Vec<&str> = others.into_iter().collect();
                    format!(" (deliveries went to: {})", others.join(", "))
                };
                Err(format!(
                    "expected {wanted} {plural} to {url}, saw {seen}{elsewhere}"
                ))
            }
            Expected::RunEnds { id, status } => match store.run(*id) {
                Ok(run) if run.status() == *status => Ok(()),
                Ok(run) => {
                    let steps: Vec<String> = run
                        .steps()
                        .iter()
                        .map(|s| format!("{:?}", s.status))
                        .collect();
                    Err(format!(
                        "expected run {id} to end {status:?}, it is {:?} (steps: {})",
                        run.status(),
                        steps.join(", ")
                    ))
                }
                Err(error) => Err(format!("expected run {id} to end {status:?}: {error}")),
            },
        }
    }
}

/// A push of a generated image through a [`Hub`]'s registry, made by [`Hub::registry_push`];
/// `.await` it to push.
#[must_use = "a registry push does nothing until it is awaited"]
pub struct RegistryPush<'a> {
    hub: &'a Hub,
    push: ImagePush,
    /// The first platform that could not be read, reported when the push is awaited.
    platforms: Result<(), PushError>,
    who: Pusher,
}

/// Whose credentials a [`RegistryPush`] sends.
enum Pusher {
    /// The first configured user's with auth on; none with auth off.
    Default,
    /// A configured user's.
    User(String),
    /// These.
    Credentials(String, String),
    /// None.
    Anonymous,
}

/// What [`Hub::registry_push`] pushed, and the runs it started.
#[derive(Clone, Debug)]
pub struct RegistryPushed {
    /// The digest of the manifest (or index) the tag names: `push_data.images` of the
    /// webhook in the legacy payload format.
    pub digest: String,
    /// Its media type: `push_data.media_type` in the observed format.
    pub media_type: String,
    /// Each platform's image manifest (one, for a single image).
    pub manifests: Vec<PushedManifest>,
    /// The runs of this repository and tag started since the push began (one per pipeline;
    /// more with `--push-events per-manifest`), oldest first.
    pub runs: Vec<Run>,
}

impl RegistryPush<'_> {
    /// One image per platform (`os/architecture` or `os/architecture/variant`): two or more
    /// push an index (each image by digest, then the index by tag). Default: one
    /// `linux/amd64` image.
    pub fn platforms<I, S>(mut self, platforms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for platform in platforms {
            match platform.as_ref().parse::<Platform>() {
                Ok(platform) => parsed.push(platform),
                Err(message) => {
                    self.platforms = Err(PushError::Invalid(message));
                    return self;
                }
            }
        }
        self.push.platforms = parsed;
        self
    }

    /// Pushes as this configured user (its password is the hub's configuration's): the
    /// pusher of the webhook, with auth on or off.
    pub fn user(mut self, user: &str) -> Self {
        self.who = Pusher::User(user.to_owned());
        self
    }

    /// Sends these Basic credentials, configured or not (to see a wrong password refused).
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.who = Pusher::Credentials(user.to_owned(), password.to_owned());
        self
    }

    /// Sends no credentials, even with auth on (to see the push refused).
    pub fn anonymous(mut self) -> Self {
        self.who = Pusher::Anonymous;
        self
    }

    /// Docker's media types (schema 2 manifest, manifest list) instead of OCI's.
    pub fn docker(mut self) -> Self {
        self.push.docker = true;
        self
    }

    /// Other content: the default seed is `repository:tag`, so pushing the same tag again
    /// pushes the same image; another seed makes another image (another digest).
    pub fn seed(mut self, seed: &str) -> Self {
        self.push.seed = Some(seed.to_owned());
        self
    }

    /// `count` layers of `size` bytes per image (default one of 1 KiB).
    pub fn layers(mut self, count: usize, size: usize) -> Self {
        self.push.layers = count;
        self.push.layer_size = size;
        self
    }

    async fn send(self) -> Result<RegistryPushed, PushError> {
        self.platforms?;
        let store = &self.hub.store;
        let config = store.config();
        let users = config.effective_users();
        let credentials = match self.who {
            Pusher::Default if config.auth => users.into_iter().next(),
            Pusher::Default | Pusher::Anonymous => None,
            Pusher::Credentials(user, password) => Some((user, password)),
            Pusher::User(user) => {
                let names: Vec<&str> = users.iter().map(|(name, _)| name.as_str()).collect();
                let known = users.iter().find(|(name, _)| *name == user).cloned();
                Some(known.ok_or_else(|| {
                    PushError::Invalid(format!(
                        "no user `{user}` is configured (users: {}); add it with \
                         Config::with_user",
                        names.join(", ")
                    ))
                })?)
            }
        };
        let mut client = PushClient::new(&self.hub.uri);
        if let Some((user, password)) = &credentials {
            client = client.with_basic(user, password);
        }
        let repo = RegistryName::parse(&self.push.repository)
            .map_err(|err| {
                PushError::Invalid(format!("repository `{}`: {err}", self.push.repository))
            })?
            .repo()
            .clone();
        let filter = RunFilter {
            repository: Some(repo),
            ..RunFilter::default()
        };
        let before = store.runs(&filter).first().map_or(0, |run| run.id());
        let pushed = client.push(&self.push).await?;
        let mut runs: Vec<Run> = store
            .runs(&filter)
            .into_iter()
            .filter(|run| pushed.started(run, before, &self.push.tag))
            .map(|run| Run::clone(&run))
            .collect();
        runs.reverse();
        Ok(RegistryPushed {
            digest: pushed.digest,
            media_type: pushed.media_type,
            manifests: pushed.manifests,
            runs,
        })
    }
}

impl<'a> IntoFuture for RegistryPush<'a> {
    type Output = Result<RegistryPushed, PushError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
