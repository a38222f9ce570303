//! `streamgate scan`: usage events or access logs in, Token Guardian findings out.
//!
//! Speed: inputs are read in large blocks (8 MiB), cut at the last line break, and the
//! blocks are parsed on every core at once (`std::thread::scope`), each worker folding
//! events into its own `Aggregator`; the rollups merge exactly at the end. `memchr` finds
//! line breaks; JSON Lines take a fast path for the gate's flat export format
//! ([`fastjson`]) and serde_json (borrowing `&str`) for everything else. No memory map: that needs `unsafe`, and large reads already run at disk
//! speed.

mod fastjson;
mod output;
mod parse;

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::Instant;

use streamgate_core::detection::{
    Aggregator, Detector, DetectorConfig, EventView, NetworkClass, NetworkTable, Timing, Window,
};

use crate::cli::{LogFormat, ScanArgs};
use crate::commands::Outcome;
use parse::{LogOutcome, Names};

const BLOCK: usize = 8 << 20;
/// How many malformed lines are reported by number.
const REPORTED_MALFORMED: usize = 5;

type Result<T> = std::result::Result<T, String>;

/// One input: a file, or standard input read into memory.
enum Source {
    File(PathBuf),
    Memory(String, Vec<u8>),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Memory(name, _) => name.clone(),
        }
    }
    fn open(&self) -> Result<(Box<dyn Read + '_>, Option<u64>)> {
        match self {
            Source::File(path) => {
                let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let size = file.metadata().ok().map(|m| m.len());
                Ok((Box::new(file), size))
            }
            Source::Memory(_, bytes) => Ok((Box::new(bytes.as_slice()), Some(bytes.len() as u64))),
        }
    }
}

/// What a pass over the inputs found.
#[derive(Default)]
struct Tally {
    lines: u64,
    events: u64,
    outside_window: u64,
    no_token: u64,
    malformed: u64,
    /// (source, line number), the first few.
    malformed_at: Vec<(usize, u64)>,
    newest: Option<i64>,
    bytes: u64,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.lines += other.lines;
        self.events += other.events;
        self.outside_window += other.outside_window;
        self.no_token += other.no_token;
        self.malformed += other.malformed;
        self.malformed_at.extend(other.malformed_at);
        self.malformed_at.sort_unstable();
        self.malformed_at.truncate(REPORTED_MALFORMED);
        self.newest = self.newest.max(other.newest);
        self.bytes += other.bytes;
    }
}

struct Block {
    source: usize,
    format: LogFormat,
    first_line: u64,
    bytes: Vec<u8>,
}

/// Runs `streamgate scan`.
pub fn scan(args: ScanArgs) -> Result<Outcome> {
    let config = match &args.config {
        Some(path) => DetectorConfig::from_json(&read_text(path)?).map_err(|e| e.to_string())?,
        None => DetectorConfig::default(),
    };
    let config = args.thresholds.apply(config, &args.allowed_referrers)?;
    let table = network_table(&args.hosting_asns, &args.hosting_cidrs)?;
    let detector = Detector::new(config, &table).map_err(|e| e.to_string())?;
    let timing = detector.config().timing;

    let mut sources = Vec::new();
    for input in &args.inputs {
        if input == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("standard input: {e}"))?;
            sources.push(Source::Memory("<stdin>".into(), bytes));
        } else {
            sources.push(Source::File(PathBuf::from(input)));
        }
    }
    let window = match (args.window.as_deref(), args.from.as_deref(), args.to.as_deref()) {
        (Some(span), None, None) => {
            let seconds = parse_duration(span)?;
            // The newest event first: one pass that only reads times.
            let (_, tally) = run(&sources, args.log_format, Window::all(), timing, &table, true, false)?;
            let newest = tally.newest.ok_or("no events in the input")?;
            Window::ending_at(newest, seconds)
        }
        (None, from, to) => Window::new(
            from.map(parse_time).transpose()?.unwrap_or(i64::MIN),
            to.map(parse_time).transpose()?.unwrap_or(i64::MAX),
        ),
        (Some(_), _, _) => return Err("--window does not combine with --from/--to".into()),
    };
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let (aggregator, tally) = run(&sources, args.log_format, window, timing, detector.networks(), false, progress)?;
    let elapsed = started.elapsed().as_secs_f64();

    if tally.malformed > 0 {
        let at: Vec<String> = tally
            .malformed_at
            .iter()
            .map(|(s, n)| format!("{}:{n}", sources.get(*s).map(Source::name).unwrap_or_default()))
            .collect();
        eprintln!("streamgate: skipped {} malformed line(s), first at {}", tally.malformed, at.join(", "));
    }
    if args.stats {
        eprintln!(
            "streamgate: {} lines, {} events ({} outside the window, {} without a token), {} tokens, {:.1} MB in {:.2} s: \
             {:.0} MB/s, {:.0} events/s",
            tally.lines,
            tally.events,
            tally.outside_window,
            tally.no_token,
            aggregator.len(),
            tally.bytes as f64 / 1e6,
            elapsed,
            tally.bytes as f64 / 1e6 / elapsed.max(1e-9),
            tally.lines as f64 / elapsed.max(1e-9),
        );
    }
    let rows: Vec<_> =
        detector.token_rows(&aggregator).into_iter().filter(|r| r.is_finding(args.min_severity.into())).collect();
    output::print(&rows, args.format)?;
    Ok(if rows.is_empty() { Outcome::Success } else { Outcome::Denied })
}

