//! Forward-auth (`/auth`) as nginx, Caddy and Traefik ask it, against the gate started from
//! the library on 127.0.0.1: every reason code, trusted and untrusted peers, garbage, and
//! the session limit under parallel starts.

mod support;

use std::net::IpAddr;

use serde_json::json;
use streamgate_core::keys::{Algorithm, Key};
use streamgate_core::schemes::jwt;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn untrusted() -> IpAddr {
    "127.0.0.2".parse().unwrap()
}

/// A gate trusting 127.0.0.1 only, keys with kid `k1`, and a default session limit.
async fn auth_gate() -> Gate {
    let config = json!({
        "keys": [{ "alg": "HS256", "secret": SECRET, "kid": "k1" }],
        "policy": { "trustedProxies": ["127.0.0.1"] }
    });
    gate(config.to_string(), None, None).await
}

/// Asks as nginx does: `X-Original-URI`, and `X-Original-Method` (GET unless `extra` names
/// one).
async fn ask(gate: &Gate, uri: &str, extra: &[(&str, &str)]) -> Answer {
    let mut headers = vec![("X-Original-URI", uri)];
    if !extra.iter().any(|(name, _)| name.eq_ignore_ascii_case("X-Original-Method")) {
        headers.push(("X-Original-Method", "GET"));
    }
    headers.extend_from_slice(extra);
    get(&gate.url("/auth"), &headers).await
}

