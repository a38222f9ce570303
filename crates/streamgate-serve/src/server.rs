//! The server: configuration checked once at start, the accept loop, routing, and graceful
//! shutdown (stop accepting, finish in-flight requests and background heartbeats, flush the
//! state).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use streamgate_core::config::GateConfig;
use streamgate_core::gateway::{Gateway, Tallies};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::{error_response, full, json_response, response, set_header, Body};
use crate::metrics::Metrics;
use crate::origin::Origin;
use crate::state::memory::MemoryState;
use crate::state::redis::RedisState;
use crate::state::State;
use crate::{admin, gate};

/// The shortest admin token accepted, bytes (as the edge's `ADMIN_TOKEN`).
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// The longest [`Limits::send_timeout`].
const MAX_SEND_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Connections the operators' address (`--admin-listen`) serves at once, apart from the
/// viewers' [`Limits::max_connections`].
const OPERATOR_CONNECTIONS: usize = 64;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for in-flight requests (a segment download) before closing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How much the gate lets clients and the origin hold: what a slow or hostile peer can tie up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long the origin may take to send a response's head, and a whole manifest; then
    /// 504 `origin_timeout`. Long enough for an LL-HLS blocking playlist reload (the origin
    /// holds it up to three target durations). Also how long a body streaming through may go
    /// without sending; then the viewer's response is cut off.
    pub origin_timeout: Duration,
    /// Client connections served at once; further ones wait in the listen backlog until
    /// one closes, so a flood of idle connections cannot exhaust file descriptors.
    pub max_connections: usize,
    /// How long a client may take to send an admin request's body (then 408), and how long
    /// a publisher's body may go without sending (then the upload is cut off).
    pub body_timeout: Duration,
    /// How long a connection's writes may make no progress (a client that stops reading);
    /// then it is closed, as nginx's `send_timeout` does. At most a day.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            origin_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
        }
    }
}

/// A failure to start or run the server, with what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeError(pub String);

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// What the gate is: its configuration document, its origin (proxy mode) and admin token.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// The configuration document (JSON text: `keys`, `jwt`, `policy`, `sessions`,
    /// `clientIpHeader`), as the edge and `streamgate verify --config` read it.
    pub config: String,
    /// The origin to proxy to; `None` for forward-auth only.
    pub origin: Option<String>,
    /// The admin API's bearer token (at least [`MIN_ADMIN_TOKEN_BYTES`]); `None` turns
    /// `/admin` off.
    pub admin_token: Option<String>,
    /// A bearer token that reads `/metrics` and nothing else (at least
    /// [`MIN_ADMIN_TOKEN_BYTES`]), for a scraper that must not hold the admin token. In
    /// proxy mode `/metrics` needs it or the admin token; in forward-auth mode it is open.
    pub metrics_token: Option<String>,
    /// Time and connection limits.
    pub limits: Limits,
}

/// A bearer token from the environment variable `variable`, without surrounding white space
/// (as a presented one is read): unset or empty is none, a short one is refused.
fn bearer_token(token: Option<String>, variable: &str) -> Result<Option<String>, ServeError> {
    let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if token.as_ref().is_some_and(|t| t.len() < MIN_ADMIN_TOKEN_BYTES) {
        return Err(ServeError(format!(
            "{variable} must be at least {MIN_ADMIN_TOKEN_BYTES} bytes (streamgate keygen --alg HS256 makes one)"
        )));
    }
    Ok(token)
}

/// A configuration that passed every check, ready to serve.
pub struct GateSetup {
    gateway: Gateway,
    admin_token: Option<String>,
    metrics_token: Option<String>,
    limits: Limits,
}

