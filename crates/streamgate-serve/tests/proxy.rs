//! Proxy mode (`--origin`): the whole gate in front of a static origin on 127.0.0.1. HLS
//! master and media playlists rewritten with session credentials, segments streamed through
//! byte for byte, credentials never reaching the origin, session limits, usage export, and
//! a revocation ending open sessions, and the limits on what a slow origin or a flood of
//! connections can hold.

mod support;

use serde_json::{json, Value};
use streamgate_core::detection::UsageEvent;
use streamgate_serve::Limits;
use support::*;

const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n";
const MEDIA: &str =
    "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:4.0,\nseg0.ts\n#EXT-X-ENDLIST\n";

/// A megabyte of bytes that are not all alike.
fn segment() -> Vec<u8> {
    (0..1_048_576u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

async fn hls_origin() -> Origin {
    origin(vec![
        ("/hls/master.m3u8", "application/vnd.apple.mpegurl", MASTER.as_bytes().to_vec()),
        ("/hls/low/index.m3u8", "application/vnd.apple.mpegurl", MEDIA.as_bytes().to_vec()),
        ("/hls/low/seg0.ts", "video/mp2t", segment()),
        ("/posters/a.jpg", "image/jpeg", b"jpeg".to_vec()),
    ])
    .await
}

fn proxy_config(policy: Value) -> String {
    config(json!({ "sessions": { "secret": SESSION_SECRET }, "policy": policy }))
}

/// The one URI line of a playlist.
fn uri_line(playlist: &str) -> String {
    playlist.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap().to_owned()
}

#[tokio::test]
async fn plays_hls_through_rewritten_playlists_with_segments_streamed_untouched() {
    let origin = hls_origin().await;
    let gate = gate(proxy_config(json!({})), Some(&origin.url), None).await;
    let entry = token(json!({ "jti": "viewer-1", "streams": ["hls/**"] }));

    let master = get(&gate.url(&format!("/hls/master.m3u8?token={entry}&x=1")), &[("Cookie", "session=private")]).await;
    assert_eq!(master.status, 200, "{}", master.text());
    assert_eq!(master.header("cache-control"), Some("private, no-store"));
    assert_eq!(master.header("access-control-allow-origin"), Some("*"));
    let variant = uri_line(&master.text());
    assert!(variant.starts_with("low/index.m3u8?sgs="), "the variant carries a session credential: {variant}");
    assert!(!master.text().contains(&entry), "the entry token never appears in the playlist");

    let media = get(&gate.url(&format!("/hls/{variant}")), &[]).await;
    assert_eq!(media.status, 200, "{}", media.text());
    let segment_uri = uri_line(&media.text());
    assert!(segment_uri.starts_with("seg0.ts?sgs="), "{segment_uri}");

    let played = get(&gate.url(&format!("/hls/low/{segment_uri}")), &[("Range", "bytes=0-")]).await;
    assert_eq!(played.status, 200);
    assert_eq!(played.header("content-type"), Some("video/mp2t"));
    assert_eq!(played.header("content-length"), Some("1048576"));
    assert!(played.body == segment(), "the segment's bytes pass through untouched");

    // The origin saw the checked paths with every credential stripped, other parameters
    // kept, the Range header and never the viewer's cookie.
    let seen = origin.seen.lock().unwrap().clone();
    let uris: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(uris, ["/hls/master.m3u8?x=1", "/hls/low/index.m3u8", "/hls/low/seg0.ts"]);
    assert!(seen.iter().all(|s| !s.headers.contains_key("cookie") && !s.headers.contains_key("authorization")));
    assert_eq!(seen[2].headers.get("range").map(String::as_str), Some("bytes=0-"));

    // Without a credential the segment is refused, and the origin is not asked.
    let bare = get(&gate.url("/hls/low/seg0.ts"), &[]).await;
    assert_eq!((bare.status, bare.reason()), (401, Some("missing_token")));
    assert_eq!(bare.header("access-control-allow-origin"), Some("*"), "players read denials across origins");
    assert_eq!(origin.seen.lock().unwrap().len(), 3);

    // The usage export is what `streamgate scan` reads: JSON Lines of usage events.
    let usage = admin(&gate, "GET", "/admin/usage?window=1h", Value::Null).await;
    assert_eq!((usage.status, usage.header("content-type")), (200, Some("application/x-ndjson")));
    let events: Vec<UsageEvent> = usage.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2, "a start and a reload: {}", usage.text());
    assert!(events.iter().all(|e| e.token == "viewer-1" && e.ip.as_deref() == Some("127.0.0.1")));
    assert_eq!(events[0].stream.as_deref(), Some("/hls/master.m3u8"));
    assert_eq!(events[0].sid, events[1].sid, "the reload is the same session");
    let bad_window = admin(&gate, "GET", "/admin/usage?window=3w", Value::Null).await;
    assert_eq!((bad_window.status, bad_window.json()["error"].as_str()), (400, Some("invalid_input")));
    gate.stop().await;
}

#[tokio::test]
async fn refuses_what_must_not_reach_the_origin() {
    let origin = hls_origin().await;
    let gate = gate(proxy_config(json!({ "publicPaths": ["posters"] })), Some(&origin.url), None).await;
    let entry = token(json!({ "streams": ["hls/**"] }));
    let with = |path: &str| gate.url(&format!("{path}?token={entry}"));
    let localhost = "127.0.0.1".parse().unwrap();

    let delete = send_from(localhost, "DELETE", &with("/hls/low/seg0.ts"), &[], "").await;
    assert_eq!((delete.status, delete.reason()), (405, Some("method_not_allowed")));
    let escape = get(&with("/hls/%252e%252e/posters/a.jpg"), &[]).await;
    assert_eq!((escape.status, escape.reason()), (403, Some("scope_mismatch")));
    let preflight = send_from(localhost, "OPTIONS", &gate.url("/hls/master.m3u8"), &[], "").await;
    assert_eq!(preflight.status, 204);
    assert!(origin.seen.lock().unwrap().is_empty(), "nothing reached the origin");

    // Public paths need no credential.
    assert_eq!(get(&gate.url("/posters/a.jpg"), &[]).await.body, b"jpeg");
    // The origin's own answers pass through.
    assert_eq!(get(&with("/hls/missing.ts"), &[]).await.status, 404);
    gate.stop().await;

    // An origin that is down is a 502, not a decision.
    let down = support::gate(proxy_config(json!({})), Some("http://127.0.0.1:9"), None).await;
    let answer = get(&down.url(&format!("/hls/low/seg0.ts?token={entry}")), &[]).await;
    assert_eq!((answer.status, answer.json()["error"].as_str()), (502, Some("origin_unavailable")));
    let message = answer.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.contains("127.0.0.1") && !message.contains("connect"), "the cause stays in the log: {message}");
    down.stop().await;
}

