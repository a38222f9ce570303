//! Runs the real `streamgate serve` binary as an operator would: it reads the configuration
//! file, listens, logs JSON lines on standard error (every denial with its reason), exports
//! usage that `streamgate scan` reads, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

const SECRET: &str = "cli-serve-secret-of-thirty-two-bytes";
const ADMIN_TOKEN: &str = "cli-serve-admin-token-of-32-bytes-or-more";

/// A raw HTTP/1.1 exchange: the status and the body.
fn http(address: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    println!("{request}\n--> {answer}");
    (status, body)
}

fn sign(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_streamgate")).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

struct Serving {
    child: Child,
    address: String,
    log: BufReader<std::process::ChildStderr>,
}

fn start(dir: &std::path::Path) -> Serving {
    let config = dir.join("streamgate.json");
    let document = json!({
        "keys": [{ "alg": "HS256", "secret": SECRET }],
        "policy": { "trustedProxies": ["127.0.0.1"] }
    });
    std::fs::write(&config, document.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--state", dir.join("state.json").to_str().unwrap()])
        .env("STREAMGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    log.read_line(&mut line).unwrap();
    let listening: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(listening["message"], "listening");
    let address = listening["address"].as_str().unwrap().to_owned();
    Serving { child, address, log }
}

#[test]
fn serves_logs_denials_exports_usage_for_scan_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("streamgate-cli-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut serving = start(&dir);
    let address = serving.address.clone();
    let token = sign(&["sign", "jwt", "--key", SECRET, "--alg", "HS256", "--stream", "live/**", "--jti", "cli-1"]);

    let ask = |uri: &str| {
        http(
            &address,
            &format!("GET /auth HTTP/1.1\r\nHost: gate\r\nX-Original-URI: {uri}\r\nX-Original-Method: GET\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(ask(&format!("/live/index.m3u8?token={token}")).0, 200);
    assert_eq!(ask(&format!("/vod/index.m3u8?token={token}")).0, 403);
    let (status, usage) = http(
        &address,
        &format!("GET /admin/usage?window=1h HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);
    let export = dir.join("usage.jsonl");
    std::fs::write(&export, &usage).unwrap();
    let scan = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["scan", "--input", export.to_str().unwrap(), "--format", "json", "--stats"])
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&scan.stderr);
    assert_eq!(scan.status.code(), Some(0), "scan read the export and found nothing: {stats}");
    assert!(stats.contains("1 lines, 1 events (0 outside the window, 0 without a token), 1 tokens"), "{stats}");

    let stopped = Command::new("kill").args(["-TERM", &serving.child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let status = serving.child.wait().unwrap();
    let mut rest = String::new();
    serving.log.read_to_string(&mut rest).unwrap();
    println!("{rest}");
    assert_eq!(status.code(), Some(0), "a clean shutdown");
    let lines: Vec<Value> = rest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let denial = lines.iter().find(|l| l["message"] == "denied").expect("a denial log line");
    assert_eq!(denial["reason"], "scope_mismatch");
    assert_eq!(denial["path"], "/vod/index.m3u8", "the path, never the query with its credential");
    assert_eq!((denial["client"].as_str(), denial["token_id"].as_str()), (Some("127.0.0.1"), Some("cli-1")));
    assert!(!rest.contains(&token), "no credential in the log");
    assert_eq!(lines.last().map(|l| l["message"].clone()), Some(json!("stopped")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_to_start_with_a_bad_configuration_and_names_the_member() {
    let dir = std::env::temp_dir().join(format!("streamgate-cli-serve-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.json");
    std::fs::write(&config, r#"{"keys": [{"alg": "HS256", "secret": "short"}], "sessions": {"tll": 3}}"#).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tll"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
