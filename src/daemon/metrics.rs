//! Prometheus metrics. One recorder per process, installed on first use;
//! every name is registered up front so that a scrape shows the full set
//! (at zero) before the first poll.
//!
//! The helpers below are the only way code records metrics, which keeps the
//! names and label values in one place.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const POLLS: &str = "feedfold_polls_total";
pub const HTTP_RESPONSES: &str = "feedfold_http_responses_total";
pub const FETCHED_BYTES: &str = "feedfold_fetched_bytes_total";
pub const POLL_DURATION: &str = "feedfold_poll_duration_seconds";
pub const ITEMS: &str = "feedfold_items_total";
pub const FOLDS: &str = "feedfold_folds_total";
pub const STORIES_CREATED: &str = "feedfold_stories_created_total";
pub const FEEDS: &str = "feedfold_feeds";
pub const FOLD_DECISION: &str = "feedfold_fold_decision_seconds";
pub const DB_CONNECTIONS: &str = "feedfold_db_connections";
pub const LEASES_CLAIMED: &str = "feedfold_leases_claimed_total";
pub const LEASES_EXPIRED: &str = "feedfold_leases_expired_total";

/// Every metric name this module exports.
pub const NAMES: [&str; 12] = [
    POLLS,
    HTTP_RESPONSES,
    FETCHED_BYTES,
    POLL_DURATION,
    ITEMS,
    FOLDS,
    STORIES_CREATED,
    FEEDS,
    FOLD_DECISION,
    DB_CONNECTIONS,
    LEASES_CLAIMED,
    LEASES_EXPIRED,
];

/// Poll durations span a 304 on localhost to a slow 16 MiB download.
const POLL_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// A fold decision is CPU work over a handful of candidates.
const FOLD_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same
/// handle) and registers every metric at zero. If another recorder was
/// installed first, our handle renders only what was registered here.
pub fn init() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Both bucket lists are non-empty constants, so this cannot fail; if
        // it did, the histograms would render as summaries instead.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(POLL_DURATION.into()), &POLL_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(FOLD_DECISION.into()), &FOLD_BUCKETS)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be incomplete");
        }
        register_all();
        handle
    })
}

/// Prometheus text for /metrics.
pub fn render() -> String {
    init().render()
}

/// Drains expired histogram buckets; the daemon calls it each tick since
/// no exporter task does.
pub fn upkeep() {
    init().run_upkeep();
}

fn register_all() {
    for outcome in ["ok", "not_modified", "rate_limited", "gone", "error"] {
        counter!(POLLS, "outcome" => outcome).absolute(0);
    }
    for class in ["2xx", "3xx", "4xx", "5xx"] {
        counter!(HTTP_RESPONSES, "class" => class).absolute(0);
    }
    counter!(FETCHED_BYTES).absolute(0);
    for state in ["seen", "new", "updated", "folded"] {
        counter!(ITEMS, "state" => state).absolute(0);
    }
    {
        use crate::dedup::FoldMethod as M;
        for method in [
            M::Url,
            M::ContentHash,
            M::Origin,
            M::Simhash,
            M::Lead,
            M::Headline,
            M::Translation,
        ] {
            counter!(FOLDS, "method" => method.as_str()).absolute(0);
        }
    }
    counter!(STORIES_CREATED).absolute(0);
    for state in ["total", "failing", "disabled"] {
        gauge!(FEEDS, "state" => state).set(0.0);
    }
    for state in ["in_use", "idle"] {
        gauge!(DB_CONNECTIONS, "state" => state).set(0.0);
    }
    counter!(LEASES_CLAIMED).absolute(0);
    counter!(LEASES_EXPIRED).absolute(0);
    // HELP lines; histograms appear with their first observation since they
    // have no meaningful zero sample.
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(POLLS, "Polls by outcome; failed polls by error class");
    describe_counter!(HTTP_RESPONSES, "HTTP responses by status class");
    describe_counter!(
        FETCHED_BYTES,
        Unit::Bytes,
        "Bytes received from feed servers"
    );
    describe_histogram!(POLL_DURATION, Unit::Seconds, "Time to poll one feed");
    describe_counter!(ITEMS, "Items by what ingesting them did");
    describe_counter!(FOLDS, "Items folded into an existing story, by method");
    describe_counter!(STORIES_CREATED, "New canonical stories");
    describe_gauge!(FEEDS, "Feeds: total, failing and disabled");
    describe_histogram!(
        FOLD_DECISION,
        Unit::Seconds,
        "Time to decide whether an item folds"
    );
    describe_gauge!(DB_CONNECTIONS, "Database pool connections in use and idle");
    describe_counter!(LEASES_CLAIMED, "Feeds leased by this instance for polling");
    describe_counter!(
        LEASES_EXPIRED,
        "Polls that outlived their lease, so another instance may have polled the feed too"
    );
}

