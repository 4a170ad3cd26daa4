//! The `hubmock` command: parse flags, call the library, map errors to an exit code.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use hubmock::model::fields::is_absolute_http_url;
use hubmock::model::quirks::QuirkSpec;
use hubmock::net::Timeouts;
use hubmock::waiting::{Expect, Verdict};
use hubmock::{scenario, Config, PayloadFormat, PushEvents};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Docker Hub emulator for integration tests.
#[derive(Parser)]
#[command(name = "hubmock", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the emulated Hub API, callbacks and the control API on one port.
    Serve(Box<ServeArgs>),
    /// Run YAML scenarios (files or folders), each against its own emulator.
    /// Exit 0 when all pass, 1 when any fails, 2 when a file is invalid.
    Run(RunArgs),
    /// Check YAML scenarios, and with --config a seed file, without running or serving
    /// anything. Exit 0 when all are valid, 2 otherwise.
    Check(CheckArgs),
    /// Send generated Docker Hub payloads to a webhook receiver and check that it answers
    /// (and, with --expect-callback, calls back) as Docker Hub expects. Exit 0 when every case
    /// passes, 1 when one fails (printed shrunk, with the seed), 2 when the URL is invalid or
    /// nothing listens there.
    FuzzReceiver(FuzzReceiverArgs),
    /// Push a tag to a running hubmock (the control API's push) and, with --wait or
    /// --expect, wait until every run the push started has finished, then print each run's
    /// steps, deliveries and callbacks. Exit 0 as expected, 1 when an --expect is not met or
    /// a run is still pending at --timeout (a diff of expected and actual is printed), 2
    /// when the push could not be made.
    Push(PushArgs),
    /// Push a generated image through a running hubmock's registry (as docker push does),
    /// then wait and report as `push` does. Same exit codes.
    PushImage(PushImageArgs),
}

/// What `push` and `push-image` share: where the hub is, and the waiting.
#[derive(Args)]
struct WaitArgs {
    /// The hubmock to push to.
    #[arg(long, default_value = "http://127.0.0.1:5555", value_name = "URL", value_parser = absolute_http_url)]
    hub: String,
    /// Wait until every run the push started has finished, then print them.
    #[arg(long)]
    wait: bool,
    /// What the runs must end as: STATUS for every run, or PIPELINE=STATUS for the runs of
    /// one pipeline (by slug); repeatable; implies --wait.
    #[arg(long, value_name = "STATUS|PIPELINE=STATUS")]
    expect: Vec<Expect>,
    /// How long to wait for the runs, e.g. 30s or 2m.
    #[arg(long, default_value = "30s", value_parser = longer_than_zero)]
    timeout: Duration,
    /// Print the runs as JSON (`{"runs", "finished", "diff"}`) instead of text.
    #[arg(long)]
    json: bool,
    /// The control token of a hubmock started with --control-token.
    #[arg(long, value_name = "TOKEN")]
    control_token: Option<String>,
    /// Trust the certificate authorities in FILE (PEM) for an https:// hubmock (repeatable).
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,
    /// Take any certificate from an https:// hubmock.
    #[arg(long)]
    insecure_skip_verify: bool,
}

#[derive(Args)]
struct PushArgs {
    /// The repository and tag, e.g. acme/app:v1 (tag latest when absent).
    target: String,
    /// Who pushed (default: the repository's owner).
    #[arg(long, value_name = "NAME")]
    pusher: Option<String>,
    /// An image id or digest the push names (repeatable; one is made up when none).
    #[arg(long = "image", value_name = "ID")]
    images: Vec<String>,
    /// The manifest's media type.
    #[arg(long, value_name = "TYPE")]
    media_type: Option<String>,
    /// One more tag of the same image, as an automated build makes (repeatable): one more
    /// post each (`images: null` with the images-null-extra-posts quirk).
    #[arg(long = "extra-tag", value_name = "TAG")]
    extra_tags: Vec<String>,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Args)]
