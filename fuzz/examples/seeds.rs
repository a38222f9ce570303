//! Writes the seed corpora under `corpus/<target>/`: valid credentials of every scheme,
//! signed with the test keys the targets configure, hostile paths, and real manifests.
//! Run from `fuzz/`: `cargo run --example seeds`. Existing files of the same name are
//! overwritten; the fuzzer's own finds (named by their hash) are left alone.

use std::fs;
use std::path::Path;

use serde_json::json;
use streamgate_core::claims::{NumericDate, PlaybackClaims};
use streamgate_core::grant::{Grant, Scope};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm, EdgeAuthRequest, EscapeStyle};
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest};
use streamgate_core::schemes::{jwt, SchemeKind};
use streamgate_fuzz::{jwt_keys, secure_link_scheme, session_scheme, EDGE_KEY, NOW, WMS_KEY};

fn write(target: &str, name: &str, content: impl AsRef<[u8]>) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    fs::write(dir.join(name), content).expect("seed written");
}

const HOSTILE_PATHS: [&str; 16] = [
    "/posters/%252e%252e/hls/master.m3u8",
    "/posters/%2e%2e/hls/master.m3u8",
    "/posters/../hls/master.m3u8",
    "/hls/%2fetc%2fpasswd",
    "/hls\\..\\private/x.m3u8",
    "/hls/;jsessionid=1/x.ts",
    "/hls/%3f/x.ts",
    "//evil.example/x",
    "/hls/%c3%bc/seg%20001.ts",
    "/hls/%ff/x",
    "/a/./b/../../..",
    "/live/match-1/index.m3u8",
    "/%09/x",
    "/hls/%25/x",
    "/hls/x.ts#frag",
    "",
];