#[tokio::test]
async fn counts_sessions_and_ends_them_on_revocation() {
    let origin = hls_origin().await;
    let gate = gate(proxy_config(json!({})), Some(&origin.url), None).await;
    let entry = token(json!({ "sub": "bob", "jti": "bobs-token", "max_sessions": 1, "streams": ["hls/**"] }));
    let master = gate.url(&format!("/hls/master.m3u8?token={entry}"));

    let first = get(&master, &[("User-Agent", "player-a")]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second = get(&master, &[("User-Agent", "player-b")]).await;
    assert_eq!((second.status, second.reason()), (429, Some("too_many_sessions")));
    // Regression (review): a range or a revalidation got a playlist answered in part or
    // "not modified", passed on uncounted. The origin is never asked for less than all of it.
    let ranged = get(&master, &[("User-Agent", "player-c"), ("Range", "bytes=0-"), ("If-None-Match", "\"v1\"")]).await;
    assert_eq!((ranged.status, ranged.reason()), (429, Some("too_many_sessions")));
    let seen = origin.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|s| !s.headers.contains_key("range") && !s.headers.contains_key("if-none-match")));

    // Revoking the token ends the open session: its next playlist reload is refused, and
    // its segments too.
    let variant = uri_line(&first.text());
    let revoked = admin(&gate, "POST", "/admin/revoke", json!({ "jti": "bobs-token", "sub": "bob" })).await;
    assert_eq!(revoked.json()["sessionKeys"], json!(["jti:bobs-token", "sub:bob"]));
    let reload = get(&gate.url(&format!("/hls/{variant}")), &[("User-Agent", "player-a")]).await;
    assert_eq!((reload.status, reload.reason()), (403, Some("revoked")));
    let segment = get(&gate.url(&format!("/hls/low/seg0.ts?{}", variant.split_once('?').unwrap().1)), &[]).await;
    assert_eq!((segment.status, segment.reason()), (403, Some("revoked")));

    // Lifted, the token plays again.
    admin(&gate, "POST", "/admin/unrevoke", json!({ "jti": "bobs-token", "sub": "bob" })).await;
    assert_eq!(get(&master, &[("User-Agent", "player-a")]).await.status, 200);
    gate.stop().await;
}