struct PushImageArgs {
    /// The repository and tag, e.g. acme/app:v1 (tag latest when absent).
    target: String,
    /// `os/architecture[/variant]` (repeatable); two or more push an index (multi-arch).
    #[arg(long = "platform", value_name = "OS/ARCH")]
    platforms: Vec<String>,
    /// Docker's media types (schema 2 manifest, manifest list) instead of OCI's.
    #[arg(long)]
    docker: bool,
    /// The registry user and password (needed unless hubmock runs with --no-auth).
    #[arg(long, value_name = "NAME:PASSWORD", value_parser = parse_user)]
    user: Option<(String, String)>,
    /// What the content follows from (default: the repository and tag, so the same tag
    /// pushes the same image).
    #[arg(long, value_name = "TEXT")]
    seed: Option<String>,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Args)]
struct FuzzReceiverArgs {
    /// The receiver's URL, e.g. http://127.0.0.1:8080/hook.
    url: String,
    /// How many passing cases make a pass (at least 1).
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = at_least_one::<u32>)]
    cases: u32,
    /// Seed of the generator, to send the same payloads again; random (and printed) if absent.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Only this payload format; every format if absent.
    #[arg(long, value_name = "legacy|current|observed")]
    format: Option<PayloadFormat>,
    /// How long the receiver may take to answer, and to call back, e.g. 10s or 500ms.
    #[arg(long, default_value = "10s", value_parser = longer_than_zero)]
    timeout: Duration,
    /// Each case also needs a valid callback to the payload's callback_url.
    #[arg(long)]
    expect_callback: bool,
    /// How long shrinking a failure may take before the smallest so far is printed;
    /// 0s prints the first failure as it was found.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    max_shrink_time: Duration,
    /// Trust the certificate authorities in FILE (PEM) for an https:// receiver, beside the
    /// platform's (repeatable).
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,
    /// Take any certificate from an https:// receiver.
    #[arg(long)]
    insecure_skip_verify: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Scenario files, or folders of *.yaml files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// How many scenarios run at once, at least 1 (default: the number of cores, at least 2).
    #[arg(long, value_name = "N", value_parser = at_least_one::<usize>)]
    jobs: Option<usize>,
    /// Run only scenarios whose name or file contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Trust the certificate authorities in FILE (PEM) for https:// external receivers,
    /// beside the platform's (repeatable).
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,
    /// Take any certificate from https:// external receivers.
    #[arg(long)]
    insecure_skip_verify: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// Scenario files, or folders of *.yaml files.
    #[arg(required_unless_present = "config", value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// A seed file for `serve --config`, checked as `serve` would read it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The users `serve` will be given (repeatable), so that the seed file's users and
    /// pipelines' namespaces are checked against them as `serve` would.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user, requires = "config")]
    users: Vec<(String, String)>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Port to bind; 0 picks a free one (read it from the first line printed).
    #[arg(long, default_value_t = 5555)]
    port: u16,
    /// Base URL that appears in payloads (callback_url, repo_url); default: the listening URL.
    /// An absolute http:// or https:// URL.
    #[arg(long, value_name = "URL", value_parser = absolute_http_url)]
    public_url: Option<String>,
    /// A user as name:password (repeatable); each owns the namespace of its name.
    /// Without any, the user hubmock/hubmock exists.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    users: Vec<(String, String)>,
    /// A seed file (YAML): users, repositories and webhook pipelines to start with. Its users
    /// join the --user ones; its repositories and pipelines are created before the first
    /// request when missing, and left alone when present.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Let every Hub API and registry request through without credentials.
    #[arg(long)]
    no_auth: bool,
    /// Payload shape of pipelines that name none: legacy, or the --quirks profile's.
    #[arg(long, value_name = "legacy|current|observed")]
    payload_format: Option<PayloadFormat>,
    /// Docker Hub's quirks for pipelines that name none: at most one profile (docs-2016,
    /// hub-2020, hub-2026) and any quirks, comma-separated: duplicate-per-manifest,
    /// images-null-extra-posts, no-tag, callback-gone, tag-visible-after=D (the registry's).
    /// A profile sets the payload format unless --payload-format is given.
    #[arg(long, value_name = "PROFILE,QUIRK,...")]
    quirks: Option<QuirkSpec>,
    /// A delivery fault plan (YAML: `seed` and `faults`): duplicates, out-of-order
    /// deliveries, retries after an answer, delays and forged posts, the same for the same
    /// seed. Checked at start; a bad file exits 2 naming the line.
    #[arg(long, value_name = "FILE")]
    fault_plan: Option<PathBuf>,
    /// How long a delivery may take before its step fails, e.g. 10s or 500ms.
    #[arg(long, default_value = "10s", value_parser = longer_than_zero)]
    delivery_timeout: Duration,
    /// How long a step may await its callback before it times out; default: forever.
    #[arg(long, value_parser = callback_timeout)]
    callback_timeout: Option<Duration>,
    /// How long a login token (Hub API logins, the registry's /token) is taken; past it the
    /// token answers 401 as an unknown one would. Default 10m, as Docker Hub's access tokens.
    #[arg(long, default_value = "10m", value_parser = longer_than_zero)]
    token_ttl: Duration,
    /// Answer 404 to a push to an unknown repository instead of creating it (control API and
    /// registry alike).
    #[arg(long)]
    no_implicit_repositories: bool,
    /// Push events of a manifest list or index pushed by tag through the registry: per-tag
    /// fires one (the tag, the index's digest); per-manifest also one per platform manifest.
    #[arg(long, default_value = "per-tag", value_name = "per-tag|per-manifest")]
    push_events: PushEvents,
    /// How many runs may be pending at once; a push that would start more answers 503.
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = at_least_one::<usize>)]
    max_pending_runs: usize,
    /// How many runs each pipeline keeps (at least 1): a push that takes a pipeline past N
    /// drops its oldest finished runs, never a pending one. 1000 is 40 History pages and about
    /// 1.5 MiB a pipeline of one webhook, so a process that runs for weeks stays flat.
    #[arg(long, default_value_t = hubmock::HISTORY_LIMIT, value_name = "N", value_parser = at_least_one::<usize>)]
    history_limit: usize,
    /// How many deliveries the log (/_hubmock/deliveries, History's payloads) keeps, oldest
    /// dropped first (at least 1).
    #[arg(long, default_value_t = hubmock::DELIVERY_LOG_LIMIT, value_name = "N", value_parser = at_least_one::<usize>)]
    delivery_log_limit: usize,
    /// How many connections are served at once; the newest past that are answered 503 and
    /// closed (default: half the open-file limit, between 16 and 4096).
    #[arg(long, value_name = "N", value_parser = at_least_one::<usize>)]
    max_connections: Option<usize>,
    /// How long a request head may take to arrive whole (also a new connection's first).
    #[arg(long, default_value = "30s", value_parser = longer_than_zero)]
    header_timeout: Duration,
    /// How long a connection may sit idle between requests before it is closed.
    #[arg(long, default_value = "120s", value_parser = longer_than_zero)]
    idle_timeout: Duration,
    /// How long a request body may take (a state import: the longest pause in it); past that
    /// the request is answered 408.
    #[arg(long, default_value = "30s", value_parser = longer_than_zero)]
    body_timeout: Duration,
    /// Require this token as `Authorization: Bearer <TOKEN>` on the control API (/_hubmock/),
    /// health and openapi.json excepted. The Hub API and callbacks keep their own auth.
    /// Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HUBMOCK_CONTROL_TOKEN",
        hide_env_values = true,
        value_parser = control_token
    )]
    control_token: Option<String>,
    /// Keep the state in DIR across restarts and crashes: repositories, pipelines, runs,
    /// deliveries, login tokens and the registry's images. Each change is on disk before it is
    /// answered. Created if missing; one hubmock at a time may use it.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Trust the certificate authorities in FILE (PEM) for https:// hook URLs, beside the
    /// platform's: a team's own CA, or a receiver's self-signed certificate (repeatable).
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,
    /// Take any certificate from https:// receivers (a warning is printed at start).
    #[arg(long)]
    insecure_skip_verify: bool,
    /// Serve https with the certificate chain in FILE (PEM, the server's certificate first);
    /// needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve https with a certificate made at start for the bind address, localhost and
    /// 127.0.0.1, signed by a CA made with it; --tls-ca-out writes that CA for clients to trust.
    #[arg(long)]
    tls_self_signed: bool,
    /// Write the CA of --tls-self-signed to FILE (PEM), before the listening line is printed.
    #[arg(long, value_name = "FILE", requires = "tls_self_signed")]
    tls_ca_out: Option<PathBuf>,
    /// Journal bytes written between two snapshots of the data directory.
    #[arg(long, value_name = "BYTES", hide = true, value_parser = at_least_one::<u64>)]
    snapshot_bytes: Option<u64>,
    #[command(flatten)]
    log: LogArgs,
}