fn read_text(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// The shipped table, or the given lists (`shipped` names the shipped one).
fn network_table(asn_files: &[String], cidr_files: &[String]) -> Result<NetworkTable> {
    let mut table = NetworkTable::empty();
    let (dc_asns, vpn_asns) = NetworkTable::shipped_asn_lists();
    let (dc_cidrs, vpn_cidrs) = NetworkTable::shipped_cidr_lists();
    let load = |table: &mut NetworkTable, files: &[String], asns: bool| -> Result<()> {
        let shipped = files.is_empty() || files.iter().any(|f| f == "shipped");
        if shipped {
            let (dc, vpn) = if asns { (dc_asns, vpn_asns) } else { (dc_cidrs, vpn_cidrs) };
            add(table, dc, NetworkClass::Hosting, asns, "shipped list")?;
            add(table, vpn, NetworkClass::Vpn, asns, "shipped list")?;
        }
        for file in files.iter().filter(|f| *f != "shipped") {
            add(table, &read_text(file)?, NetworkClass::Hosting, asns, file)?;
        }
        Ok(())
    };
    load(&mut table, asn_files, true)?;
    load(&mut table, cidr_files, false)?;
    table.add_corrections();
    Ok(table)
}

fn add(table: &mut NetworkTable, text: &str, class: NetworkClass, asns: bool, name: &str) -> Result<()> {
    let added = if asns { table.add_asn_list(text, class) } else { table.add_cidr_list(text, class) };
    added.map(|_| ()).map_err(|e| format!("{name}: {e}"))
}

/// `3h`, `90m`, `45s`, `2d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: i64 = number.parse().map_err(|_| format!("not a duration: {text:?} (e.g. 3h, 90m, 1d)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("not a duration: {text:?} (units s, m, h, d)")),
    };
    Ok(value.saturating_mul(factor))
}

/// Unix seconds or RFC 3339 (`2026-01-01T00:00:00Z`, `…+01:00`).
pub fn parse_time(text: &str) -> Result<i64> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return Ok(seconds);
    }
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("not unix seconds or RFC 3339: {text:?}"))
}

/// One pass over every source: blocks to the workers, rollups merged at the end.
fn run(
    sources: &[Source],
    format: Option<LogFormat>,
    window: Window,
    timing: Timing,
    table: &NetworkTable,
    times_only: bool,
    progress: bool,
) -> Result<(Aggregator, Tally)> {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (sender, receiver) = sync_channel::<Block>(workers * 2);
    let receiver = Mutex::new(receiver);
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..workers).map(|_| scope.spawn(|| work(&receiver, window, timing, table, times_only))).collect();
        let read = read_blocks(sources, format, &sender, progress);
        drop(sender);
        let mut aggregator = Aggregator::new(timing);
        let mut tally = Tally::default();
        for handle in handles {
            let (part, part_tally) = handle.join().map_err(|_| "a worker thread failed".to_owned())?;
            aggregator.merge(part).map_err(|e| e.to_string())?;
            tally.absorb(part_tally);
        }
        read?;
        Ok((aggregator, tally))
    })
}

