//! Peedy's Prometheus metrics (DESIGN §8): the counters and histograms that
//! the code paths update — HTTP requests, stamping, callback attempts, rescued
//! jobs — in one process-wide registry.
//!
//! The crates that do the work call the small functions here
//! ([`http_request`], [`document_stamped`], [`callback_attempt`],
//! [`job_rescued`], …); the web tier renders the registry with [`encode`] at
//! `GET /metrics`, next to the gauges it reads from the database at scrape
//! time. Nothing is rendered unless someone asks, so the CLI pays only for
//! a few atomic increments.
//!
//! One static registry instead of a registry passed around: the hooks stay
//! one line each in crates that otherwise know nothing about metrics, and a
//! process has one `/metrics` anyway.
#![deny(missing_docs)]

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The prefix of every metric name.
pub const PREFIX: &str = "peedy";

/// Outcomes of a callback attempt, as [`callback_attempt`] takes them (all
/// of them are exported from the start, at 0).
pub const CALLBACK_OUTCOMES: [&str; 5] =
    ["delivered", "retry", "permanent", "gone", "breaker_open"];

/// How a document was stamped: by a queued job or by `POST /api/v1/stamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A stamping job of an uploaded document.
    Job,
    /// The synchronous API.
    Sync,
}

impl Via {
    fn label(self) -> String {
        match self {
            Via::Job => "job".into(),
            Via::Sync => "sync".into(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViaLabels {
    via: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets (seconds): 1 ms to 1 min.
fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

/// Pages per document: 1 to 100 000.
fn pages_histogram() -> Histogram {
    Histogram::new([
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
        100000.0,
    ])
}

struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    stamp_duration: HistogramFamily<ViaLabels>,
    stamp_pages: HistogramFamily<ViaLabels>,
    stamp_failures: Family<ViaLabels, Counter>,
    callback_attempts: Family<OutcomeLabels, Counter>,
    jobs_rescued: Family<QueueLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix(PREFIX);
    let http_requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests by method, matched route template and status",
        http_requests.clone(),
    );
    let http_duration: HistogramFamily<RouteLabels> =
        Family::new_with_constructor(latency_histogram);
    registry.register_with_unit(
        "http_request_duration",
        "Time to answer an HTTP request (until the response headers), by method and route",
        Unit::Seconds,
        http_duration.clone(),
    );
    let stamp_duration: HistogramFamily<ViaLabels> =
        Family::new_with_constructor(latency_histogram);
    registry.register_with_unit(
        "stamp_duration",
        "Time the engine took to stamp a document, by job or synchronous API",
        Unit::Seconds,
        stamp_duration.clone(),
    );
    let stamp_pages: HistogramFamily<ViaLabels> = Family::new_with_constructor(pages_histogram);
    registry.register(
        "stamp_pages",
        "Pages of each stamped document (the sum is all pages stamped)",
        stamp_pages.clone(),
    );
    let stamp_failures = Family::<ViaLabels, Counter>::default();
    registry.register(
        "stamp_failures",
        "Documents the engine refused (bad or encrypted PDF, limits, …)",
        stamp_failures.clone(),
    );
    let callback_attempts = Family::<OutcomeLabels, Counter>::default();
    registry.register(
        "callback_attempts",
        "Callback deliveries by outcome (breaker_open: not attempted, deferred)",
        callback_attempts.clone(),
    );
    let jobs_rescued = Family::<QueueLabels, Counter>::default();
    registry.register(
        "jobs_rescued",
        "Jobs claimed again after their lease expired (their worker died or hung)",
        jobs_rescued.clone(),
    );
    // Series known in advance start at 0, so rates and sums work from the
    // first scrape.
    for outcome in CALLBACK_OUTCOMES {
        let _ = callback_attempts.get_or_create(&OutcomeLabels {
            outcome: outcome.into(),
        });
    }
    for via in [Via::Job, Via::Sync] {
        let labels = ViaLabels { via: via.label() };
        let _ = stamp_duration.get_or_create(&labels);
        let _ = stamp_pages.get_or_create(&labels);
        let _ = stamp_failures.get_or_create(&labels);
    }
    Metrics {
        registry,
        http_requests,
        http_duration,
        stamp_duration,
        stamp_pages,
        stamp_failures,
        callback_attempts,
        jobs_rescued,
    }
});

/// Counts an answered HTTP request. `route` is the matched route template
/// (`/api/v1/documents/{id}`), never the raw path, so ids do not become
/// series.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    m.http_requests
        .get_or_create(&RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        })
        .inc();
    m.http_duration
        .get_or_create(&RouteLabels {
            method: method.to_owned(),
            route: route.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

/// Records a stamped document: the engine's time and the page count.
pub fn document_stamped(via: Via, elapsed: Duration, pages: u32) {
    let m = &*METRICS;
    let labels = ViaLabels { via: via.label() };
    m.stamp_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    m.stamp_pages
        .get_or_create(&labels)
        .observe(f64::from(pages));
}

/// Counts a document the engine refused.
pub fn stamp_failed(via: Via) {
    METRICS
        .stamp_failures
        .get_or_create(&ViaLabels { via: via.label() })
        .inc();
}

/// Counts a callback attempt by outcome (one of [`CALLBACK_OUTCOMES`]).
pub fn callback_attempt(outcome: &str) {
    METRICS
        .callback_attempts
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// Counts a job of `queue` claimed again after its lease expired.
pub fn job_rescued(queue: &str) {
    METRICS
        .jobs_rescued
        .get_or_create(&QueueLabels {
            queue: queue.to_owned(),
        })
        .inc();
}

/// Appends the registry in the OpenMetrics text format, without the final
/// `# EOF` line (the caller adds its own metrics, then
/// [`prometheus_client::encoding::text::encode_eof`]).
pub fn encode(out: &mut String) -> std::fmt::Result {
    prometheus_client::encoding::text::encode_registry(out, &METRICS.registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_labels_and_units() {
        callback_attempt("delivered");
        job_rescued("stamp");
        document_stamped(Via::Sync, Duration::from_millis(3), 4);
        http_request(
            "GET",
            "/api/v1/documents/{id}",
            404,
            Duration::from_millis(1),
        );
        let mut out = String::new();
        encode(&mut out).expect("encode");
        for line in [
            "peedy_callback_attempts_total{outcome=\"breaker_open\"} 0",
            "peedy_jobs_rescued_total{queue=\"stamp\"} 1",
            "peedy_stamp_pages_sum{via=\"sync\"} 4.0",
            "peedy_http_requests_total{method=\"GET\",route=\"/api/v1/documents/{id}\",status=\"404\"} 1",
            "peedy_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/documents/{id}\"} 1",
        ] {
            assert!(out.contains(line), "{line:?} missing from\n{out}");
        }
        assert!(
            out.contains("peedy_callback_attempts_total{outcome=\"delivered\"} 1"),
            "{out}"
        );
    }
}
