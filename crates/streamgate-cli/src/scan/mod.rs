//! `streamgate scan`: usage events or access logs in, Token Guardian findings out.
//!
//! Speed (figures in the README, from `scripts/bench-scan.sh`):
//! - inputs are read in large blocks (8 MiB) cut after their last line break, on one
//!   thread; spent blocks come back to it, so no block's pages are faulted in twice;
//! - the blocks are parsed on every core at once (`std::thread::scope`), each worker
//!   folding its events into its own [`Folder`]; the rollups merge exactly at the end, so
//!   the result does not depend on the number of threads or on the block size;
//! - a block is checked for UTF-8 once, `memchr` finds line breaks, and JSON Lines take a
//!   fast path for the gate's flat export format ([`fastjson`]), with serde_json
//!   (borrowing `&str`) for every line it declines;
//! - the [`Folder`] folds a session's repeated heartbeats in together, so most events
//!   cost one comparison rather than a lookup in each map of their token's rollup.
//!
//! No memory map: that needs `unsafe`, and reading from the page cache costs a few
//! percent of a scan.
//!
//! On a terminal, large inputs show a progress bar (indicatif) on standard error; it
//! draws from the reading thread, at most 20 times a second. Elsewhere they print one
//! summary line at the end, as `--stats` does for any input.

mod fastjson;
mod output;
mod parse;

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use streamgate_core::detection::{
    Aggregator, Detector, DetectorConfig, EventView, Folder, NetworkClass, NetworkTable, Timing, Window,
};

use crate::cli::{LogFormat, ScanArgs};
use crate::commands::Outcome;
use parse::{LogOutcome, Names};

/// Inputs at least this large show progress on a terminal, or a summary line elsewhere.
const LARGE_INPUT: u64 = 256 << 20;
/// Room in a new block for the partial line carried over from the previous one.
const CARRY_ROOM: usize = 64 << 10;
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
    fn size(&self) -> Option<u64> {
        match self {
            Source::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Source::Memory(_, bytes) => Some(bytes.len() as u64),
        }
    }
    fn open(&self) -> Result<Box<dyn Read + '_>> {
        match self {
            Source::File(path) => {
                let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(Box::new(file))
            }
            Source::Memory(_, bytes) => Ok(Box::new(bytes.as_slice())),
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
    /// The first few, as (block, line in the block) while parsing, then as (source, line
    /// number) once [`Tally::number_malformed`] has run.
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
        // Blocks are numbered in input order, so the least are the first in the input.
        self.malformed_at.extend(other.malformed_at);
        self.malformed_at.sort_unstable();
        self.malformed_at.truncate(REPORTED_MALFORMED);
        self.newest = self.newest.max(other.newest);
        self.bytes += other.bytes;
    }

    fn record_malformed(&mut self, block: usize, line: u64) {
        self.malformed += 1;
        if self.malformed_at.len() < REPORTED_MALFORMED {
            self.malformed_at.push((block, line));
        }
    }

    /// Turns (block, line in the block) into (source, line number), given each block's
    /// source and each block's number of lines.
    fn number_malformed(&mut self, block_sources: &[usize], block_lines: &[(usize, u64)]) {
        let mut lines = vec![0u64; block_sources.len()];
        for &(block, count) in block_lines {
            if let Some(slot) = lines.get_mut(block) {
                *slot = count;
            }
        }
        // Lines before each block, within its source.
        let mut before = Vec::with_capacity(lines.len());
        let (mut source, mut running) = (None, 0u64);
        for (&block_source, &count) in block_sources.iter().zip(&lines) {
            if source != Some(block_source) {
                (source, running) = (Some(block_source), 0);
            }
            before.push(running);
            running += count;
        }
        for (block, line) in &mut self.malformed_at {
            *line += before.get(*block).copied().unwrap_or(0);
            *block = block_sources.get(*block).copied().unwrap_or(0);
        }
    }
}