/// Sends `head` (a request line and headers, any bytes) as it is; returns the status and
/// the body.
async fn raw(gate: &Gate, head: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    stream.write_all(head).await.unwrap();
    stream.write_all(b"Connection: close\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// What a case asks (name, URI, extra headers) and the status and reason it must get.
type Case = (&'static str, String, Vec<(&'static str, &'static str)>, u16, &'static str);

#[tokio::test]
async fn allows_with_subject_and_token_id_and_denies_with_every_reason() {
    let gate = auth_gate().await;
    let ok = token(json!({ "sub": "alice", "jti": "t-1", "streams": ["hls/**"] }));
    let allowed = ask(&gate, &format!("/hls/a.ts?token={ok}&x=1"), &[]).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(
        (allowed.header("x-streamgate-subject"), allowed.header("x-streamgate-token-id")),
        (Some("alice"), Some("t-1"))
    );
    assert_eq!(allowed.header("cache-control"), Some("no-store"));
    // Caddy and Traefik name the request in X-Forwarded-Uri / X-Forwarded-Method.
    let caddy = get(
        &gate.url("/auth"),
        &[("X-Forwarded-Uri", &format!("/hls/a.ts?token={ok}")), ("X-Forwarded-Method", "GET")],
    )
    .await;
    assert_eq!(caddy.status, 200, "{}", caddy.text());
    // The credential may come in a header instead of the query.
    let bearer = format!("Bearer {ok}");
    assert_eq!(ask(&gate, "/hls/a.ts", &[("Authorization", &bearer)]).await.status, 200);

    let other_key = sign_with(json!({ "streams": ["hls/**"] }), "another secret of thirty-two bytes", Algorithm::HS256);
    let mut unknown_kid = serde_json::Map::new();
    unknown_kid.insert("exp".into(), json!(now() + 3600));
    let unknown_kid =
        jwt::sign_json(&unknown_kid, &Key::hmac(Algorithm::HS256, SECRET.as_bytes()).unwrap().with_kid(Some("k9")))
            .unwrap();
    let hs384 = sign_with(json!({}), &"x".repeat(48), Algorithm::HS384);
    let cases: Vec<Case> = vec![
        ("no credential", "/hls/a.ts".into(), vec![], 401, "missing_token"),
        ("garbage", "/hls/a.ts?token=garbage".into(), vec![], 401, "malformed"),
        ("other key", format!("/hls/a.ts?token={other_key}"), vec![], 403, "bad_signature"),
        ("unknown kid", format!("/hls/a.ts?token={unknown_kid}"), vec![], 403, "unknown_key"),
        ("HS384 for an HS256 key", format!("/hls/a.ts?token={hs384}"), vec![], 403, "alg_not_allowed"),
        ("expired", format!("/hls/a.ts?token={}", token(json!({ "exp": now() - 3600 }))), vec![], 403, "expired"),
        (
            "not yet valid",
            format!("/hls/a.ts?token={}", token(json!({ "nbf": now() + 3600, "exp": now() + 7200 }))),
            vec![],
            403,
            "not_yet_valid",
        ),
        ("outside scope", format!("/vod/a.ts?token={ok}"), vec![], 403, "scope_mismatch"),
        ("double encoding", format!("/hls/%252e%252e/vod/a.ts?token={ok}"), vec![], 403, "scope_mismatch"),
        ("other IP", format!("/hls/a.ts?token={}", token(json!({ "ip": "203.0.113.7" }))), vec![], 403, "ip_mismatch"),
        (
            "referrer",
            format!("/hls/a.ts?token={}", token(json!({ "referrers": ["*.example.com"] }))),
            vec![("Referer", "https://pirate.test/")],
            403,
            "referrer_denied",
        ),
        (
            "user agent",
            format!("/hls/a.ts?token={}", token(json!({ "user_agents": ["VLC*"] }))),
            vec![("User-Agent", "curl/8")],
            403,
            "user_agent_denied",
        ),
        (
            "geo",
            format!("/hls/a.ts?token={}", token(json!({ "access_rules": [{ "type": "any", "action": "block" }] }))),
            vec![],
            403,
            "geo_denied",
        ),
        (
            "publish with a play token",
            format!("/hls/a.ts?token={ok}"),
            vec![("X-Original-Method", "PUT")],
            403,
            "purpose_mismatch",
        ),
        ("DELETE", format!("/hls/a.ts?token={ok}"), vec![("X-Original-Method", "DELETE")], 405, "method_not_allowed"),
    ];
    for (case, uri, headers, status, reason) in cases {
        let answer = ask(&gate, &uri, &headers).await;
        assert_eq!((answer.status, answer.reason()), (status, Some(reason)), "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], reason, "{case}: the worker's body shape");
        // Caddy and Traefik pass a denial on to the viewer: with the edge's CORS headers.
        for (name, value) in streamgate_core::gateway::CORS_HEADERS {
            assert_eq!(answer.header(name), Some(value), "{case}: {name}");
        }
    }

    // Blocked client range, named by a trusted proxy's X-Forwarded-For.
    let blocked = admin(&gate, "POST", "/admin/block", json!({ "ip": "203.0.113.0/24" })).await;
    assert_eq!(blocked.status, 200, "{}", blocked.text());
    let from_blocked = ask(&gate, &format!("/hls/a.ts?token={ok}"), &[("X-Forwarded-For", "203.0.113.9")]).await;
    assert_eq!((from_blocked.status, from_blocked.reason()), (403, Some("ip_blocked")));

    // Revoked by the token's text.
    let revoked = admin(&gate, "POST", "/admin/revoke", json!({ "token": ok })).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(revoked.json()["ids"][0], "t-1");
    let answer = ask(&gate, &format!("/hls/a.ts?token={ok}"), &[]).await;
    assert_eq!((answer.status, answer.reason()), (403, Some("revoked")));
    // A ttl of 0 would lift the revocation at once: refused, and the revocation stays.
    let zero = admin(&gate, "POST", "/admin/revoke", json!({ "token": ok, "ttl": 0 })).await;
    assert_eq!(zero.status, 400, "{}", zero.text());
    let answer = ask(&gate, &format!("/hls/a.ts?token={ok}"), &[]).await;
    assert_eq!((answer.status, answer.reason()), (403, Some("revoked")));
    let metrics = get(&gate.url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains("streamgate_decisions_total{route=\"auth\",decision=\"deny\",reason=\"revoked\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("streamgate_decisions_total{route=\"auth\",decision=\"allow\",reason=\"\"} 3"),
        "{metrics}"
    );
    gate.stop().await;
}

/// Regression (review): Caddy and Traefik pass the client's own headers to forward-auth,
/// and nginx passes the client's `X-Forwarded-Uri`; a client chose what was decided with
/// them, a byte that is not UTF-8 dropped the header that should have decided, and the
/// client IP header's first line alone was read.
#[tokio::test]
async fn a_client_never_names_the_request_that_is_decided() {
    let gate = auth_gate().await;
    let free = token(json!({ "streams": ["free/**"] }));
    let free_uri = format!("/free/x.ts?token={free}");
    let caddy = [("X-Forwarded-Uri", "/hls/a.ts"), ("X-Forwarded-Method", "GET")];
    for (case, added) in [
        ("the client's X-Original-Method through Caddy", ("X-Original-Method", "OPTIONS")),
        ("the client's X-Original-URI through Caddy", ("X-Original-URI", free_uri.as_str())),
        ("a second X-Forwarded-Uri", ("X-Forwarded-Uri", free_uri.as_str())),
    ] {
        let answer = get(&gate.url("/auth"), &[caddy[0], caddy[1], added]).await;
        assert_eq!((answer.status, answer.json()["error"].as_str()), (403, Some("ambiguous_request")), "{case}");
    }
    // nginx copies a raw byte of the request target into X-Original-URI.
    let head = format!("GET /auth HTTP/1.1\r\nHost: g\r\nX-Forwarded-Uri: {free_uri}\r\nX-Original-Method: GET\r\n");
    let (status, text) = raw(&gate, &[head.as_bytes(), b"X-Original-URI: /hls/a.ts?\xff\r\n"].concat()).await;
    assert_eq!(status, 403, "{text}");
    let (status, text) =
        raw(&gate, b"GET /auth HTTP/1.1\r\nHost: g\r\nX-Original-URI: /hls/a.ts?\xff\r\nX-Original-Method: GET\r\n")
            .await;
    assert_eq!(status, 403, "{text}");
    // Without the method, the proxy's own GET would be judged: misconfigured.
    let ok = token(json!({ "streams": ["hls/**"] }));
    let no_method = get(&gate.url("/auth"), &[("X-Original-URI", &format!("/hls/a.ts?token={ok}"))]).await;
    assert_eq!((no_method.status, no_method.json()["error"].as_str()), (500, Some("misconfigured")));

    // A blocked client hiding behind a byte that is not UTF-8 in X-Forwarded-For.
    assert_eq!(admin(&gate, "POST", "/admin/block", json!({ "ip": "203.0.113.0/24" })).await.status, 200);
    let head =
        format!("GET /auth HTTP/1.1\r\nHost: g\r\nX-Original-URI: /hls/a.ts?token={ok}\r\nX-Original-Method: GET\r\n");
    let (status, text) = raw(&gate, &[head.as_bytes(), b"X-Forwarded-For: \xff, 203.0.113.9\r\n"].concat()).await;
    assert!(status == 403 && text.contains("ip_blocked"), "{text}");
    // A proxy that adds its own X-Forwarded-For line after the client's: the last line counts.
    let bound = token(json!({ "ip": "198.51.100.7", "streams": ["hls/**"] }));
    let uri = format!("/hls/a.ts?token={bound}");
    let two_lines = ask(&gate, &uri, &[("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-For", "192.0.2.5")]).await;
    assert_eq!((two_lines.status, two_lines.reason()), (403, Some("ip_mismatch")));
    assert_eq!(ask(&gate, &uri, &[("X-Forwarded-For", "198.51.100.7")]).await.status, 200);
    gate.stop().await;
}

#[tokio::test]
async fn believes_forwarded_headers_only_from_trusted_proxies() {
    let gate = auth_gate().await;
    let bound = token(json!({ "ip": "203.0.113.7", "streams": ["hls/**"] }));
    let uri = format!("/hls/a.ts?token={bound}");
    // A trusted proxy names the client: believed.
    let trusted = ask(&gate, &uri, &[("X-Forwarded-For", "203.0.113.7")]).await;
    assert_eq!(trusted.status, 200, "{}", trusted.text());
    // The same request from an untrusted peer is refused whatever it names.
    let headers = [("X-Original-URI", uri.as_str()), ("X-Forwarded-For", "203.0.113.7")];
    let untrusted_answer = send_from(untrusted(), "GET", &gate.url("/auth"), &headers, "").await;
    assert_eq!(untrusted_answer.status, 403);
    assert_eq!(untrusted_answer.json()["error"], "untrusted_proxy");
    // A trusted proxy that names no request is misconfigured: fail closed.
    let nothing = get(&gate.url("/auth"), &[]).await;
    assert_eq!((nothing.status, nothing.json()["error"].as_str()), (500, Some("misconfigured")));
    gate.stop().await;

    // Forward-auth without trusted proxies does not start.
    let refused = streamgate_serve::GateSetup::new(streamgate_serve::ServeOptions {
        config: config(json!({})),
        ..Default::default()
    });
    assert!(refused.err().unwrap().0.contains("policy.trustedProxies"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_starts_under_a_limit_of_three_admit_exactly_three() {
    let gate = auth_gate().await;
    let limited = token(json!({ "jti": "shared", "max_sessions": 3, "streams": ["live/**"] }));
    let uri = format!("/live/index.m3u8?token={limited}");
    let starts = (0..20).map(|viewer| {
        let (url, uri) = (gate.url("/auth"), uri.clone());
        tokio::spawn(async move {
            // Twenty players: another User-Agent each, so none is a reconnect of another.
            let agent = format!("player-{viewer}");
            get(&url, &[("X-Original-URI", &uri), ("X-Original-Method", "GET"), ("User-Agent", &agent)]).await
        })
    });
    let mut admitted = Vec::new();
    let mut refused = 0;
    for (viewer, start) in starts.enumerate() {
        let answer = start.await.unwrap();
        match (answer.status, answer.reason()) {
            (200, None) => admitted.push(viewer),
            (429, Some("too_many_sessions")) => refused += 1,
            other => panic!("unexpected {other:?}: {}", answer.text()),
        }
    }
    assert_eq!((admitted.len(), refused), (3, 17));
    // An admitted viewer coming back is the same session, not a fourth.
    let agent = format!("player-{}", admitted[0]);
    assert_eq!(ask(&gate, &uri, &[("User-Agent", &agent)]).await.status, 200);
    let sessions = admin(&gate, "GET", "/admin/sessions?jti=shared", serde_json::Value::Null).await.json();
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(3), "{sessions}");
    gate.stop().await;
}

#[tokio::test]
async fn garbage_never_breaks_the_gate() {
    let gate = auth_gate().await;
    // Not HTTP at all.
    let mut stream = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    stream.write_all(b"\x00\x01\x02GARBAGE \xff\xfe\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    assert!(reply.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&reply));
    // Bytes no header may hold, where the gate reads.
    let mut stream = tokio::net::TcpStream::connect(gate.address).await.unwrap();
    stream.write_all(b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /a\xff\x01b\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    assert!(reply.starts_with(b"HTTP/1.1 4"), "{}", String::from_utf8_lossy(&reply));
    // Junk where the gate reads.
    let long = "a".repeat(60_000);
    let long_token = format!("/hls/a.ts?token={long}.{long}.{long}");
    for (uri, headers) in [
        ("/hls/a.ts?token=%ff%fe%00", vec![]),
        ("/hls/a.ts?token=....", vec![("Cookie", "streamgate=;;;=")]),
        ("%%%", vec![("Authorization", "Bearer ~~~")]),
        ("/hls/a.ts?token=e30.e30.e30", vec![("X-Original-Method", "G-T")]),
        ("/hls/a.ts?wmsAuthSign=!!!&hdnts=&md5=&expires=x", vec![]),
        (long_token.as_str(), vec![]),
        ("/~sg/%zz/hls/a.ts", vec![]),
    ] {
        let answer = ask(&gate, uri, &headers).await;
        assert!(matches!(answer.status, 401 | 403 | 405 | 431), "{uri}: {} {}", answer.status, answer.text());
    }
    assert_eq!(get(&gate.url("/healthz"), &[]).await.json()["ok"], true);
    gate.stop().await;
}