/// One finished poll. `outcome` is ok, not_modified, rate_limited, gone, or
/// the error class of a failed poll (timeout, http_5xx, ...).
pub fn record_poll(outcome: &str, duration: Duration) {
    counter!(POLLS, "outcome" => outcome.to_string()).increment(1);
    histogram!(POLL_DURATION).record(duration.as_secs_f64());
}

/// One HTTP response, counted by status class (2xx..5xx).
pub fn record_http_response(status: u16) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!(HTTP_RESPONSES, "class" => class).increment(1);
}

pub fn record_bytes(bytes: u64) {
    counter!(FETCHED_BYTES).increment(bytes);
}

/// One item, by what ingesting it did: seen, new, updated or folded.
pub fn record_item(state: &str) {
    counter!(ITEMS, "state" => state.to_string()).increment(1);
}

/// One fold into an existing story, by the method that decided it.
pub fn record_fold(method: &str) {
    counter!(FOLDS, "method" => method.to_string()).increment(1);
}

pub fn record_story_created() {
    counter!(STORIES_CREATED).increment(1);
}

pub fn record_fold_decision(duration: Duration) {
    histogram!(FOLD_DECISION).record(duration.as_secs_f64());
}

pub fn set_feeds(total: i64, failing: i64, disabled: i64) {
    gauge!(FEEDS, "state" => "total").set(total as f64);
    gauge!(FEEDS, "state" => "failing").set(failing as f64);
    gauge!(FEEDS, "state" => "disabled").set(disabled as f64);
}

pub fn set_db_connections(in_use: u32, idle: u32) {
    gauge!(DB_CONNECTIONS, "state" => "in_use").set(in_use as f64);
    gauge!(DB_CONNECTIONS, "state" => "idle").set(idle as f64);
}

pub fn leases_claimed(n: u64) {
    counter!(LEASES_CLAIMED).increment(n);
}

/// A poll ran past its lease, so another instance may have taken the feed.
pub fn lease_expired() {
    counter!(LEASES_EXPIRED).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_and_gauge_is_listed_before_any_poll() {
        assert!(std::ptr::eq(init(), init()), "one recorder per process");
        let text = render();
        for name in NAMES {
            if name == POLL_DURATION || name == FOLD_DECISION {
                continue;
            }
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(
            text.contains("feedfold_folds_total{method=\"origin-link\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn helpers_record_under_the_documented_names() {
        init();
        record_poll("timeout", Duration::from_millis(1500));
        record_http_response(503);
        record_fold_decision(Duration::from_micros(300));
        let text = render();
        assert!(
            text.contains("feedfold_polls_total{outcome=\"timeout\"} "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE feedfold_poll_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("feedfold_poll_duration_seconds_bucket{le=\"2.5\"} "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE feedfold_fold_decision_seconds histogram"),
            "{text}"
        );
        let line = text
            .lines()
            .find(|l| l.starts_with("feedfold_http_responses_total{class=\"5xx\"}"))
            .unwrap_or_default();
        let n: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(n >= 1.0, "{line}");
    }
}
