//! How an emulator instance behaves: users, auth, payload format, timeouts.

use std::time::Duration;

use crate::model::format::PayloadFormat;
use crate::model::quirks::{QuirkSpec, Quirks};
use crate::model::tag::PushEvents;
use crate::net::Timeouts;
use crate::seed::SeedFile;
use crate::tls::{ClientTls, ServerTls};

/// How long a request body may take by default ([`Config::body_timeout`]).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a login token is taken by default ([`Config::token_ttl`]): 10 minutes, the
/// lifetime Docker Hub documents for the access tokens of `POST /v2/auth/token` (the older
/// `POST /v2/users/login` documents none).
pub const TOKEN_TTL: Duration = Duration::from_secs(600);

/// How many runs each pipeline keeps by default ([`Config::history_limit`]): 40 pages of a
/// pipeline's History, and about 1.5 MiB a pipeline of one webhook (`benches/memory.rs`), so
/// a process that runs for weeks stays flat.
pub const HISTORY_LIMIT: usize = 1_000;

/// How many deliveries the log keeps by default ([`Config::delivery_log_limit`]).
pub const DELIVERY_LOG_LIMIT: usize = 10_000;

/// The user that exists when none is configured.
pub const DEFAULT_USER: (&str, &str) = ("hubmock", "hubmock");

/// Options of one emulator instance. Build with [`Config::default`] and the `with_*` methods.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base of URLs in payloads (`callback_url`, `repo_url`); the listening URL when `None`.
    pub public_url: Option<String>,
    /// Users as `(name, password)`; each owns the namespace of its name.
    pub users: Vec<(String, String)>,
    /// Whether the Hub API and the registry require credentials (`--no-auth` turns it off).
    pub auth: bool,
    /// The payload shape of pipelines that name none.
    pub payload_format: PayloadFormat,
    /// Docker Hub's quirks for pipelines that name none (`--quirks`); `tag_visible_after`
    /// is the registry's, server-wide. See [`Config::with_quirks`].
    pub quirks: Quirks,
    /// A delivery fault plan (`--fault-plan`): duplicates, reordering, retries, delays and
    /// forged posts, chosen by its seed. See [`Config::with_fault_plan`].
    pub fault_plan: Option<std::sync::Arc<crate::faults::FaultPlan>>,
    /// How long a delivery may take before it fails the step.
    pub delivery_timeout: Duration,
    /// How long a step may await its callback (R9); `None`: forever, as the real Hub.
    pub callback_timeout: Option<Duration>,
    /// Whether a push to an unknown repository creates it.
    pub implicit_repositories: bool,
    /// How many push events a manifest list or index pushed by tag through the registry
    /// fires: one for the tag, or also one per platform manifest.
    pub push_events: PushEvents,
    /// How many outbound requests `/_hubmock/deliveries` remembers (oldest dropped first).
    pub delivery_log_limit: usize,
    /// How many runs each pipeline keeps: a push that takes a pipeline past this drops its
    /// oldest finished runs in the same commit (pending runs are never dropped). At least 1;
    /// 0 is taken as 1. See [`Config::with_history_limit`].
    pub history_limit: usize,
    /// How long shutdown waits for in-flight deliveries.
    pub shutdown_grace: Duration,
    /// How long a login token is taken ([`Config::with_token_ttl`]).
    pub token_ttl: Duration,
    /// How many runs may be pending at once; a push that would start more is refused (`503`),
    /// so no hook configuration (a receiver that pushes on every delivery, say) can grow the
    /// work without bound.
    pub max_pending_runs: usize,
    /// How many connections are served at once; the newest past that are answered `503` and
    /// closed.
    pub max_connections: usize,
    /// How long a request head may take to arrive whole, and a connection may sit idle between
    /// requests ([`Timeouts`]).
    pub connection_timeouts: Timeouts,
    /// How long a request body may take to arrive whole (bodies read into memory, at most
    /// 1 MiB), or may pause between two reads (streamed bodies: a state import); past that
    /// the request is answered `408` and the connection closed.
    pub body_timeout: Duration,
    /// The token the control API requires as `Authorization: Bearer <token>`; `None`: the
    /// control API is open, as it always was. See [`Config::with_control_token`].
    pub control_token: Option<String>,
    /// Where the state is kept across restarts (`--data-dir`); `None`: in memory only.
    pub data_dir: Option<std::path::PathBuf>,
    /// How many journal bytes are written between two snapshots of a data directory.
    pub snapshot_bytes: u64,
    /// A seed file applied when the emulator starts, before it accepts a request: its users
    /// join [`Config::users`], its repositories and pipelines are created when missing. See
    /// [`Config::with_seed`].
    pub seed: Option<SeedFile>,
    /// How deliveries (and every other outbound request) trust `https://` receivers: the
    /// platform's certificate authorities, more given as PEM (`--ca-cert`), or none checked
    /// (`--insecure-skip-verify`). See [`Config::with_ca_cert`].
    pub client_tls: ClientTls,
    /// Serve https with this certificate (`--tls-cert`/`--tls-key`, `--tls-self-signed`);
    /// `None`: plain http. See [`Config::with_tls`].
    pub tls: Option<ServerTls>,
}