struct Block {
    /// Its place in the input, counted over every source.
    seq: usize,
    format: LogFormat,
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
    let large = sources.iter().filter_map(Source::size).sum::<u64>() >= LARGE_INPUT;
    let bar = large && std::io::stderr().is_terminal();
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    let block = usize::try_from(args.block_size).unwrap_or(usize::MAX);
    let pass = |label: &'static str| Pass {
        sources: &sources,
        format: args.log_format,
        threads,
        block,
        progress: bar.then_some(label),
    };
    let window = match (args.window.as_deref(), args.from.as_deref(), args.to.as_deref()) {
        (Some(span), None, None) => {
            let seconds = parse_duration(span)?;
            // The newest event first: one pass that only reads times.
            let (_, tally) = run(&pass("finding the newest event"), Window::all(), timing, &table, true)?;
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
    let (aggregator, tally) = run(&pass("scanning"), window, timing, detector.networks(), false)?;
    let elapsed = started.elapsed().as_secs_f64();

    if tally.malformed > 0 {
        let at: Vec<String> = tally
            .malformed_at
            .iter()
            .map(|(s, n)| format!("{}:{n}", sources.get(*s).map(Source::name).unwrap_or_default()))
            .collect();
        eprintln!("streamgate: skipped {} malformed line(s), first at {}", tally.malformed, at.join(", "));
    }
    if args.stats || large {
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

/// How a pass runs: its inputs, threads, block size, and its progress bar's label.
struct Pass<'a> {
    sources: &'a [Source],
    format: Option<LogFormat>,
    threads: usize,
    block: usize,
    progress: Option<&'static str>,
}

/// One pass over every source: blocks to the workers, rollups merged at the end.
fn run(
    pass: &Pass<'_>,
    window: Window,
    timing: Timing,
    table: &NetworkTable,
    times_only: bool,
) -> Result<(Aggregator, Tally)> {
    let (sender, receiver) = sync_channel::<Block>(pass.threads * 2);
    let receiver = Mutex::new(receiver);
    let (recycle, recycled) = channel::<Vec<u8>>();
    let lines = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..pass.threads)
            .map(|_| {
                let shared = Shared { receiver: &receiver, recycle: recycle.clone(), lines: &lines };
                scope.spawn(move || work(shared, window, timing, table, times_only))
            })
            .collect();
        drop(recycle);
        let read = read_blocks(pass, &sender, &recycled, &lines);
        drop(sender);
        let mut aggregator = Aggregator::new(timing);
        let mut tally = Tally::default();
        let mut block_lines = Vec::new();
        for handle in handles {
            let (part, part_tally, blocks) = handle.join().map_err(|_| "a worker thread failed".to_owned())?;
            aggregator.merge(part).map_err(|e| e.to_string())?;
            tally.absorb(part_tally);
            block_lines.extend(blocks);
        }
        let block_sources = read?;
        tally.number_malformed(&block_sources, &block_lines);
        Ok((aggregator, tally))
    })
}

