//! Revocations and blocks survive a restart (the `--state` file), and the admin API
//! refuses what the edge refuses, with the same shapes.

mod support;

use serde_json::{json, Value};
use support::*;

fn auth_config() -> String {
    config(json!({ "policy": { "trustedProxies": ["127.0.0.1"] } }))
}

async fn ask(gate: &Gate, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("X-Original-URI", uri), ("X-Original-Method", "GET")];
    all.extend_from_slice(headers);
    get(&gate.url("/auth"), &all).await
}

#[tokio::test]
async fn revocations_and_blocks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let revoked = token(json!({ "jti": "gone" }));
    let kept = token(json!({ "jti": "kept" }));

    let first = gate(auth_config(), None, Some(file.clone())).await;
    for (path, body) in [
        ("/admin/revoke", json!({ "jti": "gone" })),
        ("/admin/block", json!({ "ip": "198.51.100.0/24", "reason": "restreaming" })),
        ("/admin/referrers/block", json!({ "host": "*.pirate.test" })),
    ] {
        let answer = admin(&first, "POST", path, body).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
    first.stop().await;

    let second = gate(auth_config(), None, Some(file.clone())).await;
    let answer = ask(&second, &format!("/a.ts?token={revoked}"), &[]).await;
    assert_eq!((answer.status, answer.reason()), (403, Some("revoked")));
    let answer = ask(&second, &format!("/a.ts?token={kept}"), &[("X-Forwarded-For", "198.51.100.20")]).await;
    assert_eq!((answer.status, answer.reason()), (403, Some("ip_blocked")));
    let answer = ask(&second, &format!("/a.ts?token={kept}"), &[("Referer", "https://www.pirate.test/")]).await;
    assert_eq!((answer.status, answer.reason()), (403, Some("referrer_denied")));
    assert_eq!(ask(&second, &format!("/a.ts?token={kept}"), &[]).await.status, 200);

    // Lifted, and the lift survives the next restart too.
    admin(&second, "POST", "/admin/unrevoke", json!({ "jti": "gone" })).await;
    let unblocked = admin(&second, "POST", "/admin/unblock", json!({ "ip": "198.51.100.0/24" })).await;
    assert_eq!(unblocked.json(), json!({ "ok": true, "ip": "198.51.100.0/24", "blocked": false, "until": null }));
    // Nothing left to lift: 404, as at the edge (review: serve said "done" and did nothing).
    let again = admin(&second, "POST", "/admin/unblock", json!({ "ip": "198.51.100.0/24" })).await;
    assert_eq!((again.status, again.json()["message"].clone()), (404, json!("198.51.100.0/24 is not blocked")));
    let unrevoked = admin(&second, "POST", "/admin/unrevoke", json!({ "jti": "gone" })).await;
    assert_eq!((unrevoked.status, unrevoked.json()["lifted"].clone()), (200, json!(false)));
    // Inside a wider block (a range, a `*.` wildcard): 404 naming the block to lift.
    for (list, wide, inside, message) in [
        (
            "",
            json!({ "ip": "203.0.113.0/24" }),
            json!({ "ip": "203.0.113.9" }),
            "203.0.113.9 has no block of its own; 203.0.113.0/24 blocks it: unblock that",
        ),
        (
            "referrers/",
            json!({ "host": "*.wild.test" }),
            json!({ "host": "a.wild.test" }),
            "a.wild.test has no block of its own; *.wild.test blocks it: unblock that",
        ),
    ] {
        admin(&second, "POST", &format!("/admin/{list}block"), wide.clone()).await;
        let refused = admin(&second, "POST", &format!("/admin/{list}unblock"), inside).await;
        assert_eq!((refused.status, refused.json()["message"].clone()), (404, json!(message)));
        admin(&second, "POST", &format!("/admin/{list}unblock"), wide).await;
    }
    second.stop().await;
    let third = gate(auth_config(), None, Some(file.clone())).await;
    assert_eq!(
        ask(&third, &format!("/a.ts?token={revoked}"), &[("X-Forwarded-For", "198.51.100.20")]).await.status,
        200
    );
    third.stop().await;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["blocks"], json!([]));
    assert_eq!(saved["referrers"], json!([{ "host": "*.pirate.test" }]));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("state.json")], "no temporary file left behind");
}