/// The default connection cap: half the process's open-file limit (the other half is left to
/// deliveries and files), between 16 and 4,096. A cap above the limit would make accepts fail
/// before the cap is reached.
pub fn default_max_connections() -> usize {
    #[cfg(unix)]
    let open_files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    #[cfg(not(unix))]
    let open_files = 8192u64;
    (open_files / 2).clamp(16, 4096) as usize
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: None,
            users: Vec::new(),
            auth: true,
            payload_format: PayloadFormat::Legacy,
            quirks: Quirks::default(),
            fault_plan: None,
            delivery_timeout: Duration::from_secs(10),
            callback_timeout: None,
            implicit_repositories: true,
            push_events: PushEvents::PerTag,
            delivery_log_limit: DELIVERY_LOG_LIMIT,
            history_limit: HISTORY_LIMIT,
            shutdown_grace: Duration::from_secs(5),
            token_ttl: TOKEN_TTL,
            max_pending_runs: 10_000,
            max_connections: default_max_connections(),
            connection_timeouts: Timeouts::default(),
            body_timeout: BODY_TIMEOUT,
            control_token: None,
            data_dir: None,
            snapshot_bytes: crate::store::SNAPSHOT_BYTES,
            seed: None,
            client_tls: ClientTls::default(),
            tls: None,
        }
    }
}

impl Config {
    /// Sets the base URL that appears in payloads.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Adds a user.
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Turns the Hub API's token check on or off.
    pub fn with_auth(mut self, auth: bool) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the default payload format.
    pub fn with_payload_format(mut self, format: PayloadFormat) -> Self {
        self.payload_format = format;
        self
    }

    /// Sets Docker Hub's quirks for pipelines that name none (`--quirks hub-2020,no-tag`):
    /// a profile also sets the default payload format, so call
    /// [`Config::with_payload_format`] after this to keep another.
    pub fn with_quirks(mut self, spec: &QuirkSpec) -> Self {
        self.quirks = spec.quirks();
        if let Some(format) = spec.format() {
            self.payload_format = format;
        }
        self
    }

    /// Sets the delivery fault plan: every delivery is tried against its rules (see
    /// [`crate::faults`]).
    pub fn with_fault_plan(mut self, plan: crate::faults::FaultPlan) -> Self {
        self.fault_plan = Some(std::sync::Arc::new(plan));
        self
    }

