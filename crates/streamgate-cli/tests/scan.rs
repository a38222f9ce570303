//! `streamgate scan` run as an operator would, on small generated files of both formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(bin: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(bytes) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    println!("$ {bin} {}\nexit {}\n--- stdout\n{}--- stderr\n{}", args.join(" "), run.code, run.stdout, run.stderr);
    run
}

fn scan(args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_streamgate"), &[&["scan"], args].concat(), None)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamgate-scan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Generated traffic written by `streamgate-simulate`.
fn generated(dir: &Path, name: &str, args: &[&str]) -> String {
    let out = run(env!("CARGO_BIN_EXE_streamgate-simulate"), args, None);
    assert_eq!(out.code, 0);
    let path = dir.join(name);
    std::fs::write(&path, out.stdout).unwrap();
    path.to_str().unwrap().to_owned()
}

fn json_rows(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|line| serde_json::from_str(line).expect("each line is one JSON object")).collect()
}

#[test]
fn jsonl_findings_exit_1_with_one_row_per_line() {
    let dir = temp_dir("jsonl");
    let file = generated(&dir, "day.jsonl", &["--viewers", "150", "--seed", "3"]);
    let out = scan(&["--input", &file, "--format", "json", "--allowed-referrer", "www.example.com"]);
    assert_eq!(out.code, 1);
    let rows = json_rows(&out.stdout);
    let tokens: Vec<&str> = rows.iter().map(|r| r["token"].as_str().unwrap()).collect();
    for planted in
        ["planted-shared", "planted-cloud-relay", "planted-embed", "planted-restream", "planted-four-devices"]
    {
        assert!(tokens.contains(&planted), "{planted} missing from {tokens:?}");
    }
    let row = &rows[0];
    for key in ["token", "score", "severity", "indicators", "ips", "sessions", "peak_concurrency", "countries"] {
        assert!(row.get(key).is_some(), "{key}");
    }
    for key in ["providers", "referrers", "playback_seconds", "bytes", "streams", "first_seen", "last_seen"] {
        assert!(row.get(key).is_some(), "{key}");
    }
    let scores: Vec<u64> = rows.iter().map(|r| r["score"].as_u64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by score: {scores:?}");
}

#[test]
fn combined_logs_name_tokens_from_their_credentials() {
    let dir = temp_dir("combined");
    let file = generated(&dir, "access.log", &["--viewers", "100", "--format", "combined"]);
    let out = scan(&["--input", &file, "--format", "csv", "--allowed-referrer", "*.example.com"]);
    assert_eq!(out.code, 1);
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "token,sub,score,severity,indicators,ips,sessions,peak_concurrency,countries,providers,referrers,\
         playback_seconds,bytes,streams,first_seen,last_seen"
    );
    let restream = lines.find(|l| l.starts_with("planted-restream,")).expect("restream found in the log");
    assert!(restream.contains("hosting_network"), "{restream}");
}