impl GateSetup {
    /// Checks `options`: the configuration document (errors name the member), the origin,
    /// and the admin token. Forward-auth needs `policy.trustedProxies`, since it believes the
    /// request a proxy names only from them.
    pub fn new(options: ServeOptions) -> Result<GateSetup, ServeError> {
        let fail = |e: streamgate_core::Error| ServeError(format!("configuration: {e}"));
        let deployment = GateConfig::from_json(&options.config).and_then(GateConfig::build_deployment).map_err(fail)?;
        let gateway = match &options.origin {
            Some(origin) => Gateway::new(deployment, origin).map_err(fail)?,
            None if deployment.gate.policy.trusted_proxies.is_empty() => {
                return Err(ServeError(
                    "configuration: forward-auth believes the request a proxy names only from policy.trustedProxies: \
                     list the proxy's address (127.0.0.1 for one on this host), or give --origin to proxy"
                        .into(),
                ));
            }
            None => Gateway::forward_auth(deployment),
        };
        let admin_token = bearer_token(options.admin_token, "STREAMGATE_ADMIN_TOKEN")?;
        let metrics_token = bearer_token(options.metrics_token, "STREAMGATE_METRICS_TOKEN")?;
        if metrics_token.is_some() && metrics_token == admin_token {
            return Err(ServeError(
                "STREAMGATE_METRICS_TOKEN must differ from STREAMGATE_ADMIN_TOKEN: a scraper's token must not open /admin"
                    .into(),
            ));
        }
        let Limits { origin_timeout, max_connections, body_timeout, send_timeout } = options.limits;
        if max_connections == 0 || origin_timeout.is_zero() || body_timeout.is_zero() || send_timeout.is_zero() {
            return Err(ServeError("the connection limit and the timeouts must be above 0".into()));
        }
        // The write timeout is a deadline on the clock: one past its range would panic.
        if send_timeout > MAX_SEND_TIMEOUT {
            return Err(ServeError("the send timeout must be at most a day".into()));
        }
        Ok(GateSetup { gateway, admin_token, metrics_token, limits: options.limits })
    }

    /// How long the memory backend keeps a hub with nothing going on: an hour, or twice
    /// the idle time of a session if that is longer.
    pub fn hub_retention(&self) -> i64 {
        self.gateway.deployment.idle_seconds.saturating_mul(2).max(3_600)
    }

    /// The in-memory state for this gate, with revocations and blocks in `file` if given.
    pub fn memory_state(&self, file: Option<PathBuf>) -> Result<MemoryState, ServeError> {
        match file {
            Some(file) => MemoryState::open(file, self.hub_retention()).map_err(|e| ServeError(e.to_string())),
            None => Ok(MemoryState::in_memory(self.hub_retention())),
        }
    }
}

/// Everything a request handler reaches.
pub(crate) struct App<S> {
    pub gateway: Gateway,
    pub state: S,
    pub origin: Origin,
    pub tallies: Mutex<Tallies>,
    pub metrics: Metrics,
    /// `clientIpHeader` as a header name, parsed once (`None` if it is none: no request
    /// can carry it).
    pub client_ip_header: Option<HeaderName>,
    pub admin_token: Option<String>,
    /// The token that reads `/metrics` only ([`ServeOptions::metrics_token`]).
    metrics_token: Option<String>,
    /// How long an admin request's body may take.
    pub body_timeout: Duration,
    /// How long a connection's writes may make no progress ([`Limits::send_timeout`]).
    send_timeout: Duration,
    /// Background heartbeats, awaited at shutdown.
    pub background: TaskTracker,
    /// Whether `/admin` and `/metrics` are served on an address of their own
    /// (`--admin-listen`), and only there.
    operators_apart: bool,
    /// Permits for client connections, [`Limits::max_connections`] of them.
    connections: Arc<Semaphore>,
}

impl<S: State> App<S> {
    /// Whether `peer` is one of `policy.trustedProxies`.
    pub(crate) fn trusts(&self, peer: IpAddr) -> bool {
        self.gateway.deployment.gate.policy.trusted_proxies.iter().any(|range| range.contains(peer))
    }

    /// Whether `headers` carry the metrics token or the admin token.
    fn may_read_metrics(&self, headers: &HeaderMap) -> bool {
        admin::authorized(&self.metrics_token, headers) || admin::authorized(&self.admin_token, headers)
    }

    /// Takes a request as hyper hands it over; forward-auth's is read right away (see
    /// [`gate::read_auth`]).
    fn arrive(&self, req: Request<Incoming>, peer: IpAddr) -> Arrived {
        match req.uri().path() {
            "/auth" => Arrived::Auth(gate::read_auth(self, req, peer)),
            _ => Arrived::Other(req),
        }
    }

    /// The answer to a request as hyper hands it over, boxed: hyper moves a request's
    /// future into place, and one future for every path was 14.7 KB (the proxy's and the
    /// admin API's inside forward-auth's); a box moves as a pointer.
    fn serve(self: Arc<Self>, req: Request<Incoming>, peer: IpAddr, door: Door) -> Answer {
        match self.arrive(req, peer) {
            Arrived::Auth(asked) if door == Door::Viewers => Box::pin(gate::forward_auth(self, asked)),
            Arrived::Auth(_) => Box::pin(std::future::ready(Ok(operators_only()))),
            Arrived::Other(req) => Box::pin(async move { Ok(self.route(req, peer, door).await) }),
        }
    }

