//! What the serve tests share: a small static origin, a gate started from the library on
//! 127.0.0.1, signed tokens, and an HTTP client that can speak from another loopback
//! address (127.0.0.2 is an untrusted peer when only 127.0.0.1 is a trusted proxy).

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Map, Value};
use streamgate_core::keys::{Algorithm, Key};
use streamgate_core::schemes::jwt;
use streamgate_serve::{GateSetup, Limits, ServeOptions, Server};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const SECRET: &str = "a test secret of thirty-two bytes";
pub const SESSION_SECRET: &str = "a session secret of thirty-two bytes";
pub const ADMIN_TOKEN: &str = "admin-token-of-at-least-thirty-two-bytes";
pub const METRICS_TOKEN: &str = "metrics-token-of-at-least-thirty-two-bytes";

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An HS256 token with `claims`, plus an `exp` an hour away unless given.
pub fn token(claims: Value) -> String {
    sign_with(claims, SECRET, Algorithm::HS256)
}

pub fn sign_with(claims: Value, secret: &str, alg: Algorithm) -> String {
    let mut claims: Map<String, Value> = claims.as_object().cloned().unwrap();
    claims.entry("exp").or_insert(json!(now() + 3600));
    jwt::sign_json(&claims, &Key::hmac(alg, secret.as_bytes()).unwrap()).unwrap()
}

/// The configuration document with the test key and `rest` merged in.
pub fn config(rest: Value) -> String {
    let mut doc = json!({ "keys": [{ "alg": "HS256", "secret": SECRET }] });
    for (k, v) in rest.as_object().cloned().unwrap() {
        doc[k] = v;
    }
    doc.to_string()
}

/// What the origin saw: method and path-and-query of each request, and its headers.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// A static origin on 127.0.0.1: paths to (content type, body).
pub struct Origin {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _stop: oneshot::Sender<()>,
}

pub async fn origin(files: Vec<(&'static str, &'static str, Vec<u8>)>) -> Origin {
    let files: Arc<HashMap<&'static str, (&'static str, Vec<u8>)>> =
        Arc::new(files.into_iter().map(|(path, ct, body)| (path, (ct, body))).collect());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, mut stopped) = oneshot::channel::<()>();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! { a = listener.accept() => a, _ = &mut stopped => return };
            let Ok((stream, _)) = accepted else { continue };
            let (files, log) = (files.clone(), log.clone());
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (files, log) = (files.clone(), log.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                    let headers = parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    let uri = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                    log.lock().unwrap().push(Seen { method: parts.method.to_string(), uri, headers, body });
                    let response = match files.get(parts.uri.path()) {
                        Some((ct, body)) => Response::builder()
                            .header("Content-Type", *ct)
                            .header("Content-Length", body.len())
                            .body(Full::new(Bytes::from(body.clone()))),
                        None => Response::builder().status(404).body(Full::new(Bytes::from_static(b"not here"))),
                    };
                    Ok::<_, Infallible>(response.unwrap())
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Origin { url, seen, _stop: stop }
}

/// A running gate.
pub struct Gate {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), streamgate_serve::ServeError>>>,
}

impl Gate {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops it the way SIGTERM does and waits until it has flushed its state.
    pub async fn stop(mut self) {
        self.signal_stop();
        self.wait().await;
    }

    /// Tells it to stop, as SIGTERM does.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until it has stopped and flushed its state.
    pub async fn wait(mut self) {
        if let Some(done) = self.done.take() {
            done.await.unwrap().unwrap();
        }
    }
}

/// Starts a gate for `config` (proxying to `origin` if given), with the admin token and
/// revocations and blocks kept in `state_file` if given.
pub async fn gate(config: String, origin: Option<&str>, state_file: Option<PathBuf>) -> Gate {
    gate_with_limits(config, origin, state_file, Limits::default()).await
}

/// [`gate`] with `limits` instead of the defaults.
pub async fn gate_with_limits(
    config: String,
    origin: Option<&str>,
    state_file: Option<PathBuf>,
    limits: Limits,
) -> Gate {
    let options = ServeOptions {
        config,
        origin: origin.map(str::to_owned),
        admin_token: Some(ADMIN_TOKEN.into()),
        metrics_token: Some(METRICS_TOKEN.into()),
        limits,
    };
    let setup = GateSetup::new(options).unwrap();
    let state = setup.memory_state(state_file).unwrap();
    let server = Server::bind(setup, state, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let address = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Gate { address, stop: Some(stop), done: Some(done) }
}

/// A response as the tests read it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn reason(&self) -> Option<&str> {
        self.header("x-streamgate-reason")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends a request from `from` (a loopback address) with `headers`.
pub async fn send_from(from: IpAddr, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(from));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client.request(request.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    send_from("127.0.0.1".parse().unwrap(), "GET", url, headers, "").await
}

/// An admin call with the right token.
pub async fn admin(gate: &Gate, method: &str, path: &str, body: Value) -> Answer {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let body = if body.is_null() { String::new() } else { body.to_string() };
    send_from("127.0.0.1".parse().unwrap(), method, &gate.url(path), &[("Authorization", &bearer)], &body).await
}
