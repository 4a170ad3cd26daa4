//! Connections that hold hubmock without using it: silent sockets, headers sent a byte at a
//! time, idle keep-alive connections, stalled bodies, more connections than it serves, and a
//! process out of file descriptors (through the real binary under `ulimit -n`).
//!
//! These wait for hubmock's own timeouts to fire, so they use short ones (a few hundred
//! milliseconds) and real time: the peer is a real socket. Every wait is bounded, so a
//! hubmock that never cuts the peer off fails the test instead of hanging it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubmock::net::Timeouts;
use hubmock::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::TestHub;

/// How long any one wait in these tests may take before it counts as "never".
const NEVER: Duration = Duration::from_secs(10);

fn config(header: u64, idle: u64) -> Config {
    Config::default()
        .with_auth(false)
        .with_connection_timeouts(Timeouts {
            header: Duration::from_millis(header),
            idle: Duration::from_millis(idle),
        })
}

async fn connect(hub: &TestHub) -> TcpStream {
    let address = hub.hub.uri().trim_start_matches("http://").to_owned();
    TcpStream::connect(address).await.unwrap()
}

/// Reads until the peer closes; the bytes read, or a failure if it never does.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(NEVER, read)
        .await
        .expect("hubmock never closed the connection");
    bytes
}

/// Reads one response whose body has a `content-length`, and answers it as text.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before a whole response: {bytes:?}");
            bytes.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&bytes).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
        }
    };
    tokio::time::timeout(NEVER, read).await.expect("no answer")
}

