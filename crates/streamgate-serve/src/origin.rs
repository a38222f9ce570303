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
    /// credentials) and, for a publish request, the viewer's body streamed through (see
    /// [`Origin::upload`]). The origin has [`Origin::timeout`] to answer.
    pub(crate) async fn fetch(
        &self,
        request: OriginRequest,
        viewer_headers: &HeaderMap,
        viewer_body: Option<Incoming>,
    ) -> Result<Response<Incoming>, FetchError> {
        let method = Method::from_bytes(request.method.as_bytes()).map_err(|e| FetchError::Failed(e.to_string()))?;
        let uri: Uri =
            request.url.parse().map_err(|e| FetchError::Failed(format!("origin URL {:?}: {e}", request.url)))?;
        let mut outgoing = Request::new(empty());
        *outgoing.method_mut() = method;
        *outgoing.uri_mut() = uri;
        for &name in request.viewer_headers {
            if let Some(value) = viewer_headers.get(name).and_then(|v| v.to_str().ok()) {
                set_header(outgoing.headers_mut(), name, value);
            }
        }
        match viewer_body {
            Some(body) if request.forward_body => self.upload(outgoing, body).await,
            _ => match tokio::time::timeout(self.timeout, self.client.request(outgoing)).await {
                Ok(answered) => answered.map_err(|e| FetchError::Failed(origin_error(&e))),
                Err(_) => Err(FetchError::TimedOut),
            },
        }
    }

    /// Sends `outgoing` with the publisher's `body`, with its length when the publisher gave
    /// one, on a connection of its own. The origin has [`Origin::timeout`] to answer from
    /// when it holds the whole upload, so an upload may take as long as it keeps sending;
    /// while it streams, an origin that takes no part of it for longer than both timeouts
    /// together (the publisher's own silence is cut at `body_timeout`) has stalled, before
    /// its answer (504) or after an early one: the connection is closed then, and the
    /// publisher's body with it, so the publisher's connection is let go too (a pooled
    /// connection stuck writing to a stalled origin would hold both for ever).
    async fn upload(&self, mut outgoing: Request<Body>, body: Incoming) -> Result<Response<Incoming>, FetchError> {
        let failed = |e: &dyn std::error::Error| FetchError::Failed(origin_error(e));
        // The wrapped body no longer tells its length, and hyper would send it chunked.
        if let Some(length) = body.size_hint().exact() {
            outgoing.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        let (watch, done) = UploadWatch::new(self.timeout.saturating_add(self.body_timeout));
        let taken = Arc::clone(&watch.progress);
        let started = watch.started;
        *outgoing.body_mut() = idle_limited(body, self.body_timeout)
            .map_frame(move |frame| {
                taken.store(millis_since(started), Ordering::Relaxed);
                frame
            })
            // Done sending: the trailers are asked for, or hyper drops the body (all of a
            // known length sent, or failed); either way the sender goes.
            .with_trailers(async move {
                drop(done);
                None::<Result<HeaderMap, BoxError>>
            })
            .boxed();
        let target = outgoing.uri().clone();
        if let Some(host) = host_header(&target) {
            set_header(outgoing.headers_mut(), "Host", &host);
        }
        // HTTP/1.1 names the path and query on the request line; the connection, the host.
        *outgoing.uri_mut() = target.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(|e| failed(&e))?;
        let exchange = async {
            let io =
                tower_service::Service::call(&mut self.connector.clone(), target).await.map_err(|e| failed(&*e))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| failed(&e))?;
            // Connecting is not the origin's slowness in taking the upload.
            watch.progress.store(millis_since(watch.started), Ordering::Relaxed);
            let stalled = watch.stalled();
            tokio::spawn(async move {
                tokio::select! {
                    _ = connection => {}
                    () = stalled => {}
                }
            });
            sender.send_request(outgoing).await.map_err(|e| failed(&e))
        };
        let deadline = async {
            tokio::select! {
                () = watch.stalled() => {}
                () = async {
                    watch.all_sent().await;
                    tokio::time::sleep(self.timeout).await;
                } => {}
            }
        };
        tokio::select! {
            answered = exchange => answered,
            () = deadline => Err(FetchError::TimedOut),
        }
    }
}

/// How an upload to the origin goes: when the origin last took a part of it, and whether
/// all of it was sent.
struct UploadWatch {
    started: tokio::time::Instant,
    /// When the origin last took a part, in milliseconds after `started`.
    progress: Arc<AtomicU64>,
    /// Closed when its sender, held by the body, is dropped: the whole body was sent (or it
    /// failed).
    sent: tokio::sync::watch::Receiver<()>,
    /// How long without a part taken means the origin stalled.
    stall: Duration,
}

impl UploadWatch {
    /// A watch, and the sender the body drops when it is done.
    fn new(stall: Duration) -> (UploadWatch, tokio::sync::watch::Sender<()>) {
        let (done, sent) = tokio::sync::watch::channel(());
        let watch =
            UploadWatch { started: tokio::time::Instant::now(), progress: Arc::new(AtomicU64::new(0)), sent, stall };
        (watch, done)
    }

    /// Completes once the whole upload was sent (or its body failed).
    fn all_sent(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut sent = self.sent.clone();
        async move { while sent.changed().await.is_ok() {} }
    }

    /// Completes if the origin takes no part of the upload for `stall` while it is still
    /// being sent; never once it was all sent.
    fn stalled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (progress, started, stall, all_sent) =
            (Arc::clone(&self.progress), self.started, self.stall, self.all_sent());
        async move {
            tokio::pin!(all_sent);
            loop {
                let last = progress.load(Ordering::Relaxed);
                // A stall limit past the clock's range (a library caller's `Duration::MAX`) never
                // comes: only the publisher's idle limit can cut the upload then.
                let Some(due) =
                    Duration::from_millis(last).checked_add(stall).and_then(|after| started.checked_add(after))
                else {
                    return std::future::pending().await;
                };
                tokio::select! {
                    () = &mut all_sent => return std::future::pending().await,
                    () = tokio::time::sleep_until(due) => {
                        if progress.load(Ordering::Relaxed) == last {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The `Host` header for `uri`, as the pooled client writes it: the host, with the port
/// only when it is not the scheme's default, never any user information.
fn host_header(uri: &Uri) -> Option<String> {
    let host = uri.host()?;
    let default_port = if uri.scheme_str() == Some("https") { 443 } else { 80 };
    Some(match uri.port_u16() {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stall_limit_past_the_clocks_range_never_stalls() {
        let (watch, _sending) = UploadWatch::new(Duration::MAX);
        let stalled = tokio::time::timeout(Duration::from_millis(50), watch.stalled()).await;
        assert!(stalled.is_err(), "an unreachable stall limit must never fire");
    }

    #[tokio::test]
    async fn an_origin_taking_nothing_for_the_stall_limit_has_stalled() {
        let (watch, _sending) = UploadWatch::new(Duration::from_millis(100));
        let stalled = tokio::time::timeout(Duration::from_secs(10), watch.stalled()).await;
        assert!(stalled.is_ok(), "no progress for the whole limit is a stall");
    }
}