#[test]
fn ordinary_traffic_exits_0_and_table_is_the_default() {
    let dir = temp_dir("clean");
    let file = generated(&dir, "clean.jsonl", &["--viewers", "60", "--popular", "1", "--no-misuse"]);
    let out = scan(&["--input", &file, "--allowed-referrer", "www.example.com"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("SCORE  SEVERITY  TOKEN"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 1, "header only");
}

#[test]
fn malformed_lines_are_counted_reported_and_skipped() {
    let dir = temp_dir("malformed");
    let file = generated(&dir, "day.jsonl", &["--viewers", "5", "--popular", "0", "--no-misuse"]);
    let mut text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "{not json");
    lines.insert(5, r#"{"at": "yesterday", "sid": "x"}"#);
    text = lines.join("\n");
    std::fs::write(&file, &text).unwrap();
    let out = scan(&["--input", &file, "--format", "json", "--min-severity", "low", "--stats"]);
    assert!(out.code == 0 || out.code == 1);
    assert!(out.stderr.contains("skipped 2 malformed line(s)"), "{}", out.stderr);
    assert!(out.stderr.contains("day.jsonl:3") && out.stderr.contains("day.jsonl:6"), "{}", out.stderr);
}

#[test]
fn standard_input_and_windows() {
    let dir = temp_dir("window");
    let file = generated(&dir, "day.jsonl", &["--viewers", "40"]);
    let bytes = std::fs::read(&file).unwrap();
    let all =
        run(env!("CARGO_BIN_EXE_streamgate"), &["scan", "--input", "-", "--format", "json", "--stats"], Some(&bytes));
    assert_eq!(all.code, 1);
    assert!(all.stderr.contains("(0 outside the window"), "{}", all.stderr);
    // The last 3 hours before the newest event leave most of the day out.
    let last = run(
        env!("CARGO_BIN_EXE_streamgate"),
        &["scan", "--input", "-", "--window", "3h", "--format", "json", "--stats"],
        Some(&bytes),
    );
    assert!(!last.stderr.contains("(0 outside the window"), "{}", last.stderr);
    let from = scan(&["--input", &file, "--from", "2026-01-01T20:00:00Z", "--to", "1767312000", "--stats"]);
    assert!(!from.stderr.contains("(0 outside the window"), "{}", from.stderr);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(scan(&[]).code, 2, "--input is required");
    assert_eq!(scan(&["--input", "x", "--format", "xml"]).code, 2);
    assert_eq!(scan(&["--input", "/nonexistent/file"]).code, 2);
    let dir = temp_dir("usage");
    let file = generated(&dir, "d.jsonl", &["--viewers", "2", "--no-misuse", "--popular", "0"]);
    assert_eq!(scan(&["--input", &file, "--window", "3 weeks"]).code, 2);
    assert_eq!(scan(&["--input", &file, "--window", "3h", "--from", "0"]).code, 2);
    assert_eq!(scan(&["--input", &file, "--hosting-asns", "/nonexistent"]).code, 2);
    let bad = dir.join("bad-asns.txt");
    std::fs::write(&bad, "AS123\nnot an asn\n").unwrap();
    let out = scan(&["--input", &file, "--hosting-asns", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
}

#[test]
fn operator_hosting_lists_replace_the_shipped_ones() {
    let dir = temp_dir("lists");
    let file = generated(&dir, "day.jsonl", &["--viewers", "30"]);
    let mine = dir.join("asns.txt");
    std::fs::write(&mine, "AS64500 # our own\n").unwrap();
    let args = ["--input", &file, "--format", "json", "--hosting-asns", mine.to_str().unwrap()];
    let out = scan(&args);
    let rows = json_rows(&out.stdout);
    let relay = rows.iter().find(|r| r["token"] == "planted-forged-relay");
    assert!(relay.is_none(), "OVH is not hosting with the shipped list replaced");
    let out = scan(&[&args[..], &["--hosting-asns", "shipped"]].concat());
    assert!(json_rows(&out.stdout).iter().any(|r| r["token"] == "planted-forged-relay"));
}

/// The input is cut into blocks parsed on several threads; the output must not depend on
/// how: the same bytes with one thread, and with several on blocks of a few lines (a
/// line cut across blocks, malformed lines numbered across them).
#[test]
fn threads_and_block_sizes_do_not_change_the_output() {
    let dir = temp_dir("parallel");
    let jsonl = generated(&dir, "day.jsonl", &["--viewers", "40", "--popular", "0", "--no-misuse", "--seed", "11"]);
    let mut text = std::fs::read_to_string(&jsonl).unwrap();
    let middle = text[..text.len() / 2].rfind('\n').unwrap() + 1;
    text.insert_str(middle, "{not json\n");
    text.push_str("{\"at\": 1, \"sid\": \"no newline at the end\"");
    std::fs::write(&jsonl, &text).unwrap();
    let (first, last) = (text[..middle].lines().count() + 1, text.lines().count());
    let combined =
        generated(&dir, "access.log", &["--viewers", "40", "--popular", "0", "--no-misuse", "--format", "combined"]);
    for file in [&jsonl, &combined] {
        for format in ["json", "csv", "table"] {
            let base = ["--input", file.as_str(), "--format", format, "--min-severity", "low"];
            let one = scan(&[&base[..], &["--threads", "1"]].concat());
            assert!(one.code == 1, "findings at low severity: {}", one.stderr);
            if file == &jsonl {
                let at = format!("skipped 2 malformed line(s), first at {file}:{first}, {file}:{last}");
                assert!(one.stderr.contains(&at), "{}", one.stderr);
            }
            for parallel in [["--threads", "2", "--block-size", "65536"], ["--threads", "3", "--block-size", "1000"]] {
                let many = scan(&[&base[..], &parallel[..]].concat());
                assert_eq!((many.code, &many.stderr), (one.code, &one.stderr));
                assert!(many.stdout == one.stdout, "{parallel:?} changed the {format} output of {file}");
            }
        }
    }
}