    /// Every path but forward-auth's.
    async fn route(self: Arc<Self>, req: Request<Incoming>, peer: IpAddr, door: Door) -> Response<Body> {
        let path = req.uri().path();
        let operators_path = path == "/metrics" || path == "/admin" || path.starts_with("/admin/");
        match path {
            "/healthz" => self.health(),
            _ if operators_path && door == Door::Viewers && self.operators_apart => error_response(
                404,
                "not_found",
                "the admin API and /metrics are served on the operators' address (--admin-listen)",
            ),
            _ if !operators_path && door == Door::Operators => operators_only(),
            // In proxy mode viewers reach every path: the counters are the operator's. The
            // operators' address is the operators' own.
            "/metrics"
                if door == Door::Viewers
                    && self.gateway.origin().is_some()
                    && !self.may_read_metrics(req.headers()) =>
            {
                error_response(
                    401,
                    "unauthorized",
                    "in proxy mode /metrics needs STREAMGATE_METRICS_TOKEN or the admin token as a Bearer token",
                )
            }
            "/metrics" => {
                let mut answer = response(200, full(self.metrics.render()));
                set_header(answer.headers_mut(), "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                answer
            }
            _ if path == "/admin" || path.starts_with("/admin/") => admin::handle(&self, req).await,
            _ if self.gateway.origin().is_some() => gate::proxy(&self, req, peer).await,
            _ => error_response(404, "not_found", "this gate answers /auth (forward-auth); give it --origin to proxy"),
        }
    }

    fn health(&self) -> Response<Body> {
        let schemes: Vec<&str> = self.gateway.deployment.gate.accepted().iter().map(|k| k.as_str()).collect();
        let mode = if self.gateway.origin().is_some() { "proxy" } else { "forward-auth" };
        json_response(
            200,
            &json!({ "ok": true, "schemes": schemes, "mode": mode, "version": env!("CARGO_PKG_VERSION") }),
        )
    }
}

/// Which address a connection came in on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Door {
    /// `--listen`: viewers (proxy mode) or the proxy asking (forward-auth).
    Viewers,
    /// `--admin-listen`: the admin API, `/metrics` and `/healthz`.
    Operators,
}

/// What the operators' address answers for any other path.
fn operators_only() -> Response<Body> {
    error_response(404, "not_found", "the operators' address serves /admin, /metrics and /healthz only")
}

/// What a request's future gives hyper.
type Answered = Result<Response<Body>, Infallible>;

/// A request's answer to come.
type Answer = Pin<Box<dyn Future<Output = Answered> + Send>>;

/// A request as the service received it.
enum Arrived {
    /// Forward-auth, already read.
    Auth(gate::AuthRequest),
    /// Every other route, read when it is served.
    Other(Request<Incoming>),
}

/// Unix seconds from the system clock (the adapter's job; the core never reads one).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The runtime `streamgate serve` runs on: tokio's multi-threaded scheduler, one worker
/// per core. Public, with [`http1_builder`], so that a server compared with serve (the
/// benchmark's `examples/bare.rs`) runs exactly as serve does.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// The HTTP/1.1 settings every connection is served with: keep-alive, and a time limit
/// for a request's headers on tokio's timer.
pub fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// A gate bound to its address (and the operators' own, if any), not yet serving.
pub struct Server<S: State> {
    listener: TcpListener,
    operator_listener: Option<TcpListener>,
    app: Arc<App<S>>,
}

impl<S: State> Server<S> {
    /// Binds `listen` for the gate of `setup`, over `state`.
    pub async fn bind(setup: GateSetup, state: S, listen: SocketAddr) -> Result<Server<S>, ServeError> {
        Server::bind_apart(setup, state, listen, None).await
    }