/// How much `serve` logs to stderr, and how. RUST_LOG, when set, decides what is logged
/// instead of -v and -q.
#[derive(Args)]
struct LogArgs {
    /// Log more: -v adds debug events, -vv everything (the default is info: each request,
    /// delivery and callback).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Log only warnings and errors.
    #[arg(short, long)]
    quiet: bool,
    /// Log lines as text, or as json (one object per line, for log collectors).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "text|json")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl LogArgs {
    /// The level of hubmock's own events.
    fn level(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "warn",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        }
    }
}

/// Installs the log on stderr: hubmock's events from `level` up and other crates' warnings,
/// unless RUST_LOG is set (then it decides, e.g. `RUST_LOG=hubmock::delivery=debug`). stdout
/// stays for what a command prints (`serve`'s listening line, `run`'s results).
fn install_log(level: &str, format: LogFormat) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::builder().parse(&directives).map_err(|err| {
                format!(
                    "RUST_LOG={directives:?} is not a log filter ({err}); \
                     e.g. RUST_LOG=hubmock=debug"
                )
            })?
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err("RUST_LOG is not valid UTF-8".to_owned())
        }
        _ => EnvFilter::new(format!("warn,hubmock={level}")),
    };
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => log.json().flatten_event(true).try_init(),
    };
    installed.map_err(|err| format!("could not install the log: {err}"))
}

