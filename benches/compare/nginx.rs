//! nginx: the receiver of every webhook, whose request count says how many were delivered.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::programs::{get, until_answers, Running};
use crate::support::{self, HttpClient};
use crate::table::whole;
use crate::Settings;

/// How often nginx's count is read while waiting for deliveries.
const POLL: Duration = Duration::from_millis(50);
/// A figure measured while deliveries were still arriving when the wait ended.
const SATURATED: &str = " †";

/// nginx answering `200 ok` to everything but `/nginx_status` (its `stub_status`, whose
/// request count less this bench's own reads of it is the deliveries it answered).
pub struct Nginx {
    _running: Running,
    base: String,
    client: HttpClient,
    /// How many times this bench has read `stub_status`: each read is a request it counts.
    reads: AtomicU64,
}

/// nginx's request count at one moment, and how many reads of it this bench had made.
#[derive(Clone, Copy)]
pub struct Mark {
    requests: u64,
    reads: u64,
}

impl Nginx {
    pub async fn start(settings: &Settings, scratch: &Path) -> Nginx {
        let dir = scratch.join("nginx");
        fs::create_dir_all(&dir).unwrap();
        let port = support::free_port();
        let dir_text = dir.display();
        // Keep-alive both ways as a real receiver would: no request cap per connection. The
        // temporary paths are set so nginx needs nothing of /var/lib/nginx.
        let config = format!(
            "worker_processes auto;\n\
             pid {dir_text}/nginx.pid;\n\
             error_log {dir_text}/error.log warn;\n\
             events {{ worker_connections 8192; }}\n\
             http {{\n\
               access_log off;\n\
               keepalive_timeout 120s;\n\
               keepalive_requests 1000000000;\n\
               client_body_temp_path {dir_text}/client_body;\n\
               proxy_temp_path {dir_text}/proxy;\n\
               fastcgi_temp_path {dir_text}/fastcgi;\n\
               uwsgi_temp_path {dir_text}/uwsgi;\n\
               scgi_temp_path {dir_text}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port} backlog=4096;\n\
                 location = /nginx_status {{ stub_status; }}\n\
                 location / {{ return 200 \"ok\"; }}\n\
               }}\n\
             }}\n"
        );
        fs::write(dir.join("nginx.conf"), config).unwrap();
        let mut command = support::command(&settings.nginx);
        command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"]);
        let mut running = Running::spawn("nginx", command, dir.join("stderr.log"), false);
        let base = format!("http://127.0.0.1:{port}");
        let client = support::client(4);
        until_answers(&client, &format!("{base}/nginx_status"), &mut running).await;
        Nginx {
            _running: running,
            base,
            client,
            reads: AtomicU64::new(0),
        }
    }

    /// Where the webhooks go.
    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// Reads `stub_status`: `Active connections: N \n server accepts handled requests \n
    /// A H R \n ...`; R counts this read too.
    pub async fn mark(&self) -> Mark {
        let url = format!("{}/nginx_status", self.base);
        let (status, body) = get(&self.client, &url).await;
        let reads = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        let text = String::from_utf8_lossy(&body);
        let requests = text
            .lines()
            .nth(2)
            .and_then(|line| line.split_whitespace().nth(2))
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("nginx's stub_status answered {status}: {text}"));
        Mark { requests, reads }
    }

    /// The requests nginx answered since `since`, other than this bench's reads of its count.
    pub async fn since(&self, since: Mark) -> u64 {
        let now = self.mark().await;
        now.requests - since.requests - (now.reads - since.reads)
    }

    /// Waits until deliveries stop arriving (none for `settings.quiet` once some have come)
    /// or `settings.drain` after `ended`. `started` is when the load began.
    pub async fn settle(
        &self,
        settings: &Settings,
        since: Mark,
        started: Instant,
        ended: Instant,
    ) -> Delivered {
        let (mut count, mut last_seen) = (0, ended);
        loop {
            let now = Instant::now();
            if now.duration_since(ended) >= settings.drain {
                let count = self.since(since).await;
                return Delivered {
                    count,
                    elapsed: now.duration_since(started),
                    saturated: true,
                };
            }
            let seen = self.since(since).await;
            if seen > count {
                (count, last_seen) = (seen, now);
            } else if count > 0 && now.duration_since(last_seen) >= settings.quiet {
                return Delivered {
                    count,
                    elapsed: last_seen.duration_since(started),
                    saturated: false,
                };
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Deliveries nginx answered after a load started.
pub struct Delivered {
    pub count: u64,
    /// From the start of the load to the last delivery seen (within [`POLL`]), or to the end of
    /// the wait when they had not stopped.
    pub elapsed: Duration,
    /// Still arriving when the wait ended: the rate is while the system was saturated.
    pub saturated: bool,
}

impl Delivered {
    pub fn per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    pub fn shown(&self) -> String {
        let mark = if self.saturated { SATURATED } else { "" };
        format!("{}{mark}", whole(self.per_s()))
    }
}