/// An origin that answers its first request only when released, and says when it has it.
async fn held_origin() -> (String, tokio::sync::oneshot::Receiver<()>, tokio::sync::oneshot::Sender<()>) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (arrived, arrival) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let slots = std::sync::Arc::new(std::sync::Mutex::new((Some(arrived), Some(released))));
        let service = service_fn(move |_req| {
            let slots = slots.clone();
            async move {
                let (arrived, released) = {
                    let mut slots = slots.lock().unwrap();
                    (slots.0.take(), slots.1.take())
                };
                if let (Some(arrived), Some(released)) = (arrived, released) {
                    let _ = arrived.send(());
                    let _ = released.await;
                }
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(bytes::Bytes::from(segment()))))
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });
    (url, arrival, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_requests_in_flight_and_then_refuses_connections() {
    let (origin_url, arrival, release) = held_origin().await;
    let gate = gate(proxy_config(json!({})), Some(&origin_url), None).await;
    let entry = token(json!({ "streams": ["hls/**"] }));
    let address = gate.address;
    let in_flight = tokio::spawn(get_owned(gate.url(&format!("/hls/low/seg0.ts?token={entry}"))));
    arrival.await.unwrap();
    // The segment request is at the origin: stop the gate, and wait until it has closed its
    // listener (it is then draining), before the origin answers.
    let mut gate = gate;
    gate.signal_stop();
    let mut attempts = 0;
    while tokio::net::TcpStream::connect(address).await.is_ok() {
        attempts += 1;
        assert!(attempts < 100_000, "the listener never closed");
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.body == segment(), "the whole segment arrived");
    gate.wait().await;
}

async fn get_owned(url: String) -> Answer {
    get(&url, &[]).await
}

/// Regression (review): an origin that never answered held the viewer's request (and a
/// connection to the origin) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_does_not_answer_in_time_is_504() {
    let (origin_url, _arrival, _release) = held_origin().await;
    let limits = Limits { origin_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let gate = gate_with_limits(proxy_config(json!({})), Some(&origin_url), None, limits).await;
    let entry = token(json!({ "streams": ["hls/**"] }));
    let started = std::time::Instant::now();
    let url = gate.url(&format!("/hls/low/seg0.ts?token={entry}"));
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), get(&url, &[])).await.expect("no answer");
    assert_eq!((answer.status, answer.json()["error"].as_str()), (504, Some("origin_timeout")));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "answered after {:?}", started.elapsed());
    gate.stop().await;
}

/// Sends a bare HTTP/1.1 request for `path` on `stream` and reads until the head of the
/// answer has arrived; returns its status line.
async fn request_on(stream: &mut tokio::net::TcpStream, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: gate\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "the gate closed the connection");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned()
}