fn main() {
    let ip = "192.0.2.1";
    let path = "/live/match-1/index.m3u8";

    // JWT: every key, a full set of claims, an expired token, and `alg: none`.
    let claims = PlaybackClaims {
        sub: Some("viewer-1".into()),
        jti: Some("jti-1".into()),
        exp: Some(NumericDate(NOW + 3_600)),
        nbf: Some(NumericDate(NOW - 60)),
        streams: Some(vec!["live/match-*".into(), "vod/**".into()]),
        ip: IpRange::parse("192.0.2.0/24").ok(),
        max_sessions: Some(2),
        referrers: Some(vec!["*.example.com".into()]),
        allow_no_referrer: Some(true),
        user_agents: Some(vec!["*hls.js*".into()]),
        ..Default::default()
    };
    for key in jwt_keys() {
        let token = jwt::sign(&claims, key).expect("signs");
        write("jwt", &format!("valid-{}", key.alg()), &token);
        write("unverified", &format!("jwt-url-{}", key.alg()), format!("https://gate.example.com{path}?token={token}"));
    }
    let expired = PlaybackClaims { exp: Some(NumericDate(NOW - 10)), ..Default::default() };
    write("jwt", "expired-HS256", jwt::sign(&expired, &jwt_keys()[0]).expect("signs"));
    write("jwt", "alg-none", "eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.");
    let sign_claims = json!({"exp": NOW + 60, "streams": ["live/*"], "ip": "10.0.0.0/8", "purpose": "publish",
        "access_rules": [{"type": "ip.geoip.country", "action": "block", "country": ["FR"]}, {"type": "any", "action": "allow"}],
        "aud": ["a", "b"], "custom": {"x": [1, 2.5, null]}});
    for index in 0..6u8 {
        let mut seed = b"!sign ".to_vec();
        seed.push(index);
        seed.extend(sign_claims.to_string().as_bytes());
        write("jwt", &format!("sign-{index}"), seed);
    }

    // WMSAuth: with and without a signed stream, both date styles.
    for (name, stream, style) in
        [("stream-php", Some("live/match-1"), DateStyle::Php), ("nostream-padded", None, DateStyle::ZeroPadded)]
    {
        let request = WmsAuthRequest { ip, server_time: NOW - 30, valid_minutes: 20, stream, date_style: style };
        let sign = wmsauth::sign(WMS_KEY, &request).expect("signs");
        write("wmsauth", name, format!("{sign}\n{path}\n{ip}"));
        write("unverified", &format!("wmsauth-{name}"), format!("{path}?wmsAuthSign={sign}"));
    }
    write(
        "wmsauth",
        "sign-stream",
        format!("!sign\n{ip}\n{path}\nserver_time=11/14/2023 10:13:20 PM&hash_value=@&validminutes=20&strm_len=12"),
    );
    write(
        "wmsauth",
        "sign-padded",
        "!sign\n2001:db8::1\n/vod/a.mp4\nserver_time=01/02/2024 01:02:03 AM&hash_value=@&validminutes=5",
    );

    // EdgeAuth: an ACL token with every field, a URL token per escape style.
    let acl = EdgeAuthRequest {
        acl: vec!["/live/*".into(), "/vod/*".into()],
        ip: Some(ip.into()),
        start: Some(NOW - 60),
        expires: NOW + 600,
        id: Some("session 1".into()),
        data: Some("a=1,b=2".into()),
        ..Default::default()
    };
    let token = edgeauth::sign(EDGE_KEY, EdgeAlgorithm::Sha256, &acl).expect("signs");
    write("edgeauth", "acl", format!("{token}\n{path}\n{ip}"));
    write("unverified", "edgeauth-acl", format!("https://gate.example.com{path}?hdnts={token}"));
    for (name, escape) in
        [("url-none", EscapeStyle::None), ("url-python", EscapeStyle::Python), ("url-node", EscapeStyle::Node)]
    {
        let url =
            EdgeAuthRequest { url: Some("/vod/a b(1).mp4".into()), expires: NOW + 600, escape, ..Default::default() };
        let token = edgeauth::sign(EDGE_KEY, EdgeAlgorithm::Sha256, &url).expect("signs");
        write("edgeauth", name, format!("{token}\n/vod/a%20b(1).mp4\n{ip}"));
    }
    write(
        "edgeauth",
        "sign-acl",
        format!("!sign\n{path}\n{ip}\nip=192.0.2.0/24~st={}~exp={}~acl=/live/*!/vod/*~id=x%20y", NOW - 1, NOW + 60),
    );
    write("edgeauth", "sign-url", format!("!sign\n{path}\n{ip}\nexp={}~data=d", NOW + 60));

    // secure_link: the default expression, and others.
    let scheme = secure_link_scheme();
    let md5 = scheme.sign(path, ip.parse().ok(), Some(NOW + 600)).expect("signs");
    write("secure_link", "valid", format!("{md5},{}\n{path}\n{ip}\n", NOW + 600));
    write("unverified", "secure-link", format!("{path}?md5={md5}&expires={}", NOW + 600));
    write(
        "secure_link",
        "sign-default",
        format!("!sign\n{path}\n{ip}\n{}\n$secure_link_expires$uri$remote_addr $key", NOW + 60),
    );
    write("secure_link", "sign-braced", format!("!sign\n{path}\n\n\n${{uri}}-${{key}}"));

    // Session credentials: issued from a grant with every restriction.
    let mut grant = Grant::new(SchemeKind::Jwt, "entry", "{}".into());
    grant.token_id = Some("jti-1".into());
    grant.subject = Some("viewer-1".into());
    grant.scope = Scope::Streams(vec!["live/match-*".into()]);
    grant.ip_binding = IpRange::parse("192.0.2.0/24").ok();
    grant.referrers = vec!["*.example.com".into()];
    grant.user_agents = vec!["*".into()];
    grant.max_sessions = Some(2);
    grant.validity.expires_at = Some(NOW + 600);
    let session = session_scheme().issue(&grant, "sid-1", path, ip.parse().ok(), NOW, Some(60)).expect("issues");
    write("session", "valid", format!("{session}\n{path}\n{ip}"));
    write("unverified", "session", format!("{path}?sgs={session}&_HLS_msn=3"));
    let payload = json!({"key": "sub:v", "sid": "s", "fp": "ab", "scope": {"acl": ["/live/*"]}, "ip": "192.0.2.0/24",
        "net": "192.0.2.0/24", "max": 1, "refs": ["x.example"], "nr": true, "uas": ["*"],
        "rules": [{"type": "ip.src", "action": "allow", "ip": ["192.0.2.0/24"]}], "pur": "publish",
        "span": {"started": NOW - 10, "ends": NOW + 100}, "exp": NOW + 50});
    write("session", "sign-full", format!("!sign\n{path}\n{ip}\n{payload}"));

    // Paths, with a query to strip.
    for (i, raw) in HOSTILE_PATHS.iter().enumerate() {
        write("path", &format!("hostile-{i:02}"), format!("{raw}\ntoken=x&_HLS_msn=1&md5=a&Token=b&tok%65n=c"));
    }

    // Manifests: the core's fixtures and the demo stream.
    for entry in fs::read_dir("../crates/streamgate-core/tests/fixtures/manifests").expect("fixtures") {
        let entry = entry.expect("fixture");
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = if name.ends_with(".mpd") { "dash" } else { "hls" };
        write(target, &name, fs::read(entry.path()).expect("fixture read"));
    }
    write("hls", "demo_master.m3u8", fs::read("../demo/origin/hls/master.m3u8").expect("demo master"));
    write("dash", "demo_manifest.mpd", fs::read("../demo/origin/dash/manifest.mpd").expect("demo MPD"));

    // Configuration: every key kind and a full policy, with a request context.
    let config = json!({
        "keys": [
            {"alg": "HS256", "secret": "s3cret", "kid": "a"},
            {"alg": "HS512", "secretBase64url": "c2VjcmV0"},
            {"jwk": jwt_keys()[4].to_jwk(false)},
            {"keys": [jwt_keys()[5].to_jwk(false)]},
            {"pem": jwt_keys()[3].public_key().and_then(|k| k.to_pem()).unwrap_or_default(), "alg": "RS256"},
            {"scheme": "wmsauth", "secret": "k", "tolerance": 60, "ipBound": false},
            {"scheme": "edgeauth", "key": "abcd", "algorithm": "sha1", "salt": "s", "leeway": 5},
            {"scheme": "secure-link", "secret": "s", "expression": "$secure_link_expires$uri $key"}
        ],
        "jwt": {"leeway": 5, "issuer": "iss", "audience": "aud", "requireExp": false},
        "policy": {"trustedProxies": ["10.0.0.0/8"], "ipBypass": ["192.0.2.0/24"], "ipv4BindingPrefix": 24,
            "referrers": {"allow": ["*.example.com"], "deny": ["bad.example.com"], "allowMissing": false},
            "userAgents": {"allow": ["*"], "deny": ["curl*"]},
            "accessRules": [{"type": "ip.geoip.country", "action": "block", "country": ["FR"]}],
            "defaultMaxSessions": 3, "publicPaths": ["posters"]}
    });
    let context = json!({"path": "/posters/%252e%252e/hls/master.m3u8", "ip": "10.0.0.1", "forwardedFor": "192.0.2.9, 10.0.0.2",
        "referer": "https://www.example.com/", "userAgent": "hls.js", "country": "DE", "asn": 64500, "purpose": "play",
        "sessionId": "s", "startsSession": true});
    write("config", "full", format!("{config}\n{context}"));
    write("config", "minimal", "{\"keys\": [{\"alg\": \"HS256\", \"secret\": \"x\"}]}\n{\"path\": \"/a\"}");
    println!("seeds written under corpus/");
}
