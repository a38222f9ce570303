//! `streamgate-simulate`: writes a day of generated usage events (Token Guardian's traffic
//! generator, `streamgate_core::detection::simulate`) as JSON Lines or as a combined access
//! log whose requests carry an (unsigned, for scanning only) JWT naming each token.
//!
//! ```text
//! streamgate-simulate --viewers 20000 --seed 7 --format jsonl > day.jsonl
//! streamgate-simulate --format combined --planted planted.json > access.log
//! ```

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use serde_json::json;
use streamgate_core::detection::simulate::{self, Scenario, SplitMix64};
use streamgate_core::detection::UsageEvent;
use streamgate_core::encoding::b64_url;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    Jsonl,
    Combined,
}

/// Write generated usage events for benchmarks and tests.
#[derive(Parser, Debug)]
#[command(name = "streamgate-simulate", version, about)]
struct Args {
    /// Ordinary viewers (one token each).
    #[arg(long, default_value_t = 2000)]
    viewers: usize,
    /// Popular tokens shared by design.
    #[arg(long, default_value_t = 3)]
    popular: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Leave out the planted misuse.
    #[arg(long)]
    no_misuse: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Write the planted tokens and their expected indicators here (JSON).
    #[arg(long)]
    planted: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let scenario = Scenario {
        viewers: args.viewers,
        popular_tokens: args.popular,
        plant_misuse: !args.no_misuse,
        ..Scenario::default()
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut failed: Option<std::io::Error> = None;
    let mut jwts: HashMap<String, String> = HashMap::new();
    let planted = simulate::generate(&mut SplitMix64::new(args.seed), scenario, &mut |event| {
        if failed.is_some() {
            return;
        }
        let written = match args.format {
            Format::Jsonl => serde_json::to_writer(&mut out, &event).map_err(std::io::Error::other),
            Format::Combined => write_log_line(&mut out, &event, &mut jwts),
        };
        if let Err(e) = written.and_then(|()| out.write_all(b"\n")) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed.or_else(|| out.flush().err()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("streamgate-simulate: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = args.planted {
        let list: Vec<_> = planted
            .iter()
            .map(|p| json!({"token": p.token, "misuse": format!("{:?}", p.misuse), "expected": p.expected.as_str()}))
            .collect();
        if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&list).unwrap_or_default()) {
            eprintln!("streamgate-simulate: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// One combined-log line for a segment request of the event's stream.
fn write_log_line(out: &mut impl Write, event: &UsageEvent, jwts: &mut HashMap<String, String>) -> std::io::Result<()> {
    let jwt = jwts.entry(event.token.clone()).or_insert_with(|| {
        let header = b64_url(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({"jti": event.token, "sub": event.sub, "max_sessions": event.max_sessions});
        format!("{header}.{}.{}", b64_url(claims.to_string().as_bytes()), b64_url(b"unsigned-simulation"))
    });
    let stream = event.stream.as_deref().unwrap_or("/live/x/index.m3u8");
    let directory = stream.rsplit_once('/').map_or(stream, |(dir, _)| dir);
    write!(
        out,
        "{} - - [{}] \"GET {directory}/seg-{}.ts?token={jwt} HTTP/1.1\" 200 {} \"{}\" \"{}\"",
        event.ip.as_deref().unwrap_or("-"),
        clf_time(event.at),
        event.at / 6,
        event.bytes.unwrap_or(0),
        event.referer.as_deref().unwrap_or("-"),
        event.user_agent.as_deref().unwrap_or("-"),
    )
}

/// Unix seconds as `01/Jan/2026:00:00:00 +0000`.
fn clf_time(at: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, seconds) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = MONTHS.get(usize::try_from(month - 1).unwrap_or(0)).copied().unwrap_or("Jan");
    format!("{day:02}/{name}/{year}:{:02}:{:02}:{:02} +0000", seconds / 3600, seconds % 3600 / 60, seconds % 60)
}