/// Regression (review): connections were accepted without bound, so a flood of idle ones
/// ran the process out of file descriptors for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let origin = hls_origin().await;
    let limits = Limits { max_connections: 2, ..Limits::default() };
    let gate = gate_with_limits(proxy_config(json!({})), Some(&origin.url), None, limits).await;
    let mut first = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    assert!(request_on(&mut first, "/healthz").await.contains(" 200 "));
    assert!(request_on(&mut second, "/healthz").await.contains(" 200 "));
    // Both stay open (keep-alive): a third is connected by the kernel but not served.
    let mut third = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    let waiting = tokio::time::timeout(std::time::Duration::from_millis(500), request_on(&mut third, "/healthz")).await;
    assert!(waiting.is_err(), "a third connection was served over a limit of two");
    drop(first);
    let served = tokio::time::timeout(std::time::Duration::from_secs(10), request_on(&mut third, "/healthz")).await;
    assert!(served.expect("served once a connection closed").contains(" 200 "));
    assert!(request_on(&mut second, "/healthz").await.contains(" 200 "));
    drop((second, third));
    gate.stop().await;
}

/// Regression (review): in proxy mode every viewer reached `/metrics`, the operator's
/// counters of decisions and reasons.
#[tokio::test]
async fn proxy_mode_metrics_need_the_admin_token() {
    let origin = hls_origin().await;
    let gate = gate(proxy_config(json!({})), Some(&origin.url), None).await;
    let anonymous = get(&gate.url("/metrics"), &[]).await;
    assert_eq!((anonymous.status, anonymous.json()["error"].as_str()), (401, Some("unauthorized")));
    let wrong = get(&gate.url("/metrics"), &[("Authorization", "Bearer not-the-admin-token-but-long-enough")]).await;
    assert_eq!(wrong.status, 401);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let operator = get(&gate.url("/metrics"), &[("Authorization", &bearer)]).await;
    assert_eq!(operator.status, 200);
    assert!(operator.text().contains("streamgate_decisions_total"), "{}", operator.text());
    // A scraper holds a token that reads the counters and nothing else (review).
    let scraper = format!("Bearer {METRICS_TOKEN}");
    assert_eq!(get(&gate.url("/metrics"), &[("Authorization", &scraper)]).await.status, 200);
    let revoke = send_from(
        "127.0.0.1".parse().unwrap(),
        "POST",
        &gate.url("/admin/revoke"),
        &[("Authorization", &scraper)],
        r#"{"jti":"x"}"#,
    )
    .await;
    assert_eq!(revoke.status, 401, "the metrics token is no admin token: {}", revoke.text());
    assert_eq!(get(&gate.url("/healthz"), &[]).await.status, 200, "health stays open for monitors");
    gate.stop().await;
}

/// Sends `head` (a request whose body stops short of its `Content-Length`) and reads the
/// gate's answer until it closes the connection, failing if that takes 20 s.
async fn answer_to_a_stalled_upload(gate: &Gate, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the gate waited for the rest of the body for ever");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Regression (review): an admin request whose body never finished held its connection
/// for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_body_that_does_not_arrive_in_time_is_408() {
    let limits = Limits { body_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let gate = gate_with_limits(proxy_config(json!({})), Some("http://127.0.0.1:9"), None, limits).await;
    let head = format!(
        "POST /admin/revoke HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"jti\""
    );
    let answer = answer_to_a_stalled_upload(&gate, &head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    gate.stop().await;
}

/// Regression (review): every playlist request left a usage record, so one token holder
/// looping on a playlist filled the shared log (100,000 records) and pushed the other
/// tokens' records out before `streamgate scan` read them.
#[tokio::test]
async fn a_playlist_loop_leaves_a_few_usage_records_and_others_keep_theirs() {
    let origin = hls_origin().await;
    let gate = gate(proxy_config(json!({})), Some(&origin.url), None).await;
    let other = token(json!({ "jti": "other", "streams": ["hls/**"] }));
    assert_eq!(get(&gate.url(&format!("/hls/master.m3u8?token={other}")), &[]).await.status, 200);

    let looper = token(json!({ "jti": "looper", "streams": ["hls/**"] }));
    let master = get(&gate.url(&format!("/hls/master.m3u8?token={looper}")), &[]).await;
    let variant = gate.url(&format!("/hls/{}", uri_line(&master.text())));
    for _ in 0..300 {
        assert_eq!(get(&variant, &[]).await.status, 200);
    }
    let usage = admin(&gate, "GET", "/admin/usage?window=1h", Value::Null).await;
    let events: Vec<UsageEvent> = usage.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |token: &str| events.iter().filter(|e| e.token == token).count();
    assert_eq!(of("looper"), 2, "the start and the first reload of the variant: {}", usage.text());
    assert_eq!(of("other"), 1);
    gate.stop().await;
}

/// What a scripted origin reads of each request before it answers.
#[derive(Clone, Copy)]
enum Reads {
    /// One read: the head, and whatever of the body came with it.
    Head,
    /// Everything, until the gate closes the connection.
    All,
}

/// An origin that, on each connection, reads what `reads` says, writes `answer`, then holds
/// the connection for an hour without reading more.
async fn scripted_origin(reads: Reads, answer: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                match reads {
                    Reads::Head => drop(stream.read(&mut buffer).await),
                    Reads::All => while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {},
                }
                let _ = stream.write_all(&answer).await;
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            });
        }
    });
    url
}

