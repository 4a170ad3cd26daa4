//! How an emulator instance behaves: users, auth, payload format, timeouts.

use std::time::Duration;

use crate::model::format::PayloadFormat;

/// The user that exists when none is configured.
pub const DEFAULT_USER: (&str, &str) = ("hubmock", "hubmock");

/// Options of one emulator instance. Build with [`Config::default`] and the `with_*` methods.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base of URLs in payloads (`callback_url`, `repo_url`); the listening URL when `None`.
    pub public_url: Option<String>,
    /// Users as `(name, password)`; each owns the namespace of its name.
    pub users: Vec<(String, String)>,
    /// Whether the Hub API requires a token.
    pub auth: bool,
    /// The payload shape of pipelines that name none.
    pub payload_format: PayloadFormat,
    /// How long a delivery may take before it fails the step.
    pub delivery_timeout: Duration,
    /// How long a step may await its callback (R9); `None`: forever, as the real Hub.
    pub callback_timeout: Option<Duration>,
    /// Whether a push to an unknown repository creates it.
    pub implicit_repositories: bool,
    /// How many outbound requests `/_hubmock/deliveries` remembers (oldest dropped first).
    pub delivery_log_limit: usize,
    /// How long shutdown waits for in-flight deliveries.
    pub shutdown_grace: Duration,
    /// How many runs may be pending at once; a push that would start more is refused (`503`),
    /// so no hook configuration (a receiver that pushes on every delivery, say) can grow the
    /// work without bound.
    pub max_pending_runs: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: None,
            users: Vec::new(),
            auth: true,
            payload_format: PayloadFormat::Legacy,
            delivery_timeout: Duration::from_secs(10),
            callback_timeout: None,
            implicit_repositories: true,
            delivery_log_limit: 10_000,
            shutdown_grace: Duration::from_secs(5),
            max_pending_runs: 10_000,
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

    /// Sets how many runs may be pending at once.
    pub fn with_max_pending_runs(mut self, max: usize) -> Self {
        self.max_pending_runs = max;
        self
    }

    /// The users in force: the configured ones, or the default `hubmock`/`hubmock`.
    pub fn effective_users(&self) -> Vec<(String, String)> {
        if self.users.is_empty() {
            vec![(DEFAULT_USER.0.to_owned(), DEFAULT_USER.1.to_owned())]
        } else {
            self.users.clone()
        }
    }
}