    /// Sets the delivery timeout.
    pub fn with_delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// Sets (or clears) the callback timeout.
    pub fn with_callback_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.callback_timeout = timeout;
        self
    }

    /// Whether a push creates an unknown repository.
    pub fn with_implicit_repositories(mut self, on: bool) -> Self {
        self.implicit_repositories = on;
        self
    }

    /// Sets how many push events an index pushed by tag fires.
    pub fn with_push_events(mut self, push_events: PushEvents) -> Self {
        self.push_events = push_events;
        self
    }

    /// Sets how many outbound requests the deliveries log keeps (oldest dropped first).
    pub fn with_delivery_log_limit(mut self, limit: usize) -> Self {
        self.delivery_log_limit = limit;
        self
    }

    /// Sets how many runs each pipeline keeps (at least 1; 0 is taken as 1). When a push
    /// starts a run that takes its pipeline past `limit`, the pipeline's oldest *finished*
    /// runs are dropped in the same commit, until it holds `limit` or only pending runs are
    /// left to drop: pending runs are never dropped, so a pipeline holds more than `limit`
    /// while more than `limit` of its runs are pending. A dropped run is gone as if it had
    /// never been: `/_hubmock/runs/{id}` answers `404`, and so does its old `callback_url`,
    /// as for an unknown hook id.
    pub fn with_history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// Sets how many runs may be pending at once.
    pub fn with_max_pending_runs(mut self, max: usize) -> Self {
        self.max_pending_runs = max;
        self
    }

    /// Sets how many connections are served at once.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets the request-head and idle timeouts of connections.
    pub fn with_connection_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.connection_timeouts = timeouts;
        self
    }

    /// Sets how long a request body may take.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Sets how long a login token (Hub API logins, the registry's `/token`) is taken: past it,
    /// the token is refused exactly as an unknown one (`401`), and the client logs in again.
    /// Zero makes every token expired when issued (to test a client's handling of expiry).
    pub fn with_token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Trusts the certificate authorities of `pem` (one or more PEM certificates:
    /// `--ca-cert FILE`) for `https://` receivers, beside the platform's: a team's own CA, or a
    /// receiver's self-signed certificate. A certificate that does not parse stops the
    /// emulator's start with a message saying so.
    pub fn with_ca_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.client_tls.ca_certs.push(pem.into());
        self
    }

    /// Serves https with `tls` instead of plain http: every surface (Hub API, callbacks,
    /// control API, pages, registry), HTTP/2 or HTTP/1.1 by ALPN; the listening URL and the
    /// default public URL say `https://`. [`ServerTls::self_signed`] makes a certificate and
    /// the CA a client trusts ([`ServerTls::ca_pem`]).
    pub fn with_tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The scheme the emulator serves: `https` with [`Config::tls`], else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Takes any certificate from `https://` receivers (`--insecure-skip-verify`): for
    /// receivers whose certificate is not at hand. The handshake's signatures are still
    /// checked.
    pub fn with_insecure_skip_verify(mut self, skip: bool) -> Self {
        self.client_tls.insecure_skip_verify = skip;
        self
    }

    /// Requires `Authorization: Bearer <token>` on the control API (`/_hubmock/`), health and
    /// the OpenAPI document excepted; a request without it, or with another token, is refused
    /// with `401` before its body is read. The Hub API and the callback endpoint keep their own
    /// auth. Give a token that is not empty and has no whitespace at its ends (HTTP drops it
    /// from headers); [`ApiClient::with_control_token`](crate::ApiClient::with_control_token)
    /// sends it.
    pub fn with_control_token(mut self, token: impl Into<String>) -> Self {
        self.control_token = Some(token.into());
        self
    }

    /// Keeps the state in `dir` across restarts (see [`crate::store::Store::open`]).
    pub fn with_data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Starts the emulator from a seed file (`serve --config FILE`): its users join the
    /// configured ones (the same name with another password is refused when the emulator
    /// starts), and its repositories and pipelines are created before the first request is
    /// accepted, each only when one of its name is missing.
    pub fn with_seed(mut self, seed: SeedFile) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The users in force: the configured ones and the seed file's, or the default
    /// `hubmock`/`hubmock` when neither names one.
    pub fn effective_users(&self) -> Vec<(String, String)> {
        crate::seed::joined_users(&self.users, self.seed.as_ref())
    }
}
