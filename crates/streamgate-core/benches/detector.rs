//! The detector in memory, on one core: events folded into rollups per second, one at a
//! time (`Aggregator::add`) and with the `Folder`, and the time to judge every token. `cargo bench -p streamgate-core --bench detector` (the
//! bench profile inherits release's size optimisation; scripts/bench-scan.sh sets
//! opt-level 3 as the CLI build has it).

use std::hint::black_box;
use std::time::Instant;

use streamgate_core::detection::simulate::{self, Scenario, SplitMix64};
use streamgate_core::detection::{Aggregator, Detector, DetectorConfig, Folder, NetworkTable};

#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
fn main() {
    let viewers = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(6_000);
    let mut events = Vec::new();
    simulate::generate(&mut SplitMix64::new(7), Scenario { viewers, ..Scenario::default() }, &mut |e| events.push(e));
    let config = DetectorConfig { allowed_referrers: vec![simulate::ALLOWED_REFERRER.into()], ..Default::default() };
    let detector = Detector::new(config.clone(), &NetworkTable::shipped()).unwrap_or_else(|e| panic!("{e}"));
    let mut best = f64::MAX;
    let mut aggregator = Aggregator::new(config.timing);
    for _ in 0..3 {
        aggregator = Aggregator::new(config.timing);
        let started = Instant::now();
        for event in &events {
            aggregator.add(black_box(event));
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    // What `streamgate scan` uses: the same rollups, repeated heartbeats folded together.
    let mut folded = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut folder = Folder::new(config.timing);
        for event in &events {
            folder.add(&black_box(event).view());
        }
        black_box(folder.finish());
        folded = folded.min(started.elapsed().as_secs_f64());
    }
    let started = Instant::now();
    let rows = detector.token_rows(&aggregator);
    let judged = started.elapsed().as_secs_f64();
    println!(
        "detector: {} events, {} tokens: aggregate {:.0} events/s on one core ({:.3} s), with the Folder {:.0} \
         events/s ({:.3} s), judge {:.3} s ({} findings)",
        events.len(),
        aggregator.len(),
        events.len() as f64 / best,
        best,
        events.len() as f64 / folded,
        folded,
        judged,
        rows.iter().filter(|r| !r.indicators.is_empty()).count(),
    );
}
