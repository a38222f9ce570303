//! `/metrics` in the Prometheus text format: decisions by route and reason code, and a
//! latency histogram per route.
//!
//! Hand-written rather than a metrics crate: the label sets are closed (two routes, the
//! core's reason codes), so every series is a fixed atomic counter, recording costs one
//! relaxed add and no allocation or map lookup on the request path, and the exposition is
//! some forty lines with no dependency to keep up to date.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use streamgate_core::ReasonCode;

/// Where a decision was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Proxy mode: a viewer request through [`streamgate_core::gateway::Gateway::handle`].
    Proxy,
    /// Forward-auth: `/auth`.
    Auth,
}

impl Route {
    const ALL: [Route; 2] = [Route::Proxy, Route::Auth];

    fn index(self) -> usize {
        match self {
            Route::Proxy => 0,
            Route::Auth => 1,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Proxy => "proxy",
            Route::Auth => "auth",
        }
    }
}

/// What a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Let through (or answered by the gate itself: a manifest, a preflight).
    Allowed,
    /// Denied, with its reason code.
    Denied(ReasonCode),
    /// Not decided: the origin or the state store failed, the gate is misconfigured, or an
    /// untrusted peer asked for forward-auth.
    Error,
}

/// Outcomes counted per route: allowed, each reason code, error.
const OUTCOMES: usize = ReasonCode::ALL.len() + 2;

impl Decision {
    fn index(self) -> usize {
        match self {
            Decision::Allowed => 0,
            Decision::Denied(code) => 1 + ReasonCode::ALL.iter().position(|c| *c == code).unwrap_or(0),
            Decision::Error => OUTCOMES - 1,
        }
    }

    /// `(decision, reason)` labels of outcome `index`.
    fn labels(index: usize) -> (&'static str, &'static str) {
        match index.checked_sub(1).and_then(|i| ReasonCode::ALL.get(i)) {
            _ if index == 0 => ("allow", ""),
            Some(code) => ("deny", code.as_str()),
            None => ("error", ""),
        }
    }
}

/// Upper bounds of the latency buckets, seconds: from 100 µs (a verification) to 10 s (a
/// slow origin in proxy mode).
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0];

/// One route's counters.
struct RouteMetrics {
    decisions: [AtomicU64; OUTCOMES],
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl RouteMetrics {
    const fn new() -> RouteMetrics {
        RouteMetrics {
            decisions: [const { AtomicU64::new(0) }; OUTCOMES],
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

/// The gate's counters.
pub(crate) struct Metrics {
    routes: [RouteMetrics; 2],
}

impl Metrics {
    pub(crate) const fn new() -> Metrics {
        Metrics { routes: [RouteMetrics::new(), RouteMetrics::new()] }
    }

    /// Counts one decision on `route` that took `elapsed` (until the response head).
    pub(crate) fn record(&self, route: Route, decision: Decision, elapsed: Duration) {
        let Some(metrics) = self.routes.get(route.index()) else { return };
        if let Some(counter) = metrics.decisions.get(decision.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        // Buckets are stored non-cumulative and summed when rendered.
        if let Some(bucket) = metrics.buckets.iter().zip(BUCKETS).find(|(_, le)| seconds <= *le).map(|(b, _)| b) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        metrics.sum_micros.fetch_add(micros, Ordering::Relaxed);
        metrics.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition (text format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP streamgate_decisions_total Gate decisions by route, decision and reason code.\n");
        out.push_str("# TYPE streamgate_decisions_total counter\n");
        for route in Route::ALL {
            let Some(metrics) = self.routes.get(route.index()) else { continue };
            for (index, counter) in metrics.decisions.iter().enumerate() {
                let (decision, reason) = Decision::labels(index);
                let value = counter.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "streamgate_decisions_total{{route=\"{}\",decision=\"{decision}\",reason=\"{reason}\"}} {value}",
                    route.label()
                );
            }
        }
        out.push_str("# HELP streamgate_decision_duration_seconds Time from request to response head.\n");
        out.push_str("# TYPE streamgate_decision_duration_seconds histogram\n");
        for route in Route::ALL {
            let Some(metrics) = self.routes.get(route.index()) else { continue };
            let label = route.label();
            let mut cumulative = 0;
            for (bucket, le) in metrics.buckets.iter().zip(BUCKETS) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "streamgate_decision_duration_seconds_bucket{{route=\"{label}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let count = metrics.count.load(Ordering::Relaxed);
            let sum = metrics.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ =
                writeln!(out, "streamgate_decision_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "streamgate_decision_duration_seconds_sum{{route=\"{label}\"}} {sum}");
            let _ = writeln!(out, "streamgate_decision_duration_seconds_count{{route=\"{label}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_decisions_by_reason_and_fills_cumulative_buckets() {
        let metrics = Metrics::new();
        metrics.record(Route::Auth, Decision::Allowed, Duration::from_micros(80));
        metrics.record(Route::Auth, Decision::Denied(ReasonCode::Expired), Duration::from_millis(3));
        metrics.record(Route::Proxy, Decision::Error, Duration::from_secs(60));
        let text = metrics.render();
        for line in [
            "streamgate_decisions_total{route=\"auth\",decision=\"allow\",reason=\"\"} 1",
            "streamgate_decisions_total{route=\"auth\",decision=\"deny\",reason=\"expired\"} 1",
            "streamgate_decisions_total{route=\"auth\",decision=\"deny\",reason=\"revoked\"} 0",
            "streamgate_decisions_total{route=\"proxy\",decision=\"error\",reason=\"\"} 1",
            "streamgate_decision_duration_seconds_bucket{route=\"auth\",le=\"0.0001\"} 1",
            "streamgate_decision_duration_seconds_bucket{route=\"auth\",le=\"0.0025\"} 1",
            "streamgate_decision_duration_seconds_bucket{route=\"auth\",le=\"0.005\"} 2",
            "streamgate_decision_duration_seconds_bucket{route=\"proxy\",le=\"10\"} 0",
            "streamgate_decision_duration_seconds_bucket{route=\"proxy\",le=\"+Inf\"} 1",
            "streamgate_decision_duration_seconds_count{route=\"auth\"} 2",
            "streamgate_decision_duration_seconds_sum{route=\"auth\"} 0.00308",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let series = text.lines().filter(|l| l.starts_with("streamgate_decisions_total{")).count();
        assert_eq!(series, 2 * (ReasonCode::ALL.len() + 2), "every series, zero or not");
    }
}