    /// [`Server::bind`], and with `admin_listen` an address of the operators' own: the
    /// admin API and `/metrics` (open there) are served on it and no longer on `listen`,
    /// with connections of their own, so a flood of viewers never locks the operator out.
    pub async fn bind_apart(
        setup: GateSetup,
        state: S,
        listen: SocketAddr,
        admin_listen: Option<SocketAddr>,
    ) -> Result<Server<S>, ServeError> {
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address).await.map_err(|e| ServeError(format!("cannot listen on {address}: {e}")))
        };
        let listener = bind(listen).await?;
        let operator_listener = match admin_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let client_ip_header = HeaderName::from_bytes(setup.gateway.deployment.client_ip_header.as_bytes()).ok();
        let app = App {
            gateway: setup.gateway,
            state,
            origin: Origin::new(setup.limits.origin_timeout, setup.limits.body_timeout).map_err(ServeError)?,
            tallies: Mutex::new(Tallies::default()),
            metrics: Metrics::new(),
            client_ip_header,
            admin_token: setup.admin_token,
            metrics_token: setup.metrics_token,
            body_timeout: setup.limits.body_timeout,
            send_timeout: setup.limits.send_timeout,
            background: TaskTracker::new(),
            operators_apart: operator_listener.is_some(),
            connections: Arc::new(Semaphore::new(setup.limits.max_connections)),
        };
        Ok(Server { listener, operator_listener, app: Arc::new(app) })
    }

    /// The address it listens on (the port, when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(|e| ServeError(e.to_string()))
    }

    /// The operators' address, if it has one.
    pub fn operator_addr(&self) -> Option<SocketAddr> {
        self.operator_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish (up to 30 s), waits for background heartbeats and flushes the state.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let graceful = GracefulShutdown::new();
        let stop = CancellationToken::new();
        let viewers =
            accept(&self.app, self.listener, Arc::clone(&self.app.connections), Door::Viewers, &graceful, &stop);
        let operators = async {
            if let Some(listener) = self.operator_listener {
                let permits = Arc::new(Semaphore::new(OPERATOR_CONNECTIONS));
                accept(&self.app, listener, permits, Door::Operators, &graceful, &stop).await;
            }
        };
        let signal = async {
            shutdown.await;
            stop.cancel();
        };
        tokio::join!(viewers, operators, signal);
        tracing::info!(target: "streamgate::server", "shutting down: finishing in-flight requests");
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
            tracing::warn!(target: "streamgate::server", "in-flight requests still running after 30 s: closing them");
        }
        self.app.background.close();
        self.app.background.wait().await;
        self.app.state.flush(unix_now()).await.map_err(|e| ServeError(e.to_string()))?;
        tracing::info!(target: "streamgate::server", "stopped");
        Ok(())
    }
}

/// Accepts connections on `listener` until `stop`, each with a permit of `permits` that it
/// holds until it closes, serving them as arrivals at `door`.
async fn accept<S: State>(
    app: &Arc<App<S>>,
    listener: TcpListener,
    permits: Arc<Semaphore>,
    door: Door,
    graceful: &GracefulShutdown,
    stop: &CancellationToken,
) {
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let send_timeout = app.send_timeout;
                    let app = Arc::clone(app);
                    let peer = peer.ip().to_canonical();
                    let service = service_fn(move |req| Arc::clone(&app).serve(req, peer, door));
                    // No limit counts while hyper waits to write, so a client that stops
                    // reading would hold the connection, and its permit, for ever.
                    let mut stream = TimeoutStream::new(stream);
                    stream.set_write_timeout(Some(send_timeout));
                    let connection = http1_builder().serve_connection(TokioIo::new(Box::pin(stream)), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(target: "streamgate::server", %error, "connection ended");
                        }
                        drop(permit);
                    });
                }
                Err(error) => {
                    // Out of file descriptors, most likely: let some connections close.
                    tracing::warn!(target: "streamgate::server", %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = stop.cancelled() => return,
        }
    }
}

/// Completes on SIGTERM or ctrl-c (SIGINT).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            // Without a SIGTERM handler, ctrl-c alone stops the server.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Where and how `streamgate serve` runs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The gate.
    pub serve: ServeOptions,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The operators' own address for the admin API and `/metrics`, if any.
    pub admin_listen: Option<SocketAddr>,
    /// The file revocations and blocks are kept in.
    pub state_file: Option<PathBuf>,
    /// The Redis URL that several nodes share state in, instead of memory and `state_file`.
    pub redis: Option<String>,
}

/// `streamgate serve`: checks the configuration, binds, logs JSON lines to standard error
/// and serves until SIGTERM or ctrl-c.
pub fn run(options: RunOptions) -> Result<(), ServeError> {
    crate::log::init_logging();
    let setup = GateSetup::new(options.serve)?;
    let runtime = runtime().map_err(|e| ServeError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        match options.redis {
            Some(url) => {
                let state = RedisState::connect(&url, setup.hub_retention())
                    .await
                    .map_err(|e| ServeError(format!("--redis: {e}")))?;
                serve_on(setup, state, options.listen, options.admin_listen).await
            }
            None => {
                let state = setup.memory_state(options.state_file)?;
                serve_on(setup, state, options.listen, options.admin_listen).await
            }
        }
    })
}

async fn serve_on<S: State>(
    setup: GateSetup,
    state: S,
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
) -> Result<(), ServeError> {
    let server = Server::bind_apart(setup, state, listen, admin_listen).await?;
    let address = server.local_addr()?;
    tracing::info!(target: "streamgate::server", %address, "listening");
    if let Some(address) = server.operator_addr() {
        tracing::info!(target: "streamgate::server", %address, "listening for the admin API and /metrics");
    }
    server.run(shutdown_signal()).await
}
