//! A small outbound HTTP client (http and https, HTTP/1.1 or HTTP/2 by ALPN), shared by the
//! delivery engine, the scenario runner and the receiver fuzzer.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use crate::tls::ClientTls;

/// An answer: status and (the kept part of) the body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body, cut at the `keep` limit of the request.
    pub body: Bytes,
}

/// A pooled keep-alive client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A new client with its own connection pool, trusting the platform's certificate
    /// authorities for `https://` URLs.
    pub fn new() -> HttpClient {
        Self::with_tls(&ClientTls::default()).expect("the platform's trust store is optional")
    }

    /// A new client with its own connection pool that trusts `https://` receivers as `tls`
    /// says. `Err` says what is wrong with a CA certificate.
    pub fn with_tls(tls: &ClientTls) -> Result<HttpClient, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.config()?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(HttpClient {
            inner: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        })
    }

    /// Sends one request. Keeps the first `keep` bytes of the answer's body and reads (and
    /// drops) the rest, so the connection can be reused. Every failure is a readable sentence.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        keep: usize,
    ) -> Result<Answer, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|err| format!("invalid URL {url:?}: {err}"))?;
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|err| format!("could not build the request: {err}"))?;
        let response = self
            .inner
            .request(request)
            .await
            .map_err(|err| describe_error(&err))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut kept = Vec::new();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| format!("the response body broke off: {err}"))?;
            if let Some(data) = frame.data_ref() {
                let room = keep.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok(Answer {
            status,
            headers,
            body: Bytes::from(kept),
        })
    }
}

/// An error with its causes, e.g. "client error (Connect): tcp connect error: Connection
/// refused (os error 111)"; a TLS failure in its own words ([`crate::tls::describe`]).
fn describe_error(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(tls) = crate::tls::describe(err) {
        return tls;
    }
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
