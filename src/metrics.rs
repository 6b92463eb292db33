//! Process metrics for `GET /metrics`, in the Prometheus text exposition format (version 0.0.4),
//! written by hand: counters and fixed-bucket histograms in atomics, no registry crate.
//!
//! Request series are labelled by method, the matched route *pattern* (`/api/v1/cases/{id}`, never
//! the raw path) and status, so their number is bounded by the route table. Gauges that live in
//! the database (outbox depth, cases by status group) are read at scrape time by
//! `service::metrics`; this module only renders what it is given.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Upper bounds (seconds) of the request-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// One (method, route, status) series: a count, a sum and cumulative-at-render buckets.
#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

/// Series key: method, route pattern, status.
type Key = (&'static str, String, u16);

/// The process's counters. One per process, shared by every worker through `AppState`.
#[derive(Default)]
pub struct Metrics {
    requests: RwLock<HashMap<Key, Arc<Series>>>,
    rate_limited: AtomicU64,
    overloaded: AtomicU64,
    slow_units: AtomicU64,
    webhook_delivered: AtomicU64,
    webhook_failed: AtomicU64,
}

/// The methods a series may carry; anything else is counted as `OTHER` (bounded cardinality).
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    /// Records one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key: Key = (method_label(method), route.to_owned(), status);
        let series = {
            let read = self.requests.read().unwrap_or_else(PoisonError::into_inner);
            read.get(&key).cloned()
        };
        let series = match series {
            Some(s) => s,
            None => {
                let mut write = self.requests.write().unwrap_or_else(PoisonError::into_inner);
                write.entry(key).or_default().clone()
            }
        };
        let secs = elapsed.as_secs_f64();
        series.count.fetch_add(1, Ordering::Relaxed);
        series.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| secs <= le) {
            if let Some(b) = series.buckets.get(i) {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts a request refused by the per-client rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused because too many were in flight.
    pub fn overloaded(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a unit of work slower than `MINSHENG_SLOW_QUERY_MS`.
    pub fn slow_unit(&self) {
        self.slow_units.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one webhook delivery attempt by its outcome.
    pub fn webhook_attempt(&self, delivered: bool) {
        if delivered {
            self.webhook_delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.webhook_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders everything: this process's counters and the gauges in `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let mut series: Vec<(Key, Arc<Series>)> = {
            let read = self.requests.read().unwrap_or_else(PoisonError::into_inner);
            read.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        series.sort_by(|a, b| a.0.cmp(&b.0));

        header(
            &mut out,
            "minsheng_http_requests_total",
            "counter",
            "Requests answered, by method, route pattern and status.",
        );
        for ((method, route, status), s) in &series {
            let _ = writeln!(
                out,
                "minsheng_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                s.count.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "minsheng_http_request_duration_seconds",
            "histogram",
            "Time from the request's head to its answer, by method, route pattern and status.",
        );
        for ((method, route, status), s) in &series {
            let labels = format!("method=\"{method}\",route=\"{}\",status=\"{status}\"", escape(route));
            let mut cumulative = 0u64;
            for (le, b) in LATENCY_BUCKETS.iter().zip(&s.buckets) {
                cumulative += b.load(Ordering::Relaxed);
                let _ =
                    writeln!(out, "minsheng_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "minsheng_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}");
            let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "minsheng_http_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "minsheng_http_request_duration_seconds_count{{{labels}}} {count}");
        }
        header(&mut out, "minsheng_http_requests_in_flight", "gauge", "Requests being answered now.");
        let _ = writeln!(out, "minsheng_http_requests_in_flight {}", gauges.in_flight);
        header(
            &mut out,
            "minsheng_http_rejected_total",
            "counter",
            "Requests refused before reaching a handler: rate_limited (429) or overloaded (503).",
        );
        let _ = writeln!(
            out,
            "minsheng_http_rejected_total{{reason=\"rate_limited\"}} {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "minsheng_http_rejected_total{{reason=\"overloaded\"}} {}",
            self.overloaded.load(Ordering::Relaxed)
        );
        header(&mut out, "minsheng_rate_limit_clients", "gauge", "Clients the rate limiter is tracking.");
        let _ = writeln!(out, "minsheng_rate_limit_clients {}", gauges.rate_limit_clients);

        header(&mut out, "minsheng_db_pool_connections", "gauge", "Database connections of this process, by state.");
        let _ = writeln!(out, "minsheng_db_pool_connections{{state=\"idle\"}} {}", gauges.pool_idle);
        let _ = writeln!(
            out,
            "minsheng_db_pool_connections{{state=\"in_use\"}} {}",
            gauges.pool_connections.saturating_sub(gauges.pool_idle)
        );
        header(&mut out, "minsheng_db_pool_max_connections", "gauge", "The pool's size (MINSHENG_DB_POOL_SIZE).");
        let _ = writeln!(out, "minsheng_db_pool_max_connections {}", gauges.pool_max);
        header(
            &mut out,
            "minsheng_db_slow_units_total",
            "counter",
            "Units of work (one database transaction each) slower than MINSHENG_SLOW_QUERY_MS.",
        );
        let _ = writeln!(out, "minsheng_db_slow_units_total {}", self.slow_units.load(Ordering::Relaxed));

        header(
            &mut out,
            "minsheng_webhook_deliveries_total",
            "counter",
            "Webhook delivery attempts made by this process, by outcome.",
        );
        let _ = writeln!(
            out,
            "minsheng_webhook_deliveries_total{{outcome=\"delivered\"}} {}",
            self.webhook_delivered.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "minsheng_webhook_deliveries_total{{outcome=\"failed\"}} {}",
            self.webhook_failed.load(Ordering::Relaxed)
        );
        if let Some(db) = &gauges.db {
            header(
                &mut out,
                "minsheng_webhook_outbox_events",
                "gauge",
                "Webhook events in the outbox (all processes): pending (waiting or retrying) or failed (given up).",
            );
            let _ = writeln!(out, "minsheng_webhook_outbox_events{{state=\"pending\"}} {}", db.outbox_pending);
            let _ = writeln!(out, "minsheng_webhook_outbox_events{{state=\"failed\"}} {}", db.outbox_failed);
            header(
                &mut out,
                "minsheng_cases",
                "gauge",
                "Cases by status group, from the kept statistics sums: open (received, assigned), resolved \
                 (awaiting verification), completed (verified or closed completed), dismissed.",
            );
            for (group, n) in [
                ("open", db.cases_open),
                ("resolved", db.cases_resolved),
                ("completed", db.cases_completed),
                ("dismissed", db.cases_dismissed),
            ] {
                let _ = writeln!(out, "minsheng_cases{{status_group=\"{group}\"}} {n}");
            }
        }
        header(
            &mut out,
            "minsheng_metrics_database_up",
            "gauge",
            "1 if the database gauges could be read for this scrape.",
        );
        let _ = writeln!(out, "minsheng_metrics_database_up {}", u8::from(gauges.db.is_some()));
        if let Some(rss) = gauges.resident_bytes {
            header(&mut out, "process_resident_memory_bytes", "gauge", "Resident memory of the process.");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out
    }
}

/// What a scrape reads besides the counters.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// Requests in flight.
    pub in_flight: usize,
    /// Clients tracked by the rate limiter.
    pub rate_limit_clients: usize,
    /// Open connections of the pool (idle and in use).
    pub pool_connections: u32,
    /// Idle connections of the pool.
    pub pool_idle: u32,
    /// The pool's maximum size.
    pub pool_max: u32,
    /// Gauges read from the database; `None` when it did not answer.
    pub db: Option<DbGauges>,
    /// Resident set size, where `/proc/self/statm` exists.
    pub resident_bytes: Option<u64>,
}

/// Gauges read from the database at scrape time.
#[derive(Debug, Default, Clone)]
pub struct DbGauges {
    /// Outbox events waiting for a (next) attempt.
    pub outbox_pending: i64,
    /// Outbox events given up on.
    pub outbox_failed: i64,
    /// Received or assigned cases.
    pub cases_open: i64,
    /// Resolved cases awaiting verification.
    pub cases_resolved: i64,
    /// Verified or closed-completed cases.
    pub cases_completed: i64,
    /// Closed cases with another outcome.
    pub cases_dismissed: i64,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, line feed).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The process's resident set size from `/proc/self/statm` (Linux), assuming 4 KiB pages.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
