//! [`Hub`]: the emulator as a test double inside a Rust test suite.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::Config;
use crate::error::Error;
use crate::model::pipeline::{Pipeline, PipelineSpec};
use crate::model::repository::{RepoName, Repository};
use crate::model::run::Run;
use crate::store::{DeliveryRecord, PushRequest, RunFilter, Store, WaitFor};

/// A running emulator on a random local port, with its own runtime thread so it works under any
/// `#[tokio::test]` flavour. Dropping it shuts the server down.
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
}

impl Hub {
    /// Starts an emulator with the default configuration (auth off, so helpers and raw HTTP
    /// calls need no token).
    pub async fn start() -> Hub {
        Hub::start_with(Config::default().with_auth(false)).await
    }

    /// Starts an emulator with `config`.
    pub async fn start_with(config: Config) -> Hub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("binding 127.0.0.1:0 for hubmock failed");
        listener
            .set_nonblocking(true)
            .expect("could not make the listener non-blocking");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let uri = format!("http://{address}");
        let public_url = config.public_url.clone().unwrap_or_else(|| uri.clone());
        let config = Config {
            // A test double that is dropped should not linger on its deliveries.
            shutdown_grace: Duration::from_millis(100),
            ..config
        };
        let (store, queue) = Store::new(config, &public_url);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server_store = store.clone();
        std::thread::Builder::new()
            .name(format!("hubmock-{}", address.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("could not build hubmock's runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("could not register the listener");
                    let stopped = async {
                        let _ = stopped.await;
                    };
                    let _ = crate::server::serve(listener, server_store, queue, stopped).await;
                });
            })
            .expect("could not start hubmock's thread");
        Hub {
            address,
            uri,
            store,
            shutdown: Some(shutdown),
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn uri(&self) -> String {
        self.uri.clone()
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
        self.store.push(repository, push)
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
        self.store.runs(filter)
    }

    /// Every outbound request, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.store.deliveries(None)
    }

    /// Forgets everything.
    pub fn reset(&self) {
        self.store.reset()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