#[tokio::test]
async fn the_admin_api_refuses_as_the_edge_does() {
    let gate = gate(auth_config(), None, None).await;
    let localhost = "127.0.0.1".parse().unwrap();
    let no_token = send_from(localhost, "POST", &gate.url("/admin/revoke"), &[], "{\"jti\": \"x\"}").await;
    assert_eq!((no_token.status, no_token.json()["error"].as_str()), (401, Some("unauthorized")));
    let wrong = send_from(localhost, "GET", &gate.url("/admin/usage"), &[("Authorization", "Bearer nope")], "").await;
    assert_eq!(wrong.status, 401);

    let refusals = [
        ("/admin/revoke", json!({ "token": "https://h.test/a.m3u8?x=1" }), 400, "invalid_input"),
        ("/admin/revoke", json!({ "sub": "alone" }), 400, "invalid_input"),
        ("/admin/revoke", json!({ "jti": "x", "extra": 1 }), 400, "invalid_input"),
        ("/admin/block", json!({ "ip": "0.0.0.0/0" }), 400, "invalid_input"),
        ("/admin/block", json!({ "ip": "not an address" }), 400, "invalid_input"),
        ("/admin/nowhere", json!({}), 404, "not_found"),
    ];
    for (path, body, status, code) in refusals {
        let answer = admin(&gate, "POST", path, body.clone()).await;
        assert_eq!((answer.status, answer.json()["error"].as_str()), (status, Some(code)), "{path} {body}");
        assert!(answer.json()["message"].is_string());
    }
    let garbage = send_from(
        localhost,
        "POST",
        &gate.url("/admin/block"),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        "{not json",
    )
    .await;
    assert_eq!(garbage.status, 400);
    let forced = admin(&gate, "POST", "/admin/block", json!({ "ip": "0.0.0.0/0", "force": true, "ttl": 60 })).await;
    assert_eq!(forced.status, 200, "{}", forced.text());
    assert!(forced.json()["until"].is_i64());
    let sessions = admin(&gate, "GET", "/admin/sessions", Value::Null).await;
    assert_eq!((sessions.status, sessions.json()["error"].as_str()), (400, Some("invalid_input")));
    gate.stop().await;

    // A short admin token does not start.
    let short = streamgate_serve::GateSetup::new(streamgate_serve::ServeOptions {
        config: auth_config(),
        admin_token: Some("short".into()),
        ..Default::default()
    });
    assert!(short.err().unwrap().0.contains("at least 32 bytes"));
    let short = streamgate_serve::GateSetup::new(streamgate_serve::ServeOptions {
        config: auth_config(),
        metrics_token: Some("short".into()),
        ..Default::default()
    });
    assert!(short.err().unwrap().0.contains("STREAMGATE_METRICS_TOKEN must be at least 32 bytes"));
    let same = streamgate_serve::GateSetup::new(streamgate_serve::ServeOptions {
        config: auth_config(),
        admin_token: Some(ADMIN_TOKEN.into()),
        metrics_token: Some(format!(" {ADMIN_TOKEN}\n")),
        ..Default::default()
    });
    assert!(same.err().unwrap().0.contains("must differ"));
    // A write timeout past the clock's range would panic the first stalled connection (review).
    let endless = streamgate_serve::GateSetup::new(streamgate_serve::ServeOptions {
        config: auth_config(),
        limits: streamgate_serve::Limits { send_timeout: std::time::Duration::MAX, ..Default::default() },
        ..Default::default()
    });
    assert!(endless.err().unwrap().0.contains("at most a day"));
}