fn parse_user(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, password)) if !name.is_empty() => Ok((name.to_owned(), password.to_owned())),
        _ => Err(format!("'{text}' is not of the form name:password")),
    }
}

/// A count where zero would do nothing and report success (`--jobs`, `--cases`).
fn at_least_one<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let count: T = text.parse().map_err(|err| format!("{err}"))?;
    if count == T::default() {
        return Err("must be at least 1".to_owned());
    }
    Ok(count)
}

/// A time limit: zero would fail everything at once, so it is refused rather than obeyed.
fn longer_than_zero(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if duration.is_zero() {
        return Err("must be longer than zero, e.g. 10s or 500ms".to_owned());
    }
    Ok(duration)
}

/// `--callback-timeout`: "no timeout" is the flag left out, not `0s`.
fn callback_timeout(text: &str) -> Result<Duration, String> {
    longer_than_zero(text).map_err(|err| format!("{err}; leave the flag out to wait forever"))
}

/// `--control-token`: an empty token would guard nothing, and whitespace at its ends is dropped
/// from HTTP headers, so a token with it could never be sent.
fn control_token(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(
            "must not be empty; leave the flag out to run without a control token".to_owned(),
        );
    }
    if text.trim() != text {
        return Err(
            "must not start or end with whitespace, which HTTP drops from headers".to_owned(),
        );
    }
    Ok(text.to_owned())
}

fn absolute_http_url(text: &str) -> Result<String, String> {
    if is_absolute_http_url(text) {
        Ok(text.to_owned())
    } else {
        Err("must be an absolute http:// or https:// URL, e.g. http://hubmock:5555".to_owned())
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hubmock: {err}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    // Only `serve` logs its traffic by default; the other commands print their own results
    // and log only warnings (their in-process emulators' traffic is there with RUST_LOG).
    match &cli.command {
        Command::Serve(args) => install_log(args.log.level(), args.log.log_format)?,
        _ => install_log("warn", LogFormat::Text)?,
    }
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Run(args) => run_scenarios(args),
        Command::Check(args) => check_scenarios(args),
        Command::FuzzReceiver(args) => fuzz_receiver(args),
        Command::Push(args) => push(args),
        Command::PushImage(args) => push_image(args),
    }
}