/// An origin that answers every request with the head of a `length`-byte body and its first
/// `sent` bytes, then goes silent.
async fn stalling_origin(length: usize, sent: usize) -> String {
    let mut answer =
        format!("HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: {length}\r\n\r\n").into_bytes();
    answer.resize(answer.len() + sent, 7);
    scripted_origin(Reads::Head, answer).await
}

/// Regression (review): a client that stopped reading held its connection, and with it a
/// permit, for ever: no limit counts while the gate waits to write, so with every permit
/// held so nobody else was served. A connection whose writes make no progress for the
/// send timeout is now closed, as nginx's `send_timeout` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_let_go() {
    use tokio::io::AsyncWriteExt;
    let origin = origin(vec![("/vod/big.mp4", "video/mp4", vec![b'x'; 64 << 20])]).await;
    let limits = Limits { max_connections: 1, send_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let gate = gate_with_limits(proxy_config(json!({})), Some(&origin.url), None, limits).await;
    let viewer = token(json!({ "streams": ["vod/**"] }));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(gate.address).await.unwrap();
    let request = format!("GET /vod/big.mp4?token={viewer} HTTP/1.1\r\nHost: gate\r\n\r\n");
    stalled.write_all(request.as_bytes()).await.unwrap();
    // It never reads: the gate's writes stall once the socket buffers are full.
    let health = tokio::time::timeout(std::time::Duration::from_secs(20), get(&gate.url("/healthz"), &[])).await;
    let health = health.expect("a client that stopped reading held the only connection");
    assert_eq!(health.status, 200);
    drop(stalled);
    gate.stop().await;
}

/// Regression (review): an origin's redirect to its own address (nginx's 301 for a
/// directory) went to the viewer as it was, telling where the origin is.
#[tokio::test]
async fn an_origins_redirect_to_itself_names_the_gate() {
    let answer = b"HTTP/1.1 301 Moved Permanently\r\nLocation: /base/hls/low/\r\nContent-Length: 0\r\n\r\n";
    let url = scripted_origin(Reads::Head, answer.to_vec()).await;
    let gate = gate(proxy_config(json!({})), Some(&format!("{url}/base")), None).await;
    let viewer = token(json!({ "streams": ["hls/**"] }));
    let moved = get(&gate.url(&format!("/hls/low?token={viewer}")), &[]).await;
    assert_eq!(moved.status, 301);
    assert_eq!(moved.headers.get("location").and_then(|l| l.to_str().ok()), Some("/hls/low/"));
    gate.stop().await;
}

/// A second for the origin and for the publisher to go on, so stalls show at once.
fn one_second_limits() -> Limits {
    let second = std::time::Duration::from_secs(1);
    Limits { origin_timeout: second, body_timeout: second, ..Limits::default() }
}

