//! Scripted receivers: tiny webhook endpoints that answer, misbehave and call back as a
//! scenario says. Each lives on a listener of its own and stops when dropped.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::format::{CallbackDef, Fault, ReceiverDef, When};
use crate::client::HttpClient;
use crate::net::{read_request_body, AcceptLoop};

/// Largest request a scripted receiver reads.
const REQUEST_LIMIT: usize = 2 * 1024 * 1024;

struct Shared {
    name: String,
    def: ReceiverDef,
    client: HttpClient,
    /// Deliveries whose callbacks are still to be sent.
    pending: watch::Sender<usize>,
    /// Callbacks whose answer was not the expected one.
    problems: Mutex<Vec<String>>,
    /// Deliveries received so far.
    received: Mutex<usize>,
}

/// A running scripted receiver.
pub struct ScriptedReceiver {
    url: String,
    shared: Arc<Shared>,
    _accepting: AcceptLoop,
}

impl ScriptedReceiver {
    /// Starts `def` on a new local port.
    pub async fn start(name: &str, def: ReceiverDef) -> std::io::Result<ScriptedReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook/{name}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            def,
            client: HttpClient::new(),
            pending: watch::Sender::new(0),
            problems: Mutex::new(Vec::new()),
            received: Mutex::new(0),
        });
        let serving = shared.clone();
        let accepting =
            AcceptLoop::spawn(listener, move |stream, _| serve(serving.clone(), stream))?;
        Ok(ScriptedReceiver {
            url,
            shared,
            _accepting: accepting,
        })
    }

    /// The URL to register as a hook.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits until no callback of this receiver is still to be sent.
    pub async fn settled(&self) {
        let mut pending = self.shared.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// Callbacks that were answered otherwise than expected, taken (each is reported once).
    pub fn take_problems(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .shared
                .problems
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let Some(body) = read_request_body(&mut stream, REQUEST_LIMIT).await else {
        return;
    };
    let delivery = {
        let mut received = shared.received.lock().unwrap_or_else(|p| p.into_inner());
        *received += 1;
        *received
    };
    let callbacks: Vec<CallbackDef> = shared
        .def
        .callback
        .as_ref()
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let callback_url = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["callback_url"].as_str().map(str::to_owned));
    shared.pending.send_modify(|n| *n += 1);
    // Callbacks that go first are sent (and answered) before the delivery is answered.
    let (before, after): (Vec<_>, Vec<_>) = callbacks
        .into_iter()
        .enumerate()
        .partition(|(_, c)| c.when == When::Before);
    for (index, callback) in &before {
        send_callback(
            &shared,
            callback_url.as_deref(),
            delivery,
            index + 1,
            callback,
        )
        .await;
    }
    if let Some(delay) = shared.def.delay {
        tokio::time::sleep(delay.0).await;
    }
    let held = match shared.def.fault {
        Some(Fault::Hang) => Some(stream),
        Some(Fault::Drop) => None,
        Some(Fault::Garbage) => {
            let _ = stream.write_all(b"this is not HTTP\r\n\r\n").await;
            let _ = stream.shutdown().await;
            None
        }
        None => {
            let status = shared.def.answer.unwrap_or(200);
            let text = shared.def.body.clone().unwrap_or_default();
            let answer = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            None
        }
    };
    finish_callbacks(&shared, callback_url, delivery, after).await;
    if let Some(_silent) = held {
        // A hanging receiver keeps the connection open until the scenario ends (task aborted).
        std::future::pending::<()>().await;
    }
}

async fn finish_callbacks(
    shared: &Arc<Shared>,
    callback_url: Option<String>,
    delivery: usize,
    after: Vec<(usize, CallbackDef)>,
) {
    for (index, callback) in &after {
        send_callback(
            shared,
            callback_url.as_deref(),
            delivery,
            index + 1,
            callback,
        )
        .await;
    }
    shared.pending.send_modify(|n| *n = n.saturating_sub(1));
}

async fn send_callback(
    shared: &Shared,
    callback_url: Option<&str>,
    delivery: usize,
    number: usize,
    callback: &CallbackDef,
) {
    let what = format!(
        "receiver `{}`: callback {number} for delivery {delivery}",
        shared.name
    );
    let Some(url) = callback_url else {
        shared
            .problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{what}: the delivery carried no callback_url"));
        return;
    };
    if let Some(delay) = callback.delay {
        tokio::time::sleep(delay.0).await;
    }
    let body = Bytes::from(serde_json::to_vec(&callback.body()).unwrap_or_default());
    let expected = callback.expect_status.unwrap_or(200);
    let answer = shared
        .client
        .send(
            Method::POST,
            url,
            &[("content-type", "application/json")],
            body,
            64 * 1024,
        )
        .await;
    let problem = match answer {
        Ok(answer) if answer.status == expected => None,
        Ok(answer) => Some(format!(
            "{what} was answered {} {}; expected {expected}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )),
        Err(err) => Some(format!("{what} failed: {err}")),
    };
    if let Some(problem) = problem {
        shared
            .problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(problem);
    }
}