/// `acme/app:v1` as the repository and the tag (`latest` when none is given).
fn target(text: &str) -> Result<(hubmock::RepoName, String), String> {
    let (name, tag) = match text.rsplit_once(':') {
        Some((name, tag)) => (name, tag.to_owned()),
        None => (text, "latest".to_owned()),
    };
    let name = hubmock::RepoName::parse(name)
        .map_err(|err| format!("{text} is not NAMESPACE/NAME[:TAG]: {}", err.to_json()))?;
    Ok((name, tag))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("could not start the runtime: {err}"))
}

impl WaitArgs {
    fn waits(&self) -> bool {
        self.wait || !self.expect.is_empty()
    }

    fn tls(&self) -> Result<hubmock::tls::ClientTls, String> {
        hubmock::tls::ClientTls::from_files(&self.ca_cert, self.insecure_skip_verify)
    }

    fn api(&self) -> Result<hubmock::ApiClient, String> {
        let mut api = hubmock::ApiClient::new(&self.hub).with_tls(&self.tls()?)?;
        if let Some(token) = &self.control_token {
            api = api.with_control_token(token);
        }
        Ok(api)
    }

    /// Waits for `runs` until the deadline (beyond one long-poll's five minutes if need be).
    async fn finish(
        &self,
        api: &hubmock::ApiClient,
        runs: Vec<hubmock::Run>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<hubmock::Run>, String> {
        let mut done = Vec::with_capacity(runs.len());
        for mut run in runs {
            while run.is_pending() {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                run = api
                    .wait_for_run(run.id(), left)
                    .await
                    .map_err(|err| err.to_string())?;
            }
            done.push(run);
        }
        Ok(done)
    }

    /// `work`, given up 5 s past `--timeout` (a hub that takes the connection and never
    /// answers): then an error, exit 2.
    async fn bounded(
        &self,
        work: impl std::future::Future<Output = Result<ExitCode, String>>,
    ) -> Result<ExitCode, String> {
        let limit = self.timeout + Duration::from_secs(5);
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(format!(
                "{} did not answer within {}",
                self.hub,
                humantime::format_duration(limit)
            ))
        })
    }

    /// Prints the runs (and the diff), and answers the exit code.
    fn report(&self, runs: Vec<hubmock::Run>) -> ExitCode {
        let finished = runs.iter().all(|run| !run.is_pending());
        if !self.waits() {
            if self.json {
                println!("{}", serde_json::json!({ "runs": runs }));
            } else {
                print!("{}", hubmock::waiting::report(&runs));
            }
            return ExitCode::SUCCESS;
        }
        let verdict = Verdict::judge(runs, finished, &self.expect);
        if self.json {
            let answer = serde_json::json!({
                "runs": verdict.runs,
                "finished": verdict.finished,
                "diff": verdict.diff,
            });
            println!("{answer}");
        } else {
            print!("{}", hubmock::waiting::report(&verdict.runs));
            if !verdict.finished {
                println!(
                    "timed out after {}: not every run finished",
                    humantime::format_duration(self.timeout)
                );
            }
            if let Some(diff) = &verdict.diff {
                print!("{diff}");
            }
        }
        ExitCode::from(verdict.exit_code())
    }
}

fn push(args: PushArgs) -> Result<ExitCode, String> {
    let (name, tag) = target(&args.target)?;
    let wait = &args.wait;
    let api = wait.api()?;
    let request = hubmock::PushRequest {
        tag: Some(tag),
        pusher: args.pusher.clone(),
        images: args.images.clone(),
        media_type: args.media_type.clone(),
        extra: None,
    };
    runtime()?.block_on(wait.bounded(async {
        let deadline = tokio::time::Instant::now() + wait.timeout;
        let runs = if wait.waits() {
            let (runs, _) = api
                .push_and_wait(&name, &request, &args.extra_tags, wait.timeout)
                .await
                .map_err(|err| err.to_string())?;
            wait.finish(&api, runs, deadline).await?
        } else {
            api.push_tags(&name, &request, &args.extra_tags)
                .await
                .map_err(|err| err.to_string())?
        };
        Ok(wait.report(runs))
    }))
}

