//! The programs under test, started and stopped by the bench: hubmock's release binary and
//! WireMock's standalone jar.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;

use crate::support::{self, send, HttpClient};
use crate::Settings;

/// A program this bench started; stopped (SIGTERM, SIGKILL 10 s later) when dropped.
pub struct Running {
    name: String,
    pub child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with stdin closed and stderr (and stdout unless `piped`) to a log.
    pub fn spawn(name: &str, mut command: Command, log: PathBuf, piped: bool) -> Running {
        let file = fs::File::create(&log).expect("a log file in the scratch directory");
        let stdout = if piped {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone().unwrap())
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name} ({command:?}): {err}"));
        Running {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics saying what failed, with the end of the program's log, when it has exited.
    pub fn check_alive(&mut self, doing: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}) while {doing}; the end of its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        support::stop(&mut self.child);
    }
}

/// hubmock's release binary, `serve --port 0 --no-auth -q` and `args`, its URL.
pub fn start_hubmock(scratch: &Path, args: &[String]) -> (Running, String) {
    let tmp = scratch.join("hubmock-tmp");
    fs::create_dir_all(&tmp).unwrap();
    let mut command = support::command(env!("CARGO_BIN_EXE_hubmock"));
    command
        .args(["serve", "--port", "0", "--no-auth", "-q"])
        .args(args)
        .env("TMPDIR", &tmp);
    let mut hubmock = Running::spawn("hubmock", command, scratch.join("hubmock.log"), true);
    let Some(url) = support::listening_url(&mut hubmock.child) else {
        hubmock.check_alive("starting");
        panic!(
            "hubmock printed no `listening on` line:\n{}",
            hubmock.log_tail()
        );
    };
    (hubmock, url)
}

/// WireMock's standalone jar on `port`, with the options its documentation gives for
/// performance testing (no request journal, no request logging) and `COMPARE_WIREMOCK_ARGS`.
pub fn start_wiremock(settings: &Settings, scratch: &Path, port: u16) -> Running {
    let jar = settings.wiremock_jar.as_ref().expect(
        "COMPARE_WIREMOCK_JAR: the path of wiremock-standalone-*.jar (benches/compare.sh fetches it)",
    );
    let root = scratch.join("wiremock-root");
    fs::create_dir_all(&root).unwrap();
    let mut command = support::command(&settings.java);
    command
        .arg("-jar")
        .arg(jar)
        .args(["--port", &port.to_string(), "--bind-address", "127.0.0.1"])
        .arg("--root-dir")
        .arg(&root)
        .args([
            "--disable-banner",
            "--no-request-journal",
            "--disable-request-logging",
        ])
        .args(&settings.wiremock_args);
    Running::spawn("WireMock", command, scratch.join("wiremock.log"), false)
}

/// Waits until `url` answers 2xx (polling every millisecond); panics when `program` exits
/// first or a minute passes.
pub async fn until_answers(client: &HttpClient, url: &str, program: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200..=299, _)) = send(client, Method::GET, url, Bytes::new()).await {
            return;
        }
        program.check_alive(&format!("waiting for {url} to answer"));
        assert!(
            Instant::now() < deadline,
            "{} did not answer {url} within 60 s:\n{}",
            program.name,
            program.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// GETs `url`; answers the status and the body. No answer at all is a panic.
pub async fn get(client: &HttpClient, url: &str) -> (u16, Bytes) {
    send(client, Method::GET, url, Bytes::new())
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"))
}