fn read_blocks(
    sources: &[Source],
    format: Option<LogFormat>,
    sender: &std::sync::mpsc::SyncSender<Block>,
    progress: bool,
) -> Result<()> {
    for (index, source) in sources.iter().enumerate() {
        let (mut reader, size) = source.open()?;
        let show = progress && size.is_some_and(|s| s > 256 << 20);
        let mut carry: Vec<u8> = Vec::new();
        let mut first_line = 1u64;
        let mut format = format;
        let mut done = 0u64;
        loop {
            let mut bytes = std::mem::take(&mut carry);
            bytes.reserve(BLOCK);
            let start = bytes.len();
            // `take` + `read_to_end` fills the spare capacity without zeroing it first.
            (&mut reader).take(BLOCK as u64).read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", source.name()))?;
            let end_of_input = bytes.len() == start;
            if !end_of_input {
                // Keep the partial last line for the next block.
                if let Some(cut) = memchr::memrchr(b'\n', &bytes) {
                    carry = bytes.split_off(cut + 1);
                } else {
                    carry = std::mem::take(&mut bytes);
                    continue;
                }
            }
            if bytes.is_empty() {
                break;
            }
            let format = *format.get_or_insert_with(|| detect_format(&bytes));
            let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64 + u64::from(bytes.last() != Some(&b'\n'));
            done += bytes.len() as u64;
            if show {
                let total = size.unwrap_or(0) as f64 / 1e6;
                eprint!("\rscanning {}: {:.0} / {total:.0} MB", source.name(), done as f64 / 1e6);
            }
            let block = Block { source: index, format, first_line, bytes };
            first_line += lines;
            if sender.send(block).is_err() || end_of_input {
                break;
            }
        }
        if show {
            eprintln!();
        }
    }
    Ok(())
}

/// JSON Lines when the first non-blank line starts with `{`, else combined log.
fn detect_format(bytes: &[u8]) -> LogFormat {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        LogFormat::Jsonl
    } else {
        LogFormat::Combined
    }
}

fn work(
    receiver: &Mutex<Receiver<Block>>,
    window: Window,
    timing: Timing,
    table: &NetworkTable,
    times_only: bool,
) -> (Aggregator, Tally) {
    let mut aggregator = Aggregator::new(timing);
    let mut tally = Tally::default();
    let mut names = Names::new(table);
    loop {
        let block = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => break,
        };
        let Ok(block) = block else { break };
        tally.bytes += block.bytes.len() as u64;
        for (number, line) in (block.first_line..).zip(block.bytes.split(|&b| b == b'\n')) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            tally.lines += 1;
            match block.format {
                LogFormat::Jsonl => match fastjson::event(line) {
                    Some(view) => accept(&view, &mut tally, &mut aggregator, window, times_only),
                    None => match parse::json_line(line) {
                        Some(event) => accept(&event.view(), &mut tally, &mut aggregator, window, times_only),
                        None => record_malformed(&mut tally, block.source, number),
                    },
                },
                LogFormat::Combined => match std::str::from_utf8(line).map(|l| parse::log_event(l, &mut names)) {
                    Ok(LogOutcome::Event(event)) => {
                        accept(&event.view(), &mut tally, &mut aggregator, window, times_only)
                    }
                    Ok(LogOutcome::NoToken) => tally.no_token += 1,
                    Ok(LogOutcome::Malformed) | Err(_) => record_malformed(&mut tally, block.source, number),
                },
            }
        }
    }
    (aggregator, tally)
}

fn accept(view: &EventView<'_>, tally: &mut Tally, aggregator: &mut Aggregator, window: Window, times_only: bool) {
    tally.newest = tally.newest.max(Some(view.at));
    if times_only {
        return;
    }
    if window.contains(view.at) {
        tally.events += 1;
        aggregator.add_view(view);
    } else {
        tally.outside_window += 1;
    }
}

fn record_malformed(tally: &mut Tally, source: usize, line: u64) {
    tally.malformed += 1;
    if tally.malformed_at.len() < REPORTED_MALFORMED {
        tally.malformed_at.push((source, line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("3h"), Ok(10_800));
        assert_eq!(parse_duration("90m"), Ok(5_400));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("3 weeks").is_err());
        assert_eq!(parse_time("1767225600"), Ok(1_767_225_600));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Ok(1_767_225_600));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse::days_from_civil(2026, 1, 1), 20_454);
    }
}