fn push_image(args: PushImageArgs) -> Result<ExitCode, String> {
    use hubmock::registry::push::{ImagePush, PushClient};
    let (name, tag) = target(&args.target)?;
    let wait = &args.wait;
    let api = wait.api()?;
    let mut image = ImagePush::new(name.to_string(), tag.clone());
    image.docker = args.docker;
    image.seed = args.seed.clone();
    image.platforms = args
        .platforms
        .iter()
        .map(|p| p.parse())
        .collect::<Result<_, String>>()?;
    let mut client = PushClient::new(&wait.hub).with_tls(&wait.tls()?)?;
    if let Some((user, password)) = &args.user {
        client = client.with_basic(user, password);
    }
    runtime()?.block_on(wait.bounded(async {
        let deadline = tokio::time::Instant::now() + wait.timeout;
        let filter = hubmock::RunFilter {
            repository: Some(name.clone()),
            ..Default::default()
        };
        // The runs this push starts are the repository's newer than the newest before it.
        let before = api
            .runs(&filter)
            .await
            .map_err(|err| err.to_string())?
            .first()
            .map_or(0, |run| run.id());
        let pushed = client.push(&image).await.map_err(|err| {
            let hint = if err.status() == Some(401) && args.user.is_none() {
                " (give the registry user with --user NAME:PASSWORD)"
            } else {
                ""
            };
            format!("{err}{hint}")
        })?;
        eprintln!("pushed {name}:{tag} as {}", pushed.digest);
        let mut runs: Vec<hubmock::Run> = api
            .runs(&filter)
            .await
            .map_err(|err| err.to_string())?
            .into_iter()
            .filter(|run| pushed.started(run, before, &tag))
            .collect();
        runs.reverse();
        if wait.waits() {
            runs = wait.finish(&api, runs, deadline).await?;
        }
        Ok(wait.report(runs))
    }))
}

/// Loads every scenario under `paths`, printing each invalid one as `file:line:column: why`.
fn load_all(paths: &[PathBuf]) -> Result<Vec<scenario::Loaded>, ExitCode> {
    let files = scenario::collect(paths).map_err(|err| {
        eprintln!("{err}");
        ExitCode::from(2)
    })?;
    if files.is_empty() {
        // A typo'd folder in CI must not pass as "0 passed".
        eprintln!(
            "hubmock: no scenario files (*.yaml, *.yml) in {}",
            quoted(paths)
        );
        return Err(ExitCode::from(2));
    }
    let mut loaded = Vec::new();
    let mut invalid = 0;
    for file in files {
        match scenario::load(&file) {
            Ok(scenario) => loaded.push(scenario),
            Err(err) => {
                eprintln!("{err}");
                invalid += 1;
            }
        }
    }
    if invalid > 0 {
        eprintln!("{invalid} invalid scenario file(s)");
        return Err(ExitCode::from(2));
    }
    Ok(loaded)
}

