//! wrk, the load generator of the fan-out: closed loop, a fixed number of connections.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support;
use crate::table::whole;
use crate::{Settings, PUSH_BODY};

/// wrk POSTing [`PUSH_BODY`] through a Lua script.
pub struct Wrk {
    program: PathBuf,
    script: PathBuf,
    pub connections: usize,
    threads: usize,
}

/// What one wrk run counted.
pub struct Load {
    pub requests: u64,
    /// Answered but not 2xx/3xx (hubmock's `503` at `--max-pending-runs`).
    pub refused: u64,
    /// Connect, read, write errors and timeouts.
    pub errors: u64,
    pub seconds: f64,
}

impl Load {
    pub fn accepted_per_s(&self) -> f64 {
        (self.requests - self.refused) as f64 / self.seconds
    }

    /// The rate, and what was not accepted when there was any.
    pub fn shown(&self) -> String {
        let mut text = whole(self.accepted_per_s());
        if self.refused > 0 {
            text += &format!(" ({} refused)", whole(self.refused as f64));
        }
        if self.errors > 0 {
            text += &format!(" ({} socket errors)", whole(self.errors as f64));
        }
        text
    }
}

impl Wrk {
    pub fn new(settings: &Settings, scratch: &Path) -> Wrk {
        let script = scratch.join("push.lua");
        let body = PUSH_BODY.replace('\'', "\\'");
        fs::write(
            &script,
            format!(
                "wrk.method = \"POST\"\nwrk.body = '{body}'\n\
                 wrk.headers[\"Content-Type\"] = \"application/json\"\n"
            ),
        )
        .unwrap();
        Wrk {
            program: settings.wrk.clone(),
            script,
            connections: settings.connections.max(settings.wrk_threads),
            threads: settings.wrk_threads,
        }
    }

    /// Loads `url` for `secs` seconds. Blocks this thread: what the bench serves itself
    /// (receivers) runs on the runtime's workers meanwhile.
    pub fn run(&self, url: &str, secs: u64) -> Load {
        let output = support::command(&self.program)
            .args(["-t", &self.threads.to_string()])
            .args(["-c", &self.connections.to_string()])
            .args(["-d", &format!("{secs}s")])
            .arg("-s")
            .arg(&self.script)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.program.display()));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "wrk failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Wrk::parse(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
    }

    /// `  123456 requests in 10.00s, 12.34MB read`, `Non-2xx or 3xx responses: 12`, `Socket
    /// errors: connect 0, read 0, write 0, timeout 0`.
    fn parse(text: &str) -> Option<Load> {
        let summary = text.lines().find(|line| line.contains(" requests in "))?;
        let mut words = summary.split_whitespace();
        let requests = words.next()?.parse().ok()?;
        let time = words.nth(2)?.trim_end_matches(',');
        let seconds = [("ms", 0.001), ("us", 0.000_001), ("s", 1.0), ("m", 60.0)]
            .iter()
            .find_map(|(unit, scale)| {
                Some(time.strip_suffix(unit)?.parse::<f64>().ok()? * scale)
            })?;
        let refused = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .map_or(Some(0), |n| n.trim().parse().ok())?;
        let errors = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("Socket errors:"))
            .map_or(0, |counts| {
                counts
                    .split(',')
                    .filter_map(|count| count.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum()
            });
        Some(Load {
            requests,
            refused,
            errors,
            seconds,
        })
    }
}