/// Starts a 64 MiB upload to `gate` (`Connection: close`) from a task of its own that stops
/// at the first write that fails; the connection's read half, for the gate's answer.
async fn huge_upload(gate: &Gate) -> tokio::net::tcp::OwnedReadHalf {
    use tokio::io::AsyncWriteExt;
    let publisher = token(json!({ "streams": ["ingest/**"], "purpose": "publish" }));
    let size = 64 << 20;
    let head = format!(
        "PUT /ingest/a.ts?token={publisher} HTTP/1.1\r\nHost: gate\r\nConnection: close\r\nContent-Length: {size}\r\n\r\n"
    );
    let stream = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    tokio::spawn(async move {
        let chunk = vec![b'x'; 1 << 20];
        let _ = writer.write_all(head.as_bytes()).await;
        for _ in 0..64 {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    reader
}

/// Regression (review): an origin that stopped sending half-way through a segment held the
/// viewer's connection and the gate's connection to it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_half_way_is_cut_off() {
    let origin = stalling_origin(1_000_000, 1_000).await;
    let limits = Limits { origin_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let gate = gate_with_limits(proxy_config(json!({})), Some(&origin), None, limits).await;
    let entry = token(json!({ "streams": ["hls/**"] }));
    let url = gate.url(&format!("/hls/low/seg0.ts?token={entry}"));
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200, "the head arrived");
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        http_body_util::BodyExt::collect(response.into_body()),
    );
    let body = read.await.expect("the body was never cut off");
    assert!(body.is_err(), "a 1,000,000-byte body ended after 1,000 bytes without an error");
    gate.stop().await;
}

/// Regression (review): a publisher that stopped sending half-way through its upload held
/// its connection and the gate's connection to the origin for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_stops_sending_is_cut_off() {
    let origin = hls_origin().await;
    let limits = Limits { body_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let gate = gate_with_limits(proxy_config(json!({})), Some(&origin.url), None, limits).await;
    let publisher = token(json!({ "streams": ["ingest/**"], "purpose": "publish" }));
    let head =
        format!("PUT /ingest/a.ts?token={publisher} HTTP/1.1\r\nHost: gate\r\nContent-Length: 100\r\n\r\n0123456789");
    let answer = answer_to_a_stalled_upload(&gate, &head).await;
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    gate.stop().await;
}

/// Sends `head`, then `body` one byte every `pause`, and reads the gate's answer until it
/// closes the connection (at most 30 s).
async fn answer_to_a_slow_upload(gate: &Gate, head: &str, body: &[u8], pause: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for byte in body {
        tokio::time::sleep(pause).await;
        stream.write_all(&[*byte]).await.unwrap();
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer in 30 s");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Regression (review): wrapping a publisher's body to time it out hid its length, so the
/// upload reached the origin chunked, without the `Content-Length` the publisher sent. And
/// a segment's `Content-Length` passes through to the viewer.
#[tokio::test]
async fn an_upload_reaches_the_origin_with_its_length() {
    let origin = hls_origin().await;
    let gate = gate(proxy_config(json!({})), Some(&origin.url), None).await;
    let publisher = token(json!({ "streams": ["ingest/**"], "purpose": "publish" }));
    let body = "x".repeat(5_000);
    let put = send_from(
        "127.0.0.1".parse().unwrap(),
        "PUT",
        &gate.url(&format!("/ingest/a.ts?token={publisher}")),
        &[],
        &body,
    )
    .await;
    assert_eq!(put.status, 404, "the origin's answer: {}", put.text());
    let seen = origin.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((seen.method.as_str(), seen.body.len()), ("PUT", 5_000));
    assert_eq!(seen.headers.get("content-length").map(String::as_str), Some("5000"), "{:?}", seen.headers);
    assert_eq!(seen.headers.get("transfer-encoding"), None);

    let viewer = token(json!({ "streams": ["hls/**"] }));
    let segment = get(&gate.url(&format!("/hls/low/seg0.ts?token={viewer}")), &[]).await;
    assert_eq!(segment.status, 200);
    assert_eq!(segment.header("content-length"), Some(segment.body.len().to_string().as_str()));
    assert_eq!(segment.header("transfer-encoding"), None);
    gate.stop().await;
}

/// Regression (review): the origin's time to answer ran from the start of the request, so
/// an upload that took longer than `--origin-timeout` to send was cut off with a 504 while
/// it was still sending. The clock starts once the origin holds the whole request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_may_take_longer_than_the_origin_timeout() {
    let origin = hls_origin().await;
    let limits = Limits {
        origin_timeout: std::time::Duration::from_secs(1),
        body_timeout: std::time::Duration::from_secs(5),
        ..Limits::default()
    };
    let gate = gate_with_limits(proxy_config(json!({})), Some(&origin.url), None, limits).await;
    let publisher = token(json!({ "streams": ["ingest/**"], "purpose": "publish" }));
    let head = format!(
        "PUT /ingest/a.ts?token={publisher} HTTP/1.1\r\nHost: gate\r\nConnection: close\r\nContent-Length: 8\r\n\r\n"
    );
    let pause = std::time::Duration::from_millis(400);
    let answer = answer_to_a_slow_upload(&gate, &head, b"01234567", pause).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "the origin's answer after 3.2 s of upload: {answer}");
    assert_eq!(origin.seen.lock().unwrap().last().map(|s| s.body.clone()), Some(b"01234567".to_vec()));
    gate.stop().await;
}

/// Once the origin holds the whole upload, it has `--origin-timeout` to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_silent_after_an_upload_is_a_504() {
    let url = scripted_origin(Reads::All, Vec::new()).await;
    let limits = Limits { origin_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let gate = gate_with_limits(proxy_config(json!({})), Some(&url), None, limits).await;
    let publisher = token(json!({ "streams": ["ingest/**"], "purpose": "publish" }));
    let head = format!(
        "PUT /ingest/a.ts?token={publisher} HTTP/1.1\r\nHost: gate\r\nConnection: close\r\nContent-Length: 3\r\n\r\n"
    );
    let answer = answer_to_a_slow_upload(&gate, &head, b"abc", std::time::Duration::from_millis(10)).await;
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    assert!(answer.contains("origin_timeout"), "{answer}");
    gate.stop().await;
}

/// Regression (review): the origin's clock started only once the upload was all sent, and
/// the publisher's idle limit counts only while the body is asked for, so an origin that
/// stopped reading an upload half-way held both connections for ever (and, once timed out,
/// the pooled connection still held the publisher's body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_stops_reading_an_upload_is_a_504() {
    use tokio::io::AsyncReadExt;
    let url = scripted_origin(Reads::Head, Vec::new()).await;
    let gate = gate_with_limits(proxy_config(json!({})), Some(&url), None, one_second_limits()).await;
    let mut reader = huge_upload(&gate).await;
    let mut answer = [0u8; 12];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), reader.read_exact(&mut answer)).await;
    assert!(read.is_ok(), "the gate waited for the stalled origin for ever");
    let answer = String::from_utf8_lossy(&answer);
    // 504 when the stall watch sees it first; 502 when hyper asks the publisher's body for
    // a part again after its idle limit passed (the limit's timer started while hyper
    // still waited for the body): either way the gate gives up in time.
    assert!(answer == "HTTP/1.1 504" || answer == "HTTP/1.1 502", "{answer}");
    // Giving up closes the origin connection, and the publisher's is let go with it.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(15), reader.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the publisher's connection stayed open");
    gate.stop().await;
}