fn check_scenarios(args: CheckArgs) -> Result<ExitCode, String> {
    let mut valid = true;
    if let Some(path) = &args.config {
        let mut config = Config::default();
        for (name, password) in args.users {
            config = config.with_user(name, password);
        }
        match load_seed(path, config) {
            Ok(config) => {
                let seed = config.seed.as_ref().expect("just set");
                println!(
                    "seed file '{}' valid: users {}, repositories {}, pipelines {}",
                    path.display(),
                    seed.users().count(),
                    seed.repositories().count(),
                    seed.pipelines().count()
                );
            }
            Err(err) => {
                eprintln!("{err}");
                valid = false;
            }
        }
    }
    if !args.paths.is_empty() {
        match load_all(&args.paths) {
            Ok(loaded) => println!("{} scenario file(s) valid", loaded.len()),
            Err(_) => valid = false,
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Reads the seed file at `path` and checks it against `config`'s users, as `serve` does
/// before it binds; answers `config` with the seed.
fn load_seed(path: &std::path::Path, config: Config) -> Result<Config, hubmock::FileError> {
    let seed = hubmock::SeedFile::load(path)?;
    seed.check_with(&config)?;
    Ok(config.with_seed(seed))
}

fn run_scenarios(args: RunArgs) -> Result<ExitCode, String> {
    let mut loaded = match load_all(&args.paths) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    if let Some(filter) = &args.filter {
        let found = loaded.len();
        loaded.retain(|l| {
            l.scenario.name.contains(filter.as_str()) || l.file.contains(filter.as_str())
        });
        if loaded.is_empty() {
            return Err(format!(
                "--filter '{filter}' matches none of the {found} scenario(s) in {} \
                 (it looks for the text, case-sensitively, in each scenario's name and file path)",
                quoted(&args.paths)
            ));
        }
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2)
    });
    let tls = hubmock::tls::ClientTls::from_files(&args.ca_cert, args.insecure_skip_verify)?;
    for one in &mut loaded {
        one.client_tls = tls.clone();
    }
    let total = loaded.len();
    let progress = std::io::stderr().is_terminal();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("could not start the runtime: {err}"))?;
    let started = std::time::Instant::now();
    let mut done = 0;
    let outcomes = runtime.block_on(scenario::report::run_all(loaded, jobs, |outcome| {
        done += 1;
        if progress {
            eprint!("\r\x1b[2K");
        }
        println!("{}", scenario::report::line(outcome));
        if progress && done < total {
            eprint!("[{done}/{total}] running...");
        }
    }));
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    println!(
        "{} passed, {failed} failed ({} ms)",
        outcomes.len() - failed,
        started.elapsed().as_millis()
    );
    if let Some(path) = &args.junit {
        std::fs::write(path, scenario::report::junit(&outcomes))
            .map_err(|err| format!("could not write {}: {err}", path.display()))?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `'a', 'b'`: the paths as the user gave them.
fn quoted(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| format!("'{}'", path.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fuzz_receiver(args: FuzzReceiverArgs) -> Result<ExitCode, String> {
    use hubmock::fuzz_receiver::{fuzz_receiver, random_seed, FuzzOptions};
    // Chosen here rather than in the library so it is printed before a long run starts.
    let seed = args.seed.unwrap_or_else(random_seed);
    let options = FuzzOptions {
        cases: args.cases,
        seed: Some(seed),
        format: args.format,
        timeout: args.timeout,
        expect_callback: args.expect_callback,
        max_shrink_time: args.max_shrink_time,
        ca_cert_files: args.ca_cert,
        insecure_skip_verify: args.insecure_skip_verify,
        ..FuzzOptions::new(args.url)
    };
    eprintln!(
        "fuzzing {} with {} cases (seed {seed})",
        options.url, options.cases
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("could not start the runtime: {err}"))?;
    let report = runtime
        .block_on(fuzz_receiver(options))
        .map_err(|err| err.to_string())?;
    println!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let mut config = Config::default().with_auth(!args.no_auth);
    if let Some(quirks) = &args.quirks {
        config = config.with_quirks(quirks);
    }
    if let Some(format) = args.payload_format {
        config = config.with_payload_format(format);
    }
    if let Some(path) = &args.fault_plan {
        let plan = hubmock::faults::FaultPlan::from_file(path).map_err(|err| err.to_string())?;
        config = config.with_fault_plan(plan);
    }
    let mut config = config
        .with_delivery_timeout(args.delivery_timeout)
        .with_callback_timeout(args.callback_timeout)
        .with_token_ttl(args.token_ttl)
        .with_implicit_repositories(!args.no_implicit_repositories)
        .with_push_events(args.push_events)
        .with_max_pending_runs(args.max_pending_runs)
        .with_history_limit(args.history_limit)
        .with_delivery_log_limit(args.delivery_log_limit)
        .with_connection_timeouts(Timeouts {
            header: args.header_timeout,
            idle: args.idle_timeout,
        })
        .with_body_timeout(args.body_timeout);
    if let Some(max) = args.max_connections {
        config = config.with_max_connections(max);
    }
    if let Some(token) = args.control_token {
        config = config.with_control_token(token);
    }
    if let Some(url) = args.public_url {
        config = config.with_public_url(url);
    }
    if let Some(dir) = args.data_dir {
        config = config.with_data_dir(dir);
    }
    if let Some(bytes) = args.snapshot_bytes {
        config.snapshot_bytes = bytes;
    }
    for (name, password) in args.users {
        config = config.with_user(name, password);
    }
    config.client_tls =
        hubmock::tls::ClientTls::from_files(&args.ca_cert, args.insecure_skip_verify)?;
    if args.insecure_skip_verify {
        eprintln!(
            "hubmock: warning: --insecure-skip-verify: deliveries to https:// hook URLs take any \
             certificate, so they may go to whoever answers in the receiver's place."
        );
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config = config.with_tls(hubmock::tls::ServerTls::from_files(cert, key)?);
    }
    if args.tls_self_signed {
        let unspecified = args
            .bind
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        let hosts = if unspecified {
            Vec::new()
        } else {
            vec![args.bind.clone()]
        };
        let tls = hubmock::tls::ServerTls::self_signed(&hosts)?;
        if let (Some(path), Some(ca)) = (&args.tls_ca_out, &tls.ca_pem) {
            std::fs::write(path, ca)
                .map_err(|err| format!("cannot write the CA to {}: {err}", path.display()))?;
        }
        config = config.with_tls(tls);
    }
    if let Some(path) = &args.config {
        // Checked before binding: a bad file costs no port.
        config = load_seed(path, config).map_err(|err| err.to_string())?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("could not start the runtime: {err}"))?;
    runtime.block_on(async move {
        let address = format!("{}:{}", args.bind, args.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|err| format!("could not listen on {address}: {err}"))?;
        let url = hubmock::server::listening_url_for(&listener, &config)
            .map_err(|err| format!("could not read the listening address: {err}"))?;
        let exposed = listener
            .local_addr()
            .is_ok_and(|address| !address.ip().to_canonical().is_loopback());
        if exposed && config.control_token.is_none() {
            eprintln!(
                "hubmock: warning: listening on {url}, not a loopback address, without a control \
                 token: anyone who can reach this port can drive the emulator (reset its state, \
                 push, import a state, read the deliveries and their payloads). Set a token \
                 with HUBMOCK_CONTROL_TOKEN=<token> (or --control-token <token>) and send it as \
                 'Authorization: Bearer <token>'."
            );
        }
        // The state, seeded, before the line: a harness may call as soon as it has read it.
        let prepared = hubmock::server::prepare(listener, config).map_err(|err| err.to_string())?;
        // Before the line: a harness may signal as soon as it has read it.
        let stop = StopSignals::install()?;
        {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "listening on {url}")
                .and_then(|()| stdout.flush())
                .map_err(|err| format!("could not write to stdout: {err}"))?;
        }
        prepared
            .serve(stop.received())
            .await
            .map_err(|err| format!("server error: {err}"))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT and SIGTERM, caught (on Unix) from the moment `install` returns. Until a handler is
/// registered, SIGTERM kills the process (status 143) instead of stopping it, so `serve`
/// installs them before it prints the listening line, not when the shutdown future is first
/// polled. Elsewhere only Ctrl-C stops `serve`, caught once the future is polled.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let install = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|err| format!("could not catch {name}: {err}"))
            };
            Ok(StopSignals {
                interrupt: install(SignalKind::interrupt(), "SIGINT")?,
                terminate: install(SignalKind::terminate(), "SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Completes on the first SIGINT or SIGTERM.
    async fn received(self) {
        #[cfg(unix)]
        {
            let StopSignals {
                mut interrupt,
                mut terminate,
            } = self;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