/// Reads every source in blocks cut after a line break and sends them to the workers;
/// returns the source of each block, by sequence number.
fn read_blocks(
    pass: &Pass<'_>,
    sender: &SyncSender<Block>,
    recycled: &Receiver<Vec<u8>>,
    lines: &AtomicU64,
) -> Result<Vec<usize>> {
    let progress = pass.progress.map(|label| progress_bar(label, pass.sources.iter().filter_map(Source::size).sum()));
    let mut block_sources = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    for (index, source) in pass.sources.iter().enumerate() {
        let mut reader = source.open()?;
        let mut format = pass.format;
        carry.clear();
        loop {
            // Room for the carried line too, so a recycled block is not reallocated for it.
            let mut bytes = recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(pass.block + CARRY_ROOM));
            bytes.clear();
            bytes.reserve(carry.len() + pass.block);
            bytes.append(&mut carry);
            let start = bytes.len();
            // `take` + `read_to_end` fills the spare capacity without zeroing it first.
            (&mut reader)
                .take(pass.block as u64)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{}: {e}", source.name()))?;
            let end_of_input = bytes.len() == start;
            if let Some(bar) = &progress {
                bar.inc((bytes.len() - start) as u64);
                bar.set_message(format!("{} lines  {}", HumanCount(lines.load(Ordering::Relaxed)), source.name()));
            }
            if !end_of_input {
                // Keep the partial last line for the next block.
                match memchr::memrchr(b'\n', &bytes) {
                    Some(cut) => {
                        carry.extend_from_slice(bytes.get(cut + 1..).unwrap_or_default());
                        bytes.truncate(cut + 1);
                    }
                    None => {
                        carry = bytes;
                        continue;
                    }
                }
            }
            if bytes.is_empty() {
                break;
            }
            let format = *format.get_or_insert_with(|| detect_format(&bytes));
            let block = Block { seq: block_sources.len(), format, bytes };
            block_sources.push(index);
            if sender.send(block).is_err() || end_of_input {
                break;
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(block_sources)
}

/// A bar for `total` bytes on standard error; indicatif redraws it at most 20 times a second.
fn progress_bar(label: &str, total: u64) -> ProgressBar {
    let template = "{prefix} [{bar:30}] {percent:>3}%  {decimal_bytes}/{decimal_total_bytes}  \
                    {decimal_bytes_per_sec}  eta {eta}  {wide_msg}";
    let style = ProgressStyle::with_template(template)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(style);
    bar.set_prefix(label.to_owned());
    bar
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

/// What a worker shares with the reader and the other workers.
struct Shared<'a> {
    receiver: &'a Mutex<Receiver<Block>>,
    /// Spent blocks go back to the reader, so their pages are not faulted in anew.
    recycle: Sender<Vec<u8>>,
    /// Lines parsed so far, for the progress bar.
    lines: &'a AtomicU64,
}

/// What a worker has found so far.
struct Part {
    folder: Folder,
    tally: Tally,
    blocks: Vec<(usize, u64)>,
}

/// Parses blocks until the reader is done; returns the rollups (folded in on this thread),
/// the counts, and the number of lines of each block parsed.
fn work(
    shared: Shared<'_>,
    window: Window,
    timing: Timing,
    table: &NetworkTable,
    times_only: bool,
) -> (Aggregator, Tally, Vec<(usize, u64)>) {
    let mut part = Part { folder: Folder::new(timing), tally: Tally::default(), blocks: Vec::new() };
    let mut names = Names::new(table);
    loop {
        let block = match shared.receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => break,
        };
        let Ok(block) = block else { break };
        let lines = parse_block(&block, &mut part, &mut names, window, times_only);
        part.blocks.push((block.seq, lines));
        shared.lines.fetch_add(lines, Ordering::Relaxed);
        // Once the reader is done, nobody takes it back: then it is simply dropped.
        let _ = shared.recycle.send(block.bytes);
    }
    let Part { folder, tally, blocks } = part;
    (folder.finish(), tally, blocks)
}

/// Parses one block into `part`; returns its number of lines.
fn parse_block(block: &Block, part: &mut Part, names: &mut Names<'_>, window: Window, times_only: bool) -> u64 {
    let bytes = block.bytes.as_slice();
    // One check of the whole block makes every line text; a block that is not UTF-8
    // throughout is checked line by line.
    let text = std::str::from_utf8(bytes).ok();
    let (tally, folder) = (&mut part.tally, &mut part.folder);
    let mut number = 0u64;
    let mut start = 0usize;
    while start < bytes.len() {
        let newline = memchr::memchr(b'\n', bytes.get(start..).unwrap_or_default()).map_or(bytes.len(), |i| start + i);
        let (first, mut end) = (start, newline);
        start = newline + 1;
        number += 1;
        if end > first && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        let raw = bytes.get(first..end).unwrap_or_default();
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        tally.lines += 1;
        let line = match text {
            Some(text) => text.get(first..end),
            None => std::str::from_utf8(raw).ok(),
        };
        match block.format {
            LogFormat::Jsonl => match line.and_then(fastjson::event) {
                Some(view) => accept(&view, tally, folder, window, times_only),
                None => match parse::json_line(raw) {
                    Some(event) => accept(&event.view(), tally, folder, window, times_only),
                    None => tally.record_malformed(block.seq, number),
                },
            },
            LogFormat::Combined => match line.map(|l| parse::log_event(l, names)) {
                Some(LogOutcome::Event(event)) => accept(&event.view(), tally, folder, window, times_only),
                Some(LogOutcome::NoToken) => tally.no_token += 1,
                Some(LogOutcome::Malformed) | None => tally.record_malformed(block.seq, number),
            },
        }
    }
    tally.bytes += bytes.len() as u64;
    number
}

fn accept(view: &EventView<'_>, tally: &mut Tally, folder: &mut Folder, window: Window, times_only: bool) {
    tally.newest = tally.newest.max(Some(view.at));
    if times_only {
        return;
    }
    if window.contains(view.at) {
        tally.events += 1;
        folder.add(view);
    } else {
        tally.outside_window += 1;
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
