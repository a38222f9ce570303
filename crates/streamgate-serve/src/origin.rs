//! The HTTP client to the origin (proxy mode): hyper-util's pooled client over rustls, so
//! `--origin` may be `http://` (a packager on the same host) or `https://` (a CDN or a
//! remote origin, verified against the Mozilla roots compiled in).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH};
use hyper::{Method, Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use streamgate_core::gateway::OriginRequest;

use crate::http::{empty, idle_limited, set_header, Body, BoxError};

/// How long connecting to the origin may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the gate connects to the origin.
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client to the origin.
pub(crate) struct Origin {
    client: Client<Connector, Body>,
    /// For uploads, each on a connection of its own (see [`Origin::upload`]).
    connector: Connector,
    /// How long the origin may take to send a response's head (once it holds the whole
    /// request), a manifest's body, or the next part of any body.
    pub(crate) timeout: Duration,
    /// How long a publisher's body may go without sending.
    body_timeout: Duration,
}

/// Why a fetch failed.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// The origin could not be reached or broke off: the error with its causes.
    Failed(String),
    /// The origin did not answer within [`Origin::timeout`].
    TimedOut,
}

impl Origin {
    /// A client for `http://` and `https://` origins that waits `timeout` for an answer and
    /// `body_timeout` for each part of a publisher's body.
    pub(crate) fn new(timeout: Duration, body_timeout: Duration) -> Result<Origin, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS set-up: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https.clone());
        Ok(Origin { client, connector: https, timeout, body_timeout })
    }

    /// Fetches `request` with the viewer's headers it names (never its cookies or
    /// credentials) and, for a publish request, the viewer's body streamed through, with its
    /// length when the viewer gave one. The origin has [`Origin::timeout`] to answer from
    /// when it holds the whole request, so an upload may take as long as it keeps sending;
    /// while it streams, an origin that takes no part of it for longer than both timeouts
    /// together (the publisher's own silence is cut at `body_timeout`) has stalled.
    pub(crate) async fn fetch(
        &self,
        request: OriginRequest,
        viewer_headers: &HeaderMap,
        viewer_body: Option<Incoming>,
    ) -> Result<Response<Incoming>, FetchError> {
        let method = Method::from_bytes(request.method.as_bytes()).map_err(|e| FetchError::Failed(e.to_string()))?;
        let uri: Uri =
            request.url.parse().map_err(|e| FetchError::Failed(format!("origin URL {:?}: {e}", request.url)))?;
        let (sent, mut all_sent) = tokio::sync::oneshot::channel::<()>();
        let started = tokio::time::Instant::now();
        // When the origin last took a part of the upload, in milliseconds after `started`.
        let progress = Arc::new(AtomicU64::new(0));
        let (body, length) = match viewer_body {
            Some(body) if request.forward_body => {
                let length = body.size_hint().exact();
                let taken = Arc::clone(&progress);
                // Done sending: the trailers are asked for, or hyper drops the body (all of a
                // known length sent, or failed). Either way the sender goes: the clock starts.
                let body = idle_limited(body, self.body_timeout)
                    .map_frame(move |frame| {
                        taken.store(millis_since(started), Ordering::Relaxed);
                        frame
                    })
                    .with_trailers(async move {
                        let _ = sent.send(());
                        None::<Result<HeaderMap, BoxError>>
                    });
                (body.boxed(), length)
            }
            _ => {
                let _ = sent.send(());
                (empty(), None)
            }
        };
        let mut outgoing = Request::new(body);
        *outgoing.method_mut() = method;
        *outgoing.uri_mut() = uri;
        for &name in request.viewer_headers {
            if let Some(value) = viewer_headers.get(name).and_then(|v| v.to_str().ok()) {
                set_header(outgoing.headers_mut(), name, value);
            }
        }
        // The wrapped body no longer tells its length, and hyper would send it chunked.
        if let Some(length) = length {
            outgoing.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        let forward_body = request.forward_body;
        let stall = self.timeout.saturating_add(self.body_timeout);
        let deadline = async {
            loop {
                let last = progress.load(Ordering::Relaxed);
                let stalled_at = started + Duration::from_millis(last) + stall;
                tokio::select! {
                    _ = &mut all_sent => break,
                    () = tokio::time::sleep_until(stalled_at) => {
                        if progress.load(Ordering::Relaxed) == last {
                            return;
                        }
                    }
                }
            }
            tokio::time::sleep(self.timeout).await;
        };
        if forward_body {
            return self.upload(outgoing, deadline).await;
        }
        tokio::select! {
            answered = self.client.request(outgoing) => answered.map_err(|e| FetchError::Failed(origin_error(&e))),
            () = deadline => Err(FetchError::TimedOut),
        }
    }

    /// Sends an upload on a connection of its own, closed when `deadline` passes first: the
    /// publisher's body goes with it, so the publisher's connection is let go too (a pooled
    /// connection stuck writing to a stalled origin would hold both for ever).
    async fn upload(
        &self,
        mut outgoing: Request<Body>,
        deadline: impl std::future::Future<Output = ()>,
    ) -> Result<Response<Incoming>, FetchError> {
        let failed = |e: &dyn std::error::Error| FetchError::Failed(origin_error(e));
        let target = outgoing.uri().clone();
        if let Some(authority) = target.authority() {
            set_header(outgoing.headers_mut(), "Host", authority.as_str());
        }
        // HTTP/1.1 names the path and query on the request line; the connection, the host.
        *outgoing.uri_mut() = target.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(|e| failed(&e))?;
        let (give_up, given_up) = tokio::sync::oneshot::channel::<()>();
        let exchange = async {
            let io =
                tower_service::Service::call(&mut self.connector.clone(), target).await.map_err(|e| failed(&*e))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| failed(&e))?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = connection => {}
                    Ok(()) = given_up => {}
                }
            });
            sender.send_request(outgoing).await.map_err(|e| failed(&e))
        };
        tokio::select! {
            answered = exchange => answered,
            () = deadline => {
                let _ = give_up.send(());
                Err(FetchError::TimedOut)
            }
        }
    }
}

/// Milliseconds from `start` to now.
fn millis_since(start: tokio::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The client's error with its causes (hyper-util's own message is only "client error").
fn origin_error(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
