//! The real `hubmock serve` as a child process: started on port 0 (the first stdout line gives
//! its URL), its stderr read as it comes, stopped by a signal, or found to have refused to
//! start.

#![allow(dead_code)]

use std::fmt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::util::WAIT;

/// A running `hubmock serve`, killed when dropped. Its stderr (the log) is read as it comes,
/// so the process never blocks on a full pipe and a test can wait for a line.
pub struct Serve {
    pub child: Child,
    pub url: String,
    log: Arc<Log>,
}

/// A `hubmock serve` that ended without printing its listening line.
pub struct Refused {
    pub status: ExitStatus,
    pub stderr: String,
}

impl fmt::Debug for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hubmock exited ({}); stderr:\n{}",
            self.status, self.stderr
        )
    }
}

/// The lines of a child's stderr so far, and whether it has ended.
#[derive(Default)]
struct Log {
    seen: Mutex<(Vec<String>, bool)>,
    grew: Condvar,
}

impl Log {
    /// Reads `stderr` line by line in a thread of its own until it ends.
    fn read(stderr: impl std::io::Read + Send + 'static) -> Arc<Log> {
        let log = Arc::new(Log::default());
        let writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                writer.seen.lock().unwrap().0.push(line);
                writer.grew.notify_all();
            }
            writer.seen.lock().unwrap().1 = true;
            writer.grew.notify_all();
        });
        log
    }

    /// Waits (at most [`WAIT`]) until `done` holds for the lines read and whether stderr
    /// has ended; panics with everything read if it never does.
    fn wait_until(&self, what: &str, done: impl Fn(&[String], bool) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut seen = self.seen.lock().unwrap();
        loop {
            if done(&seen.0, seen.1) {
                return seen.0.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || seen.1 {
                panic!(
                    "stderr showed no {what} (waited up to {WAIT:?}); it said:\n{}",
                    seen.0.join("\n")
                );
            }
            seen = self.grew.wait_timeout(seen, left).unwrap().0;
        }
    }
}

impl Serve {
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_with_env(args, &[])
    }

    /// Starts with RUST_LOG set to `rust_log`, or unset (whatever the test's environment says).
    pub fn start_with(args: &[&str], rust_log: Option<&str>) -> Serve {
        match rust_log {
            Some(filter) => Serve::start_with_env(args, &[("RUST_LOG", filter)]),
            None => Serve::start_with_env(args, &[]),
        }
    }

    /// Starts `hubmock serve` with these environment variables; `HUBMOCK_CONTROL_TOKEN` and
    /// `RUST_LOG` are unset unless given, so the environment the tests run in cannot change
    /// what they test.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut command = Serve::command(&[], args);
        command.envs(env.iter().copied());
        Serve::spawn(command).unwrap_or_else(|refused| panic!("{refused:?}"))
    }

    /// `hubmock serve --port 0 args` (run through `wrapper`, e.g. `setpriv ...`, when not
    /// empty), with `HUBMOCK_CONTROL_TOKEN` and `RUST_LOG` unset.
    pub fn command(wrapper: &[&str], args: &[&str]) -> Command {
        let binary = env!("CARGO_BIN_EXE_hubmock");
        let mut command = match wrapper {
            [] => Command::new(binary),
            [program, rest @ ..] => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
        };
        command
            .env_remove("RUST_LOG")
            .args(["serve", "--port", "0"])
            .args(args)
            .env_remove("HUBMOCK_CONTROL_TOKEN");
        command
    }

    /// Spawns `command` and reads its first line: the server, or how it ended without one.
    pub fn spawn(mut command: Command) -> Result<Serve, Refused> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hubmock");
        let log = Log::read(child.stderr.take().unwrap());
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        if first.is_empty() {
            let status = child.wait().unwrap();
            let stderr = log.wait_until("end", |_, ended| ended).join("\n");
            return Err(Refused { status, stderr });
        }
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim_end()
            .to_owned();
        Ok(Serve { child, url, log })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal and answers how the process ended.
    pub fn stop_with(mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// `kill -9` (`Child::kill` is SIGKILL on Unix): no chance to write anything more.
    /// Answers the log up to then.
    pub fn crash(mut self) -> Vec<String> {
        self.child.kill().expect("SIGKILL hubmock");
        self.child.wait().unwrap();
        self.log.wait_until("end", |_, ended| ended)
    }

    /// The log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.seen.lock().unwrap().0.clone()
    }

    /// The first log line for which `found` holds, once it has been written.
    pub fn wait_for_line(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let lines = self
            .log
            .wait_until(what, |lines, _| lines.iter().any(|l| found(l)));
        lines.into_iter().find(|l| found(l)).unwrap()
    }

    /// Stops the server (SIGTERM, which must exit 0) and answers its whole log.
    pub fn stopped(self) -> Vec<String> {
        let log = self.log.clone();
        assert_eq!(self.stop_with("TERM").code(), Some(0));
        log.wait_until("end", |_, ended| ended)
    }

    /// Stops the server with SIGTERM and answers all it wrote to stderr.
    pub fn stop_and_read_stderr(self) -> String {
        self.stopped().join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed while the server ran: what the server said last may tell why.
            let lines = self.log_lines();
            let tail = &lines[lines.len().saturating_sub(60)..];
            let alive = matches!(self.child.try_wait(), Ok(None));
            eprintln!(
                "hubmock (pid {}, {}) logged last:\n{}",
                self.child.id(),
                if alive { "still running" } else { "gone" },
                tail.join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
