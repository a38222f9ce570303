//! Proxy mode (`--origin`): the whole gate in front of a static origin on 127.0.0.1. HLS
//! master and media playlists rewritten with session credentials, segments streamed through
//! byte for byte, credentials never reaching the origin, session limits, usage export, and
//! a revocation ending open sessions.

mod support;

use serde_json::{json, Value};
use streamgate_core::detection::UsageEvent;
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
