//! Prometheus metrics: request counts and latency histograms per route, match counts, and
//! gauges read at scrape time. Atomics on the request path; text rendered on scrape.
//!
//! Hand-written (about a hundred lines) rather than a metrics crate: the request path needs
//! only a read lock and a few relaxed atomic adds, and the exposition format is simple.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct RouteStats {
    /// Indexed by status class: 1xx..5xx.
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    routes: RwLock<HashMap<(String, String), Arc<RouteStats>>>,
    matched: AtomicU64,
    unmatched: AtomicU64,
}

impl Metrics {
    /// Counts one answered request. `route` is the route pattern, never the raw path (which
    /// would let clients create unbounded label values).
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = (method.to_owned(), route.to_owned());
        let found = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let stats = match found {
            Some(stats) => stats,
            None => Arc::clone(
                self.routes
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(key)
                    .or_default(),
            ),
        };
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        if let Some(counter) = stats.by_class.get(class) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&stats.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        stats.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        stats.sum_micros.fetch_add(micros, Ordering::Relaxed);
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

    /// The exposition text; `gauges` are (name, help, value) and `labelled` gauges with one
    /// sample per label value, both read by the caller at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)], labelled: &[LabelledGauge]) -> String {
        let mut out = String::new();
        out.push_str("# HELP aranea_http_requests_total HTTP requests answered, by route and status class.\n");
        out.push_str("# TYPE aranea_http_requests_total counter\n");
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<&(String, String)> = routes.keys().collect();
        keys.sort();
        for key in &keys {
            let Some(stats) = routes.get(*key) else {
                continue;
            };
            for (i, counter) in stats.by_class.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "aranea_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}xx\"}} {n}",
                        key.0,
                        key.1,
                        i + 1
                    );
                }
            }
        }
        out.push_str("# HELP aranea_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE aranea_http_request_duration_seconds histogram\n");
        for key in &keys {
            let Some(stats) = routes.get(*key) else {
                continue;
            };
            let labels = format!("method=\"{}\",route=\"{}\"", key.0, key.1);
            for (bound, bucket) in BUCKETS.iter().zip(&stats.buckets) {
                let _ = writeln!(
                    out,
                    "aranea_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = stats.count.load(Ordering::Relaxed);
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
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
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

/// A gauge with one sample per value of one label (`aranea_notices{state="failed"} 3`).
pub struct LabelledGauge {
    pub name: &'static str,
    pub help: &'static str,
    pub label: &'static str,
    pub samples: Vec<(&'static str, f64)>,
}
