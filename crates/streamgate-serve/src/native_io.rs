//! The core's [`Io`] natively: the state backend for revocations, blocks and session hubs,
//! the origin client, and this process's session tallies. One per request.

use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::Response;
use streamgate_core::gateway::{Io, OriginRequest, Tallies, Upstream};
use streamgate_core::revocation::Blocks;
use streamgate_core::sessions::{Heartbeat, Verdict};

use crate::origin::FetchError;
use crate::server::App;
use crate::state::{State, StateError};

/// The largest manifest read for rewriting; a playlist is kilobytes, a long VOD MPD a few
/// megabytes.
pub(crate) const MAX_MANIFEST_BYTES: usize = 32 * 1024 * 1024;

/// What failed on the way: the origin or the state store.
#[derive(Debug)]
pub(crate) enum IoError {
    /// The origin could not be reached, or its body not read.
    Origin(String),
    /// The origin sent no response head, or no whole manifest, in time.
    OriginTimeout,
    /// The state backend failed.
    State(StateError),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::Origin(why) => write!(f, "origin: {why}"),
            IoError::OriginTimeout => f.write_str("origin: no answer in time"),
            IoError::State(error) => error.fmt(f),
        }
    }
}

impl From<FetchError> for IoError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Failed(why) => IoError::Origin(why),
            FetchError::TimedOut => IoError::OriginTimeout,
        }
    }
}

impl From<StateError> for IoError {
    fn from(error: StateError) -> Self {
        IoError::State(error)
    }
}

/// The origin's response, its body not yet read.
pub(crate) struct OriginResponse(pub Response<Incoming>);

impl Upstream for OriginResponse {
    fn status(&self) -> u16 {
        self.0.status().as_u16()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.0.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

/// One request's view of the gate's stores and origin.
pub(crate) struct NativeIo<'a, S: State> {
    app: &'a Arc<App<S>>,
    viewer_headers: &'a HeaderMap,
    /// The viewer's body, taken by the one fetch that streams it to the origin (a publish).
    viewer_body: Mutex<Option<Incoming>>,
}

impl<'a, S: State> NativeIo<'a, S> {
    pub(crate) fn new(app: &'a Arc<App<S>>, viewer_headers: &'a HeaderMap, viewer_body: Option<Incoming>) -> Self {
        NativeIo { app, viewer_headers, viewer_body: Mutex::new(viewer_body) }
    }
}

impl<S: State> Io for NativeIo<'_, S> {
    type Response = OriginResponse;
    type Blocks = Arc<Blocks>;
    type Error = IoError;

    async fn revoked(&self, ids: &[String], now: i64) -> Result<Vec<String>, IoError> {
        Ok(self.app.state.revoked(ids, now).await?)
    }

    fn revocations_known_empty(&self) -> bool {
        self.app.state.revocations_known_empty()
    }

    async fn blocks(&self, now: i64) -> Result<Arc<Blocks>, IoError> {
        Ok(self.app.state.blocks(now).await?)
    }

    async fn fetch(&self, request: OriginRequest) -> Result<OriginResponse, IoError> {
        let body = self.viewer_body.lock().unwrap_or_else(PoisonError::into_inner).take();
        Ok(self.app.origin.fetch(request, self.viewer_headers, body).await.map(OriginResponse)?)
    }

    async fn text(&self, response: OriginResponse) -> Result<String, IoError> {
        let read = Limited::new(response.0.into_body(), MAX_MANIFEST_BYTES).collect();
        let bytes = tokio::time::timeout(self.app.origin.timeout, read)
            .await
            .map_err(|_| IoError::OriginTimeout)?
            .map_err(|e| IoError::Origin(format!("reading the manifest: {e}")))?
            .to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn heartbeat(&self, key: &str, beat: &Heartbeat) -> Result<Verdict, IoError> {
        Ok(self.app.state.update_hub(key, beat.now, |hub| hub.heartbeat(beat.clone())).await?)
    }

    fn heartbeat_in_background(&self, key: String, beat: Heartbeat) {
        let app = Arc::clone(self.app);
        self.app.background.spawn(async move {
            // A background beat only keeps the session counted (a denial waits for the next
            // playlist reload); bytes it left without a record go back into the tally.
            let answer = app.state.update_hub(&key, beat.now, |hub| hub.heartbeat(beat.clone())).await;
            if let Err(error) = &answer {
                tracing::warn!(target: "streamgate::state", %error, "background heartbeat failed");
            }
            app.tallies.lock().unwrap_or_else(PoisonError::into_inner).settle(&beat, &answer);
        });
    }

    fn tallies<T>(&self, update: impl FnOnce(&mut Tallies) -> T) -> T {
        update(&mut self.app.tallies.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
