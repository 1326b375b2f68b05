//! Prometheus metrics: request counts and latency histograms per route, match counts, and
//! values read at scrape time (the store's row counts, the banks' size). Atomics on the
//! request path; text rendered on scrape.
//!
//! Hand-written (about a hundred lines) rather than a metrics crate: the exposition format is
//! simple, and the request path stays free of locks and allocations. A route's counters are
//! registered the first time it answers (a copy-on-write map swapped atomically, so readers
//! never wait); after that a request costs one map lookup by `&str` and three relaxed atomic
//! adds.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The method labels; any other method counts as `OTHER` (a client must not be able to
/// create label values).
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

fn method_slot(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

#[derive(Default)]
struct MethodStats {
    /// Indexed by status class: 1xx..5xx.
    by_class: [AtomicU64; 5],
    /// Requests per bucket, not cumulative (summed when rendered); the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// One route's counters, one set per method.
#[derive(Default)]
struct RouteStats {
    methods: [MethodStats; METHODS.len()],
}

type Routes = HashMap<Box<str>, Arc<RouteStats>>;

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    routes: ArcSwap<Routes>,
    matched: AtomicU64,
    unmatched: AtomicU64,
}

impl Metrics {
    /// Counts one answered request. `route` is the route pattern, never the raw path (which
    /// would let clients create unbounded label values).
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let stats = match self.routes.load().get(route) {
            Some(stats) => Arc::clone(stats),
            None => self.register(route),
        };
        let Some(stats) = stats.methods.get(method_slot(method)) else {
            return;
        };
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        if let Some(counter) = stats.by_class.get(class) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        if let Some(counter) = stats.buckets.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        stats.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counters of a route seen for the first time (once per route pattern).
    fn register(&self, route: &str) -> Arc<RouteStats> {
        let mut registered = None;
        self.routes.rcu(|routes| {
            let mut routes = Routes::clone(routes);
            registered = Some(Arc::clone(routes.entry(route.into()).or_default()));
            routes
        });
        registered.unwrap_or_default()
    }

    /// Counts one matching query (a piece of media or one PDQ hash).
    pub fn record_match(&self, matched: bool) {
        let counter = if matched {
            &self.matched
        } else {
            &self.unmatched
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; `values` (one sample each) and `labelled` gauges (one sample per
    /// label value) are read by the caller at scrape time.
    pub fn render(&self, values: &[ScrapedValue], labelled: &[LabelledGauge]) -> String {
        let mut out = String::new();
        out.push_str("# HELP aranea_http_requests_total HTTP requests answered, by method, route and status class.\n");
        out.push_str("# TYPE aranea_http_requests_total counter\n");
        let routes = self.routes.load();
        let mut names: Vec<&Box<str>> = routes.keys().collect();
        names.sort();
        // (method, route, counters) of every pair that has answered, in label order.
        let mut answered: Vec<(&str, &str, &MethodStats)> = Vec::new();
        for name in names {
            let Some(route) = routes.get(name) else {
                continue;
            };
            for (method, stats) in METHODS.iter().copied().zip(&route.methods) {
                if stats.buckets.iter().any(|b| b.load(Ordering::Relaxed) > 0) {
                    answered.push((method, name, stats));
                }
            }
        }
        answered.sort_by_key(|(method, route, _)| (*method, *route));
        for (method, route, stats) in &answered {
            for (i, counter) in stats.by_class.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "aranea_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{}xx\"}} {n}",
                        i + 1
                    );
                }
            }
        }
        out.push_str(
            "# HELP aranea_http_request_duration_seconds Time to answer, by method and route.\n",
        );
        out.push_str("# TYPE aranea_http_request_duration_seconds histogram\n");
        for (method, route, stats) in &answered {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS.iter().zip(&stats.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "aranea_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let count: u64 = stats
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(
                out,
                "aranea_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = stats.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "aranea_http_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "aranea_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out.push_str("# HELP aranea_match_queries_total Matching queries (media or PDQ hashes), by outcome.\n");
        out.push_str("# TYPE aranea_match_queries_total counter\n");
        let _ = writeln!(
            out,
            "aranea_match_queries_total{{outcome=\"match\"}} {}",
            self.matched.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "aranea_match_queries_total{{outcome=\"no_match\"}} {}",
            self.unmatched.load(Ordering::Relaxed)
        );
        for value in values {
            let (name, kind) = (value.name, value.kind.as_str());
            let _ = writeln!(
                out,
                "# HELP {name} {}\n# TYPE {name} {kind}\n{name} {}",
                value.help, value.value
            );
        }
        for gauge in labelled {
            let name = gauge.name;
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} gauge", gauge.help);
            for (value_of_label, value) in &gauge.samples {
                let _ = writeln!(
                    out,
                    "{name}{{{}=\"{value_of_label}\"}} {value}",
                    gauge.label
                );
            }
        }
        out
    }
}

/// Whether a value read at scrape time only ever grows (a counter: `rate()` applies) or may
/// also fall (a gauge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// One value read at scrape time (a row count, the banks' size), rendered as a family of one
/// sample. A counter's name ends in `_total`, as Prometheus names counters.
pub struct ScrapedValue {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub value: f64,
}

impl ScrapedValue {
    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Self {
        ScrapedValue {
            name,
            help,
            kind: MetricKind::Gauge,
            value,
        }
    }

    /// A count that never decreases; a negative count (which no table holds) shows as 0.
    pub fn counter(name: &'static str, help: &'static str, count: i64) -> Self {
        debug_assert!(name.ends_with("_total"), "{name}");
        ScrapedValue {
            name,
            help,
            kind: MetricKind::Counter,
            value: count.max(0) as f64,
        }
    }
}

/// A gauge with one sample per value of one label (`aranea_notices{state="failed"} 3`).
pub struct LabelledGauge {
    pub name: &'static str,
    pub help: &'static str,
    pub label: &'static str,
    pub samples: Vec<(&'static str, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_method_and_class_with_cumulative_buckets() {
        let metrics = Metrics::default();
        let ms = Duration::from_millis;
        metrics.record_request("POST", "/v1/pdq/", 200, ms(0));
        metrics.record_request("POST", "/v1/pdq/", 200, ms(3));
        metrics.record_request("POST", "/v1/pdq/", 401, ms(30));
        metrics.record_request("GET", "/healthz", 200, Duration::from_secs(9));
        let text = metrics.render(&[], &[]);
        let pdq = "method=\"POST\",route=\"/v1/pdq/\"";
        for line in [
            format!("aranea_http_requests_total{{{pdq},status=\"2xx\"}} 2"),
            format!("aranea_http_requests_total{{{pdq},status=\"4xx\"}} 1"),
            format!("aranea_http_request_duration_seconds_bucket{{{pdq},le=\"0.0005\"}} 1"),
            format!("aranea_http_request_duration_seconds_bucket{{{pdq},le=\"0.005\"}} 2"),
            format!("aranea_http_request_duration_seconds_bucket{{{pdq},le=\"0.05\"}} 3"),
            format!("aranea_http_request_duration_seconds_bucket{{{pdq},le=\"+Inf\"}} 3"),
            format!("aranea_http_request_duration_seconds_sum{{{pdq}}} 0.033"),
            format!("aranea_http_request_duration_seconds_count{{{pdq}}} 3"),
            "aranea_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"5\"} 0".to_owned(),
            "aranea_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} 1".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        // GET sorts before POST, as the labels do.
        let get = text.find("method=\"GET\"").unwrap();
        assert!(get < text.find("method=\"POST\"").unwrap());
    }

    #[test]
    fn a_client_cannot_create_method_labels() {
        let metrics = Metrics::default();
        for method in ["BREW", "X-ANYTHING-1", "X-ANYTHING-2"] {
            metrics.record_request(method, "unmatched", 405, Duration::from_millis(1));
        }
        let text = metrics.render(&[], &[]);
        assert!(
            !text.contains("BREW") && !text.contains("X-ANYTHING"),
            "{text}"
        );
        assert!(text.contains(
            "aranea_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"4xx\"} 3"
        ));
    }

    #[test]
    fn concurrent_first_requests_of_a_route_are_all_counted() {
        let metrics = Metrics::default();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let metrics = &metrics;
                scope.spawn(move || {
                    for i in 0..500 {
                        let route = format!("/r{}", (i + t) % 7);
                        metrics.record_request("GET", &route, 200, Duration::ZERO);
                    }
                });
            }
        });
        let text = metrics.render(&[], &[]);
        let total: u64 = text
            .lines()
            .filter(|l| l.starts_with("aranea_http_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(total, 2000, "{text}");
    }
}