/// With `--admin-listen`, the admin API and `/metrics` are served on the operators' address
/// only, with connections of their own: viewers holding every connection the gate allows
/// (a flood) do not lock the operator out of revoking (review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_address_is_apart_from_the_viewers() {
    use streamgate_serve::{GateSetup, ServeOptions, Server};
    let origin = hls_origin().await;
    let options = ServeOptions {
        config: proxy_config(json!({})),
        origin: Some(origin.url.clone()),
        admin_token: Some(ADMIN_TOKEN.into()),
        metrics_token: None,
        limits: Limits { max_connections: 1, ..Limits::default() },
    };
    let setup = GateSetup::new(options).unwrap();
    let state = setup.memory_state(None).unwrap();
    let loopback = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind_apart(setup, state, loopback, Some(loopback)).await.unwrap();
    let (viewers, operators) = (server.local_addr().unwrap(), server.operator_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let from = "127.0.0.1".parse().unwrap();

    // The viewers' only connection is taken.
    let held = tokio::net::TcpStream::connect(viewers).await.unwrap();
    let admin_url = format!("http://{operators}/admin/revoke");
    let headers = [("Authorization", bearer.as_str())];
    let revoke = send_from(from, "POST", &admin_url, &headers, r#"{"jti":"x"}"#);
    let revoke = tokio::time::timeout(std::time::Duration::from_secs(10), revoke).await;
    let revoke = revoke.expect("the operator was locked out");
    assert_eq!(revoke.status, 200, "{}", revoke.text());
    let metrics = get(&format!("http://{operators}/metrics"), &[]).await;
    assert_eq!(metrics.status, 200, "open on the operators' own address");
    assert!(metrics.text().contains("streamgate_decisions_total"));
    let media = get(&format!("http://{operators}/hls/master.m3u8"), &[]).await;
    assert_eq!((media.status, media.json()["error"].as_str()), (404, Some("not_found")));
    drop(held);

    // The viewers' address no longer serves them, whatever the token.
    let on_viewers = send_from(
        from,
        "POST",
        &format!("http://{viewers}/admin/revoke"),
        &[("Authorization", &bearer)],
        r#"{"jti":"y"}"#,
    )
    .await;
    assert_eq!((on_viewers.status, on_viewers.json()["error"].as_str()), (404, Some("not_found")));
    assert_eq!(get(&format!("http://{viewers}/metrics"), &[("Authorization", &bearer)]).await.status, 404);
    // Nor in any other spelling of the admin path: none revokes the token it names.
    let body = r#"{"jti":"hostile"}"#;
    for spelling in ["/ADMIN/revoke", "//admin/revoke", "/admin%2frevoke", "/%61dmin/revoke", "/./admin/revoke"] {
        let answer = send_from(from, "POST", &format!("http://{viewers}{spelling}"), &headers, body).await;
        assert_ne!(answer.status, 200, "{spelling}: {}", answer.text());
    }
    let absolute_form = format!(
        "POST http://{operators}/admin/revoke HTTP/1.1\r\nHost: {operators}\r\nAuthorization: {bearer}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(viewers).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, absolute_form.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("no answer").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "absolute-form to the viewers' address: {answer}");
    let viewer = token(json!({ "streams": ["hls/**"], "jti": "hostile" }));
    assert_eq!(get(&format!("http://{viewers}/hls/master.m3u8?token={viewer}"), &[]).await.status, 200);
    assert_eq!(get(&format!("http://{operators}/healthz"), &[]).await.status, 200);
    let _ = stop.send(());
    done.await.unwrap().unwrap();
}

/// Regression (review): after an early answer (a 403 before the upload was all sent) the
/// stall watch was gone, so an origin that then stopped reading held the upload's
/// connection, and the publisher's, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_answers_early_then_stops_reading_lets_the_publisher_go() {
    use tokio::io::AsyncReadExt;
    let url = scripted_origin(Reads::Head, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
    let gate = gate_with_limits(proxy_config(json!({})), Some(&url), None, one_second_limits()).await;
    let mut reader = huge_upload(&gate).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), reader.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the publisher's connection stayed open: {}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 403"));
    gate.stop().await;
}

/// Regression (review): an upload's own connection sent the origin URL's whole authority
/// as `Host`, user information included (into the origin's logs), where the pooled client
/// sends the host and a port that is not the default.
#[tokio::test]
async fn an_upload_names_the_origin_host_as_other_requests_do() {
    let origin = hls_origin().await;
    let with_user = origin.url.replace("http://", "http://user:secret@");
    let gate = gate(proxy_config(json!({})), Some(&with_user), None).await;
    let publisher = token(json!({ "streams": ["ingest/**"], "purpose": "publish" }));
    let from = "127.0.0.1".parse().unwrap();
    send_from(from, "PUT", &gate.url(&format!("/ingest/a.ts?token={publisher}")), &[], "abc").await;
    let seen = origin.seen.lock().unwrap().last().cloned().unwrap();
    let expected = origin.url.trim_start_matches("http://");
    assert_eq!(seen.headers.get("host").map(String::as_str), Some(expected), "{:?}", seen.headers);
    gate.stop().await;
}