/// Sends `GET target` on `stream` and reads its answer.
async fn ask(stream: &mut TcpStream, target: &str) -> String {
    let request = format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

/// The JSON body of a raw response.
fn body_json(response: &str) -> Value {
    serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap()
}

#[tokio::test]
async fn a_connection_that_says_nothing_is_closed_after_the_header_timeout() {
    let hub = TestHub::with(config(300, 60_000)).await;
    let mut silent = connect(&hub).await;
    let started = Instant::now();
    let answer = read_to_close(&mut silent).await;
    assert!(answer.is_empty(), "{answer:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    // Everyone else is still served.
    hub.http.get("/_hubmock/health").await.expect(200);
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout() {
    let hub = TestHub::with(config(500, 60_000)).await;
    let mut slow = connect(&hub).await;
    let started = Instant::now();
    slow.write_all(b"GET /_hubmock/health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // One byte every 50 ms: each keeps the connection busy, none finishes the head.
    let trickle = async {
        for byte in b"x-slow: ".iter().cycle() {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut probe = [0u8; 1];
            if let Ok(read) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
            {
                // Closed (0 or an error) or answered: either way the trickle is over.
                return read.map(|n| probe[..n].to_vec()).unwrap_or_default();
            }
        }
        Vec::new()
    };
    let answer = tokio::time::timeout(NEVER, trickle)
        .await
        .expect("the trickling client was kept");
    assert!(answer.is_empty(), "answered {answer:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn a_keep_alive_connection_idle_between_requests_is_closed_after_the_idle_timeout() {
    let hub = TestHub::with(config(5_000, 300)).await;
    let mut client = connect(&hub).await;
    assert!(ask(&mut client, "/_hubmock/health")
        .await
        .starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert!(read_to_close(&mut client).await.is_empty());
    let elapsed = started.elapsed();
    // Closed by the idle timeout, not the (longer) header timeout.
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(4_000), "{elapsed:?}");
}

#[tokio::test]
async fn a_request_being_answered_is_not_cut_off_by_the_connection_timeouts() {
    let hub = TestHub::with(config(200, 200)).await;
    let mut client = connect(&hub).await;
    // A long poll that answers after 800 ms, four times the timeouts.
    let response = ask(&mut client, "/_hubmock/deliveries?min=1&timeout_ms=800").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(body_json(&response), json!({ "deliveries": [] }));
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_changes_nothing() {
    let hub =
        TestHub::with(config(5_000, 60_000).with_body_timeout(Duration::from_millis(300))).await;
    let mut client = connect(&hub).await;
    let body = br#"{"namespace": "acme", "name": "app"}"#;
    let head = format!(
        "POST /_hubmock/repositories HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&body[..10]).await.unwrap();
    let response = read_response(&mut client).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    let detail = body_json(&response)["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("--body-timeout"), "{detail}");
    // The rest of the body never came, and no repository was made of a part of it.
    let repositories = hub.http.get("/_hubmock/repositories").await.expect(200);
    assert_eq!(repositories, json!({ "repositories": [] }));
}

#[tokio::test]
async fn a_streamed_state_import_that_pauses_too_long_is_answered_408() {
    let hub =
        TestHub::with(config(5_000, 60_000).with_body_timeout(Duration::from_millis(300))).await;
    hub.repository("acme", "kept").await;
    let before = hub.state().await;
    let mut client = connect(&hub).await;
    client
        .write_all(
            b"PUT /_hubmock/state HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\n5\r\n{\"rep\r\n",
        )
        .await
        .unwrap();
    let response = read_response(&mut client).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(hub.state().await, before);
}

#[tokio::test]
async fn past_the_connection_cap_the_newest_is_answered_503_and_the_others_go_on() {
    let hub = TestHub::with(config(60_000, 60_000).with_max_connections(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = connect(&hub).await;
        assert!(ask(&mut client, "/_hubmock/health")
            .await
            .starts_with("HTTP/1.1 200"));
        held.push(client);
    }
    let mut third = connect(&hub).await;
    third
        .write_all(b"GET /_hubmock/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let refused = String::from_utf8(read_to_close(&mut third).await).unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(body_json(&refused)["detail"]
        .as_str()
        .unwrap()
        .contains("--max-connections"));
    // The connections being served are kept and still answered.
    assert!(ask(&mut held[0], "/_hubmock/health")
        .await
        .starts_with("HTTP/1.1 200"));
    // Once one closes, a new connection is served again.
    drop(held.pop());
    let served = async {
        loop {
            let mut next = connect(&hub).await;
            let answer = ask(&mut next, "/_hubmock/health").await;
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
            // The close may not have been seen yet: that answer is the cap's 503.
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(NEVER, served)
        .await
        .expect("never served again");
}

/// `hubmock serve` under `ulimit -n {limit}`, killed when dropped.
struct Limited {
    child: Child,
    address: String,
}

impl Limited {
    fn start(limit: u32, args: &str) -> Limited {
        let script = format!(
            "ulimit -n {limit} && exec '{}' serve --port 0 {args}",
            env!("CARGO_BIN_EXE_hubmock")
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hubmock under ulimit");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let address = first
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim_end()
            .to_owned();
        Limited { child, address }
    }

    /// CPU time the process has used so far (user and system), from `/proc`.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime
        // the 13th, in clock ticks (100 a second on Linux).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// One health request on a new connection: the status line, or `None` when the
    /// connection was closed unanswered or nothing answered within a second.
    async fn health(&self) -> Option<String> {
        let ask = async {
            let mut client = TcpStream::connect(&self.address).await.ok()?;
            client
                .write_all(b"GET /_hubmock/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.ok()?;
            let text = String::from_utf8_lossy(&answer).to_string();
            text.lines().next().map(str::to_owned)
        };
        tokio::time::timeout(Duration::from_secs(1), ask)
            .await
            .ok()
            .flatten()
    }

    /// Opens `count` connections that say nothing.
    async fn idle_sockets(&self, count: usize) -> Vec<TcpStream> {
        let mut sockets = Vec::new();
        for _ in 0..count {
            sockets.push(TcpStream::connect(&self.address).await.unwrap());
        }
        sockets
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks for health until it answers `want`, for at most [`NEVER`].
async fn until_health(hubmock: &Limited, want: &str) -> String {
    let started = Instant::now();
    loop {
        let answer = hubmock.health().await;
        if answer.as_deref().is_some_and(|line| line.starts_with(want)) {
            return answer.unwrap();
        }
        assert!(
            started.elapsed() < NEVER,
            "no {want} within {NEVER:?}; last answer {answer:?}"
        );
    }
}

#[tokio::test]
async fn with_128_open_files_150_idle_sockets_get_answers_and_hubmock_recovers() {
    // The default cap is half the open-file limit: 64 connections are kept, the newest are
    // answered 503 at once, and when the silent ones hit the header timeout all is served.
    let hubmock = Limited::start(128, "--header-timeout 2s");
    let idle = hubmock.idle_sockets(150).await;
    let refused = until_health(&hubmock, "HTTP/1.1 503").await;
    assert!(refused.contains("503"), "{refused}");
    let ok = until_health(&hubmock, "HTTP/1.1 200").await;
    assert!(ok.contains("200"));
    drop(idle);
}

#[tokio::test]
async fn out_of_file_descriptors_hubmock_answers_503_and_backs_off_instead_of_spinning() {
    // A cap above the open-file limit: accepts fail with EMFILE before the cap is reached.
    let hubmock = Limited::start(128, "--max-connections 1000 --header-timeout 3s");
    let idle = hubmock.idle_sockets(150).await;
    let refused = until_health(&hubmock, "HTTP/1.1 503").await;
    assert!(refused.contains("503"), "{refused}");
    // While the descriptors stay used up, the accept loop sleeps between tries.
    let before = hubmock.cpu_time();
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = hubmock.cpu_time() - before;
    assert!(
        used < window.elapsed() / 4,
        "hubmock used {used:?} of CPU in {:?} with no descriptor left",
        window.elapsed()
    );
    drop(idle);
    until_health(&hubmock, "HTTP/1.1 200").await;
}
